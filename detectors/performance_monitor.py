"""PerformanceMonitor: one model's estimated performance per tumbling window, graded by its labels.

A model whose reference profile holds a :class:`~driftsentinel.schemas.profile.PerformanceReference`
gets one monitor per input partition (:mod:`driftsentinel.detectors.engine`). The monitor

* cuts the model's events into the tumbling windows of the window tests (``window_events``
  events, or ``window_seconds`` of event time, by the one rule of
  :func:`~driftsentinel.detectors.reference_monitor.window_cuts`, so both decide at the same rows);
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
  cannot show). At most ``max_pending_windows`` closed windows wait for labels. Episodes follow
  window order, not label-arrival order: a window older than the last one graded (its labels
  came later) is graded for the gauges and the report, and leaves the episodes as they are.

State is bounded and mergeable, never a buffer of events: the open window is its counts
(:class:`~driftsentinel.detectors.performance.WindowCounts`, accumulated batch by batch), a
closed window waiting for labels its realized counts, its number of predictions and its
position range (:class:`~driftsentinel.detectors.performance_window.Tally`). A late label
adds its joined pair to the window holding its prediction
(:class:`~driftsentinel.detectors.performance_window.PairReader`: what the pair realizes);
a metric the window's labels did not realize at ``min_label_coverage`` is not graded.

The band is the reference's: the metric's mean over reference windows of ``reference.window``
predictions +- 3 std (NannyML's thresholds). A stream window of ``n`` predictions scales the
half-widths by ``sqrt(reference.window / n)`` (a metric's sampling spread falls as one over the
root of the window), so event-time windows of any size are judged fairly; the scaled band is
then clipped to the metric's range (never the clipped band scaled). The tolerance of a grading
is the same scaled ``3 std``, at least the binomial sampling error ``3 sqrt(q (1 - q) / n)`` of a
proportion metric realized from ``n`` labels (a metric constant on the reference has std 0).

Pure: no clock, no I/O. The state is plain data (numbers, strings, numeric arrays).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftsentinel.detectors.performance import BAND_STDS, METRIC_RANGE, ReferenceModel, WindowCounts
from driftsentinel.detectors.performance_window import (
    ClassCodes,
    PairReader,
    Position,
    Tally,
    WindowClock,
    WindowRecord,
    column,
    count,
    estimator_kwargs,
    finite_or_none,
    input_fields,
    mapping,
    position_from,
    realized_channels,
    record_from,
    record_state,
    segment_positions,
)
from driftsentinel.schemas import FeatureBatch, WindowTestConfig
from driftsentinel.schemas.alerts import Status
from driftsentinel.schemas.config import PerformanceConfig
from driftsentinel.schemas.profile import MetricBand, PerformanceReference

__all__ = ["PerformanceDecision", "PerformanceMonitor"]

ESTIMATE = "performance_estimate"
CALIBRATION = "calibration_drift"
DETECTORS = (ESTIMATE, CALIBRATION)
#: 2: counts and position ranges (1, never released, kept every row's inputs: not read).
STATE_VERSION = 2
#: A restored open window may exceed a lowered ``window_events`` (it closes at the next batch's
#: first row), never this many events: a larger count is a corrupt checkpoint.
MAX_WINDOW_EVENTS = 10**12


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
        self.pairs = PairReader(self.model, self.fields, self.classes)
        self.metrics = list(reference.metrics)
        self.clock = WindowClock(windows)
        self.width = len(self.fields.columns)
        # the model's outputs must be there; a regressor's features may be missing (NaN)
        self.required = slice(self.width - 1, None) if reference.kind == "regression" else slice(None)
        self.open = self._new_window()
        self.pending: list[Tally] = []  # closed windows waiting for labels, oldest first
        self.active: dict[str, set[str]] = {d: set() for d in DETECTORS}
        self.last_estimate: WindowRecord | None = None
        self.last_graded: WindowRecord | None = None
        # the first position of the newest window graded: an older one graded later (its labels
        # came later) is stale evidence and leaves the calibration episodes alone
        self.graded_first: Position | None = None
        self.ungraded = 0  # closed windows given up before their labels covered them
        self.open_rows = 0  # events in the open window (with or without every input)
        self._closed: list[WindowRecord] = []  # estimated or graded since take_closed
        self._ungraded_taken = 0

    def _new_window(self) -> Tally:
        return Tally(self.model.empty.copy(), self.model.empty.copy())

    # ------------------------------------------------------------------ feeding
    def inputs(self, batch: FeatureBatch) -> tuple[np.ndarray, np.ndarray]:
        """The batch's estimator inputs ``(rows, columns)`` (NaN: missing) and labels (NaN: none)."""
        n = batch.n_rows
        x = np.full((n, self.width), np.nan)
        for j, name in enumerate(self.fields.columns):
            num, cat = column(batch, name)
            class_valued = name == self.fields.predicted and self.classes is not None
            if num is not None:
                x[:, j] = self.classes.codes(num.tolist()) if class_valued else num  # type: ignore[union-attr]
            if cat is not None and class_valued:
                have = np.array([v is not None for v in cat])
                if have.any():
                    x[have, j] = self.classes.codes(cat[have])  # type: ignore[union-attr]
        num, cat = column(batch, self.fields.label)
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
        (late labels that arrived before their prediction): they count as the events' own.
        """
        x, labels = self.inputs(batch)
        rows = batch.rows_in_message if batch.rows_in_message is not None else np.full(batch.n_rows, -1)
        for (offset, row), label in (early or {}).items():
            lo, hi = np.searchsorted(batch.offsets, [offset, offset + 1])
            hit = np.flatnonzero(rows[lo:hi] == row)
            if hit.size:
                labels[lo + int(hit[0])] = self._label_code(label)
        cuts = self.clock.cuts(batch.n_rows, batch.event_times)
        bounds = np.array([0, *(cut for cut, _ in cuts), batch.n_rows], dtype=np.int64)
        parts = self._counts(batch.offsets, rows, x, labels, bounds)
        out: list[PerformanceDecision] = []
        for i, (cut, decision_row) in enumerate(cuts):
            self._add(parts[i], cut - int(bounds[i]))
            t = float(batch.event_times[decision_row])
            out += self._close(decision_row, None if t != t else t)
        self._add(parts[-1], batch.n_rows - int(bounds[-2]))
        return out

    def _counts(
        self, offsets: np.ndarray, rows: np.ndarray, x: np.ndarray, labels: np.ndarray, bounds: np.ndarray
    ) -> list[tuple[WindowCounts, WindowCounts | None, Position, Position] | None]:
        """Per part of the batch between cuts: its estimated and realized counts and position range.

        Only parts that can be used get counts: the first (it continues the open window), the
        last (it opens the next) and whole windows of at least ``min_window_events`` events; a
        smaller whole window is dropped at its close, so it is ``None`` here (its events still
        count). Sparse events in short event-time windows close thousands of such windows in one
        batch, and counts per window (histograms of every score bin) would not fit in memory.
        """
        m = bounds.size - 1
        events = np.diff(bounds)
        usable = events >= self.config.min_window_events
        usable[0] = usable[-1] = True
        keep = ~np.isnan(x[:, self.required]).any(axis=1)  # a prediction without its outputs is not estimated
        keep &= np.repeat(usable, events)
        out: list[tuple[WindowCounts, WindowCounts | None, Position, Position] | None] = [None] * m
        if not keep.any():
            return out
        index = np.flatnonzero(usable)  # part of each compact part
        u = index.size
        compact = np.cumsum(usable) - 1
        part = compact[np.repeat(np.arange(m, dtype=np.int64), events)[keep]]
        x, y = x[keep], labels[keep]
        est_rows = self.model.rows(**estimator_kwargs(self.model, self.fields, x), estimate=True)
        estimated = self.model.accumulate(est_rows, part, u)
        realized: list[WindowCounts | None] = [None] * u  # no label in the batch: nothing to add
        if not np.isnan(y).all():
            truth = y if self.classes is None else np.where(np.isnan(y), -1, np.nan_to_num(y)).astype(np.int64)
            realized = list(self.model.accumulate(self.model.labelled(est_rows, truth, indices=True), part, u))
            for counts in realized:
                if counts is not None:
                    counts.n_rows = counts.n_used  # a realized window counts its labelled predictions
        spans = segment_positions(offsets[keep], rows[keep], part, u)
        for j, span in enumerate(spans):
            if span is not None:
                out[int(index[j])] = (estimated[j], realized[j], *span)
        return out

    def _add(self, part: tuple[WindowCounts, WindowCounts | None, Position, Position] | None, events: int) -> None:
        if part is not None:
            self.open.add(*part)
        self.open_rows += events

    def _close(self, row: int, event_time: float | None) -> list[PerformanceDecision]:
        window, self.open = self.open, self._new_window()
        rows, self.open_rows = self.open_rows, 0
        n = window.predictions
        if n < self.config.min_window_events:
            return []
        assert window.estimated is not None and window.first is not None and window.last is not None
        computed = window.estimated.metrics(self.model.binary)
        est = {metric: computed.get(metric, math.nan) for metric in self.metrics}  # the reference's metrics
        window.estimated = None  # a closed window keeps its record, not its expected counts
        scale = math.sqrt(self.reference.window / n)
        lower, upper, tol, ref = {}, {}, {}, {}
        for metric in self.metrics:
            band = self.reference.metrics[metric]
            ref[metric] = band.reference
            lower[metric], upper[metric] = _scaled_band(metric, band, scale, n)
            tol[metric] = max(3.0 * band.std * scale, _sampling_floor(metric, band.mean, n))
        window.record = WindowRecord(
            first_offset=window.first[0],
            last_offset=window.last[0],
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

    # ------------------------------------------------------------------ decisions
    def _judge_estimate(self, row: int, metric: str, record: WindowRecord) -> PerformanceDecision | None:
        value = record.estimate.get(metric, math.nan)
        if value != value:
            return None  # undefined on this window (e.g. one class only)
        lo, hi = record.lower[metric], record.upper[metric]
        outside = (lo is not None and value < lo) or (hi is not None and value > hi)
        status = _episode(self.active[ESTIMATE], metric, outside)
        if status is None:
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

    def _grade(self, row: int, window: Tally) -> list[PerformanceDecision]:
        """The realized metrics of a covered window, against its estimates (a metric realized from
        fewer than ``min_label_coverage`` of its predictions is NaN, and not graded)."""
        assert window.record is not None
        computed = window.realized.metrics(self.model.binary)
        realized = {metric: computed.get(metric, math.nan) for metric in self.metrics}
        need = self.config.min_label_coverage * window.predictions
        channels = realized_channels(window.realized)
        for metric, n in channels.items():
            if n < need and metric in realized:
                realized[metric] = math.nan  # e.g. multiclass ROC AUC from late labels: not realizable
        record = window.record = dataclasses.replace(window.record, realized=realized, coverage=window.coverage())
        self.last_graded = record
        self._closed.append(record)
        out: list[PerformanceDecision] = []
        if window.first is not None:
            if self.graded_first is not None and window.first < self.graded_first:
                return out  # older than the window last graded: the gauges show it, the episodes do not move
            self.graded_first = window.first
        active = self.active[CALIBRATION]
        for metric in self.metrics:
            est, real = record.estimate.get(metric, math.nan), realized.get(metric, math.nan)
            if est != est or real != real or record.tolerance[metric] != record.tolerance[metric]:
                continue
            tol = max(record.tolerance[metric], _sampling_floor(metric, real, channels.get(metric, 0)))
            status = _episode(active, metric, abs(est - real) > tol)
            if status is None:
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

    def add_labels(self, pairs: Sequence[tuple[int, int | None, Any, Any]]) -> list[PerformanceDecision]:
        """Late labels ``(prediction offset, prediction row or None, prediction, label)``, in arrival order.

        Each pair is added to the realized counts of the window holding its prediction's
        position (the open one, or a closed one waiting), by what the pair itself realizes
        (:class:`~driftsentinel.detectors.performance_window.PairReader`); a closed window whose
        coverage reaches ``min_label_coverage`` is graded at once, at the pair that completed it
        (the decision's ``row`` is that pair's index). Pairs of windows already graded or given
        up, or beyond a window's number of predictions, are ignored.
        """
        out: list[PerformanceDecision] = []
        read = self.pairs.read([p for _, _, p, _ in pairs], [y for _, _, _, y in pairs])
        for k, ((offset, row, _, _), got) in enumerate(zip(pairs, read, strict=True)):
            window = self._window_of((offset, -1 if row is None else row))
            if got is None or window is None or window.labelled >= window.predictions:
                continue
            self.pairs.add(window.realized, got)
            if window.record is not None and window.coverage() >= self.config.min_label_coverage:
                self.pending = [w for w in self.pending if w is not window]  # by identity: counts are arrays
                out += self._grade(k, window)
        return out

    def _window_of(self, position: Position) -> Tally | None:
        for window in (*self.pending, self.open):
            if window.holds(position):
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
        """Plain data: the clock, the open window's counts, the windows waiting, the episodes."""
        return {
            "version": STATE_VERSION,
            "kind": self.reference.kind,
            "columns": list(self.fields.columns),
            "clock": {"rows": self.clock.rows, "bucket": self.clock.bucket},
            "open_rows": self.open_rows,
            "open": self.open.state(),
            "pending": [w.state() for w in self.pending],
            "active": {d: sorted(m) for d, m in self.active.items()},
            "last_estimate": None if self.last_estimate is None else record_state(self.last_estimate),
            "last_graded": None if self.last_graded is None else record_state(self.last_graded),
            "graded_first": None if self.graded_first is None else list(self.graded_first),
            "ungraded": self.ungraded,
        }

    @classmethod
    def from_state(
        cls,
        state: Any,
        reference: PerformanceReference,
        config: PerformanceConfig,
        windows: WindowTestConfig,
        late_labels: bool = False,
    ) -> PerformanceMonitor:
        """Rebuild a checkpointed monitor; ``ValueError`` names what does not fit this reference.

        States of version 1 (every row's inputs, never released) are rejected."""
        mon = cls(reference, config, windows, late_labels)
        st = mapping(state, "performance")
        if st.get("version") != STATE_VERSION:
            raise ValueError(f"performance state version {st.get('version')!r} is not {STATE_VERSION}")
        if st.get("kind") != reference.kind or list(st.get("columns") or []) != list(mon.fields.columns):
            raise ValueError("performance state and reference profile disagree on the model's inputs")
        clock = mapping(st.get("clock"), "performance.clock")
        mon.clock.rows = count(clock.get("rows"), "performance.clock.rows")
        if mon.clock.rows > max(windows.window_events, MAX_WINDOW_EVENTS):
            raise ValueError(
                f"performance.clock.rows: {mon.clock.rows} events in the open window is not a count this "
                f"monitor can have made (at most {MAX_WINDOW_EVENTS:,}): a corrupt checkpoint"
            )
        mon.clock.bucket = finite_or_none(clock.get("bucket"), "performance.clock.bucket")
        mon.open_rows = count(st.get("open_rows"), "performance.open_rows")
        empty = mon.model.empty
        mon.open = Tally.from_state(st.get("open"), empty, "performance.open", closed=False)
        if mon.open.predictions > mon.open_rows:
            raise ValueError("performance.open: more predictions than the open window's events")
        pending = st.get("pending")
        if not isinstance(pending, list):
            raise ValueError("performance.pending: expected a list")
        windows_ = [Tally.from_state(w, empty, f"performance.pending[{i}]", closed=True) for i, w in enumerate(pending)]
        for i, w in enumerate(windows_):
            assert w.record is not None
            _check_metrics(w.record, reference, f"performance.pending[{i}].record")
        for i, (a, b) in enumerate(zip(windows_, [*windows_, mon.open][1:], strict=True)):
            if b.first is not None and a.last is not None and b.first <= a.last:
                raise ValueError(f"performance.pending[{i}]: positions not in stream order")
        mon.pending = windows_[-config.max_pending_windows :]
        mon._ungraded_taken = count(st.get("ungraded"), "performance.ungraded")
        mon.ungraded = mon._ungraded_taken + len(windows_) - len(mon.pending)
        active = mapping(st.get("active"), "performance.active")
        for det in DETECTORS:
            names = active.get(det, [])
            if not isinstance(names, list) or not all(isinstance(m, str) and m in reference.metrics for m in names):
                raise ValueError(f"performance.active.{det}: expected metric names of the reference")
            mon.active[det] = set(names)
        mon.graded_first = position_from(st.get("graded_first"), "performance.graded_first")
        for key in ("last_estimate", "last_graded"):
            if st.get(key) is not None:
                record = record_from(st[key], f"performance.{key}")
                _check_metrics(record, reference, f"performance.{key}")
                setattr(mon, key, record)
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
def _scaled_band(metric: str, band: MetricBand, scale: float, n: int) -> tuple[float | None, float | None]:
    """The band for a window of ``n = reference.window / scale**2`` predictions: ``mean +- 3 std * scale``
    (at least the binomial sampling error of a proportion on ``n``, :func:`_sampling_floor`: a
    metric constant over the reference windows would otherwise have a zero-width band, and
    every estimate off it by any amount would alert), then clipped to the metric's range
    (scaling a clipped bound would move a bound at the range's edge inside it: a false alarm
    on the best windows). ``None``: unbounded."""
    if (band.lower is None and band.upper is None) or not (math.isfinite(band.mean) and math.isfinite(band.std)):
        return band.lower, band.upper
    half = max(BAND_STDS * band.std * scale, _sampling_floor(metric, band.mean, n))
    lo_limit, hi_limit = METRIC_RANGE.get(metric, (None, None))
    lower = None if band.lower is None else band.mean - half
    upper = None if band.upper is None else band.mean + half
    if lower is not None and lo_limit is not None:
        lower = max(lower, lo_limit)
    if upper is not None and hi_limit is not None:
        upper = min(upper, hi_limit)
    return lower, upper


def _sampling_floor(metric: str, value: float, n: int) -> float:
    """The least tolerance of a grading: ``3 sqrt(q (1 - q) / n)``, the binomial sampling error of
    a proportion metric realized from ``n`` labelled predictions (``q`` the realized value kept
    within ``[1/n, 1 - 1/n]``, so a metric at 0 or 1 still has ~``3 / n``). A metric constant over
    the reference windows (std 0) would otherwise call every difference a calibration miss.
    0 for metrics that are not proportions (MAE, RMSE) and for ``n`` 0."""
    if METRIC_RANGE.get(metric) != (0.0, 1.0) or n <= 0:
        return 0.0
    q = min(max(value, 1.0 / n), 1.0 - 1.0 / n) if n > 1 else 0.5
    return BAND_STDS * math.sqrt(q * (1.0 - q) / n)


def _check_metrics(record: WindowRecord, reference: PerformanceReference, path: str) -> None:
    """A restored record names exactly the reference's metrics (realized: some of them), else
    ``ValueError`` naming the field: a missing one would fail at its grading, a stray one
    would become a gauge label."""
    want = set(reference.metrics)
    for key in ("estimate", "lower", "upper", "reference", "tolerance"):
        got = set(getattr(record, key))
        if got != want:
            raise ValueError(f"{path}.{key}: expected the metrics {sorted(want)}, got {sorted(got)}")
    if record.realized is not None and not set(record.realized) <= want:
        raise ValueError(f"{path}.realized: {sorted(set(record.realized) - want)} are not metrics of the reference")


def _episode(active: set[str], metric: str, off: bool) -> Status | None:
    """``metric``'s episode in ``active`` after a check that found it ``off`` (out of its band):
    ``"drift"`` when one opens, ``"resolved"`` when one closes, None when nothing changes."""
    if off and metric not in active:
        active.add(metric)
        return "drift"
    if not off and metric in active:
        active.discard(metric)
        return "resolved"
    return None


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
