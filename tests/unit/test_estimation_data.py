"""benchmarks.nannyml_data: NannyML's datasets fetched once, parsed without pandas, joined by id.

The tests on the real data skip when the nannyml wheel cannot be downloaded (no network);
the others need no network: they fail pip on purpose or plant files in a private cache.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import nannyml_data as nd

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def car_loan() -> nd.Dataset:
    try:
        return nd.load("car_loan")
    except nd.DataUnavailable as e:
        pytest.skip(f"NannyML's data is not available: {e}")


def _offline_env(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    """A private cache and a package index that refuses connections: pip fails fast."""
    monkeypatch.setenv("DRIFTSENTINEL_CACHE_DIR", str(cache))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)


def test_car_loan_columns_and_targets_joined(car_loan: nd.Dataset) -> None:
    ref, an = car_loan.reference, car_loan.analysis
    assert len(ref["id"]) == 50_000 and len(an["id"]) == 50_000
    assert ref["y_pred_proba"].dtype == np.float64 and an["salary_range"].dtype.kind == "U"
    assert set(np.unique(an["repaid"])) == {0.0, 1.0}
    # every analysis row carries the target the targets file gives its id
    targets = nd.read_csv(nd.csv_path("synthetic_car_loan_analysis_target.csv"))
    by_id = dict(zip(targets["id"].tolist(), targets["repaid"].tolist(), strict=True))
    assert [by_id[i] for i in an["id"].tolist()] == an["repaid"].tolist()
    assert car_loan.scores("analysis").shape == (50_000,)
    x, names = car_loan.features("reference", "ordinal")
    assert x.shape == (50_000, 7) and names[1] == "salary_range"
    assert not np.isnan(x).any()  # the reference's own categories all have codes


def test_mc_and_car_price_shapes() -> None:
    try:
        mc, price = nd.load("mc"), nd.load("car_price")
    except nd.DataUnavailable as e:
        pytest.skip(f"NannyML's data is not available: {e}")
    assert mc.scores("reference").shape == (60_000, 3)
    assert set(np.unique(mc.analysis["y_true"])) == set(mc.spec.classes)
    np.testing.assert_allclose(mc.scores("analysis").sum(axis=1), 1.0, atol=0.011)
    assert len(price.analysis["y_true"]) == 60_000 and price.analysis["y_true"].dtype == np.float64
    with pytest.raises(ValueError, match="regression"):
        price.scores("analysis")


def test_a_cached_wheel_needs_no_network(car_loan: nd.Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = nd.ensure_wheel()  # the shared cache's (the fixture fetched it)
    (tmp_path / "nannyml").mkdir()
    shutil.copy(wheel, tmp_path / "nannyml" / nd.WHEEL_NAME)
    monkeypatch.setenv("DRIFTSENTINEL_CACHE_DIR", str(tmp_path))

    def no_network(dest: Path) -> None:
        raise AssertionError("pip download called although the wheel is cached")

    monkeypatch.setattr(nd, "_pip_download", no_network)
    first = nd.load("car_loan")  # extracted from the cached wheel and parsed
    assert (tmp_path / "nannyml" / "parsed").is_dir()
    # the second call reads the parsed arrays: no CSV needed either
    shutil.rmtree(tmp_path / "nannyml" / "csv")
    second = nd.load("car_loan")
    for part in ("reference", "analysis"):
        a, b = getattr(first, part), getattr(second, part)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(second.analysis["repaid"], car_loan.analysis["repaid"])


def test_download_failure_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _offline_env(monkeypatch, tmp_path)
    with pytest.raises(nd.DataUnavailable, match=r"pip download nannyml==0\.13\.1 failed .*check the network"):
        nd.load("car_loan")
    assert not (tmp_path / "nannyml" / nd.WHEEL_NAME).exists()


def test_benchmark_without_data_exits_with_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DRIFTSENTINEL_CACHE_DIR": str(tmp_path),
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
        "PIP_NO_CACHE_DIR": "1",
    }
    env.pop("PIP_FIND_LINKS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.estimation", "--no-nannyml", "--datasets", "car_loan"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("benchmarks.estimation: pip download nannyml==0.13.1 failed")


def test_a_different_wheel_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTSENTINEL_CACHE_DIR", str(tmp_path))

    def fake_download(dest: Path) -> None:
        (dest / nd.WHEEL_NAME).write_bytes(b"not the wheel")

    monkeypatch.setattr(nd, "_pip_download", fake_download)
    with pytest.raises(nd.DataUnavailable, match="refusing it"):
        nd.ensure_wheel()
    assert not (tmp_path / "nannyml" / nd.WHEEL_NAME).exists()


def test_join_is_by_id_not_by_position() -> None:
    analysis = {"id": np.array([10.0, 11.0, 12.0]), "x": np.array([1.0, 2.0, 3.0])}
    targets = {"id": np.array([12.0, 10.0, 11.0]), "y": np.array(["c", "a", "b"])}
    joined = nd.join_targets(analysis, targets, id_column="id", target="y")
    assert joined["y"].tolist() == ["a", "b", "c"]
    with pytest.raises(nd.DataUnavailable, match="1 analysis rows have no target"):
        nd.join_targets(analysis, {"id": np.array([10.0, 11.0]), "y": np.array(["a", "b"])}, id_column="id", target="y")
    with pytest.raises(nd.DataUnavailable, match="duplicate"):
        nd.join_targets(
            analysis,
            {"id": np.array([10.0, 10.0, 11.0, 12.0]), "y": np.array(list("abcd"))},
            id_column="id",
            target="y",
        )


def test_read_csv_types_and_category_codes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "num", "cat", "y_pred", "y"])
        w.writerows([[0, "1.5", "b", 1, 2.0], [1, "", "a", 0, 3.0], [2, "3", "b", 1, 1.0]])
    cols = nd.read_csv(path)
    assert cols["num"].dtype == np.float64 and np.isnan(cols["num"][1])
    assert cols["cat"].tolist() == ["b", "a", "b"]
    spec = nd.DatasetSpec(
        name="t",
        kind="regression",
        reference_csv="",
        analysis_csv="",
        targets_csv="",
        target="y",
        prediction="y_pred",
        features=("num", "cat"),
    )
    analysis = dict(cols, cat=np.array(["a", "z", "b"]))  # "z" never seen in the reference
    ds = nd.Dataset(spec, cols, analysis)
    x, names = ds.features("analysis", "ordinal")
    assert names == ["num", "cat"]
    np.testing.assert_array_equal(x[:, 1], [0.0, np.nan, 1.0])  # codes of the reference's sorted categories
    assert np.isnan(x[1, 0])
    x, names = ds.features("analysis", "onehot")
    assert names == ["num", "cat=a", "cat=b"]
    np.testing.assert_array_equal(x[:, 1:], [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    x, names = ds.features("analysis", "drop")
    assert names == ["num"] and x.shape == (3, 1)
