"""Pictures of a replay: per drifting feature, the live values against the reference.

``driftsentinel replay --plot report.png`` draws one panel per drifting feature: the live
values as a rolling mean with a +-1 std band, the reference band (reference mean +- std,
from the DriftEvent's ``reference`` summary), and the detection points of each detector,
titled with the detector and its statistic. ``--html report.html`` writes one
self-contained file: a table of every feature (status, detectors, scores) and the same
plots as embedded base64 PNGs.

:class:`ReplayRecorder` is what ``stream.replay.replay_file`` feeds; it keeps, per model
and feature, counts/sums/sums of squares in bins of input lines, so memory stays bounded
(at most ``max_bins`` bins: when a replay is longer, bins are merged pairwise).

matplotlib (extra ``report``: ``pip install 'driftsentinel[report]'``) is imported only
here, with the Agg backend: no display needed.

>>> import numpy as np
>>> from driftsentinel.schemas import FeatureBatch
>>> rec = ReplayRecorder(bin_size=10, max_bins=4)
>>> rec.on_batch("m", FeatureBatch(["a"], np.arange(80.0)[:, None], np.arange(80), np.full(80, np.nan)))
>>> rec.bin_size, [round(float(v), 1) for v in rec.series[("m", "a")].mean()]
(20, [9.5, 29.5, 49.5, 69.5])
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from driftsentinel.schemas import DriftEvent, FeatureBatch

#: Drawn per page of ``--plot``; the rest are in the HTML table (sorted by |statistic|).
MAX_PLOTS = 12
_COLORS = {"adwin": "#d62728", "page_hinkley": "#9467bd"}
_MARKERS = {"adwin": "v", "page_hinkley": "^"}
_NAMES = {"adwin": "ADWIN", "page_hinkley": "Page-Hinkley"}


def _detector_name(detector: str) -> str:
    return _NAMES.get(detector, detector)


@dataclass
class _Binned:
    """Per-bin count, sum and sum of squares of one feature's values."""

    count: np.ndarray = field(default_factory=lambda: np.zeros(0))
    total: np.ndarray = field(default_factory=lambda: np.zeros(0))
    squares: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def grow(self, n: int) -> None:
        if n > self.count.size:
            pad = n - self.count.size
            self.count = np.concatenate([self.count, np.zeros(pad)])
            self.total = np.concatenate([self.total, np.zeros(pad)])
            self.squares = np.concatenate([self.squares, np.zeros(pad)])

    def halve(self) -> None:
        """Merge bins pairwise (the bin size doubles)."""
        if self.count.size % 2:
            self.grow(self.count.size + 1)
        self.count = self.count.reshape(-1, 2).sum(axis=1)
        self.total = self.total.reshape(-1, 2).sum(axis=1)
        self.squares = self.squares.reshape(-1, 2).sum(axis=1)

    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.total / self.count

    def std(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            var = (self.squares - self.total**2 / self.count) / np.maximum(self.count - 1, 1)
        return np.sqrt(np.maximum(var, 0.0))


@dataclass
class FeatureRow:
    """One line of the report's table."""

    model: str
    feature: str
    status: str  # drift | resolved | ok
    detectors: list[str]
    alerts: int
    first_drift_offset: int | None
    statistic: float | None  # the drift statistic with the largest magnitude
    statistic_name: str | None
    severity: str | None
    mean_shift_now: float | None
    live_mean: float | None
    reference_mean: float | None
    reference_std: float | None


class ReplayRecorder:
    """Collects what the report needs while ``replay_file`` runs."""

    def __init__(self, bin_size: int = 50, max_bins: int = 1500) -> None:
        if bin_size < 1 or max_bins < 2:
            raise ValueError("bin_size >= 1 and max_bins >= 2")
        self.bin_size = bin_size
        self.max_bins = max_bins
        self.series: dict[tuple[str, str], _Binned] = {}
        self.alerts: list[DriftEvent] = []
        self.status: dict[tuple[str, str], Any] = {}  # detectors.bank.FeatureStatus
        self.last_offset = -1

    # --------------------------------------------------------------- recorder protocol
    def on_batch(self, model: str, batch: FeatureBatch) -> None:
        if batch.n_rows == 0:
            return
        offsets = np.asarray(batch.offsets, dtype=np.int64)
        self.last_offset = max(self.last_offset, int(offsets.max()))
        while self.last_offset // self.bin_size >= self.max_bins:
            self.bin_size *= 2
            for s in self.series.values():
                s.halve()
        bins = offsets // self.bin_size
        n_bins = int(bins.max()) + 1
        values = np.asarray(batch.values, dtype=np.float64)
        for j, name in enumerate(batch.names):
            col = values[:, j]
            ok = np.isfinite(col)
            if not ok.any():
                continue
            found = self.series.get((model, name))
            s = found if found is not None else self.series.setdefault((model, name), _Binned())
            s.grow(n_bins)
            b, v = bins[ok], col[ok]
            s.count[:n_bins] += np.bincount(b, minlength=n_bins)
            s.total[:n_bins] += np.bincount(b, weights=v, minlength=n_bins)
            s.squares[:n_bins] += np.bincount(b, weights=v * v, minlength=n_bins)

    def on_alert(self, event: DriftEvent) -> None:
        self.alerts.append(event)

    def on_finish(self, banks: dict[str, Any]) -> None:
        for model, bank in banks.items():
            for st in bank.status():
                self.status[(model, st.feature)] = st

    # --------------------------------------------------------------- read-outs
    def drifting(self) -> list[tuple[str, str]]:
        """(model, feature) with at least one ``drift`` alert, largest |statistic| first."""
        best: dict[tuple[str, str], float] = {}
        for a in self.alerts:
            if a.status == "drift":
                key = (a.model, a.feature)
                best[key] = max(best.get(key, 0.0), abs(a.statistic or 0.0))
        return sorted(best, key=lambda k: (-best[k], k))

    def rows(self) -> list[FeatureRow]:
        """Every feature seen, drifting ones first."""
        keys = list(dict.fromkeys([*self.drifting(), *sorted(self.series), *sorted(self.status)]))
        out = []
        for model, feature in keys:
            alerts = [a for a in self.alerts if (a.model, a.feature) == (model, feature)]
            drifts = [a for a in alerts if a.status == "drift"]
            st = self.status.get((model, feature))
            open_detectors = sorted(d for d, on in (st.drift.items() if st else []) if on)
            status = "drift" if open_detectors else ("resolved" if drifts else "ok")
            top = max(drifts, key=lambda a: abs(a.statistic or 0.0), default=None)
            ref = next((a.reference for a in alerts if a.reference is not None), None)
            score = st.scores.get("mean_shift_sigma") if st else None
            out.append(
                FeatureRow(
                    model=model,
                    feature=feature,
                    status=status,
                    detectors=sorted({a.detector for a in drifts}),
                    alerts=len(alerts),
                    first_drift_offset=min((a.source.offset for a in drifts), default=None),
                    statistic=top.statistic if top else None,
                    statistic_name=top.statistic_name if top else None,
                    severity=top.severity if top else None,
                    mean_shift_now=None if score is None else float(score),
                    live_mean=st.live_mean if st else None,
                    reference_mean=ref.mean if ref else None,
                    reference_std=ref.std if ref else None,
                )
            )
        return out


# --------------------------------------------------------------------------- drawing
def _figure(n_panels: int) -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # before pyplot anywhere; no display needed
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("plots need matplotlib: pip install 'driftsentinel[report]'") from exc
    return Figure(figsize=(11, 1.0 + 3.3 * max(n_panels, 1)), dpi=100, layout="constrained")


def _title(model: str, feature: str, alerts: list[DriftEvent]) -> str:
    parts = []
    for a in alerts:
        if a.status != "drift":
            continue
        stat = "n/a" if a.statistic is None else f"{a.statistic:+.2f}"
        parts.append(
            f"{_detector_name(a.detector)} at event {a.source.offset:,} ({a.statistic_name} = {stat}, {a.severity})"
        )
    head = f"{model}/{feature}: drift detected by " if parts else f"{model}/{feature}: no drift detected"
    return head + ("\n" + "; ".join(parts) if parts else "")


def _value_at(rec: ReplayRecorder, model: str, feature: str, offset: int) -> float | None:
    """The rolling mean at ``offset`` (where a detection marker sits)."""
    s = rec.series.get((model, feature))
    b = offset // rec.bin_size
    if s is None or b >= s.count.size or s.count[b] == 0:
        return None
    return float(s.total[b] / s.count[b])


def draw_feature(ax: Any, rec: ReplayRecorder, model: str, feature: str) -> None:
    """One panel: rolling mean +- std of the live values, reference band, detections."""
    alerts = [a for a in rec.alerts if (a.model, a.feature) == (model, feature)]
    s = rec.series.get((model, feature))
    if s is not None and s.count.size:
        x = (np.arange(s.count.size) + 0.5) * rec.bin_size
        mean, std = s.mean(), s.std()
        has = s.count > 0
        ax.fill_between(
            x,
            np.where(has, mean - std, np.nan),
            np.where(has, mean + std, np.nan),
            color="#1f77b4",
            alpha=0.18,
            linewidth=0,
            label="live: +-1 std per bin",
        )
        ax.plot(
            x,
            np.where(has, mean, np.nan),
            color="#1f77b4",
            linewidth=1.2,
            label=f"live: rolling mean ({rec.bin_size:,} events/bin)",
        )
    ref = next((a.reference for a in alerts if a.reference is not None), None)
    if ref is not None and ref.mean is not None:
        sd = ref.std or 0.0
        ax.axhspan(
            ref.mean - sd,
            ref.mean + sd,
            color="#7f7f7f",
            alpha=0.22,
            label=f"reference: mean +- std ({ref.mean:.3g} +- {sd:.3g}, n={ref.count:,})",
        )
        ax.axhline(ref.mean, color="#4d4d4d", linestyle="--", linewidth=1.0)
    _draw_detections(ax, rec, model, feature, alerts, ref.mean if ref is not None else None)
    ax.set_title(_title(model, feature, alerts), fontsize=10, loc="left")
    ax.set_xlabel("event (line of the input file)")
    ax.set_ylabel(f"{feature} (raw units)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", framealpha=0.85)


def _draw_detections(
    ax: Any, rec: ReplayRecorder, model: str, feature: str, alerts: list[DriftEvent], ref_mean: float | None
) -> None:
    """A marker on the live curve at each detection, a dotted line at each resolution."""
    labelled: set[tuple[str, str]] = set()
    for a in alerts:
        off = a.source.offset
        if a.status == "drift":
            color = _COLORS.get(a.detector, "#ff7f0e")
            label = f"{_detector_name(a.detector)} detection"
            y = _value_at(rec, model, feature, off)
            if y is None:
                y = a.window.mean if a.window.mean is not None else (ref_mean if ref_mean is not None else 0.0)
            ax.axvline(off, color=color, linewidth=1.2, alpha=0.8)
            ax.scatter(
                [off],
                [y],
                color=color,
                marker=_MARKERS.get(a.detector, "o"),
                s=70,
                zorder=5,
                label=None if (a.detector, "drift") in labelled else label,
            )
        else:
            ax.axvline(
                off,
                color="#2ca02c",
                linestyle=":",
                linewidth=1.5,
                label=None if ("*", "resolved") in labelled else "resolved",
            )
            labelled.add(("*", "resolved"))
        labelled.add((a.detector, a.status))


def render_png(
    rec: ReplayRecorder, target: str | Path | IO[bytes], keys: list[tuple[str, str]] | None = None, source: str = ""
) -> int:
    """Draw the drifting features (or ``keys``) into one PNG; returns the panels drawn."""
    all_keys = rec.drifting() if keys is None else keys
    shown = all_keys[:MAX_PLOTS]
    fig = _figure(len(shown))
    if not shown:
        ax = fig.subplots(1, 1)
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            f"No drift detected in {rec.last_offset + 1:,} events{f' of {source}' if source else ''}.",
            ha="center",
            va="center",
            fontsize=14,
        )
    else:
        axes = fig.subplots(len(shown), 1, squeeze=False)[:, 0]
        for ax, (model, feature) in zip(axes, shown, strict=True):
            draw_feature(ax, rec, model, feature)
        if keys is None:
            more = (
                f" ({len(shown)} of {len(all_keys)} shown, largest shift first)" if len(all_keys) > len(shown) else ""
            )
            fig.suptitle(
                f"driftsentinel replay{f' of {source}' if source else ''}: {len(all_keys)} drifting feature(s){more}",
                fontsize=12,
            )
    fig.savefig(target, format="png")
    return len(shown)


def _png_base64(rec: ReplayRecorder, key: tuple[str, str]) -> str:
    buf = io.BytesIO()
    render_png(rec, buf, keys=[key])
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: float | None, spec: str = ".3g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "&ndash;"
    return format(v, spec)


_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f0f0; } td.l { text-align: left; }
tr.drift td.status { background: #f8d7da; font-weight: bold; }
tr.resolved td.status { background: #fff3cd; }
tr.ok td.status { background: #d4edda; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; } dd { margin: 0; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


def render_html(rec: ReplayRecorder, target: str | Path, stats: dict[str, Any], source: str = "") -> None:
    """A self-contained HTML report: summary, feature table, embedded plots."""
    e = html.escape
    rows = rec.rows()
    drifting = rec.drifting()
    invalid: dict[str, int] = dict(stats.get("invalid", {}))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>driftsentinel replay report: {e(source)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>driftsentinel replay report: {e(source)}</h1>",
        "<dl>",
        f"<dt>input</dt><dd>{e(source)}</dd>",
        f"<dt>events</dt><dd>{int(stats.get('events', 0)):,} valid, {sum(invalid.values()):,} invalid"
        f"{' (' + e(', '.join(f'{k}: {v:,}' for k, v in sorted(invalid.items()))) + ')' if invalid else ''}</dd>",
        f"<dt>alerts</dt><dd>{int(stats.get('alerts', 0)):,} DriftEvents</dd>",
        f"<dt>features</dt><dd>{len(rows):,} ({len(drifting):,} drifted)</dd>",
        f"<dt>generated</dt><dd>{datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}</dd>",
        "</dl>",
        "<h2>Features</h2>",
        '<table id="features"><thead><tr><th>model</th><th>feature</th><th>status</th><th>detectors</th>'
        "<th>alerts</th><th>first drift at event</th><th>statistic at detection</th><th>severity</th>"
        "<th>mean shift now (sd)</th><th>live mean</th><th>reference mean &plusmn; std</th></tr></thead><tbody>",
    ]
    for r in rows:
        anchor = f"#plot-{e(r.model)}-{e(r.feature)}" if (r.model, r.feature) in drifting else ""
        name = f'<a href="{anchor}">{e(r.feature)}</a>' if anchor else e(r.feature)
        stat = f"{e(r.statistic_name or '')} = {_fmt(r.statistic, '+.2f')}" if r.statistic is not None else "&ndash;"
        ref = (
            f"{_fmt(r.reference_mean)} &plusmn; {_fmt(r.reference_std)}" if r.reference_mean is not None else "&ndash;"
        )
        detectors = e(", ".join(_detector_name(d) for d in r.detectors)) or "&ndash;"
        parts.append(
            f'<tr class="{e(r.status)}"><td class="l">{e(r.model)}</td><td class="l">{name}</td>'
            f'<td class="l status">{e(r.status)}</td><td class="l">{detectors}</td>'
            f"<td>{r.alerts}</td><td>{'&ndash;' if r.first_drift_offset is None else f'{r.first_drift_offset:,}'}</td>"
            f"<td>{stat}</td><td>{e(r.severity or '') or '&ndash;'}</td><td>{_fmt(r.mean_shift_now, '+.2f')}</td>"
            f"<td>{_fmt(r.live_mean)}</td><td>{ref}</td></tr>"
        )
    parts.append("</tbody></table>")
    parts.append("<h2>Drifting features</h2>")
    if not drifting:
        parts.append("<p>No drift detected.</p>")
    for model, feature in drifting:
        parts.append(f'<section id="plot-{e(model)}-{e(feature)}"><h3>{e(model)}/{e(feature)}</h3>')
        parts.append(
            f'<img alt="{e(model)}/{e(feature)}: live values, reference band and detections" '
            f'src="data:image/png;base64,{_png_base64(rec, (model, feature))}"></section>'
        )
    parts.append(
        "<p><small>Live band: mean &plusmn; 1 std of the values in each bin of events. Reference band: "
        "mean &plusmn; std of the warm-up values (the DriftEvent's <code>reference</code>). Markers: "
        "detections, at the input line where the detector decided; dotted green: resolved.</small></p>"
    )
    parts.append("</body></html>")
    Path(target).write_text("\n".join(parts) + "\n", encoding="utf-8")
