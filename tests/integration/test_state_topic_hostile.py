"""Crafted state records (issue 24 item 3): the state topic is untrusted input.

For each record a writer of ``driftsentinel-state`` could craft (``banks`` a string, a bank
``null``, ``n_features`` 2x10^8 in a genuine checkpoint, ``next_offset`` -1, a progress marker
of 10^15), on the real broker:

1. the sidecar reads a stable stream, commits it and writes its checkpoint (exit 0);
2. the crafted record replaces the checkpoint (or the progress marker) on the state topic,
   and the stream drifts after the committed offset;
3. the restarted sidecar starts, logs the rejection, rebuilds the partition from its earliest
   offset without publishing, alerts the drift (offsets after the committed one, nothing
   before it), exits 0 at ``--idle-exit``, and its peak RSS grows by less than 50 MB.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Producer

from driftsentinel.stream.checkpoint import decode_state, encode_progress, encode_state, progress_key, state_key
from tests.integration.sidecar_helpers import SidecarProcess, committed_offset, key_of, produce, read_all, value_of

pytestmark = pytest.mark.integration

STABLE, DRIFTED = 2000, 2000
MODEL = "m"


def _events(n: int, shift: float, seed: int) -> list[bytes | None]:
    rng = np.random.default_rng(seed)
    return [
        json.dumps({"model": MODEL, "ts": 1.0 + i, "features": {"x": float(v), "y": float(w)}}).encode()
        for i, (v, w) in enumerate(zip(rng.normal(shift, 1, n), rng.normal(0, 1, n), strict=True))
    ]


def _run(bootstrap: str, topic: str, state_topic: str, tmp: Path) -> tuple[int, str]:
    side = SidecarProcess(bootstrap, topic, "--idle-exit", "3", tmp=tmp, config={"kafka": {"state_topic": state_topic}})
    try:
        code = side.wait(240)
    finally:
        side.kill()
    return code, side.log()


def _craft(doc: dict[str, Any], case: str) -> dict[str, Any]:
    if case == "banks_string":
        doc["banks"] = "x"
    elif case == "bank_null":
        doc["banks"][MODEL] = None
    elif case == "n_features_2e8":
        doc["banks"][MODEL]["detectors"]["adwin"]["n_features"] = 200_000_000
    elif case == "next_offset_negative":
        doc["next_offset"] = -1
    return doc


@pytest.mark.parametrize(
    "case", ["banks_string", "bank_null", "n_features_2e8", "next_offset_negative", "progress_1e15"]
)
def test_a_crafted_state_record_is_set_aside_and_the_drift_is_still_alerted(
    kafka_bootstrap: str, new_topic, tmp_path: Path, case: str
) -> None:
    topic, state_topic = new_topic(prefix="hostile-state"), new_topic(prefix="hostile-state-st")
    group = f"{topic}-group"
    produce(kafka_bootstrap, topic, _events(STABLE, 0.0, seed=1), key=MODEL.encode())
    code, log = _run(kafka_bootstrap, topic, state_topic, tmp_path)
    assert code == 0, log[-3000:]
    assert committed_offset(kafka_bootstrap, group, topic) == STABLE
    assert not read_all(kafka_bootstrap, f"{topic}-alerts"), "the stable stream must not alert"

    ck_key = state_key(group, topic, 0)
    [genuine] = [m for m in read_all(kafka_bootstrap, state_topic) if key_of(m) == ck_key][-1:]
    if case == "progress_1e15":
        key, value = progress_key(group, topic, 0), encode_progress(10**15)
    else:
        key, value = ck_key, encode_state(_craft(decode_state(value_of(genuine)), case))
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(state_topic, key=key, value=value)
    assert producer.flush(30) == 0

    produce(kafka_bootstrap, topic, _events(DRIFTED, 3.0, seed=2), key=MODEL.encode())
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    code, log = _run(kafka_bootstrap, topic, state_topic, tmp_path)
    grew_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss - before
    assert code == 0, log[-3000:]
    assert "rejected" in log and "set aside" in log, log[-3000:]
    alerts = [json.loads(value_of(m)) for m in read_all(kafka_bootstrap, f"{topic}-alerts")]
    drift = [a for a in alerts if a["status"] == "drift" and a["feature"] == "x"]
    assert drift, f"no drift alert after a crafted {case}:\n{log[-3000:]}"
    assert min(a["source"]["offset"] for a in alerts) >= STABLE, "alerts of the committed past were repeated"
    assert committed_offset(kafka_bootstrap, group, topic) == STABLE + DRIFTED
    assert grew_kib < 50 * 1024, f"peak RSS grew by {grew_kib / 1024:.0f} MB"
