"""Per-stream bookkeeping helpers, after mediasoup's ``SeqManager``, ``NackGenerator`` and
``KeyFrameRequestManager``: small classes, no I/O, time passed in as ``now_ms``.

- ``SeqManager``: input → output sequence numbers for a consumer, continuous across layer
  switches (``sync``) and packets not forwarded (``drop``).
- ``TimestampMapper``: RTP timestamps, monotonic across switches.
- ``PictureIdMapper``: VP8 picture id (15 bits) and TL0PICIDX (8 bits).
- ``NackGenerator``: which sequence numbers to NACK toward a publisher, and when.
- ``KeyFrameRequester``: when a PLI may go out.
"""

from __future__ import annotations

from bisect import bisect_left

__all__ = [
    "KeyFrameRequester",
    "NackGenerator",
    "PictureIdMapper",
    "SeqManager",
    "TimestampMapper",
    "seq_newer",
]


def seq_newer(a: int, b: int, bits: int = 16) -> bool:
    """Whether sequence number ``a`` comes after ``b`` (serial number arithmetic)."""
    half = 1 << (bits - 1)
    delta = (a - b) & ((half << 1) - 1)
    return 0 < delta < half


class SeqManager:
    """Maps input sequence numbers to output ones (``bits`` wide, 16 by default).

    Inputs are unwrapped to unbounded integers against the highest one seen, so wraparound
    needs no special cases. ``drop`` keeps the inputs not forwarded in a sorted list; an
    input's output is ``input + base - (drops below input)``. Drops older than ``window``
    inputs are folded into ``base``, so the list stays short and out-of-order arrivals
    within the window still map correctly.
    """

    __slots__ = (
        "_base",
        "_dropped",
        "_floor",
        "_half",
        "_initial",
        "_mask",
        "_max_forwarded",
        "_max_input",
        "_max_output",
        "_started",
        "_window",
    )

    def __init__(self, bits: int = 16, initial_output: int | None = None) -> None:
        """``initial_output``: the output of the first input; None maps it to itself."""
        self._mask = (1 << bits) - 1
        self._half = 1 << (bits - 1)
        self._window = min(1000, self._half >> 1)
        self._initial = initial_output
        self._started = False
        self._base = 0
        self._max_input = 0  # unwrapped, highest input seen (forwarded or dropped)
        self._max_forwarded = 0  # unwrapped, highest input given an output
        self._max_output = 0
        self._floor = 0  # unwrapped: the sync point; inputs before it are not forwarded
        self._dropped: list[int] = []

    @property
    def max_output(self) -> int:
        """The highest output so far (meaningful once started)."""
        return self._max_output

    def _unwrap(self, value: int) -> int:
        last = self._max_input
        delta = (value - last) & self._mask
        if delta >= self._half:
            delta -= self._mask + 1
        return last + delta

    def sync(self, value: int) -> None:
        """Start a new input space (a layer switch): ``input(value)`` maps to the last
        output + 1, and inputs before ``value`` (late packets of the new layer from before
        the switch) map to None: their outputs would collide with ones already used."""
        value &= self._mask
        if self._started:
            target = self._max_output + 1
        else:
            target = value if self._initial is None else self._initial
            self._started = True
            self._max_output = (target - 1) & self._mask
        self._base = target - value
        self._max_input = value - 1
        self._max_forwarded = value - 1
        self._floor = value
        self._dropped.clear()

    def drop(self, value: int) -> None:
        """Note an input not forwarded, so the next forwarded one closes the gap.

        Only drops above every forwarded input can be closed; an older one (arriving late)
        is ignored: its gap is already visible downstream."""
        if not self._started:
            self.sync(value)
        ext = self._unwrap(value)
        if ext > self._max_input:
            self._max_input = ext
        if ext > self._max_forwarded:
            dropped = self._dropped
            index = bisect_left(dropped, ext)
            if index == len(dropped) or dropped[index] != ext:
                dropped.insert(index, ext)

    def input(self, value: int) -> int | None:
        """The output sequence number for ``value``, or None if ``value`` was dropped or
        comes before the last sync point."""
        mask = self._mask
        last = self._max_input
        delta = (value - last) & mask  # unwrap, inline: this runs per packet and consumer
        if not self._dropped and self._started:
            # The usual case, in order with nothing dropped: the highest input so far is the
            # highest forwarded one and maps to the highest output, so the next input maps
            # to the next output and a repeat (VP8 packets of one frame share a picture id)
            # to the same one.
            if delta == 1:
                last += 1
                self._max_input = self._max_forwarded = last
                self._max_output = output = (last + self._base) & mask
                return output
            if delta == 0 and last >= self._floor:
                return (last + self._base) & mask
        elif not self._started:
            self.sync(value)
            last = self._max_input
            delta = (value - last) & mask
        if delta >= self._half:
            delta -= mask + 1
        ext = last + delta
        if ext < self._floor:
            return None
        dropped = self._dropped
        if dropped:
            index = bisect_left(dropped, ext)
            if index < len(dropped) and dropped[index] == ext:
                return None
            output = (ext + self._base - index) & mask
        else:
            output = (ext + self._base) & mask
        if delta > 0:
            self._max_input = ext
        if ext > self._max_forwarded:
            self._max_forwarded = ext
        if 0 < (output - self._max_output) & mask < self._half:
            self._max_output = output
        if dropped and dropped[0] < ext - self._window:
            self._fold()
        return output

    def _fold(self) -> None:
        dropped = self._dropped
        count = bisect_left(dropped, self._max_input - self._window)
        del dropped[:count]
        self._base -= count


class TimestampMapper:
    """Maps input RTP timestamps to output ones (32 bits) by an offset.

    On a layer switch, ``sync`` moves the offset so the new layer's ``input_ts`` continues
    from the last output plus the time elapsed since it (at least one tick), so output
    timestamps never go back.
    """

    __slots__ = ("_initial", "_last_output", "_offset", "_started")

    def __init__(self, initial_output: int | None = None) -> None:
        """``initial_output``: the output of the first input; None maps it to itself."""
        self._initial = initial_output
        self._started = False
        self._offset = 0
        self._last_output = 0

    @property
    def last_output(self) -> int:
        """The newest output so far (meaningful once started)."""
        return self._last_output

    def _start(self, input_ts: int) -> None:
        self._started = True
        target = input_ts if self._initial is None else self._initial
        self._offset = (target - input_ts) & 0xFFFFFFFF
        self._last_output = (target - 1) & 0xFFFFFFFF

    def sync(self, input_ts: int, elapsed_ms: float, clock_rate: int) -> None:
        """The next ``input(input_ts)`` maps to the last output + ``elapsed_ms`` worth of
        ticks (at least 1). Before any input, it maps to the initial output."""
        if not self._started:
            self._start(input_ts)
            return
        ticks = max(1, round(elapsed_ms * clock_rate / 1000))
        self._offset = (self._last_output + ticks - input_ts) & 0xFFFFFFFF

    def input(self, timestamp: int) -> int:
        if not self._started:
            self._start(timestamp)
        output = (timestamp + self._offset) & 0xFFFFFFFF
        if 0 < ((output - self._last_output) & 0xFFFFFFFF) < 0x80000000:
            self._last_output = output
        return output


class PictureIdMapper:
    """Maps VP8 picture ids (15 bits) and TL0PICIDX (8 bits) with ``SeqManager`` semantics.

    Packets of one frame share a picture id; dropping a frame (a temporal layer not
    forwarded) drops its picture id so the next forwarded frame closes the gap. Base layer
    frames are never dropped, so TL0PICIDX needs only an offset.
    """

    __slots__ = (
        "_picture",
        "_tl0_initial",
        "_tl0_last",
        "_tl0_offset",
        "_tl0_started",
        "picture_id",
    )

    def __init__(
        self,
        initial_picture_id: int | None = None,
        initial_tl0picidx: int | None = None,
        picture_id_bits: int = 15,
    ) -> None:
        """``picture_id_bits``: 15 for the long form every browser sends, 7 for the short."""
        self._picture = SeqManager(picture_id_bits, initial_picture_id)
        # The output picture id, or None if this frame was dropped or comes before the last
        # sync point: the SeqManager's own method, one call less per forwarded packet.
        self.picture_id = self._picture.input
        self._tl0_initial = initial_tl0picidx
        self._tl0_started = False
        self._tl0_offset = 0
        self._tl0_last = 0

    def sync(self, picture_id: int | None, tl0picidx: int | None) -> None:
        """A layer switch: the next inputs of these values map to the last outputs + 1."""
        if picture_id is not None:
            self._picture.sync(picture_id)
        if tl0picidx is not None:
            if self._tl0_started:
                self._tl0_offset = (self._tl0_last + 1 - tl0picidx) & 0xFF
            else:
                self._start_tl0(tl0picidx)

    def _start_tl0(self, tl0picidx: int) -> None:
        self._tl0_started = True
        initial = self._tl0_initial
        self._tl0_offset = 0 if initial is None else (initial - tl0picidx) & 0xFF
        self._tl0_last = (tl0picidx + self._tl0_offset - 1) & 0xFF

    def drop(self, picture_id: int) -> None:
        """Every packet of a frame not forwarded (repeats are harmless)."""
        self._picture.drop(picture_id)

    def tl0picidx(self, tl0picidx: int) -> int:
        if not self._tl0_started:
            self._start_tl0(tl0picidx)
        output = (tl0picidx + self._tl0_offset) & 0xFF
        if 0 < (output - self._tl0_last) & 0xFF < 0x80:
            self._tl0_last = output
        return output


class _Missing:
    __slots__ = ("added_ms", "sent_ms", "tries")

    def __init__(self, added_ms: int) -> None:
        self.added_ms = added_ms
        self.sent_ms = -1
        self.tries = 0


class NackGenerator:
    """Which packets of one incoming stream to NACK, and when (RFC 4585 generic NACK).

    ``received`` is called per packet and notes gaps; ``due`` is called from the worker's
    timer and returns what to NACK now: a missing packet right away, then again at most
    once per RTT, up to ``max_tries`` times, and never once older than ``max_age_ms``.
    When more than ``max_missing`` are tracked, those before the last keyframe are
    forgotten; if that is not enough, all are, and ``received`` returns True: ask for a
    keyframe instead.
    """

    __slots__ = (
        "_highest",
        "_keyframes",
        "_max_age_ms",
        "_max_missing",
        "_max_tries",
        "_min_rtt_ms",
        "_missing",
        "_started",
    )

    def __init__(
        self,
        *,
        max_missing: int = 1000,
        max_tries: int = 10,
        max_age_ms: int = 1000,
        min_rtt_ms: int = 10,
    ) -> None:
        self._max_missing = max_missing
        self._max_tries = max_tries
        self._max_age_ms = max_age_ms
        self._min_rtt_ms = min_rtt_ms
        self._started = False
        self._highest = 0  # unwrapped
        self._missing: dict[int, _Missing] = {}  # unwrapped sequence → state, ascending
        self._keyframes: list[int] = []  # unwrapped sequences of recent keyframe packets

    def __len__(self) -> int:
        return len(self._missing)

    def received(self, sequence: int, now_ms: int, is_keyframe: bool = False) -> bool:
        """Note one received packet. True if a keyframe should be requested: the gap was
        too large to recover by retransmission."""
        if not self._started:
            self._started = True
            self._highest = sequence
            if is_keyframe:
                self._keyframes.append(sequence)
            return False
        highest = self._highest
        delta = (sequence - highest) & 0xFFFF
        if delta == 0:
            return False
        missing = self._missing
        if delta >= 0x8000:  # older: a retransmission or a reordered packet
            if missing:
                missing.pop(highest + delta - 0x10000, None)
            return False
        ext = highest + delta
        self._highest = ext
        if is_keyframe:
            keyframes = self._keyframes
            keyframes.append(ext)
            if len(keyframes) > 16:
                del keyframes[0]
        if delta == 1:
            return False
        if delta - 1 > self._max_missing:
            missing.clear()
            return True
        for lost in range(highest + 1, ext):
            missing[lost] = _Missing(now_ms)
        if len(missing) > self._max_missing:
            return self._trim()
        return False

    def missing(self, sequence: int) -> bool:
        """Whether ``sequence`` (16-bit) is one we are waiting for."""
        delta = (sequence - self._highest) & 0xFFFF
        return delta >= 0x8000 and self._highest + delta - 0x10000 in self._missing

    def _trim(self) -> bool:
        missing = self._missing
        keyframes = self._keyframes
        if keyframes:
            oldest_keep = keyframes[-1]
            for sequence in [s for s in missing if s < oldest_keep]:
                del missing[sequence]
        if len(missing) > self._max_missing:
            missing.clear()
            return True
        return False

    def due(self, now_ms: int, rtt_ms: int) -> list[int]:
        """Sequence numbers to NACK now (16-bit, ascending in stream order)."""
        missing = self._missing
        if not missing:
            return []
        interval = max(rtt_ms, self._min_rtt_ms)
        expired: list[int] = []
        nacks: list[int] = []
        for sequence, state in missing.items():
            if now_ms - state.added_ms > self._max_age_ms or state.tries >= self._max_tries:
                expired.append(sequence)
            elif state.tries == 0 or now_ms - state.sent_ms >= interval:
                state.tries += 1
                state.sent_ms = now_ms
                nacks.append(sequence & 0xFFFF)
        for sequence in expired:
            del missing[sequence]
        return nacks

    def reset(self) -> None:
        self._started = False
        self._missing.clear()
        self._keyframes.clear()


class KeyFrameRequester:
    """When to send a PLI for an incoming stream.

    ``request`` says whether one may go out now: at most one per SSRC per ``interval_ms``.
    A request stays pending until ``keyframe_received``; ``due`` repeats pending ones
    whose keyframe has not come within ``retry_ms``.
    """

    __slots__ = ("_interval_ms", "_pending", "_retry_ms")

    def __init__(self, interval_ms: int = 300, retry_ms: int = 1000) -> None:
        self._interval_ms = interval_ms
        self._retry_ms = retry_ms
        self._pending: dict[int, int] = {}  # ssrc → when the last PLI went out

    def request(self, ssrc: int, now_ms: int) -> bool:
        sent_ms = self._pending.get(ssrc)
        if sent_ms is not None and now_ms - sent_ms < self._interval_ms:
            return False
        self._pending[ssrc] = now_ms
        return True

    def keyframe_received(self, ssrc: int) -> None:
        self._pending.pop(ssrc, None)

    def pending(self, ssrc: int) -> bool:
        return ssrc in self._pending

    def due(self, now_ms: int) -> list[int]:
        """SSRCs whose PLI went unanswered for ``retry_ms``: send another now."""
        if not self._pending:
            return []  # every peer, every tick: no comprehension for nothing
        due = [s for s, sent in self._pending.items() if now_ms - sent >= self._retry_ms]
        for ssrc in due:
            self._pending[ssrc] = now_ms
        return due

    def forget(self, ssrc: int) -> None:
        self._pending.pop(ssrc, None)
