"""Sequential tests against the reference: CUSUMs per feature, one numba call per batch.

Each test accumulates, value by value, the evidence that a feature no longer follows its
known pre-change (reference) distribution, and alarms when its statistic exceeds its
threshold ``h`` (Page, 1954); it then restarts at 0. Every test has a minimum meaningful
change: below it the statistic drifts down, so it stays quiet however long the stream.

Numeric features (:class:`NumericSequential`, on the clipped standardised value ``z`` the
change detectors see, and the raw value ``x``):

* ``cusum_mean``: the two-sided CUSUM ``S+ = max(0, S+ + (z - mu0) - k)``,
  ``S- = max(0, S- - (z - mu0) - k)`` with ``mu0`` the reference's mean of ``z`` and the
  allowance ``k = min_mean_shift`` (reference sds); the statistic is ``max(S+, S-)``;
* ``cusum_scale``: two one-sided CUSUMs of ``z**2`` against ``v0``, the reference's mean
  of ``z**2``: up ``z**2 - v0 (1 + m)**2``, down ``v0 (1 - m)**2 - z**2``,
  ``m = min_scale_change``;
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

Categorical features (:class:`CategoricalSequential`): ``cusum_categories``, the
adaptive multinomial CUSUM over the reference's category codes (penalty
``min_category_kl``), and ``cusum_unseen``, the adaptive Bernoulli CUSUM of values never
seen in training among the non-missing values (``p0 = 1 / (n_ref + 1)``, the penalty the
divergence of a share ``min_unseen_share``).

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
>>> [(h.test, h.status, 500 <= h.row < 800) for h in hits]
[('cusum_scale', 'drift', True), ('cusum_mean', 'drift', True), ('cusum_shape', 'drift', True)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numba as nb
import numpy as np

from driftsentinel.detectors._state import STATE_VERSION, as_array, check_kind
from driftsentinel.schemas.config import SequentialConfig

__all__ = [
    "CATEGORICAL_TESTS",
    "NUMERIC_TESTS",
    "CategoricalSequential",
    "NumericSequential",
    "SequentialHit",
    "bernoulli_kl",
    "grid_midpoints",
    "shape_reference",
]

NUMERIC_TESTS = ("cusum_mean", "cusum_scale", "cusum_shape", "cusum_missing")
CATEGORICAL_TESTS = ("cusum_categories", "cusum_unseen")
#: The statistic each test's signals name (``DriftSignal.statistic_name``).
STATISTIC_NAME = "cusum_statistic"
#: Pseudo-values of the Dirichlet prior (centred on the reference) of the adaptive
#: multinomial CUSUMs: few, so a new distribution is learnt from a handful of values
#: (a value beyond the reference's range alarms within about 5 values at h = 16).
SHAPE_PRIOR = 4.0
#: Pseudo-events of the Beta prior of the adaptive Bernoulli CUSUMs (missing, unseen).
MISSING_PRIOR = 2.0
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
    q = grid.size - 1
    i = int(np.searchsorted(grid, e, side="left"))
    if i == 0:
        return 0.0
    if i > q:
        return 1.0
    lo, hi = grid[i - 1], grid[i]
    return float((i - 1 + (e - lo) / (hi - lo)) / q)


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
@nb.njit(cache=True, nogil=True)
def _push(hits, stats, k, row, j, t, status, since, stat, thr):  # pragma: no cover - numba
    if k == hits.shape[0]:
        h2 = np.empty((2 * k, 5), np.int64)
        s2 = np.empty((2 * k, 2))
        h2[:k] = hits
        s2[:k] = stats
        hits, stats = h2, s2
    hits[k, 0] = row
    hits[k, 1] = j
    hits[k, 2] = t
    hits[k, 3] = status
    hits[k, 4] = since
    stats[k, 0] = stat
    stats[k, 1] = thr
    return hits, stats, k + 1


@nb.njit(cache=True, nogil=True)
def _episode(
    alarm, stat, since_val, t, j, row, h, active, quiet, last_run, n_alarm, resolve_min, hits, stats, k
):  # pragma: no cover - numba
    """One value of test ``t`` of feature ``j``: open, keep or resolve its episode."""
    if alarm:
        n_alarm[j, t] += 1
        quiet[j, t] = 0
        last_run[j, t] = since_val
        if not active[j, t]:
            active[j, t] = True
            hits, stats, k = _push(hits, stats, k, row, j, t, _DRIFT, since_val, stat, h)
    else:
        quiet[j, t] += 1
        if active[j, t] and quiet[j, t] >= max(resolve_min, 2 * last_run[j, t]):
            active[j, t] = False
            hits, stats, k = _push(hits, stats, k, row, j, t, _RESOLVED, -1, stat, h)
    return hits, stats, k


@nb.njit(cache=True, nogil=True)
def _adaptive_step(b, w, cnt, j, m_run, zero_at, n, logp0, p0, prior, pen):  # pragma: no cover - numba
    """One value in bin ``b`` of an adaptive multinomial CUSUM; returns the new statistic.
    ``cnt[j]`` / ``m_run[j]``: the bins and number of the values since the statistic was last 0."""
    p_hat = (cnt[j, b] + prior * p0[j, b]) / (m_run[j] + prior)
    w = w + math.log(p_hat) - logp0[j, b] - pen
    if w <= 0.0:
        w = 0.0
        cnt[j, :] = 0.0
        cnt[j, b] = 1.0
        m_run[j] = 1.0
        zero_at[j] = n
    else:
        cnt[j, b] += 1.0
        m_run[j] += 1.0
    return w


@nb.njit(cache=True, nogil=True)
def _restart(b, cnt, j, m_run, zero_at, n):  # pragma: no cover - numba
    """An adaptive CUSUM after an alarm: back at 0, the current value its run's first."""
    cnt[j, :] = 0.0
    cnt[j, b] = 1.0
    m_run[j] = 1.0
    zero_at[j] = n


@nb.njit(cache=True, nogil=True)
def _numeric_kernel(
    X,
    Z,
    first_row,
    on,
    ready,
    h,
    k_mean,
    up2,
    dn2,
    shape_pen,
    miss_pen,
    mu0,
    v0,
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
    w_mi,
    cnt_mi,
    m_mi,
    z_mi,
    active,
    quiet,
    last_run,
    n_alarm,
    resolve_min,
):  # pragma: no cover - numba
    rows, F = X.shape
    hits = np.empty((16, 5), np.int64)
    stats = np.empty((16, 2))
    k = 0
    for j in range(F):
        if not ready[j]:
            continue
        ne = n_edges[j]
        for i in range(first_row[j], rows):
            x = X[i, j]
            present = x == x
            # ---- missing: every event
            if on[3]:
                ne_ = n_evt[j] + 1
                n_evt[j] = ne_
                b = 0 if present else 1
                w = _adaptive_step(b, w_mi[j], cnt_mi, j, m_mi, z_mi, ne_, logm0, m0, MISSING_PRIOR, miss_pen[j])
                alarm = w > h[j, 3]
                since_val = ne_ - z_mi[j]
                stat = w
                if alarm:
                    w = 0.0
                    _restart(b, cnt_mi, j, m_mi, z_mi, ne_)
                w_mi[j] = w
                hits, stats, k = _episode(
                    alarm,
                    stat,
                    since_val,
                    3,
                    j,
                    i,
                    h[j, 3],
                    active,
                    quiet,
                    last_run,
                    n_alarm,
                    resolve_min,
                    hits,
                    stats,
                    k,
                )
            if not present:
                continue
            z = Z[i, j]
            if z != z:
                continue
            nv = n_val[j] + 1
            n_val[j] = nv
            # ---- mean
            if on[0]:
                d = z - mu0[j]
                su = max(0.0, s_up[j] + (d - k_mean))
                sd = max(0.0, s_dn[j] + (-d - k_mean))
                if su == 0.0:
                    zm_up[j] = nv
                if sd == 0.0:
                    zm_dn[j] = nv
                stat = max(su, sd)
                alarm = stat > h[j, 0]
                since_val = nv - (zm_up[j] if su >= sd else zm_dn[j])
                if alarm:
                    su = 0.0
                    sd = 0.0
                    zm_up[j] = nv
                    zm_dn[j] = nv
                s_up[j] = su
                s_dn[j] = sd
                hits, stats, k = _episode(
                    alarm,
                    stat,
                    since_val,
                    0,
                    j,
                    i,
                    h[j, 0],
                    active,
                    quiet,
                    last_run,
                    n_alarm,
                    resolve_min,
                    hits,
                    stats,
                    k,
                )
            # ---- scale
            if on[1]:
                zz = z * z
                qu = max(0.0, q_up[j] + (zz - v0[j] * up2))
                qd = max(0.0, q_dn[j] + (v0[j] * dn2 - zz))
                if qu == 0.0:
                    zq_up[j] = nv
                if qd == 0.0:
                    zq_dn[j] = nv
                stat = max(qu, qd)
                alarm = stat > h[j, 1]
                since_val = nv - (zq_up[j] if qu >= qd else zq_dn[j])
                if alarm:
                    qu = 0.0
                    qd = 0.0
                    zq_up[j] = nv
                    zq_dn[j] = nv
                q_up[j] = qu
                q_dn[j] = qd
                hits, stats, k = _episode(
                    alarm,
                    stat,
                    since_val,
                    1,
                    j,
                    i,
                    h[j, 1],
                    active,
                    quiet,
                    last_run,
                    n_alarm,
                    resolve_min,
                    hits,
                    stats,
                    k,
                )
            # ---- shape
            if on[2]:
                if x < edges[j, 0]:
                    b = 0
                elif x > edges[j, ne - 1]:
                    b = ne + 1
                else:
                    b = 1
                    for e in range(1, ne):
                        if x >= edges[j, e]:
                            b = e + 1
                w = _adaptive_step(b, w_sh[j], cnt_sh, j, m_sh, z_sh, nv, logp0, p0, SHAPE_PRIOR, shape_pen)
                alarm = w > h[j, 2]
                since_val = nv - z_sh[j]
                stat = w
                if alarm:
                    w = 0.0
                    _restart(b, cnt_sh, j, m_sh, z_sh, nv)
                w_sh[j] = w
                hits, stats, k = _episode(
                    alarm,
                    stat,
                    since_val,
                    2,
                    j,
                    i,
                    h[j, 2],
                    active,
                    quiet,
                    last_run,
                    n_alarm,
                    resolve_min,
                    hits,
                    stats,
                    k,
                )
    return hits[:k], stats[:k]


@nb.njit(cache=True, nogil=True)
def _categorical_kernel(
    C,
    on,
    h,
    cat_pen,
    unseen_pen,
    n_cats,
    logp0,
    p0,
    logu0,
    u0,
    n_val,
    w_c,
    cnt_c,
    m_c,
    z_c,
    w_u,
    cnt_u,
    m_u,
    z_u,
    active,
    quiet,
    last_run,
    n_alarm,
    resolve_min,
):  # pragma: no cover - numba
    rows, F = C.shape
    hits = np.empty((16, 5), np.int64)
    stats = np.empty((16, 2))
    k = 0
    for j in range(F):
        K = n_cats[j]
        for i in range(rows):
            c = C[i, j]
            if c == -1 or c >= K or c < -2:
                continue  # missing (or not a code of this feature)
            nv = n_val[j] + 1
            n_val[j] = nv
            if on[1]:
                b = 1 if c == -2 else 0
                w = _adaptive_step(b, w_u[j], cnt_u, j, m_u, z_u, nv, logu0, u0, MISSING_PRIOR, unseen_pen[j])
                alarm = w > h[j, 1]
                since_val = nv - z_u[j]
                stat = w
                if alarm:
                    w = 0.0
                    _restart(b, cnt_u, j, m_u, z_u, nv)
                w_u[j] = w
                hits, stats, k = _episode(
                    alarm,
                    stat,
                    since_val,
                    1,
                    j,
                    i,
                    h[j, 1],
                    active,
                    quiet,
                    last_run,
                    n_alarm,
                    resolve_min,
                    hits,
                    stats,
                    k,
                )
            if on[0] and c >= 0:
                w = _adaptive_step(c, w_c[j], cnt_c, j, m_c, z_c, nv, logp0, p0, SHAPE_PRIOR, cat_pen)
                alarm = w > h[j, 0]
                since_val = nv - z_c[j]
                stat = w
                if alarm:
                    w = 0.0
                    _restart(c, cnt_c, j, m_c, z_c, nv)
                w_c[j] = w
                hits, stats, k = _episode(
                    alarm,
                    stat,
                    since_val,
                    0,
                    j,
                    i,
                    h[j, 0],
                    active,
                    quiet,
                    last_run,
                    n_alarm,
                    resolve_min,
                    hits,
                    stats,
                    k,
                )
    return hits[:k], stats[:k]


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
            value = np.array(state[name.lstrip("_")], dtype=arr.dtype)
            if F == 0 and value.size == 0:
                value = value.reshape(0, *arr.shape[1:])
            if value.ndim != arr.ndim or value.shape[0] != F:
                raise ValueError(f"sequential state field {name.lstrip('_')!r} has shape {value.shape}")
            loaded[name] = as_array(value, arr.dtype, (F, *value.shape[1:]))
        for name, value in loaded.items():
            setattr(self, name, np.ascontiguousarray(value))


class NumericSequential(_Tests):
    """``cusum_mean``, ``cusum_scale``, ``cusum_shape`` and ``cusum_missing`` of every
    numeric feature of a model. A feature is inert until :meth:`set_reference`."""

    _names = NUMERIC_TESTS
    _kind = "sequential_numeric"
    _fields = (
        "_ready", "_h", "_mu0", "_v0", "_edges", "_n_edges", "_logp0", "_p0", "_logm0", "_m0", "_miss_pen",
        "_n_val", "_n_evt", "_s_up", "_s_dn", "_zm_up", "_zm_dn", "_q_up", "_q_dn", "_zq_up", "_zq_dn",
        "_w_sh", "_cnt_sh", "_m_sh", "_z_sh", "_w_mi", "_cnt_mi", "_m_mi", "_z_mi",
        "_active", "_quiet", "_last_run", "_n_alarm",
    )  # fmt: skip

    #: the statistics and runs, back to 0 when a reference is set (episodes are kept)
    _RUN_STATE = (
        "_n_val", "_n_evt", "_s_up", "_s_dn", "_zm_up", "_zm_dn", "_q_up", "_q_dn", "_zq_up", "_zq_dn",
        "_w_sh", "_cnt_sh", "_m_sh", "_z_sh", "_w_mi", "_cnt_mi", "_m_mi", "_z_mi",
    )  # fmt: skip

    def __init__(self, config: SequentialConfig, resolve_min_count: int) -> None:
        super().__init__(config, resolve_min_count)
        nb_ = config.shape_bins + 3  # the tails, the bins between the edges, the largest edge
        self._up2 = (1.0 + config.min_scale_change) ** 2
        self._dn2 = (1.0 - config.min_scale_change) ** 2
        f, i, b = np.float64, np.int64, np.bool_
        self._ready = np.zeros(0, b)
        self._h = np.zeros((0, 4), f)
        self._mu0, self._v0 = np.zeros(0, f), np.ones(0, f)
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
        self._grow(int(n), {}, {"_v0": 1.0})
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
        their mean and mean square are ``mu0`` and ``v0``. ``x_quantiles``: the reference
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
        self._v0[j] = float(np.mean(z * z))
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
        self._ready[j] = True

    def update(self, x: np.ndarray, z: np.ndarray, first_row: np.ndarray) -> list[SequentialHit]:
        """One batch: ``x`` raw ``[rows, F]`` (NaN = missing), ``z`` the clipped
        standardised values (NaN where the change detectors see nothing), ``first_row[j]``
        the first row where feature ``j``'s reference is known. The decisions, in stream order."""
        F = self.n_features
        x = np.ascontiguousarray(x, dtype=np.float64)
        z = np.ascontiguousarray(z, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != F or z.shape != x.shape:
            raise ValueError(f"x and z must have shape [rows, {F}], got {x.shape} and {z.shape}")
        fr = np.clip(np.asarray(first_row, dtype=np.int64), 0, x.shape[0])
        if F == 0 or x.shape[0] == 0 or not self._on.any():
            return []
        hits, stats = _numeric_kernel(
            x, z, fr, self._on, self._ready, self._h, self.config.min_mean_shift, self._up2, self._dn2,
            self.config.min_shape_kl, self._miss_pen, self._mu0, self._v0, self._edges, self._n_edges,
            self._logp0, self._p0, self._logm0, self._m0, self._n_val, self._n_evt,
            self._s_up, self._s_dn, self._zm_up, self._zm_dn, self._q_up, self._q_dn, self._zq_up, self._zq_dn,
            self._w_sh, self._cnt_sh, self._m_sh, self._z_sh, self._w_mi, self._cnt_mi, self._m_mi, self._z_mi,
            self._active, self._quiet, self._last_run, self._n_alarm, self.resolve_min_count,
        )  # fmt: skip
        return _to_hits(hits, stats, self._names)

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
        ``ValueError`` on a state of another shape (e.g. another ``shape_bins``)."""
        self._load(state)
        if self._edges.shape[1] != self.config.shape_bins + 1:
            raise ValueError("sequential state was written with another shape_bins")


class CategoricalSequential(_Tests):
    """``cusum_categories`` and ``cusum_unseen`` of categorical features, each added with
    its reference shares."""

    _names = CATEGORICAL_TESTS
    _kind = "sequential_categorical"
    _fields = (
        "_h", "_n_cats", "_logp0", "_p0", "_logu0", "_u0", "_unseen_pen", "_n_val",
        "_w_c", "_cnt_c", "_m_c", "_z_c", "_w_u", "_cnt_u", "_m_u", "_z_u", "_active", "_quiet", "_last_run",
        "_n_alarm",
    )  # fmt: skip

    def __init__(self, config: SequentialConfig, resolve_min_count: int) -> None:
        super().__init__(config, resolve_min_count)
        f, i, b = np.float64, np.int64, np.bool_
        self._h = np.zeros((0, 2), f)
        self._n_cats = np.zeros(0, i)
        self._logp0, self._p0 = np.zeros((0, 1), f), np.ones((0, 1), f)
        self._logu0, self._u0, self._unseen_pen = np.zeros((0, 2), f), np.zeros((0, 2), f), np.zeros(0, f)
        self._n_val = np.zeros(0, i)
        self._w_c, self._cnt_c, self._m_c, self._z_c = (
            np.zeros(0, f),
            np.zeros((0, 1), f),
            np.zeros(0, f),
            np.zeros(0, i),
        )
        self._w_u, self._cnt_u, self._m_u, self._z_u = (
            np.zeros(0, f),
            np.zeros((0, 2), f),
            np.zeros(0, f),
            np.zeros(0, i),
        )
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
        u = 1.0 / (max(int(n_ref), 1) + 1.0)
        self._u0[j] = (1.0 - u, u)
        self._logu0[j] = np.log(self._u0[j])
        s = self.config.min_unseen_share
        self._unseen_pen[j] = bernoulli_kl(min(s if s > u else u + s, 1.0), u)
        return j

    def update(self, codes: np.ndarray) -> list[SequentialHit]:
        """One batch of codes ``int64 [rows, F]``: ``k >= 0`` a reference code, ``-1``
        missing (ignored), ``-2`` never seen in training. The decisions, in stream order."""
        C = np.ascontiguousarray(codes, dtype=np.int64)
        if C.ndim != 2 or C.shape[1] != self.n_features:
            raise ValueError(f"codes must have shape [rows, {self.n_features}], got {C.shape}")
        if C.size == 0 or not self._on.any():
            return []
        hits, stats = _categorical_kernel(
            C, self._on, self._h, self.config.min_category_kl, self._unseen_pen, self._n_cats, self._logp0,
            self._p0, self._logu0, self._u0, self._n_val, self._w_c, self._cnt_c, self._m_c, self._z_c,
            self._w_u, self._cnt_u, self._m_u, self._z_u, self._active, self._quiet, self._last_run,
            self._n_alarm,
            self.resolve_min_count,
        )  # fmt: skip
        return _to_hits(hits, stats, self._names)

    def statistics(self) -> dict[str, np.ndarray]:
        """The current statistic of both tests, per feature."""
        return {"cusum_categories": self._w_c.copy(), "cusum_unseen": self._w_u.copy()}

    def state_dict(self) -> dict[str, Any]:
        """Plain dict of numpy arrays and numbers (no pickle)."""
        return self._state()

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (arrays may come back as lists)."""
        self._load(state)
