#!/usr/bin/env bash
# test/bench/streams/build.sh BUILD_DIR - builds the Kafka Streams peer of bench_enrich into
# BUILD_DIR/bench/streams (classes/ and lib/) with Maven: offline when the jars are in the local
# repository (after the first build), from Maven Central otherwise. Does nothing when the build
# is newer than its sources. bench_enrich skips the Streams peer when this did not succeed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=$(cd "${1:-build}" && pwd)
OUT=$BUILD/bench/streams
STAMP=$OUT/.built

if [[ -f $STAMP && -z $(find "$HERE/pom.xml" "$HERE/src" -newer "$STAMP" -print -quit) ]]; then
  exit 0
fi
command -v mvn >/dev/null || { echo "streams/build.sh: mvn not found" >&2; exit 1; }
mkdir -p "$OUT"
rm -rf "$OUT/lib" "$OUT/classes"
log=$OUT/mvn.log
goals=(compile dependency:copy-dependencies)
if ! mvn -B -q -o -f "$HERE/pom.xml" -Dstreams.out="$OUT" "${goals[@]}" >"$log" 2>&1; then
  echo "streams/build.sh: fetching the Kafka Streams peer's jars from Maven Central (once)" >&2
  if ! mvn -B -q -f "$HERE/pom.xml" -Dstreams.out="$OUT" "${goals[@]}" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    exit 1
  fi
fi
touch "$STAMP"
