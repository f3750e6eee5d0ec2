"""Issue 7, item 4 on the real broker: columnar batch messages beside one-event JSON messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from driftsentinel.schemas.columnar import encode_columns
from tests.integration.sidecar_helpers import SidecarProcess, headers_of, produce, read_all, sample, value_of

pytestmark = pytest.mark.integration


def test_columnar_messages_are_monitored_like_events(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    n, F, rows = 30_000, 5, 1_000
    X = rng.normal(size=(n, F))
    X[15_000:, 0] += 1.0  # f0 shifts at event 15,000 (message 15, row 0)
    values: list[bytes | None] = []
    for k in range(n // rows):
        sl = slice(rows * k, rows * (k + 1))
        values.append(
            encode_columns(
                numeric={f"f{j}": X[sl, j] for j in range(F)}, model="m", ts=np.arange(sl.start, sl.stop, dtype=float)
            )
        )
        if k == 3:  # a one-event message and a malformed batch in between
            values.append(json.dumps({"model": "m", "features": {f"f{j}": 0.0 for j in range(F)}}).encode())
            values.append(b"\x82\xa6format\xb7driftsentinel.columns/1\xa4rows\x02")  # no columns
    topic = new_topic(partitions=1)
    produce(kafka_bootstrap, topic, values, key=b"m")
    sidecar = SidecarProcess(kafka_bootstrap, topic, "--idle-exit", "5", tmp=tmp_path)
    try:
        sidecar.wait_until(
            lambda snap: (
                sample(snap, "driftsentinel_last_event_timestamp_seconds", topic=topic, partition="0") == n - 1
            ),
            60,
        )
        assert sidecar.wait(120) == 0, sidecar.log()[-3000:]
    finally:
        sidecar.kill()
    alerts = [json.loads(value_of(m)) for m in read_all(kafka_bootstrap, sidecar.alerts_topic)]
    drift = [a for a in alerts if a["status"] == "drift"]
    assert {a["feature"] for a in drift} == {"f0"}, drift
    for a in drift:
        # messages 0-3, then the JSON event and the bad batch at offsets 4-5, then batch 4 at 6, ...
        message = a["source"]["offset"] - (2 if a["source"]["offset"] > 3 else 0)
        position = message * rows + a["source"]["row"]
        assert 15_000 <= position < 16_000, a
        assert a["event_time"] == position
    assert len({a["event_id"] for a in alerts}) == len(alerts)
    [dlq] = read_all(kafka_bootstrap, sidecar.dlq_topic)
    assert headers_of(dlq)["driftsentinel.reason"] == b"missing_features"
