#!/usr/bin/env bash
# Proves that the test suite's verdicts do not depend on the machine's speed: runs it under load.
#
#   tests/stress.sh            # about 75 min on 2 cores (with the builds: add ~15 min from scratch)
#
# 1. starts a CPU hog on one core beside everything else (`stress-ng --cpu 1`, stopped on exit);
# 2. runs the ASan+UBSan and the TSan suites (tests/sanitize.sh) with `ctest --repeat
#    until-fail:5`: every test five times in a row, stopping at its first failure;
# 3. runs the whole test command, tests/run.sh (ctest, both sanitizer suites once, the fuzzers),
#    twice in a row.
# Exits non-zero if any step failed, after printing a summary with each step's duration.
# Build directories: TUMBLED_BUILD_DIR (default build/) and TUMBLED_SANITIZE_BUILD_PREFIX (default
# build, i.e. build-address/ and build-thread/), honoured by tests/run.sh and tests/sanitize.sh
# too. STRESS_REPEAT=N changes the 5; extra arguments go to ctest in step 2 (e.g. -R 'BatchWriter'
# to stress only some tests).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

repeat=${STRESS_REPEAT:-5}
# One sanitizer directory per kind: a single TUMBLED_SANITIZE_BUILD_DIR would mix them.
unset TUMBLED_SANITIZE_BUILD_DIR

deploy/install-deps.sh --test || exit 1
command -v stress-ng >/dev/null || { echo "stress-ng is not installed" >&2; exit 1; }

stress-ng --cpu 1 --quiet >/dev/null 2>&1 &
hog=$!
trap 'kill "$hog" 2>/dev/null; wait "$hog" 2>/dev/null' EXIT
trap 'exit 130' INT TERM
echo "== CPU hog: stress-ng --cpu 1 (pid $hog) on $(nproc) cores"

started=$SECONDS
summary=()
failed=0
run_step() {
  local name=$1
  shift
  echo
  echo "== $name ($((SECONDS - started)) s so far)"
  local begin=$SECONDS rc=0
  "$@" || rc=$?
  local line
  line=$(printf '%-44s %6d s  %s' "$name" $((SECONDS - begin)) \
    "$([ $rc = 0 ] && echo passed || echo "FAILED (exit $rc)")")
  summary+=("$line")
  [ $rc = 0 ] || failed=1
}

run_step "ASan+UBSan suite, repeat until-fail:$repeat" \
  tests/sanitize.sh address --repeat until-fail:"$repeat" "$@"
run_step "TSan suite, repeat until-fail:$repeat" \
  tests/sanitize.sh thread --repeat until-fail:"$repeat" "$@"
for round in 1 2; do
  run_step "tests/run.sh, round $round" tests/run.sh
done

echo
echo "== summary (under stress-ng --cpu 1, $(nproc) cores, $((SECONDS - started)) s in all)"
printf '%s\n' "${summary[@]}"
if [ $failed != 0 ]; then
  echo "stress: FAILED" >&2
  exit 1
fi
echo "stress: all passed"
