"""A worker's outgoing UDP datagrams, sent in batches: one ``sendmmsg`` per turn of the loop.

A forwarded packet used to be one ``sendto``: a system call, the address tuple parsed again
and the protected packet copied into a new ``bytes`` first. On Linux ``sendmmsg(2)`` sends
many datagrams, each to its own address, in one call. Each datagram is copied into a slot
allocated once (the SRTP send buffer it comes from is reused by the next packet) with
its destination's address, built once per destination; the batch goes out when its slots
are full or at the end of the loop's turn (``call_soon`` when a batch starts), so a packet
waits at most for the rest of the datagrams the loop read in that turn.

When the socket would block, what is left goes to the transport, which keeps it and writes
when the socket drains (as its ``sendto`` does); while it holds anything, batches go there
too, so that nothing overtakes what waits. Other errors drop that one datagram, like the
transport's ``error_received``.

``sendmmsg`` comes from the C library through cffi's ABI mode (no compiler); where it is
missing (``sendmmsg_available()`` says so), the worker sends each datagram with ``sendto``.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Callable
from typing import Any, Final

from cffi import FFI  # type: ignore[import-untyped]

__all__ = ["SLOT", "UdpBatch", "sendmmsg_available"]

_ffi = FFI()
_ffi.cdef(
    """
    struct iovec { void *iov_base; size_t iov_len; };
    struct msghdr {
        void *msg_name; unsigned int msg_namelen; struct iovec *msg_iov; size_t msg_iovlen;
        void *msg_control; size_t msg_controllen; int msg_flags;
    };
    struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };
    int sendmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen, int flags);
    """
)
_libc: Any = _ffi.dlopen(None)

# The largest datagram a slot holds: an SRTP packet of ``sfu.srtp.MAX_PACKET`` bytes with
# its trailer, rounded up.
SLOT: Final = 1664
_SLOTS: Final = 128  # ~1,600 forwarded packets a second per ms of a turn; 208 KiB

# struct sockaddr_in: the family in the machine's order, the port and address in network
# order, eight bytes of zeros.
_SOCKADDR_IN: Final = struct.Struct("=H2s4s8x")
# The two fields set per datagram, the iovec's length and the message's address, are
# written through views of the C arrays as machine words: an item assignment, where cffi's
# attribute access makes a cdata object per level.
_WORD: Final = _ffi.sizeof("void *")
assert _ffi.sizeof("size_t") == _WORD
_IOV_WORDS: Final = _ffi.sizeof("struct iovec") // _WORD
_LEN_WORD: Final = _ffi.offsetof("struct iovec", "iov_len") // _WORD
_MSG_WORDS: Final = _ffi.sizeof("struct mmsghdr") // _WORD
_NAME_WORD: Final = _ffi.offsetof("struct msghdr", "msg_name") // _WORD

# (address tuple, its sockaddr): holding the sockaddr keeps that memory alive while a
# datagram to it waits, even if its peer is gone by then.
_Destination = tuple[tuple[str, int], Any]


def sendmmsg_available() -> bool:
    try:
        _libc.sendmmsg  # noqa: B018 - a missing symbol raises on access
    except AttributeError:
        return False
    return True


class UdpBatch:
    """Datagrams for one UDP socket, sent together. ``sender(addr)`` makes the send
    function of one destination."""

    __slots__ = (
        "_buffers",
        "_call_soon",
        "_destinations",
        "_fd",
        "_iov",
        "_iov_words",
        "_msg_words",
        "_msgs",
        "_pending",
        "_queue",
        "_view",
        "batches",
        "datagrams",
    )

    def __init__(
        self,
        sock: socket.socket,
        transport: asyncio.DatagramTransport,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._fd = sock.fileno()
        self._queue: Callable[[bytes, tuple[str, int]], None] = transport.sendto
        self._pending = transport.get_write_buffer_size  # type: ignore[attr-defined]
        self._call_soon = loop.call_soon
        self._buffers = _ffi.new("char[]", _SLOTS * SLOT)
        self._view = memoryview(_ffi.buffer(self._buffers))
        self._iov = _ffi.new("struct iovec[]", _SLOTS)
        self._msgs = _ffi.new("struct mmsghdr[]", _SLOTS)
        self._iov_words = memoryview(_ffi.buffer(self._iov)).cast("P")
        self._msg_words = memoryview(_ffi.buffer(self._msgs)).cast("P")
        for index in range(_SLOTS):
            self._iov[index].iov_base = self._buffers + index * SLOT
            header = self._msgs[index].msg_hdr
            header.msg_iov = self._iov + index
            header.msg_iovlen = 1
            header.msg_namelen = _SOCKADDR_IN.size
        # Where each queued datagram goes, in slot order.
        self._destinations: list[_Destination] = []
        self.batches = 0
        self.datagrams = 0

    def sender(self, addr: tuple[str, int]) -> Callable[[bytes | memoryview], None]:
        """The send function of one destination (an IPv4 address: the worker's socket).

        It queues a copy of the datagram (``data`` may be a buffer about to be reused): the
        per-packet path, so it does the work itself rather than call a method."""
        host, port = addr[:2]
        sockaddr = _SOCKADDR_IN.pack(
            socket.AF_INET, port.to_bytes(2, "big"), socket.inet_aton(host)
        )
        name = _ffi.new("char[]", sockaddr)
        destination = (addr, name)
        pointer = int(_ffi.cast("uintptr_t", name))
        destinations = self._destinations
        view = self._view
        iov_words = self._iov_words
        msg_words = self._msg_words
        flush = self.flush
        call_soon = self._call_soon

        def send(data: bytes | memoryview) -> None:
            count = len(destinations)
            if count == _SLOTS:
                flush()  # the flush that comes at the end of this turn is already due
                count = 0
            elif not count:
                call_soon(flush)  # a new batch: it leaves at the end of this turn at the latest
            size = len(data)
            start = count * SLOT
            view[start : start + size] = data
            iov_words[count * _IOV_WORDS + _LEN_WORD] = size
            msg_words[count * _MSG_WORDS + _NAME_WORD] = pointer
            destinations.append(destination)

        return send

    def flush(self) -> None:
        """Send what is queued."""
        destinations = self._destinations
        count = len(destinations)
        if not count:
            return
        self.batches += 1
        self.datagrams += count
        sent = 0
        if not self._pending():
            while sent < count:
                result = _libc.sendmmsg(self._fd, self._msgs + sent, count - sent, 0)
                if result > 0:
                    sent += result
                    continue
                error = _ffi.errno
                if error in (errno.EAGAIN, errno.EWOULDBLOCK):
                    break
                if error != errno.EINTR:  # a signal came first: try again
                    sent += 1  # this one cannot go (an unreachable address): drop it
        for index in range(sent, count):
            start = index * SLOT
            size = self._iov_words[index * _IOV_WORDS + _LEN_WORD]
            self._queue(self._view[start : start + size].tobytes(), destinations[index][0])
        destinations.clear()
