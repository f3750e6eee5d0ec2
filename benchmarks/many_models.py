"""Many distinct models on a real broker: RSS, /metrics series and scrape time, events/s, SIGTERM.

Issue 24 item 2: 50,000 events with 50,000 distinct ``model`` values once cost 7 GB of RSS,
1,850,019 series (12-16 s per scrape) and 126-570 events/s. ``detectors.max_models`` (per
input partition) and ``metrics_max_series`` bound both. This produces ``--models`` events,
each of its own model, to a fresh topic, runs ``driftsentinel run`` on it as a child
process, and prints one JSON object.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python -m benchmarks.many_models --models 50000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.sidecar_helpers import SidecarProcess, produce


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class _Peak:
    """The child's peak RSS, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.pid, self.kib = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.kib = max(self.kib, _rss_kib(self.pid))
            except OSError:
                return
            self._stop.wait(0.2)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.kib


def _counted(snap: dict) -> float:
    """Events counted: per model (admitted) plus those of models over max_models."""
    return sum(
        v
        for (name, _), v in snap.items()
        if name in ("driftsentinel_events_total", "driftsentinel_model_events_dropped_total")
    )


def measure(
    bootstrap: str, models: int, partitions: int = 3, features: int = 5, tmp: Path | None = None, timeout: float = 600.0
) -> dict[str, Any]:
    """Produce ``models`` events (one per model, ``features`` numbers each), run the sidecar over them."""
    tmp = tmp or Path(tempfile.mkdtemp(prefix="many-models-"))
    topic = f"many-models-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(30)
    values = [
        json.dumps({"model": f"model-{i}", "features": {f"f{j}": float(i % 97 + j) for j in range(features)}}).encode()
        for i in range(models)
    ]
    produce(bootstrap, topic, list(values), partitions=[i % partitions for i in range(models)])
    sidecar = SidecarProcess(bootstrap, topic, "--idle-exit", "60", tmp=tmp)
    peak = _Peak(sidecar.proc.pid)
    started = time.monotonic()
    try:
        snap = sidecar.wait_until(lambda s: _counted(s) >= models, timeout=timeout)
        elapsed = time.monotonic() - started
        t0 = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{sidecar.metrics_port}/metrics", timeout=60) as r:
            body = r.read()
        scrape_s = time.monotonic() - t0
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        rss_now = _rss_kib(sidecar.proc.pid)
        t0 = time.monotonic()
        sidecar.terminate()
        code = sidecar.wait(120)
        stop_s = time.monotonic() - t0
    finally:
        peak_kib = peak.stop()
        sidecar.kill()
        admin.delete_topics([topic, sidecar.alerts_topic, sidecar.dlq_topic])
    return {
        "models": models,
        "partitions": partitions,
        "features": features,
        "events_counted_per_model": sum(v for (n, _), v in snap.items() if n == "driftsentinel_events_total"),
        "events_of_dropped_models": snap.get(("driftsentinel_model_events_dropped_total", ()), 0.0),
        "model_series": sum(1 for (n, _) in snap if n == "driftsentinel_events_total"),
        "series_dropped": snap.get(("driftsentinel_metrics_series_dropped_total", ()), 0.0),
        "metrics_series": series,
        "metrics_bytes": len(body),
        "scrape_s": round(scrape_s, 3),
        "rss_mib": round(rss_now / 1024, 1),
        "rss_peak_mib": round(peak_kib / 1024, 1),
        "seconds_to_count_all": round(elapsed, 1),
        "events_per_s_incl_startup": round(models / elapsed, 1),
        "sigterm_exit_code": code,
        "sigterm_s": round(stop_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--features", type=int, default=5)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    print(json.dumps(measure(bootstrap, args.models, args.partitions, args.features)))


if __name__ == "__main__":
    main()
