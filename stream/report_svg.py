"""Small inline SVGs of the report: a feature's reference and live distributions (the
table) and a cyclic feature's reference band per phase against its live means.

Grey: the reference; blue: the live values. Numeric features: density on the reference's
equal-mass bins, over the range the figures show (:func:`view_range`); a few distinct
values or categories: a pair of bars per value. The range's ends are written under it.

>>> import numpy as np
>>> from driftsentinel.stream.report_views import Histogram
>>> h = Histogram("categorical", np.array([0.5, 0.5]), 10, np.array([0.9, 0.1]), 100, labels=["a", "b"])
>>> svg = sparkline(h)
>>> svg.startswith("<svg") and svg.count("<rect") == 4 and ">a</text>" in svg
True
"""

from __future__ import annotations

import html

import numpy as np

from driftsentinel.stream.report_views import BAND_LEVELS, Histogram, SeasonalBand, compact, view_range

DASH = "&ndash;"
e = html.escape
SVG_W, SVG_H, SVG_LABEL = 170, 38, 11


def sparkline(h: Histogram | None) -> str:
    """Reference (grey) and live (blue) distributions as a small inline SVG with its range."""
    if h is None or (h.live_count == 0 and h.reference is None):
        return DASH
    lo: str | float
    hi: str | float
    if h.kind == "numeric" and not h.discrete and h.edges is not None and h.reference is not None:
        body, lo, hi = _svg_density(h)
    else:
        body = _svg_bars(h)
        names = h.labels if h.kind == "categorical" else [f"{x:.4g}" for x in (h.edges if h.edges is not None else [])]
        lo, hi = (names[0], names[-1]) if names else ("", "")
    tip = "reference (grey) and live (blue) shares" + (f"; live n={h.live_count:,}" if h.live_count else "")
    y = SVG_H + SVG_LABEL - 2
    return (
        f'<svg class="spark" width="{SVG_W}" height="{SVG_H + SVG_LABEL}" role="img"><title>{e(tip)}</title>'
        f"{body}"
        f'<text x="1" y="{y}" font-size="9">{e(_short(lo))}</text>'
        f'<text x="{SVG_W - 1}" y="{y}" font-size="9" text-anchor="end">{e(_short(hi))}</text></svg>'
    )


def _short(label: str | float) -> str:
    text = label if isinstance(label, str) else compact(float(f"{label:.3g}"))
    return text if len(text) <= 12 else text[:11] + "\u2026"


def _svg_density(h: Histogram) -> tuple[str, float, float]:
    assert h.edges is not None and h.reference is not None
    lo, hi = view_range(h.edges)
    widths = np.diff(h.edges)
    ref_d, live_d = h.reference / widths, h.live / widths
    top = max(float(ref_d.max()), float(live_d.max())) or 1.0
    xs = np.clip((h.edges - lo) / ((hi - lo) or 1.0) * SVG_W, 0, SVG_W)

    def stairs(d: np.ndarray) -> str:
        pts = [f"{xs[0]:.1f},{SVG_H}"]
        for i, val in enumerate(d):
            yv = SVG_H - val / top * (SVG_H - 2)
            pts += [f"{xs[i]:.1f},{yv:.1f}", f"{xs[i + 1]:.1f},{yv:.1f}"]
        return " ".join([*pts, f"{xs[-1]:.1f},{SVG_H}"])

    return (
        f'<polygon points="{stairs(ref_d)}" fill="#bdbdbd"/>'
        f'<polyline points="{stairs(live_d)}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>',
        lo,
        hi,
    )


def _svg_bars(h: Histogram) -> str:
    n = max(h.live.size, 1)
    slot = SVG_W / n
    top = max(float(h.live.max()) if h.live.size else 0.0, float(h.reference.max()) if h.reference is not None else 0.0)
    top = top or 1.0
    out = []
    for i in range(h.live.size):
        for k, (vals, color) in enumerate(((h.reference, "#bdbdbd"), (h.live, "#1f77b4"))):
            if vals is None:
                continue
            hgt = float(vals[i]) / top * (SVG_H - 2)
            x = i * slot + slot * (0.1 + 0.4 * k)
            out.append(f'<rect x="{x:.1f}" y="{SVG_H - hgt:.1f}" width="{slot * 0.4:.1f}" height="{hgt:.1f}" '
                       f'fill="{color}"/>')  # fmt: skip
    return "".join(out)


# --------------------------------------------------------------------------- seasonal band
BAND_W, BAND_H, BAND_LEFT, BAND_BOTTOM, BAND_TOP = 640, 150, 52, 16, 6
BAND_COLOR, MEAN_COLOR, LIVE_COLOR, OUTSIDE_COLOR = "#d9d9d9", "#4d4d4d", "#1f77b4", "#d62728"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def phase_ticks(period: str, phases: int) -> list[tuple[int, str]]:
    """Where to label the phase axis: hours of the day, days of the week, else phase numbers.

    >>> phase_ticks("hour_of_day", 24)[:2], phase_ticks("hour_of_week", 168)[1], phase_ticks("900", 24)[-1]
    ([(0, '0h'), (6, '6h')], (24, 'Tue'), (18, '18'))
    """
    if period == "hour_of_day" and phases == 24:
        return [(h, f"{h}h") for h in range(0, 24, 6)]
    if period == "hour_of_week" and phases == 168:
        return [(24 * d, DAYS[d]) for d in range(7)]
    step = max(1, phases // 4)
    return [(i, str(i)) for i in range(0, phases, step)]


def _num(v: float) -> str:
    return f"{float(v):.4g}"


def band_svg(b: SeasonalBand) -> str:
    """The reference band per phase (grey: the phase's p05-p95 of the training values; dark
    line: the phase's reference mean) and the live mean per phase (blue dot; red when
    outside the band), phases along x. Each band is a ``rect`` and each live mean a
    ``circle`` with ``data-phase``, its numbers in the circle's tooltip."""
    k = b.phases
    live = b.live_counts > 0
    values = np.concatenate([b.low, b.high, b.mean, b.live_mean[live]])
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = (hi - lo) * 0.05 or max(abs(lo), 1.0) * 0.05
    lo, hi = lo - pad, hi + pad
    plot_w, plot_h = BAND_W - BAND_LEFT - 4, BAND_H - BAND_BOTTOM - BAND_TOP
    slot = plot_w / k

    def y(v: float) -> float:
        return BAND_TOP + (hi - v) / (hi - lo) * plot_h

    out = [
        f'<svg class="band" width="{BAND_W}" height="{BAND_H}" role="img"><title>{e(b.model)} / {e(b.feature)}: '
        f"reference p{BAND_LEVELS[0] * 100:02.0f}-p{BAND_LEVELS[1] * 100:02.0f} and mean per phase, live mean per "
        "phase</title>"
    ]
    for p in range(k):
        top, bottom = y(float(b.high[p])), y(float(b.low[p]))
        pooled = f" (pooled over {int(b.pooled[p])} phases)" if b.pooled[p] > 1 else ""
        out.append(
            f'<rect class="ref-band" data-phase="{p}" x="{BAND_LEFT + p * slot:.2f}" y="{top:.2f}" '
            f'width="{slot:.2f}" height="{max(bottom - top, 0.5):.2f}" fill="{BAND_COLOR}">'
            f"<title>phase {p}: reference {_num(b.low[p])} to {_num(b.high[p])}, mean "
            f"{_num(b.mean[p])}, n={int(b.reference_counts[p]):,}{pooled}</title></rect>"
        )
    mean_pts = " ".join(
        f"{BAND_LEFT + p * slot:.2f},{y(float(m)):.2f} {BAND_LEFT + (p + 1) * slot:.2f},{y(float(m)):.2f}"
        for p, m in enumerate(b.mean)
    )
    out.append(f'<polyline class="ref-mean" points="{mean_pts}" fill="none" stroke="{MEAN_COLOR}" stroke-width="1"/>')
    inside = b.inside
    r = max(1.2, min(3.0, slot * 0.35))
    for p in np.flatnonzero(live).tolist():
        m = float(b.live_mean[p])
        color = LIVE_COLOR if inside[p] else OUTSIDE_COLOR
        out.append(
            f'<circle class="live" data-phase="{p}" cx="{BAND_LEFT + (p + 0.5) * slot:.2f}" cy="{y(m):.2f}" '
            f'r="{r:.1f}" fill="{color}"><title>phase {p}: live mean {_num(m)} (n={int(b.live_counts[p]):,}), '
            f"reference {_num(b.low[p])} to {_num(b.high[p])}</title></circle>"
        )
    base = BAND_H - BAND_BOTTOM
    out.append(f'<line x1="{BAND_LEFT}" y1="{base}" x2="{BAND_W - 4}" y2="{base}" stroke="#999"/>')
    for p, label in phase_ticks(b.period, k):
        out.append(f'<text x="{BAND_LEFT + p * slot:.1f}" y="{BAND_H - 3}" font-size="10">{e(label)}</text>')
    for v in (hi - pad, lo + pad):
        out.append(
            f'<text x="{BAND_LEFT - 4}" y="{y(v) + 3:.1f}" font-size="10" text-anchor="end">{e(_short(v))}</text>'
        )
    out.append("</svg>")
    return "".join(out)
