"""SASL against the project's own broker (issue 6, part 6).

A broker of ``stream.local_kafka`` in SASL mode (SASL_PLAINTEXT listener, SCRAM-SHA-512
and PLAIN) is started for this module on free ports with a temporary data directory.
The sidecar gets its credentials through the config file (``kafka.consumer`` /
``kafka.producer``, merged into the librdkafka configs) and must:

(a) with the right credentials, process a demo stream and publish its drift alerts;
(b) with wrong ones, exit non-zero at start-up within ~30 s, saying on stderr that
    authentication failed;
(c) never write a password into its log (the start-up line shows the effective config
    with secrets redacted).

Skipped when ``KAFKA_BOOTSTRAP_SERVERS`` points at an external broker: the broker's
security set-up is then not ours to choose.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from driftsentinel.schemas import DriftEvent
from driftsentinel.stream import local_kafka
from driftsentinel.stream.demo import demo_values
from tests.integration.sidecar_helpers import REPO, read_all, value_of

pytestmark = pytest.mark.integration

N_EVENTS = 12_000
DRIFT_AT = 6_000
FEATURES = 4
DRIFTING = ["f0"]


@dataclass(frozen=True)
class SaslBroker:
    bootstrap: str
    users: dict[str, str]
    data_dir: Path

    def client(self, user: str, mechanism: str = "SCRAM-SHA-512", password: str | None = None) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism,
            "sasl.username": user,
            "sasl.password": self.users[user] if password is None else password,
        }


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS is set: the SASL test needs the project's own broker")
    # Random passwords: a leak into a log is then certain to be a leak, not a coincidence.
    users = {"alice": f"A-{secrets.token_hex(12)}", "bob": f"B-{secrets.token_hex(12)}"}
    data_dir = Path(tmp_path_factory.mktemp("sasl-broker"))
    bootstrap = local_kafka.start(port=local_kafka.free_port(), data_dir=data_dir, timeout=120, sasl_users=users)
    try:
        yield SaslBroker(bootstrap, users, data_dir)
    finally:
        local_kafka.stop(data_dir)


def _create_topic(broker: SaslBroker, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    admin = AdminClient(broker.client("alice"))
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        topic = admin.list_topics(topic=name, timeout=5).topics.get(name)
        if topic is not None and topic.error is None and all(p.leader >= 0 for p in topic.partitions.values()):
            return name
        time.sleep(0.1)
    raise TimeoutError(name)


def _produce_demo(broker: SaslBroker, topic: str) -> None:
    values = demo_values(N_EVENTS, FEATURES, DRIFT_AT, [int(f[1:]) for f in DRIFTING], 1.5, seed=5)
    producer = Producer({**broker.client("bob"), "enable.idempotence": True, "linger.ms": 20})
    names = [f"f{i}" for i in range(FEATURES)]
    for i in range(N_EVENTS):
        doc = {"model": "demo", "ts": 1.0 + i, "features": dict(zip(names, values[i].tolist(), strict=True))}
        while True:
            try:
                producer.produce(topic, key=b"demo", value=json.dumps(doc).encode())
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0


def _sidecar_config(broker: SaslBroker, user: str, mechanism: str, password: str) -> dict:
    sasl = {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }
    return {"kafka": {"consumer": dict(sasl), "producer": dict(sasl)}}


def _run_sidecar(
    broker: SaslBroker, tmp: Path, input_topic: str, config: dict, timeout: float, *extra: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``driftsentinel run`` to completion; returns the result (stdout/stderr apart) and its wall time."""
    cfg = tmp / f"sasl-{uuid.uuid4().hex[:8]}.yaml"
    cfg.write_text(json.dumps(config))  # JSON is YAML
    args = [
        sys.executable,
        "-m",
        "driftsentinel.stream.cli",
        "run",
        "--config",
        str(cfg),
        "--bootstrap-servers",
        broker.bootstrap,
        "--input-topic",
        input_topic,
        "--alerts-topic",
        f"{input_topic}-alerts",
        "--dlq-topic",
        f"{input_topic}-dlq",
        "--group-id",
        f"{input_topic}-group",
        "--metrics-port",
        "0",
        *extra,
    ]
    t0 = time.monotonic()
    proc = subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    return proc, time.monotonic() - t0


def _assert_no_secret(text: str, broker: SaslBroker, *also: str) -> None:
    for secret in (*broker.users.values(), *also):
        assert secret not in text, "a password appears in the sidecar's output"


def test_broker_accepts_only_authenticated_clients(sasl_broker: SaslBroker) -> None:
    """The broker set-up itself: SCRAM-SHA-512 and PLAIN with the right password pass, anything else fails."""

    def answers(conf: dict[str, str], timeout: float = 6.0) -> tuple[bool, list[int]]:
        codes: list[int] = []
        settings: dict[str, Any] = {**conf, "log_level": 0, "error_cb": lambda e: codes.append(e.code())}
        admin = AdminClient(settings)
        try:
            ok = bool(admin.list_topics(timeout=timeout).brokers)
        except Exception:
            ok = False
        admin.poll(0.5)  # error_cb is served by poll()
        return ok, codes

    for user in sasl_broker.users:
        for mechanism in ("SCRAM-SHA-512", "PLAIN"):
            ok, codes = answers(sasl_broker.client(user, mechanism))
            assert ok, (user, mechanism, codes)
    for mechanism in ("SCRAM-SHA-512", "PLAIN"):
        ok, codes = answers(sasl_broker.client("alice", mechanism, password="wrong-password"))
        assert not ok
        assert KafkaError._AUTHENTICATION in codes, codes
    ok, _ = answers({"bootstrap.servers": sasl_broker.bootstrap}, timeout=3.0)
    assert not ok  # a PLAINTEXT client gets nothing from the SASL port
    # The data dir's state (client_config) holds working credentials for tools and probes.
    conf = local_kafka.client_config(sasl_broker.data_dir)
    assert conf["bootstrap.servers"] == sasl_broker.bootstrap and conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert answers(conf)[0]
    assert local_kafka.status(sasl_broker.data_dir).answers_metadata


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_sidecar_with_right_credentials_publishes_alerts(
    sasl_broker: SaslBroker, tmp_path: Path, mechanism: str
) -> None:
    topic = _create_topic(sasl_broker, "sasl-in")
    _produce_demo(sasl_broker, topic)
    config = _sidecar_config(sasl_broker, "alice", mechanism, sasl_broker.users["alice"])
    # at --log-level debug, where the full effective config is logged: still no secret anywhere
    proc, took = _run_sidecar(sasl_broker, tmp_path, topic, config, 180, "--idle-exit", "5", "--log-level", "debug")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert f"stopped after {N_EVENTS} messages" in output, output[-4000:]
    _assert_no_secret(output, sasl_broker)
    # The short start-up line names the changed settings, never their values ...
    short = next(ln for ln in output.splitlines() if "effective config" in ln and "full effective" not in ln)
    assert "sasl.password" in short and "***" not in short and "alice" not in short
    # ... and the full effective config (DEBUG) shows them, with the password replaced.
    line = next(ln for ln in output.splitlines() if "full effective config" in ln)
    assert '"sasl.username": "alice"' in line and '"sasl.password": "***"' in line

    alerts = [
        DriftEvent.model_validate_json(value_of(m))
        for m in read_all(sasl_broker.bootstrap, f"{topic}-alerts", client=sasl_broker.client("bob"))
    ]
    drifted = {e.feature for e in alerts if e.status == "drift"}
    assert drifted == set(DRIFTING), sorted(drifted)
    first = min(e.source.offset for e in alerts if e.status == "drift")
    assert DRIFT_AT <= first < DRIFT_AT + 1000, first


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_sidecar_with_wrong_credentials_fails_fast_and_says_why(
    sasl_broker: SaslBroker, tmp_path: Path, mechanism: str
) -> None:
    wrong = f"W-{secrets.token_hex(12)}"
    config = _sidecar_config(sasl_broker, "alice", mechanism, wrong)
    # No --idle-exit: a sidecar that does not fail fast would run until the timeout.
    try:
        proc, took = _run_sidecar(sasl_broker, tmp_path, f"sasl-bad-{uuid.uuid4().hex[:8]}", config, 60)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"") + (exc.stderr or b"")
        text = out.decode(errors="replace") if isinstance(out, bytes) else out
        pytest.fail(f"sidecar with wrong credentials still running after 60 s; output tail:\n{text[-3000:]}")
    assert proc.returncode != 0, proc.stderr[-3000:]
    assert took < 35, f"failed only after {took:.1f}s"
    # The sidecar's own reason for giving up -- its ERROR line, not librdkafka's log lines
    # ("%3|...|FAIL|...") nor a warning next to an error that blames something else.
    errors = [ln for ln in proc.stderr.splitlines() if " ERROR " in ln or ln.startswith("driftsentinel:")]
    assert errors, proc.stderr[-3000:]
    assert any(re.search(r"authentication failed", ln, re.IGNORECASE) for ln in errors), "\n".join(errors)
    _assert_no_secret(proc.stdout + proc.stderr, sasl_broker, wrong)
