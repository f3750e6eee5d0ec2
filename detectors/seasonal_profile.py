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
    Period,
    SeasonalReference,
    choose_period,
    detect_period,
    lag1_autocorrelation,
    latent_ar1,
    parse_period,
    phase_summaries,
)
from driftsentinel.schemas.batch import FeatureBatch
from driftsentinel.schemas.profile import NumericProfile, ReferenceProfile, SeasonalFeature, SeasonalProfile

#: Quantiles of the phase-standardised values (the simulator's marginal).
RESIDUAL_QUANTILES = 100
NONE = Period("none", 1.0, 1)


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
    """Per-phase summaries (``period``; 1 phase: overall) and the dependence, in time order."""
    ok = np.isfinite(t)
    order = np.argsort(t[ok], kind="stable")
    t, x = t[ok][order], x[ok][order]
    ph = period.phase(t)
    s = phase_summaries(x, ph, period.phases, min_count)
    z = (x - s.mean[ph]) / s.std[ph]  # NaN stays NaN: its pairs drop out of the autocorrelation
    present = z[np.isfinite(z)]
    rq = np.quantile(present, np.linspace(0.0, 1.0, RESIDUAL_QUANTILES + 1))
    acf1 = lag1_autocorrelation(z)
    return SeasonalFeature(
        counts=s.counts.tolist(),
        pooled=s.pooled.tolist(),
        mean=s.mean.tolist(),
        std=s.std.tolist(),
        quantiles=s.quantiles.tolist(),
        residual_quantiles=rq.tolist(),
        residual_mean=float(present.mean()),
        residual_std=float(present.std(ddof=1)) if present.size > 1 and present.std() > 0 else 1.0,
        acf1=acf1,
        ar1=latent_ar1(acf1, rq, rng),
    )


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


def residual_profile(prof: NumericProfile, feat: SeasonalFeature) -> NumericProfile:
    """A cyclic feature's reference in phase-standardised units: the residuals' count,
    mean, std, range and quantiles (what its live values, standardised by their own
    phase, are compared with)."""
    q = feat.residual_quantiles
    return NumericProfile(
        count=prof.count,
        missing_ratio=prof.missing_ratio,
        mean=feat.residual_mean,
        std=feat.residual_std,
        min=q[0],
        max=q[-1],
        quantiles=list(q),
    )


def seasonal_view(profile: ReferenceProfile) -> ReferenceProfile:
    """``profile`` with each cyclic feature's profile replaced by :func:`residual_profile`
    (itself when it has none): the reference of a bank that sees phase-standardised values."""
    names = cyclic_features(profile)
    if not names or profile.seasonal is None:
        return profile
    features = dict(profile.features)
    for name in names:
        prof = features[name]
        if isinstance(prof, NumericProfile):
            features[name] = residual_profile(prof, profile.seasonal.features[name])
    return profile.model_copy(update={"features": features})


def dependence(profile: ReferenceProfile, name: str) -> float:
    """The latent AR(1) coefficient the profile measured for ``name`` (0: none measured)."""
    if profile.seasonal is None or name not in profile.seasonal.features:
        return 0.0
    return profile.seasonal.features[name].ar1


class SeasonalTransform:
    """Phase-standardises a profile's cyclic features in a :class:`FeatureBatch`.

    ``x -> (x - mean_p) / std_p`` with ``p`` the phase of the row's event time; a row
    without an event time (NaN) gets the feature's moments over the whole cycle (the
    mixture of the phases: mean of the phase means, variance the mean phase variance
    plus the variance of the phase means). Other columns pass unchanged. Stateless:
    nothing to checkpoint; memory ``phases x cyclic features x 2`` float64.
    """

    def __init__(self, section: SeasonalProfile, names: list[str]) -> None:
        self.names = list(names)
        self.reference = seasonal_reference(section, self.names)
        m, s = self.reference.mean, self.reference.std
        self.overall_mean = m.mean(axis=0)
        self.overall_std = np.sqrt((s**2).mean(axis=0) + m.var(axis=0))
        self._index = {n: j for j, n in enumerate(self.names)}

    @classmethod
    def from_profile(cls, profile: ReferenceProfile | None) -> SeasonalTransform | None:
        """The transform of ``profile``'s cyclic features; None when it has none."""
        if profile is None or profile.seasonal is None:
            return None
        names = cyclic_features(profile)
        return cls(profile.seasonal, names) if names else None

    def apply(self, batch: FeatureBatch) -> FeatureBatch:
        """``batch`` with its cyclic columns phase-standardised (the same batch when it has none)."""
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
        return dataclasses.replace(batch, values=values)
