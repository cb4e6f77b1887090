# loopkit build. `make` builds ./loopkit; `make test` installs test deps, builds, runs all tests.
CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
# No libm: sqrt, round, floor and ceil are inlined (the math library's errno and FP
# traps are never looked at), and powers and logarithms of ten are core/decimal.c's.
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Isrc -pthread -fno-math-errno -fno-trapping-math
LDLIBS  += -pthread
# Symbols bound at start (full RELRO): hardening, and no lazy binding in the children
# that isolate and serve start (each first call there faulted in ld.so's pages; isolate's
# pid 1 shares loopkit's memory, where a lazy binding would race loopkit's own).
override LDFLAGS += -Wl,-z,relro,-z,now,-z,pack-relative-relocs
# Debian libraries, found with pkg-config, each opened with dlopen when first needed, not
# linked (src/core/lazylib.h says why; a linked library cost every start of every verb
# about 7 page faults): zlib and Brotli (the /_/gzip, /_/deflate and /_/brotli answers,
# proxy's HAR bodies), SQLite (watch's history), Nettle (digests: serve --user, Digest
# auth; 0.5 MiB of RSS where libcrypto took 1.4 MiB linked and 3.7 MiB used) and jansson
# (the tree's one JSON parser: proxy's control API and config, watch's config and JSON
# checks). Their headers come from pkg-config; scripts/mkdeb makes the .deb depend on them.
LAZY_DEPS := zlib libbrotlienc libbrotlidec sqlite3 nettle jansson
override CFLAGS += $(shell pkg-config --cflags $(LAZY_DEPS))

# SAN=1 builds everything with AddressSanitizer and UndefinedBehaviorSanitizer into build-san/.
ifeq ($(SAN),1)
BUILD   ?= build-san
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
override LDFLAGS += -fsanitize=address,undefined
BIN     ?= $(BUILD)/loopkit
else
BUILD   ?= build
BIN     ?= loopkit
endif

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
override CFLAGS += -DLOOPKIT_VERSION='"$(VERSION)"'

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path 'src/cmd/*' ! -name main.c))
CMD_SRC  := $(sort src/main.c $(wildcard src/cmd/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CMD_OBJ  := $(CMD_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libloopkit.a
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
PYTEST   ?= /usr/bin/python3 -m pytest
# e2e workers (pytest-xdist): tests marked `alone` still run with nothing beside them.
E2E_JOBS ?= 2
# The C files the style tools (clang-format, cppcheck) read.
STYLE_SRC = $(shell find src tests/unit fuzz -name '*.[ch]' | sort)

# make install: PREFIX and DESTDIR as usual; the completion directories can be moved too.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
SHARE       := $(BUILD)/share
DEB_BUILD   ?= build-deb

.PHONY: all run test test-unit test-e2e deps bench bench-all clean format format-check cppcheck check docs install uninstall deb

all: $(BIN) $(SHARE)/stamp

# The compiler and its flags, kept in a file that changes when they do: every object
# depends on it, so a checkout whose Makefile changed a flag is rebuilt, not half-linked.
FLAGS_FILE := $(BUILD)/flags
$(FLAGS_FILE): FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(CPPFLAGS) $(CFLAGS) | $(LDFLAGS) $(LDLIBS)' | cmp -s - $@ || \
		echo '$(CC) $(CPPFLAGS) $(CFLAGS) | $(LDFLAGS) $(LDLIBS)' > $@
.PHONY: FORCE
FORCE:

$(BUILD)/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BIN): $(CMD_OBJ) $(LIB) $(FLAGS_FILE)
	$(CC) $(LDFLAGS) -o $@ $(CMD_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@ $(LIB) $(LDLIBS) -lcmocka

# The flag-table framework is the top layer, not in the library: its test links it in.
CMD_FRAMEWORK := $(BUILD)/src/cmd/cmd.o $(BUILD)/src/cmd/cmdgen.o
$(BUILD)/tests/test_cmd: tests/unit/test_cmd.c $(CMD_FRAMEWORK) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@ $(CMD_FRAMEWORK) $(LIB) $(LDLIBS) -lcmocka

# Man pages and shell completions, written by the binary from its flag tables.
$(SHARE)/stamp: $(BIN)
	@rm -rf $(SHARE) && mkdir -p $(SHARE)/man1 $(SHARE)/completions
	./$(BIN) --man loopkit > $(SHARE)/man1/loopkit.1
	for v in $$(./$(BIN) --verbs); do ./$(BIN) --man $$v > $(SHARE)/man1/loopkit-$$v.1 || exit 1; done
	./$(BIN) --completion bash > $(SHARE)/completions/loopkit
	./$(BIN) --completion zsh > $(SHARE)/completions/_loopkit
	./$(BIN) --completion fish > $(SHARE)/completions/loopkit.fish
	@touch $@

install: $(BIN) $(SHARE)/stamp
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/loopkit
	install -m 644 $(SHARE)/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(SHARE)/completions/loopkit $(DESTDIR)$(BASHCOMPDIR)/loopkit
	install -m 644 $(SHARE)/completions/_loopkit $(DESTDIR)$(ZSHCOMPDIR)/_loopkit
	install -m 644 $(SHARE)/completions/loopkit.fish $(DESTDIR)$(FISHCOMPDIR)/loopkit.fish

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/loopkit $(DESTDIR)$(MANDIR)/man1/loopkit.1 \
		$(DESTDIR)$(MANDIR)/man1/loopkit-*.1 $(DESTDIR)$(BASHCOMPDIR)/loopkit \
		$(DESTDIR)$(ZSHCOMPDIR)/_loopkit $(DESTDIR)$(FISHCOMPDIR)/loopkit.fish

# A Debian package in $(DEB_BUILD)/: built with Debian's hardening flags, staged by
# make install, packed by scripts/mkdeb (dpkg-deb; check it with lintian).
# The package is never a sanitizer build, whatever SAN the calling make was given.
deb:
	$(MAKE) SAN= BUILD=$(DEB_BUILD) BIN=$(DEB_BUILD)/loopkit \
		CFLAGS="$$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS)" \
		CPPFLAGS="$$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS)" \
		LDFLAGS="$$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get LDFLAGS)" all
	LAZY_DEPS="$(LAZY_DEPS)" scripts/mkdeb $(DEB_BUILD) $(VERSION)

run: $(BIN)
	./$(BIN) serve

deps:
	@scripts/deps

test: deps
	$(MAKE) check test-unit fuzz-replay test-e2e

test-unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

test-e2e: $(BIN)
	LOOPKIT=$(abspath $(BIN)) $(PYTEST) -q -n $(E2E_JOBS) tests/e2e

bench: $(BIN) deps
	bench/http.sh
	bench/ftp.sh

# Every comparison script, including the verbs' own (bench tcp/rr/crr/http, ports, scan, watch).
bench-all: bench
	bench/bench-tcp.sh
	bench/bench-rr.sh
	bench/bench-http.sh
	bench/bench-crr.sh
	bench/ports.sh
	bench/scan.sh
	bench/isolate.sh
	bench/proxy.sh
	bench/watch.sh

# The flag tables in docs/*.md, from the binary's own tables (src/cmd/).
docs: $(BIN)
	scripts/docs-flags $(BIN)

format:
	clang-format -i $(STYLE_SRC)

# Every C file formatted as .clang-format says (prints the differences, changes nothing).
format-check:
	clang-format --dry-run -Werror $(STYLE_SRC)

# Debian's cppcheck over the same files; its false positives, each explained, are in
# scripts/cppcheck-suppressions.
cppcheck:
	cppcheck -q --std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DLOOPKIT_VERSION='"$(VERSION)"' -Isrc -j2 \
		--enable=warning,style,performance,portability --suppress=missingIncludeSystem \
		--suppressions-list=scripts/cppcheck-suppressions --error-exitcode=1 \
		--template='{file}:{line}: {severity}({id}): {message}' src tests/unit fuzz

# The include graph against DESIGN.md's layers: no include or module cycle, no layer
# violation (scripts/check-includes).
check:
	scripts/check-includes

clean:
	rm -rf build build-san build-fuzz build-deb loopkit

include fuzz/fuzz.mk

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d)
