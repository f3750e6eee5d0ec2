"""Calibrate change-detector thresholds to a chosen false-alarm rate, per feature.

For each numeric feature of a reference profile, draw a stationary stream like the
reference (its quantile function), standardise and winsorise it as the bank does, and
count how often Page-Hinkley, ADWIN and the sequential tests (``cusum_mean``,
``cusum_scale``, ``cusum_shape``, ``cusum_missing``) fire at several settings where false
alarms are frequent enough to count. Every rate falls exponentially — Page-Hinkley's and
the CUSUMs' in their threshold, ADWIN's in log(1/delta) — so a line through log(rate)
extrapolates to the setting whose rate is the detector's share of the target (half of it
for the sequential tests and a solved ADWIN delta: :data:`FIT_MARGIN`).

The budget is shared by the detectors of a feature (:func:`budget_split`): ADWIN gets
half of it, Page-Hinkley three sixteenths, the enabled sequential tests what those leave
in equal parts (5/64 each with all four), so the shares sum to the user's rate whenever a
sequential test runs (without one, the rest stays headroom).
Page-Hinkley's threshold may go down from the configured one when the feature allows
(faster detection) or up when it needs to. ADWIN's ``delta`` may go from the zero-config
0.0002 up to river's own default 0.002 on well-behaved features — the small shifts are
ADWIN's to catch — and far below it on heavy-tailed or skewed ones.

Dependent and cyclic features
-----------------------------
A profile with a ``seasonal`` section (``baseline --period``) changes what is simulated,
per feature: every feature of the section is drawn as a stationary series with its
measured serial dependence — the quantile function read at ``Phi(e_t)`` of a Gaussian
AR(1) whose coefficient (the profile's ``ar1``) reproduces the reference's lag-1
autocorrelation — and in the units its detectors see
(:func:`~driftsentinel.detectors.seasonal_profile.seasonal_view`): a cyclic feature's
phase-standardised residuals, a whitened feature's innovations (the simulated residuals
whitened as live values are: :func:`~driftsentinel.detectors.seasonal_profile.simulate_view`).
ADWIN's further passes reorder the draws in blocks of 20 correlation times
(:func:`~driftsentinel.detectors.seasonal.block_order`) instead of value by value, so
they keep the dependence. Without the section (or with ``ar1`` 0)
every draw is what it was. What the guarantee then assumes: the live values' dependence
is AR(1)-like and no stronger than the reference's, the same in every phase
([seasonality](../docs/seasonality.md)).

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
million there) keeps 0.002 when the simulation cannot tell, which the sequential tests'
margin absorbs (their lines are solved for half their share); a normal feature is still
moved below 0.002 in about 1-2 % of cases. In the quality benchmark (``python -m
benchmarks.quality``) 69 of 70 normal features keep 0.002, lognormal ones get
0.00013-0.00064 (solved for half the share; the delta whose long-run rate is the whole
share is about 0.00055). Features are calibrated in threads (the
kernels release the GIL), each from its own random stream derived from ``seed`` and the
feature's name, so a feature's result does not depend on the other features or on the
number of threads.

Sequential tests (statistics)
----------------------------
The CUSUMs see the events exactly as the bank gives them: missing at the profile's
missing share (NaN; ``cusum_missing`` counts every event, the others the values), the
values standardised and clipped by the profile, and the reference arguments the bank
passes for a profiled feature (:func:`sequential_reference`). A sequential test compares
the stream with the profile itself, so on live data it also meets the profile's own
sampling error; the simulated values therefore come from ``SEQ_SEGMENTS`` distributions
the profile could have been measured from (:func:`sample_like_reference`, a Bayesian
bootstrap of its ``count`` values) rather than from the profile alone (without it the
shape test's rate on fresh data was 10-30 % above its share). Every threshold setting is
a column of one :class:`~driftsentinel.detectors.sequential.NumericSequential`:

* a pilot over the first ``SEQ_PILOT_EVENTS`` events at thresholds 1 ... 256 (a factor
  sqrt(2) apart) finds the tail: a line through its settings under ``SEQ_PILOT_RATE``;
* the main run over all the drawn events puts ``SEQ_SETTINGS`` thresholds from the rate
  ``SEQ_RATE_HI`` (1e-3 per event) to ``SEQ_MIN_ALARMS`` alarms in the run, and the Poisson
  fit through those in the exponential tail (:func:`tail_fit`) is solved for
  ``FIT_MARGIN`` (half) of the test's share, one standard error on the safe side;
* the likelihood-ratio CUSUMs (shape, missing) never go above ``log(1 / share)``: a run
  of theirs reaches ``h`` with probability at most ``exp(-h)`` (Ville's inequality), which
  bounds the rate by the share whatever the fit (their alarms come in discrete steps of
  evidence, a staircase a line fits poorly on rare events such as a 1 % missing share);
* a test that never fires, even at ``h = 1`` (``cusum_missing`` without missing values), or
  whose counts pin no line keeps its configured threshold (capped the same way).

A constant reference has no sequential tests in the bank (the constant watch instead) and
gets no sequential thresholds.

Categorical features
--------------------
A categorical feature of the profile gets thresholds for ``cusum_categories`` and
``cusum_unseen`` (the reference monitor reads them from ``per_feature``). Its values are
drawn from the profile's shares (the top categories and "another category seen in
training"), in ``SEQ_SEGMENTS`` stretches each from shares drawn from the Dirichlet
posterior of the profile's counts (its sampling error, as for a numeric feature), with
values never seen in training at the reference rate ``1 / (count + 1)``. The enabled
categorical tests share the per-feature budget equally (no change detector runs on a
categorical feature); each threshold is found as a numeric test's, over
``CATEGORICAL_VALUES`` times as many values (the kernel is cheap), and never goes above
Ville's ``log(1 / share)``. ``cusum_unseen`` never fires on such a stream (its null is a
share of ``0.7 x min_unseen_share``), so it keeps its configured threshold, capped.

>>> import numpy as np
>>> from driftsentinel.detectors.profile import build_profile
>>> prof = build_profile({"x": np.random.default_rng(0).exponential(size=20_000).tolist()}, source="t")
>>> params = calibrate(prof, false_alarms_per_million=1.0, values=200_000, seed=1)
>>> sorted(params["x"])  # doctest: +NORMALIZE_WHITESPACE
['adwin_delta', 'cusum_mean_threshold', 'cusum_missing_threshold', 'cusum_scale_threshold',
 'cusum_shape_threshold', 'page_hinkley_threshold']
>>> 10 <= params["x"]["page_hinkley_threshold"] <= 500
True
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftsentinel.detectors.backends import change_detector
from driftsentinel.detectors.seasonal import block_order, dependent_uniforms
from driftsentinel.detectors.seasonal_profile import (
    bootstrap_view,
    dependence,
    seasonal_view,
    simulate_view,
    transformed_features,
)
from driftsentinel.detectors.sequential import (
    CATEGORICAL_TESTS,
    NUMERIC_TESTS,
    CategoricalSequential,
    NumericSequential,
    grid_midpoints,
)
from driftsentinel.detectors.standardize import (
    is_constant,
    profile_clip_bounds,
    profile_percentiles,
    reference_std,
    standardize,
)
from driftsentinel.schemas import RIVER_ADWIN, BankConfig
from driftsentinel.schemas.profile import CategoricalProfile, NumericProfile, ReferenceProfile, SeasonalFeature

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
#: The sequential tests solve their fitted line for this fraction of their share. The line
#: is fitted where alarms can be counted (1e-3 to 1e-5 per value) and extrapolated one to
#: two decades further, where skewed and discrete features' tails bend flatter: at 1 false
#: alarm per million values, fresh data from the quality benchmark's stationary
#: distributions fired 1.3-3 times the share without it (cusum_mean on exponential data 3x,
#: cusum_scale 1.4-1.8x; 30 million values per distribution). Ville's cap
#: (``log(1 / share)``) is a bound and needs no margin. ADWIN keeps river's delta unless the
#: simulation shows it fires too often (:func:`adwin_decision`); then its line too is solved
#: for this fraction (lognormal features fired 0.58 per million with the full share, 60
#: million values). Page-Hinkley solves for its whole share: measured at 0.13-0.20 per
#: million against its 0.1875 on the skewed and discrete distributions (60 million values
#: each), where a margin would only slow its mean-shift detection (0.5 sd: 116 events
#: with it, 107 without).
FIT_MARGIN = 0.5
#: A dependent feature (a profile's seasonal section with a dependence) is simulated over
#: this many times ``values``, at tighter settings, and every line is fitted through the
#: tightest settings that fired (:func:`_end_fit`): its alarms come in clusters and its
#: rate's tail bends flatter than an independent feature's (Page-Hinkley on the
#: ``counts`` streams of ``benchmarks.seasonal``: log rate falling 0.33 per unit of
#: threshold between 8 and 16, 0.16-0.27 between 24 and 32), so a line through loose
#: settings lands far too low.
DEPENDENT_VALUES = 8
#: ... and every detector of a dependent feature is calibrated for this fraction of its
#: share (on top of ``FIT_MARGIN``): with the share alone, the Poisson counts of an AR(1)
#: rate (``benchmarks.seasonal``, 20 million live values) fired 1.1 false alarms per
#: million, ``cusum_scale`` 5 times its share and ADWIN just over its own.
DEPENDENT_MARGIN = 0.5
DEPENDENT_PH_THRESHOLDS = (16.0, 20.0, 24.0, 28.0, 32.0, 36.0)
DEPENDENT_ADWIN_DELTAS = (0.05, 0.01, 0.002)
#: Rows per kernel call when a detector runs one column per setting (bounded memory).
CHUNK_ROWS = 1 << 20


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


def sample_like(prof: NumericProfile, n: int, rng: np.random.Generator, phi: float = 0.0) -> np.ndarray:
    """``n`` draws from the profile's quantile function (steps for integer-valued features):
    independent, or (``phi`` != 0) a stationary series whose latent Gaussian AR(1) has
    coefficient ``phi`` (:func:`~driftsentinel.detectors.seasonal.dependent_uniforms`)."""
    q = np.asarray(prof.quantiles, dtype=np.float64)
    levels = np.linspace(0.0, 1.0, q.size)
    u = dependent_uniforms(phi, n, rng)
    if np.all(q == np.round(q)):  # counts, indicators: keep the values discrete
        return q[np.minimum(np.searchsorted(levels, u, side="left"), q.size - 1)]
    return np.interp(u, levels, q)


def sample_like_reference(
    prof: NumericProfile, n: int, rng: np.random.Generator, segments: int, phi: float = 0.0
) -> np.ndarray:
    """``n`` draws like :func:`sample_like`, from ``segments`` distributions the profile
    could have been measured from (a Bayesian bootstrap of its ``count`` values: the mass
    between neighbouring quantiles Dirichlet-distributed around its nominal share).

    A sequential test compares the stream with the profile itself (its mean, its bins), so
    on live data it also sees the profile's own sampling error, which draws from the
    profile alone never show: measured, the shape test's rate on fresh data was 10-30 %
    above the simulated one with 20,000 reference values.
    """
    q = np.asarray(prof.quantiles, dtype=np.float64)
    levels = np.linspace(0.0, 1.0, q.size)
    gaps = np.diff(levels)
    discrete = bool(np.all(q == np.round(q)))
    out = np.empty(n)
    bounds = np.linspace(0, n, segments + 1).astype(np.int64)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        drawn = rng.dirichlet(gaps * max(prof.count, 1) + 1e-9)
        cum = np.r_[0.0, np.cumsum(drawn)]
        cum /= cum[-1]
        u = dependent_uniforms(phi, int(b - a), rng)
        if discrete:
            out[a:b] = q[np.minimum(np.searchsorted(cum, u, side="left"), q.size - 1)]
        else:
            out[a:b] = np.interp(u, cum, q)
    return out


def _columns(det: Any, z: np.ndarray, k: int, offset: int = 0) -> np.ndarray:
    """``det``'s hits ``[row, setting]`` over ``z`` repeated in its ``k`` columns, in chunks."""
    out = [np.empty((0, 2), dtype=np.int64)]
    for a in range(0, z.size, CHUNK_ROWS):
        hits = np.asarray(det.update(np.repeat(z[a : a + CHUNK_ROWS, None], k, axis=1))).reshape(-1, 2)
        out.append(hits + np.array([offset + a, 0]))
    return np.concatenate(out)


def _ph_threshold(z: np.ndarray, config: BankConfig, target: float, dependent: bool = False) -> float:
    ph_cfg = config.page_hinkley
    grid = np.array(DEPENDENT_PH_THRESHOLDS if dependent else PH_THRESHOLDS)
    k = grid.size
    det = change_detector("page_hinkley", "kernel", k, ph_cfg)  # one feature per threshold
    for j, threshold in enumerate(grid.tolist()):
        det.set_params([j], threshold=threshold)
    counts = np.bincount(_columns(det, z, k)[:, 1], minlength=k)
    fit = _end_fit(grid, counts, z.size) if dependent else fit_log_rate(grid, counts, z.size)
    if fit is None or fit.slope >= 0:
        return ph_cfg.threshold  # too few alarms to extrapolate: keep the configured value
    h = fit.solve(math.log(target))
    return float(min(max(h, PH_RANGE[0]), PH_RANGE[1]))


def adwin_decision(fit: LogRateFit | None, target: float, cap: float) -> tuple[str, float | None]:
    """One look of ADWIN's sequential test: ``("cap" | "solve" | "more", delta)``.

    >>> f = LogRateFit(intercept=-5.0, slope=-1.2, x0=3.0, cov=(0.01, 0.0, 0.01))
    >>> verdict, delta = adwin_decision(f, 1e-6, 0.002)  # 3.9 per million at 0.002, se 0.33
    >>> verdict, round(delta, 6)
    ('solve', 0.000362)
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
        # solved for FIT_MARGIN of the share: the line over-predicts how fast the rate falls
        # towards small deltas (above), most on the skewed features that get here
        return "solve", float(min(max(math.exp(-fit.solve(math.log(target * FIT_MARGIN))), ADWIN_MIN_DELTA), cap))
    if z <= 0:
        return "cap", float(cap)
    return "more", None


def _adwin_delta(
    z: np.ndarray,
    config: BankConfig,
    target: float,
    rng: np.random.Generator,
    phi: float = 0.0,
    dependent: bool = False,
) -> float:
    """ADWIN's ``delta`` for ``target`` (module docstring); a ``dependent`` feature's from
    tighter deltas, the line through the two tightest."""
    a = config.adwin
    deltas = DEPENDENT_ADWIN_DELTAS if dependent else ADWIN_DELTAS
    k = len(deltas)
    det = change_detector("adwin", "kernel", k, a)  # one feature per delta
    for j, delta_j in enumerate(deltas):
        det.set_params([j], delta=delta_j)
    xs = np.log(1.0 / np.array(deltas))
    use = slice(k - 2, k) if dependent else slice(0, k)
    cap = max(a.delta, RIVER_ADWIN_DELTA)
    hits: list[np.ndarray] = []
    done = 0
    fit = None
    tightest = 0  # alarms at the tightest delta so far
    for passes in ADWIN_PASSES:
        for p in range(done, passes):  # one detector: the passes are one long stationary stream
            stream = z if p == 0 else z[block_order(z.size, phi, rng)]  # dependent: blocks kept together
            hits.append(_columns(det, stream, k, p * z.size))
        done = passes
        rows = passes * z.size
        blocks = _block_counts(np.concatenate(hits), k, rows, BLOCK_VALUES)[:, use]
        tightest = int(blocks[:, -1].sum())
        fit = fit_log_rate(xs[use], blocks.sum(axis=0), rows, blocks)
        _verdict, delta = adwin_decision(fit, target, cap)
        if delta is not None:
            return delta
    if fit is None or fit.slope >= 0:
        if dependent and tightest == 0:
            return float(cap)  # river's delta (the tightest) fired in no pass: it is within the share
        return a.delta  # too few alarms to extrapolate: keep the configured value
    return float(cap)  # no evidence, after all stages, that river's delta fires too often


# ---------------------------------------------------------------------------- the budget
#: Shares of a feature's false-alarm budget: ADWIN half (its delta never goes looser than
#: river's anyway), Page-Hinkley three sixteenths (it catches the 0.5 sd shifts: with an
#: eighth and a margin their median was 108 events, 105 before the sequential tests, 103
#: with this share); the enabled sequential tests share what ADWIN and Page-Hinkley leave
#: (5/16 with both on), equally. With no sequential test the rest stays headroom.
ADWIN_SHARE = 0.5
PAGE_HINKLEY_SHARE = 0.1875


def sequential_tests(config: BankConfig) -> list[str]:
    """The numeric sequential tests ``config`` runs (none when the sequential tests are off)."""
    seq = config.sequential
    return [t for t in NUMERIC_TESTS if seq.enabled and t in seq.tests]


def budget_split(config: BankConfig) -> dict[str, float]:
    """Each enabled numeric detector's share of a feature's false-alarm budget; they sum
    to 1 whenever a sequential test is enabled.

    >>> {k: round(v, 4) for k, v in budget_split(BankConfig()).items()}  # doctest: +NORMALIZE_WHITESPACE
    {'adwin': 0.5, 'page_hinkley': 0.1875, 'cusum_mean': 0.0781, 'cusum_scale': 0.0781,
     'cusum_shape': 0.0781, 'cusum_missing': 0.0781}
    >>> budget_split(BankConfig.model_validate({"sequential": {"enabled": False}}))
    {'adwin': 0.5, 'page_hinkley': 0.1875}
    """
    split: dict[str, float] = {}
    if config.adwin.enabled:
        split["adwin"] = ADWIN_SHARE
    if config.page_hinkley.enabled:
        split["page_hinkley"] = PAGE_HINKLEY_SHARE
    tests = sequential_tests(config)
    rest = 1.0 - sum(split.values())
    for test in tests:
        split[test] = rest / len(tests)
    return split


# ---------------------------------------------------------------------------- sequential tests
#: Pilot thresholds (every test, in its own units), a factor sqrt(2) apart: from where a
#: CUSUM fires every few values to far beyond any target.
SEQ_PILOT = tuple(float(2.0 ** (i / 2)) for i in range(17))  # 1 ... 256
SEQ_PILOT_EVENTS = 20_000
#: The main run's settings: ``SEQ_SETTINGS`` thresholds from where the pilot's line puts
#: the rate at ``SEQ_RATE_HI`` to where it expects ``SEQ_MIN_ALARMS`` in the whole run
#: (the tightest setting whose alarms can still be counted).
SEQ_SETTINGS = 5
SEQ_PILOT_RATE = 2e-2
SEQ_RATE_HI = 1e-3
SEQ_MIN_ALARMS = 10.0
SEQ_BATCH = 65_536
#: Distributions the simulated stream is drawn from, each a Bayesian bootstrap of the profile
SEQ_SEGMENTS = 10
#: The likelihood-ratio CUSUMs, whose false-alarm rate per event is at most ``exp(-h)``.
ADAPTIVE_TESTS = ("cusum_shape", "cusum_missing", "cusum_categories", "cusum_unseen")


def sequential_reference(prof: NumericProfile, config: BankConfig) -> dict[str, Any]:
    """The arguments of :meth:`NumericSequential.set_reference` for a profiled feature, as
    the bank passes them (``DetectorBank._sequential_profile``): the middle of each slice
    of the quantile grid standardised (``mu0``, ``v0``), the grid in raw units (the shape
    bins), its count and missing share, the clip bounds."""
    q = np.asarray(prof.quantiles, dtype=np.float64)
    std = reference_std(prof.mean, prof.std, *profile_percentiles(prof.quantiles))
    lo, hi = profile_clip_bounds(prof.quantiles, prof.mean, std) if config.winsorize else (-np.inf, np.inf)
    return {
        "z_ref": standardize(grid_midpoints(q), prof.mean, std),
        "x_quantiles": q,
        "n_ref": max(int(prof.count), 1),
        "missing_p0": float(prof.missing_ratio),
        "clip_lo": float(lo),
        "clip_hi": float(hi),
    }


def count_sequential_alarms(
    config: BankConfig,
    reference: dict[str, Any],
    grids: dict[str, np.ndarray],
    x: np.ndarray,
    z: np.ndarray,
    passes: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Drift alarms of each test at each of its thresholds (``grids[test][i]``) over
    ``passes`` runs through the events ``x`` (raw, NaN missing) / ``z`` (standardised,
    clipped): the first in order, the others in fresh random orders (each a further
    stationary stream). Every setting is a column of one :class:`NumericSequential`;
    episodes resolve as soon as the kernel allows (``resolve_min_count`` 1), so every
    alarm that is not part of the same run counts."""
    tests = list(grids)
    k = max(len(g) for g in grids.values())
    seq_cfg = config.sequential.model_copy(update={"enabled": True, "tests": tests})
    seq = NumericSequential(seq_cfg, resolve_min_count=1)
    seq.add_features(k)
    for j in range(k):
        seq.set_reference(j, **reference)
        seq.set_thresholds(j, **{t: float(g[min(j, len(g) - 1)]) for t, g in grids.items()})
    counts = {t: np.zeros(k, dtype=np.int64) for t in tests}
    first_row = np.zeros(k, dtype=np.int64)
    n = x.size
    for p in range(passes):
        order = np.arange(n) if p == 0 else rng.permutation(n)
        for i in range(0, n, SEQ_BATCH):
            idx = order[i : i + SEQ_BATCH]
            xb = np.repeat(x[idx, None], k, axis=1)
            zb = np.repeat(z[idx, None], k, axis=1)
            for hit in seq.update(xb, zb, first_row):
                if hit.status == "drift":
                    counts[hit.test][hit.feature] += 1
    return {t: counts[t][: len(grids[t])] for t in tests}


def _main_grid(pilot: np.ndarray, counts: np.ndarray, events: int, main_events: int) -> np.ndarray | None:
    """The main run's thresholds from the pilot's alarm counts (``None``: no alarm at any setting).

    A line through the pilot's settings with at most ``SEQ_PILOT_RATE`` alarms per event
    (up to the first without any) places them from the rate ``SEQ_RATE_HI`` to
    ``SEQ_MIN_ALARMS`` alarms in the main run; without such a line, from the last setting
    above ``SEQ_RATE_HI`` to the first without alarms.

    >>> _main_grid(np.array([1.0, 2.0, 4.0, 8.0]), np.array([900, 300, 10, 0]), 10_000, 1_000_000).round(2).tolist()
    [2.0, 3.5, 5.0, 6.5, 8.0]
    >>> _main_grid(np.array([1.0, 2.0, 4.0]), np.array([0, 0, 0]), 10_000, 1_000_000) is None
    True
    """
    rate = counts / events
    if not (rate > 0).any():
        return None
    above = np.flatnonzero(rate > SEQ_PILOT_RATE)
    first = int(above[-1]) + 1 if above.size else 0
    zeros = np.flatnonzero((counts == 0) & (np.arange(pilot.size) >= first))
    last = int(zeros[0]) if zeros.size else pilot.size - 1
    fit = fit_log_rate(pilot[first : last + 1], counts[first : last + 1], events)
    if fit is not None and fit.slope < 0:
        lo = fit.solve(math.log(SEQ_RATE_HI))
        hi = fit.solve(math.log(SEQ_MIN_ALARMS / main_events))
    else:
        above = np.flatnonzero(rate > SEQ_RATE_HI)
        lo, hi = pilot[int(above[-1]) if above.size else 0], pilot[last]
    lo = max(lo, pilot[0] / 2)
    return np.linspace(lo, max(hi, lo * 1.5), SEQ_SETTINGS)


def tail_fit(grid: np.ndarray, counts: np.ndarray, events: int) -> LogRateFit | None:
    """:func:`fit_log_rate` through the settings in the exponential tail: at most
    ``2 SEQ_RATE_HI`` alarms per event (all of them when fewer than two of those fired)."""
    tail = counts <= 2 * SEQ_RATE_HI * events
    if np.count_nonzero(tail & (counts > 0)) < 2:
        tail = np.ones_like(tail)
    return fit_log_rate(grid[tail], counts[tail], events)


def _sequential_thresholds(
    prof: NumericProfile,
    config: BankConfig,
    targets: dict[str, float],
    x: np.ndarray,
    z: np.ndarray,
    rng: np.random.Generator,
    independent: bool = True,
) -> dict[str, float]:
    """Each sequential test's threshold for its target rate (alarms per event); Ville's cap
    only for ``independent`` values (:func:`_solve_threshold`)."""
    reference = sequential_reference(prof, config)
    pilot_n = min(SEQ_PILOT_EVENTS, x.size)
    pilot = np.array(SEQ_PILOT)
    counts = count_sequential_alarms(config, reference, {t: pilot for t in targets}, x[:pilot_n], z[:pilot_n], 1, rng)
    grids: dict[str, np.ndarray] = {}
    out: dict[str, float] = {}
    for test in targets:
        grid = _main_grid(pilot, counts[test], pilot_n, x.size)
        if grid is None:  # no alarm even at h = 1: the test is quiet here, the configured h is safe
            out[test] = _solve_threshold(None, targets[test], config, test, independent)
        else:
            grids[test] = grid
    if grids:
        main = count_sequential_alarms(config, reference, grids, x, z, 1, rng)
        for test, grid in grids.items():
            fit = tail_fit(grid, main[test], x.size) if independent else _end_fit(grid, main[test], x.size)
            out[test] = _solve_threshold(fit, targets[test], config, test, independent)
    return {t: out[t] for t in targets}


def _solve_threshold(
    fit: LogRateFit | None, target: float, config: BankConfig, test: str, independent: bool = True
) -> float:
    """The threshold at which the fitted rate, one standard error up, is ``FIT_MARGIN x target``.

    The adaptive CUSUMs (``cusum_shape``, ``cusum_missing``) never go above
    ``log(1 / target)``: each run of theirs reaches ``h`` with probability at most
    ``exp(-h)`` under the reference (Ville's inequality) and at most one run starts per
    event, so that threshold keeps the rate under the target whatever the fit says.
    Without a usable fit: the configured threshold (capped the same way). The bound needs
    independent values (the likelihood ratio a martingale under the reference): a
    dependent feature (a profile's seasonal section with a dependence) keeps the fitted
    threshold, measured on values with that dependence.
    """
    ville = math.log(1.0 / target) if test in ADAPTIVE_TESTS and independent else math.inf
    if fit is None or fit.slope >= 0:
        return float(min(default_threshold(config, test), ville))
    h = fit.solve(math.log(target * FIT_MARGIN))
    h += fit.log_rate_se(h) / -fit.slope  # one standard error on the safe side
    return float(min(max(h, SEQ_PILOT[0]), ville))


def default_threshold(config: BankConfig, test: str) -> float:
    """The configured threshold of ``test`` (``cusum_mean`` -> ``sequential.mean_threshold``)."""
    return float(getattr(config.sequential, test.removeprefix("cusum_") + "_threshold"))


def _calibrate_one(
    prof: NumericProfile,
    config: BankConfig,
    budget: float,
    values: int,
    rng: np.random.Generator,
    phi: float = 0.0,
    seasonal: SeasonalFeature | None = None,
    residuals: np.ndarray | None = None,
) -> dict[str, float]:
    independent = phi == 0.0 and (seasonal is None or seasonal.ar1 == 0.0)
    if not independent:
        values *= DEPENDENT_VALUES
        budget *= DEPENDENT_MARGIN

    def draw() -> np.ndarray:  # a transformed feature (cyclic, whitened): as the bank's detectors see it
        assert seasonal is not None
        if residuals is not None:
            return bootstrap_view(seasonal, residuals, values, rng)
        return simulate_view(seasonal, values, rng)

    x = draw() if seasonal is not None else sample_like(prof, values, rng, phi)
    std = reference_std(prof.mean, prof.std, *profile_percentiles(prof.quantiles))
    # exactly what the bank does with the values of a profiled feature
    lo, hi = profile_clip_bounds(prof.quantiles, prof.mean, std) if config.winsorize else (-np.inf, np.inf)
    z = standardize(x, prof.mean, std, lo, hi)
    share = budget_split(config)
    params: dict[str, float] = {}
    if "page_hinkley" in share:
        params["page_hinkley_threshold"] = _ph_threshold(z, config, budget * share["page_hinkley"], not independent)
    if "adwin" in share:
        params["adwin_delta"] = _adwin_delta(z, config, budget * share["adwin"], rng, phi, not independent)
    targets = {t: budget * share[t] for t in sequential_tests(config)}
    if targets and not is_constant(prof.std, prof.mean, *profile_percentiles(prof.quantiles)):
        # (a constant reference has no sequential tests in the bank: the constant watch instead)
        # the events as the bank sees them: missing at the profile's rate (NaN in x and z)
        if seasonal is not None:
            xs = draw()
        else:
            xs = sample_like_reference(prof, values, rng, SEQ_SEGMENTS, phi)
        zs = standardize(xs, prof.mean, std, lo, hi)
        missing = rng.random(values) < prof.missing_ratio
        xm = np.where(missing, np.nan, xs)
        zm = np.where(missing, np.nan, zs)
        for test, h in _sequential_thresholds(prof, config, targets, xm, zm, rng, independent).items():
            params[f"{test}_threshold"] = h
    return params


# ---------------------------------------------------------------------------- categorical features
#: A categorical feature is simulated over this many times ``values``: its tests' rate bends
#: (the log rate falls by about 1.4 per nat between h 3 and 6, 0.7 beyond), so a line
#: through the settings 300,000 values can count put the threshold at 6.3 where 1.5 false
#: alarms per million were measured (benchmarks.sequential --categorical); ten times the
#: values count settings near the target, at about 30 ns per value and setting.
CATEGORICAL_VALUES = 30
#: Main runs at most: while the tightest setting still fires more than ``3 SEQ_MIN_ALARMS``
#: times, the settings move out along a line through the last run's counts (the pilot's
#: 20,000 values see only the steep start of the tail).
CATEGORICAL_ROUNDS = 4


def categorical_tests(config: BankConfig) -> list[str]:
    """The categorical sequential tests ``config`` runs (none when the sequential tests are off)."""
    seq = config.sequential
    return [t for t in CATEGORICAL_TESTS if seq.enabled and t in seq.tests]


def category_reference(prof: CategoricalProfile) -> np.ndarray | None:
    """The reference shares the reference monitor gives ``cusum_categories`` (the top
    categories, then "another category seen in training"); ``None`` without any."""
    p0 = np.array([*prof.frequencies.values(), prof.other_share], dtype=np.float64)
    return p0 if p0.sum() > 0 else None


def sample_categories(prof: CategoricalProfile, values: int, rng: np.random.Generator) -> np.ndarray:
    """``values`` reference codes drawn like the profile's values: ``SEQ_SEGMENTS`` stretches,
    each from shares drawn from the Dirichlet posterior of the profile's counts (its own
    sampling error, as :func:`sample_like_reference` does for a numeric feature), and values
    never seen in training (code -2) at the reference rate ``1 / (count + 1)``."""
    p0 = category_reference(prof)
    assert p0 is not None
    counts = p0 / p0.sum() * max(int(prof.count), 1)
    out = np.empty(values, dtype=np.int64)
    for part in np.array_split(np.arange(values), SEQ_SEGMENTS):
        out[part] = rng.choice(p0.size, size=part.size, p=rng.dirichlet(counts + 0.5))
    out[rng.random(values) < 1.0 / (max(int(prof.count), 1) + 1.0)] = -2
    return out


def count_categorical_alarms(
    config: BankConfig, prof: CategoricalProfile, grids: dict[str, np.ndarray], codes: np.ndarray
) -> dict[str, np.ndarray]:
    """Drift alarms of each categorical test at each of its thresholds over ``codes``: every
    setting a column of one :class:`CategoricalSequential` with the profile's shares;
    episodes resolve as soon as the kernel allows."""
    tests = list(grids)
    k = max(len(g) for g in grids.values())
    seq = CategoricalSequential(config.sequential.model_copy(update={"enabled": True, "tests": tests}), 1)
    p0 = category_reference(prof)
    assert p0 is not None
    for j in range(k):
        seq.add_feature(p0, max(int(prof.count), 1))
        seq.set_thresholds(j, **{t: float(g[min(j, len(g) - 1)]) for t, g in grids.items()})
    counts = {t: np.zeros(k, dtype=np.int64) for t in tests}
    for i in range(0, codes.size, SEQ_BATCH):
        block = np.repeat(codes[i : i + SEQ_BATCH, None], k, axis=1)
        for hit in seq.update(block):
            if hit.status == "drift":
                counts[hit.test][hit.feature] += 1
    return {t: counts[t][: len(grids[t])] for t in tests}


def _calibrate_categorical(
    prof: CategoricalProfile, config: BankConfig, budget: float, values: int, rng: np.random.Generator
) -> dict[str, float]:
    """``cusum_<test>_threshold`` of a categorical feature: its enabled categorical tests
    share the budget equally (per value), each threshold found like a numeric test's (a
    pilot, a main run, the Poisson tail fit one standard error on the safe side, never
    above Ville's ``log(1 / share)``; a test that never fires keeps its configured one)."""
    tests = categorical_tests(config)
    if not tests or category_reference(prof) is None:
        return {}
    target = budget / len(tests)
    values *= CATEGORICAL_VALUES
    codes = sample_categories(prof, values, rng)
    pilot_n = min(SEQ_PILOT_EVENTS, values)
    pilot = np.array(SEQ_PILOT)
    counts = count_categorical_alarms(config, prof, {t: pilot for t in tests}, codes[:pilot_n])
    out: dict[str, float] = {}
    grids: dict[str, np.ndarray] = {}
    for test in tests:
        grid = _main_grid(pilot, counts[test], pilot_n, values)
        if grid is None:
            out[test] = _solve_threshold(None, target, config, test)
        else:
            grids[test] = grid
    for _ in range(CATEGORICAL_ROUNDS):
        if not grids:
            break
        main = count_categorical_alarms(config, prof, grids, codes)
        for test, grid in list(grids.items()):
            regrid = _main_grid(grid, main[test], values, values)
            if main[test][-1] <= 3 * SEQ_MIN_ALARMS or regrid is None or regrid[-1] <= grid[-1]:
                out[test] = _solve_threshold(_end_fit(grid, main[test], values), target, config, test)
                del grids[test]
            else:  # the tail bends: the tightest setting still fires often, go further out
                grids[test] = regrid
    for test, grid in grids.items():
        out[test] = _solve_threshold(_end_fit(grid, main[test], values), target, config, test)
    return {f"{t}_threshold": out[t] for t in tests}


def _end_fit(grid: np.ndarray, counts: np.ndarray, events: int) -> LogRateFit | None:
    """:func:`fit_log_rate` through the three tightest settings that fired (the end of a
    bending tail: a line through all of them is steeper and lands too low)."""
    fired = np.flatnonzero(counts > 0)[-3:]
    if fired.size < 2:
        return tail_fit(grid, counts, events)
    return fit_log_rate(grid[fired], counts[fired], events)


def safer(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """Per setting, the one with fewer false alarms: the smaller ``adwin_delta``, the larger threshold.

    >>> model = {"adwin_delta": 0.002, "page_hinkley_threshold": 30.0}
    >>> safer(model, {"adwin_delta": 0.001, "page_hinkley_threshold": 28.0})
    {'adwin_delta': 0.001, 'page_hinkley_threshold': 30.0}
    """
    return {k: min(v, b[k]) if k == "adwin_delta" else max(v, b[k]) for k, v in a.items()}


def calibrate(
    profile: ReferenceProfile,
    config: BankConfig | None = None,
    false_alarms_per_million: float = 1.0,
    values: int = 1_000_000,
    seed: int = 0,
    workers: int | None = None,
    residuals: Mapping[str, np.ndarray] | None = None,
) -> dict[str, dict[str, float]]:
    """Per numeric feature, for the target rate: ``page_hinkley_threshold``, ``adwin_delta``
    and ``cusum_<test>_threshold`` for each enabled numeric sequential test; per categorical
    feature with reference shares, ``cusum_categories_threshold`` and
    ``cusum_unseen_threshold`` (those enabled: :func:`_calibrate_categorical`).

    ``values`` is the number of values drawn per feature (Page-Hinkley runs over them once,
    ADWIN over them and random permutations of them: 2 to 8 passes; the sequential tests
    over as many events of their own, after a pilot over the first 20,000); a dependent
    feature's ``DEPENDENT_VALUES`` times as many. ``workers`` threads (default: the CPUs)
    calibrate features in parallel; results do not depend on it. ``residuals``: per
    transformed feature of the profile's seasonal section, the reference's own
    phase-standardised values
    (:func:`~driftsentinel.detectors.seasonal_profile.reference_residuals`): that feature
    is then calibrated twice, on draws from the profile's latent Gaussian model and on a
    block bootstrap of those values
    (:func:`~driftsentinel.detectors.seasonal_profile.bootstrap_view`), and keeps the
    safer of the two settings (:func:`safer`). Each misses what the other holds: on
    ``benchmarks.seasonal`` (20 million live values per shape) the model alone left
    Poisson counts of an AR(1) rate at 4.7 false alarms per million (their bursts), the
    bootstrap alone lognormal values at 1.9 (the reference's finite tail); the normal
    ones 1.05 and 0.9.
    """
    config = config or BankConfig()
    budget = false_alarms_per_million / 1e6
    phis = {n: dependence(profile, n) for n in profile.features}  # the profile's seasonal section
    section = profile.seasonal
    seasonal = {n: section.features[n] for n in transformed_features(profile)} if section is not None else {}
    profile = seasonal_view(profile)  # a transformed feature: in the units its detectors see
    numeric = [(n, p) for n, p in profile.features.items() if isinstance(p, (NumericProfile, CategoricalProfile))]

    def one(item: tuple[str, NumericProfile | CategoricalProfile]) -> dict[str, float]:
        name, prof = item
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        if isinstance(prof, CategoricalProfile):
            return _calibrate_categorical(prof, config, budget, values, rng)
        feat = seasonal.get(name)
        params = _calibrate_one(prof, config, budget, values, rng, phis[name], feat)
        own = residuals.get(name) if residuals is not None and feat is not None else None
        if own is None:
            return params
        return safer(params, _calibrate_one(prof, config, budget, values, rng, phis[name], feat, own))

    workers = max(1, min(workers or os.cpu_count() or 1, len(numeric)))
    if workers == 1:
        results = [one(item) for item in numeric]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, numeric))
    return {
        name: params
        for (name, prof), params in zip(numeric, results, strict=True)
        if params or isinstance(prof, NumericProfile)
    }
