"""DriftEvent: one message of the alerts topic (key ``model/feature``).

A ``drift`` event says a detector found that a feature's live data changed; the matching
``resolved`` event says it looks like its reference again. ``event_id`` is derived from
where in the input the decision was made, so a replay of the same input yields the same
ids (consumers can de-duplicate on it).

Schema 1.1 (``schema_version`` stays 1, the major; ``SCHEMA_MINOR`` is 1) adds
``change_point`` to ``drift`` events of the change detectors (``adwin``, ``page_hinkley``),
whose ``window`` then summarises the values since that change point. Every other event
serialises exactly as in 1.0 (``change_point`` is left out when null).

Schema 1.2 (``SCHEMA_MINOR`` 2) adds ``detectors`` to every event: the detectors of one
feature episode (one change, one alert). On a ``drift`` event, every detector that decided
``drift`` at that same event (the one with the earliest change point first: ``detector``);
on a ``resolved`` event, every detector that joined the episode while it was open. ``detector``
is kept until the next major version: the detector that opened the episode, on both its
events, so it is always ``detectors[0]``. An event built without ``detectors`` (a 1.1
document) gets ``[detector]``.

Schema 1.3 (``SCHEMA_MINOR`` 3) adds ``segment`` ({key, value}) to the events of a segment's
detectors (``detectors.segments``): the decision is about the rows whose ``key`` (a field, or
fields joined by ``|``) has ``value`` (``__other__``: the values beyond ``max_segments``,
pooled), against that segment's own reference. Events of the overall stream, and the
``segment_mix`` events (feature ``@segment:<key>``), have none: it is left out of the JSON.
A segment's event id differs from the overall event's of the same position and detector.

>>> ev = DriftEvent(event_id=make_event_id("g", "features", 0, 25031, "f0", "adwin", "drift"),
...     model="m", feature="f0", detector="adwin", status="drift", severity="warning",
...     statistic=1.02, statistic_name="mean_shift_sigma", threshold=None,
...     source=SourcePosition(topic="features", partition=0, offset=25031),
...     event_time=None, detected_at=0.0,
...     window=WindowSummary(count=10, mean=1.0, std=1.0, quantiles={}, missing_ratio=0.0),
...     reference=None)
>>> ev.key, ev.detectors
('m/f0', ['adwin'])
>>> len(ev.event_id)
32
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

SCHEMA_VERSION = 1
#: Additions within major version 1: 1 = ``change_point``, 2 = ``detectors``, 3 = ``segment``
#: (see the module docstring).
SCHEMA_MINOR = 3

Status = Literal["drift", "resolved"]
Severity = Literal["info", "warning", "critical"]


class SourcePosition(BaseModel):
    """Where in the input the decision was made."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    partition: int
    offset: int = Field(description="Offset of the event at which the detector decided.")
    row: int | None = Field(
        default=None, description="Row of that event inside a columnar batch message; absent for one-event messages."
    )

    @model_serializer(mode="wrap")
    def _omit_absent_row(self, handler: Any) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if out.get("row", 0) is None:  # one-event messages: the alert reads as before columnar batches
            del out["row"]
        return out


class WindowSummary(BaseModel):
    """Summary of a window of one feature's values (raw units)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(description="Number of non-missing values.")
    mean: float | None
    std: float | None
    quantiles: dict[str, float] = Field(description="e.g. {'p05': .., 'p50': .., 'p95': ..}")
    missing_ratio: float | None = Field(description="Missing values / events in the window.")
    categories: dict[str, float] | None = Field(
        default=None, description="Categorical features: share of the most frequent categories (top 10)."
    )


class ChangePoint(BaseModel):
    """Where a change detector put the change it reports (the values since it are what the
    event's ``window`` summarises)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    values_since: int = Field(
        ge=1,
        description="Values of the feature the detector saw from its change point estimate through the "
        "detection, that value included. adwin: the sub-window after its cut (the window it keeps after "
        "dropping the older part); page_hinkley: the values after the extreme of its cumulative sum.",
    )
    events_since: int | None = Field(
        default=None,
        ge=1,
        description="Events from the first value after the change point through the detection (missing "
        "values included); null when the change point is older than the events kept for evidence.",
    )


class Segment(BaseModel):
    """The slice of the traffic an event is about (schema 1.3)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="The segment key: a field name, or a combination's names joined by '|'.")
    value: str = Field(
        description="The key's value (a combination's joined by '|'); __other__: the values pooled beyond "
        "detectors.segments.max_segments."
    )


class DriftEvent(BaseModel):
    """A drift decision about one feature of one model, with its evidence."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"x-schema-version": f"{SCHEMA_VERSION}.{SCHEMA_MINOR}"}
    )

    event_id: str = Field(
        description="Deterministic: hash of group, topic, partition, offset, feature, detector, status."
    )
    schema_version: int = SCHEMA_VERSION
    model: str
    feature: str
    detector: str = Field(
        description="adwin | page_hinkley | ... (open set; new detectors add names). The detector that opened "
        "the feature's episode (on its drift and its resolved event); always detectors[0]. Kept until the next "
        "major version: read `detectors`."
    )
    detectors: list[str] = Field(
        default_factory=list,
        description="Schema 1.2: the detectors of this feature episode, `detector` first. drift: every detector "
        "that decided drift at this event (source); resolved: every detector that joined the episode while it "
        "was open. Never empty (an event built without it gets [detector]).",
    )
    status: Status
    severity: Severity
    statistic: float | None = Field(description="The detector's statistic at the decision.")
    statistic_name: str = Field(description="What `statistic` measures, e.g. mean_shift_sigma, cusum.")
    threshold: float | None = Field(description="The threshold the statistic was compared with, if any.")
    source: SourcePosition
    event_time: float | None = Field(description="ts of the event at `source` (epoch seconds).")
    detected_at: float = Field(description="Wall-clock epoch seconds when the sidecar decided.")
    window: WindowSummary = Field(
        description="The live window of the feature; for a change detector's drift event, the values since "
        "its change point (the last of them, at most the events kept for evidence)."
    )
    reference: WindowSummary | None = Field(description="The baseline the live window is compared with.")
    evidence: dict[str, Any] | None = Field(
        default=None,
        description="Detector-specific evidence beyond the summaries (skew: sample ids with both values, "
        "ratio, swapped category pairs; shadow_divergence: agreement, distance, error distribution). "
        "null for adwin/page_hinkley.",
    )
    """Optional, JSON-ready detail of a ``skew`` or ``shadow_divergence`` decision; ``None`` otherwise."""
    change_point: ChangePoint | None = Field(
        default=None,
        description="Schema 1.1: a change detector's (adwin, page_hinkley) change point estimate, on its "
        "drift events; left out of the JSON otherwise.",
    )

    segment: Segment | None = Field(
        default=None,
        description="Schema 1.3: the segment (key, value) whose own detectors decided; left out of the JSON "
        "for the overall stream's events.",
    )

    @model_validator(mode="before")
    @classmethod
    def _detectors_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("detectors") and isinstance(data.get("detector"), str):
            data = {**data, "detectors": [data["detector"]]}  # a 1.1 document, or one detector
        return data

    @model_validator(mode="after")
    def _opener_first(self) -> DriftEvent:
        if not self.detectors or self.detectors[0] != self.detector:
            raise ValueError(f"detectors must start with detector {self.detector!r}, got {self.detectors!r}")
        if len(set(self.detectors)) != len(self.detectors):
            raise ValueError(f"detectors must not repeat a name, got {self.detectors!r}")
        return self

    @model_serializer(mode="wrap")
    def _omit_absent_change_point(self, handler: Any) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if "change_point" in out and out["change_point"] is None:  # other events read as in 1.0
            del out["change_point"]
        if "segment" in out and out["segment"] is None:  # events of the overall stream read as in 1.2
            del out["segment"]
        return out

    @property
    def key(self) -> str:
        """Kafka message key: ``model/feature``."""
        return f"{self.model}/{self.feature}"


def make_event_id(
    group: str,
    topic: str,
    partition: int,
    offset: int,
    feature: str,
    detector: str,
    status: str,
    row: int | None = None,
) -> str:
    """Stable id of a decision: the same input position always gives the same id."""
    position = str(offset) if row is None else f"{offset}.{row}"
    raw = "\x1f".join([group, topic, str(partition), position, feature, detector, status])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
