"""How many messages one consume asks for (the shell's part of batching).

Memory: a decoded event costs about twice its JSON bytes in Python objects (a float
object and a dict slot per value), and its row of the matrix a third. So batches are
bounded by message bytes as well as by events and matrix cells (:class:`BatchBudget`):
with 10,000 features (~275 KB messages) a 4,096-event batch would hold 3 GB at once.
Turning the messages into column batches is the engine's
(:mod:`driftsentinel.detectors.batching`).
"""

from __future__ import annotations

from collections.abc import Sequence, Sized

#: Message bytes per consumed batch at most (~3x that in decoded objects and columns).
MAX_BATCH_BYTES = 32 * 1024 * 1024
#: Rows x features of one batch matrix at most (float64: 32 MB).
MAX_BATCH_CELLS = 4_000_000


class BatchBudget:
    """How many messages to ask the consumer for.

    At most ``batch_size``; at most ``max_cells`` matrix cells for the widest model seen;
    at most ``max_bytes`` of messages, judged by the recent mean message size (it follows
    a growth at once and a shrink by halves). Before the first message: ``first`` (the
    size of the events is unknown yet, and one might be 1 MB).

    >>> b = BatchBudget()
    >>> b.events(4096, 0)
    16
    >>> b.observe([b"x" * 275_000] * 16); b.events(4096, 10_000)
    122
    >>> b.observe([b"x" * 5_000] * 16); b.events(4096, 200)  # halves per batch towards 5 KB
    244
    """

    def __init__(self, max_bytes: int = MAX_BATCH_BYTES, max_cells: int = MAX_BATCH_CELLS, first: int = 16) -> None:
        self.max_bytes = max_bytes
        self.max_cells = max_cells
        self.first = first
        self.message_bytes = 0.0  # 0: nothing seen yet

    def events(self, batch_size: int, widest: int) -> int:
        if self.message_bytes <= 0:
            return max(min(batch_size, self.first), 1)
        by_cells = self.max_cells // max(widest, 1)
        by_bytes = int(self.max_bytes // self.message_bytes)
        return max(min(batch_size, by_cells, by_bytes), 1)

    def observe(self, msgs: Sequence[Sized]) -> None:
        """Learn the message size from a consumed batch (``len(msg)`` is the value's length)."""
        if msgs:
            mean = sum(map(len, msgs)) / len(msgs)
            self.message_bytes = max(mean, 0.5 * self.message_bytes)
