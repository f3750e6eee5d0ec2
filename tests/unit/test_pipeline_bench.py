"""Smoke test of `python -m benchmarks.pipeline`: a tiny run against the test broker.

Checks that the benchmark runs end to end and prints one JSON object with every key the
performance report relies on. It does not check speed: timings on a shared CI machine
mean nothing, and the goals are judged from a full run (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

KEYS = {
    "events_per_s",
    "feature_values_per_s",
    "naive_events_per_s",
    "naive_events",
    "decode_ceiling_events_per_s",
    "ratio_vs_naive",
    "share_of_ceiling",
    "peak_rss_bytes",
    "latency_p50_s",
    "latency_p99_s",
    "latency",
    "events_per_cpu_s",
    "sidecar",
    "naive",
    "ceiling",
    "scale",
    "goals",
    "preload",
    "total_seconds",
    "columnar",
}


def test_pipeline_benchmark_tiny_run_prints_one_json_object(kafka_bootstrap: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.pipeline",
        "--quick",
        "--events",
        "3000",
        "--naive-events",
        "300",
        "--latency-seconds",
        "4",
        "--scale-features",
        "50",
        "--scale-values",
        "250000",
        "--no-what-if",
    ]
    out = _one_json_object(cmd, kafka_bootstrap, timeout=600)
    assert KEYS <= out.keys(), sorted(KEYS - out.keys())
    assert out["sidecar"]["events"] == 3000 and out["sidecar"]["exit_code"] == 0
    assert out["naive_events"] == 300
    assert out["ceiling"]["events"] == 3000
    assert out["events_per_s"] > 0 and out["naive_events_per_s"] > 0 and out["decode_ceiling_events_per_s"] > 0
    assert out["latency"]["alerts"] > 0, out["latency"]  # drift was injected, so alerts arrived
    assert out["latency_p99_s"] is not None and out["latency_p99_s"] >= out["latency_p50_s"]
    assert set(out["scale"]) == {"50"} and out["scale"]["50"]["feature_values_per_s"] > 0
    assert out["columnar"]["events"] == 3000 and out["columnar"]["messages"] == 3  # 1,000 rows per message
    assert set(out["goals"]) == {"events_per_s", "ratio_vs_naive", "share_of_ceiling", "latency_p99_s"}


def _one_json_object(cmd: list[str], kafka_bootstrap: str, timeout: float) -> dict:
    """Run the benchmark against the broker; it must exit 0 and print exactly one JSON object."""
    res = subprocess.run(
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stdout[-3000:]
    return json.loads(lines[0])


def test_pipeline_benchmark_segments_scenario_runs_the_sidecar_with_segment_banks(kafka_bootstrap: str) -> None:
    """`--segments 0,3`: the sidecar on events with a 3-valued feature `seg`, without segments and
    with `detectors.segments: {keys: [seg], max_segments: 3}` (3 segment banks), each timed."""
    cmd = [sys.executable, "-m", "benchmarks.pipeline", "--events", "3000", "--segments", "0,3"]
    runs = _one_json_object(cmd, kafka_bootstrap, timeout=300)["segments"]["runs"]
    assert set(runs) == {"0", "3"}
    assert runs["0"]["segment_banks"] == 0 and runs["3"]["segment_banks"] == 3
    assert runs["3"]["segment_values"] == runs["0"]["segment_values"] == 3  # the same events
    for run in runs.values():
        assert run["events_per_s"] > 0 and run["cpu_seconds"] > 0 and run["cpu_us_per_event"] > 0
    assert "extra_cpu_us_per_event_per_segment_bank" in runs["3"]


@pytest.mark.parametrize("given", ["ten", "-1", ""])
def test_pipeline_benchmark_names_a_wrong_segments_value(given: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "benchmarks.pipeline", "--segments", given],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "--segments" in res.stderr
