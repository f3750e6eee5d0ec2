"""The HTML report of a replay: one self-contained file, built from a list of sections.

A section is a function of the :class:`Report` (the recorder, its feature views, the
replay's counts) that returns HTML; :data:`SECTIONS` is the default list, and a new
section (a per-window performance table, say) is one more function in it.

Every feature gets a table row: status, first detection, reference and live summaries,
the shift now, the missing share (reference -> live), every test's value now against its
threshold, and a small inline SVG of the reference and live distributions. The features
with the most to show (drifting first, then those closest to a threshold) also get a
figure (PNG, inline base64), at most :data:`MAX_FIGURES`, so a report of 500 features stays
a few megabytes; the rest are in the table.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from driftsentinel.stream.report_figures import feature_png, style
from driftsentinel.stream.report_performance import performance_section
from driftsentinel.stream.report_recorder import ReplayRecorder
from driftsentinel.stream.report_segments import segments_section
from driftsentinel.stream.report_svg import band_svg, sparkline
from driftsentinel.stream.report_views import (
    BAND_LEVELS,
    JOINT_KIND,
    MODEL_ERROR,
    MODEL_LEVEL,
    FeatureView,
    TestReading,
    build_views,
    detector_name,
)

#: Feature figures embedded in the HTML report (the rest are summarised in the table).
MAX_FIGURES = 30
#: Cyclic features whose reference band per phase is drawn (the rest are named).
MAX_BANDS = 30
#: Up to this many features, one open table; beyond, those without a detection are collapsed.
OPEN_ROWS = 50
#: A feature without drift gets a figure when a test is at least this share of its threshold.
NEAR = 0.5
DASH = "&ndash;"
e = html.escape


@dataclass
class Report:
    """What the sections draw from."""

    rec: ReplayRecorder
    stats: dict[str, Any]
    source: str
    views: list[FeatureView] = field(default_factory=list)
    figures: list[FeatureView] = field(default_factory=list)  # the views that get a figure

    def anchor(self, view: FeatureView) -> str | None:
        return f"fig-{self.figures.index(view)}" if view in self.figures else None


Section = Callable[[Report], str]


def fmt(v: float | None, spec: str = ".3g") -> str:
    """A number for a table cell; from 1,000 to a billion with thousands separators.

    >>> fmt(50171.8), fmt(0.000123), fmt(24.13), fmt(None), fmt(0.812, "+.2f")
    ('50,172', '0.000123', '24.1', '&ndash;', '+0.81')
    """
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return DASH
    if spec == ".3g" and 1e3 <= abs(v) < 1e9:
        return f"{v:,.0f}"
    return format(v, spec)


def pct(v: float | None) -> str:
    return DASH if v is None else f"{v * 100:.1f}&nbsp;%"


# --------------------------------------------------------------------------- sections
def summary(r: Report) -> str:
    invalid: dict[str, int] = dict(r.stats.get("invalid", {}))
    why = f" ({e(', '.join(f'{k}: {v:,}' for k, v in sorted(invalid.items())))})" if invalid else ""
    counts = {s: sum(v.status == s for v in r.views) for s in ("drift", "resolved", "ok", "not tested")}
    return "\n".join(
        [
            f"<h1>driftsentinel replay report: {e(r.source)}</h1>",
            "<dl>",
            f"<dt>input</dt><dd>{e(r.source)}</dd>",
            f"<dt>events</dt><dd>{int(r.stats.get('events', 0)):,} valid, {sum(invalid.values()):,} invalid{why}</dd>",
            f"<dt>alerts</dt><dd>{int(r.stats.get('alerts', 0)):,} DriftEvents</dd>",
            f"<dt>features</dt><dd>{len(r.views):,}: {counts['drift']:,} in drift, {counts['resolved']:,} "
            f"drifted and resolved, {counts['ok']:,} without drift, {counts['not tested']:,} not tested</dd>",
            f"<dt>reference</dt><dd>{reference_text(r)}</dd>",
            f"<dt>generated</dt><dd>{datetime.now(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}</dd>",
            "</dl>",
        ]
    )


def reference_text(r: Report) -> str:
    """Where the references come from: the profile, the warm-up, or both."""
    sources = {v.source for v in r.views if v.source}
    warmup = f"the first {r.rec.warmup:,} values of each feature in this replay (the warm-up)"
    prof = r.rec.profile
    if prof is None:
        return f"{warmup}: no training profile was given (<code>--reference</code>)"
    path = r.rec.config.reference or "the profile"
    text = f"the training profile <code>{e(str(path))}</code> ({e(prof.source)}, {prof.n_rows:,} rows)"
    return text + (f"; for features it does not have, {warmup}" if "warm-up" in sources else "")


def features_table(r: Report) -> str:
    """Every feature, one row each. In a report of more than :data:`OPEN_ROWS` features the
    ones without a detection are in a second table, collapsed."""
    several = len({v.model for v in r.views}) > 1
    head = "".join(
        f"<th>{h}</th>"
        for h in [
            *(["model"] if several else []),
            "feature",
            "status",
            "first drift",
            "reference",
            "live (replay)",
            "shift now",
            "missing: reference &rarr; live",
            "tests now: value vs threshold",
            'distribution: <span class="ref">reference</span> <span class="live">live</span>',
        ]
    )
    table = '<table class="features"><thead><tr>' + head + "</tr></thead><tbody>"
    detected = [v for v in r.views if v.drifts]
    rest = [v for v in r.views if not v.drifts]
    if len(r.views) <= OPEN_ROWS:
        detected, rest = r.views, []
    out = ["<h2>Features</h2>", table, *(_row(r, v, several) for v in detected), "</tbody></table>"]
    if rest:
        out += [
            f"<details><summary>{len(rest):,} features without a detection</summary>",
            table,
            *(_row(r, v, several) for v in rest),
            "</tbody></table></details>",
        ]
    return "\n".join(out)


def _row(r: Report, v: FeatureView, several: bool) -> str:
    anchor = r.anchor(v)
    name = f'<a href="#{anchor}">{e(v.feature)}</a>' if anchor else e(v.feature)
    cells = [
        *([f'<td class="l">{e(v.model)}</td>'] if several else []),
        f'<td class="l">{name}<br><small>{e(v.kind)}</small></td>',
        f'<td class="l status">{e(v.status)}</td>',
        f'<td class="l first">{first_drift(v)}</td>',
        f'<td class="n">{reference_cell(v)}</td>',
        f'<td class="n">{live_cell(v)}</td>',
        f'<td class="n">{shift_cell(v)}</td>',
        f'<td class="n">{missing_cell(v)}</td>',
        f'<td class="l">{readings_cell(v)}</td>',
        f"<td>{joint_cell(v) if v.kind == JOINT_KIND else sparkline(v.histogram)}</td>",
    ]
    return f'<tr class="{e(v.status.replace(" ", "-"))}">{"".join(cells)}</tr>'


def details(r: Report) -> str:
    out = ["<h2>Feature figures</h2>"]
    shown = len(r.figures)
    if shown < len(r.views):
        out.append(
            f"<p>{shown} of {len(r.views):,} features drawn: those with a detection (at most {MAX_FIGURES}, "
            f"largest first), then those with a test at {NEAR:.0%} of its threshold or more. Every feature's "
            "distributions are in the table above.</p>"
        )
    out.append(f"<p>{figure_legend()}</p>")
    stable = [v for v in r.figures if not v.drifts]
    for v in r.figures:
        if stable and v is stable[0]:
            out.append(f"<details><summary>features without drift, a test near its threshold ({len(stable)})</summary>")
        png = base64.b64encode(feature_png(r.rec, v)).decode("ascii")
        alt = f"{v.model}/{v.feature}: reference and live distributions, values and missing share over time"
        out.append(
            f'<section id="{r.anchor(v)}"><h3>{e(v.model)} / {e(v.feature)} ({e(v.status)})</h3>'
            f'<img alt="{e(alt)}" src="data:image/png;base64,{png}"></section>'
        )
    if stable:
        out.append("</details>")
    if not any(v.drifts for v in r.views):
        out.insert(1, "<p>No drift detected.</p>")
    return "\n".join(out)


def figure_legend() -> str:
    return (
        "Distribution: grey, the reference; blue, the live values of the replay (numeric: density on 20 "
        "equal-mass bins of the reference; few distinct values or categories: share per value). Over time: "
        "live mean &plusmn; 1 std per bin of events against the reference mean &plusmn; 1 std; missing share "
        "per bin against the reference's. A vertical line and a marker (one colour and row per test) at the "
        "input line where a test decided drift; dotted green: resolved."
    )


def notes(r: Report) -> str:
    sources = {v.source for v in r.views if v.source}
    where = "training profile" if sources == {"profile"} else "warm-up" if sources == {"warm-up"} else "mixed"
    return (
        f"<footer><p><small>Reference ({e(where)}): {reference_text(r)}. Shift now: numeric, the bank's live mean "
        "over its latest window(s) minus the reference mean, in reference standard deviations; categorical, the "
        "largest change of a category's share over the replay. Tests now: each test's value in its latest window "
        "(Page-Hinkley: its cumulative sum now; ADWIN: the mean shift, it has no threshold), against what it "
        "is decided against now: a distribution test's effect (bias-corrected) against its latest window's "
        "cut-off (<code>decision_ratio</code> x its minimum meaningful change, raised on small windows; a "
        "window is flagged when it is also significant), a <code>cusum_*</code> test's statistic against its "
        "threshold h, the multivariate test (row <code>@multivariate</code>) against <code>min_kl</code>; red: "
        "over the threshold now; bold: in a drift episode. At detection: the statistic in the DriftEvent."
        "</small></p></footer>"
    )


def seasonal(r: Report) -> str:
    """The cyclic features' reference band per phase of the event time against the live
    means (profiles with a ``seasonal`` section): why a cycle is normal. At most
    :data:`MAX_BANDS` drawn, drifting first; the others named."""
    bands = [v.seasonal for v in r.views if v.seasonal is not None]
    if not bands:
        return ""
    lo, hi = (f"p{level * 100:02.0f}" for level in BAND_LEVELS)
    out = [
        "<h2>Seasonal reference</h2>",
        f"<p>Features the profile conditions on the phase of the event time: per phase, grey the {lo}&ndash;{hi} "
        "of the training values in that phase, the dark line their mean; a dot the mean of the live values in that "
        "phase (blue inside the band, red outside). The detectors compare each value with its own phase "
        "(standardised by the phase's mean and std, and whitened when the feature is autocorrelated), so a live "
        "cycle that follows the band is normal. In the table above, these features' shift now is in those "
        "standardised units; their reference is the training values' over every phase.</p>",
    ]
    for b in bands[:MAX_BANDS]:
        out.append(
            f'<section class="seasonal"><h3>{e(b.model)} / {e(b.feature)}</h3><p><small>{e(b.describe())}</small></p>'
            f"{band_svg(b)}</section>"
        )
    if len(bands) > MAX_BANDS:
        rest = ", ".join(f"{b.model}/{b.feature}" for b in bands[MAX_BANDS:])
        out.append(f"<p><small>{len(bands) - MAX_BANDS:,} more cyclic features not drawn: {e(rest)}</small></p>")
    return "\n".join(out)


#: The report, top to bottom. Append a section (a ``Report -> str`` function) to extend it.
def performance(r: Report) -> str:
    """Estimated vs realized performance per window, with the band (models with a performance reference)."""
    return performance_section(r.rec.performance)


def segments(r: Report) -> str:
    """The drifting segments, with the overall view of their features (``detectors.segments``)."""
    return segments_section(r.rec.segment_alerts, r.views)


SECTIONS: list[Section] = [summary, features_table, seasonal, segments, performance, details, notes]


# --------------------------------------------------------------------------- cells
def first_drift(v: FeatureView) -> str:
    if v.status == "not tested":
        return f"<small>{e(v.reason)}</small>"
    a = v.first_drift
    if a is None:
        return DASH
    stat = fmt(a.statistic)
    limit = "" if a.threshold is None else f" &gt; {fmt(a.threshold)}"
    more = f"<br><small>{len(v.drifts) - 1} more detection(s)</small>" if len(v.drifts) > 1 else ""
    return f"event {a.source.offset:,}: {e(detector_name(a.detector))} {stat}{limit} ({e(a.severity or '')}){more}"


def joint_cell(v: FeatureView) -> str:
    """The multivariate row's distribution cell: the features whose dependence it watches."""
    if not v.joint_features:
        return DASH
    return f"<small>dependence of {len(v.joint_features)} features: {e(', '.join(v.joint_features))}</small>"


def reference_cell(v: FeatureView) -> str:
    ref = v.reference
    if v.kind == JOINT_KIND:  # the profile's correlation section
        return DASH if ref is None else f"correlation matrix<br><small>n={ref.count:,} rows</small>"
    if v.kind == MODEL_ERROR:  # the error rate before the change, from the alert
        return (
            DASH if ref is None or ref.mean is None else f"error rate {fmt(ref.mean)}<br><small>n={ref.count:,}</small>"
        )
    if v.kind == "categorical":
        h = v.histogram
        if h is None or h.reference is None:
            return "none"
        i = int(np.argmax(h.reference))
        return f"{e(h.labels[i])} {pct(float(h.reference[i]))}<br><small>n={h.reference_count:,}</small>"
    if ref is None or ref.mean is None:
        return "warming up" if v.status != "not tested" else "none"
    return f"{fmt(ref.mean)} &plusmn; {fmt(ref.std)}<br><small>n={ref.count:,}</small>"


def live_cell(v: FeatureView) -> str:
    h = v.histogram
    if v.kind == MODEL_ERROR:
        return DASH if v.live_mean is None else f"error rate {fmt(v.live_mean)}<br><small>at the last detection</small>"
    if v.kind == JOINT_KIND:
        return "correlation per window<br><small>of the window tests</small>"
    if v.kind == "categorical":
        if h is None or not h.live_count:
            return "no values"
        i = int(np.argmax(h.reference)) if h.reference is not None else int(np.argmax(h.live))
        return f"{e(h.labels[i])} {pct(float(h.live[i]))}<br><small>n={h.live_count:,}</small>"
    if v.live_mean is None:
        return "no values"
    return f"{fmt(v.live_mean)} &plusmn; {fmt(v.live_std)}"


def shift_cell(v: FeatureView) -> str:
    if v.kind in MODEL_LEVEL:
        return "n/a"
    if v.kind == "numeric":
        return DASH if v.mean_shift_now is None else f"{v.mean_shift_now:+.2f} sd"
    h = v.histogram
    if h is None or h.reference is None or not h.live_count:
        return DASH
    diff = h.live - h.reference
    i = int(np.argmax(np.abs(diff)))
    return f"{e(h.labels[i])} {diff[i] * 100:+.1f} pp"


def missing_cell(v: FeatureView) -> str:
    if v.kind == MODEL_ERROR:
        return "n/a (events with a label)"
    if v.kind == JOINT_KIND:
        return "n/a (rows with every feature)"
    return f"{pct(v.missing_reference)} &rarr; {pct(v.missing_live)}"


def _chip(t: TestReading) -> str:
    name = e(detector_name(t.detector))
    color = style(t.detector)[0]
    if t.detector == "adwin":
        body = f"{name} shift {fmt(t.value_now, '+.2f')} sd"
    else:
        body = f"{name} {fmt(t.value_now)} / {fmt(t.threshold)}"
    cls = "t" + (" over" if t.over else "") + (" open" if t.in_drift else "")
    tip = f"{detector_name(t.detector)}: now {fmt(t.value_now)}, threshold {fmt(t.threshold)}"
    if t.at_detection is not None:
        tip += f", {fmt(t.at_detection)} at detection ({t.detections} detection(s))"
    if t.note:
        tip += f"; {t.note}"
    return f'<span class="{cls}" style="border-left-color:{color}" title="{e(tip)}">{body}</span>'


def readings_cell(v: FeatureView) -> str:
    if not v.tests:
        return f"<small>{e(v.reason) or 'no test has run yet'}</small>"
    chips = " ".join(_chip(t) for t in v.tests)
    if v.source == "warm-up" and not any(t.detector == "missing_rate" for t in v.tests):
        chips += "<br><small>distribution and missing-share tests need a profile (--reference)</small>"
    return chips


# --------------------------------------------------------------------------- page
CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; } h3 { font-size: 1em; margin: 1.2em 0 0.3em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; vertical-align: middle; }
th { background: #f0f0f0; position: sticky; top: 0; } td.l { text-align: left; }
tr.drift td.status { background: #f8d7da; font-weight: bold; }
tr.resolved td.status { background: #fff3cd; }
tr.ok td.status { background: #d4edda; }
tr.not-tested td.status { background: #e9ecef; color: #555; }
span.t { display: inline-block; white-space: nowrap; margin: 1px 2px; padding: 0 4px; border-left: 4px solid #999;
  background: #f6f6f6; font-size: 0.92em; }
span.t.over { background: #f8d7da; } span.t.open { font-weight: bold; }
td.n { white-space: nowrap; } td.first { min-width: 13em; }
span.ref { color: #8c8c8c; font-weight: bold; } span.live { color: #1f77b4; font-weight: bold; }
svg.spark text, svg.band text { fill: #555; font-family: inherit; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; } dd { margin: 0; }
img { max-width: 100%; border: 1px solid #ddd; }
details summary { cursor: pointer; font-weight: bold; margin: 1em 0; }
"""


def render_html(
    rec: ReplayRecorder,
    target: str | Path,
    stats: dict[str, Any],
    source: str = "",
    sections: list[Section] | None = None,
) -> None:
    """Write the self-contained report: every section of ``sections`` (default :data:`SECTIONS`)."""
    views = build_views(rec)
    report = Report(rec, stats, source, views, figures=_figures(views))
    body = [section(report) for section in (SECTIONS if sections is None else sections)]
    page = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>driftsentinel replay report: {e(source)}</title>",
        f"<style>{CSS}</style></head><body>",
        *body,
        "</body></html>",
    ]
    Path(target).write_text("\n".join(page) + "\n", encoding="utf-8")


def _figures(views: list[FeatureView]) -> list[FeatureView]:
    """The views that get a figure (views come sorted, drifting first): every one with a
    detection, then those with a test at least :data:`NEAR` of its threshold, at most
    :data:`MAX_FIGURES`. A figure costs about 0.3 s to draw; the table shows every feature."""
    drawn = [v for v in views if v.drifts or (v.rank >= NEAR and v.histogram is not None)]
    return drawn[:MAX_FIGURES]
