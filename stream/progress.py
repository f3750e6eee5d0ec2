"""A one-line progress bar with events/s, on stderr, for long offline replays.

Redrawn at most every ``interval`` seconds with a carriage return, so it costs nothing
per event; :meth:`Progress.close` ends the line. Shown only when asked (``--progress``)
or when the stream is a terminal: redirected stderr (CI logs, files) stays clean.

>>> import io
>>> out = io.StringIO()
>>> p = Progress(total_bytes=1000, stream=out, enabled=True, interval=0.0)
>>> p.update(bytes_read=500, events=50); p.close()
>>> line = out.getvalue().rsplit("\\r", 1)[-1]
>>> "50%" in out.getvalue() and "100%" in line and "events" in line and line.endswith("\\n")
True
"""

from __future__ import annotations

import sys
import time
from typing import IO


def stream_is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """``[#####.....]  50%  123,456 events  85,000 ev/s  ETA 2s`` on one line."""

    def __init__(
        self,
        total_bytes: int,
        stream: IO[str] | None = None,
        enabled: bool | None = None,
        interval: float = 0.2,
        width: int = 30,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = stream_is_tty(self.stream) if enabled is None else enabled
        self.total = max(int(total_bytes), 0)
        self.interval = interval
        self.width = width
        self.started = time.monotonic()
        self._last_draw = float("-inf")
        self._bytes = 0
        self._events = 0
        self._drawn = False

    def update(self, bytes_read: int, events: int) -> None:
        """Record the position; redraw when ``interval`` has passed since the last draw."""
        self._bytes, self._events = bytes_read, events
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw >= self.interval:
            self._last_draw = now
            self._draw(now)

    def close(self) -> None:
        """Draw the final state (100% when the whole file was read) and end the line."""
        if not self.enabled:
            return
        self._bytes = max(self._bytes, self.total)
        self._draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = self._events / elapsed
        frac = min(self._bytes / self.total, 1.0) if self.total else 1.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        line = f"[{bar}] {frac * 100:3.0f}%  {self._events:,} events  {rate:,.0f} ev/s"
        if 0 < frac < 1 and self._bytes:
            line += f"  ETA {elapsed * (1 - frac) / frac:.0f}s"
        else:
            line += f"  {elapsed:.1f}s"
        self.stream.write("\r" + line.ljust(78))
        self.stream.flush()
        self._drawn = True
