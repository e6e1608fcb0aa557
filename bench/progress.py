"""A one-line progress display on stderr while a scenario runs."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Rewrites one line on a terminal; elsewhere (a log, CI) prints a line every few seconds."""

    LOG_EVERY_S = 5.0

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._width = 0
        self._logged_at = -self.LOG_EVERY_S

    def update(self, text: str) -> None:
        if self._tty:
            # Padded to the widest line so far, so no tail of a longer one stays visible.
            line = text.ljust(self._width)
            self._stream.write("\r" + line)
            self._width = len(line)
        elif time.monotonic() - self._logged_at >= self.LOG_EVERY_S:
            self._logged_at = time.monotonic()
            self._stream.write(text + "\n")
        self._stream.flush()

    def done(self) -> None:
        """Clears the line, so that what is printed next starts on an empty one."""
        if self._tty and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
        self._width = 0
