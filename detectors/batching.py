"""Decoded events -> column batches, one per model (the engine's decode-to-batch step).

>>> evs = [(10, EventView(model="m", features={"a": 1, "b": None})),
...        (11, EventView(model="m", features={"a": 2.5, "c": "DE"}))]
>>> [(m, b.names, b.values.tolist(), b.cat_names, b.cat_values.tolist()) for m, b in to_batches(evs, "default").items()]
[('m', ['a'], [[1.0], [2.5]], ['c'], [[None], ['DE']])]

Speed: a stream's events usually share one layout (the same feature names in the same
order, all numbers). A row whose names are exactly the batch's numeric columns, in
order, with only float/int values, is copied as a whole (its ``dict.values()`` into one
flat list, one ``np.array`` call for all such rows) instead of value by value. Other rows
take the general path. The result is the same.

The shell sizes what it hands over (:class:`driftsentinel.stream.columns.BatchBudget`);
this module is pure and part of the engine (:mod:`driftsentinel.detectors.engine`).
"""


from __future__ import annotations

from collections.abc import Callable
from itertools import repeat

import numpy as np

from driftsentinel.schemas import FeatureBatch
from driftsentinel.schemas.columnar import ColumnBatch
from driftsentinel.schemas.fastdecode import EventView, NumericEventView


def to_batches(
    events: list[tuple[int, EventView]],
    default_model: str,
    admit: Callable[[str, list[str]], list[str]] | None = None,
) -> dict[str, FeatureBatch]:
    """Group ``(offset, event)`` pairs by model into column batches.

    Numbers become values of the float64 matrix; null is missing; strings and booleans
    (as ``"true"``/``"false"``) go to the categorical matrix. ``prediction`` and ``label``
    become the features ``@prediction`` and ``@label``. Column order is first appearance,
    so a stream with a fixed feature set yields the same order every batch.
    ``admit(model, names)`` chooses the numeric and categorical columns to build (the
    detector bank's feature cap); values of the others are counted in ``dropped_values``.
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
                    elif (cls is str or cls is bool) and name not in cat_index:
                        cat_index[name] = len(cat_index)
            row_layout.append(len(layouts) - 1)
        if admit is not None:
            names = admit(model, list(dict.fromkeys([*index, *cat_index])))
            if len(names) != len(index) + len(cat_index) - len(index.keys() & cat_index.keys()):
                keep = set(names)
                index = {n: j for j, n in enumerate(n for n in index if n in keep)}
                cat_index = {n: j for j, n in enumerate(n for n in cat_index if n in keep)}
        columns = list(index)
        whole = [bool(columns) and ks == columns and (ts is _NUMERIC or all(t is float or t is int for t in ts))
                 for ks, ts in layouts]
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
            event_times=np.array([np.nan if e.ts is None else e.ts for _, e in items],
                                 dtype=np.float64).reshape(n_rows),
            dropped_values=dropped,
            cat_names=list(cat_index),
            cat_values=cats,
        )
    return out


#: Stands for the value types of a row known to hold numbers only (NumericEventView).
_NUMERIC: tuple = ("all numbers",)


def _is_numeric(event: EventView) -> bool:
    """All the row's values are numbers: a NumericEventView whose prediction/label are numbers too."""
    return (event.__class__ is NumericEventView
            and event.prediction.__class__ is not str and event.label.__class__ is not str)


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
    values = (np.column_stack([numeric[n] for n in num_names]) if num_names
              else np.empty((rows, 0), dtype=np.float64))
    cats = None
    if cat_names:
        cats = np.empty((rows, len(cat_names)), dtype=object)
        for k, n in enumerate(cat_names):
            cats[:, k] = categorical[n]
    return model, FeatureBatch(
        names=num_names, values=values, offsets=np.full(rows, offset, dtype=np.int64), event_times=batch.ts,
        dropped_values=dropped, cat_names=cat_names, cat_values=cats,
        rows_in_message=np.arange(rows, dtype=np.int64),
    )
