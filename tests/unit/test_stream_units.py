"""Pure parts of the stream shell: column batches, alert policy, CLI wiring."""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
import pytest

from driftsentinel.detectors.batching import to_batches
from driftsentinel.detectors.policy import AlertPolicy
from driftsentinel.schemas import AlertPolicyConfig, DriftSignal, FeatureEvent, WindowSummary, load_config
from driftsentinel.stream.cli import main
from driftsentinel.stream.clients import effective_config_line

W = WindowSummary(count=3, mean=0.0, std=1.0, quantiles={}, missing_ratio=0.0)


def test_batches_split_by_model_keep_order_and_missing() -> None:
    events: list[Any] = [
        (0, FeatureEvent(model="a", ts=5.0, features={"x": 1, "y": True})),
        (1, FeatureEvent(model="b", features={"x": 2.0})),
        (2, FeatureEvent(model=None, features={"x": None, "c": "DE"})),
        (3, FeatureEvent(model="a", features={"z": 3.0})),
    ]
    out = to_batches(events, default_model="dflt")
    assert sorted(out) == ["a", "b", "dflt"]
    a = out["a"]
    assert a.names == ["x", "z"] and a.cat_names == ["y"]  # booleans are categorical
    np.testing.assert_array_equal(a.offsets, [0, 3])
    np.testing.assert_array_equal(a.values, [[1.0, np.nan], [np.nan, 3.0]])
    assert a.cat_values is not None
    assert a.cat_values.tolist() == [["true"], [None]]
    assert a.event_times[0] == 5.0 and np.isnan(a.event_times[1])
    assert out["dflt"].names == [] and out["dflt"].cat_names == ["c"]


def test_prediction_and_label_travel_as_features() -> None:
    ev = FeatureEvent(model="m", features={"x": 1.0}, prediction=0.7, label="yes")
    [batch] = to_batches([(0, ev)], "d").values()  # type: ignore[list-item]
    assert batch.names == ["x", "@prediction"] and batch.cat_names == ["@label"]


def test_mixed_types_give_both_columns() -> None:
    evs: list[Any] = [(0, FeatureEvent(features={"v": 1.0})), (1, FeatureEvent(features={"v": "oops"}))]
    [batch] = to_batches(evs, "d").values()
    assert batch.names == ["v"] and batch.cat_names == ["v"]
    assert batch.cat_values is not None
    assert np.isnan(batch.values[1, 0]) and batch.cat_values[1, 0] == "oops"


def _signal(stat: float | None, status: Literal["drift", "resolved"] = "drift") -> DriftSignal:
    return DriftSignal(
        row=0,
        feature="f",
        detector="adwin",
        status=status,
        statistic=stat,
        statistic_name="mean_shift_sigma",
        threshold=None,
        window=W,
        reference=W,
    )


def test_severity_grows_with_the_shift() -> None:
    policy = AlertPolicy(AlertPolicyConfig(warning_sigma=0.5, critical_sigma=2.0), "g")
    assert policy.severity(0.1) == "info"
    assert policy.severity(-0.7) == "warning"
    assert policy.severity(2.5) == "critical"
    assert policy.severity(None) == "info"
    assert policy.severity(0.3, 0.1, "ks") == "critical" and policy.severity(0.15, 0.1, "ks") == "warning"


def test_cooldown_suppresses_repeated_drift_events() -> None:
    policy = AlertPolicy(AlertPolicyConfig(cooldown_events=100), "g")
    sig = _signal(1.0)
    assert policy.admit(sig, "m", "t", 0, 1000)
    assert not policy.admit(sig, "m", "t", 0, 1050)
    assert policy.admit(sig, "m", "t", 1, 1050)  # other partition
    assert policy.admit(_signal(0.0, "resolved"), "m", "t", 0, 1060)
    assert policy.admit(sig, "m", "t", 0, 1100)


def test_event_carries_position_and_stable_id() -> None:
    policy = AlertPolicy(AlertPolicyConfig(), "g")
    kw: dict[str, Any] = dict(model="m", topic="t", partition=2, offset=99, event_time=12.0)
    a = policy.to_event(_signal(1.5), now=1.0, **kw)
    b = policy.to_event(_signal(1.5), now=2.0, **kw)
    assert a.event_id == b.event_id and a.key == "m/f"
    assert a.source.partition == 2 and a.source.offset == 99 and a.event_time == 12.0
    json.loads(a.model_dump_json())


def test_schema_command_prints_the_alert_schema(capsys) -> None:
    assert main(["schema", "alert"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "DriftEvent"


def test_run_with_bad_flag_value_exits_2_naming_field(capsys) -> None:
    assert main(["run", "--metrics-port", "70000"]) == 2
    assert "metrics_port" in capsys.readouterr().err


def test_effective_config_redacts_secrets() -> None:
    cfg = load_config(None, {"kafka.consumer": {"sasl.password": "hunter2", "fetch.min.bytes": 1}})
    line = effective_config_line(cfg)
    assert "hunter2" not in line and "fetch.min.bytes" in line


def test_demo_rejects_unknown_drift_feature(capsys) -> None:
    code = main(["demo", "--bootstrap-servers", "127.0.0.1:1", "--features", "3", "--drift-features", "f7"])
    assert code == 2 and "f7" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["alert", "event", "config"])
def test_every_schema_renders(which: str, capsys) -> None:
    assert main(["schema", which]) == 0
    assert json.loads(capsys.readouterr().out)["type"] == "object"
