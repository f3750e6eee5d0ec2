"""Categorical values: one canonical string per category, stable integer codes.

Training files and live events spell the same category differently (CSV ``True``,
JSON ``true``; ``3`` and ``3.0``). :func:`canonical` maps them to one string, so the
profile and the live stream agree.

>>> [canonical(v) for v in (True, "TRUE", "False", 3, 3.0, 2.5, "DE", None)]
['true', 'true', 'false', '3', '3', '2.5', 'DE', None]
>>> voc = Vocabulary(["a", "b"], max_size=3)
>>> voc.codes(["b", "c", "d", None, "a"]).tolist()
[1, 2, -2, -1, 0]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from driftsentinel.schemas.config import BankConfig

_MAX_CATEGORIES = BankConfig().max_categories  # the schema's default

MISSING = -1
OVERFLOW = -2  # a category beyond the vocabulary's capacity


BOOLEAN = frozenset({"true", "false"})
_AS_BOOL = {"1": "true", "0": "false", "true": "true", "false": "false"}


def canonical(value: Any, boolean: bool = False) -> str | None:
    """The canonical category string of a value (None stays missing).

    For a boolean feature (``boolean=True``) 1/0 also read as true/false, so a CSV column
    of 0/1 and JSON booleans get the same codes.

    >>> canonical(1, boolean=True), canonical("0", boolean=True), canonical(1)
    ('true', 'false', '1')
    """
    if boolean:
        text = canonical(value)
        return _AS_BOOL.get(text, text) if text is not None else None
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        low = value.strip().lower()
        return low if low in ("true", "false") else value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    return str(value)


class Vocabulary:
    """Category -> code, first come first served, at most ``max_size`` codes."""

    def __init__(self, categories: list[str] | None = None, max_size: int = _MAX_CATEGORIES) -> None:
        self.max_size = max_size
        self.index: dict[str, int] = {}
        for c in categories or []:
            self.add(c)

    def add(self, category: str) -> int:
        code = self.index.get(category)
        if code is None:
            if len(self.index) >= self.max_size:
                return OVERFLOW
            code = self.index[category] = len(self.index)
        return code

    def codes(self, values: Any) -> np.ndarray:
        """Codes of an iterable of canonical strings (None -> MISSING)."""
        add = self.add
        return np.fromiter((MISSING if v is None else add(v) for v in values), dtype=np.int64)

    @property
    def categories(self) -> list[str]:
        return list(self.index)
