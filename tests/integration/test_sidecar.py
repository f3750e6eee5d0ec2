"""The sidecar end to end, against a real Kafka broker (issue 2)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from driftsentinel.schemas import DriftEvent
from driftsentinel.stream.demo import produce_demo
from tests.integration.sidecar_helpers import (
    SidecarProcess,
    committed_offset,
    headers_of,
    produce,
    read_all,
    sample,
    value_of,
)

pytestmark = pytest.mark.integration

N_EVENTS = 50_000
DRIFT_AT = 25_000


def _drift_events(bootstrap: str, topic: str) -> list[DriftEvent]:
    return [DriftEvent.model_validate_json(value_of(m)) for m in read_all(bootstrap, topic)]


def test_demo_stream_drift_alerts_and_gauges(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    topic = new_topic(partitions=1)
    produce_demo(kafka_bootstrap, topic, N_EVENTS, 20, DRIFT_AT, ["f0", "f1", "f2"], 1.0, seed=7)
    sidecar = SidecarProcess(kafka_bootstrap, topic, "--idle-exit", "8", tmp=tmp_path)
    try:
        # While the run is live: every event consumed, drift gauge up for f0, down for f5.
        # The drift gauges of features without an alert refresh once a second, so the
        # snapshot waits for f5's series as well as for the last event.
        snap = sidecar.wait_until(
            lambda s: (
                sample(s, "driftsentinel_events_total", model="demo") == N_EVENTS
                and sample(s, "driftsentinel_feature_drift_detected", model="demo", feature="f5", detector="adwin")
                is not None
            ),
            timeout=120,
        )
        assert sample(snap, "driftsentinel_feature_drift_detected", model="demo", feature="f0", detector="adwin") == 1
        assert sample(snap, "driftsentinel_feature_drift_detected", model="demo", feature="f5", detector="adwin") == 0
        assert sidecar.probe("/healthz") == 200
        assert sidecar.probe("/readyz") == 200
        assert sidecar.wait(60) == 0
    finally:
        sidecar.kill()

    events = _drift_events(kafka_bootstrap, sidecar.alerts_topic)
    drifts = [e for e in events if e.status == "drift"]
    by_feature: dict[str, list[DriftEvent]] = {}
    for e in drifts:
        by_feature.setdefault(e.feature, []).append(e)
    assert set(by_feature) == {"f0", "f1", "f2"}, sorted(by_feature)
    for feature in ("f0", "f1", "f2"):
        first = min(e.source.offset for e in by_feature[feature])
        assert DRIFT_AT <= first < DRIFT_AT + 2000, (feature, first)
        ev = by_feature[feature][0]
        assert ev.model == "demo" and ev.source.topic == topic and ev.source.partition == 0
        assert ev.reference is not None and abs(ev.reference.mean or 0) < 0.2
        assert ev.window.count > 0 and ev.event_time is not None
    assert len({e.event_id for e in events}) == len(events)


def test_malformed_messages_go_to_dlq_and_loop_goes_on(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    topic = new_topic(partitions=1)
    rng = np.random.default_rng(3)
    bad_kinds: list[tuple[bytes | None, str]] = [
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "not_utf8"),
        (b"{not json", "not_json"),
        (b"[1, 2, 3]", "not_object"),
        (b'{"model": "demo", "ts": 1}', "missing_features"),
        (b'{"model": "demo", "features": "x"}', "wrong_type"),
        (b'{"model": "demo", "features": {"f0": [1, 2]}}', "wrong_type"),
        (b'{"model": "demo", "features": {"f0": 1e400}}', "non_finite_value"),
    ]
    values: list[bytes | None] = []
    expected_reasons: list[str] = []
    n_valid = 0
    for i in range(6000):
        if i % 6 == 5 and len(expected_reasons) < 1000:
            raw, reason = bad_kinds[len(expected_reasons) % len(bad_kinds)]
            values.append(raw)
            expected_reasons.append(reason)
        else:
            feats = {f"f{j}": float(v) for j, v in enumerate(rng.standard_normal(5))}
            values.append(json.dumps({"model": "demo", "ts": 1.0 + i, "features": feats}).encode())
            n_valid += 1
    assert len(expected_reasons) == 1000
    produce(kafka_bootstrap, topic, values)

    sidecar = SidecarProcess(kafka_bootstrap, topic, "--idle-exit", "6", tmp=tmp_path)
    try:
        snap = sidecar.wait_until(
            lambda s: sample(s, "driftsentinel_events_total", model="demo") == n_valid, timeout=120
        )
        assert sidecar.proc.poll() is None  # still running
        invalid = {
            labels[0][1]: v for (name, labels), v in snap.items() if name == "driftsentinel_invalid_events_total"
        }
        assert sum(invalid.values()) == 1000
        assert sidecar.wait(60) == 0
    finally:
        sidecar.kill()

    dlq = read_all(kafka_bootstrap, sidecar.dlq_topic, expect=1000)
    assert len(dlq) == 1000
    reasons = [headers_of(m)["driftsentinel.reason"].decode() for m in dlq]
    assert sorted(reasons) == sorted(expected_reasons)
    # original bytes and source position are kept
    offsets = sorted(int(headers_of(m)["driftsentinel.source.offset"]) for m in dlq)
    assert offsets == [i for i in range(6000) if i % 6 == 5][:1000]
    by_offset = {int(headers_of(m)["driftsentinel.source.offset"]): m.value() for m in dlq}
    for off, raw in by_offset.items():
        assert (raw or b"") == (values[off] or b"")


def test_sigterm_commits_and_restart_resumes(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    topic = new_topic(partitions=1)
    produce_demo(kafka_bootstrap, topic, N_EVENTS, 5, None, [], 0.0, seed=11)
    config = {"batch_size": 200}
    first = SidecarProcess(kafka_bootstrap, topic, tmp=tmp_path, config=config)
    try:
        first.wait_until(lambda s: (sample(s, "driftsentinel_events_total", model="demo") or 0) >= 2000, timeout=120)
        first.terminate()
        assert first.wait(30) == 0, first.log()
    finally:
        first.kill()
    assert "stopped after" in first.log()
    done = committed_offset(kafka_bootstrap, first.group, topic)
    assert 2000 <= done < N_EVENTS, done

    second = SidecarProcess(kafka_bootstrap, topic, "--idle-exit", "5", tmp=tmp_path, group=first.group)
    try:
        snap = second.wait_until(
            lambda s: sample(s, "driftsentinel_events_total", model="demo") == N_EVENTS - done, timeout=120
        )
        assert snap is not None
        assert second.wait(60) == 0
    finally:
        second.kill()
    assert committed_offset(kafka_bootstrap, first.group, topic) == N_EVENTS


def test_standby_member_waits_for_partitions_before_idling(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    """A second sidecar that owns no partition is on standby, not idle: --idle-exit counts only
    once it owns one (here after the first member stops and its partition moves over)."""
    topic = new_topic(partitions=1)
    produce_demo(kafka_bootstrap, topic, N_EVENTS, 5, None, [], 0.0, seed=12)
    group = f"{topic}-standby"
    # the range assignor orders static members by group.instance.id: "a-node" gets partition 0
    first = SidecarProcess(
        kafka_bootstrap,
        topic,
        tmp=tmp_path,
        group=group,
        config={"batch_size": 200, "kafka": {"instance_id": "a-node"}},
    )
    second = None
    try:
        first.wait_until(lambda s: (sample(s, "driftsentinel_events_total", model="demo") or 0) >= 2000, timeout=120)
        second = SidecarProcess(
            kafka_bootstrap,
            topic,
            "--idle-exit",
            "3",
            tmp=tmp_path,
            group=group,
            config={"kafka": {"instance_id": "b-node"}},
        )
        deadline = time.monotonic() + 60
        while "assigned []" not in second.log():
            assert time.monotonic() < deadline, second.log()[-3000:]
            assert second.proc.poll() is None, second.log()[-3000:]
            time.sleep(0.2)
        time.sleep(6)  # twice its idle_exit, owning nothing
        assert second.proc.poll() is None, "the standby member exited idle:\n" + second.log()[-3000:]
        first.terminate()
        assert first.wait(30) == 0, first.log()[-3000:]
        done = committed_offset(kafka_bootstrap, group, topic)
        assert second.wait(120) == 0, second.log()[-3000:]
        assert "assigned ['" in second.log(), "the partition never moved to the standby member"
        stopped = [line for line in second.log().splitlines() if "stopped after" in line]
        assert stopped and stopped[-1].endswith(f"stopped after {N_EVENTS - done} messages"), stopped
        assert committed_offset(kafka_bootstrap, group, topic) == N_EVENTS
    finally:
        first.kill()
        if second is not None:
            second.kill()


def test_bad_config_fails_at_startup_naming_the_field(kafka_bootstrap: str, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("kafka:\n  input_topic: t\ndetectors:\n  adwin:\n    delta: 5\n")
    sidecar = SidecarProcess(kafka_bootstrap, "unused", "--config", str(cfg), tmp=tmp_path)
    try:
        assert sidecar.wait(60) == 2
    finally:
        sidecar.kill()
    assert "detectors.adwin.delta" in sidecar.log()
