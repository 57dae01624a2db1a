#!/usr/bin/env bash
# Runs every integration test (BUILD_DIR/test/it_*) against real services, each started and
# always stopped by the project's scripts, nested so they all run at once:
#   test/kafka.sh run -- test/postgres.sh run -- test/clickhouse.sh run -- the tests
# A service already given (KAFKA_BOOTSTRAP, POSTGRES_URL, CLICKHOUSE_URL) is used as it is; the
# tests that stop a server then skip what they cannot stop. A test whose service is missing
# fails, it never passes silently. Every test runs even when one fails; the failed are named
# at the end. A test that runs past IT_TIMEOUT seconds (900) has hung: test/support/watchdog.sh
# prints its threads' stacks and the services' log tails, and it fails.
#
# Usage: test/integration/run.sh [BUILD_DIR]     (make integration builds what it needs)
# Environment: WHS_IT_EVENTS (20000), WHS_IT_KILLS (5), WHS_IT_FILTER (e.g. '*sqlite*'),
# IT_TIMEOUT (900).
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/../.."
shopt -s nullglob
tests=("$build"/test/it_*)
[[ ${#tests[@]} -gt 0 ]] || { echo "run.sh: no integration tests in $build/test" >&2; exit 1; }
export UE_BUILD_DIR=$build IT_TIMEOUT=${IT_TIMEOUT:-900}
exec test/kafka.sh run -- test/postgres.sh run -- test/clickhouse.sh run -- \
  bash -c 'failed=(); for t in "$@"; do echo "== $t"
           test/support/watchdog.sh "$IT_TIMEOUT" "$t" || failed+=("$t"); done
           [[ ${#failed[@]} -eq 0 ]] || { echo "run.sh: FAILED: ${failed[*]}" >&2; exit 1; }' \
  _ "${tests[@]}"
