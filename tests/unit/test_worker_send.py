"""How a worker sends a UDP packet: straight to the socket, through the transport's queue
when the socket buffer is full, and never raising on a peer that went away."""

from __future__ import annotations

import errno

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
