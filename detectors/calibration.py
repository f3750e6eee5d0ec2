"""Calibrate change-detector thresholds to a chosen false-alarm rate, per feature.

For each numeric feature of a reference profile, draw stationary streams like the
reference (its quantile function), standardise them as the bank does, and measure how
often Page-Hinkley and ADWIN fire at several settings where false alarms are frequent
enough to count. Both rates fall exponentially — Page-Hinkley's (a CUSUM with alpha = 1)
in its threshold, ADWIN's in log(1/delta) — so a straight line through log(rate)
extrapolates to the setting whose rate is the detector's share of the target.

The target is a budget shared by the detectors of a feature: ADWIN gets half of it,
Page-Hinkley an eighth (the rest is headroom for extrapolation error and the window
tests). Page-Hinkley's fit is reliable (CUSUM theory: log ARL is linear in the
threshold), so its threshold may go down from the configured one when the feature allows
(faster detection) or up when it needs to. ADWIN's ``delta`` may go from the zero-config
0.0002 up to river's own default 0.002 on well-behaved features — the small shifts are
ADWIN's to catch — and far below it on heavy-tailed or skewed ones.

>>> import numpy as np
>>> from detectors.profile import build_profile
>>> prof = build_profile({"x": np.random.default_rng(0).exponential(size=20_000).tolist()}, source="t")
>>> params = calibrate(prof, false_alarms_per_million=1.0, values=200_000, seed=1)
>>> sorted(params["x"])
['adwin_delta', 'page_hinkley_threshold']
>>> 10 <= params["x"]["page_hinkley_threshold"] <= 500
True
"""

from __future__ import annotations

import math

import numpy as np

from detectors.bank import clip_bounds
from schemas import BankConfig
from schemas.profile import NumericProfile, ReferenceProfile

PH_THRESHOLDS = (4.0, 6.0, 8.0, 11.0, 14.0, 18.0)
ADWIN_DELTAS = (0.5, 0.2, 0.1, 0.05, 0.02)
PH_RANGE = (10.0, 500.0)
ADWIN_MIN_DELTA = 1e-9
RIVER_ADWIN_DELTA = 0.002  # calibration never goes looser than river's own default


def sample_like(prof: NumericProfile, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from the profile's quantile function (steps for integer-valued features)."""
    q = np.asarray(prof.quantiles, dtype=np.float64)
    levels = np.linspace(0.0, 1.0, q.size)
    u = rng.random(n)
    if np.all(q == np.round(q)):  # counts, indicators: keep the values discrete
        return q[np.minimum(np.searchsorted(levels, u, side="left"), q.size - 1)]
    return np.interp(u, levels, q)


def _fit_log_line(xs: np.ndarray, rates: np.ndarray) -> tuple[float, float] | None:
    ok = rates > 0
    if ok.sum() < 2:
        return None
    slope, intercept = np.polyfit(xs[ok], np.log(rates[ok]), 1)
    return float(slope), float(intercept)


def _ph_threshold(z: np.ndarray, config: BankConfig, target: float) -> float:
    from detectors.page_hinkley import PageHinkley

    ph_cfg = config.page_hinkley
    k = len(PH_THRESHOLDS)
    det = PageHinkley(n_features=k, min_instances=ph_cfg.min_instances, delta=ph_cfg.delta,
                      threshold=np.array(PH_THRESHOLDS), alpha=ph_cfg.alpha, mode=ph_cfg.mode)
    hits = det.update(np.repeat(z[:, None], k, axis=1))
    rates = np.bincount(hits[:, 1], minlength=k) / z.size  # per value
    fit = _fit_log_line(np.array(PH_THRESHOLDS), rates)
    if fit is None or fit[0] >= 0:
        return ph_cfg.threshold  # too few alarms to extrapolate: keep the configured value
    slope, intercept = fit
    h = (math.log(target) - intercept) / slope
    return float(min(max(h, PH_RANGE[0]), PH_RANGE[1]))


def _adwin_delta(z: np.ndarray, config: BankConfig, target: float) -> float:
    from detectors.adwin import ADWIN

    a = config.adwin
    k = len(ADWIN_DELTAS)
    det = ADWIN(n_features=k, delta=np.array(ADWIN_DELTAS), clock=a.clock, max_buckets=a.max_buckets,
                min_window_length=a.min_window_length, grace_period=a.grace_period)
    hits = det.update(np.repeat(z[:, None], k, axis=1))
    rates = np.bincount(hits[:, 1], minlength=k) / z.size
    xs = np.log(1.0 / np.array(ADWIN_DELTAS))
    fit = _fit_log_line(xs, rates)
    if fit is None or fit[0] >= 0:
        return a.delta
    slope, intercept = fit
    log_inv_delta = (math.log(target) - intercept) / slope
    delta = math.exp(-log_inv_delta)
    return float(min(max(delta, ADWIN_MIN_DELTA), max(a.delta, RIVER_ADWIN_DELTA)))


def calibrate(
    profile: ReferenceProfile,
    config: BankConfig | None = None,
    false_alarms_per_million: float = 1.0,
    values: int = 1_000_000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Per numeric feature: ``page_hinkley_threshold`` and ``adwin_delta`` for the target rate.

    ``values`` is the simulated stream length per feature.
    """
    config = config or BankConfig()
    budget = false_alarms_per_million / 1e6
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    for name, prof in profile.features.items():
        if not isinstance(prof, NumericProfile):
            continue
        x = sample_like(prof, values, rng)
        std = prof.std if prof.std > 0 else (abs(prof.mean) * 1e-3 or 1.0)
        z = (x - prof.mean) / std
        if config.winsorize:  # exactly what the bank does
            q = prof.quantiles
            lo, hi = clip_bounds(q[round(0.01 * (len(q) - 1))], q[round(0.99 * (len(q) - 1))], prof.mean, std)
            z = np.clip(z, lo, hi)
        params: dict[str, float] = {}
        if config.page_hinkley.enabled:
            params["page_hinkley_threshold"] = _ph_threshold(z, config, budget / 8.0)
        if config.adwin.enabled:
            params["adwin_delta"] = _adwin_delta(z, config, budget / 2.0)
        out[name] = params
    return out
