"""Reference backend: river's own detectors, one Python call per value.

``RiverADWIN`` and ``RiverPageHinkley`` implement the batch detector protocol
(:class:`~driftsentinel.detectors.protocol.ChangeDetector`) like the numba kernels in
:mod:`detectors.adwin` and :mod:`detectors.page_hinkley` (constructor with river's
defaults, ``update(X) -> hits``, ``add_features``, ``set_params``, read-outs), but feed
every non-missing value to one ``river.drift`` detector per feature. They are slow
(0.2-1 µs per value) and exist to be the ground truth for parity tests and
``backend="river"``. They have no pickle-free state: ``state_dict`` raises.

``n_detections`` is the cumulative number of detections since construction. (river's
own ``ADWIN.n_detections`` lives in a helper that river rebuilds after each detection,
so it only ever reads 0 or 1; counting here gives the useful number on both backends.)

>>> import numpy as np
>>> from driftsentinel.detectors.river_backend import RiverPageHinkley
>>> X = np.r_[np.zeros(200), np.full(200, 5.0)].reshape(-1, 1)
>>> RiverPageHinkley(n_features=1).update(X).tolist()
[[210, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from driftsentinel.detectors._state import as_matrix, per_feature
from driftsentinel.schemas.config import RIVER_ADWIN, RIVER_PAGE_HINKLEY, ADWINConfig, PageHinkleyConfig


def _river_params(section: ADWINConfig | PageHinkleyConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """river's parameters as the config schema defines them (defined there only): their
    defaults (the section's values) and dtypes (from the fields' types).

    >>> defaults, dtypes = _river_params(RIVER_ADWIN)
    >>> defaults["delta"], dtypes["delta"].__name__, dtypes["clock"].__name__
    (0.002, 'float64', 'int64')
    """
    defaults = section.model_dump(exclude={"enabled"})
    kinds: dict[Any, Any] = {int: np.int64, float: np.float64}
    fields = type(section).model_fields
    return defaults, {name: kinds.get(fields[name].annotation, object) for name in defaults}


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
        self._post = np.zeros((0, 2))  # per hit of the last update: what _feed reports

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

    def set_params(self, features: Sequence[int], **params: Any) -> None:
        """Set river's parameters ``params`` of the listed features (others keep theirs).

        >>> d = RiverPageHinkley(2)
        >>> d.set_params([1], threshold=5.0)
        >>> [p.threshold for p in d._detectors]
        [50.0, 5.0]
        >>> d.set_params([0], lambda_=1.0)
        Traceback (most recent call last):
        ...
        ValueError: RiverPageHinkley has no parameter 'lambda_' (it has alpha, delta, min_instances, mode, threshold)
        """
        unknown = sorted(set(params) - set(self._params))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no parameter {unknown[0]!r} (it has {', '.join(sorted(self._params))})"
            )
        idx = np.asarray(features, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_features):
            raise IndexError(f"features {idx.tolist()} out of range for {self.n_features} features")
        for name, value in params.items():
            if np.dtype(self._dtypes[name]).kind == "i" and not float(value).is_integer():
                raise ValueError(f"{name} must be an integer (as in river), got {value!r}")
        for i in idx.tolist():  # all checks before anything changes
            self._check_settable(i, params)
        for name, value in params.items():
            self._params[name][idx] = value
        for i in idx.tolist():
            self._set(i, {name: self._kwargs(i)[name] for name in params})

    def _check_settable(self, i: int, params: dict[str, Any]) -> None:
        """Raise ``ValueError`` if feature ``i``'s detector cannot take ``params``."""

    def _set(self, i: int, params: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def update(self, X: Any) -> np.ndarray:
        """Feed a batch ``[n, F]`` (NaN = missing); return hits ``[k, 2]`` of (row, feature)."""
        X = as_matrix(X, self.n_features)
        hits: list[tuple[int, int]] = []
        post: list[tuple[float, float]] = []
        cols = X.T.tolist()  # python floats: exactly what river sees one value at a time
        for f, det in enumerate(self._detectors):
            for i, a, b in self._feed(f, det, cols[f]):
                hits.append((i, f))
                post.append((a, b))
                self._n_det[f] += 1
        if not hits:
            self._post = np.zeros((0, 2))
            return np.empty((0, 2), dtype=np.int64)
        out = np.array(hits, dtype=np.int64)
        order = np.lexsort((out[:, 1], out[:, 0]))
        self._post = np.array(post, dtype=np.float64)[order]
        return out[order]

    def _feed(self, f: int, det: Any, values: list[float]) -> list[tuple[int, float, float]]:
        """Feed feature ``f``'s values (NaN: missing, the detector does not see the row) to its
        detector; per detection, its row and two numbers about the values since the change."""
        out = []
        upd = det.update
        for i, x in enumerate(values):
            if x != x:
                continue
            upd(x)
            if det.drift_detected:
                out.append((i, *self._at_hit(f, det)))
        return out

    def _at_hit(self, f: int, det: Any) -> tuple[float, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def post_change_count(self) -> np.ndarray:
        """Per hit of the last :meth:`update` (same order): the values since the change point
        the detector found, the detection's value included (as the kernels report it). int64."""
        return self._post[:, 0].astype(np.int64)

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
    >>> from driftsentinel.detectors import RiverADWIN
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, 500), rng.normal(4, 1, 500)].reshape(-1, 1)
    >>> d = RiverADWIN(n_features=1)
    >>> d.update(X)[:, 0].tolist()
    [511]
    """

    _defaults, _dtypes = _river_params(RIVER_ADWIN)

    def _make(self, i: int) -> Any:
        from river import drift  # imported on first use: river takes ~0.7 s to import

        return drift.ADWIN(**self._kwargs(i))

    def _check_settable(self, i: int, params: dict[str, Any]) -> None:
        # river's ADWIN copies its parameters into a compiled helper when it (re)starts: a
        # detector that has seen nothing can start again with new ones (exactly what a
        # detector built with them would be); one that holds a window cannot change them
        # without losing it (the kernels change them in place)
        det = self._detectors[i]
        if det.width or det.drift_detected:
            raise ValueError(
                f"river's ADWIN cannot change the parameters of feature {i}: it already holds a "
                "window (the numba kernels can)"
            )

    def _set(self, i: int, params: dict[str, Any]) -> None:
        self._detectors[i] = self._make(i)

    def _at_hit(self, f: int, det: Any) -> tuple[float, float]:
        # right after a detection river's window is the sub-window after the cut (its
        # deletions done; the reset comes with the next value)
        return float(det.width), float(det.total)

    @property
    def post_change_mean(self) -> np.ndarray:
        """Per hit of the last :meth:`update`: the mean of the sub-window after the cut."""
        return self._post[:, 1] / self._post[:, 0]

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

    _defaults, _dtypes = _river_params(RIVER_PAGE_HINKLEY)

    def __init__(self, n_features: int, **params: Any) -> None:
        super().__init__(n_features, **params)
        # the change point estimates river does not keep: the count (since the reset) at
        # which sum_increase last fell below its minimum / sum_decrease rose above its maximum
        self._at_min = np.zeros(n_features)
        self._at_max = np.zeros(n_features)

    def add_features(self, n: int) -> None:
        super().add_features(n)
        self._at_min = np.r_[self._at_min, np.zeros(n)]
        self._at_max = np.r_[self._at_max, np.zeros(n)]

    def _make(self, i: int) -> Any:
        from river import drift

        kw = self._kwargs(i)
        kw["mode"] = str(kw["mode"])
        return drift.PageHinkley(**kw)

    def _feed(self, f: int, det: Any, values: list[float]) -> list[tuple[int, float, float]]:
        # river's update, watched: which value set a new extreme (river's strict comparisons)
        out = []
        upd = det.update
        at_min, at_max = float(self._at_min[f]), float(self._at_max[f])
        for i, x in enumerate(values):
            if x != x:
                continue
            if det.drift_detected:  # river resets on this update
                lo, hi, at_min, at_max = float("inf"), -1.0, 0.0, 0.0
            else:
                lo, hi = det._min_increase, det._max_decrease
            upd(x)
            n = det._x_mean.n
            if det._sum_increase < lo:
                at_min = n
            if det._sum_decrease > hi:
                at_max = n
            if det.drift_detected:
                ti = det._sum_increase - det._min_increase
                td = det._max_decrease - det._sum_decrease
                th = det.threshold
                up = det.mode != det._MODE_DOWN and ti > th
                down = det.mode != det._MODE_UP and td > th
                out.append((i, n - (at_min if up and (not down or ti >= td) else at_max), 0.0))
        self._at_min[f], self._at_max[f] = at_min, at_max
        return out

    def _check_settable(self, i: int, params: dict[str, Any]) -> None:
        modes = self._detectors[i]._VALID_MODES
        if "mode" in params and str(params["mode"]) not in modes:
            raise ValueError(f"Invalid 'mode' {params['mode']!r}. Valid values are: {modes}")

    def _set(self, i: int, params: dict[str, Any]) -> None:
        det = self._detectors[i]
        # river's PageHinkley reads its parameters at every update: set in place, state kept
        for name, value in params.items():
            setattr(det, name, str(value) if name == "mode" else value)
        if "mode" in params:  # river binds the test for its mode when it (re)starts
            det._test_drift = {det._MODE_UP: det._test_increase, det._MODE_DOWN: det._test_decrease}.get(
                det.mode, det._test_both
            )

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
