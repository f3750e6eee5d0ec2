"""Seasonal references and serial dependence: a cyclic, correlated feature compared with itself.

Production features follow the clock (order values the hour of the day, traffic the day
of the week) and consecutive events are correlated. This module is the pure core of
conditioning a reference on event time and of measuring the dependence calibration must
simulate:

* :class:`Period` and :func:`parse_period`: the phase of an event time —
  ``hour_of_day`` (24 phases, UTC), ``hour_of_week`` (168 phases, Monday 00:00 UTC is
  phase 0), or a period of ``SECONDS`` split into 24 phases (``SECONDS/PHASES`` for
  another number of phases).
* :func:`detect_period`: daily, weekly or none for one feature, from the reference's
  (event time, value) pairs; :func:`choose_period` the profile's period from the
  features' choices.
* :func:`phase_summaries`: per phase the count, mean, std and quantiles, pooling sparse
  phases with their neighbours on the cycle.
* :class:`SeasonalReference`: per-row reference mean and std for a batch, vectorised.
* :func:`lag1_autocorrelation`, :func:`latent_ar1`, :func:`simulate_dependent`: the serial
  dependence of the phase-standardised values and a stationary simulator with that
  dependence and the reference's marginal (a Gaussian AR(1) read through the reference
  quantiles).

Period detection (statistics)
-----------------------------
For each candidate period whose cycles the reference covers at least :data:`MIN_CYCLES`
times (a phase seen in one cycle only is confounded with a trend), the phase means are a
one-way analysis of variance: ``eta2 = SSB / SST`` is the share of the variance they
explain. Consecutive values are correlated, so the phase means vary more than
independent values would: with lag-1 autocorrelation ``r`` of the residuals (values minus
their phase mean, in time order) the variance of a mean over a long run of values is
``(1 + r) / (1 - r)`` times the independent one, and the F statistic is divided by that
factor; ``df1 F`` is then read as chi-square(``df1``), the large-sample form, which needs
``n_eff = n (1 - r) / (1 + r)`` of at least 5 per phase (else the candidate is not
tested). A candidate is taken when

* it is significant: the corrected F test's p-value is below ``alpha`` (1e-3 by default:
  a profile tests every feature), AND
* it matters: ``eta2`` is at least ``min_share`` (0.01 by default: a sine of amplitude
  0.14 reference sds; a cycle smaller than that moves no detector measurably).

Candidates are nested (hour_of_week refines hour_of_day): the weekly one is tested on
what it adds to the daily one (``SSB_week - SSB_day``, the same two rules), so a daily
cycle does not make a week out of 168 hours. A feature with no candidate passing has no
cycle (``none``).

Pooling sparse phases
---------------------
A phase with fewer than ``min_count`` values (30 by default) borrows from its
neighbours on the cycle: its summary is taken over phases ``p - w .. p + w`` (wrapping
around), ``w`` the smallest width that reaches ``min_count`` values; when even the
whole cycle does not, every phase is the overall reference. ``pooled`` records ``2 w + 1``
per phase (1: its own values only), so the profile shows which phases borrowed.

Memory
------
Per feature: ``phases x (3 + n_quantiles + 1)`` numbers in the profile (count, mean, std
and the phase's quantiles; 21 quantiles by default: 24 x 25 = 600 numbers for
hour_of_day, 168 x 25 = 4,200 for hour_of_week, about 34 KB), plus the residuals'
quantiles and two dependence numbers. :class:`SeasonalReference` keeps only the
``phases x features`` means and stds (two float64 arrays); a batch needs its rows' phases
and two ``rows x features`` arrays.

Serial dependence (statistics)
------------------------------
The reference's values are standardised by their phase (``z = (x - mean_p) / std_p``) and
ordered by event time; :func:`lag1_autocorrelation` is the usual estimator
``sum (z_t - m)(z_{t+1} - m) / sum (z_t - m)^2``. The simulator draws a stationary
Gaussian AR(1) ``e_t = phi e_{t-1} + sqrt(1 - phi^2) eps_t`` and reads ``Phi(e_t)``
through the reference quantiles (the residuals' marginal is kept exactly). The map from
``e`` to the value is monotone but not linear, so the values' autocorrelation is below
``phi`` for skewed or discrete marginals; :func:`latent_ar1` therefore solves for the
``phi`` whose simulated values have the measured lag-1 autocorrelation (bisection with
common random numbers: a monotone, smooth function of ``phi``). For a Gaussian marginal it
is the measured autocorrelation itself. What this assumes: the dependence of the
standardised values is AR(1)-like (geometric decay) and the same in every phase; a
longer memory (long-range dependence, a slow drift inside the reference) is not
simulated and makes the false-alarm rate higher than calibrated.

>>> p = parse_period("hour_of_week")
>>> p.phase(np.array([0.0, 3 * 86400.0, 4 * 86400.0 + 3600.0])).tolist()  # Thu 1970-01-01 00:00, Sun, Mon 01:00
[72, 144, 1]
>>> parse_period("900/15").phase(np.array([0.0, 59.9, 60.0, 899.0])).tolist()
[0, 0, 1, 14]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from driftsentinel.detectors._distributions import bisect, normal_cdf, normal_quantile
from driftsentinel.detectors.standardize import reference_std
from driftsentinel.detectors.window_tests import chi2_sf

__all__ = [
    "ALPHA",
    "MAX_PHASES",
    "MIN_CYCLES",
    "MIN_PHASE_COUNT",
    "MIN_SHARE",
    "PERIODS",
    "Period",
    "PeriodTest",
    "PhaseSummaries",
    "SeasonalReference",
    "choose_period",
    "block_length",
    "block_order",
    "dependent_uniforms",
    "detect_period",
    "gaussian_ar1",
    "lag1_autocorrelation",
    "latent_ar1",
    "arma_coefficients",
    "latent_dependence",
    "latent_weight",
    "normal_score_ar1",
    "normal_scores",
    "parse_period",
    "phase_summaries",
    "quantile_function",
    "simulate_dependent",
    "whiten",
]

HOUR = 3600.0
DAY = 86_400.0
WEEK = 7 * DAY
#: Seconds from the epoch origin (Thursday 1970-01-01 00:00 UTC) back to a Monday 00:00 UTC.
MONDAY = -3 * DAY
#: Bound on the phases of a period (a profile is input; phases x features are allocated).
MAX_PHASES = 1024
#: Cycles the reference must cover before a period is detected (a phase seen once is a trend).
MIN_CYCLES = 2.0
#: Significance level of the period test (a profile tests every numeric feature).
ALPHA = 1e-3
#: Smallest share of the variance a cycle must explain to be used.
MIN_SHARE = 0.01
#: A phase with fewer values borrows from its neighbours on the cycle.
MIN_PHASE_COUNT = 30
#: Quantiles per phase: at 0, 1/20, ..., 1.
PHASE_QUANTILES = 20
#: Effective (independent-equivalent) values per phase a period test needs.
MIN_EFFECTIVE_PER_PHASE = 5.0
#: Largest AR(1) coefficient simulated (0.999: a correlation time of 1,000 values).
MAX_PHI = 0.999


@dataclass(frozen=True)
class Period:
    """A cycle: ``seconds`` long, split into ``phases`` equal phases, phase 0 starting at
    ``origin`` (epoch seconds, UTC) and every ``seconds`` after it."""

    name: str
    seconds: float
    phases: int
    origin: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"a period must be a positive number of seconds, not {self.seconds}")
        if not 1 <= self.phases <= MAX_PHASES:
            raise ValueError(f"a period has 1 to {MAX_PHASES} phases, not {self.phases}")

    def phase(self, t: np.ndarray) -> np.ndarray:
        """The phase (``int64`` in ``0 .. phases - 1``) of each event time (epoch seconds)."""
        t = np.asarray(t, dtype=np.float64)
        frac = np.mod(t - self.origin, self.seconds) / self.seconds
        return np.minimum((frac * self.phases).astype(np.int64), self.phases - 1)


#: The named periods (UTC).
PERIODS = {
    "hour_of_day": Period("hour_of_day", DAY, 24),
    "hour_of_week": Period("hour_of_week", WEEK, 168, MONDAY),
}
#: The periods :func:`detect_period` tries, coarse to fine (each refines the one before).
CANDIDATES = (PERIODS["hour_of_day"], PERIODS["hour_of_week"])


def parse_period(text: str) -> Period:
    """``hour_of_day``, ``hour_of_week``, ``SECONDS`` (24 phases) or ``SECONDS/PHASES``;
    :class:`ValueError` saying what is accepted otherwise.

    >>> parse_period("hour_of_day").phases, parse_period("3600").phases, parse_period("3600/12").seconds
    (24, 24, 3600.0)
    """
    text = text.strip()
    if text in PERIODS:
        return PERIODS[text]
    seconds, _, phases = text.partition("/")
    try:
        s = float(seconds)
        k = int(phases) if phases else 24
    except ValueError:
        raise ValueError(
            f"period {text!r}: give hour_of_day, hour_of_week, a number of seconds, or SECONDS/PHASES"
        ) from None
    if not (math.isfinite(s) and s > 0) or not 1 <= k <= MAX_PHASES:
        raise ValueError(f"period {text!r}: the seconds must be positive and the phases 1 to {MAX_PHASES}")
    return Period(text, s, k)


# ------------------------------------------------------------------------------------- detection
@dataclass(frozen=True)
class PeriodTest:
    """One candidate's test on one feature (what :func:`detect_period` decided from)."""

    period: str
    eta2: float  # share of the variance the phase means explain (of what the coarser period left)
    p_value: float  # corrected F test of that share
    residual_acf1: float  # lag-1 autocorrelation of the values minus their phase means
    passed: bool


def _phase_anova(x: np.ndarray, phase: np.ndarray, k: int) -> tuple[float, float, np.ndarray]:
    """Between-phase and total sums of squares, and the phase means per value."""
    counts = np.bincount(phase, minlength=k).astype(np.float64)
    sums = np.bincount(phase, weights=x, minlength=k)
    means = np.divide(sums, counts, out=np.zeros(k), where=counts > 0)
    grand = float(x.mean())
    ssb = float(np.sum(counts * (means - grand) ** 2))
    sst = float(np.sum((x - grand) ** 2))
    return ssb, sst, means[phase]


def detect_period(
    t: np.ndarray,
    x: np.ndarray,
    candidates: tuple[Period, ...] = CANDIDATES,
    alpha: float = ALPHA,
    min_share: float = MIN_SHARE,
) -> tuple[Period | None, list[PeriodTest]]:
    """The period of ``x`` (values at event times ``t``, any order; NaN missing), or None.

    ``candidates`` run coarse to fine, each refining the one before (the rule in the
    module's docstring); returns the finest that passed, and every candidate's test.
    """
    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(x)
    order = np.argsort(t[ok], kind="stable")
    t, x = t[ok][order], x[ok][order]
    tests: list[PeriodTest] = []
    chosen: Period | None = None
    n = x.size
    if n < 3 or t[-1] - t[0] <= 0:
        return None, tests
    _, sst, _ = _phase_anova(x, np.zeros(n, dtype=np.int64), 1)
    if sst <= 0:
        return None, tests
    ssb_before, k_before = 0.0, 1
    for period in candidates:
        if (t[-1] - t[0]) < MIN_CYCLES * period.seconds:
            continue
        k = period.phases
        ssb, _, fitted = _phase_anova(x, period.phase(t), k)
        r = min(max(lag1_autocorrelation(x - fitted), 0.0), MAX_PHI)
        inflation = (1 + r) / (1 - r)
        n_eff = n / inflation
        df1 = k - k_before
        ssw = max(sst - ssb, 1e-300 * sst)
        gain = max(ssb - ssb_before, 0.0)
        f = (gain / df1) / (ssw / max(n - k, 1)) / inflation if df1 > 0 else 0.0
        # df1 * F is chi-square(df1) when the residual degrees of freedom are many (required)
        enough = df1 > 0 and n_eff >= MIN_EFFECTIVE_PER_PHASE * k
        p = chi2_sf(df1 * f, df1) if enough else 1.0
        share = gain / sst
        passed = enough and p < alpha and share >= min_share
        tests.append(PeriodTest(period.name, share, p, r, passed))
        if passed:
            chosen, ssb_before, k_before = period, ssb, k
    return chosen, tests


def choose_period(choices: list[Period | None]) -> Period | None:
    """The profile's period from the features' own (:func:`detect_period`): the one most
    features chose, the finer on a tie; None when no feature has a cycle.

    >>> d, w = PERIODS["hour_of_day"], PERIODS["hour_of_week"]
    >>> choose_period([d, None, w, d]).name, choose_period([d, w]).name, choose_period([None, None])
    ('hour_of_day', 'hour_of_week', None)
    """
    found = [p for p in choices if p is not None]
    if not found:
        return None
    votes = {p.name: sum(q.name == p.name for q in found) for p in found}
    return max(found, key=lambda p: (votes[p.name], p.phases))


# ------------------------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class PhaseSummaries:
    """Per phase of one feature: its own values' count, the pool's width, mean, std, quantiles."""

    counts: np.ndarray  # int64 [phases]: the phase's own values
    pooled: np.ndarray  # int64 [phases]: phases in the pool (1: its own values only)
    mean: np.ndarray  # [phases]
    std: np.ndarray  # [phases] (reference_std: a constant phase gets a positive floor)
    quantiles: np.ndarray = field(repr=False)  # [phases, n_quantiles + 1]


def phase_summaries(
    x: np.ndarray,
    phase: np.ndarray,
    phases: int,
    min_count: int = MIN_PHASE_COUNT,
    n_quantiles: int = PHASE_QUANTILES,
) -> PhaseSummaries:
    """Summaries of ``x`` (NaN missing) per ``phase`` (0 .. phases - 1), sparse phases
    pooled with their neighbours (module docstring). Needs at least 2 values."""
    x = np.asarray(x, dtype=np.float64)
    phase = np.asarray(phase, dtype=np.int64)
    ok = np.isfinite(x)
    x, phase = x[ok], phase[ok]
    if x.size < 2:
        raise ValueError("a seasonal summary needs at least 2 values")
    order = np.argsort(phase, kind="stable")
    xs = x[order]
    counts = np.bincount(phase, minlength=phases)
    starts = np.r_[0, np.cumsum(counts)]
    need = min_count if x.size >= min_count else x.size + 1  # too few values: every phase pools all
    levels = np.linspace(0.0, 1.0, n_quantiles + 1)
    mean = np.empty(phases)
    std = np.empty(phases)
    quant = np.empty((phases, n_quantiles + 1))
    pooled = np.empty(phases, dtype=np.int64)
    ring = np.r_[counts, counts, counts]  # phase p is ring[p + phases]
    for p in range(phases):
        w = 0
        while 2 * w + 1 < phases and ring[p + phases - w : p + phases + w + 1].sum() < need:
            w += 1
        if 2 * w + 1 >= phases:
            values, width = xs, phases
        else:
            idx = [(p + d) % phases for d in range(-w, w + 1)]
            values = np.concatenate([xs[starts[i] : starts[i + 1]] for i in idx])
            width = 2 * w + 1
        q = np.quantile(values, levels)
        m = float(values.mean())
        s = float(values.std(ddof=1)) if values.size > 1 else 0.0
        mean[p], std[p], quant[p], pooled[p] = m, reference_std(m, s, float(q[0]), float(q[-1])), q, width
    return PhaseSummaries(counts.astype(np.int64), pooled, mean, std, quant)


class SeasonalReference:
    """Per-phase reference means and stds of a model's features: ``phases x features``.

    A feature without a cycle has the same mean and std in every phase (its overall ones).

    >>> ref = SeasonalReference(PERIODS["hour_of_day"], np.arange(24.0)[:, None], np.ones((24, 1)))
    >>> t = np.array([0.0, 5 * 3600.0, 23 * 3600.0 + 59])
    >>> m, s = ref.standardize(np.array([[0.0], [6.0], [23.0]]), t)
    >>> m[:, 0].tolist(), s[:, 0].tolist()
    ([0.0, 5.0, 23.0], [1.0, 1.0, 1.0])
    """

    def __init__(self, period: Period, mean: np.ndarray, std: np.ndarray) -> None:
        mean = np.asarray(mean, dtype=np.float64)
        std = np.asarray(std, dtype=np.float64)
        if mean.ndim != 2 or mean.shape != std.shape or mean.shape[0] != period.phases:
            raise ValueError(f"means and stds must both be phases x features ({period.phases} x F)")
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError("phase means must be finite and phase stds finite and positive")
        self.period = period
        self.mean = mean
        self.std = std

    def standardize(self, x: np.ndarray, event_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row reference mean and std (``rows x features``) for the rows of ``x`` at
        ``event_times`` (epoch seconds): ``(x - mean) / std`` is the phase-standardised value."""
        rows = np.asarray(x).shape[0]
        t = np.asarray(event_times, dtype=np.float64)
        if t.shape != (rows,):
            raise ValueError(f"{rows} rows need {rows} event times, got shape {t.shape}")
        ph = self.period.phase(t)
        return self.mean[ph], self.std[ph]

    def z(self, x: np.ndarray, event_times: np.ndarray) -> np.ndarray:
        """The phase-standardised values ``(x - mean_phase) / std_phase`` (NaN stays NaN)."""
        mean, std = self.standardize(x, event_times)
        return (np.asarray(x, dtype=np.float64) - mean) / std


# ------------------------------------------------------------------------------------- dependence
def lag1_autocorrelation(z: np.ndarray, lag: int = 1) -> float:
    """Lag-``lag`` autocorrelation of a series in time order (pairs with a NaN left out; 0
    for fewer than 3 pairs or no spread).

    >>> round(lag1_autocorrelation(np.array([1.0, 2.0, 3.0, 4.0, 5.0])), 3)
    0.4
    """
    z = np.asarray(z, dtype=np.float64)
    ok = np.isfinite(z)
    if ok.sum() < 3 or z.size <= lag:
        return 0.0
    m = float(z[ok].mean())
    d = np.where(ok, z - m, np.nan)
    den = float(np.nansum(d**2))
    pairs = d[:-lag] * d[lag:]
    if den <= 0 or np.isfinite(pairs).sum() < 3:
        return 0.0
    scale = (ok.sum() - lag) / np.isfinite(pairs).sum()  # a missing value drops its pairs, not the variance
    return float(np.clip(np.nansum(pairs) * scale / den, -1.0, 1.0))


def arma_coefficients(rho1: float, rho2: float) -> tuple[float, float]:
    """The ARMA(1,1) ``(phi, theta)`` with these lag-1 and lag-2 autocorrelations, for the
    dependence of an AR(1) level seen through independent noise (``0 <= theta < phi``):
    ``phi = rho2 / rho1``, ``theta`` solving ``rho1 = (1 - phi theta)(phi - theta) /
    (1 + theta^2 - 2 phi theta)``. A plain AR(1) (``theta = 0``, ``phi = rho1``) when the
    ratio is not above ``rho1`` (or ``rho1 <= 0``).

    >>> arma_coefficients(0.5, 0.25), tuple(round(v, 3) for v in arma_coefficients(0.45, 0.405))
    ((0.5, 0.0), (0.9, 0.627))
    """
    if rho1 <= 0.0 or rho2 <= rho1 * rho1:
        return float(np.clip(rho1, -MAX_PHI, MAX_PHI)), 0.0
    phi = min(rho2 / rho1, MAX_PHI)
    if phi <= rho1:
        return phi, 0.0

    def r1(theta: float) -> float:
        return (1 - phi * theta) * (phi - theta) / (1 + theta * theta - 2 * phi * theta)

    return phi, bisect(lambda theta: -r1(theta), -rho1, 0.0, phi, 60)  # r1 falls from phi to 0


def quantile_function(quantiles: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Values at probabilities ``u`` from evenly spaced ``quantiles`` (at 0, 1/q, ..., 1):
    linear between them, or steps when every quantile is an integer (counts, indicators)."""
    q = np.asarray(quantiles, dtype=np.float64)
    levels = np.linspace(0.0, 1.0, q.size)
    if np.all(q == np.round(q)):
        return q[np.minimum(np.searchsorted(levels, u, side="left"), q.size - 1)]
    return np.interp(u, levels, q)


@nb.njit(cache=True, nogil=True)
def _ar1(phi: float, eps: np.ndarray, start: float) -> np.ndarray:  # pragma: no cover - compiled
    """The stationary N(0, 1) AR(1) ``e_t = phi e_(t-1) + sqrt(1 - phi^2) eps_t`` driven by
    ``eps`` (N(0, 1)), from ``e_(-1) = start`` (N(0, 1))."""
    s = math.sqrt(1.0 - phi * phi)
    out = np.empty(eps.size)
    e = start
    for i in range(eps.size):
        e = phi * e + s * eps[i]
        out[i] = e
    return out


def _ar1_uniforms(
    phi: float, eps: np.ndarray, start: float, noise: np.ndarray | None = None, weight: float = 1.0
) -> np.ndarray:
    """``Phi`` of ``sqrt(w) g_t + sqrt(1 - w) noise_t``, ``g`` the AR(1) (``w`` = 1: ``g`` itself)."""
    g = _ar1(phi, eps, start)
    if noise is not None and weight < 1.0:
        g = math.sqrt(weight) * g + math.sqrt(1.0 - weight) * noise
    return normal_cdf(g)


def gaussian_ar1(phi: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` values of a stationary N(0, 1) AR(1) with coefficient ``phi`` (|phi| < 1)."""
    if not -1.0 < phi < 1.0:
        raise ValueError(f"AR(1) coefficient {phi} outside (-1, 1)")
    return np.asarray(_ar1(float(phi), rng.standard_normal(n), float(rng.standard_normal())))


def dependent_uniforms(phi: float, n: int, rng: np.random.Generator, weight: float = 1.0) -> np.ndarray:
    """``n`` uniforms ``Phi(e_t)``, ``e_t = sqrt(w) g_t + sqrt(1 - w) eps_t`` with ``g`` a
    stationary Gaussian AR(1) ``phi`` (``w`` = ``weight``; independent for ``phi`` 0): read
    through any quantile function, a stationary series with that marginal whose latent
    autocorrelations are ``w phi^k``."""
    if phi == 0.0:
        return rng.random(n)
    if not -MAX_PHI <= phi <= MAX_PHI or not 0.0 < weight <= 1.0:
        raise ValueError(f"AR(1) coefficient {phi} outside [-{MAX_PHI}, {MAX_PHI}] or weight {weight} outside (0, 1]")
    eps = rng.standard_normal(n)
    start = float(rng.standard_normal())
    noise = rng.standard_normal(n) if weight < 1.0 else None
    return _ar1_uniforms(float(phi), eps, start, noise, weight)


def simulate_dependent(
    quantiles: np.ndarray, phi: float, n: int, rng: np.random.Generator, weight: float = 1.0
) -> np.ndarray:
    """``n`` stationary values with the marginal of ``quantiles`` and the latent dependence
    ``(phi, weight)`` (:func:`dependent_uniforms`) read through the quantile function."""
    return quantile_function(quantiles, dependent_uniforms(phi, n, rng, weight))


def normal_score_ar1(z: np.ndarray) -> float | None:
    """The Gaussian-copula AR(1) coefficient of a continuous series in time order: the lag-1
    autocorrelation of its normal scores (:func:`normal_scores`). None for a discrete one."""
    scores = normal_scores(z)
    return None if scores is None else float(np.clip(lag1_autocorrelation(scores), -MAX_PHI, MAX_PHI))


def normal_scores(z: np.ndarray) -> np.ndarray | None:
    """``Phi^-1(rank / (n + 1))`` of a series (NaN stays NaN); None when a tenth or more of
    the values are ties (a discrete marginal: the scores' steps bias correlations to 0)."""
    z = np.asarray(z, dtype=np.float64)
    ok = np.isfinite(z)
    v = z[ok]
    if v.size < 3 or np.unique(v).size < 0.9 * v.size:
        return None
    ranks = np.empty(v.size)
    ranks[np.argsort(v, kind="stable")] = np.arange(1, v.size + 1)
    scores = np.full(z.size, np.nan)
    scores[ok] = normal_quantile(ranks / (v.size + 1))
    return scores


def latent_dependence(z: np.ndarray, quantiles: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """The simulator's ``(phi, weight)`` for a series in time order (:func:`dependent_uniforms`):
    from the lag-1 and lag-2 autocorrelations (:func:`arma_coefficients`: ``phi = rho2 /
    rho1``, ``weight = rho1 / phi``) of the normal scores for a continuous series (the
    Gaussian copula's own), else ``phi`` from the values' and the weight matched to their
    lag-1 autocorrelation by simulation (:func:`latent_ar1`)."""
    scores = normal_scores(z)
    series = scores if scores is not None else np.asarray(z, dtype=np.float64)
    rho1, rho2 = lag1_autocorrelation(series), lag1_autocorrelation(series, 2)
    phi, theta = arma_coefficients(rho1, rho2)
    if theta == 0.0 or phi <= 0.0:
        if scores is not None:
            return phi, 1.0
        return latent_ar1(rho1, quantiles, rng), 1.0
    if scores is not None:
        return phi, float(np.clip(rho1 / phi, 1e-6, 1.0))
    return phi, latent_weight(phi, rho1, quantiles, rng)


def latent_weight(
    phi: float, rho1: float, quantiles: np.ndarray, rng: np.random.Generator, n: int = 200_000, steps: int = 20
) -> float:
    """The weight ``w`` whose :func:`simulate_dependent` values (latent AR(1) ``phi``) have
    lag-1 autocorrelation ``rho1`` (bisection, common random numbers)."""
    q = np.asarray(quantiles, dtype=np.float64)
    eps, noise = rng.standard_normal(n), rng.standard_normal(n)
    start = float(rng.standard_normal())

    def acf(w: float) -> float:
        return lag1_autocorrelation(quantile_function(q, _ar1_uniforms(phi, eps, start, noise, w)))

    if acf(1.0) <= rho1:
        return 1.0
    return bisect(acf, rho1, 1e-6, 1.0, steps)


def latent_ar1(
    acf1: float, quantiles: np.ndarray, rng: np.random.Generator, n: int = 200_000, steps: int = 20
) -> float:
    """The latent AR(1) coefficient whose :func:`simulate_dependent` values have lag-1
    autocorrelation ``acf1`` (bisection on ``n`` simulated values, common random numbers,
    ``steps`` halvings: about 2e-6 of the interval). 0 when the marginal has no spread."""
    q = np.asarray(quantiles, dtype=np.float64)
    if q[-1] <= q[0] or acf1 == 0.0:
        return 0.0
    eps = rng.standard_normal(n)
    start = float(rng.standard_normal())

    def acf(phi: float) -> float:
        return lag1_autocorrelation(quantile_function(q, _ar1_uniforms(phi, eps, start)))

    target = float(np.clip(acf1, acf(-MAX_PHI), acf(MAX_PHI)))
    return bisect(acf, target, -MAX_PHI, MAX_PHI, steps)


def block_length(phi: float) -> int:
    """Block length for reordering a series with AR(1) ``phi`` without breaking its
    dependence: 20 correlation times ``1 / (1 - |phi|)`` (1 for independent values), so the
    autocorrelation left across a block's ends is ``|phi|^20/(1-|phi|)`` ~ 2e-9 of a block.

    >>> block_length(0.0), block_length(0.9), block_length(0.99)
    (1, 200, 2000)
    """
    a = abs(float(phi))
    return 1 if a == 0.0 else max(1, round(20.0 / (1.0 - min(a, MAX_PHI))))


def block_order(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    """A random order of ``0 .. n - 1`` that keeps blocks of :func:`block_length` together
    (a block permutation; a plain permutation for ``phi == 0``): a further stationary stream
    with the same marginal and, within blocks, the same dependence. Only block ends
    meet values from elsewhere (1 in ``block_length`` steps)."""
    b = block_length(phi)
    if b == 1:
        return rng.permutation(n)
    starts = np.arange(0, n, b)[rng.permutation((n + b - 1) // b)]
    return np.concatenate([np.arange(a, min(a + b, n)) for a in starts])


#: Features whose phase-standardised values have a lag-1 autocorrelation at least this
#: large (in absolute value) are whitened for the detectors.
WHITEN_MIN = 0.1


@nb.njit(cache=True, nogil=True)
def _arma_whiten(
    r: np.ndarray, phi: float, theta: float, scale: float, z_prev: float, a_prev: float
) -> tuple[np.ndarray, float, float]:  # pragma: no cover - compiled
    out = np.full(r.size, np.nan)
    for i in range(r.size):
        v = r[i]
        if not math.isfinite(v):
            continue
        if math.isnan(z_prev):
            out[i] = v  # no earlier value: the value itself (unconditional sd)
            a_prev = 0.0
        else:
            a = v - phi * z_prev + theta * a_prev
            out[i] = a / scale
            a_prev = a
        z_prev = v
    return out, z_prev, a_prev


def whiten(
    r: np.ndarray, phi: float, theta: float = 0.0, state: tuple[float, float] = (math.nan, 0.0)
) -> tuple[np.ndarray, tuple[float, float]]:
    """ARMA(1,1) innovations of a centred, unit-variance series in time order:
    ``a_t = r_t - phi r_(t-1) + theta a_(t-1)`` divided by their sd,
    ``sqrt((1 - phi^2) / (1 + theta^2 - 2 phi theta))`` (``theta`` 0: AR(1)). The first value
    with no earlier one is itself; a missing value (NaN) stays NaN and is skipped (its
    neighbours are treated as adjacent). ``state`` (the last value and innovation) carries
    a stream cut into batches: the same innovations however cut. Returns them and the new state.

    >>> e, state = whiten(np.array([1.0, np.nan, 2.0]), 0.5)
    >>> [round(v, 4) for v in e.tolist()], state
    ([1.0, nan, 1.7321], (2.0, 1.5))
    """
    r = np.ascontiguousarray(r, dtype=np.float64)
    scale = math.sqrt((1.0 - phi * phi) / (1.0 + theta * theta - 2.0 * phi * theta))
    out, z_prev, a_prev = _arma_whiten(r, float(phi), float(theta), scale, float(state[0]), float(state[1]))
    return out, (float(z_prev), float(a_prev))
