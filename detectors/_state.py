"""Shared helpers for per-feature parameters and pickle-free state (de)serialisation.

Detector state is a plain ``dict`` of numpy arrays and Python numbers/strings/None.
It can be made JSON- or msgpack-ready with :func:`to_builtin` (arrays -> lists) and
read back by the ``from_state`` constructors, which accept arrays *or* lists. Nothing
here ever executes what it reads: a state topic is writable by others.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

STATE_VERSION = 1


def per_feature(value: Any, n_features: int, dtype: Any, name: str) -> tuple[np.ndarray, Any]:
    """Broadcast a scalar or a length-``n_features`` sequence to an array.

    Returns ``(array, scalar_or_None)``: the scalar is remembered so features added
    later get it; ``None`` means "was per-feature" (new features get river's default).
    """
    arr = np.asarray(value)
    if arr.ndim == 0:
        scalar = arr.item()
        return np.full(n_features, scalar, dtype=dtype), scalar
    if arr.shape != (n_features,):
        raise ValueError(f"{name}: expected a scalar or {n_features} values, got shape {arr.shape}")
    return np.array(arr, dtype=dtype), None


_NONFINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if v != v else _NONFINITE[v]
    return v


def to_builtin(obj: Any) -> Any:
    """Recursively turn numpy arrays/scalars into lists/Python numbers (JSON/msgpack-ready).

    Non-finite floats become the strings ``"Infinity"``, ``"-Infinity"``, ``"NaN"`` so the
    result is strict JSON (``json.dumps(..., allow_nan=False)`` works); ``from_state``
    reads them back as floats.

    >>> import json, numpy as np
    >>> json.dumps(to_builtin({"a": np.array([1.5, np.inf])}), allow_nan=False)
    '{"a": [1.5, "Infinity"]}'
    >>> as_array(["Infinity", 2.0], np.float64).tolist()
    [inf, 2.0]
    """
    if isinstance(obj, dict):
        return {str(k): to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f" and not np.all(np.isfinite(obj)):
            return to_builtin(obj.tolist())
        return obj.tolist()
    if isinstance(obj, np.generic):
        return _num(obj.item())
    if isinstance(obj, (list, tuple)):
        return [to_builtin(v) for v in obj]
    return _num(obj)


def as_array(value: Any, dtype: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read an array field of a state dict (numpy array or nested lists)."""
    arr = np.array(value, dtype=dtype)
    if shape is not None and arr.shape != shape:
        if arr.size == 0 and int(np.prod(shape)) == 0:
            return arr.reshape(shape)
        raise ValueError(f"state field has shape {arr.shape}, expected {shape}")
    return arr


def check_kind(state: dict, kind: str) -> None:
    if not isinstance(state, dict):
        raise TypeError("state must be a dict")
    if state.get("kind") != kind:
        raise ValueError(f"state is for {state.get('kind')!r}, not {kind!r}")
    if int(state.get("version", -1)) != STATE_VERSION:
        raise ValueError(f"unsupported state version {state.get('version')!r}")


def as_matrix(X: Any, n_features: int) -> np.ndarray:
    """Validate an update batch: float64 [n, F] (1-D input is read as one feature column when F == 1)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1 and n_features == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"X must have shape [n, {n_features}], got {X.shape}")
    return X
