"""How fast this machine is right now, next to a benchmark's figures.

CPU per forwarded packet is a floor in absolute µs, but the same code measured 13 µs one day
and 37 µs the next on machines of the same kind (Janus, compiled C, went from 15.6 to 39.8
µs between them). Two reference costs taken just before a run tell such days apart: the
interpreter's (a fixed pure-Python loop) and the kernel's (one 1,200-byte UDP datagram over
loopback). Both are the best of several short tries, so they say what the machine can do,
not how busy it was during one of them.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

_LOOP = 200_000
_DATAGRAMS = 2_000
_TRIES = 7


def _python_loop_ns() -> float:
    best = float("inf")
    for _ in range(_TRIES):
        started = time.perf_counter()
        total = 0
        for value in range(_LOOP):
            total += value & 7
        best = min(best, time.perf_counter() - started)
    return best / _LOOP * 1e9


def _sendto_us() -> float:
    """One datagram to a loopback socket that reads nothing (its queue overflows: the
    kernel's send path, not the receiver's wake-up)."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        addr = receiver.getsockname()
        payload = bytes(1200)
        best = float("inf")
        for _ in range(_TRIES):
            started = time.process_time()
            for _ in range(_DATAGRAMS):
                sender.sendto(payload, addr)
            best = min(best, time.process_time() - started)
        return best / _DATAGRAMS * 1e6
    finally:
        sender.close()
        receiver.close()


def speed() -> dict[str, Any]:
    """The reference costs, and the load average they were taken at."""
    return {
        "python_loop_ns": round(_python_loop_ns(), 2),
        "loopback_sendto_us": round(_sendto_us(), 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
