#!/usr/bin/env bash
# The monitoring assets and the programs' /metrics, checked with the real tools:
#   1. promtool check rules pkg/monitoring/alerts.yml, and promtool test rules
#      pkg/monitoring/alerts_test.yml (each alert fires on a failing series, not on a healthy one);
#   2. a real Prometheus (Debian's package) scrapes ue-collector, enrichd and whsinkd running
#      against a Kafka broker (test/kafka.sh, or the cluster in KAFKA_BOOTSTRAP) while events
#      flow through them, and the expected series are there (its HTTP API, polled until a
#      deadline); the alert rules load and evaluate; every PromQL query of the dashboard runs;
#      every metric family the programs serve is in the dashboard and in the README.
# Installs nothing: setup.sh installs the package "prometheus" (prometheus, promtool).
# Usage: test/monitoring/run.sh [BUILD_DIR]      (the programs are built there: make)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
MON=pkg/monitoring

log() { printf 'monitoring: %s\n' "$*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}

if [[ ${MONITORING_LIVE:-} != 1 ]]; then
  for tool in promtool prometheus curl python3; do
    command -v "$tool" >/dev/null ||
      die "$tool not found (setup.sh installs the Debian package prometheus)"
  done
  for prog in enrichd ue-collector whsinkd; do
    [[ -x $BUILD/$prog ]] || die "$BUILD/$prog is not built: run make"
  done
  log "promtool check rules"
  promtool check rules "$MON/alerts.yml"
  log "promtool test rules"
  promtool test rules "$MON/alerts_test.yml"
  python3 -m json.tool "$MON/dashboard.json" >/dev/null || die "dashboard.json is not JSON"
  # The live part needs a broker: test/kafka.sh starts one (or uses KAFKA_BOOTSTRAP).
  MONITORING_LIVE=1 exec test/kafka.sh run -- "$0" "$BUILD"
fi

# ---- live: programs, events, a real Prometheus -------------------------------------------------

: "${KAFKA_BOOTSTRAP:?run through test/kafka.sh}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ue-monitoring.XXXXXX")
PIDS=()
DEADLINE=$((SECONDS + 90)) # the whole live part; it usually needs about 20 s
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((rc != 0)); then
    for f in "$TMP"/*.err "$TMP"/prometheus.log; do
      [[ -f $f ]] && { echo "---- $f" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits until "$2 metrics on http://127.0.0.1:PORT/metrics" is in file $1; prints PORT.
metrics_port() {
  local port=
  while ((SECONDS < DEADLINE)); do
    port=$(sed -n "s|^$2: metrics on http://127.0.0.1:\([0-9]*\)/metrics$|\1|p" "$1" 2>/dev/null)
    [[ -n $port ]] && { echo "$port"; return 0; }
    sleep 0.2
  done
  die "$2 did not start its /metrics (see $1)"
}

# Topics of this run only, so that a shared cluster (KAFKA_BOOTSTRAP) is no problem.
RUN=mon$$
log "programs against $KAFKA_BOOTSTRAP (topics $RUN.*)"
"$BUILD/ue-collector" -b "$KAFKA_BOOTSTRAP" -s "$TMP/spool" --no-auth -p 0 --metrics-port 0 \
  -X "topic.template=$RUN.events.{type}" -X kafka.statistics.interval.ms=1000 \
  >"$TMP/collector.out" 2>"$TMP/collector.err" &
PIDS+=($!)
"$BUILD/enrichd" -b "$KAFKA_BOOTSTRAP" --metrics-port 0 -s 0 -X "group.id=$RUN-enrich" \
  -X "input.topics=^$RUN\.events\..*" -X "output.topic=$RUN.enriched" \
  -X "dead_letter.topic=$RUN.dead_letter" -X "aggregates.topic=$RUN.aggregates" \
  -X "alerts.topic=$RUN.alerts" -X "profile.topic=$RUN.profiles" \
  -X kafka.consumer.statistics.interval.ms=1000 -X kafka.topic.metadata.refresh.interval.ms=1000 \
  >"$TMP/enrichd.out" 2>"$TMP/enrichd.err" &
PIDS+=($!)
"$BUILD/whsinkd" -b "$KAFKA_BOOTSTRAP" -w "sqlite:$TMP/warehouse.db" -t "$RUN.enriched" \
  -g "$RUN-sink" --metrics-port 0 -s 0 -X kafka.topic.metadata.refresh.interval.ms=1000 \
  >"$TMP/whsinkd.out" 2>"$TMP/whsinkd.err" &
PIDS+=($!)
COLLECTOR=$(metrics_port "$TMP/collector.err" ue-collector)
ENRICH=$(metrics_port "$TMP/enrichd.err" enrichd)
SINK=$(metrics_port "$TMP/whsinkd.err" whsinkd)
while ((SECONDS < DEADLINE)) && ! grep -q "listening on" "$TMP/collector.out"; do sleep 0.2; done
INGEST=$(sed -n 's/^ue-collector: listening on .* port \([0-9]*\)$/\1/p' "$TMP/collector.out")
[[ -n $INGEST ]] || die "ue-collector did not start"

# A free loopback port for Prometheus (released just before it binds it).
PROM_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/$MON/alerts.yml
scrape_configs:
  - job_name: collector
    static_configs: [{targets: ["127.0.0.1:$COLLECTOR"]}]
  - job_name: enrich
    static_configs: [{targets: ["127.0.0.1:$ENRICH"]}]
  - job_name: sink
    static_configs: [{targets: ["127.0.0.1:$SINK"]}]
EOF
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)
PROM=http://127.0.0.1:$PROM_PORT
until curl -fsS "$PROM/-/ready" >/dev/null 2>&1; do
  ((SECONDS < DEADLINE)) || die "Prometheus did not become ready (see prometheus.log)"
  sleep 0.3
done
log "Prometheus on $PROM scrapes collector :$COLLECTOR, enrich :$ENRICH, sink :$SINK"

# Events through the collector: raw topic -> enrichd -> enriched topic -> whsinkd -> SQLite.
for i in 1 2 3 4 5; do
  body='['
  for u in 1 2 3 4 5 6 7 8; do
    body+="{\"type\":\"page_view\",\"user_id\":\"user-$u\",\"properties\":{\"n\":$i}},"
  done
  body="${body%,}]"
  curl -fsS -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$INGEST/v1/batch" \
    >/dev/null || die "POST /v1/batch failed"
done

# The number of series of the instant query $1 (prints it; -1 when the query fails).
series() {
  curl -fsS -G "$PROM/api/v1/query" --data-urlencode "query=$1" 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(len(r["data"]["result"]) if r["status"] == "success" else -1)' 2>/dev/null || echo -1
}

# Each query must return at least one series: present (and, with a comparison, true).
EXPECTED=(
  'up{job="collector"} == 1' 'up{job="enrich"} == 1' 'up{job="sink"} == 1'
  'userevents_collector_events_in_total{job="collector"} >= 40'
  'userevents_collector_http_responses_total{job="collector",code="200"} >= 5'
  'userevents_collector_request_duration_seconds_count{job="collector"} >= 5'
  'userevents_collector_batch_events_bucket{job="collector",le="10"} >= 5'
  'userevents_sdk_events_out_total{job="collector"} >= 40'
  'userevents_sdk_spool_bytes{job="collector"}'
  'userevents_sdk_spool_max_bytes{job="collector"} > 0'
  'userevents_sdk_dropped_total{job="collector",reason="queue_full"} == 0'
  'userevents_sdk_kafka_brokers_up{job="collector"} >= 1'
  'userevents_sdk_kafka_broker_up{job="collector"} == 1'
  'userevents_enrich_events_in_total{job="enrich"} >= 40'
  'userevents_enrich_events_out_total{job="enrich"} >= 40'
  'userevents_enrich_dropped_total{job="enrich",reason="stage"}'
  'userevents_enrich_dead_letters_total{job="enrich"} == 0'
  'userevents_enrich_txn_total{job="enrich",result="commit"} >= 1'
  'userevents_enrich_txn_total{job="enrich",result="abort"} == 0'
  'userevents_enrich_txn_events_sum{job="enrich"} >= 40'
  'userevents_enrich_txn_duration_seconds_count{job="enrich"} >= 1'
  'userevents_enrich_txn_commit_seconds_bucket{job="enrich",le="+Inf"} >= 1'
  "userevents_enrich_consumer_lag{job=\"enrich\",topic=\"$RUN.events.page_view\"} >= 0"
  'userevents_enrich_under_replicated_partitions{job="enrich"} == 0'
  'userevents_enrich_kafka_brokers_up{job="enrich"} >= 1'
  'userevents_enrich_kafka_broker_up{job="enrich"} == 1'
  'userevents_sink_events_in_total{job="sink"} >= 40'
  'userevents_sink_events_out_total{job="sink"} >= 40'
  'userevents_sink_batches_total{job="sink"} >= 1'
  'userevents_sink_commit_rows_count{job="sink"} >= 1'
  'userevents_sink_last_commit_timestamp_seconds{job="sink"} > 0'
  'userevents_sink_warehouse_errors_total{job="sink",retriable="false"} == 0'
  'userevents_sink_dead_letters_total{job="sink"} == 0'
  'userevents_sink_kafka_brokers_up{job="sink"} >= 1'
  "userevents_sink_consumer_lag{job=\"sink\",topic=\"$RUN.enriched\"} >= 0"
)
log "waiting for ${#EXPECTED[@]} expected series"
missing=("${EXPECTED[@]}")
while ((${#missing[@]} > 0)); do
  still=()
  for q in "${missing[@]}"; do
    n=$(series "$q")
    ((n > 0)) || still+=("$q")
  done
  missing=("${still[@]+"${still[@]}"}")
  ((${#missing[@]} == 0)) && break
  if ((SECONDS >= DEADLINE)); then
    for q in "${missing[@]}"; do log "no series: $q"; done
    die "${#missing[@]} expected series missing from Prometheus"
  fi
  sleep 1
done
log "all ${#EXPECTED[@]} expected series are in Prometheus"

# The alert rules loaded into the real Prometheus and evaluate without errors; none fires.
sleep 2
curl -fsS "$PROM/api/v1/rules" | python3 -c '
import json, sys
rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
bad = [(r["name"], r.get("lastError")) for r in rules if r.get("health") != "ok"]
firing = [r["name"] for r in rules if r.get("state") == "firing"]
assert len(rules) >= 15, "only %d rules loaded" % len(rules)
assert not bad, "rules not healthy: %s" % bad
assert not firing, "alerts firing on a healthy pipeline: %s" % firing
print("monitoring: %d alert rules loaded, evaluated, none firing" % len(rules), file=sys.stderr)
' || die "alert rules in Prometheus"

# Every query of the dashboard runs (Grafana's variables replaced by what "All" means).
python3 - "$MON/dashboard.json" "$PROM" <<'EOF' || die "dashboard queries"
import json, sys, urllib.parse, urllib.request
dash, prom = json.load(open(sys.argv[1])), sys.argv[2]
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
for e in exprs:
    q = (e.replace("$job", ".*").replace("$instance", ".*")
          .replace("$__rate_interval", "1m").replace("$__range", "5m"))
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        status = json.load(urllib.request.urlopen(url))["status"]
    except Exception as err:  # HTTP 400: a syntax error
        status = str(err)
    if status != "success":
        sys.exit("query of the dashboard fails (%s): %s" % (status, q))
print("monitoring: %d dashboard queries run" % len(exprs), file=sys.stderr)
EOF

# Every metric family the programs serve is on the dashboard and in the README.
families=$(for port in "$COLLECTOR" "$ENRICH" "$SINK"; do
  curl -fsS "http://127.0.0.1:$port/metrics" | sed -n 's/^# TYPE \([a-z_:]*\) .*/\1/p'
done | sort -u)
undocumented=0
for f in $families; do
  grep -Eq "$f([^a-z_]|_bucket|_sum|_count)" "$MON/dashboard.json" ||
    { log "not on the dashboard: $f"; undocumented=1; }
  grep -q "\`$f\`" "$MON/README.md" || { log "not in $MON/README.md: $f"; undocumented=1; }
done
((undocumented == 0)) || die "metric families missing from the dashboard or the README"
log "$(wc -w <<<"$families") metric families served, each on the dashboard and in the README"

# And the other way round: every family a dashboard panel or an alert queries is served (a
# panel on a name nothing exports stays empty, an alert on one never fires).
queried=$(grep -ohE 'userevents_[a-z0-9_]+' "$MON/dashboard.json" "$MON/alerts.yml" |
  sed -E 's/_(bucket|sum|count)$//' | sort -u)
unserved=0
for f in $queried; do
  grep -qx "$f" <<<"$families" || { log "queried, served by no program: $f"; unserved=1; }
done
((unserved == 0)) || die "the dashboard or the alerts query families no program serves"
log "$(wc -w <<<"$queried") families queried by the dashboard and the alerts, each served"

# The programs stop cleanly on SIGTERM (their /metrics servers included).
for i in 0 1 2; do
  kill -TERM "${PIDS[$i]}"
  rc=0
  wait "${PIDS[$i]}" || rc=$?
  ((rc == 0)) || die "program $i exited with $rc on SIGTERM"
done
PIDS=("${PIDS[3]}")
log "1 passed, 0 failed"
