"""FeatureSketch: moments, extremes, DDSketch quantile bound, merge, state round trip."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import FeatureSketch
from detectors._state import to_builtin


def data(seed: int, n: int, F: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cols = [rng.normal(0, 1, n), rng.lognormal(0, 2, n), -rng.exponential(5, n),
            np.round(rng.normal(0, 3, n)), rng.normal(1e9, 1e6, n), rng.normal(0, 1e-6, n)]
    X = np.stack([cols[i % len(cols)] for i in range(F)], axis=1) if F else np.zeros((n, 0))
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


def check_against_numpy(s: FeatureSketch, X: np.ndarray) -> None:
    present = ~np.isnan(X)
    np.testing.assert_array_equal(s.count, present.sum(0))
    np.testing.assert_array_equal(s.missing, (~present).sum(0))
    for f in range(X.shape[1]):
        col = X[present[:, f], f]
        if col.size == 0:
            assert np.isnan(s.mean[f]) and np.isnan(s.quantile(0.5)[f])
            continue
        assert s.min[f] == col.min() and s.max[f] == col.max()
        np.testing.assert_allclose(s.mean[f], col.mean(), rtol=1e-9, atol=1e-12 * np.abs(col).max())
        if col.size > 1:
            np.testing.assert_allclose(s.variance[f], col.var(ddof=1), rtol=1e-9, atol=1e-300)
        for q in (0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 1.0):
            exact = np.quantile(col, q, method="lower")
            est = s.quantile(q)[f]
            bound = s.alpha * abs(exact) * (1 + 1e-9) + (s.min_value if abs(exact) < s.min_value else 0.0)
            assert abs(est - exact) <= bound, (f, q, est, exact)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000), F=st.integers(1, 6),
       cut=st.floats(0, 1), batch=st.integers(1, 500))
def test_matches_numpy_and_merge_equals_whole(seed, n, F, cut, batch):
    X = data(seed, n, F)
    whole = FeatureSketch(F)
    for a in range(0, n, batch):
        whole.update(X[a:a + batch])
    check_against_numpy(whole, X)
    c = int(cut * n)
    left, right = FeatureSketch(F), FeatureSketch(F)
    left.update(X[:c])
    right.update(X[c:])
    merged = left.merge(right)
    check_against_numpy(merged, X)
    for name in ("count", "missing", "min", "max"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name))
    np.testing.assert_array_equal(merged._pos, whole._pos)
    np.testing.assert_array_equal(merged._neg, whole._neg)
    for q in (0.1, 0.5, 0.9):
        np.testing.assert_array_equal(merged.quantile(q), whole.quantile(q))


@pytest.mark.parametrize("codec", ["json", "msgpack", "raw"])
def test_state_round_trip(codec):
    X = data(1, 2000, 6)
    s = FeatureSketch(6)
    s.update(X[:1000])
    state = s.state_dict()
    if codec == "json":
        state = json.loads(json.dumps(to_builtin(state), allow_nan=False))
    elif codec == "msgpack":
        state = msgpack.unpackb(msgpack.packb(to_builtin(state)), raw=False)
    t = FeatureSketch.from_state(state)
    s.update(X[1000:])
    t.update(X[1000:])
    for name in ("count", "missing", "mean", "variance", "min", "max"):
        np.testing.assert_array_equal(getattr(s, name), getattr(t, name))
    np.testing.assert_array_equal(s.quantile(0.3), t.quantile(0.3))


def test_zero_negatives_extremes_reset_add_features():
    s = FeatureSketch(2)
    s.update(np.array([[0.0, -1.0], [0.0, -2.0], [1e-300, 1e300], [-0.0, np.nan]]))
    assert s.quantile(0.5)[0] == 0.0
    assert s.quantile(1.0)[1] == 1e300  # beyond max_value: clamped into the exact [min, max]
    assert s.quantile(0.0)[1] == pytest.approx(-2.0, rel=0.01)
    s.add_features(1)
    assert s.n_features == 3 and s.count.tolist() == [4, 3, 0]
    s.reset(np.array([True, False, False]))
    assert s.count.tolist() == [0, 3, 0]
    with pytest.raises(ValueError):
        s.merge(FeatureSketch(3, alpha=0.02))
