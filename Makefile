# loopkit build. `make` builds ./loopkit; `make test` installs test deps, builds, runs all tests.
CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Isrc -pthread
LDLIBS  += -pthread -lm

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

.PHONY: all run test test-unit test-e2e deps bench bench-all clean format format-check cppcheck check

all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BIN): $(CMD_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CMD_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@ $(LIB) $(LDLIBS) -lcmocka

run: $(BIN)
	./$(BIN) serve

deps:
	@scripts/deps

test: deps
	$(MAKE) test-unit fuzz-replay test-e2e

test-unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

test-e2e: $(BIN)
	LOOPKIT=$(abspath $(BIN)) $(PYTEST) -q -n $(E2E_JOBS) tests/e2e

bench: $(BIN) deps
	bench/http.sh
	bench/ftp.sh

# Every comparison script, including the verbs' own (bench tcp/rr/crr/http, ports).
bench-all: bench
	bench/bench-tcp.sh
	bench/bench-rr.sh
	bench/bench-http.sh
	bench/bench-crr.sh
	bench/ports.sh

format:
	clang-format -i $(STYLE_SRC)

# Every C file formatted as .clang-format says (prints the differences, changes nothing).
format-check:
	clang-format --dry-run -Werror $(STYLE_SRC)

# Debian's cppcheck over the same files; its false positives, each explained, are in
# scripts/cppcheck-suppressions.
cppcheck:
	cppcheck -q --std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Isrc -j2 \
		--enable=warning,style,performance,portability --suppress=missingIncludeSystem \
		--suppressions-list=scripts/cppcheck-suppressions --error-exitcode=1 \
		--template='{file}:{line}: {severity}({id}): {message}' src tests/unit fuzz

# The include graph against DESIGN.md's layers: no include or module cycle, no layer
# violation (scripts/check-includes).
check:
	scripts/check-includes

clean:
	rm -rf build build-san build-fuzz loopkit

include fuzz/fuzz.mk

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d)
