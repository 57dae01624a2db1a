#!/usr/bin/env bash
# A throwaway ClickHouse server on 127.0.0.1 for tests, from Debian's
# clickhouse-server package (18.16: old, see the notes at the end).
#
# Usage:
#   clickhouse.sh fetch                            install Debian's packages if missing
#   clickhouse.sh start [--dir DIR]                fresh server; last stdout line = URL
#   clickhouse.sh stop [--dir DIR]                 stop the server (idempotent)
#   clickhouse.sh stop-server [--kill] [--dir DIR] stop it, keeping ports + data
#                                                  ("warehouse down"); --kill = SIGKILL
#   clickhouse.sh start-server [--dir DIR]         start it again, same ports + data
#   clickhouse.sh status [--dir DIR]               pid, url
#   clickhouse.sh query [--dir DIR] SQL [FILE|-]   run SQL over HTTP in database
#                                                  userevents; FILE (- = stdin) is
#                                                  the body, e.g. INSERT .. FORMAT ..
#   clickhouse.sh run [--dir DIR] -- CMD..         start, run CMD, always stop
#
# The URL is clickhouse://127.0.0.1:HTTP_PORT/userevents (also in DIR/url):
# the HTTP interface, user "default" without password. The same over HTTPS, with a
# certificate made at start: DIR/https_url (clickhouse+https://...?ca=DIR/tls/cert.pem). The native TCP port is
# in DIR/tcp_port. run exports CLICKHOUSE_URL and UE_CH_DIR to CMD; when
# CLICKHOUSE_URL is already set it just runs CMD against that server.
#
# Environment: UE_CH_SERVER (clickhouse-server, or `clickhouse server`),
# UE_CH_START_TIMEOUT (60 s), UE_CH_KEEP=1 keeps run's temp dir.
#
# ClickHouse 18.16, as tried here (keep SQL valid for current ClickHouse too):
# - MergeTree() PARTITION BY toYYYYMMDD(date) ORDER BY (...) works; so do
#   CREATE DATABASE/TABLE IF NOT EXISTS, DROP TABLE IF EXISTS, UUID, Nullable
#   outside the sorting key. Absent: DateTime64, Map, JSONExtract*, TTL,
#   CODEC, ADD COLUMN IF NOT EXISTS; LowCardinality needs an experimental flag.
# - JSONEachRow: an omitted field gets its type's default (0000-00-00, ''),
#   NOT the column's DEFAULT expression: send every column. Unknown fields
#   fail unless input_format_skip_unknown_fields=1. DateTime takes
#   'YYYY-MM-DD hh:mm:ss' or unix seconds (ISO 8601 needs
#   date_time_input_format=best_effort). A bad row failed the whole insert
#   (seen with small bodies: nothing was stored).
# - Content-Encoding: gzip request bodies are accepted as is.
# - Non-replicated MergeTree never deduplicates inserts (insert_deduplicate is
#   for Replicated tables, which need ZooKeeper): a retried batch is stored twice.
# - Errors: HTTP 400/404/500 with a "Code: N, e.displayText() = ..." body.
set -euo pipefail

DB=userevents
START_TIMEOUT=${UE_CH_START_TIMEOUT:-60}
STOP_TIMEOUT=20
DEFAULT_DIR=${TMPDIR:-/tmp}/ue-ch-${USER:-$(id -un)}
SVC=clickhouse.sh
RUN_URL_VAR=CLICKHOUSE_URL RUN_DIR_VAR=UE_CH_DIR RUN_KEEP_VAR=UE_CH_KEEP
RUN_TMP_PREFIX=ue-ch-run RUN_LOGS=log
# shellcheck source=services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/services/lib.sh"

usage() {
  sed -n '5,24s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit "${1:-2}"
}

# The server binary: Debian's /usr/sbin/clickhouse-server (not on a normal
# user's PATH), or the single `clickhouse` binary of newer packages.
SERVER=()
find_server() {
  local b
  if [[ -n ${UE_CH_SERVER:-} ]]; then
    read -r -a SERVER <<<"$UE_CH_SERVER"
    return 0
  fi
  for b in clickhouse-server /usr/sbin/clickhouse-server; do
    if command -v "$b" >/dev/null; then
      SERVER=("$(command -v "$b")")
      return 0
    fi
  done
  if command -v clickhouse >/dev/null; then
    SERVER=("$(command -v clickhouse)" server)
    return 0
  fi
  return 1
}

# The package may also try to start a system service on 8123/9000: unused.
cmd_fetch() {
  command -v curl >/dev/null || apt_install curl
  find_server && return 0
  apt_install clickhouse-server clickhouse-client
  find_server || die "no clickhouse-server after install (set UE_CH_SERVER)"
}

# ---- state helpers ---------------------------------------------------------

conf_value() { sed -n "s|^ *<$1>\(.*\)</$1>.*|\1|p" "$DIR/config.xml" 2>/dev/null | head -n 1; }

http_base() { echo "http://127.0.0.1:$(conf_value http_port)"; }

# Pid of this DIR's server if that process is alive and really runs our
# config; the cmdline check keeps us from signalling a recycled pid.
server_pid() {
  local pid
  pid=$(cat "$DIR/pid" 2>/dev/null) || return 1
  pid_runs "$pid" "--config-file=$DIR/config.xml" || return 1
  echo "$pid"
}

show_log_tail() {
  local f
  for f in "$DIR/log/stdout.log" "$DIR/log/clickhouse-server.log"; do
    [[ -s $f ]] || continue
    log "---- tail of $f ----"
    tail -n 25 "$f" >&2 || true
  done
}

# SIGTERM (graceful: ClickHouse finishes running queries, then exits) or,
# with --kill, SIGKILL (crash). The server is one process (threads only).
stop_server() {
  local pid
  pid=$(server_pid) || return 0
  stop_pids "$pid"
  rm -f "$DIR/pid"
}

# ---- start -----------------------------------------------------------------

# A self-signed certificate for 127.0.0.1, for the HTTPS port (DIR/https_url names it, with
# the certificate as the CA to check it with).
make_certificate() {
  mkdir -p "$DIR/tls"
  [[ -s $DIR/tls/cert.pem ]] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" \
    2>/dev/null || die "openssl could not make the HTTPS certificate (setup.sh installs openssl)"
  chmod 600 "$DIR/tls/key.pem"
}

# Only what a test server needs: every path inside DIR, loopback only, no
# interserver port (no replication), no query_log, small caches (several
# servers share a 2-core test machine), UTC so DateTime text is predictable.
write_config() {
  local http=$1 tcp=$2 https=$3
  cat >"$DIR/config.xml" <<EOF
<?xml version="1.0"?>
<!-- Generated by test/clickhouse.sh: throwaway test server. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$DIR/log/clickhouse-server.log</log>
        <errorlog>$DIR/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>1</count>
        <console>0</console>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$http</http_port>
    <tcp_port>$tcp</tcp_port>
    <https_port>$https</https_port>
    <openSSL>
        <server>
            <certificateFile>$DIR/tls/cert.pem</certificateFile>
            <privateKeyFile>$DIR/tls/key.pem</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <disableProtocols>sslv2,sslv3</disableProtocols>
        </server>
    </openSSL>
    <path>$DIR/data/</path>
    <tmp_path>$DIR/tmp/</tmp_path>
    <user_files_path>$DIR/user_files/</user_files_path>
    <format_schema_path>$DIR/format_schemas/</format_schema_path>
    <users_config>$DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_connections>256</max_connections>
    <keep_alive_timeout>10</keep_alive_timeout>
    <max_concurrent_queries>50</max_concurrent_queries>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
</yandex>
EOF
  cat >"$DIR/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- Generated by test/clickhouse.sh: user "default", no password, loopback only. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
            <max_threads>2</max_threads>
            <background_pool_size>4</background_pool_size>
            <log_queries>0</log_queries>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
  echo "$tcp" >"$DIR/tcp_port"
}

# Launch the server detached: the ( ... & ) double fork re-parents it to init
# so it outlives `clickhouse.sh start`; setsid keeps a Ctrl-C meant for the
# caller away from it (it would shut down on SIGINT); stdio and every
# inherited fd are redirected so $(clickhouse.sh start) never hangs on it.
# setsid execs in place here (the child is no group leader), so $! is the server.
launch() {
  mkdir -p "$DIR/log"
  (
    cd "$DIR"
    close_inherited_fds
    setsid "${SERVER[@]}" --config-file="$DIR/config.xml" \
      </dev/null >>"$DIR/log/stdout.log" 2>&1 &
    echo $! >"$DIR/pid"
  )
}

# Wait until GET /ping answers "Ok."; fail early if the server died.
wait_ready() {
  local end=$((SECONDS + START_TIMEOUT)) base pid
  base=$(http_base)
  pid=$(cat "$DIR/pid")
  while ((SECONDS < end)); do
    if [[ $(curl -s -m 2 "$base/ping" 2>/dev/null) == Ok.* ]]; then
      server_pid >/dev/null && return 0
    fi
    if [[ ! -r /proc/$pid/stat || $(proc_state "$pid") == Z ]]; then
      log "the server exited during startup"
      return 3
    fi
    sleep 0.1
  done
  return 1
}

urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# POST SQL $1 to the server, or with a body from file $2 (- = stdin): then the
# SQL goes in the URL, as for INSERT ... FORMAT JSONEachRow.
http_query() {
  local base
  base="$(http_base)/?database=$DB"
  if [[ $# -gt 1 ]]; then
    curl -sS --fail-with-body --data-binary "@$2" "$base&query=$(urlencode "$1")"
  else
    curl -sS --fail-with-body --data-binary "$1" "$base"
  fi
}

cmd_start() {
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd -P)
  ! server_pid >/dev/null || die "a server is already running in $DIR (clickhouse.sh stop --dir $DIR)"
  cmd_fetch
  local attempt t0=$SECONDS ports rc
  log "starting ClickHouse in $DIR"
  for attempt in 1 2 3; do
    rm -rf "$DIR"/{data,tmp,user_files,format_schemas,log} "$DIR"/{url,https_url,pid,tcp_port}
    mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/format_schemas"
    read -r -a ports <<<"$(pick_ports 3)"
    [[ ${#ports[@]} -eq 3 ]] || die "could not pick 3 free ports"
    make_certificate
    write_config "${ports[0]}" "${ports[1]}" "${ports[2]}"
    launch
    rc=0
    wait_ready || rc=$?
    if ((rc == 0)); then
      curl -sS --fail-with-body --data-binary "CREATE DATABASE IF NOT EXISTS $DB" \
        "$(http_base)/" >&2 || {
        stop_server
        die "could not create database $DB"
      }
      echo "clickhouse+https://127.0.0.1:${ports[2]}/$DB?ca=$DIR/tls/cert.pem" >"$DIR/https_url"
      echo "clickhouse://127.0.0.1:${ports[0]}/$DB" >"$DIR/url"
      log "ready in $((SECONDS - t0))s: $(<"$DIR/url")"
      cat "$DIR/url"
      return 0
    fi
    # Another test may have taken a port we picked: retry with fresh ports.
    if grep -qs 'Address already in use' "$DIR"/log/*.log && ((attempt < 3)); then
      log "port clash, retrying with other ports"
      stop_server
      continue
    fi
    show_log_tail
    stop_server
    die "ClickHouse did not start or was not ready within ${START_TIMEOUT}s (state kept in $DIR)"
  done
}

# ---- other commands --------------------------------------------------------

need_server_dir() {
  [[ -f $DIR/config.xml ]] || die "no server in $DIR (clickhouse.sh start --dir DIR)"
}

cmd_stop() {
  [[ -f $DIR/config.xml ]] || return 0
  stop_server
}

cmd_stop_server() {
  need_server_dir
  stop_server
  if [[ $HARD_KILL == 1 ]]; then log "server killed"; else log "server stopped"; fi
}

cmd_start_server() {
  need_server_dir
  if server_pid >/dev/null; then
    log "server already running"
    return 0
  fi
  find_server || die "clickhouse-server not found (clickhouse.sh fetch)"
  launch
  if ! wait_ready; then
    show_log_tail
    stop_server
    die "server did not start or was not ready within ${START_TIMEOUT}s"
  fi
  log "server is back at $(<"$DIR/url")"
}

cmd_status() {
  need_server_dir
  local pid
  if pid=$(server_pid); then
    echo "running pid $pid $(cat "$DIR/url" 2>/dev/null)"
  else
    echo "stopped $(cat "$DIR/url" 2>/dev/null)"
  fi
}

cmd_query() {
  need_server_dir
  [[ $# -ge 1 && $# -le 2 ]] || die "usage: clickhouse.sh query [--dir DIR] SQL [FILE|-]"
  http_query "$@"
}

# ---- argument parsing ------------------------------------------------------

parse_service_args query "$@" # the rest after query is its own
set -- "${ARGS[@]+"${ARGS[@]}"}"

case $CMD in
fetch) cmd_fetch ;;
start) cmd_start ;;
stop) cmd_stop ;;
stop-server) cmd_stop_server ;;
start-server) cmd_start_server ;;
status) cmd_status ;;
query) cmd_query "$@" ;;
run) cmd_run "$@" ;;
-h | --help | help) usage 0 ;;
*) die "unknown command $CMD" ;;
esac
