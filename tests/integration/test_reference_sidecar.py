"""Issue 4 on the real broker: the sidecar with a training profile reports the changed features."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftsentinel.stream.cli import main
from tests.integration.sidecar_helpers import SidecarProcess, produce, read_all, value_of
from tests.unit.test_reference import live_events, training_csv

pytestmark = pytest.mark.integration


def test_sidecar_with_reference_reports_the_three_changed_features(
    kafka_bootstrap: str, new_topic, tmp_path: Path
) -> None:
    training_csv(tmp_path / "train.csv")
    assert main(["baseline", "--input", str(tmp_path / "train.csv"), "--out", str(tmp_path / "profile.json")]) == 0
    topic = new_topic(partitions=1)
    produce(kafka_bootstrap, topic, [json.dumps(e).encode() for e in live_events()], key=b"m")
    sidecar = SidecarProcess(
        kafka_bootstrap, topic, "--idle-exit", "5", "--reference", str(tmp_path / "profile.json"), tmp=tmp_path
    )
    try:
        assert sidecar.wait(180) == 0, sidecar.log()[-3000:]
    finally:
        sidecar.kill()
    alerts = [json.loads(value_of(m)) for m in read_all(kafka_bootstrap, sidecar.alerts_topic)]
    by_feature: dict[str, set[str]] = {}
    for a in alerts:
        if a["status"] == "drift":
            by_feature.setdefault(a["feature"], set()).add(a["detector"])
    assert set(by_feature) == {"x1", "country", "income"}, by_feature
    # one episode per change: opened by the window test or by the sequential test of the same kind
    assert by_feature["x1"] & {"ks", "psi", "js", "wasserstein", "cusum_mean", "cusum_scale", "cusum_shape"}
    assert by_feature["country"] & {"new_category", "cusum_unseen", "cusum_categories"}
    assert by_feature["income"] & {"missing_rate", "cusum_missing"}
    assert all(a["source"]["offset"] >= 10_000 for a in alerts)


def test_baseline_from_a_topic_between_two_times(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    import time as _time

    from confluent_kafka import Producer

    topic = new_topic(partitions=2)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    now_ms = int(_time.time() * 1000)
    # 300 events an hour ago (x ~ 0), 200 events now (x ~ 100): only the old ones are training data
    for i in range(500):
        old = i < 300
        ts_ms = now_ms - 3_600_000 if old else now_ms
        doc = {"model": "m", "features": {"x": float(i % 7) + (0.0 if old else 100.0), "c": "a" if old else "z"}}
        producer.produce(topic, json.dumps(doc).encode(), timestamp=ts_ms, partition=i % 2)
    assert producer.flush(30) == 0
    out = tmp_path / "p.json"
    code = main(
        [
            "baseline",
            "--from-topic",
            topic,
            "--bootstrap-servers",
            kafka_bootstrap,
            "--from-time",
            str((now_ms - 4_000_000) / 1000),
            "--to-time",
            str((now_ms - 1_000_000) / 1000),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    prof = json.loads(out.read_text())
    assert prof["n_rows"] == 300
    assert prof["features"]["x"]["max"] < 10 and prof["features"]["c"]["frequencies"] == {"a": 1.0}
