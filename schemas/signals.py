"""The core's output types: a detector's decision, and one feature's read-outs for gauges.

A :class:`DriftSignal` is what the detector core says about one feature at one row of a
batch; the alert policy turns it into a :class:`~driftsentinel.schemas.alerts.DriftEvent`
(adding model, source position and severity). A :class:`FeatureStatus` is what the
gauges show of a feature between decisions. Both are plain frozen data, so the core
(``detectors``) and the shell (``stream``) share them without importing each other.

>>> from driftsentinel.schemas.alerts import WindowSummary
>>> live = WindowSummary(count=50, mean=1.2, std=1.0, quantiles={}, missing_ratio=0.0)
>>> sig = DriftSignal(row=7, feature="amount", detector="adwin", status="drift", statistic=1.2,
...                   statistic_name="mean_shift_sigma", threshold=None, window=live, reference=None)
>>> sig.status, sig.window.mean
('drift', 1.2)
>>> FeatureStatus(feature="amount", live_mean=1.2, missing_ratio=0.0).drift
{}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from driftsentinel.schemas.alerts import ChangePoint, Status, WindowSummary

__all__ = ["DriftSignal", "FeatureStatus"]


@dataclass(frozen=True)
class DriftSignal:
    """One decision: ``detector`` says ``feature`` drifted (or recovered) at ``row``.

    ``row`` indexes the batch the decision was made in; ``statistic`` (named
    ``statistic_name``) and ``threshold`` are the evidence; ``window`` summarises the live
    data up to ``row`` (for a change detector's ``drift``, the values since
    ``change_point``), ``reference`` the baseline it was compared with (when there is one).
    """

    row: int
    feature: str
    detector: str
    status: Status
    statistic: float | None
    statistic_name: str
    threshold: float | None
    window: WindowSummary
    reference: WindowSummary | None
    change_point: ChangePoint | None = None


@dataclass(frozen=True)
class FeatureStatus:
    """Read-outs of one feature, for gauges: per detector whether it is in a drift
    episode (``drift``) and its window size (``window_size``); scores by statistic name."""

    feature: str
    live_mean: float | None
    missing_ratio: float | None
    drift: dict[str, bool] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    window_size: dict[str, int] = field(default_factory=dict)
