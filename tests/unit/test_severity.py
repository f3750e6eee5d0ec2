"""A drift's severity: the higher of its statistic's rule and the mean shift its evidence shows.

A sequential test alarms as its statistic just passes its threshold, and one change is one
feature episode published under whichever detector decided first: by the statistic alone a
10-sd level shift opened by a ``cusum_*`` test would page as ``warning``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from driftsentinel.detectors.policy import AlertPolicy, evidence_sigma
from driftsentinel.schemas import AlertPolicyConfig, WindowSummary
from driftsentinel.schemas.signals import DriftSignal
from driftsentinel.stream.cli import main

REF = WindowSummary(count=5_000, mean=100.0, std=20.0, quantiles={}, missing_ratio=0.0)


def summary(mean: float | None, std: float | None = 1.0) -> WindowSummary:
    return WindowSummary(count=50, mean=mean, std=std, quantiles={}, missing_ratio=0.0)


def signal(
    detector: str,
    statistic: float,
    threshold: float | None,
    name: str,
    window: WindowSummary,
    reference: WindowSummary = REF,
    status: str = "drift",
) -> DriftSignal:
    return DriftSignal(0, "x", detector, status, statistic, name, threshold, window, reference)  # type: ignore[arg-type]


@pytest.fixture
def policy() -> AlertPolicy:
    return AlertPolicy(AlertPolicyConfig(), "g")


def replay_shift(tmp: Path, shift: float, seed: int = 0) -> list[dict[str, object]]:
    """A training profile of N(0, 1), then 3,000 live values like it and 3,000 shifted by ``shift`` sd."""
    rng = np.random.default_rng(seed)
    (tmp / "train.csv").write_text("x\n" + "\n".join(f"{v:.5f}" for v in rng.normal(size=5_000)) + "\n")
    assert main(["baseline", "--input", str(tmp / "train.csv"), "--out", str(tmp / "p.json")]) == 0
    live = rng.normal(size=6_000)
    live[3_000:] += shift
    src = tmp / "live.jsonl"
    src.write_text(
        "".join(json.dumps({"ts": 1.7e9 + i, "features": {"x": float(v)}}) + "\n" for i, v in enumerate(live))
    )
    out = tmp / "alerts.jsonl"
    assert main(["replay", "--input", str(src), "--output", str(out), "--reference", str(tmp / "p.json")]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_a_10_sd_level_shift_opened_by_a_sequential_test_is_critical(tmp_path: Path, policy: AlertPolicy) -> None:
    alerts = replay_shift(tmp_path, 10.0)
    opened = [a for a in alerts if a["status"] == "drift"]
    assert len(opened) == 1, opened  # one change, one episode
    event = opened[0]
    assert str(event["detector"]).startswith("cusum_"), event  # the case at issue: a CUSUM opened it
    stat, threshold = float(event["statistic"]), float(event["threshold"])  # type: ignore[arg-type]
    assert policy.severity(stat, threshold, str(event["statistic_name"])) == "warning"  # its ratio alone
    assert event["severity"] == "critical"


def test_a_half_sd_shift_is_a_warning(tmp_path: Path) -> None:
    opened = [a for a in replay_shift(tmp_path, 0.5) if a["status"] == "drift"]
    assert opened and all(a["severity"] == "warning" for a in opened), opened


def test_the_higher_of_the_two_rules(policy: AlertPolicy) -> None:
    # a CUSUM just over its threshold: its ratio says warning, its evidence the size of the change
    just_over = (23.1, 22.0, "cusum_statistic")
    assert policy.grade(signal("cusum_mean", *just_over, summary(300.0))) == "critical"  # 10 sd
    assert policy.grade(signal("cusum_mean", *just_over, summary(110.0))) == "warning"  # 0.5 sd
    assert policy.grade(signal("cusum_mean", *just_over, summary(101.0))) == "warning"  # 0.05 sd: not below the ratio's
    assert policy.grade(signal("cusum_missing", *just_over, summary(None))) == "warning"  # no mean: the ratio's
    # a window test's ratio rule is unchanged: critical at critical_ratio x its cut-off, whatever the mean did
    assert policy.grade(signal("ks", 0.16, 0.075, "ks", summary(102.0))) == "critical"
    assert policy.grade(signal("ks", 0.12, 0.075, "ks", summary(102.0))) == "warning"
    assert policy.grade(signal("chi2", 0.2, 0.075, "chi2", summary(None), summary(None))) == "critical"
    # ... and raised by its evidence: a 2-sd shift read by a window test barely over its cut-off
    assert policy.grade(signal("ks", 0.08, 0.075, "ks", summary(140.0))) == "critical"
    # mean-shift detectors: their own statistic, or the evidence when that is larger
    assert policy.grade(signal("adwin", 0.3, None, "mean_shift_sigma", summary(106.0))) == "warning"
    assert policy.grade(signal("adwin", 0.1, None, "mean_shift_sigma", summary(101.0))) == "info"


def test_evidence_without_a_usable_reference_spread_is_ignored(policy: AlertPolicy) -> None:
    for std in (None, 0.0, float("nan"), float("inf")):
        ref = WindowSummary(count=10, mean=0.0, std=std, quantiles={}, missing_ratio=None)
        assert evidence_sigma(summary(5.0), ref) is None
        assert policy.grade(signal("cusum_mean", 23.1, 22.0, "cusum_statistic", summary(5.0), ref)) == "warning"


def test_a_resolution_is_info(policy: AlertPolicy) -> None:
    sig = signal("cusum_mean", 0.0, 22.0, "cusum_statistic", summary(300.0), status="resolved")
    ev = policy.to_event(sig, model="m", topic="t", partition=0, offset=1, event_time=None, now=0.0)
    assert ev.severity == "info"
    drift = policy.to_event(
        signal("cusum_mean", 23.1, 22.0, "cusum_statistic", summary(300.0)),
        model="m", topic="t", partition=0, offset=2, event_time=None, now=0.0,
    )  # fmt: skip
    assert drift.severity == "critical"
