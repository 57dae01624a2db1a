#!/usr/bin/env bash
# test/pkg/check_deps.sh - each shared library needs only its own packages.
#
# Usage: test/pkg/check_deps.sh [BUILD_DIR]      (default: build; run by `make pkg-check`)
#
# Reads the NEEDED entries (readelf -d) of every build/lib*.so.<version> and fails on a library
# that is not in that library's list below: an app that links the SDK must not pull in libpq,
# SQLite or libmaxminddb, nor the sink the SDK's HTTP stack. The lists say what each library is
# meant to need; a new dependency is a decision, made here, in the Makefile's <lib>_PKGS and in
# pkg/debian/control. Each library must also need librdkafka, so an empty reading fails too.
set -euo pipefail

BUILD=${1:-build}
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# glibc and the toolchain's runtime: allowed everywhere.
base='libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|ld-linux[-a-z0-9_]*\.so\.[0-9]+'
declare -A allowed=(
  [userevents]='librdkafka\.so\.1|libprotobuf-c\.so\.1|libzstd\.so\.1|libcurl(-gnutls)?\.so\.4'
  [enrich]='librdkafka\.so\.1|libprotobuf-c\.so\.1|libmaxminddb\.so\.0'
  [whsink]='librdkafka\.so\.1|libprotobuf-c\.so\.1|libcurl(-gnutls)?\.so\.4|libpq\.so\.5|libsqlite3\.so\.0|libzstd\.so\.1|libz\.so\.1'
)

words() { tr '\n' ' ' <<<"$1"; }

fail=0
for lib in userevents enrich whsink; do
  so=$(find "$BUILD" -maxdepth 1 -name "lib$lib.so.*.*.*" -type f | head -n 1)
  if [[ -z $so ]]; then
    echo "check_deps: no $BUILD/lib$lib.so.<version>: run make libs first" >&2
    fail=1
    continue
  fi
  needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  extra=$(grep -Evx "$base|${allowed[$lib]}" <<<"$needed" || true)
  if [[ -n $extra ]]; then
    echo "check_deps: FAIL ${so##*/} needs what is not its own: $(words "$extra")" >&2
    fail=1
  elif ! grep -qx 'librdkafka\.so\.1' <<<"$needed"; then
    echo "check_deps: FAIL ${so##*/}: no librdkafka among its NEEDED ($(words "$needed"))" >&2
    fail=1
  else
    echo "check_deps: ok ${so##*/}: $(words "$needed")"
  fi
done
exit "$fail"
