"""FeatureSketch: moments, extremes, DDSketch quantile bound, merge, state round trip."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftsentinel.detectors import FeatureSketch
from driftsentinel.detectors._state import to_builtin


def data(seed: int, n: int, F: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cols = [
        rng.normal(0, 1, n),
        rng.lognormal(0, 2, n),
        -rng.exponential(5, n),
        np.round(rng.normal(0, 3, n)),
        rng.normal(1e9, 1e6, n),
        rng.normal(0, 1e-6, n),
    ]
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
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 3000),
    F=st.integers(1, 6),
    cut=st.floats(0, 1),
    batch=st.integers(1, 500),
)
def test_matches_numpy_and_merge_equals_whole(seed, n, F, cut, batch):
    X = data(seed, n, F)
    whole = FeatureSketch(F)
    for a in range(0, n, batch):
        whole.update(X[a : a + batch])
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


def check_limited_bound(s: FeatureSketch, X: np.ndarray) -> None:
    """The documented bound with ``bin_limit``: relative ``alpha`` down to ``M / R``, absolute ``M / R`` below."""
    assert s.bin_limit is not None
    gamma = (1 + s.alpha) / (1 - s.alpha)
    R = gamma ** ((s.bin_limit - 2) / 2)
    for f in range(X.shape[1]):
        col = X[~np.isnan(X[:, f]), f]
        if col.size == 0:
            continue
        for q in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99):
            exact = np.quantile(col, q, method="lower")
            est = s.quantile(q)[f]
            same_sign = col[col < 0] if exact < 0 else col[col > 0]
            M = np.abs(same_sign).max() if same_sign.size else 0.0
            bound = s.alpha * abs(exact) * (1 + 1e-9) + (s.min_value if abs(exact) < s.min_value else 0.0)
            if abs(exact) < M / R:
                bound = max(bound, M / R)
            assert abs(est - exact) <= bound, (f, q, est, exact, M / R)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 3000),
    F=st.integers(1, 6),
    cut=st.floats(0, 1),
    batch=st.integers(1, 500),
    limit=st.sampled_from([2, 16, 300, 1024]),
)
def test_bin_limit_keeps_its_bound_and_merges_exactly(seed, n, F, cut, batch, limit):
    X = data(seed, n, F)
    rng = np.random.default_rng(seed)
    X[rng.random(X.shape) < 0.05] = 1e-11 * rng.standard_normal()  # tiny magnitudes, far below the top
    whole = FeatureSketch(F, alpha=0.02, bin_limit=limit)
    for a in range(0, n, batch):
        whole.update(X[a : a + batch])
    check_limited_bound(whole, X)
    # the collapse depends only on the largest key: order, batching and merging do not matter
    c = int(cut * n)
    left, right = FeatureSketch(F, alpha=0.02, bin_limit=limit), FeatureSketch(F, alpha=0.02, bin_limit=limit)
    right.update(X[c:])
    left.update(X[:c])
    for one, other in ((left.take(np.arange(F)), right), (right.take(np.arange(F)), left)):
        merged = one.merge(other)
        np.testing.assert_array_equal(merged._bins, whole._bins)
        np.testing.assert_array_equal(merged._lo, whole._lo)
    # a state round trip, and a dense sketch's state re-read under the limit, give the same sketch
    dense = FeatureSketch(F, alpha=0.02)
    dense.update(X)
    for state in (whole.state_dict(), {**dense.state_dict(), "bin_limit": limit}):
        t = FeatureSketch.from_state(state)
        np.testing.assert_array_equal(t._bins, whole._bins)
        np.testing.assert_array_equal(t._lo, whole._lo)
        for q in (0.1, 0.5, 0.9):
            np.testing.assert_array_equal(t.quantile(q), whole.quantile(q))


def test_bin_limit_answers_like_dense_within_its_range_in_less_than_half_the_memory():
    X = data(5, 5000, 6)[:, [0, 1, 2, 3, 4]]  # magnitudes within 1e8 of each feature's largest
    dense, small = FeatureSketch(5, alpha=0.02), FeatureSketch(5, alpha=0.02, bin_limit=1024)
    dense.update(X)
    small.update(X)
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        np.testing.assert_array_equal(small.quantile(q), dense.quantile(q))
    assert small._bins.nbytes * 2 < dense._bins.nbytes


def test_counts_widen_past_uint16():
    s = FeatureSketch(2, bin_limit=64)
    s.update(np.ones((60_000, 2)))
    assert s._bins.dtype == np.uint16
    s.update(np.ones((10_000, 2)))
    assert s._bins.dtype == np.int32 and int(s._bins.max()) == 70_000
    t = FeatureSketch(2, bin_limit=64)
    t.update(np.ones((60_000, 2)))
    t.merge(FeatureSketch.from_state(t.state_dict()))
    assert t._bins.dtype == np.int32 and t.quantile(0.5).tolist() == [1.0, 1.0]
    assert FeatureSketch.from_state(s.state_dict())._bins.dtype == np.int32
    with pytest.raises(ValueError):
        s.merge(FeatureSketch(2))  # a different bin limit


def test_inconsistent_bucket_counts_are_refused():
    s = FeatureSketch(1, bin_limit=64)
    s.update(np.ones((3, 1)))
    state = s.state_dict()
    state["span_counts"] = state["span_counts"].astype(np.int64) * 10
    with pytest.raises(ValueError):
        FeatureSketch.from_state(state)


def old_sparse_state(s: FeatureSketch) -> dict:
    """The state format before bucket spans: (feature, key, count) per non-empty bucket."""
    state = {k: v for k, v in s.state_dict().items() if not k.startswith("span_") and k != "bin_limit"}
    for sg, sign in enumerate(("pos", "neg")):
        f, t = np.nonzero(s._bins[:, sg])
        state.update(
            {f"{sign}_feature": f, f"{sign}_key": t + s._lo[f, sg], f"{sign}_count": s._bins[f, sg, t].astype(np.int64)}
        )
    return state


def test_older_sparse_states_still_load():
    X = data(3, 3000, 6)
    dense, small = FeatureSketch(6, alpha=0.02), FeatureSketch(6, alpha=0.02, bin_limit=300)
    dense.update(X)
    small.update(X)
    old = old_sparse_state(dense)
    back = FeatureSketch.from_state(old)
    assert back.bin_limit is None
    np.testing.assert_array_equal(back._bins, dense._bins)
    limited = FeatureSketch.from_state({**old, "bin_limit": 300})  # as the live windows re-read it
    np.testing.assert_array_equal(limited._bins, small._bins)
    np.testing.assert_array_equal(limited._lo, small._lo)


def test_span_state_is_compact_and_checked():
    X = data(4, 5000, 6)
    s = FeatureSketch(6, alpha=0.02, bin_limit=1024)
    s.update(X)
    state = s.state_dict()
    sparse_bytes = sum(v.nbytes for k, v in old_sparse_state(s).items() if k.startswith(("pos_", "neg_")))
    assert state["span_counts"].nbytes * 4 < sparse_bytes
    bad = {**state, "span_counts": state["span_counts"][:-1]}
    with pytest.raises(ValueError):
        FeatureSketch.from_state(bad)
    bad = {**state, "span_first": state["span_first"] + 10_000}
    with pytest.raises(ValueError):
        FeatureSketch.from_state(bad)
