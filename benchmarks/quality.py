"""Detection quality: false alarms, delays and misses, driftsentinel vs river's defaults.

``python -m benchmarks.quality [--quick] [--seeds N]`` prints ONE JSON object.

Three contenders, in the same run, on the same streams:

* ``driftsentinel`` — its defaults as a user gets them with a reference: a profile built
  from a reference sample (``--reference-size`` values per feature, drawn like the
  stream before its change), ``calibrate(profile, BankConfig(), false_alarms_per_million=1)``
  written into ``BankConfig.per_feature``, and a :class:`DetectorBank` with that profile
  (ADWIN + Page-Hinkley on standardised, winsorised values, plus the window tests).
  A feature counts as detected at the first ``drift`` event of *any* of its detectors;
  every detector is also reported on its own.
* ``river_adwin`` / ``river_page_hinkley`` — river's ``drift.ADWIN()`` and
  ``drift.PageHinkley()`` at river's default parameters, fed the raw values as a user of
  river would. They run as driftsentinel's numba kernels (``detectors.ADWIN``,
  ``detectors.PageHinkley``), which reproduce river's detections exactly (tested in
  tests/unit/test_adwin.py, test_page_hinkley.py); this run re-checks parity on a prefix
  against river itself (``parity``). river takes numbers only: it has no entry on the
  categorical stream.

Streams (each feature an independent series; ``--features`` per matrix = one model):

* change streams, ``--seeds`` per scenario: stationary N(0, 1) (categories for the
  categorical one) until the change point, then the change. The change point is
  ``--change-at`` plus a random phase in [0, window_events), so the change lands anywhere
  in a window test's tumbling window, as it does in production; ``--after`` events follow.
  Detections before the change are false alarms; the delay is the first ``drift`` event
  at or after the change minus the change point; no event within ``--horizon`` events
  is a missed detection.
* stationary streams, ``--stationary-events`` per feature for every distribution of
  issue 5 (normal, lognormal, exponential, bimodal, Student-t 3 dof, Poisson counts,
  0/1 indicators): every ``drift`` event is a false alarm. ``--stationary-banks``
  models of ``--features`` features each, every model with its own reference sample,
  profile and calibration.

Nothing here is tuned to pass: goals are computed from the measurements of this run.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

BATCH = 4096
# A "bimodal" unit: equal-weight mixture of N(-m, s^2) and N(m, s^2) with m^2 + s^2 = 1,
# so mean 0 and variance 1 like N(0, 1) (the shape change keeps both).
BIMODAL_M = 0.9
BIMODAL_S = math.sqrt(1.0 - BIMODAL_M**2)
CATEGORIES = np.array(["a", "b", "c", "d", "e"], dtype=object)
CAT_BEFORE = np.array([0.40, 0.30, 0.15, 0.10, 0.05])
CAT_AFTER = np.array([0.30, 0.30, 0.20, 0.10, 0.10])
MISSING_BEFORE = 0.01
MISSING_AFTER = 0.20
MEAN_SHIFTS = (0.25, 0.5, 1.0, 2.0)
METHODS = ("driftsentinel", "river_adwin", "river_page_hinkley")


# ---------------------------------------------------------------------------- distributions
def draw(dist: str, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Draws of one of the stationary distributions (float64)."""
    if dist == "normal":
        return rng.normal(size=shape)
    if dist == "lognormal":
        return rng.lognormal(size=shape)
    if dist == "exponential":
        return rng.exponential(size=shape)
    if dist == "bimodal":
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        return sign * BIMODAL_M + rng.normal(scale=BIMODAL_S, size=shape)
    if dist == "student_t3":
        return rng.standard_t(3, size=shape)
    if dist == "poisson":
        return rng.poisson(3.0, size=shape).astype(np.float64)
    if dist == "indicator":
        return (rng.random(shape) < 0.2).astype(np.float64)
    raise ValueError(dist)


STATIONARY = ("normal", "lognormal", "exponential", "bimodal", "student_t3", "poisson", "indicator")


def draw_categories(rng: np.random.Generator, probs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return CATEGORIES[rng.choice(len(CATEGORIES), size=shape, p=probs)]


def with_missing(x: np.ndarray, rng: np.random.Generator, share: float | np.ndarray) -> np.ndarray:
    x = x.copy()
    x[rng.random(x.shape) < share] = np.nan
    return x


# ---------------------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class Scenario:
    name: str
    reference: str  # key of the reference (profile + calibration) it is judged against
    kind: str  # "numeric" or "categorical"
    make: Callable[[np.random.Generator, int, int, int], np.ndarray]  # (rng, rows, features, cp) -> matrix
    what: str


def _mean_shift(delta: float) -> Callable[..., np.ndarray]:
    def make(rng: np.random.Generator, n: int, f: int, cp: int) -> np.ndarray:
        x = rng.normal(size=(n, f))
        x[cp:] += delta
        return x

    return make


def _gradual(rng: np.random.Generator, n: int, f: int, cp: int, ramp: int = 5000) -> np.ndarray:
    x = rng.normal(size=(n, f))
    x += np.clip((np.arange(n) - cp) / ramp, 0.0, 1.0)[:, None]
    return x


def _variance(rng: np.random.Generator, n: int, f: int, cp: int) -> np.ndarray:
    x = rng.normal(size=(n, f))
    x[cp:] *= math.sqrt(2.0)
    return x


def _shape(rng: np.random.Generator, n: int, f: int, cp: int) -> np.ndarray:
    return np.r_[rng.normal(size=(cp, f)), draw("bimodal", rng, (n - cp, f))]


def _categorical(rng: np.random.Generator, n: int, f: int, cp: int) -> np.ndarray:
    return np.r_[draw_categories(rng, CAT_BEFORE, (cp, f)), draw_categories(rng, CAT_AFTER, (n - cp, f))]


def _missing(rng: np.random.Generator, n: int, f: int, cp: int) -> np.ndarray:
    share = np.where(np.arange(n) < cp, MISSING_BEFORE, MISSING_AFTER)[:, None]
    return with_missing(rng.normal(size=(n, f)), rng, share)


SCENARIOS = [
    *(
        Scenario(f"mean_shift_{d:g}sigma", "normal", "numeric", _mean_shift(d), f"N(0,1) -> N({d:g},1), abrupt")
        for d in MEAN_SHIFTS
    ),
    Scenario(
        "gradual_1sigma_over_5000",
        "normal",
        "numeric",
        _gradual,
        "mean rises linearly from 0 to +1 sigma over 5,000 events, then stays",
    ),
    Scenario("variance_doubling", "normal", "numeric", _variance, "N(0,1) -> N(0,2): variance x2, same mean"),
    Scenario(
        "shape_normal_to_bimodal",
        "normal",
        "numeric",
        _shape,
        f"N(0,1) -> 0.5 N(-{BIMODAL_M},{BIMODAL_S:.3f}^2) + 0.5 N(+{BIMODAL_M},{BIMODAL_S:.3f}^2): "
        "same mean and variance",
    ),
    Scenario(
        "categorical_frequency_shift",
        "categorical",
        "categorical",
        _categorical,
        f"5 categories, shares {CAT_BEFORE.tolist()} -> {CAT_AFTER.tolist()}",
    ),
    Scenario(
        "missing_ratio_jump",
        "normal_missing",
        "numeric",
        _missing,
        f"N(0,1) values, missing share {MISSING_BEFORE:g} -> {MISSING_AFTER:g}",
    ),
]


# ---------------------------------------------------------------------------- driftsentinel setup
@dataclass
class Reference:
    names: list[str]
    kind: str
    profile: Any
    config: Any
    params: dict[str, dict[str, float]]
    seconds: float


def make_reference(key: str, n_features: int, size: int, calib_values: int, seed: int) -> Reference:
    """driftsentinel's defaults for one model: profile of a reference sample + calibration."""
    from driftsentinel.detectors.calibration import calibrate
    from driftsentinel.detectors.profile import build_profile
    from driftsentinel.schemas import BankConfig
    from driftsentinel.schemas.config import FeatureParams

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    names = [f"f{j}" for j in range(n_features)]
    if key == "categorical":
        sample = draw_categories(rng, CAT_BEFORE, (size, n_features))
        columns = {n: sample[:, j].tolist() for j, n in enumerate(names)}
        kind = "categorical"
    else:
        dist = "normal" if key == "normal_missing" else key
        sample = draw(dist, rng, (size, n_features))
        if key == "normal_missing":
            sample = with_missing(sample, rng, MISSING_BEFORE)
        columns = {n: [None if v != v else v for v in sample[:, j].tolist()] for j, n in enumerate(names)}
        kind = "numeric"
    profile = build_profile(columns, source=f"benchmark:{key}")
    params = calibrate(profile, BankConfig(), false_alarms_per_million=1.0, values=calib_values, seed=seed + 1)
    config = BankConfig(per_feature={f: FeatureParams(**p) for f, p in params.items()})
    return Reference(names, kind, profile, config, params, time.perf_counter() - t0)


def run_driftsentinel(ref: Reference, data: np.ndarray) -> list[tuple[int, int, str]]:
    """Feed ``data`` to a fresh bank in batches; (row, feature index, detector) of each drift event."""
    from driftsentinel.detectors.bank import DetectorBank
    from driftsentinel.schemas import FeatureBatch

    bank = DetectorBank(ref.config, ref.profile)
    index = {n: j for j, n in enumerate(ref.names)}
    n, f = data.shape
    out: list[tuple[int, int, str]] = []
    for a in range(0, n, BATCH):
        chunk = data[a : a + BATCH]
        rows = chunk.shape[0]
        offsets = np.arange(a, a + rows, dtype=np.int64)
        times = np.full(rows, np.nan)
        if ref.kind == "categorical":
            batch = FeatureBatch([], np.empty((rows, 0)), offsets, times, cat_names=ref.names, cat_values=chunk)
        else:
            batch = FeatureBatch(ref.names, np.ascontiguousarray(chunk, dtype=np.float64), offsets, times)
        for s in bank.update(batch):
            if s.status == "drift":
                out.append((a + s.row, index[s.feature], s.detector))
    return out


def run_river(cls: Any, data: np.ndarray) -> list[tuple[int, int, str]]:
    """River's defaults on the raw values (numba kernels identical to river's detections)."""
    det = cls(n_features=data.shape[1])
    out: list[tuple[int, int, str]] = []
    for a in range(0, data.shape[0], BATCH):
        for row, j in det.update(data[a : a + BATCH]):
            out.append((a + int(row), int(j), "all"))
    return out


# ---------------------------------------------------------------------------- statistics
def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 3)


def delay_stats(delays: list[int], missed: int, series: int, false_alarms: int, pre_events: int) -> dict[str, Any]:
    d = np.asarray(delays, dtype=np.float64)
    return {
        "false_alarms": false_alarms,
        "false_alarms_per_million": _num(false_alarms / pre_events * 1e6) if pre_events else None,
        "series": series,
        "detected": int(d.size),
        "missed": missed,
        "delay_mean": _num(d.mean()) if d.size else None,
        "delay_median": _num(float(np.median(d))) if d.size else None,
        "delay_p90": _num(float(np.quantile(d, 0.9))) if d.size else None,
    }


def summarize_change(
    events: list[list[tuple[int, int, str]]], cps: list[int], n_features: int, horizon: int, detectors: list[str] | None
) -> dict[str, Any]:
    """events[s] = drift events of seed s; cps[s] its change point."""

    def one(keep: Callable[[str], bool]) -> dict[str, Any]:
        delays: list[int] = []
        missed = fa = pre = 0
        for ev, cp in zip(events, cps, strict=True):
            pre += cp * n_features
            first = np.full(n_features, np.iinfo(np.int64).max)
            for row, j, det in ev:
                if not keep(det):
                    continue
                if row < cp:
                    fa += 1
                elif row < first[j]:
                    first[j] = row
            for j in range(n_features):
                d = int(first[j]) - cp
                if d <= horizon:
                    delays.append(d)
                else:
                    missed += 1
        return delay_stats(delays, missed, len(cps) * n_features, fa, pre)

    out = one(lambda _d: True)
    if detectors is not None:
        out["by_detector"] = {name: one(name.__eq__) for name in detectors}
    return out


def summarize_stationary(
    events: list[tuple[int, int, str]], values: int, detectors: list[str] | None
) -> dict[str, Any]:
    def one(keep: Callable[[str], bool]) -> dict[str, Any]:
        hits = [(r, j) for r, j, d in events if keep(d)]
        return {
            "false_alarms": len(hits),
            "false_alarms_per_million": _num(len(hits) / values * 1e6),
            "features_with_alarms": len({j for _r, j in hits}),
        }

    out = one(lambda _d: True)
    out["feature_values"] = values
    if detectors is not None:
        out["by_detector"] = {name: one(name.__eq__) for name in detectors}
    return out


def ds_detectors(ref: Reference) -> list[str]:
    """driftsentinel detectors that can fire on this kind of feature (reported one by one)."""
    from driftsentinel.schemas import WindowTestConfig

    wt = WindowTestConfig()
    if ref.kind == "categorical":
        return [*wt.categorical_tests, "missing_rate", "type_error"]
    return ["adwin", "page_hinkley", *wt.numeric_tests, *wt.quality_tests]


# ---------------------------------------------------------------------------- parity
def parity(rows: int, n_features: int, seed: int) -> dict[str, Any]:
    """Kernels vs river itself at river's defaults, raw values with shifts (this run)."""
    from driftsentinel.detectors import ADWIN, PageHinkley, RiverADWIN, RiverPageHinkley

    rng = np.random.default_rng(seed)
    x = rng.lognormal(size=(rows, n_features))
    x[rows // 2 :] += 1.0
    out: dict[str, Any] = {"rows": rows, "features": n_features}
    for name, kern, ref in (("adwin", ADWIN, RiverADWIN), ("page_hinkley", PageHinkley, RiverPageHinkley)):
        a, b = run_river(kern, x), run_river(ref, x)
        out[name] = {"identical": a == b, "detections": len(a)}
    return out


# ---------------------------------------------------------------------------- goals
def goals(change: dict[str, Any], stationary: dict[str, Any]) -> dict[str, Any]:
    ds, ad, ph = METHODS
    g: dict[str, Any] = {}

    worst = {k: v[ds]["false_alarms_per_million"] for k, v in stationary.items()}
    g["stationary_false_alarms_per_million_le_1"] = {
        "pass": all(v is not None and v <= 1.0 for v in worst.values()),
        "target": 1.0,
        "values": worst,
    }

    missed = {
        k: change[k][ds]["missed"]
        for k in change
        if k.startswith("mean_shift_") and float(k[len("mean_shift_") : -len("sigma")]) >= 0.5
    }
    g["no_missed_detection_for_shifts_ge_0.5_sigma"] = {"pass": all(v == 0 for v in missed.values()), "values": missed}

    med = change.get("mean_shift_1sigma", {}).get(ds, {}).get("delay_median")
    g["median_delay_1sigma_le_300"] = {"pass": med is not None and med <= 300, "target": 300, "value": med}

    cmp: dict[str, Any] = {}
    for k in change:
        if k.startswith("mean_shift_"):
            a, b = change[k][ds]["delay_median"], change[k][ad]["delay_median"]
            cmp[k] = {"driftsentinel": a, "river_adwin": b, "pass": a is not None and (b is None or a <= b)}
    g["mean_shift_median_delay_le_river_adwin"] = {"pass": all(v["pass"] for v in cmp.values()), "values": cmp}

    fewer: dict[str, Any] = {}
    for k, v in [*change.items(), *stationary.items()]:
        if v.get(ph) is None:
            continue  # river takes numbers only (categorical stream)
        a, b = v[ds]["false_alarms"], v[ph]["false_alarms"]
        fewer[k] = {"driftsentinel": a, "river_page_hinkley": b, "pass": a < b}
    g["fewer_false_alarms_than_river_page_hinkley"] = {"pass": all(v["pass"] for v in fewer.values()), "values": fewer}
    return g


# ---------------------------------------------------------------------------- markdown
def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,}"


def _cell_delay(r: dict[str, Any]) -> str:
    return f"{_fmt(r['delay_median'], 0)} / {_fmt(r['delay_p90'], 0)}" if r["detected"] else "—"


def markdown(out: dict[str, Any]) -> str:
    """The tables of docs/quality.md, from one run's JSON."""
    s = out["setup"]
    lines = [
        f"Change streams: {s['seeds']} seeds x {s['features_per_model']} features per scenario; change at event "
        f"{s['change_at']:,} + a random phase of up to {s['window_events']:,}; missed = no drift event within "
        f"{s['horizon']:,} events. Stationary: {s['stationary_models']} models x {s['features_per_model']} features x "
        f"{s['stationary_events']:,} events per distribution. Delays in events, median / p90.",
        "",
        "| stream | driftsentinel: false alarms per M | delay | missed "
        "| river ADWIN: false alarms per M | delay | missed "
        "| river Page-Hinkley: false alarms per M | delay | missed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, sc in out["change"].items():
        cells = [name.replace("_", " ")]
        for m in METHODS:
            r = sc[m]
            if r is None:
                cells += ["n/a (river takes numbers)", "", ""]
            else:
                cells += [_fmt(r["false_alarms_per_million"], 2), _cell_delay(r), f"{r['missed']}/{r['series']}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Which driftsentinel detector catches what (median delay, detectors that caught at least half the series):",
        "",
        "| stream | detectors |",
        "|---|---|",
    ]
    for name, sc in out["change"].items():
        by = sc["driftsentinel"]["by_detector"]
        best = sorted((r["delay_median"], d) for d, r in by.items() if r["detected"] * 2 >= r["series"])
        lines.append(f"| {name.replace('_', ' ')} | " + (", ".join(f"{d} {_fmt(v, 0)}" for v, d in best) or "—") + " |")
    lines += [
        "",
        "Stationary streams: false alarms per million feature values (count):",
        "",
        "| distribution | driftsentinel | river ADWIN | river Page-Hinkley | driftsentinel alarms by detector |",
        "|---|---|---|---|---|",
    ]
    for name, st in out["stationary"].items():
        cells = [name.replace("_", " ")]
        cells += [f"{_fmt(st[m]['false_alarms_per_million'], 2)} ({st[m]['false_alarms']:,})" for m in METHODS]
        by = st["driftsentinel"]["by_detector"]
        cells.append(
            ", ".join(
                f"{d} {r['false_alarms']} on {r['features_with_alarms']} features"
                for d, r in by.items()
                if r["false_alarms"]
            )
            or "none"
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| goal | met |", "|---|---|"]
    for g, r in out["goals"].items():
        lines.append(f"| {g.replace('_', ' ')} | {'yes' if r['pass'] else '**no**'} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run (smoke tests): fewer seeds, shorter streams")
    p.add_argument("--seeds", type=int, default=None, help="change streams per scenario (default 50; quick 2)")
    p.add_argument("--features", type=int, default=None, help="features per model (default 10; quick 3)")
    p.add_argument("--change-at", type=int, default=None, help="earliest change point (default 5000; quick 1500)")
    p.add_argument("--after", type=int, default=None, help="events after the change (default 15000; quick 2500)")
    p.add_argument(
        "--horizon", type=int, default=None, help="missed = no drift event this long after (default 10000; quick 2000)"
    )
    p.add_argument(
        "--stationary-events",
        type=int,
        default=None,
        help="events per stationary stream (default 1,000,000; quick 20,000)",
    )
    p.add_argument(
        "--stationary-banks", type=int, default=None, help="models per stationary distribution (default 6; quick 1)"
    )
    p.add_argument(
        "--reference-size", type=int, default=None, help="reference sample per feature (default 50,000; quick 5,000)"
    )
    p.add_argument(
        "--calibration-values",
        type=int,
        default=None,
        help="values simulated per feature by calibrate (default 1,000,000 as the CLI; quick 50,000)",
    )
    p.add_argument(
        "--window-events", type=int, default=None, help="window tests' window (default: the config's 5,000; quick 500)"
    )
    p.add_argument(
        "--parity-rows", type=int, default=None, help="rows of the river parity check (default 20,000; quick 2,000)"
    )
    p.add_argument("--seed", type=int, default=20260)
    p.add_argument("--markdown", metavar="JSON", help="print the tables of docs/quality.md from a run's JSON and exit")
    args = p.parse_args(argv)
    if args.markdown:
        with open(args.markdown) as fh:
            print(markdown(json.load(fh)))
        return 0

    q = args.quick
    seeds = args.seeds or (2 if q else 50)
    F = args.features or (3 if q else 10)
    change_at = args.change_at or (1500 if q else 5000)
    after = args.after or (2500 if q else 15000)
    horizon = args.horizon or (2000 if q else 10000)
    st_events = args.stationary_events or (20_000 if q else 1_000_000)
    st_banks = args.stationary_banks or (1 if q else 6)
    ref_size = args.reference_size or (5_000 if q else 50_000)
    calib_values = args.calibration_values or (50_000 if q else 1_000_000)
    parity_rows = args.parity_rows or (2_000 if q else 20_000)

    from driftsentinel.detectors.adwin import ADWIN
    from driftsentinel.detectors.page_hinkley import PageHinkley
    from driftsentinel.schemas import WindowTestConfig

    window_events = args.window_events or (500 if q else WindowTestConfig().window_events)
    t_start = time.perf_counter()
    log = lambda msg: print(f"[quality {time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)  # noqa: E731

    refs: dict[str, Reference] = {}
    calibrated: dict[str, Any] = {}

    def reference(key: str, seed: int) -> Reference:
        name = f"{key}#{seed}"
        if name not in refs:
            ref = make_reference(key, F, ref_size, calib_values, seed)
            if window_events != ref.config.window_tests.window_events:
                ref.config = ref.config.model_copy(
                    update={"window_tests": ref.config.window_tests.model_copy(update={"window_events": window_events})}
                )
            refs[name] = ref
            if ref.params:
                th = [v["page_hinkley_threshold"] for v in ref.params.values()]
                de = [v["adwin_delta"] for v in ref.params.values()]
                calibrated[name] = {
                    "page_hinkley_threshold": [_num(min(th)), _num(max(th))],
                    "adwin_delta": [min(de), max(de)],
                    "seconds": _num(ref.seconds),
                }
            log(f"reference {name}: {ref.seconds:.1f}s")
        return refs[name]

    timings: dict[str, float] = {}
    change: dict[str, Any] = {}
    for i, sc in enumerate(SCENARIOS):
        t0 = time.perf_counter()
        ref = reference(sc.reference, args.seed + 1000 * (i + 1) if sc.reference not in ("normal",) else args.seed)
        rng = np.random.default_rng([args.seed, i])
        cps: list[int] = []
        ev: dict[str, list[list[tuple[int, int, str]]]] = {m: [] for m in METHODS}
        for _s in range(seeds):
            cp = change_at + int(rng.integers(0, window_events))
            data = sc.make(rng, cp + after, F, cp)
            cps.append(cp)
            ev["driftsentinel"].append(run_driftsentinel(ref, data))
            if sc.kind == "numeric":
                ev["river_adwin"].append(run_river(ADWIN, data))
                ev["river_page_hinkley"].append(run_river(PageHinkley, data))
        res: dict[str, Any] = {"what": sc.what, "reference": sc.reference}
        res["driftsentinel"] = summarize_change(ev["driftsentinel"], cps, F, horizon, ds_detectors(ref))
        for m in ("river_adwin", "river_page_hinkley"):
            res[m] = summarize_change(ev[m], cps, F, horizon, None) if sc.kind == "numeric" else None
        change[sc.name] = res
        timings[sc.name] = time.perf_counter() - t0
        log(f"{sc.name}: {timings[sc.name]:.1f}s")

    stationary: dict[str, Any] = {}
    for k, dist in enumerate(STATIONARY):
        t0 = time.perf_counter()
        ev_all: dict[str, list[tuple[int, int, str]]] = {m: [] for m in METHODS}
        dets: list[str] = []
        for b in range(st_banks):
            ref = reference(dist, args.seed + 100_000 * (k + 1) + b)
            dets = ds_detectors(ref)
            rng = np.random.default_rng([args.seed, 7, k, b])
            data = draw(dist, rng, (st_events, F))
            for m, run in (
                ("driftsentinel", lambda d, ref=ref: run_driftsentinel(ref, d)),
                ("river_adwin", lambda d: run_river(ADWIN, d)),
                ("river_page_hinkley", lambda d: run_river(PageHinkley, d)),
            ):
                ev_all[m] += [(r, j + b * F, d) for r, j, d in run(data)]
        values = st_events * F * st_banks
        stationary[dist] = {
            m: summarize_stationary(ev_all[m], values, dets if m == "driftsentinel" else None) for m in METHODS
        }
        timings[f"stationary_{dist}"] = time.perf_counter() - t0
        log(f"stationary {dist}: {timings[f'stationary_{dist}']:.1f}s")

    t0 = time.perf_counter()
    par = parity(parity_rows, F, args.seed)
    timings["parity"] = time.perf_counter() - t0
    log(f"parity: {par}")

    import river

    out = {
        "benchmark": "quality",
        "quick": q,
        "setup": {
            "seeds": seeds,
            "features_per_model": F,
            "change_at": change_at,
            "change_phase": f"change point = change_at + U{{0..{window_events - 1}}} "
            "(random phase in the window tests' window)",
            "events_after_change": after,
            "horizon": horizon,
            "stationary_events": st_events,
            "stationary_models": st_banks,
            "reference_size": ref_size,
            "calibration_values": calib_values,
            "window_events": window_events,
            "batch": BATCH,
            "seed": args.seed,
            "driftsentinel": "profile of the reference sample + calibrate(false_alarms_per_million=1) -> "
            "BankConfig.per_feature; DetectorBank(config, profile); any detector's drift event",
            "river_adwin": "river drift.ADWIN() defaults (delta 0.002, clock 32), raw values",
            "river_page_hinkley": "river drift.PageHinkley() defaults (delta 0.005, threshold 50, alpha 0.9999), "
            "raw values",
            "river_kernels": "detectors.ADWIN / detectors.PageHinkley: numba kernels with river's detections exactly "
            "(parity tests in tests/unit; re-checked in 'parity')",
            "counting": "drift events only; false alarms per million = detections before the change (change streams) "
            "or all detections (stationary) per million feature values; delay = first drift event at or "
            "after the change minus the change point; missed = none within the horizon",
        },
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "river": river.__version__},
        "calibrated": calibrated,
        "change": change,
        "stationary": stationary,
        "parity": par,
        "goals": goals(change, stationary),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
