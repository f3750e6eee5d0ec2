"""The replay report's segment section: the drifting segments, the overall view next to them.

One row per (model, segment key, segment value, feature) that a segment's detectors put in
drift (``detectors.segments``): the segment's status at the end of the replay and its first
detection, then the same feature's overall status and first detection, so a slice that moved
while the whole did not reads at a glance. The mix tests (feature ``@segment:<key>``) are in
the features table like any feature.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from driftsentinel.schemas import DriftEvent
from driftsentinel.stream.report_views import FeatureView

e = html.escape
DASH = "&ndash;"


def _detection(a: DriftEvent | None) -> str:
    if a is None:
        return DASH
    limit = "" if a.threshold is None else f" vs {a.threshold:.3g}"
    stat = "" if a.statistic is None else f": {e(a.statistic_name)} {a.statistic:.3g}{limit}"
    return f"offset {a.source.offset:,}<br><small>{e(a.detector)}{stat}</small>"


def segment_rows(alerts: Iterable[DriftEvent]) -> dict[tuple[str, str, str, str], list[DriftEvent]]:
    """A segment's alerts by (model, key, value, feature), in stream order."""
    rows: dict[tuple[str, str, str, str], list[DriftEvent]] = {}
    for a in alerts:
        if a.segment is not None:
            rows.setdefault((a.model, a.segment.key, a.segment.value, a.feature), []).append(a)
    return rows


def segments_section(alerts: list[DriftEvent], views: list[FeatureView]) -> str:
    """The section's HTML (empty without segment alerts)."""
    rows = segment_rows(alerts)
    if not rows:
        return ""
    overall = {(v.model, v.feature): v for v in views}
    several = len({k[0] for k in rows}) > 1
    head = [*(["model"] if several else []), "key", "segment", "feature", "segment status", "segment: first drift"]
    head += ["overall status", "overall: first drift"]
    out = [
        "<h2>Segments</h2>",
        "<p><small>Segments whose own detectors found drift (against the segment's own reference), "
        "with the whole stream's view of the same feature.</small></p>",
        '<table class="features"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>",
    ]
    for (model, key, value, feature), events in sorted(rows.items()):
        drifts = [a for a in events if a.status == "drift"]
        if not drifts:
            continue
        view = overall.get((model, feature))
        cells = [*([model] if several else []), key, value, feature]
        status = "drift" if events[-1].status == "drift" else "resolved"
        row = "".join(f"<td>{e(c)}</td>" for c in cells)
        row += f'<td class="{status}">{status}</td><td>{_detection(drifts[0])}</td>'
        row += f"<td>{e(view.status) if view else DASH}</td><td>{_detection(view.first_drift if view else None)}</td>"
        out.append(f"<tr>{row}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)
