"""Pictures and report of a replay: ``driftsentinel replay --plot report.png --html report.html``.

* :mod:`~driftsentinel.stream.report_recorder`: :class:`ReplayRecorder`, fed by
  ``stream.replay.replay_file`` (every column batch, every alert, the banks at the end);
  bounded memory: values per bin of input lines, live distributions on the reference's
  bins, category counts, cyclic features' live values per phase of the event time;
* :mod:`~driftsentinel.stream.report_views`: one :class:`FeatureView` per feature (reference
  and live distributions, missing shares, every test's value against its threshold);
* :mod:`~driftsentinel.stream.report_figures`: the figures (``--plot``: the drifting features);
* :mod:`~driftsentinel.stream.report_html`: the self-contained HTML report, a list of sections.

matplotlib (extra ``report``: ``pip install 'driftsentinel[report]'``) is imported only
when a picture is drawn, with the Agg backend: no display needed.
"""

from __future__ import annotations

from driftsentinel.stream.report_figures import MAX_PLOTS, render_png
from driftsentinel.stream.report_html import MAX_FIGURES, SECTIONS, Report, render_html
from driftsentinel.stream.report_recorder import ReplayRecorder
from driftsentinel.stream.report_views import FeatureView, Histogram, TestReading

__all__ = [
    "MAX_FIGURES",
    "MAX_PLOTS",
    "SECTIONS",
    "FeatureView",
    "Histogram",
    "ReplayRecorder",
    "Report",
    "TestReading",
    "render_html",
    "render_png",
]
