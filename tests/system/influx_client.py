#!/usr/bin/python3
"""Writes points with InfluxDB's Python client library (Debian's python3-influxdb), as an
application would, to an InfluxDB write endpoint on 127.0.0.1: the system tests of tumbled's
source.http run it against the daemon.

usage: influx_client.py --port PORT [--token TOKEN] [--precision s] [--gzip] POINTS.json

POINTS.json holds a JSON list of points as InfluxDBClient.write_points() takes them:
{"measurement": "web", "tags": {"host": "a"}, "fields": {"value": 3}, "time": 1700000000}, with
"time" an integer in --precision units. With --token the client authenticates as InfluxDB 1.x
clients do, with the token as the password (HTTP Basic, user "tumbled"); without it, it sends no
credentials at all.

Prints "written" and exits 0 when the server accepted the write; prints "status=<code> <body>"
and exits 2 when it answered with an error status; exits 1 on any other failure (connection
refused, timeout), with the error on stderr.
"""
import argparse
import json
import sys

from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError, InfluxDBServerError


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token")
    parser.add_argument("--precision", default="s", choices=["n", "u", "ms", "s", "m", "h"])
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("points")
    args = parser.parse_args()

    with open(args.points, encoding="utf-8") as f:
        points = json.load(f)
    client = InfluxDBClient(
        host="127.0.0.1",
        port=args.port,
        username="tumbled" if args.token is not None else None,
        password=args.token,
        database="telemetry",
        gzip=args.gzip,
        timeout=30,
        retries=1,  # 0 would retry forever
    )
    client._session.trust_env = False  # 127.0.0.1 only: no proxy from the environment
    try:
        client.write_points(points, time_precision=args.precision)
    except InfluxDBClientError as e:  # 4xx
        print("status=%s %s" % (e.code, e.content))
        return 2
    except InfluxDBServerError as e:  # 5xx: the client keeps only the body
        print("status=5xx %s" % e)
        return 2
    print("written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
