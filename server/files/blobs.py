"""Content-addressed blobs: ``<root>/<2 hex>/<2 hex>/<sha256>``, each written once.

A blob is written to ``<root>/tmp/`` while it is hashed, synced, and renamed into place
only when its metadata is committed; identical content lands on the same path, so it is
stored once. A blob that fails on the way leaves nothing behind: its temporary file goes.
File I/O runs in threads, a megabyte at a time, so the event loop only gathers chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger("parta.files")

# Chunks gathered before one write (and hash update) in a thread.
FLUSH_BYTES = 1 << 20
# A temporary file this old belongs to no upload in progress: a crash left it.
STALE_TEMP_S = 24 * 3600

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._sweep_stale()

    def path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError(f"not a SHA-256 digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def writer(self) -> BlobWriter:
        """A new blob, written chunk by chunk; ``commit`` or ``discard`` it."""
        return BlobWriter(self)

    async def stage(self, data: bytes) -> BlobWriter:
        """A small blob (a thumbnail) written and hashed, waiting for ``commit``."""
        writer = self.writer()
        try:
            await writer.write(data)
            await writer.finish()
        except BaseException:
            await writer.discard()
            raise
        return writer

    async def read(self, sha256: str, start: int, length: int) -> bytes:
        path = self.path(sha256)

        def read() -> bytes:
            with path.open("rb") as f:
                f.seek(start)
                return f.read(length)

        return await asyncio.to_thread(read)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def _sweep_stale(self) -> None:
        cutoff = time.time() - STALE_TEMP_S
        for entry in self.tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()


class BlobWriter:
    """One blob on its way in: a temporary file, hashed as written."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._file: BinaryIO | None = None
        self._temp: Path | None = None
        # Held by the thread writing; discarding waits for it, so no write outlives the file.
        self._lock = threading.Lock()
        self._finished = False
        self._done = False
        self.size = 0
        self.sha256 = ""

    @property
    def temp_path(self) -> Path:
        """The written file, to read before it is committed (after ``finish``)."""
        assert self._finished and self._temp is not None
        return self._temp

    async def write(self, chunk: bytes) -> None:
        assert not self._finished
        self._buffer += chunk
        self.size += len(chunk)
        if len(self._buffer) >= FLUSH_BYTES:
            data = bytes(self._buffer)
            self._buffer.clear()
            await asyncio.to_thread(self._write, data)

    async def finish(self) -> str:
        """Write what is left and sync it to disk; returns the SHA-256 (hex)."""
        data = bytes(self._buffer)
        self._buffer.clear()
        await asyncio.to_thread(self._write, data, True)
        self._finished = True
        self.sha256 = self._hash.hexdigest()
        return self.sha256

    def _write(self, data: bytes, last: bool = False) -> None:
        with self._lock:
            if self._done:
                return
            if self._file is None:
                fd, name = tempfile.mkstemp(dir=self._store.tmp, suffix=".part")
                self._temp = Path(name)
                self._file = os.fdopen(fd, "wb")
            self._hash.update(data)
            self._file.write(data)
            if last:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                self._file = None

    async def commit(self) -> Path:
        """Move the finished blob into place (or drop it if that content is there already)."""
        assert self._finished
        return await asyncio.to_thread(self._commit)

    def _commit(self) -> Path:
        with self._lock:
            assert self._temp is not None and not self._done
            final = self._store.path(self.sha256)
            if final.is_file():
                self._temp.unlink()
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self._temp, final)
                _sync_dir(final.parent)
            self._done = True
            return final

    async def discard(self) -> None:
        """Remove the temporary file, if any (a no-op after ``commit``). Safe to call while
        a cancelled write is still running in its thread: it waits for it."""
        if self._done:
            return
        await asyncio.to_thread(self._discard)

    def _discard(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            if self._file is not None:
                self._file.close()
                self._file = None
            if self._temp is not None:
                with contextlib.suppress(FileNotFoundError):
                    self._temp.unlink()


def _sync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory
    finally:
        os.close(fd)
