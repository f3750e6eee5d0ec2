"""Mergeable per-feature summaries of a numeric stream: counts, moments, extremes, quantiles.

``FeatureSketch`` keeps, for each of ``n_features`` columns: the number of values and of
missing values (NaN), the mean and variance (Welford within a batch, Chan et al. to
combine batches and sketches: numerically stable and mergeable), the exact min/max, and
a DDSketch (Masson, Rim & Lee, 2019) for quantiles.

Quantile error bound: with relative accuracy ``alpha`` (default 0.01), for any
``q`` the estimate ``x̂`` of the value ``x`` of rank ``floor(q * (count - 1))`` satisfies
``|x̂ - x| <= alpha * |x|`` whenever ``min_value <= |x| <= max_value``; values with
``|x| < min_value`` are summarised as 0 (absolute error < ``min_value``), values with
``|x| > max_value`` share the outermost bucket (the estimate is then clamped into the
exact ``[min, max]``, which also bounds it). Merging is exact for the bucket counts, so
merged sketches obey the same bound as a sketch of the concatenated stream.

>>> import numpy as np
>>> from detectors import FeatureSketch
>>> rng = np.random.default_rng(3)
>>> X = rng.lognormal(0, 1, (10_000, 2)); X[::10, 1] = np.nan
>>> s = FeatureSketch(n_features=2)
>>> s.update(X)
>>> s.count.tolist(), s.missing.tolist()
([10000, 9000], [0, 1000])
>>> exact = np.nanquantile(X, 0.5, axis=0, method="lower")
>>> bool(np.all(np.abs(s.quantile(0.5) - exact) <= 0.01 * np.abs(exact)))
True
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

from detectors._state import STATE_VERSION, as_array, as_matrix, check_kind, to_builtin

__all__ = ["FeatureSketch"]


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _bin_kernel(X, pos, neg, zero, kmin, inv_log_gamma, min_value):  # pragma: no cover - numba
    rows, F = X.shape
    K = pos.shape[1]
    for i in range(rows):
        for f in range(F):
            x = X[i, f]
            if x != x:
                continue
            a = abs(x)
            if a < min_value:
                zero[f] += 1
                continue
            k = int(math.ceil(math.log(a) * inv_log_gamma)) - kmin if a < 1.7e308 else K - 1
            if k < 0:
                k = 0
            elif k >= K:
                k = K - 1
            if x > 0:
                pos[f, k] += 1
            else:
                neg[f, k] += 1


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _quantile_kernel(pos, neg, zero, q, kmin, gamma, out):  # pragma: no cover - numba
    F, K = pos.shape
    for f in range(F):
        n = zero[f]
        for k in range(K):
            n += pos[f, k] + neg[f, k]
        if n == 0:
            out[f] = np.nan
            continue
        rank = math.floor(q * (n - 1))
        cum = 0
        found = False
        for k in range(K - 1, -1, -1):  # most negative first
            cum += neg[f, k]
            if cum > rank:
                out[f] = -2.0 * gamma ** (k + kmin) / (gamma + 1.0)
                found = True
                break
        if found:
            continue
        cum += zero[f]
        if cum > rank:
            out[f] = 0.0
            continue
        for k in range(K):
            cum += pos[f, k]
            if cum > rank:
                out[f] = 2.0 * gamma ** (k + kmin) / (gamma + 1.0)
                break


class FeatureSketch:
    """Per-feature count / missing / mean / variance / min / max / DDSketch quantiles.

    Parameters
    ----------
    n_features
        Number of columns.
    alpha
        Relative accuracy of the quantile sketch.
    min_value, max_value
        Magnitude range over which the relative-accuracy bound holds (see module doc).

    ``update(X)`` takes ``[n, n_features]`` float64 with NaN = missing. ``merge(other)``
    folds in another sketch with the same ``alpha``/range (exact for counts and extremes,
    ~1e-15 relative for mean/variance). ``state_dict``/``from_state`` are pickle-free; the
    bucket counts are stored sparsely.
    """

    def __init__(self, n_features: int, alpha: float = 0.01, min_value: float = 1e-12,
                 max_value: float = 1e15) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError("alpha must be in (0, 1)")
        if not 0.0 < min_value < max_value:
            raise ValueError("need 0 < min_value < max_value")
        self.alpha = float(alpha)
        self.min_value = float(min_value)
        self.max_value = float(max_value)
        self._gamma = (1.0 + self.alpha) / (1.0 - self.alpha)
        self._inv_log_gamma = 1.0 / math.log(self._gamma)
        self._kmin = int(math.ceil(math.log(self.min_value) * self._inv_log_gamma))
        kmax = int(math.ceil(math.log(self.max_value) * self._inv_log_gamma))
        self._K = kmax - self._kmin + 1
        self._alloc(int(n_features))

    def _alloc(self, F: int) -> None:
        self._count = np.zeros(F, dtype=np.int64)
        self._missing = np.zeros(F, dtype=np.int64)
        self._mean = np.zeros(F)
        self._m2 = np.zeros(F)
        self._min = np.full(F, np.inf)
        self._max = np.full(F, -np.inf)
        self._zero = np.zeros(F, dtype=np.int64)
        self._pos = np.zeros((F, self._K), dtype=np.int64)
        self._neg = np.zeros((F, self._K), dtype=np.int64)

    _FIELDS = ("_count", "_missing", "_mean", "_m2", "_min", "_max", "_zero", "_pos", "_neg")

    @property
    def n_features(self) -> int:
        return len(self._count)

    # --------------------------------------------------------------- updates
    def update(self, X: Any) -> None:
        """Fold a batch ``[n, n_features]`` (NaN = missing) into the sketch."""
        X = np.ascontiguousarray(as_matrix(X, self.n_features))
        if X.shape[0] == 0 or self.n_features == 0:
            return
        present = ~np.isnan(X)
        nb_ = present.sum(axis=0)
        self._missing += X.shape[0] - nb_
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            bmean = np.where(nb_ > 0, np.nansum(X, axis=0) / np.maximum(nb_, 1), 0.0)
            dev = np.where(present, X - bmean, 0.0)
            bm2 = np.einsum("ij,ij->j", dev, dev)
        self._combine(nb_, bmean, bm2)
        has = nb_ > 0
        if has.any():
            with np.errstate(invalid="ignore"):
                self._min = np.where(has, np.fmin(self._min, np.nanmin(np.where(present, X, np.inf), axis=0)),
                                     self._min)
                self._max = np.where(has, np.fmax(self._max, np.nanmax(np.where(present, X, -np.inf), axis=0)),
                                     self._max)
        _bin_kernel(X, self._pos, self._neg, self._zero, self._kmin, self._inv_log_gamma, self.min_value)

    def _combine(self, nb_: np.ndarray, bmean: np.ndarray, bm2: np.ndarray) -> None:
        # Chan, Golub & LeVeque pairwise update
        na = self._count.astype(np.float64)
        nbf = nb_.astype(np.float64)
        n = na + nbf
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            delta = bmean - self._mean
            safe = np.where(n > 0, n, 1.0)
            mean = self._mean + delta * (nbf / safe)
            m2 = self._m2 + bm2 + delta * delta * (na * nbf / safe)
        upd = nb_ > 0
        self._mean = np.where(upd, mean, self._mean)
        self._m2 = np.where(upd, m2, self._m2)
        self._count = self._count + nb_

    def merge(self, other: FeatureSketch) -> FeatureSketch:
        """Fold ``other`` (same features, alpha and range) into this sketch; returns ``self``."""
        if (other.alpha, other.min_value, other.max_value) != (self.alpha, self.min_value, self.max_value):
            raise ValueError("cannot merge sketches with different alpha / value range")
        if other.n_features != self.n_features:
            raise ValueError("cannot merge sketches with different numbers of features")
        self._combine(other._count, other._mean, other._m2)
        self._missing = self._missing + other._missing
        self._min = np.fmin(self._min, other._min)
        self._max = np.fmax(self._max, other._max)
        self._zero = self._zero + other._zero
        self._pos = self._pos + other._pos
        self._neg = self._neg + other._neg
        return self

    def reset(self, feature_mask: Any = None) -> None:
        """Forget everything about the selected features (all by default)."""
        mask = np.ones(self.n_features, bool) if feature_mask is None else np.asarray(feature_mask, bool)
        fresh = FeatureSketch(int(mask.sum()), self.alpha, self.min_value, self.max_value)
        for name in self._FIELDS:
            getattr(self, name)[mask] = getattr(fresh, name)

    def add_features(self, n: int) -> None:
        """Append ``n`` empty features."""
        old = {k: getattr(self, k) for k in self._FIELDS}
        self._alloc(int(n))
        for k in self._FIELDS:
            setattr(self, k, np.concatenate([old[k], getattr(self, k)]))

    # ------------------------------------------------------------- read-outs
    @property
    def count(self) -> np.ndarray:
        return self._count.copy()

    @property
    def missing(self) -> np.ndarray:
        return self._missing.copy()

    @property
    def missing_ratio(self) -> np.ndarray:
        total = self._count + self._missing
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return np.where(total > 0, self._missing / np.maximum(total, 1), 0.0)

    @property
    def mean(self) -> np.ndarray:
        return np.where(self._count > 0, self._mean, np.nan)

    @property
    def variance(self) -> np.ndarray:
        """Sample variance (ddof=1); NaN with fewer than 2 values."""
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return np.where(self._count > 1, self._m2 / np.maximum(self._count - 1, 1), np.nan)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.variance)

    @property
    def min(self) -> np.ndarray:
        return np.where(self._count > 0, self._min, np.nan)

    @property
    def max(self) -> np.ndarray:
        return np.where(self._count > 0, self._max, np.nan)

    def quantile(self, q: float) -> np.ndarray:
        """Estimate of the rank-``floor(q*(count-1))`` value per feature (NaN when empty)."""
        q = float(q)
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be in [0, 1]")
        out = np.full(self.n_features, np.nan)
        _quantile_kernel(self._pos, self._neg, self._zero, q, self._kmin, self._gamma, out)
        if q == 0.0:
            return self.min  # exact: the rank-0 value is the minimum
        if q == 1.0:
            return self.max
        with np.errstate(invalid="ignore"):
            return np.clip(out, self.min, self.max)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """Plain dict of numpy arrays / Python numbers (no pickle); bucket counts stored sparsely."""
        pf, pk = np.nonzero(self._pos)
        nf, nk = np.nonzero(self._neg)
        return {
            "kind": "feature_sketch",
            "version": STATE_VERSION,
            "n_features": self.n_features,
            "alpha": self.alpha,
            "min_value": self.min_value,
            "max_value": self.max_value,
            "count": self._count.copy(),
            "missing": self._missing.copy(),
            "mean": self._mean.copy(),
            "m2": self._m2.copy(),
            "min": self._min.copy(),
            "max": self._max.copy(),
            "zero": self._zero.copy(),
            "pos_feature": pf.astype(np.int64),
            "pos_key": pk.astype(np.int64),
            "pos_count": self._pos[pf, pk],
            "neg_feature": nf.astype(np.int64),
            "neg_key": nk.astype(np.int64),
            "neg_count": self._neg[nf, nk],
        }

    def to_builtin_state(self) -> dict:
        """:meth:`state_dict` with arrays as lists: ready for ``json.dumps`` / ``msgpack.packb``."""
        return to_builtin(self.state_dict())

    @classmethod
    def from_state(cls, state: dict) -> FeatureSketch:
        check_kind(state, "feature_sketch")
        F = int(state["n_features"])
        self = cls(F, float(state["alpha"]), float(state["min_value"]), float(state["max_value"]))
        shp = (F,)
        self._count = as_array(state["count"], np.int64, shp)
        self._missing = as_array(state["missing"], np.int64, shp)
        self._mean = as_array(state["mean"], np.float64, shp)
        self._m2 = as_array(state["m2"], np.float64, shp)
        self._min = as_array(state["min"], np.float64, shp)
        self._max = as_array(state["max"], np.float64, shp)
        self._zero = as_array(state["zero"], np.int64, shp)
        for sign in ("pos", "neg"):
            f = as_array(state[f"{sign}_feature"], np.int64)
            k = as_array(state[f"{sign}_key"], np.int64)
            c = as_array(state[f"{sign}_count"], np.int64)
            if not (f.shape == k.shape == c.shape) or np.any((f < 0) | (f >= F) | (k < 0) | (k >= self._K)):
                raise ValueError(f"inconsistent sketch state: {sign} buckets")
            arr = np.zeros((F, self._K), dtype=np.int64)
            np.add.at(arr, (f, k), c)
            setattr(self, f"_{sign}", arr)
        return self
