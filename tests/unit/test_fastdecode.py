"""The fast decode path and the pydantic reference agree on every input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftsentinel.schemas.events import FeatureEvent, InvalidEvent, decode_event
from driftsentinel.schemas.fastdecode import decode_event_fast


def verdict(fn, raw):
    try:
        ev = fn(raw)
    except InvalidEvent as exc:
        return ("invalid", exc.reason)
    return (
        "ok",
        ev.model,
        ev.ts,
        ev.id,
        ev.prediction,
        ev.label,
        {k: (v, type(v).__name__) if v == v else ("nan", "float") for k, v in ev.features.items()},
    )


def assert_agree(raw: bytes | None) -> None:
    assert verdict(decode_event_fast, raw) == verdict(decode_event, raw), raw


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.sampled_from([10**400, -(10**400)]),
)
values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3), max_leaves=5
)
ts_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00+02:00", "yesterday", ""]),
)


@settings(max_examples=400, deadline=None)
@given(
    features=st.one_of(st.dictionaries(st.text(max_size=4), values, max_size=6), values),
    model=st.one_of(st.none(), st.text(max_size=4), st.integers()),
    ts=ts_values,
    extra=st.dictionaries(st.sampled_from(["id", "prediction", "label", "other"]), scalars, max_size=3),
    drop_features=st.booleans(),
)
def test_agree_on_generated_documents(features, model, ts, extra, drop_features) -> None:
    doc = {"model": model, "ts": ts, **extra}
    if not drop_features:
        doc["features"] = features
    assert_agree(json.dumps(doc).encode())


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64))
def test_agree_on_arbitrary_bytes(raw: bytes) -> None:
    assert_agree(raw)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"{",
        b"[]",
        b"null",
        b'"x"',
        b"\xff",
        b'{"features": {"a": NaN}}',
        b'{"features": {"a": Infinity}}',
        b'{"features": {"a": 1e400}}',
        b'{"features": {"a": 1, "a": "x"}}',
        b'{"features": {}, "features": {"b": 2}}',
        b'{"features": {"a": "NaN"}}',
        b'{"features": {}, "ts": "2026-01-01T00:00:00Z"}',
        b'{"features": {}, "ts": true}',
        b'{"features": {}, "ts": NaN}',
        b'{"features": {}, "ts": 1e400}',
        b'{"features": {"n": ' + b"9" * 500 + b"}}",
        b"[" * 5000 + b"]" * 5000,
        b'{"features": ' + b'{"a":' * 3000 + b"1" + b"}" * 3001,
        b'{"features": {"x": 1.0}, "prediction": 3, "label": "yes", "id": "r"}',
        b'{"features": {"x": 1}, "id": 5}',
        b'\xef\xbb\xbf{"features": {}}',
        b'"\x80"',
        b'{"features": {"a": "\x80\x81"}}',
        b'{"m\xff": 1, "features": {}}',
        b'{"features": {"\xc3\x28": 1}}',
        b'{"model": "\xed\xa0\x80", "features": {}}',
    ],
)
def test_agree_on_edge_cases(raw) -> None:
    assert_agree(raw)


def test_valid_events_round_trip_through_both() -> None:
    ev = FeatureEvent(model="m", ts=1.5, id="r", features={"a": 1.5, "b": None, "c": "DE", "d": True, "e": 3})
    raw = ev.model_dump_json().encode()
    assert verdict(decode_event_fast, raw)[0] == "ok"
    assert_agree(raw)


def test_all_numeric_events_take_the_numeric_decoder_and_still_agree() -> None:
    import driftsentinel.schemas.fastdecode as fd

    fd._skip_numeric = 0
    raw = b'{"features": {"a": 1, "b": 2.5}, "prediction": 0.5}'
    assert type(decode_event_fast(raw)) is fd.NumericEventView
    assert_agree(raw)
    fd._skip_numeric = 0
    assert type(decode_event_fast(b'{"features": {"a": 1, "c": "x"}}')) is fd.EventView
    assert fd._skip_numeric == fd._NUMERIC_RETRY  # mixed events: the general decoder for a while
    hostile = [
        b'{"features": {"a": 1e400}}',
        b'{"features": {"n": ' + b"9" * 500 + b"}}",
        b'{"features": {"a": 1}, "prediction": 1e400}',
        b'{"features": {"a": true}}',
        b'{"features": {"a": null, "b": 1}}',
        b'{"features": {"a": 1}, "ts": "yesterday"}',
    ]
    for skip in (0, 5):  # the numeric decoder first, or the general one
        for raw in hostile:
            fd._skip_numeric = skip
            assert_agree(raw)
