"""Alert policy: detector decisions -> DriftEvents (cooldown, severity, stable ids).

Part of the engine (:mod:`driftsentinel.detectors.engine`): nothing else decides an alert.

>>> from driftsentinel.schemas import AlertPolicyConfig, WindowSummary
>>> from driftsentinel.schemas.signals import DriftSignal
>>> w = WindowSummary(count=1, mean=0.0, std=None, quantiles={}, missing_ratio=0.0)
>>> sig = DriftSignal(row=0, feature="f0", detector="adwin", status="drift", statistic=1.3,
...                   statistic_name="mean_shift_sigma", threshold=None, window=w, reference=w)
>>> policy = AlertPolicy(AlertPolicyConfig(), group_id="g")
>>> ev = policy.to_event(sig, model="m", topic="t", partition=0, offset=5, event_time=None, now=0.0)
>>> ev.severity, ev.source.offset
('critical', 5)

A sequential test alarms as soon as its statistic passes its threshold, so its ratio says
nothing of the change's size; the evidence does. A ``cusum_mean`` alarm (ratio 1.05) on
values 10 reference stds above the reference mean is critical:

>>> ref = WindowSummary(count=5000, mean=0.0, std=1.0, quantiles={}, missing_ratio=0.0)
>>> since = WindowSummary(count=3, mean=10.0, std=0.5, quantiles={}, missing_ratio=0.0)
>>> cusum = DriftSignal(row=0, feature="f0", detector="cusum_mean", status="drift", statistic=23.1,
...                     statistic_name="cusum_statistic", threshold=22.0, window=since, reference=ref)
>>> policy.severity(23.1, 22.0, "cusum_statistic"), evidence_sigma(since, ref), policy.grade(cusum)
('warning', 10.0, 'critical')
"""

from __future__ import annotations

import math

from driftsentinel.schemas import AlertPolicyConfig, DriftEvent, SourcePosition, WindowSummary
from driftsentinel.schemas.alerts import Severity, make_event_id
from driftsentinel.schemas.signals import DriftSignal

_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


def evidence_sigma(window: WindowSummary | None, reference: WindowSummary | None) -> float | None:
    """The mean shift a decision's evidence shows, in reference stds:
    ``|window.mean - reference.mean| / reference.std``; None unless both means and a
    positive, finite reference std are known (categorical features, missing shares,
    model-level detectors, a constant reference).

    >>> w = WindowSummary(count=10, mean=12.0, std=None, quantiles={}, missing_ratio=None)
    >>> r = WindowSummary(count=10, mean=10.0, std=4.0, quantiles={}, missing_ratio=None)
    >>> evidence_sigma(w, r), evidence_sigma(w, r.model_copy(update={"std": None}))
    (0.5, None)
    """
    if window is None or reference is None or window.mean is None or reference.mean is None:
        return None
    std = reference.std
    if std is None or not (math.isfinite(std) and std > 0.0):
        return None
    shift = abs(window.mean - reference.mean) / std
    return shift if math.isfinite(shift) else None


class AlertPolicy:
    """Decides which signals become events, and builds them."""

    def __init__(self, config: AlertPolicyConfig, group_id: str) -> None:
        self.config = config
        self.group_id = group_id
        # (topic, partition, model, feature, detector) -> offset of the last 'drift' event
        self._last_drift: dict[tuple[str, int, str, str, str], int] = {}

    def severity(
        self, statistic: float | None, threshold: float | None = None, name: str = "mean_shift_sigma"
    ) -> Severity:
        """'critical' / 'warning' / 'info', growing with the statistic.

        Mean shifts (change detectors) by their size in reference stds; window tests and
        concept drift by the statistic over its threshold (>= ``critical_ratio`` x is critical).
        """
        if name != "mean_shift_sigma" and threshold:
            ratio = abs(statistic or 0.0) / abs(threshold)
            return "critical" if ratio >= self.config.critical_ratio else "warning"
        size = abs(statistic) if statistic is not None else 0.0
        if size >= self.config.critical_sigma:
            return "critical"
        if size >= self.config.warning_sigma:
            return "warning"
        return "info"

    def grade(self, signal: DriftSignal) -> Severity:
        """A drift decision's severity: the higher of :meth:`severity` of its statistic and
        :meth:`severity` of the mean shift its evidence shows (:func:`evidence_sigma`).

        The statistic's rule alone grades a sequential test (which alarms as its statistic
        just passes its threshold) ``warning`` whatever the size of the change, and a feature
        episode is published under whichever detector decided first; the evidence makes a
        10-sd level shift ``critical`` whoever opened it.
        """
        by_statistic = self.severity(signal.statistic, signal.threshold, signal.statistic_name)
        shift = evidence_sigma(signal.window, signal.reference)
        if shift is None:
            return by_statistic
        by_evidence = self.severity(shift)
        return by_evidence if _RANK[by_evidence] > _RANK[by_statistic] else by_statistic

    def admit(
        self, signal: DriftSignal, model: str, topic: str, partition: int, offset: int, *, episode: bool = False
    ) -> bool:
        """False when a 'drift' event for the same feature/detector is within the cooldown.

        ``episode``: the signal opens a feature episode (:mod:`~driftsentinel.detectors.episodes`),
        whose detectors share it: a 'drift' event of the feature by any detector counts.
        """
        if signal.status != "drift":
            return True
        key = (topic, partition, model, signal.feature, signal.detector)
        if episode and self.config.cooldown_events:  # the feature's last drift event, whoever opened it
            last = max((off for k, off in self._last_drift.items() if k[:4] == key[:4]), default=None)
        else:
            last = self._last_drift.get(key)
        if last is not None and offset - last < self.config.cooldown_events:
            return False
        self._last_drift[key] = offset
        return True

    def export_partition(self, topic: str, partition: int) -> list[list[str | int]]:
        """The cooldown state of one input partition, for its checkpoint."""
        return [
            [model, feature, detector, offset]
            for (t, p, model, feature, detector), offset in self._last_drift.items()
            if t == topic and p == partition
        ]

    def load_partition(self, topic: str, partition: int, entries: list[list[str | int]]) -> None:
        """Replace one partition's cooldown state (from its checkpoint; ``[]`` to forget it)."""
        for key in [k for k in self._last_drift if k[0] == topic and k[1] == partition]:
            del self._last_drift[key]
        for model, feature, detector, offset in entries:
            self._last_drift[(topic, partition, str(model), str(feature), str(detector))] = int(offset)

    def to_event(
        self,
        signal: DriftSignal,
        *,
        model: str,
        topic: str,
        partition: int,
        offset: int,
        event_time: float | None,
        now: float,
        row: int | None = None,
        detector: str | None = None,
        detectors: list[str] | None = None,
    ) -> DriftEvent:
        """The DriftEvent of an admitted signal; its id is a function of its position and decision.

        ``detector`` (default: the signal's) is the one named by the event (a feature episode's
        opener), ``detectors`` (default: ``[detector]``) all of the episode's; see
        :mod:`~driftsentinel.detectors.episodes`.
        """
        name = detector or signal.detector
        return DriftEvent(
            event_id=make_event_id(
                self.group_id,
                topic,
                partition,
                offset,
                f"{model}/{signal.feature}",
                name,
                signal.status,
                row,
            ),
            model=model,
            feature=signal.feature,
            detector=name,
            detectors=detectors or [name],
            status=signal.status,
            severity=self.grade(signal) if signal.status == "drift" else "info",
            statistic=signal.statistic,
            statistic_name=signal.statistic_name,
            threshold=signal.threshold,
            source=SourcePosition(topic=topic, partition=partition, offset=offset, row=row),
            event_time=event_time,
            detected_at=now,
            window=signal.window,
            reference=signal.reference,
            change_point=signal.change_point,
        )
