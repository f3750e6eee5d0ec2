"""Configuration of the sidecar and its detector bank (YAML file, CLI flags override).

Every section forbids unknown keys, so a typo fails at start-up with the field's name:

>>> try:
...     SidecarConfig.model_validate({"kafka": {"bootstrap_server": "x"}})
... except Exception as exc:
...     print(format_validation_error(exc).splitlines()[1])
  kafka.bootstrap_server: Extra inputs are not permitted

A relative path written in a config file is relative to the file's folder, wherever the
command runs from; a path given on the command line is relative to the current directory.
The path fields are marked (:data:`PATH_FIELD`, :data:`LIBRDKAFKA_FIELD`) and
:func:`resolve_paths` finds them all.
"""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

M = TypeVar("M", bound=BaseModel)

#: Where change detectors run: the batch numba kernels, or river's own classes value by value.
DetectorBackend = Literal["kernel", "river"]


class ConfigError(ValueError):
    """A configuration problem; the message names the offending field."""


#: ``json_schema_extra`` of a field that holds a file path: relative in a config file means
#: relative to the file's folder (:func:`resolve_paths`).
PATH_FIELD: dict[str, Any] = {"format": "path"}
#: ``json_schema_extra`` of a field of librdkafka properties: the file-path properties among
#: them (:data:`LIBRDKAFKA_PATH_KEYS`) follow the same rule.
LIBRDKAFKA_FIELD: dict[str, Any] = {"x-librdkafka": True}
#: librdkafka properties whose value is a file: every ``*.location`` (``ssl.ca.location``,
#: ``ssl.certificate.location``, ``ssl.key.location``, ``ssl.keystore.location``,
#: ``ssl.crl.location``, ``ssl.engine.location``) and ``sasl.kerberos.keytab``.
LIBRDKAFKA_PATH_KEYS = ("sasl.kerberos.keytab",)
#: librdkafka values that are words, not files (``ssl.ca.location: probe``).
_NOT_A_PATH = frozenset({"probe"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaConfig(_Section):
    """Where to read features and where to write alerts."""

    bootstrap_servers: str = "127.0.0.1:9092"
    input_topic: str = Field(default="features", min_length=1)
    alerts_topic: str = Field(default="drift-alerts", min_length=1)
    dlq_topic: str = Field(default="features-dlq", min_length=1)
    group_id: str = Field(default="driftsentinel", min_length=1)
    state_topic: str = Field(
        default="driftsentinel-state", min_length=1, description="Compacted topic of detector checkpoints."
    )
    labels_topic: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Topic of LabelEvents ({id, label}) that arrive after the prediction; joined to the input "
            "events by id for concept drift. Partitioned like input_topic: same count, same key per request."
        ),
    )
    exactly_once: bool = Field(
        default=True,
        description="Commit alerts, DLQ records, checkpoints and input offsets in one Kafka transaction.",
    )
    instance_id: str | None = Field(
        default=None,
        description="Stable id of this sidecar (default: host name): static group membership and transactional.id.",
    )
    common: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="librdkafka properties for every client: security.protocol, sasl.*, ssl.*, client.id, ...",
        json_schema_extra=LIBRDKAFKA_FIELD,
    )
    consumer: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Extra librdkafka consumer properties (override ours).",
        json_schema_extra=LIBRDKAFKA_FIELD,
    )
    producer: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Extra librdkafka producer properties (override ours).",
        json_schema_extra=LIBRDKAFKA_FIELD,
    )

    @field_validator("labels_topic")
    @classmethod
    def _labels_topic_is_its_own(cls, value: str | None, info: ValidationInfo) -> str | None:
        others = {info.data.get(k) for k in ("input_topic", "alerts_topic", "dlq_topic", "state_topic")}
        if value is not None and value in others:
            raise ValueError(f"{value!r} must differ from the input, alerts, DLQ and state topics")
        return value


class CheckpointConfig(_Section):
    """How often each input partition's detector state is written to the state topic.

    After a crash the sidecar restores the latest checkpoint and re-reads the events since
    (alerts already published for them are not published again), so the interval bounds
    the re-read work, not correctness.
    """

    enabled: bool = True
    every_events: int = Field(default=100_000, ge=1, description="Events of a partition between checkpoints.")
    every_s: float = Field(default=60.0, gt=0, description="Seconds between checkpoints of a busy partition.")


class ADWINConfig(_Section):
    """river's ADWIN parameters (same names and meaning), run on standardised values.

    ``delta`` defaults to 0.0002, not river's 0.002: on standardised stationary data
    river's value gave 0.5 false detections per million values (10 in 20 x 1,000,000
    measured), 0.0002 gave none in the same 20,000,000 values; a 1-sigma shift is still
    found within about a hundred values. Set ``delta: 0.002`` for river's behaviour.
    """

    enabled: bool = True
    delta: float = Field(default=0.0002, gt=0, lt=1)
    clock: int = Field(default=32, ge=1)
    max_buckets: int = Field(default=5, ge=2)
    min_window_length: int = Field(default=5, ge=1)
    grace_period: int = Field(default=10, ge=1)


#: river's own ``drift.ADWIN()`` defaults: the detector classes' constructor defaults (they
#: reproduce river, and are compared with it at its defaults) and the ADWIN on the error stream.
RIVER_ADWIN = ADWINConfig(delta=0.002)


class PageHinkleyConfig(_Section):
    """river's Page-Hinkley parameters, run on standardised values.

    Defaults differ from river's (delta 0.005, threshold 50, alpha 0.9999), which fire
    about 600 times per million stationary unit-variance values: with alpha < 1 the
    cumulative sum settles into an AR(1) process of standard deviation ~70. With alpha = 1
    it is the classic two-sided CUSUM with reference value ``delta`` (in standard
    deviations) whose false-alarm rate falls exponentially with ``threshold``.
    Set ``delta: 0.005, threshold: 50, alpha: 0.9999`` to get river's behaviour.
    """

    enabled: bool = True
    min_instances: int = Field(default=30, ge=1)
    delta: float = Field(default=0.25, ge=0)
    threshold: float = Field(default=50.0, gt=0)
    alpha: float = Field(default=1.0, gt=0, le=1)
    mode: Literal["up", "down", "both"] = "both"


#: river's own ``drift.PageHinkley()`` defaults (the detector classes' constructor defaults).
RIVER_PAGE_HINKLEY = PageHinkleyConfig(delta=0.005, threshold=50.0, alpha=1 - 0.0001)


NumericTest = Literal["psi", "ks", "js", "wasserstein"]
CategoricalTest = Literal["chi2", "js", "new_category"]
QualityTest = Literal["missing_rate", "out_of_range", "type_error"]


class WindowTestConfig(_Section):
    """Tests of tumbling live windows against a reference profile (``--reference``).

    A distribution test (``psi``, ``ks``, ``js``, ``wasserstein``, ``chi2``) flags a window
    when its distance is significant for the window's size (p-value under ``alpha``
    after the family-wise correction) **and** its effect, the distance with its
    small-sample bias taken out, passes ``decision_ratio`` x its threshold. The thresholds
    are minimum meaningful changes: at the default 5,000-event window a change at the
    minimum is flagged in every window and one at half of it in none (measured in
    docs/detection.md). Quality checks (``missing_rate``, ``out_of_range``, ``type_error``,
    ``new_category``) compare the window's share with their threshold.
    """

    enabled: bool = True
    window_events: int = Field(default=5000, ge=10, description="Events per tumbling window (count windows).")
    window_seconds: float | None = Field(
        default=None, gt=0, description="Event-time windows of this length (by `ts`) instead of count windows."
    )
    event_time_tolerance_s: float = Field(
        default=900.0,
        gt=0,
        description="How far (seconds) an event's `ts` may be from its message's Kafka timestamp, ahead or "
        "behind. 15 minutes by default: producers' clock skew and log buffering stay well inside it, a `ts` "
        "of 0, of year 9999 or off by an hour (a time-zone bug) does not. An event outside it is windowed by "
        "its message time instead (counted in driftsentinel_event_time_fallbacks_total; replay has no message "
        "time: a file's `ts` is used as is). An event-time window whose position is more than this ahead of "
        "an event follows the event back (a clock that jumped back), so a window never stops advancing.",
    )
    min_count: int = Field(default=100, ge=1, description="A feature needs this many values in a window to be tested.")
    alpha: float = Field(
        default=1e-6,
        gt=0,
        lt=1,
        description="False-positive probability of a test's noise floor, per window "
        "(before the family-wise correction).",
    )
    family: Literal["none", "bonferroni", "bh"] = Field(
        default="bonferroni",
        description="Across a model's features per window: none, Bonferroni (alpha / tests), "
        "Benjamini-Hochberg (FDR alpha).",
    )
    decision_ratio: float = Field(
        default=0.75,
        ge=0.5,
        le=1,
        description="A distribution test flags a window when its bias-corrected effect passes this x its minimum "
        "meaningful change (the cut-off, an alert's `threshold`): between half the minimum and the minimum, so a "
        "change at the minimum is flagged in >= 99 % of 5,000-event windows and one at half of it in none "
        "(measured, docs/detection.md). On smaller windows the cut-off rises until half the minimum stays quiet.",
    )
    resolve_ratio: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="An episode ends at the first window whose effect (or share) is at or under the cut-off x this "
        "(hysteresis).",
    )
    # every test by default
    numeric_tests: list[NumericTest] = Field(default_factory=lambda: list(get_args(NumericTest)))
    categorical_tests: list[CategoricalTest] = Field(default_factory=lambda: list(get_args(CategoricalTest)))
    quality_tests: list[QualityTest] = Field(default_factory=lambda: list(get_args(QualityTest)))
    psi: float = Field(
        default=0.25,
        gt=0,
        description="Minimum meaningful PSI over the training deciles (> 0.25 is a major shift in the credit-scoring "
        "reading; a 0.5-sd mean shift of a normal feature).",
    )
    ks: float = Field(
        default=0.1, gt=0, le=1, description="Minimum meaningful Kolmogorov-Smirnov distance (a 0.25-sd mean shift)."
    )
    js: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Minimum meaningful Jensen-Shannon distance (base 2) over the training deciles or categories "
        "(a 0.25-sd mean shift).",
    )
    wasserstein: float = Field(
        default=0.25, gt=0, description="Minimum meaningful Wasserstein-1, in reference standard deviations."
    )
    chi2: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Minimum meaningful Cramér's V over the categories seen in training (0.1 is a small effect).",
    )
    new_category: float = Field(default=0.01, gt=0, le=1, description="Share of values never seen in training.")
    missing_rate: float = Field(default=0.05, gt=0, le=1, description="Rise of the missing share over the reference's.")
    out_of_range: float = Field(
        default=0.01, gt=0, le=1, description="Share of values outside the training [min, max]."
    )
    type_error: float = Field(default=0.01, gt=0, le=1, description="Share of values of the wrong type.")


SequentialTest = Literal[
    "cusum_mean", "cusum_scale", "cusum_shape", "cusum_missing", "cusum_categories", "cusum_unseen"
]


class SequentialConfig(_Section):
    """Sequential tests (CUSUMs) of every feature against its reference.

    Each test accumulates evidence value by value against the known pre-change
    distribution (the profile's, else the warm-up's) and alarms when its statistic
    exceeds its threshold ``h``; it then restarts at 0. Each has a minimum meaningful
    change: below it the statistic drifts down, so it stays quiet however long the stream
    ("large samples make everything drift" does not happen). Numeric: ``cusum_mean``
    (two-sided CUSUM of the standardised value, allowance ``min_mean_shift``),
    ``cusum_scale`` (two one-sided CUSUMs of its absolute deviation from the reference mean),
    ``cusum_shape`` (adaptive multinomial CUSUM over the reference's quantile bins and
    tail bins beyond its minimum and maximum), ``cusum_missing`` (adaptive Bernoulli
    CUSUM of the missing indicator). Categorical: ``cusum_categories`` (adaptive
    multinomial CUSUM of the reference categories' shares), ``cusum_unseen`` (adaptive
    Bernoulli CUSUM of values never seen in training). Thresholds of the mean and scale
    CUSUMs are in units of the standardised value (reference sds);
    those of the adaptive CUSUMs are log-likelihood ratios (nats): per run, a false alarm
    has probability at most ``exp(-h)`` when the reference is right (Ville's inequality).
    ``driftsentinel calibrate`` sets them per feature (``per_feature``). See
    docs/sequential-tests.md for the defaults' measurement.
    """

    enabled: bool = Field(default=True, description="Run the sequential tests.")
    tests: list[SequentialTest] = Field(
        default_factory=lambda: list(get_args(SequentialTest)), description="The sequential tests to run."
    )
    min_mean_shift: float = Field(
        default=0.5,
        gt=0,
        description="cusum_mean: smallest mean shift worth an alert, in reference standard deviations "
        "(the CUSUM's allowance k).",
    )
    min_scale_change: float = Field(
        default=0.075,
        gt=0,
        lt=1,
        description="cusum_scale: smallest relative change of the standard deviation worth an alert "
        "(0.075: sd x1.075 or x0.925); at least 4 standard errors of the reference's mean absolute deviation "
        "(about 0.096 for a 1,000-value warm-up).",
    )
    shape_bins: int = Field(
        default=10,
        ge=2,
        le=100,
        description="cusum_shape: reference-quantile bins between the reference's minimum and maximum "
        "(10: deciles), plus one tail bin below the minimum and one above the maximum.",
    )
    min_shape_kl: float = Field(
        default=0.02,
        gt=0,
        description="cusum_shape: smallest change of the binned distribution worth an alert, as a "
        "Kullback-Leibler divergence KL(new || reference) in nats per value (the per-value penalty).",
    )
    min_missing_change: float = Field(
        default=0.02,
        gt=0,
        lt=1,
        description="cusum_missing: smallest change of the missing share worth an alert, absolute "
        "(0.02: 1 % -> 3 %); its KL divergence (nats per event) is the per-event penalty.",
    )
    min_category_kl: float = Field(
        default=0.01,
        gt=0,
        description="cusum_categories: smallest change of the category shares worth an alert, as a "
        "Kullback-Leibler divergence KL(new || reference) in nats per value (the per-value penalty).",
    )
    category_window: int = Field(
        default=256,
        ge=16,
        le=65_536,
        description="cusum_categories, cusum_unseen: the last this many non-missing values of a categorical "
        "feature estimate its current distribution (a ring per feature, in the checkpoint).",
    )
    min_unseen_share: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="cusum_unseen: smallest share of values never seen in training worth an alert (the "
        "alternative); a share up to 0.4 x this one is no change (the null).",
    )
    mean_threshold: float = Field(
        default=18.0,
        gt=0,
        description="cusum_mean: threshold h, in reference standard deviations, for a feature with normal "
        "tails; a skewed, heavy-tailed or discrete feature's is raised by 2k / theta (theta the Lundberg "
        "exponent of its reference's limited deviations, at most x4) to the same false-alarm rate.",
    )
    scale_threshold: float = Field(
        default=60.0,
        gt=0,
        description="cusum_scale: threshold h, in reference standard deviations (of the absolute deviation).",
    )
    shape_threshold: float = Field(default=16.0, gt=0, description="cusum_shape: threshold h, in nats.")
    missing_threshold: float = Field(default=12.0, gt=0, description="cusum_missing: threshold h, in nats.")
    categories_threshold: float = Field(default=12.0, gt=0, description="cusum_categories: threshold h, in nats.")
    unseen_threshold: float = Field(default=6.0, gt=0, description="cusum_unseen: threshold h, in nats.")


class ConceptDriftConfig(_Section):
    """The model's error under an ADWIN per model.

    Errors come from events that carry both ``prediction`` and ``label``, and — with
    ``kafka.labels_topic`` — from labels that arrive later, joined to their prediction by
    ``id``. A prediction waits for its label at most ``label_wait_events`` predictions (per
    input partition) and ``label_wait_s`` seconds of message time; a label waits as long
    for a prediction that has not arrived yet. Past either limit the id is given up and
    counted in ``driftsentinel_labels_unmatched_total``.
    """

    enabled: bool = True
    delta: float = Field(
        default=RIVER_ADWIN.delta,
        gt=0,
        lt=1,
        description="ADWIN's delta on the error stream (values in [0, 1] for classes); river's default.",
    )
    label_wait_events: int = Field(
        default=100_000, ge=1, le=10_000_000, description="Predictions per input partition that wait for a label."
    )
    label_wait_s: float = Field(
        default=86_400.0, gt=0, description="Longest wait, in message time, between a prediction and its label."
    )


class PerformanceConfig(_Section):
    """Live performance estimation per model, from a profile's ``performance`` references.

    Active for every model whose reference profile (``--reference``) holds a
    ``performance`` entry (``driftsentinel baseline --model ...``). Each tumbling window of
    the window tests (``window_tests.window_events``, or ``window_seconds`` of event time)
    gets an estimate of the model's metrics without labels; an estimate outside the
    reference's sampling band is a ``performance_estimate`` alert. When labels come (in the
    event, or later on ``kafka.labels_topic``), a closed window is graded once at least
    ``min_label_coverage`` of its predictions have their label: its realized metric is
    compared with its estimate, and a miss larger than the band is a ``calibration_drift``
    alert (the estimator no longer describes the model).
    """

    enabled: bool = Field(default=True, description="Estimate the models that have a performance reference.")
    min_window_events: int = Field(
        default=100,
        ge=10,
        description="A window with fewer predictions is neither estimated nor graded (event-time windows can be "
        "nearly empty).",
    )
    min_label_coverage: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Share of a window's predictions that must have their label before its realized metric is "
        "computed and compared with its estimate (labels missing not at random bias a realized metric taken on "
        "a small share).",
    )
    max_pending_windows: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="Closed windows per model and input partition kept waiting for their labels (each keeps its "
        "realized counts and position range, nothing per row: about 25 KB per score column of a classifier, a few "
        "bytes for a regressor); the oldest is dropped ungraded beyond it.",
    )


class MultivariateConfig(_Section):
    """The multivariate test: the dependence between a profile's numeric features, per window.

    Needs a profile with a ``multivariate`` section (``driftsentinel baseline`` writes one);
    its windows are the window tests' (``window_tests.window_events`` / ``window_seconds``).
    A window flags when the change of the features' normal-score correlation is significant
    (``alpha``) *and* its size, the KL divergence per row beyond the noise, passes ``min_kl``.
    See docs/multivariate.md.
    """

    enabled: bool = True
    max_features: int = Field(
        default=64, ge=2, le=256, description="Features tested together: the profile's first this many."
    )
    alpha: float = Field(default=1e-6, gt=0, lt=1, description="False-alarm probability per window.")
    min_kl: float = Field(
        default=0.02,
        gt=0,
        description="Minimum meaningful change, nats per row (0.02: one pair's correlation 0 -> 0.2).",
    )
    min_rows: int = Field(
        default=500, ge=10, description="A window is tested with at least this many rows with every feature present."
    )


#: The segment pooling everything beyond a key's admitted segments.
OTHER_SEGMENT = "__other__"


class SegmentConfig(_Section):
    """Drift per segment: detectors per value of a key (``detectors.segments``).

    Each key is a feature or top-level event field (``country``), or a combination written
    as a list (``[country, device]``: one segment per pair). Per key, every segment gets its
    own detector bank (change detectors and, with a profile, window tests against the
    segment's own reference from the profile's ``segments`` section), next to the overall
    bank; the segment mix (each segment's share of the traffic) is tested per window like a
    categorical feature (``segment_mix`` alerts on feature ``@segment:<key>``). At most
    ``max_segments`` per key: the profile's top segments by traffic, else the first values
    seen in stream order; everything else is pooled as ``__other__`` (its own bank, and
    counted). The false-alarm budget is shared across the segments (see docs/segments.md),
    so adding segments does not multiply false alarms. A segment bank costs about what the
    overall bank costs per feature (docs/segments.md: measured memory per segment).

    A plain list is read as the keys: ``segments: [country, [country, device]]``.

    >>> SegmentConfig.model_validate(["country", ["country", "device"]]).key_fields()
    [('country',), ('country', 'device')]
    """

    keys: list[str | list[str]] = Field(
        default_factory=list, description="Segment keys: a field name, or a list of names for a combination."
    )
    max_segments: int = Field(
        default=50, ge=1, le=10_000, description="Segments per key with their own detectors; the rest is __other__."
    )
    mix: bool = Field(default=True, description="Test each window's segment shares against the reference mix.")

    @model_validator(mode="before")
    @classmethod
    def _list_is_keys(cls, value: Any) -> Any:
        return {"keys": value} if isinstance(value, list) else value

    @field_validator("keys")
    @classmethod
    def _distinct_names(cls, value: list[str | list[str]]) -> list[str | list[str]]:
        seen: set[tuple[str, ...]] = set()
        for key in value:
            fields = (key,) if isinstance(key, str) else tuple(key)
            if not fields or any(not f for f in fields) or len(set(fields)) != len(fields):
                raise ValueError(f"segment key {key!r}: give one or more distinct, non-empty field names")
            if fields in seen:
                raise ValueError(f"segment key {key!r} is listed twice")
            seen.add(fields)
        return value

    def key_fields(self) -> list[tuple[str, ...]]:
        """Each key as a tuple of field names."""
        return [(k,) if isinstance(k, str) else tuple(k) for k in self.keys]


class FeatureParams(_Section):
    """Per-feature detector parameters (``driftsentinel calibrate`` writes these)."""

    adwin_delta: float | None = Field(default=None, gt=0, lt=1)
    page_hinkley_threshold: float | None = Field(default=None, gt=0)
    page_hinkley_delta: float | None = Field(default=None, ge=0)
    cusum_mean_threshold: float | None = Field(
        default=None, gt=0, description="cusum_mean's threshold h (reference standard deviations)."
    )
    cusum_scale_threshold: float | None = Field(
        default=None, gt=0, description="cusum_scale's threshold h (reference standard deviations)."
    )
    cusum_shape_threshold: float | None = Field(default=None, gt=0, description="cusum_shape's threshold h (nats).")
    cusum_missing_threshold: float | None = Field(default=None, gt=0, description="cusum_missing's threshold h (nats).")
    cusum_categories_threshold: float | None = Field(
        default=None, gt=0, description="cusum_categories' threshold h (nats; a categorical feature)."
    )
    cusum_unseen_threshold: float | None = Field(
        default=None, gt=0, description="cusum_unseen's threshold h (nats; a categorical feature)."
    )


class BankConfig(_Section):
    """Per-feature detectors and the summaries that go into alerts as evidence."""

    backend: DetectorBackend = Field(
        default="kernel", description="'kernel': batch numba kernels; 'river': river's classes, value by value."
    )
    warmup: int = Field(
        default=1000,
        ge=2,
        description="Values per feature used to standardise it (mean/std) before the change detectors see it.",
    )
    window_size: int = Field(default=5000, ge=10, description="Events per tumbling live-summary window.")
    winsorize: bool = Field(
        default=True,
        description="Clip standardised values to the reference's 1st-99th percentile range widened by half "
        "(about +-3.5 sd for normal data) before the change detectors see them: heavy tails stop paging.",
    )
    resolve_min_count: int = Field(
        default=2000, ge=1, description="Values after a detection before a feature may be declared resolved."
    )
    resolve_tolerance_sigma: float = Field(
        default=0.25,
        gt=0,
        description="Resolved when the mean since the detection is within this many reference stds "
        "of the reference mean.",
    )
    include: list[str] | None = Field(default=None, description="Pin the feature set (others are ignored).")
    exclude: list[str] = Field(default_factory=list)
    max_features: int = Field(default=10_000, ge=1, description="Auto-discovery stops at this many features per model.")
    max_models: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Models monitored per input partition: the first this many model names seen on a partition "
        "(in offset order, kept in its checkpoint, so a restart admits the same ones). Events of other models "
        "are not monitored: counted in driftsentinel_model_events_dropped_total.",
    )
    adwin: ADWINConfig = Field(default_factory=ADWINConfig)
    page_hinkley: PageHinkleyConfig = Field(default_factory=PageHinkleyConfig)
    window_tests: WindowTestConfig = Field(default_factory=WindowTestConfig)
    concept_drift: ConceptDriftConfig = Field(default_factory=ConceptDriftConfig)
    sequential: SequentialConfig = Field(default_factory=SequentialConfig)
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
    multivariate: MultivariateConfig = Field(default_factory=MultivariateConfig)
    segments: SegmentConfig = Field(
        default_factory=SegmentConfig, description="Drift per segment (a list of keys, or keys + max_segments)."
    )
    types: dict[str, Literal["numeric", "categorical"]] = Field(
        default_factory=dict, description="Pin feature types (baseline inference and live checks)."
    )
    max_categories: int = Field(default=1000, ge=2, description="Distinct categories tracked per feature.")
    per_feature: dict[str, FeatureParams] = Field(
        default_factory=dict, description="Per-feature parameters, e.g. calibrated thresholds."
    )

    @model_validator(mode="after")
    def _per_feature_needs_kernels(self) -> BankConfig:
        if self.per_feature and self.backend != "kernel":
            raise ValueError("per_feature parameters need backend 'kernel'")
        return self


class AlertPolicyConfig(_Section):
    """How detector decisions become DriftEvents."""

    cooldown_events: int = Field(
        default=0,
        ge=0,
        description="After a 'drift' event, no new 'drift' event for the same feature (a feature episode's "
        "detectors together; concept drift and performance alerts: the same detector) for this many events.",
    )
    critical_sigma: float = Field(
        default=1.0, gt=0, description="A mean shift of at least this many reference stds is 'critical'."
    )
    warning_sigma: float = Field(default=0.25, gt=0, description="...of at least this many is 'warning', else 'info'.")
    critical_ratio: float = Field(
        default=2.0, gt=1, description="Window tests: statistic >= threshold x this is 'critical' (else 'warning')."
    )
    merge_events: int = Field(
        default=1_000,
        ge=0,
        le=1_000_000_000,
        description="One change, one alert: a feature's detectors share one episode (one 'drift' event when the "
        "first of them decides drift, one 'resolved' event when all that joined have resolved). A detector not "
        "yet in the episode that decides drift within this many events of the model after the episode resolved "
        "still joins it (no new event); later, or a detector of the episode deciding drift again, opens a new "
        "episode. 0: only while it is open.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> AlertPolicyConfig:
        if self.warning_sigma > self.critical_sigma:
            raise ValueError("warning_sigma must not exceed critical_sigma")
        return self


class RunConfig(_Section):
    """What every long-running command shares: batching, the metrics endpoint, bounded runs."""

    default_model: str = Field(default="default", min_length=1, description="Model name for events without 'model'.")
    batch_size: int = Field(default=4096, ge=1, le=1_000_000)
    batch_timeout_s: float = Field(default=0.5, gt=0)
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(default=8000, ge=0, le=65535)
    metrics_max_series: int = Field(
        default=20_000,
        ge=100,
        le=10_000_000,
        description="Hard cap on labelled Prometheus series: new label sets over it are not created "
        "(counted in driftsentinel_metrics_series_dropped_total), so memory and scrape time stay bounded.",
    )
    metrics_idle_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="A metrics/probe connection that sends no request for this long is closed.",
    )
    metrics_max_connections: int = Field(
        default=64, ge=2, le=10_000, description="Open metrics/probe connections; over it the longest idle is closed."
    )
    max_events: int | None = Field(default=None, ge=1, description="Stop after this many input messages (tests).")
    idle_exit: float | None = Field(default=None, gt=0, description="Stop after this many seconds without input.")


class SidecarConfig(RunConfig):
    """Everything `driftsentinel run` needs; zero-config works."""

    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    detectors: BankConfig = Field(default_factory=BankConfig)
    alerts: AlertPolicyConfig = Field(default_factory=AlertPolicyConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    reference: str | None = Field(
        default=None,
        description="Path of a reference profile (driftsentinel baseline); relative to the config file's folder.",
        json_schema_extra=PATH_FIELD,
    )
    log_format: Literal["text", "json"] = "text"
    log_interval_s: float = Field(default=30.0, gt=0, description="Seconds between throughput/lag log lines.")
    shutdown_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="After SIGTERM/SIGINT, exit (code 0) within about this long even while the broker is away: "
        "work not committed by then is aborted and re-read after the restart. Keep it under the grace period.",
    )
    txn_stuck_s: float = Field(
        default=45.0,
        ge=1,
        le=3600,
        description="A transactional call that has not returned after this long is stuck inside librdkafka: "
        "the process re-executes itself and, when the broker is still away, waits for it at start-up.",
    )
    dlq_max_value_bytes: int | None = Field(
        default=None,
        ge=1024,
        le=100_000_000,
        description="A DLQ record (key, value, headers) larger than this is replaced by a bounded record (value "
        "cut, headers with the original size and sha256), so the DLQ topic can always take it. Default: the DLQ "
        "topic's max.message.bytes (read at start-up) less 64 KiB, else 900,000.",
    )
    max_batch_aborts: int = Field(
        default=5,
        ge=1,
        le=1_000_000,
        description="Consecutive aborted transactions after which /readyz turns red with the reason (counted "
        "in driftsentinel_transaction_aborts_total); the batch is retried with a growing pause.",
    )


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem, each starting with the dotted field name."""
    lines = ["invalid configuration:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def _is_librdkafka_path(key: str, value: object) -> bool:
    return (
        isinstance(value, str)
        and (key.endswith(".location") or key in LIBRDKAFKA_PATH_KEYS)
        and value not in _NOT_A_PATH
    )


def _section_type(annotation: Any) -> type[BaseModel] | None:
    """The section class of a field annotated ``Section`` or ``Section | None`` (not a mapping of sections)."""
    optional = get_origin(annotation) in (Union, types.UnionType)
    for candidate in (annotation, *(get_args(annotation) if optional else ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def resolve_paths(model: type[BaseModel], data: dict[str, Any], base: Path, rebase: Path | None = None) -> None:
    """Make the relative paths in ``data`` (a config file's contents for ``model``) relative to ``base``.

    In place, every marked field of every section: :data:`PATH_FIELD` fields and the file
    properties of :data:`LIBRDKAFKA_FIELD` fields. A relative path ``p`` becomes ``base / p``;
    absolute paths and values of the wrong type are left for validation. With ``rebase``, the
    result is written relative to that folder instead (a config file written elsewhere).

    >>> d = {"reference": "p.json", "kafka": {"common": {"ssl.ca.location": "ca.pem"}}}
    >>> resolve_paths(SidecarConfig, d, Path("conf"))
    >>> d["reference"], d["kafka"]["common"]["ssl.ca.location"]
    ('conf/p.json', 'conf/ca.pem')
    >>> resolve_paths(SidecarConfig, d, Path("."), rebase=Path("out"))
    >>> d["reference"]
    '../conf/p.json'
    """

    def fix(value: str) -> str:
        full = base / value if not Path(value).is_absolute() else Path(value)
        if rebase is None or Path(value).is_absolute():
            return str(full)
        try:
            return os.path.relpath(full, rebase)
        except ValueError:  # another drive (Windows): no relative path exists
            return str(full.absolute())

    for name, field in model.model_fields.items():
        value = data.get(field.alias or name)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("format") == PATH_FIELD["format"] and isinstance(value, str):
            data[field.alias or name] = fix(value)
        elif extra.get("x-librdkafka") and isinstance(value, dict):
            for key, item in value.items():
                if _is_librdkafka_path(key, item):
                    value[key] = fix(item)
        elif isinstance(value, dict) and (section := _section_type(field.annotation)) is not None:
            resolve_paths(section, value, base, rebase)


def _yaml_where(exc: yaml.YAMLError) -> str:
    """``: line L, column C: problem`` of a YAML error (the file's own line numbers, 1-based)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f": line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else f": {problem}"


def read_utf8(path: str | Path, error: type[ValueError]) -> str:
    """The text of a UTF-8 file, a byte-order mark at its start dropped; other bytes raise ``error``.

    ``OSError`` (missing, unreadable) is the caller's.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "latin.yaml"
    >>> _ = p.write_bytes(b"a: 1\\n# caf\\xe9\\n")
    >>> try:
    ...     read_utf8(p, ConfigError)
    ... except ConfigError as exc:
    ...     print(str(exc).split(": ", 1)[1])
    not UTF-8 (byte 0xe9 at line 2, column 6): save it as UTF-8
    """
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(
            f"{path}: not UTF-8 (byte 0x{raw[exc.start]:02x} at line {line}, column {column}): save it as UTF-8"
        ) from None


def load_model(model: type[M], path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> M:
    """Read a YAML file (optional), apply dotted-key overrides (``None`` = not given), validate ``model``.

    Relative paths in the file are resolved against the file's folder
    (:func:`resolve_paths`); paths in ``overrides`` (command-line flags) are taken as given,
    relative to the current directory. Every problem raises :class:`ConfigError` naming the
    file or the field.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(read_utf8(path, ConfigError))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML{_yaml_where(exc)}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping")
        data = loaded or {}
        resolve_paths(model, data, Path(path).parent)
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> SidecarConfig:
    """The sidecar's config: YAML file (optional) + dotted-key overrides (CLI flags).

    >>> load_config(None, {"kafka.input_topic": "t", "metrics_port": 9100}).kafka.input_topic
    't'
    """
    return load_model(SidecarConfig, path, overrides)
