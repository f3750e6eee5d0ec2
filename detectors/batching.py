"""Decoded events -> column batches, one per model (the engine's decode-to-batch step).

>>> evs = [(10, EventView(model="m", features={"a": 1, "b": None})),
...        (11, EventView(model="m", features={"a": 2.5, "c": "DE"}))]
>>> [(m, b.names, b.values.tolist(), b.cat_names, b.cat_values.tolist()) for m, b in to_batches(evs, "default").items()]
[('m', ['a'], [[1.0], [2.5]], ['c'], [[None], ['DE']])]
>>> to_batches(evs, "default", null_columns=True)["m"].names
['a', 'b']

With ``null_columns`` (the engine's choice), a name whose values are all null in the batch
(``b``) gets an all-missing numeric column, so an always-missing feature is a feature (its
gauges show a missing ratio of 1) instead of nothing. Unless a string of it comes in the
same batch: then it is categorical only. Limit:
without a profile or ``detectors.types``, the bank cannot know that a feature null for a
whole batch will send strings later, and takes it as numeric (a string feature counts as
missing there); pin it with ``detectors.types: {name: categorical}``.

Event times are checked against the messages' times by :class:`MessageTimes`.

Speed: a stream's events usually share one layout (the same feature names in the same
order, all numbers). A row whose names are exactly the batch's numeric columns, in
order, with only float/int values, is copied as a whole (its ``dict.values()`` into one
flat list, one ``np.array`` call for all such rows) instead of value by value. Other rows
take the general path. The result is the same.

The shell sizes what it hands over (:class:`driftsentinel.stream.columns.BatchBudget`);
this module is pure and part of the engine (:mod:`driftsentinel.detectors.engine`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import itemgetter

import numpy as np

from driftsentinel.schemas import FeatureBatch
from driftsentinel.schemas.columnar import ColumnBatch
from driftsentinel.schemas.fastdecode import EventView, NumericEventView


def to_batches(
    events: list[tuple[int, EventView]],
    default_model: str,
    admit: Callable[[str, list[str]], list[str]] | None = None,
    null_columns: bool = False,
) -> dict[str, FeatureBatch]:
    """Group ``(offset, event)`` pairs by model into column batches.

    Numbers become values of the float64 matrix; null is missing; strings and booleans
    (as ``"true"``/``"false"``) go to the categorical matrix. ``prediction`` and ``label``
    become the features ``@prediction`` and ``@label``. Column order is first appearance,
    so a stream with a fixed feature set yields the same order every batch.
    ``admit(model, names)`` chooses the numeric and categorical columns to build (the
    detector bank's feature cap); values of the others are counted in ``dropped_values``.
    With ``null_columns``, a name with only nulls in the batch (and no string) gets an
    all-NaN numeric column (without, it gets none).
    """
    models = {event.model for _, event in events}
    by_model: dict[str, list[tuple[int, EventView]]] = {}
    if len(models) == 1:  # one model per partition is the documented way to key events
        by_model[next(iter(models)) or default_model] = events
    else:
        for item in events:  # the caller's pairs, not new ones (fewer objects for the GC)
            by_model.setdefault(item[1].model or default_model, []).append(item)
    out: dict[str, FeatureBatch] = {}
    for model, items in by_model.items():
        rows = [event_features(event) for _, event in items]
        # Each row's layout is (names, value classes). Consecutive rows of the same layout
        # add no columns, so discovery looks at a layout only when it changes. Only ints
        # are kept per row (a layout number): objects kept per row would be tracked by the
        # garbage collector, whose passes over them cost more than the rest of this loop.
        # Rows the decoder knows to hold numbers only skip the per-value type scan.
        index: dict[str, int] = {}
        cat_index: dict[str, int] = {}
        layouts: list[tuple[list[str], tuple[type, ...]]] = []
        row_layout: list[int] = []
        last_keys: list[str] | None = None
        last_types: tuple[type, ...] | None = None
        nulls: set[str] = set()  # names that have a column only because of nulls (so far)
        for (_, event), feats in zip(items, rows, strict=True):
            ks = list(feats)
            ts = _NUMERIC if _is_numeric(event) else tuple(map(type, feats.values()))
            if ts != last_types or ks != last_keys:
                last_keys, last_types = ks, ts
                layouts.append((ks, ts))
                for name, cls in zip(ks, ts, strict=True) if ts is not _NUMERIC else zip(ks, repeat(float)):
                    if cls is float or cls is int:
                        if name not in index:
                            index[name] = len(index)
                        elif nulls:
                            nulls.discard(name)
                    elif cls is str or cls is bool:
                        if name not in cat_index:
                            cat_index[name] = len(cat_index)
                    elif cls is _NONE and null_columns and name not in index:
                        # At its first appearance, as numbers would be: the column order (the
                        # bank's feature order) then does not depend on where the stream is cut.
                        index[name] = len(index)
                        nulls.add(name)
            row_layout.append(len(layouts) - 1)
        if nulls and not nulls.isdisjoint(cat_index):  # nulls of a feature that sends strings: categorical only
            index = {n: j for j, n in enumerate(n for n in index if n not in nulls or n not in cat_index)}
        if admit is not None:
            names = admit(model, list(dict.fromkeys([*index, *cat_index])))
            if len(names) != len(index) + len(cat_index) - len(index.keys() & cat_index.keys()):
                keep = set(names)
                index = {n: j for j, n in enumerate(n for n in index if n in keep)}
                cat_index = {n: j for j, n in enumerate(n for n in cat_index if n in keep)}
        columns = list(index)
        whole = [
            bool(columns) and ks == columns and (ts is _NUMERIC or all(t is float or t is int for t in ts))
            for ks, ts in layouts
        ]
        n_rows = len(items)
        if all(whole):  # the common case: every row is a full row of numbers, in column order
            flat: list[float] = []
            for feats in rows:
                flat.extend(feats.values())
            values = np.array(flat, dtype=np.float64).reshape(n_rows, len(columns))
            slow_rows: list[int] = []
        else:
            values = np.full((n_rows, len(index)), np.nan)
            fast_rows = [i for i, k in enumerate(row_layout) if whole[k]]
            slow_rows = [i for i, k in enumerate(row_layout) if not whole[k]]
            if fast_rows:
                flat = []
                for i in fast_rows:
                    flat.extend(rows[i].values())
                values[fast_rows] = np.array(flat, dtype=np.float64).reshape(len(fast_rows), len(columns))
        cats = np.full((n_rows, len(cat_index)), None, dtype=object) if cat_index else None
        dropped = 0
        for i in slow_rows:
            row = values[i]
            for name, value in rows[i].items():
                cls = value.__class__
                if cls is float or cls is int:
                    j = index.get(name)
                    if j is None:
                        dropped += 1
                    else:
                        row[j] = value
                elif cls is str or cls is bool:
                    k = cat_index.get(name)
                    if k is None:
                        dropped += 1
                    else:
                        cats[i, k] = value if cls is str else ("true" if value else "false")  # type: ignore[index]
        out[model] = FeatureBatch(
            names=columns,
            values=values,
            offsets=np.array([o for o, _ in items], dtype=np.int64).reshape(n_rows),
            event_times=np.array([np.nan if e.ts is None else e.ts for _, e in items], dtype=np.float64).reshape(
                n_rows
            ),
            dropped_values=dropped,
            cat_names=list(cat_index),
            cat_values=cats,
        )
    return out


#: Stands for the value types of a row known to hold numbers only (NumericEventView).
_NUMERIC: tuple = ("all numbers",)
_NONE = type(None)


class MessageTimes:
    """One call's message (Kafka) times by offset, and event times checked against them.

    An event's ``ts`` comes from its producer and can be anything: 0, year 9999, an hour
    off. Windowing by it would let one such event stop a model's event-time windows (they
    close when time moves past them). So a ``ts`` more than ``tolerance`` seconds from its
    message's time is replaced by the message time (counted); a missing ``ts`` stays
    missing. A message time that is not a positive number means "unknown": no check
    (a file replay has no message times; its lines' ``ts`` are used as they are).

    >>> from driftsentinel.schemas import FeatureBatch
    >>> times = MessageTimes([(5, None, 1000.0), (6, None, 1001.0), (7, None, 0.0)], tolerance=60)
    >>> b = FeatureBatch(["x"], np.zeros((3, 1)), np.array([5, 6, 7]), np.array([990.0, 253402300799.0, 1.0]))
    >>> checked, late = times.check(b, live_from=0)
    >>> checked.event_times.tolist(), late
    ([990.0, 1001.0, 1.0], 1)
    """

    def __init__(self, items: Sequence[tuple[int, object, float]], tolerance: float) -> None:
        self.items = items
        self.tolerance = tolerance
        self._table: tuple[np.ndarray, np.ndarray] | None = None

    def at(self, offsets: np.ndarray) -> np.ndarray:
        """The message time of each offset (NaN where no item has it)."""
        if self._table is None:  # built once per call, and only when a batch has event times
            offs = np.array(list(map(itemgetter(0), self.items)), dtype=np.int64)  # faster than a generator
            times = np.array(list(map(itemgetter(2), self.items)), dtype=np.float64)
            if offs.size > 1 and not bool((offs[1:] >= offs[:-1]).all()):
                order = np.argsort(offs, kind="stable")
                offs, times = offs[order], times[order]
            self._table = offs, times
        offs, times = self._table
        if not offs.size:
            return np.full(len(offsets), np.nan)
        idx = np.minimum(np.searchsorted(offs, offsets), offs.size - 1)
        return np.where(offs[idx] == offsets, times[idx], np.nan)

    def check(self, batch: FeatureBatch, live_from: int) -> tuple[FeatureBatch, int]:
        """``batch`` with far-off event times replaced by message times; how many (at offsets >= ``live_from``)."""
        ts = batch.event_times
        has_ts = np.isfinite(ts)
        if not has_ts.any():
            return batch, 0
        arrival = self.at(batch.offsets)
        with np.errstate(invalid="ignore"):
            off = has_ts & (arrival > 0) & (np.abs(ts - arrival) > self.tolerance)
        if not off.any():
            return batch, 0
        late = int(np.count_nonzero(off & (batch.offsets >= live_from)))
        return dataclasses.replace(batch, event_times=np.where(off, arrival, ts)), late


def _is_numeric(event: EventView) -> bool:
    """All the row's values are numbers: a NumericEventView whose prediction/label are numbers too."""
    return (
        event.__class__ is NumericEventView
        and event.prediction.__class__ is not str
        and event.label.__class__ is not str
    )


def event_features(event: EventView) -> dict:
    """The event's features, plus ``@prediction`` / ``@label`` when present."""
    if event.prediction is None and event.label is None:
        return event.features
    feats = dict(event.features)
    if event.prediction is not None:
        feats["@prediction"] = event.prediction
    if event.label is not None:
        feats["@label"] = event.label
    return feats


def columnar_to_batch(
    batch: ColumnBatch,
    offset: int,
    default_model: str,
    admit: Callable[[str, list[str]], list[str]] | None = None,
) -> tuple[str, FeatureBatch]:
    """A decoded columnar message (at ``offset``) as the model's FeatureBatch.

    Every row carries the message's offset, and ``rows_in_message`` its row. ``prediction``
    and ``label`` become ``@prediction`` / ``@label`` (numeric when every value is a number).
    """
    model = batch.model or default_model
    rows = batch.rows
    numeric = dict(batch.numeric)
    categorical: dict[str, list] = dict(batch.categorical)
    for name, column in (("@prediction", batch.prediction), ("@label", batch.label)):
        if column is None:
            continue
        if all(v is None or v.__class__ is float for v in column):
            numeric[name] = np.array([np.nan if v is None else v for v in column], dtype=np.float64)
        else:
            categorical[name] = [v if v is None or v.__class__ is str else repr(v) for v in column]
    names = list(dict.fromkeys([*numeric, *categorical]))
    keep = set(admit(model, names)) if admit is not None else set(names)
    num_names = [n for n in numeric if n in keep]
    cat_names = [n for n in categorical if n in keep]
    dropped = sum(int(np.count_nonzero(~np.isnan(numeric[n]))) for n in numeric if n not in keep)
    dropped += sum(sum(v is not None for v in categorical[n]) for n in categorical if n not in keep)
    values = np.column_stack([numeric[n] for n in num_names]) if num_names else np.empty((rows, 0), dtype=np.float64)
    cats = None
    if cat_names:
        cats = np.empty((rows, len(cat_names)), dtype=object)
        for k, n in enumerate(cat_names):
            cats[:, k] = categorical[n]
    return model, FeatureBatch(
        names=num_names,
        values=values,
        offsets=np.full(rows, offset, dtype=np.int64),
        event_times=batch.ts,
        dropped_values=dropped,
        cat_names=cat_names,
        cat_values=cats,
        rows_in_message=np.arange(rows, dtype=np.int64),
    )
