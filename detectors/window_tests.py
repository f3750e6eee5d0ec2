"""Window tests: a window of live values against the training reference.

Every test reports a *distance* and decides with two bars: the distance must pass its
threshold (an effect size that matters, independent of window size) **and** be
significant for a window that small (p-value under "same distribution" below
``alpha``, one in a million by default, corrected across the model's features by
Bonferroni or Benjamini-Hochberg: small windows come by the thousand, so 0.1 % would page).
p-value tests alone flag every negligible difference once windows are large (the trap
Evidently describes); distances alone are noisy on small windows. With both, the
tests behave the same from 500 to 1,000,000 values per window.

Numeric features are binned on the reference's quantile grid (101 points by default), so
a window costs a fixed ~100 counters per feature whatever its size:

* ``psi`` — population stability index over the 10 reference deciles
  (< 0.1 stable, 0.1-0.25 moderate, > 0.25 major: the usual credit-scoring reading);
* ``ks`` — Kolmogorov-Smirnov distance, sup |F_live - F_ref| on the quantile grid;
* ``js`` — Jensen-Shannon distance (base 2, in [0, 1]) over the deciles;
* ``wasserstein`` — Wasserstein-1 distance on the grid, in reference standard deviations.

Categorical features: ``chi2`` (Cramér's V of the Pearson chi-square, in [0, 1]),
``js`` over the categories, ``new_category`` (share of values never seen in training).

>>> import numpy as np
>>> grid = NumericGrid(np.quantile(np.random.default_rng(0).normal(size=100_000), np.linspace(0, 1, 101)), 100_000, 1.0)
>>> same = grid.counts(np.random.default_rng(1).normal(size=5000))
>>> moved = grid.counts(np.random.default_rng(2).normal(size=5000) + 0.5)
>>> [round(grid.ks(c), 2) for c in (same, moved)]
[0.01, 0.2]
>>> bool(psi(*grid.decile_probs(moved)) > psi(*grid.decile_probs(same)))
True
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-4  # smoothing of empty bins (PSI, JS)


def _smooth(p: np.ndarray) -> np.ndarray:
    p = np.maximum(p, EPS)
    return p / p.sum()


def psi(live: np.ndarray, ref: np.ndarray) -> float:
    """Population stability index of two probability vectors."""
    a, e = _smooth(live), _smooth(ref)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(live: np.ndarray, ref: np.ndarray) -> float:
    """Jensen-Shannon distance (sqrt of the divergence, base 2) of two probability vectors."""
    p, q = _smooth(live), _smooth(ref)
    m = 0.5 * (p + q)
    div = 0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m))
    return float(math.sqrt(max(div, 0.0)))


def chi2_sf(x: float, df: int) -> float:
    """Upper tail of chi-square(df) at ``x`` (Wilson-Hilferty normal approximation).

    >>> round(chi2_sf(27.88, 9), 4)  # exact: 0.0010
    0.0011
    """
    df = max(df, 1)
    if x <= 0:
        return 1.0
    a = 2.0 / (9.0 * df)
    z = ((x / df) ** (1.0 / 3.0) - (1.0 - a)) / math.sqrt(a)
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def p_value(test: str, value: float, n: int, m: int, bins: int) -> float:
    """Probability that sampling noise alone gives a distance at least ``value``.

    ``n`` live values, ``m`` reference values (0 = exact reference), ``bins`` categories or
    bins. Asymptotic: Kolmogorov's tail for ``ks``; n*PSI, 8 n ln2 JS and the Pearson
    statistic behind Cramér's V are ~chi-square(bins - 1); for ``wasserstein`` a
    sub-Gaussian tail in sqrt(n) W1 (a heuristic, conservative for light tails). Tests
    without a noise model (shares) return 0: their threshold alone decides.

    >>> p_value("ks", 0.02, 5000, 100_000, 0) > 0.01, p_value("ks", 0.1, 5000, 100_000, 0) < 1e-9
    (True, True)
    """
    if n <= 0:
        return 1.0
    inv = 1.0 / n + (1.0 / m if m > 0 else 0.0)
    df = max(bins - 1, 1)
    if test == "ks":
        return min(1.0, 2.0 * math.exp(-2.0 * value * value / inv))
    if test == "psi":
        return chi2_sf(value / inv, df)
    if test == "js":
        return chi2_sf(value * value * 8.0 * math.log(2.0) / inv, df)
    if test == "chi2":
        return chi2_sf(value * value * df / inv, df)
    if test == "wasserstein":
        return min(1.0, math.exp(-value * value / inv / 1.81))  # 1e-6 at 5 sqrt(inv)
    return 0.0


def family_passes(p_values: list[float], alpha: float, method: str) -> list[bool]:
    """Which of one window's p-values (all tests of all features) are significant.

    >>> family_passes([1e-9, 5e-7, 0.5], 1e-6, "bonferroni"), family_passes([1e-9, 5e-7, 0.5], 1e-6, "bh")
    ([True, False, False], [True, True, False])
    """
    k = len(p_values)
    if method == "none" or k == 0:
        return [p < alpha for p in p_values]
    if method == "bonferroni":
        return [p < alpha / k for p in p_values]
    order = sorted(range(k), key=lambda i: p_values[i])
    cutoff = -1
    for rank, i in enumerate(order, 1):
        if p_values[i] <= alpha * rank / k:
            cutoff = rank
    passed = [False] * k
    for rank, i in enumerate(order, 1):
        passed[i] = rank <= cutoff
    return passed


class NumericGrid:
    """A numeric reference as a CDF on its quantile grid, and live windows binned on it."""

    def __init__(self, quantiles: np.ndarray, ref_count: int, ref_std: float) -> None:
        q = np.asarray(quantiles, dtype=np.float64)
        self.points = np.unique(q)
        # F_ref at each distinct grid point: the last quantile level at that value.
        levels = np.linspace(0.0, 1.0, q.size)
        idx = np.searchsorted(q, self.points, side="right") - 1
        self.ref_cdf = levels[idx]
        self.ref_count = int(ref_count)
        self.ref_std = float(ref_std) if ref_std > 0 else 1.0
        deciles = q[np.round(np.linspace(0, q.size - 1, 11)[1:-1]).astype(int)]
        self.decile_idx = np.unique(np.searchsorted(self.points, deciles))
        lo, hi = np.searchsorted(self.points, [q[round(0.01 * (q.size - 1))], q[round(0.99 * (q.size - 1))]])
        self.trim = slice(int(lo), max(int(hi), int(lo)))  # grid intervals inside [p01, p99]

    @property
    def n_bins(self) -> int:
        return self.points.size + 1

    def counts(self, values: np.ndarray) -> np.ndarray:
        """Counts of finite ``values`` per bin ``(-inf, p0], (p0, p1], ..., (p_last, inf)``."""
        v = values[np.isfinite(values)]
        return np.bincount(np.searchsorted(self.points, v, side="left"), minlength=self.n_bins)

    def live_cdf(self, counts: np.ndarray) -> np.ndarray:
        n = counts.sum()
        return np.cumsum(counts[:-1]) / n if n else np.zeros(self.points.size)

    def ks(self, counts: np.ndarray) -> float:
        return float(np.max(np.abs(self.live_cdf(counts) - self.ref_cdf)))

    def wasserstein(self, counts: np.ndarray) -> float:
        """W1 on the grid between the reference's 1st and 99th percentiles, in reference stds.

        The outer intervals run to the reference's single most extreme values (a Student-t
        sample's maximum can be 100 stds out), so a sliver of CDF noise there would weigh
        more than the whole bulk; they are left out (the trimmed, robust W1).
        """
        gaps = np.diff(self.points)[self.trim]
        diff = np.abs(self.live_cdf(counts) - self.ref_cdf)[:-1][self.trim]
        return float(np.sum(diff * gaps) / self.ref_std)

    def decile_probs(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(live, reference) probabilities of the decile bins."""
        fl = np.r_[0.0, self.live_cdf(counts)[self.decile_idx], 1.0]
        fr = np.r_[0.0, self.ref_cdf[self.decile_idx], 1.0]
        return np.diff(fl), np.diff(fr)

    def quantile(self, counts: np.ndarray, q: float) -> float:
        """Approximate live quantile: the first grid point whose live CDF reaches ``q``."""
        cdf = self.live_cdf(counts)
        i = int(np.searchsorted(cdf, q, side="left"))
        return float(self.points[min(i, self.points.size - 1)])


def categorical_probs(
    live_counts: dict[str, int], ref_freqs: dict[str, float], ref_other: float, seen: set[str], overflow: int = 0
) -> tuple[np.ndarray, np.ndarray, float]:
    """(live, reference) probabilities over [top categories..., other, new] and the new share.

    ``overflow`` counts values whose category was past the vocabulary's capacity: never
    seen in training when ``seen`` lists every training category, else "other".

    >>> live, ref, new = categorical_probs({"a": 50, "b": 30, "z": 20}, {"a": 0.6, "b": 0.4}, 0.0, {"a", "b"})
    >>> live.tolist(), ref.tolist(), new
    ([0.5, 0.3, 0.0, 0.2], [0.6, 0.4, 0.0, 0.0], 0.2)
    """
    names = list(ref_freqs)
    n = sum(live_counts.values())
    live = np.zeros(len(names) + 2)
    pos = {c: i for i, c in enumerate(names)}
    for cat, k in live_counts.items():
        if cat in pos:
            live[pos[cat]] += k
        elif seen and cat not in seen:
            live[-1] += k  # never seen in training
        else:
            live[-2] += k  # "other" (without a full list, beyond the top K, new and other look alike)
    live[-1 if seen else -2] += overflow
    n += overflow
    ref = np.array([*ref_freqs.values(), ref_other, 0.0])
    live = live / n if n else live
    return live, ref, float(live[-1])


def cramers_v(live: np.ndarray, ref: np.ndarray, n: int) -> float:
    """Cramér's V of the one-sample Pearson chi-square of ``n`` live values against ``ref``."""
    keep = ref > 0
    bins = max(int(keep.sum()), 2)
    e = _smooth(ref)
    chi2 = n * float(np.sum((live - e) ** 2 / e))
    return math.sqrt(chi2 / (n * (bins - 1))) if n else 0.0
