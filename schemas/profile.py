"""ReferenceProfile: what the training data looked like, per feature (a versioned file).

Built by ``driftsentinel baseline``; read by ``run --reference`` and ``replay --reference``.

>>> p = ReferenceProfile(n_rows=3, source="train.csv", features={
...     "x": NumericProfile(count=3, missing_ratio=0.0, mean=1.0, std=1.0, min=0.0, max=2.0,
...                         quantiles=[0.0, 1.0, 2.0]),
...     "c": CategoricalProfile(count=3, missing_ratio=0.0, frequencies={"a": 2 / 3, "b": 1 / 3},
...                             other_share=0.0, n_categories=2)})
>>> ReferenceProfile.model_validate_json(p.model_dump_json()) == p
True
>>> p.features["x"].kind, p.features["c"].kind
('numeric', 'categorical')
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROFILE_VERSION = 1


class ProfileError(ValueError):
    """A profile file that cannot be used; the message says why."""


class NumericProfile(BaseModel):
    """A numeric feature of the training data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["numeric"] = "numeric"
    count: int = Field(ge=0, description="Non-missing values.")
    missing_ratio: float = Field(ge=0, le=1)
    mean: float
    std: float = Field(ge=0)
    min: float
    max: float
    quantiles: list[float] = Field(
        description="Quantiles at 0, 1/q, 2/q, ..., 1 (q = len - 1; 100 by default): bin edges and the quantile sketch."
    )

    @field_validator("quantiles")
    @classmethod
    def _sorted(cls, value: list[float]) -> list[float]:
        if len(value) < 3:
            raise ValueError("need at least 3 quantiles")
        if any(not math.isfinite(v) for v in value) or any(b < a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError("quantiles must be finite and non-decreasing")
        return value

    def decile_edges(self) -> list[float]:
        """Interior edges of the 10 reference-quantile bins used by PSI and JS."""
        q = len(self.quantiles) - 1
        return [self.quantiles[round(q * k / 10)] for k in range(1, 10)]


class CategoricalProfile(BaseModel):
    """A categorical feature (strings, booleans) of the training data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["categorical"] = "categorical"
    count: int = Field(ge=0)
    missing_ratio: float = Field(ge=0, le=1)
    frequencies: dict[str, float] = Field(description="Top-K categories -> share of non-missing values.")
    other_share: float = Field(ge=0, le=1, description="Share of the categories beyond the top K.")
    n_categories: int = Field(ge=0, description="Distinct categories seen in training.")
    seen: list[str] = Field(
        default_factory=list, description="Every training category when there were at most 10,000 (new-category check)."
    )

    @model_validator(mode="after")
    def _shares(self) -> CategoricalProfile:
        total = sum(self.frequencies.values()) + self.other_share
        if self.count and abs(total - 1.0) > 1e-6:
            raise ValueError(f"category shares sum to {total}, not 1")
        return self


FeatureProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


# --- performance estimation (CBPE for classifiers, DLE for regressors) -------------------------------

#: Bounds on what a profile may ask the core to allocate (a profile file is input, not code).
MAX_CLASSES = 100
MAX_SCORE_EDGES = 8192
MAX_TREES = 2000
MAX_TREE_NODES = 1 << 16
MAX_ENSEMBLE_NODES = 1 << 21
CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1")
REGRESSION_METRICS = ("mae", "rmse")


class IsotonicMap(BaseModel):
    """A fitted isotonic calibration: piecewise linear through ``(x, y)``, constant outside.

    Applied as ``np.interp(clip(score, x[0], x[-1]), x, y)``, which is what scikit-learn's
    ``IsotonicRegression(out_of_bounds="clip").predict`` computes from ``X_thresholds_``
    and ``y_thresholds_``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: list[float] = Field(min_length=1, max_length=1 << 20)
    y: list[float] = Field(min_length=1, max_length=1 << 20)

    @model_validator(mode="after")
    def _monotone(self) -> IsotonicMap:
        if len(self.x) != len(self.y):
            raise ValueError(f"isotonic map has {len(self.x)} x and {len(self.y)} y values")
        if any(not math.isfinite(v) for v in self.x) or any(b <= a for a, b in zip(self.x, self.x[1:], strict=False)):
            raise ValueError("isotonic map x must be finite and strictly increasing")
        if any(not 0.0 <= v <= 1.0 for v in self.y) or any(b < a for a, b in zip(self.y, self.y[1:], strict=False)):
            raise ValueError("isotonic map y must be non-decreasing probabilities in [0, 1]")
        return self


class MetricBand(BaseModel):
    """A metric on the reference: its value on all of it, and its spread over reference windows.

    ``lower``/``upper`` are NannyML's thresholds: mean +- 3 std of the metric over the
    reference windows, clipped to the metric's range (``None``: unbounded on that side).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")

    reference: float = Field(description="The metric on the whole reference (NaN: undefined there).")
    mean: float = Field(description="Mean over the reference windows (NaN windows left out).")
    std: float = Field(description="Population std over the reference windows (NaN windows left out).")
    lower: float | None
    upper: float | None
    n_windows: int = Field(ge=0, description="Reference windows with a defined value.")


class RegressionTree(BaseModel):
    """One fitted regression tree as parallel node arrays (node 0 is the root).

    An internal node sends a row left when its feature is ``<= threshold``, or, when the
    feature is NaN, when ``missing_left``; a leaf's ``value`` (learning rate included) is
    added to the prediction. Children always have larger indices than their parent, so a
    walk from the root ends at a leaf in at most ``len(value)`` steps.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")

    feature: list[int] = Field(min_length=1, max_length=MAX_TREE_NODES)
    threshold: list[float] = Field(min_length=1, max_length=MAX_TREE_NODES)
    missing_left: list[bool] = Field(min_length=1, max_length=MAX_TREE_NODES)
    left: list[int] = Field(min_length=1, max_length=MAX_TREE_NODES)
    right: list[int] = Field(min_length=1, max_length=MAX_TREE_NODES)
    value: list[float] = Field(min_length=1, max_length=MAX_TREE_NODES)
    is_leaf: list[bool] = Field(min_length=1, max_length=MAX_TREE_NODES)

    @model_validator(mode="after")
    def _structure(self) -> RegressionTree:
        n = len(self.value)
        fields = ("feature", "threshold", "missing_left", "left", "right", "is_leaf")
        for name in fields:
            if len(getattr(self, name)) != n:
                raise ValueError(f"tree arrays differ in length: {name} has {len(getattr(self, name))}, value has {n}")
        leaf = np.asarray(self.is_leaf, dtype=bool)
        inner = np.flatnonzero(~leaf)
        left = np.asarray(self.left, dtype=np.int64)[inner]
        right = np.asarray(self.right, dtype=np.int64)[inner]
        if np.any(left <= inner) or np.any(right <= inner) or np.any(left >= n) or np.any(right >= n):
            raise ValueError("tree child indices must point forward, inside the tree")
        if np.isnan(np.asarray(self.threshold, dtype=np.float64)[inner]).any():
            raise ValueError("tree split thresholds must not be NaN")
        if not np.isfinite(np.asarray(self.value, dtype=np.float64)[leaf]).all():
            raise ValueError("tree leaf values must be finite")
        return self


class TreeEnsemble(BaseModel):
    """A gradient-boosted regression model (no pickle): ``baseline + sum of the trees' leaves``.

    Exported from scikit-learn's ``HistGradientBoostingRegressor`` (squared error, numeric
    features only) by ``detectors/loss_model.py``, which also evaluates it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")

    format: Literal["hist-gradient-boosting/v1"] = "hist-gradient-boosting/v1"
    n_features: int = Field(ge=1, le=10_000)
    baseline: float
    trees: list[RegressionTree] = Field(max_length=MAX_TREES)

    @model_validator(mode="after")
    def _bounds(self) -> TreeEnsemble:
        if not math.isfinite(self.baseline):
            raise ValueError("loss model baseline must be finite")
        total = sum(len(t.value) for t in self.trees)
        if total > MAX_ENSEMBLE_NODES:
            raise ValueError(f"loss model has {total} nodes, more than {MAX_ENSEMBLE_NODES}")
        for i, tree in enumerate(self.trees):
            leaf = np.asarray(tree.is_leaf, dtype=bool)
            feature = np.asarray(tree.feature, dtype=np.int64)[~leaf]
            if np.any(feature < 0) or np.any(feature >= self.n_features):
                raise ValueError(f"tree {i} splits on a feature index outside 0..{self.n_features - 1}")
        return self


class ClassificationOutputs(BaseModel):
    """What CBPE needs about a classifier's scores, fitted on labelled reference data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classes: list[str] = Field(min_length=2, max_length=MAX_CLASSES, description="Class names (str of the labels).")
    priors: list[float] = Field(description="Share of each class among the reference labels.")
    calibration: list[IsotonicMap | None] = Field(
        description="Per score column (binary: one, for the positive class): the isotonic map, or None when "
        "calibrating did not lower the cross-fitted calibration error."
    )
    score_edges: list[list[float]] = Field(
        description="Per score column: interior bin edges of the ROC AUC histograms (reference score quantiles "
        "merged with a log-odds grid)."
    )
    decision_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Binary, when no predicted class is given: positive when score > this."
    )

    @model_validator(mode="after")
    def _shapes(self) -> ClassificationOutputs:
        k = len(self.classes)
        columns = 1 if k == 2 else k
        if len(set(self.classes)) != k:
            raise ValueError("class names must be distinct")
        if len(self.priors) != k or any(not 0.0 <= p <= 1.0 for p in self.priors):
            raise ValueError(f"priors must be {k} shares in [0, 1]")
        if len(self.calibration) != columns or len(self.score_edges) != columns:
            raise ValueError(f"{k} classes need {columns} calibration maps and {columns} edge lists")
        for edges in self.score_edges:
            if not 1 <= len(edges) <= MAX_SCORE_EDGES:
                raise ValueError(f"score edges: between 1 and {MAX_SCORE_EDGES} per column")
            if any(not math.isfinite(v) for v in edges) or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
                raise ValueError("score edges must be finite and strictly increasing")
        return self


class RegressionOutputs(BaseModel):
    """What DLE needs: the loss models fitted on ``features + prediction`` of the reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature_names: list[str] = Field(description="Model inputs, in the column order the loss models read.")
    abs_error_model: TreeEnsemble = Field(description="Predicts |label - prediction| (for MAE).")
    sq_error_model: TreeEnsemble = Field(description="Predicts (label - prediction)^2 (for MSE, RMSE).")

    @model_validator(mode="after")
    def _widths(self) -> RegressionOutputs:
        width = len(self.feature_names) + 1
        for name in ("abs_error_model", "sq_error_model"):
            if getattr(self, name).n_features != width:
                raise ValueError(f"{name} reads {getattr(self, name).n_features} columns, expected {width}")
        return self


class PerformanceInputs(BaseModel):
    """Which fields of a stream's events carry what the estimator reads: ``@prediction`` (the
    event's ``prediction``) or a feature name. Written by ``driftsentinel baseline --model``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scores: list[str] = Field(
        default_factory=list,
        max_length=MAX_CLASSES,
        description="Classifiers, per score column (binary: the positive class's probability; multiclass: one per "
        "class, in `classes` order): the field that carries it.",
    )
    predicted: str | None = Field(
        default=None,
        description="Classifiers: the field of the predicted class (None: the score against decision_threshold, "
        "or the most probable class).",
    )
    prediction: str = Field(default="@prediction", description="Regressors: the field of the prediction.")


class PerformanceReference(BaseModel):
    """One model's reference for performance estimation (a profile's ``performance[model]``).

    ``kind`` is ``binary``, ``multiclass`` (CBPE) or ``regression`` (DLE); ``window`` is the
    number of predictions per window the ``metrics`` bands were measured on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["binary", "multiclass", "regression"]
    window: int = Field(ge=1, description="Predictions per tumbling window (reference and stream).")
    n_rows: int = Field(ge=0, description="Labelled reference rows used.")
    metrics: dict[str, MetricBand]
    classification: ClassificationOutputs | None = None
    regression: RegressionOutputs | None = None
    inputs: PerformanceInputs | None = Field(
        default=None,
        description="The stream fields the estimator reads (None: the event's prediction is the binary score, "
        "or the regression prediction).",
    )

    @model_validator(mode="after")
    def _inputs_fit(self) -> PerformanceReference:
        """Stream fields, when named, must match the score columns (None: the caller passes arrays)."""
        if self.inputs is None:
            return self
        columns = len(self.classification.score_edges) if self.classification is not None else 0
        scores = len(self.inputs.scores)
        if self.kind == "multiclass" and scores != columns:
            raise ValueError(f"a multiclass reference needs inputs.scores: one field per class ({columns})")
        if self.kind == "binary" and scores not in (0, 1):
            raise ValueError("a binary reference reads one score field (inputs.scores)")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> PerformanceReference:
        if self.kind == "regression":
            if self.regression is None or self.classification is not None:
                raise ValueError("a regression reference needs 'regression' and no 'classification'")
            expected: tuple[str, ...] = REGRESSION_METRICS
        else:
            if self.classification is None or self.regression is not None:
                raise ValueError(f"a {self.kind} reference needs 'classification' and no 'regression'")
            if (len(self.classification.classes) == 2) != (self.kind == "binary"):
                raise ValueError(f"a {self.kind} reference cannot have {len(self.classification.classes)} classes")
            expected = CLASSIFICATION_METRICS
        if set(self.metrics) != set(expected):
            raise ValueError(f"metrics must be exactly {', '.join(expected)}")
        return self


# --- multivariate drift (the joint distribution of the numeric features) -----------------------------

#: Bound on the features of a profile's multivariate section (its matrix is d x d).
MAX_MULTIVARIATE_FEATURES = 256


class MultivariateProfile(BaseModel):
    """The dependence between numeric features in the training data (a profile's ``multivariate``).

    Each feature is mapped to normal scores through its own reference quantiles
    (``Phi^-1`` of the interpolated reference CDF, clipped), so marginal shapes do not
    matter; ``correlation`` is the scores' correlation matrix over the ``n_rows``
    reference rows where every one of ``features`` is present. ``scale`` is the ratio of
    the variance of the score products to its Gaussian value (>= 1; 1 for a Gaussian
    copula), which widens the test's null distribution for heavier-tailed dependence.
    Built by :func:`driftsentinel.detectors.multivariate.multivariate_profile`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: list[str] = Field(min_length=2, max_length=MAX_MULTIVARIATE_FEATURES)
    n_rows: int = Field(ge=2, description="Reference rows used (every feature present).")
    correlation: list[list[float]] = Field(description="Correlation of the normal scores, features x features.")
    scale: float = Field(default=1.0, ge=1.0, description="Product-variance ratio to the Gaussian copula's.")

    @model_validator(mode="after")
    def _matrix(self) -> MultivariateProfile:
        d = len(self.features)
        if len(set(self.features)) != d:
            raise ValueError("multivariate features must be distinct")
        if len(self.correlation) != d or any(len(row) != d for row in self.correlation):
            raise ValueError(f"multivariate correlation must be {d} x {d}")
        r = np.asarray(self.correlation, dtype=np.float64)
        if not np.isfinite(r).all() or not np.allclose(r, r.T, atol=1e-9) or not np.allclose(np.diag(r), 1.0):
            raise ValueError("multivariate correlation must be finite, symmetric, with a unit diagonal")
        try:
            np.linalg.cholesky(r)
        except np.linalg.LinAlgError:
            raise ValueError("multivariate correlation must be positive definite") from None
        return self


# --- drift per segment (detectors.segments) -------------------------------------------------------------

#: Bound on the segments a profile may describe per key (a profile file is input, not code).
MAX_PROFILE_SEGMENTS = 10_001


class SegmentProfile(BaseModel):
    """One segment of the training data (the rows whose key has one value): its share of
    the rows and its own per-feature profiles (the segment's reference)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int = Field(ge=1, description="Training rows in the segment.")
    share: float = Field(ge=0, le=1, description="The segment's share of the training rows.")
    features: dict[str, FeatureProfile]


class SegmentsProfile(BaseModel):
    """The training data per value of one segment key (a profile's ``segments[<key>]``).

    ``segments`` holds the top segments by rows, most first, and ``__other__`` (every
    other value pooled) when there are more values than the profile kept; their shares sum
    to 1. A combination key's values are its fields' values joined by ``|``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: list[str] = Field(min_length=1, description="The key's field names (several: a combination).")
    n_values: int = Field(ge=0, description="Distinct values of the key in the training data.")
    segments: dict[str, SegmentProfile] = Field(max_length=MAX_PROFILE_SEGMENTS)

    @model_validator(mode="after")
    def _shares(self) -> SegmentsProfile:
        total = sum(s.share for s in self.segments.values())
        if self.segments and abs(total - 1.0) > 1e-6:
            raise ValueError(f"segment shares sum to {total}, not 1")
        return self


# --- seasonal reference and serial dependence (baseline --period) -------------------------------------

#: Bound on the phases of a profile's seasonal section (phases x features are allocated).
MAX_SEASONAL_PHASES = 1024
#: Bound on the quantiles per phase.
MAX_PHASE_QUANTILES = 101


class SeasonalFeature(BaseModel):
    """One numeric feature conditioned on the phase of the event time, and its serial dependence.

    Per phase (lists of ``phases`` entries, or of 1 when the feature has no cycle of its
    own: its overall reference in every phase): the phase's own value count, how many
    phases its summary pools (1: its own values; more: it borrowed from its neighbours
    on the cycle), the mean, the std and the quantiles (at 0, 1/q, ..., 1). ``residual_quantiles``,
    ``residual_mean`` and ``residual_std`` are those of the phase-standardised values
    ``(x - mean_p) / std_p`` over every phase (the reference the detectors compare a cyclic
    feature's live values with, standardised by their own phase);
    ``acf1`` their lag-1 autocorrelation in event-time order; ``ar1`` and ``ar1_weight`` the
    latent Gaussian AR(1) coefficient and its share of the latent variance whose simulated
    values have the reference's dependence (what ``calibrate`` simulates with).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    counts: list[int] = Field(min_length=1, max_length=MAX_SEASONAL_PHASES)
    pooled: list[int] = Field(min_length=1, max_length=MAX_SEASONAL_PHASES)
    mean: list[float] = Field(min_length=1, max_length=MAX_SEASONAL_PHASES)
    std: list[float] = Field(min_length=1, max_length=MAX_SEASONAL_PHASES)
    quantiles: list[list[float]] = Field(min_length=1, max_length=MAX_SEASONAL_PHASES)
    residual_quantiles: list[float] = Field(min_length=3, max_length=1001)
    residual_mean: float = Field(default=0.0, description="Mean of the phase-standardised values.")
    residual_std: float = Field(default=1.0, gt=0, description="Std of the phase-standardised values.")
    acf1: float = Field(ge=-1, le=1, description="Lag-1 autocorrelation of the phase-standardised values.")
    ar1: float = Field(gt=-1, lt=1, description="Latent Gaussian AR(1) coefficient of the simulator.")
    whiten: float = Field(
        default=0.0,
        gt=-1,
        lt=1,
        description="AR(1) coefficient the detectors' values are whitened with (0: not whitened): they see the "
        "innovations (r_t - whiten r_(t-1)) / sqrt(1 - whiten^2) of the centred phase-standardised values r.",
    )
    whiten_theta: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="MA coefficient of the whitening (ARMA(1,1): an AR(1) level seen through noise; 0: AR(1)).",
    )
    ar1_weight: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Share of the simulator's latent variance that is AR(1) (the rest independent noise).",
    )
    ar1_weight_phase: list[float] | None = Field(
        default=None,
        min_length=2,
        max_length=MAX_SEASONAL_PHASES,
        description="Per phase, the simulator's latent AR(1) share there (an AR(1) level seen through noise whose "
        "share of the variance follows the cycle: Poisson counts of a cyclic rate); None: ar1_weight in every phase.",
    )
    innovation_quantiles: list[float] | None = Field(
        default=None, min_length=3, max_length=1001, description="Quantiles of the reference's innovations."
    )
    innovation_mean: float = 0.0
    innovation_std: float = Field(default=1.0, gt=0)
    reference_cycles: float = Field(
        default=0.0, ge=0, description="Cycles of the period the reference spans (0: unknown)."
    )

    @model_validator(mode="after")
    def _shapes(self) -> SeasonalFeature:
        k = len(self.mean)
        if any(len(v) != k for v in (self.counts, self.pooled, self.std, self.quantiles)):
            raise ValueError("seasonal feature: counts, pooled, mean, std and quantiles need one entry per phase")
        if any(c < 0 for c in self.counts) or any(not 1 <= p <= k for p in self.pooled):
            raise ValueError("seasonal feature: counts must be >= 0 and pooled between 1 and the phases")
        if any(not math.isfinite(v) for v in self.mean) or any(not (math.isfinite(v) and v > 0) for v in self.std):
            raise ValueError("seasonal feature: phase means must be finite and phase stds finite and positive")
        width = len(self.quantiles[0])
        if not 3 <= width <= MAX_PHASE_QUANTILES or any(len(q) != width for q in self.quantiles):
            raise ValueError(
                f"seasonal feature: every phase needs the same number of quantiles (3 to {MAX_PHASE_QUANTILES})"
            )
        w = self.ar1_weight_phase
        if w is not None and (len(w) != k or any(not (math.isfinite(v) and 0 < v <= 1) for v in w)):
            raise ValueError("seasonal feature: ar1_weight_phase needs one weight in (0, 1] per phase")
        if (self.whiten != 0.0) != (self.innovation_quantiles is not None):
            raise ValueError("seasonal feature: a whitened feature needs innovation_quantiles, and only it")
        lists = [*self.quantiles, self.residual_quantiles]
        if self.innovation_quantiles is not None:
            lists.append(self.innovation_quantiles)
        for q in lists:
            if any(not math.isfinite(v) for v in q) or any(b < a for a, b in zip(q, q[1:], strict=False)):
                raise ValueError("seasonal feature: quantiles must be finite and non-decreasing")
        return self


class SeasonalProfile(BaseModel):
    """The training data conditioned on the phase of event time (a profile's ``seasonal``).

    The period is ``seconds`` long, split into ``phases`` phases, phase 0 starting at
    ``origin`` (epoch seconds, UTC) — ``hour_of_day``, ``hour_of_week`` (Monday 00:00 UTC
    is phase 0), a number of seconds, or ``none`` (1 phase: no cycle, only the serial
    dependence). ``time_column`` is the training data's event time; ``detected``: whether
    the period was found by ``baseline --period auto`` (then only the features whose own
    test passed have per-phase summaries) or named by the user (every numeric feature).
    Built by :func:`driftsentinel.detectors.seasonal_profile.seasonal_profile`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    period: str = Field(min_length=1, max_length=64)
    seconds: float = Field(gt=0)
    phases: int = Field(ge=1, le=MAX_SEASONAL_PHASES)
    origin: float = 0.0
    time_column: str
    detected: bool = False
    min_phase_count: int = Field(ge=1)
    features: dict[str, SeasonalFeature]

    @model_validator(mode="after")
    def _phases(self) -> SeasonalProfile:
        if not math.isfinite(self.seconds) or not math.isfinite(self.origin):
            raise ValueError("seasonal period: seconds and origin must be finite")
        for name, feat in self.features.items():
            if len(feat.mean) not in (1, self.phases):
                raise ValueError(f"seasonal feature {name!r} has {len(feat.mean)} phases, not 1 or {self.phases}")
        return self


class ReferenceProfile(BaseModel):
    """Per-feature summaries of training data; ``version`` guards the file format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = PROFILE_VERSION
    source: str = Field(description="Where the training data came from.")
    n_rows: int = Field(ge=0)
    features: dict[str, FeatureProfile]
    performance: dict[str, PerformanceReference] | None = Field(
        default=None, description="Per model name: what performance estimation needs (absent in older profiles)."
    )
    segments: dict[str, SegmentsProfile] | None = Field(
        default=None,
        description="Per segment key (fields joined by '|'): the top segments' shares and profiles "
        "(absent in older profiles).",
    )
    multivariate: MultivariateProfile | None = Field(
        default=None, description="Dependence between the numeric features (absent in older profiles)."
    )
    seasonal: SeasonalProfile | None = Field(
        default=None,
        description="Numeric features per phase of the event time, and their serial dependence "
        "(absent in older profiles and without baseline --period).",
    )

    @model_validator(mode="after")
    def _multivariate_numeric(self) -> ReferenceProfile:
        if self.multivariate is not None:
            bad = [n for n in self.multivariate.features if not isinstance(self.features.get(n), NumericProfile)]
            if bad:
                raise ValueError(f"multivariate feature {bad[0]!r} is not a numeric feature of the profile")
        return self

    @model_validator(mode="after")
    def _seasonal_numeric(self) -> ReferenceProfile:
        if self.seasonal is not None:
            bad = [n for n in self.seasonal.features if not isinstance(self.features.get(n), NumericProfile)]
            if bad:
                raise ValueError(f"seasonal feature {bad[0]!r} is not a numeric feature of the profile")
        return self

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != PROFILE_VERSION:
            raise ValueError(f"profile version {value} is not supported (this driftsentinel reads {PROFILE_VERSION})")
        return value


def load_profile(path: str | Path) -> ReferenceProfile:
    """Read and validate a profile file; :class:`ProfileError` names what is wrong."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ProfileError(f"cannot read reference profile {path}: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark at the start is dropped
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ProfileError(
            f"reference profile {path}: not UTF-8 (byte 0x{raw[exc.start]:02x} at line {line}): save it as UTF-8"
        ) from None
    try:
        return ReferenceProfile.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise ProfileError(f"reference profile {path} is not valid: {where}: {first['msg']}") from None
