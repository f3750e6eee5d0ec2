"""The segment mix: each segment's share of a model's traffic, tested per window.

A mix shift (segment shares 50/30/20 -> 30/30/40 while every segment looks as it did) is
its own alert: detector ``segment_mix`` on the feature ``@segment:<key>``. The shares of a
tumbling window (the window tests' windows: ``window_events`` events or ``window_seconds``
of event time, :func:`~driftsentinel.detectors.reference_monitor.window_cuts`) are compared
with the reference mix, the profile's segment shares or, without a profile, the first full
window's, as a categorical feature is (:mod:`~driftsentinel.detectors.window_tests`):
Cramér's V of the one-sample chi-square must pass ``window_tests.chi2`` *and* be
significant for the window's size (p-value under ``window_tests.alpha``, the reference's own
sampling noise counted when it is a window). The episode ends at the first window whose V is
at most ``chi2 x resolve_ratio``.

>>> from driftsentinel.schemas import WindowTestConfig
>>> mix = MixMonitor(WindowTestConfig(window_events=1000), n_codes=3, key="country")
>>> rng = np.random.default_rng(0)
>>> before = rng.choice(3, size=3000, p=[0.5, 0.3, 0.2])
>>> after = rng.choice(3, size=3000, p=[0.3, 0.3, 0.4])
>>> sigs = mix.update(np.r_[before, after], np.full(6000, np.nan), ["DE", "FR", "__other__"])
>>> [(s.row, s.detector, s.status, s.feature) for s in sigs]
[(3999, 'segment_mix', 'drift', '@segment:country')]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from driftsentinel.detectors.reference_monitor import window_cuts
from driftsentinel.detectors.window_tests import cramers_v, p_value
from driftsentinel.schemas import WindowSummary, WindowTestConfig
from driftsentinel.schemas.signals import DriftSignal

DETECTOR = "segment_mix"
STATISTIC = "cramers_v"
#: Segments named in an alert's window and reference summaries (the largest shares).
TOP_SHARES = 10


def mix_feature(key: str) -> str:
    """The feature name of a key's mix alerts."""
    return f"@segment:{key}"


class MixMonitor:
    """Tumbling windows of segment codes ``0 .. n_codes - 1`` against the reference shares.

    ``reference``: the shares per code (with ``reference_count`` rows behind them, 0 =
    exact); ``None``: the first window with at least ``min_count`` events becomes the
    reference (a window of its own size: its sampling noise is counted in the p-value).
    """

    def __init__(
        self,
        config: WindowTestConfig,
        n_codes: int,
        key: str,
        reference: np.ndarray | None = None,
        reference_count: int = 0,
    ) -> None:
        self.config = config
        self.key = key
        self.n_codes = n_codes
        self.reference = None if reference is None else np.asarray(reference, dtype=np.float64)
        self.reference_count = reference_count
        self.counts = np.zeros(n_codes, dtype=np.int64)
        self.rows = 0
        self.bucket: float | None = None
        self.active = False
        self.last_statistic: float | None = None

    def update(self, codes: np.ndarray, event_times: np.ndarray, names: list[str]) -> list[DriftSignal]:
        """Feed a batch's codes (stream order); ``names[c]``: code ``c``'s segment, for the evidence."""
        n = int(codes.size)
        cuts, self.bucket = window_cuts(self.config, n, event_times, self.rows, self.bucket)
        out: list[DriftSignal] = []
        start = 0
        for cut, row in cuts:
            self._count(codes[start:cut])
            start = cut
            sig = self._decide(row, names)
            if sig is not None:
                out.append(sig)
            self.counts[:] = 0
            self.rows = 0
        self._count(codes[start:])
        return out

    def _count(self, codes: np.ndarray) -> None:
        if codes.size:
            self.counts += np.bincount(codes, minlength=self.n_codes)[: self.n_codes]
            self.rows += int(codes.size)

    def _decide(self, row: int, names: list[str]) -> DriftSignal | None:
        n = int(self.counts.sum())
        if n < self.config.min_count:
            return None
        live = self.counts / n
        if self.reference is None:  # no profile: the first full window is the reference mix
            self.reference, self.reference_count = live.copy(), n
            return None
        v = cramers_v(live, self.reference, n)
        bins = int(((self.reference > 0) | (live > 0)).sum())
        p = p_value("chi2", v, n, self.reference_count, bins)
        self.last_statistic = v
        threshold = self.config.chi2
        status: str | None = None
        if not self.active and v >= threshold and p < self.config.alpha:
            self.active, status = True, "drift"
        elif self.active and v <= threshold * self.config.resolve_ratio:
            self.active, status = False, "resolved"
        if status is None:
            return None
        return DriftSignal(
            row=row,
            feature=mix_feature(self.key),
            detector=DETECTOR,
            status=status,  # type: ignore[arg-type]
            statistic=v,
            statistic_name=STATISTIC,
            threshold=threshold,
            window=_shares(live, n, names),
            reference=_shares(self.reference, self.reference_count, names),
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts.copy(),
            "rows": self.rows,
            "bucket": self.bucket,
            "active": self.active,
            "reference": None if self.reference is None else self.reference.copy(),
            "reference_count": self.reference_count,
            "last_statistic": self.last_statistic,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        counts = np.asarray(state["counts"], dtype=np.int64)
        if counts.shape != (self.n_codes,):
            raise ValueError(f"segment mix state has {counts.size} codes, the configuration {self.n_codes}")
        ref = state["reference"]
        if ref is not None:
            ref = np.asarray(ref, dtype=np.float64)
            if ref.shape != (self.n_codes,) or not np.isfinite(ref).all():
                raise ValueError("segment mix state: bad reference shares")
        self.counts = counts
        self.rows = int(state["rows"])
        bucket = state["bucket"]
        self.bucket = None if bucket is None else float(bucket)
        self.active = bool(state["active"])
        if ref is not None:
            self.reference, self.reference_count = ref, int(state["reference_count"])
        last = state.get("last_statistic")
        self.last_statistic = None if last is None else float(last)


def _shares(shares: np.ndarray, count: int, names: list[str]) -> WindowSummary:
    """A mix as a summary: the largest shares by segment name."""
    top = np.argsort(-shares, kind="stable")[:TOP_SHARES]
    cats = {names[int(c)]: float(shares[c]) for c in top if shares[c] > 0 and int(c) < len(names)}
    return WindowSummary(count=count, mean=None, std=None, quantiles={}, missing_ratio=None, categories=cats)
