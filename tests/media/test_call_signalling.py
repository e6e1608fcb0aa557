"""A lesson through the gateway: scheduled and published by the journal, opened by its
host, joined by the chat's students who publish and receive over the SFU; hands, host
controls, breakout rooms, the whiteboard, the end; a crashed SFU worker."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from protocol.calls import (
    BoardOp,
    BoardPush,
    CallBoard,
    CallEnd,
    CallHand,
    CallModerate,
    CallNotice,
    CallPeople,
    CallPermit,
    CallReconnect,
    CallTracks,
    RoomsBroadcast,
    RoomsClose,
    RoomsHelp,
    RoomsOpen,
)
from protocol.client import Client, ClientError
from tests.integration.conftest import stop_server
from tests.integration.journal import JournalServer, live_math_lesson, start_journal_server
from tests.media.conftest import new_pc


async def offer_via(client: Client, pc: RTCPeerConnection, **kwargs: dict[str, str]) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    answer = await client.call_offer(pc.localDescription.sdp, **kwargs)  # type: ignore[arg-type]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))


async def subscribe(
    client: Client, pc: RTCPeerConnection, tracks: list[object]
) -> asyncio.Future[MediaStreamTrack]:
    """Receive these tracks; the future gets the first video track that arrives."""
    wanted = {}
    for track in tracks:
        transceiver = pc.addTransceiver(track.kind, direction="recvonly")  # type: ignore[attr-defined]
        wanted[transceiver] = track.track_id  # type: ignore[attr-defined]
    arrived: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

    @pc.on("track")  # type: ignore[misc]
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video" and not arrived.done():
            arrived.set_result(track)

    await pc.setLocalDescription(await pc.createOffer())
    answer = await client.call_offer(
        pc.localDescription.sdp, subscriptions={t.mid: tid for t, tid in wanted.items()}
    )
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return arrived


def person(state: CallPeople, account_id: int | None) -> object:
    return next(p for p in state.people if p.account_id == account_id)


async def test_a_lesson_from_publishing_to_its_end(
    journal: JournalServer, peers: list[RTCPeerConnection]
) -> None:
    lesson_id, _, teacher, (kolya, anya) = await live_math_lesson(journal)
    outsider = await journal.server.sign_in("Чужой", "Человек")
    await outsider.connect()
    with pytest.raises(ClientError) as refused:
        await outsider.call_join(lesson_id)
    assert refused.value.code == "not_member"
    # Students who come before the host wait: the lesson has not started.
    with pytest.raises(ClientError) as early:
        await kolya.call_join(lesson_id)
    assert early.value.code == "lesson_not_started"

    joined = await teacher.call_join(lesson_id)
    assert joined.call.state == "live" and joined.call.host_id == teacher.account_id
    assert joined.tracks == [] and joined.candidates[0].address == "127.0.0.1"
    assert [p.role for p in joined.people.people] == ["host"]
    # The lesson card in the chat says so, for the students waiting.
    live = await kolya.next_event(10)
    while live.kind != "lesson_updated":
        live = await kolya.next_event(10)
    assert live.lesson is not None and live.lesson.state == "live" and live.lesson.id == lesson_id

    publisher = new_pc(peers)
    publisher.addTrack(VideoStreamTrack())
    publisher.addTrack(AudioStreamTrack())
    await offer_via(teacher, publisher, sources={})

    seen = await kolya.call_join(lesson_id)
    assert {(t.kind, t.source, t.account_id) for t in seen.tracks} == {
        ("video", "camera", teacher.account_id),
        ("audio", "mic", teacher.account_id),
    }
    video = await asyncio.wait_for(await subscribe(kolya, new_pc(peers), seen.tracks), 10)
    frame = await asyncio.wait_for(video.recv(), 10)
    assert (frame.width, frame.height) == (640, 480)  # type: ignore[union-attr]
    await anya.call_join(lesson_id)

    # Hands go up in order; the host sees them and lowers one.
    await kolya.call(CallHand(raised=True))
    await anya.call(CallHand(raised=True))
    state = await teacher.call_push(
        CallPeople, where=lambda s: sum(p.hand is not None for p in s.people) == 2
    )
    assert person(state, kolya.account_id).hand < person(state, anya.account_id).hand  # type: ignore[attr-defined]
    await teacher.call(CallModerate(account_id=kolya.account_id or 0, action="lower_hand"))
    with pytest.raises(ClientError) as not_host:
        await anya.call(CallModerate(account_id=kolya.account_id or 0, action="mute"))
    assert not_host.value.code == "forbidden"

    # Screen sharing needs the host's leave: refused, then allowed for everyone.
    screen = new_pc(peers)
    screen.addTrack(VideoStreamTrack())
    with pytest.raises(ClientError) as no_screen:
        await offer_via(anya, screen, sources={"0": "screen"})
    assert no_screen.value.code == "forbidden"
    await teacher.call(CallPermit(screen=True))
    await anya.call_push(CallPeople, where=lambda s: s.screen_for_all)
    await offer_via(anya, screen, sources={"0": "screen"})
    state = await teacher.call_push(CallPeople, where=lambda s: any(p.screen for p in s.people))
    assert person(state, anya.account_id).screen  # type: ignore[attr-defined]

    # The whiteboard: an operation reaches the others once, and late joiners get it too.
    stroke = BoardOp(id="s1", kind="stroke", points=[0.1, 0.1, 0.5, 0.5], color="#ff0000")
    await kolya.call(CallBoard(ops=[stroke]))
    await kolya.call(CallBoard(ops=[stroke]))  # a retry
    drawn = await anya.call_push(BoardPush)
    assert [op.id for op in drawn.ops] == ["s1"] and drawn.ops[0].account_id == kolya.account_id

    # Breakout rooms: the two students apart; the teacher's video no longer reaches them.
    await teacher.call(RoomsOpen(names=["Первая", "Вторая"], random=True, minutes=30))
    state = await teacher.call_push(CallPeople, where=lambda s: bool(s.rooms))
    rooms = {p.account_id: p.room for p in state.people}
    assert rooms[teacher.account_id] == 0
    assert {rooms[kolya.account_id], rooms[anya.account_id]} == {1, 2}
    assert state.rooms_close_at is not None
    await kolya.call_push(CallTracks, where=lambda t: not t.tracks)
    await kolya.call(RoomsHelp())
    help_call = await teacher.call_push(CallNotice, where=lambda n: n.kind == "help")
    assert help_call.by == kolya.account_id and help_call.room == rooms[kolya.account_id]
    await teacher.call(RoomsBroadcast(text="Осталось пять минут"))
    told = await anya.call_push(CallNotice, where=lambda n: n.kind == "broadcast")
    assert told.text == "Осталось пять минут"
    await teacher.call(RoomsClose())
    back = await kolya.call_push(CallTracks, where=lambda t: bool(t.tracks))
    assert teacher.account_id in {t.account_id for t in back.tracks}

    # The host ends the lesson: everyone is told; it cannot be joined again.
    await teacher.call(CallEnd())
    ended = await kolya.call_push(CallNotice, where=lambda n: n.kind == "ended")
    assert ended.call_id == lesson_id
    with pytest.raises(ClientError) as over:
        await kolya.call_join(lesson_id)
    assert over.value.code == "lesson_ended"
    attendance = await journal.ok("GET", f"/api/v1/calls/{lesson_id}/attendance?as=t1")
    assert {a["user_id"] for a in attendance["attendance"]} == {"t1", "s1", "s2"}
    await outsider.close()


async def test_a_crashed_worker_is_restarted_and_its_calls_told_to_reconnect(
    tmp_path: Path, peers: list[RTCPeerConnection]
) -> None:
    journal = start_journal_server(tmp_path, sfu_workers=1)
    try:
        lesson_id, _, teacher, _ = await live_math_lesson(journal)
        await teacher.call_join(lesson_id)
        publisher = new_pc(peers)
        publisher.addTrack(VideoStreamTrack())
        await offer_via(teacher, publisher)
        [before] = (await teacher.http_json("GET", "/healthz"))["media"]
        assert before["up"] and before["rooms"] == 1

        os.kill(before["pid"], signal.SIGKILL)
        reconnect = await teacher.call_push(CallReconnect)
        assert reconnect.call_id == lesson_id
        for _ in range(100):
            [after] = (await teacher.http_json("GET", "/healthz"))["media"]
            if after["up"]:
                break
            await asyncio.sleep(0.1)
        assert after["up"] and after["pid"] != before["pid"] and after["rooms"] == 0

        # Joining again works on the new worker; the lesson stayed live.
        joined = await teacher.call_join(lesson_id)
        assert joined.candidates[0].port == after["port"] and joined.call.state == "live"
        again = new_pc(peers)
        again.addTrack(VideoStreamTrack())
        await offer_via(teacher, again)
        await teacher.call_leave()
        await journal.close()
    finally:
        log = stop_server(journal.server)
    assert "sfu worker lost" in log
