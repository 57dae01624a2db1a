#!/usr/bin/env bash
# The main job: the whole pipeline in one command, on embedded defaults (no server to install).
# Simulated users track through libuserevents into librdkafka's mock Kafka cluster (three
# brokers), libenrich enriches exactly once, libwhsink loads SQLite exactly once; progress while
# it runs, then the report (tracked vs landed, duplicates, per type, latency) and the SQL.
#
#   ./demo.sh                                   # defaults: 200 users, 2000 events/s, 10 s
#   ./demo.sh --users 1000 --rate 5000 --duration 30
#   KAFKA_BOOTSTRAP=host:9092 ./demo.sh --warehouse postgres://user@host/db   # real parts
# (build/ue-demo --help lists the options; the spool outage demo is examples/ue-track/outage-demo.sh)
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
make -j2 >/dev/null
exec build/ue-demo "$@"
