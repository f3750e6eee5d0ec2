"""Configuration of the train/serve skew check and the shadow-model comparison.

``driftsentinel skew`` joins the serving features (the sidecar's input topic) with the
offline-computed features of the same entities (a second topic, or a JSON Lines/CSV file)
on the event ``id``, compares them value by value, and pairs the predictions of two model
versions on the same traffic. Every section forbids unknown keys:

>>> cfg = SkewSidecarConfig.model_validate(
...     {"skew": {"tolerances": {"latency": {"rel_tol": 0.01}}, "window": {"max_pending": 5000}}})
>>> cfg.skew.tolerance("latency").rel_tol, cfg.skew.tolerance("other").abs_tol
(0.01, 1e-09)
>>> cfg.skew.window.max_pending, cfg.shadow is None
(5000, True)
>>> try:
...     load_skew_config(None, {"skew.mismatch_threshold": 2})
... except ConfigError as exc:
...     print(str(exc).splitlines()[1])
  skew.mismatch_threshold: Input should be less than or equal to 1
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from driftsentinel.schemas.alerts import DriftEvent
from driftsentinel.schemas.config import (  # noqa: F401 (ConfigError: part of this module's API)
    LIBRDKAFKA_FIELD,
    PATH_FIELD,
    ConfigError,
    RunConfig,
    load_model,
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureTolerance(_Section):
    """When two values of a feature count as "the same".

    Numbers ``s`` (serving) and ``o`` (offline) agree when
    ``|s - o| <= max(abs_tol, rel_tol * max(|s|, |o|))`` (``math.isclose``); both missing
    agree, one missing does not. Strings and booleans, or any feature with
    ``categorical: true``, agree only when equal.
    """

    abs_tol: float = Field(default=1e-9, ge=0, description="Absolute tolerance.")
    rel_tol: float = Field(default=1e-9, ge=0, description="Relative tolerance.")
    categorical: bool = Field(
        default=False, description="Compare as category codes (exact) and count mismatching pairs, even for numbers."
    )
    mismatch_threshold: float | None = Field(
        default=None, ge=0, le=1, description="Override of skew.mismatch_threshold for this feature."
    )


class JoinWindow(_Section):
    """How long an id waits for its partner; past this it is counted unmatched and forgotten.

    Both limits hold at once: at most ``max_pending`` ids per side, each at most
    ``max_age_s`` seconds old (``clock: arrival`` = when the sidecar read it,
    ``clock: event`` = the events' ``ts``, against the newest ``ts`` seen).
    """

    max_pending: int = Field(default=100_000, ge=1, le=10_000_000, description="Pending ids per side.")
    max_age_s: float = Field(default=300.0, gt=0, description="Seconds an id may wait for its partner.")
    clock: Literal["arrival", "event"] = "arrival"


class SkewConfig(_Section):
    """Value-by-value comparison of serving and offline features."""

    enabled: bool = True
    window: JoinWindow = Field(default_factory=JoinWindow)
    window_pairs: int = Field(
        default=5000, ge=10, description="Joined pairs per evaluation (tumbling window, arrival order)."
    )
    min_pairs: int = Field(
        default=500, ge=1, description="A partial window (on time, or at exit) is evaluated only with this many pairs."
    )
    window_s: float | None = Field(
        default=300.0,
        gt=0,
        description="Also evaluate the current window after this many seconds (arrival clock) when it holds "
        "min_pairs pairs, so slow streams are not judged hours late. null: by count only.",
    )
    mismatch_threshold: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="A feature is skewed when its share of out-of-tolerance pairs exceeds this.",
    )
    critical_mismatch: float = Field(
        default=0.2, ge=0, le=1, description="Severity 'critical' at or above this mismatch share, else 'warning'."
    )
    default_tolerance: FeatureTolerance = Field(default_factory=FeatureTolerance)
    tolerances: dict[str, FeatureTolerance] = Field(default_factory=dict, description="Per-feature tolerances.")
    include: list[str] | None = Field(default=None, description="Compare only these features.")
    exclude: list[str] = Field(default_factory=list)
    max_features: int = Field(default=1000, ge=1, description="Features compared per model (first seen first).")
    sample_size: int = Field(default=10, ge=0, le=1000, description="Mismatching ids kept as evidence per window.")
    top_pairs: int = Field(default=5, ge=1, le=100, description="Top mismatching category pairs reported.")
    max_tracked_pairs: int = Field(
        default=1000, ge=1, description="Distinct category pairs counted per feature and window (the rest: 'other')."
    )

    def tolerance(self, feature: str) -> FeatureTolerance:
        """The tolerance of ``feature`` (its own, else the default)."""
        return self.tolerances.get(feature, self.default_tolerance)

    def threshold(self, feature: str) -> float:
        """The mismatch-share threshold of ``feature``."""
        own = self.tolerance(feature).mismatch_threshold
        return self.mismatch_threshold if own is None else own


class ShadowConfig(_Section):
    """Pair the predictions of two model versions on the same traffic (same ``id``).

    The two streams are the serving topic's events whose ``model`` (or, with
    ``version_field``, that top-level field) is ``baseline`` or ``candidate``.
    """

    baseline: str = Field(min_length=1, description="The production model (name or version).")
    candidate: str = Field(min_length=1, description="The shadow model (name or version).")
    version_field: str | None = Field(
        default=None, description="Top-level event field holding the version (default: the 'model' field)."
    )
    kind: Literal["auto", "classes", "scores"] = Field(
        default="auto", description="auto: strings or whole numbers are classes, other numbers scores."
    )
    window_pairs: int = Field(default=1000, ge=10, description="Paired predictions per evaluation (tumbling).")
    min_agreement: float = Field(
        default=0.9, ge=0, le=1, description="Divergent when the share of agreeing predictions falls below this."
    )
    score_tolerance: float = Field(
        default=0.05, ge=0, description="Scores agree when they differ by at most this (absolute)."
    )
    max_distance: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Divergent when the distance of the two prediction distributions exceeds this "
        "(Jensen-Shannon, base 2, for classes; Kolmogorov-Smirnov for scores).",
    )
    max_classes: int = Field(default=100, ge=2, description="Distinct classes tracked (the rest: 'other').")
    sample_size: int = Field(default=10, ge=0, le=1000, description="Disagreeing ids kept as evidence per window.")

    @model_validator(mode="after")
    def _distinct(self) -> ShadowConfig:
        if self.baseline == self.candidate:
            raise ValueError("baseline and candidate must differ")
        return self


class SkewSources(_Section):
    """Where the two sides come from and where the alerts go."""

    bootstrap_servers: str = "127.0.0.1:9092"
    serving_topic: str = Field(default="features", min_length=1, description="The model server's feature log.")
    offline_topic: str | None = Field(default=None, description="Offline-computed features, same FeatureEvent format.")
    offline_file: str | None = Field(
        default=None,
        description="...or a JSON Lines / CSV export, replayed in order; relative to the config file's folder.",
        json_schema_extra=PATH_FIELD,
    )
    alerts_topic: str = Field(default="drift-alerts", min_length=1)
    group_id: str = Field(default="driftsentinel-skew", min_length=1)
    model: str | None = Field(default=None, description="Only serving events of this model are joined (default: all).")
    common: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="librdkafka properties for every client (security, client.id).",
        json_schema_extra=LIBRDKAFKA_FIELD,
    )

    @model_validator(mode="after")
    def _one_offline(self) -> SkewSources:
        if self.offline_topic and self.offline_file:
            raise ValueError("set offline_topic or offline_file, not both")
        return self


class SkewSidecarConfig(RunConfig):
    """Everything ``driftsentinel skew`` needs."""

    sources: SkewSources = Field(default_factory=SkewSources)
    skew: SkewConfig = Field(default_factory=SkewConfig)
    shadow: ShadowConfig | None = None


def load_skew_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> SkewSidecarConfig:
    """Read a YAML file (optional), apply dotted-key overrides (``None`` = not given), validate.

    >>> load_skew_config(None, {"sources.serving_topic": "t", "metrics_port": 0}).sources.serving_topic
    't'
    """
    return load_model(SkewSidecarConfig, path, overrides)


# ---------------------------------------------------------------------- the skew engine's input and output
class OfflineRow(NamedTuple):
    """One offline-side row: an entity's id, its features, its event time (epoch seconds, if known).

    A tuple, so a reader's rows compare equal to plain ``(id, features, ts)`` tuples:

    >>> OfflineRow("u1", {"latency": 0.25}, None) == ("u1", {"latency": 0.25}, None)
    True
    """

    id: str
    features: Mapping[str, Any]
    ts: float | None = None


@dataclass(frozen=True)
class ServingRow:
    """One serving-side event, decoded, with where it was read (the alert's source and event id basis).

    ``model`` is the event's model (the config's default when it has none); ``version`` the
    value of ``shadow.version_field`` when one is configured (the shell reads it from the
    raw event, which FeatureEvent does not keep).

    >>> ServingRow("r1", {"x": 1.0}, "m", "features", 0, 42).offset
    42
    """

    id: str
    features: Mapping[str, Any]
    model: str
    topic: str
    partition: int
    offset: int
    ts: float | None = None
    prediction: Any = None
    version: str | None = None


@dataclass
class SkewStep:
    """What one call of the skew engine decided, and the read-outs the gauges need.

    ``skew_ratio``: mismatch share per feature of the skew windows closed in this call (the
    newest wins); ``shadow``: ``(agreement_rate, distance)`` of the newest shadow window
    closed in this call, or None; ``unmatched``: the skew join's unmatched ids per side
    so far (totals, not deltas).

    >>> SkewStep().events, SkewStep().shadow
    ([], None)
    """

    events: list[DriftEvent] = field(default_factory=list)
    skew_ratio: dict[str, float] = field(default_factory=dict)
    shadow: tuple[float, float] | None = None
    unmatched: dict[str, int] = field(default_factory=dict)
