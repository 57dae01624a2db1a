#!/usr/bin/env bash
# test/pkg/deb.sh - the Debian packages build lintian-clean, install, work and uninstall.
#
# Usage: test/pkg/deb.sh            (make deb-check; root, or sudo, on Debian 12)
#
# 1. Installs what building and linting need when missing (debhelper, lintian and the
#    Build-Depends of pkg/debian/control), lays out the source tree (make deb) and builds the
#    binary packages: libuserevents0, libenrich0, libwhsink0, libuserevents-dev, userevents.
# 2. lintian on the .changes: any error or warning fails (overrides in pkg/debian say why).
# 3. Installs them with apt-get on this machine, builds test/pkg/sdk_example.c against the
#    installed headers and libraries with pkg-config and runs it: the README's SDK example with
#    a closed port for the broker, so it needs no Kafka (the event stays in its spool). Checks
#    the daemons, their man pages, the systemd units (systemd-analyze verify), the modes of the
#    secret files, and that the shipped configuration parses (each daemon runs 3 s on it).
# 4. Purges the packages and checks nothing of them is left.
#
# Environment: DEB_BUILD_OPTIONS (default "nocheck parallel=2": make unit runs elsewhere),
# UE_DEB_KEEP=1 leaves the packages installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
PACKAGES=(libuserevents0 libenrich0 libwhsink0 libuserevents-dev userevents)
log() { printf '== deb: %s\n' "$*"; }
fail() { printf 'deb.sh: FAIL %s\n' "$*" >&2; exit 1; }
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive

apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "apt-get install ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# 1. Build.
apt_install debhelper lintian dpkg-dev build-essential
version=$(cat VERSION)
make -s deb >/dev/null
src=$ROOT/build/deb/userevents-$version
# Build-Depends: the first choice of each, without versions or build profiles.
deps=$(cd "$src" && dpkg-checkbuilddeps 2>&1 | sed -n 's/.*Unmet build dependencies: //p' |
  sed -e 's/([^)]*)//g' -e 's/<[^>]*>//g' -e 's/|[^ ]*//g') || true
# shellcheck disable=SC2086 # package names are words
[[ -z $deps ]] || apt_install $deps
log "dpkg-buildpackage -us -uc -b in build/deb/userevents-$version"
started=$SECONDS
(cd "$src" && DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck parallel=2} \
  dpkg-buildpackage -us -uc -b >../build.log 2>&1) ||
  { tail -n 40 build/deb/build.log >&2; fail "dpkg-buildpackage (log: build/deb/build.log)"; }
changes=build/deb/userevents_${version}-1_$(dpkg --print-architecture).changes
log "built in $((SECONDS - started)) s: $(cd build/deb && echo ./*.deb)"

# 2. Lint.
lintian --display-info --fail-on error,warning "$changes" 2>&1 | tee build/deb/lintian.log ||
  fail "lintian reports errors or warnings"
log "lintian: no error, no warning ($(grep -c '^I:' build/deb/lintian.log || true) info tags)"

# 3. Install and use.
purge() { "${sudo[@]}" apt-get purge -y -qq "${PACKAGES[@]}" >/dev/null 2>&1 || true; }
purge
if [[ ${UE_DEB_KEEP:-0} != 1 ]]; then trap purge EXIT; fi
debs=()
for p in "${PACKAGES[@]}"; do debs+=("./build/deb/${p}_${version}-1_$(dpkg --print-architecture).deb"); done
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null ||
  fail "apt-get install of the packages"
log "installed: $(dpkg-query -W -f='${Package} ${Version}, ' "${PACKAGES[@]}")"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [[ ${UE_DEB_KEEP:-0} == 1 ]] || purge' EXIT
unset PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs libuserevents libenrich libwhsink)
log "pkg-config --cflags --libs libuserevents libenrich libwhsink: $flags"
[[ -f /usr/include/userevents/userevents.h ]] || fail "no /usr/include/userevents/userevents.h"
# shellcheck disable=SC2086 # the flags are words
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/sdk_example" test/pkg/sdk_example.c $flags
loaded=$(ldd "$tmp/sdk_example" | awk '$1 == "libuserevents.so.0" { print $3 }')
dpkg -S "$(readlink -f "$loaded")" | grep -q '^libuserevents0:' ||
  fail "sdk_example does not load the packaged libuserevents (it loads \"$loaded\")"
(cd "$tmp" && ./sdk_example "$tmp/spool") | sed 's/^/== deb: sdk_example: /' ||
  fail "sdk_example against the installed libraries"

for d in enrichd whsinkd ue-collector; do
  "/usr/bin/$d" --help >/dev/null || fail "$d --help"
  [[ $(man -w "$d") == "/usr/share/man/man8/$d.8.gz" ]] || fail "no man page for $d"
done
systemd-analyze verify /lib/systemd/system/{enrichd,whsinkd,ue-collector}.service ||
  fail "systemd-analyze verify"
for f in enrichd.env whsinkd.env ue-collector.env ue-collector.keys; do
  [[ $(stat -c %a "/etc/userevents/$f") == 600 ]] || fail "/etc/userevents/$f is not root-only"
done
# The shipped settings parse: a daemon still running after 3 s (no broker) took them; exit 2
# would be a configuration error. whsinkd writes its SQLite file into a temporary directory.
run_3s() {
  local rc=0
  timeout 3 "$@" >"$tmp/daemon.log" 2>&1 || rc=$?
  [[ $rc -eq 124 ]] || { cat "$tmp/daemon.log" >&2; fail "$* exited $rc within 3 s"; }
}
run_3s enrichd -c /etc/userevents/enrichd.conf
run_3s whsinkd -c /etc/userevents/whsinkd.conf -w "sqlite:$tmp/events.db"
run_3s env UE_DEB_KEY=deb-check-key-0123456789 ue-collector -K /etc/userevents/ue-collector.keys \
  -k env:UE_DEB_KEY -b 127.0.0.1:1 -s "$tmp/collector-spool" -p 0
log "daemons: --help, man pages, units verified, secrets root-only, example settings accepted"

# 4. Remove.
if [[ ${UE_DEB_KEEP:-0} == 1 ]]; then
  log "UE_DEB_KEEP=1: the packages stay installed"
  exit 0
fi
purge
for f in /usr/include/userevents /usr/lib/*/libuserevents.so.0 /usr/bin/enrichd /etc/userevents \
  /lib/systemd/system/enrichd.service /usr/share/man/man8/enrichd.8.gz; do
  [[ ! -e $f ]] || fail "$f is still there after apt-get purge"
done
log "purged: nothing of the packages is left"
