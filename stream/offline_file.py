"""Offline-side files for ``driftsentinel skew --offline-file``: JSON Lines, CSV or Parquet rows.

Each row becomes an :class:`~driftsentinel.schemas.skew.OfflineRow` (id, features, event
time); a row that cannot be used (no id, not JSON) becomes ``None``, so callers can count it.

>>> parse_offline_line('{"id": "u1", "features": {"latency": 0.25, "plan": "pro"}}')
OfflineRow(id='u1', features={'latency': 0.25, 'plan': 'pro'}, ts=None)
>>> parse_offline_line('{"id": 7, "latency": 0.25, "ts": 3}') == ("7", {"latency": 0.25}, 3.0)
True
>>> _csv_value("0.5"), _csv_value("12"), _csv_value(""), _csv_value("pro")
(0.5, 12, None, 'pro')
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from driftsentinel.schemas.skew import OfflineRow

#: Fields of a flat JSON row that are not features.
_NOT_FEATURES = ("id", "ts", "model", "prediction", "label")


def _csv_value(text: str) -> Any:
    """A CSV cell: empty = missing, then int, then float, else the text itself."""
    if text == "":
        return None
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        return None if isinstance(value, float) and math.isnan(value) else value
    return text


def _ts(value: Any) -> float | None:
    """An event time: numbers only (a boolean is not a time)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_offline_line(line: str) -> OfflineRow | None:
    """One JSON Lines row: a FeatureEvent, or a flat object ``{"id": .., feature: value, ..}``."""
    obj = json.loads(line)
    if not isinstance(obj, dict) or obj.get("id") is None:
        return None
    if isinstance(obj.get("features"), dict):
        return OfflineRow(str(obj["id"]), obj["features"], _ts(obj.get("ts")))
    feats = {k: v for k, v in obj.items() if k not in _NOT_FEATURES}
    return OfflineRow(str(obj["id"]), feats, _ts(obj.get("ts")))


def read_offline_file(path: Path) -> Iterator[OfflineRow | None]:
    """Rows of a ``.csv`` (header with an ``id`` column), Parquet or JSON Lines file, in file order.

    Yields ``None`` for a row that cannot be used (no id, not JSON), so callers can count it.
    Parquet needs pyarrow (``pip install 'driftsentinel[parquet]'``).
    """
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _parquet_rows(path)
    if suffix == ".csv":
        return _csv_rows(path)
    return _json_lines(path)


def _parquet_rows(path: Path) -> Iterator[OfflineRow | None]:
    from driftsentinel.stream.baseline import read_rows  # pyarrow is optional: only when a Parquet file is read

    for row in read_rows(path):
        key = row.pop("id", None)
        if key is None:
            yield None
            continue
        ts = _ts(row.pop("ts", None))
        yield OfflineRow(str(key), {k: v for k, v in row.items() if k != "model"}, ts)


def _csv_rows(path: Path) -> Iterator[OfflineRow | None]:
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "id" not in reader.fieldnames:
            raise ValueError(f"{path}: CSV needs a header with an 'id' column")
        for row in reader:
            key = row.pop("id", None)
            if not key:
                yield None
                continue
            ts = _ts(_csv_value(row.pop("ts", None) or ""))
            yield OfflineRow(key, {k: _csv_value(v or "") for k, v in row.items() if k != "model"}, ts)


def _json_lines(path: Path) -> Iterator[OfflineRow | None]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                yield parse_offline_line(line)
            except (json.JSONDecodeError, RecursionError):
                yield None
