"""driftsentinel's contracts: events in, alerts out, configuration, and the detector
core's output (signals, feature statuses).

Pure data and validation (pydantic v2 and numpy only); imports nothing else of ours,
so alert consumers and producers can depend on it alone.
"""

from driftsentinel.schemas.alerts import SCHEMA_VERSION, DriftEvent, SourcePosition, WindowSummary
from driftsentinel.schemas.batch import FeatureBatch
from driftsentinel.schemas.config import (
    RIVER_ADWIN,
    RIVER_PAGE_HINKLEY,
    ADWINConfig,
    AlertPolicyConfig,
    BankConfig,
    CheckpointConfig,
    ConceptDriftConfig,
    ConfigError,
    DetectorBackend,
    KafkaConfig,
    PageHinkleyConfig,
    SidecarConfig,
    WindowTestConfig,
    load_config,
)
from driftsentinel.schemas.events import FeatureEvent, InvalidEvent, decode_event
from driftsentinel.schemas.signals import DriftSignal, FeatureStatus

__all__ = [
    "RIVER_ADWIN",
    "RIVER_PAGE_HINKLEY",
    "SCHEMA_VERSION",
    "ADWINConfig",
    "AlertPolicyConfig",
    "BankConfig",
    "CheckpointConfig",
    "ConceptDriftConfig",
    "ConfigError",
    "DetectorBackend",
    "DriftEvent",
    "DriftSignal",
    "FeatureBatch",
    "FeatureEvent",
    "FeatureStatus",
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
