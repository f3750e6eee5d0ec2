"""PerformanceMonitor: one model's estimated performance per tumbling window, graded by its labels.

A model whose reference profile holds a :class:`~driftsentinel.schemas.profile.PerformanceReference`
gets one monitor per input partition (:mod:`driftsentinel.detectors.engine`). The monitor

* cuts the model's events into the tumbling windows of the window tests (``window_events``
  events, or ``window_seconds`` of event time, by the rule of
  :class:`~driftsentinel.detectors.reference_monitor.ReferenceMonitor`, so both decide at the
  same rows);
* reads each event's estimator inputs from its batch row: the fields the reference names
  (``@prediction``, per-class probability features, the regression model's features);
* at each window's close, estimates the model's metrics without labels
  (:class:`~driftsentinel.detectors.performance.PerformanceEstimator`: CBPE for classifiers, DLE
  for regressors) and compares each with the reference's band: outside it opens a
  ``performance_estimate`` episode (one ``drift`` decision), the first later window inside it
  closes the episode (``resolved``);
* grades itself: labels come with the events (``@label``) or later by id
  (:class:`~driftsentinel.detectors.labels.JoinedLabel`, mapped to its window by the prediction's
  offset and row). Once a closed window's label coverage reaches ``min_label_coverage``, its
  realized metrics are computed once and compared with its estimates; a miss larger than the
  reference's sampling band opens a ``calibration_drift`` episode (the estimator no longer
  describes the model: the relation between inputs and labels changed, which input drift
  cannot show). At most ``max_pending_windows`` closed windows wait for labels.

The band is the reference's: the metric's mean over reference windows of ``reference.window``
predictions +- 3 std (NannyML's thresholds). A stream window of ``n`` predictions scales the
half-widths by ``sqrt(reference.window / n)`` (a metric's sampling spread falls as one over the
root of the window), so event-time windows of any size are judged fairly. The tolerance of a
grading is the same scaled ``3 std``.

Pure: no clock, no I/O. The state is plain data (numbers, strings, numeric arrays).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftsentinel.detectors.categories import canonical
from driftsentinel.detectors.performance import RealizedWindow, ReferenceModel
from driftsentinel.schemas import FeatureBatch, WindowTestConfig
from driftsentinel.schemas.alerts import Status
from driftsentinel.schemas.config import PerformanceConfig
from driftsentinel.schemas.profile import PerformanceReference

ESTIMATE = "performance_estimate"
CALIBRATION = "calibration_drift"
DETECTORS = (ESTIMATE, CALIBRATION)
STATE_VERSION = 1

#: The estimator's view of a window: (inputs, labels) -> metric -> value.
Metrics = dict[str, float]


# ---------------------------------------------------------------------------------------- windows
class WindowClock:
    """Where tumbling windows close: the window tests' rule (count, or event time with follow-back).

    ``rows`` counts the events of the open window; ``bucket`` is the open event-time window's
    number. :meth:`cuts` returns ``(rows before the cut, decision row)`` per close in a batch.

    >>> clock = WindowClock(WindowTestConfig(window_events=10))
    >>> clock.cuts(25, np.full(25, np.nan)), clock.rows
    ([(10, 9), (20, 19)], 5)
    """

    def __init__(self, config: WindowTestConfig) -> None:
        self.window_events = config.window_events
        self.window_seconds = config.window_seconds
        self.tolerance = config.event_time_tolerance_s
        self.rows = 0
        self.bucket: float | None = None

    def cuts(self, n: int, event_times: np.ndarray) -> list[tuple[int, int]]:
        """Closes in a batch of ``n`` rows, and the open window's rows after it."""
        cuts: list[tuple[int, int]] = []
        sec = self.window_seconds
        if sec is None:
            pos = self.window_events - self.rows
            while pos <= n:
                cuts.append((pos, pos - 1))
                pos += self.window_events
        else:
            times = np.asarray(event_times, dtype=np.float64)
            buckets = np.floor(times / sec)
            current, last = self.bucket, 0
            for i in np.flatnonzero(np.isfinite(buckets)).tolist():
                b = float(buckets[i])
                if current is None:
                    current = b
                elif b > current:  # the first event of a later window closes the current one
                    if (0 if cuts else self.rows) + (i - last) > 0:
                        cuts.append((i, i))
                        last = i
                    current = b
                elif times[i] < current * sec - self.tolerance:
                    current = b  # a clock that jumped back: follow it
            self.bucket = current
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
            return (*self.features, self.prediction or "@prediction")
        return (*self.scores, *((self.predicted,) if self.predicted else ()))


def input_fields(ref: PerformanceReference) -> InputFields:
    """The fields a reference reads (recorded by ``driftsentinel baseline``)."""
    recorded = getattr(ref, "inputs", None)
    if ref.kind == "regression":
        assert ref.regression is not None
        prediction = getattr(recorded, "prediction", None) or "@prediction"
        return InputFields(ref.kind, features=tuple(ref.regression.feature_names), prediction=prediction)
    assert ref.classification is not None
    scores = tuple(getattr(recorded, "scores", None) or ("@prediction",))
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


def _column(batch: FeatureBatch, name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    num = batch.values[:, batch.names.index(name)] if name in batch.names else None
    cat = batch.cat_values[:, batch.cat_names.index(name)] if name in batch.cat_names else None  # type: ignore[index]
    return num, cat


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
    estimate: Metrics
    lower: dict[str, float | None]
    upper: dict[str, float | None]
    reference: Metrics
    tolerance: Metrics
    realized: Metrics | None = None
    coverage: float = 0.0


@dataclass(frozen=True)
class PerformanceDecision:
    """A decision about one metric: at batch row ``row`` (:meth:`PerformanceMonitor.update`) or
    at label ``row`` of the labels given (:meth:`PerformanceMonitor.add_labels`)."""

    row: int
    metric: str
    detector: str
    status: Status
    statistic: float
    value: float
    reference: float
    reference_count: int
    window: WindowRecord
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Window:
    """A window's rows: positions, estimator inputs and labels (NaN: none yet)."""

    offsets: np.ndarray
    rows: np.ndarray  # row inside a columnar message, -1 for one-event messages
    inputs: np.ndarray
    labels: np.ndarray
    record: WindowRecord | None = None
    labelled: int = -1  # labels present (counted once, then kept up to date)

    def __post_init__(self) -> None:
        if self.labelled < 0:
            self.labelled = int(np.count_nonzero(~np.isnan(self.labels)))

    @classmethod
    def empty(cls, width: int) -> _Window:
        return cls(
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros((0, width)),
            np.zeros(0, dtype=np.float64),
        )

    def find(self, offset: int, row: int) -> int:
        """The index of the prediction at ``(offset, row)``, or -1."""
        lo = int(np.searchsorted(self.offsets, offset, side="left"))
        hi = int(np.searchsorted(self.offsets, offset, side="right"))
        if hi - lo == 1 and int(self.rows[lo]) in (row, -1):
            return lo
        hits = np.flatnonzero(self.rows[lo:hi] == row)
        return lo + int(hits[0]) if hits.size else -1

    def coverage(self) -> float:
        n = self.labels.size
        return self.labelled / n if n else 0.0

    def set_label(self, i: int, code: float) -> None:
        if code == code and self.labels[i] != self.labels[i]:
            self.labelled += 1
            self.labels[i] = code

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "offsets": self.offsets,
            "rows": self.rows,
            "inputs": self.inputs,
            "labels": self.labels,
        }
        if self.record is not None:
            out["record"] = _record_state(self.record)
        return out


# ---------------------------------------------------------------------------------------- estimation
def _outputs(model: ReferenceModel, fields: InputFields, inputs: np.ndarray) -> dict[str, Any]:
    """The estimator's keyword arguments from a window's input columns (classes coded as indices)."""
    if model.n_classes == 0:
        return {"features": inputs[:, :-1], "predictions": inputs[:, -1]}
    k = len(fields.scores)
    scores = inputs[:, 0] if model.binary else inputs[:, :k]
    predicted = None
    if fields.predicted is not None:
        predicted = np.asarray(model.classes, dtype=object)[inputs[:, k].astype(np.int64)]
    return {"scores": scores, "predicted": predicted}


def estimate_window(model: ReferenceModel, fields: InputFields, inputs: np.ndarray) -> Metrics:
    """CBPE / DLE of one window's predictions (:mod:`driftsentinel.detectors.performance`)."""
    kwargs = {"scores": None, "predicted": None, "features": None, "predictions": None}
    rows = model.rows(**{**kwargs, **_outputs(model, fields, inputs)}, estimate=True)
    (counts,) = model.accumulate(rows, np.zeros(inputs.shape[0], dtype=np.int64), 1)
    return counts.metrics(model.binary)


def realize_window(model: ReferenceModel, fields: InputFields, inputs: np.ndarray, labels: np.ndarray) -> Metrics:
    """The realized metrics of a window's labelled predictions (``labels``: class indices or values)."""
    window = RealizedWindow(model)
    truth: Any = labels
    if model.n_classes:
        truth = np.asarray(model.classes, dtype=object)[labels.astype(np.int64)]
    window.add(labels=truth, **_outputs(model, fields, inputs))
    return window.metrics()


# ---------------------------------------------------------------------------------------- monitor


class PerformanceMonitor:
    """Estimated and realized performance of one model on one input partition."""

    def __init__(
        self,
        reference: PerformanceReference,
        config: PerformanceConfig,
        windows: WindowTestConfig,
        late_labels: bool = False,
    ) -> None:
        self.reference = reference
        self.model = ReferenceModel(reference)
        self.config = config
        self.late_labels = late_labels
        self.fields = input_fields(reference)
        self.classes = ClassCodes(reference.classification.classes) if reference.classification is not None else None
        self.metrics = list(reference.metrics)
        self.clock = WindowClock(windows)
        self.width = len(self.fields.columns)
        # the model's outputs must be there; a regressor's features may be missing (NaN)
        self.required = slice(self.width - 1, None) if reference.kind == "regression" else slice(None)
        self._chunks: list[_Window] = []  # the open window's rows, batch by batch
        self.pending: list[_Window] = []  # closed windows waiting for labels, oldest first
        self.active: dict[str, set[str]] = {d: set() for d in DETECTORS}
        self.last_estimate: WindowRecord | None = None
        self.last_graded: WindowRecord | None = None
        self.ungraded = 0  # closed windows given up before their labels covered them
        self.open_rows = 0  # events in the open window (with or without every input)
        self._closed: list[WindowRecord] = []  # estimated or graded since take_closed
        self._ungraded_taken = 0

    # ------------------------------------------------------------------ feeding
    def inputs(self, batch: FeatureBatch) -> tuple[np.ndarray, np.ndarray]:
        """The batch's estimator inputs ``(rows, columns)`` (NaN: missing) and labels (NaN: none)."""
        n = batch.n_rows
        x = np.full((n, self.width), np.nan)
        for j, name in enumerate(self.fields.columns):
            num, cat = _column(batch, name)
            class_valued = name == self.fields.predicted and self.classes is not None
            if num is not None:
                x[:, j] = self.classes.codes(num.tolist()) if class_valued else num  # type: ignore[union-attr]
            if cat is not None and class_valued:
                have = np.array([v is not None for v in cat])
                if have.any():
                    x[have, j] = self.classes.codes(cat[have])  # type: ignore[union-attr]
        num, cat = _column(batch, self.fields.label)
        labels = np.full(n, np.nan)
        if self.classes is None:
            if num is not None:
                labels = num.copy()
        else:
            if num is not None:
                labels = self.classes.codes(num.tolist())
            if cat is not None:
                have = np.array([v is not None for v in cat], dtype=bool)
                if have.any():
                    labels[have] = self.classes.codes(cat[have])
        return x, labels

    def update(self, batch: FeatureBatch, early: dict[tuple[int, int], Any] | None = None) -> list[PerformanceDecision]:
        """Feed one batch of the model's events; decisions at the windows that close in it.

        ``early``: labels already joined to predictions of this batch, by ``(offset, row or -1)``
        (late labels that arrived before their prediction).
        """
        x, labels = self.inputs(batch)
        rows = batch.rows_in_message if batch.rows_in_message is not None else np.full(batch.n_rows, -1)
        for (offset, row), label in (early or {}).items():
            lo, hi = np.searchsorted(batch.offsets, [offset, offset + 1])
            hit = np.flatnonzero(rows[lo:hi] == row)
            if hit.size:
                labels[lo + int(hit[0])] = self._label_code(label)
        out: list[PerformanceDecision] = []
        start = 0
        for cut, decision_row in self.clock.cuts(batch.n_rows, batch.event_times):
            self._take(batch.offsets, rows, x, labels, start, cut)
            start = cut
            t = float(batch.event_times[decision_row])
            out += self._close(decision_row, None if t != t else t)
        self._take(batch.offsets, rows, x, labels, start, batch.n_rows)
        return out

    def _take(self, offsets: np.ndarray, rows: np.ndarray, x: np.ndarray, labels: np.ndarray, a: int, b: int) -> None:
        if b <= a:
            return
        keep = ~np.isnan(x[a:b, self.required]).any(axis=1)  # a prediction without its outputs is not estimated
        if keep.all():
            self._chunks.append(_Window(offsets[a:b], rows[a:b], x[a:b], labels[a:b]))
        elif keep.any():
            self._chunks.append(_Window(offsets[a:b][keep], rows[a:b][keep], x[a:b][keep], labels[a:b][keep]))
        self.open_rows += b - a

    def _close(self, row: int, event_time: float | None) -> list[PerformanceDecision]:
        window = self._concat()
        rows, self.open_rows = self.open_rows, 0
        n = window.offsets.size
        if n < self.config.min_window_events:
            return []
        est = estimate_window(self.model, self.fields, window.inputs)
        scale = math.sqrt(self.reference.window / n)
        lower, upper, tol, ref = {}, {}, {}, {}
        for metric in self.metrics:
            band = self.reference.metrics[metric]
            ref[metric] = band.reference
            lo, hi = _scaled(band.lower, band.mean, scale), _scaled(band.upper, band.mean, scale)
            lower[metric], upper[metric] = lo, hi
            tol[metric] = 3.0 * band.std * scale
        window.record = WindowRecord(
            first_offset=int(window.offsets[0]),
            last_offset=int(window.offsets[-1]),
            rows=rows,
            predictions=n,
            event_time=event_time,
            estimate=est,
            lower=lower,
            upper=upper,
            reference=ref,
            tolerance=tol,
        )
        self.last_estimate = window.record
        self._closed.append(window.record)
        out = [d for metric in self.metrics if (d := self._judge_estimate(row, metric, window.record)) is not None]
        if window.coverage() >= self.config.min_label_coverage:
            out += self._grade(row, window)
        elif self.late_labels:
            self.pending.append(window)
            while len(self.pending) > self.config.max_pending_windows:
                self.pending.pop(0)
                self.ungraded += 1
        else:
            self.ungraded += 1
        return out

    def _concat(self) -> _Window:
        chunks, self._chunks = self._chunks, []
        if not chunks:
            return _Window.empty(self.width)
        if len(chunks) == 1:
            return chunks[0]
        return _Window(
            np.concatenate([c.offsets for c in chunks]),
            np.concatenate([c.rows for c in chunks]),
            np.concatenate([c.inputs for c in chunks]),
            np.concatenate([c.labels for c in chunks]),
        )

    # ------------------------------------------------------------------ decisions
    def _judge_estimate(self, row: int, metric: str, record: WindowRecord) -> PerformanceDecision | None:
        value = record.estimate.get(metric, math.nan)
        if value != value:
            return None  # undefined on this window (e.g. one class only)
        lo, hi = record.lower[metric], record.upper[metric]
        outside = (lo is not None and value < lo) or (hi is not None and value > hi)
        active = self.active[ESTIMATE]
        status: Status
        if outside and metric not in active:
            status = "drift"
            active.add(metric)
        elif not outside and metric in active:
            status = "resolved"
            active.discard(metric)
        else:
            return None
        band = self.reference.metrics[metric]
        evidence = {
            "metric": metric,
            "estimate": value,
            "lower": lo,
            "upper": hi,
            "reference_value": record.reference[metric],
            "reference_window": self.reference.window,
            **_window_evidence(record),
        }
        return PerformanceDecision(
            row,
            metric,
            ESTIMATE,
            status,
            _deviation(value, band.mean, record.tolerance[metric]),
            value,
            record.reference[metric],
            self.reference.n_rows,
            record,
            evidence,
        )

    def _grade(self, row: int, window: _Window) -> list[PerformanceDecision]:
        """The realized metrics of a covered window, against its estimates."""
        assert window.record is not None
        have = ~np.isnan(window.labels)
        realized = realize_window(self.model, self.fields, window.inputs[have], window.labels[have])
        record = window.record = _replace(window.record, realized=realized, coverage=window.coverage())
        self.last_graded = record
        self._closed.append(record)
        out: list[PerformanceDecision] = []
        active = self.active[CALIBRATION]
        for metric in self.metrics:
            est, real, tol = (
                record.estimate.get(metric, math.nan),
                realized.get(metric, math.nan),
                record.tolerance[metric],
            )
            if est != est or real != real or tol != tol:
                continue
            miss = abs(est - real) > tol
            status: Status
            if miss and metric not in active:
                status = "drift"
                active.add(metric)
            elif not miss and metric in active:
                status = "resolved"
                active.discard(metric)
            else:
                continue
            evidence = {
                "metric": metric,
                "estimate": est,
                "realized": real,
                "difference": est - real,
                "tolerance": tol,
                "label_coverage": record.coverage,
                **_window_evidence(record),
            }
            out.append(
                PerformanceDecision(
                    row,
                    metric,
                    CALIBRATION,
                    status,
                    _deviation(est, real, tol),
                    real,
                    est,
                    record.predictions,
                    record,
                    evidence,
                )
            )
        return out

    def add_labels(self, keys: Sequence[tuple[int, int | None, Any]]) -> list[PerformanceDecision]:
        """Late labels ``(prediction offset, prediction row or None, label)``, in arrival order.

        Each is written to its prediction's window (the open one, or a closed one waiting);
        a closed window whose coverage reaches ``min_label_coverage`` is graded at once, at
        the label that completed it (the decision's ``row`` is that label's index in ``keys``).
        Labels of windows already graded or given up are ignored.
        """
        if len(self._chunks) > 1:
            self._chunks = [self._concat()]
        out: list[PerformanceDecision] = []
        for k, (offset, row, label) in enumerate(keys):
            window = self._window_of(offset)
            if window is None:
                continue
            i = window.find(offset, -1 if row is None else row)
            if i < 0:
                continue
            window.set_label(i, self._label_code(label))
            if window.record is not None and window.coverage() >= self.config.min_label_coverage:
                self.pending.remove(window)
                out += self._grade(k, window)
        return out

    def _window_of(self, offset: int) -> _Window | None:
        for window in (*self.pending, *self._chunks):
            if window.offsets.size and int(window.offsets[0]) <= offset <= int(window.offsets[-1]):
                return window
        return None

    def _label_code(self, label: Any) -> float:
        if self.classes is not None:
            return self.classes.code(label)
        if isinstance(label, bool):
            return float(label)
        try:
            return float(label)
        except (TypeError, ValueError):
            return math.nan

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Plain data: the clock, the open window's rows, the windows waiting, the episodes."""
        return {
            "version": STATE_VERSION,
            "kind": self.reference.kind,
            "columns": list(self.fields.columns),
            "clock": {"rows": self.clock.rows, "bucket": self.clock.bucket},
            "open_rows": self.open_rows,
            "open": self._concat_keep().state(),
            "pending": [w.state() for w in self.pending],
            "active": {d: sorted(m) for d, m in self.active.items()},
            "last_estimate": None if self.last_estimate is None else _record_state(self.last_estimate),
            "last_graded": None if self.last_graded is None else _record_state(self.last_graded),
            "ungraded": self.ungraded,
        }

    def _concat_keep(self) -> _Window:
        window = self._concat()
        self._chunks = [window] if window.offsets.size else []
        return window

    @classmethod
    def from_state(
        cls,
        state: Any,
        reference: PerformanceReference,
        config: PerformanceConfig,
        windows: WindowTestConfig,
        late_labels: bool = False,
    ) -> PerformanceMonitor:
        """Rebuild a checkpointed monitor; ``ValueError`` names what does not fit this reference."""
        mon = cls(reference, config, windows, late_labels)
        st = _mapping(state, "performance")
        if st.get("version") != STATE_VERSION:
            raise ValueError(f"performance state version {st.get('version')!r} is not {STATE_VERSION}")
        if st.get("kind") != reference.kind or list(st.get("columns") or []) != list(mon.fields.columns):
            raise ValueError("performance state and reference profile disagree on the model's inputs")
        clock = _mapping(st.get("clock"), "performance.clock")
        mon.clock.rows = _count(clock.get("rows"), "performance.clock.rows")
        bucket = clock.get("bucket")
        mon.clock.bucket = _finite_or_none(bucket, "performance.clock.bucket")
        mon.open_rows = _count(st.get("open_rows"), "performance.open_rows")
        opened = _window(st.get("open"), mon.width, "performance.open", record=False)
        mon._chunks = [opened] if opened.offsets.size else []
        pending = st.get("pending")
        if not isinstance(pending, list):
            raise ValueError("performance.pending: expected a list")
        windows_ = [_window(w, mon.width, f"performance.pending[{i}]", record=True) for i, w in enumerate(pending)]
        mon.pending = windows_[-config.max_pending_windows :]
        mon._ungraded_taken = _count(st.get("ungraded"), "performance.ungraded")
        mon.ungraded = mon._ungraded_taken + len(windows_) - len(mon.pending)
        active = _mapping(st.get("active"), "performance.active")
        for det in DETECTORS:
            names = active.get(det, [])
            if not isinstance(names, list) or not all(isinstance(m, str) and m in reference.metrics for m in names):
                raise ValueError(f"performance.active.{det}: expected metric names of the reference")
            mon.active[det] = set(names)
        for key in ("last_estimate", "last_graded"):
            if st.get(key) is not None:
                setattr(mon, key, _record_from(st[key], f"performance.{key}"))
        return mon

    # ------------------------------------------------------------------ read-outs
    def readout(self) -> tuple[WindowRecord | None, WindowRecord | None]:
        """The last estimated window and the last graded one."""
        return self.last_estimate, self.last_graded

    def take_closed(self) -> list[WindowRecord]:
        """Windows estimated, and windows graded, since the last call (in that order of events)."""
        closed, self._closed = self._closed, []
        return closed

    def take_ungraded(self) -> int:
        """Windows given up ungraded since the last call."""
        new, self._ungraded_taken = self.ungraded - self._ungraded_taken, self.ungraded
        return new


# ---------------------------------------------------------------------------------------- helpers
def _scaled(bound: float | None, mean: float, scale: float) -> float | None:
    """A band bound with its distance from the mean scaled (``None``: unbounded)."""
    if bound is None or not math.isfinite(bound) or not math.isfinite(mean):
        return bound
    return mean + (bound - mean) * scale


def _deviation(value: float, center: float, tolerance: float) -> float:
    """``value - center`` in units of ``tolerance`` (the band's half-width); raw when there is none."""
    if not tolerance > 0 or not math.isfinite(tolerance):
        return value - center
    return (value - center) / tolerance


def _window_evidence(record: WindowRecord) -> dict[str, Any]:
    return {
        "window_predictions": record.predictions,
        "window_rows": record.rows,
        "window_first_offset": record.first_offset,
        "window_last_offset": record.last_offset,
    }


def _replace(record: WindowRecord, **changes: Any) -> WindowRecord:
    return dataclasses.replace(record, **changes)


_RECORD_FIELDS = ("first_offset", "last_offset", "rows", "predictions", "event_time", "coverage")
_RECORD_MAPS = ("estimate", "lower", "upper", "reference", "tolerance")


def _record_state(record: WindowRecord) -> dict[str, Any]:
    out: dict[str, Any] = {k: getattr(record, k) for k in _RECORD_FIELDS}
    for k in _RECORD_MAPS:
        out[k] = dict(getattr(record, k))
    out["realized"] = None if record.realized is None else dict(record.realized)
    return out


def _record_from(state: Any, path: str) -> WindowRecord:
    st = _mapping(state, path)
    ints: dict[str, Any] = {
        k: _count(st.get(k), f"{path}.{k}") for k in ("first_offset", "last_offset", "rows", "predictions")
    }
    maps: dict[str, Any] = {}
    for k in (*_RECORD_MAPS, "realized"):
        value = st.get(k)
        if value is None and k == "realized":
            maps[k] = None
            continue
        got = _mapping(value, f"{path}.{k}")
        maps[k] = {str(m): _number_or_none(v, f"{path}.{k}.{m}", none=k in ("lower", "upper")) for m, v in got.items()}
    return WindowRecord(
        **ints,
        event_time=_finite_or_none(st.get("event_time"), f"{path}.event_time"),
        coverage=float(_number_or_none(st.get("coverage"), f"{path}.coverage") or 0.0),
        **maps,
    )


def _window(state: Any, width: int, path: str, record: bool) -> _Window:
    st = _mapping(state, path)
    arrays = {}
    for key, kind, ndim in (("offsets", "i", 1), ("rows", "i", 1), ("inputs", "f", 2), ("labels", "f", 1)):
        a = st.get(key)
        if not isinstance(a, np.ndarray) or a.dtype.kind != kind or a.ndim != ndim:
            raise ValueError(f"{path}.{key}: expected a {ndim}-d {'integer' if kind == 'i' else 'float'} array")
        arrays[key] = np.array(a, dtype=np.int64 if kind == "i" else np.float64)  # a writable copy
    n = arrays["offsets"].shape[0]
    if arrays["rows"].shape != (n,) or arrays["labels"].shape != (n,) or arrays["inputs"].shape != (n, width):
        raise ValueError(f"{path}: arrays disagree in length, or inputs are not {width} columns")
    if n > 1 and bool((arrays["offsets"][1:] < arrays["offsets"][:-1]).any()):
        raise ValueError(f"{path}.offsets: not in order")
    window = _Window(arrays["offsets"], arrays["rows"], arrays["inputs"], arrays["labels"])
    if record:
        window.record = _record_from(st.get("record"), f"{path}.record")
    return window


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a dict, got {type(value).__name__!r}")
    return value


def _count(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 0:
        raise ValueError(f"{path}: expected a non-negative integer, got {value!r}")
    return int(value)


def _number_or_none(value: Any, path: str, none: bool = True) -> float | None:
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{path}: expected a number, got {type(value).__name__!r}")
    return float(value)


def _finite_or_none(value: Any, path: str) -> float | None:
    """A number that must be finite to be used; a non-finite one restarts from nothing."""
    number = _number_or_none(value, path)
    return number if number is not None and math.isfinite(number) else None
