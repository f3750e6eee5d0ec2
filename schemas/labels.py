"""LabelEvent: the true outcome of a served request, arriving later on a labels topic.

Labels often come minutes or days after the prediction (a chargeback, a click, a human
review). A labels producer sends the request's ``id`` — the same ``id`` as the
FeatureEvent that carried the prediction — and the label::

    {"id": "req-1", "label": 1, "model": "fraud-v3", "ts": 1767229200}

``model`` and ``ts`` are optional (the prediction's event knows its model). The labels
topic must be partitioned like the input topic: the same partition count, and each label
in the same partition number as its FeatureEvent (produce both with the same key).

>>> decode_label(b'{"id": "req-1", "label": true}').label
True
>>> try:
...     decode_label(b'{"label": 1}')
... except InvalidEvent as exc:
...     print(exc.reason)
missing_id
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from driftsentinel.schemas.events import InvalidEvent, non_finite, parse_object, parse_ts, validation_failure


class LabelEvent(BaseModel):
    """One request's true outcome, joined to its prediction by ``id``."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, allow_inf_nan=False
    )  # finite labels; JSON ints read as floats

    id: str = Field(min_length=1, description="The request id of the FeatureEvent that carried the prediction.")
    label: bool | float | str = Field(description="The true class, number or boolean.")
    model: str | None = Field(default=None, description="Model name (informational; the prediction's wins).")
    ts: float | None = Field(default=None, description="When the label became known, epoch seconds.")

    @field_validator("ts", mode="before")
    @classmethod
    def _parse_ts(cls, value: Any) -> float | None:
        return parse_ts(value)


def decode_label(raw: bytes | None) -> LabelEvent:
    """Decode and validate one labels-topic message value.

    Raises :class:`InvalidEvent` (reasons ``empty``, ``too_large``, ``not_utf8``,
    ``not_json``, ``not_object``, ``missing_id``, ``missing_label``, ``wrong_type``,
    ``non_finite_value``): such messages go to the DLQ like bad feature events.
    """
    obj = parse_object(raw)
    if obj.get("id") in (None, ""):
        raise InvalidEvent("missing_id", "no 'id' field: a label is joined to its prediction by id")
    if obj.get("label") is None:
        raise InvalidEvent("missing_label", "no 'label' field")
    label = obj["label"]
    if non_finite(label) or label != label:  # infinite, beyond float range, or NaN
        raise InvalidEvent("non_finite_value", "label is not a finite number")
    try:
        return LabelEvent.model_validate(obj)
    except ValidationError as exc:
        raise validation_failure(exc) from None
