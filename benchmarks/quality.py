"""Detection quality: false alarms, delays and misses, driftsentinel vs river's defaults.

``python -m benchmarks.quality [--quick] [--seeds N]`` prints ONE JSON object.

Three contenders, in the same run, on the same streams:

* ``driftsentinel`` — its defaults as a user gets them with a reference: a profile built
  from a reference sample (``--reference-size`` values per feature, drawn like the
  stream before its change), ``calibrate(profile, BankConfig(), false_alarms_per_million=1)``
  written into ``BankConfig.per_feature``, and a :class:`DetectorBank` with that profile
  (every detector the bank runs by default). The ``zero_config`` scenarios use no profile
  at all (``BankConfig()``: the warm-up is the reference). A feature counts as detected at
  the first ``drift`` event of *any* of its detectors; every detector is also reported on
  its own, with how many of them agreed on one change (``episodes``).
* ``river_adwin`` / ``river_page_hinkley`` — river's ``drift.ADWIN()`` and
  ``drift.PageHinkley()`` at river's default parameters, fed the raw values as a user of
  river would. They run as driftsentinel's numba kernels (``detectors.ADWIN``,
  ``detectors.PageHinkley``), which reproduce river's detections exactly (tested in
  tests/unit/test_adwin.py, test_page_hinkley.py); this run re-checks parity on a prefix
  against river itself (``parity``). river takes numbers only: it has no entry on the
  categorical stream.

Streams (each feature an independent series unless the scenario says otherwise;
``--features`` per matrix = one model):

* change streams, ``--seeds`` per scenario: stationary (N(0, 1) unless said otherwise;
  categories for the categorical one) until the change point, then the change. The change
  point is, per scenario, ``--change-at`` plus a random phase in [0, window_events) (the
  change lands anywhere in a window test's tumbling window, as in production), event 0
  (the stream is off from the first monitored event), or the end of the zero-config
  warm-up (``BankConfig().warmup``); ``--after`` events follow. Detections before the
  change are false alarms; the delay is the first ``drift`` event at or after the change
  minus the change point; no event within ``--horizon`` events is a missed detection. A
  joint change (correlation at unchanged marginals) is one series per model, detected by a
  ``drift`` event on the model-level feature ``@multivariate`` (and, reported beside it,
  on any feature).
* stationary streams, ``--stationary-events`` per feature for every distribution of
  issue 5 (normal, lognormal, exponential, bimodal, Student-t 3 dof, Poisson counts,
  0/1 indicators): every ``drift`` event is a false alarm. ``--stationary-banks``
  models of ``--features`` features each, every model with its own reference sample,
  profile and calibration.

Nothing here is tuned to pass: goals are computed from the measurements of this run
(``PREVIOUS_MEAN_SHIFT_MEDIAN`` is the earlier release's measurement the mean-shift goal
compares with, not a result of this run).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

BATCH = 4096
# A "bimodal" unit: equal-weight mixture of N(-m, s^2) and N(m, s^2) with m^2 + s^2 = 1,
# so mean 0 and variance 1 like N(0, 1) (the shape change keeps both).
BIMODAL_M = 0.9
BIMODAL_S = math.sqrt(1.0 - BIMODAL_M**2)
CATEGORIES = np.array(["a", "b", "c", "d", "e"], dtype=object)
CAT_BEFORE = np.array([0.40, 0.30, 0.15, 0.10, 0.05])
CAT_AFTER = np.array([0.30, 0.30, 0.20, 0.10, 0.10])
MISSING_BEFORE = 0.01
MISSING_AFTER = 0.20
MEAN_SHIFTS = (0.25, 0.5, 1.0, 2.0)
ZERO_CONFIG_SHIFTS = (1.0, 3.0, 5.0)
LEVEL_SHIFT = 10.0  # reference sds
LEVEL_BASE = 100.0  # the doubling series: N(100, 1), then every value x2
SD_FACTOR = 1.1
CORRELATION = 0.8
METHODS = ("driftsentinel", "river_adwin", "river_page_hinkley")
ZERO_CONFIG = "zero_config"  # reference key: no profile, no calibration, BankConfig()

# Detector names (DriftSignal.detector) beyond the window tests', reported one by one.
CHANGE_DETECTORS = ("adwin", "page_hinkley")
NUMERIC_SEQUENTIAL = ("cusum_mean", "cusum_scale", "cusum_shape", "cusum_missing")
CATEGORICAL_SEQUENTIAL = ("cusum_categories", "cusum_unseen")
# detector -> the model-level feature it reports on (not one of the model's own features)
MODEL_FEATURES = {"multivariate": "@multivariate"}

# Median delays (events) of driftsentinel before the sequential tests, measured by this benchmark
# with its full defaults (50 seeds x 10 features; docs/quality.md as of issue 5): the mean-shift
# goal of issue 19 is "no slower than these".
PREVIOUS_MEAN_SHIFT_MEDIAN = {0.25: 341.0, 0.5: 105.0, 1.0: 38.0, 2.0: 16.0}
GOAL_WITHIN = 10_000  # "caught within 10,000 events" (issue 19); judged at min(horizon, this)

Hit = tuple[int, str, str, str]  # (row, feature, detector, status)


# ---------------------------------------------------------------------------- distributions
def draw(dist: str, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Draws of one of the stationary distributions (float64)."""
    if dist == "normal":
        return rng.normal(size=shape)
    if dist == "lognormal":
        return rng.lognormal(size=shape)
    if dist == "exponential":
        return rng.exponential(size=shape)
    if dist == "bimodal":
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        return sign * BIMODAL_M + rng.normal(scale=BIMODAL_S, size=shape)
    if dist == "student_t3":
        return rng.standard_t(3, size=shape)
    if dist == "poisson":
        return rng.poisson(3.0, size=shape).astype(np.float64)
    if dist == "indicator":
        return (rng.random(shape) < 0.2).astype(np.float64)
    if dist == "normal_100":
        return LEVEL_BASE + rng.normal(size=shape)
    raise ValueError(dist)


STATIONARY = ("normal", "lognormal", "exponential", "bimodal", "student_t3", "poisson", "indicator")


def draw_categories(rng: np.random.Generator, probs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return CATEGORIES[rng.choice(len(CATEGORIES), size=shape, p=probs)]


def with_missing(x: np.ndarray, rng: np.random.Generator, share: float | np.ndarray) -> np.ndarray:
    x = x.copy()
    x[rng.random(x.shape) < share] = np.nan
    return x


def feature_names(n_features: int) -> list[str]:
    return [f"f{j}" for j in range(n_features)]


# ---------------------------------------------------------------------------- scenarios
Start = Literal["phase", "first_event", "warmup"]


@dataclass(frozen=True)
class Scenario:
    """One kind of change. ``start``: where the change point is — ``phase``: ``--change-at``
    plus a random phase in the window tests' window; ``first_event``: event 0 (the stream is
    off from the first monitored event); ``warmup``: the end of the zero-config warm-up.
    ``series``: ``feature`` (each feature of each seed is a series) or ``model`` (a joint
    change: each seed is one series). ``shift``: a mean shift in reference sds, if it is one."""

    name: str
    reference: str  # key of the reference (profile + calibration) it is judged against, or ZERO_CONFIG
    kind: str  # "numeric" or "categorical"
    make: Callable[[np.random.Generator, int, int, int], np.ndarray]  # (rng, rows, features, cp) -> matrix
    what: str
    start: Start = "phase"
    series: Literal["feature", "model"] = "feature"
    shift: float | None = None


def _mean_shift(delta: float) -> Callable[..., np.ndarray]:
    def make(rng: np.random.Generator, n: int, f: int, cp: int) -> np.ndarray:
        x = rng.normal(size=(n, f))
        x[cp:] += delta
        return x

    return make


def _gradual(rng: np.random.Generator, n: int, f: int, cp: int, ramp: int = 5000) -> np.ndarray:
    x = rng.normal(size=(n, f))
    x += np.clip((np.arange(n) - cp) / ramp, 0.0, 1.0)[:, None]
    return x


def _scale(factor: float) -> Callable[..., np.ndarray]:
    def make(rng: np.random.Generator, n: int, f: int, cp: int) -> np.ndarray:
        x = rng.normal(size=(n, f))
        x[cp:] *= factor
        return x

    return make


def _shape(rng: np.random.Generator, n: int, f: int, cp: int) -> np.ndarray:
    return np.r_[rng.normal(size=(cp, f)), draw("bimodal", rng, (n - cp, f))]


def _categorical(rng: np.random.Generator, n: int, f: int, cp: int) -> np.ndarray:
    return np.r_[draw_categories(rng, CAT_BEFORE, (cp, f)), draw_categories(rng, CAT_AFTER, (n - cp, f))]


def _missing(rng: np.random.Generator, n: int, f: int, cp: int) -> np.ndarray:
    share = np.where(np.arange(n) < cp, MISSING_BEFORE, MISSING_AFTER)[:, None]
    return with_missing(rng.normal(size=(n, f)), rng, share)


def _doubling(rng: np.random.Generator, n: int, f: int, cp: int) -> np.ndarray:
    x = draw("normal_100", rng, (n, f))
    x[cp:] *= 2.0
    return x


def _correlation(rng: np.random.Generator, n: int, f: int, cp: int) -> np.ndarray:
    """Independent N(0, 1); from ``cp`` on, f1 = r f0 + sqrt(1 - r^2) e: still N(0, 1), correlation r."""
    if f < 2:
        raise ValueError("the correlation scenario needs at least 2 features (--features)")
    x = rng.normal(size=(n, f))
    x[cp:, 1] = CORRELATION * x[cp:, 0] + math.sqrt(1.0 - CORRELATION**2) * x[cp:, 1]
    return x


# Scenarios are appended, never inserted: scenario i draws its streams from [seed, i], so the
# earlier scenarios' streams stay those of earlier runs.
SCENARIOS = [
    *(
        Scenario(
            f"mean_shift_{d:g}sigma", "normal", "numeric", _mean_shift(d), f"N(0,1) -> N({d:g},1), abrupt", shift=d
        )
        for d in MEAN_SHIFTS
    ),
    Scenario(
        "gradual_1sigma_over_5000",
        "normal",
        "numeric",
        _gradual,
        "mean rises linearly from 0 to +1 sigma over 5,000 events, then stays",
    ),
    Scenario(
        "variance_doubling", "normal", "numeric", _scale(math.sqrt(2.0)), "N(0,1) -> N(0,2): variance x2, same mean"
    ),
    Scenario(
        "shape_normal_to_bimodal",
        "normal",
        "numeric",
        _shape,
        f"N(0,1) -> 0.5 N(-{BIMODAL_M},{BIMODAL_S:.3f}^2) + 0.5 N(+{BIMODAL_M},{BIMODAL_S:.3f}^2): "
        "same mean and variance",
    ),
    Scenario(
        "categorical_frequency_shift",
        "categorical",
        "categorical",
        _categorical,
        f"5 categories, shares {CAT_BEFORE.tolist()} -> {CAT_AFTER.tolist()}",
    ),
    Scenario(
        "missing_ratio_jump",
        "normal_missing",
        "numeric",
        _missing,
        f"N(0,1) values, missing share {MISSING_BEFORE:g} -> {MISSING_AFTER:g}",
    ),
    Scenario(
        "mean_shift_1sigma_from_start",
        "normal",
        "numeric",
        _mean_shift(1.0),
        "N(1,1) from the first monitored event against an N(0,1) reference (train/serve skew): change point 0",
        start="first_event",
        shift=1.0,
    ),
    *(
        Scenario(
            f"zero_config_shift_{d:g}sigma_after_warmup",
            ZERO_CONFIG,
            "numeric",
            _mean_shift(d),
            f"no profile (BankConfig(), the warm-up is the reference): N(0,1) -> N({d:g},1) from the end of the "
            "warm-up",
            start="warmup",
            shift=d,
        )
        for d in ZERO_CONFIG_SHIFTS
    ),
    Scenario(
        "zero_config_doubling_after_warmup",
        ZERO_CONFIG,
        "numeric",
        _doubling,
        f"no profile: N({LEVEL_BASE:g},1), every value x2 from the end of the warm-up",
        start="warmup",
    ),
    Scenario(
        f"level_shift_{LEVEL_SHIFT:g}sigma",
        "normal",
        "numeric",
        _mean_shift(LEVEL_SHIFT),
        f"N(0,1) -> N({LEVEL_SHIFT:g},1): far outside the reference range",
        shift=LEVEL_SHIFT,
    ),
    Scenario(
        "level_doubling",
        "normal_100",
        "numeric",
        _doubling,
        f"N({LEVEL_BASE:g},1) reference and stream, then every value x2 (about +{LEVEL_BASE:g} sd)",
    ),
    Scenario(
        "sd_change_10pct",
        "normal",
        "numeric",
        _scale(SD_FACTOR),
        f"N(0,1) -> N(0,{SD_FACTOR:g}^2): sd x{SD_FACTOR:g}, same mean",
    ),
    Scenario(
        "correlation_0_to_0_8",
        "normal",
        "numeric",
        _correlation,
        f"f0, f1 independent -> correlation {CORRELATION:g}, both still N(0,1); the other features independent. "
        "One series per model",
        series="model",
    ),
]
LEVEL_SCENARIOS = (f"level_shift_{LEVEL_SHIFT:g}sigma", "level_doubling", "zero_config_doubling_after_warmup")


# ---------------------------------------------------------------------------- driftsentinel setup
@dataclass
class Reference:
    names: list[str]
    kind: str
    profile: Any  # None: zero-config (the warm-up is the reference)
    config: Any
    params: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0


def make_reference(key: str, n_features: int, size: int, calib_values: int, seed: int) -> Reference:
    """driftsentinel's defaults for one model: profile of a reference sample + calibration."""
    from driftsentinel.detectors.calibration import calibrate
    from driftsentinel.detectors.profile import build_profile
    from driftsentinel.schemas import BankConfig
    from driftsentinel.schemas.config import FeatureParams

    names = feature_names(n_features)
    if key == ZERO_CONFIG:
        return Reference(names, "numeric", None, BankConfig())
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    if key == "categorical":
        sample = draw_categories(rng, CAT_BEFORE, (size, n_features))
        columns = {n: sample[:, j].tolist() for j, n in enumerate(names)}
        kind = "categorical"
    else:
        dist = "normal" if key == "normal_missing" else key
        sample = draw(dist, rng, (size, n_features))
        if key == "normal_missing":
            sample = with_missing(sample, rng, MISSING_BEFORE)
        columns = {n: [None if v != v else v for v in sample[:, j].tolist()] for j, n in enumerate(names)}
        kind = "numeric"
    profile = build_profile(columns, source=f"benchmark:{key}")
    params = calibrate(profile, BankConfig(), false_alarms_per_million=1.0, values=calib_values, seed=seed + 1)
    config = BankConfig(per_feature={f: FeatureParams(**p) for f, p in params.items()})
    return Reference(names, kind, profile, config, params, time.perf_counter() - t0)


def run_driftsentinel(ref: Reference, data: np.ndarray) -> list[Hit]:
    """Feed ``data`` to a fresh bank in batches; (row, feature, detector, status) of each
    ``drift`` and ``resolved`` decision. The feature is the signal's own name: one of
    ``ref.names``, or a model-level one such as ``@multivariate``."""
    from driftsentinel.detectors.bank import DetectorBank
    from driftsentinel.schemas import FeatureBatch

    bank = DetectorBank(ref.config, ref.profile)
    n = data.shape[0]
    out: list[Hit] = []
    for a in range(0, n, BATCH):
        chunk = data[a : a + BATCH]
        rows = chunk.shape[0]
        offsets = np.arange(a, a + rows, dtype=np.int64)
        times = np.full(rows, np.nan)
        if ref.kind == "categorical":
            batch = FeatureBatch([], np.empty((rows, 0)), offsets, times, cat_names=ref.names, cat_values=chunk)
        else:
            batch = FeatureBatch(ref.names, np.ascontiguousarray(chunk, dtype=np.float64), offsets, times)
        for s in bank.update(batch):
            if s.status in ("drift", "resolved"):
                out.append((a + s.row, s.feature, s.detector, s.status))
    return out


def run_river(cls: Any, data: np.ndarray) -> list[Hit]:
    """River's defaults on the raw values (numba kernels identical to river's detections)."""
    det = cls(n_features=data.shape[1])
    names = feature_names(data.shape[1])
    out: list[Hit] = []
    for a in range(0, data.shape[0], BATCH):
        for row, j in det.update(data[a : a + BATCH]):
            out.append((a + int(row), names[int(j)], "all", "drift"))
    return out


# ---------------------------------------------------------------------------- statistics
def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 3)


def delay_stats(
    delays: list[int], missed: int, series: int, false_alarms: int, pre_events: int, within: int
) -> dict[str, Any]:
    """Delays of the detected series; ``delay_median_all`` counts a missed series as
    infinitely late (None when half or more were missed), so it is the median a goal on
    "median delay" is judged by; ``detected_share_within``: the share of series detected
    within ``within`` events."""
    d = np.asarray(delays, dtype=np.float64)
    every = np.r_[d, np.full(missed, np.inf)]
    return {
        "false_alarms": false_alarms,
        "false_alarms_per_million": _num(false_alarms / pre_events * 1e6) if pre_events else None,
        "series": series,
        "detected": int(d.size),
        "detected_share": _num(d.size / series) if series else None,
        "missed": missed,
        "delay_mean": _num(d.mean()) if d.size else None,
        "delay_median": _num(float(np.median(d))) if d.size else None,
        "delay_median_all": _num(float(np.median(every))) if every.size else None,
        "delay_p90": _num(float(np.quantile(d, 0.9))) if d.size else None,
        "within": within,
        "detected_share_within": _num(float((d <= within).sum()) / series) if series else None,
    }


def _agreeing(ev: list[Hit], first: int, last: int, unit: str, unit_of: Callable[[str], str | None]) -> int:
    """Distinct (feature, detector) drift decisions of series ``unit`` from its first detection
    (row ``first``) until its first ``resolved`` decision or row ``last``, whichever is first:
    how many separate alerts one change produced before the engine merges them."""
    end = last + 1
    for row, feat, _det, status in ev:
        if status == "resolved" and first <= row < end and unit_of(feat) == unit:
            end = row
    return len(
        {(feat, det) for row, feat, det, st in ev if st == "drift" and first <= row < end and unit_of(feat) == unit}
    )


def summarize_change(
    events: list[list[Hit]],
    cps: list[int],
    names: list[str],
    horizon: int,
    detectors: list[str] | None,
    series: Literal["feature", "model"] = "feature",
    within: int | None = None,
) -> dict[str, Any]:
    """events[s] = decisions of seed s; cps[s] its change point. Every drift decision before
    the change is a false alarm (any feature, model-level ones too); false alarms per million
    count ``len(names)`` feature values per event. ``within`` (default: the horizon): see
    :func:`delay_stats`."""
    within = horizon if within is None else min(within, horizon)
    name_set = set(names)
    n_features = len(names)

    def one(
        keep: Callable[[str, str], bool], units: list[str], unit_of: Callable[[str], str | None], episodes: bool
    ) -> dict[str, Any]:
        delays: list[int] = []
        agree: list[int] = []
        missed = fa = pre = 0
        for ev, cp in zip(events, cps, strict=True):
            pre += cp * n_features
            first: dict[str, int] = {}
            for row, feat, det, status in ev:
                if status != "drift" or not keep(feat, det):
                    continue
                if row < cp:
                    fa += 1
                    continue
                u = unit_of(feat)
                if u is not None and row < first.get(u, row + 1):
                    first[u] = row
            for u in units:
                if u in first and first[u] - cp <= horizon:
                    delays.append(first[u] - cp)
                    if episodes:
                        agree.append(_agreeing(ev, first[u], cp + horizon, u, unit_of))
                else:
                    missed += 1
        out = delay_stats(delays, missed, len(cps) * len(units), fa, pre, within)
        if episodes:
            a = np.asarray(agree, dtype=np.float64)
            out["episodes"] = {
                "series": int(a.size),
                "detectors_agreeing_median": _num(float(np.median(a))) if a.size else None,
                "detectors_agreeing_mean": _num(float(a.mean())) if a.size else None,
                "detectors_agreeing_p90": _num(float(np.quantile(a, 0.9))) if a.size else None,
                "detectors_agreeing_max": int(a.max()) if a.size else None,
                "one_detector_share": _num(float((a == 1).mean())) if a.size else None,
            }
        return out

    def own_feature(feat: str) -> str | None:
        return feat if feat in name_set else None

    def whole_model(_feat: str) -> str:
        return "model"

    def only(target: str) -> Callable[[str], str | None]:
        return lambda feat: feat if feat == target else None

    def of_detector(name: str) -> Callable[[str, str], bool]:
        return lambda _feat, det: det == name

    def on_feature(name: str) -> Callable[[str, str], bool]:
        return lambda feat, _det: feat == name

    if series == "model":
        out = one(lambda _f, _d: True, ["model"], whole_model, detectors is not None)
        for det, feat in MODEL_FEATURES.items():
            if detectors is not None and det in detectors:
                out[f"on_{feat.lstrip('@')}"] = one(on_feature(feat), [feat], only(feat), False)
    else:
        out = one(lambda _f, _d: True, names, own_feature, detectors is not None)
    if detectors is not None:
        by: dict[str, Any] = {}
        for name in detectors:
            keep = of_detector(name)
            if series == "model":
                by[name] = one(keep, ["model"], whole_model, False)
            elif name in MODEL_FEATURES:
                by[name] = one(keep, [MODEL_FEATURES[name]], only(MODEL_FEATURES[name]), False)
            else:
                by[name] = one(keep, names, own_feature, False)
        out["by_detector"] = by
    return out


def summarize_stationary(events: list[Hit], values: int, detectors: list[str] | None) -> dict[str, Any]:
    def one(keep: Callable[[str], bool]) -> dict[str, Any]:
        hits = [(r, f) for r, f, d, s in events if s == "drift" and keep(d)]
        return {
            "false_alarms": len(hits),
            "false_alarms_per_million": _num(len(hits) / values * 1e6),
            "features_with_alarms": len({f for _r, f in hits}),
        }

    out = one(lambda _d: True)
    out["feature_values"] = values
    if detectors is not None:
        out["by_detector"] = {name: one(name.__eq__) for name in detectors}
    return out


def ds_detectors(ref: Reference, events: list[Hit] | None = None) -> list[str]:
    """driftsentinel detectors that can fire on this kind of feature (reported one by one),
    then any other detector name seen in ``events`` (nothing the bank says goes unreported)."""
    from driftsentinel.schemas import WindowTestConfig

    wt = WindowTestConfig()
    if ref.kind == "categorical":
        names = [*wt.categorical_tests, "missing_rate", "type_error", *CATEGORICAL_SEQUENTIAL]
    else:
        names = [*CHANGE_DETECTORS, *NUMERIC_SEQUENTIAL, *wt.numeric_tests, *wt.quality_tests, *MODEL_FEATURES]
    names = list(dict.fromkeys(names))
    seen = sorted({d for _r, _f, d, s in events or () if s == "drift"} - set(names))
    return names + seen


# ---------------------------------------------------------------------------- parity
def parity(rows: int, n_features: int, seed: int) -> dict[str, Any]:
    """Kernels vs river itself at river's defaults, raw values with shifts (this run)."""
    from driftsentinel.detectors import ADWIN, PageHinkley, RiverADWIN, RiverPageHinkley

    rng = np.random.default_rng(seed)
    x = rng.lognormal(size=(rows, n_features))
    x[rows // 2 :] += 1.0
    out: dict[str, Any] = {"rows": rows, "features": n_features}
    for name, kern, ref in (("adwin", ADWIN, RiverADWIN), ("page_hinkley", PageHinkley, RiverPageHinkley)):
        a, b = run_river(kern, x), run_river(ref, x)
        out[name] = {"identical": a == b, "detections": len(a)}
    return out


# ---------------------------------------------------------------------------- goals
def _median_goal(change: dict[str, Any], names: list[str], target: float) -> dict[str, Any]:
    """Median delay (misses counted as infinitely late) of each scenario at most ``target``
    (not met when one of them was not run)."""
    vals = {k: change[k]["driftsentinel"]["delay_median_all"] for k in names if k in change}
    return {
        "pass": len(vals) == len(names) and all(v is not None and v <= target for v in vals.values()),
        "target": target,
        "values": vals,
        "measured": ", ".join(f"{k}: {_fmt(v, 0)}" for k, v in vals.items()) or "not run",
    }


def goals(change: dict[str, Any], stationary: dict[str, Any], horizon: int) -> dict[str, Any]:
    """The goals of issues 5 and 19, each judged from this run's measurements: ``pass``,
    ``target``, the measured ``value``/``values`` and a one-line ``measured``. A goal over
    several scenarios is not met when one of them was not run (``--only``, ``--stationary``)."""
    ds, ad, ph = METHODS
    g: dict[str, Any] = {}
    shift = {s.name: s.shift for s in SCENARIOS}
    within = min(horizon, GOAL_WITHIN)

    worst = {k: v[ds]["false_alarms_per_million"] for k, v in stationary.items()}
    g["stationary_false_alarms_per_million_le_1"] = {
        "pass": set(worst) == set(STATIONARY) and all(v is not None and v <= 1.0 for v in worst.values()),
        "target": 1.0,
        "values": worst,
        "measured": ", ".join(f"{k} {_fmt(v, 2)}" for k, v in worst.items()),
    }

    missed = {k: change[k][ds]["missed"] for k in change if (shift.get(k) or 0.0) >= 0.5}
    g["no_missed_detection_for_shifts_ge_0.5_sigma"] = {
        "pass": all(v == 0 for v in missed.values()),
        "target": 0,
        "values": missed,
        "measured": f"{sum(missed.values())} missed over {len(missed)} streams",
    }

    med = change.get("mean_shift_1sigma", {}).get(ds, {}).get("delay_median_all")
    g["median_delay_1sigma_le_300"] = {
        "pass": med is not None and med <= 300,
        "target": 300,
        "value": med,
        "measured": _fmt(med, 0),
    }

    g["missing_1pct_to_20pct_median_delay_le_60"] = _median_goal(change, ["missing_ratio_jump"], 60)
    g["variance_doubling_median_delay_le_300"] = _median_goal(change, ["variance_doubling"], 300)
    g["normal_to_bimodal_median_delay_le_800"] = _median_goal(change, ["shape_normal_to_bimodal"], 800)
    g["categorical_frequency_shift_median_delay_le_800"] = _median_goal(change, ["categorical_frequency_shift"], 800)
    # "a 1 sd shift present from the first monitored event": with a profile, event 0; zero-config,
    # the first event after the warm-up (the first blind spot names both).
    g["shift_1sigma_from_first_monitored_event_median_delay_le_40"] = _median_goal(
        change, ["mean_shift_1sigma_from_start", "zero_config_shift_1sigma_after_warmup"], 40
    )

    prev: dict[str, Any] = {}
    for k in change:
        d = shift.get(k)
        if d is not None and k == f"mean_shift_{d:g}sigma" and d in PREVIOUS_MEAN_SHIFT_MEDIAN:
            a = change[k][ds]["delay_median_all"]
            prev[k] = {"driftsentinel": a, "previous": PREVIOUS_MEAN_SHIFT_MEDIAN[d]}
            prev[k]["pass"] = a is not None and a <= PREVIOUS_MEAN_SHIFT_MEDIAN[d]
    g["mean_shift_median_delay_no_slower_than_previous"] = {
        "pass": len(prev) == len(PREVIOUS_MEAN_SHIFT_MEDIAN) and all(v["pass"] for v in prev.values()),
        "target": PREVIOUS_MEAN_SHIFT_MEDIAN,
        "values": prev,
        "measured": ", ".join(
            f"{k}: {_fmt(v['driftsentinel'], 0)} vs {_fmt(v['previous'], 0)}" for k, v in prev.items()
        ),
    }

    cmp: dict[str, Any] = {}
    for k in change:
        d = shift.get(k)
        if d is not None and d in MEAN_SHIFTS and k == f"mean_shift_{d:g}sigma":
            a, b = change[k][ds]["delay_median_all"], change[k][ad]["delay_median_all"]
            cmp[k] = {"driftsentinel": a, "river_adwin": b, "pass": a is not None and (b is None or a <= b)}
    g["mean_shift_median_delay_le_river_adwin"] = {
        "pass": len(cmp) == len(MEAN_SHIFTS) and all(v["pass"] for v in cmp.values()),
        "values": cmp,
        "measured": ", ".join(
            f"{k}: {_fmt(v['driftsentinel'], 0)} vs {_fmt(v['river_adwin'], 0)}" for k, v in cmp.items()
        ),
    }

    level = {k: change[k][ds]["missed"] for k in LEVEL_SCENARIOS if k in change}
    g["level_shift_ge_10_sigma_found"] = {
        "pass": len(level) == len(LEVEL_SCENARIOS) and all(v == 0 for v in level.values()),
        "target": 0,
        "values": level,
        "measured": ", ".join(f"{k}: {change[k][ds]['detected']}/{change[k][ds]['series']}" for k in level),
    }

    share = _within_share(change.get("sd_change_10pct", {}).get(ds))
    g["sd_change_10pct_caught_in_95pct_within_10000"] = {
        "pass": share is not None and share >= 0.95,
        "target": 0.95,
        "within": within,
        "value": share,
        "measured": f"{_fmt(share, 3)} within {within:,} events",
    }

    corr = change.get("correlation_0_to_0_8", {}).get(ds, {})
    mv = corr.get("on_multivariate")
    mv_share = _within_share(mv)
    g["correlation_caught_within_10000"] = {
        "pass": mv_share == 1.0,
        "target": 1.0,
        "within": within,
        "value": mv_share,
        "measured": f"@multivariate {_fmt(mv_share, 3)} of series within {within:,} events "
        f"(any feature: {_fmt(_within_share(corr), 3)})",
    }

    fewer: dict[str, Any] = {}
    for k, v in [*change.items(), *stationary.items()]:
        if v.get(ph) is None:
            continue  # river takes numbers only (categorical stream)
        a, b = v[ds]["false_alarms"], v[ph]["false_alarms"]
        # no false alarm is not more than river's, even where river had none either
        fewer[k] = {"driftsentinel": a, "river_page_hinkley": b, "pass": a < b or a == 0}
    g["fewer_false_alarms_than_river_page_hinkley"] = {
        "pass": all(v["pass"] for v in fewer.values()),
        "values": fewer,
        "measured": f"{sum(v['pass'] for v in fewer.values())} of {len(fewer)} numeric streams",
    }
    return g


def _within_share(res: dict[str, Any] | None) -> float | None:
    """Share of ``res``'s series detected within its ``within`` events."""
    return None if not res else res.get("detected_share_within")


# ---------------------------------------------------------------------------- markdown
def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,}"


def _cell_delay(r: dict[str, Any]) -> str:
    return f"{_fmt(r['delay_median'], 0)} / {_fmt(r['delay_p90'], 0)}" if r["detected"] else "—"


def markdown(out: dict[str, Any]) -> str:
    """The tables of docs/quality.md, from one run's JSON."""
    s = out["setup"]
    lines = [
        f"Change streams: {s['seeds']} seeds x {s['features_per_model']} features per scenario; change at event "
        f"{s['change_at']:,} + a random phase of up to {s['window_events']:,} (from start: event 0; zero config: "
        f"the end of the warm-up, event {s.get('zero_config_warmup', 0):,}); missed = no drift event within "
        f"{s['horizon']:,} events. Stationary: {s['stationary_models']} models x {s['features_per_model']} features x "
        f"{s['stationary_events']:,} events per distribution. Delays in events, median / p90 of the detected series.",
        "",
        "| stream | driftsentinel: false alarms per M | delay | missed "
        "| river ADWIN: false alarms per M | delay | missed "
        "| river Page-Hinkley: false alarms per M | delay | missed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, sc in out["change"].items():
        cells = [name.replace("_", " ") + (" (per model, any feature)" if sc.get("series") == "model" else "")]
        for m in METHODS:
            r = sc[m]
            if r is None:
                cells += ["n/a (river takes numbers)", "", ""]
            else:
                cells += [_fmt(r["false_alarms_per_million"], 2), _cell_delay(r), f"{r['missed']}/{r['series']}"]
        lines.append("| " + " | ".join(cells) + " |")
    joint = {k: v["driftsentinel"] for k, v in out["change"].items() if "on_multivariate" in v["driftsentinel"]}
    if joint:
        lines += [
            "",
            "Joint changes, one series per model: a drift event on `@multivariate` (the multivariate test) "
            "vs on any feature:",
            "",
            "| stream | @multivariate: delay | caught | any feature: delay | caught |",
            "|---|---|---|---|---|",
        ]
        for name, r in joint.items():
            mv = r["on_multivariate"]
            lines.append(
                f"| {name.replace('_', ' ')} | {_cell_delay(mv)} | {mv['detected']}/{mv['series']} "
                f"| {_cell_delay(r)} | {r['detected']}/{r['series']} |"
            )
    lines += [
        "",
        "Which driftsentinel detector catches what (median delay, detectors that caught at least half the series):",
        "",
        "| stream | detectors |",
        "|---|---|",
    ]
    for name, sc in out["change"].items():
        by = sc["driftsentinel"]["by_detector"]
        best = sorted((r["delay_median"], d) for d, r in by.items() if r["detected"] * 2 >= r["series"])
        lines.append(f"| {name.replace('_', ' ')} | " + (", ".join(f"{d} {_fmt(v, 0)}" for v, d in best) or "—") + " |")
    lines += [
        "",
        "One change, how many alerts: distinct (feature, detector) drift decisions per detected series, from its "
        "first detection to its first `resolved` decision (or the horizon) — the separate episodes one change "
        "opens unless the engine merges them:",
        "",
        "| stream | series detected | detectors agreeing: median | mean | p90 | max | one detector only |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, sc in out["change"].items():
        e = sc["driftsentinel"].get("episodes")
        if e:
            lines.append(
                f"| {name.replace('_', ' ')} | {e['series']:,} | {_fmt(e['detectors_agreeing_median'])} "
                f"| {_fmt(e['detectors_agreeing_mean'], 2)} | {_fmt(e['detectors_agreeing_p90'])} "
                f"| {_fmt(e['detectors_agreeing_max'])} | {_fmt(e['one_detector_share'], 2)} |"
            )
    lines += [
        "",
        "Stationary streams: false alarms per million feature values (count):",
        "",
        "| distribution | driftsentinel | river ADWIN | river Page-Hinkley | driftsentinel alarms by detector |",
        "|---|---|---|---|---|",
    ]
    for name, st in out["stationary"].items():
        cells = [name.replace("_", " ")]
        cells += [f"{_fmt(st[m]['false_alarms_per_million'], 2)} ({st[m]['false_alarms']:,})" for m in METHODS]
        by = st["driftsentinel"]["by_detector"]
        cells.append(
            ", ".join(
                f"{d} {r['false_alarms']} on {r['features_with_alarms']} features"
                for d, r in by.items()
                if r["false_alarms"]
            )
            or "none"
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| goal | measured | met |", "|---|---|---|"]
    for g, r in out["goals"].items():
        lines.append(f"| {g.replace('_', ' ')} | {r.get('measured', '')} | {'yes' if r['pass'] else '**no**'} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main
def _positive(text: str) -> int:
    """An argparse type: a whole number >= 1 (argparse turns the error into one line, exit 2)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be at least 1")
    return v


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run (smoke tests): fewer seeds, shorter streams")
    p.add_argument("--seeds", type=_positive, default=None, help="change streams per scenario (default 50; quick 2)")
    p.add_argument("--features", type=_positive, default=None, help="features per model (default 10; quick 3)")
    p.add_argument("--change-at", type=_positive, default=None, help="earliest change point (default 5000; quick 1500)")
    p.add_argument("--after", type=_positive, default=None, help="events after the change (default 15000; quick 2500)")
    p.add_argument(
        "--horizon",
        type=_positive,
        default=None,
        help="missed = no drift event this long after (default 10000; quick 2000)",
    )
    p.add_argument(
        "--stationary-events",
        type=_positive,
        default=None,
        help="events per stationary stream (default 1,000,000; quick 20,000)",
    )
    p.add_argument(
        "--stationary-banks",
        type=_positive,
        default=None,
        help="models per stationary distribution (default 6; quick 1)",
    )
    p.add_argument(
        "--reference-size",
        type=_positive,
        default=None,
        help="reference sample per feature (default 50,000; quick 5,000)",
    )
    p.add_argument(
        "--calibration-values",
        type=_positive,
        default=None,
        help="values simulated per feature by calibrate (default 1,000,000 as the CLI; quick 50,000)",
    )
    p.add_argument(
        "--window-events",
        type=_positive,
        default=None,
        help="window tests' window (default: the config's 5,000; quick 500)",
    )
    p.add_argument(
        "--parity-rows",
        type=_positive,
        default=None,
        help="rows of the river parity check (default 20,000; quick 2,000)",
    )
    p.add_argument("--only", metavar="NAMES", help="comma-separated scenario names to run (default: all)")
    p.add_argument(
        "--stationary",
        metavar="NAMES",
        help=f"comma-separated stationary distributions to run (default: all; known: {', '.join(STATIONARY)})",
    )
    p.add_argument("--seed", type=int, default=20260)
    p.add_argument("--markdown", metavar="JSON", help="print the tables of docs/quality.md from a run's JSON and exit")
    args = p.parse_args(argv)
    if args.markdown:
        try:
            with open(args.markdown) as fh:
                run = json.load(fh)
            print(markdown(run))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(
                f"quality --markdown: cannot read {args.markdown!r} as a quality run's JSON ({exc!r})", file=sys.stderr
            )
            return 2
        return 0

    q = args.quick
    seeds = args.seeds or (2 if q else 50)
    F = args.features or (3 if q else 10)
    change_at = args.change_at or (1500 if q else 5000)
    after = args.after or (2500 if q else 15000)
    horizon = args.horizon or (2000 if q else 10000)
    st_events = args.stationary_events or (20_000 if q else 1_000_000)
    st_banks = args.stationary_banks or (1 if q else 6)
    ref_size = args.reference_size or (5_000 if q else 50_000)
    calib_values = args.calibration_values or (50_000 if q else 1_000_000)
    parity_rows = args.parity_rows or (2_000 if q else 20_000)
    scenarios = SCENARIOS
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = sorted(set(wanted) - {sc.name for sc in SCENARIOS})
        if unknown:
            print(
                f"quality --only: unknown scenario(s) {', '.join(unknown)}; known: "
                f"{', '.join(sc.name for sc in SCENARIOS)}",
                file=sys.stderr,
            )
            return 2
        scenarios = [sc for sc in SCENARIOS if sc.name in wanted]
    distributions: tuple[str, ...] = STATIONARY
    if args.stationary:
        wanted = [w.strip() for w in args.stationary.split(",") if w.strip()]
        unknown = sorted(set(wanted) - set(STATIONARY))
        if unknown:
            print(
                f"quality --stationary: unknown distribution(s) {', '.join(unknown)}; known: {', '.join(STATIONARY)}",
                file=sys.stderr,
            )
            return 2
        distributions = tuple(d for d in STATIONARY if d in wanted)
    if F < 2 and any(sc.series == "model" for sc in scenarios):
        print("quality: --features must be at least 2 (the correlation scenario changes two features)", file=sys.stderr)
        return 2

    from driftsentinel.detectors.adwin import ADWIN
    from driftsentinel.detectors.page_hinkley import PageHinkley
    from driftsentinel.schemas import BankConfig, WindowTestConfig

    window_events = args.window_events or (500 if q else WindowTestConfig().window_events)
    warmup = BankConfig().warmup
    t_start, cpu_start = time.perf_counter(), time.process_time()
    cpu: dict[str, float] = {}
    log = lambda msg: print(f"[quality {time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)  # noqa: E731

    refs: dict[str, Reference] = {}
    ref_cpu: dict[str, float] = {}
    calibrated: dict[str, Any] = {}

    def reference(key: str, seed: int) -> Reference:
        name = key if key == ZERO_CONFIG else f"{key}#{seed}"
        if name not in refs:
            c0 = time.process_time()
            ref = make_reference(key, F, ref_size, calib_values, seed)
            ref_cpu[name] = time.process_time() - c0
            if window_events != ref.config.window_tests.window_events:
                ref.config = ref.config.model_copy(
                    update={"window_tests": ref.config.window_tests.model_copy(update={"window_events": window_events})}
                )
            refs[name] = ref
            if ref.params:
                keys = sorted({k for v in ref.params.values() for k, x in v.items() if isinstance(x, (int, float))})
                calibrated[name] = {
                    k: [_num(min(vals)), _num(max(vals))] if k != "adwin_delta" else [min(vals), max(vals)]
                    for k in keys
                    if (vals := [float(v[k]) for v in ref.params.values() if isinstance(v.get(k), (int, float))])
                }
                calibrated[name]["seconds"] = _num(ref.seconds)
            log(f"reference {name}: {ref.seconds:.1f}s (cpu {ref_cpu[name]:.1f}s)")
        return refs[name]

    timings: dict[str, float] = {}
    change: dict[str, Any] = {}
    for i, sc in enumerate(SCENARIOS):
        if sc not in scenarios:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        ref = reference(sc.reference, args.seed + 1000 * (i + 1) if sc.reference not in ("normal",) else args.seed)
        rng = np.random.default_rng([args.seed, i])
        cps: list[int] = []
        ev: dict[str, list[list[Hit]]] = {m: [] for m in METHODS}
        for _s in range(seeds):
            if sc.start == "phase":
                cp = change_at + int(rng.integers(0, window_events))
            elif sc.start == "warmup":
                cp = ref.config.warmup
            else:
                cp = 0
            data = sc.make(rng, cp + after, F, cp)
            cps.append(cp)
            ev["driftsentinel"].append(run_driftsentinel(ref, data))
            if sc.kind == "numeric":
                ev["river_adwin"].append(run_river(ADWIN, data))
                ev["river_page_hinkley"].append(run_river(PageHinkley, data))
        dets = ds_detectors(ref, [h for e in ev["driftsentinel"] for h in e])
        res: dict[str, Any] = {"what": sc.what, "reference": sc.reference, "start": sc.start, "series": sc.series}
        res["driftsentinel"] = summarize_change(
            ev["driftsentinel"], cps, ref.names, horizon, dets, sc.series, GOAL_WITHIN
        )
        for m in ("river_adwin", "river_page_hinkley"):
            res[m] = (
                summarize_change(ev[m], cps, ref.names, horizon, None, sc.series, GOAL_WITHIN)
                if sc.kind == "numeric"
                else None
            )
        change[sc.name] = res
        timings[sc.name] = time.perf_counter() - t0
        cpu[sc.name] = time.process_time() - c0
        log(f"{sc.name}: {timings[sc.name]:.1f}s (cpu {cpu[sc.name]:.1f}s)")

    stationary: dict[str, Any] = {}
    for k, dist in enumerate(STATIONARY):
        if dist not in distributions:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        ev_all: dict[str, list[Hit]] = {m: [] for m in METHODS}
        st_dets: list[str] = []
        for b in range(st_banks):
            ref = reference(dist, args.seed + 100_000 * (k + 1) + b)
            rng = np.random.default_rng([args.seed, 7, k, b])
            data = draw(dist, rng, (st_events, F))
            for m, run in (
                ("driftsentinel", lambda d, ref=ref: run_driftsentinel(ref, d)),
                ("river_adwin", lambda d: run_river(ADWIN, d)),
                ("river_page_hinkley", lambda d: run_river(PageHinkley, d)),
            ):
                ev_all[m] += [(r, f"{b}:{f}", d, s) for r, f, d, s in run(data)]
            st_dets = ds_detectors(ref, ev_all["driftsentinel"])
        values = st_events * F * st_banks
        stationary[dist] = {
            m: summarize_stationary(ev_all[m], values, st_dets if m == "driftsentinel" else None) for m in METHODS
        }
        timings[f"stationary_{dist}"] = time.perf_counter() - t0
        cpu[f"stationary_{dist}"] = time.process_time() - c0
        log(f"stationary {dist}: {timings[f'stationary_{dist}']:.1f}s (cpu {cpu[f'stationary_{dist}']:.1f}s)")

    t0, c0 = time.perf_counter(), time.process_time()
    par = parity(parity_rows, F, args.seed)
    timings["parity"] = time.perf_counter() - t0
    cpu["parity"] = time.process_time() - c0
    log(f"parity: {par}")

    import river

    out = {
        "benchmark": "quality",
        "quick": q,
        "setup": {
            "seeds": seeds,
            "features_per_model": F,
            "change_at": change_at,
            "change_phase": f"change point = change_at + U{{0..{window_events - 1}}} "
            "(random phase in the window tests' window); 'first_event' scenarios: 0; 'warmup' scenarios: "
            "the end of the zero-config warm-up",
            "zero_config_warmup": warmup,
            "events_after_change": after,
            "horizon": horizon,
            "goal_within": min(horizon, GOAL_WITHIN),
            "stationary_events": st_events,
            "stationary_models": st_banks,
            "reference_size": ref_size,
            "calibration_values": calib_values,
            "window_events": window_events,
            "batch": BATCH,
            "seed": args.seed,
            "driftsentinel": "profile of the reference sample + calibrate(false_alarms_per_million=1) -> "
            "BankConfig.per_feature; DetectorBank(config, profile); any detector's drift event. zero_config: "
            "DetectorBank(BankConfig()), no profile",
            "river_adwin": "river drift.ADWIN() defaults (delta 0.002, clock 32), raw values",
            "river_page_hinkley": "river drift.PageHinkley() defaults (delta 0.005, threshold 50, alpha 0.9999), "
            "raw values",
            "river_kernels": "detectors.ADWIN / detectors.PageHinkley: numba kernels with river's detections exactly "
            "(parity tests in tests/unit; re-checked in 'parity')",
            "counting": "drift events only; false alarms per million = detections before the change (change streams) "
            "or all detections (stationary) per million feature values; delay = first drift event at or "
            "after the change minus the change point; missed = none within the horizon; delay_median_all counts "
            "a miss as infinitely late; model series (joint changes): the first drift event on any feature, "
            "and on '@multivariate' (on_multivariate); episodes: distinct (feature, detector) drift decisions "
            "from a series' first detection to its first resolved decision or the horizon",
        },
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "river": river.__version__},
        "calibrated": calibrated,
        "change": change,
        "stationary": stationary,
        "parity": par,
        "goals": goals(change, stationary, horizon),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "total_seconds": round(time.perf_counter() - t_start, 1),
        # CPU seconds of this process (all its threads), each phase including the references it built
        "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
        "references_cpu_seconds": round(sum(ref_cpu.values()), 1),
        "total_cpu_seconds": round(time.process_time() - cpu_start, 1),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
