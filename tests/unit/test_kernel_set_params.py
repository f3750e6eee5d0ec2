"""``set_params`` of the kernel detectors: per-feature parameters in place, no state round trip."""

from __future__ import annotations

import numpy as np
import pytest

from driftsentinel.detectors import ADWIN, PageHinkley, RiverADWIN
from tests.unit.test_adwin import make_stream, run


@pytest.mark.parametrize("lockstep", [True, False])
def test_adwin_set_params_equals_a_detector_built_with_them(lockstep):
    X = make_stream(3, 20_000, 4, "abrupt", nan_rate=0.01)
    d = ADWIN(4, lockstep=lockstep)
    before = d.state_dict()
    d.set_params([1, 3], delta=0.05, min_window_length=10, grace_period=50, clock=16, max_buckets=[3, 8])
    after = d.state_dict()
    for name in ("delta", "clock", "max_buckets", "min_window_length", "grace_period"):
        # only the chosen features changed
        np.testing.assert_array_equal(after[name][[0, 2]], before[name][[0, 2]])
    built = ADWIN(
        4,
        delta=[0.002, 0.05, 0.002, 0.05],
        min_window_length=[5, 10, 5, 10],
        grace_period=[10, 50, 10, 50],
        clock=[32, 16, 32, 16],
        max_buckets=[5, 3, 5, 8],
        lockstep=lockstep,
    )
    hd, hb = run(d, X, [4096, 9000]), run(built, X, [4096, 9000])
    assert len(hd) > 0
    np.testing.assert_array_equal(hd, hb)
    for name in ("width", "variance", "n_detections"):
        np.testing.assert_array_equal(getattr(d, name), getattr(built, name))
    ref = RiverADWIN(
        4,
        delta=[0.002, 0.05, 0.002, 0.05],
        min_window_length=[5, 10, 5, 10],
        grace_period=[10, 50, 10, 50],
        clock=[32, 16, 32, 16],
        max_buckets=[5, 3, 5, 8],
    )
    np.testing.assert_array_equal(hd, run(ref, X, []))


def test_adwin_set_params_mid_stream_drops_stale_certificates():
    """A larger delta shrinks ADWIN's bound: certificates cached for the old delta would miss
    cuts. The filtered kernels (general and lockstep) must agree with the exact scan."""
    X = make_stream(7, 30_000, 3, "gradual")
    dets = [ADWIN(3, delta=1e-9), ADWIN(3, delta=1e-9, lockstep=False), ADWIN(3, delta=1e-9, use_filter=False)]
    first = [run(d, X[:15_000], [4096]) for d in dets]
    for d in dets:
        d.set_params([0, 2], delta=0.3)
    second = [run(d, X[15_000:], [3000]) for d in dets]
    for h1, h2 in zip(first[1:], second[1:], strict=True):
        np.testing.assert_array_equal(h1, first[0])
        np.testing.assert_array_equal(h2, second[0])
    assert set(second[0][:, 1].tolist()) >= {0}
    np.testing.assert_array_equal(dets[0].width, dets[2].width)


def test_adwin_set_params_max_buckets_restarts_and_grows_rings():
    X = make_stream(9, 6000, 2, "abrupt")
    d = ADWIN(2, delta=1e-9)
    d.update(X[:3000])
    w0 = d.width[0]
    d.set_params([1], max_buckets=33)  # rings longer than max_buckets=5 needs
    assert d.width[1] == 0 and d.width[0] == w0 > 1000
    fresh = ADWIN(1, delta=1e-9, max_buckets=33)
    kept = ADWIN(1, delta=1e-9)
    kept.update(X[:3000, :1])
    d.update(X[3000:])
    fresh.update(X[3000:, 1:])
    kept.update(X[3000:, :1])
    np.testing.assert_array_equal(d.variance, np.r_[kept.variance, fresh.variance])
    assert d.state_dict()["bucket_totals"].tolist() == (
        kept.state_dict()["bucket_totals"].tolist() + fresh.state_dict()["bucket_totals"].tolist()
    )


def test_page_hinkley_set_params_equals_a_detector_built_with_them():
    X = make_stream(4, 20_000, 4, "abrupt", nan_rate=0.01)
    d = PageHinkley(4)
    d.set_params([0, 2], threshold=[10.0, 20.0], delta=0.1, alpha=1.0, min_instances=5, mode="up")
    built = PageHinkley(
        4,
        threshold=[10.0, 50.0, 20.0, 50.0],
        delta=[0.1, 0.005, 0.1, 0.005],
        alpha=[1.0, 1 - 0.0001, 1.0, 1 - 0.0001],
        min_instances=[5, 30, 5, 30],
        mode=["up", "both", "up", "both"],
    )
    hd, hb = run(d, X, [5000]), run(built, X, [5000])
    assert len(hd) > 0
    np.testing.assert_array_equal(hd, hb)
    for name in ("test_increase", "test_decrease", "mean", "n_seen", "n_detections"):
        np.testing.assert_array_equal(getattr(d, name), getattr(built, name))


@pytest.mark.parametrize(
    "cls,bad,match",
    [
        (ADWIN, {"dleta": 0.1}, "dleta"),
        (ADWIN, {"delta": 0.0}, "delta"),
        (ADWIN, {"delta": float("nan")}, "delta"),
        (ADWIN, {"clock": 0}, "clock"),
        (ADWIN, {"clock": 2.5}, "clock"),
        (ADWIN, {"max_buckets": 0}, "max_buckets"),
        (ADWIN, {"min_window_length": -1}, "min_window_length"),
        (ADWIN, {"grace_period": "x"}, "grace_period"),
        (ADWIN, {"delta": [0.1, 0.2, 0.3]}, "delta"),
        (PageHinkley, {"treshold": 1.0}, "treshold"),
        (PageHinkley, {"threshold": float("nan")}, "threshold"),
        (PageHinkley, {"mode": "sideways"}, "mode"),
        (PageHinkley, {"alpha": "x"}, "alpha"),
    ],
)
def test_set_params_refuses_unknown_names_and_bad_values(cls, bad, match):
    d = cls(2)
    before = d.state_dict()
    with pytest.raises(ValueError, match=match):
        d.set_params([0, 1], **bad)
    after = d.state_dict()
    for k, v in before.items():
        np.testing.assert_array_equal(np.asarray(after[k], dtype=object), np.asarray(v, dtype=object))
    with pytest.raises(ValueError, match="features"):
        d.set_params([2], delta=0.1)
