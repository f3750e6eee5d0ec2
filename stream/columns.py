"""Turn decoded events into column batches, one per model.

>>> evs = [(10, EventView(model="m", features={"a": 1, "b": None})),
...        (11, EventView(model="m", features={"a": 2.5, "c": "DE"}))]
>>> [(m, b.names, b.values.tolist()) for m, b in to_batches(evs, "default").items()]
[('m', ['a', 'b'], [[1.0, nan], [2.5, nan]])]
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
    """Group ``(offset, event)`` pairs by model into float64 matrices.

    Numbers (and booleans, as 0/1) become values; null is NaN (missing); strings are
    categorical and are not numeric columns. Column order is first appearance, so a
    stream with a fixed feature set yields the same order every batch.
    ``admit(model, names)`` chooses the columns to build (the detector bank's feature
    cap); values of the others are counted in ``dropped_values``.
    """
    by_model: dict[str, list[tuple[int, EventView]]] = {}
    for offset, event in events:
        by_model.setdefault(event.model or default_model, []).append((offset, event))
    out: dict[str, FeatureBatch] = {}
    for model, items in by_model.items():
        index: dict[str, int] = {}
        for _, event in items:
            for name, value in event.features.items():
                if name not in index and not isinstance(value, str):
                    index[name] = len(index)
        if admit is not None:
            names = admit(model, list(index))
            if len(names) != len(index):
                index = {name: j for j, name in enumerate(names)}
        values = np.full((len(items), len(index)), np.nan)
        dropped = 0
        for i, (_, event) in enumerate(items):
            row = values[i]
            for name, value in event.features.items():
                if value is not None and not isinstance(value, str):
                    j = index.get(name)
                    if j is None:
                        dropped += 1
                    else:
                        row[j] = float(value)
        out[model] = FeatureBatch(
            names=list(index),
            values=values,
            offsets=np.fromiter((o for o, _ in items), dtype=np.int64, count=len(items)),
            event_times=np.fromiter(
                (e.ts if e.ts is not None else np.nan for _, e in items), dtype=np.float64, count=len(items)
            ),
            dropped_values=dropped,
        )
    return out
