"""Which class runs a change detector: the one place the backend is chosen.

``backend="kernel"`` gives the batch numba kernels (fast, checkpointable);
``backend="river"`` gives river's own classes behind the same interface (the reference
the kernels are tested against; slow, no state dict). Parameters come from the config
schema (:class:`~driftsentinel.schemas.ADWINConfig`, :class:`~driftsentinel.schemas.PageHinkleyConfig`),
so their defaults are defined there only.

>>> from driftsentinel.schemas import ADWINConfig
>>> det = change_detector("adwin", "kernel", 3, ADWINConfig(delta=0.01))
>>> type(det).__name__, det.n_features
('ADWIN', 3)
>>> type(change_detector("page_hinkley", "river", 1)).__name__
'RiverPageHinkley'
"""

from __future__ import annotations

from typing import Literal

from driftsentinel.detectors.protocol import ChangeDetector
from driftsentinel.schemas.config import ADWINConfig, DetectorBackend, PageHinkleyConfig

__all__ = ["DetectorKind", "change_detector"]

DetectorKind = Literal["adwin", "page_hinkley"]


def change_detector(
    kind: DetectorKind,
    backend: DetectorBackend,
    n_features: int,
    params: ADWINConfig | PageHinkleyConfig | None = None,
) -> ChangeDetector:
    """A ``kind`` detector for ``n_features`` features on ``backend``, with ``params``
    (default: the schema's defaults for ``kind``) for every feature.

    Per-feature parameters are set afterwards with ``set_params``.
    """
    expected = {"adwin": ADWINConfig, "page_hinkley": PageHinkleyConfig}[kind]
    if params is None:
        params = expected()
    elif not isinstance(params, expected):
        raise TypeError(f"{kind} takes {expected.__name__} parameters, got {type(params).__name__}")
    kwargs = params.model_dump(exclude={"enabled"})
    # imported here: the kernels compile (numba) and river takes ~0.7 s to import; a
    # process pays only for the backend it runs
    if backend == "river":
        from driftsentinel.detectors.river_backend import RiverADWIN, RiverPageHinkley

        return (RiverADWIN if kind == "adwin" else RiverPageHinkley)(n_features, **kwargs)
    if backend == "kernel":
        if kind == "adwin":
            from driftsentinel.detectors.adwin import ADWIN

            return ADWIN(n_features, **kwargs)
        from driftsentinel.detectors.page_hinkley import PageHinkley

        return PageHinkley(n_features, **kwargs)
    raise ValueError(f"unknown backend {backend!r}: 'kernel' or 'river'")
