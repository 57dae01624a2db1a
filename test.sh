#!/usr/bin/env bash
# The test command: set up what is missing, build warnings-clean, check the C formatting
# (make format-check), then run the unit tests (plain and under ASan/UBSan), the packaging
# checks, the integration tests against a real Kafka broker (and PostgreSQL, ClickHouse)
# started for the run (or the cluster in KAFKA_BOOTSTRAP), the pipeline under faults on its own
# 3-broker cluster (test/chaos/run.sh --short), the Python and Go binding tests, a short
# fuzzing pass of every decoder, and the Python wheel and Debian packages installed and used.
set -euo pipefail
cd "$(dirname "$0")"
export PATH=$PATH:/usr/local/go/bin  # the machine's Go, for bindings/go
./setup.sh
make -j2 WARN="-Wall -Wextra -Werror"
make format-check
make test WARN="-Wall -Wextra -Werror"
# The whole pipeline under faults, the short schedule (about 4 minutes): it exits non-zero when
# any stage lost or duplicated an event, or something hung.
make -j2 WARN="-Wall -Wextra -Werror" build/chaos/ue-chaos
test/chaos/run.sh --short
test/bindings/run.sh
test/monitoring/run.sh
# The main job end to end on the embedded defaults: it exits non-zero unless every tracked
# event landed in the warehouse exactly once.
build/ue-demo --duration 3 --rate 500 --warehouse "sqlite:build/ue-demo-test.db"
FUZZ_SECONDS=${FUZZ_SECONDS:-10} test/fuzz/run.sh
# The packages as users get them: the Python wheel in a fresh venv without the build tree, then
# the Debian packages built, lintian-clean, installed on this machine, used and purged (last:
# it installs into the system).
make wheel-check
make deb-check
