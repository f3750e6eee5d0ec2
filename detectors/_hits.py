"""Pieces both detector kernel modules share: the hits' ending, the features a call names.

>>> feature_indices([2, 0], n_features=3).tolist()
[2, 0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numba as nb
import numpy as np


def feature_indices(features: Sequence[int], n_features: int) -> np.ndarray:
    """``features`` as an int64 index array, each in ``[0, n_features)`` (else ``ValueError``)."""
    idx = np.asarray(features)
    if idx.ndim != 1 or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"features: expected a sequence of feature indices, got {features!r}")
    idx = idx.astype(np.int64)
    if np.any((idx < 0) | (idx >= n_features)):
        raise ValueError(f"features: indices must be in [0, {n_features}), got {idx.tolist()}")
    return idx


@nb.njit(cache=True, error_model="numpy", nogil=True)
def collect_hits(flags, row_hits, rows, F, n_hits):  # pragma: no cover - numba
    """``flags[i, f]`` (a scratch of at least ``[rows, F]``) set where feature ``f`` fired at
    row ``i``; ``row_hits[i]`` counts row ``i``'s hits and ``n_hits`` all of them. Returns an
    int64 array ``[n_hits, 2]``."""
    out = np.empty((n_hits, 2), np.int64)
    k = 0
    for i in range(rows):
        if row_hits[i]:
            fr = flags[i]
            for f in range(F):
                if fr[f]:
                    out[k, 0] = i
                    out[k, 1] = f
                    k += 1
    return out
