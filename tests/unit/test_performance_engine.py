"""Live performance estimation through the Engine: estimate vs band, grading by labels, state.

The car-loan test replays NannyML 0.13.1's ``synthetic_car_loan`` analysis period (its
performance drops after row 25,000) through the Engine as events; it is skipped when the
NannyML wheel cannot be fetched (``benchmarks/nannyml_data.py`` caches it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from driftsentinel.detectors.engine import Engine, Output
from driftsentinel.detectors.performance import (
    RealizedWindow,
    ReferenceModel,
    fit_classification_reference,
    fit_regression_reference,
)
from driftsentinel.detectors.performance_monitor import PerformanceMonitor
from driftsentinel.detectors.performance_window import WindowClock
from driftsentinel.detectors.reference_monitor import ReferenceMonitor
from driftsentinel.schemas import FeatureBatch, SidecarConfig, WindowTestConfig
from driftsentinel.schemas.fastdecode import EventView
from driftsentinel.schemas.labels import LabelEvent
from driftsentinel.schemas.profile import PerformanceInputs, PerformanceReference, ReferenceProfile
from driftsentinel.stream.checkpoint import _pack, decode_state, encode_state

WINDOW = 2000
INPUT_DRIFT = {"adwin", "page_hinkley", "psi", "ks", "js", "wasserstein", "missing_rate", "out_of_range", "chi2"}


def _profile(model: str, ref: PerformanceReference) -> ReferenceProfile:
    return ReferenceProfile(source="test", n_rows=ref.n_rows, features={}, performance={model: ref})


def _config(**window: Any) -> SidecarConfig:
    return SidecarConfig.model_validate({"detectors": {"window_tests": {"window_events": WINDOW, **window}}})


def _flip_stream(n: int, flip_at: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An input ``x``, the model's score ``p = sigmoid(2x)`` and labels ~ Bernoulli(p), then Bernoulli(1 - p)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    p = 1.0 / (1.0 + np.exp(-2.0 * x))
    u = rng.random(n)
    y = np.where(np.arange(n) < flip_at, u < p, u < 1.0 - p).astype(int)
    return x, p, y


def _reference(seed: int = 1) -> PerformanceReference:
    _, p, y = _flip_stream(40_000, 40_000, seed)
    return fit_classification_reference(p, y, window=WINDOW)


def _run(engine: Engine, items: list, chunk: int = 1000) -> list:
    events = []
    for a in range(0, len(items), chunk):
        events += engine.process("t", 0, items[a : a + chunk], now=0.0).events
    return events


def test_car_loan_drop_raises_performance_estimate_and_nothing_before() -> None:
    nannyml_data = pytest.importorskip("benchmarks.nannyml_data")
    try:
        data = nannyml_data.load("car_loan")
    except nannyml_data.DataUnavailable as exc:
        pytest.skip(f"NannyML data unavailable: {exc}")
    ref = fit_classification_reference(data.scores("reference"), data.reference["repaid"], window=5000)
    engine = Engine(SidecarConfig(), input_topic="t", profile=_profile("loan", ref))
    scores, a = data.scores("analysis"), data.analysis
    numeric = ["car_value", "debt_to_income_ratio", "loan_length", "driver_tenure"]
    items = [
        (i, EventView(model="loan", features={f: float(a[f][i]) for f in numeric}, prediction=float(scores[i])), 0.0)
        for i in range(scores.size)
    ]
    events = _run(engine, items, chunk=4096)
    assert [e for e in events if e.source.offset < 25_000] == []
    perf = [e for e in events if e.detector == "performance_estimate"]
    assert perf, "the drop after row 25,000 must raise performance_estimate"
    first = min(perf, key=lambda e: e.source.offset)
    assert first.source.offset == 29_999  # the first window after the drop (rows 25,000-29,999)
    auc = next(e for e in perf if e.feature == "@roc_auc")
    ev = auc.evidence
    assert ev is not None and ev["estimate"] < ev["lower"] < ev["reference_value"] < ev["upper"]
    assert ev["window_predictions"] == 5000 and auc.status == "drift"
    assert engine.readouts().performance["loan"][0] is not None


def _flip_items(n: int, flip_at: int, late: bool) -> tuple[list, list]:
    x, p, y = _flip_stream(n, flip_at, seed=7)
    items, labels = [], []
    for i in range(n):
        if late:
            items.append((i, EventView(model="m", id=f"r{i}", features={"x": float(x[i])}, prediction=float(p[i])), i))
            labels.append((i, LabelEvent(id=f"r{i}", label=int(y[i])), i + 0.5))
        else:
            items.append(
                (i, EventView(model="m", features={"x": float(x[i])}, prediction=float(p[i]), label=int(y[i])), 0)
            )
    return items, labels


def test_label_flip_in_event_labels_raises_calibration_drift_and_no_input_drift() -> None:
    n, flip = 16_000, 8_000
    engine = Engine(_config(), input_topic="t", profile=_profile("m", _reference()))
    items, _ = _flip_items(n, flip, late=False)
    events = _run(engine, items)
    assert not [e for e in events if e.detector in INPUT_DRIFT and e.feature in ("x", "@prediction")]
    calib = [e for e in events if e.detector == "calibration_drift"]
    assert calib and min(e.source.offset for e in calib) < flip + 2 * WINDOW
    assert not [e for e in calib if e.source.offset < flip]
    ev = next(e for e in calib if e.feature == "@roc_auc").evidence
    assert ev is not None and ev["realized"] < 0.5 < ev["estimate"] and abs(ev["difference"]) > ev["tolerance"]


def test_label_flip_late_labels_raises_calibration_drift_within_two_windows() -> None:
    n, flip = 16_000, 8_000
    engine = Engine(_config(), input_topic="t", labels_topic="labels", profile=_profile("m", _reference()))
    items, labels = _flip_items(n, flip, late=True)
    events, seen_at = [], {}
    for a in range(0, n, 1000):
        events += engine.process("t", 0, items[a : a + 1000], now=0.0).events
        out = engine.process_labels("labels", 0, labels[a : a + 1000], now=0.0)
        for e in out.events:
            seen_at[e.event_id] = a + 1000
        events += out.events
    calib = [e for e in events if e.detector == "calibration_drift"]
    assert calib, "late labels must grade the windows"
    first = min(seen_at[e.event_id] for e in calib)
    assert flip < first <= flip + 2 * WINDOW + 1000  # labels of the first flipped window, plus one chunk
    assert calib[0].source.topic == "labels"  # the label that covered the window
    assert engine.readouts().performance["m"][1] is not None


def test_same_alerts_however_cut_and_across_a_checkpoint() -> None:
    n, flip = 12_000, 6_000
    items, labels = _flip_items(n, flip, late=True)
    profile = _profile("m", _reference())

    def run(cut: int, restore_at: int | None) -> tuple[list, dict]:
        engine = Engine(_config(), input_topic="t", labels_topic="labels", profile=profile)
        ids = []
        for a in range(0, n, cut):
            if restore_at is not None and a == restore_at:
                state = decode_state(encode_state(engine.state("t", 0)))
                engine = Engine(_config(), input_topic="t", labels_topic="labels", profile=profile)
                engine.restore("t", 0, state, replay_until=a, labels_replay_until=a)
            out = engine.process("t", 0, items[a : a + cut], now=0.0)
            out2 = engine.process_labels("labels", 0, labels[a : a + cut], now=0.0)
            ids += [e.event_id for e in out.events + out2.events]
        return ids, engine.state("t", 0)["performance"]["m"]

    whole, state_whole = run(1000, None)
    assert whole
    restored, state_restored = run(1000, 5000)
    assert restored == whole
    _assert_same_state(state_restored, state_whole)
    other_cut, _ = run(3000, None)
    assert other_cut == whole


def _assert_same_state(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same_state(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same_state(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and a != a:
        assert b != b
    else:
        assert a == b


def test_state_round_trip_and_rejected_states() -> None:
    ref = _reference()
    cfg = _config()
    engine = Engine(cfg, input_topic="t", labels_topic="labels", profile=_profile("m", ref))
    items, _ = _flip_items(5_500, 10_000, late=True)
    _run(engine, items)  # no labels yet: two closed windows wait for theirs
    state = decode_state(encode_state(engine.state("t", 0)))
    perf = state["performance"]["m"]
    assert len(perf["pending"]) == 2 and perf["open"]["predictions"] == 1500
    args = (ref, cfg.detectors.performance, cfg.detectors.window_tests, True)
    mon = PerformanceMonitor.from_state(perf, *args)
    _assert_same_state(mon.state_dict(), perf)
    window, counts = perf["pending"][1], perf["pending"][1]["realized"]
    hist = counts["hist"].astype(np.float64)
    for broken, why in (
        ({**perf, "version": 1}, "version 1 is not 2"),  # the row-buffer design's states are not read
        ({**perf, "columns": ["y"]}, "disagree"),
        ({**perf, "open": {**perf["open"], "inputs": np.zeros((3, 5))}}, "open: expected exactly the keys"),
        ({**perf, "pending": "x"}, "pending"),
        ({**perf, "active": {"performance_estimate": ["nope"]}}, "active"),
        (_with(perf, 1, realized={**counts, "hist": hist[:, :-1]}), r"pending\[1\].realized: .*shape"),
        (_with(perf, 1, realized={**counts, "hist": hist - 1}), "non-negative"),
        (_with(perf, 1, realized={**counts, "confusion": np.full((2, 2), np.nan)}), "finite"),
        (_with(perf, 1, realized={**counts, "n_rows": 3000, "n_used": 3000}), "more labelled predictions"),
        (_with(perf, 1, first=window["last"], last=window["first"]), "after last"),
        (_with(perf, 1, predictions=7), "predictions disagree"),
        ({**perf, "pending": perf["pending"][::-1]}, "not in stream order"),
        ({**perf, "open": {**perf["open"], "predictions": 1499}}, "estimated: counts of 1500 rows"),
    ):
        with pytest.raises(ValueError, match=why):
            PerformanceMonitor.from_state(broken, *args)
    bad = {**state, "performance": {"other": perf}}
    with pytest.raises(ValueError, match="other"):
        Engine(cfg, input_topic="t", profile=_profile("m", ref)).restore("t", 0, bad)


def _with(perf: dict, i: int, **changes: Any) -> dict:
    """``perf`` with pending window ``i`` changed."""
    pending = list(perf["pending"])
    pending[i] = {**pending[i], **changes}
    return {**perf, "pending": pending}


def _batch(names: list[str], columns: np.ndarray, offsets: np.ndarray, rows: np.ndarray | None = None) -> FeatureBatch:
    return FeatureBatch(names, columns, offsets, np.full(offsets.size, np.nan), rows_in_message=rows)


def _monitor(ref: PerformanceReference, window: int, late: bool = True, pending: int = 16) -> PerformanceMonitor:
    cfg = SidecarConfig.model_validate(
        {"detectors": {"window_tests": {"window_events": window}, "performance": {"max_pending_windows": pending}}}
    )
    return PerformanceMonitor(ref, cfg.detectors.performance, cfg.detectors.window_tests, late_labels=late)


def test_state_size_does_not_grow_with_the_window() -> None:
    """A monitor's checkpoint is counts and per-window metadata: the same size for windows of
    5,000 and 50,000 events (the row buffer it replaces held ~32 bytes per event)."""
    ref = _reference()
    sizes = []
    for window in (5_000, 50_000):
        mon = _monitor(ref, window, pending=2)
        n = 3 * window + window // 2  # two closed windows waiting (85% labelled), half an open one
        _, p, y = _flip_stream(n, n, seed=3)
        labels = np.where(np.random.default_rng(4).random(n) < 0.85, y, np.nan)
        for a in range(0, n, 10_000):
            b = min(a + 10_000, n)
            mon.update(_batch(["@prediction", "@label"], np.column_stack([p[a:b], labels[a:b]]), np.arange(a, b)))
        state = mon.state_dict()
        assert len(mon.pending) == 2 and mon.ungraded == 1
        sizes.append(len(msgpack.packb(_pack(state), use_bin_type=True)))
    assert abs(sizes[0] - sizes[1]) <= 32, sizes
    assert sizes[0] < 200_000  # a binary model's histograms: open (float64) + two waiting (uint32)


def test_late_labels_land_in_their_window() -> None:
    """A late label is mapped to the closed window holding its prediction's (offset, row) --
    across a columnar message cut by a window -- and grades it alone, with the metrics of
    exactly its predictions; labels of other positions change nothing."""
    ref = _reference()
    mon = _monitor(ref, 500)
    _, p, y = _flip_stream(1_600, 1_600, seed=5)
    offsets = np.repeat(np.arange(100, 100 + 16), 100)  # columnar messages of 100 rows: offset, row
    rows = np.tile(np.arange(100), 16)
    for a in range(0, 1_600, 300):
        b = min(a + 300, 1_600)
        mon.update(_batch(["@prediction"], p[a:b, None], offsets[a:b], rows[a:b]))
    assert [(w.first, w.last) for w in mon.pending] == [
        ((100, 0), (104, 99)),
        ((105, 0), (109, 99)),
        ((110, 0), (114, 99)),
    ]
    second = range(500, 1000)
    pairs = [(int(offsets[i]), int(rows[i]), float(p[i]), int(y[i])) for i in second]
    stray = [(99, 0, 0.5, 1), (200, 0, 0.5, 1)]  # before the first window, after the open one
    mon.add_labels(stray + pairs[:400])
    assert [w.labelled for w in mon.pending] == [0, 400, 0] and mon.open.labelled == 0
    mon.add_labels(pairs[400:])  # 90% coverage: graded at once
    assert [w.first for w in mon.pending] == [(100, 0), (110, 0)]
    graded = mon.take_closed()[-1]
    assert graded.first_offset == 105 and graded.coverage == pytest.approx(450 / 500)
    truth = RealizedWindow(ref)
    truth.add(scores=p[500:950], labels=y[500:950])
    assert graded.realized == pytest.approx(truth.metrics(), nan_ok=True)
    mon.add_labels(pairs[450:])  # a graded window's labels are ignored
    assert [w.labelled for w in mon.pending] == [0, 0]


def test_multiclass_late_labels_realize_the_confusion_metrics_only() -> None:
    """A multiclass model whose class scores are features: a late label's pair holds the
    predicted class only, so accuracy, precision, recall and F1 are realized from it and ROC AUC
    is not (NaN, never graded); with in-event labels ROC AUC is realized too."""
    s, y = _multiclass(12_000, seed=2)
    ref = fit_classification_reference(s, y, window=WINDOW)
    ref = ref.model_copy(update={"inputs": PerformanceInputs(scores=["p0", "p1", "p2"])})
    names = ["p0", "p1", "p2", "@prediction", "@label"]
    s2, y2 = _multiclass(4_000, seed=3)
    y2 = (y2 + 1) % 3  # every label wrong: a calibration miss on every metric realized
    for late in (True, False):
        mon = _monitor(ref, WINDOW)
        labels = np.full(4_000, np.nan) if late else y2.astype(float)
        cols = np.column_stack([s2, s2.argmax(axis=1), labels])
        decisions = mon.update(_batch(names, cols, np.arange(4_000)))
        pairs = [(i, None, str(int(s2[i].argmax())), int(y2[i])) for i in range(4_000)]
        decisions += mon.add_labels(pairs) if late else []
        graded = [r for r in mon.take_closed() if r.realized is not None]
        assert len(graded) == 2
        assert all(r.realized is not None and r.realized["accuracy"] < 0.2 for r in graded)
        auc = [r.realized["roc_auc"] for r in graded if r.realized is not None]
        assert all(a != a for a in auc) if late else all(a < 0.5 for a in auc)
        metrics = {d.metric for d in decisions if d.detector == "calibration_drift"}
        assert metrics == ({"accuracy", "f1", "precision", "recall"} | (set() if late else {"roc_auc"}))


def _multiclass(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2)) * 1.5
    e = np.exp(np.column_stack([z[:, 0], z[:, 1], -z.sum(axis=1)]))
    s = e / e.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(s, axis=1)).sum(axis=1)
    return s, y


def _raw_window(model: ReferenceModel, kwargs: dict[str, Any], labels: np.ndarray) -> tuple[dict, dict]:
    """The row-buffer design's estimate and realized metrics: one window's rows all at once."""
    rows = model.rows(**kwargs, estimate=True)
    (est,) = model.accumulate(rows, np.zeros(labels.size, dtype=np.int64), 1)
    realized = RealizedWindow(model)
    have = labels == labels
    realized.add(labels=labels[have], **{k: None if v is None else v[have] for k, v in kwargs.items()})
    return est.metrics(model.binary), realized.metrics()


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_counts_per_batch_equal_the_raw_rows_of_the_window(kind: str) -> None:
    """Counts accumulated batch by batch give the estimates and realized metrics the window's
    rows give at once (up to float rounding), however the batches cut the windows."""
    rng = np.random.default_rng(8)
    n, window = 6_000, 1_500
    kw: dict[str, Any] = {"scores": None, "predicted": None, "features": None, "predictions": None}
    if kind == "binary":
        _, p, y = _flip_stream(n, 3_000, seed=8)
        ref, names, cols = _reference(), ["@prediction", "@label"], [p]
        kw["scores"], labels = p, y.astype(float)
    elif kind == "multiclass":
        s, y = _multiclass(n, seed=8)
        ref = fit_classification_reference(*_multiclass(8_000, seed=9), window=window)
        ref = ref.model_copy(update={"inputs": PerformanceInputs(scores=["p0", "p1", "p2"])})
        names, cols, kw["scores"], labels = ["p0", "p1", "p2", "@label"], [s], s, y.astype(float)
    else:
        x = rng.standard_normal((n + 6_000, 2))
        y_hat = x[:, 0] - 0.5 * x[:, 1]
        truth = y_hat + rng.standard_normal(n + 6_000) * (0.3 + np.abs(x[:, 1]))
        ref = fit_regression_reference(
            x[n:], y_hat[n:], truth[n:], feature_names=["a", "b"], window=window, max_iter=20
        )
        x[:200, 1] = np.nan  # a missing feature: still estimated
        names, cols = ["a", "b", "@prediction", "@label"], [x[:n], y_hat[:n]]
        kw["features"], kw["predictions"], labels = x[:n], y_hat[:n], truth[:n]
    labels = np.where(rng.random(n) < 0.95, labels, np.nan)
    mon = _monitor(ref, window, late=False)
    matrix = np.column_stack([*cols, labels])
    a = 0
    for size in rng.integers(1, 2_000, 50).tolist():
        b = min(a + size, n)
        mon.update(_batch(names, matrix[a:b], np.arange(a, b)))
        a = b
    assert a == n
    records = mon.take_closed()
    estimated, graded = records[0::2], records[1::2]
    assert len(estimated) == len(graded) == n // window
    model = ReferenceModel(ref)
    for i, (est, real) in enumerate(zip(estimated, graded, strict=True)):
        part = slice(i * window, (i + 1) * window)
        want_est, want_real = _raw_window(
            model, {k: None if v is None else v[part] for k, v in kw.items()}, labels[part]
        )
        assert est.estimate == pytest.approx(want_est, rel=1e-9, nan_ok=True)
        assert real.realized == pytest.approx(want_real, rel=1e-9, nan_ok=True)


@pytest.mark.parametrize("seconds", [None, 30.0])
def test_windows_close_where_the_window_tests_close(seconds: float | None) -> None:
    """The monitor's clock cuts windows at the same rows as the reference monitor's."""
    from driftsentinel.detectors.profile import build_profile

    rng = np.random.default_rng(3)
    cfg = WindowTestConfig(window_events=500, window_seconds=seconds, min_count=10)
    prof = build_profile({"x": rng.normal(size=5000).tolist()}, source="t")
    ref_mon, clock = ReferenceMonitor(prof, cfg), WindowClock(cfg)
    times = np.cumsum(rng.exponential(0.1, 6000))
    times[3000] -= 5000.0  # a clock that jumps back
    x = rng.normal(size=(6000, 1)) * np.where(np.arange(6000) > 2000, 5, 1)[:, None]
    want, got = [], []
    for a in range(0, 6000, 700):
        want += [a + d.row for d in ref_mon.update(["x"], x[a : a + 700], [], None, times[a : a + 700])]
        got += [a + row for _, row in clock.cuts(min(700, 6000 - a), times[a : a + 700])]
    assert set(want) <= set(got) and got


def test_engine_output_records_windows() -> None:
    engine = Engine(_config(), input_topic="t", profile=_profile("m", _reference()))
    items, _ = _flip_items(4_000, 10_000, late=False)
    out: Output = engine.process("t", 0, items, now=0.0)
    recs = [r for m, r in out.performance_windows if m == "m"]
    assert [r.first_offset for r in recs] == [0, 0, 2000, 2000]  # each window estimated, then graded
    assert recs[1].realized is not None and recs[1].coverage == 1.0


def test_labels_before_their_predictions_same_alerts_however_cut() -> None:
    """Labels that wait for their prediction (replay of a labels file without times) grade the
    window when it closes, at the same row whatever the batch boundaries."""
    n, flip = 12_000, 6_000
    items, labels = _flip_items(n, flip, late=True)
    profile = _profile("m", _reference())

    def run(cut: int) -> list[tuple]:
        engine = Engine(_config(), input_topic="t", labels_topic="labels", profile=profile)
        engine.restore("t", 0, None)
        events = list(engine.process_labels("labels", 0, labels, now=0.0).events)
        for a in range(0, n, cut):
            events += engine.process("t", 0, items[a : a + cut], now=0.0).events
        # sorted: a call's label alerts follow its feature alerts (the engine's order for concept drift too)
        return sorted((e.source.offset, e.detector, e.event_id) for e in events)

    whole = run(1000)
    calib = [e for e in whole if e[1] == "calibration_drift"]
    assert calib and {e[0] for e in calib} == {flip + WINDOW - 1}  # the first flipped window's last row
    assert run(4096) == whole == run(777)


def test_report_section_shows_estimated_and_realized_windows() -> None:
    from driftsentinel.stream.report_performance import PerformanceWindows, performance_section

    engine = Engine(_config(), input_topic="t", profile=_profile("m", _reference()))
    items, _ = _flip_items(6_000, 3_000, late=False)
    windows = PerformanceWindows()
    for a in range(0, 6_000, 1000):
        windows.add(engine.process("t", 0, items[a : a + 1000], now=0.0).performance_windows)
    recs = list(windows.windows["m"].values())
    assert [r.first_offset for r in recs] == [0, 2000, 4000] and all(r.realized is not None for r in recs)
    page = performance_section(windows)
    assert page.count("<svg") == 5 and page.count("<circle") == 15  # 5 metrics, 3 graded windows each


def test_replay_html_report_has_the_performance_section(tmp_path: Path) -> None:
    """``replay --reference --html``: the report shows each window's estimate, band and realized value."""
    pytest.importorskip("matplotlib")
    from driftsentinel.stream.cli import main

    profile = tmp_path / "p.json"
    profile.write_text(_profile("m", _reference()).model_dump_json())
    items, _ = _flip_items(6_000, 3_000, late=False)
    live = tmp_path / "live.jsonl"
    with live.open("w") as fh:
        for _, ev, _ in items:
            row = {"model": "m", "features": ev.features, "prediction": ev.prediction, "label": ev.label}
            fh.write(json.dumps(row) + "\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"detectors:\n  window_tests:\n    window_events: {WINDOW}\n")
    html = tmp_path / "r.html"
    argv = ["replay", "--input", str(live), "--reference", str(profile), "--config", str(config)]
    assert main([*argv, "--output", str(tmp_path / "a.jsonl"), "--html", str(html)]) == 0
    page = html.read_text()
    assert "<h2>Performance estimation</h2>" in page
    assert page.count("<circle") == 15  # 5 metrics x 3 windows, each graded by its in-event labels


def _labelled_pairs(p: np.ndarray, y: np.ndarray, idx: range | list[int]) -> list[tuple[int, None, float, int]]:
    return [(i, None, float(p[i]), int(y[i])) for i in idx]


def test_covering_a_window_when_an_older_one_has_as_many_labels() -> None:
    """Two waiting windows with the same labelled count: covering the newer one grades it
    (windows are removed by identity, never by comparing their count arrays)."""
    mon = _monitor(_reference(), 500)
    _, p, y = _flip_stream(1_200, 1_200, seed=5)
    score = p.copy()
    score[500:600] = np.nan  # the second window: 500 events, 400 predictions
    mon.update(_batch(["@prediction"], score[:, None], np.arange(1_200)))
    assert [w.predictions for w in mon.pending] == [500, 400]
    older = _labelled_pairs(p, y, range(360))  # 72%: waits
    newer = _labelled_pairs(p, y, range(600, 960))  # 90% of 400: covered
    assert mon.add_labels(older) == []
    mon.add_labels(newer)
    assert [w.predictions for w in mon.pending] == [500]
    graded = [r for r in mon.take_closed() if r.realized is not None]
    assert [r.first_offset for r in graded] == [600]


def test_a_restored_window_larger_than_the_new_window_size_closes_at_once() -> None:
    """window_events lowered between restarts: the restored open window (3,000 events, now
    over-full at 1,000) closes at the next batch's first row, once, for the performance
    monitor and the window tests alike; an absurd count is a rejected checkpoint."""
    from driftsentinel.detectors.profile import build_profile
    from driftsentinel.detectors.reference_monitor import window_cuts

    ref = _reference()
    _, p, _ = _flip_stream(3_500, 3_500, seed=5)
    mon = _monitor(ref, 5_000)
    mon.update(_batch(["@prediction"], p[:3_000, None], np.arange(3_000)))
    state = mon.state_dict()
    assert state["clock"]["rows"] == 3_000
    small = _monitor(ref, 1_000)
    restored = PerformanceMonitor.from_state(state, ref, small.config, small.clock.config, True)
    decisions = restored.update(_batch(["@prediction"], p[3_000:, None], np.arange(3_000, 3_500)))
    closed = restored.take_closed()
    assert [r.predictions for r in closed] == [3_000] and restored.clock.rows == 500
    assert all(d.row == 0 for d in decisions)
    cfg = WindowTestConfig(window_events=1_000, min_count=10)
    assert window_cuts(cfg, 500, np.full(500, np.nan), 3_000, None) == ([(0, 0)], None)
    assert window_cuts(cfg, 500, np.full(500, np.nan), 10**15, None) == ([(0, 0)], None)
    assert window_cuts(cfg, 0, np.full(0, np.nan), 3_000, None) == ([], None)
    prof = build_profile({"x": np.random.default_rng(1).normal(size=2_000).tolist()}, source="t")
    ref_mon = ReferenceMonitor(prof, cfg)
    ref_mon.rows = 3_000
    x = np.random.default_rng(2).normal(size=(500, 1)) * 10
    rows = [d.row for d in ref_mon.update(["x"], x, [], None, np.full(500, np.nan))]
    assert set(rows) <= {0} and ref_mon.rows == 500
    for rows_ in (10**15, -1):
        bad = {**state, "clock": {**state["clock"], "rows": rows_}}
        with pytest.raises(ValueError, match="performance.clock.rows"):
            PerformanceMonitor.from_state(bad, ref, small.config, small.clock.config, True)


def test_sparse_event_time_windows_do_not_allocate_counts_per_tiny_window() -> None:
    """A 4,096-line batch of sparse events in 1-second windows closes ~4,000 windows too small
    to estimate: only the parts that can be used get counts (peak well under 20 MB), and the
    windows kept have the estimates of the same rows fed in small batches."""
    import tracemalloc

    ref = _reference()
    n = 4_096
    _, p, _ = _flip_stream(n, n, seed=9)
    times = np.concatenate(
        [
            np.linspace(0, 0.9, 1_000),
            10.0 + 2 * np.arange(1_500),
            5_000 + np.linspace(0, 0.9, 1_000),
            6_000.0 + np.arange(596),
        ]
    )
    cfg = SidecarConfig.model_validate({"detectors": {"window_tests": {"window_seconds": 1.0}}})
    batch = FeatureBatch(["@prediction"], p[:, None], np.arange(n), times)

    def monitor() -> PerformanceMonitor:
        return PerformanceMonitor(ref, cfg.detectors.performance, cfg.detectors.window_tests, late_labels=True)

    whole = monitor()
    whole.update(FeatureBatch(["@prediction"], p[:10, None], np.arange(10), times[:10]))  # warm-up
    whole = monitor()
    tracemalloc.start()
    whole.update(batch)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20e6, peak
    pieces = monitor()
    for a in range(0, n, 64):
        pieces.update(
            FeatureBatch(["@prediction"], p[a : a + 64, None], np.arange(a, min(a + 64, n)), times[a : a + 64])
        )
    got, want = whole.take_closed(), pieces.take_closed()
    assert [r.predictions for r in got] == [1_000, 1_000]
    assert [(r.first_offset, r.predictions) for r in got] == [(r.first_offset, r.predictions) for r in want]
    for mine, theirs in zip(got, want, strict=True):
        assert mine.estimate == pytest.approx(theirs.estimate, rel=1e-9, nan_ok=True)
    assert whole.open_rows == pieces.open_rows == 1


def _confident_reference(window: int) -> PerformanceReference:
    """A binary model whose scores are 0.003 or 0.997, calibrated: accuracy ~0.997 everywhere."""
    rng = np.random.default_rng(11)
    n = 40 * window
    s = np.where(rng.random(n) < 0.5, 0.003, 0.997)
    y = (rng.random(n) < s).astype(int)
    return fit_classification_reference(s, y, window=window)


def test_the_band_is_scaled_before_it_is_clipped() -> None:
    """mean 0.99, std 0.01 over reference windows of 500, a stream window of 2,000 (4x):
    the band is 0.99 +- 0.015 clipped to [0.975, 1]; an estimate of ~0.997 is inside it
    (scaling the clipped bound would put the upper bound at 0.995)."""
    ref = _confident_reference(500)
    acc = ref.metrics["accuracy"].model_copy(update={"mean": 0.99, "std": 0.01, "lower": 0.96, "upper": 1.0})
    ref = ref.model_copy(update={"metrics": {**ref.metrics, "accuracy": acc}})
    mon = _monitor(ref, 2_000)
    rng = np.random.default_rng(12)
    s = np.where(rng.random(2_000) < 0.5, 0.003, 0.997)
    decisions = mon.update(_batch(["@prediction"], s[:, None], np.arange(2_000)))
    (record,) = mon.take_closed()
    assert record.estimate["accuracy"] == pytest.approx(0.997, abs=0.002)
    assert record.upper["accuracy"] == 1.0 and record.lower["accuracy"] == pytest.approx(0.975)
    assert [d for d in decisions if d.metric == "accuracy"] == []


def test_a_waiting_record_without_every_metric_is_a_rejected_checkpoint() -> None:
    ref = _reference()
    mon = _monitor(ref, 500)
    _, p, _ = _flip_stream(1_200, 1_200, seed=5)
    mon.update(_batch(["@prediction"], p[:, None], np.arange(1_200)))
    perf = mon.state_dict()
    record = perf["pending"][1]["record"]
    args = (ref, mon.config, mon.clock.config, True)
    for key, value in (("tolerance", {}), ("estimate", {**record["estimate"], "bogus": 1.0})):
        with pytest.raises(ValueError, match=rf"performance.pending\[1\].record.{key}"):
            PerformanceMonitor.from_state(_with(perf, 1, record={**record, key: value}), *args)
    with pytest.raises(ValueError, match=r"performance.pending\[1\].record.realized"):
        PerformanceMonitor.from_state(_with(perf, 1, record={**record, "realized": {"bogus": 0.5}}), *args)
    PerformanceMonitor.from_state(_with(perf, 1, record={**record, "realized": {"roc_auc": 0.5}}), *args)


def test_an_older_window_graded_after_a_newer_one_does_not_move_the_episode() -> None:
    """Labels arrive newest window first: the newer (flipped) window opens calibration_drift,
    the older (fine) one graded afterwards is stale evidence: no ``resolved``; the next newer
    window within tolerance resolves it."""
    ref = _reference()
    mon = _monitor(ref, WINDOW)
    _, p, y = _flip_stream(4 * WINDOW, 4 * WINDOW, seed=5)
    y_flip = np.where((np.arange(4 * WINDOW) >= WINDOW) & (np.arange(4 * WINDOW) < 2 * WINDOW), 1 - y, y)
    mon.update(_batch(["@prediction"], p[:, None], np.arange(4 * WINDOW)))
    assert len(mon.pending) == 4
    newer = mon.add_labels(_labelled_pairs(p, y_flip, range(WINDOW, 2 * WINDOW)))
    assert {d.status for d in newer if d.metric == "roc_auc"} == {"drift"}
    older = mon.add_labels(_labelled_pairs(p, y_flip, range(WINDOW)))
    assert [d for d in older if d.detector == "calibration_drift"] == []
    gauge = mon.readout()[1]  # the realized gauge shows the last window graded
    assert gauge is not None and gauge.first_offset == 0
    later = mon.add_labels(_labelled_pairs(p, y_flip, range(2 * WINDOW, 3 * WINDOW)))
    assert {d.status for d in later if d.metric == "roc_auc"} == {"resolved"}
    restored = PerformanceMonitor.from_state(
        decode_state(encode_state({"p": mon.state_dict()}))["p"], ref, mon.config, mon.clock.config, True
    )
    stale = restored.add_labels(_labelled_pairs(p, 1 - y, range(WINDOW)))  # already graded: ignored
    assert stale == [] and restored.state_dict()["graded_first"] == mon.state_dict()["graded_first"]


def test_a_constant_reference_metric_still_tolerates_sampling_error() -> None:
    """Precision 1.0 in every reference window (std 0): a stream window with one false positive
    among ~1,000 predicted positives (precision 0.999) is within the binomial floor of the
    tolerance, not a calibration_drift."""
    rng = np.random.default_rng(13)
    n = 20 * WINDOW
    y = (rng.random(n) < 0.5).astype(int)
    s = np.where(y == 1, np.where(rng.random(n) < 0.8, 0.9, 0.2), 0.2)  # no false positive
    ref = fit_classification_reference(s, y, window=WINDOW)
    assert ref.metrics["precision"].std == 0.0 and ref.metrics["precision"].mean == 1.0
    y2 = (rng.random(4 * WINDOW) < 0.5).astype(int)
    s2 = np.where(y2 == 1, np.where(rng.random(4 * WINDOW) < 0.8, 0.9, 0.2), 0.2)
    for w in range(4):  # one false positive per window
        i = w * WINDOW + int(np.flatnonzero(y2[w * WINDOW : (w + 1) * WINDOW] == 0)[0])
        s2[i] = 0.9
    mon = _monitor(ref, WINDOW, late=False)
    cols = np.column_stack([s2, y2])
    decisions = mon.update(_batch(["@prediction", "@label"], cols, np.arange(4 * WINDOW)))
    graded = [r for r in mon.take_closed() if r.realized is not None]
    assert len(graded) == 4 and all(0.998 < r.realized["precision"] < 1.0 for r in graded if r.realized)
    assert [d for d in decisions if d.detector == "calibration_drift" and d.metric == "precision"] == []


def test_a_constant_reference_metric_has_a_band_as_wide_as_its_sampling_error() -> None:
    """Accuracy 0.995 in every reference window (std 0): a window of 2,000 whose estimate is ~0.997
    is within the binomial sampling error (3 sqrt(q (1 - q) / n) = 0.0047), not a
    ``performance_estimate`` (a zero-width band alerted on any difference)."""
    ref = _confident_reference(500)
    acc = ref.metrics["accuracy"].model_copy(update={"mean": 0.995, "std": 0.0, "lower": 0.995, "upper": 0.995})
    ref = ref.model_copy(update={"metrics": {**ref.metrics, "accuracy": acc}})
    mon = _monitor(ref, 2_000)
    rng = np.random.default_rng(12)
    s = np.where(rng.random(2_000) < 0.5, 0.003, 0.997)
    decisions = mon.update(_batch(["@prediction"], s[:, None], np.arange(2_000)))
    (record,) = mon.take_closed()
    assert record.estimate["accuracy"] == pytest.approx(0.997, abs=0.002)
    assert record.lower["accuracy"] == pytest.approx(0.995 - 3 * (0.995 * 0.005 / 2_000) ** 0.5)
    assert [d for d in decisions if d.metric == "accuracy"] == []
