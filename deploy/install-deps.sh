#!/usr/bin/env bash
# Installs what building and running tumbled need, from Debian 12 packages only; with --test,
# also what the test suite needs (Catch2, clang and its sanitizer/libFuzzer runtime).
set -euo pipefail
packages=(
  ca-certificates cmake g++ make pkg-config curl
  libboost1.81-dev libboost-url1.81-dev librocksdb-dev libyaml-cpp-dev libspdlog-dev catch2
  influxdb influxdb-client
  libssl-dev zlib1g-dev  # TLS (https:// URLs) and gzip bodies to InfluxDB
  librdkafka-dev  # source.kafka (librdkafka 2.0)
  libsystemd-dev dpkg-dev file  # sd_notify; cpack -G DEB computes Depends with dpkg-shlibdeps
)
[ "${1:-}" = "--test" ] && packages+=(clang libclang-rt-14-dev libbenchmark-dev)
# The deploy tests: systemd-analyze verify on the unit, docker-compose config on the compose file.
[ "${1:-}" = "--test" ] && packages+=(systemd docker-compose)
# tests/stress.sh: a CPU hog beside the suite.
[ "${1:-}" = "--test" ] && packages+=(stress-ng)
# The HTTP source's tests: a real InfluxDB client library, and openssl for a test CA.
[ "${1:-}" = "--test" ] && packages+=(python3-influxdb openssl)
# The Kafka source's tests: kcat produces to the mock cluster.
[ "${1:-}" = "--test" ] && packages+=(kcat)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
# The TLS tests connect to "localhost" (SNI and host-name checks need a name). Every installed
# Debian has it in /etc/hosts; bare roots made by debootstrap/mmdebstrap do not.
if [ "${1:-}" = "--test" ] && ! getent hosts localhost >/dev/null; then
  echo "127.0.0.1 localhost" | $sudo tee -a /etc/hosts >/dev/null
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
# The influxdb package may try to start its own service; policy-rc.d keeps it from doing so where
# there is no init system (containers, chroots): tumbled's demo and tests start their own influxd.
if [ ! -d /run/systemd/system ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
