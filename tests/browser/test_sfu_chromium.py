"""Headless Chromium publishes simulcast through the SFU; a second page receives it.

Signalling goes through the Python SDK (the pages only run WebRTC), so this tests the
media plane with the browser people will use: Chromium's own offer with three RIDs,
its ICE against our ICE-lite, its DTLS and SRTP, its bandwidth estimate ramping up on our
transport-cc feedback, and its decoder on what we forward.
"""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Browser, Page

from protocol.calls import CallEnd
from tests.browser.conftest import screenshot_path
from tests.integration.conftest import RunningServer
from tests.integration.journal import JournalServer, live_math_lesson

PAGE_JS = """
window.parta = {
  async publish() {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: {width: 1280, height: 720, frameRate: 30}, audio: true});
    const pc = new RTCPeerConnection({iceServers: []});
    window.pc = pc;
    const video = pc.addTransceiver(stream.getVideoTracks()[0], {
      direction: "sendonly",
      sendEncodings: [
        {rid: "q", scaleResolutionDownBy: 4, maxBitrate: 200000},
        {rid: "h", scaleResolutionDownBy: 2, maxBitrate: 700000},
        {rid: "f", maxBitrate: 2500000},
      ],
    });
    const audio = pc.addTransceiver(stream.getAudioTracks()[0], {direction: "sendonly"});
    await pc.setLocalDescription(await pc.createOffer());
    return {sdp: pc.localDescription.sdp, video: video.mid, audio: audio.mid};
  },
  async subscribe(kinds) {
    const pc = new RTCPeerConnection({iceServers: []});
    window.pc = pc;
    const mids = kinds.map(kind => pc.addTransceiver(kind, {direction: "recvonly"}));
    pc.ontrack = (event) => {
      if (event.track.kind !== "video") return;
      const element = document.createElement("video");
      element.autoplay = true; element.muted = true; element.width = 640;
      element.srcObject = new MediaStream([event.track]);
      document.body.replaceChildren(element);
    };
    await pc.setLocalDescription(await pc.createOffer());
    return {sdp: pc.localDescription.sdp, mids: mids.map(t => t.mid)};
  },
  async answer(sdp) {
    await window.pc.setRemoteDescription({type: "answer", sdp});
  },
  async stats() {
    const out = {inbound: null, outbound: {}, state: window.pc.connectionState, protocol: null};
    const stats = await window.pc.getStats();
    stats.forEach(report => {
      if (report.type === "candidate-pair" && report.nominated && report.state === "succeeded") {
        out.protocol = stats.get(report.remoteCandidateId).protocol;
      }
      if (report.type === "inbound-rtp" && report.kind === "video") {
        out.inbound = {framesDecoded: report.framesDecoded || 0,
                       width: report.frameWidth || 0, height: report.frameHeight || 0};
      }
      if (report.type === "outbound-rtp" && report.kind === "video") {
        out.outbound[report.rid] = {bytes: report.bytesSent || 0,
                                    width: report.frameWidth || 0,
                                    limited: report.qualityLimitationReason};
      }
    });
    return out;
  },
};
"""


async def open_page(browser: Browser, server: RunningServer) -> Page:
    page = await browser.new_page()
    await page.goto(server.url + "/")  # a secure context (loopback) for getUserMedia
    await page.add_script_tag(content=PAGE_JS)
    return page


async def stats(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("window.parta.stats()")
    return result


async def wait_for(page: Page, check: Any, timeout_s: float, what: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        current = await stats(page)
        if check(current):
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} within {timeout_s} s; last stats: {current}")
        await asyncio.sleep(0.5)


async def test_chromium_simulcast_through_the_sfu(journal: JournalServer, browser: Browser) -> None:
    lesson_id, _, teacher, (student, _) = await live_math_lesson(journal)
    publisher = await open_page(browser, journal.server)
    await teacher.call_join(lesson_id)
    offer = await publisher.evaluate("window.parta.publish()")
    answer = await teacher.call_offer(
        offer["sdp"], sources={offer["video"]: "camera", offer["audio"]: "mic"}
    )
    await publisher.evaluate("sdp => window.parta.answer(sdp)", answer)

    joined = await student.call_join(lesson_id)
    tracks = sorted(joined.tracks, key=lambda t: t.kind, reverse=True)  # video first
    assert [t.kind for t in tracks] == ["video", "audio"]
    receiver = await open_page(browser, journal.server)
    sub = await receiver.evaluate(
        "kinds => window.parta.subscribe(kinds)", [t.kind for t in tracks]
    )
    answer = await student.call_offer(
        sub["sdp"],
        subscriptions={mid: t.track_id for mid, t in zip(sub["mids"], tracks, strict=True)},
    )
    await receiver.evaluate("sdp => window.parta.answer(sdp)", answer)
    video = tracks[0].track_id

    got = await wait_for(
        receiver,
        lambda s: s["inbound"] and s["inbound"]["framesDecoded"] > 10,
        20,
        "frames decoded",
    )
    assert got["inbound"]["width"] > 0

    # Our transport-cc feedback lets Chromium's estimate grow until it sends every layer.
    sent = await wait_for(
        publisher,
        lambda s: all(s["outbound"].get(rid, {}).get("bytes", 0) > 50_000 for rid in "qhf"),
        40,
        "the publisher sending all three layers",
    )
    assert set(sent["outbound"]) == {"q", "h", "f"}

    # The receiver asks for a thumbnail, then for the stage: the layer follows.
    await student.call_layer(video, "low")
    low = await wait_for(
        receiver, lambda s: 0 < s["inbound"]["width"] <= 400, 20, "the low layer (≤ 400 px)"
    )
    await student.call_layer(video, "high")
    high = await wait_for(
        receiver,
        lambda s: s["inbound"]["width"] > low["inbound"]["width"],
        30,
        "a higher layer after asking for high",
    )
    assert high["inbound"]["width"] >= 640
    await receiver.screenshot(path=screenshot_path("sfu-receiver"))
    await teacher.call(CallEnd())


async def test_a_publisher_whose_network_blocks_udp_connects_over_ice_tcp(
    journal: JournalServer, browser: Browser
) -> None:
    lesson_id, _, teacher, (student, _) = await live_math_lesson(journal)
    publisher = await open_page(browser, journal.server)
    await teacher.call_join(lesson_id)
    offer = await publisher.evaluate("window.parta.publish()")
    answer = await teacher.call_offer(
        offer["sdp"], sources={offer["video"]: "camera", offer["audio"]: "mic"}
    )
    # As if UDP were blocked: the publisher only learns our passive TCP candidate.
    tcp_only = "\r\n".join(line for line in answer.split("\r\n") if " udp " not in line)
    await publisher.evaluate("sdp => window.parta.answer(sdp)", tcp_only)
    connected = await wait_for(
        publisher, lambda s: s["protocol"] is not None, 20, "an ICE-TCP connection"
    )
    assert connected["protocol"] == "tcp"

    joined = await student.call_join(lesson_id)
    video = next(t for t in joined.tracks if t.kind == "video")
    receiver = await open_page(browser, journal.server)
    sub = await receiver.evaluate("kinds => window.parta.subscribe(kinds)", ["video"])
    answer = await student.call_offer(sub["sdp"], subscriptions={sub["mids"][0]: video.track_id})
    await receiver.evaluate("sdp => window.parta.answer(sdp)", answer)
    await wait_for(
        receiver,
        lambda s: s["inbound"] and s["inbound"]["framesDecoded"] > 10,
        20,
        "frames from a publisher on ICE-TCP",
    )
    await teacher.call(CallEnd())
