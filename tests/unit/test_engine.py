"""detectors.engine: the one place alerts are decided (cut-invariance, restore, replay_until, late labels)."""

from __future__ import annotations

import numpy as np

from driftsentinel.detectors.engine import Engine, Item, LabelItem
from driftsentinel.schemas import DriftEvent, SidecarConfig
from driftsentinel.schemas.columnar import decode_columns, encode_columns
from driftsentinel.schemas.fastdecode import EventView
from driftsentinel.schemas.labels import LabelEvent
from driftsentinel.stream.checkpoint import Checkpoint

T = "features"


def _stream(n: int = 9000, seed: int = 4) -> list[Item]:
    """Two models interleaved, both shifted for 500 events from n // 2, and a columnar message in the middle."""
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    for i in range(n):
        shift = 3.0 if n // 2 <= i < n // 2 + 500 else 0.0
        model = "a" if i % 3 else "b"
        features: dict[str, float | int | bool | str | None] = {
            "x": float(rng.normal(shift)),
            "c": "DE" if i % 2 else "FR",
        }
        items.append((len(items), EventView(model=model, ts=1.0 + i, features=features), 1.0 + i))
        if i == n // 2 + 100:
            z = np.r_[rng.normal(0, 1, 500), rng.normal(5, 1, 500)]
            items.append((len(items), decode_columns(encode_columns(numeric={"z": z}, model="col")), 1.0 + i))
    return items


def _run(items: list[Item], size: int, engine: Engine | None = None, start: int = 0) -> list[tuple[str, int]]:
    """(event_id, offset) of the alerts, feeding ``items[start:]`` in calls of ``size``."""
    engine = engine or Engine(SidecarConfig(), input_topic=T)
    out = []
    for k in range(start, len(items), size):
        out += [(e.event_id, e.source.offset) for e in engine.process(T, 0, items[k : k + size], now=0.0).events]
    return out


def test_the_same_events_cut_differently_give_the_same_alerts_in_the_same_order() -> None:
    items = _stream()
    whole = _run(items, len(items))
    assert len(whole) >= 3
    assert _run(items, 4096) == whole
    assert _run(items, 333) == whole


def test_a_restored_checkpoint_continues_as_if_never_stopped_and_replay_until_silences_the_past() -> None:
    items = _stream()
    whole = _run(items, 1000)
    first = Engine(SidecarConfig(), input_topic=T)
    _run(items[:4000], 1000, first)
    blob = Checkpoint("g", T, 0, 4000, first.state(T, 0)).encode()
    restored = Engine(SidecarConfig(), input_topic=T)
    until = whole[1][1]  # as if the first alerts had been published before a crash
    restored.restore(T, 0, Checkpoint.decode(blob).engine, replay_until=until)
    after = _run(items, 1000, restored, start=4000)
    assert after == [a for a in whole if a[1] >= until] and len(after) < len(whole)


def _labelled(engine: Engine, label_t: float) -> str:
    engine.restore(T, 0, None)
    engine.process(T, 0, [(0, EventView(model="m", id="r1", features={"x": 1.0}, prediction="ok"), 10.0)], 0.0)
    labels: list[LabelItem] = [(7, LabelEvent(id="r1", label="fraud"), label_t)]
    out = engine.process_labels("labels", 0, labels, 0.0)
    assert out.labels_joined == {"m": 1}
    return "joined"


def test_late_labels_join_in_the_engine_and_count_what_never_matched() -> None:
    engine = Engine(SidecarConfig(), input_topic=T, labels_topic="labels")
    assert _labelled(engine, label_t=20.0) == "joined"
    out = engine.process_labels("labels", 0, [(8, LabelEvent(id="nobody", label="ok"), 30.0)], 0.0)
    assert out.labels_joined == {} and engine.readouts().labels_pending == {"prediction": 0, "label": 1}
    assert engine.finish(T, 0).labels_unmatched == {"label": 1}
    orphan = engine.process_labels("labels", 5, [(0, LabelEvent(id="r9", label="ok"), 1.0)], 0.0)
    assert orphan.orphan_labels == 1


def test_a_concept_alert_of_labels_read_ahead_is_not_lost_across_a_restart() -> None:
    """Labels produced after their predictions but read ahead of them: every label is
    consumed (and its offset committed) long before the pair it completes, and the concept
    drift alert points at the label (later message time). A crash after the labels' offsets
    were committed but before the prediction that completed the pair: the alert was never
    published, so the restarted engine must publish it, exactly once."""
    rng = np.random.default_rng(3)
    n, change = 6000, 3000
    events = [(i, EventView(model="m", id=f"r{i}", features={"x": 0.0}, prediction="ok"), 100.0 + i) for i in range(n)]
    wrong = [rng.random() < (0.05 if i < change else 0.4) for i in range(n)]
    labels: list[LabelItem] = [
        (i, LabelEvent(id=f"r{i}", label="fraud" if w else "ok"), 100_000.0 + i) for i, w in enumerate(wrong)
    ]

    def run(engine: Engine, start: int, until: int) -> list[DriftEvent]:
        out: list[DriftEvent] = []
        for a in range(start, until, 500):
            out += engine.process(T, 0, events[a : min(a + 500, until)], now=0.0).events
        return out

    whole = Engine(SidecarConfig(), input_topic=T, labels_topic="labels")
    whole.restore(T, 0, None)
    whole.process_labels("labels", 0, labels, now=0.0)  # every label first (read ahead)
    alerts = [e for e in run(whole, 0, n) if e.detector == "concept_drift"]
    assert len(alerts) == 1 and alerts[0].source.topic == "labels"
    at = alerts[0].source.offset  # the pair's prediction has the same number here

    # the first run: labels all read and committed, a checkpoint at `at - 700`, the
    # input committed up to `at - 200`, then a crash before the pair completed
    first = Engine(SidecarConfig(), input_topic=T, labels_topic="labels")
    first.restore(T, 0, None)
    first.process_labels("labels", 0, labels, now=0.0)
    assert not [e for e in run(first, 0, at - 700) if e.detector == "concept_drift"]
    blob = Checkpoint("g", T, 0, at - 700, first.state(T, 0), labels_next_offset=n).encode()
    second = Engine(SidecarConfig(), input_topic=T, labels_topic="labels")
    second.restore(T, 0, Checkpoint.decode(blob).engine, replay_until=at - 200, labels_replay_until=n)
    again = [e for e in run(second, at - 700, n) if e.detector == "concept_drift"]
    assert [e.event_id for e in again] == [alerts[0].event_id]


# ---------------------------------------------------------------------- detectors.max_models


def _many_models(n: int = 6000, models: int = 40, seed: int = 7) -> list[Item]:
    """Mostly model m0 (drifting at n // 2), new names keep arriving; a columnar message of a late model."""
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    for i in range(n):
        model = f"m{i // 10 % models}" if i % 10 == 0 else "m0"
        shift = 3.0 if n // 2 <= i < n // 2 + 500 else 0.0
        items.append((len(items), EventView(model=model, ts=1.0 + i, features={"x": float(rng.normal(shift))}), 1.0))
        if i == n // 3:
            batch = decode_columns(encode_columns(numeric={"z": rng.normal(0, 1, 50)}, model="late-columnar"))
            items.append((len(items), batch, 1.0))
    return items


def _bounded(max_models: int) -> SidecarConfig:
    return SidecarConfig.model_validate({"detectors": {"max_models": max_models}})


def _run_counting(items: list[Item], size: int, engine: Engine) -> tuple[list[str], int, dict[str, int]]:
    alerts: list[str] = []
    dropped, per_model = 0, dict[str, int]()
    for k in range(0, len(items), size):
        out = engine.process(T, 0, items[k : k + size], now=0.0)
        alerts += [e.event_id for e in out.events]
        dropped += out.dropped_model_events
        for m, c in out.events_per_model.items():
            per_model[m] = per_model.get(m, 0) + c
    return alerts, dropped, per_model


def test_max_models_admits_the_first_models_of_a_partition_however_the_stream_is_cut() -> None:
    items = _many_models()
    first_seen = list(dict.fromkeys(m.model for _, m, _ in items if isinstance(m, EventView)))
    runs = []
    for size in (len(items), 1000, 97, 1):
        engine = Engine(_bounded(5), input_topic=T)
        alerts, dropped, per_model = _run_counting(items, size, engine)
        assert list(engine.banks(T, 0)) == first_seen[:5]  # first come, in offset order
        assert sum(per_model.values()) + dropped == 6050  # every event monitored or counted
        runs.append((alerts, dropped, per_model))
    assert all(r == runs[0] for r in runs[1:])
    assert runs[0][1] > 0 and len(runs[0][0]) > 0  # some dropped, and the admitted still alert


def test_max_models_survives_a_restart_and_an_oversized_state_is_refused() -> None:
    items = _many_models()
    whole = Engine(_bounded(5), input_topic=T)
    expected = _run_counting(items, 500, whole)
    first = Engine(_bounded(5), input_topic=T)
    before = _run_counting(items[:1200], 500, first)
    blob = Checkpoint("g", T, 0, 1200, first.state(T, 0)).encode()
    restored = Engine(_bounded(5), input_topic=T)
    restored.restore(T, 0, Checkpoint.decode(blob).engine, replay_until=1200)
    after = _run_counting(items[1200:], 500, restored)
    assert list(restored.banks(T, 0)) == list(whole.banks(T, 0))
    assert before[0] + after[0] == expected[0] and before[1] + after[1] == expected[1]
    smaller = Engine(_bounded(4), input_topic=T)
    try:
        smaller.restore(T, 0, Checkpoint.decode(blob).engine)
    except ValueError as exc:
        assert "max_models" in str(exc)
    else:
        raise AssertionError("a state with more models than max_models was accepted")
    assert not smaller.owns(T, 0)


def test_twenty_thousand_distinct_models_keep_max_models_banks_and_count_the_rest() -> None:
    engine = Engine(SidecarConfig(), input_topic=T)  # the default bound
    limit = SidecarConfig().detectors.max_models
    items: list[Item] = [(i, EventView(model=f"model-{i}", features={"x": float(i % 7)}), 0.0) for i in range(20_000)]
    _, dropped, per_model = _run_counting(items, 4096, engine)
    assert len(engine.banks(T, 0)) == limit == len(per_model)
    assert dropped == 20_000 - limit
