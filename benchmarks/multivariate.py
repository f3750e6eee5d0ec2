"""Multivariate drift: the Gaussian-copula correlation test vs PCA reconstruction error.

``python -m benchmarks.multivariate [--seeds N] [--stationary-windows N]`` prints ONE JSON object.

Two tests, per window of ``--window`` events, against the same reference sample
(``--reference-size`` rows drawn like the stream before any change):

* ``copula`` — :class:`driftsentinel.detectors.multivariate.MultivariateMonitor` at its
  defaults, with the profile section :func:`multivariate_profile` builds from the sample;
* ``pca`` — NannyML's ``DataReconstructionDriftCalculator`` as it computes (numpy, no
  NannyML import): features standardised by the reference, PCA keeping the components that
  explain 65 % of the variance, per row the Euclidean norm of the reconstruction error, per
  window its mean; a window alerts outside mean +- 3 std of the reference's windows.

Scenarios (10 features each; ``--seeds`` streams per change scenario):

* ``correlation``: 10 independent N(0, 1); after 2 windows, at a random phase of the third,
  features 0 and 1 become correlated 0.8, marginals unchanged. Caught = an alert in the
  window holding the change or the next one; alerts before the change are false alarms;
* ``correlation_lognormal``: the same with lognormal marginals (exp of the normals);
* ``mean_shift`` / ``scale_change``: feature 0 shifts by 1 sd / its sd doubles (no change of
  dependence): how each test reacts;
* ``stationary_normal``, ``stationary_lognormal``, ``stationary_correlated``: no change,
  ``--stationary-windows`` windows per seed (5 seeds): every alert is a false alarm.
  ``stationary_correlated`` draws a random correlation matrix (Gaussian copula, half the
  marginals lognormal).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from driftsentinel.detectors.multivariate import MultivariateMonitor, multivariate_profile
from driftsentinel.schemas.config import MultivariateConfig, WindowTestConfig

D = 10


class PCAReconstruction:
    """NannyML's data reconstruction drift, as its calculator computes it (numeric features)."""

    def __init__(self, ref: np.ndarray, window: int, explained: float = 0.65) -> None:
        self.mean = ref.mean(axis=0)
        self.std = ref.std(axis=0)
        s = (ref - self.mean) / self.std
        _, sv, vt = np.linalg.svd(s - s.mean(axis=0), full_matrices=False)
        ratio = np.cumsum(sv**2) / np.sum(sv**2)
        k = int(np.searchsorted(ratio, explained, side="right")) + 1
        self.components = vt[:k]
        errs = [self.error(ref[a : a + window]) for a in range(0, ref.shape[0] - window + 1, window)]
        self.upper = float(np.mean(errs) + 3 * np.std(errs, ddof=1))
        self.lower = float(np.mean(errs) - 3 * np.std(errs, ddof=1))

    def error(self, x: np.ndarray) -> float:
        s = (x - self.mean) / self.std
        rec = (s @ self.components.T) @ self.components
        return float(np.linalg.norm(s - rec, axis=1).mean())

    def alerts(self, x: np.ndarray, window: int) -> list[int]:
        """Indices of the windows of ``x`` that alert."""
        out = []
        for w, a in enumerate(range(0, x.shape[0] - window + 1, window)):
            e = self.error(x[a : a + window])
            if e > self.upper or e < self.lower:
                out.append(w)
        return out


def copula_alerts(prof: Any, q: dict[str, np.ndarray], x: np.ndarray, window: int) -> list[int]:
    """Windows of ``x`` in which the multivariate test opens an episode (drift decisions)."""
    mon = MultivariateMonitor(prof, q, MultivariateConfig(), WindowTestConfig(window_events=window))
    names = [f"x{j}" for j in range(x.shape[1])]
    out: list[int] = []
    for a in range(0, x.shape[0], 50 * window):  # bounded memory per call
        for d in mon.update(names, x[a : a + 50 * window], np.full(min(50 * window, x.shape[0] - a), np.nan)):
            if d.status == "drift":
                out.append((a + d.row) // window)
    return out


def _profile(ref: np.ndarray) -> tuple[Any, dict[str, np.ndarray]]:
    q = {f"x{j}": np.quantile(ref[:, j], np.linspace(0, 1, 101)) for j in range(ref.shape[1])}
    prof, why = multivariate_profile({f"x{j}": ref[:, j] for j in range(ref.shape[1])}, q)
    if prof is None:
        raise SystemExit(why)
    return prof, q


def _correlated(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    z = rng.normal(size=(n, D))
    z[:, 1] = rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]
    return z


def change_scenario(
    name: str, seeds: int, window: int, ref_size: int, change: Callable[[np.ndarray, np.random.Generator], np.ndarray]
) -> dict[str, Any]:
    """Detection within the window of the change or the next, and false alarms before it."""
    res: dict[str, dict[str, int]] = {m: {"caught": 0, "false_alarms": 0} for m in ("copula", "pca")}
    lognormal = name.endswith("lognormal")
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        ref = rng.normal(size=(ref_size, D))
        live = rng.normal(size=(5 * window, D))
        at = 2 * window + int(rng.integers(0, window))
        live[at:] = change(live[at:], rng)
        if lognormal:
            ref, live = np.exp(ref), np.exp(live)
        prof, q = _profile(ref)
        pca = PCAReconstruction(ref, window)
        change_window = at // window
        for method, wins in (("copula", copula_alerts(prof, q, live, window)), ("pca", pca.alerts(live, window))):
            res[method]["false_alarms"] += sum(w < change_window for w in wins)
            res[method]["caught"] += any(change_window <= w <= change_window + 1 for w in wins)
    return {"seeds": seeds, **res}


def stationary_scenario(name: str, seeds: int, windows: int, window: int, ref_size: int) -> dict[str, Any]:
    """False alarms over ``windows`` windows per seed of an unchanging stream."""
    res = {m: {"windows": 0, "false_alarms": 0} for m in ("copula", "pca")}
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        chol: np.ndarray = np.eye(D)
        if name == "stationary_correlated":
            a = rng.normal(size=(D, D))
            c = a @ a.T + D * np.eye(D)
            chol = np.linalg.cholesky(c / np.sqrt(np.outer(np.diag(c), np.diag(c))))
        logn = name != "stationary_normal"

        def draw(n: int, chol: np.ndarray = chol, logn: bool = logn, rng: np.random.Generator = rng) -> np.ndarray:
            z = rng.normal(size=(n, D)) @ chol.T
            if logn:
                z[:, : D // 2] = np.exp(z[:, : D // 2])
            return z

        ref = draw(ref_size)
        prof, q = _profile(ref)
        pca = PCAReconstruction(ref, window)
        mon = MultivariateMonitor(prof, q, MultivariateConfig(), WindowTestConfig(window_events=window))
        names = [f"x{j}" for j in range(D)]
        for _ in range(0, windows, 20):  # 20 windows per draw: bounded memory
            x = draw(20 * window)
            res["copula"]["false_alarms"] += sum(
                d.status == "drift" for d in mon.update(names, x, np.full(x.shape[0], np.nan))
            )
            res["pca"]["false_alarms"] += len(pca.alerts(x, window))
            res["copula"]["windows"] += 20
            res["pca"]["windows"] += 20
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--stationary-windows", type=int, default=200)
    ap.add_argument("--window", type=int, default=5000)
    ap.add_argument("--reference-size", type=int, default=100_000)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    w, m = args.window, args.reference_size

    def corr(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = x.copy()
        x[:, 1] = 0.8 * x[:, 0] + 0.6 * x[:, 1]
        return x

    def shift(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = x.copy()
        x[:, 0] += 1.0
        return x

    def scale(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = x.copy()
        x[:, 0] *= 2.0
        return x

    out: dict[str, Any] = {"window": w, "reference_size": m, "features": D}
    for name, fn in (
        ("correlation", corr),
        ("correlation_lognormal", corr),
        ("mean_shift", shift),
        ("scale_change", scale),
    ):
        out[name] = change_scenario(name, args.seeds, w, m, fn)
    for name in ("stationary_normal", "stationary_lognormal", "stationary_correlated"):
        out[name] = stationary_scenario(name, 5, args.stationary_windows, w, m)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
