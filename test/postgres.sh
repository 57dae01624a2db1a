#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for tests, from Debian's
# postgresql package (binaries in /usr/lib/postgresql/15/bin).
#
# Usage:
#   postgres.sh fetch                            install Debian's postgresql if missing
#   postgres.sh start [--dir DIR]                fresh cluster; last stdout line = URL
#   postgres.sh stop [--dir DIR]                 stop the server (idempotent)
#   postgres.sh stop-server [--kill] [--dir DIR] stop it, keeping port + data
#                                                ("warehouse down"); --kill = SIGKILL
#                                                of every server process, a crash
#   postgres.sh start-server [--dir DIR]         start it again, same port + data
#   postgres.sh status [--dir DIR]               pid, url
#   postgres.sh psql [--dir DIR] [ARGS..]        psql -X on the test database
#   postgres.sh run [--dir DIR] -- CMD..         start, run CMD, always stop
#
# The URL is postgres://ue@127.0.0.1:PORT/userevents (also in DIR/url): role
# "ue" is the superuser, authentication is trust, the unix socket is DIR/run.
# run exports POSTGRES_URL and UE_PG_DIR to CMD; when POSTGRES_URL is already
# set it just runs CMD against that server.
#
# PostgreSQL refuses to run as root: as root the server runs as the system
# user UE_PG_USER (ue-pg, created if missing), so DIR must be reachable by it.
# Environment: UE_PG_BINDIR (/usr/lib/postgresql/15/bin), UE_PG_USER (ue-pg),
# UE_PG_START_TIMEOUT (60 s), UE_PG_KEEP=1 keeps run's temp dir.
set -euo pipefail

PG_MAJOR=15
BINDIR=${UE_PG_BINDIR:-/usr/lib/postgresql/$PG_MAJOR/bin}
PG_USER=${UE_PG_USER:-ue-pg}
ROLE=ue
DB=userevents
START_TIMEOUT=${UE_PG_START_TIMEOUT:-60}
STOP_TIMEOUT=20
DEFAULT_DIR=${TMPDIR:-/tmp}/ue-pg-${USER:-$(id -un)}
SVC=postgres.sh
RUN_URL_VAR=POSTGRES_URL RUN_DIR_VAR=UE_PG_DIR RUN_KEEP_VAR=UE_PG_KEEP
RUN_TMP_PREFIX=ue-pg-run RUN_LOGS=run/postgres.log
# shellcheck source=services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/services/lib.sh"

usage() {
  sed -n '5,26s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit "${1:-2}"
}

# The package may also start a system cluster on 5432: we never use it.
cmd_fetch() {
  [[ -x $BINDIR/postgres && -x $BINDIR/initdb ]] && return 0
  apt_install postgresql
  [[ -x $BINDIR/postgres ]] || die "no $BINDIR/postgres after install (set UE_PG_BINDIR)"
}

# Run "$@" as the server's owner: ourselves, or PG_USER when we are root.
as_pg() {
  if is_root; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

ensure_pg_user() {
  is_root || return 0
  id -u "$PG_USER" >/dev/null 2>&1 && return 0
  log "creating system user $PG_USER to run PostgreSQL (it refuses root)"
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$PG_USER" 2>/dev/null || true # lost a race: fine
  id -u "$PG_USER" >/dev/null 2>&1 || die "could not create user $PG_USER"
}

# ---- state helpers ---------------------------------------------------------

DATA=''
RUNDIR=''
set_paths() {
  DATA=$DIR/data
  RUNDIR=$DIR/run
}

conf_port() { sed -n "s/^port = //p" "$DATA/ue.conf" 2>/dev/null | tail -n 1; }

url_of() { echo "postgres://$ROLE@127.0.0.1:$1/$DB"; }

# Pid of this DIR's postmaster if it is alive and really is ours: the pid in
# postmaster.pid must run postgres on our data dir (no recycled pid).
server_pid() {
  local pid
  pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null) || return 1
  pid_runs "$pid" "-D $DATA " || return 1
  echo "$pid"
}

# Children of pid $1: the server's backends and auxiliary processes (each of
# them is its own process group, so a group kill would miss them).
child_pids() {
  local stat line f pid
  for stat in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$stat" || continue
    read -r -a f <<<"${line##*) }" # state ppid pgrp ...
    if [[ ${f[1]} == "$1" && ${f[0]} != Z ]]; then
      pid=${stat#/proc/}
      echo "${pid%/stat}"
    fi
  done
  return 0
}

show_log_tail() {
  log "---- tail of $RUNDIR/postgres.log ----"
  tail -n 25 "$RUNDIR/postgres.log" >&2 2>/dev/null || true
}

# Graceful = SIGINT, PostgreSQL's "fast" shutdown (clients are disconnected,
# a checkpoint is written). --kill = SIGKILL to the postmaster and all its
# children at once, as a crash would: the next start runs WAL recovery. The
# postmaster is SIGSTOPped first so it cannot fork a backend we would miss.
stop_server() {
  local pid pids
  pid=$(server_pid) || return 0
  if [[ $HARD_KILL == 1 ]]; then
    kill -STOP "$pid" 2>/dev/null || true
    mapfile -t pids < <(child_pids "$pid")
    kill -KILL "$pid" "${pids[@]}" 2>/dev/null || true
  else
    mapfile -t pids < <(child_pids "$pid")
    kill -INT "$pid" 2>/dev/null || true
    if ! wait_gone "$STOP_TIMEOUT" "$pid"; then
      log "no exit after ${STOP_TIMEOUT}s, killing the server"
      kill -STOP "$pid" 2>/dev/null || true
      mapfile -t pids < <(child_pids "$pid")
      kill -KILL "$pid" "${pids[@]}" 2>/dev/null || true
    fi
  fi
  wait_gone 10 "$pid" "${pids[@]}" || log "warning: pid(s) ${GONE_LEFT[*]} still alive"
}

# ---- start -----------------------------------------------------------------

# Our settings, included last from postgresql.conf. Small: several servers
# share a 2-core test machine. fsync stays on: tests check durability.
write_conf() {
  local sock=$RUNDIR
  # sun_path holds 107 bytes: "/.s.PGSQL.NNNNN" takes 15 of them.
  if ((${#sock} > 90)); then
    log "warning: $RUNDIR is too long for a unix socket; TCP only"
    sock=
  fi
  cat >"$DATA/ue.conf" <<EOF
# Generated by test/postgres.sh: throwaway test server.
listen_addresses = '127.0.0.1'
port = $1
unix_socket_directories = '$sock'
max_connections = 50
shared_buffers = 64MB
fsync = on
synchronous_commit = on
full_page_writes = on
huge_pages = off
max_wal_size = 256MB
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
  if is_root; then chown "$PG_USER:" "$DATA/ue.conf"; fi
}

# Start the postmaster of DIR and wait until it accepts connections. pg_ctl
# detaches it (setsid, stdio to the log); fds above 2 are closed first so a
# caller doing $(postgres.sh start) or piping never waits on the server.
launch() {
  clear_zombie_locks
  (
    cd "$DIR"
    close_inherited_fds
    as_pg "$BINDIR/pg_ctl" start -D "$DATA" -l "$RUNDIR/postgres.log" -w \
      -t "$START_TIMEOUT" -s </dev/null >&2
  ) || return 1
  server_pid >/dev/null || return 1
  "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$(conf_port)" -U "$ROLE" -d postgres -t 10
}

# A killed server is a zombie until init reaps it, which some container inits
# do late or never; PostgreSQL sees the pid in its lock files as alive and
# refuses to start. Lock files naming a zombie are stale: remove them. (A
# vanished pid PostgreSQL handles itself, with its shared-memory check.)
clear_zombie_locks() {
  local f pid
  for f in "$DATA/postmaster.pid" "$RUNDIR"/.s.PGSQL.*.lock; do
    [[ -f $f ]] || continue
    pid=$(head -n 1 "$f" 2>/dev/null) || continue
    if [[ $pid =~ ^[0-9]+$ && $(proc_state "$pid") == Z ]]; then
      rm -f "$f"
    fi
  done
}

init_cluster() {
  rm -rf "$DATA" "$RUNDIR" "$DIR/url"
  mkdir -p "$DATA" "$RUNDIR"
  chmod 700 "$DATA"
  if is_root; then
    chmod a+x "$DIR"
    chown "$PG_USER:" "$DATA" "$RUNDIR"
    as_pg test -x "$DIR" -a -w "$RUNDIR" ||
      die "user $PG_USER cannot reach $DIR: use a --dir (or TMPDIR) it can enter"
  fi
  # --no-sync: only initdb's own files; the server itself runs with fsync on.
  if ! (cd "$DIR" && as_pg "$BINDIR/initdb" -D "$DATA" -U "$ROLE" --auth=trust \
    --encoding=UTF8 --locale=C --no-sync --no-instructions) >"$DIR/initdb.log" 2>&1; then
    cat "$DIR/initdb.log" >&2
    die "initdb failed"
  fi
  echo "include = 'ue.conf'" >>"$DATA/postgresql.conf"
}

cmd_start() {
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd -P)
  set_paths
  ! server_pid >/dev/null || die "a server is already running in $DIR (postgres.sh stop --dir $DIR)"
  cmd_fetch
  ensure_pg_user
  local t0=$SECONDS attempt port
  log "creating a PostgreSQL $PG_MAJOR cluster in $DIR"
  init_cluster
  for attempt in 1 2 3; do
    port=$(pick_ports 1) || die "could not pick a free port"
    write_conf "$port"
    if launch; then
      "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$ROLE" -d postgres \
        -c "CREATE DATABASE $DB" >&2 || {
        stop_server
        die "could not create database $DB"
      }
      url_of "$port" >"$DIR/url"
      log "ready in $((SECONDS - t0))s: $(<"$DIR/url")"
      cat "$DIR/url"
      return 0
    fi
    stop_server
    # Another test may have taken the port we picked: retry with another.
    if grep -qs 'Address already in use' "$RUNDIR/postgres.log" && ((attempt < 3)); then
      log "port $port clash, retrying with another port"
      : >"$RUNDIR/postgres.log"
      continue
    fi
    show_log_tail
    die "PostgreSQL did not start or was not ready within ${START_TIMEOUT}s (state kept in $DIR)"
  done
}

# ---- other commands --------------------------------------------------------

need_cluster() {
  set_paths
  [[ -f $DATA/ue.conf ]] || die "no cluster in $DIR (postgres.sh start --dir DIR)"
}

cmd_stop() {
  [[ -d $DIR ]] || return 0
  set_paths
  stop_server
}

cmd_stop_server() {
  need_cluster
  stop_server
  if [[ $HARD_KILL == 1 ]]; then log "server killed"; else log "server stopped"; fi
}

cmd_start_server() {
  need_cluster
  if server_pid >/dev/null; then
    log "server already running"
    return 0
  fi
  if ! launch; then
    show_log_tail
    stop_server
    die "server did not start or was not ready within ${START_TIMEOUT}s"
  fi
  log "server is back at $(<"$DIR/url")"
}

cmd_status() {
  need_cluster
  local pid
  if pid=$(server_pid); then
    echo "running pid $pid $(cat "$DIR/url" 2>/dev/null)"
  else
    echo "stopped $(cat "$DIR/url" 2>/dev/null)"
  fi
}

cmd_psql() {
  need_cluster
  [[ -f $DIR/url ]] || die "no url in $DIR"
  exec "$BINDIR/psql" -X -v ON_ERROR_STOP=1 -d "$(<"$DIR/url")" "$@"
}

# ---- argument parsing ------------------------------------------------------

parse_service_args psql "$@" # the rest after psql is its own
set -- "${ARGS[@]+"${ARGS[@]}"}"
set_paths

case $CMD in
fetch) cmd_fetch ;;
start) cmd_start ;;
stop) cmd_stop ;;
stop-server) cmd_stop_server ;;
start-server) cmd_start_server ;;
status) cmd_status ;;
psql) cmd_psql "$@" ;;
run) cmd_run "$@" ;;
-h | --help | help) usage 0 ;;
*) die "unknown command $CMD" ;;
esac
