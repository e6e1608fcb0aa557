"""Micro-benchmarks of the WebSocket codec's hot paths (pytest-benchmark).

Run: uv run pytest bench/micro/test_websocket_frames.py --benchmark-only
"""

from __future__ import annotations

from pytest_benchmark.fixture import BenchmarkFixture

from protocol.websocket import Event, Message, Opcode, Role, WebSocketConnection, encode_frame

MASK = b"\x37\xfa\x21\x3d"
PAYLOAD_200 = bytes(range(200))
PAYLOAD_64K = bytes(range(256)) * 256
TEXT_200 = "Привет, класс! " * 7 + "Урок в 10:00."  # 26 * 7 + 18 = 200 bytes of UTF-8


def _parse(conn: WebSocketConnection, data: bytes) -> list[Event]:
    conn.receive_data(data)
    return conn.events_received()


def test_encode_server_binary_200(benchmark: BenchmarkFixture) -> None:
    # Fan-out: the server encodes an event once and writes it to every recipient.
    frame = benchmark(encode_frame, Opcode.BINARY, PAYLOAD_200)
    assert frame == b"\x82\x7e\x00\xc8" + PAYLOAD_200


def test_parse_masked_client_binary_200(benchmark: BenchmarkFixture) -> None:
    conn = WebSocketConnection(Role.SERVER)
    data = encode_frame(Opcode.BINARY, PAYLOAD_200, mask=MASK)
    assert benchmark(_parse, conn, data) == [Message(PAYLOAD_200)]


def test_parse_masked_client_text_200(benchmark: BenchmarkFixture) -> None:
    # The binary case above plus UTF-8 validation.
    assert len(TEXT_200.encode()) == 200
    conn = WebSocketConnection(Role.SERVER)
    data = encode_frame(Opcode.TEXT, TEXT_200.encode(), mask=MASK)
    assert benchmark(_parse, conn, data) == [Message(TEXT_200)]


def test_parse_masked_client_binary_64k(benchmark: BenchmarkFixture) -> None:
    conn = WebSocketConnection(Role.SERVER)
    data = encode_frame(Opcode.BINARY, PAYLOAD_64K, mask=MASK)
    assert benchmark(_parse, conn, data) == [Message(PAYLOAD_64K)]
