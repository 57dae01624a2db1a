#!/usr/bin/env bash
# test/bench/run.sh BUILD_DIR - runs every benchmark in BUILD_DIR/bench against one real Kafka
# broker and prints one table: each SDK figure beside its raw-librdkafka peer measured in the
# same run, their ratio and the goal. `make bench` calls it.
#
# The broker comes from test/kafka.sh (started and stopped here); an exported KAFKA_BOOTSTRAP
# is used as is. A benchmark is not a test: a missed goal shows as "no" and the exit status
# stays 0; only a broken run (a benchmark that fails, drops or loses events) exits non-zero.
#
# Environment: UE_BENCH_EVENTS (500000), UE_BENCH_TRACK_EVENTS (200000), UE_BENCH_REPS (5);
# bench_enrich's UE_BENCH_ENRICH_EVENTS (200000) and UE_BENCH_ENRICH_SETTINGS (see its header);
# bench_enrich_scale (1 and 2 processors) and bench_enrich_rebalance (joins and kills under a
# steady stream, UE_BENCH_REBALANCE_RATE 5000/s) run the same Streams peer in member mode.
# bench_enrich's Kafka Streams peer is built first by test/bench/streams/build.sh (Maven, offline
# after the first build); without it, the enrich table shows only the plain librdkafka peer.
set -euo pipefail

BUILD=${1:-build}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

if [[ ${UE_BENCH_UNDER_KAFKA:-} != 1 ]]; then
  exec "$ROOT/test/kafka.sh" run -- env UE_BENCH_UNDER_KAFKA=1 "$HERE/run.sh" "$BUILD"
fi
[[ -n ${KAFKA_BOOTSTRAP:-} ]] || { echo "run.sh: KAFKA_BOOTSTRAP is not set" >&2; exit 1; }

shopt -s nullglob
benches=("$BUILD"/bench/bench_*)
[[ ${#benches[@]} -gt 0 ]] || { echo "run.sh: no benchmarks in $BUILD/bench" >&2; exit 1; }

"$HERE/streams/build.sh" "$BUILD" ||
  echo "run.sh: the Kafka Streams peer did not build: bench_enrich runs without it" >&2

out=$(mktemp)
trap 'rm -f "$out"' EXIT
t0=$SECONDS
rc=0
for b in "${benches[@]}"; do
  echo "== $(basename "$b")" >&2
  # Details go to stderr as they come; ROW and NOTE lines are collected for the table.
  "$b" >>"$out" || rc=$?
done

row() { printf '%-42s %14s %14s %6s  %-14s %s\n' "$@"; }
echo
rdk=$(pkg-config --modversion rdkafka 2>/dev/null || echo "?")
echo "userevents benchmarks vs raw librdkafka $rdk, broker $KAFKA_BOOTSTRAP," \
  "$(nproc) cores, $((SECONDS - t0)) s"
row "name" "figure (SDK)" "peer (raw)" "SDK/raw" "goal" "meets goal"
row "----" "------------" "----------" "-------" "----" "----------"
while IFS=$'\t' read -r tag name fig peer ratio goal meets; do
  if [[ $tag == ROW ]]; then row "$name" "$fig" "$peer" "$ratio" "$goal" "$meets"; fi
done <"$out"
if grep -q "^EROW" "$out"; then
  erow() { printf '%-44s %16s %16s %7s  %-8s %-5s %17s %7s\n' "$@"; }
  echo
  echo "libenrich (consume -> enrich -> transactional produce) vs Kafka Streams and plain librdkafka"
  erow "setting: figure" "enrich" "Kafka Streams" "e/KS" "goal" "meets" "plain librdkafka" "e/plain"
  erow "----------------" "------" "-------------" "----" "----" "-----" "----------------" "-------"
  while IFS=$'\t' read -r tag name fig ks ratio goal meets plain pratio; do
    if [[ $tag == EROW ]]; then erow "$name" "$fig" "$ks" "$ratio" "$goal" "$meets" "$plain" "$pratio"; fi
  done <"$out"
fi
if grep -q "^SROW" "$out"; then
  srow() { printf '%-44s %16s %16s %7s  %-8s %s\n' "$@"; }
  echo
  echo "libenrich scales out: 1 and 2 processors of one group vs Kafka Streams with 1 and 2 instances"
  srow "processors: figure" "enrich" "Kafka Streams" "e/KS" "goal" "meets"
  srow "------------------" "------" "-------------" "----" "----" "-----"
  while IFS=$'\t' read -r tag name fig ks ratio goal meets; do
    if [[ $tag == SROW ]]; then srow "$name" "$fig" "$ks" "$ratio" "$goal" "$meets"; fi
  done <"$out"
fi
if grep -q "^RROW" "$out"; then
  rrow() { printf '%-48s %18s %18s %18s  %-10s %s\n' "$@"; }
  echo
  echo "libenrich rebalances vs Kafka Streams (2 members, a steady stream): commits seen from outside"
  rrow "event: figure" "enrich" "Kafka Streams" "KS, 1 standby" "goal" "meets"
  rrow "-------------" "------" "-------------" "-------------" "----" "-----"
  while IFS=$'\t' read -r tag name e ks sb goal meets; do
    if [[ $tag == RROW ]]; then rrow "$name" "$e" "$ks" "$sb" "$goal" "$meets"; fi
  done <"$out"
fi
while IFS=$'\t' read -r tag note; do
  if [[ $tag == NOTE ]]; then echo "  * $note"; fi
done <"$out"
if ((rc != 0)); then
  echo "run.sh: a benchmark failed (exit $rc): its figures are not valid" >&2
fi
exit "$rc"
