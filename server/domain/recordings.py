"""Recordings of lessons land in the lesson's chat: the SFU worker writes a WebM file into
the data dir; here it becomes an attachment (a video) posted for all the chat's members,
and the journal hears ``call.recording_ready``."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

from protocol.messages import ChatPost
from protocol.sfu_control import RecordingEnded
from server.domain.lessons import LessonService
from server.domain.messages import MessageService
from server.files.service import FileService, Upload
from server.store.lessons import Lesson

logger = logging.getLogger("parta.recordings")

CHUNK = 1 << 20
# A recording may be longer than any video someone uploads.
MAX_RECORDING_BYTES = 8 << 30


class RecordingSink:
    def __init__(
        self,
        directory: Path,
        files: FileService,
        messages: MessageService,
        lessons: LessonService,
    ) -> None:
        self._directory = directory
        self._files = files
        self._messages = messages
        self._lessons = lessons

    def new_path(self, lesson: Lesson, now: int) -> Path:
        self._directory.mkdir(parents=True, exist_ok=True)
        return self._directory / f"lesson-{lesson.id}-{now}.webm"

    async def publish(self, lesson: Lesson, ended: RecordingEnded) -> int | None:
        """Post the finished file into the lesson's chat; the file's id, or None."""
        path = Path(ended.path)
        try:
            if ended.error or ended.size == 0 or not await asyncio.to_thread(path.is_file):
                logger.warning(
                    "recording lost", extra={"lesson_id": lesson.id, "error": ended.error}
                )
                return None
            author = lesson.host_account_id
            if author is None:
                return None
            started = dt.datetime.fromtimestamp(
                (lesson.started_at or lesson.starts_at) / 1000, dt.UTC
            )
            name = f"Запись урока {started:%Y-%m-%d %H-%M} UTC.webm"
            upload = Upload(author, lesson.chat_id, "video", name, MAX_RECORDING_BYTES)
            handle = await asyncio.to_thread(path.open, "rb")

            async def read() -> bytes:
                return await asyncio.to_thread(handle.read, CHUNK)

            try:
                stored = await self._files.receive(upload, read)
            finally:
                handle.close()
            await self._messages.post(
                author,
                ChatPost(
                    chat_id=lesson.chat_id,
                    client_id=f"recording-{path.stem}",
                    text=f"Запись урока «{lesson.title}»",
                    attachments=[stored.id],
                ),
            )
            await self._lessons.recording_ready(lesson, stored.id, ended.duration_s)
            return stored.id
        finally:
            await asyncio.to_thread(path.unlink, True)
