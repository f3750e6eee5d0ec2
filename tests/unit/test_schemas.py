"""Contracts: event decoding, DriftEvent shape, configuration validation."""

from __future__ import annotations

import json

import pytest

from driftsentinel.schemas import (
    ConfigError,
    DriftEvent,
    FeatureEvent,
    InvalidEvent,
    SidecarConfig,
    decode_event,
    load_config,
)
from driftsentinel.schemas.alerts import make_event_id
from driftsentinel.schemas.events import MAX_EVENT_BYTES


def test_decodes_the_documented_example() -> None:
    raw = (
        b'{"model": "fraud-v3", "ts": "2026-01-01T00:00:00Z", "id": "req-1",'
        b' "features": {"amount": 12.5, "country": "DE", "age": null}, "prediction": 0.83, "label": null}'
    )
    ev = decode_event(raw)
    assert ev.model == "fraud-v3" and ev.id == "req-1"
    assert ev.ts == 1767225600.0
    assert ev.features == {"amount": 12.5, "country": "DE", "age": None}
    assert ev.prediction == 0.83


def test_nan_token_is_missing_not_an_error() -> None:
    ev = decode_event(b'{"features": {"x": NaN, "y": 1}}')
    assert ev.features["x"] != ev.features["x"]  # NaN
    assert ev.model is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"\xc3\x28", "not_utf8"),
        (b"{", "not_json"),
        (b"[" * 100_000 + b"]" * 100_000, "not_json"),
        (b'"just a string"', "not_object"),
        (b"null", "not_object"),
        (b'{"model": "m"}', "missing_features"),
        (b'{"features": null}', "wrong_type"),
        (b'{"features": [1]}', "wrong_type"),
        (b'{"features": {"a": {"b": 1}}}', "wrong_type"),
        (b'{"features": {}, "model": 5}', "wrong_type"),
        (b'{"features": {}, "ts": true}', "wrong_type"),
        (b'{"features": {}, "ts": "yesterday"}', "wrong_type"),
        (b'{"features": {"a": 1e400}}', "non_finite_value"),
        (b'{"features": {"a": -Infinity}}', "non_finite_value"),
        (b'{"features": {"a": "' + b"x" * MAX_EVENT_BYTES + b'"}}', "too_large"),
    ],
)
def test_invalid_events_have_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        decode_event(raw)
    assert info.value.reason == reason
    assert info.value.detail


def test_drift_event_schema_has_the_contract_fields() -> None:
    schema = DriftEvent.model_json_schema()
    for name in (
        "event_id",
        "schema_version",
        "model",
        "feature",
        "detector",
        "status",
        "severity",
        "statistic",
        "threshold",
        "source",
        "event_time",
        "detected_at",
        "window",
        "reference",
    ):
        assert name in schema["properties"], name
    assert set(schema["properties"]["status"]["enum"]) == {"drift", "resolved"}


def test_event_id_is_deterministic_and_position_sensitive() -> None:
    a = make_event_id("g", "t", 0, 10, "m/f0", "adwin", "drift")
    assert a == make_event_id("g", "t", 0, 10, "m/f0", "adwin", "drift")
    assert a != make_event_id("g", "t", 0, 11, "m/f0", "adwin", "drift")
    assert a != make_event_id("g", "t", 1, 10, "m/f0", "adwin", "drift")
    assert a != make_event_id("g", "t", 0, 10, "m/f0", "adwin", "resolved")


def test_zero_config_is_valid() -> None:
    cfg = SidecarConfig()
    assert cfg.detectors.adwin.enabled and cfg.detectors.page_hinkley.enabled
    assert cfg.detectors.backend == "kernel"


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("kafka:\n  bootstrap_server: x\n", "kafka.bootstrap_server"),
        ("detectors:\n  adwin:\n    delta: 2\n", "detectors.adwin.delta"),
        ("detectors:\n  page_hinkley:\n    mode: sideways\n", "detectors.page_hinkley.mode"),
        ("batch_size: 0\n", "batch_size"),
        ("metrics_port: abc\n", "metrics_port"),
        ("alerts:\n  warning_sigma: 3\n  critical_sigma: 1\n", "alerts"),
    ],
)
def test_bad_config_names_the_field(tmp_path, yaml_text: str, field: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert field in str(info.value)


def test_flags_override_file(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("kafka:\n  input_topic: from-file\n  group_id: g1\nmetrics_port: 1\n")
    cfg = load_config(path, {"kafka.input_topic": "from-flag", "metrics_port": None})
    assert cfg.kafka.input_topic == "from-flag" and cfg.kafka.group_id == "g1" and cfg.metrics_port == 1


def test_unreadable_or_non_mapping_config(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)


def test_feature_event_round_trip() -> None:
    ev = FeatureEvent(model="m", ts=1.0, features={"a": 1.0})
    assert decode_event(json.dumps(ev.model_dump()).encode()) == ev
