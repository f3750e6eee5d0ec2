"""Load the compiled detector kernels before the first real batch.

numba keeps the compiled kernels on disk (``cache=True``), but a new process still loads
and links them on their first call — about 0.3-0.4 s for ADWIN alone. A sidecar that
does this inside its first batch delays that batch's alerts and commit; :func:`load_kernels`
does it at start-up instead, by running a throw-away :class:`DetectorBank` (with the run's
own configuration and profile, so the same kernel signatures are used) over a small
synthetic batch, every sketch kernel (:func:`detectors.sketches.load_kernels`) and, for a
regressor whose profile holds a performance reference, its loss models' tree kernel.

>>> seconds = load_kernels()
>>> seconds >= 0.0
True
"""

from __future__ import annotations

import time

import numpy as np

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.performance import ReferenceModel
from driftsentinel.detectors.sketches import load_kernels as load_sketch_kernels
from driftsentinel.schemas import BankConfig, FeatureBatch
from driftsentinel.schemas.profile import NumericProfile, ReferenceProfile


def load_kernels(config: BankConfig | None = None, profile: ReferenceProfile | None = None) -> float:
    """Run every kernel once on synthetic data; returns the seconds it took."""
    started = time.perf_counter()
    config = config or BankConfig()
    rng = np.random.default_rng(0)
    names = [n for n, p in (profile.features.items() if profile else ()) if isinstance(p, NumericProfile)][:2]
    names = names or ["a", "b"]
    rows = max(config.warmup, 0) + 4 * config.adwin.clock + 64
    values = rng.normal(size=(rows, len(names)))
    bank = DetectorBank(config, profile)
    bank.update(FeatureBatch(names, values, np.arange(rows), np.full(rows, np.nan)))
    bank.state_dict()
    load_sketch_kernels(values[:, :1])
    for ref in (profile.performance or {}).values() if profile is not None else ():
        model = ReferenceModel(ref)
        ensembles = getattr(model, "loss_models", None)
        if ensembles is not None:  # DLE: the tree walk's first call links the kernel (about 1 s)
            ensembles.predict(np.zeros((4, ensembles.n_features)))
    return time.perf_counter() - started
