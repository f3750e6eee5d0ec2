"""The detector kernels' shared ending: flagged cells -> (row, feature) pairs in stream order."""

from __future__ import annotations

import numba as nb
import numpy as np


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
