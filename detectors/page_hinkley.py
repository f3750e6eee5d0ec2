"""Page-Hinkley test, one numba call per batch for all features, bit-identical to river.

Detects a change in the mean of a stream: it tracks a fading cumulative deviation of
each value from the running mean and signals drift when the deviation climbs more than
``threshold`` above its running minimum (an increase) or falls that far below its
running maximum (a decrease). Parameters are river's ``drift.PageHinkley`` names
(Page, 1954; Sebastião & Fernandes, 2017).

Exactness: the arithmetic is river's, in river's order: ``stats.Mean.update`` is
``n += 1.0; mean += (1.0 / n) * (x - mean)``, and the detector is reset on the update
*after* a detection, exactly like river. Rows are the outer loop and features (in chunks
of 64) the inner one, so the dependent chains of different features overlap in the CPU
and the feature loop is vectorised; each value is processed without branches (missing
values and resets are selects), and the hits come out of the kernel in stream order.

>>> import numpy as np
>>> from detectors import PageHinkley
>>> X = np.r_[np.zeros(200), np.full(200, 5.0)].reshape(-1, 1)
>>> ph = PageHinkley(n_features=1)
>>> ph.update(X).tolist()          # (row, feature) of each detection
[[210, 0]]
>>> int(ph.n_detections[0])
1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba as nb
import numpy as np
from numpy.typing import ArrayLike

from driftsentinel.detectors._hits import collect_hits, feature_indices
from driftsentinel.detectors._state import STATE_VERSION, as_array, as_matrix, check_kind, per_feature
from driftsentinel.schemas.config import RIVER_PAGE_HINKLEY as _D

__all__ = ["PageHinkley"]

_MODES = {"up": 0, "down": 1, "both": 2}
_MODE_NAMES = {v: k for k, v in _MODES.items()}
# river's drift.PageHinkley() defaults, defined once in the config schema; a feature added
# later without a construction-time scalar gets these
_PARAMS = ("min_instances", "delta", "threshold", "alpha", "mode")
_DEFAULTS: dict[str, Any] = {name: getattr(_D, name) for name in _PARAMS}
# river's parameter name -> the per-feature array attribute (float64; mode: int64 codes)
_ARRAYS = {
    "min_instances": "_min_inst",
    "delta": "_delta",
    "threshold": "_threshold",
    "alpha": "_alpha",
    "mode": "_mode",
}


_CHUNK = 64  # features per pass over the rows: the in-kernel state block is [15, _CHUNK]


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _ph_kernel(
    X,
    min_inst,
    delta,
    threshold,
    alpha,
    mode,
    n,
    mean,
    s_inc,
    s_dec,
    min_inc,
    max_dec,
    at_min,
    at_max,
    pending,
    n_det,
    flags,
    since,
):  # pragma: no cover - numba
    # Returns the hits as (row, feature) pairs in stream order. ``flags`` and ``since`` are
    # scratch of at least [rows, F]: every cell is written, so they need no clearing.
    # ``at_min`` / ``at_max``: the count (since the reset) at which sum_increase last fell
    # below its minimum / sum_decrease last rose above its maximum (river's strict
    # comparisons), i.e. the change point estimates; ``since[i, f]`` gets, where feature f
    # fired at row i, the values after the estimate of the test that fired (the larger one
    # when both did).
    rows, F = X.shape
    row_hits = np.zeros(rows, np.int64)
    # Branch-free per value: a missing value or a reset only changes which values are
    # selected. State and parameters of a chunk of features live in ONE in-kernel block S
    # whose row stride is a compile-time constant: LLVM then proves the rows independent
    # and needs only a few run-time alias checks, so it vectorises the feature loop even
    # for a handful of features (with a dozen separate arrays it did so only from ~40).
    S = np.empty((15, _CHUNK))
    for c0 in range(0, F, _CHUNK):
        nf = min(_CHUNK, F - c0)
        for j in range(nf):
            f = c0 + j
            S[0, j] = n[f]
            S[1, j] = mean[f]
            S[2, j] = s_inc[f]
            S[3, j] = s_dec[f]
            S[4, j] = min_inc[f]
            S[5, j] = max_dec[f]
            S[6, j] = 1.0 if pending[f] else 0.0
            S[7, j] = min_inst[f]
            S[8, j] = delta[f]
            S[9, j] = threshold[f]
            S[10, j] = alpha[f]
            S[11, j] = 1.0 if mode[f] != 1 else 0.0  # "up" or "both"
            S[12, j] = 1.0 if mode[f] != 0 else 0.0  # "down" or "both"
            S[13, j] = at_min[f]
            S[14, j] = at_max[f]
        for i in range(rows):
            xr = X[i, c0 : c0 + nf]
            fr = flags[i, c0 : c0 + nf]
            sr = since[i, c0 : c0 + nf]
            cnt = 0
            for j in range(nf):
                x = xr[j]
                ok = x == x  # missing: the feature's detector does not see the row
                p = S[6, j] != 0.0  # river resets on the update after a detection
                n_ = S[0, j]
                m_ = S[1, j]
                si_ = S[2, j]
                sd_ = S[3, j]
                mi_ = S[4, j]
                md_ = S[5, j]
                n0 = 0.0 if p else n_
                m0 = 0.0 if p else m_
                si0 = 0.0 if p else si_
                sd0 = 0.0 if p else sd_
                mi0 = np.inf if p else mi_
                md0 = -1.0 if p else md_
                ai_ = S[13, j]
                ad_ = S[14, j]
                ai0 = 0.0 if p else ai_
                ad0 = 0.0 if p else ad_
                nn = n0 + 1.0
                m = m0 + (1.0 / nn) * (x - m0)  # river's stats.Mean.update with w = 1.0
                dev = x - m
                a = S[10, j]
                dl = S[8, j]
                si = a * si0 + dev - dl
                sd = a * sd0 + dev + dl
                lower = si < mi0
                higher = sd > md0
                mi = si if lower else mi0
                md = sd if higher else md0
                ai = nn if lower else ai0
                ad = nn if higher else ad0
                th = S[9, j]
                ti = si - mi
                td = md - sd
                up = (S[11, j] != 0.0) & (ti > th)
                down = (S[12, j] != 0.0) & (td > th)
                hit = ok & (nn >= S[7, j]) & (up | down)
                sr[j] = nn - (ai if up & ((not down) | (ti >= td)) else ad)
                S[0, j] = nn if ok else n_
                S[1, j] = m if ok else m_
                S[2, j] = si if ok else si_
                S[3, j] = sd if ok else sd_
                S[4, j] = mi if ok else mi_
                S[5, j] = md if ok else md_
                S[13, j] = ai if ok else ai_
                S[14, j] = ad if ok else ad_
                S[6, j] = (1.0 if hit else 0.0) if ok else S[6, j]
                fr[j] = hit
                cnt += hit
            row_hits[i] += cnt
        for j in range(nf):
            f = c0 + j
            n[f] = S[0, j]
            mean[f] = S[1, j]
            s_inc[f] = S[2, j]
            s_dec[f] = S[3, j]
            min_inc[f] = S[4, j]
            max_dec[f] = S[5, j]
            at_min[f] = S[13, j]
            at_max[f] = S[14, j]
            pending[f] = S[6, j] != 0.0
    n_hits = 0
    for i in range(rows):
        n_hits += row_hits[i]
    out = collect_hits(flags, row_hits, rows, F, n_hits)
    for k in range(n_hits):
        n_det[out[k, 1]] += 1
    return out


class PageHinkley:
    """Page-Hinkley drift detector for ``n_features`` independent streams.

    Parameters are river's, as scalars or per-feature arrays: ``min_instances``,
    ``delta``, ``threshold`` (lambda), ``alpha`` (forgetting factor) and ``mode``
    (``"up"``, ``"down"`` or ``"both"``).

    Read-outs (arrays of length ``n_features``): ``test_increase``
    (``sum_increase - min_increase``), ``test_decrease`` (``max_decrease - sum_decrease``),
    ``mean``, ``n_seen`` and ``n_detections`` (cumulative). Before the first value after
    a (re)start, ``test_increase`` is ``-inf`` and ``test_decrease`` is ``-1``, as river
    would compute them.

    >>> import json
    >>> import numpy as np
    >>> from detectors import PageHinkley
    >>> rng = np.random.default_rng(7)
    >>> X = np.c_[rng.normal(0, 1, 1000), np.r_[rng.normal(0, 1, 500), rng.normal(3, 1, 500)]]
    >>> a = PageHinkley(n_features=2, threshold=[50.0, 20.0])
    >>> hits = a.update(X[:600])
    >>> b = PageHinkley.from_state(json.loads(json.dumps(a.to_builtin_state())))
    >>> np.array_equal(a.update(X[600:]), b.update(X[600:]))
    True
    """

    def __init__(
        self,
        n_features: int,
        min_instances: ArrayLike = _D.min_instances,
        delta: ArrayLike = _D.delta,
        threshold: ArrayLike = _D.threshold,
        alpha: ArrayLike = _D.alpha,
        mode: Any = _D.mode,
    ) -> None:
        F = int(n_features)
        if F < 0:
            raise ValueError("n_features must be >= 0")
        self._scalars: dict[str, Any] = {}
        self._min_inst, self._scalars["min_instances"] = per_feature(min_instances, F, np.float64, "min_instances")
        self._delta, self._scalars["delta"] = per_feature(delta, F, np.float64, "delta")
        self._threshold, self._scalars["threshold"] = per_feature(threshold, F, np.float64, "threshold")
        self._alpha, self._scalars["alpha"] = per_feature(alpha, F, np.float64, "alpha")
        modes, self._scalars["mode"] = per_feature(mode, F, object, "mode")
        self._mode = self._mode_codes(modes)
        self._alloc(F)

    @staticmethod
    def _mode_codes(modes: np.ndarray) -> np.ndarray:
        try:
            return np.array([_MODES[str(m)] for m in modes], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"Invalid 'mode' {e.args[0]!r}. Valid values are: {list(_MODES)}") from None

    def _alloc(self, F: int) -> None:
        self._n = np.zeros(F)
        self._mean = np.zeros(F)
        self._s_inc = np.zeros(F)
        self._s_dec = np.zeros(F)
        self._min_inc = np.full(F, np.inf)
        self._max_dec = np.full(F, -1.0)
        self._at_min = np.zeros(F)
        self._at_max = np.zeros(F)
        self._pending = np.zeros(F, dtype=np.bool_)
        self._n_det = np.zeros(F, dtype=np.int64)
        self._post = np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------------ API
    @property
    def n_features(self) -> int:
        return len(self._n)

    def update(self, X: Any) -> np.ndarray:
        """Feed a batch ``[n, n_features]`` (NaN = missing); return hits ``[k, 2]`` (row, feature)."""
        X = np.ascontiguousarray(as_matrix(X, self.n_features))
        flags = np.empty(X.shape, dtype=np.bool_)
        since = np.empty(X.shape)
        hits = _ph_kernel(
            X,
            self._min_inst,
            self._delta,
            self._threshold,
            self._alpha,
            self._mode,
            self._n,
            self._mean,
            self._s_inc,
            self._s_dec,
            self._min_inc,
            self._max_dec,
            self._at_min,
            self._at_max,
            self._pending,
            self._n_det,
            flags,
            since,
        )
        self._post = since[hits[:, 0], hits[:, 1]].astype(np.int64)
        return hits

    def add_features(self, n: int) -> None:
        """Append ``n`` fresh features (construction-time scalars, else river's defaults)."""
        n = int(n)
        fill = {k: (v if v is not None else _DEFAULTS[k]) for k, v in self._scalars.items()}
        self._min_inst = np.r_[self._min_inst, np.full(n, fill["min_instances"], dtype=np.float64)]
        self._delta = np.r_[self._delta, np.full(n, fill["delta"], dtype=np.float64)]
        self._threshold = np.r_[self._threshold, np.full(n, fill["threshold"], dtype=np.float64)]
        self._alpha = np.r_[self._alpha, np.full(n, fill["alpha"], dtype=np.float64)]
        self._mode = np.r_[self._mode, np.full(n, _MODES[str(fill["mode"])], dtype=np.int64)]
        old = self._arrays()
        self._alloc(n)
        new = self._arrays()
        for name in old:
            setattr(self, name, np.concatenate([old[name], new[name]]))

    def set_params(self, features: Sequence[int], **params: Any) -> None:
        """Set river's parameters (``min_instances``, ``delta``, ``threshold``, ``alpha``,
        ``mode``) of the given features, in place: the running sums are kept and the next
        value uses the new values. Each value is a scalar or one value per listed feature.
        An unknown name or a bad value raises ``ValueError`` naming the parameter, and
        changes nothing.

        >>> ph = PageHinkley(n_features=3)
        >>> ph.set_params([1], threshold=20.0, mode="up")
        >>> ph.state_dict()["threshold"].tolist(), ph.state_dict()["mode"].tolist()
        ([50.0, 20.0, 50.0], [2, 0, 2])
        >>> ph.set_params([0], threshold=float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: threshold must be a number (not NaN), got [nan]
        """
        idx = feature_indices(features, self.n_features)
        new: dict[str, np.ndarray] = {}
        for name, value in params.items():
            if name not in _ARRAYS:
                raise ValueError(f"unknown PageHinkley parameter {name!r} (expected one of {', '.join(_PARAMS)})")
            if name == "mode":
                new[name] = self._mode_codes(np.broadcast_to(np.asarray(value, dtype=object), idx.shape))
                continue
            try:
                vals = np.broadcast_to(np.asarray(value, dtype=np.float64), idx.shape)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: expected a number or {idx.size} numbers, got {value!r}") from None
            if np.any(np.isnan(vals)):  # river compares with these: NaN would never fire, silently
                raise ValueError(f"{name} must be a number (not NaN), got {vals.tolist()!r}")
            new[name] = vals
        for name, vals in new.items():
            getattr(self, _ARRAYS[name])[idx] = vals

    def reset(self, feature_mask: Any = None) -> None:
        """Restart the detectors of the selected features (all by default); detection counts are kept."""
        mask = np.ones(self.n_features, bool) if feature_mask is None else np.asarray(feature_mask, bool)
        self._n[mask] = 0.0
        self._mean[mask] = 0.0
        self._s_inc[mask] = 0.0
        self._s_dec[mask] = 0.0
        self._min_inc[mask] = np.inf
        self._max_dec[mask] = -1.0
        self._at_min[mask] = 0.0
        self._at_max[mask] = 0.0
        self._pending[mask] = False

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            k: getattr(self, k)
            for k in (
                "_n",
                "_mean",
                "_s_inc",
                "_s_dec",
                "_min_inc",
                "_max_dec",
                "_at_min",
                "_at_max",
                "_pending",
                "_n_det",
            )
        }

    # ------------------------------------------------------------ read-outs
    @property
    def test_increase(self) -> np.ndarray:
        return self._s_inc - self._min_inc

    @property
    def test_decrease(self) -> np.ndarray:
        return self._max_dec - self._s_dec

    @property
    def mean(self) -> np.ndarray:
        return self._mean.copy()

    @property
    def n_seen(self) -> np.ndarray:
        """Values seen since the last (re)start of each feature's detector."""
        return self._n.copy()

    @property
    def n_detections(self) -> np.ndarray:
        return self._n_det.copy()

    @property
    def post_change_count(self) -> np.ndarray:
        """Per hit of the last :meth:`update` (same order): the values after the change point
        estimate of the test that fired (the larger test when both did), the detection's
        value included. The estimate is Page-Hinkley's own: where ``sum_increase`` was last
        at its minimum (an increase) or ``sum_decrease`` at its maximum (a decrease), since
        the last reset. int64."""
        return self._post.copy()

    @property
    def drift_detected(self) -> np.ndarray:
        """True where the last value a feature saw was a detection (river's ``drift_detected``)."""
        return self._pending.copy()

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """Plain dict of numpy arrays / Python values (no pickle). See :meth:`to_builtin_state`."""
        return {
            "kind": "page_hinkley",
            "version": STATE_VERSION,
            "n_features": self.n_features,
            "scalars": dict(self._scalars),
            "min_instances": self._min_inst.copy(),
            "delta": self._delta.copy(),
            "threshold": self._threshold.copy(),
            "alpha": self._alpha.copy(),
            "mode": self._mode.copy(),
            "n": self._n.copy(),
            "mean": self._mean.copy(),
            "sum_increase": self._s_inc.copy(),
            "sum_decrease": self._s_dec.copy(),
            "min_increase": self._min_inc.copy(),
            "max_decrease": self._max_dec.copy(),
            "at_min_increase": self._at_min.copy(),
            "at_max_decrease": self._at_max.copy(),
            "pending_reset": self._pending.copy(),
            "n_detections": self._n_det.copy(),
        }

    def to_builtin_state(self) -> dict:
        """:meth:`state_dict` with arrays as lists: ready for ``json.dumps`` / ``msgpack.packb``."""
        from driftsentinel.detectors._state import to_builtin

        return to_builtin(self.state_dict())

    @classmethod
    def from_state(cls, state: dict) -> PageHinkley:
        check_kind(state, "page_hinkley")
        F = int(state["n_features"])
        self = cls.__new__(cls)
        self._scalars = {k: state["scalars"].get(k) for k in _DEFAULTS}
        shp = (F,)
        self._min_inst = as_array(state["min_instances"], np.float64, shp)
        self._delta = as_array(state["delta"], np.float64, shp)
        self._threshold = as_array(state["threshold"], np.float64, shp)
        self._alpha = as_array(state["alpha"], np.float64, shp)
        self._mode = as_array(state["mode"], np.int64, shp)
        if np.any((self._mode < 0) | (self._mode > 2)):
            raise ValueError("invalid mode code in state")
        self._n = as_array(state["n"], np.float64, shp)
        self._mean = as_array(state["mean"], np.float64, shp)
        self._s_inc = as_array(state["sum_increase"], np.float64, shp)
        self._s_dec = as_array(state["sum_decrease"], np.float64, shp)
        self._min_inc = as_array(state["min_increase"], np.float64, shp)
        self._max_dec = as_array(state["max_decrease"], np.float64, shp)
        # states written before the change point estimates: "since the reset" until the next extreme
        self._at_min = as_array(state.get("at_min_increase", np.zeros(F)), np.float64, shp)
        self._at_max = as_array(state.get("at_max_decrease", np.zeros(F)), np.float64, shp)
        self._pending = as_array(state["pending_reset"], np.bool_, shp)
        self._n_det = as_array(state["n_detections"], np.int64, shp)
        self._post = np.zeros(0, dtype=np.int64)
        return self
