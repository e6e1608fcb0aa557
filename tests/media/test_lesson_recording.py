"""Recording a lesson to its chat through the gateway (issue 7: at least 20 s, posted to
the chat, decoding with PyAV to a duration within 10% of the wall time, video frames and
audio present): the host starts and stops it, everyone sees it is on; a recording still
running when the lesson ends lands too."""

from __future__ import annotations

import asyncio
import io
import time

import av
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from protocol.calls import CallEnd, CallPeople, CallRecord
from protocol.client import Client, ClientError
from protocol.messages import Event
from tests.integration.journal import JournalServer, live_math_lesson
from tests.media.conftest import new_pc
from tests.media.test_call_signalling import offer_via

RECORD_S = 20.5


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

    started = time.monotonic()
    await teacher.call(CallRecord(on=True))
    await kolya.call_push(CallPeople, where=lambda s: s.recording)
    await asyncio.sleep(RECORD_S)
    await teacher.call(CallRecord(on=False))
    wall = time.monotonic() - started
    await kolya.call_push(CallPeople, where=lambda s: not s.recording)

    posted = await recording_posted(kolya, chat_id)
    [attachment] = posted.attachments or []
    assert attachment.kind == "video" and attachment.mime == "video/webm"
    assert posted.actor_id == teacher.account_id and "Математика 7А" in (posted.text or "")
    data = await kolya.download(attachment.id)
    duration, video, audio = decoded(data)
    assert abs(duration - wall) < 0.1 * wall, (duration, wall)
    assert video > 10 * wall and audio > 10 * wall

    # Recording again, then the lesson ends with it still on: that file lands too.
    await teacher.call(CallRecord(on=True))
    await asyncio.sleep(2)
    await teacher.call(CallEnd())
    last = await recording_posted(kolya, chat_id)
    assert last.seq > posted.seq
