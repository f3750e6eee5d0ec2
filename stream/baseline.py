"""``driftsentinel baseline``: read training data, write a reference profile.

Inputs: CSV (header row; empty cells and NaN are missing; numbers are parsed, anything
else stays a string), JSON Lines (FeatureEvents, or flat objects of feature -> value),
Parquet (``pip install driftsentinel[parquet]``), or a Kafka topic between two times.
The statistics are :func:`detectors.profile.build_profile`'s; this module only reads.
"""

from __future__ import annotations

import csv
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
from driftsentinel.stream.topic_reader import read_to_end


def _cell(text: str) -> Any:
    """A CSV cell as a value: '' and NaN are missing, numbers are numbers, the rest text."""
    if text == "":
        return None
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
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            yield {k: _cell(v) for k, v in row.items() if k is not None}


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
    with path.open("rb") as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{no}: not JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{no}: not a JSON object")
            yield _row_features(obj)


def _rows_parquet(path: Path) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("reading Parquet needs pyarrow: pip install 'driftsentinel[parquet]'") from None
    table = pq.read_table(path).to_pydict()
    names = list(table)
    for i in range(len(table[names[0]]) if names else 0):
        yield {n: table[n][i] for n in names}


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a CSV, JSON Lines or Parquet file (by extension)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _rows_csv(path)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _rows_jsonl(path)
    if suffix in (".parquet", ".pq"):
        return _rows_parquet(path)
    raise ValueError(f"{path}: unknown format (use .csv, .jsonl or .parquet)")


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
    columns = to_columns(rows)
    if not columns:
        raise ValueError(f"{source}: no training rows")
    return build_profile(columns, source=source, types=types)
