"""Smoke test of `python -m benchmarks.detectors`: a tiny run in a child process.

Checks that the benchmark runs end to end, prints one JSON object with the keys issue 3
and docs/lab/kernels.md rely on, that the measurements are positive numbers and that parity
holds on its data. It does not check the speed goals: those are judged from full runs.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CASE_KEYS = {
    "river_updates_per_s",
    "kernel_updates_per_s",
    "speedup",
    "parity",
    "detections",
    "river_ns_per_update",
    "kernel_ns_per_update",
    "compile_s",
    "bytes_per_feature",
    "memory_bytes_per_feature",
}
DIRECT_KEYS = {"river_direct_updates_per_s", "speedup_vs_river_direct"}


def _positive(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def test_detectors_benchmark_prints_one_json_object_with_parity() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.detectors",
            "--features",
            "3",
            "--values",
            "20000",
            "--repeats",
            "2",
            "--no-cold-compile",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout[-2000:]
    out = json.loads(lines[0])

    assert out["config"]["features"] == 3 and out["config"]["values_per_feature"] == 20000
    assert out["config"]["updates"] == 60000 and out["config"]["repeats"] == 2
    assert out["compile_cold_s"] is None
    for name in ("adwin", "page_hinkley", "bank"):
        case = out[name]
        keys = CASE_KEYS | (DIRECT_KEYS if name != "bank" else set())
        assert keys <= case.keys(), (name, sorted(keys - case.keys()))
        assert case["parity"] is True, name
        for k in keys - {"parity", "detections"}:
            assert _positive(case[k]), (name, k, case[k])
        # speedup is the ratio of the two measured rates, not a figure of its own
        ratio = case["kernel_updates_per_s"] / case["river_updates_per_s"]
        assert math.isclose(case["speedup"], ratio, rel_tol=0.02, abs_tol=0.06), (name, case)
    # The data has three mean shifts per feature: both detectors find some of them.
    assert out["adwin"]["detections"] > 0 and out["page_hinkley"]["detections"] > 0
    assert out["bank"]["detections"] == out["adwin"]["detections"] + out["page_hinkley"]["detections"]
