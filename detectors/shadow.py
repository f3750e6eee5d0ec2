"""Shadow-model divergence: does a candidate model behave like the production one?

Both models score the same traffic; their predictions are paired by request ``id`` (the
caller does the join) and compared per tumbling window of ``window_pairs`` pairs:

- classes (strings, or whole numbers): the agreement rate, the most frequent
  disagreements ``(baseline, candidate)``, and the Jensen-Shannon distance (base 2, in
  [0, 1]) between the two models' class distributions;
- scores (other numbers): the error ``candidate - baseline`` (mean, std, quantiles, mean
  absolute error), the share of pairs within ``score_tolerance`` as the agreement rate,
  and the two-sample Kolmogorov-Smirnov statistic between the two score distributions.

The pair diverges when the agreement rate falls below ``min_agreement`` or the distance
exceeds ``max_distance``: one ``drift`` signal when that starts, one ``resolved`` when a
later window is back. No I/O, no clock: the same pairs give the same signals.

>>> from driftsentinel.schemas.skew import ShadowConfig
>>> det = ShadowDetector(ShadowConfig(baseline="v1", candidate="v2", window_pairs=100))
>>> same = det.update([str(i) for i in range(100)], ["a"] * 100, ["a"] * 99 + ["b"])
>>> same[0].report.agreement_rate, same[0].signals
(0.99, [])
>>> changed = det.update([str(i) for i in range(100)], ["a"] * 100, ["a"] * 80 + ["b"] * 20)
>>> [(s.status, s.statistic) for s in changed[0].signals]
[('drift', 0.8)]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from driftsentinel.detectors.skew import summarize
from driftsentinel.schemas.alerts import WindowSummary
from driftsentinel.schemas.skew import ShadowConfig

Kind = Literal["classes", "scores"]
_OTHER = "__other__"
_QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _label(value: Any) -> str:
    """A class as text; whole numbers without '.0' (1 and 1.0 are the same class)."""
    if _is_number(value) and float(value).is_integer():
        return str(int(value))
    return str(value)[:200]


def js_distance(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count or probability vectors.

    >>> js_distance([1, 0], [0, 1]), js_distance([3, 1], [3, 1])
    (1.0, 0.0)
    """
    pa, qa = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if pa.sum() <= 0 or qa.sum() <= 0:
        return 0.0
    pa, qa = pa / pa.sum(), qa / qa.sum()
    m = (pa + qa) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return math.sqrt(max((kl(pa) + kl(qa)) / 2, 0.0))


def ks_statistic(a: ArrayLike, b: ArrayLike) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two ECDFs.

    >>> ks_statistic([1, 2, 3], [1, 2, 3]), ks_statistic([0, 0], [1, 1])
    (0.0, 1.0)
    """
    xa, xb = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    if xa.size == 0 or xb.size == 0:
        return 0.0
    grid = np.concatenate([xa, xb])
    cdf_a = np.searchsorted(xa, grid, side="right") / xa.size
    cdf_b = np.searchsorted(xb, grid, side="right") / xb.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


@dataclass(frozen=True)
class ShadowReport:
    """One window of paired predictions."""

    kind: Kind
    pairs: int
    missing: int
    agreement_rate: float
    distance: float
    distance_name: str
    error: dict[str, float] | None
    top_disagreements: list[tuple[str, str, int]]
    samples: list[dict[str, Any]]
    baseline: WindowSummary
    candidate: WindowSummary

    def evidence(self) -> dict[str, Any]:
        """JSON-ready evidence for an alert."""
        return {
            "kind": self.kind,
            "pairs": self.pairs,
            "missing": self.missing,
            "agreement_rate": self.agreement_rate,
            self.distance_name: self.distance,
            "error": self.error,
            "top_disagreements": [{"baseline": b, "candidate": c, "count": n} for b, c, n in self.top_disagreements],
            "sample": self.samples,
        }


@dataclass(frozen=True)
class ShadowSignal:
    """The candidate started (``drift``) or stopped (``resolved``) diverging from the baseline.

    ``row`` is the index, in the ``update`` call's pairs, of the pair that closed the window.
    """

    row: int
    status: Literal["drift", "resolved"]
    statistic: float
    threshold: float
    report: ShadowReport
    detector: str = "shadow_divergence"
    statistic_name: str = "agreement_rate"


@dataclass(frozen=True)
class ShadowResult:
    """A closed window and the decision it led to (if any)."""

    row: int
    report: ShadowReport
    signals: list[ShadowSignal]


class ShadowDetector:
    """Window-by-window comparison of two models' predictions on the same requests."""

    def __init__(self, config: ShadowConfig) -> None:
        self.config = config
        self.kind: Kind | None = None if config.kind == "auto" else config.kind
        self.diverged = False
        self._ids: list[str] = []
        self._base: list[Any] = []
        self._cand: list[Any] = []

    def update(self, ids: Sequence[str], baseline: Sequence[Any], candidate: Sequence[Any]) -> list[ShadowResult]:
        """Add paired predictions; returns the windows this closed."""
        if not len(ids) == len(baseline) == len(candidate):
            raise ValueError("ids, baseline and candidate must have the same length")
        out: list[ShadowResult] = []
        for row, (key, b, c) in enumerate(zip(ids, baseline, candidate, strict=True)):
            self._ids.append(key)
            self._base.append(b)
            self._cand.append(c)
            if len(self._ids) >= self.config.window_pairs:
                out.append(self._close(row))
        return out

    def flush(self, min_pairs: int = 1) -> ShadowResult | None:
        """Close the current window early (idle, exit) when it holds at least ``min_pairs`` pairs."""
        if len(self._ids) < max(min_pairs, 1):
            return None
        return self._close(-1)

    def state_dict(self) -> dict[str, Any]:
        """The open window and the episode, as plain data (no pickle).

        >>> det = ShadowDetector(ShadowConfig(baseline="v1", candidate="v2", window_pairs=10))
        >>> _ = det.update(["r1"], ["a"], ["b"])
        >>> again = ShadowDetector.from_state(det.config, det.state_dict())
        >>> again.flush().report == det.flush().report
        True
        """
        return {
            "kind": self.kind,
            "diverged": self.diverged,
            "ids": list(self._ids),
            "baseline": list(self._base),
            "candidate": list(self._cand),
        }

    @classmethod
    def from_state(cls, config: ShadowConfig, state: dict[str, Any]) -> ShadowDetector:
        """Rebuild from :meth:`state_dict` under ``config`` (a kind pinned by the config wins)."""
        det = cls(config)
        if det.kind is None and state["kind"] in ("classes", "scores"):
            det.kind = state["kind"]
        det.diverged = bool(state["diverged"])
        det._ids, det._base, det._cand = list(state["ids"]), list(state["baseline"]), list(state["candidate"])
        if not len(det._ids) == len(det._base) == len(det._cand):
            raise ValueError("shadow state: ids, baseline and candidate differ in length")
        return det

    def _decide_kind(self, values: list[Any]) -> Kind:
        if any(isinstance(v, (str, bool)) for v in values):
            return "classes"
        if all(float(v).is_integer() for v in values):
            return "classes"
        return "scores"

    def _close(self, row: int) -> ShadowResult:
        ids, base, cand = self._ids, self._base, self._cand
        self._ids, self._base, self._cand = [], [], []
        keep = [i for i in range(len(ids)) if not (_missing(base[i]) or _missing(cand[i]))]
        missing = len(ids) - len(keep)
        if self.kind is None and keep:
            self.kind = self._decide_kind([base[i] for i in keep] + [cand[i] for i in keep])
        kind: Kind = self.kind or "classes"
        if kind == "classes":
            report = self._classes([ids[i] for i in keep], [base[i] for i in keep], [cand[i] for i in keep], missing)
        else:
            report = self._scores([ids[i] for i in keep], [base[i] for i in keep], [cand[i] for i in keep], missing)
        cfg = self.config
        diverged = bool(report.pairs) and (
            report.agreement_rate < cfg.min_agreement or report.distance > cfg.max_distance
        )
        signals = []
        if report.pairs and diverged != self.diverged:
            self.diverged = diverged
            signals.append(
                ShadowSignal(
                    row=row,
                    status="drift" if diverged else "resolved",
                    statistic=report.agreement_rate,
                    threshold=cfg.min_agreement,
                    report=report,
                )
            )
        return ShadowResult(row=row, report=report, signals=signals)

    def _class_summary(self, labels: list[str], values: list[Any]) -> WindowSummary:
        return summarize([float(v) for v in values if _is_number(v)], 0, len(labels), Counter(labels))

    def _classes(self, ids: list[str], base: list[Any], cand: list[Any], missing: int) -> ShadowReport:
        cfg = self.config
        lb, lc = [_label(v) for v in base], [_label(v) for v in cand]
        classes: dict[str, int] = {}
        for label in lb + lc:  # first seen first; bounded
            if label not in classes and len(classes) < cfg.max_classes:
                classes[label] = len(classes)
        p = np.zeros(len(classes) + 1)
        q = np.zeros(len(classes) + 1)
        for label in lb:
            p[classes.get(label, len(classes))] += 1
        for label in lc:
            q[classes.get(label, len(classes))] += 1
        disagree: Counter[tuple[str, str]] = Counter()
        samples: list[dict[str, Any]] = []
        agree = 0
        for key, b, c in zip(ids, lb, lc, strict=True):
            if b == c:
                agree += 1
                continue
            pair = (b if b in classes else _OTHER, c if c in classes else _OTHER)
            disagree[pair] += 1
            if len(samples) < cfg.sample_size:
                samples.append({"id": str(key)[:200], "baseline": b, "candidate": c})
        n = len(ids)
        return ShadowReport(
            kind="classes",
            pairs=n,
            missing=missing,
            agreement_rate=agree / n if n else 1.0,
            distance=js_distance(p, q),
            distance_name="js_distance",
            error=None,
            top_disagreements=[(b, c, k) for (b, c), k in disagree.most_common(5)],
            samples=samples,
            baseline=self._class_summary(lb, base),
            candidate=self._class_summary(lc, cand),
        )

    def _scores(self, ids: list[str], base: list[Any], cand: list[Any], missing: int) -> ShadowReport:
        cfg = self.config
        b = np.asarray([float(v) for v in base], dtype=np.float64)
        c = np.asarray([float(v) for v in cand], dtype=np.float64)
        err = c - b
        n = int(err.size)
        error: dict[str, float] | None = None
        agree = 1.0
        samples: list[dict[str, Any]] = []
        if n:
            within = np.abs(err) <= cfg.score_tolerance
            agree = float(within.mean())
            qs = np.quantile(err, list(_QUANTILES.values()))
            error = {
                "mean": float(err.mean()),
                "std": float(err.std(ddof=1)) if n > 1 else 0.0,
                "mean_abs": float(np.abs(err).mean()),
                **{k: float(v) for k, v in zip(_QUANTILES, qs, strict=True)},
            }
            for i in np.flatnonzero(~within)[: cfg.sample_size]:
                samples.append({"id": str(ids[i])[:200], "baseline": float(b[i]), "candidate": float(c[i])})
        return ShadowReport(
            kind="scores",
            pairs=n,
            missing=missing,
            agreement_rate=agree,
            distance=ks_statistic(b, c),
            distance_name="ks_statistic",
            error=error,
            top_disagreements=[],
            samples=samples,
            baseline=summarize(b.tolist(), missing),
            candidate=summarize(c.tolist(), missing),
        )
