"""Smoke test of `python -m benchmarks.quality`: a tiny `--quick` run.

Checks that the benchmark runs end to end and prints one JSON object with every key the
quality report (docs/quality.md) relies on, and that the measurements are numbers. It
does not check the goals: those are judged from a full run, not from a few seeds.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

TOP = {
    "benchmark",
    "quick",
    "setup",
    "versions",
    "calibrated",
    "change",
    "stationary",
    "parity",
    "goals",
    "seconds",
    "total_seconds",
}
SCENARIOS = {
    "mean_shift_0.25sigma",
    "mean_shift_0.5sigma",
    "mean_shift_1sigma",
    "mean_shift_2sigma",
    "gradual_1sigma_over_5000",
    "variance_doubling",
    "shape_normal_to_bimodal",
    "categorical_frequency_shift",
    "missing_ratio_jump",
}
DISTRIBUTIONS = {"normal", "lognormal", "exponential", "bimodal", "student_t3", "poisson", "indicator"}
METHODS = {"driftsentinel", "river_adwin", "river_page_hinkley"}
CHANGE_KEYS = {
    "false_alarms",
    "false_alarms_per_million",
    "series",
    "detected",
    "missed",
    "delay_mean",
    "delay_median",
    "delay_p90",
}
GOALS = {
    "stationary_false_alarms_per_million_le_1",
    "no_missed_detection_for_shifts_ge_0.5_sigma",
    "median_delay_1sigma_le_300",
    "mean_shift_median_delay_le_river_adwin",
    "fewer_false_alarms_than_river_page_hinkley",
}


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_change(res: dict) -> None:
    assert CHANGE_KEYS <= res.keys(), sorted(CHANGE_KEYS - res.keys())
    for k in ("false_alarms", "false_alarms_per_million", "series", "detected", "missed"):
        assert _number(res[k]), (k, res[k])
    assert res["detected"] + res["missed"] == res["series"]
    for k in ("delay_mean", "delay_median", "delay_p90"):  # None only when nothing was detected
        assert _number(res[k]) if res["detected"] else res[k] is None, (k, res[k])


def test_quality_benchmark_quick_run_prints_one_json_object() -> None:
    cmd = [sys.executable, "-m", "benchmarks.quality", "--quick", "--seeds", "2"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stdout[-3000:]
    out = json.loads(lines[0])
    assert TOP <= out.keys(), sorted(TOP - out.keys())
    assert out["quick"] is True and out["setup"]["seeds"] == 2

    assert set(out["change"]) == SCENARIOS
    for name, sc in out["change"].items():
        assert METHODS <= sc.keys(), name
        _check_change(sc["driftsentinel"])
        assert sc["driftsentinel"]["by_detector"], name
        for det in sc["driftsentinel"]["by_detector"].values():
            _check_change(det)
        for m in ("river_adwin", "river_page_hinkley"):  # river takes numbers only
            if name == "categorical_frequency_shift":
                assert sc[m] is None
            else:
                _check_change(sc[m])

    assert set(out["stationary"]) == DISTRIBUTIONS
    for dist, st in out["stationary"].items():
        for m in METHODS:
            assert _number(st[m]["false_alarms"]) and _number(st[m]["false_alarms_per_million"]), (dist, m)
        assert _number(st["driftsentinel"]["feature_values"]) and st["driftsentinel"]["feature_values"] > 0
        assert {"adwin", "page_hinkley"} <= st["driftsentinel"]["by_detector"].keys()

    assert out["parity"]["adwin"]["identical"] is True
    assert out["parity"]["page_hinkley"]["identical"] is True
    assert set(out["goals"]) == GOALS
    assert all(isinstance(g["pass"], bool) for g in out["goals"].values())
    assert _number(out["total_seconds"])
