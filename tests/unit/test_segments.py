"""Drift per segment (detectors/segments.py, detectors/segment_mix.py): the slice that moved,
the mix shift, the bound on segments, batch-cut and restore independence, the shared budget."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.engine import Engine
from driftsentinel.detectors.segments import (
    OTHER,
    SegmentedBanks,
    SegmentRouter,
    SegmentSignal,
    by_segment,
    overall_bank_config,
    segment_bank_config,
    segments_profile,
)
from driftsentinel.detectors.state_check import StateRejected, check_engine_state
from driftsentinel.schemas import BankConfig, FeatureBatch, SidecarConfig
from driftsentinel.schemas.config import SegmentConfig
from driftsentinel.schemas.fastdecode import EventView
from driftsentinel.schemas.profile import NumericProfile, ReferenceProfile, load_profile
from driftsentinel.stream.checkpoint import decode_state, encode_state
from driftsentinel.stream.cli import main
from driftsentinel.stream.gauges import Gauges
from driftsentinel.stream.metrics import Metrics


def _batch(x: np.ndarray, seg: np.ndarray, start: int = 0, names: list[str] | None = None) -> FeatureBatch:
    n = x.shape[0]
    return FeatureBatch(
        names or [f"f{j}" for j in range(x.shape[1])],
        x,
        np.arange(start, start + n),
        np.full(n, np.nan),
        cat_names=["country"],
        cat_values=seg.reshape(-1, 1),
    )


def _feed(banks: SegmentedBanks, x: np.ndarray, seg: np.ndarray, size: int) -> list[SegmentSignal]:
    """The stream in batches of ``size``; signals with their rows made global."""
    out = []
    for a in range(0, x.shape[0], size):
        for s in banks.update(_batch(x[a : a + size], seg[a : a + size], a)):
            out.append(
                SegmentSignal(s.signal.__class__(**{**s.signal.__dict__, "row": s.signal.row + a}), s.key, s.value)
            )
    return out


def _shifted(s: SegmentSignal, a: int) -> SegmentSignal:
    """The signal with its row counted from the stream's start (the batch started at ``a``)."""
    return SegmentSignal(replace(s.signal, row=s.signal.row + a), s.key, s.value)


def _cfg(**fields: object) -> BankConfig:
    return BankConfig.model_validate(fields)


def _drifts(sigs: list[SegmentSignal]) -> set[tuple[str | None, str, str]]:
    return {(s.value, s.signal.feature, s.signal.detector) for s in sigs if s.signal.status == "drift"}


NAMES = np.array(["DE", "FR", "IT", "ES", "NL", "PL"], dtype=object)


def _opposite_shifts(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Six countries (45/30/10/5/5/5 %); from the middle on, x moves +1 sd in NL and -1 sd in
    PL (5 % each), so the overall mean does not move."""
    rng = np.random.default_rng(seed)
    seg = NAMES[rng.choice(6, size=n, p=[0.45, 0.30, 0.10, 0.05, 0.05, 0.05])]
    x = rng.normal(size=(n, 2))
    late = np.arange(n) >= n // 2
    x[late & (seg == "NL"), 0] += 1.0
    x[late & (seg == "PL"), 0] -= 1.0
    return x, seg


def test_opposite_shifts_in_two_small_segments_are_named() -> None:
    x, seg = _opposite_shifts(120_000, seed=1)
    cfg = _cfg(segments=["country"])
    banks = SegmentedBanks(("country",), cfg)
    sigs = _feed(banks, x, seg, 4096)
    moved = {(v, f) for v, f, _ in _drifts(sigs) if v is not None}
    assert moved == {("NL", "f0"), ("PL", "f0")}
    for s in sigs:  # each names its segment, after the change
        if s.signal.status == "drift" and s.value is not None:
            assert s.key == "country" and s.signal.row >= 60_000
    # the overall mean did not move: the overall bank (same config) has nothing to say about it
    overall = DetectorBank(cfg)
    said = [s for a in range(0, 120_000, 4096) for s in overall.update(_batch(x[a : a + 4096], seg[a : a + 4096], a))]
    assert not [s for s in said if s.status == "drift" and s.feature == "f0" and s.detector == "adwin"]


def test_opposite_shifts_against_the_profiles_segment_references() -> None:
    rng = np.random.default_rng(7)
    tseg = NAMES[rng.choice(6, size=60_000, p=[0.45, 0.30, 0.10, 0.05, 0.05, 0.05])]
    # each country has its own level in training: an overall reference would not fit any
    levels = {v: float(i) for i, v in enumerate(NAMES)}
    tx = rng.normal(size=60_000) + np.array([levels[v] for v in tseg])
    section = segments_profile({"country": tseg.tolist(), "f0": tx.tolist()}, ["country"], "train.csv")
    profile = ReferenceProfile.model_validate_json(
        ReferenceProfile(
            source="train.csv", n_rows=60_000, features={}, segments={"country": section}
        ).model_dump_json()
    )
    x, seg = _opposite_shifts(100_000, seed=2)
    x[:, 0] += np.array([levels[v] for v in seg])
    banks = SegmentedBanks(("country",), _cfg(segments=["country"]), profile)
    assert banks.router.values[:3] == ["DE", "FR", "IT"]  # the profile's, by traffic
    assert set(banks.router.values) == set(NAMES) and not banks.router.admit_new
    sigs = _feed(banks, x[:, :1], seg, 5000)
    moved = {v for v, f, d in _drifts(sigs) if v is not None and d in ("adwin", "page_hinkley")}
    assert moved == {"NL", "PL"}


def test_mix_shift_is_one_mix_alert_and_no_segment_alert() -> None:
    rng = np.random.default_rng(3)
    n = 120_000
    p = np.where(np.arange(n)[:, None] < n // 2, [0.5, 0.3, 0.2], [0.3, 0.3, 0.4])
    codes = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    seg = NAMES[codes]
    x = rng.normal(size=(n, 3)) + codes[:, None] * 2.0  # each segment its own distribution, unchanged
    banks = SegmentedBanks(("country",), _cfg(segments=["country"], window_tests={"window_events": 2000}))
    sigs = _feed(banks, x, seg, 3000)
    drifts = [s for s in sigs if s.signal.status == "drift"]
    assert [(s.value, s.signal.feature, s.signal.detector) for s in drifts] == [
        (None, "@segment:country", "segment_mix")
    ]
    mix = drifts[0].signal
    assert n // 2 <= mix.row < n // 2 + 4000
    assert mix.window.categories is not None and mix.reference is not None and mix.reference.categories is not None
    assert mix.window.categories["IT"] > 0.35 and abs(mix.reference.categories["DE"] - 0.5) < 0.03


def test_a_million_distinct_values_stay_bounded_and_are_counted() -> None:
    router = SegmentRouter(("country",), max_segments=50)
    n, size = 1_000_000, 50_000
    for a in range(0, n, size):
        values = np.array([f"v{i}" for i in range(a, a + size)], dtype=object)
        codes = router.route(_batch(np.zeros((size, 0)), values, a))
        assert codes.min() >= -1 and codes.max() < 50
    assert router.values == [f"v{i}" for i in range(50)]  # the first 50 in stream order
    assert router.pooled_rows == n - 50

    # the banks: as many as the bound, and the state does not grow with the distinct values
    def state_size(distinct: int) -> tuple[int, int]:
        banks = SegmentedBanks(("country",), _cfg(segments={"keys": ["country"], "max_segments": 5}))
        rng = np.random.default_rng(0)
        seg = np.array([f"v{i % distinct}" for i in range(40_000)], dtype=object)
        _feed(banks, rng.normal(size=(40_000, 2)), seg, 4096)
        return len(banks.banks), len(encode_state(banks.state_dict()))

    (n_small, size_small), (n_large, size_large) = state_size(100), state_size(40_000)
    assert n_small == n_large == 6  # 5 segments + __other__
    assert size_large < 1.2 * size_small


def test_decisions_do_not_depend_on_batch_cuts_or_restarts() -> None:
    x, seg = _opposite_shifts(60_000, seed=4)
    cfg = _cfg(segments=["country"], window_tests={"window_events": 1500})

    def key(sigs: list[SegmentSignal]) -> list[tuple[object, ...]]:
        return [
            (s.signal.row, s.value, s.signal.feature, s.signal.detector, s.signal.status, s.signal.statistic)
            for s in sigs
        ]

    whole = key(_feed(SegmentedBanks(("country",), cfg), x, seg, 60_000))
    assert len(whole) >= 2
    rng = np.random.default_rng(0)
    cut: list[SegmentSignal] = []
    banks = SegmentedBanks(("country",), cfg)
    a = 0
    while a < 60_000:
        b = min(60_000, a + int(rng.integers(1, 7000)))
        if rng.random() < 0.3:  # a restart from a checkpoint, through the checkpoint codec
            state = decode_state(encode_state(banks.state_dict()))
            banks = SegmentedBanks(("country",), cfg)
            banks.load_state(state)
        for s in banks.update(_batch(x[a:b], seg[a:b], a)):
            cut.append(
                SegmentSignal(s.signal.__class__(**{**s.signal.__dict__, "row": s.signal.row + a}), s.key, s.value)
            )
        a = b
    assert key(cut) == whole


def test_stationary_false_alarms_with_segments_are_no_more_than_without() -> None:
    """20 features x 50 segments, no change: the overall bank (half the budget) and the segment
    family (the other half) together raise fewer false alarms per feature than the overall bank
    without segments (sensitive detectors so there are some to count; Page-Hinkley threshold 14,
    where its alarm rate still falls with the threshold). Measured: 131 without, 71 + 1 with.
    With the overall bank at the whole budget (each segment bank at 1/S) the total is at least
    the overall bank's alone."""
    n, f, s = 60_000, 20, 50
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, f))
    seg = np.array([f"s{i}" for i in range(s)], dtype=object)[rng.integers(0, s, size=n)]
    sensitive = {"adwin": {"delta": 0.05}, "page_hinkley": {"threshold": 14.0}, "warmup": 500}
    cfg = _cfg(segments={"keys": ["country"], "max_segments": s}, **sensitive)
    without, overall = DetectorBank(_cfg(**sensitive)), DetectorBank(overall_bank_config(cfg))
    banks = SegmentedBanks(("country",), cfg)
    alarms_without = alarms_with = 0
    for a in range(0, n, 8192):
        b = _batch(x[a : a + 8192], seg[a : a + 8192], a)
        alarms_without += sum(sig.status == "drift" for sig in without.update(b))
        alarms_with += sum(sig.status == "drift" for sig in overall.update(b))
        alarms_with += sum(sig.signal.status == "drift" for sig in banks.update(b) if sig.value is not None)
    assert alarms_without * 1e6 / n / f > 50  # sensitive enough to measure anything
    assert alarms_with <= 0.75 * alarms_without


def test_budget_is_split_between_the_overall_bank_and_the_segments() -> None:
    per_feature = {"a": {"adwin_delta": 0.01, "page_hinkley_threshold": 20.0}}
    plain = _cfg(per_feature=per_feature)
    assert overall_bank_config(plain) is plain  # no segments: the whole budget
    cfg = _cfg(per_feature=per_feature, segments=["country"])
    half = overall_bank_config(cfg)
    assert half.adwin.delta == pytest.approx(cfg.adwin.delta / 2)
    assert half.page_hinkley.threshold == pytest.approx(cfg.page_hinkley.threshold + np.log(2) / 0.5)
    assert half.sequential.shape_threshold == pytest.approx(cfg.sequential.shape_threshold + np.log(2))
    assert half.window_tests.alpha == pytest.approx(cfg.window_tests.alpha / 2)
    assert half.per_feature["a"].adwin_delta == pytest.approx(0.005)
    assert half.concept_drift.enabled == cfg.concept_drift.enabled and half.segments.keys == ["country"]
    # 50 segments of one key: each bank 1/(2 x 50) of the rate
    fifty = segment_bank_config(cfg, 50, ("country",))
    assert fifty.adwin.delta == pytest.approx(cfg.adwin.delta / 100)
    assert fifty.page_hinkley.threshold == pytest.approx(cfg.page_hinkley.threshold + np.log(100) / 0.5)
    assert fifty.window_tests.alpha == pytest.approx(cfg.window_tests.alpha / 100)
    assert fifty.sequential.shape_threshold == pytest.approx(cfg.sequential.shape_threshold + np.log(100))
    assert fifty.per_feature["a"].adwin_delta == pytest.approx(0.0001)
    assert "country" in fifty.exclude and not fifty.concept_drift.enabled and not fifty.segments.keys
    # two keys share the segments' half: each family a quarter
    two = segment_bank_config(_cfg(segments=["country", "device"]), 50, ("country",))
    assert two.adwin.delta == pytest.approx(cfg.adwin.delta / 200)


def test_per_feature_parameters_are_scaled_like_the_global_ones() -> None:
    """Every calibrated threshold moves with the budget, each Page-Hinkley threshold by its own
    delta's slope; a feature with its own delta and the global threshold gets that slope too."""
    cfg = _cfg(
        segments=["country"],
        per_feature={
            "a": {"page_hinkley_threshold": 20.0, "page_hinkley_delta": 0.1},
            "b": {"page_hinkley_delta": 0.5},
            "c": {"cusum_categories_threshold": 9.0, "cusum_unseen_threshold": 8.0, "cusum_shape_threshold": 7.0},
        },
    )
    ln = np.log(100)
    seg = segment_bank_config(cfg, 50, ("country",)).per_feature
    assert seg["a"].page_hinkley_threshold == pytest.approx(20.0 + ln / 0.2)
    assert seg["b"].page_hinkley_threshold == pytest.approx(cfg.page_hinkley.threshold + ln / 1.0)
    assert seg["c"].cusum_categories_threshold == pytest.approx(9.0 + ln)
    assert seg["c"].cusum_unseen_threshold == pytest.approx(8.0 + ln)
    assert seg["c"].cusum_shape_threshold == pytest.approx(7.0 + ln)
    assert overall_bank_config(cfg).per_feature["c"].cusum_unseen_threshold == pytest.approx(8.0 + np.log(2))


def test_engine_gives_the_overall_bank_half_the_budget_with_segments() -> None:
    items = _engine_items(5_000, seed=2)
    whole = BankConfig().adwin.delta
    for detectors, delta in (({}, whole), ({"segments": ["country"]}, whole / 2)):
        engine = Engine(SidecarConfig.model_validate({"detectors": detectors}), input_topic="features")
        engine.process("features", 0, items, now=0.0)
        assert engine.banks("features", 0)["m"].config.adwin.delta == pytest.approx(delta)
        state = decode_state(encode_state(engine.state("features", 0)))
        restored = Engine(SidecarConfig.model_validate({"detectors": detectors}), input_topic="features")
        restored.restore("features", 0, state)
        assert restored.banks("features", 0)["m"].config.adwin.delta == pytest.approx(delta)


def test_segment_rows_are_views_of_one_gather_in_stream_order() -> None:
    """Each segment bank gets its rows in stream order; the banks' signal rows map back to the batch."""
    order, present, starts = by_segment(np.array([3, -1, 3, 0, -1, 3]))
    assert order.tolist() == [1, 4, 3, 0, 2, 5] and present.tolist() == [-1, 0, 3] and starts.tolist() == [0, 2, 3]
    empty = by_segment(np.zeros(0, dtype=np.int64))
    assert [a.size for a in empty] == [0, 0, 0]


def test_state_over_the_bound_or_for_another_key_is_rejected() -> None:
    cfg = _cfg(segments={"keys": ["country"], "max_segments": 3})
    banks = SegmentedBanks(("country",), cfg)
    state = banks.state_dict()
    with pytest.raises(ValueError, match="over max_segments"):
        SegmentedBanks(("country",), cfg).load_state({**state, "values": ["a", "b", "c", "d"]})
    with pytest.raises(ValueError, match="key"):
        SegmentedBanks(("device",), cfg).load_state(state)
    with pytest.raises(ValueError, match="never admitted"):
        SegmentedBanks(("country",), cfg).load_state({**state, "banks": {"zz": {}}})


def test_combination_keys_and_missing_values() -> None:
    b = FeatureBatch(
        ["n"],
        np.array([[1.0], [np.nan], [1.0], [2.0]]),
        np.arange(4),
        np.full(4, np.nan),
        cat_names=["device"],
        cat_values=np.array([["ios"], ["ios"], [None], ["ios"]], dtype=object),
    )
    router = SegmentRouter(("device", "n"), max_segments=2)
    assert router.route(b).tolist() == [0, 1, -1, -1]
    assert router.values == ["ios|1", "ios|__missing__"] and router.pooled_rows == 2


def test_segment_config_shorthand_and_errors() -> None:
    cfg = BankConfig.model_validate({"segments": ["country", ["country", "device"]]})
    assert cfg.segments.key_fields() == [("country",), ("country", "device")]
    with pytest.raises(ValueError, match="listed twice"):
        SegmentConfig.model_validate(["a", ["a"]])
    with pytest.raises(ValueError, match="distinct"):
        SegmentConfig.model_validate([["a", "a"]])


def test_profile_section_top_segments_and_other() -> None:
    cols: dict[str, Sequence[object]] = {
        "country": ["DE"] * 5 + ["FR"] * 3 + ["IT", "ES"],
        "x": list(range(10)),
        "c": ["a"] * 10,
    }
    sp = segments_profile(cols, ["country"], "t", max_segments=2)
    assert list(sp.segments) == ["DE", "FR", OTHER] and sp.n_values == 4
    assert [s.share for s in sp.segments.values()] == [0.5, 0.3, 0.2]
    other_x = sp.segments[OTHER].features["x"]
    assert "country" not in sp.segments["DE"].features and isinstance(other_x, NumericProfile) and other_x.mean == 8.5
    with pytest.raises(ValueError, match="not a column"):
        segments_profile(cols, ["device"], "t")


def test_baseline_segment_writes_the_section_and_names_a_wrong_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    lines = ["country,device,x"] + [
        f"{rng.choice(['DE', 'FR', 'IT'])},{rng.choice(['ios', 'web'])},{rng.normal():.4f}" for _ in range(600)
    ]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    argv = ["baseline", "--input", str(tmp_path / "train.csv"), "--out", str(tmp_path / "p.json")]
    assert main([*argv, "--segment", "country", "--segment", "country,device"]) == 0
    profile = load_profile(tmp_path / "p.json")
    assert profile.segments is not None and set(profile.segments) == {"country", "country|device"}
    assert set(profile.segments["country"].segments) == {"DE", "FR", "IT"}
    assert (
        len(profile.segments["country|device"].segments) == 6
        and "x" in profile.segments["country"].segments["DE"].features
    )
    assert "segments of country: 3 of 3 values profiled" in capsys.readouterr().err
    assert main([*argv, "--segment", "region"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no column 'region'" in err[0]


def _engine_items(n: int, seed: int) -> list[tuple[int, EventView, float]]:
    x, seg = _opposite_shifts(n, seed)
    return [(i, EventView(model="m", features={"x": float(x[i, 0]), "country": str(seg[i])}), 0.0) for i in range(n)]


def test_engine_publishes_segment_events_and_restores() -> None:
    config = SidecarConfig.model_validate({"detectors": {"segments": ["country"]}})
    items = _engine_items(80_000, seed=1)
    engine = Engine(config, input_topic="features")
    events = engine.process("features", 0, items, now=0.0).events
    seg_drifts = {(e.feature, e.segment.value) for e in events if e.segment is not None and e.status == "drift"}
    assert seg_drifts == {("x", "NL"), ("x", "PL")}
    assert all(e.segment is None or e.segment.key == "country" for e in events)
    assert len({e.event_id for e in events}) == len(events)
    one = next(e for e in events if e.segment is not None)
    assert one.segment is not None
    assert json.loads(one.model_dump_json())["segment"] == {"key": "country", "value": one.segment.value}
    assert all("segment" not in json.loads(e.model_dump_json()) for e in events if e.segment is None)
    readouts = engine.readouts()
    assert {(m, k, v) for m, k, v, _ in readouts.segments} >= {("m", "country", "NL"), ("m", "country", "PL")}
    assert readouts.segments_pooled == {("m", "country"): 0}

    # cut in three calls, restarted from a checkpoint after the first: the same events
    again = Engine(config, input_topic="features")
    first = again.process("features", 0, items[:30_000], now=0.0).events
    state = decode_state(encode_state(again.state("features", 0)))
    assert set(state["segments"]["m"]) == {"country"}
    restored = Engine(config, input_topic="features")
    restored.restore("features", 0, state, replay_until=30_000)
    rest = restored.process("features", 0, items[30_000:55_000], now=0.0).events
    rest += restored.process("features", 0, items[55_000:], now=0.0).events
    assert [e.event_id for e in first + rest] == [e.event_id for e in events]
    with pytest.raises(ValueError, match="configured keys"):
        other = SidecarConfig.model_validate({"detectors": {"segments": ["device"]}})
        Engine(other, input_topic="features").restore("features", 0, state)


def test_checkpointed_segments_are_checked_before_anything_is_built() -> None:
    config = SidecarConfig.model_validate({"detectors": {"segments": {"keys": ["country"], "max_segments": 4}}})
    engine = Engine(config, input_topic="features")
    engine.process("features", 0, _engine_items(6000, seed=3), now=0.0)
    state = decode_state(encode_state(engine.state("features", 0)))
    check_engine_state(state, config)  # its own state passes
    seg = state["segments"]["m"]["country"]
    bad = [
        ("size", {**seg, "values": ["a", "b", "c", "d", "e"]}),
        ("shape", {**seg, "banks": {**seg["banks"], "zz": next(iter(seg["banks"].values()))}}),
        ("size", {**seg, "mix": {**seg["mix"], "counts": np.zeros(10**6, dtype=np.int64)}}),
    ]
    value = next(iter(seg["banks"]))
    huge = {**seg["banks"][value], "features": [f"f{i}" for i in range(20_000)]}
    bad.append(("size", {**seg, "banks": {**seg["banks"], value: huge}}))
    for reason, broken in bad:
        with pytest.raises(StateRejected) as info:
            check_engine_state({**state, "segments": {"m": {"country": broken}}}, config)
        assert info.value.reason == reason
    with pytest.raises(StateRejected, match="configured keys"):
        check_engine_state({**state, "segments": {"other-model": state["segments"]["m"]}}, config)


def test_a_segment_alert_sets_its_segment_gauge_not_the_overall_feature() -> None:
    config = SidecarConfig.model_validate({"detectors": {"segments": ["country"]}})
    engine = Engine(config, input_topic="features")
    events = engine.process("features", 0, _engine_items(80_000, seed=1), now=0.0).events
    seg_event = next(e for e in events if e.segment is not None and e.status == "drift")
    gauges = Gauges(Metrics(), log_interval_s=30.0)
    gauges.features(engine.readouts())
    gauges.alert(seg_event)  # after the read-outs: what an alert alone changes
    text = gauges.metrics.render().decode()
    assert seg_event.segment is not None
    labels = f'detector="{seg_event.detector}",feature="x",key="country",model="m",segment="{seg_event.segment.value}"'
    assert f"driftsentinel_segment_drift_detected{{{labels}}} 1.0" in text
    assert f'driftsentinel_feature_drift_detected{{detector="{seg_event.detector}",feature="x",model="m"}} 0.0' in text
    assert 'driftsentinel_segment_events_pooled{key="country",model="m"} 0.0' in text


def test_replay_alerts_and_report_name_the_segments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, seg = _opposite_shifts(60_000, seed=1)
    lines = (
        json.dumps({"model": "m", "features": {"x": round(float(v), 4), "country": str(c)}})
        for v, c in zip(x[:, 0], seg, strict=True)
    )
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "c.yaml").write_text("detectors:\n  segments: [country]\n")
    argv = ["replay", "--input", str(tmp_path / "events.jsonl"), "--config", str(tmp_path / "c.yaml")]
    assert main([*argv, "--html", str(tmp_path / "r.html")]) == 0
    alerts = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    named = {(a["feature"], a["segment"]["value"]) for a in alerts if "segment" in a and a["status"] == "drift"}
    assert named == {("x", "NL"), ("x", "PL")}
    page = (tmp_path / "r.html").read_text()
    section = page[page.index("<h2>Segments</h2>") :]
    assert "<td>NL</td><td>x</td>" in section and "<td>PL</td><td>x</td>" in section
