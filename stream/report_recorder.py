"""What a replay report needs, collected while ``replay_file`` runs (bounded memory).

:class:`ReplayRecorder` implements the replay recorder protocol (``on_batch``,
``on_alert``, ``on_finish``). Per model and feature it keeps

* **over time**: per bin of input lines, the count, sum and sum of squares of the values
  and how many events the model had (so the rolling mean, its spread and the missing
  share per bin); at most ``max_bins`` bins, merged pairwise when a replay is longer;
* **the live distribution**: numeric values counted on the reference's quantile grid
  (:class:`~driftsentinel.detectors.window_tests.NumericGrid`, the bins the window tests
  use), plus the values below the reference's minimum and above its maximum; categories
  counted by name (at most ``max_categories``, the rest as one overflow count). The
  reference is the profile's feature when there is one, else the feature's first
  ``warmup`` values, as for the change detectors: those are kept until there are
  ``warmup`` of them, profiled (:func:`~driftsentinel.detectors.profile.numeric_profile`),
  and every later value is live;
* **by phase of the event time** (features with a seasonal reference, the profile's
  ``seasonal`` section with more than one phase): the count, sum and sum of squares of
  the live values per phase of their event time (``phases`` numbers each, at most 1,024;
  values without an event time are only counted), against which the report draws the
  reference's band per phase.

``on_finish`` reads the banks' read-outs (status, scores, references, thresholds) and
:meth:`ReplayRecorder.views` turns everything into one :class:`FeatureView` per feature
(:mod:`driftsentinel.stream.report_views`).

>>> import numpy as np
>>> from driftsentinel.schemas import FeatureBatch
>>> rec = ReplayRecorder(bin_size=10, max_bins=4)
>>> rec.on_batch("m", FeatureBatch(["a"], np.arange(80.0)[:, None], np.arange(80), np.full(80, np.nan)))
>>> rec.bin_size, [round(float(v), 1) for v in rec.series[("m", "a")].mean()]
(20, [9.5, 29.5, 49.5, 69.5])
>>> rec.numeric[("m", "a")].live_count, rec.numeric[("m", "a")].warm_count  # warming up: no live values yet
(0, 80)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.categories import BOOLEAN, canonical
from driftsentinel.detectors.multivariate import DETECTOR as MULTIVARIATE
from driftsentinel.detectors.multivariate import FEATURE as MULTIVARIATE_FEATURE
from driftsentinel.detectors.performance_window import WindowRecord
from driftsentinel.detectors.profile import numeric_profile
from driftsentinel.detectors.seasonal import Period
from driftsentinel.detectors.seasonal_profile import cyclic_features, period_of
from driftsentinel.detectors.window_tests import NumericGrid
from driftsentinel.schemas import DriftEvent, FeatureBatch, SidecarConfig
from driftsentinel.schemas.profile import CategoricalProfile, NumericProfile, ReferenceProfile, load_profile
from driftsentinel.schemas.signals import FeatureStatus
from driftsentinel.stream.report_performance import PerformanceWindows

#: Features that are not data: the label is joined for concept drift, never tested itself.
_SKIP = frozenset({"@label"})


@dataclass
class Binned:
    """Per-bin count, sum and sum of squares of one feature's values."""

    count: np.ndarray = field(default_factory=lambda: np.zeros(0))
    total: np.ndarray = field(default_factory=lambda: np.zeros(0))
    squares: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def grow(self, n: int) -> None:
        if n > self.count.size:
            pad = np.zeros(n - self.count.size)
            self.count = np.concatenate([self.count, pad])
            self.total = np.concatenate([self.total, pad])
            self.squares = np.concatenate([self.squares, pad])

    def halve(self) -> None:
        """Merge bins pairwise (the bin size doubles)."""
        if self.count.size % 2:
            self.grow(self.count.size + 1)
        self.count = self.count.reshape(-1, 2).sum(axis=1)
        self.total = self.total.reshape(-1, 2).sum(axis=1)
        self.squares = self.squares.reshape(-1, 2).sum(axis=1)

    def add(self, bins: np.ndarray, values: np.ndarray | None, n_bins: int) -> None:
        """Count ``bins`` (one per present value); with ``values``, also their sums."""
        self.grow(n_bins)
        self.count[:n_bins] += np.bincount(bins, minlength=n_bins)
        if values is not None:
            self.total[:n_bins] += np.bincount(bins, weights=values, minlength=n_bins)
            self.squares[:n_bins] += np.bincount(bins, weights=values * values, minlength=n_bins)

    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.total / self.count

    def std(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (self.squares - self.total**2 / self.count) / np.maximum(self.count - 1, 1)
        return np.sqrt(np.maximum(var, 0.0))


@dataclass
class PhaseLive:
    """A cyclic feature's live values per phase of their event time: count, sum, sum of squares."""

    phases: int
    count: np.ndarray = field(init=False)
    total: np.ndarray = field(init=False)
    squares: np.ndarray = field(init=False)
    untimed: int = 0  # live values without an event time (no phase)

    def __post_init__(self) -> None:
        self.count = np.zeros(self.phases)
        self.total = np.zeros(self.phases)
        self.squares = np.zeros(self.phases)

    def add(self, values: np.ndarray, phase: np.ndarray) -> None:
        """``values`` (finite) with the ``phase`` of each (-1: no event time)."""
        timed = phase >= 0
        self.untimed += int((~timed).sum())
        v, p = values[timed], phase[timed]
        self.count += np.bincount(p, minlength=self.phases)
        self.total += np.bincount(p, weights=v, minlength=self.phases)
        self.squares += np.bincount(p, weights=v * v, minlength=self.phases)

    def mean(self) -> np.ndarray:
        """The live mean per phase (NaN where a phase has no live value)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.total / self.count


@dataclass
class NumericDist:
    """A numeric feature's reference grid and its live values counted on it."""

    reference: NumericProfile | None = None
    source: str = "warm-up"  # or "profile"
    grid: NumericGrid | None = None
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    below: int = 0  # live values under the reference's minimum
    above: int = 0  # ... over its maximum
    warm: list[np.ndarray] = field(default_factory=list)
    warm_count: int = 0

    def set_reference(self, prof: NumericProfile, source: str) -> None:
        self.reference, self.source = prof, source
        self.grid = NumericGrid(np.asarray(prof.quantiles), prof.count, prof.std)
        self.counts = np.zeros(self.grid.n_bins, dtype=np.int64)
        self.warm = []

    @property
    def live_count(self) -> int:
        return int(self.counts.sum())

    def add(self, values: np.ndarray, warmup: int) -> None:
        """Live values on the grid; while there is no reference, the first ``warmup`` make it."""
        if self.grid is None:
            take = values[: warmup - self.warm_count]
            self.warm.append(take.copy())
            self.warm_count += take.size
            if self.warm_count < warmup:
                return
            self.set_reference(numeric_profile(np.concatenate(self.warm)), "warm-up")
            values = values[take.size :]
        assert self.grid is not None and self.reference is not None
        finite = values[np.isfinite(values)]
        self.counts += self.grid.counts(finite)
        self.below += int((finite < self.reference.min).sum())
        self.above += int((finite > self.reference.max).sum())


@dataclass
class CategoryDist:
    """A categorical feature's live counts by category (bounded)."""

    limit: int
    boolean: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    overflow: int = 0

    def add(self, values: np.ndarray) -> None:
        for raw, k in Counter(values.tolist()).items():
            cat = canonical(raw, self.boolean)
            if cat is None:
                continue
            if cat in self.counts or len(self.counts) < self.limit:
                self.counts[cat] += k
            else:
                self.overflow += k


@dataclass
class ModelReadouts:
    """What ``on_finish`` reads from one model's bank.

    ``values`` and ``thresholds``: per feature, per detector, its statistic now and what it
    is decided against now, where the bank's status does not say it: the sequential tests'
    CUSUM statistics and thresholds (per feature, calibrated or configured), the window
    tests' cut-offs of their latest window, the multivariate test's ``min_kl``.
    """

    status: dict[str, FeatureStatus]
    references: dict[str, Any]  # feature -> WindowSummary (numeric, from the bank)
    config: Any  # BankConfig
    profile: ReferenceProfile | None
    features: list[str]
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)


def detector_readouts(bank: DetectorBank) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Per feature and detector, (its statistic now, its threshold now), read from ``bank``."""
    values: dict[str, dict[str, float]] = {}
    limits: dict[str, dict[str, float]] = {}
    seq = bank.sequential
    if seq is not None:
        stats = seq.statistics()
        for j, name in enumerate(bank.features):
            h = seq.decision_thresholds(j)
            for test in bank.config.sequential.tests:
                if test in stats:
                    values.setdefault(name, {})[test] = float(stats[test][j])
                    limits.setdefault(name, {})[test] = h[test]
    monitor = bank.monitor
    if monitor is not None:
        for name, cuts in monitor.cut_offs.items():
            limits.setdefault(name, {}).update(cuts)
        watch = monitor.sequential
        if watch is not None:
            for j, name in enumerate(watch.names):
                h = watch.tests.thresholds(j)
                limits.setdefault(name, {}).update({t: h[t] for t in bank.config.sequential.tests if t in h})
    mv = bank.multivariate
    if mv is not None:
        limits[MULTIVARIATE_FEATURE] = {MULTIVARIATE: float(mv.config.min_kl)}
    return values, limits


class ReplayRecorder:
    """Collects what the report needs while ``replay_file`` runs.

    ``config`` is the replay's (its ``detectors.warmup``, ``max_categories`` and
    ``reference`` decide what the reference of each feature is, as they do for the banks).
    """

    def __init__(
        self,
        config: SidecarConfig | None = None,
        profile: ReferenceProfile | None = None,
        bin_size: int = 50,
        max_bins: int = 600,
    ) -> None:
        if bin_size < 1 or max_bins < 2:
            raise ValueError("bin_size >= 1 and max_bins >= 2")
        self.config = config or SidecarConfig()
        self.profile = profile
        #: the configured reference is still to read (unless the replay hands it over: :meth:`on_start`)
        self._load_reference = profile is None and bool(self.config.reference)
        self.warmup = self.config.detectors.warmup
        self.max_categories = self.config.detectors.max_categories
        self.bin_size = bin_size
        self.max_bins = max_bins
        self.series: dict[tuple[str, str], Binned] = {}  # numeric values per bin
        self.present: dict[tuple[str, str], Binned] = {}  # categorical values present per bin
        self.events: dict[str, Binned] = {}  # events per bin, per model
        self.numeric: dict[tuple[str, str], NumericDist] = {}
        self.by_phase: dict[tuple[str, str], PhaseLive] = {}  # cyclic features' live values per phase
        self._cyclic: frozenset[str] | None = None  # the profile's cyclic features (read once)
        self._period: Period | None = None
        self.categories: dict[tuple[str, str], CategoryDist] = {}
        self.alerts: list[DriftEvent] = []
        self.segment_alerts: list[DriftEvent] = []  # alerts of the segments' detectors (detectors.segments)
        self.models: dict[str, ModelReadouts] = {}
        self.performance = PerformanceWindows()  # estimated (and graded) windows per model
        self.last_offset = -1

    # --------------------------------------------------------------- recorder protocol
    def on_start(self, profile: ReferenceProfile | None) -> None:
        """The profile the replay loaded from ``config.reference``: not read a second time."""
        if self._load_reference:
            self.profile, self._load_reference = profile, False

    def on_batch(self, model: str, batch: FeatureBatch) -> None:
        if self._load_reference:  # used without a replay: read the configured reference once
            self.profile, self._load_reference = load_profile(str(self.config.reference)), False
        if batch.n_rows == 0:
            return
        offsets = np.asarray(batch.offsets, dtype=np.int64)
        self.last_offset = max(self.last_offset, int(offsets.max()))
        while self.last_offset // self.bin_size >= self.max_bins:
            self.bin_size *= 2
            for s in [*self.series.values(), *self.present.values(), *self.events.values()]:
                s.halve()
        bins = offsets // self.bin_size
        n_bins = int(bins.max()) + 1
        self.events.setdefault(model, Binned()).add(bins, None, n_bins)
        values = np.asarray(batch.values, dtype=np.float64)
        phase = self._phases(batch)
        for j, name in enumerate(batch.names):
            if name not in _SKIP:
                self._numeric_column(model, name, values[:, j], bins, n_bins, phase)
        if batch.cat_values is not None:
            for k, name in enumerate(batch.cat_names):
                if name not in _SKIP:
                    self._categorical_column(model, name, batch.cat_values[:, k], bins, n_bins)

    def _phases(self, batch: FeatureBatch) -> np.ndarray | None:
        """The phase of each row's event time (-1: none) when the profile has cyclic features
        among the batch's columns; else None."""
        if self._cyclic is None:
            section = self.profile.seasonal if self.profile is not None else None
            self._cyclic = frozenset(cyclic_features(self.profile)) if self.profile is not None else frozenset()
            self._period = period_of(section) if section is not None and self._cyclic else None
        if self._period is None or self._cyclic.isdisjoint(batch.names):
            return None
        t = np.asarray(batch.event_times, dtype=np.float64)
        known = np.isfinite(t)
        return np.where(known, self._period.phase(np.where(known, t, 0.0)), -1)

    def _numeric_column(
        self, model: str, name: str, col: np.ndarray, bins: np.ndarray, n_bins: int, phase: np.ndarray | None = None
    ) -> None:
        key = (model, name)
        ok = ~np.isnan(col)
        if not ok.any():
            return
        series = self.series.get(key) or self.series.setdefault(key, Binned())
        fin = ok & np.isfinite(col)
        series.add(bins[fin], col[fin], n_bins)
        if phase is not None and self._period is not None and self._cyclic is not None and name in self._cyclic:
            live = self.by_phase.get(key) or self.by_phase.setdefault(key, PhaseLive(self._period.phases))
            live.add(col[fin], phase[fin])
        prof = self.profile.features.get(name) if self.profile is not None else None
        if isinstance(prof, CategoricalProfile):  # numbers for a categorical feature: categories spelled as numbers
            numbers = col[ok].astype(object)  # Python floats, one array op
            self._categorical_column(model, name, numbers, bins[ok], n_bins)
            return
        dist = self.numeric.get(key)
        if dist is None:
            dist = self.numeric[key] = NumericDist()
            if isinstance(prof, NumericProfile):
                dist.set_reference(prof, "profile")
        dist.add(col[ok], self.warmup)

    def _categorical_column(self, model: str, name: str, col: np.ndarray, bins: np.ndarray, n_bins: int) -> None:
        key = (model, name)
        present = np.not_equal(col, np.array(None, dtype=object))
        if not present.any():
            return
        (self.present.get(key) or self.present.setdefault(key, Binned())).add(bins[present], None, n_bins)
        col = col[present]
        dist = self.categories.get(key)
        if dist is None:
            prof = self.profile.features.get(name) if self.profile is not None else None
            boolean = (
                isinstance(prof, CategoricalProfile) and bool(prof.frequencies) and set(prof.frequencies) <= BOOLEAN
            )
            dist = self.categories[key] = CategoryDist(self.max_categories, boolean)
        dist.add(col)

    def on_alert(self, event: DriftEvent) -> None:
        # a segment's alert is about a slice: the report's segment section, not the feature's row
        (self.alerts if event.segment is None else self.segment_alerts).append(event)

    def on_performance(self, windows: Iterable[tuple[str, WindowRecord]]) -> None:
        """The windows the engine estimated (or graded) in one call: the report's performance section."""
        self.performance.add(windows)

    def on_finish(self, banks: dict[str, DetectorBank]) -> None:
        for model, bank in banks.items():
            status = {st.feature: st for st in bank.status()}
            values, thresholds = detector_readouts(bank)
            self.models[model] = ModelReadouts(
                status=status,
                references={f: bank.reference_of(f) for f in bank.features},
                config=bank.config,
                profile=bank.profile,
                features=list(bank.features),
                values=values,
                thresholds=thresholds,
            )

    # --------------------------------------------------------------- read-outs
    def feature_keys(self) -> list[tuple[str, str]]:
        """Every (model, feature) seen in the data or watched by a bank, in a stable order."""
        seen = [*self.series, *self.present, *self.numeric, *self.categories]
        watched = [(m, f) for m, r in self.models.items() for f in r.status]
        alerted = [(a.model, a.feature) for a in self.alerts]
        return sorted(k for k in dict.fromkeys([*seen, *watched, *alerted]) if k[1] not in _SKIP)
