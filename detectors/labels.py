"""Late labels: pair the labels topic with the input topic's predictions by request ``id``.

One :class:`LabelJoin` per input partition (the labels topic is partitioned like the input
topic, so a request's prediction and its label meet in the same partition number). A
prediction waits for its label, or a label for its prediction, within the bounds of a
:class:`~driftsentinel.detectors.join.StreamJoin` (count and message time); what falls out
is counted as unmatched. The join's waiting ids are part of the partition's checkpoint.

A pair knows both positions: the label's offset on the labels topic, and the prediction's
offset (and row, in a columnar message) on the input topic. Its alert points at the later
of the two messages by message time, on a tie at the one that completed the pair
(:attr:`JoinedLabel.at_prediction`): the evidence is complete at that message.

>>> from driftsentinel.schemas.labels import LabelEvent
>>> j = LabelJoin(max_pending=1000, max_age_s=3600.0)
>>> j.add_prediction("req-1", "fraud-v3", 0.9, t=10.0, offset=3) is None
True
>>> hit = j.add_label(LabelEvent(id="req-1", label=True), offset=7, t=50.0)
>>> hit.model, hit.prediction, hit.label, hit.offset, hit.at_prediction
('fraud-v3', 0.9, True, 7, False)
>>> j.add_label(LabelEvent(id="req-2", label=False), offset=8, t=60.0) is None  # waits for req-2
True
>>> late = j.add_prediction("req-2", "fraud-v3", 0.1, t=61.0, offset=4)
>>> late.offset, late.prediction_offset, late.at_prediction  # the prediction came last
(8, 4, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from driftsentinel.detectors.join import StreamJoin
from driftsentinel.schemas.labels import LabelEvent

PREDICTION = "prediction"
LABEL = "label"


@dataclass(frozen=True)
class JoinedLabel:
    """A prediction and its label.

    ``offset`` / ``label_t``: the label message's offset on the labels topic and its message
    time; ``prediction_offset`` / ``prediction_row`` / ``prediction_t``: the prediction's
    message on the input topic (``None``: not known, e.g. restored from an older checkpoint);
    ``by_label``: the label completed the pair (it came second).
    """

    model: str
    prediction: float | str
    label: bool | float | str
    offset: int
    ts: float | None
    prediction_offset: int | None = None
    prediction_row: int | None = None
    prediction_t: float = float("-inf")
    label_t: float = float("-inf")
    by_label: bool = True

    @property
    def at_prediction(self) -> bool:
        """Does the pair's alert point at the prediction (else at the label)?"""
        if self.prediction_offset is None:
            return False
        if self.prediction_t != self.label_t:
            return self.prediction_t > self.label_t
        return not self.by_label


class LabelJoin:
    """Predictions waiting for labels and labels waiting for predictions, one input partition."""

    def __init__(self, max_pending: int, max_age_s: float, join: StreamJoin | None = None) -> None:
        self.join = join or StreamJoin((PREDICTION, LABEL), max_pending=max_pending, max_age_s=max_age_s)
        self._reported = dict(self.join.unmatched)

    def add_prediction(
        self, key: str, model: str, prediction: float | str, t: float, offset: int | None = None, row: int | None = None
    ) -> JoinedLabel | None:
        """Offer a served prediction (``t``: message time, seconds; ``offset``/``row``: its position)."""
        pair = self.join.add(PREDICTION, key, [model, prediction, offset, t, row], t)
        return None if pair is None else _joined(pair, by_label=False)

    def add_predictions(
        self,
        model: str,
        ids: Iterable[str | None],
        predictions: Iterable[Any],
        labels: Iterable[Any],
        t: float,
        offset: int | None = None,
        rows: bool = False,
    ) -> list[JoinedLabel]:
        """Offer the predictions of served requests; those without an id or a prediction, or
        whose label came with them, do not wait. Returns the pairs completed now.

        ``offset``: the message they came in; ``rows``: they are the rows of one columnar
        message (each keeps its row number).

        >>> LabelJoin(10, 60.0).add_predictions("m", ["a", None, "c"], [0.1, 0.2, 0.3], [None, None, 1.0], t=0.0)
        []
        """
        out = []
        for i, (key, prediction, label) in enumerate(zip(ids, predictions, labels, strict=False)):
            if key is not None and prediction is not None and label is None:
                hit = self.add_prediction(key, model, prediction, t, offset, i if rows else None)
                if hit is not None:
                    out.append(hit)
        return out

    def add_label(self, event: LabelEvent, offset: int, t: float) -> JoinedLabel | None:
        """Offer a label read at ``offset`` of the labels topic (``t``: message time, seconds)."""
        pair = self.join.add(LABEL, event.id, [event.label, offset, event.ts, t], t)
        return None if pair is None else _joined(pair, by_label=True)

    def expire(self) -> None:
        """Give up on ids older than the wait limit (by the newest message time seen)."""
        self.join.expire()

    def drain(self) -> dict[str, int]:
        """End of input: give up on every waiting id; returns them per side."""
        return self.join.drain()

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


def _joined(pair: tuple[Any, Any], by_label: bool) -> JoinedLabel:
    predicted, labelled = pair
    # Entries of older checkpoints carry [model, prediction] and [label, offset, ts].
    model, prediction, p_offset, p_t, p_row = (list(predicted) + [None, float("-inf"), None])[:5]
    label, offset, ts, l_t = (list(labelled) + [float("-inf")])[:4]
    return JoinedLabel(
        model=model,
        prediction=prediction,
        label=label,
        offset=int(offset),
        ts=ts,
        prediction_offset=None if p_offset is None else int(p_offset),
        prediction_row=None if p_row is None else int(p_row),
        prediction_t=float("-inf") if p_t is None else float(p_t),
        label_t=float("-inf") if l_t is None else float(l_t),
        by_label=by_label,
    )
