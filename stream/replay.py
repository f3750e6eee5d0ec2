"""Offline replay: the sidecar's engine over a JSON Lines file, alerts as JSON lines.

The file is read as one partition of a topic: its 0-based line numbers are the offsets,
the topic is the file's name (``topic``/``partition`` change that: a replay with the
sidecar's input topic, partition and ``kafka.group_id`` reproduces its event ids). A
line is a FeatureEvent, or one columnar message (:mod:`driftsentinel.schemas.columnar`)
in base64: a msgpack message may hold newline bytes, so it cannot be a line as it is.
Bad lines are counted (``invalid``), as the sidecar counts what it sends to its DLQ; a
UTF-8 byte-order mark before the first line is dropped. A file without one valid event
(empty, or a CSV or UTF-16 file passed by mistake) raises :class:`NoEventsError`, as does
a labels file with lines and not one valid label.

With ``labels`` (a JSON Lines file of LabelEvents), the file is read as the labels topic
(``labels_topic``, default the file's name; the same partition number; line numbers as
offsets) and its labels go through the sidecar's late-label join, fed in this order: the
two files merged by time. A line's time is its ``ts`` (a columnar message's: its last
row's), or when it has none the time of the line before it in its file (-inf at the
start); each file keeps its order, and on equal times the label goes first. So a labels
file without times is read before the events: each event's label is waiting for it, the
model's error is backtested in serving order, and concept-drift alerts point at the
event's line (a pair's alert points at the later of its two messages by time, on a tie
at the one that completed it). The times are the join's message time, as Kafka's are
for the sidecar.

A ``recorder`` (:class:`driftsentinel.stream.report.ReplayRecorder`) sees every column
batch, every alert and the banks at the end, for plots and the HTML report; a ``progress``
(:class:`driftsentinel.stream.progress.Progress`) is told the bytes read and events decoded.

>>> import io, json, pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "e.jsonl").write_text("".join(json.dumps({"features": {"x": float(i >= 3000)}}) + "\\n"
...                                        for i in range(6000)))
>>> out = io.StringIO()
>>> replay_file(d / "e.jsonl", SidecarConfig(), out)["alerts"] >= 1
True
>>> json.loads(out.getvalue().splitlines()[0])["source"]["topic"]
'e.jsonl'
"""

from __future__ import annotations

import base64
import binascii
import codecs
import heapq
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Protocol

from driftsentinel.detectors.bank import DetectorBank
from driftsentinel.detectors.engine import Engine, Item, LabelItem, Output
from driftsentinel.detectors.performance_window import WindowRecord
from driftsentinel.schemas import DriftEvent, FeatureBatch, InvalidEvent, SidecarConfig
from driftsentinel.schemas.columnar import ColumnBatch, decode_columns, is_columnar
from driftsentinel.schemas.fastdecode import EventView, decode_event_fast
from driftsentinel.schemas.labels import LabelEvent, decode_label
from driftsentinel.schemas.profile import ReferenceProfile, load_profile
from driftsentinel.stream.input_files import InputFileError


def write_named(out: IO[str], text: str) -> None:
    """``out.write(text)``; an OSError without a file name (a full disk, an I/O error) gets ``out``'s.

    A failed ``write()`` names no file, so the CLI could not tell the user which one.
    """
    try:
        out.write(text)
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), getattr(out, "name", "the output")) from exc


class NoEventsError(InputFileError):
    """A replayed file without one valid event (or a labels file without one valid label)."""


class Recorder(Protocol):
    def on_start(self, profile: ReferenceProfile | None) -> None: ...
    def on_batch(self, model: str, batch: FeatureBatch) -> None: ...
    def on_alert(self, event: DriftEvent) -> None: ...
    def on_finish(self, banks: dict[str, DetectorBank]) -> None: ...
    def on_performance(self, windows: Iterable[tuple[str, WindowRecord]]) -> None: ...


class ProgressSink(Protocol):
    def update(self, bytes_read: int, events: int) -> None: ...


#: What a line decodes to: an event or columnar message, a label, or why it is bad.
_Decoded = EventView | ColumnBatch | LabelEvent | InvalidEvent
#: Merge key, then (line number, decoded line, line length): labels (kind 0) before events on equal times.
_Line = tuple[tuple[float, int, int], tuple[int, _Decoded, int]]


def decode_line(line: bytes) -> EventView | ColumnBatch:
    """One line of a replayed file: a FeatureEvent, or a base64 columnar message.

    >>> from driftsentinel.schemas.columnar import encode_columns
    >>> decode_line(base64.b64encode(encode_columns(numeric={"x": [1.0, 2.0]}))).rows
    2
    >>> decode_line(b'{"features": {"x": 1}}').features
    {'x': 1}
    """
    if line[:1] != b"{":
        try:
            raw = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if is_columnar(raw):
            return decode_columns(raw)
    return decode_event_fast(line)


def _time_of(decoded: _Decoded, before: float) -> float:
    """A line's merge time: its ``ts``, else the time of the line before it."""
    if isinstance(decoded, ColumnBatch):
        last = float(decoded.ts[-1])
        return last if last == last else before
    if isinstance(decoded, EventView | LabelEvent) and isinstance(decoded.ts, float | int):
        return float(decoded.ts)
    return before


def _lines(path: Path, kind: int) -> Iterator[_Line]:
    """The file's decoded lines with their merge keys (kind 0: labels, 1: events)."""
    t = float("-inf")
    with path.open("rb") as fh:
        for line_no, line in enumerate(fh):
            text = line.rstrip(b"\r\n")
            if line_no == 0 and text.startswith(codecs.BOM_UTF8):
                text = text[len(codecs.BOM_UTF8) :]
            decoded: _Decoded
            try:
                decoded = decode_label(text) if kind == 0 else decode_line(text)
            except InvalidEvent as exc:
                decoded = exc
            t = _time_of(decoded, t)
            yield (t, kind, line_no), (line_no, decoded, len(line))


class _Replay:
    """One replay's engine, feed and counters."""

    def __init__(
        self,
        config: SidecarConfig,
        out: IO[str],
        topic: str,
        partition: int,
        labels_topic: str | None,
        recorder: Recorder | None,
        profile: ReferenceProfile | None,
    ) -> None:
        if recorder is not None:
            recorder.on_start(profile)
        self.engine = Engine(
            config,
            input_topic=topic,
            labels_topic=labels_topic,
            profile=profile,
            on_batch=recorder.on_batch if recorder is not None else None,
        )
        self.engine.restore(topic, partition, None)
        self.out, self.recorder = out, recorder
        self.topic, self.partition, self.labels_topic = topic, partition, labels_topic
        self.events: list[Item] = []
        self.labels: list[LabelItem] = []
        self.valid = 0
        self.invalid: Counter[str] = Counter()
        self.label_invalid: Counter[str] = Counter()
        #: per kind (0 labels, 1 events): the 0-based number and reason of its first bad line
        self.first_bad: dict[int, tuple[int, str]] = {}
        self.labels_seen = 0
        self.alerts = 0
        self.joined = 0
        self.unmatched = 0

    def take(self, kind: int, t: float, line_no: int, decoded: _Decoded, batch_size: int) -> None:
        if isinstance(decoded, InvalidEvent):
            (self.label_invalid if kind == 0 else self.invalid)[decoded.reason] += 1
            self.first_bad.setdefault(kind, (line_no, decoded.reason))
        elif isinstance(decoded, LabelEvent):
            self.labels_seen += 1
            self.labels.append((line_no, decoded, t))
        else:
            self.events.append((line_no, decoded, t))
            self.valid += 1
        if len(self.events) + len(self.labels) >= batch_size:
            self.flush()

    def flush(self) -> None:
        """A batch as the sidecar consumes one: lines of both files in time order, its events, then its labels.

        (A label whose prediction is in the same batch joins it either way. Flushing at every
        change of file instead would make each event its own engine call when labels
        interleave with events line by line: 30x slower, and unlike ``run``.)
        """
        self.flush_events()
        self.flush_labels()

    def flush_events(self) -> None:
        if self.events:
            self.emit(self.engine.process(self.topic, self.partition, self.events, now=time.time()))
            self.events = []

    def flush_labels(self) -> None:
        if self.labels and self.labels_topic is not None:
            self.emit(self.engine.process_labels(self.labels_topic, self.partition, self.labels, now=time.time()))
        self.labels = []

    def emit(self, output: Output) -> None:
        for event in output.events:
            write_named(self.out, event.model_dump_json() + "\n")
        if self.recorder is not None:  # the report shows what each test decided, episodes or not
            for event in output.detections:
                self.recorder.on_alert(event)
        if self.recorder is not None and output.performance_windows:
            self.recorder.on_performance(output.performance_windows)
        self.alerts += len(output.events)
        self.joined += sum(output.labels_joined.values())
        self.unmatched += output.labels_unmatched.get("label", 0)


def replay_file(
    path: Path,
    config: SidecarConfig,
    out: IO[str],
    batch_size: int = 4096,
    recorder: Recorder | None = None,
    progress: ProgressSink | None = None,
    labels: Path | None = None,
    topic: str | None = None,
    partition: int = 0,
    labels_topic: str | None = None,
    profile: ReferenceProfile | None = None,
) -> dict[str, object]:
    """Replay ``path``; write one DriftEvent JSON per line to ``out``; return counts.

    ``profile``: ``config.reference`` already loaded (else it is read here).
    """
    labels_topic = (labels_topic or labels.name) if labels is not None else None
    if profile is None and config.reference:
        profile = load_profile(config.reference)
    replay = _Replay(config, out, topic or path.name, partition, labels_topic, recorder, profile)
    streams = [_lines(path, 1)] + ([_lines(labels, 0)] if labels is not None else [])
    read = lines = 0
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda line: line[0])
    for (t, kind, _), (line_no, decoded, size) in merged:
        replay.take(kind, t, line_no, decoded, batch_size)
        if kind == 1:
            read += size
            lines += 1
            if progress is not None and lines & 1023 == 0:
                progress.update(read, lines)
    _check_some_valid(path, labels, replay)
    replay.flush()
    replay.emit(replay.engine.finish(replay.topic, partition))
    if progress is not None:
        progress.update(read, lines)
    if recorder is not None:
        recorder.on_finish(replay.engine.banks(replay.topic, partition))
    stats: dict[str, object] = {"events": replay.valid, "invalid": dict(replay.invalid), "alerts": replay.alerts}
    if labels is not None:
        stats["labels"] = {
            "joined": replay.joined,
            "unmatched": replay.unmatched,
            "invalid": dict(replay.label_invalid),
        }
    return stats


def _check_some_valid(path: Path, labels: Path | None, replay: _Replay) -> None:
    """:class:`NoEventsError` for an events file without a valid event, a labels file with lines and no label."""
    if not replay.valid:
        raise NoEventsError(_no_valid(path, "event", sum(replay.invalid.values()), replay.first_bad.get(1)))
    if labels is not None and not replay.labels_seen and replay.label_invalid:
        bad = replay.first_bad.get(0)
        raise NoEventsError(_no_valid(labels, "label", sum(replay.label_invalid.values()), bad))


def _no_valid(path: Path, what: str, lines: int, first_bad: tuple[int, str] | None) -> str:
    """The one-line error for a file without a valid ``what``, with a hint at what the file is."""
    doc = "one JSON FeatureEvent per line" if what == "event" else 'one JSON {"id", "label"} per line'
    if first_bad is None:
        return f"{path}: empty: replay needs JSON Lines, {doc} (docs/inputs.md)"
    with path.open("rb") as fh:
        head = fh.read(4096)
    hint = ""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head:
        hint = "it looks like UTF-16 text: save it as UTF-8; "
    elif head.startswith(b"PAR1") or path.suffix.lower() in (".parquet", ".pq"):
        hint = "it is a Parquet file; "
    elif path.suffix.lower() in (".csv", ".tsv") or _looks_like_csv(head):
        hint = "it looks like CSV; "
    line_no, reason = first_bad
    return (
        f"{path}: no valid {what} in {lines} lines (line {line_no + 1}: {reason}): {hint}"
        f"replay needs JSON Lines, {doc} (docs/inputs.md)"
    )


def _looks_like_csv(head: bytes) -> bool:
    """A first line that is not JSON and holds a comma, tab or semicolon (base64 holds none).

    >>> _looks_like_csv(b"age,amount\\n1,2\\n"), _looks_like_csv(b'{"features": {"a": 1}}'), _looks_like_csv(b"gqZm")
    (True, False, False)
    """
    first = head.removeprefix(codecs.BOM_UTF8).split(b"\n", 1)[0]
    return not first.lstrip().startswith(b"{") and any(sep in first for sep in (b",", b"\t", b";"))
