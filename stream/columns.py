"""Turn decoded events into column batches, one per model.

>>> evs = [(10, EventView(model="m", features={"a": 1, "b": None})),
...        (11, EventView(model="m", features={"a": 2.5, "c": "DE"}))]
>>> [(m, b.names, b.values.tolist(), b.cat_names, b.cat_values.tolist()) for m, b in to_batches(evs, "default").items()]
[('m', ['a'], [[1.0], [2.5]], ['c'], [[None], ['DE']])]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from schemas import FeatureBatch
from schemas.fastdecode import EventView


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
        index: dict[str, int] = {}
        cat_index: dict[str, int] = {}
        for feats in rows:
            for name, value in feats.items():
                cls = value.__class__
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
        values = np.full((len(items), len(index)), np.nan)
        cats = np.full((len(items), len(cat_index)), None, dtype=object) if cat_index else None
        dropped = 0
        for i, feats in enumerate(rows):
            row = values[i]
            for name, value in feats.items():
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
            names=list(index),
            values=values,
            offsets=np.fromiter((o for o, _ in items), dtype=np.int64, count=len(items)),
            event_times=np.fromiter(
                (e.ts if e.ts is not None else np.nan for _, e in items), dtype=np.float64, count=len(items)
            ),
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
