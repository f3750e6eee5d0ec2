"""``driftsentinel skew``: the train/serve skew and shadow-model loop on Kafka.

Consumes the serving topic (the model server's FeatureEvents) and the offline topic (the
same entities' features computed by the training pipeline), or replays the offline side
from a JSON Lines / CSV file, joins them on ``id`` in a bounded window
(:mod:`stream.join`), compares the pairs (:mod:`detectors.skew`) and publishes a
DriftEvent with detector ``skew`` per feature whose values disagree. With a ``shadow``
section it also pairs the predictions of two model versions seen on the serving topic
(:mod:`detectors.shadow`) and publishes ``shadow_divergence`` events.

Delivery is at-least-once: alerts are flushed before the input offsets are committed,
and their ``event_id`` is derived from the serving event at which the window closed.
The join window lives in memory only: after a restart, ids that were waiting for their
partner are not paired (their partners count as unmatched).

    driftsentinel skew --bootstrap-servers 127.0.0.1:9092 --serving-topic features \\
        --offline-topic features-offline --alerts-topic drift-alerts --config skew.yaml

Decoding of files, for the replay mode:

>>> parse_offline_line('{"id": "u1", "features": {"latency": 0.25, "plan": "pro"}}')
('u1', {'latency': 0.25, 'plan': 'pro'}, None)
>>> parse_offline_line('{"id": 7, "latency": 0.25, "ts": 3}')
('7', {'latency': 0.25}, 3.0)
>>> _csv_value("0.5"), _csv_value("12"), _csv_value(""), _csv_value("pro")
(0.5, 12, None, 'pro')
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from driftsentinel.detectors.shadow import ShadowDetector, ShadowResult
from driftsentinel.detectors.skew import SkewDetector, WindowResult
from driftsentinel.schemas import DriftEvent, InvalidEvent, SourcePosition, decode_event
from driftsentinel.schemas.alerts import make_event_id
from driftsentinel.schemas.config import ConfigError
from driftsentinel.schemas.skew import SkewSidecarConfig, load_skew_config
from driftsentinel.stream.idle import IdleClock
from driftsentinel.stream.join import StreamJoin
from driftsentinel.stream.metrics import HealthState, Metrics, serve

log = logging.getLogger("driftsentinel.skew")

SERVING, OFFLINE = "serving", "offline"
#: Offline file rows read per loop iteration at most (keeps every iteration short).
FILE_ROWS_PER_ITERATION = 20_000


@dataclass(frozen=True)
class _Position:
    """Where a serving event was read: the alert's source and the basis of its event_id."""

    topic: str
    partition: int
    offset: int
    ts: float | None


# ---------------------------------------------------------------------- offline files
def _csv_value(text: str) -> Any:
    """A CSV cell: empty = missing, then int, then float, else the text itself."""
    if text == "":
        return None
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        return None if isinstance(value, float) and math.isnan(value) else value
    return text


#: One offline row: id, features, event time (epoch seconds, when the row has a numeric ``ts``).
OfflineRow = tuple[str, dict[str, Any], float | None]


def _ts(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_offline_line(line: str) -> OfflineRow | None:
    """One JSON Lines row: a FeatureEvent, or a flat object ``{"id": .., feature: value, ..}``."""
    obj = json.loads(line)
    if not isinstance(obj, dict) or obj.get("id") is None:
        return None
    if isinstance(obj.get("features"), dict):
        return str(obj["id"]), obj["features"], _ts(obj.get("ts"))
    feats = {k: v for k, v in obj.items() if k not in ("id", "ts", "model", "prediction", "label")}
    return str(obj["id"]), feats, _ts(obj.get("ts"))


def read_offline_file(path: Path) -> Iterator[OfflineRow | None]:
    """Rows of a ``.csv`` (header with an ``id`` column), Parquet or JSON Lines file, in file order.

    Yields ``None`` for a row that cannot be used (no id, not JSON), so callers can count it.
    Parquet needs pyarrow (``pip install 'driftsentinel[parquet]'``).
    """
    if path.suffix.lower() in (".parquet", ".pq"):
        from driftsentinel.stream.baseline import read_rows

        for row in read_rows(path):
            key = row.pop("id", None)
            if key is None:
                yield None
                continue
            ts = _ts(row.pop("ts", None))
            yield str(key), {k: v for k, v in row.items() if k != "model"}, ts
        return
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "id" not in reader.fieldnames:
                raise ValueError(f"{path}: CSV needs a header with an 'id' column")
            for row in reader:
                key = row.pop("id", None)
                if not key:
                    yield None
                    continue
                ts = _ts(_csv_value(row.pop("ts", None) or ""))
                yield key, {k: _csv_value(v or "") for k, v in row.items() if k != "model"}, ts
        return
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                yield parse_offline_line(line)
            except (json.JSONDecodeError, RecursionError):
                yield None


# ---------------------------------------------------------------------- the loop
class SkewSidecar:
    """Join serving and offline features, compare them, pair shadow predictions, publish."""

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
        src = config.sources
        win = config.skew.window
        self.join = StreamJoin((SERVING, OFFLINE), win.max_pending, win.max_age_s)
        self.skew = SkewDetector(config.skew)
        self.shadow = ShadowDetector(config.shadow) if config.shadow else None
        self.shadow_join = (
            StreamJoin((config.shadow.baseline, config.shadow.candidate), win.max_pending, win.max_age_s)
            if config.shadow
            else None
        )
        self.model = src.model or config.default_model
        # without an offline side there is nothing to join serving events with
        self._skew_on = config.skew.enabled and bool(src.offline_topic or src.offline_file)
        self.consumed = 0
        self.published = 0
        self.invalid = 0
        self.no_id = 0
        self._reported_unmatched = {SERVING: 0, OFFLINE: 0}
        if self._skew_on:
            for side in (SERVING, OFFLINE):  # exported from the start, at 0
                self.metrics.join_unmatched.labels(self.model, side)
        self._last_pair: _Position | None = None
        self._last_shadow: _Position | None = None
        self._stopping = False
        self._idle = IdleClock(config.idle_exit, log)  # restarted in _loop and _on_assign
        self._window_started = time.monotonic()
        self._file: Iterator[OfflineRow | None] | None = None
        self._file_done = src.offline_file is None
        common = {"bootstrap.servers": src.bootstrap_servers, **src.common}
        self._admin_conf = common
        self.consumer = Consumer(
            {
                **common,
                "group.id": src.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                "isolation.level": "read_committed",  # transactional producers' aborted records are not features
            }
        )
        self.producer = Producer({**common, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
        self._delivery_failures: list[str] = []

    # ------------------------------------------------------------------ lifecycle
    def request_stop(self, *_: Any) -> None:
        """Finish the batch in hand, evaluate, publish, commit, exit (SIGTERM/SIGINT)."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self) -> int:
        """Run until stopped, ``max_events`` or ``idle_exit``; returns the exit code."""
        cfg = self.config
        server = serve(self.metrics, self.health, cfg.metrics_host, cfg.metrics_port)
        log.info("metrics on http://%s:%d/metrics", cfg.metrics_host, server.server_address[1])
        try:
            self._start_up()
            self._loop()
            self._finish_input()
        except (KafkaException, ValueError, OSError) as exc:
            log.error("skew loop failed: %s", exc)
            self.consumer.close()
            server.shutdown()
            return 1
        self.consumer.close()
        server.shutdown()
        print(json.dumps(self.stats()), flush=True)
        return 0

    def stats(self) -> dict[str, Any]:
        """What the run did (printed as one JSON line at exit)."""
        return {
            "consumed": self.consumed,
            "invalid": self.invalid,
            "no_id": self.no_id,
            "alerts": self.published,
            "join": self.join.stats(),
            "shadow_join": self.shadow_join.stats() if self.shadow_join else None,
        }

    def _start_up(self) -> None:
        src = self.config.sources
        admin = AdminClient(self._admin_conf)
        existing = admin.list_topics(timeout=30).topics
        if src.alerts_topic not in existing:
            fut = admin.create_topics([NewTopic(src.alerts_topic, num_partitions=1, replication_factor=-1)])
            try:
                fut[src.alerts_topic].result(timeout=30)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        topics = [src.serving_topic] + ([src.offline_topic] if src.offline_topic else [])
        if src.offline_file:
            self._file = read_offline_file(Path(src.offline_file))
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
            fed = self._feed_file()
            budget = cfg.batch_size
            if cfg.max_events is not None:
                budget = min(budget, cfg.max_events - self.consumed)
                if budget <= 0:
                    log.info("max_events=%d reached", cfg.max_events)
                    return
            msgs = self.consumer.consume(num_messages=budget, timeout=cfg.batch_timeout_s)
            now = time.monotonic()
            if msgs:
                self._idle.restart(now)
                self._process(msgs)
            elif fed or not self.consumer.assignment():
                self._idle.restart(now)  # input from the file, or no partition owned yet: not idle
            self._expire(now)
            self._evaluate_on_time(now)
            self._check_deliveries()
            if msgs and now - last_commit >= 1.0:
                self._commit()
                last_commit = now
            if not msgs and not fed and self._idle.expired(now):
                return

    def _finish_input(self) -> None:
        """End of the run: partial windows are evaluated, waiting ids count as unmatched."""
        self._flush_windows()
        self.join.drain()
        if self.shadow_join is not None:
            self.shadow_join.drain()
        self._report_unmatched()
        self._check_deliveries()
        self._commit()
        log.info("stopped: %s", json.dumps(self.stats()))

    # ------------------------------------------------------------------ input
    def _feed_file(self) -> int:
        """Read offline file rows ahead while the join has room (bounded per iteration)."""
        if self._file_done or self._file is None:
            return 0
        # leave half the window to ids read ahead of their serving partner
        room = max(max(self.config.skew.window.max_pending // 2, 1) - self.join.pending(OFFLINE), 0)
        fed = 0
        now = time.monotonic()
        ids: list[str] = []
        pairs: list[tuple[Any, Any]] = []
        for _ in range(min(room, FILE_ROWS_PER_ITERATION)):
            row = next(self._file, False)
            if row is False:
                self._file_done = True
                log.info("offline file read to the end")
                break
            fed += 1
            if row is None:
                self.invalid += 1
                continue
            key, feats, ts = row  # type: ignore[misc]
            pair = self.join.add(OFFLINE, key, feats, self._join_time(now, ts))
            if pair is not None:
                ids.append(key)
                pairs.append(pair)
        if ids:
            self._compare(ids, pairs)
        return fed

    def _join_time(self, arrival: float, ts: float | None) -> float:
        """The join's clock: arrival time, or with ``clock: event`` the event's ``ts``.

        Under the event clock an event without ``ts`` takes the newest ``ts`` seen (the
        watermark), or, before any, no time limit (the count limit still holds).
        """
        if self.config.skew.window.clock == "arrival":
            return arrival
        if ts is not None:
            return ts
        return self.join.watermark if math.isfinite(self.join.watermark) else math.inf

    def _process(self, msgs: list[Message]) -> None:
        src = self.config.sources
        shadow = self.config.shadow
        now = time.monotonic()
        ids: list[str] = []
        pairs: list[tuple[Any, Any]] = []
        s_ids: list[str] = []
        s_pairs: list[tuple[Any, Any]] = []
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)
                log.warning("consume error: %s", err.str())
                continue
            self.consumed += 1
            try:
                event = decode_event(msg.value())
            except InvalidEvent as exc:
                self.invalid += 1
                self.metrics.invalid_events.labels(exc.reason).inc()
                continue
            if event.id is None:
                self.no_id += 1
                continue
            model = event.model or self.config.default_model
            t = self._join_time(now, event.ts)
            if msg.topic() == src.offline_topic:
                pair = self.join.add(OFFLINE, event.id, dict(event.features), t)
                if pair is not None:
                    ids.append(event.id)
                    pairs.append(pair)
                continue
            pos = _Position(msg.topic(), msg.partition(), msg.offset(), event.ts)
            self.metrics.events.labels(model).inc()
            if shadow is not None and self.shadow_join is not None:
                version = model if shadow.version_field is None else _top_level(msg.value(), shadow.version_field)
                if version in (shadow.baseline, shadow.candidate):
                    got = self.shadow_join.add(version, event.id, (event.prediction, pos), t)
                    if got is not None:
                        s_ids.append(event.id)
                        s_pairs.append(got)
                    if version == shadow.candidate:
                        continue  # the candidate's features are the baseline's: no skew pairing
            if not self._skew_on or (src.model is not None and model != src.model):
                continue
            pair = self.join.add(SERVING, event.id, (dict(event.features), pos), t)
            if pair is not None:
                ids.append(event.id)
                pairs.append(pair)
        if ids:
            self._compare(ids, pairs)
        if s_ids:
            self._compare_shadow(s_ids, s_pairs)

    # ------------------------------------------------------------------ decisions
    def _compare(self, ids: list[str], pairs: list[tuple[Any, Any]]) -> None:
        positions = [p[0][1] for p in pairs]
        results = self.skew.update(ids, [p[0][0] for p in pairs], [p[1] for p in pairs])
        self._last_pair = positions[-1]
        if results:
            self._window_started = time.monotonic()
        for result in results:
            self._on_skew_window(result, positions)

    def _compare_shadow(self, ids: list[str], pairs: list[tuple[Any, Any]]) -> None:
        assert self.shadow is not None
        positions = [p[0][1] for p in pairs]  # the baseline's event
        results = self.shadow.update(ids, [p[0][0] for p in pairs], [p[1][0] for p in pairs])
        self._last_shadow = positions[-1]
        for result in results:
            self._on_shadow_window(result, positions)

    def _flush_windows(self) -> None:
        """Evaluate the partial skew and shadow windows now."""
        result = self.skew.flush()
        if result is not None:
            self._on_skew_window(result, [])
        if self.shadow is not None:
            shadow_result = self.shadow.flush(min_pairs=self.config.skew.min_pairs)
            if shadow_result is not None:
                self._on_shadow_window(shadow_result, [])

    def _evaluate_on_time(self, now: float) -> None:
        """Close a partial skew/shadow window once ``skew.window_s`` has passed (slow streams)."""
        window_s = self.config.skew.window_s
        if window_s is None or now - self._window_started < window_s:
            return
        self._window_started = now
        self._flush_windows()

    def _on_skew_window(self, result: WindowResult, positions: list[_Position]) -> None:
        pos = positions[result.row] if result.row >= 0 else self._last_pair
        assert pos is not None
        for name, report in result.reports.items():
            self.metrics.feature_skew_ratio.labels(self.model, name).set(report.mismatch_rate)
        for sig in result.signals:
            severity = "info"
            if sig.status == "drift":
                severity = "critical" if sig.statistic >= self.config.skew.critical_mismatch else "warning"
            evidence = sig.report.evidence()
            evidence["window_pairs"] = result.pairs
            evidence["join"] = self.join.stats()
            self._publish(
                self._event(sig.feature, "skew", sig.status, severity, sig.statistic, sig.statistic_name,
                            sig.threshold, pos, sig.report.serving, sig.report.offline, evidence, self.model)
            )

    def _on_shadow_window(self, result: ShadowResult, positions: list[_Position]) -> None:
        shadow = self.config.shadow
        assert shadow is not None
        pos = positions[result.row] if result.row >= 0 else self._last_shadow
        assert pos is not None
        report = result.report
        self.metrics.drift_score.labels(shadow.candidate, "prediction", "shadow_agreement").set(report.agreement_rate)
        self.metrics.drift_score.labels(shadow.candidate, "prediction", "shadow_distance").set(report.distance)
        for sig in result.signals:
            severity = "info"
            if sig.status == "drift":
                severity = "critical" if sig.statistic < shadow.min_agreement else "warning"
            evidence = {"baseline": shadow.baseline, "candidate": shadow.candidate, **report.evidence()}
            self._publish(
                self._event("prediction", "shadow_divergence", sig.status, severity, sig.statistic,
                            sig.statistic_name, sig.threshold, pos, report.candidate, report.baseline, evidence,
                            shadow.candidate)
            )

    def _event(self, feature: str, detector: str, status: str, severity: str, statistic: float, statistic_name: str,
               threshold: float, pos: _Position, window: Any, reference: Any, evidence: dict[str, Any],
               model: str) -> DriftEvent:
        group = self.config.sources.group_id
        return DriftEvent(
            event_id=make_event_id(group, pos.topic, pos.partition, pos.offset, f"{model}/{feature}", detector, status),
            model=model,
            feature=feature,
            detector=detector,
            status=status,  # type: ignore[arg-type]
            severity=severity,  # type: ignore[arg-type]
            statistic=statistic,
            statistic_name=statistic_name,
            threshold=threshold,
            source=SourcePosition(topic=pos.topic, partition=pos.partition, offset=pos.offset),
            event_time=pos.ts,
            detected_at=time.time(),
            window=window,
            reference=reference,
            evidence=evidence,
        )

    # ------------------------------------------------------------------ output
    def _publish(self, event: DriftEvent) -> None:
        value = event.model_dump_json().encode()
        deadline = time.monotonic() + 60
        while True:
            try:
                self.producer.produce(self.config.sources.alerts_topic, key=event.key.encode(), value=value,
                                      on_delivery=self._on_delivery)
                break
            except BufferError:
                if time.monotonic() > deadline:
                    raise
                self.producer.poll(0.05)
        self.producer.poll(0)
        self.published += 1
        self.metrics.alerts.labels(event.model, event.feature, event.detector, event.status).inc()
        self.metrics.drift_detected.labels(event.model, event.feature, event.detector).set(
            1 if event.status == "drift" else 0
        )
        log.info("alert %s/%s %s %s=%.4g", event.model, event.feature, event.detector, event.statistic_name,
                 event.statistic or 0.0)
        if self.on_alert is not None:
            self.on_alert(event)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._delivery_failures.append(f"{msg.topic()}: {err}")

    def _check_deliveries(self) -> None:
        self.producer.poll(0)
        if self._delivery_failures:
            failures, self._delivery_failures = self._delivery_failures, []
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, f"alerts not delivered: {failures[:3]}"))

    def _commit(self) -> None:
        """At-least-once: every alert is acknowledged before the offsets that led to it are committed."""
        if self.producer.flush(60):
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "alerts not delivered within 60s"))
        self._check_deliveries()
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                raise

    def _expire(self, now: float) -> None:
        t = None if self.config.skew.window.clock == "event" else now
        self.join.expire(t)
        if self.shadow_join is not None:
            self.shadow_join.expire(t)
        self._report_unmatched()

    def _report_unmatched(self) -> None:
        for side, total in self.join.unmatched.items():
            delta = total - self._reported_unmatched[side]
            if delta:
                self.metrics.join_unmatched.labels(self.model, side).inc(delta)
                self._reported_unmatched[side] = total


def _top_level(raw: bytes | None, name: str) -> str | None:
    """A top-level field of the raw JSON event (FeatureEvent ignores unknown fields)."""
    try:
        value = json.loads(raw or b"{}").get(name)
    except (ValueError, AttributeError):
        return None
    return None if value is None else str(value)


# ---------------------------------------------------------------------- CLI
def cmd_skew(args: argparse.Namespace) -> int:
    """``driftsentinel skew``: flags override the config file."""
    overrides = {
        "sources.bootstrap_servers": args.bootstrap_servers,
        "sources.serving_topic": args.serving_topic,
        "sources.offline_topic": args.offline_topic,
        "sources.offline_file": args.offline_file,
        "sources.alerts_topic": args.alerts_topic,
        "sources.group_id": args.group_id,
        "sources.model": args.model,
        "metrics_port": args.metrics_port,
        "metrics_host": args.metrics_host,
        "idle_exit": args.idle_exit,
        "max_events": args.max_events,
    }
    try:
        config = load_skew_config(args.config, overrides)
    except ConfigError as exc:
        print(f"driftsentinel: {exc}", file=sys.stderr)
        return 2
    if not (config.sources.offline_topic or config.sources.offline_file or config.shadow):
        print("driftsentinel: skew needs --offline-topic, --offline-file or a shadow section", file=sys.stderr)
        return 2
    if config.sources.offline_file and not Path(config.sources.offline_file).is_file():
        print(f"driftsentinel: no such offline file: {config.sources.offline_file}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sidecar = SkewSidecar(config)
    sidecar.install_signal_handlers()
    return sidecar.run()


def register_cli(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``skew`` subcommand to a CLI's subparsers."""
    p = subparsers.add_parser(
        "skew", help="train/serve skew by join (serving vs offline features) and shadow-model divergence"
    )
    p.add_argument("--config", help="YAML config file (schemas/skew.py: sources, skew, shadow)")
    p.add_argument("--bootstrap-servers")
    p.add_argument("--serving-topic", help="the model server's FeatureEvents")
    p.add_argument("--offline-topic", help="offline-computed features of the same ids")
    p.add_argument("--offline-file", help="...or replay them from a JSON Lines / CSV file")
    p.add_argument("--alerts-topic")
    p.add_argument("--group-id")
    p.add_argument("--model", help="join only serving events of this model")
    p.add_argument("--metrics-port", type=int)
    p.add_argument("--metrics-host")
    p.add_argument("--idle-exit", type=float, help="stop after SECONDS without input")
    p.add_argument("--max-events", type=int, help="stop after N input messages")
    p.set_defaults(func=cmd_skew)
