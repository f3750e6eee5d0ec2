"""Edge statistics (issue 24, item 7): near-zero spreads, constant features, missing-only features.

Each case was reproduced from outside before the fix; the comments give what it did then.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from driftsentinel.detectors.bank import CONSTANT, CONSTANT_STATISTIC, DetectorBank
from driftsentinel.detectors.policy import AlertPolicy
from driftsentinel.detectors.standardize import is_constant, mean_std, reference_std, spread_floor
from driftsentinel.schemas import AlertPolicyConfig, BankConfig, DetectorBackend, DriftSignal, FeatureBatch
from driftsentinel.schemas.profile import NumericProfile, ReferenceProfile

BACKENDS: list[DetectorBackend] = ["kernel", "river"]
Tail = Callable[[np.random.Generator, int], np.ndarray]


def feed(bank: DetectorBank, x: np.ndarray, names: list[str], batch: int = 1000) -> list[tuple[int, DriftSignal]]:
    """Feed ``x`` in batches; return (absolute row, signal) pairs."""
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        rows = np.arange(i, i + len(xb))
        out += [(i + s.row, s) for s in bank.update(FeatureBatch(names, xb, rows, rows.astype(float)))]
    return out


def severity(sig: DriftSignal) -> str:
    """The severity the alert policy gives this signal with its default configuration."""
    return AlertPolicy(AlertPolicyConfig(), group_id="g").severity(sig.statistic, sig.threshold, sig.statistic_name)


# ------------------------------------------------------------------ a) near-zero spreads
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e200, 1e300])
def test_tiny_or_huge_spread_is_an_ordinary_spread(backend: DetectorBackend, scale: float) -> None:
    # Before: a warm-up std of 1e-300 underflowed to 0 and the constant rule divided by
    # 5e-305, so Page-Hinkley saw values of -100s and said 'critical' drift at row 1029.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 1)) * scale
    bank = DetectorBank(BankConfig(backend=backend))
    assert feed(bank, x, ["tiny"]) == []
    assert bank._ref_std[0] == pytest.approx(scale, rel=0.1)
    assert not bank.status()[0].drift.get(CONSTANT)


def test_tiny_spread_still_detects_a_shift() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8000, 1)) * 1e-300
    x[4000:] += 1e-300  # one std
    drift = [(r, s) for r, s in feed(DetectorBank(BankConfig()), x, ["tiny"]) if s.status == "drift"]
    found = {s.detector for _, s in drift}
    assert {"adwin", "page_hinkley"} <= found and all(d.startswith("cusum_") for d in found - {"adwin", "page_hinkley"})
    assert all(4000 <= r < 4500 for r, _ in drift)
    shifts = [s.statistic for _, s in drift if s.statistic_name == "mean_shift_sigma"]
    assert len(shifts) >= 2 and all(v is not None and 0.5 < v < 1.5 for v in shifts)
    # the shift is measured in reference stds however tiny the spread (the evidence of every detector)
    assert all(s.window.mean is not None and 0.5 < s.window.mean / 1e-300 < 1.5 for _, s in drift)


def test_the_floor_is_relative_to_the_values_scale() -> None:
    values = np.array([1.0, -1.0, 2.0, -2.0]) * 1e-300
    assert float(values.std(ddof=1)) == 0.0  # what numpy gives: the variance underflows
    assert mean_std(values)[1] == pytest.approx(1.8257e-300, rel=1e-4)
    assert spread_floor(1e6, 1e6 - 1, 1e6 + 1) == pytest.approx(1e-3, rel=1e-5)
    assert is_constant(1e-12, 1e6, 1e6, 1e6) and not is_constant(1e-300, 0.0, -2e-300, 2e-300)
    assert reference_std(0.0, 0.0, -1.0, 1.0) == pytest.approx(2 / 4.65)  # an underflowed profile std
    # ordinary data: the same std as before, bit for bit (river parity and calibrations hold)
    x = np.random.default_rng(2).standard_normal(1000) * 5 + 20
    assert mean_std(x) == (float(x.mean()), float(x.std(ddof=1)))
    assert reference_std(20.0, 5.0, 10.0, 30.0) == 5.0


# ------------------------------------------------------------------ b) a constant feature starts to vary
@pytest.mark.parametrize(
    "tail",
    [
        lambda rng, n: 7.0 + rng.standard_normal(n),  # before: adwin 'warning' at 3239, 'resolved' at 5239
        lambda rng, n: rng.uniform(6.0, 10.0, n),  # before: adwin/page_hinkley 'warning'
        lambda rng, n: np.full(n, 8.0),  # before: adwin 'warning', page_hinkley 'critical' at 3068
    ],
    ids=["noise-around-it", "uniform", "level-shift"],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_constant_that_varies_is_a_critical_change_that_persists(backend: DetectorBackend, tail: Tail) -> None:
    rng = np.random.default_rng(3)
    x = np.r_[np.full(3000, 7.0), tail(rng, 17_000)].reshape(-1, 1)
    bank = DetectorBank(BankConfig(backend=backend))
    sigs = feed(bank, x, ["k"])
    assert [(r, s.detector, s.status) for r, s in sigs] == [(3000, CONSTANT, "drift")]
    sig = sigs[0][1]
    assert sig.statistic_name == CONSTANT_STATISTIC
    assert sig.statistic == pytest.approx(abs(x[3000, 0] - 7.0))
    assert sig.threshold is not None and 0 < sig.threshold < 1e-6
    assert severity(sig) == "critical"
    assert sig.reference is not None and sig.reference.std == 0.0
    assert bank.status()[0].drift == {"adwin": False, "page_hinkley": False, CONSTANT: True}  # still in drift


def test_constant_resolves_only_when_constant_again_at_the_old_value() -> None:
    cfg = BankConfig(resolve_min_count=500)
    x = np.r_[np.full(2000, 3.0), np.full(1000, 4.0), np.full(1000, 3.0)]
    x[3300] = 3.5  # one stray value restarts the count
    sigs = feed(DetectorBank(cfg), x.reshape(-1, 1), ["k"], batch=333)
    assert [(r, s.detector, s.status) for r, s in sigs] == [(2000, CONSTANT, "drift"), (3800, CONSTANT, "resolved")]
    # constant again, but at a new value: still in drift
    bank = DetectorBank(cfg)
    sigs = feed(bank, np.r_[np.full(2000, 3.0), np.full(5000, 4.0)].reshape(-1, 1), ["k"])
    assert [s.status for _, s in sigs] == ["drift"] and bank.status()[0].drift[CONSTANT]


def test_constant_zero_and_profile_constant() -> None:
    x = np.r_[np.zeros(1000), np.full(10, np.nan), np.full(10, 0.0), [1e-3]].reshape(-1, 1)
    sigs = feed(DetectorBank(BankConfig()), x, ["z"])
    assert [(r, s.detector, severity(s)) for r, s in sigs] == [(1020, CONSTANT, "critical")]
    constant = NumericProfile(count=100, missing_ratio=0.0, mean=2.0, std=0.0, min=2.0, max=2.0, quantiles=[2.0] * 101)
    profile = ReferenceProfile(source="test", n_rows=100, features={"p": constant})
    sigs = feed(DetectorBank(BankConfig(), profile), np.r_[np.full(10, 2.0), [2.5]].reshape(-1, 1), ["p"])
    assert [(r, s.detector, s.statistic) for r, s in sigs] == [(10, CONSTANT, 0.5)]


def test_constant_watch_is_cut_invariant_and_survives_a_restart() -> None:
    rng = np.random.default_rng(4)
    x = np.r_[np.full(1500, 1.0), rng.uniform(0, 2, 700), np.full(3000, 1.0), [5.0]].reshape(-1, 1)
    cfg = BankConfig(resolve_min_count=800)
    whole = [(r, s.status, s.statistic) for r, s in feed(DetectorBank(cfg), x, ["k"], batch=10_000)]
    assert [s for _, s, _ in whole] == ["drift", "resolved", "drift"]
    first = DetectorBank(cfg)
    part = feed(first, x[:2500], ["k"], batch=97)
    again = DetectorBank.from_state(first.state_dict(), cfg)
    part += [(2500 + r, s) for r, s in feed(again, x[2500:], ["k"], batch=1234)]
    assert [(r, s.status, s.statistic) for r, s in part] == whole


# ------------------------------------------------------------------ c) a feature that is always missing
def test_always_missing_feature_has_a_status() -> None:
    # The bank reports a column it was given that never holds a value (before, too). The
    # engine's decode step drops a name whose values are all null before the bank sees it
    # (detectors/batching.py), which is why such a feature had no series: see the report.
    rng = np.random.default_rng(5)
    x = np.c_[rng.standard_normal(3000), np.full(3000, np.nan)]
    bank = DetectorBank(BankConfig())
    assert feed(bank, x, ["v", "gone"]) == []
    st = {s.feature: s for s in bank.status()}
    assert st["gone"].missing_ratio == 1.0 and st["gone"].live_mean is None
    assert "mean_shift_sigma" not in st["gone"].scores


def test_read_outs_are_finite_from_the_first_event() -> None:
    # Before: live_mean was NaN for the whole first live window (0 x NaN of the empty
    # previous window) and page_hinkley_up -inf until Page-Hinkley had data.
    bank = DetectorBank(BankConfig())
    x = np.random.default_rng(6).standard_normal((10, 1))
    feed(bank, x, ["v"])
    st = bank.status()[0]
    assert st.live_mean == pytest.approx(float(x.mean()))
    assert all(math.isfinite(v) for v in st.scores.values())
    assert st.scores["page_hinkley_up"] == 0.0 and st.scores["page_hinkley_down"] == 0.0


def test_state_from_before_the_constant_watch_loads() -> None:
    bank = DetectorBank(BankConfig())
    feed(bank, np.random.default_rng(7).standard_normal((1500, 2)), ["a", "b"])
    old = {k: v for k, v in bank.state_dict().items() if not k.startswith("const")}
    restored = DetectorBank.from_state(old, BankConfig())
    assert restored.status() == bank.status()
