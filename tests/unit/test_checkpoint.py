"""Checkpoints: the bank's state survives the pickle-free codec and continues exactly."""

from __future__ import annotations

import zlib

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.schemas import BankConfig, FeatureBatch
from driftsentinel.stream.checkpoint import StateFormatError, decode_state, encode_state


def _stream(seed: int, n: int = 12_000, f: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, f)) * 2 + 5
    x[n // 2 :, 0] += 3.0
    x[n // 3 : n // 3 + 2500, 1] -= 4.0
    x[rng.random(x.shape) < 0.03] = np.nan
    return x


def _run(bank: DetectorBank, x: np.ndarray, start: int, names: list[str], batch: int = 1000) -> list[tuple]:
    out = []
    for i in range(start, len(x), batch):
        xb = x[i : min(i + batch, len(x))]
        rows = np.arange(i, i + len(xb))
        out += [
            (i + s.row, s.feature, s.detector, s.status, s.statistic, s.window)
            for s in bank.update(FeatureBatch(names, xb, rows, rows.astype(float)))
        ]
    return out


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), split=st.integers(0, 12_000), late=st.booleans())
def test_split_restore_continue_equals_unbroken(seed: int, split: int, late: bool) -> None:
    x = _stream(seed)
    names = ["a", "b", "c", "d"]
    whole = _run(DetectorBank(BankConfig(warmup=500)), x, 0, names)
    first = DetectorBank(BankConfig(warmup=500))
    got = _run(first, x[:split], 0, names)
    blob = encode_state(first.state_dict())
    restored = DetectorBank.from_state(decode_state(blob), BankConfig(warmup=500))
    got += _run(restored, x, split, names)
    # Decisions and rows are exact; statistics and window summaries agree to rounding
    # (sums of partial sums, Chan's merge of moments: not associative in the last bits).
    assert [g[:4] for g in got] == [w[:4] for w in whole]
    for g, w in zip(got, whole, strict=True):
        assert g[4] == pytest.approx(w[4], rel=1e-9, abs=1e-12)
        a, b = g[5].model_dump(), w[5].model_dump()
        assert a["count"] == b["count"] and a["quantiles"] == b["quantiles"]
        assert a["mean"] == pytest.approx(b["mean"], rel=1e-9) and a["std"] == pytest.approx(b["std"], rel=1e-9)
    if late:  # restored banks keep learning new features
        restored.update(FeatureBatch(["z"], np.ones((3, 1)), np.arange(3), np.zeros(3)))
        assert restored.features[-1] == "z"


def test_state_with_incompatible_config_is_refused() -> None:
    bank = DetectorBank(BankConfig())
    bank.update(FeatureBatch(["a"], np.ones((10, 1)), np.arange(10), np.zeros(10)))
    state = decode_state(encode_state(bank.state_dict()))
    no_ph = BankConfig.model_validate({"page_hinkley": {"enabled": False}})
    with pytest.raises(ValueError, match="detectors"):
        DetectorBank.from_state(state, no_ph)


def test_codec_never_executes_or_accepts_foreign_records() -> None:
    with pytest.raises(StateFormatError):
        decode_state(b"\x80\x04\x95 pickle-ish bytes")
    with pytest.raises(StateFormatError):
        decode_state(zlib.compress(msgpack.packb({"codec": 99, "state": {}})))
    with pytest.raises(StateFormatError):
        decode_state(msgpack.packb({"codec": 1, "state": {}}))  # not compressed
    evil = zlib.compress(
        msgpack.packb({"codec": 1, "state": {"x": {"__ndarray__": "|O", "shape": [1], "data": b"\0" * 8}}})
    )
    with pytest.raises(StateFormatError, match="not allowed"):
        decode_state(evil)
    short = zlib.compress(
        msgpack.packb({"codec": 1, "state": {"x": {"__ndarray__": "<f8", "shape": [4], "data": b"\0" * 8}}})
    )
    with pytest.raises(StateFormatError, match="shape"):
        decode_state(short)
    with pytest.raises(TypeError):
        encode_state({"x": np.array(["a"], dtype=object)})
