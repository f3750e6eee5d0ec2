"""Start and stop a real Apache Kafka broker natively on the JVM, without Docker.

The broker is the one Apache publishes on Maven Central (``org.apache.kafka:kafka_2.13``):
Maven copies its jars once into a cache directory, and every later start is offline.
It runs as a single combined broker + controller node in KRaft mode, listening on
127.0.0.1 only, configured for one machine: replication factor 1 for the internal
topics (consumer offsets, transaction state), no initial rebalance delay, topics
auto-created, a small heap.

This is the third choice for tests and the demo (see DESIGN.md, "Real parts"):
``KAFKA_BOOTSTRAP_SERVERS`` if set, then a testcontainers Kafka when a Docker engine
answers, then this launcher.

Example::

    >>> from pathlib import Path
    >>> from stream import local_kafka
    >>> bootstrap = local_kafka.start(port=19092, data_dir=Path("/tmp/ds-broker"))  # doctest: +SKIP
    >>> bootstrap  # doctest: +SKIP
    '127.0.0.1:19092'
    >>> local_kafka.stop(Path("/tmp/ds-broker"))  # doctest: +SKIP
    True

From the shell: ``python -m stream.local_kafka start --port 19092`` (prints the
bootstrap address), ``status``, ``stop``, ``fetch``; the same commands are the
``driftsentinel local-kafka`` subcommand.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

# Newest 4.x release whose whole dependency tree resolves on Maven Central
# (4.4.0's kafka_2.13 is listed there, but its kafka-tools-api jar is not).
# docker-compose.yml pins the same version of the apache/kafka image.
KAFKA_VERSION = "4.3.1"
# Matches the log4j-core that kafka_2.13 4.3.1 depends on; the slf4j binding lets the
# broker's slf4j logging reach log4j2 and so the log file.
LOG4J_VERSION = "2.25.4"

DEFAULT_PORT = 9092
HOST = "127.0.0.1"
NODE_ID = 1

# Serial GC and C1 only: on two cores the JVM reaches "ready" sooner when it does not
# spend them on parallel GC threads and C2 compilation; a test broker does not need
# peak throughput. Extra flags: env DRIFTSENTINEL_KAFKA_JVM_OPTS (appended, so they win).
DEFAULT_JVM_OPTS = (
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)

_PID_FILE = "kafka.pid"
_STATE_FILE = "broker.json"
_OUT_FILE = "kafka.out"
_LOG_DIR = "logs"
_SERVER_LOG = "server.log"
_KRAFT_DIR = "kraft-logs"
_FETCH_MARKER = ".complete"

# The JVMs this process started, kept so stop() can reap them (no zombies, no
# "subprocess still running" warnings).
_children: dict[int, subprocess.Popen[bytes]] = {}


class LocalKafkaError(RuntimeError):
    """Fetching, formatting, starting or stopping the local broker failed."""


@dataclass(frozen=True)
class BrokerStatus:
    """What ``status()`` found in a broker data directory."""

    data_dir: str
    running: bool
    pid: int | None
    bootstrap: str | None
    answers_metadata: bool


# ---------------------------------------------------------------------------
# Paths


def cache_root() -> Path:
    """Root of everything this module caches: env ``DRIFTSENTINEL_CACHE_DIR`` or ``~/.cache/driftsentinel``."""
    env = os.environ.get("DRIFTSENTINEL_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "driftsentinel"


def default_data_dir() -> Path:
    """Data directory of the broker the CLI manages when no ``--data-dir`` is given."""
    return cache_root() / "broker"


def lib_dir(version: str = KAFKA_VERSION) -> Path:
    """Directory holding the broker's jars for ``version``."""
    return cache_root() / f"kafka-{version}" / "lib"


# ---------------------------------------------------------------------------
# Fetch


def _pom(version: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>driftsentinel.local</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fetch(version: str = KAFKA_VERSION, quiet: bool = True) -> Path:
    """Copy the broker's runtime jars from Maven Central into the cache, once.

    Idempotent and atomic: Maven writes into a scratch directory beside the target,
    which is renamed into place and then marked complete; a half-finished fetch is
    never mistaken for a finished one. Concurrent callers wait on a lock file.
    Returns the jar directory.
    """
    target = lib_dir(version)
    home = target.parent
    marker = home / _FETCH_MARKER
    if marker.exists() and target.is_dir():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError("Maven ('mvn') is not on PATH; it is needed once to fetch the Kafka jars")
    with _locked(home.parent / f"kafka-{version}.lock"):
        if marker.exists() and target.is_dir():
            return target
        home.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".fetch-", dir=home))
        try:
            (scratch / "pom.xml").write_text(_pom(version))
            out_dir = scratch / "lib"
            cmd = [
                mvn,
                "-B",
                "-f",
                str(scratch / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={out_dir}",
                "-DincludeScope=runtime",
            ]
            if quiet:
                cmd.insert(1, "-q")
            proc = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True)
            if proc.returncode != 0 or not any(out_dir.glob("kafka_2.13-*.jar")):
                tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
                raise LocalKafkaError(f"Maven could not fetch Kafka {version} (exit {proc.returncode}):\n{tail}")
            if target.exists():
                shutil.rmtree(target)
            os.replace(out_dir, target)
            marker.write_text(f"kafka_2.13 {version}\n")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target


# ---------------------------------------------------------------------------
# Configuration files


def _server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    props: dict[str, str | int] = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        # A static voter set: the controller address is not written into the metadata
        # log, so a restart may pick another controller port if the old one is taken.
        "controller.quorum.voters": f"{NODE_ID}@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir / _KRAFT_DIR),
        "num.partitions": 1,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": 1,
        # Few internal partitions: each one is a log to create and load at start-up.
        "offsets.topic.num.partitions": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "transaction.state.log.num.partitions": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        "num.network.threads": 2,
        "num.io.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
        "background.threads": 4,
        # The cleaner's dedupe buffer defaults to 128 MiB of heap; keep the heap small.
        "log.cleaner.dedupe.buffer.size": 16 * 1024 * 1024,
        "log.cleaner.threads": 1,
        "log.retention.hours": 24,
        "delete.topic.enable": "true",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _log4j2_properties(data_dir: Path) -> str:
    log_file = data_dir / _LOG_DIR / _SERVER_LOG
    return f"""status = warn
name = driftsentinel-local-kafka
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.filePattern = {log_file}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def _cluster_id() -> str:
    # Kafka's Uuid.toString(): 16 random bytes, URL-safe base64 without padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


# ---------------------------------------------------------------------------
# Process helpers


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise LocalKafkaError("no 'java' on PATH and no usable JAVA_HOME; Kafka needs Java 17+")
    return java


def _classpath(version: str) -> str:
    return str(lib_dir(version) / "*")


def _jvm_opts(data_dir: Path) -> list[str]:
    opts = list(DEFAULT_JVM_OPTS)
    opts += [
        f"-Dlog4j2.configurationFile={data_dir / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={data_dir / _LOG_DIR}",
    ]
    opts += os.environ.get("DRIFTSENTINEL_KAFKA_JVM_OPTS", "").split()
    return opts


def _read_state(data_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((data_dir / _STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_state(data_dir: Path, state: dict[str, Any]) -> None:
    tmp = data_dir / (_STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, data_dir / _STATE_FILE)


def _read_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / _PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _reap(pid: int) -> None:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]


def _is_our_broker(pid: int, data_dir: Path) -> bool:
    """True if ``pid`` is alive and is the Kafka JVM of ``data_dir`` (guards against pid reuse)."""
    _reap(pid)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # A zombie has an empty command line; so does a process that just exited.
    props = str(data_dir / "server.properties").encode()
    return b"kafka.Kafka" in cmdline and props in cmdline


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def _logs_tail(data_dir: Path, lines: int = 40) -> str:
    return (
        f"--- last lines of {data_dir / _LOG_DIR / _SERVER_LOG} ---\n"
        f"{_tail(data_dir / _LOG_DIR / _SERVER_LOG, lines)}\n"
        f"--- last lines of {data_dir / _OUT_FILE} ---\n"
        f"{_tail(data_dir / _OUT_FILE, 15)}"
    )


def _answers_metadata(bootstrap: str, timeout: float) -> bool:
    from confluent_kafka.admin import AdminClient

    host, _, port = bootstrap.rpartition(":")
    # A plain TCP connect first: while the JVM boots, this fails fast and quietly,
    # where a Kafka client would log a "connection refused" line per retry.
    try:
        socket.create_connection((host, int(port)), timeout=min(1.0, timeout)).close()
    except OSError:
        return False
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, "socket.connection.setup.timeout.ms": 1000})
    try:
        md = admin.list_topics(timeout=timeout)
    except Exception:  # KafkaException on timeout / transport failure
        return False
    return bool(md.brokers)


def _transactions_ready(bootstrap: str, timeout: float) -> bool:
    """True once a transactional producer can init, i.e. the transaction coordinator serves."""
    from confluent_kafka import KafkaException, Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"driftsentinel-local-kafka-probe-{uuid.uuid4().hex[:8]}",
            "transaction.timeout.ms": 10000,
            # "Coordinator load in progress: retrying" is expected while it starts.
            "log_level": 0,
        }
    )
    try:
        producer.init_transactions(timeout)
        return True
    except KafkaException:
        return False
    finally:
        producer.flush(0)


# ---------------------------------------------------------------------------
# Public API


def status(data_dir: Path | None = None, probe_timeout: float = 3.0) -> BrokerStatus:
    """Report whether the broker of ``data_dir`` runs, its pid and address, and whether it answers."""
    data_dir = Path(data_dir or default_data_dir()).expanduser().resolve()
    pid = _read_pid(data_dir)
    running = pid is not None and _is_our_broker(pid, data_dir)
    bootstrap = _read_state(data_dir).get("bootstrap") if running else None
    answers = bool(bootstrap) and _answers_metadata(str(bootstrap), probe_timeout)
    return BrokerStatus(
        data_dir=str(data_dir),
        running=running,
        pid=pid if running else None,
        bootstrap=bootstrap,
        answers_metadata=answers,
    )


def _format_storage(data_dir: Path, version: str) -> None:
    """Format the KRaft log directory once (``kafka.tools.StorageTool format``)."""
    if (data_dir / _KRAFT_DIR / "meta.properties").exists():
        return
    state = _read_state(data_dir)
    cluster_id = state.get("cluster_id") or _cluster_id()
    cmd = [
        _java(),
        "-Xmx256m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        f"-Dlog4j2.configurationFile={data_dir / 'log4j2.properties'}",
        "-cp",
        _classpath(version),
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(data_dir / "server.properties"),
        "--ignore-formatted",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=data_dir, timeout=120)
    if proc.returncode != 0:
        raise LocalKafkaError(
            f"formatting KRaft storage in {data_dir / _KRAFT_DIR} failed (exit {proc.returncode}):\n"
            + "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        )
    state["cluster_id"] = cluster_id
    _write_state(data_dir, state)


def start(
    port: int = DEFAULT_PORT,
    data_dir: Path | None = None,
    timeout: float = 90,
    version: str = KAFKA_VERSION,
    wait_for_transactions: bool = True,
) -> str:
    """Start the broker of ``data_dir`` on 127.0.0.1:``port`` and wait until it serves.

    Ready means: a metadata request is answered and, unless ``wait_for_transactions``
    is false, a transactional producer can init (the transaction coordinator is up).
    Fetches the jars and formats the storage first when needed. Idempotent: if the
    broker of ``data_dir`` already runs on ``port``, returns at once. On failure or
    timeout the JVM is killed and ``LocalKafkaError`` carries the broker log's tail.
    Returns the bootstrap address ``"127.0.0.1:<port>"``.
    """
    data_dir = Path(data_dir or default_data_dir()).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = f"{HOST}:{port}"
    with _locked(data_dir / ".lock"):
        pid = _read_pid(data_dir)
        if pid is not None and _is_our_broker(pid, data_dir):
            running_at = _read_state(data_dir).get("bootstrap")
            if running_at != bootstrap:
                raise LocalKafkaError(
                    f"the broker of {data_dir} already runs at {running_at} (pid {pid}), not {bootstrap}; stop it first"
                )
            _wait_ready(bootstrap, data_dir, None, timeout, wait_for_transactions)
            return bootstrap

        fetch(version)
        if not _port_free(port):
            raise LocalKafkaError(f"port {HOST}:{port} is already in use")
        state = _read_state(data_dir)
        controller_port = state.get("controller_port") or port + 1
        if controller_port == port or not _port_free(controller_port):
            controller_port = free_port()
        (data_dir / _LOG_DIR).mkdir(exist_ok=True)
        (data_dir / "server.properties").write_text(_server_properties(data_dir, port, controller_port))
        (data_dir / "log4j2.properties").write_text(_log4j2_properties(data_dir))
        _format_storage(data_dir, version)

        cmd = [_java(), *_jvm_opts(data_dir), "-cp", _classpath(version), "kafka.Kafka", str(data_dir / "server.properties")]
        with open(data_dir / _OUT_FILE, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=data_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the caller's terminal and Ctrl-C
            )
        _children[proc.pid] = proc
        (data_dir / _PID_FILE).write_text(f"{proc.pid}\n")
        state = _read_state(data_dir)
        state.update(
            {
                "pid": proc.pid,
                "bootstrap": bootstrap,
                "port": port,
                "controller_port": controller_port,
                "version": version,
                "started_at": time.time(),
            }
        )
        _write_state(data_dir, state)
        try:
            _wait_ready(bootstrap, data_dir, proc, timeout, wait_for_transactions)
        except BaseException:
            _kill(proc.pid, data_dir, grace=5)
            raise
    return bootstrap


def _wait_ready(
    bootstrap: str,
    data_dir: Path,
    proc: subprocess.Popen[bytes] | None,
    timeout: float,
    wait_for_transactions: bool,
) -> None:
    deadline = time.monotonic() + timeout
    metadata_ok = False
    while True:
        if proc is not None and proc.poll() is not None:
            raise LocalKafkaError(
                f"Kafka exited with code {proc.returncode} before it was ready ({data_dir})\n{_logs_tail(data_dir)}"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            what = "a transactional producer init" if metadata_ok else "a metadata request"
            raise LocalKafkaError(
                f"Kafka at {bootstrap} did not answer {what} within {timeout:.0f}s ({data_dir})\n{_logs_tail(data_dir)}"
            )
        if not metadata_ok:
            metadata_ok = _answers_metadata(bootstrap, min(2.0, remaining))
            if not metadata_ok:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
                continue
        if not wait_for_transactions or _transactions_ready(bootstrap, min(10.0, remaining)):
            return


def _kill(pid: int, data_dir: Path, grace: float) -> None:
    """SIGTERM the broker's process group, wait up to ``grace`` seconds, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)  # the JVM leads its own session (start_new_session)
        except ProcessLookupError:
            break
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            child = _children.get(pid)
            if child is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=0.1)
            if not _is_our_broker(pid, data_dir):
                break
            time.sleep(0.1)
        else:
            continue
        break
    child = _children.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
    for name in (_PID_FILE,):
        with contextlib.suppress(FileNotFoundError):
            (data_dir / name).unlink()


def stop(data_dir: Path | None = None, timeout: float = 30) -> bool:
    """Stop the broker of ``data_dir``: SIGTERM, wait up to ``timeout`` s, then SIGKILL.

    Returns True if a running broker was stopped, False if none was running.
    """
    data_dir = Path(data_dir or default_data_dir()).expanduser().resolve()
    pid = _read_pid(data_dir)
    if pid is None or not _is_our_broker(pid, data_dir):
        with contextlib.suppress(FileNotFoundError):
            (data_dir / _PID_FILE).unlink()
        return False
    _kill(pid, data_dir, grace=timeout)
    return True


# ---------------------------------------------------------------------------
# CLI


def _cmd_start(args: argparse.Namespace) -> int:
    try:
        bootstrap = start(port=args.port, data_dir=args.data_dir, timeout=args.timeout)
    except LocalKafkaError as exc:
        print(f"local-kafka: {exc}", file=sys.stderr)
        return 1
    print(bootstrap, flush=True)
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    stopped = stop(args.data_dir)
    print("stopped" if stopped else "not running", file=sys.stderr)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    st = status(args.data_dir)
    print(json.dumps(asdict(st)))
    return 0 if st.running else 3  # 3 = "not running", as LSB init scripts do


def _cmd_fetch(args: argparse.Namespace) -> int:
    try:
        path = fetch(args.version)
    except LocalKafkaError as exc:
        print(f"local-kafka: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    def data_dir_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help=f"broker data directory (default {default_data_dir()})",
        )

    p = sub.add_parser("start", help="start the broker and wait until it serves; prints the bootstrap address")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"PLAINTEXT port on {HOST} (default {DEFAULT_PORT})")
    p.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the broker to be ready")
    data_dir_arg(p)
    p.set_defaults(func=_cmd_start)

    p = sub.add_parser("stop", help="stop the broker (SIGTERM, then SIGKILL)")
    data_dir_arg(p)
    p.set_defaults(func=_cmd_stop)

    p = sub.add_parser("status", help="print the broker's status as JSON; exit 0 if running, 3 if not")
    data_dir_arg(p)
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("fetch", help="download the Kafka jars from Maven Central into the cache")
    p.add_argument("--version", default=KAFKA_VERSION, help=f"kafka_2.13 version (default {KAFKA_VERSION})")
    p.set_defaults(func=_cmd_fetch)


def register_cli(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``local-kafka`` subcommand (start/stop/status/fetch) to a CLI's subparsers."""
    parser = subparsers.add_parser(
        "local-kafka",
        help="run a local Apache Kafka broker on the JVM (no Docker needed)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    sub = parser.add_subparsers(dest="local_kafka_command", metavar="COMMAND", required=True)
    _add_commands(sub)


def main(argv: list[str] | None = None) -> int:
    """``python -m stream.local_kafka start|stop|status|fetch``."""
    parser = argparse.ArgumentParser(prog="python -m stream.local_kafka", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="local_kafka_command", metavar="COMMAND", required=True)
    _add_commands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
