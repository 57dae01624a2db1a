# userevents - build, test, benchmark, install.
#
#   make                    libraries (static + shared) and examples
#   make unit [TESTS=spool] cmocka unit tests (one area with TESTS=<name>)
#   make test               unit tests, the same under ASan/UBSan, then integration tests
#                           against a real Kafka broker (started by test/kafka.sh)
#   make bench              benchmarks, each beside its peer measured in the same run
#   make chaos              the whole pipeline under faults (test/chaos/run.sh; CHAOS_EVENTS,
#                           CHAOS_SECONDS); build/chaos/ue-chaos is its verifier
#   make install PREFIX=/usr/local
#   make docs               regenerate CONFIGURATION.md from the configuration table

.DEFAULT_GOAL := all

VERSION   := 0.1.0
SOVERSION := 0
PREFIX    ?= /usr/local
BUILD     ?= build
CC        ?= cc
CFLAGS    ?= -O2 -g
SAN       ?= 0

PKGS       := rdkafka libprotobuf-c libzstd libcjson libmaxminddb libcurl libpq sqlite3 zlib libmicrohttpd
DEP_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
DEP_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
endif

WARN      := -Wall -Wextra
# SRC_INC: the internal headers a file may see (its own library's src/; tests: by name).
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) $(CFLAGS) $(SAN_FLAGS) \
             -Icommon -I$(BUILD)/gen -Ilibuserevents/include -Ilibenrich/include \
             -Ilibwhsink/include -Itest/support $(SRC_INC) $(DEP_CFLAGS) -MMD -MP
LDFLAGS_ALL = $(SAN_FLAGS) $(LDFLAGS)

PROTOS     := $(sort $(wildcard proto/*.proto))
GEN_C      := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H      := $(GEN_C:.c=.h)
COMMON_SRC := $(sort $(wildcard common/*.c))
COMMON_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC)) \
              $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C))

# One block per library: sources, static archive, versioned shared object.
define LIBRARY
$(1)_SRC := $$(sort $$(wildcard lib$(1)/src/*.c))
$(1)_OBJ := $$(patsubst %.c,$$(BUILD)/obj/%.o,$$($(1)_SRC))
$(1)_A   := $$(BUILD)/lib$(1).a
$(1)_SO  := $$(BUILD)/lib$(1).so.$$(VERSION)
$$(BUILD)/obj/lib$(1)/%.o: SRC_INC = -Ilib$(1)/src
$$($(1)_A): $$(COMMON_OBJ) $$($(1)_OBJ)
	@rm -f $$@
	ar rcs $$@ $$^
$$($(1)_SO): $$(COMMON_OBJ) $$($(1)_OBJ) pkg/lib$(1).map
	$$(CC) -shared -Wl,-soname,lib$(1).so.$$(SOVERSION) \
	    -Wl,--version-script=pkg/lib$(1).map $$(LDFLAGS_ALL) \
	    -o $$@ $$(COMMON_OBJ) $$($(1)_OBJ) $$(DEP_LIBS)
	ln -sf lib$(1).so.$$(VERSION) $$(BUILD)/lib$(1).so.$$(SOVERSION)
	ln -sf lib$(1).so.$$(SOVERSION) $$(BUILD)/lib$(1).so
endef

# A library joins the build once it has sources.
LIBS := userevents $(foreach l,enrich whsink,$(if $(wildcard lib$(l)/src/*.c),$(l)))
$(foreach l,$(LIBS),$(eval $(call LIBRARY,$(l))))
LIB_A  := $(foreach l,$(filter-out userevents,$(LIBS)),$($(l)_A)) $(userevents_A)
LIB_SO := $(foreach l,$(LIBS),$($(l)_SO))

# A program is a folder of examples/ with a main.c; every .c beside it, and the helpers the
# programs share (examples/common/: metrics endpoint, ...), are linked in.
EXAMPLE_NAMES := $(patsubst examples/%/main.c,%,$(sort $(wildcard examples/*/main.c)))
EXAMPLES := $(addprefix $(BUILD)/,$(EXAMPLE_NAMES))
EXAMPLE_COMMON_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard examples/common/*.c)))

UNIT_SRC  := $(sort $(wildcard test/unit/test_*.c))
UNIT_BIN  := $(patsubst test/unit/%.c,$(BUILD)/test/%,$(UNIT_SRC))
ITEST_SRC := $(sort $(wildcard test/integration/*.c))
ITEST_BIN := $(patsubst test/integration/%.c,$(BUILD)/test/%,$(ITEST_SRC))
BENCH_SRC := $(sort $(wildcard test/bench/*.c))
BENCH_BIN := $(patsubst test/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
# The chaos verifier links no userevents library: only the code protoc-c generated, librdkafka,
# libpq and libcurl, and it sees no header of the project but build/gen's.
CHAOS_SRC := $(sort $(wildcard test/chaos/*.c))
CHAOS_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(CHAOS_SRC))
CHAOS_BIN := $(BUILD)/chaos/ue-chaos

# Tests see the internal headers of the library their name says (test_enr_*, test_whs_*).
$(BUILD)/obj/test/%.o: SRC_INC = -Ilibuserevents/src
$(BUILD)/obj/test/unit/test_enr_%.o $(BUILD)/obj/test/integration/it_enr%.o: SRC_INC = -Ilibenrich/src
$(BUILD)/obj/test/unit/test_whs_%.o $(BUILD)/obj/test/integration/it_whs%.o: SRC_INC = -Ilibwhsink/src
$(BUILD)/obj/examples/%.o: SRC_INC = -Iexamples/common

.PHONY: all libs examples unit test test-san integration bench install clean docs docs-check fuzz \
        chaos
all: libs examples

libs: $(LIB_A) $(LIB_SO)
examples: $(EXAMPLES)

$(GEN_C) $(GEN_H) &: $(PROTOS)
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Iproto $(PROTOS)

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-unused-parameter -c $< -o $@

$(BUILD)/obj/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# Programs and tests link the static libraries (tests may reach internal functions).
define EXAMPLE
$$(BUILD)/$(1): $$(patsubst %.c,$$(BUILD)/obj/%.o,$$(sort $$(wildcard examples/$(1)/*.c))) \
                $$(EXAMPLE_COMMON_OBJ) $$(LIB_A)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$(filter %.o,$$^) $$(LIB_A) $$(DEP_LIBS)
endef
$(foreach e,$(EXAMPLE_NAMES),$(eval $(call EXAMPLE,$(e))))

$(BUILD)/test/%: $(BUILD)/obj/test/unit/%.o $(BUILD)/obj/test/support/testutil.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS) -lcmocka

$(BUILD)/test/it_%: $(BUILD)/obj/test/integration/it_%.o $(BUILD)/obj/test/support/testutil.o \
                   $(BUILD)/obj/test/support/itutil.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS) -lcmocka

$(BUILD)/bench/%: $(BUILD)/obj/test/bench/%.o $(LIB_A)
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

test: all docs-check docs-links unit test-san integration

docs-check: $(BUILD)/gen-config-doc
	@$(BUILD)/gen-config-doc > $(BUILD)/CONFIGURATION.md
	@cmp -s $(BUILD)/CONFIGURATION.md CONFIGURATION.md || \
	    { echo "CONFIGURATION.md is stale: run make docs" >&2; exit 1; }

# Every relative link of every tracked .md file resolves inside the repository.
.PHONY: docs-links
docs-links:
	@test/docs/check_links.sh

$(BUILD)/obj/test/chaos/%.o: test/chaos/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SAN_FLAGS) -I$(BUILD)/gen $(DEP_CFLAGS) \
	    -MMD -MP -c $< -o $@

$(CHAOS_BIN): $(CHAOS_OBJ) $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS)

chaos: all $(CHAOS_BIN)
	test/chaos/run.sh --build $(BUILD)

bench: all $(BENCH_BIN)
	test/bench/run.sh $(BUILD)
	test/bench/whs_bench.sh $(BUILD)

docs: $(BUILD)/gen-config-doc
	$(BUILD)/gen-config-doc > CONFIGURATION.md

$(BUILD)/gen-config-doc: $(BUILD)/obj/test/support/gen_config_doc.o $(LIB_A)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS)

install: libs
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	set -e; for l in $(LIBS); do \
	    install -m 644 lib$$l/include/*.h $(DESTDIR)$(PREFIX)/include/; \
	    install -m 644 $(BUILD)/lib$$l.a $(DESTDIR)$(PREFIX)/lib/; \
	    install -m 755 $(BUILD)/lib$$l.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/; \
	    ln -sf lib$$l.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/lib$$l.so.$(SOVERSION); \
	    ln -sf lib$$l.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/lib$$l.so; \
	    sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' pkg/lib$$l.pc.in \
	        > $(DESTDIR)$(PREFIX)/lib/pkgconfig/lib$$l.pc; \
	done

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
