"""Window tests without a knife edge: the decision rule measured over many windows.

A distribution test flags a window when its distance is significant and its bias-corrected
effect passes ``decision_ratio`` x its minimum meaningful change. The cut-off rises on small
windows until half the minimum stays quiet. At the default window (5,000 events) a change
at the minimum must be flagged in >= 95 % of windows; at half the minimum, in none at 5,000
nor at 1,000 events (400 windows each).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftsentinel.detectors.profile import build_profile
from driftsentinel.detectors.reference_monitor import ReferenceMonitor
from driftsentinel.detectors.window_tests import (
    NumericGrid,
    categorical_probs,
    cramers_v,
    cut_off,
    js_distance,
    psi,
    training_cells,
)
from driftsentinel.schemas import WindowTestConfig
from driftsentinel.schemas.profile import CategoricalProfile, NumericProfile, ReferenceProfile

WINDOWS = 400
REF_SIZE = 50_000
CATS = np.array(["a", "b", "c", "d", "e"], dtype=object)
P_BEFORE = np.array([0.40, 0.30, 0.15, 0.10, 0.05])
P_AFTER = np.array([0.30, 0.30, 0.20, 0.10, 0.10])
_erf = np.vectorize(math.erf)


@pytest.fixture(scope="module")
def numeric_profile() -> ReferenceProfile:
    return build_profile({"x": np.random.default_rng(100).normal(size=REF_SIZE).tolist()}, source="t")


@pytest.fixture(scope="module")
def categorical_profile() -> ReferenceProfile:
    rng = np.random.default_rng(101)
    return build_profile({"c": CATS[rng.choice(5, size=REF_SIZE, p=P_BEFORE)].tolist()}, source="t")


def population_distance(test: str, grid: NumericGrid, shift: float) -> float:
    """The distance of N(shift, 1) from the reference grid, without sampling noise."""
    cdf = 0.5 * (1.0 + _erf((grid.points - shift) / math.sqrt(2.0)))
    counts = np.diff(np.r_[0.0, cdf, 1.0]) * 1e12  # expected counts of an enormous window
    if test == "ks":
        return grid.ks(counts)
    if test == "wasserstein":
        return grid.wasserstein(counts)
    live, ref = grid.decile_probs(counts)
    return psi(live, ref) if test == "psi" else js_distance(live, ref)


def shift_for(test: str, grid: NumericGrid, target: float) -> float:
    """The mean shift whose population distance is ``target`` (bisection, 60 steps)."""
    lo, hi = 0.0, 3.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if population_distance(test, grid, mid) < target else (lo, mid)
    return 0.5 * (lo + hi)


def flagged_share(monitor: ReferenceMonitor, test: str, windows: list[np.ndarray], categorical: bool) -> float:
    """Share of ``windows`` in which ``test`` flags the feature (each window judged on its own)."""
    hits = 0
    for w in windows:
        monitor.active.clear()  # each window judged afresh, not as part of an open episode
        n = w.shape[0]
        if categorical:
            out = monitor.update([], np.empty((n, 0)), ["c"], w.reshape(-1, 1), np.full(n, np.nan))
        else:
            out = monitor.update(["x"], w.reshape(-1, 1), [], None, np.full(n, np.nan))
        hits += any(d.detector == test and d.status == "drift" for d in out)
    return hits / len(windows)


@pytest.mark.parametrize("test", ["psi", "ks", "js", "wasserstein"])
@pytest.mark.parametrize("window", [5000, 1000])
def test_numeric_minimum_caught_half_never(numeric_profile: ReferenceProfile, test: str, window: int) -> None:
    cfg = WindowTestConfig(window_events=window)
    prof = numeric_profile.features["x"]
    assert isinstance(prof, NumericProfile)
    monitor = ReferenceMonitor(numeric_profile, cfg)
    grid = monitor._grids["x"]
    minimum = float(getattr(cfg, test))
    rng = np.random.default_rng([window, ["psi", "ks", "js", "wasserstein"].index(test)])
    rates = {}
    for factor in (1.0, 0.5):
        shift = shift_for(test, grid, factor * minimum)
        windows = list(rng.normal(size=(WINDOWS, window)) + shift)
        rates[factor] = flagged_share(monitor, test, windows, categorical=False)
    assert rates[0.5] == 0.0, rates  # half the minimum: never, whatever the window
    # at the minimum: >= 95 % at the default window; a 1,000-event window is too noisy to tell
    # the minimum from half of it reliably, its cut-off rises (docs/detection.md)
    assert rates[1.0] >= (0.95 if window == 5000 else 0.1), rates


@pytest.mark.parametrize("window", [5000, 1000])
def test_chi2_minimum_caught_half_never(categorical_profile: ReferenceProfile, window: int) -> None:
    cfg = WindowTestConfig(window_events=window)
    prof = categorical_profile.features["c"]
    assert isinstance(prof, CategoricalProfile)
    monitor = ReferenceMonitor(categorical_profile, cfg)
    live, ref, _ = categorical_probs({}, prof.frequencies, prof.other_share, set(prof.seen))
    order = [list(prof.frequencies).index(c) for c in CATS]
    ref_abcde = ref[: len(CATS)][order]  # the training shares in a..e order
    full = cramers_v(P_AFTER, ref_abcde, 1)  # V of the whole shift; V is linear along the path
    rng = np.random.default_rng(window)
    rates = {}
    for factor in (1.0, 0.5):
        t = factor * cfg.chi2 / full
        p = ref_abcde + t * (P_AFTER - ref_abcde)
        assert cramers_v(p, ref_abcde, 1) == pytest.approx(factor * cfg.chi2, rel=1e-9)
        windows = [CATS[rng.choice(5, size=window, p=p / p.sum())] for _ in range(WINDOWS)]
        rates[factor] = flagged_share(monitor, "chi2", windows, categorical=True)
    assert rates[0.5] == 0.0, rates
    assert rates[1.0] >= (0.95 if window == 5000 else 0.1), rates


def test_a_change_sitting_at_the_old_threshold_is_no_knife_edge(numeric_profile: ReferenceProfile) -> None:
    """A raw distance straddling the minimum (JS 0.095-0.105) is flagged in every window.

    With the old rule (raw distance > minimum) the same windows were caught or missed by noise.
    """
    cfg = WindowTestConfig()
    monitor = ReferenceMonitor(numeric_profile, cfg)
    grid = monitor._grids["x"]
    shift = shift_for("js", grid, cfg.js)
    rng = np.random.default_rng(7)
    windows = list(rng.normal(size=(100, 5000)) + shift)
    raw = []
    for w in windows:
        live, ref = grid.decile_probs(grid.counts(w))
        raw.append(js_distance(live, ref))
    old_rule = float(np.mean(np.array(raw) > cfg.js))
    assert 0.2 < old_rule < 0.95, old_rule  # the knife edge the issue describes
    assert flagged_share(monitor, "js", windows, categorical=False) == 1.0


def test_alert_reports_the_effect_and_the_cut_off(numeric_profile: ReferenceProfile) -> None:
    cfg = WindowTestConfig(window_events=5000)
    monitor = ReferenceMonitor(numeric_profile, cfg)
    x = np.random.default_rng(3).normal(size=(5000, 1)) + 1.0
    out = {d.detector: d for d in monitor.update(["x"], x, [], None, np.full(5000, np.nan))}
    ks = out["ks"]
    # the cut-off: 0.75 x the minimum, raised a little at 5,000 values for ks's noise
    assert ks.threshold == pytest.approx(cut_off("ks", cfg.ks, cfg.decision_ratio, 5000, REF_SIZE, 0))
    assert cfg.ks * cfg.decision_ratio <= ks.threshold < cfg.ks
    raw = monitor._grids["x"].ks(monitor._grids["x"].counts(x[:, 0]))
    assert ks.statistic < raw and ks.statistic == pytest.approx(raw, abs=0.01)  # bias out, still ~0.38


def test_unseen_values_do_not_inflate_chi2(categorical_profile: ReferenceProfile) -> None:
    """0.9 % never-seen values and no other change: chi2 quiet with a small V; new_category's job."""
    cfg = WindowTestConfig(window_events=5000, new_category=0.005)
    monitor = ReferenceMonitor(categorical_profile, cfg)
    rng = np.random.default_rng(12)
    w = CATS[rng.choice(5, size=5000, p=P_BEFORE)]
    w[rng.random(5000) < 0.009] = "never-seen"
    out = monitor.update([], np.empty((5000, 0)), ["c"], w.reshape(-1, 1), np.full(5000, np.nan))
    assert {d.detector for d in out} == {"new_category"}, out
    assert monitor.scores["c"]["chi2"] < 0.03  # was 0.465 with a smoothed empty training cell
    # the same window's real share shift is still flagged by chi2
    shifted = CATS[rng.choice(5, size=5000, p=P_AFTER)]
    shifted[rng.random(5000) < 0.009] = "never-seen"
    monitor.active.clear()
    out = monitor.update([], np.empty((5000, 0)), ["c"], shifted.reshape(-1, 1), np.full(5000, np.nan))
    chi2 = [d for d in out if d.detector == "chi2"]
    assert chi2 and chi2[0].status == "drift" and 0.12 < chi2[0].statistic < 0.18, chi2


def test_training_cells_leave_out_unseen() -> None:
    prof = {"a": 0.5, "b": 0.5}
    live, ref, _ = categorical_probs({"a": 495, "b": 495, "z": 10}, prof, 0.0, {"a", "b"})
    seen, ref_seen, n = training_cells(live, ref, 1000)
    assert n == 990 and seen.tolist() == [0.5, 0.5] and cramers_v(seen, ref_seen, n) == 0.0
