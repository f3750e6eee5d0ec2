"""detectors.engine: the one place alerts are decided (cut-invariance, restore, replay_until, late labels)."""

from __future__ import annotations

import numpy as np

from driftsentinel.detectors.engine import Engine, Item, LabelItem
from driftsentinel.schemas import SidecarConfig
from driftsentinel.schemas.columnar import decode_columns, encode_columns
from driftsentinel.schemas.fastdecode import EventView
from driftsentinel.schemas.labels import LabelEvent
from driftsentinel.stream.checkpoint import Checkpoint

T = "features"


def _stream(n: int = 9000, seed: int = 4) -> list[Item]:
    """Two models interleaved, both drifting at n // 2, and a columnar message in the middle."""
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    for i in range(n):
        shift = 3.0 if i >= n // 2 else 0.0
        model = "a" if i % 3 else "b"
        features = {"x": float(rng.normal(shift)), "c": "DE" if i % 2 else "FR"}
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
        out += [(e.event_id, e.source.offset) for e in engine.process(T, 0, items[k:k + size], now=0.0).events]
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
