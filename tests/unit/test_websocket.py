"""Frame-level tests for protocol.websocket, grouped like the Autobahn TestSuite (cases 1-7).

Frames fed to the connections are built by the small independent encoder below, not by
``encode_frame``, so the parser is not only checked against its own writer.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.frames import Opcode as WsOpcode
from websockets.protocol import Protocol as WsProtocol
from websockets.protocol import Side as WsSide

from protocol.websocket import (
    CloseCode,
    CloseReceived,
    Event,
    LocalProtocolError,
    Message,
    Opcode,
    Ping,
    Pong,
    Role,
    State,
    WebSocketConnection,
    encode_close_payload,
    encode_frame,
)

MASK = b"\x37\xfa\x21\x3d"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10

# No example database: the tests must not write into the working tree.
hsettings = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- helpers ------------------------------------------------------------------------------


def xor(data: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
    length: int | None = None,
) -> bytes:
    """Build a frame by hand; ``length`` overrides the declared payload length."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | rsv | opcode
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 1 << 16:
        head = bytes([b0, mbit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, mbit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return head + payload
    return head + mask + xor(payload, mask)


def parse_frames(data: bytes) -> list[tuple[bool, int, bytes]]:
    """Decode frames written by a connection into (fin, opcode, payload)."""
    frames = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert b0 & 0x70 == 0
        n = b1 & 0x7F
        pos += 2
        if n == 126:
            n = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
        elif n == 127:
            n = int.from_bytes(data[pos : pos + 8], "big")
            pos += 8
        if b1 & 0x80:
            mask = data[pos : pos + 4]
            pos += 4
            payload = xor(data[pos : pos + n], mask)
        else:
            payload = data[pos : pos + n]
        assert len(payload) == n, "truncated frame"
        pos += n
        frames.append((bool(b0 & 0x80), b0 & 0x0F, payload))
    return frames


def server(max_message_size: int = 1 << 20) -> WebSocketConnection:
    return WebSocketConnection(Role.SERVER, max_message_size=max_message_size)


def feed(conn: WebSocketConnection, data: bytes, chunk: int | None = None) -> list[Event]:
    """Feed ``data`` whole or in ``chunk``-byte pieces; return all events."""
    if chunk is None:
        conn.receive_data(data)
    else:
        for i in range(0, len(data), chunk):
            conn.receive_data(data[i : i + chunk])
    return conn.events_received()


def sent(conn: WebSocketConnection) -> list[tuple[bool, int, bytes]]:
    return parse_frames(conn.data_to_send())


def close_payload(code: int) -> bytes:
    return code.to_bytes(2, "big")


def assert_failed(conn: WebSocketConnection, code: int) -> list[tuple[bool, int, bytes]]:
    """The connection was failed with ``code``: a close frame is queued, reading stopped."""
    assert conn.close_code == code
    assert conn.state is State.CLOSING
    assert conn.close_expected
    frames = sent(conn)
    fin, opcode, payload = frames[-1]
    assert (fin, opcode) == (True, CLOSE)
    assert payload[:2] == close_payload(code)
    payload[2:].decode("utf-8")  # the reason is valid UTF-8
    # Nothing is read any more, not even a close frame.
    assert feed(conn, frame(PING, b"x") + frame(CLOSE, close_payload(1000))) == []
    assert conn.data_to_send() == b""
    return frames


def assert_open(conn: WebSocketConnection) -> None:
    assert conn.state is State.OPEN
    assert conn.close_code is None
    assert not conn.close_expected


# --- group 1: framing ---------------------------------------------------------------------

SIZES = [0, 125, 126, 127, 128, 65535, 65536]


class TestFraming:
    @pytest.mark.parametrize("size", SIZES)
    def test_text(self, size: int) -> None:
        conn = server()
        text = "*" * size
        assert feed(conn, frame(TEXT, text.encode())) == [Message(text)]
        assert conn.data_to_send() == b""
        assert_open(conn)

    @pytest.mark.parametrize("size", SIZES)
    def test_binary(self, size: int) -> None:
        conn = server()
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        assert feed(conn, frame(BINARY, data)) == [Message(data)]
        assert_open(conn)

    @pytest.mark.parametrize("opcode", [TEXT, BINARY])
    def test_65536_in_chops_of_997(self, opcode: int) -> None:
        # Autobahn 1.1.8 / 1.2.8.
        conn = server()
        payload = b"\xfe" * 65536 if opcode == BINARY else b"*" * 65536
        events = feed(conn, frame(opcode, payload), chunk=997)
        expected = payload if opcode == BINARY else payload.decode()
        assert events == [Message(expected)]

    @pytest.mark.parametrize("size", SIZES)
    def test_client_receives_unmasked(self, size: int) -> None:
        conn = WebSocketConnection(Role.CLIENT)
        data = b"\x01" * size
        assert feed(conn, frame(BINARY, data, mask=None)) == [Message(data)]
        assert_open(conn)

    def test_several_frames_in_one_chunk(self) -> None:
        conn = server()
        data = frame(TEXT, b"a") + frame(BINARY, b"b") + frame(TEXT, b"c" * 300)
        assert feed(conn, data) == [Message("a"), Message(b"b"), Message("c" * 300)]

    def test_non_minimal_length_is_accepted(self) -> None:
        # RFC 6455 asks for the minimal encoding; peers get the benefit of the doubt.
        conn = server()
        head16 = bytes([0x82, 0x80 | 126]) + (3).to_bytes(2, "big") + MASK
        head64 = bytes([0x82, 0x80 | 127]) + (3).to_bytes(8, "big") + MASK
        events = feed(conn, head16 + xor(b"abc", MASK) + head64 + xor(b"def", MASK))
        assert events == [Message(b"abc"), Message(b"def")]

    def test_64_bit_length_with_high_bit_set(self) -> None:
        conn = server()
        head = bytes([0x82, 0x80 | 127]) + (1 << 63).to_bytes(8, "big") + MASK
        assert feed(conn, head) == []
        assert_failed(conn, 1002)

    def test_server_rejects_unmasked_frame(self) -> None:
        conn = server()
        assert feed(conn, frame(TEXT, b"hi", mask=None)) == []
        assert_failed(conn, 1002)

    def test_client_rejects_masked_frame(self) -> None:
        conn = WebSocketConnection(Role.CLIENT)
        assert feed(conn, frame(TEXT, b"hi")) == []
        assert conn.close_code == 1002
        # The client's own close frame is masked.
        raw = conn.data_to_send()
        assert raw[0] == 0x88 and raw[1] & 0x80
        assert parse_frames(raw)[0][2][:2] == close_payload(1002)

    def test_partial_header_is_kept_until_complete(self) -> None:
        conn = server()
        data = frame(BINARY, b"x" * 70000)
        for i in range(13):
            conn.receive_data(data[i : i + 1])
            assert conn.events_received() == []
        conn.receive_data(data[13:])
        assert conn.events_received() == [Message(b"x" * 70000)]


class TestEncodeFrame:
    @pytest.mark.parametrize("size", SIZES)
    def test_unmasked_matches_reference(self, size: int) -> None:
        payload = b"\xab" * size
        assert encode_frame(Opcode.BINARY, payload) == frame(BINARY, payload, mask=None)

    @pytest.mark.parametrize("size", SIZES)
    def test_masked_matches_reference(self, size: int) -> None:
        payload = bytes(range(256)) * (size // 256) + b"\x07" * (size % 256)
        assert encode_frame(Opcode.TEXT, payload, mask=MASK) == frame(TEXT, payload)

    def test_headers(self) -> None:
        assert encode_frame(Opcode.TEXT, b"") == b"\x81\x00"
        assert encode_frame(Opcode.BINARY, b"ab", fin=False) == b"\x02\x02ab"
        assert encode_frame(Opcode.CONTINUATION, b"") == b"\x80\x00"
        assert encode_frame(Opcode.PING, b"", mask=b"\0\0\0\0") == b"\x89\x80\0\0\0\0"
        assert encode_frame(Opcode.BINARY, bytes(126))[:4] == b"\x82\x7e\x00\x7e"
        assert encode_frame(Opcode.BINARY, bytes(65536))[:10] == b"\x82\x7f" + (65536).to_bytes(
            8, "big"
        )

    def test_control_frame_limits(self) -> None:
        encode_frame(Opcode.PING, bytes(125))
        with pytest.raises(LocalProtocolError):
            encode_frame(Opcode.PING, bytes(126))
        with pytest.raises(LocalProtocolError):
            encode_frame(Opcode.CLOSE, b"", fin=False)

    def test_mask_must_be_four_bytes(self) -> None:
        with pytest.raises(LocalProtocolError):
            encode_frame(Opcode.BINARY, b"x", mask=b"abc")

    def test_close_payload(self) -> None:
        assert encode_close_payload(1000) == b"\x03\xe8"
        assert encode_close_payload(4000, "bye") == b"\x0f\xa0bye"
        encode_close_payload(1000, "é" * 61 + "x")  # 123 bytes
        with pytest.raises(LocalProtocolError):
            encode_close_payload(1000, "x" * 124)
        for code in (999, 1005, 1006, 1015, 5000):
            with pytest.raises(LocalProtocolError):
                encode_close_payload(code)


# --- group 2: pings and pongs -------------------------------------------------------------


class TestPingPong:
    @pytest.mark.parametrize(
        "payload",
        [b"", b"Hello, world!", b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", b"*" * 125],
        ids=["empty", "text", "binary", "125"],
    )
    def test_ping_is_answered(self, payload: bytes) -> None:
        conn = server()
        assert feed(conn, frame(PING, payload)) == [Ping(payload)]
        # A server pong is deterministic: compare the exact bytes.
        assert conn.data_to_send() == encode_frame(Opcode.PONG, payload)
        assert_open(conn)

    def test_ping_126_bytes(self) -> None:
        conn = server()
        assert feed(conn, frame(PING, b"*" * 126)) == []
        frames = assert_failed(conn, 1002)
        assert [f[1] for f in frames] == [CLOSE]

    def test_ping_125_bytes_byte_by_byte(self) -> None:
        conn = server()
        assert feed(conn, frame(PING, b"\xfe" * 125), chunk=1) == [Ping(b"\xfe" * 125)]
        assert sent(conn) == [(True, PONG, b"\xfe" * 125)]

    @pytest.mark.parametrize("payload", [b"", b"unsolicited pong payload"])
    def test_unsolicited_pong_is_reported_only(self, payload: bytes) -> None:
        conn = server()
        assert feed(conn, frame(PONG, payload)) == [Pong(payload)]
        assert conn.data_to_send() == b""
        assert_open(conn)

    def test_unsolicited_pong_then_ping(self) -> None:
        conn = server()
        events = feed(conn, frame(PONG, b"unsolicited") + frame(PING, b"ping"))
        assert events == [Pong(b"unsolicited"), Ping(b"ping")]
        assert sent(conn) == [(True, PONG, b"ping")]

    @pytest.mark.parametrize("chunk", [None, 1])
    def test_ten_pings(self, chunk: int | None) -> None:
        conn = server()
        data = b"".join(frame(PING, b"payload-%d" % i) for i in range(10))
        assert feed(conn, data, chunk) == [Ping(b"payload-%d" % i) for i in range(10)]
        assert sent(conn) == [(True, PONG, b"payload-%d" % i) for i in range(10)]

    def test_client_pong_is_masked(self) -> None:
        conn = WebSocketConnection(Role.CLIENT)
        assert feed(conn, frame(PING, b"abc", mask=None)) == [Ping(b"abc")]
        raw = conn.data_to_send()
        assert raw[0] == 0x8A and raw[1] == 0x80 | 3
        assert parse_frames(raw) == [(True, PONG, b"abc")]

    def test_send_ping_and_pong(self) -> None:
        conn = server()
        conn.send_ping(b"p")
        conn.send_pong(b"q")
        assert sent(conn) == [(True, PING, b"p"), (True, PONG, b"q")]
        with pytest.raises(LocalProtocolError):
            conn.send_ping(bytes(126))


# --- group 3: reserved bits ---------------------------------------------------------------


class TestReservedBits:
    def test_rsv1_on_text(self) -> None:
        conn = server()
        assert feed(conn, frame(TEXT, b"Hello, world!", rsv=RSV1)) == []
        assert_failed(conn, 1002)

    def test_rsv2_after_valid_text(self) -> None:
        conn = server()
        data = frame(TEXT, b"Hello, world!") + frame(TEXT, b"Hello, world!", rsv=RSV2)
        assert feed(conn, data) == [Message("Hello, world!")]
        assert_failed(conn, 1002)

    def test_rsv3_then_ping_is_not_answered(self) -> None:
        conn = server()
        data = (
            frame(TEXT, b"Hello, world!")
            + frame(TEXT, b"Hello, world!", rsv=RSV3)
            + frame(PING, b"")
        )
        assert feed(conn, data, chunk=1) == [Message("Hello, world!")]
        frames = assert_failed(conn, 1002)
        assert [f[1] for f in frames] == [CLOSE]

    @pytest.mark.parametrize(
        ("opcode", "rsv"),
        [
            (PING, RSV1 | RSV2),
            (BINARY, RSV1 | RSV3),
            (PING, RSV2 | RSV3),
            (CLOSE, RSV1 | RSV2 | RSV3),
        ],
    )
    def test_combinations(self, opcode: int, rsv: int) -> None:
        conn = server()
        payload = close_payload(1000) if opcode == CLOSE else b"\x00\xff\xfe"
        assert feed(conn, frame(opcode, payload, rsv=rsv)) == []
        frames = assert_failed(conn, 1002)
        assert [f[1] for f in frames] == [CLOSE]

    def test_detected_from_the_first_two_bytes(self) -> None:
        conn = server()
        conn.receive_data(frame(BINARY, b"x" * 1000, rsv=RSV1)[:2])
        assert conn.close_code == 1002


# --- group 4: opcodes ---------------------------------------------------------------------


class TestOpcodes:
    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
    def test_reserved_opcode(self, opcode: int) -> None:
        conn = server()
        assert feed(conn, frame(opcode)) == []
        assert_failed(conn, 1002)

    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
    def test_reserved_opcode_with_payload_between_valid_frames(self, opcode: int) -> None:
        # Autobahn 4.1.3-4.2.5: the text before is delivered, the ping after is ignored.
        conn = server()
        data = frame(TEXT, b"Hello, world!") + frame(opcode, b"\x00\xff") + frame(PING, b"")
        assert feed(conn, data) == [Message("Hello, world!")]
        frames = assert_failed(conn, 1002)
        assert [f[1] for f in frames] == [CLOSE]


# --- group 5: fragmentation ---------------------------------------------------------------


class TestFragmentation:
    @pytest.mark.parametrize("opcode", [PING, PONG, CLOSE])
    def test_fragmented_control_frame(self, opcode: int) -> None:
        conn = server()
        data = frame(opcode, b"frag1", fin=False) + frame(CONT, b"frag2")
        assert feed(conn, data) == []
        assert_failed(conn, 1002)

    @pytest.mark.parametrize("chunk", [None, 1])
    @pytest.mark.parametrize("opcode", [TEXT, BINARY])
    def test_two_fragments(self, opcode: int, chunk: int | None) -> None:
        conn = server()
        data = frame(opcode, b"fragment1", fin=False) + frame(CONT, b"fragment2")
        expected = b"fragment1fragment2"
        assert feed(conn, data, chunk) == [
            Message(expected if opcode == BINARY else expected.decode())
        ]

    @pytest.mark.parametrize("chunk", [None, 1])
    def test_ping_between_fragments(self, chunk: int | None) -> None:
        conn = server()
        data = (
            frame(TEXT, b"fragment1", fin=False)
            + frame(PING, b"ping payload")
            + frame(CONT, b"fragment2")
        )
        assert feed(conn, data, chunk) == [Ping(b"ping payload"), Message("fragment1fragment2")]
        assert sent(conn) == [(True, PONG, b"ping payload")]

    @pytest.mark.parametrize("chunk", [None, 1])
    def test_five_fragments_with_pings_and_pongs(self, chunk: int | None) -> None:
        # Autobahn 5.19/5.20.
        conn = server()
        data = (
            frame(TEXT, b"fragment1", fin=False)
            + frame(CONT, b"fragment2", fin=False)
            + frame(PING, b"pongme 1!")
            + frame(CONT, b"fragment3", fin=False)
            + frame(PONG, b"unsolicited")
            + frame(CONT, b"fragment4", fin=False)
            + frame(PING, b"pongme 2!")
            + frame(CONT, b"fragment5")
        )
        assert feed(conn, data, chunk) == [
            Ping(b"pongme 1!"),
            Pong(b"unsolicited"),
            Ping(b"pongme 2!"),
            Message("fragment1fragment2fragment3fragment4fragment5"),
        ]
        assert sent(conn) == [(True, PONG, b"pongme 1!"), (True, PONG, b"pongme 2!")]

    @pytest.mark.parametrize("fin", [True, False])
    def test_continuation_without_message(self, fin: bool) -> None:
        # Autobahn 5.9-5.14: with fin set or not, and followed by more frames.
        conn = server()
        data = frame(CONT, b"fragment1", fin=fin) + frame(TEXT, b"fragment2")
        assert feed(conn, data) == []
        assert_failed(conn, 1002)

    def test_continuation_after_complete_message(self) -> None:
        # Autobahn 5.15: the first message is delivered before the stray continuation.
        conn = server()
        data = (
            frame(TEXT, b"fragment1", fin=False)
            + frame(CONT, b"fragment2")
            + frame(CONT, b"fragment3", fin=False)
            + frame(TEXT, b"fragment4")
        )
        assert feed(conn, data) == [Message("fragment1fragment2")]
        assert_failed(conn, 1002)

    @pytest.mark.parametrize("second", [TEXT, BINARY])
    def test_new_message_while_fragmented_in_progress(self, second: int) -> None:
        # Autobahn 5.18.
        conn = server()
        data = frame(TEXT, b"fragment1", fin=False) + frame(second, b"fragment2")
        assert feed(conn, data) == []
        assert_failed(conn, 1002)

    def test_empty_fragments(self) -> None:
        # Autobahn 6.1.2/6.1.3.
        conn = server()
        data = frame(TEXT, b"", fin=False) + frame(CONT, b"", fin=False) + frame(CONT, b"")
        assert feed(conn, data) == [Message("")]
        data = frame(TEXT, b"", fin=False) + frame(CONT, b"middle", fin=False) + frame(CONT, b"")
        assert feed(conn, data) == [Message("middle")]

    def test_large_fragmented_binary_streamed(self) -> None:
        conn = server()
        parts = [bytes([i]) * 40000 for i in range(5)]
        data = b"".join(
            frame(BINARY if i == 0 else CONT, p, fin=i == 4) for i, p in enumerate(parts)
        )
        assert feed(conn, data, chunk=4093) == [Message(b"".join(parts))]


# --- group 6: UTF-8 -----------------------------------------------------------------------

VALID_UTF8 = [
    b"",
    "Hello-µ@ßöäüàá-UTF-8!!".encode(),
    "κόσμε".encode(),
    b"\x00",
    b"\xc2\x80",
    b"\xe0\xa0\x80",
    b"\xf0\x90\x80\x80",
    b"\x7f",
    b"\xdf\xbf",
    b"\xef\xbf\xbf",
    b"\xf4\x8f\xbf\xbf",
    b"\xed\x9f\xbf",
    b"\xee\x80\x80",
    b"\xef\xbf\xbd",
    b"\xef\xbf\xbe",  # non-characters are valid UTF-8
    b"\xf0\x9f\xbf\xbe",
]

INVALID_UTF8 = [
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited",
    b"\xf7\xbf\xbf\xbf",
    b"\xf8\x88\x80\x80\x80",
    b"\xfc\x84\x80\x80\x80\x80",
    b"\x80",
    b"\xbf",
    b"\x80\xbf",
    b"\xc0 ",
    b"\xe0 ",
    b"\xf0 ",
    b"\xc2",  # truncated: only wrong once the message ends
    b"\xe0\xa0",
    b"\xf0\x90\x80",
    b"\xfe",
    b"\xff",
    b"\xfe\xfe\xff\xff",
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xc1\xbf",
    b"\xe0\x9f\xbf",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xed\xa0\x80\xed\xb0\x80",
]


class TestUtf8:
    @pytest.mark.parametrize("payload", VALID_UTF8)
    def test_valid_single_frame(self, payload: bytes) -> None:
        conn = server()
        assert feed(conn, frame(TEXT, payload)) == [Message(payload.decode())]

    @pytest.mark.parametrize("payload", VALID_UTF8)
    def test_valid_split_at_every_point(self, payload: bytes) -> None:
        for cut in range(len(payload) + 1):
            conn = server()
            data = frame(TEXT, payload[:cut], fin=False) + frame(CONT, payload[cut:])
            assert feed(conn, data) == [Message(payload.decode())]

    @pytest.mark.parametrize("payload", VALID_UTF8)
    def test_valid_one_byte_per_frame_and_per_chunk(self, payload: bytes) -> None:
        conn = server()
        frames = [payload[i : i + 1] for i in range(len(payload))] or [b""]
        data = b"".join(
            frame(TEXT if i == 0 else CONT, f, fin=i == len(frames) - 1)
            for i, f in enumerate(frames)
        )
        assert feed(conn, data, chunk=1) == [Message(payload.decode())]

    @pytest.mark.parametrize("payload", INVALID_UTF8)
    def test_invalid_single_frame(self, payload: bytes) -> None:
        conn = server()
        assert feed(conn, frame(TEXT, payload)) == []
        assert_failed(conn, 1007)

    @pytest.mark.parametrize("payload", INVALID_UTF8)
    def test_invalid_split_at_every_point(self, payload: bytes) -> None:
        for cut in range(len(payload) + 1):
            conn = server()
            data = frame(TEXT, payload[:cut], fin=False) + frame(CONT, payload[cut:])
            assert feed(conn, data) == []
            assert_failed(conn, 1007)

    @pytest.mark.parametrize("payload", INVALID_UTF8)
    def test_invalid_byte_by_byte(self, payload: bytes) -> None:
        conn = server()
        assert feed(conn, frame(TEXT, payload), chunk=1) == []
        assert_failed(conn, 1007)

    @pytest.mark.parametrize(
        ("prefix", "rest"),
        [
            # Autobahn 6.4.1/6.4.3: fails at the byte after F4, not at the end.
            ("κόσμε".encode() + b"\xf4\x90", b"\x80\x80edited"),
            # Autobahn 6.3.2: a surrogate (ED A0 ..) fails before its third byte.
            ("κόσμε".encode() + b"\xed\xa0", b"\x80edited"),
            (b"ab\xc0", b"\xaf"),
        ],
    )
    def test_fail_fast_within_a_frame(self, prefix: bytes, rest: bytes) -> None:
        conn = server()
        data = frame(TEXT, prefix + rest)
        header_len = len(data) - len(prefix + rest)
        feed(conn, data[: header_len + len(prefix) - 1], chunk=1)
        assert_open(conn)
        conn.receive_data(data[header_len + len(prefix) - 1 : header_len + len(prefix)])
        assert conn.close_code == 1007

    def test_fail_fast_across_fragments(self) -> None:
        # Autobahn 6.4.2: the frame holding the bad byte fails the connection even though
        # the message is not finished.
        conn = server()
        assert feed(conn, frame(TEXT, "κόσμε".encode() + b"\xf4", fin=False)) == []
        assert_open(conn)
        assert feed(conn, frame(CONT, b"\x90", fin=False)) == []
        assert_failed(conn, 1007)

    def test_message_ending_mid_code_point(self) -> None:
        conn = server()
        data = frame(TEXT, b"a", fin=False) + frame(CONT, b"\xe2\x82")
        assert feed(conn, data) == []
        assert_failed(conn, 1007)

    def test_code_point_split_across_frames(self) -> None:
        conn = server()
        data = frame(TEXT, b"\xe2", fin=False) + frame(CONT, b"\x82", fin=False)
        assert feed(conn, data) == []
        assert_open(conn)
        assert feed(conn, frame(CONT, b"\xac")) == [Message("€")]

    def test_binary_is_not_validated(self) -> None:
        conn = server()
        assert feed(conn, frame(BINARY, b"\xff\xfe")) == [Message(b"\xff\xfe")]

    def test_send_text_round_trip(self) -> None:
        conn = server()
        conn.send_text("κόσμε €")
        assert sent(conn) == [(True, TEXT, "κόσμε €".encode())]


# --- group 7: close handling --------------------------------------------------------------

VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
VALID_CLOSE_CODES += [3000, 3999, 4000, 4999]
INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


class TestClose:
    def test_text_then_close(self) -> None:
        conn = server()
        data = frame(TEXT, b"Hello World!") + frame(CLOSE, close_payload(1000))
        assert feed(conn, data) == [Message("Hello World!"), CloseReceived(1000, "")]
        assert conn.data_to_send() == b"\x88\x02\x03\xe8"
        assert conn.state is State.CLOSED
        assert conn.close_code == 1000
        assert conn.close_expected

    @pytest.mark.parametrize(
        "after",
        [
            frame(CLOSE, close_payload(1000)),
            frame(PING, b"Hello World!"),
            frame(TEXT, b"Hello World!"),
            b"\xff\xff garbage",
        ],
        ids=["close", "ping", "text", "garbage"],
    )
    def test_input_after_close_is_ignored(self, after: bytes) -> None:
        # Autobahn 7.1.2-7.1.4.
        conn = server()
        events = feed(conn, frame(CLOSE, close_payload(1000)) + after)
        assert events == [CloseReceived(1000, "")]
        assert conn.data_to_send() == b"\x88\x02\x03\xe8"
        assert feed(conn, after) == []
        assert conn.data_to_send() == b""
        assert conn.state is State.CLOSED

    def test_close_between_fragments(self) -> None:
        # Autobahn 7.1.5: the half message is dropped, the close is honoured.
        conn = server()
        data = (
            frame(TEXT, b"fragment1", fin=False)
            + frame(CLOSE, close_payload(1000))
            + frame(CONT, b"fragment2")
        )
        assert feed(conn, data) == [CloseReceived(1000, "")]
        assert conn.state is State.CLOSED

    def test_close_after_large_message(self) -> None:
        # Autobahn 7.1.6.
        conn = server()
        big = b"BAsd7&jh23" * 26214
        data = frame(TEXT, big) + frame(PING, b"") + frame(CLOSE, close_payload(1000))
        events = feed(conn, data, chunk=65536)
        assert events == [Message(big.decode()), Ping(b""), CloseReceived(1000, "")]
        assert sent(conn) == [(True, PONG, b""), (True, CLOSE, close_payload(1000))]

    def test_close_without_payload(self) -> None:
        conn = server()
        assert feed(conn, frame(CLOSE)) == [CloseReceived(1005, "")]
        assert conn.data_to_send() == b"\x88\x00"
        assert conn.close_code == CloseCode.NO_STATUS
        assert conn.state is State.CLOSED

    def test_close_with_one_byte_payload(self) -> None:
        conn = server()
        assert feed(conn, frame(CLOSE, b"\x03")) == []
        assert_failed(conn, 1002)

    def test_close_with_reason(self) -> None:
        conn = server()
        assert feed(conn, frame(CLOSE, close_payload(1000) + b"Hello World!")) == [
            CloseReceived(1000, "Hello World!")
        ]
        # The code is echoed, the reason is not.
        assert conn.data_to_send() == b"\x88\x02\x03\xe8"
        assert conn.close_reason == "Hello World!"

    def test_close_with_123_byte_reason(self) -> None:
        conn = server()
        reason = "*" * 123
        data = frame(CLOSE, close_payload(1000) + reason.encode())
        assert feed(conn, data) == [CloseReceived(1000, reason)]

    def test_close_with_124_byte_reason(self) -> None:
        conn = server()
        assert feed(conn, frame(CLOSE, close_payload(1000) + b"*" * 124)) == []
        assert_failed(conn, 1002)

    def test_close_with_invalid_utf8_reason(self) -> None:
        conn = server()
        payload = close_payload(1000) + b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
        assert feed(conn, frame(CLOSE, payload)) == []
        assert_failed(conn, 1007)

    @pytest.mark.parametrize("code", VALID_CLOSE_CODES)
    def test_valid_close_code_is_echoed(self, code: int) -> None:
        conn = server()
        assert feed(conn, frame(CLOSE, close_payload(code))) == [CloseReceived(code, "")]
        assert conn.data_to_send() == b"\x88\x02" + close_payload(code)
        assert conn.close_code == code
        assert conn.state is State.CLOSED

    @pytest.mark.parametrize("code", INVALID_CLOSE_CODES)
    def test_invalid_close_code(self, code: int) -> None:
        conn = server()
        assert feed(conn, frame(CLOSE, close_payload(code))) == []
        assert_failed(conn, 1002)

    def test_client_echo_is_masked(self) -> None:
        conn = WebSocketConnection(Role.CLIENT)
        assert feed(conn, frame(CLOSE, close_payload(1001), mask=None)) == [CloseReceived(1001, "")]
        raw = conn.data_to_send()
        assert raw[:2] == b"\x88\x82"
        assert parse_frames(raw) == [(True, CLOSE, close_payload(1001))]


class TestClosingHandshake:
    def test_we_close_first(self) -> None:
        conn = server()
        conn.send_close(1001, "restarting")
        assert conn.data_to_send() == b"\x88\x0c\x03\xe9restarting"
        assert conn.state is State.CLOSING
        assert conn.close_code == 1001
        assert conn.close_reason == "restarting"
        assert not conn.close_expected
        # The peer may still be sending data; it is delivered, pings are not answered.
        assert feed(conn, frame(TEXT, b"late") + frame(PING, b"p")) == [
            Message("late"),
            Ping(b"p"),
        ]
        assert conn.data_to_send() == b""
        assert feed(conn, frame(CLOSE, close_payload(1000))) == [CloseReceived(1000, "")]
        assert conn.data_to_send() == b""  # no second close frame
        assert conn.state is State.CLOSED
        assert conn.close_code == 1001  # ours, since we sent first
        assert conn.close_expected

    def test_sending_after_close_is_a_local_error(self) -> None:
        conn = server()
        conn.send_close()
        for send in (
            lambda: conn.send_text("x"),
            lambda: conn.send_binary(b"x"),
            lambda: conn.send_ping(),
            lambda: conn.send_pong(),
            lambda: conn.send_close(),
        ):
            with pytest.raises(LocalProtocolError):
                send()
        assert conn.data_to_send() == b"\x88\x02\x03\xe8"

    def test_sending_after_peer_close_is_a_local_error(self) -> None:
        conn = server()
        feed(conn, frame(CLOSE, close_payload(1000)))
        with pytest.raises(LocalProtocolError):
            conn.send_text("too late")

    @pytest.mark.parametrize("code", [999, 1005, 1006, 1015, 5000])
    def test_unsendable_close_code(self, code: int) -> None:
        conn = server()
        with pytest.raises(LocalProtocolError):
            conn.send_close(code)
        with pytest.raises(LocalProtocolError):
            conn.fail(code)
        assert_open(conn)
        assert conn.data_to_send() == b""

    def test_fail(self) -> None:
        conn = server()
        conn.fail(1008, "policy")
        assert conn.data_to_send() == b"\x88\x08\x03\xf0policy"
        assert conn.state is State.CLOSING
        assert conn.close_code == 1008
        assert conn.close_expected
        assert feed(conn, frame(CLOSE, close_payload(1000))) == []
        conn.fail(1011)  # no second close frame
        assert conn.data_to_send() == b""

    def test_fail_while_closing_only_stops_reading(self) -> None:
        conn = server()
        conn.send_close()
        conn.data_to_send()
        conn.fail(1011)
        assert conn.data_to_send() == b""
        assert conn.close_code == 1000
        assert conn.close_expected
        assert feed(conn, frame(CLOSE, close_payload(1000))) == []

    def test_fail_after_closed_is_a_no_op(self) -> None:
        conn = server()
        feed(conn, frame(CLOSE, close_payload(1000)))
        conn.data_to_send()
        conn.fail(1011)
        assert conn.data_to_send() == b""
        assert conn.close_code == 1000

    def test_eof_while_open(self) -> None:
        conn = server()
        feed(conn, frame(TEXT, b"partial", fin=False) + frame(CONT, b"x" * 100)[:20])
        conn.receive_data(b"")
        assert conn.state is State.CLOSED
        assert conn.close_code == CloseCode.ABNORMAL
        assert conn.close_expected
        assert conn.events_received() == []
        assert conn.data_to_send() == b""

    def test_eof_after_our_close_keeps_our_code(self) -> None:
        conn = server()
        conn.send_close(1001)
        conn.receive_data(b"")
        assert conn.state is State.CLOSED
        assert conn.close_code == 1001

    def test_eof_after_failure(self) -> None:
        conn = server()
        feed(conn, frame(TEXT, b"x", rsv=RSV1))
        conn.receive_data(b"")
        assert conn.state is State.CLOSED
        assert conn.close_code == 1002

    def test_data_after_eof_is_a_local_error(self) -> None:
        conn = server()
        conn.receive_data(b"")
        conn.receive_data(b"")  # repeated EOF is harmless
        with pytest.raises(LocalProtocolError):
            conn.receive_data(b"x")


# --- message size limit -------------------------------------------------------------------


class TestMessageSize:
    @pytest.mark.parametrize("opcode", [TEXT, BINARY])
    def test_exactly_the_limit(self, opcode: int) -> None:
        conn = server(max_message_size=1000)
        events = feed(conn, frame(opcode, b"a" * 1000))
        assert events == [Message(b"a" * 1000 if opcode == BINARY else "a" * 1000)]

    @pytest.mark.parametrize("length", [1001, 65536, 1 << 40])
    def test_frame_too_big_detected_from_header(self, length: int) -> None:
        conn = server(max_message_size=1000)
        header = frame(BINARY, b"", length=length)  # header only: no payload is sent
        assert feed(conn, header) == []
        assert_failed(conn, 1009)

    def test_fragments_too_big(self) -> None:
        conn = server(max_message_size=1000)
        data = frame(TEXT, b"a" * 600, fin=False) + frame(CONT, b"a" * 400, fin=False)
        assert feed(conn, data) == []
        assert_open(conn)
        assert feed(conn, frame(CONT, b"", length=1)) == []
        assert_failed(conn, 1009)

    def test_limit_is_per_message(self) -> None:
        conn = server(max_message_size=1000)
        data = frame(BINARY, b"a" * 1000) * 3
        assert feed(conn, data, chunk=333) == [Message(b"a" * 1000)] * 3

    def test_control_frames_are_not_limited(self) -> None:
        conn = server(max_message_size=10)
        assert feed(conn, frame(PING, b"p" * 100)) == [Ping(b"p" * 100)]

    def test_negative_limit(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            server(max_message_size=-1)


# --- chunking -----------------------------------------------------------------------------

MIXED_STREAM = (
    frame(TEXT, "Grüße ".encode() + b"\xe2", fin=False)
    + frame(PING, b"keepalive")
    + frame(CONT, b"\x82\xac!")
    + frame(BINARY, bytes(range(200)))
    + frame(PONG, b"late pong")
    + frame(BINARY, b"\x00" * 300, fin=False)
    + frame(CONT, b"\x01" * 70000)
    + frame(TEXT, b"")
    + frame(CLOSE, close_payload(1000) + b"done")
)


def test_byte_by_byte_equals_one_chunk() -> None:
    whole = server()
    events = feed(whole, MIXED_STREAM)
    assert events == [
        Ping(b"keepalive"),
        Message("Grüße €!"),
        Message(bytes(range(200))),
        Pong(b"late pong"),
        Message(b"\x00" * 300 + b"\x01" * 70000),
        Message(""),
        CloseReceived(1000, "done"),
    ]
    output = whole.data_to_send()
    for chunk in (1, 2, 3, 7, 13, 1000):
        split = server()
        assert feed(split, MIXED_STREAM, chunk) == events
        assert split.data_to_send() == output
        assert split.state is State.CLOSED


def test_bytearray_and_memoryview_input_are_copied() -> None:
    conn = server()
    buf = bytearray(frame(BINARY, b"abc"))
    conn.receive_data(memoryview(buf))  # type: ignore[arg-type]
    buf[:] = bytes(len(buf))  # the shell reuses its buffer
    assert conn.events_received() == [Message(b"abc")]


def test_events_and_output_are_cleared() -> None:
    conn = server()
    feed(conn, frame(PING, b"x"))
    assert conn.events_received() == []
    assert conn.data_to_send() != b""
    assert conn.data_to_send() == b""


# --- property tests -----------------------------------------------------------------------

messages_st = st.lists(
    st.one_of(st.binary(max_size=300), st.text(max_size=100)),
    max_size=10,
)


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary points into non-empty chunks."""
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=20))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def deliver(conn: WebSocketConnection, chunks: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        events += conn.events_received()
    return events


@hsettings
@given(messages=messages_st, data=st.data())
def test_client_to_server_round_trip(messages: list[bytes | str], data: st.DataObject) -> None:
    client = WebSocketConnection(Role.CLIENT)
    for m in messages:
        if isinstance(m, str):
            client.send_text(m)
        else:
            client.send_binary(m)
    stream = client.data_to_send()
    srv = server()
    assert deliver(srv, data.draw(chunked(stream))) == [Message(m) for m in messages]
    assert_open(srv)
    assert srv.data_to_send() == b""


@hsettings
@given(messages=messages_st, data=st.data())
def test_server_to_client_round_trip(messages: list[bytes | str], data: st.DataObject) -> None:
    srv = server()
    for m in messages:
        if isinstance(m, str):
            srv.send_text(m)
        else:
            srv.send_binary(m)
    srv.send_close(1000, "bye")
    stream = srv.data_to_send()
    client = WebSocketConnection(Role.CLIENT)
    events = deliver(client, data.draw(chunked(stream)))
    assert events == [*(Message(m) for m in messages), CloseReceived(1000, "bye")]
    assert client.state is State.CLOSED
    assert parse_frames(client.data_to_send()) == [(True, CLOSE, close_payload(1000))]


@st.composite
def fragmented_stream(draw: st.DrawFn) -> tuple[bytes, list[Event]]:
    """Messages split into random fragments with pings between them, masked by the client."""
    stream = b""
    expected: list[Event] = []
    for message in draw(messages_st):
        raw = message.encode() if isinstance(message, str) else message
        cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=4)))
        bounds = [0, *cuts, len(raw)]
        pieces = [raw[a:b] for a, b in itertools.pairwise(bounds)]
        pings: list[Event] = []
        for i, piece in enumerate(pieces):
            opcode = (TEXT if isinstance(message, str) else BINARY) if i == 0 else CONT
            mask = draw(st.binary(min_size=4, max_size=4))
            stream += frame(opcode, piece, fin=i == len(pieces) - 1, mask=mask)
            if i < len(pieces) - 1 and draw(st.booleans()):
                payload = draw(st.binary(max_size=125))
                stream += frame(PING, payload, mask=mask)
                pings.append(Ping(payload))
        expected += [*pings, Message(message)]
    return stream, expected


@hsettings
@given(case=fragmented_stream(), data=st.data())
def test_fragmented_messages_with_interleaved_pings(
    case: tuple[bytes, list[Event]], data: st.DataObject
) -> None:
    stream, expected = case
    srv = server()
    assert deliver(srv, data.draw(chunked(stream))) == expected
    pongs = [Ping(p) for _, op, p in parse_frames(srv.data_to_send()) if op == PONG]
    assert pongs == [e for e in expected if isinstance(e, Ping)]


def check_never_raises_outcome(conn: WebSocketConnection, events: list[Event]) -> None:
    closes = [e for e in events if isinstance(e, CloseReceived)]
    if closes:
        assert len(closes) == 1
        assert events[-1] == closes[0]
        assert conn.close_code == closes[0].code
        assert conn.state is State.CLOSED
    elif conn.close_code is not None:
        assert conn.close_code in {1002, 1007, 1009}
        assert conn.state is State.CLOSING
    else:
        assert_open(conn)
    # Whatever happened, the output is well-formed server frames.
    frames = parse_frames(conn.data_to_send())
    assert all(op in (PONG, CLOSE) for _, op, _ in frames)
    assert all(op == PONG for _, op, _ in frames[:-1])


@hsettings
@given(chunks=st.lists(st.binary(min_size=1, max_size=64), max_size=8))
def test_arbitrary_bytes_never_raise(chunks: list[bytes]) -> None:
    conn = server(max_message_size=256)
    check_never_raises_outcome(conn, deliver(conn, chunks))


@st.composite
def random_frames(draw: st.DrawFn) -> bytes:
    """Frames with random header bits, lengths and payloads: deeper than raw noise."""
    stream = b""
    for _ in range(draw(st.integers(1, 6))):
        # Mostly plausible first bytes, sometimes anything (reserved bits and opcodes).
        plausible = st.sampled_from([0x81, 0x82, 0x01, 0x80, 0x00, 0x88, 0x89, 0x8A])
        b0 = draw(st.one_of(plausible, plausible, plausible, st.integers(0, 255)))
        payload = draw(
            st.one_of(
                st.binary(max_size=200),
                st.text(max_size=50).map(str.encode),
                st.tuples(st.integers(0, 5100), st.binary(max_size=10)).map(
                    lambda t: t[0].to_bytes(2, "big") + t[1]
                ),
            )
        )
        masked = draw(st.integers(0, 9)) > 0
        length = draw(st.one_of(st.none(), st.integers(0, (1 << 64) - 1)))
        head = frame(
            b0 & 0x0F,
            payload,
            fin=bool(b0 & 0x80),
            rsv=b0 & 0x70,
            mask=MASK if masked else None,
            length=length,
        )
        stream += head
    return stream


@hsettings
@given(data=st.data())
def test_random_frames_never_raise(data: st.DataObject) -> None:
    stream = data.draw(random_frames())
    conn = server(max_message_size=256)
    check_never_raises_outcome(conn, deliver(conn, data.draw(chunked(stream))))


# --- interoperability with the `websockets` library's sans-IO protocol --------------------


def ws_peer(our_role: Role) -> WsProtocol:
    side = WsSide.CLIENT if our_role is Role.SERVER else WsSide.SERVER
    return WsProtocol(side, max_size=None)


@pytest.mark.parametrize("our_role", [Role.SERVER, Role.CLIENT])
def test_interop_library_sends(our_role: Role) -> None:
    ws = ws_peer(our_role)
    ours = WebSocketConnection(our_role)
    big = bytes(range(256)) * 300
    ws.send_text("Привет, ".encode(), fin=False)
    ws.send_ping(b"are you there")
    ws.send_continuation("класс!".encode(), fin=True)
    ws.send_binary(big)
    ws.send_close(1001, "bye")
    stream = b"".join(ws.data_to_send())
    assert feed(ours, stream, chunk=1000) == [
        Ping(b"are you there"),
        Message("Привет, класс!"),
        Message(big),
        CloseReceived(1001, "bye"),
    ]
    ws.receive_data(ours.data_to_send())
    assert [(f.opcode, f.data) for f in ws.events_received()] == [
        (WsOpcode.PONG, b"are you there"),
        (WsOpcode.CLOSE, close_payload(1001)),
    ]
    assert ours.state is State.CLOSED


@pytest.mark.parametrize("our_role", [Role.SERVER, Role.CLIENT])
def test_interop_we_send(our_role: Role) -> None:
    ws = ws_peer(our_role)
    ours = WebSocketConnection(our_role)
    big = b"\x00\xff" * 40000
    ours.send_text("κόσμε")
    ours.send_binary(big)
    ours.send_ping(b"p")
    ours.send_close(1000, "done")
    ws.receive_data(ours.data_to_send())
    assert [(f.opcode, f.data) for f in ws.events_received()] == [
        (WsOpcode.TEXT, "κόσμε".encode()),
        (WsOpcode.BINARY, big),
        (WsOpcode.PING, b"p"),
        (WsOpcode.CLOSE, encode_close_payload(1000, "done")),
    ]
    # The library answers the ping and echoes the close; that completes our handshake.
    assert feed(ours, b"".join(ws.data_to_send())) == [Pong(b"p"), CloseReceived(1000, "done")]
    assert ours.state is State.CLOSED
    assert ours.close_code == 1000
