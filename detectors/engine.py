"""The engine: decoded events in, DriftEvents, state and read-outs out. The one place alerts are decided.

``run`` (the Kafka sidecar) and ``replay`` (a file) both drive an :class:`Engine`; for the
same events, positions and config they publish the same DriftEvents (only ``detected_at``,
the ``now`` they pass in, differs). The engine holds, per input partition ``(topic,
partition)``: the :class:`~driftsentinel.detectors.bank.DetectorBank` of each model, the
alert policy's cooldowns (:mod:`~driftsentinel.detectors.policy`), the feature episodes
(:mod:`~driftsentinel.detectors.episodes`: one change, one alert), the late-label join
(:mod:`~driftsentinel.detectors.labels`), and ``replay_until``: alerts of offsets below it
were committed before a restart, so their decisions are re-made (to bring the detectors up
to date) but not said again. It reads no clock, does no I/O and logs nothing.

Inputs are ``(offset, message, message_time)``: a message is a decoded FeatureEvent
(:class:`~driftsentinel.schemas.fastdecode.EventView`) or columnar batch
(:class:`~driftsentinel.schemas.columnar.ColumnBatch`); ``message_time`` (seconds) is the
late-label join's clock. Labels are ``(offset, LabelEvent, message_time)`` of the labels
topic's partition with the same number. Within one :meth:`Engine.process` call, events are
detected in offset order, then the pairs their predictions completed; :meth:`Engine.process_labels`
detects the pairs its labels completed. A call's feature alerts come in stream order (offset,
then row), whatever the models: their order does not depend on how the stream is cut into calls.

>>> from driftsentinel.schemas import SidecarConfig
>>> from driftsentinel.schemas.fastdecode import EventView
>>> engine = Engine(SidecarConfig(), input_topic="features")
>>> rng = np.random.default_rng(0)
>>> x = np.r_[rng.normal(0, 1, 3000), rng.normal(3, 1, 3000)]
>>> items = [(i, EventView(model="m", features={"x": float(v)}), 0.0) for i, v in enumerate(x)]
>>> out = engine.process("features", 0, items, now=0.0)
>>> [(e.feature, e.detector, e.status, e.detectors) for e in out.events]  # the others agreed later: they joined
[('x', 'cusum_mean', 'drift', ['cusum_mean'])]
>>> engine.state("features", 0)["episodes"][0][3]
['cusum_mean', 'cusum_shape', 'page_hinkley', 'cusum_scale', 'adwin']
>>> min(e.source.offset for e in out.events) >= 3000
True
>>> out.events_per_model
{'m': 6000}
>>> restored = Engine(SidecarConfig(), input_topic="features")
>>> restored.restore("features", 0, engine.state("features", 0), replay_until=6000)
>>> [m for m, _ in restored.readouts().statuses]
['m']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.batching import MessageTimes, columnar_to_batch, to_batches
from driftsentinel.detectors.concept import pair_error
from driftsentinel.detectors.episodes import DRIFT_ONLY, FeatureEpisodes
from driftsentinel.detectors.labels import JoinedLabel, LabelJoin
from driftsentinel.detectors.performance_monitor import PerformanceDecision, PerformanceMonitor
from driftsentinel.detectors.performance_window import WindowRecord
from driftsentinel.detectors.policy import AlertPolicy
from driftsentinel.detectors.segments import SegmentedBanks, SegmentSignal, key_name, overall_bank_config
from driftsentinel.schemas import DriftEvent, FeatureBatch, SidecarConfig, WindowSummary
from driftsentinel.schemas.alerts import Segment
from driftsentinel.schemas.columnar import ColumnBatch
from driftsentinel.schemas.fastdecode import EventView
from driftsentinel.schemas.labels import LabelEvent
from driftsentinel.schemas.profile import ReferenceProfile
from driftsentinel.schemas.signals import DriftSignal, FeatureStatus

#: Joins a segment feature's name to its segment inside the engine (cooldowns, episodes, event ids).
SEGMENT_TAG = "@segment:"
#: ``(offset, decoded message, message time in seconds)``
Item = tuple[int, EventView | ColumnBatch, float]
#: ``(offset on the labels topic, label, message time in seconds)``
LabelItem = tuple[int, LabelEvent, float]


def _newest_time(items: Sequence[Item]) -> float | None:
    """The event time of the last message that has one."""
    for _, message, _ in reversed(items):
        if isinstance(message, ColumnBatch):
            last = float(message.ts[-1])
            if last == last:
                return last
        elif message.ts.__class__ is float or message.ts.__class__ is int:
            return float(message.ts)
    return None


def _stream_order(event: DriftEvent) -> tuple[int, int]:
    return event.source.offset, -1 if event.source.row is None else event.source.row


def _add(counts: dict[str, int], key: str, n: int) -> None:
    if n:
        counts[key] = counts.get(key, 0) + n


@dataclass
class Output:
    """What one call decided, and the counts the shell turns into metrics.

    ``events``: the DriftEvents to publish, in decision order; ``events_per_model``: rows
    processed whose alerts are live (not re-made after a restart); ``dropped_values``: values
    of features a bank did not admit; ``labels_joined`` per model and ``labels_unmatched`` per
    side (``prediction`` / ``label``); ``orphan_labels``: labels whose input partition is not
    here; ``label_alerts``: a late-label alert is among ``events`` (the shell checkpoints the
    partition with it: the two topics interleave differently after a restart, so a re-read must
    never cross it); ``newest_event_time``: the last event ``ts`` seen; ``dropped_model_events``:
    rows (live ones, as ``events_per_model``) of models over ``detectors.max_models``, not monitored;
    ``event_time_fallbacks``: live rows per model whose ``ts`` was more than
    ``event_time_tolerance_s`` from their message time (message time used instead);
    ``performance_windows``: ``(model, window)`` of every window estimated in this call, and
    again once graded by its labels (replay's report); ``performance_ungraded``: windows per
    model given up in this call before their labels covered them; ``detections``: every live
    decision as its detector's own DriftEvent (``detectors`` just itself), also those that
    joined a feature episode instead of being published: what each test decided (replay's
    report), where ``events`` is what is published.
    """

    events: list[DriftEvent] = field(default_factory=list)
    detections: list[DriftEvent] = field(default_factory=list)
    events_per_model: dict[str, int] = field(default_factory=dict)
    dropped_values: dict[str, int] = field(default_factory=dict)
    labels_joined: dict[str, int] = field(default_factory=dict)
    labels_unmatched: dict[str, int] = field(default_factory=dict)
    orphan_labels: int = 0
    label_alerts: bool = False
    newest_event_time: float | None = None
    dropped_model_events: int = 0
    event_time_fallbacks: dict[str, int] = field(default_factory=dict)
    performance_windows: list[tuple[str, WindowRecord]] = field(default_factory=list)
    performance_ungraded: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Readouts:
    """What the gauges show: each bank's feature statuses, the join's waiting ids, the widest bank;
    per model with a performance reference, its last estimated window and its last graded one
    (of the partition whose window closed last by event time, when a model spans partitions)."""

    statuses: list[tuple[str, list[FeatureStatus]]]
    labels_pending: dict[str, int]
    widest: int
    performance: dict[str, tuple[WindowRecord | None, WindowRecord | None]] = field(default_factory=dict)
    #: ``(model, key, segment value, statuses)`` of every segment bank (``detectors.segments``: a bounded set)
    segments: list[tuple[str, str, str, list[FeatureStatus]]] = field(default_factory=list)
    #: ``(model, key) -> rows pooled as __other__`` (values beyond ``max_segments``), summed over partitions
    segments_pooled: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class _Partition:
    banks: dict[str, DetectorBank] = field(default_factory=dict)
    replay_until: int = 0
    labels: LabelJoin | None = None
    labels_replay_until: int | None = 0  # None: the labels partition is not here, its alerts are not ours
    performance: dict[str, PerformanceMonitor] = field(default_factory=dict)
    episodes: FeatureEpisodes = field(default_factory=lambda: FeatureEpisodes(0))
    segments: dict[str, dict[str, SegmentedBanks]] = field(default_factory=dict)  # model -> key -> banks


#: Where a bank's signals were decided: topic, partition, its state, model, batch, the events' own
#: times, the model's event number of the batch's first row (the episodes' clock), and ``now``.
_Where = tuple[str, int, _Partition, str, FeatureBatch, NDArray[np.float64], int, float]


def _published_before(hit: JoinedLabel, part: _Partition) -> bool:
    """Was the alert of this pair published before the restart (or is it not ours)?

    It went out in the transaction that processed the pair's second message, whichever
    topic that came from; an earlier message is never in a later transaction, so the alert
    was committed exactly when both messages are below their partitions' committed offsets
    (``replay_until``, ``labels_replay_until``), however the re-read interleaves them. The
    side an alert points at (:attr:`JoinedLabel.at_prediction`, by message time) says
    nothing about that: labels produced after their predictions but read ahead of them are
    committed long before the pairs they complete, and a restart between the two lost the
    alert when only the label's offset was compared.
    """
    if part.labels_replay_until is None:
        return True  # the labels partition is not here: its alerts are not ours
    label_done = hit.offset < part.labels_replay_until
    prediction_done = hit.prediction_offset is None or hit.prediction_offset < part.replay_until
    return label_done and prediction_done


class Engine:
    """Detector banks, alert policy and late-label join per input partition.

    ``input_topic``: the topic whose partitions pair with the labels topic's (``labels_topic``;
    ``None``: no late labels). ``on_batch(model, batch)`` sees every column batch before the
    banks do (replay's report recorder).
    """

    def __init__(
        self,
        config: SidecarConfig,
        input_topic: str,
        labels_topic: str | None = None,
        profile: ReferenceProfile | None = None,
        on_batch: Callable[[str, FeatureBatch], None] | None = None,
    ) -> None:
        self.config = config
        self.input_topic = input_topic
        self.labels_topic = labels_topic
        self.profile = profile
        self.on_batch = on_batch
        self.policy = AlertPolicy(config.alerts, config.kafka.group_id)
        self._parts: dict[tuple[str, int], _Partition] = {}

    # ------------------------------------------------------------------ partitions
    def restore(
        self,
        topic: str,
        partition: int,
        state: Mapping[str, Any] | None,
        *,
        replay_until: int = 0,
        labels_replay_until: int | None = 0,
    ) -> None:
        """(Re)start a partition from :meth:`state`'s dict, or empty (``None``).

        Alerts of offsets below ``replay_until`` (labels: ``labels_replay_until``; ``None``:
        never) were published before: they are decided again but not returned. Raises
        ``ValueError``/``KeyError``/``TypeError`` on an unusable state, leaving the engine as it was.
        """
        part = _Partition(replay_until=replay_until, labels_replay_until=labels_replay_until)
        part.episodes = FeatureEpisodes(self.config.alerts.merge_events)
        policy: list[list[str | int]] = []
        label_policy: list[list[str | int]] = []
        if state is not None:
            if len(state["banks"]) > self.config.detectors.max_models:  # checked before any bank is built
                raise ValueError(
                    f"state holds {len(state['banks'])} models, over detectors.max_models "
                    f"({self.config.detectors.max_models})"
                )
            # a checkpoint written before feature episodes has none: each later resolved is its own event
            part.episodes = FeatureEpisodes.from_state(state.get("episodes", []), self.config.alerts.merge_events)
            part.banks = {
                model: DetectorBank.from_state(st, overall_bank_config(self.config.detectors), self.profile)
                for model, st in state["banks"].items()
            }
            policy = list(state.get("policy", []))
            part.segments = self._restore_segments(state.get("segments"), part.banks)
            part.performance = self._restore_performance(state.get("performance"), part.banks)
        if self.labels_topic is not None:
            cfg = self.config.detectors.concept_drift
            labels = state.get("labels") if state is not None else None
            if labels is None:
                part.labels = LabelJoin(cfg.label_wait_events, cfg.label_wait_s)
            else:
                part.labels = LabelJoin.from_state(labels["join"], cfg.label_wait_events, cfg.label_wait_s)
                label_policy = list(labels.get("policy", []))
            self.policy.load_partition(self.labels_topic, partition, label_policy)
        self.policy.load_partition(topic, partition, policy)
        self._parts[(topic, partition)] = part

    def state(self, topic: str, partition: int) -> dict[str, Any]:
        """The partition's state: plain dicts, lists, numbers and numeric arrays (no pickle needed)."""
        part = self._parts[(topic, partition)]
        out: dict[str, Any] = {
            "banks": {model: bank.state_dict() for model, bank in part.banks.items()},
            "policy": self.policy.export_partition(topic, partition),
            "episodes": part.episodes.state(),
        }
        if part.performance:
            out["performance"] = {model: mon.state_dict() for model, mon in part.performance.items()}
        if part.segments:
            out["segments"] = {
                model: {key: banks.state_dict() for key, banks in by_key.items()}
                for model, by_key in part.segments.items()
            }
        if part.labels is not None and self.labels_topic is not None:
            out["labels"] = {
                "join": part.labels.state_dict(),
                "policy": self.policy.export_partition(self.labels_topic, partition),
            }
        return out

    def drop(self, topic: str, partition: int) -> None:
        """Forget a partition (revoked)."""
        self._parts.pop((topic, partition), None)
        self.policy.load_partition(topic, partition, [])
        if self.labels_topic is not None:
            self.policy.load_partition(self.labels_topic, partition, [])

    def owns(self, topic: str, partition: int) -> bool:
        return (topic, partition) in self._parts

    def live(self, topic: str, partition: int, offset: int) -> bool:
        """Is what happens at ``offset`` new (not published before a restart)?"""
        if topic == self.labels_topic:
            until = self._parts[(self.input_topic, partition)].labels_replay_until
            return until is not None and offset >= until
        return offset >= self._parts[(topic, partition)].replay_until

    def banks(self, topic: str, partition: int) -> dict[str, DetectorBank]:
        """The partition's banks by model (read-only use: report, benchmarks)."""
        return self._parts[(topic, partition)].banks

    # ------------------------------------------------------------------ decisions
    def process(self, topic: str, partition: int, items: Sequence[Item], now: float) -> Output:
        """Detect over a partition's decoded messages (in offset order); ``now`` stamps ``detected_at``."""
        part = self._parts.get((topic, partition))
        if part is None:
            self.restore(topic, partition, None)
            part = self._parts[(topic, partition)]
        out = Output()
        hits: list[JoinedLabel] = []
        if part.labels is None and ColumnBatch not in set(map(type, map(itemgetter(1), items))):
            # the common case, one run of events and no join: no per-event branching
            segments: list[list[tuple[int, EventView]] | tuple[int, ColumnBatch]] = [
                [(offset, message) for offset, message, _ in items]  # type: ignore[misc]
            ]
        else:
            segments = self._segments(part, items, hits)
        out.newest_event_time = _newest_time(items)
        arrival = MessageTimes(items, self.config.detectors.window_tests.event_time_tolerance_s)
        # labels that waited for their prediction: they are the prediction's label from the start
        # (its window sees them before it closes, however the stream is cut)
        early = _early_labels(hits) if hits else {}
        for segment in segments:
            segment = self._admit_models(part, segment, out)
            for model, batch in self._batches(part, segment).items():
                reported = batch.event_times  # an alert's event_time stays the event's own ts
                batch, off = arrival.check(batch, part.replay_until)  # a stray ts must not steer the windows
                _add(out.event_time_fallbacks, model, off)
                self._detect(topic, partition, part, model, batch, now, out, reported, early.get(model))
        # Batches are cut by model: in stream order again, so the order of the events does
        # not depend on how the stream was cut into calls (the bank orders each row's own).
        out.events.sort(key=_stream_order)
        out.detections.sort(key=_stream_order)
        self._concept(partition, part, hits, now, out)
        self._expire(part, out)
        return out

    def process_labels(self, labels_topic: str, partition: int, labels: Sequence[LabelItem], now: float) -> Output:
        """Offer late labels of ``labels_topic[partition]`` to the join; detect on the pairs they complete."""
        if labels_topic != self.labels_topic:
            raise ValueError(f"{labels_topic!r} is not this engine's labels topic ({self.labels_topic!r})")
        out = Output()
        part = self._parts.get((self.input_topic, partition))
        if part is None or part.labels is None:
            out.orphan_labels = len(labels)
            _add(out.labels_unmatched, "label", len(labels))
            return out
        hits = [hit for offset, event, t in labels if (hit := part.labels.add_label(event, offset, t)) is not None]
        self._concept(partition, part, hits, now, out)
        self._expire(part, out)
        return out

    def finish(self, topic: str, partition: int) -> Output:
        """End of input (replay): ids still waiting in the join count as unmatched."""
        out = Output()
        part = self._parts.get((topic, partition))
        if part is not None and part.labels is not None:
            part.labels.drain()
            for side, n in part.labels.take_unmatched().items():
                _add(out.labels_unmatched, side, n)
        return out

    def widest(self) -> int:
        """Features of the widest bank (the shell bounds its batches' matrix cells by it)."""
        return max((len(b.features) for p in self._parts.values() for b in p.banks.values()), default=0)

    def readouts(self) -> Readouts:
        statuses = [(model, bank.status()) for part in self._parts.values() for model, bank in part.banks.items()]
        pending = {"prediction": 0, "label": 0}
        for part in self._parts.values():
            if part.labels is not None:
                for side, n in part.labels.pending().items():
                    pending[side] += n
        performance: dict[str, tuple[WindowRecord | None, WindowRecord | None]] = {}
        for part in self._parts.values():
            for model, mon in part.performance.items():
                estimated, graded = mon.readout()
                have_estimated, have_graded = performance.get(model, (None, None))
                performance[model] = (
                    estimated if _later(estimated, have_estimated) else have_estimated,
                    graded if _later(graded, have_graded) else have_graded,
                )
        segments = [
            (model, key, value, statuses)
            for part in self._parts.values()
            for model, by_key in part.segments.items()
            for key, banks in by_key.items()
            for value, statuses in banks.status()
        ]
        pooled: dict[tuple[str, str], int] = {}
        for part in self._parts.values():
            for model, by_key in part.segments.items():
                for key, banks in by_key.items():
                    pooled[(model, key)] = pooled.get((model, key), 0) + banks.router.pooled_rows
        return Readouts(
            statuses, pending if self.labels_topic is not None else {}, self.widest(), performance, segments, pooled
        )

    # ------------------------------------------------------------------ helpers
    def _segments(
        self,
        part: _Partition,
        items: Sequence[Item],
        hits: list[JoinedLabel],
    ) -> list[list[tuple[int, EventView]] | tuple[int, ColumnBatch]]:
        """Runs of events and columnar messages, in order; predictions offered to the join (its pairs into ``hits``)."""
        segments: list[list[tuple[int, EventView]] | tuple[int, ColumnBatch]] = []
        for offset, message, t in items:
            if isinstance(message, ColumnBatch):
                segments.append((offset, message))
                if part.labels is not None and message.id is not None and message.prediction is not None:
                    hits += part.labels.add_predictions(
                        message.model or self.config.default_model,
                        message.id,
                        message.prediction,
                        message.label or [None] * message.rows,
                        t,
                        offset,
                        rows=True,
                    )
                continue
            if not segments or not isinstance(segments[-1], list):
                segments.append([])
            segments[-1].append((offset, message))  # type: ignore[union-attr]
            if (
                part.labels is not None
                and message.prediction is not None
                and message.id is not None
                and message.label is None
            ):
                hit = part.labels.add_prediction(
                    message.id, message.model or self.config.default_model, message.prediction, t, offset
                )
                if hit is not None:
                    hits.append(hit)
        return segments

    def _admit_models(
        self, part: _Partition, segment: list[tuple[int, EventView]] | tuple[int, ColumnBatch], out: Output
    ) -> list[tuple[int, EventView]] | tuple[int, ColumnBatch]:
        """The segment without the events of models over ``max_models`` (their live rows counted).

        A partition monitors the first ``max_models`` model names in offset order: new models
        take the room left in first-appearance order, and the admitted set is the banks' keys,
        which the partition's state holds. So however the stream is cut, and across restarts,
        the same models are admitted. Per partition, not per process: which partitions a
        process holds must not change what a partition decides.
        """
        default, room = self.config.default_model, self.config.detectors.max_models - len(part.banks)
        if isinstance(segment, tuple):
            offset, columns = segment
            model = columns.model or default
            if model in part.banks or room > 0:
                return segment
            if offset >= part.replay_until:
                out.dropped_model_events += columns.rows
            return []
        new = {event.model or default for _, event in segment} - part.banks.keys()
        if len(new) <= room:
            return segment  # the common case: every model is known, or fits
        for model in [m for m in dict.fromkeys(e.model or default for _, e in segment) if m in new][: max(room, 0)]:
            self._bank(part, model)  # admitted: the bank is the record (in the state, so a restart agrees)
        kept = [item for item in segment if (item[1].model or default) in part.banks]
        out.dropped_model_events += sum(
            1 for offset, event in segment if offset >= part.replay_until and (event.model or default) not in part.banks
        )
        return kept

    def _bank(self, part: _Partition, model: str) -> DetectorBank:
        bank = part.banks.get(model)
        if bank is None:
            # with segments, half the false-alarm budget (the segment banks share the other half)
            bank = part.banks[model] = DetectorBank(overall_bank_config(self.config.detectors), self.profile)
        return bank

    def _batches(
        self,
        part: _Partition,
        segment: list[tuple[int, EventView]] | tuple[int, ColumnBatch],
    ) -> dict[str, FeatureBatch]:
        def admit(model: str, names: list[str]) -> list[str]:
            return self._bank(part, model).admit(names)

        if isinstance(segment, list):
            # null_columns: an always-missing feature gets its gauges (missing ratio 1)
            return to_batches(segment, self.config.default_model, admit=admit, null_columns=True)
        offset, columns = segment
        model, batch = columnar_to_batch(columns, offset, self.config.default_model, admit=admit)
        return {model: batch}

    def _detect(
        self,
        topic: str,
        partition: int,
        part: _Partition,
        model: str,
        batch: FeatureBatch,
        now: float,
        out: Output,
        event_times: NDArray[np.float64],
        early: dict[tuple[int, int], Any] | None = None,
    ) -> None:
        """One model's bank over a batch; the policy turns its signals into events (``event_times``:
        the events' own times, for the alerts, where the batch may carry message times for windowing)."""
        if self.on_batch is not None:
            self.on_batch(model, batch)
        bank = self._bank(part, model)
        _add(out.events_per_model, model, int((batch.offsets >= part.replay_until).sum()))
        _add(out.dropped_values, model, batch.dropped_values)
        first = bank.n_rows  # the model's event number of the batch's first row: the episodes' clock
        where = (topic, partition, part, model, batch, event_times, first, now)
        self._publish(where, bank.update(batch), out)
        for segmented in self._segment_banks(part, model).values():
            self._publish_segments(where, segmented.update(batch), out)
        monitor = self._performance(part, model)
        if monitor is not None:
            for decision in monitor.update(batch, early):
                offset = int(batch.offsets[decision.row])
                ts = float(event_times[decision.row])
                row = None if batch.rows_in_message is None else int(batch.rows_in_message[decision.row])
                sig, evidence = _performance_signal(decision), decision.evidence
                self._alert(topic, partition, part.replay_until, model, sig, offset, row, ts, now, out, evidence)
            self._performance_out(model, monitor, out)

    def _publish(self, where: _Where, signals: list[DriftSignal], out: Output) -> None:
        """A bank's signals -> feature episodes -> events (``where``: position of the batch)."""
        topic, partition, part, model, batch, event_times, first, now = where
        for group in _feature_events(signals):
            at = group[0].row
            offset = int(batch.offsets[at])
            ts = float(event_times[at])
            row = None if batch.rows_in_message is None else int(batch.rows_in_message[at])
            if group[0].detector in DRIFT_ONLY:
                self._alert(topic, partition, part.replay_until, model, group[0], offset, row, ts, now, out)
                continue
            if offset >= part.replay_until:
                out.detections += [
                    self.policy.to_event(
                        sig, model=model, topic=topic, partition=partition, offset=offset,
                        event_time=None if ts != ts else ts, now=now, row=row,
                    )
                    for sig in group
                ]  # fmt: skip
            for pub in part.episodes.decide(model, first + at, group):
                admitted = self._alert(
                    topic, partition, part.replay_until, model, pub.signal, offset, row, ts, now, out,
                    detector=pub.detector, detectors=pub.detectors,
                )  # fmt: skip
                if not admitted:
                    part.episodes.mute(model, pub.signal.feature)

    def _publish_segments(self, where: _Where, signals: list[SegmentSignal], out: Output) -> None:
        """A key's segment signals, published as a bank's: each segment's feature goes through the
        policy and the episodes under its own name (``feature@segment:key=value``: its own cooldown,
        episode and event id), and its events carry ``feature`` and ``segment`` again."""
        if not signals:
            return
        named: dict[str, tuple[str, Segment]] = {}
        tagged = []
        for s in signals:
            sig = s.signal
            if s.value is not None:
                tag = f"{sig.feature}{SEGMENT_TAG}{s.key}={s.value}"
                named[tag] = (sig.feature, Segment(key=s.key, value=s.value))
                sig = replace(sig, feature=tag)
            tagged.append(sig)
        events, detections = len(out.events), len(out.detections)
        self._publish(where, tagged, out)
        for found, start in ((out.events, events), (out.detections, detections)):
            for i in range(start, len(found)):
                hit = named.get(found[i].feature)
                if hit is not None:
                    found[i] = found[i].model_copy(update={"feature": hit[0], "segment": hit[1]})

    def _segment_banks(self, part: _Partition, model: str) -> dict[str, SegmentedBanks]:
        """The model's segment banks, one per key of ``detectors.segments`` (made on its first batch)."""
        by_key = part.segments.get(model)
        if by_key is None:
            cfg = self.config.detectors
            by_key = part.segments[model] = {
                key_name(fields): SegmentedBanks(fields, cfg, self.profile) for fields in cfg.segments.key_fields()
            }
        return by_key

    def _restore_segments(self, state: Any, banks: Mapping[str, DetectorBank]) -> dict[str, dict[str, SegmentedBanks]]:
        """The checkpointed segment banks: per model the state admitted, per configured key."""
        if state is None:
            return {}
        if not isinstance(state, Mapping):
            raise ValueError(f"state.segments: expected a dict, got {type(state).__name__!r}")
        keys = {key_name(f): f for f in self.config.detectors.segments.key_fields()}
        out: dict[str, dict[str, SegmentedBanks]] = {}
        for model, by_key in state.items():
            if model not in banks or not isinstance(by_key, Mapping) or set(by_key) != set(keys):
                raise ValueError(f"state.segments[{model!r}]: not a model of the state with the configured keys")
            out[model] = {}
            for key, st in by_key.items():
                out[model][key] = SegmentedBanks(keys[key], self.config.detectors, self.profile)
                out[model][key].load_state(st)
        return out

    def _concept(self, partition: int, part: _Partition, hits: list[JoinedLabel], now: float, out: Output) -> None:
        """Joined (prediction, label) pairs -> each model's concept-drift ADWIN -> events."""
        by_model: dict[str, list[JoinedLabel]] = {}
        for hit in hits:
            by_model.setdefault(hit.model, []).append(hit)
        for model, pairs in by_model.items():
            bank = part.banks.get(model)
            if bank is None:
                continue  # a model over max_models: its events were not monitored, nor are its labels
            _add(out.labels_joined, model, len(pairs))
            start = len(out.events)
            at: list[int] = []  # per event appended: the pair it was decided at
            if bank.concept is not None:
                errors = np.array([pair_error(h.prediction, h.label) for h in pairs], dtype=np.float64)
                signals: list[DriftSignal] = bank.concept.update_errors(errors)
                for sig in signals:
                    self._label_alert(partition, part, model, sig, pairs[sig.row], now, out)
                    at += [sig.row] * (len(out.events) - start - len(at))
            self._grade(partition, part, model, pairs, now, out, at, start)
            if len(at) > 1:  # in pair order, so the order does not depend on how the labels were cut
                order = sorted(range(len(at)), key=at.__getitem__)
                out.events[start:] = [out.events[start + i] for i in order]

    def _label_alert(
        self,
        partition: int,
        part: _Partition,
        model: str,
        sig: DriftSignal,
        hit: JoinedLabel,
        now: float,
        out: Output,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        topic, offset, row = self.labels_topic or "", hit.offset, None
        if hit.at_prediction and hit.prediction_offset is not None:
            topic, offset, row = self.input_topic, hit.prediction_offset, hit.prediction_row
        if not self.policy.admit(sig, model, topic, partition, offset):
            return
        if _published_before(hit, part):
            return  # committed before the restart (or the labels partition is not ours)
        event = self.policy.to_event(
            sig, model=model, topic=topic, partition=partition, offset=offset, event_time=hit.ts, now=now, row=row
        )
        event = event if evidence is None else event.model_copy(update={"evidence": evidence})
        out.events.append(event)
        out.detections.append(event)
        out.label_alerts = True

    # ------------------------------------------------------------------ performance estimation
    def _performance(self, part: _Partition, model: str) -> PerformanceMonitor | None:
        """The model's monitor, made on its first batch when the profile has its performance reference."""
        monitor = part.performance.get(model)
        if monitor is None and self.config.detectors.performance.enabled:
            reference = (self.profile.performance or {}).get(model) if self.profile is not None else None
            if reference is not None:
                cfg = self.config.detectors
                monitor = part.performance[model] = PerformanceMonitor(
                    reference, cfg.performance, cfg.window_tests, late_labels=self.labels_topic is not None
                )
        return monitor

    def _restore_performance(self, state: Any, banks: Mapping[str, DetectorBank]) -> dict[str, PerformanceMonitor]:
        """The checkpointed monitors: each of a model the partition admitted and the profile has a reference for."""
        if state is None or not self.config.detectors.performance.enabled:
            return {}
        if not isinstance(state, Mapping):
            raise ValueError(f"state.performance: expected a dict, got {type(state).__name__!r}")
        references = (self.profile.performance or {}) if self.profile is not None else {}
        out = {}
        cfg = self.config.detectors
        for model, st in state.items():
            if model not in banks or model not in references:
                raise ValueError(f"state.performance[{model!r}]: no such model in the state's banks and the profile")
            out[model] = PerformanceMonitor.from_state(
                st, references[model], cfg.performance, cfg.window_tests, late_labels=self.labels_topic is not None
            )
        return out

    def _performance_out(self, model: str, monitor: PerformanceMonitor, out: Output) -> None:
        for record in monitor.take_closed():
            out.performance_windows.append((model, record))
        _add(out.performance_ungraded, model, monitor.take_ungraded())

    def _grade(
        self,
        partition: int,
        part: _Partition,
        model: str,
        pairs: list[JoinedLabel],
        now: float,
        out: Output,
        at: list[int],
        start: int,
    ) -> None:
        """Late labels -> their predictions' windows; a window they cover is graded (at the label that
        covered it). ``at`` gets, per event appended after ``start``, the index of its pair."""
        monitor = part.performance.get(model)
        if monitor is None:
            return
        # a pair completed by its prediction was that event's label in ``update`` (``early``)
        index = [i for i, h in enumerate(pairs) if h.prediction_offset is not None and h.by_label]
        keys = [
            (int(pairs[i].prediction_offset or 0), pairs[i].prediction_row, pairs[i].prediction, pairs[i].label)
            for i in index
        ]
        for decision in monitor.add_labels(keys):
            sig = _performance_signal(decision)
            pair = index[decision.row]
            self._label_alert(partition, part, model, sig, pairs[pair], now, out, decision.evidence)
            at += [pair] * (len(out.events) - start - len(at))
        self._performance_out(model, monitor, out)

    def _alert(
        self,
        topic: str,
        partition: int,
        until: int,
        model: str,
        sig: DriftSignal,
        offset: int,
        row: int | None,
        ts: float,
        now: float,
        out: Output,
        evidence: dict[str, Any] | None = None,
        detector: str | None = None,
        detectors: list[str] | None = None,
    ) -> bool:
        """One signal of an input-topic row -> an event (``ts`` NaN: no event time), unless it is in
        the cooldown (then False) or was committed before the restart (``offset < until``).
        ``detector``/``detectors``: the feature episode's (``None``: not an episode's, the signal's own)."""
        if not self.policy.admit(sig, model, topic, partition, offset, episode=detector is not None):
            return False
        if offset < until:
            return True
        event = self.policy.to_event(
            sig,
            model=model,
            topic=topic,
            partition=partition,
            offset=offset,
            event_time=None if ts != ts else ts,
            now=now,
            row=row,
            detector=detector,
            detectors=detectors,
        )
        event = event if evidence is None else event.model_copy(update={"evidence": evidence})
        out.events.append(event)
        if detector is None:  # not a feature episode's: its detections are in already
            out.detections.append(event)
        return True

    def _expire(self, part: _Partition, out: Output) -> None:
        if part.labels is None:
            return
        part.labels.expire()
        for side, n in part.labels.take_unmatched().items():
            _add(out.labels_unmatched, side, n)


def _later(a: WindowRecord | None, b: WindowRecord | None) -> bool:
    """Did window ``a`` close after ``b`` (by event time; a window without one is not later)?"""
    if a is None:
        return False
    if b is None:
        return True
    return a.event_time is not None and (b.event_time is None or a.event_time > b.event_time)


def _feature_events(signals: list[DriftSignal]) -> list[list[DriftSignal]]:
    """A bank's signals by (row, feature), in the order they came (one feature's decisions at one
    event go to its episode together); a :data:`DRIFT_ONLY` detector's each on its own."""
    groups: dict[tuple[int, str], list[DriftSignal]] = {}
    out: list[list[DriftSignal]] = []
    for sig in signals:
        if sig.detector in DRIFT_ONLY:
            out.append([sig])
        elif (sig.row, sig.feature) in groups:
            groups[(sig.row, sig.feature)].append(sig)
        else:
            out.append(groups.setdefault((sig.row, sig.feature), [sig]))
    return out


def _performance_signal(decision: PerformanceDecision) -> DriftSignal:
    """A monitor's decision as the policy's input: the metric as the feature ``@<metric>``,
    its distance from the band's centre (estimate) or from the realized value (calibration)
    in band half-widths as the statistic, against 1."""
    record = decision.window
    return DriftSignal(
        row=decision.row,
        feature=f"@{decision.metric}",
        detector=decision.detector,
        status=decision.status,
        statistic=decision.statistic,
        statistic_name="band_deviation" if decision.detector == "performance_estimate" else "estimate_error_deviation",
        threshold=1.0,
        window=WindowSummary(count=record.predictions, mean=decision.value, std=None, quantiles={}, missing_ratio=None),
        reference=WindowSummary(
            count=record.predictions, mean=decision.reference, std=None, quantiles={}, missing_ratio=None
        ),
    )


def _early_labels(hits: list[JoinedLabel]) -> dict[str, dict[tuple[int, int], Any]]:
    """Per model, ``(prediction offset, row or -1) -> label`` of pairs completed by their prediction."""
    out: dict[str, dict[tuple[int, int], Any]] = {}
    for h in hits:
        if h.prediction_offset is not None:
            row = -1 if h.prediction_row is None else h.prediction_row
            out.setdefault(h.model, {})[(h.prediction_offset, row)] = h.label
    return out
