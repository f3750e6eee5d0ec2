"""DetectorBank: every feature of one model's stream, its change detectors and summaries.

The bank is the functional core behind ``driftsentinel run`` and ``replay``: feed it
:class:`~driftsentinel.schemas.FeatureBatch` objects in stream order, get back
:class:`~driftsentinel.schemas.DriftSignal` objects (a detector's decision about a
feature at a row of the batch). No I/O, no clock: the same batches always give the same
signals.

Per feature it keeps

* a **reference**: the first ``warmup`` values (mean, std, exact quantiles), or the
  profile's. Change detectors see values standardised by it, ``z = (x - mean) / std``,
  and clipped to its 1st-99th percentile range widened (``winsorize``; one rule, in
  :mod:`~driftsentinel.detectors.standardize`), so their parameters mean the same thing
  for every feature (a shift of 1 is one reference std);
* **ADWIN** and **Page-Hinkley** over ``z`` (batch kernels, or river's classes with
  ``backend="river"``; see :mod:`~driftsentinel.detectors.backends`), with the
  parameters of ``config.per_feature`` for the features named there; where the
  reference is the warm-up, they are first shown its values (:meth:`DetectorBank._prime`),
  so a change present from the first monitored value on is a step in their past;
* for a **constant** reference (a spread under the floor relative to its scale,
  :func:`~driftsentinel.detectors.standardize.is_constant`), instead of ADWIN and
  Page-Hinkley, the ``constant_changed`` watch: a value off the constant opens a drift
  episode (statistic ``constant_shift``, the distance; threshold, the distance allowed),
  which ends once ``resolve_min_count`` values in a row are at the constant again;
* a **live window**: summaries of the last one to two ``window_size`` events;
* the **evidence ring**: per feature, its last ``EVIDENCE_EVENTS`` values the detectors
  saw (however many events they span, so a sparse feature keeps as many as a dense one).
  A detection's signal carries a change point, and its ``window`` and ``mean_shift_sigma``
  describe the values since it (the last ``EVIDENCE_EVENTS`` of them at most, then with
  ``events_since`` unknown), so a shift is graded on post-change data. Page-Hinkley's
  change point is its own estimate (after the extreme of its cumulative sum). ADWIN's
  sub-window after its cut (the window river keeps after dropping older buckets while
  some split still differs) holds the change but also, when the last split was marginal,
  hundreds of older values; so within it (or its newest values the ring holds) the change
  point is Hinkley's maximum-likelihood estimate of one shift in the mean
  (:func:`change_split`), kept only when significant (:func:`split_statistic` at least
  ``SPLIT_THRESHOLD``; else the whole sub-window is post-change data). See
  :class:`~driftsentinel.detectors.protocol.LocatesChanges`;
* an **alert state** per detector: a detection opens a ``drift`` episode; it is
  ``resolved`` once ``resolve_min_count`` values since the latest detection have a mean
  within ``resolve_tolerance_sigma`` of the reference mean;
* the **sequential tests** (``config.sequential``, :mod:`~driftsentinel.detectors.sequential`):
  CUSUMs of the mean, scale, binned shape and missing share against the reference (the
  profile's quantiles and missing ratio, else the warm-up's values and missing share, so
  a change right at the end of the warm-up is found), with the thresholds of
  ``config.per_feature``. Their signals carry the CUSUM statistic
  (``cusum_statistic``) over its threshold, and as evidence the values since the run
  that alarmed started (its change point).

>>> import numpy as np
>>> from driftsentinel.schemas import BankConfig, FeatureBatch
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(6000, 2)); x[3000:, 0] += 2.0
>>> bank = DetectorBank(BankConfig(backend="river"))
>>> sigs = bank.update(FeatureBatch(["a", "b"], x, np.arange(6000), np.full(6000, np.nan)))
>>> sorted({(s.feature, s.detector, s.status) for s in sigs})  # doctest: +NORMALIZE_WHITESPACE
[('a', 'adwin', 'drift'), ('a', 'cusum_mean', 'drift'), ('a', 'cusum_scale', 'drift'),
 ('a', 'cusum_shape', 'drift'), ('a', 'page_hinkley', 'drift')]
>>> all(3000 <= s.row < 3200 for s in sigs)
True
"""

from __future__ import annotations

import functools
from typing import Any, cast

import numpy as np

from driftsentinel.detectors.backends import DetectorKind, change_detector
from driftsentinel.detectors.concept import ConceptDriftMonitor
from driftsentinel.detectors.multivariate import monitor_for
from driftsentinel.detectors.protocol import ChangeDetector, CusumReadouts, LocatesChanges, WindowReadouts
from driftsentinel.detectors.reference_monitor import ReferenceMonitor, reference_summary
from driftsentinel.detectors.seasonal_profile import SeasonalTransform, seasonal_view
from driftsentinel.detectors.sequential import NUMERIC_TESTS, STATISTIC_NAME, NumericSequential, grid_midpoints
from driftsentinel.detectors.standardize import (
    clip_bounds,
    is_constant,
    mean_std,
    profile_clip_bounds,
    profile_percentiles,
    reference_std,
    spread_floor,
    standardize,
)
from driftsentinel.schemas import ADWINConfig, BankConfig, FeatureBatch, PageHinkleyConfig, WindowSummary
from driftsentinel.schemas.alerts import ChangePoint
from driftsentinel.schemas.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from driftsentinel.schemas.signals import DriftSignal, FeatureStatus

DETECTORS = ("adwin", "page_hinkley")
#: The detector of a feature whose reference is constant (no spread to measure shifts in):
#: any value off the constant is a change. Its statistic is the value's distance from the
#: constant, its threshold the distance allowed (the reference's spread floor, far below
#: any real change), so the alert policy grades it by their ratio: 'critical'.
CONSTANT = "constant_changed"
CONSTANT_STATISTIC = "constant_shift"
_ORDER = {name: i for i, name in enumerate((*DETECTORS, CONSTANT, *NUMERIC_TESTS))}
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
LIVE_SKETCH_ALPHA = 0.02
#: DDSketch buckets kept per sign and feature in live windows: quantiles keep their 2 %
#: relative accuracy within a factor 7e8 of the largest magnitude (detectors/sketches.py),
#: in 4 KB per window and feature instead of 18 KB.
LIVE_SKETCH_BIN_LIMIT = 1024
#: Values per feature the bank keeps (a ring, [EVIDENCE_EVENTS, features]) to summarise the
#: values since a detection's change point: standardised as float32 (relative error 6e-8 of
#: the value in reference stds) with their rows, 6 KB per feature in memory, 1.9 KB in a
#: checkpoint (zlib) when the values are incompressible. A 1-sd shift is found within about
#: 50-150 values; beyond this many, the newest EVIDENCE_EVENTS post-change values are
#: summarised (their mean is within 0.05 sd of the post-change mean).
EVIDENCE_EVENTS = 512

#: a decision: (row, feature, detector, status, statistic, values since the change point)
_Decision = tuple[int, int, str, str, float | None, int | None]
#: detectors whose post-change sub-window is searched for the change point (change_split)
_SPLIT_WITHIN = {"adwin"}
#: the fewest values change_split leaves on either side (river's ADWIN min_window_length)
SPLIT_MIN_SIDE = 5


def change_split(values: np.ndarray, min_side: int = SPLIT_MIN_SIDE) -> int:
    """Where one shift in the mean of ``values`` most likely happened: the number of values
    before it. Hinkley's (1970) maximum-likelihood estimate for a shift of unknown size,
    the split ``k`` maximising the two-sample statistic
    ``|S_k - (k/L) S_L| / sqrt(k (L - k) / L)`` (``S_k`` the sum of the first ``k`` of the
    ``L`` values), with at least ``min_side`` values on each side (the first of equal
    maxima). Too few values for two sides: 0 (all of them).

    Measured on a 1-sd shift found by ADWIN (20 seeds, both signs): the split is 4 values
    from the true change point on average, where the unweighted CUSUM estimate
    (``argmax |S_k - (k/L) S_L|``, which shies away from the ends) is 11 away.

    >>> change_split(np.r_[np.zeros(20), np.ones(6)] + np.tile([0.1, -0.1], 13))
    20
    """
    n = values.size
    if n < 2 * min_side:
        return 0
    bridge = np.cumsum(values - values.mean())[:-1]  # S_k - (k/L) S_L, centred first for precision
    k = np.arange(1, n, dtype=np.float64)
    stat = np.abs(bridge) / np.sqrt(k * (n - k) / n)
    return min_side + int(np.argmax(stat[min_side - 1 : n - min_side]))


#: The split statistic (:func:`split_statistic`) from which a split is a change point.
#: Measured on N(0, 1) values with no change (20,000 draws per length): the largest
#: statistic over the splits exceeds 4.2-4.8 in 0.1 % of draws of 20-512 values (5.1 for
#: 10), 3.7 in 1 %; a 1-sd shift 20 values before the end of 480 gives about 4.4.
SPLIT_THRESHOLD = 4.5


def split_statistic(values: np.ndarray, k: int) -> float:
    """The two-sample statistic of the split of ``values`` after their first ``k``:
    the difference of the two means over its standard error, the spread pooled within the
    two sides (Hinkley's statistic in units of the noise). 0 when a side has fewer than 2 values.

    >>> round(split_statistic(np.r_[np.zeros(20), np.ones(6)] + np.tile([0.1, -0.1], 13), 20), 1)
    20.6
    """
    n = values.size
    if k < 2 or n - k < 2:
        return 0.0
    a, b = values[:k], values[k:]
    pooled = float(np.sqrt((((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum()) / (n - 2)))
    diff = abs(float(a.mean() - b.mean()))
    if pooled == 0.0:
        return float("inf") if diff > 0 else 0.0
    return diff / (pooled * float(np.sqrt(1.0 / k + 1.0 / (n - k))))


#: ``config.per_feature`` fields -> (detector, its parameter)
PER_FEATURE_PARAMS: dict[str, tuple[DetectorKind, str]] = {
    "adwin_delta": ("adwin", "delta"),
    "page_hinkley_threshold": ("page_hinkley", "threshold"),
    "page_hinkley_delta": ("page_hinkley", "delta"),
}
#: ``config.per_feature`` fields -> the sequential test whose threshold they set
PER_FEATURE_THRESHOLDS: dict[str, str] = {f"{test}_threshold": test for test in NUMERIC_TESTS}


def _make_detectors(config: BankConfig, n_features: int) -> dict[str, ChangeDetector]:
    """The enabled change detectors for ``n_features`` features, on the configured backend."""
    enabled: dict[DetectorKind, ADWINConfig | PageHinkleyConfig] = {
        "adwin": config.adwin,
        "page_hinkley": config.page_hinkley,
    }
    return {
        kind: change_detector(kind, config.backend, n_features, params)
        for kind, params in enabled.items()
        if params.enabled
    }


class _LiveWindow:
    """Tumbling windows of ``size`` events; summaries cover the previous and current one."""

    def __init__(self, size: int) -> None:
        from driftsentinel.detectors.sketches import FeatureSketch

        # 2 % relative accuracy is plenty for evidence quantiles and halves the bins.
        self._new = functools.partial(FeatureSketch, alpha=LIVE_SKETCH_ALPHA, bin_limit=LIVE_SKETCH_BIN_LIMIT)
        self.size = size
        self.previous = self._new(n_features=0)
        self.current = self._new(n_features=0)
        self.rows_in_current = 0

    def add_features(self, n: int) -> None:
        self.previous.add_features(n)
        self.current.add_features(n)

    def update(self, x: np.ndarray) -> None:
        while x.shape[0]:
            take = min(self.size - self.rows_in_current, x.shape[0])
            self.current.update(x[:take])
            self.rows_in_current += take
            x = x[take:]
            if self.rows_in_current >= self.size:
                # the old previous window's arrays become the new current window (no allocation)
                self.previous, self.current = self.current, self.previous
                self.current.reset()
                self.rows_in_current = 0

    def feature(self, j: int) -> Any:
        """One sketch of both windows for feature ``j`` alone (the windows go on)."""
        return self.previous.take([j]).merge(self.current.take([j]))

    def state_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "rows_in_current": self.rows_in_current,
            "previous": self.previous.state_dict(),
            "current": self.current.state_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.rows_in_current = int(state["rows_in_current"])
        from driftsentinel.detectors.sketches import FeatureSketch

        # states written before live windows had a bin limit are re-read under it
        self.previous = FeatureSketch.from_state({**state["previous"], "bin_limit": LIVE_SKETCH_BIN_LIMIT})
        self.current = FeatureSketch.from_state({**state["current"], "bin_limit": LIVE_SKETCH_BIN_LIMIT})

    def mean_and_missing(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per feature: (count, mean, missing) of both windows, without building a merged sketch."""
        a, b = self.previous, self.current
        count = a.count + b.count
        # an empty window's mean is NaN, and 0 x NaN would blank the other's (the first window)
        total = a.count * np.nan_to_num(a.mean) + b.count * np.nan_to_num(b.mean)
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        return count, mean, a.missing + b.missing


class DetectorBank:
    """Change detectors and summaries for every feature of one model's stream."""

    def __init__(self, config: BankConfig | None = None, profile: ReferenceProfile | None = None) -> None:
        self.config = config or BankConfig()
        # a profile's cyclic and autocorrelated features: every detector sees them standardised by
        # their phase and whitened, against the matching reference (detectors/seasonal_profile.py)
        self.seasonal = SeasonalTransform.from_profile(profile)
        profile = seasonal_view(profile) if profile is not None else None
        self.profile = profile
        self.monitor = (
            ReferenceMonitor(
                profile,
                self.config.window_tests,
                self.config.max_categories,
                self.config.sequential,
                self.config.resolve_min_count,
                self.config.per_feature,
            )
            if profile is not None
            else None
        )
        self.concept = (
            ConceptDriftMonitor(self.config.concept_drift.delta, backend=self.config.backend)
            if self.config.concept_drift.enabled
            else None
        )
        self.multivariate = monitor_for(self.config, profile)  # the joint test (detectors/multivariate.py)
        self._categorical = {n for n, t in self.config.types.items() if t == "categorical"}
        if profile is not None:
            self._categorical |= {n for n, p in profile.features.items() if isinstance(p, CategoricalProfile)}
        self.features: list[str] = []
        self._index: dict[str, int] = {}
        self._detectors = _make_detectors(self.config, 0)
        seq = self.config.sequential
        self.sequential = NumericSequential(seq, self.config.resolve_min_count) if seq.enabled else None
        self._live = _LiveWindow(self.config.window_size)
        # reference (warm-up) per feature
        self._ref_mean = np.zeros(0)
        self._ref_std = np.ones(0)
        self._clip_lo = np.zeros(0)
        self._clip_hi = np.zeros(0)
        self._ready = np.zeros(0, dtype=bool)
        self._warm: list[list[np.ndarray] | None] = []
        self._warm_events = np.zeros(0, dtype=np.int64)
        self._warm_missing = np.zeros(0, dtype=np.int64)
        self._reference: list[WindowSummary | None] = []
        # constant references: the change detectors do not see these features (no spread to
        # standardise by); a value off the constant by more than _const_tol is a change, and
        # the episode ends after resolve_min_count values in a row at the constant again.
        self._const = np.zeros(0, dtype=bool)
        self._const_tol = np.zeros(0)
        self._const_active = np.zeros(0, dtype=bool)
        self._const_run = np.zeros(0, dtype=np.int64)
        # alert state
        self._active = {name: np.zeros(0, dtype=bool) for name in self._detectors}
        self._since_n = np.zeros(0, dtype=np.int64)
        self._since_sum = np.zeros(0)
        self.n_rows = 0
        self.values_dropped = 0
        # the evidence ring, per feature its last EVIDENCE_EVENTS values the detectors saw:
        # value number i (0, 1, ... since the warm-up) in slot i % EVIDENCE_EVENTS, standardised
        # (unclipped) as float32, with its global row
        self._ring_z = np.full((EVIDENCE_EVENTS, 0), np.nan, dtype=np.float32)
        self._ring_row = np.zeros((EVIDENCE_EVENTS, 0), dtype=np.int64)
        self._ring_n = np.zeros(0, dtype=np.int64)
        # The profile's numeric features, and those with their own parameters, are known from the start.
        initial = [
            n for n, p in (profile.features.items() if profile is not None else ()) if isinstance(p, NumericProfile)
        ]
        initial += [n for n in self.config.per_feature if n not in initial]
        initial = [n for n in initial if self._accepts(n)][: self.config.max_features]
        if initial:
            self._add_features(initial)
            self._apply_per_feature_params()

    # ------------------------------------------------------------------ features
    def _accepts(self, name: str) -> bool:
        """May ``name`` become a numeric feature of the change detectors?"""
        cfg = self.config
        if name == "@label" or name in self._categorical:
            return False
        if cfg.include is not None and name not in cfg.include and name != "@prediction":
            return False
        return name not in cfg.exclude

    def _add_features(self, names: list[str]) -> None:
        n = len(names)
        for name in names:
            self._index[name] = len(self.features)
            self.features.append(name)
        for det in self._detectors.values():
            det.add_features(n)
        if self.sequential is not None:
            self.sequential.add_features(n)
        self._live.add_features(n)
        self._ref_mean = np.concatenate([self._ref_mean, np.zeros(n)])
        self._ref_std = np.concatenate([self._ref_std, np.ones(n)])
        self._clip_lo = np.concatenate([self._clip_lo, np.full(n, -np.inf)])
        self._clip_hi = np.concatenate([self._clip_hi, np.full(n, np.inf)])
        self._ready = np.concatenate([self._ready, np.zeros(n, dtype=bool)])
        self._warm.extend([] for _ in range(n))
        self._warm_events = np.concatenate([self._warm_events, np.zeros(n, dtype=np.int64)])
        self._warm_missing = np.concatenate([self._warm_missing, np.zeros(n, dtype=np.int64)])
        self._reference.extend([None] * n)
        self._const = np.concatenate([self._const, np.zeros(n, dtype=bool)])
        self._const_tol = np.concatenate([self._const_tol, np.zeros(n)])
        self._const_active = np.concatenate([self._const_active, np.zeros(n, dtype=bool)])
        self._const_run = np.concatenate([self._const_run, np.zeros(n, dtype=np.int64)])
        if self.profile is not None:  # standardise by the training data, no warm-up
            for j in range(len(self.features) - n, len(self.features)):
                prof = self.profile.features.get(self.features[j])
                if isinstance(prof, NumericProfile):
                    p01, p99 = profile_percentiles(prof.quantiles) if prof.quantiles else (prof.mean, prof.mean)
                    self._set_reference(j, prof.mean, prof.std, p01, p99)
                    if self.config.winsorize:
                        self._clip_lo[j], self._clip_hi[j] = profile_clip_bounds(
                            prof.quantiles, prof.mean, self._ref_std[j]
                        )
                    self._ready[j] = True
                    self._warm[j] = None
                    self._reference[j] = reference_summary(prof)
                    self._sequential_profile(j, prof)
        for key in self._active:
            self._active[key] = np.concatenate([self._active[key], np.zeros(n, dtype=bool)])
        self._since_n = np.concatenate([self._since_n, np.zeros(n, dtype=np.int64)])
        self._since_sum = np.concatenate([self._since_sum, np.zeros(n)])
        self._ring_z = np.concatenate([self._ring_z, np.full((EVIDENCE_EVENTS, n), np.nan, dtype=np.float32)], axis=1)
        self._ring_row = np.concatenate([self._ring_row, np.zeros((EVIDENCE_EVENTS, n), dtype=np.int64)], axis=1)
        self._ring_n = np.concatenate([self._ring_n, np.zeros(n, dtype=np.int64)])

    def _apply_per_feature_params(self) -> None:
        """Give the features of ``config.per_feature`` their own detector parameters."""
        for feature, params in self.config.per_feature.items():
            j = self._index.get(feature)
            if j is None:  # not taken (excluded, or over max_features)
                continue
            for field, value in params.model_dump(exclude_none=True).items():
                if field in PER_FEATURE_THRESHOLDS:
                    if self.sequential is not None:
                        self.sequential.set_thresholds(j, **{PER_FEATURE_THRESHOLDS[field]: value})
                    continue
                kind, name = PER_FEATURE_PARAMS[field]
                det = self._detectors.get(kind)
                if det is not None:
                    det.set_params([j], **{name: value})

    def admit(self, names: list[str]) -> list[str]:
        """Which of ``names`` are worth building columns for.

        Known features, profiled features and ``@prediction``/``@label`` always; new
        names while the model is under ``max_features``. Callers build only these
        columns, so a producer inventing feature names cannot make batches grow without
        bound. (New features are registered by :meth:`update`.)

        >>> bank = DetectorBank(BankConfig(max_features=2, exclude=["id"]))
        >>> bank.admit(["a", "id", "b", "c"])
        ['a', 'b']
        """
        fits, _ = self._new_names(names)
        keep = set(fits) | {"@prediction", "@label"}
        if self.profile is not None:
            keep |= self.profile.features.keys()
        return [n for n in dict.fromkeys(names) if n in self._index or n in keep]

    def _new_names(self, names: list[str]) -> tuple[list[str], set[str]]:
        """Unknown names the change detectors would take: (those under ``max_features``, those over)."""
        room = max(self.config.max_features - len(self.features), 0)
        new = [n for n in dict.fromkeys(names) if n not in self._index and self._accepts(n)]
        return new[:room], set(new[room:])

    def _align(self, batch: FeatureBatch) -> np.ndarray:
        """The batch as a ``[rows, len(self.features)]`` matrix, learning new features."""
        if batch.names == self.features:
            return np.ascontiguousarray(batch.values, dtype=np.float64)
        fits, over = self._new_names(batch.names)
        if fits:
            self._add_features(fits)
        over_cap = [j for j, n in enumerate(batch.names) if n in over]
        if over_cap:
            self.values_dropped += int((~np.isnan(batch.values[:, over_cap])).sum())
        x = np.full((batch.n_rows, len(self.features)), np.nan)
        cols = [(j, self._index[n]) for j, n in enumerate(batch.names) if n in self._index]
        if cols:
            src, dst = (np.array(c) for c in zip(*cols, strict=True))
            x[:, dst] = batch.values[:, src]
        return x

    # ------------------------------------------------------------------ warm-up
    def _warm_up(self, x: np.ndarray) -> np.ndarray:
        """Feed warming features; return, per feature, the first row detectors may see."""
        first_row = np.where(self._ready, 0, x.shape[0])
        need = self.config.warmup
        done: list[tuple[int, np.ndarray]] = []  # features whose warm-up ends here, with its values
        for j in map(int, np.flatnonzero(~self._ready)):
            col = x[:, j]
            valid = np.flatnonzero(~np.isnan(col))
            chunks = self._warm[j]
            assert chunks is not None
            have = sum(len(c) for c in chunks)
            take = valid[: need - have]
            if take.size:
                chunks.append(col[take].copy())
            if have + take.size < need:
                self._warm_events[j] += x.shape[0]
                self._warm_missing[j] += x.shape[0] - valid.size
                continue
            last = int(take[-1])
            self._warm_events[j] += last + 1
            self._warm_missing[j] += last + 1 - take.size
            values = np.concatenate(chunks)
            mean, std = mean_std(values)  # a spread of 1e-300 stays 1e-300 (its variance would underflow)
            p01, p99 = (float(q) for q in np.quantile(values, [0.01, 0.99]))
            self._set_reference(j, mean, std, p01, p99)
            if self.config.winsorize:
                self._clip_lo[j], self._clip_hi[j] = clip_bounds(p01, p99, mean, self._ref_std[j])
            self._reference[j] = WindowSummary(
                count=int(values.size),
                mean=mean,
                std=std,
                quantiles=_quantiles(np.quantile(values, QUANTILES)),
                missing_ratio=float(self._warm_missing[j] / max(self._warm_events[j], 1)),
            )
            self._sequential_warmup(j, values)
            self._warm[j] = None
            self._ready[j] = True
            first_row[j] = last + 1
            if not self._const[j]:
                done.append((j, values))
        if done:
            self._prime(done)
        return first_row

    def _prime(self, done: list[tuple[int, np.ndarray]]) -> None:
        """Show the change detectors the warm-up values of the features in ``done`` (standardised
        and clipped like every later value), so that their own past, which they compare the stream
        with, starts at the first event: a change present from the end of the warm-up on is then
        a step they see (it was not: a stream shifted from its first monitored value on has no
        change in its own past). Detections within the warm-up values are not reported (the
        warm-up is the reference; ADWIN restarts its window at one). Once per feature, a matrix
        of ``warmup`` rows."""
        zw = np.full((self.config.warmup, len(self.features)), np.nan)
        for j, values in done:
            zw[:, j] = standardize(values, self._ref_mean[j], self._ref_std[j], self._clip_lo[j], self._clip_hi[j])
        for det in self._detectors.values():
            det.update(zw)

    def _sequential_warmup(self, j: int, values: np.ndarray) -> None:
        """The sequential tests of feature ``j`` against its warm-up (values and missing share)."""
        if self.sequential is None or self._const[j]:
            return
        self.sequential.set_reference(
            j,
            z_ref=standardize(values, self._ref_mean[j], self._ref_std[j]),
            x_quantiles=np.sort(values),
            n_ref=int(values.size),
            missing_p0=float(self._warm_missing[j] / max(self._warm_events[j], 1)),
            clip_lo=float(self._clip_lo[j]),
            clip_hi=float(self._clip_hi[j]),
        )

    def _sequential_profile(self, j: int, prof: NumericProfile) -> None:
        """The sequential tests of feature ``j`` against its profile: its quantile grid (the
        middle of each slice standardised for the mean and scale), count and missing ratio."""
        if self.sequential is None or self._const[j] or len(prof.quantiles) < 2:
            return
        grid = np.asarray(prof.quantiles, dtype=np.float64)
        self.sequential.set_reference(
            j,
            z_ref=standardize(grid_midpoints(grid), self._ref_mean[j], self._ref_std[j]),
            x_quantiles=grid,
            n_ref=max(int(prof.count), 1),
            missing_p0=float(prof.missing_ratio),
            clip_lo=float(self._clip_lo[j]),
            clip_hi=float(self._clip_hi[j]),
        )

    def _set_reference(self, j: int, mean: float, std: float, p01: float, p99: float) -> None:
        """Standardise feature ``j`` by this reference; a constant one goes to the constant watch."""
        self._ref_mean[j] = mean
        self._ref_std[j] = reference_std(mean, std, p01, p99)
        self._const[j] = is_constant(std, mean, p01, p99)
        self._const_tol[j] = spread_floor(mean, p01, p99)

    # ------------------------------------------------------------------ update
    def update(self, batch: FeatureBatch) -> list[DriftSignal]:
        """Process one batch (stream order); return the decisions made in it, by row.

        Decisions and their evidence do not depend on how the stream is cut into
        batches: a restored bank fed differently sized batches says the same things.
        """
        if self.seasonal is not None:
            batch = self.seasonal.apply(batch)
        x = self._align(batch)
        n, n_feat = x.shape
        extra: list[DriftSignal] = []
        if self.monitor is not None:
            extra += [
                DriftSignal(
                    d.row,
                    d.feature,
                    d.detector,
                    d.status,
                    d.statistic,
                    d.statistic_name or d.detector,
                    d.threshold,
                    d.window,
                    d.reference,
                    change_point=d.change_point,
                )
                for d in self.monitor.update(
                    batch.names, batch.values, batch.cat_names, batch.cat_values, batch.event_times
                )
            ]
        if self.concept is not None:
            extra += self.concept.update(batch)
        if self.multivariate is not None:
            extra += self.multivariate.signals(batch.names, batch.values, batch.event_times)
        if n == 0 or n_feat == 0:
            self.n_rows += n
            return sorted(extra, key=_signal_order)
        first_row = self._warm_up(x)
        # standardised once: unclipped for the evidence ring, clipped (standardize's bounds) for the detectors
        u = standardize(x, self._ref_mean, self._ref_std)
        z = np.clip(u, self._clip_lo, self._clip_hi)
        if first_row.any():  # features still warming up in this batch (the common case: none)
            z[np.arange(n)[:, None] < first_row[None, :]] = np.nan
        constant = self._const & self._ready
        if constant.any():
            z[:, constant] = np.nan  # "how many stds" means nothing without a spread
        # the values the detectors see, unclipped, as the evidence ring keeps them
        with np.errstate(over="ignore"):
            zu = u.astype(np.float32)
        unseen = np.isnan(z)  # one mask for the ring's NaNs and its values (zu is NaN exactly here)
        zu[unseen] = np.nan
        seen = ~unseen
        hits = {name: det.update(z) for name, det in self._detectors.items()}
        # both backends locate their changes (LocatesChanges): the values since, per hit
        since = {name: cast("LocatesChanges", det).post_change_count for name, det in self._detectors.items()}
        decisions = self._decide(z, seen, hits, since)
        if constant.any():
            decisions += self._constant_changes(x, first_row, np.flatnonzero(constant))
            decisions.sort(key=lambda r: (r[0], r[1], _ORDER[r[2]], r[3]))
        cusum: dict[tuple[int, int, str, str], tuple[float, float]] = {}
        if self.sequential is not None:
            for hit in self.sequential.update(x, z, first_row):
                decisions.append((hit.row, hit.feature, hit.test, hit.status, None, hit.values_since))
                cusum[(hit.row, hit.feature, hit.test, hit.status)] = (hit.statistic, hit.threshold)
            decisions.sort(key=lambda r: (r[0], r[1], _ORDER[r[2]], r[3]))
        # The live window is fed up to each decision's row, so its evidence is as of that row.
        signals: list[DriftSignal] = []
        done = 0
        for row, j, name, status, stat, count in decisions:
            if row + 1 > done:
                self._live.update(x[done : row + 1])
                done = row + 1
            change_point = None
            if name == "cusum_missing" and count is not None:  # the events since its change point
                window, stat, change_point = self._post_change_events(zu, j, row, count)
            elif count is not None:  # a change detector's drift: the values since its change point
                window, stat, change_point = self._post_change(zu, j, row, count, name in _SPLIT_WITHIN)
            else:
                window = self._summary(self._live.feature(j), 0)
            threshold = (
                float(self._const_tol[j])
                if name == CONSTANT
                else self.config.resolve_tolerance_sigma
                if status == "resolved"
                else None
            )
            stat_name = CONSTANT_STATISTIC if name == CONSTANT else "mean_shift_sigma"
            if (row, j, name, status) in cusum:
                (stat, threshold), stat_name = cusum[(row, j, name, status)], STATISTIC_NAME
            signals.append(
                DriftSignal(
                    row=row,
                    feature=self.features[j],
                    detector=name,
                    status=status,  # type: ignore[arg-type]
                    statistic=stat,
                    statistic_name=stat_name,
                    threshold=threshold,
                    window=window,
                    reference=self._reference[j],
                    change_point=change_point,
                )
            )
        if done < n:
            self._live.update(x[done:])
        self._keep_tail(zu, seen)
        self.n_rows += n
        if extra:
            signals = sorted(signals + extra, key=_signal_order)
        return signals

    def _keep_tail(self, zu: np.ndarray, ok: np.ndarray) -> None:
        """The batch's values into the evidence ring, the last ``EVIDENCE_EVENTS`` of each
        feature (call before ``n_rows`` moves on); ``ok`` marks the values (``~isnan(zu)``).
        A sparse feature keeps its last values however many events they span.

        Only the batch's last ``EVIDENCE_EVENTS`` rows are numbered when they hold every
        value to keep (a dense batch): numbering all rows (a cumulative sum down the
        columns) cost 13 ns per value at 4,096 x 20."""
        counts = ok.sum(axis=0)
        if not counts.any():
            return
        start = max(zu.shape[0] - EVIDENCE_EVENTS, 0)
        tail = ok[start:]
        before = counts - tail.sum(axis=0)  # values of each feature above the tail rows
        if start and (counts - before < np.minimum(counts, EVIDENCE_EVENTS)).any():
            start, tail, before = 0, ok, np.zeros_like(counts)  # a sparse feature: its values reach further up
        # the value's number among the feature's values in the batch
        pos = before[None, :] + np.cumsum(tail, axis=0) - 1
        keep = tail & (pos >= (counts - EVIDENCE_EVENTS)[None, :])
        rows, cols = np.nonzero(keep)
        slots = (self._ring_n[cols] + pos[rows, cols]) % EVIDENCE_EVENTS
        rows += start
        self._ring_z[slots, cols] = zu[rows, cols]
        self._ring_row[slots, cols] = self.n_rows + rows
        self._ring_n += counts

    def _ring(self, zu: np.ndarray, j: int, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Feature ``j``'s last ``EVIDENCE_EVENTS`` values up to batch row ``row`` (however
        the stream was cut into batches): (standardised values, their global rows)."""
        m = int(min(self._ring_n[j], EVIDENCE_EVENTS))
        slots = (self._ring_n[j] - m + np.arange(m)) % EVIDENCE_EVENTS
        new = np.flatnonzero(~np.isnan(zu[: row + 1, j]))
        vals = np.concatenate([self._ring_z[slots, j], zu[new, j]])[-EVIDENCE_EVENTS:]
        rows = np.concatenate([self._ring_row[slots, j], self.n_rows + new])[-EVIDENCE_EVENTS:]
        return vals.astype(np.float64), rows

    def _split_is_significant(self, j: int, z: np.ndarray, k: int) -> bool:
        """Is the split of the values ``z`` (standardised) after their ``k`` first a change
        point: does :func:`split_statistic` (on the values clipped as the detectors see
        them) reach ``SPLIT_THRESHOLD``?"""
        return split_statistic(np.clip(z, self._clip_lo[j], self._clip_hi[j]), k) >= SPLIT_THRESHOLD

    def _post_change_events(
        self, zu: np.ndarray, j: int, row: int, events: int
    ) -> tuple[WindowSummary, float | None, ChangePoint]:
        """Evidence of a ``cusum_missing`` detection of feature ``j`` at batch row ``row``
        whose run started ``events`` events before (it counts events, missing or not): the
        values among them (those the evidence ring still holds) summarised as
        :meth:`_post_change` does, their missing share that of the ``events``."""
        _, rows = self._ring(zu, j, row)
        at = self.n_rows + row
        count = int(np.sum(rows > at - events))
        if count == 0:  # every event since the change point is missing
            window = WindowSummary(count=0, mean=None, std=None, quantiles={}, missing_ratio=1.0)
            return window, None, ChangePoint(values_since=events, events_since=events)  # the indicators it saw
        window, stat, _ = self._post_change(zu, j, row, count, False)
        exact = count < rows.size or rows.size < EVIDENCE_EVENTS
        window = window.model_copy(update={"missing_ratio": float((events - count) / events)}) if exact else window
        # values_since: the values among those events (the ring's newest when it holds fewer)
        return window, stat, ChangePoint(values_since=count, events_since=events if exact else None)

    def _post_change(
        self, zu: np.ndarray, j: int, row: int, count: int, split: bool
    ) -> tuple[WindowSummary, float | None, ChangePoint]:
        """Evidence of a detection of feature ``j`` at batch row ``row`` whose detector saw
        ``count`` values since its change point (with ``split``: since its cut, the change
        point to be found among them by :func:`change_split`): the summary of the raw values
        since the change point, their mean shift in reference stds, and the change point.

        The detectors saw exactly the feature's values kept in the ring, so the last
        ``count`` of them up to ``row`` are the ones after the change point. When the ring
        holds fewer (the change is older than its last ``EVIDENCE_EVENTS`` values), all it
        holds are summarised and ``events_since`` is unknown. ADWIN's split within them is
        kept only when it is significant (:meth:`_split_is_significant`): then the change
        point is the split, inside the ring; else the values are all post-change data.
        """
        vals, rows = self._ring(zu, j, row)
        at = self.n_rows + row
        if not vals.size:  # nothing kept (a state from before the ring): no summary to give
            window = WindowSummary(count=0, mean=None, std=None, quantiles={}, missing_ratio=None)
            return window, None, ChangePoint(values_since=max(count, 1))
        exact = count <= vals.size
        if exact:
            vals, rows = vals[-count:], rows[-count:]
        if split:  # ADWIN's sub-window, or the newest part of it the ring holds
            k = change_split(vals)
            if k and self._split_is_significant(j, vals, k):
                vals, rows = vals[k:], rows[k:]
                count, exact = int(vals.size), True
        events = int(at - rows[0] + 1)
        raw = self._ref_mean[j] + self._ref_std[j] * vals
        mean, std = mean_std(raw) if raw.size > 1 else (float(raw[0]), float("nan"))
        window = WindowSummary(
            count=int(raw.size),
            mean=mean,
            std=std if np.isfinite(std) else None,
            quantiles=_quantiles(np.quantile(raw, QUANTILES)),
            missing_ratio=float((events - raw.size) / events),
        )
        stat = float((mean - self._ref_mean[j]) / self._ref_std[j])
        change_point = ChangePoint(values_since=count, events_since=events if exact else None)
        return window, stat, change_point

    def _decide(
        self, z: np.ndarray, seen: np.ndarray, hits: dict[str, np.ndarray], since: dict[str, np.ndarray]
    ) -> list[_Decision]:
        """Turn detector hits into episode decisions, row by row: (row, feature, detector,
        status, stat, values since the change point). A drift's stat is left to the evidence.
        ``seen`` is ``~isnan(z)``."""
        fired: dict[int, list[tuple[int, str, int]]] = {}
        for name, h in hits.items():
            for (row, j), count in zip(h, since[name], strict=True):
                fired.setdefault(int(j), []).append((int(row), name, int(count)))
        any_active = np.zeros(z.shape[1], dtype=bool)
        for flags in self._active.values():
            any_active |= flags
        busy = any_active.copy()
        busy[list(fired)] = True
        quiet = ~busy
        if quiet.any():  # the common case: nothing happens, just keep the since-stats going
            # every feature quiet (most batches): the batch itself, not a copy of it
            zq, ok = (z, seen) if quiet.all() else (z[:, quiet], seen[:, quiet])
            self._since_n[quiet] += ok.sum(axis=0)
            self._since_sum[quiet] += np.where(ok, zq, 0.0).sum(axis=0)
        out: list[_Decision] = []
        for j in np.flatnonzero(busy):
            j = int(j)
            events = sorted(fired.get(j, []), key=lambda e: (e[0], DETECTORS.index(e[1])))
            start = 0
            for row, name, count in events:
                self._resolve_segment(z, j, start, row, out)
                self._since_n[j] = 0  # a detection restarts the "since" statistics
                self._since_sum[j] = 0.0
                start = row + 1
                if not self._active[name][j]:  # one event per detector and episode
                    self._active[name][j] = True
                    out.append((row, j, name, "drift", None, count))
            self._resolve_segment(z, j, start, z.shape[0], out)
        out.sort(key=lambda r: (r[0], r[1], DETECTORS.index(r[2]), r[3]))
        return out

    def _constant_changes(self, x: np.ndarray, first_row: np.ndarray, features: np.ndarray) -> list[_Decision]:
        """Episodes of the constant features, row by row: (row, feature, CONSTANT, status, shift).

        A value farther than the tolerance from the constant opens a ``drift`` episode (one
        event, its distance the statistic); it stays open while values keep straying, and
        is ``resolved`` once ``resolve_min_count`` values in a row are at the constant
        again. The run is carried across batches, so how the stream is cut does not matter.
        """
        out: list[_Decision] = []
        need = self.config.resolve_min_count
        for j in features:
            j = int(j)
            start = int(first_row[j])
            col = x[start:, j]
            rows = np.flatnonzero(~np.isnan(col))
            shift = np.abs(col[rows] - self._ref_mean[j])
            off = shift > self._const_tol[j]
            i = 0
            while i < rows.size:
                if not self._const_active[j]:
                    k = i + int(np.argmax(off[i:]))
                    if not off[k]:
                        break
                    self._const_active[j], self._const_run[j] = True, 0
                    out.append((start + int(rows[k]), j, CONSTANT, "drift", float(shift[k]), None))
                    i = k + 1
                    continue
                seg = off[i:]
                pos = np.arange(seg.size)
                last_off = np.maximum.accumulate(np.where(seg, pos, -1))
                run = np.where(last_off >= 0, pos - last_off, self._const_run[j] + pos + 1)
                k = int(np.argmax(run >= need))
                if run[k] < need:
                    self._const_run[j] = int(run[-1])
                    break
                self._const_active[j], self._const_run[j] = False, 0
                out.append((start + int(rows[i + k]), j, CONSTANT, "resolved", float(shift[i + k]), None))
                i += k + 1
        return out

    def _resolve_segment(self, z: np.ndarray, j: int, a: int, b: int, out: list[_Decision]) -> None:
        """Accumulate rows [a, b) of feature j; resolve an open episode at the first row that qualifies."""
        if b <= a:
            return
        seg = z[a:b, j]
        ok = ~np.isnan(seg)
        cn = self._since_n[j] + np.cumsum(ok)
        cs = self._since_sum[j] + np.cumsum(np.where(ok, seg, 0.0))
        active = [name for name, flags in self._active.items() if flags[j]]
        if active:
            with np.errstate(invalid="ignore", divide="ignore"):
                good = (
                    ok
                    & (cn >= self.config.resolve_min_count)
                    & (np.abs(cs / cn) <= self.config.resolve_tolerance_sigma)
                )
            first = int(np.argmax(good))
            if good[first]:
                for name in active:
                    self._active[name][j] = False
                    out.append((a + first, j, name, "resolved", float(cs[first] / cn[first]), None))
        self._since_n[j] = int(cn[-1])
        self._since_sum[j] = float(cs[-1])

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything the bank knows, as plain dicts / numpy arrays / numbers (no pickle).

        ``DetectorBank.from_state(bank.state_dict(), config)`` continues exactly where
        ``bank`` stands: the same future batches give the same signals.
        """
        warm_lengths = np.array([-1 if w is None else sum(len(c) for c in w) for w in self._warm], dtype=np.int64)
        chunks = [c for w in self._warm if w is not None for c in w]
        return {
            "kind": "detector_bank",
            "version": 1,
            "features": list(self.features),
            "detectors": {name: det.state_dict() for name, det in self._detectors.items()},
            "live": self._live.state_dict(),
            "ref_mean": self._ref_mean.copy(),
            "ref_std": self._ref_std.copy(),
            "clip_lo": self._clip_lo.copy(),
            "clip_hi": self._clip_hi.copy(),
            "ready": self._ready.copy(),
            "warm_lengths": warm_lengths,
            "warm_values": np.concatenate(chunks) if chunks else np.zeros(0),
            "warm_events": self._warm_events.copy(),
            "warm_missing": self._warm_missing.copy(),
            "reference": [None if r is None else r.model_dump() for r in self._reference],
            "const": self._const.copy(),
            "const_tol": self._const_tol.copy(),
            "const_active": self._const_active.copy(),
            "const_run": self._const_run.copy(),
            "active": {name: flags.copy() for name, flags in self._active.items()},
            "since_n": self._since_n.copy(),
            "since_sum": self._since_sum.copy(),
            "n_rows": self.n_rows,
            "values_dropped": self.values_dropped,
            "evidence": {"z": self._ring_z.copy(), "rows": self._ring_row.copy(), "n": self._ring_n.copy()},
            "monitor": self.monitor.state_dict() if self.monitor is not None else None,
            "concept": self.concept.state_dict() if self.concept is not None else None,
            "sequential": self.sequential.state_dict() if self.sequential is not None else None,
            "multivariate": self.multivariate.state_dict() if self.multivariate is not None else None,
            "seasonal": self.seasonal.state_dict() if self.seasonal is not None else None,
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], config: BankConfig | None = None, profile: ReferenceProfile | None = None
    ) -> DetectorBank:
        """Rebuild a bank from :meth:`state_dict` (arrays may come back as lists)."""
        if state.get("kind") != "detector_bank" or state.get("version") != 1:
            raise ValueError(f"not a version-1 detector bank state: {state.get('kind')!r} v{state.get('version')!r}")
        bank = cls(config, profile)
        if (state.get("monitor") is None) != (bank.monitor is None):
            raise ValueError("state and configuration disagree on the reference profile")
        if bank.seasonal is not None and state.get("seasonal") is not None:
            bank.seasonal.load_state(state["seasonal"])
        if set(state["detectors"]) != set(bank._detectors):
            raise ValueError(
                f"state has detectors {sorted(state['detectors'])}, config enables {sorted(bank._detectors)}"
            )
        det_cls = {name: type(det) for name, det in bank._detectors.items()}
        bank._detectors = {name: det_cls[name].from_state(st) for name, st in state["detectors"].items()}
        bank.features = list(state["features"])
        bank._index = {name: i for i, name in enumerate(bank.features)}
        bank._live.load_state(state["live"])
        bank._ref_mean = np.asarray(state["ref_mean"], dtype=np.float64)
        bank._ref_std = np.asarray(state["ref_std"], dtype=np.float64)
        bank._clip_lo = np.asarray(state["clip_lo"], dtype=np.float64)
        bank._clip_hi = np.asarray(state["clip_hi"], dtype=np.float64)
        bank._ready = np.asarray(state["ready"], dtype=bool)
        values = np.asarray(state["warm_values"], dtype=np.float64)
        bank._warm = []
        pos = 0
        for length in np.asarray(state["warm_lengths"], dtype=np.int64):
            if length < 0:
                bank._warm.append(None)
            else:
                bank._warm.append([values[pos : pos + length]] if length else [])
                pos += int(length)
        bank._warm_events = np.asarray(state["warm_events"], dtype=np.int64)
        bank._warm_missing = np.asarray(state["warm_missing"], dtype=np.int64)
        bank._reference = [None if r is None else WindowSummary.model_validate(r) for r in state["reference"]]
        n = len(bank.features)  # states from before the constant watch have none: no feature is constant
        bank._const = np.asarray(state.get("const", np.zeros(n)), dtype=bool)
        bank._const_tol = np.asarray(state.get("const_tol", np.zeros(n)), dtype=np.float64)
        bank._const_active = np.asarray(state.get("const_active", np.zeros(n)), dtype=bool)
        bank._const_run = np.asarray(state.get("const_run", np.zeros(n)), dtype=np.int64)
        bank._active = {name: np.asarray(flags, dtype=bool) for name, flags in state["active"].items()}
        bank._since_n = np.asarray(state["since_n"], dtype=np.int64)
        bank._since_sum = np.asarray(state["since_sum"], dtype=np.float64)
        bank.n_rows = int(state["n_rows"])
        bank.values_dropped = int(state["values_dropped"])
        # states from before this evidence ring (none, or the old "recent") start with an
        # empty one: the first detections summarise this process's values
        shape = (EVIDENCE_EVENTS, len(bank.features))
        ev = state.get("evidence")
        if ev is not None:
            bank._ring_z = np.asarray(ev["z"], dtype=np.float32).reshape(shape)
            bank._ring_row = np.asarray(ev["rows"], dtype=np.int64).reshape(shape)
            bank._ring_n = np.asarray(ev["n"], dtype=np.int64).reshape(shape[1])
        else:
            bank._ring_z = np.full(shape, np.nan, dtype=np.float32)
            bank._ring_row = np.zeros(shape, dtype=np.int64)
            bank._ring_n = np.zeros(shape[1], dtype=np.int64)
        if bank.monitor is not None:
            bank.monitor.load_state(state["monitor"])
        if bank.concept is not None and state.get("concept") is not None:
            bank.concept.load_state(state["concept"])
        bank._load_sequential(state.get("sequential"))
        if bank.multivariate is not None and state.get("multivariate") is not None:
            bank.multivariate.load_state(state["multivariate"])
        return bank

    def _load_sequential(self, state: dict[str, Any] | None) -> None:
        """The sequential tests from a checkpoint; a state written before them (or with them
        disabled) starts fresh ones: against the profile for its features, while features
        whose reference was a warm-up (its values are not kept) stay without them."""
        if self.sequential is None:
            return
        if state is not None:
            self.sequential.load_state(state)
            return
        self.sequential = NumericSequential(self.config.sequential, self.config.resolve_min_count)
        self.sequential.add_features(len(self.features))
        if self.profile is not None:
            for j, name in enumerate(self.features):
                prof = self.profile.features.get(name)
                if isinstance(prof, NumericProfile) and self._ready[j]:
                    self._sequential_profile(j, prof)
        self._apply_per_feature_params()

    # ------------------------------------------------------------------ read-outs
    def _summary(self, sketch: Any, j: int) -> WindowSummary:
        count = int(sketch.count[j])
        events = count + int(sketch.missing[j])
        if count == 0:
            return WindowSummary(count=0, mean=None, std=None, quantiles={}, missing_ratio=1.0 if events else None)
        var = float(sketch.variance[j])
        return WindowSummary(
            count=count,
            mean=float(sketch.mean[j]),
            std=float(np.sqrt(var)) if np.isfinite(var) else None,
            quantiles=_quantiles([float(sketch.quantile(q)[j]) for q in QUANTILES]),
            missing_ratio=float(sketch.missing[j] / events),
        )

    def reference_of(self, feature: str) -> WindowSummary | None:
        """The reference a numeric feature is compared with (the profile's or the warm-up's
        summary); None while it warms up or when the change detectors do not watch it."""
        j = self._index.get(feature)
        return None if j is None else self._reference[j]

    def status(self) -> list[FeatureStatus]:
        """Current read-outs of every feature (for gauges)."""
        counts, means, missing = self._live.mean_and_missing()
        out = []
        adwin = cast("WindowReadouts | None", self._detectors.get("adwin"))
        ph = cast("CusumReadouts | None", self._detectors.get("page_hinkley"))
        seq_active = self.sequential.active if self.sequential is not None else None
        for j, name in enumerate(self.features):
            count = int(counts[j])
            events = count + int(missing[j])
            mean = float(means[j]) if count else None
            scores: dict[str, float] = {}
            if self._ready[j] and mean is not None:
                scores["mean_shift_sigma"] = float((mean - self._ref_mean[j]) / self._ref_std[j])
            window: dict[str, int] = {}
            if adwin is not None:
                window["adwin"] = int(adwin.width[j])
            if ph is not None:
                # Both tests are >= 0 once there is data; river's start values (-inf, -1)
                # mean "no evidence yet", which a gauge shows as 0, not -Inf.
                scores["page_hinkley_up"] = max(float(ph.test_increase[j]), 0.0)
                scores["page_hinkley_down"] = max(float(ph.test_decrease[j]), 0.0)
            drift = {k: bool(v[j]) for k, v in self._active.items()}
            if seq_active is not None and self._ready[j] and not self._const[j]:
                drift.update({test: bool(flags[j]) for test, flags in seq_active.items()})
            if self._const[j]:
                drift[CONSTANT] = bool(self._const_active[j])
            if self.monitor is not None:
                scores.update(self.monitor.scores.get(name, {}))
                drift.update({t: on for (f, t), on in self.monitor.active.items() if f == name})
            out.append(
                FeatureStatus(
                    feature=name,
                    live_mean=mean,
                    missing_ratio=float(missing[j] / events) if events else None,
                    drift=drift,
                    scores=scores,
                    window_size=window,
                )
            )
        if self.monitor is not None:  # categorical features live only in the monitor
            for name in self.monitor.categorical:
                out.append(
                    FeatureStatus(
                        feature=name,
                        live_mean=None,
                        missing_ratio=self.monitor.last_missing.get(name),
                        drift={t: on for (f, t), on in self.monitor.active.items() if f == name},
                        scores=dict(self.monitor.scores.get(name, {})),
                    )
                )
        if self.multivariate is not None:
            out.append(self.multivariate.status())
        return out


def _signal_order(sig: DriftSignal) -> tuple[int, str, str, str]:
    return (sig.row, sig.feature, sig.detector, sig.status)


def _quantiles(values: Any) -> dict[str, float]:
    return {f"p{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, values, strict=True)}
