#!/usr/bin/env bash
# Container health check: exit 0 when GET /health on tumbled's HTTP endpoint answers 200, else 1.
# Usage: healthcheck.sh [HOST [PORT]]   (default 127.0.0.1 9100, the http.listen default)
# Bash's /dev/tcp instead of curl: the runtime image needs nothing debian:12-slim lacks.
set -u
host=${1:-127.0.0.1}
port=${2:-9100}

probe() {
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET /health HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3 || return 1
  local status
  IFS= read -r -t 5 status <&3 || return 1
  [[ $status == HTTP/1.[01]\ 200\ * ]]
}

probe 2>/dev/null || exit 1
