"""Seasonal references and serial dependence (detectors/seasonal.py, detectors/seasonal_profile.py)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from driftsentinel.detectors.profile import build_profile
from driftsentinel.detectors.seasonal import (
    PERIODS,
    Period,
    SeasonalReference,
    detect_period,
    gaussian_ar1,
    lag1_autocorrelation,
    latent_ar1,
    normal_score_ar1,
    parse_period,
    phase_summaries,
    simulate_dependent,
)
from driftsentinel.detectors.seasonal_profile import event_seconds, seasonal_profile, seasonal_reference
from driftsentinel.schemas.profile import NumericProfile, ReferenceProfile, load_profile
from driftsentinel.stream.cli import main

DAY = 86_400.0


ar1 = gaussian_ar1


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# ---------------------------------------------------------------------------------------- phases
def test_phases_of_named_periods_are_utc_hours() -> None:
    day, week = PERIODS["hour_of_day"], PERIODS["hour_of_week"]
    t = np.array([epoch("2024-01-01T00:00:00"), epoch("2024-01-01T13:59:59"), epoch("2024-01-07T23:30:00")])
    # 2024-01-01 is a Monday: phase 0 of the week
    assert day.phase(t).tolist() == [0, 13, 23]
    assert week.phase(t).tolist() == [0, 13, 6 * 24 + 23]
    assert week.phase(np.array([-1.0])).tolist() == [3 * 24 - 1]  # Wed 1969-12-31 23:59:59


def test_period_in_seconds_and_errors() -> None:
    p = parse_period("600/4")
    assert (p.seconds, p.phases) == (600.0, 4)
    assert p.phase(np.array([0.0, 149.9, 150.0, 599.9, 600.0, -1.0])).tolist() == [0, 0, 1, 3, 0, 3]
    assert parse_period("7200").phases == 24
    for bad in ("daily", "0", "-5", "60/0", "60/5000", "nan"):
        with pytest.raises(ValueError, match="period"):
            parse_period(bad)
    with pytest.raises(ValueError):
        Period("x", 60.0, 0)


# ---------------------------------------------------------------------------------------- detection
def test_daily_cycle_on_ar1_noise_is_detected_and_noise_alone_is_not() -> None:
    n = 40_000
    t = np.linspace(0, 28 * DAY, n, endpoint=False)
    cycle = np.sin(2 * np.pi * t / DAY)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        noise = ar1(0.9, n, rng)
        found, tests = detect_period(t, cycle + noise)
        assert found is not None and found.name == "hour_of_day"
        assert tests[0].eta2 > 0.2 and tests[0].passed and not tests[1].passed  # the week adds nothing
        assert detect_period(t, noise)[0] is None  # correlated noise is not a cycle
        assert detect_period(t, rng.standard_normal(n))[0] is None


def test_weekend_effect_is_weekly_and_short_reference_has_no_period() -> None:
    rng = np.random.default_rng(5)
    n = 30_000
    t = np.linspace(0, 21 * DAY, n, endpoint=False)
    weekend = PERIODS["hour_of_week"].phase(t) >= 5 * 24
    found, _ = detect_period(t, rng.standard_normal(n) + 1.0 * weekend)
    assert found is not None and found.name == "hour_of_week"
    short = np.linspace(0, 1.5 * DAY, 5_000)  # under two cycles: a phase is confounded with a trend
    assert detect_period(short, np.sin(2 * np.pi * short / DAY) * 3 + rng.standard_normal(5_000)) == (None, [])


# ---------------------------------------------------------------------------------------- pooling
def test_sparse_phase_borrows_from_its_neighbours() -> None:
    rng = np.random.default_rng(2)
    phase = np.r_[np.repeat([0, 1, 3, 4, 5], 50), [2] * 5]
    x = rng.standard_normal(phase.size) + phase
    s = phase_summaries(x, phase, 6, min_count=30)
    assert s.counts.tolist() == [50, 50, 5, 50, 50, 50]
    assert s.pooled.tolist() == [1, 1, 3, 1, 1, 1]
    pool = x[(phase >= 1) & (phase <= 3)]
    assert s.mean[2] == pytest.approx(pool.mean()) and s.std[2] == pytest.approx(pool.std(ddof=1))
    assert s.mean[0] == pytest.approx(x[phase == 0].mean())
    assert s.quantiles.shape == (6, 21) and s.quantiles[4, 0] == x[phase == 4].min()
    # wrapping: phase 0 sparse borrows phases 5 and 1
    s = phase_summaries(x, np.where(phase == 2, 0, np.where(phase == 0, 2, phase)), 6, min_count=30)
    assert s.pooled[0] == 3
    # too few values in the whole cycle: every phase is the overall reference
    s = phase_summaries(x[::8], phase[::8], 6, min_count=100)
    assert s.pooled.tolist() == [6] * 6 and np.allclose(s.mean, x[::8].mean())


def test_standardize_gives_each_row_its_phase_moments() -> None:
    rng = np.random.default_rng(3)
    period = PERIODS["hour_of_day"]
    mean, std = rng.normal(size=(24, 3)), rng.uniform(0.5, 2, size=(24, 3))
    ref = SeasonalReference(period, mean, std)
    t = rng.uniform(0, 30 * DAY, 500)
    x = rng.normal(size=(500, 3))
    m, s = ref.standardize(x, t)
    hours = (t // 3600 % 24).astype(int)
    assert np.array_equal(m, mean[hours]) and np.array_equal(s, std[hours])
    assert np.allclose(ref.z(x, t), (x - mean[hours]) / std[hours])
    with pytest.raises(ValueError, match="event times"):
        ref.standardize(x, t[:-1])
    with pytest.raises(ValueError):
        SeasonalReference(period, mean, -std)


# ---------------------------------------------------------------------------------------- dependence
def test_lag1_autocorrelation_matches_the_closed_forms() -> None:
    rng = np.random.default_rng(4)
    n = 200_000
    for phi in (0.0, 0.5, 0.9, -0.4):  # AR(1): rho_1 = phi, se sqrt((1 - phi^2) / n)
        assert lag1_autocorrelation(ar1(phi, n, rng)) == pytest.approx(phi, abs=4 * math.sqrt((1 - phi**2) / n) + 1e-3)
    e = rng.standard_normal(n + 1)  # MA(1) with theta 0.5: rho_1 = theta / (1 + theta^2) = 0.4
    assert lag1_autocorrelation(e[1:] + 0.5 * e[:-1]) == pytest.approx(0.4, abs=0.01)
    z = ar1(0.8, n, rng)
    z[rng.random(n) < 0.1] = np.nan  # missing values drop their pairs only
    assert lag1_autocorrelation(z) == pytest.approx(0.8, abs=0.01)
    # the Gaussian copula's coefficient, whatever the monotone map; discrete values: None
    assert normal_score_ar1(np.exp(2 * ar1(0.7, n, rng))) == pytest.approx(0.7, abs=0.01)
    assert normal_score_ar1(np.round(ar1(0.7, n, rng))) is None


@pytest.mark.parametrize("kind", ["normal", "lognormal", "counts"])
def test_simulated_dependence_and_marginal_match(kind: str) -> None:
    rng = np.random.default_rng(6)
    draws = {
        "normal": rng.standard_normal(100_000),
        "lognormal": rng.lognormal(0, 1, 100_000),
        "counts": rng.poisson(3, 100_000).astype(float),
    }
    base = draws[kind]
    q = np.quantile(base, np.linspace(0, 1, 101))
    if kind == "counts":
        q = np.round(q)
    phi = latent_ar1(0.9, q, np.random.default_rng(7))
    if kind == "normal":
        assert phi == pytest.approx(0.9, abs=0.02)
    else:  # a non-linear map from the latent series lowers the values' autocorrelation
        assert phi > 0.93
    x = simulate_dependent(q, phi, 400_000, np.random.default_rng(8))
    assert lag1_autocorrelation(x) == pytest.approx(0.9, abs=0.01)
    assert np.quantile(x, [0.1, 0.5, 0.9]) == pytest.approx(np.quantile(base, [0.1, 0.5, 0.9]), rel=0.05, abs=0.05)
    if kind == "counts":
        assert np.all(x == np.round(x))


# ---------------------------------------------------------------------------------------- profile
def test_profile_section_round_trip_and_measured_dependence() -> None:
    rng = np.random.default_rng(9)
    n = 50_000
    t = 1_700_000_000 + np.arange(n) * 40.0  # about 23 days
    x = 10 + 2 * np.sin(2 * np.pi * t / DAY) + ar1(0.9, n, rng)
    w = rng.standard_normal(n)
    section, note = seasonal_profile(t, {"x": x, "w": w}, "auto", "ts", rng)
    assert section.period == "hour_of_day" and section.detected and "1 of 2" in note
    fx, fw = section.features["x"], section.features["w"]
    assert len(fx.mean) == 24 and len(fw.mean) == 1
    hours = (np.arange(24) + 0.5) / 24
    assert np.allclose(fx.mean, 10 + 2 * np.sin(2 * np.pi * hours), atol=0.4)  # se of a phase mean: 0.1
    assert fx.acf1 == pytest.approx(0.9, abs=0.02) and abs(fw.acf1) < 0.02
    profile = build_profile({"x": x.tolist(), "w": w.tolist()}, source="t")
    profile = profile.model_copy(update={"seasonal": section})
    again = ReferenceProfile.model_validate_json(profile.model_dump_json())
    assert again == profile
    older = ReferenceProfile.model_validate_json(profile.model_copy(update={"seasonal": None}).model_dump_json())
    assert older.seasonal is None
    ref = seasonal_reference(again.seasonal, ["x", "w"])  # type: ignore[arg-type]
    m, s = ref.standardize(np.zeros((n, 2)), t)
    z = (x - m[:, 0]) / s[:, 0]
    assert abs(z.mean()) < 0.05 and z.std() == pytest.approx(1.0, abs=0.05)
    assert np.all(m[:, 1] == fw.mean[0])


def test_named_period_and_invalid_sections() -> None:
    rng = np.random.default_rng(10)
    t = np.arange(5_000) * 60.0
    section, _ = seasonal_profile(t, {"x": rng.standard_normal(5_000)}, "hour_of_week", "ts", rng)
    assert section.phases == 168 and len(section.features["x"].mean) == 168 and not section.detected
    assert max(section.features["x"].pooled) > 1  # 3.5 days of data: most hours of the week are empty
    none, _ = seasonal_profile(t, {"x": rng.standard_normal(5_000)}, "none", "ts", rng)
    assert none.period == "none" and none.phases == 1
    data = section.model_dump()
    data["features"]["x"]["mean"] = data["features"]["x"]["mean"][:5]
    with pytest.raises(ValueError, match="one entry per phase"):
        type(section).model_validate(data)
    profile = build_profile({"c": ["a", "b"] * 10}, source="t")
    with pytest.raises(ValueError, match="not a numeric feature"):
        ReferenceProfile.model_validate({**profile.model_dump(), "seasonal": section.model_dump()})
    with pytest.raises(ValueError, match="no event times"):
        seasonal_profile(np.full(10, np.nan), {"x": np.ones(10)}, "auto", "ts", rng)


def test_event_seconds_reads_numbers_and_rfc3339() -> None:
    got = event_seconds([1.5, "2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "2024-01-01 00:00:00", None])
    assert got[:4].tolist() == [1.5, 1704067200.0, 1704067200.0, 1704067200.0] and math.isnan(got[4])
    with pytest.raises(ValueError, match="row 2"):
        event_seconds([0, "yesterday"])


# ---------------------------------------------------------------------------------------- baseline --period
def _write_training(tmp_path: Path, n: int = 12_000) -> tuple[Path, Path]:
    rng = np.random.default_rng(11)
    t = 1_700_000_000 + np.arange(n) * 120.0  # 2 minutes apart: about 17 days
    x = 5 + np.sin(2 * np.pi * t / DAY) + ar1(0.9, n, rng)
    w = rng.standard_normal(n)
    flat = tmp_path / "train.csv"
    flat.write_text("ts,x,w\n" + "".join(f"{a:.0f},{b:.5f},{c:.5f}\n" for a, b, c in zip(t, x, w, strict=True)))
    events = tmp_path / "train.jsonl"
    events.write_text(
        "".join(
            json.dumps({"id": str(i), "ts": a, "model": "m", "features": {"x": b}}) + "\n"
            for i, (a, b) in enumerate(zip(t.tolist(), x.tolist(), strict=True))
        )
    )
    return flat, events


def test_baseline_period_auto_writes_the_seasonal_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flat, events = _write_training(tmp_path)
    out = tmp_path / "p.json"
    assert main(["baseline", "--input", str(flat), "--out", str(out), "--period", "auto"]) == 0
    err = capsys.readouterr().err
    assert "seasonal: hour_of_day (24 phases) for 1 of 2 numeric features (detected)" in err
    profile = load_profile(out)
    assert sorted(profile.features) == ["w", "x"]  # the time column is not a feature
    assert profile.seasonal is not None and profile.seasonal.time_column == "ts"
    assert len(profile.seasonal.features["x"].mean) == 24 and profile.seasonal.features["x"].acf1 > 0.85
    # FeatureEvents: their ts is the event time; without --period nothing changes
    assert main(["baseline", "--input", str(events), "--out", str(out), "--period", "hour_of_week"]) == 0
    profile = load_profile(out)
    assert profile.seasonal is not None and profile.seasonal.phases == 168 and list(profile.features) == ["x"]
    assert main(["baseline", "--input", str(events), "--out", str(out)]) == 0
    assert load_profile(out).seasonal is None and list(load_profile(out).features) == ["x"]


def test_baseline_period_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flat, _ = _write_training(tmp_path, n=200)
    out = str(tmp_path / "p.json")
    assert main(["baseline", "--input", str(flat), "--out", out, "--period", "daily"]) == 2
    assert "give hour_of_day, hour_of_week" in capsys.readouterr().err
    code = main(["baseline", "--input", str(flat), "--out", out, "--period", "auto", "--time-column", "when"])
    err = capsys.readouterr().err
    assert code != 0 and "--time-column 'when': no such column" in err and "Traceback" not in err
    (tmp_path / "bad.csv").write_text("ts,x\nyesterday,1\n2024-01-01T00:00:00Z,2\n")
    code = main(["baseline", "--input", str(tmp_path / "bad.csv"), "--out", out, "--period", "auto"])
    err = capsys.readouterr().err
    assert code != 0 and "'yesterday' (row 1) is not epoch seconds or RFC 3339" in err


# ---------------------------------------------------------------------------------------- calibration
def test_calibrate_simulates_the_profiles_dependence() -> None:
    """AR(1) 0.9 values look like a level that wanders: calibrated for independent values,
    Page-Hinkley's threshold is far too low. Not whitened, the profile's dependence raises
    it; whitened (the default for such a feature), the detectors see nearly independent
    innovations and the thresholds stay near the independent ones. A feature without the
    section, or with no dependence, keeps exactly the thresholds it had."""
    from driftsentinel.detectors.calibration import calibrate

    rng = np.random.default_rng(12)
    n = 40_000
    t = 1_700_000_000 + np.arange(n) * 60.0
    x = 3 * np.sin(2 * np.pi * t / DAY) + ar1(0.9, n, rng)
    w = rng.standard_normal(n)
    profile = build_profile({"x": x.tolist(), "w": w.tolist()}, source="t")
    section, _ = seasonal_profile(t, {"x": x, "w": w}, "auto", "ts", rng)
    assert section.features["x"].whiten == pytest.approx(0.9, abs=0.02) and section.features["w"].whiten == 0.0
    plain = calibrate(profile, values=100_000, seed=3, workers=1)
    whitened = calibrate(profile.model_copy(update={"seasonal": section}), values=100_000, seed=3, workers=1)
    fx = section.features["x"].model_copy(update={"whiten": 0.0, "innovation_quantiles": None})
    kept = section.model_copy(update={"features": {**section.features, "x": fx}})
    dependent = calibrate(profile.model_copy(update={"seasonal": kept}), values=100_000, seed=3, workers=1)
    ph = "page_hinkley_threshold"
    assert dependent["x"][ph] > 3 * plain["x"][ph] and dependent["x"]["adwin_delta"] < plain["x"]["adwin_delta"]
    assert whitened["x"][ph] < 2 * plain["x"][ph]
    no_dep = section.model_copy(update={"features": {"w": section.features["w"].model_copy(update={"ar1": 0.0})}})
    assert (
        calibrate(profile.model_copy(update={"seasonal": no_dep}), values=100_000, seed=3, workers=1)["w"] == plain["w"]
    )


def test_whitened_live_values_are_nearly_independent_however_cut() -> None:
    from driftsentinel.detectors.seasonal_profile import SeasonalTransform
    from driftsentinel.schemas import FeatureBatch

    rng = np.random.default_rng(14)
    n = 60_000
    t = 1_700_000_000 + np.arange(2 * n) * 30.0
    x = 2 * np.sin(2 * np.pi * t / DAY) + ar1(0.9, 2 * n, rng)
    profile = build_profile({"x": x[:n].tolist()}, source="t")
    section, _ = seasonal_profile(t[:n], {"x": x[:n]}, "auto", "ts", rng)
    profile = profile.model_copy(update={"seasonal": section})

    def run(cuts: list[int]) -> np.ndarray:
        tr = SeasonalTransform.from_profile(profile)
        assert tr is not None
        out = []
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            batch = FeatureBatch(["x"], x[n + a : n + b, None], np.arange(a, b), t[n + a : n + b])
            out.append(tr.apply(batch).values[:, 0])
            tr.load_state(tr.state_dict())
        return np.concatenate(out)

    live = run([0, n])
    assert abs(lag1_autocorrelation(live)) < 0.03 and live.std() == pytest.approx(1.0, abs=0.05)  # was 0.9
    assert np.allclose(run([0, 1, 7, 4096, 30_000, n]), live)


def test_transform_standardises_cyclic_columns_by_phase_and_block_order_keeps_blocks() -> None:
    from driftsentinel.detectors.seasonal import block_length, block_order
    from driftsentinel.detectors.seasonal_profile import SeasonalTransform, seasonal_view
    from driftsentinel.schemas import FeatureBatch

    rng = np.random.default_rng(13)
    n = 30_000
    t = 1_700_000_000 + np.arange(n) * 60.0
    x = 10 + 4 * np.sin(2 * np.pi * t / DAY) + rng.standard_normal(n)
    w = rng.standard_normal(n)
    profile = build_profile({"x": x.tolist(), "w": w.tolist()}, source="t")
    section, _ = seasonal_profile(t, {"x": x, "w": w}, "auto", "ts", rng)
    profile = profile.model_copy(update={"seasonal": section})
    transform = SeasonalTransform.from_profile(profile)
    assert transform is not None and transform.names == ["x"]
    times = t[:6].copy()
    times[2] = np.nan  # no event time: the moments over the whole cycle
    batch = FeatureBatch(["w", "x"], np.column_stack([w[:6], x[:6]]), np.arange(6), times)
    out = transform.apply(batch)
    assert np.array_equal(out.values[:, 0], w[:6])  # not cyclic: unchanged
    hour = ((t[:6] // 3600) % 24).astype(int)
    fx = section.features["x"]
    expected = (x[:6] - np.asarray(fx.mean)[hour]) / np.asarray(fx.std)[hour]
    assert np.allclose(np.delete(out.values[:, 1], 2), np.delete(expected, 2))
    overall = math.sqrt(np.mean(np.square(fx.std)) + np.var(fx.mean))
    assert out.values[2, 1] == pytest.approx((x[2] - np.mean(fx.mean)) / overall)
    view = seasonal_view(profile)
    vx = view.features["x"]
    assert isinstance(vx, NumericProfile) and vx.std == pytest.approx(1.0, abs=0.05)
    assert view.features["w"] == profile.features["w"]
    assert SeasonalTransform.from_profile(profile.model_copy(update={"seasonal": None})) is None
    order = block_order(10_000, 0.9, np.random.default_rng(1))
    assert sorted(order.tolist()) == list(range(10_000)) and block_length(0.9) == 200
    steps = np.diff(order)
    assert (steps == 1).mean() > 0.99 and not np.array_equal(order, np.arange(10_000))


# ---------------------------------------------------------------------------------------- the bank
def test_bank_compares_a_cyclic_autocorrelated_feature_with_its_phase() -> None:
    """A daily cycle of 2 noise sds on AR(1) 0.9 noise, stationary: the bank with the plain
    profile opens drift at once; with the seasonal section every detector stays quiet, and a
    +1 sd level shift is still found. Checkpointed mid-stream, the bank says the same."""
    from driftsentinel.detectors.bank import DetectorBank
    from driftsentinel.detectors.state_check import check_bank_state
    from driftsentinel.schemas import BankConfig, FeatureBatch

    rng = np.random.default_rng(15)
    n_ref, n = 100_000, 60_000
    t = 1_700_000_000 + np.arange(n_ref + n) * 15.0
    x = 2 * np.sin(2 * np.pi * t / DAY) + ar1(0.9, n_ref + n, rng)
    shifted = x.copy()
    shifted[n_ref + 30_000 :] += 1.0
    plain = build_profile({"x": x[:n_ref].tolist()}, source="t")
    section, _ = seasonal_profile(t[:n_ref], {"x": x[:n_ref]}, "auto", "ts", rng)
    seasonal = plain.model_copy(update={"seasonal": section})

    def run(profile: ReferenceProfile, values: np.ndarray, restore_at: int | None = None) -> list[tuple[int, str]]:
        bank = DetectorBank(BankConfig(), profile)
        out = []
        for a in range(0, n, 5000):
            if restore_at is not None and a == restore_at:
                state = bank.state_dict()
                check_bank_state(state, DetectorBank(BankConfig(), profile).state_dict(), 10_000, 5000, "bank")
                bank = DetectorBank.from_state(state, BankConfig(), profile)
            rows = slice(n_ref + a, n_ref + a + 5000)
            batch = FeatureBatch(["x"], values[rows, None], np.arange(a, a + 5000), t[rows])
            out += [(a + s.row, s.detector) for s in bank.update(batch) if s.status == "drift"]
        return out

    assert run(plain, x)  # today: the cycle and the correlation page
    assert run(seasonal, x) == []
    found = run(seasonal, shifted)
    assert found and min(r for r, _ in found) >= 30_000
    assert run(seasonal, shifted, restore_at=35_000) == found


def test_view_keeps_the_multivariate_section_of_untransformed_features_only() -> None:
    from driftsentinel.detectors.seasonal_profile import seasonal_view

    rng = np.random.default_rng(16)
    n = 30_000
    t = 1_700_000_000 + np.arange(n) * 60.0
    cycle = np.sin(2 * np.pi * t / DAY)
    cols = {"a": 2 * cycle + rng.standard_normal(n), "b": 2 * cycle + rng.standard_normal(n)}
    cols |= {"c": rng.standard_normal(n), "d": rng.standard_normal(n)}
    profile = build_profile({k: v.tolist() for k, v in cols.items()}, source="t")
    assert profile.multivariate is not None and len(profile.multivariate.features) == 4
    section, _ = seasonal_profile(t, cols, "auto", "ts", rng)
    view = seasonal_view(profile.model_copy(update={"seasonal": section}))
    assert view.multivariate is not None and view.multivariate.features == ["c", "d"]
    assert view.seasonal is None and seasonal_view(view) == view


def test_the_simulator_keeps_a_dependence_that_follows_the_cycle() -> None:
    """Poisson counts of a cyclic AR(1) rate: the noise is relatively smaller where the rate
    is high, so the phase-standardised values are more autocorrelated in those hours and,
    whitened with one ARMA(1,1) for every phase, stay positively autocorrelated there and
    negatively in the low hours. The profile measures the latent share per phase and the
    simulator reproduces that split (with one share everywhere it does not)."""
    from driftsentinel.detectors.seasonal_profile import simulate_view

    rng = np.random.default_rng(21)
    n = 140_000  # 7 days
    t = 1_700_006_400 + np.arange(n) * (7 * DAY / n)  # midnight UTC
    y = np.sin(2 * np.pi * t / DAY) + ar1(0.9, n, rng)
    x = rng.poisson(4.0 * np.exp(0.35 * y)).astype(np.float64)
    section, _ = seasonal_profile(t, {"x": x}, "hour_of_day", "ts", rng)
    feat = section.features["x"]
    assert feat.whiten != 0.0 and feat.ar1_weight_phase is not None and len(feat.ar1_weight_phase) == 24
    w = np.asarray(feat.ar1_weight_phase)
    assert w[:12].mean() > 1.15 * w[12:].mean()  # the rate is high in hours 0-11 (sine > 0)

    def split(f: object) -> float:
        """Lag-1 autocorrelation of the simulated innovations, hours 0-11 minus hours 12-23."""
        m = 480_000
        run = round(n / feat.reference_cycles / 24)
        high = (np.arange(m) // run) % 24 < 12
        a = simulate_view(f, m, np.random.default_rng(5))  # type: ignore[arg-type]
        return lag1_autocorrelation(np.where(high, a, np.nan)) - lag1_autocorrelation(np.where(high, np.nan, a))

    assert split(feat) > 0.025
    assert abs(split(feat.model_copy(update={"ar1_weight_phase": None}))) < 0.015
    plain_ar1, _ = seasonal_profile(t, {"y": y}, "hour_of_day", "ts", rng)  # the rate itself: one share
    assert plain_ar1.features["y"].ar1_weight > 0.95 and plain_ar1.features["y"].ar1_weight_phase is None
    with pytest.raises(ValueError, match="ar1_weight_phase"):
        feat.model_validate({**feat.model_dump(), "ar1_weight_phase": [0.5] * 23})


# ---------------------------------------------------------------------------------------- calibrate --data
def _poisson_of_ar_rate(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Counts of a cyclic rate driven by an AR(1) level: Poisson(4 exp(0.35 y)), y a daily
    sine plus AR(1) 0.9 noise (benchmarks.seasonal's ``counts``), one event a minute."""
    t = 1_700_000_000 + np.arange(n) * 60.0
    y = np.sin(2 * np.pi * t / DAY) + ar1(0.9, n, rng)
    return t, rng.poisson(4.0 * np.exp(0.35 * y)).astype(np.float64)


def test_reference_residuals_are_the_profiles_phase_standardised_values() -> None:
    from driftsentinel.detectors.seasonal_profile import reference_residuals

    rng = np.random.default_rng(21)
    t, x = _poisson_of_ar_rate(30_000, rng)
    shuffled = rng.permutation(x.size)  # any row order: residuals come in event-time order
    section, _ = seasonal_profile(t[shuffled], {"x": x[shuffled]}, "hour_of_day", "ts", rng)
    feat = section.features["x"]
    r = reference_residuals(section, "x", t[shuffled], x[shuffled])
    assert r.size == x.size and r.mean() == pytest.approx(feat.residual_mean, abs=1e-12)
    assert lag1_autocorrelation(r) == pytest.approx(feat.acf1, abs=1e-12)
    assert np.quantile(r, 0.5) == pytest.approx(feat.residual_quantiles[len(feat.residual_quantiles) // 2])


def test_bootstrap_view_keeps_the_reference_values_and_their_dependence() -> None:
    """Blocks of the reference's own residuals: every drawn value (before the phase offsets
    and the whitening, here off) is one of them, and the dependence inside the blocks is the
    reference's; too few residuals fall back to the latent model, draw for draw."""
    from driftsentinel.detectors.seasonal_profile import (
        BOOTSTRAP_MIN,
        bootstrap_view,
        reference_residuals,
        simulate_view,
    )

    rng = np.random.default_rng(22)
    t, x = _poisson_of_ar_rate(40_000, rng)
    section, _ = seasonal_profile(t, {"x": x}, "hour_of_day", "ts", rng)
    r = reference_residuals(section, "x", t, x)
    raw = section.features["x"].model_copy(update={"whiten": 0.0, "innovation_quantiles": None, "acf1": 0.0})
    raw = raw.model_copy(update={"counts": [10**9] * len(raw.counts)})  # phase offsets ~0: the draws themselves
    drawn = bootstrap_view(raw, r, 200_000, np.random.default_rng(1))
    ref = np.sort(r)
    i = np.searchsorted(ref, drawn)
    nearest = np.minimum(
        np.abs(ref[np.clip(i, 0, r.size - 1)] - drawn), np.abs(ref[np.clip(i - 1, 0, r.size - 1)] - drawn)
    )
    assert np.quantile(nearest, 0.99) < 1e-3
    assert lag1_autocorrelation(drawn) == pytest.approx(lag1_autocorrelation(r), abs=0.02)
    few = r[: BOOTSTRAP_MIN - 1]
    a = bootstrap_view(section.features["x"], few, 5_000, np.random.default_rng(2))
    b = simulate_view(section.features["x"], 5_000, np.random.default_rng(2))
    assert np.array_equal(a, b)


def test_calibrate_from_the_reference_values_raises_what_the_latent_model_misses() -> None:
    """Poisson counts of an AR(1) rate burst in runs the latent Gaussian model does not hold
    (a convex rate's excursions): drawn from the reference's own values, Page-Hinkley's and
    cusum_mean's thresholds come out higher than from the profile's model."""
    from driftsentinel.detectors.calibration import calibrate
    from driftsentinel.detectors.seasonal_profile import reference_residuals

    rng = np.random.default_rng(23)
    t, x = _poisson_of_ar_rate(120_000, rng)
    profile = build_profile({"x": x.tolist()}, source="t")
    section, _ = seasonal_profile(t, {"x": x}, "hour_of_day", "ts", rng)
    seasonal = profile.model_copy(update={"seasonal": section})
    own = {"x": reference_residuals(section, "x", t, x)}
    model = calibrate(seasonal, values=100_000, seed=4, workers=1)["x"]
    data = calibrate(seasonal, values=100_000, seed=4, workers=1, residuals=own)["x"]
    assert data["page_hinkley_threshold"] > model["page_hinkley_threshold"]
    assert data["cusum_mean_threshold"] > model["cusum_mean_threshold"]


def test_calibrate_data_cli_and_its_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    flat, _ = _write_training(tmp_path)
    prof, plain = tmp_path / "p.json", tmp_path / "plain.json"
    assert main(["baseline", "--input", str(flat), "--out", str(prof), "--period", "auto"]) == 0
    assert main(["baseline", "--input", str(flat), "--out", str(plain)]) == 0
    out = tmp_path / "c.yaml"
    args = ["calibrate", "--reference", str(prof), "--out", str(out), "--values", "100000"]
    assert main([*args, "--data", str(flat)]) == 0
    with_data = yaml.safe_load(out.read_text())["detectors"]["per_feature"]
    capsys.readouterr()
    assert main(args) == 0
    assert "give --data (the training file)" in capsys.readouterr().err
    without = yaml.safe_load(out.read_text())["detectors"]["per_feature"]
    assert with_data["w"] == without["w"]  # not seasonal: the data change nothing
    assert with_data["x"] != without["x"]
    capsys.readouterr()
    (tmp_path / "short.csv").write_text("ts,w\n1700000000,1.0\n1700000060,2.0\n")
    (tmp_path / "untimed.csv").write_text("x,w\n1.0,1.0\n2.0,2.0\n")
    for extra, says in (
        (["--data", str(tmp_path / "short.csv")], "no column 'x' (a seasonal feature of the profile)"),
        (["--data", str(tmp_path / "untimed.csv")], "no time column 'ts'"),
        (["--data", str(tmp_path / "nope.csv")], "nope.csv"),
    ):
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    code = main(["calibrate", "--reference", str(plain), "--out", str(out), "--data", str(flat)])
    err = capsys.readouterr().err
    assert code == 2 and "the profile has no seasonal section" in err
