"""The sequential tests (detectors/sequential.py): kernels vs a plain-Python reference,
closed-form properties, detection delays and the state round trip."""

from __future__ import annotations

import json
import math
from collections import deque

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.quality import draw
from driftsentinel.detectors._state import to_builtin
from driftsentinel.detectors.sequential import (
    CATEGORICAL_TESTS,
    HUBER,
    MISSING_PRIOR,
    NUMERIC_TESTS,
    SHAPE_PRIOR,
    CategoricalSequential,
    NumericSequential,
    SequentialHit,
    bernoulli_kl,
    change_penalty,
    lundberg_exponent,
    shape_reference,
)
from driftsentinel.detectors.standardize import clip_bounds, mean_std, profile_percentiles, reference_std
from driftsentinel.schemas.config import SequentialConfig


# ---------------------------------------------------------------- the plain-Python reference
class _Adaptive:
    """An adaptive multinomial CUSUM, value by value (the seeded run of the module docstring)."""

    def __init__(self, p0: list[float], prior: float, pen: float) -> None:
        self.p0, self.prior, self.pen = p0, prior, pen
        self.w, self.cnt, self.m, self.zero = 0.0, [0.0] * len(p0), 0.0, 0
        self.runs = 0  # runs started (the statistic at 0 with a value as its run's first)

    def step(self, b: int, n: int) -> tuple[float, int]:
        p_hat = (self.cnt[b] + self.prior * self.p0[b]) / (self.m + self.prior)
        w = self.w + math.log(p_hat) - math.log(self.p0[b]) - self.pen
        if w <= 0.0:
            self._seed(b, n)
            w = 0.0
        else:
            self.cnt[b] += 1.0
            self.m += 1.0
        self.w = w
        return w, n - self.zero

    def _seed(self, b: int, n: int) -> None:
        self.cnt = [0.0] * len(self.p0)
        self.cnt[b], self.m, self.zero = 1.0, 1.0, n
        self.runs += 1

    def restart(self, b: int, n: int) -> None:
        self.w = 0.0
        self._seed(b, n)


class _Episodes:
    """Episode bookkeeping of one test: returns the decisions of one value."""

    def __init__(self, resolve_min: int) -> None:
        self.resolve_min, self.active, self.quiet, self.last_run = resolve_min, False, 0, 0

    def step(self, alarm: bool, since: int) -> str | None:
        if alarm:
            self.quiet, self.last_run = 0, since
            if not self.active:
                self.active = True
                return "drift"
            return None
        self.quiet += 1
        if self.active and self.quiet >= max(self.resolve_min, 2 * self.last_run):
            self.active = False
            return "resolved"
        return None


def _cusum2(s_a: float, s_b: float, inc_a: float, inc_b: float) -> tuple[float, float]:
    return max(0.0, s_a + inc_a), max(0.0, s_b + inc_b)


class RefNumeric:
    """One numeric feature's four tests, value by value, from the parameters set_reference derived."""

    def __init__(self, seq: NumericSequential, j: int, resolve_min: int) -> None:
        c = seq.config
        m = float(seq._m_scale[j])
        self.k, self.up, self.dn = c.min_mean_shift, 1 + m, 1 - m
        self.mu0, self.mu_h, self.a0 = float(seq._mu0[j]), float(seq._mu_h[j]), float(seq._a0[j])
        ne = int(seq._n_edges[j])
        self.edges = [float(e) for e in seq._edges[j, :ne]]
        self.h = [float(v) for v in seq._h[j]]
        self.h[0] *= float(seq._tail_mean[j])  # cusum_mean's threshold for the reference's tails
        self.shape = _Adaptive([float(p) for p in seq._p0[j, : ne + 2]], SHAPE_PRIOR, c.min_shape_kl)
        self.miss = _Adaptive([float(p) for p in seq._m0[j]], MISSING_PRIOR, float(seq._miss_pen[j]))
        self.s = [0.0, 0.0, 0.0, 0.0]  # mean up/down, scale up/down
        self.zs = [0, 0, 0, 0]
        self.n, self.events = 0, 0
        self.ep = [_Episodes(resolve_min) for _ in NUMERIC_TESTS]

    def _bin(self, x: float) -> int:
        if x < self.edges[0]:
            return 0
        if x > self.edges[-1]:
            return len(self.edges) + 1
        return 1 + sum(1 for e in self.edges[1:] if x >= e)

    def _two_sided(self, t: int, a: int, inc_up: float, inc_dn: float) -> tuple[bool, float, int]:
        su, sd = _cusum2(self.s[a], self.s[a + 1], inc_up, inc_dn)
        if su == 0.0:
            self.zs[a] = self.n
        if sd == 0.0:
            self.zs[a + 1] = self.n
        stat = max(su, sd)
        since = self.n - (self.zs[a] if su >= sd else self.zs[a + 1])
        alarm = stat > self.h[t]
        if alarm:
            su = sd = 0.0
            self.zs[a] = self.zs[a + 1] = self.n
        self.s[a], self.s[a + 1] = su, sd
        return alarm, stat, since

    def step(self, row: int, x: float, z: float, on: list[bool]) -> list[tuple]:
        out = []

        def decide(t: int, alarm: bool, stat: float, since: int) -> None:
            status = self.ep[t].step(alarm, since)
            if status:
                out.append((row, NUMERIC_TESTS[t], status, stat, self.h[t], since if status == "drift" else None))

        present = not math.isnan(x)
        if on[3]:
            self.events += 1
            b = 0 if present else 1
            w, since = self.miss.step(b, self.events)
            alarm = w > self.h[3]
            if alarm:
                self.miss.restart(b, self.events)
            decide(3, alarm, w, since)
        if not present or math.isnan(z):
            return out
        self.n += 1
        if on[0]:
            d = min(max(z - self.mu0, -HUBER), HUBER) - self.mu_h
            decide(0, *self._two_sided(0, 0, d - self.k, -d - self.k))
        if on[1]:
            a = min(abs(z - self.mu0), HUBER)
            decide(1, *self._two_sided(1, 2, a - self.a0 * self.up, self.a0 * self.dn - a))
        if on[2]:
            b = self._bin(x)
            w, since = self.shape.step(b, self.n)
            alarm = w > self.h[2]
            if alarm:
                self.shape.restart(b, self.n)
            decide(2, alarm, w, since)
        return out


def _as_tuples(hits: list[SequentialHit], feature: int, offset: int = 0) -> list[tuple]:
    return [
        (h.row + offset, h.test, h.status, h.statistic, h.threshold, h.values_since)
        for h in hits
        if h.feature == feature
    ]


def _warm_reference(values: np.ndarray) -> dict:
    """What the bank derives from warm-up values (mean, std, clip bounds, set_reference's arguments)."""
    mean, std = mean_std(values)
    p01, p99 = (float(q) for q in np.quantile(values, [0.01, 0.99]))
    s = reference_std(mean, std, p01, p99)
    lo, hi = clip_bounds(p01, p99, mean, s)
    return {"mean": mean, "std": s, "lo": lo, "hi": hi, "z_ref": (values - mean) / s, "xq": np.sort(values)}


def _numeric(
    refs: list[dict], config: SequentialConfig | None = None, resolve_min: int = 2000, missing_p0: float = 0.0
) -> NumericSequential:
    seq = NumericSequential(config or SequentialConfig(), resolve_min_count=resolve_min)
    seq.add_features(len(refs))
    for j, r in enumerate(refs):
        seq.set_reference(j, r["z_ref"], r["xq"], r["xq"].size, missing_p0, r["lo"], r["hi"])
    return seq


def _z(x: np.ndarray, refs: list[dict]) -> np.ndarray:
    mean = np.array([r["mean"] for r in refs])
    std = np.array([r["std"] for r in refs])
    return np.clip((x - mean) / std, [r["lo"] for r in refs], [r["hi"] for r in refs])


# ---------------------------------------------------------------- kernels == reference
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 400),
    cuts=st.lists(st.integers(1, 400), max_size=6),
    shift=st.sampled_from([0.0, 1.0, -2.0, 12.0]),
    discrete=st.booleans(),
    tests=st.sets(st.sampled_from(NUMERIC_TESTS), min_size=1),
)
def test_numeric_kernel_matches_the_reference_value_by_value(seed, n, cuts, shift, discrete, tests):
    rng = np.random.default_rng(seed)
    warm = rng.poisson(2.0, 300).astype(float) if discrete else rng.normal(size=300)
    refs = [_warm_reference(warm), _warm_reference(warm * 2.0 + 1.0)]
    cfg = SequentialConfig(tests=sorted(tests))
    seq = _numeric(refs, cfg, resolve_min=7, missing_p0=0.05)
    seq.set_thresholds(0, cusum_mean=3.0, cusum_scale=5.0, cusum_shape=2.5, cusum_missing=2.0)
    seq.set_thresholds(1, cusum_mean=4.0, cusum_scale=6.0, cusum_shape=4.0, cusum_missing=3.0)
    base = rng.poisson(2.0, (n, 2)).astype(float) if discrete else rng.normal(size=(n, 2))
    x = base * [1.0, 2.0] + [0.0, 1.0]
    x[n // 2 :] += shift
    x[rng.random(x.shape) < 0.1 + 0.3 * (np.arange(n) >= n // 3)[:, None]] = np.nan
    z = _z(x, refs)
    first = np.array([0, min(n, 5)])
    ref = [RefNumeric(seq, j, 7) for j in range(2)]
    on = [t in tests for t in NUMERIC_TESTS]
    expected = [[e for i in range(first[j], n) for e in ref[j].step(i, x[i, j], z[i, j], on)] for j in range(2)]
    expected = [sorted(e, key=lambda d: (d[0], NUMERIC_TESTS.index(d[1]))) for e in expected]  # the kernel's order
    got: list[list[tuple]] = [[], []]
    at = 0
    for cut in [*cuts, n]:
        b = min(at + cut, n)
        if b <= at:
            continue
        hits = seq.update(x[at:b], z[at:b], np.clip(first - at, 0, b - at))
        assert [(h.row, h.feature) for h in hits] == sorted((h.row, h.feature) for h in hits)
        for j in range(2):
            got[j] += _as_tuples(hits, j, at)
        at = b
    assert got == expected


class RefCategorical:
    """Both categorical tests value by value: the post-change estimate is the Dirichlet
    predictive of the last ``category_window`` non-missing values (a deque), kept through
    the statistic's restarts."""

    def __init__(self, seq: CategoricalSequential, j: int, resolve_min: int) -> None:
        K = int(seq._n_cats[j])
        c = seq.config
        self.h = [float(v) for v in seq._h[j]]
        self.p0 = [float(p) for p in seq._p0[j, :K]]
        self.u0 = [float(p) for p in seq._u0[j]]
        self.pen = [c.min_category_kl, 0.0]
        self.u_min = float(seq._unseen_min[j])
        self.recent: deque[int] = deque(maxlen=c.category_window)
        self.w, self.zero = [0.0, 0.0], [0, 0]
        self.n, self.K = 0, K
        self.ep = [_Episodes(resolve_min) for _ in CATEGORICAL_TESTS]

    def _log_ratio(self, t: int, code: int) -> float:
        seen = [v for v in self.recent if v >= 0]
        if t == 1:  # unseen
            n_unseen = len(self.recent) - len(seen)
            q1 = max((n_unseen + MISSING_PRIOR * self.u0[1]) / (len(self.recent) + MISSING_PRIOR), self.u_min)
            return math.log(q1) - math.log(self.u0[1]) if code == -2 else math.log(1.0 - q1) - math.log(self.u0[0])
        p_hat = (seen.count(code) + SHAPE_PRIOR * self.p0[code]) / (len(seen) + SHAPE_PRIOR)
        return math.log(p_hat) - math.log(self.p0[code])

    def step(self, row: int, code: int) -> list[tuple]:
        if code == -1 or code >= self.K:
            return []
        self.n += 1
        out = []
        for t in (1, 0):
            if t == 0 and code < 0:
                continue
            w = self.w[t] + self._log_ratio(t, code) - self.pen[t]
            if w <= 0.0:
                w, self.zero[t] = 0.0, self.n
            since = self.n - self.zero[t]
            alarm = w > self.h[t]
            self.w[t] = 0.0 if alarm else w
            if alarm:
                self.zero[t] = self.n
            status = self.ep[t].step(alarm, since)
            if status:
                out.append((row, CATEGORICAL_TESTS[t], status, w, self.h[t], since if status == "drift" else None))
        self.recent.append(code)
        return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 400), cuts=st.lists(st.integers(1, 400), max_size=6))
def test_categorical_kernel_matches_the_reference_value_by_value(seed, n, cuts):
    rng = np.random.default_rng(seed)
    seq = CategoricalSequential(SequentialConfig(category_window=16), resolve_min_count=9)  # the ring wraps
    seq.add_feature(np.array([0.5, 0.3, 0.15, 0.05]), 1000)
    seq.add_feature(np.array([0.9, 0.1]), 50)
    seq.set_thresholds(0, cusum_categories=3.0, cusum_unseen=2.0)
    seq.set_thresholds(1, cusum_categories=2.0, cusum_unseen=4.0)
    codes = np.c_[
        rng.choice([-2, -1, 0, 1, 2, 3], n, p=[0.05, 0.1, 0.3, 0.3, 0.2, 0.05]), rng.choice([-2, -1, 0, 1], n)
    ]
    ref = [RefCategorical(seq, j, 9) for j in range(2)]
    expected = [[e for i in range(n) for e in ref[j].step(i, int(codes[i, j]))] for j in range(2)]
    expected = [sorted(e, key=lambda d: (d[0], CATEGORICAL_TESTS.index(d[1]))) for e in expected]
    got: list[list[tuple]] = [[], []]
    at = 0
    for cut in [*cuts, n]:
        b = min(at + cut, n)
        if b <= at:
            continue
        hits = seq.update(codes[at:b])
        for j in range(2):
            got[j] += _as_tuples(hits, j, at)
        at = b
    assert got == expected


# ---------------------------------------------------------------- closed forms
def test_gaussian_cusum_average_run_length_matches_siegmund():
    """cusum_mean on N(0, 1) (mu0 = 0; the Huber limit at 3 sds changes 0.3 % of the
    values): each one-sided CUSUM with allowance k and threshold h has
    ARL ~ (exp(2 k h') - 1 - 2 k h') / (2 k^2), h' = h + 1.166 (Siegmund, 1985); the
    two-sided statistic alarms at the sum of both rates. Simulated over 800,000 values
    (about 4,700 alarms): within 7 %."""
    k, h = 0.5, 4.0
    hp = h + 1.166
    arl_one = (math.exp(2 * k * hp) - 1 - 2 * k * hp) / (2 * k * k)
    expected = arl_one / 2
    F, n = 8, 100_000
    cfg = SequentialConfig(tests=["cusum_mean"], min_mean_shift=k, mean_threshold=h)
    seq = NumericSequential(cfg, resolve_min_count=1)
    seq.add_features(F)
    for j in range(F):
        seq.set_reference(j, np.array([-1.0, 1.0]), np.array([-1.0, 0.0, 1.0]), 10, 0.0, -1e9, 1e9)
    x = np.random.default_rng(3).normal(size=(n, F))
    seq.update(x, x, np.zeros(F, dtype=np.int64))
    arl = F * n / seq.n_alarms["cusum_mean"].sum()
    assert abs(arl / expected - 1) < 0.07, (arl, expected)


def test_lundberg_exponent_closed_forms():
    """theta solves E exp(theta X) = 1: 2 mu / sigma^2 for normal steps N(-mu, sigma^2);
    for two-point steps the root of p e^(a theta) + (1 - p) e^(-b theta) = 1."""
    rng = np.random.default_rng(5)
    assert lundberg_exponent(rng.normal(-0.3, 2.0, 400_000)) == pytest.approx(2 * 0.3 / 4.0, rel=0.03)
    steps = np.where(np.arange(10_000) < 1_000, 2.5, -5 / 6)  # p = 0.1: +2.5, else -5/6
    theta = lundberg_exponent(steps)
    assert 0.1 * math.exp(2.5 * theta) + 0.9 * math.exp(-5 / 6 * theta) == pytest.approx(1.0, abs=1e-9)
    assert lundberg_exponent(-np.ones(5)) == math.inf


def test_mean_tail_factor_evens_out_the_false_alarm_rate_of_skewed_features():
    """A 0/1 indicator with p = 0.1 rises in steps of +2.5 sds: at the same threshold its
    cusum_mean fires far more often than a normal feature's. Its threshold raised by
    2k / theta (Lundberg) brings its rate to at most a normal feature's; each stays under
    Lundberg's bound 2 exp(-theta h) per value (two sides)."""
    h, F, n = 5.0, 8, 150_000
    rng = np.random.default_rng(17)

    def rate(kind: str, tail: bool) -> tuple[float, float]:
        cfg = SequentialConfig(tests=["cusum_mean"], mean_threshold=h)
        seq = NumericSequential(cfg, resolve_min_count=1)
        seq.add_features(F)
        p = 0.1

        def draw(size: int | tuple[int, int]) -> np.ndarray:
            return rng.normal(size=size) if kind == "normal" else (rng.random(size) < p) * 1.0

        ref = draw(50_000)
        mean, sd = (0.0, 1.0) if kind == "normal" else (p, math.sqrt(p * (1 - p)))
        z_ref = (ref - mean) / sd
        for j in range(F):
            seq.set_reference(j, z_ref, np.quantile(ref, np.linspace(0, 1, 11)), ref.size, 0.0, -1e9, 1e9)
            if not tail:
                seq._tail_mean[j] = 1.0
        factor = float(seq._tail_mean[0])
        x = draw((n, F))
        seq.update(x, (x - mean) / sd, np.zeros(F, dtype=np.int64))
        return seq.n_alarms["cusum_mean"].sum() / (F * n), factor

    normal, f_normal = rate("normal", True)
    raw, _ = rate("indicator", False)
    evened, f_ind = rate("indicator", True)
    assert f_normal < 1.05 and f_ind == pytest.approx(1.64, abs=0.03)
    probe = NumericSequential(SequentialConfig(tests=["cusum_mean"], mean_threshold=h), resolve_min_count=1)
    probe.add_features(1)
    ind = (np.random.default_rng(2).random(50_000) < 0.1) * 1.0
    probe.set_reference(0, (ind - 0.1) / 0.3, np.quantile(ind, np.linspace(0, 1, 11)), ind.size, 0.0, -1e9, 1e9)
    # what the report shows is what the statistic is compared with
    assert probe.decision_thresholds(0)["cusum_mean"] == pytest.approx(h * float(probe._tail_mean[0]))
    assert probe.thresholds(0)["cusum_mean"] == h
    assert raw > 5 * normal  # the skewed feature's problem
    assert evened < 1.5 * normal  # solved
    theta = 2 * 0.5 / f_ind
    assert evened <= 2 * math.exp(-theta * h * f_ind)


def test_adaptive_cusum_false_alarm_per_run_is_at_most_exp_minus_h():
    """With no penalty, each run of an adaptive CUSUM is a likelihood-ratio martingale
    under the reference: it reaches h with probability <= exp(-h) (Ville), for a
    multinomial and a rare Bernoulli alike. Counted with the reference implementation
    (which the kernel matches exactly)."""
    rng = np.random.default_rng(11)
    for p0, prior, h in (([0.5, 0.3, 0.15, 0.05], SHAPE_PRIOR, 2.0), ([0.98, 0.02], MISSING_PRIOR, 3.0)):
        test = _Adaptive(p0, prior, 0.0)
        alarms = 0
        for n, b in enumerate(rng.choice(len(p0), 60_000, p=p0), start=1):
            w, _ = test.step(int(b), n)
            if w > h:
                alarms += 1
                test.restart(int(b), n)
        rate = alarms / test.runs
        assert 0 < rate <= math.exp(-h), (p0, alarms, test.runs)
    # and with the penalty the bound only tightens: the same stream, fewer alarms
    assert bernoulli_kl(0.03, 0.01) > 0 and change_penalty(0.01, 0.02) == pytest.approx(bernoulli_kl(0.03, 0.01))


def test_shape_reference_keeps_ties_whole_and_gives_the_tails_their_exchangeable_share():
    edges, p0 = shape_reference(np.repeat([0.0, 1.0, 2.0, 5.0], [100, 300, 500, 100]), 10, 1000)
    assert edges.tolist() == [0.0, 1.0, 2.0, 5.0]
    assert p0.sum() == pytest.approx(1.0)
    assert p0[0] == p0[-1] == pytest.approx(1 / 1001)
    assert p0[1:-1] == pytest.approx(np.array([0.1, 0.3, 0.5, 0.1]) * (1 - 2 / 1001), abs=2e-3)
    with pytest.raises(ValueError, match="x_quantiles"):
        shape_reference(np.array([1.0, 0.0]), 10, 10)


# ---------------------------------------------------------------- detection delays
def _delays(make, seeds: int, cp: int, n: int, test: str, warm_dist: str = "normal", missing=0.0) -> list[float]:
    """First drift of ``test`` at or after ``cp`` minus ``cp`` (inf: none) per seed, the
    warm-up (1,000 values) the reference, default configuration; any drift before is a failure."""
    rng = np.random.default_rng(5)
    warms = [draw(warm_dist, rng, (1000,)) for _ in range(seeds)]
    refs = [_warm_reference(w) for w in warms]
    seq = _numeric(refs, missing_p0=missing)
    x = make(rng, n, seeds, cp)
    hits = seq.update(x, _z(x, refs), np.zeros(seeds, dtype=np.int64))
    out = []
    for j in range(seeds):
        rows = [h.row for h in hits if h.feature == j and h.test == test and h.status == "drift"]
        assert all(r >= cp for r in rows), (test, j, rows)
        out.append(rows[0] - cp if rows else math.inf)
    return out


def test_missing_jump_from_1_to_20_percent_is_found_within_60_events():
    def make(rng, n, f, cp):
        x = rng.normal(size=(n, f))
        x[rng.random((n, f)) < np.where(np.arange(n) < cp, 0.01, 0.20)[:, None]] = np.nan
        return x

    d = _delays(make, 40, 2000, 2600, "cusum_missing", missing=0.01)
    assert np.median(d) <= 60, sorted(d)


def test_variance_doubling_is_found_within_300_values():
    def make(rng, n, f, cp):
        x = rng.normal(size=(n, f))
        x[cp:] *= math.sqrt(2.0)
        return x

    d = _delays(make, 40, 2000, 4000, "cusum_scale")
    assert np.median(d) <= 300, sorted(d)


def test_normal_to_bimodal_at_equal_mean_and_variance_is_found_within_800_values():
    def make(rng, n, f, cp):
        x = rng.normal(size=(n, f))
        x[cp:] = draw("bimodal", rng, (n - cp, f))
        return x

    d = _delays(make, 40, 2000, 6000, "cusum_shape")
    assert np.median(d) <= 800, sorted(d)


@pytest.mark.parametrize("test", ["cusum_shape", "cusum_mean"])
def test_a_10_sd_level_shift_is_found_within_a_handful_of_values(test):
    def make(rng, n, f, cp):
        x = rng.normal(size=(n, f))
        x[cp:] += 10.0
        return x

    d = _delays(make, 20, 500, 600, test)
    assert max(d) <= (6 if test == "cusum_shape" else 8), d


def test_a_ten_percent_sd_change_is_caught_within_10k_values_with_a_profile():
    """The issue's "10 % sd change at equal mean caught in >= 95 % of series within 10,000
    events": N(0, 1) -> N(0, 1.1^2) against profiles of 50,000 values (the bank's
    arguments, the quantile grid), cusum_scale at the threshold ``calibrate`` gives such a
    profile at 1 false alarm per million. 60 series: at least 57 caught, none before the
    change (measured over 200: 98.5 %, median 1,930 values)."""
    from driftsentinel.detectors.calibration import calibrate, sequential_reference
    from driftsentinel.detectors.profile import build_profile, numeric_profile
    from driftsentinel.schemas import BankConfig

    rng = np.random.default_rng(11)
    S, cp, n = 60, 1000, 11_000
    profs = [numeric_profile(rng.normal(size=50_000)) for _ in range(S)]
    h = calibrate(build_profile({"x": rng.normal(size=50_000).tolist()}, source="t"), values=200_000, seed=2)
    seq = NumericSequential(SequentialConfig(tests=["cusum_scale"]), resolve_min_count=2000)
    seq.add_features(S)
    for j, prof in enumerate(profs):
        seq.set_reference(j, **sequential_reference(prof, BankConfig()))
        seq.set_thresholds(j, cusum_scale=h["x"]["cusum_scale_threshold"])
    x = rng.normal(size=(n, S))
    x[cp:] *= 1.1
    refs = [sequential_reference(p, BankConfig()) for p in profs]
    mean = np.array([p.mean for p in profs])
    std = np.array([reference_std(p.mean, p.std, *profile_percentiles(p.quantiles)) for p in profs])
    z = np.clip((x - mean) / std, [r["clip_lo"] for r in refs], [r["clip_hi"] for r in refs])
    first = np.full(S, n)
    for hit in seq.update(x, z, np.zeros(S, dtype=np.int64)):
        if hit.status == "drift":
            first[hit.feature] = min(first[hit.feature], hit.row)
    assert first.min() >= cp, first
    assert np.count_nonzero(first - cp <= 10_000) >= 57, np.sort(first - cp)


def test_changes_below_the_minimum_stay_quiet_over_200k_events():
    """A change under each minimum meaningful change, present from the first monitored
    value: the test of that kind never alarms in 200,000 events (8 features, warm-up
    references). Half the minimum for the adaptive tests (their penalty is the minimum's
    divergence); a fifth for the mean and for the scale (sd x1.02: the allowance of a
    1,000-value warm-up is about 0.096, scale_allowance; at x1.05 a feature whose warm-up
    understates its spread by two standard errors alarms every ~50,000 values): a plain CUSUM's
    statistic drifts down by the gap to the minimum, so it alarms at a rate falling
    exponentially with gap x threshold (a shift d < k at about
    exp(-2 (k - d) (h + 1.166)) per value, Siegmund: half the minimum would alarm every
    ~20,000 values)."""
    F, n = 8, 200_000
    rng = np.random.default_rng(21)
    refs = [_warm_reference(rng.normal(size=1000)) for _ in range(F)]
    cases = {
        "cusum_mean": lambda x: x + 0.1,
        "cusum_scale": lambda x: x * 1.02,
        "cusum_missing": lambda x: np.where(rng.random(x.shape) < 0.01, np.nan, x),  # 1 % -> 2 %
        "cusum_shape": lambda x: x + 0.1,
    }
    for test, change in cases.items():
        seq = _numeric(refs, SequentialConfig.model_validate({"tests": [test]}), missing_p0=0.01)
        for _ in range(0, n, 50_000):
            base = rng.normal(size=(50_000, F))
            base[rng.random(base.shape) < 0.01] = np.nan
            x = change(base)
            seq.update(x, _z(x, refs), np.zeros(F, dtype=np.int64))
        assert seq.n_alarms[test].sum() == 0, (test, seq.n_alarms[test])


def test_category_changes_below_the_minimum_stay_quiet_over_200k_values():
    """cusum_categories at its defaults: a change of the shares of KL 0.0029 nats (under a
    third of ``min_category_kl``), present from the first value, alarms at most once in
    1.6 million values (8 features x 200,000: within the 1-per-million budget; measured
    0.19 per million over 16 million values, benchmarks.sequential --categorical); the
    benchmark's shift (KL 0.041) from the same start alarms in every feature. Never-seen
    values at 0.2 % (a fifth of ``min_unseen_share``, half cusum_unseen's null
    ``UNSEEN_NULL`` x ``min_unseen_share``) never alarm."""
    p0 = np.array([0.40, 0.30, 0.15, 0.10, 0.05, 0.0])
    small = np.array([0.37, 0.30, 0.16, 0.11, 0.06])
    F, n = 8, 200_000
    rng = np.random.default_rng(22)
    seq = CategoricalSequential(SequentialConfig(), resolve_min_count=2000)
    for _ in range(2 * F):
        seq.add_feature(p0, 50_000)
    for _ in range(0, n, 50_000):
        codes = np.c_[rng.choice(5, (50_000, F), p=small), rng.choice(5, (50_000, F), p=p0[:5])]
        codes[:, F:][rng.random((50_000, F)) < 0.002] = -2
        seq.update(codes)
    assert seq.n_alarms["cusum_categories"].sum() <= 1, seq.n_alarms
    assert seq.n_alarms["cusum_unseen"].sum() == 0, seq.n_alarms
    big = CategoricalSequential(SequentialConfig(), resolve_min_count=2000)
    for _ in range(F):
        big.add_feature(p0, 50_000)
    big.update(rng.choice(5, (20_000, F), p=[0.3, 0.3, 0.2, 0.1, 0.1]))
    assert np.all(big.n_alarms["cusum_categories"] > 0), big.n_alarms


# ---------------------------------------------------------------- state
def test_state_round_trip_mid_stream_gives_identical_decisions():
    rng = np.random.default_rng(8)
    refs = [_warm_reference(rng.normal(size=1000)) for _ in range(3)]
    x = rng.normal(size=(6000, 3))
    x[2850:, 0] += 1.0
    x[3000:, 1] *= 2.0
    x[rng.random(x.shape) < np.where(np.arange(6000) < 4000, 0.01, 0.3)[:, None]] = np.nan
    z = _z(x, refs)
    first = np.zeros(3, dtype=np.int64)
    a = _numeric(refs, missing_p0=0.01, resolve_min=500)
    a.update(x[:2800], z[:2800], first)
    b = NumericSequential(SequentialConfig(), resolve_min_count=500)
    b.load_state(json.loads(json.dumps(to_builtin(a.state_dict()))))
    ha, hb = a.update(x[2800:], z[2800:], first), b.update(x[2800:], z[2800:], first)
    assert ha == hb and {h.test for h in ha} >= {"cusum_mean", "cusum_scale", "cusum_missing"}
    assert any(h.status == "resolved" for h in ha)
    c = CategoricalSequential(SequentialConfig(), resolve_min_count=100)
    c.add_feature(np.array([0.6, 0.4]), 500)
    codes = np.where(np.arange(3000)[:, None] < 1500, rng.choice([0, 1], (3000, 1), p=[0.6, 0.4]), 1)
    c.update(codes[:1600])
    d = CategoricalSequential(SequentialConfig(), resolve_min_count=100)
    d.load_state(json.loads(json.dumps(to_builtin(c.state_dict()))))
    assert c.update(codes[1600:]) == d.update(codes[1600:])
    with pytest.raises(ValueError, match="shape_bins"):
        NumericSequential(SequentialConfig(shape_bins=5), 10).load_state(a.state_dict())
    bad = {**a.state_dict(), "tail_mean": np.full(3, np.nan)}  # a NaN would silence cusum_mean
    with pytest.raises(ValueError, match="tail_mean"):
        NumericSequential(SequentialConfig(), 500).load_state(bad)
    older = {k: v for k, v in c.state_dict().items() if k != "ring"}  # before the categorical rings
    with pytest.raises(ValueError, match="no field 'ring'"):
        CategoricalSequential(SequentialConfig(), 100).load_state(older)
    with pytest.raises(ValueError, match="category_window"):
        CategoricalSequential(SequentialConfig(category_window=64), 100).load_state(c.state_dict())


def test_thresholds_and_inputs_are_checked():
    seq = NumericSequential(SequentialConfig(), resolve_min_count=10)
    seq.add_features(2)
    seq.set_thresholds(1, cusum_shape=9.0)
    assert seq.thresholds(1)["cusum_shape"] == 9.0 and seq.thresholds(0)["cusum_shape"] == 16.0
    with pytest.raises(ValueError, match="unknown sequential test 'adwin'"):
        seq.set_thresholds(0, adwin=1.0)
    with pytest.raises(ValueError, match="> 0"):
        seq.set_thresholds(0, cusum_mean=0.0)
    with pytest.raises(ValueError, match="shape"):
        seq.update(np.zeros((3, 1)), np.zeros((3, 1)), np.zeros(1, dtype=np.int64))
    # a feature without a reference is inert
    assert seq.update(np.full((5, 2), 100.0), np.full((5, 2), 100.0), np.zeros(2, dtype=np.int64)) == []
