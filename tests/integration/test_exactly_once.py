"""Exactly-once alerts under SIGKILL, broker restarts and scale-out (issue 6), on a real broker.

The oracle is the alerts topic of an uninterrupted run (or, where the topology differs,
the same engine run offline over each partition). Alerts are compared on what makes them
the same alert: event_id, key, detector, status and source position, in order per key.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from driftsentinel.detectors.engine import Engine, Item
from driftsentinel.schemas import SidecarConfig
from driftsentinel.schemas.alerts import make_event_id
from driftsentinel.schemas.fastdecode import EventView
from driftsentinel.stream.transaction import transactional_id
from tests.integration.sidecar_helpers import SidecarProcess, key_of, read_all, sample, value_of

pytestmark = pytest.mark.integration

FEATURES = 8


def make_partition_values(partition: int, n: int) -> np.ndarray:
    """Per partition: a different drift story, several change points."""
    rng = np.random.default_rng(1000 + partition)
    x = rng.standard_normal((n, FEATURES))
    if partition % 3 == 0:
        x[n // 4 : n // 2, 0] += 1.5  # drift, then back: drift + resolved
        x[2 * n // 3 :, 1] -= 1.0
    elif partition % 3 == 1:
        x[n // 3 :, 2] += 2.0
        x[n // 2 :, 3] *= 3.0  # variance change
    else:
        x[n // 5 :, 4] += 1.0
        x[3 * n // 5 :, 4] += 1.0  # a second step on the same feature
    return x


def produce_partitions(bootstrap: str, topic: str, partitions: int, per_partition: int) -> dict[int, np.ndarray]:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "enable.idempotence": True})
    out = {}
    for p in range(partitions):
        x = make_partition_values(p, per_partition)
        out[p] = x
        for i in range(per_partition):
            doc = {
                "model": f"m{p}",
                "ts": 1.7e9 + i,
                "id": f"{p}-{i}",
                "features": {f"f{j}": float(v) for j, v in enumerate(x[i])},
            }
            while True:
                try:
                    producer.produce(topic, key=f"m{p}".encode(), value=json.dumps(doc).encode(), partition=p)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
    assert producer.flush(60) == 0
    return out


def alert_keys(bootstrap: str, topic: str) -> list[tuple]:
    """(key, event_id, detector, status, partition, offset) in topic order, read_committed."""
    out = []
    for m in read_all(bootstrap, topic):
        doc = json.loads(value_of(m))
        out.append(
            (
                key_of(m).decode(),
                doc["event_id"],
                doc["detector"],
                doc["status"],
                doc["source"]["partition"],
                doc["source"]["offset"],
            )
        )
    return out


def per_key(alerts: list[tuple]) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for a in alerts:
        out.setdefault(a[0], []).append(a)
    return out


def regroup(alerts: list[tuple], old_group: str, new_group: str, topic: str) -> list[tuple]:
    """The same alerts as another consumer group would name them (event_id includes the group)."""
    out = []
    for key, eid, det, status, p, off in alerts:
        assert eid == make_event_id(old_group, topic, p, off, key, det, status)
        out.append((key, make_event_id(new_group, topic, p, off, key, det, status), det, status, p, off))
    return out


def offline_expected(values: dict[int, np.ndarray], group: str, topic: str) -> list[tuple]:
    """The engine without Kafka (the one place alerts are decided): what each partition's alerts must be."""
    cfg = SidecarConfig.model_validate({"kafka": {"group_id": group}})
    engine = Engine(cfg, input_topic=topic)
    out = []
    for p, x in values.items():
        items: list[Item] = [
            (
                i,
                EventView(
                    model=f"m{p}", ts=1.7e9 + i, id=f"{p}-{i}", features={f"f{j}": float(v) for j, v in enumerate(row)}
                ),
                1.7e9 + i,
            )
            for i, row in enumerate(x)
        ]
        for ev in engine.process(topic, p, items, now=0.0).events:
            out.append((ev.key, ev.event_id, ev.detector, ev.status, p, ev.source.offset))
    return out


def checkpoint_config(every_events: int = 10_000) -> dict:
    return {"checkpoint": {"every_events": every_events, "every_s": 5}, "batch_size": 2000}


@pytest.fixture(scope="module")
def kill_stream(kafka_bootstrap: str, tmp_path_factory) -> tuple[str, list[tuple], str, dict]:
    """200,000 events on 3 partitions, and the alerts of one uninterrupted run."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"eos-{os.getpid()}-{time.monotonic_ns()}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(30)
    values = produce_partitions(kafka_bootstrap, topic, 3, 200_000 // 3 + 1)
    tmp = tmp_path_factory.mktemp("eos")
    ref = SidecarProcess(
        kafka_bootstrap, topic, "--idle-exit", "4", tmp=tmp, config=checkpoint_config(), group=f"{topic}-ref"
    )
    try:
        assert ref.wait(300) == 0, ref.log()[-3000:]
    finally:
        ref.kill()
    expected = alert_keys(kafka_bootstrap, ref.alerts_topic)
    # enough alerts, on more than one partition, for the kills to land between them (one episode
    # per change: each drifting feature opens one, the other detectors join it)
    assert len(expected) >= 5 and len({a[4] for a in expected}) >= 2, expected
    assert {a[3] for a in expected} == {"drift", "resolved"}
    # The uninterrupted run says what the engine says offline.
    assert sorted(expected) == sorted(offline_expected(values, ref.group, topic))
    return topic, expected, ref.group, values


def test_sigkill_restarts_publish_exactly_the_expected_alerts(
    kafka_bootstrap: str, kill_stream, tmp_path: Path
) -> None:
    topic, expected, ref_group, _ = kill_stream
    trials = int(os.environ.get("DRIFTSENTINEL_KILL_TRIALS", "10"))
    for trial in range(trials):
        rng = random.Random(trial)
        group = f"{topic}-kill{trial}"
        cfg = checkpoint_config(every_events=rng.choice([3_000, 10_000, 30_000]))
        kills = 0
        while True:
            sidecar = SidecarProcess(
                kafka_bootstrap,
                topic,
                "--idle-exit",
                "4",
                tmp=tmp_path,
                config=cfg,
                group=group,
                alerts_topic=f"{topic}-alerts-kill{trial}",
            )
            if kills >= 3:
                break
            time.sleep(rng.uniform(1.5, 4.0))
            if sidecar.proc.poll() is not None:
                break  # finished before the kill: the next run finds nothing left
            sidecar.kill()  # SIGKILL
            kills += 1
        try:
            assert sidecar.wait(300) == 0, sidecar.log()[-3000:]
        finally:
            sidecar.kill()
        assert kills >= 3, f"trial {trial}: the run ended before three kills"
        got = alert_keys(kafka_bootstrap, sidecar.alerts_topic)
        want = regroup(expected, ref_group, group, topic)
        assert per_key(got) == per_key(want), f"trial {trial}, {kills} kills"
        assert len(got) == len(set(got))


def test_broker_restart_mid_stream(tmp_path: Path) -> None:
    """Stop the broker for 10 s mid-stream: the sidecar reconnects, /readyz follows, alerts exact."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("needs a broker this test can stop: runs with the project's own broker")
    from driftsentinel.stream import local_kafka

    data_dir = tmp_path / "broker"
    port = local_kafka.free_port()
    bootstrap = local_kafka.start(port=port, data_dir=data_dir, timeout=120)
    try:
        from confluent_kafka.admin import AdminClient, NewTopic

        topic = "restart-input"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
        values = produce_partitions(bootstrap, topic, 2, 60_000)
        cfg = {**checkpoint_config(), "batch_size": 500}
        sidecar = SidecarProcess(bootstrap, topic, "--idle-exit", "15", tmp=tmp_path, config=cfg)
        try:
            sidecar.wait_until(lambda s: (sample(s, "driftsentinel_events_total", model="m0") or 0) > 5_000, 120)
            local_kafka.stop(data_dir)
            seen_not_ready = False
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                seen_not_ready |= sidecar.probe("/readyz") == 503
                assert sidecar.proc.poll() is None, sidecar.log()[-3000:]
                time.sleep(0.2)
            assert seen_not_ready, "readyz stayed ready while the broker was away"
            local_kafka.start(port=port, data_dir=data_dir, timeout=120)
            sidecar.wait_until(lambda s: sidecar.probe("/readyz") == 200, 90)
            assert sidecar.wait(300) == 0, sidecar.log()[-3000:]
        finally:
            sidecar.kill()
        got = alert_keys(bootstrap, sidecar.alerts_topic)
        want = offline_expected(values, sidecar.group, topic)
        assert per_key(got) == per_key(want)
    finally:
        local_kafka.stop(data_dir)


def test_takeover_waits_for_offsets_held_by_a_dead_members_transaction(
    kafka_bootstrap: str, new_topic, tmp_path: Path
) -> None:
    """A member died between send_offsets_to_transaction and commit: its open transaction holds
    the group's committed offset (the broker answers UNSTABLE_OFFSET_COMMIT until the transaction
    ends). The next owner waits, not ready, instead of failing, and then reads exactly once."""
    topic = new_topic(partitions=1)
    group = f"{topic}-group"
    values = produce_partitions(kafka_bootstrap, topic, 1, 6_000)
    zombie_c = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    zombie_p = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"zombie-{topic}"})
    sidecar = None
    try:
        zombie_c.subscribe([topic])
        deadline = time.monotonic() + 60
        while not zombie_c.assignment():
            assert time.monotonic() < deadline, "the zombie member never joined"
            zombie_c.poll(0.2)
        zombie_p.init_transactions(30)
        zombie_p.begin_transaction()
        zombie_p.send_offsets_to_transaction([TopicPartition(topic, 0, 3_000)], zombie_c.consumer_group_metadata(), 30)
        zombie_c.close()  # gone; its transaction stays open

        sidecar = SidecarProcess(
            kafka_bootstrap, topic, "--idle-exit", "5", tmp=tmp_path, group=group, config=checkpoint_config()
        )
        deadline = time.monotonic() + 90
        while "not readable yet" not in sidecar.log():
            assert time.monotonic() < deadline, sidecar.log()[-3000:]
            assert sidecar.proc.poll() is None, sidecar.log()[-3000:]
            time.sleep(0.2)
        time.sleep(3)
        assert sidecar.proc.poll() is None, sidecar.log()[-3000:]
        assert sidecar.probe("/readyz") == 503
        zombie_p.abort_transaction(30)  # what the broker does at the transaction's timeout
        assert sidecar.wait(120) == 0, sidecar.log()[-3000:]
    finally:
        if sidecar is not None:
            sidecar.kill()
    # the aborted offset (3,000) was never committed: every event is read, each alert once
    got = alert_keys(kafka_bootstrap, sidecar.alerts_topic)
    assert len(got) == len(set(got)) > 0
    assert per_key(got) == per_key(offline_expected(values, group, topic))


def test_scale_out_kill_one_of_three(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    """Three sidecars, six partitions; one dies for good; the others take over from its checkpoints."""
    topic = new_topic(partitions=6)
    group = f"{topic}-group"
    cfg = {**checkpoint_config(every_events=5_000), "batch_size": 500}
    sidecars = [
        SidecarProcess(
            kafka_bootstrap,
            topic,
            "--idle-exit",
            "25",
            tmp=tmp_path,
            config={**cfg, "kafka": {"instance_id": f"node-{i}"}},
            group=group,
        )
        for i in range(3)
    ]
    try:
        # All three in the group, two partitions each, before any data arrives.
        deadline = time.monotonic() + 120
        while not all(s.log().count("partition ") >= 2 for s in sidecars):
            assert time.monotonic() < deadline, [s.log()[-1500:] for s in sidecars]
            assert all(s.proc.poll() is None for s in sidecars)
            time.sleep(0.5)
        values = produce_partitions(kafka_bootstrap, topic, 6, 30_000)
        victim = sidecars[1]
        victim.wait_until(
            lambda s: (sum(v for (n, _), v in s.items() if n == "driftsentinel_events_total")) > 2_000, 120
        )
        victim.kill()  # SIGKILL, never restarted: its partitions move after the session timeout
        # Its open transaction (alerts, offsets) would hold the read_committed readers until the
        # broker aborts it at transaction.timeout.ms (the takeover then waits; see the test
        # above): abort it now, as a new producer with its transactional.id does.
        Producer(
            {"bootstrap.servers": kafka_bootstrap, "transactional.id": transactional_id(group, "node-1")}
        ).init_transactions(60)
        for s in (sidecars[0], sidecars[2]):
            assert s.wait(300) == 0, s.log()[-3000:]
    finally:
        for s in sidecars:
            s.kill()
    logs = sidecars[0].log() + sidecars[2].log()
    assert logs.count("assigned") >= 3, "the survivors never took over the victim's partitions"
    got = alert_keys(kafka_bootstrap, sidecars[0].alerts_topic)
    want = offline_expected(values, group, topic)
    assert per_key(got) == per_key(want)
