"""Distribution functions the detectors share: the standard normal CDF and its inverse, and the
CDF of a reference read off its quantile grid.

``ndtr``, ``ndtri``, ``ndtri_acklam`` and ``grid_cdf`` are compiled scalar functions for use
inside numba kernels (callable from Python too); :func:`normal_cdf` and :func:`normal_quantile`
apply ``ndtr`` and ``ndtri`` to arrays.

``ndtri_acklam`` is Acklam's rational approximation of ``Phi^-1``; ``ndtri`` follows it with
one Newton step on ``Phi(x) - p`` (``Phi`` through ``erfc``), which costs an ``erfc`` and an
``exp`` per value (about 25 ns: the multivariate test's normal scores, clipped to
``[5e-4, 1 - 5e-4]`` and read as correlations, use the approximation alone). Measured against
``scipy.special.ndtri`` (relative error, largest): ``ndtri_acklam`` 1.1e-9 everywhere;
``ndtri`` 3e-14 for ``p`` from 0.1 to 0.9, 2e-11 for ``p`` drawn uniformly in (0, 1), 1e-15 in
the lower tail (``p`` from 1e-300 to 0.1), and in the upper tail (``p`` from 0.9 to 1 - 1e-16) the approximation's
1.1e-9 (the step cannot gain on ``Phi(x) - p`` with both near 1). Both give ``-inf`` at 0,
``inf`` at 1, and NaN for NaN.

>>> import numpy as np
>>> normal_quantile(np.array([0.0, 0.025, 0.5, 1.0, np.nan])).round(6).tolist()
[-inf, -1.959964, 0.0, inf, nan]
>>> normal_cdf(np.array([-1.959964, 0.0])).round(6).tolist()
[0.025, 0.5]
>>> grid = np.array([0.0, 1.0, 1.0, 2.0, 2.0])
>>> [grid_cdf(grid, v, True) for v in (-1.0, 0.5, 1.0, 1.5, 2.0, 3.0)]
[0.0, 0.125, 0.375, 0.625, 0.875, 1.0]
>>> [grid_cdf(grid, v, False) for v in (0.5, 1.0, 2.0)]
[0.125, 0.25, 0.75]
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba as nb
import numpy as np

__all__ = ["bisect", "grid_cdf", "ndtr", "ndtri", "ndtri_acklam", "normal_cdf", "normal_quantile"]


@nb.njit(cache=True, error_model="numpy", nogil=True)
def ndtr(x: float) -> float:  # pragma: no cover - compiled
    """``Phi(x)``, the standard normal distribution function (``erfc``: accurate in the lower tail)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@nb.njit(cache=True, error_model="numpy", nogil=True)
def ndtri_acklam(p: float) -> float:  # pragma: no cover - compiled
    """``Phi^-1(p)`` by Acklam's rational approximation alone (relative error under 1.2e-9, no
    ``erfc`` or ``exp``): for kernels whose scores need no more (see :func:`ndtri`)."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    a = (
        -39.69683028665376,
        220.9460984245205,
        -275.9285104469687,
        138.3577518672690,
        -30.66479806614716,
        2.506628277459239,
    )
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572)
    c = (
        -0.007784894002430293,
        -0.3223964580411365,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    )
    d = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
    elif p > 1.0 - 0.02425:
        q = math.sqrt(-2.0 * math.log(1.0 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
    else:
        q = p - 0.5
        r = q * q
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
        )
    return x


@nb.njit(cache=True, error_model="numpy", nogil=True)
def ndtri(p: float) -> float:  # pragma: no cover - compiled
    """``Phi^-1(p)``: :func:`ndtri_acklam`, then one Newton step on ``Phi(x) - p``."""
    x = ndtri_acklam(p)
    if p <= 0.0 or p >= 1.0:
        return x
    e = ndtr(x) - p
    return x - e * math.sqrt(2.0 * math.pi) * math.exp(x * x / 2.0)


@nb.vectorize(["float64(float64)"], cache=True)
def _ndtr_ufunc(x: float) -> float:  # pragma: no cover - compiled
    return ndtr(x)


@nb.vectorize(["float64(float64)"], cache=True)
def _ndtri_ufunc(p: float) -> float:  # pragma: no cover - compiled
    return ndtri(p)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """:func:`ndtr` of each value: the standard normal distribution function."""
    return np.asarray(_ndtr_ufunc(np.asarray(x, dtype=np.float64)))


def normal_quantile(p: np.ndarray) -> np.ndarray:
    """:func:`ndtri` of each probability: the standard normal quantile function."""
    return np.asarray(_ndtri_ufunc(np.asarray(p, dtype=np.float64)))


@nb.njit(cache=True, error_model="numpy", nogil=True)
def grid_cdf(q: np.ndarray, v: float, mid_ties: bool) -> float:  # pragma: no cover - compiled
    """The CDF at ``v`` of the reference whose quantiles at 0, 1/K, ..., 1 are ``q`` (sorted):
    linear between distinct quantiles, 0 below the first and 1 above the last. At a value the
    grid holds more than once (a value the reference repeats): with ``mid_ties`` the middle
    level of its run (the mid-rank), else the run's first level (``P(X < v)``). A NaN ``v`` is 0."""
    k = q.size - 1
    lo, hi = 0, q.size  # left: the number of quantiles < v
    while lo < hi:
        mid = (lo + hi) // 2
        if q[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    left = lo
    if mid_ties:
        hi = q.size  # right: the number of quantiles <= v
        while lo < hi:
            mid = (lo + hi) // 2
            if q[mid] <= v:
                lo = mid + 1
            else:
                hi = mid
        right = lo
        if right > left:  # v is a run of equal quantiles q[left..right-1]: their middle level
            return (left + right - 1) / (2.0 * k)
    if left == 0:
        return 0.0
    if left > k:
        return 1.0
    return (left - 1 + (v - q[left - 1]) / (q[left] - q[left - 1])) / k


def bisect(f: Callable[[float], float], target: float, lo: float, hi: float, steps: int) -> float:
    """Where the increasing ``f`` crosses ``target`` in ``[lo, hi]``: the middle of the interval
    left after ``steps`` halvings (each keeps the half where ``f`` reaches ``target``)."""
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
