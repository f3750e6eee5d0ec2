"""Late labels: pair the labels topic with the input topic's predictions by request ``id``.

One :class:`LabelJoin` per input partition (the labels topic is partitioned like the input
topic, so a request's prediction and its label meet in the same partition number). A
prediction waits for its label, or a label for its prediction, within the bounds of a
:class:`~stream.join.StreamJoin` (count and message time); what falls out is counted as
unmatched. The join's waiting ids are part of the partition's checkpoint.

>>> from schemas.labels import LabelEvent
>>> j = LabelJoin(max_pending=1000, max_age_s=3600.0)
>>> j.add_prediction("req-1", "fraud-v3", 0.9, t=10.0) is None
True
>>> hit = j.add_label(LabelEvent(id="req-1", label=True), offset=7, t=50.0)
>>> hit.model, hit.prediction, hit.label, hit.offset
('fraud-v3', 0.9, True, 7)
>>> j.add_label(LabelEvent(id="req-2", label=False), offset=8, t=60.0) is None  # waits for req-2
True
>>> j.add_prediction("req-2", "fraud-v3", 0.1, t=61.0).offset  # the alert points at the label
8
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable
from typing import Any

from driftsentinel.schemas.labels import LabelEvent
from driftsentinel.stream.join import StreamJoin

PREDICTION = "prediction"
LABEL = "label"


@dataclass(frozen=True)
class JoinedLabel:
    """A prediction and its label; ``offset`` is the label message's offset on the labels topic."""

    model: str
    prediction: float | str
    label: bool | float | str
    offset: int
    ts: float | None


class LabelJoin:
    """Predictions waiting for labels and labels waiting for predictions, one input partition."""

    def __init__(self, max_pending: int, max_age_s: float, join: StreamJoin | None = None) -> None:
        self.join = join or StreamJoin((PREDICTION, LABEL), max_pending=max_pending, max_age_s=max_age_s)
        self._reported = dict(self.join.unmatched)

    def add_prediction(self, key: str, model: str, prediction: float | str, t: float) -> JoinedLabel | None:
        """Offer a served prediction (``t``: message time, seconds)."""
        pair = self.join.add(PREDICTION, key, [model, prediction], t)
        return None if pair is None else _joined(pair)

    def add_predictions(self, model: str, ids: Iterable[str | None], predictions: Iterable[Any],
                        labels: Iterable[Any], t: float) -> list[JoinedLabel]:
        """Offer the predictions of served requests; those without an id or a prediction, or
        whose label came with them, do not wait. Returns the pairs completed now.

        >>> LabelJoin(10, 60.0).add_predictions("m", ["a", None, "c"], [0.1, 0.2, 0.3], [None, None, 1.0], t=0.0)
        []
        """
        out = []
        for key, prediction, label in zip(ids, predictions, labels):
            if key is not None and prediction is not None and label is None:
                hit = self.add_prediction(key, model, prediction, t)
                if hit is not None:
                    out.append(hit)
        return out

    def add_label(self, event: LabelEvent, offset: int, t: float) -> JoinedLabel | None:
        """Offer a label read at ``offset`` of the labels topic (``t``: message time, seconds)."""
        pair = self.join.add(LABEL, event.id, [event.label, offset, event.ts], t)
        return None if pair is None else _joined(pair)

    def expire(self) -> None:
        """Give up on ids older than the wait limit (by the newest message time seen)."""
        self.join.expire()

    def take_unmatched(self) -> dict[str, int]:
        """Ids given up since the last call, per side (for a counter)."""
        now = dict(self.join.unmatched)
        delta = {side: now[side] - self._reported.get(side, 0) for side in now}
        self._reported = now
        return delta

    def pending(self) -> dict[str, int]:
        """Ids waiting now, per side."""
        return {side: self.join.pending(side) for side in (PREDICTION, LABEL)}

    def state_dict(self) -> dict[str, Any]:
        """msgpack/JSON-safe state, for the partition's checkpoint."""
        return self.join.state_dict()

    @classmethod
    def from_state(cls, state: dict[str, Any], max_pending: int, max_age_s: float) -> LabelJoin:
        """Rebuild a checkpointed join under the current limits."""
        return cls(max_pending, max_age_s, StreamJoin.from_state(state, max_pending, max_age_s))


def _joined(pair: tuple[Any, Any]) -> JoinedLabel:
    (model, prediction), (label, offset, ts) = pair
    return JoinedLabel(model=model, prediction=prediction, label=label, offset=int(offset), ts=ts)
