"""Detector kernels vs river, one value at a time: `python -m benchmarks.detectors [--quick]`.

Prints ONE JSON object. For `adwin`, `page_hinkley` and `bank` (ADWIN + Page-Hinkley +
FeatureSketch together) on F features x N values (N(0,1) with a few mean shifts, fed in
batches of 4,096 rows), both sides measured in this run: updates per second (values fed
to each side per second; a value is one (row, feature) cell), the speedup, parity (the
hit arrays compared in this run; "river" is the reference backend, river's detectors
behind the same batch interface; `river_direct_*` is river in a bare loop with no wrapper
at all, for comparison), first-call warm-up (`compile_s`, from numba's on-disk
cache when warm; `compile_cold_s` in a fresh process with an empty cache) and state size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

BATCH = 4096


def make_data(n: int, F: int, seed: int = 42) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 1.0, (n, F))
    for f in range(F):
        for _ in range(3):  # a few shifts per feature
            at = int(rng.integers(n // 10, n))
            X[at:, f] += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0)
    return X


def feed(dets, X: np.ndarray) -> list[np.ndarray]:
    hits: list[list[np.ndarray]] = [[] for _ in dets]
    for a in range(0, len(X), BATCH):
        chunk = X[a : a + BATCH]
        for j, d in enumerate(dets):
            h = d.update(chunk)
            if h is not None:
                hits[j].append(h + [a, 0])
    return [np.concatenate(h) if h else np.empty((0, 2), np.int64) for h in hits]


def timed_pair(makers: tuple, X: np.ndarray, repeats: int) -> list[tuple[float, list[np.ndarray], list]]:
    """Best-of-``repeats`` time, hits and detectors for each maker (kernel, river).

    The runs are interleaved (kernel, river, kernel, river, ...), so a noisy stretch of
    the machine costs both sides alike instead of one side's every repeat.
    """
    best = [float("inf")] * len(makers)
    outs: list[list[np.ndarray]] = [[] for _ in makers]
    dets: list[list] = [[] for _ in makers]
    for _ in range(repeats):
        for i, make in enumerate(makers):
            dets[i] = make()
            t = time.perf_counter()
            outs[i] = feed(dets[i], X)
            best[i] = min(best[i], time.perf_counter() - t)
    return list(zip(best, outs, dets, strict=True))


def river_direct_seconds(cls, X: np.ndarray) -> float:
    """river with no wrapper at all: one detector per feature, a plain loop of update() calls."""
    cols = X.T.tolist()
    t = time.perf_counter()
    for col in cols:
        det = cls()
        upd = det.update
        for x in col:
            upd(x)
            if det.drift_detected:
                pass
    return time.perf_counter() - t


def state_bytes(det) -> int:
    import msgpack

    return len(msgpack.packb(det.to_builtin_state()))


def memory_bytes(det) -> int:
    return sum(v.nbytes for v in vars(det).values() if isinstance(v, np.ndarray))


def import_seconds() -> float | None:
    """``import detectors`` in a fresh interpreter (numba and numpy included)."""
    code = "import time; t=time.perf_counter(); import detectors; print(time.perf_counter()-t)"
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
        return round(float(res.stdout.strip().splitlines()[-1]), 3)
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def cold_compile_seconds() -> float | None:
    code = (
        "import time, numpy as np; t=time.perf_counter();"
        "from detectors import ADWIN, PageHinkley, FeatureSketch;"
        "X=np.zeros((64, 2)); [c(2).update(X) for c in (ADWIN, PageHinkley, FeatureSketch)];"
        "print(time.perf_counter()-t)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
        try:
            res = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600, check=True
            )
            return round(float(res.stdout.strip().splitlines()[-1]), 3)
        except (subprocess.SubprocessError, ValueError, IndexError):
            return None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 features x 20,000 values")
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--values", type=int, default=None, help="values per feature (default 200,000)")
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of each side (kernel, river), interleaved; the best of each is reported",
    )
    ap.add_argument(
        "--no-cold-compile",
        action="store_true",
        help="skip compile_cold_s (a fresh process compiling into an empty cache, ~8 s)",
    )
    args = ap.parse_args(argv)
    F = args.features
    n = args.values or (20_000 if args.quick else 200_000)

    import numba
    import river

    from driftsentinel.detectors import ADWIN, FeatureSketch, PageHinkley, RiverADWIN, RiverPageHinkley

    import_s = import_seconds()

    X = make_data(n, F)
    warm = X[:BATCH]
    compile_s = {}
    for name, cls in (("adwin", ADWIN), ("page_hinkley", PageHinkley), ("sketch", FeatureSketch)):
        t = time.perf_counter()
        cls(F).update(warm)
        compile_s[name] = round(time.perf_counter() - t, 4)

    values = n * F
    result: dict = {
        "config": {
            "features": F,
            "values_per_feature": n,
            "batch_rows": BATCH,
            "updates": values,
            "repeats": args.repeats,
            "data": "N(0,1), 3 mean shifts per feature",
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "river": river.__version__,
            "loadavg_1m": round(os.getloadavg()[0], 2),
        },
        "import_s": import_s,
    }

    cases = {
        "adwin": (lambda: [ADWIN(F)], lambda: [RiverADWIN(F)], compile_s["adwin"]),
        "page_hinkley": (lambda: [PageHinkley(F)], lambda: [RiverPageHinkley(F)], compile_s["page_hinkley"]),
        "bank": (
            lambda: [ADWIN(F), PageHinkley(F), FeatureSketch(F)],
            lambda: [RiverADWIN(F), RiverPageHinkley(F), FeatureSketch(F)],
            round(sum(compile_s.values()), 4),
        ),
    }
    for name, (make_k, make_r, comp) in cases.items():
        (tk, hk, dk), (tr, hr, _) = timed_pair((make_k, make_r), X, args.repeats)
        n_cmp = 2 if name == "bank" else 1  # the detectors' hits (the sketch returns none)
        parity = all(np.array_equal(a, b) for a, b in zip(hk[:n_cmp], hr[:n_cmp], strict=True))
        detectors_ = [d for d in dk if hasattr(d, "to_builtin_state")]
        entry = {
            "river_updates_per_s": round(values / tr),
            "kernel_updates_per_s": round(values / tk),
            "speedup": round(tr / tk, 1),
            "parity": bool(parity),
            "detections": int(sum(len(h) for h in hk[:n_cmp])),
            "river_ns_per_update": round(tr / values * 1e9, 1),
            "kernel_ns_per_update": round(tk / values * 1e9, 2),
            "compile_s": comp,
            "bytes_per_feature": round(sum(state_bytes(d) for d in detectors_) / F),
            "memory_bytes_per_feature": round(sum(memory_bytes(d) for d in detectors_) / F),
        }
        if name != "bank":
            from river import drift

            td = river_direct_seconds(drift.ADWIN if name == "adwin" else drift.PageHinkley, X)
            entry["river_direct_updates_per_s"] = round(values / td)
            entry["speedup_vs_river_direct"] = round(td / tk, 1)
        result[name] = entry
    result["compile_cold_s"] = None if args.no_cold_compile else cold_compile_seconds()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
