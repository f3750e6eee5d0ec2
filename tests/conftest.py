"""Shared fixtures: a real Kafka broker for integration tests, and a topic factory.

Where the broker comes from, in this order (DESIGN.md, "Real parts"):
1. env ``KAFKA_BOOTSTRAP_SERVERS``, if set: used as is, nothing started or stopped;
2. a testcontainers Kafka (KRaft), when a Docker engine answers a ping;
3. otherwise ``stream.local_kafka``: Apache Kafka natively on the JVM, on a free
   127.0.0.1 port with a temporary data directory, stopped at the end of the session.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw fresh random examples on every local run; CI (HYPOTHESIS_PROFILE=ci,
# set by .ci/run) draws the same ones every time, so a red CI is a change, not a dice roll.
# Wider random exploration: tests/soak_adwin_parity.py.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _docker_engine_answers(timeout: float = 2.0) -> bool:
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no daemon, permission denied, ...
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real Kafka broker that serves transactions and consumer groups."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        yield env
        return

    if _docker_engine_answers():
        try:
            from testcontainers.community.kafka import KafkaContainer
        except ImportError:  # testcontainers < 4.10
            from testcontainers.kafka import KafkaContainer

        container = (
            KafkaContainer()
            .with_kraft()
            .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS", "1")
        )
        with container as kafka:
            yield kafka.get_bootstrap_server()
        return

    from driftsentinel.stream import local_kafka

    data_dir = Path(tmp_path_factory.mktemp("kafka-broker"))
    bootstrap = local_kafka.start(port=local_kafka.free_port(), data_dir=data_dir, timeout=120)
    try:
        yield bootstrap
    finally:
        local_kafka.stop(data_dir)


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Factory: ``new_topic(partitions=1, prefix="t")`` creates a uniquely named topic and returns its name.

    Returns once the broker's metadata shows the topic with every partition led.
    Topics created through the factory are deleted when the test ends.
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []

    def make(
        partitions: int = 1, prefix: str = "t", config: dict[str, str] | None = None, timeout: float = 30.0
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
            operation_timeout=timeout,
        )
        futures[name].result(timeout=timeout)
        created.append(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            topic = admin.list_topics(topic=name, timeout=5).topics.get(name)
            if (
                topic is not None
                and topic.error is None
                and len(topic.partitions) == partitions
                and all(p.leader >= 0 for p in topic.partitions.values())
            ):
                return name
            time.sleep(0.1)
        raise TimeoutError(f"topic {name} with {partitions} partitions not ready after {timeout}s")

    yield make

    if created:
        for future in admin.delete_topics(created, operation_timeout=10).values():
            with contextlib.suppress(Exception):  # best effort: the broker may already be gone
                future.result(timeout=15)
