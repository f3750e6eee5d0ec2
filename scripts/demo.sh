#!/usr/bin/env bash
# Set up and run the demo on a fresh machine (Python 3.11, Java 17, Maven):
# venv + packages, a local Apache Kafka broker, a drifting synthetic stream, the sidecar.
# Alerts are printed as they arrive; metrics are at http://127.0.0.1:${METRICS_PORT}/metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${KAFKA_PORT:-9092}"
METRICS_PORT="${METRICS_PORT:-8000}"
EVENTS="${EVENTS:-100000}"
TOPIC="demo-features-$(date +%s)"

if [ ! -x .venv/bin/python ]; then python3.11 -m venv .venv; fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e .

if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  BOOTSTRAP="$KAFKA_BOOTSTRAP_SERVERS"
else
  BOOTSTRAP="$(driftsentinel local-kafka start --port "$PORT")"
fi
echo "Kafka at $BOOTSTRAP; topic $TOPIC"
echo "Metrics: http://127.0.0.1:${METRICS_PORT}/metrics  (also /healthz, /readyz)"

# The stream: 20 features, f0..f2 shift by +1 sigma half way, 5,000 events/s.
driftsentinel demo --bootstrap-servers "$BOOTSTRAP" --topic "$TOPIC" --events "$EVENTS" \
  --features 20 --drift-at $((EVENTS / 2)) --drift-features f0,f1,f2 --shift 1.0 --rate 5000 &
PRODUCER=$!
trap 'kill $PRODUCER 2>/dev/null || true' EXIT

# The sidecar; each alert is logged once as "alert {json}". Stops 10 s after the stream ends.
driftsentinel run --bootstrap-servers "$BOOTSTRAP" --input-topic "$TOPIC" \
  --alerts-topic "$TOPIC-alerts" --dlq-topic "$TOPIC-dlq" --group-id demo \
  --metrics-port "$METRICS_PORT" --idle-exit 10 2>&1 | grep --line-buffered -E "alert |metrics on|stopped"
wait $PRODUCER
echo "Done. Read the alerts again with: kcat -C -b $BOOTSTRAP -t $TOPIC-alerts -e"
echo "Stop the broker with: driftsentinel local-kafka stop"
