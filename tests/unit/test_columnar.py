"""Columnar batch messages: decoding, validation, and the same detections as one-event messages."""

from __future__ import annotations

import json

import msgspec
import numpy as np
import pytest

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.batching import columnar_to_batch, to_batches
from driftsentinel.schemas import SidecarConfig
from driftsentinel.schemas.columnar import FORMAT, MAX_ROWS, decode_columns, encode_columns, is_columnar
from driftsentinel.schemas.events import InvalidEvent
from driftsentinel.schemas.fastdecode import decode_event_fast


def _raw(**doc: object) -> bytes:
    return msgspec.msgpack.encode({"format": FORMAT, "rows": 2, **doc})


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x81\xa6format", "not_columns"),  # truncated msgpack
        (msgspec.msgpack.encode({"format": "other/1", "rows": 1, "numeric": {}}), "not_columns"),
        (_raw(numeric={"x": np.zeros(3).tobytes()}), "wrong_length"),
        (_raw(numeric={"x": np.array([1.0, np.inf]).tobytes()}), "non_finite_value"),
        (_raw(categorical={"c": ["a"]}), "wrong_length"),
        (_raw(categorical={"c": ["a", 1]}), "wrong_type"),
        (_raw(numeric={"x": np.zeros(2).tobytes()}, prediction=[0.1]), "wrong_length"),
        (_raw(numeric={"x": np.zeros(2).tobytes()}, label=[float("nan"), 1.0]), "non_finite_value"),
        (_raw(numeric={"x": np.zeros(2).tobytes()}, ts=np.zeros(1).tobytes()), "wrong_length"),
        (_raw(), "missing_features"),
        (msgspec.msgpack.encode({"format": FORMAT, "rows": 0, "numeric": {"x": b""}}), "wrong_length"),
        (msgspec.msgpack.encode({"format": FORMAT, "rows": MAX_ROWS + 1, "numeric": {}}), "wrong_length"),
        (msgspec.msgpack.encode({"format": FORMAT}), "wrong_type"),
    ],
)
def test_malformed_batches_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    assert is_columnar(raw)
    with pytest.raises(InvalidEvent) as exc:
        decode_columns(raw)
    assert exc.value.reason == reason


def test_only_a_map_that_starts_with_format_is_a_batch() -> None:
    assert not is_columnar(b"") and not is_columnar(b'{"features": {}}') and not is_columnar(b"\x81\xa1a")
    assert not is_columnar(msgspec.msgpack.encode({"rows": 1, "format": FORMAT}))
    wide = {"format": FORMAT, "rows": 1, **{f"k{i}": i for i in range(20)}}  # a map16
    assert is_columnar(msgspec.msgpack.encode(wide))


def test_columns_round_trip() -> None:
    x = np.array([1.5, np.nan, -2.0])
    raw = encode_columns(
        numeric={"x": x},
        categorical={"c": ["a", None, "b"]},
        model="m",
        ts=[1.0, 2.0, np.nan],
        id=["r1", "r2", None],
        prediction=[0.5, None, 0.1],
        label=["yes", None, None],
    )
    cb = decode_columns(raw)
    assert cb.rows == 3 and cb.model == "m" and np.array_equal(cb.numeric["x"], x, equal_nan=True)
    assert cb.categorical == {"c": ["a", None, "b"]} and cb.id == ["r1", "r2", None]
    assert cb.prediction == [0.5, None, 0.1] and cb.label == ["yes", None, None] and cb.ts[1] == 2.0
    with pytest.raises(ValueError, match="common length"):
        encode_columns(numeric={"x": [1.0]}, categorical={"c": ["a", "b"]})


def test_a_batch_message_and_its_events_give_the_same_detections() -> None:
    rng = np.random.default_rng(4)
    n, F = 12_000, 3
    X = rng.normal(size=(n, F))
    X[6_000:, 0] += 1.0
    X[rng.random((n, F)) < 0.01] = np.nan
    cats = [["a", "b", None][i % 3] for i in range(n)]
    # as one-event JSON messages at offsets 0..n-1
    events = [
        (
            i,
            decode_event_fast(
                json.dumps(
                    {
                        "model": "m",
                        "features": {
                            **{f"f{j}": (None if np.isnan(X[i, j]) else float(X[i, j])) for j in range(F)},
                            "c": cats[i],
                        },
                    }
                ).encode()
            ),
        )
        for i in range(n)
    ]
    bank_rows = DetectorBank(SidecarConfig().detectors)
    rows_hits = []
    for a in range(0, n, 4096):
        for _model, batch in to_batches(events[a : a + 4096], "default").items():
            rows_hits += [(s.feature, s.detector, s.status, int(batch.offsets[s.row])) for s in bank_rows.update(batch)]
    # as 12 columnar messages of 1,000 rows at offsets 0..11
    bank_cols = DetectorBank(SidecarConfig().detectors)
    cols_hits = []
    for k in range(n // 1000):
        sl = slice(1000 * k, 1000 * (k + 1))
        raw = encode_columns(numeric={f"f{j}": X[sl, j] for j in range(F)}, categorical={"c": cats[sl]}, model="m")
        model, batch = columnar_to_batch(decode_columns(raw), k, "default")
        assert model == "m" and batch.n_rows == 1000
        assert batch.rows_in_message is not None
        cols_hits += [
            (s.feature, s.detector, s.status, 1000 * int(batch.offsets[s.row]) + int(batch.rows_in_message[s.row]))
            for s in bank_cols.update(batch)
        ]
    assert rows_hits == cols_hits
    assert any(h[0] == "f0" and h[2] == "drift" for h in rows_hits)


def test_feature_cap_and_predictions_in_a_batch() -> None:
    raw = encode_columns(
        numeric={"a": [1.0, 2.0], "b": [np.nan, 3.0]},
        categorical={"c": ["x", None]},
        prediction=["yes", "no"],
        label=[1.0, None],
    )
    model, batch = columnar_to_batch(
        decode_columns(raw), 7, "dflt", admit=lambda m, names: [n for n in names if n != "b"]
    )
    assert model == "dflt" and batch.names == ["a", "@label"] and batch.dropped_values == 1
    assert batch.cat_values is not None and batch.rows_in_message is not None
    assert batch.cat_names == ["c", "@prediction"] and batch.cat_values[1].tolist() == [None, "no"]
    assert batch.offsets.tolist() == [7, 7] and batch.rows_in_message.tolist() == [0, 1]
