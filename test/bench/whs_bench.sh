#!/usr/bin/env bash
# test/bench/whs_bench.sh BUILD_DIR - libwhsink's benchmark: rows per second the sink loads
# into PostgreSQL and ClickHouse, each beside the database's own bulk path loading the same
# rows in the same run (psql \copy FROM a file; one curl HTTP INSERT of a JSONEachRow file),
# as a ratio with the goal (>= 0.8). Prints the same table as test/bench/run.sh.
#
# Kafka, PostgreSQL and ClickHouse are started (and stopped) by test/kafka.sh,
# test/postgres.sh and test/clickhouse.sh, nested; exported KAFKA_BOOTSTRAP, POSTGRES_URL,
# CLICKHOUSE_URL are used as they are. A missed goal shows as "no" and the exit status stays 0;
# only a broken run (a load that fails or loses rows) exits non-zero.
#
# Environment: WHS_BENCH_ROWS (200000), WHS_BENCH_REPS (3), WHS_BENCH_ONLY (postgres|clickhouse).
set -euo pipefail

BUILD=${1:-build}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

if [[ ${WHS_BENCH_UNDER_SERVICES:-} != 1 ]]; then
  exec "$ROOT/test/kafka.sh" run -- "$ROOT/test/postgres.sh" run -- \
    "$ROOT/test/clickhouse.sh" run -- env WHS_BENCH_UNDER_SERVICES=1 "$HERE/whs_bench.sh" "$BUILD"
fi
for v in KAFKA_BOOTSTRAP POSTGRES_URL CLICKHOUSE_URL; do
  [[ -n ${!v:-} ]] || { echo "whs_bench.sh: $v is not set" >&2; exit 1; }
done
bin=$BUILD/bench/whs_bench
[[ -x $bin ]] || { echo "whs_bench.sh: $bin is missing (make $bin)" >&2; exit 1; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
t0=$SECONDS
rc=0
"$bin" >"$out" || rc=$?

row() { printf '%-50s %14s %14s %6s  %-8s %s\n' "$@"; }
echo
echo "libwhsink benchmark: PostgreSQL $(psql -X -A -t "$POSTGRES_URL" -c 'SHOW server_version' \
  2>/dev/null || echo '?'), ClickHouse $(curl -s "$(echo "$CLICKHOUSE_URL" |
  sed -E 's#clickhouse://([^/]+)/.*#http://\1/#')" --data-binary 'SELECT version()' \
  2>/dev/null || echo '?'), $(nproc) cores, $((SECONDS - t0)) s"
row "name" "sink" "peer" "ratio" "goal" "meets goal"
row "----" "----" "----" "-----" "----" "----------"
while IFS=$'\t' read -r tag name fig peer ratio goal meets; do
  if [[ $tag == ROW ]]; then row "$name" "$fig" "$peer" "$ratio" "$goal" "$meets"; fi
done <"$out"
while IFS=$'\t' read -r tag note; do
  if [[ $tag == NOTE ]]; then echo "  * $note"; fi
done <"$out"
if ((rc != 0)); then
  echo "whs_bench.sh: the benchmark failed (exit $rc): its figures are not valid" >&2
fi
exit "$rc"
