"""Multivariate drift: a change in the dependence between numeric features, per window.

Per-feature tests cannot see two features that start to move together while each keeps
its distribution. This test watches the joint distribution through a **Gaussian copula**:

* each feature is mapped to **normal scores** ``Phi^-1(F_ref(x))`` through its own reference
  quantiles (the profile's 101; the CDF interpolated linearly between them, ties at their
  mid-rank, clipped to ``[SCORE_CLIP_LO, 1 - SCORE_CLIP_LO]``), so the marginal shapes do not
  matter: a lognormal feature scores like a normal one;
* per window (the window tests' windows: :func:`~driftsentinel.detectors.reference_monitor.window_cuts`)
  the scores' sums and cross-products are accumulated over the rows where every feature is
  present, and at the window's end their **correlation** ``R`` is compared with the
  reference's ``R0``. Using the window's own means and spreads keeps this test about
  dependence: a feature whose level or spread moved is the per-feature tests' alarm;
* the statistic is the Gaussian likelihood ratio of the correlation,
  ``T = 2 n_eff KL / scale`` with ``KL = 0.5 [tr(R0^-1 R) - log det(R0^-1 R) - d]`` (the
  divergence per row of ``N(0, R)`` from ``N(0, R0)``), ``n_eff = n m / (n + m)`` for
  ``n`` window and ``m`` reference rows (both are samples), and ``scale`` the reference's
  product-variance ratio (1 for a Gaussian copula; a Satorra-Bentler style correction for
  heavier-tailed dependence). Under no change ``T`` is close to chi-square with
  ``d (d - 1) / 2`` degrees of freedom (for an ``R0`` with correlations it is smaller:
  the test is conservative). The **effect size** is ``KL`` less its expected value under no
  change, ``scale * dof / (2 n_eff)``: nats per row beyond the noise;
* a window **drifts** when ``T``'s p-value is below ``alpha`` *and* the effect passes
  ``min_kl`` (the minimum meaningful change; 0.02 nats = one pair's correlation going from
  0 to 0.2); the episode **resolves** at the first later window whose effect is at most
  ``min_kl x window_tests.resolve_ratio``.

A feature whose scores barely vary in a window (variance under ``DEGENERATE_VARIANCE``: all
of its values beyond the reference's range, or a constant) is left out of that window's
matrix (its dependence is unmeasurable), and so are windows with fewer than ``min_rows``
complete rows. Work per batch is numpy over ``[rows, features]`` (a loop over the at most
``max_features`` columns, none over rows) plus one ``d x d`` matrix product per window
segment. Measurements: docs/multivariate.md.

>>> import numpy as np
>>> from driftsentinel.schemas.config import MultivariateConfig, WindowTestConfig
>>> rng = np.random.default_rng(0)
>>> ref = rng.normal(size=(20_000, 3))
>>> q = {f"x{j}": np.quantile(ref[:, j], np.linspace(0, 1, 101)) for j in range(3)}
>>> prof = multivariate_profile({f"x{j}": ref[:, j] for j in range(3)}, q)[0]
>>> mon = MultivariateMonitor(prof, q, MultivariateConfig(), WindowTestConfig(window_events=5000))
>>> live = rng.normal(size=(10_000, 3))
>>> live[5000:, 1] = 0.8 * live[5000:, 0] + 0.6 * live[5000:, 1]   # correlation 0.8, marginals N(0, 1)
>>> [(d.row, d.status, round(d.statistic, 2)) for d in mon.update(["x0", "x1", "x2"], live, np.full(10_000, np.nan))]
[(9999, 'drift', 0.52)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np

from driftsentinel.detectors._distributions import grid_cdf, ndtri_acklam
from driftsentinel.detectors.reference_monitor import window_cuts
from driftsentinel.detectors.window_tests import chi2_sf
from driftsentinel.schemas.alerts import Status, WindowSummary
from driftsentinel.schemas.config import BankConfig, MultivariateConfig, WindowTestConfig
from driftsentinel.schemas.profile import MultivariateProfile, NumericProfile, ReferenceProfile
from driftsentinel.schemas.signals import DriftSignal, FeatureStatus

#: Normal scores are clipped to Phi^-1 of [SCORE_CLIP_LO, 1 - SCORE_CLIP_LO] (+-3.29): a value
#: beyond the reference's range scores as its most extreme reference value.
SCORE_CLIP_LO = 0.0005
#: A feature whose scores vary less than this in a window (a standard normal's is 1) is left
#: out of that window's correlation.
DEGENERATE_VARIANCE = 0.01
#: Features the builder selects (those with the most reference values first).
MAX_FEATURES = 64
#: The fewest reference rows with every selected feature present for a multivariate section.
MIN_REFERENCE_ROWS = 1000
#: Reference rows used at most (evenly spaced through the complete rows): the correlation's
#: sampling error is then ~0.002, below anything a window of live rows can resolve.
MAX_REFERENCE_ROWS = 200_000
#: A feature adding less than this residual variance to the ones already selected (a copy,
#: or a sum, of them) is left out: the reference correlation must be invertible.
MIN_RESIDUAL_VARIANCE = 1e-3
#: KL divergences are capped here (a live correlation matrix that became singular).
MAX_KL = 1e3
DETECTOR = "multivariate"
FEATURE = "@multivariate"
STATISTIC = "multivariate_kl"


# ---------------------------------------------------------------------------------- normal scores
@nb.njit(cache=True, error_model="numpy", nogil=True)
def _scores_kernel(
    x: np.ndarray, quantiles: np.ndarray, lengths: np.ndarray, clip: float
) -> np.ndarray:  # pragma: no cover
    n, d = x.shape
    z = np.empty((n, d))
    for i in range(n):
        for j in range(d):
            v = x[i, j]
            if math.isnan(v):
                z[i, j] = np.nan
            else:
                u = min(max(grid_cdf(quantiles[j, : lengths[j]], v, True), clip), 1.0 - clip)
                z[i, j] = ndtri_acklam(u)
    return z


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _sums_kernel(z: np.ndarray, a: int, b: int, sums: np.ndarray, cross: np.ndarray) -> int:  # pragma: no cover
    """Add rows ``[a, b)`` of ``z`` with every feature present to ``sums`` and ``cross`` (its
    upper triangle, in place); the number of such rows."""
    d = z.shape[1]
    used = 0
    for i in range(a, b):
        ok = True
        for j in range(d):
            if math.isnan(z[i, j]):
                ok = False
                break
        if not ok:
            continue
        used += 1
        for j in range(d):
            zj = z[i, j]
            sums[j] += zj
            for k in range(j, d):
                cross[j, k] += zj * z[i, k]
    return used


def _padded(quantiles: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([q.size for q in quantiles], dtype=np.int64)
    out = np.zeros((len(quantiles), int(lengths.max(initial=1))))
    for j, q in enumerate(quantiles):
        out[j, : q.size] = q
    return out, lengths


def reference_cdf(x: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """The reference CDF at ``x`` from quantiles at 0, 1/K, ..., 1: linear between distinct
    quantiles, the mid-rank of a run of equal ones (a value the reference repeats), 0 below
    the first and 1 above the last.

    >>> reference_cdf(np.array([-1.0, 0.0, 0.5, 1.0, 1.5, 3.0]), np.array([0.0, 1.0, 1.0, 2.0, 2.0]))
    array([0.   , 0.   , 0.125, 0.375, 0.625, 1.   ])
    """
    q = np.asarray(quantiles, dtype=np.float64)
    return np.array([grid_cdf(q, float(v), True) for v in np.asarray(x, dtype=np.float64)])


def normal_scores(x: np.ndarray, quantiles: list[np.ndarray]) -> np.ndarray:
    """``[rows, d]`` values -> their normal scores through each column's reference quantiles
    (clipped, see :data:`SCORE_CLIP_LO`); NaN stays NaN. One compiled pass."""
    padded, lengths = _padded([np.asarray(q, dtype=np.float64) for q in quantiles])
    return _scores_kernel(np.ascontiguousarray(x, dtype=np.float64), padded, lengths, SCORE_CLIP_LO)


# ---------------------------------------------------------------------------------- the reference
def _correlation(z: np.ndarray) -> np.ndarray:
    c = np.cov(z, rowvar=False)
    sd = np.sqrt(np.diag(c))
    r = c / np.outer(sd, sd)
    np.fill_diagonal(r, 1.0)
    return (r + r.T) / 2.0


def product_scale(z: np.ndarray, r: np.ndarray) -> float:
    """The variance of the standardised score products over its Gaussian value
    (``Var(z_i z_j) = 1 + r_ij^2``), averaged over the pairs; at least 1.
    ``Var(s_i s_j) = E[s_i^2 s_j^2] - r_ij^2``: one matrix product of the squares."""
    s = (z - z.mean(axis=0)) / z.std(axis=0)
    sq = s * s
    fourth = sq.T @ sq / s.shape[0]
    iu = np.triu_indices(z.shape[1], 1)
    ratios = (fourth[iu] - r[iu] ** 2) / (1.0 + r[iu] ** 2)
    return max(1.0, float(ratios.mean()))


def multivariate_profile(
    columns: Mapping[str, np.ndarray],
    quantiles: Mapping[str, np.ndarray],
    max_features: int = MAX_FEATURES,
    min_rows: int = MIN_REFERENCE_ROWS,
) -> tuple[MultivariateProfile | None, str]:
    """The multivariate section of a profile from the numeric training ``columns`` (float
    arrays of equal length, NaN = missing) and their ``quantiles`` (the profile's): ``(section
    or None, what was done or why not)``.

    Features are taken by how many values they have (most first, constant ones skipped), at
    most ``max_features``; while fewer than ``min_rows`` rows have all of them, the one with
    the fewest values goes. A feature (nearly) determined by those before it is dropped
    (:data:`MIN_RESIDUAL_VARIANCE`).
    """
    names = [
        n
        for n in sorted(columns, key=lambda n: -int(np.isfinite(columns[n]).sum()))
        if n in quantiles and np.ptp(np.asarray(quantiles[n])) > 0
    ][:max_features]
    if len(names) < 2:
        return None, f"multivariate: {len(names)} non-constant numeric feature(s), need 2"
    present = np.column_stack([np.isfinite(np.asarray(columns[n], dtype=np.float64)) for n in names])
    while len(names) >= 2 and int(present[:, : len(names)].all(axis=1).sum()) < min_rows:
        names.pop()
    if len(names) < 2:
        return None, f"multivariate: fewer than {min_rows} training rows have two numeric features together"
    rows = np.flatnonzero(present[:, : len(names)].all(axis=1))
    if rows.size > MAX_REFERENCE_ROWS:
        rows = rows[np.linspace(0, rows.size - 1, MAX_REFERENCE_ROWS).astype(np.int64)]
    x = np.column_stack([np.asarray(columns[n], dtype=np.float64)[rows] for n in names])
    z = normal_scores(x, [np.asarray(quantiles[n], dtype=np.float64) for n in names])
    keep = [j for j in range(len(names)) if np.var(z[:, j]) > DEGENERATE_VARIANCE]
    z = z[:, keep]
    names = [names[j] for j in keep]
    # greedy: a feature stays when it adds residual variance to those kept before it
    r_all = _correlation(z) if len(names) >= 2 else np.eye(len(names))
    chosen: list[int] = []
    for j in range(len(names)):
        if chosen:
            sub = r_all[np.ix_(chosen, chosen)]
            v = r_all[chosen, j]
            if 1.0 - float(v @ np.linalg.solve(sub, v)) < MIN_RESIDUAL_VARIANCE:
                continue
        chosen.append(j)
    if len(chosen) < 2:
        return None, "multivariate: fewer than 2 numeric features that vary and are not copies of each other"
    r = r_all[np.ix_(chosen, chosen)]
    z = z[:, chosen]
    section = MultivariateProfile(
        features=[names[j] for j in chosen],
        n_rows=int(rows.size),
        correlation=r.tolist(),
        scale=product_scale(z, r),
    )
    return section, f"multivariate: {len(chosen)} features, {rows.size} rows"


# ---------------------------------------------------------------------------------- the statistic
@dataclass(frozen=True)
class WindowStatistic:
    """A window's test: rows used, features tested, per-row KL, effect (KL beyond the noise), p-value."""

    rows: int
    features: int
    kl: float
    effect: float
    p_value: float


def window_statistic(
    n: int, sums: np.ndarray, cross: np.ndarray, r0: np.ndarray, m: int, scale: float
) -> WindowStatistic | None:
    """The test of a window from its ``n`` complete rows' score ``sums`` and ``cross``-products
    (the upper triangle counts) against the reference correlation ``r0`` of ``m`` rows; None
    when under two features vary."""
    upper = np.triu(cross)
    mean = sums / n
    cov = (upper + upper.T - np.diag(np.diag(upper))) / n - np.outer(mean, mean)
    var = np.diag(cov).copy()
    use = np.flatnonzero(var > DEGENERATE_VARIANCE)
    d = int(use.size)
    if d < 2:
        return None
    sd = np.sqrt(var[use])
    r = cov[np.ix_(use, use)] / np.outer(sd, sd)
    np.fill_diagonal(r, 1.0)
    r0u = r0[np.ix_(use, use)]
    sign, logdet = np.linalg.slogdet(r)
    sign0, logdet0 = np.linalg.slogdet(r0u)
    if sign <= 0 or sign0 <= 0:
        kl = MAX_KL
    else:
        tr = float(np.trace(np.linalg.solve(r0u, r)))
        kl = min(max(0.5 * (tr - (logdet - logdet0) - d), 0.0), MAX_KL)
    dof = d * (d - 1) // 2
    n_eff = n * m / (n + m)
    noise = scale * dof / (2.0 * n_eff)
    p = chi2_sf(2.0 * n_eff * kl / scale, dof)
    return WindowStatistic(rows=n, features=d, kl=float(kl), effect=float(max(kl - noise, 0.0)), p_value=float(p))


@dataclass(frozen=True)
class MultivariateDecision:
    """The multivariate test's decision at a window's end (``row`` of the batch)."""

    row: int
    status: Status
    statistic: float  # the effect: per-row KL beyond the noise (nats)
    threshold: float  # min_kl
    rows: int  # complete rows of the window
    events: int  # events of the window
    p_value: float


class MultivariateMonitor:
    """The multivariate test of one model's stream against a profile's ``multivariate`` section.

    ``quantiles`` maps each of the section's features to its reference quantiles (the
    profile's numeric feature profiles). Feed batches in stream order with :meth:`update`.
    """

    def __init__(
        self,
        section: MultivariateProfile,
        quantiles: Mapping[str, Any],
        config: MultivariateConfig,
        windows: WindowTestConfig,
    ) -> None:
        self.config = config
        self.windows = windows
        self.features = list(section.features[: config.max_features])
        d = len(self.features)
        self._r0 = np.asarray(section.correlation, dtype=np.float64)[:d, :d]
        self._m = section.n_rows
        self._scale = section.scale
        self._quantiles, self._lengths = _padded([np.asarray(quantiles[n], dtype=np.float64) for n in self.features])
        self.active = False
        self.last: WindowStatistic | None = None
        self.bucket: float | None = None
        self._reset()

    def _reset(self) -> None:
        d = len(self.features)
        self.rows = 0  # events of the open window
        self.complete = 0  # of them, rows with every feature present
        self.sums = np.zeros(d)
        self.cross = np.zeros((d, d))

    def update(self, names: list[str], values: np.ndarray, event_times: np.ndarray) -> list[MultivariateDecision]:
        """Feed a batch (numeric matrix with columns ``names``); the decisions of the windows it closes."""
        n = values.shape[0] if values.ndim == 2 else 0
        if not self.config.enabled or not self.windows.enabled:
            return []
        index = {name: j for j, name in enumerate(names)}
        x = np.full((n, len(self.features)), np.nan)
        for k, name in enumerate(self.features):
            j = index.get(name)
            if j is not None:
                x[:, k] = values[:, j]
        z = _scores_kernel(x, self._quantiles, self._lengths, SCORE_CLIP_LO)
        cuts, self.bucket = window_cuts(self.windows, n, event_times, self.rows, self.bucket)
        out: list[MultivariateDecision] = []
        start = 0
        for cut, row in cuts:
            self._accumulate(z, start, cut)
            start = cut
            decision = self._evaluate(row)
            if decision is not None:
                out.append(decision)
            self._reset()
        self._accumulate(z, start, n)
        return out

    def _accumulate(self, z: np.ndarray, a: int, b: int) -> None:
        if b <= a:
            return
        self.rows += b - a
        self.complete += int(_sums_kernel(z, a, b, self.sums, self.cross))

    def _evaluate(self, row: int) -> MultivariateDecision | None:
        if self.complete < self.config.min_rows:
            return None
        stat = window_statistic(self.complete, self.sums, self.cross, self._r0, self._m, self._scale)
        if stat is None:
            return None
        self.last = stat
        cfg = self.config
        status: Status
        if not self.active and stat.p_value < cfg.alpha and stat.effect > cfg.min_kl:
            status = "drift"
        elif self.active and stat.effect <= cfg.min_kl * self.windows.resolve_ratio:
            status = "resolved"
        else:
            return None
        self.active = status == "drift"
        return MultivariateDecision(row, status, stat.effect, cfg.min_kl, self.complete, self.rows, stat.p_value)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The open window and the episode, as plain numbers and arrays."""
        return {
            "features": list(self.features),
            "rows": self.rows,
            "complete": self.complete,
            "sums": self.sums.copy(),
            "cross": self.cross.copy(),
            "bucket": self.bucket,
            "active": self.active,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict` (of a monitor on the same features)."""
        if list(state["features"]) != self.features:
            raise ValueError("multivariate state is for other features than the profile's")
        d = len(self.features)
        self.rows = int(state["rows"])
        self.complete = int(state["complete"])
        self.sums = np.asarray(state["sums"], dtype=np.float64).reshape(d)
        self.cross = np.asarray(state["cross"], dtype=np.float64).reshape(d, d)
        bucket = state["bucket"]
        self.bucket = float(bucket) if bucket is not None and math.isfinite(float(bucket)) else None
        self.active = bool(state["active"])

    # ------------------------------------------------------------------ the bank's view
    def signals(self, names: list[str], values: np.ndarray, event_times: np.ndarray) -> list[DriftSignal]:
        """:meth:`update` as the bank's DriftSignals: feature ``@multivariate``, detector
        ``multivariate``, statistic the effect (nats per row), threshold ``min_kl``; the window
        counts its complete rows (``missing_ratio``: the share of events with a feature missing)."""
        reference = WindowSummary(count=self._m, mean=None, std=None, quantiles={}, missing_ratio=None)
        out = []
        for d in self.update(names, values, event_times):
            window = WindowSummary(
                count=d.rows, mean=None, std=None, quantiles={}, missing_ratio=1.0 - d.rows / max(d.events, 1)
            )
            out.append(
                DriftSignal(d.row, FEATURE, DETECTOR, d.status, d.statistic, STATISTIC, d.threshold, window, reference)
            )
        return out

    def status(self) -> FeatureStatus:
        """The gauges' read-out: in an episode or not, the last tested window's effect."""
        scores = {STATISTIC: self.last.effect} if self.last is not None else {}
        return FeatureStatus(
            feature=FEATURE, live_mean=None, missing_ratio=None, drift={DETECTOR: self.active}, scores=scores
        )


def monitor_for(config: BankConfig, profile: ReferenceProfile | None) -> MultivariateMonitor | None:
    """The bank's multivariate monitor: when the profile has a ``multivariate`` section and the
    test is enabled (None otherwise: zero-config streams have no reference dependence)."""
    if profile is None or profile.multivariate is None or not config.multivariate.enabled:
        return None
    quantiles = {n: p.quantiles for n, p in profile.features.items() if isinstance(p, NumericProfile)}
    return MultivariateMonitor(profile.multivariate, quantiles, config.multivariate, config.window_tests)
