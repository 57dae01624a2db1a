#!/usr/bin/env bash
# test/bindings/run.sh - the Python and Go binding tests against a real Kafka broker.
#
# Builds the C libraries if needed, installs the Python package into a venv under build/
# exactly as a user does (pip install ./bindings/python) plus the test dependencies, compiles
# the Go tests (plain and -race), then starts one broker (test/kafka.sh; an exported
# KAFKA_BOOTSTRAP is used as is) and runs pytest, go test and go test -race against it.
#
# Environment: PYTHON (python3), UE_BINDINGS_VENV (build/bindings-venv), PYTEST_ARGS,
# GO_TEST_ARGS (extra arguments, e.g. "-run Leak"), UE_BINDINGS_SKIP_RACE=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
VENV=${UE_BINDINGS_VENV:-$ROOT/build/bindings-venv}
PY=$VENV/bin/python

log() { printf '== bindings: %s\n' "$*" >&2; }

# make libs; a sibling library that fails to build (one being written) does not stop us as
# long as libuserevents is built and up to date.
make_libs() {
  make -k -j2 libs >/dev/null && return 0
  local so
  so=$(readlink -f build/libuserevents.so.0 2>/dev/null) || so=
  if [[ -n $so && -f $so ]] && make -q "build/${so##*/}"; then
    log "warning: some C libraries failed to build; libuserevents is up to date"
    return 0
  fi
  echo "run.sh: libuserevents does not build" >&2
  return 1
}

if [[ ${UE_BINDINGS_UNDER_KAFKA:-} != 1 ]]; then
  # Everything that needs no broker first, so the broker does not idle through installs.
  log "C libraries"
  make_libs
  if [[ ! -x $PY ]]; then
    log "venv $VENV"
    "${PYTHON:-python3}" -m venv "$VENV" || {
      echo "cannot create a venv: on Debian, apt-get install python3-venv" >&2
      exit 1
    }
  fi
  log "pip install ./bindings/python[test]"
  "$PY" -m pip install -q --disable-pip-version-check "./bindings/python[test]"
  log "go test binaries (plain and -race)"
  (cd bindings/go && go vet ./... && go test -count=1 -run '^$' ./... >/dev/null &&
    if [[ ${UE_BINDINGS_SKIP_RACE:-0} != 1 ]]; then go test -race -count=1 -run '^$' ./... >/dev/null; fi)
  exec test/kafka.sh run -- env UE_BINDINGS_UNDER_KAFKA=1 "$0" "$@"
fi

[[ -n ${KAFKA_BOOTSTRAP:-} ]] || { echo "run.sh: KAFKA_BOOTSTRAP is not set" >&2; exit 1; }
rc=0
log "pytest (Python $("$PY" -c 'import sys; print(sys.version.split()[0])'), broker $KAFKA_BOOTSTRAP)"
# From bindings/python the tests import the installed package (src/ is not on sys.path). A
# pytest run past 15 minutes has hung (go test has its own 10-minute limit, with stacks).
(cd bindings/python && "$ROOT/test/support/watchdog.sh" 900 "$PY" -m pytest -p no:cacheprovider -q ${PYTEST_ARGS:-} tests) || rc=1
log "go test"
(cd bindings/go && go test -count=1 ${GO_TEST_ARGS:-} ./...) || rc=1
if [[ ${UE_BINDINGS_SKIP_RACE:-0} != 1 ]]; then
  log "go test -race"
  (cd bindings/go && go test -race -count=1 ${GO_TEST_ARGS:-} ./...) || rc=1
fi
exit "$rc"
