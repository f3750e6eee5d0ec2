"""detectors.skew: value-by-value comparison of joined serving/offline pairs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from driftsentinel.detectors.skew import SkewDetector, TextCells, WindowResult, summarize
from driftsentinel.detectors.skew_engine import SkewEngine
from driftsentinel.schemas.alerts import DriftEvent, make_event_id
from driftsentinel.schemas.skew import FeatureTolerance, OfflineRow, ServingRow, SkewConfig, SkewSidecarConfig

PLANS = ["free", "basic", "pro", "enterprise"]


def entities(n: int, seed: int = 7) -> tuple[list[str], list[dict], list[dict]]:
    """The issue's scenario: latency ms vs s, plan with 'basic'<->'pro' swapped, 18 noisy equal features."""
    rng = np.random.default_rng(seed)
    ids, serving, offline = [], [], []
    for i in range(n):
        off: dict[str, Any] = {f"f{k}": float(rng.normal(10 * k, 1 + k)) for k in range(18)}
        off["latency"] = float(rng.gamma(2.0, 0.05))
        off["plan"] = PLANS[int(rng.integers(0, 4))]
        on = {k: v * (1 + 1e-12) if isinstance(v, float) else v for k, v in off.items()}
        on["latency"] = off["latency"] * 1000.0
        on["plan"] = {"basic": "pro", "pro": "basic"}.get(off["plan"], off["plan"])
        ids.append(f"e{i}")
        serving.append(on)
        offline.append(off)
    return ids, serving, offline


def all_signals(results: list[WindowResult]) -> list[tuple[str, str]]:
    return [(s.feature, s.status) for r in results for s in r.signals]


def test_issue_scenario_flags_exactly_latency_and_plan() -> None:
    ids, serving, offline = entities(20_000)
    det = SkewDetector(SkewConfig(window_pairs=5000))
    results = det.update(ids, serving, offline)
    assert len(results) == 4
    assert sorted(all_signals(results)) == [("latency", "drift"), ("plan", "drift")]  # once per episode
    for result in results:
        assert len(result.reports) == 20
        for name, rep in result.reports.items():
            if name in ("latency", "plan"):
                continue
            assert rep.within_tolerance_rate == 1.0, name
            assert rep.mismatch_rate == 0.0
            assert rep.ratio == pytest.approx(1.0, abs=1e-9)
    first = {s.feature: s for s in results[0].signals}
    lat = first["latency"].report
    assert lat.kind == "numeric" and lat.mismatch_rate == 1.0
    assert lat.ratio == pytest.approx(1000.0, rel=1e-9)
    assert lat.mean_signed_difference is not None and lat.mean_signed_difference > 0
    assert lat.offline.mean is not None
    assert lat.serving.mean == pytest.approx(1000 * lat.offline.mean)
    assert len(lat.samples) == 10
    for sample in lat.samples:
        assert sample["serving"] == pytest.approx(1000 * sample["offline"])
    plan = first["plan"].report
    assert plan.kind == "categorical"
    assert 0.4 < plan.mismatch_rate < 0.6
    assert [(a, b) for a, b, _, _ in plan.swapped] == [("basic", "pro")]
    assert {(s, o) for s, o, _ in plan.top_pairs} == {("basic", "pro"), ("pro", "basic")}
    assert plan.serving.count == plan.pairs == 5000 and plan.serving.missing_ratio == 0.0
    cats = getattr(plan.serving, "categories", None)  # WindowSummary.categories, where the schema has it
    if cats is not None:
        assert set(cats) == set(PLANS) and sum(cats.values()) == pytest.approx(1.0)
    ev = plan.evidence()
    assert ev["swapped_pairs"][0]["a"] == "basic" and ev["swapped_pairs"][0]["b_to_a"] > 0
    assert first["latency"].statistic_name == "mismatch_rate" and first["latency"].threshold == 0.01


def test_batch_boundaries_do_not_change_decisions() -> None:
    ids, serving, offline = entities(3000)
    one = SkewDetector(SkewConfig(window_pairs=1000))
    many = SkewDetector(SkewConfig(window_pairs=1000))
    a = one.update(ids, serving, offline)
    b = []
    for lo in range(0, 3000, 137):
        b += many.update(ids[lo : lo + 137], serving[lo : lo + 137], offline[lo : lo + 137])
    assert [(r.pairs, sorted(r.reports)) for r in a] == [(r.pairs, sorted(r.reports)) for r in b]
    assert [(s.feature, s.status, s.statistic) for r in a for s in r.signals] == [
        (s.feature, s.status, s.statistic) for r in b for s in r.signals
    ]
    assert [r.reports["latency"].evidence() for r in a] == [r.reports["latency"].evidence() for r in b]


def test_tolerances_per_feature() -> None:
    cfg = SkewConfig(
        window_pairs=100,
        tolerances={"a": FeatureTolerance(abs_tol=0.5), "r": FeatureTolerance(rel_tol=0.01, abs_tol=0)},
    )
    det = SkewDetector(cfg)
    ids = [str(i) for i in range(100)]
    serving = [{"a": 1.4, "r": 101.0, "x": 1.4} for _ in ids]
    offline = [{"a": 1.0, "r": 100.0, "x": 1.0} for _ in ids]
    [res] = det.update(ids, serving, offline)
    assert res.reports["a"].within_tolerance_rate == 1.0 and res.reports["a"].exact_match_rate == 0.0
    assert res.reports["r"].within_tolerance_rate == 1.0
    assert res.reports["x"].within_tolerance_rate == 0.0
    assert res.reports["x"].mean_signed_difference == pytest.approx(0.4)
    assert [s.feature for s in res.signals] == ["x"]


def test_per_feature_threshold_and_missing_values() -> None:
    cfg = SkewConfig(window_pairs=100, tolerances={"m": FeatureTolerance(mismatch_threshold=0.5)})
    det = SkewDetector(cfg)
    ids = [str(i) for i in range(100)]
    # m: 30% missing on the serving side only -> 0.3 mismatch, under its own 0.5 threshold
    serving = [{"m": None if i < 30 else 1.0, "both": None, "n": math.nan if i < 5 else 2.0} for i in range(100)]
    offline = [{"m": 1.0, "both": None, "n": 2.0} for _ in ids]
    [res] = det.update(ids, serving, offline)
    assert res.reports["m"].mismatch_rate == pytest.approx(0.3)
    assert res.reports["m"].one_side_missing == 30
    assert res.reports["m"].serving.missing_ratio == pytest.approx(0.3)
    assert res.reports["both"].within_tolerance_rate == 1.0  # both missing agree
    assert res.reports["n"].mismatch_rate == pytest.approx(0.05)
    assert sorted(s.feature for s in res.signals) == ["n"]


def test_integer_codes_as_categories_and_bounded_pair_tracking() -> None:
    cfg = SkewConfig(
        window_pairs=1000,
        max_tracked_pairs=3,
        top_pairs=2,
        tolerances={"code": FeatureTolerance(categorical=True)},
    )
    det = SkewDetector(cfg)
    ids = [str(i) for i in range(1000)]
    serving = [{"code": {1: 2, 2: 1}.get(i % 10, i % 10)} for i in range(1000)]
    offline = [{"code": i % 10} for i in range(1000)]
    [res] = det.update(ids, serving, offline)
    rep = res.reports["code"]
    assert rep.kind == "categorical" and rep.mismatch_rate == pytest.approx(0.2)
    assert rep.swapped == [(1, 2, 100, 100)]
    assert len(rep.top_pairs) == 2
    # many distinct mismatching pairs: counted, but only max_tracked_pairs kept
    det2 = SkewDetector(cfg)
    [res2] = det2.update(ids, [{"c": f"s{i}"} for i in range(1000)], [{"c": f"o{i}"} for i in range(1000)])
    assert res2.reports["c"].mismatches == 1000 and len(res2.reports["c"].top_pairs) == 2


def test_resolved_after_the_fix_and_flush() -> None:
    det = SkewDetector(SkewConfig(window_pairs=100, min_pairs=50))
    ids = [str(i) for i in range(100)]
    bad = det.update(ids, [{"x": 2.0}] * 100, [{"x": 1.0}] * 100)
    assert all_signals(bad) == [("x", "drift")]
    assert det.in_skew("x")
    good = det.update(ids, [{"x": 1.0}] * 100, [{"x": 1.0}] * 100)
    assert all_signals(good) == [("x", "resolved")]
    det.update(ids[:40], [{"x": 2.0}] * 40, [{"x": 1.0}] * 40)
    assert det.flush() is None  # under min_pairs
    det.update(ids[:20], [{"x": 2.0}] * 20, [{"x": 1.0}] * 20)
    flushed = det.flush()
    assert flushed is not None and flushed.row == -1 and all_signals([flushed]) == [("x", "drift")]
    assert det.pending_pairs == 0


def test_feature_selection_and_cap() -> None:
    det = SkewDetector(SkewConfig(window_pairs=10, include=["a", "b", "c"], exclude=["b"], max_features=1))
    ids = [str(i) for i in range(10)]
    [res] = det.update(ids, [{"a": 1, "b": 2, "c": 3, "d": 4}] * 10, [{"a": 1, "b": 0, "c": 0, "d": 0}] * 10)
    assert list(res.reports) == ["a"]
    assert det.dropped_features > 0


def test_evidence_is_bounded_and_json_ready() -> None:
    import json

    det = SkewDetector(SkewConfig(window_pairs=100, sample_size=3))
    ids = [f"id-{i}" for i in range(100)]
    [res] = det.update(ids, [{"s": "x" * 10_000}] * 100, [{"s": "y"}] * 100)
    ev = res.reports["s"].evidence()
    assert len(ev["sample"]) == 3 and len(ev["sample"][0]["serving"]) == 200
    json.dumps(ev)


def test_summarize() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0], missing=4)
    assert s.count == 4 and s.missing_ratio == 0.5 and s.quantiles["p50"] == 2.5
    assert summarize([], 0).missing_ratio is None


def test_length_mismatch_rejected() -> None:
    with pytest.raises(ValueError):
        SkewDetector(SkewConfig()).update(["a"], [], [{}])


# ---------------------------------------------------------------------- the skew engine (joins + windows + alerts)
def engine_config(**skew: object) -> SkewSidecarConfig:
    return SkewSidecarConfig.model_validate(
        {
            "sources": {"offline_topic": "off", "group_id": "g"},
            "skew": {"window_pairs": 100, "min_pairs": 10, "window_s": None, **skew},
            "shadow": {"baseline": "v1", "candidate": "v2", "window_pairs": 50, "version_field": "version"},
        }
    )


def engine_rows(n: int, start: int = 0) -> list[ServingRow | OfflineRow]:
    """Serving events (latency in ms for ids < 150, then fixed), their offline rows (seconds) in
    reverse order per block of 10, and a shadow candidate for each that disagrees for odd ids >= 100."""
    rows: list[ServingRow | OfflineRow] = []
    for lo in range(start, start + n, 10):
        block = range(lo, min(lo + 10, start + n))
        for i in block:
            latency = 0.1 * (i % 7 + 1)
            served = latency * (1000.0 if i < 150 else 1.0)
            rows.append(
                ServingRow(
                    f"u{i}",
                    {"latency": served, "plan": "pro"},
                    "m",
                    "features",
                    0,
                    2 * i,
                    ts=float(i),
                    prediction="a",
                    version="v1",
                )
            )
            pred = "b" if i >= 100 and i % 2 else "a"
            rows.append(
                ServingRow(
                    f"u{i}",
                    {"latency": served},
                    "m",
                    "features",
                    0,
                    2 * i + 1,
                    ts=float(i),
                    prediction=pred,
                    version="v2",
                )
            )
        rows += [OfflineRow(f"u{i}", {"latency": 0.1 * (i % 7 + 1), "plan": "pro"}, float(i)) for i in reversed(block)]
    return rows


def run_engine(engine: SkewEngine, rows: list[ServingRow | OfflineRow], cut: int) -> list[DriftEvent]:
    events: list[DriftEvent] = []
    for lo in range(0, len(rows), cut):
        events += engine.add(rows[lo : lo + cut], arrival=float(lo), wall=1.7e9).events
    return events


def decisions(events: list[DriftEvent]) -> list[tuple[str, str, str, str, str, int]]:
    return [(e.event_id, e.model, e.feature, e.detector, e.status, e.source.offset) for e in events]


def test_engine_decides_skew_and_shadow_with_ids_from_the_closing_event() -> None:
    engine = SkewEngine.from_config(engine_config())
    rows = engine_rows(400)
    events = run_engine(engine, rows, cut=len(rows))
    events += engine.finish(wall=1.7e9).events
    got = [(e.model, e.feature, e.detector, e.status, e.severity) for e in events]
    assert got == [  # one batch: its skew windows, then its shadow windows
        ("default", "latency", "skew", "drift", "critical"),  # pairs 0-99: all in ms
        ("default", "latency", "skew", "resolved", "info"),  # pairs 200-299: fixed
        ("v2", "prediction", "shadow_divergence", "drift", "critical"),  # pairs 100-149: half disagree
    ]
    first = events[0]
    # the window closed at the 100th pair: u90 (offline rows come in reverse per block), serving offset 180
    assert first.source.offset == 180 and first.event_time == 90.0
    assert first.event_id == make_event_id("g", "features", 0, 180, "default/latency", "skew", "drift")
    evidence = first.evidence or {}
    assert evidence["ratio"] == pytest.approx(1000.0) and evidence["window_pairs"] == 100
    assert evidence["join"]["matched"] == 400 and first.detected_at == 1.7e9
    assert first.window is not None and first.reference is not None and first.reference.mean is not None
    assert first.window.mean == pytest.approx(1000 * first.reference.mean)
    shadow = events[2]
    assert shadow.source.offset == 2 * 149  # the baseline's event that closed the shadow window
    assert shadow.statistic == 0.5 and (shadow.evidence or {})["baseline"] == "v1"
    assert engine.stats()["join"]["unmatched"] == {"serving": 0, "offline": 0}


def test_engine_same_input_same_events_however_cut() -> None:
    rows = engine_rows(400)
    whole = SkewEngine.from_config(engine_config())
    again = SkewEngine.from_config(engine_config())
    a = run_engine(whole, rows, cut=len(rows))
    b = run_engine(again, rows, cut=len(rows))
    assert [e.model_dump() for e in a] == [e.model_dump() for e in b]  # same batches: identical
    cut = SkewEngine.from_config(engine_config())
    c = run_engine(cut, rows, cut=37)
    for detector in ("skew", "shadow_divergence"):  # the order within each detector's stream
        assert [d for d in decisions(c) if d[3] == detector] == [d for d in decisions(a) if d[3] == detector]
    by_id = {e.event_id: e for e in a}
    assert [(e.evidence or {})["sample"] for e in c] == [(by_id[e.event_id].evidence or {})["sample"] for e in c]


def test_engine_state_round_trip() -> None:
    import json

    rows = engine_rows(400)
    cfg = engine_config()
    straight = SkewEngine.from_config(cfg)
    expected = run_engine(straight, rows, cut=50)
    expected += straight.finish(wall=1.7e9).events
    first = SkewEngine.from_config(cfg)
    got = run_engine(first, rows[:400], cut=50)  # mid-window, ids waiting in the skew join
    state = json.loads(json.dumps(first.state_dict()))
    assert state["join"]["pending"]["serving"] and state["skew"]["window_pairs"] > 0
    restored = SkewEngine.from_state(cfg, state)
    assert restored.state_dict() == state
    for lo in range(400, len(rows), 50):
        got += restored.add(rows[lo : lo + 50], arrival=float(lo), wall=1.7e9).events
    got += restored.finish(wall=1.7e9).events
    assert [e.model_dump() for e in got] == [e.model_dump() for e in expected]
    with pytest.raises(ValueError):
        SkewEngine.from_state(cfg, {**state, "version": 99})


def test_engine_model_filter_time_window_and_flush_position() -> None:
    cfg = engine_config(window_pairs=1000, min_pairs=10, window_s=60.0)
    cfg.sources.model = "m"
    engine = SkewEngine.from_config(cfg)
    rows = engine_rows(30)
    other = ServingRow("x1", {"latency": 5.0}, "other", "features", 0, 999)
    step = engine.add([other, *rows, OfflineRow("x1", {"latency": 1.0})], arrival=0.0, wall=1.0)
    assert step.events == [] and engine.stats()["join"]["matched"] == 30  # the other model's event is not joined
    assert engine.tick(arrival=59.0, wall=2.0).events == []
    step = engine.tick(arrival=60.0, wall=3.0)  # window_s passed: the partial window is evaluated
    [event] = step.events
    assert (event.model, event.feature, event.status) == ("m", "latency", "drift")
    assert event.source.offset == 2 * 20  # the last pair's serving event (u20: offline rows in reverse per block)
    assert step.skew_ratio == {"latency": 1.0, "plan": 0.0}
    step = engine.finish(wall=4.0)
    assert step.events == [] and step.unmatched == {"serving": 0, "offline": 1}


def test_engine_without_offline_side_pairs_only_shadow() -> None:
    cfg = engine_config()
    cfg.sources.offline_topic = None
    engine = SkewEngine.from_config(cfg)
    step = engine.add(engine_rows(200), arrival=0.0, wall=1.0)
    assert {e.detector for e in step.events} == {"shadow_divergence"}
    assert engine.stats()["join"]["matched"] == 0 and step.shadow is not None


def test_csv_text_cells_take_the_serving_values_type() -> None:
    """Issue 18: a CSV export's True/1/04100 are the serving boolean and code, not a 100 % mismatch."""
    spellings = {True: ["true", "True", "1", "TRUE", " yes"], False: ["false", "False", "0", "FALSE", "no"]}
    ids, serving, offline, typed = [], [], [], []
    for i in range(20):
        flag = i % 3 == 0
        ids.append(f"u{i}")
        serving.append({"flag": flag, "zip": f"0{4100 + i}", "code": 4100 + i, "amount": 1.5 * i, "plan": None})
        cells = {"flag": spellings[flag][i % 5], "zip": f"0{4100 + i}", "code": f"0{4100 + i}", "amount": str(1.5 * i)}
        offline.append(TextCells({**cells, "plan": None}))
        typed.append({**cells, "plan": None})  # the same strings from a typed source (JSON) stay strings
    [result] = SkewDetector(SkewConfig(window_pairs=20, min_pairs=1)).update(ids, serving, offline)
    assert {name: r.mismatch_rate for name, r in result.reports.items()} == dict.fromkeys(
        ["flag", "zip", "code", "amount", "plan"], 0.0
    )
    assert result.reports["flag"].kind == "categorical" and result.reports["code"].kind == "numeric"
    assert result.signals == []
    [strict] = SkewDetector(SkewConfig(window_pairs=20, min_pairs=1)).update(ids, serving, typed)
    assert {n for n, r in strict.reports.items() if r.mismatch_rate == 1.0} == {"flag", "code", "amount"}


def test_text_cells_still_show_real_skew() -> None:
    ids = [f"u{i}" for i in range(10)]
    serving = [{"flag": True, "amount": 2.0, "plan": "pro"} for _ in ids]
    offline = [TextCells({"flag": "false", "amount": "2000", "plan": "basic"}) for _ in ids]
    [result] = SkewDetector(SkewConfig(window_pairs=10, min_pairs=1)).update(ids, serving, offline)
    assert sorted(s.feature for s in result.signals) == ["amount", "flag", "plan"]
    assert result.reports["amount"].ratio == pytest.approx(0.001)
    assert result.reports["flag"].top_pairs == [(True, False, 10)]
    odd = SkewDetector(SkewConfig(window_pairs=10, min_pairs=1)).update(
        ids, [{"x": 1.0} for _ in ids], [TextCells({"x": "n/a"}) for _ in ids]
    )
    assert odd[0].reports["x"].samples[0] == {"id": "u0", "serving": 1.0, "offline": "n/a"}  # the text as evidence


def test_engine_keeps_text_cells_through_the_join_and_its_state() -> None:
    import json

    cfg = engine_config(window_pairs=10, min_pairs=1)
    engine = SkewEngine.from_config(cfg)
    engine.add([OfflineRow(f"u{i}", TextCells({"flag": "True", "zip": "04100"})) for i in range(10)], 0.0, 1.0)
    state = json.loads(json.dumps(engine.state_dict()))  # the offline rows wait in the join, as plain data
    assert state["version"] == 2
    restored = SkewEngine.from_state(cfg, state)
    serving = [ServingRow(f"u{i}", {"flag": True, "zip": "04100"}, "m", "features", 0, i) for i in range(10)]
    step = restored.add(serving, arrival=1.0, wall=2.0)
    assert step.events == [] and step.skew_ratio == {"flag": 0.0, "zip": 0.0}


def test_typed_cell_reads_a_decimal_comma_only_against_a_serving_number() -> None:
    """A ';'-file's cell keeps its text: "1,5" is 1.5 for a serving number, "1,5" for a serving string."""
    from driftsentinel.detectors.skew import typed_cell

    assert typed_cell(1.5, "1,5", True) == 1.5 and typed_cell(1234.5, "1.234,50", True) == 1234.5
    assert typed_cell("1,5", "1,5", True) == "1,5" and typed_cell(1.5, "1,5", False) == "1,5"
    det = SkewDetector(SkewConfig(window_pairs=10, min_pairs=10))
    cells = TextCells({"amount": "1,5", "code": "1,5"}, decimal_comma=True)
    [result] = det.update([str(i) for i in range(10)], [{"amount": 1.5, "code": "1,5"}] * 10, [cells] * 10)
    assert result.reports["amount"].exact_match_rate == 1.0 and result.reports["code"].exact_match_rate == 1.0
