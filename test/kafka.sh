#!/usr/bin/env bash
# A real Apache Kafka cluster (KRaft, every node broker+controller) on
# 127.0.0.1 for tests, built from the official jars on Maven Central.
#
# Usage:
#   kafka.sh fetch                                   download + cache the jars
#   kafka.sh start [--brokers 1|3] [--dir DIR]       start; last stdout line = bootstrap
#   kafka.sh stop [--dir DIR]                        stop every node (idempotent)
#   kafka.sh stop-node N [--kill] [--dir DIR]        stop one node ("broker down");
#                                                    --kill = SIGKILL, a crash
#   kafka.sh start-node N [--dir DIR]                restart it, same ports + data
#   kafka.sh status [--dir DIR]                      nodes, pids, bootstrap
#   kafka.sh topics [--dir DIR]                      topic, partitions, replication
#   kafka.sh run [--brokers N] [--dir DIR] -- CMD..  start, run CMD, always stop
#
# run exports KAFKA_BOOTSTRAP and UE_KAFKA_DIR to CMD; when KAFKA_BOOTSTRAP is
# already set it just runs CMD against that cluster.
#
# Every node also listens with SASL_SSL (PLAIN over TLS, as managed clusters are
# reached): its addresses in DIR/sasl_bootstrap, the certificate authority that
# signed the brokers' certificates in DIR/tls/ca.pem, user "ue" with the password
# in DIR/sasl_password (random, made at start with the certificates).
#
# Environment: KAFKA_VERSION (4.4.0), SCALA_VERSION (2.13), LOG4J_VERSION
# (2.25.5), UE_CACHE_DIR (~/.cache/userevents), UE_KAFKA_JAVA (java on PATH),
# UE_KAFKA_START_TIMEOUT (90 s), UE_KAFKA_KEEP=1 keeps run's temp dir.
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
SCALA_VERSION=${SCALA_VERSION:-2.13}
# Kafka 4.x logs through slf4j 1.7 + log4j2 but its pom brings no slf4j
# binding, so we add log4j-slf4j-impl at the log4j-core version Kafka uses
# (re-check both when changing KAFKA_VERSION).
LOG4J_VERSION=${LOG4J_VERSION:-2.25.5}
CACHE_DIR=${UE_CACHE_DIR:-${HOME:-/tmp}/.cache/userevents}
KAFKA_HOME_DIR=$CACHE_DIR/kafka-$KAFKA_VERSION
LIBS=$KAFKA_HOME_DIR/libs
MARKER=$KAFKA_HOME_DIR/.complete
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROBE_SRC=$SCRIPT_DIR/kafka/KafkaProbe.java
START_TIMEOUT=${UE_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=20
DEFAULT_DIR=${TMPDIR:-/tmp}/ue-kafka-${USER:-$(id -un)}
SVC=kafka.sh
RUN_URL_VAR=KAFKA_BOOTSTRAP RUN_DIR_VAR=UE_KAFKA_DIR RUN_KEEP_VAR=UE_KAFKA_KEEP
RUN_TMP_PREFIX=ue-kafka-run RUN_LOGS='node*/server.log'
# shellcheck source=services/lib.sh
source "$SCRIPT_DIR/services/lib.sh"

# Small heap and serial GC: up to three brokers share a 2-core test machine.
BROKER_JVM=(-Xmx384m -Xms128m -XX:+UseSerialGC -XX:-UsePerfData
  -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true)
# Short-lived helper JVMs: C1 only starts noticeably faster.
TOOL_JVM=(-Xmx192m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData
  -Djava.net.preferIPv4Stack=true)

join() {
  local IFS=$1
  shift
  echo "$*"
}

usage() {
  sed -n '5,26s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit "${1:-2}"
}

find_java() {
  JAVA=${UE_KAFKA_JAVA:-$(command -v java || true)}
  [[ -n $JAVA && -x $JAVA ]] || die "java 17+ not found (set UE_KAFKA_JAVA)"
}

# Download kafka_<scala>:<version> and its runtime deps once. The cache is
# filled in a temp dir and renamed into place with the marker inside, so a
# crash or a concurrent fetch can never leave a half-filled libs/ behind.
cmd_fetch() {
  [[ -f $MARKER ]] && return 0
  command -v mvn >/dev/null || apt_install maven
  mkdir -p "$CACHE_DIR"
  local tmp
  tmp=$(mktemp -d "$CACHE_DIR/.kafka-$KAFKA_VERSION.XXXXXX")
  cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.userevents</groupId>
  <artifactId>kafka-test-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_VERSION</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  log "downloading Kafka $KAFKA_VERSION jars from Maven Central (only once)"
  if ! mvn -B -q -f "$tmp/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp/libs" >"$tmp/mvn.log" 2>&1; then
    tail -n 40 "$tmp/mvn.log" >&2
    rm -rf "$tmp"
    die "maven could not fetch org.apache.kafka:kafka_$SCALA_VERSION:$KAFKA_VERSION"
  fi
  [[ -f $tmp/libs/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar ]] || {
    rm -rf "$tmp"
    die "kafka_$SCALA_VERSION-$KAFKA_VERSION.jar missing after download"
  }
  rm -f "$tmp/pom.xml" "$tmp/mvn.log"
  touch "$tmp/.complete"
  chmod 755 "$tmp"
  # A dir without marker is debris from an interrupted older layout.
  if [[ -e $KAFKA_HOME_DIR && ! -f $MARKER ]]; then
    rm -rf "$KAFKA_HOME_DIR"
  fi
  mv -T "$tmp" "$KAFKA_HOME_DIR" 2>/dev/null || rm -rf "$tmp" # lost a race: fine
  [[ -f $MARKER ]] || die "could not populate $KAFKA_HOME_DIR"
  log "cached $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS"
}

# Kafka 4.4's own CLI tools (kafka-tools) are not on Maven Central, so the
# readiness check and topic listing use test/kafka/KafkaProbe.java, compiled
# once per source version into the cache.
PROBE=()
prepare_probe() {
  [[ ${#PROBE[@]} -gt 0 ]] && return 0
  [[ -f $PROBE_SRC ]] || die "missing $PROBE_SRC"
  local sum dir javac tmp
  sum=$(sha256sum "$PROBE_SRC" | cut -c1-12)
  dir=$KAFKA_HOME_DIR/probe-$sum
  javac=$(dirname "$(readlink -f "$JAVA")")/javac
  if [[ ! -f $dir/KafkaProbe.class && -x $javac ]]; then
    tmp=$(mktemp -d "$KAFKA_HOME_DIR/.probe.XXXXXX")
    "$javac" -nowarn -d "$tmp" -cp "$LIBS/*" "$PROBE_SRC" >&2 ||
      { rm -rf "$tmp"; die "cannot compile $PROBE_SRC"; }
    chmod 755 "$tmp"
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
  fi
  if [[ -f $dir/KafkaProbe.class ]]; then
    PROBE=("$JAVA" "${TOOL_JVM[@]}" -cp "$dir:$LIBS/*" KafkaProbe)
  else # no javac: the source launcher compiles in memory on every call
    PROBE=("$JAVA" "${TOOL_JVM[@]}" -cp "$LIBS/*" "$PROBE_SRC")
  fi
}

# ---- state helpers ---------------------------------------------------------

node_ids() {
  local d
  for d in "$DIR"/node*/; do
    if [[ -f $d/server.properties ]]; then basename "$d" | sed 's/^node//'; fi
  done | sort -n
}

prop() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

# PLAINTEXT (or with $2, that listener's) address of node $1, from its server.properties.
node_addr() {
  prop "$DIR/node$1/server.properties" advertised.listeners | tr , '\n' |
    sed -n "s|^${2:-PLAINTEXT}://||p"
}

# Pid of node $1 if that process is alive and really is that node's broker;
# the cmdline check keeps us from signalling a recycled pid.
node_pid() {
  local f=$DIR/node$1/pid
  [[ -f $f ]] || return 1
  pid_runs "$(<"$f")" "kafka.Kafka $DIR/node$1/server.properties"
}

running_ids() {
  local id
  for id in $(node_ids); do
    node_pid "$id" && echo "$id"
  done
  return 0
}

bootstrap_of_all() { # [LISTENER]
  local id out=()
  for id in $(node_ids); do out+=("$(node_addr "$id" "${1:-}")"); done
  join , "${out[@]}"
}

# The SASL_SSL listener's certificates (a CA and a broker certificate for 127.0.0.1, in a
# PKCS12 keystore) and user password, made once per cluster directory.
make_tls() {
  local t=$DIR/tls
  [[ -f $t/broker.p12 && -f $DIR/sasl_password ]] && return 0
  rm -rf "$t" && mkdir -m 700 "$t"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  {
    openssl req -x509 "${ec[@]}" -days 7 -subj /CN=userevents-test-ca \
      -keyout "$t/ca.key" -out "$t/ca.pem" &&
      openssl req "${ec[@]}" -subj /CN=127.0.0.1 -keyout "$t/broker.key" -out "$t/broker.csr" &&
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$t/san.ext" &&
      openssl x509 -req -in "$t/broker.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
        -CAcreateserial -days 7 -extfile "$t/san.ext" -out "$t/broker.pem" &&
      openssl rand -hex 16 >"$t/keystore_password" &&
      openssl pkcs12 -export -in "$t/broker.pem" -inkey "$t/broker.key" -name kafka \
        -passout "file:$t/keystore_password" -out "$t/broker.p12" &&
      openssl rand -hex 16 >"$DIR/sasl_password"
  } >"$t/openssl.log" 2>&1 || { cat "$t/openssl.log" >&2; die "could not make the TLS certificates"; }
  chmod 600 "$DIR/sasl_password"
}

show_log_tails() {
  local id
  for id in "$@"; do
    log "---- tail of $DIR/node$id/server.log ----"
    tail -n 25 "$DIR/node$id/server.log" >&2 2>/dev/null || true
  done
}

# Launch node $1 detached: the ( ... & ) double fork re-parents java to init
# so it outlives `kafka.sh start`, and stdio plus every inherited fd are
# redirected so callers doing $(kafka.sh start) or piping never hang on it.
launch_node() {
  local id=$1 nd=$DIR/node$1
  (
    cd "$nd"
    close_inherited_fds
    "$JAVA" "${BROKER_JVM[@]}" \
      -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
      -Dkafka.logs.dir="$nd" \
      -cp "$LIBS/*" kafka.Kafka "$nd/server.properties" \
      </dev/null >>"$nd/server.log" 2>&1 &
    echo $! >"$nd/pid"
  )
}

# Wait until nodes "$@" answer metadata requests themselves and every running
# node shows up as a live broker.
wait_ready() {
  local spec=() pids=() id expect
  for id in "$@"; do
    spec+=("$id@$(node_addr "$id")")
    # Straight from the pid file: just launched, java may not have exec'd yet.
    pids+=("$(cat "$DIR/node$id/pid" 2>/dev/null || echo 0)")
  done
  expect=$({
    running_ids
    printf '%s\n' "$@"
  } | sort -nu | paste -sd, -)
  "${PROBE[@]}" wait "$START_TIMEOUT" "$(join , "${spec[@]}")" "$expect" "${pids[@]}" >&2
}

# Stop nodes "$@" together (a KRaft quorum stopped one node at a time can
# leave the last ones waiting for a controller that is already gone). SIGTERM
# is a broker's controlled shutdown; --kill (SIGKILL) is a crash.
stop_nodes() {
  local id pids=()
  for id in "$@"; do
    if node_pid "$id"; then pids+=("$(<"$DIR/node$id/pid")"); fi
  done
  stop_pids "${pids[@]}"
  for id in "$@"; do rm -f "$DIR/node$id/pid"; done
}

# ---- commands --------------------------------------------------------------

write_log4j_config() {
  # WARN and up only, to stdout = server.log; plus the one "started" line.
  cat >"$DIR/log4j2.properties" <<'EOF'
status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
EOF
}

write_node_config() {
  local id=$1 port=$2 cport=$3 sport=$4 voters=$5 n=$6 nd=$DIR/node$1
  local rf=1 isr=1
  if ((n >= 3)); then rf=3 isr=2; fi
  mkdir -p "$nd/data"
  cat >"$nd/server.properties" <<EOF
# Generated by test/kafka.sh: throwaway test cluster, node $id of $n.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SASL_SSL://127.0.0.1:$sport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_SSL://127.0.0.1:$sport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_ue="$(<"$DIR/sasl_password")";
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$DIR/tls/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$(<"$DIR/tls/keystore_password")
controller.listener.names=CONTROLLER
log.dirs=$nd/data

auto.create.topics.enable=true
num.partitions=3
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$n
transaction.state.log.replication.factor=$n
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$n
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0

# Fewer threads, partitions and buffers than production: 2 cores, small heap.
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=16777216
EOF
}

start_once() {
  local n=$1 ports id voters=() cid
  read -r -a ports <<<"$(pick_ports $((3 * n)))" # per node: plaintext, controller, SASL_SSL
  [[ ${#ports[@]} -eq $((3 * n)) ]] || die "could not pick $((3 * n)) free ports"
  for ((id = 1; id <= n; id++)); do
    voters+=("$id@127.0.0.1:${ports[3 * id - 2]}")
  done
  cid=$("$JAVA" "${TOOL_JVM[@]}" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  [[ -n $cid ]] || die "StorageTool random-uuid printed nothing"
  for ((id = 1; id <= n; id++)); do
    write_node_config "$id" "${ports[3 * id - 3]}" "${ports[3 * id - 2]}" "${ports[3 * id - 1]}" \
      "$(join , "${voters[@]}")" "$n"
  done
  # Format all data dirs in parallel: each is a JVM start.
  local fpids=()
  for ((id = 1; id <= n; id++)); do
    "$JAVA" "${TOOL_JVM[@]}" -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
      -cp "$LIBS/*" kafka.tools.StorageTool format -t "$cid" \
      -c "$DIR/node$id/server.properties" >"$DIR/node$id/format.log" 2>&1 &
    fpids+=($!)
  done
  for ((id = 1; id <= n; id++)); do
    wait "${fpids[id - 1]}" || {
      cat "$DIR/node$id/format.log" >&2
      die "StorageTool format failed for node $id"
    }
  done
  for ((id = 1; id <= n; id++)); do launch_node "$id"; done
  bootstrap_of_all >"$DIR/bootstrap"
  bootstrap_of_all SASL_SSL >"$DIR/sasl_bootstrap"
  local ids
  mapfile -t ids < <(node_ids)
  wait_ready "${ids[@]}"
}

cmd_start() {
  [[ $BROKERS =~ ^[1-9]$ ]] || die "--brokers must be 1..9 (1 or 3 are the tested ones)"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd -P)
  [[ -z $(running_ids) ]] || die "a cluster is already running in $DIR (kafka.sh stop --dir $DIR)"
  cmd_fetch
  find_java
  prepare_probe
  local attempt t0=$SECONDS
  for attempt in 1 2 3; do
    rm -rf "$DIR"/node* "$DIR/bootstrap" "$DIR/sasl_bootstrap"
    write_log4j_config
    make_tls
    log "starting $BROKERS-node KRaft cluster in $DIR"
    local rc=0
    start_once "$BROKERS" || rc=$?
    if ((rc == 0)); then
      log "ready in $((SECONDS - t0))s: $(<"$DIR/bootstrap")"
      cat "$DIR/bootstrap"
      return 0
    fi
    # Another test may have taken a port we picked: retry with fresh ports.
    local ids
    mapfile -t ids < <(node_ids)
    if grep -qs -e 'BindException' -e 'Address already in use' "$DIR"/node*/server.log &&
      ((attempt < 3)); then
      log "port clash, retrying with other ports"
      stop_nodes "${ids[@]}"
      continue
    fi
    show_log_tails "${ids[@]}"
    stop_nodes "${ids[@]}"
    if ((rc == 3)); then
      die "a Kafka node exited during startup (state kept in $DIR)"
    fi
    die "Kafka did not become ready within ${START_TIMEOUT}s (state kept in $DIR)"
  done
}

cmd_stop() {
  [[ -d $DIR ]] || return 0
  local ids
  mapfile -t ids < <(node_ids)
  [[ ${#ids[@]} -gt 0 ]] || return 0
  stop_nodes "${ids[@]}"
}

check_node() {
  [[ $1 =~ ^[0-9]+$ && -f $DIR/node$1/server.properties ]] || die "no node '$1' in $DIR"
}

cmd_stop_node() {
  check_node "$1"
  stop_nodes "$1"
  if [[ $HARD_KILL == 1 ]]; then log "node $1 killed"; else log "node $1 stopped"; fi
}

cmd_start_node() {
  check_node "$1"
  find_java
  prepare_probe
  if node_pid "$1"; then
    log "node $1 already running"
  else
    launch_node "$1"
  fi
  if ! wait_ready "$1"; then
    show_log_tails "$1"
    die "node $1 did not come back within ${START_TIMEOUT}s"
  fi
  log "node $1 is back at $(node_addr "$1")"
}

cmd_status() {
  local id
  for id in $(node_ids); do
    if node_pid "$id"; then
      echo "node$id $(node_addr "$id") running pid $(<"$DIR/node$id/pid")"
    else
      echo "node$id $(node_addr "$id") stopped"
    fi
  done
  [[ -f $DIR/bootstrap ]] && echo "bootstrap $(<"$DIR/bootstrap")"
  return 0
}

cmd_topics() {
  [[ -f $DIR/bootstrap ]] || die "no cluster in $DIR"
  find_java
  prepare_probe
  "${PROBE[@]}" topics "$(<"$DIR/bootstrap")"
}

# ---- argument parsing ------------------------------------------------------

[[ $# -gt 0 ]] || usage
CMD=$1
shift
DIR=$DEFAULT_DIR
DIR_SET=
BROKERS=1
HARD_KILL=0
NODE=
while [[ $# -gt 0 ]]; do
  case $1 in
  --dir) DIR=${2:?--dir needs a value} DIR_SET=1 && shift 2 ;;
  --dir=*) DIR=${1#--dir=} DIR_SET=1 && shift ;;
  --brokers) BROKERS=${2:?--brokers needs a value} && shift 2 ;;
  --brokers=*) BROKERS=${1#--brokers=} && shift ;;
  --kill) HARD_KILL=1 && shift ;;
  --) shift && break ;;
  -h | --help) usage 0 ;;
  -*) die "unknown option $1" ;;
  *)
    [[ -z $NODE ]] || die "unexpected argument $1"
    NODE=$1 && shift
    ;;
  esac
done

# Absolute, symlink-free: node_pid matches it against the broker's cmdline.
if [[ -d $DIR ]]; then DIR=$(cd "$DIR" && pwd -P); fi

case $CMD in
fetch) cmd_fetch ;;
start) cmd_start ;;
stop) cmd_stop ;;
stop-node) cmd_stop_node "${NODE:?stop-node needs a node number}" ;;
start-node) cmd_start_node "${NODE:?start-node needs a node number}" ;;
status) cmd_status ;;
topics) cmd_topics ;;
run) cmd_run "$@" ;;
-h | --help | help) usage 0 ;;
*) die "unknown command $CMD" ;;
esac
