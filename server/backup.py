"""``parta backup --to DIR``: a copy of a data dir, taken while Parta runs.

The copy is itself a data dir: ``parta serve --data-dir DIR`` runs on it (on SQLite as it
is; on PostgreSQL after ``pg_restore`` of ``DIR/parta.pgdump`` into a database). The
database goes first, then the blobs, so every file the database names is in the copy
(blobs are written whole under ``blobs/tmp`` and renamed into place, and never change).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from server.config import Settings
from server.store import is_postgres_url

__all__ = ["BackupError", "backup"]

SECRET = "secret.key"
PG_DUMP = "parta.pgdump"


class BackupError(Exception):
    """What stops a backup, worded for the operator."""


def backup(settings: Settings, target: Path) -> dict[str, Any]:
    """Copy the data dir of ``settings`` (and its database) into ``target``, which must not
    exist or be empty; what was copied."""
    source = settings.data_dir
    if not (source / SECRET).is_file():
        raise BackupError(f"{source} is not a Parta data dir (no {SECRET})")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty")
    target.mkdir(parents=True, exist_ok=True)
    if settings.db is not None and is_postgres_url(settings.db):
        database = _pg_dump(settings.db, target / PG_DUMP)
    else:
        database = _sqlite_copy(Path(settings.db) if settings.db else source / "parta.db", target)
    shutil.copy2(source / SECRET, target / SECRET)
    blobs = _copy_blobs(source / "blobs", target / "blobs")
    return {"to": str(target), "database": database, "blobs": blobs[0], "blob_bytes": blobs[1]}


def _sqlite_copy(path: Path, target: Path) -> str:
    """SQLite's online backup: one consistent snapshot while the server goes on writing."""
    if not path.is_file():
        raise BackupError(f"no SQLite database at {path}")
    copy = target / "parta.db"
    live = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    out = sqlite3.connect(copy)
    try:
        live.backup(out)
    finally:
        out.close()
        live.close()
    return str(copy)


def _pg_dump(dsn: str, dump: Path) -> str:
    if shutil.which("pg_dump") is None:
        raise BackupError("PostgreSQL's pg_dump is needed (install the PostgreSQL client)")
    done = subprocess.run(
        ["pg_dump", "--format=custom", "--file", str(dump), dsn],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    return str(dump)


def _copy_blobs(source: Path, target: Path) -> tuple[int, int]:
    """Every finished blob (not ``tmp/``): (files, bytes)."""
    files = size = 0
    if not source.is_dir():
        return files, size
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or relative.parts[0] == "tmp":
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / relative)
        files += 1
        size += path.stat().st_size
    return files, size
