"""Recording a lesson to its chat through the gateway: the host starts and stops it,
everyone sees it is on, and the file lands in the chat as a video that decodes; a
recording still running when the lesson ends lands too."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from protocol.calls import CallEnd, CallPeople, CallRecord
from protocol.client import Client, ClientError
from protocol.messages import Event
from tests.integration.conftest import stop_server
from tests.integration.journal import JournalServer, live_math_lesson, start_journal_server
from tests.media.conftest import new_pc
from tests.media.test_call_signalling import offer_via


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[JournalServer]:
    running = start_journal_server(tmp_path, sfu_workers=1)
    yield running
    await running.close()
    log = stop_server(running.server)
    assert "Traceback" not in log, log


async def recording_posted(client: Client, chat_id: int) -> Event:
    async with asyncio.timeout(30):
        while True:
            event = await client.next_event()
            if event.chat_id == chat_id and event.kind == "message" and event.attachments:
                return event


def decoded(data: bytes) -> tuple[float, int, int]:
    """(duration s, video frames, audio frames) of a WebM file."""
    with av.open(io.BytesIO(data)) as container:
        duration = (container.duration or 0) / av.time_base
        video = sum(1 for _ in container.decode(video=0))
    with av.open(io.BytesIO(data)) as container:
        audio = sum(1 for _ in container.decode(audio=0))
    return duration, video, audio


async def test_the_host_records_and_the_file_lands_in_the_chat(
    journal: JournalServer, peers: list[RTCPeerConnection]
) -> None:
    lesson_id, chat_id, teacher, (kolya, _) = await live_math_lesson(journal)
    await teacher.call_join(lesson_id)
    publisher = new_pc(peers)
    publisher.addTrack(VideoStreamTrack())
    publisher.addTrack(AudioStreamTrack())
    await offer_via(teacher, publisher)
    await kolya.call_join(lesson_id)
    with pytest.raises(ClientError) as student:
        await kolya.call(CallRecord(on=True))
    assert student.value.code == "forbidden"

    await teacher.call(CallRecord(on=True))
    await kolya.call_push(CallPeople, where=lambda s: s.recording)
    await asyncio.sleep(4)
    await teacher.call(CallRecord(on=False))
    await kolya.call_push(CallPeople, where=lambda s: not s.recording)

    posted = await recording_posted(kolya, chat_id)
    [attachment] = posted.attachments or []
    assert attachment.kind == "video" and attachment.mime == "video/webm"
    assert posted.actor_id == teacher.account_id and "Математика 7А" in (posted.text or "")
    data = await kolya.download(attachment.id)
    duration, video, audio = decoded(data)
    assert 3 <= duration <= 6 and video > 10 and audio > 10

    # Recording again, then the lesson ends with it still on: that file lands too.
    await teacher.call(CallRecord(on=True))
    await asyncio.sleep(2)
    await teacher.call(CallEnd())
    last = await recording_posted(kolya, chat_id)
    assert last.seq > posted.seq
