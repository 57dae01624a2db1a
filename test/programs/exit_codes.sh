#!/usr/bin/env bash
# The daemons say what is wrong and stop with the exit status their --help promises, instead
# of retrying what waiting cannot heal; what may heal (a warehouse not up yet) is retried and
# said at the default log level. Needs no server: nothing listens on 127.0.0.1:1.
#
# Usage: test/programs/exit_codes.sh [BUILD_DIR]     (make programs-check)
set -uo pipefail
build=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

# expect STATUS WORDS -- CMD...: CMD ends within 20 s with STATUS and stderr holding WORDS.
expect() {
  local want=$1 words=$2
  shift 3
  timeout 20 "$@" >/dev/null 2>"$tmp/err"
  local got=$?
  if [[ $got != "$want" ]] || ! grep -q -- "$words" "$tmp/err"; then
    echo "exit_codes: FAIL $*: exit $got (want $want), stderr:" >&2
    tail -n 3 "$tmp/err" >&2
    failed=1
  else
    echo "exit_codes: ok $* -> $got, says \"$words\""
  fi
}

expect 2 "kafka.bootstrap.servers is not set" -- "$build/enrichd"
expect 2 "warehouse.url is not set" -- "$build/whsinkd" -b 127.0.0.1:1
expect 2 "kafka.bootstrap.servers is not set" -- "$build/whsinkd" -w sqlite:"$tmp/x.db"
expect 2 "$tmp/no-dir/x.db" -- "$build/whsinkd" -b 127.0.0.1:1 -w sqlite:"$tmp/no-dir/x.db"
expect 2 "/proc/nope" -- "$build/whsinkd" -b 127.0.0.1:1 -w file:/proc/nope

# A warehouse that is not up yet is waited for, said at the default level; SIGTERM stops it.
"$build/whsinkd" -b 127.0.0.1:1 -w postgresql://127.0.0.1:1/db 2>"$tmp/pg" &
pid=$!
for _ in $(seq 100); do grep -q "retrying" "$tmp/pg" && break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null && grep -q "cannot start yet (retrying" "$tmp/pg"; then
  kill -TERM "$pid"
  wait "$pid"
  status=$?
  if [[ $status == 0 ]]; then
    echo "exit_codes: ok whsinkd retries an unreachable PostgreSQL and stops on SIGTERM"
  else
    echo "exit_codes: FAIL whsinkd retrying: SIGTERM gave exit $status" >&2
    failed=1
  fi
else
  echo "exit_codes: FAIL whsinkd gave up on an unreachable PostgreSQL:" >&2
  tail -n 3 "$tmp/pg" >&2
  kill -9 "$pid" 2>/dev/null
  failed=1
fi
exit $failed
