"""Seasonal, autocorrelated streams: false alarms and delays with and without a seasonal reference.

``python -m benchmarks.seasonal [--events N] [--features F] [--repeats R] [--seed S]`` prints
one JSON object.

Streams (event time advancing uniformly, :data:`EVENTS_PER_DAY` events a day from Monday
2024-01-01 00:00 UTC; :data:`REFERENCE_DAYS` days of reference, then the live stream): a
latent ``y_t = A sin(2 pi t / day) + e_t`` with ``e`` a stationary N(0, 1) AR(1) of
coefficient :data:`PHI` and ``A`` = 1 noise sd, observed as

* ``normal``: ``y``;
* ``lognormal``: ``exp(0.5 y)``;
* ``counts``: Poisson with mean ``4 exp(0.35 y)``.

Stationary (``--events`` live events per feature, ``--features`` features per variant),
false drift decisions per million events per feature of:

* ``plain``: the profile of the reference sample, thresholds calibrated as before this
  work (independent values, no cycle) — what a user gets today;
* ``seasonal_iid``: the seasonal reference (``baseline --period auto``: the bank sees values
  standardised by their phase and whitened), thresholds calibrated as if those values were
  independent;
* ``seasonal_model``: the seasonal reference and dependence-aware calibration from the
  profile alone (its latent Gaussian model of the dependence simulated, then standardised
  and whitened as in the bank);
* ``seasonal_dependent``: the same with the reference's own values (``calibrate --data``:
  a block bootstrap of its phase-standardised values, then the same);
* ``river_adwin``, ``river_page_hinkley``: river's defaults on the raw values (the numba
  kernels, identical to river's detections).

Changes on top of the cycle at event :data:`CHANGE_AT` of the live stream (one per feature,
``--repeats`` features): ``level`` (+0.5 noise sd on ``y``) and ``amplitude`` (``A``
doubles); the same level shift on the same noise without a cycle (its own reference,
calibrated the same way) is the comparison: caught share within :data:`HORIZON` events and
the median delay.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

DAY = 86_400.0
EVENTS_PER_DAY = 50_000
REFERENCE_DAYS = 7
START = 1_704_067_200.0  # Monday 2024-01-01 00:00 UTC
PHI = 0.9
AMPLITUDE = 1.0
LEVEL_SHIFT = 0.5
CHANGE_AT = 10_000
HORIZON = 40_000
BATCH = 4096
VARIANTS = ("normal", "lognormal", "counts")


def latent(
    rng: np.random.Generator, n: int, first: int, amplitude: float, shift: float = 0.0, factor: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Event times and ``A sin + AR(1)`` for events ``first .. first + n - 1``; from
    :data:`CHANGE_AT` of the stream on, ``shift`` added and the cycle times ``factor``."""
    from driftsentinel.detectors.seasonal import gaussian_ar1

    i = np.arange(first, first + n)
    t = START + i * (DAY / EVENTS_PER_DAY)
    cycle = amplitude * np.sin(2 * np.pi * (t - START) / DAY)
    after = (i - first) >= CHANGE_AT if (shift or factor != 1.0) else np.zeros(n, dtype=bool)
    y = np.where(after, factor * cycle + shift, cycle) + gaussian_ar1(PHI, n, rng)
    return t, y


def observe(variant: str, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The feature's values from the latent series."""
    if variant == "normal":
        return y
    if variant == "lognormal":
        return np.exp(0.5 * y)
    return rng.poisson(4.0 * np.exp(0.35 * y)).astype(np.float64)


def streams(
    variant: str, features: int, n: int, first: int, amplitude: float, seed: int, **change: float
) -> tuple[np.ndarray, np.ndarray]:
    """Event times [n] and values [n, features] (one independent series per feature, common times)."""
    cols = []
    t = np.empty(0)
    for j in range(features):
        rng = np.random.default_rng([seed, j, first])
        t, y = latent(rng, n, first, amplitude, **change)
        cols.append(observe(variant, y, rng))
    return t, np.column_stack(cols)


@dataclass
class Condition:
    name: str
    profile: Any  # ReferenceProfile given to the bank (its seasonal section, if any, is the bank's to apply)
    config: Any  # BankConfig (calibrated thresholds)
    seconds: float


def reference(variant: str, features: int, seed: int, amplitude: float, calib_values: int) -> dict[str, Condition]:
    """Profiles and calibrations of each condition from :data:`REFERENCE_DAYS` of reference."""
    from driftsentinel.detectors.calibration import calibrate
    from driftsentinel.detectors.profile import build_profile
    from driftsentinel.detectors.seasonal_profile import reference_residuals, seasonal_profile, seasonal_view
    from driftsentinel.schemas import BankConfig
    from driftsentinel.schemas.config import FeatureParams

    names = [f"f{j}" for j in range(features)]
    t, x = streams(variant, features, REFERENCE_DAYS * EVENTS_PER_DAY, 0, amplitude, seed)
    plain = build_profile({n: x[:, j].tolist() for j, n in enumerate(names)}, source=f"bench:{variant}")
    period = "auto" if amplitude else "none"
    section, _ = seasonal_profile(t, {n: x[:, j] for j, n in enumerate(names)}, period, "ts", np.random.default_rng(0))
    seasonal = plain.model_copy(update={"seasonal": section})
    view = seasonal_view(seasonal)

    def calibrated(profile: Any, residuals: dict[str, np.ndarray] | None = None) -> tuple[Any, float]:
        t0 = time.perf_counter()
        params = calibrate(profile, BankConfig(), 1.0, values=calib_values, seed=seed + 1, residuals=residuals)
        cfg = BankConfig(per_feature={f: FeatureParams(**p) for f, p in params.items()})
        return cfg, time.perf_counter() - t0

    out: dict[str, Condition] = {}
    cfg, s = calibrated(plain)
    out["plain"] = Condition("plain", plain, cfg, s)
    cfg, s = calibrated(view)  # the transformed values' profile, drawn independently
    out["seasonal_iid"] = Condition("seasonal_iid", seasonal, cfg, s)
    cfg, s = calibrated(seasonal)
    out["seasonal_model"] = Condition("seasonal_model", seasonal, cfg, s)
    own = {n: reference_residuals(section, n, t, x[:, j]) for j, n in enumerate(names)}
    cfg, s = calibrated(seasonal, own)
    out["seasonal_dependent"] = Condition("seasonal_dependent", seasonal, cfg, s)
    return out


Hit = tuple[int, str, str, str]  # row, feature, detector, status


def run_bank(cond: Condition, t: np.ndarray, x: np.ndarray) -> list[Hit]:
    """(row, feature, detector, status) of every drift and resolved decision of a fresh bank."""
    from driftsentinel.detectors.bank import DetectorBank
    from driftsentinel.schemas import FeatureBatch

    bank = DetectorBank(cond.config, cond.profile)
    names = [f"f{j}" for j in range(x.shape[1])]
    out: list[Hit] = []
    for a in range(0, x.shape[0], BATCH):
        rows = min(BATCH, x.shape[0] - a)
        batch = FeatureBatch(
            names, np.ascontiguousarray(x[a : a + rows]), np.arange(a, a + rows, dtype=np.int64), t[a : a + rows]
        )
        out += [(a + s.row, s.feature, s.detector, s.status) for s in bank.update(batch)]
    return out


def run_river(cls: Any, x: np.ndarray) -> list[Hit]:
    det = cls(n_features=x.shape[1])
    out: list[Hit] = []
    for a in range(0, x.shape[0], BATCH):
        out += [(a + int(r), f"f{int(j)}", "all", "drift") for r, j in det.update(x[a : a + BATCH])]
    return out


def per_million(hits: list[Hit], values: int, rows: int) -> dict[str, Any]:
    """Drift decisions per million feature-values (every detector's, the model-level
    ``@multivariate`` included), by detector; the episodes they make (a drift while none of
    the feature's detectors is open starts one; river's detectors never resolve: each drift
    is its own) and the share of feature-events spent inside an open episode (features only)."""
    by: dict[str, int] = {}
    open_: dict[str, set[str]] = {}
    since: dict[str, int] = {}
    episodes = 0
    inside = 0
    for r, f, d, status in sorted(hits):
        now = open_.setdefault(f, set())
        if status == "drift":
            by[d] = by.get(d, 0) + 1
            if not now:
                episodes += 1
                since[f] = r
            now.add(d)
        elif d in now:
            now.discard(d)
            if not now and not f.startswith("@"):
                inside += r - since[f]
    inside += sum(rows - since[f] for f, now in open_.items() if now and not f.startswith("@"))
    drifts = sum(by.values())
    return {
        "drift_decisions": drifts,
        "drift_decisions_per_million": round(drifts / values * 1e6, 3),
        "episodes_per_million": round(episodes / values * 1e6, 3),
        "share_of_events_in_episode": round(inside / values, 4),  # features' own, not @multivariate's
        "by_detector": dict(sorted(by.items())),
    }


def delays(hits: list[Hit], features: int) -> dict[str, Any]:
    """Per feature: the first drift at or after the change (delay), a drift before it (false)."""
    first: dict[str, int] = {}
    early = 0
    for r, f, _d, status in sorted(hits):
        if status != "drift":
            continue
        if r < CHANGE_AT:
            early += 1
        elif f not in first and r < CHANGE_AT + HORIZON:
            first[f] = r - CHANGE_AT
    d = sorted(first.values())
    return {
        "caught": f"{len(d)}/{features}",
        "median_delay": float(np.median(d)) if d else None,
        "delays": d,
        "drift_before_change": early,
    }


def stationary(variant: str, conds: dict[str, Condition], features: int, events: int, seed: int) -> dict[str, Any]:
    from driftsentinel.detectors import ADWIN, PageHinkley

    t, x = streams(variant, features, events, REFERENCE_DAYS * EVENTS_PER_DAY, AMPLITUDE, seed + 100)
    values = events * features
    out: dict[str, Any] = {}
    for name, cond in conds.items():
        t0 = time.perf_counter()
        out[name] = per_million(run_bank(cond, t, x), values, events)
        out[name]["calibrate_seconds"] = round(cond.seconds, 1)
        out[name]["run_seconds"] = round(time.perf_counter() - t0, 1)
    for name, cls in (("river_adwin", ADWIN), ("river_page_hinkley", PageHinkley)):
        hits = run_river(cls, x)
        out[name] = per_million(hits, values, events)
        out[name]["episodes_per_million"] = out[name]["drift_decisions_per_million"]
        out[name]["share_of_events_in_episode"] = None  # no resolution: an alarm is a point
    return out


def changes(variant: str, conds: dict[str, Condition], flat: dict[str, Condition], repeats: int, seed: int) -> Any:
    n = CHANGE_AT + HORIZON
    first = REFERENCE_DAYS * EVENTS_PER_DAY
    key = "seasonal_dependent"
    out: dict[str, Any] = {"condition": key}
    for kind, change in (("level", {"shift": LEVEL_SHIFT}), ("amplitude", {"factor": 2.0})):
        t, x = streams(variant, repeats, n, first, AMPLITUDE, seed + 200, **change)
        out[f"cycle_{kind}"] = delays(run_bank(conds[key], t, x), repeats)
    t, x = streams(variant, repeats, n, first, 0.0, seed + 200, shift=LEVEL_SHIFT)
    out["no_cycle_level"] = delays(run_bank(flat[key], t, x), repeats)
    a, b = out["cycle_level"]["median_delay"], out["no_cycle_level"]["median_delay"]
    out["level_delay_ratio"] = round(a / b, 2) if a is not None and b else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.seasonal", description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="live events per feature (stationary)")
    ap.add_argument("--features", type=int, default=2, help="features per variant (stationary)")
    ap.add_argument("--repeats", type=int, default=8, help="changes per kind and variant (one per feature)")
    ap.add_argument("--calib-values", type=int, default=1_000_000, help="calibrate's simulated values per feature")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    bad = [v for v in variants if v not in VARIANTS]
    if bad or args.events < 1 or args.features < 1 or args.repeats < 1:
        print(f"benchmarks.seasonal: variants among {', '.join(VARIANTS)}; counts >= 1", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "setup": {
            "events_per_day": EVENTS_PER_DAY,
            "reference_days": REFERENCE_DAYS,
            "ar1": PHI,
            "amplitude_noise_sd": AMPLITUDE,
            "level_shift_noise_sd": LEVEL_SHIFT,
            "change_at": CHANGE_AT,
            "horizon": HORIZON,
            "events": args.events,
            "features": args.features,
            "repeats": args.repeats,
            "calib_values": args.calib_values,
            "seed": args.seed,
            "python": platform.python_version(),
        },
        "variants": {},
    }
    for v in variants:
        stat = reference(v, args.features, args.seed, AMPLITUDE, args.calib_values)
        conds = reference(v, args.repeats, args.seed + 1, AMPLITUDE, args.calib_values)
        flat = reference(v, args.repeats, args.seed + 1, 0.0, args.calib_values)
        section = stat["seasonal_iid"].profile.seasonal
        result["variants"][v] = {
            "detected_period": section.period,
            "acf1": {n: round(f.acf1, 3) for n, f in section.features.items()},
            "ar1": {n: round(f.ar1, 3) for n, f in section.features.items()},
            "stationary": stationary(v, stat, args.features, args.events, args.seed),
            "changes": changes(v, conds, flat, args.repeats, args.seed),
        }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
