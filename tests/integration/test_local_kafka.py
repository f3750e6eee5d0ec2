"""Real-broker tests: the session broker (whatever ``kafka_bootstrap`` found or started)
serves plain and transactional traffic, and ``stream.local_kafka`` itself starts,
reports and stops brokers, through its API and its command line.

Every loop is bounded by a deadline; every address is 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from driftsentinel.stream import local_kafka

REPO_ROOT = Path(__file__).resolve().parents[2]


def _consume(
    bootstrap: str, topic: str, want: int, timeout: float = 30.0, conf: dict[str, str] | None = None
) -> list[tuple[bytes | None, bytes | None]]:
    """Read ``topic`` from the beginning until ``want`` messages arrived or ``timeout`` passed."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **(conf or {}),
        }
    )
    consumer.subscribe([topic])
    got: list[tuple[bytes | None, bytes | None]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < want and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consumer error: {err}")
                got.append((msg.key(), msg.value()))
    finally:
        consumer.close()
    return got


def _produce(producer: Producer, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    for key, value in items:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages not delivered within 30s"
    assert not errors, errors


@pytest.mark.integration
def test_produce_consume_round_trip(kafka_bootstrap: str, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=3, prefix="roundtrip")
    sent = [(f"k{i % 7}".encode(), json.dumps({"i": i}).encode()) for i in range(300)]
    _produce(Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True}), topic, sent)

    got = _consume(kafka_bootstrap, topic, want=len(sent))

    assert sorted(got) == sorted(sent)
    # Per-key order is kept: a key always lands on one partition.
    for key in {k for k, _ in sent}:
        assert [v for k, v in got if k == key] == [v for k, v in sent if k == key]


@pytest.mark.integration
def test_aborted_transaction_is_invisible_to_read_committed(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1, prefix="txn")
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"test-txn-{uuid.uuid4().hex[:8]}"})
    producer.init_transactions(30)

    for value, commit in ((b"committed-1", True), (b"aborted", False), (b"committed-2", True)):
        producer.begin_transaction()
        producer.produce(topic, key=b"k", value=value)
        producer.flush(10)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)

    committed = _consume(kafka_bootstrap, topic, want=2, conf={"isolation.level": "read_committed"})
    assert [v for _, v in committed] == [b"committed-1", b"committed-2"]

    # The aborted record is in the log all the same: only the isolation level hides it.
    everything = _consume(kafka_bootstrap, topic, want=3, conf={"isolation.level": "read_uncommitted"})
    assert [v for _, v in everything] == [b"committed-1", b"aborted", b"committed-2"]


@pytest.mark.integration
def test_api_start_is_idempotent_and_status_reports_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "broker"
    data_dir.mkdir()
    # A cluster id that starts with "-" (one random id in 64 did, and the storage
    # tool read it as an option): the format step must still take it.
    cluster_id = "-" + local_kafka._cluster_id()[1:]
    local_kafka._write_state(data_dir, {"cluster_id": cluster_id})
    port = local_kafka.free_port()
    bootstrap = local_kafka.start(port=port, data_dir=data_dir, timeout=120)
    try:
        assert bootstrap == f"127.0.0.1:{port}"
        meta = (data_dir / local_kafka._KRAFT_DIR / "meta.properties").read_text()
        assert f"cluster.id={cluster_id}" in meta
        assert (local_kafka.lib_dir() / ".." / ".complete").resolve().exists()

        st = local_kafka.status(data_dir)
        assert st.running and st.answers_metadata
        assert st.bootstrap == bootstrap
        assert st.pid is not None and st.pid == int((data_dir / "kafka.pid").read_text())

        # A second start on the same data dir finds the running broker, starts no JVM.
        assert local_kafka.start(port=port, data_dir=data_dir, timeout=30) == bootstrap
        assert local_kafka.status(data_dir).pid == st.pid
        with pytest.raises(local_kafka.LocalKafkaError, match="already runs"):
            local_kafka.start(port=local_kafka.free_port(), data_dir=data_dir, timeout=30)
    finally:
        stopped = local_kafka.stop(data_dir)

    assert stopped
    after = local_kafka.status(data_dir)
    assert not after.running and after.pid is None and not after.answers_metadata
    assert not local_kafka.stop(data_dir)


@pytest.mark.integration
def test_start_on_a_taken_port_fails_fast(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(local_kafka.LocalKafkaError, match="in use"):
            local_kafka.start(port=port, data_dir=tmp_path / "broker", timeout=30)
        assert time.monotonic() - t0 < 20
    assert not local_kafka.status(tmp_path / "broker").running


def _cli(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "driftsentinel.stream.local_kafka", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.integration
def test_cli_start_status_stop_on_a_second_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli-broker"
    port = local_kafka.free_port()
    try:
        started = _cli("start", "--port", str(port), "--data-dir", str(data_dir))
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"127.0.0.1:{port}"

        st = _cli("status", "--data-dir", str(data_dir), timeout=30)
        assert st.returncode == 0, st.stderr
        report = json.loads(st.stdout)
        assert report["running"] is True
        assert report["answers_metadata"] is True
        assert report["bootstrap"] == f"127.0.0.1:{port}"
    finally:
        stopped = _cli("stop", "--data-dir", str(data_dir), timeout=60)
    assert stopped.returncode == 0, stopped.stderr

    st = _cli("status", "--data-dir", str(data_dir), timeout=30)
    assert st.returncode == 3
    assert json.loads(st.stdout)["running"] is False
    # The port is released once stop returns.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", port))


def test_register_cli_adds_local_kafka_subcommands() -> None:
    parser = argparse.ArgumentParser(prog="driftsentinel")
    local_kafka.register_cli(parser.add_subparsers(dest="command", required=True))

    args = parser.parse_args(["local-kafka", "start", "--port", "19999", "--data-dir", "/tmp/x"])
    assert args.port == 19999 and args.data_dir == Path("/tmp/x") and callable(args.func)
    for cmd in ("stop", "status", "fetch"):
        assert callable(parser.parse_args(["local-kafka", cmd]).func)
    with pytest.raises(SystemExit):
        parser.parse_args(["local-kafka"])


def _fake_mvn(bin_dir: Path, body: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    mvn = bin_dir / "mvn"
    mvn.write_text("#!/bin/sh\n" + body)
    mvn.chmod(0o755)


def test_fetch_is_atomic_and_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Maven Central here: a stand-in ``mvn`` shows what fetch() does with its output."""
    monkeypatch.setenv("DRIFTSENTINEL_CACHE_DIR", str(tmp_path / "cache"))
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    version = "9.9.9"

    # A failed download leaves neither a lib dir nor the completion marker behind.
    _fake_mvn(bin_dir, 'echo "Could not resolve dependencies" >&2\nexit 1\n')
    with pytest.raises(local_kafka.LocalKafkaError, match="Could not resolve"):
        local_kafka.fetch(version)
    home = local_kafka.lib_dir(version).parent
    assert not local_kafka.lib_dir(version).exists()
    assert not (home / ".complete").exists()
    assert [p.name for p in home.iterdir()] == []  # scratch dir cleaned up

    # A good one: the jars land in lib/, the marker follows; a second call runs no Maven.
    _fake_mvn(
        bin_dir,
        'for a in "$@"; do case "$a" in -DoutputDirectory=*) d="${a#-DoutputDirectory=}";; esac; done\n'
        f'mkdir -p "$d" && touch "$d/kafka_2.13-{version}.jar" "$d/kafka-clients-{version}.jar"\n',
    )
    lib = local_kafka.fetch(version)
    assert lib == local_kafka.lib_dir(version)
    assert sorted(p.name for p in lib.iterdir()) == [f"kafka-clients-{version}.jar", f"kafka_2.13-{version}.jar"]
    assert (home / ".complete").exists()

    _fake_mvn(bin_dir, "exit 1\n")
    assert local_kafka.fetch(version) == lib


def test_sasl_server_properties_and_cli_option(tmp_path: Path) -> None:
    """SASL mode without a broker: what goes into server.properties, and how the CLI reads users."""
    props = local_kafka._server_properties(tmp_path, 29092, 29093, {"alice": "s3cret", "bob": "pw2"}, 29094)
    lines = dict(line.split("=", 1) for line in props.splitlines())
    assert lines["listeners"] == (
        "SASL_PLAINTEXT://127.0.0.1:29092,INTERNAL://127.0.0.1:29094,CONTROLLER://127.0.0.1:29093"
    )
    assert lines["inter.broker.listener.name"] == "INTERNAL"
    assert lines["listener.security.protocol.map"].startswith("SASL_PLAINTEXT:SASL_PLAINTEXT,INTERNAL:PLAINTEXT")
    assert lines["sasl.enabled.mechanisms"] == "SCRAM-SHA-512,PLAIN"
    assert "ScramLoginModule required;" in lines["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"]
    plain = lines["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert 'user_alice="s3cret"' in plain and 'user_bob="pw2"' in plain
    # Without users: the plain single listener, as before.
    assert "SASL" not in local_kafka._server_properties(tmp_path, 29092, 29093)

    parser = argparse.ArgumentParser(prog="driftsentinel")
    local_kafka.register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["local-kafka", "start", "--sasl-user", "alice:a:b", "--sasl-user", "bob:pw"])
    assert args.sasl_users == {"alice": "a:b", "bob": "pw"}
    assert parser.parse_args(["local-kafka", "start"]).sasl_users is None
    with pytest.raises(SystemExit):
        parser.parse_args(["local-kafka", "start", "--sasl-user", "nopassword"])


@pytest.mark.parametrize(
    "users",
    [{}, {"al ice": "pw"}, {"alice": ""}, {"alice": 'p"w'}, {"alice": "p,w]"}, {"alice": "p\\w"}],
)
def test_sasl_users_that_would_break_the_config_are_refused(tmp_path: Path, users: dict[str, str]) -> None:
    with pytest.raises(local_kafka.LocalKafkaError) as info:
        local_kafka.start(port=local_kafka.free_port(), data_dir=tmp_path / "b", timeout=5, sasl_users=users)
    for password in users.values():
        if password:
            assert password not in str(info.value)  # never echoed
    assert not (tmp_path / "b").exists()
