"""Estimated model performance before the labels arrive, and the realized one when they do.

Classifiers: **CBPE** (confidence-based performance estimation, NannyML). With calibrated
probabilities ``p`` a row predicted as class ``j`` is expected to be of class ``c`` with
probability ``p_c``, so a window's *expected* confusion matrix is ``C[c, j] = sum of p_c
over rows predicted j``, and accuracy, precision, recall and F1 follow from it (binary:
of the positive class; multiclass: one-vs-rest, macro-averaged). ROC AUC is estimated
from a histogram over the model's own (uncalibrated) score: per score bin the expected
positives ``sum p`` and negatives ``sum (1 - p)``. Regressors: **DLE** (direct loss
estimation, NannyML): loss models fitted on the reference predict each row's absolute
and squared error from ``features + prediction`` (:mod:`~driftsentinel.detectors.loss_model`);
MAE is the window's mean predicted absolute error, RMSE the root of its mean predicted
squared error (both clipped at 0 per row). The *realized* metrics use the same state with
the labels in place of the probabilities (actual confusion counts, per-class score
histograms, sums of absolute and squared errors), so estimate and truth are measured the
same way on the same windows. Assumptions and state sizes: ``docs/performance-estimation.md``.

API (pure numpy + numba: no I/O, no clock):

* ``fit_classification_reference(scores, labels, *, classes=None, window=5000,
  predicted=None, n_quantile_edges=2048, n_grid_edges=1024) -> PerformanceReference`` --
  ``scores`` (n,) probability of the positive class (the second of the sorted classes
  unless ``classes`` says otherwise) or (n, k >= 3) per-class probabilities;
  ``predicted`` the model's predicted classes (else ``score > 0.5`` / argmax).
* ``fit_regression_reference(features, predictions, labels, *, feature_names,
  window=5000, **hgb_params) -> PerformanceReference`` -- ``features`` (n, d) float, NaN
  for missing (numeric or numerically coded), needs the ``estimation`` extra.
* ``PerformanceEstimator(reference)`` -- tumbling windows of ``reference.window`` rows
  (every row given counts, valid or not, so row ``r`` of the stream is in window
  ``r // window``): ``update(scores=, predicted=, labels=)`` or ``update(features=,
  predictions=, labels=)`` adds a batch and returns the windows it closed
  (:class:`WindowResult`: estimated metrics, and realized ones from labels given in the
  same rows, ``None`` = no label); ``estimate()`` / ``realized()`` of the open window;
  ``window_count``, ``rows_total``, ``rows_in_window``; ``band(metric) -> (lower,
  upper)`` (-inf/inf when unbounded), ``reference_value(metric)``, ``metrics``;
  ``state()`` (JSON-ready) / ``from_state(reference, state)``; ``new_realized_window()``.
* ``RealizedWindow(reference)`` -- the realized metrics of one window from late,
  label-joined rows: ``add(scores=, predicted=, labels=)`` / ``add(features=,
  predictions=, labels=)``, ``merge(other)``, ``metrics(n_predictions=None)`` (with
  ``label_coverage`` = labelled rows / ``n_predictions``), ``state()`` / ``from_state``.
* ``WindowCounts`` -- the bounded, mergeable sums behind both (``merge``, ``metrics``,
  ``state``, ``from_state``).

Metrics: ``roc_auc, accuracy, precision, recall, f1`` (classification), ``mae, rmse``
(regression). A ratio with a zero denominator is 0 (NannyML's estimate and scikit-learn's
default), ROC AUC with one class absent is NaN, every metric of an empty window is NaN.

>>> rng = np.random.default_rng(0)
>>> p = rng.random(20_000); y = rng.random(20_000) < p
>>> ref = fit_classification_reference(p, y.astype(int), window=2_000)
>>> est = PerformanceEstimator(ref)
>>> closed = est.update(scores=p[:5_000], labels=y[:5_000].astype(int))
>>> [w.index for w in closed], est.rows_in_window
([0, 1], 1000)
>>> round(closed[0].estimated["accuracy"], 2), round(closed[0].realized["accuracy"], 2)
(0.76, 0.76)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from driftsentinel.detectors.isotonic import apply_isotonic, fit_isotonic, needs_calibration
from driftsentinel.detectors.loss_model import CompiledEnsemble, EnsembleSet, fit_loss_model
from driftsentinel.schemas.profile import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    ClassificationOutputs,
    IsotonicMap,
    MetricBand,
    PerformanceReference,
    RegressionOutputs,
)

STATE_VERSION = 1
#: NannyML's band: mean +- this many standard deviations of the reference windows.
BAND_STDS = 3.0
#: Log-odds range of the fixed part of the ROC AUC bin edges (covers p in ~[1e-6, 1 - 1e-6]).
GRID_LOGIT = 14.0
#: Each metric's range (None: unbounded): the band is clipped to it.
METRIC_RANGE: dict[str, tuple[float, float | None]] = dict.fromkeys(CLASSIFICATION_METRICS, (0.0, 1.0))
METRIC_RANGE |= dict.fromkeys(REGRESSION_METRICS, (0.0, None))


# --- labels and classes -------------------------------------------------------------------------------


def canonical_classes(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Class values as strings, vectorised: ``(names, missing)``.

    Booleans are ``"0"``/``"1"``; integral numbers print as integers (``1.0`` -> ``"1"``),
    so labels read as floats match classes fitted as ints; None, NaN and ``""`` are missing.

    >>> canonical_classes(np.array([1.0, 0.0, np.nan]))[0].tolist()
    ['1', '0', '']
    >>> canonical_classes(np.array([True, False]))[0].tolist(), canonical_classes(["a", None])[1].tolist()
    (['1', '0'], [False, True])
    """
    arr = np.asarray(values)
    if arr.dtype.kind == "O":
        missing = np.asarray(np.equal(arr, np.array(None, dtype=object)), dtype=bool)
        try:
            arr = np.where(missing, np.nan, arr).astype(np.float64)
        except (TypeError, ValueError):
            names = np.where(missing, "", arr).astype(str)
            return names, missing | (names == "")
    if arr.dtype.kind == "b":
        return np.where(arr, "1", "0"), np.zeros(arr.shape, dtype=bool)
    if arr.dtype.kind in "iu":
        return arr.astype(str), np.zeros(arr.shape, dtype=bool)
    if arr.dtype.kind == "f":
        missing = ~np.isfinite(arr)
        filled = np.where(missing, 0.0, arr)
        integral = filled == np.round(filled)
        names = np.where(integral, filled.astype(np.int64).astype(str), filled.astype(str))
        return np.where(missing, "", names), missing
    names = arr.astype(str)
    return names, names == ""


def _class_index(values: Any, lookup: dict[str, int]) -> np.ndarray:
    """Class indices of ``values`` (-1: missing or not a known class), one dict look-up per distinct value."""
    arr = np.asarray(values).reshape(-1)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind in "biuf":  # numbers: find the distinct values first, name only those
        uniq, inverse = np.unique(arr, return_inverse=True)
        names, missing = canonical_classes(uniq)
        codes = np.array([-1 if m else lookup.get(str(u), -1) for u, m in zip(names, missing, strict=True)])
        return codes.astype(np.int64)[inverse.reshape(-1)]
    names, missing = canonical_classes(arr)
    uniq, inverse = np.unique(names, return_inverse=True)
    codes = np.array([lookup.get(str(u), -1) for u in uniq], dtype=np.int64)
    out = codes[inverse.reshape(-1)]
    out[missing] = -1
    return out


def _sorted_classes(names: np.ndarray) -> list[str]:
    """Distinct class names, numerically ordered when all are numbers, else as strings."""
    uniq = sorted(set(names.tolist()))
    try:
        return sorted(uniq, key=float)
    except ValueError:
        return uniq


# --- the bounded window state --------------------------------------------------------------------------


@dataclass(eq=False)  # compared by identity: ``==`` on its arrays would be ambiguous
class WindowCounts:
    """The sums one window's metrics are computed from: bounded, mergeable, no raw rows.

    ``n_rows``: rows given (a realized window: rows with a label); ``n_used``: rows that
    counted (finite outputs, known classes). Classification: ``confusion[true, predicted]``
    (k, k) and ``hist[column, bin, 0 | 1]`` the negative / positive weight per score bin
    (one column for binary, k for multiclass). Regression: ``sums = [sum |error|,
    sum error^2]``. Estimated windows hold expected (fractional) counts, realized windows
    integers (exact in float64 below 2**53).
    """

    n_rows: int
    n_used: int
    confusion: np.ndarray
    hist: np.ndarray
    sums: np.ndarray

    @classmethod
    def empty(cls, n_classes: int, hist_shape: tuple[int, int]) -> WindowCounts:
        """An empty window: (k, k) confusion and (columns, bins, 2) histograms, or regression sums."""
        sums = np.zeros(2 if n_classes == 0 else 0)
        return cls(0, 0, np.zeros((n_classes, n_classes)), np.zeros((*hist_shape, 2)), sums)

    def copy(self) -> WindowCounts:
        """An independent copy."""
        return WindowCounts(self.n_rows, self.n_used, self.confusion.copy(), self.hist.copy(), self.sums.copy())

    def merge(self, other: WindowCounts) -> None:
        """Add another window's counts (same reference) into this one."""
        if (other.confusion.shape, other.hist.shape, other.sums.shape) != (
            self.confusion.shape,
            self.hist.shape,
            self.sums.shape,
        ):
            raise ValueError("cannot merge window counts of different references")
        self.n_rows += other.n_rows
        self.n_used += other.n_used
        self.confusion += other.confusion
        self.hist += other.hist
        self.sums += other.sums

    def metrics(self, binary: bool) -> dict[str, float]:
        """The window's metrics (NaN for an empty window)."""
        if self.sums.shape[0]:
            return regression_metrics(self.n_used, self.sums)
        return classification_metrics(self.confusion, self.hist, binary)

    def state(self) -> dict[str, Any]:
        """Plain data (lists and numbers), JSON- and msgpack-ready."""
        return {
            "n_rows": self.n_rows,
            "n_used": self.n_used,
            "confusion": self.confusion.tolist(),
            "hist": self.hist.tolist(),
            "sums": self.sums.tolist(),
        }

    @classmethod
    def from_state(cls, state: Any, like: WindowCounts) -> WindowCounts:
        """Read :meth:`state` back, checked against the shapes of ``like`` (an empty window of the reference)."""
        if not isinstance(state, dict) or set(state) != {"n_rows", "n_used", "confusion", "hist", "sums"}:
            raise ValueError("window state must have exactly n_rows, n_used, confusion, hist, sums")
        n_rows, n_used = state["n_rows"], state["n_used"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n_rows, n_used)) or not (
            0 <= n_used <= n_rows
        ):
            raise ValueError("window state counts must be integers with 0 <= n_used <= n_rows")
        arrays = []
        for name, ref in (("confusion", like.confusion), ("hist", like.hist), ("sums", like.sums)):
            try:
                arr = np.array(state[name], dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"window state {name} is not numeric") from None
            if arr.size == 0 and ref.size == 0:
                arr = arr.reshape(ref.shape)
            if arr.shape != ref.shape:
                raise ValueError(f"window state {name} has shape {arr.shape}, this reference needs {ref.shape}")
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"window state {name} must be finite and non-negative")
            arrays.append(arr)
        return cls(n_rows, n_used, *arrays)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def histogram_roc_auc(hist: np.ndarray) -> np.ndarray:
    """ROC AUC per column of ``hist[column, bin, 0 | 1]`` (a row in the same bin counts one half).

    >>> histogram_roc_auc(np.array([[[2.0, 0.0], [1.0, 1.0], [0.0, 2.0]]])).tolist()
    [0.9444444444444444]
    """
    neg, pos = hist[..., 0], hist[..., 1]
    above = np.cumsum(pos[:, ::-1], axis=1)[:, ::-1] - pos  # positives in higher bins
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    pairs = n_pos * n_neg
    wins = (neg * (above + 0.5 * pos)).sum(axis=1)
    return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1.0), np.nan)


def classification_metrics(confusion: np.ndarray, hist: np.ndarray, binary: bool) -> dict[str, float]:
    """ROC AUC, accuracy, precision, recall, F1 from a confusion matrix and score histograms."""
    n = float(confusion.sum())
    if n <= 0:
        return dict.fromkeys(CLASSIFICATION_METRICS, math.nan)
    tp = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, actual)
    f1 = _ratio(2 * tp, predicted + actual)
    auc = histogram_roc_auc(hist)
    if binary:
        chosen = {"precision": precision[1], "recall": recall[1], "f1": f1[1], "roc_auc": auc[0]}
    else:
        chosen = {"precision": precision.mean(), "recall": recall.mean(), "f1": f1.mean(), "roc_auc": auc.mean()}
    out = {"roc_auc": float(chosen["roc_auc"]), "accuracy": float(tp.sum() / n)}
    out |= {name: float(chosen[name]) for name in ("precision", "recall", "f1")}
    return out


def regression_metrics(n_used: int, sums: np.ndarray) -> dict[str, float]:
    """MAE and RMSE from ``[sum |error|, sum error^2]`` over ``n_used`` rows."""
    if n_used <= 0:
        return dict.fromkeys(REGRESSION_METRICS, math.nan)
    return {"mae": float(sums[0] / n_used), "rmse": float(math.sqrt(sums[1] / n_used))}


# --- the compiled reference: per-row transforms ----------------------------------------------------------


@dataclass
class _Rows:
    """One batch turned into what the window sums need (only ``used`` rows count)."""

    used: np.ndarray  # bool (n,)
    predicted: np.ndarray  # int (n,), classification
    weights: np.ndarray  # (n, k): P(true class = c) (estimated) or one-hot labels (realized)
    bins: np.ndarray  # (n, columns) score bin per AUC column
    losses: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (n, 2) regression
    y_hat: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n,) regression predictions


class ReferenceModel:
    """A :class:`PerformanceReference` ready to transform batches (shared by estimators and windows)."""

    def __init__(self, reference: PerformanceReference) -> None:
        """Compile the calibration maps, bin edges and loss models of ``reference``."""
        self.reference = reference
        self.kind = reference.kind
        self.binary = reference.kind == "binary"
        self.window = reference.window
        if reference.classification is not None:
            out = reference.classification
            self.classes = list(out.classes)
            self.lookup = {c: i for i, c in enumerate(self.classes)}
            self.n_classes = len(self.classes)
            self.calibration = [None if m is None else (np.array(m.x), np.array(m.y)) for m in out.calibration]
            self.edges = [np.array(e, dtype=np.float64) for e in out.score_edges]
            self.n_bins = max(e.shape[0] for e in self.edges) + 1
            self.columns = len(self.edges)
            self.threshold = out.decision_threshold
            self.empty = WindowCounts.empty(self.n_classes, (self.columns, self.n_bins))
        else:
            assert reference.regression is not None
            self.feature_names = list(reference.regression.feature_names)
            self.abs_model = CompiledEnsemble(reference.regression.abs_error_model)
            self.sq_model = CompiledEnsemble(reference.regression.sq_error_model)
            self.loss_models = EnsembleSet([self.abs_model, self.sq_model])  # both in one pass over a batch
            self.n_classes = 0
            self.empty = WindowCounts.empty(0, (0, 0))

    # classification ---------------------------------------------------------------------------------
    def _scores(self, scores: Any) -> tuple[np.ndarray, np.ndarray]:
        """Scores as (n, columns) in [0, 1] and the rows whose scores are all finite."""
        s = np.asarray(scores, dtype=np.float64)
        if self.binary:
            if s.ndim != 1:
                raise ValueError(f"binary scores must be 1-D (the positive class's probability), got shape {s.shape}")
            s = s[:, None]
        elif s.ndim != 2 or s.shape[1] != self.n_classes:
            raise ValueError(f"multiclass scores must have shape (n, {self.n_classes}), got {s.shape}")
        finite = np.asarray(np.isfinite(s).all(axis=1))
        return np.clip(np.where(np.isfinite(s), s, 0.0), 0.0, 1.0), finite

    def _predicted(self, s: np.ndarray, predicted: Any) -> np.ndarray:
        if predicted is None:
            if self.binary:
                return (s[:, 0] > self.threshold).astype(np.int64)
            return np.argmax(s, axis=1).astype(np.int64)
        idx = _class_index(predicted, self.lookup)
        if idx.shape[0] != s.shape[0]:
            raise ValueError(f"predicted has {idx.shape[0]} rows, scores {s.shape[0]}")
        return idx

    def calibrated(self, s: np.ndarray) -> np.ndarray:
        """(n, k) calibrated class probabilities from (n, columns) scores (rows sum to 1)."""
        cols = np.empty_like(s)
        for c, cal in enumerate(self.calibration):
            cols[:, c] = s[:, c] if cal is None else apply_isotonic(cal[0], cal[1], s[:, c])
        if self.binary:
            return np.column_stack([1.0 - cols[:, 0], cols[:, 0]])
        total = cols.sum(axis=1, keepdims=True)
        uniform = np.full_like(cols, 1.0 / self.n_classes)
        return np.divide(cols, total, out=uniform, where=total > 0)  # NannyML's normalisation

    def _bins(self, s: np.ndarray) -> np.ndarray:
        return np.column_stack([np.searchsorted(e, s[:, c], side="right") for c, e in enumerate(self.edges)])

    def classification_rows(self, scores: Any, predicted: Any, estimate: bool) -> _Rows:
        """A batch's rows; ``estimate``: weighted by the calibrated probabilities (else by nothing yet)."""
        if scores is None:
            raise ValueError(f"a {self.kind} model needs scores")
        s, used = self._scores(scores)
        pred = self._predicted(s, predicted)
        used &= pred >= 0
        weights = self.calibrated(s) if estimate else np.zeros((s.shape[0], 0))
        return _Rows(used, pred, weights, self._bins(s))

    # regression ---------------------------------------------------------------------------------
    def regression_rows(self, features: Any, predictions: Any, estimate: bool) -> _Rows:
        """A batch's rows; ``estimate``: with the losses the loss models predict (clipped at 0)."""
        if predictions is None:
            raise ValueError("a regression model needs predictions")
        y_hat = np.asarray(predictions, dtype=np.float64).reshape(-1)
        used = np.isfinite(y_hat)
        losses = np.zeros((y_hat.shape[0], 0))
        if estimate:
            if features is None:
                raise ValueError("estimating a regression model's loss needs its features")
            x = np.asarray(features, dtype=np.float64)
            width = len(self.feature_names)
            if x.ndim != 2 or x.shape != (y_hat.shape[0], width):
                raise ValueError(f"features must have shape ({y_hat.shape[0]}, {width}), got {x.shape}")
            inputs = np.empty((x.shape[0], width + 1))  # the loss models read features + prediction
            inputs[:, :width] = x
            inputs[:, width] = y_hat
            losses = np.maximum(self.loss_models.predict(inputs), 0.0)  # NannyML clips negative losses to 0
        empty = np.zeros((y_hat.shape[0], 0))
        return _Rows(used, np.zeros(0, np.int64), empty, empty.astype(np.int64), losses, y_hat)

    def rows(self, *, scores: Any, predicted: Any, features: Any, predictions: Any, estimate: bool = True) -> _Rows:
        """A batch's rows for this kind of model (see :meth:`labelled`)."""
        if self.n_classes:
            return self.classification_rows(scores, predicted, estimate)
        return self.regression_rows(features, predictions, estimate)

    def labelled(self, rows: _Rows, labels: Any, *, indices: bool = False) -> _Rows:
        """The realized rows: ``rows`` weighted by their labels (one-hot classes or actual losses).

        ``indices``: the labels are class indices already (-1: none).
        """
        n = rows.used.shape[0]
        if self.n_classes == 0:
            y = np.asarray(labels, dtype=np.float64).reshape(-1)
            if y.shape[0] != n:
                raise ValueError(f"labels have {y.shape[0]} rows, predictions {n}")
            used = rows.used & np.isfinite(y)
            err = np.where(used, y - rows.y_hat, 0.0)
            losses = np.column_stack([np.abs(err), err * err])
            return _Rows(used, rows.predicted, rows.weights, rows.bins, losses, rows.y_hat)
        truth = np.asarray(labels, dtype=np.int64) if indices else _class_index(labels, self.lookup)
        if truth.shape[0] != n:
            raise ValueError(f"labels have {truth.shape[0]} rows, scores {n}")
        used = rows.used & (truth >= 0)
        weights = np.zeros((n, self.n_classes))
        weights[np.flatnonzero(used), truth[used]] = 1.0
        return _Rows(used, rows.predicted, weights, rows.bins)

    def accumulate(self, rows: _Rows, window: np.ndarray, m: int) -> list[WindowCounts]:
        """Sum ``rows`` into ``m`` windows (``window[i]``: the window of row ``i``), vectorised."""
        n_rows = np.bincount(window, minlength=m)
        w = window[rows.used]
        n_used = np.bincount(w, minlength=m)
        if self.n_classes == 0:
            loss = rows.losses[rows.used]
            sums = np.stack([np.bincount(w, weights=loss[:, j], minlength=m) for j in range(2)], axis=1)
            return [
                WindowCounts(
                    int(n_rows[i]), int(n_used[i]), self.empty.confusion.copy(), self.empty.hist.copy(), sums[i]
                )
                for i in range(m)
            ]
        k, cols, nb = self.n_classes, self.columns, self.n_bins
        pred = rows.predicted[rows.used]
        weights = rows.weights[rows.used]
        bins = rows.bins[rows.used]
        confusion = np.zeros((m, k, k))
        base = w * k
        for c in range(k):
            confusion[:, c, :] = np.bincount(base + pred, weights=weights[:, c], minlength=m * k).reshape(m, k)
        hist = np.zeros((m, cols, nb, 2))
        for col in range(cols):
            cls = 1 if self.binary else col
            idx = w * nb + bins[:, col]
            pos = np.bincount(idx, weights=weights[:, cls], minlength=m * nb)
            neg = np.bincount(idx, weights=1.0 - weights[:, cls], minlength=m * nb)
            hist[:, col, :, 0] = neg.reshape(m, nb)
            hist[:, col, :, 1] = pos.reshape(m, nb)
        return [WindowCounts(int(n_rows[i]), int(n_used[i]), confusion[i], hist[i], np.zeros(0)) for i in range(m)]


def _model(reference: PerformanceReference | ReferenceModel) -> ReferenceModel:
    if isinstance(reference, ReferenceModel):
        return reference
    if not isinstance(reference, PerformanceReference):
        raise TypeError(f"expected a PerformanceReference, got {type(reference).__name__}")
    return ReferenceModel(reference)


# --- realized windows (late labels) and the estimator ---------------------------------------------------


class RealizedWindow:
    """The realized metrics of one window, from its label-joined rows (bounded, mergeable)."""

    def __init__(self, reference: PerformanceReference | ReferenceModel) -> None:
        """An empty window of ``reference`` (pass a :class:`ReferenceModel` to share one)."""
        self.model = _model(reference)
        self.counts = self.model.empty.copy()

    def add(
        self,
        *,
        labels: Any,
        scores: Any = None,
        predicted: Any = None,
        features: Any = None,
        predictions: Any = None,
    ) -> None:
        """Add labelled rows (their model outputs and labels; a missing label is skipped)."""
        del features  # realized losses need only predictions and labels
        base = self.model.rows(
            scores=scores, predicted=predicted, features=None, predictions=predictions, estimate=False
        )
        rows = self.model.labelled(base, labels)
        n = rows.used.shape[0]
        (counts,) = self.model.accumulate(rows, np.zeros(n, dtype=np.int64), 1)
        counts.n_rows = counts.n_used  # a realized window counts the rows that had a usable label
        self.counts.merge(counts)

    def merge(self, other: RealizedWindow) -> None:
        """Add another realized window of the same reference."""
        self.counts.merge(other.counts)

    def metrics(self, n_predictions: int | None = None) -> dict[str, float]:
        """Realized metrics; with ``n_predictions`` also ``label_coverage`` (labelled / predictions)."""
        out = self.counts.metrics(self.model.binary)
        if n_predictions is not None:
            out["label_coverage"] = self.counts.n_used / n_predictions if n_predictions > 0 else math.nan
        return out

    def state(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return self.counts.state()

    @classmethod
    def from_state(cls, reference: PerformanceReference | ReferenceModel, state: Any) -> RealizedWindow:
        """Read :meth:`state` back (shapes checked against the reference)."""
        out = cls(reference)
        out.counts = WindowCounts.from_state(state, out.model.empty)
        return out


@dataclass(frozen=True)
class WindowResult:
    """A closed window: its estimate, and the realized metrics from labels given with its rows."""

    index: int
    n_rows: int
    n_scored: int
    estimated: dict[str, float]
    realized: dict[str, float]


class PerformanceEstimator:
    """CBPE / DLE on tumbling windows of one model's predictions (see the module docstring)."""

    def __init__(self, reference: PerformanceReference | ReferenceModel) -> None:
        """Start at window 0 with nothing seen."""
        self.model = _model(reference)
        self.reference = self.model.reference
        self.window = self.model.window
        self.window_count = 0
        self._estimated = self.model.empty.copy()
        self._realized = self.model.empty.copy()

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics estimated for this model."""
        return REGRESSION_METRICS if self.model.n_classes == 0 else CLASSIFICATION_METRICS

    @property
    def rows_in_window(self) -> int:
        """Rows in the open window."""
        return self._estimated.n_rows

    @property
    def rows_total(self) -> int:
        """Rows given so far (row ``r`` is in window ``r // window``)."""
        return self.window_count * self.window + self._estimated.n_rows

    def band(self, metric: str) -> tuple[float, float]:
        """The reference band ``(lower, upper)`` an estimate is judged against (-inf/inf: unbounded)."""
        b = self._band(metric)
        return (-math.inf if b.lower is None else b.lower, math.inf if b.upper is None else b.upper)

    def reference_value(self, metric: str) -> float:
        """The metric realized on the whole reference."""
        return self._band(metric).reference

    def _band(self, metric: str) -> MetricBand:
        if metric not in self.reference.metrics:
            raise KeyError(f"unknown metric {metric!r}; this model has {', '.join(self.metrics)}")
        return self.reference.metrics[metric]

    def new_realized_window(self) -> RealizedWindow:
        """An empty :class:`RealizedWindow` sharing this estimator's compiled reference."""
        return RealizedWindow(self.model)

    def update(
        self,
        *,
        scores: Any = None,
        predicted: Any = None,
        features: Any = None,
        predictions: Any = None,
        labels: Any = None,
    ) -> list[WindowResult]:
        """Add a batch of predictions (and any labels that came with them); return the windows it closed."""
        est = self.model.rows(scores=scores, predicted=predicted, features=features, predictions=predictions)
        n = est.used.shape[0]
        if n == 0:
            return []
        window = (self._estimated.n_rows + np.arange(n, dtype=np.int64)) // self.window
        m = int(window[-1]) + 1
        estimated = self.model.accumulate(est, window, m)
        if labels is not None:
            realized = self.model.accumulate(self.model.labelled(est, labels), window, m)
        else:
            realized = [self.model.empty.copy() for _ in range(m)]
        closed = []
        for i in range(m):
            self._estimated.merge(estimated[i])
            self._realized.merge(realized[i])
            if self._estimated.n_rows == self.window:
                closed.append(self._close())
        return closed

    def _close(self) -> WindowResult:
        result = WindowResult(
            index=self.window_count,
            n_rows=self._estimated.n_rows,
            n_scored=self._estimated.n_used,
            estimated=self.estimate(),
            realized=self.realized(),
        )
        self.window_count += 1
        self._estimated = self.model.empty.copy()
        self._realized = self.model.empty.copy()
        return result

    def estimate(self) -> dict[str, float]:
        """The open window's estimated metrics (NaN while it is empty)."""
        return self._estimated.metrics(self.model.binary)

    def realized(self) -> dict[str, float]:
        """The open window's realized metrics from in-batch labels, with ``label_coverage``."""
        out = self._realized.metrics(self.model.binary)
        n = self._estimated.n_used
        out["label_coverage"] = self._realized.n_used / n if n else math.nan
        return out

    def open_window(self) -> tuple[WindowCounts, WindowCounts]:
        """Copies of the open window's (estimated, realized) counts."""
        return self._estimated.copy(), self._realized.copy()

    def state(self) -> dict[str, Any]:
        """Plain data (lists and numbers): JSON- and msgpack-ready."""
        return {
            "version": STATE_VERSION,
            "kind": self.model.kind,
            "window": self.window,
            "window_count": self.window_count,
            "estimated": self._estimated.state(),
            "realized": self._realized.state(),
        }

    @classmethod
    def from_state(cls, reference: PerformanceReference | ReferenceModel, state: Any) -> PerformanceEstimator:
        """Restore from :meth:`state`, validated against ``reference`` before anything is built."""
        out = cls(reference)
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"performance state must be a dict of version {STATE_VERSION}")
        if state.get("kind") != out.model.kind or state.get("window") != out.window:
            raise ValueError(
                f"performance state is of a {state.get('kind')} model with windows of {state.get('window')}, "
                f"the reference is {out.model.kind} with {out.window}"
            )
        count = state.get("window_count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError("performance state window_count must be a non-negative integer")
        out.window_count = count
        out._estimated = WindowCounts.from_state(state.get("estimated"), out.model.empty)
        out._realized = WindowCounts.from_state(state.get("realized"), out.model.empty)
        if out._estimated.n_rows >= out.window or out._realized.n_rows > out._estimated.n_rows:
            raise ValueError("performance state has more rows than its open window can hold")
        return out


# --- fitting the reference ---------------------------------------------------------------------------------


def _band(values: list[float], reference: float, metric: str) -> MetricBand:
    """NannyML's threshold: mean +- 3 std over reference windows, clipped to the metric's range."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return MetricBand(reference=reference, mean=math.nan, std=math.nan, lower=None, upper=None, n_windows=0)
    mean, std = float(arr.mean()), float(arr.std())
    lo_limit, hi_limit = METRIC_RANGE[metric]
    lower: float | None = mean - BAND_STDS * std
    upper: float | None = mean + BAND_STDS * std
    if lo_limit is not None and lower is not None and lower <= lo_limit:
        lower = lo_limit
    if hi_limit is not None and upper is not None and upper >= hi_limit:
        upper = hi_limit
    return MetricBand(reference=reference, mean=mean, std=std, lower=lower, upper=upper, n_windows=int(arr.size))


def _bands(model: ReferenceModel, rows: _Rows, n: int, window: int) -> dict[str, MetricBand]:
    """Realized metrics on the whole reference and on each full window of it."""
    n_windows = n // window
    if n_windows < 2:
        raise ValueError(
            f"the reference has {n} usable rows: the band needs at least 2 windows of {window}; pass a smaller window"
        )
    index = np.arange(n, dtype=np.int64) // window
    keep = index < n_windows
    part = _Rows(rows.used & keep, rows.predicted, rows.weights, rows.bins, rows.losses, rows.y_hat)
    per_window = model.accumulate(part, np.minimum(index, n_windows - 1), n_windows)
    whole = model.empty.copy()
    for counts in model.accumulate(rows, np.zeros(n, dtype=np.int64), 1):
        whole.merge(counts)
    total = whole.metrics(model.binary)
    values = [counts.metrics(model.binary) for counts in per_window]
    return {name: _band([v[name] for v in values], total[name], name) for name in total}


def _score_edges(scores: np.ndarray, n_quantile: int, n_grid: int) -> list[float]:
    """ROC AUC bin edges: reference score quantiles merged with a grid uniform in log-odds."""
    q = np.quantile(scores, np.linspace(0.0, 1.0, n_quantile + 1)[1:-1]) if n_quantile > 1 else np.zeros(0)
    grid = 1.0 / (1.0 + np.exp(-np.linspace(-GRID_LOGIT, GRID_LOGIT, max(n_grid - 1, 1))))
    edges = np.unique(np.concatenate([q, grid]))
    return edges[(edges > 0.0) & (edges < 1.0)].tolist()


def fit_classification_reference(
    scores: Any,
    labels: Any,
    *,
    classes: Any = None,
    window: int = 5000,
    predicted: Any = None,
    n_quantile_edges: int = 2048,
    n_grid_edges: int = 1024,
) -> PerformanceReference:
    """CBPE's reference from a classifier's scores and the labels of the same rows.

    Rows without a label or with a non-finite score are left out. Per score column an
    isotonic calibration map is kept only where it lowers the cross-fitted calibration
    error (:func:`~driftsentinel.detectors.isotonic.needs_calibration`).
    """
    s = np.asarray(scores, dtype=np.float64)
    names, missing = canonical_classes(labels)
    names, missing = names.reshape(-1), missing.reshape(-1)
    if s.shape[0] != names.shape[0]:
        raise ValueError(f"scores have {s.shape[0]} rows, labels {names.shape[0]}")
    if classes is None:
        class_list = _sorted_classes(names[~missing])
    else:
        class_list = canonical_classes(np.asarray(list(classes)))[0].tolist()
    k = len(class_list)
    kind: Literal["binary", "multiclass"]
    if s.ndim == 1:
        if k != 2:
            raise ValueError(f"1-D scores are a binary model's, but the labels have {k} classes: {class_list[:10]}")
        kind = "binary"
    elif s.ndim == 2 and s.shape[1] >= 3:
        if s.shape[1] != k:
            raise ValueError(f"scores have {s.shape[1]} columns but there are {k} classes: {class_list[:10]}")
        kind = "multiclass"
    else:
        raise ValueError(f"scores must be (n,) for a binary model or (n, k >= 3) per class, got shape {s.shape}")
    lookup = {c: i for i, c in enumerate(class_list)}
    truth = _class_index(names, lookup)
    unknown = (truth < 0) & ~missing
    if unknown.any():
        raise ValueError(f"labels hold values that are not among the classes {class_list}: {names[unknown][0]!r}")
    s2 = s[:, None] if kind == "binary" else s
    keep = (truth >= 0) & np.isfinite(s2).all(axis=1)
    if np.any((s2[keep] < 0) | (s2[keep] > 1)):
        raise ValueError("scores must be probabilities in [0, 1]")
    s2, truth = s2[keep], truth[keep]
    pred_arg = None if predicted is None else np.asarray(predicted)[keep]
    calibration: list[IsotonicMap | None] = []
    for col in range(s2.shape[1]):
        target = (truth == (1 if kind == "binary" else col)).astype(np.float64)
        if needs_calibration(s2[:, col], target):
            x, y = fit_isotonic(s2[:, col], target)
            calibration.append(IsotonicMap(x=x.tolist(), y=np.clip(y, 0.0, 1.0).tolist()))
        else:
            calibration.append(None)
    outputs = ClassificationOutputs(
        classes=class_list,
        priors=(np.bincount(truth, minlength=k) / max(truth.shape[0], 1)).tolist(),
        calibration=calibration,
        score_edges=[_score_edges(s2[:, col], n_quantile_edges, n_grid_edges) for col in range(s2.shape[1])],
    )
    empty_band = MetricBand(reference=0.0, mean=0.0, std=0.0, lower=None, upper=None, n_windows=0)
    draft = PerformanceReference(
        kind=kind,
        window=window,
        n_rows=int(truth.shape[0]),
        metrics=dict.fromkeys(CLASSIFICATION_METRICS, empty_band),
        classification=outputs,
    )
    model = ReferenceModel(draft)
    base = model.classification_rows(s2[:, 0] if kind == "binary" else s2, pred_arg, estimate=False)
    realized = model.labelled(base, truth, indices=True)
    if realized.used.sum() != truth.shape[0]:
        raise ValueError("predicted holds values that are not among the classes")
    bands = _bands(model, realized, int(truth.shape[0]), window)
    return draft.model_copy(update={"metrics": bands})


def fit_regression_reference(
    features: Any,
    predictions: Any,
    labels: Any,
    *,
    feature_names: list[str],
    window: int = 5000,
    **hgb_params: Any,
) -> PerformanceReference:
    """DLE's reference: loss models fitted on ``features + prediction`` of labelled reference rows.

    Rows with a non-finite prediction or label are left out; missing features stay NaN
    (the trees learn where they go). ``hgb_params`` override
    :data:`~driftsentinel.detectors.loss_model.HGB_PARAMS`.
    """
    x = np.asarray(features, dtype=np.float64)
    y_hat = np.asarray(predictions, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != y_hat.shape[0] or y.shape != y_hat.shape:
        raise ValueError(
            f"features must be (n, d) and predictions, labels (n,): got {x.shape}, {y_hat.shape}, {y.shape}"
        )
    if len(feature_names) != x.shape[1]:
        raise ValueError(f"{len(feature_names)} feature names for {x.shape[1]} feature columns")
    keep = np.isfinite(y_hat) & np.isfinite(y)
    x, y_hat, y = x[keep], y_hat[keep], y[keep]
    if y.shape[0] // window < 2:
        raise ValueError(
            f"the reference has {y.shape[0]} labelled rows: the band needs at least 2 windows of {window}; "
            "pass a smaller window"
        )
    inputs = np.column_stack([x, y_hat])
    err = y - y_hat
    outputs = RegressionOutputs(
        feature_names=list(feature_names),
        abs_error_model=fit_loss_model(inputs, np.abs(err), **hgb_params),
        sq_error_model=fit_loss_model(inputs, err * err, **hgb_params),
    )
    empty_band = MetricBand(reference=0.0, mean=0.0, std=0.0, lower=None, upper=None, n_windows=0)
    draft = PerformanceReference(
        kind="regression",
        window=window,
        n_rows=int(y.shape[0]),
        metrics=dict.fromkeys(REGRESSION_METRICS, empty_band),
        regression=outputs,
    )
    model = ReferenceModel(draft)
    rows = model.labelled(model.regression_rows(None, y_hat, estimate=False), y)
    bands = _bands(model, rows, int(y.shape[0]), window)
    return draft.model_copy(update={"metrics": bands})
