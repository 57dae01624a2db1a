#!/usr/bin/env bash
# Installs what the build, the demo and the tests need, and only what is missing: Debian
# packages through apt-get, and the Apache Kafka jars (cached) through test/kafka.sh fetch.
# Run by demo.sh and test.sh; safe to run again (it does nothing the second time).
set -euo pipefail
cd "$(dirname "$0")"

# Package -> why we need it.
packages=(
  gcc make pkg-config          # the C build
  help2man                     # the daemons' man pages, from their --help (make install)
  protobuf-c-compiler libprotobuf-c-dev  # the event schema (proto/) to C
  librdkafka-dev               # Kafka producer and consumer
  libzstd-dev                  # spool frames, HTTP bodies
  zlib1g-dev                   # gzip bodies (collector, ClickHouse)
  libcurl4-openssl-dev         # the SDK's HTTP transport, the ClickHouse backend
  libmicrohttpd-dev            # the collector's HTTP server
  libcjson-dev                 # JSON: ue-track's NDJSON, the collector's web batches
  libmaxminddb-dev             # libenrich's geo-IP stage
  libmaxmind-db-writer-perl    # writes the geo-IP test database at test time
  libpq-dev                    # libwhsink's PostgreSQL backend
  libsqlite3-dev sqlite3       # libwhsink's embedded default (and its CLI to query it)
  libcmocka-dev                # unit and integration tests
  clang libclang-rt-14-dev     # libFuzzer targets of the decoders
  clang-format                 # make format-check (.clang-format), git clang-format
  maven                        # fetches the real Kafka broker from Maven Central (test/kafka.sh)
  curl python3 python3-venv    # python3-venv: the Python binding's tests install it in a venv
  openssl                      # makes the collector's HTTPS test certificate at test time
  gdb                          # a hung or crashed test prints its threads' stacks
  prometheus                   # promtool checks the alert rules; a real Prometheus scrapes in a test
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The broker needs Java 17 or newer; any JRE on the PATH will do.
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
[ "${java_major:-0}" -ge 17 ] || missing+=(openjdk-17-jre-headless)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  if [ ${#sudo[@]} -gt 0 ] && ! command -v sudo >/dev/null; then
    echo "setup: not root and no sudo: install these Debian packages first: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Go binding needs Go 1.23 or newer (Debian 12's golang-go is 1.19): the machine's Go.
export PATH=$PATH:/usr/local/go/bin
go_minor=$(go version 2>/dev/null | sed -n 's/.*go1\.\([0-9]*\).*/\1/p')
if [ "${go_minor:-0}" -lt 23 ]; then
  echo "setup: Go 1.23 or newer is needed for bindings/go (found: $(go version 2>&1 | head -n 1))" >&2
  exit 1
fi

# The real services of the tests: Kafka's jars (cached), PostgreSQL and ClickHouse packages.
test/kafka.sh fetch
test/postgres.sh fetch
test/clickhouse.sh fetch
