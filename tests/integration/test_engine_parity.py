"""One engine: ``replay`` of a file and ``run`` over the same events on a real broker publish the same DriftEvents.

The stream (one input partition, one labels partition) drifts in a numeric feature (scale),
a categorical feature (a new category), a missing rate, the prediction, concept drift from
in-event labels and from late labels, and inside a columnar message. The file holds one
message per line (the columnar one in base64), the labels file one label per line; Kafka
timestamps are the lines' ``ts``, so the late-label join sees the same message times.
Labels are produced once the sidecar has processed every event (replay reads them after the
events: their times are later).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from driftsentinel.schemas.columnar import encode_columns
from driftsentinel.stream.cli import main
from tests.integration.sidecar_helpers import SidecarProcess, read_all, value_of
from tests.unit.test_reference import live_events, training_csv

pytestmark = pytest.mark.integration

N = 16_000  # events
CHANGE = 6_000  # everything changes from this event on
COLUMNAR_AT = 12_000  # the columnar message comes after this event
ROWS = 4_000  # rows of the columnar message; its column "z" shifts at ROWS // 2
T0 = 1.7e9


def _stream(seed: int = 3) -> tuple[list[bytes], list[bytes], list[float], list[float]]:
    """Input messages and labels (values, and their times in seconds)."""
    rng = np.random.default_rng(seed)
    messages: list[bytes] = []
    times: list[float] = []
    labels: list[bytes] = []
    for i, event in enumerate(live_events(n=N, change_at=CHANGE, seed=seed)):
        late = i >= CHANGE
        if i % 3 == 2:  # model "late": its labels come later, on the labels topic
            doc = {
                "model": "late",
                "id": f"r{i}",
                "ts": event["ts"],
                "features": {"y": float(rng.normal())},
                "prediction": "ok",
            }
            wrong = rng.random() < (0.4 if late else 0.05)
            labels.append(
                json.dumps(
                    {"id": f"r{i}", "label": "fraud" if wrong else "ok", "ts": T0 + N + 100 + len(labels)}
                ).encode()
            )
        else:  # model "m": its label comes with the event
            score = float(np.clip(rng.normal(0.6 if late else 0.2, 0.05), 0, 1))
            doc = {**event, "prediction": score, "label": 0.0}
        messages.append(json.dumps(doc).encode())
        times.append(float(event["ts"]))
        if i == 100:
            messages.append(b"not json")  # a bad line / DLQ record: offsets stay aligned
            times.append(float(event["ts"]))
        if i == COLUMNAR_AT:
            z = np.r_[rng.normal(0, 1, ROWS // 2), rng.normal(4, 1, ROWS // 2)]
            ts = event["ts"] + np.linspace(0, 0.5, ROWS)
            messages.append(encode_columns(numeric={"z": z}, model="col", ts=ts))
            times.append(float(ts[-1]))
    return messages, labels, times, [json.loads(v)["ts"] for v in labels]


def _produce(bootstrap: str, topic: str, values: list[bytes], times: list[float]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True})
    for value, t in zip(values, times, strict=True):
        while True:
            try:
                producer.produce(topic, value=value, partition=0, timestamp=int(round(t * 1000)))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0


def _line(value: bytes) -> bytes:
    return value if value[:1] in (b"{", b"n") else base64.b64encode(value)


def _view(alerts: list[dict]) -> list[tuple]:
    return [
        (a["event_id"], a["model"], a["feature"], a["detector"], a["status"], tuple(sorted(a["source"].items())))
        for a in alerts
    ]


def test_replay_and_run_publish_the_same_drift_events(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    training_csv(tmp_path / "train.csv")
    profile = tmp_path / "profile.json"
    assert main(["baseline", "--input", str(tmp_path / "train.csv"), "--out", str(profile)]) == 0
    # the events carry 2023 timestamps: time retention must not delete them mid-test
    keep = {"retention.ms": "-1"}
    topic = new_topic(partitions=1, config=keep)
    labels_topic = new_topic(partitions=1, prefix="labels", config=keep)
    group = f"{topic}-group"
    messages, labels, times, label_times = _stream()
    (tmp_path / "events.jsonl").write_bytes(b"".join(_line(v) + b"\n" for v in messages))
    (tmp_path / "labels.jsonl").write_bytes(b"".join(v + b"\n" for v in labels))

    _produce(kafka_bootstrap, topic, messages, times)
    sidecar = SidecarProcess(
        kafka_bootstrap, topic, "--labels-topic", labels_topic, "--reference", str(profile), tmp=tmp_path, group=group
    )
    try:
        rows = N + ROWS
        sidecar.wait_until(
            lambda s: sum(v for (n, _), v in s.items() if n == "driftsentinel_events_total") >= rows, 180
        )
        _produce(kafka_bootstrap, labels_topic, labels, label_times)
        sidecar.wait_until(
            lambda s: sum(v for (n, _), v in s.items() if n == "driftsentinel_labels_joined_total") >= len(labels), 180
        )
        sidecar.terminate()
        assert sidecar.wait(60) == 0, sidecar.log()[-3000:]
    finally:
        sidecar.kill()
    run = [json.loads(value_of(m)) for m in read_all(kafka_bootstrap, sidecar.alerts_topic)]

    out = tmp_path / "replay.jsonl"
    assert (
        main(
            [
                "replay",
                "--input",
                str(tmp_path / "events.jsonl"),
                "--labels",
                str(tmp_path / "labels.jsonl"),
                "--topic",
                topic,
                "--labels-topic",
                labels_topic,
                "--group-id",
                group,
                "--reference",
                str(profile),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    replay = [json.loads(line) for line in out.read_text().splitlines()]

    assert _view(replay) == _view(run)
    drift = {(a["model"], a["feature"], a["detector"], a["source"]["topic"]) for a in run if a["status"] == "drift"}
    # one episode per change: the test that saw it first opens it (the sequential test, or the window test)
    assert {d for m, f, d, t in drift if (m, f, t) == ("m", "income", topic)} & {"cusum_missing", "missing_rate"}, drift
    assert {d for m, f, d, t in drift if (m, f, t) == ("m", "country", topic)} & {"cusum_unseen", "new_category"}, drift
    assert any(f == "x1" for _, f, _, _ in drift)
    assert any(m == "m" and f == "@prediction" for m, f, _, _ in drift)
    assert ("m", "@error", "concept_drift", topic) in drift
    assert ("late", "@error", "concept_drift", labels_topic) in drift
    assert any(a["model"] == "col" and a["source"]["row"] is not None for a in run)
