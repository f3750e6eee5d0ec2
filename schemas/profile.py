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


class ReferenceProfile(BaseModel):
    """Per-feature summaries of training data; ``version`` guards the file format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = PROFILE_VERSION
    source: str = Field(description="Where the training data came from.")
    n_rows: int = Field(ge=0)
    features: dict[str, FeatureProfile]

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != PROFILE_VERSION:
            raise ValueError(f"profile version {value} is not supported (this driftsentinel reads {PROFILE_VERSION})")
        return value


def load_profile(path: str | Path) -> ReferenceProfile:
    """Read and validate a profile file; :class:`ProfileError` names what is wrong."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ProfileError(f"cannot read reference profile {path}: {exc}") from None
    try:
        return ReferenceProfile.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise ProfileError(f"reference profile {path} is not valid: {where}: {first['msg']}") from None
