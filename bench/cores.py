"""Which cores the SFU under test runs on, and which the load that drives it runs on.

On a small machine the load processes (hundreds of synthetic peers) share cores with the SFU
worker: each datagram the worker sends wakes a load process on the worker's own core, which
preempts the worker in the middle of its ``sendmmsg`` and evicts its caches, and the worker's
CPU counters pay for both. A production SFU's subscribers are other machines. So, as load
tests of servers usually do, the SFU gets cores of its own: its workers (or Janus, all its
threads) the last ones, everything else (this coordinator, the load processes, the gateway)
the rest. Without enough cores nothing is pinned, and the results say so.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Cores:
    sfu: frozenset[int]
    load: frozenset[int]

    def describe(self) -> dict[str, list[int]]:
        return {"sfu": sorted(self.sfu), "load": sorted(self.load)}


def split(sfu_processes: int) -> Cores | None:
    """One core per SFU process at the end of what we may run on, the rest for the load;
    ``None`` when that leaves the load no core."""
    available = sorted(os.sched_getaffinity(0))
    if sfu_processes < 1 or len(available) <= sfu_processes:
        return None
    return Cores(
        sfu=frozenset(available[-sfu_processes:]), load=frozenset(available[:-sfu_processes])
    )


def take_load_cores(cores: Cores) -> None:
    """This process and every process it starts from now on run on the load cores."""
    os.sched_setaffinity(0, cores.load)


def pin(pid: int, cpus: frozenset[int]) -> None:
    """Every thread ``pid`` has now onto ``cpus`` (threads it makes later inherit it)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that has just ended
            os.sched_setaffinity(int(task), cpus)
