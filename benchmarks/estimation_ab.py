"""Sidecar events/s with live performance estimation on and off (`python -m benchmarks.pipeline --estimation-ab`).

One topic of ``--events`` FeatureEvents of ``--features`` N(0, 1) features whose ``prediction``
is a binary classifier's score (``sigmoid(2 f0)``), and one reference profile: the features,
``@prediction`` and a performance reference for the model (fitted on 40,000 labelled rows
of the same kind). The real sidecar (the pipeline benchmark's worker) runs over it with
``detectors.performance.enabled`` false and true, ``--repeats`` times in ABBA order (off-on,
on-off, ...: a load that drifts during the session cancels out) in the same session;
everything else (the profile's window tests, the change detectors, transactions) is the same
in both. Prints the events/s (wall and per CPU second) of every run and the ratios of the
medians (on / off).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from benchmarks import _kafka

MODEL = _kafka.MODEL


def _scores(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-2.0 * x[:, 0]))


def write_profile(path: Path, features: int, window: int = 5000, seed: int = 11) -> None:
    """A profile of the stream below, with the model's performance reference."""
    from driftsentinel.detectors.performance import fit_classification_reference
    from driftsentinel.detectors.profile import build_profile

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((40_000, features))
    p = _scores(x)
    y = (rng.random(p.size) < p).astype(int)
    columns: dict[str, Any] = {f"f{j}": x[:, j].tolist() for j in range(features)}
    columns["@prediction"] = p.tolist()
    profile = build_profile(columns, source="benchmark")
    ref = fit_classification_reference(p, y, window=window)
    path.write_text(profile.model_copy(update={"performance": {MODEL: ref}}).model_dump_json())


def preload_scored(bootstrap: str, topic: str, events: int, features: int, chunk: int = 50_000) -> dict[str, Any]:
    """FeatureEvents with a ``prediction`` score, as fast as the producer goes."""
    rng = np.random.default_rng(7)
    enc = msgspec.json.Encoder().encode
    names = _kafka.feature_names(features)

    def values() -> Iterator[bytes]:
        for a in range(0, events, chunk):
            x = rng.standard_normal((min(chunk, events - a), features))
            p = _scores(x)
            for i, (row, score) in enumerate(zip(x.tolist(), p.tolist(), strict=True), start=a):
                blob = enc(dict(zip(names, row, strict=True)))
                yield b'{"model":"%s","ts":%r,"id":"e-%d","prediction":%r,"features":%s}' % (
                    MODEL.encode(),
                    time.time(),
                    i,
                    score,
                    blob,
                )

    _, nbytes, secs = _kafka._send_all(bootstrap, topic, values(), "preload_scored")
    return {"events": events, "seconds": round(secs, 2), "mean_message_bytes": round(nbytes / events)}


def run(bootstrap: str, run_worker: Any, events: int, features: int, repeats: int) -> dict[str, Any]:
    """Alternate off/on ``repeats`` times; events/s of each run and the ratio of the medians."""
    topic = _kafka.new_topic(bootstrap, "bench-estimation")
    out: dict[str, Any] = {"events": events, "features": features, "topic": topic}
    out["preload"] = preload_scored(bootstrap, topic, events, features)
    with tempfile.TemporaryDirectory(prefix="ds-bench-estimation-") as tmp:
        profile = Path(tmp) / "profile.json"
        write_profile(profile, features)
        run_worker("sidecar", bootstrap, topic, min(5_000, events), reference=str(profile))  # numba cache warm
        runs: dict[str, list[float]] = {"off": [], "on": []}
        cpu: dict[str, list[float]] = {"off": [], "on": []}  # events per CPU second: steadier on a shared machine
        windows: dict[str, list[int]] = {"off": [], "on": []}
        for k in range(repeats):
            for mode in ("off", "on") if k % 2 == 0 else ("on", "off"):  # ABBA: a drifting load cancels out
                r = run_worker("sidecar", bootstrap, topic, events, reference=str(profile), performance=mode)
                runs[mode].append(r["events_per_s"])
                cpu[mode].append(round(r["events"] / r["cpu_seconds"]))
                windows[mode].append(r["alerts"])
    out["events_per_s"] = runs
    out["events_per_cpu_s"] = cpu
    out["cpu_ratio_on_off_median"] = round(statistics.median(cpu["on"]) / statistics.median(cpu["off"]), 4)
    out["alerts"] = windows
    out["ratio_on_off_median"] = round(statistics.median(runs["on"]) / statistics.median(runs["off"]), 4)
    out["ratio_on_off_best"] = round(max(runs["on"]) / max(runs["off"]), 4)
    return out
