#!/usr/bin/env bash
# The main job, end to end on one machine: install dependencies, build, start a local influxd (or
# use one already answering on 127.0.0.1:8086), start tumbled with config/tumbled.yaml, feed it
# integers over TCP for a few windows and show the window sums that landed in InfluxDB.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

deploy/install-deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DTUMBLED_BUILD_TESTS=OFF >/dev/null
cmake --build build-release --target tumbled -j"$(nproc)"

work=$(mktemp -d /tmp/tumbled-demo-XXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

influx=http://127.0.0.1:8086
if curl -fsS -o /dev/null "$influx/ping" 2>/dev/null; then
  echo "== using the InfluxDB already running at $influx"
else
  echo "== starting influxd on $influx (data in $work/influxdb)"
  influxd config 2>/dev/null | sed \
    -e "s|/var/lib/influxdb|$work/influxdb|g" \
    -e 's|^bind-address = .*|bind-address = "127.0.0.1:8088"|' \
    -e '/^\[http\]/,/^\[/ s|^  bind-address = .*|  bind-address = "127.0.0.1:8086"|' \
    -e 's|^  query-log-enabled = true|  query-log-enabled = false|' \
    -e '/^\[http\]/,/^\[/ s|^  log-enabled = true|  log-enabled = false|' >"$work/influxdb.conf"
  influxd -config "$work/influxdb.conf" >"$work/influxd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fsS -o /dev/null "$influx/ping" 2>/dev/null && break; sleep 0.2; done
  curl -fsS -o /dev/null "$influx/ping" || { cat "$work/influxd.log"; exit 1; }
fi
curl -fsS -XPOST "$influx/query" --data-urlencode "q=CREATE DATABASE telemetry" >/dev/null

echo "== starting tumbled with config/tumbled.yaml (state in $work/state)"
sed "s|dir: ./var/tumbled|dir: $work/state|" config/tumbled.yaml >"$work/tumbled.yaml"
INFLUX_PASSWORD="" build-release/tumbled --config "$work/tumbled.yaml" &
pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/9000) 2>/dev/null && break; sleep 0.1; done

echo "== feeding integers 1..1000 every second for 25 s (plus a few garbage lines that get rejected)"
start_ms=$(( $(date +%s%3N) / 10000 * 10000 ))
exec 3<>/dev/tcp/127.0.0.1/9000
for second in $(seq 25); do
  seq 1 1000 >&3
  [ "$second" = 5 ] && printf 'not-a-number\n1.5\n' >&3
  sleep 1
done
exec 3>&-

echo "== waiting for the last window to close and be written"
sleep 11
echo "== window sums in InfluxDB (a full 10 s window received about 10 x 500500 = 5005000):"
influx -host 127.0.0.1 -port 8086 -database telemetry -precision rfc3339 \
  -execute "SELECT sum FROM records WHERE time >= ${start_ms}ms"
echo "== total of those windows (sent: 25 x 500500 = $((25 * 500500))):"
influx -host 127.0.0.1 -port 8086 -database telemetry -precision rfc3339 \
  -execute "SELECT sum(sum) AS total FROM records WHERE time >= ${start_ms}ms"
