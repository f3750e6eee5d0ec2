"""FeatureEvent: one message of the input topic, and its decoder.

A producer logs what the model saw when it served a request::

    {"model": "fraud-v3", "ts": 1767225600.5, "id": "req-1",
     "features": {"amount": 12.5, "country": "DE", "age": null},
     "prediction": 0.83, "label": null}

``features`` is required; ``null`` (or a JSON ``NaN``) means missing. ``ts`` is epoch
seconds or an RFC 3339 string.

>>> ev = decode_event(b'{"model": "m", "ts": 10, "features": {"x": 1.5, "c": "DE"}}')
>>> ev.features["x"], ev.ts
(1.5, 10.0)
>>> try:
...     decode_event(b'{"model": "m"}')
... except InvalidEvent as exc:
...     print(exc.reason)
missing_features
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

#: Reasons an event is rejected. A closed set: it is a Prometheus label value and a DLQ header.
InvalidReason = Literal[
    "empty",
    "too_large",
    "not_utf8",
    "not_json",
    "not_object",
    "missing_features",
    "wrong_type",
    "non_finite_value",
    "missing_id",
    "missing_label",
    "not_columns",
    "wrong_length",
]

#: Events larger than this are rejected before parsing (a 10 MB value must not stall the loop).
MAX_EVENT_BYTES = 1_000_000

FeatureValue = float | int | bool | str | None


class InvalidEvent(ValueError):
    """Raised by :func:`decode_event`; ``reason`` is one of :data:`InvalidReason`."""

    def __init__(self, reason: InvalidReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: InvalidReason = reason
        self.detail = detail


class FeatureEvent(BaseModel):
    """One served request's features (and optionally its prediction and label)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model: str | None = Field(default=None, description="Model name, e.g. 'fraud-v3'.")
    ts: float | None = Field(default=None, description="Event time, epoch seconds.")
    id: str | None = Field(default=None, description="Request or entity id.")
    features: dict[str, FeatureValue] = Field(description="Feature name -> value; null = missing.")
    prediction: float | str | None = None
    label: float | str | None = None

    @field_validator("ts", mode="before")
    @classmethod
    def _parse_ts(cls, value: Any) -> float | None:
        return parse_ts(value)


def parse_ts(value: Any) -> float | None:
    """Epoch seconds from a number or an RFC 3339 string; ``ValueError`` otherwise.

    >>> parse_ts("1970-01-01T00:01:00Z"), parse_ts(5), parse_ts(None)
    (60.0, 5.0, None)
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("ts must be epoch seconds or an RFC 3339 string")
    if isinstance(value, (int, float)):
        try:
            ts = float(value)
        except OverflowError:
            raise ValueError("ts is beyond float range") from None
        if ts - ts != 0.0:
            raise ValueError("ts must be finite")
        return ts
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError as exc:
            raise ValueError(f"ts is not RFC 3339: {value!r}") from exc
    raise ValueError("ts must be epoch seconds or an RFC 3339 string")


def non_finite(value: Any) -> bool:
    """An infinite float, or an int beyond float range (NaN is not: it reads as missing).

    >>> non_finite(float("inf")), non_finite(10**400), non_finite(1.5), non_finite(float("nan"))
    (True, True, False, False)
    """
    if isinstance(value, float):
        return math.isinf(value)
    return isinstance(value, int) and not isinstance(value, bool) and not -_MAX_FLOAT <= value <= _MAX_FLOAT


def _reject_non_finite(obj: dict[str, Any]) -> None:
    features = obj.get("features")
    for name, value in features.items() if isinstance(features, dict) else ():
        if non_finite(value):
            raise InvalidEvent("non_finite_value", f"feature {name!r} is infinite or beyond float range")
    for name in ("prediction", "label"):
        if non_finite(obj.get(name)):
            raise InvalidEvent("non_finite_value", f"{name} is infinite or beyond float range")


def _reject_surrogates(obj: Any) -> None:
    """JSON may escape lone UTF-16 surrogates (``"\\ud800"``): valid syntax, but no text."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidEvent("not_utf8", "string with a lone surrogate escape") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


_MAX_FLOAT = 1.7976931348623157e308


def parse_object(raw: bytes | None) -> dict[str, Any]:
    """A message value as a JSON object, or :class:`InvalidEvent` (``empty``, ``too_large``,
    ``not_utf8``, ``not_json``, ``not_object``): the checks every input topic shares."""
    if not raw:
        raise InvalidEvent("empty", "message has no value")
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent("too_large", f"{len(raw)} bytes > {MAX_EVENT_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("not_utf8", str(exc)) from None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, or an int of > 4300 digits
        raise InvalidEvent("not_json", str(exc)[:200]) from None
    if "\\u" in text:
        _reject_surrogates(obj)
    if not isinstance(obj, dict):
        raise InvalidEvent("not_object", f"top level is {type(obj).__name__}")
    return obj


def validation_failure(exc: ValidationError) -> InvalidEvent:
    """pydantic's first complaint as a ``wrong_type`` rejection naming the field."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return InvalidEvent("wrong_type", f"{where}: {first['msg']}"[:200])


def decode_event(raw: bytes | None) -> FeatureEvent:
    """Decode and validate one Kafka message value.

    Raises :class:`InvalidEvent` with a bounded ``reason`` on anything that is not a
    valid FeatureEvent. JSON ``NaN`` is read as missing; infinities are rejected.
    """
    obj = parse_object(raw)
    if "features" not in obj:
        raise InvalidEvent("missing_features", "no 'features' field")
    _reject_non_finite(obj)
    try:
        return FeatureEvent.model_validate(obj)
    except ValidationError as exc:
        raise validation_failure(exc) from None


def encode_event(event: FeatureEvent) -> bytes:
    """Serialise an event the way producers send it (used by the demo)."""
    return json.dumps(event.model_dump(exclude_none=False), separators=(",", ":")).encode()
