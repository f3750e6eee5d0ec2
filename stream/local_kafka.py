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
    >>> from driftsentinel.stream import local_kafka
    >>> bootstrap = local_kafka.start(port=19092, data_dir=Path("/tmp/ds-broker"))  # doctest: +SKIP
    >>> bootstrap  # doctest: +SKIP
    '127.0.0.1:19092'
    >>> local_kafka.stop(Path("/tmp/ds-broker"))  # doctest: +SKIP
    True

From the shell: ``python -m driftsentinel.stream.local_kafka start --port 19092`` (prints the
bootstrap address), ``status``, ``stop``, ``fetch``; the same commands are the
``driftsentinel local-kafka`` subcommand.

SASL mode (``start(..., sasl_users={"alice": "secret"})``, or
``start --sasl-user alice:secret``): the client port becomes a SASL_PLAINTEXT listener
that accepts SCRAM-SHA-512 and PLAIN. SCRAM credentials live in the KRaft metadata log,
so they are written when the storage is formatted (``StorageTool format --add-scram``);
PLAIN users are listed in the listener's JAAS config. The broker talks to itself on a
second, PLAINTEXT listener on 127.0.0.1 (``internal_port`` in ``broker.json``), which
clients are not told about. ``client_config(data_dir)`` gives the librdkafka settings
that reach a running broker (with the first user's credentials).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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

#: Name of the client listener in SASL mode (also its security protocol).
SASL_LISTENER = "SASL_PLAINTEXT"
#: The broker's own listener in SASL mode: inter-broker traffic, never advertised to clients.
_INTERNAL_LISTENER = "INTERNAL"
SASL_MECHANISMS = ("SCRAM-SHA-512", "PLAIN")

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


_USER_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PASSWORD_RE = re.compile(r"[A-Za-z0-9._~!@#$%^&*()+:;?/<>{}|-]{1,128}")


def _check_sasl_users(sasl_users: dict[str, str] | None) -> dict[str, str] | None:
    """Validate user names and passwords: they go unescaped into a JAAS string, a
    properties file and the ``--add-scram`` syntax (``name=...,password=...]``)."""
    if sasl_users is None:
        return None
    if not sasl_users:
        raise LocalKafkaError("sasl_users is empty: give at least one user, or None for no SASL")
    for user, password in sasl_users.items():
        if not _USER_RE.fullmatch(user):
            raise LocalKafkaError(f"SASL user name {user!r} must match {_USER_RE.pattern}")
        if not _PASSWORD_RE.fullmatch(password):
            # Do not echo the password.
            raise LocalKafkaError(
                f"the password of SASL user {user!r} must be 1-128 characters of {_PASSWORD_RE.pattern}"
            )
    return dict(sasl_users)


def _users_digest(sasl_users: dict[str, str] | None) -> str | None:
    """A salted-free but one-way fingerprint of the user set, to notice a changed set on restart."""
    if not sasl_users:
        return None
    return hashlib.sha256(json.dumps(sorted(sasl_users.items())).encode()).hexdigest()


def _listener_props(
    port: int, controller_port: int, sasl_users: dict[str, str] | None, internal_port: int | None
) -> dict[str, str | int]:
    if not sasl_users:
        return {
            "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        }
    assert internal_port is not None
    name = SASL_LISTENER.lower()
    plain_users = " ".join(f'user_{user}="{pw}"' for user, pw in sasl_users.items())
    return {
        "listeners": (
            f"{SASL_LISTENER}://{HOST}:{port},{_INTERNAL_LISTENER}://{HOST}:{internal_port},"
            f"CONTROLLER://{HOST}:{controller_port}"
        ),
        # The internal listener is advertised too (the broker finds itself through its
        # registration), but clients bootstrapping on the SASL port only ever see the
        # addresses of the listener they connected to.
        "advertised.listeners": f"{SASL_LISTENER}://{HOST}:{port},{_INTERNAL_LISTENER}://{HOST}:{internal_port}",
        "inter.broker.listener.name": _INTERNAL_LISTENER,
        "listener.security.protocol.map": (
            f"{SASL_LISTENER}:SASL_PLAINTEXT,{_INTERNAL_LISTENER}:PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
        "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        f"listener.name.{name}.sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        # SCRAM users come from the metadata log (formatted in with --add-scram).
        f"listener.name.{name}.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        f"listener.name.{name}.plain.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
        ),
    }


def _server_properties(
    data_dir: Path,
    port: int,
    controller_port: int,
    sasl_users: dict[str, str] | None = None,
    internal_port: int | None = None,
) -> str:
    props: dict[str, str | int] = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        # A static voter set: the controller address is not written into the metadata
        # log, so a restart may pick another controller port if the old one is taken.
        "controller.quorum.voters": f"{NODE_ID}@{HOST}:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        **_listener_props(port, controller_port, sasl_users, internal_port),
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
    """A new cluster id as Kafka's ``Uuid.randomUuid()`` makes it.

    16 random bytes, URL-safe base64 without padding; like Kafka, ids that start with
    ``-`` are drawn again (one in 64 would, and a command line reads them as options).

    >>> cid = _cluster_id()
    >>> len(cid), cid.startswith("-")
    (22, False)
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cid.startswith("-"):
            return cid


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
    # 0600: in SASL mode the state holds the probe's credentials.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(state, indent=2) + "\n")
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


def _answers_metadata(bootstrap: str, timeout: float, security: dict[str, str] | None = None) -> bool:
    from confluent_kafka.admin import AdminClient

    host, _, port = bootstrap.rpartition(":")
    # A plain TCP connect first: while the JVM boots, this fails fast and quietly,
    # where a Kafka client would log a "connection refused" line per retry.
    try:
        socket.create_connection((host, int(port)), timeout=min(1.0, timeout)).close()
    except OSError:
        return False
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "log_level": 0,
            "socket.connection.setup.timeout.ms": 1000,
            **(security or {}),
        }
    )
    try:
        md = admin.list_topics(timeout=timeout)
    except Exception:  # KafkaException on timeout / transport failure
        return False
    return bool(md.brokers)


def _transactions_ready(bootstrap: str, timeout: float, security: dict[str, str] | None = None) -> bool:
    """True once a transactional producer can init, i.e. the transaction coordinator serves."""
    from confluent_kafka import KafkaException, Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"driftsentinel-local-kafka-probe-{uuid.uuid4().hex[:8]}",
            "transaction.timeout.ms": 10000,
            # "Coordinator load in progress: retrying" is expected while it starts.
            "log_level": 0,
            **(security or {}),
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


def _security_settings(state: dict[str, Any]) -> dict[str, str]:
    """librdkafka security settings for the broker described by ``state`` ({} without SASL)."""
    sasl = state.get("sasl")
    if not sasl:
        return {}
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": sasl["username"],
        "sasl.password": sasl["password"],
    }


def client_config(data_dir: Path | None = None) -> dict[str, str]:
    """librdkafka settings that reach the broker of ``data_dir``: ``bootstrap.servers``
    and, in SASL mode, SCRAM-SHA-512 with the first user's credentials.

    Raises ``LocalKafkaError`` if the data directory holds no started broker.
    """
    data_dir = Path(data_dir or default_data_dir()).expanduser().resolve()
    state = _read_state(data_dir)
    if not state.get("bootstrap"):
        raise LocalKafkaError(f"no broker was started in {data_dir}")
    return {"bootstrap.servers": state["bootstrap"], **_security_settings(state)}


def status(data_dir: Path | None = None, probe_timeout: float = 3.0) -> BrokerStatus:
    """Report whether the broker of ``data_dir`` runs, its pid and address, and whether it answers."""
    data_dir = Path(data_dir or default_data_dir()).expanduser().resolve()
    pid = _read_pid(data_dir)
    running = pid is not None and _is_our_broker(pid, data_dir)
    state = _read_state(data_dir)
    bootstrap = state.get("bootstrap") if running else None
    answers = bool(bootstrap) and _answers_metadata(str(bootstrap), probe_timeout, _security_settings(state))
    return BrokerStatus(
        data_dir=str(data_dir),
        running=running,
        pid=pid if running else None,
        bootstrap=bootstrap,
        answers_metadata=answers,
    )


def _format_storage(data_dir: Path, version: str, sasl_users: dict[str, str] | None = None) -> None:
    """Format the KRaft log directory once (``kafka.tools.StorageTool format``).

    SCRAM-SHA-512 credentials of ``sasl_users`` are written into the bootstrap metadata
    (``--add-scram``); they can be set only here, at the first format.
    """
    if (data_dir / _KRAFT_DIR / "meta.properties").exists():
        formatted_with = _read_state(data_dir).get("sasl_users_digest")
        if formatted_with != _users_digest(sasl_users):
            raise LocalKafkaError(
                f"the storage in {data_dir / _KRAFT_DIR} was formatted with other SASL users "
                "(SCRAM credentials are fixed at format time): use a fresh data directory"
            )
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
        # One token: an id kept from an older state file may start with "-".
        f"--cluster-id={cluster_id}",
        "-c",
        str(data_dir / "server.properties"),
        "--ignore-formatted",
    ]
    for user, password in (sasl_users or {}).items():
        cmd += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=data_dir, timeout=120)
    if proc.returncode != 0:
        output = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        for password in (sasl_users or {}).values():
            output = output.replace(password, "***")
        raise LocalKafkaError(
            f"formatting KRaft storage in {data_dir / _KRAFT_DIR} failed (exit {proc.returncode}):\n" + output
        )
    state["cluster_id"] = cluster_id
    state["sasl_users_digest"] = _users_digest(sasl_users)
    _write_state(data_dir, state)


def start(
    port: int = DEFAULT_PORT,
    data_dir: Path | None = None,
    timeout: float = 90,
    version: str = KAFKA_VERSION,
    wait_for_transactions: bool = True,
    sasl_users: dict[str, str] | None = None,
) -> str:
    """Start the broker of ``data_dir`` on 127.0.0.1:``port`` and wait until it serves.

    Ready means: a metadata request is answered and, unless ``wait_for_transactions``
    is false, a transactional producer can init (the transaction coordinator is up).
    Fetches the jars and formats the storage first when needed. Idempotent: if the
    broker of ``data_dir`` already runs on ``port``, returns at once. On failure or
    timeout the JVM is killed and ``LocalKafkaError`` carries the broker log's tail.
    Returns the bootstrap address ``"127.0.0.1:<port>"``.

    ``sasl_users`` (user name -> password) turns ``port`` into a SASL_PLAINTEXT
    listener for SCRAM-SHA-512 and PLAIN; the readiness probes then authenticate as the
    first user (see :func:`client_config`). A data directory keeps the user set it was
    first formatted with.
    """
    sasl_users = _check_sasl_users(sasl_users)
    data_dir = Path(data_dir or default_data_dir()).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = f"{HOST}:{port}"
    with _locked(data_dir / ".lock"):
        pid = _read_pid(data_dir)
        if pid is not None and _is_our_broker(pid, data_dir):
            _check_running(data_dir, pid, bootstrap, sasl_users)
            state = _read_state(data_dir)
            _wait_ready(bootstrap, data_dir, None, timeout, wait_for_transactions, _security_settings(state))
            return bootstrap

        fetch(version)
        if not _port_free(port):
            raise LocalKafkaError(f"port {HOST}:{port} is already in use")
        controller_port, internal_port = _configure(data_dir, port, version, sasl_users)
        proc = _launch(data_dir, version)
        state = _record_start(
            data_dir, proc.pid, bootstrap, port, (controller_port, internal_port), version, sasl_users
        )
        try:
            _wait_ready(bootstrap, data_dir, proc, timeout, wait_for_transactions, _security_settings(state))
        except BaseException:
            _kill(proc.pid, data_dir, grace=5)
            raise
    return bootstrap


def _record_start(
    data_dir: Path,
    pid: int,
    bootstrap: str,
    port: int,
    ports: tuple[int, int | None],
    version: str,
    sasl_users: dict[str, str] | None,
) -> dict[str, Any]:
    """Write what :func:`status`, :func:`stop` and :func:`client_config` need to find the broker."""
    state = _read_state(data_dir)
    state.update(
        {
            "pid": pid,
            "bootstrap": bootstrap,
            "port": port,
            "controller_port": ports[0],
            "internal_port": ports[1],
            "version": version,
            "started_at": time.time(),
            # The probes' (and client_config()'s) credentials; the file is 0600.
            "sasl": (
                {
                    "mechanisms": list(SASL_MECHANISMS),
                    "username": next(iter(sasl_users)),
                    "password": next(iter(sasl_users.values())),
                }
                if sasl_users
                else None
            ),
        }
    )
    _write_state(data_dir, state)
    return state


def _check_running(data_dir: Path, pid: int, bootstrap: str, sasl_users: dict[str, str] | None) -> None:
    """The broker of ``data_dir`` already runs: it must be the one asked for (address, users)."""
    state = _read_state(data_dir)
    running_at = state.get("bootstrap")
    if running_at != bootstrap:
        raise LocalKafkaError(
            f"the broker of {data_dir} already runs at {running_at} (pid {pid}), not {bootstrap}; stop it first"
        )
    if state.get("sasl_users_digest") != _users_digest(sasl_users):
        raise LocalKafkaError(f"the broker of {data_dir} already runs (pid {pid}) with other SASL users")


def _configure(data_dir: Path, port: int, version: str, sasl_users: dict[str, str] | None) -> tuple[int, int | None]:
    """Pick the controller (and internal SASL) ports, write the broker's files, format its storage.

    Returns ``(controller_port, internal_port)``; a port kept from the last start is reused
    while it is free.
    """
    state = _read_state(data_dir)
    taken = {port}
    controller_port: int = state.get("controller_port") or port + 1
    if controller_port in taken or not _port_free(controller_port):
        controller_port = free_port()
    taken.add(controller_port)
    internal_port: int | None = None
    if sasl_users:
        internal_port = state.get("internal_port") or free_port()
        while internal_port in taken or not _port_free(internal_port):
            internal_port = free_port()
    (data_dir / _LOG_DIR).mkdir(exist_ok=True)
    props_path = data_dir / "server.properties"
    props_path.write_text(_server_properties(data_dir, port, controller_port, sasl_users, internal_port))
    if sasl_users:
        props_path.chmod(0o600)  # holds the PLAIN passwords
    (data_dir / "log4j2.properties").write_text(_log4j2_properties(data_dir))
    _format_storage(data_dir, version, sasl_users)
    return controller_port, internal_port


def _launch(data_dir: Path, version: str) -> subprocess.Popen[bytes]:
    """Start the broker's JVM in its own session (it survives the caller's terminal and Ctrl-C)."""
    props_path = data_dir / "server.properties"
    cmd = [_java(), *_jvm_opts(data_dir), "-cp", _classpath(version), "kafka.Kafka", str(props_path)]
    with open(data_dir / _OUT_FILE, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    (data_dir / _PID_FILE).write_text(f"{proc.pid}\n")
    return proc


def _wait_ready(
    bootstrap: str,
    data_dir: Path,
    proc: subprocess.Popen[bytes] | None,
    timeout: float,
    wait_for_transactions: bool,
    security: dict[str, str] | None = None,
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
            if security:
                what += " (authenticated with SASL/SCRAM-SHA-512)"
            raise LocalKafkaError(
                f"Kafka at {bootstrap} did not answer {what} within {timeout:.0f}s ({data_dir})\n{_logs_tail(data_dir)}"
            )
        if not metadata_ok:
            metadata_ok = _answers_metadata(bootstrap, min(2.0, remaining), security)
            if not metadata_ok:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
                continue
        if not wait_for_transactions or _transactions_ready(bootstrap, min(10.0, remaining), security):
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
        bootstrap = start(port=args.port, data_dir=args.data_dir, timeout=args.timeout, sasl_users=args.sasl_users)
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


def _port(text: str) -> int:
    """``--port``: a TCP port number."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def _seconds(text: str) -> float:
    """``--timeout``: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


class _SaslUserAction(argparse.Action):
    """``--sasl-user alice:secret`` (repeatable) -> ``{"alice": "secret"}``."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: Any, option: Any = None
    ) -> None:
        user, sep, password = str(value).partition(":")
        if not sep or not user or not password:
            parser.error(f"{option}: expected USER:PASSWORD")  # the value itself is not echoed
        users = dict(getattr(namespace, self.dest) or {})
        users[user] = password
        setattr(namespace, self.dest, users)


def _add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def data_dir_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help=f"broker data directory (default {default_data_dir()})",
        )

    p = sub.add_parser("start", help="start the broker and wait until it serves; prints the bootstrap address")
    p.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"PLAINTEXT port on {HOST} (default {DEFAULT_PORT})"
    )
    p.add_argument(
        "--timeout", type=_seconds, default=90.0, help="seconds to wait for the broker to be ready (default 90)"
    )
    p.add_argument(
        "--sasl-user",
        dest="sasl_users",
        action=_SaslUserAction,
        metavar="USER:PASSWORD",
        default=None,
        help="make the port a SASL_PLAINTEXT listener (SCRAM-SHA-512 and PLAIN) with this user; repeatable "
        "(default: none, a PLAINTEXT listener)",
    )
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


def register_cli(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``local-kafka`` subcommand (start/stop/status/fetch) to a CLI's subparsers."""
    parser = subparsers.add_parser(
        "local-kafka",
        help="run a local Apache Kafka broker on the JVM (no Docker needed)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    sub = parser.add_subparsers(dest="local_kafka_command", metavar="COMMAND", required=True)
    _add_commands(sub)


def build_parser(
    prog: str = "python -m driftsentinel.stream.local_kafka",
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    """The launcher's parser (``driftsentinel local-kafka`` passes its own name and parser class)."""
    parser = parser_class(prog=prog, description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="local_kafka_command", metavar="COMMAND", required=True)
    _add_commands(sub)
    return parser


def main(
    argv: list[str] | None = None,
    prog: str = "python -m driftsentinel.stream.local_kafka",
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
) -> int:
    """``python -m driftsentinel.stream.local_kafka start|stop|status|fetch``."""
    args = build_parser(prog, parser_class).parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
