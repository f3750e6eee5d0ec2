"""A background thread: is the broker answering, and is a transactional call stuck?

The main loop may be blocked in a transaction while the broker is away, so readiness
cannot depend on the loop. A call stuck inside librdkafka past the watchdog's limit makes
the process re-execute itself: exactly-once makes that safe (the new producer, same
transactional.id, aborts the open transaction; partitions rewind to their checkpoints).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from driftsentinel.stream.metrics import HealthState
from driftsentinel.stream.transaction import Watchdog

log = logging.getLogger("driftsentinel")


def restart_in_place(why: str) -> None:
    """Re-execute this process: a fresh Kafka client, state restored from checkpoints."""
    log.error("%s (librdkafka bug); restarting in place to recover", why)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def start_broker_watch(admin_settings: dict[str, Any], health: HealthState, watchdog: Watchdog,
                       stopping: Callable[[], bool], interval_s: float = 0.5) -> threading.Thread:
    """Start the daemon thread; it ends when ``stopping()`` turns true."""

    def watch() -> None:
        admin = AdminClient(admin_settings)
        while not stopping():
            try:
                admin.list_topics(timeout=2)
                health.set_broker(None)
            except KafkaException as exc:
                health.set_broker(f"broker unreachable: {exc.args[0].str()}")
            if watchdog.stuck():
                restart_in_place(f"a transactional call has not returned for {watchdog.stuck_after_s:.0f}s")
            time.sleep(interval_s)

    thread = threading.Thread(target=watch, name="broker-watch", daemon=True)
    thread.start()
    return thread
