"""Drift per segment: detector banks per value of a key, the mix, the shared false-alarm budget.

A feature can shift badly in one slice of the traffic (a country, a device) while the
overall distribution barely moves, and the slices' shares can change while every slice
stays the same. For each key of ``detectors.segments`` (a field, or a combination of
fields), a model's stream is routed by the key's value:

* :class:`SegmentRouter`: which segment each row belongs to, vectorised over the batch
  (``np.unique`` codes; the Python work is per distinct value of a batch, never per row).
  At most ``max_segments`` segments per key: the profile's top segments by traffic when the
  profile has the key (the set is then fixed: only they have a reference), else the first
  ``max_segments`` distinct values in stream order (the engine's ``max_models`` rule: the
  admitted values are in the state, so batch cuts and restarts admit the same ones).
  Everything else is pooled as ``__other__``, and the pooled rows are counted.
* :class:`SegmentedBanks`: one :class:`~driftsentinel.detectors.bank.DetectorBank` per
  admitted segment and for ``__other__``, each fed its own rows in stream order (so its
  decisions do not depend on how the stream is cut), against the segment's own reference
  (the profile's ``segments[key]``, else its own warm-up); and the mix monitor
  (:mod:`~driftsentinel.detectors.segment_mix`).
* The false-alarm budget is shared: with segments, the overall bank keeps half of the
  rate per value it has without (:func:`overall_bank_config`) and each bank of a family of
  ``S`` segments of one of ``K`` keys gets ``1 / (2 K S)`` of it (:func:`segment_bank_config`),
  so the overall bank and all segment banks together raise no more false alarms than the
  overall bank alone without segments.
* :func:`segments_profile`: a key's per-segment profiles from training columns
  (``driftsentinel baseline --segment KEY``).

>>> from driftsentinel.schemas import BankConfig, FeatureBatch
>>> rng = np.random.default_rng(0)
>>> n = 40_000
>>> country = rng.choice(np.array(["DE", "FR", "IT"], dtype=object), size=n, p=[0.6, 0.3, 0.1])
>>> x = rng.normal(size=(n, 1))
>>> x[(country == "IT") & (np.arange(n) >= 20_000), 0] += 1.5  # only Italy moves
>>> batch = FeatureBatch(["x"], x, np.arange(n), np.full(n, np.nan), cat_names=["country"],
...                      cat_values=country.reshape(-1, 1))
>>> seg = SegmentedBanks(("country",), BankConfig(backend="kernel"))
>>> sigs = seg.update(batch)
>>> sorted({(s.value, s.signal.feature, s.signal.status) for s in sigs if s.value is not None})
[('IT', 'x', 'drift')]
>>> sorted(seg.router.values)
['DE', 'FR', 'IT']
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from driftsentinel.detectors._distributions import bisect
from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.categories import canonical
from driftsentinel.detectors.profile import TOP_K, build_profile, infer_type
from driftsentinel.detectors.segment_mix import MixMonitor
from driftsentinel.schemas import BankConfig, FeatureBatch
from driftsentinel.schemas.config import OTHER_SEGMENT, FeatureParams
from driftsentinel.schemas.profile import ReferenceProfile, SegmentProfile, SegmentsProfile
from driftsentinel.schemas.signals import DriftSignal, FeatureStatus

OTHER = OTHER_SEGMENT
#: The value of a row whose key field is missing (a segment like any other value).
MISSING_VALUE = "__missing__"
#: Joins a combination key's field names (its name) and its fields' values (a segment's value).
SEP = "|"
#: Event fields the batch carries under another name.
_FIELD_ALIASES = {"prediction": "@prediction", "label": "@label"}


def key_name(fields: Sequence[str]) -> str:
    """A key's name: its fields joined by ``|`` (``country``, ``country|device``)."""
    return SEP.join(fields)


@dataclass(frozen=True)
class SegmentSignal:
    """A decision of a segment's bank (``value``) or of the key's mix monitor (``value`` None),
    its ``row`` in the batch given to :meth:`SegmentedBanks.update`."""

    signal: DriftSignal
    key: str
    value: str | None


# ---------------------------------------------------------------------------------------------- routing
def _field_strings(batch: FeatureBatch, field: str) -> np.ndarray:
    """Per row, the canonical string of ``field`` (``MISSING_VALUE`` when absent), as an object array."""
    n = batch.n_rows
    out = np.full(n, MISSING_VALUE, dtype=object)
    name = field if field in batch.names or field in batch.cat_names else _FIELD_ALIASES.get(field, field)
    if name in batch.names:
        col = batch.values[:, batch.names.index(name)]
        ok = np.isfinite(col)
        if ok.any():
            uniq, inv = np.unique(col[ok], return_inverse=True)
            text = np.array([canonical(float(v)) for v in uniq], dtype=object)
            out[ok] = text[inv.reshape(-1)]
    if name in batch.cat_names and batch.cat_values is not None:
        col = batch.cat_values[:, batch.cat_names.index(name)]
        ok = np.not_equal(col, np.array(None, dtype=object))
        out[ok] = col[ok]  # a categorical value wins over a numeric one (producers disagreeing on type)
    return out


def batch_values(batch: FeatureBatch, fields: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The key's distinct values in the batch and, per row, the index of its value among them.

    >>> b = FeatureBatch(["n"], np.array([[1.0], [2.0], [1.0]]), np.arange(3), np.full(3, np.nan),
    ...                  cat_names=["c"], cat_values=np.array([["a"], [None], ["a"]], dtype=object))
    >>> batch_values(b, ["c", "n"])
    (['__missing__|2', 'a|1'], array([1, 0, 1]))
    """
    columns = [_field_strings(batch, f).astype(str) for f in fields]
    if len(columns) == 1:
        uniq, inv = np.unique(columns[0], return_inverse=True)
        return [str(u) for u in uniq], inv.reshape(-1).astype(np.int64)
    parts = [np.unique(c, return_inverse=True) for c in columns]
    stacked = np.stack([inv.reshape(-1) for _, inv in parts], axis=1)
    combos, inv = np.unique(stacked, axis=0, return_inverse=True)
    values = [SEP.join(str(parts[k][0][c]) for k, c in enumerate(row)) for row in combos.tolist()]
    return values, inv.reshape(-1).astype(np.int64)


class SegmentRouter:
    """Which admitted segment each row belongs to (code ``0 .. len(values) - 1``, -1 = ``__other__``).

    ``values``: the admitted segments in admission order; with ``admit_new`` False (a
    profile defines the segments) no value is ever added.
    """

    def __init__(self, fields: Sequence[str], max_segments: int, initial: Sequence[str] = (), admit_new: bool = True):
        self.fields = tuple(fields)
        self.max_segments = max_segments
        self.admit_new = admit_new
        self.values: list[str] = list(initial)[:max_segments]
        self.index = {v: i for i, v in enumerate(self.values)}
        self.pooled_rows = 0

    def route(self, batch: FeatureBatch) -> np.ndarray:
        """Codes of the batch's rows, admitting new values (first appearance first) while there is room."""
        if batch.n_rows == 0:
            return np.zeros(0, dtype=np.int64)
        uniq, inv = batch_values(batch, self.fields)
        lookup = np.array([self.index.get(v, -1) for v in uniq], dtype=np.int64)
        room = self.max_segments - len(self.values)
        if self.admit_new and room > 0 and (lookup < 0).any():
            first = np.full(len(uniq), batch.n_rows, dtype=np.int64)
            np.minimum.at(first, inv, np.arange(batch.n_rows))
            new = np.flatnonzero(lookup < 0)
            for i in new[np.argsort(first[new], kind="stable")][:room]:
                lookup[i] = self.index[uniq[i]] = len(self.values)
                self.values.append(uniq[i])
        codes = lookup[inv]
        self.pooled_rows += int((codes < 0).sum())
        return codes


# ---------------------------------------------------------------------------------------------- budget
def _lundberg_scale(m: float) -> float:
    """The smaller Lundberg exponent of the two scale CUSUMs on ``z^2`` (z ~ N(0, 1)), increments
    ``z^2 - (1+m)^2`` and ``(1-m)^2 - z^2``: their false-alarm rate falls as ``exp(-theta h)``."""
    up, down = (1 + m) ** 2, max(1 - m, 1e-6) ** 2
    # up: E exp(t (z^2 - c)) = 1  <=>  -ln(1 - 2t)/2 = t c  (0 < t < 1/2)
    t_up = bisect(lambda t: t * up + 0.5 * math.log(1 - 2 * t), 0.0, 1e-9, 0.5 - 1e-12, 80)
    # down: E exp(t (c - z^2)) = 1  <=>  ln(1 + 2t)/2 = t c
    t_down = bisect(lambda t: 0.5 * math.log(1 + 2 * t) - t * down, 0.0, 1e-9, 50.0, 80)
    return min(t_up, t_down)


def scale_budget(config: BankConfig, divisor: float) -> BankConfig:
    """``config`` with its false-alarm rate per value divided by ``divisor`` (``D``), test by test:

    * ADWIN: ``delta / D`` (its cut test's bound on a false cut is linear in delta);
    * Page-Hinkley: threshold ``+ ln(D) / (2 delta)``: a random walk of unit variance and
      drift ``-delta`` passes ``h`` at a rate falling as ``exp(-2 delta h)`` (Lundberg), so
      this divides the rate by D (delta 0 is treated as 0.05);
    * the CUSUMs: the nats thresholds (Ville: rate ``<= exp(-h)``) ``+ ln(D)``, the mean
      CUSUM's ``+ ln(D) / (2 k)``, the scale CUSUM's ``+ ln(D) / theta`` (its Lundberg exponent);
    * window tests' and the multivariate test's ``alpha / D``;
    * ``per_feature`` parameters the same way, each with its own Page-Hinkley delta (a
      feature with its own delta but the global threshold gets that threshold raised by its
      own slope).

    >>> c, d = scale_budget(BankConfig(), 2.0), BankConfig()
    >>> (c.adwin.delta / d.adwin.delta, round(c.sequential.shape_threshold - d.sequential.shape_threshold, 4))
    (0.5, 0.6931)
    """
    if divisor < 1:
        raise ValueError(f"a budget divisor must be at least 1, got {divisor}")
    if divisor == 1:
        return config
    ln = math.log(divisor)
    ph = config.page_hinkley

    def ph_slope(delta: float | None) -> float:
        return 1.0 / (2.0 * (delta if delta is not None and delta > 0 else 0.05))

    seq = config.sequential
    mean_slope = 1.0 / (2.0 * seq.min_mean_shift)
    scale_slope = 1.0 / _lundberg_scale(seq.min_scale_change)

    def feature(p: FeatureParams) -> FeatureParams:
        up: dict[str, float] = {}
        if p.adwin_delta is not None:
            up["adwin_delta"] = p.adwin_delta / divisor
        if p.page_hinkley_threshold is not None:
            delta = p.page_hinkley_delta if p.page_hinkley_delta is not None else ph.delta
            up["page_hinkley_threshold"] = p.page_hinkley_threshold + ln * ph_slope(delta)
        elif p.page_hinkley_delta is not None:  # the global threshold, raised by this feature's own slope
            up["page_hinkley_threshold"] = ph.threshold + ln * ph_slope(p.page_hinkley_delta)
        if p.cusum_mean_threshold is not None:
            up["cusum_mean_threshold"] = p.cusum_mean_threshold + ln * mean_slope
        if p.cusum_scale_threshold is not None:
            up["cusum_scale_threshold"] = p.cusum_scale_threshold + ln * scale_slope
        for name in (
            "cusum_shape_threshold",
            "cusum_missing_threshold",
            "cusum_categories_threshold",
            "cusum_unseen_threshold",
        ):
            if getattr(p, name) is not None:
                up[name] = getattr(p, name) + ln
        return p.model_copy(update=up)

    return config.model_copy(
        update={
            "adwin": config.adwin.model_copy(update={"delta": config.adwin.delta / divisor}),
            "page_hinkley": ph.model_copy(update={"threshold": ph.threshold + ln * ph_slope(ph.delta)}),
            "sequential": seq.model_copy(
                update={
                    "mean_threshold": seq.mean_threshold + ln * mean_slope,
                    "scale_threshold": seq.scale_threshold + ln * scale_slope,
                    "shape_threshold": seq.shape_threshold + ln,
                    "missing_threshold": seq.missing_threshold + ln,
                    "categories_threshold": seq.categories_threshold + ln,
                    "unseen_threshold": seq.unseen_threshold + ln,
                }
            ),
            "window_tests": config.window_tests.model_copy(update={"alpha": config.window_tests.alpha / divisor}),
            "multivariate": config.multivariate.model_copy(update={"alpha": config.multivariate.alpha / divisor}),
            "per_feature": {name: feature(p) for name, p in config.per_feature.items()},
        }
    )


#: The share of a model's false-alarm budget kept by the overall bank when segments are configured;
#: the rest is shared equally by the keys' segment families.
OVERALL_SHARE = 0.5


def overall_bank_config(config: BankConfig) -> BankConfig:
    """The overall bank's configuration: ``config`` itself without segments; with
    ``detectors.segments``, ``OVERALL_SHARE`` (half) of its false-alarm rate per value
    (:func:`scale_budget` by 2: ADWIN ``delta / 2``, CUSUM thresholds ``+ ln 2``, ...), so the
    overall bank and the segment families together stay within the budget of the overall
    bank without segments.

    >>> overall_bank_config(BankConfig()).adwin.delta == BankConfig().adwin.delta
    True
    >>> overall_bank_config(BankConfig.model_validate({"segments": ["country"]})).adwin.delta / BankConfig().adwin.delta
    0.5
    """
    if not config.segments.keys:
        return config
    return scale_budget(config, 1.0 / OVERALL_SHARE)


def segment_bank_config(config: BankConfig, n_segments: int, fields: Sequence[str] = ()) -> BankConfig:
    """The configuration of each bank of a family of ``n_segments`` segments (``S``) of one of
    the ``K`` keys of ``detectors.segments``: the overall bank's false-alarm rate per value
    (without segments) times ``(1 - OVERALL_SHARE) / (K S)``, i.e. :func:`scale_budget` by
    ``2 K S``. Every event is in exactly one segment of each key, so each family sees as many
    values as the overall bank and adds ``1 / (2 K)`` of its budget; with the overall bank's
    half (:func:`overall_bank_config`) the total is the budget of the overall bank alone.

    A segment bank does not watch its key's fields (constant within a segment), has no
    concept-drift monitor (the model's error is the overall bank's) and no segments.
    """
    n_keys = max(len(config.segments.keys), 1)
    divisor = max(int(n_segments), 1) * n_keys / (1.0 - OVERALL_SHARE)
    return scale_budget(config, divisor).model_copy(
        update={
            "exclude": [*config.exclude, *fields],
            "concept_drift": config.concept_drift.model_copy(update={"enabled": False}),
            "segments": config.segments.model_copy(update={"keys": []}),
        }
    )


# ---------------------------------------------------------------------------------------------- banks
def take_rows(batch: FeatureBatch, rows: np.ndarray | slice) -> FeatureBatch:
    """The batch's rows ``rows`` (in that order) as a batch of their own; a ``slice`` gives views
    of the batch's arrays (no copy)."""
    return FeatureBatch(
        names=batch.names,
        values=batch.values[rows],
        offsets=batch.offsets[rows],
        event_times=batch.event_times[rows],
        cat_names=batch.cat_names,
        cat_values=None if batch.cat_values is None else batch.cat_values[rows],
        rows_in_message=None if batch.rows_in_message is None else batch.rows_in_message[rows],
    )


def by_segment(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows ordered by segment (stream order within each: a stable sort), the segments present
    and where each one's rows start in that order (its rows end where the next one's start).

    >>> order, present, starts = by_segment(np.array([2, -1, 2, 0, -1]))
    >>> order.tolist(), present.tolist(), starts.tolist()
    ([1, 4, 3, 0, 2], [-1, 0, 2], [0, 2, 3])
    """
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if codes.size else np.zeros(0, dtype=np.int64)
    return order, ordered[starts], starts


class SegmentedBanks:
    """Per segment of one key, a detector bank; and the key's mix monitor. One per model and key.

    ``profile``: the model's reference profile; its ``segments[key]`` (when present) gives
    the segments, their references and the reference mix.
    """

    def __init__(self, fields: Sequence[str], config: BankConfig, profile: ReferenceProfile | None = None) -> None:
        self.fields = tuple(fields)
        self.key = key_name(self.fields)
        self.config = config
        cfg = config.segments
        self.reference: SegmentsProfile | None = (profile.segments or {}).get(self.key) if profile else None
        ref = self.reference
        initial = [v for v in ref.segments if v != OTHER][: cfg.max_segments] if ref is not None else []
        self.router = SegmentRouter(self.fields, cfg.max_segments, initial, admit_new=ref is None)
        self._source = profile.source if profile is not None else ""
        n_family = len(initial) + 1 if ref is not None else cfg.max_segments + 1
        self.bank_config = segment_bank_config(config, n_family, self.fields)
        self.banks: dict[str, DetectorBank] = {}
        self.mix: MixMonitor | None = None
        if cfg.mix:
            n_codes = cfg.max_segments + 1  # the admitted segments' codes, then __other__ last
            shares, count = None, 0
            if ref is not None:
                shares = np.zeros(n_codes)
                for i, v in enumerate(initial):
                    shares[i] = ref.segments[v].share
                shares[-1] = max(1.0 - float(shares.sum()), 0.0)
                count = sum(s.rows for s in ref.segments.values())
            self.mix = MixMonitor(config.window_tests, n_codes, self.key, shares, count)

    def _profile(self, value: str) -> ReferenceProfile | None:
        seg = self.reference.segments.get(value) if self.reference is not None else None
        if seg is None:
            return None
        features = {n: p for n, p in seg.features.items() if n not in self.fields}
        return ReferenceProfile(source=f"{self._source} [{self.key}={value}]", n_rows=seg.rows, features=features)

    def _bank(self, value: str) -> DetectorBank:
        bank = self.banks.get(value)
        if bank is None:
            bank = self.banks[value] = DetectorBank(self.bank_config, self._profile(value))
        return bank

    def names(self) -> list[str]:
        """Segment names by mix code (unused codes empty, ``__other__`` last)."""
        n_codes = self.config.segments.max_segments + 1
        return [*self.router.values, *[""] * (n_codes - 1 - len(self.router.values)), OTHER]

    def update(self, batch: FeatureBatch) -> list[SegmentSignal]:
        """Route the batch's rows, run each segment's bank on its rows and the mix monitor on all;
        the decisions by batch row."""
        codes = self.router.route(batch)
        out: list[SegmentSignal] = []
        if self.mix is not None:
            mix_codes = np.where(codes < 0, self.config.segments.max_segments, codes)
            out += [
                SegmentSignal(s, self.key, None) for s in self.mix.update(mix_codes, batch.event_times, self.names())
            ]
        if codes.size:
            # one gather of the batch by segment, then each segment's rows are a view of it
            order, present, starts = by_segment(codes)
            ordered = take_rows(batch, order)
            ends = [*starts[1:].tolist(), codes.size]
            for code, a, b in zip(present.tolist(), starts.tolist(), ends, strict=True):
                value = OTHER if code < 0 else self.router.values[code]
                for sig in self._bank(value).update(take_rows(ordered, slice(a, b))):
                    out.append(SegmentSignal(replace(sig, row=int(order[a + sig.row])), self.key, value))
        out.sort(key=_order)
        return out

    def status(self) -> list[tuple[str, list[FeatureStatus]]]:
        """Each segment bank's read-outs (a bounded set: ``max_segments + 1`` per key)."""
        return [(value, bank.status()) for value, bank in self.banks.items()]

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Plain data: the admitted values, the pooled count, each segment bank's and the mix's state."""
        return {
            "kind": "segmented_banks",
            "version": 1,
            "key": list(self.fields),
            "values": list(self.router.values),
            "pooled_rows": self.router.pooled_rows,
            "banks": {value: bank.state_dict() for value, bank in self.banks.items()},
            "mix": None if self.mix is None else self.mix.state_dict(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`; ``ValueError`` when it does not fit this configuration
        (checked before any bank is built)."""
        if state.get("kind") != "segmented_banks" or state.get("version") != 1:
            raise ValueError(f"not a version-1 segment state: {state.get('kind')!r}")
        if [str(f) for f in state["key"]] != list(self.fields):
            raise ValueError(f"segment state is for key {state['key']!r}, not {list(self.fields)!r}")
        values = [str(v) for v in state["values"]]
        cfg = self.config.segments
        if len(values) > cfg.max_segments or len(set(values)) != len(values):
            raise ValueError(f"segment state holds {len(values)} values, over max_segments ({cfg.max_segments})")
        if not self.router.admit_new and values != self.router.values:
            raise ValueError(f"segment state's values of {self.key!r} differ from the profile's")
        banks = state["banks"]
        unknown = set(banks) - {*values, OTHER}
        if unknown:
            raise ValueError(f"segment state has banks of values never admitted: {sorted(unknown)[:3]}")
        if (state.get("mix") is None) != (self.mix is None):
            raise ValueError("segment state and configuration disagree on the mix test")
        self.router.values = values
        self.router.index = {v: i for i, v in enumerate(values)}
        self.router.pooled_rows = int(state["pooled_rows"])
        self.banks = {
            str(v): DetectorBank.from_state(st, self.bank_config, self._profile(str(v))) for v, st in banks.items()
        }
        if self.mix is not None:
            self.mix.load_state(state["mix"])


def check_segments_state(
    state: Any,
    config: BankConfig,
    profile: ReferenceProfile | None,
    models: Collection[str],
    check_bank: Callable[[Any, Mapping[str, Any], int, str], None],
    reject: Callable[[str, str], Exception],
) -> None:
    """Check an engine state's ``segments`` (model -> key -> :meth:`SegmentedBanks.state_dict`)
    against this configuration before anything is built from it: models of the state's banks,
    the configured keys, at most ``max_segments`` values, banks only of admitted values (each
    checked by ``check_bank(state, template, feature bound, path)`` against an empty bank of its
    segment), the mix's arrays of the configured size. ``reject(reason, message)`` makes the error
    (``size`` or ``shape``)."""
    if not isinstance(state, Mapping):
        raise reject("shape", f"state.segments: expected a dict, got {type(state).__name__!r}")
    keys = {key_name(f): f for f in config.segments.key_fields()}
    n_codes = config.segments.max_segments + 1
    for model, by_key in state.items():
        path = f"state.segments[{model!r}]"
        if model not in models or not isinstance(by_key, Mapping) or set(by_key) != set(keys):
            raise reject("shape", f"{path}: not a model of the state's banks with the configured keys")
        for key, st in by_key.items():
            where = f"{path}[{key!r}]"
            if not isinstance(st, Mapping) or not isinstance(st.get("values"), list):
                raise reject("shape", f"{where}: not a segment state")
            values, banks = st["values"], st.get("banks")
            if len(values) > config.segments.max_segments:
                raise reject("size", f"{where}.values: {len(values)} > {config.segments.max_segments} (max_segments)")
            if not isinstance(banks, Mapping) or not all(isinstance(v, str) for v in values):
                raise reject("shape", f"{where}: values must be strings and banks a dict")
            unknown = set(banks) - {*values, OTHER}
            if unknown:
                raise reject("shape", f"{where}.banks: values never admitted ({sorted(map(str, unknown))[:3]})")
            empty = SegmentedBanks(keys[key], config, profile)
            for value, bank in banks.items():
                seg_profile = empty._profile(value)
                template = DetectorBank(empty.bank_config, seg_profile).state_dict()
                bound = config.max_features + (len(seg_profile.features) if seg_profile is not None else 0) + 2
                check_bank(bank, template, bound, f"{where}.banks[{value!r}]")
            mix = st.get("mix")
            if (mix is None) != (empty.mix is None):
                raise reject("shape", f"{where}.mix: the configuration {'has' if empty.mix else 'has no'} mix test")
            if mix is not None:
                if not isinstance(mix, Mapping):
                    raise reject("shape", f"{where}.mix: expected a dict")
                arrays: list[Any] = [mix.get("counts")]
                if mix.get("reference") is not None:
                    arrays.append(mix["reference"])
                if any(np.shape(a) != (n_codes,) for a in arrays):
                    raise reject("size", f"{where}.mix: arrays of {n_codes} segment codes expected")


def _order(s: SegmentSignal) -> tuple[int, str, str, str, str]:
    return (s.signal.row, s.value or "", s.signal.feature, s.signal.detector, s.signal.status)


# ---------------------------------------------------------------------------------------------- profile
def row_values(columns: Mapping[str, Sequence[Any]], fields: Sequence[str], n_rows: int) -> list[str]:
    """Each training row's segment value (the live rule: canonical strings, missing as ``__missing__``)."""
    missing = [f for f in fields if f not in columns]
    if missing:
        raise ValueError(f"segment key field {missing[0]!r} is not a column of the training data")
    parts = []
    for f in fields:
        col = columns[f]
        parts.append([MISSING_VALUE if (c := canonical(v)) is None else c for v in col])
    return [SEP.join(vals) for vals in zip(*parts, strict=True)] if parts else [""] * n_rows


def segments_profile(
    columns: Mapping[str, Sequence[Any]],
    fields: Sequence[str],
    source: str,
    max_segments: int = BankConfig().segments.max_segments,
    types: dict[str, Literal["numeric", "categorical"]] | None = None,
    top_k: int = TOP_K,
) -> SegmentsProfile:
    """A key's section of the profile: the ``max_segments`` segments with most rows (ties: first
    seen), each with its own feature profiles, and ``__other__`` for the rest.

    >>> cols = {"c": ["a", "b", "a", "z"], "x": [1.0, 2.0, 3.0, 4.0]}
    >>> sp = segments_profile(cols, ["c"], "t", max_segments=1)
    >>> {v: (s.rows, s.share, s.features["x"].mean) for v, s in sp.segments.items()}
    {'a': (2, 0.5, 2.0), '__other__': (2, 0.5, 3.0)}
    """
    n = max((len(v) for v in columns.values()), default=0)
    values = row_values(columns, fields, n)
    counts = Counter(values)
    top = [v for v, _ in counts.most_common(max_segments)]
    rows_of: dict[str, list[int]] = {v: [] for v in [*top, OTHER]}
    admitted = set(top)
    for i, v in enumerate(values):
        rows_of[v if v in admitted else OTHER].append(i)
    others = {name: col for name, col in columns.items() if name not in fields}
    # the whole column's type, so a segment where a numeric feature is all missing does not turn it categorical
    kinds = {name: (types or {}).get(name) or infer_type(col) for name, col in others.items()}
    segments: dict[str, SegmentProfile] = {}
    for value, rows in rows_of.items():
        if not rows:
            continue
        sub = {name: [col[i] for i in rows] for name, col in others.items()}
        features = build_profile(sub, source, kinds, top_k).features if sub else {}
        segments[value] = SegmentProfile(rows=len(rows), share=len(rows) / n, features=features)
    return SegmentsProfile(key=list(fields), n_values=len(counts), segments=segments)
