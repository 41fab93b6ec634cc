#!/usr/bin/env bash
# The compose stack's feeder: sends tumbled the integers 1..COUNT once a second over one TCP
# connection, and reconnects when it cannot connect or the connection drops. A full 10 s window
# then sums to about 10 x COUNT(COUNT+1)/2 (5005000 for the default 1000).
# Usage: feed.sh [HOST [PORT [COUNT]]]   (default tumbled 9000 1000)
set -u
host=${1:-tumbled}
port=${2:-9000}
count=${3:-1000}

while :; do
  if exec 3<>"/dev/tcp/$host/$port"; then
    echo "feeding $host:$port with 1..$count every second"
    # seq fails (EPIPE) once the connection is gone: reconnect.
    while seq 1 "$count" >&3; do sleep 1; done
    exec 3>&-
    echo "connection to $host:$port lost; reconnecting"
  fi
  sleep 1
done
