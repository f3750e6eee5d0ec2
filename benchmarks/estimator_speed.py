"""Events/s through the performance estimator alone: ``python -m benchmarks.estimator_speed``.

Prints ONE JSON object. For each task -- ``binary`` (CBPE, one score column),
``multiclass_3`` and ``multiclass_10`` (CBPE, per-class scores), ``regression`` (DLE,
8 numeric features with 10 % missing, two loss models of 100 trees of at most 31 leaves)
-- a reference is fitted on synthetic data, then a fresh :class:`PerformanceEstimator`
is fed ``--rows`` rows of model outputs (no labels, no Kafka, no decoding) in batches of
``--batch`` rows with windows of ``--window`` rows. One untimed pass first (numba's
compilation or on-disk cache), then passes are repeated until ``--min-seconds`` have
gone by, at most ``--max-repeats`` and at least 3 (bounded in count and time).

Per task: ``events_per_s`` (median wall clock), ``events_per_s_best`` (best pass),
``events_per_cpu_s`` (median process CPU time: fairer on a shared machine), the number
of passes and the fit time (the regressor's on one thread). ``load_avg`` is the 1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

N_FEATURES = 8
MIN_REPEATS = 3

Feed = Callable[[Any, int, int], object]


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _classification(
    k: int, n_ref: int, n_stream: int, window: int, rng: np.random.Generator
) -> tuple[Any, Feed, dict[str, Any]]:
    from driftsentinel.detectors.performance import PerformanceEstimator, fit_classification_reference

    n = n_ref + n_stream
    if k == 2:
        scores = rng.beta(2.0, 2.0, n)
        labels = (rng.random(n) < scores).astype(np.int64)
    else:
        scores = _softmax(rng.normal(size=(n, k)) * 2.0)
        labels = (scores[:, :, None].cumsum(axis=1) < rng.random(n)[:, None, None]).sum(axis=1).ravel()
        labels = np.minimum(labels, k - 1)
    ref = fit_classification_reference(scores[:n_ref], labels[:n_ref], window=window)
    model = PerformanceEstimator(ref).model
    stream = scores[n_ref:]

    def feed(est: Any, s: int, e: int) -> object:
        return est.update(scores=stream[s:e])

    return model, feed, {"classes": k}


def _regression(n_ref: int, n_stream: int, window: int, rng: np.random.Generator) -> tuple[Any, Feed, dict[str, Any]]:
    from driftsentinel.detectors.performance import PerformanceEstimator, fit_regression_reference

    n = n_ref + n_stream
    x = rng.normal(size=(n, N_FEATURES))
    x[n_ref:, :2] += 0.5  # a covariate shift in the stream
    y_hat = x @ np.linspace(1.0, 0.2, N_FEATURES)
    y = y_hat + rng.normal(size=n) * (0.5 + np.abs(x[:, 0]) + (x[:, 3] > 1.0))
    x[rng.random(x.shape) < 0.1] = np.nan
    names = [f"f{j}" for j in range(N_FEATURES)]
    import sklearn.ensemble  # noqa: F401 - loaded first, so the thread limit below reaches its OpenMP runtime
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # OpenMP threads on a busy shared machine make the fit ~30x slower
        ref = fit_regression_reference(x[:n_ref], y_hat[:n_ref], y[:n_ref], feature_names=names, window=window)
    assert ref.regression is not None
    loss_models = (ref.regression.abs_error_model, ref.regression.sq_error_model)
    info = {"features": N_FEATURES, "trees": [len(m.trees) for m in loss_models]}
    model = PerformanceEstimator(ref).model
    xs, ps = x[n_ref:], y_hat[n_ref:]

    def feed(est: Any, s: int, e: int) -> object:
        return est.update(features=xs[s:e], predictions=ps[s:e])

    return model, feed, info


def timed_repeats(
    one_pass: Callable[[], tuple[float, float]], min_seconds: float, max_repeats: int, min_repeats: int = MIN_REPEATS
) -> tuple[list[float], list[float]]:
    """Call ``one_pass`` (which returns its wall and CPU seconds) at least ``min_repeats``
    times and until ``min_seconds`` have passed, at most ``max_repeats`` times; the walls and
    CPU times of the calls."""
    walls: list[float] = []
    cpus: list[float] = []
    start = time.perf_counter()
    while len(walls) < max_repeats and (len(walls) < min_repeats or time.perf_counter() - start < min_seconds):
        wall, cpu = one_pass()
        walls.append(wall)
        cpus.append(cpu)
    return walls, cpus


def time_task(model: Any, feed: Feed, rows: int, batch: int, min_seconds: float, max_repeats: int) -> dict[str, Any]:
    """Feed ``rows`` rows in batches to fresh estimators until the time or repeat bound; events/s."""
    from driftsentinel.detectors.performance import PerformanceEstimator

    def one_pass() -> tuple[float, float]:
        est = PerformanceEstimator(model)
        w0, c0 = time.perf_counter(), time.process_time()
        for s in range(0, rows, batch):
            feed(est, s, min(s + batch, rows))
        return time.perf_counter() - w0, time.process_time() - c0

    one_pass()  # compile / load numba's cache, warm the caches
    walls, cpus = timed_repeats(one_pass, min_seconds, max_repeats)
    cpu_med = statistics.median(cpus)
    return {
        "events_per_s": rows / statistics.median(walls),
        "events_per_s_best": rows / min(walls),
        "events_per_cpu_s": rows / cpu_med if cpu_med > 0 else None,
        "repeats": len(walls),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=100_000, help="stream rows per timed pass (default 100,000)")
    ap.add_argument("--batch", type=int, default=10_000, help="rows per update() call (default 10,000)")
    ap.add_argument("--window", type=int, default=5_000, help="rows per window (default 5,000)")
    ap.add_argument("--reference-rows", type=int, default=20_000, help="rows the reference is fitted on")
    ap.add_argument("--min-seconds", type=float, default=3.0, help="time each task at least this long (default 3)")
    ap.add_argument("--max-repeats", type=int, default=20, help="at most this many timed passes (default 20)")
    ap.add_argument(
        "--tasks",
        default="binary,multiclass_3,multiclass_10,regression",
        help="comma-separated subset of binary, multiclass_3, multiclass_10, regression",
    )
    args = ap.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    known = {"binary", "multiclass_3", "multiclass_10", "regression"}
    bad = [t for t in tasks if t not in known]
    if bad or not tasks:
        print(
            f"estimator_speed: unknown task {bad[0] if bad else '(none)'}; choose from {sorted(known)}", file=sys.stderr
        )
        return 2
    for name in ("rows", "batch", "window", "max_repeats"):
        if getattr(args, name) < 1:
            print(f"estimator_speed: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    if args.reference_rows < 2 * args.window:
        print("estimator_speed: --reference-rows must hold at least 2 windows", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_before": os.getloadavg()[0],
        "rows": args.rows,
        "batch": args.batch,
        "window": args.window,
        "tasks": {},
    }
    for task in tasks:
        t0 = time.perf_counter()
        if task == "regression":
            model, feed, info = _regression(args.reference_rows, args.rows, args.window, rng)
        else:
            k = 2 if task == "binary" else int(task.split("_")[1])
            model, feed, info = _classification(k, args.reference_rows, args.rows, args.window, rng)
        fit_s = time.perf_counter() - t0
        result = time_task(model, feed, args.rows, args.batch, args.min_seconds, args.max_repeats)
        out["tasks"][task] = {**result, "fit_s": fit_s, **info}
    out["load_avg_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
