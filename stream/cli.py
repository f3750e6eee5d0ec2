"""driftsentinel: streaming drift detection for ML feature streams on Kafka.

Subcommands: ``run`` (the sidecar), ``demo`` (synthetic stream with known drift),
``replay`` (the same engine over a JSON Lines file, alerts as JSON lines), ``baseline``
(reference profile from training data), ``calibrate`` (thresholds for a false-alarm rate),
``skew`` (train/serve skew by join, shadow models), ``schema`` (JSON Schemas of the
contracts), ``local-kafka`` (a real single-node broker for development and tests).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pydantic import BaseModel

from driftsentinel.schemas import ConfigError, DriftEvent, FeatureEvent, SidecarConfig, load_config
from driftsentinel.schemas.profile import ProfileError, ReferenceProfile, load_profile


def _setup_logging(fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":

        class JsonFormatter(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                return json.dumps(
                    {"ts": record.created, "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
                )

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _config_from_args(args: argparse.Namespace) -> SidecarConfig:
    overrides = {
        "kafka.bootstrap_servers": args.bootstrap_servers,
        "kafka.input_topic": args.input_topic,
        "kafka.alerts_topic": args.alerts_topic,
        "kafka.dlq_topic": args.dlq_topic,
        "kafka.labels_topic": args.labels_topic,
        "kafka.group_id": args.group_id,
        "metrics_port": args.metrics_port,
        "max_events": args.max_events,
        "idle_exit": args.idle_exit,
        "detectors.backend": args.backend,
        "log_format": args.log_format,
        "reference": args.reference,
        "kafka.instance_id": args.instance_id,
    }
    return load_config(args.config, overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from driftsentinel.stream.clients import effective_config_line
    from driftsentinel.stream.consumer import Sidecar

    try:
        config = _config_from_args(args)
        sidecar = Sidecar(config)
    except (ConfigError, ProfileError) as exc:
        print(f"driftsentinel: {exc}", file=sys.stderr)
        return 2
    _setup_logging(config.log_format)
    logging.getLogger("driftsentinel").info("effective config %s", effective_config_line(config))
    sidecar.install_signal_handlers()
    return sidecar.run()


def cmd_demo(args: argparse.Namespace) -> int:
    from driftsentinel.stream.demo import produce_demo

    drift_features = [f for f in args.drift_features.split(",") if f] if args.drift_features else []
    try:
        n = produce_demo(
            args.bootstrap_servers,
            args.topic,
            args.events,
            args.features,
            args.drift_at,
            drift_features,
            args.shift,
            args.seed,
            model=args.model,
            rate=args.rate,
        )
    except ValueError as exc:
        print(f"driftsentinel demo: {exc}", file=sys.stderr)
        return 2
    print(f"produced {n} events to {args.topic} (drift at {args.drift_at} on {drift_features or 'none'})")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from driftsentinel.stream.progress import Progress
    from driftsentinel.stream.replay import replay_file

    try:
        config = load_config(
            args.config,
            {"detectors.backend": args.backend, "reference": args.reference, "kafka.group_id": args.group_id},
        )
        if config.reference:
            load_profile(config.reference)  # fail here, clearly, not mid-replay
    except (ConfigError, ProfileError) as exc:
        print(f"driftsentinel: {exc}", file=sys.stderr)
        return 2
    path = Path(args.input)
    if not path.is_file():
        print(f"driftsentinel: no such input file: {path}", file=sys.stderr)
        return 2
    if args.labels and not Path(args.labels).is_file():
        print(f"driftsentinel: no such labels file: {args.labels}", file=sys.stderr)
        return 2
    recorder = None
    if args.plot or args.html:
        from driftsentinel.stream.report import ReplayRecorder

        recorder = ReplayRecorder()
    # --progress forces the bar; otherwise only when stderr is a terminal
    progress = Progress(path.stat().st_size, sys.stderr, enabled=True if args.progress else None)
    out = sys.stdout if args.output == "-" else open(args.output, "w")  # noqa: SIM115
    try:
        stats = replay_file(
            path,
            config,
            out,
            recorder=recorder,
            progress=progress,
            labels=Path(args.labels) if args.labels else None,
            topic=args.topic,
            partition=args.partition,
            labels_topic=args.labels_topic,
        )
    finally:
        progress.close()
        if out is not sys.stdout:
            out.close()
    if recorder is not None:
        from driftsentinel.stream.report import render_html, render_png

        if args.plot:
            render_png(recorder, args.plot, source=path.name)
            print(f"plot: {args.plot}", file=sys.stderr)
        if args.html:
            render_html(recorder, args.html, stats, source=path.name)
            print(f"report: {args.html}", file=sys.stderr)
    print(json.dumps(stats), file=sys.stderr)
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from driftsentinel.stream.baseline import parse_time, read_rows, rows_from_topic

    try:
        config = load_config(args.config, {"kafka.bootstrap_servers": args.bootstrap_servers})
        if args.from_topic:
            if not (args.from_time and args.to_time):
                raise ValueError("--from-topic needs --from-time and --to-time")
            start, end = parse_time(args.from_time), parse_time(args.to_time)
            conf = {"bootstrap.servers": config.kafka.bootstrap_servers, **config.kafka.common}
            rows = rows_from_topic(conf, args.from_topic, start, end)
            source = f"kafka:{args.from_topic}[{args.from_time},{args.to_time})"
        elif args.input:
            path = Path(args.input)
            rows, source = read_rows(path), path.name
        else:
            raise ValueError("give --input FILE or --from-topic T --from-time .. --to-time ..")
        from driftsentinel.stream import baseline_performance  # --model: the performance reference too

        profile = baseline_performance.make_profile(rows, source, config, args)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"driftsentinel baseline: {exc}", file=sys.stderr)
        return 2
    Path(args.out).write_text(profile.model_dump_json(indent=1))
    kinds = [p.kind for p in profile.features.values()]
    print(
        f"profile of {profile.n_rows} rows: {kinds.count('numeric')} numeric, "
        f"{kinds.count('categorical')} categorical features -> {args.out}",
        file=sys.stderr,
    )
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import yaml

    from driftsentinel.detectors.calibration import calibrate

    try:
        config = load_config(args.config)
        profile = load_profile(args.reference)
    except (ConfigError, ProfileError) as exc:
        print(f"driftsentinel calibrate: {exc}", file=sys.stderr)
        return 2
    params = calibrate(profile, config.detectors, args.false_alarms_per_million, values=args.values, seed=args.seed)
    data = yaml.safe_load(Path(args.config).read_text()) if args.config else {}
    data = data or {}
    data["reference"] = str(args.reference)
    data.setdefault("detectors", {})["per_feature"] = params
    SidecarConfig.model_validate(data)  # what we write must load
    Path(args.out).write_text(
        f"# driftsentinel calibrate: <= {args.false_alarms_per_million} false alarms per million events per feature\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    print(f"calibrated {len(params)} features -> {args.out}", file=sys.stderr)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    contracts: dict[str, type[BaseModel]] = {
        "alert": DriftEvent,
        "event": FeatureEvent,
        "config": SidecarConfig,
        "profile": ReferenceProfile,
    }
    model = contracts[args.which]
    print(json.dumps(model.model_json_schema(), indent=2))
    return 0


def cmd_local_kafka(args: argparse.Namespace) -> int:
    from driftsentinel.stream import local_kafka

    return local_kafka.main(args.local_kafka_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftsentinel", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_demo(sub)
    _add_replay(sub)
    _add_baseline_and_calibrate(sub)

    schema = sub.add_parser("schema", help="print a contract's JSON Schema")
    schema.add_argument("which", choices=["alert", "event", "config", "profile"])
    schema.set_defaults(func=cmd_schema)

    # The launcher is a dev tool: its module is imported only when its command runs, never by `run`.
    launcher = sub.add_parser(
        "local-kafka",
        add_help=False,
        help="a local Apache Kafka broker on the JVM (no Docker needed): start|stop|status|fetch",
    )
    launcher.add_argument("local_kafka_args", nargs=argparse.REMAINDER)
    launcher.set_defaults(func=cmd_local_kafka)
    __import__("driftsentinel.stream.skew_loop", fromlist=["register_cli"]).register_cli(sub)  # driftsentinel skew
    return parser


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the sidecar (flags override the config file)")
    run.add_argument("--config", help="YAML config file")
    run.add_argument("--bootstrap-servers")
    run.add_argument("--input-topic")
    run.add_argument("--alerts-topic")
    run.add_argument("--dlq-topic")
    run.add_argument("--labels-topic", help="topic of late labels ({id, label}), joined to predictions by id")
    run.add_argument("--group-id")
    run.add_argument("--metrics-port", type=int)
    run.add_argument("--max-events", type=int, help="stop after N input messages")
    run.add_argument("--idle-exit", type=float, help="stop after SECONDS without input")
    run.add_argument("--backend", choices=["kernel", "river"], help="detector implementation")
    run.add_argument("--log-format", choices=["text", "json"])
    run.add_argument("--reference", help="reference profile (driftsentinel baseline)")
    run.add_argument("--instance-id", help="stable id of this sidecar (default: host name)")
    run.set_defaults(func=cmd_run)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="produce a synthetic stream with known drift points")
    demo.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    demo.add_argument("--topic", default="features")
    demo.add_argument("--events", type=int, default=50_000)
    demo.add_argument("--features", type=int, default=20)
    demo.add_argument("--drift-at", type=int, default=25_000)
    demo.add_argument("--drift-features", default="f0,f1,f2", help="comma-separated names ('' for none)")
    demo.add_argument("--shift", type=float, default=1.0, help="mean shift in standard deviations")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--model", default="demo")
    demo.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    demo.set_defaults(func=cmd_demo)


def _add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = sub.add_parser("replay", help="run the detectors over a JSON Lines file, alerts as JSON lines")
    replay.add_argument("--input", required=True, help="JSON Lines file of FeatureEvents")
    replay.add_argument("--output", default="-", help="where to write alerts (default stdout)")
    replay.add_argument("--config", help="YAML config file")
    replay.add_argument("--backend", choices=["kernel", "river"])
    replay.add_argument("--reference", help="reference profile (driftsentinel baseline)")
    replay.add_argument("--labels", help="JSON Lines file of late LabelEvents, joined to the events by id")
    replay.add_argument("--topic", help="topic the file is read as (default: its name); alerts and event ids name it")
    replay.add_argument("--partition", type=int, default=0, help="partition the file is read as (default 0)")
    replay.add_argument("--labels-topic", help="topic the labels file is read as (default: its name)")
    replay.add_argument("--group-id", help="kafka.group_id for the event ids (a sidecar's, to reproduce its ids)")
    replay.add_argument("--plot", metavar="PNG", help="draw the drifting features (live vs reference, detections)")
    replay.add_argument("--html", metavar="HTML", help="write a self-contained report (feature table, plots)")
    replay.add_argument("--progress", action="store_true", help="progress bar on stderr even when not a terminal")
    replay.set_defaults(func=cmd_replay)


def _add_baseline_and_calibrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    base = sub.add_parser("baseline", help="build a reference profile from training data")
    base.add_argument("--input", help="CSV, JSON Lines or Parquet file of training rows")
    base.add_argument("--from-topic", help="read FeatureEvents from this Kafka topic instead")
    base.add_argument("--from-time", help="start (epoch seconds or RFC 3339), with --from-topic")
    base.add_argument("--to-time", help="end (exclusive), with --from-topic")
    base.add_argument("--bootstrap-servers")
    base.add_argument("--config", help="YAML config (detectors.types pins feature types)")
    base.add_argument("--out", required=True, help="where to write the profile (JSON)")
    from driftsentinel.stream.baseline_performance import add_arguments as add_performance_arguments

    add_performance_arguments(base)
    base.set_defaults(func=cmd_baseline)

    cal = sub.add_parser("calibrate", help="set per-feature thresholds for a false-alarm rate, from a profile")
    cal.add_argument("--reference", required=True, help="reference profile (driftsentinel baseline)")
    cal.add_argument(
        "--false-alarms-per-million",
        type=float,
        default=1.0,
        help="target false drift events per million events per feature (default 1)",
    )
    cal.add_argument("--config", help="config to extend (default: zero-config)")
    cal.add_argument("--out", required=True, help="config file to write (YAML)")
    cal.add_argument("--values", type=int, default=1_000_000, help="simulated values per feature")
    cal.add_argument("--seed", type=int, default=0)
    cal.set_defaults(func=cmd_calibrate)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
