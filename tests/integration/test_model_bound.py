"""20,000 distinct models on the real broker: banks, series and memory stay bounded, every event is counted.

Issue 24 item 2 (50,000 models once took 7 GB and 1,850,019 series); the measurement at
50,000 is ``python -m benchmarks.many_models``, which this test runs smaller.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.many_models import measure
from driftsentinel.schemas import SidecarConfig

pytestmark = pytest.mark.integration


def test_twenty_thousand_distinct_models_stay_bounded_and_counted(kafka_bootstrap: str, tmp_path: Path) -> None:
    cfg = SidecarConfig()
    out = measure(kafka_bootstrap, 20_000, partitions=3, features=5, tmp=tmp_path, timeout=300)
    assert out["events_counted_per_model"] + out["events_of_dropped_models"] == 20_000  # nothing lost uncounted
    assert out["model_series"] <= 3 * cfg.detectors.max_models  # first come per partition
    assert out["metrics_series"] < 50_000 and out["metrics_series"] <= cfg.metrics_max_series + 200
    assert out["rss_peak_mib"] < 1024
    assert out["scrape_s"] < 30  # a generous functional bound: the scrape answers (once 12-16 s at 50,000)
    assert out["sigterm_exit_code"] == 0
