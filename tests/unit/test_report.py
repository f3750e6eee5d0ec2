"""``driftsentinel replay --plot/--html/--progress``: pictures and report of a replay."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is not installed")

from driftsentinel.detectors.bank import DetectorBank  # noqa: E402
from driftsentinel.detectors.policy import AlertPolicy  # noqa: E402
from driftsentinel.detectors.profile import numeric_profile  # noqa: E402
from driftsentinel.schemas import BankConfig, DriftEvent, FeatureBatch, SidecarConfig  # noqa: E402
from driftsentinel.schemas.config import AlertPolicyConfig  # noqa: E402
from driftsentinel.schemas.profile import CategoricalProfile, NumericProfile, ReferenceProfile  # noqa: E402
from driftsentinel.stream.cli import main  # noqa: E402
from driftsentinel.stream.demo import demo_values  # noqa: E402
from driftsentinel.stream.report import MAX_FIGURES, ReplayRecorder, render_html, render_png  # noqa: E402
from driftsentinel.stream.report_figures import STYLES, draw_feature, new_figure, row_height  # noqa: E402
from driftsentinel.stream.report_views import FeatureView, build_views, detector_name  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COUNTRIES = ["US", "DE", "FR", "GB", "IN"]


def write_jsonl(
    path: Path, events: int = 12_000, drift_at: int = 6_000, drift: tuple[int, ...] = (0, 2), shift: float = 1.0
) -> Path:
    values = demo_values(events, 4, drift_at, list(drift), shift, seed=7)
    with path.open("w") as fh:
        for i, row in enumerate(values):
            doc = {
                "model": "fraud",
                "ts": 1.7e9 + i,
                "id": f"r{i}",
                "features": {f"f{j}": float(x) for j, x in enumerate(row)},
            }
            fh.write(json.dumps(doc) + "\n")
        fh.write("{not json\n")
    return path


def write_mixed(tmp: Path, train: int = 5_000, live: int = 15_000) -> tuple[Path, Path]:
    """Training CSV and live JSONL: ``amount`` x1.6 and ``country`` (IN 10 % -> 35 %) from the
    live half, ``income`` missing from 0 rising to 40 %; ``age`` and ``device`` stable."""
    rng = np.random.default_rng(3)

    def rows(n: int, drift: bool) -> dict[str, list[object]]:
        amount = rng.lognormal(3.0, 0.6, n)
        country = rng.choice(COUNTRIES, n, p=[0.4, 0.2, 0.15, 0.15, 0.1])
        miss = np.zeros(n, bool)
        if drift:
            late = np.arange(n) >= n // 2
            amount = np.where(late, amount * 1.6, amount)
            country = np.where(late, rng.choice(COUNTRIES, n, p=[0.15, 0.2, 0.15, 0.15, 0.35]), country)
            miss = rng.random(n) < np.linspace(0.0, 0.4, n)
        income = rng.normal(50_000, 15_000, n)
        return {
            "amount": [round(float(v), 4) for v in amount],
            "age": [float(v) for v in rng.normal(40, 12, n).round()],
            "income": [None if m else round(float(v), 2) for v, m in zip(income, miss, strict=True)],
            "country": [str(c) for c in country],
            "device": [str(d) for d in rng.choice(["ios", "android", "web"], n, p=[0.3, 0.5, 0.2])],
        }

    cols = rows(train, False)
    csv = tmp / "train.csv"
    with csv.open("w") as fh:
        fh.write(",".join(cols) + "\n")
        for i in range(train):
            fh.write(",".join(str(cols[c][i]) for c in cols) + "\n")
    cols = rows(live, True)
    jsonl = tmp / "live.jsonl"
    with jsonl.open("w") as fh:
        for i in range(live):
            doc = {"model": "fraud", "ts": 1.7e9 + i, "features": {c: cols[c][i] for c in cols}}
            fh.write(json.dumps(doc) + "\n")
    return csv, jsonl


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC, "not a PNG"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def decodes_as_image(data: bytes) -> tuple[int, ...]:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(data), format="png").shape


def table_rows(text: str) -> dict[str, list[str]]:
    """feature -> its cells (tags stripped) in the HTML features table."""
    tables = "".join(re.findall(r'<table class="features">(.*?)</table>', text, re.S))
    out = {}
    for row in re.findall(r'<tr class="[\w-]+">(.*?)</tr>', tables, re.S):
        cells = [re.sub(r"<[^>]+>", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        out[cells[0].split()[0]] = cells
    return out


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("replay")
    src = write_jsonl(tmp / "shifted.jsonl")
    out = {"input": src, "alerts": tmp / "alerts.jsonl", "png": tmp / "report.png", "html": tmp / "report.html"}
    code = main(
        ["replay", "--input", str(src), "--output", str(out["alerts"]), "--plot", str(out["png"])]
        + ["--html", str(out["html"])]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The same live file with a training profile and without one (the warm-up), via the CLI."""
    tmp = tmp_path_factory.mktemp("mixed")
    csv, live = write_mixed(tmp)
    assert main(["baseline", "--input", str(csv), "--out", str(tmp / "p.json")]) == 0
    out: dict[str, object] = {"dir": tmp, "live": live, "profile": tmp / "p.json"}
    for name, extra in (("profile", ["--reference", str(tmp / "p.json")]), ("warmup", [])):
        html, png = tmp / f"{name}.html", tmp / f"{name}.png"
        args = ["replay", "--input", str(live), "--output", str(tmp / f"{name}.jsonl"), "--html", str(html)]
        assert main([*args, "--plot", str(png), *extra]) == 0
        out[f"html_{name}"] = html.read_text()
    return out


@pytest.fixture(scope="module")
def profiled(mixed: dict[str, object]) -> ReplayRecorder:
    """The recorder of the mixed replay against its training profile."""
    return recorder_for(Path(str(mixed["live"])), SidecarConfig(reference=str(mixed["profile"])))


def recorder_for(live: Path, config: SidecarConfig) -> ReplayRecorder:
    from driftsentinel.stream.replay import replay_file

    rec = ReplayRecorder(config)
    replay_file(live, config, io.StringIO(), recorder=rec)
    return rec


def by_feature(views: list[FeatureView]) -> dict[str, FeatureView]:
    return {v.feature: v for v in views}


# --------------------------------------------------------------------------- the PNG and the HTML
def test_plot_is_a_valid_png_of_the_drifting_features(replayed: dict[str, Path]) -> None:
    data = replayed["png"].read_bytes()
    width, height = png_size(data)
    assert width >= 800 and height >= 2 * 250, "one row per drifting feature (f0 and f2)"
    shape = decodes_as_image(data)
    assert shape[:2] == (height, width)


def test_html_is_self_contained_with_the_feature_table_and_embedded_plots(replayed: dict[str, Path]) -> None:
    text = replayed["html"].read_text()
    assert text.startswith("<!DOCTYPE html>")
    rows = table_rows(text)
    assert set(rows) == {"f0", "f1", "f2", "f3"}
    alerts = [json.loads(line) for line in replayed["alerts"].read_text().splitlines()]
    for f in ("f0", "f2"):  # the first-drift cell names the earliest detection, where and by whom
        first = min(
            (a for a in alerts if a["feature"] == f and a["status"] == "drift"), key=lambda a: a["source"]["offset"]
        )
        assert rows[f][1] == "drift", rows[f]
        assert rows[f][2].startswith(f"event {first['source']['offset']:,}: {detector_name(first['detector'])} "), rows[
            f
        ]
    for f in ("f1", "f3"):
        assert rows[f][1] == "ok"
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) >= 2  # the drifting features, and any stable one near a threshold
    for b64 in images:
        png_size(base64.b64decode(b64))
    for f in ("f0", "f2"):  # a drifting feature's name links to its figure
        assert re.search(rf'<a href="#fig-\d+">{f}</a>', text)
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "1 invalid (not_json: 1)" in text


def test_alerts_are_the_same_with_and_without_pictures(replayed: dict[str, Path], tmp_path: Path) -> None:
    plain = tmp_path / "plain.jsonl"
    assert main(["replay", "--input", str(replayed["input"]), "--output", str(plain)]) == 0

    def ids(p: Path) -> list[str]:
        return [json.loads(line)["event_id"] for line in p.read_text().splitlines()]

    assert ids(plain) == ids(replayed["alerts"]) and len(ids(plain)) >= 2  # one episode per drifting feature


def test_no_drift_still_writes_a_png(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "stable.jsonl", events=3_000, drift=())
    png, html = tmp_path / "none.png", tmp_path / "none.html"
    args = ["replay", "--input", str(src), "--output", str(tmp_path / "a.jsonl"), "--plot", str(png)]
    assert main([*args, "--html", str(html)]) == 0
    png_size(png.read_bytes())
    assert "No drift detected." in html.read_text()


# --------------------------------------------------------------------------- every cell, every feature
def test_every_feature_has_its_reference_live_shift_and_missing_cells(mixed: dict[str, object]) -> None:
    for name in ("profile", "warmup"):
        rows = table_rows(str(mixed[f"html_{name}"]))
        tested = ["amount", "age", "income"] + (["country", "device"] if name == "profile" else [])
        for feature in tested:
            _, status, first, ref, live, shift, missing, tests, dist = rows[feature]
            for cell in (ref, live, shift, missing, tests, dist):
                assert cell and cell != "\u2013" and "&ndash;" not in cell, (name, feature, rows[feature])
            assert status in ("drift", "resolved", "ok")
        assert re.search(r"[-+]\d+\.\d\d sd", rows["age"][5]), "mean shift now of a stable feature"
        for feature in ("amount", "age", "income"):  # every sequential test, its statistic against its h
            for test in ("cusum_mean", "cusum_scale", "cusum_shape", "cusum_missing"):
                assert re.search(rf"{test} [\d.e+-]+ / [\d.]+", rows[feature][7]), (name, feature, test)
    rows = table_rows(str(mixed["html_profile"]))
    for feature in ("country", "device"):
        for test in ("cusum_categories", "cusum_unseen"):
            assert re.search(rf"{test} [\d.e+-]+ / [\d.]+", rows[feature][7]), (feature, test)


def test_footer_names_the_reference_actually_used(mixed: dict[str, object]) -> None:
    with_profile, warmup = str(mixed["html_profile"]), str(mixed["html_warmup"])
    foot = with_profile[with_profile.index("<footer>") :]
    assert "Reference (training profile)" in foot and "p.json" in foot and "warm-up" not in foot
    foot = warmup[warmup.index("<footer>") :]
    assert "Reference (warm-up)" in foot and "first 1,000 values of each feature" in foot
    rows = table_rows(warmup)  # categorical features have no test without a profile, and say so
    assert rows["country"][1] == "not tested" and "only against a profile" in rows["country"][2]


def test_distributions_show_the_drift_and_agree_where_stable(profiled: ReplayRecorder) -> None:
    views = by_feature(build_views(profiled))
    for name in ("amount", "age", "income"):
        h = views[name].histogram
        assert h is not None and h.reference is not None and views[name].source == "profile"
        assert h.live.sum() + h.below + h.above == pytest.approx(1.0)
        assert h.reference.sum() == pytest.approx(1.0)
    amount, age = views["amount"].histogram, views["age"].histogram
    assert amount is not None and age is not None and amount.reference is not None and age.reference is not None
    assert np.abs(age.live - age.reference).max() < 0.03
    assert np.abs(amount.live - amount.reference).max() > 0.05  # x1.6 on half the values
    country = views["country"].histogram
    assert country is not None and country.reference is not None
    share = dict(zip(country.labels, country.live, strict=True))
    ref = dict(zip(country.labels, country.reference, strict=True))
    assert share["IN"] == pytest.approx((0.1 + 0.35) / 2, abs=0.02) and ref["IN"] == pytest.approx(0.1, abs=0.02)
    assert views["device"].histogram is not None
    # the rising missing share: 0 -> 40 %, 20 % on average; none in training
    assert views["income"].missing_live == pytest.approx(0.2, abs=0.02) and views["income"].missing_reference == 0.0
    assert views["amount"].missing_live == 0.0


def test_tests_are_read_out_against_their_thresholds(profiled: ReplayRecorder) -> None:
    """Each test against what it is decided against now: a distribution test's effect against
    its latest window's cut-off (not its minimum), a CUSUM's statistic against its h."""
    from driftsentinel.detectors.window_tests import NumericGrid, cut_off

    config, rec = profiled.config, profiled
    views = by_feature(build_views(rec))
    wt, seq = config.detectors.window_tests, config.detectors.sequential
    status = rec.models["fraud"].status
    profile = rec.models["fraud"].profile
    assert profile is not None
    for feature in ("amount", "age"):  # no value missing: the last window has window_events values
        prof = profile.features[feature]
        assert isinstance(prof, NumericProfile)
        grid = NumericGrid(np.asarray(prof.quantiles), prof.count, prof.std)
        bins = grid.decile_probs(np.zeros(grid.n_bins, dtype=np.int64))[0].size
        readings = {t.detector: t for t in views[feature].tests}
        for test, k in (("ks", 0), ("wasserstein", 0), ("psi", bins), ("js", bins)):
            spread = grid.wasserstein_spread if test == "wasserstein" else 0.0
            cut = cut_off(test, getattr(wt, test), wt.decision_ratio, wt.window_events, prof.count, k, spread)
            assert readings[test].threshold == pytest.approx(cut, rel=1e-12), (feature, test)
            assert readings[test].threshold < getattr(wt, test)  # 5,000 values: the cut-off is under the minimum
            assert readings[test].value_now == status[feature].scores[test]
        for test in ("missing_rate", "out_of_range", "type_error"):
            assert readings[test].threshold == getattr(wt, test)
            assert readings[test].value_now == status[feature].scores[test]
        assert readings["page_hinkley"].threshold == config.detectors.page_hinkley.threshold
        for test in ("cusum_mean", "cusum_scale", "cusum_shape", "cusum_missing"):
            base = getattr(seq, test.replace("cusum_", "") + "_threshold")
            if test == "cusum_mean":  # times the feature's tail factor: what its alerts carry
                threshold = readings[test].threshold
                assert threshold is not None and base <= threshold <= 4 * base
                alerted = [a.threshold for a in views[feature].drifts if a.detector == test]
                assert all(t == pytest.approx(threshold) for t in alerted)
            else:
                assert readings[test].threshold == base
            now = readings[test].value_now
            assert now is not None and now >= 0.0
    amount = {t.detector: t for t in views["amount"].tests}
    first_ks = min((a for a in views["amount"].drifts if a.detector == "ks"), key=lambda a: a.source.offset)
    assert amount["ks"].detections == 1 and amount["ks"].at_detection is not None
    assert first_ks.threshold is not None and amount["ks"].at_detection > first_ks.threshold
    assert amount["cusum_mean"].value_now and amount["cusum_mean"].value_now > 0  # x1.6: the CUSUM is running
    income = {t.detector: t for t in views["income"].tests}
    assert income["missing_rate"].over and income["missing_rate"].in_drift
    country = {t.detector: t for t in views["country"].tests}
    assert set(country) >= {"chi2", "js", "new_category", "cusum_categories", "cusum_unseen"}
    assert country["cusum_categories"].threshold == seq.categories_threshold
    assert country["cusum_categories"].value_now == status["country"].scores["cusum_categories"]
    assert views["country"].status == "drift" and views["age"].status == "ok"


def test_an_effect_between_the_cut_off_and_the_minimum_reads_as_over() -> None:
    """A window test flags a window whose effect passes the cut-off (decision_ratio x the
    minimum), below the minimum itself: the report shows it over its threshold, as decided."""
    rng = np.random.default_rng(11)
    profile = ReferenceProfile(source="train", n_rows=50_000, features={"x": numeric_profile(rng.normal(size=50_000))})
    config = SidecarConfig()
    bank = DetectorBank(BankConfig(), profile)
    rec = ReplayRecorder(config, profile)
    live = rng.normal(size=(10_000, 1)) + 0.22  # KS about 0.087: over 0.75 x 0.1, under 0.1
    for start in range(0, 10_000, 2_500):
        batch = FeatureBatch(
            ["x"], live[start : start + 2_500], np.arange(start, start + 2_500), np.full(2_500, np.nan)
        )
        rec.on_batch("m", batch)
        for sig in bank.update(batch):
            rec.on_alert(_event(sig, "m", int(batch.offsets[sig.row])))
    rec.on_finish({"m": bank})
    ks = {t.detector: t for t in by_feature(build_views(rec))["x"].tests}["ks"]
    wt = config.detectors.window_tests
    assert ks.threshold is not None and ks.value_now is not None
    assert ks.threshold < ks.value_now < wt.ks, (ks.threshold, ks.value_now)  # the case this test is about
    assert ks.over and ks.in_drift and ks.detections == 1


def test_the_multivariate_test_is_a_model_level_row(tmp_path: Path) -> None:
    """``@multivariate``: one row for the model, its effect now against ``min_kl``, the
    features it watches, a figure of its decisions; a change of correlation opens it."""
    rng = np.random.default_rng(5)
    train = rng.normal(size=(10_000, 3))
    csv = tmp_path / "train.csv"
    csv.write_text("a,b,c\n" + "\n".join(",".join(f"{v:.5f}" for v in row) for row in train) + "\n")
    assert main(["baseline", "--input", str(csv), "--out", str(tmp_path / "p.json")]) == 0
    live = rng.normal(size=(15_000, 3))
    live[5_000:, 1] = 0.8 * live[5_000:, 0] + 0.6 * live[5_000:, 1]  # correlation 0 -> 0.8, marginals unchanged
    src = tmp_path / "live.jsonl"
    with src.open("w") as fh:
        for i, row in enumerate(live):
            fh.write(json.dumps({"ts": 1.7e9 + i, "features": dict(zip("abc", map(float, row), strict=True))}) + "\n")
    html = tmp_path / "r.html"
    args = ["replay", "--input", str(src), "--output", str(tmp_path / "a.jsonl"), "--html", str(html)]
    assert main([*args, "--reference", str(tmp_path / "p.json")]) == 0
    text = html.read_text()
    row = table_rows(text)["@multivariate"]
    assert row[0].endswith("joint distribution") and row[1] == "drift", row
    assert row[2].startswith("event ") and "multivariate" in row[2]
    assert row[3].startswith("correlation matrix") and row[6].startswith("n/a")
    assert re.fullmatch(r"multivariate [\d.]+ / 0\.02", row[7]), row[7]
    assert "dependence of 3 features: a, b, c" in row[8]
    assert re.search(r'<a href="#fig-\d+">@multivariate</a>', text)  # its figure: the decisions over time


def test_the_warm_up_reference_is_the_first_values_of_the_configured_warm_up() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3_000, 1))
    config = SidecarConfig.model_validate({"detectors": {"warmup": 500}})
    rec = ReplayRecorder(config)
    rec.on_batch("m", FeatureBatch(["a"], x, np.arange(3_000), np.full(3_000, np.nan)))
    dist = rec.numeric[("m", "a")]
    assert dist.source == "warm-up" and dist.reference == numeric_profile(x[:500, 0])
    assert dist.live_count == 2_500


# --------------------------------------------------------------------------- the figures
def _drawn(rec: ReplayRecorder, view: FeatureView) -> Any:
    """The feature's figure, drawn by Agg (what savefig does), so text has its place."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    height = row_height(view)
    fig = new_figure(height)
    draw_feature(fig, rec, view, height)
    FigureCanvasAgg(fig).draw()
    return fig


def test_each_test_has_its_own_marker_colour(profiled: ReplayRecorder) -> None:
    colours = [c for c, _ in STYLES.values()]
    assert len(set(colours)) == len(colours)
    rec = profiled
    amount = by_feature(build_views(rec))["amount"]
    assert {"ks", "psi", "js", "wasserstein"} <= {a.detector for a in amount.drifts}
    fig = _drawn(rec, amount)
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_hex

    markers = {
        str(c.get_label()): to_hex(np.asarray(c.get_facecolor())[0].tolist())
        for ax in fig.axes
        for c in ax.collections
        if isinstance(c, PathCollection) and not str(c.get_label()).startswith("_")
    }
    assert len(markers) == len({a.detector for a in amount.drifts})
    assert len(set(markers.values())) == len(markers), markers


@pytest.mark.parametrize("reference", [True, False])
def test_no_text_is_cut_or_over_another_panel(mixed: dict[str, object], reference: bool) -> None:
    config = SidecarConfig(reference=str(mixed["profile"]) if reference else None)
    rec = recorder_for(Path(str(mixed["live"])), config)
    for view in build_views(rec)[:4]:  # amount's headline lists six detections
        _assert_laid_out(_drawn(rec, view), view.feature)


def _assert_laid_out(fig: Any, feature: str) -> None:
    """Every text of ``fig`` inside it; no panel (with its ticks, labels, legend) over another or the headline."""
    renderer = fig.canvas.get_renderer()
    inside = fig.bbox.padded(1)
    headline = fig.texts[0].get_window_extent(renderer)
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]  # ticks, labels, title, legend as drawn
    for box in [headline, *boxes]:
        assert inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1), (feature, box, inside)
    for i, box in enumerate(boxes):
        assert not headline.overlaps(box), feature
        for other in boxes[i + 1 :]:  # a legend or label reaching into the next panel
            assert not box.overlaps(other), (feature, box, other)
    for ax in fig.axes:  # a scale printed over a panel would sit on its title
        offset = ax.yaxis.offsetText
        if offset.get_text():
            assert not offset.get_window_extent(renderer).overlaps(ax.title.get_window_extent(renderer))


def test_recorder_bins_stay_bounded_and_keep_the_mean() -> None:
    rec = ReplayRecorder(bin_size=10, max_bins=100)
    rng = np.random.default_rng(1)
    for start in range(0, 50_000, 4096):
        n = min(4096, 50_000 - start)
        x = rng.normal(size=(n, 1)) + (np.arange(start, start + n) >= 25_000)[:, None] * 3.0
        rec.on_batch("m", FeatureBatch(["a"], x, np.arange(start, start + n), np.full(n, np.nan)))
    s = rec.series[("m", "a")]
    assert s.count.size <= 100 and s.count.sum() == 50_000
    assert rec.events["m"].count.size <= 100 and rec.events["m"].count.sum() == 50_000
    mean = s.mean()
    centers = (np.arange(mean.size) + 0.5) * rec.bin_size
    assert abs(mean[centers < 20_000].mean()) < 0.1 and abs(mean[centers > 30_000].mean() - 3.0) < 0.1
    buf = io.BytesIO()
    assert render_png(rec, buf) == 0  # no alerts: the "no drift" picture
    png_size(buf.getvalue())


def test_category_counts_stay_bounded() -> None:
    config = SidecarConfig.model_validate({"detectors": {"max_categories": 20}})
    rec = ReplayRecorder(config)
    cats = np.array([[f"c{i}"] for i in range(1_000)], dtype=object)
    rec.on_batch("m", FeatureBatch([], np.zeros((1_000, 0)), np.arange(1_000), np.full(1_000, np.nan), 0, ["k"], cats))
    dist = rec.categories[("m", "k")]
    assert len(dist.counts) == 20 and dist.overflow == 980


# --------------------------------------------------------------------------- size and speed
def test_a_report_of_500_features_stays_small_and_lists_every_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    names = [f"x{j:03d}" for j in range(500)]
    train = rng.normal(size=(5_000, 500))
    features: dict[str, NumericProfile | CategoricalProfile] = {
        n: numeric_profile(train[:, j]) for j, n in enumerate(names)
    }
    profile = ReferenceProfile(source="train", n_rows=5_000, features=features)
    config = SidecarConfig()
    bank = DetectorBank(BankConfig(), profile)
    rec = ReplayRecorder(config, profile)
    live = rng.normal(size=(6_000, 500))
    live[3_000:, 0] += 2.0  # one drifting feature
    for start in range(0, 6_000, 2_000):
        batch = FeatureBatch(
            names, live[start : start + 2_000], np.arange(start, start + 2_000), np.full(2_000, np.nan)
        )
        rec.on_batch("m", batch)
        for sig in bank.update(batch):
            rec.on_alert(_event(sig, "m", int(batch.offsets[sig.row])))
    rec.on_finish({"m": bank})
    started = time.process_time()
    render_html(rec, tmp_path / "r.html", {"events": 6_000, "alerts": len(rec.alerts)}, source="t")
    took = time.process_time() - started
    text = (tmp_path / "r.html").read_text()
    assert len(table_rows(text)) == 500
    assert "499 features without a detection</summary>" in text  # collapsed
    figures = text.count("data:image/png;base64,")
    assert 1 <= figures <= MAX_FIGURES
    assert len(text) < 4_000_000, len(text)
    assert text.count("<svg") == 500  # every feature's distributions, inline
    assert took < 60, took


def _event(sig: object, model: str, offset: int) -> DriftEvent:
    policy = AlertPolicy(AlertPolicyConfig(), "g")
    return policy.to_event(sig, model=model, topic="t", partition=0, offset=offset, event_time=None, now=0.0)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- progress
def _replay_cli(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    src = write_jsonl(tmp_path / "p.jsonl", events=5_000, drift=())
    return subprocess.run(
        [sys.executable, "-m", "driftsentinel.stream.cli", "replay", "--input", str(src)]
        + ["--output", str(tmp_path / "a.jsonl"), *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_progress_bar_only_when_asked_or_on_a_terminal(tmp_path: Path) -> None:
    quiet = _replay_cli(tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "ev/s" not in quiet.stderr  # stderr is a pipe here
    shown = _replay_cli(tmp_path, "--progress")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"\[#+\] 100%  5,001 events  [\d,]+ ev/s", shown.stderr), shown.stderr
    assert json.loads(shown.stderr.strip().splitlines()[-1])["events"] == 5_000


def test_figures_are_capped_drifting_first(profiled: ReplayRecorder) -> None:
    from driftsentinel.stream.report_html import _figures

    views = build_views(profiled) * 20  # 100 views, 60 of them with a detection
    chosen = _figures(views)
    assert len(chosen) == MAX_FIGURES and all(v.drifts for v in chosen)


def test_concept_drift_is_the_models_error_not_a_feature_without_values(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    src = tmp_path / "concept.jsonl"
    with src.open("w") as fh:
        for i in range(8_000):
            x = float(rng.normal())
            p = int(x > 0)
            y = p if i < 4_000 or rng.random() < 0.6 else 1 - p  # the model is wrong 40 % of the time from 4,000
            fh.write(json.dumps({"ts": 1.7e9 + i, "features": {"x": x}, "prediction": p, "label": y}) + "\n")
    html = tmp_path / "c.html"
    assert main(["replay", "--input", str(src), "--output", str(tmp_path / "c.jsonl"), "--html", str(html)]) == 0
    row = table_rows(html.read_text())["@error"]
    assert row[0].endswith("model error") and row[1] == "drift"
    assert row[3].startswith("error rate") and row[4].startswith("error rate") and row[6].startswith("n/a")
    assert "concept drift" in row[7]


def test_numbers_for_a_categorical_feature_count_as_present() -> None:
    profile = ReferenceProfile(
        source="t",
        n_rows=10,
        features={
            "zip": CategoricalProfile(
                count=10, missing_ratio=0.0, frequencies={"1": 0.5, "2": 0.5}, other_share=0.0, n_categories=2
            )
        },
    )
    rec = ReplayRecorder(SidecarConfig(), profile)
    zips = np.array([[1.0], [2.0], [np.nan], [2.0]])
    rec.on_batch("m", FeatureBatch(["zip"], zips, np.arange(4), np.full(4, np.nan)))
    assert rec.present[("m", "zip")].count.sum() == 3
    assert dict(rec.categories[("m", "zip")].counts) == {"1": 1, "2": 2}


# --------------------------------------------------------------------------- seasonal reference
def _cyclic(rng: np.random.Generator, t: np.ndarray, ar: float) -> np.ndarray:
    """A daily sine of amplitude 1 on AR(1) noise of unit variance (coefficient ``ar``)."""
    e = rng.standard_normal(t.size) * np.sqrt(1 - ar * ar)
    noise = np.empty(t.size)
    noise[0] = rng.standard_normal()
    for i in range(1, t.size):
        noise[i] = ar * noise[i - 1] + e[i]
    return 10.0 + np.sin(2 * np.pi * t / 86_400) + noise


def _band_geometry(svg: str) -> tuple[dict[int, tuple[float, float]], dict[int, tuple[float, str]]]:
    bands = {
        int(p): (float(y), float(y) + float(h))
        for p, y, h in re.findall(
            r'class="ref-band" data-phase="(\d+)" x="[\d.]+" y="([\d.]+)" width="[\d.]+" '
            r'height="([\d.]+)"',
            svg,
        )  # fmt: skip
    }
    dots = {
        int(p): (float(cy), color)
        for p, cy, color in re.findall(
            r'class="live" data-phase="(\d+)" cx="[\d.]+" cy="([\d.]+)" r="[\d.]+" '
            r'fill="(#[0-9a-f]+)"',
            svg,
        )  # fmt: skip
    }
    return bands, dots


def test_a_seasonal_profile_draws_the_reference_band_per_phase_against_the_live_means(tmp_path: Path) -> None:
    """A profile built with ``--period hour_of_day`` on a daily cycle: the report has a
    Seasonal reference section, one band of 24 phases per cyclic feature, a line naming the
    period and whether it is whitened; a stationary live cycle's phase means are drawn
    inside their band, a feature raised by 4 sd in hours 0-5 outside it there."""
    rng = np.random.default_rng(11)
    t_train = 1.7e9 + np.arange(0, 7 * 86_400, 120.0)  # 7 days, one event every 2 min
    t_live = t_train[-1] + 120.0 + np.arange(0, 3 * 86_400, 120.0)
    cols = {"ar": 0.9, "iid": 0.0, "raised": 0.0}
    train = {n: _cyclic(rng, t_train, a) for n, a in cols.items()}
    live = {n: _cyclic(rng, t_live, a) for n, a in cols.items()}
    hour = (t_live % 86_400) // 3600
    live["raised"] = np.where(hour < 6, live["raised"] + 4.0, live["raised"])
    csv = tmp_path / "train.csv"
    rows = zip(t_train, *train.values(), strict=True)
    csv.write_text("ts," + ",".join(cols) + "\n" + "\n".join(",".join(f"{v:.4f}" for v in r) for r in rows) + "\n")
    profile = tmp_path / "p.json"
    assert main(["baseline", "--input", str(csv), "--out", str(profile), "--period", "hour_of_day"]) == 0
    src = tmp_path / "live.jsonl"
    with src.open("w") as fh:
        for i, ts in enumerate(t_live):
            fh.write(json.dumps({"ts": float(ts), "features": {n: float(v[i]) for n, v in live.items()}}) + "\n")
    rec = recorder_for(src, SidecarConfig(reference=str(profile)))
    html = tmp_path / "r.html"
    render_html(rec, html, {"events": t_live.size})
    text = html.read_text()
    assert "<h2>Seasonal reference</h2>" in text
    sections = dict(re.findall(r'<section class="seasonal"><h3>[^<]* / (\w+)</h3>(.*?)</section>', text, re.S))
    assert set(sections) == set(cols)
    assert "hour_of_day: 24 phases of 1 h" in sections["ar"]
    assert "; whitened (autocorrelated" in sections["ar"] and "not whitened" in sections["iid"]
    for name, body in sections.items():
        bands, dots = _band_geometry(body)
        assert sorted(bands) == list(range(24)) and sorted(dots) == list(range(24)), name
        inside = {p: top <= dots[p][0] <= bottom for p, (top, bottom) in bands.items()}
        assert all(dots[p][1] == ("#1f77b4" if inside[p] else "#d62728") for p in dots), name
        if name == "raised":
            assert [p for p in range(24) if not inside[p]] == list(range(6))
            assert "the mean of 6 outside the band" in body
        else:
            assert all(inside.values()), name
            assert "the mean of 0 outside the band" in body
    views = by_feature(build_views(rec))
    for name in cols:  # the raw values' reference (mean 10), not the standardised units the detectors see
        ref = views[name].reference
        assert ref is not None and ref.mean is not None and abs(ref.mean - 10.0) < 0.5, (name, ref)
    for name in cols:  # the figures: a panel by phase under the others, nothing cut or overlapping
        fig = _drawn(rec, views[name])
        _assert_laid_out(fig, name)
        (phase_ax,) = [
            ax for ax in fig.axes if ax.get_title(loc="left").startswith("by phase of the event time (hour_of_day)")
        ]
        outside = [ln for ln in phase_ax.get_lines() if ln.get_label() == "live mean outside the band"]
        assert [int(x) for x in outside[0].get_xdata()] == list(range(6)) if name == "raised" else not outside
    buf = io.BytesIO()
    assert render_png(rec, buf) >= 1  # --plot: the drifting features, with their panel by phase
    png_size(buf.getvalue())


def test_the_phase_counts_stay_bounded_by_the_phases() -> None:
    """The recorder keeps, per cyclic feature, one count, sum and sum of squares per phase,
    however long the replay; rows without an event time are only counted."""
    rng = np.random.default_rng(4)
    t = np.arange(0, 14 * 86_400, 60.0)
    from driftsentinel.detectors.seasonal_profile import seasonal_profile

    section, _ = seasonal_profile(t, {"x": np.sin(2 * np.pi * t / 86_400) + rng.normal(size=t.size)}, "hour_of_day",
                                  "ts", rng)  # fmt: skip
    x = rng.normal(size=t.size)
    profile = ReferenceProfile(source="t", n_rows=t.size, features={"x": numeric_profile(x)}, seasonal=section)
    rec = ReplayRecorder(profile=profile)
    times = np.where(np.arange(t.size) % 10 == 0, np.nan, t)
    for start in range(0, t.size, 5_000):
        sl = slice(start, start + 5_000)
        rec.on_batch("m", FeatureBatch(["x"], x[sl, None], np.arange(t.size)[sl], times[sl]))
    live = rec.by_phase[("m", "x")]
    assert live.count.shape == (24,) and live.count.sum() + live.untimed == t.size
    assert live.untimed == t.size // 10
    hours = (t[np.isfinite(times)] // 3600 % 24).astype(int)
    assert np.allclose(live.mean(), np.bincount(hours, x[np.isfinite(times)], 24) / np.bincount(hours, minlength=24))
