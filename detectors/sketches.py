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
exact ``[min, max]``, which also bounds it; ``q`` = 0 and 1 return the exact min and max).
Merging is exact for the bucket counts, so merged sketches obey the same bound as a sketch
of the concatenated stream. Bucket keys come from a piecewise-linear log2 read off the
float's exponent and mantissa bits (DDSketch's linearly interpolated mapping): no
logarithm per value, and the multiplier is chosen so that no bucket spans more than a
factor ``gamma = (1 + alpha) / (1 - alpha)``. Memory: two dense int32 arrays of about
``50 * log2(max_value / min_value)`` buckets per feature for alpha=0.01 (~36 KB; half that
at alpha=0.02); a bucket holds fewer than 2**31 values. The state dict stores only the
non-empty buckets.

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


_MANT_MASK = (1 << 52) - 1
_ABS_MASK = (1 << 63) - 1
_MANT_SCALE = 2.0 ** -52


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _update_kernel(X, Xbits, count, missing, mean, m2, mn, mx, zero, bins, bsum, bcnt, bm2,
                   mult, kmin, min_value, keys):  # pragma: no cover - numba
    """One batch: moments (batch mean/M2, then Chan), extremes and DDSketch bucket counts."""
    rows, F = X.shape
    K = bins.shape[2]
    # in-kernel copies: LLVM then knows they alias nothing (with the caller's arrays it
    # reloaded them around every store, which cost ~5 ns per value)
    lmn = mn.copy()
    lmx = mx.copy()
    lsum = np.zeros(F)
    lcnt = np.zeros(F, dtype=np.int64)
    lzero = np.zeros(F, dtype=np.int64)
    for i in range(rows):
        xr = X[i]
        br = Xbits[i]
        kr = keys[i]
        for f in range(F):
            x = xr[f]
            kk = -1
            if x == x:
                lsum[f] += x
                lcnt[f] += 1
                if abs(x) < min_value:
                    lzero[f] += 1
                else:
                    # key = ceil(mult * L(|x|)) with L the piecewise-linear log2 read off the
                    # float's bits: L(m * 2**e) = e + (m - 1) for m in [1, 2); monotone, and
                    # d L / d ln x = m in [1, 2), so with mult = 1 / ln(gamma) no bucket spans
                    # more than a factor gamma.
                    b = br[f] & _ABS_MASK
                    lg = float((b >> 52) - 1023) + float(b & _MANT_MASK) * _MANT_SCALE
                    k = int(math.ceil(lg * mult)) - kmin
                    if k < 0:
                        k = 0
                    elif k >= K:
                        k = K - 1
                    kk = k + K * int(x < 0.0)  # [f, 0] positive, [f, 1] negative
            kr[f] = kk
    for i in range(rows):  # extremes in their own branch-free loop (NaN compares false)
        xr = X[i]
        for f in range(F):
            x = xr[f]
            m0 = lmn[f]
            m1 = lmx[f]
            lmn[f] = x if x < m0 else m0
            lmx[f] = x if x > m1 else m1
    for f in range(F):
        mn[f] = lmn[f]
        mx[f] = lmx[f]
        bsum[f] = lsum[f]
        bcnt[f] = lcnt[f]
        bm2[f] = 0.0
        zero[f] += lzero[f]
    # counting per feature: that feature's buckets stay in L1
    for f in range(F):
        bf = bins[f].reshape(2 * K)
        for i in range(rows):
            kk = keys[i, f]
            if kk >= 0:
                bf[kk] += 1
    for f in range(F):
        if bcnt[f] > 0:
            bsum[f] = bsum[f] / bcnt[f]  # now the batch mean
    for i in range(rows):
        for f in range(F):
            x = X[i, f]
            if x == x:
                d = x - bsum[f]
                bm2[f] += d * d
    for f in range(F):
        nb_ = bcnt[f]
        missing[f] += rows - nb_
        if nb_ == 0:
            continue
        na = float(count[f])
        nbf = float(nb_)
        n = na + nbf
        delta = bsum[f] - mean[f]
        mean[f] = mean[f] + delta * (nbf / n)
        m2[f] = m2[f] + bm2[f] + delta * delta * (na * nbf / n)
        count[f] += nb_


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _key_value(key, mult):  # pragma: no cover - numba
    """Representative of bucket ``key``: minimises the worst relative error over the bucket."""
    y_hi = key / mult
    y_lo = (key - 1) / mult
    e_hi = math.floor(y_hi)
    e_lo = math.floor(y_lo)
    hi = math.ldexp(1.0 + (y_hi - e_hi), int(e_hi))
    lo = math.ldexp(1.0 + (y_lo - e_lo), int(e_lo))
    return 2.0 * lo * hi / (lo + hi)


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _quantile_kernel(pos, neg, zero, q, kmin, mult, out):  # pragma: no cover - numba
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
                out[f] = -_key_value(k + kmin, mult)
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
                out[f] = _key_value(k + kmin, mult)
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
        gamma = (1.0 + self.alpha) / (1.0 - self.alpha)
        self._mult = 1.0 / math.log(gamma)
        self._kmin = int(math.floor(math.log2(self.min_value) * self._mult))
        kmax = int(math.ceil((math.log2(self.max_value) + 1.0) * self._mult))
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
        self._bins = np.zeros((F, 2, self._K), dtype=np.int32)  # [:, 0] positive, [:, 1] negative; < 2**31 per bin

    _FIELDS = ("_count", "_missing", "_mean", "_m2", "_min", "_max", "_zero", "_bins")

    @property
    def _pos(self) -> np.ndarray:
        return self._bins[:, 0]

    @property
    def _neg(self) -> np.ndarray:
        return self._bins[:, 1]

    @property
    def n_features(self) -> int:
        return len(self._count)

    # --------------------------------------------------------------- updates
    def update(self, X: Any) -> None:
        """Fold a batch ``[n, n_features]`` (NaN = missing) into the sketch."""
        X = np.ascontiguousarray(as_matrix(X, self.n_features))
        if X.shape[0] == 0 or self.n_features == 0:
            return
        F = self.n_features
        _update_kernel(X, X.view(np.int64), self._count, self._missing, self._mean, self._m2, self._min,
                       self._max, self._zero, self._bins, np.empty(F), np.empty(F, np.int64),
                       np.empty(F), self._mult, self._kmin, self.min_value,
                       np.empty(X.shape, dtype=np.int32))

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
        self._bins = self._bins + other._bins
        return self

    def take(self, features: Any) -> FeatureSketch:
        """A new sketch of just the selected features (indices or a mask); ``self`` is unchanged.

        >>> s = FeatureSketch(n_features=3); s.update(np.arange(6.0).reshape(2, 3))
        >>> s.take([2]).mean.tolist()
        [3.5]
        """
        out = FeatureSketch(0, self.alpha, self.min_value, self.max_value)
        for name in self._FIELDS:
            setattr(out, name, getattr(self, name)[features].copy())
        return out

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
        _quantile_kernel(self._pos, self._neg, self._zero, q, self._kmin, self._mult, out)
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
            np.add.at(self._bins, (f, 0 if sign == "pos" else 1, k), c)
        return self
