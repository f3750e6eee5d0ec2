"""Replay report section: estimated vs realized performance per window, with the reference band.

:class:`PerformanceWindows` collects the windows a replay's engine estimated and graded
(:attr:`driftsentinel.detectors.engine.Output.performance_windows`, one call's worth at a
time: ``add(output.performance_windows)``); a window graded later replaces its estimated-only
record. :func:`performance_section` renders them as one self-contained HTML fragment: per
model and metric, an inline SVG (the band as a shaded area per window, the estimate as a
line, the realized value as dots) and a table of the windows. Bounded: at most
``max_windows`` windows per model are kept (the oldest are dropped).

>>> from driftsentinel.detectors.performance_window import WindowRecord
>>> w = PerformanceWindows()
>>> rec = WindowRecord(0, 4999, 5000, 5000, None, {"roc_auc": 0.95}, {"roc_auc": 0.93}, {"roc_auc": 0.99},
...                    {"roc_auc": 0.96}, {"roc_auc": 0.03})
>>> w.add([("m", rec)])
>>> html = performance_section(w)
>>> "<svg" in html and "roc_auc" in html and "0.950" in html
True
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable

from driftsentinel.detectors.performance_window import WindowRecord


class PerformanceWindows:
    """The windows of each model, by first offset (the graded record wins)."""

    def __init__(self, max_windows: int = 2000) -> None:
        self.max_windows = max_windows
        self.windows: dict[str, dict[int, WindowRecord]] = {}

    def add(self, records: Iterable[tuple[str, WindowRecord]]) -> None:
        for model, record in records:
            kept = self.windows.setdefault(model, {})
            kept[record.first_offset] = record
            while len(kept) > self.max_windows:
                del kept[min(kept)]


def _fmt(value: float | None) -> str:
    return "" if value is None or value != value else f"{value:.3f}"


def _svg(records: list[WindowRecord], metric: str, width: int = 640, height: int = 180) -> str:
    """Band (shaded), estimate (line), realized (dots) per window."""
    values: list[float] = []
    for r in records:
        for v in (r.estimate.get(metric), r.lower.get(metric), r.upper.get(metric)):
            if v is not None and math.isfinite(v):
                values.append(v)
        if r.realized is not None and math.isfinite(r.realized.get(metric, math.nan)):
            values.append(r.realized[metric])
    if not values or not records:
        return ""
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or 0.01
    lo, hi = lo - pad, hi + pad
    n = len(records)

    def x(i: float) -> float:
        return 40 + (width - 50) * (i + 0.5) / n

    def y(v: float) -> float:
        return 10 + (height - 30) * (hi - v) / (hi - lo)

    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(metric)}">']
    step = (width - 50) / n
    for i, r in enumerate(records):
        a, b = r.lower.get(metric), r.upper.get(metric)
        top, bottom = y(b if b is not None else hi), y(a if a is not None else lo)
        parts.append(
            f'<rect x="{x(i) - step / 2:.1f}" y="{top:.1f}" width="{step:.1f}" height="{max(bottom - top, 0):.1f}" '
            'fill="#cfe3f7"/>'
        )
    line = [
        (x(i), y(r.estimate[metric])) for i, r in enumerate(records) if math.isfinite(r.estimate.get(metric, math.nan))
    ]
    if line:
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in line)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#1f5fa8" stroke-width="2"/>')
    for i, r in enumerate(records):
        if r.realized is not None and math.isfinite(r.realized.get(metric, math.nan)):
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(r.realized[metric]):.1f}" r="3" fill="#c0392b"/>')
    parts.append(f'<text x="2" y="{y(hi - pad) + 4:.1f}" font-size="10">{hi - pad:.3f}</text>')
    parts.append(f'<text x="2" y="{y(lo + pad) + 4:.1f}" font-size="10">{lo + pad:.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def performance_section(windows: PerformanceWindows) -> str:
    """The HTML fragment (empty when no model was estimated)."""
    if not any(windows.windows.values()):
        return ""
    out = [
        "<section><h2>Performance estimation</h2>",
        "<p>Per window: the estimate without labels (line), the reference band it was judged by "
        "(shaded) and the realized value once the window's labels covered it (dots).</p>",
    ]
    for model, by_offset in windows.windows.items():
        records = [by_offset[k] for k in sorted(by_offset)]
        metrics = list(records[0].estimate)
        out.append(f"<h3>{html.escape(model)}</h3>")
        for metric in metrics:
            out.append(f"<h4>{html.escape(metric)}</h4>{_svg(records, metric)}")
        head = "".join(f"<th>{html.escape(m)} est.</th><th>band</th><th>realized</th>" for m in metrics)
        out.append(f"<table><tr><th>offsets</th><th>predictions</th><th>labels</th>{head}</tr>")
        for r in records:
            cells = "".join(
                f"<td>{_fmt(r.estimate.get(m))}</td><td>{_fmt(r.lower.get(m))}-{_fmt(r.upper.get(m))}</td>"
                f"<td>{_fmt(None if r.realized is None else r.realized.get(m))}</td>"
                for m in metrics
            )
            out.append(
                f"<tr><td>{r.first_offset}-{r.last_offset}</td><td>{r.predictions}</td>"
                f"<td>{r.coverage:.0%}</td>{cells}</tr>"
            )
        out.append("</table>")
    out.append("</section>")
    return "\n".join(out)
