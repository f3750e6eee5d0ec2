"""Drift per segment: `python -m benchmarks.segments [--quick]`. Prints ONE JSON object.

Scenarios (the core, :mod:`driftsentinel.detectors.segments`, default configuration unless said):

* ``opposite_shifts``: six segments (45/30/10/5/5/5 % of traffic); half way, feature f0
  moves +1 sd in one 5 % segment and -1 sd in another (the overall mean does not move).
  Per seed: which segments alerted on f0 (change detectors), the delay of each in events of
  the stream and in values of the segment, and whether the overall bank alerted on f0.
* ``mix_shift``: three segments 50/30/20 -> 30/30/40 half way, every segment's
  distribution unchanged (its own level): mix alerts and per-segment feature alerts.
* ``stationary``: 20 features x 50 segments, no change: drift episodes per million events
  per feature of the overall bank and of the segment family (default configuration, and a
  sensitive one, ADWIN delta 0.05 and Page-Hinkley threshold 10, where there are false
  alarms to count), and of the family without the shared budget.
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
from driftsentinel.detectors.segments import SegmentedBanks
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
        banks, overall = SegmentedBanks(("country",), cfg), DetectorBank(cfg)
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
    rng = np.random.default_rng(42)
    x = rng.normal(size=(n, features))
    seg = np.array([f"s{i}" for i in range(segments)], dtype=object)[rng.integers(0, segments, size=n)]
    per_m = 1e6 / n / features
    out: dict[str, Any] = {"events": n, "features": features, "segments": segments}
    sensitive = {"adwin": {"delta": 0.05}, "page_hinkley": {"threshold": 10.0}}
    for name, extra, shared in (
        ("default", {}, True),
        ("sensitive", sensitive, True),
        ("sensitive_no_budget", sensitive, False),
    ):
        cfg = BankConfig.model_validate({"segments": {"keys": ["country"], "max_segments": segments}, **extra})
        original = seg_mod.segment_bank_config
        if not shared:
            seg_mod.segment_bank_config = _no_budget
        try:
            banks, overall = SegmentedBanks(("country",), cfg), DetectorBank(cfg)
        finally:
            seg_mod.segment_bank_config = original
        a_over = a_seg = 0
        for _, batch in _batches(x, seg):
            a_over += sum(s.status == "drift" for s in overall.update(batch))
            a_seg += sum(s.signal.status == "drift" for s in banks.update(batch))
        out[name] = {
            "overall_per_million_per_feature": a_over * per_m,
            "segments_per_million_per_feature": a_seg * per_m,
            "overall_alarms": a_over,
            "segment_alarms": a_seg,
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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = p.parse_args(argv)
    q = args.quick
    out = {
        "opposite_shifts": opposite_shifts(2 if q else 10, 60_000 if q else 200_000),
        "mix_shift": mix_shift(2 if q else 5, 60_000 if q else 200_000),
        "stationary": stationary(50_000 if q else 1_000_000),
        "throughput": throughput(50_000 if q else 400_000),
        "memory": memory(n=50_000 if q else 200_000),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
