"""``driftsentinel baseline``: read training data, write a reference profile.

Inputs: CSV (``.csv``/``.tsv``: a header row; empty cells and NaN are missing; numbers
are parsed, anything else stays a string), JSON Lines (FeatureEvents, or flat objects of
feature -> value), Parquet (``pip install driftsentinel[parquet]``), or a Kafka topic
between two times. Encodings, the CSV delimiter and header names are handled by
:mod:`driftsentinel.stream.input_files`: a file that cannot be read as given, or a
feature name that looks corrupted (a byte-order mark, a control character) or repeats,
raises :class:`~driftsentinel.stream.input_files.InputFileError` (a ``ValueError``) naming
the file, line or column. The statistics are :func:`detectors.profile.build_profile`'s;
this module only reads.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, TopicPartition

from driftsentinel.detectors.batching import event_features
from driftsentinel.detectors.profile import build_profile
from driftsentinel.detectors.seasonal_profile import (
    event_seconds,
    reference_residuals,
    seasonal_profile,
    transformed_features,
)
from driftsentinel.detectors.segments import key_name, segments_profile
from driftsentinel.detectors.skew import number_or_text
from driftsentinel.schemas import InvalidEvent
from driftsentinel.schemas.config import BankConfig
from driftsentinel.schemas.fastdecode import decode_event_fast
from driftsentinel.schemas.profile import NumericProfile, ReferenceProfile
from driftsentinel.stream.input_files import InputFileError, check_names, check_path, name_problem, read_csv, text_lines
from driftsentinel.stream.topic_reader import read_to_end


def _cell(text: str) -> Any:
    """A CSV cell as a value: :func:`~driftsentinel.detectors.skew.number_or_text`, but infinity stays text.

    >>> _cell("12"), _cell("0.5"), _cell(""), _cell("nan"), _cell("pro"), _cell("1_000"), _cell("inf")
    (12, 0.5, None, None, 'pro', '1_000', 'inf')
    """
    value = number_or_text(text)
    return text if isinstance(value, float) and not math.isfinite(value) else value


def _rows_csv(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    header, rows = read_csv(path)
    for line, fields in rows:
        where = f"{path}:{line}: line {line} repeats the header" if fields == header else f"{path}:{line}"
        yield where, {name: _cell(text) for name, text in zip(header, fields, strict=True)}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def checked_types(
    rows: Iterable[tuple[str, dict[str, Any]]], types: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """The rows of ``rows`` (``(where, row)``); at their end, :class:`InputFileError` for a mixed column.

    A column whose present values are mostly numbers but not all (a text cell, a header
    repeated by ``cat a.csv b.csv``, a number in another locale's spelling) would be
    profiled as categorical and alert on every value: it is refused, naming the column,
    the first value that is not a number and where it is. ``types`` pins a column:
    categorical accepts any values, numeric refuses any value that is not a number.

    >>> rows = [("t.csv:2", {"x": 1}), ("t.csv:3", {"x": "abc"}), ("t.csv:4", {"x": 2.5})]
    >>> try:
    ...     list(checked_types(rows))
    ... except InputFileError as exc:
    ...     print(str(exc).replace(": fix", ":\\nfix"))
    t.csv:3: column 'x' holds 2 numbers and the text 'abc':
    fix the value, or pin the column with detectors.types: {x: categorical}
    >>> len(list(checked_types(rows, {"x": "categorical"})))
    3
    """
    types = types or {}
    numbers: dict[str, int] = {}
    others: dict[str, int] = {}
    first: dict[str, tuple[str, Any]] = {}
    for where, row in rows:
        for name, value in row.items():
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if _is_number(value):
                numbers[name] = numbers.get(name, 0) + 1
            else:
                others[name] = others.get(name, 0) + 1
                first.setdefault(name, (where, value))
        yield row
    for name, (where, value) in first.items():
        kind = types.get(name)
        n = numbers.get(name, 0)
        if kind == "categorical" or n == 0 or (kind != "numeric" and n <= others[name]):
            continue
        shown = f"the text {value!r}" if isinstance(value, str) else f"the {type(value).__name__} {value!r}"
        if where.endswith("repeats the header"):
            raise InputFileError(f"{where} (files joined with cat?): remove it; column {name!r} holds {n} numbers")
        raise InputFileError(
            f"{where}: column {name!r} holds {n} numbers and {shown}: fix the value, "
            f"or pin the column with detectors.types: {{{name}: categorical}}"
        )


def _row_features(obj: dict[str, Any]) -> dict[str, Any]:
    if isinstance(obj.get("features"), dict):
        feats = dict(obj["features"])
        if obj.get("prediction") is not None:
            feats["@prediction"] = obj["prediction"]
        if obj.get("label") is not None:
            feats["@label"] = obj["label"]
        if obj.get("ts") is not None:
            feats[EVENT_TIME] = obj["ts"]  # a FeatureEvent's time (baseline --period), never a feature
        return feats
    return obj


#: The column a FeatureEvent's ``ts`` is read into (taken out before profiling: not a feature).
EVENT_TIME = "@ts"


def _rows_jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    names: set[str] = set()  # checked once each
    for no, line in enumerate(text_lines(path), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise InputFileError(f"{path}:{no}: not JSON ({exc}): JSON Lines hold one object per line") from None
        if not isinstance(obj, dict):
            raise InputFileError(f"{path}:{no}: not a JSON object: JSON Lines hold one object per line")
        row = _row_features(obj)
        for name, value in row.items():
            if isinstance(value, (list, dict)):
                raise InputFileError(
                    f"{path}:{no}: feature {name!r} is a JSON {type(value).__name__}: "
                    "a feature is a number, a string, a boolean or null"
                )
        for name in row.keys() - names:
            problem = name_problem(name)
            if problem is not None:
                raise InputFileError(f"{path}:{no}: feature name {name!r} {problem}")
            names.add(name)
        yield f"{path}:{no}", row


def _rows_parquet(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputFileError(f"{path}: reading Parquet needs pyarrow: pip install 'driftsentinel[parquet]'") from None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputFileError(f"{path}: not a readable Parquet file ({exc})") from None
    names = check_names(table.column_names, str(path))
    data = {name: _parquet_values(path, col, name, table.column(name)) for col, name in enumerate(names, 1)}
    for i in range(table.num_rows):
        yield f"{path}: row {i + 1}", {n: data[n][i] for n in names}


def _parquet_values(path: Path, col: int, name: str, column: Any) -> list[Any]:
    """A Parquet column as feature values: numbers, strings, booleans, None.

    Timestamps and dates become epoch seconds, decimals floats; any other type (lists,
    structs, binary) cannot be a feature value: :class:`InputFileError` naming the column.
    """
    import pyarrow as pa

    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        micros = column.cast(pa.timestamp("us", tz=getattr(kind, "tz", None))).cast(pa.int64()).to_pylist()
        return [None if v is None else v / 1e6 for v in micros]
    if pa.types.is_decimal(kind):
        return list(column.cast(pa.float64()).to_pylist())
    plain = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_string)
    if any(is_type(kind) for is_type in plain) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return list(column.to_pylist())
    raise InputFileError(
        f"{path}: column {col} {name!r} is of type {column.type}: a feature is a number, a string or a boolean; "
        "drop or convert the column"
    )


def read_rows(path: Path, types: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Rows of a CSV, JSON Lines or Parquet file (by extension); the file is read as they are.

    A column mixing numbers and other values raises at the end (:func:`checked_types`;
    ``types``: the configuration's ``detectors.types``).
    """
    suffix = path.suffix.lower()
    readers = {".csv": _rows_csv, ".tsv": _rows_csv, ".jsonl": _rows_jsonl, ".ndjson": _rows_jsonl}
    readers |= {".json": _rows_jsonl, ".parquet": _rows_parquet, ".pq": _rows_parquet}
    reader = readers.get(suffix)
    if reader is None:
        raise InputFileError(f"{path}: unknown format (use .csv, .tsv, .jsonl or .parquet)")
    check_path(path)
    return checked_types(reader(path), types)


def to_columns(rows: Iterable[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows -> columns; a feature absent from a row is missing there."""
    columns: dict[str, list[Any]] = {}
    for n, row in enumerate(rows):  # n: rows before this one
        for name, value in row.items():
            col = columns.get(name)
            if col is None:
                col = columns[name] = [None] * n
            col.append(value)
        for col in columns.values():
            if len(col) <= n:
                col.append(None)
    return columns


def rows_from_topic(
    conf: dict[str, Any], topic: str, from_time: float, to_time: float, timeout_s: float = 120.0
) -> Iterator[dict[str, Any]]:
    """FeatureEvents of ``topic`` whose broker timestamps are in [from_time, to_time)."""
    consumer = Consumer(
        {
            **conf,
            "group.id": f"driftsentinel-baseline-{time.time_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            raise InputFileError(f"topic {topic!r} not found: check --from-topic")
        wanted = [TopicPartition(topic, p, int(from_time * 1000)) for p in meta.partitions]
        starts = consumer.offsets_for_times(wanted, timeout=30)
        live = [tp for tp in starts if tp.offset >= 0]
        if not live:
            return
        past_end = to_time * 1000
        for msg in read_to_end(consumer, live, timeout_s, stop=lambda m: m.timestamp()[1] >= past_end, strict=False):
            try:
                ev = decode_event_fast(msg.value())
            except InvalidEvent:
                continue
            yield event_features(ev)
    finally:
        consumer.close()


def parse_time(text: str) -> float:
    """Epoch seconds from a number or an RFC 3339 string."""
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def make_profile(rows: Iterable[dict[str, Any]], source: str, types: dict[str, Any] | None = None) -> ReferenceProfile:
    """The reference profile of ``rows`` (``types`` pins feature kinds); InputFileError without rows."""
    columns = to_columns(rows)
    if not columns:
        raise InputFileError(f"{source}: no training rows")
    return build_profile(columns, source=source, types=types)


def segment_keys(given: list[str] | None, config: BankConfig) -> list[tuple[str, ...]]:
    """The keys to profile per segment: each ``--segment`` (``country``, or ``country,device`` for
    a combination), else the configuration's ``detectors.segments``."""
    if not given:
        return config.segments.key_fields()
    keys = [tuple(f.strip() for f in text.split(",")) for text in given]
    for key, text in zip(keys, given, strict=True):
        if not all(key):
            raise InputFileError(f"--segment {text!r}: give field names, a combination separated by commas")
    return keys


def add_segments(
    profile: ReferenceProfile,
    columns: dict[str, list[Any]],
    keys: list[tuple[str, ...]],
    config: BankConfig,
) -> ReferenceProfile:
    """``profile`` with its ``segments`` section: per key, the top ``detectors.segments.max_segments``
    segments' shares and feature profiles (a key field must be a column of the training data)."""
    if not keys:
        return profile
    section = {}
    for key in keys:
        fields = tuple("@prediction" if f == "prediction" and f not in columns else f for f in key)
        missing = [f for f in fields if f not in columns]
        if missing:
            raise InputFileError(
                f"--segment {','.join(key)}: no column {missing[0]!r} in the training data "
                f"(columns: {', '.join(sorted(columns)[:20])})"
            )
        section[key_name(key)] = segments_profile(
            columns, fields, profile.source, config.segments.max_segments, config.types
        ).model_copy(update={"key": list(key)})
    return profile.model_copy(update={"segments": section})


def take_event_times(columns: dict[str, list[Any]], period: str | None, time_column: str) -> list[Any] | None:
    """Remove the event times from ``columns`` (FeatureEvents' ``ts`` always: never a feature);
    with ``--period``, return those of ``time_column`` (a FeatureEvent's ``ts`` when it is
    ``ts``), else None. :class:`InputFileError` when the column is not there."""
    event_ts = columns.pop(EVENT_TIME, None)
    if period is None:
        return None
    if time_column in columns:
        return columns.pop(time_column)
    if time_column == "ts" and event_ts is not None:
        return event_ts
    raise InputFileError(
        f"--time-column {time_column!r}: no such column in the training data "
        f"(columns: {', '.join(sorted(columns)[:20])}): name the column holding the event times"
    )


def _floats(values: list[Any]) -> np.ndarray:
    """A numeric column as float64, missing (None) as NaN."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def add_seasonal(
    profile: ReferenceProfile,
    columns: dict[str, list[Any]],
    times: list[Any] | None,
    period: str | None,
    time_column: str,
) -> ReferenceProfile:
    """``profile`` with its ``seasonal`` section (:func:`~driftsentinel.detectors.seasonal_profile.seasonal_profile`)
    over its numeric features; unchanged without ``times`` or ``period``. Random draws are
    seeded: the same data give the same profile."""
    if times is None or period is None:
        return profile
    try:
        t = event_seconds(times)
    except ValueError as exc:
        raise InputFileError(f"--time-column {time_column!r}: {exc}") from None
    numeric = {
        name: _floats(columns[name])
        for name, prof in profile.features.items()
        if isinstance(prof, NumericProfile) and name in columns
    }
    try:
        section, _ = seasonal_profile(t, numeric, period, time_column, np.random.default_rng(0))
    except ValueError as exc:
        raise InputFileError(f"--time-column {time_column!r}: {exc}") from None
    return profile.model_copy(update={"seasonal": section})


def residuals_from_file(
    path: Path, profile: ReferenceProfile, types: dict[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """The reference's own phase-standardised values of each transformed feature of
    ``profile``'s seasonal section, read from the training file the profile was built from
    (``calibrate --data``; :func:`~driftsentinel.detectors.seasonal_profile.reference_residuals`).
    :class:`InputFileError` naming a missing column or a bad event time."""
    section = profile.seasonal
    names = transformed_features(profile)
    if section is None or not names:
        return {}
    columns = to_columns(read_rows(path, types))
    time_column = section.time_column
    if time_column not in columns and not (time_column == "ts" and EVENT_TIME in columns):
        raise InputFileError(
            f"{path.name}: no time column {time_column!r} (the profile's seasonal section reads event times "
            "from it): give the training file the profile was built from"
        )
    times = take_event_times(columns, "given", time_column)
    assert times is not None
    try:
        t = event_seconds(times)
    except ValueError as exc:
        raise InputFileError(f"{path.name}: time column {time_column!r}: {exc}") from None
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name not in columns:
            raise InputFileError(
                f"{path.name}: no column {name!r} (a seasonal feature of the profile): "
                "give the training file the profile was built from"
            )
        try:
            x = _floats(columns[name])
        except (TypeError, ValueError):
            raise InputFileError(
                f"{path.name}: column {name!r} holds non-numbers (a numeric feature of the profile)"
            ) from None
        out[name] = reference_residuals(section, name, t, x)
    return out
