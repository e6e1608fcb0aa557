"""The fan-out loop: one chat event written to N members (the server's per-delivery work
in Python, with transports that only count, so the kernel's share is left out).

Run: uv run pytest bench/micro/test_fanout.py --benchmark-enable --benchmark-only
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from protocol.messages import Event
from server.bus.local import LocalBus


class CountingTransport:
    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)


class Member:
    __slots__ = ("account_id", "paused_since", "subscribed", "syncing", "transport")

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.subscribed: list[int] = []
        self.syncing = None
        self.paused_since = 0.0
        self.transport = CountingTransport()

    def deliver(self, chat_id: int, seq: int, frame: bytes) -> None:
        raise AssertionError("not resuming")

    def send_frame(self, frame: bytes) -> None:
        raise AssertionError("no direct frames here")

    def check_backlog(self) -> None:
        pass


class ImmediateTick:
    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []

    def at_tail(self, flush: Callable[[], None]) -> None:
        self.pending.append(flush)

    def run(self) -> None:
        pending, self.pending = self.pending, []
        for flush in pending:
            flush()


@pytest.mark.parametrize("members", [5000])
def test_fan_out_one_event(benchmark: BenchmarkFixture, members: int) -> None:
    tick = ImmediateTick()
    bus = LocalBus(tick)
    conns = [Member(i + 1) for i in range(members)]
    for conn in conns:
        bus.subscribe(conn, [1])  # type: ignore[arg-type]
    event = Event(chat_id=1, seq=1, kind="message", actor_id=1, at=0, client_id="c", text="x" * 200)

    def publish() -> None:
        bus.chat_event(event)
        tick.run()

    benchmark(publish)
    assert all(c.transport.bytes > 0 for c in conns)
