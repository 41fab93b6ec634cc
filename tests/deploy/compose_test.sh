#!/usr/bin/env bash
# docker-compose.yml is a valid compose file (`docker-compose config`, which needs no Docker engine)
# with the services the README describes, every file it mounts exists, and the scripts the
# containers run (feeder, health check) are valid bash. Nothing here builds or runs a container.
# Exit 77 (skipped) without docker-compose.
# Usage: compose_test.sh SOURCE_DIR
set -euo pipefail
source_dir=$1
cd "$source_dir"
fail() { echo "FAIL: $*"; exit 1; }
if ! command -v docker-compose >/dev/null; then
  echo "docker-compose not found (deploy/install-deps.sh --test installs it)"
  exit 77
fi

docker-compose -f docker-compose.yml config -q || fail "docker-compose config rejects docker-compose.yml"
services=$(docker-compose -f docker-compose.yml config --services | sort | tr '\n' ' ')
[ "$services" = "feeder grafana influxdb prometheus tumbled " ] || fail "services are: $services"
volumes=$(docker-compose -f docker-compose.yml config --volumes | sort | tr '\n' ' ')
[ "$volumes" = "grafana-data influxdb-data prometheus-data tumbled-state " ] || fail "volumes: $volumes"

# Bind mounts: the resolved source of every one must exist in the repository.
docker-compose -f docker-compose.yml config | grep -oE "^ *- $source_dir/[^:]+" | sed 's/^ *- //' |
  while read -r path; do
    [ -e "$path" ] || fail "mounted $path does not exist"
    echo "mount source ok: ${path#"$source_dir"/}"
  done

for script in deploy/feed.sh deploy/healthcheck.sh; do
  bash -n "$script" || fail "$script is not valid bash"
done
grep -q '^HEALTHCHECK ' deploy/Dockerfile || fail "Dockerfile has no HEALTHCHECK"
grep -q 'CMD \["/usr/local/bin/tumbled-healthcheck"' deploy/Dockerfile ||
  fail "the HEALTHCHECK does not run deploy/healthcheck.sh"
grep -q '^USER tumbled' deploy/Dockerfile || fail "Dockerfile does not run as the user tumbled"
echo "PASS"
