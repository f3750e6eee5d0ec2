"""The categorical sequential tests of the reference monitor: cusum_categories, cusum_unseen."""

from __future__ import annotations

import numpy as np
import pytest

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.category_sequential import RECENT
from driftsentinel.detectors.profile import build_profile
from driftsentinel.detectors.reference_monitor import ReferenceMonitor, WindowDecision
from driftsentinel.schemas import BankConfig, FeatureBatch, WindowTestConfig
from driftsentinel.schemas.config import SequentialConfig
from driftsentinel.schemas.profile import ReferenceProfile

CATS = np.array(["a", "b", "c", "d", "e"], dtype=object)
P_BEFORE = np.array([0.40, 0.30, 0.15, 0.10, 0.05])  # the quality benchmark's categorical shift
P_AFTER = np.array([0.30, 0.30, 0.20, 0.10, 0.10])
BATCH = 4096
P_LARGE = np.array([0.10, 0.20, 0.20, 0.20, 0.30])  # a large shift, for the plumbing tests
SEQUENTIAL = {"cusum_categories", "cusum_unseen"}


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(200)
    return build_profile({"c": CATS[rng.choice(5, size=50_000, p=P_BEFORE)].tolist()}, source="t")


def feed(monitor: ReferenceMonitor, values: np.ndarray, cuts: list[int] | None = None) -> list[WindowDecision]:
    """``values`` (one categorical column) in batches ending at ``cuts`` (default: every BATCH rows)."""
    n = values.shape[0]
    ends = cuts if cuts is not None else list(range(BATCH, n, BATCH))
    out: list[WindowDecision] = []
    start = 0
    for end in [*ends, n]:
        part = values[start:end].reshape(-1, 1)
        rows = part.shape[0]
        for d in monitor.update([], np.empty((rows, 0)), ["c"], part, np.full(rows, np.nan)):
            out.append(WindowDecision(start + d.row, *[getattr(d, f) for f in list(d.__dataclass_fields__)[1:]]))
        start = end
    return out


def first(decisions: list[WindowDecision], test: str) -> int | None:
    rows = [d.row for d in decisions if d.detector == test and d.status == "drift"]
    return min(rows) if rows else None


def test_benchmark_category_shift_found_within_800_events(profile: ReferenceProfile) -> None:
    """Median delay over 20 seeds <= 800 events (the window test needs its 5,000-event window)."""
    cp, delays = 2000, []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        values = np.r_[CATS[rng.choice(5, size=cp, p=P_BEFORE)], CATS[rng.choice(5, size=6000, p=P_AFTER)]]
        out = feed(ReferenceMonitor(profile), values)
        row = first(out, "cusum_categories")
        assert row is not None and row >= cp, (seed, row)  # found, and not before the change
        delays.append(row - cp)
        drift = next(d for d in out if d.detector == "cusum_categories" and d.status == "drift")
        assert drift.change_point is not None and drift.statistic > drift.threshold
        assert drift.window.count == min(drift.change_point.values_since, RECENT)
        assert (drift.window.categories or {})["e"] > 0.07  # the values since the change point: e at ~10 %, was 5 %
    assert float(np.median(delays)) <= 800, sorted(delays)


def test_never_seen_values_found_fast_by_cusum_unseen(profile: ReferenceProfile) -> None:
    cp, delays = 1000, []
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        values = CATS[rng.choice(5, size=4000, p=P_BEFORE)]
        new = (np.arange(4000) >= cp) & (rng.random(4000) < 0.02)
        values[new] = [f"new{i}" for i in range(int(new.sum()))]  # 2 % never seen in training
        out = feed(ReferenceMonitor(profile, WindowTestConfig(enabled=False)), values)
        row = first(out, "cusum_unseen")
        assert row is not None and row >= cp, (seed, row)
        delays.append(row - cp)
    # twice min_unseen_share: found in ~800 values (the break-even share is the minimum itself,
    # so 0.9 % stays quiet: tests/unit/test_window_decision.py)
    assert float(np.median(delays)) <= 1000, sorted(delays)


def test_never_seen_values_do_not_move_the_category_shares(profile: ReferenceProfile) -> None:
    """Values never seen in training are cusum_unseen's: cusum_categories stays quiet on 3 % of them."""
    rng = np.random.default_rng(9)
    values = CATS[rng.choice(5, size=40_000, p=P_BEFORE)]
    new = rng.random(40_000) < 0.03
    values[new] = [f"new{i}" for i in range(int(new.sum()))]
    out = feed(ReferenceMonitor(profile, WindowTestConfig(enabled=False)), values)
    assert first(out, "cusum_unseen") is not None and first(out, "cusum_categories") is None, out


def test_stationary_200k_events_quiet(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(7)
    values = CATS[rng.choice(5, size=200_000, p=P_BEFORE)]
    values[rng.random(200_000) < 0.05] = None  # missing values are ignored
    mon = ReferenceMonitor(profile, WindowTestConfig(enabled=False))
    assert feed(mon, values, list(range(20_000, 200_000, 20_000))) == []
    assert set(mon.scores["c"]) == SEQUENTIAL  # read-outs of both statistics


def test_same_decisions_however_the_stream_is_cut(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(3)
    values = np.r_[CATS[rng.choice(5, size=3000, p=P_BEFORE)], CATS[rng.choice(5, size=9000, p=P_LARGE)]]
    values[3000:][rng.random(9000) < 0.1] = "never-seen"
    whole = feed(ReferenceMonitor(profile), values, [])
    cuts = sorted(rng.choice(np.arange(1, values.size), size=40, replace=False).tolist())
    assert {d.detector for d in whole} >= SEQUENTIAL
    assert feed(ReferenceMonitor(profile), values, cuts) == whole
    assert feed(ReferenceMonitor(profile), values, list(range(1, 200))) == whole  # single events too


def test_checkpoint_continues_and_old_states_load(profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(4)
    values = np.r_[CATS[rng.choice(5, size=1500, p=P_BEFORE)], CATS[rng.choice(5, size=4000, p=P_LARGE)]]
    whole = feed(ReferenceMonitor(profile), values, [1550])
    assert any(d.detector in SEQUENTIAL and d.row > 1550 for d in whole), whole  # decided after the cut
    first_part = ReferenceMonitor(profile)
    head = feed(first_part, values[:1550], [])
    restored = ReferenceMonitor(profile)
    restored.load_state(first_part.state_dict())
    tail = feed(restored, values[1550:], [])
    assert head + [WindowDecision(1550 + d.row, *list(d.__dict__.values())[1:]) for d in tail] == whole
    old = first_part.state_dict()
    del old["sequential"]  # a checkpoint from before the sequential tests
    fresh = ReferenceMonitor(profile)
    fresh.load_state(old)
    assert fresh.sequential is not None and fresh.sequential.tests.statistics()["cusum_categories"][0] == 0.0
    with pytest.raises(ValueError, match="features differ"):
        fresh.load_state({**first_part.state_dict(), "sequential": {"tests": {}, "recent": {"zz": []}}})


def test_off_when_disabled_and_forwarded_by_the_bank(profile: ReferenceProfile) -> None:
    assert ReferenceMonitor(profile, sequential=SequentialConfig(enabled=False)).sequential is None
    assert ReferenceMonitor(profile, sequential=SequentialConfig(tests=["cusum_mean"])).sequential is None
    rng = np.random.default_rng(5)
    values = np.r_[CATS[rng.choice(5, size=1000, p=P_BEFORE)], CATS[rng.choice(5, size=3000, p=P_LARGE)]]
    n = values.size
    bank = DetectorBank(BankConfig(), profile)
    sigs = bank.update(
        FeatureBatch(
            [], np.empty((n, 0)), np.arange(n), np.full(n, np.nan), cat_names=["c"], cat_values=values.reshape(-1, 1)
        )
    )
    cusum = [s for s in sigs if s.detector == "cusum_categories" and s.status == "drift"]
    assert cusum and cusum[0].statistic_name == "cusum_statistic" and cusum[0].change_point is not None
    assert 1000 <= cusum[0].row < 2500
    off = DetectorBank(BankConfig(sequential=SequentialConfig(enabled=False)), profile)
    assert not [
        s
        for s in off.update(
            FeatureBatch(
                [],
                np.empty((n, 0)),
                np.arange(n),
                np.full(n, np.nan),
                cat_names=["c"],
                cat_values=values.reshape(-1, 1),
            )
        )
        if s.detector in SEQUENTIAL
    ]
