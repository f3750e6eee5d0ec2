"""Offline replay: the sidecar's engine over a JSON Lines file, alerts as JSON lines.

Offsets in the alerts are 0-based line numbers and the topic is the file's name, so a
replay of the same file always yields the same alerts and event ids.

With ``labels`` (a JSON Lines file of LabelEvents), each event that carries a
prediction but no label gets the label with its ``id``, as if it had arrived in the
event: the model's error is then backtested in serving order, and concept-drift alerts
point at the event's line.

A ``recorder`` (:class:`stream.report.ReplayRecorder`) sees every column batch, every
alert and the banks at the end, for plots and the HTML report; a ``progress``
(:class:`stream.progress.Progress`) is told the bytes read and events decoded.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import msgspec

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.schemas import DriftEvent, FeatureBatch, InvalidEvent, SidecarConfig
from driftsentinel.schemas.fastdecode import EventView, decode_event_fast
from driftsentinel.schemas.labels import decode_label
from driftsentinel.schemas.profile import load_profile
from driftsentinel.stream.alerts import AlertPolicy
from driftsentinel.stream.columns import to_batches


class Recorder(Protocol):
    def on_batch(self, model: str, batch: FeatureBatch) -> None: ...
    def on_alert(self, event: DriftEvent) -> None: ...
    def on_finish(self, banks: dict[str, DetectorBank]) -> None: ...


class ProgressSink(Protocol):
    def update(self, bytes_read: int, events: int) -> None: ...


@dataclass
class _Labels:
    by_id: dict[str, float | str]
    invalid: Counter[str]
    joined: int = 0

    @classmethod
    def read(cls, path: Path) -> _Labels:
        by_id: dict[str, float | str] = {}
        invalid: Counter[str] = Counter()
        with path.open("rb") as fh:
            for line in fh:
                try:
                    ev = decode_label(line.rstrip(b"\r\n"))
                except InvalidEvent as exc:
                    invalid[exc.reason] += 1
                    continue
                by_id[ev.id] = ("true" if ev.label else "false") if isinstance(ev.label, bool) else ev.label
        return cls(by_id, invalid)

    def attach(self, event: EventView) -> EventView:
        if event.id is None or event.prediction is None or event.label is not None:
            return event
        label = self.by_id.pop(event.id, None)
        if label is None:
            return event
        self.joined += 1
        return msgspec.structs.replace(event, label=label)


def replay_file(path: Path, config: SidecarConfig, out: IO[str], batch_size: int = 4096,
                recorder: Recorder | None = None, progress: ProgressSink | None = None,
                labels: Path | None = None) -> dict[str, object]:
    """Replay ``path``; write one DriftEvent JSON per line to ``out``; return counts."""
    late = _Labels.read(labels) if labels is not None else None
    policy = AlertPolicy(config.alerts, config.kafka.group_id)
    profile = load_profile(config.reference) if config.reference else None
    banks: dict[str, DetectorBank] = {}
    invalid: Counter[str] = Counter()
    alerts = 0
    valid = 0
    topic = path.name

    def flush(events: list[tuple[int, EventView]]) -> None:
        nonlocal alerts
        now = time.time()
        def admit(model: str, names: list[str]) -> list[str]:
            return bank_of(model).admit(names)

        def bank_of(model: str) -> DetectorBank:
            bank = banks.get(model)
            if bank is None:
                bank = banks[model] = DetectorBank(config.detectors, profile)
            return bank

        for model, batch in to_batches(events, config.default_model, admit=admit).items():
            bank = bank_of(model)
            if recorder is not None:
                recorder.on_batch(model, batch)
            for sig in bank.update(batch):
                offset = int(batch.offsets[sig.row])
                if not policy.admit(sig, model, topic, 0, offset):
                    continue
                ts = float(batch.event_times[sig.row])
                event = policy.to_event(
                    sig, model=model, topic=topic, partition=0, offset=offset,
                    event_time=None if ts != ts else ts, now=now,
                )
                out.write(event.model_dump_json() + "\n")
                alerts += 1
                if recorder is not None:
                    recorder.on_alert(event)

    pending: list[tuple[int, EventView]] = []
    read = 0
    with path.open("rb") as fh:
        for line_no, line in enumerate(fh):
            read += len(line)
            try:
                event = decode_event_fast(line.rstrip(b"\r\n"))
                pending.append((line_no, event if late is None else late.attach(event)))
                valid += 1
            except InvalidEvent as exc:
                invalid[exc.reason] += 1
            if len(pending) >= batch_size:
                flush(pending)
                pending = []
            if progress is not None and line_no & 1023 == 1023:
                progress.update(read, line_no + 1)
    if pending:
        flush(pending)
    if progress is not None:
        progress.update(read, valid + sum(invalid.values()))
    if recorder is not None:
        recorder.on_finish(banks)
    stats: dict[str, object] = {"events": valid, "invalid": dict(invalid), "alerts": alerts}
    if late is not None:
        stats["labels"] = {"joined": late.joined, "unmatched": len(late.by_id), "invalid": dict(late.invalid)}
    return stats
