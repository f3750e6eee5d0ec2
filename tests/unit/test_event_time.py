"""Issue 24 item 6: event time can no longer switch window tests off; always-missing features have gauges.

A ``ts`` far from its message's Kafka time is replaced by the message time (counted); an
event-time window position far ahead of the events follows them back (a clock jump back,
a stray far-future ``ts`` in a replay, a far-future position in a restored checkpoint).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.batching import MessageTimes, to_batches
from driftsentinel.detectors.engine import Engine
from driftsentinel.detectors.profile import build_profile
from driftsentinel.schemas import BankConfig, FeatureBatch, SidecarConfig, WindowTestConfig
from driftsentinel.schemas.fastdecode import EventView
from driftsentinel.schemas.profile import ReferenceProfile

T0 = 1_700_000_000.0
YEAR_9999 = 253_402_300_799.0
N, SHIFT, STEP = 12_000, 6_000, 0.1  # 10 events/s: 600 per 60 s window; the mean moves by 1 std at SHIFT
TOPIC = "features"


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return build_profile({"x": np.random.default_rng(10).normal(size=20_000).tolist()}, source="t")


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    v = np.random.default_rng(11).normal(size=N)
    v[SHIFT:] += 1.0
    return v


def _bank(profile: ReferenceProfile) -> DetectorBank:
    return DetectorBank(BankConfig(window_tests=WindowTestConfig(window_seconds=60)), profile)


def _first_ks(bank: DetectorBank, x: np.ndarray, ts: np.ndarray) -> int | None:
    sigs = bank.update(FeatureBatch(["x"], x.reshape(-1, 1), np.arange(len(x)), ts))
    rows = [s.row for s in sigs if s.detector == "ks" and s.status == "drift"]
    return min(rows) if rows else None


def _engine(profile: ReferenceProfile) -> Engine:
    cfg = SidecarConfig.model_validate({"detectors": {"window_tests": {"window_seconds": 60}}})
    return Engine(cfg, TOPIC, profile=profile)


def _items(x: np.ndarray, ts: np.ndarray, arrival: np.ndarray) -> list:
    return [
        (i, EventView(model="m", features={"x": float(x[i])}, ts=float(ts[i])), float(arrival[i]))
        for i in range(len(x))
    ]


def _run(engine: Engine, items: list, cuts: int = 1) -> tuple[list[int], dict[str, int]]:
    """ks detections' offsets (its own decisions, published or joined to a feature episode) and the
    fallback counts, the items fed in ``cuts`` calls."""
    ks: list[int] = []
    fallbacks: dict[str, int] = {}
    for part in np.array_split(np.arange(len(items)), cuts):
        out = engine.process(TOPIC, 0, [items[i] for i in part], now=0.0)
        ks += [e.source.offset for e in out.detections if e.detector == "ks" and e.status == "drift"]
        for model, n in out.event_time_fallbacks.items():
            fallbacks[model] = fallbacks.get(model, 0) + n
    return ks, fallbacks


CLEAN_TS = T0 + np.arange(N) * STEP


def test_clean_stream_baseline(profile: ReferenceProfile, x: np.ndarray) -> None:
    """The reference point: the shift is caught at the first event of the window after the first shifted one."""
    first = _first_ks(_bank(profile), x, CLEAN_TS)
    assert first is not None and SHIFT <= first <= SHIFT + 2 * 600


def test_one_year_9999_event_does_not_stop_the_windows(profile: ReferenceProfile, x: np.ndarray) -> None:
    ts = CLEAN_TS.copy()
    ts[100] = YEAR_9999
    clean = _first_ks(_bank(profile), x, CLEAN_TS)
    # without message times (a replayed file): the window position follows the events back
    assert _first_ks(_bank(profile), x, ts) == clean
    # with message times (the sidecar): the stray ts is replaced and counted, nothing else changes
    ks, fallbacks = _run(_engine(profile), _items(x, ts, CLEAN_TS + 0.5))
    assert ks == [clean] and fallbacks == {"m": 1}


@pytest.mark.parametrize("cuts", [1, 7])
def test_ts_zero_from_some_point_falls_back(profile: ReferenceProfile, x: np.ndarray, cuts: int) -> None:
    ts = CLEAN_TS.copy()
    ts[3000:] = 0.0
    clean = _first_ks(_bank(profile), x, CLEAN_TS)
    ks, fallbacks = _run(_engine(profile), _items(x, ts, CLEAN_TS), cuts)  # message times = the true times
    assert ks == [clean] and fallbacks == {"m": N - 3000}


def test_one_hour_backward_jump_delays_detection_by_at_most_a_window(profile: ReferenceProfile) -> None:
    n = 60_000  # before: the jump held every window open for an hour (first ks alert 3,340 s after the shift)
    x = np.random.default_rng(12).normal(size=n)
    x[SHIFT:] += 1.0
    ts = T0 + np.arange(n) * STEP
    ts[3000:] -= 3600.0
    first = _first_ks(_bank(profile), x, ts)  # no message times: the window follows the clock back
    assert first is not None and (first - SHIFT) * STEP <= 2 * 60
    ks, fallbacks = _run(_engine(profile), _items(x, ts, T0 + np.arange(n) * STEP))  # message times: replaced
    assert ks and (ks[0] - SHIFT) * STEP <= 2 * 60 and fallbacks == {"m": n - 3000}


def test_late_events_within_the_tolerance_stay_in_the_current_window(profile: ReferenceProfile, x: np.ndarray) -> None:
    """Disorder is not a clock jump: events up to the tolerance late do not move the window back."""
    ts = CLEAN_TS.copy()
    ts[25::50] -= 300.0  # every 50th event 5 minutes late (tolerance 15 minutes), none at a window's start
    bank = _bank(profile)
    assert _first_ks(bank, x, ts) == _first_ks(_bank(profile), x, CLEAN_TS)
    assert bank.monitor is not None and bank.monitor.bucket == math.floor(CLEAN_TS[-1] / 60)


@pytest.mark.parametrize("position", [math.floor(YEAR_9999 / 60), math.inf, math.nan])
def test_restored_far_future_position_moves_on(profile: ReferenceProfile, x: np.ndarray, position: float) -> None:
    """A checkpoint taken while stuck (before this fix) or crafted: the restored engine still detects."""
    engine = _engine(profile)
    items = _items(x, CLEAN_TS, CLEAN_TS + 0.5)
    _run(engine, items[:3000])
    state = engine.state(TOPIC, 0)
    state["banks"]["m"]["monitor"]["bucket"] = position
    restored = _engine(profile)
    restored.restore(TOPIC, 0, state, replay_until=3000)
    ks, _ = _run(restored, items[3000:])
    assert ks == [_first_ks(_bank(profile), x, CLEAN_TS)]


def test_message_times_unknown_or_missing_ts_are_left_alone() -> None:
    times = MessageTimes([(0, None, 0.0), (1, None, 1000.0), (2, None, 1000.0), (4, None, 1000.0)], tolerance=60)
    batch = FeatureBatch(
        ["x"], np.zeros((4, 1)), np.array([0, 1, 2, 4]), np.array([5.0, np.nan, 1059.0, 1061.0])
    )  # message time 0 = unknown; no ts; inside; outside
    checked, n = times.check(batch, live_from=0)
    assert checked.event_times[[0, 2, 3]].tolist() == [5.0, 1059.0, 1000.0] and np.isnan(checked.event_times[1])
    assert n == 1
    assert times.check(batch, live_from=5)[1] == 0  # re-made rows (before replay_until) are not counted again
    out_of_order = MessageTimes([(7, None, 2000.0), (3, None, 1000.0)], tolerance=60)
    assert out_of_order.at(np.array([3, 7, 5])).tolist()[:2] == [1000.0, 2000.0]


# ---------------------------------------------------------------------- always-missing features


def _statuses(engine: Engine) -> dict[str, float | None]:
    return {s.feature: s.missing_ratio for _, ss in engine.readouts().statuses for s in ss}


def test_an_always_missing_feature_has_gauges() -> None:
    engine = Engine(SidecarConfig(), TOPIC)
    items = [(i, EventView(model="m", features={"x": float(i), "gone": None}), 0.0) for i in range(50)]
    engine.process(TOPIC, 0, items, now=0.0)
    assert _statuses(engine) == {"x": 0.0, "gone": 1.0}
    # it starts sending numbers: the same feature, now partly present
    more = [(50 + i, EventView(model="m", features={"x": 1.0, "gone": 2.0}), 0.0) for i in range(50)]
    engine.process(TOPIC, 0, more, now=0.0)
    assert _statuses(engine)["gone"] == pytest.approx(0.5)


def test_null_then_string_in_one_batch_is_categorical_only() -> None:
    evs = [(0, EventView(model="m", features={"x": 1.0, "c": None})), (1, EventView(model="m", features={"c": "DE"}))]
    batch = to_batches(evs, "d", null_columns=True)["m"]
    assert batch.names == ["x"] and batch.cat_names == ["c"]
    profile = build_profile({"c": ["DE", "FR"] * 500, "x": list(range(1000))}, source="t")
    engine = Engine(SidecarConfig(), TOPIC, profile=profile)  # a profiled categorical: strings later still work
    engine.process(TOPIC, 0, [(0, EventView(model="m", features={"x": 1.0, "c": None}), 0.0)], now=0.0)
    engine.process(TOPIC, 0, [(1, EventView(model="m", features={"x": 1.0, "c": "DE"}), 0.0)], now=0.0)
    bank = engine.banks(TOPIC, 0)["m"]
    assert "c" not in bank.features and bank.monitor is not None and bank.monitor.present["c"] == 1


def test_null_columns_keep_the_feature_order_however_cut() -> None:
    rows: list[dict[str, float | int | bool | str | None]] = [{"a": None, "b": 1.0}, {"c": 3.0}, {"b": 2.0, "a": 4.0}]
    items = [(i, EventView(model="m", features=f), 0.0) for i, f in enumerate(rows)]
    orders = []
    for cut in (1, 2, 3):
        engine = Engine(SidecarConfig(), TOPIC)
        for part in (items[:cut], items[cut:]):
            if part:
                engine.process(TOPIC, 0, part, now=0.0)
        orders.append(engine.banks(TOPIC, 0)["m"].features)
    assert orders == [["a", "b", "c"]] * 3
