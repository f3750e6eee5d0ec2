"""Train/serve skew: compare the serving and offline values of the same entities.

Detects a feature computed differently by the serving and the training pipeline (seconds
vs milliseconds, a swapped category encoding, a stale lookup) by comparing, pair by pair,
the two values of joined events. Per feature and per tumbling window of ``window_pairs``
joined pairs (arrival order, or whatever order the caller passes them in):

- exact-match rate and within-tolerance rate (``abs_tol``/``rel_tol`` per feature),
- mean signed difference (serving - offline) and the ratio serving / offline (geometric
  mean over pairs with both values non-zero and of the same sign: "off by 1000x"),
- for categorical features (strings, booleans, or ``categorical: true``) the top
  mismatching ``(serving, offline)`` pairs and the swapped ones (``a->b`` and ``b->a``),
- a bounded sample of mismatching ids with both values.

Offline values read from text without types (a CSV export's cells, :class:`TextCells`)
take the type of the serving value they are compared with (:func:`typed_cell`): the cell
``True`` or ``1`` is the boolean ``true`` when serving sent a boolean, ``04100`` stays the
code ``"04100"`` when serving sent a string, and is the number 4100 when serving sent one.

A feature is skewed when its mismatch share (1 - within-tolerance rate) exceeds its
threshold: one ``drift`` signal when an episode starts, one ``resolved`` when a later
window is back under it. No I/O, no clock: the same pairs give the same signals.

>>> from driftsentinel.schemas.skew import SkewConfig
>>> det = SkewDetector(SkewConfig(window_pairs=100, min_pairs=10))
>>> ids = [str(i) for i in range(100)]
>>> serving = [{"latency": 1000.0 * (i % 7 + 1), "plan": "pro" if i % 2 else "basic"} for i in range(100)]
>>> offline = [{"latency": float(i % 7 + 1), "plan": "basic" if i % 2 else "pro"} for i in range(100)]
>>> [result] = det.update(ids, serving, offline)
>>> sorted((s.feature, s.status) for s in result.signals)
[('latency', 'drift'), ('plan', 'drift')]
>>> round(result.reports["latency"].ratio, 6)
1000.0
>>> result.reports["plan"].swapped
[('basic', 'pro', 50, 50)]
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

from driftsentinel.schemas.alerts import WindowSummary
from driftsentinel.schemas.skew import SkewConfig

_QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
#: Text of a value in evidence (category pairs, samples): bounded, so one huge string cannot bloat an alert.
_MAX_VALUE_CHARS = 200


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


#: Spellings of booleans in text cells (compared lower-cased, stripped).
_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})


#: A number written with a decimal comma (``12,5``), or with dots grouping thousands and a
#: decimal comma (``1.234,50``) or several groups (``1.234.567``). ``1.234`` alone is not
#: one: it also reads as the decimal-point number 1.234.
_DECIMAL_COMMA = re.compile(r"[+-]?([0-9]+,[0-9]+|[1-9][0-9]{0,2}(\.[0-9]{3})+,[0-9]+|[1-9][0-9]{0,2}(\.[0-9]{3}){2,})")


def decimal_comma(text: str) -> str | None:
    """``text`` with a decimal point if it is a number written with a decimal comma, else None.

    >>> decimal_comma("12,5"), decimal_comma("-1.234,50"), decimal_comma("1.234.567"), decimal_comma("1.234")
    ('12.5', '-1234.50', '1234567', None)
    >>> decimal_comma("0.125,5"), decimal_comma("pro"), decimal_comma("1,5,6")
    (None, None, None)
    """
    if not _DECIMAL_COMMA.fullmatch(text):
        return None
    return text.replace(".", "").replace(",", ".")


class TextCells(dict[str, str | None]):
    """An offline row's features as untyped text (a CSV export's cells; None = an empty cell).

    Each cell is typed by the serving value it is compared with (:func:`typed_cell`), so
    the file's spelling of a boolean or a numeric-looking code is not a mismatch. The text
    is kept as in the file; ``decimal_comma``: the file writes numbers with a decimal comma
    (a semicolon-separated CSV), applied only where the serving value is a number.
    """

    def __init__(self, cells: Mapping[str, str | None] = {}, decimal_comma: bool = False) -> None:  # noqa: B006
        super().__init__(cells)
        self.decimal_comma = decimal_comma


def typed_cell(serving: Any, cell: str | None, decimal_comma_file: bool = False) -> Any:
    """A text cell as the type of the ``serving`` value it is compared with.

    A boolean serving value reads ``true``/``false``, ``1``/``0``, ``yes``/``no`` in any
    case; a string one reads the text as it is; a number, or a missing or other value,
    reads a number when the text is one (NaN = missing) and the text otherwise. Text
    that is not of the serving type stays text (and so mismatches, with the text as evidence).
    ``decimal_comma_file``: when the serving value is a number, ``1,5`` and ``1.234,50``
    are numbers too (:func:`decimal_comma`); a string serving value keeps ``1,5`` as text.

    >>> typed_cell(True, "True"), typed_cell(False, "0"), typed_cell(True, "maybe")
    (True, False, 'maybe')
    >>> typed_cell("04100", "04100"), typed_cell(4100, "04100"), typed_cell(None, "2.5"), typed_cell(1.0, "NaN")
    ('04100', 4100, 2.5, None)
    >>> typed_cell(1.5, "1,5", True), typed_cell("1,5", "1,5", True), typed_cell(1.5, "1,5"), typed_cell(None, "1,5")
    (1.5, '1,5', '1,5', '1,5')
    """
    if cell is None or isinstance(serving, str):
        return cell
    if isinstance(serving, bool):
        low = cell.strip().lower()
        return True if low in _TRUE else False if low in _FALSE else cell
    if decimal_comma_file and _is_number(serving):
        pointed = decimal_comma(cell)
        if pointed is not None:
            return number_or_text(pointed)
    return number_or_text(cell)


def number_or_text(text: str) -> Any:
    """``text`` as an int, else a float (NaN: None), else itself ('' is missing).

    >>> number_or_text("0.5"), number_or_text("12"), number_or_text(""), number_or_text("pro"), number_or_text("1_000")
    (0.5, 12, None, 'pro', '1_000')
    """
    if text == "":
        return None
    if "_" in text:  # int() and float() accept digit separators; a written-out number has none
        return text
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        return None if isinstance(value, float) and math.isnan(value) else value
    return text


def _show(value: Any) -> Any:
    """A value as it goes into evidence: numbers and None as is, the rest as bounded text."""
    if value is None or _is_number(value) or isinstance(value, bool):
        return None if _is_missing(value) else value
    return str(value)[:_MAX_VALUE_CHARS]


#: WindowSummary.categories is newer than WindowSummary; fill it only where the schema has it.
_HAS_CATEGORIES = "categories" in WindowSummary.model_fields


def summarize(
    values: Sequence[float], missing: int, present: int | None = None, categories: Counter[Any] | None = None
) -> WindowSummary:
    """Summary of a window: count of ``present`` (non-missing) values, mean, std and quantiles
    of the numeric ``values``, missing ratio, and shares of the top 10 ``categories``.

    >>> summarize([1.0, 2.0, 3.0], missing=1).mean, summarize([], 2).missing_ratio
    (2.0, 1.0)
    >>> summarize([], 1, present=3, categories=Counter({"pro": 2, "free": 1})).count
    3
    """
    count = len(values) if present is None else present
    total = count + missing
    ratio = missing / total if total else None
    extra: dict[str, Any] = {}
    if _HAS_CATEGORIES and categories and count:
        extra["categories"] = {str(k): n / count for k, n in categories.most_common(10)}
    if not values:
        return WindowSummary(count=count, mean=None, std=None, quantiles={}, missing_ratio=ratio, **extra)
    arr = np.asarray(values, dtype=np.float64)
    qs = np.quantile(arr, list(_QUANTILES.values()))
    return WindowSummary(
        count=count,
        mean=float(arr.mean()),
        std=float(arr.std(ddof=1)) if arr.size > 1 else None,
        quantiles={k: float(q) for k, q in zip(_QUANTILES, qs, strict=True)},
        missing_ratio=ratio,
        **extra,
    )


@dataclass(frozen=True)
class FeatureSkewReport:
    """One feature's comparison over one window of joined pairs."""

    feature: str
    kind: Literal["numeric", "categorical"]
    pairs: int
    mismatches: int
    exact_match_rate: float
    within_tolerance_rate: float
    one_side_missing: int
    mean_signed_difference: float | None
    ratio: float | None
    top_pairs: list[tuple[Any, Any, int]]
    swapped: list[tuple[Any, Any, int, int]]
    samples: list[dict[str, Any]]
    serving: WindowSummary
    offline: WindowSummary

    @property
    def mismatch_rate(self) -> float:
        """Share of pairs out of tolerance (1 - within-tolerance rate)."""
        return self.mismatches / self.pairs if self.pairs else 0.0

    def evidence(self) -> dict[str, Any]:
        """JSON-ready evidence for an alert."""
        return {
            "kind": self.kind,
            "pairs": self.pairs,
            "mismatches": self.mismatches,
            "exact_match_rate": self.exact_match_rate,
            "within_tolerance_rate": self.within_tolerance_rate,
            "one_side_missing": self.one_side_missing,
            "mean_signed_difference": self.mean_signed_difference,
            "ratio": self.ratio,
            "top_mismatching_pairs": [{"serving": s, "offline": o, "count": c} for s, o, c in self.top_pairs],
            "swapped_pairs": [{"a": a, "b": b, "a_to_b": ab, "b_to_a": ba} for a, b, ab, ba in self.swapped],
            "sample": self.samples,
        }


@dataclass(frozen=True)
class SkewSignal:
    """A decision: ``feature`` became skewed (``drift``) or is back in tolerance (``resolved``).

    ``row`` is the index, in the ``update`` call's pairs, of the pair that closed the window
    (-1 for a window closed by :meth:`SkewDetector.flush`).
    """

    row: int
    feature: str
    status: Literal["drift", "resolved"]
    statistic: float
    threshold: float
    report: FeatureSkewReport
    detector: str = "skew"
    statistic_name: str = "mismatch_rate"


@dataclass(frozen=True)
class WindowResult:
    """A closed window: every compared feature's report, and the decisions it led to."""

    row: int
    pairs: int
    reports: dict[str, FeatureSkewReport]
    signals: list[SkewSignal]


@dataclass
class _FeatureWindow:
    """Running sums of one feature within the current window (bounded by ``window_pairs``)."""

    pairs: int = 0
    exact: int = 0
    within: int = 0
    one_missing: int = 0
    categorical: int = 0
    diff_sum: float = 0.0
    diff_n: int = 0
    log_ratio_sum: float = 0.0
    ratio_n: int = 0
    serving_values: list[float] = field(default_factory=list)
    offline_values: list[float] = field(default_factory=list)
    serving_missing: int = 0
    offline_missing: int = 0
    serving_categories: Counter[Any] = field(default_factory=Counter)
    offline_categories: Counter[Any] = field(default_factory=Counter)
    pair_counts: Counter[tuple[Any, Any]] = field(default_factory=Counter)
    other_pairs: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        """Plain numbers, lists and dicts (JSON/msgpack-safe): counters as ``[value, count]`` lists."""
        state: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "pair_counts":
                value = [[s, o, n] for (s, o), n in value.items()]
            elif isinstance(value, Counter):
                value = [[k, n] for k, n in value.items()]
            elif isinstance(value, list):
                value = list(value)
            state[f.name] = value
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _FeatureWindow:
        """Rebuild from :meth:`state_dict` (values that were tuples come back as tuples)."""
        acc = cls(**{k: v for k, v in state.items() if k not in _COUNTERS})
        acc.serving_values = [float(v) for v in acc.serving_values]
        acc.offline_values = [float(v) for v in acc.offline_values]
        acc.serving_categories = Counter({k: int(n) for k, n in state["serving_categories"]})
        acc.offline_categories = Counter({k: int(n) for k, n in state["offline_categories"]})
        acc.pair_counts = Counter({(s, o): int(n) for s, o, n in state["pair_counts"]})
        acc.samples = [dict(x) for x in acc.samples]
        return acc


_COUNTERS = ("serving_categories", "offline_categories", "pair_counts")


class SkewDetector:
    """Per-feature comparison of joined serving/offline pairs, window by window.

    Memory is bounded by ``window_pairs`` values per feature, ``max_features`` features,
    ``max_tracked_pairs`` category pairs and ``sample_size`` samples per feature.
    """

    def __init__(self, config: SkewConfig) -> None:
        self.config = config
        self._features: dict[str, _FeatureWindow] = {}
        self._known: list[str] = []
        self._in_skew: dict[str, bool] = {}
        self._window_pairs = 0
        self.dropped_features = 0

    # ------------------------------------------------------------------ input
    def update(
        self, ids: Sequence[str], serving: Sequence[Mapping[str, Any]], offline: Sequence[Mapping[str, Any]]
    ) -> list[WindowResult]:
        """Add joined pairs (``ids[i]`` has features ``serving[i]`` and ``offline[i]``, which
        may be :class:`TextCells`).

        Returns the windows this closed (usually none or one).
        """
        if not len(ids) == len(serving) == len(offline):
            raise ValueError("ids, serving and offline must have the same length")
        results: list[WindowResult] = []
        for row, (key, s_feats, o_feats) in enumerate(zip(ids, serving, offline, strict=True)):
            self._add_pair(key, s_feats, o_feats)
            self._window_pairs += 1
            if self._window_pairs >= self.config.window_pairs:
                results.append(self._close(row))
        return results

    def flush(self) -> WindowResult | None:
        """Close the current window early (time boundary, idle, exit) if it has ``min_pairs`` pairs."""
        if self._window_pairs < self.config.min_pairs:
            return None
        return self._close(-1)

    @property
    def pending_pairs(self) -> int:
        """Pairs in the current, not yet evaluated window."""
        return self._window_pairs

    def _admitted(self, name: str) -> bool:
        cfg = self.config
        if (cfg.include is not None and name not in cfg.include) or name in cfg.exclude:
            return False
        if name in self._features:
            return True
        if len(self._known) >= cfg.max_features:
            self.dropped_features += 1
            return False
        self._known.append(name)
        self._features[name] = _FeatureWindow()
        return True

    def _add_pair(self, key: str, s_feats: Mapping[str, Any], o_feats: Mapping[str, Any]) -> None:
        if isinstance(o_feats, TextCells):
            comma = o_feats.decimal_comma
            o_feats = {name: typed_cell(s_feats.get(name), cell, comma) for name, cell in o_feats.items()}
        names = list(s_feats)
        names += [n for n in o_feats if n not in s_feats]
        for name in names:
            if self._admitted(name):
                self._compare(name, key, s_feats.get(name), o_feats.get(name))

    def _compare(self, name: str, key: str, s: Any, o: Any) -> None:
        acc = self._features[name]
        tol = self.config.tolerance(name)
        acc.pairs += 1
        s_missing, o_missing = _is_missing(s), _is_missing(o)
        acc.serving_missing += s_missing
        acc.offline_missing += o_missing
        if s_missing or o_missing:
            if s_missing and o_missing:
                acc.exact += 1
                acc.within += 1
                return
            acc.one_missing += 1
            present = o if s_missing else s
            categorical = tol.categorical or not _is_number(present)
            if categorical:
                self._count_category(acc.offline_categories if s_missing else acc.serving_categories, present)
            if _is_number(present):
                (acc.offline_values if s_missing else acc.serving_values).append(float(present))
            self._mismatch(acc, key, s, o, categorical=categorical)
            return
        if _is_number(s) and _is_number(o) and not tol.categorical:
            sf, of = float(s), float(o)
            acc.serving_values.append(sf)
            acc.offline_values.append(of)
            acc.diff_sum += sf - of
            acc.diff_n += 1
            if sf != 0.0 and of != 0.0 and (sf > 0) == (of > 0):
                acc.log_ratio_sum += math.log(sf / of)
                acc.ratio_n += 1
            if sf == of:
                acc.exact += 1
                acc.within += 1
            elif math.isclose(sf, of, rel_tol=tol.rel_tol, abs_tol=tol.abs_tol):
                acc.within += 1
            else:
                self._mismatch(acc, key, s, o, categorical=False)
            return
        acc.categorical += 1
        self._count_category(acc.serving_categories, s)
        self._count_category(acc.offline_categories, o)
        if _is_number(s) and _is_number(o):
            acc.serving_values.append(float(s))
            acc.offline_values.append(float(o))
        if s == o and type(s) is type(o):
            acc.exact += 1
            acc.within += 1
        else:
            self._mismatch(acc, key, s, o, categorical=True)

    def _count_category(self, counts: Counter[Any], value: Any) -> None:
        shown = _show(value)
        if shown in counts or len(counts) < self.config.max_tracked_pairs:
            counts[shown] += 1

    def _mismatch(self, acc: _FeatureWindow, key: str, s: Any, o: Any, categorical: bool) -> None:
        if len(acc.samples) < self.config.sample_size:
            acc.samples.append({"id": str(key)[:_MAX_VALUE_CHARS], "serving": _show(s), "offline": _show(o)})
        if not categorical:
            return
        pair = (_show(s), _show(o))
        if pair in acc.pair_counts or len(acc.pair_counts) < self.config.max_tracked_pairs:
            acc.pair_counts[pair] += 1
        else:
            acc.other_pairs += 1

    # ------------------------------------------------------------------ decisions
    def _close(self, row: int) -> WindowResult:
        reports: dict[str, FeatureSkewReport] = {}
        signals: list[SkewSignal] = []
        for name in self._known:
            acc = self._features[name]
            if acc.pairs == 0:
                continue
            report = self._report(name, acc)
            reports[name] = report
            threshold = self.config.threshold(name)
            skewed = report.mismatch_rate > threshold
            if skewed != self._in_skew.get(name, False):
                self._in_skew[name] = skewed
                signals.append(
                    SkewSignal(
                        row=row,
                        feature=name,
                        status="drift" if skewed else "resolved",
                        statistic=report.mismatch_rate,
                        threshold=threshold,
                        report=report,
                    )
                )
            self._features[name] = _FeatureWindow()
        pairs, self._window_pairs = self._window_pairs, 0
        return WindowResult(row=row, pairs=pairs, reports=reports, signals=signals)

    def _report(self, name: str, acc: _FeatureWindow) -> FeatureSkewReport:
        top = [(s, o, c) for (s, o), c in acc.pair_counts.most_common(self.config.top_pairs)]
        swapped = []
        for (a, b), ab in acc.pair_counts.items():
            ba = acc.pair_counts.get((b, a), 0)
            if ba and str(a) < str(b):
                swapped.append((a, b, ab, ba))
        swapped.sort(key=lambda t: (-min(t[2], t[3]), str(t[0]), str(t[1])))
        kind: Literal["numeric", "categorical"] = (
            "categorical" if acc.categorical or self.config.tolerance(name).categorical else "numeric"
        )
        return FeatureSkewReport(
            feature=name,
            kind=kind,
            pairs=acc.pairs,
            mismatches=acc.pairs - acc.within,
            exact_match_rate=acc.exact / acc.pairs,
            within_tolerance_rate=acc.within / acc.pairs,
            one_side_missing=acc.one_missing,
            mean_signed_difference=acc.diff_sum / acc.diff_n if acc.diff_n else None,
            ratio=math.exp(acc.log_ratio_sum / acc.ratio_n) if acc.ratio_n else None,
            top_pairs=top,
            swapped=swapped[: self.config.top_pairs],
            samples=list(acc.samples),
            serving=summarize(
                acc.serving_values, acc.serving_missing, acc.pairs - acc.serving_missing, acc.serving_categories
            ),
            offline=summarize(
                acc.offline_values, acc.offline_missing, acc.pairs - acc.offline_missing, acc.offline_categories
            ),
        )

    def in_skew(self, feature: str) -> bool:
        """Whether ``feature`` is in a skew episode now."""
        return self._in_skew.get(feature, False)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The open window and the episodes, as plain data (no pickle): features in first-seen order.

        >>> det = SkewDetector(SkewConfig(window_pairs=10, min_pairs=1))
        >>> _ = det.update(["a"], [{"x": 2.0, "c": "p"}], [{"x": 1.0, "c": "q"}])
        >>> again = SkewDetector.from_state(SkewConfig(window_pairs=10, min_pairs=1), det.state_dict())
        >>> again.flush().reports["c"].top_pairs == det.flush().reports["c"].top_pairs
        True
        """
        return {
            "features": [[name, self._features[name].state_dict()] for name in self._known],
            "in_skew": dict(self._in_skew),
            "window_pairs": self._window_pairs,
            "dropped_features": self.dropped_features,
        }

    @classmethod
    def from_state(cls, config: SkewConfig, state: dict[str, Any]) -> SkewDetector:
        """Rebuild from :meth:`state_dict` under ``config``."""
        det = cls(config)
        for name, acc in state["features"]:
            det._known.append(str(name))
            det._features[str(name)] = _FeatureWindow.from_state(acc)
        det._in_skew = {str(k): bool(v) for k, v in state["in_skew"].items()}
        det._window_pairs = int(state["window_pairs"])
        det.dropped_features = int(state["dropped_features"])
        return det
