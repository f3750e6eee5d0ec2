"""A real Prometheus server scrapes a running sidecar during a drifting demo stream.

Prometheus (Debian package ``prometheus``; .ci/run installs it) runs on 127.0.0.1 with a
free port, a temporary TSDB, a 1 s scrape and rule-evaluation interval, and the shipped
rules file. The test asks its HTTP API what it saw: the drift gauge of the shifted
feature going from 0 to 1 (and not of the others), the drift alert rule firing, the
events counter rising while the stream runs, and ``promtool check metrics`` accepting
the sidecar's live ``/metrics``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from driftsentinel.stream.demo import produce_demo
from driftsentinel.stream.local_kafka import free_port
from tests.integration.sidecar_helpers import REPO, SidecarProcess

pytestmark = pytest.mark.integration

RULES = REPO / "deploy" / "rules" / "driftsentinel.rules.yml"
EVENTS = 14_000
DRIFT_AT = 6_000
RATE = 1_000.0  # events/s: the stream lasts ~14 s, a dozen scrapes; the shift comes after ~6 s


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian package 'prometheus'; .ci/run installs it)")
    return path


class PrometheusServer:
    def __init__(self, tmp: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp / "prometheus.yml"
        config.write_text(
            json.dumps(
                {  # JSON is YAML
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(RULES)],
                    "scrape_configs": [{"job_name": "driftsentinel", "static_configs": [{"targets": [target]}]}],
                }
            )
        )
        self.log_path = tmp / "prometheus.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                _binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )

    def get(self, path: str, **params: Any) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.get("/api/v1/query", query=expr)["result"]

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited ({self.proc.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def wait_for(what: str, cond: Callable[[], Any], timeout: float, diag: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"{what}: not seen within {timeout}s\n{diag()}")


@pytest.fixture
def prometheus_binaries() -> Iterator[None]:
    _binary("prometheus")
    _binary("promtool")
    yield


def test_prometheus_scrapes_drift_and_fires_the_rule(
    prometheus_binaries: None, kafka_bootstrap: str, new_topic, tmp_path: Path
) -> None:
    topic = new_topic(partitions=1, prefix="prom")
    sidecar = SidecarProcess(kafka_bootstrap, topic, tmp=tmp_path)
    prom = PrometheusServer(tmp_path, f"127.0.0.1:{sidecar.metrics_port}")
    produced: dict[str, Any] = {}

    def produce() -> None:
        try:
            produced["n"] = produce_demo(kafka_bootstrap, topic, EVENTS, 4, DRIFT_AT, ["f0"], 2.0, seed=11, rate=RATE)
        except Exception as exc:  # surfaced by the assertions below
            produced["error"] = exc

    producer = threading.Thread(target=produce, name="demo-producer", daemon=True)

    def diag() -> str:
        return f"--- prometheus log\n{prom.log()}\n--- sidecar log\n{sidecar.log()[-3000:]}"

    try:
        prom.wait_ready()
        sidecar.wait_until(lambda s: True, timeout=60)  # /metrics answers
        # Partition assigned and Prometheus scraping before the first event, so that it
        # sees the stream from its start (and f0's gauge at 0 before the shift).
        wait_for(
            "partition assigned",
            lambda: any("assigned" in ln and topic in ln for ln in sidecar.log().splitlines()),
            timeout=90,
            diag=diag,
        )
        wait_for("sidecar ready", lambda: sidecar.probe("/readyz") == 200, timeout=60, diag=diag)
        wait_for("first scrape", lambda: prom.query('up{job="driftsentinel"} == 1'), timeout=30, diag=diag)
        started = time.time()
        producer.start()

        # While the stream runs: Prometheus scrapes the sidecar and sees events arrive.
        wait_for(
            "events/s > 0 in Prometheus",
            lambda: prom.query('sum(rate(driftsentinel_events_total{job="driftsentinel"}[5s])) > 0'),
            timeout=60,
            diag=diag,
        )
        # every scrape of the last 10 s answered (one slow scrape on a busy machine is not the point)
        wait_for(
            "up == 1 for 10 s",
            lambda: prom.query('min_over_time(up{job="driftsentinel"}[10s]) == 1'),
            timeout=30,
            diag=diag,
        )

        # The shifted feature's gauge goes to 1; the alert rule fires for it.
        wait_for(
            "driftsentinel_feature_drift_detected{feature=f0} == 1",
            lambda: prom.query('driftsentinel_feature_drift_detected{feature="f0"} == 1'),
            timeout=90,
            diag=diag,
        )
        firing = wait_for(
            "DriftSentinelFeatureDrift firing",
            lambda: [
                a
                for a in prom.get("/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == "DriftSentinelFeatureDrift" and a["state"] == "firing"
            ],
            timeout=30,
            diag=diag,
        )
        assert {(a["labels"]["model"], a["labels"]["feature"]) for a in firing} == {("demo", "f0")}, diag()
        assert firing[0]["labels"]["severity"] == "warning"
        assert "f0" in firing[0]["annotations"]["summary"]
        assert prom.query('ALERTS{alertname="DriftSentinelFeatureDrift", alertstate="firing", feature="f0"}')
        still_streaming = producer.is_alive()

        # promtool accepts what the running sidecar serves, with every metric populated.
        with urllib.request.urlopen(f"http://127.0.0.1:{sidecar.metrics_port}/metrics", timeout=5) as r:
            exposition = r.read()
        for name in (
            b"driftsentinel_feature_drift_score",
            b"driftsentinel_consumer_lag",
            b"driftsentinel_batch_duration_seconds_bucket",
            b"driftsentinel_last_event_timestamp_seconds",
        ):
            assert name + b"{" in exposition, name
        check = subprocess.run(
            [_binary("promtool"), "check", "metrics"], input=exposition, capture_output=True, timeout=60
        )
        assert check.returncode == 0, (check.stdout + check.stderr).decode()

        producer.join(timeout=120)
        assert "error" not in produced, produced.get("error")
        assert produced.get("n") == EVENTS

        # Prometheus saw the transition: f0 was 0 before the shift and 1 after; the
        # features that did not move stayed 0 all along.
        end = time.time()
        series = prom.get(
            "/api/v1/query_range",
            query="max by (feature) (driftsentinel_feature_drift_detected)",
            start=f"{started:.3f}",
            end=f"{end:.3f}",
            step="1s",
        )["result"]
        values = {s["metric"]["feature"]: [float(v) for _, v in s["values"]] for s in series}
        assert set(values) == {"f0", "f1", "f2", "f3"}, values.keys()
        assert values["f0"][0] == 0.0 and values["f0"][-1] == 1.0, f"{values['f0']}\n{diag()}"
        assert all(max(values[f]) == 0.0 for f in ("f1", "f2", "f3")), f"{values}\n{diag()}"
        assert not [
            a
            for a in prom.get("/api/v1/alerts")["alerts"]
            if a["labels"]["alertname"] == "DriftSentinelDown" and a["state"] == "firing"
        ]
        [total] = prom.query('driftsentinel_events_total{model="demo"}')
        assert float(total["value"][1]) > DRIFT_AT
        # recorded for the report: was the alert seen while the stream was still running?
        print(f"drift alert firing while streaming: {still_streaming}")
    finally:
        prom.stop()
        sidecar.terminate()
        try:
            sidecar.wait(30)
        finally:
            sidecar.kill()
