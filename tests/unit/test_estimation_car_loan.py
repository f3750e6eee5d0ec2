"""CBPE on NannyML's car-loan data (data neither we nor the estimator's authors wrote).

The reference period (50,000 loans, with their targets) fits the estimator; the analysis
period's 50,000 rows go through it in the sidecar's 4,096-row batches, without targets.
Its model loses accuracy from row 25,000 on. Realized metrics come from the targets
with scikit-learn, independently of the estimator. Skips when the nannyml wheel cannot
be downloaded (no network).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from benchmarks import estimation
from benchmarks import nannyml_data as nd
from driftsentinel.detectors.performance import (
    PerformanceEstimator,
    WindowResult,
    fit_classification_reference,
)

WINDOW = 5000
BATCH = 4096  # not a divisor of the window: batches straddle window ends
DROP_AT = 25_000


@dataclass
class Run:
    data: nd.Dataset
    estimator: PerformanceEstimator
    windows: list[WindowResult]
    labelled: list[WindowResult]


@pytest.fixture(scope="module")
def run() -> Run:
    try:
        data = nd.load("car_loan")
    except nd.DataUnavailable as e:
        pytest.skip(f"NannyML's data is not available: {e}")
    ref, an = data.reference, data.analysis
    reference = fit_classification_reference(
        ref["y_pred_proba"], ref["repaid"].astype(np.int64), window=WINDOW, predicted=ref["y_pred"].astype(np.int64)
    )
    scores, predicted = an["y_pred_proba"], an["y_pred"].astype(np.int64)
    labels = an["repaid"].astype(np.int64)
    est, with_labels = PerformanceEstimator(reference), PerformanceEstimator(reference)
    windows: list[WindowResult] = []
    labelled: list[WindowResult] = []
    for start in range(0, len(scores), BATCH):
        rows = slice(start, start + BATCH)
        windows += est.update(scores=scores[rows], predicted=predicted[rows])
        labelled += with_labels.update(scores=scores[rows], predicted=predicted[rows], labels=labels[rows])
    return Run(data, est, windows, labelled)


def _realized_roc_auc(data: nd.Dataset, index: int) -> float:
    rows = slice(index * WINDOW, (index + 1) * WINDOW)
    return float(roc_auc_score(data.analysis["repaid"][rows], data.analysis["y_pred_proba"][rows]))


def test_every_window_closes(run: Run) -> None:
    assert [w.index for w in run.windows] == list(range(10))
    assert all(w.n_rows == WINDOW for w in run.windows)
    assert run.estimator.rows_in_window == 0


def test_estimated_roc_auc_within_001_of_realized_per_window(run: Run) -> None:
    realized = [_realized_roc_auc(run.data, w.index) for w in run.windows]
    estimated = [w.estimated["roc_auc"] for w in run.windows]
    errors = np.abs(np.array(estimated) - np.array(realized))
    assert errors.max() < 0.01, list(zip(estimated, realized, strict=True))
    # the realized side: scikit-learn's exact ROC AUC saw the drop; so did the estimate
    assert max(realized[5:]) < min(realized[:5]) and max(estimated[5:]) < min(estimated[:5])


def test_the_drop_after_row_25000_is_flagged_and_nothing_before(run: Run) -> None:
    est = run.estimator
    for metric in est.metrics:
        lower, upper = est.band(metric)
        outside = [w.index for w in run.windows if not lower <= w.estimated[metric] <= upper]
        before = [i for i in outside if (i + 1) * WINDOW <= DROP_AT]
        assert before == [], f"{metric}: windows {before} flagged before row {DROP_AT:,}"
        if metric == "roc_auc":
            # every window after the drop, below the band (not above)
            assert outside == list(range(DROP_AT // WINDOW, 10))
            assert all(run.windows[i].estimated[metric] < lower for i in outside)


def test_realized_counterpart_matches_scikit_learn(run: Run) -> None:
    for w in run.labelled:
        # the scores have two decimals, so each distinct score has its own histogram bin:
        # the histogram ROC AUC is then exactly the rank one
        assert w.realized["roc_auc"] == pytest.approx(_realized_roc_auc(run.data, w.index), abs=1e-9)
        rows = slice(w.index * WINDOW, (w.index + 1) * WINDOW)
        accuracy = float(np.mean(run.data.analysis["y_pred"][rows] == run.data.analysis["repaid"][rows]))
        assert w.realized["accuracy"] == pytest.approx(accuracy, abs=1e-12)
        # labels given with the rows change nothing of the estimate
        assert w.estimated == run.windows[w.index].estimated


# ---------------------------------------------------------------------------- the benchmark
def test_benchmark_car_loan_without_nannyml(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--no-nannyml", "--datasets", "car_loan", "--min-seconds", "0", "--max-repeats", "1"]
    assert estimation.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    d = out["datasets"]["car_loan"]
    assert d["chunks"] == [[s, s + WINDOW] for s in range(0, 50_000, WINDOW)]
    roc = d["metrics"]["roc_auc"]
    assert roc["driftsentinel"]["alert_chunks"] == [5, 6, 7, 8, 9]
    assert roc["driftsentinel"]["estimates"] == [w.estimated["roc_auc"] for w in run.windows]
    assert roc["driftsentinel"]["mae"] < 0.005
    assert d["timing"]["driftsentinel"]["throughput"]["repeats"] == 1
    assert set(out["goals"]) == {"car_loan.estimator_events_per_s", "all_pass"}  # nothing to compare with


def _nannyml_rows(estimates: list[float], realized: list[float], lower: float, upper: float) -> list[dict[str, Any]]:
    return [
        {
            "start": i * WINDOW,
            "end": (i + 1) * WINDOW,
            "estimate": e,
            "realized": r,
            "lower_threshold": lower,
            "upper_threshold": upper,
            "alert": not lower <= e <= upper,
        }
        for i, (e, r) in enumerate(zip(estimates, realized, strict=True))
    ]


def test_compare_grades_both_against_the_same_truth(run: Run) -> None:
    bounds = [(0, WINDOW), (WINDOW, 2 * WINDOW)]
    realized = {"roc_auc": [0.97, 0.95]}
    ours = estimation.DriftsentinelRun(
        estimates={"roc_auc": [0.968, 0.952]},
        bands={"roc_auc": (0.96, None)},
        reference_values={"roc_auc": 0.97},
        fit_wall_s=1.0,
        fit_cpu_s=1.0,
        throughput={},
    )
    theirs = {"metrics": {"roc_auc": _nannyml_rows([0.971, 0.961], [0.97, 0.95], 0.96, 0.98)}}
    row = estimation.compare(run.data, bounds, realized, ours, theirs)["roc_auc"]
    assert row["driftsentinel"]["mae"] == pytest.approx(0.002)
    assert row["nannyml"]["mae"] == pytest.approx(0.006)
    assert row["no_worse"] and row["mae_ratio"] == pytest.approx(1 / 3)
    assert row["driftsentinel"]["alert_chunks"] == [1] and row["nannyml"]["alert_chunks"] == []
    assert not row["same_alerts"]
    # NannyML cut other chunks: refused, not compared
    shifted = {"metrics": {"roc_auc": [dict(r, start=r["start"] + 1) for r in theirs["metrics"]["roc_auc"]]}}
    with pytest.raises(estimation.BenchError, match="chunks"):
        estimation.compare(run.data, bounds, realized, ours, shifted)


def test_nannyml_runner_reproduces_the_issue_figures(run: Run) -> None:
    """NannyML's CBPE on car_loan (its own venv, when it exists: creating it takes minutes)."""
    python = estimation.nannyml_venv_dir() / "bin" / "python"
    if not (estimation.nannyml_venv_dir() / ".driftsentinel-ready").is_file():
        pytest.skip("NannyML's venv is not built (python -m benchmarks.estimation builds it once)")
    job = estimation.nannyml_job([run.data], {"car_loan": ("roc_auc", "accuracy", "f1")}, WINDOW)
    got = estimation.run_nannyml(str(python), job)["datasets"]["car_loan"]["metrics"]
    realized = estimation.realized_per_chunk(
        run.data, estimation.chunk_bounds(50_000, WINDOW), ("roc_auc", "accuracy", "f1")
    )
    for metric, expected_mae in (("roc_auc", 0.0021), ("accuracy", 0.0031), ("f1", 0.0026)):
        rows = got[metric]
        # NannyML's realized values are ours: both are graded against the same truth
        np.testing.assert_allclose([r["realized"] for r in rows], realized[metric], atol=1e-12)
        mae = float(np.mean([abs(r["estimate"] - t) for r, t in zip(rows, realized[metric], strict=True)]))
        assert mae == pytest.approx(expected_mae, abs=5e-5)
        assert [i for i, r in enumerate(rows) if r["alert"]] == [5, 6, 7, 8, 9]
