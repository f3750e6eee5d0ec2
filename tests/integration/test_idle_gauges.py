"""Issue 24 item 7 on the real broker: gauges are refreshed when the input goes idle.

Gauges are refreshed at most once a second while batches arrive; a burst that is processed
within that second used to leave them at a mid-burst value until the next event arrived.
Now the loop refreshes them when a consume returns nothing, so after a burst they show the
engine's final read-outs: the test computes those with the same engine over the same events.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftsentinel.detectors.engine import Engine
from driftsentinel.schemas import SidecarConfig
from driftsentinel.schemas.fastdecode import decode_event_fast
from tests.integration.sidecar_helpers import SidecarProcess, produce, sample

pytestmark = pytest.mark.integration

N = 3_000


def test_gauges_after_a_burst_show_the_final_readouts(kafka_bootstrap: str, new_topic) -> None:
    rng = np.random.default_rng(24)
    topic = new_topic(partitions=1)
    values = [
        json.dumps({"model": "m", "features": {"x": float(v), "y": float(w)}}).encode()
        for v, w in zip(rng.normal(size=N), rng.normal(5.0, 2.0, size=N), strict=True)
    ]
    produce(kafka_bootstrap, topic, values)
    engine = Engine(SidecarConfig(), input_topic=topic)
    engine.process(topic, 0, [(i, decode_event_fast(v), 0.0) for i, v in enumerate(values)], now=0.0)
    [(model, statuses)] = engine.readouts().statuses
    final = {st.feature: st for st in statuses}

    def settled(snap: dict) -> bool:
        return all(
            sample(snap, "driftsentinel_feature_mean", model=model, feature=f) == pytest.approx(st.live_mean)
            and all(
                sample(snap, "driftsentinel_detector_window_size", model=model, feature=f, detector=d) == size
                for d, size in st.window_size.items()
            )
            for f, st in final.items()
        )

    sidecar = SidecarProcess(kafka_bootstrap, topic, "--idle-exit", "60")
    try:
        snap = sidecar.wait_until(settled, timeout=90)  # no event arrives after the burst
        assert sample(snap, "driftsentinel_events_total", model=model) == N
        sidecar.terminate()
        assert sidecar.wait(60) == 0, sidecar.log()[-3000:]
    finally:
        sidecar.kill()
