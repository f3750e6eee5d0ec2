"""Offline-side files for ``driftsentinel skew --offline-file``: JSON Lines, CSV or Parquet rows.

Each row becomes an :class:`~driftsentinel.schemas.skew.OfflineRow` (id, features, event
time); a row that cannot be used (no id, not JSON) becomes ``None``, so callers can count it.
A CSV row's features are its cells as text (:class:`~driftsentinel.detectors.skew.TextCells`,
an empty cell = missing): the skew detector reads each as the type of the serving value it
is compared with, so ``True``, ``1`` and ``04100`` mean what serving meant (and, in a
semicolon-separated file, ``1,5`` is 1.5 only where serving sent a number). Encodings, the
delimiter and the header are :mod:`driftsentinel.stream.input_files`'s; a file that cannot
be read as given, or in which no row is usable, raises its ``InputFileError``.

>>> parse_offline_line('{"id": "u1", "features": {"latency": 0.25, "plan": "pro"}}')
OfflineRow(id='u1', features={'latency': 0.25, 'plan': 'pro'}, ts=None)
>>> parse_offline_line('{"id": 7, "latency": 0.25, "ts": 3}') == ("7", {"latency": 0.25}, 3.0)
True
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from driftsentinel.detectors.skew import TextCells, decimal_comma, number_or_text
from driftsentinel.schemas.skew import OfflineRow
from driftsentinel.stream.input_files import InputFileError, check_path, read_csv_text, text_lines

#: Fields of a flat JSON row that are not features.
_NOT_FEATURES = ("id", "ts", "model", "prediction", "label")


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
    """Rows of a ``.csv``/``.tsv`` (header with an ``id`` column), Parquet or JSON Lines file, in file order.

    Yields ``None`` for a row that cannot be used (no id, not JSON), so callers can count it;
    raises :class:`~driftsentinel.stream.input_files.InputFileError` at the end of a file
    without one usable row. Parquet needs pyarrow (``pip install 'driftsentinel[parquet]'``).
    """
    check_path(path)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        rows = _parquet_rows(path)
    elif suffix in (".csv", ".tsv"):
        rows = _csv_rows(path)
    else:
        rows = _json_lines(path)
    return _some_usable(path, rows)


def _some_usable(path: Path, rows: Iterator[OfflineRow | None]) -> Iterator[OfflineRow | None]:
    usable = unusable = 0
    for row in rows:
        if row is None:
            unusable += 1
        else:
            usable += 1
        yield row
    if not usable:
        what = f"none of its {unusable} rows has an id and features" if unusable else "it holds no rows"
        raise InputFileError(
            f"{path}: {what}: an offline file is CSV with an 'id' column, Parquet, or JSON Lines of "
            '{"id": .., "features": {..}} (docs/skew.md)'
        )


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
    header, rows, delim = read_csv_text(path)
    comma = delim == ";"  # a decimal comma is read by typed_cell, only against a serving number
    if "id" not in header:
        raise InputFileError(f"{path}: no 'id' column in the header {header[:8]!r}: name the entity id column 'id'")
    for _, fields in rows:
        cells = dict(zip(header, fields, strict=True))
        key = cells.pop("id")
        if not key:
            yield None
            continue
        ts_text = cells.pop("ts", "")
        ts = _ts(number_or_text((decimal_comma(ts_text) if comma else None) or ts_text))
        features = {k: v or None for k, v in cells.items() if k != "model"}
        yield OfflineRow(key, TextCells(features, decimal_comma=comma), ts)


def _json_lines(path: Path) -> Iterator[OfflineRow | None]:
    for line in text_lines(path):
        if not line.strip():
            continue
        try:
            yield parse_offline_line(line)
        except (json.JSONDecodeError, RecursionError):
            yield None
