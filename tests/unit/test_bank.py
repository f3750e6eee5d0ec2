"""DetectorBank: warm-up, standardisation, episodes, feature discovery, backends agree."""

from __future__ import annotations

import numpy as np
import pytest

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.schemas import BankConfig, DetectorBackend, DriftSignal, FeatureBatch

BACKENDS: list[DetectorBackend] = ["kernel", "river"]


def feed(
    bank: DetectorBank, x: np.ndarray, names: list[str], batch: int = 4096, start: int = 0
) -> list[tuple[int, DriftSignal]]:
    """Feed ``x`` in batches; return (absolute row, signal) pairs."""
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        rows = np.arange(start + i, start + i + len(xb))
        for s in bank.update(FeatureBatch(names, xb, rows, rows.astype(float))):
            out.append((start + i + s.row, s))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_stationary_stream_raises_nothing(backend: DetectorBackend) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50_000, 20)) * 3.0 + 100.0  # scale and offset do not matter
    sigs = feed(DetectorBank(BankConfig(backend=backend)), x, [f"f{i}" for i in range(20)])
    assert sigs == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_shift_is_found_on_the_shifted_features_only(backend: DetectorBackend) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30_000, 6)) * 5.0 + 20.0
    x[15_000:, :2] += 5.0  # +1 reference std on f0, f1
    sigs = feed(DetectorBank(BankConfig(backend=backend)), x, [f"f{i}" for i in range(6)])
    drift = [(row, s) for row, s in sigs if s.status == "drift"]
    assert {s.feature for _, s in drift} == {"f0", "f1"}
    assert {(s.feature, s.detector) for _, s in drift} == {
        (f, d) for f in ("f0", "f1") for d in ("adwin", "page_hinkley", "cusum_mean", "cusum_scale", "cusum_shape")
    }
    for row, s in drift:
        assert 15_000 <= row < 15_500
        if s.detector.startswith("cusum_"):  # the CUSUM over its threshold; the shift in the evidence
            assert s.statistic_name == "cusum_statistic" and s.threshold is not None
            assert s.statistic is not None and s.statistic > s.threshold
            assert s.window.mean is not None and 0.3 < (s.window.mean - 20.0) / 5.0 < 2.5
        else:
            assert s.statistic is not None and 0.3 < s.statistic < 2.5
        assert s.reference is not None and abs(s.reference.mean - 20.0) < 0.5 and abs(s.reference.std - 5.0) < 0.5  # type: ignore[operator]
        assert s.window.count > 0 and set(s.window.quantiles) == {"p05", "p25", "p50", "p75", "p95"}


def test_backends_give_identical_signals() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40_000, 5))
    x[10_000:, 0] += 0.5
    x[20_000:, 1] -= 2.0
    x[25_000:30_000, 2] += 3.0  # transient: drift, then resolved
    x[rng.random(x.shape) < 0.05] = np.nan
    names = [f"f{i}" for i in range(5)]
    runs = {b: feed(DetectorBank(BankConfig(backend=b)), x, names, batch=1000) for b in BACKENDS}
    key = lambda sigs: [(r, s.feature, s.detector, s.status, s.statistic) for r, s in sigs]  # noqa: E731
    assert key(runs["kernel"]) == key(runs["river"])
    statuses = {(s.feature, s.status) for _, s in runs["kernel"]}
    assert ("f2", "drift") in statuses and ("f2", "resolved") in statuses


def test_transient_shift_resolves_and_gauges_follow() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((30_000, 2))
    x[10_000:15_000, 0] += 3.0
    bank = DetectorBank(BankConfig())
    sigs = feed(bank, x[:12_000], ["a", "b"])
    assert any(s.status == "drift" and s.feature == "a" for _, s in sigs)
    st = {s.feature: s for s in bank.status()}
    assert st["a"].drift["adwin"] and not st["b"].drift["adwin"]
    assert st["a"].scores["mean_shift_sigma"] > 0.5
    sigs = feed(bank, x[12_000:], ["a", "b"], start=12_000)
    resolved = [(r, s) for r, s in sigs if s.status == "resolved"]
    assert {s.feature for _, s in resolved} == {"a"} and all(r >= 15_000 for r, _ in resolved)
    assert not any(bank.status()[0].drift.values())


def test_features_are_discovered_pinned_and_capped() -> None:
    bank = DetectorBank(BankConfig(include=["a", "c"]))
    bank.update(FeatureBatch(["a", "b"], np.ones((3, 2)), np.arange(3), np.zeros(3)))
    bank.update(FeatureBatch(["c", "a"], np.ones((3, 2)), np.arange(3, 6), np.zeros(3)))
    assert bank.features == ["a", "c"]
    capped = DetectorBank(BankConfig(max_features=2))
    capped.update(FeatureBatch(["x", "y", "z"], np.ones((2, 3)), np.arange(2), np.zeros(2)))
    assert capped.features == ["x", "y"]


def test_late_feature_and_column_order_do_not_matter() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6000, 2))
    a = DetectorBank(BankConfig())
    b = DetectorBank(BankConfig())
    feed(a, x, ["p", "q"], batch=500)
    feed(b, x[:, ::-1], ["q", "p"], batch=500)
    sa = {s.feature: s for s in a.status()}
    sb = {s.feature: s for s in b.status()}
    for f in ("p", "q"):
        assert sa[f].live_mean == pytest.approx(sb[f].live_mean)
        assert sa[f].scores == pytest.approx(sb[f].scores)


def test_constant_reference_then_change_is_detected() -> None:
    x = np.r_[np.full(3000, 7.0), np.full(3000, 8.0)].reshape(-1, 1)
    sigs = feed(DetectorBank(BankConfig()), x, ["k"])
    assert any(s.status == "drift" and 3000 <= r < 3100 for r, s in sigs)


def test_missing_values_do_not_count_towards_warmup() -> None:
    x = np.full((2000, 1), np.nan)
    x[::2, 0] = 1.0
    bank = DetectorBank(BankConfig(warmup=1000))
    feed(bank, x[:1500], ["m"])
    assert "mean_shift_sigma" not in bank.status()[0].scores  # 750 values: still warming up
    feed(bank, x[1500:], ["m"], start=1500)
    assert "mean_shift_sigma" in bank.status()[0].scores
    assert bank.status()[0].missing_ratio == pytest.approx(0.5)


def test_deterministic() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((20_000, 3))
    x[8000:, 1] += 1.0
    runs = [feed(DetectorBank(BankConfig()), x, ["a", "b", "c"], batch=777) for _ in range(2)]
    assert runs[0] == runs[1]


def test_a_checkpoint_of_ten_thousand_features_fits_the_state_topic() -> None:
    """Every feature's evidence ring full of incompressible values (N(0, 1)): the encoded
    checkpoint of 10,000 features (the ``max_features`` a model may have) stays under the
    record size the state topic takes, so crash recovery keeps working at that scale."""
    from driftsentinel.detectors.bank import EVIDENCE_EVENTS
    from driftsentinel.stream.checkpoint import MAX_STATE_BYTES, encode_state

    n_features, warmup = 10_000, 2
    rng = np.random.default_rng(0)
    bank = DetectorBank(BankConfig(max_features=n_features, warmup=warmup))
    names = [f"f{i}" for i in range(n_features)]
    rows = np.arange(warmup + EVIDENCE_EVENTS)
    bank.update(FeatureBatch(names, rng.normal(size=(rows.size, n_features)), rows, rows.astype(float)))
    state = bank.state_dict()
    assert int(state["evidence"]["n"].min()) == EVIDENCE_EVENTS  # every ring is full
    size = len(encode_state(state))
    assert size < 0.9 * MAX_STATE_BYTES, size


# ---------------------------------------------------------------- the sequential tests in the bank
def _seq_drifts(sigs: list[tuple[int, DriftSignal]]) -> dict[tuple[str, str], int]:
    """(feature, detector) -> the row of its first drift, for the sequential tests."""
    out: dict[tuple[str, str], int] = {}
    for row, s in sigs:
        if s.status == "drift" and s.detector.startswith("cusum_"):
            out.setdefault((s.feature, s.detector), row)
    return out


def test_zero_config_finds_a_change_right_at_the_end_of_the_warm_up() -> None:
    """No profile: the warm-up (1,000 values) is the reference, so a +1 sd shift, a missing
    share 1 % -> 20 % and a level x2 that all start with the first monitored event are found
    (the change detectors compare the stream with its own past and cannot see them)."""
    rng = np.random.default_rng(4)
    x = rng.normal(10.0, 1.0, (4000, 3))
    x[1000:, 0] += 1.0
    x[rng.random(4000) < np.where(np.arange(4000) < 1000, 0.01, 0.2), 1] = np.nan
    x[1000:, 2] *= 2.0
    first = _seq_drifts(feed(DetectorBank(BankConfig()), x, ["a", "b", "c"], batch=333))
    assert 1000 <= first[("a", "cusum_mean")] < 1100
    assert 1000 <= first[("b", "cusum_missing")] < 1200
    assert 1000 <= first[("c", "cusum_shape")] < 1010  # every value beyond the reference's maximum
    assert all(row >= 1000 for row in first.values())


def test_with_a_profile_a_stream_off_from_its_first_event_is_found_and_evidence_is_right() -> None:
    from driftsentinel.detectors.profile import build_profile

    rng = np.random.default_rng(5)
    profile = build_profile({"x": list(rng.normal(0, 1, 20_000))}, "train")
    bank = DetectorBank(BankConfig(), profile)
    x = rng.normal(0.8, 1.0, (400, 1))  # train/serve skew from event 0
    sigs = feed(bank, x, ["x"])
    mean = [s for _, s in sigs if s.detector == "cusum_mean"]
    assert len(mean) == 1 and mean[0].status == "drift" and mean[0].row < 150
    s = mean[0]
    # the configured 18 sds times the tail factor: a profile's quantile grid reads normal tails a little
    # heavy (its outermost slices' midpoints lean on the minimum and maximum), 1.06 here
    assert s.statistic_name == "cusum_statistic" and s.threshold is not None
    assert 18.0 <= s.threshold < 18.0 * 1.1
    assert s.statistic is not None and s.statistic > s.threshold
    assert s.change_point is not None and s.change_point.values_since >= s.row - 20
    assert s.window.mean is not None and 0.4 < s.window.mean < 1.2


def test_per_feature_thresholds_reach_the_sequential_tests() -> None:
    from driftsentinel.schemas.config import FeatureParams

    rng = np.random.default_rng(6)
    x = rng.normal(size=(3000, 2))
    x[1500:] += 0.8
    cfg = BankConfig(per_feature={"b": FeatureParams(cusum_mean_threshold=500.0)})
    first = _seq_drifts(feed(DetectorBank(cfg), x, ["a", "b"]))
    assert ("a", "cusum_mean") in first and ("b", "cusum_mean") not in first
    off = BankConfig.model_validate({"sequential": {"enabled": False}})
    assert _seq_drifts(feed(DetectorBank(off), x, ["a", "b"])) == {}


def test_a_restored_bank_says_the_same_things_and_old_states_get_fresh_tests() -> None:
    from driftsentinel.detectors.profile import build_profile
    from driftsentinel.detectors.state_check import StateRejected, check_bank_state

    rng = np.random.default_rng(7)
    x = rng.normal(size=(6000, 2))
    x[3000:, 0] += 1.0
    x[rng.random(6000) < np.where(np.arange(6000) < 3500, 0.01, 0.3), 1] = np.nan
    names = ["a", "b"]
    a = DetectorBank(BankConfig())
    feed(a, x[:2900], names)
    state = a.state_dict()
    template = DetectorBank(BankConfig()).state_dict()
    check_bank_state(state, template, 10, 5000, "bank")
    bad = {**state, "sequential": {**state["sequential"], "n_edges": np.full(2, 99, dtype=np.int64)}}
    with pytest.raises(StateRejected, match="n_edges"):
        check_bank_state(bad, template, 10, 5000, "bank")
    b = DetectorBank.from_state(state, BankConfig())
    sa, sb = feed(a, x[2900:], names, batch=700, start=2900), feed(b, x[2900:], names, batch=311, start=2900)

    def said(sigs: list[tuple[int, DriftSignal]]) -> list[tuple]:  # batch rows differ with the cut
        return [(r, s.feature, s.detector, s.status, s.statistic, s.window, s.change_point) for r, s in sigs]

    assert said(sa) == said(sb) and {s.detector for _, s in sa} >= {"cusum_mean", "cusum_missing"}
    # a state from before the sequential tests: with a profile, fresh tests against it
    profile = build_profile({"a": list(rng.normal(0, 1, 5000))}, "train")
    p = DetectorBank(BankConfig(), profile)
    feed(p, x[:100, :1], ["a"])
    old = {k: v for k, v in p.state_dict().items() if k != "sequential"}
    q = DetectorBank.from_state(old, BankConfig(), profile)
    assert q.sequential is not None and q.sequential.n_features == 1
    later = feed(q, x[2900:3400, :1] + 2.0, ["a"])
    assert any(s.detector == "cusum_mean" and s.status == "drift" for _, s in later)
