"""The shared distribution functions (detectors/_distributions.py) and their callers."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from driftsentinel.detectors import multivariate, seasonal, sequential
from driftsentinel.detectors._distributions import (
    grid_cdf,
    ndtr,
    ndtri,
    ndtri_acklam,
    normal_cdf,
    normal_quantile,
)

#: Probabilities from 1e-300 to 1 - 1e-16: both tails on a log scale, the middle evenly.
LOWER = np.logspace(-300, -1, 1500)
MIDDLE = np.linspace(0.1, 0.9, 801)
UPPER = 1.0 - np.logspace(-16, -1, 1500)


def _relative_error(values: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Relative error against the standard library's ``inv_cdf`` (Wichura's AS 241, ~1e-16)."""
    reference = np.array([NormalDist().inv_cdf(float(v)) for v in p])
    return np.abs(values - reference) / np.maximum(np.abs(reference), 1e-300)


def test_ndtri_accuracy_over_both_tails() -> None:
    refined = {name: normal_quantile(p) for name, p in (("lower", LOWER), ("middle", MIDDLE), ("upper", UPPER))}
    assert _relative_error(refined["lower"], LOWER).max() < 1e-14
    assert _relative_error(refined["middle"], MIDDLE).max() < 1e-12
    assert _relative_error(refined["upper"], UPPER).max() < 1.2e-9  # Phi(x) - p cancels near 1
    for p in (LOWER, MIDDLE, UPPER):
        acklam = np.array([ndtri_acklam(float(v)) for v in p])
        assert _relative_error(acklam, p).max() < 1.2e-9
        # the scalar kernels and the array function are the same function
        assert np.array_equal(np.array([ndtri(float(v)) for v in p]), normal_quantile(p))


def test_ndtri_edges_and_symmetry() -> None:
    for f in (ndtri, ndtri_acklam):
        assert f(0.0) == -math.inf and f(1.0) == math.inf
        assert f(-0.5) == -math.inf and f(1.5) == math.inf
        assert math.isnan(f(math.nan))
        assert f(0.5) == 0.0
    got = normal_quantile(np.array([0.0, 1.0, np.nan, 0.5]))
    assert got[0] == -np.inf and got[1] == np.inf and np.isnan(got[2]) and got[3] == 0.0
    p = np.linspace(0.001, 0.499, 499)
    np.testing.assert_allclose(normal_quantile(p), -normal_quantile(1.0 - p), rtol=1e-10)


def test_ndtr_round_trip_and_edges() -> None:
    p = np.r_[LOWER[::10], MIDDLE[::10]]
    np.testing.assert_allclose(normal_cdf(normal_quantile(p)), p, rtol=2e-12)  # x^2 times ndtri's error
    assert ndtr(-math.inf) == 0.0 and ndtr(math.inf) == 1.0 and math.isnan(ndtr(math.nan))
    x = np.linspace(-8.0, 8.0, 161)
    np.testing.assert_allclose(normal_cdf(x), [NormalDist().cdf(float(v)) for v in x], rtol=0, atol=1e-15)


def _grid_cdf_by_sampling(q: np.ndarray, v: float, levels: np.ndarray) -> tuple[float, float]:
    """``P(X < v)`` and ``P(X <= v)`` for the piecewise-linear quantile function through ``q``,
    from its values at ``levels`` (a fine, even grid of probabilities)."""
    values = np.interp(levels, np.linspace(0.0, 1.0, q.size), q)
    return float(np.mean(values < v)), float(np.mean(values <= v))


@pytest.mark.parametrize(
    "q",
    [
        np.array([0.0, 1.0, 1.0, 2.0, 2.0]),
        np.r_[np.zeros(30), np.linspace(0.0, 1.0, 41), np.ones(30)],
        np.sort(np.random.default_rng(3).normal(size=101)),
        np.array([5.0, 5.0, 5.0]),
    ],
)
def test_grid_cdf_below_and_mid_rank(q: np.ndarray) -> None:
    """``mid_ties=False`` is ``P(X < v)``; ``mid_ties=True`` the mid-rank ``(P(X < v) + P(X <= v)) / 2``
    at a value the grid repeats (they agree elsewhere); 0 below the grid, 1 above it."""
    levels = np.linspace(0.0, 1.0, 400_001)
    between = (q[:-1] + q[1:]) / 2.0
    for v in np.r_[q, between, q[0] - 1.0, q[-1] + 1.0]:
        below, at_or_below = _grid_cdf_by_sampling(q, float(v), levels)
        assert grid_cdf(q, float(v), False) == pytest.approx(below, abs=1e-5)
        assert grid_cdf(q, float(v), True) == pytest.approx((below + at_or_below) / 2.0, abs=1e-5)
    assert grid_cdf(q, math.nan, True) == 0.0


def test_callers_share_the_helpers() -> None:
    """The multivariate test, the shape CUSUM and the seasonal simulator use these functions."""
    q = np.r_[np.zeros(30), np.linspace(0.0, 1.0, 41), np.ones(30)]
    x = np.r_[np.linspace(-0.5, 1.5, 201), q]
    assert np.array_equal(multivariate.reference_cdf(x, q), [grid_cdf(q, float(v), True) for v in x])
    assert [sequential._cdf_below(q, float(v)) for v in x] == [grid_cdf(q, float(v), False) for v in x]
    z = np.random.default_rng(0).normal(size=(50, 1))
    scores = multivariate.normal_scores(z, [np.quantile(z, np.linspace(0, 1, 101))])[:, 0]
    u = np.clip(multivariate.reference_cdf(z[:, 0], np.quantile(z, np.linspace(0, 1, 101))), 0.0005, 0.9995)
    assert np.array_equal(scores, [ndtri_acklam(float(v)) for v in u])
    series = np.random.default_rng(1).normal(size=20)
    ranks = np.argsort(np.argsort(series)) + 1
    seasonal_scores = seasonal.normal_scores(series)
    assert seasonal_scores is not None
    assert np.array_equal(seasonal_scores, normal_quantile(ranks / 21.0))
