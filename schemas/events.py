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
        if value is None or isinstance(value, bool):
            if isinstance(value, bool):
                raise ValueError("ts must be epoch seconds or an RFC 3339 string")
            return None
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            text = value.strip()
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            try:
                return datetime.fromisoformat(text).timestamp()
            except ValueError as exc:
                raise ValueError(f"ts is not RFC 3339: {value!r}") from exc
        raise ValueError("ts must be epoch seconds or an RFC 3339 string")


def _reject_non_finite(obj: dict[str, Any]) -> None:
    for name, value in obj.get("features", {}).items():
        if isinstance(value, float) and math.isinf(value):
            raise InvalidEvent("non_finite_value", f"feature {name!r} is infinite")


def decode_event(raw: bytes | None) -> FeatureEvent:
    """Decode and validate one Kafka message value.

    Raises :class:`InvalidEvent` with a bounded ``reason`` on anything that is not a
    valid FeatureEvent. JSON ``NaN`` is read as missing; infinities are rejected.
    """
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
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidEvent("not_json", str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise InvalidEvent("not_object", f"top level is {type(obj).__name__}")
    if "features" not in obj:
        raise InvalidEvent("missing_features", "no 'features' field")
    if isinstance(obj["features"], dict):
        _reject_non_finite(obj)
    try:
        event = FeatureEvent.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidEvent("wrong_type", f"{where}: {first['msg']}"[:200]) from None
    return event


def encode_event(event: FeatureEvent) -> bytes:
    """Serialise an event the way producers send it (used by the demo)."""
    return json.dumps(event.model_dump(exclude_none=False), separators=(",", ":")).encode()
