"""ADWIN (ADaptive WINdowing), one numba call per batch for all features, exact to river.

ADWIN keeps a variable-length window of recent values, summarised in exponential
buckets (level ``i`` holds up to ``max_buckets`` summaries of ``2**i`` values). Every
``clock`` values it checks every split of the window into an older part W0 and a newer
part W1; when their means differ by more than the Hoeffding-style bound epsilon_cut it
drops the oldest bucket(s) and signals drift (Bifet & Gavaldà, 2007). Parameters are
river's ``drift.ADWIN`` names and defaults.

Exactness: this is river's ``AdaptiveWindowing`` (river 0.26, ``rust_src/adwin.rs``,
itself a port of ``adwin_c.pyx``) with the same floating-point operations in the same
order, so windows, variances and detections are bit-identical. Like river's wrapper,
a detector is reset completely on the update *after* a detection. What differs is the
bookkeeping, not the arithmetic:

* each bucket level is a ring buffer, so merging two buckets never shifts arrays;
* divisions by a bucket size (a power of two) are multiplications by its exact inverse,
  which IEEE-754 makes bit-identical;
* a cut-point scan first runs a division-free *sound* filter (see ``_FILTER_NOTE``):
  only when some cut could pass river's test does the exact river scan run. The filter
  keeps margins ~1e6 times larger than the rounding errors it covers, so it can say
  "maybe" too often (costing time), never "no" wrongly.

>>> import numpy as np
>>> from detectors import ADWIN
>>> rng = np.random.default_rng(0)
>>> X = np.r_[rng.normal(0, 1, 500), rng.normal(4, 1, 500)].reshape(-1, 1)
>>> d = ADWIN(n_features=1)
>>> d.update(X)[:, 0].tolist()        # rows where river's ADWIN fires, too
[511]
>>> float(d.width[0]) < 500
True
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

from detectors._state import STATE_VERSION, as_array, as_matrix, check_kind, per_feature, to_builtin

__all__ = ["ADWIN"]

_DEFAULTS: dict[str, Any] = dict(delta=0.002, clock=32, max_buckets=5, min_window_length=5, grace_period=10)
_MAX_LEVELS = 64
_POW2 = np.array([float(2**i) for i in range(_MAX_LEVELS)], dtype=np.float64)
_POW2INV = np.array([2.0 ** -i for i in range(_MAX_LEVELS)], dtype=np.float64)

# One monolithic kernel on purpose: in numba, a non-inlined call that passes arrays pays
# atomic reference-count updates per array (~100 ns here), more than the work itself.
@nb.njit(cache=True, error_model="numpy", nogil=True)
def _adwin_kernel(XT, delta, clock, max_buckets, mwl, grace, tot, var, head, cnt, nlev, total, variance,
                  width, tick, pending, n_det, flags, pow2, pow2inv, use_filter):  # pragma: no cover - numba
    F, rows = XT.shape
    C = tot.shape[2]
    n_hits = 0
    for f in range(F):
        dlt = delta[f]
        ck = clock[f]
        mb = max_buckets[f]
        mw = mwl[f]
        gr = grace[f]
        filt = use_filter and mw >= 1.0
        # the feature's scalars live in registers while its rows are processed
        W = width[f]
        T = total[f]
        V = variance[f]
        tk = tick[f]
        pend = pending[f]
        for i in range(rows):
            x = XT[f, i]
            if x != x:  # missing: this feature's detector does not see the row
                continue
            if pend:  # river resets on the update after a detection
                pend = False
                nlev[f] = 1
                head[f, 0] = 0
                cnt[f, 0] = 0
                W = 0.0
                T = 0.0
                V = 0.0
                tk = 0
            # ---- insert_element (river's operation order)
            W = W + 1.0
            inc = 0.0
            if W > 1.0:
                dv = x - T / (W - 1.0)
                inc = (W - 1.0) * dv * dv / W
            V += inc
            T += x
            pos = head[f, 0] + cnt[f, 0]
            if pos >= C:
                pos -= C
            tot[f, 0, pos] = x
            var[f, 0, pos] = 0.0
            cnt[f, 0] += 1
            # ---- compress_buckets
            idx = 0
            while cnt[f, idx] == mb + 1:
                h0 = head[f, idx]
                h1 = h0 + 1
                if h1 >= C:
                    h1 -= C
                t0 = tot[f, idx, h0]
                t1 = tot[f, idx, h1]
                v0 = var[f, idx, h0]
                v1 = var[f, idx, h1]
                inv = pow2inv[idx]
                n1 = pow2[idx]
                mu1 = t0 * inv  # == t0 / n1 bit for bit: n1 is a power of two
                mu2 = t1 * inv
                total12 = t0 + t1
                temp = n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2)
                v12 = v0 + v1 + temp
                nxt = idx + 1
                if nxt >= nlev[f]:
                    nlev[f] = nxt + 1
                    head[f, nxt] = 0
                    cnt[f, nxt] = 0
                p = head[f, nxt] + cnt[f, nxt]
                if p >= C:
                    p -= C
                tot[f, nxt, p] = total12
                var[f, nxt, p] = v12
                cnt[f, nxt] += 1
                h2 = h0 + 2
                if h2 >= C:
                    h2 -= C
                head[f, idx] = h2
                cnt[f, idx] -= 2
                if cnt[f, nxt] <= mb:
                    break
                idx = nxt
            # ---- detect_change
            tk += 1
            change = False
            if tk % ck == 0 and W > gr:
                reduce_width = True
                while reduce_width:
                    reduce_width = False
                    delta_prime = math.log(2.0 * math.log(W) / dlt)
                    vw = V / W
                    L = nlev[f]
                    if filt:
                        # Sound, division-free pre-check; see _FILTER_NOTE. False => no cut can fire.
                        maybe = False
                        B = (2.0 / 3.0) * delta_prime * W
                        A = 2.0 * vw * delta_prime
                        if not (math.isfinite(A) and math.isfinite(B)):
                            maybe = True
                        else:
                            B = B * (1.0 - 1e-9)
                            AW = A * W * (1.0 - 1e-9)
                            fn0 = 0.0
                            fu0 = 0.0
                            absT = abs(T)
                            absum = 0.0
                            done = False
                            for idx in range(L - 1, -1, -1):
                                bs = pow2[idx]
                                c = cnt[f, idx]
                                j = head[f, idx]
                                for k in range(c):
                                    t = tot[f, idx, j]
                                    j += 1
                                    if j == C:
                                        j = 0
                                    fn0 += bs
                                    fu0 += t
                                    absum += abs(t)
                                    fn1 = W - fn0
                                    if fn1 < mw:
                                        done = True  # n1 only shrinks: no further cut is tested
                                        break
                                    if fn0 < mw:
                                        continue
                                    D = fu0 * W - T * fn0
                                    g = abs(D) + 1e-9 * (absum + absT) * W + 1e-300 - B
                                    if g > 0.0:
                                        if g * g >= AW * fn0 * fn1:
                                            maybe = True
                                            done = True
                                            break
                                    elif not (g == g):
                                        maybe = True
                                        done = True
                                        break
                                if done:
                                    break
                        if not maybe:
                            break
                    # ---- river's exact cut scan
                    n0 = 0.0
                    n1 = W
                    u0 = 0.0
                    u1 = T
                    exit_flag = False
                    deleted = False
                    for idx in range(L - 1, -1, -1):
                        if exit_flag or deleted:
                            break
                        bs = pow2[idx]
                        c = cnt[f, idx]
                        j = head[f, idx]
                        for k in range(c):
                            n0 += bs
                            n1 -= bs
                            t = tot[f, idx, j]
                            j += 1
                            if j == C:
                                j = 0
                            u0 += t
                            u1 -= t
                            if idx == 0 and k == c - 1:
                                exit_flag = True
                                break
                            if n1 >= mw and n0 >= mw:
                                delta_mean = (u0 / n0) - (u1 / n1)
                                m_recip = 1.0 / (n0 - mw + 1.0) + 1.0 / (n1 - mw + 1.0)
                                epsilon = math.sqrt(2.0 * m_recip * vw * delta_prime) \
                                    + 2.0 / 3.0 * delta_prime * m_recip
                                if abs(delta_mean) > epsilon:
                                    reduce_width = True
                                    change = True
                                    if W > 0.0:
                                        # ---- delete_element: drop the oldest bucket
                                        last = nlev[f] - 1
                                        nn = pow2[last]
                                        cu = 0.0
                                        cv = 0.0
                                        cl = cnt[f, last]
                                        hl = head[f, last]
                                        if cl > 0:
                                            cu = tot[f, last, hl]
                                            cv = var[f, last, hl]
                                        mu = cu * pow2inv[last]
                                        W = W - nn
                                        T = T - cu
                                        mu_window = T / W
                                        V -= cv + nn * W * (mu - mu_window) * (mu - mu_window) / (nn + W)
                                        if cl > 0:
                                            hl += 1
                                            if hl >= C:
                                                hl -= C
                                            head[f, last] = hl
                                            cnt[f, last] = cl - 1
                                        if cnt[f, last] == 0 and last > 0:
                                            nlev[f] = last
                                        deleted = True
                                        break
            if change:
                pend = True
                n_det[f] += 1
                flags[i, f] = True
                n_hits += 1
        width[f] = W
        total[f] = T
        variance[f] = V
        tick[f] = tk
        pending[f] = pend
    return n_hits


_FILTER_NOTE = """
The pre-check before each cut-point scan is sound and division-free. river fires at a
cut (n0 old values with sum u0, n1 = W - n0 newer ones with sum u1) when

    |u0/n0 - u1/n1| > sqrt(2 m (v/W) dp) + (2/3) dp m,   m = 1/(n0-mwl+1) + 1/(n1-mwl+1).

With mwl >= 1, m >= 1/n0 + 1/n1 = W/(n0 n1) =: q, so (for dp >= 0) a fire needs

    |D| > n0 n1 (sqrt(2 q (v/W) dp) + (2/3) dp q) = sqrt(2 (v/W) dp n0 n1 W) + (2/3) dp W

with D = u0 n1 - u1 n0 = u0 W - T n0; i.e. with g = |D| - (2/3) dp W: g > 0 and
g^2 > 2 (v/W) dp n0 n1 W. The check adds 1e-9 * (sum|t| + |T|) * W to |D| and shrinks
the right-hand sides by 1e-9 relative: far more than the rounding of either computation
(~1e-13 relative for windows of 1e6 buckets' worth of additions). dp < 0, v < 0 or
non-finite values make the check pass, and the exact scan decides.
"""


class ADWIN:
    """ADWIN drift detectors for ``n_features`` independent streams, exact to river.

    Parameters are river's, each a scalar or a per-feature array: ``delta``,
    ``clock``, ``max_buckets``, ``min_window_length``, ``grace_period``.

    ``update(X)`` takes a float64 batch ``[n, n_features]`` (NaN = missing: that
    feature's detector does not see the row) and returns the detections as an int64
    array ``[k, 2]`` of ``(row, feature)`` sorted by row then feature.

    Read-outs (length ``n_features``): ``width``, ``total``, ``estimation`` (window mean,
    0 when empty), ``variance`` (river's: sum of squared deviations in the window),
    ``n_detections`` (cumulative since construction) and ``drift_detected``.

    >>> import json
    >>> import numpy as np
    >>> from detectors import ADWIN
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(0, 1, (3000, 3)); X[1500:, 1] += 2.0
    >>> a = ADWIN(n_features=3, delta=[0.002, 0.002, 0.0001])
    >>> first = a.update(X[:1000])
    >>> b = ADWIN.from_state(json.loads(json.dumps(a.to_builtin_state())))
    >>> np.array_equal(a.update(X[1000:]), b.update(X[1000:]))
    True
    """

    def __init__(self, n_features: int, delta: Any = 0.002, clock: Any = 32, max_buckets: Any = 5,
                 min_window_length: Any = 5, grace_period: Any = 10, *, use_filter: bool = True) -> None:
        F = int(n_features)
        if F < 0:
            raise ValueError("n_features must be >= 0")
        self._scalars: dict[str, Any] = {}
        self._delta, self._scalars["delta"] = per_feature(delta, F, np.float64, "delta")
        self._clock, self._scalars["clock"] = per_feature(clock, F, np.int64, "clock")
        self._mb, self._scalars["max_buckets"] = per_feature(max_buckets, F, np.int64, "max_buckets")
        self._mwl, self._scalars["min_window_length"] = per_feature(min_window_length, F, np.float64,
                                                                    "min_window_length")
        self._grace, self._scalars["grace_period"] = per_feature(grace_period, F, np.float64, "grace_period")
        self._check_params()
        self.use_filter = bool(use_filter)
        self._alloc_state(F, levels=4)

    def _check_params(self) -> None:
        if np.any(self._clock < 1):
            raise ValueError("clock must be >= 1")
        if np.any(self._mb < 1):
            raise ValueError("max_buckets must be >= 1")

    def _alloc_state(self, F: int, levels: int) -> None:
        C = int(self._mb.max()) + 1 if F else 2
        self._tot = np.zeros((F, levels, C))
        self._var = np.zeros((F, levels, C))
        self._head = np.zeros((F, levels), dtype=np.int64)
        self._cnt = np.zeros((F, levels), dtype=np.int64)
        self._nlev = np.ones(F, dtype=np.int64)
        self._total = np.zeros(F)
        self._variance = np.zeros(F)
        self._width = np.zeros(F)
        self._tick = np.zeros(F, dtype=np.int64)
        self._pending = np.zeros(F, dtype=np.bool_)
        self._n_det = np.zeros(F, dtype=np.int64)

    def _ensure_levels(self, n_new: int) -> None:
        # A level-i bucket holds 2**i values, so a window of w values has < bit_length(w) + 1 levels.
        if self.n_features == 0:
            return
        w = int(self._width.max()) + int(n_new)
        need = min(_MAX_LEVELS, w.bit_length() + 2)
        L = self._tot.shape[1]
        if need > L:
            F, _, C = self._tot.shape
            grow = need + 2
            for name in ("_tot", "_var"):
                a = np.zeros((F, grow, C))
                a[:, :L] = getattr(self, name)
                setattr(self, name, a)
            for name in ("_head", "_cnt"):
                a = np.zeros((F, grow), dtype=np.int64)
                a[:, :L] = getattr(self, name)
                setattr(self, name, a)

    # ------------------------------------------------------------------ API
    @property
    def n_features(self) -> int:
        return len(self._width)

    def update(self, X: Any) -> np.ndarray:
        """Feed a batch ``[n, n_features]`` (NaN = missing); return hits ``[k, 2]`` (row, feature)."""
        X = as_matrix(X, self.n_features)
        if X.shape[0] == 0 or self.n_features == 0:
            return np.empty((0, 2), dtype=np.int64)
        self._ensure_levels(X.shape[0])
        XT = np.ascontiguousarray(X.T)
        flags = np.zeros(X.shape, dtype=np.bool_)
        k = _adwin_kernel(XT, self._delta, self._clock, self._mb, self._mwl, self._grace,
                          self._tot, self._var, self._head, self._cnt, self._nlev, self._total,
                          self._variance, self._width, self._tick, self._pending, self._n_det, flags,
                          _POW2, _POW2INV, self.use_filter)
        if k == 0:
            return np.empty((0, 2), dtype=np.int64)
        return np.argwhere(flags).astype(np.int64, copy=False)

    def add_features(self, n: int) -> None:
        """Append ``n`` fresh features (construction-time scalars, else river's defaults)."""
        n = int(n)
        if n <= 0:
            return
        fill = {k: (v if v is not None else _DEFAULTS[k]) for k, v in self._scalars.items()}
        state = self.state_dict()
        F = self.n_features
        self._delta = np.r_[self._delta, np.full(n, fill["delta"], dtype=np.float64)]
        self._clock = np.r_[self._clock, np.full(n, fill["clock"], dtype=np.int64)]
        self._mb = np.r_[self._mb, np.full(n, fill["max_buckets"], dtype=np.int64)]
        self._mwl = np.r_[self._mwl, np.full(n, fill["min_window_length"], dtype=np.float64)]
        self._grace = np.r_[self._grace, np.full(n, fill["grace_period"], dtype=np.float64)]
        self._check_params()
        self._alloc_state(F + n, levels=max(4, self._tot.shape[1]))
        self._load_windows(state, F)

    def reset(self, feature_mask: Any = None) -> None:
        """Restart the detectors of the selected features (all by default); detection counts are kept."""
        mask = np.ones(self.n_features, bool) if feature_mask is None else np.asarray(feature_mask, bool)
        self._nlev[mask] = 1
        self._head[mask] = 0
        self._cnt[mask] = 0
        self._total[mask] = 0.0
        self._variance[mask] = 0.0
        self._width[mask] = 0.0
        self._tick[mask] = 0
        self._pending[mask] = False

    # ------------------------------------------------------------ read-outs
    @property
    def width(self) -> np.ndarray:
        return self._width.copy()

    @property
    def total(self) -> np.ndarray:
        return self._total.copy()

    @property
    def estimation(self) -> np.ndarray:
        w = self._width
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(w == 0, 0.0, self._total / np.where(w == 0, 1.0, w))

    @property
    def variance(self) -> np.ndarray:
        return self._variance.copy()

    @property
    def variance_in_window(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._variance / self._width

    @property
    def n_detections(self) -> np.ndarray:
        return self._n_det.copy()

    @property
    def drift_detected(self) -> np.ndarray:
        return self._pending.copy()

    @property
    def n_buckets(self) -> np.ndarray:
        """Number of bucket summaries held per feature (memory is O(max_buckets * log2(width)))."""
        L = self._cnt.shape[1]
        live = np.arange(L)[None, :] < self._nlev[:, None]
        return (self._cnt * live).sum(axis=1)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """Plain dict of numpy arrays / Python values (no pickle), O(max_buckets*log(width)) per feature.

        Bucket summaries are stored ragged, oldest first: ``level_counts`` holds the
        counts of each feature's levels (``n_levels[f]`` of them, concatenated), and
        ``bucket_totals`` / ``bucket_variances`` the summaries in the same order.
        """
        F = self.n_features
        counts: list[int] = []
        totals: list[float] = []
        variances: list[float] = []
        C = self._tot.shape[2] if F else 1
        for f in range(F):
            for lev in range(int(self._nlev[f])):
                c = int(self._cnt[f, lev])
                h = int(self._head[f, lev])
                idx = (h + np.arange(c)) % C
                counts.append(c)
                totals.extend(self._tot[f, lev, idx].tolist())
                variances.extend(self._var[f, lev, idx].tolist())
        return {
            "kind": "adwin",
            "version": STATE_VERSION,
            "n_features": F,
            "scalars": dict(self._scalars),
            "use_filter": self.use_filter,
            "delta": self._delta.copy(),
            "clock": self._clock.copy(),
            "max_buckets": self._mb.copy(),
            "min_window_length": self._mwl.copy(),
            "grace_period": self._grace.copy(),
            "total": self._total.copy(),
            "variance": self._variance.copy(),
            "width": self._width.copy(),
            "tick": self._tick.copy(),
            "pending_reset": self._pending.copy(),
            "n_detections": self._n_det.copy(),
            "n_levels": self._nlev.copy(),
            "level_counts": np.array(counts, dtype=np.int64),
            "bucket_totals": np.array(totals, dtype=np.float64),
            "bucket_variances": np.array(variances, dtype=np.float64),
        }

    def to_builtin_state(self) -> dict:
        """:meth:`state_dict` with arrays as lists: ready for ``json.dumps`` / ``msgpack.packb``."""
        return to_builtin(self.state_dict())

    def _load_windows(self, state: dict, n: int) -> None:
        shp = (n,)
        self._total[:n] = as_array(state["total"], np.float64, shp)
        self._variance[:n] = as_array(state["variance"], np.float64, shp)
        self._width[:n] = as_array(state["width"], np.float64, shp)
        self._tick[:n] = as_array(state["tick"], np.int64, shp)
        self._pending[:n] = as_array(state["pending_reset"], np.bool_, shp)
        self._n_det[:n] = as_array(state["n_detections"], np.int64, shp)
        nlev = as_array(state["n_levels"], np.int64, shp)
        counts = as_array(state["level_counts"], np.int64)
        totals = as_array(state["bucket_totals"], np.float64)
        variances = as_array(state["bucket_variances"], np.float64)
        if np.any(nlev < 1) or np.any(nlev > _MAX_LEVELS) or counts.size != int(nlev.sum()):
            raise ValueError("inconsistent ADWIN state: n_levels / level_counts")
        C = self._tot.shape[2]
        if np.any(counts < 0) or np.any(counts > C - 1) or totals.size != int(counts.sum()) \
                or variances.size != totals.size:
            raise ValueError("inconsistent ADWIN state: bucket counts")
        L = max(self._tot.shape[1], int(nlev.max()) + 2 if n else 0)
        if L > self._tot.shape[1]:
            F = self.n_features
            self._tot = np.zeros((F, L, C))
            self._var = np.zeros((F, L, C))
            self._head = np.zeros((F, L), dtype=np.int64)
            self._cnt = np.zeros((F, L), dtype=np.int64)
        self._nlev[:n] = nlev
        ci = 0
        vi = 0
        for f in range(n):
            for lev in range(int(nlev[f])):
                c = int(counts[ci])
                ci += 1
                self._head[f, lev] = 0
                self._cnt[f, lev] = c
                self._tot[f, lev, :c] = totals[vi:vi + c]
                self._var[f, lev, :c] = variances[vi:vi + c]
                vi += c

    @classmethod
    def from_state(cls, state: dict) -> ADWIN:
        check_kind(state, "adwin")
        F = int(state["n_features"])
        self = cls.__new__(cls)
        self._scalars = {k: state["scalars"].get(k) for k in _DEFAULTS}
        self.use_filter = bool(state.get("use_filter", True))
        shp = (F,)
        self._delta = as_array(state["delta"], np.float64, shp)
        self._clock = as_array(state["clock"], np.int64, shp)
        self._mb = as_array(state["max_buckets"], np.int64, shp)
        self._mwl = as_array(state["min_window_length"], np.float64, shp)
        self._grace = as_array(state["grace_period"], np.float64, shp)
        self._check_params()
        self._alloc_state(F, levels=4)
        self._load_windows(state, F)
        return self
