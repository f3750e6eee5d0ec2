"""One feature of a replay report, ready to draw: :class:`FeatureView`.

Built from a :class:`~driftsentinel.stream.report_recorder.ReplayRecorder` after the
replay: the reference and live distributions on the same bins (:class:`Histogram`), the
missing shares, and every test's value now and at detection against its threshold
(:class:`TestReading`), from the banks' read-outs and the alerts. No statistic is
decided here: the values are the detectors' own; this module only arranges them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from driftsentinel.detectors.multivariate import DETECTOR as MV_DETECTOR
from driftsentinel.detectors.multivariate import FEATURE as MV_FEATURE
from driftsentinel.detectors.multivariate import STATISTIC as MV_STATISTIC
from driftsentinel.detectors.seasonal_profile import transformed_features
from driftsentinel.detectors.sequential import CATEGORICAL_TESTS, NUMERIC_TESTS
from driftsentinel.schemas import DriftEvent, WindowSummary
from driftsentinel.schemas.profile import CategoricalProfile, ReferenceProfile

if TYPE_CHECKING:
    from driftsentinel.stream.report_recorder import CategoryDist, ModelReadouts, NumericDist, ReplayRecorder

#: Display names of the detectors; anything else is shown as it is named.
NAMES = {
    "adwin": "ADWIN",
    "page_hinkley": "Page-Hinkley",
    "constant_changed": "constant changed",
    "concept_drift": "concept drift",
    "missing_rate": "missing rate",
    "out_of_range": "out of range",
    "type_error": "type error",
    "new_category": "new category",
}
#: The window tests whose threshold is a ``window_tests`` setting of the same name.
WINDOW_TESTS = ("ks", "psi", "js", "wasserstein", "chi2", "new_category", "missing_rate", "out_of_range", "type_error")
#: The pseudo-feature of concept drift (the model's error) and its kind in the report.
ERROR_FEATURE, CONCEPT, MODEL_ERROR = "@error", "concept_drift", "model error"
#: The multivariate test's pseudo-feature, detector, statistic, and its kind in the report.
JOINT_FEATURE, JOINT, JOINT_STAT, JOINT_KIND = MV_FEATURE, MV_DETECTOR, MV_STATISTIC, "joint distribution"
#: Kinds of a model-level row (no values of their own: no distribution, no missing share).
MODEL_LEVEL = (MODEL_ERROR, JOINT_KIND)
#: What each kind of reading is, for the chip's tooltip.
NOTES = {
    "window": "the latest window's bias-corrected effect against its cut-off (decision_ratio x the minimum "
    "meaningful change, raised on small windows); a window is flagged when it is also significant",
    "quality": "the latest window's share against its threshold",
    "cusum": "CUSUM statistic against the reference now; an alarm when it passes its threshold h",
    JOINT: "the latest window's Gaussian-copula KL beyond the noise (nats per row) against min_kl; "
    "flagged when also significant",
}
QUALITY_TESTS = ("new_category", "missing_rate", "out_of_range", "type_error")
NUMERIC_BINS = 20  # equal-mass bins of the reference in the distribution plots
DISCRETE_POINTS = 20  # a reference with at most this many distinct values is drawn as bars per value
CATEGORY_BARS = 10  # categories drawn (the rest as "other")


def detector_name(detector: str) -> str:
    return NAMES.get(detector, detector)


@dataclass(frozen=True)
class TestReading:
    """One test of one feature: its value in the latest window and at detection, its threshold."""

    __test__ = False  # not a pytest test class

    detector: str
    threshold: float | None
    value_now: float | None
    at_detection: float | None  # the statistic of the first drift alert of the replay
    in_drift: bool
    detections: int
    note: str = ""

    @property
    def over(self) -> bool:
        return self.threshold is not None and self.value_now is not None and self.value_now > self.threshold


@dataclass(frozen=True)
class Histogram:
    """Reference and live shares on the same bins.

    Numeric: ``edges`` (bins between consecutive edges; for ``discrete`` references the
    distinct values themselves), shares summing to 1 with ``below``/``above`` (live values
    outside the reference's range). Categorical: ``labels`` (top categories, "other",
    "new"), shares by label.
    """

    kind: str
    live: np.ndarray
    live_count: int
    reference: np.ndarray | None = None
    reference_count: int = 0
    edges: np.ndarray | None = None
    discrete: bool = False
    labels: list[str] = field(default_factory=list)
    below: float = 0.0
    above: float = 0.0


@dataclass
class FeatureView:
    """Everything the report shows of one feature."""

    model: str
    feature: str
    kind: str  # numeric | categorical | model error
    status: str  # drift | resolved | ok | not tested
    source: str | None  # where its reference comes from: profile | warm-up | None
    reference: WindowSummary | None
    histogram: Histogram | None
    tests: list[TestReading]
    alerts: list[DriftEvent]
    live_mean: float | None = None
    live_std: float | None = None
    mean_shift_now: float | None = None
    missing_reference: float | None = None
    missing_live: float | None = None
    reason: str = ""  # why a feature is not tested
    joint_features: list[str] = field(default_factory=list)  # the multivariate test's features
    rank: float = 0.0  # largest statistic at detection / threshold; without drift, largest value now / threshold
    seasonal: SeasonalBand | None = None  # a cyclic feature's reference band per phase and live means

    @property
    def drifts(self) -> list[DriftEvent]:
        return [a for a in self.alerts if a.status == "drift"]

    @property
    def first_drift(self) -> DriftEvent | None:
        return min(self.drifts, key=lambda a: a.source.offset, default=None)


def _ratio(a: DriftEvent) -> float:
    stat = abs(a.statistic or 0.0)
    return stat / a.threshold if a.threshold else stat


def compact(v: float, _pos: Any = None) -> str:
    """A tick label that stays narrow: 50k, 1.2M, 3e+12, 0.25.

    >>> [compact(v) for v in (70000.0, 1.5e6, 3e12, 0.25, -20000.0)]
    ['70k', '1.5M', '3e+12', '0.25', '-20k']
    """
    a = abs(v)
    if a >= 1e10:
        return f"{v:.0e}"
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


# --------------------------------------------------------------------------- histograms
def view_range(edges: np.ndarray) -> tuple[float, float]:
    """The x range to show of equal-mass bins: a long tail would squeeze the bulk into a
    corner, so the 5th-95th percentile bins and at most half their span beyond them.

    >>> view_range(np.array([0.0, 1.0, 2.0, 3.0, 100.0]))
    (0.0, 4.0)
    """
    lo, hi = float(edges[0]), float(edges[-1])
    if edges.size > 3:
        core = float(edges[-2] - edges[1])
        lo, hi = max(lo, float(edges[1]) - 0.5 * core), min(hi, float(edges[-2]) + 0.5 * core)
    return lo, hi


def numeric_histogram(dist: NumericDist) -> Histogram | None:
    """Reference and live shares on ``NUMERIC_BINS`` equal-mass bins of the reference."""
    grid, prof = dist.grid, dist.reference
    if grid is None or prof is None:
        return None
    n = dist.live_count
    live_cdf = grid.live_cdf(dist.counts)
    if grid.points.size <= DISCRETE_POINTS:  # a few distinct values: a bar per value
        ref = np.diff(np.r_[0.0, grid.ref_cdf])
        live = np.diff(np.r_[0.0, live_cdf]) if n else np.zeros(grid.points.size)
        below = dist.below / n if n else 0.0
        if n:
            live[0] -= below  # (-inf, min] holds the values under the minimum too
        return Histogram(
            "numeric", live, n, ref, prof.count, grid.points, True, below=below, above=dist.above / n if n else 0.0
        )
    levels = np.linspace(0.0, 1.0, NUMERIC_BINS + 1)
    idx = np.unique(np.clip(np.searchsorted(grid.ref_cdf, levels, side="left"), 0, grid.points.size - 1))
    ref = np.diff(grid.ref_cdf[idx])
    ref[0] += grid.ref_cdf[idx[0]]  # ties at the minimum
    live = np.diff(live_cdf[idx]) if n else np.zeros(idx.size - 1)
    below = dist.below / n if n else 0.0
    if n:
        live[0] += live_cdf[idx[0]] - below
    above = dist.above / n if n else 0.0
    return Histogram("numeric", live, n, ref, prof.count, grid.points[idx], below=below, above=above)


def categorical_histogram(dist: CategoryDist | None, prof: CategoricalProfile | None) -> Histogram | None:
    """Shares of the top categories (the reference's first), "other", and "new" when a
    training list says which categories are new."""
    counts = dict(dist.counts) if dist is not None else {}
    overflow = dist.overflow if dist is not None else 0
    n = sum(counts.values()) + overflow
    if prof is None:
        top = sorted(counts, key=lambda c: (-counts[c], c))[:CATEGORY_BARS]
        live = [counts[c] for c in top] + [n - sum(counts[c] for c in top)]
        return Histogram("categorical", np.array(live, float) / max(n, 1), n, labels=[*top, "other"])
    seen = set(prof.seen)
    ranked = sorted(prof.frequencies, key=lambda c: -prof.frequencies[c])
    live_only = sorted((c for c in counts if c not in prof.frequencies), key=lambda c: -counts[c])
    top = ranked[: CATEGORY_BARS - min(len(live_only), 3)]
    top += live_only[: CATEGORY_BARS - len(top)]
    ref: list[float] = [prof.frequencies.get(c, 0.0) for c in top]
    ref.append(max(1.0 - sum(ref), 0.0))  # other: the rest of the top K and the categories beyond it
    rest = [(c, k) for c, k in counts.items() if c not in top]
    new = sum(k for c, k in rest if seen and c not in seen) + (overflow if seen else 0)
    shares: list[float] = [float(counts.get(c, 0)) for c in top] + [float(sum(k for _, k in rest) + overflow - new)]
    labels = [f"{c} (new)" if seen and c not in seen else c for c in top] + ["other"]
    if ref[-1] < 1e-9 and shares[-1] == 0:  # nothing else: no "other" bar
        ref.pop(), shares.pop(), labels.pop()
    if seen:  # the training list says which categories are new
        ref.append(0.0)
        shares.append(float(new))
        labels.append("new")
    return Histogram("categorical", np.array(shares) / max(n, 1), n, np.array(ref), prof.count, labels=labels)


# --------------------------------------------------------------------------- tests
def readings_of(
    feature: str,
    st: Any,
    alerts: list[DriftEvent],
    cfg: Any,
    values: dict[str, float] | None = None,
    limits: dict[str, float] | None = None,
) -> list[TestReading]:
    """Every detector that watches ``feature``, each with its value now against what it is
    decided against now: the scores of the bank's read-out (``st``), the sequential tests'
    statistics (``values``), the thresholds in force (``limits``: the sequential tests' h,
    the window tests' cut-offs of their latest window, ``min_kl``), else the configuration."""
    scores: dict[str, float] = dict(st.scores) if st is not None else {}
    drift: dict[str, bool] = dict(st.drift) if st is not None else {}
    values, limits = values or {}, limits or {}
    detectors = list(
        dict.fromkeys([*drift, *limits, *(t for t in WINDOW_TESTS if t in scores), *(a.detector for a in alerts)])
    )
    out = []
    for det in detectors:
        mine = [a for a in alerts if a.detector == det and a.status == "drift"]
        first = min(mine, key=lambda a: a.source.offset, default=None)
        threshold: float | None = limits.get(det)
        value: float | None = values.get(det, scores.get(det))
        note = ""
        if det in NUMERIC_TESTS or det in CATEGORICAL_TESTS:
            note = NOTES["cusum"]
        elif det == JOINT:
            value, note = scores.get(JOINT_STAT), NOTES[JOINT]
        elif det in WINDOW_TESTS:
            quality = det in QUALITY_TESTS
            note = NOTES["quality" if quality else "window"]
            if threshold is None and quality and cfg is not None:  # no window yet: the configured share
                threshold = float(getattr(cfg.window_tests, det))
        elif det == "page_hinkley" and cfg is not None:
            own = cfg.per_feature.get(feature)
            threshold = own.page_hinkley_threshold if own is not None and own.page_hinkley_threshold else None
            threshold = float(threshold or cfg.page_hinkley.threshold)
            ups = [scores[k] for k in ("page_hinkley_up", "page_hinkley_down") if k in scores]
            value = max(ups) if ups else None
            note = "cumulative sum of the shift (sd), up or down"
        elif det == "adwin":
            value = scores.get("mean_shift_sigma")
            note = "mean shift (sd) now; ADWIN decides by its delta, no threshold"
        if threshold is None and first is not None:
            threshold = first.threshold
        out.append(
            TestReading(
                det,
                threshold,
                value,
                first.statistic if first is not None else None,
                bool(drift.get(det, False)),
                len(mine),
                note,
            )
        )
    return out


# --------------------------------------------------------------------------- views
def _missing_live(rec: ReplayRecorder, model: str, counted: Any) -> float | None:
    events = rec.events.get(model)
    total = float(events.count.sum()) if events is not None else 0.0
    if total == 0:
        return None
    present = float(counted.count.sum()) if counted is not None else 0.0
    return max(0.0, 1.0 - present / total)


def _model_error_view(model: str, alerts: list[DriftEvent]) -> FeatureView:
    """Concept drift: the model's error rate (``@error``), known only from its alerts."""
    drifts = [a for a in alerts if a.status == "drift"]
    first, last = (drifts[0], drifts[-1]) if drifts else (None, None)
    tests = [
        TestReading(
            CONCEPT,
            first.threshold if first else None,
            last.statistic if last else None,
            first.statistic if first else None,
            bool(alerts) and alerts[-1].status == "drift",
            len(drifts),
            "the error rate of the latest predictions against the rate before them",
        )
    ]
    return FeatureView(
        model=model,
        feature=ERROR_FEATURE,
        kind=MODEL_ERROR,
        status="drift" if tests[0].in_drift else ("resolved" if drifts else "ok"),
        source="replay" if first else None,
        reference=first.reference if first else None,
        histogram=None,
        tests=tests,
        alerts=alerts,
        live_mean=last.window.mean if last else None,
        rank=max((_ratio(a) for a in drifts), default=0.0),
    )


def _joint_view(model: str, alerts: list[DriftEvent], readouts: ModelReadouts | None) -> FeatureView:
    """The multivariate test (``@multivariate``): one row for the model's joint distribution,
    its effect now against ``min_kl``; the reference is the profile's correlation section."""
    st = readouts.status.get(JOINT_FEATURE) if readouts is not None else None
    tests = readings_of(
        JOINT_FEATURE,
        st,
        alerts,
        readouts.config if readouts is not None else None,
        None,
        readouts.thresholds.get(JOINT_FEATURE) if readouts is not None else None,
    )
    section = readouts.profile.multivariate if readouts is not None and readouts.profile is not None else None
    reference = None
    if section is not None:
        reference = WindowSummary(count=section.n_rows, mean=None, std=None, quantiles={}, missing_ratio=None)
    drifts = [a for a in alerts if a.status == "drift"]
    open_ = any(t.in_drift for t in tests)
    closeness = [t.value_now / t.threshold for t in tests if t.threshold and t.value_now is not None]
    return FeatureView(
        model=model,
        feature=JOINT_FEATURE,
        kind=JOINT_KIND,
        status="drift" if open_ else ("resolved" if drifts else "ok"),
        source="profile" if section is not None else None,
        reference=reference,
        histogram=None,
        tests=tests,
        alerts=alerts,
        joint_features=list(section.features) if section is not None else [],
        rank=max((_ratio(a) for a in drifts), default=max(closeness, default=0.0)),
    )


def _view(rec: ReplayRecorder, key: tuple[str, str], alerts: list[DriftEvent]) -> FeatureView:
    model, feature = key
    if feature == ERROR_FEATURE:
        return _model_error_view(model, alerts)
    readouts: ModelReadouts | None = rec.models.get(model)
    if feature == JOINT_FEATURE:
        return _joint_view(model, alerts, readouts)
    st = readouts.status.get(feature) if readouts is not None else None
    profile = readouts.profile if readouts is not None else rec.profile
    prof = profile.features.get(feature) if profile is not None else None
    num, cat = rec.numeric.get(key), rec.categories.get(key)
    categorical = isinstance(prof, CategoricalProfile) or (prof is None and num is None and cat is not None)
    prof, reference = _reference(rec, readouts, feature, prof)
    series = rec.series.get(key)
    view = FeatureView(
        model=model,
        feature=feature,
        kind="categorical" if categorical else "numeric",
        status="not tested",
        source="profile" if prof is not None else ("warm-up" if reference is not None else None),
        reference=reference,
        histogram=None,
        tests=readings_of(
            feature,
            st,
            alerts,
            readouts.config if readouts is not None else None,
            readouts.values.get(feature) if readouts is not None else None,
            readouts.thresholds.get(feature) if readouts is not None else None,
        ),
        alerts=alerts,
        missing_reference=reference.missing_ratio if reference is not None else None,
        missing_live=_missing_live(rec, model, rec.present.get(key) if categorical else series),
    )
    if categorical:
        view.histogram = categorical_histogram(cat, prof if isinstance(prof, CategoricalProfile) else None)
    elif num is not None:
        view.histogram = numeric_histogram(num)
    if series is not None and series.count.sum() > 0:
        n, s1, s2 = series.count.sum(), series.total.sum(), series.squares.sum()
        view.live_mean = float(s1 / n)
        view.live_std = math.sqrt(max((s2 - s1 * s1 / n) / max(n - 1, 1), 0.0))
    if st is not None:
        view.mean_shift_now = st.scores.get("mean_shift_sigma")
        open_ = any(st.drift.values())
        view.status = "drift" if open_ else ("resolved" if view.drifts else "ok")
    elif view.drifts:
        view.status = "drift"
    else:
        view.reason = _why_not_tested(view, readouts)
    closeness = [t.value_now / t.threshold for t in view.tests if t.threshold and t.value_now is not None]
    view.rank = max((_ratio(a) for a in view.drifts), default=max(closeness, default=0.0))
    return view


def _reference(
    rec: ReplayRecorder, readouts: ModelReadouts | None, feature: str, prof: Any
) -> tuple[Any, WindowSummary | None]:
    """The profile entry and reference summary a feature's view shows. The bank's profile of
    a cyclic or whitened feature is in the standardised units its detectors see
    (seasonal_view): the report shows the raw values' reference instead."""
    reference: WindowSummary | None = readouts.references.get(feature) if readouts is not None else None
    if _transformed(rec.profile, feature) and rec.profile is not None:
        prof = rec.profile.features.get(feature)
        reference = None
    if reference is None and prof is not None:
        from driftsentinel.detectors.reference_monitor import reference_summary

        reference = reference_summary(prof)
    return prof, reference


def _transformed(profile: ReferenceProfile | None, feature: str) -> bool:
    """Does the bank see ``feature`` transformed (phase-standardised or whitened)?"""
    return profile is not None and profile.seasonal is not None and feature in transformed_features(profile)


def _why_not_tested(view: FeatureView, readouts: ModelReadouts | None) -> str:
    if view.kind == "categorical" and (readouts is None or readouts.profile is None):
        return "categorical features are tested only against a profile (replay --reference profile.json)"
    if readouts is not None and len(readouts.features) >= readouts.config.max_features:
        return f"over detectors.max_features ({readouts.config.max_features})"
    return "excluded by the configuration (detectors.include / exclude / types)"


_ORDER = {"drift": 0, "resolved": 1, "ok": 2, "not tested": 3}


def build_views(rec: ReplayRecorder) -> list[FeatureView]:
    """Every feature, drifting ones first (largest statistic against its threshold first)."""
    by_key: dict[tuple[str, str], list[DriftEvent]] = {}
    for a in rec.alerts:
        by_key.setdefault((a.model, a.feature), []).append(a)
    views = [_view(rec, key, by_key.get(key, [])) for key in rec.feature_keys()]
    views = sorted(views, key=lambda v: (_ORDER[v.status], -v.rank, v.model, v.feature))
    bands = {(b.model, b.feature): b for b in seasonal_bands(rec, views)}
    for v in views:
        v.seasonal = bands.get((v.model, v.feature))
    return views


# --------------------------------------------------------------------------- seasonal reference
#: The reference band per phase: the phase's own quantiles at these levels (p05 - p95).
BAND_LEVELS = (0.05, 0.95)


@dataclass(frozen=True)
class SeasonalBand:
    """A cyclic feature's reference per phase of the event time against its live values.

    Per phase (``phases`` entries): the reference's mean and its ``BAND_LEVELS`` quantiles
    (``low``, ``high``: where 90 % of the phase's training values lie), its own value count
    and how many phases its summary pools; the live values' count and mean (NaN: none).
    ``acf1`` is the lag-1 autocorrelation of the reference's phase-standardised values;
    ``whiten``/``theta`` the ARMA(1,1) coefficients its detectors' values are whitened
    with (0: not whitened).
    """

    model: str
    feature: str
    period: str
    seconds: float
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    reference_counts: np.ndarray
    pooled: np.ndarray
    live_counts: np.ndarray
    live_mean: np.ndarray
    untimed: int
    acf1: float
    whiten: float
    theta: float
    cycles: float

    @property
    def phases(self) -> int:
        return int(self.mean.size)

    @property
    def inside(self) -> np.ndarray:
        """Per phase: is its live mean inside the reference band (False where no live value)?"""
        with np.errstate(invalid="ignore"):
            return (self.live_mean >= self.low) & (self.live_mean <= self.high)

    @property
    def whitened(self) -> bool:
        return self.whiten != 0.0

    def describe(self) -> str:
        """One line: the period, the reference's cycles, the serial dependence and whether
        the detectors see whitened values."""
        shown = int((self.live_counts > 0).sum())
        timed = int(self.live_counts.sum())
        out = int((~self.inside & (self.live_counts > 0)).sum())
        dep = (
            f"whitened (autocorrelated: lag-1 autocorrelation {self.acf1:.2f} after phase standardisation; "
            f"the detectors see ARMA(1,1) innovations, phi {self.whiten:.2f}, theta {self.theta:.2f})"
            if self.whitened
            else f"not whitened (lag-1 autocorrelation {self.acf1:.2f} after phase standardisation)"
        )
        untimed = f", {self.untimed:,} without an event time" if self.untimed else ""
        return (
            f"{self.period}: {self.phases} phases of {duration(self.seconds / self.phases)}, "
            f"{self.cycles:.1f} cycles in the reference; {dep}; live: {timed:,} values{untimed} in {shown} phases, "
            f"the mean of {out} outside the band"
        )


def duration(seconds: float) -> str:
    """A phase's length, in the largest unit that divides it.

    >>> duration(3600.0), duration(900.0), duration(86_400.0), duration(7.5)
    ('1 h', '15 min', '24 h', '7.5 s')
    """
    for unit, name in ((3600.0, "h"), (60.0, "min")):
        if seconds >= unit and float(seconds / unit).is_integer():
            return f"{seconds / unit:.0f} {name}"
    return f"{seconds:.3g} s"


def _at(quantiles: np.ndarray, level: float) -> np.ndarray:
    """Per phase (rows of ``quantiles`` at evenly spaced levels 0..1), the quantile at ``level``."""
    q = np.asarray(quantiles, dtype=np.float64)
    pos = level * (q.shape[1] - 1)
    i = min(int(math.floor(pos)), q.shape[1] - 2)
    frac = pos - i
    return q[:, i] * (1.0 - frac) + q[:, i + 1] * frac


def seasonal_bands(rec: ReplayRecorder, views: list[FeatureView] | None = None) -> list[SeasonalBand]:
    """The cyclic features' reference bands and live means per phase, in the order of
    ``views`` (drifting first; default :func:`build_views`), then by model and feature."""
    profile = rec.profile
    if profile is None or profile.seasonal is None:
        return []
    section = profile.seasonal
    order = {(v.model, v.feature): i for i, v in enumerate(views if views is not None else build_views(rec))}
    keys = sorted(rec.by_phase, key=lambda k: (order.get(k, len(order)), k))
    out = []
    for key in keys:
        feat = section.features.get(key[1])
        live = rec.by_phase[key]
        if feat is None or len(feat.mean) != live.phases:
            continue
        out.append(
            SeasonalBand(
                model=key[0],
                feature=key[1],
                period=section.period,
                seconds=section.seconds,
                mean=np.asarray(feat.mean, dtype=np.float64),
                low=_at(np.asarray(feat.quantiles), BAND_LEVELS[0]),
                high=_at(np.asarray(feat.quantiles), BAND_LEVELS[1]),
                reference_counts=np.asarray(feat.counts, dtype=np.int64),
                pooled=np.asarray(feat.pooled, dtype=np.int64),
                live_counts=live.count.copy(),
                live_mean=live.mean(),
                untimed=live.untimed,
                acf1=feat.acf1,
                whiten=feat.whiten,
                theta=feat.whiten_theta,
                cycles=feat.reference_cycles,
            )
        )
    return out
