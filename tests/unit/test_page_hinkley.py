"""Page-Hinkley kernel: exact parity with river's PageHinkley, state round trips, O(1) state."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftsentinel.detectors import PageHinkley, RiverPageHinkley
from driftsentinel.detectors._state import to_builtin
from tests.unit.test_adwin import KINDS, make_stream, run


def assert_same(k: PageHinkley, r: RiverPageHinkley, hk: np.ndarray, hr: np.ndarray) -> None:
    np.testing.assert_array_equal(hk, hr)
    np.testing.assert_array_equal(k.test_increase, r.test_increase)
    np.testing.assert_array_equal(k.test_decrease, r.test_decrease)
    np.testing.assert_array_equal(k.mean, r.mean)
    np.testing.assert_array_equal(k.n_seen, r.n_seen)
    np.testing.assert_array_equal(k.n_detections, r.n_detections)


params_st = st.fixed_dictionaries(
    {
        "min_instances": st.sampled_from([30, 0, 1, 5, 200]),
        "delta": st.sampled_from([0.005, 0.0, 0.1, 1.0]),
        "threshold": st.sampled_from([50.0, 1.0, 10.0, 500.0, 1e12]),
        "alpha": st.sampled_from([1 - 0.0001, 1.0, 0.9, 0.5]),
        "mode": st.sampled_from(["both", "up", "down"]),
    }
)


@st.composite
def scenario(draw):
    F = draw(st.integers(1, 4))
    n = draw(st.one_of(st.integers(0, 40), st.integers(0, 3000), st.integers(3000, 30000)))
    params = draw(params_st)
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(params)))
        params[name] = [draw(params_st)[name] for _ in range(F)]
    kind = draw(st.sampled_from(KINDS))
    nan_rate = draw(st.sampled_from([0.0, 0.0, 0.01, 0.3]))
    cuts = draw(st.lists(st.integers(0, max(n, 1)), max_size=4))
    return F, n, params, kind, nan_rate, cuts, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=400, deadline=None)
@given(scenario())
def test_parity_with_river(sc):
    F, n, params, kind, nan_rate, cuts, seed = sc
    X = make_stream(seed, n, F, kind, nan_rate)
    k, r = PageHinkley(F, **params), RiverPageHinkley(F, **params)
    assert_same(k, r, run(k, X, cuts), run(r, X, []))


@pytest.mark.parametrize("seed,kind", [(1, "abrupt"), (2, "gradual"), (3, "huge")])
def test_parity_long_streams(seed, kind):
    X = make_stream(seed, 100_000, 2, kind, nan_rate=0.02)
    k, r = PageHinkley(2), RiverPageHinkley(2)
    hk, hr = run(k, X, [4096 * i for i in range(1, 25)]), run(r, X, [])
    assert len(hr) > 0
    assert_same(k, r, hk, hr)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    split=st.floats(0, 1),
    codec=st.sampled_from(["json", "msgpack", "raw"]),
    n=st.integers(0, 5000),
    params=params_st,
)
def test_state_round_trip(seed, split, codec, n, params):
    X = make_stream(seed, n, 3, "mixed", nan_rate=0.05)
    s = int(split * n)
    a, b = PageHinkley(3, **params), PageHinkley(3, **params)
    whole = run(a, X, [s])
    h1 = b.update(X[:s])
    state = b.state_dict()
    if codec == "json":
        state = json.loads(json.dumps(to_builtin(state), allow_nan=False))
    elif codec == "msgpack":
        state = msgpack.unpackb(msgpack.packb(to_builtin(state)), raw=False)
    c = PageHinkley.from_state(state)
    h2 = c.update(X[s:]) + [s, 0]
    np.testing.assert_array_equal(whole, np.concatenate([h1, h2]))
    for name in ("test_increase", "test_decrease", "mean", "n_seen", "n_detections", "drift_detected"):
        np.testing.assert_array_equal(getattr(a, name), getattr(c, name))


def test_state_is_constant_size():
    rng = np.random.default_rng(0)
    sizes = []
    for n in (10, 100_000):
        d = PageHinkley(3)
        d.update(rng.normal(0, 1, (n, 3)))
        sizes.append(len(json.dumps(to_builtin(d.state_dict()))))
    assert sizes[1] <= sizes[0] + 3 * 3 * 25  # same fields; only the digits of the numbers differ


def test_add_features_and_fresh_readouts():
    d = PageHinkley(1, threshold=[20.0], mode="up")
    d.update(np.arange(50.0).reshape(-1, 1))
    d.add_features(2)
    assert d.n_features == 3
    assert d._threshold.tolist() == [20.0, 50.0, 50.0]  # per-feature param -> river's default
    assert d._mode.tolist() == [0, 0, 0]  # scalar param -> construction-time value
    assert d.test_increase[1] == -np.inf and d.test_decrease[1] == -1.0  # as river computes them
    X = make_stream(9, 3000, 3, "abrupt")
    r = RiverPageHinkley(3, threshold=[20.0, 50.0, 50.0], mode="up")
    r.update(np.c_[np.arange(50.0), np.full((50, 2), np.nan)])
    assert_same(d, r, d.update(X), r.update(X))


def test_invalid_mode():
    with pytest.raises(ValueError):
        PageHinkley(2, mode="sideways")


@pytest.mark.parametrize("F", [1, 5, 63, 64, 65, 150])
def test_parity_across_feature_chunks(F):
    """The kernel walks the rows once per chunk of 64 features: widths around and past a
    chunk, per-feature parameters that differ across the chunk border, NaN gaps."""
    X = make_stream(100 + F, 2500, F, "mixed", nan_rate=0.05)
    rng = np.random.default_rng(F)
    params = dict(
        threshold=rng.choice([1.0, 10.0, 50.0], F),
        mode=rng.choice(["up", "down", "both"], F),
        min_instances=rng.choice([0, 30], F),
        alpha=rng.choice([1 - 0.0001, 0.9], F),
    )
    k, r = PageHinkley(F, **params), RiverPageHinkley(F, **params)
    hk, hr = run(k, X, [700, 701, 2000]), run(r, X, [])
    assert len(hr) > 0 or F == 1
    assert_same(k, r, hk, hr)
