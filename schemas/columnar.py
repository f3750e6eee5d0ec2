"""Columnar batches: many events in one Kafka message, for producers that want more.

A producer that already holds features as arrays (a batch scorer, a feature logger) can
send up to :data:`MAX_ROWS` events in one message: a msgpack map of columns, numeric
columns as little-endian float64 bytes (NaN = missing), so the sidecar builds its matrix
without parsing a number::

    {"format": "driftsentinel.columns/1", "rows": 3, "model": "fraud-v3",
     "numeric": {"amount": <24 bytes: 3 x float64 LE>},
     "categorical": {"country": ["DE", null, "FR"]},
     "ts": <24 bytes>, "id": ["r1", "r2", "r3"], "prediction": [0.8, 0.1, 0.5], "label": null}

Only ``format`` (the map's first key), ``rows`` and ``numeric`` or ``categorical`` are
needed. The sidecar tells the two formats apart by that start (JSON starts with ``{``), so
one topic may carry both. A malformed batch goes to the DLQ whole, with a reason. An alert found in a batch
names the message's offset and the row inside it (``source.row``).

>>> import numpy as np
>>> raw = encode_columns(numeric={"x": np.array([1.0, np.nan])}, categorical={"c": ["a", None]}, model="m")
>>> is_columnar(raw), is_columnar(b'{"features": {}}')
(True, False)
>>> cb = decode_columns(raw)
>>> cb.rows, cb.model, cb.numeric["x"].tolist()[0], cb.categorical["c"]
(2, 'm', 1.0, ['a', None])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from driftsentinel.schemas.events import InvalidEvent

FORMAT = "driftsentinel.columns/1"
#: Rows per message, and bytes per message, the sidecar accepts.
MAX_ROWS = 100_000
MAX_BATCH_BYTES = 16 * 1024 * 1024

Scalar = float | str | None


class _Wire(msgspec.Struct, frozen=True):
    format: str
    rows: int
    numeric: dict[str, bytes] = {}
    categorical: dict[str, list[str | None]] = {}
    model: str | None = None
    ts: bytes | None = None
    id: list[str | None] | None = None
    prediction: list[Scalar] | None = None
    label: list[Scalar] | None = None


_decoder = msgspec.msgpack.Decoder(_Wire)
_encoder = msgspec.msgpack.Encoder()


@dataclass(frozen=True)
class ColumnBatch:
    """A decoded columnar message: every column has ``rows`` entries."""

    rows: int
    model: str | None
    numeric: dict[str, np.ndarray]  # float64 [rows], NaN = missing
    categorical: dict[str, list[str | None]]
    ts: np.ndarray  # float64 [rows] epoch seconds, NaN = none
    id: list[str | None] | None = None
    prediction: list[Scalar] | None = None
    label: list[Scalar] | None = None


_FIRST_KEY = b"\xa6format"  # msgpack str "format"


def is_columnar(raw: bytes | None) -> bool:
    """True when ``raw`` is a msgpack map whose first key is ``"format"`` (JSON starts with ``{``)."""
    if not raw:
        return False
    head = raw[0]
    if 0x80 <= head <= 0x8F:  # fixmap
        return raw[1:8] == _FIRST_KEY
    if head == 0xDE:  # map16
        return raw[3:10] == _FIRST_KEY
    return head == 0xDF and raw[5:12] == _FIRST_KEY  # map32


def _floats(blob: bytes, rows: int, what: str) -> np.ndarray:
    if len(blob) != 8 * rows:
        raise InvalidEvent("wrong_length", f"{what}: {len(blob)} bytes for {rows} rows of float64")
    arr = np.frombuffer(blob, dtype="<f8")
    if np.isinf(arr).any():
        raise InvalidEvent("non_finite_value", f"{what} holds an infinity")
    return arr


def _same_length(column: list[Any] | None, rows: int, what: str) -> None:
    if column is not None and len(column) != rows:
        raise InvalidEvent("wrong_length", f"{what}: {len(column)} entries for {rows} rows")


def decode_columns(raw: bytes) -> ColumnBatch:
    """Decode and validate one columnar message; :class:`InvalidEvent` on anything wrong."""
    if len(raw) > MAX_BATCH_BYTES:
        raise InvalidEvent("too_large", f"{len(raw)} bytes > {MAX_BATCH_BYTES}")
    try:
        wire = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidEvent("wrong_type", str(exc)[:200]) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidEvent("not_columns", str(exc)[:200]) from None
    if wire.format != FORMAT:
        raise InvalidEvent("not_columns", f"format {wire.format!r}, expected {FORMAT!r}")
    if not 0 < wire.rows <= MAX_ROWS:
        raise InvalidEvent("wrong_length", f"rows {wire.rows} not in 1..{MAX_ROWS}")
    if not wire.numeric and not wire.categorical:
        raise InvalidEvent("missing_features", "no 'numeric' or 'categorical' columns")
    rows = wire.rows
    numeric = {name: _floats(blob, rows, f"numeric[{name!r}]") for name, blob in wire.numeric.items()}
    for name, column in wire.categorical.items():
        _same_length(column, rows, f"categorical[{name!r}]")
    for what in ("id", "prediction", "label"):
        _same_length(getattr(wire, what), rows, what)
    for what in ("prediction", "label"):
        for value in getattr(wire, what) or ():
            if value.__class__ is float and value - value != 0.0:
                raise InvalidEvent("non_finite_value", f"{what} holds a non-finite number")
    ts = _floats(wire.ts, rows, "ts") if wire.ts is not None else np.full(rows, np.nan)
    return ColumnBatch(
        rows=rows,
        model=wire.model,
        numeric=numeric,
        categorical=dict(wire.categorical),
        ts=ts,
        id=wire.id,
        prediction=wire.prediction,
        label=wire.label,
    )


def encode_columns(
    *,
    numeric: dict[str, Any] | None = None,
    categorical: dict[str, list[str | None]] | None = None,
    model: str | None = None,
    ts: Any = None,
    id: list[str | None] | None = None,  # noqa: A002 (the contract's field name)
    prediction: list[Scalar] | None = None,
    label: list[Scalar] | None = None,
) -> bytes:
    """One columnar message from arrays (numeric columns: anything ``np.asarray`` takes)."""
    numeric = {name: np.ascontiguousarray(col, dtype="<f8") for name, col in (numeric or {}).items()}
    categorical = dict(categorical or {})
    lengths = {len(c) for c in numeric.values()} | {len(c) for c in categorical.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns need one common length, got {sorted(lengths)}")
    rows = lengths.pop()
    doc: dict[str, Any] = {
        "format": FORMAT,
        "rows": rows,
        "numeric": {name: col.tobytes() for name, col in numeric.items()},
        "categorical": categorical,
    }
    if model is not None:
        doc["model"] = model
    if ts is not None:
        doc["ts"] = np.ascontiguousarray(ts, dtype="<f8").tobytes()
    for key, value in (("id", id), ("prediction", prediction), ("label", label)):
        if value is not None:
            doc[key] = list(value)
    return _encoder.encode(doc)
