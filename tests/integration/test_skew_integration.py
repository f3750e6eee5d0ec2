"""``driftsentinel skew`` against a real broker: train/serve skew by join, shadow divergence.

The sidecar runs as a child process (``python -m stream.cli skew``), reads real topics,
and its alerts are read back from the alerts topic; nothing of Kafka is mocked.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.integration.sidecar_helpers import REPO, MetricsPortFromLog, produce, read_all, sample

pytestmark = pytest.mark.integration

PLANS = ["free", "basic", "pro", "enterprise"]
N_ENTITIES = 20_000


class SkewProcess(MetricsPortFromLog):
    """``driftsentinel skew`` as a child process; its last stdout line is the run's stats."""

    def __init__(self, bootstrap: str, tmp: Path, config: dict, *flags: str) -> None:
        name = uuid.uuid4().hex[:8]
        cfg_path = tmp / f"skew-{name}.json"
        cfg_path.write_text(json.dumps(config))  # JSON is YAML
        self.out_path = tmp / f"skew-{name}.out"
        self.log_path = tmp / f"skew-{name}.log"
        self._out = open(self.out_path, "wb")  # noqa: SIM115
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "driftsentinel.stream.cli",
                "skew",
                "--bootstrap-servers",
                bootstrap,
                "--config",
                str(cfg_path),
                "--metrics-port",
                "0",
                "--metrics-host",
                "127.0.0.1",
                *flags,
            ],
            cwd=REPO,
            stdout=self._out,
            stderr=self._log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def finish(self, timeout: float) -> dict:
        """Wait for the exit (idle_exit); returns the stats line."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"skew did not exit in {timeout}s:\n{self.log()[-3000:]}") from None
        finally:
            self._out.close()
            self._log.close()
        assert code == 0, self.log()[-3000:]
        return json.loads(self.out_path.read_text().strip().splitlines()[-1])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for fh in (self._out, self._log):
            if not fh.closed:
                fh.close()


def make_entities(n: int, seed: int = 11) -> tuple[list[dict], list[dict]]:
    """Offline (training pipeline) and online (serving) events of the same entities.

    Online ``latency`` is in milliseconds (offline: seconds); online ``plan`` swaps
    'basic' and 'pro'; 18 features agree up to 1e-12 relative noise. Every 20th entity
    (5%) exists on one side only, alternating sides.
    """
    rng = np.random.default_rng(seed)
    offline, online = [], []
    for i in range(n):
        feats: dict[str, object] = {f"f{k}": float(rng.normal(10 * k, 1 + k)) for k in range(16)}
        feats["clicks"] = int(rng.integers(0, 50))
        feats["country"] = ["DE", "FR", "US"][int(rng.integers(0, 3))]
        feats["latency"] = float(rng.gamma(2.0, 0.05))
        feats["plan"] = PLANS[int(rng.integers(0, 4))]
        on = {k: v * (1 + 1e-12) if isinstance(v, float) else v for k, v in feats.items()}
        on["latency"] = feats["latency"] * 1000.0  # type: ignore[operator]
        plan = str(feats["plan"])
        on["plan"] = {"basic": "pro", "pro": "basic"}.get(plan, plan)
        ts = 1_767_225_600.0 + i * 0.01
        one_sided = i % 20 == 19
        if not one_sided or (i // 20) % 2 == 0:
            online.append({"model": "churn-v1", "ts": ts, "id": f"user-{i}", "features": on, "prediction": 0.5})
        if not one_sided or (i // 20) % 2 == 1:
            offline.append({"model": "churn-v1", "ts": ts, "id": f"user-{i}", "features": feats})
    return offline, online


def encode(events: list[dict]) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]


def alerts_of(bootstrap: str, topic: str) -> list[dict]:
    return [json.loads(m.value() or b"null") for m in read_all(bootstrap, topic)]


def test_skew_join_flags_latency_and_plan_only(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    serving, offline, alerts = new_topic(prefix="serving"), new_topic(prefix="offline"), new_topic(prefix="alerts")
    off_events, on_events = make_entities(N_ENTITIES)
    assert len(on_events) == len(off_events) == N_ENTITIES - N_ENTITIES // 40
    rng = np.random.default_rng(1)
    off_events = [off_events[i] for i in rng.permutation(len(off_events))]  # the offline export's own order
    produce(kafka_bootstrap, offline, encode(off_events), key=None)
    produce(kafka_bootstrap, serving, encode(on_events), key=b"churn-v1")

    config = {
        "sources": {
            "serving_topic": serving,
            "offline_topic": offline,
            "alerts_topic": alerts,
            "group_id": f"{serving}-skew",
        },
        # the age limit is far above the read time (the offline side arrives shuffled, up to a
        # whole read after its serving partner): the one-sided ids are given up at the end
        "skew": {"window_pairs": 5000, "min_pairs": 500, "window": {"max_pending": 50_000, "max_age_s": 120}},
    }
    started = time.monotonic()
    proc = SkewProcess(kafka_bootstrap, tmp_path, config, "--idle-exit", "8")
    try:
        one_sided = N_ENTITIES // 40  # per side
        names = ["latency", "plan", "f0", "clicks", "country"]
        snap = proc.wait_until(  # a first window of 5,000 pairs evaluated
            lambda s: all(
                sample(s, "driftsentinel_feature_skew_ratio", model="default", feature=f) is not None for f in names
            ),
            timeout=60,
        )
        ratio = {f: sample(snap, "driftsentinel_feature_skew_ratio", model="default", feature=f) for f in names}
        assert ratio["latency"] == 1.0 and 0.4 < (ratio["plan"] or 0.0) < 0.6, ratio
        assert ratio["f0"] == ratio["clicks"] == ratio["country"] == 0.0, ratio
        stats = proc.finish(timeout=60)
    finally:
        proc.kill()
    elapsed = time.monotonic() - started
    assert stats["join"]["matched"] == N_ENTITIES - 2 * one_sided
    assert stats["join"]["unmatched"] == {"serving": one_sided, "offline": one_sided}
    assert stats["join"]["pending"] == {"serving": 0, "offline": 0}

    events = alerts_of(kafka_bootstrap, alerts)
    assert sorted((e["feature"], e["detector"], e["status"]) for e in events) == [
        ("latency", "skew", "drift"),
        ("plan", "skew", "drift"),
    ], [(e["feature"], e["statistic"]) for e in events]
    by_feature = {e["feature"]: e for e in events}

    lat = by_feature["latency"]
    assert lat["statistic_name"] == "mismatch_rate" and lat["statistic"] == 1.0 and lat["threshold"] == 0.01
    assert lat["severity"] == "critical" and lat["source"]["topic"] == serving
    assert lat["evidence"]["ratio"] == pytest.approx(1000.0, rel=1e-6)
    assert lat["window"]["mean"] == pytest.approx(1000 * lat["reference"]["mean"], rel=1e-9)
    assert 0 < len(lat["evidence"]["sample"]) <= 10
    for s in lat["evidence"]["sample"]:
        assert s["id"].startswith("user-") and s["serving"] == pytest.approx(1000 * s["offline"])

    plan = by_feature["plan"]
    swapped = plan["evidence"]["swapped_pairs"]
    assert [(p["a"], p["b"]) for p in swapped] == [("basic", "pro")]
    assert swapped[0]["a_to_b"] > 0 and swapped[0]["b_to_a"] > 0
    assert {(p["serving"], p["offline"]) for p in plan["evidence"]["top_mismatching_pairs"]} == {
        ("basic", "pro"),
        ("pro", "basic"),
    }
    assert len({e["event_id"] for e in events}) == 2
    print(f"\nskew run: {stats}, {elapsed:.1f}s")


def test_offline_file_replay(kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path) -> None:
    serving, alerts = new_topic(prefix="serving"), new_topic(prefix="alerts")
    off_events, on_events = make_entities(2000, seed=5)
    path = tmp_path / "offline.csv"
    names = list(off_events[0]["features"])
    lines = ["id," + ",".join(names)]
    for ev in off_events:
        lines.append(
            ev["id"]
            + ","
            + ",".join(
                repr(ev["features"][n]) if isinstance(ev["features"][n], float) else str(ev["features"][n])
                for n in names
            )
        )
    path.write_text("\n".join(lines) + "\n")
    produce(kafka_bootstrap, serving, encode(on_events), key=b"churn-v1")
    config = {
        "sources": {
            "serving_topic": serving,
            "alerts_topic": alerts,
            "group_id": f"{serving}-skew",
            "model": "churn-v1",
        },
        "skew": {"window_pairs": 1000, "min_pairs": 100, "window": {"max_pending": 10_000, "max_age_s": 60}},
    }
    proc = SkewProcess(kafka_bootstrap, tmp_path, config, "--offline-file", str(path), "--idle-exit", "4")
    try:
        stats = proc.finish(timeout=60)
    finally:
        proc.kill()
    assert stats["join"]["matched"] == 1900
    assert stats["join"]["unmatched"] == {"serving": 50, "offline": 50}
    events = alerts_of(kafka_bootstrap, alerts)
    assert sorted(e["feature"] for e in events) == ["latency", "plan"]
    assert all(e["model"] == "churn-v1" for e in events)


def test_shadow_pair_99_then_80_percent_agreement(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    serving, alerts = new_topic(prefix="serving"), new_topic(prefix="alerts")
    rng = np.random.default_rng(9)
    classes = ["approve", "review", "deny"]
    values: list[bytes] = []
    n = 10_000
    for i in range(2 * n):
        agreement = 0.99 if i < n else 0.80
        base = int(rng.integers(0, 3))
        cand = (base + 1) % 3 if rng.random() >= agreement else base
        for version, pred in (("v1", base), ("v2", cand)):
            values.append(
                json.dumps(
                    {
                        "model": "fraud",
                        "model_version": version,
                        "id": f"req-{i}",
                        "ts": i,
                        "features": {"amount": float(i % 100)},
                        "prediction": classes[pred],
                    }
                ).encode()
            )
    produce(kafka_bootstrap, serving, values, key=b"fraud")
    config = {
        "sources": {"serving_topic": serving, "alerts_topic": alerts, "group_id": f"{serving}-shadow"},
        "shadow": {
            "baseline": "v1",
            "candidate": "v2",
            "version_field": "model_version",
            "window_pairs": 1000,
            "min_agreement": 0.9,
        },
    }
    proc = SkewProcess(kafka_bootstrap, tmp_path, config, "--idle-exit", "4")
    try:
        stats = proc.finish(timeout=60)
    finally:
        proc.kill()
    assert stats["shadow_join"]["matched"] == 2 * n
    events = alerts_of(kafka_bootstrap, alerts)
    assert len(events) == 1, events
    [ev] = events
    assert (ev["detector"], ev["status"], ev["model"], ev["feature"]) == (
        "shadow_divergence",
        "drift",
        "v2",
        "prediction",
    )
    assert ev["statistic"] == pytest.approx(0.8, abs=0.04) and ev["threshold"] == 0.9
    assert ev["source"]["offset"] >= 2 * n  # decided after the change (two events per request)
    assert ev["evidence"]["baseline"] == "v1" and ev["evidence"]["kind"] == "classes"
    assert ev["evidence"]["sample"] and ev["evidence"]["top_disagreements"]


def test_broker_down_at_start_is_one_line_and_exit_code_3(tmp_path: Path) -> None:
    """Like ``run``: a broker that never answers is a one-line reason and exit code 3, no traceback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    config = {"sources": {"offline_topic": "offline", "group_id": "down"}}
    proc = SkewProcess(f"127.0.0.1:{port}", tmp_path, config, "--idle-exit", "1")
    try:
        code = proc.proc.wait(120)
    finally:
        proc.kill()
    log = proc.log()
    assert code == 3, log[-3000:]
    assert "Traceback" not in log
    [line] = [ln for ln in log.splitlines() if "cannot start" in ln]
    assert f"broker 127.0.0.1:{port} not usable" in line
