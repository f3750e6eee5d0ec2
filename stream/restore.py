"""Where each assigned partition resumes, and from which checkpoint (the restore plan).

On assignment (and after an aborted transaction) every partition is rebuilt from its newest
checkpoint and read from the checkpoint's offset. ``done`` (the committed offset, or the
progress marker when that is further: the marker is committed with the alerts, so it is
never stale) bounds what was already published: alerts and DLQ records of offsets below it
are decided again but not produced again (the engine's ``replay_until``). A checkpoint taken
after ``done`` (never committed) is not used. Late labels: the labels partition re-reads
from where the input checkpoint says it was, so the join sees the same labels again.

>>> from driftsentinel.stream.checkpoint import Checkpoint, Rejected
>>> ck = Checkpoint("g", "in", 0, 40, {"banks": {}, "policy": []}, labels_next_offset=9)
>>> plan = plan_restore([("in", 0), ("lab", 0)], {("in", 0): 50, ("lab", 0): 12}, {}, {("in", 0): ck}, "lab")
>>> p = plan.inputs[0]
>>> (p.start, p.replay_until, p.checkpoint is ck, p.labels_replay_until)
(40, 50, True, 12)
>>> plan.label_start(0, checkpoint_used=True), plan.label_start(0, checkpoint_used=False)
(9, 12)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from driftsentinel.stream.checkpoint import Checkpoint, Rejected
from driftsentinel.stream.transaction import Health

log = logging.getLogger("driftsentinel")

#: How long a new owner waits for committed offsets that an open transaction holds (a
#: member that died between send_offsets_to_transaction and commit): the broker aborts that
#: transaction after its transaction.timeout.ms (60 s here) plus its abort-scan interval.
PENDING_OFFSETS_WAIT_S = 180.0

Key = tuple[str, int]


@dataclass(frozen=True)
class InputStart:
    """An input partition: read from ``start``; alerts from ``replay_until``; restore ``checkpoint``."""

    topic: str
    partition: int
    done: int
    start: int
    replay_until: int
    checkpoint: Checkpoint | None
    labels_replay_until: int | None  # None: the labels partition is not assigned here
    rebuild: bool = False  # its checkpoint was set aside: read from the earliest offset, publish from done


@dataclass
class RestorePlan:
    inputs: list[InputStart] = field(default_factory=list)
    labels_done: dict[int, int] = field(default_factory=dict)  # labels partition -> done
    labels_at_checkpoint: dict[int, int | None] = field(default_factory=dict)
    rejected: dict[Key, list[Rejected]] = field(default_factory=dict)  # state records set aside

    def label_start(self, partition: int, checkpoint_used: bool, rebuilt: bool = False) -> int:
        """Where labels partition ``partition`` is read from (the input checkpoint's labels offset
        when that checkpoint was restored, re-reading its labels with alerts suppressed; the
        earliest offset when the input partition is rebuilt, so the join sees every label again)."""
        if rebuilt:
            return OFFSET_BEGINNING
        done = self.labels_done.get(partition, OFFSET_INVALID)
        at = self.labels_at_checkpoint.get(partition) if checkpoint_used else None
        if at is not None and (done < 0 or at <= done):
            return at
        return done if done >= 0 else OFFSET_BEGINNING


def plan_restore(
    assigned: list[Key],
    committed: dict[Key, int],
    progress: dict[Key, int],
    checkpoints: dict[Key, Checkpoint],
    labels_topic: str | None,
) -> RestorePlan:
    """The plan for ``assigned`` partitions from what the group and the state topic hold.

    A partition whose checkpoint was set aside (``checkpoints.rejected``, see
    :class:`driftsentinel.stream.state_topic.Checkpoints`) is rebuilt: read from its earliest
    retained offset with the alerts up to ``done`` suppressed, so its detectors stand where an
    intact checkpoint would have put them.
    """
    plan = RestorePlan(rejected=dict(getattr(checkpoints, "rejected", {})))
    for key in assigned:
        if key[0] == labels_topic:
            plan.labels_done[key[1]] = max(committed.get(key, OFFSET_INVALID), progress.get(key, OFFSET_INVALID))
    for key in assigned:
        if key[0] == labels_topic:
            continue
        done = max(committed.get(key, OFFSET_INVALID), progress.get(key, OFFSET_INVALID))
        if done > committed.get(key, OFFSET_INVALID):
            log.warning(
                "%s[%d]: the committed offset (%s) is behind the progress marker (offset %s); using the marker",
                *key,
                offset_words(committed.get(key, OFFSET_INVALID)),
                f"{done:,}",
            )
        found = checkpoints.get(key)
        rebuild = any(r.record == "checkpoint" for r in plan.rejected.get(key, []))
        usable = found if found is not None and done >= 0 and found.next_offset <= done and not rebuild else None
        if found is None and done >= 0 and not rebuild:
            log.warning("no checkpoint for %s[%d]: detectors start fresh at offset %s", *key, f"{done:,}")
        start = usable.next_offset if usable else (done if done >= 0 and not rebuild else OFFSET_BEGINNING)
        labels_done = plan.labels_done.get(key[1]) if labels_topic is not None else None
        plan.inputs.append(
            InputStart(
                key[0],
                key[1],
                done,
                start,
                max(done, 0),
                usable,
                None if labels_done is None else max(labels_done, 0),
                rebuild,
            )
        )
        if usable is not None:
            plan.labels_at_checkpoint[key[1]] = usable.labels_next_offset
    return plan


def offset_words(offset: int) -> str:
    """An offset as a person reads it: librdkafka's sentinels in words, numbers grouped.

    >>> offset_words(OFFSET_BEGINNING), offset_words(OFFSET_INVALID), offset_words(1234)
    ('the earliest offset', 'no offset', 'offset 1,234')
    """
    words = {
        OFFSET_BEGINNING: "the earliest offset",
        OFFSET_END: "the latest offset",
        OFFSET_STORED: "the stored offset",
    }
    if offset in words:
        return words[offset]
    return f"offset {offset:,}" if offset >= 0 else "no offset"


def start_words(done: int, start: int, alerts_from: int | None = None) -> str:
    """Where a partition is read from, in words (``done``: the committed offset or progress marker).

    >>> start_words(OFFSET_INVALID, OFFSET_BEGINNING)
    'no committed offset, reading from the earliest'
    >>> start_words(1234, 1234)
    'resuming at offset 1,234'
    >>> start_words(1234, 1000, 1234)
    'resuming at offset 1,234: reading from its checkpoint at offset 1,000, alerts from offset 1,234'
    >>> start_words(1234, OFFSET_BEGINNING, 1234)
    'resuming at offset 1,234: reading from the earliest offset to rebuild, alerts from offset 1,234'
    """
    if done < 0:
        return "no committed offset, reading from " + (
            "the earliest" if start == OFFSET_BEGINNING else offset_words(start)
        )
    head = f"resuming at offset {done:,}"
    if start == done:
        return head
    how = f"its checkpoint at {offset_words(start)}" if start >= 0 else f"{offset_words(start)} to rebuild"
    tail = f", alerts from {offset_words(alerts_from)}" if alerts_from is not None else ""
    return f"{head}: reading from {how}{tail}"


def committed_offsets(
    consumer: Consumer, tps: list[TopicPartition], health: Health, wait_s: float = PENDING_OFFSETS_WAIT_S
) -> dict[Key, int]:
    """The group's committed offsets, waiting (bounded) while an open transaction holds them.

    Under read_committed the broker answers UNSTABLE_OFFSET_COMMIT for offsets sent in a
    transaction that is neither committed nor aborted yet; librdkafka retries until its
    timeout. That transaction belongs to a member that died mid-commit, and the broker
    aborts it after its transaction.timeout.ms: wait for that instead of failing the
    takeover.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            found = consumer.committed(tps, timeout=min(10.0, max(1.0, deadline - time.monotonic())))
            return {(tp.topic, tp.partition): tp.offset for tp in found}
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._TIMED_OUT or time.monotonic() >= deadline:
                raise
            health.beat()
            health.set_ready("restoring: committed offsets held by an open transaction")
            log.warning(
                "committed offsets of %s not readable yet: a transaction of a member that died "
                "mid-commit holds them until the broker aborts it (its transaction.timeout.ms); "
                "waiting",
                [f"{tp.topic}[{tp.partition}]" for tp in tps],
            )
