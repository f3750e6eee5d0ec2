"""Window tests: a window of live values against the training reference.

Every distribution test reports an *effect*: its distance with the small-sample bias taken
out (:func:`effect`; a window of live values drawn from the reference itself still shows a
distance of about its noise floor, 0.018 JS at 5,000 values, and that floor is removed).
The test's threshold is the **minimum meaningful change**, and a window is flagged when

1. the distance is significant for a window that small (p-value under "same distribution"
   below ``alpha``, one in a million by default, corrected across the model's tests by
   Bonferroni or Benjamini-Hochberg: small windows come by the thousand, so 0.1 % would
   page), **and**
2. the effect passes the cut-off (:func:`cut_off`): ``decision_ratio`` x the minimum
   (0.75 by default), between half the minimum and the minimum, so the noise of a window
   can neither hide a change at the minimum nor raise one at half of it; on windows too
   small for that (under about 5,000 values) the cut-off rises until half the minimum
   stays quiet. Measured (``docs/detection.md``): at 5,000 values per window a change at
   the minimum is flagged in every window, one at half of it in none; at 1,000, half the
   minimum in none still, the minimum in 15-66 % of windows.

p-value tests alone flag every negligible difference once windows are large (the trap
Evidently describes); raw distances against a fixed cut-off are a knife edge (a change
sitting at the threshold is caught in one window and missed in the next) and are
inflated by noise on small windows.

Numeric features are binned on the reference's quantile grid (101 points by default), so
a window costs a fixed ~100 counters per feature whatever its size:

* ``psi`` — population stability index over the 10 reference deciles
  (< 0.1 stable, 0.1-0.25 moderate, > 0.25 major: the usual credit-scoring reading);
* ``ks`` — Kolmogorov-Smirnov distance, sup |F_live - F_ref| on the quantile grid;
* ``js`` — Jensen-Shannon distance (base 2, in [0, 1]) over the deciles;
* ``wasserstein`` — Wasserstein-1 distance on the grid, in reference standard deviations.

Categorical features: ``chi2`` (Cramér's V of the Pearson chi-square, in [0, 1]) and
``js``, both over the categories that had a share in training only (values never seen in
training are ``new_category``'s job: a share of them is not a change of the training
shares, and no smoothing constant enters the effect size), ``new_category`` (share of
values never seen in training).

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


KS_NULL_MEAN = math.sqrt(math.pi / 2.0) * math.log(2.0)  # mean of Kolmogorov's distribution


def noise_inverse(n: int, m: int) -> float:
    """``1/n + 1/m``: the sampling variance scale of a window of ``n`` against ``m`` reference values."""
    return (1.0 / n if n > 0 else math.inf) + (1.0 / m if m > 0 else 0.0)


def effect(test: str, value: float, n: int, m: int, bins: int, null_mean: float | None = None) -> float:
    """The distance ``value`` of a window with its small-sample bias taken out.

    Chi-square family (a squared distance is a divergence whose noise adds, on average,
    its degrees of freedom x ``1/n + 1/m``): ``psi`` minus ``(bins - 1) inv``; ``js`` and
    ``chi2`` (Cramér's V) as the square root of their squares minus their expectation under
    "no change" (``(bins - 1) inv / (8 ln 2)`` and ``inv``). Sup and L1 distances (``ks``,
    ``wasserstein``), whose noise adds about in quadrature: ``sqrt(d^2 - E0[d]^2)``, with
    E0 the mean under "no change" (Kolmogorov's, 0.87 sqrt(inv), for ``ks``; ``null_mean``
    from the grid for ``wasserstein``). Other tests are shares, returned as they are.

    >>> round(effect("js", 0.0182, 5000, 100_000, 10), 4), round(effect("js", 0.105, 5000, 100_000, 10), 4)
    (0.0, 0.1034)
    """
    if n <= 0:
        return 0.0
    inv = noise_inverse(n, m)
    df = max(bins - 1, 1)
    if test == "psi":
        return max(value - df * inv, 0.0)
    if test == "js":
        return math.sqrt(max(value * value - df * inv / (8.0 * math.log(2.0)), 0.0))
    if test == "chi2":
        return math.sqrt(max(value * value - inv, 0.0))
    if test == "ks":
        return math.sqrt(max(value * value - KS_NULL_MEAN**2 * inv, 0.0))
    if test == "wasserstein":
        e0 = null_mean if null_mean is not None else 0.0
        return math.sqrt(max(value * value - e0 * e0, 0.0))
    return value


def noncentral_chi2_quantile(z: float, df: int, lam: float) -> float:
    """Upper quantile of chi-square(df, non-centrality lam) at the normal tail of ``z``.

    Patnaik's approximation (c chi-square(h), the first two moments matched) with
    Wilson-Hilferty's cube-root normal quantile of chi-square(h).

    >>> round(noncentral_chi2_quantile(1.6449, 9, 0.0), 1)  # exact: 16.9
    16.9
    """
    c = (df + 2.0 * lam) / (df + lam)
    h = (df + lam) ** 2 / (df + 2.0 * lam)
    a = 2.0 / (9.0 * h)
    return c * h * max(1.0 - a + z * math.sqrt(a), 0.0) ** 3


HALF_MINIMUM_Z = 4.0  # a change of half the minimum passes the cut-off in about 3e-5 of windows


def cut_off(test: str, minimum: float, ratio: float, n: int, m: int, bins: int, spread: float = 0.0) -> float:
    """The effect a window of ``n`` values must pass: ``max(ratio x minimum, guard)``.

    ``guard`` is the upper tail (``HALF_MINIMUM_Z`` sds, about 3e-5 of windows) of the
    effect measured on a window of this size when the change is exactly half the minimum.
    On small windows the cut-off rises to it, so half the minimum stays quiet whatever the
    window; from about 5,000 values (the default minimums) it is ``ratio x minimum``.
    The noise of the effect at half the minimum: ``psi``, ``js`` and ``chi2`` are
    non-central chi-squares (:func:`noncentral_chi2_quantile`); ``ks`` a CDF error, at most
    0.5 sqrt(inv) sd; ``wasserstein`` the trimmed integral of one, ``spread`` sqrt(inv) sd
    (:attr:`NumericGrid.wasserstein_spread`).

    >>> round(cut_off("ks", 0.1, 0.75, 5000, 0, 0), 3), round(cut_off("ks", 0.1, 0.75, 1000, 0, 0), 3)
    (0.078, 0.113)
    """
    half = 0.5 * minimum
    inv = noise_inverse(n, m)
    df = max(bins - 1, 1)
    z = HALF_MINIMUM_Z
    if test in ("psi", "js", "chi2"):
        # the statistic in chi-square units: divergence x scale / inv, E = df + lambda
        scale = {"psi": 1.0, "js": 8.0 * math.log(2.0), "chi2": float(df)}[test]
        squared = test != "psi"  # js and V are square roots of their divergences
        lam = scale * (half * half if squared else half) / inv
        excess = (noncentral_chi2_quantile(z, df, lam) - df) * inv / scale  # bias-corrected, as effect()
        guard = math.sqrt(max(excess, 0.0)) if squared else excess
    elif test == "ks":
        guard = half + z * 0.5 * math.sqrt(inv)
    elif test == "wasserstein":
        guard = half + z * spread * math.sqrt(inv)
    else:
        return minimum
    return max(ratio * minimum, guard)


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
        # sd of the trimmed integral of a Brownian-bridge CDF error, per sqrt(1/n + 1/m), in stds
        g = np.diff(self.points)[self.trim]
        f = self.ref_cdf[:-1][self.trim]
        cov = np.minimum.outer(f, f) - np.outer(f, f)
        self.wasserstein_spread = float(math.sqrt(max(float(g @ cov @ g), 0.0)) / self.ref_std)
        self._gaps = g
        # E|live CDF error| = sqrt(2/pi) sqrt(F (1 - F) inv): its trimmed integral per sqrt(inv)
        unit = np.sqrt(np.clip(f * (1.0 - f), 0.0, None))
        self._null_unit = float(math.sqrt(2.0 / math.pi) * np.sum(unit * g) / self.ref_std)

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
        diff = np.abs(self.live_cdf(counts) - self.ref_cdf)[:-1][self.trim]
        return float(np.sum(diff * self._gaps) / self.ref_std)

    def wasserstein_null_mean(self, inv: float) -> float:
        """Mean of :meth:`wasserstein` for a window drawn from the reference itself.

        The live CDF's error at each grid point is about normal with variance
        F (1 - F) ``inv`` (``inv = 1/n + 1/m``), so E|error| = sqrt(2/pi) sd, summed over the
        same trimmed intervals.
        """
        return self._null_unit * math.sqrt(inv)

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


def training_cells(live: np.ndarray, ref: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The cells that had a share in training: (live shares renormalised, reference shares, live count).

    Values never seen in training (and any cell with no training share) are left out, so a
    shares test measures how the training categories' shares moved, and its effect size does
    not depend on a smoothing constant for an empty training cell.

    >>> live, ref, n = training_cells(np.array([0.5, 0.3, 0.0, 0.2]), np.array([0.6, 0.4, 0.0, 0.0]), 100)
    >>> live.round(3).tolist(), ref.tolist(), n
    ([0.625, 0.375], [0.6, 0.4], 80)
    """
    keep = ref > 0
    share = float(live[keep].sum())
    cells = live[keep] / share if share > 0 else live[keep]
    return cells, ref[keep] / ref[keep].sum(), int(round(n * share))


def cramers_v(live: np.ndarray, ref: np.ndarray, n: int) -> float:
    """Cramér's V of the one-sample Pearson chi-square of ``n`` live values against ``ref``.

    Over the cells with a reference share (give it :func:`training_cells`); a cell with no
    reference share is left out rather than smoothed.

    >>> round(cramers_v(np.array([0.3, 0.3, 0.2, 0.1, 0.1]), np.array([0.4, 0.3, 0.15, 0.1, 0.05]), 5000), 3)
    0.151
    """
    keep = ref > 0
    bins = max(int(keep.sum()), 2)
    e = ref[keep]
    chi2 = n * float(np.sum((live[keep] - e) ** 2 / e))
    return math.sqrt(chi2 / (n * (bins - 1))) if n else 0.0
