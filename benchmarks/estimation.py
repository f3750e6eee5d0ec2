"""Performance estimation before labels, driftsentinel vs NannyML: ``python -m benchmarks.estimation``.

Prints ONE JSON object. On NannyML's own example datasets (``benchmarks.nannyml_data``:
``car_loan`` binary, ``mc`` multiclass, ``car_price`` regression, from the nannyml 0.13.1
wheel), in the same run and on the same 5,000-row chunks of the analysis period:

* **driftsentinel** (``driftsentinel.detectors.performance``): a reference fitted on the
  reference period (CBPE for classifiers, DLE for regressors), then a
  :class:`PerformanceEstimator` fed each chunk's model outputs (scores and predictions;
  for the regressor, features and predictions) without targets, estimating every metric;
  a chunk alerts when an estimate leaves the reference's band;
* **NannyML** (``CBPE`` / ``DLE`` at their defaults, ``chunk_size`` 5,000), run by
  ``benchmarks/_nannyml_run.py`` in a separate venv (NannyML needs pandas < 3):
  ``$DRIFTSENTINEL_CACHE_DIR/nannyml-venv`` (default ``~/.cache/driftsentinel/nannyml-venv``),
  created on first use with ``python3.11 -m venv`` and ``pip install nannyml==0.13.1
  'pandas<3' statsmodels`` (nannyml imports statsmodels without declaring it);
  ``--nannyml-python`` names another interpreter that has nannyml.

For each dataset and metric: the realized metric per chunk (from the analysis targets,
scikit-learn's metrics: multiclass ones macro-averaged, ROC AUC one-vs-rest), each
estimator's per-chunk estimate, the mean absolute error of the estimates against the
realized values (and relative to the mean realized value), the chunks each estimator
alerts on and whether they agree. NannyML's own realized values are compared with ours
(``realized_max_abs_diff``), so both sides are graded against the same truth.

Timing: the fit of each; the estimator alone (``update`` + ``estimate`` per chunk, no
Kafka, no decoding) over the whole analysis period, repeated ``--min-seconds`` long (at
most ``--max-repeats``), as events/s by wall clock and per CPU second; NannyML's
``estimate`` on the same rows, and the ratio of the two. ``goals`` says which of issue
20's goals this run meets. Exit code 2 with one line on stderr when the data or NannyML
cannot be had.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import nannyml_data
from benchmarks.estimator_speed import timed_repeats
from benchmarks.nannyml_data import Dataset, DataUnavailable, Encoding

CHUNK = 5000
NANNYML_REQUIREMENTS = ("nannyml==0.13.1", "pandas<3", "statsmodels")
NANNYML_PYTHON = "python3.11"  # nannyml 0.13.1 requires Python < 3.13
VENV_TIMEOUT_S = 1800.0
RUN_TIMEOUT_S = 1800.0
# issue 20: the estimator alone, apart from Kafka (the error goals are NannyML's own, measured in the same run)
GOAL_EVENTS_PER_S = 200_000
# "no worse" up to float summation order: the same estimate computed by two programs can
# differ in the 10th digit (both CBPEs on car_loan: 0.0021153695 vs 0.0021153691)
NO_WORSE_RTOL = 1e-6


class BenchError(RuntimeError):
    """Something this benchmark needs is missing; the message says what to do."""


# ---------------------------------------------------------------------------- realized metrics
def realized_metrics(
    kind: str,
    targets: np.ndarray,
    *,
    scores: np.ndarray | None = None,
    predicted: np.ndarray | None = None,
    classes: tuple[str, ...] = (),
    metrics: tuple[str, ...],
) -> dict[str, float]:
    """The metrics of one chunk from its targets (scikit-learn), NaN where undefined.

    Binary: positive class 1, ``scores`` the positive class's. Multiclass: macro averages,
    ROC AUC one-vs-rest over ``classes`` (``scores`` columns in that order). Regression:
    ``predicted`` against ``targets``.
    """
    from sklearn import metrics as skm  # type: ignore[import-untyped,unused-ignore]

    out: dict[str, float] = {}
    if kind == "regression":
        assert predicted is not None
        y, p = targets.astype(np.float64), predicted.astype(np.float64)
        err = y - p
        for m in metrics:
            if m == "mae":
                out[m] = float(np.mean(np.abs(err)))
            elif m == "mse":
                out[m] = float(np.mean(err**2))
            elif m == "rmse":
                out[m] = float(np.sqrt(np.mean(err**2)))
            elif m == "mape":
                out[m] = float(skm.mean_absolute_percentage_error(y, p))
            elif m == "msle":
                out[m] = float(np.mean((np.log1p(y) - np.log1p(p)) ** 2))
            elif m == "rmsle":
                out[m] = float(np.sqrt(np.mean((np.log1p(y) - np.log1p(p)) ** 2)))
            else:
                raise ValueError(f"no realized regression metric {m!r}")
        return out
    assert predicted is not None and scores is not None
    if kind == "binary":
        y = targets.astype(np.int64)
        yp = predicted.astype(np.int64)
        avg: dict[str, Any] = {"average": "binary", "pos_label": 1, "zero_division": np.nan}
        labels: list[Any] = [0, 1]
    else:
        y, yp = targets.astype(str), predicted.astype(str)
        avg = {"average": "macro", "labels": list(classes), "zero_division": np.nan}
        labels = list(classes)
    for m in metrics:
        if m == "roc_auc":
            if len(np.unique(y)) < 2:
                out[m] = float("nan")
            elif kind == "binary":
                out[m] = float(skm.roc_auc_score(y, scores))
            else:
                # one-vs-rest per class, then the plain mean (NannyML's and sklearn's "ovr" macro;
                # sklearn's own multiclass path also demands rows summing to 1, which rounded
                # scores do not)
                per_class = [
                    float(skm.roc_auc_score(y == c, scores[:, j])) if 0 < np.sum(y == c) < len(y) else float("nan")
                    for j, c in enumerate(labels)
                ]
                out[m] = float(np.mean(per_class))
        elif m == "accuracy":
            out[m] = float(skm.accuracy_score(y, yp))
        elif m == "precision":
            out[m] = float(skm.precision_score(y, yp, **avg))
        elif m == "recall":
            out[m] = float(skm.recall_score(y, yp, **avg))
        elif m == "f1":
            out[m] = float(skm.f1_score(y, yp, **avg))
        else:
            raise ValueError(f"no realized classification metric {m!r}")
    return out


def chunk_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """``[start, end)`` of consecutive chunks of ``size`` rows; a short last chunk is kept (NannyML's default)."""
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def realized_per_chunk(ds: Dataset, bounds: list[tuple[int, int]], metrics: tuple[str, ...]) -> dict[str, list[float]]:
    """Each metric's realized value per chunk of the analysis period."""
    spec, a = ds.spec, ds.analysis
    scores = None if spec.kind == "regression" else ds.scores("analysis")
    rows = [
        realized_metrics(
            spec.kind,
            a[spec.target][s:e],
            scores=None if scores is None else scores[s:e],
            predicted=a[spec.prediction][s:e],
            classes=spec.classes,
            metrics=metrics,
        )
        for s, e in bounds
    ]
    return {m: [r[m] for r in rows] for m in metrics}


# ---------------------------------------------------------------------------- driftsentinel
@dataclass
class DriftsentinelRun:
    """driftsentinel's estimates per chunk, its bands, fit time and throughput."""

    estimates: dict[str, list[float]]
    bands: dict[str, tuple[float | None, float | None]]
    reference_values: dict[str, float]
    fit_wall_s: float
    fit_cpu_s: float
    throughput: dict[str, Any]


Feed = Callable[[Any, int, int], list[Any]]


def fit_driftsentinel(ds: Dataset, window: int, categorical: Encoding = "onehot") -> tuple[Any, Feed]:
    """The reference fitted on ``ds``'s reference period, and ``feed(estimator, start, end)``.

    ``feed`` gives the estimator the analysis rows ``[start, end)`` as a model's outputs
    arrive (no targets) and returns the windows it closed.
    """
    from driftsentinel.detectors import performance as perf

    spec = ds.spec
    ref_cols, a = ds.reference, ds.analysis
    if spec.kind == "regression":
        x_ref, names = ds.features("reference", categorical)
        ref = perf.fit_regression_reference(
            x_ref, ref_cols[spec.prediction], ref_cols[spec.target], feature_names=names, window=window
        )
        x_an = np.ascontiguousarray(ds.features("analysis", categorical)[0])
        pred = np.ascontiguousarray(a[spec.prediction], dtype=np.float64)

        def feed(est: Any, s: int, e: int) -> list[Any]:
            return list(est.update(features=x_an[s:e], predictions=pred[s:e]))

        return ref, feed
    if spec.kind == "binary":
        ref = perf.fit_classification_reference(
            ref_cols[spec.score_columns[0]],
            ref_cols[spec.target].astype(np.int64),
            window=window,
            predicted=ref_cols[spec.prediction].astype(np.int64),
        )
        sc = np.ascontiguousarray(a[spec.score_columns[0]], dtype=np.float64)
        yp = np.ascontiguousarray(a[spec.prediction]).astype(np.int64)
    else:
        ref = perf.fit_classification_reference(
            ds.scores("reference"),
            ref_cols[spec.target],
            classes=list(spec.classes),
            window=window,
            predicted=ref_cols[spec.prediction],
        )
        sc = np.ascontiguousarray(ds.scores("analysis"))
        yp = np.ascontiguousarray(a[spec.prediction])

    def feed_c(est: Any, s: int, e: int) -> list[Any]:
        return list(est.update(scores=sc[s:e], predicted=yp[s:e]))

    return ref, feed_c


def estimate_windows(model: Any, feed: Feed, n: int, batch: int) -> list[dict[str, float]]:
    """One estimator over rows ``[0, n)`` in batches of ``batch``: the estimate of each window.

    A last, short window is estimated as it stands (NannyML keeps an incomplete last chunk).
    """
    from driftsentinel.detectors.performance import PerformanceEstimator

    est = PerformanceEstimator(model)
    out: list[dict[str, float]] = []
    for s in range(0, n, batch):
        out.extend(w.estimated for w in feed(est, s, min(s + batch, n)))
    if est.rows_in_window:
        out.append(est.estimate())
    return out


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def run_driftsentinel(
    ds: Dataset, window: int, *, batch: int, min_seconds: float, max_repeats: int, categorical: Encoding = "onehot"
) -> DriftsentinelRun:
    """Fit, estimate every window of the analysis period, and time the estimator alone (bounded repeats)."""
    from driftsentinel.detectors.performance import PerformanceEstimator, ReferenceModel

    w0, c0 = time.perf_counter(), time.process_time()
    ref, feed = fit_driftsentinel(ds, window, categorical)
    model = ReferenceModel(ref)  # compiled once, as the engine does per model
    fit_wall, fit_cpu = time.perf_counter() - w0, time.process_time() - c0

    n = len(ds.analysis[ds.spec.id_column])
    per_window = estimate_windows(model, feed, n, batch)  # also warms the numba kernels before timing
    probe = PerformanceEstimator(model)
    metrics = list(probe.metrics)
    estimates = {m: [float(r[m]) for r in per_window] for m in metrics}
    bands = {m: (_finite_or_none(probe.band(m)[0]), _finite_or_none(probe.band(m)[1])) for m in metrics}
    reference_values = {m: float(probe.reference_value(m)) for m in metrics}

    def one_pass() -> tuple[float, float]:
        w, c = time.perf_counter(), time.process_time()
        estimate_windows(model, feed, n, batch)
        return time.perf_counter() - w, time.process_time() - c

    walls, cpus = timed_repeats(one_pass, min_seconds, max_repeats, min_repeats=1)
    wall_med, cpu_med = statistics.median(walls), statistics.median(cpus)
    throughput = {
        "rows": n,
        "batch": batch,
        "repeats": len(walls),
        "wall_s_median": wall_med,
        "cpu_s_median": cpu_med,
        "events_per_s": n / wall_med,
        "events_per_s_best": n / min(walls),
        "events_per_cpu_s": n / cpu_med if cpu_med > 0 else None,
        "us_per_event": 1e6 * wall_med / n,
    }
    return DriftsentinelRun(estimates, bands, reference_values, fit_wall, fit_cpu, throughput)


# ---------------------------------------------------------------------------- NannyML
def nannyml_venv_dir() -> Path:
    """Where NannyML's venv lives (the cache, never the repository)."""
    return nannyml_data.cache_root() / "nannyml-venv"


def ensure_nannyml_python() -> str:
    """The python of NannyML's venv, created (once, minutes) when it is missing or incomplete."""
    venv = nannyml_venv_dir()
    py = venv / "bin" / "python"
    marker = venv / ".driftsentinel-ready"
    check = [str(py), "-c", "import nannyml, pandas; assert nannyml.__version__ == '0.13.1', nannyml.__version__"]
    if py.is_file() and marker.is_file():
        return str(py)
    if py.is_file() and subprocess.run(check, capture_output=True, timeout=300, check=False).returncode == 0:
        marker.write_text(" ".join(NANNYML_REQUIREMENTS) + "\n")
        return str(py)
    base = shutil.which(NANNYML_PYTHON)
    if base is None:
        raise BenchError(
            f"NannyML's venv needs {NANNYML_PYTHON} (nannyml 0.13.1 supports Python < 3.13): install it, "
            "or pass --nannyml-python PATH (a python with nannyml==0.13.1), or --no-nannyml"
        )
    print(f"creating NannyML's venv at {venv} (once; takes minutes)", file=sys.stderr, flush=True)
    if venv.exists():
        shutil.rmtree(venv)
    steps = [
        [base, "-m", "venv", str(venv)],
        [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *NANNYML_REQUIREMENTS],
        check,
    ]
    deadline = time.monotonic() + VENV_TIMEOUT_S
    for cmd in steps:
        left = deadline - time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(left, 1.0), check=False)
        except subprocess.TimeoutExpired:
            raise BenchError(f"creating NannyML's venv took over {VENV_TIMEOUT_S:.0f} s ({cmd[2]}): retry") from None
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
            raise BenchError(
                f"creating NannyML's venv failed at `{' '.join(cmd[1:4])}`: {lines[-1] if lines else proc.returncode}"
            )
    marker.write_text(" ".join(NANNYML_REQUIREMENTS) + "\n")
    return str(py)


def nannyml_job(datasets: list[Dataset], metrics: dict[str, tuple[str, ...]], chunk: int) -> dict[str, Any]:
    """The runner's argument: CSV paths and column names per dataset."""
    job: dict[str, Any] = {"chunk_size": chunk, "datasets": {}}
    for ds in datasets:
        spec = ds.spec
        job["datasets"][spec.name] = {
            "kind": spec.kind,
            "reference": str(nannyml_data.csv_path(spec.reference_csv)),
            "analysis": str(nannyml_data.csv_path(spec.analysis_csv)),
            "targets": str(nannyml_data.csv_path(spec.targets_csv)),
            "target": spec.target,
            "prediction": spec.prediction,
            "scores": {"": spec.score_columns[0]}
            if spec.kind == "binary"
            else dict(zip(spec.classes, spec.score_columns, strict=True)),
            "features": list(spec.features),
            "metrics": list(metrics[spec.name]),
        }
    return job


def run_nannyml(python: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run ``_nannyml_run.py`` with NannyML's python: its JSON, plus the wall time of the whole child."""
    script = Path(__file__).with_name("_nannyml_run.py")
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}  # no usage analytics sent during the benchmark
    w = time.perf_counter()
    try:
        proc = subprocess.run(
            [python, str(script), json.dumps(job)],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"NannyML's run took over {RUN_TIMEOUT_S:.0f} s") from None
    except OSError as e:
        raise BenchError(f"cannot run NannyML's python {python}: {e}") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise BenchError(f"NannyML's run failed: {lines[-1] if lines else f'exit code {proc.returncode}'}")
    try:
        out: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise BenchError("NannyML's run printed no JSON object on stdout") from None
    out["process_wall_s"] = time.perf_counter() - w
    return out


# ---------------------------------------------------------------------------- comparison
def _mae(est: list[float | None], real: list[float]) -> float | None:
    pairs = [(e, r) for e, r in zip(est, real, strict=True) if e is not None and np.isfinite(e) and np.isfinite(r)]
    if not pairs:
        return None
    return float(np.mean([abs(e - r) for e, r in pairs]))


def _alerts_from_band(est: list[float], band: tuple[float | None, float | None]) -> list[int]:
    lo, hi = band
    return [
        i for i, v in enumerate(est) if np.isfinite(v) and ((lo is not None and v < lo) or (hi is not None and v > hi))
    ]


def compare(
    ds: Dataset,
    bounds: list[tuple[int, int]],
    realized: dict[str, list[float]],
    ours: DriftsentinelRun | None,
    theirs: dict[str, Any] | None,
) -> dict[str, Any]:
    """Per metric: both estimators' errors against the realized values, and their alerts."""
    out: dict[str, Any] = {}
    for m, real in realized.items():
        mean_real = float(np.nanmean(real))
        row: dict[str, Any] = {"realized": real, "realized_mean": mean_real}
        if ours is not None and m in ours.estimates:
            est = ours.estimates[m]
            mae = _mae(list(est), real)
            row["driftsentinel"] = {
                "estimates": est,
                "mae": mae,
                "relative_mae": None if mae is None else mae / abs(mean_real),
                "reference_value": ours.reference_values[m],
                "band": list(ours.bands[m]),
                "alert_chunks": _alerts_from_band(est, ours.bands[m]),
            }
        if theirs is not None and m in theirs["metrics"]:
            rows = theirs["metrics"][m]
            if [(r["start"], r["end"]) for r in rows] != bounds:
                raise BenchError(
                    f"NannyML's chunks of {ds.name} differ from ours: {[(r['start'], r['end']) for r in rows]}"
                )
            est_n = [r["estimate"] for r in rows]
            mae_n = _mae(est_n, real)
            their_real = [r["realized"] for r in rows]
            diffs = [abs(a - b) for a, b in zip(their_real, real, strict=True) if a is not None and np.isfinite(b)]
            row["nannyml"] = {
                "estimates": est_n,
                "mae": mae_n,
                "relative_mae": None if mae_n is None else mae_n / abs(mean_real),
                "thresholds": [rows[0]["lower_threshold"], rows[0]["upper_threshold"]],
                "alert_chunks": [i for i, r in enumerate(rows) if r["alert"]],
                "realized_max_abs_diff": max(diffs) if diffs else None,
            }
        if "driftsentinel" in row and "nannyml" in row:
            a, b = row["driftsentinel"]["mae"], row["nannyml"]["mae"]
            row["mae_ratio"] = None if a is None or not b else a / b
            row["no_worse"] = a is not None and b is not None and a <= b * (1.0 + NO_WORSE_RTOL)
            row["same_alerts"] = row["driftsentinel"]["alert_chunks"] == row["nannyml"]["alert_chunks"]
        out[m] = row
    return out


def goals(out: dict[str, Any]) -> dict[str, Any]:
    """Issue 20's goals, judged on this run's numbers."""
    g: dict[str, Any] = {}
    for name, d in out["datasets"].items():
        for m, row in d["metrics"].items():
            if "no_worse" in row:
                g[f"{name}.{m}.error_no_worse_than_nannyml"] = {
                    "driftsentinel": row["driftsentinel"]["mae"],
                    "nannyml": row["nannyml"]["mae"],
                    "pass": row["no_worse"],
                }
                g[f"{name}.{m}.same_alert_chunks"] = {
                    "driftsentinel": row["driftsentinel"]["alert_chunks"],
                    "nannyml": row["nannyml"]["alert_chunks"],
                    "pass": row["same_alerts"],
                }
        tp = d.get("timing", {}).get("driftsentinel", {}).get("throughput")
        if tp:
            g[f"{name}.estimator_events_per_s"] = {
                "value": tp["events_per_s"],
                "goal": GOAL_EVENTS_PER_S,
                "pass": tp["events_per_s"] >= GOAL_EVENTS_PER_S,
            }
    g["all_pass"] = all(v["pass"] for v in g.values())
    return g


# ---------------------------------------------------------------------------- main
def _metrics_for(kind: str) -> tuple[str, ...]:
    from driftsentinel.schemas.profile import CLASSIFICATION_METRICS, REGRESSION_METRICS

    return tuple(REGRESSION_METRICS) if kind == "regression" else tuple(CLASSIFICATION_METRICS)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--datasets", default=",".join(nannyml_data.SPECS), help=f"comma-separated, of {', '.join(nannyml_data.SPECS)}"
    )
    p.add_argument("--chunk-size", type=int, default=CHUNK, help="rows per chunk (default 5,000)")
    p.add_argument(
        "--batch", type=int, default=4096, help="rows per update() call (default 4,096: the sidecar's batch)"
    )
    p.add_argument(
        "--categorical",
        choices=nannyml_data.ENCODINGS,
        default="onehot",
        help="how the regressor's string features reach driftsentinel's DLE, which takes numbers only "
        "(default onehot; NannyML gets them as categories)",
    )
    p.add_argument("--no-nannyml", action="store_true", help="driftsentinel only (no NannyML venv needed)")
    p.add_argument("--nannyml-python", help="a python with nannyml==0.13.1 (default: the cached venv, created once)")
    p.add_argument("--min-seconds", type=float, default=2.0, help="time the estimator at least this long (default 2)")
    p.add_argument("--max-repeats", type=int, default=20, help="at most this many timed passes (default 20)")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in nannyml_data.SPECS]
    if unknown or not names:
        p.error(f"unknown dataset(s) {unknown}: choose from {', '.join(nannyml_data.SPECS)}")
    if args.chunk_size < 100 or args.batch < 1 or args.max_repeats < 1 or args.min_seconds < 0:
        p.error("--chunk-size must be >= 100, --batch and --max-repeats >= 1, --min-seconds >= 0")

    try:
        return _run(args, names)
    except (DataUnavailable, BenchError) as e:
        print(f"benchmarks.estimation: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, names: list[str]) -> int:
    out: dict[str, Any] = {
        "chunk_size": args.chunk_size,
        "categorical": args.categorical,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "datasets": {},
    }
    datasets = [nannyml_data.load(n) for n in names]
    metrics = {ds.name: _metrics_for(ds.spec.kind) for ds in datasets}

    theirs: dict[str, Any] | None = None
    if not args.no_nannyml:
        python = args.nannyml_python or ensure_nannyml_python()
        theirs = run_nannyml(python, nannyml_job(datasets, metrics, args.chunk_size))
        out["nannyml"] = {
            "version": theirs["nannyml_version"],
            "pandas_version": theirs["pandas_version"],
            "python": python,
            "process_wall_s": theirs["process_wall_s"],
        }

    for ds in datasets:
        n = len(ds.analysis[ds.spec.id_column])
        bounds = chunk_bounds(n, args.chunk_size)
        realized = realized_per_chunk(ds, bounds, metrics[ds.name])
        ours = run_driftsentinel(
            ds,
            args.chunk_size,
            batch=args.batch,
            min_seconds=args.min_seconds,
            max_repeats=args.max_repeats,
            categorical=args.categorical,
        )
        nm = None if theirs is None else theirs["datasets"][ds.name]
        d: dict[str, Any] = {
            "kind": ds.spec.kind,
            "rows_reference": len(ds.reference[ds.spec.id_column]),
            "rows_analysis": n,
            "chunks": [list(b) for b in bounds],
            "metrics": compare(ds, bounds, realized, ours, nm),
            "timing": {
                "driftsentinel": {
                    "fit_wall_s": ours.fit_wall_s,
                    "fit_cpu_s": ours.fit_cpu_s,
                    "throughput": ours.throughput,
                }
            },
        }
        if nm is not None:
            nm_eps = n / nm["estimate_wall_s"] if nm["estimate_wall_s"] > 0 else None
            d["timing"]["nannyml"] = {
                "fit_wall_s": nm["fit_wall_s"],
                "fit_cpu_s": nm["fit_cpu_s"],
                "estimate_wall_s": nm["estimate_wall_s"],
                "estimate_cpu_s": nm["estimate_cpu_s"],
                "events_per_s": nm_eps,
                "events_per_cpu_s": n / nm["estimate_cpu_s"] if nm["estimate_cpu_s"] > 0 else None,
            }
            d["timing"]["estimate_speedup_vs_nannyml"] = ours.throughput["events_per_s"] / nm_eps if nm_eps else None
            d["timing"]["fit_speedup_vs_nannyml"] = nm["fit_wall_s"] / ours.fit_wall_s if ours.fit_wall_s > 0 else None
        out["datasets"][ds.name] = d

    out["no_worse_rtol"] = NO_WORSE_RTOL
    out["goals"] = goals(out)
    out["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
