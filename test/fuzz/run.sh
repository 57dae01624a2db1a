#!/usr/bin/env bash
# test/fuzz/run.sh - builds the libFuzzer targets and runs each for a bounded time.
#
#   test/fuzz/run.sh [--quick] [--build-only] [--coverage] [TARGET...]
#
#   TARGET        fuzz_spool_frames, fuzz_spool_dir, fuzz_event_decode, fuzz_pb_nesting,
#                 fuzz_whs_map, fuzz_whs_url, fuzz_conf, fuzz_useragent, fuzz_collector_body
#                 (default: all nine)
#   --quick       FUZZ_SECONDS=10: the CI setting
#   --build-only  build the targets and the seed corpora, run nothing
#   --coverage    no fuzzing: replay the corpora through a source-coverage build and print
#                 llvm-cov's per-file report of the library code (build/fuzz/coverage/)
#
# Environment:
#   FUZZ_SECONDS     seconds per target (default 60)
#   FUZZ_RUNS        executions per target instead (the long run: FUZZ_RUNS=10000000); a
#                    target still stops after FUZZ_SECONDS if that is set, else after 4 hours
#   FUZZ_MAX_LEN     largest input, bytes (default 16384)
#   FUZZ_NESTING_MAX_LEN  largest input of fuzz_pb_nesting (default 65536: deep enough raw
#                    nesting to overflow a stack, were the decoder's depth check missing)
#   FUZZ_TIMEOUT     seconds one input may take before it counts as a hang (default 10)
#   FUZZ_ORACLES     0: the spool targets check memory safety only, not the spool's guarantees
#   CC               clang (default)
#
# Targets are built from the library sources they reach (common/, files of the three libraries'
# src/, ue-collector's body and event files, the generated Protobuf code), put into one archive
# so that each target links only what it calls, with -fsanitize=fuzzer,address,undefined into
# build/fuzz/; libprotobuf-c, libzstd, zlib, cJSON and librdkafka are the system's,
# uninstrumented (ASan still checks their allocations and memcpy).
# Each run starts from the generated seeds (build/fuzz/seeds/), the kept corpus
# (test/fuzz/corpus/) and what earlier runs found (build/fuzz/corpus/, grown in place).
# A crash, a leak, a hang or a broken invariant fails the script; the input that caused it is
# in build/fuzz/artifacts/<target>/ (reproduce: build/fuzz/<target> <file>; triage a spool
# directory input with FUZZ_DEBUG=1). Known bugs and their inputs: test/fuzz/crashes/README.md.
set -euo pipefail

cd "$(dirname "$0")/../.."
OUT=build/fuzz
CC=${CC:-clang}
ALL_TARGETS=(fuzz_spool_frames fuzz_spool_dir fuzz_event_decode fuzz_pb_nesting fuzz_whs_map
             fuzz_whs_url fuzz_conf fuzz_useragent fuzz_collector_body)
BUILD_ONLY=0
COVERAGE=0
TARGETS=()
for arg in "$@"; do
    case "$arg" in
    --quick) FUZZ_SECONDS=10 ;;
    --build-only) BUILD_ONLY=1 ;;
    --coverage) COVERAGE=1 ;;
    -h | --help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    fuzz_*) TARGETS+=("$arg") ;;
    *) echo "run.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
FUZZ_RUNS=${FUZZ_RUNS:-}
if [ -n "$FUZZ_RUNS" ]; then
    FUZZ_SECONDS=${FUZZ_SECONDS:-14400}
    BUDGET="$FUZZ_RUNS executions (at most ${FUZZ_SECONDS}s)"
    LIMIT=(-runs="$FUZZ_RUNS" -max_total_time="$FUZZ_SECONDS")
else
    FUZZ_SECONDS=${FUZZ_SECONDS:-60}
    BUDGET="${FUZZ_SECONDS}s"
    LIMIT=(-max_total_time="$FUZZ_SECONDS")
fi
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-16384}
FUZZ_NESTING_MAX_LEN=${FUZZ_NESTING_MAX_LEN:-65536}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}

if [ ! -f build/gen/userevents.pb-c.c ] || [ ! -f build/gen/enriched.pb-c.c ] ||
    [ ! -f build/gen/collector.pb-c.c ]; then
    make build/gen/userevents.pb-c.c
fi

INCLUDES=(-Icommon -Ilibuserevents/include -Ilibenrich/include -Ilibwhsink/include
          -Ilibuserevents/src -Iexamples/common -Ibuild/gen -Itest/fuzz -Itest/support)
read -r -a DEP_CFLAGS <<<"$(pkg-config --cflags libcjson rdkafka 2>/dev/null)"
# The version as the Makefile passes it (from the file VERSION): the libraries' sources need it.
VERSION_FLAGS=(-DUE__VERSION_STR="\"$(make -s print-VERSION)\""
               -DUE__VERSION_HEX="$(make -s print-VERSION_HEX)")
BASE_FLAGS=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra
            -Wno-unused-parameter "${VERSION_FLAGS[@]}" "${INCLUDES[@]}" "${DEP_CFLAGS[@]}")
SAN=address,undefined
LIBS=(-lprotobuf-c -lzstd -lz -lcjson -lrdkafka -lgnutls -lpthread -lm)

# What the targets reach: all of common/ (shared code such as uc_validate.c, which a fix may
# call), the SDK's spool, record, event builder and configuration, libenrich's configuration
# and user-agent parser, libwhsink's row mapper, URL parser and configuration, ue-collector's
# body and event files (not http.c or main.c: no server), and the generated Protobuf code.
LIB_SRC=(common/*.c libuserevents/src/record.c libuserevents/src/spool*.c
         libuserevents/src/{conf,context,errors,event,event_encode}.c
         libenrich/src/{conf,stage,ua_parse}.c
         libwhsink/src/{buf,conf,datetime,json,row,url}.c
         examples/ue-collector/{batch,body,event,event_json,event_pb,json_scan}.c
         build/gen/userevents.pb-c.c build/gen/enriched.pb-c.c build/gen/collector.pb-c.c
         test/fuzz/fuzz_util.c)
FUZZ_SRC=(test/fuzz/fuzz_spool_frames.c test/fuzz/fuzz_spool_dir.c test/fuzz/fuzz_event_decode.c
          test/fuzz/fuzz_pb_nesting.c test/fuzz/fuzz_whs_map.c test/fuzz/fuzz_whs_url.c
          test/fuzz/fuzz_conf.c test/fuzz/fuzz_useragent.c test/fuzz/fuzz_collector_body.c)
HEADER_DIRS=(common libuserevents/src libenrich/src libwhsink/src examples/ue-collector
             examples/common libuserevents/include libenrich/include libwhsink/include test/fuzz
             test/support)

# The internal headers a target sees besides the SDK's, by its name (as the Makefile does for
# the unit tests): first, since each library has its own conf.h and event.h.
src_inc() {
    case "$1" in
    test/fuzz/fuzz_whs_*) echo -Ilibwhsink/src ;;
    test/fuzz/fuzz_useragent.c) echo -Ilibenrich/src ;;
    test/fuzz/fuzz_collector_*) echo -Iexamples/ue-collector ;;
    esac
}

mkdir -p "$OUT/obj"

# Compiles @2.. into objects under $OUT/obj/$1: "fuzz" (instrumented for libFuzzer), "cov"
# (source coverage) or "plain" (sanitizers only). Two compilers at a time (the machines have
# two cores to share); a failed compile fails the script.
compile() {
    local kind=$1 src obj flags running=0 failed=0
    shift
    case "$kind" in
    fuzz) flags=("-fsanitize=fuzzer-no-link,$SAN" -fno-sanitize-recover=undefined) ;;
    cov) flags=(-fsanitize=fuzzer-no-link -fprofile-instr-generate -fcoverage-mapping) ;;
    *) flags=("-fsanitize=$SAN") ;;
    esac
    OBJS=()
    for src in "$@"; do
        obj="$OUT/obj/$kind/${src//\//_}.o"
        mkdir -p "$(dirname "$obj")"
        if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$0" -nt "$obj" ] ||
            [ -n "$(find "$(dirname "$src")" "${HEADER_DIRS[@]}" \
                -maxdepth 1 -name '*.h' -newer "$obj" -print -quit)" ]; then
            if ((running == 2)); then
                wait -n || failed=1
                running=1
            fi
            # shellcheck disable=SC2046 # src_inc prints zero or one flag
            "$CC" $(src_inc "$src") "${BASE_FLAGS[@]}" "${flags[@]}" -c "$src" -o "$obj" &
            running=$((running + 1))
        fi
        OBJS+=("$obj")
    done
    while ((running > 0)); do
        wait -n || failed=1
        running=$((running - 1))
    done
    ((failed == 0)) || { echo "run.sh: compile failed" >&2; exit 1; }
}

# Puts @2.. into the archive $1 (rebuilt each time: cheap beside the compiles).
archive() {
    local ar=$1
    shift
    rm -f "$ar"
    ar rcs "$ar" "$@"
}

# Builds the targets of kind $1 into $2/.
build_targets() {
    local kind=$1 dir=$2 link_flags i
    [ "$kind" = cov ] && link_flags=(-fsanitize=fuzzer -fprofile-instr-generate) ||
        link_flags=("-fsanitize=fuzzer,$SAN")
    compile "$kind" "${LIB_SRC[@]}"
    archive "$OUT/obj/$kind/libfuzzdeps.a" "${OBJS[@]}"
    compile "$kind" "${FUZZ_SRC[@]}"
    for i in "${!FUZZ_SRC[@]}"; do
        local name
        name=$(basename "${FUZZ_SRC[$i]}" .c)
        "$CC" "${link_flags[@]}" -o "$dir/$name" "${OBJS[$i]}" "$OUT/obj/$kind/libfuzzdeps.a" \
            "${LIBS[@]}"
    done
}

echo "== building fuzz targets into $OUT/"
build_targets fuzz "$OUT"
compile plain "${LIB_SRC[@]}"
archive "$OUT/obj/plain/libfuzzdeps.a" "${OBJS[@]}"
compile plain test/fuzz/gen_corpus.c
"$CC" -fsanitize=$SAN -o "$OUT/gen_corpus" "${OBJS[@]}" "$OUT/obj/plain/libfuzzdeps.a" \
    "${LIBS[@]}"
rm -rf "$OUT/seeds"
"$OUT/gen_corpus" "$OUT/seeds"

[ "$BUILD_ONLY" = 1 ] && exit 0

# The corpora of target $1 (its short name): what runs found, the generated seeds, the kept.
corpus_dirs() {
    DIRS=("$OUT/corpus/$1")
    [ -d "$OUT/seeds/$1" ] && DIRS+=("$OUT/seeds/$1")
    [ -d "test/fuzz/corpus/$1" ] && DIRS+=("test/fuzz/corpus/$1")
    mkdir -p "$OUT/corpus/$1"
}

if [ "$COVERAGE" = 1 ]; then
    COV=$OUT/coverage
    mkdir -p "$COV"
    echo "== building coverage targets into $COV/"
    build_targets cov "$COV"
    for t in "${TARGETS[@]}"; do
        corpus_dirs "${t#fuzz_}"
        rm -f "$COV/$t".profraw
        LLVM_PROFILE_FILE="$COV/$t.profraw" FUZZ_ORACLES=0 "$COV/$t" -runs=0 "${DIRS[@]}" \
            >"$COV/$t.log" 2>&1
        llvm-profdata-14 merge -o "$COV/$t.profdata" "$COV/$t.profraw"
        echo "== $t: line coverage of the library over its corpus"
        llvm-cov-14 report "$COV/$t" -instr-profile="$COV/$t.profdata" \
            "${LIB_SRC[@]}" | awk 'NR == 1 || / [1-9][0-9.]*%/'
    done
    exit 0
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=64:malloc_context_size=30}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# The last value that follows the word $1 in the libFuzzer log $2.
last_stat() {
    awk -v key="$1" '{ for (i = 1; i < NF; i++) if ($i == key) v = $(i + 1) } END { print v }' "$2"
}

failed=0
summary=()
for t in "${TARGETS[@]}"; do
    short=${t#fuzz_}
    artifacts="$OUT/artifacts/$short"
    log="$OUT/$t.log"
    mkdir -p "$artifacts"
    corpus_dirs "$short"
    echo "== $t for $BUDGET (log: $log)"
    rc=0
    max_len=$FUZZ_MAX_LEN
    [ "$t" = fuzz_pb_nesting ] && max_len=$FUZZ_NESTING_MAX_LEN
    "$OUT/$t" "${LIMIT[@]}" -timeout="$FUZZ_TIMEOUT" \
        -max_len="$max_len" -rss_limit_mb=2560 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "${DIRS[@]}" >"$log" 2>&1 || rc=$?
    execs=$(last_stat 'stat::number_of_executed_units:' "$log")
    speed=$(last_stat 'stat::average_exec_per_sec:' "$log")
    cov=$(last_stat 'cov:' "$log")
    ft=$(last_stat 'ft:' "$log")
    corp=$(last_stat 'corp:' "$log")
    corp=${corp%%/*}
    if [ "$rc" = 0 ]; then
        status=OK
    else
        status="FAILED(rc=$rc)"
        failed=1
        echo "---- $t failed; end of $log:"
        grep -E 'ERROR|SUMMARY|invariant|Test unit written|artifact' "$log" | head -n 20 || true
        tail -n 40 "$log"
    fi
    line=$(printf '%-18s %s execs=%s exec/s=%s cov=%s ft=%s corpus=%s' "$t" "$status" \
        "${execs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
    summary+=("$line")
    echo "$line"
done

echo "== fuzz summary ($BUDGET per target)"
printf '%s\n' "${summary[@]}"
exit $failed
