"""How a worker sends a UDP packet: in batches of one ``sendmmsg`` per turn of the loop
(or one ``sendto`` each), through the transport's queue when the socket buffer is full, and
never raising on a peer that went away."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator
from typing import Any

from sfu.udp_batch import UdpBatch, sendmmsg_available
from sfu.worker import udp_sender

ADDR = ("127.0.0.1", 5004)


class Socket:
    """A socket whose ``sendto`` fails with ``error`` (once set)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.error: OSError | None = None

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        if self.error is not None:
            raise self.error
        self.sent.append((data, addr))
        return len(data)


def test_a_packet_goes_to_the_socket_and_waits_in_the_transport_when_it_is_full() -> None:
    sock = Socket()
    queued: list[tuple[bytes, tuple[str, int]]] = []
    send = udp_sender(sock.sendto, lambda data, addr: queued.append((data, addr)), ADDR)
    send(b"first")
    sock.error = BlockingIOError(errno.EAGAIN, "full")
    send(b"second")
    assert sock.sent == [(b"first", ADDR)]
    assert queued == [(b"second", ADDR)]


def test_an_unreachable_peer_costs_the_packet_not_the_worker() -> None:
    sock = Socket()
    queued: list[tuple[bytes, tuple[str, int]]] = []
    send = udp_sender(sock.sendto, lambda data, addr: queued.append((data, addr)), ADDR)
    sock.error = OSError(errno.ENETUNREACH, "unreachable")
    send(b"lost")
    assert sock.sent == [] and queued == []


class Receiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.append(data)


@contextlib.asynccontextmanager
async def endpoint(protocol: asyncio.DatagramProtocol) -> AsyncIterator[tuple[Any, Any]]:
    """A UDP endpoint on loopback: its transport and address."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: protocol, local_addr=("127.0.0.1", 0)
    )
    try:
        yield transport, transport.get_extra_info("sockname")
    finally:
        transport.close()


async def test_a_turn_of_the_loop_sends_its_datagrams_together_each_to_its_address() -> None:
    assert sendmmsg_available()  # Linux
    receivers = [Receiver() for _ in range(3)]
    async with contextlib.AsyncExitStack() as stack:
        sender, _ = await stack.enter_async_context(endpoint(asyncio.DatagramProtocol()))
        addrs = [(await stack.enter_async_context(endpoint(r)))[1] for r in receivers]
        batch = UdpBatch(sender.get_extra_info("socket"), sender, asyncio.get_running_loop())
        sends = [batch.sender(addr) for addr in addrs]
        buffer = bytearray(1200)
        for round_ in range(100):  # more than a batch holds: it goes out when full
            for index, send in enumerate(sends):
                buffer[:4] = bytes((index, round_, 0xAB, 0xCD))
                send(memoryview(buffer))  # the buffer is written again right after: copied
        sends[0](b"last")
        assert batch.datagrams < 301  # not before the end of the turn
        await asyncio.sleep(0.05)
        assert (batch.datagrams, batch.batches) == (301, 3)
        for index, receiver in enumerate(receivers):
            expected = [bytes((index, r, 0xAB, 0xCD)) + bytes(1196) for r in range(100)]
            assert receiver.got == expected + ([b"last"] if index == 0 else [])


class Transport:
    """A transport that is still writing what it queued (or not), as a socket's stand-in."""

    def __init__(self, pending: int) -> None:
        self.pending = pending
        self.queued: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queued.append((data, addr))

    def get_write_buffer_size(self) -> int:
        return self.pending


async def test_while_the_transport_holds_datagrams_new_ones_wait_behind_them() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    transport = Transport(pending=1)
    batch = UdpBatch(sock, transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    send = batch.sender(ADDR)
    buffer = bytearray(b"one")
    send(memoryview(buffer))
    buffer[:] = b"two"
    send(memoryview(buffer))
    batch.flush()
    assert transport.queued == [(b"one", ADDR), (b"two", ADDR)]
    sock.close()


async def test_a_datagram_the_kernel_refuses_is_dropped_and_the_rest_still_go() -> None:
    receiver = Receiver()
    async with endpoint(asyncio.DatagramProtocol()) as (sender, _), endpoint(receiver) as (_, addr):
        batch = UdpBatch(sender.get_extra_info("socket"), sender, asyncio.get_running_loop())
        batch.sender(addr)(b"before")
        batch.sender(("255.255.255.255", 9))(b"broadcast")  # EACCES: no SO_BROADCAST
        batch.sender(addr)(b"after")
        batch.flush()
        await asyncio.sleep(0.05)
        assert receiver.got == [b"before", b"after"]
