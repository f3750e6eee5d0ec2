"""Build a :class:`schemas.profile.ReferenceProfile` from training columns (no I/O).

Types are inferred per column: numeric when every non-missing value is a number
(booleans excluded), categorical otherwise; ``types`` pins them.

>>> prof = build_profile({"x": [1.0, 2.0, None, 4.0], "ok": [True, False, True, None]}, source="t")
>>> prof.features["x"].kind, prof.features["x"].missing_ratio, prof.features["ok"].frequencies
('numeric', 0.25, {'true': 0.6666666666666666, 'false': 0.3333333333333333})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from driftsentinel.detectors.categories import canonical
from driftsentinel.detectors.multivariate import multivariate_profile
from driftsentinel.schemas.profile import CategoricalProfile, NumericProfile, ReferenceProfile

N_QUANTILES = 100
TOP_K = 50
MAX_SEEN = 10_000


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def infer_type(values: Sequence[Any]) -> Literal["numeric", "categorical"]:
    """'numeric' if every non-missing value is a number, else 'categorical'."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
    return "numeric" if present and all(_is_number(v) for v in present) else "categorical"


def numeric_profile(values: np.ndarray, n_quantiles: int = N_QUANTILES) -> NumericProfile:
    """Profile of a float column (NaN = missing)."""
    values = np.asarray(values, dtype=np.float64)
    ok = values[np.isfinite(values)]
    n = values.size
    if ok.size == 0:
        raise ValueError("a numeric feature needs at least one value")
    return NumericProfile(
        count=int(ok.size),
        missing_ratio=float((n - ok.size) / n) if n else 0.0,
        mean=float(ok.mean()),
        std=float(ok.std(ddof=1)) if ok.size > 1 else 0.0,
        min=float(ok.min()),
        max=float(ok.max()),
        quantiles=np.quantile(ok, np.linspace(0, 1, n_quantiles + 1)).tolist(),
    )


def categorical_profile(values: Sequence[Any], top_k: int = TOP_K) -> CategoricalProfile:
    """Profile of a column of categories (None = missing)."""
    canon = [canonical(v) for v in values]
    if {c for c in canon if c is not None} <= {"true", "false", "0", "1"}:
        # a boolean column (true/false, True/False, 0/1): one spelling for training and live
        canon = [canonical(v, boolean=True) for v in values]
    present = [c for c in canon if c is not None]
    counts = Counter(present)
    total = len(present)
    top = counts.most_common(top_k)
    freqs = {c: k / total for c, k in top} if total else {}
    return CategoricalProfile(
        count=total,
        missing_ratio=(len(canon) - total) / len(canon) if canon else 0.0,
        frequencies=freqs,
        other_share=max(0.0, 1.0 - sum(freqs.values())) if total else 0.0,
        n_categories=len(counts),
        seen=sorted(counts) if len(counts) <= MAX_SEEN else [],
    )


def build_profile(
    columns: Mapping[str, Sequence[Any]],
    source: str,
    types: dict[str, Literal["numeric", "categorical"]] | None = None,
    top_k: int = TOP_K,
    notes: list[str] | None = None,
) -> ReferenceProfile:
    """Profile every column; ``types`` pins a column's type (values must then fit it).

    The numeric columns, aligned by row, also give the profile's ``multivariate`` section
    (:func:`~driftsentinel.detectors.multivariate.multivariate_profile`); what it took, or
    why there is none (too few rows with the features together), is appended to ``notes``.
    """
    types = types or {}
    n_rows = max((len(v) for v in columns.values()), default=0)
    features: dict[str, NumericProfile | CategoricalProfile] = {}
    numeric: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        kind = types.get(name) or infer_type(values)
        if kind == "numeric":
            bad = [v for v in values if v is not None and not _is_number(v)]
            if bad:
                raise ValueError(f"feature {name!r} is pinned numeric but has values like {bad[0]!r}")
            arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
            if np.isfinite(arr).any():
                features[name] = numeric_profile(arr)
                if arr.size == n_rows:  # a shorter column cannot be aligned by row
                    numeric[name] = arr
        else:
            features[name] = categorical_profile(values, top_k)
    quantiles = {n: np.asarray(p.quantiles) for n, p in features.items() if isinstance(p, NumericProfile)}
    section, note = multivariate_profile(numeric, quantiles)
    if notes is not None:
        notes.append(note)
    return ReferenceProfile(source=source, n_rows=n_rows, features=features, multivariate=section)
