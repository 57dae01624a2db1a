#!/usr/bin/env bash
# bindings/bench.sh - events/s tracked from Python and from Go through the bindings, each
# beside the usual alternative producing the same events in the same run (confluent-kafka for
# Python, franz-go for Go), against one real broker (test/kafka.sh; an exported
# KAFKA_BOOTSTRAP is used as is). Prints both tables and the ratios.
#
# Environment: UE_BENCH_PY_EVENTS (100000), UE_BENCH_GO_EVENTS (200000), UE_BENCH_REPS (3),
# UE_BINDINGS_VENV (build/bindings-venv, shared with test/bindings/run.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${UE_BINDINGS_VENV:-$ROOT/build/bindings-venv}
REPS=${UE_BENCH_REPS:-3}

if [[ ${UE_BENCH_UNDER_KAFKA:-} != 1 ]]; then
  make -k -j2 libs >/dev/null || [[ -e build/libuserevents.so.0 ]]
  [[ -x $VENV/bin/python ]] || "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "./bindings/python[bench]"
  (cd bindings/go && go build -o "$ROOT/build/ue-bench-go" ./cmd/ue-bench)
  exec test/kafka.sh run -- env UE_BENCH_UNDER_KAFKA=1 "$0" "$@"
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "== Python: userevents vs confluent-kafka" >&2
"$VENV/bin/python" bindings/python/bench.py --events "${UE_BENCH_PY_EVENTS:-100000}" \
  --reps "$REPS" | tee -a "$out"
echo "== Go: userevents vs franz-go" >&2
"$ROOT/build/ue-bench-go" -events "${UE_BENCH_GO_EVENTS:-200000}" -reps "$REPS" | tee -a "$out"
echo
echo "ratios (userevents / alternative, events/s until acknowledged, medians of $REPS):"
grep '^RATIO' "$out" | sed 's/^RATIO /  /'
