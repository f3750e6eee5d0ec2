"""Issue 4: training profile, window tests, categorical features, data quality, concept drift."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.profile import build_profile
from driftsentinel.schemas import (
    ADWINConfig,
    BankConfig,
    FeatureBatch,
    PageHinkleyConfig,
    SidecarConfig,
    WindowTestConfig,
)
from driftsentinel.schemas.config import SequentialConfig
from driftsentinel.schemas.profile import ProfileError, ReferenceProfile, load_profile
from driftsentinel.stream.baseline import make_profile, read_rows
from driftsentinel.stream.cli import main
from driftsentinel.stream.replay import replay_file

COUNTRIES = ["DE", "FR", "US", "UK", "ES"]


def training_csv(path: Path, n: int = 20_000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["x1", "x2", "x3", "income", "country", "vip"])
        for _ in range(n):
            income = "" if rng.random() < 0.01 else f"{rng.lognormal(10, 0.5):.2f}"
            w.writerow(
                [
                    f"{rng.normal():.6f}",
                    f"{rng.normal(5, 2):.6f}",
                    int(rng.poisson(3)),
                    income,
                    COUNTRIES[rng.choice(5, p=[0.4, 0.2, 0.2, 0.1, 0.1])],
                    rng.random() < 0.3,
                ]
            )


def live_events(n: int = 30_000, change_at: int = 10_000, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        late = i >= change_at
        country = "BR" if late and rng.random() < 0.05 else COUNTRIES[rng.choice(5, p=[0.4, 0.2, 0.2, 0.1, 0.1])]
        income = None if rng.random() < (0.2 if late else 0.01) else float(rng.lognormal(10, 0.5))
        feats = {
            "x1": float(rng.normal() * (3.0 if late else 1.0)),  # scale change, same mean
            "x2": float(rng.normal(5, 2)),
            "x3": int(rng.poisson(3)),  # JSON ints, CSV ints: the same feature
            "income": income,
            "country": country,
            "vip": bool(rng.random() < 0.3),  # JSON booleans vs CSV True/False
        }
        out.append({"model": "m", "ts": 1.7e9 + i, "features": feats})
    return out


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ref")
    training_csv(tmp / "train.csv")
    assert main(["baseline", "--input", str(tmp / "train.csv"), "--out", str(tmp / "profile.json")]) == 0
    return tmp / "profile.json"


def test_profile_types_and_round_trip(profile_path: Path) -> None:
    prof = load_profile(profile_path)
    kinds = {n: p.kind for n, p in prof.features.items()}
    assert kinds == {
        "x1": "numeric",
        "x2": "numeric",
        "x3": "numeric",
        "income": "numeric",
        "country": "categorical",
        "vip": "categorical",
    }
    assert set(prof.features["vip"].frequencies) == {"true", "false"}  # type: ignore[union-attr]
    assert prof.features["income"].missing_ratio == pytest.approx(0.01, abs=0.003)
    assert len(prof.features["x1"].quantiles) == 101  # type: ignore[union-attr]
    assert ReferenceProfile.model_validate_json(prof.model_dump_json()) == prof


def test_replay_reports_exactly_the_three_changed_features(profile_path: Path, tmp_path: Path) -> None:
    live = tmp_path / "live.jsonl"
    live.write_text("".join(json.dumps(e) + "\n" for e in live_events()))
    # with every detector on, the three changed features and no other
    out = io.StringIO()
    replay_file(live, SidecarConfig(reference=str(profile_path)), out)
    alerts = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {a["feature"] for a in alerts if a["status"] == "drift"} == {"x1", "country", "income"}, alerts
    # the window tests' own evidence: the sequential tests (which would open the features'
    # episodes first, one alert per change) off
    out = io.StringIO()
    cfg = SidecarConfig(reference=str(profile_path), detectors=BankConfig(sequential=SequentialConfig(enabled=False)))
    stats = replay_file(live, cfg, out)
    alerts = [json.loads(line) for line in out.getvalue().splitlines()]
    drift = [a for a in alerts if a["status"] == "drift"]
    by_feature: dict[str, set[str]] = {}
    for a in drift:
        by_feature.setdefault(a["feature"], set()).add(a["detector"])
    assert set(by_feature) == {"x1", "country", "income"}, by_feature
    assert by_feature["x1"] & {"ks", "psi", "js", "wasserstein"}
    assert "new_category" in by_feature["country"]
    assert "missing_rate" in by_feature["income"]
    for a in drift:
        assert a["source"]["topic"] == "live.jsonl" and a["source"]["offset"] >= 10_000
        assert a["reference"] is not None and a["window"]["count"] > 0
    country = next(a for a in drift if a["detector"] == "new_category")
    assert "BR" in country["window"]["categories"] and "BR" not in country["reference"]["categories"]
    assert stats["invalid"] == {}


def test_shape_change_caught_by_ks_psi_not_by_mean_detectors() -> None:
    rng = np.random.default_rng(5)
    train = rng.normal(size=50_000)
    prof = build_profile({"x": train.tolist()}, source="t")
    bank = DetectorBank(BankConfig(), prof)
    # bimodal with the same mean (0) and variance (1): +-0.95 with sd 0.312
    live = np.r_[
        rng.normal(size=10_000), rng.choice([-0.95, 0.95], size=20_000) + rng.normal(scale=0.312, size=20_000)
    ].reshape(-1, 1)
    sigs = []
    for i in range(0, live.shape[0], 2048):
        xb = live[i : i + 2048]
        rows = np.arange(i, i + len(xb))
        sigs += [(i + s.row, s.detector) for s in bank.update(FeatureBatch(["x"], xb, rows, np.full(len(xb), np.nan)))]
    detectors = {d for _, d in sigs}
    assert {"ks", "psi"} <= detectors, sigs
    assert not detectors & {"adwin", "page_hinkley"}, sigs
    assert all(row >= 10_000 for row, _ in sigs)


@pytest.mark.parametrize("window", [500, 200_000])
def test_stationary_windows_stay_quiet_small_and_large(window: int) -> None:
    rng = np.random.default_rng(7)
    prof = build_profile(
        {"x": rng.normal(size=100_000).tolist(), "c": rng.choice(list("abcd"), 100_000).tolist()}, source="t"
    )
    # (ADWIN, rightly, finds a persistent 0.02-sigma shift given 200,000 values: it is off here)
    cfg = BankConfig(window_tests=WindowTestConfig(window_events=window), adwin=ADWINConfig(enabled=False))
    bank = DetectorBank(cfg, prof)
    n = 400_000
    x = rng.normal(size=(n, 1))
    x[n // 2 :] += 0.02  # negligible: significant at 200k values, but no effect worth an alert
    c = rng.choice(list("abcd"), size=(n, 1)).astype(object)
    out = []
    for i in range(0, n, 20_000):
        rows = np.arange(i, i + 20_000)
        out += bank.update(
            FeatureBatch(
                ["x"], x[i : i + 20_000], rows, np.full(20_000, np.nan), cat_names=["c"], cat_values=c[i : i + 20_000]
            )
        )
    assert out == []


def test_half_sigma_shift_found_even_in_small_windows() -> None:
    rng = np.random.default_rng(8)
    prof = build_profile({"x": rng.normal(size=50_000).tolist()}, source="t")
    cfg = BankConfig(
        window_tests=WindowTestConfig(window_events=500),
        adwin=ADWINConfig(enabled=False),
        page_hinkley=PageHinkleyConfig(enabled=False),
        sequential=SequentialConfig(enabled=False),
    )
    bank = DetectorBank(cfg, prof)
    x = np.r_[rng.normal(size=2000), rng.normal(size=2000) + 0.5].reshape(-1, 1)
    rows = np.arange(4000)
    sigs = bank.update(FeatureBatch(["x"], x, rows, np.full(4000, np.nan)))
    assert {s.detector for s in sigs if s.status == "drift"} >= {"ks", "wasserstein"}
    assert min(s.row for s in sigs) == 2499  # the first window entirely after the shift


def test_error_rate_rise_is_one_concept_drift_event(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    lines = []
    for i in range(40_000):
        p_wrong = 0.1 if i < 20_000 else 0.3
        label = bool(rng.random() < 0.5)
        pred = label if rng.random() >= p_wrong else not label
        lines.append(
            json.dumps(
                {
                    "model": "m",
                    "features": {"x": float(rng.normal())},
                    "prediction": "yes" if pred else "no",
                    "label": "yes" if label else "no",
                }
            )
        )
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = io.StringIO()
    replay_file(path, SidecarConfig(), out)
    alerts = [json.loads(a) for a in out.getvalue().splitlines()]
    concept = [a for a in alerts if a["detector"] == "concept_drift"]
    assert len(concept) == 1, concept
    assert 20_000 <= concept[0]["source"]["offset"] < 21_500
    assert concept[0]["statistic"] > concept[0]["threshold"]
    assert not [a for a in alerts if a["feature"] == "x"]


def test_type_error_is_an_alert_not_a_crash() -> None:
    prof = build_profile({"age": list(range(1000))}, source="t")
    bank = DetectorBank(BankConfig(window_tests=WindowTestConfig(window_events=1000)), prof)
    vals = np.arange(1000, dtype=float).reshape(-1, 1)
    cats = np.full((1000, 1), None, dtype=object)
    cats[::20, 0] = "unknown"  # 5% strings where training had numbers
    vals[::20, 0] = np.nan
    sigs = bank.update(
        FeatureBatch(["age"], vals, np.arange(1000), np.full(1000, np.nan), cat_names=["age"], cat_values=cats)
    )
    assert [(s.feature, s.detector) for s in sigs if s.detector == "type_error"] == [("age", "type_error")]


def test_event_time_windows() -> None:
    rng = np.random.default_rng(10)
    prof = build_profile({"x": rng.normal(size=20_000).tolist()}, source="t")
    bank = DetectorBank(BankConfig(window_tests=WindowTestConfig(window_seconds=60)), prof)
    n = 6000
    ts = 1_700_000_000 + np.arange(n) * 0.1  # 10 events/s: 600 per minute
    x = rng.normal(size=(n, 1))
    x[3000:] += 1.0
    sigs = bank.update(FeatureBatch(["x"], x, np.arange(n), ts))
    first = min(s.row for s in sigs if s.detector == "ks")
    minute_of_shift = np.floor(ts[3000] / 60)
    # decided at the first event of the minute after the first fully shifted minute
    assert np.floor(ts[first] / 60) >= minute_of_shift + 1 and np.floor(ts[first] / 60) <= minute_of_shift + 2


def test_corrupt_or_incompatible_profile_fails_clearly(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "source": "x", "n_rows": 1, "features": {"a": {"kind": "numeric"}}}')
    with pytest.raises(ProfileError, match="features.a"):
        load_profile(bad)
    future = tmp_path / "future.json"
    future.write_text('{"version": 99, "source": "x", "n_rows": 0, "features": {}}')
    with pytest.raises(ProfileError, match="version 99"):
        load_profile(future)
    (tmp_path / "live.jsonl").write_text('{"features": {"a": 1}}\n')
    assert main(["replay", "--input", str(tmp_path / "live.jsonl"), "--reference", str(bad)]) == 2
    assert "not valid" in capsys.readouterr().err
    assert main(["run", "--reference", str(tmp_path / "missing.json")]) == 2
    assert "cannot read reference profile" in capsys.readouterr().err


def test_readers_csv_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("n,b,s\n1,True,x\n2.5,false,\n,true,y\n")
    rows = list(read_rows(tmp_path / "a.csv"))
    assert rows[0] == {"n": 1, "b": "True", "s": "x"} and rows[2]["n"] is None
    prof = make_profile(rows, "a.csv")
    assert prof.features["b"].frequencies == pytest.approx({"true": 2 / 3, "false": 1 / 3})  # type: ignore[union-attr]
    (tmp_path / "b.jsonl").write_text('{"features": {"n": 1}, "prediction": 0.5}\n{"n": 2}\n')
    rows = list(read_rows(tmp_path / "b.jsonl"))
    assert rows == [{"n": 1, "@prediction": 0.5}, {"n": 2}]
    with pytest.raises(ValueError, match="unknown format"):
        read_rows(tmp_path / "x.txt")


def test_parquet_training_data(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rng = np.random.default_rng(11)
    table = pa.table({"x": rng.normal(size=1000), "c": rng.choice(["a", "b"], 1000), "flag": rng.random(1000) < 0.5})
    pq.write_table(table, tmp_path / "t.parquet")
    assert main(["baseline", "--input", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "p.json")]) == 0
    prof = load_profile(tmp_path / "p.json")
    assert {n: p.kind for n, p in prof.features.items()} == {"x": "numeric", "c": "categorical", "flag": "categorical"}
    assert set(prof.features["flag"].frequencies) == {"true", "false"}  # type: ignore[union-attr]


def test_offline_parquet_rows_for_skew(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from driftsentinel.stream.offline_file import read_offline_file

    pq.write_table(pa.table({"id": ["a", "b"], "ts": [1.0, 2.0], "latency": [0.5, 0.7]}), tmp_path / "o.parquet")
    assert list(read_offline_file(tmp_path / "o.parquet")) == [
        ("a", {"latency": 0.5}, 1.0),
        ("b", {"latency": 0.7}, 2.0),
    ]


def test_booleans_spelled_any_way_get_the_same_codes(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(
        "flag,vip\n" + "".join(f"{i % 2},{'True' if i % 3 else 'False'}\n" for i in range(3000))
    )
    (tmp_path / "c.yaml").write_text("detectors:\n  types: {flag: categorical}\n")
    assert (
        main(
            [
                "baseline",
                "--input",
                str(tmp_path / "t.csv"),
                "--config",
                str(tmp_path / "c.yaml"),
                "--out",
                str(tmp_path / "p.json"),
            ]
        )
        == 0
    )
    prof = load_profile(tmp_path / "p.json")
    assert set(prof.features["flag"].frequencies) == {"true", "false"} == set(prof.features["vip"].frequencies)  # type: ignore[union-attr]
    bank = DetectorBank(BankConfig(window_tests=WindowTestConfig(window_events=1000)), prof)
    n = 3000
    cats = np.empty((n, 2), dtype=object)
    cats[:, 0] = ["true" if i % 2 else "false" for i in range(n)]  # JSON booleans arrive as "true"/"false"
    cats[:, 1] = ["true" if i % 3 else "false" for i in range(n)]
    sigs = bank.update(
        FeatureBatch([], np.zeros((n, 0)), np.arange(n), np.full(n, np.nan), cat_names=["flag", "vip"], cat_values=cats)
    )
    assert sigs == []
    assert bank.monitor.vocab["flag"].categories[:2] == list(prof.features["flag"].frequencies)  # type: ignore[union-attr]
