"""Drift per segment: `python -m benchmarks.segments [--quick]`. Prints ONE JSON object.

Scenarios (the core, :mod:`driftsentinel.detectors.segments`, default configuration unless said):

* ``opposite_shifts``: six segments (45/30/10/5/5/5 % of traffic); half way, feature f0
  moves +1 sd in one 5 % segment and -1 sd in another (the overall mean does not move).
  Per seed: which segments alerted on f0 (change detectors), the delay of each in events of
  the stream and in values of the segment, and whether the overall bank alerted on f0.
* ``mix_shift``: three segments 50/30/20 -> 30/30/40 half way, every segment's
  distribution unchanged (its own level): mix alerts and per-segment feature alerts.
* ``stationary``: 20 features x 50 segments, no change: drift episodes per million events
  per feature of the overall bank without segments, and with segments of the overall bank
  (half the budget), the segment family (the other half) and both together (default
  configuration, and a sensitive one, ADWIN delta 0.05 and Page-Hinkley threshold 14, where
  there are false alarms to count), and of a family of banks configured as the overall one.
* ``overall_delay``: the cost of the overall bank's half budget: its delay on a step shift
  of f0 in the whole stream, without and with segments configured.
* ``throughput``: events/s of the overall bank alone and with the 50 segment banks (20
  features, 4,096-event batches), per segment count.
* ``memory``: bytes of a segment bank per feature (its checkpointed state, and Python heap
  measured by tracemalloc) after warm-up.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from typing import Any

import numpy as np

from driftsentinel.detectors import segments as seg_mod
from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.segments import SegmentedBanks, overall_bank_config
from driftsentinel.schemas import BankConfig, FeatureBatch

BATCH = 4096
NAMES = np.array(["DE", "FR", "IT", "ES", "NL", "PL"], dtype=object)


def _batches(x: np.ndarray, seg: np.ndarray, size: int = BATCH) -> Any:
    names = [f"f{j}" for j in range(x.shape[1])]
    for a in range(0, x.shape[0], size):
        b = min(a + size, x.shape[0])
        yield (
            a,
            FeatureBatch(
                names, x[a:b], np.arange(a, b), np.full(b - a, np.nan), cat_names=["country"], cat_values=seg[a:b, None]
            ),
        )


def opposite_shifts(seeds: int, n: int) -> dict[str, Any]:
    cfg = BankConfig.model_validate({"segments": ["country"]})
    runs: list[dict[str, Any]] = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        seg = NAMES[rng.choice(6, size=n, p=[0.45, 0.30, 0.10, 0.05, 0.05, 0.05])]
        x = rng.normal(size=(n, 5))
        late = np.arange(n) >= n // 2
        x[late & (seg == "NL"), 0] += 1.0
        x[late & (seg == "PL"), 0] -= 1.0
        banks, overall = SegmentedBanks(("country",), cfg), DetectorBank(overall_bank_config(cfg))
        first: dict[str, int] = {}
        overall_f0 = False
        for a, batch in _batches(x, seg):
            for s in banks.update(batch):
                sig = s.signal
                if sig.status == "drift" and sig.feature == "f0" and s.value is not None:
                    first.setdefault(s.value, a + sig.row)
            overall_f0 |= any(s.status == "drift" and s.feature == "f0" for s in overall.update(batch))
        delays = {}
        for value, row in first.items():
            in_seg = int(((seg[n // 2 : row + 1]) == value).sum())
            delays[value] = {"events": row - n // 2, "segment_values": in_seg}
        runs.append({"seed": seed, "alerted": sorted(first), "delays": delays, "overall_alerted_f0": overall_f0})
    named = [r for r in runs if set(r["alerted"]) == {"NL", "PL"}]
    seg_delays = [d["segment_values"] for r in runs for v, d in r["delays"].items() if v in ("NL", "PL")]
    return {
        "events": n,
        "seeds": seeds,
        "both_named_only": len(named),
        "median_delay_segment_values": float(np.median(seg_delays)) if seg_delays else None,
        "median_delay_events": float(
            np.median([d["events"] for r in runs for v, d in r["delays"].items() if v in ("NL", "PL")])
        )
        if seg_delays
        else None,
        "overall_alerted_f0": sum(r["overall_alerted_f0"] for r in runs),
        "runs": runs,
    }


def mix_shift(seeds: int, n: int) -> dict[str, Any]:
    cfg = BankConfig.model_validate({"segments": ["country"]})
    runs = []
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        p = np.where(np.arange(n)[:, None] < n // 2, [0.5, 0.3, 0.2], [0.3, 0.3, 0.4])
        codes = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
        x = rng.normal(size=(n, 5)) + codes[:, None] * 2.0
        banks = SegmentedBanks(("country",), cfg)
        mix, feature = [], 0
        for a, batch in _batches(x, NAMES[codes]):
            for s in banks.update(batch):
                if s.signal.status != "drift":
                    continue
                if s.value is None:
                    mix.append(a + s.signal.row - n // 2)
                else:
                    feature += 1
        runs.append({"seed": seed, "mix_alerts": len(mix), "mix_delay_events": mix, "segment_feature_alerts": feature})
    return {"events": n, "seeds": seeds, "runs": runs}


def _no_budget(config: BankConfig, n_segments: int, fields: Any = ()) -> BankConfig:
    """Every segment bank configured as the overall bank (the budget not shared)."""
    return config.model_copy(
        update={"exclude": [*config.exclude, *fields], "segments": config.segments.model_copy(update={"keys": []})}
    )


def stationary(n: int, features: int = 20, segments: int = 50) -> dict[str, Any]:
    """False alarms per million events per feature: the overall bank without segments, and with
    segments the overall bank (half the budget) and the segment family (the other half), their
    total; and the family with every segment bank configured as the overall bank (no sharing)."""
    rng = np.random.default_rng(42)
    x = rng.normal(size=(n, features))
    seg = np.array([f"s{i}" for i in range(segments)], dtype=object)[rng.integers(0, segments, size=n)]
    per_m = 1e6 / n / features
    out: dict[str, Any] = {"events": n, "features": features, "segments": segments}
    sensitive = {"adwin": {"delta": 0.05}, "page_hinkley": {"threshold": 14.0}}
    for name, extra in (("default", {}), ("sensitive", sensitive)):
        plain = BankConfig.model_validate(extra)
        cfg = BankConfig.model_validate({"segments": {"keys": ["country"], "max_segments": segments}, **extra})
        original = seg_mod.segment_bank_config
        seg_mod.segment_bank_config = _no_budget
        try:
            unshared = SegmentedBanks(("country",), cfg)
        finally:
            seg_mod.segment_bank_config = original
        without, overall, banks = (
            DetectorBank(plain),
            DetectorBank(overall_bank_config(cfg)),
            SegmentedBanks(("country",), cfg),
        )
        counts = {"without": 0, "overall": 0, "segments": 0, "unshared": 0}
        by_detector: dict[str, dict[str, int]] = {k: {} for k in counts}

        def count(kind: str, sigs: Any, counts: dict[str, int] = counts, by: dict[str, Any] = by_detector) -> None:
            for sig in sigs:
                if sig.status == "drift":
                    counts[kind] += 1
                    by[kind][sig.detector] = by[kind].get(sig.detector, 0) + 1

        for _, batch in _batches(x, seg):
            count("without", without.update(batch))
            count("overall", overall.update(batch))
            count("segments", (s.signal for s in banks.update(batch) if s.value is not None))
            count("unshared", (s.signal for s in unshared.update(batch) if s.value is not None))
        out[name] = {
            "without_segments_per_million_per_feature": counts["without"] * per_m,
            "with_segments_overall_per_million_per_feature": counts["overall"] * per_m,
            "with_segments_family_per_million_per_feature": counts["segments"] * per_m,
            "with_segments_total_per_million_per_feature": (counts["overall"] + counts["segments"]) * per_m,
            "family_unshared_per_million_per_feature": counts["unshared"] * per_m,
            "alarms": counts,
            "alarms_by_detector": by_detector,
        }
    return out


def overall_delay(seeds: int, n: int, shifts: tuple[float, ...] = (0.25, 0.5, 1.0)) -> dict[str, Any]:
    """The cost of the overall bank's half budget: the delay (events after the change) of its first
    drift on f0 after a shift of f0 in the whole stream half way, default configuration, without
    segments (the whole budget) and with them (:func:`overall_bank_config`: half)."""
    out: dict[str, Any] = {"events": n, "seeds": seeds}
    full = BankConfig()
    half = overall_bank_config(BankConfig.model_validate({"segments": ["country"]}))
    for shift in shifts:
        delays: dict[str, list[float]] = {"without_segments": [], "with_segments": []}
        for seed in range(seeds):
            rng = np.random.default_rng(500 + seed)
            x = rng.normal(size=(n, 5))
            x[n // 2 :, 0] += shift
            seg = np.full(n, "a", dtype=object)
            for name, cfg in (("without_segments", full), ("with_segments", half)):
                bank, first = DetectorBank(cfg), None
                for a, batch in _batches(x, seg):
                    for sig in bank.update(batch):
                        if first is None and sig.status == "drift" and sig.feature == "f0" and a + sig.row >= n // 2:
                            first = a + sig.row - n // 2
                    if first is not None:
                        break
                delays[name].append(float("inf") if first is None else float(first))
        out[f"shift_{shift}_sd"] = {
            name: {"median_delay_events": float(np.median(d)), "detected": int(np.isfinite(d).sum())}
            for name, d in delays.items()
        }
    return out


def throughput(n: int, features: int = 20, counts: tuple[int, ...] = (10, 50)) -> dict[str, Any]:
    """Steady state: the first quarter of the stream (every warm-up) is not timed; CPU time of
    this process (``time.process_time``), so other load on the machine does not count."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, features))
    out: dict[str, Any] = {"events_timed": n - n // 4, "features": features, "batch": BATCH, "clock": "process_time"}

    def rate(update: Any, seg: np.ndarray) -> float:
        batches = list(_batches(x, seg))
        warm = len(batches) // 4
        for _, batch in batches[:warm]:
            update(batch)
        t0 = time.process_time()
        for _, batch in batches[warm:]:
            update(batch)
        return sum(b.n_rows for _, b in batches[warm:]) / (time.process_time() - t0)

    overall = rate(DetectorBank(BankConfig()).update, np.full(n, "a", dtype=object))
    out["overall_events_per_s"] = overall
    for s in counts:
        seg = np.array([f"s{i}" for i in range(s)], dtype=object)[rng.integers(0, s, size=n)]
        cfg = BankConfig.model_validate({"segments": {"keys": ["country"], "max_segments": s}})
        only = rate(SegmentedBanks(("country",), cfg).update, seg)
        out[f"segments_{s}_events_per_s"] = only
        out[f"overall_plus_{s}_segments_events_per_s"] = 1.0 / (1.0 / only + 1.0 / overall)
    return out


def memory(features: int = 20, segments: int = 50, n: int = 200_000) -> dict[str, Any]:
    from driftsentinel.stream.checkpoint import encode_state

    rng = np.random.default_rng(2)
    x = rng.normal(size=(n, features))
    seg = np.array([f"s{i}" for i in range(segments)], dtype=object)[rng.integers(0, segments, size=n)]
    cfg = BankConfig.model_validate({"segments": {"keys": ["country"], "max_segments": segments}})
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    banks = SegmentedBanks(("country",), cfg)
    for _, batch in _batches(x, seg):
        banks.update(batch)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    heap = sum(s.size_diff for s in after.compare_to(before, "filename"))
    state = len(encode_state(banks.state_dict()))
    n_banks = len(banks.banks)
    return {
        "segments": segments,
        "features": features,
        "banks": n_banks,
        "heap_bytes_per_segment_feature": heap / n_banks / features,
        "state_bytes_per_segment_feature": state / n_banks / features,
    }


SCENARIOS = ("opposite_shifts", "mix_shift", "stationary", "overall_delay", "throughput", "memory")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="run only this scenario (repeatable)")
    args = p.parse_args(argv)
    q = args.quick
    sizes: dict[str, Any] = {
        "opposite_shifts": lambda: opposite_shifts(2 if q else 10, 60_000 if q else 200_000),
        "mix_shift": lambda: mix_shift(2 if q else 5, 60_000 if q else 200_000),
        "stationary": lambda: stationary(50_000 if q else 1_000_000),
        "overall_delay": lambda: overall_delay(3 if q else 10, 40_000 if q else 100_000),
        "throughput": lambda: throughput(50_000 if q else 400_000),
        "memory": lambda: memory(n=50_000 if q else 200_000),
    }
    out = {name: run() for name, run in sizes.items() if not args.scenario or name in args.scenario}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
