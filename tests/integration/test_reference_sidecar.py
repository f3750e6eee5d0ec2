"""Issue 4 on the real broker: the sidecar with a training profile reports the changed features."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.cli import main
from tests.integration.sidecar_helpers import SidecarProcess, produce, read_all
from tests.unit.test_reference import live_events, training_csv

pytestmark = pytest.mark.integration


def test_sidecar_with_reference_reports_the_three_changed_features(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    training_csv(tmp_path / "train.csv")
    assert main(["baseline", "--input", str(tmp_path / "train.csv"), "--out", str(tmp_path / "profile.json")]) == 0
    topic = new_topic(partitions=1)
    produce(kafka_bootstrap, topic, [json.dumps(e).encode() for e in live_events()], key=b"m")
    sidecar = SidecarProcess(kafka_bootstrap, topic, "--idle-exit", "5", "--reference", str(tmp_path / "profile.json"),
                             tmp=tmp_path)
    try:
        assert sidecar.wait(180) == 0, sidecar.log()[-3000:]
    finally:
        sidecar.kill()
    alerts = [json.loads(m.value()) for m in read_all(kafka_bootstrap, sidecar.alerts_topic)]
    by_feature: dict[str, set[str]] = {}
    for a in alerts:
        if a["status"] == "drift":
            by_feature.setdefault(a["feature"], set()).add(a["detector"])
    assert set(by_feature) == {"x1", "country", "income"}, by_feature
    assert by_feature["x1"] & {"ks", "psi", "js", "wasserstein"}
    assert "new_category" in by_feature["country"] and "missing_rate" in by_feature["income"]
    assert all(a["source"]["offset"] >= 10_000 for a in alerts)
