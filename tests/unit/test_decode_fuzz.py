"""Hostile input for ``schemas.events.decode_event`` (issue 6, part 5).

The contract the sidecar loop relies on (it catches ``InvalidEvent`` and nothing else):

* on any input, ``decode_event`` returns a ``FeatureEvent`` or raises ``InvalidEvent``
  whose ``reason`` is one of ``InvalidReason`` -- never another exception, never a crash;
* what it accepts is safe downstream: every numeric feature value converts to a finite
  float64 (``stream.columns`` does ``float(value)``), ``ts`` and ``prediction`` are finite
  (README: "infinite numbers" are malformed), and every string can be encoded as UTF-8
  (feature names become Prometheus label values and alert keys);
* valid events always decode, with their values;
* by our contract some odd-looking inputs are *valid*: duplicate keys (the last one
  wins, as in ``json.loads``), the string ``"NaN"`` as a feature value (categorical), the
  JSON literal ``NaN`` (missing).
"""

from __future__ import annotations

import json
import math
import typing

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from driftsentinel.schemas.events import MAX_EVENT_BYTES, FeatureEvent, InvalidEvent, InvalidReason, decode_event

REASONS = frozenset(typing.get_args(InvalidReason))
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(raw: bytes | None) -> FeatureEvent | InvalidEvent:
    """decode_event's result or its InvalidEvent; any other exception fails the test with the input."""
    try:
        return decode_event(raw)
    except InvalidEvent as exc:
        assert exc.reason in REASONS, (exc.reason, raw[:200] if raw else raw)
        return exc
    except BaseException as exc:  # noqa: BLE001 - the point of the test
        shown = raw if raw is None or len(raw) <= 300 else raw[:300] + b"..."
        pytest.fail(f"decode_event raised {type(exc).__name__}: {exc!s:.200} on {shown!r}")


def assert_safe_downstream(ev: FeatureEvent) -> None:
    """What the loop does with an accepted event must not be able to raise."""
    for name, value in ev.features.items():
        name.encode("utf-8")  # Prometheus label value, alert key
        if isinstance(value, str):
            value.encode("utf-8")
        elif value is not None:
            as_float = float(value)  # stream.columns: row[j] = float(value)
            assert not math.isinf(as_float), (name, value)
    for text in (ev.model, ev.id):
        if text is not None:
            text.encode("utf-8")
    if ev.ts is not None:
        assert math.isfinite(ev.ts), f"accepted a non-finite ts: {ev.ts}"
    if isinstance(ev.prediction, float):
        assert not math.isinf(ev.prediction), f"accepted an infinite prediction: {ev.prediction}"


def check(raw: bytes | None) -> FeatureEvent | InvalidEvent:
    result = outcome(raw)
    if isinstance(result, FeatureEvent):
        assert_safe_downstream(result)
    return result


# ---------------------------------------------------------------------------
# Strategies

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
text_chars = st.characters(exclude_categories=["Cs"])  # Cs: lone surrogates are not text
feature_names = st.text(alphabet=text_chars, min_size=1, max_size=30)
valid_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=True, allow_infinity=False)
    | st.text(alphabet=text_chars, max_size=20)
)
valid_events = st.fixed_dictionaries(
    {"features": st.dictionaries(feature_names, valid_values, max_size=20)},
    optional={
        "model": st.text(alphabet=text_chars, min_size=1, max_size=20),
        "ts": st.none() | st.floats(min_value=0, max_value=4e9) | st.integers(0, 4_000_000_000),
        "id": st.text(alphabet=text_chars, max_size=20),
        "prediction": st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
        "label": st.none() | st.floats(allow_nan=False, allow_infinity=False),
        "extra": json_values,
    },
)


def encode(doc: object) -> bytes:
    return json.dumps(doc).encode()  # NaN -> the NaN literal, which json.loads reads back


# ---------------------------------------------------------------------------
# Properties


@FUZZ
@given(st.binary(max_size=2000))
@example(b"")
@example(b"\x00")
@example(b"\xff\xfe\xfd")
@example(b"\xef\xbb\xbf{}")
@example(b"\xed\xa0\x80")  # CESU-8 surrogate: not UTF-8
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    check(raw)


@FUZZ
@given(json_values)
def test_arbitrary_json_values_never_crash(doc: object) -> None:
    check(encode(doc))


@FUZZ
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6), json_values)
def test_arbitrary_objects_with_a_features_field_never_crash(doc: dict, features: object) -> None:
    check(encode({**doc, "features": features}))


@FUZZ
@given(valid_events)
def test_valid_events_always_decode_with_their_values(doc: dict) -> None:
    result = check(encode(doc))
    assert isinstance(result, FeatureEvent), f"{result!r} for {doc!r}"
    assert set(result.features) == set(doc["features"])
    for name, value in doc["features"].items():
        got = result.features[name]
        if isinstance(value, float) and math.isnan(value):
            assert got is None or (isinstance(got, float) and math.isnan(got))
        elif isinstance(value, bool) or value is None or isinstance(value, str):
            assert got == value
        else:
            assert float(typing.cast(float, got)) == float(value)


@FUZZ
@given(valid_events, st.data())
def test_truncated_valid_events_are_rejected(doc: dict, data: st.DataObject) -> None:
    raw = encode(doc)
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    result = check(raw[:cut])
    assert isinstance(result, InvalidEvent)
    assert result.reason in {"empty", "not_utf8", "not_json"}


@FUZZ
@given(
    valid_events, st.data(), st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
)
def test_invalid_utf8_anywhere_is_not_utf8(doc: dict, data: st.DataObject, junk: bytes) -> None:
    raw = encode(doc)
    at = data.draw(st.integers(min_value=0, max_value=len(raw)))
    result = check(raw[:at] + junk + raw[at:])
    assert isinstance(result, InvalidEvent) and result.reason == "not_utf8"


@FUZZ
@given(valid_events, st.sampled_from(["features", "model", "ts", "id"]))
def test_duplicate_keys_last_one_wins(doc: dict, key: str) -> None:
    """``{"features": {...}, ..., "features": {"dup": 1}}`` -- json.loads semantics, valid."""
    raw = encode(doc)
    override = {"features": {"dup": 1.0}, "model": "dup-model", "ts": 123.0, "id": "dup-id"}[key]
    dup = raw[:-1] + b", " + json.dumps(key).encode() + b": " + json.dumps(override).encode() + b"}"
    result = check(dup)
    assert isinstance(result, FeatureEvent)
    assert getattr(result, key) == override


# ---------------------------------------------------------------------------
# Named hostile inputs


@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_json_is_not_json(depth: int, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    for raw in (opener * depth + closer * depth, b'{"features": {"x": ' + opener * depth + closer * depth + b"}}"):
        result = check(raw)
        assert isinstance(result, InvalidEvent)
        assert result.reason in {"not_json", "wrong_type", "not_object"}, result


def test_deeply_nested_but_parseable_features_are_wrong_type() -> None:
    result = check(b'{"features": {"x": ' + b"[" * 500 + b"]" * 500 + b"}}")
    assert isinstance(result, InvalidEvent) and result.reason == "wrong_type"


@pytest.mark.parametrize("literal", [b"1e400", b"-1e400", b"Infinity", b"-Infinity"])
def test_infinite_feature_values_are_non_finite_value(literal: bytes) -> None:
    result = check(b'{"features": {"x": ' + literal + b"}}")
    assert isinstance(result, InvalidEvent) and result.reason == "non_finite_value"


def test_nan_literal_is_missing_and_nan_string_is_categorical() -> None:
    ev = check(b'{"features": {"x": NaN, "y": "NaN", "z": null}}')
    assert isinstance(ev, FeatureEvent)
    assert ev.features["x"] is None or math.isnan(ev.features["x"])  # type: ignore[arg-type]
    assert ev.features["y"] == "NaN"
    assert ev.features["z"] is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"features": {"x": 1' + b"0" * 400 + b"}}", id="feature-10**400"),
        pytest.param(b'{"features": {"x": -1' + b"0" * 400 + b"}}", id="feature--10**400"),
        pytest.param(b'{"features": {"x": ' + b"9" * 5000 + b"}}", id="feature-5000-digits"),
        pytest.param(b'{"ts": 1' + b"0" * 400 + b', "features": {}}', id="ts-10**400"),
        pytest.param(b'{"ts": ' + b"9" * 5000 + b', "features": {}}', id="ts-5000-digits"),
        pytest.param(b'{"prediction": 1' + b"0" * 400 + b', "features": {}}', id="prediction-10**400"),
    ],
)
def test_huge_integers_are_rejected_or_representable(raw: bytes) -> None:
    """A JSON integer beyond float64's range must not reach ``float(value)`` downstream."""
    check(raw)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"ts": 1e400, "features": {}}', id="ts-1e400"),
        pytest.param(b'{"ts": -1e400, "features": {}}', id="ts--1e400"),
        pytest.param(b'{"prediction": 1e400, "features": {}}', id="prediction-1e400"),
    ],
)
def test_infinite_ts_and_prediction_are_rejected(raw: bytes) -> None:
    result = check(raw)
    assert isinstance(result, InvalidEvent)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"features": {"\\ud800": 1.0}}', id="feature-name"),
        pytest.param(b'{"features": {"x": "\\udfff"}}', id="feature-value"),
        pytest.param(b'{"model": "\\ud800", "features": {"x": 1.0}}', id="model"),
    ],
)
def test_lone_surrogate_escapes_do_not_reach_the_loop(raw: bytes) -> None:
    """``"\\ud800"`` is valid JSON syntax but no text: it cannot be a label or a key."""
    check(raw)


def test_over_the_size_limit_is_too_large_even_when_valid() -> None:
    pad = "x" * MAX_EVENT_BYTES
    result = check(encode({"features": {"x": 1.0}, "id": pad}))
    assert isinstance(result, InvalidEvent) and result.reason == "too_large"
    result = check(b"\xff" * (MAX_EVENT_BYTES + 1))
    assert isinstance(result, InvalidEvent) and result.reason == "too_large"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"null", "not_object"),
        (b'"features"', "not_object"),
        (b"[]", "not_object"),
        (b"{}", "missing_features"),
        (b'{"features": []}', "wrong_type"),
        (b'{"features": {"x": {"y": 1}}}', "wrong_type"),
        (b'{"features": {}, "ts": true}', "wrong_type"),
        (b'{"features": {}, "ts": "yesterday"}', "wrong_type"),
        (b'{"features": {}, "model": 7}', "wrong_type"),
    ],
)
def test_named_malformed_inputs(raw: bytes | None, reason: str) -> None:
    result = check(raw)
    assert isinstance(result, InvalidEvent) and result.reason == reason
