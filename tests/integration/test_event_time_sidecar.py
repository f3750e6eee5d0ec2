"""Issue 24 item 6 on the real broker: one event stamped in year 9999 does not switch the window tests off.

Before: with ``window_seconds``, that event moved the model's window position to year 9999
and no window closed again (no window-test alert, ever). Now the alert of a later shift
arrives, and a feature that is always null has its missing-ratio gauge (1.0).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from driftsentinel.detectors.profile import build_profile
from tests.integration.sidecar_helpers import SidecarProcess, read_all, sample, value_of

pytestmark = pytest.mark.integration

N, SHIFT, STEP = 6_000, 3_000, 0.1  # 10 events/s of event time: 600 per 60 s window
YEAR_9999 = 253_402_300_799.0


def test_year_9999_event_then_drift_still_alerts(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    rng = np.random.default_rng(20)
    profile = build_profile({"x": rng.normal(size=20_000).tolist()}, source="train")
    (tmp_path / "profile.json").write_text(profile.model_dump_json())
    topic = new_topic(partitions=1)
    start = time.time() - N * STEP  # recent times: the topic's retention keeps them
    x = rng.normal(size=N)
    x[SHIFT:] += 1.0
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 20, "enable.idempotence": True})
    for i in range(N):
        ts = start + i * STEP
        doc = {"model": "m", "ts": YEAR_9999 if i == 100 else ts, "features": {"x": float(x[i]), "gone": None}}
        # the message time is the event's true time (the year-9999 one included): what a producer stamps
        while True:
            try:
                producer.produce(topic, key=b"m", value=json.dumps(doc).encode(), timestamp=int(ts * 1000))
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0
    # ks alone: with the others on, the shift's episode is opened by another test and ks joins
    # it without an event of its own (one change, one alert)
    config = {
        "detectors": {
            "window_tests": {"window_seconds": 60, "numeric_tests": ["ks"]},
            "sequential": {"enabled": False},
            "adwin": {"enabled": False},
            "page_hinkley": {"enabled": False},
        }
    }
    sidecar = SidecarProcess(
        kafka_bootstrap, topic, "--reference", str(tmp_path / "profile.json"), config=config, tmp=tmp_path
    )
    try:
        snap = sidecar.wait_until(
            lambda s: (
                (sample(s, "driftsentinel_alerts_total", model="m", feature="x", detector="ks", status="drift") or 0)
                >= 1
                and sample(s, "driftsentinel_feature_missing_ratio", model="m", feature="gone") == 1.0
            ),
            timeout=180,
        )
        sidecar.terminate()
        assert sidecar.wait(60) == 0, sidecar.log()[-3000:]
    finally:
        sidecar.kill()
    assert sample(snap, "driftsentinel_feature_missing_ratio", model="m", feature="x") == 0.0
    alerts = [json.loads(value_of(m)) for m in read_all(kafka_bootstrap, sidecar.alerts_topic)]
    ks = [a for a in alerts if a["feature"] == "x" and a["detector"] == "ks" and a["status"] == "drift"]
    assert len(ks) == 1, alerts
    # decided at the first event of the window after the first fully shifted one
    assert SHIFT <= ks[0]["source"]["offset"] <= SHIFT + 2 * 600, ks
