"""The river reference backend, and the doctests of the detector modules."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from river import drift

import driftsentinel.detectors as detectors
from driftsentinel.detectors import RiverADWIN, RiverPageHinkley


@pytest.mark.parametrize(
    "module",
    [detectors, detectors.adwin, detectors.page_hinkley, detectors.sketches, detectors.river_backend, detectors._state],
)
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_matches_river_called_by_hand_and_skips_nan():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, 700), rng.normal(3, 1, 700)]
    X = np.c_[x, np.where(np.arange(x.size) % 3 == 0, np.nan, x)]
    hits = RiverADWIN(2).update(X)
    for f in range(2):
        det, expected = drift.ADWIN(), []
        for i, v in enumerate(X[:, f]):
            if np.isnan(v):
                continue
            det.update(float(v))
            if det.drift_detected:
                expected.append(i)
        assert hits[hits[:, 1] == f, 0].tolist() == expected
    assert np.all(np.diff(hits[:, 0]) >= 0)


def test_interface():
    d = RiverPageHinkley(2, threshold=[10.0, 20.0])
    d.add_features(1)
    assert d.n_features == 3
    assert [p.threshold for p in d._detectors] == [10.0, 20.0, 50.0]
    assert d.update(np.zeros((0, 3))).shape == (0, 2)
    with pytest.raises(NotImplementedError):
        d.state_dict()
    with pytest.raises(NotImplementedError):
        RiverADWIN.from_state({})
    with pytest.raises(TypeError):
        RiverADWIN(1, nonsense=3)


def test_zero_features_everywhere():
    import json

    from driftsentinel.detectors import ADWIN, FeatureSketch, PageHinkley

    for cls in (ADWIN, PageHinkley, FeatureSketch):
        d = cls.from_state(json.loads(json.dumps(cls(0).to_builtin_state())))
        d.update(np.zeros((5, 0)))
        d.add_features(2)
        d.update(np.ones((40, 2)))
        assert d.n_features == 2
