"""The sidecar loop: consume a batch, decode, hand it to the engine, publish, commit.

Every decision is the engine's (:mod:`driftsentinel.detectors.engine`); this loop reads
Kafka and writes what the engine returns, in one unit per batch
(:mod:`driftsentinel.stream.transaction`): with ``kafka.exactly_once`` (the default) a
transaction holding the batch's alerts, DLQ records, due checkpoints
(:mod:`driftsentinel.stream.partitions`) and input offsets; without, the at-least-once twin.

Restart and rebalance (:mod:`driftsentinel.stream.restore`): an assigned partition is rebuilt
from its newest checkpoint and read from the checkpoint's offset; events up to the committed
offset are re-processed to bring the detectors up to date, but their alerts and DLQ records,
already committed, are not produced again. A transaction that cannot be committed is aborted
and every assigned partition is rewound the same way: nothing is lost, nothing said twice.
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka import TopicPartition as TP

from driftsentinel.detectors.engine import Engine
from driftsentinel.detectors.warmup import load_kernels
from driftsentinel.schemas import DriftEvent, SidecarConfig
from driftsentinel.schemas.profile import load_profile
from driftsentinel.stream import clients
from driftsentinel.stream.batch import BatchRunner
from driftsentinel.stream.broker_watch import Lifecycle, start_broker_watch
from driftsentinel.stream.columns import BatchBudget
from driftsentinel.stream.gauges import Gauges
from driftsentinel.stream.idle import IdleClock
from driftsentinel.stream.metrics import HealthState, Metrics, serve
from driftsentinel.stream.partitions import Partitions
from driftsentinel.stream.rebalance import Rebalance
from driftsentinel.stream.startup import labels_and_checkpoints, start_up
from driftsentinel.stream.transaction import Aborted, AbortStreak, AtLeastOnce, ExactlyOnce, Watchdog

log = logging.getLogger("driftsentinel")


class Sidecar:
    """Consume FeatureEvents (and late labels), drive the engine, publish DriftEvents."""

    def __init__(
        self,
        config: SidecarConfig,
        metrics: Metrics | None = None,
        health: HealthState | None = None,
        on_alert: Callable[[DriftEvent], None] | None = None,
    ) -> None:
        self.config, self.on_alert = config, on_alert
        self.metrics, self.health = metrics or Metrics(max_series=config.metrics_max_series), health or HealthState()
        kafka = config.kafka
        self.labels_topic, self.checkpointing = labels_and_checkpoints(config)
        self.profile = load_profile(config.reference) if config.reference else None
        self.engine = Engine(config, kafka.input_topic, self.labels_topic, self.profile)
        self.state = Partitions(config, self.engine, self.checkpointing, metrics=self.metrics, health=self.health)
        self.gauges = Gauges(self.metrics, config.log_interval_s)
        self.http_port: int | None = None
        self._stopping = False
        self._fatal: KafkaError | None = None
        self._budget = BatchBudget()  # events per batch: bounded by matrix cells and message bytes
        self._idle = IdleClock(config.idle_exit, log)  # restarted in _loop and on assignment
        self.instance_id = kafka.instance_id or socket.gethostname()
        consumer, producer, self._admin_conf = clients.sidecar_settings(config, self.instance_id, self._on_kafka_error)
        self.consumer, self.producer = Consumer(consumer), Producer(producer)
        self.watchdog, self.life = Watchdog(config.txn_stuck_s), Lifecycle(config.shutdown_timeout_s)
        self.txn = (
            ExactlyOnce(self.producer, self.consumer, self.health, self.watchdog, log)
            if kafka.exactly_once
            else AtLeastOnce(self.producer, self.consumer, self.health)
        )
        self.txn.stopping = lambda: self._stopping or self.life.stopping  # an absent broker is not waited for
        self.aborts = AbortStreak(self.health, config.max_batch_aborts, self.metrics.transaction_aborts.inc)
        self.batches = BatchRunner(config, self.engine, self.state, self.gauges, self.txn, on_alert)
        self.rebalance = Rebalance(
            config, self.consumer, self.state, self.txn, self._commit, self.health, self.gauges, self._idle,
            self._admin_conf, self.labels_topic, self.checkpointing, lambda: self._fatal,
        )  # fmt: skip

    @property
    def consumed(self) -> int:
        """Messages consumed (input and labels)."""
        return self.batches.consumed

    @property
    def partitions(self) -> dict[tuple[str, int], Any]:
        """Each assigned input partition's banks (benchmarks read them)."""
        return {key: SimpleNamespace(banks=self.engine.banks(*key)) for key in self.state.inputs}

    def request_stop(self, *_: Any) -> None:
        """Finish the current batch, commit, exit (SIGTERM/SIGINT handler); bounded by shutdown_timeout_s."""
        self._stopping = True
        self.life.stop()

    def install_signal_handlers(self) -> None:
        self.life.watch_signals()  # this process is the sidecar's: signals seen at once, an overdue stop ends it
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> int:
        """Run until stopped, ``max_events`` or ``idle_exit``; returns the exit code."""
        cfg = self.config
        log.debug("full effective config %s", clients.effective_config_json(cfg))
        server = serve(
            self.metrics,
            self.health,
            cfg.metrics_host,
            cfg.metrics_port,
            idle_timeout_s=cfg.metrics_idle_timeout_s,
            max_connections=cfg.metrics_max_connections,
        )
        self.http_port = server.server_address[1]
        log.info("metrics on http://%s:%d/metrics", cfg.metrics_host, self.http_port)
        start_broker_watch(self._admin_conf, self.health, self.watchdog, self.life)
        try:
            self._start_up()
            # numba's cached kernels load on first call (~0.4 s): here, not in the first batch
            log.info("detector kernels loaded in %.2fs", load_kernels(cfg.detectors, self.profile))
            # Everything allocated so far lives as long as the process: keep it out of the
            # cycle collector's generations (measured: +15-28 % events per CPU second).
            gc.freeze()
            topics = [cfg.kafka.input_topic] + ([self.labels_topic] if self.labels_topic else [])
            self.consumer.subscribe(topics, on_assign=self.rebalance.on_assign, on_revoke=self.rebalance.on_revoke)
            self._loop()
            return self._shut_down(server)
        except (clients.StartupError, clients.Stopped) as exc:
            log.log(logging.INFO if isinstance(exc, clients.Stopped) else logging.ERROR, "cannot start: %s", exc)
            self.consumer.close()
            server.shutdown()
            return 0 if isinstance(exc, clients.Stopped) else 3
        except KafkaException as exc:
            log.error("fatal Kafka error, exiting: %s", exc.args[0].str() if exc.args else exc)
            server.shutdown()
            return 1
        finally:
            self.life.done = True  # the broker watch ran through the shutdown; it ends now

    def _shut_down(self, server: Any) -> int:
        self._stopping = True
        self._update_gauges(force=True)
        self.consumer.close()  # revokes: the revoked partitions' state is checkpointed
        self.producer.flush(5 if not self.health.broker_ok() else 30)
        log.info("stopped after %d messages", self.consumed)
        server.shutdown()
        return 0

    def _start_up(self) -> None:
        admin = clients.AdminClient(self._admin_conf | {"error_cb": self._on_kafka_error})
        self.batches.dlq_max_bytes = start_up(
            self.config,
            admin,
            self.producer,
            self.labels_topic,
            self.checkpointing,
            lambda: self._fatal,
            self.txn.stopping,
        )
        self.life.starting = False  # the broker watch kept the liveness probe green while start-up waited

    def _loop(self) -> None:
        cfg = self.config
        while not self._stopping:
            self.health.beat()
            if self._fatal is not None:
                raise KafkaException(self._fatal)
            budget = self._budget.events(cfg.batch_size, self.state.widest())
            if cfg.max_events is not None:
                budget = min(budget, cfg.max_events - self.consumed)
                if budget <= 0:
                    log.info("max_events=%d reached", cfg.max_events)
                    return
            msgs = self.consumer.consume(num_messages=budget, timeout=cfg.batch_timeout_s)
            self._budget.observe(msgs)
            if not msgs:
                if not self.health.broker_ok() or not (self.state.inputs or self.state.labels):
                    self._idle.restart()  # no input while the broker is away or nothing is assigned is not idleness
                if self._idle.expired():
                    return
                self._update_gauges()  # idle too: the last batch's read-outs reach the gauges
                continue
            started = time.perf_counter()
            self._process_batch(msgs)
            self.metrics.batch_duration.observe(time.perf_counter() - started)
            self._idle.restart()  # idleness counts from the end of the last batch
            self.gauges.report_throughput(self.consumed)

    def _process_batch(self, msgs: list[Message]) -> None:
        try:
            self.txn.begin()
            touched = self.batches.run(msgs)
            self._update_gauges()  # drift gauges flip as alerts go out; the rest once a second
            for key, blob in self.state.due_checkpoints(touched, force=False):
                self.txn.produce(self.config.kafka.state_topic, key, blob)
            self._commit(self.state.offsets(touched, None, self.labels_topic))
        except Aborted as exc:
            log.warning("transaction aborted (%s): rewinding to the last checkpoint", exc)
            self.txn.abort()
            self.aborts.pause(self.aborts.aborted(str(exc)), lambda: self._stopping)
            self.rebalance.rewind()

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if self.txn.exactly_once and self.checkpointing:
            for key, blob in self.state.progress_markers(offsets, self.labels_topic):
                self.txn.produce(self.config.kafka.state_topic, key, blob)
        self.txn.commit([TP(t, p, o) for (t, p), o in offsets.items() if o >= 0])
        self.health.set_ready(None)
        self.aborts.committed()

    def _update_gauges(self, force: bool = False) -> None:
        if self.gauges.due(force):
            self.gauges.features(self.engine.readouts())
            self.gauges.consumer_lag(self.consumer)

    def _on_kafka_error(self, err: KafkaError) -> None:
        self._fatal = clients.on_kafka_error(err, self.health) or self._fatal
