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
factor ``gamma = (1 + alpha) / (1 - alpha)`` (and none less than ``sqrt(gamma)``).

Memory. Dense, the key range is about ``50 * log2(max_value / min_value)`` buckets per
sign and feature for alpha=0.01 (~4,500; half that at alpha=0.02). With ``bin_limit=W``
each sign of each feature keeps only its ``W`` highest-magnitude keys (DDSketch's
"collapsing lowest" store): keys below ``top - W + 1`` (``top`` the largest key seen of
that sign) are counted in the lowest kept bucket. The bound above then holds for
``|x| >= M / R`` with ``M`` the largest magnitude of that sign in the sketch and
``R = gamma ** ((W - 2) / 2)`` (W=1024, alpha=0.02: R > 7e8): the ``W - 2`` buckets between
the lowest kept one and the top each span at least ``sqrt(gamma)``. A smaller magnitude is
estimated with an absolute error of at most ``M / R`` (the lowest kept bucket's upper edge).
The collapse depends only on the largest key, so it is the same whatever the order or
batching of the values, and merging stays exact (a merged sketch equals the sketch of the
concatenated stream). Bucket counts are uint16 while no feature holds more than 65,535
values and int32 after (promoted automatically; a bucket holds fewer than 2**31 values).
The state dict stores, per feature and sign, the span from the first to the last non-empty
bucket.

>>> import numpy as np
>>> from driftsentinel.detectors import FeatureSketch
>>> rng = np.random.default_rng(3)
>>> X = rng.lognormal(0, 1, (10_000, 2)); X[::10, 1] = np.nan
>>> s = FeatureSketch(n_features=2)
>>> s.update(X)
>>> s.count.tolist(), s.missing.tolist()
([10000, 9000], [0, 1000])
>>> exact = np.nanquantile(X, 0.5, axis=0, method="lower")
>>> bool(np.all(np.abs(s.quantile(0.5) - exact) <= 0.01 * np.abs(exact)))
True
>>> c = FeatureSketch(n_features=2, bin_limit=1024); c.update(X)
>>> bool(np.all(c.quantile(0.5) == s.quantile(0.5))), c._bins.nbytes < s._bins.nbytes // 4
(True, True)
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

from driftsentinel.detectors._state import STATE_VERSION, as_array, as_matrix, check_kind, to_builtin

__all__ = ["FeatureSketch"]


_MANT_MASK = (1 << 52) - 1
_ABS_MASK = (1 << 63) - 1
_MANT_SCALE = 2.0**-52
_U16_MAX = 65_535
_KEEP_SCRATCH = 1 << 20  # key-scratch cells kept between batches


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _rebase_row(row, d):  # pragma: no cover - numba
    """Move a store's window up by ``d`` keys: the ``d`` lowest buckets collapse into slot 0."""
    W = row.shape[0]
    if d <= 0:
        return
    if d >= W:
        tot = 0
        for t in range(1, W):
            tot += row[t]
            row[t] = 0
        row[0] += tot
        return
    tot = 0
    for t in range(1, d + 1):
        tot += row[t]
    row[0] += tot
    for t in range(1, W - d):
        row[t] = row[t + d]
    for t in range(W - d, W):
        row[t] = 0


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _rebase(bins, lo, newlo):  # pragma: no cover - numba
    """In place: every (feature, sign) store whose lowest key rises to ``newlo``."""
    F = bins.shape[0]
    for f in range(F):
        for sg in range(2):
            d = newlo[f, sg] - lo[f, sg]
            if d > 0:
                _rebase_row(bins[f, sg], d)
                lo[f, sg] = newlo[f, sg]


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _update_kernel(
    X, Xbits, count, missing, mean, m2, mn, mx, zero, bins, lo, bsum, bcnt, bm2, mult, kmin, K, min_value, keys
):  # pragma: no cover - numba
    """One batch: moments (batch mean/M2, then Chan), extremes and DDSketch bucket counts.

    ``K`` keys per sign in all; ``bins`` keeps ``W = bins.shape[2]`` of them per (feature,
    sign), from key ``lo[f, sign]`` (slot 0 also counts every lower key) up.
    """
    rows, F = X.shape
    W = bins.shape[2]
    limited = W < K  # a collapsing store (bin_limit), else every key has its bucket
    # in-kernel copies: LLVM then knows they alias nothing (with the caller's arrays it
    # reloaded them around every store, which cost ~5 ns per value)
    lmn = mn.copy()
    lmx = mx.copy()
    lsum = np.zeros(F)
    lcnt = np.zeros(F, dtype=np.int64)
    lzero = np.zeros(F, dtype=np.int64)
    for i in range(rows):  # branch-free (selects), so LLVM vectorises across features
        xr = X[i]
        br = Xbits[i]
        kr = keys[i]
        for f in range(F):
            x = xr[f]
            ok = x == x  # NaN compares false: also leaves the extremes alone
            small = abs(x) < min_value
            lsum[f] += x if ok else 0.0
            lcnt[f] += 1 if ok else 0
            lzero[f] += 1 if ok & small else 0
            m0 = lmn[f]
            m1 = lmx[f]
            lmn[f] = x if x < m0 else m0
            lmx[f] = x if x > m1 else m1
            # key = ceil(mult * L(|x|)) with L the piecewise-linear log2 read off the
            # float's bits: L(m * 2**e) = e + (m - 1) for m in [1, 2); monotone, and
            # d L / d ln x = m in [1, 2), so with mult = 1 / ln(gamma) no bucket spans
            # more than a factor gamma.
            b = br[f] & _ABS_MASK
            lg = float((b >> 52) - 1023) + float(b & _MANT_MASK) * _MANT_SCALE
            k = int(math.ceil(lg * mult)) - kmin
            k = 0 if k < 0 else k
            k = K - 1 if k >= K else k
            kk = k + (K if x < 0.0 else 0)  # [f, 0] positive, [f, 1] negative
            kr[f] = kk if ok & (not small) else -1
    for f in range(F):
        mn[f] = lmn[f]
        mx[f] = lmx[f]
        bsum[f] = lsum[f]
        bcnt[f] = lcnt[f]
        bm2[f] = 0.0
        zero[f] += lzero[f]
    if not limited:
        # counting per feature: that feature's buckets stay in L1
        for f in range(F):
            bf = bins[f].reshape(2 * W)
            for i in range(rows):
                kk = keys[i, f]
                if kk >= 0:
                    bf[kk] += 1
    else:
        # the batch's largest key per feature and sign (row by row: contiguous reads)
        tp = np.full(F, -1, dtype=np.int64)
        tn = np.full(F, -1, dtype=np.int64)
        for i in range(rows):
            kr = keys[i]
            for f in range(F):
                kk = kr[f]
                kp = kk if kk < K else -1
                kn = kk - K
                p = tp[f]
                n = tn[f]
                tp[f] = kp if kp > p else p
                tn[f] = kn if kn > n else n
        for f in range(F):
            for sg in range(2):
                d = (tp[f] if sg == 0 else tn[f]) - W + 1 - lo[f, sg]
                if d > 0:  # the store's window moves up: the lowest keys collapse into slot 0
                    _rebase_row(bins[f, sg], d)
                    lo[f, sg] += d
            lp = lo[f, 0]
            ln = lo[f, 1] + K - W  # negative keys kk = k + K land at W + k - lo[f, 1]
            bf = bins[f].reshape(2 * W)
            for i in range(rows):
                kk = keys[i, f]
                if kk >= 0:  # branch-free within: the sign is a coin flip for centred data
                    neg = kk >= K
                    t = kk - (ln if neg else lp)
                    floor = W if neg else 0
                    bf[t if t > floor else floor] += 1
    for f in range(F):
        if bcnt[f] > 0:
            bsum[f] = bsum[f] / bcnt[f]  # now the batch mean
    for i in range(rows):
        xr = X[i]
        for f in range(F):
            x = xr[f]
            d = x - bsum[f]
            bm2[f] += d * d if x == x else 0.0
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
def _quantile_kernel(bins, lo, zero, q, kmin, mult, out):  # pragma: no cover - numba
    F = bins.shape[0]
    W = bins.shape[2]
    for f in range(F):
        pos = bins[f, 0]
        neg = bins[f, 1]
        n = zero[f]
        for k in range(W):
            n += pos[k]
            n += neg[k]
        if n == 0:
            out[f] = np.nan
            continue
        rank = math.floor(q * (n - 1))
        cum = 0
        found = False
        for k in range(W - 1, -1, -1):  # most negative first
            cum += neg[k]
            if cum > rank:
                out[f] = -_key_value(k + lo[f, 1] + kmin, mult)
                found = True
                break
        if found:
            continue
        cum += zero[f]
        if cum > rank:
            out[f] = 0.0
            continue
        for k in range(W):
            cum += pos[k]
            if cum > rank:
                out[f] = _key_value(k + lo[f, 0] + kmin, mult)
                break


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _pack_spans(bins, lo, first, length, out):  # pragma: no cover - numba
    """Per (feature, sign): the span from the first to the last non-empty bucket, concatenated."""
    F, _, W = bins.shape
    pos = 0
    for f in range(F):
        for sg in range(2):
            row = bins[f, sg]
            a = 0
            while a < W and row[a] == 0:
                a += 1
            if a == W:
                first[f, sg] = -1
                length[f, sg] = 0
                continue
            b = W - 1
            while row[b] == 0:
                b -= 1
            first[f, sg] = lo[f, sg] + a
            length[f, sg] = b - a + 1
            if out.shape[0] > 0:
                for t in range(a, b + 1):
                    out[pos] = row[t]
                    pos += 1
    return pos


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _unpack_spans(first, length, counts, bins, lo):  # pragma: no cover - numba
    """Inverse of :func:`_pack_spans` into empty ``bins``, under this sketch's bucket limit."""
    F, _, W = bins.shape
    pos = 0
    for f in range(F):
        for sg in range(2):
            n = length[f, sg]
            if n == 0:
                continue
            top = first[f, sg] + n - 1
            low = top - W + 1
            lo[f, sg] = low if low > 0 else 0
            row = bins[f, sg]
            for t in range(n):
                slot = first[f, sg] + t - lo[f, sg]
                row[slot if slot > 0 else 0] += counts[pos + t]
            pos += n


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
    bin_limit
        Buckets kept per sign and feature (``None``: all of the range, dense). With a
        limit the bound holds within a factor ``R = gamma ** ((bin_limit - 2) / 2)`` of
        the largest magnitude seen (module doc).

    ``update(X)`` takes ``[n, n_features]`` float64 with NaN = missing. ``merge(other)``
    folds in another sketch with the same ``alpha``/range/limit (exact for counts and
    extremes, ~1e-15 relative for mean/variance). ``state_dict``/``from_state`` are
    pickle-free; the bucket counts are stored sparsely.
    """

    def __init__(
        self,
        n_features: int,
        alpha: float = 0.01,
        min_value: float = 1e-12,
        max_value: float = 1e15,
        bin_limit: int | None = None,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError("alpha must be in (0, 1)")
        if not 0.0 < min_value < max_value:
            raise ValueError("need 0 < min_value < max_value")
        if bin_limit is not None and int(bin_limit) < 2:
            raise ValueError("bin_limit must be at least 2")
        self.alpha = float(alpha)
        self.min_value = float(min_value)
        self.max_value = float(max_value)
        gamma = (1.0 + self.alpha) / (1.0 - self.alpha)
        self._mult = 1.0 / math.log(gamma)
        self._kmin = int(math.floor(math.log2(self.min_value) * self._mult))
        kmax = int(math.ceil((math.log2(self.max_value) + 1.0) * self._mult))
        self._K = kmax - self._kmin + 1
        self.bin_limit = None if bin_limit is None else int(bin_limit)
        self._W = self._K if self.bin_limit is None else min(self._K, self.bin_limit)
        self._alloc(int(n_features))

    def _alloc(self, F: int, dtype: Any = np.uint16) -> None:
        self._count = np.zeros(F, dtype=np.int64)
        self._missing = np.zeros(F, dtype=np.int64)
        self._mean = np.zeros(F)
        self._m2 = np.zeros(F)
        self._min = np.full(F, np.inf)
        self._max = np.full(F, -np.inf)
        self._zero = np.zeros(F, dtype=np.int64)
        # [:, 0] positive, [:, 1] negative; slot t of a store is key _lo + t (slot 0: and below)
        self._bins = np.zeros((F, 2, self._W), dtype=dtype)
        self._lo = np.zeros((F, 2), dtype=np.int64)

    _FIELDS = ("_count", "_missing", "_mean", "_m2", "_min", "_max", "_zero", "_bins", "_lo")
    _EMPTY = {"_min": np.inf, "_max": -np.inf}  # every other field starts at 0

    @property
    def _pos(self) -> np.ndarray:
        return self._bins[:, 0]

    @property
    def _neg(self) -> np.ndarray:
        return self._bins[:, 1]

    @property
    def n_features(self) -> int:
        return len(self._count)

    def _params(self) -> tuple[float, float, float, int | None]:
        return (self.alpha, self.min_value, self.max_value, self.bin_limit)

    def _room(self, most: int) -> None:
        """Widen uint16 bucket counts to int32 before any feature can hold more than 65,535 values."""
        if most > _U16_MAX and self._bins.dtype == np.uint16:
            self._bins = self._bins.astype(np.int32)

    # --------------------------------------------------------------- updates
    def update(self, X: Any) -> None:
        """Fold a batch ``[n, n_features]`` (NaN = missing) into the sketch."""
        X = np.ascontiguousarray(as_matrix(X, self.n_features))
        if X.shape[0] == 0 or self.n_features == 0:
            return
        F = self.n_features
        self._room(int(self._count.max()) + X.shape[0])
        _update_kernel(
            X,
            X.view(np.int64),
            self._count,
            self._missing,
            self._mean,
            self._m2,
            self._min,
            self._max,
            self._zero,
            self._bins,
            self._lo,
            np.empty(F),
            np.empty(F, np.int64),
            np.empty(F),
            self._mult,
            self._kmin,
            self._K,
            self.min_value,
            self._key_scratch(X.size)[: X.size].reshape(X.shape),
        )

    def _key_scratch(self, size: int) -> np.ndarray:
        # reused between batches: a fresh buffer of a few hundred KiB is a fresh mmap whose
        # page faults cost as much as the kernel itself. Kept only up to 4 MiB (1 M cells):
        # a wide sketch (10,000 features x 4,096 rows = 160 MiB) allocates per batch instead
        # of holding that much between batches.
        if size > _KEEP_SCRATCH:
            return np.empty(size, dtype=np.int32)
        buf = getattr(self, "_keys", None)  # from_state skips __init__
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=np.int32)
            self._keys = buf
        return buf

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
        """Fold ``other`` (same features, alpha, range and limit) into this sketch; returns ``self``."""
        if other._params() != self._params():
            raise ValueError("cannot merge sketches with different alpha / value range / bin limit")
        if other.n_features != self.n_features:
            raise ValueError("cannot merge sketches with different numbers of features")
        if self.n_features:
            self._room(int((self._count + other._count).max()))
        lo = np.maximum(self._lo, other._lo)
        theirs = other._bins
        if np.any(other._lo < lo):
            theirs = theirs.copy()
            _rebase(theirs, other._lo.copy(), lo)
        _rebase(self._bins, self._lo, lo)
        self._bins += theirs
        self._combine(other._count, other._mean, other._m2)
        self._missing = self._missing + other._missing
        self._min = np.fmin(self._min, other._min)
        self._max = np.fmax(self._max, other._max)
        self._zero = self._zero + other._zero
        return self

    def take(self, features: Any) -> FeatureSketch:
        """A new sketch of just the selected features (indices or a mask); ``self`` is unchanged.

        >>> s = FeatureSketch(n_features=3); s.update(np.arange(6.0).reshape(2, 3))
        >>> s.take([2]).mean.tolist()
        [3.5]
        """
        out = FeatureSketch(0, *self._params())
        for name in self._FIELDS:
            setattr(out, name, getattr(self, name)[features].copy())
        return out

    def reset(self, feature_mask: Any = None) -> None:
        """Forget everything about the selected features (all by default), in place."""
        sel = slice(None) if feature_mask is None else np.asarray(feature_mask, bool)
        for name in self._FIELDS:
            getattr(self, name)[sel] = self._EMPTY.get(name, 0)

    def add_features(self, n: int) -> None:
        """Append ``n`` empty features."""
        old = {k: getattr(self, k) for k in self._FIELDS}
        self._alloc(int(n), old["_bins"].dtype)
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
        _quantile_kernel(self._bins, self._lo, self._zero, q, self._kmin, self._mult, out)
        if q == 0.0:
            return self.min  # exact: the rank-0 value is the minimum
        if q == 1.0:
            return self.max
        with np.errstate(invalid="ignore"):
            return np.clip(out, self.min, self.max)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """Plain dict of numpy arrays / Python numbers (no pickle).

        Bucket counts are stored per feature and sign as the span from the first to the
        last non-empty bucket: ``first[f, sign]`` (its key, -1 when empty), ``length[f, sign]``
        and all spans' counts concatenated in ``counts`` (feature-major, positive first).
        """
        F = self.n_features
        first = np.empty((F, 2), dtype=np.int64)
        length = np.empty((F, 2), dtype=np.int64)
        _pack_spans(self._bins, self._lo, first, length, np.zeros(0, dtype=self._bins.dtype))
        counts = np.empty(int(length.sum()), dtype=self._bins.dtype)
        _pack_spans(self._bins, self._lo, first, length, counts)
        return {
            "kind": "feature_sketch",
            "version": STATE_VERSION,
            "n_features": F,
            "alpha": self.alpha,
            "min_value": self.min_value,
            "max_value": self.max_value,
            "bin_limit": self.bin_limit,
            "count": self._count.copy(),
            "missing": self._missing.copy(),
            "mean": self._mean.copy(),
            "m2": self._m2.copy(),
            "min": self._min.copy(),
            "max": self._max.copy(),
            "zero": self._zero.copy(),
            "span_first": first,
            "span_length": length,
            "span_counts": counts,
        }

    def to_builtin_state(self) -> dict:
        """:meth:`state_dict` with arrays as lists: ready for ``json.dumps`` / ``msgpack.packb``."""
        return to_builtin(self.state_dict())

    @classmethod
    def from_state(cls, state: dict) -> FeatureSketch:
        """Rebuild a sketch; a state without ``bin_limit`` (older versions) is dense.

        Setting ``state["bin_limit"]`` before the call re-reads a state under another limit
        (as if the values had been fed to a sketch with that limit).
        """
        check_kind(state, "feature_sketch")
        F = int(state["n_features"])
        limit = state.get("bin_limit")
        self = cls(
            F,
            float(state["alpha"]),
            float(state["min_value"]),
            float(state["max_value"]),
            None if limit is None else int(limit),
        )
        shp = (F,)
        self._count = as_array(state["count"], np.int64, shp)
        self._missing = as_array(state["missing"], np.int64, shp)
        self._mean = as_array(state["mean"], np.float64, shp)
        self._m2 = as_array(state["m2"], np.float64, shp)
        self._min = as_array(state["min"], np.float64, shp)
        self._max = as_array(state["max"], np.float64, shp)
        self._zero = as_array(state["zero"], np.int64, shp)
        self._room(int(self._count.max(initial=0)))
        if "span_first" in state:
            first = as_array(state["span_first"], np.int64, (F, 2))
            length = as_array(state["span_length"], np.int64, (F, 2))
            counts = as_array(state["span_counts"], np.int64)
            if (
                np.any(length < 0)
                or counts.shape != (int(length.sum()),)
                or np.any(counts < 0)
                or np.any((length > 0) & ((first < 0) | (first + length > self._K)))
            ):
                raise ValueError("inconsistent sketch state: bucket spans")
            owner = np.repeat(np.arange(F), length.sum(axis=1))
            per_feature = np.bincount(owner, weights=counts, minlength=F)
            if np.any(per_feature + self._zero > self._count):
                raise ValueError("inconsistent sketch state: bucket counts")
            _unpack_spans(first, length, counts.astype(self._bins.dtype), self._bins, self._lo)
            return self
        for sg, sign in enumerate(("pos", "neg")):  # the sparse format of older versions
            f = as_array(state[f"{sign}_feature"], np.int64)
            k = as_array(state[f"{sign}_key"], np.int64)
            c = as_array(state[f"{sign}_count"], np.int64)
            if not (f.shape == k.shape == c.shape) or np.any((f < 0) | (f >= F) | (k < 0) | (k >= self._K)):
                raise ValueError(f"inconsistent sketch state: {sign} buckets")
            if np.any(c < 0) or np.any(np.bincount(f, weights=c, minlength=F) > self._count):
                raise ValueError(f"inconsistent sketch state: {sign} bucket counts")
            top = np.full(F, -1, dtype=np.int64)
            np.maximum.at(top, f, k)
            self._lo[:, sg] = np.maximum(top - self._W + 1, 0)
            # (numpy's stubs do not take a tuple index that mixes arrays and an int)
            idx = (f, sg, np.maximum(k - self._lo[f, sg], 0))
            np.add.at(self._bins, idx, c.astype(self._bins.dtype))  # type: ignore[arg-type]
        return self


def load_kernels(values: np.ndarray) -> None:
    """Run every sketch kernel once on ``values`` ``[n, 1]``, for both widths of bucket counts.

    numba loads each compiled specialisation on its first call; a sidecar calls this at
    start-up (:mod:`detectors.warmup`) so that no batch pays for it, including the first
    batch after a feature passes 65,535 values (int32 counts).
    """
    for bin_limit in (None, 1024):
        sketch = FeatureSketch(1, bin_limit=bin_limit)
        sketch.update(values)
        sketch._room(_U16_MAX + 1)
        sketch.update(values)
        sketch.merge(FeatureSketch(1, bin_limit=bin_limit))
        sketch.state_dict()
