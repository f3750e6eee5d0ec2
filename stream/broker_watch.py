"""A background thread: is the broker answering, is a transactional call stuck, is a stop overdue?

The main loop may be blocked in a transaction while the broker is away, so readiness
cannot depend on the loop. A call stuck inside librdkafka past the watchdog's limit makes
the process re-execute itself: exactly-once makes that safe (the new producer, same
transactional.id, aborts the open transaction; partitions rewind to their checkpoints). The
re-executed process carries :data:`REEXEC_ENV`, so its start-up waits for a broker that is
still away instead of failing.

The thread runs until the sidecar's run is over, through the shutdown too: a shutdown
waiting on the broker must see it come back. A stop still unfinished ``shutdown_timeout_s``
after it was requested ends the process with code 0 (only in the sidecar's own process:
:attr:`Lifecycle.hard_exit`); what was not committed is aborted by the next life's producer
and re-read, so nothing is lost.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from driftsentinel.stream.metrics import HealthState
from driftsentinel.stream.transaction import Watchdog

log = logging.getLogger("driftsentinel")

#: Set in the environment of a process re-executed by the watchdog: its start-up waits for the broker.
REEXEC_ENV = "DRIFTSENTINEL_REEXEC"


@dataclass
class Lifecycle:
    """Where the sidecar's run is: stop requested (monotonic time), run over, may end the process."""

    shutdown_timeout_s: float = 30.0
    stop_requested_at: float | None = None
    done: bool = False
    hard_exit: bool = False
    #: Start-up runs (it may wait for the broker as long as it takes): the watch beats for it.
    starting: bool = True

    _signals: socket.socket | None = None

    @property
    def stopping(self) -> bool:
        return self.stop_requested_at is not None

    def stop(self) -> None:
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()

    def watch_signals(self) -> None:
        """Let the watch thread see SIGTERM/SIGINT at once (call from the main thread).

        Python runs a signal handler in the main thread only, between bytecodes: while that
        thread is blocked inside librdkafka the handler waits, and a re-exec would lose it.
        The C-level handler writes the signal number to the wakeup socket right away. The
        process is then the sidecar's own: a stop overdue by ``shutdown_timeout_s`` may end it.
        """
        self.hard_exit = True
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._signals, self._writer = reader, writer

    def poll_signals(self) -> None:
        if self._signals is None:
            return
        try:
            got = self._signals.recv(64)
        except BlockingIOError:
            return
        if {signal.SIGTERM, signal.SIGINT} & set(got):
            self.stop()

    def overdue(self, now: float) -> bool:
        at = self.stop_requested_at
        return at is not None and now - at > self.shutdown_timeout_s


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def restart_in_place(why: str) -> None:
    """Re-execute this process: a fresh Kafka client, state restored from checkpoints."""
    log.error("%s (librdkafka bug); restarting in place to recover", why)
    _flush_logs()
    os.environ[REEXEC_ENV] = "1"
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def exit_now(why: str) -> None:
    """End the process at once with code 0: uncommitted work is aborted by the next life and re-read."""
    log.warning("%s: exiting now; uncommitted work is re-read after the restart", why)
    _flush_logs()
    os._exit(0)


def start_broker_watch(
    admin_settings: dict[str, Any],
    health: HealthState,
    watchdog: Watchdog,
    life: Lifecycle,
    interval_s: float = 0.5,
) -> threading.Thread:
    """Start the daemon thread; it ends when ``life.done`` turns true."""

    def watch() -> None:
        admin = AdminClient(admin_settings)
        while not life.done:
            try:
                admin.list_topics(timeout=2)
                health.set_broker(None)
            except KafkaException as exc:
                health.set_broker(f"broker unreachable: {exc.args[0].str()}")
            life.poll_signals()
            if life.starting:
                health.beat()  # alive and waiting for the broker: liveness green
            if life.hard_exit and life.overdue(time.monotonic()):
                exit_now(f"shutdown not finished within shutdown_timeout_s={life.shutdown_timeout_s:g}")
            if watchdog.stuck() and life.stop_requested_at is None:
                restart_in_place(f"a transactional call has not returned for {watchdog.stuck_after_s:.0f}s")
            time.sleep(interval_s)

    thread = threading.Thread(target=watch, name="broker-watch", daemon=True)
    thread.start()
    return thread
