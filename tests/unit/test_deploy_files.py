"""The operator-facing files: rules, dashboard, compose, Kubernetes example, Dockerfile.

The Prometheus checks run the real ``promtool`` (Debian package ``prometheus``; .ci/run
installs it) and skip only when it is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from driftsentinel.schemas import load_config
from driftsentinel.stream.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "driftsentinel.json"
RULES = DEPLOY / "rules" / "driftsentinel.rules.yml"
RULES_TEST = DEPLOY / "rules" / "driftsentinel.rules.test.yml"
K8S = DEPLOY / "k8s"

# Labels Prometheus adds at scrape time (plus the static label of deploy/prometheus.yml).
TARGET_LABELS = {"job", "instance", "service"}
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
    "summary": ("", "_count", "_sum", "_created"),
}


def exported_metrics() -> dict[str, set[str]]:
    """Every series name driftsentinel exports -> its label names (``le`` for buckets)."""
    registry = Metrics().registry
    out: dict[str, set[str]] = {}
    for collector in list(registry._collector_to_names):  # noqa: SLF001 (labels are not public otherwise)
        labels = set(getattr(collector, "_labelnames", ()))
        for family in collector.describe():  # type: ignore[attr-defined]  # metrics have it, Collector does not
            for suffix in _SUFFIXES[family.type]:
                out[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


def test_exported_metric_names_match_the_rendered_output() -> None:
    m = Metrics()
    m.events.labels("m").inc()
    m.invalid_events.labels("not_json").inc()
    m.batch_duration.observe(0.01)
    rendered = {
        line.split("{")[0].split(" ")[0] for line in m.render().decode().splitlines() if line and line[0] != "#"
    }
    assert rendered <= set(exported_metrics())
    assert {
        "driftsentinel_events_total",
        "driftsentinel_batch_duration_seconds_bucket",
        "driftsentinel_feature_drift_detected",
    } <= set(exported_metrics())


# --------------------------------------------------------------------------- PromQL
_SELECTOR = re.compile(r"\b(driftsentinel_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?")
_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def check_promql(expr: str, where: str) -> list[str]:
    """Problems of one query: unknown driftsentinel series, unknown label matchers."""
    known = exported_metrics()
    found = _SELECTOR.findall(expr)
    if not found:
        return [f"{where}: names no driftsentinel metric: {expr}"]
    problems = []
    for name, matchers in found:
        if name not in known:
            problems.append(f"{where}: unknown metric {name}")
            continue
        for label in _LABEL.findall(matchers or ""):
            if label not in known[name] | TARGET_LABELS:
                problems.append(f"{where}: {name} has no label {label!r}")
    return problems


def dashboard_queries(dash: dict) -> list[tuple[str, str]]:
    out = []

    def panels(ps: list) -> None:
        for p in ps:
            for t in p.get("targets", []):
                out.append((f"panel {p['title']!r}/{t.get('refId')}", t["expr"]))
            panels(p.get("panels", []))

    panels(dash["panels"])
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            out.append((f"variable {var['name']}", q))
    for ann in dash["annotations"]["list"]:
        if "expr" in ann:
            out.append((f"annotation {ann['name']}", ann["expr"]))
    return out


def test_dashboard_parses_and_every_query_names_an_existing_metric() -> None:
    dash = json.loads(DASHBOARD.read_text())
    queries = dashboard_queries(dash)
    assert len(queries) >= 15
    problems = [p for where, expr in queries for p in check_promql(expr, where)]
    assert not problems, "\n".join(problems)
    exprs = " ".join(e for _, e in queries)
    # what the issue asks the dashboard to show
    for needed in (
        "driftsentinel_feature_drift_detected",
        "driftsentinel_feature_drift_score",
        "rate(driftsentinel_events_total",
        "driftsentinel_consumer_lag",
        "driftsentinel_invalid_events_total",
    ):
        assert needed in exprs, needed


def test_dashboard_structure() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "driftsentinel"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "model", "feature"} <= variables
    titles = {p["title"] for p in dash["panels"]}
    assert {
        "Features in drift",
        "Events/s",
        "Consumer lag",
        "Invalid events/s",
        "Mean shift per feature (reference stds)",
    } <= titles
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
            for t in p["targets"]:
                assert t["datasource"]["uid"] == "${datasource}"
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    prov = DEPLOY / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())
    [source] = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    dashboards = yaml.safe_load((prov / "dashboards" / "driftsentinel.yml").read_text())
    [provider] = dashboards["providers"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1)[::-1] for v in compose["services"]["grafana"]["volumes"])
    # container path -> host path
    assert mounts[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    assert mounts["/etc/grafana/provisioning/datasources"] == "./deploy/grafana/provisioning/datasources"


# --------------------------------------------------------------------------- rules
def test_rules_queries_name_existing_metrics() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
    assert {
        "DriftSentinelFeatureDrift",
        "DriftSentinelInvalidEvents",
        "DriftSentinelConsumerLagGrowing",
        "DriftSentinelDown",
    } <= set(alerts)
    assert 'up{job="driftsentinel"} == 0' in alerts["DriftSentinelDown"]
    problems = [p for name, expr in alerts.items() if "driftsentinel_" in expr for p in check_promql(expr, name)]
    assert not problems, "\n".join(problems)


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (Debian package 'prometheus'; .ci/run installs it)")
    return path


def test_promtool_check_rules() -> None:
    r = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 5 rules found" in r.stdout + r.stderr


def test_promtool_test_rules() -> None:
    r = subprocess.run(
        [_promtool(), "test", "rules", str(RULES_TEST)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULES_TEST.parent,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr


def test_promtool_check_compose_prometheus_config(tmp_path: Path) -> None:
    # The compose file mounts deploy/rules at /etc/prometheus/rules, next to the config.
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert "./deploy/rules:/etc/prometheus/rules:ro" in volumes
    r = subprocess.run(
        [_promtool(), "check", "config", str(DEPLOY / "prometheus.yml")], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 rule files found" in r.stdout + r.stderr


def test_promtool_check_metrics_accepts_our_exposition() -> None:
    m = Metrics()
    m.events.labels("demo").inc(3)
    m.invalid_events.labels("not_json").inc()
    m.alerts.labels("demo", "f0", "adwin", "drift").inc()
    m.drift_detected.labels("demo", "f0", "adwin").set(1)
    m.drift_score.labels("demo", "f0", "mean_shift_sigma").set(1.1)
    m.feature_mean.labels("demo", "f0").set(1.0)
    m.missing_ratio.labels("demo", "f0").set(0.0)
    m.window_size.labels("demo", "f0", "adwin").set(100)
    m.consumer_lag.labels("features", "0").set(5)
    m.batch_duration.observe(0.02)
    m.last_event_ts.labels("features", "0").set(1.7e9)
    r = subprocess.run([_promtool(), "check", "metrics"], input=m.render(), capture_output=True, timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()


# --------------------------------------------------------------------------- compose
def test_docker_compose_services_and_mounts() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "driftsentinel", "demo-producer", "prometheus", "grafana"} <= set(services)
    assert "127.0.0.1:8000:8000" in services["driftsentinel"]["ports"]
    assert "127.0.0.1:3000:3000" in services["grafana"]["ports"]
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            host = vol.split(":", 1)[0]
            if host.startswith("./"):
                assert (REPO / host).exists(), f"{name} mounts missing {host}"


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_validates(tmp_path: Path) -> None:
    cmd = _compose_command()
    if cmd is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed")
    path = REPO / "docker-compose.yml"
    if cmd[-1] != "compose":
        # docker-compose 1.x (Debian bookworm's) predates the top-level `name`; validate the
        # rest of the file with the project name given on the command line instead.
        doc = yaml.safe_load(path.read_text())
        assert doc.pop("name") == "driftsentinel"
        path = tmp_path / "docker-compose.yml"
        path.write_text(yaml.safe_dump(doc))
        cmd = [*cmd, "--project-directory", str(REPO), "-p", "driftsentinel"]
    r = subprocess.run(
        [*cmd, "-f", str(path), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent"},
    )
    assert r.returncode == 0, r.stdout + r.stderr


# --------------------------------------------------------------------------- Dockerfile
def test_dockerfile_is_slim_and_non_root() -> None:
    lines = [ln.strip() for ln in (REPO / "Dockerfile").read_text().splitlines() if ln.strip() and ln[0] != "#"]
    assert lines[0].startswith("FROM python:3.11-slim")
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), users
    assert "EXPOSE 8000" in lines
    assert any("HEALTHCHECK" in ln for ln in lines) and "/healthz" in (REPO / "Dockerfile").read_text()
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # an allow-list: everything not named is left out of the image
    assert "!tests/" not in ignore and "!.venv/" not in ignore


# --------------------------------------------------------------------------- Kubernetes
def _k8s() -> dict[tuple[str, str], dict]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def test_kustomization_lists_every_manifest() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_k8s_sidecar_probes_config_and_secret(tmp_path: Path) -> None:
    objs = _k8s()
    [deploy] = [o for (k, _), o in objs.items() if k == "Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    assert deploy["spec"]["selector"]["matchLabels"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    containers = {c["name"]: c for c in pod["containers"]}
    assert {"model-server", "driftsentinel"} <= set(containers), "driftsentinel runs next to the model server"
    side = containers["driftsentinel"]
    ports = {p["name"]: p["containerPort"] for p in side["ports"]}
    assert ports == {"metrics": 8000}
    assert side["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert side["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert side["securityContext"]["allowPrivilegeEscalation"] is False

    # config: ConfigMap -> init container (+ Secret) -> the file `run --config` reads
    volumes = {v["name"]: v for v in pod["volumes"]}
    [init] = pod["initContainers"]
    cm_name = volumes["driftsentinel-config"]["configMap"]["name"]
    configmap = objs[("ConfigMap", cm_name)]
    ref = init["env"][0]["valueFrom"]["secretKeyRef"]
    secret = objs[("Secret", ref["name"])]
    assert ref["key"] in secret["stringData"]
    assert "password" not in configmap["data"]["config.yaml"], "secrets belong in the Secret"
    config_arg = side["args"][side["args"].index("--config") + 1]
    mounts = {m["name"]: m["mountPath"] for m in side["volumeMounts"]}
    assert config_arg.startswith(mounts["driftsentinel-rendered"] + "/")

    # run the init container's script on the ConfigMap's file: the result is a valid config
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "config.yaml").write_text(configmap["data"]["config.yaml"])
    script = (
        init["args"][0]
        .replace("/etc/driftsentinel", str(tmp_path / "in"))
        .replace("/run/driftsentinel", str(tmp_path / "out"))
    )
    r = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "KAFKA_SASL_PASSWORD": "s3cret"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    config = load_config(tmp_path / "out" / Path(config_arg).name)
    assert config.kafka.consumer["sasl.password"] == config.kafka.producer["sasl.password"] == "s3cret"
    assert config.metrics_port == ports["metrics"]

    service = objs[("Service", "fraud-v3-driftsentinel-metrics")]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert service["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()


# ---------------------------------------------------------------- scripts/demo.sh
DEMO = REPO / "scripts" / "demo.sh"


def test_demo_script_parses() -> None:
    subprocess.run(["bash", "-n", str(DEMO)], check=True, timeout=10)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["bogus"], "demo: unknown command 'bogus' (commands: none, alerts [TOPIC], stop)"),
        (["alerts"], "demo: no demo has run yet: run bash scripts/demo.sh first"),
    ],
)
def test_demo_script_says_a_mistake_in_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    """Before any heavy step: one line on stderr, exit 1 (the script once ran the whole demo for any argument)."""
    env = {**os.environ, "DRIFTSENTINEL_CACHE_DIR": str(tmp_path)}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    done = subprocess.run(["bash", str(DEMO), *args], env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode == 1
    assert done.stderr.strip() == says
    assert done.stdout == ""
