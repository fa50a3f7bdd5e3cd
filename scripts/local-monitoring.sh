#!/usr/bin/env bash
# `make local-monitoring`: a real Prometheus and Alertmanager on loopback, with the shipped rules,
# scraping the agent that `make run` started (127.0.0.1:9787). Ctrl-C stops both.
#
#   PROM_PORT (9090), AM_PORT (9093): where they listen;  AGENT (127.0.0.1:9787): what is scraped.
# State and the generated configs live in var/local-monitoring/ (never /etc).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROM_PORT="${PROM_PORT:-9090}"
AM_PORT="${AM_PORT:-9093}"
AGENT="${AGENT:-127.0.0.1:9787}"
DIR="${LOCAL_MONITORING_DIR:-$ROOT/var/local-monitoring}"
PROMETHEUS=$(command -v prometheus || true)
ALERTMANAGER=$(command -v prometheus-alertmanager || command -v alertmanager || true)
if [[ -z "$PROMETHEUS" || -z "$ALERTMANAGER" ]]; then
  echo "local-monitoring: needs prometheus and prometheus-alertmanager (apt-get install prometheus prometheus-alertmanager, or make system-deps as root)" >&2
  exit 2
fi
mkdir -p "$DIR/prometheus" "$DIR/alertmanager"

# the shipped local config, pointed at this checkout's rules and the chosen addresses
sed -e "s|^  - rules/|  - $ROOT/deploy/prometheus/rules/|" \
    -e "s|127.0.0.1:9787|$AGENT|" \
    -e "s|127.0.0.1:9093|127.0.0.1:$AM_PORT|" \
    "$ROOT/deploy/prometheus/prometheus-local.yml" > "$DIR/prometheus.yml"

pids=()
stop() {
  trap '' INT TERM  # a second Ctrl-C must not cut the clean-up short
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT
trap 'exit 130' INT TERM

"$ALERTMANAGER" --config.file="$ROOT/deploy/alertmanager/alertmanager-local.yml" \
  --storage.path="$DIR/alertmanager" --web.listen-address="127.0.0.1:$AM_PORT" \
  --cluster.listen-address= >> "$DIR/alertmanager.log" 2>&1 &
pids+=($!)
"$PROMETHEUS" --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/prometheus" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >> "$DIR/prometheus.log" 2>&1 &
pids+=($!)

ready() { "${PYTHON:-python3}" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; }
for _ in $(seq 1 150); do
  if ready "http://127.0.0.1:$PROM_PORT/-/ready" && ready "http://127.0.0.1:$AM_PORT/-/ready"; then
    echo "Prometheus:    http://127.0.0.1:$PROM_PORT/   (scraping $AGENT; rules: deploy/prometheus/rules; log: $DIR/prometheus.log)"
    echo "Alertmanager:  http://127.0.0.1:$AM_PORT/   (log: $DIR/alertmanager.log)"
    echo "Grafana:       provision deploy/grafana (docs/dashboards.md) with a Prometheus data source at http://127.0.0.1:$PROM_PORT"
    echo "READY; Ctrl-C stops both."
    wait -n "${pids[@]}" || true
    echo "local-monitoring: a process exited; see $DIR/*.log" >&2
    exit 1
  fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "local-monitoring: did not start; see $DIR/*.log" >&2; exit 1; }
  done
  sleep 0.2
done
echo "local-monitoring: not ready after 30 s; see $DIR/*.log" >&2
exit 1
