"""`python -m benchmarks.quality`: a tiny `--quick` run end to end, and its counting rules.

The smoke test checks that the benchmark runs and prints one JSON object with every key the
quality report (docs/quality.md) relies on, and that the measurements are numbers. It
does not check the goals' outcome: those are judged from a full run, not from a few seeds.
The other tests pin how decisions are counted (series, false alarms, episodes, goals) on
hand-made decision lists, and that a signal on a model-level feature (``@multivariate``)
is counted, not a crash.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import quality
from driftsentinel.schemas import DriftSignal, FeatureBatch
from driftsentinel.schemas.alerts import WindowSummary

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
    "mean_shift_1sigma_from_start",
    "zero_config_shift_1sigma_after_warmup",
    "zero_config_shift_3sigma_after_warmup",
    "zero_config_shift_5sigma_after_warmup",
    "zero_config_doubling_after_warmup",
    "level_shift_10sigma",
    "level_doubling",
    "sd_change_10pct",
    "correlation_0_to_0_8",
}
DISTRIBUTIONS = {"normal", "lognormal", "exponential", "bimodal", "student_t3", "poisson", "indicator"}
METHODS = {"driftsentinel", "river_adwin", "river_page_hinkley"}
CHANGE_KEYS = {
    "false_alarms",
    "false_alarms_per_million",
    "series",
    "detected",
    "detected_share",
    "detected_share_within",
    "within",
    "missed",
    "delay_mean",
    "delay_median",
    "delay_median_all",
    "delay_p90",
}
EPISODE_KEYS = {
    "series",
    "detectors_agreeing_median",
    "detectors_agreeing_mean",
    "detectors_agreeing_p90",
    "detectors_agreeing_max",
    "one_detector_share",
}
GOALS = {
    "stationary_false_alarms_per_million_le_1",
    "no_missed_detection_for_shifts_ge_0.5_sigma",
    "median_delay_1sigma_le_300",
    "missing_1pct_to_20pct_median_delay_le_60",
    "variance_doubling_median_delay_le_300",
    "normal_to_bimodal_median_delay_le_800",
    "categorical_frequency_shift_median_delay_le_800",
    "shift_1sigma_from_first_monitored_event_median_delay_le_40",
    "mean_shift_median_delay_no_slower_than_previous",
    "mean_shift_median_delay_le_river_adwin",
    "level_shift_ge_10_sigma_found",
    "sd_change_10pct_caught_in_95pct_within_10000",
    "correlation_caught_within_10000",
    "fewer_false_alarms_than_river_page_hinkley",
}
NUMERIC_DETECTORS = {
    "adwin",
    "page_hinkley",
    "cusum_mean",
    "cusum_scale",
    "cusum_shape",
    "cusum_missing",
    "multivariate",
}
CATEGORICAL_DETECTORS = {"cusum_categories", "cusum_unseen"}


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_change(res: dict, pre_change: bool = True) -> None:
    assert CHANGE_KEYS <= res.keys(), sorted(CHANGE_KEYS - res.keys())
    for k in ("false_alarms", "series", "detected", "missed", "detected_share", "detected_share_within"):
        assert _number(res[k]), (k, res[k])
    # no events before a change at event 0: no rate
    assert _number(res["false_alarms_per_million"]) if pre_change else res["false_alarms_per_million"] is None
    assert res["detected"] + res["missed"] == res["series"]
    for k in ("delay_mean", "delay_median", "delay_p90"):  # None only when nothing was detected
        assert _number(res[k]) if res["detected"] else res[k] is None, (k, res[k])
    # a miss counts as infinitely late: a number only while under half the series are missed
    assert _number(res["delay_median_all"]) if res["missed"] * 2 < res["series"] else res["delay_median_all"] is None


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
        ds = sc["driftsentinel"]
        _check_change(ds, pre_change=sc["start"] != "first_event")
        assert EPISODE_KEYS <= ds["episodes"].keys(), name
        assert ds["episodes"]["series"] == ds["detected"], name
        expected = CATEGORICAL_DETECTORS if name == "categorical_frequency_shift" else NUMERIC_DETECTORS
        assert expected <= ds["by_detector"].keys(), (name, sorted(ds["by_detector"]))
        for det in ds["by_detector"].values():
            _check_change(det, pre_change=sc["start"] != "first_event")
        for m in ("river_adwin", "river_page_hinkley"):  # river takes numbers only
            if name == "categorical_frequency_shift":
                assert sc[m] is None
            else:
                _check_change(sc[m], pre_change=sc["start"] != "first_event")
    corr = out["change"]["correlation_0_to_0_8"]["driftsentinel"]
    assert corr["series"] == 2 and corr["on_multivariate"]["series"] == 2  # one series per model (seed)
    assert out["change"]["mean_shift_1sigma_from_start"]["start"] == "first_event"
    assert out["change"]["zero_config_shift_1sigma_after_warmup"]["reference"] == "zero_config"

    assert set(out["stationary"]) == DISTRIBUTIONS
    for dist, st in out["stationary"].items():
        for m in METHODS:
            assert _number(st[m]["false_alarms"]) and _number(st[m]["false_alarms_per_million"]), (dist, m)
        assert _number(st["driftsentinel"]["feature_values"]) and st["driftsentinel"]["feature_values"] > 0
        assert NUMERIC_DETECTORS <= st["driftsentinel"]["by_detector"].keys()

    assert out["parity"]["adwin"]["identical"] is True
    assert out["parity"]["page_hinkley"]["identical"] is True
    assert set(out["goals"]) == GOALS
    assert all(isinstance(g["pass"], bool) and isinstance(g["measured"], str) for g in out["goals"].values())
    assert _number(out["total_seconds"])

    table = quality.markdown(out)
    for name in SCENARIOS:
        assert name.replace("_", " ") in table
    assert "| correlation 0 to 0 8 |" in table and "detectors agreeing" in table


def _sig(row: int, feature: str, detector: str, status: str = "drift") -> DriftSignal:
    w = WindowSummary(count=1, mean=0.0, std=1.0, quantiles={}, missing_ratio=0.0)
    return DriftSignal(row, feature, detector, status, 1.0, detector, None, w, None)  # type: ignore[arg-type]


def test_signals_on_model_level_features_are_counted_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bank signal on a feature outside the model's names (``@multivariate``) is kept under
    its own name, and the decisions come back at absolute rows across batches."""

    class Bank:
        def __init__(self, config: Any, profile: Any) -> None:
            self.batches = 0

        def update(self, batch: FeatureBatch) -> list[DriftSignal]:
            self.batches += 1
            assert batch.names == ["f0", "f1"]
            if self.batches == 2:
                return [_sig(3, "@multivariate", "multivariate"), _sig(5, "f1", "cusum_mean", "resolved")]
            return []

    import driftsentinel.detectors.bank as bank_module

    monkeypatch.setattr(bank_module, "DetectorBank", Bank)
    ref = quality.Reference(["f0", "f1"], "numeric", None, None)
    hits = quality.run_driftsentinel(ref, np.zeros((quality.BATCH + 10, 2)))
    assert hits == [
        (quality.BATCH + 3, "@multivariate", "multivariate", "drift"),
        (quality.BATCH + 5, "f1", "cusum_mean", "resolved"),
    ]


def test_series_false_alarms_and_episodes_are_counted_per_feature() -> None:
    names = ["f0", "f1"]
    ev: list[quality.Hit] = [
        (50, "f0", "adwin", "drift"),  # before the change: a false alarm
        (120, "f0", "cusum_mean", "drift"),  # f0 detected 20 after the change
        (125, "f0", "adwin", "drift"),
        (130, "f0", "cusum_mean", "drift"),  # same (feature, detector): one alert
        (140, "@multivariate", "multivariate", "drift"),  # another unit: not f0's
        (200, "f0", "page_hinkley", "resolved"),
        (210, "f0", "ks", "drift"),  # after f0's first resolution: not agreeing
    ]
    dets = ["adwin", "cusum_mean", "multivariate"]
    out = quality.summarize_change([ev], [100], names, 1000, dets)
    assert (out["detected"], out["missed"], out["series"]) == (1, 1, 2)  # f1 never detected
    assert out["delay_median"] == 20 and out["delay_median_all"] is None  # 1 of 2 missed: not under half
    assert out["false_alarms"] == 1 and out["false_alarms_per_million"] == pytest.approx(1 / 200 * 1e6)
    assert out["episodes"]["detectors_agreeing_median"] == 2  # adwin + cusum_mean on f0
    by = out["by_detector"]
    assert by["multivariate"]["series"] == 1 and by["multivariate"]["delay_median"] == 40  # one per model
    assert by["adwin"]["detected"] == 1 and by["adwin"]["false_alarms"] == 1 and by["adwin"]["series"] == 2


def test_joint_change_is_one_series_per_model_and_reports_multivariate() -> None:
    names = ["f0", "f1", "f2"]
    seeds = [
        [(700, "f2", "ks", "drift"), (900, "@multivariate", "multivariate", "drift")],
        [],
    ]
    out = quality.summarize_change(seeds, [500, 500], names, 2000, ["ks", "multivariate"], "model")
    assert (out["series"], out["detected"], out["delay_median"]) == (2, 1, 200)  # any feature: the ks hit
    mv = out["on_multivariate"]
    assert (mv["series"], mv["detected"], mv["delay_median"], mv["detected_share_within"]) == (2, 1, 400, 0.5)
    assert out["by_detector"]["multivariate"]["delay_median"] == 400
    assert out["episodes"]["detectors_agreeing_median"] == 2  # (f2, ks) and (@multivariate, multivariate)


def test_change_at_the_first_event_has_no_false_alarm_rate_and_goals_accept_it() -> None:
    ev: list[quality.Hit] = [(30, "f0", "cusum_mean", "drift")]
    res = quality.summarize_change([ev], [0], ["f0"], 1000, ["cusum_mean"], within=25)
    assert res["false_alarms_per_million"] is None and res["delay_median"] == 30
    assert res["detected_share_within"] == 0.0 and res["within"] == 25

    def sc(delay: float | None, missed: int = 0) -> dict[str, Any]:
        d = {"delay_median_all": delay, "missed": missed, "detected": 1 - missed, "series": 1, "false_alarms": 0}
        return {"driftsentinel": d, "river_adwin": d, "river_page_hinkley": d}

    change = {"mean_shift_1sigma": sc(37.0), "mean_shift_1sigma_from_start": sc(30.0)}
    change["zero_config_shift_1sigma_after_warmup"] = sc(None, missed=1)
    g = quality.goals(change, {}, horizon=10_000)
    first = g["shift_1sigma_from_first_monitored_event_median_delay_le_40"]
    assert first["values"] == {"mean_shift_1sigma_from_start": 30.0, "zero_config_shift_1sigma_after_warmup": None}
    assert first["pass"] is False  # the zero-config series was missed
    prev = g["mean_shift_median_delay_no_slower_than_previous"]
    assert prev["values"]["mean_shift_1sigma"]["pass"] is True  # 37 <= 38
    assert prev["pass"] is False  # the other mean shifts were not run: not met
    assert g["no_missed_detection_for_shifts_ge_0.5_sigma"]["values"]["zero_config_shift_1sigma_after_warmup"] == 1
    assert g["fewer_false_alarms_than_river_page_hinkley"]["pass"] is True  # 0 and 0: none is not more
    assert g["stationary_false_alarms_per_million_le_1"]["pass"] is False  # nothing measured: not met


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--only", "no_such_scenario"], "unknown scenario(s) no_such_scenario"),
        (["--only", "correlation_0_to_0_8", "--features", "1"], "--features must be at least 2"),
        (["--seeds", "0"], "--seeds: 0 must be at least 1"),
        (["--markdown", "/nonexistent/run.json"], "cannot read '/nonexistent/run.json'"),
    ],
)
def test_user_mistakes_end_in_one_line(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    code: object
    try:
        code = quality.main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
