"""detectors.episodes through the engine: one change, one alert, whichever detectors see it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.engine import Engine, Item
from driftsentinel.detectors.episodes import FeatureEpisodes
from driftsentinel.schemas import DriftEvent, FeatureBatch, SidecarConfig, SourcePosition, WindowSummary
from driftsentinel.schemas.alerts import ChangePoint
from driftsentinel.schemas.fastdecode import EventView
from driftsentinel.schemas.signals import DriftSignal
from driftsentinel.stream.checkpoint import Checkpoint

T = "features"
W = WindowSummary(count=1, mean=0.0, std=None, quantiles={}, missing_ratio=0.0)


def _items(columns: dict[str, np.ndarray], model: str = "m") -> list[Item]:
    n = len(next(iter(columns.values())))
    return [
        (i, EventView(model=model, ts=1.0 + i, features={k: float(v[i]) for k, v in columns.items()}), 1.0 + i)
        for i in range(n)
    ]


def _events(items: list[Item], size: int, engine: Engine | None = None, start: int = 0) -> list[DriftEvent]:
    engine = engine or Engine(SidecarConfig(), input_topic=T)
    out: list[DriftEvent] = []
    for k in range(start, len(items), size):
        out += engine.process(T, 0, items[k : k + size], now=0.0).events
    return out


def _signals(x: np.ndarray, names: tuple[str, ...] = ("x",)) -> list[DriftSignal]:
    """What the bank alone decides (every detector's own decisions), rows = offsets."""
    bank = DetectorBank(SidecarConfig().detectors)
    x = x.reshape(len(x), -1)
    return bank.update(FeatureBatch(list(names), x, np.arange(len(x)), np.full(len(x), np.nan)))


def _opening(drifts: list[DriftSignal]) -> tuple[DriftSignal, list[str]]:
    """The signal a feature episode's drift event carries (the earliest change point) and its detectors."""
    at = [s for s in drifts if s.row == min(d.row for d in drifts)]
    first = max(at, key=lambda s: s.change_point.values_since if s.change_point else 0)
    return first, [first.detector] + [s.detector for s in at if s is not first]


# ---------------------------------------------------------------------- one change, one alert
def test_a_mean_shift_seen_by_several_detectors_a_few_events_apart_is_one_episode() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=8000)
    x[3000:3600] += 3.0
    signals = _signals(x)
    drifts = [s for s in signals if s.status == "drift"]
    assert {"adwin", "page_hinkley"} <= {s.detector for s in drifts}  # each decides, at different rows
    assert len({s.row for s in drifts}) >= 2
    last_resolved = max(s.row for s in signals if s.status == "resolved")
    assert max(s.row for s in drifts) < last_resolved  # one change: every detection before it is over
    out = Engine(SidecarConfig(), input_topic=T).process(T, 0, _items({"x": x}), now=0.0)
    events = out.events
    # what each detector decided stays visible (replay's report), each in its own name
    assert [(e.detector, e.source.offset) for e in out.detections if e.status == "drift"] == [
        (s.detector, s.row) for s in drifts
    ]
    assert [e.status for e in events] == ["drift", "resolved"]
    first, at_first = _opening(drifts)
    assert events[0].source.offset == first.row and events[0].detectors == at_first
    assert events[1].source.offset == last_resolved
    assert set(events[1].detectors) == {s.detector for s in drifts}  # the later ones joined: listed at the end
    assert events[1].detectors[0] == events[1].detector == events[0].detector  # the opener (the 1.1 field kept)
    assert len({e.event_id for e in events}) == 2


def test_detectors_deciding_at_the_same_event_are_listed_on_its_drift_with_the_earliest_change_point() -> None:
    ep = FeatureEpisodes(merge_events=1000)
    adwin, ph, ks = _sig("adwin", "drift", 40), _sig("page_hinkley", "drift", 60), _sig("ks", "drift")
    (pub,) = ep.decide("m", 2015, [adwin, ks, ph])
    assert pub.signal is ph and pub.detector == "page_hinkley"  # its change point is the earliest
    assert pub.detectors == ["page_hinkley", "adwin", "ks"]  # then in the order they came
    # through the engine: whatever detectors the bank has, the drift event is the opening row's
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    x[2000:2600] += 6.0
    first, at_first = _opening([s for s in _signals(x) if s.status == "drift"])
    event = next(e for e in _events(_items({"x": x}), 5000) if e.status == "drift")
    assert event.detectors == at_first and event.source.offset == first.row
    assert event.detector == first.detector and event.change_point == first.change_point
    assert event.window == first.window and event.statistic == first.statistic


def test_two_features_are_two_episodes() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 8000))
    x[3000:3600] += 3.0
    y[3300:3900] -= 3.0
    signals = _signals(np.c_[x, y], ("x", "y"))
    events = _events(_items({"x": x, "y": y}), 8000)
    for f in ("x", "y"):
        mine = [e for e in events if e.feature == f]
        agreed = {s.detector for s in signals if s.feature == f and s.status == "drift"}
        assert [e.status for e in mine] == ["drift", "resolved"] and len(agreed) >= 2
        assert set(mine[1].detectors) == agreed


def test_a_second_change_after_the_resolution_and_the_merge_span_is_a_new_episode() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=16000)
    x[3000:3600] += 3.0
    x[10000:10600] += 3.0
    events = _events(_items({"x": x}), 16000)
    assert [e.status for e in events] == ["drift", "resolved", "drift", "resolved"]
    resolved_at, again = events[1].source.offset, events[2].source.offset
    assert again - resolved_at > SidecarConfig().alerts.merge_events
    assert events[3].detectors[0] == events[2].detector


# ---------------------------------------------------------------------- the merge span (one feature's decisions)
def _sig(detector: str, status: str, since: int | None = None, feature: str = "x") -> DriftSignal:
    cp = ChangePoint(values_since=since) if since else None
    return DriftSignal(0, feature, detector, status, 1.0, "mean_shift_sigma", None, W, None, cp)  # type: ignore[arg-type]


def _said(pubs: list[Any]) -> list[tuple[str, str, list[str]]]:
    return [(p.signal.status, p.detector, p.detectors) for p in pubs]


def test_a_detector_late_by_less_than_the_merge_span_joins_silently_a_detector_of_the_episode_opens_a_new_one() -> None:
    ep = FeatureEpisodes(merge_events=1000)
    assert _said(ep.decide("m", 100, [_sig("adwin", "drift", 30)])) == [("drift", "adwin", ["adwin"])]
    assert _said(ep.decide("m", 500, [_sig("adwin", "resolved")])) == [("resolved", "adwin", ["adwin"])]
    # a window test's window closes 1,000 events later: the same change, no page, no resolved of its own
    assert ep.decide("m", 1500, [_sig("ks", "drift")]) == []
    assert ep.decide("m", 6500, [_sig("ks", "resolved")]) == []
    # ADWIN again: it saw the change go, so this is a new one, even within the span
    assert _said(ep.decide("m", 7000, [_sig("adwin", "drift", 10)])) == [("drift", "adwin", ["adwin"])]
    assert _said(ep.decide("m", 8000, [_sig("adwin", "resolved")])) == [("resolved", "adwin", ["adwin"])]
    # another detector past the span: a new episode
    assert _said(ep.decide("m", 9001, [_sig("ks", "drift")])) == [("drift", "ks", ["ks"])]


def test_merge_events_zero_merges_only_while_open_and_a_detector_resolving_where_another_fires_keeps_it_open() -> None:
    ep = FeatureEpisodes(merge_events=0)
    ep.decide("m", 10, [_sig("ks", "drift")])
    # at one event: psi fires as ks resolves -> the episode goes on (no resolved, no new drift)
    assert ep.decide("m", 20, [_sig("ks", "resolved"), _sig("psi", "drift")]) == []
    assert _said(ep.decide("m", 30, [_sig("psi", "resolved")])) == [("resolved", "ks", ["ks", "psi"])]
    assert _said(ep.decide("m", 31, [_sig("js", "drift")])) == [("drift", "js", ["js"])]


def test_the_cooldown_mutes_an_episode_whole_and_a_resolved_without_a_recorded_drift_is_its_own_event() -> None:
    cfg = SidecarConfig.model_validate({"alerts": {"cooldown_events": 100_000}})
    rng = np.random.default_rng(2)
    x = rng.normal(size=16000)
    x[3000:3600] += 3.0
    x[10000:10600] += 3.0
    events = _events(_items({"x": x}), 4096, Engine(cfg, input_topic=T))
    # the second episode opens within the opener's cooldown: neither its drift nor its resolved is said
    assert [e.status for e in events] == ["drift", "resolved"]
    # a state from before feature episodes (a drift decided, no episode recorded): resolved as before
    ep = FeatureEpisodes(1000)
    assert _said(ep.decide("m", 5, [_sig("adwin", "resolved")])) == [("resolved", "adwin", ["adwin"])]


# ---------------------------------------------------------------------- however cut, across restarts
def _two_changes() -> list[Item]:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(2, 14000))
    x[3000:3600] += 3.0
    y[3100:3700] -= 2.0
    x[9500:10100] += 6.0
    return _items({"x": x, "y": y})


def test_episodes_do_not_depend_on_how_the_stream_is_cut_nor_on_a_restart_mid_episode() -> None:
    items = _two_changes()
    whole = _events(items, len(items))
    assert sum(e.status == "drift" for e in whole) == 3 and sum(e.status == "resolved" for e in whole) == 3
    assert any(len(e.detectors) > 1 for e in whole)
    ids = [(e.event_id, e.detectors) for e in whole]
    assert [(e.event_id, e.detectors) for e in _events(items, 333)] == ids
    assert [(e.event_id, e.detectors) for e in _events(items, 4096)] == ids
    # a checkpoint while both features are in an episode (x's ADWIN has not joined yet)
    at = whole[0].source.offset + 5
    first = Engine(SidecarConfig(), input_topic=T)
    _events(items[:at], 1000, first)
    state = first.state(T, 0)
    assert any(entry[1] == "x" and entry[7] == -1 for entry in state["episodes"])
    blob = Checkpoint("g", T, 0, at, state).encode()
    restored = Engine(SidecarConfig(), input_topic=T)
    restored.restore(T, 0, Checkpoint.decode(blob).engine, replay_until=at)
    after = _events(items, 777, restored, start=at)
    assert [(e.event_id, e.detectors) for e in after] == [
        (e.event_id, e.detectors) for e in whole if e.source.offset >= at
    ]


def test_a_checkpoint_from_before_feature_episodes_still_loads_and_resolves_each_detector_as_it_was_published() -> None:
    items = _two_changes()
    whole = _events(items, len(items))
    at = whole[0].source.offset + 1000  # x and y in drift
    first = Engine(SidecarConfig(), input_topic=T)
    _events(items[:at], 1000, first)
    state = first.state(T, 0)
    del state["episodes"]  # as an older version wrote it
    old = Checkpoint.decode(Checkpoint("g", T, 0, at, state).encode()).engine
    assert "episodes" not in old
    restored = Engine(SidecarConfig(), input_topic=T)
    restored.restore(T, 0, old, replay_until=at)
    after = _events(items, 1000, restored, start=at)
    # each detector in drift at the checkpoint (its drift published in its own name) resolves in its own name
    x, y = (np.array([it[1].features[f] for it in items]) for f in ("x", "y"))  # type: ignore[union-attr]
    signals = [s for s in _signals(np.c_[x, y], ("x", "y")) if s.row < 9000]
    before = {(s.feature, s.detector) for s in signals if s.status == "drift" and s.row < at}
    own = {(s.feature, s.detector) for s in signals if s.status == "resolved" and s.row >= at} & before
    assert len(own) >= 4
    resolved = {(e.feature, tuple(e.detectors)) for e in after if e.status == "resolved" and e.source.offset < 9000}
    assert {(f, (d,)) for f, d in own} <= resolved
    # the next change is one episode again
    later = [e for e in after if e.source.offset >= 9000]
    assert [e.status for e in later] == ["drift", "resolved"]


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        ("x", "expected a list"),
        ([["m", "x", "adwin"]], "expected [model, feature"),
        ([["m", "x", "adwin", ["page_hinkley"], [], [], 1, 5]], "agreed must start with the opener"),
        ([["m", "x", "adwin", ["adwin"], ["adwin"], [], 1, 5]], "an open episode has active detectors"),
        ([["m", "x", "adwin", ["adwin", "adwin"], [], [], 1, 5]], "named twice"),
        ([["m", "x", "adwin", ["adwin"], [], [], 2, 5]], "published must be 0 or 1"),
        ([["m", "x", "adwin", ["adwin"], [], ["k"] * 300, 1, 5]], "at most 256"),
    ],
)
def test_a_checkpointed_episode_state_we_did_not_write_is_refused_and_the_engine_left_as_it_was(
    entries: Any, words: str
) -> None:
    engine = Engine(SidecarConfig(), input_topic=T)
    with pytest.raises(ValueError, match=words.replace("[", r"\[")):
        engine.restore(T, 0, {"banks": {}, "policy": [], "episodes": entries})
    assert not engine.owns(T, 0)


# ---------------------------------------------------------------------- the schema
def test_schema_1_2_lists_the_detectors_and_reads_a_1_1_event() -> None:
    base: dict[str, Any] = dict(
        event_id="e", model="m", feature="f", detector="adwin", status="drift", severity="warning",
        statistic=0.3, statistic_name="mean_shift_sigma", threshold=None,
        source=SourcePosition(topic="t", partition=0, offset=1), event_time=None, detected_at=0.0,
        window=W, reference=None,
    )  # fmt: skip
    assert DriftEvent.model_json_schema()["x-schema-version"] == "1.3"
    old = json.loads(DriftEvent(**base).model_dump_json())
    del old["detectors"]  # a 1.1 document
    assert DriftEvent.model_validate(old).detectors == ["adwin"]
    both = DriftEvent(**base, detectors=["adwin", "page_hinkley"])
    assert json.loads(both.model_dump_json())["detectors"] == ["adwin", "page_hinkley"]
    for wrong in (["page_hinkley", "adwin"], ["adwin", "adwin"]):
        with pytest.raises(ValueError, match="detectors must"):
            DriftEvent(**base, detectors=wrong)
