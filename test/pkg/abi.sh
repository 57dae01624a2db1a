#!/usr/bin/env bash
# test/pkg/abi.sh - has the shared libraries' ABI changed since REF, and is that allowed?
#
# Usage: test/pkg/abi.sh [REF]        (make abi-check [ABI_REF=REF])
#
# Builds the three shared libraries of REF (git archive into a temporary directory; the
# repository is not touched) and of the working tree, and compares each pair with libabigail's
# abidiff, restricted to the types of the public headers. REF defaults to the newest tag; with
# no tag yet, the merge base with main (origin/main) when it is not HEAD itself, else HEAD~1.
#   - no change, or compatible changes only (new functions, enumerators appended before the
#     __CNT sentinel): ok, and it lists them;
#   - any other change (a function removed, a parameter or return type changed, a struct or
#     enumerator changed) with the same SOVERSION: FAIL, showing abidiff's report. Undo it, or
#     bump SOVERSION in the Makefile (and the package names in pkg/debian/control).
# Needs abigail-tools (installed when missing) and a second build (about a minute on two
# cores), so it is not part of make test; run it before a release and on API changes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
log() { printf '== abi: %s\n' "$*"; }
fail() { printf 'abi.sh: FAIL %s\n' "$*" >&2; exit 1; }

if ! command -v abidiff >/dev/null; then
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  log "apt-get install abigail-tools"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq abigail-tools >/dev/null
fi

ref=${1:-}
if [[ -z $ref ]]; then
  ref=$(git describe --tags --abbrev=0 2>/dev/null) || ref=
  if [[ -z $ref ]]; then
    for main in main origin/main; do
      base=$(git merge-base HEAD "$main" 2>/dev/null) || continue
      [[ $base != "$(git rev-parse HEAD)" ]] && ref=$base
      break
    done
  fi
  ref=${ref:-HEAD~1}
fi
git rev-parse --verify -q "$ref^{commit}" >/dev/null || fail "no commit $ref"
log "comparing $ref ($(git log -1 --format='%h %s' "$ref")) with the working tree"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive --format=tar "$ref" | tar -x -C "$tmp"
log "building the libraries of $ref"
make -s -C "$tmp" -j2 libs >"$tmp/build.log" 2>&1 || { tail -n 20 "$tmp/build.log" >&2; fail "build of $ref"; }
log "building the libraries of the working tree"
make -s -j2 libs >/dev/null

sover() { sed -n 's/^SOVERSION *:\?= *\([0-9]*\).*/\1/p' "$1/Makefile"; }
old_so=$(sover "$tmp")
new_so=$(sover "$ROOT")
# abidiff's status: bit 8 when it is sure a change breaks callers (a function removed), bit 4
# for any other change, which may or may not (a return type widened, or an enumerator
# appended). A change counts as compatible only when every line of the report is one of these:
compatible='^\s*$|changes summary:|with some indirect sub-type change|has some indirect sub-type changes:|^\s*parameter [0-9]+ of type .* has sub-type changes:$|underlying type .enum .* changed:$|type size hasn.t changed|[0-9]+ enumerator insertions?:$|^\s*.[a-z_]+::[A-Z0-9_]+. value .[0-9]+.$|[0-9]+ enumerator changes?:$|^\s*.[a-z_]+::[A-Z_]+__CNT. from value'
status=0
for lib in userevents enrich whsink; do
  rc=0
  abidiff --no-added-syms --headers-dir1 "$tmp/lib$lib/include" \
    --headers-dir2 "$ROOT/lib$lib/include" "$tmp/build/lib$lib.so.$old_so" \
    "$ROOT/build/lib$lib.so.$new_so" >"$tmp/$lib.abidiff" 2>&1 || rc=$?
  if ((rc & 1 || rc & 2)); then
    cat "$tmp/$lib.abidiff" >&2
    fail "abidiff could not compare lib$lib (status $rc)"
  elif ((rc == 0)); then
    log "lib$lib: no ABI change"
    continue
  fi
  sed 's/^/    /' "$tmp/$lib.abidiff"
  if ((rc & 8)) || grep -Evq "$compatible" "$tmp/$lib.abidiff"; then
    if [[ $old_so == "$new_so" ]]; then
      echo "abi.sh: FAIL lib$lib: a change that may break callers, with the same SOVERSION" \
        "($new_so): undo it, or bump SOVERSION" >&2
      status=1
    else
      log "lib$lib: incompatible change, and SOVERSION went from $old_so to $new_so: fine"
    fi
  else
    log "lib$lib: compatible changes only (enumerators appended)"
  fi
done
# Additions are compatible but worth seeing: list the new exported functions.
for lib in userevents enrich whsink; do
  added=$(abidiff --no-show-locs "$tmp/build/lib$lib.so.$old_so" "$ROOT/build/lib$lib.so.$new_so" 2>/dev/null |
    sed -n "s/^  \[A\] 'function [^']* \([a-z_0-9]*\)(.*/\1/p" | tr '\n' ' ') || true
  [[ -z $added ]] || log "lib$lib: new functions: $added"
done
exit "$status"
