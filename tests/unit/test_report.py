"""``driftsentinel replay --plot/--html/--progress``: pictures and report of a replay."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is not installed")

from driftsentinel.stream.cli import main  # noqa: E402
from driftsentinel.stream.demo import demo_values  # noqa: E402
from driftsentinel.stream.report import ReplayRecorder, render_png  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC, "not a PNG"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def decodes_as_image(data: bytes) -> tuple[int, ...]:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(data), format="png").shape


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("replay")
    src = write_jsonl(tmp / "shifted.jsonl")
    out = {"input": src, "alerts": tmp / "alerts.jsonl", "png": tmp / "report.png", "html": tmp / "report.html"}
    code = main(
        [
            "replay",
            "--input",
            str(src),
            "--output",
            str(out["alerts"]),
            "--plot",
            str(out["png"]),
            "--html",
            str(out["html"]),
        ]
    )
    assert code == 0
    return out


def test_plot_is_a_valid_png_of_the_drifting_features(replayed: dict[str, Path]) -> None:
    data = replayed["png"].read_bytes()
    width, height = png_size(data)
    assert width >= 800 and height >= 2 * 300, "one panel per drifting feature (f0 and f2)"
    shape = decodes_as_image(data)
    assert shape[:2] == (height, width)


def test_html_is_self_contained_with_the_feature_table_and_embedded_plots(replayed: dict[str, Path]) -> None:
    text = replayed["html"].read_text()
    assert text.startswith("<!DOCTYPE html>")
    table = text[text.index('<table id="features">') : text.index("</table>")]
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr class="\w+">.*?(?:>(f\d)<).*?</tr>', table)}
    assert set(rows) == {"f0", "f1", "f2", "f3"}
    for f in ("f0", "f2"):
        assert 'class="drift"' in rows[f] and "mean_shift_sigma" in rows[f] and "ADWIN" in rows[f]
    for f in ("f1", "f3"):
        assert 'class="ok"' in rows[f]
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 2
    for b64 in images:
        png_size(base64.b64decode(b64))
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "1 invalid (not_json: 1)" in text


def test_alerts_are_the_same_with_and_without_pictures(replayed: dict[str, Path], tmp_path: Path) -> None:
    plain = tmp_path / "plain.jsonl"
    assert main(["replay", "--input", str(replayed["input"]), "--output", str(plain)]) == 0

    def ids(p: Path) -> list[str]:
        return [json.loads(line)["event_id"] for line in p.read_text().splitlines()]

    assert ids(plain) == ids(replayed["alerts"]) and len(ids(plain)) >= 4


def test_title_names_detector_and_statistic() -> None:
    from driftsentinel.schemas import DriftEvent, SourcePosition, WindowSummary
    from driftsentinel.stream.report import _title

    w = WindowSummary(count=10, mean=1.0, std=1.0, quantiles={}, missing_ratio=0.0)
    ev = DriftEvent(
        event_id="x" * 32,
        model="m",
        feature="amount",
        detector="page_hinkley",
        status="drift",
        severity="critical",
        statistic=1.234,
        statistic_name="mean_shift_sigma",
        threshold=None,
        source=SourcePosition(topic="t", partition=0, offset=1234),
        event_time=None,
        detected_at=0.0,
        window=w,
        reference=w,
    )
    title = _title("m", "amount", [ev])
    assert "Page-Hinkley" in title and "mean_shift_sigma = +1.23" in title and "1,234" in title


def test_no_drift_still_writes_a_png(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "stable.jsonl", events=3_000, drift=())
    png = tmp_path / "none.png"
    html = tmp_path / "none.html"
    assert (
        main(
            [
                "replay",
                "--input",
                str(src),
                "--output",
                str(tmp_path / "a.jsonl"),
                "--plot",
                str(png),
                "--html",
                str(html),
            ]
        )
        == 0
    )
    png_size(png.read_bytes())
    assert "No drift detected." in html.read_text()


def test_recorder_bins_stay_bounded_and_keep_the_mean() -> None:
    from driftsentinel.schemas import FeatureBatch

    rec = ReplayRecorder(bin_size=10, max_bins=100)
    rng = np.random.default_rng(1)
    for start in range(0, 50_000, 4096):
        n = min(4096, 50_000 - start)
        x = rng.normal(size=(n, 1)) + (np.arange(start, start + n) >= 25_000)[:, None] * 3.0
        rec.on_batch("m", FeatureBatch(["a"], x, np.arange(start, start + n), np.full(n, np.nan)))
    s = rec.series[("m", "a")]
    assert s.count.size <= 100 and s.count.sum() == 50_000
    mean = s.mean()
    centers = (np.arange(mean.size) + 0.5) * rec.bin_size
    assert abs(mean[centers < 20_000].mean()) < 0.1 and abs(mean[centers > 30_000].mean() - 3.0) < 0.1
    buf = io.BytesIO()
    assert render_png(rec, buf) == 0  # no alerts: the "no drift" picture
    png_size(buf.getvalue())


def _replay_cli(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    src = write_jsonl(tmp_path / "p.jsonl", events=5_000, drift=())
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "driftsentinel.stream.cli",
            "replay",
            "--input",
            str(src),
            "--output",
            str(tmp_path / "a.jsonl"),
            *extra,
        ],
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
