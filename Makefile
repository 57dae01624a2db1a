# userevents - build, test, benchmark, install.
#
#   make                    libraries (static + shared) and examples
#   make unit [TESTS=spool] cmocka unit tests (one area with TESTS=<name>)
#   make test               unit tests, the same under ASan/UBSan, then integration tests
#                           against a real Kafka broker (started by test/kafka.sh)
#   make programs-check     the daemons' exit statuses for what no retry heals (no server needed)
#   make bench              benchmarks, each beside its peer measured in the same run
#   make install PREFIX=/usr/local   libraries, headers (include/userevents/), pkg-config files,
#                           the daemons with man pages, systemd units, example configuration
#                           (DESTDIR, BINDIR, LIBDIR, INCLUDEDIR, MANDIR, SYSCONFDIR: see below)
#   make uninstall          removes what install put (configuration you changed stays)
#   make pkg-check          shared libraries' dependencies, install/uninstall (part of make test)
#   make deb, deb-check     Debian packages (pkg/debian): lay out / build, lint, install, use
#   make wheel-check        the Python wheel works in a fresh venv without the build tree
#   make abi-check [ABI_REF=<git ref>]   libabigail's abidiff of the shared libraries vs a ref
#   make chaos              the whole pipeline under faults (test/chaos/run.sh; CHAOS_EVENTS,
#                           CHAOS_SECONDS); build/chaos/ue-chaos is its verifier
#   make docs               regenerate CONFIGURATION.md from the configuration table
#   make format-check [FORMAT_BASE=main]   C lines within 100 columns (+ clang-format on changes)
#   make fuzz [FUZZ_SECONDS=60 | FUZZ_RUNS=10000000] [FUZZ_TARGETS=fuzz_conf]   libFuzzer targets

.DEFAULT_GOAL := all

# The version lives in the file VERSION and nowhere else: the libraries' version strings, the
# shared objects' names, the pkg-config files, the Debian and Python packages read it from there.
# The public headers' hex macros (UE_VERSION, ...) must say the same: the build checks it.
VERSION   := $(shell cat VERSION)
ifeq ($(shell echo '$(VERSION)' | grep -Ex '[0-9]+\.[0-9]+\.[0-9]+'),)
$(error VERSION must hold MAJOR.MINOR.PATCH, not "$(VERSION)")
endif
VERSION_HEX := $(shell printf '0x%02x%02x%02xff' $(subst ., ,$(VERSION)))
# The ABI's number, not the release's: bumped by hand when the ABI breaks (test/pkg/abi.sh).
SOVERSION := 0
PREFIX    ?= /usr/local
BUILD     ?= build
CC        ?= cc
CFLAGS    ?= -O2 -g
SAN       ?= 0

# pkg-config packages, per user: each shared library links only its own (test/pkg/check_deps.sh
# holds it to that); the programs and tests link the static libraries, so they take them all.
userevents_PKGS := rdkafka libprotobuf-c libzstd libcurl
enrich_PKGS     := rdkafka libprotobuf-c libmaxminddb
whsink_PKGS     := rdkafka libprotobuf-c libcurl libpq sqlite3 libzstd zlib
uemetrics_PKGS  := libcjson libmicrohttpd
PROGRAM_PKGS    := libcjson libmicrohttpd zlib gnutls # gnutls: the collector's SHA-256 (ids)
PKGS := $(sort $(userevents_PKGS) $(enrich_PKGS) $(whsink_PKGS) $(uemetrics_PKGS) $(PROGRAM_PKGS))

# A missing package stops the build with its name (goals that compile nothing go on).
NO_DEPS_GOALS := clean uninstall format-check docs-links deb deb-check abi-check
ifneq ($(filter-out $(NO_DEPS_GOALS) print-%,$(or $(MAKECMDGOALS),all)),)
PKGS_MISSING := $(shell pkg-config --exists $(PKGS) || \
                  for p in $(PKGS); do pkg-config --exists $$p || echo $$p; done)
ifneq ($(PKGS_MISSING),)
$(error pkg-config does not find: $(PKGS_MISSING) (./setup.sh installs them on Debian))
endif
DEP_CFLAGS := $(shell pkg-config --cflags $(PKGS))
DEP_LIBS   := $(shell pkg-config --libs $(PKGS)) -lpthread -lm
endif

ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
endif

WARN      := -Wall -Wextra
# SRC_INC: the internal headers a file may see (its own library's src/; tests: by name).
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) $(CPPFLAGS) $(CFLAGS) \
             $(SAN_FLAGS) -Icommon -I$(BUILD)/gen -Ilibuserevents/include -Ilibenrich/include \
             -Ilibwhsink/include -Itest/support $(SRC_INC) $(DEP_CFLAGS) -MMD -MP \
             -DUE__VERSION_STR='"$(VERSION)"' -DUE__VERSION_HEX=$(VERSION_HEX)
LDFLAGS_ALL = $(SAN_FLAGS) $(LDFLAGS)
# A shared library whose own packages miss a symbol fails to link, not to load.
SO_DEFS := $(if $(filter 1,$(SAN)),,-Wl,-z,defs)

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
$(1)_LIBS = $$(shell pkg-config --libs $$($(1)_PKGS)) -lpthread -lm
$$(BUILD)/obj/lib$(1)/%.o: SRC_INC = -Ilib$(1)/src
$$($(1)_A): $$(COMMON_OBJ) $$($(1)_OBJ)
	@rm -f $$@
	ar rcs $$@ $$^
$$($(1)_SO): $$(COMMON_OBJ) $$($(1)_OBJ) pkg/lib$(1).map
	$$(CC) -shared -Wl,-soname,lib$(1).so.$$(SOVERSION) \
	    -Wl,--version-script=pkg/lib$(1).map $$(SO_DEFS) $$(LDFLAGS_ALL) \
	    -o $$@ $$(COMMON_OBJ) $$($(1)_OBJ) $$($(1)_LIBS)
	ln -sf lib$(1).so.$$(VERSION) $$(BUILD)/lib$(1).so.$$(SOVERSION)
	ln -sf lib$(1).so.$$(SOVERSION) $$(BUILD)/lib$(1).so
endef

# A library joins the build once it has sources.
LIBS := userevents $(foreach l,enrich whsink,$(if $(wildcard lib$(l)/src/*.c),$(l)))
$(foreach l,$(LIBS),$(eval $(call LIBRARY,$(l))))
LIB_A  := $(foreach l,$(filter-out userevents,$(LIBS)),$($(l)_A)) $(userevents_A)
LIB_SO := $(foreach l,$(LIBS),$($(l)_SO))

# A program is a folder of examples/ with a main.c; every .c beside it is linked in, and the
# helpers the programs share (examples/common/: the /metrics registry, server and families) as
# build/libuemetrics.a, an internal static library that programs and tests link (not installed).
EXAMPLE_NAMES := $(patsubst examples/%/main.c,%,$(sort $(wildcard examples/*/main.c)))
EXAMPLES := $(addprefix $(BUILD)/,$(EXAMPLE_NAMES))
METRICS_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard examples/common/*.c)))
METRICS_A   := $(BUILD)/libuemetrics.a

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
# test_pbdecode drives every decoder of untrusted bytes; the sink's row mapper is internal.
$(BUILD)/obj/test/unit/test_pbdecode.o: SRC_INC = -Ilibwhsink/src
$(BUILD)/obj/examples/%.o: SRC_INC = -Iexamples/common
$(BUILD)/obj/test/unit/test_metrics.o: SRC_INC = -Ilibuserevents/src -Iexamples/common

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

$(BUILD)/obj/%.o: %.c VERSION | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(METRICS_A): $(METRICS_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Programs and tests link the static libraries (tests may reach internal functions).
define EXAMPLE
$$(BUILD)/$(1): $$(patsubst %.c,$$(BUILD)/obj/%.o,$$(sort $$(wildcard examples/$(1)/*.c))) \
                $$(METRICS_A) $$(LIB_A)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$(filter %.o,$$^) $$(METRICS_A) $$(LIB_A) $$(DEP_LIBS)
endef
$(foreach e,$(EXAMPLE_NAMES),$(eval $(call EXAMPLE,$(e))))

$(BUILD)/test/%: $(BUILD)/obj/test/unit/%.o $(BUILD)/obj/test/support/testutil.o $(METRICS_A) \
                 $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS) -lcmocka

$(BUILD)/test/it_%: $(BUILD)/obj/test/integration/it_%.o $(BUILD)/obj/test/support/testutil.o \
                   $(BUILD)/obj/test/support/itutil.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS) -lcmocka

$(BUILD)/bench/%: $(BUILD)/obj/test/bench/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS)

# Each test program has UNIT_TIMEOUT seconds; past them it has hung and test/support/watchdog.sh
# prints its threads' stacks and fails it.
UNIT_TIMEOUT ?= 600
unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do \
	    case "$$t" in *test_$(or $(TESTS),)*) echo "== $$t"; \
	        test/support/watchdog.sh $(UNIT_TIMEOUT) "$$t";; esac; \
	done

test-san:
	$(MAKE) -j2 BUILD=build/san SAN=1 CFLAGS="-O1 -g" unit

integration: all $(ITEST_BIN)
	test/integration/run.sh $(BUILD)

test: all docs-check docs-links pkg-check programs-check unit test-san integration

# Each shared library needs only its own packages (readelf -d NEEDED); make install and
# uninstall lay out and remove what a packager expects, and the README's example builds against
# the installed copy with pkg-config alone.
# The daemons' exit statuses and messages for what no retry heals (test/programs/).
.PHONY: programs-check
programs-check: all
	test/programs/exit_codes.sh $(BUILD)

.PHONY: pkg-check
pkg-check: all
	test/pkg/check_deps.sh $(BUILD)
	test/pkg/install.sh $(BUILD)

docs-check: $(BUILD)/gen-config-doc
	@$(BUILD)/gen-config-doc > $(BUILD)/CONFIGURATION.md
	@cmp -s $(BUILD)/CONFIGURATION.md CONFIGURATION.md || \
	    { echo "CONFIGURATION.md is stale: run make docs" >&2; exit 1; }

# No line of the C sources over .clang-format's ColumnLimit; with FORMAT_BASE=<git ref> (main)
# also the lines changed since that ref as clang-format writes them (test/format/check.sh).
.PHONY: format-check
format-check:
	@test/format/check.sh $(FORMAT_BASE)

# Every relative link of every tracked .md file resolves inside the repository.
.PHONY: docs-links
docs-links:
	@test/docs/check_links.sh

# Every libFuzzer target (or those FUZZ_TARGETS names) for FUZZ_SECONDS each (60 unless set),
# or for FUZZ_RUNS executions each; run.sh builds them itself, with clang, into build/fuzz/.
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) test/fuzz/run.sh $(FUZZ_TARGETS)
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

# make install: the libraries (static, shared, pkg-config files, headers under
# include/userevents/), the daemons with a man page each, their systemd units and example
# configuration. The GNU directory names, each overridable; DESTDIR stages the whole tree.
# A Debian build passes LIBDIR=/usr/lib/<triplet> SYSCONFDIR=/etc
# SYSTEMDUNITDIR=/lib/systemd/system (pkg/debian/rules).
BINDIR         ?= $(PREFIX)/bin
LIBDIR         ?= $(PREFIX)/lib
INCLUDEDIR     ?= $(PREFIX)/include
DATADIR        ?= $(PREFIX)/share
MANDIR         ?= $(DATADIR)/man
SYSCONFDIR     ?= $(PREFIX)/etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

# The production daemons (the teaching programs stay in build/).
DAEMONS  := enrichd whsinkd ue-collector
MAN_PAGES := $(patsubst %,$(BUILD)/man/%.8,$(DAEMONS))
# Example configuration for $(SYSCONFDIR)/userevents/: settings, then the root-only files that
# may hold secrets (the environment of each unit, the collector's API keys).
ETC_CONF   := examples/enrichd/enrichd.conf examples/whsinkd/whsinkd.conf
ETC_SECRET := $(patsubst %,pkg/systemd/%.env,$(DAEMONS)) pkg/systemd/ue-collector.keys
ETC_DIR     = $(DESTDIR)$(SYSCONFDIR)/userevents
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
            -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
            -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@VERSION@|$(VERSION)|g'

# Man pages: help2man runs each daemon's --help and adds pkg/man/<daemon>.h2m (name, files,
# environment). They name the configuration files, so they follow SYSCONFDIR.
.PHONY: man
man: $(MAN_PAGES)
$(BUILD)/man/%.8: $(BUILD)/% pkg/man/%.h2m VERSION $(BUILD)/man/sysconfdir
	@command -v help2man >/dev/null || \
	    { echo "help2man is missing: apt-get install help2man (./setup.sh does)" >&2; exit 1; }
	$(SUBST) pkg/man/$*.h2m > $(BUILD)/man/$*.h2m
	help2man --no-info --section=8 --version-string=$(VERSION) \
	    --include=$(BUILD)/man/$*.h2m --output=$@ $(BUILD)/$*
$(BUILD)/man/sysconfdir: FORCE
	@mkdir -p $(dir $@)
	@echo '$(SYSCONFDIR)' | cmp -s - $@ || echo '$(SYSCONFDIR)' > $@
.PHONY: FORCE
FORCE:

# One library: headers, archive, shared object and its links, pkg-config file.
define INSTALL_LIB
install -m 644 lib$(1)/include/*.h $(DESTDIR)$(INCLUDEDIR)/userevents/
install -m 644 $(BUILD)/lib$(1).a $(DESTDIR)$(LIBDIR)/
install -m 755 $(BUILD)/lib$(1).so.$(VERSION) $(DESTDIR)$(LIBDIR)/
ln -sf lib$(1).so.$(VERSION) $(DESTDIR)$(LIBDIR)/lib$(1).so.$(SOVERSION)
ln -sf lib$(1).so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/lib$(1).so
$(SUBST) -e 's|@LIBS_PRIVATE@|$(strip $($(1)_LIBS))|' pkg/lib$(1).pc.in \
    > $(DESTDIR)$(LIBDIR)/pkgconfig/lib$(1).pc

endef

install: libs $(addprefix $(BUILD)/,$(DAEMONS)) man
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/userevents \
	    $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMDUNITDIR) $(ETC_DIR)
	$(foreach l,$(LIBS),$(call INSTALL_LIB,$(l)))
	set -e; for d in $(DAEMONS); do \
	    install -m 755 $(BUILD)/$$d $(DESTDIR)$(BINDIR)/; \
	    install -m 644 $(BUILD)/man/$$d.8 $(DESTDIR)$(MANDIR)/man8/; \
	    $(SUBST) pkg/systemd/$$d.service.in > $(DESTDIR)$(SYSTEMDUNITDIR)/$$d.service; \
	done
	@# Configuration is the admin's once installed: an existing file is kept.
	@set -e; for f in $(ETC_CONF) $(ETC_SECRET); do \
	    mode=600; case " $(ETC_CONF) " in *" $$f "*) mode=644;; esac; \
	    if [ -e $(ETC_DIR)/$${f##*/} ]; then echo "keeping $(ETC_DIR)/$${f##*/}"; \
	    else echo "install -m $$mode $$f $(ETC_DIR)/"; install -m $$mode $$f $(ETC_DIR)/; fi; \
	done

# Removes what install put; a configuration file is left when it differs from the example.
.PHONY: uninstall
uninstall:
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/userevents/, \
	    $(notdir $(wildcard $(LIBS:%=lib%/include/*.h))))
	rm -f $(foreach l,$(LIBS),$(addprefix $(DESTDIR)$(LIBDIR)/lib$(l),.a .so .so.$(SOVERSION) \
	    .so.$(VERSION)) $(DESTDIR)$(LIBDIR)/pkgconfig/lib$(l).pc)
	set -e; for d in $(DAEMONS); do \
	    rm -f $(DESTDIR)$(BINDIR)/$$d $(DESTDIR)$(MANDIR)/man8/$$d.8 \
	        $(DESTDIR)$(SYSTEMDUNITDIR)/$$d.service; \
	done
	@set -e; for f in $(ETC_CONF) $(ETC_SECRET); do \
	    t=$(ETC_DIR)/$${f##*/}; \
	    if cmp -s $$f $$t; then echo "rm -f $$t"; rm -f $$t; \
	    elif [ -e $$t ]; then echo "keeping $$t (changed)"; fi; \
	done
	@rmdir $(DESTDIR)$(INCLUDEDIR)/userevents $(ETC_DIR) 2>/dev/null || true

# make deb: the Debian source tree, build/deb/userevents-<version>/: the tracked files of the
# working tree (git stash create: uncommitted edits included, new untracked files not), with
# pkg/debian as debian/ and its changelog for VERSION, and the orig tarball beside it. Then
# dpkg-buildpackage -us -uc -b there; make deb-check (test/pkg/deb.sh) builds, lints, installs,
# uses and removes the packages.
DEB_DIR := $(BUILD)/deb
DEB_SRC := $(DEB_DIR)/userevents-$(VERSION)
.PHONY: deb deb-check
deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)
	tree=$$(git stash create) && git archive --format=tar.gz --prefix=userevents-$(VERSION)/ \
	    -o $(DEB_DIR)/userevents_$(VERSION).orig.tar.gz $${tree:-HEAD}
	tar -C $(DEB_DIR) -xzf $(DEB_DIR)/userevents_$(VERSION).orig.tar.gz
	cp -R pkg/debian $(DEB_SRC)/debian
	sed -e 's|@VERSION@|$(VERSION)|' \
	    -e "s|@DATE@|$$(date -u -R -d @$$(git log -1 --format=%ct))|" \
	    pkg/debian/changelog.in > $(DEB_SRC)/debian/changelog
	rm $(DEB_SRC)/debian/changelog.in
	@echo "now: cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b"

deb-check:
	test/pkg/deb.sh

# The shared libraries' ABI against a git ref (ABI_REF; default: the newest tag, else the merge
# base with main) with libabigail's abidiff (test/pkg/abi.sh). A second build: not in make test.
.PHONY: abi-check
abi-check:
	test/pkg/abi.sh $(ABI_REF)

# pip wheel bindings/python, installed in a fresh venv, works with no build tree and none of the
# libraries' dependencies (test/pkg/wheel.sh).
.PHONY: wheel-check
wheel-check:
	test/pkg/wheel.sh

# make print-VAR: a variable's value (scripts ask the Makefile rather than repeat it).
print-%:
	@echo '$($*)'

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
