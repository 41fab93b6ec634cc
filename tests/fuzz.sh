#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ (clang++, -DTUMBLED_FUZZ=ON, in build-fuzz/) and runs
# each for a bounded time on a copy of its seed corpus tests/fuzz/corpus/<target>/; the committed
# corpus is never modified. Everything runs locally.
#
#   tests/fuzz.sh [SECONDS_PER_TARGET]   # default 60; 0 only replays the seed corpora
#
# Exits non-zero if any fuzzer reports a crash, a sanitizer error, a timeout (-timeout=10), an
# out-of-memory (-rss_limit_mb=2048) or a leak. Reproducer inputs land in build-fuzz/artifacts/
# <target>/ (replay one with build-fuzz/tests/fuzz/<target> FILE); full logs in
# build-fuzz/fuzz-logs/. Found a bug? Fix it, then add the reproducer to the seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]]; then
  echo "usage: tests/fuzz.sh [SECONDS_PER_TARGET]" >&2
  exit 2
fi
build=${TUMBLED_FUZZ_BUILD_DIR:-build-fuzz}
targets=(fuzz_line_framer fuzz_line_protocol fuzz_config fuzz_http_request fuzz_line_protocol_parser
  fuzz_keyed_windows fuzz_write_api)

generator=()
if [[ ! -f $build/CMakeCache.txt ]] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUMBLED_FUZZ=ON -DTUMBLED_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target "${targets[@]}" -j"$(nproc)"

# Any sanitizer report is fatal; leaks are reported by libFuzzer itself (-detect_leaks=1).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

runs="$build/fuzz-runs"
logs="$build/fuzz-logs"
rm -rf "$runs" "$logs" "$build/artifacts"
mkdir -p "$runs" "$logs"
failed=0
summary=()
for target in "${targets[@]}"; do
  corpus="$runs/$target"
  artifacts="$build/artifacts/$target/"
  mkdir -p "$corpus" "$artifacts"
  cp -R tests/fuzz/corpus/"$target"/. "$corpus"/
  seeds=$(find "$corpus" -type f | wc -l)
  args=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts")
  if [[ -f tests/fuzz/$target.dict ]]; then args+=(-dict="tests/fuzz/$target.dict"); fi
  if ((seconds > 0)); then
    args+=(-max_total_time="$seconds")
  else
    args+=(-runs=0)
  fi
  echo "== $target: ${seconds}s on $seeds seed inputs (log: $logs/$target.log)"
  rc=0
  "$build/tests/fuzz/$target" "${args[@]}" "$corpus" >"$logs/$target.log" 2>&1 || rc=$?
  stat() { sed -n "s/^stat::$1: *//p" "$logs/$target.log" | tail -n1; }
  execs=$(stat number_of_executed_units)
  rate=$(stat average_exec_per_sec)
  added=$(stat new_units_added)
  elapsed=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$logs/$target.log" | tail -n1)
  cov=$(grep -o 'cov: [0-9]*' "$logs/$target.log" | tail -n1 || true)
  if ((rc == 0)); then
    status=ok
  else
    status="FAILED (exit $rc)"
    failed=1
    grep -E '^==[0-9]+==ERROR|SUMMARY:|invariant violated|fuzz_config:|deadly signal|uncaught|Test unit written' \
      "$logs/$target.log" | head -n 20 >&2 || true
    echo "reproduce: $build/tests/fuzz/$target $artifacts<file>" >&2
  fi
  summary+=("$(printf '%-20s %s: %s execs in %ss (%s exec/s), %s, %s new units' "$target" "$status" \
    "${execs:-?}" "${elapsed:-?}" "${rate:-?}" "${cov:-cov: ?}" "${added:-?}")")
done

echo
printf '%s\n' "${summary[@]}"
exit "$failed"
