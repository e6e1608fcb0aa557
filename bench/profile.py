"""Sampling a server process with py-spy while a scenario runs (``--profile``)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def sampled(pid: int, output: Path | None) -> Iterator[None]:
    """Record ``pid`` with py-spy into ``output`` (a .txt of collapsed stacks) while inside."""
    if output is None:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    output.parent.mkdir(parents=True, exist_ok=True)
    recorder = subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
         "--output", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()


def top_frames(collapsed: Path, count: int = 25) -> list[tuple[str, float]]:
    """The functions where most samples ended (self time), as (frame, share)."""
    totals: dict[str, int] = {}
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, weight = line.rpartition(" ")
        if not weight.isdigit():
            continue
        leaf = stack.split(";")[-1]
        totals[leaf] = totals.get(leaf, 0) + int(weight)
        samples += int(weight)
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:count]
    return [(frame, weight / max(samples, 1)) for frame, weight in ranked]
