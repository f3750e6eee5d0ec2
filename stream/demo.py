"""Synthetic feature stream with known drift points (``driftsentinel demo``).

Feature values are N(0, 1); from event ``drift_at`` on, the features named in
``drift_features`` are shifted by ``shift`` (in standard deviations). Values depend only
on the seed, so a run is reproducible.
"""

from __future__ import annotations

import json
import time

import numpy as np
from confluent_kafka import KafkaError, Message, Producer

from driftsentinel.stream.topic_reader import CONNECT_TIMEOUT_S, BrokerUnreachable, quiet, reach_broker


class DemoInputError(ValueError):
    """A demo parameter that names nothing the demo produces."""


#: How long an event may wait for the broker's acknowledgement before it counts as undelivered.
DELIVERY_TIMEOUT_S = 30.0


def demo_values(
    events: int, features: int, drift_at: int | None, drift_features: list[int], shift: float, seed: int
) -> np.ndarray:
    """The ``[events, features]`` matrix the demo sends.

    >>> v = demo_values(4, 2, 2, [1], 10.0, seed=1)
    >>> bool((v[2:, 1] > 5).all() and (v[:2, 1] < 5).all())
    True
    """
    values = np.random.default_rng(seed).standard_normal((events, features))
    if drift_at is not None and drift_features:
        values[drift_at:, drift_features] += shift
    return values


def produce_demo(
    bootstrap_servers: str,
    topic: str,
    events: int,
    features: int,
    drift_at: int | None,
    drift_features: list[str],
    shift: float,
    seed: int,
    model: str = "demo",
    rate: float | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> int:
    """Produce the stream (key = model name, so one partition holds it); returns the count.

    :class:`BrokerUnreachable` when the broker does not answer within ``connect_timeout_s``,
    or when events are not acknowledged (within ``DELIVERY_TIMEOUT_S`` each).
    """
    names = [f"f{i}" for i in range(features)]
    unknown = [f for f in drift_features if f not in names]
    if unknown:
        raise DemoInputError(f"--drift-features names unknown features {unknown} (have f0..f{features - 1})")
    values = demo_values(events, features, drift_at, [names.index(f) for f in drift_features], shift, seed)
    reach_broker({"bootstrap.servers": bootstrap_servers}, connect_timeout_s)
    settings = {"bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "linger.ms": 20}
    producer = Producer(quiet(settings) | {"message.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000)})
    failures: list[str] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures.append(str(err))

    key = model.encode()
    started = time.monotonic()
    for i in range(events):
        doc = {
            "model": model,
            "ts": time.time(),
            "id": f"demo-{i}",
            "features": dict(zip(names, values[i].tolist(), strict=True)),
        }
        payload = json.dumps(doc, separators=(",", ":")).encode()
        while True:
            try:
                producer.produce(topic, key=key, value=payload, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if rate:
            ahead = (i + 1) / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    remaining = producer.flush(DELIVERY_TIMEOUT_S + 5)
    if remaining or failures:
        lost = remaining + len(failures)
        why = failures[0] if failures else "no acknowledgement"
        raise BrokerUnreachable(f"{lost} of {events} events not delivered to {topic} at {bootstrap_servers}: {why}")
    return events
