"""Fixed-window counters kept in memory (one gateway); bounded by pruning old windows."""

from __future__ import annotations

from server.domain.clock import Clock


class RateLimiter:
    def __init__(self, limit: int, window_ms: int, clock: Clock, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self._clock = clock
        self._max_keys = max_keys
        self._windows: dict[str, tuple[int, int]] = {}

    def hit(self, key: str) -> int | None:
        """Count one hit; None if allowed, else the seconds until the window resets."""
        now = self._clock()
        start, count = self._windows.get(key, (now, 0))
        if now - start >= self.window_ms:
            start, count = now, 0
        if count >= self.limit:
            return max(1, (start + self.window_ms - now + 999) // 1000)
        if len(self._windows) >= self._max_keys and key not in self._windows:
            self._prune(now)
        self._windows[key] = (start, count + 1)
        return None

    def _prune(self, now: int) -> None:
        expired = [k for k, (s, _) in self._windows.items() if now - s >= self.window_ms]
        for k in expired:
            del self._windows[k]
        if len(self._windows) >= self._max_keys:
            # Still full of live windows: forget the oldest half rather than grow.
            for k in sorted(self._windows, key=lambda k: self._windows[k][0])[
                : self._max_keys // 2
            ]:
                del self._windows[k]
