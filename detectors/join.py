"""A bounded-memory join of two streams by id (serving vs offline, or baseline vs candidate).

Each side keeps the ids still waiting for their partner, oldest first. An id waits at most
``max_pending`` ids (per side) and ``max_age_s`` seconds; past either limit it is evicted
and counted as unmatched on its side, so ids that never match cost a bounded amount of
memory whatever the stream's length. Time is whatever the caller passes as ``t`` (the
arrival clock, or event time): the join itself reads no clock.

>>> join = StreamJoin(("serving", "offline"), max_pending=2, max_age_s=10.0)
>>> join.add("serving", "a", {"x": 1}, t=0.0) is None
True
>>> join.add("offline", "a", {"x": 1.0}, t=1.0)
({'x': 1}, {'x': 1.0})
>>> for key in "bcd":
...     _ = join.add("serving", key, {}, t=2.0)
>>> join.unmatched, join.pending("serving")
({'serving': 1, 'offline': 0}, 2)
>>> join.expire(t=100.0), join.pending("serving")
({'serving': 2, 'offline': 0}, 0)
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any


class StreamJoin:
    """Pair values of two sides that carry the same key, within a count and time window."""

    def __init__(self, sides: tuple[str, str], max_pending: int, max_age_s: float) -> None:
        if sides[0] == sides[1]:
            raise ValueError("the two sides need distinct names")
        if max_pending < 1 or max_age_s <= 0:
            raise ValueError("max_pending must be >= 1 and max_age_s > 0")
        self.sides = sides
        self.max_pending = max_pending
        self.max_age_s = max_age_s
        self._pending: dict[str, OrderedDict[str, tuple[float, Any]]] = {s: OrderedDict() for s in sides}
        self.unmatched: dict[str, int] = {s: 0 for s in sides}
        self.duplicates: dict[str, int] = {s: 0 for s in sides}
        self.matched = 0
        self._watermark = float("-inf")

    def _other(self, side: str) -> str:
        if side == self.sides[0]:
            return self.sides[1]
        if side == self.sides[1]:
            return self.sides[0]
        raise ValueError(f"unknown side {side!r}; expected one of {self.sides}")

    def add(self, side: str, key: str, value: Any, t: float) -> tuple[Any, Any] | None:
        """Offer ``value`` for ``key`` on ``side`` at time ``t``.

        Returns ``(value of sides[0], value of sides[1])`` when the partner was waiting,
        else ``None`` (the value now waits). A second value for a key already waiting on
        the same side is dropped and counted in ``duplicates``.
        """
        other = self._other(side)
        if math.isfinite(t) and t > self._watermark:
            self._watermark = t
        partner = self._pending[other].pop(key, None)
        if partner is not None:
            self.matched += 1
            return (value, partner[1]) if side == self.sides[0] else (partner[1], value)
        waiting = self._pending[side]
        if key in waiting:
            self.duplicates[side] += 1
            return None
        waiting[key] = (t, value)
        if len(waiting) > self.max_pending:
            waiting.popitem(last=False)
            self.unmatched[side] += 1
        return None

    def expire(self, t: float | None = None) -> dict[str, int]:
        """Evict ids older than ``max_age_s`` before ``t`` (default: the newest ``t`` seen).

        Eviction goes oldest-first in arrival order and stops at the first id young enough,
        so with out-of-order event times an id may outlive ``max_age_s`` (never ``max_pending``).
        Returns the ids evicted now, per side (they are also added to ``unmatched``).
        """
        now = self._watermark if t is None else t
        cutoff = now - self.max_age_s
        evicted = {s: 0 for s in self.sides}
        for side, waiting in self._pending.items():
            while waiting:
                first_t = next(iter(waiting.values()))[0]
                if first_t >= cutoff:
                    break
                waiting.popitem(last=False)
                evicted[side] += 1
        for side, n in evicted.items():
            self.unmatched[side] += n
        return evicted

    def drain(self) -> dict[str, int]:
        """Give up on every waiting id (end of input): all count as unmatched."""
        evicted = {s: len(w) for s, w in self._pending.items()}
        for side, waiting in self._pending.items():
            waiting.clear()
            self.unmatched[side] += evicted[side]
        return evicted

    @property
    def watermark(self) -> float:
        """The newest finite ``t`` seen (``-inf`` before any)."""
        return self._watermark

    def pending(self, side: str) -> int:
        """Ids waiting on ``side``."""
        return len(self._pending[side])

    def state_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (msgpack/JSON-safe): the waiting ids in order, and the counters.

        >>> j = StreamJoin(("a", "b"), max_pending=5, max_age_s=9.0)
        >>> _ = j.add("a", "k", [1, "x"], t=2.0)
        >>> j2 = StreamJoin.from_state(j.state_dict())
        >>> j2.add("b", "k", 7, t=3.0), j2.matched
        (([1, 'x'], 7), 1)
        """
        return {
            "sides": list(self.sides),
            "max_pending": self.max_pending,
            "max_age_s": self.max_age_s,
            "pending": {s: [[k, t, v] for k, (t, v) in w.items()] for s, w in self._pending.items()},
            "unmatched": dict(self.unmatched),
            "duplicates": dict(self.duplicates),
            "matched": self.matched,
            "watermark": self._watermark if math.isfinite(self._watermark) else None,
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], max_pending: int | None = None, max_age_s: float | None = None
    ) -> StreamJoin:
        """Rebuild from :meth:`state_dict` (limits may be overridden: a changed config applies)."""
        sides = tuple(state["sides"])
        join = cls(
            (sides[0], sides[1]), max_pending or int(state["max_pending"]), max_age_s or float(state["max_age_s"])
        )
        for side in sides:
            waiting = join._pending[side]
            for key, t, value in state["pending"][side]:
                waiting[key] = (float(t), value)
            while len(waiting) > join.max_pending:
                waiting.popitem(last=False)
                join.unmatched[side] += 1
        for side in sides:
            join.unmatched[side] += int(state["unmatched"][side])
            join.duplicates[side] = int(state["duplicates"][side])
        join.matched = int(state["matched"])
        join._watermark = float("-inf") if state["watermark"] is None else float(state["watermark"])
        return join

    def stats(self) -> dict[str, Any]:
        """Counters for logs and tests."""
        return {
            "matched": self.matched,
            "unmatched": dict(self.unmatched),
            "pending": {s: len(w) for s, w in self._pending.items()},
            "duplicates": dict(self.duplicates),
        }
