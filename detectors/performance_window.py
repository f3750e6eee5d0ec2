"""The bounded state behind :class:`~driftsentinel.detectors.performance_monitor.PerformanceMonitor`.

A window of one model's predictions is kept as counts, never as rows
(:class:`~driftsentinel.detectors.performance.WindowCounts`: expected confusion counts and
calibrated-score histograms for CBPE, sums of predicted losses for DLE; the same sums with
the labels for the realized metrics). :class:`Tally` is one window: its counts, its number of
predictions and its position range ``(offset, row)`` .. ``(offset, row)`` (``row`` -1 for a
one-event message), which maps a late label to it by its prediction's position. Its size does
not depend on the window's length.

A late label (a :class:`~driftsentinel.detectors.labels.JoinedLabel`) brings its prediction's
``prediction`` value, not the row's estimator inputs: :class:`PairReader` reads what that pair
realizes (every metric of a binary model whose score is ``@prediction`` and of a regressor
whose prediction is ``@prediction``; the confusion-count metrics only when ``@prediction``
is the predicted class, e.g. a multiclass model whose class scores are features). Pure: no
clock, no I/O.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftsentinel.detectors.categories import canonical
from driftsentinel.detectors.performance import ReferenceModel, WindowCounts
from driftsentinel.detectors.reference_monitor import window_cuts
from driftsentinel.schemas import FeatureBatch, WindowTestConfig
from driftsentinel.schemas.profile import PerformanceReference

#: A prediction's place on its partition: (offset, row in a columnar message or -1).
Position = tuple[int, int]
#: The metrics each part of the counts realizes.
CONFUSION_METRICS = ("accuracy", "precision", "recall", "f1")
HISTOGRAM_METRICS = ("roc_auc",)
PREDICTION = "@prediction"


class WindowClock:
    """Where tumbling windows close: the window tests' rule (:func:`window_cuts`).

    ``rows`` counts the events of the open window; ``bucket`` is the open event-time window's
    number. :meth:`cuts` returns ``(rows before the cut, decision row)`` per close in a batch.

    >>> clock = WindowClock(WindowTestConfig(window_events=10))
    >>> clock.cuts(25, np.full(25, np.nan)), clock.rows
    ([(10, 9), (20, 19)], 5)
    """

    def __init__(self, config: WindowTestConfig) -> None:
        self.config = config
        self.rows = 0
        self.bucket: float | None = None

    def cuts(self, n: int, event_times: np.ndarray) -> list[tuple[int, int]]:
        """Closes in a batch of ``n`` rows (the open window's rows counted on past them)."""
        cuts, self.bucket = window_cuts(self.config, n, event_times, self.rows, self.bucket)
        self.rows = n - cuts[-1][0] if cuts else self.rows + n
        return cuts


# ---------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class InputFields:
    """Which batch fields feed the estimator, in the order of its input columns.

    ``scores``: per-class probability fields (binary: the positive class's score, one field);
    ``predicted``: the predicted class's field (``None``: the score against the reference's
    decision threshold); ``features`` and ``prediction``: a regressor's inputs and output.
    """

    kind: str
    scores: tuple[str, ...] = ()
    predicted: str | None = None
    features: tuple[str, ...] = ()
    prediction: str | None = None
    label: str = "@label"

    @property
    def columns(self) -> tuple[str, ...]:
        """The numeric input columns (a class-valued ``predicted`` is coded to its class index)."""
        if self.kind == "regression":
            return (*self.features, self.prediction or PREDICTION)
        return (*self.scores, *((self.predicted,) if self.predicted else ()))


def input_fields(ref: PerformanceReference) -> InputFields:
    """The fields a reference reads (recorded by ``driftsentinel baseline``)."""
    recorded = getattr(ref, "inputs", None)
    if ref.kind == "regression":
        assert ref.regression is not None
        prediction = getattr(recorded, "prediction", None) or PREDICTION
        return InputFields(ref.kind, features=tuple(ref.regression.feature_names), prediction=prediction)
    assert ref.classification is not None
    scores = tuple(getattr(recorded, "scores", None) or (PREDICTION,))
    predicted = getattr(recorded, "predicted", None)
    return InputFields(ref.kind, scores=scores, predicted=predicted)


class ClassCodes:
    """A label or predicted class as its index among the reference's classes (NaN: unknown).

    Class names are the labels' strings; a value matches by its canonical category string
    (``1``, ``1.0`` and ``"1"`` alike; ``true``/``false`` also as 1/0 when the classes are booleans).

    >>> codes = ClassCodes(["0.0", "1.0"])
    >>> [codes.code(v) for v in (1, "0", True, "x", None)]
    [1.0, 0.0, 1.0, nan, nan]
    """

    def __init__(self, classes: Sequence[str]) -> None:
        self.boolean = False
        self.boolean = {_BOOL.get(self._key(c) or "", "") for c in classes} == {"true", "false"}
        self.index = {self._key(c): float(i) for i, c in enumerate(classes)}

    def _key(self, value: Any) -> str | None:
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        text = canonical(value)
        return _BOOL.get(text, text) if self.boolean and text is not None else text

    def code(self, value: Any) -> float:
        if value is None:
            return math.nan
        return self.index.get(self._key(value) or "", math.nan)

    def codes(self, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        return np.array([self.code(v) for v in values], dtype=np.float64)


#: Class names that read as booleans (a label ``true`` matches a class ``1``).
_BOOL = {"1": "true", "0": "false", "true": "true", "false": "false"}


def column(batch: FeatureBatch, name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A field's numeric and categorical columns in a batch (``None``: not there)."""
    num = batch.values[:, batch.names.index(name)] if name in batch.names else None
    cat = batch.cat_values[:, batch.cat_names.index(name)] if name in batch.cat_names else None  # type: ignore[index]
    return num, cat


def estimator_kwargs(model: ReferenceModel, fields: InputFields, inputs: np.ndarray) -> dict[str, Any]:
    """:meth:`ReferenceModel.rows` keyword arguments from input columns (classes coded as indices)."""
    if model.n_classes == 0:
        return {"scores": None, "predicted": None, "features": inputs[:, :-1], "predictions": inputs[:, -1]}
    k = len(fields.scores)
    scores = inputs[:, 0] if model.binary else inputs[:, :k]
    predicted = None
    if fields.predicted is not None:
        predicted = np.asarray(model.classes, dtype=object)[inputs[:, k].astype(np.int64)]
    return {"scores": scores, "predicted": predicted, "features": None, "predictions": None}


# ---------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class WindowRecord:
    """One closed window of one model: its estimates, the bands it was judged by, and (once
    graded) its realized metrics. What gauges show and the replay report plots."""

    first_offset: int
    last_offset: int
    rows: int
    predictions: int
    event_time: float | None
    estimate: dict[str, float]
    lower: dict[str, float | None]
    upper: dict[str, float | None]
    reference: dict[str, float]
    tolerance: dict[str, float]
    realized: dict[str, float] | None = None
    coverage: float = 0.0


# ---------------------------------------------------------------------------------------- windows
@dataclass(eq=False)  # compared by identity: its counts are arrays (``==`` would be ambiguous)
class Tally:
    """One window's bounded state: counts, predictions, position range (nothing per row).

    The open window has its ``estimated`` counts too; a closed one has its ``record`` instead.
    ``realized``: the counts of its labelled predictions (``n_used``: how many).
    """

    realized: WindowCounts
    estimated: WindowCounts | None = None
    predictions: int = 0
    first: Position | None = None
    last: Position | None = None
    record: WindowRecord | None = None

    @property
    def labelled(self) -> int:
        """Predictions with a label counted."""
        return self.realized.n_used

    def coverage(self) -> float:
        """Share of the window's predictions with their label."""
        return self.labelled / self.predictions if self.predictions else 0.0

    def holds(self, position: Position) -> bool:
        """Is ``position`` inside the window's range?"""
        return self.first is not None and self.last is not None and self.first <= position <= self.last

    def add(self, estimated: WindowCounts, realized: WindowCounts | None, first: Position, last: Position) -> None:
        """Add one batch's part of the window (``estimated.n_rows`` predictions; ``realized``: its labelled ones)."""
        assert self.estimated is not None
        self.estimated.merge(estimated)
        if realized is not None:
            self.realized.merge(realized)
        self.predictions += estimated.n_rows
        self.first = first if self.first is None else self.first
        self.last = last

    def state(self) -> dict[str, Any]:
        """Plain data: counts as arrays (realized ones as exact integers where they fit)."""
        out: dict[str, Any] = {
            "predictions": self.predictions,
            "first": None if self.first is None else list(self.first),
            "last": None if self.last is None else list(self.last),
            "realized": _counts_state(self.realized, integral=True),
        }
        if self.estimated is not None:
            out["estimated"] = _counts_state(self.estimated, integral=False)
        if self.record is not None:
            out["record"] = record_state(self.record)
        return out

    @classmethod
    def from_state(cls, state: Any, empty: WindowCounts, path: str, closed: bool) -> Tally:
        """Read :meth:`state` back; ``ValueError`` names what is wrong (shapes, sizes, order, counts)."""
        st = mapping(state, path)
        want = {"predictions", "first", "last", "realized", "record" if closed else "estimated"}
        if set(st) != want:
            raise ValueError(f"{path}: expected exactly the keys {sorted(want)}, got {sorted(st)}")
        tally = cls(_counts_from(st["realized"], empty, f"{path}.realized"))
        tally.predictions = count(st["predictions"], f"{path}.predictions")
        tally.first = position_from(st["first"], f"{path}.first")
        tally.last = position_from(st["last"], f"{path}.last")
        if (tally.first is None) != (tally.last is None) or (tally.first is None) != (tally.predictions == 0):
            raise ValueError(f"{path}: a window with predictions has a first and a last position, an empty one none")
        if tally.first is not None and tally.last is not None and tally.first > tally.last:
            raise ValueError(f"{path}: first position {tally.first} after last {tally.last}")
        if tally.realized.n_rows != tally.realized.n_used:
            raise ValueError(f"{path}.realized: n_rows and n_used differ (a realized window counts labelled rows)")
        if tally.realized.n_used > tally.predictions:
            raise ValueError(f"{path}.realized: more labelled predictions than the window's {tally.predictions}")
        if closed:
            tally.record = record_from(st["record"], f"{path}.record")
            if tally.first is None or tally.predictions != tally.record.predictions:
                raise ValueError(f"{path}: the record's predictions disagree with the window's")
            if (tally.record.first_offset, tally.record.last_offset) != (tally.first[0], tally.last[0]):  # type: ignore[index]
                raise ValueError(f"{path}: the record's offsets disagree with the window's positions")
        else:
            tally.estimated = _counts_from(st["estimated"], empty, f"{path}.estimated")
            if tally.estimated.n_rows != tally.predictions:
                raise ValueError(
                    f"{path}.estimated: counts of {tally.estimated.n_rows} rows, the window has {tally.predictions}"
                )
        return tally


def _counts_state(counts: WindowCounts, integral: bool) -> dict[str, Any]:
    hist = counts.hist
    if integral and hist.size and float(hist.max()) < 2**32:
        hist = hist.astype("<u4")  # exact (realized counts are whole numbers), half the bytes
    return {
        "n_rows": counts.n_rows,
        "n_used": counts.n_used,
        "confusion": counts.confusion.copy(),
        "hist": hist if hist is not counts.hist else hist.copy(),
        "sums": counts.sums.copy(),
    }


def _counts_from(state: Any, empty: WindowCounts, path: str) -> WindowCounts:
    st = mapping(state, path)
    for key in ("confusion", "hist", "sums"):
        arr = st.get(key)
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iuf":
            raise ValueError(f"{path}.{key}: expected a numeric array")
    try:
        return WindowCounts.from_state(st, empty)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def position_from(value: Any, path: str) -> Position | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"{path}: expected [offset, row] or None")
    offset = count(value[0], f"{path}[0]")
    row = value[1]
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or int(row) < -1:
        raise ValueError(f"{path}[1]: expected a row >= -1, got {row!r}")
    return offset, int(row)


def segment_positions(
    offsets: np.ndarray, rows: np.ndarray, segment: np.ndarray, m: int
) -> list[tuple[Position, Position] | None]:
    """Per segment ``0..m-1`` of a batch's kept rows (``segment`` sorted): its first and last position."""
    starts = np.searchsorted(segment, np.arange(m), side="left")
    ends = np.searchsorted(segment, np.arange(m), side="right")
    out: list[tuple[Position, Position] | None] = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        out.append(None if b <= a else ((int(offsets[a]), int(rows[a])), (int(offsets[b - 1]), int(rows[b - 1]))))
    return out


# ---------------------------------------------------------------------------------------- late labels
class PairReader:
    """What a joined ``(prediction, label)`` pair adds to its window's realized counts.

    The pair holds the event's ``prediction`` only: a binary model whose score field is
    ``@prediction`` gets its histogram row (ROC AUC) and, unless its predicted class is
    another field, its confusion count; a classifier whose ``@prediction`` is the predicted
    class (``predicted: "@prediction"``, or class scores in features and no predicted field)
    gets its confusion count (accuracy, precision, recall, F1); a regressor whose prediction
    is ``@prediction`` its absolute and squared error.
    """

    def __init__(self, model: ReferenceModel, fields: InputFields, classes: ClassCodes | None) -> None:
        self.model, self.classes = model, classes
        self.regression = model.n_classes == 0 and fields.prediction == PREDICTION
        self.histogram = model.binary and fields.scores == (PREDICTION,)
        if fields.predicted is not None:
            self.confusion_from = "pair" if fields.predicted == PREDICTION else ""
        else:
            self.confusion_from = "score" if self.histogram else "pair"
        if model.n_classes == 0:
            self.confusion_from = ""

    @property
    def metrics(self) -> frozenset[str]:
        """The metrics late labels realize."""
        if self.model.n_classes == 0:
            return frozenset(("mae", "rmse") if self.regression else ())
        out = set(HISTOGRAM_METRICS) if self.histogram else set()
        return frozenset(out | (set(CONFUSION_METRICS) if self.confusion_from else set()))

    def read(self, predictions: Sequence[Any], labels: Sequence[Any]) -> list[PairRow | None]:
        """Per pair, its contribution (``None``: nothing this model can realize from it)."""
        n = len(predictions)
        if self.model.n_classes == 0:
            y_hat, y = _floats(predictions), _floats(labels)
            ok = np.isfinite(y_hat) & np.isfinite(y) & self.regression
            err = np.where(ok, y - y_hat, 0.0)
            return [PairRow(err=float(err[i])) if ok[i] else None for i in range(n)]
        assert self.classes is not None
        truth = _codes(self.classes.codes(labels))
        pred = np.full(n, -1, dtype=np.int64)
        bins = np.zeros((n, 1), dtype=np.int64)
        scored = np.zeros(n, dtype=bool)
        if self.histogram:
            rows = self.model.classification_rows(_floats(predictions), None, estimate=False)
            scored, bins = rows.used, rows.bins
            if self.confusion_from == "score":
                pred = np.where(scored, rows.predicted, -1)
        if self.confusion_from == "pair":
            pred = _codes(self.classes.codes(predictions))
        out: list[PairRow | None] = []
        for i in range(n):
            t, p, s = int(truth[i]), int(pred[i]), bool(scored[i])
            out.append(None if t < 0 or (p < 0 and not s) else PairRow(t, p, int(bins[i, 0]) if s else -1))
        return out

    def add(self, counts: WindowCounts, row: PairRow) -> None:
        """Add one pair to a window's realized counts."""
        counts.n_rows += 1
        counts.n_used += 1
        if self.model.n_classes == 0:
            counts.sums[0] += abs(row.err)
            counts.sums[1] += row.err * row.err
            return
        if row.predicted >= 0:
            counts.confusion[row.truth, row.predicted] += 1.0
        if row.bin >= 0:
            counts.hist[0, row.bin, 1 if row.truth == 1 else 0] += 1.0


@dataclass(frozen=True)
class PairRow:
    """One pair's contribution: class indices (-1: none) and score bin (-1: none), or a regressor's error."""

    truth: int = -1
    predicted: int = -1
    bin: int = -1
    err: float = 0.0


def realized_channels(counts: WindowCounts) -> dict[str, int]:
    """Labelled predictions each metric was realized from (a late label may realize only some)."""
    if counts.sums.shape[0]:
        return {"mae": counts.n_used, "rmse": counts.n_used}
    confusion = int(round(float(counts.confusion.sum())))
    histogram = int(round(float(counts.hist[0].sum()))) if counts.hist.size else 0
    return {**dict.fromkeys(CONFUSION_METRICS, confusion), **dict.fromkeys(HISTOGRAM_METRICS, histogram)}


def _floats(values: Sequence[Any]) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        with contextlib.suppress(TypeError, ValueError):
            out[i] = float(v)
    return out


def _codes(codes: np.ndarray) -> np.ndarray:
    """Float class codes (NaN: none) as integers (-1: none)."""
    return np.where(np.isnan(codes), -1, np.nan_to_num(codes, nan=-1.0)).astype(np.int64)


# ---------------------------------------------------------------------------------------- plain data
_RECORD_FIELDS = ("first_offset", "last_offset", "rows", "predictions", "event_time", "coverage")
_RECORD_MAPS = ("estimate", "lower", "upper", "reference", "tolerance")


def record_state(record: WindowRecord) -> dict[str, Any]:
    """A window record as plain data."""
    out: dict[str, Any] = {k: getattr(record, k) for k in _RECORD_FIELDS}
    for k in _RECORD_MAPS:
        out[k] = dict(getattr(record, k))
    out["realized"] = None if record.realized is None else dict(record.realized)
    return out


def record_from(state: Any, path: str) -> WindowRecord:
    """Read :func:`record_state` back (``ValueError`` names the field)."""
    st = mapping(state, path)
    ints: dict[str, Any] = {
        k: count(st.get(k), f"{path}.{k}") for k in ("first_offset", "last_offset", "rows", "predictions")
    }
    if ints["first_offset"] > ints["last_offset"]:
        raise ValueError(f"{path}: first_offset after last_offset")
    maps: dict[str, Any] = {}
    for k in (*_RECORD_MAPS, "realized"):
        value = st.get(k)
        if value is None and k == "realized":
            maps[k] = None
            continue
        got = mapping(value, f"{path}.{k}")
        maps[k] = {str(m): number_or_none(v, f"{path}.{k}.{m}", none=k in ("lower", "upper")) for m, v in got.items()}
    return WindowRecord(
        **ints,
        event_time=finite_or_none(st.get("event_time"), f"{path}.event_time"),
        coverage=float(number_or_none(st.get("coverage"), f"{path}.coverage") or 0.0),
        **maps,
    )


def mapping(value: Any, path: str) -> dict[str, Any]:
    """``value`` if it is a dict, else a ``ValueError`` naming ``path``."""
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a dict, got {type(value).__name__!r}")
    return value


def count(value: Any, path: str) -> int:
    """A non-negative integer, else a ``ValueError`` naming ``path``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 0:
        raise ValueError(f"{path}: expected a non-negative integer, got {value!r}")
    return int(value)


def number_or_none(value: Any, path: str, none: bool = True) -> float | None:
    """A number (or ``None`` where allowed), else a ``ValueError`` naming ``path``."""
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{path}: expected a number, got {type(value).__name__!r}")
    return float(value)


def finite_or_none(value: Any, path: str) -> float | None:
    """A number that must be finite to be used; a non-finite one restarts from nothing."""
    number = number_or_none(value, path)
    return number if number is not None and math.isfinite(number) else None
