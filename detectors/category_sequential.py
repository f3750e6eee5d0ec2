"""The categorical sequential tests of a reference monitor: ``cusum_categories``, ``cusum_unseen``.

One :class:`~driftsentinel.detectors.sequential.CategoricalSequential` for the profile's
categorical features, fed every value in stream order (the same decisions however the
stream is cut into batches). The monitor's category codes (its vocabulary: the training
categories first, then live ones as they come) are mapped to the reference's codes: the
profile's top categories in order (``0..K-1``), then ``K`` for "another category seen in
training", ``-1`` missing, ``-2`` never seen in training (a profile without the full list
of training categories cannot tell those from ``K``: they count as ``K``).

Evidence: each feature keeps its last ``RECENT`` non-missing values (monitor codes, in the
checkpoint too), so a decision's window summarises the values since the change point
(at most ``RECENT`` of them), whatever the batches were.

>>> from driftsentinel.detectors.categories import Vocabulary
>>> from driftsentinel.schemas.config import SequentialConfig
>>> from driftsentinel.schemas.profile import CategoricalProfile
>>> prof = CategoricalProfile(kind="categorical", count=1000, missing_ratio=0.0, n_categories=3,
...     frequencies={"a": 0.6, "b": 0.3}, other_share=0.1, seen=["a", "b", "c"])
>>> vocab = {"x": Vocabulary(["a", "b", "c"])}
>>> watch = CategorySequentialWatch({"x": prof}, SequentialConfig(), 2000)
>>> codes = vocab["x"].codes(["a", "c", "zz", None])
>>> watch.reference_codes("x", codes).tolist()
[0, 2, -2, -1]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftsentinel.detectors.categories import MISSING, OVERFLOW
from driftsentinel.detectors.sequential import CATEGORICAL_TESTS, CategoricalSequential, SequentialHit
from driftsentinel.schemas import WindowSummary
from driftsentinel.schemas.config import SequentialConfig
from driftsentinel.schemas.profile import CategoricalProfile

RECENT = 512  # values per feature kept as the evidence of a decision
UNSEEN = -2  # the sequential tests' code of a value never seen in training


@dataclass(frozen=True)
class CategoryHit:
    """A sequential decision about a categorical feature, with the values it is about."""

    hit: SequentialHit
    feature: str
    window: WindowSummary


class CategorySequentialWatch:
    """``cusum_categories`` and ``cusum_unseen`` of every categorical feature of a profile."""

    def __init__(
        self,
        profiles: Mapping[str, CategoricalProfile],
        config: SequentialConfig,
        resolve_min_count: int,
        per_feature: Mapping[str, Any] | None = None,
    ) -> None:
        self.tests = CategoricalSequential(config, resolve_min_count)
        self.names: list[str] = []
        self._top: dict[str, int] = {}
        self._n_train: dict[str, int] = {}
        self._full_list: dict[str, bool] = {}
        for name, prof in profiles.items():
            p0 = np.array([*prof.frequencies.values(), prof.other_share], dtype=np.float64)
            if not p0.sum() > 0:  # no reference shares (all missing in training): nothing to test
                continue
            j = self.tests.add_feature(p0, max(prof.count, 1))
            params = (per_feature or {}).get(name)
            h = {t: float(v) for t in CATEGORICAL_TESTS if (v := getattr(params, f"{t}_threshold", None)) is not None}
            if h:
                self.tests.set_thresholds(j, **h)
            self.names.append(name)
            self._top[name] = len(prof.frequencies)
            self._n_train[name] = len(dict.fromkeys([*prof.frequencies, *prof.seen]))
            self._full_list[name] = bool(prof.seen)
        self.recent = {n: np.zeros(0, dtype=np.int64) for n in self.names}

    def reference_codes(self, name: str, codes: np.ndarray) -> np.ndarray:
        """The monitor's codes of ``name`` (its vocabulary's; -1 missing, -2 overflow) as reference codes."""
        top, other = self._top[name], self._top[name]
        new = UNSEEN if self._full_list[name] else other
        out = np.where(codes >= top, other, codes)
        out = np.where(codes >= self._n_train[name], new, out)
        out = np.where(codes == OVERFLOW, new, out)  # past the vocabulary: never a training category
        return np.where(codes == MISSING, MISSING, out)

    def update(self, codes: Mapping[str, np.ndarray], n: int, categories: Mapping[str, list[str]]) -> list[CategoryHit]:
        """One batch of ``n`` rows: each feature's monitor codes per row (absent: all missing).

        ``categories``: each feature's vocabulary (code -> category), for the evidence.
        """
        if not self.names or n == 0:
            return []
        matrix = np.full((n, len(self.names)), MISSING, dtype=np.int64)
        for j, name in enumerate(self.names):
            if name in codes:
                matrix[:, j] = self.reference_codes(name, codes[name])
        hits = self.tests.update(matrix)
        out: list[CategoryHit] = []
        for h in hits:
            name = self.names[h.feature]
            col = codes.get(name, np.zeros(0, dtype=np.int64))[: h.row + 1]
            seen = np.r_[self.recent[name], col[col != MISSING]]
            since = h.values_since if h.values_since is not None else RECENT
            window = summary(seen[-min(max(since, 1), RECENT) :], categories.get(name, []))
            out.append(CategoryHit(h, name, window))
        for name in self.names:
            if name in codes:
                kept = codes[name]
                self.recent[name] = np.r_[self.recent[name], kept[kept != MISSING]][-RECENT:]
        return out

    def statistics(self) -> dict[str, dict[str, float]]:
        """Each feature's current statistic per test."""
        stats = self.tests.statistics()
        return {name: {t: float(stats[t][j]) for t in CATEGORICAL_TESTS} for j, name in enumerate(self.names)}

    def state_dict(self) -> dict[str, Any]:
        return {"tests": self.tests.state_dict(), "recent": {n: r.copy() for n, r in self.recent.items()}}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`; a state for other features raises ``ValueError``."""
        recent = state["recent"]
        if not isinstance(recent, Mapping) or set(recent) != set(self.names):
            raise ValueError("sequential state: categorical features differ from the profile's")
        loaded = {}
        for name, r in recent.items():
            arr = np.asarray(r, dtype=np.int64).reshape(-1)
            if arr.size > RECENT:
                raise ValueError(f"sequential state: {name} keeps {arr.size} values (at most {RECENT})")
            loaded[name] = arr
        if int(state["tests"].get("n_features", -1)) != len(self.names):
            raise ValueError("sequential state: categorical features differ from the profile's")
        self.tests.load_state(dict(state["tests"]))
        self.recent = loaded


def summary(codes: np.ndarray, categories: list[str]) -> WindowSummary:
    """The shares of the 10 most frequent categories among ``codes`` (monitor codes, no missing)."""
    n = int(codes.size)
    if n == 0:
        return WindowSummary(count=0, mean=None, std=None, quantiles={}, missing_ratio=None, categories={})
    values, counts = np.unique(codes, return_counts=True)
    top = np.argsort(-counts, kind="stable")[:10]
    shares: dict[str, float] = {}
    for i in top.tolist():
        code = int(values[i])
        label = categories[code] if 0 <= code < len(categories) else "\u2026overflow"
        shares[label] = int(counts[i]) / n
    return WindowSummary(count=n, mean=None, std=None, quantiles={}, missing_ratio=None, categories=shares)
