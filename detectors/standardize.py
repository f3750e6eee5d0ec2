"""What the change detectors see of a feature: its values standardised by the reference, clipped.

``z = clip((x - mean) / std, lo, hi)``. Standardising makes a detector's parameters mean
the same for every feature (a shift of 1 is one reference standard deviation); the clip
(winsorising) keeps single extreme values of heavy-tailed features from tripping ADWIN
or Page-Hinkley, while a shift of the bulk moves the clipped mean as much as before, up
to the bound. A level shift far outside the reference range is not erased: the clipped
values sit at the bound, a step of about 3.5 reference sds from the values before it,
which both detectors find in 9-15 values (measured, N(100, 1) doubling, +10 and +100
sds; unclipped: 0-4 values, the price of bounding what one value can do: Page-Hinkley
needs about 15 values at the bound to cross its threshold of 50). The step must be in
the detectors' past: the bank shows them the warm-up's values too, so a shift present
from the first monitored value is one. The evidence of a detection (its mean shift) is
computed on the unclipped values.
The bank applies this to live values, calibration to the values it simulates: one rule,
so calibrated thresholds hold for what the bank does.

>>> import numpy as np
>>> std = reference_std(10.0, 2.0)
>>> lo, hi = clip_bounds(5.34, 14.66, 10.0, std)  # the reference's 1st and 99th percentiles
>>> standardize(np.array([10.0, 12.0, 100.0, np.nan]), 10.0, std, lo, hi).round(2).tolist()
[0.0, 1.0, 3.5, nan]

Near-zero spreads are judged against the values' scale, here and nowhere else: a
spread below :data:`RELATIVE_FLOOR` of the magnitude is rounding, so the reference is
*constant* (:func:`is_constant`; the bank then watches it with its own detector, since
"how many stds" means nothing there), while a spread that is merely tiny in absolute
terms (values of 1e-300) is an ordinary spread, computed without underflow
(:func:`mean_std`).

>>> values = np.array([1.0, -1.0, 2.0, -2.0]) * 1e-300
>>> float(values.std(ddof=1)), mean_std(values)[1]  # the variance, 1e-600, underflows
(0.0, 1.825741858350554e-300)
>>> is_constant(0.0, 7.0, 7.0, 7.0), is_constant(1.8e-300, 0.0, -1.9e-300, 1.9e-300)
(True, False)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "RELATIVE_FLOOR",
    "clip_bounds",
    "is_constant",
    "mean_std",
    "profile_clip_bounds",
    "profile_percentiles",
    "reference_std",
    "spread_floor",
    "standardize",
]

#: A reference spread at or below this fraction of the values' magnitude is rounding noise,
#: not variation (float64 resolves 2e-16 of a value; measured quantities with a relative
#: spread under 1e-9 are rare): such a feature is constant.
RELATIVE_FLOOR = 1e-9
#: The floor of an all-zero feature (no magnitude to be relative to): the smallest normal float.
TINY = float(np.finfo(np.float64).tiny)
#: Magnitudes within this range have squares (variances) far from float64's under- and
#: overflow; outside it, ``mean_std`` computes on rescaled values.
_SAFE_SCALE = (1e-100, 1e100)


def spread_floor(mean: float, p01: float, p99: float) -> float:
    """The smallest spread that is variation, not rounding: :data:`RELATIVE_FLOOR` of the
    values' magnitude (``max(|mean|, |p01|, |p99|)``), at least :data:`TINY`. It is also
    how far a value may stray from a constant reference before it is a change.

    >>> spread_floor(1e6, 1e6, 1e6), spread_floor(0.0, 0.0, 0.0) == TINY
    (0.001, True)
    """
    return max(RELATIVE_FLOOR * max(abs(mean), abs(p01), abs(p99)), TINY)


def is_constant(std: float, mean: float, p01: float, p99: float) -> bool:
    """Is a reference with this ``std`` and these percentiles constant? Both its std and its
    1st-99th percentile range must be within :func:`spread_floor` (a profile whose std
    underflowed to 0 but whose quantiles spread is not constant).

    >>> is_constant(0.0, 7.0, 7.0, 7.0), is_constant(1e-12, 1e6, 1e6, 1e6), is_constant(0.0, 0.0, -1.0, 1.0)
    (True, True, False)
    """
    floor = spread_floor(mean, p01, p99)
    return not std > floor and not abs(p99 - p01) > floor


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample std (``ddof=1``) of a reference sample, without under- or overflow.

    Values of ordinary magnitude take numpy's sums as they are (bit for bit what the
    bank always computed, so detections on normal data do not move); values so small or
    large that their squares leave float64's range are divided by their magnitude first
    (a warm-up spread of 1e-300 would otherwise have variance 0 and std 0).

    >>> mean_std(np.array([1.0, 2.0, 3.0]))
    (2.0, 1.0)
    >>> [f"{v:.3g}" for v in mean_std(np.array([1.0, 2.0, 3.0]) * 1e200)]  # the squares would be inf
    ['2e+200', '1e+200']
    """
    scale = float(np.max(np.abs(values))) if values.size else 0.0
    if _SAFE_SCALE[0] < scale < _SAFE_SCALE[1] or scale == 0.0 or not np.isfinite(scale):
        return float(values.mean()), float(values.std(ddof=1))
    unit = values / scale
    return float(unit.mean()) * scale, float(unit.std(ddof=1)) * scale


def reference_std(mean: float, std: float, p01: float | None = None, p99: float | None = None) -> float:
    """The scale values are divided by: the reference's ``std``, or, for a constant
    reference (:func:`is_constant`: a spread under the floor relative to the values'
    scale, 0 included), a thousandth of its magnitude (or 1), so any change is still a
    large, finite shift. ``p01``/``p99`` (the reference's 1st and 99th percentiles, the
    mean when not given) widen the magnitude and tell an underflowed std from a constant.

    >>> reference_std(5.0, 2.0), reference_std(7.0, 0.0), reference_std(0.0, 0.0)
    (2.0, 0.007, 1.0)
    >>> reference_std(1e6, 1e-12), reference_std(0.0, 1e-300, -2.3e-300, 2.3e-300)
    (1000.0, 1e-300)
    """
    lo = mean if p01 is None else p01
    hi = mean if p99 is None else p99
    if not is_constant(std, mean, lo, hi):
        # std 0 with spread quantiles (an underflowed profile std): the normal-data std of that range
        return std if std > 0 else abs(hi - lo) / 4.65
    return max(abs(mean), abs(lo), abs(hi)) * 1e-3 or 1.0


def clip_bounds(p01: float, p99: float, mean: float, std: float) -> tuple[float, float]:
    """Winsorising bounds in standardised units from the reference's 1st/99th percentiles.

    Change detectors see ``z`` clipped to ``[z(p01) - w, z(p99) + w]`` with ``w`` a quarter
    of that range (about +-3.5 for normal data): single extreme values (heavy tails) no
    longer trip ADWIN or Page-Hinkley, while a shift of the bulk moves the clipped mean
    as much as before, up to the bound (a shift beyond it is a step to the bound).
    Values outside the training range are ``out_of_range``'s job.

    >>> [round(b, 1) for b in clip_bounds(-2.33, 2.33, 0.0, 1.0)]
    [-3.5, 3.5]
    """
    lo, hi = (p01 - mean) / std, (p99 - mean) / std
    w = (hi - lo) / 4.0 if hi > lo else 1.0
    return lo - w, hi + w


def profile_clip_bounds(quantiles: Sequence[float], mean: float, std: float) -> tuple[float, float]:
    """:func:`clip_bounds` from a profile's evenly spaced quantiles (the 1st and 99th
    percentile are the nearest entries of the grid).

    >>> q = np.linspace(-3.0, 3.0, 101).tolist()  # 101 levels: entry 1 is p01, entry 99 p99
    >>> [round(b, 2) for b in profile_clip_bounds(q, 0.0, 1.0)]
    [-4.41, 4.41]
    """
    return clip_bounds(*profile_percentiles(quantiles), mean, std)


def profile_percentiles(quantiles: Sequence[float]) -> tuple[float, float]:
    """The 1st and 99th percentile of a profile's evenly spaced quantiles (nearest entries).

    >>> profile_percentiles(np.linspace(0.0, 100.0, 101).tolist())
    (1.0, 99.0)
    """
    last = len(quantiles) - 1
    return float(quantiles[round(0.01 * last)]), float(quantiles[round(0.99 * last)])


def standardize(
    x: np.ndarray,
    mean: np.ndarray | float,
    std: np.ndarray | float,
    lo: np.ndarray | float = -np.inf,
    hi: np.ndarray | float = np.inf,
) -> np.ndarray:
    """``clip((x - mean) / std, lo, hi)``, per column when the arguments are arrays
    (NaN, a missing value, stays NaN). The default bounds do not clip (``winsorize: false``).

    >>> standardize(np.array([[1.0, 4.0]]), np.array([0.0, 2.0]), np.array([1.0, 2.0]), -0.5, 0.5).tolist()
    [[0.5, 0.5]]
    """
    d = x - mean
    if isinstance(d, np.ndarray) and d.dtype == np.float64:
        # the same operations in place: one [rows, features] array per call, not two (a
        # second large temporary freed per call cost page faults: 12 ns per value at 4,096 x 20)
        np.divide(d, std, out=d)
        return np.clip(d, lo, hi, out=d)
    return np.clip(d / std, lo, hi)
