# userevents - build, test, benchmark, install.
#
#   make                    libraries (static + shared) and examples
#   make unit [TESTS=spool] cmocka unit tests (one area with TESTS=<name>)
#   make test               unit tests, the same under ASan/UBSan, then integration tests
#                           against a real Kafka broker (started by test/kafka.sh)
#   make bench              benchmarks, each beside its peer measured in the same run
#   make install PREFIX=/usr/local
#   make docs               regenerate CONFIGURATION.md from the configuration table

VERSION   := 0.1.0
SOVERSION := 0
PREFIX    ?= /usr/local
BUILD     ?= build
CC        ?= cc
CFLAGS    ?= -O2 -g
SAN       ?= 0

PKGS     := rdkafka libprotobuf-c libzstd
DEP_CFLAGS := $(shell pkg-config --cflags $(PKGS) libcjson 2>/dev/null)
DEP_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
endif

WARN      := -Wall -Wextra
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) $(CFLAGS) $(SAN_FLAGS) \
             -Icommon -I$(BUILD)/gen -Ilibuserevents/include -Ilibuserevents/src -Itest/support \
             $(DEP_CFLAGS) -MMD -MP
LDFLAGS_ALL = $(SAN_FLAGS) $(LDFLAGS)

GEN_C   := $(BUILD)/gen/userevents.pb-c.c
GEN_H   := $(BUILD)/gen/userevents.pb-c.h
COMMON_SRC := $(sort $(wildcard common/*.c))
UE_SRC     := $(sort $(wildcard libuserevents/src/*.c))
COMMON_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC)) $(BUILD)/obj/gen/userevents.pb-c.o
UE_OBJ     := $(patsubst %.c,$(BUILD)/obj/%.o,$(UE_SRC))

UE_A    := $(BUILD)/libuserevents.a
UE_SO   := $(BUILD)/libuserevents.so.$(VERSION)
EXAMPLES := $(BUILD)/ue-track $(BUILD)/ue-tail

UNIT_SRC  := $(sort $(wildcard test/unit/test_*.c))
UNIT_BIN  := $(patsubst test/unit/%.c,$(BUILD)/test/%,$(UNIT_SRC))
ITEST_SRC := $(sort $(wildcard test/integration/*.c))
ITEST_BIN := $(patsubst test/integration/%.c,$(BUILD)/test/%,$(ITEST_SRC))
BENCH_SRC := $(sort $(wildcard test/bench/*.c))
BENCH_BIN := $(patsubst test/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all libs examples unit test test-san integration bench install clean docs docs-check fuzz
all: libs examples

libs: $(UE_A) $(UE_SO)
examples: $(EXAMPLES)

$(GEN_C) $(GEN_H): proto/userevents.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Iproto $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-unused-parameter -c $< -o $@

$(BUILD)/obj/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(UE_A): $(COMMON_OBJ) $(UE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(UE_SO): $(COMMON_OBJ) $(UE_OBJ) pkg/libuserevents.map
	$(CC) -shared -Wl,-soname,libuserevents.so.$(SOVERSION) \
	    -Wl,--version-script=pkg/libuserevents.map $(LDFLAGS_ALL) \
	    -o $@ $(COMMON_OBJ) $(UE_OBJ) $(DEP_LIBS)
	ln -sf libuserevents.so.$(VERSION) $(BUILD)/libuserevents.so.$(SOVERSION)
	ln -sf libuserevents.so.$(SOVERSION) $(BUILD)/libuserevents.so

$(BUILD)/ue-track: $(BUILD)/obj/examples/ue-track/main.o $(UE_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(UE_A) $(DEP_LIBS) $(shell pkg-config --libs libcjson)

$(BUILD)/ue-tail: $(BUILD)/obj/examples/ue-tail/main.o $(UE_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $< $(UE_A) $(DEP_LIBS)

# Tests link the static library: they may reach internal ue__ functions.
$(BUILD)/test/%: $(BUILD)/obj/test/unit/%.o $(BUILD)/obj/test/support/testutil.o $(UE_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS) -lcmocka

$(BUILD)/test/it_%: $(BUILD)/obj/test/integration/it_%.o $(BUILD)/obj/test/support/testutil.o \
                   $(BUILD)/obj/test/support/itutil.o $(UE_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS) -lcmocka

$(BUILD)/bench/%: $(BUILD)/obj/test/bench/%.o $(UE_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do \
	    case "$$t" in *test_$(or $(TESTS),)*) echo "== $$t"; "$$t";; esac; \
	done

test-san:
	$(MAKE) -j2 BUILD=build/san SAN=1 CFLAGS="-O1 -g" unit

integration: all $(ITEST_BIN)
	test/integration/run.sh $(BUILD)

test: all docs-check unit test-san integration

docs-check: $(BUILD)/gen-config-doc
	@$(BUILD)/gen-config-doc > $(BUILD)/CONFIGURATION.md
	@cmp -s $(BUILD)/CONFIGURATION.md CONFIGURATION.md || \
	    { echo "CONFIGURATION.md is stale: run make docs" >&2; exit 1; }

bench: all $(BENCH_BIN)
	test/bench/run.sh $(BUILD)

docs: $(BUILD)/gen-config-doc
	$(BUILD)/gen-config-doc > CONFIGURATION.md

$(BUILD)/gen-config-doc: $(BUILD)/obj/test/support/gen_config_doc.o $(UE_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS)

install: libs
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 libuserevents/include/userevents.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(UE_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(UE_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libuserevents.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libuserevents.so.$(SOVERSION)
	ln -sf libuserevents.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libuserevents.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' pkg/libuserevents.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libuserevents.pc

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
