"""The shell's side of the assigned partitions: positions, due checkpoints, progress markers.

The engine (:mod:`driftsentinel.detectors.engine`) holds each partition's detectors and
decides its alerts; this module holds where each partition is (the next offset to process)
and when its state is written: a checkpoint is due every ``checkpoint.every_events`` events
or ``checkpoint.every_s`` seconds, in the first transaction of every assignment (so a
committed offset always has a checkpoint at or before it), and with a late-label alert.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from driftsentinel.detectors.engine import Engine
from driftsentinel.detectors.state_check import StateRejected, check_engine_state
from driftsentinel.schemas import SidecarConfig
from driftsentinel.stream.checkpoint import (
    MAX_STATE_BYTES,
    Checkpoint,
    Rejected,
    encode_progress,
    progress_key,
    state_key,
)
from driftsentinel.stream.label_topic import LabelPosition
from driftsentinel.stream.metrics import HealthState, Metrics
from driftsentinel.stream.restore import InputStart, RestorePlan, start_words

log = logging.getLogger("driftsentinel")
#: How long /readyz reports a rejected state record (the partition rebuilds meanwhile).
REJECTED_READY_S = 120.0

Key = tuple[str, int]
#: A record for the state topic: (key, value)
Record = tuple[bytes, bytes]


@dataclass
class InputPosition:
    """One assigned input partition, as the shell sees it."""

    topic: str
    partition: int
    next_offset: int = -1  # next offset to process (-1: not known yet)
    since_checkpoint: int = 0
    checkpointed_at: float = 0.0  # monotonic time; 0 = never in this assignment
    published: bool = False  # this transaction holds alerts or DLQ records of the partition
    force_checkpoint: bool = False  # checkpoint in this transaction (a late-label alert was published)


class Partitions:
    """Positions of the assigned input and labels partitions, and their checkpoints.

    ``metrics`` and ``health`` (optional) receive the restore's rejections: a state record set
    aside is counted in ``driftsentinel_checkpoints_rejected_total{reason}`` and named on /readyz.
    """

    def __init__(
        self,
        config: SidecarConfig,
        engine: Engine,
        checkpointing: bool,
        metrics: Metrics | None = None,
        health: HealthState | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.checkpointing = checkpointing
        self.metrics, self.health = metrics, health
        self.inputs: dict[Key, InputPosition] = {}
        self.labels: dict[int, LabelPosition] = {}

    def apply(self, plan: RestorePlan, labels_topic: str | None) -> list[TopicPartition]:
        """Restore the engine per ``plan``; returns where to read each partition from."""
        out = []
        used: dict[int, bool] = {}
        rebuilt: dict[int, bool] = {}
        for key, rejections in plan.rejected.items():
            for why in rejections:
                self._report(key, why)
        for p in plan.inputs:
            pos = InputPosition(p.topic, p.partition)
            used[p.partition] = p.checkpoint is not None and self._restore_checkpoint(p)
            rebuilt[p.partition] = p.rebuild or (p.checkpoint is not None and not used[p.partition])
            if used[p.partition]:
                start = p.start
                pos.next_offset, pos.checkpointed_at = p.start, time.monotonic()
            else:
                start = OFFSET_BEGINNING if rebuilt[p.partition] else (p.done if p.done >= 0 else p.start)
                self.engine.restore(
                    p.topic, p.partition, None, replay_until=p.replay_until, labels_replay_until=p.labels_replay_until
                )
                if labels_topic is not None and start >= 0:
                    pos.next_offset = start  # known now: a labels-only batch can checkpoint the partition
            self.inputs[(p.topic, p.partition)] = pos
            log.info("partition %s[%d]: %s", p.topic, p.partition, start_words(p.done, start, p.replay_until))
            out.append(TopicPartition(p.topic, p.partition, start))
        for number, done in plan.labels_done.items():
            lp = LabelPosition(
                number, next_offset=plan.label_start(number, used.get(number, False), rebuilt.get(number, False))
            )
            self.labels[number] = lp
            log.info("labels %s[%d]: %s", labels_topic, number, start_words(done, lp.next_offset))
            out.append(TopicPartition(labels_topic or "", number, lp.next_offset))
        return out

    def _restore_checkpoint(self, p: InputStart) -> bool:
        """Restore ``p``'s checkpoint if it is a state of this configuration within its bounds
        (checked before anything is allocated); otherwise report it and return ``False``."""
        assert p.checkpoint is not None
        try:
            check_engine_state(p.checkpoint.engine, self.config, self.engine.profile)
            self.engine.restore(
                p.topic,
                p.partition,
                p.checkpoint.engine,
                replay_until=p.replay_until,
                labels_replay_until=p.labels_replay_until,
            )
            return True
        except StateRejected as exc:
            why = Rejected("checkpoint", exc.reason, str(exc))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            why = Rejected("checkpoint", "shape", f"{type(exc).__name__}: {exc}")
        log.error(
            "state record set aside: checkpoint of %s[%d] rejected (%s): %s; the partition is rebuilt "
            "from its earliest offset",
            p.topic,
            p.partition,
            why.reason,
            why.detail,
        )
        self._report((p.topic, p.partition), why)
        return False

    def _report(self, key: Key, why: Rejected) -> None:
        if self.metrics is not None:
            self.metrics.checkpoints_rejected.labels(why.reason).inc()
        if self.health is not None:  # shown on /readyz for a while: the next commit must not hide it
            reason = f"{why.record} of {key[0]}[{key[1]}] rejected ({why.reason}): {why.detail[:200]}"
            self.health.set_ready_for(reason, REJECTED_READY_S)

    def drop(self, keys: list[Key], label_numbers: list[int]) -> None:
        for key in keys:
            del self.inputs[key]
            self.engine.drop(*key)
        for number in label_numbers:
            del self.labels[number]

    def widest(self) -> int:
        return self.engine.widest()

    def due_checkpoints(self, keys: list[Key], force: bool) -> list[Record]:
        """The checkpoints due now for ``keys`` (encoded), their clocks restarted."""
        if not self.checkpointing:
            return []
        cfg = self.config.checkpoint
        now = time.monotonic()
        out = []
        for key in keys:
            pos = self.inputs[key]
            due = (
                force
                or pos.force_checkpoint
                or pos.checkpointed_at == 0.0
                or pos.since_checkpoint >= cfg.every_events
                or now - pos.checkpointed_at >= cfg.every_s
            )
            if not due or pos.next_offset < 0:
                continue
            lp = self.labels.get(pos.partition)
            blob = Checkpoint(
                self.config.kafka.group_id,
                pos.topic,
                pos.partition,
                pos.next_offset,
                self.engine.state(*key),
                lp.next_offset if lp is not None else None,
            ).encode()
            pos.force_checkpoint, pos.since_checkpoint, pos.checkpointed_at = False, 0, now
            if len(blob) > MAX_STATE_BYTES:
                # Correct without it (the previous checkpoint stays, a restart re-reads more),
                # but say so: fewer features per model (detectors.max_features) keep it small.
                log.error("checkpoint of %s[%d] is %d bytes > %d: not written", *key, len(blob), MAX_STATE_BYTES)
                continue
            out.append((state_key(self.config.kafka.group_id, *key), blob))
        return out

    def offsets(
        self,
        keys: list[Key],
        label_numbers: list[int] | None,
        labels_topic: str | None,
    ) -> dict[Key, int]:
        """Next offsets of ``keys`` and of the labels partitions (all, or the given numbers)."""
        out = {key: self.inputs[key].next_offset for key in keys}
        if labels_topic is not None:
            wanted = list(self.labels) if label_numbers is None else label_numbers
            out.update({(labels_topic, n): self.labels[n].next_offset for n in wanted if n in self.labels})
        return out

    def progress_markers(self, offsets: dict[Key, int], labels_topic: str | None) -> list[Record]:
        """How far each partition that published in this transaction got, committed with its alerts
        (it bounds what a restart must not repeat)."""
        out = []
        for (topic, partition), offset in offsets.items():
            holder = self.labels.get(partition) if topic == labels_topic else self.inputs.get((topic, partition))
            if holder is not None and holder.published and offset >= 0:
                holder.published = False
                out.append((progress_key(self.config.kafka.group_id, topic, partition), encode_progress(offset)))
        return out

    def mark_published(self, topic: str, partition: int, labels_topic: str | None) -> None:
        holder = self.labels.get(partition) if topic == labels_topic else self.inputs.get((topic, partition))
        if holder is not None:
            holder.published = True
