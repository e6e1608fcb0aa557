"""A call through the gateway: people in a chat join, publish and receive over the SFU."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from protocol.client import Client, ClientError
from protocol.messages import CallReconnect, CallTracks
from tests.integration.conftest import RunningServer, start_server, stop_server
from tests.media.conftest import new_pc


@pytest.fixture(scope="module")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("parta"), sfu_workers=1)
    yield running
    log = stop_server(running)
    assert "Traceback" not in log, log


async def offer_via(client: Client, pc: RTCPeerConnection, **kwargs: dict[str, str]) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    answer = await client.call_offer(pc.localDescription.sdp, **kwargs)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))


async def next_tracks(client: Client) -> CallTracks:
    while True:
        event = await client.next_call_event(15)
        if isinstance(event, CallTracks):
            return event


async def test_a_student_joins_a_call_and_receives_the_teachers_video(
    media_server: RunningServer, peers: list[RTCPeerConnection]
) -> None:
    teacher = await media_server.sign_in("Ковалёва", "Ирина")
    student = await media_server.sign_in("Орлов", "Миша")
    outsider = await media_server.sign_in("Чужой", "Человек")
    for client in (teacher, student, outsider):
        await client.connect()
    assert student.account_id is not None
    chat = await teacher.create_chat("5Б: математика", [student.account_id])

    with pytest.raises(ClientError) as refused:
        await outsider.call_join(chat.id)
    assert refused.value.code == "not_member"

    joined = await teacher.call_join(chat.id)
    assert joined.tracks == [] and joined.candidates[0].address == "127.0.0.1"
    publisher = new_pc(peers)
    publisher.addTrack(VideoStreamTrack())
    publisher.addTrack(AudioStreamTrack())
    await offer_via(teacher, publisher)

    seen = await student.call_join(chat.id)
    assert {(t.kind, t.source, t.account_id) for t in seen.tracks} == {
        ("video", "camera", teacher.account_id),
        ("audio", "mic", teacher.account_id),
    }
    subscriber = new_pc(peers)
    wanted = {}
    for track in seen.tracks:
        transceiver = subscriber.addTransceiver(track.kind, direction="recvonly")
        wanted[track.kind] = (transceiver, track.track_id)
    arrived: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

    @subscriber.on("track")  # type: ignore[misc]
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video" and not arrived.done():
            arrived.set_result(track)

    await subscriber.setLocalDescription(await subscriber.createOffer())
    answer = await student.call_offer(
        subscriber.localDescription.sdp,
        subscriptions={t.mid: track_id for t, track_id in wanted.values()},
    )
    await subscriber.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    video = await asyncio.wait_for(arrived, 10)
    frame = await asyncio.wait_for(video.recv(), 10)
    assert (frame.width, frame.height) == (640, 480)  # type: ignore[union-attr]

    # The teacher leaves: the student is told the tracks are gone.
    await teacher.call_leave()
    assert (await next_tracks(student)).tracks == []
    for client in (teacher, student, outsider):
        await client.close()


async def test_a_crashed_worker_is_restarted_and_its_calls_told_to_reconnect(
    tmp_path: Path, peers: list[RTCPeerConnection]
) -> None:
    server = start_server(tmp_path, sfu_workers=1)
    try:
        teacher = await server.sign_in()
        await teacher.connect()
        chat = await teacher.create_chat("Кружок")
        await teacher.call_join(chat.id)
        publisher = new_pc(peers)
        publisher.addTrack(VideoStreamTrack())
        await offer_via(teacher, publisher)
        [before] = (await teacher.http_json("GET", "/healthz"))["media"]
        assert before["up"] and before["rooms"] == 1

        os.kill(before["pid"], signal.SIGKILL)
        reconnect = await teacher.next_call_event(10)
        assert isinstance(reconnect, CallReconnect) and reconnect.chat_id == chat.id
        for _ in range(100):
            [after] = (await teacher.http_json("GET", "/healthz"))["media"]
            if after["up"]:
                break
            await asyncio.sleep(0.1)
        assert after["up"] and after["pid"] != before["pid"] and after["rooms"] == 0

        # Joining again works on the new worker.
        joined = await teacher.call_join(chat.id)
        assert joined.candidates[0].port == after["port"]
        again = new_pc(peers)
        again.addTrack(VideoStreamTrack())
        await offer_via(teacher, again)
        await teacher.close()
    finally:
        log = stop_server(server)
    assert "sfu worker lost" in log
