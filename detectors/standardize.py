"""What the change detectors see of a feature: its values standardised by the reference, clipped.

``z = clip((x - mean) / std, lo, hi)``. Standardising makes a detector's parameters mean
the same for every feature (a shift of 1 is one reference standard deviation); the clip
(winsorising) keeps single extreme values of heavy-tailed features from tripping ADWIN
or Page-Hinkley, while a shift of the bulk moves the clipped mean as much as before.
The bank applies this to live values, calibration to the values it simulates: one rule,
so calibrated thresholds hold for what the bank does.

>>> import numpy as np
>>> std = reference_std(10.0, 2.0)
>>> lo, hi = clip_bounds(5.34, 14.66, 10.0, std)  # the reference's 1st and 99th percentiles
>>> standardize(np.array([10.0, 12.0, 100.0, np.nan]), 10.0, std, lo, hi).round(2).tolist()
[0.0, 1.0, 3.5, nan]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["clip_bounds", "profile_clip_bounds", "reference_std", "standardize"]


def reference_std(mean: float, std: float) -> float:
    """The scale values are divided by: the reference's ``std``, or, for a constant
    reference (no scale), a thousandth of its magnitude (or 1), so any change is still a
    large, finite shift.

    >>> reference_std(5.0, 2.0), reference_std(7.0, 0.0), reference_std(0.0, 0.0)
    (2.0, 0.007, 1.0)
    """
    return std if std > 0 else (abs(mean) * 1e-3 or 1.0)


def clip_bounds(p01: float, p99: float, mean: float, std: float) -> tuple[float, float]:
    """Winsorising bounds in standardised units from the reference's 1st/99th percentiles.

    Change detectors see ``z`` clipped to ``[z(p01) - w, z(p99) + w]`` with ``w`` a quarter
    of that range (about +-3.5 for normal data): single extreme values (heavy tails) no
    longer trip ADWIN or Page-Hinkley, while a shift of the bulk moves the clipped mean
    as much as before. Values outside the training range are ``out_of_range``'s job.

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
    last = len(quantiles) - 1
    return clip_bounds(quantiles[round(0.01 * last)], quantiles[round(0.99 * last)], mean, std)


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
    return np.clip((x - mean) / std, lo, hi)
