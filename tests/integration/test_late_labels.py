"""Issue 4, item 6 on the real broker: labels that arrive later on a labels topic, joined by id."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.integration.sidecar_helpers import SidecarProcess, headers_of, produce, read_all, sample, value_of

pytestmark = pytest.mark.integration

N = 20_000  # requests, over 2 partitions
CHANGE = N // 2  # the error rate goes 10% -> 30% from this request on


def _requests(seed: int = 7) -> tuple[list[dict], list[dict]]:
    rng = np.random.default_rng(seed)
    events, labels = [], []
    for i in range(N):
        events.append(
            {
                "model": "m",
                "id": f"req-{i}",
                "ts": 1_700_000_000 + i,
                "features": {"x": float(rng.normal())},
                "prediction": "ok",
            }
        )
        wrong = rng.random() < (0.1 if i < CHANGE else 0.3)
        labels.append({"id": f"req-{i}", "label": "fraud" if wrong else "ok"})
    return events, labels


def _produce(bootstrap: str, topic: str, docs: list[tuple[int, bytes]]) -> None:
    produce(bootstrap, topic, [value for _, value in docs], key=None, partitions=[p for p, _ in docs])


def test_late_labels_joined_by_id_give_one_concept_drift_per_partition(
    kafka_bootstrap: str, new_topic, tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    labels_topic = new_topic(partitions=2, prefix="labels")
    events, labels = _requests()
    # Requests i go to partition i % 2 on both topics. The first 500 labels are sent before
    # any prediction (they wait for it); 3 malformed labels go to the DLQ.
    _produce(kafka_bootstrap, labels_topic, [(i % 2, json.dumps(labels[i]).encode()) for i in range(500)])
    _produce(kafka_bootstrap, topic, [(i % 2, json.dumps(e).encode()) for i, e in enumerate(events)])
    bad = [b'{"label": "ok"}', b'{"id": "req-1"}', b"not json"]
    _produce(
        kafka_bootstrap,
        labels_topic,
        [(i % 2, json.dumps(labels[i]).encode()) for i in range(500, N)] + [(0, v) for v in bad],
    )

    sidecar = SidecarProcess(kafka_bootstrap, topic, "--labels-topic", labels_topic, tmp=tmp_path)
    try:
        snap = sidecar.wait_until(
            lambda s: sum(v for (n, _), v in s.items() if n == "driftsentinel_labels_joined_total") >= N, 120
        )
        assert sample(snap, "driftsentinel_labels_joined_total", model="m") == N
        sidecar.terminate()
        assert sidecar.wait(60) == 0, sidecar.log()[-3000:]
    finally:
        sidecar.kill()

    alerts = [json.loads(value_of(m)) for m in read_all(kafka_bootstrap, sidecar.alerts_topic)]
    concept = [a for a in alerts if a["detector"] == "concept_drift"]
    assert sorted(a["source"]["partition"] for a in concept) == [0, 1], concept
    label_msgs = {
        (m.partition(), m.offset()): json.loads(value_of(m))
        for m in read_all(kafka_bootstrap, labels_topic)
        if value_of(m).startswith(b'{"id"')
    }
    for a in concept:
        assert a["feature"] == "@error" and a["model"] == "m" and a["source"]["topic"] == labels_topic
        # the alert points at the label that completed the detection, after the change
        label = label_msgs[(a["source"]["partition"], a["source"]["offset"])]
        assert CHANGE <= int(label["id"].split("-")[1]) < CHANGE + 4000, (a, label)
        assert a["window"]["mean"] > a["reference"]["mean"]
    assert not [a for a in alerts if a["detector"] != "concept_drift" and a["status"] == "drift"]
    dlq = read_all(kafka_bootstrap, sidecar.dlq_topic)
    reasons = sorted(headers_of(m)["driftsentinel.reason"].decode() for m in dlq)
    assert reasons == ["missing_id", "missing_label", "not_json"]


def test_labels_topic_partitioned_unlike_the_input_fails_at_start(
    kafka_bootstrap: str, new_topic, tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    labels_topic = new_topic(partitions=1, prefix="labels")
    sidecar = SidecarProcess(kafka_bootstrap, topic, "--labels-topic", labels_topic, tmp=tmp_path)
    try:
        assert sidecar.wait(60) == 3
    finally:
        sidecar.kill()
    assert "kafka.labels_topic" in sidecar.log() and "partitions" in sidecar.log()


def test_sigkill_mid_stream_neither_repeats_nor_loses_the_concept_drift_alerts(
    kafka_bootstrap: str, new_topic, tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    labels_topic = new_topic(partitions=2, prefix="labels")
    events, labels = _requests(seed=11)
    _produce(kafka_bootstrap, topic, [(i % 2, json.dumps(e).encode()) for i, e in enumerate(events)])
    _produce(kafka_bootstrap, labels_topic, [(i % 2, json.dumps(lab).encode()) for i, lab in enumerate(labels)])
    config = {"checkpoint": {"every_events": 2000}, "batch_size": 500}
    group = f"{topic}-g"

    first = SidecarProcess(
        kafka_bootstrap, topic, "--labels-topic", labels_topic, config=config, tmp=tmp_path, group=group
    )
    try:
        first.wait_until(
            lambda s: sum(v for (n, _), v in s.items() if n == "driftsentinel_labels_joined_total") >= 13_000, 120
        )
    finally:
        first.kill()  # SIGKILL: no shutdown, no final commit
    second = SidecarProcess(
        kafka_bootstrap,
        topic,
        "--labels-topic",
        labels_topic,
        "--idle-exit",
        "6",
        config=config,
        tmp=tmp_path,
        group=group,
    )
    try:
        assert second.wait(120) == 0, second.log()[-3000:]
    finally:
        second.kill()
    assert "reading from" in second.log()

    alerts = [json.loads(value_of(m)) for m in read_all(kafka_bootstrap, first.alerts_topic)]
    concept = [a for a in alerts if a["detector"] == "concept_drift"]
    assert len({a["event_id"] for a in alerts}) == len(alerts), "an alert was published twice"
    assert sorted(a["source"]["partition"] for a in concept) == [0, 1], concept
