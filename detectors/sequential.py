"""Sequential tests against the reference: CUSUMs per feature, one numba call per batch.

Each test accumulates, value by value, the evidence that a feature no longer follows its
known pre-change (reference) distribution, and alarms when its statistic exceeds its
threshold ``h`` (Page, 1954); it then restarts at 0. Every test has a minimum meaningful
change: below it the statistic drifts down, so it stays quiet however long the stream.

Numeric features (:class:`NumericSequential`, on the clipped standardised value ``z`` the
change detectors see, and the raw value ``x``):

* ``cusum_mean``: the two-sided CUSUM ``S+ = max(0, S+ + d - k)``,
  ``S- = max(0, S- - d - k)`` of the deviation from the reference's mean ``mu0`` of ``z``,
  limited to ``HUBER`` sds and centred (Huber's robust CUSUM:
  ``d = clip(z - mu0, -HUBER, HUBER) - mu_h``, ``mu_h`` its reference mean, so a skewed
  feature's single large values do not page), with the allowance ``k = min_mean_shift``
  (reference sds); the statistic is ``max(S+, S-)``;
* ``cusum_scale``: two one-sided CUSUMs of the absolute deviation
  ``a = min(|z - mu0|, HUBER)`` against its reference mean ``a0``: up ``a - a0 (1 + m)``,
  down ``a0 (1 - m) - a``, ``m = min_scale_change``, or ``SCALE_REF_SE`` standard errors of
  ``a0`` when the reference is small (:func:`scale_allowance`; the mean absolute deviation
  is as efficient as the variance for normal data and far less heavy-tailed);
* ``cusum_shape``: an adaptive multinomial CUSUM (Lorden & Pollak, 2008) over the
  reference's quantile bins (``shape_bins`` of them between its minimum and maximum) and
  two tail bins beyond them, each of reference probability ``1 / (n_ref + 1)`` (the
  chance that a new value of a continuous distribution falls beyond the extreme of
  ``n_ref``): ``W = max(0, W + log(p_hat(b) / p0(b)) - penalty)`` where ``p_hat`` is the
  Dirichlet posterior predictive (prior ``SHAPE_PRIOR`` pseudo-values centred on ``p0``)
  of the bins of the values since the statistic was last 0, that value included. ``p_hat``
  depends only on past values, so each run is a likelihood-ratio martingale under the
  reference: a run reaches ``h`` with probability at most ``exp(-h)`` (Ville's
  inequality), whatever the distribution. ``penalty = min_shape_kl`` (nats per value);
  a value far beyond the reference's range is overwhelming evidence at once;
* ``cusum_missing``: the same adaptive CUSUM on the missing indicator of every event
  (``MISSING_PRIOR`` pseudo-events), ``p0`` the reference's missing share, the penalty
  the Kullback-Leibler divergence of a change of ``min_missing_change`` (the smaller of
  up and down).

Categorical features (:class:`CategoricalSequential`): both tests estimate the current
distribution from the feature's last ``category_window`` non-missing values (a ring; the
Dirichlet posterior predictive with the prior centred on the reference), an estimate of
past values only that, unlike a run's, survives the statistic's restarts, so evidence
keeps accumulating under a small change. ``cusum_categories``: ``W = max(0, W +
log(q(c) / p0(c)) - min_category_kl)`` over the reference's category codes; Ville's bound
holds as for the adaptive CUSUMs. ``cusum_unseen``: ``W = max(0, W + log(q(x) / b(x)))``
of the never-seen indicator, ``q`` the estimate's share clipped at ``UNSEEN_ALT x min_unseen_share``
and ``b`` the null share ``UNSEEN_NULL x min_unseen_share`` (at least ``1 / (n_ref + 1)``):
under any share up to ``b`` each term has expectation at most 1 (a supermartingale), so a
run reaches ``h`` with probability at most ``exp(-h)``; values the reference itself yields
almost never alarm.

Decisions per feature and test are episodes: an alarm opens one (a ``drift``
:class:`SequentialHit` whose ``values_since`` counts the values since the alarming run
started, i.e. since its statistic was last 0: the change point); alarms while it is open
say nothing new; it is ``resolved`` after ``max(resolve_min_count, 2 x the run length of
its last alarm)`` values without one. The decisions do not depend on how the stream is
cut into batches, and :meth:`NumericSequential.state_dict` /
:meth:`~NumericSequential.load_state` continue exactly.

>>> import numpy as np
>>> from driftsentinel.schemas.config import SequentialConfig
>>> rng = np.random.default_rng(1)
>>> ref = rng.normal(size=1000)
>>> seq = NumericSequential(SequentialConfig(), resolve_min_count=2000)
>>> seq.add_features(1)
>>> seq.set_reference(0, ref, np.sort(ref), ref.size, 0.0, -4.0, 4.0)
>>> x = np.r_[rng.normal(size=500), rng.normal(size=500) * 2.0].reshape(-1, 1)
>>> hits = seq.update(x, np.clip(x, -4.0, 4.0), np.zeros(1, dtype=np.int64))
>>> sorted((h.test, h.status, 500 <= h.row < 800) for h in hits)
[('cusum_scale', 'drift', True), ('cusum_shape', 'drift', True)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numba as nb
import numpy as np

from driftsentinel.detectors._distributions import bisect, grid_cdf
from driftsentinel.detectors._state import STATE_VERSION, as_array, check_kind
from driftsentinel.schemas.config import SequentialConfig

__all__ = [
    "CATEGORICAL_TESTS",
    "NUMERIC_TESTS",
    "CategoricalSequential",
    "NumericSequential",
    "SequentialHit",
    "bernoulli_kl",
    "check_rings",
    "grid_midpoints",
    "lundberg_exponent",
    "mean_tail_factor",
    "scale_allowance",
    "shape_reference",
    "unseen_p0",
    "unseen_null",
]

NUMERIC_TESTS = ("cusum_mean", "cusum_scale", "cusum_shape", "cusum_missing")
CATEGORICAL_TESTS = ("cusum_categories", "cusum_unseen")
#: Deviations from the reference mean count up to this many reference sds in the mean and
#: scale CUSUMs (Huber, 1964): measured on the quality benchmark's distributions, a skewed
#: feature's (lognormal, exponential) rare large values otherwise dominate the false alarms.
HUBER = 3.0
#: ``cusum_mean``'s threshold grows at most this many times for a feature with heavier tails
#: than normal data's (:func:`mean_tail_factor`).
MEAN_TAIL_MAX = 4.0
#: ``cusum_scale``'s allowance covers this many standard errors of the reference's mean
#: absolute deviation (:func:`scale_allowance`): measured on the quality benchmark's
#: distributions with 1,000-value warm-up references, an allowance of 0.05 gave 5-20 false
#: alarms per million values even at h 100; 0.1 (4 standard errors at 1,000 values) none
#: from h 60 on.
SCALE_REF_SE = 4.0
#: The statistic each test's signals name (``DriftSignal.statistic_name``).
STATISTIC_NAME = "cusum_statistic"
#: Pseudo-values of the Dirichlet prior (centred on the reference) of the adaptive
#: multinomial CUSUMs: few, so a new distribution is learnt from a handful of values
#: (a value beyond the reference's range alarms within about 5 values at h = 16).
SHAPE_PRIOR = 4.0
#: Pseudo-events of the Beta prior of the adaptive Bernoulli CUSUMs (missing, unseen).
MISSING_PRIOR = 2.0
#: ``cusum_unseen``'s null and least alternative, as fractions of ``min_unseen_share``: a run's
#: expected step is negative for any share below ``(ALT - NULL) m / ln(ALT / NULL)`` = 1.01 m,
#: so a share of never-seen values under the minimum meaningful change stays quiet however
#: long the stream (with 0.4 and 1.0, shares from 0.65 m up alarmed: 0.9 % at m = 1 %).
UNSEEN_NULL = 0.7
UNSEEN_ALT = 1.4
_DRIFT, _RESOLVED = 0, 1
_CONFIG_THRESHOLD = {
    "cusum_mean": "mean_threshold",
    "cusum_scale": "scale_threshold",
    "cusum_shape": "shape_threshold",
    "cusum_missing": "missing_threshold",
    "cusum_categories": "categories_threshold",
    "cusum_unseen": "unseen_threshold",
}


@dataclass(frozen=True)
class SequentialHit:
    """One decision of a sequential test about one feature."""

    row: int  #: batch row of the decision
    feature: int  #: column index in the matrix given to update()
    test: str  #: one of NUMERIC_TESTS / CATEGORICAL_TESTS
    status: Literal["drift", "resolved"]
    statistic: float  #: the CUSUM statistic at the decision
    threshold: float  #: its threshold h
    values_since: int | None  #: drift: values since the alarming run started (the change point)


def bernoulli_kl(q: float, p: float) -> float:
    """``KL(Bernoulli(q) || Bernoulli(p))`` in nats.

    >>> round(bernoulli_kl(0.03, 0.01), 4)
    0.0132
    """
    out = 0.0
    if q > 0:
        out += q * math.log(q / p)
    if q < 1:
        out += (1 - q) * math.log((1 - q) / (1 - p))
    return out


def missing_p0(missing: float, events: float) -> float:
    """The reference missing share with half a pseudo-event each way (never 0 or 1):
    ``(missing + 0.5) / (events + 1)``."""
    return (missing + 0.5) / (events + 1.0)


def unseen_p0(n_ref: int) -> float:
    """The reference rate of values never seen in training: ``1 / (n_ref + 1)``."""
    return 1.0 / (max(int(n_ref), 1) + 1.0)


def unseen_null(n_ref: int, share: float) -> tuple[float, float]:
    """``cusum_unseen``'s null share ``b`` and the least share ``s`` its estimate may take:
    ``b = max(UNSEEN_NULL * share, 1 / (n_ref + 1))`` (any share up to ``b`` is no change),
    ``s = UNSEEN_ALT / UNSEEN_NULL * b`` (the alternative: at least twice the null, so the
    break-even share, ``(s - b) / ln(s / b)``, is the minimum meaningful change).

    >>> [round(v, 6) for v in unseen_null(50_000, 0.01)]
    [0.007, 0.014]
    """
    b = min(max(UNSEEN_NULL * share, unseen_p0(n_ref)), 0.5)
    return b, min(UNSEEN_ALT / UNSEEN_NULL * b, 0.999)


def change_penalty(p0: float, change: float) -> float:
    """The per-event penalty of an adaptive Bernoulli CUSUM: the divergence of a change of
    the rate by ``change`` (absolute), the smaller of the rise and the fall (a side that
    cannot move that far is left out).

    >>> round(change_penalty(0.01, 0.02), 4)
    0.0132
    """
    kls = [bernoulli_kl(q, p0) for q in (p0 + change, p0 - change) if 0.0 <= q <= 1.0]
    return min(kls) if kls else bernoulli_kl(1.0 if p0 < 0.5 else 0.0, p0)


def _cdf_below(grid: np.ndarray, e: float) -> float:
    """``P(X < e)`` for the piecewise-linear quantile function through ``grid`` (at 0, 1/q, ..., 1)."""
    return float(grid_cdf(grid, e, False))


def shape_reference(x_quantiles: np.ndarray, bins: int, n_ref: int) -> tuple[np.ndarray, np.ndarray]:
    """The bins of ``cusum_shape``: (edges, p0).

    ``edges`` are the distinct reference quantiles at ``0, 1/bins, ..., 1`` (grid values,
    so ties of a discrete feature stay whole); bin 0 is below the first edge (the
    minimum), the interior bins are ``[e_i, e_{i+1})`` and then the last edge alone (the
    maximum: a discrete feature's largest value), and the last bin is above it. ``p0``
    gives each tail ``1 / (n_ref + 1)``, each other bin its reference mass (from the
    quantile function, floored at half a tail's).

    >>> e, p = shape_reference(np.r_[np.zeros(800), np.ones(200)], 10, 1000)
    >>> e.tolist(), np.round(p, 3).tolist()
    ([0.0, 1.0], [0.001, 0.799, 0.199, 0.001])
    """
    grid = np.asarray(x_quantiles, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 2 or not np.all(np.isfinite(grid)) or np.any(np.diff(grid) < 0):
        raise ValueError("x_quantiles: expected at least 2 finite non-decreasing reference quantiles")
    q = grid.size - 1
    edges = np.unique(grid[np.round(q * np.arange(bins + 1) / bins).astype(np.int64)])
    cuts = np.r_[0.0, [_cdf_below(grid, float(e)) for e in edges[1:]], 1.0]
    interior = np.diff(cuts)
    tail = 1.0 / (max(int(n_ref), 1) + 1.0)
    interior = np.maximum(interior, tail / 2.0)
    interior = interior / interior.sum() * (1.0 - 2.0 * tail)
    return edges, np.r_[tail, interior, tail]


def scale_allowance(min_scale_change: float, a_ref: np.ndarray, n_ref: int) -> float:
    """``cusum_scale``'s allowance ``m`` of a feature: ``min_scale_change``, or
    ``SCALE_REF_SE`` standard errors of the reference's mean absolute deviation ``a0``
    (relative: ``std(a) / (mean(a) sqrt(n_ref))``) when that is larger. A reference of few
    values (a 1,000-value warm-up: about 2.4 % for normal data) misjudges ``a0`` by a
    fraction the allowance must cover, or the CUSUM drifts up on unchanged data.

    >>> a = np.abs(np.random.default_rng(0).normal(size=100_000))
    >>> scale_allowance(0.05, a, 50_000), round(scale_allowance(0.05, a, 1000), 3)
    (0.05, 0.096)
    """
    a = np.asarray(a_ref, dtype=np.float64)
    mean = float(a.mean()) if a.size else 0.0
    if not mean > 0:
        return float(min_scale_change)
    rel_se = float(a.std()) / (mean * math.sqrt(max(int(n_ref), 1)))
    return float(min(max(min_scale_change, SCALE_REF_SE * rel_se), 0.9))


def lundberg_exponent(steps: np.ndarray) -> float:
    """The adjustment coefficient of a random walk with these (equally likely) steps: the
    ``theta > 0`` with ``mean(exp(theta * steps)) = 1`` (``inf`` when no step is positive:
    the walk cannot rise). A CUSUM of such steps reaches ``h`` from 0 with probability at
    most ``exp(-theta h)`` (Lundberg's inequality); for ``N(-k, 1)`` steps ``theta = 2 k``.
    The steps' mean must be negative.

    >>> round(lundberg_exponent(np.random.default_rng(0).normal(-0.5, 1.0, 200_000)), 2)
    1.0
    >>> lundberg_exponent(np.array([-1.0, -0.5]))
    inf
    """
    x = np.asarray(steps, dtype=np.float64)
    top = float(x.max())
    if top <= 0.0:
        return math.inf

    def log_mgf(theta: float) -> float:  # log mean exp(theta x), computed without overflow
        return theta * top + math.log(float(np.mean(np.exp(theta * (x - top)))))

    lo, hi = 0.0, 1.0
    while log_mgf(hi) < 0.0 and hi < 1e6:
        lo, hi = hi, hi * 2.0
    return bisect(log_mgf, 0.0, lo, hi, 60)  # log_mgf is convex: negative on (0, theta), positive beyond


def mean_tail_factor(d_ref: np.ndarray, k: float) -> float:
    """What ``cusum_mean``'s threshold is multiplied by for a feature whose limited
    deviations ``d_ref`` (centred, reference values) are those of the reference: ``2 k /
    theta``, ``theta`` the smaller Lundberg exponent of the two one-sided CUSUMs' steps
    ``d - k`` and ``-d - k`` (:func:`lundberg_exponent`), between 1 and ``MEAN_TAIL_MAX``.
    For normal data ``theta = 2 k``: the configured threshold (a profile's quantile grid
    gives 1.06-1.09: the midpoints of its outermost slices lean on its minimum and maximum,
    which reads the tails a little heavy, the safe side). A skewed, heavy-tailed or
    discrete feature's walk rises further in its rare large steps (a smaller ``theta``), so
    its threshold grows until its false-alarm rate is a normal feature's at the
    configured threshold.

    >>> rng = np.random.default_rng(0)
    >>> round(mean_tail_factor(rng.normal(size=100_000), 0.5), 1)  # normal: 1 up to sampling noise
    1.0
    >>> ind = np.where(rng.random(100_000) < 0.1, 3.0, -1 / 3)  # a 0/1 indicator, p = 0.1
    >>> round(mean_tail_factor(ind - ind.mean(), 0.5), 2)
    1.64
    """
    d = np.asarray(d_ref, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return 1.0
    theta = min(lundberg_exponent(d - k), lundberg_exponent(-d - k))
    return float(min(max(2.0 * k / theta, 1.0), MEAN_TAIL_MAX))


def grid_midpoints(x_quantiles: np.ndarray) -> np.ndarray:
    """The reference's values as a quantile grid gives them: the quantile function at the
    middle of each of its ``q`` slices (each holding ``1/q`` of the mass), so the mean and
    mean square of a function of them estimate the reference's without the weight of
    its minimum and maximum (a ``z_ref`` for :meth:`NumericSequential.set_reference`).

    >>> grid_midpoints(np.array([0.0, 1.0, 3.0])).tolist()
    [0.5, 2.0]
    """
    grid = np.asarray(x_quantiles, dtype=np.float64)
    q = grid.size - 1
    return np.interp((np.arange(q) + 0.5) / q, np.linspace(0.0, 1.0, q + 1), grid)


# ---------------------------------------------------------------------------- kernels
@nb.njit(cache=True, nogil=True, inline="always")
def _push(hits, stats, k, row, j, t, status, since, stat, thr):  # pragma: no cover - numba
    """Hit number ``k`` into the buffers (sized by :func:`_hit_capacity`); returns ``k + 1``."""
    hits[k, 0] = row
    hits[k, 1] = j
    hits[k, 2] = t
    hits[k, 3] = status
    hits[k, 4] = since
    stats[k, 0] = stat
    stats[k, 1] = thr
    return k + 1


@nb.njit(cache=True, nogil=True, inline="always")
def _episode(alarm, since_val, active, quiet, last_run, resolve_min):  # pragma: no cover - numba
    """One value of a test: open, keep or resolve its episode. Returns (code, active, quiet,
    last_run), code 1 + _DRIFT where an episode opens, 1 + _RESOLVED where it ends, else 0."""
    if alarm:
        return (0 if active else 1 + _DRIFT), True, 0, since_val
    quiet += 1
    if active and quiet >= max(resolve_min, 2 * last_run):
        return 1 + _RESOLVED, False, quiet, last_run
    return 0, active, quiet, last_run


@nb.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _adaptive(b, w, m, zero, sb, n, c_b, p_b, logp_b, same_b, other_b, prior, pen):  # pragma: no cover - numba
    """One value in bin ``b`` of an adaptive multinomial CUSUM, on scalars only (an array
    argument would cost reference counting per value): (statistic, run size, run start,
    seed bin, grow). ``m`` values since the statistic was last 0, that value included; ``c_b``
    how many of them fell in bin ``b``. While the run is that one value (``sb >= 0``, its
    bin) the counts are not written and the predictive's log is ``same_b`` / ``other_b``
    (:func:`_seed_logs`, the same arithmetic): the common case under the reference costs no
    log and no count reset. ``grow``: -2 the run restarts at this value; else the caller
    adds it to the counts, after writing the seed bin ``grow`` first when ``grow >= 0``."""
    if sb >= 0:
        lph = same_b if b == sb else other_b
    else:
        lph = math.log((c_b + prior * p_b) / (m + prior))
    w = w + lph - logp_b - pen
    if w <= 0.0:
        return 0.0, 1.0, n, b, -2
    return w, m + 1.0, zero, -1, sb


@nb.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _seed_logs(p0, nbins, prior, l_same, l_other):  # pragma: no cover - numba
    """The predictive's log in a run of one value: in its bin, in another bin."""
    for c in range(nbins):
        l_same[c] = math.log((1.0 + prior * p0[c]) / (1.0 + prior))
        l_other[c] = math.log((0.0 + prior * p0[c]) / (1.0 + prior))


@nb.njit(cache=True, nogil=True, inline="always")
def _seed(cnt, b):  # pragma: no cover - numba
    """A run's counts holding its first value, in bin ``b``."""
    for c in range(cnt.size):
        cnt[c] = 0.0
    cnt[b] = 1.0


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _numeric_kernel(
    X,
    Z,
    first_row,
    on,
    ready,
    h,
    k_mean,
    tail_mean,
    m_scale,
    shape_pen,
    miss_pen,
    mu0,
    mu_h,
    a_ref,
    edges,
    n_edges,
    logp0,
    p0,
    logm0,
    m0,
    n_val,
    n_evt,
    s_up,
    s_dn,
    zm_up,
    zm_dn,
    q_up,
    q_dn,
    zq_up,
    zq_dn,
    w_sh,
    cnt_sh,
    m_sh,
    z_sh,
    b_sh,
    w_mi,
    cnt_mi,
    m_mi,
    z_mi,
    b_mi,
    active,
    quiet,
    last_run,
    n_alarm,
    resolve_min,
    hits,
    stats,
):  # pragma: no cover - numba
    # X, Z: [F, rows] (feature-major). Per feature, its state lives in local variables for
    # the whole batch; the hits come out as (row, feature, test, status, since) + (stat, h).
    F, rows = X.shape  # feature-major: each feature's values are contiguous
    k = 0
    ls_sh, lo_sh = np.empty(edges.shape[1] + 2), np.empty(edges.shape[1] + 2)
    ls_mi, lo_mi = np.empty(2), np.empty(2)
    for j in range(F):
        if not ready[j]:
            continue
        ne = n_edges[j]
        e = edges[j]
        lp, pp, cs = logp0[j], p0[j], cnt_sh[j]
        lm, pm, cm = logm0[j], m0[j], cnt_mi[j]
        h0, h1, h2, h3 = h[j, 0] * tail_mean[j], h[j, 1], h[j, 2], h[j, 3]
        mu, muh, mpen = mu0[j], mu_h[j], miss_pen[j]
        au, ad = a_ref[j] * (1.0 + m_scale[j]), a_ref[j] * (1.0 - m_scale[j])
        nv, nev = n_val[j], n_evt[j]
        su, sd, zu, zd = s_up[j], s_dn[j], zm_up[j], zm_dn[j]
        qu, qd, zqu, zqd = q_up[j], q_dn[j], zq_up[j], zq_dn[j]
        wsh, msh, zsh, bsh = w_sh[j], m_sh[j], z_sh[j], b_sh[j]
        wmi, mmi, zmi, bmi = w_mi[j], m_mi[j], z_mi[j], b_mi[j]
        _seed_logs(pp, ne + 2, SHAPE_PRIOR, ls_sh, lo_sh)
        _seed_logs(pm, 2, MISSING_PRIOR, ls_mi, lo_mi)
        a0, a1, a2, a3 = active[j, 0], active[j, 1], active[j, 2], active[j, 3]
        u0, u1, u2, u3 = quiet[j, 0], quiet[j, 1], quiet[j, 2], quiet[j, 3]
        r0, r1, r2, r3 = last_run[j, 0], last_run[j, 1], last_run[j, 2], last_run[j, 3]
        n0, n1, n2, n3 = n_alarm[j, 0], n_alarm[j, 1], n_alarm[j, 2], n_alarm[j, 3]
        for i in range(first_row[j], rows):
            x = X[j, i]
            present = x == x
            if on[3]:  # ---- missing: every event
                nev += 1
                b = 0 if present else 1
                wmi, mmi, zmi, bmi, grow = _adaptive(
                    b, wmi, mmi, zmi, bmi, nev, cm[b], pm[b], lm[b], ls_mi[b], lo_mi[b], MISSING_PRIOR, mpen
                )
                if grow != -2:
                    if grow >= 0:
                        _seed(cm, grow)
                    cm[b] += 1.0
                alarm = wmi > h3
                since_val = nev - zmi
                stat = wmi
                if alarm:
                    n3 += 1
                    wmi, mmi, zmi, bmi = 0.0, 1.0, nev, b
                code, a3, u3, r3 = _episode(alarm, since_val, a3, u3, r3, resolve_min)
                if code:
                    k = _push(hits, stats, k, i, j, 3, code - 1, since_val, stat, h3)
            if not present:
                continue
            z = Z[j, i]
            if z != z:
                continue
            nv += 1
            if on[0]:  # ---- mean
                d = min(max(z - mu, -HUBER), HUBER) - muh
                su = max(0.0, su + (d - k_mean))
                sd = max(0.0, sd + (-d - k_mean))
                if su == 0.0:
                    zu = nv
                if sd == 0.0:
                    zd = nv
                stat = max(su, sd)
                alarm = stat > h0
                since_val = nv - (zu if su >= sd else zd)
                if alarm:
                    n0 += 1
                    su, sd, zu, zd = 0.0, 0.0, nv, nv
                code, a0, u0, r0 = _episode(alarm, since_val, a0, u0, r0, resolve_min)
                if code:
                    k = _push(hits, stats, k, i, j, 0, code - 1, since_val, stat, h0)
            if on[1]:  # ---- scale
                a = min(abs(z - mu), HUBER)
                qu = max(0.0, qu + (a - au))
                qd = max(0.0, qd + (ad - a))
                if qu == 0.0:
                    zqu = nv
                if qd == 0.0:
                    zqd = nv
                stat = max(qu, qd)
                alarm = stat > h1
                since_val = nv - (zqu if qu >= qd else zqd)
                if alarm:
                    n1 += 1
                    qu, qd, zqu, zqd = 0.0, 0.0, nv, nv
                code, a1, u1, r1 = _episode(alarm, since_val, a1, u1, r1, resolve_min)
                if code:
                    k = _push(hits, stats, k, i, j, 1, code - 1, since_val, stat, h1)
            if on[2]:  # ---- shape
                if x < e[0]:
                    b = 0
                elif x > e[ne - 1]:
                    b = ne + 1
                else:
                    b = 1
                    for c in range(1, ne):
                        if x >= e[c]:
                            b = c + 1
                wsh, msh, zsh, bsh, grow = _adaptive(
                    b, wsh, msh, zsh, bsh, nv, cs[b], pp[b], lp[b], ls_sh[b], lo_sh[b], SHAPE_PRIOR, shape_pen
                )
                if grow != -2:
                    if grow >= 0:
                        _seed(cs, grow)
                    cs[b] += 1.0
                alarm = wsh > h2
                since_val = nv - zsh
                stat = wsh
                if alarm:
                    n2 += 1
                    wsh, msh, zsh, bsh = 0.0, 1.0, nv, b
                code, a2, u2, r2 = _episode(alarm, since_val, a2, u2, r2, resolve_min)
                if code:
                    k = _push(hits, stats, k, i, j, 2, code - 1, since_val, stat, h2)
        n_val[j], n_evt[j] = nv, nev
        s_up[j], s_dn[j], zm_up[j], zm_dn[j] = su, sd, zu, zd
        q_up[j], q_dn[j], zq_up[j], zq_dn[j] = qu, qd, zqu, zqd
        w_sh[j], m_sh[j], z_sh[j], b_sh[j] = wsh, msh, zsh, bsh
        w_mi[j], m_mi[j], z_mi[j], b_mi[j] = wmi, mmi, zmi, bmi
        active[j, 0], active[j, 1], active[j, 2], active[j, 3] = a0, a1, a2, a3
        quiet[j, 0], quiet[j, 1], quiet[j, 2], quiet[j, 3] = u0, u1, u2, u3
        last_run[j, 0], last_run[j, 1], last_run[j, 2], last_run[j, 3] = r0, r1, r2, r3
        n_alarm[j, 0], n_alarm[j, 1], n_alarm[j, 2], n_alarm[j, 3] = n0, n1, n2, n3
    return k


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _categorical_kernel(
    C,
    on,
    h,
    cat_pen,
    unseen_min,
    n_cats,
    logp0,
    p0,
    logu0,
    u0,
    n_val,
    w_c,
    z_c,
    w_u,
    z_u,
    ring,
    pos,
    fill,
    cnt_c,
    cnt_u,
    active,
    quiet,
    last_run,
    n_alarm,
    resolve_min,
    hits,
    stats,
):  # pragma: no cover - numba
    # C: [F, rows] (feature-major). The post-change estimate of both tests is the Dirichlet
    # posterior predictive of the last ``ring.shape[1]`` non-missing values (codes; -2
    # never seen in training): past values only, and it does not restart with the statistic.
    F, rows = C.shape
    W = ring.shape[1]
    k = 0
    for j in range(F):
        K = n_cats[j]
        lp, pp, cc, rg = logp0[j], p0[j], cnt_c[j], ring[j]
        lu0, lu1, pu1 = logu0[j, 0], logu0[j, 1], u0[j, 1]
        cu0, cu1 = cnt_u[j, 0], cnt_u[j, 1]
        h0, h1, umin = h[j, 0], h[j, 1], unseen_min[j]
        nv, ps, fl = n_val[j], pos[j], fill[j]
        wc, zc, wu, zu = w_c[j], z_c[j], w_u[j], z_u[j]
        a0, a1, u0_, u1, r0, r1 = active[j, 0], active[j, 1], quiet[j, 0], quiet[j, 1], last_run[j, 0], last_run[j, 1]
        n0, n1 = n_alarm[j, 0], n_alarm[j, 1]
        for i in range(rows):
            c = C[j, i]
            if c == -1 or c >= K or c < -2:
                continue  # missing (or not a code of this feature)
            nv += 1
            if on[1]:  # ---- unseen: every non-missing value
                q1 = max((cu1 + MISSING_PRIOR * pu1) / (cu0 + cu1 + MISSING_PRIOR), umin)
                if c == -2:
                    lr = math.log(q1) - lu1
                else:
                    lr = math.log(1.0 - q1) - lu0
                wu = wu + lr
                if wu <= 0.0:
                    wu, zu = 0.0, nv
                alarm = wu > h1
                since_val = nv - zu
                stat = wu
                if alarm:
                    n1 += 1
                    wu, zu = 0.0, nv
                code, a1, u1, r1 = _episode(alarm, since_val, a1, u1, r1, resolve_min)
                if code:
                    k = _push(hits, stats, k, i, j, 1, code - 1, since_val, stat, h1)
            if on[0] and c >= 0:  # ---- categories: the values seen in training
                lr = math.log((cc[c] + SHAPE_PRIOR * pp[c]) / (cu0 + SHAPE_PRIOR)) - lp[c]
                wc = wc + lr - cat_pen
                if wc <= 0.0:
                    wc, zc = 0.0, nv
                alarm = wc > h0
                since_val = nv - zc
                stat = wc
                if alarm:
                    n0 += 1
                    wc, zc = 0.0, nv
                code, a0, u0_, r0 = _episode(alarm, since_val, a0, u0_, r0, resolve_min)
                if code:
                    k = _push(hits, stats, k, i, j, 0, code - 1, since_val, stat, h0)
            # ---- the value into the estimate's ring (the oldest out when full)
            if fl == W:
                old = rg[ps]
                if old == -2:
                    cu1 -= 1.0
                else:
                    cu0 -= 1.0
                    cc[old] -= 1.0
            else:
                fl += 1
            rg[ps] = c
            ps = ps + 1 if ps + 1 < W else 0
            if c == -2:
                cu1 += 1.0
            else:
                cu0 += 1.0
                cc[c] += 1.0
        n_val[j], pos[j], fill[j] = nv, ps, fl
        w_c[j], z_c[j], w_u[j], z_u[j] = wc, zc, wu, zu
        cnt_u[j, 0], cnt_u[j, 1] = cu0, cu1
        active[j, 0], active[j, 1], quiet[j, 0], quiet[j, 1], last_run[j, 0], last_run[j, 1] = a0, a1, u0_, u1, r0, r1
        n_alarm[j, 0], n_alarm[j, 1] = n0, n1
    return k


def _hit_capacity(n_features: int, n_tests: int, rows: int, resolve_min: int) -> int:
    """The most hits a batch can have: per feature and test, an episode opens at most once,
    plus once after each resolution, which takes at least ``resolve_min`` values."""
    return n_features * n_tests * (2 + 2 * (rows // max(resolve_min, 1)))


def _buffers(n_features: int, n_tests: int, rows: int, resolve_min: int) -> tuple[np.ndarray, np.ndarray]:
    cap = _hit_capacity(n_features, n_tests, rows, resolve_min)
    return np.empty((cap, 5), np.int64), np.empty((cap, 2))


def _to_hits(hits: np.ndarray, stats: np.ndarray, names: tuple[str, ...]) -> list[SequentialHit]:
    """The kernel's hits in stream order (row, feature, test)."""
    order = np.lexsort((hits[:, 2], hits[:, 1], hits[:, 0]))
    return [
        SequentialHit(
            row=int(hits[o, 0]),
            feature=int(hits[o, 1]),
            test=names[int(hits[o, 2])],
            status="drift" if hits[o, 3] == _DRIFT else "resolved",
            statistic=float(stats[o, 0]),
            threshold=float(stats[o, 1]),
            values_since=int(hits[o, 4]) if hits[o, 3] == _DRIFT else None,
        )
        for o in order
    ]


def _check_thresholds(names: tuple[str, ...], h: dict[str, float]) -> dict[int, float]:
    out: dict[int, float] = {}
    for name, value in h.items():
        if name not in names:
            raise ValueError(f"unknown sequential test {name!r} (expected one of {', '.join(names)})")
        v = float(value)
        if not v > 0 or not math.isfinite(v):
            raise ValueError(f"{name}: the threshold must be a finite number > 0, got {value!r}")
        out[names.index(name)] = v
    return out


class _Tests:
    """What both classes share: the episodes, thresholds and state plumbing."""

    _names: tuple[str, ...]
    _kind: str
    _fields: tuple[str, ...]  # per-feature state arrays (leading dimension: features)
    _h: np.ndarray  # [features, tests] thresholds
    _active: np.ndarray  # [features, tests] open drift episodes
    _n_alarm: np.ndarray  # [features, tests] alarms so far

    def __init__(self, config: SequentialConfig, resolve_min_count: int) -> None:
        self.config = config
        self.resolve_min_count = int(resolve_min_count)
        self._on = np.array([name in config.tests for name in self._names], dtype=np.bool_)
        self._default_h = np.array([getattr(config, _CONFIG_THRESHOLD[n]) for n in self._names])

    @property
    def n_features(self) -> int:
        return int(self._h.shape[0])

    def set_thresholds(self, j: int, **h: float) -> None:
        """Set the thresholds of feature ``j`` by test name (e.g. ``cusum_mean=18.0``); the
        statistics are kept. An unknown name or a value that is not > 0 raises ``ValueError``
        and changes nothing."""
        if not 0 <= int(j) < self.n_features:
            raise ValueError(f"feature {j} out of range [0, {self.n_features})")
        for t, v in _check_thresholds(self._names, h).items():
            self._h[int(j), t] = v

    def thresholds(self, j: int) -> dict[str, float]:
        """Feature ``j``'s thresholds by test name."""
        return {name: float(self._h[int(j), t]) for t, name in enumerate(self._names)}

    @property
    def n_alarms(self) -> dict[str, np.ndarray]:
        """Per test, the alarms of every feature so far (an open episode's included)."""
        return {name: self._n_alarm[:, t].copy() for t, name in enumerate(self._names)}

    @property
    def active(self) -> dict[str, np.ndarray]:
        """Per test, the features with an open drift episode."""
        return {name: self._active[:, t].copy() for t, name in enumerate(self._names)}

    def _grow(self, n: int, widths: dict[str, int], fills: dict[str, float]) -> None:
        for name in self._fields:
            arr = getattr(self, name)
            shape = (n, *arr.shape[1:]) if name not in widths else (n, widths[name])
            setattr(self, name, np.concatenate([arr, np.full(shape, fills.get(name, 0), dtype=arr.dtype)]))

    def _state(self) -> dict[str, Any]:
        return {
            "kind": self._kind,
            "version": STATE_VERSION,
            "n_features": self.n_features,
            **{name.lstrip("_"): getattr(self, name).copy() for name in self._fields},
        }

    def _load(self, state: dict[str, Any]) -> None:
        check_kind(state, self._kind)
        F = int(state["n_features"])
        loaded = {}
        for name in self._fields:
            arr = getattr(self, name)
            if name.lstrip("_") not in state:
                raise ValueError(f"sequential state: no field {name.lstrip('_')!r} (written by another version)")
            value = np.array(state[name.lstrip("_")], dtype=arr.dtype)
            if F == 0 and value.size == 0:
                value = value.reshape(0, *arr.shape[1:])
            if value.ndim != arr.ndim or value.shape[0] != F:
                raise ValueError(f"sequential state field {name.lstrip('_')!r} has shape {value.shape}")
            loaded[name] = as_array(value, arr.dtype, (F, *value.shape[1:]))
        self._check_loaded(loaded)
        for name, value in loaded.items():
            setattr(self, name, np.ascontiguousarray(value))

    def _check_loaded(self, loaded: dict[str, np.ndarray]) -> None:
        """Raise ``ValueError`` unless ``loaded`` can drive the kernel safely (the indices it
        uses stay inside their arrays): a checkpoint is untrusted input."""


class NumericSequential(_Tests):
    """``cusum_mean``, ``cusum_scale``, ``cusum_shape`` and ``cusum_missing`` of every
    numeric feature of a model. A feature is inert until :meth:`set_reference`."""

    _names = NUMERIC_TESTS
    _kind = "sequential_numeric"
    _fields = (
        "_ready", "_h", "_tail_mean", "_mu0", "_mu_h", "_a0", "_m_scale", "_edges", "_n_edges", "_logp0", "_p0",
        "_logm0", "_m0", "_miss_pen",
        "_n_val", "_n_evt", "_s_up", "_s_dn", "_zm_up", "_zm_dn", "_q_up", "_q_dn", "_zq_up", "_zq_dn",
        "_w_sh", "_cnt_sh", "_m_sh", "_z_sh", "_b_sh", "_w_mi", "_cnt_mi", "_m_mi", "_z_mi", "_b_mi",
        "_active", "_quiet", "_last_run", "_n_alarm",
    )  # fmt: skip

    #: the statistics and runs, back to 0 when a reference is set (episodes are kept)
    _RUN_STATE = (
        "_n_val", "_n_evt", "_s_up", "_s_dn", "_zm_up", "_zm_dn", "_q_up", "_q_dn", "_zq_up", "_zq_dn",
        "_w_sh", "_cnt_sh", "_m_sh", "_z_sh", "_w_mi", "_cnt_mi", "_m_mi", "_z_mi",
    )  # fmt: skip
    #: back to -1 (counts written) when a reference is set
    _SEED_STATE = ("_b_sh", "_b_mi")

    def __init__(self, config: SequentialConfig, resolve_min_count: int) -> None:
        super().__init__(config, resolve_min_count)
        nb_ = config.shape_bins + 3  # the tails, the bins between the edges, the largest edge
        f, i, b = np.float64, np.int64, np.bool_
        self._ready = np.zeros(0, b)
        self._h = np.zeros((0, 4), f)
        self._tail_mean = np.ones(0, f)
        self._mu0, self._mu_h, self._a0 = np.zeros(0, f), np.zeros(0, f), np.ones(0, f)
        self._m_scale = np.full(0, config.min_scale_change, f)
        self._edges, self._n_edges = np.zeros((0, config.shape_bins + 1), f), np.zeros(0, i)
        self._logp0, self._p0 = np.zeros((0, nb_), f), np.zeros((0, nb_), f)
        self._logm0, self._m0, self._miss_pen = np.zeros((0, 2), f), np.zeros((0, 2), f), np.zeros(0, f)
        self._n_val, self._n_evt = np.zeros(0, i), np.zeros(0, i)
        self._s_up, self._s_dn, self._zm_up, self._zm_dn = (
            np.zeros(0, f),
            np.zeros(0, f),
            np.zeros(0, i),
            np.zeros(0, i),
        )
        self._q_up, self._q_dn, self._zq_up, self._zq_dn = (
            np.zeros(0, f),
            np.zeros(0, f),
            np.zeros(0, i),
            np.zeros(0, i),
        )
        self._w_sh, self._cnt_sh, self._m_sh, self._z_sh = (
            np.zeros(0, f),
            np.zeros((0, nb_), f),
            np.zeros(0, f),
            np.zeros(0, i),
        )
        self._b_sh, self._b_mi = np.full(0, -1, i), np.full(0, -1, i)
        self._w_mi, self._cnt_mi, self._m_mi, self._z_mi = (
            np.zeros(0, f),
            np.zeros((0, 2), f),
            np.zeros(0, f),
            np.zeros(0, i),
        )
        self._active, self._quiet, self._last_run = (np.zeros((0, 4), b), np.zeros((0, 4), i), np.zeros((0, 4), i))
        self._n_alarm = np.zeros((0, 4), i)

    def add_features(self, n: int) -> None:
        """Append ``n`` inert features (the configured default thresholds)."""
        F = self.n_features + int(n)
        fills = {"_tail_mean": 1.0, "_a0": 1.0, "_m_scale": self.config.min_scale_change, "_b_sh": -1, "_b_mi": -1}
        self._grow(int(n), {}, fills)
        self._h[F - int(n) :] = self._default_h

    def set_reference(
        self,
        j: int,
        z_ref: np.ndarray,
        x_quantiles: np.ndarray,
        n_ref: int,
        missing_p0: float,
        clip_lo: float,
        clip_hi: float,
    ) -> None:
        """Feature ``j``'s reference; its tests start from 0 with the next value.

        ``z_ref``: standardised reference values (the warm-up's, or the profile's quantile
        grid standardised), clipped here to ``[clip_lo, clip_hi]`` as the stream's are;
        their mean is ``mu0``, and the means of the deviation from it limited to ``HUBER``
        and of its absolute value are ``mu_h`` and ``a0``. ``x_quantiles``: the reference
        quantiles in raw units at ``0, 1/q, ..., 1`` (the shape bins). ``n_ref``: values
        the reference holds (the tail bins' ``1 / (n_ref + 1)``). ``missing_p0``: its
        missing share, floored at ``0.5 / (n_ref + 1)``.
        """
        j = int(j)
        if not 0 <= j < self.n_features:
            raise ValueError(f"feature {j} out of range [0, {self.n_features})")
        z = np.clip(np.asarray(z_ref, dtype=np.float64), clip_lo, clip_hi)
        z = z[np.isfinite(z)]
        if z.size == 0:
            raise ValueError("z_ref: no finite reference value")
        edges, p0 = shape_reference(x_quantiles, self.config.shape_bins, n_ref)
        floor = 0.5 / (max(int(n_ref), 1) + 1.0)
        m = min(max(float(missing_p0), floor), 1.0 - floor)
        self._mu0[j] = float(z.mean())
        d = np.clip(z - self._mu0[j], -HUBER, HUBER)
        self._mu_h[j] = float(np.mean(d))
        self._tail_mean[j] = mean_tail_factor(d - self._mu_h[j], self.config.min_mean_shift)
        a = np.minimum(np.abs(z - self._mu0[j]), HUBER)
        self._a0[j] = float(np.mean(a))
        self._m_scale[j] = scale_allowance(self.config.min_scale_change, a, n_ref)
        self._edges[j] = edges[-1]
        self._edges[j, : edges.size] = edges
        self._n_edges[j] = edges.size
        self._p0[j] = 1.0
        self._p0[j, : p0.size] = p0
        self._logp0[j] = np.log(self._p0[j])
        self._m0[j] = (1.0 - m, m)
        self._logm0[j] = np.log(self._m0[j])
        self._miss_pen[j] = change_penalty(m, self.config.min_missing_change)
        for name in self._RUN_STATE:
            getattr(self, name)[j] = 0
        for name in self._SEED_STATE:
            getattr(self, name)[j] = -1
        self._ready[j] = True

    def decision_thresholds(self, j: int) -> dict[str, float]:
        """Feature ``j``'s thresholds as its statistics are compared with them: ``cusum_mean``'s
        times the feature's tail factor (:func:`mean_tail_factor`), the others as set."""
        h = self.thresholds(j)
        h["cusum_mean"] *= float(self._tail_mean[int(j)])
        return h

    def update(self, x: np.ndarray, z: np.ndarray, first_row: np.ndarray) -> list[SequentialHit]:
        """One batch: ``x`` raw ``[rows, F]`` (NaN = missing), ``z`` the clipped
        standardised values (NaN where the change detectors see nothing), ``first_row[j]``
        the first row where feature ``j``'s reference is known. The decisions, in stream order."""
        F = self.n_features
        x = np.asarray(x, dtype=np.float64)
        z = np.asarray(z, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != F or z.shape != x.shape:
            raise ValueError(f"x and z must have shape [rows, {F}], got {x.shape} and {z.shape}")
        fr = np.clip(np.asarray(first_row, dtype=np.int64), 0, x.shape[0])
        if F == 0 or x.shape[0] == 0 or not self._on.any():
            return []
        hits, stats = _buffers(F, len(self._names), x.shape[0], self.resolve_min_count)
        k = _numeric_kernel(
            np.ascontiguousarray(x.T), np.ascontiguousarray(z.T), fr, self._on, self._ready, self._h,
            self.config.min_mean_shift, self._tail_mean, self._m_scale, self.config.min_shape_kl, self._miss_pen,
            self._mu0, self._mu_h, self._a0, self._edges, self._n_edges, self._logp0, self._p0, self._logm0, self._m0,
            self._n_val, self._n_evt, self._s_up, self._s_dn, self._zm_up, self._zm_dn,
            self._q_up, self._q_dn, self._zq_up, self._zq_dn, self._w_sh, self._cnt_sh, self._m_sh, self._z_sh,
            self._b_sh, self._w_mi, self._cnt_mi, self._m_mi, self._z_mi, self._b_mi, self._active, self._quiet,
            self._last_run,
            self._n_alarm, self.resolve_min_count, hits, stats,
        )  # fmt: skip
        return _to_hits(hits[:k], stats[:k], self._names)

    def statistics(self) -> dict[str, np.ndarray]:
        """The current statistic of every test, per feature (0 for an inert feature)."""
        return {
            "cusum_mean": np.maximum(self._s_up, self._s_dn),
            "cusum_scale": np.maximum(self._q_up, self._q_dn),
            "cusum_shape": self._w_sh.copy(),
            "cusum_missing": self._w_mi.copy(),
        }

    def state_dict(self) -> dict[str, Any]:
        """Plain dict of numpy arrays and numbers (no pickle)."""
        return self._state()

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (arrays may come back as lists); raises
        ``ValueError`` on a state of another shape (e.g. another ``shape_bins``) or with
        indices the kernel could not use, changing nothing."""
        self._load(state)

    def _check_loaded(self, loaded: dict[str, np.ndarray]) -> None:
        B = self.config.shape_bins
        widths = {"_edges": B + 1, "_logp0": B + 3, "_p0": B + 3, "_cnt_sh": B + 3}
        widths |= {"_h": 4, "_active": 4, "_quiet": 4, "_last_run": 4, "_n_alarm": 4}
        widths |= {"_logm0": 2, "_m0": 2, "_cnt_mi": 2}
        for name, width in widths.items():
            if loaded[name].shape[1] != width:
                raise ValueError(
                    f"sequential state field {name.lstrip('_')!r}: width {loaded[name].shape[1]} "
                    f"!= {width} (written with another shape_bins?)"
                )
        tail = loaded["_tail_mean"]
        if not np.all((tail >= 1.0) & (tail <= MEAN_TAIL_MAX)):
            raise ValueError(f"sequential state: tail_mean outside [1, {MEAN_TAIL_MAX}]")
        ready = loaded["_ready"]
        ne = loaded["_n_edges"][ready]
        if np.any((ne < 1) | (ne > B + 1)):
            raise ValueError("sequential state: n_edges out of range")


class CategoricalSequential(_Tests):
    """``cusum_categories`` and ``cusum_unseen`` of categorical features, each added with
    its reference shares. Both estimate the post-change distribution from the feature's
    last ``category_window`` non-missing values (a ring, checkpointed)."""

    _names = CATEGORICAL_TESTS
    _kind = "sequential_categorical"
    _fields = (
        "_h", "_n_cats", "_logp0", "_p0", "_logu0", "_u0", "_unseen_min", "_n_val",
        "_w_c", "_z_c", "_w_u", "_z_u", "_ring", "_pos", "_fill", "_cnt_c", "_cnt_u",
        "_active", "_quiet", "_last_run", "_n_alarm",
    )  # fmt: skip

    def __init__(self, config: SequentialConfig, resolve_min_count: int) -> None:
        super().__init__(config, resolve_min_count)
        f, i, b = np.float64, np.int64, np.bool_
        self._h = np.zeros((0, 2), f)
        self._n_cats = np.zeros(0, i)
        self._logp0, self._p0 = np.zeros((0, 1), f), np.ones((0, 1), f)
        self._logu0, self._u0, self._unseen_min = np.zeros((0, 2), f), np.zeros((0, 2), f), np.zeros(0, f)
        self._n_val = np.zeros(0, i)
        self._w_c, self._z_c, self._w_u, self._z_u = np.zeros(0, f), np.zeros(0, i), np.zeros(0, f), np.zeros(0, i)
        self._ring = np.zeros((0, config.category_window), i)
        self._pos, self._fill = np.zeros(0, i), np.zeros(0, i)
        self._cnt_c, self._cnt_u = np.zeros((0, 1), f), np.zeros((0, 2), f)
        self._active, self._quiet, self._last_run = (np.zeros((0, 2), b), np.zeros((0, 2), i), np.zeros((0, 2), i))
        self._n_alarm = np.zeros((0, 2), i)

    def add_feature(self, p0: np.ndarray, n_ref: int) -> int:
        """A new feature with reference shares ``p0`` of codes ``0..K-1`` (the last one
        "another category seen in training"; shares are floored at ``0.5 / (n_ref + 1)``
        and renormalised) from ``n_ref`` reference values. Returns its column index."""
        p = np.asarray(p0, dtype=np.float64)
        if p.ndim != 1 or p.size < 1 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
            raise ValueError("p0: expected the non-negative reference shares of at least one category")
        floor = 0.5 / (max(int(n_ref), 1) + 1.0)
        p = np.maximum(p / p.sum(), floor)
        p /= p.sum()
        K = p.size
        if K > self._p0.shape[1]:  # widen the per-category arrays
            pad = K - self._p0.shape[1]
            self._p0 = np.pad(self._p0, ((0, 0), (0, pad)), constant_values=1.0)
            self._logp0 = np.pad(self._logp0, ((0, 0), (0, pad)))
            self._cnt_c = np.pad(self._cnt_c, ((0, 0), (0, pad)))
        j = self.n_features
        self._grow(1, {}, {"_p0": 1.0})
        self._h[j] = self._default_h
        self._n_cats[j] = K
        self._p0[j, :K] = p
        self._logp0[j] = np.log(self._p0[j])
        b, s = unseen_null(n_ref, self.config.min_unseen_share)
        self._u0[j] = (1.0 - b, b)
        self._logu0[j] = np.log(self._u0[j])
        self._unseen_min[j] = s
        return j

    def update(self, codes: np.ndarray) -> list[SequentialHit]:
        """One batch of codes ``int64 [rows, F]``: ``k >= 0`` a reference code, ``-1``
        missing (ignored), ``-2`` never seen in training. The decisions, in stream order."""
        C = np.ascontiguousarray(codes, dtype=np.int64)
        if C.ndim != 2 or C.shape[1] != self.n_features:
            raise ValueError(f"codes must have shape [rows, {self.n_features}], got {C.shape}")
        if C.size == 0 or not self._on.any():
            return []
        hits, stats = _buffers(self.n_features, len(self._names), C.shape[0], self.resolve_min_count)
        k = _categorical_kernel(
            np.ascontiguousarray(C.T), self._on, self._h, self.config.min_category_kl, self._unseen_min,
            self._n_cats, self._logp0, self._p0, self._logu0, self._u0, self._n_val, self._w_c, self._z_c,
            self._w_u, self._z_u, self._ring, self._pos, self._fill, self._cnt_c, self._cnt_u, self._active,
            self._quiet, self._last_run, self._n_alarm, self.resolve_min_count, hits, stats,
        )  # fmt: skip
        return _to_hits(hits[:k], stats[:k], self._names)

    def statistics(self) -> dict[str, np.ndarray]:
        """The current statistic of both tests, per feature."""
        return {"cusum_categories": self._w_c.copy(), "cusum_unseen": self._w_u.copy()}

    def state_dict(self) -> dict[str, Any]:
        """Plain dict of numpy arrays and numbers (no pickle)."""
        return self._state()

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (arrays may come back as lists); raises
        ``ValueError`` on a state the kernel could not use, changing nothing."""
        self._load(state)

    def _check_loaded(self, loaded: dict[str, np.ndarray]) -> None:
        width = loaded["_p0"].shape[1]
        for name in ("_logp0", "_cnt_c"):
            if loaded[name].shape[1] != width:
                raise ValueError(f"sequential state field {name.lstrip('_')!r}: width != {width}")
        for name, w in {"_h": 2, "_active": 2, "_quiet": 2, "_last_run": 2, "_n_alarm": 2}.items():
            if loaded[name].shape[1] != w:
                raise ValueError(f"sequential state field {name.lstrip('_')!r}: width != {w}")
        for name in ("_logu0", "_u0", "_cnt_u"):
            if loaded[name].shape[1] != 2:
                raise ValueError(f"sequential state field {name.lstrip('_')!r}: width != 2")
        W = self.config.category_window
        if loaded["_ring"].shape[1] != W:
            raise ValueError(
                f"sequential state field 'ring': width {loaded['_ring'].shape[1]} != {W} "
                "(written with another category_window?)"
            )
        k = loaded["_n_cats"]
        if np.any((k < 1) | (k > width)):
            raise ValueError("sequential state: n_cats out of range")
        check_rings(loaded["_ring"], loaded["_pos"], loaded["_fill"], k, loaded["_cnt_c"], loaded["_cnt_u"])


def check_rings(
    ring: np.ndarray, pos: np.ndarray, fill: np.ndarray, n_cats: np.ndarray, cnt_c: np.ndarray, cnt_u: np.ndarray
) -> None:
    """Raise ``ValueError`` unless the categorical tests' rings can drive the kernel: codes
    in ``[-2, n_cats)`` (not -1) in the filled part, positions and fills inside the ring,
    and the counts those of the ring (a checkpoint is untrusted input: a code indexes the
    counts in the kernel)."""
    ring, pos, fill = np.asarray(ring), np.asarray(pos), np.asarray(fill)
    F, W = ring.shape
    if np.any((fill < 0) | (fill > W)) or np.any((pos < 0) | (pos >= max(W, 1))):
        raise ValueError("sequential state: ring position or fill out of range")
    for j in range(F):
        r = ring[j, : int(fill[j])]
        if np.any((r < -2) | (r == -1) | (r >= n_cats[j])):
            raise ValueError("sequential state: ring codes out of range")
        counts = np.bincount(r[r >= 0], minlength=cnt_c.shape[1])
        if not (np.array_equal(counts, cnt_c[j]) and cnt_u[j, 0] == np.sum(r >= 0) and cnt_u[j, 1] == np.sum(r == -2)):
            raise ValueError("sequential state: ring counts do not match the ring")
