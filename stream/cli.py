"""driftsentinel: streaming drift detection for ML feature streams on Kafka.

Subcommands: ``run`` (the sidecar), ``demo`` (synthetic stream with known drift),
``replay`` (the same engine over a JSON Lines file, alerts as JSON lines), ``baseline``
(reference profile from training data), ``calibrate`` (thresholds for a false-alarm rate),
``skew`` (train/serve skew by join, shadow models), ``schema`` (JSON Schemas of the
contracts), ``local-kafka`` (a real single-node broker for development and tests).

A user's mistake ends in one line on stderr naming the problem and what to do, and a
non-zero exit (:func:`main`): 2 for a bad flag, file or configuration, 3 when the command
cannot start (broker unreachable, metrics port taken), 130 on Ctrl-C. An exception of
any other kind is a bug: its traceback is shown, with a line asking to report it (exit 1).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import math
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel

from driftsentinel.schemas import DriftEvent, FeatureEvent, SidecarConfig, load_config
from driftsentinel.schemas.config import ConfigError, read_utf8, resolve_paths
from driftsentinel.schemas.profile import ReferenceProfile, load_profile

EXIT_USAGE = 2  #: a bad flag, file or configuration
EXIT_CANNOT_START = 3  #: broker unreachable, metrics port taken (as ``run``'s StartupError)
EXIT_INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT)
EXIT_BROKEN_PIPE = 141  #: the reader of stdout went away (128 + SIGPIPE, as ``yes | head``)

#: Errors that mean "the command cannot start", by defining module and class name: matched
#: by name so that the CLI imports none of these modules before a command needs them.
_CANNOT_START = {
    ("driftsentinel.stream.clients", "StartupError"),
    ("driftsentinel.stream.topic_reader", "BrokerUnreachable"),
    ("driftsentinel.stream.metrics", "MetricsPortError"),
    ("driftsentinel.stream.local_kafka", "LocalKafkaError"),
}


class UsageError(ValueError):
    """A flag's value that cannot work (a folder that does not exist, a missing extra, ...)."""


# --------------------------------------------------------------------------- parser
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after each flag's help, unless the help already says it or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, argparse.SUPPRESS) or action.required:
            return text
        return super()._get_help_string(action) or text


class CliParser(argparse.ArgumentParser):
    """argparse with the defaults in the help and a one-line error (no usage block)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


class _VersionAction(argparse.Action):
    """``--version``: this package's, Python's and librdkafka's versions (what a bug report needs)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        import platform
        from importlib.metadata import version

        import confluent_kafka

        print(
            f"driftsentinel {version('driftsentinel')} (Python {platform.python_version()}, "
            f"confluent-kafka {version('confluent-kafka')}, librdkafka {confluent_kafka.libversion()[0]})"
        )
        parser.exit()


def _number(kind: type[int] | type[float], low: float, high: float = math.inf, low_open: bool = False) -> Callable:
    """An argparse ``type``: a finite ``kind`` in ``[low, high]`` (``(low, high]`` if ``low_open``)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            raise argparse.ArgumentTypeError(
                f"{text} must be {bound}" + (f" and <= {high:g}" if high < math.inf else "")
            )
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


_COUNT = _number(int, 1)
_NON_NEGATIVE = _number(int, 0)
_SECONDS = _number(float, 0, low_open=True)


def _period(text: str) -> str:
    """``baseline --period``: auto, none, or a period :func:`~driftsentinel.detectors.seasonal.parse_period` reads."""
    from driftsentinel.detectors.seasonal import parse_period

    if text in ("auto", "none"):
        return text
    try:
        parse_period(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, auto or none") from None
    return text


#: Every default of the config (zero-config), shown in the help of the flags that override it.
_CONFIG_DEFAULTS = SidecarConfig()


def _overrides(dotted: str, what: str) -> str:
    """Help of a flag that overrides ``dotted`` of the config file."""
    value: Any = _CONFIG_DEFAULTS
    for part in dotted.split("."):
        value = getattr(value, part)
    shown = "unset" if value is None else value
    return f"{what} (default: {dotted} from --config, else {shown})"


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="driftsentinel", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_VersionAction, help="print the versions and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub)
    _add_demo(sub)
    _add_replay(sub)
    _add_baseline_and_calibrate(sub)

    schema = sub.add_parser("schema", help="print a contract's JSON Schema")
    schema.add_argument("which", choices=["alert", "event", "config", "profile"], help="the contract")
    schema.set_defaults(func=cmd_schema)

    # The launcher is a dev tool: its module is imported only when its command runs, never by `run`.
    launcher = sub.add_parser(
        "local-kafka",
        add_help=False,
        help="a local Apache Kafka broker on the JVM (no Docker needed): start|stop|status|fetch",
    )
    launcher.add_argument("local_kafka_args", nargs=argparse.REMAINDER, help="start|stop|status|fetch and its flags")
    launcher.set_defaults(func=cmd_local_kafka)
    __import__("driftsentinel.stream.skew_loop", fromlist=["register_cli"]).register_cli(sub)  # driftsentinel skew
    return parser


def _add_run(sub: argparse._SubParsersAction[CliParser]) -> None:
    # flags that override the config are range-checked by the config (the message names its field)
    run = sub.add_parser("run", help="run the sidecar (flags override the config file)")
    run.add_argument("--config", help="YAML config file (default: none, every setting at its default)")
    run.add_argument("--bootstrap-servers", help=_overrides("kafka.bootstrap_servers", "Kafka brokers, host:port,..."))
    run.add_argument("--input-topic", help=_overrides("kafka.input_topic", "topic of FeatureEvents"))
    run.add_argument("--alerts-topic", help=_overrides("kafka.alerts_topic", "topic the DriftEvents go to"))
    run.add_argument("--dlq-topic", help=_overrides("kafka.dlq_topic", "topic of invalid input, with reasons"))
    run.add_argument(
        "--labels-topic",
        help=_overrides("kafka.labels_topic", "topic of late labels ({id, label}), joined to predictions by id"),
    )
    run.add_argument("--group-id", help=_overrides("kafka.group_id", "consumer group"))
    run.add_argument(
        "--metrics-port",
        type=int,
        help=_overrides("metrics_port", "port of /metrics, /healthz, /readyz (0: any free port)"),
    )
    run.add_argument("--max-events", type=int, help=_overrides("max_events", "stop after N input messages"))
    run.add_argument("--idle-exit", type=float, help=_overrides("idle_exit", "stop after SECONDS without input"))
    run.add_argument(
        "--backend", choices=["kernel", "river"], help=_overrides("detectors.backend", "detector implementation")
    )
    run.add_argument("--log-format", choices=["text", "json"], help=_overrides("log_format", "log line format"))
    run.add_argument(
        "--log-level",
        choices=["debug", "info", "warning"],
        default="info",
        help="driftsentinel's log level (debug: also the full effective config at start-up)",
    )
    run.add_argument("--reference", help=_overrides("reference", "reference profile (driftsentinel baseline)"))
    run.add_argument(
        "--instance-id", help="stable id of this sidecar (default: kafka.instance_id from --config, else the host name)"
    )
    run.set_defaults(func=cmd_run)


def _add_demo(sub: argparse._SubParsersAction[CliParser]) -> None:
    from driftsentinel.stream.topic_reader import CONNECT_TIMEOUT_S

    demo = sub.add_parser("demo", help="produce a synthetic stream with known drift points")
    demo.add_argument("--bootstrap-servers", default="127.0.0.1:9092", help="Kafka brokers, host:port,...")
    demo.add_argument("--topic", default="features", help="topic to produce to")
    demo.add_argument("--events", type=_COUNT, default=50_000, help="events to produce")
    demo.add_argument("--features", type=_COUNT, default=20, help="features per event, named f0, f1, ...")
    demo.add_argument("--drift-at", type=_NON_NEGATIVE, default=25_000, help="first drifted event (0-based)")
    demo.add_argument("--drift-features", default="f0,f1,f2", help="comma-separated names ('' for none)")
    demo.add_argument("--shift", type=_number(float, -math.inf), default=1.0, help="mean shift in standard deviations")
    demo.add_argument("--seed", type=_NON_NEGATIVE, default=42, help="random seed (same seed, same values)")
    demo.add_argument("--model", default="demo", help="model name of the events (and their key)")
    demo.add_argument("--rate", type=_SECONDS, help="events per second (default: as fast as possible)")
    demo.add_argument(
        "--connect-timeout", type=_SECONDS, default=CONNECT_TIMEOUT_S, help="seconds to wait for the broker"
    )
    demo.set_defaults(func=cmd_demo)


def _add_replay(sub: argparse._SubParsersAction[CliParser]) -> None:
    replay = sub.add_parser("replay", help="run the detectors over a JSON Lines file, alerts as JSON lines")
    replay.add_argument("--input", required=True, help="JSON Lines file of FeatureEvents")
    replay.add_argument("--output", default="-", help="where to write alerts ('-': stdout)")
    replay.add_argument("--config", help="YAML config file (default: none, every setting at its default)")
    replay.add_argument("--backend", choices=["kernel", "river"], help=_overrides("detectors.backend", "detectors"))
    replay.add_argument("--reference", help=_overrides("reference", "reference profile (driftsentinel baseline)"))
    replay.add_argument(
        "--labels", help="JSON Lines file of late LabelEvents, joined to the events by id (default: none)"
    )
    replay.add_argument("--topic", help="topic the file is read as (default: its name); alerts and event ids name it")
    replay.add_argument("--partition", type=_NON_NEGATIVE, default=0, help="partition the file is read as")
    replay.add_argument("--labels-topic", help="topic the labels file is read as (default: its name)")
    replay.add_argument(
        "--group-id", help=_overrides("kafka.group_id", "group id in the event ids (a sidecar's, to reproduce its ids)")
    )
    replay.add_argument(
        "--plot",
        metavar="PNG",
        help="draw the drifting features (live vs reference, detections); needs the `report` extra (default: none)",
    )
    replay.add_argument(
        "--html",
        metavar="HTML",
        help="write a self-contained report (feature table, plots); needs the `report` extra (default: none)",
    )
    replay.add_argument("--progress", action="store_true", help="progress bar on stderr even when not a terminal")
    replay.set_defaults(func=cmd_replay)


def _add_baseline_and_calibrate(sub: argparse._SubParsersAction[CliParser]) -> None:
    from driftsentinel.stream.topic_reader import CONNECT_TIMEOUT_S

    base = sub.add_parser("baseline", help="build a reference profile from training data")
    base.add_argument(
        "--input", help="CSV, JSON Lines or (with the `parquet` extra) Parquet file of training rows (default: none)"
    )
    base.add_argument("--from-topic", help="read FeatureEvents from this Kafka topic instead (default: none)")
    base.add_argument("--from-time", help="start (epoch seconds or RFC 3339), with --from-topic (default: none)")
    base.add_argument("--to-time", help="end (exclusive), with --from-topic (default: none)")
    base.add_argument(
        "--bootstrap-servers", help=_overrides("kafka.bootstrap_servers", "Kafka brokers, with --from-topic")
    )
    base.add_argument(
        "--connect-timeout", type=_SECONDS, default=CONNECT_TIMEOUT_S, help="seconds to wait for the broker"
    )
    base.add_argument("--config", help="YAML config (detectors.types pins feature types; default: none)")
    base.add_argument("--out", required=True, help="where to write the profile (JSON)")
    base.add_argument(
        "--segment",
        action="append",
        help="profile each value of this field too (repeatable; a combination: country,device; "
        "default: detectors.segments of --config)",
    )
    base.add_argument(
        "--period",
        type=_period,
        help="condition numeric features on the event time: hour_of_day, hour_of_week, SECONDS[/PHASES], "
        "auto (detect a daily or weekly cycle per feature) or none (serial dependence only; default: no section)",
    )
    base.add_argument(
        "--time-column", default="ts", help="with --period: the column of event times (epoch s or RFC 3339)"
    )
    from driftsentinel.stream.baseline_performance import add_arguments as add_performance_arguments

    add_performance_arguments(base)
    base.set_defaults(func=cmd_baseline)

    cal = sub.add_parser("calibrate", help="set per-feature thresholds for a false-alarm rate, from a profile")
    cal.add_argument("--reference", required=True, help="reference profile (driftsentinel baseline)")
    cal.add_argument(
        "--false-alarms-per-million",
        type=_number(float, 0, 1e6, low_open=True),
        default=1.0,
        help="target false drift events per million events per feature (> 0)",
    )
    cal.add_argument("--config", help="config to extend (default: none, every setting at its default)")
    cal.add_argument("--out", required=True, help="config file to write (YAML); its paths are relative to its folder")
    cal.add_argument("--values", type=_COUNT, default=1_000_000, help="simulated values per feature (at least 100,000)")
    cal.add_argument("--seed", type=_NON_NEGATIVE, default=0, help="random seed (same seed, same thresholds)")
    cal.add_argument(
        "--data",
        help="the training file the profile was built from (baseline --input): its seasonal features are then "
        "simulated from their own values (a block bootstrap) rather than from the profile's model (default: none)",
    )
    cal.set_defaults(func=cmd_calibrate)


# --------------------------------------------------------------------------- checks
def _input_file(path: Path, flag: str) -> Path:
    """``path`` if it is an existing file, else :class:`UsageError` saying what it is."""
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; give a file")
    if not path.exists():
        raise UsageError(f"{flag} {path}: no such file")
    return path


def _output_file(target: str, flag: str, inputs: Sequence[str | None] = ()) -> Path:
    """Check, before any work, that ``target`` can be written: :class:`UsageError` if not."""
    path = Path(target)
    folder = path.parent
    if path.is_dir():
        raise UsageError(f"{flag} {target}: is a folder; give a file name")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"{flag} {target}: folder {folder} {what}; create it first (mkdir -p {folder})")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {target}: not writable here; choose another path")
    for given in inputs:
        if given and path.resolve() == Path(given).resolve():
            raise UsageError(f"{flag} {target} would overwrite an input of this command; choose another path")
    return path


#: Errors of a write that name no file: a full disk, a full quota, a file too large.
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: ... and a failing device (which a read can raise too).
_WRITE_ERRNOS = _FULL_ERRNOS | {errno.EIO}


def _named(exc: OSError, name: str | Path) -> OSError:
    """``exc``, naming ``name`` when it names no file (a failed ``write()``/``flush()``: a full disk)."""
    if exc.filename is not None or exc.errno not in _WRITE_ERRNOS:
        return exc
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(name))


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, then rename: never a half-written file.

    A path that exists and is not a regular file (``/dev/stdout``, a pipe) is written to
    directly: a rename would replace the device. A full disk names ``path`` (exit 2).
    """
    try:
        if path.exists() and not path.is_file():
            with path.open("w", encoding="utf-8") as fh:
                fh.write(text)
            return
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise _named(exc, path) from exc


def _report_extra(flag: str) -> None:
    """``--plot``/``--html`` draw with matplotlib, the ``report`` extra: say so before replaying."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(f"{flag} needs the `report` extra: pip install 'driftsentinel[report]'") from None


# --------------------------------------------------------------------------- commands
def _setup_logging(fmt: str, level: str = "info") -> None:
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
    root.setLevel(logging.INFO)  # libraries at INFO; ours at the level asked for
    logging.getLogger("driftsentinel").setLevel(level.upper())


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

    config = _config_from_args(args)
    sidecar = Sidecar(config)
    _setup_logging(config.log_format, args.log_level)
    logging.getLogger("driftsentinel").info("effective config %s", effective_config_line(config))
    sidecar.install_signal_handlers()
    return sidecar.run()


def cmd_demo(args: argparse.Namespace) -> int:
    from driftsentinel.stream.demo import produce_demo

    drift_features = [f for f in args.drift_features.split(",") if f] if args.drift_features else []
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
        connect_timeout_s=args.connect_timeout,
    )
    print(f"produced {n} events to {args.topic} (drift at {args.drift_at} on {drift_features or 'none'})")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from driftsentinel.stream.progress import Progress
    from driftsentinel.stream.replay import replay_file

    config = load_config(
        args.config, {"detectors.backend": args.backend, "reference": args.reference, "kafka.group_id": args.group_id}
    )
    # read once, here: a bad profile fails before any work, and the replay uses this one
    profile = load_profile(config.reference) if config.reference else None
    path = _input_file(Path(args.input), "--input")
    labels = _input_file(Path(args.labels), "--labels") if args.labels else None
    inputs = (args.input, args.labels, args.config, config.reference)
    for flag, target in (("--output", args.output), ("--plot", args.plot), ("--html", args.html)):
        if target and target != "-":
            _output_file(target, flag, inputs)
        if target and flag != "--output":
            _report_extra(flag)
    recorder = None
    if args.plot or args.html:
        from driftsentinel.stream.report import ReplayRecorder

        recorder = ReplayRecorder(config)
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
            labels=labels,
            topic=args.topic,
            partition=args.partition,
            labels_topic=args.labels_topic,
            profile=profile,
        )
    finally:
        progress.close()
        if out is not sys.stdout:
            try:
                out.close()  # the last buffered lines are written here
            except OSError as exc:
                raise _named(exc, args.output) from exc
    if recorder is not None:
        _render(recorder, args, stats, path.name)
    print(json.dumps(stats), file=sys.stderr)
    return 0


def _render(recorder: Any, args: argparse.Namespace, stats: dict[str, Any], source: str) -> None:
    from driftsentinel.stream.report import render_html, render_png

    if args.plot:
        render_png(recorder, args.plot, source=source)
        print(f"plot: {args.plot}", file=sys.stderr)
    if args.html:
        render_html(recorder, args.html, stats, source=source)
        print(f"report: {args.html}", file=sys.stderr)


def cmd_baseline(args: argparse.Namespace) -> int:
    from driftsentinel.stream.baseline import checked_types, parse_time, read_rows, rows_from_topic
    from driftsentinel.stream.topic_reader import quiet, reach_broker

    config = load_config(args.config, {"kafka.bootstrap_servers": args.bootstrap_servers})
    out = _output_file(args.out, "--out", (args.input, args.config))
    if args.from_topic:
        if not (args.from_time and args.to_time):
            raise UsageError("--from-topic needs --from-time and --to-time")
        try:
            start, end = parse_time(args.from_time), parse_time(args.to_time)
        except ValueError:
            raise UsageError("--from-time/--to-time: give epoch seconds or RFC 3339 (2024-05-01T00:00:00Z)") from None
        if end <= start:
            raise UsageError(
                f"--to-time {args.to_time} is not after --from-time {args.from_time}: give a later --to-time"
            )
        conf = quiet({"bootstrap.servers": config.kafka.bootstrap_servers, **config.kafka.common})
        reach_broker(conf, args.connect_timeout)
        events = rows_from_topic(conf, args.from_topic, start, end)
        where = f"topic {args.from_topic!r} event"
        rows = checked_types(((f"{where} {n}", row) for n, row in enumerate(events, 1)), config.detectors.types)
        source = f"kafka:{args.from_topic}[{args.from_time},{args.to_time})"
    elif args.input:
        path = _input_file(Path(args.input), "--input")
        rows, source = read_rows(path, config.detectors.types), path.name
    else:
        raise UsageError("give --input FILE or --from-topic T --from-time .. --to-time ..")
    from driftsentinel.stream import baseline_performance  # --model: the performance reference too

    # a user's mistake raises InputFileError (one line); a plain ValueError from deeper down is a bug
    profile, left_out = baseline_performance.make_profile(rows, source, config, args)
    _write_atomically(out, profile.model_dump_json(indent=1))
    kinds = [p.kind for p in profile.features.values()]
    print(
        f"profile of {profile.n_rows} rows: {kinds.count('numeric')} numeric, "
        f"{kinds.count('categorical')} categorical features -> {args.out}",
        file=sys.stderr,
    )
    for key, section in (profile.segments or {}).items():
        print(f"segments of {key}: {len(section.segments)} of {section.n_values} values profiled", file=sys.stderr)
    if profile.seasonal is not None:
        seasonal = profile.seasonal
        cyclic = sorted(n for n, f in seasonal.features.items() if len(f.mean) > 1)
        shown = ", ".join(f"{n} ({seasonal.features[n].acf1:.2f})" for n in sorted(seasonal.features)[:10])
        print(
            f"seasonal: {seasonal.period} ({seasonal.phases} phases) for {len(cyclic)} of {len(seasonal.features)} "
            f"numeric features{' (detected)' if seasonal.detected else ''}; lag-1 autocorrelation: {shown}",
            file=sys.stderr,
        )
    if left_out:
        print(f"not profiled (event fields, not features on the stream): {', '.join(left_out)}", file=sys.stderr)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import yaml

    from driftsentinel.detectors.calibration import MIN_VALUES, calibrate

    if args.values < MIN_VALUES:
        raise UsageError(
            f"--values: {args.values} is below the minimum {MIN_VALUES:,}: fewer values give too few false alarms "
            "to measure the budget (the configured thresholds would be kept unmeasured)"
        )
    config = load_config(args.config)
    profile = load_profile(args.reference)
    out = _output_file(args.out, "--out", (args.reference,))
    residuals = None
    if args.data:
        from driftsentinel.stream.baseline import residuals_from_file

        if profile.seasonal is None:
            raise UsageError(
                "--data: the profile has no seasonal section (baseline --period): only seasonal features are drawn "
                "from the data; leave --data out"
            )
        residuals = residuals_from_file(_input_file(Path(args.data), "--data"), profile, config.detectors.types)
    params = calibrate(
        profile,
        config.detectors,
        args.false_alarms_per_million,
        values=args.values,
        seed=args.seed,
        residuals=residuals,
    )
    data = (yaml.safe_load(read_utf8(args.config, ConfigError)) if args.config else None) or {}
    # the written file's relative paths are relative to its own folder, like every config file's
    resolve_paths(SidecarConfig, data, Path(args.config).parent if args.config else Path(), rebase=out.parent)
    data["reference"] = _relative_to(Path(args.reference), out.parent)
    data.setdefault("detectors", {})["per_feature"] = params
    SidecarConfig.model_validate(data)  # what we write must load
    _write_atomically(
        out,
        f"# driftsentinel calibrate: <= {args.false_alarms_per_million} false alarms per million events per feature\n"
        + yaml.safe_dump(data, sort_keys=False),
    )
    print(f"calibrated {len(params)} features -> {args.out}", file=sys.stderr)
    if profile.seasonal is not None and residuals is None:
        print(
            "seasonal features calibrated from the profile's model of their dependence: give --data (the training "
            "file) to draw them from their own values too (needed for counts, whose noise grows with the level)",
            file=sys.stderr,
        )
    return 0


def _relative_to(path: Path, folder: Path) -> str:
    """``path`` (relative to the current directory) as written in a config file in ``folder``."""
    try:
        return os.path.relpath(path, folder) if not path.is_absolute() else str(path)
    except ValueError:  # another drive (Windows)
        return str(path.absolute())


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

    return local_kafka.main(args.local_kafka_args, prog="driftsentinel local-kafka", parser_class=CliParser)


# --------------------------------------------------------------------------- the guard
def _one_line(text: str) -> str:
    """A multi-line message (a YAML error, several invalid fields) as one line."""
    return "; ".join(" ".join(line.split()) for line in str(text).splitlines() if line.strip()).replace(":;", ":")


def _known_error(exc: BaseException) -> int | None:
    """The exit code of a user's mistake, or ``None`` for anything else (a bug)."""
    if isinstance(exc, ValueError) and type(exc).__module__.startswith("driftsentinel."):
        return EXIT_USAGE  # ConfigError, ProfileError, UsageError, InputFileError, ...: ours, with a message
    if any((cls.__module__, cls.__qualname__) in _CANNOT_START for cls in type(exc).__mro__):
        return EXIT_CANNOT_START
    if isinstance(exc, OSError) and exc.filename is not None:
        return EXIT_USAGE  # a file the user named: missing, unreadable, not writable, disk full
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return _one_line(str(exc))


def _drop_stdout() -> None:
    """After a failed write to stdout (a full disk), what is left goes to /dev/null.

    Else the interpreter's own flush at exit fails again and prints a second error.
    """
    with contextlib.suppress(OSError, ValueError):  # no file descriptor (stdout replaced, as in a test's capture)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    """The ``driftsentinel`` command; returns the exit code (module docstring: which code means what)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, a bad flag (its one line already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    name = f"driftsentinel {args.command}"
    try:
        code = int(args.func(args) or 0)
        try:
            sys.stdout.flush()  # a closed pipe or a full disk shows here, not in the interpreter's exit
        except OSError as exc:
            raise _named(exc, "stdout") from exc
        return code
    except SystemExit as exc:  # a command's own argument parser (local-kafka's)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            print(file=sys.stderr)  # past the ^C and any progress bar
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout's reader is gone (`driftsentinel schema config | head`): stop quietly, as coreutils do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as caught:
        error = caught
        if isinstance(caught, OSError) and caught.filename is None and caught.errno in _FULL_ERRNOS:
            error = _named(caught, "stdout")  # every file we write names itself: what is left is stdout
        if isinstance(error, OSError) and error.filename in ("stdout", "<stdout>"):
            _drop_stdout()
        known = _known_error(error)
        if known is None:
            traceback.print_exc()
            print(
                f"{name}: unexpected error, a bug in driftsentinel: please report it with the traceback above "
                "and the output of `driftsentinel --version`",
                file=sys.stderr,
            )
            return 1
        print(f"{name}: {_describe(error)}", file=sys.stderr)
        return known


if __name__ == "__main__":
    sys.exit(main())
