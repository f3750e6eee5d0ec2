"""The report's pictures (matplotlib, Agg backend: no display needed).

One figure per feature, side by side: its **distribution** (reference and live on the
same bins: equal-mass bins of the reference as a density histogram, a bar per value for
a few distinct values, a bar per category), its **values over time** (the rolling mean
+-1 std of the live values against the reference band, numeric features only) and its
**missing share over time** against the reference's share and the ``missing_rate``
threshold; a feature with a seasonal reference gets a row **by phase of the event time**
(the reference's p05-p95 band and mean per phase against the live mean per phase).
Every detection is a vertical line at the input line where it was decided,
with a marker in the detector's own colour and shape along the top, one row per detector
so simultaneous window tests stay apart; a dotted green line marks a resolution.

matplotlib (extra ``report``: ``pip install 'driftsentinel[report]'``) is imported only
in the report modules.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import IO, Any

import numpy as np

from driftsentinel.stream.report_recorder import ReplayRecorder
from driftsentinel.stream.report_views import (
    MODEL_ERROR,
    MODEL_LEVEL,
    FeatureView,
    Histogram,
    build_views,
    compact,
    detector_name,
    duration,
    view_range,
)

#: Features drawn in ``--plot``'s PNG; the HTML report shows every one.
MAX_PLOTS = 12
REFERENCE_COLOR, LIVE_COLOR, RESOLVED_COLOR = "#8c8c8c", "#1f77b4", "#2ca02c"
#: Each detector its own colour and marker (tab10, then tab20b/c, without the live blue and the greys).
STYLES: dict[str, tuple[str, str]] = {
    "adwin": ("#d62728", "v"),
    "page_hinkley": ("#9467bd", "^"),
    "ks": ("#ff7f0e", "o"),
    "psi": ("#8c564b", "s"),
    "js": ("#e377c2", "D"),
    "wasserstein": ("#bcbd22", "P"),
    "chi2": ("#17becf", "X"),
    "new_category": ("#7b4173", "*"),
    "missing_rate": ("#393b79", "h"),
    "out_of_range": ("#637939", "p"),
    "type_error": ("#843c39", "<"),
    "constant_changed": ("#e7969c", ">"),
    "concept_drift": ("#3182bd", "d"),
    "cusum_mean": ("#e6550d", "8"),
    "cusum_scale": ("#756bb1", "H"),
    "cusum_shape": ("#bd9e39", "o"),
    "cusum_missing": ("#6baed6", "s"),
    "cusum_categories": ("#a55194", "D"),
    "cusum_unseen": ("#8c6d31", "*"),
    "multivariate": ("#ce6dbd", "P"),
}
_FALLBACK = ("#555555", "o")
CONSTANT_STAT = "constant_shift"
FIG_WIDTH, ROW_HEIGHT, DPI = 13.0, 3.3, 90
RANGE_NOTE = 0.0005  # live shares outside the reference's range worth a line in the legend
SLANT_OVER = 5  # bars beyond which their names are slanted
TITLE_LINE = 0.18  # inches per line of a feature's headline
PHASE_ROW = 2.4  # inches of the panel by phase of the event time (cyclic features)
LEGEND_WIDTH = 0.45  # the legend column right of the panel over time, relative to a panel


def style(detector: str) -> tuple[str, str]:
    return STYLES.get(detector, _FALLBACK)


def new_figure(height: float) -> Any:
    """An empty figure ``height`` inches high. Margins are fixed per feature row
    (:func:`draw_feature`): a layout engine would double the drawing time."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # before pyplot anywhere; no display needed
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("plots need matplotlib: pip install 'driftsentinel[report]'") from exc
    return Figure(figsize=(FIG_WIDTH, height), dpi=DPI)


def row_height(view: FeatureView) -> float:
    """Inches one feature's row takes: the panels, its headline's lines, category labels."""
    lines = headline(view).count("\n") + 1
    phase_row = PHASE_ROW if view.seasonal is not None else 0.0
    return ROW_HEIGHT + TITLE_LINE * (lines - 1) + (0.3 if _rotated(view) else 0.0) + phase_row


def _rotated(view: FeatureView) -> bool:
    """Are the names under the bars slanted (more than ``SLANT_OVER`` bars)?"""
    h = view.histogram
    if h is None:
        return False
    return (
        len(h.labels) if h.kind == "categorical" else h.edges.size if h.discrete and h.edges is not None else 0
    ) > SLANT_OVER


def headline(view: FeatureView) -> str:
    """The feature, its verdict and its detections, wrapped to the figure's width."""
    head = f"{view.model} / {view.feature} ({view.kind}): {view.status}"
    if view.reason:
        head += f" ({view.reason})"
    parts = []
    for a in view.drifts:
        stat = "n/a" if a.statistic is None else f"{a.statistic:.3g}"
        limit = "" if a.threshold is None else f" > {a.threshold:.3g}"
        name = detector_name(a.detector)
        if a.statistic_name not in (a.detector, CONSTANT_STAT):
            name += f" ({a.statistic_name})"
        parts.append(f"{name} {stat}{limit} at event {a.source.offset:,}")
    text = head + (": " + "; ".join(parts) if parts else "")
    return textwrap.fill(text, width=150)


def draw_feature(fig: Any, rec: ReplayRecorder, view: FeatureView, height: float) -> None:
    """One feature's panels into ``fig`` (a figure or a subfigure ``height`` inches high).

    Fixed margins in inches: the headline's lines on top, tick and axis labels at the
    left and bottom, and a column for the legend of the detections on the right of the
    panel over time.
    """
    title = headline(view)
    lines = title.count("\n") + 1
    fig.text(0.08 / FIG_WIDTH, 1 - 0.1 / height, title, fontsize=10, ha="left", va="top")
    margins = {"left": 0.75 / FIG_WIDTH, "right": 1 - 0.3 / FIG_WIDTH, "top": 1 - (0.42 + TITLE_LINE * lines) / height}
    if view.kind in MODEL_LEVEL:  # its alerts are all there is: their times
        grid = fig.add_gridspec(1, 2, width_ratios=[2.3, LEGEND_WIDTH], bottom=0.62 / height, **margins)
        draw = draw_model_error if view.kind == MODEL_ERROR else draw_joint
        draw(fig.add_subplot(grid[0, 0]), rec, view)
        return
    numeric = view.kind == "numeric"
    bottom = 0.62 + (0.3 if _rotated(view) else 0.0)
    if numeric and view.seasonal is not None:
        below = fig.add_gridspec(
            1, 2, width_ratios=[2.3, LEGEND_WIDTH + 1.0], bottom=0.55 / height, top=(PHASE_ROW - 0.3) / height,
            left=margins["left"], right=margins["right"], wspace=0.32,
        )  # fmt: skip
        draw_phases(fig.add_subplot(below[0, 0]), view)
        bottom += PHASE_ROW
    grid = fig.add_gridspec(
        1,
        4 if numeric else 3,
        width_ratios=[1.0, 1.3, LEGEND_WIDTH, 1.0] if numeric else [1.4, 1.1, LEGEND_WIDTH],
        bottom=bottom / height,
        wspace=0.32,
        **margins,
    )
    draw_distribution(fig.add_subplot(grid[0, 0]), view)
    if numeric:
        draw_values(fig.add_subplot(grid[0, 1]), rec, view)
        draw_missing(fig.add_subplot(grid[0, 3]), rec, view)
    else:
        draw_missing(fig.add_subplot(grid[0, 1]), rec, view)


# --------------------------------------------------------------------------- distribution
def draw_distribution(ax: Any, view: FeatureView) -> None:
    h = view.histogram
    ax.set_title("distribution: reference vs live", fontsize=9, loc="left")
    if h is None or (h.live_count == 0 and h.reference is None):
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    ref_label = f"reference ({view.source}, n={h.reference_count:,})"
    live_label = f"live (n={h.live_count:,})"
    if h.kind == "categorical":
        _bars(ax, h, h.labels, ref_label, live_label)
    elif h.discrete:
        assert h.edges is not None and h.reference is not None
        _bars(ax, h, [f"{v:.4g}" for v in h.edges], ref_label, live_label)
        ax.set_xlabel(f"{view.feature} (each value)")
    else:
        _density(ax, h, view.feature, ref_label, live_label)
    if h.below >= RANGE_NOTE or h.above >= RANGE_NOTE:  # as a legend line: a free-standing box would cover it
        ax.plot(
            [],
            [],
            " ",
            label=f"live outside the reference range:\n{h.below:.1%} under its min, {h.above:.1%} over its max",
        )
    ax.legend(fontsize=7, loc="upper left", framealpha=0.85)
    ax.grid(True, axis="y", alpha=0.3)


def _bars(ax: Any, h: Histogram, names: list[str], ref_label: str, live_label: str) -> None:
    """A pair of bars (reference, live) per name: the categories, or a few distinct values."""
    x = np.arange(len(names))
    if h.reference is not None:
        ax.bar(x - 0.2, h.reference * 100, 0.4, color=REFERENCE_COLOR, label=ref_label)
    ax.bar(x + (0.2 if h.reference is not None else 0.0), h.live * 100, 0.4, color=LIVE_COLOR, label=live_label)
    labels = [lab if len(lab) <= 14 else lab[:13] + "\u2026" for lab in names]
    slant = len(x) > SLANT_OVER
    ax.set_xticks(x, labels, rotation=30 if slant else 0, ha="right" if slant else "center", fontsize=8)
    ax.set_ylabel("share of values (%)")
    top = max(float(np.max(h.live)), float(np.max(h.reference)) if h.reference is not None else 0.0)
    ax.set_ylim(0, top * 100 * 1.35 + 1e-9)  # room for the legend


def _density(ax: Any, h: Histogram, feature: str, ref_label: str, live_label: str) -> None:
    assert h.edges is not None and h.reference is not None
    widths = np.diff(h.edges)
    ref_d, live_d = h.reference / widths, h.live / widths
    top = max(float(ref_d.max()), float(live_d.max())) or 1.0
    exp = int(np.floor(np.log10(top)))
    scale = 1.0 if -2 <= exp <= 3 else 10.0**exp  # a scale in the label, not an offset text over the title
    ax.stairs(ref_d / scale, h.edges, fill=True, color=REFERENCE_COLOR, alpha=0.55, label=ref_label)
    ax.stairs(live_d / scale, h.edges, color=LIVE_COLOR, linewidth=1.8, label=live_label)
    lo, hi = view_range(h.edges)
    cut = lo > h.edges[0] or hi < h.edges[-1]
    ax.set_xlim(lo, hi)
    ax.set_ylim(
        0, top / scale * (1.7 if h.below >= RANGE_NOTE or h.above >= RANGE_NOTE else 1.4)
    )  # room for the legend
    ax.set_xlabel(f"{feature} (raw units{'; outer tails cut' if cut else ''})")
    ax.set_ylabel("density" if scale == 1.0 else f"density (\u00d7 1e{exp})")
    ax.xaxis.set_major_formatter(compact_formatter())


def compact_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(compact)


# --------------------------------------------------------------------------- over time
def _time_axis(ax: Any, rec: ReplayRecorder) -> None:
    ax.set_xlabel(f"event (line of the input file; {rec.bin_size:,} per point)")
    ax.xaxis.set_major_formatter(compact_formatter())  # 100k, not 100000 into its neighbour


def _x(rec: ReplayRecorder, size: int) -> np.ndarray:
    return (np.arange(size) + 0.5) * rec.bin_size


def draw_values(ax: Any, rec: ReplayRecorder, view: FeatureView) -> None:
    """Rolling mean +-1 std of the live values, the reference band, the detections."""
    ax.set_title("values over time", fontsize=9, loc="left")
    s = rec.series.get((view.model, view.feature))
    if s is not None and s.count.size:
        x, mean, std, has = _x(rec, s.count.size), s.mean(), s.std(), s.count > 0
        ax.fill_between(x, np.where(has, mean - std, np.nan), np.where(has, mean + std, np.nan), color=LIVE_COLOR,
                        alpha=0.18, linewidth=0, label="live mean \u00b1 1 sd")  # fmt: skip
        ax.plot(x, np.where(has, mean, np.nan), color=LIVE_COLOR, linewidth=1.1)
    ref = view.reference
    if ref is not None and ref.mean is not None:
        sd = ref.std or 0.0
        ax.axhspan(ref.mean - sd, ref.mean + sd, color=REFERENCE_COLOR, alpha=0.25,
                   label="reference mean \u00b1 1 sd")  # fmt: skip
        ax.axhline(ref.mean, color="#4d4d4d", linestyle="--", linewidth=0.9)
    _time_axis(ax, rec)
    ax.set_ylabel(f"{view.feature} (raw units)")
    ax.yaxis.set_major_formatter(compact_formatter())
    draw_detections(ax, view)


def draw_phases(ax: Any, view: FeatureView) -> None:
    """The reference band per phase of the event time (p05-p95 and mean of the training
    values in the phase) against the live mean per phase (red where outside the band)."""
    b = view.seasonal
    assert b is not None
    ax.set_title(f"by phase of the event time ({b.period}): why the cycle is normal", fontsize=9, loc="left")
    x = np.arange(b.phases + 1)
    ax.stairs(b.high, x, baseline=b.low, fill=True, color=REFERENCE_COLOR, alpha=0.35,
              label="reference p05-p95 per phase")  # fmt: skip
    ax.stairs(b.mean, x, color="#4d4d4d", linewidth=1.0, label="reference mean per phase")
    live = b.live_counts > 0
    centre = x[:-1] + 0.5
    inside = b.inside & live
    ax.plot(centre[inside], b.live_mean[inside], "o", color=LIVE_COLOR, markersize=3.5, label="live mean per phase")
    out = ~b.inside & live
    if out.any():
        ax.plot(centre[out], b.live_mean[out], "o", color=style("adwin")[0], markersize=3.5,
                label="live mean outside the band")  # fmt: skip
    shown = np.concatenate([b.low, b.high, b.live_mean[live]])
    lo, hi = float(shown.min()), float(shown.max())
    pad = (hi - lo) * 0.08 or max(abs(lo), 1.0) * 0.05
    ax.set_xlim(0, b.phases)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(f"phase ({duration(b.seconds / b.phases)} each); " + ("whitened" if b.whitened else "not whitened")
                  + f", lag-1 autocorrelation {b.acf1:.2f}")  # fmt: skip
    ax.set_ylabel(f"{view.feature} (raw units)")
    ax.yaxis.set_major_formatter(compact_formatter())
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, framealpha=0.9)


def draw_model_error(ax: Any, rec: ReplayRecorder, view: FeatureView) -> None:
    """Concept drift: the model's error rate at each detection against the rate before it."""
    ax.set_title("the model's error rate at each concept-drift detection", fontsize=9, loc="left")
    for a in view.drifts:
        if a.window.mean is not None:
            ax.plot([a.source.offset], [a.window.mean], "o", color=LIVE_COLOR, markersize=4)
        if a.reference is not None and a.reference.mean is not None:
            ax.plot([a.source.offset], [a.reference.mean], "_", color="#4d4d4d", markersize=14, markeredgewidth=2)
    ax.plot([], [], "o", color=LIVE_COLOR, label="error rate, latest predictions")
    ax.plot([], [], "_", color="#4d4d4d", markeredgewidth=2, label="error rate before them")
    ax.set_xlim(0, max(rec.last_offset, 1))
    ax.set_ylim(bottom=0)
    ax.set_ylabel("error rate")
    _time_axis(ax, rec)
    draw_detections(ax, view)


def draw_joint(ax: Any, rec: ReplayRecorder, view: FeatureView) -> None:
    """The multivariate test: its effect (nats per row) at each decision against ``min_kl``."""
    ax.set_title("multivariate test: effect at each decision (window of the window tests)", fontsize=9, loc="left")
    for a in view.alerts:
        if a.statistic is not None:
            ax.plot([a.source.offset], [a.statistic], "o", color=LIVE_COLOR, markersize=4)
    ax.plot([], [], "o", color=LIVE_COLOR, label="effect (KL beyond the noise)")
    limit = next((t.threshold for t in view.tests if t.threshold is not None), None)
    if limit is not None:
        ax.axhline(limit, color="#4d4d4d", linestyle="--", linewidth=0.9, label=f"min_kl ({limit:.3g})")
    ax.set_xlim(0, max(rec.last_offset, 1))
    ax.set_ylim(bottom=0)
    ax.set_ylabel("nats per row")
    _time_axis(ax, rec)
    draw_detections(ax, view)


def draw_missing(ax: Any, rec: ReplayRecorder, view: FeatureView) -> None:
    """The missing share per bin of events against the reference's share (and the alert level)."""
    ax.set_title("missing share over time", fontsize=9, loc="left")
    key = (view.model, view.feature)
    present = rec.present.get(key) if view.kind == "categorical" else rec.series.get(key)
    events = rec.events.get(view.model)
    top = 0.0
    if events is not None and events.count.size:
        n = events.count
        have = np.zeros(n.size)
        if present is not None:
            have[: min(n.size, present.count.size)] = present.count[: n.size]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n > 0, 1.0 - have / n, np.nan) * 100
        ax.plot(_x(rec, n.size), share, color=LIVE_COLOR, linewidth=1.1, label="live")
        top = float(np.nanmax(share)) if np.isfinite(share).any() else 0.0
    if view.missing_reference is not None:
        ref = view.missing_reference * 100
        ax.axhline(ref, color="#4d4d4d", linestyle="--", linewidth=0.9, label=f"reference ({ref:.1f} %)")
        top = max(top, ref)
        limit = next((t.threshold for t in view.tests if t.detector == "missing_rate"), None)
        if limit is not None:
            ax.axhline(ref + limit * 100, color=style("missing_rate")[0], linestyle=":", linewidth=1.2,
                       label=f"missing_rate alert level (+{limit * 100:.0f} pp)")  # fmt: skip
            top = max(top, ref + limit * 100)
    ymax = max(top * 1.3, 1.0)
    ax.set_ylim(-0.02 * ymax, ymax)  # a share of 0 stays visible above the axis
    _time_axis(ax, rec)
    ax.set_ylabel("missing (% of events)")
    if view.kind == "categorical":  # its only panel over time: the detections with their markers
        draw_detections(ax, view)
    else:  # the markers and their legend are on the values panel
        draw_detections(ax, view, markers=False)
        ax.legend(fontsize=7, loc="best", framealpha=0.85)


def draw_detections(ax: Any, view: FeatureView, markers: bool = True) -> None:
    """A line per detection (and resolution), markers along the top: one row per detector."""
    from matplotlib.transforms import blended_transform_factory

    along_top = blended_transform_factory(ax.transData, ax.transAxes)
    rows = {d: i for i, d in enumerate(dict.fromkeys(a.detector for a in view.drifts))}
    labelled: set[str] = set()
    for a in view.alerts:
        off = a.source.offset
        if a.status != "drift":
            label = None if "resolved" in labelled else "resolved"
            ax.axvline(off, color=RESOLVED_COLOR, linestyle=":", linewidth=1.4, label=label)
            labelled.add("resolved")
            continue
        color, marker = style(a.detector)
        ax.axvline(off, color=color, linewidth=1.0, alpha=0.6)
        if not markers:
            continue
        y = 0.95 - 0.075 * rows[a.detector]
        label = None if a.detector in labelled else detector_name(a.detector)
        ax.scatter([off], [y], transform=along_top, color=color, marker=marker, s=55, zorder=5, label=label,
                   edgecolors="white", linewidths=0.5, clip_on=False)  # fmt: skip
        labelled.add(a.detector)
    ax.grid(True, alpha=0.3)
    if markers:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, framealpha=0.9)


# --------------------------------------------------------------------------- pages
def feature_png(rec: ReplayRecorder, view: FeatureView) -> bytes:
    """One feature's figure as PNG bytes (the HTML report embeds it), in 256 colours:
    a quarter of the bytes of the RGBA image, every colour of the figure kept apart."""
    from PIL import Image  # matplotlib's own dependency

    height = row_height(view)
    fig = new_figure(height)
    draw_feature(fig, rec, view, height)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(256, Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def render_png(rec: ReplayRecorder, target: str | Path | IO[bytes], source: str = "") -> int:
    """``--plot``: the drifting features (the ``MAX_PLOTS`` with the largest statistic
    against its threshold); with none, a page that says so. Returns the features drawn."""
    views = [v for v in build_views(rec) if v.drifts]
    shown = views[:MAX_PLOTS]
    where = f" of {source}" if source else ""
    if not shown:
        fig = new_figure(1.5)
        fig.text(0.5, 0.5, f"No drift detected in {rec.last_offset + 1:,} events{where}.", ha="center", fontsize=14)
        fig.savefig(target, format="png")
        return 0
    heights = [row_height(v) for v in shown]
    top = 0.45
    fig = new_figure(top + sum(heights))
    more = f" ({len(shown)} of {len(views)} shown, largest first)" if len(views) > len(shown) else ""
    fig.suptitle(
        f"driftsentinel replay{where}: {len(views)} drifting feature(s){more}", y=1 - 0.1 / (top + sum(heights))
    )
    outer = fig.subfigures(2, 1, height_ratios=[top, sum(heights)])
    subfigs = outer[1].subfigures(len(shown), 1, height_ratios=heights, squeeze=False)[:, 0]
    for sub, view, height in zip(subfigs, shown, heights, strict=True):
        draw_feature(sub, rec, view, height)
    fig.savefig(target, format="png")
    return len(shown)
