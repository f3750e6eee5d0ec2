"""Hostile input against the real sidecar and a real broker (issue 6, part 5).

1. More than 100,000 malformed messages of many kinds, mixed with valid events, from a
   seeded generator: every malformed one lands in the DLQ with its reason (counted per
   reason), every valid one is processed, the process never dies, its RSS stays bounded.
   What is "malformed" is decided by the contract (``schemas.events.decode_event``): some
   odd-looking kinds are valid events -- duplicate keys (the last wins), the string
   ``"NaN"`` as a feature value (categorical), the ``NaN`` literal (missing), null keys.
   The generator checks each kind against ``decode_event`` before sending, so the
   expectations below are the contract's, not a guess.
2. Feature-name explosion: events each with 50 never-seen feature names, capped by
   ``detectors.max_features``; the cap shows in ``driftsentinel_features_dropped_total``.
3. Numbers that ``decode_event`` lets through but that are not float64 (``10**400``)
   and lone-surrogate escapes: the sidecar must survive them too.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer

from driftsentinel.schemas.events import FeatureEvent, InvalidEvent, decode_event
from tests.integration.sidecar_helpers import SidecarProcess, headers_of, read_all, sample

pytestmark = pytest.mark.integration

BIG = 10 * 1024 * 1024  # the "10 MB" values
MAX_BYTES = 16 * 1024 * 1024  # topic max.message.bytes / producer message.max.bytes
RSS_LIMIT_KIB = 1024 * 1024  # 1 GiB
MODEL = "hostile"
H_REASON = "driftsentinel.reason"
H_OFFSET = "driftsentinel.source.offset"


# ---------------------------------------------------------------------------
# The seeded mix


def _valid_doc(rng: random.Random, i: int) -> dict:
    return {
        "model": MODEL,
        "ts": 1_700_000_000.0 + i,
        "id": f"r{i}",
        "features": {f"f{j}": rng.gauss(0.0, 1.0) for j in range(5)},
    }


def _valid(rng: random.Random, i: int) -> bytes:
    return json.dumps(_valid_doc(rng, i), separators=(",", ":")).encode()


def _bad_utf8(rng: random.Random, i: int) -> bytes:
    raw = bytearray(_valid(rng, i))
    at = rng.randrange(len(raw))
    raw[at:at] = rng.choice([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\x80\x80"])
    return bytes(raw)


def _random_bytes(rng: random.Random, i: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))


def _truncated(rng: random.Random, i: int) -> bytes:
    raw = _valid(rng, i)
    return raw[: rng.randrange(1, len(raw) - 1)]


def _deep_array(rng: random.Random, i: int) -> bytes:
    depth = rng.randint(1_100, 2_500)
    return b"[" * depth + b"]" * depth


def _deep_in_features(rng: random.Random, i: int) -> bytes:
    depth = rng.randint(1_100, 2_500)
    return b'{"model":"hostile","features":{"x":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}}"


def _deep_100k(rng: random.Random, i: int) -> bytes:
    return b"[" * 100_000  # and unterminated


def _nested_parseable(rng: random.Random, i: int) -> bytes:
    depth = rng.randint(2, 200)
    return b'{"model":"hostile","features":{"x":' + b"[" * depth + b"]" * depth + b"}}"


def _inf_feature(rng: random.Random, i: int) -> bytes:
    doc = _valid_doc(rng, i)
    doc["features"]["f1"] = "__INF__"
    return json.dumps(doc).encode().replace(b'"__INF__"', rng.choice([b"1e400", b"-1e400", b"Infinity"]))


def _nan_string(rng: random.Random, i: int) -> bytes:
    doc = _valid_doc(rng, i)
    doc["features"]["f2"] = rng.choice(["NaN", "nan", "Infinity", "-inf", "1e400"])  # strings: categorical
    return json.dumps(doc).encode()


def _nan_literal(rng: random.Random, i: int) -> bytes:
    doc = _valid_doc(rng, i)
    doc["features"]["f3"] = float("nan")  # json.dumps writes the NaN literal: missing
    return json.dumps(doc).encode()


def _dup_keys_valid(rng: random.Random, i: int) -> bytes:
    good = json.dumps(_valid_doc(rng, i)["features"]).encode()
    return b'{"model":"hostile","features":"not an object","features":' + good + b',"ts":"x","ts":5}'


def _dup_keys_invalid(rng: random.Random, i: int) -> bytes:
    good = json.dumps(_valid_doc(rng, i)["features"]).encode()
    return b'{"model":"hostile","features":' + good + b',"features":[1,2]}'


def _wrong_type(rng: random.Random, i: int) -> bytes:
    doc = _valid_doc(rng, i)
    where = rng.randrange(5)
    if where == 0:
        doc["features"] = rng.choice([[1, 2], "x", 3, True])
    elif where == 1:
        doc["features"]["f0"] = rng.choice([[1], {"a": 1}])
    elif where == 2:
        doc["model"] = rng.choice([7, ["m"], {"m": 1}, True])
    elif where == 3:
        doc["ts"] = rng.choice([True, "yesterday", [1], {"t": 1}])
    else:
        doc["prediction"] = rng.choice([[0.5], {"p": 1}])
    return json.dumps(doc).encode()


def _not_object(rng: random.Random, i: int) -> bytes:
    return rng.choice([b"[1,2,3]", b'"features"', b"42", b"null", b"true", b"[]", b"1e400"])


def _missing_features(rng: random.Random, i: int) -> bytes:
    doc = _valid_doc(rng, i)
    doc["Features"] = doc.pop("features")
    return json.dumps(doc).encode()


def _empty(rng: random.Random, i: int) -> bytes | None:
    return rng.choice([b"", None])


def _big(rng: random.Random, i: int) -> bytes:
    # A 10 MB value that is otherwise a valid event: only its size is wrong.
    pad = "x" * BIG
    return json.dumps({"model": MODEL, "features": {"f0": 1.0}, "id": pad}).encode()


def _over_1mb(rng: random.Random, i: int) -> bytes:
    return b"\xff" * rng.randint(1_000_001, 1_100_000)


@dataclass(frozen=True)
class Kind:
    name: str
    make: Callable[[random.Random, int], bytes | None]
    weight: float  # share of the malformed/odd messages
    expect: frozenset[str]  # decode_event's possible reasons; empty = a valid event
    null_key: float = 0.02


KINDS = [
    Kind("bad_utf8", _bad_utf8, 12, frozenset({"not_utf8"})),
    Kind("random_bytes", _random_bytes, 8, frozenset({"not_utf8", "not_json", "not_object", "empty"})),
    Kind("truncated", _truncated, 15, frozenset({"not_json"})),
    Kind("deep_array", _deep_array, 3, frozenset({"not_json"})),
    Kind("deep_in_features", _deep_in_features, 3, frozenset({"not_json"})),
    Kind("nested_parseable", _nested_parseable, 3, frozenset({"wrong_type"})),
    Kind("inf_feature", _inf_feature, 8, frozenset({"non_finite_value"})),
    Kind("wrong_type", _wrong_type, 12, frozenset({"wrong_type"})),
    Kind("dup_keys_invalid", _dup_keys_invalid, 5, frozenset({"wrong_type"})),
    Kind("not_object", _not_object, 6, frozenset({"not_object", "not_json"})),
    Kind("missing_features", _missing_features, 6, frozenset({"missing_features"})),
    Kind("empty", _empty, 6, frozenset({"empty"}), null_key=0.5),
    Kind("over_1mb", _over_1mb, 0.02, frozenset({"too_large"})),
    # Odd but valid by the contract:
    Kind("nan_string", _nan_string, 4, frozenset()),
    Kind("nan_literal", _nan_literal, 4, frozenset()),
    Kind("dup_keys_valid", _dup_keys_valid, 4, frozenset()),
]
RARE = [  # fixed counts, independent of the mix size
    (Kind("deep_100k", _deep_100k, 0, frozenset({"not_json"})), 20),
    (Kind("big_10mb", _big, 0, frozenset({"too_large"})), 3),
]


@dataclass
class Mix:
    values: list[bytes | None] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)  # offset -> expected DLQ reason
    by_kind: Counter = field(default_factory=Counter)
    n_valid: int = 0


def build_mix(n_bad: int, n_valid: int, seed: int) -> Mix:
    """``n_bad`` odd messages (most malformed) and ``n_valid`` plain events, shuffled, seeded."""
    rng = random.Random(seed)
    plan: list[Kind] = rng.choices(KINDS, weights=[k.weight for k in KINDS], k=n_bad)
    for kind, count in RARE:
        plan += [kind] * count
    plan += [Kind("valid", _valid, 0, frozenset())] * n_valid
    rng.shuffle(plan)
    mix = Mix()
    for offset, kind in enumerate(plan):
        value = kind.make(rng, offset)
        key = None if rng.random() < kind.null_key else MODEL.encode()
        # The oracle: decode_event itself, held to what the kind is documented to be.
        try:
            ev = decode_event(value)
            reason = None
        except InvalidEvent as exc:
            reason = exc.reason
        if kind.expect:
            assert reason in kind.expect, (kind.name, reason, value[:200] if value else value)
            mix.reasons[offset] = reason
        else:
            assert reason is None and isinstance(ev, FeatureEvent) and ev.model == MODEL, (kind.name, reason)
            mix.n_valid += 1
        mix.values.append(value)
        mix.keys.append(key)
        mix.by_kind[kind.name] += 1
    return mix


def test_mix_is_reproducible_and_diverse() -> None:
    a, b = build_mix(2000, 500, seed=1), build_mix(2000, 500, seed=1)
    assert a.values == b.values and a.keys == b.keys and a.reasons == b.reasons
    assert len(set(a.reasons.values())) >= 8
    assert a.n_valid > 500  # plus the odd-but-valid kinds
    assert None in a.keys


# ---------------------------------------------------------------------------
# Running it


class RssWatch:
    """Samples a process's VmRSS from /proc every ``every`` seconds; ``peak_kib`` is the maximum seen."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid, self.every, self.peak_kib, self.samples = pid, every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                        self.samples += 1
            except (FileNotFoundError, ProcessLookupError):
                return
            self._stop.wait(self.every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak_kib


def _produce(bootstrap: str, topic: str, mix: Mix) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 50,
            "message.max.bytes": MAX_BYTES,
            "compression.type": "lz4",
        }
    )
    failures: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(str(err))

    for key, value in zip(mix.keys, mix.values, strict=True):
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0
    assert not failures, failures[:3]


def _invalid_counts(snap: dict) -> dict[str, float]:
    return {
        dict(labels)["reason"]: v for (name, labels), v in snap.items() if name == "driftsentinel_invalid_events_total"
    }


def test_100k_malformed_messages_go_to_the_dlq_and_the_loop_goes_on(
    kafka_bootstrap: str, new_topic, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    mix = build_mix(n_bad=118_000, n_valid=20_000, seed=20260601)
    n_bad = len(mix.reasons)
    assert n_bad >= 100_000, n_bad
    topic = new_topic(partitions=1, prefix="hostile", config={"max.message.bytes": str(MAX_BYTES)})
    dlq = new_topic(partitions=1, prefix="hostile-dlq", config={"max.message.bytes": str(MAX_BYTES)})
    _produce(kafka_bootstrap, topic, mix)
    produced_at = time.monotonic()

    config = {"kafka": {"producer": {"message.max.bytes": MAX_BYTES}}}
    sidecar = SidecarProcess(
        kafka_bootstrap, topic, "--dlq-topic", dlq, "--idle-exit", "8", tmp=tmp_path, config=config
    )
    rss = RssWatch(sidecar.proc.pid)
    try:
        snap = sidecar.wait_until(
            lambda s: (
                sample(s, "driftsentinel_events_total", model=MODEL) == mix.n_valid
                and sum(_invalid_counts(s).values()) == n_bad
            ),
            timeout=150,
        )
        assert sidecar.proc.poll() is None, "the sidecar died"
        assert sidecar.wait(60) == 0, sidecar.log()[-3000:]
    finally:
        peak = rss.stop()
        sidecar.kill()
    processed_at = time.monotonic()

    expected = Counter(mix.reasons.values())
    assert _invalid_counts(snap) == {r: float(c) for r, c in expected.items()}
    assert rss.samples > 10 and peak < RSS_LIMIT_KIB, f"peak RSS {peak / 1024:.0f} MiB"

    records = read_all(kafka_bootstrap, dlq, expect=n_bad, timeout=90)
    assert len(records) == n_bad
    got: dict[int, str] = {}
    for m in records:
        headers = headers_of(m)
        offset = int(headers[H_OFFSET])
        got[offset] = headers[H_REASON].decode()
        assert (m.value() or b"") == (mix.values[offset] or b""), offset  # original bytes, unchanged
        assert m.key() == mix.keys[offset], offset
    assert got == mix.reasons
    print(  # noqa: T201 - durations for the report (pytest -s)
        f"hostile: {len(mix.values)} messages ({n_bad} bad), produce {produced_at - t0:.1f}s, "
        f"sidecar {processed_at - produced_at:.1f}s, peak RSS {peak / 1024:.0f} MiB, kinds {dict(mix.by_kind)}"
    )


def test_feature_name_explosion_is_capped_and_counted(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    n_events, per_event, cap = 20_000, 50, 1_000
    rng = random.Random(77)
    values: list[bytes | None] = []
    for i in range(n_events):
        feats = {f"f{j}": rng.gauss(0, 1) for j in range(3)}  # the real ones
        feats.update({f"junk-{i}-{j}-{rng.getrandbits(32):08x}": rng.random() for j in range(per_event)})
        values.append(json.dumps({"model": MODEL, "ts": 1.0 + i, "features": feats}).encode())
    topic = new_topic(partitions=1, prefix="explode")
    _produce(kafka_bootstrap, topic, Mix(values=values, keys=[MODEL.encode()] * n_events))

    config = {"detectors": {"max_features": cap}, "batch_size": 2000}
    sidecar = SidecarProcess(kafka_bootstrap, topic, "--idle-exit", "8", tmp=tmp_path, config=config)
    rss = RssWatch(sidecar.proc.pid)
    try:
        snap = sidecar.wait_until(
            lambda s: sample(s, "driftsentinel_events_total", model=MODEL) == n_events, timeout=150
        )
        assert sidecar.proc.poll() is None
        assert sidecar.wait(60) == 0, sidecar.log()[-3000:]
    finally:
        peak = rss.stop()
        sidecar.kill()
    dropped = sample(snap, "driftsentinel_features_dropped_total", model=MODEL)
    assert dropped is not None, "no driftsentinel_features_dropped_total{model} metric"
    # At most `cap` names are monitored: every value of the other names is counted.
    assert dropped >= n_events * per_event + 3 * n_events - cap * n_events, dropped
    assert dropped > 0.9 * n_events * per_event
    monitored = {
        dict(labels).get("feature")
        for (name, labels), _ in snap.items()
        if name == "driftsentinel_feature_mean" and dict(labels).get("model") == MODEL
    }
    assert len(monitored) <= cap
    assert {"f0", "f1", "f2"} <= monitored  # the first-seen names keep their detectors
    assert peak < RSS_LIMIT_KIB, f"peak RSS {peak / 1024:.0f} MiB"


@pytest.mark.parametrize(
    "poison",
    [
        pytest.param(b'{"model":"hostile","features":{"f0":1' + b"0" * 400 + b"}}", id="feature-10**400"),
        pytest.param(b'{"model":"hostile","features":{"f0":' + b"9" * 5000 + b"}}", id="feature-5000-digits"),
        pytest.param(b'{"model":"hostile","ts":1' + b"0" * 400 + b',"features":{"f0":1}}', id="ts-10**400"),
        pytest.param(b'{"model":"hostile","features":{"\\ud800":1.0}}', id="surrogate-feature-name"),
        pytest.param(b'{"model":"\\udfff","features":{"f0":1.0}}', id="surrogate-model"),
    ],
)
def test_numbers_and_escapes_beyond_float64_and_utf8_do_not_kill_the_sidecar(
    kafka_bootstrap: str, new_topic, tmp_path: Path, poison: bytes
) -> None:
    """Accepted or dead-lettered, either is fine; dying or a broken /metrics is not."""
    rng = random.Random(5)
    values: list[bytes | None] = [_valid(rng, i) for i in range(1500)]
    values[700] = poison
    topic = new_topic(partitions=1, prefix="poison")
    _produce(kafka_bootstrap, topic, Mix(values=values, keys=[MODEL.encode()] * len(values)))
    sidecar = SidecarProcess(kafka_bootstrap, topic, "--idle-exit", "5", tmp=tmp_path)
    try:
        snap = sidecar.wait_until(
            lambda s: (
                (sample(s, "driftsentinel_events_total", model=MODEL) or 0) + sum(_invalid_counts(s).values())
                >= len(values) - 1
            ),
            timeout=90,
        )
        assert sidecar.proc.poll() is None
        assert sidecar.wait(60) == 0, sidecar.log()[-3000:]
    finally:
        sidecar.kill()
    assert sample(snap, "driftsentinel_events_total", model=MODEL) in (len(values) - 1, len(values))
    assert "Traceback" not in sidecar.log(), sidecar.log()[-3000:]


def test_an_oversize_message_is_dead_lettered_cut_and_the_partition_moves_on(
    kafka_bootstrap: str, new_topic, tmp_path: Path
) -> None:
    """Issue 24 item 1: one 5 MB incompressible value on an input topic that allows 10 MB, the DLQ
    topic at the broker's default 1 MB: the DLQ record is cut (size and sha256 in its headers), the
    transaction commits, alerts become readable, the offset moves past it, nothing is counted twice."""
    import hashlib
    import os

    from tests.integration.sidecar_helpers import committed_offset

    rng = random.Random(24)
    n, at = 5_000, 2_500
    docs = [_valid_doc(rng, i) for i in range(n)]
    for doc in docs[3_000:]:  # a shift the default detectors catch
        doc["features"] = {k: v + 8.0 for k, v in doc["features"].items()}
    values: list[bytes | None] = [json.dumps(d, separators=(",", ":")).encode() for d in docs]
    huge = os.urandom(5 * 1024 * 1024)
    values[at] = huge
    topic = new_topic(partitions=1, prefix="oversize", config={"max.message.bytes": str(10 * 1024 * 1024)})
    _produce(kafka_bootstrap, topic, Mix(values=values, keys=[MODEL.encode()] * n))
    sidecar = SidecarProcess(kafka_bootstrap, topic, "--idle-exit", "6", tmp=tmp_path)
    try:
        snap = sidecar.wait_until(
            lambda s: (
                sample(s, "driftsentinel_events_total", model=MODEL) == n - 1 and sum(_invalid_counts(s).values()) == 1
            ),
            timeout=90,
        )
        assert sidecar.wait(60) == 0, sidecar.log()[-3000:]
    finally:
        sidecar.kill()
    assert sample(snap, "driftsentinel_dlq_truncated_total") == 1
    assert (sample(snap, "driftsentinel_transaction_aborts_total") or 0) == 0, sidecar.log()[-3000:]
    [dead] = read_all(kafka_bootstrap, sidecar.dlq_topic, timeout=30)
    headers = headers_of(dead)
    assert int(headers[H_OFFSET]) == at
    assert headers["driftsentinel.truncated"] == b"value"
    assert int(headers["driftsentinel.original.size"]) == len(huge)
    assert headers["driftsentinel.original.sha256"].decode() == hashlib.sha256(huge).hexdigest()
    assert (dead.value() or b"") == huge[: len(dead.value() or b"")] and len(dead.value() or b"") < 1_000_000
    alerts = read_all(kafka_bootstrap, sidecar.alerts_topic, timeout=30)
    assert alerts, "no alert readable after the oversize message"
    assert committed_offset(kafka_bootstrap, sidecar.group, topic) == n
    print(f"oversize: {len(alerts)} alerts, DLQ value {len(dead.value() or b'')} bytes")  # noqa: T201
