"""Offline replay: the sidecar's engine over a JSON Lines file, alerts as JSON lines.

Offsets in the alerts are 0-based line numbers and the topic is the file's name, so a
replay of the same file always yields the same alerts and event ids.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import IO

from detectors.bank import DetectorBank
from schemas import FeatureEvent, InvalidEvent, SidecarConfig, decode_event
from stream.alerts import AlertPolicy
from stream.columns import to_batches


def replay_file(path: Path, config: SidecarConfig, out: IO[str], batch_size: int = 4096) -> dict[str, object]:
    """Replay ``path``; write one DriftEvent JSON per line to ``out``; return counts."""
    policy = AlertPolicy(config.alerts, config.kafka.group_id)
    banks: dict[str, DetectorBank] = {}
    invalid: Counter[str] = Counter()
    alerts = 0
    valid = 0
    topic = path.name

    def flush(events: list[tuple[int, FeatureEvent]]) -> None:
        nonlocal alerts
        now = time.time()
        for model, batch in to_batches(events, config.default_model).items():
            bank = banks.setdefault(model, DetectorBank(config.detectors))
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

    pending: list[tuple[int, FeatureEvent]] = []
    with path.open("rb") as fh:
        for line_no, line in enumerate(fh):
            try:
                pending.append((line_no, decode_event(line.rstrip(b"\r\n"))))
                valid += 1
            except InvalidEvent as exc:
                invalid[exc.reason] += 1
            if len(pending) >= batch_size:
                flush(pending)
                pending = []
    if pending:
        flush(pending)
    return {"events": valid, "invalid": dict(invalid), "alerts": alerts}
