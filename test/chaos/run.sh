#!/usr/bin/env bash
# The whole pipeline under faults (issue 9): a 3-broker Kafka cluster (replication factor 3,
# min.insync.replicas 2), two producers with spools (build/ue-track), build/enrichd, two
# build/whsinkd in one group into PostgreSQL and one into ClickHouse, while a schedule SIGKILLs
# and restarts a broker, enrichd and every whsinkd, kills PostgreSQL and ClickHouse and starts
# them again, freezes a sink past its session timeout (a zombie) and SIGTERMs a producer
# mid-stream. Then build/chaos/ue-chaos verify, which links none of the project's libraries,
# counts every tracked event at every stage, and the recovery time of each fault and the peak
# memory of each daemon are printed. Last, a fresh enrichd and a fresh whsinkd each catch up the
# whole run from its start, and their peak memory is printed beside the goal (64 MB).
#
# Usage:
#   test/chaos/run.sh [--short] [--build DIR]
#     --short      the cheap schedule ./test.sh runs: 100,000 events, about 4 minutes
#     --build DIR  where the programs are (default build; built when missing)
#
# Exit 0 only when every stage holds each tracked event exactly once, nothing hung, and no
# program died unless the schedule killed it.
#
# Environment: CHAOS_EVENTS (1000000; --short 100000), CHAOS_SECONDS (how long the producers
# produce; 480; --short 200), CHAOS_SESSION_MS (consumer session timeout of the daemons, 6000),
# CHAOS_STALL_S (no progress for this long once the producers are done counts as a hang, 120),
# CHAOS_LOGS (/tmp/chaos-logs/run-DATE-TIME, also /tmp/chaos-logs/latest: the programs' logs,
# samples, faults, the verifier's tables).
# The services live in /tmp/chaos-kafka, /tmp/chaos-pg and /tmp/chaos-ch (their logs stay
# there) and are always stopped; the spools and id files in /tmp/chaos-work.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  sed -n '12,25s/^# \{0,1\}//p' "$0" >&2
  exit "${1:-2}"
}

RAW_TOPICS=events.page_view,events.click,events.purchase
KDIR=/tmp/chaos-kafka PGDIR=/tmp/chaos-pg CHDIR=/tmp/chaos-ch WORK=/tmp/chaos-work

# ---- outside the services: options, build, then the services around the inner run ---------

outer() {
  local short=0
  CHAOS_BUILD=build
  while [[ $# -gt 0 ]]; do
    case $1 in
    --short) short=1 && shift ;;
    --build) CHAOS_BUILD=${2:?--build needs a directory} && shift 2 ;;
    -h | --help) usage 0 ;;
    *) usage ;;
    esac
  done
  if ((short)); then
    CHAOS_EVENTS=${CHAOS_EVENTS:-100000} CHAOS_SECONDS=${CHAOS_SECONDS:-200} CHAOS_ROUNDS=1
  else
    CHAOS_EVENTS=${CHAOS_EVENTS:-1000000} CHAOS_SECONDS=${CHAOS_SECONDS:-480} CHAOS_ROUNDS=2
  fi
  CHAOS_LOGS=${CHAOS_LOGS:-/tmp/chaos-logs/run-$(date +%Y%m%d-%H%M%S)}
  export CHAOS_BUILD CHAOS_EVENTS CHAOS_SECONDS CHAOS_ROUNDS CHAOS_LOGS
  export CHAOS_SESSION_MS=${CHAOS_SESSION_MS:-6000} CHAOS_STALL_S=${CHAOS_STALL_S:-120}
  local b=$CHAOS_BUILD
  if [[ ! -x $b/enrichd || ! -x $b/whsinkd || ! -x $b/ue-track || ! -x $b/chaos/ue-chaos ]]; then
    make -j2 BUILD="$b" all "$b/chaos/ue-chaos" >&2
  fi
  rm -rf "$KDIR" "$PGDIR" "$CHDIR" "$WORK" "$CHAOS_LOGS"
  mkdir -p "$CHAOS_LOGS" "$WORK"
  ln -sfn "$CHAOS_LOGS" "$(dirname "$CHAOS_LOGS")/latest"
  echo "chaos: $CHAOS_EVENTS events over ${CHAOS_SECONDS}s, $CHAOS_ROUNDS round(s) of faults;" \
    "logs in $CHAOS_LOGS" >&2
  # Our own cluster and servers even when the caller has some: the schedule stops them.
  env -u KAFKA_BOOTSTRAP -u POSTGRES_URL -u CLICKHOUSE_URL \
    test/kafka.sh run --brokers 3 --dir "$KDIR" -- \
    test/postgres.sh run --dir "$PGDIR" -- \
    test/clickhouse.sh run --dir "$CHDIR" -- \
    "$0" --inner
}

if [[ ${1:-} != --inner ]]; then
  SECONDS=0
  rc=0
  outer "$@" || rc=$?
  echo "chaos: wall time ${SECONDS}s, exit $rc" >&2
  exit "$rc"
fi

# ---- inside: KAFKA_BOOTSTRAP, POSTGRES_URL, CLICKHOUSE_URL and the UE_*_DIR are set ---------

B=$CHAOS_BUILD L=$CHAOS_LOGS
N=$CHAOS_EVENTS P=$CHAOS_SECONDS
SESSION=$CHAOS_SESSION_MS HEARTBEAT=$((CHAOS_SESSION_MS / 6))
FAILURES=()
declare -A PID LIFE PTO PNEXT
IDS_ARGS=()
WATCH_PID=
T0=$(date +%s%3N)

now_ms() { date +%s%3N; }
note() {
  local t
  t=$(now_ms)
  printf '[%7.1fs] %s\n' "$(awk -v d=$((t - T0)) 'BEGIN { print d / 1000 }')" "$*" |
    tee -a "$L/schedule.log" >&2
}
fail() {
  FAILURES+=("$*")
  note "FAIL: $*"
}

# ---- the daemons: enrichd, pg1 + pg2 (one group), ch (its own group) -----------------------

# The command line of daemon $1, into CMD.
daemon_cmd() {
  local sink=(-b "$KAFKA_BOOTSTRAP" -X columns.promote=seq:int -X retry.backoff.max.ms=2000
    -X "kafka.session.timeout.ms=$SESSION" -X "kafka.heartbeat.interval.ms=$HEARTBEAT" -s 10)
  case $1 in
  enrichd)
    CMD=("$B/enrichd" -b "$KAFKA_BOOTSTRAP" -X group.id=chaos-enrich
      -X "input.topics=$RAW_TOPICS" -X "kafka.consumer.session.timeout.ms=$SESSION"
      -X "kafka.consumer.heartbeat.interval.ms=$HEARTBEAT" -s 10000)
    ;;
  pg1 | pg2) CMD=("$B/whsinkd" -w "$POSTGRES_URL" -g chaos-pg -i "$1" "${sink[@]}") ;;
  ch) CMD=("$B/whsinkd" -w "$CLICKHOUSE_URL" -g chaos-ch -i "$1" "${sink[@]}") ;;
  esac
}

start_daemon() {
  local name=$1
  LIFE[$name]=$((${LIFE[$name]:-0} + 1))
  daemon_cmd "$name"
  echo "=== $name life ${LIFE[$name]} at $(date -u +%FT%T.%3NZ)" >>"$L/$name.log"
  # Its own session: a SIGSTOPped daemon in ours would make the kernel SIGHUP the whole
  # process group once it is orphaned (setsid execs, so $! is the daemon).
  setsid "${CMD[@]}" >>"$L/$name.log" 2>&1 &
  PID[$name]=$!
}

# VmHWM (peak resident set) of a daemon's current life, recorded just before it is stopped.
record_rss() {
  local name=$1 why=$2 kb
  kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/${PID[$name]}/status" 2>/dev/null || true)
  echo "$name ${LIFE[$name]} ${kb:-?} $why" >>"$L/rss.tsv"
}

# Signals a daemon and reaps it; its wait status goes to STATUS.
signal_daemon() {
  STATUS=0
  kill "-$2" "${PID[$1]}" 2>/dev/null || true
  wait "${PID[$1]}" 2>/dev/null || STATUS=$?
}

# A daemon that ended without being told to is a failure; it is started again.
check_daemons() {
  local name st
  for name in enrichd pg1 pg2 ch; do
    if ! kill -0 "${PID[$name]}" 2>/dev/null; then
      st=0
      wait "${PID[$name]}" 2>/dev/null || st=$?
      fail "$name (life ${LIFE[$name]}) exited on its own with status $st; restarting it"
      start_daemon "$name"
    fi
  done
}

# ---- the producers: A has seqs [0, N/2), B [N/2, N); each with its own spool ---------------

RATE=$(awk -v n="$N" -v p="$P" 'BEGIN { printf "%.3f", n / 2 / p }')

start_producer() {
  local p=$1 from=$2 life ids
  LIFE[$p]=$((${LIFE[$p]:-0} + 1))
  life=${LIFE[$p]}
  ids=$WORK/ids.$p.$life
  PNEXT[$p]=$from
  IDS_ARGS+=(--ids "$ids:$from")
  echo "=== producer $p life $life from seq $from at $(date -u +%FT%T.%3NZ)" >>"$L/producer-$p.log"
  "$B/chaos/ue-chaos" gen --from "$from" --to "${PTO[$p]}" --rate "$RATE" |
    "$B/ue-track" -b "$KAFKA_BOOTSTRAP" -s "$WORK/spool-$p" -X queue.full.policy=block \
      -X queue.block.timeout.ms=60000 >"$ids" 2>>"$L/producer-$p.log" &
  PID[$p]=$!
}

# Runs ue-track on a producer's spool with nothing to read until the spool is delivered.
drain_spool() {
  local p=$1 i
  for i in 1 2 3 4 5; do
    grep -q 'not all events acknowledged' <(tail -n 3 "$L/producer-$p.log") || return 0
    note "producer $p left events in its spool: draining it (try $i)"
    echo "=== producer $p drain $i at $(date -u +%FT%T.%3NZ)" >>"$L/producer-$p.log"
    "$B/ue-track" -b "$KAFKA_BOOTSTRAP" -s "$WORK/spool-$p" </dev/null >/dev/null \
      2>>"$L/producer-$p.log" || true
  done
  fail "producer $p: its spool still holds events after 5 drains"
}

# ---- the schedule ---------------------------------------------------------------------------

FAULT_T=0 FAULT_NAME=
fault_begin() {
  FAULT_T=$(now_ms) FAULT_NAME=$1
  note "fault: $1"
}
fault_end() {
  echo "$FAULT_T $(now_ms) $FAULT_NAME" >>"$L/faults.tsv"
  note "back: $FAULT_NAME"
}

# Sleeps until fraction $1 of the producing time (or until the last fault allows it),
# checking the daemons every second.
NEXT_OK=0
at() {
  local due
  due=$(awk -v t0="$T0" -v p="$P" -v f="$1" 'BEGIN { printf "%.0f", t0 + f * p * 1000 }')
  ((due >= NEXT_OK)) || due=$NEXT_OK
  while (($(now_ms) < due)); do
    check_daemons
    sleep 1
  done
}
pause() {
  local end=$(($(now_ms) + $1 * 1000))
  while (($(now_ms) < end)); do sleep 0.5; done
}
# The next fault waits until the pipeline flows again (at most 60 s) and 5 s more: each
# recovery is measured alone.
done_fault() {
  local back
  back=$(now_ms)
  fault_end
  await_flow "$back"
  NEXT_OK=$(($(now_ms) + 5000))
}

# True when, since 2 s after time $1 (ms; a sample may be a second old), every partition of
# the enrich group's offsets and of both sinks' offsets moved, or has nothing to do (caught up
# with the raw topics, or with the enriched topic but for its transaction markers).
flowing() {
  awk -v back="$1" '
    { n = split($3, v, ","); bad = 0
      for (i = 1; i <= n; i++) if (v[i] < 0) bad = 1
      if (bad) next
      cnt[$2] = n
      for (i = 1; i <= n; i++) {
        last[$2, i] = v[i]
        if ($1 >= back + 2000 && !(($2, i) in first)) first[$2, i] = v[i]
      } }
    function ok(k, up, slack,   i) {
      if (!(k in cnt)) return 0
      for (i = 1; i <= cnt[k]; i++) {
        if (!((k, i) in first)) return 0
        if (!(last[k, i] > first[k, i]) && last[up, i] - last[k, i] > slack) return 0
      }
      return 1
    }
    END { exit !(ok("enrich", "raw", 0) && ok("pg", "enriched", 2) && ok("ch", "enriched", 2)) }
  ' "$L/samples.tsv"
}

await_flow() {
  local end=$(($(now_ms) + 60000))
  until flowing "$1"; do
    if (($(now_ms) > end)); then
      note "the pipeline did not flow again within 60 s of $FAULT_NAME"
      return 0
    fi
    check_daemons
    sleep 1
  done
}

kill_restart() {
  local name=$1
  fault_begin "SIGKILL $name (life ${LIFE[$name]}), restart"
  record_rss "$name" SIGKILL
  signal_daemon "$name" KILL
  ((STATUS == 137)) || fail "$name: wait status $STATUS after SIGKILL (it had exited before)"
  start_daemon "$name"
  done_fault
}

broker_kill() {
  fault_begin "SIGKILL broker $1, restart after 8 s"
  test/kafka.sh stop-node "$1" --kill --dir "$KDIR" 2>>"$L/services.log"
  pause 8
  test/kafka.sh start-node "$1" --dir "$KDIR" 2>>"$L/services.log" ||
    fail "broker $1 did not come back"
  done_fault
}

server_kill() { # postgres|clickhouse
  local script=test/$1.sh dir=$PGDIR
  [[ $1 == postgres ]] || dir=$CHDIR
  fault_begin "SIGKILL $1 server, restart after 10 s"
  "$script" stop-server --kill --dir "$dir" 2>>"$L/services.log"
  pause 10
  "$script" start-server --dir "$dir" 2>>"$L/services.log" || fail "$1 did not come back"
  done_fault
}

zombie() {
  local name=$1 frozen=$((SESSION * 2 / 1000 + 2))
  fault_begin "SIGSTOP $name for ${frozen}s (session timeout $((SESSION / 1000))s), SIGCONT"
  record_rss "$name" SIGSTOP
  kill -STOP "${PID[$name]}" 2>/dev/null || fail "$name was not there to SIGSTOP"
  pause "$frozen"
  kill -CONT "${PID[$name]}" 2>/dev/null || true
  done_fault
}

producer_term() {
  local p=$1 st=0 tracked
  fault_begin "SIGTERM producer $p mid-stream, a new one on its spool"
  kill -TERM "${PID[$p]}" 2>/dev/null || true
  wait "${PID[$p]}" 2>/dev/null || st=$?
  tracked=$(wc -l <"$WORK/ids.$p.${LIFE[$p]}")
  # $st is the pipeline's (pipefail): 141 is the generator finding the pipe closed.
  note "producer $p (life ${LIFE[$p]}) ended (status $st) after tracking $tracked events"
  pause 2
  start_producer "$p" $((PNEXT[$p] + tracked))
  done_fault
}

# One round of every fault, spread over the fractions [$1, $1 + $2) of the producing time;
# round $3 (0, 1) picks the broker and the producer, and the second round freezes the
# ClickHouse sink too.
round() {
  local o=$1 w=$2 r=$3 f
  local producers=(A B)
  for f in 0.02 0.14 0.22 0.30 0.38 0.50 0.62 0.74 0.82 0.90; do
    at "$(awk -v o="$o" -v w="$w" -v f="$f" 'BEGIN { print o + f * w }')"
    case $f in
    0.02) broker_kill $((2 + r)) ;;
    0.14) kill_restart enrichd ;;
    0.22) producer_term "${producers[r]}" ;;
    0.30) kill_restart pg1 ;;
    0.38) server_kill postgres ;;
    0.50) zombie pg2 ;;
    0.62) server_kill clickhouse ;;
    0.74) kill_restart ch ;;
    0.82) kill_restart pg2 ;;
    0.90) if ((r == 1)); then zombie ch; fi ;;
    esac
  done
}

# Faults start once events flow through every stage into both tables (at most 120 s).
warm_up() {
  local end=$(($(now_ms) + 120000))
  while (($(latest pg_rows) <= 0 || $(latest ch_rows) <= 0)); do
    if (($(now_ms) > end)); then
      fail "no rows in both tables 120 s after the start: see $L/*.log"
      return 0
    fi
    check_daemons
    sleep 1
  done
  note "events flow into both tables: the faults begin"
}

# ---- after the schedule: producers done, pipeline drained, daemons stopped -----------------

finish_producers() {
  local p st
  for p in A B; do
    st=0
    wait "${PID[$p]}" || st=$?
    ((st == 0)) || fail "producer $p (life ${LIFE[$p]}) exited with status $st"
    drain_spool "$p"
  done
  if grep -E '^ue-track: ' "$L"/producer-*.log | grep -v -e 'not all events acknowledged' \
    -e 'stopped by signal' >"$WORK/producer-errors"; then
    fail "the producers reported errors (first: $(head -n 1 "$WORK/producer-errors"))"
  fi
  producer_losses
}

# Each producer run's last statistics: events the SDK gave up on are in no topic and in no
# spool, lost before Kafka.
producer_losses() {
  local p line
  for p in A B; do
    awk -v p="$p" '
      /^=== producer/ { run = $0; sub(/ at .*/, "", run) }
      /^\{"tracked"/ {
        failed = $0; sub(/.*"failed":/, "", failed); sub(/,.*/, "", failed)
        dropped = 0; rest = $0
        while (match(rest, /"dropped_[a-z_]+":[0-9]+/)) {
          d = substr(rest, RSTART, RLENGTH); sub(/.*:/, "", d); dropped += d
          rest = substr(rest, RSTART + RLENGTH)
        }
        if (failed + dropped > 0)
          printf "%s: the SDK gave up on %d events (failed %d, dropped %d): lost before Kafka\n",
            substr(run, 5), failed + dropped, failed, dropped
      }' "$L/producer-$p.log"
  done >"$WORK/producer-losses"
  while IFS= read -r line; do fail "$line"; done <"$WORK/producer-losses"
}

# The sum of the latest complete sample of kind $1 (test/chaos/watch.c) taken at or after
# time $2 (ms, default 0), -1 when none is.
latest() {
  tac "$L/samples.tsv" | awk -v k="$1" -v since="${2:-0}" '$1 < since { exit }
    $2 == k && $3 !~ /-1/ {
      n = split($3, v, ","); s = 0; for (i = 1; i <= n; i++) s += v[i]; print s; found = 1; exit
    } END { if (!found) print -1 }'
}

# Once the producers are done the raw topics hold all they will: waits until enrichd committed
# all of them and both tables hold a row per tracked event, or until nothing moved for
# CHAOS_STALL_S seconds: a hang. Fewer raw records than tracked events were lost before Kafka.
wait_drained() {
  local tracked=$1 raw enr pgr chr sig last_sig="" since after
  since=$(now_ms)
  after=$((since + 1000)) # samples from then on were taken after the last delivery
  while true; do
    check_daemons
    raw=$(latest raw "$after") enr=$(latest enrich "$after")
    pgr=$(latest pg_rows "$after") chr=$(latest ch_rows "$after")
    # The tables hold each event once; the raw topics may hold resent copies (one id).
    if ((raw >= 0 && pgr >= tracked && chr >= tracked && enr >= raw)); then
      note "drained: raw $raw, enrich committed $enr, postgres $pgr rows, clickhouse $chr rows"
      ((raw >= tracked)) ||
        fail "the raw topics hold $raw records of $tracked tracked events: lost before Kafka"
      return 0
    fi
    sig="$enr $pgr $chr"
    if [[ $sig != "$last_sig" ]]; then
      last_sig=$sig since=$(now_ms)
    elif (($(now_ms) - since > CHAOS_STALL_S * 1000)); then
      fail "HANG: no progress for ${CHAOS_STALL_S}s: raw $raw, enrich committed $enr," \
        "postgres $pgr rows, clickhouse $chr rows (tracked $tracked)"
      return 1
    fi
    sleep 2
  done
}

stop_daemons() {
  local name st end
  for name in enrichd pg1 pg2 ch; do
    record_rss "$name" end
    kill -TERM "${PID[$name]}" 2>/dev/null || true
  done
  end=$(($(now_ms) + 60000))
  for name in enrichd pg1 pg2 ch; do
    while kill -0 "${PID[$name]}" 2>/dev/null && (($(now_ms) < end)); do sleep 0.2; done
    if kill -0 "${PID[$name]}" 2>/dev/null; then
      fail "HANG: $name did not exit within 60 s of SIGTERM; SIGKILL"
      kill -KILL "${PID[$name]}" 2>/dev/null || true
    fi
    st=0
    wait "${PID[$name]}" 2>/dev/null || st=$?
    ((st == 0)) || fail "$name exited with status $st on SIGTERM (see $L/$name.log)"
  done
}

# ---- memory at a backlog: fresh daemons catch up the whole run -----------------------------

# Peak memory while catching up a backlog (issue 9): once the run is verified, a fresh enrichd
# (its own group and output topics) reads every raw record from the start, and a fresh whsinkd
# (its own group and PostgreSQL table) loads every enriched event from the start, one at a time,
# at their default settings; their VmHWM when caught up goes to backlog.txt beside the goal.
BACKLOG_GOAL_MB=64
catch_up() { # name, command to run until caught up, then its VmHWM into backlog.txt
  local name=$1 done_cmd=$2 pid start kb end
  shift 2
  start=$(now_ms)
  "$@" >>"$L/$name.log" 2>&1 &
  pid=$!
  end=$((start + 600000))
  until eval "$done_cmd"; do
    if ! kill -0 "$pid" 2>/dev/null || (($(now_ms) > end)); then
      fail "$name did not catch up the backlog (see $L/$name.log)"
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      return 0
    fi
    sleep 1
  done
  kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
  kill -TERM "$pid" && wait "$pid" || fail "$name exited with status $? on SIGTERM"
  awk -v n="$name" -v kb="$kb" -v s="$((($(now_ms) - start) / 1000))" -v g="$BACKLOG_GOAL_MB" \
    'BEGIN { printf "  %-8s peak %6.1f MB (goal %d MB: %s), caught up in %d s\n", n, kb / 1024,
      g, kb / 1024 <= g ? "met" : "NOT met", s }' >>"$L/backlog.txt"
}

enrichd_consumed() { # the consumed counter of the last statistics line of log $1
  local n
  n=$(grep -o ' consumed=[0-9]*' "$1" 2>/dev/null | tail -n 1 | cut -d= -f2)
  echo "${n:-0}"
}

backlog_memory() {
  local raw=$1 rows=$2 b=chaos-backlog
  note "backlog: a fresh enrichd reads $raw raw records, a fresh whsinkd loads $rows rows"
  "$B/chaos/ue-chaos" topics -b "$KAFKA_BOOTSTRAP" --rf 3 --min-isr 2 "$b.enriched:4" \
    "$b.dead_letter:3" "$b.aggregates:1" "$b.alerts:1" "$b.changelog:3:compact" \
    "$b.repartition:3" 2>>"$L/services.log"
  echo "peak memory catching up the whole run from the start, default settings" >"$L/backlog.txt"
  catch_up enrichd-backlog "((\$(enrichd_consumed $L/enrichd-backlog.log) >= raw))" \
    "$B/enrichd" -b "$KAFKA_BOOTSTRAP" -i backlog -X "group.id=$b" -X "input.topics=$RAW_TOPICS" \
    -X "output.topic=$b.enriched" -X "dead_letter.topic=$b.dead_letter" \
    -X "aggregates.topic=$b.aggregates" -X "alerts.topic=$b.alerts" -s 1000
  catch_up whsinkd-backlog \
    "((\$(psql -X -A -t \"$POSTGRES_URL\" -c 'SELECT count(*) FROM backlog' 2>/dev/null || echo 0) >= rows))" \
    "$B/whsinkd" -w "$POSTGRES_URL" -g "$b" -X table=backlog -b "$KAFKA_BOOTSTRAP" -s 10
}

cleanup() {
  local p
  trap - EXIT
  for p in "${PID[@]}" $WATCH_PID; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${PID[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

main() {
  note "bootstrap $KAFKA_BOOTSTRAP, postgres $POSTGRES_URL, clickhouse $CLICKHOUSE_URL"
  "$B/chaos/ue-chaos" topics -b "$KAFKA_BOOTSTRAP" --rf 3 --min-isr 2 \
    events.page_view:3 events.click:3 events.purchase:3 events.enriched:4 \
    events.dead_letter:3 events.aggregates:1 events.alerts:1 chaos-enrich.changelog:3:compact \
    chaos-enrich.repartition:3 \
    users.profiles:1:compact 2>>"$L/services.log"
  test/kafka.sh topics --dir "$KDIR" 2>/dev/null | grep -v '^__' | sed 's/^/  topic /' >&2 || true
  "$B/chaos/ue-chaos" watch -b "$KAFKA_BOOTSTRAP" --raw "$RAW_TOPICS" --group chaos-enrich \
    --pg "$POSTGRES_URL" --ch "$CLICKHOUSE_URL" >"$L/samples.tsv" 2>>"$L/watch.log" &
  WATCH_PID=$!
  local name
  for name in enrichd pg1 pg2 ch; do start_daemon "$name"; done
  PTO[A]=$((N / 2)) PTO[B]=$N
  T0=$(now_ms)
  echo "$T0" >"$L/t0"
  note "producers start: $N events at $RATE events/s each over ${P}s"
  start_producer A 0
  start_producer B $((N / 2))

  warm_up
  local r w
  w=$(awk -v r="$CHAOS_ROUNDS" 'BEGIN { print 1 / r }')
  for ((r = 0; r < CHAOS_ROUNDS; r++)); do
    round "$(awk -v r="$r" -v w="$w" 'BEGIN { print r * w }')" "$w" "$r"
  done
  note "schedule done; waiting for the producers"
  finish_producers
  local tracked
  tracked=$(cat "$WORK"/ids.* | wc -l)
  note "producers done: $tracked events tracked of $N generated"
  wait_drained "$tracked" || true
  stop_daemons
  kill -TERM "$WATCH_PID" 2>/dev/null || true
  wait "$WATCH_PID" || true
  WATCH_PID=

  note "verifying"
  local vrc=0
  "$B/chaos/ue-chaos" verify -b "$KAFKA_BOOTSTRAP" --events "$N" "${IDS_ARGS[@]}" \
    --raw "$RAW_TOPICS" --pg "$POSTGRES_URL" --ch "$CLICKHOUSE_URL" \
    >"$L/verify.txt" 2>>"$L/verify.log" || vrc=$?
  ((vrc == 0)) || fail "the verifier found lost, duplicated or unknown events (exit $vrc)"
  python3 test/chaos/report.py "$L" >"$L/report.txt" || fail "report.py failed"
  backlog_memory "$(latest raw)" "$tracked"
  cat "$L/verify.txt" "$L/report.txt" "$L/backlog.txt"
  if ((${#FAILURES[@]})); then
    printf '\nchaos: FAILED\n' >&2
    printf '  - %s\n' "${FAILURES[@]}" >&2
    return 1
  fi
  printf '\nchaos: passed: every tracked event exactly once at every stage\n' >&2
}

main
