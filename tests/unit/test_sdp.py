"""sfu.sdp: parse real offers, negotiate, and write answers real WebRTC stacks accept.

Offers come from ``tests/fixtures/sdp/`` (captured from Chromium 156 and aiortc 1.16; see its
README) and from live aiortc peers. The ``*-answer.sdp`` fixtures are byte for byte what
``build_answer`` wrote for the neighbouring offer with ``chromium_plan`` and Chromium 156
accepted with ``setRemoteDescription``: if a change here alters them, re-run the capture
script and look at what Chromium says before updating them.
"""

from __future__ import annotations

import functools
import itertools
import random
import string
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.sdp import (
    EXT_ABS_SEND_TIME,
    EXT_AUDIO_LEVEL,
    EXT_MID,
    EXT_REPAIRED_RID,
    EXT_RID,
    EXT_TRANSPORT_CC,
    HOST_TCP_PRIORITY,
    HOST_UDP_PRIORITY,
    AnswerPlan,
    Candidate,
    Codec,
    Direction,
    Fingerprint,
    MediaDescription,
    MediaPlan,
    Msid,
    NegotiatedCodec,
    Origin,
    Rid,
    SdpError,
    SenderPlan,
    SessionDescription,
    Simulcast,
    SimulcastId,
    SsrcEncoding,
    SsrcGroup,
    build_answer,
    negotiate,
    negotiate_codecs,
    negotiate_extensions,
    parse_sdp,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sdp"
SIMULCAST = "chromium-156-simulcast-offer.sdp"  # shared capture: audio + 3-RID video
CAMERA = "chromium-156-camera-offer.sdp"  # audio + video (no simulcast), 3 recvonly, data
CAMERA_REOFFER = "chromium-156-camera-reoffer.sdp"  # the same after stopping one recvonly
PUBSUB = "chromium-156-pubsub-offer.sdp"  # audio + 3-RID video, 2 recvonly
AIORTC = "aiortc-1.16-offer.sdp"  # 2 sendonly, 2 recvonly, data channel
OFFERS = [SIMULCAST, CAMERA, CAMERA_REOFFER, PUBSUB, AIORTC]

# No example database: the tests must not write into the working tree.
hsettings = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TCC = EXT_TRANSPORT_CC
VIDEO_FB = ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")
FINGERPRINT = Fingerprint("sha-256", ":".join(f"{i:02X}" for i in range(32)))
REVERSED: dict[str, str] = {
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "sendrecv": "sendrecv",
    "inactive": "inactive",
}


def fixture(name: str) -> str:
    # Bytes, not read_text(): universal newlines would hide the CRLFs we must handle.
    return (FIXTURES / name).read_bytes().decode()


def offer(name: str) -> SessionDescription:
    return parse_sdp(fixture(name))


def chromium_plan(description: SessionDescription) -> AnswerPlan:
    """Accept everything we can, send on every section the client receives on.

    The capture script uses this too: the answer fixtures are its output."""
    media = {}
    for index, negotiated in enumerate(negotiate(description).media):
        if negotiated.reject_reason is not None:
            media[negotiated.mid] = MediaPlan(accept=False)
            continue
        sender = None
        if negotiated.direction in ("recvonly", "sendrecv"):
            sender = SenderPlan(
                ssrc=1000 + index,
                rtx_ssrc=2000 + index if negotiated.kind == "video" else None,
                cname="parta",
                stream_id=f"peer{index}",
                track_id=f"track{index}",
            )
        media[negotiated.mid] = MediaPlan(accept=True, sender=sender)
    return AnswerPlan(
        session_id=4611686018427387904,
        session_version=1,
        ice_ufrag="sfuUfrag",
        ice_pwd="sfuPasswordsfuPassword1",
        fingerprint=FINGERPRINT,
        address="127.0.0.1",
        port=40000,
        media=media,
    )


def sdp(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


SESSION = ("v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0")


def section(kind: str, mid: str, direction: str, *lines: str, formats: str = "") -> tuple[str, ...]:
    """An m-section with the transport attributes every browser section has."""
    return (
        f"m={kind} 9 UDP/TLS/RTP/SAVPF {formats}".rstrip(),
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:0123456789abcdef012345",
        f"a=fingerprint:sha-256 {FINGERPRINT.value}",
        "a=setup:actpass",
        f"a=mid:{mid}",
        f"a={direction}",
        "a=rtcp-mux",
        *lines,
    )


def offer_of(*sections: tuple[str, ...], bundle: str | None = None) -> str:
    mids = [line[6:] for s in sections for line in s if line.startswith("a=mid:")]
    group = f"a=group:BUNDLE {' '.join(mids) if bundle is None else bundle}"
    return sdp(*SESSION, group, *(line for s in sections for line in s))


OPUS = ("a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1")
AUDIO = section("audio", "a", "sendonly", *OPUS, formats="111")
VP8 = (
    "a=rtpmap:96 VP8/90000",
    "a=rtcp-fb:96 nack",
    "a=rtcp-fb:96 nack pli",
    "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
)
VIDEO = section("video", "v", "sendonly", *VP8, formats="96 97")


# --- parsing Chromium's simulcast offer ---------------------------------------------------


def test_chromium_simulcast_offer_session() -> None:
    parsed = offer(SIMULCAST)
    assert parsed.origin == Origin("-", 6099031707633745719, 2, "IN", "IP4", "127.0.0.1")
    assert parsed.bundle == ("0", "1")
    assert not parsed.ice_lite
    assert parsed.ice_ufrag is None and parsed.fingerprints == ()  # all per section
    assert "a=extmap-allow-mixed" in parsed.other_lines
    assert "a=msid-semantic: WMS" in parsed.other_lines
    # Two m-sections, not three: the capture has no receive-only transceiver.
    assert [(m.kind, m.mid, m.direction, m.port) for m in parsed.media] == [
        ("audio", "0", "sendonly", 48915),
        ("video", "1", "sendonly", 42838),
    ]
    for media in parsed.media:
        assert media.protocol == "UDP/TLS/RTP/SAVPF"
        assert media.ice_ufrag == "s1fc"
        assert media.ice_pwd == "YZ9txWZi8bckChqE+RU3qrZn"
        assert media.ice_options == ("trickle",)
        assert media.fingerprints == (
            Fingerprint(
                "sha-256",
                "1B:A4:E6:65:46:D5:3E:38:71:E6:F9:C3:FB:14:62:14:"
                "41:14:11:B6:A0:15:AA:03:7D:56:CB:AB:9E:A9:68:25",
            ),
        )
        assert media.setup == "actpass"
        assert media.rtcp_mux and media.rtcp_rsize and not media.bundle_only
        assert media.candidates[1] == Candidate(
            "1313633353", 1, "tcp", 1518280447, "127.0.0.1", 9, "host", "active"
        )
        assert "a=rtcp-xr:rcvr-rtt=all" in media.other_lines


def test_chromium_simulcast_offer_audio() -> None:
    audio = offer(SIMULCAST).media[0]
    assert audio.extmaps == {1: EXT_AUDIO_LEVEL, 2: EXT_ABS_SEND_TIME, 3: TCC, 4: EXT_MID}
    assert [c.pt for c in audio.codecs] == [111, 63, 9, 0, 8, 13, 110, 126]
    assert audio.codecs[0] == Codec(
        111, "opus", 48000, 2, {"minptime": "10", "useinbandfec": "1"}, ("transport-cc",)
    )
    assert audio.codecs[1] == Codec(63, "red", 48000, 2, {"111/111": ""})
    assert audio.msid == Msid("-", "51b2396c-9136-47fc-9f42-9a2e03663821")
    assert audio.ssrcs == {
        3331060200: {
            "cname": "KXXgwkkwOPDxBbbn",
            "msid": "- 51b2396c-9136-47fc-9f42-9a2e03663821",
        }
    }
    assert audio.candidates[0] == Candidate(
        "2967904477", 1, "udp", 2122260223, "127.0.0.1", 48915, "host"
    )
    assert audio.rids == () and audio.simulcast is None


def test_chromium_simulcast_offer_video() -> None:
    video = offer(SIMULCAST).media[1]
    assert video.rids == (Rid("q", "send"), Rid("h", "send"), Rid("f", "send"))
    assert video.simulcast == Simulcast(
        send=((SimulcastId("q"),), (SimulcastId("h"),), (SimulcastId("f"),))
    )
    ids = {uri: ext_id for ext_id, uri in video.extmaps.items()}
    assert ids[EXT_MID] == 4
    assert ids[EXT_RID] == 10
    assert ids[EXT_REPAIRED_RID] == 11
    assert ids[EXT_ABS_SEND_TIME] == 2
    assert ids[TCC] == 3
    assert EXT_AUDIO_LEVEL not in ids
    codecs = {c.pt: c for c in video.codecs}
    assert codecs[96] == Codec(96, "VP8", 90000, None, {}, VIDEO_FB)
    assert codecs[97] == Codec(97, "rtx", 90000, None, {"apt": "96"})
    single_nal_or_not = {
        c.pt: (c.fmtp["packetization-mode"], c.fmtp["profile-level-id"])
        for c in video.codecs
        if c.name == "H264"
    }
    assert single_nal_or_not == {
        102: ("1", "42001f"),
        104: ("0", "42001f"),
        108: ("1", "42e01f"),
        114: ("0", "42e01f"),
        116: ("1", "4d001f"),
        39: ("0", "4d001f"),
    }
    assert codecs[109].fmtp == {"apt": "108"}
    assert codecs[120] == Codec(120, "ulpfec", 90000)
    # Chromium sends RID simulcast without any SSRC in the offer.
    assert video.ssrcs == {} and video.ssrc_groups == ()
    assert video.msid == Msid("-", "35219405-f24d-4705-8c78-49455ff5abb0")


def test_line_ends_and_blank_lines_do_not_matter() -> None:
    text = fixture(SIMULCAST)
    assert "\r\n" in text
    crlf = parse_sdp(text)
    assert parse_sdp(text.replace("\r\n", "\n")) == crlf
    assert parse_sdp(text.replace("\r\n", "\n\n")) == crlf
    assert parse_sdp(text.rstrip("\r\n")) == crlf


def _order_free(media: MediaDescription) -> MediaDescription:
    """The section with every list whose order follows line order sorted."""
    return replace(
        media,
        codecs=tuple(replace(c, rtcp_fb=tuple(sorted(c.rtcp_fb))) for c in media.codecs),
        rids=tuple(sorted(media.rids, key=lambda rid: rid.id)),
        candidates=tuple(sorted(media.candidates, key=repr)),
        other_lines=tuple(sorted(media.other_lines)),
    )


def _reordered(
    reorder: Callable[[list[str]], None],
) -> tuple[SessionDescription, SessionDescription]:
    """The simulcast fixture parsed as it is and with the lines inside each m-section
    reordered in place by ``reorder``."""
    lines = fixture(SIMULCAST).split("\r\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")] + [len(lines)]
    reordered = lines[: starts[0]]
    for begin, end in itertools.pairwise(starts):
        body = lines[begin + 1 : end]
        reorder(body)
        reordered += [lines[begin], *body]
    return parse_sdp(fixture(SIMULCAST)), parse_sdp("\r\n".join(reordered))


@hsettings
@given(st.randoms(use_true_random=False))
def test_attribute_order_does_not_matter(rng: random.Random) -> None:
    """Shuffle the lines inside each m-section: only the order of lists changes."""
    original, reordered = _reordered(rng.shuffle)
    assert list(map(_order_free, original.media)) == list(map(_order_free, reordered.media))


def test_reordering_reaches_the_parsed_lists() -> None:
    # The property above is not vacuous: the order of lines does show in the lists. (A
    # random shuffle may leave every list's order as it was, so this is checked once here.)
    original, reordered = _reordered(list.reverse)
    assert original.media != reordered.media
    assert list(map(_order_free, original.media)) == list(map(_order_free, reordered.media))


def test_session_level_transport_and_direction_apply_to_sections() -> None:
    text = sdp(
        *SESSION,
        "a=group:BUNDLE 0",
        "a=ice-ufrag:sess",
        "a=ice-pwd:0123456789abcdef012345",
        "a=ice-options:trickle ice2",
        f"a=fingerprint:SHA-256 {FINGERPRINT.value}",
        "a=setup:actpass",
        "a=recvonly",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:0",
        "a=rtcp-mux",
        *OPUS,
    )
    parsed = parse_sdp(text)
    (media,) = parsed.media
    assert parsed.ice_ufrag == media.ice_ufrag == "sess"
    assert media.ice_pwd == "0123456789abcdef012345"
    assert media.ice_options == ("trickle", "ice2")
    assert media.fingerprints == (FINGERPRINT,)  # the algorithm name is lower-cased
    assert media.setup == "actpass"
    assert media.direction == "recvonly"
    assert negotiate(parsed).transport is not None


def test_rarer_but_valid_syntax() -> None:
    text = offer_of(
        section(
            "video",
            "v",
            "sendonly",
            "a=rtpmap:96 VP8/90000",
            "a=rtcp-fb:* nack",
            "a=rtcp-fb:* transport-cc",
            "a=rtcp-fb:096 nack",  # duplicate of the wildcard one: kept once
            "a=extmap:3/sendonly urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=extmap:300 urn:example:too-big-but-unknown",
            "a=rid:1 send pt=96;max-width=1280",
            "a=rid:2 send",
            "a=simulcast:recv 7 send 1,2;~2",
            "a=msid:stream",
            "a=msid:stream2 second",
            "a=ssrc:1 cname:x",
            "a=ssrc:1 foo",
            "a=bundle-only",
            "a=x-unknown:whatever it says",
            "b=AS:2000",
            formats="96",
        )
    ).replace("m=video 9", "m=video 0")
    with pytest.raises(SdpError, match="extension id out of range"):
        parse_sdp(text)
    media = parse_sdp(text.replace("a=extmap:300", "a=extmap:255")).media[0]
    assert media.port == 0 and media.bundle_only
    assert media.codecs == (Codec(96, "VP8", 90000, None, {}, ("nack", "transport-cc")),)
    assert media.extmaps == {3: EXT_MID, 255: "urn:example:too-big-but-unknown"}
    assert media.rids == (Rid("1", "send", {"pt": "96", "max-width": "1280"}), Rid("2", "send"))
    assert media.simulcast == Simulcast(
        send=((SimulcastId("1"), SimulcastId("2")), (SimulcastId("2", paused=True),)),
        recv=((SimulcastId("7"),),),
    )
    assert media.msid == Msid("stream", None)
    assert media.ssrcs == {1: {"cname": "x", "foo": ""}}
    assert "a=msid:stream2 second" in media.other_lines
    assert "a=x-unknown:whatever it says" in media.other_lines
    assert "b=AS:2000" in media.other_lines


def test_more_groups_and_old_simulcast_syntax() -> None:
    text = offer_of(
        section("video", "v", "sendonly", *VP8, "a=rid:1 send", "a=rid:2 send", formats="96 97")
    )
    text = text.replace("a=rtcp-mux", "a=rtcp-mux\r\na=simulcast: send rid=1;2")
    text = text.replace("t=0 0", "t=0 0\r\na=group:LS v\r\na=group:BUNDLE v")
    parsed = parse_sdp(text)
    assert parsed.bundle == ("v",)
    assert parsed.other_lines[-2:] == ("a=group:LS v", "a=group:BUNDLE v")
    (video,) = negotiate(parsed).media
    assert video.rids == (SimulcastId("1"), SimulcastId("2"))


# --- malformed input ----------------------------------------------------------------------

MALFORMED = [
    ("", "empty description"),
    ("o=- 1 1 IN IP4 0.0.0.0\r\n", "line 1: a description starts with v=0"),
    ("v=1\r\n", "starts with v=0"),
    ("v=0\r\ns=-\r\n", "no o= line"),
    ("v=0\r\no=- x 1 IN IP4 0.0.0.0\r\n", "line 2: session id is not a number"),
    ("v=0\r\no=- 1 1 IN IP4\r\n", "o= is not"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nthis is not sdp\r\n", "line 3: not a <type>=<value> line"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nv=0\r\n", "second v= line"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=a\rb\r\n", "CR or NUL"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", "o= must appear once"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=group:BUNDLE 0\r\n", "without an m-section"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=group:BUNDLE 0 0\r\n", "mid listed twice"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "without a=mid"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF\r\n", "m= is not"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 70000 RTP/AVP 0\r\n", "port out of range"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 RTP/AVP 0 0\r\n", "listed twice"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 RTP/AVP opus\r\n", "payload type is not"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 RTP/AVP 200\r\n", "payload type out of"),
]

# Each is appended to a valid audio section (as line 17 of the offer).
MALFORMED_ATTRIBUTES = [
    ("a=mid:b", "second mid"),
    ("a=mid:", "needs a value"),
    ("a=mid: ", "needs a value"),
    ("a=sendrecv", "second direction"),
    ("a=ice-ufrag:bad ufrag", "bad ice-ufrag"),
    ("a=ice-ufrag:good", "second ice-ufrag"),
    ("a=ice-pwd:bad=", "bad ice-pwd"),
    ("a=setup:maybe", "bad setup"),
    ("a=setup:active", "second setup"),
    ("a=fingerprint:sha-256 XY:Z", "bad fingerprint"),
    ("a=rtpmap:111 opus/48000/2", "second rtpmap"),
    ("a=rtpmap:112 opus", "rtpmap is not"),
    ("a=rtpmap:112 opus/fast", "clock rate is not a number"),
    ("a=fmtp:111 x=1", "second fmtp"),
    ("a=fmtp:x y=1", "payload type is not a number"),
    ("a=rtcp-fb:111", "without a feedback type"),
    ("a=extmap:0 urn:x", "extension id out of range"),
    ("a=extmap:1/both urn:x", "bad extmap direction"),
    ("a=extmap:1", "without a URI"),
    ("a=ssrc:4294967296 cname:x", "SSRC out of range"),
    ("a=ssrc:-1 cname:x", "SSRC is not a number"),
    ("a=ssrc-group:FID", "without SSRCs"),
    ("a=rid:q", "rid is not"),
    ("a=rid:q sendrecv", "rid is not"),
    ("a=simulcast:send", "simulcast is not"),
    ("a=simulcast:send q recv", "simulcast is not"),
    ("a=simulcast:send q send h", "bad simulcast direction"),
    ("a=simulcast:send q;;h", "bad rid in simulcast"),
    ("a=msid:a b c", "msid is not"),
    ("a=candidate:1 1 udp 1 127.0.0.1 9 host", "candidate is not"),
    ("a=candidate:1 1 udp 1 127.0.0.1 9 typ host tcptype", "candidate is not"),
    ("a=candidate:1 x udp 1 127.0.0.1 9 typ host", "component is not a number"),
    ("a=candidate:1 1 udp 1 127.0.0.1 99999 typ host", "port out of range"),
    ("a=candidate:1 1 udp 99999999999 127.0.0.1 9 typ host", "priority out of range"),
    ("a=bad name:1", "bad attribute name"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_malformed_descriptions(text: str, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        parse_sdp(text)


@pytest.mark.parametrize(("line", "message"), MALFORMED_ATTRIBUTES)
def test_malformed_attributes_name_their_line(line: str, message: str) -> None:
    text = offer_of(AUDIO)
    assert text.count("\r\n") == 16
    parse_sdp(text)
    with pytest.raises(SdpError, match=message) as caught:
        parse_sdp(text + line)
    assert str(caught.value).startswith("line 17: ")
    assert repr(line) in str(caught.value)


def test_two_sections_with_one_mid() -> None:
    with pytest.raises(SdpError, match=r"m-sections share a mid: \['a'\]"):
        parse_sdp(offer_of(AUDIO, AUDIO, bundle="a"))


def test_oversized_description() -> None:
    with pytest.raises(SdpError, match="longer than"):
        parse_sdp(fixture(SIMULCAST) + "a=x\r\n" * 300_000)


def _mutations(lines: list[str]) -> st.SearchStrategy[str]:
    """Fixture lines, some broken: a cheap way to reach every attribute parser."""
    printable = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=12)
    names = sorted({line.partition(":")[0] for line in lines if line.startswith("a=")})
    line = st.one_of(
        st.sampled_from(lines),
        st.tuples(st.sampled_from(lines), st.integers(0, 120)).map(lambda t: t[0][: t[1]]),
        st.tuples(st.sampled_from(lines), st.integers(0, 120), printable).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
        ),
        st.tuples(st.sampled_from(names), printable).map(lambda t: f"{t[0]}:{t[1]}"),
        st.tuples(st.sampled_from(lines), printable).map(lambda t: t[0].replace(" ", t[1], 1)),
    )
    return st.lists(line, max_size=40).map(lambda body: "\r\n".join([*lines[:2], *body]))


@functools.cache
def fuzz_lines() -> list[str]:
    return [line for name in (SIMULCAST, CAMERA, AIORTC) for line in fixture(name).split("\r\n")]


def _parse_negotiate_answer(text: str) -> None:
    """Whatever parses can be negotiated and answered, or raises SdpError; and our answer
    always parses."""
    try:
        parsed = parse_sdp(text)
        negotiate(parsed)
        answer = build_answer(parsed, chromium_plan(parsed))
    except SdpError:
        return
    parse_sdp(answer)


@hsettings
@given(st.text())
def test_arbitrary_text_parses_or_raises_sdp_error(text: str) -> None:
    _parse_negotiate_answer(text)
    _parse_negotiate_answer("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n" + text)


@settings(hsettings, max_examples=500)
@given(st.deferred(lambda: _mutations(fuzz_lines())))
def test_broken_real_offers_parse_or_raise_sdp_error(text: str) -> None:
    _parse_negotiate_answer(text)


# --- negotiation --------------------------------------------------------------------------


def test_negotiate_chromium_simulcast_offer() -> None:
    negotiation = negotiate(offer(SIMULCAST))
    transport = negotiation.transport
    assert transport is not None
    assert (transport.ice_ufrag, transport.ice_pwd) == ("s1fc", "YZ9txWZi8bckChqE+RU3qrZn")
    assert transport.setup == "actpass" and len(transport.candidates) == 2
    audio, video = negotiation.media
    assert audio.reject_reason is None and video.reject_reason is None
    assert audio.direction == video.direction == "sendonly"
    # Audio: Opus only, offered fmtp kept, only transport-cc feedback.
    assert audio.codecs == (
        NegotiatedCodec(
            Codec(111, "opus", 48000, 2, {"minptime": "10", "useinbandfec": "1"}, ("transport-cc",))
        ),
    )
    assert audio.extensions == {EXT_AUDIO_LEVEL: 1, EXT_ABS_SEND_TIME: 2, TCC: 3, EXT_MID: 4}
    assert audio.ssrcs == (SsrcEncoding(3331060200),) and audio.rids == ()
    # Video: VP8 then the constrained-baseline H264 (108), not the first offered one (102).
    assert [(c.codec.name, c.codec.pt, c.rtx_pt) for c in video.codecs] == [
        ("VP8", 96, 97),
        ("H264", 108, 109),
    ]
    assert video.codecs[1].codec.fmtp == {
        "level-asymmetry-allowed": "1",
        "packetization-mode": "1",
        "profile-level-id": "42e01f",
    }
    assert video.codecs[0].codec.rtcp_fb == VIDEO_FB
    assert video.extensions == {
        EXT_ABS_SEND_TIME: 2,
        TCC: 3,
        EXT_MID: 4,
        EXT_RID: 10,
        EXT_REPAIRED_RID: 11,
    }
    assert video.rids == (SimulcastId("q"), SimulcastId("h"), SimulcastId("f"))
    assert video.ssrcs == ()


def test_negotiate_chromium_camera_offer() -> None:
    parsed = offer(CAMERA)
    negotiation = negotiate(parsed)
    assert [(m.mid, m.kind, m.direction, m.reject_reason) for m in negotiation.media] == [
        ("0", "audio", "sendonly", None),
        ("1", "video", "sendonly", None),
        ("2", "audio", "recvonly", None),
        ("3", "video", "recvonly", None),
        ("4", "video", "recvonly", None),
        ("5", "application", "sendrecv", "data channels are not supported"),
    ]
    audio, video, *receiving, data = negotiation.media
    # Without simulcast Chromium announces the SSRC and, for video, RTX in a FID group.
    assert audio.ssrcs == (SsrcEncoding(4206401284),)
    assert video.ssrcs == (SsrcEncoding(1485828881, 1197922824),)
    assert parsed.media[1].ssrc_groups == (SsrcGroup("FID", (1485828881, 1197922824)),)
    for media in receiving:
        assert media.ssrcs == () and media.rids == ()
    assert [(c.codec.name, c.codec.pt, c.rtx_pt) for c in receiving[1].codecs] == [
        ("VP8", 96, 97),
        ("H264", 108, 109),
    ]
    assert data.codecs == () and data.extensions == {}
    assert negotiation.get("5") == data and negotiation.get("9") is None


def test_negotiate_stopped_transceiver_in_reoffer() -> None:
    negotiation = negotiate(offer(CAMERA_REOFFER))
    reasons = {m.mid: m.reject_reason for m in negotiation.media}
    assert reasons == {
        "0": None,
        "1": None,
        "2": None,
        "3": "port 0 in the offer",
        "4": None,
        "5": "data channels are not supported",  # rejected before, now port 0 as well
    }


def test_codec_preference_is_ours() -> None:
    text = offer_of(
        section(
            "video",
            "v",
            "sendonly",
            "a=rtpmap:100 H264/90000",
            "a=fmtp:100 packetization-mode=1;profile-level-id=42e01f",
            "a=rtpmap:101 rtx/90000",
            "a=fmtp:101 apt=100",
            "a=rtpmap:98 VP9/90000",
            "a=rtpmap:96 vp8/90000",
            formats="100 101 98 96",
        )
    )
    (video,) = negotiate(parse_sdp(text)).media
    assert [(c.codec.name, c.codec.pt, c.rtx_pt) for c in video.codecs] == [
        ("vp8", 96, None),
        ("H264", 100, 101),
    ]


def h264(profile_level_id: str | None, mode: str | None = "1") -> str:
    params = [f"packetization-mode={mode}"] if mode is not None else []
    if profile_level_id is not None:
        params.append(f"profile-level-id={profile_level_id}")
    return ";".join(params) or "x=1"


@pytest.mark.parametrize(
    ("fmtps", "chosen"),
    [
        ([h264("42e01f", mode="0")], None),  # one NAL unit per packet: not for us
        ([h264("42e01f", mode=None)], None),  # mode 0 by default
        ([h264("zzzzzz")], None),
        ([h264(None)], 100),  # Baseline by default
        ([h264("640c1f"), h264(None)], 101),  # Baseline before High
        ([h264("4d001f"), h264("42001f")], 101),  # Baseline before Main
        ([h264("42001f"), h264("42c01f")], 101),  # Constrained Baseline before Baseline
        ([h264("4d801f"), h264("42e01f")], 101),  # 42e0 first of all
        ([h264("42E034"), h264("42e01f")], 100),  # any level, any case; then offer order
        ([h264("42e01f", mode="0"), h264("42001f")], 101),
    ],
)
def test_h264_choice(fmtps: list[str], chosen: int | None) -> None:
    lines = [
        line
        for pt, fmtp in enumerate(fmtps, start=100)
        for line in (f"a=rtpmap:{pt} H264/90000", f"a=fmtp:{pt} {fmtp}")
    ]
    formats = " ".join(str(pt) for pt in range(100, 100 + len(fmtps)))
    media = parse_sdp(offer_of(section("video", "v", "sendonly", *lines, formats=formats)))
    codecs = negotiate_codecs(media.media[0])
    assert [c.codec.pt for c in codecs] == ([] if chosen is None else [chosen])


def test_audio_needs_stereo_opus() -> None:
    for rtpmap in (
        "a=rtpmap:111 opus/48000",
        "a=rtpmap:111 opus/16000/2",
        "a=rtpmap:111 PCMU/8000",
    ):
        media = parse_sdp(offer_of(section("audio", "a", "sendonly", rtpmap, formats="111")))
        assert negotiate_codecs(media.media[0]) == ()
        assert negotiate(media).media[0].reject_reason == "no codec in common"
    upper = parse_sdp(
        offer_of(section("audio", "a", "sendonly", "a=rtpmap:109 OPUS/48000/2", formats="109"))
    )
    assert [c.codec.pt for c in negotiate_codecs(upper.media[0])] == [109]


def test_unsupported_feedback_and_extensions_are_dropped() -> None:
    text = offer_of(
        section(
            "audio",
            "a",
            "sendonly",
            "a=rtpmap:111 opus/48000/2",
            "a=rtcp-fb:111 nack",
            "a=rtcp-fb:111 transport-cc",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=extmap:5 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",  # not for audio
            "a=extmap:6 urn:ietf:params:rtp-hdrext:csrc-audio-level",
            formats="111",
        ),
        section(
            "video",
            "v",
            "sendonly",
            "a=rtpmap:96 VP8/90000",
            "a=rtcp-fb:96 nack rpsi",
            "a=rtcp-fb:96 ccm fir",
            "a=rtcp-fb:96 goog-lntf",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",  # not for video
            "a=extmap:2/sendrecv http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=extmap:7 urn:ietf:params:rtp-hdrext:toffset",
            "a=extmap:8 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid",  # the same URI again: first id
            formats="96",
        ),
    )
    audio, video = parse_sdp(text).media
    assert negotiate_codecs(audio)[0].codec.rtcp_fb == ("transport-cc",)
    assert negotiate_extensions(audio) == {EXT_AUDIO_LEVEL: 1}
    assert negotiate_codecs(video)[0].codec.rtcp_fb == ("ccm fir",)
    assert negotiate_extensions(video) == {EXT_ABS_SEND_TIME: 2, EXT_MID: 8}


def test_rtx_must_point_at_a_chosen_codec() -> None:
    text = offer_of(
        section(
            "video",
            "v",
            "sendonly",
            "a=rtpmap:96 VP8/90000",
            "a=rtpmap:97 rtx/90000",
            "a=fmtp:97 apt=98",
            "a=rtpmap:98 VP9/90000",
            "a=rtpmap:99 rtx/90000",
            "a=fmtp:99 apt=96;rtx-time=3000",
            formats="96 97 98 99",
        )
    )
    assert negotiate_codecs(parse_sdp(text).media[0]) == (
        NegotiatedCodec(Codec(96, "VP8", 90000), rtx_pt=99),
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("a=rtcp-mux", "a=rtcp-mux-only-not"), "no rtcp-mux"),
        (("UDP/TLS/RTP/SAVPF", "RTP/AVP"), "protocol RTP/AVP is not DTLS-SRTP"),
        (("m=audio", "m=text"), "media kind 'text' is not supported"),
        (("m=audio 9", "m=audio 0"), "port 0 in the offer"),
        (("a=group:BUNDLE a", "a=group:BUNDLE"), "not in the BUNDLE group"),
    ],
)
def test_rejection_reasons(change: tuple[str, str], reason: str) -> None:
    (media,) = negotiate(parse_sdp(offer_of(AUDIO).replace(*change))).media
    assert media.reject_reason == reason
    assert media.codecs == () and media.extensions == {}


def test_bundle_only_section_with_port_zero_is_accepted() -> None:
    text = offer_of(AUDIO, (*VIDEO, "a=bundle-only")).replace("m=video 9", "m=video 0")
    assert [m.reject_reason for m in negotiate(parse_sdp(text)).media] == [None, None]


def test_ssrc_signalled_simulcast() -> None:
    text = offer_of(
        section(
            "video",
            "v",
            "sendonly",
            *VP8,
            "a=ssrc-group:SIM 1 2 3",
            "a=ssrc-group:FID 1 11",
            "a=ssrc-group:FID 2 12",
            "a=ssrc-group:FID 3 13",
            *(f"a=ssrc:{ssrc} cname:c" for ssrc in (1, 11, 2, 12, 3, 13)),
            formats="96 97",
        )
    )
    (video,) = negotiate(parse_sdp(text)).media
    assert video.ssrcs == (SsrcEncoding(1, 11), SsrcEncoding(2, 12), SsrcEncoding(3, 13))


def test_simulcast_rids_must_be_declared() -> None:
    lines = ("a=rid:q send", "a=rid:h send", "a=rid:r recv")
    text = offer_of(
        section(
            "video",
            "v",
            "sendonly",
            *VP8,
            *lines,
            "a=simulcast:send x,q;~h;r;q",
            "a=ssrc:5 cname:c",
            formats="96 97",
        )
    )
    (video,) = negotiate(parse_sdp(text)).media
    # x is undeclared, r is a receive RID, q appears twice: one alternative per stream.
    assert video.rids == (SimulcastId("q"), SimulcastId("h", paused=True))
    assert video.ssrcs == ()
    undeclared = text.replace("a=simulcast:send x,q;~h;r;q", "a=simulcast:send x")
    # With no usable RID left, the SSRCs are what the client sends by.
    assert negotiate(parse_sdp(undeclared)).media[0].ssrcs == (SsrcEncoding(5),)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("a=setup:actpass", "a=setup:passive"), "we are always DTLS server"),
        (("a=ice-ufrag:abcd\r\n", ""), "no ICE credentials"),
        (("a=fingerprint:", "a=x-fingerprint:"), "no DTLS fingerprint"),
        (("t=0 0", "t=0 0\r\na=ice-lite"), "ICE-lite too"),
    ],
)
def test_offers_we_cannot_answer(change: tuple[str, str], message: str) -> None:
    parsed = parse_sdp(offer_of(AUDIO).replace(*change))
    with pytest.raises(SdpError, match=message):
        negotiate(parsed)
    plan = replace(chromium_plan(offer(SIMULCAST)), media={"a": MediaPlan(True)})
    with pytest.raises(SdpError, match=message):
        build_answer(parsed, plan)


def test_setup_active_or_absent_is_fine() -> None:
    for change in (("a=setup:actpass", "a=setup:active"), ("a=setup:actpass\r\n", "")):
        transport = negotiate(parse_sdp(offer_of(AUDIO).replace(*change))).transport
        assert transport is not None


def test_no_bundle_no_transport() -> None:
    negotiation = negotiate(parse_sdp(offer_of(AUDIO).replace("a=group:BUNDLE a\r\n", "")))
    assert negotiation.transport is None
    assert negotiation.media[0].reject_reason == "not in the BUNDLE group"


# --- answers ------------------------------------------------------------------------------


def answer_for(text: str, **media: MediaPlan) -> SessionDescription:
    plan = replace(chromium_plan(parse_sdp(text)), media=media)
    return parse_sdp(build_answer(parse_sdp(text), plan))


def test_answer_to_chromium_simulcast_offer() -> None:
    text = build_answer(offer(SIMULCAST), chromium_plan(offer(SIMULCAST)))
    assert text.startswith(
        "v=0\r\no=- 4611686018427387904 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n"
        "a=group:BUNDLE 0 1\r\na=msid-semantic: WMS *\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    )
    assert text.endswith("\r\n") and "\r\n\r\n" not in text and "\n" not in text.replace("\r\n", "")
    answer = parse_sdp(text)
    assert answer.ice_lite and answer.bundle == ("0", "1")
    audio, video = answer.media
    assert (audio.direction, video.direction) == ("recvonly", "recvonly")
    assert [c.pt for c in video.codecs] == [96, 97, 108, 109]
    assert video.formats == ("96", "97", "108", "109")
    # Offer ids kept, unsupported extensions (toffset, playout-delay, ...) dropped.
    assert video.extmaps == {
        2: EXT_ABS_SEND_TIME,
        3: TCC,
        4: EXT_MID,
        10: EXT_RID,
        11: EXT_REPAIRED_RID,
    }
    assert audio.extmaps == {1: EXT_AUDIO_LEVEL, 2: EXT_ABS_SEND_TIME, 3: TCC, 4: EXT_MID}
    assert video.rids == (Rid("q", "recv"), Rid("h", "recv"), Rid("f", "recv"))
    assert video.simulcast == Simulcast(
        recv=((SimulcastId("q"),), (SimulcastId("h"),), (SimulcastId("f"),))
    )
    assert "a=simulcast:recv q;h;f" in text
    for media in answer.media:
        assert media.port == 9 and media.setup == "passive"
        assert (media.ice_ufrag, media.ice_pwd) == ("sfuUfrag", "sfuPasswordsfuPassword1")
        assert media.fingerprints == (FINGERPRINT,)
        assert media.rtcp_mux and media.rtcp_rsize
        assert media.ssrcs == {} and media.msid is None
        assert media.candidates == (
            Candidate("1", 1, "udp", HOST_UDP_PRIORITY, "127.0.0.1", 40000, "host"),
            Candidate("2", 1, "tcp", HOST_TCP_PRIORITY, "127.0.0.1", 40000, "host", "passive"),
        )
        assert media.end_of_candidates


def test_candidate_priorities() -> None:
    assert HOST_UDP_PRIORITY == 2130706431  # RFC 8445's example value for host UDP
    assert HOST_UDP_PRIORITY > HOST_TCP_PRIORITY > 0


def test_paused_rid_is_echoed() -> None:
    text = fixture(SIMULCAST).replace("a=simulcast:send q;h;f", "a=simulcast:send q;~h;f")
    answer = build_answer(parse_sdp(text), chromium_plan(parse_sdp(text)))
    assert "a=simulcast:recv q;~h;f\r\n" in answer
    video = parse_sdp(answer).media[1]
    assert video.rids == (Rid("q", "recv"), Rid("h", "recv"), Rid("f", "recv"))
    assert video.simulcast == Simulcast(
        recv=((SimulcastId("q"),), (SimulcastId("h", paused=True),), (SimulcastId("f"),))
    )


def test_rejected_sections() -> None:
    parsed = offer(CAMERA)
    plan = chromium_plan(parsed)
    media = {**plan.media, "4": MediaPlan(accept=False)}
    del media["2"]  # not in the plan: rejected too
    text = build_answer(parsed, replace(plan, media=media))
    answer = parse_sdp(text)
    assert answer.bundle == ("0", "1", "3")
    for mid in ("2", "4", "5"):
        (rejected,) = [m for m in answer.media if m.mid == mid]
        offered = parsed.get(mid)
        assert offered is not None
        assert rejected.port == 0
        assert rejected.kind == offered.kind and rejected.protocol == offered.protocol
        assert rejected.formats == offered.formats  # RFC 3264 6: the offered formats stay
        assert rejected.candidates == () and rejected.ice_ufrag is None
    assert (
        "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:5\r\n"
        in text
    )


def test_directions_are_reversed() -> None:
    sender = SenderPlan(ssrc=1, rtx_ssrc=2, cname="c", stream_id="s", track_id="t")
    cases: list[tuple[Direction, SenderPlan | None, str]] = [
        ("sendonly", None, "recvonly"),
        ("recvonly", sender, "sendonly"),
        ("recvonly", None, "inactive"),  # nothing to send yet
        ("sendrecv", sender, "sendrecv"),
        ("sendrecv", None, "recvonly"),
        ("inactive", None, "inactive"),
    ]
    for client, ours, expected in cases:
        text = offer_of(section("video", "v", client, *VP8, formats="96 97"))
        (video,) = answer_for(text, v=MediaPlan(True, ours)).media
        assert video.direction == expected, (client, ours)


@pytest.mark.parametrize("client", ["sendonly", "inactive"])
def test_sending_where_the_client_does_not_receive_is_our_mistake(client: str) -> None:
    sender = SenderPlan(ssrc=1, rtx_ssrc=None, cname="c", stream_id="s", track_id="t")
    text = offer_of(section("audio", "a", client, *OPUS, formats="111"))
    with pytest.raises(ValueError, match="the plan sends on mid 'a'"):
        answer_for(text, a=MediaPlan(True, sender))


def test_our_send_sections_carry_ssrcs_msid_and_fid() -> None:
    parsed = offer(CAMERA)
    text = build_answer(parsed, chromium_plan(parsed))
    answer = parse_sdp(text)
    audio_out, video_out = answer.media[2], answer.media[3]
    assert video_out.direction == "sendonly"
    assert video_out.msid == Msid("peer3", "track3")
    assert video_out.ssrc_groups == (SsrcGroup("FID", (1003, 2003)),)
    assert video_out.ssrcs == {
        1003: {"cname": "parta", "msid": "peer3 track3"},
        2003: {"cname": "parta", "msid": "peer3 track3"},
    }
    assert audio_out.ssrc_groups == () and audio_out.ssrcs == {
        1002: {"cname": "parta", "msid": "peer2 track2"}
    }
    # Our sections receive nothing, so no RIDs; the client's own sections carry no SSRC of ours.
    assert video_out.rids == () and answer.media[1].ssrcs == {}
    assert "a=ssrc-group:FID 1003 2003\r\na=ssrc:1003 cname:parta\r\n" in text


def test_no_fid_group_without_negotiated_rtx() -> None:
    sender = SenderPlan(ssrc=1, rtx_ssrc=2, cname="c", stream_id="s", track_id="t")
    text = offer_of(section("video", "v", "recvonly", "a=rtpmap:96 VP8/90000", formats="96"))
    (video,) = answer_for(text, v=MediaPlan(True, sender)).media
    assert video.ssrc_groups == () and list(video.ssrcs) == [1]


def test_plan_mistakes() -> None:
    parsed = offer(CAMERA)
    plan = chromium_plan(parsed)
    with pytest.raises(ValueError, match="mids the offer does not have"):
        build_answer(parsed, replace(plan, media={**plan.media, "9": MediaPlan(True)}))
    with pytest.raises(ValueError, match="mid '5' cannot be accepted: data channels"):
        build_answer(parsed, replace(plan, media={**plan.media, "5": MediaPlan(True)}))
    sender = SenderPlan(ssrc=1, rtx_ssrc=None, cname="c", stream_id="s", track_id="t")
    with pytest.raises(ValueError, match="rejected m-section cannot carry a sender"):
        MediaPlan(False, sender)
    with pytest.raises(ValueError, match="RTX SSRC must differ"):
        SenderPlan(ssrc=1, rtx_ssrc=1, cname="c", stream_id="s", track_id="t")
    with pytest.raises(ValueError, match="SSRC out of range"):
        SenderPlan(ssrc=2**32, rtx_ssrc=None, cname="c", stream_id="s", track_id="t")
    for bad in ("with space", "", "x" * 65, "line\r\nbreak"):
        with pytest.raises(ValueError, match="invalid stream id"):
            SenderPlan(ssrc=1, rtx_ssrc=None, cname="c", stream_id=bad, track_id="t")
    with pytest.raises(ValueError, match="invalid cname"):
        SenderPlan(ssrc=1, rtx_ssrc=None, cname="a b", stream_id="s", track_id="t")
    bad_plans: list[dict[str, Any]] = [
        {"ice_ufrag": "abc"},
        {"ice_ufrag": "abc d"},
        {"ice_pwd": "short"},
        {"address": "localhost"},
        {"port": 0},
        {"session_id": 2**63},
        {"session_version": -1},
    ]
    for changes in bad_plans:
        with pytest.raises(ValueError):
            replace(plan, **changes)
    with pytest.raises(ValueError, match="invalid fingerprint"):
        Fingerprint("sha-256", "not hex")


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        (CAMERA, "chromium-156-camera-answer.sdp"),
        (CAMERA_REOFFER, "chromium-156-camera-reanswer.sdp"),
        (PUBSUB, "chromium-156-pubsub-answer.sdp"),
    ],
)
def test_answers_chromium_accepted_are_reproduced(offered: str, answered: str) -> None:
    parsed = offer(offered)
    assert build_answer(parsed, chromium_plan(parsed)) == fixture(answered)


# --- round trip ---------------------------------------------------------------------------

ICE_CHARS = string.ascii_letters + string.digits + "+/"
ids = st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True)


@st.composite
def senders(draw: st.DrawFn) -> SenderPlan:
    ssrc = draw(st.integers(0, 2**32 - 1))
    rtx = draw(st.none() | st.integers(0, 2**32 - 1).filter(lambda s: s != ssrc))
    return SenderPlan(
        ssrc=ssrc,
        rtx_ssrc=rtx,
        cname=draw(st.from_regex(r"[\x21-\x7e]{1,40}", fullmatch=True)),
        stream_id=draw(ids),
        track_id=draw(ids),
    )


@functools.cache
def round_trip_offers() -> list[str]:
    return [
        *(fixture(name) for name in OFFERS),
        # Sendrecv sections and a paused RID.
        fixture(SIMULCAST)
        .replace("a=simulcast:send q;h;f", "a=simulcast:send q;~h;f")
        .replace("a=sendonly", "a=sendrecv"),
    ]


@st.composite
def offers_and_plans(draw: st.DrawFn) -> tuple[SessionDescription, AnswerPlan]:
    parsed = parse_sdp(draw(st.sampled_from(round_trip_offers())))
    media = {}
    for negotiated in negotiate(parsed).media:
        if negotiated.reject_reason is not None or not draw(st.booleans()):
            if draw(st.booleans()):  # else left out of the plan, which rejects it as well
                media[negotiated.mid] = MediaPlan(accept=False)
            continue
        can_send = negotiated.direction in ("recvonly", "sendrecv")
        sender = draw(st.none() | senders()) if can_send else None
        media[negotiated.mid] = MediaPlan(accept=True, sender=sender)
    digest = draw(st.binary(min_size=32, max_size=32))
    plan = AnswerPlan(
        session_id=draw(st.integers(0, 2**63 - 1)),
        session_version=draw(st.integers(0, 2**63 - 1)),
        ice_ufrag=draw(st.text(ICE_CHARS, min_size=4, max_size=256)),
        ice_pwd=draw(st.text(ICE_CHARS, min_size=22, max_size=256)),
        fingerprint=Fingerprint("sha-256", ":".join(f"{b:02X}" for b in digest)),
        address=str(draw(st.ip_addresses())),
        port=draw(st.integers(1, 65535)),
        media=media,
    )
    return parsed, plan


def expected_direction(client: str, sender: SenderPlan | None) -> str:
    if sender is not None:
        return REVERSED[client]
    return "recvonly" if client in ("sendonly", "sendrecv") else "inactive"


@hsettings
@given(offers_and_plans())
def test_answer_round_trips_what_the_plan_said(case: tuple[SessionDescription, AnswerPlan]) -> None:
    parsed, plan = case
    answer = parse_sdp(build_answer(parsed, plan))
    negotiation = negotiate(parsed)
    accepted = [mid for mid, decision in plan.media.items() if decision.accept]
    assert answer.origin.session_id == plan.session_id
    assert answer.origin.session_version == plan.session_version
    assert answer.ice_lite
    assert answer.bundle == tuple(m.mid for m in parsed.media if m.mid in accepted)
    assert [(m.kind, m.mid) for m in answer.media] == [(m.kind, m.mid) for m in parsed.media]
    for ours, theirs, negotiated in zip(answer.media, parsed.media, negotiation.media, strict=True):
        assert ours.protocol == theirs.protocol
        if ours.mid not in accepted:
            assert (ours.port, ours.formats, ours.candidates) == (0, theirs.formats, ())
            continue
        sender = plan.media[ours.mid].sender
        assert ours.port == 9
        assert (ours.ice_ufrag, ours.ice_pwd) == (plan.ice_ufrag, plan.ice_pwd)
        assert ours.fingerprints == (plan.fingerprint,)
        assert ours.setup == "passive" and ours.rtcp_mux
        assert ours.rtcp_rsize == theirs.rtcp_rsize
        assert ours.direction == expected_direction(theirs.direction, sender)
        assert {uri: ext_id for ext_id, uri in ours.extmaps.items()} == negotiated.extensions
        expected_codecs = []
        for chosen in negotiated.codecs:
            expected_codecs.append(chosen.codec)
            if chosen.rtx_pt is not None:
                rtx_fmtp = {"apt": str(chosen.codec.pt)}
                expected_codecs.append(
                    Codec(chosen.rtx_pt, "rtx", chosen.codec.clock_rate, None, rtx_fmtp)
                )
        assert ours.codecs == tuple(expected_codecs)
        assert tuple(SimulcastId(r.id) for r in ours.rids) == tuple(
            SimulcastId(r.rid) for r in negotiated.rids
        )
        assert all(r.direction == "recv" for r in ours.rids)
        if negotiated.rids:
            assert ours.simulcast == Simulcast(recv=tuple((rid,) for rid in negotiated.rids))
        else:
            assert ours.simulcast is None
        assert ours.candidates == (
            Candidate("1", 1, "udp", HOST_UDP_PRIORITY, plan.address, plan.port, "host"),
            Candidate("2", 1, "tcp", HOST_TCP_PRIORITY, plan.address, plan.port, "host", "passive"),
        )
        if sender is None:
            assert ours.msid is None and ours.ssrcs == {} and ours.ssrc_groups == ()
            continue
        assert ours.msid == Msid(sender.stream_id, sender.track_id)
        rtx_negotiated = any(c.rtx_pt is not None for c in negotiated.codecs)
        with_rtx = sender.rtx_ssrc is not None and rtx_negotiated
        ssrcs = [sender.ssrc]
        if sender.rtx_ssrc is not None and rtx_negotiated:
            ssrcs.append(sender.rtx_ssrc)
        msid = f"{sender.stream_id} {sender.track_id}"
        assert ours.ssrcs == {ssrc: {"cname": sender.cname, "msid": msid} for ssrc in ssrcs}
        assert ours.ssrc_groups == ((SsrcGroup("FID", tuple(ssrcs)),) if with_rtx else ())


# --- aiortc: a real WebRTC stack takes our answers ----------------------------------------


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """aiortc gathers host candidates in setLocalDescription: loopback only, never the
    machine's interfaces (aioice skips loopback by default, hence the patch)."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    yield


@pytest.fixture
async def aiortc_peer(loopback_only: None) -> AsyncIterator[RTCPeerConnection]:
    # No ICE servers: aiortc would otherwise ask a public STUN server.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        yield pc
    finally:
        await pc.close()


async def aiortc_offer(pc: RTCPeerConnection, *transceivers: tuple[str, str]) -> SessionDescription:
    for kind, direction in transceivers:
        pc.addTransceiver(kind, direction=direction)
    await pc.setLocalDescription(await pc.createOffer())
    return parse_sdp(pc.localDescription.sdp)


async def test_aiortc_offer_is_parsed(aiortc_peer: RTCPeerConnection) -> None:
    aiortc_peer.createDataChannel("chat")
    parsed = await aiortc_offer(
        aiortc_peer, ("audio", "sendonly"), ("video", "sendonly"), ("video", "recvonly")
    )
    assert parsed.bundle == ("0", "1", "2", "3")
    assert [(m.kind, m.direction) for m in parsed.media] == [
        ("audio", "sendonly"),
        ("video", "sendonly"),
        ("video", "recvonly"),
        ("application", "sendrecv"),
    ]
    _, video, receiving, data = parsed.media
    # aiortc offers three fingerprints per section; sha-256 is among them.
    assert [f.algorithm for f in video.fingerprints] == ["sha-256", "sha-384", "sha-512"]
    assert all(c.address == "127.0.0.1" and c.transport == "udp" for c in video.candidates)
    assert video.end_of_candidates and video.candidates
    # aiortc announces SSRCs (and a FID group) even on a receive-only section.
    assert len(receiving.ssrc_groups) == 1 and len(receiving.ssrcs) == 2
    assert data.protocol == "UDP/DTLS/SCTP" and data.formats == ("webrtc-datachannel",)
    negotiation = negotiate(parsed)
    assert negotiation.media[2].ssrcs == ()  # ignored: the client does not send there
    assert negotiation.media[1].ssrcs == (SsrcEncoding(*video.ssrc_groups[0].ssrcs),)
    assert [(c.codec.name, c.rtx_pt is not None) for c in negotiation.media[1].codecs] == [
        ("VP8", True),
        ("H264", True),
    ]
    assert negotiation.media[3].reject_reason == "data channels are not supported"


@pytest.mark.parametrize("send_to_client", [True, False])
async def test_aiortc_accepts_our_answer(
    aiortc_peer: RTCPeerConnection, send_to_client: bool
) -> None:
    parsed = await aiortc_offer(
        aiortc_peer,
        ("audio", "sendonly"),
        ("video", "sendonly"),
        ("video", "recvonly"),
        ("audio", "recvonly"),
    )
    plan = chromium_plan(parsed)
    if not send_to_client:
        plan = replace(plan, media={mid: MediaPlan(True) for mid in plan.media})
    tracks: list[str] = []
    aiortc_peer.on("track", lambda track: tracks.append(track.kind))

    await aiortc_peer.setRemoteDescription(
        RTCSessionDescription(sdp=build_answer(parsed, plan), type="answer")
    )

    assert aiortc_peer.signalingState == "stable"
    receiving = "recvonly" if send_to_client else "inactive"
    assert [t.currentDirection for t in aiortc_peer.getTransceivers()] == [
        "sendonly",
        "sendonly",
        receiving,
        receiving,
    ]
    assert tracks == (["video", "audio"] if send_to_client else [])
    assert aiortc_peer.remoteDescription.sdp.count("a=candidate:1 1 udp") == 4
