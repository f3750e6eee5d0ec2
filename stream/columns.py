"""Turn decoded events into column batches, one per model.

>>> evs = [(10, EventView(model="m", features={"a": 1, "b": None})),
...        (11, EventView(model="m", features={"a": 2.5, "c": "DE"}))]
>>> [(m, b.names, b.values.tolist(), b.cat_names, b.cat_values.tolist()) for m, b in to_batches(evs, "default").items()]
[('m', ['a'], [[1.0], [2.5]], ['c'], [[None], ['DE']])]

Speed: a stream's events usually share one layout (the same feature names in the same
order, all numbers). Each row's layout is taken once as ``(names, types)``; a row whose
names are exactly the batch's numeric columns, in order, with only float/int values, is
copied as a whole (``list(dict.values())``, one ``np.array`` call for all such rows)
instead of value by value. Other rows take the general path. The result is the same.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from schemas import FeatureBatch
from schemas.fastdecode import EventView

_NUMERIC = (float, int)  # exact classes: bool is categorical


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
    by_model: dict[str, list[tuple[int, EventView]]] = {}
    for offset, event in events:
        by_model.setdefault(event.model or default_model, []).append((offset, event))
    out: dict[str, FeatureBatch] = {}
    for model, items in by_model.items():
        rows = [_features(event) for _, event in items]
        # Each row's layout: (names, value classes). Consecutive rows with the same
        # layout add no columns, so discovery looks at a layout only when it changes.
        keys = [list(feats) for feats in rows]
        types = [tuple(map(type, feats.values())) for feats in rows]
        index: dict[str, int] = {}
        cat_index: dict[str, int] = {}
        last_keys: list[str] | None = None
        last_types: tuple[type, ...] | None = None
        for feats, ks, ts in zip(rows, keys, types):
            if ts == last_types and ks == last_keys:
                continue
            last_keys, last_types = ks, ts
            for name, cls in zip(ks, ts):
                if cls is float or cls is int:
                    if name not in index:
                        index[name] = len(index)
                elif (cls is str or cls is bool) and name not in cat_index:
                    cat_index[name] = len(cat_index)
        if admit is not None:
            names = admit(model, list(dict.fromkeys([*index, *cat_index])))
            if len(names) != len(index) + len(cat_index) - len(index.keys() & cat_index.keys()):
                keep = set(names)
                index = {n: j for j, n in enumerate(n for n in index if n in keep)}
                cat_index = {n: j for j, n in enumerate(n for n in cat_index if n in keep)}
        columns = list(index)
        numeric_only: dict[tuple[type, ...], bool] = {}
        fast_rows: list[int] = []
        slow_rows: list[int] = []
        for i, (ks, ts) in enumerate(zip(keys, types)):
            ok = numeric_only.get(ts)
            if ok is None:
                ok = numeric_only[ts] = all(t in _NUMERIC for t in ts)
            (fast_rows if ok and ks == columns else slow_rows).append(i)
        n_rows = len(items)
        if not slow_rows and columns:
            values = np.array([list(feats.values()) for feats in rows], dtype=np.float64).reshape(n_rows, len(columns))
        else:
            values = np.full((n_rows, len(index)), np.nan)
            if fast_rows and columns:
                values[fast_rows] = np.array([list(rows[i].values()) for i in fast_rows], dtype=np.float64)
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
            event_times=np.array([np.nan if e.ts is None else e.ts for _, e in items], dtype=np.float64).reshape(n_rows),
            dropped_values=dropped,
            cat_names=list(cat_index),
            cat_values=cats,
        )
    return out


def _features(event: EventView) -> dict:
    """The event's features, plus ``@prediction`` / ``@label`` when present."""
    if event.prediction is None and event.label is None:
        return event.features
    feats = dict(event.features)
    if event.prediction is not None:
        feats["@prediction"] = event.prediction
    if event.label is not None:
        feats["@label"] = event.label
    return feats
