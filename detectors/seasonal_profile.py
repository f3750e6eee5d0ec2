"""The profile's ``seasonal`` section from training columns and their event times (no I/O).

``baseline --period hour_of_day|hour_of_week|SECONDS|auto|none --time-column ts`` calls
:func:`seasonal_profile`: the event times are read (epoch seconds or RFC 3339 strings),
each numeric feature gets its per-phase summaries (:func:`~.seasonal.phase_summaries`)
when the period is named, or when ``auto`` found a cycle in it
(:func:`~.seasonal.detect_period`), and in every case the serial dependence of its
phase-standardised values (``acf1``, ``ar1``), so ``calibrate`` simulates dependent data.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> t = np.arange(20_000) * 60.0  # one value a minute, about 14 days
>>> x = np.sin(2 * np.pi * t / 86_400) + rng.standard_normal(t.size)
>>> section, note = seasonal_profile(t, {"x": x}, "auto", "ts", rng)
>>> section.period, len(section.features["x"].mean), note
('hour_of_day', 24, 'seasonal: hour_of_day detected in 1 of 1 numeric features (x)')
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from driftsentinel.detectors.seasonal import (
    MIN_PHASE_COUNT,
    PERIODS,
    WHITEN_MIN,
    Period,
    SeasonalReference,
    arma_coefficients,
    choose_period,
    detect_period,
    gaussian_ar1,
    lag1_autocorrelation,
    latent_dependence,
    normal_cdf,
    parse_period,
    phase_summaries,
    quantile_function,
    simulate_dependent,
    whiten,
)
from driftsentinel.schemas.batch import FeatureBatch
from driftsentinel.schemas.profile import NumericProfile, ReferenceProfile, SeasonalFeature, SeasonalProfile

#: Quantiles of the phase-standardised values and of the innovations (the simulator's marginal;
#: 1,000 so the simulated tails, linear between quantiles, follow the reference's to 1 in 1,000).
RESIDUAL_QUANTILES = 1000
NONE = Period("none", 1.0, 1)
#: A latent AR(1) share up to this gets a share per phase (:func:`phase_weights`): at least 5 %
#: of the latent variance is noise. Above, a plain AR(1) (``theta`` near 0) keeps one share.
PHASE_WEIGHT_MAX = 0.95


def event_seconds(values: Sequence[Any]) -> np.ndarray:
    """Event times as epoch seconds: numbers as they are, RFC 3339 strings parsed (a time
    without a zone is UTC), None missing; :class:`ValueError` naming the first bad value.

    >>> event_seconds([0, "1970-01-02T00:00:00Z", "1970-01-01T01:00:00", None]).tolist()
    [0.0, 86400.0, 3600.0, nan]
    """
    out = np.empty(len(values))
    for i, v in enumerate(values):
        if v is None:
            out[i] = np.nan
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[i] = float(v)
        elif isinstance(v, str):
            try:
                when = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"event time {v!r} (row {i + 1}) is not epoch seconds or RFC 3339") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            out[i] = when.timestamp()
        else:
            raise ValueError(f"event time {v!r} (row {i + 1}) is not epoch seconds or RFC 3339")
    return out


def _feature(t: np.ndarray, x: np.ndarray, period: Period, min_count: int, rng: np.random.Generator) -> SeasonalFeature:
    """Per-phase summaries (``period``; 1 phase: overall), the dependence in time order, and
    the innovations when the dependence is whitened (``|acf1| >= WHITEN_MIN``)."""
    ok = np.isfinite(t)
    order = np.argsort(t[ok], kind="stable")
    t, x = t[ok][order], x[ok][order]
    ph = period.phase(t)
    s = phase_summaries(x, ph, period.phases, min_count)
    z = (x - s.mean[ph]) / s.std[ph]  # NaN stays NaN: its pairs drop out of the autocorrelation
    present = z[np.isfinite(z)]
    rq = np.quantile(present, np.linspace(0.0, 1.0, RESIDUAL_QUANTILES + 1))
    acf1 = lag1_autocorrelation(z)
    r_mean = float(present.mean())
    extra: dict[str, Any] = {}
    if abs(acf1) >= WHITEN_MIN:
        phi, theta = arma_coefficients(acf1, lag1_autocorrelation(z, 2))
        eta = whiten((z - r_mean) / _spread(present), phi, theta)[0]
        eta = eta[np.isfinite(eta)]
        extra = {
            "whiten": phi,
            "whiten_theta": theta,
            "innovation_quantiles": np.quantile(eta, np.linspace(0.0, 1.0, RESIDUAL_QUANTILES + 1)).tolist(),
            "innovation_mean": float(eta.mean()),
            "innovation_std": _spread(eta),
        }
    ar1, weight = latent_dependence(z, rq, rng)
    if weight <= PHASE_WEIGHT_MAX and acf1 > 0.0 and period.phases > 1:
        extra["ar1_weight_phase"] = phase_weights(z, ph, period.phases, acf1, weight).tolist()
    return SeasonalFeature(
        counts=s.counts.tolist(),
        pooled=s.pooled.tolist(),
        mean=s.mean.tolist(),
        std=s.std.tolist(),
        quantiles=s.quantiles.tolist(),
        residual_quantiles=rq.tolist(),
        residual_mean=r_mean,
        residual_std=_spread(present),
        acf1=acf1,
        ar1=ar1,
        ar1_weight=weight,
        reference_cycles=float(t[-1] - t[0]) / period.seconds if t.size else 0.0,
        **extra,
    )


def phase_weights(z: np.ndarray, phase: np.ndarray, phases: int, acf1: float, weight: float) -> np.ndarray:
    """The simulator's latent AR(1) share per phase: ``weight`` times the phase's own lag-1
    autocorrelation of ``z`` (pairs of consecutive values inside the phase) over the
    overall ``acf1``, clipped to (0, 1]. An AR(1) level seen through noise whose share
    of the variance follows the cycle (a Poisson count of a cyclic rate: the noise is
    relatively smaller where the rate is high) has a stronger dependence in some phases;
    simulating one share everywhere leaves the whitened values' phase-dependent
    autocorrelation out. A phase with fewer than 30 pairs keeps ``weight``."""
    w = np.full(phases, weight)
    pairs = np.bincount(phase[1:][phase[1:] == phase[:-1]], minlength=phases)
    for p in np.flatnonzero(pairs >= 30).tolist():
        rho = lag1_autocorrelation(np.where(phase == p, z, np.nan))  # only consecutive values inside the phase pair
        w[p] = weight * rho / acf1
    return np.clip(w, 1e-6, 1.0)


def _spread(values: np.ndarray) -> float:
    sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return sd if sd > 0 else 1.0


def seasonal_profile(
    t: np.ndarray,
    numeric: Mapping[str, np.ndarray],
    period: str,
    time_column: str,
    rng: np.random.Generator,
    min_count: int = MIN_PHASE_COUNT,
) -> tuple[SeasonalProfile, str]:
    """The ``seasonal`` section for ``numeric`` columns (aligned with the event times ``t``)
    and a one-line note of what was found. ``period``: a name :func:`~.seasonal.parse_period`
    reads, ``auto`` (detect per feature, :func:`~.seasonal.choose_period` for the profile)
    or ``none`` (no cycle: the dependence only). :class:`ValueError` without event times."""
    t = np.asarray(t, dtype=np.float64)
    if not np.isfinite(t).any():
        raise ValueError(f"time column {time_column!r} has no event times")
    cols = {n: np.asarray(v, dtype=np.float64) for n, v in numeric.items() if np.size(v) == t.size}
    cols = {n: v for n, v in cols.items() if np.isfinite(v).sum() >= 2}
    detected = period == "auto"
    if detected:
        choices = {n: detect_period(t, v)[0] for n, v in cols.items()}
        chosen = choose_period(list(choices.values()))
        cyclic = {n for n, p in choices.items() if p is not None}
        names = sorted(cyclic)
        note = (
            f"seasonal: {chosen.name} detected in {len(cyclic)} of {len(cols)} numeric features"
            + (f" ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})" if names else "")
            if chosen is not None
            else f"seasonal: no daily or weekly cycle in {len(cols)} numeric features (serial dependence measured)"
        )
    else:
        chosen = None if period == "none" else parse_period(period)
        cyclic = set(cols) if chosen is not None else set()
        note = f"seasonal: {chosen.name if chosen else 'no period'} for {len(cols)} numeric features"
    use = chosen or NONE
    features = {n: _feature(t, v, use if n in cyclic else NONE, min_count, rng) for n, v in cols.items()}
    section = SeasonalProfile(
        period=use.name,
        seconds=use.seconds,
        phases=use.phases,
        origin=use.origin,
        time_column=time_column,
        detected=detected,
        min_phase_count=min_count,
        features=features,
    )
    return section, note


def period_of(section: SeasonalProfile) -> Period:
    """The :class:`~.seasonal.Period` a profile's seasonal section was built with."""
    if section.period in PERIODS:
        return PERIODS[section.period]
    return Period(section.period, section.seconds, section.phases, section.origin)


def seasonal_reference(section: SeasonalProfile, names: Sequence[str]) -> SeasonalReference:
    """The per-phase means and stds of ``names`` (features of ``section``), phases x features;
    a feature without a cycle of its own repeats its overall mean and std in every phase."""
    k = section.phases
    mean = np.empty((k, len(names)))
    std = np.empty((k, len(names)))
    for j, name in enumerate(names):
        feat = section.features[name]
        mean[:, j] = np.broadcast_to(np.asarray(feat.mean), (k,))
        std[:, j] = np.broadcast_to(np.asarray(feat.std), (k,))
    return SeasonalReference(period_of(section), mean, std)


# ------------------------------------------------------------------------------------- the bank's view
def cyclic_features(profile: ReferenceProfile) -> list[str]:
    """The features of ``profile`` with per-phase summaries (more than one phase)."""
    if profile.seasonal is None:
        return []
    return [n for n, f in profile.seasonal.features.items() if len(f.mean) > 1]


def transformed_features(profile: ReferenceProfile) -> list[str]:
    """The features the detectors see transformed: cyclic (phase-standardised) or whitened."""
    if profile.seasonal is None:
        return []
    return [n for n, f in profile.seasonal.features.items() if len(f.mean) > 1 or f.whiten != 0.0]


def view_profile(prof: NumericProfile, feat: SeasonalFeature) -> NumericProfile:
    """A feature's reference in the units its detectors see: the innovations of a whitened
    feature, else the phase-standardised residuals (count and missing share kept)."""
    if feat.innovation_quantiles is not None:
        q, mean, std = feat.innovation_quantiles, feat.innovation_mean, feat.innovation_std
    else:
        q, mean, std = feat.residual_quantiles, feat.residual_mean, feat.residual_std
    return NumericProfile(
        count=prof.count,
        missing_ratio=prof.missing_ratio,
        mean=mean,
        std=std,
        min=q[0],
        max=q[-1],
        quantiles=list(q),
    )


def seasonal_view(profile: ReferenceProfile) -> ReferenceProfile:
    """``profile`` with each transformed feature's profile replaced by :func:`view_profile`
    and no seasonal section (itself when it has none): the reference of a bank that sees
    transformed values. The multivariate section keeps only untransformed features (its
    correlations were measured on raw values)."""
    names = transformed_features(profile)
    if not names or profile.seasonal is None:
        return profile
    features = dict(profile.features)
    for name in names:
        prof = features[name]
        if isinstance(prof, NumericProfile):
            features[name] = view_profile(prof, profile.seasonal.features[name])
    update: dict[str, Any] = {"features": features, "seasonal": None}  # a view is not viewed again
    mv = profile.multivariate
    if mv is not None and set(names) & set(mv.features):
        # the section's correlations are of the raw values: only untransformed features keep them
        keep = [i for i, n in enumerate(mv.features) if n not in names]
        r = np.asarray(mv.correlation)[np.ix_(keep, keep)]
        kept = [mv.features[i] for i in keep]
        update["multivariate"] = (
            mv.model_copy(update={"features": kept, "correlation": r.tolist()}) if len(kept) >= 2 else None
        )
    return profile.model_copy(update=update)


def dependence(profile: ReferenceProfile, name: str) -> float:
    """The latent AR(1) coefficient the profile measured for ``name`` (0: none measured)."""
    if profile.seasonal is None or name not in profile.seasonal.features:
        return 0.0
    return profile.seasonal.features[name].ar1


#: Simulated streams per draw of the reference's own sampling error (:func:`simulate_view`).
REFERENCE_DRAWS = 8


def simulate_view(feat: SeasonalFeature, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` stationary values in the units the detectors see (what ``calibrate`` draws):
    residuals with the measured dependence (:func:`~.seasonal.simulate_dependent`), whitened
    as live values are when the feature is (:func:`live_view`)."""
    phase = _phase_runs(feat, n)
    if feat.ar1_weight_phase is None:
        r = simulate_dependent(np.asarray(feat.residual_quantiles), feat.ar1, n, rng, feat.ar1_weight)
    else:  # the latent share of each phase, held for its runs like the phase offsets
        w = np.asarray(feat.ar1_weight_phase)[phase]
        latent = np.sqrt(w) * gaussian_ar1(feat.ar1, n, rng) + np.sqrt(1.0 - w) * rng.standard_normal(n)
        r = quantile_function(np.asarray(feat.residual_quantiles), normal_cdf(latent))
    return live_view(feat, r, phase, rng)


#: Values per block of :func:`bootstrap_view`: long against the dependence (a correlation
#: time of 10 values at AR 0.9), so a block's joins are rare.
BOOTSTRAP_BLOCK = 2048
#: Fewest reference residuals :func:`bootstrap_view` draws from (4 blocks).
BOOTSTRAP_MIN = 4 * BOOTSTRAP_BLOCK


def reference_residuals(section: SeasonalProfile, name: str, t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The reference's own phase-standardised values ``(x - mean_p) / std_p`` of feature
    ``name``, in event-time order, rows without a time or a value dropped: what
    :func:`bootstrap_view` resamples (``calibrate --data``)."""
    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(x)
    order = np.argsort(t[ok], kind="stable")
    t, x = t[ok][order], x[ok][order]
    return seasonal_reference(section, [name]).z(x[:, None], t)[:, 0]


def bootstrap_view(feat: SeasonalFeature, residuals: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` stationary values in the units the detectors see, drawn from the reference's
    own residuals (:func:`reference_residuals`) by a moving-block bootstrap (Kunsch, 1989):
    blocks of :data:`BOOTSTRAP_BLOCK` consecutive values from random starts, then phase
    offsets and whitening as for live values (:func:`live_view`).

    What the latent Gaussian model of :func:`simulate_view` cannot hold, the blocks keep:
    for Poisson counts of an AR(1) rate (``benchmarks.seasonal``'s ``counts``), bursts of
    10-60 values whose whitened innovations average 1-3 sds, a convex rate's excursions.
    Measured with the same thresholds: 8.15 live false alarms per million values against
    0.75 on the latent model's draws, 3.25 against 3.5 on the blocks' (20 and 4 million
    values). Fewer than :data:`BOOTSTRAP_MIN` residuals: :func:`simulate_view`.
    """
    r0 = np.asarray(residuals, dtype=np.float64)
    r0 = r0[np.isfinite(r0)]
    if r0.size < BOOTSTRAP_MIN:
        return simulate_view(feat, n, rng)
    blocks = -(-n // BOOTSTRAP_BLOCK)
    starts = rng.integers(0, r0.size - BOOTSTRAP_BLOCK + 1, size=blocks)
    r = r0[(starts[:, None] + np.arange(BOOTSTRAP_BLOCK)[None, :]).ravel()[:n]]
    return live_view(feat, r, _phase_runs(feat, n), rng)


def _phase_runs(feat: SeasonalFeature, n: int) -> np.ndarray:
    """Phase indices of ``n`` simulated values: runs as long as the reference's values per
    phase and cycle, cycling through the phases."""
    k = len(feat.mean)
    counts = np.asarray(feat.counts, dtype=np.float64)
    run = max(1, round(counts.sum() / max(feat.reference_cycles, 1.0) / k)) if k > 1 else n
    return (np.arange(n) // run) % k


def live_view(feat: SeasonalFeature, r: np.ndarray, phase: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Reference-like residuals ``r`` as the detectors see live ones.

    Live values are standardised by phase means estimated from the reference, whose errors
    are offsets that persist for a whole phase, every cycle — a CUSUM accumulates them.
    They are simulated too: in each of :data:`REFERENCE_DRAWS` stretches, every phase gets
    an offset drawn from its mean's sampling error (``sqrt(lrv / n_p)``, ``n_p`` the
    values its summary pooled and ``lrv = 1 + 2 acf1 / (1 - phi)`` the long-run variance
    factor, ``phi`` the dependence's decay: the whitening's, else ``ar1``), held for runs of
    the reference's values per phase and cycle (``phase``). Then whitened as live values are
    when the feature is.
    """
    n = r.size
    r = r.copy()
    counts = np.asarray(feat.counts, dtype=np.float64)
    pooled = np.maximum(counts * np.asarray(feat.pooled), 1.0)
    decay = feat.whiten if feat.whiten != 0.0 else feat.ar1
    lrv = max(1.0, 1.0 + 2.0 * feat.acf1 / max(1.0 - decay, 1e-3))
    se = np.sqrt(lrv / pooled)
    bounds = np.linspace(0, n, REFERENCE_DRAWS + 1).astype(np.int64)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        r[a:b] += rng.normal(0.0, se)[phase[a:b]]
    if feat.whiten == 0.0:
        return r
    return whiten((r - feat.residual_mean) / feat.residual_std, feat.whiten, feat.whiten_theta)[0]


class SeasonalTransform:
    """What the detectors see of a profile's transformed features, batch by batch.

    A cyclic feature: ``x -> (x - mean_p) / std_p`` with ``p`` the phase of the row's event
    time (a row without one, NaN, gets the moments over the whole cycle: mean of the phase
    means, variance the mean phase variance plus the variance of the phase means); a
    feature with 1 phase: its overall mean and std. A whitened feature: then its ARMA(1,1)
    innovations (:func:`~.seasonal.whiten` of the centred, scaled values, with the
    profile's coefficients), which carry the last value and innovation across batches: the
    same values however the stream is cut; ``state_dict``/``load_state`` checkpoint them
    (2 numbers per whitened feature). Other columns pass unchanged. Memory: ``phases x features x 2``
    float64 plus that state.
    """

    def __init__(self, section: SeasonalProfile, names: list[str]) -> None:
        self.names = list(names)
        self.reference = seasonal_reference(section, self.names)
        m, s = self.reference.mean, self.reference.std
        self.overall_mean = m.mean(axis=0)
        self.overall_std = np.sqrt((s**2).mean(axis=0) + m.var(axis=0))
        self._index = {n: j for j, n in enumerate(self.names)}
        feats = [section.features[n] for n in self.names]
        self.phi = np.array([f.whiten for f in feats])
        self.theta = np.array([f.whiten_theta for f in feats])
        self.centre = np.array([f.residual_mean for f in feats])
        self.spread = np.array([f.residual_std for f in feats])
        self.prev = np.full(len(self.names), np.nan)  # the last value and innovation, per feature
        self.innovation = np.zeros(len(self.names))

    @classmethod
    def from_profile(cls, profile: ReferenceProfile | None) -> SeasonalTransform | None:
        """The transform of ``profile``'s transformed features; None when it has none."""
        if profile is None or profile.seasonal is None:
            return None
        names = transformed_features(profile)
        return cls(profile.seasonal, names) if names else None

    def apply(self, batch: FeatureBatch) -> FeatureBatch:
        """``batch`` with its transformed columns replaced (the same batch when it has none)."""
        cols = [(i, self._index[n]) for i, n in enumerate(batch.names) if n in self._index]
        if not cols or batch.values.shape[0] == 0:
            return batch
        at, ref = np.array([c[0] for c in cols]), np.array([c[1] for c in cols])
        t = np.asarray(batch.event_times, dtype=np.float64)
        known = np.isfinite(t)
        ph = self.reference.period.phase(np.where(known, t, 0.0))
        mean = np.where(known[:, None], self.reference.mean[ph][:, ref], self.overall_mean[ref])
        std = np.where(known[:, None], self.reference.std[ph][:, ref], self.overall_std[ref])
        values = batch.values.copy()
        values[:, at] = (values[:, at] - mean) / std
        for i, j in cols:
            if self.phi[j] != 0.0:
                r = (values[:, i] - self.centre[j]) / self.spread[j]
                state = (float(self.prev[j]), float(self.innovation[j]))
                values[:, i], (self.prev[j], self.innovation[j]) = whiten(r, self.phi[j], self.theta[j], state)
        return dataclasses.replace(batch, values=values)

    def state_dict(self) -> dict[str, Any]:
        """The whitening's carried values, per transformed feature (plain arrays)."""
        return {"names": list(self.names), "prev": self.prev.copy(), "innovation": self.innovation.copy()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s values; :class:`ValueError` if they are for other features."""
        if list(state.get("names", [])) != self.names:
            raise ValueError("seasonal state is for other features than the profile's")
        prev = np.asarray(state["prev"], dtype=np.float64)
        innovation = np.asarray(state["innovation"], dtype=np.float64)
        if prev.shape != self.prev.shape or innovation.shape != self.innovation.shape:
            raise ValueError("seasonal state has the wrong shape")
        if np.isinf(prev).any() or not np.isfinite(innovation).all():
            raise ValueError("seasonal state values must be finite (NaN: no value yet)")
        self.prev, self.innovation = prev.copy(), innovation.copy()
