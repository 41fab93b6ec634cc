#!/usr/bin/env bash
# deploy/tumbled.service passes `systemd-analyze verify` without a single message about the unit,
# and its sandboxing keeps `systemd-analyze security` at an exposure of 2.0 or less ("OK").
# verify insists that ExecStart= binaries exist, so it checks a copy of the unit, in a temp dir,
# whose /usr/bin/tumbled is the build's binary. Exit 77 (skipped) without systemd-analyze.
# Usage: unit_file_test.sh SOURCE_DIR TUMBLED_BINARY
set -euo pipefail
source_dir=$1
binary=$2
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not found (package systemd; deploy/install-deps.sh --test installs it)"
  exit 77
fi
work=$(mktemp -d /tmp/tumbled-unit-XXXXXX)
trap 'rm -rf "$work"' EXIT
unit=$work/tumbled.service
sed "s|/usr/bin/tumbled|$binary|g" "$source_dir/deploy/tumbled.service" >"$unit"
grep -q "^ExecStart=$binary " "$unit" || { echo "ExecStart= does not run /usr/bin/tumbled"; exit 1; }

status=0
systemd-analyze verify --man=no "$unit" >"$work/verify.out" 2>&1 || status=$?
cat "$work/verify.out"
# verify may also report on other units it loads (default targets of this machine); any line
# about our unit, or a failed verify, is a failure.
if [ $status -ne 0 ] || grep -q -e "$unit" -e "tumbled.service" "$work/verify.out"; then
  echo "FAIL: systemd-analyze verify complains about deploy/tumbled.service (exit $status)"
  exit 1
fi

# Settings the service relies on (sd_notify, watchdog, unprivileged user, state directory).
for setting in Type=notify NotifyAccess=main WatchdogSec=30s User=tumbled StateDirectory=tumbled \
  "ExecStart=$binary --config /etc/tumbled/tumbled.yaml" CapabilityBoundingSet= \
  "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" SystemCallFilter=@system-service; do
  grep -qx -- "$setting" "$unit" || { echo "FAIL: missing $setting"; exit 1; }
done
if grep -q '^DynamicUser=yes' "$unit"; then echo "FAIL: DynamicUser= with a packaged user"; exit 1; fi

systemd-analyze security --offline=true --threshold=20 "$unit" >"$work/security.out" 2>&1 ||
  { cat "$work/security.out"; echo "FAIL: exposure above 2.0"; exit 1; }
grep "Overall exposure level" "$work/security.out"
echo "PASS"
