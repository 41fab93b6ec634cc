#!/usr/bin/env bash
# Installs what the tests need (Debian 12 packages), builds tumbled and runs the whole suite:
#   1. unit, component and system tests (ctest) in build/ — the system tests start the tumbled
#      binary against a real influxd of their own on free loopback ports;
#   2. the same suite under ASan+UBSan (build-address/) and under TSan (build-thread/), failing on
#      any sanitizer report, also from the daemons the tests start (tests/sanitize.sh);
#   3. each libFuzzer target for FUZZ_SECONDS (default 15) on its seed corpus (tests/fuzz.sh).
# ctest runs 3 tests at a time on any machine: most of a system test's time is waiting on its
# daemon and influxd, and the verdicts do not depend on speed.
# `tests/run.sh --quick` runs step 1 only. Extra arguments go to ctest in step 1.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi
build=${TUMBLED_BUILD_DIR:-build}
started=$SECONDS
step() { echo; echo "== $* ($((SECONDS - started)) s so far)"; }

step "installing dependencies"
deploy/install-deps.sh --test

step "build and test"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUMBLED_BUILD_TESTS=ON
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j3 --timeout 300 "$@"
[ $quick = 1 ] && exit 0

step "ASan+UBSan build and test"
tests/sanitize.sh address
step "TSan build and test"
tests/sanitize.sh thread
step "fuzzing, ${FUZZ_SECONDS:-15} s per target"
tests/fuzz.sh "${FUZZ_SECONDS:-15}"
step "all passed"
