# fuzz/fuzz.mk - libFuzzer targets, one per parser; included by the Makefile (docs/fuzzing.md).
# clang + libFuzzer + ASan + UBSan into build-fuzz/, with the project's warning flags.
FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_SECS    ?= 60
FUZZ_CI_SECS ?= 20
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS   = $(filter-out -fsanitize=%,$(CFLAGS)) $(FUZZ_SAN)
FUZZ_TARGETS := $(sort $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c)))
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)
# The code under test: pure parsers, plus fsroot for the path target and the loaders of
# the libraries they call (Nettle, jansson).
FUZZ_LIB_SRC := src/core/buf.c src/core/decimal.c src/core/errors.c src/core/fsroot.c src/core/jansson_lib.c src/core/json.c \
	src/core/lazylib.c src/core/log.c src/core/nettle_lib.c src/core/text.c \
	src/ftp/parse.c src/http/date.c src/http/digest.c src/http/multipart.c src/http/parse.c src/http/path.c \
	src/serve/probe.c src/watch/check.c
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)

.PHONY: fuzz fuzz-ci fuzz-replay fuzz-build

$(FUZZ_BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP $< $(FUZZ_LIB_OBJ) -o $@ $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# Each target for FUZZ_SECS seconds; new inputs go to build-fuzz/corpus/, crashes to
# build-fuzz/crashes/ (copy them to fuzz/crashes/TARGET/ once fixed).
fuzz: fuzz-build
	fuzz/run.sh fuzz $(FUZZ_SECS) $(FUZZ_TARGETS)

fuzz-ci: fuzz-build
	fuzz/run.sh fuzz $(FUZZ_CI_SECS) $(FUZZ_TARGETS)

# Every committed corpus input and past crash, once each; no fuzzing. Part of `make test`.
fuzz-replay: fuzz-build
	fuzz/run.sh replay 0 $(FUZZ_TARGETS)

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_BINS:=.d)
