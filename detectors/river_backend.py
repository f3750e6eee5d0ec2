"""Reference backend: river's own detectors, one Python call per value.

``RiverADWIN`` and ``RiverPageHinkley`` expose the same interface as the numba
kernels in :mod:`detectors.adwin` and :mod:`detectors.page_hinkley` (constructor,
``update(X) -> hits``, read-outs, ``add_features``), but feed every non-missing value
to one ``river.drift`` detector per feature. They are slow (0.2-1 µs per value) and
exist to be the ground truth for parity tests and ``backend="river"``.

``n_detections`` is the cumulative number of detections since construction. (river's
own ``ADWIN.n_detections`` lives in a helper that river rebuilds after each detection,
so it only ever reads 0 or 1; counting here gives the useful number on both backends.)

>>> import numpy as np
>>> from detectors.river_backend import RiverPageHinkley
>>> X = np.r_[np.zeros(200), np.full(200, 5.0)].reshape(-1, 1)
>>> RiverPageHinkley(n_features=1).update(X).tolist()
[[210, 0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from driftsentinel.detectors._state import as_matrix, per_feature

_ADWIN_DEFAULTS = dict(delta=0.002, clock=32, max_buckets=5, min_window_length=5, grace_period=10)
_PH_DEFAULTS = dict(min_instances=30, delta=0.005, threshold=50.0, alpha=1 - 0.0001, mode="both")


class _RiverBank:
    _defaults: dict[str, Any] = {}
    _dtypes: dict[str, Any] = {}

    def __init__(self, n_features: int, **params: Any) -> None:
        self._params: dict[str, np.ndarray] = {}
        self._scalars: dict[str, Any] = {}
        for name, default in self._defaults.items():
            arr, scalar = per_feature(params.pop(name, default), n_features, self._dtypes[name], name)
            self._params[name] = arr
            self._scalars[name] = scalar
        if params:
            raise TypeError(f"unexpected parameters: {sorted(params)}")
        self._detectors: list[Any] = [self._make(i) for i in range(n_features)]
        self._n_det = np.zeros(n_features, dtype=np.int64)

    def _make(self, i: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _kwargs(self, i: int) -> dict[str, Any]:
        return {k: (v[i].item() if isinstance(v[i], np.generic) else v[i]) for k, v in self._params.items()}

    @property
    def n_features(self) -> int:
        return len(self._detectors)

    @property
    def n_detections(self) -> np.ndarray:
        return self._n_det.copy()

    def add_features(self, n: int) -> None:
        """Append ``n`` fresh features (construction-time scalars, else river's defaults)."""
        for name, arr in self._params.items():
            fill = self._scalars[name] if self._scalars[name] is not None else self._defaults[name]
            self._params[name] = np.concatenate([arr, np.full(n, fill, dtype=arr.dtype)])
        start = len(self._detectors)
        self._detectors.extend(self._make(i) for i in range(start, start + n))
        self._n_det = np.concatenate([self._n_det, np.zeros(n, dtype=np.int64)])

    def update(self, X: Any) -> np.ndarray:
        """Feed a batch ``[n, F]`` (NaN = missing); return hits ``[k, 2]`` of (row, feature)."""
        X = as_matrix(X, self.n_features)
        hits: list[tuple[int, int]] = []
        cols = X.T.tolist()  # python floats: exactly what river sees one value at a time
        for f, det in enumerate(self._detectors):
            upd = det.update
            for i, x in enumerate(cols[f]):
                if x != x:  # NaN: missing, the detector does not see this row
                    continue
                upd(x)
                if det.drift_detected:
                    hits.append((i, f))
                    self._n_det[f] += 1
        if not hits:
            return np.empty((0, 2), dtype=np.int64)
        out = np.array(hits, dtype=np.int64)
        return out[np.lexsort((out[:, 1], out[:, 0]))]

    def state_dict(self) -> dict:
        raise NotImplementedError(
            f"{type(self).__name__} is the river reference backend; it has no pickle-free "
            "state. Use the numba kernels (backend='numba') when state must be checkpointed."
        )

    @classmethod
    def from_state(cls, state: dict) -> Any:
        raise NotImplementedError(f"{cls.__name__} cannot be restored from state; use the numba kernels.")


class RiverADWIN(_RiverBank):
    """river's ``drift.ADWIN`` per feature, behind the batch interface.

    >>> import numpy as np
    >>> from detectors import RiverADWIN
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, 500), rng.normal(4, 1, 500)].reshape(-1, 1)
    >>> d = RiverADWIN(n_features=1)
    >>> d.update(X)[:, 0].tolist()
    [511]
    """

    _defaults = _ADWIN_DEFAULTS
    _dtypes = dict(delta=np.float64, clock=np.int64, max_buckets=np.int64,
                   min_window_length=np.int64, grace_period=np.int64)

    def _make(self, i: int) -> Any:
        from river import drift  # imported on first use: river takes ~0.7 s to import

        return drift.ADWIN(**self._kwargs(i))

    @property
    def width(self) -> np.ndarray:
        return np.array([d.width for d in self._detectors], dtype=np.float64)

    @property
    def estimation(self) -> np.ndarray:
        return np.array([d.estimation for d in self._detectors], dtype=np.float64)

    @property
    def variance(self) -> np.ndarray:
        return np.array([d.variance for d in self._detectors], dtype=np.float64)

    @property
    def total(self) -> np.ndarray:
        return np.array([d.total for d in self._detectors], dtype=np.float64)


class RiverPageHinkley(_RiverBank):
    """river's ``drift.PageHinkley`` per feature, behind the batch interface."""

    _defaults = _PH_DEFAULTS
    _dtypes = dict(min_instances=np.int64, delta=np.float64, threshold=np.float64,
                   alpha=np.float64, mode=object)

    def _make(self, i: int) -> Any:
        from river import drift

        kw = self._kwargs(i)
        kw["mode"] = str(kw["mode"])
        return drift.PageHinkley(**kw)

    @property
    def test_increase(self) -> np.ndarray:
        return np.array([d._sum_increase - d._min_increase for d in self._detectors], dtype=np.float64)

    @property
    def test_decrease(self) -> np.ndarray:
        return np.array([d._max_decrease - d._sum_decrease for d in self._detectors], dtype=np.float64)

    @property
    def mean(self) -> np.ndarray:
        return np.array([d._x_mean.get() for d in self._detectors], dtype=np.float64)

    @property
    def n_seen(self) -> np.ndarray:
        return np.array([d._x_mean.n for d in self._detectors], dtype=np.float64)
