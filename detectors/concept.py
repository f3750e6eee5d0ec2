"""Concept drift: the model's error rises.

When events carry both ``prediction`` and ``label`` (features ``@prediction`` and
``@label`` of a batch), each such event gives an error: 0/1 (prediction != label) for
classes, the absolute error for numbers (a boolean label counts as 0/1, so a score
against a true/false label gives |score - label|). An ADWIN over the error stream finds
changes; a change to a *higher* error (the last 100 errors against those since the
previous detection) is a ``concept_drift`` decision.

>>> import numpy as np
>>> from driftsentinel.schemas import FeatureBatch
>>> rng = np.random.default_rng(0)
>>> wrong = np.r_[rng.random(5000) < 0.1, rng.random(5000) < 0.3]
>>> labels = np.full((10000, 1), None, dtype=object); labels[:, 0] = np.where(wrong, "b", "a")
>>> preds = np.full((10000, 1), "a", dtype=object)
>>> batch = FeatureBatch([], np.zeros((10000, 0)), np.arange(10000), np.full(10000, np.nan),
...                      cat_names=["@prediction", "@label"], cat_values=np.hstack([preds, labels]))
>>> [(s.detector, s.row > 5000, round(s.statistic, 1)) for s in ConceptDriftMonitor().update(batch)]
[('concept_drift', True, 0.3)]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from driftsentinel.detectors.backends import change_detector
from driftsentinel.detectors.categories import canonical
from driftsentinel.schemas import RIVER_ADWIN, BankConfig, DetectorBackend, FeatureBatch, WindowSummary
from driftsentinel.schemas.signals import DriftSignal

_RECENT = 100
_DEFAULTS = BankConfig()  # the schema's defaults (delta, backend) for a monitor built without a config
FEATURE = "@error"


def _column(batch: FeatureBatch, name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    num = batch.values[:, batch.names.index(name)] if name in batch.names else None
    cat = batch.cat_values[:, batch.cat_names.index(name)] if name in batch.cat_names else None  # type: ignore[index]
    return num, cat


def pair_error(prediction: Any, label: Any) -> float:
    """The model's error on one request: 0/1 for classes, the absolute error for numbers.

    A boolean label (``True``, or the strings "true"/"false") against a numeric score
    counts as 1/0, so a score against a true/false label gives ``|score - label|``.

    >>> pair_error("fraud", "fraud"), pair_error("fraud", "ok"), pair_error(0.8, True), pair_error(3.0, 5)
    (0.0, 1.0, 0.19999999999999996, 2.0)
    >>> pair_error("True", True), pair_error(True, 0.0)
    (0.0, 1.0)
    """
    if isinstance(label, bool):
        label = "true" if label else "false"
    if isinstance(prediction, bool):
        prediction = "true" if prediction else "false"
    if isinstance(label, str) and canonical(label) in ("true", "false") and not isinstance(prediction, str):
        label = 1.0 if canonical(label) == "true" else 0.0
    if isinstance(prediction, str) and canonical(prediction) in ("true", "false") and not isinstance(label, str):
        prediction = 1.0 if canonical(prediction) == "true" else 0.0
    if isinstance(prediction, str) or isinstance(label, str):
        return 0.0 if canonical(prediction) == canonical(label) else 1.0
    return abs(float(prediction) - float(label))


def errors(batch: FeatureBatch) -> np.ndarray:
    """Per row: the model's error, NaN where prediction or label is missing."""
    n = batch.n_rows
    out = np.full(n, np.nan)
    p_num, p_cat = _column(batch, "@prediction")
    l_num, l_cat = _column(batch, "@label")
    if (p_num is None and p_cat is None) or (l_num is None and l_cat is None):
        return out
    for i in range(n):
        p = p_num[i] if p_num is not None and p_num[i] == p_num[i] else (p_cat[i] if p_cat is not None else None)
        lab: Any = l_num[i] if l_num is not None and l_num[i] == l_num[i] else (l_cat[i] if l_cat is not None else None)
        if p is not None and lab is not None:
            out[i] = pair_error(p, lab)
    return out


class ConceptDriftMonitor:
    """ADWIN over one model's error stream; rises become ``concept_drift`` signals."""

    def __init__(
        self, delta: float = _DEFAULTS.concept_drift.delta, backend: DetectorBackend = _DEFAULTS.backend
    ) -> None:
        # river's ADWIN with the configured delta (the bank's ADWIN settings are for
        # standardised features; errors are in [0, 1] for classes)
        self.adwin = change_detector("adwin", backend, 1, RIVER_ADWIN.model_copy(update={"delta": delta}))
        self.recent = np.zeros(0)  # the last _RECENT errors
        self.since_n = 0
        self.since_sum = 0.0

    def update(self, batch: FeatureBatch) -> list[DriftSignal]:
        """Signals from the events that carry both prediction and label; ``row`` is the batch row."""
        return self.update_errors(errors(batch))

    def update_errors(self, err: np.ndarray) -> list[DriftSignal]:
        """Feed errors (NaN = none for that row); signals' ``row`` index ``err``.

        >>> m = ConceptDriftMonitor()
        >>> rng = np.random.default_rng(1)
        >>> e = np.r_[rng.random(4000) < 0.1, rng.random(4000) < 0.4].astype(float)
        >>> [s.row >= 4000 for s in m.update_errors(e)]
        [True]
        """
        err = np.asarray(err, dtype=np.float64)
        ok = ~np.isnan(err)
        if not ok.any():
            return []
        hits = self.adwin.update(err[:, None])
        out: list[DriftSignal] = []
        start = 0
        for row, _ in hits:
            row = int(row)
            seg = err[start : row + 1]
            seg = seg[~np.isnan(seg)]
            history = np.r_[self.recent, seg]
            recent = history[-_RECENT:]
            older_n = self.since_n + seg.size - recent.size
            older_sum = self.since_sum + float(seg.sum()) - float(recent.sum())
            if older_n > 0 and recent.mean() > older_sum / older_n:
                before = older_sum / older_n
                out.append(
                    DriftSignal(
                        row=row,
                        feature=FEATURE,
                        detector="concept_drift",
                        status="drift",
                        statistic=float(recent.mean()),
                        statistic_name="error_rate_recent",
                        threshold=float(before),
                        window=WindowSummary(
                            count=int(recent.size),
                            mean=float(recent.mean()),
                            std=float(recent.std()),
                            quantiles={},
                            missing_ratio=None,
                        ),
                        reference=WindowSummary(
                            count=int(older_n), mean=float(before), std=None, quantiles={}, missing_ratio=None
                        ),
                    )
                )
            self.recent = history[-_RECENT:]
            self.since_n, self.since_sum = 0, 0.0  # the detector restarts after a detection
            start = row + 1
        tail = err[start:]
        tail = tail[~np.isnan(tail)]
        self.recent = np.r_[self.recent, tail][-_RECENT:]
        self.since_n += int(tail.size)
        self.since_sum += float(tail.sum())
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "adwin": self.adwin.state_dict(),
            "recent": self.recent.copy(),
            "since_n": self.since_n,
            "since_sum": self.since_sum,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.adwin = type(self.adwin).from_state(state["adwin"])
        self.recent = np.asarray(state["recent"], dtype=np.float64)
        self.since_n = int(state["since_n"])
        self.since_sum = float(state["since_sum"])
