"""The multivariate test (detectors/multivariate.py): the dependence between numeric features."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.multivariate import (
    FEATURE,
    MultivariateMonitor,
    multivariate_profile,
    normal_scores,
    reference_cdf,
)
from driftsentinel.detectors.profile import build_profile
from driftsentinel.schemas import ADWINConfig, BankConfig, FeatureBatch
from driftsentinel.schemas.config import MultivariateConfig, WindowTestConfig
from driftsentinel.schemas.profile import ReferenceProfile

D = 10
WINDOW = 5000


def _reference(x: np.ndarray) -> tuple[object, dict[str, np.ndarray]]:
    q = {f"x{j}": np.quantile(x[:, j], np.linspace(0, 1, 101)) for j in range(x.shape[1])}
    prof, why = multivariate_profile({f"x{j}": x[:, j] for j in range(x.shape[1])}, q)
    assert prof is not None, why
    return prof, q


def _monitor(prof: object, q: dict[str, np.ndarray], **cfg: float) -> MultivariateMonitor:
    return MultivariateMonitor(prof, q, MultivariateConfig(**cfg), WindowTestConfig(window_events=WINDOW))  # type: ignore[arg-type]


def _names(d: int = D) -> list[str]:
    return [f"x{j}" for j in range(d)]


def _correlate(x: np.ndarray, rho: float = 0.8) -> np.ndarray:
    x = x.copy()
    x[:, 1] = rho * x[:, 0] + np.sqrt(1 - rho**2) * x[:, 1]  # each column stays N(0, 1)
    return x


def test_correlation_change_at_unchanged_marginals_is_caught_within_two_windows() -> None:
    """0 -> 0.8 between two of 10 features, at a random phase of a window: an alert by the
    end of the next window in >= 95 % of 40 seeds, none before the change."""
    caught = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        prof, q = _reference(rng.normal(size=(10_000, D)))
        live = rng.normal(size=(3 * WINDOW, D))
        at = WINDOW + int(rng.integers(0, WINDOW))
        live[at:] = _correlate(live[at:])
        out = _monitor(prof, q).update(_names(), live, np.full(live.shape[0], np.nan))
        rows = [d.row for d in out if d.status == "drift"]
        assert all(r >= at for r in rows), f"seed {seed}: alert before the change"
        caught += any(r < (at // WINDOW + 2) * WINDOW for r in rows)
    assert caught >= 38


def test_stationary_streams_never_flag() -> None:
    """300 windows of 5,000 events of 10 unchanging features (5 normal, 5 lognormal, correlated
    through a Gaussian copula): no alert, and the effect stays far under its minimum."""
    rng = np.random.default_rng(7)
    a = rng.normal(size=(D, D))
    c = a @ a.T + D * np.eye(D)
    chol = np.linalg.cholesky(c / np.sqrt(np.outer(np.diag(c), np.diag(c))))

    def draw(n: int) -> np.ndarray:
        z = rng.normal(size=(n, D)) @ chol.T
        z[:, : D // 2] = np.exp(z[:, : D // 2])
        return z

    prof, q = _reference(draw(50_000))
    mon = _monitor(prof, q)
    flagged = 0
    for _ in range(15):  # 15 x 20 windows
        flagged += len(mon.update(_names(), draw(20 * WINDOW), np.full(20 * WINDOW, np.nan)))
    assert flagged == 0
    assert mon.last is not None and mon.last.effect < 0.02 / 4


def test_pure_marginal_shifts_are_not_this_tests_alarm() -> None:
    """A level shift (beyond the reference's range for most values) or a doubled spread of
    one feature leaves the dependence as it was: no multivariate alert (the per-feature
    tests raise those), while the same stream with a correlation does alert."""
    rng = np.random.default_rng(3)
    prof, q = _reference(rng.normal(size=(20_000, D)))
    for change in (
        lambda x: x + np.eye(D)[0] * 1.0,
        lambda x: x + np.eye(D)[0] * 10.0,
        lambda x: x * (1 + np.eye(D)[0]),
    ):
        live = change(rng.normal(size=(4 * WINDOW, D)))
        assert _monitor(prof, q).update(_names(), live, np.full(4 * WINDOW, np.nan)) == []
    live = _correlate(rng.normal(size=(2 * WINDOW, D))) + np.eye(D)[0] * 1.0
    assert [d.status for d in _monitor(prof, q).update(_names(), live, np.full(2 * WINDOW, np.nan))] == ["drift"]


def test_episode_resolves_when_the_dependence_returns() -> None:
    rng = np.random.default_rng(4)
    prof, q = _reference(rng.normal(size=(20_000, D)))
    live = rng.normal(size=(4 * WINDOW, D))
    live[: 2 * WINDOW] = _correlate(live[: 2 * WINDOW])
    out = _monitor(prof, q).update(_names(), live, np.full(4 * WINDOW, np.nan))
    assert [(d.row, d.status) for d in out] == [(WINDOW - 1, "drift"), (3 * WINDOW - 1, "resolved")]


def test_small_change_under_the_minimum_is_quiet() -> None:
    """A correlation of 0.1 (KL 0.005 nats, a quarter of min_kl) is significant in big
    windows but never flagged; at min_kl 0.001 it is."""
    rng = np.random.default_rng(5)
    prof, q = _reference(rng.normal(size=(200_000, D)))
    live = _correlate(rng.normal(size=(4 * 20_000, D)), 0.1)
    cfg = WindowTestConfig(window_events=20_000)
    quiet = MultivariateMonitor(prof, q, MultivariateConfig(), cfg)  # type: ignore[arg-type]
    assert quiet.update(_names(), live, np.full(live.shape[0], np.nan)) == []
    assert quiet.last is not None and quiet.last.p_value < 1e-6
    loud = MultivariateMonitor(prof, q, MultivariateConfig(min_kl=0.001), cfg)  # type: ignore[arg-type]
    assert [d.status for d in loud.update(_names(), live, np.full(live.shape[0], np.nan))] == ["drift"]


def test_decisions_do_not_depend_on_batch_cuts_and_state_round_trips() -> None:
    rng = np.random.default_rng(6)
    prof, q = _reference(rng.normal(size=(20_000, D)))
    live = rng.normal(size=(6 * WINDOW, D))
    live[2 * WINDOW + 1234 :] = _correlate(live[2 * WINDOW + 1234 :])
    live[rng.random(live.shape) < 0.01] = np.nan
    times = np.full(live.shape[0], np.nan)
    whole = _monitor(prof, q).update(_names(), live, times)
    assert whole
    cut = _monitor(prof, q)
    got = []
    edges = [0, 1, 777, 5000, 5001, 13_000, 20_000, 24_999, 30_000]
    for a, b in zip(edges, edges[1:], strict=False):
        if a == 13_000:  # a restart in the middle of a window
            state = cut.state_dict()
            cut = _monitor(prof, q)
            cut.load_state(state)
        got += [(a + d.row, d.status, d.statistic) for d in cut.update(_names(), live[a:b], times[a:b])]
    assert got == [(d.row, d.status, d.statistic) for d in whole]


def test_profile_section_round_trips_through_json_and_older_profiles_load() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3000, 3))
    x[:, 1] += x[:, 0]
    prof = build_profile({"a": x[:, 0].tolist(), "b": x[:, 1].tolist(), "c": x[:, 2].tolist()}, source="t")
    assert prof.multivariate is not None and prof.multivariate.n_rows == 3000
    assert ReferenceProfile.model_validate_json(prof.model_dump_json()) == prof
    assert abs(prof.multivariate.correlation[0][1] - 0.7) < 0.05
    old = prof.model_dump(mode="json")
    del old["multivariate"]
    assert ReferenceProfile.model_validate(old).multivariate is None
    bad = prof.model_dump(mode="json")
    bad["multivariate"]["correlation"][0][1] = 2.0
    with pytest.raises(ValueError, match="symmetric|positive definite"):
        ReferenceProfile.model_validate(bad)


def test_building_from_columns_with_missing_values() -> None:
    """Only rows with every selected feature present count; a sparse feature that leaves
    too few such rows is dropped; too few rows for any pair: no section, and the note says why."""
    rng = np.random.default_rng(9)
    n = 4000
    cols: dict[str, list[Any]] = {}
    for name, missing in (("a", 0.1), ("b", 0.1), ("c", 0.0), ("sparse", 0.9)):
        v = rng.normal(size=n)
        cols[name] = [None if rng.random() < missing else float(x) for x in v]
    cols["const"] = [1.0] * n
    cols["cat"] = ["u", "v"] * (n // 2)
    notes: list[str] = []
    prof = build_profile(cols, source="t", notes=notes)
    assert prof.multivariate is not None
    assert prof.multivariate.features[0] == "c" and set(prof.multivariate.features) == {"a", "b", "c"}
    complete = sum(all(cols[k][i] is not None for k in ("a", "b", "c")) for i in range(n))
    assert prof.multivariate.n_rows == complete
    assert notes == [f"multivariate: 3 features, {complete} rows"]
    few: list[str] = []
    small = build_profile({"a": cols["a"][:500], "b": cols["b"][:500]}, source="t", notes=few)
    assert small.multivariate is None and "fewer than 1000 training rows" in few[0]


def test_copies_of_a_feature_are_left_out() -> None:
    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(2, 5000))
    prof = build_profile({"a": a.tolist(), "twice": (2 * a).tolist(), "b": b.tolist()}, source="t")
    assert prof.multivariate is not None and prof.multivariate.features == ["a", "b"]


def test_normal_scores_follow_the_reference_quantiles() -> None:
    rng = np.random.default_rng(11)
    ref = rng.lognormal(size=50_000)
    q = np.quantile(ref, np.linspace(0, 1, 101))
    z = normal_scores(rng.lognormal(size=(50_000, 1)), [q])[:, 0]
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    assert np.isnan(normal_scores(np.array([[np.nan]]), [q])[0, 0])
    # a value the reference repeats scores at its mid-rank; beyond the range, clipped
    assert reference_cdf(np.array([0.0, 5.0]), np.array([0.0, 0.0, 1.0]))[0] == 0.25
    assert abs(normal_scores(np.array([[1e9]]), [q])[0, 0] - 3.29) < 0.01


def test_bank_reports_and_checkpoints_the_multivariate_test() -> None:
    """Through the DetectorBank: a DriftSignal on '@multivariate' at the window's end, its
    state in the bank's state, and a restored bank continuing the same."""
    rng = np.random.default_rng(12)
    ref = rng.normal(size=(20_000, 4))
    prof = build_profile({f"x{j}": ref[:, j].tolist() for j in range(4)}, source="t")
    cfg = BankConfig(window_tests=WindowTestConfig(window_events=WINDOW), adwin=ADWINConfig(enabled=False))
    live = rng.normal(size=(3 * WINDOW, 4))
    live[WINDOW:] = _correlate(live[WINDOW:])
    names = [f"x{j}" for j in range(4)]

    def batch(a: int, b: int) -> FeatureBatch:
        return FeatureBatch(names, live[a:b], np.arange(a, b), np.full(b - a, np.nan))

    bank = DetectorBank(cfg, prof)
    first = bank.update(batch(0, 7000))
    restored = DetectorBank.from_state(bank.state_dict(), cfg, prof)
    sigs = [s for s in first + bank.update(batch(7000, 3 * WINDOW)) if s.feature == FEATURE]
    assert [(s.row, s.detector, s.status) for s in sigs] == [(WINDOW * 2 - 1 - 7000, "multivariate", "drift")]
    assert sigs[0].statistic is not None and sigs[0].statistic > 0.4 and sigs[0].threshold == 0.02
    assert sigs[0].window.count == WINDOW and sigs[0].reference is not None
    again = [s for s in restored.update(batch(7000, 3 * WINDOW)) if s.feature == FEATURE]
    assert again == sigs
    status = {s.feature: s for s in bank.status()}[FEATURE]
    assert status.drift == {"multivariate": True}
    off = BankConfig(multivariate=MultivariateConfig(enabled=False))
    assert DetectorBank(off, prof).multivariate is None and DetectorBank(cfg).multivariate is None


def test_checkpointed_multivariate_state_is_validated() -> None:
    from driftsentinel.detectors.state_check import StateRejected, check_bank_state

    rng = np.random.default_rng(13)
    ref = rng.normal(size=(5000, 3))
    prof = build_profile({f"x{j}": ref[:, j].tolist() for j in range(3)}, source="t")
    cfg = BankConfig()
    bank = DetectorBank(cfg, prof)
    bank.update(FeatureBatch(_names(3), rng.normal(size=(700, 3)), np.arange(700), np.full(700, np.nan)))
    template = DetectorBank(cfg, prof).state_dict()
    state = bank.state_dict()
    check_bank_state(state, template, 100, cfg.window_size, "bank")
    for key, bad in (("cross", np.zeros((4, 4))), ("features", ["x0", "x1"]), ("active", 1), ("complete", 10**6)):
        tampered = {**state, "multivariate": {**state["multivariate"], key: bad}}
        with pytest.raises(StateRejected):
            check_bank_state(tampered, template, 100, cfg.window_size, "bank")
