#!/usr/bin/env bash
# The demo on a fresh machine (Python >= 3.11, Java 17+, and Maven the first time the broker's
# jars are downloaded): a venv with driftsentinel, a local Apache Kafka broker, a synthetic
# stream in which 3 of 20 features drift half way, and the sidecar watching it; then a summary
# of what drifted, at which event, by which detector.
#
#   bash scripts/demo.sh                 run it
#   bash scripts/demo.sh alerts [TOPIC]  print the alerts of the last demo (or of TOPIC) from Kafka
#   bash scripts/demo.sh stop            stop the local broker
#
# How long (measured on a busy 2-core machine, a fresh clone, the broker's jars already in
# ~/.cache/driftsentinel): the first run 2 min 13 s (the venv 12 s, downloading and installing
# the packages 50 s, compiling the detectors 48 s while the broker starts in 7 s, the sidecar
# and the 20 s stream 23 s); later runs 30 s. Not included: Maven's download of the broker's
# jars, once per machine. The broker keeps running afterwards, so later runs skip its start.
#
# Environment: KAFKA_BOOTSTRAP_SERVERS (use that broker, start none), KAFKA_PORT (9092),
# METRICS_PORT (8000, or a free one when 8000 is taken), EVENTS (100000).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
DS="$VENV/bin/driftsentinel"
CACHE="${DRIFTSENTINEL_CACHE_DIR:-$HOME/.cache/driftsentinel}"
LAST="$CACHE/demo/last"   # bootstrap and topic of the last demo (for "alerts")
PORT="${KAFKA_PORT:-9092}"
EVENTS="${EVENTS:-100000}"
FEATURES=20
DRIFT_FEATURES=f0,f1,f2
SHIFT=1.0
RATE=5000

say() { printf '%s\n' "$*"; }
# fail MESSAGE [LOG]: one line saying what failed, the log's last lines, exit 1
fail() {
  say "demo: $1" >&2
  if [ -n "${2:-}" ] && [ -s "$2" ]; then
    say "--- last lines of $2:" >&2
    tail -n 15 "$2" >&2
  fi
  exit 1
}
elapsed() { printf '%d min %02d s' $((SECONDS / 60)) $((SECONDS % 60)); }

# ------------------------------------------------------------------ a Kafka reader (no kcat needed)
read_alerts() {
  local bootstrap="127.0.0.1:$PORT" topic="${1:-}" last_bootstrap="" last_topic=""
  if [ -s "$LAST" ]; then read -r last_bootstrap last_topic < "$LAST"; fi
  [ -n "$topic" ] || [ -n "$last_topic" ] || fail "no demo has run yet: run bash scripts/demo.sh first"
  [ -x "$PY" ] || fail "no $VENV yet: run bash scripts/demo.sh first"
  if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
    bootstrap="$KAFKA_BOOTSTRAP_SERVERS"
  elif [ -z "${KAFKA_PORT:-}" ] && [ -n "$last_bootstrap" ]; then
    bootstrap="$last_bootstrap"
  fi
  [ -n "$topic" ] || topic="$last_topic-alerts"
  "$PY" - "$bootstrap" "$topic" <<'PY'
import sys
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from driftsentinel.stream.topic_reader import quiet, read_to_end

bootstrap, topic = sys.argv[1:3]
c = Consumer(quiet({"bootstrap.servers": bootstrap, "group.id": "driftsentinel-demo-reader", "enable.auto.commit": False,
                    "enable.partition.eof": True, "isolation.level": "read_committed"}))
try:
    meta = c.list_topics(topic, timeout=10).topics.get(topic)
except KafkaException:
    sys.exit(f"demo: broker {bootstrap} does not answer (is it running? bash scripts/demo.sh starts it)")
if meta is None or meta.error is not None:
    sys.exit(f"demo: no topic {topic} at {bootstrap}")
start = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
for m in read_to_end(c, start, timeout_s=30, strict=False):
    print(m.value().decode())
c.close()
PY
}

case "${1:-}" in
  alerts) read_alerts "${2:-}"; exit 0 ;;
  stop)
    [ -x "$DS" ] || fail "no $VENV: nothing was started"
    exec "$DS" local-kafka stop ;;
  "") ;;
  *) fail "unknown command '$1' (commands: none, alerts [TOPIC], stop)" ;;
esac

TOPIC="demo-features-$(date +%s)"
LOGS="$CACHE/demo/$TOPIC"
mkdir -p "$LOGS"
say "driftsentinel demo: the first run takes 2-3 min (installing, compiling), later runs about 30 s."
say "A local Kafka broker is started and keeps running afterwards (bash scripts/demo.sh stop stops it)."
say "Logs: $LOGS"

# ------------------------------------------------------------------ 1. the venv (installed once per pyproject.toml)
if [ ! -x "$PY" ]; then
  PYTHON=""
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" > /dev/null &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2> /dev/null; then
      PYTHON="$candidate"
      break
    fi
  done
  [ -n "$PYTHON" ] || fail "Python 3.11 or newer is needed (none found on PATH)"
  "$PYTHON" -m venv "$VENV" > "$LOGS/install.log" 2>&1 || fail "could not create $VENV" "$LOGS/install.log"
fi
STAMP="$VENV/.driftsentinel-pyproject.sha256"
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x "$DS" ] || [ "$(cat "$STAMP" 2> /dev/null)" != "$WANT" ]; then
  say "[$(elapsed)] installing driftsentinel into $VENV (once; about a minute)"
  "$PY" -m pip install --disable-pip-version-check -e . >> "$LOGS/install.log" 2>&1 ||
    fail "pip install failed" "$LOGS/install.log"
  say "$WANT" > "$STAMP"
fi

# ------------------------------------------------------------------ 2. Kafka, while the detectors compile
# numba compiles the detectors once (cached next to the code): a replay of a small stream shaped
# like the demo's goes through every kernel the sidecar will call. Meanwhile the broker starts.
"$PY" - "$LOGS/warm.jsonl" "$FEATURES" > "$LOGS/compile.log" 2>&1 << 'PY' &
import json, os, sys
from driftsentinel.stream.cli import main
from driftsentinel.stream.demo import demo_values

path, features = sys.argv[1], int(sys.argv[2])
values = demo_values(6000, features, 3000, [0, 1, 2], 1.0, seed=1)
try:
    with open(path, "w") as out:
        for i, row in enumerate(values):
            doc = {"model": "demo", "ts": 1.7e9 + i / 1000, "id": f"w{i}", "features": {f"f{j}": v for j, v in enumerate(row.tolist())}}
            out.write(json.dumps(doc) + "\n")
    code = main(["replay", "--input", path, "--output", os.devnull])
finally:
    os.remove(path)
sys.exit(code)
PY
KERNELS=$!
trap 'kill $KERNELS 2> /dev/null || true' EXIT
if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  BOOTSTRAP="$KAFKA_BOOTSTRAP_SERVERS"
  OWN_BROKER=""
  say "[$(elapsed)] Kafka at $BOOTSTRAP (KAFKA_BOOTSTRAP_SERVERS)"
else
  if "$DS" local-kafka status 2> /dev/null | grep -q '"running": true'; then
    WAS="already running"
  else
    WAS="started"
    say "[$(elapsed)] starting a local Kafka broker on 127.0.0.1:$PORT (about 15 s)"
  fi
  BOOTSTRAP="$("$DS" local-kafka start --port "$PORT" 2> "$LOGS/broker.log")" ||
    fail "the local Kafka broker did not start (a broker of yours already on $PORT? use it with KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$PORT, or pick another port with KAFKA_PORT)" "$LOGS/broker.log"
  OWN_BROKER=1
  say "[$(elapsed)] Kafka at $BOOTSTRAP ($WAS; it keeps running after the demo)"
fi
if ! wait "$KERNELS"; then fail "compiling the detectors failed" "$LOGS/compile.log"; fi
say "$BOOTSTRAP $TOPIC" > "$LAST"

METRICS_PORT_SET="${METRICS_PORT:-}"
METRICS_PORT="${METRICS_PORT:-8000}"
if [ -z "$METRICS_PORT_SET" ] && ! "$PY" -c 'import socket, sys; socket.create_server(("", int(sys.argv[1])))' \
  "$METRICS_PORT" 2> /dev/null; then
  METRICS_PORT=0  # 8000 is taken: any free port (the sidecar's "metrics on" line names it)
fi

# ------------------------------------------------------------------ 3. the stream and the sidecar
# The stream: f0..f2 shift by +1 sd at the half-way event, 5,000 events/s.
"$DS" demo --bootstrap-servers "$BOOTSTRAP" --topic "$TOPIC" --events "$EVENTS" --features "$FEATURES" \
  --drift-at $((EVENTS / 2)) --drift-features "$DRIFT_FEATURES" --shift "$SHIFT" --rate "$RATE" \
  > "$LOGS/producer.log" 2>&1 &
PRODUCER=$!
trap 'kill $PRODUCER 2> /dev/null || true' EXIT
say "[$(elapsed)] producing $EVENTS events ($RATE a second) to $TOPIC: $DRIFT_FEATURES shift by +$SHIFT sd at event $((EVENTS / 2))"
say "[$(elapsed)] the sidecar (it stops at the stream's last event, or after 10 s without one); each alert is one line:"

# The sidecar's log (JSON lines) goes to a file; the terminal gets it as text, alerts in one short line.
read -r -d '' VIEW << 'PY' || true
import json, sys, time

def text(line):
    try:
        rec = json.loads(line)
    except ValueError:
        return line.rstrip("\n")  # not a log record (a traceback, librdkafka's own stderr): as it is
    msg, level = rec.get("msg", ""), rec.get("level", "INFO")
    at = time.strftime("%H:%M:%S", time.localtime(rec.get("ts", time.time())))
    if msg.startswith("alert "):
        a = json.loads(msg[6:])
        return (f"  {at} ALERT {a['feature']:>4} {a['status']} by {a['detector']} ({a['severity']}), "
                f"{a['statistic_name']}={a['statistic']:.2f}, at event {a['source']['offset']:,}")
    return f"  {at} {'' if level == 'INFO' else level + ' '}{msg}"

with open(sys.argv[1], "w") as log:
    for line in sys.stdin:
        log.write(line)
        log.flush()
        print(text(line), flush=True)
PY
set +e
"$DS" run --bootstrap-servers "$BOOTSTRAP" --input-topic "$TOPIC" --alerts-topic "$TOPIC-alerts" \
  --dlq-topic "$TOPIC-dlq" --group-id demo --metrics-port "$METRICS_PORT" --max-events "$EVENTS" --idle-exit 10 \
  --log-format json 2>&1 |
  "$PY" -u -c "$VIEW" "$LOGS/sidecar.log"
SIDECAR=${PIPESTATUS[0]}
set -e
if [ "$SIDECAR" -ne 0 ]; then
  fail "the sidecar exited with code $SIDECAR (its reason is above; whole log: $LOGS/sidecar.log)"
fi
wait "$PRODUCER" || fail "the demo stream's producer failed" "$LOGS/producer.log"
trap - EXIT

# ------------------------------------------------------------------ 4. what drifted
read -r -d '' SUMMARY << 'PY' || true
import json, sys

log_path, events, drift_at, drifted, features, shift = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(","), int(sys.argv[5]), sys.argv[6]
first = {}  # feature -> {detector: first offset}
count = 0
for line in open(log_path):
    try:
        msg = json.loads(line).get("msg", "")
    except ValueError:
        continue
    if msg.startswith("alert "):
        a = json.loads(msg[6:])
        count += 1
        if a["status"] == "drift":
            first.setdefault(a["feature"], {}).setdefault(a["detector"], a["source"]["offset"])
print(f"The stream: {events:,} events, {features} features; {', '.join(drifted)} shift by +{shift} sd at event {drift_at:,}.")
def said(f):
    return ", ".join(f"{d} at event {o:,} (+{o - drift_at:,})" if f in drifted and o >= drift_at else f"{d} at event {o:,}"
                     for d, o in sorted(first[f].items(), key=lambda x: x[1]))
hits = [f for f in drifted if f in first]
print(f"Detected {len(hits)} of {len(drifted)} drifting features:")
for f in hits:
    print(f"  {f}: {said(f)}")
missed = [f for f in drifted if f not in first]
if missed:
    print(f"  missed: {', '.join(missed)}")
false = sorted(f for f in first if f not in drifted)
print("False alarms (features that did not drift): " + ("none" if not false else "; ".join(f"{f}: {said(f)}" for f in false)))
print(f"{count} alerts in all.")
PY
say ""
say "Summary ($(elapsed) in all):"
"$PY" -c "$SUMMARY" "$LOGS/sidecar.log" "$EVENTS" $((EVENTS / 2)) "$DRIFT_FEATURES" "$FEATURES" "$SHIFT" | sed 's/^/  /'
say ""
say "Next:"
say "  the alerts again (JSON, from Kafka):  bash $ROOT/scripts/demo.sh alerts"
if command -v kcat > /dev/null; then
  say "                               or:  kcat -C -b $BOOTSTRAP -t $TOPIC-alerts -e"
fi
say "  the sidecar's whole log:             $LOGS/sidecar.log"
if [ -n "$OWN_BROKER" ]; then
  say "  the broker keeps running at $BOOTSTRAP; stop it with:"
  say "      $DS local-kafka stop      (or: bash $ROOT/scripts/demo.sh stop)"
fi
