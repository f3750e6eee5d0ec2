"""NannyML's CBPE and DLE on the NannyML datasets: run by NannyML's own venv, not ours.

``benchmarks.estimation`` starts this file with the python of a venv holding
``nannyml==0.13.1`` and ``pandas<3`` (NannyML needs pandas < 3; driftsentinel does not
use pandas), passing one JSON argument::

    {"chunk_size": 5000,
     "datasets": {"car_loan": {"kind": "binary", "reference": PATH, "analysis": PATH,
                               "targets": PATH, "target": "repaid", "prediction": "y_pred",
                               "scores": {"": "y_pred_proba"}, "features": [...],
                               "metrics": ["roc_auc", ...]}, ...}}

It prints one JSON object on stdout: per dataset, the fit and estimate times (wall and
CPU seconds) and, per metric, one row per analysis chunk with NannyML's estimate, the
realized value NannyML computes from the joined targets, the thresholds from the
reference chunks and the alert flag. This file imports nothing of driftsentinel.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from typing import Any

import nannyml as nml  # type: ignore[import-not-found,import-untyped,unused-ignore]
import pandas as pd  # type: ignore[import-untyped,import-not-found,unused-ignore]


def _num(x: Any) -> float | None:
    """A float for JSON (None for NaN/None)."""
    if x is None:
        return None
    v = float(x)
    return None if math.isnan(v) else v


def _estimator(spec: dict[str, Any], chunk_size: int) -> Any:
    kind = spec["kind"]
    if kind == "regression":
        return nml.DLE(
            feature_column_names=spec["features"],
            y_pred=spec["prediction"],
            y_true=spec["target"],
            metrics=spec["metrics"],
            chunk_size=chunk_size,
        )
    scores = spec["scores"]
    return nml.CBPE(
        y_pred_proba=scores[""] if kind == "binary" else scores,
        y_pred=spec["prediction"],
        y_true=spec["target"],
        problem_type="classification_binary" if kind == "binary" else "classification_multiclass",
        metrics=spec["metrics"],
        chunk_size=chunk_size,
    )


def run_one(spec: dict[str, Any], chunk_size: int) -> dict[str, Any]:
    """Fit on the reference, estimate on the analysis (targets joined by id), per-chunk rows."""
    reference = pd.read_csv(spec["reference"])
    analysis = pd.read_csv(spec["analysis"]).merge(pd.read_csv(spec["targets"]), on="id", how="left")
    est = _estimator(spec, chunk_size)

    w0, c0 = time.perf_counter(), time.process_time()
    est.fit(reference)
    w1, c1 = time.perf_counter(), time.process_time()
    # targets dropped: the estimate must not see them (it would not in production)
    result = est.estimate(analysis.drop(columns=[spec["target"]]))
    w2, c2 = time.perf_counter(), time.process_time()
    # the same estimator on the analysis with targets: NannyML's realized values
    realized = est.estimate(analysis).filter(period="analysis").to_df()

    df = result.filter(period="analysis").to_df()
    out: dict[str, Any] = {
        "rows_reference": len(reference),
        "rows_analysis": len(analysis),
        "fit_wall_s": w1 - w0,
        "fit_cpu_s": c1 - c0,
        "estimate_wall_s": w2 - w1,
        "estimate_cpu_s": c2 - c1,
        "metrics": {},
    }
    for metric in spec["metrics"]:
        rows = []
        for i in range(len(df)):
            rows.append(
                {
                    "start": int(df[("chunk", "start_index")].iloc[i]),
                    "end": int(df[("chunk", "end_index")].iloc[i]) + 1,
                    "estimate": _num(df[(metric, "value")].iloc[i]),
                    "realized": _num(realized[(metric, "realized")].iloc[i]),
                    "lower_threshold": _num(df[(metric, "lower_threshold")].iloc[i]),
                    "upper_threshold": _num(df[(metric, "upper_threshold")].iloc[i]),
                    "alert": bool(df[(metric, "alert")].iloc[i]),
                }
            )
        out["metrics"][metric] = rows
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: _nannyml_run.py JSON", file=sys.stderr)
        return 2
    job = json.loads(argv[0])
    warnings.simplefilter("ignore")
    # LightGBM's C library writes its training log to fd 1: send it to stderr, so that
    # stdout carries the one JSON object only
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        res = {
            "nannyml_version": nml.__version__,
            "pandas_version": pd.__version__,
            "datasets": {name: run_one(spec, int(job["chunk_size"])) for name, spec in job["datasets"].items()},
        }
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
