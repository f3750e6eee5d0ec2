"""``driftsentinel skew``: the shell around the skew engine (train/serve skew, shadow divergence).

Consumes the serving topic (the model server's FeatureEvents) and the offline topic (the
same entities' features from the training pipeline), or reads the offline side from a
file (:mod:`driftsentinel.stream.offline_file`); decodes them and feeds
:class:`~driftsentinel.detectors.skew_engine.SkewEngine`, which joins, compares and
decides; publishes its DriftEvents, commits offsets, sets the gauges.

Delivery is at-least-once (:class:`~driftsentinel.stream.transaction.AtLeastOnce`): alerts
are acknowledged before the input offsets are committed; an alert's ``event_id`` comes
from the serving event at which its window closed. The joins live in memory only: after
a restart, ids that were waiting for their partner count as unmatched.

    driftsentinel skew --bootstrap-servers 127.0.0.1:9092 --serving-topic features \\
        --offline-topic features-offline --alerts-topic drift-alerts --config skew.yaml

>>> _top_level(b'{"model": "m", "model_version": 2}', "model_version"), _top_level(b"[]", "x")
('2', None)
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from driftsentinel.detectors.skew_engine import OFFLINE, SERVING, SkewEngine
from driftsentinel.schemas import DriftEvent, InvalidEvent, decode_event
from driftsentinel.schemas.skew import OfflineRow, ServingRow, SkewSidecarConfig, SkewStep, load_skew_config
from driftsentinel.stream.clients import (
    StartupError,
    admin_settings,
    consume_error,
    create_topics,
    list_topics,
    rdkafka_log,
)
from driftsentinel.stream.idle import IdleClock
from driftsentinel.stream.metrics import HealthState, Metrics, serve
from driftsentinel.stream.offline_file import read_offline_file
from driftsentinel.stream.transaction import Aborted, AtLeastOnce

__all__ = ["SkewSidecar", "cmd_skew", "register_cli"]

log = logging.getLogger("driftsentinel.skew")

#: Offline file rows read per loop iteration at most (keeps every iteration short).
FILE_ROWS_PER_ITERATION = 20_000
#: The loop commits offsets itself; aborted records of transactional producers are not features.
CONSUMER_SETTINGS = {"enable.auto.commit": False, "auto.offset.reset": "earliest", "isolation.level": "read_committed"}
PRODUCER_SETTINGS = {"enable.idempotence": True, "acks": "all", "linger.ms": 5}


class SkewSidecar:
    """Consume, decode, feed the engine, publish its alerts, commit, export gauges."""

    def __init__(
        self,
        config: SkewSidecarConfig,
        metrics: Metrics | None = None,
        health: HealthState | None = None,
        on_alert: Callable[[DriftEvent], None] | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.health = health or HealthState()
        self.on_alert = on_alert
        self.engine = SkewEngine.from_config(config)
        src = config.sources
        #: input messages, unusable rows (bad JSON/schema, file rows without id), events without id, alerts
        self.counts = {"consumed": 0, "invalid": 0, "no_id": 0, "alerts": 0}
        self._reported_unmatched = {SERVING: 0, OFFLINE: 0}
        if self.engine.skew_on:
            for side in (SERVING, OFFLINE):  # exported from the start, at 0
                self.metrics.join_unmatched.labels(self.engine.model, side)
        self._stopping = False
        self._fatal: KafkaError | None = None
        self._idle = IdleClock(config.idle_exit, log)  # restarted in _loop and _on_assign
        self._file: Iterator[OfflineRow | None] | None = None
        self._file_done = src.offline_file is None
        # security settings in sources.common reach every client; librdkafka's log is rate limited
        common: dict[str, Any] = {"bootstrap.servers": src.bootstrap_servers, "logger": rdkafka_log, **src.common}
        self._admin_conf = admin_settings(common, {})
        errors = {"error_cb": self._on_kafka_error}
        self.consumer = Consumer({**common, **errors, **CONSUMER_SETTINGS, "group.id": src.group_id})
        self.producer = Producer({**common, **errors, **PRODUCER_SETTINGS})
        self.output = AtLeastOnce(self.producer, self.consumer, self.health)

    # ------------------------------------------------------------------ lifecycle
    def request_stop(self, *_: Any) -> None:
        """Finish the batch in hand, evaluate, publish, commit, exit (SIGTERM/SIGINT)."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> int:
        """Run until stopped, ``max_events`` or ``idle_exit``; returns the exit code (3: cannot start)."""
        cfg = self.config
        server = serve(self.metrics, self.health, cfg.metrics_host, cfg.metrics_port)
        log.info("metrics on http://%s:%d/metrics", cfg.metrics_host, server.server_address[1])
        code = 0
        try:
            self._start_up()
            self.output.begin()
            self._loop()
            self._apply(self.engine.finish(time.time()))  # partial windows evaluated, waiting ids unmatched
            self._commit()
            log.info("stopped: %s", json.dumps(self.stats()))
        except StartupError as exc:
            log.error("cannot start: %s", exc)
            code = 3
        except (KafkaException, Aborted, ValueError, OSError) as exc:
            log.error("skew loop failed: %s", exc)
            code = 1
        self.consumer.close()
        server.shutdown()
        if code == 0:
            print(json.dumps(self.stats()), flush=True)
        return code

    def stats(self) -> dict[str, Any]:
        """What the run did (printed as one JSON line at exit)."""
        return {**self.counts, **self.engine.stats()}

    def _start_up(self) -> None:
        """Reach the broker (StartupError if it never answers), create the alerts topic, subscribe."""
        src = self.config.sources
        settings: dict[str, Any] = {**self._admin_conf, "error_cb": self._on_kafka_error}
        admin = AdminClient(settings)
        existing = list_topics(admin, src.bootstrap_servers, lambda: self._fatal)
        create_topics(admin, [src.alerts_topic], existing)
        if src.offline_file:
            self._file = read_offline_file(Path(src.offline_file))
        topics = [src.serving_topic] + ([src.offline_topic] if src.offline_topic else [])
        self.consumer.subscribe(topics, on_assign=self._on_assign)
        self.health.set_ready(None)
        log.info("joining %s on id (offline: %s)", src.serving_topic, src.offline_topic or src.offline_file)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # a (re)joining group is not idleness (the client assigns itself after this)
        self._idle.restart()

    def _loop(self) -> None:
        cfg = self.config
        last_commit = 0.0
        while not self._stopping:
            self.health.beat()
            if self._fatal is not None:
                raise KafkaException(self._fatal)
            fed = self._feed_file()
            budget = cfg.batch_size
            if cfg.max_events is not None:
                budget = min(budget, cfg.max_events - self.counts["consumed"])
                if budget <= 0:
                    log.info("max_events=%d reached", cfg.max_events)
                    return
            msgs = self.consumer.consume(num_messages=budget, timeout=cfg.batch_timeout_s)
            now = time.monotonic()
            if msgs:
                self._idle.restart(now)
                self._apply(self.engine.add(self._decode(msgs), now, time.time()))
            elif fed or not self.consumer.assignment():
                self._idle.restart(now)  # input from the file, or no partition owned yet: not idle
            self._apply(self.engine.tick(now, time.time()))
            if msgs and now - last_commit >= 1.0:
                self._commit()
                last_commit = now
            if not msgs and not fed and self._idle.expired(now):
                return

    # ------------------------------------------------------------------ input
    def _feed_file(self) -> int:
        """Read offline file rows ahead while the join has room (bounded per iteration)."""
        if self._file_done or self._file is None:
            return 0
        want = min(self.engine.offline_room(), FILE_ROWS_PER_ITERATION)
        got = list(islice(self._file, want))
        if len(got) < want:
            self._file_done = True
            log.info("offline file read to the end")
        rows = [row for row in got if row is not None]
        self.counts["invalid"] += len(got) - len(rows)
        if rows:
            self._apply(self.engine.add(rows, time.monotonic(), time.time()))
        return len(got)

    def _decode(self, msgs: list[Message]) -> list[ServingRow | OfflineRow]:
        """Messages as engine rows, in order; bad ones counted (and serving events per model)."""
        src, shadow = self.config.sources, self.config.shadow
        rows: list[ServingRow | OfflineRow] = []
        for msg in msgs:
            err = msg.error()
            if err is not None:
                consume_error(err)
                continue
            self.counts["consumed"] += 1
            try:
                event = decode_event(msg.value())
            except InvalidEvent as exc:
                self.counts["invalid"] += 1
                self.metrics.invalid_events.labels(exc.reason).inc()
                continue
            if event.id is None:
                self.counts["no_id"] += 1
                continue
            if msg.topic() == src.offline_topic:
                rows.append(OfflineRow(event.id, event.features, event.ts))
                continue
            model = event.model or self.config.default_model
            self.metrics.events.labels(model).inc()
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            assert topic is not None and partition is not None and offset is not None  # set on every record
            row = ServingRow(event.id, event.features, model, topic, partition, offset, event.ts, event.prediction)
            if shadow is not None and shadow.version_field is not None:
                row = replace(row, version=_top_level(msg.value(), shadow.version_field))
            rows.append(row)
        return rows

    # ------------------------------------------------------------------ output
    def _apply(self, step: SkewStep) -> None:
        """Publish the engine's alerts; gauges from its read-outs."""
        model = self.engine.model
        for name, ratio in step.skew_ratio.items():
            self.metrics.feature_skew_ratio.labels(model, name).set(ratio)
        if step.shadow is not None and self.config.shadow is not None:
            agreement, distance = step.shadow
            candidate = self.config.shadow.candidate
            self.metrics.drift_score.labels(candidate, "prediction", "shadow_agreement").set(agreement)
            self.metrics.drift_score.labels(candidate, "prediction", "shadow_distance").set(distance)
        for event in step.events:
            self._publish(event)
        for side, total in step.unmatched.items():
            delta = total - self._reported_unmatched[side]
            if delta:
                self.metrics.join_unmatched.labels(model, side).inc(delta)
                self._reported_unmatched[side] = total

    def _publish(self, event: DriftEvent) -> None:
        self.output.produce(self.config.sources.alerts_topic, event.key.encode(), event.model_dump_json().encode())
        self.counts["alerts"] += 1
        self.metrics.alerts.labels(event.model, event.feature, event.detector, event.status).inc()
        drifting = 1 if event.status == "drift" else 0
        self.metrics.drift_detected.labels(event.model, event.feature, event.detector).set(drifting)
        log.info("alert %s %s %s=%.4g", event.key, event.detector, event.statistic_name, event.statistic or 0.0)
        if self.on_alert is not None:
            self.on_alert(event)

    def _commit(self) -> None:
        """At-least-once: every alert is acknowledged before the offsets that led to it are committed."""
        self.output.commit(None)  # None: the consumer's current positions
        self.output.begin()

    def _on_kafka_error(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.health.set_ready(f"broker unreachable: {err.str()}")
        if err.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED) or err.fatal():
            self._fatal = err
        rdkafka_log.warning("kafka: %s", err.str(), extra={"kind": err.name()})


def _top_level(raw: bytes | None, name: str) -> str | None:
    """A top-level field of the raw JSON event (FeatureEvent ignores unknown fields)."""
    try:
        value = json.loads(raw or b"{}").get(name)
    except (ValueError, AttributeError):
        return None
    return None if value is None else str(value)


# ---------------------------------------------------------------------- CLI
def cmd_skew(args: argparse.Namespace) -> int:
    """``driftsentinel skew``: flags override the config file; exit code 2 for a config that cannot run."""
    names = ("bootstrap_servers", "serving_topic", "offline_topic", "offline_file", "alerts_topic", "group_id", "model")
    overrides = {f"sources.{name}": getattr(args, name) for name in names}
    overrides |= {name: getattr(args, name) for name in ("metrics_port", "metrics_host", "idle_exit", "max_events")}
    config = load_skew_config(args.config, overrides)  # a ConfigError: one line from the CLI's guard
    problem = _cannot_run(config)
    if problem is not None:
        print(f"driftsentinel: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sidecar = SkewSidecar(config)
    sidecar.install_signal_handlers()
    return sidecar.run()


def _cannot_run(config: SkewSidecarConfig) -> str | None:
    """Why a valid config still gives nothing to do (or nothing to read), if it does."""
    src = config.sources
    if not (src.offline_topic or src.offline_file or config.shadow):
        return "skew needs --offline-topic, --offline-file or a shadow section"
    if src.offline_file and not Path(src.offline_file).is_file():
        return f"no such offline file: {src.offline_file}"
    return None


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``skew`` subcommand to a CLI's subparsers."""
    p = subparsers.add_parser(
        "skew", help="train/serve skew by join (serving vs offline features) and shadow-model divergence"
    )
    d = SkewSidecarConfig()

    def dflt(dotted: str, value: object) -> str:
        return f"(default: {dotted} from --config, else {'unset' if value is None else value})"

    p.add_argument("--config", help="YAML config file (schemas/skew.py: sources, skew, shadow; default: none)")
    src = d.sources
    p.add_argument(
        "--bootstrap-servers", help="Kafka brokers " + dflt("sources.bootstrap_servers", src.bootstrap_servers)
    )
    p.add_argument(
        "--alerts-topic", help="topic the skew alerts go to " + dflt("sources.alerts_topic", src.alerts_topic)
    )
    p.add_argument("--group-id", help="consumer group " + dflt("sources.group_id", src.group_id))
    p.add_argument("--metrics-host", help="address of /metrics " + dflt("metrics_host", d.metrics_host))
    p.add_argument(
        "--serving-topic", help="the model server's FeatureEvents " + dflt("sources.serving_topic", src.serving_topic)
    )
    p.add_argument(
        "--offline-topic", help="offline-computed features of the same ids " + dflt("sources.offline_topic", None)
    )
    p.add_argument(
        "--offline-file",
        help="...or replay them from a JSON Lines / CSV / Parquet (`parquet` extra) file "
        + dflt("sources.offline_file", None),
    )
    p.add_argument("--model", help="join only serving events of this model " + dflt("sources.model", "all models"))
    p.add_argument(
        "--metrics-port", type=int, help="port of /metrics (0: any free port) " + dflt("metrics_port", d.metrics_port)
    )
    p.add_argument("--idle-exit", type=float, help="stop after SECONDS without input " + dflt("idle_exit", None))
    p.add_argument("--max-events", type=int, help="stop after N input messages " + dflt("max_events", None))
    p.set_defaults(func=cmd_skew)
