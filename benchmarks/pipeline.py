"""End-to-end throughput through a real Kafka broker: `python -m benchmarks.pipeline [--quick]`.

Prints ONE JSON object. In one run it

1. pre-loads a topic with ``--events`` FeatureEvents of ``--features`` numeric features
   (JSON as producers send it; +1 sigma shift on f0..f2 half way, so alerts happen);
2. measures, each in a fresh child process (so peak RSS is the measured path's own):
   * ``events_per_s``: the real sidecar (``stream.consumer.Sidecar``, default config:
     ADWIN + Page-Hinkley + live-window sketches, exactly-once transactions, checkpoints,
     metrics), from the start of the first batch (first fetch returned) to the end of the
     last commit;
   * ``naive_events_per_s``: confluent-kafka ``poll()`` per message, pydantic
     ``FeatureEvent.model_validate_json``, river ADWIN + PageHinkley per feature per event,
     on a prefix of ``--naive-events`` events (said in ``naive_events``);
   * ``decode_ceiling_events_per_s``: ``consume()`` batches + ``msgspec.json.decode``, nothing else;
3. latency: a sidecar on a fresh topic fed by a rate-limited producer at half the measured
   ``events_per_s``, with drift switched on and off; for each alert, its arrival on the alerts
   topic (``read_committed`` consumer) minus the triggering event's ``ts`` (its produce time);
4. scale: the sidecar at 200 and 1,000 features (events/s, feature-values/s, peak RSS), bytes
   per feature of DetectorBank state (by part), and peak RSS at 10,000 features with the
   default configuration (goal: under 1 GiB; docs/performance.md).

``--segments 0,10,50`` runs only the segments scenario (:func:`measure_segments`): the
sidecar on events with one more, categorical, feature ``seg`` of N values, with
``detectors.segments: {keys: [seg], max_segments: N}`` per N (0: without segments, the same
events): events/s and CPU seconds per N, the extra CPU per event and per segment bank.

The broker: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else a private one on a free port.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import numpy as np

from benchmarks import _kafka

GOALS = {"events_per_s": 100_000, "ratio_vs_naive": 8, "share_of_ceiling": 0.6, "latency_p99_s": 1.0}


def _peak_rss() -> int:
    """Peak RSS of this process since it started (VmHWM of its own address space).

    Not ``getrusage().ru_maxrss``: Linux carries the pre-exec high-water mark over an exec,
    and ``subprocess`` starts workers by vfork, so a worker's ``ru_maxrss`` is at least the
    benchmark parent's RSS at that moment (which holds the pre-loaded payloads: it read
    917 MB for a 387 MB sidecar at 200 features).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _gc_clock() -> dict[str, Any]:
    """Wall time spent in the cyclic garbage collector from now on (gc.callbacks)."""
    import gc

    acc: dict[str, Any] = {"seconds": 0.0, "count": [0, 0, 0], "t": 0.0}

    def cb(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            acc["t"] = time.perf_counter()
        else:
            acc["seconds"] += time.perf_counter() - acc["t"]
            acc["count"][info["generation"]] += 1

    gc.callbacks.append(cb)
    return acc


def _rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _array_bytes(obj: Any, seen: set[int] | None = None) -> int:
    """numpy bytes reachable from a bank's state (dicts, lists, objects' __dict__)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(_array_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_array_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        return _array_bytes(vars(obj), seen)
    return 0


def _bank_parts(banks: list[Any]) -> dict[str, int]:
    """numpy bytes of the banks by part: each change detector, the live windows, the window
    tests' monitor, and the rest (reference, warm-up values, recent rows, alert state)."""
    parts: dict[str, int] = {}
    for bank in banks:
        seen: set[int] = set()
        for name, det in bank._detectors.items():
            parts[name] = parts.get(name, 0) + _array_bytes(det, seen)
        parts["live_windows"] = parts.get("live_windows", 0) + _array_bytes(bank._live, seen)
        if bank.monitor is not None:
            parts["window_tests"] = parts.get("window_tests", 0) + _array_bytes(bank.monitor, seen)
        parts["other"] = parts.get("other", 0) + _array_bytes(bank, seen)
    return parts


# ---------------------------------------------------------------------- workers (child processes)
def worker_sidecar(a: argparse.Namespace) -> dict[str, Any]:
    import logging

    from driftsentinel.schemas.config import load_config
    from driftsentinel.stream.checkpoint import encode_state
    from driftsentinel.stream.consumer import Sidecar

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    tag = uuid.uuid4().hex[:8]
    overrides: dict[str, Any] = {
        "kafka.bootstrap_servers": a.bootstrap,
        "kafka.input_topic": a.topic,
        "kafka.alerts_topic": a.alerts_topic or f"{a.topic}-alerts-{tag}",
        "kafka.dlq_topic": f"{a.topic}-dlq-{tag}",
        "kafka.state_topic": f"{a.topic}-state-{tag}",
        "kafka.group_id": f"bench-{tag}",
        "kafka.instance_id": f"bench-{tag}",
        "metrics_host": "127.0.0.1",
        "metrics_port": 0,
        "batch_size": a.batch_size,
        "max_events": a.max_events,
        "idle_exit": a.idle_exit,
    }
    if a.reference:  # the estimation A/B (benchmarks/estimation_ab.py)
        overrides["reference"] = a.reference
    if a.performance:
        overrides["detectors.performance.enabled"] = a.performance == "on"
    n_segments = _segment_counts(a.segments)[0] if a.segments else 0
    if n_segments:  # the segments scenario: one key, the events' categorical feature SEGMENT_FIELD
        overrides["detectors.segments"] = {"keys": [SEGMENT_FIELD], "max_segments": n_segments}
    config = load_config(None, overrides)
    rss_before = _rss_now()
    alerts = 0

    def on_alert(_: Any) -> None:
        nonlocal alerts
        alerts += 1

    if a.gc_freeze:  # what-if (not the shipped configuration): start-up objects out of the GC's view
        import gc

        start_up = Sidecar._start_up

        def frozen_start_up(self: Sidecar) -> None:
            start_up(self)
            gc.freeze()

        Sidecar._start_up = frozen_start_up  # type: ignore[method-assign]
    sidecar = Sidecar(config, on_alert=on_alert)
    sidecar.install_signal_handlers()
    times: dict[str, float] = {}
    banks: dict[str, Any] = {}
    segmented: dict[tuple[str, str], Any] = {}
    batches = 0
    inner = sidecar._process_batch

    def timed_batch(msgs: list) -> None:
        nonlocal batches
        t = time.perf_counter()
        if "first" not in times:
            times["first"], times["cpu_first"] = t, _cpu_s()
        inner(msgs)
        times["last"], times["cpu_last"] = time.perf_counter(), _cpu_s()
        batches += 1
        if batches == 1:  # after the first batch: numba cache loads, first checkpoint, warm-up are behind
            times["steady_from"], times["steady_events"] = times["last"], sidecar.consumed
        if batches == 1 and a.ready_signal:
            print("READY", file=sys.stderr, flush=True)
        for part in sidecar.partitions.values():
            banks.update(part.banks)
        for part in getattr(sidecar.engine, "_parts", {}).values():  # the engine's own partitions: their segments
            segmented.update({(m, k): v for m, by_key in part.segments.items() for k, v in by_key.items()})

    sidecar._process_batch = timed_batch  # type: ignore[method-assign]
    gc_time = _gc_clock()
    code = sidecar.run()
    peak_rss = _peak_rss()  # the sidecar's own; the size checks below encode another checkpoint
    secs = times.get("last", 0.0) - times.get("first", 0.0)
    n = sidecar.consumed
    rows = round(sum(s.value for m in sidecar.metrics.events.collect() for s in m.samples if s.name.endswith("_total")))
    n_features = sum(len(b.features) for b in banks.values())
    parts = _bank_parts(list(banks.values()))
    mem = sum(parts.values())  # the parts cover every array of the banks once
    ckpt = sum(len(encode_state({"banks": {m: b.state_dict()}})) for m, b in banks.items())
    return {
        "exit_code": code,
        "topics": [config.kafka.alerts_topic, config.kafka.dlq_topic, config.kafka.state_topic],
        "events": n,
        "batches": batches,
        "seconds": round(secs, 3),
        "events_per_s": round(n / secs) if secs > 0 else None,
        "rows": rows,  # events, counting every row of a columnar message
        "rows_per_s": round(rows / secs) if secs > 0 else None,
        "steady_events_per_s": (
            round((n - times["steady_events"]) / (times["last"] - times["steady_from"])) if batches > 1 else None
        ),
        "cpu_seconds": round(times.get("cpu_last", 0.0) - times.get("cpu_first", 0.0), 3),
        "gc_seconds": round(gc_time["seconds"], 3),
        "gc_collections_by_generation": gc_time["count"],
        "alerts": alerts,
        "aborted_transactions": round(
            sum(
                s.value
                for m in sidecar.metrics.transaction_aborts.collect()
                for s in m.samples
                if s.name.endswith("_total")
            )
        ),
        "features": n_features,
        "segment_banks": sum(len(v.banks) for v in segmented.values()),
        "peak_rss_bytes": peak_rss,
        "rss_before_run_bytes": rss_before,
        "bank_array_bytes": mem,
        "bank_checkpoint_bytes": ckpt,
        "bank_array_bytes_per_feature": round(mem / n_features) if n_features else None,
        "bank_bytes_per_feature_by_part": {k: round(v / n_features) for k, v in parts.items()} if n_features else {},
        "bank_checkpoint_bytes_per_feature": round(ckpt / n_features) if n_features else None,
    }


def _assigned_consumer(bootstrap: str, topic: str, **extra: Any) -> Any:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            **extra,
        }
    )
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    return c


def worker_ceiling(a: argparse.Namespace) -> dict[str, Any]:
    import msgspec

    decode = msgspec.json.decode
    c = _assigned_consumer(a.bootstrap, a.topic)
    n, first, last, cpu0, cpu = 0, 0.0, 0.0, 0.0, 0.0
    while n < a.max_events:
        msgs = c.consume(num_messages=min(a.batch_size, a.max_events - n), timeout=5.0)
        if not msgs:
            break
        if not first:
            first, cpu0 = time.perf_counter(), _cpu_s()
        for m in msgs:
            if m.error() is None:
                decode(m.value())
                n += 1
        last = time.perf_counter()
        cpu = _cpu_s() - cpu0
    c.close()
    return {
        "events": n,
        "seconds": round(last - first, 3),
        "events_per_s": round(n / (last - first)),
        "cpu_seconds": round(cpu, 3),
        "decoder": "msgspec.json.decode (untyped)",
        "peak_rss_bytes": _peak_rss(),
    }


def worker_naive(a: argparse.Namespace) -> dict[str, Any]:
    from river.drift import ADWIN, PageHinkley

    from driftsentinel.schemas import BankConfig
    from driftsentinel.schemas.events import FeatureEvent

    cfg = BankConfig()
    adwin_kw = cfg.adwin.model_dump(exclude={"enabled"})
    ph_kw = cfg.page_hinkley.model_dump(exclude={"enabled"})
    detectors: dict[str, tuple[Any, Any]] = {}
    c = _assigned_consumer(a.bootstrap, a.topic, **{"enable.auto.commit": True})
    n, drifts, first, cpu0 = 0, 0, 0.0, 0.0
    while n < a.max_events:
        msg = c.poll(5.0)
        if msg is None:
            break
        if msg.error() is not None:
            continue
        if not first:
            first, cpu0 = time.perf_counter(), _cpu_s()
        event = FeatureEvent.model_validate_json(msg.value())
        for name, value in event.features.items():
            if value is None or isinstance(value, str):
                continue
            pair = detectors.get(name)
            if pair is None:
                pair = detectors[name] = (ADWIN(**adwin_kw), PageHinkley(**ph_kw))
            for det in pair:
                det.update(float(value))
                if det.drift_detected:
                    drifts += 1
        n += 1
    secs, cpu = time.perf_counter() - first, _cpu_s() - cpu0
    c.close()
    return {
        "events": n,
        "seconds": round(secs, 3),
        "events_per_s": round(n / secs),
        "drifts": drifts,
        "cpu_seconds": round(cpu, 3),
        "peak_rss_bytes": _peak_rss(),
    }


WORKERS = {"sidecar": worker_sidecar, "ceiling": worker_ceiling, "naive": worker_naive}


def _worker_cmd(kind: str, bootstrap: str, topic: str, max_events: int | None, **kw: Any) -> list[str]:
    cmd = [sys.executable, "-m", "benchmarks.pipeline", "--worker", kind, "--bootstrap", bootstrap, "--topic", topic]
    if max_events is not None:
        cmd += ["--max-events", str(max_events)]
    for k, v in kw.items():
        if v is None or v is False:
            continue
        cmd += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return cmd


def run_worker(
    kind: str, bootstrap: str, topic: str, max_events: int | None, py_spy: str | None = None, **kw: Any
) -> dict[str, Any]:
    cmd = _worker_cmd(kind, bootstrap, topic, max_events, **kw)
    if py_spy:  # sampling profiler (no tracing overhead, unlike setprofile-based ones)
        cmd = ["py-spy", "record", "--rate", "250", "--format", "raw", "--nonblocking", "-o", py_spy, "--", *cmd]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f"worker {kind} failed ({res.returncode}): {res.stdout[-1000:]} {res.stderr[-3000:]}")
    out = json.loads(lines[-1])
    CREATED.extend(out.pop("topics", []))
    return out


#: Topics the sidecar runs created (alerts, DLQ, state), deleted at the end of the run.
CREATED: list[str] = []


# ---------------------------------------------------------------------- latency
def measure_latency(bootstrap: str, rate: float, seconds: float, features: int, period_s: float) -> dict[str, Any]:
    """A sidecar fed at ``rate`` events/s; drift (+2 sigma on half the features) switched on
    and off every ``period_s``; latency = alert arrival (read_committed) - triggering event's ts."""
    from confluent_kafka import Producer

    topic = _kafka.new_topic(bootstrap, "bench-lat")
    alerts_topic = _kafka.new_topic(bootstrap, "bench-lat-alerts")
    pay = _kafka.Payloads(features, seed=11)
    n_pool = 20_000
    shift = np.zeros(features)
    shift[: max(features // 2, 1)] = 2.0
    pools = [pay.feature_blobs(n_pool), pay.feature_blobs(n_pool, shift)]
    producer = Producer({"bootstrap.servers": bootstrap, **_kafka.PRODUCER_CONF, "linger.ms": 5})
    key = _kafka.MODEL.encode()
    # Warm-up (references need 1,000 values per feature), before the sidecar starts.
    for i in range(3000):
        producer.produce(topic, pay.message(i, pools[0][i], time.time()), key)
    producer.flush(30)
    proc = subprocess.Popen(
        _worker_cmd("sidecar", bootstrap, topic, None, alerts_topic=alerts_topic, idle_exit=8, ready_signal=True),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if line.strip() == "READY":
                break
        else:
            raise RuntimeError("latency sidecar did not start")
        threading.Thread(target=lambda: proc.stderr.read(), daemon=True).start()  # type: ignore[union-attr]
        samples: list[tuple[float, str]] = []
        stop = threading.Event()
        ready = threading.Event()

        def read_alerts() -> None:
            c = _assigned_consumer(bootstrap, alerts_topic, **{"fetch.wait.max.ms": 10})
            ready.set()
            while not stop.is_set():
                msg = c.poll(0.05)
                if msg is None or msg.error() is not None:
                    continue
                arrived = time.time()
                doc = json.loads(msg.value())
                if doc.get("event_time") is not None:
                    samples.append((arrived - doc["event_time"], doc["status"]))
            c.close()

        reader = threading.Thread(target=read_alerts, daemon=True)
        reader.start()
        ready.wait(10)
        sent = 3000
        t0 = time.monotonic()
        while True:
            elapsed = time.monotonic() - t0
            if elapsed >= seconds:
                break
            phase = int(elapsed / period_s) % 2  # 0 normal, 1 drifted
            target = 3000 + int(elapsed * rate)
            pool = pools[phase]
            while sent < target:
                try:
                    producer.produce(topic, pay.message(sent, pool[sent % n_pool], time.time()), key)
                except BufferError:
                    producer.poll(0.01)
                    continue
                sent += 1
            producer.poll(0)
            time.sleep(0.001)
        producer.flush(30)
        produced_s = time.monotonic() - t0
        # alerts of the last events: until none has arrived for 3 s (at most 20 s, and not
        # before the first one: a lagging sidecar's alerts come late, all at once)
        quiet_until, seen = time.monotonic() + 3.0, len(samples)
        give_up = time.monotonic() + 20.0
        while time.monotonic() < give_up and (not samples or time.monotonic() < quiet_until):
            time.sleep(0.1)
            if len(samples) != seen:
                quiet_until, seen = time.monotonic() + 3.0, len(samples)
        stop.set()
        reader.join(10)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    lat = np.array([s for s, _ in samples])
    res: dict[str, Any] = {
        "target_rate_events_per_s": round(rate),
        "achieved_rate_events_per_s": round((sent - 3000) / produced_s),
        "seconds": round(produced_s, 1),
        "alerts": len(samples),
        "alerts_drift": sum(1 for _, s in samples if s == "drift"),
        "alerts_resolved": sum(1 for _, s in samples if s == "resolved"),
    }
    if lat.size:
        res.update(
            p50_s=round(float(np.percentile(lat, 50)), 4),
            p99_s=round(float(np.percentile(lat, 99)), 4),
            max_s=round(float(lat.max()), 4),
        )
    try:
        res["sidecar"] = json.loads(out.strip().splitlines()[-1])
        CREATED.extend(res["sidecar"].pop("topics", []))
    except (ValueError, IndexError):
        pass
    _kafka.delete_topics(bootstrap, [topic, alerts_topic])
    return res


def summarise_profile(path: str, top: int = 15) -> dict[str, Any]:
    """Share of the main thread's samples per function (inclusive) and per line (self), from
    py-spy's collapsed stacks, counted from the sidecar loop down."""
    incl: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if "_loop (stream/consumer.py" not in stack:
                continue  # start-up, shutdown, other threads
            n = int(count)
            total += n
            frames = stack.split(";")
            frames = frames[next(i for i, fr in enumerate(frames) if "_loop (stream/consumer.py" in fr) :]
            for fn in {fr.split(" (")[0] + " (" + fr.split(" (")[1].split(":")[0] + ")" for fr in frames if " (" in fr}:
                incl[fn] = incl.get(fn, 0) + n
            own[frames[-1]] = own.get(frames[-1], 0) + n

    def pick(d: dict[str, int]) -> dict[str, float]:
        return {k: round(v / total, 3) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]}

    return {"samples_in_loop": total, "inclusive_share": pick(incl), "self_share_by_line": pick(own)}


# ---------------------------------------------------------------------- main
# ---------------------------------------------------------------------- segments
#: The categorical feature the segments scenario keys its segments on.
SEGMENT_FIELD = "seg"


def _segment_counts(text: str) -> list[int]:
    """``--segments 0,10,50`` as counts; ``ValueError`` naming the problem."""
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--segments {text!r}: give segment counts separated by commas, e.g. 0,10,50") from None
    if not counts or any(c < 0 or c > 10_000 for c in counts):
        raise ValueError(f"--segments {text!r}: counts from 0 to 10,000 (detectors.segments.max_segments)")
    return counts


def preload_segmented(bootstrap: str, topic: str, events: int, features: int, values: int) -> dict[str, Any]:
    """``events`` FeatureEvents as :func:`_kafka.preload` makes them (+1 sd on f0..f2 half way) with
    one more, categorical, feature ``SEGMENT_FIELD``: one of ``values`` segments (``s0`` ..),
    uniformly at random."""
    pay = _kafka.Payloads(features)
    rng = np.random.default_rng(11)
    shift = np.zeros(features)
    shift[:3] = 1.0
    tags = [b'{"%s":"s%d",' % (SEGMENT_FIELD.encode(), i) for i in range(max(values, 1))]

    def produce() -> Any:
        chunk = 50_000
        for a in range(0, events, chunk):
            n = min(chunk, events - a)
            k = min(max(events // 2 - a, 0), n)
            blobs = pay.feature_blobs(k) + pay.feature_blobs(n - k, shift)
            which = rng.integers(0, len(tags), size=n).tolist()
            for i, (blob, w) in enumerate(zip(blobs, which, strict=True), start=a):
                yield pay.message(i, tags[w] + blob[1:], time.time())

    _, nbytes, secs = _kafka._send_all(bootstrap, topic, produce(), "preload")
    return {
        "events": events,
        "segment_values": values,
        "seconds": round(secs, 2),
        "mean_message_bytes": nbytes // events,
    }


def measure_segments(
    bootstrap: str, counts: list[int], events: int, features: int, batch_size: int = 4096
) -> dict[str, Any]:
    """The sidecar (default configuration, a fresh process each) on ``events`` events whose feature
    ``SEGMENT_FIELD`` takes N values, with ``detectors.segments: {keys: [seg], max_segments: N}``
    per N of ``counts`` (N = 0: no segments, on the topic of the largest N, so the events are the
    same), ``batch_size`` events per batch. Events/s (wall, first fetch to last commit), steady
    events/s, CPU seconds; the extra CPU per event over N = 0, and per segment bank."""
    top = max(counts)
    topics: dict[int, str] = {}
    out: dict[str, Any] = {
        "events": events,
        "features": features,
        "batch_size": batch_size,
        "field": SEGMENT_FIELD,
        "runs": {},
    }
    for n in sorted(set(counts), reverse=True):
        values = n or top
        if values not in topics:
            topics[values] = _kafka.new_topic(bootstrap, f"bench-seg{values}")
            out.setdefault("preload", {})[str(values)] = preload_segmented(
                bootstrap, topics[values], events, features, values
            )
        r = run_worker(
            "sidecar", bootstrap, topics[values], events, segments=str(n) if n else None, batch_size=batch_size
        )
        out["runs"][str(n)] = {
            "segment_values": values,
            "events_per_s": r["events_per_s"],
            "steady_events_per_s": r["steady_events_per_s"],
            "cpu_seconds": r["cpu_seconds"],
            "events_per_cpu_s": round(r["events"] / r["cpu_seconds"]) if r["cpu_seconds"] else None,
            "cpu_us_per_event": round(1e6 * r["cpu_seconds"] / r["events"], 2) if r["events"] else None,
            "batches": r["batches"],
            "segment_banks": r["segment_banks"],
            "alerts": r["alerts"],
            "peak_rss_bytes": r["peak_rss_bytes"],
        }
    base = out["runs"].get("0")
    if base and base["cpu_us_per_event"]:
        for n, run in out["runs"].items():
            if n != "0" and run["cpu_us_per_event"] and run["segment_banks"]:
                extra = run["cpu_us_per_event"] - base["cpu_us_per_event"]
                run["extra_cpu_us_per_event"] = round(extra, 2)
                # the segment banks' cost per event, per bank (constant if only their own work grows with N)
                run["extra_cpu_us_per_event_per_segment_bank"] = round(extra / run["segment_banks"], 3)
    out["topics"] = list(topics.values())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--naive-events", type=int, default=50_000)
    p.add_argument("--latency-seconds", type=float, default=30.0)
    p.add_argument("--scale-features", default="200,1000", help="comma-separated; '' to skip")
    p.add_argument("--scale-values", type=int, default=10_000_000, help="feature values per scale run")
    p.add_argument("--naive-values", type=int, default=2_000_000, help="feature values for the naive run at each scale")
    p.add_argument("--big-features", type=int, default=10_000, help="memory check at this many features (0: skip)")
    p.add_argument("--big-events", type=int, default=2_500)
    p.add_argument(
        "--columnar-rows",
        type=int,
        default=1_000,
        help="events per message of the columnar run (driftsentinel.columns/1; 0: skip)",
    )
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run, not the measurement)")
    p.add_argument("--profile", help="py-spy the sidecar run: collapsed stacks to this file, summary in the JSON")
    # worker mode (internal)
    p.add_argument("--worker", choices=sorted(WORKERS))
    p.add_argument("--bootstrap")
    p.add_argument("--topic")
    p.add_argument("--alerts-topic")
    p.add_argument("--max-events", type=int)
    p.add_argument("--idle-exit", type=float)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--ready-signal", action="store_true")
    p.add_argument("--gc-freeze", action="store_true", help="worker: gc.freeze() after start-up (what-if)")
    p.add_argument("--no-what-if", action="store_true", help="skip the gc.freeze() what-if run")
    p.add_argument(
        "--estimation-ab",
        action="store_true",
        help="only: events/s with live performance estimation off and on, alternately (benchmarks/estimation_ab.py)",
    )
    p.add_argument("--repeats", type=int, default=2, help="--estimation-ab: runs of each")
    p.add_argument("--reference", help="worker: reference profile")
    p.add_argument("--performance", choices=["on", "off"], help="worker: detectors.performance.enabled")
    p.add_argument(
        "--segments",
        help="only: the sidecar with detectors.segments of each of these segment counts, e.g. 0,10,50 "
        f"(events with a categorical feature {SEGMENT_FIELD!r} of that many values; 0: no segments)",
    )
    a = p.parse_args(argv)
    if a.segments is not None:
        try:
            _segment_counts(a.segments)
        except ValueError as e:  # one line, not argparse's usage block
            print(f"{p.prog}: error: {e}", file=sys.stderr)
            return 2
    if a.worker:
        print(json.dumps(WORKERS[a.worker](a)), flush=True)
        return 0
    if a.quick:  # smaller defaults; flags given explicitly still win
        p.set_defaults(
            events=30_000,
            naive_events=2_000,
            latency_seconds=6.0,
            scale_features="200",
            scale_values=1_000_000,
            big_features=0,
        )
        a = p.parse_args(argv)

    started = time.monotonic()
    out: dict[str, Any] = {
        "benchmark": "pipeline",
        "quick": a.quick,
        "events": a.events,
        "features": a.features,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
    }
    with _kafka.broker() as (bootstrap, own):
        out["broker"] = "started by the benchmark (stream.local_kafka)" if own else "KAFKA_BOOTSTRAP_SERVERS"
        if a.estimation_ab:
            from benchmarks import estimation_ab

            ab = estimation_ab.run(bootstrap, run_worker, a.events, a.features, a.repeats)
            out["estimation_ab"] = ab
            _kafka.delete_topics(bootstrap, [ab.pop("topic"), *CREATED])
            out["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
            print(json.dumps(out), flush=True)
            return 0
        if a.segments is not None:
            seg = measure_segments(bootstrap, _segment_counts(a.segments), a.events, a.features, a.batch_size)
            _kafka.delete_topics(bootstrap, [*seg.pop("topics"), *CREATED])
            out["segments"] = seg
            out["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
            print(json.dumps(out), flush=True)
            return 0
        topics = []
        topic = _kafka.new_topic(bootstrap, "bench-in")
        topics.append(topic)
        out["preload"] = _kafka.preload(bootstrap, topic, a.events, a.features, drift_at=a.events // 2)

        # A short first start fills numba's on-disk cache (as the first start of a deployed
        # sidecar does once); the measured runs then load compiled kernels instead of compiling.
        t = time.perf_counter()
        cold = run_worker("sidecar", bootstrap, topic, min(5_000, a.events))
        out["cold_start"] = {
            "events": cold["events"],
            "process_seconds": round(time.perf_counter() - t, 1),
            "first_batches_seconds": cold["seconds"],
            "note": "numba compiles the kernels here when its cache is cold; not in events_per_s",
        }
        sc = run_worker("sidecar", bootstrap, topic, a.events, py_spy=a.profile)
        if a.profile:
            out["profile"] = summarise_profile(a.profile)
        ceiling = run_worker("ceiling", bootstrap, topic, a.events)
        naive = run_worker("naive", bootstrap, topic, a.naive_events)
        eps = sc["events_per_s"]
        out.update(
            events_per_s=eps,
            steady_events_per_s=sc["steady_events_per_s"],
            feature_values_per_s=eps * a.features,
            naive_events_per_s=naive["events_per_s"],
            naive_events=naive["events"],
            naive_note="naive measured on the first naive_events events of the same topic",
            decode_ceiling_events_per_s=ceiling["events_per_s"],
            ratio_vs_naive=round(eps / naive["events_per_s"], 1),
            events_per_cpu_s=round(sc["events"] / sc["cpu_seconds"]),
            naive_events_per_cpu_s=round(naive["events"] / naive["cpu_seconds"]),
            decode_ceiling_events_per_cpu_s=round(ceiling["events"] / ceiling["cpu_seconds"]),
            share_of_ceiling=round(eps / ceiling["events_per_s"], 3),
            peak_rss_bytes=sc["peak_rss_bytes"],
            sidecar=sc,
            ceiling=ceiling,
            naive=naive,
        )
        if not a.no_what_if:
            wi = run_worker("sidecar", bootstrap, topic, a.events, gc_freeze=True)
            out["what_if_gc_freeze_after_startup"] = {
                "note": (
                    "NOT the shipped sidecar: the same run with gc.freeze() after start-up (see docs/performance.md)"
                ),
                "events_per_s": wi["events_per_s"],
                "events_per_cpu_s": round(wi["events"] / wi["cpu_seconds"]),
                "gc_seconds": wi["gc_seconds"],
                "share_of_ceiling": round(wi["events_per_s"] / ceiling["events_per_s"], 3),
            }
        # Optional compact format (issue 7, item 4), reported apart: the same kind of stream as
        # columnar messages of --columnar-rows events each (msgpack, float64 columns).
        if a.columnar_rows:
            name = _kafka.new_topic(bootstrap, "bench-cols")
            topics.append(name)
            pre = _kafka.preload_columnar(
                bootstrap, name, a.events, a.features, a.columnar_rows, drift_at=a.events // 2
            )
            r = run_worker("sidecar", bootstrap, name, int(pre["messages"]))
            out["columnar"] = {
                "rows_per_message": a.columnar_rows,
                "messages": pre["messages"],
                "mean_message_bytes": pre["mean_message_bytes"],
                "events": r["rows"],
                "events_per_s": r["rows_per_s"],
                "feature_values_per_s": r["rows_per_s"] * a.features,
                "ratio_vs_json": round(r["rows_per_s"] / eps, 1),
                "ratio_vs_naive": round(r["rows_per_s"] / naive["events_per_s"], 1),
                "alerts": r["alerts"],
                "cpu_seconds": r["cpu_seconds"],
                "peak_rss_bytes": r["peak_rss_bytes"],
            }
        lat = measure_latency(
            bootstrap, eps / 2, a.latency_seconds, a.features, period_s=min(5.0, a.latency_seconds / 3)
        )
        out["latency"] = lat
        out["latency_p50_s"] = lat.get("p50_s")
        out["latency_p99_s"] = lat.get("p99_s")

        scale: dict[str, Any] = {}
        for f in [int(x) for x in a.scale_features.split(",") if x.strip()]:
            n = max(a.scale_values // f, 5_000)
            name = _kafka.new_topic(bootstrap, f"bench-f{f}")
            topics.append(name)
            pre = _kafka.preload(bootstrap, name, n, f, drift_at=n // 2)
            r = run_worker("sidecar", bootstrap, name, n)
            nv = run_worker("naive", bootstrap, name, min(n, max(a.naive_values // f, 500)))
            scale[str(f)] = {
                "events": n,
                "batches": r["batches"],
                "events_per_s": r["events_per_s"],
                "naive_events_per_s": nv["events_per_s"],
                "naive_events": nv["events"],
                "ratio_vs_naive": round(r["events_per_s"] / nv["events_per_s"], 1),
                "feature_values_per_s": r["events_per_s"] * f,
                "steady_events_per_s": r["steady_events_per_s"],
                "steady_feature_values_per_s": (r["steady_events_per_s"] or 0) * f,
                "gc_seconds": r["gc_seconds"],
                "cpu_seconds": r["cpu_seconds"],
                "bank_bytes_per_feature_by_part": r["bank_bytes_per_feature_by_part"],
                "peak_rss_bytes": r["peak_rss_bytes"],
                "mean_message_bytes": pre["mean_message_bytes"],
                "bank_array_bytes_per_feature": r["bank_array_bytes_per_feature"],
                "bank_checkpoint_bytes_per_feature": r["bank_checkpoint_bytes_per_feature"],
            }
        if a.big_features:  # the default configuration (no batch-size or other flags), as `driftsentinel run`
            f, n = a.big_features, a.big_events
            name = _kafka.new_topic(bootstrap, f"bench-f{f}")
            topics.append(name)
            pre = _kafka.preload(bootstrap, name, n, f, drift_at=None)
            r = run_worker("sidecar", bootstrap, name, n)
            scale[str(f)] = {
                "events": n,
                "batches": r["batches"],
                "mean_message_bytes": pre["mean_message_bytes"],
                "peak_rss_bytes": r["peak_rss_bytes"],
                "fits_1gib": r["peak_rss_bytes"] < 2**30,
                "peak_rss_bytes_per_feature": round(r["peak_rss_bytes"] / f),
                "rss_before_run_bytes": r["rss_before_run_bytes"],
                "events_per_s": r["events_per_s"],
                "feature_values_per_s": r["events_per_s"] * f,
                "bank_array_bytes": r["bank_array_bytes"],
                "bank_array_bytes_per_feature": r["bank_array_bytes_per_feature"],
                "bank_bytes_per_feature_by_part": r["bank_bytes_per_feature_by_part"],
                "bank_checkpoint_bytes": r["bank_checkpoint_bytes"],
                "aborted_transactions": r["aborted_transactions"],
            }
        out["scale"] = scale
        _kafka.delete_topics(bootstrap, topics + sorted(set(CREATED) - {None}))
    out["goals"] = {
        k: {
            "goal": g,
            "measured": out.get(k),
            "met": out.get(k) is not None and (out[k] <= g if k == "latency_p99_s" else out[k] >= g),
        }
        for k, g in GOALS.items()
    }
    out["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out["total_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
