# shellcheck shell=bash
# lib.sh - what the throwaway test services (test/kafka.sh, test/postgres.sh,
# test/clickhouse.sh) share: messages, package installs, free loopback ports,
# telling our server's pid from a recycled one, stopping pids, detaching a
# server, and `run` (start, run CMD, always stop). One copy, so a fix to the
# shutdown or cleanup logic reaches all three.
#
# Sourced, never run. The sourcing script sets, before calling anything here:
#   SVC             its name in messages ("kafka.sh")
#   DIR, DIR_SET    the state dir, and whether --dir was given
#   HARD_KILL       1 when stopping means SIGKILL (--kill)
#   STOP_TIMEOUT    seconds a graceful stop may take before SIGKILL
#   RUN_URL_VAR     what `run` exports the start output as (KAFKA_BOOTSTRAP);
#                   when it is already set, `run` just runs CMD against it
#   RUN_DIR_VAR     what `run` exports DIR as (UE_KAFKA_DIR)
#   RUN_KEEP_VAR    set to 1, `run` keeps its temp dir (UE_KAFKA_KEEP)
#   RUN_TMP_PREFIX  name prefix of run's temp dir (ue-kafka-run)
#   RUN_LOGS        where the logs are below DIR, named when a dir is kept
# and defines cmd_start (prints the URL last) and cmd_stop (idempotent).

log() { printf '%s: %s\n' "$SVC" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# apt-get install "$@", through sudo when we are not root; a stale package
# list gets one apt-get update and a second try.
apt_install() {
  log "installing Debian's $*"
  local sudo=()
  if ! is_root; then
    if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
      die "$* missing and cannot be installed without root: apt-get install $*"
    fi
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2 || {
    "${sudo[@]}" apt-get update >&2 &&
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2
  }
}

# ---- processes -------------------------------------------------------------

# The state letter of pid $1 (R, S, Z, ...), or nothing when it is gone.
proc_state() {
  local line
  read -r line 2>/dev/null <"/proc/$1/stat" || return 0
  line=${line##*) }
  echo "${line:0:1}"
}

# True when pid $1 is alive (not a zombie) and its command line contains $2:
# a pid file can outlive its server, and the pid be recycled by another
# process we must never signal.
pid_runs() {
  [[ $1 =~ ^[0-9]+$ && -r /proc/$1/cmdline ]] || return 1
  [[ $(proc_state "$1") != Z ]] || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"
}

# Wait up to $1 seconds for pids "${@:2}" to be gone; zombies count as gone
# (servers are re-parented, so their reaper is not us). The pids still alive
# are left in GONE_LEFT.
wait_gone() {
  local end=$((SECONDS + $1)) pid alive
  shift
  GONE_LEFT=("$@")
  while ((${#GONE_LEFT[@]} > 0)); do
    alive=()
    for pid in "${GONE_LEFT[@]}"; do
      if [[ -r /proc/$pid/stat && $(proc_state "$pid") != Z ]]; then alive+=("$pid"); fi
    done
    GONE_LEFT=("${alive[@]}")
    ((${#GONE_LEFT[@]} > 0 && SECONDS < end)) || break
    sleep 0.1
  done
  ((${#GONE_LEFT[@]} == 0))
}

# Stop pids "$@": SIGTERM (graceful), SIGKILL after STOP_TIMEOUT seconds;
# with HARD_KILL=1 SIGKILL at once, as a crash would.
stop_pids() {
  [[ $# -gt 0 ]] || return 0
  if [[ $HARD_KILL == 1 ]]; then
    kill -KILL "$@" 2>/dev/null || true
  else
    kill -TERM "$@" 2>/dev/null || true
    wait_gone "$STOP_TIMEOUT" "$@" && return 0
    log "no exit after ${STOP_TIMEOUT}s, killing pid(s) ${GONE_LEFT[*]}"
    kill -KILL "${GONE_LEFT[@]}" 2>/dev/null || true
  fi
  wait_gone 10 "$@" || log "warning: pid(s) ${GONE_LEFT[*]} still alive"
}

# Close every fd above 2 of the calling (sub)shell before it starts a
# server, so the server holds no pipe of a caller doing $(x.sh start) or
# piping our output, and that caller never waits on it.
close_inherited_fds() {
  local fd
  for fd in "/proc/$BASHPID/fd/"*; do
    fd=${fd##*/}
    if [[ $fd -gt 2 ]]; then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

# ---- ports -----------------------------------------------------------------

# Print $1 distinct free loopback TCP ports on one line. A test that takes
# one of them before our server binds it shows as a bind error: the callers
# retry start with fresh ports.
pick_ports() {
  python3 - "$1" "$SVC" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
try:
    lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
except (OSError, ValueError):
    lo, hi = 32768, 60999
# Stay out of the kernel's ephemeral range: an outgoing connection could
# otherwise grab the port between this check and the server's bind.
pool = range(15000, lo) if lo - 15000 >= 2000 else range(hi + 1, 65536)
chosen = []
for _ in range(5000):
    if len(chosen) == n:
        break
    port = random.choice(pool)
    if port in chosen:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    chosen.append(port)
if len(chosen) < n:
    sys.exit(sys.argv[2] + ": no free loopback ports")
print(*chosen)
PY
}

# ---- run -------------------------------------------------------------------

RUN_DIR_OWNED=0
WATCHDOG=

# Parses `SCRIPT CMD [--dir DIR] [--kill] [-- ARGS..]`: sets CMD, DIR (absolute once it
# exists: pid checks match it against a command line), DIR_SET, HARD_KILL, and ARGS, what
# follows "--" (or, for the command named $1, everything from its first non-option).
parse_service_args() {
  local passthrough=$1
  shift
  [[ $# -gt 0 ]] || usage
  CMD=$1
  shift
  DIR=$DEFAULT_DIR
  DIR_SET=
  HARD_KILL=0
  while [[ $# -gt 0 ]]; do
    case $1 in
    --dir) DIR=${2:?--dir needs a value} DIR_SET=1 && shift 2 ;;
    --dir=*) DIR=${1#--dir=} DIR_SET=1 && shift ;;
    --kill) HARD_KILL=1 && shift ;;
    --) shift && break ;;
    -h | --help) usage 0 ;;
    *)
      [[ $CMD == "$passthrough" ]] && break
      die "unexpected argument $1"
      ;;
    esac
  done
  ARGS=("$@")
  if [[ -d $DIR ]]; then DIR=$(cd "$DIR" && pwd -P); fi
}

# The EXIT trap of cmd_run: stop the service, then the watchdog (in that
# order: with the watchdog killed first, bash printed "wait_for: No record of
# process N" during cmd_stop when CMD had exited within a second), then drop
# run's own temp dir unless CMD failed or RUN_KEEP_VAR asks to keep it.
run_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  cmd_stop || true
  if [[ -n $WATCHDOG ]]; then kill "$WATCHDOG" 2>/dev/null || true; fi
  if ((RUN_DIR_OWNED)); then
    if ((rc == 0)) && [[ ${!RUN_KEEP_VAR:-0} != 1 ]]; then
      rm -rf "$DIR"
    else
      log "logs kept in $DIR/$RUN_LOGS"
    fi
  fi
  exit "$rc"
}

# run [--dir DIR] -- CMD..: start the service (in a temp dir without --dir),
# run CMD with RUN_URL_VAR and RUN_DIR_VAR exported, stop it whatever
# happens, and exit with CMD's status.
cmd_run() {
  [[ $# -gt 0 ]] || die "run needs a command after --"
  if [[ -n ${!RUN_URL_VAR:-} ]]; then
    exec "$@"
  fi
  if [[ -z $DIR_SET ]]; then
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/$RUN_TMP_PREFIX.XXXXXX")
    RUN_DIR_OWNED=1
  fi
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd -P) # cmd_start runs in a subshell: canonicalize here

  trap run_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local url
  url=$(cmd_start | tail -n 1)
  [[ -n $url ]] || exit 1
  # If this script is SIGKILLed no trap runs; the watchdog still stops it.
  (
    trap '' INT
    while kill -0 $$ 2>/dev/null; do sleep 1; done
    cmd_stop
  ) </dev/null >/dev/null 2>&1 &
  WATCHDOG=$!
  export "$RUN_URL_VAR=$url" "$RUN_DIR_VAR=$DIR"
  # CMD runs in the foreground so it keeps the terminal, stdin and Ctrl-C.
  # The price: a SIGTERM sent to this script alone is handled once CMD exits
  # (timeout(1) and CI runners signal the whole process group, so CMD exits).
  local rc=0
  "$@" || rc=$?
  exit "$rc"
}
