"""Late labels: the LabelEvent decoder, the per-partition join and its checkpoint state."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest

from driftsentinel.detectors.concept import ConceptDriftMonitor, pair_error
from driftsentinel.detectors.labels import LabelJoin
from driftsentinel.schemas.events import InvalidEvent
from driftsentinel.schemas.labels import LabelEvent, decode_label


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"\xff", "not_utf8"),
        (b"{", "not_json"),
        (b"[1]", "not_object"),
        (b'{"label": 1}', "missing_id"),
        (b'{"id": "", "label": 1}', "missing_id"),
        (b'{"id": "a"}', "missing_label"),
        (b'{"id": "a", "label": null}', "missing_label"),
        (b'{"id": "a", "label": Infinity}', "non_finite_value"),
        (b'{"id": "a", "label": 1' + b"0" * 400 + b"}", "non_finite_value"),
        (b'{"id": "a", "label": [1]}', "wrong_type"),
        (b'{"id": 5, "label": 1}', "wrong_type"),
        (b'{"id": "a", "label": 1, "ts": "yesterday"}', "wrong_type"),
        (b'{"id": "\\ud800", "label": 1}', "not_utf8"),
    ],
)
def test_malformed_labels_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as exc:
        decode_label(raw)
    assert exc.value.reason == reason


def test_labels_keep_their_type() -> None:
    assert decode_label(b'{"id": "a", "label": true}').label is True
    assert decode_label(b'{"id": "a", "label": 3}').label == 3.0
    assert decode_label(b'{"id": "a", "label": "fraud", "ts": "1970-01-01T00:01:00Z", "x": 1}').ts == 60.0


@pytest.mark.parametrize(
    ("prediction", "label", "error"),
    [
        ("a", "a", 0.0),
        ("a", "b", 1.0),
        (0.25, True, 0.75),
        (0.25, "false", 0.25),
        (2.0, 5.0, 3.0),
        (True, "true", 0.0),
        ("true", 1.0, 0.0),
        (1.0, "fraud", 1.0),
    ],
)
def test_pair_error(prediction: object, label: object, error: float) -> None:
    assert pair_error(prediction, label) == pytest.approx(error)


def test_join_pairs_in_either_order_and_bounds_what_waits() -> None:
    join = LabelJoin(max_pending=3, max_age_s=100.0)
    assert join.add_label(LabelEvent(id="early", label="x"), offset=0, t=0.0) is None
    hit = join.add_prediction("early", "m", "x", t=1.0)
    assert hit is not None and (hit.offset, hit.model) == (0, "m")
    for i in range(5):  # 5 predictions that never get a label, 3 may wait
        join.add_prediction(f"p{i}", "m", 0.5, t=2.0)
    assert join.pending() == {"prediction": 3, "label": 0}
    assert join.take_unmatched() == {"prediction": 2, "label": 0}
    assert join.take_unmatched() == {"prediction": 0, "label": 0}
    join.add_label(LabelEvent(id="late", label=1.0), offset=9, t=500.0)  # moves message time past the limit
    join.expire()
    assert join.pending() == {"prediction": 0, "label": 1}
    assert join.take_unmatched() == {"prediction": 3, "label": 0}


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_join_state_round_trip_continues_like_an_unbroken_join(codec: str) -> None:
    rng = np.random.default_rng(3)
    ops = [("p" if rng.random() < 0.5 else "l", f"id{int(rng.integers(300))}", float(i)) for i in range(2000)]

    def run(join: LabelJoin, part: list) -> list:
        out = []
        for i, (side, key, t) in enumerate(part):
            hit = (
                join.add_prediction(key, "m", t, t)
                if side == "p"
                else join.add_label(LabelEvent(id=key, label=t), offset=i, t=t)
            )
            join.expire()
            out.append(hit)
        return out

    whole = LabelJoin(max_pending=50, max_age_s=400.0)
    expected = run(whole, ops)
    first = LabelJoin(max_pending=50, max_age_s=400.0)
    got = run(first, ops[:1000])
    state = first.state_dict()
    state = json.loads(json.dumps(state)) if codec == "json" else msgpack.unpackb(msgpack.packb(state))
    second = LabelJoin.from_state(state, max_pending=50, max_age_s=400.0)
    rest = run(second, ops[1000:])
    # offsets restart with the enumerate in run(); compare the rest by what was joined
    assert [None if h is None else (h.model, h.prediction, h.label) for h in got + rest] == [
        None if h is None else (h.model, h.prediction, h.label) for h in expected
    ]
    assert second.join.unmatched == whole.join.unmatched and second.pending() == whole.pending()


def test_errors_fed_one_by_one_or_in_a_batch_decide_alike() -> None:
    rng = np.random.default_rng(5)
    err = np.r_[rng.random(4000) < 0.1, rng.random(4000) < 0.3].astype(float)
    batch = ConceptDriftMonitor().update_errors(err)
    one = ConceptDriftMonitor()
    split = [s.row + 1000 * k for k in range(8) for s in one.update_errors(err[1000 * k : 1000 * (k + 1)])]
    assert [s.row for s in batch] == split and len(batch) == 1 and batch[0].row >= 4000


def test_replay_joins_a_labels_file_by_id(tmp_path) -> None:
    from driftsentinel.stream.cli import main

    rng = np.random.default_rng(9)
    events, labels = [], []
    for i in range(20_000):
        events.append(
            json.dumps({"model": "m", "id": f"r{i}", "features": {"x": float(rng.normal())}, "prediction": True})
        )
        wrong = rng.random() < (0.1 if i < 10_000 else 0.3)
        labels.append(json.dumps({"id": f"r{i}", "label": not wrong}))
    labels.reverse()  # arrival order of labels does not matter offline
    labels.append('{"label": true}')
    (tmp_path / "events.jsonl").write_text("\n".join(events) + "\n")
    (tmp_path / "labels.jsonl").write_text("\n".join(labels) + "\n")
    out = tmp_path / "alerts.jsonl"
    assert (
        main(
            [
                "replay",
                "--input",
                str(tmp_path / "events.jsonl"),
                "--labels",
                str(tmp_path / "labels.jsonl"),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    alerts = [json.loads(a) for a in out.read_text().splitlines()]
    concept = [a for a in alerts if a["detector"] == "concept_drift"]
    assert len(concept) == 1 and 10_000 <= concept[0]["source"]["offset"] < 12_000, concept
    assert main(["replay", "--input", str(tmp_path / "events.jsonl"), "--labels", str(tmp_path / "nope.jsonl")]) == 2


def test_replay_reports_how_many_labels_joined(tmp_path, capsys) -> None:
    from driftsentinel.stream.cli import main

    (tmp_path / "e.jsonl").write_text('{"id": "a", "features": {}, "prediction": 1}\n{"features": {}}\n')
    (tmp_path / "l.jsonl").write_text('{"id": "a", "label": 0}\n{"id": "zz", "label": 1}\n{"id": "q"}\n')
    assert main(["replay", "--input", str(tmp_path / "e.jsonl"), "--labels", str(tmp_path / "l.jsonl")]) == 0
    stats = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert stats["labels"] == {"joined": 1, "unmatched": 1, "invalid": {"missing_label": 1}}


def test_replay_batches_events_and_interleaved_labels_like_the_sidecar(tmp_path, monkeypatch) -> None:
    """Labels one line after each prediction (merged by time) must not cut the replay into one engine
    call per event: batches hold lines of both files, events first; every pair still joins."""
    import io

    from driftsentinel.detectors.engine import Engine
    from driftsentinel.schemas import SidecarConfig
    from driftsentinel.stream.replay import replay_file

    n = 6000
    events, labels = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    rows = ({"id": f"r{i}", "ts": i, "prediction": 0.5, "features": {"x": i % 7}} for i in range(n))
    events.write_text("".join(json.dumps(row) + "\n" for row in rows))
    labels.write_text("".join(json.dumps({"id": f"r{i}", "ts": i + 0.5, "label": i % 2}) + "\n" for i in range(n)))
    calls = {"process": 0, "process_labels": 0}
    for name in calls:
        original = getattr(Engine, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Engine, name, counted)
    stats = replay_file(events, SidecarConfig(), io.StringIO(), batch_size=1000, labels=labels)
    assert stats["labels"] == {"joined": n, "unmatched": 0, "invalid": {}}
    assert calls["process"] <= 13 and calls["process_labels"] <= 13, calls  # 12,000 lines in batches of 1,000
