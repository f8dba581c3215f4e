# cmocka unit tests of the nginx-free response-path core
# (src/ngx_ai_relay_sse.c, src/ngx_ai_relay_usage.c).
#
# Include it from the top Makefile:   include t/unit/unit.mk
# or run it alone:                    make -f t/unit/unit.mk unit
#
#   unit        build into build/unit/ and run both test programs
#   unit-asan   the same under AddressSanitizer + UBSan (build/unit/asan/)
#   unit-deps   apt-get install $(UNIT_PKGS) if missing
#   unit-clean  remove what these rules built (build/unit/ is shared)
#   unit-bench  build and run bench_stream: ns per SSE event and per body
#               of the response path (at -O, the nginx default; override
#               with UNIT_BENCH_CFLAGS=-O2)
#   unit-diff   run the usage extractor against its frozen oracle
#               (t/unit/usage_oracle.c) over the fixtures, the fuzz seeds,
#               their prefixes and UNIT_DIFF_MUTANTS mutations of each
#
# CC and CFLAGS may be overridden (make unit CC=clang CFLAGS=-O0); the
# warning flags nginx builds with are always added.

UNIT_PKGS     = libcmocka-dev libjansson-dev

UNIT_ROOT    := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../..)
UNIT_BUILD   ?= $(UNIT_ROOT)/build/unit

CC           ?= cc
CFLAGS       ?= -g -O2

UNIT_WARN     = -std=gnu99 -W -Wall -Wpointer-arith -Wno-unused-parameter \
                -Werror
UNIT_CPPFLAGS = -I$(UNIT_ROOT)/src -DNGX_AI_RELAY_USAGE_TEST=1 \
                -DNGX_AI_RELAY_FIXTURES='"$(UNIT_ROOT)/t/unit/fixtures"'
UNIT_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer

UNIT_SSE_SRCS   = $(UNIT_ROOT)/t/unit/test_sse.c \
                  $(UNIT_ROOT)/src/ngx_ai_relay_sse.c
UNIT_USAGE_SRCS = $(UNIT_ROOT)/t/unit/test_usage.c \
                  $(UNIT_ROOT)/src/ngx_ai_relay_sse.c \
                  $(UNIT_ROOT)/src/ngx_ai_relay_usage.c \
                  $(UNIT_ROOT)/src/ngx_ai_relay_json_scan.c
UNIT_HDRS       = $(UNIT_ROOT)/src/ngx_ai_relay_sse.h \
                  $(UNIT_ROOT)/src/ngx_ai_relay_usage.h \
                  $(UNIT_ROOT)/src/ngx_ai_relay_json_scan.h
UNIT_DIFF_SRCS  = $(UNIT_ROOT)/t/unit/diff_usage.c \
                  $(UNIT_ROOT)/t/unit/usage_oracle.c \
                  $(UNIT_ROOT)/src/ngx_ai_relay_usage.c \
                  $(UNIT_ROOT)/src/ngx_ai_relay_json_scan.c
UNIT_DIFF_MUTANTS ?= 200
UNIT_DIFF_INPUTS = $(wildcard $(UNIT_ROOT)/t/unit/fixtures/*.json \
                              $(UNIT_ROOT)/t/unit/fixtures/*.sse \
                              $(UNIT_ROOT)/fuzz/corpus_json_scan/*)

UNIT_BINS       = $(UNIT_BUILD)/test_sse $(UNIT_BUILD)/test_usage
UNIT_BENCH      = $(UNIT_BUILD)/bench_stream
UNIT_BENCH_CFLAGS ?= -g -O
UNIT_BENCH_SRCS = $(UNIT_ROOT)/t/unit/bench_stream.c \
                  $(UNIT_ROOT)/src/ngx_ai_relay_sse.c \
                  $(UNIT_ROOT)/src/ngx_ai_relay_usage.c \
                  $(UNIT_ROOT)/src/ngx_ai_relay_json_scan.c
UNIT_ASAN_BINS  = $(UNIT_BUILD)/asan/test_sse $(UNIT_BUILD)/asan/test_usage


.PHONY: unit unit-asan unit-deps unit-clean unit-bench unit-diff

unit: $(UNIT_BINS)
	$(UNIT_BUILD)/test_sse
	$(UNIT_BUILD)/test_usage

unit-asan: $(UNIT_ASAN_BINS)
	ASAN_OPTIONS=detect_leaks=1 $(UNIT_BUILD)/asan/test_sse
	ASAN_OPTIONS=detect_leaks=1 $(UNIT_BUILD)/asan/test_usage

unit-deps:
	dpkg -s $(UNIT_PKGS) >/dev/null 2>&1 \
	|| (apt-get update && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y $(UNIT_PKGS))

unit-bench: $(UNIT_BENCH)
	$(UNIT_BENCH)

unit-diff: $(UNIT_BUILD)/asan/diff_usage
	$(UNIT_BUILD)/asan/diff_usage -m $(UNIT_DIFF_MUTANTS) \
	    -d $(UNIT_ROOT)/fuzz/sse.dict $(UNIT_DIFF_INPUTS)

unit-clean:
	rm -f $(UNIT_BINS) $(UNIT_ASAN_BINS) $(UNIT_BENCH) \
	    $(UNIT_BUILD)/asan/diff_usage

$(UNIT_BUILD)/test_sse: $(UNIT_SSE_SRCS) $(UNIT_HDRS)
	@mkdir -p $(@D)
	$(CC) $(UNIT_WARN) $(CFLAGS) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_SSE_SRCS) -lcmocka

$(UNIT_BUILD)/test_usage: $(UNIT_USAGE_SRCS) $(UNIT_HDRS)
	@mkdir -p $(@D)
	$(CC) $(UNIT_WARN) $(CFLAGS) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_USAGE_SRCS) -lcmocka

$(UNIT_BUILD)/asan/test_sse: $(UNIT_SSE_SRCS) $(UNIT_HDRS)
	@mkdir -p $(@D)
	$(CC) $(UNIT_WARN) $(CFLAGS) $(UNIT_SAN) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_SSE_SRCS) -lcmocka

$(UNIT_BUILD)/asan/test_usage: $(UNIT_USAGE_SRCS) $(UNIT_HDRS)
	@mkdir -p $(@D)
	$(CC) $(UNIT_WARN) $(CFLAGS) $(UNIT_SAN) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_USAGE_SRCS) -lcmocka

$(UNIT_BENCH): $(UNIT_BENCH_SRCS) $(UNIT_HDRS)
	@mkdir -p $(@D)
	$(CC) $(UNIT_WARN) $(UNIT_BENCH_CFLAGS) -I$(UNIT_ROOT)/src \
	    -DNGX_AI_RELAY_ROOT='"$(UNIT_ROOT)"' -o $@ $(UNIT_BENCH_SRCS)

$(UNIT_BUILD)/asan/diff_usage: $(UNIT_DIFF_SRCS) $(UNIT_HDRS) \
        $(UNIT_ROOT)/t/unit/usage_diff.h
	@mkdir -p $(@D)
	$(CC) $(UNIT_WARN) $(CFLAGS) $(UNIT_SAN) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_DIFF_SRCS) -ljansson


# the Prometheus text format (src/ngx_ai_relay_prom.c)

UNIT_PROM_SRCS  = $(UNIT_ROOT)/t/unit/test_prom.c \
                  $(UNIT_ROOT)/src/ngx_ai_relay_prom.c

.PHONY: unit-prom unit-prom-asan unit-prom-clean

unit: unit-prom

unit-asan: unit-prom-asan

unit-clean: unit-prom-clean

unit-prom: $(UNIT_BUILD)/test_prom
	$(UNIT_BUILD)/test_prom

unit-prom-asan: $(UNIT_BUILD)/asan/test_prom
	ASAN_OPTIONS=detect_leaks=1 $(UNIT_BUILD)/asan/test_prom

unit-prom-clean:
	rm -f $(UNIT_BUILD)/test_prom $(UNIT_BUILD)/asan/test_prom

$(UNIT_BUILD)/test_prom: $(UNIT_PROM_SRCS) \
        $(UNIT_ROOT)/src/ngx_ai_relay_prom.h
	@mkdir -p $(@D)
	$(CC) $(UNIT_WARN) $(CFLAGS) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_PROM_SRCS) -lcmocka

$(UNIT_BUILD)/asan/test_prom: $(UNIT_PROM_SRCS) \
        $(UNIT_ROOT)/src/ngx_ai_relay_prom.h
	@mkdir -p $(@D)
	$(CC) $(UNIT_WARN) $(CFLAGS) $(UNIT_SAN) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_PROM_SRCS) -lcmocka
