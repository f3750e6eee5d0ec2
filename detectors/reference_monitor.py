"""ReferenceMonitor: tumbling live windows tested against a training profile.

Per window (``window_events`` events, or ``window_seconds`` of event time) and feature:
the distribution tests of :mod:`detectors.window_tests` and data-quality checks
(``missing_rate``, ``out_of_range``, ``type_error``, ``new_category``). A distribution
test flags a window when its distance is significant for the window's size and its
bias-corrected effect passes ``decision_ratio`` x its minimum meaningful change (the
cut-off, reported as the decision's ``threshold``); a quality check when its share passes
its threshold. A flagged window opens an episode (one ``drift`` decision); the first
later window at or under the cut-off x ``resolve_ratio`` closes it (``resolved``).
Decisions are made at the last event of a count window, or at the first event of the next
event-time window (the one that shows the window is complete), so they do not depend on
batch boundaries.

Event-time windows never stop advancing: a late event joins the current window, but an
event more than ``event_time_tolerance_s`` before the current window's start means the
clock jumped back (or the position is a far-future one, from a stray ``ts`` or a
checkpoint): the window position follows it back, so the next window closes on the new
clock's time instead of waiting for it to catch up. (The engine first replaces event
times far from their messages' times: :class:`~driftsentinel.detectors.batching.MessageTimes`.)

>>> import numpy as np
>>> from driftsentinel.detectors.profile import build_profile
>>> from driftsentinel.schemas import WindowTestConfig
>>> rng = np.random.default_rng(0)
>>> prof = build_profile({"x": rng.normal(size=20_000).tolist()}, source="train")
>>> mon = ReferenceMonitor(prof, WindowTestConfig(window_events=1000))
>>> live = np.r_[rng.normal(size=3000), rng.normal(size=3000) * 3].reshape(-1, 1)
>>> out = mon.update(["x"], live, [], None, np.full(6000, np.nan))
>>> sorted({(d.detector, d.status) for d in out})[:3]
[('js', 'drift'), ('ks', 'drift'), ('out_of_range', 'drift')]
>>> min(d.row for d in out)
3999
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftsentinel.detectors.categories import BOOLEAN, MISSING, OVERFLOW, Vocabulary, canonical
from driftsentinel.detectors.category_sequential import CategoryHit, CategorySequentialWatch
from driftsentinel.detectors.sequential import STATISTIC_NAME
from driftsentinel.detectors.window_tests import (
    NumericGrid,
    categorical_probs,
    cramers_v,
    cut_off,
    effect,
    family_passes,
    js_distance,
    noise_inverse,
    p_value,
    psi,
    training_cells,
)
from driftsentinel.schemas import BankConfig, WindowSummary, WindowTestConfig
from driftsentinel.schemas.alerts import ChangePoint, Status
from driftsentinel.schemas.config import SequentialConfig
from driftsentinel.schemas.profile import CategoricalProfile, NumericProfile, ReferenceProfile

_MAX_CATEGORIES = BankConfig().max_categories  # the schema's default
_RESOLVE_MIN_COUNT = BankConfig().resolve_min_count

QUANTILE_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)

# a test's result: (effect or share, cut-off, over the cut-off, p-value under "no change")
_Result = tuple[float, float, bool, float]


@dataclass(frozen=True)
class WindowDecision:
    """A window test's (or a categorical sequential test's) decision about a feature, with its evidence.

    ``statistic_name``: the statistic's name when it is not the detector's (the sequential
    tests' CUSUM statistic); ``change_point``: a sequential test's change point.
    """

    row: int
    feature: str
    detector: str
    status: Status
    statistic: float
    threshold: float
    window: WindowSummary
    reference: WindowSummary
    statistic_name: str | None = None
    change_point: ChangePoint | None = None


def window_cuts(
    config: WindowTestConfig, n: int, event_times: np.ndarray, rows: int, bucket: float | None
) -> tuple[list[tuple[int, int]], float | None]:
    """Where tumbling windows close in a batch of ``n`` rows: ``(cuts, bucket after the batch)``.

    ``rows``: events in the open window before the batch; ``bucket``: the open event-time
    window's number (``window_seconds``). Each cut is ``(rows before the cut, row of the
    decision)``. Count windows close every ``window_events`` events (an open window that already
    has ``window_events`` or more closes at the batch's first row, deciding at row 0); event-time windows close
    at the first event of a later window, and follow a clock that jumped back by more than
    ``event_time_tolerance_s`` (not late: the window closes when the new clock moves on). The
    one rule of every tumbling window (the window tests, performance estimation).

    >>> window_cuts(WindowTestConfig(window_events=10), 25, np.full(25, np.nan), 0, None)
    ([(10, 9), (20, 19)], None)
    """
    cuts: list[tuple[int, int]] = []
    sec = config.window_seconds
    if sec is None:
        if n == 0:
            return cuts, bucket
        # an over-full open window (restored with more events than the window size, e.g. after
        # window_events was lowered) closes at the batch's first row, deciding there
        pos = max(config.window_events - rows, 0)
        while pos <= n:
            cuts.append((pos, max(pos - 1, 0)))
            pos += config.window_events
        return cuts, bucket
    times = np.asarray(event_times, dtype=np.float64)
    buckets = np.floor(times / sec)
    tolerance = config.event_time_tolerance_s
    current = bucket
    last = 0
    for i in np.flatnonzero(np.isfinite(buckets)).tolist():
        b = float(buckets[i])
        if current is None:
            current = b
        elif b > current:  # the first event of a later window closes the current one
            if (0 if cuts else rows) + (i - last) > 0:
                cuts.append((i, i))
                last = i
            current = b
        elif times[i] < current * sec - tolerance:
            # Not late, a clock that jumped back (or a far-future position): follow it, so
            # the window closes when the new clock moves on (this event stays in it).
            current = b
    return cuts, current


def reference_summary(prof: NumericProfile | CategoricalProfile) -> WindowSummary:
    """The profile of a feature as a WindowSummary (the ``reference`` of alerts)."""
    if isinstance(prof, NumericProfile):
        q = np.asarray(prof.quantiles)
        levels = np.linspace(0, 1, q.size)
        quant = {f"p{round(p * 100):02d}": float(np.interp(p, levels, q)) for p in QUANTILE_LEVELS}
        return WindowSummary(
            count=prof.count, mean=prof.mean, std=prof.std, quantiles=quant, missing_ratio=prof.missing_ratio
        )
    top = dict(sorted(prof.frequencies.items(), key=lambda kv: -kv[1])[:10])
    return WindowSummary(
        count=prof.count, mean=None, std=None, quantiles={}, missing_ratio=prof.missing_ratio, categories=top
    )


class ReferenceMonitor:
    """Window tests for every profiled feature of one model's stream."""

    def __init__(
        self,
        profile: ReferenceProfile,
        config: WindowTestConfig | None = None,
        max_categories: int = _MAX_CATEGORIES,
        sequential: SequentialConfig | None = None,
        resolve_min_count: int = _RESOLVE_MIN_COUNT,
        per_feature: Mapping[str, Any] | None = None,
    ) -> None:
        """``sequential`` (default: its defaults, on), ``resolve_min_count`` and ``per_feature``
        (thresholds ``cusum_categories_threshold`` / ``cusum_unseen_threshold`` when a
        feature's parameters have them) configure the categorical sequential tests."""
        self.profile = profile
        self.config = config or WindowTestConfig()
        self.numeric = {n: p for n, p in profile.features.items() if isinstance(p, NumericProfile)}
        self.categorical = {n: p for n, p in profile.features.items() if isinstance(p, CategoricalProfile)}
        self._grids = {n: NumericGrid(np.asarray(p.quantiles), p.count, p.std) for n, p in self.numeric.items()}
        self._seen = {n: set(p.seen) for n, p in self.categorical.items()}
        self._boolean = {n for n, p in self.categorical.items() if p.frequencies and set(p.frequencies) <= BOOLEAN}
        # Stable integer codes per categorical feature: training categories first (so every
        # one has a code), then live ones as they come; beyond max_categories -> OVERFLOW.
        self.vocab = {
            n: Vocabulary(
                list(dict.fromkeys([*p.frequencies, *p.seen])),
                max_size=max(max_categories, len(p.seen) + len(p.frequencies)),
            )
            for n, p in self.categorical.items()
        }
        self._refs = {n: reference_summary(p) for n, p in profile.features.items()}
        seq = sequential if sequential is not None else SequentialConfig()
        self.sequential = (
            CategorySequentialWatch(self.categorical, seq, resolve_min_count, per_feature)
            if seq.enabled and self.categorical and {"cusum_categories", "cusum_unseen"} & set(seq.tests)
            else None
        )
        self.active: dict[tuple[str, str], bool] = {}
        self.scores: dict[str, dict[str, float]] = {}
        #: per feature and window test, the cut-off of its latest window (what its score is decided against)
        self.cut_offs: dict[str, dict[str, float]] = {}
        self.last_missing: dict[str, float] = {}
        self._reset_window()
        self.bucket: float | None = None  # event-time window id (window_seconds)

    # ------------------------------------------------------------------ window state
    def _reset_window(self) -> None:
        self.rows = 0
        self.counts = {n: np.zeros(g.n_bins, dtype=np.int64) for n, g in self._grids.items()}
        self.moments = {n: np.zeros(2) for n in self.numeric}  # sum, sum of squares
        self.code_counts = {n: np.zeros(len(v.index) + 1, dtype=np.int64) for n, v in self.vocab.items()}
        self.overflow = dict.fromkeys(self.categorical, 0)
        self.present = dict.fromkeys(self.profile.features, 0)
        self.out_of_range = dict.fromkeys(self.numeric, 0)
        self.type_errors = dict.fromkeys(self.profile.features, 0)

    def state_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "bucket": self.bucket,
            "counts": {n: c.copy() for n, c in self.counts.items()},
            "moments": {n: m.copy() for n, m in self.moments.items()},
            "vocab": {n: v.categories for n, v in self.vocab.items()},
            "code_counts": {n: c.copy() for n, c in self.code_counts.items()},
            "overflow": dict(self.overflow),
            "present": dict(self.present),
            "out_of_range": dict(self.out_of_range),
            "type_errors": dict(self.type_errors),
            "active": [[f, t] for (f, t), on in self.active.items() if on],
            "scores": {f: dict(s) for f, s in self.scores.items()},
            "last_missing": dict(self.last_missing),
            "sequential": self.sequential.state_dict() if self.sequential is not None else None,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.rows = int(state["rows"])
        bucket = state["bucket"]
        # a non-finite position would never be passed nor followed back: start over instead
        self.bucket = float(bucket) if bucket is not None and math.isfinite(float(bucket)) else None
        self.counts = {n: np.asarray(c, dtype=np.int64) for n, c in state["counts"].items()}
        self.moments = {n: np.asarray(m, dtype=np.float64) for n, m in state["moments"].items()}
        for n, cats in state["vocab"].items():
            self.vocab[n] = Vocabulary(list(cats), max_size=self.vocab[n].max_size)
        self.code_counts = {n: np.asarray(c, dtype=np.int64) for n, c in state["code_counts"].items()}
        self.overflow = {n: int(v) for n, v in state["overflow"].items()}
        self.present = {n: int(v) for n, v in state["present"].items()}
        self.out_of_range = {n: int(v) for n, v in state["out_of_range"].items()}
        self.type_errors = {n: int(v) for n, v in state["type_errors"].items()}
        self.active = {(f, t): True for f, t in state["active"]}
        self.scores = {f: dict(s) for f, s in state["scores"].items()}
        self.last_missing = dict(state["last_missing"])
        # a state from before the sequential tests (or with them off) leaves them fresh
        if self.sequential is not None and state.get("sequential") is not None:
            self.sequential.load_state(state["sequential"])

    # ------------------------------------------------------------------ update
    def update(
        self,
        num_names: list[str],
        x: np.ndarray,
        cat_names: list[str],
        cats: np.ndarray | None,
        event_times: np.ndarray,
    ) -> list[WindowDecision]:
        """Feed a batch (numeric matrix by ``num_names``, categorical by ``cat_names``)."""
        if not self.config.enabled and self.sequential is None:
            return []
        n = x.shape[0] if x.ndim == 2 else (len(cats) if cats is not None else 0)
        num_idx = {name: j for j, name in enumerate(num_names)}
        cat_idx = {name: k for k, name in enumerate(cat_names)}
        codes = self._category_codes(x, cats, num_idx, cat_idx, n)
        out = self._sequential(codes, n)
        if not self.config.enabled:
            return out
        start = 0
        for cut, decision_row in self._cuts(n, event_times):
            self._accumulate(x, cats, codes, num_idx, cat_idx, start, cut)
            start = cut
            out += self._evaluate(decision_row)
            self._reset_window()
        self._accumulate(x, cats, codes, num_idx, cat_idx, start, n)
        return out

    def _cuts(self, n: int, event_times: np.ndarray) -> list[tuple[int, int]]:
        """Where windows close in this batch: (rows before the cut, row of the decision)."""
        cuts, self.bucket = window_cuts(self.config, n, event_times, self.rows, self.bucket)
        return cuts

    def _category_codes(
        self, x: np.ndarray, cats: np.ndarray | None, num_idx: dict[str, int], cat_idx: dict[str, int], n: int
    ) -> dict[str, np.ndarray]:
        """Each categorical feature's code per row of the batch (``MISSING`` where it has no value).

        A value is the string of ``cats``, else a number of ``x`` (the same category spelled as
        a number); codes come in row order, whatever the windows.
        """
        out: dict[str, np.ndarray] = {}
        for name in self.categorical:
            k, j = cat_idx.get(name), num_idx.get(name)
            if n == 0 or ((k is None or cats is None) and j is None):
                continue
            boolean = name in self._boolean
            col = cats[:, k] if k is not None and cats is not None else None
            text = np.fromiter((v is not None for v in col), bool, n) if col is not None else np.zeros(n, bool)
            num = x[:, j] if j is not None else None
            number = np.isfinite(num) & ~text if num is not None else np.zeros(n, bool)
            rows = np.flatnonzero(text | number)
            vals = [canonical(col[i], boolean) if text[i] else canonical(float(num[i]), boolean) for i in rows.tolist()]  # type: ignore[index]
            codes = np.full(n, MISSING, dtype=np.int64)
            codes[rows] = self.vocab[name].codes(vals)
            out[name] = codes
        return out

    def _sequential(self, codes: dict[str, np.ndarray], n: int) -> list[WindowDecision]:
        """The categorical sequential tests over the whole batch, in row order."""
        if self.sequential is None:
            return []
        cats = {name: self.vocab[name].categories for name in codes}
        hits = self.sequential.update(codes, n, cats)
        for name, stats in self.sequential.statistics().items():
            self.scores.setdefault(name, {}).update(stats)
        return [self._sequential_decision(h) for h in hits]

    def _sequential_decision(self, h: CategoryHit) -> WindowDecision:
        s = h.hit
        self.active[(h.feature, s.test)] = s.status == "drift"
        since = ChangePoint(values_since=max(s.values_since, 1)) if s.values_since is not None else None
        return WindowDecision(
            s.row, h.feature, s.test, s.status, s.statistic, s.threshold, h.window, self._refs[h.feature],
            statistic_name=STATISTIC_NAME, change_point=since,
        )  # fmt: skip

    def _accumulate(
        self,
        x: np.ndarray,
        cats: np.ndarray | None,
        codes: dict[str, np.ndarray],
        num_idx: dict[str, int],
        cat_idx: dict[str, int],
        a: int,
        b: int,
    ) -> None:
        if b <= a:
            return
        self.rows += b - a
        for name, grid in self._grids.items():
            j = num_idx.get(name)
            if j is not None:
                col = x[a:b, j]
                ok = col[np.isfinite(col)]
                if ok.size:
                    self.counts[name] += grid.counts(ok)
                    self.moments[name] += (ok.sum(), np.square(ok).sum())
                    prof = self.numeric[name]
                    self.out_of_range[name] += int(((ok < prof.min) | (ok > prof.max)).sum())
                    self.present[name] += int(ok.size)
            k = cat_idx.get(name)
            if k is not None and cats is not None:  # a string where training had numbers
                self.type_errors[name] += int(sum(v is not None for v in cats[a:b, k]))
        for name, col in codes.items():
            part = col[a:b]
            self._count_codes(name, part[part != MISSING])

    def _count_codes(self, name: str, codes: np.ndarray) -> None:
        self.present[name] += int(codes.size)
        over = codes == OVERFLOW
        self.overflow[name] += int(over.sum())
        counts = np.bincount(codes[~over], minlength=len(self.vocab[name].index))
        have = self.code_counts[name]
        if counts.size > have.size:
            have = np.concatenate([have, np.zeros(counts.size - have.size, dtype=np.int64)])
        have[: counts.size] += counts
        self.code_counts[name] = have

    def category_counts(self, name: str) -> dict[str, int]:
        """This window's counts per category (without the overflow past the vocabulary)."""
        cats = self.vocab[name].categories
        counts = self.code_counts[name]
        return {cats[i]: int(c) for i, c in enumerate(counts[: len(cats)]) if c}

    # ------------------------------------------------------------------ decisions
    def _evaluate(self, row: int) -> list[WindowDecision]:
        cfg = self.config
        rows = self.rows
        # (feature, test) -> (effect, cut-off, over the cut-off, p-value under "no change")
        results: dict[tuple[str, str], _Result] = {}
        for name, prof in self.profile.features.items():
            present = self.present[name]
            if rows >= cfg.min_count and "missing_rate" in cfg.quality_tests:
                miss = 1.0 - present / rows
                self.last_missing[name] = miss
                p = min(max(prof.missing_ratio, 1.0 / rows), 0.5)
                diff = miss - prof.missing_ratio
                z = diff / math.sqrt(p * (1 - p) / rows)
                results[(name, "missing_rate")] = (
                    diff,
                    cfg.missing_rate,
                    diff > cfg.missing_rate,
                    0.5 * math.erfc(z / math.sqrt(2.0)),
                )
            if rows >= cfg.min_count and "type_error" in cfg.quality_tests:
                share = self.type_errors[name] / rows
                results[(name, "type_error")] = (share, cfg.type_error, share > cfg.type_error, 0.0)
            if present >= cfg.min_count:
                tests = (
                    self._numeric_tests(name, prof, present)
                    if isinstance(prof, NumericProfile)
                    else self._categorical_tests(name, prof, present)
                )
                results.update({(name, test): r for test, r in tests.items()})
        keys = list(results)
        significant = dict(zip(keys, family_passes([results[k][3] for k in keys], cfg.alpha, cfg.family), strict=True))
        out: list[WindowDecision] = []
        windows: dict[str, WindowSummary] = {}
        for (name, test), (value, threshold, over, _) in results.items():
            self.scores.setdefault(name, {})[test] = value
            self.cut_offs.setdefault(name, {})[test] = threshold
            was = self.active.get((name, test), False)
            status: Status
            if over and significant[(name, test)] and not was:
                status = "drift"
            elif was and value <= threshold * cfg.resolve_ratio:
                status = "resolved"
            else:
                continue
            self.active[(name, test)] = status == "drift"
            if name not in windows:
                windows[name] = self._window_summary(name, self.profile.features[name], self.present[name], rows)
            out.append(WindowDecision(row, name, test, status, value, threshold, windows[name], self._refs[name]))
        return out

    def _distance(self, test: str, value: float, n: int, m: int, bins: int, grid: NumericGrid | None = None) -> _Result:
        """A distribution test's result: (effect, cut-off, effect over the cut-off, p-value).

        ``grid``: the feature's, for ``wasserstein`` (its noise under "no change" and spread).
        """
        cfg = self.config
        null_mean = grid.wasserstein_null_mean(noise_inverse(n, m)) if grid is not None else None
        spread = grid.wasserstein_spread if grid is not None else 0.0
        cut = cut_off(test, float(getattr(cfg, test)), cfg.decision_ratio, n, m, bins, spread)
        size = effect(test, value, n, m, bins, null_mean)
        return size, cut, size > cut, p_value(test, value, n, m, bins)

    def _numeric_tests(self, name: str, prof: NumericProfile, n: int) -> dict[str, _Result]:
        cfg, grid, counts = self.config, self._grids[name], self.counts[name]
        m = prof.count
        out: dict[str, _Result] = {}
        tests = set(cfg.numeric_tests)
        if tests & {"psi", "js"}:
            live, ref = grid.decile_probs(counts)
            if "psi" in tests:
                out["psi"] = self._distance("psi", psi(live, ref), n, m, live.size)
            if "js" in tests:
                out["js"] = self._distance("js", js_distance(live, ref), n, m, live.size)
        if "ks" in tests:
            out["ks"] = self._distance("ks", grid.ks(counts), n, m, 0)
        if "wasserstein" in tests:
            out["wasserstein"] = self._distance("wasserstein", grid.wasserstein(counts), n, m, 0, grid)
        if "out_of_range" in cfg.quality_tests:
            v = self.out_of_range[name] / n
            out["out_of_range"] = (v, cfg.out_of_range, v > cfg.out_of_range, 0.0)
        return out

    def _categorical_tests(self, name: str, prof: CategoricalProfile, n: int) -> dict[str, _Result]:
        cfg = self.config
        live, ref, new_share = categorical_probs(
            self.category_counts(name), prof.frequencies, prof.other_share, self._seen[name], self.overflow[name]
        )
        out: dict[str, _Result] = {}
        if {"chi2", "js"} & set(cfg.categorical_tests):
            # the training categories' shares only: never-seen values are new_category's
            seen, ref_seen, n_seen = training_cells(live, ref, n)
            if n_seen >= cfg.min_count:
                if "chi2" in cfg.categorical_tests:
                    v = cramers_v(seen, ref_seen, n_seen)
                    out["chi2"] = self._distance("chi2", v, n_seen, prof.count, max(seen.size, 2))
                if "js" in cfg.categorical_tests:
                    v = js_distance(seen, ref_seen)
                    out["js"] = self._distance("js", v, n_seen, prof.count, max(seen.size, 2))
        if "new_category" in cfg.categorical_tests and self._seen[name]:
            out["new_category"] = (new_share, cfg.new_category, new_share > cfg.new_category, 0.0)
        return out

    def _window_summary(self, name: str, prof: Any, present: int, rows: int) -> WindowSummary:
        missing = 1.0 - present / rows if rows else None
        if isinstance(prof, NumericProfile):
            s1, s2 = self.moments[name]
            mean = s1 / present if present else None
            var = (s2 - s1 * s1 / present) / (present - 1) if present > 1 else None
            grid, counts = self._grids[name], self.counts[name]
            quant = {f"p{round(p * 100):02d}": grid.quantile(counts, p) for p in QUANTILE_LEVELS} if present else {}
            return WindowSummary(
                count=present,
                mean=mean,
                std=math.sqrt(max(var, 0.0)) if var is not None else None,
                quantiles=quant,
                missing_ratio=missing,
            )
        shown = self.category_counts(name)
        if self.overflow[name]:
            shown["\u2026overflow"] = self.overflow[name]  # categories past max_categories, as one
        most = sorted(shown.items(), key=lambda kv: -kv[1])[:10]
        top = {c: k / present for c, k in most} if present else {}
        return WindowSummary(count=present, mean=None, std=None, quantiles={}, missing_ratio=missing, categories=top)
