"""Feature episodes: one change, one alert, whichever detectors see it.

Several detectors watch each feature (ADWIN, Page-Hinkley, the sequential tests, the
window tests, ...). One change usually makes several of them decide ``drift``, a few
events apart; each used to open its own episode, so one change paged several times.
Here the detectors of one feature (same model, same input partition) share one episode:

* the first ``drift`` decision opens it, and is published at once (an alert is never held
  back waiting for agreement: a stream may stop). Its event lists in ``detectors`` every
  detector that decided ``drift`` at that same event; its evidence (``detector``,
  statistic, window, ``change_point``) is the one with the earliest change point (most
  values since it; a decision without one counts as the latest);
* a later ``drift`` of any detector while the episode is open joins it: no event;
* it ends when every detector that joined has resolved: one ``resolved`` event (the
  evidence of the decision that ended it), ``detector`` the one that opened it,
  ``detectors`` every one that joined;
* a detector that was not in it and decides ``drift`` within ``merge_events`` events of
  the model after it ended is the same change seen late (a window test's window closes
  after the change detectors already saw the mean come back): it joins silently, and its
  own ``resolved`` is silent too. A detector that was in it and decides ``drift`` again
  saw the change go and come back: a new episode.

While an episode is open, later detections on the feature are part of it (what an
on-call expects of one incident): a second kind of change on a feature still in drift is
listed on the ``resolved`` event, not paged again.

Episodes group the decisions of detectors with a ``drift``/``resolved`` lifecycle.
:data:`DRIFT_ONLY` detectors never resolve (an episode of theirs would never end): each of
their decisions stays an event of its own. The engine calls :meth:`FeatureEpisodes.decide`
once per feature and event with that event's decisions; the clock ``at`` is the model's
event number (batch-cut independent, checkpointed with the bank), so the same input gives
the same episodes however it is cut into batches and across checkpoint/restore
(:meth:`FeatureEpisodes.state` goes into the partition's checkpoint).

>>> from driftsentinel.schemas import WindowSummary
>>> from driftsentinel.schemas.alerts import ChangePoint
>>> w = WindowSummary(count=1, mean=0.0, std=None, quantiles={}, missing_ratio=0.0)
>>> def sig(det, status, since=None):
...     cp = ChangePoint(values_since=since) if since else None
...     return DriftSignal(0, "x", det, status, 1.0, "mean_shift_sigma", None, w, None, cp)
>>> ep = FeatureEpisodes(merge_events=1000)
>>> both = [sig("adwin", "drift", 40), sig("page_hinkley", "drift", 60)]
>>> [(d.detector, d.detectors) for d in ep.decide("m", 5000, both)]
[('page_hinkley', ['page_hinkley', 'adwin'])]
>>> ep.decide("m", 5100, [sig("ks", "drift")])  # joins the open episode
[]
>>> ep.decide("m", 9000, [sig("adwin", "resolved"), sig("page_hinkley", "resolved")])
[]
>>> [(d.signal.status, d.detector, d.detectors) for d in ep.decide("m", 10000, [sig("ks", "resolved")])]
[('resolved', 'page_hinkley', ['page_hinkley', 'adwin', 'ks'])]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from driftsentinel.schemas.signals import DriftSignal

#: Detectors that decide ``drift`` only, never ``resolved`` (concept drift: the model's
#: error rose). Each of their decisions is its own event, as before episodes were shared.
DRIFT_ONLY = frozenset({"concept_drift"})
#: A checkpointed episode naming more detectors than this is not a state we wrote.
MAX_DETECTORS = 256


@dataclass
class Episode:
    """One feature's episode: who opened it, who joined, who is still in drift."""

    opener: str
    agreed: list[str]  # every detector that joined while it was open, the opener first
    active: list[str]  # of those, the ones not resolved yet
    published: bool = True  # its drift event was decided (False: the cooldown muted it, and its resolved)
    closed_at: int = -1  # the model's event number where it resolved; -1 while open
    late: list[str] = field(default_factory=list)  # joined after it ended, within merge_events: silent


@dataclass(frozen=True)
class Publication:
    """An event to publish: ``signal``'s decision and evidence, as ``detector`` (the episode's
    opener) with ``detectors``."""

    signal: DriftSignal
    detector: str
    detectors: list[str]


def _since(sig: DriftSignal) -> tuple[int, int]:
    """How far back a signal puts its change point, comparable across detectors: events
    first (``cusum_missing`` counts events, the others values of the feature, which on a
    sparse feature are fewer than its events), then values."""
    cp = sig.change_point
    if cp is None:
        return (0, 0)
    return (cp.events_since if cp.events_since is not None else cp.values_since, cp.values_since)


class FeatureEpisodes:
    """The feature episodes of one input partition, by ``(model, feature)``."""

    def __init__(self, merge_events: int) -> None:
        self.merge_events = merge_events
        self._episodes: dict[tuple[str, str], Episode] = {}

    def decide(self, model: str, at: int, signals: Sequence[DriftSignal]) -> list[Publication]:
        """The events of one feature's decisions at one event (the model's event number ``at``).

        ``signals``: that event's decisions about one feature, none of a :data:`DRIFT_ONLY`
        detector. Drift decisions are taken first (a detector that resolves at the event
        another one fires leaves the episode open). At most one ``drift`` and one ``resolved``.
        """
        out: list[Publication] = []
        drifts = [s for s in signals if s.status == "drift"]
        if drifts:
            key = (model, drifts[0].feature)
            opening = self._drift(key, at, drifts)
            if opening is not None:
                out.append(opening)
        for sig in signals:
            if sig.status == "resolved":
                closing = self._resolved((model, sig.feature), at, sig)
                if closing is not None:
                    out.append(closing)
        return out

    def mute(self, model: str, feature: str) -> None:
        """The episode just opened on ``feature`` publishes nothing (its drift was in the cooldown)."""
        self._episodes[(model, feature)].published = False

    def _drift(self, key: tuple[str, str], at: int, drifts: list[DriftSignal]) -> Publication | None:
        ep = self._episodes.get(key)
        fresh: list[DriftSignal] = []
        for sig in drifts:
            name = sig.detector
            if ep is not None and ep.closed_at < 0:  # open: anyone joins
                if name not in ep.agreed:
                    ep.agreed.append(name)
                if name not in ep.active:
                    ep.active.append(name)
            elif ep is not None and name in ep.late:
                continue  # already in drift, silently (a detector decides drift once per own episode)
            elif ep is not None and name not in ep.agreed and at - ep.closed_at <= self.merge_events:
                ep.late.append(name)  # the same change, seen late
            else:
                fresh.append(sig)
        if not fresh:
            return None
        # the earliest change point; ties (and none) in the order the detectors decided
        first = max(fresh, key=_since)
        names = [first.detector] + [s.detector for s in fresh if s is not first]
        late = [] if ep is None else [d for d in ep.late if d not in names]
        self._episodes[key] = Episode(opener=first.detector, agreed=list(names), active=list(names), late=late)
        return Publication(first, first.detector, names)

    def _resolved(self, key: tuple[str, str], at: int, sig: DriftSignal) -> Publication | None:
        ep = self._episodes.get(key)
        name = sig.detector
        if ep is None:
            # no episode recorded: its drift was decided before episodes were checkpointed
            return Publication(sig, name, [name])
        if name in ep.late:
            ep.late.remove(name)
            return None
        if ep.closed_at >= 0 or name not in ep.active:
            return None  # not in drift as far as episodes know (it joined an episode that ended)
        ep.active.remove(name)
        if ep.active:
            return None
        ep.closed_at = at
        return Publication(sig, ep.opener, list(ep.agreed)) if ep.published else None

    # ------------------------------------------------------------------ state
    def state(self) -> list[list[Any]]:
        """Plain lists for the checkpoint: ``[model, feature, opener, agreed, active, late,
        published, closed_at]`` per episode."""
        return [
            [
                model,
                feature,
                ep.opener,
                list(ep.agreed),
                list(ep.active),
                list(ep.late),
                int(ep.published),
                ep.closed_at,
            ]
            for (model, feature), ep in self._episodes.items()
        ]

    @classmethod
    def from_state(cls, entries: Any, merge_events: int) -> FeatureEpisodes:
        """Inverse of :meth:`state`; ``ValueError`` on anything it did not write."""
        if not isinstance(entries, list):
            raise ValueError(f"state.episodes: expected a list, got {type(entries).__name__!r}")
        out = cls(merge_events)
        for i, entry in enumerate(entries):
            where = f"state.episodes[{i}]"
            if not (isinstance(entry, list) and len(entry) == 8):
                raise ValueError(
                    f"{where}: expected [model, feature, opener, agreed, active, late, published, closed_at]"
                )
            model, feature, opener, agreed, active, late, published, closed_at = entry
            if not all(isinstance(s, str) for s in (model, feature, opener)):
                raise ValueError(f"{where}: model, feature and opener must be strings")
            agreed = _names(agreed, f"{where}.agreed")
            active = _names(active, f"{where}.active")
            late = _names(late, f"{where}.late")
            if not agreed or agreed[0] != opener or not set(active) <= set(agreed):
                raise ValueError(f"{where}: agreed must start with the opener and hold every active detector")
            if type(published) is not int or published not in (0, 1):
                raise ValueError(f"{where}: published must be 0 or 1")
            if type(closed_at) is not int or closed_at < -1:
                raise ValueError(f"{where}: closed_at must be an integer >= -1")
            if (closed_at < 0) != bool(active):
                raise ValueError(f"{where}: an open episode has active detectors, a closed one none")
            out._episodes[(model, feature)] = Episode(opener, agreed, active, bool(published), closed_at, late)
        return out


def _names(value: Any, where: str) -> list[str]:
    if not (isinstance(value, list) and len(value) <= MAX_DETECTORS and all(isinstance(s, str) for s in value)):
        raise ValueError(f"{where}: expected a list of at most {MAX_DETECTORS} detector names")
    if len(set(value)) != len(value):
        raise ValueError(f"{where}: a detector is named twice")
    return list(value)
