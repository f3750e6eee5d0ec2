"""Changes present from the first monitored value, and level shifts far outside the clip range.

ADWIN and Page-Hinkley compare the stream with its own past. In zero-config mode that past
used to start after the warm-up (its values only standardised the feature), so a change
present from the first monitored value on had no step in it: measured before the fix, a
mean shift of +1, +3 or +5 sd starting at the end of the warm-up was found in 0 of 5
seeds, and a series doubling there (N(100, 1) -> N(200, 2), far outside the clip range)
raised nothing. The bank now primes both detectors with the warm-up's standardised values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.schemas import BankConfig, DetectorBackend, DriftSignal, FeatureBatch

WARMUP = BankConfig().warmup
#: the detectors that compare the stream with its own past (other detectors of the bank are not tested here)
DETECTORS = ("adwin", "page_hinkley")
Draw = Callable[[np.random.Generator, int], np.ndarray]


def feed(bank: DetectorBank, x: np.ndarray, names: list[str], batch: int = 1000) -> list[tuple[int, DriftSignal]]:
    """Feed ``x`` in batches; return (absolute row, signal) of ADWIN's and Page-Hinkley's signals."""
    out = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        rows = np.arange(i, i + len(xb))
        sigs = bank.update(FeatureBatch(names, xb, rows, rows.astype(float)))
        out += [(i + s.row, s) for s in sigs if s.detector in DETECTORS]
    return out


def first_drift(sigs: list[tuple[int, DriftSignal]]) -> dict[str, tuple[int, DriftSignal]]:
    """Per feature, its first drift signal (absolute row, signal)."""
    out: dict[str, tuple[int, DriftSignal]] = {}
    for r, s in sigs:
        if s.status == "drift":
            out.setdefault(s.feature, (r, s))
    return out


@pytest.mark.parametrize(("start", "shift"), [(WARMUP, 1.0), (WARMUP, 3.0), (WARMUP, 5.0), (WARMUP + 30, 1.0)])
def test_a_shift_from_the_first_monitored_value_is_found(start: int, shift: float) -> None:
    # Before: 0 of 5 features found (each case, 8,000 events).
    rng = np.random.default_rng(11)
    x = rng.standard_normal((start + 1500, 8))
    x[start:, :5] += shift  # five shifted features, three stationary ones
    names = [f"f{i}" for i in range(8)]
    found = first_drift(feed(DetectorBank(BankConfig()), x, names))
    assert set(found) == set(names[:5])
    limit = 200 if shift == 1.0 else 40  # measured (20 seeds): median 55 / 18 / 15 values
    for r, sig in found.values():
        assert start <= r < start + limit
        if start == WARMUP:  # the evidence holds no warm-up value: post-change data, the shift in reference sds
            assert sig.statistic is not None and sig.statistic == pytest.approx(shift, abs=0.5 + 0.1 * shift)


LEVEL_SHIFTS: dict[str, tuple[Draw, float]] = {
    # draw, factor: the values are multiplied by it from the change on
    "normal-100-doubles": (lambda rng, n: rng.normal(100.0, 1.0, n), 2.0),
    "normal-100-halves": (lambda rng, n: rng.normal(100.0, 1.0, n), 0.5),
    "lognormal-doubles": (lambda rng, n: rng.lognormal(0.0, 1.0, n), 2.0),
}


@pytest.mark.parametrize("backend", ["kernel", "river"])
@pytest.mark.parametrize("case", sorted(LEVEL_SHIFTS))
def test_a_level_shift_far_outside_the_clip_range_is_found(case: str, backend: DetectorBackend) -> None:
    # Before: a doubling at the end of the warm-up raised nothing (the clipped values are
    # a constant at the bound, and the detectors had no earlier value to compare it with);
    # the same doubling later was found. Both are found now, by both detectors.
    draw, factor = LEVEL_SHIFTS[case]
    for start in (WARMUP, 3 * WARMUP):
        x = draw(np.random.default_rng(12), start + 1000).reshape(-1, 1)
        x[start:] *= factor
        drift = [(r, s) for r, s in feed(DetectorBank(BankConfig(backend=backend)), x, ["v"]) if s.status == "drift"]
        assert {s.detector for _, s in drift} == set(DETECTORS), start
        # measured: 9-15 values (normal), 55-90 (lognormal, a shift of 0.8 reference sds)
        assert all(start <= r < start + 150 for r, _ in drift), (start, [r for r, _ in drift])
        if case.startswith("normal"):  # the evidence is unclipped: a shift of 100 sds (-50), not the bound
            assert all(abs(s.statistic or 0.0) > 40.0 for _, s in drift)


def test_priming_is_cut_invariant_and_survives_a_restart() -> None:
    rng = np.random.default_rng(13)
    x = rng.standard_normal((3000, 4))
    x[WARMUP:, 0] += 2.0
    x[:400, 2] = np.nan  # a feature whose warm-up ends later, shifted from its first monitored value
    x[1400:, 2] += 2.0
    x[:, 3] = 4.0  # a constant feature: the constant watch's, never shown to the change detectors
    names = ["a", "b", "c", "k"]
    bank = DetectorBank(BankConfig())
    whole = [(r, s.feature, s.detector, s.status) for r, s in feed(bank, x, names, 10_000)]
    assert {f for _, f, _, st in whole if st == "drift"} == {"a", "c"}
    assert bank.status()[3].window_size == {"adwin": 0}
    for cut, restart in ((1, 700), (97, 999), (333, 1200)):
        first = DetectorBank(BankConfig())
        part = feed(first, x[:restart], names, cut)  # the checkpoint is taken within the warm-up
        again = DetectorBank.from_state(first.state_dict(), BankConfig())
        part += [(restart + r, s) for r, s in feed(again, x[restart:], names, cut + 50)]
        assert [(r, s.feature, s.detector, s.status) for r, s in part] == whole


def test_a_feature_discovered_later_is_primed_too() -> None:
    rng = np.random.default_rng(14)
    bank = DetectorBank(BankConfig())
    feed(bank, rng.standard_normal((2000, 1)), ["a"])
    x = rng.standard_normal((WARMUP + 500, 2))
    x[WARMUP:, 1] += 3.0  # "b" appears now and shifts from its first monitored value on
    rows = [r for r, s in feed(bank, x, ["a", "b"], batch=250) if s.status == "drift"]
    found = first_drift(feed(DetectorBank(BankConfig()), x[:, 1:], ["b"]))  # alone, from scratch
    assert rows and all(WARMUP <= r < WARMUP + 40 for r in rows) and found["b"][0] == min(rows)
