"""Attachments' metadata: one row per upload; the bytes are blobs named by their SHA-256."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import orjson

from server.store.engine import Database, Row


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: int
    chat_id: int
    uploader_id: int | None
    sha256: str
    size: int
    mime: str
    kind: str
    name: str
    created_at: int
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    # A voice message's peak levels, 0-255.
    waveform: tuple[int, ...] | None = None
    thumb_sha256: str | None = None
    thumb_mime: str | None = None


_COLUMNS = (
    "id, chat_id, uploader_id, sha256, size, mime, kind, name, created_at, width, height,"
    " duration_ms, waveform, thumb_sha256, thumb_mime"
)


def _record(row: Row) -> FileRecord:
    waveform = row["waveform"]
    return FileRecord(
        id=row["id"],
        chat_id=row["chat_id"],
        uploader_id=row["uploader_id"],
        sha256=row["sha256"],
        size=row["size"],
        mime=row["mime"],
        kind=row["kind"],
        name=row["name"],
        created_at=row["created_at"],
        width=row["width"],
        height=row["height"],
        duration_ms=row["duration_ms"],
        waveform=None if waveform is None else tuple(orjson.loads(waveform)),
        thumb_sha256=row["thumb_sha256"],
        thumb_mime=row["thumb_mime"],
    )


class FileStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, record: FileRecord) -> FileRecord:
        """Store an upload's metadata (``record.id`` is ignored); returns it with its id."""
        async with self._db.transaction("insert_file") as txn:
            file_id = await txn.fetchval(
                "INSERT INTO files (chat_id, uploader_id, sha256, size, mime, kind, name,"
                " created_at, width, height, duration_ms, waveform, thumb_sha256, thumb_mime)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                " RETURNING id",
                record.chat_id,
                record.uploader_id,
                record.sha256,
                record.size,
                record.mime,
                record.kind,
                record.name,
                record.created_at,
                record.width,
                record.height,
                record.duration_ms,
                None if record.waveform is None else orjson.dumps(record.waveform).decode(),
                record.thumb_sha256,
                record.thumb_mime,
            )
        return dataclasses.replace(record, id=file_id)

    async def get(self, file_id: int) -> FileRecord | None:
        async with self._db.read("get_file") as txn:
            row = await txn.fetchrow(f"SELECT {_COLUMNS} FROM files WHERE id = $1", file_id)
        return None if row is None else _record(row)

    async def delete(self, file_id: int) -> bool:
        async with self._db.transaction("delete_file") as txn:
            return await txn.execute("DELETE FROM files WHERE id = $1", file_id) > 0
