"""One change-detector interface: both backends implement it; set_params is per feature;
the bank's per_feature parameters are those parameters, set for that feature alone."""

from __future__ import annotations

import numpy as np
import pytest

import driftsentinel.detectors.bank as bank_module
from driftsentinel.detectors import ADWIN, PageHinkley, RiverADWIN, RiverPageHinkley
from driftsentinel.detectors.backends import change_detector
from driftsentinel.detectors.bank import PER_FEATURE_PARAMS, DetectorBank
from driftsentinel.detectors.protocol import ChangeDetector, CountsDetections, CusumReadouts, WindowReadouts
from driftsentinel.schemas import (
    RIVER_ADWIN,
    RIVER_PAGE_HINKLEY,
    ADWINConfig,
    BankConfig,
    DriftSignal,
    FeatureBatch,
    FeatureStatus,
    PageHinkleyConfig,
)
from driftsentinel.schemas.config import FeatureParams

KINDS = ["adwin", "page_hinkley"]
BACKENDS = ["kernel", "river"]
#: a parameter of each kind that changes detections on the stream below (river's defaults elsewhere)
SENSITIVE = {"adwin": {"delta": 0.3}, "page_hinkley": {"threshold": 5.0, "delta": 0.05}}


def _stream(features: int, seed: int = 0) -> np.ndarray:
    """The same shifted signal in every column (so columns differ only by their parameters)."""
    rng = np.random.default_rng(seed)
    x = np.r_[rng.normal(0.0, 1.0, 1500), rng.normal(0.6, 1.0, 1500), rng.normal(-0.3, 1.0, 1500)]
    x[rng.random(x.size) < 0.05] = np.nan
    return np.repeat(x[:, None], features, axis=1)


def _hits_by_feature(hits: np.ndarray, features: int) -> list[list[int]]:
    return [hits[hits[:, 1] == f, 0].tolist() for f in range(features)]


@pytest.mark.parametrize("cls", [ADWIN, PageHinkley, RiverADWIN, RiverPageHinkley])
def test_both_backends_satisfy_the_protocol(cls: type) -> None:
    det = cls(2)
    assert isinstance(det, ChangeDetector)
    assert isinstance(det, CountsDetections)
    is_adwin = cls in (ADWIN, RiverADWIN)
    assert isinstance(det, WindowReadouts) == is_adwin
    assert isinstance(det, CusumReadouts) == (not is_adwin)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_change_detector_picks_the_backend_with_the_schema_defaults(kind: str, backend: str) -> None:
    det = change_detector(kind, backend, 3)  # type: ignore[arg-type]
    expected = {
        ("adwin", "kernel"): ADWIN,
        ("adwin", "river"): RiverADWIN,
        ("page_hinkley", "kernel"): PageHinkley,
        ("page_hinkley", "river"): RiverPageHinkley,
    }
    assert type(det) is expected[kind, backend] and det.n_features == 3
    # the defaults are the schema's (ours, not river's: they differ for ADWIN's delta and Page-Hinkley)
    default = {"adwin": ADWINConfig(), "page_hinkley": PageHinkleyConfig()}[kind]
    built_with_them = expected[kind, backend](3, **default.model_dump(exclude={"enabled"}))
    x = _stream(3)
    assert np.array_equal(det.update(x), built_with_them.update(x))


def test_change_detector_refuses_the_other_kinds_parameters_and_unknown_backends() -> None:
    with pytest.raises(TypeError, match="ADWINConfig"):
        change_detector("adwin", "kernel", 1, PageHinkleyConfig())
    with pytest.raises(ValueError, match="backend"):
        change_detector("adwin", "spark", 1)  # type: ignore[arg-type]


def test_detector_classes_default_to_rivers_own_parameters() -> None:
    assert RIVER_ADWIN.delta == 0.002 and RIVER_PAGE_HINKLEY.threshold == 50.0
    from river import drift

    x = _stream(1)
    for ours, theirs in ((RiverADWIN(1), drift.ADWIN()), (RiverPageHinkley(1), drift.PageHinkley())):
        expected = []
        for i, v in enumerate(x[:, 0]):
            if v == v:
                theirs.update(float(v))
                if theirs.drift_detected:
                    expected.append(i)
        assert ours.update(x)[:, 0].tolist() == expected


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_set_params_on_one_feature_changes_that_features_detections_only(kind: str, backend: str) -> None:
    F, j = 3, 1
    x = _stream(F)
    plain = change_detector(kind, backend, F)  # type: ignore[arg-type]
    tuned = change_detector(kind, backend, F)  # type: ignore[arg-type]
    tuned.set_params([j], **SENSITIVE[kind])
    base = _hits_by_feature(plain.update(x), F)
    got = _hits_by_feature(tuned.update(x), F)
    assert got[j] != base[j]
    assert [got[f] for f in range(F) if f != j] == [base[f] for f in range(F) if f != j]
    # feature j now behaves as if the detector had been built with those parameters everywhere
    params = {"adwin": ADWINConfig, "page_hinkley": PageHinkleyConfig}[kind](**SENSITIVE[kind])
    everywhere = change_detector(kind, backend, F, params)  # type: ignore[arg-type]
    assert _hits_by_feature(everywhere.update(x), F)[j] == got[j]


@pytest.mark.parametrize("kind", KINDS)
def test_set_params_gives_the_same_detections_on_both_backends(kind: str) -> None:
    F = 3
    x = _stream(F, seed=4)
    dets = [change_detector(kind, b, F) for b in BACKENDS]  # type: ignore[arg-type]
    for det in dets:
        det.set_params([0, 2], **SENSITIVE[kind])
    kernel, river = (d.update(x) for d in dets)
    assert kernel.tolist() == river.tolist() and len(kernel)


def test_page_hinkley_parameters_change_in_place_mid_stream_on_both_backends() -> None:
    x = _stream(2, seed=5)
    dets = [change_detector("page_hinkley", b, 2) for b in BACKENDS]  # type: ignore[arg-type]
    out = []
    for det in dets:
        first = det.update(x[:2000])
        det.set_params([1], threshold=4.0, mode="up")
        out.append((first.tolist(), det.update(x[2000:]).tolist()))
    assert out[0] == out[1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_set_params_refuses_unknown_names_and_changes_nothing(kind: str, backend: str) -> None:
    det = change_detector(kind, backend, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lambda_"):
        det.set_params([0], lambda_=1.0)
    x = _stream(2)
    assert np.array_equal(det.update(x), change_detector(kind, backend, 2).update(x))  # type: ignore[arg-type]


def test_rivers_adwin_cannot_change_a_window_it_already_holds() -> None:
    det = RiverADWIN(2)
    det.update(np.ones((10, 2)))
    with pytest.raises(ValueError, match="window"):
        det.set_params([0], delta=0.1)


def test_every_per_feature_field_reaches_a_detector() -> None:
    from driftsentinel.detectors.bank import PER_FEATURE_THRESHOLDS
    from driftsentinel.detectors.sequential import CATEGORICAL_TESTS

    categorical = {f"{test}_threshold" for test in CATEGORICAL_TESTS}  # read by the monitor's categorical watch
    assert set(FeatureParams.model_fields) - categorical == set(PER_FEATURE_PARAMS) | set(PER_FEATURE_THRESHOLDS)


def _bank_signals(bank: DetectorBank, x: np.ndarray, names: list[str]) -> list[tuple]:
    out = []
    for i in range(0, len(x), 700):
        xb = x[i : i + 700]
        rows = np.arange(i, i + len(xb))
        out += [
            (i + s.row, s.feature, s.detector, s.status, s.statistic)
            for s in bank.update(FeatureBatch(names, xb, rows, np.full(len(xb), np.nan)))
        ]
    return out


def test_per_feature_parameters_match_a_bank_with_those_parameters_everywhere() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((12_000, 3))
    x[5000:, :] += 0.35  # a small shift on every feature: found at the tuned settings, not all at the defaults
    x[9000:, :] -= 0.7
    names = ["a", "b", "c"]
    tuned = {"adwin_delta": 0.2, "page_hinkley_threshold": 8.0, "page_hinkley_delta": 0.1}
    per_feature = _bank_signals(DetectorBank(BankConfig(per_feature={"b": FeatureParams(**tuned)})), x, names)
    everywhere = _bank_signals(
        DetectorBank(
            BankConfig(adwin=ADWINConfig(delta=0.2), page_hinkley=PageHinkleyConfig(threshold=8.0, delta=0.1))
        ),
        x,
        names,
    )
    default = _bank_signals(DetectorBank(BankConfig()), x, names)

    def only(sigs: list[tuple], feature: str) -> list[tuple]:
        return [s for s in sigs if s[1] == feature]

    assert only(per_feature, "b") == only(everywhere, "b")
    assert only(per_feature, "b") != only(default, "b")  # the parameters mattered
    for f in ("a", "c"):
        assert only(per_feature, f) == only(default, f)


def test_per_feature_parameters_are_in_the_checkpoint() -> None:
    bank = DetectorBank(BankConfig(per_feature={"b": FeatureParams(adwin_delta=0.01, page_hinkley_threshold=9.0)}))
    state = bank.state_dict()
    assert bank.features == ["b"]
    assert state["detectors"]["adwin"]["delta"].tolist() == [0.01]
    assert state["detectors"]["page_hinkley"]["threshold"].tolist() == [9.0]


def test_the_cores_output_types_live_in_schemas() -> None:
    assert bank_module.DriftSignal is DriftSignal and bank_module.FeatureStatus is FeatureStatus
