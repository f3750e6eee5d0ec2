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
        (f, d) for f in ("f0", "f1") for d in ("adwin", "page_hinkley")
    }
    for row, s in drift:
        assert 15_000 <= row < 15_500
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
