"""A change detector's DriftEvent shows the drift it reports: its ``window`` summarises the
values since the change point the detector found, ``change_point`` says where that is, and
``mean_shift_sigma`` (hence the severity) is graded on those values.

The stream is the one of the issue: ``amount`` ~ N(25, 20.7), then N(25 +- 20.7, 20.7)
from event 4,000 (a 1-sd shift), next to an unchanged feature.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from driftsentinel.detectors.adwin import ADWIN
from driftsentinel.detectors.bank import (
    EVIDENCE_EVENTS,
    SPLIT_THRESHOLD,
    DetectorBank,
    change_split,
    split_statistic,
)
from driftsentinel.detectors.page_hinkley import PageHinkley
from driftsentinel.detectors.policy import AlertPolicy, evidence_sigma
from driftsentinel.detectors.protocol import LocatesChanges
from driftsentinel.detectors.river_backend import RiverADWIN, RiverPageHinkley
from driftsentinel.detectors.state_check import StateRejected, check_bank_state
from driftsentinel.schemas import (
    ADWINConfig,
    AlertPolicyConfig,
    BankConfig,
    FeatureBatch,
    PageHinkleyConfig,
    WindowSummary,
)
from driftsentinel.schemas.alerts import DriftEvent, SourcePosition
from driftsentinel.schemas.config import DetectorBackend
from driftsentinel.schemas.profile import ReferenceProfile

MEAN, SD, AT, N = 25.0, 20.7, 4000, 6000
NAMES = ["amount", "other"]


def stream(seed: int, sign: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amount = np.r_[rng.normal(MEAN, SD, AT), rng.normal(MEAN + sign * SD, SD, N - AT)]
    return np.c_[amount, rng.normal(0.0, 1.0, N)]


def profile(seed: int) -> ReferenceProfile:
    from driftsentinel.detectors.profile import build_profile

    rng = np.random.default_rng(1000 + seed)
    return build_profile({"amount": rng.normal(MEAN, SD, 5000).tolist(), "other": rng.normal(0, 1, 5000).tolist()}, "t")


def drift_events(
    bank: DetectorBank, x: np.ndarray, batch: int = 700, start: int = 0, policy: AlertPolicy | None = None
) -> list[DriftEvent]:
    """Feed ``x`` (offsets from ``start``) and build the DriftEvents of the change detectors' drifts."""
    policy = policy or AlertPolicy(AlertPolicyConfig(), group_id="g")
    out = []
    for a in range(0, len(x), batch):
        rows = np.arange(start + a, start + min(a + batch, len(x)))
        for sig in bank.update(FeatureBatch(NAMES, x[a : a + batch], rows, rows.astype(float))):
            if sig.status == "drift" and sig.detector in ("adwin", "page_hinkley"):
                out.append(
                    policy.to_event(
                        sig, model="m", topic="t", partition=0, offset=start + a + sig.row, event_time=None, now=0.0
                    )
                )
    return out


CASES = [
    pytest.param(backend, sign, with_profile, ph_only, id=f"{backend}-{sign:+.0f}sd-{prof}-{dets}")
    for backend in ("kernel", "river")
    for sign in (1.0, -1.0)
    for with_profile, prof in ((False, "warmup"), (True, "profile"))
    for ph_only, dets in ((False, "both"), (True, "ph_only"))
]


@pytest.mark.parametrize(("backend", "sign", "with_profile", "ph_only"), CASES)
def test_a_one_sd_shift_is_reported_with_the_post_change_values(
    backend: DetectorBackend, sign: float, with_profile: bool, ph_only: bool
) -> None:
    config = BankConfig(backend=backend, adwin=ADWINConfig(enabled=not ph_only))
    policy = AlertPolicy(AlertPolicyConfig(), group_id="g")
    events = drift_events(DetectorBank(config, profile(0) if with_profile else None), stream(0, sign), policy=policy)
    detectors = {e.detector for e in events}
    assert detectors == ({"page_hinkley"} if ph_only else {"adwin", "page_hinkley"})
    assert {e.feature for e in events} == {"amount"}
    for ev in events:
        offset = ev.source.offset
        assert AT <= offset < AT + 200, ev
        window, cp = ev.window, ev.change_point
        assert cp is not None and window.mean is not None and window.std is not None
        # the values since the change point: the shifted ones (before: the live window, ~25)
        assert abs(window.mean - (MEAN + sign * SD)) < 0.35 * SD, ev
        assert abs(window.std - SD) < 0.35 * SD, ev
        assert ev.statistic_name == "mean_shift_sigma" and ev.statistic is not None
        assert abs(ev.statistic - sign) < 0.35, ev
        assert ev.reference is not None and ev.reference.mean is not None and ev.reference.std is not None
        assert ev.statistic == pytest.approx((window.mean - ev.reference.mean) / ev.reference.std, rel=0.05)
        assert ev.severity == policy.severity(ev.statistic) != "info"
        # where the change point is: within a few dozen values of the true one
        assert window.count == cp.values_since == cp.events_since  # no missing values here
        assert abs(cp.values_since - (offset - AT + 1)) <= 25, ev
        assert window.quantiles["p05"] < window.quantiles["p50"] < window.quantiles["p95"]


@pytest.mark.parametrize("seed", range(1, 6))
def test_severity_follows_the_post_change_shift_across_seeds(seed: int) -> None:
    policy = AlertPolicy(AlertPolicyConfig(), group_id="g")
    for sign in (1.0, -1.0):
        events = drift_events(DetectorBank(BankConfig()), stream(seed, sign), policy=policy)
        assert {e.detector for e in events} == {"adwin", "page_hinkley"}
        for ev in events:
            assert ev.statistic is not None and abs(ev.statistic - sign) < 0.5, ev
            assert ev.severity == policy.severity(ev.statistic)


def test_both_backends_give_the_same_events() -> None:
    x = stream(3, 1.0)
    x[np.random.default_rng(3).random(x.shape) < 0.05] = np.nan
    kernel = drift_events(DetectorBank(BankConfig(backend="kernel")), x)
    river = drift_events(DetectorBank(BankConfig(backend="river")), x)
    assert kernel and [e.model_dump() for e in kernel] == [e.model_dump() for e in river]
    for ev in kernel:  # missing values: fewer values than events since the change point
        assert ev.change_point is not None and ev.change_point.events_since is not None
        assert ev.window.count == ev.change_point.values_since < ev.change_point.events_since
        assert ev.window.missing_ratio == pytest.approx(1 - ev.window.count / ev.change_point.events_since)


@pytest.mark.parametrize("split", [AT - 300, AT + 10, AT + 30])
def test_a_restored_bank_reports_the_same_evidence(split: int) -> None:
    """The post-change values straddle the restore: the ring comes back with the state."""
    x = stream(4, 1.0)
    whole = drift_events(DetectorBank(BankConfig()), x)
    bank = DetectorBank(BankConfig())
    first = drift_events(bank, x[:split])
    state = json.loads(json.dumps(_builtin(bank.state_dict())))
    restored = DetectorBank.from_state(state, BankConfig())
    second = drift_events(restored, x[split:], batch=333, start=split)
    assert whole and [e.model_dump() for e in whole] == [e.model_dump() for e in first + second]


def test_a_state_without_the_ring_still_restores() -> None:
    """States from before the evidence ring (no ``tail``; Page-Hinkley without its estimates)."""
    x = stream(5, 1.0)
    bank = DetectorBank(BankConfig())
    drift_events(bank, x[:3000])
    state = bank.state_dict()
    del state["evidence"]
    for key in ("at_min_increase", "at_max_decrease"):
        del state["detectors"]["page_hinkley"][key]
    template = DetectorBank(BankConfig()).state_dict()
    check_bank_state(state, template, 10, BankConfig().window_size, "state")
    events = drift_events(DetectorBank.from_state(state, BankConfig()), x[3000:], start=3000)
    assert {e.detector for e in events} == {"adwin", "page_hinkley"}
    for ev in events:
        assert ev.statistic is not None and abs(ev.statistic - 1.0) < 0.5


def test_a_ring_of_the_wrong_shape_is_rejected() -> None:
    bank = DetectorBank(BankConfig())
    drift_events(bank, stream(0, 1.0)[:100])
    state = bank.state_dict()
    template = DetectorBank(BankConfig()).state_dict()
    check_bank_state(state, template, 10, BankConfig().window_size, "state")
    for key, bad in (
        ("z", np.zeros((EVIDENCE_EVENTS, 3), dtype=np.float32)),
        ("rows", np.full((EVIDENCE_EVENTS, 2), 100, dtype=np.int64)),  # a row not yet seen
        ("n", np.array([-1, 0])),
    ):
        broken = {**state, "evidence": {**state["evidence"], key: bad}}
        with pytest.raises(StateRejected) as info:
            check_bank_state(broken, template, 10, BankConfig().window_size, "state")
        assert info.value.reason == "shape" and f"evidence.{key}" in str(info.value)


def test_a_change_older_than_the_ring_summarises_the_newest_values() -> None:
    """Page-Hinkley with a high threshold finds a small shift late: the evidence is the
    last EVIDENCE_EVENTS events, all after the change, and ``events_since`` is unknown."""
    rng = np.random.default_rng(6)
    x = np.c_[np.r_[rng.normal(0, 1, 3000), rng.normal(0.5, 1, 4000)], rng.normal(0, 1, 7000)]
    config = BankConfig(adwin=ADWINConfig(enabled=False), page_hinkley=PageHinkleyConfig(threshold=200.0))
    events = drift_events(DetectorBank(config), x)
    assert len(events) == 1
    ev = events[0]
    assert ev.change_point is not None and ev.change_point.values_since > EVIDENCE_EVENTS
    assert ev.change_point.events_since is None and ev.window.count == EVIDENCE_EVENTS
    assert ev.window.mean is not None and abs(ev.window.mean - 0.5) < 0.15
    assert ev.source.offset - 3000 + 1 > ev.change_point.values_since - 50
    # the same evidence however the stream is cut (the ring holds whole events, not batches)
    for batch in (1, 513, 7000):
        again = drift_events(DetectorBank(config), x, batch=batch)
        assert [e.model_dump() for e in again] == [ev.model_dump()]


# ---------------------------------------------------------------------- beyond the ring


def _signal_events(x: np.ndarray, config: BankConfig | None = None, batch: int = 1000) -> list[DriftEvent]:
    """DriftEvents of one feature ``a`` (offsets are rows)."""
    bank = DetectorBank(config or BankConfig())
    policy = AlertPolicy(AlertPolicyConfig(), group_id="g")
    out = []
    for a in range(0, len(x), batch):
        rows = np.arange(a, min(a + batch, len(x)))
        for sig in bank.update(FeatureBatch(["a"], x[a : a + batch, None], rows, rows.astype(float))):
            if sig.status == "drift":
                event = policy.to_event(
                    sig, model="m", topic="t", partition=0, offset=a + sig.row, event_time=None, now=0.0
                )
                out.append(event)
    return out


def test_a_small_shift_found_after_the_ring_is_graded_on_all_it_holds() -> None:
    """+0.2 sd at event 10,000: ADWIN finds it more than EVIDENCE_EVENTS values later; its
    sub-window is larger than the ring, so the evidence is all the ring holds (all after
    the change), with ``events_since`` unknown, not a split of post-change data into a
    handful of extreme values."""
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 20_000)
    x[10_000:] += 0.2
    policy = AlertPolicy(AlertPolicyConfig(), group_id="g")
    events = [e for e in _signal_events(x) if e.detector == "adwin"]
    assert len(events) == 1
    ev = events[0]
    assert ev.source.offset - 10_000 + 1 > EVIDENCE_EVENTS  # the change is older than the ring
    assert ev.change_point is not None and ev.change_point.events_since is None
    assert ev.change_point.values_since > EVIDENCE_EVENTS and ev.window.count == EVIDENCE_EVENTS
    assert ev.statistic is not None and abs(ev.statistic - 0.2) < 0.1, ev
    assert ev.severity == policy.severity(ev.statistic)


def test_pure_post_change_data_is_not_split() -> None:
    """A significant split only: of 500 draws of 512 N(1, 1) values (no change among them),
    Hinkley's split clears SPLIT_THRESHOLD in under 1 % (16 % of the plain splits leave
    20 values or fewer); a real 1-sd shift 20 values before the end of 480 clears it."""
    rng = np.random.default_rng(11)
    passed = 0
    for _ in range(500):
        v = rng.normal(1.0, 1.0, EVIDENCE_EVENTS)
        passed += split_statistic(v, change_split(v)) >= SPLIT_THRESHOLD
    assert passed <= 5, passed
    hits = 0
    for _ in range(100):
        v = np.r_[rng.normal(0, 1, 460), rng.normal(1, 1, 20)]
        k = change_split(v)
        hits += split_statistic(v, k) >= SPLIT_THRESHOLD and abs(k - 460) <= 10
    assert hits >= 50, hits


@pytest.mark.parametrize("seed", range(3))
def test_a_sparse_feature_keeps_its_last_values(seed: int) -> None:
    """A feature present in 3 % of events, +1 sd from event 100,000: the ring keeps its last
    EVIDENCE_EVENTS values (thousands of events), so the evidence is its values since the
    change point, the shift graded on them, ``events_since`` exact."""
    rng = np.random.default_rng(seed)
    at = 100_000
    x = rng.normal(0, 1, 160_000)
    x[at:] += 1.0
    x[rng.random(x.size) > 0.03] = np.nan
    policy = AlertPolicy(AlertPolicyConfig(), group_id="g")
    events = _signal_events(x, batch=5000)
    assert {e.detector for e in events} == {"adwin", "page_hinkley", "cusum_mean", "cusum_scale", "cusum_shape"}
    for ev in events:
        offset, cp = ev.source.offset, ev.change_point
        assert at <= offset < at + 10_000, ev
        assert cp is not None and cp.events_since is not None and ev.window.count == cp.values_since
        true_values = int((~np.isnan(x[at : offset + 1])).sum())
        first = offset - cp.events_since + 1  # the first value after the change point
        assert not np.isnan(x[first]) and int((~np.isnan(x[first : offset + 1])).sum()) == cp.values_since
        if ev.detector in ("cusum_scale", "cusum_shape"):  # their run starts at or after the change
            assert cp.values_since <= true_values + 25, ev
            continue
        assert abs(cp.values_since - true_values) <= 25, ev
        if ev.detector == "cusum_mean":  # the CUSUM over its threshold; the shift in the evidence
            assert ev.statistic is not None and ev.threshold is not None and ev.statistic > ev.threshold, ev
            assert ev.window.mean is not None and abs(ev.window.mean - 1.0) < 0.35, ev
            # graded by the higher of its ratio (just over: warning) and the shift its evidence shows
            graded = {
                policy.severity(ev.statistic, ev.threshold, ev.statistic_name),
                policy.severity(evidence_sigma(ev.window, ev.reference)),
            }
            assert ev.severity == next(s for s in ("critical", "warning", "info") if s in graded), ev
            continue
        assert ev.statistic is not None and abs(ev.statistic - 1.0) < 0.35, ev
        assert ev.severity == policy.severity(ev.statistic)


# ---------------------------------------------------------------------- the detectors


def _shifty(seed: int, n: int = 12_000, F: int = 6, missing: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (n, F))
    for f in range(F):
        for _ in range(4):
            X[int(rng.integers(100, n)) :, f] += rng.choice([-1, 1]) * rng.uniform(0.3, 2.0)
    X[rng.random(X.shape) < missing] = np.nan
    return X


def _located(det: Any, X: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    hits, counts, means = [], [], []
    for a in range(0, len(X), batch):
        hits.append(det.update(X[a : a + batch]) + [a, 0])
        counts.append(det.post_change_count)
        if hasattr(det, "post_change_mean"):
            means.append(det.post_change_mean)
    return np.concatenate(hits), np.concatenate(counts), np.concatenate(means) if means else None


@pytest.mark.parametrize("lockstep", [True, False])
@pytest.mark.parametrize("batch", [2500, 97])
def test_adwin_sub_window_after_the_cut_is_rivers(lockstep: bool, batch: int) -> None:
    """Per hit, the kernel's post-change length and mean are river's width and estimation
    right after the detection (the window after its deletions), bit for bit."""
    X = _shifty(1)
    kernel = ADWIN(6, lockstep=lockstep)
    assert isinstance(kernel, LocatesChanges) and isinstance(RiverADWIN(1), LocatesChanges)
    hk, ck, mk = _located(kernel, X, batch)
    hr, cr, mr = _located(RiverADWIN(6), X, 2500)
    assert len(hk) > 10 and np.array_equal(hk, hr)
    assert np.array_equal(ck, cr) and np.all(ck >= 1)
    assert mk is not None and mr is not None and np.array_equal(mk, mr)


@pytest.mark.parametrize(
    "params",
    [{"threshold": 20.0}, {"threshold": 10.0, "mode": "up"}, {"threshold": 10.0, "mode": "down", "alpha": 0.99}],
)
def test_page_hinkley_change_point_is_the_same_on_both_backends(params: dict[str, Any]) -> None:
    X = _shifty(2)
    kernel = PageHinkley(6, **params)
    assert isinstance(kernel, LocatesChanges) and isinstance(RiverPageHinkley(1), LocatesChanges)
    hk, ck, _ = _located(kernel, X, 1000)
    hr, cr, _ = _located(RiverPageHinkley(6, **params), X, 2500)
    assert len(hk) > 10 and np.array_equal(hk, hr) and np.array_equal(ck, cr)
    assert np.all(ck >= 1)


def test_page_hinkley_change_point_is_after_the_minimum_of_the_sum() -> None:
    """The estimate is the standard one: the values after the last minimum of sum_increase."""
    rng = np.random.default_rng(8)
    x = np.r_[rng.normal(0, 1, 500), rng.normal(1.5, 1, 200)]
    ph = PageHinkley(1, mode="up", delta=0.3)
    hits = ph.update(x[:, None])
    row = int(hits[0, 0])
    mean, s, sums = 0.0, 0.0, []
    for i, v in enumerate(x[: row + 1]):  # river's arithmetic, written out
        mean += (1.0 / (i + 1)) * (v - mean)
        s = 0.9999 * s + (v - mean) - 0.3
        sums.append(s)
    last_min = max(i for i in range(len(sums)) if sums[i] == min(sums))
    assert ph.post_change_count.tolist() == [row - last_min]
    assert 480 <= last_min <= 510


def test_post_change_counts_survive_a_state_round_trip() -> None:
    X = _shifty(3)
    a = PageHinkley(6, threshold=20.0)
    b = PageHinkley(6, threshold=20.0)
    a.update(X[:5000])
    b.update(X[:5000])
    c = PageHinkley.from_state(json.loads(json.dumps(b.to_builtin_state())))
    ha, hc = a.update(X[5000:]), c.update(X[5000:])
    assert len(ha) and np.array_equal(ha, hc) and np.array_equal(a.post_change_count, c.post_change_count)


def test_change_split_finds_a_late_shift() -> None:
    rng = np.random.default_rng(9)
    values = np.r_[rng.normal(0, 1, 800), rng.normal(1, 1, 40)]
    assert abs(change_split(values) - 800) <= 10
    assert change_split(np.ones(9)) == 0  # too few for two sides of 5


# ---------------------------------------------------------------------- the schema


def test_change_point_is_in_the_json_only_where_there_is_one() -> None:
    w = WindowSummary(count=3, mean=1.0, std=0.5, quantiles={}, missing_ratio=0.0)
    base: dict[str, Any] = dict(
        event_id="e", model="m", feature="f", detector="psi", status="drift", severity="warning",
        statistic=0.3, statistic_name="psi", threshold=0.2,
        source=SourcePosition(topic="t", partition=0, offset=1), event_time=None, detected_at=0.0,
        window=w, reference=None,
    )  # fmt: skip
    plain = json.loads(DriftEvent(**base).model_dump_json())
    assert "change_point" not in plain  # as in schema 1.0
    located = DriftEvent(**{**base, "detector": "adwin", "change_point": {"values_since": 3, "events_since": 4}})
    doc = json.loads(located.model_dump_json())
    assert doc["change_point"] == {"values_since": 3, "events_since": 4}
    assert DriftEvent.model_validate(doc) == located
    assert DriftEvent.model_json_schema()["x-schema-version"] == "1.3"


def _builtin(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, dict):
        return {k: _builtin(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_builtin(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
