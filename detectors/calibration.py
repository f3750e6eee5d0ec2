"""Calibrate change-detector thresholds to a chosen false-alarm rate, per feature.

For each numeric feature of a reference profile, draw a stationary stream like the
reference (its quantile function), standardise and winsorise it as the bank does, and
count how often Page-Hinkley and ADWIN fire at several settings where false alarms are
frequent enough to count. Both rates fall exponentially — Page-Hinkley's (a CUSUM with
alpha = 1) in its threshold, ADWIN's in log(1/delta) — so a line through log(rate)
extrapolates to the setting whose rate is the detector's share of the target.

The budget is shared by the detectors of a feature: ADWIN gets half of it, Page-Hinkley
an eighth (the rest is headroom for estimation error and the window tests).
Page-Hinkley's threshold may go down from the configured one when the feature allows
(faster detection) or up when it needs to. ADWIN's ``delta`` may go from the zero-config
0.0002 up to river's own default 0.002 on well-behaved features — the small shifts are
ADWIN's to catch — and far below it on heavy-tailed or skewed ones.

How the line is fitted (statistics)
-----------------------------------
The false alarms at one setting are counts: ``c_i`` events in ``n`` values, modelled as
Poisson with mean ``n * exp(a + b * x_i)`` (``x`` = the threshold, or log(1/delta)).
:func:`fit_log_rate` finds ``a, b`` by maximum likelihood (Newton's method on the
concave log-likelihood) and their covariance from the Fisher information. Unlike a
least-squares line through ``log(c_i / n)`` (the earlier method), this weighs every
setting by its information (a count of 400 is known to +-5 %, a count of 5 to +-45 %),
uses settings with no alarm at all (a zero is evidence of a low rate, not a missing
point) and is not biased by taking logs of small noisy counts. Counts per block of the
stream give a quasi-Poisson dispersion (Pearson chi-square / degrees of freedom, at least
1) that widens the standard errors if alarms come in clusters; measured on ADWIN it is
1.0-1.3.

ADWIN's target (about 0.5 false alarms per million values) lies far beyond any setting
whose alarms a few million values can count, and its log(rate) is not quite a straight
line in log(1/delta): the slope flattens towards small deltas (on standardised normal
data about -1.25 between 0.5 and 0.05, -1.15 between 0.01 and 0.002; measured over
60-200 million values per distribution), so a line through large deltas over-predicts
how fast the rate falls and lands on too loose a delta (+20 % on normal and exponential
data, +30 % on lognormal with the earlier grid 0.5 ... 0.02). The settings are therefore
0.2, 0.05 and 0.01 — closer to the target, still with a few to a few hundred alarms per
million values.

Even so, one million values leave the predicted rate at delta 0.002 uncertain by a
factor of about 1.6 (Poisson noise of the few alarms at 0.01, times a long
extrapolation), and on standardised normal data the true rate there (0.41 per million,
measured over 260 million values) is close to ADWIN's share (0.5). A point estimate alone
(the earlier least-squares line, or the Poisson line on two million values) therefore put
15-25 % of normal features below river's delta, some at 0.0008-0.001 — slower on small
shifts for no reason. ADWIN's delta is instead decided as a one-sided
test against river's default, with sequential simulation:

* ADWIN runs over the drawn values, then over the same values in fresh random orders
  (each pass a further stationary stream: the alarm counts' precision grows with the
  passes for the cost of a permutation instead of new draws), in stages of
  :data:`ADWIN_PASSES` passes in total;
* after each stage, ``z`` = (predicted log rate at river's delta - log of ADWIN's share)
  / its standard error. ``z > ADWIN_Z`` (2.0, about a one-sided 5 % level over the three
  looks, Pocock's boundary): river's delta fires too often here, and ``delta`` is the
  fitted line's solution for the share; ``z <= 0`` (the estimate is within the share) or
  no decision after the last stage: river's delta is kept. Otherwise the next stage runs.

Features far from the boundary (skewed, heavy-tailed, or comfortably under) stop after
two passes; only close calls pay for more. The price of the test: a feature whose true
rate at 0.002 is a little above the share (0/1 indicators and Poisson counts: 0.5-0.7 per
million there) keeps 0.002 when the simulation cannot tell, which the budget's headroom
(3/8) absorbs; a normal feature is still moved below 0.002 in about 1-2 % of cases. In
the quality benchmark (``python -m benchmarks.quality``) 79 of 80 normal features keep
0.002 (the earlier fit: 63), lognormal ones get 0.0003-0.0012 (the delta whose long-run
rate is the share: about 0.00055). Features are calibrated in threads (the
kernels release the GIL), each from its own random stream derived from ``seed`` and the
feature's name, so a feature's result does not depend on the other features or on the
number of threads.

>>> import numpy as np
>>> from driftsentinel.detectors.profile import build_profile
>>> prof = build_profile({"x": np.random.default_rng(0).exponential(size=20_000).tolist()}, source="t")
>>> params = calibrate(prof, false_alarms_per_million=1.0, values=200_000, seed=1)
>>> sorted(params["x"])
['adwin_delta', 'page_hinkley_threshold']
>>> 10 <= params["x"]["page_hinkley_threshold"] <= 500
True
"""

from __future__ import annotations

import math
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from driftsentinel.detectors.backends import change_detector
from driftsentinel.detectors.standardize import profile_clip_bounds, reference_std, standardize
from driftsentinel.schemas import RIVER_ADWIN, BankConfig
from driftsentinel.schemas.profile import NumericProfile, ReferenceProfile

PH_THRESHOLDS = (4.0, 6.0, 8.0, 11.0, 14.0, 18.0)
ADWIN_DELTAS = (0.2, 0.05, 0.01)
ADWIN_PASSES = (2, 4, 8)  # passes over the drawn values after each stage (sequential looks)
ADWIN_Z = 2.0  # one-sided boundary for "river's delta fires too often" (Pocock, 3 looks, ~5 %)
BLOCK_VALUES = 200_000  # block length for the dispersion estimate
#: Fewest values per feature for which the budget is measured rather than assumed: the
#: loosest settings must fire often enough to fit a line. Measured on four standard normal
#: features: 1,000 values leave 12 of 16 fits without enough alarms (the configured values
#: are then kept, whatever the budget), 10,000 leave 6 of 15, 100,000 none of 8.
MIN_VALUES = 100_000
PH_RANGE = (10.0, 500.0)
ADWIN_MIN_DELTA = 1e-9
RIVER_ADWIN_DELTA = RIVER_ADWIN.delta  # calibration never goes looser than river's own default


@dataclass(frozen=True)
class LogRateFit:
    """``log(rate) = intercept + slope * x`` (rate per value), with the estimates' covariance.

    ``cov`` is the covariance of (log rate at ``x0``, slope) — ``x0`` the count-weighted
    mean setting, where the two are nearly uncorrelated — already scaled by ``dispersion``.
    """

    intercept: float
    slope: float
    x0: float = 0.0
    cov: tuple[float, float, float] = (0.0, 0.0, 0.0)  # var(level at x0), cov, var(slope)
    dispersion: float = 1.0

    def log_rate(self, x: float) -> float:
        return self.intercept + self.slope * x

    def log_rate_se(self, x: float) -> float:
        """Standard error of :meth:`log_rate` at ``x``."""
        d = x - self.x0
        vaa, vab, vbb = self.cov
        return math.sqrt(max(vaa + 2.0 * d * vab + d * d * vbb, 0.0))

    def solve(self, log_rate: float) -> float:
        """The ``x`` at which the fitted log rate equals ``log_rate``."""
        return (log_rate - self.intercept) / self.slope


def fit_log_rate(
    xs: np.ndarray, counts: np.ndarray, exposure: float, block_counts: np.ndarray | None = None
) -> LogRateFit | None:
    """Poisson maximum-likelihood fit of ``counts[i] ~ Poisson(exposure * exp(a + b * xs[i]))``.

    ``block_counts[k, i]`` (optional): the same counts split over equal blocks of the
    stream; their Pearson chi-square gives the quasi-Poisson dispersion (at least 1) that
    scales the covariance. ``None`` when the counts cannot pin a line (fewer than two
    settings with events: the likelihood then has no maximum).

    >>> x = np.array([0.0, 1.0, 2.0])
    >>> f = fit_log_rate(x, 1e6 * np.exp(-7.0 - 1.5 * x), 1e6)  # exact expected counts
    >>> round(f.intercept, 6), round(f.slope, 6)
    (-7.0, -1.5)
    >>> fit_log_rate(x, np.array([12.0, 0.0, 0.0]), 1e6) is None
    True
    """
    xs = np.asarray(xs, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    if np.count_nonzero(c > 0) < 2 or exposure <= 0:
        return None
    x0 = float((c * xs).sum() / c.sum())  # centre on the count-weighted mean: a well-conditioned Hessian
    u = xs - x0
    # start: the weighted least-squares line through log((c + 0.5) / exposure)
    b = float(np.polyfit(u, np.log((c + 0.5) / exposure), 1, w=np.sqrt(c + 0.5))[0])
    a = math.log(c.sum() / (exposure * np.exp(b * u).sum()))  # the MLE of a for this b

    def loglik(a_: float, b_: float) -> float:
        return float((c * (a_ + b_ * u)).sum() - exposure * np.exp(a_ + b_ * u).sum())

    cur = loglik(a, b)
    for _ in range(100):
        mu = exposure * np.exp(a + b * u)
        r = c - mu
        ga, gb = float(r.sum()), float((r * u).sum())
        haa, hab, hbb = float(mu.sum()), float((mu * u).sum()), float((mu * u * u).sum())
        det = haa * hbb - hab * hab
        if not det > 0:
            return None
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        step = 1.0
        while True:  # Newton with step halving: the log-likelihood never decreases
            new = loglik(a + step * da, b + step * db)
            if new >= cur - 1e-12 or step < 1e-6:
                break
            step /= 2
        a, b, cur = a + step * da, b + step * db, new
        if abs(step * da) + abs(step * db) < 1e-12:
            break
    mu = exposure * np.exp(a + b * u)
    haa, hab, hbb = float(mu.sum()), float((mu * u).sum()), float((mu * u * u).sum())
    det = haa * hbb - hab * hab
    phi = 1.0
    if block_counts is not None:
        bc = np.asarray(block_counts, dtype=np.float64)
        expected = mu[None, :] / bc.shape[0]
        dof = bc.size - 2
        if dof > 0:
            phi = max(1.0, float(((bc - expected) ** 2 / expected).sum()) / dof)
    cov = (phi * hbb / det, -phi * hab / det, phi * haa / det)
    return LogRateFit(intercept=a - b * x0, slope=b, x0=x0, cov=cov, dispersion=phi)


def _block_counts(hits: np.ndarray, settings: int, rows: int, block: int) -> np.ndarray:
    """``[blocks, settings]`` alarm counts per ``block``-long stretch of a ``rows``-long stream."""
    blocks = max(rows // block, 1)
    hits = np.asarray(hits).reshape(-1, 2)
    k = np.minimum(hits[:, 0] * blocks // max(rows, 1), blocks - 1)
    return np.bincount(k * settings + hits[:, 1], minlength=blocks * settings).reshape(blocks, settings)


def sample_like(prof: NumericProfile, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from the profile's quantile function (steps for integer-valued features)."""
    q = np.asarray(prof.quantiles, dtype=np.float64)
    levels = np.linspace(0.0, 1.0, q.size)
    u = rng.random(n)
    if np.all(q == np.round(q)):  # counts, indicators: keep the values discrete
        return q[np.minimum(np.searchsorted(levels, u, side="left"), q.size - 1)]
    return np.interp(u, levels, q)


def _ph_threshold(z: np.ndarray, config: BankConfig, target: float) -> float:
    ph_cfg = config.page_hinkley
    k = len(PH_THRESHOLDS)
    det = change_detector("page_hinkley", "kernel", k, ph_cfg)  # one feature per threshold
    for j, threshold in enumerate(PH_THRESHOLDS):
        det.set_params([j], threshold=threshold)
    hits = det.update(np.repeat(z[:, None], k, axis=1))
    counts = np.bincount(hits[:, 1], minlength=k)
    fit = fit_log_rate(np.array(PH_THRESHOLDS), counts, z.size)
    if fit is None or fit.slope >= 0:
        return ph_cfg.threshold  # too few alarms to extrapolate: keep the configured value
    h = fit.solve(math.log(target))
    return float(min(max(h, PH_RANGE[0]), PH_RANGE[1]))


def adwin_decision(fit: LogRateFit | None, target: float, cap: float) -> tuple[str, float | None]:
    """One look of ADWIN's sequential test: ``("cap" | "solve" | "more", delta)``.

    >>> f = LogRateFit(intercept=-5.0, slope=-1.2, x0=3.0, cov=(0.01, 0.0, 0.01))
    >>> verdict, delta = adwin_decision(f, 1e-6, 0.002)  # 3.9 per million at 0.002, se 0.33
    >>> verdict, round(delta, 6)
    ('solve', 0.000645)
    >>> adwin_decision(LogRateFit(-5.3, -1.2, 3.0, (0.25, 0.0, 0.09)), 1e-6, 0.002)  # 2.9 per million, se 1.1: not sure
    ('more', None)
    >>> adwin_decision(LogRateFit(-6.5, -1.2, 3.0, (0.25, 0.0, 0.09)), 1e-6, 0.002)  # 0.87 per million
    ('cap', 0.002)
    """
    if fit is None or fit.slope >= 0:
        return "more", None
    x_cap = math.log(1.0 / cap)
    z = (fit.log_rate(x_cap) - math.log(target)) / max(fit.log_rate_se(x_cap), 1e-12)
    if z > ADWIN_Z:
        return "solve", float(min(max(math.exp(-fit.solve(math.log(target))), ADWIN_MIN_DELTA), cap))
    if z <= 0:
        return "cap", float(cap)
    return "more", None


def _adwin_delta(z: np.ndarray, config: BankConfig, target: float, rng: np.random.Generator) -> float:
    a = config.adwin
    k = len(ADWIN_DELTAS)
    det = change_detector("adwin", "kernel", k, a)  # one feature per delta
    for j, delta_j in enumerate(ADWIN_DELTAS):
        det.set_params([j], delta=delta_j)
    xs = np.log(1.0 / np.array(ADWIN_DELTAS))
    cap = max(a.delta, RIVER_ADWIN_DELTA)
    hits: list[np.ndarray] = []
    done = 0
    fit = None
    for passes in ADWIN_PASSES:
        for p in range(done, passes):  # one detector: the passes are one long stationary stream
            stream = z if p == 0 else rng.permutation(z)
            hits.append(det.update(np.repeat(stream[:, None], k, axis=1)) + np.array([p * z.size, 0]))
        done = passes
        rows = passes * z.size
        blocks = _block_counts(np.concatenate(hits), k, rows, BLOCK_VALUES)
        fit = fit_log_rate(xs, blocks.sum(axis=0), rows, blocks)
        _verdict, delta = adwin_decision(fit, target, cap)
        if delta is not None:
            return delta
    if fit is None or fit.slope >= 0:
        return a.delta  # too few alarms to extrapolate: keep the configured value
    return float(cap)  # no evidence, after all stages, that river's delta fires too often


def _calibrate_one(
    prof: NumericProfile, config: BankConfig, budget: float, values: int, rng: np.random.Generator
) -> dict[str, float]:
    x = sample_like(prof, values, rng)
    std = reference_std(prof.mean, prof.std)
    # exactly what the bank does with the values of a profiled feature
    lo, hi = profile_clip_bounds(prof.quantiles, prof.mean, std) if config.winsorize else (-np.inf, np.inf)
    z = standardize(x, prof.mean, std, lo, hi)
    params: dict[str, float] = {}
    if config.page_hinkley.enabled:
        params["page_hinkley_threshold"] = _ph_threshold(z, config, budget / 8.0)
    if config.adwin.enabled:
        params["adwin_delta"] = _adwin_delta(z, config, budget / 2.0, rng)
    return params


def calibrate(
    profile: ReferenceProfile,
    config: BankConfig | None = None,
    false_alarms_per_million: float = 1.0,
    values: int = 1_000_000,
    seed: int = 0,
    workers: int | None = None,
) -> dict[str, dict[str, float]]:
    """Per numeric feature: ``page_hinkley_threshold`` and ``adwin_delta`` for the target rate.

    ``values`` is the number of values drawn per feature (Page-Hinkley runs over them once,
    ADWIN over them and random permutations of them: 2 to 8 passes). ``workers`` threads
    (default: the CPUs) calibrate features in parallel; results do not depend on it.
    """
    config = config or BankConfig()
    budget = false_alarms_per_million / 1e6
    numeric = [(n, p) for n, p in profile.features.items() if isinstance(p, NumericProfile)]

    def one(item: tuple[str, NumericProfile]) -> dict[str, float]:
        name, prof = item
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        return _calibrate_one(prof, config, budget, values, rng)

    workers = max(1, min(workers or os.cpu_count() or 1, len(numeric)))
    if workers == 1:
        results = [one(item) for item in numeric]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, numeric))
    return {name: params for (name, _), params in zip(numeric, results, strict=True)}
