"""Live performance estimation in the real sidecar: its state survives a kill -9, its alerts are exactly once.

The stream (one partition) carries a binary classifier's score as ``prediction`` and its label
in the event; the labels flip (drawn from 1 - p) after row 8,000, and the scores lose their
spread after row 14,000 (the estimated performance drops). The sidecar, checkpointing every
3,000 events (windows are 2,000), is killed with SIGKILL after the first 10,000 events are
processed and restarted on the rest. Its alerts must be exactly those of the same engine run
offline over the whole stream: a restart that lost the open window or the episodes would cut
other windows (other event ids) or repeat a drift. ``replay`` of the same events as a file says the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from driftsentinel.detectors.engine import Engine
from driftsentinel.detectors.performance import fit_classification_reference
from driftsentinel.schemas import SidecarConfig
from driftsentinel.schemas.fastdecode import decode_event_fast
from driftsentinel.schemas.profile import ReferenceProfile
from driftsentinel.stream.cli import main
from tests.integration.sidecar_helpers import SidecarProcess, read_all, sample, value_of
from tests.integration.sidecar_helpers import produce as produce_values

pytestmark = pytest.mark.integration

N, FIRST, FLIP, SQUEEZE, WINDOW = 20_000, 10_000, 8_000, 14_000, 2_000
CONFIG = {
    "detectors": {"window_tests": {"window_events": WINDOW}},
    "checkpoint": {"every_events": 3_000, "every_s": 5},
    "batch_size": 1_000,
}


def _stream() -> list[bytes]:
    rng = np.random.default_rng(5)
    x = rng.standard_normal(N)
    x[SQUEEZE:] *= 0.2  # scores near 0.5: the model is less sure, its estimated performance falls
    p = 1.0 / (1.0 + np.exp(-2.0 * x))
    u = rng.random(N)
    y = np.where(np.arange(N) < FLIP, u < p, u < 1.0 - p).astype(int)
    return [
        json.dumps(
            {"model": "m", "ts": 1.7e9 + i, "features": {}, "prediction": float(p[i]), "label": int(y[i])}
        ).encode()
        for i in range(N)
    ]


def _profile(path: Path) -> ReferenceProfile:
    rng = np.random.default_rng(9)
    p = 1.0 / (1.0 + np.exp(-2.0 * rng.standard_normal(40_000)))
    y = (rng.random(p.size) < p).astype(int)
    prof = ReferenceProfile(
        source="test", n_rows=p.size, features={}, performance={"m": fit_classification_reference(p, y, window=WINDOW)}
    )
    path.write_text(prof.model_dump_json())
    return prof


def _alerts(bootstrap: str, topic: str) -> list[tuple[str, str, str, int]]:
    out = []
    for m in read_all(bootstrap, topic):
        doc = json.loads(value_of(m))
        out.append((doc["event_id"], doc["detector"], doc["status"], doc["source"]["offset"]))
    return out


def test_estimation_state_survives_kill_9_with_exactly_once_alerts(kafka_bootstrap: str, new_topic, tmp_path: Path):
    topic = new_topic(prefix="perf")
    values = _stream()
    profile = _profile(tmp_path / "profile.json")
    group = f"{topic}-group"
    # what the engine decides over the whole stream, offline
    config = SidecarConfig.model_validate({**CONFIG, "kafka": {"group_id": group}})
    engine = Engine(config, input_topic=topic, profile=profile)
    expected = []
    for a in range(0, N, 1000):
        items = [(i, decode_event_fast(values[i]), 0.0) for i in range(a, a + 1000)]
        expected += [
            (e.event_id, e.detector, e.status, e.source.offset) for e in engine.process(topic, 0, items, now=0.0).events
        ]
    detectors = {d for _, d, _, _ in expected}
    assert {"performance_estimate", "calibration_drift"} <= detectors, expected
    # ... and what `replay` of the same events as a file says (it drives the same engine)
    (tmp_path / "live.jsonl").write_bytes(b"\n".join(values) + b"\n")
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    replay_args = ["--input", str(tmp_path / "live.jsonl"), "--topic", topic, "--group-id", group]
    replay_args += ["--reference", str(tmp_path / "profile.json"), "--config", str(tmp_path / "config.json")]
    assert main(["replay", *replay_args, "--output", str(tmp_path / "alerts.jsonl")]) == 0
    replayed = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [(e["event_id"], e["detector"], e["status"], e["source"]["offset"]) for e in replayed] == expected

    args = ("--reference", str(tmp_path / "profile.json"))
    produce_values(kafka_bootstrap, topic, values[:FIRST])
    first = SidecarProcess(kafka_bootstrap, topic, *args, config=CONFIG, tmp=tmp_path, group=group)
    try:
        snap = first.wait_until(
            lambda s: (
                (sample(s, "driftsentinel_events_total", model="m") or 0) >= FIRST
                and sample(s, "driftsentinel_performance_estimate", model="m", metric="roc_auc") is not None
            ),
            timeout=60,
        )
        assert sample(snap, "driftsentinel_performance_band_lower", model="m", metric="roc_auc") is not None
    finally:
        first.kill()  # SIGKILL
    produce_values(kafka_bootstrap, topic, values[FIRST:])
    second = SidecarProcess(kafka_bootstrap, topic, *args, "--idle-exit", "3", config=CONFIG, tmp=tmp_path, group=group)
    try:
        assert second.wait(120) == 0, second.log()[-3000:]
    finally:
        second.kill()
    got = _alerts(kafka_bootstrap, first.alerts_topic)
    assert got == expected
