#!/usr/bin/env bash
# test/pkg/install.sh - make install and make uninstall do what a packager expects.
#
# Usage: test/pkg/install.sh [BUILD_DIR]      (default: build; run by `make pkg-check`)
#
# 1. Installs under an unusual PREFIX with a multiarch LIBDIR, builds test/pkg/sdk_example.c
#    against it with pkg-config alone and runs it (no broker needed: see the file), checks
#    the headers sit in include/userevents/, renders the man pages without a groff warning
#    and has systemd-analyze verify the units (they point at the installed daemons).
# 2. Stages a Debian-like layout with DESTDIR, checks what lands where, edits one
#    configuration file, installs again (the edit is kept), uninstalls: only the edited file
#    is left.
# Needs the build (make all), help2man, pkg-config, systemd-analyze (skipped when absent).
set -euo pipefail

BUILD=${1:-build}
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log() { printf 'install.sh: %s\n' "$*"; }
fail() { printf 'install.sh: FAIL %s\n' "$*" >&2; exit 1; }
triplet=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

# 1. In place under a prefix of its own.
p=$tmp/prefix
dirs=(PREFIX="$p" LIBDIR="$p/lib/$triplet" SYSCONFDIR="$p/etc")
make -s BUILD="$BUILD" "${dirs[@]}" install >/dev/null
[[ -f $p/include/userevents/userevents.h && -f $p/include/userevents/enrich.h &&
   -f $p/include/userevents/whsink.h ]] || fail "headers are not in include/userevents/"
export PKG_CONFIG_PATH=$p/lib/$triplet/pkgconfig
flags=$(pkg-config --cflags --libs libuserevents libenrich libwhsink)
log "pkg-config: $flags"
# shellcheck disable=SC2086 # the flags are words
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/sdk_example" test/pkg/sdk_example.c $flags
LD_LIBRARY_PATH=$p/lib/$triplet "$tmp/sdk_example" "$tmp/spool" | sed 's/^/install.sh: sdk_example: /'
# Static: the archives alone in a libdir (as a -dev package without the .so would leave them),
# linked with pkg-config --static, run with no LD_LIBRARY_PATH.
a=$tmp/static
mkdir -p "$a/pkgconfig"
cp "$p/lib/$triplet"/lib*.a "$a/"
for pc in "$p/lib/$triplet"/pkgconfig/*.pc; do
  sed "s|^libdir=.*|libdir=$a|" "$pc" >"$a/pkgconfig/$(basename "$pc")"
done
static=$(PKG_CONFIG_PATH=$a/pkgconfig pkg-config --cflags --static --libs libuserevents \
  libenrich libwhsink) || fail "pkg-config --static"
# shellcheck disable=SC2086 # the flags are words
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/sdk_static" test/pkg/sdk_example.c $static ||
  fail "linking the static libraries with pkg-config --static: $static"
"$tmp/sdk_static" "$tmp/spool-static" | sed 's/^/install.sh: static sdk_example: /'
for d in enrichd whsinkd ue-collector; do
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$p/share/man/man8/$d.8" 2>&1 >/dev/null)
  [[ -z $warnings ]] || fail "man $d.8: $warnings"
  grep -q "^ExecStart=$p/bin/$d " "$p/lib/systemd/system/$d.service" ||
    fail "$d.service does not start $p/bin/$d"
done
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify --man=no "$p"/lib/systemd/system/*.service ||
    fail "systemd-analyze verify"
  log "systemd-analyze verify: the three units are clean"
fi
make -s BUILD="$BUILD" "${dirs[@]}" uninstall >/dev/null
left=$(find "$p" -type f -o -type l)
[[ -z $left ]] || fail "make uninstall left: $left"
log "prefix install: compiled, ran, uninstalled to nothing"

# 2. Staged with DESTDIR, the way pkg/debian/rules does it.
s=$tmp/stage
deb=(DESTDIR="$s" PREFIX=/usr LIBDIR="/usr/lib/$triplet" SYSCONFDIR=/etc
     SYSTEMDUNITDIR=/lib/systemd/system)
make -s BUILD="$BUILD" "${deb[@]}" install >/dev/null
for f in usr/bin/enrichd usr/bin/whsinkd usr/bin/ue-collector usr/share/man/man8/enrichd.8 \
  "usr/lib/$triplet/libuserevents.so.0" "usr/lib/$triplet/pkgconfig/libwhsink.pc" \
  usr/include/userevents/userevents.h lib/systemd/system/ue-collector.service \
  etc/userevents/enrichd.conf etc/userevents/whsinkd.conf etc/userevents/ue-collector.keys; do
  [[ -e $s/$f ]] || fail "DESTDIR install: no /$f"
done
grep -qx "Cflags: -I\${includedir}/userevents" "$s/usr/lib/$triplet/pkgconfig/libuserevents.pc" ||
  fail "libuserevents.pc: Cflags do not point at include/userevents"
grep -qx "libdir=/usr/lib/$triplet" "$s/usr/lib/$triplet/pkgconfig/libuserevents.pc" ||
  fail "libuserevents.pc: libdir is not LIBDIR"
[[ $(stat -c %a "$s/etc/userevents/ue-collector.keys") == 600 ]] ||
  fail "ue-collector.keys is not root-only"
echo "edited=1" >>"$s/etc/userevents/whsinkd.env"
# Captured first: grep -q on the pipe would stop reading at its match, and make, still writing,
# died of SIGPIPE now and then.
again=$(make -s BUILD="$BUILD" "${deb[@]}" install)
grep -q "keeping .*/whsinkd.env" <<<"$again" ||
  fail "a second install did not keep the edited whsinkd.env"
make -s BUILD="$BUILD" "${deb[@]}" uninstall >/dev/null
left=$(cd "$s" && find . -type f -o -type l)
[[ $left == ./etc/userevents/whsinkd.env ]] ||
  fail "make uninstall should leave only the edited whsinkd.env, left: $left"
log "DESTDIR install: Debian layout; the edited configuration kept; the rest uninstalled"
