"""detectors.shadow: a candidate model's predictions against the production model's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftsentinel.detectors.shadow import ShadowDetector, js_distance, ks_statistic
from driftsentinel.schemas.skew import ShadowConfig


def config(**kw: object) -> ShadowConfig:
    return ShadowConfig(baseline="v1", candidate="v2", **kw)  # type: ignore[arg-type]


def class_stream(n: int, agreement: float, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    classes = np.array(["approve", "review", "deny"])
    base = rng.integers(0, 3, n)
    flip = rng.random(n) >= agreement
    cand = np.where(flip, (base + 1) % 3, base)  # a different class where flipped
    return classes[base].tolist(), classes[cand].tolist()


def test_agreeing_99_then_80_gives_one_event_after_the_change() -> None:
    rng = np.random.default_rng(3)
    det = ShadowDetector(config(window_pairs=1000))
    b1, c1 = class_stream(10_000, 0.99, rng)
    b2, c2 = class_stream(10_000, 0.80, rng)
    ids = [f"r{i}" for i in range(20_000)]
    results = det.update(ids, b1 + b2, c1 + c2)
    assert len(results) == 20
    signals = [(i, s) for i, r in enumerate(results) for s in r.signals]
    assert len(signals) == 1
    window, sig = signals[0]
    assert window == 10  # the first window after the change
    assert sig.status == "drift" and sig.detector == "shadow_divergence"
    assert sig.statistic == pytest.approx(0.8, abs=0.03) and sig.threshold == 0.9
    assert all(r.report.agreement_rate > 0.98 for r in results[:10])
    ev = sig.report.evidence()
    assert ev["kind"] == "classes" and 0 <= ev["js_distance"] < 0.2
    assert len(ev["sample"]) == 10 and ev["top_disagreements"]
    json.dumps(ev)


def test_scores_error_distribution_and_ks() -> None:
    rng = np.random.default_rng(5)
    det = ShadowDetector(config(window_pairs=2000, score_tolerance=0.05))
    base = rng.random(4000)
    cand = base + rng.normal(0, 0.001, 4000)
    cand[2000:] += 0.3  # the candidate scores everything higher
    results = det.update([str(i) for i in range(4000)], base.tolist(), cand.tolist())
    assert det.kind == "scores"
    first, second = results
    assert first.signals == [] and first.report.agreement_rate == 1.0
    assert first.report.error is not None and abs(first.report.error["mean"]) < 0.001
    [sig] = second.signals
    assert sig.status == "drift"
    assert second.report.error is not None and second.report.error["mean"] == pytest.approx(0.3, abs=0.01)
    assert second.report.distance > 0.2 and second.report.distance_name == "ks_statistic"


def test_distribution_distance_alone_can_decide() -> None:
    det = ShadowDetector(config(window_pairs=100, min_agreement=0.0, max_distance=0.3))
    [res] = det.update([str(i) for i in range(100)], ["a"] * 100, ["b"] * 100)
    assert res.report.distance == pytest.approx(1.0)
    assert [s.status for s in res.signals] == ["drift"]


def test_resolved_when_back_and_missing_predictions() -> None:
    det = ShadowDetector(config(window_pairs=10))
    det.update([str(i) for i in range(10)], [1.0] * 10, [0.0] * 10)
    assert det.diverged and det.kind == "classes"  # whole numbers are classes
    [back] = det.update([str(i) for i in range(10)], [1, None, 1, 1, 1, 1, 1, 1, 1, 1], [1] * 10)
    assert back.report.missing == 1 and back.report.pairs == 9
    assert [s.status for s in back.signals] == ["resolved"]
    assert det.flush() is None
    det.update(["x"], ["a"], ["b"])
    flushed = det.flush()
    assert flushed is not None and flushed.row == -1


def test_class_count_is_bounded() -> None:
    det = ShadowDetector(config(window_pairs=1000, max_classes=5))
    [res] = det.update([str(i) for i in range(1000)], [f"c{i}" for i in range(1000)], [f"c{i}" for i in range(1000)])
    assert res.report.agreement_rate == 1.0 and res.report.distance == pytest.approx(0.0)


def test_distances() -> None:
    assert js_distance([1, 1], [1, 1]) == 0.0
    assert js_distance([0, 0], [1, 1]) == 0.0
    assert 0 < js_distance([2, 1], [1, 2]) < 1
    assert ks_statistic([], [1.0]) == 0.0
    assert ks_statistic([0.0, 1.0], [0.5, 1.5]) == pytest.approx(0.5)


def test_config_needs_two_models() -> None:
    with pytest.raises(ValueError):
        ShadowConfig(baseline="v1", candidate="v1")
