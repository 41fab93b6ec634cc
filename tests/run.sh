#!/usr/bin/env bash
# Installs what the tests need (Debian 12 packages), builds tumbled and runs the whole suite:
# unit tests of the pure cores, component tests, and system tests of the tumbled binary against
# a real influxd that the tests start themselves on free loopback ports.
# Extra arguments go to ctest (e.g. tests/run.sh -R unit).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${TUMBLED_BUILD_DIR:-build}

deploy/install-deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTUMBLED_BUILD_TESTS=ON
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j2 --timeout 300 "$@"
