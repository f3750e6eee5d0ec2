"""FeatureBatch: the columnar hand-over from the stream shell to the detector core.

>>> import numpy as np
>>> b = FeatureBatch(names=["a", "b"], values=np.array([[1.0, np.nan]]),
...                  offsets=np.array([7]), event_times=np.array([np.nan]))
>>> b.n_rows, b.n_features
(1, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FeatureBatch:
    """Events of one (partition, model) as a float64 matrix ``[rows, features]``.

    ``values[i, j]`` is numeric feature ``names[j]`` of event ``i`` (NaN = missing or not
    numeric); ``offsets[i]`` its Kafka offset; ``event_times[i]`` its ``ts`` (NaN if none; the engine puts
    the message's time there when ``ts`` is more than ``event_time_tolerance_s`` off it).
    Categorical values (strings; booleans as ``"true"``/``"false"``) are in
    ``cat_values[i, k]`` for feature ``cat_names[k]`` (None = missing or not a string).
    A feature may appear in both when producers disagree on its type.
    The model's ``prediction`` and ``label`` travel as the features ``@prediction`` and ``@label``.
    """

    names: list[str]
    values: np.ndarray
    offsets: np.ndarray
    event_times: np.ndarray
    dropped_values: int = 0  # values of features left out (over the feature cap)
    cat_names: list[str] = field(default_factory=list)
    cat_values: np.ndarray | None = None  # object [rows, len(cat_names)]: str, or None = missing
    rows_in_message: np.ndarray | None = None  # row i's index inside its columnar message (None: one event each)

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.names):
            raise ValueError(f"values shape {self.values.shape} does not match {len(self.names)} names")
        if len(self.offsets) != self.values.shape[0] or len(self.event_times) != self.values.shape[0]:
            raise ValueError("offsets/event_times must have one entry per row")
        if self.cat_names and (self.cat_values is None or self.cat_values.shape != (self.n_rows, len(self.cat_names))):
            raise ValueError("cat_values must be [rows, len(cat_names)]")
        if self.rows_in_message is not None and len(self.rows_in_message) != self.n_rows:
            raise ValueError("rows_in_message must have one entry per row")

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_features(self) -> int:
        return len(self.names)
