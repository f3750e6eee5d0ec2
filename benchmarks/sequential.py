"""False alarms of the sequential tests without calibration: `python -m benchmarks.sequential [--quick]`.

Prints ONE JSON object. For every stationary distribution of the quality benchmark
(``benchmarks.quality.draw``) with 1 % of values missing, and two kinds of reference, the
``--warmup`` first values (zero-config: the reference is the warm-up, estimated from few
values) and a profile of ``--profile-size`` values (its 101-point quantile grid): features
each with their own reference, every ``(row, feature)`` cell fed to
:class:`detectors.sequential.NumericSequential` exactly as the bank does (standardised
by the reference mean and std, clipped to the bank's winsorising bounds). Each group of
``--features`` features runs one rung of a ladder of thresholds per test; a test's
alarms per million values at each rung, and the exponential tail fitted through the
rungs with at least 10 alarms (``log rate = a - theta h``) extrapolated to the configured
default threshold, are reported (a rung with no alarm is an upper bound of 3 / values).
The defaults of ``SequentialConfig`` are chosen from these numbers
(docs/sequential-tests.md). ``--cost``: the bank's CPU time per value with the tests on
and off instead (:func:`bank_cost`).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from benchmarks.quality import STATIONARY, draw
from driftsentinel.detectors.profile import numeric_profile
from driftsentinel.detectors.sequential import CATEGORICAL_TESTS, NUMERIC_TESTS, NumericSequential, grid_midpoints
from driftsentinel.detectors.standardize import (
    clip_bounds,
    mean_std,
    profile_clip_bounds,
    profile_percentiles,
    reference_std,
)
from driftsentinel.schemas.config import SequentialConfig

#: threshold rungs per test (the last one is at or above the default)
LADDERS = {
    "cusum_mean": (6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0),
    "cusum_scale": (20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 100.0),
    "cusum_shape": (3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0),
    "cusum_missing": (3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0),
}
MISSING = 0.01
BATCH = 4096


def reference_of(kind: str, dist: str, rng: np.random.Generator, warmup: int, profile_size: int) -> dict[str, Any]:
    """What the bank gives ``set_reference`` for one feature: standardisation and the arguments."""
    if kind == "warmup":
        values = draw(dist, rng, (warmup,))
        mean, std = mean_std(values)
        p01, p99 = (float(q) for q in np.quantile(values, [0.01, 0.99]))
        ref_std = reference_std(mean, std, p01, p99)
        lo, hi = clip_bounds(p01, p99, mean, ref_std)
        return {
            "mean": mean,
            "std": ref_std,
            "lo": lo,
            "hi": hi,
            "z_ref": (values - mean) / ref_std,
            "x_quantiles": np.sort(values),
            "n_ref": values.size,
        }
    values = draw(dist, rng, (profile_size,))
    prof = numeric_profile(values)
    p01, p99 = profile_percentiles(prof.quantiles)
    ref_std = reference_std(prof.mean, prof.std, p01, p99)
    lo, hi = profile_clip_bounds(prof.quantiles, prof.mean, ref_std)
    grid = np.asarray(prof.quantiles)
    return {
        "mean": prof.mean,
        "std": ref_std,
        "lo": lo,
        "hi": hi,
        "z_ref": (grid_midpoints(grid) - prof.mean) / ref_std,
        "x_quantiles": grid,
        "n_ref": prof.count,
    }


def fit_tail(h: np.ndarray, alarms: np.ndarray, values: float, at: float) -> dict[str, Any]:
    """``log rate = a - theta h`` through the rungs with >= 10 alarms; the rate at ``at``."""
    ok = alarms >= 10
    if ok.sum() < 2:
        return {"theta": None, "per_million_at_default": None}
    slope, icpt = np.polyfit(h[ok], np.log(alarms[ok] / values), 1)
    return {"theta": round(float(-slope), 4), "per_million_at_default": float(np.exp(icpt + slope * at) * 1e6)}


def run(dist: str, kind: str, args: argparse.Namespace, config: SequentialConfig, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    rungs = len(LADDERS["cusum_mean"])
    F = rungs * args.features
    seq = NumericSequential(config, resolve_min_count=2000)
    seq.add_features(F)
    refs = [reference_of(kind, dist, rng, args.warmup, args.profile_size) for _ in range(F)]
    for j, r in enumerate(refs):
        seq.set_reference(j, r["z_ref"], r["x_quantiles"], r["n_ref"], MISSING, r["lo"], r["hi"])
        g = j // args.features
        seq.set_thresholds(j, **{t: LADDERS[t][g] for t in NUMERIC_TESTS})
    mean = np.array([r["mean"] for r in refs])
    std = np.array([r["std"] for r in refs])
    lo = np.array([r["lo"] for r in refs])
    hi = np.array([r["hi"] for r in refs])
    first = np.zeros(F, dtype=np.int64)
    seen = np.zeros(F)
    events = 0
    t0 = time.perf_counter()
    while events < args.values:
        n = min(BATCH, args.values - events)
        x = draw(dist, rng, (n, F))
        x[rng.random((n, F)) < MISSING] = np.nan
        z = np.clip((x - mean) / std, lo, hi)
        seq.update(x, z, first)
        seen += (~np.isnan(x)).sum(axis=0)
        events += n
    elapsed = time.perf_counter() - t0
    out: dict[str, Any] = {"seconds": round(elapsed, 1)}
    counts = seq.n_alarms
    for t in NUMERIC_TESTS:
        per_rung = counts[t].reshape(rungs, args.features).sum(axis=1).astype(np.float64)
        # the missing test's values are events, the others' the non-missing values
        denom = (
            np.full(rungs, float(events) * args.features) if t == "cusum_missing" else seen.reshape(rungs, -1).sum(1)
        )
        out[t] = {
            "thresholds": list(LADDERS[t]),
            "per_million": [round(float(c / d * 1e6), 3) for c, d in zip(per_rung, denom, strict=True)],
            "alarms": [int(c) for c in per_rung],
            **fit_tail(np.array(LADDERS[t]), per_rung, float(denom[0]), getattr(config, _DEFAULT[t])),
        }
    return out


_DEFAULT = {
    "cusum_mean": "mean_threshold",
    "cusum_scale": "scale_threshold",
    "cusum_shape": "shape_threshold",
    "cusum_missing": "missing_threshold",
}


def bank_cost(features: int, values: int, repeats: int) -> dict[str, Any]:
    """``DetectorBank.update`` CPU ns per value with the sequential tests on and off: the
    data of ``benchmarks.detectors`` (N(0, 1) with 3 mean shifts per feature, batches of
    4,096 rows), zero-config, both configurations in this process, runs interleaved, the
    fastest of ``repeats``."""
    from benchmarks.detectors import make_data
    from driftsentinel.detectors.bank import DetectorBank
    from driftsentinel.schemas import BankConfig, FeatureBatch

    X = make_data(values, features)
    names = [f"f{i}" for i in range(features)]
    batches = []
    for a in range(0, values, BATCH):
        rows = np.arange(a, min(a + BATCH, values))
        batches.append(FeatureBatch(names, X[a : a + BATCH], rows, rows.astype(np.float64)))
    configs = {"off": BankConfig.model_validate({"sequential": {"enabled": False}}), "on": BankConfig()}
    DetectorBank(configs["on"]).update(batches[0])  # compile / load the kernels
    runs: dict[str, list[float]] = {k: [] for k in configs}
    for _ in range(repeats):
        for key, cfg in configs.items():
            bank = DetectorBank(cfg)
            t0 = time.process_time()
            for b in batches:
                bank.update(b)
            runs[key].append((time.process_time() - t0) / (values * features) * 1e9)
    best = {k: round(min(v), 1) for k, v in runs.items()}
    return {
        "features": features,
        "values_per_feature": values,
        "bank_ns_per_value_sequential_off": best["off"],
        "bank_ns_per_value_sequential_on": best["on"],
        "added_ns_per_value": round(best["on"] - best["off"], 1),
        "runs": {k: [round(x, 1) for x in v] for k, v in runs.items()},
    }


#: the quality benchmark's categorical shares before and after its frequency shift (KL 0.041)
CAT_BEFORE = np.array([0.40, 0.30, 0.15, 0.10, 0.05])
CAT_AFTER = np.array([0.30, 0.30, 0.20, 0.10, 0.10])
#: a change under a third of the default ``min_category_kl`` (KL 0.0029)
CAT_SMALL = np.array([0.37, 0.30, 0.16, 0.11, 0.06])
CAT_LADDER = (6.0, 8.0, 10.0, 12.0, 14.0, 16.0)


def categorical(values: int, features: int, profile_size: int, seed: int) -> dict[str, Any]:
    """The categorical tests at their defaults: alarms per million values at each rung of
    ``CAT_LADDER`` (``features`` per rung) on stationary values (the reference shares
    estimated from ``profile_size`` values, as a profile does), under a change below the
    minimum (``CAT_SMALL``) and with never-seen values at 0.3 % and 0.4 % (``cusum_unseen``'s
    null is 0.4 %); the median delays of the benchmark's shift and of 2 % never-seen
    values (200 series each)."""
    from driftsentinel.detectors.sequential import CategoricalSequential

    config = SequentialConfig()
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"values_per_feature": values, "features_per_rung": features, "thresholds": CAT_LADDER}
    cases = {"stationary": (CAT_BEFORE, 0.0), "below_minimum": (CAT_SMALL, 0.0)}
    cases |= {"unseen_0.3%": (CAT_BEFORE, 0.003), "unseen_0.4%": (CAT_BEFORE, 0.004)}
    for name, (shares, unseen) in cases.items():
        seq = CategoricalSequential(config, resolve_min_count=1)
        for h in CAT_LADDER:
            for _ in range(features):
                p0 = rng.multinomial(profile_size, CAT_BEFORE) / profile_size
                j = seq.add_feature(np.r_[p0, 0.0], profile_size)
                seq.set_thresholds(j, cusum_categories=h, cusum_unseen=h)
        F = len(CAT_LADDER) * features
        for a in range(0, values, 65_536):
            codes = rng.choice(5, size=(min(65_536, values - a), F), p=shares)
            codes[rng.random(codes.shape) < unseen] = -2
            seq.update(codes)
        out[name] = {
            t: [
                round(float(c) / (values * features) * 1e6, 3)
                for c in seq.n_alarms[t].reshape(len(CAT_LADDER), -1).sum(1)
            ]
            for t in CATEGORICAL_TESTS
        }
    delays: dict[str, float] = {}
    for test, cp, n in (("cusum_categories", 2000, 8000), ("cusum_unseen", 1000, 5000)):
        seq = CategoricalSequential(config, resolve_min_count=2000)
        for _ in range(200):
            seq.add_feature(np.r_[rng.multinomial(profile_size, CAT_BEFORE) / profile_size, 0.0], profile_size)
        if test == "cusum_categories":
            codes = np.r_[rng.choice(5, (cp, 200), p=CAT_BEFORE), rng.choice(5, (n - cp, 200), p=CAT_AFTER)]
        else:
            codes = rng.choice(5, (n, 200), p=CAT_BEFORE)
            codes[cp:][rng.random((n - cp, 200)) < 0.02] = -2
        first = np.full(200, n)
        for hit in seq.update(codes):
            if hit.test == test and hit.status == "drift" and hit.row >= cp:
                first[hit.feature] = min(first[hit.feature], hit.row)
        delays[test] = float(np.median(first - cp))
    out["median_delay"] = {"shift_kl_0.041": delays["cusum_categories"], "unseen_2%": delays["cusum_unseen"]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer values (a smoke run)")
    ap.add_argument("--values", type=int, default=None, help="values per feature (default 400,000; quick 20,000)")
    ap.add_argument("--features", type=int, default=8, help="features per threshold rung")
    ap.add_argument("--warmup", type=int, default=1000, help="zero-config reference size (BankConfig().warmup)")
    ap.add_argument("--profile-size", type=int, default=50_000, help="profile reference size")
    ap.add_argument("--dists", default=",".join(STATIONARY), help="comma-separated distributions")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cost", action="store_true", help="only the bank's cost with the tests on and off")
    ap.add_argument("--categorical", action="store_true", help="only the categorical tests (categorical())")
    args = ap.parse_args(argv)
    if args.categorical:
        n = args.values or (100_000 if args.quick else 1_000_000)
        print(json.dumps(categorical(n, 16, args.profile_size, args.seed)))
        return 0
    if args.cost:
        print(json.dumps(bank_cost(20, 200_000, 3)))
        return 0
    args.values = args.values or (20_000 if args.quick else 400_000)
    config = SequentialConfig()
    result: dict[str, Any] = {
        "config": {
            "values_per_feature": args.values,
            "features_per_rung": args.features,
            "missing_share": MISSING,
            "warmup": args.warmup,
            "profile_size": args.profile_size,
            "sequential": config.model_dump(),
        },
        "results": {},
    }
    for i, dist in enumerate(args.dists.split(",")):
        for k, kind in enumerate(("warmup", "profile")):
            result["results"][f"{dist}/{kind}"] = run(dist, kind, args, config, args.seed + 10 * i + k)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
