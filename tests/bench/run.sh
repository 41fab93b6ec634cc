#!/usr/bin/env bash
# Builds tumbled and its benchmarks in Release (build-bench/, or $TUMBLED_BENCH_BUILD_DIR) and runs
# them, printing the machine and a summary table at the end. Everything runs on 127.0.0.1 against
# private influxd/tumbled processes in temp dirs; about 10 minutes after the build.
#
#   tests/bench/run.sh                  # all: micro checkpoint ingest keyed http latency replay
#                                       #      footprint and profile (if perf is installed)
#   tests/bench/run.sh ingest replay    # only those sections
#   tests/bench/run.sh profile          # perf profile of tumbled during a 1-connection ingest
#   tests/bench/run.sh keyed            # line-protocol ingest with 1, 10 000 and 1 000 000 keys
#   tests/bench/run.sh http             # InfluxDB write API: tumbled's source.http vs influxd
#   tests/bench/run.sh kafka            # source.kafka: 1 and 2 instances in one group, beside
#                                       # the keyed TCP ingest of the same payload
#   tests/bench/run.sh profile-keyed    # perf profile of tumbled during the 1 000 000-key ingest
#
# ingest: `tumbled-bench ingest --payload all --runs 3` (about 3 minutes): one connection sending
# each integer payload (small: mostly 1-6 digits, today's default; uniform6: uniform in +-10^6;
# int64: mostly 19 digits; crlf: small with "\r\n" line ends), each run measuring the ceiling (a
# newline counter reading the same bytes) just before a fresh tumbled, so each payload's
# tumbled/ceiling comes from the same minutes; the sum in InfluxDB must equal the sum sent. Then
# 4 connections of the small, uniform6 and int64 payloads read by 1 and by 2 threads
# (source.tcp.threads; about 5 minutes): integers/s and tumbled's CPU-seconds per 10^9 integers.
#
# keyed: `tumbled-bench ingest --format line_protocol --keys K --runs 3` for K = 1, 10 000 and
# 1 000 000 (about 3 minutes): lines of `cdn,stream=s<k>,isp=i<k % 50> bytes=<n>i <ts>` into
# a pipeline with format line_protocol, precision s, 1h event-time windows, group_by [stream,
# isp], fields [bytes], aggregates [sum, count, max]; every timestamp in one window, so the open
# (key, window) pairs are the keys. Each of the 3 runs measures the ceiling (a newline counter
# reading the same bytes) and then a fresh tumbled; the table gives the median and range of
# lines/s and MB/s, tumbled/ceiling, the RSS per open pair (RSS after the run minus before it,
# over tumbled_open_keys) and the longest checkpoint seen. Checked in every run: /metrics counts
# every line sent as accepted, none rejected, and tumbled_open_keys == K; for K <= 10 000 the
# window is then closed and InfluxDB must hold per key exactly the sum, count and max sent. Each
# connection sends the payload at least once (1 000 000 keys: it may take longer than --seconds).
# The micro section has the same path without sockets (BM_LineProtocolKeyed/K: decoder and
# KeyedWindows::add on one core, with the heap bytes per pair as its label).
#
# http: `tumbled-bench http-write --clients 1,16 --runs 3` (about a minute): acknowledged
# lines/s of 1 and 16 concurrent clients, each with its own keep-alive connection, posting bodies
# of 5 000 lines of the keyed payload (10 000 keys, timestamps in one hour) to
# /write?db=bench&precision=s for 5 s, into a tumbled whose pipeline reads source.http (the keyed
# pipeline above) and into influxd 1.x's own /write, the same bodies to both. Only requests
# answered 204 count; any other answer fails the section. Every run starts a fresh influxd (and
# tumbled); the table gives the median and range of 3 runs and tumbled / influxd. Checked in every
# run: tumbled's /metrics counts exactly the acknowledged lines as accepted, none rejected, and
# exactly the acknowledged requests as answered 204.
#
# kafka: `tumbled-bench kafka --instances 1,2 --runs 3` (about a minute) beside the keyed TCP
# ingest of the same 10 000-key payload: lines/s consumed from a 4-partition topic of
# librdkafka's mock cluster (in the bench's process) by one instance and by two in one consumer
# group, 100 lines a record, a producer keeping them busy; every line produced must be accepted
# exactly once. The mock broker and the producer share the machine with tumbled.
#
# replay: `tumbled-bench replay --points 1000000 --plain-batch 5000 --runs 3` (about a minute):
# a backlog of 1 000 000 points written into a state store as an outage would leave it, drained by
# a tumbled with its default batching (batch_size 100, max_batch_size 5000), against a plain bulk
# writer posting the same line protocol in 5 000-point bodies over one keep-alive connection to
# the same influxd. Plain writer and tumbled alternate, each into a fresh database; the table gives
# the median and range of points/s over 3 runs and of each run's tumbled / plain. Checked in every
# run: InfluxDB holds every point.
#
# Each section is one command, also runnable on its own (see the commands printed below, or
# `tumbled-bench --help`). Not part of ctest. Figures from a machine running other work vary.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${TUMBLED_BENCH_BUILD_DIR:-build-bench}
sections=("$@")
if [ ${#sections[@]} -eq 0 ]; then
  sections=(micro checkpoint ingest keyed http kafka latency replay footprint)
  command -v perf >/dev/null && sections+=(profile)
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTUMBLED_BUILD_TESTS=ON -DTUMBLED_BUILD_BENCH=ON \
  >/dev/null || exit 1
cmake --build "$build" -j"$(nproc)" --target tumbled tumbled-bench tumbled-micro-bench || exit 1

bench="$build/cmd/tumbled-bench/tumbled-bench"
micro="$build/tests/bench/tumbled-micro-bench"
results="$build/bench-results"
mkdir -p "$results"
rm -f "$results"/*
failed=()
ran=()

# run NAME COMMAND...: prints and runs the command, keeps its output in $results/NAME.txt.
run() {
  local name=$1
  shift
  echo
  echo "== $name: $*"
  ran+=("$name")
  "$@" 2>&1 | tee "$results/$name.txt"
  local code=${PIPESTATUS[0]}
  [ "$code" -eq 0 ] || failed+=("$name (exit $code)")
}

for section in "${sections[@]}"; do
  case $section in
    micro)
      run micro "$micro" --benchmark_min_time=0.5 --benchmark_out="$results/micro.csv" \
        --benchmark_out_format=csv ;;
    checkpoint)
      run checkpoint "$bench" checkpoint --backlogs 0,10000,1000000 ;;
    ingest)
      run ingest-1 "$bench" ingest --payload all --connections 1 --seconds 5 --runs 3
      run ingest-4 "$bench" ingest --connections 4 --threads 1,2 --payload small,uniform6,int64 \
        --seconds 5 --runs 3 ;;
    keyed)
      for keys in 1 10000 1000000; do
        run "keyed-$keys" "$bench" ingest --format line_protocol --keys "$keys" --seconds 5 --runs 3
      done ;;
    http)
      run http "$bench" http-write --clients 1,16 --runs 3 ;;
    kafka)
      # The same keyed payload (10 000 keys) over TCP, then from a 4-partition topic.
      run kafka-tcp "$bench" ingest --format line_protocol --keys 10000 --seconds 5 --runs 3
      run kafka "$bench" kafka --instances 1,2 --partitions 4 --lines 10000000 --runs 3 ;;
    latency)
      run latency-1s "$bench" latency --window-ms 200 --seconds 20
      run latency-100ms "$bench" latency --window-ms 200 --batch-interval 100ms --seconds 10 ;;
    replay)
      run replay "$bench" replay --points 1000000 --plain-batch 5000 --runs 3 ;;
    footprint)
      run footprint "$bench" footprint ;;
    profile)
      run profile "$bench" ingest --connections 1 --seconds 5 --no-ceiling --perf "$results/perf.data"
      echo "== top functions in tumbled (self time, perf report --no-children --sort symbol):"
      perf report -i "$results/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
        grep '%' | grep -v '^#' | sed 's/  */ /g; s/^ //' | cut -c1-120 | head -10 |
        tee "$results/profile-top.txt" ;;
    profile-keyed)
      run profile-keyed "$bench" ingest --format line_protocol --keys 1000000 --seconds 5 \
        --no-ceiling --perf "$results/perf-keyed.data"
      echo "== top functions in tumbled (self time, perf report --no-children --sort symbol):"
      perf report -i "$results/perf-keyed.data" --no-children --sort symbol --stdio -g none \
        2>/dev/null | grep '%' | grep -v '^#' | sed 's/  */ /g; s/^ //' | cut -c1-120 | head -10 |
        tee "$results/profile-keyed-top.txt" ;;
    *)
      echo "unknown section '$section'" >&2
      failed+=("$section (unknown)") ;;
  esac
done

echo
echo "================================ summary ================================"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'),"\
  "$(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on the machine skew every figure)"
echo "build: $build (Release), $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' + local changes')"
echo
echo "| Benchmark | Metric | Value | Note |"
echo "|---|---|---|---|"
if [ -f "$results/micro.csv" ] && [ -f "$results/micro.txt" ]; then
  # name,iterations,real_time,cpu_time,time_unit,bytes_per_second,items_per_second,label,...
  awk -F, '/^"BM_/ {
      gsub(/"/, "", $1)
      items = $7 == "" ? "" : sprintf("%.1f M items/s", $7 / 1e6)
      bytes = $6 == "" ? "" : sprintf("%.0f MB/s", $6 / 1e6)
      # BM_LineProtocolKeyed labels its heap bytes per pair, BM_LineFramerFeed its payload
      # (other labels may hold commas)
      if ($1 ~ /^BM_(LineProtocolKeyed|LineFramerFeed)/) { gsub(/"/, "", $8); bytes = bytes ", " $8 }
      printf "| micro | %s | %s | %s |\n", $1, items, bytes
    }' "$results/micro.csv"
fi
for name in "${ran[@]}"; do
  # their ingest ran under perf; only their top functions below
  [ "$name" = profile ] || [ "$name" = profile-keyed ] && continue
  grep -E '^\| ' "$results/$name.txt" | grep -vE '^\| Benchmark \|' || true
done
# "54.52% [.] symbol - -": the 5 functions tumbled spent most time in during ingest.
for profile in "profile:ingest 1 conn" "profile-keyed:ingest line_protocol 1000000 keys"; do
  file="$results/${profile%%:*}-top.txt"
  [ -s "$file" ] || continue
  head -5 "$file" | awk -v what="${profile#*:}" '{
      pct = $1; $1 = ""; $2 = ""; sub(/ - -$/, ""); sub(/^ +/, ""); sub(/<.*/, "<...>")
      printf "| profile, %s | top %d: %s | %s | self time |\n", what, NR, $0, pct
    }'
done
if [ ${#failed[@]} -gt 0 ]; then
  echo
  echo "FAILED: ${failed[*]}"
  exit 1
fi
