"""driftsentinel's contracts: events in, alerts out, configuration.

Pure data and validation (pydantic v2 and numpy only); imports nothing else of ours,
so alert consumers and producers can depend on it alone.
"""

from driftsentinel.schemas.alerts import SCHEMA_VERSION, DriftEvent, SourcePosition, WindowSummary
from driftsentinel.schemas.batch import FeatureBatch
from driftsentinel.schemas.config import (
    ADWINConfig,
    AlertPolicyConfig,
    BankConfig,
    CheckpointConfig,
    ConceptDriftConfig,
    ConfigError,
    KafkaConfig,
    PageHinkleyConfig,
    SidecarConfig,
    WindowTestConfig,
    load_config,
)
from driftsentinel.schemas.events import FeatureEvent, InvalidEvent, decode_event

__all__ = [
    "SCHEMA_VERSION",
    "ADWINConfig",
    "AlertPolicyConfig",
    "BankConfig",
    "CheckpointConfig",
    "ConceptDriftConfig",
    "ConfigError",
    "DriftEvent",
    "FeatureBatch",
    "FeatureEvent",
    "InvalidEvent",
    "KafkaConfig",
    "PageHinkleyConfig",
    "SidecarConfig",
    "SourcePosition",
    "WindowSummary",
    "WindowTestConfig",
    "decode_event",
    "load_config",
]
