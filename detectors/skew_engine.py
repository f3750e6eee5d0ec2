"""The skew engine: every decision of ``driftsentinel skew``, pure and deterministic.

It takes decoded rows in input order — serving events with where they were read
(:class:`~driftsentinel.schemas.skew.ServingRow`) and offline rows
(:class:`~driftsentinel.schemas.skew.OfflineRow`) — joins serving and offline features
on ``id`` and, with a ``shadow`` section, the baseline's and candidate's predictions on
``id`` (:class:`StreamJoin`, bounded), compares the pairs window by window
(:class:`~driftsentinel.detectors.skew.SkewDetector`,
:class:`~driftsentinel.detectors.shadow.ShadowDetector`) and returns DriftEvents (ids,
severities and evidence made here) with the read-outs the gauges need
(:class:`~driftsentinel.schemas.skew.SkewStep`). No I/O, no Kafka, no clock: the caller
passes ``arrival`` (its monotonic clock, for ``clock: arrival`` joins and ``window_s``)
and ``wall`` (epoch seconds, the alerts' ``detected_at``).

>>> from driftsentinel.schemas.skew import OfflineRow, ServingRow, SkewSidecarConfig
>>> cfg = SkewSidecarConfig.model_validate({"sources": {"offline_topic": "off"},
...                                        "skew": {"window_pairs": 10, "min_pairs": 1}})
>>> engine = SkewEngine.from_config(cfg)
>>> rows = [ServingRow(f"u{i}", {"latency": 1000.0}, "m", "features", 0, i) for i in range(10)]
>>> rows += [OfflineRow(f"u{i}", {"latency": 1.0}) for i in range(10)]
>>> step = engine.add(rows, arrival=0.0, wall=1.7e9)
>>> [(e.feature, e.status, e.severity, e.source.offset) for e in step.events]
[('latency', 'drift', 'critical', 9)]
>>> step.skew_ratio
{'latency': 1.0}

State (:meth:`SkewEngine.state_dict`, plain data, no pickle) holds the two joins' waiting
ids with their values and counters, both detectors' open windows and episodes, the
positions the next early-closed windows are reported at, and the time the current window
started:

>>> again = SkewEngine.from_state(cfg, engine.state_dict())
>>> again.stats()["join"] == engine.stats()["join"]
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from driftsentinel.detectors.join import StreamJoin
from driftsentinel.detectors.shadow import ShadowDetector, ShadowResult, ShadowSignal
from driftsentinel.detectors.skew import SkewDetector, SkewSignal, TextCells, WindowResult
from driftsentinel.schemas.alerts import DriftEvent, SourcePosition, WindowSummary, make_event_id
from driftsentinel.schemas.skew import (
    OfflineRow,
    ServingRow,
    ShadowConfig,
    SkewConfig,
    SkewSidecarConfig,
    SkewStep,
)

SERVING, OFFLINE = "serving", "offline"
#: A serving event's place in the input, as kept in the joins: ``[topic, partition, offset, ts]``
#: (a list, so the joins' state is plain data).
Position = list[Any]
#: 2: an offline value in the join is ``[features, text]`` (``text``: the features are TextCells,
#: :data:`DECIMAL_COMMA` when their file writes numbers with a decimal comma).
STATE_VERSION = 2
DECIMAL_COMMA = "decimal_comma"


def _text_tag(features: Any) -> bool | str:
    """How an offline row's features are kept in the join: False (typed), True (TextCells), or DECIMAL_COMMA."""
    if not isinstance(features, TextCells):
        return False
    return DECIMAL_COMMA if features.decimal_comma else True


def _position(row: ServingRow) -> Position:
    return [row.topic, row.partition, row.offset, row.ts]


class SkewEngine:
    """Joins, windows and alert decisions of the skew and shadow checks.

    ``model`` labels the skew alerts and gauges; ``only_model`` (when set) limits the skew
    join to serving events of that model; ``offline`` says whether an offline side exists
    (without one there is nothing to join serving events with); ``group_id`` goes into
    the event ids, so the same input position always gives the same id.
    """

    def __init__(
        self,
        skew: SkewConfig,
        shadow: ShadowConfig | None,
        *,
        group_id: str,
        model: str,
        only_model: str | None = None,
        offline: bool = True,
    ) -> None:
        self.skew_config = skew
        self.shadow_config = shadow
        self.group_id = group_id
        self.model = model
        self.only_model = only_model
        self.skew_on = skew.enabled and offline
        win = skew.window
        self.join = StreamJoin((SERVING, OFFLINE), win.max_pending, win.max_age_s)
        self.skew = SkewDetector(skew)
        self.shadow = ShadowDetector(shadow) if shadow else None
        self.shadow_join = (
            StreamJoin((shadow.baseline, shadow.candidate), win.max_pending, win.max_age_s) if shadow else None
        )
        self._last_pair: Position | None = None  # where a window closed early (flush) is reported
        self._last_shadow: Position | None = None
        self._window_started: float | None = None  # arrival time; set by the first call

    @classmethod
    def from_config(cls, config: SkewSidecarConfig) -> SkewEngine:
        """The engine ``driftsentinel skew`` runs for ``config``."""
        src = config.sources
        return cls(
            config.skew,
            config.shadow,
            group_id=src.group_id,
            model=src.model or config.default_model,
            only_model=src.model,
            offline=bool(src.offline_topic or src.offline_file),
        )

    # ------------------------------------------------------------------ input
    def add(self, rows: Sequence[ServingRow | OfflineRow], arrival: float, wall: float) -> SkewStep:
        """Feed rows in input order; pairs are compared after the whole batch is joined."""
        if self._window_started is None:
            self._window_started = arrival
        step = SkewStep()
        ids: list[str] = []
        pairs: list[tuple[Any, Any]] = []
        s_ids: list[str] = []
        s_pairs: list[tuple[Any, Any]] = []
        for row in rows:
            t = self._join_time(arrival, row.ts)
            if isinstance(row, OfflineRow):
                text = _text_tag(row.features)
                pair = self.join.add(OFFLINE, row.id, [dict(row.features), text], t)
            else:
                got = self._add_shadow(row, t)
                if got is not None:
                    s_ids.append(row.id)
                    s_pairs.append(got)
                if not self._joins_skew(row):
                    continue
                pair = self.join.add(SERVING, row.id, [dict(row.features), _position(row)], t)
            if pair is not None:
                ids.append(row.id)
                pairs.append(pair)
        if ids:
            self._compare(ids, pairs, arrival, wall, step)
        if s_ids:
            self._compare_shadow(s_ids, s_pairs, wall, step)
        return self._done(step)

    def _add_shadow(self, row: ServingRow, t: float) -> tuple[Any, Any] | None:
        shadow = self.shadow_config
        if shadow is None or self.shadow_join is None:
            return None
        version = row.model if shadow.version_field is None else row.version
        if version not in (shadow.baseline, shadow.candidate):
            return None
        return self.shadow_join.add(version, row.id, [row.prediction, _position(row)], t)

    def _joins_skew(self, row: ServingRow) -> bool:
        """Whether a serving event takes part in the skew join."""
        shadow = self.shadow_config
        if shadow is not None:
            version = row.model if shadow.version_field is None else row.version
            if version == shadow.candidate:
                return False  # the candidate's features are the baseline's: no skew pairing
        return self.skew_on and (self.only_model is None or row.model == self.only_model)

    def _join_time(self, arrival: float, ts: float | None) -> float:
        """The joins' clock: arrival time, or with ``clock: event`` the event's ``ts``.

        Under the event clock an event without ``ts`` takes the newest ``ts`` seen (the
        watermark), or, before any, no time limit (the count limit still holds).
        """
        if self.skew_config.window.clock == "arrival":
            return arrival
        if ts is not None:
            return ts
        return self.join.watermark if math.isfinite(self.join.watermark) else math.inf

    # ------------------------------------------------------------------ time and end of input
    def tick(self, arrival: float, wall: float) -> SkewStep:
        """Evict ids past the age limit; close a partial window once ``skew.window_s`` has passed."""
        if self._window_started is None:
            self._window_started = arrival
        t = None if self.skew_config.window.clock == "event" else arrival
        self.join.expire(t)
        if self.shadow_join is not None:
            self.shadow_join.expire(t)
        step = SkewStep()
        window_s = self.skew_config.window_s
        if window_s is not None and arrival - self._window_started >= window_s:
            self._window_started = arrival
            self._flush(wall, step)
        return self._done(step)

    def finish(self, wall: float) -> SkewStep:
        """End of input: partial windows are evaluated, waiting ids count as unmatched."""
        step = SkewStep()
        self._flush(wall, step)
        self.join.drain()
        if self.shadow_join is not None:
            self.shadow_join.drain()
        return self._done(step)

    def offline_room(self) -> int:
        """Offline rows a reader may add now: half the window is left to ids read ahead of their partner."""
        return max(max(self.skew_config.window.max_pending // 2, 1) - self.join.pending(OFFLINE), 0)

    def stats(self) -> dict[str, Any]:
        """The joins' counters (for logs and the run's stats line)."""
        return {"join": self.join.stats(), "shadow_join": self.shadow_join.stats() if self.shadow_join else None}

    def _done(self, step: SkewStep) -> SkewStep:
        step.unmatched = dict(self.join.unmatched)
        return step

    # ------------------------------------------------------------------ decisions
    def _compare(
        self, ids: list[str], pairs: list[tuple[Any, Any]], arrival: float, wall: float, step: SkewStep
    ) -> None:
        positions = [serving[1] for serving, _ in pairs]
        offline = [
            TextCells(feats, decimal_comma=text == DECIMAL_COMMA) if text else feats for _, (feats, text) in pairs
        ]
        results = self.skew.update(ids, [serving[0] for serving, _ in pairs], offline)
        self._last_pair = positions[-1]
        if results:
            self._window_started = arrival
        for result in results:
            self._skew_window(result, positions, wall, step)

    def _compare_shadow(self, ids: list[str], pairs: list[tuple[Any, Any]], wall: float, step: SkewStep) -> None:
        assert self.shadow is not None
        positions = [base[1] for base, _ in pairs]  # the baseline's event
        results = self.shadow.update(ids, [base[0] for base, _ in pairs], [cand[0] for _, cand in pairs])
        self._last_shadow = positions[-1]
        for result in results:
            self._shadow_window(result, positions, wall, step)

    def _flush(self, wall: float, step: SkewStep) -> None:
        """Evaluate the partial skew and shadow windows now."""
        result = self.skew.flush()
        if result is not None:
            self._skew_window(result, [], wall, step)
        if self.shadow is not None:
            shadow_result = self.shadow.flush(min_pairs=self.skew_config.min_pairs)
            if shadow_result is not None:
                self._shadow_window(shadow_result, [], wall, step)

    def _skew_window(self, result: WindowResult, positions: list[Position], wall: float, step: SkewStep) -> None:
        pos = positions[result.row] if result.row >= 0 else self._last_pair
        assert pos is not None
        cfg = self.skew_config
        for name, report in result.reports.items():
            step.skew_ratio[name] = report.mismatch_rate
        for sig in result.signals:
            severity = "info"
            if sig.status == "drift":
                severity = "critical" if sig.statistic >= cfg.critical_mismatch else "warning"
            evidence = sig.report.evidence()
            evidence["window_pairs"] = result.pairs
            evidence["join"] = self.join.stats()
            windows = (sig.report.serving, sig.report.offline)
            step.events.append(self._event(self.model, sig.feature, sig, severity, pos, windows, evidence, wall))

    def _shadow_window(self, result: ShadowResult, positions: list[Position], wall: float, step: SkewStep) -> None:
        shadow = self.shadow_config
        assert shadow is not None
        pos = positions[result.row] if result.row >= 0 else self._last_shadow
        assert pos is not None
        report = result.report
        step.shadow = (report.agreement_rate, report.distance)
        for sig in result.signals:
            severity = "info"
            if sig.status == "drift":
                severity = "critical" if sig.statistic < shadow.min_agreement else "warning"
            evidence = {"baseline": shadow.baseline, "candidate": shadow.candidate, **report.evidence()}
            windows = (report.candidate, report.baseline)
            step.events.append(self._event(shadow.candidate, "prediction", sig, severity, pos, windows, evidence, wall))

    def _event(
        self,
        model: str,
        feature: str,
        sig: SkewSignal | ShadowSignal,
        severity: str,
        pos: Position,
        windows: tuple[WindowSummary, WindowSummary],
        evidence: dict[str, Any],
        wall: float,
    ) -> DriftEvent:
        """A DriftEvent; its id from the group and the position of the serving event that closed the window.

        ``windows``: the live side's summary (the alert's ``window``) and the side it is compared with.
        """
        topic, partition, offset, ts = pos
        detector = sig.detector
        return DriftEvent(
            event_id=make_event_id(self.group_id, topic, partition, offset, f"{model}/{feature}", detector, sig.status),
            model=model,
            feature=feature,
            detector=detector,
            status=sig.status,
            severity=severity,  # type: ignore[arg-type]
            statistic=sig.statistic,
            statistic_name=sig.statistic_name,
            threshold=sig.threshold,
            source=SourcePosition(topic=topic, partition=partition, offset=offset),
            event_time=ts,
            detected_at=wall,
            window=windows[0],
            reference=windows[1],
            evidence=evidence,
        )

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything the engine holds, as plain data (JSON/msgpack-safe, no pickle)."""
        return {
            "version": STATE_VERSION,
            "join": self.join.state_dict(),
            "shadow_join": self.shadow_join.state_dict() if self.shadow_join else None,
            "skew": self.skew.state_dict(),
            "shadow": self.shadow.state_dict() if self.shadow else None,
            "last_pair": self._last_pair,
            "last_shadow": self._last_shadow,
            "window_started": self._window_started,
        }

    @classmethod
    def from_state(cls, config: SkewSidecarConfig, state: dict[str, Any]) -> SkewEngine:
        """Rebuild from :meth:`state_dict` under ``config`` (its limits apply to what was waiting).

        ``window_started`` is a time of the clock the caller passes as ``arrival``: a caller
        on another clock (a new process) should not rely on it.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"skew engine state version {state.get('version')!r}, expected {STATE_VERSION}")
        engine = cls.from_config(config)
        win = config.skew.window
        engine.join = StreamJoin.from_state(state["join"], win.max_pending, win.max_age_s)
        engine.skew = SkewDetector.from_state(config.skew, state["skew"])
        if config.shadow is not None and state["shadow"] is not None:
            engine.shadow = ShadowDetector.from_state(config.shadow, state["shadow"])
            engine.shadow_join = StreamJoin.from_state(state["shadow_join"], win.max_pending, win.max_age_s)
        engine._last_pair = state["last_pair"]
        engine._last_shadow = state["last_shadow"]
        engine._window_started = state["window_started"]
        return engine
