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

from confluent_kafka import Consumer, TopicPartition

from driftsentinel.detectors.batching import event_features
from driftsentinel.detectors.profile import build_profile
from driftsentinel.schemas import InvalidEvent
from driftsentinel.schemas.fastdecode import decode_event_fast
from driftsentinel.schemas.profile import ReferenceProfile
from driftsentinel.stream.input_files import InputFileError, check_names, check_path, name_problem, read_csv, text_lines
from driftsentinel.stream.topic_reader import read_to_end


def _cell(text: str) -> Any:
    """A CSV cell as a value: '' and NaN are missing, numbers are numbers, the rest text.

    >>> _cell("12"), _cell("0.5"), _cell(""), _cell("nan"), _cell("pro"), _cell("1_000"), _cell("inf")
    (12, 0.5, None, None, 'pro', '1_000', 'inf')
    """
    if text == "":
        return None
    if "_" in text:  # int() and float() accept digit separators; a CSV number has none
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    if math.isnan(value):
        return None
    return value if math.isfinite(value) else text


def _rows_csv(path: Path) -> Iterator[dict[str, Any]]:
    header, rows = read_csv(path)
    for _, fields in rows:
        yield {name: _cell(text) for name, text in zip(header, fields, strict=True)}


def _row_features(obj: dict[str, Any]) -> dict[str, Any]:
    if isinstance(obj.get("features"), dict):
        feats = dict(obj["features"])
        if obj.get("prediction") is not None:
            feats["@prediction"] = obj["prediction"]
        if obj.get("label") is not None:
            feats["@label"] = obj["label"]
        return feats
    return obj


def _rows_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    names: set[str] = set()  # checked once each
    for no, line in enumerate(text_lines(path), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise InputFileError(f"{path}:{no}: not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise InputFileError(f"{path}:{no}: not a JSON object")
        row = _row_features(obj)
        for name in row.keys() - names:
            problem = name_problem(name)
            if problem is not None:
                raise InputFileError(f"{path}:{no}: feature name {name!r} {problem}")
            names.add(name)
        yield row


def _rows_parquet(path: Path) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("reading Parquet needs pyarrow: pip install 'driftsentinel[parquet]'") from None
    check_path(path)
    import pyarrow as pa

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputFileError(f"{path}: not a readable Parquet file ({exc})") from None
    names = check_names(table.column_names, str(path))
    data = table.to_pydict()
    for i in range(table.num_rows):
        yield {n: data[n][i] for n in names}


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a CSV, JSON Lines or Parquet file (by extension); the file is read as they are."""
    if path.is_dir():
        raise InputFileError(f"{path}: is a directory; give a file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _rows_csv(path)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _rows_jsonl(path)
    if suffix in (".parquet", ".pq"):
        return _rows_parquet(path)
    raise InputFileError(f"{path}: unknown format (use .csv, .tsv, .jsonl or .parquet)")


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
            raise ValueError(f"topic {topic!r} not found")
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
    """The reference profile of ``rows`` (``types`` pins feature kinds); ValueError without rows."""
    columns = to_columns(rows)
    if not columns:
        raise ValueError(f"{source}: no training rows")
    return build_profile(columns, source=source, types=types)
