"""Offline replay: the sidecar's engine over a JSON Lines file, alerts as JSON lines.

Offsets in the alerts are 0-based line numbers and the topic is the file's name, so a
replay of the same file always yields the same alerts and event ids.

A ``recorder`` (:class:`stream.report.ReplayRecorder`) sees every column batch, every
alert and the banks at the end, for plots and the HTML report; a ``progress``
(:class:`stream.progress.Progress`) is told the bytes read and events decoded.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import IO, Protocol

from detectors.bank import DetectorBank
from schemas import DriftEvent, FeatureBatch, InvalidEvent, SidecarConfig
from schemas.fastdecode import EventView, decode_event_fast
from schemas.profile import load_profile
from stream.alerts import AlertPolicy
from stream.columns import to_batches


class Recorder(Protocol):
    def on_batch(self, model: str, batch: FeatureBatch) -> None: ...
    def on_alert(self, event: DriftEvent) -> None: ...
    def on_finish(self, banks: dict[str, DetectorBank]) -> None: ...


class ProgressSink(Protocol):
    def update(self, bytes_read: int, events: int) -> None: ...


def replay_file(path: Path, config: SidecarConfig, out: IO[str], batch_size: int = 4096,
                recorder: Recorder | None = None, progress: ProgressSink | None = None) -> dict[str, object]:
    """Replay ``path``; write one DriftEvent JSON per line to ``out``; return counts."""
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
                pending.append((line_no, decode_event_fast(line.rstrip(b"\r\n"))))
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
    return {"events": valid, "invalid": dict(invalid), "alerts": alerts}
