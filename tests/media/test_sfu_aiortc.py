"""An aiortc publisher, aiortc subscribers, and our SFU worker in between."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from av import VideoFrame

from protocol.sfu_control import PeerClose
from tests.media.conftest import Sfu, new_pc, producer_of


async def frames_of(track: MediaStreamTrack, count: int) -> list[VideoFrame]:
    return [await asyncio.wait_for(track.recv(), 10) for _ in range(count)]  # type: ignore[misc]


def mid_of(pc: RTCPeerConnection, kind: str) -> str:
    return next(t.mid for t in pc.getTransceivers() if t.kind == kind)


async def teacher_in(sfu: Sfu, peers: list[RTCPeerConnection], room_id: str) -> RTCPeerConnection:
    """The publisher's peer connection, its peer made in the room."""
    await sfu.peer(room_id, "teacher")
    return new_pc(peers)


async def test_three_subscribers_decode_the_publishers_video_and_audio(
    sfu: Sfu, peers: list[RTCPeerConnection]
) -> None:
    publisher = await teacher_in(sfu, peers, "room-1")
    publisher.addTrack(VideoStreamTrack())
    publisher.addTrack(AudioStreamTrack())
    answer = await sfu.offer(
        "room-1",
        "teacher",
        publisher,
        sources={},  # defaults: mic and camera
    )
    video = producer_of(answer, "video")
    audio = producer_of(answer, "audio")
    assert (video.source, audio.source) == ("camera", "mic")

    received: list[asyncio.Future[tuple[MediaStreamTrack, MediaStreamTrack]]] = []
    for n in range(3):
        peer_id = f"student-{n}"
        await sfu.peer("room-1", peer_id)
        pc = new_pc(peers)
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        tracks: dict[str, MediaStreamTrack] = {}
        done: asyncio.Future[tuple[MediaStreamTrack, MediaStreamTrack]] = (
            asyncio.get_running_loop().create_future()
        )

        @pc.on("track")  # type: ignore[misc]
        def on_track(track: MediaStreamTrack, tracks=tracks, done=done) -> None:
            tracks[track.kind] = track
            if len(tracks) == 2 and not done.done():
                done.set_result((tracks["video"], tracks["audio"]))

        await pc.setLocalDescription(await pc.createOffer())
        await sfu.offer(
            "room-1",
            peer_id,
            pc,
            subscriptions={
                mid_of(pc, "video"): video.producer_id,
                mid_of(pc, "audio"): audio.producer_id,
            },
        )
        received.append(done)

    for done in received:
        video_track, audio_track = await asyncio.wait_for(done, 10)
        frames = await frames_of(video_track, 15)
        assert len(frames) == 15
        assert (frames[-1].width, frames[-1].height) == (640, 480)
        sound = await asyncio.wait_for(audio_track.recv(), 10)
        assert sound.sample_rate == 48000


async def watch(
    sfu: Sfu, peers: list[RTCPeerConnection], room_id: str, producer_id: str
) -> MediaStreamTrack:
    """A student in the room receiving that video: its track once it arrives."""
    await sfu.peer(room_id, "student")
    subscriber = new_pc(peers)
    subscriber.addTransceiver("video", direction="recvonly")
    arrived: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    subscriber.on("track", arrived.set_result)
    await subscriber.setLocalDescription(await subscriber.createOffer())
    await sfu.offer(
        room_id, "student", subscriber, subscriptions={mid_of(subscriber, "video"): producer_id}
    )
    return await asyncio.wait_for(arrived, 10)


async def test_subscribers_see_the_track_end_when_the_publisher_leaves(
    sfu: Sfu, peers: list[RTCPeerConnection]
) -> None:
    publisher = await teacher_in(sfu, peers, "room-2")
    publisher.addTrack(VideoStreamTrack())
    video = producer_of(await sfu.offer("room-2", "teacher", publisher), "video")
    track = await watch(sfu, peers, "room-2", video.producer_id)
    assert len(await frames_of(track, 3)) == 3

    worker = sfu.pool.worker_for("room-2")
    assert worker is not None
    await worker.request(PeerClose(peer_id="teacher"))
    with pytest.raises(MediaStreamError):
        for _ in range(200):  # frames already in flight may still come
            await asyncio.wait_for(track.recv(), 5)
    assert track.readyState == "ended"


async def test_an_h264_camera_keeps_flowing_once_its_bitrate_is_measured(
    sfu: Sfu, peers: list[RTCPeerConnection]
) -> None:
    publisher = await teacher_in(sfu, peers, "room-3")
    camera = publisher.addTransceiver(VideoStreamTrack(), direction="sendonly")
    codecs = RTCRtpSender.getCapabilities("video").codecs
    camera.setCodecPreferences([c for c in codecs if c.mimeType == "video/H264"])
    answer = await sfu.offer("room-3", "teacher", publisher)
    assert "H264/90000" in answer.sdp and "VP8" not in answer.sdp
    track = await watch(sfu, peers, "room-3", producer_of(answer, "video").producer_id)
    # Beyond the first measured second and the allocations that follow it.
    loop = asyncio.get_running_loop()
    until = loop.time() + 4
    frames = []
    while loop.time() < until:
        frames.append(await asyncio.wait_for(track.recv(), 3))
    assert len(frames) > 30
    assert (frames[-1].width, frames[-1].height) == (640, 480)
