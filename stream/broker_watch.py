"""A background thread: is the broker answering, is a transactional call stuck, is a stop overdue?

An outage is said once, in words ("broker 127.0.0.1:9092 unreachable since 10:02:03 (Connect
to ... failed: Connection refused); waiting for it"), and its end once ("reachable again after
42 s"); librdkafka's own connection failures are held back meanwhile (:class:`Reachability`).

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from driftsentinel.stream.clients import STARTUP_TIMEOUT_S, Outages, outages
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


def _clock_time(epoch_s: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch_s))


def _duration(seconds: float) -> str:
    """
    >>> _duration(4.2), _duration(75), _duration(7322)
    ('4 s', '1 min 15 s', '2 h 2 min')
    """
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


class Reachability:
    """Says once, in words, that no broker of ``bootstrap`` answers, and once that one answers again.

    Meanwhile librdkafka's own connection failures are held back and counted (:class:`Outages`).

    >>> import logging
    >>> r = Reachability("b:9092", Outages(), logging.getLogger("doc"), wall=iter([0.0, 42.0]).__next__)
    >>> r.failed("Connection refused"), r.failed("Connection refused"), r.answered(), r.answered()
    (True, False, True, False)
    """

    def __init__(
        self,
        bootstrap: str,
        held: Outages = outages,
        logger: logging.Logger = log,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.bootstrap, self.held, self.log, self.wall = bootstrap, held, logger, wall
        self.down_since: float | None = None
        self._mark = 0

    def failed(self, probe_error: str, first_start: bool = False) -> bool:
        """A probe got no answer; returns whether this began an outage (and said so).

        ``first_start``: the sidecar's first start-up is waiting, which gives up after
        ``STARTUP_TIMEOUT_S`` (a wrong address is a configuration error)."""
        if self.down_since is not None:
            return False
        self.down_since = self.wall()
        self._mark = self.held.begin()
        reason = self.held.reason() or probe_error
        self.log.warning(
            "broker %s unreachable since %s (%s); %s",
            self.bootstrap,
            _clock_time(self.down_since),
            reason,
            f"start-up gives up after {STARTUP_TIMEOUT_S:.0f} s"
            if first_start
            else "waiting for it (readiness red, nothing is lost)",
        )
        return True

    def answered(self) -> bool:
        """A probe got an answer; returns whether this ended an outage (and said so)."""
        if self.down_since is None:
            return False
        held = self.held.end(self._mark)
        self.log.info(
            "broker %s reachable again after %s (%d librdkafka connection messages held back)",
            self.bootstrap,
            _duration(self.wall() - self.down_since),
            held,
        )
        self.down_since = None
        return True

    def close(self) -> None:
        """The watch ends: an outage still said stops holding librdkafka's lines back."""
        if self.down_since is not None:
            self.held.end(self._mark)
            self.down_since = None


def start_broker_watch(
    admin_settings: dict[str, Any],
    health: HealthState,
    watchdog: Watchdog,
    life: Lifecycle,
    interval_s: float = 0.5,
) -> threading.Thread:
    """Start the daemon thread; it ends when ``life.done`` turns true."""

    reach = Reachability(str(admin_settings.get("bootstrap.servers", "?")))
    first_start = REEXEC_ENV not in os.environ  # read before start-up takes it out of the environment

    def watch() -> None:
        admin = AdminClient(admin_settings)
        while not life.done:
            try:
                admin.list_topics(timeout=2)
                health.set_broker(None)
                reach.answered()
            except KafkaException as exc:
                health.set_broker(f"broker unreachable: {exc.args[0].str()}")
                reach.failed(exc.args[0].str(), first_start and life.starting)
            admin.poll(0)  # its own librdkafka log lines reach the logger (rate limited)
            life.poll_signals()
            if life.starting:
                health.beat()  # alive and waiting for the broker: liveness green
            if life.hard_exit and life.overdue(time.monotonic()):
                exit_now(f"shutdown not finished within shutdown_timeout_s={life.shutdown_timeout_s:g}")
            if watchdog.stuck() and life.stop_requested_at is None:
                restart_in_place(f"a transactional call has not returned for {watchdog.stuck_after_s:.0f}s")
            time.sleep(interval_s)
        reach.close()

    thread = threading.Thread(target=watch, name="broker-watch", daemon=True)
    thread.start()
    return thread
