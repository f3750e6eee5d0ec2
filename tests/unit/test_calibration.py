"""Issue 5: calibrated false-alarm rate, family-wise control, hysteresis, severity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from driftsentinel.detectors.adwin import ADWIN
from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.calibration import (
    FIT_MARGIN,
    RIVER_ADWIN_DELTA,
    LogRateFit,
    adwin_decision,
    budget_split,
    calibrate,
    fit_log_rate,
    sample_like,
    sequential_reference,
)
from driftsentinel.detectors.profile import build_profile
from driftsentinel.detectors.sequential import NUMERIC_TESTS, NumericSequential
from driftsentinel.detectors.standardize import standardize
from driftsentinel.detectors.window_tests import family_passes
from driftsentinel.schemas import (
    ADWINConfig,
    BankConfig,
    FeatureBatch,
    PageHinkleyConfig,
    WindowTestConfig,
    load_config,
)
from driftsentinel.schemas.config import FeatureParams, SequentialConfig
from driftsentinel.stream.cli import main

GENERATORS = {
    "normal": lambda rng, n: rng.normal(size=n),
    "lognormal": lambda rng, n: rng.lognormal(0, 1, n),
    "t3": lambda rng, n: rng.standard_t(3, n),
    "counts": lambda rng, n: rng.poisson(3, n).astype(float),
    "indicator": lambda rng, n: (rng.random(n) < 0.1).astype(float),
}


#: ADWIN and Page-Hinkley alone (their tests need not pay for simulating the sequential tests)
NO_SEQUENTIAL = BankConfig(sequential=SequentialConfig(enabled=False))


def run_bank(bank: DetectorBank, x: np.ndarray, batch: int = 8192) -> list:
    names = [f"f{j}" for j in range(x.shape[1])]
    out = []
    for i in range(0, x.shape[0], batch):
        xb = x[i : i + batch]
        rows = np.arange(i, i + len(xb))
        out += [(i + s.row, s) for s in bank.update(FeatureBatch(names, xb, rows, np.full(len(xb), np.nan)))]
    return out


@pytest.mark.parametrize("dist", sorted(GENERATORS))
def test_calibrated_defaults_stay_quiet_on_a_million_stationary_values(dist: str) -> None:
    rng = np.random.default_rng(42)
    gen = GENERATORS[dist]
    prof = build_profile({"f0": gen(rng, 50_000).tolist()}, source=dist)
    params = calibrate(prof, false_alarms_per_million=1.0, values=300_000, seed=1)
    cfg = BankConfig(
        per_feature={f: FeatureParams(**p) for f, p in params.items()}, window_tests=WindowTestConfig(enabled=False)
    )
    sigs = run_bank(DetectorBank(cfg, prof), gen(rng, 1_000_000).reshape(-1, 1))
    # the target: at most 1 false drift event per million values (measured rates are ~0.1)
    assert len([s for _, s in sigs if s.status == "drift"]) <= 1


def test_calibrated_thresholds_still_catch_a_one_sigma_shift() -> None:
    rng = np.random.default_rng(3)
    prof = build_profile({"f0": rng.standard_t(3, 50_000).tolist()}, source="t3")
    params = calibrate(prof, values=300_000)
    cfg = BankConfig(
        per_feature={f: FeatureParams(**p) for f, p in params.items()}, window_tests=WindowTestConfig(enabled=False)
    )
    x = rng.standard_t(3, 20_000)
    x[10_000:] += prof.features["f0"].std  # type: ignore[union-attr]
    sigs = run_bank(DetectorBank(cfg, prof), x.reshape(-1, 1))
    first = min(r for r, s in sigs if s.status == "drift")
    assert 10_000 <= first < 10_300


def test_sampling_like_the_reference_keeps_discrete_values_discrete() -> None:
    prof = build_profile({"k": np.random.default_rng(0).poisson(2, 10_000).tolist()}, source="t")
    draws = sample_like(prof.features["k"], 10_000, np.random.default_rng(1))  # type: ignore[arg-type]
    assert np.all(draws == np.round(draws)) and abs(draws.mean() - 2) < 0.1


def test_calibrate_command_writes_a_config_that_runs(tmp_path) -> None:
    rng = np.random.default_rng(5)
    prof = build_profile({"a": rng.normal(size=5000).tolist(), "c": rng.choice(list("xyz"), 5000).tolist()}, source="t")
    (tmp_path / "p.json").write_text(prof.model_dump_json())
    assert (
        main(
            [
                "calibrate",
                "--reference",
                str(tmp_path / "p.json"),
                "--out",
                str(tmp_path / "c.yaml"),
                "--values",
                "100000",
            ]
        )
        == 0
    )
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.reference == str(tmp_path / "p.json")
    assert set(cfg.detectors.per_feature) == {"a", "c"}  # a categorical feature: its sequential tests' thresholds
    assert cfg.detectors.per_feature["c"].cusum_categories_threshold is not None
    assert cfg.detectors.per_feature["c"].page_hinkley_threshold is None
    assert 10 <= cfg.detectors.per_feature["a"].page_hinkley_threshold <= 500  # type: ignore[operator]
    written = yaml.safe_load((tmp_path / "c.yaml").read_text())["detectors"]["per_feature"]["a"]
    assert written["adwin_delta"] <= 0.002  # never looser than river's default
    # the sequential tests' thresholds, measured for this feature (below the configured defaults)
    assert set(written) == {"page_hinkley_threshold", "adwin_delta", *(f"{t}_threshold" for t in NUMERIC_TESTS)}
    assert 0 < cfg.detectors.per_feature["a"].cusum_mean_threshold < cfg.detectors.sequential.mean_threshold  # type: ignore[operator]


def test_per_feature_parameters_need_the_kernels() -> None:
    with pytest.raises(ValueError, match="per_feature"):
        BankConfig.model_validate({"backend": "river", "per_feature": {"a": {"adwin_delta": 1e-5}}})


def test_family_wise_control_across_features() -> None:
    p = [1e-9, 2e-7, 4e-7, 0.3]
    assert family_passes(p, 1e-6, "none") == [True, True, True, False]
    assert family_passes(p, 1e-6, "bonferroni") == [True, True, False, False]  # alpha / 4
    assert family_passes(p, 1e-6, "bh") == [True, True, True, False]  # 4e-7 <= 3/4 * 1e-6


def test_window_test_hysteresis_and_severity() -> None:
    rng = np.random.default_rng(6)
    prof = build_profile({"f0": rng.normal(size=50_000).tolist()}, source="t")
    cfg = BankConfig(
        adwin=ADWINConfig(enabled=False),
        page_hinkley=PageHinkleyConfig(enabled=False),
        sequential=SequentialConfig(enabled=False),
        window_tests=WindowTestConfig(window_events=2000, numeric_tests=["ks"], quality_tests=[]),
    )
    bank = DetectorBank(cfg, prof)
    x = np.r_[rng.normal(size=4000), rng.normal(size=4000) + 1.0, rng.normal(size=6000)].reshape(-1, 1)
    sigs = [s for _, s in run_bank(bank, x, batch=1000)]
    assert [(s.detector, s.status) for s in sigs] == [("ks", "drift"), ("ks", "resolved")]
    assert sigs[0].statistic > 2 * sigs[0].threshold  # a 1-sigma shift: KS ~0.38 vs 0.1 -> 'critical'
    assert sigs[1].statistic <= 0.8 * sigs[1].threshold


# ---------------------------------------------------------------------------- the rate fit
def _fitted(fit: LogRateFit | None) -> LogRateFit:
    assert fit is not None, "the counts pin a line"
    return fit


def test_poisson_fit_recovers_a_known_line_from_noisy_counts() -> None:
    rng = np.random.default_rng(11)
    xs = np.log(1.0 / np.array([0.2, 0.05, 0.01, 0.002]))
    a, b, exposure = -5.5, -1.2, 1e6
    fits = [_fitted(fit_log_rate(xs, rng.poisson(exposure * np.exp(a + b * xs)), exposure)) for _ in range(300)]
    slopes = np.array([f.slope for f in fits])
    intercepts = np.array([f.intercept for f in fits])
    assert abs(slopes.mean() - b) < 0.02 and abs(intercepts.mean() - a) < 0.05  # unbiased
    # the counts here are ~1,000 down to ~4 (often 0): least squares on log(rate) drops the
    # zeros and is pulled towards shallow slopes; the Poisson fit must do clearly better
    ls = []
    for _ in range(300):
        c = rng.poisson(exposure * np.exp(a + b * xs))
        ok = c > 0
        ls.append(np.polyfit(xs[ok], np.log(c[ok] / exposure), 1)[0])
    assert np.std(slopes) < 0.8 * np.std(ls)


def test_poisson_fit_uses_settings_without_alarms() -> None:
    xs = np.array([1.0, 2.0, 3.0])
    low = fit_log_rate(xs, np.array([100.0, 20.0, 0.0]), 1e6)
    high = fit_log_rate(xs, np.array([100.0, 20.0, 8.0]), 1e6)
    assert low is not None and high is not None
    assert low.slope < high.slope  # a zero is evidence of a low rate, not a missing point
    assert fit_log_rate(xs, np.array([100.0, 0.0, 0.0]), 1e6) is None  # one setting: no line


def test_standard_error_of_the_extrapolation_matches_its_spread() -> None:
    # ADWIN-like counts (116, 20, 3 per million at deltas 0.2, 0.05, 0.01) over 2 million
    # values in 10 blocks; the rate extrapolated to 0.002 must scatter as the error says.
    rng = np.random.default_rng(12)
    xs = np.log(1.0 / np.array([0.2, 0.05, 0.01]))
    rates = np.array([116e-6, 20.5e-6, 2.95e-6])
    rows, blocks = 2_000_000, 10
    x_far = math.log(1.0 / 0.002)
    preds, ses, phis = [], [], []
    for _ in range(300):
        per_block = rng.poisson(rows / blocks * rates, size=(blocks, xs.size))
        f = _fitted(fit_log_rate(xs, per_block.sum(axis=0), rows, per_block))
        preds.append(f.log_rate(x_far))
        ses.append(f.log_rate_se(x_far))
        phis.append(f.dispersion)
    spread = np.std(preds)
    assert 0.8 * spread < np.median(ses) < 1.25 * spread
    assert np.median(phis) < 1.3  # Poisson counts: no over-dispersion found
    # clustered alarms (each event counted twice) must widen the error by about sqrt(2)
    per_block = 2 * rng.poisson(rows / blocks * rates / 2, size=(blocks, xs.size))
    f2 = _fitted(fit_log_rate(xs, per_block.sum(axis=0), rows, per_block))
    f1 = _fitted(fit_log_rate(xs, per_block.sum(axis=0), rows))
    assert f2.dispersion > 1.4 and f2.log_rate_se(x_far) > 1.15 * f1.log_rate_se(x_far)


def test_adwin_decision_is_a_one_sided_test_against_rivers_delta() -> None:
    cap, share = 0.002, 0.5e-6
    x_cap = math.log(1.0 / cap)

    def fit_at(rate_at_cap: float, se: float) -> LogRateFit:
        return LogRateFit(intercept=math.log(rate_at_cap) + 1.2 * x_cap, slope=-1.2, x0=x_cap, cov=(se * se, 0.0, 0.0))

    assert adwin_decision(fit_at(0.45e-6, 0.4), share, cap) == ("cap", cap)  # within the share
    assert adwin_decision(fit_at(0.9e-6, 0.4), share, cap)[0] == "more"  # z = 1.5: not shown
    verdict, delta = adwin_decision(fit_at(1.2e-6, 0.4), share, cap)  # z = 2.2: too loose
    # solved for FIT_MARGIN of the share along the line: rate(delta) = rate(cap) (delta / cap)^1.2
    assert verdict == "solve" and delta == pytest.approx(cap * (FIT_MARGIN * 0.5 / 1.2) ** (1 / 1.2))


# ---------------------------------------------------------------------------- calibrated ADWIN
def _normal_profile(features: int, seed: int):
    rng = np.random.default_rng(seed)
    return build_profile({f"f{j}": rng.normal(size=50_000).tolist() for j in range(features)}, source="normal")


def test_normal_features_keep_rivers_delta_at_the_default_target() -> None:
    # Standardised normal data fire ~0.41 times per million values at river's delta 0.002
    # (measured over 260 million values), under ADWIN's share of 0.5: every normal feature
    # must get 0.002, not a noisy solution below it.
    # (The least-squares fit of the earlier calibration put one of these 12 at 0.00184.)
    params = calibrate(_normal_profile(12, 21), NO_SEQUENTIAL, false_alarms_per_million=1.0, values=1_000_000, seed=22)
    assert [p["adwin_delta"] for p in params.values()] == [RIVER_ADWIN_DELTA] * 12


def test_heavy_tails_get_a_stricter_delta() -> None:
    rng = np.random.default_rng(23)
    prof = build_profile({"f0": rng.lognormal(size=50_000).tolist()}, source="lognormal")
    delta = calibrate(prof, NO_SEQUENTIAL, false_alarms_per_million=1.0, values=1_000_000, seed=24)["f0"]["adwin_delta"]
    # lognormal, standardised and winsorised: 1.5 alarms per million at 0.002; the share
    # (0.5) is reached near 0.00055 (measured over 100-160 million values)
    assert 0.00025 < delta < 0.0011


def test_calibrated_delta_lands_where_the_long_run_rate_meets_the_share() -> None:
    # A target whose ADWIN share (1.5 per million) a test can check directly, beyond the
    # simulated settings (0.2 ... 0.01) like the default target, with the cap at river's
    # 0.002 lifted by a looser configured delta: measure the long-run rate at two deltas
    # around the answer over 50 million values and interpolate.
    prof = _normal_profile(4, 25)
    config = BankConfig(adwin=ADWINConfig(delta=0.05), sequential=SequentialConfig(enabled=False))
    params = calibrate(prof, config, false_alarms_per_million=3.0, values=1_000_000, seed=26)
    got = math.exp(np.mean([math.log(p["adwin_delta"]) for p in params.values()]))
    share = 1.5e-6
    rng = np.random.default_rng(27)
    bracket = np.array([0.003, 0.008])
    det = ADWIN(n_features=2, delta=bracket)
    n = 0
    counts = np.zeros(2)
    for _ in range(50):
        z = np.clip(rng.normal(size=1_000_000), -3.5, 3.5)
        counts += np.bincount(det.update(np.repeat(z[:, None], 2, axis=1))[:, 1], minlength=2)
        n += z.size
    slope = math.log(counts[1] / counts[0]) / math.log(bracket[1] / bracket[0])
    truth = bracket[0] * math.exp(math.log(share / (counts[0] / n)) / slope)
    assert 0.7 < got / truth < 1.43, (got, truth, counts)


# ---------------------------------------------------------------------------- sequential tests
def test_the_budget_split_sums_to_the_users_rate() -> None:
    split = budget_split(BankConfig())
    assert sum(split.values()) == pytest.approx(1.0)
    assert split["adwin"] == 0.5 and split["page_hinkley"] == 0.1875
    assert [split[t] for t in NUMERIC_TESTS] == [pytest.approx(0.3125 / 4)] * 4
    two = budget_split(BankConfig.model_validate({"sequential": {"tests": ["cusum_mean", "cusum_unseen"]}}))
    assert two == {"adwin": 0.5, "page_hinkley": 0.1875, "cusum_mean": 0.3125}  # the only numeric one enabled
    no_adwin = budget_split(BankConfig.model_validate({"adwin": {"enabled": False}}))
    assert "adwin" not in no_adwin and sum(no_adwin.values()) == pytest.approx(1.0)
    # without sequential tests, ADWIN and Page-Hinkley keep their shares, the rest is headroom
    assert budget_split(NO_SEQUENTIAL) == {"adwin": 0.5, "page_hinkley": 0.1875}


def test_a_disabled_sequential_test_gets_no_threshold() -> None:
    rng = np.random.default_rng(31)
    prof = build_profile({"f0": rng.normal(size=20_000).tolist()}, source="t")
    cfg = BankConfig.model_validate({"sequential": {"tests": ["cusum_mean", "cusum_shape"]}})
    params = calibrate(prof, cfg, values=100_000, seed=1)["f0"]
    assert set(params) == {"adwin_delta", "page_hinkley_threshold", "cusum_mean_threshold", "cusum_shape_threshold"}
    assert set(calibrate(prof, NO_SEQUENTIAL, values=100_000, seed=1)["f0"]) == {
        "adwin_delta",
        "page_hinkley_threshold",
    }


@pytest.mark.parametrize("dist", ["lognormal", "t3"])
def test_calibrated_sequential_tests_hold_their_share_on_fresh_data(dist: str) -> None:
    # At 200 false alarms per million events each sequential test's share is 18.75 per
    # million: countable on 1.6 million fresh events (30 expected at the share). The
    # thresholds must hold it on data drawn from the distribution itself (not from the
    # profile the calibration simulates), and not by being absurdly strict.
    rng = np.random.default_rng(41)
    gen = GENERATORS[dist]
    prof = build_profile({"f0": gen(rng, 50_000).tolist()}, source=dist)
    budget = 200.0
    params = calibrate(prof, false_alarms_per_million=budget, values=200_000, seed=42)["f0"]
    cfg = BankConfig()
    seq = NumericSequential(cfg.sequential, resolve_min_count=cfg.resolve_min_count)
    seq.add_features(1)
    ref = sequential_reference(prof.features["f0"], cfg)  # type: ignore[arg-type]
    seq.set_reference(0, **ref)
    seq.set_thresholds(0, **{t: params[f"{t}_threshold"] for t in NUMERIC_TESTS})
    p = prof.features["f0"]
    events = 1_600_000
    x = gen(rng, events)
    z = standardize(x, p.mean, p.std, ref["clip_lo"], ref["clip_hi"])  # type: ignore[union-attr]
    counts = dict.fromkeys(NUMERIC_TESTS, 0)
    for h in seq.update(x[:, None], z[:, None], np.zeros(1, dtype=np.int64)):
        counts[h.test] += h.status == "drift"
    share = budget * 1e-6 * events * budget_split(cfg)["cusum_mean"]  # 30 per test
    assert all(c <= share + 3 * math.sqrt(share) for c in counts.values()), counts  # within the share
    assert sum(counts.values()) >= 0.2 * 3 * share, counts  # mean, scale, shape: within a factor 5, not absurdly strict


# ---------------------------------------------------------------- categorical features
CATS = np.array(["a", "b", "c", "d", "e"], dtype=object)
SHARES = np.array([0.40, 0.30, 0.15, 0.10, 0.05])  # the quality benchmark's categorical reference


def test_categorical_features_get_calibrated_thresholds_the_monitor_uses() -> None:
    """calibrate sets cusum_categories_threshold and cusum_unseen_threshold of a categorical
    feature (under Ville's log(1 / share) of its half of the budget; cusum_unseen never
    fires on the reference's values and keeps its configured threshold), the reference
    monitor reads them from per_feature, and the calibrated feature stays within its budget
    on 600,000 stationary values while the benchmark's shift is still found."""
    rng = np.random.default_rng(30)
    prof = build_profile(
        {"c": CATS[rng.choice(5, 50_000, p=SHARES)].tolist(), "x": rng.normal(size=50_000).tolist()}, source="t"
    )
    params = calibrate(prof, false_alarms_per_million=1.0, values=300_000, seed=4)
    c = params["c"]
    assert set(c) == {"cusum_categories_threshold", "cusum_unseen_threshold"}
    assert 4.0 < c["cusum_categories_threshold"] < math.log(2e6)  # Ville's cap for 0.5 per million
    assert c["cusum_unseen_threshold"] == SequentialConfig().unseen_threshold
    assert "cusum_mean_threshold" in params["x"]
    # only the enabled tests, none without the sequential tests
    only = BankConfig(sequential=SequentialConfig(tests=["cusum_categories"]))
    assert set(calibrate(prof, only, values=100_000, seed=4)["c"]) == {"cusum_categories_threshold"}
    assert "c" not in calibrate(prof, NO_SEQUENTIAL, values=100_000, seed=4)
    cfg = BankConfig(
        per_feature={f: FeatureParams(**p) for f, p in params.items()}, window_tests=WindowTestConfig(enabled=False)
    )
    bank = DetectorBank(cfg, prof)
    assert bank.monitor is not None and bank.monitor.sequential is not None
    assert bank.monitor.sequential.tests.thresholds(0) == {
        "cusum_categories": c["cusum_categories_threshold"],
        "cusum_unseen": c["cusum_unseen_threshold"],
    }
    names = ["c"]
    drifts = 0
    for i in range(0, 600_000, 50_000):
        codes = CATS[rng.choice(5, (50_000, 1), p=SHARES)]
        rows = np.arange(i, i + 50_000)
        batch = FeatureBatch(
            [], np.empty((50_000, 0)), rows, np.full(50_000, np.nan), cat_names=names, cat_values=codes
        )
        drifts += sum(s.status == "drift" for s in bank.update(batch))
    assert drifts <= 1
    shifted = CATS[rng.choice(5, (5_000, 1), p=[0.3, 0.3, 0.2, 0.1, 0.1])]
    rows = np.arange(600_000, 605_000)
    sigs = bank.update(
        FeatureBatch([], np.empty((5_000, 0)), rows, np.full(5_000, np.nan), cat_names=names, cat_values=shifted)
    )
    assert any(s.detector == "cusum_categories" and s.status == "drift" for s in sigs)


def test_a_dependent_feature_whose_rivers_delta_never_fires_keeps_it() -> None:
    """ADWIN on a dependent feature fits the two tightest deltas; when river's delta (the
    tightest) fires in no pass there is no line, and river's delta is within the share: it
    is kept rather than the configured zero-config delta (slower for no reason)."""
    from driftsentinel.detectors.calibration import _adwin_delta

    z = np.zeros(50_000)  # ADWIN never cuts a constant stream
    config = BankConfig()
    assert _adwin_delta(z, config, 1e-6, np.random.default_rng(0), 0.9, dependent=True) == RIVER_ADWIN_DELTA
    assert _adwin_delta(z, config, 1e-6, np.random.default_rng(0), 0.0, dependent=False) == config.adwin.delta
