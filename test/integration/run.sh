#!/usr/bin/env bash
# Runs the integration tests against a real Kafka broker: the one in KAFKA_BOOTSTRAP, or one
# that test/kafka.sh starts (and stops) for the run. Usage: test/integration/run.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/../.."
tests=("$build"/test/it_*)
[ -e "${tests[0]}" ] || { echo "no integration tests built in $build/test" >&2; exit 1; }
export UE_BUILD_DIR="$build"
exec test/kafka.sh run -- bash -c 'set -e; for t in "$@"; do echo "== $t"; "$t"; done' _ "${tests[@]}"
