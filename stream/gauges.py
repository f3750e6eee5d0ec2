"""Gauges from the engine's read-outs (the metrics themselves are declared in :mod:`driftsentinel.stream.metrics`).

Feature gauges (mean, missing ratio, scores, window sizes, drift flags) and the late-label
join's waiting ids come from :meth:`driftsentinel.detectors.engine.Engine.readouts`; consumer
lag from the consumer's positions and cached watermarks. They are refreshed at most once a
second (per event they cost ~20 % of the loop); a published alert flips its drift flag at once.

Live performance estimation (models with a performance reference) has its own gauges,
declared here on the same registry and series budget (:class:`PerformanceGauges`).
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaException

from driftsentinel.detectors.engine import Output, Readouts
from driftsentinel.detectors.performance_window import WindowRecord
from driftsentinel.schemas import DriftEvent
from driftsentinel.stream.metrics import PREFIX, Counter, Gauge, Metrics

log = logging.getLogger("driftsentinel")


class PerformanceGauges:
    """``driftsentinel_performance_*{model,metric}``: the last window's estimate, the band it was
    judged by and the reference value; the last graded window's realized value and the estimate's
    error (estimate - realized); windows given up before their labels covered them.

    >>> m = Metrics()
    >>> g = PerformanceGauges(m)
    >>> rec = WindowRecord(0, 4999, 5000, 5000, None, {"roc_auc": 0.91}, {"roc_auc": 0.95}, {"roc_auc": None},
    ...                    {"roc_auc": 0.97}, {"roc_auc": 0.01}, {"roc_auc": 0.80}, 1.0)
    >>> g.update({"m": (rec, rec)})
    >>> b"driftsentinel_performance_band_upper{" in m.render(), round(g.error.labels("m", "roc_auc")._value.get(), 2)
    (False, 0.11)
    """

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        labels = ["model", "metric"]
        self.estimate = Gauge(
            f"{PREFIX}_performance_estimate",
            "Estimated metric of the model's last closed window (CBPE for classifiers, DLE for regressors).",
            labels,
            registry=r,
        )
        self.lower = Gauge(
            f"{PREFIX}_performance_band_lower",
            "Lower bound of the reference band the last estimate was judged by (absent: unbounded).",
            labels,
            registry=r,
        )
        self.upper = Gauge(
            f"{PREFIX}_performance_band_upper",
            "Upper bound of the reference band the last estimate was judged by (absent: unbounded).",
            labels,
            registry=r,
        )
        self.reference = Gauge(
            f"{PREFIX}_performance_reference", "The metric on the whole labelled reference.", labels, registry=r
        )
        self.realized = Gauge(
            f"{PREFIX}_performance_realized",
            "Realized metric of the last window whose labels reached min_label_coverage.",
            labels,
            registry=r,
        )
        self.error = Gauge(
            f"{PREFIX}_performance_estimate_error",
            "Estimate minus realized value of that window (calibration_drift when beyond the band's half-width).",
            labels,
            registry=r,
        )
        self.ungraded = Counter(
            f"{PREFIX}_performance_windows_ungraded",
            "Closed windows given up before their labels covered them (max_pending_windows, or no labels).",
            ["model"],
            registry=r,
        )

    def update(self, performance: dict[str, tuple[WindowRecord | None, WindowRecord | None]]) -> None:
        for model, (estimated, graded) in performance.items():
            if estimated is not None:
                for metric, value in estimated.estimate.items():
                    _set(self.estimate, model, metric, value)
                    _set(self.lower, model, metric, estimated.lower.get(metric))
                    _set(self.upper, model, metric, estimated.upper.get(metric))
                    _set(self.reference, model, metric, estimated.reference.get(metric))
            if graded is not None and graded.realized is not None:
                for metric, value in graded.realized.items():
                    _set(self.realized, model, metric, value)
                    est = graded.estimate.get(metric)
                    _set(self.error, model, metric, None if est is None else est - value)


class SegmentGauges:
    """``driftsentinel_segment_*``: the segment banks of ``detectors.segments`` (a bounded set:
    ``max_segments + 1`` per model and key), with ``key`` and ``segment`` labels; the overall
    stream's gauges stay as they are (no segment label, so their sums do not change).

    >>> from driftsentinel.schemas.signals import FeatureStatus
    >>> m = Metrics()
    >>> g = SegmentGauges(m)
    >>> st = FeatureStatus(feature="x", live_mean=1.5, missing_ratio=0.0, drift={"adwin": True})
    >>> g.update(Readouts([], {}, 0, segments=[("m", "country", "NL", [st])], segments_pooled={("m", "country"): 7}))
    >>> g.drift.labels("m", "x", "adwin", "country", "NL")._value.get(), g.pooled.labels("m", "country")._value.get()
    (1.0, 7.0)
    """

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.drift = Gauge(
            f"{PREFIX}_segment_drift_detected",
            "1 while the detector holds the feature in drift within the segment (key = value), else 0.",
            ["model", "feature", "detector", "key", "segment"],
            registry=r,
        )
        self.mean = Gauge(
            f"{PREFIX}_segment_feature_mean",
            "Mean of the feature's live window within the segment.",
            ["model", "feature", "key", "segment"],
            registry=r,
        )
        self.pooled = Gauge(
            f"{PREFIX}_segment_events_pooled",
            "Events whose key value was beyond detectors.segments.max_segments (pooled as __other__), "
            "on the partitions held.",
            ["model", "key"],
            registry=r,
        )

    def update(self, readouts: Readouts) -> None:
        for model, key, value, statuses in readouts.segments:
            for st in statuses:
                if st.live_mean is not None:
                    self.mean.labels(model, st.feature, key, value).set(st.live_mean)
                for det, flag in st.drift.items():
                    self.drift.labels(model, st.feature, det, key, value).set(1 if flag else 0)
        for (model, key), n in readouts.segments_pooled.items():
            self.pooled.labels(model, key).set(n)

    def alert(self, event: DriftEvent) -> None:
        segment = event.segment
        if segment is None:
            return
        for detector in event.detectors:
            self.drift.labels(event.model, event.feature, detector, segment.key, segment.value).set(
                1 if event.status == "drift" else 0
            )


def _set(gauge: Gauge, model: str, metric: str, value: float | None) -> None:
    """Set a series; an undefined value (None, NaN) leaves it as it was (or absent)."""
    if value is not None and value == value:
        gauge.labels(model, metric).set(value)


class Gauges:
    """Sets the gauges of ``metrics``; keeps the lag it saw for the throughput log line."""

    def __init__(self, metrics: Metrics, log_interval_s: float) -> None:
        self.metrics = metrics
        self.performance = PerformanceGauges(metrics)
        self.segments = SegmentGauges(metrics)
        self.log_interval_s = log_interval_s
        self.lag: dict[tuple[str, int], int] = {}
        self._last = 0.0
        self._last_report = (time.monotonic(), 0)

    def due(self, force: bool = False) -> bool:
        """Once a second (or ``force``)."""
        now = time.monotonic()
        if not force and now - self._last < 1.0:
            return False
        self._last = now
        return True

    def features(self, readouts: Readouts) -> None:
        m = self.metrics
        drift: dict[tuple[str, str, str], bool] = {}
        for model, statuses in readouts.statuses:
            for st in statuses:
                if st.live_mean is not None:
                    m.feature_mean.labels(model, st.feature).set(st.live_mean)
                if st.missing_ratio is not None:
                    m.missing_ratio.labels(model, st.feature).set(st.missing_ratio)
                for stat, value in st.scores.items():
                    m.drift_score.labels(model, st.feature, stat).set(value)
                for det, size in st.window_size.items():
                    m.window_size.labels(model, st.feature, det).set(size)
                for det, flag in st.drift.items():
                    drift[(model, st.feature, det)] = drift.get((model, st.feature, det), False) or flag
        for labels, flag in drift.items():
            m.drift_detected.labels(*labels).set(1 if flag else 0)
        for side, n in readouts.labels_pending.items():
            m.labels_pending.labels(side).set(n)
        if readouts.performance:
            self.performance.update(readouts.performance)
        if readouts.segments or readouts.segments_pooled:
            self.segments.update(readouts)

    def alert(self, event: DriftEvent) -> None:
        self.metrics.alerts.labels(event.model, event.feature, event.detector, event.status).inc()
        if event.segment is not None:  # a segment's: its own gauge, not the overall feature's
            self.segments.alert(event)
            return
        # a drift event's detectors all decided drift at it; a resolved event's have all resolved
        for detector in event.detectors:
            self.metrics.drift_detected.labels(event.model, event.feature, detector).set(
                1 if event.status == "drift" else 0
            )

    def consumer_lag(self, consumer: Consumer) -> None:
        try:
            assigned = consumer.assignment()
            positions = consumer.position(assigned) if assigned else []
        except KafkaException:
            return
        for tp in positions:
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                lag = max(high - tp.offset, 0)
                self.lag[(tp.topic, tp.partition)] = lag
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)

    def forget(self, topic: str, partition: int) -> None:
        self.lag.pop((topic, partition), None)

    def report_throughput(self, consumed: int) -> None:
        """One log line every ``log_interval_s`` (lag as of the last gauge update)."""
        now = time.monotonic()
        since, count = self._last_report
        if now - since < self.log_interval_s:
            return
        self._last_report = (now, consumed)
        log.info(
            "throughput messages=%d rate=%.0f/s lag=%d partitions=%d",
            consumed,
            (consumed - count) / (now - since),
            sum(self.lag.values()),
            len(self.lag),
        )

    def counts(self, topic: str, partition: int, out: Output) -> None:
        """The counters and the event-time gauge of one engine call's output."""
        m = self.metrics
        for model, n in out.events_per_model.items():
            m.events.labels(model).inc(n)
        if out.dropped_model_events:
            m.model_events_dropped.inc(out.dropped_model_events)
        for model, n in out.event_time_fallbacks.items():
            m.event_time_fallbacks.labels(model).inc(n)
        for model, n in out.dropped_values.items():
            m.features_dropped.labels(model).inc(n)
        for model, n in out.labels_joined.items():
            m.labels_joined.labels(model).inc(n)
        for side, n in out.labels_unmatched.items():
            m.labels_unmatched.labels(side).inc(n)
        for model, n in out.performance_ungraded.items():
            if n:
                self.performance.ungraded.labels(model).inc(n)
        if out.newest_event_time is not None:  # one gauge update per partition and batch, not per event
            m.last_event_ts.labels(topic, str(partition)).set(out.newest_event_time)
