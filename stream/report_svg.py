"""A feature's reference and live distributions as a small inline SVG (the report's table).

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

from driftsentinel.stream.report_views import Histogram, compact, view_range

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
