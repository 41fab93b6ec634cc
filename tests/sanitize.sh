#!/usr/bin/env bash
# Builds tumbled and its tests with sanitizers in a build directory of their own and runs the whole
# suite (unit, component and system tests) there.
#
#   tests/sanitize.sh [address|thread] [CTEST_ARGS...]   # default: address
#
#   address: ASan + UBSan (-DTUMBLED_SANITIZE=address,undefined) in build-address/
#   thread:  TSan         (-DTUMBLED_SANITIZE=thread)            in build-thread/
#
# Both are Debug builds (TUMBLED_SANITIZE_BUILD_DIR overrides the directory; or
# TUMBLED_SANITIZE_BUILD_PREFIX=x makes them x-address/ and x-thread/). Exits non-zero if
# any test fails or any sanitizer reports anything, including reports from the tumbled daemons
# that the system tests start: their stderr goes to log files in temp dirs, and a daemon's report
# does not always fail a test (e.g. one printed while it exits). So the tests run with
# TUMBLED_TEST_KEEP_TMP=1, this script greps every log they kept, then removes those dirs (keeps
# them if you had set TUMBLED_TEST_KEEP_TMP yourself). UBSan is built with
# -fno-sanitize-recover=undefined, so its first report ends the process.
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:-address}
[ $# -gt 0 ] && shift
case "$kind" in
  address) sanitize=address,undefined ;;
  thread) sanitize=thread ;;
  *)
    echo "usage: tests/sanitize.sh [address|thread] [CTEST_ARGS...]" >&2
    exit 2
    ;;
esac
build=${TUMBLED_SANITIZE_BUILD_DIR:-${TUMBLED_SANITIZE_BUILD_PREFIX:-build}-$kind}
mkdir -p "$build"
build=$(cd "$build" && pwd)

# User settings come last so they win over these defaults.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$(pwd)/tests/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
user_keeps_tmp=${TUMBLED_TEST_KEEP_TMP:-}
export TUMBLED_TEST_KEEP_TMP=1

deploy/install-deps.sh
start=$SECONDS
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DTUMBLED_BUILD_TESTS=ON -DTUMBLED_BUILD_BENCH=OFF \
  -DTUMBLED_SANITIZE="$sanitize" >/dev/null
cmake --build "$build" -j"$(nproc)"
built=$SECONDS

# The JUnit report holds every test's output, passing ones too: that is where the tests say
# which temp dirs they kept.
junit="$build/sanitize-junit.xml"
rm -f "$junit"
stamp="$build/sanitize-stamp"
touch "$stamp"
ctest_rc=0
ctest --test-dir "$build" --output-on-failure -j3 --timeout 300 --output-junit "$junit" "$@" ||
  ctest_rc=$?
tested=$SECONDS

# Sanitizer reports in the logs of the processes the tests started (tumbled daemons and CLI runs).
# influxd.log is InfluxDB's own (Go: its panics say "runtime error:" too) and is not ours.
pattern='ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|ThreadSanitizer: |runtime error:|SUMMARY: [A-Za-z]+Sanitizer'
kept=()
if [ -f "$junit" ]; then
  mapfile -t kept < <(grep -oE 'keeping (&quot;|")?/[^"&<]*' "$junit" |
    sed -E 's/^keeping (&quot;|")?//' | sort -u)
fi
# The report only has the last run of a repeated test (ctest --repeat), and nothing of a test
# binary that died: also scan what the tests' TempDirs made in /tmp since the run started (those
# are left in place, they may be another run's).
mapfile -t recent < <(find /tmp -maxdepth 1 -type d \( -name 'tumbled-daemon-*' -o \
  -name 'tumbled-test-*' \) -newer "$stamp" | sort)
mapfile -t scanned < <(printf '%s\n' "${kept[@]}" "${recent[@]}" | sed '/^$/d' | sort -u)
findings=0
for dir in "${scanned[@]}"; do
  [ -d "$dir" ] || continue
  while IFS= read -r -d '' log; do
    if grep -qE "$pattern" "$log"; then
      findings=$((findings + 1))
      echo "== sanitizer report in $log:" >&2
      grep -E -A40 "$pattern" "$log" | head -n 80 >&2
    fi
  done < <(find "$dir" -name '*.log' ! -name influxd.log -type f -print0)
done
# Reports of the test binaries themselves already fail their test; count them for the summary.
reports_in_tests=0
if [ -f "$junit" ]; then
  reports_in_tests=$(grep -cE "$pattern" "$junit" || true)
fi
if [ -z "$user_keeps_tmp" ]; then
  for dir in "${kept[@]}"; do
    case "$dir" in /tmp/tumbled-*) rm -rf "$dir" ;; esac
  done
fi

echo
echo "sanitize $kind ($sanitize) in $build: build $((built - start))s, ctest $((tested - built))s"
echo "  ctest exit $ctest_rc; sanitizer report lines in test output: $reports_in_tests;" \
  "logs with reports in ${#scanned[@]} temp dirs: $findings"
if ((ctest_rc != 0 || findings != 0 || reports_in_tests != 0)); then
  echo "sanitize $kind: FAILED" >&2
  exit 1
fi
echo "sanitize $kind: clean"
