"""``idle_exit``'s clock, shared by ``driftsentinel run`` and ``driftsentinel skew``.

A sidecar restarts the clock whenever it has input, or a reason why no input is not
idleness (it owns no partition yet, the broker is away, its group just rejoined), and
exits once the clock passes the limit. No limit: never idle.

>>> clock = IdleClock(5.0, now=100.0)
>>> clock.expired(104.0), clock.expired(105.0)
(False, True)
>>> clock.restart(105.0)
>>> clock.expired(106.0)
False
>>> IdleClock(None).expired(1e12)
False
"""

from __future__ import annotations

import logging
import time


class IdleClock:
    """Seconds since the last input (or reason not to count), against ``limit``."""

    def __init__(self, limit: float | None, log: logging.Logger | None = None, now: float | None = None) -> None:
        self.limit = limit
        self._log = log
        self._since = time.monotonic() if now is None else now

    def restart(self, now: float | None = None) -> None:
        self._since = time.monotonic() if now is None else now

    def expired(self, now: float | None = None) -> bool:
        """True once ``limit`` seconds have passed since the last restart (logged then)."""
        if self.limit is None:
            return False
        if (time.monotonic() if now is None else now) - self._since < self.limit:
            return False
        if self._log is not None:
            self._log.info("no input for %.1fs: exiting (idle_exit)", self.limit)
        return True
