#!/usr/bin/env bash
# Runs one test program with a time limit. A test that outlives it has hung: rather than eat
# the CI run's whole budget in silence, it prints every thread's stack (gdb) of the program and
# of its children, the tail of the logs of the services test/kafka.sh, test/postgres.sh and
# test/clickhouse.sh started (UE_KAFKA_DIR, UE_PG_DIR, UE_CH_DIR), kills them and exits 124.
# Otherwise it exits with the program's status.
#
# Usage: test/support/watchdog.sh SECONDS PROGRAM [ARGS...]
set -uo pipefail
limit=$1
shift

"$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
sleep "$limit" &
timer=$!
wait -n -p ended "$pid" "$timer"
rc=$?
if [[ ${ended:-} == "$pid" ]]; then
  kill "$timer" 2>/dev/null
  exit "$rc"
fi

stacks() { # PID
  echo "---- $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) (pid $1): every thread's stack ----"
  gdb -q -batch -p "$1" -ex 'thread apply all bt' 2>&1 | grep -v -e '^\[New LWP' -e '^warning:'
}

echo "watchdog: $* still running after ${limit} s: it hung" >&2
{
  family=("$pid" $(pgrep -P "$pid"))
  for p in "${family[@]}"; do stacks "$p"; done
  for log in ${UE_KAFKA_DIR:+"$UE_KAFKA_DIR"/node*/server.log} \
             ${UE_PG_DIR:+"$UE_PG_DIR"/run/postgres.log} ${UE_CH_DIR:+"$UE_CH_DIR"/log/*.log}; do
    [[ -f $log ]] || continue
    echo "---- tail of $log ----"
    tail -n 30 "$log"
  done
} >&2
kill -KILL "${family[@]}" 2>/dev/null
wait "$pid" 2>/dev/null
exit 124
