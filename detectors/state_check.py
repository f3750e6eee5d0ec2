"""Validation of a checkpointed partition state before anything is built from it.

A state topic can be written by anyone with access to it, so a checkpoint is untrusted
input. The ``from_state`` constructors trust the numbers they read: ``n_features`` or
``max_buckets`` size their arrays, ``banks`` is iterated as a dict, ``rows_in_current`` steers
the live windows. :func:`check_engine_state` checks a state against the shape a state of
*this* configuration has (types, shapes, the per-feature lengths, the parameters that size
allocations, the configured bounds) and raises :class:`StateRejected` otherwise; it
allocates nothing in proportion to what the record claims (only a template: an empty bank
of the current configuration).

The shapes are taken from that template, so a field added to a detector's state is checked
without a change here: every array must have the template's dtype kind and dimensions, its
leading dimension the number of features (except the ragged fields, listed per kind).

>>> from driftsentinel.schemas import SidecarConfig
>>> from driftsentinel.schemas.fastdecode import EventView
>>> from driftsentinel.detectors.engine import Engine
>>> cfg = SidecarConfig()
>>> engine = Engine(cfg, input_topic="features")
>>> _ = engine.process("features", 0, [(i, EventView(model="m", features={"x": i % 7}), 0.0) for i in range(300)], 0.0)
>>> check_engine_state(engine.state("features", 0), cfg)
>>> try:
...     check_engine_state({"banks": "m", "policy": []}, cfg)
... except StateRejected as exc:
...     exc.reason, str(exc)
('shape', "state.banks: expected a dict, got 'str'")
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.category_sequential import RECENT
from driftsentinel.detectors.segments import check_segments_state
from driftsentinel.detectors.sequential import check_rings
from driftsentinel.schemas import SidecarConfig
from driftsentinel.schemas.profile import ReferenceProfile

#: Why a state record is set aside (the label of ``driftsentinel_checkpoints_rejected_total``).
REASONS = ("unreadable", "shape", "size", "offset")

#: Fields whose length follows the data, not the number of features (the codec bounds them).
_RAGGED = {
    "adwin": {"level_counts", "bucket_totals", "bucket_variances"},
    "feature_sketch": {"span_counts", "pos_feature", "pos_key", "pos_count", "neg_feature", "neg_key", "neg_count"},
    "page_hinkley": set(),
}
#: Scalars that size allocations or divide: they must be the configuration's own.
_FIXED = {"feature_sketch": {"alpha", "min_value", "max_value"}}
#: ADWIN's bucket count grows one level per doubling of its window: 2**62 values are plenty.
_MAX_TICK = 2**62
_KINDS = {"f": "f", "i": "i", "u": "i", "b": "b"}


class StateRejected(ValueError):
    """A state that is not a state of this configuration; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _is(value: Any, expected: Any) -> bool:
    """``value == expected`` for plain scalars only (an array or a container is never equal)."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and value == expected


def _shape_error(path: str, message: str) -> StateRejected:
    return StateRejected("shape", f"{path}: {message}")


def _dict(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _shape_error(path, f"expected a dict, got {type(value).__name__!r}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _shape_error(path, f"expected a list, got {type(value).__name__!r}")
    return value


def _int(value: Any, path: str, lo: int = 0, hi: int = _MAX_TICK) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _shape_error(path, f"expected an integer, got {type(value).__name__!r}")
    if not lo <= int(value) <= hi:
        raise StateRejected("size", f"{path}: {int(value)} is outside [{lo}, {hi}]")
    return int(value)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _shape_error(path, f"expected a number, got {type(value).__name__!r}")
    return float(value)


def _array(value: Any, path: str, like: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    """``value`` as the template ``like`` has it: same dtype kind, same number of dimensions,
    and ``shape`` when given (``None``: any length, one dimension)."""
    if not isinstance(value, np.ndarray):
        raise _shape_error(path, f"expected an array, got {type(value).__name__!r}")
    if _KINDS.get(value.dtype.kind) != _KINDS.get(like.dtype.kind) or value.ndim != like.ndim:
        raise _shape_error(path, f"expected a {like.ndim}-d {like.dtype} array, got {value.ndim}-d {value.dtype}")
    if shape is not None and value.shape != shape:
        raise _shape_error(path, f"expected shape {shape}, got {value.shape}")
    return value


def check_kind_state(state: Any, template: Mapping[str, Any], n: int, path: str) -> None:
    """A detector or sketch state (``kind`` adwin, page_hinkley, feature_sketch) of ``n`` features,
    checked field by field against ``template`` (a state of the same kind from this configuration)."""
    st = _dict(state, path)
    kind = template["kind"]
    if not (_is(st.get("kind"), kind) and _is(st.get("version"), template["version"])):
        raise _shape_error(path, f"expected a {kind} state v{template['version']}, got {st.get('kind')!r}")
    if _int(st.get("n_features"), f"{path}.n_features", 0, n) != n:
        raise _shape_error(f"{path}.n_features", f"{st['n_features']} != {n} features")
    t_n = int(template["n_features"])
    for key, like in template.items():
        if key in ("kind", "version", "n_features") or (key not in st and key.startswith(("pos_", "neg_"))):
            continue
        if key not in st:
            if kind == "feature_sketch" and key in ("bin_limit", "span_first", "span_length", "span_counts"):
                continue  # states of older versions: dense, sparse buckets
            if kind == "page_hinkley" and key in ("at_min_increase", "at_max_decrease"):
                continue  # states from before the change point estimates
            raise _shape_error(path, f"missing field {key!r}")
        where, value = f"{path}.{key}", st[key]
        if isinstance(like, np.ndarray):
            ragged = key in _RAGGED.get(kind, set())
            shape = None if ragged else (n if like.shape[0] == t_n else like.shape[0], *like.shape[1:])
            _array(value, where, like, shape)
        elif isinstance(like, dict):
            for k, v in _dict(value, where).items():
                if v is not None and not isinstance(v, (str, bool)):
                    _number(v, f"{where}.{k}")
        elif key in _FIXED.get(kind, set()) and not _is(value, like):
            raise StateRejected("size", f"{where}: {value!r}, this configuration has {like!r}")
        elif (
            isinstance(like, (int, float))
            and not isinstance(like, bool)
            and value is not None
            and not math.isfinite(_number(value, where))
        ):
            raise _shape_error(where, "not finite")
    if kind == "adwin":
        _check_adwin(st, template, path)


def _check_adwin(st: Mapping[str, Any], template: Mapping[str, Any], path: str) -> None:
    """The numbers that size ADWIN's arrays: buckets per level (its ring) and the window length."""
    bound = int(_dict(template["scalars"], f"{path}.scalars(template)").get("max_buckets") or 5)
    mb = st["max_buckets"]
    if mb.size and (int(mb.min()) < 1 or int(mb.max()) > bound):
        raise StateRejected("size", f"{path}.max_buckets: values outside [1, {bound}] (the configured max_buckets)")
    tick = st["tick"]
    if tick.size and (int(tick.min()) < 0 or int(tick.max()) > _MAX_TICK):
        raise StateRejected("size", f"{path}.tick: values outside [0, 2**62]")
    levels = st["n_levels"]
    if levels.size and (int(levels.min()) < 0 or int(levels.max()) > 64):
        raise StateRejected("size", f"{path}.n_levels: values outside [0, 64]")
    if int(levels.sum()) != st["level_counts"].size:
        raise _shape_error(path, "n_levels does not match level_counts")


def _feature_bound(config: SidecarConfig, profile: ReferenceProfile | None) -> int:
    # known and profiled features are always admitted, and @prediction / @label
    return config.detectors.max_features + (len(profile.features) if profile is not None else 0) + 2


def check_bank_state(state: Any, template: Mapping[str, Any], bound: int, window: int, path: str) -> None:
    """One model's :meth:`DetectorBank.state_dict` against an empty bank's (``template``)."""
    st = _dict(state, path)
    if not (_is(st.get("kind"), "detector_bank") and _is(st.get("version"), 1)):
        raise _shape_error(path, f"not a version-1 detector bank state: {st.get('kind')!r}")
    features = _list(st.get("features"), f"{path}.features")
    if len(features) > bound:
        raise StateRejected("size", f"{path}.features: {len(features)} features > {bound} (detectors.max_features)")
    if not all(isinstance(f, str) for f in features) or len(set(features)) != len(features):
        raise _shape_error(f"{path}.features", "feature names must be distinct strings")
    n = len(features)
    detectors = _dict(st.get("detectors"), f"{path}.detectors")
    if set(detectors) != set(template["detectors"]):
        raise _shape_error(f"{path}.detectors", f"{sorted(detectors)} != configured {sorted(template['detectors'])}")
    for name, det in detectors.items():
        check_kind_state(det, template["detectors"][name], n, f"{path}.detectors.{name}")
    live = _dict(st.get("live"), f"{path}.live")
    _int(live.get("rows_in_current"), f"{path}.live.rows_in_current", 0, window - 1)
    for side in ("previous", "current"):
        check_kind_state(live.get(side), template["live"][side], n, f"{path}.live.{side}")
    _check_bank_arrays(st, template, n, path)
    reference = _list(st.get("reference"), f"{path}.reference")
    if len(reference) != n or not all(r is None or isinstance(r, Mapping) for r in reference):
        raise _shape_error(f"{path}.reference", f"expected {n} summaries or nulls")
    active = _dict(st.get("active"), f"{path}.active")
    if set(active) != set(template["active"]):
        raise _shape_error(f"{path}.active", f"{sorted(active)} != {sorted(template['active'])}")
    for name, flags in active.items():
        _array(flags, f"{path}.active.{name}", np.zeros(0, dtype=bool), (n,))
    _int(st.get("n_rows"), f"{path}.n_rows")
    _int(st.get("values_dropped"), f"{path}.values_dropped")
    if (st.get("monitor") is None) != (template["monitor"] is None):
        raise _shape_error(f"{path}.monitor", "state and configuration disagree on the reference profile")
    if st.get("monitor") is not None:
        _check_monitor(st["monitor"], template["monitor"], f"{path}.monitor")
    if st.get("multivariate") is not None:
        _check_multivariate(st["multivariate"], template.get("multivariate"), f"{path}.multivariate")
    if st.get("seasonal") is not None:
        _check_seasonal(st["seasonal"], template.get("seasonal"), f"{path}.seasonal")
    if st.get("sequential") is not None and template.get("sequential") is not None:
        _check_sequential(st["sequential"], template["sequential"], n, f"{path}.sequential")
    if st.get("concept") is not None and template["concept"] is not None:
        concept = _dict(st["concept"], f"{path}.concept")
        adwin = template["concept"]["adwin"]
        check_kind_state(concept.get("adwin"), adwin, int(adwin["n_features"]), f"{path}.concept.adwin")
        recent = _array(concept.get("recent"), f"{path}.concept.recent", np.zeros(0), None)
        _int(recent.size, f"{path}.concept.recent(size)", 0, 1000)
        _int(concept.get("since_n"), f"{path}.concept.since_n")
        _number(concept.get("since_sum"), f"{path}.concept.since_sum")


def _check_sequential(state: Any, template: Mapping[str, Any], n: int, path: str) -> None:
    """The sequential tests' state: ``n`` features, this configuration's shape bins (the
    template's widths), and shape-bin edge counts the kernel can index with. (A state
    without them, or of a configuration that disables them, is not checked: the bank then
    starts fresh tests, or ignores it.)"""
    check_kind_state(state, template, n, path)
    st = _dict(state, path)
    ready = _array(st["ready"], f"{path}.ready", np.zeros(0, dtype=bool), (n,)).astype(bool)
    edges = _array(st["n_edges"], f"{path}.n_edges", np.zeros(0, dtype=np.int64), (n,))[ready]
    width = int(np.asarray(template["edges"]).shape[1])
    if np.any((edges < 1) | (edges > width)):
        raise _shape_error(f"{path}.n_edges", f"edge counts must be in [1, {width}]")
    # a run's seed bin indexes the run's counts in the kernel (no bounds check there)
    _seed_bins(st["b_sh"], int(np.asarray(template["cnt_sh"]).shape[1]), f"{path}.b_sh")
    _seed_bins(st["b_mi"], int(np.asarray(template["cnt_mi"]).shape[1]), f"{path}.b_mi")


def _seed_bins(bins: Any, limit: Any, path: str) -> None:
    """A sequential test's seed bins: -1 (none) or a bin below ``limit`` (per feature, or one for all)."""
    b = np.asarray(bins)
    if b.size and (np.any(b < -1) or np.any(b >= limit)):
        raise _shape_error(path, "seed bins must be -1 or a bin of the feature's counts")


def _check_category_sequential(state: Any, template: Mapping[str, Any], path: str) -> None:
    """The reference monitor's categorical sequential tests (``cusum_categories``,
    ``cusum_unseen``): the profile's categorical features, this profile's category widths,
    category counts and estimate rings the kernel can index with, the evidence rings bounded."""
    st = _dict(state, path)
    recent = _dict(st.get("recent"), f"{path}.recent")
    names = list(template["recent"])
    if set(recent) != set(names):
        raise _shape_error(f"{path}.recent", "categorical features differ from the profile's")
    for name, ring in recent.items():
        values = _array(ring, f"{path}.recent.{name}", np.zeros(0, dtype=np.int64), None)
        if values.size > RECENT:
            raise StateRejected("size", f"{path}.recent.{name}: {values.size} values > {RECENT}")
    tests_template = template["tests"]
    check_kind_state(st.get("tests"), tests_template, len(names), f"{path}.tests")
    tests = _dict(st["tests"], f"{path}.tests")
    width = int(np.asarray(tests_template["p0"]).shape[1])
    n_cats = tests["n_cats"]
    if n_cats.size and (np.any(n_cats < 1) or np.any(n_cats > width)):
        raise _shape_error(f"{path}.tests.n_cats", f"category counts must be in [1, {width}]")
    try:  # a ring's codes index the counts in the kernel
        check_rings(tests["ring"], tests["pos"], tests["fill"], n_cats, tests["cnt_c"], tests["cnt_u"])
    except ValueError as exc:
        raise _shape_error(f"{path}.tests.ring", str(exc)) from None


def _check_bank_arrays(st: Mapping[str, Any], template: Mapping[str, Any], n: int, path: str) -> None:
    """The bank's own per-feature arrays, the warm-up buffer and the evidence ring."""
    optional = {"const", "const_tol", "const_active", "const_run"}  # absent in states of older versions
    for key, like in template.items():
        if not isinstance(like, np.ndarray) or key == "warm_values":
            continue
        if key in optional and key not in st:
            continue
        _array(st.get(key), f"{path}.{key}", like, (n,))
    lengths = st["warm_lengths"]
    if lengths.size and int(lengths.min()) < -1:
        raise _shape_error(f"{path}.warm_lengths", "lengths below -1")
    values = _array(st.get("warm_values"), f"{path}.warm_values", template["warm_values"], None)
    if int(lengths[lengths > 0].sum()) != values.size:
        raise _shape_error(f"{path}.warm_values", "does not match warm_lengths")
    if "evidence" in st:  # absent in states from before the evidence ring
        n_rows = _int(st.get("n_rows"), f"{path}.n_rows")
        _check_evidence(st["evidence"], template["evidence"], n, n_rows, f"{path}.evidence")
    if "recent" in st:  # states from before the ring: standardised values, not read, still checked
        recent = st["recent"]
        if not isinstance(recent, np.ndarray) or recent.dtype.kind != "f":
            raise _shape_error(f"{path}.recent", "expected a float array")
        if recent.size and (recent.ndim != 2 or recent.shape[1] != n or recent.shape[0] > 1000):
            raise _shape_error(f"{path}.recent", f"expected [rows <= 1000, {n}], got {recent.shape}")


def _check_evidence(state: Any, template: Mapping[str, Any], n: int, n_rows: int, path: str) -> None:
    """The evidence ring: per feature its last values (standardised), their rows (before
    ``n_rows``) and how many values it was given."""
    ev = _dict(state, path)
    slots = template["z"].shape[0]
    _array(ev.get("z"), f"{path}.z", template["z"], (slots, n))
    rows = _array(ev.get("rows"), f"{path}.rows", template["rows"], (slots, n))
    given = _array(ev.get("n"), f"{path}.n", template["n"], (n,))
    if given.size and int(given.min()) < 0:
        raise _shape_error(f"{path}.n", "negative counts")
    if rows.size and (int(rows.min()) < 0 or int(rows.max()) >= max(n_rows, 1)):
        raise _shape_error(f"{path}.rows", f"rows outside [0, {n_rows})")


def _check_monitor(state: Any, template: Mapping[str, Any], path: str) -> None:
    """The reference monitor's window: the profile's features, the profile's grids."""
    st = _dict(state, path)
    for key in ("counts", "moments"):
        got = _dict(st.get(key), f"{path}.{key}")
        if set(got) != set(template[key]):
            raise _shape_error(f"{path}.{key}", "features differ from the profile's")
        for name, like in template[key].items():
            _array(got[name], f"{path}.{key}.{name}", like, like.shape)
    vocab = _dict(st.get("vocab"), f"{path}.vocab")
    codes = _dict(st.get("code_counts"), f"{path}.code_counts")
    if set(vocab) != set(template["vocab"]) or set(codes) != set(vocab):
        raise _shape_error(f"{path}.vocab", "categorical features differ from the profile's")
    for name, cats in vocab.items():
        _list(cats, f"{path}.vocab.{name}")
        _array(codes[name], f"{path}.code_counts.{name}", np.zeros(0, dtype=np.int64), (len(cats) + 1,))
    for key in ("overflow", "present", "out_of_range", "type_errors"):
        got = _dict(st.get(key), f"{path}.{key}")
        if set(got) != set(template[key]):
            raise _shape_error(f"{path}.{key}", "features differ from the profile's")
        for name, v in got.items():
            _int(v, f"{path}.{key}.{name}")
    _int(st.get("rows"), f"{path}.rows")
    if st.get("bucket") is not None:
        _number(st["bucket"], f"{path}.bucket")
    for pair in _list(st.get("active"), f"{path}.active"):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise _shape_error(f"{path}.active", "expected [feature, test] pairs")
    for name, scores in _dict(st.get("scores"), f"{path}.scores").items():
        for k, v in _dict(scores, f"{path}.scores.{name}").items():
            _number(v, f"{path}.scores.{name}.{k}")
    for name, v in _dict(st.get("last_missing"), f"{path}.last_missing").items():
        _number(v, f"{path}.last_missing.{name}")
    # a state without them, or for a monitor without them (disabled), leaves them fresh: not read
    if st.get("sequential") is not None and template.get("sequential") is not None:
        _check_category_sequential(st["sequential"], template["sequential"], f"{path}.sequential")


def _check_multivariate(state: Any, template: Mapping[str, Any] | None, path: str) -> None:
    """The multivariate test's open window: the profile section's features, their sums."""
    if template is None:
        raise _shape_error(path, "this configuration has no multivariate test (profile section, or disabled)")
    st = _dict(state, path)
    features = _list(st.get("features"), f"{path}.features")
    if features != template["features"]:
        raise _shape_error(f"{path}.features", "features differ from the profile's multivariate section")
    d = len(features)
    _array(st.get("sums"), f"{path}.sums", template["sums"], (d,))
    _array(st.get("cross"), f"{path}.cross", template["cross"], (d, d))
    rows = _int(st.get("rows"), f"{path}.rows")
    if _int(st.get("complete"), f"{path}.complete") > rows:
        raise _shape_error(f"{path}.complete", "more complete rows than rows")
    if st.get("bucket") is not None:
        _number(st["bucket"], f"{path}.bucket")
    if not isinstance(st.get("active"), bool):
        raise _shape_error(f"{path}.active", "expected a boolean")


def _check_seasonal(state: Any, template: Mapping[str, Any] | None, path: str) -> None:
    """The whitening's carried values (detectors/seasonal_profile.py): the profile's features."""
    if template is None:
        raise _shape_error(path, "this configuration has no seasonal features (profile section)")
    st = _dict(state, path)
    if _list(st.get("names"), f"{path}.names") != template["names"]:
        raise _shape_error(f"{path}.names", "features differ from the profile's seasonal section")
    d = len(template["names"])
    _array(st.get("prev"), f"{path}.prev", template["prev"], (d,))
    innovation = _array(st.get("innovation"), f"{path}.innovation", template["innovation"], (d,))
    if not np.isfinite(innovation).all():
        raise _shape_error(f"{path}.innovation", "values must be finite")


def _check_policy(entries: Any, path: str) -> None:
    for entry in _list(entries, path):
        if not (isinstance(entry, list) and len(entry) == 4):
            raise _shape_error(path, "expected [model, feature, detector, offset] entries")
        _int(entry[3], f"{path}[3]", -1)


def _check_labels(labels: Any, path: str) -> None:
    st = _dict(labels, path)
    join = _dict(st.get("join"), f"{path}.join")
    sides = _list(join.get("sides"), f"{path}.join.sides")
    if len(sides) != 2 or not all(isinstance(s, str) for s in sides):
        raise _shape_error(f"{path}.join.sides", "expected two side names")
    pending = _dict(join.get("pending"), f"{path}.join.pending")
    for side in sides:
        for entry in _list(pending.get(side), f"{path}.join.pending.{side}"):
            if not (isinstance(entry, list) and len(entry) == 3):
                raise _shape_error(f"{path}.join.pending.{side}", "expected [id, time, value] entries")
            _number(entry[1], f"{path}.join.pending.{side}[1]")
        for key in ("unmatched", "duplicates"):
            _int(_dict(join.get(key), f"{path}.join.{key}").get(side), f"{path}.join.{key}.{side}")
    _int(join.get("matched"), f"{path}.join.matched")
    _number(join.get("max_pending"), f"{path}.join.max_pending")
    _number(join.get("max_age_s"), f"{path}.join.max_age_s")
    if join.get("watermark") is not None:
        _number(join["watermark"], f"{path}.join.watermark")
    _check_policy(st.get("policy", []), f"{path}.policy")


def check_engine_state(state: Any, config: SidecarConfig, profile: ReferenceProfile | None = None) -> None:
    """Raise :class:`StateRejected` unless ``state`` is an :meth:`Engine.state` of this configuration
    (and ``profile``) whose sizes are within the configured bounds."""
    st = _dict(state, "state")
    banks = _dict(st.get("banks"), "state.banks")
    max_models = getattr(config.detectors, "max_models", None)
    if max_models is not None and len(banks) > max_models:
        raise StateRejected("size", f"state.banks: {len(banks)} models > {max_models} (detectors.max_models)")
    template = DetectorBank(config.detectors, profile).state_dict()
    bound, window = _feature_bound(config, profile), config.detectors.window_size
    for model, bank in banks.items():
        check_bank_state(bank, template, bound, window, f"state.banks[{model!r}]")
    _check_policy(st.get("policy", []), "state.policy")
    if st.get("segments") is not None:  # detectors.segments: each segment bank as a bank of its segment
        check_segments_state(
            st["segments"], config.detectors, profile, banks.keys(),
            lambda s, t, b, p: check_bank_state(s, t, b, window, p), StateRejected,
        )  # fmt: skip
    if st.get("labels") is not None:
        _check_labels(st["labels"], "state.labels")
