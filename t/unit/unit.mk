# cmocka unit tests of the nginx-free response-path core
# (src/ngx_ai_relay_sse.c, src/ngx_ai_relay_usage.c), included by the top
# Makefile.
#
#   make unit        build into build/unit/ and run both test programs
#   make unit-asan   the same with $(SAN_CFLAGS), ASan + UBSan
#                    (build/unit/asan/)
#   make unit-deps   install $(UNIT_PKGS) if missing
#   make unit-clean  remove what these rules built (build/unit/ is shared)
#   make unit-bench  build and run bench_stream: ns per SSE event and per
#                    body of the response path (at -O, the nginx default;
#                    override with UNIT_BENCH_CFLAGS=-O2)
#   make unit-diff   run the usage extractor against its frozen oracle
#                    (t/unit/usage_oracle.c) over the fixtures, the fuzz
#                    seeds, their prefixes and UNIT_DIFF_MUTANTS mutations
#                    of each
#
# CC and CFLAGS may be overridden (make unit CC=clang CFLAGS=-O0); the
# warning flags nginx builds with ($(WARN)) are always added.

$(if $(TOP),,$(error t/unit/unit.mk is included by the top Makefile: make unit))

UNIT_PKGS    := libcmocka-dev libjansson-dev

# names of before the convention (top of Makefile), for rules written or
# merged since: an error saying what to use instead
UNIT_ROOT     = $(error UNIT_ROOT is gone, use $$(TOP))
UNIT_WARN     = $(error UNIT_WARN is gone, use $$(WARN))
UNIT_SAN      = $(error UNIT_SAN is gone, use $$(SAN_CFLAGS))

UNIT_BUILD   := $(BUILD)/unit

UNIT_CPPFLAGS = -I$(TOP)/src -DNGX_AI_RELAY_USAGE_TEST=1 \
                -DNGX_AI_RELAY_FIXTURES='"$(TOP)/t/unit/fixtures"'

UNIT_SSE_SRCS   = $(TOP)/t/unit/test_sse.c \
                  $(TOP)/src/ngx_ai_relay_sse.c
UNIT_USAGE_SRCS = $(TOP)/t/unit/test_usage.c \
                  $(TOP)/src/ngx_ai_relay_sse.c \
                  $(TOP)/src/ngx_ai_relay_usage.c \
                  $(TOP)/src/ngx_ai_relay_json_scan.c
UNIT_HDRS       = $(TOP)/src/ngx_ai_relay_sse.h \
                  $(TOP)/src/ngx_ai_relay_usage.h \
                  $(TOP)/src/ngx_ai_relay_json_scan.h
UNIT_DIFF_SRCS  = $(TOP)/t/unit/diff_usage.c \
                  $(TOP)/t/unit/usage_oracle.c \
                  $(TOP)/src/ngx_ai_relay_usage.c \
                  $(TOP)/src/ngx_ai_relay_json_scan.c
UNIT_DIFF_MUTANTS ?= 200
UNIT_DIFF_INPUTS = $(wildcard $(TOP)/t/unit/fixtures/*.json \
                              $(TOP)/t/unit/fixtures/*.sse \
                              $(TOP)/fuzz/corpus_json_scan/*)

UNIT_BINS       = $(UNIT_BUILD)/test_sse $(UNIT_BUILD)/test_usage
UNIT_BENCH      = $(UNIT_BUILD)/bench_stream
UNIT_BENCH_CFLAGS ?= -g -O
UNIT_BENCH_SRCS = $(TOP)/t/unit/bench_stream.c \
                  $(TOP)/src/ngx_ai_relay_sse.c \
                  $(TOP)/src/ngx_ai_relay_usage.c \
                  $(TOP)/src/ngx_ai_relay_xlate.c \
                  $(TOP)/src/ngx_ai_relay_xlate_sse.c \
                  $(TOP)/src/ngx_ai_relay_json_scan.c
UNIT_ASAN_BINS  = $(UNIT_BUILD)/asan/test_sse $(UNIT_BUILD)/asan/test_usage


.PHONY: unit unit-asan unit-deps unit-clean unit-bench unit-diff

unit: $(UNIT_BINS)
	$(UNIT_BUILD)/test_sse
	$(UNIT_BUILD)/test_usage

unit-asan: $(UNIT_ASAN_BINS)
	$(SAN_ENV) $(UNIT_BUILD)/asan/test_sse
	$(SAN_ENV) $(UNIT_BUILD)/asan/test_usage

unit-deps:
	@$(call apt_install,$(UNIT_PKGS))

unit-bench: $(UNIT_BENCH)
	$(UNIT_BENCH)

unit-diff: $(UNIT_BUILD)/asan/diff_usage
	$(SAN_ENV) $(UNIT_BUILD)/asan/diff_usage -m $(UNIT_DIFF_MUTANTS) \
	    -d $(TOP)/fuzz/sse.dict $(UNIT_DIFF_INPUTS)

unit-clean:
	rm -f $(UNIT_BINS) $(UNIT_ASAN_BINS) $(UNIT_BENCH) \
	    $(UNIT_BUILD)/asan/diff_usage

$(UNIT_BUILD)/test_sse: $(UNIT_SSE_SRCS) $(UNIT_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_SSE_SRCS) -lcmocka

$(UNIT_BUILD)/test_usage: $(UNIT_USAGE_SRCS) $(UNIT_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_USAGE_SRCS) -lcmocka

$(UNIT_BUILD)/asan/test_sse: $(UNIT_SSE_SRCS) $(UNIT_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(SAN_CFLAGS) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_SSE_SRCS) -lcmocka

$(UNIT_BUILD)/asan/test_usage: $(UNIT_USAGE_SRCS) $(UNIT_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(SAN_CFLAGS) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_USAGE_SRCS) -lcmocka

$(UNIT_BENCH): $(UNIT_BENCH_SRCS) $(UNIT_HDRS) $(TOP)/src/ngx_ai_relay_xlate.h
	@mkdir -p $(@D)
	$(CC) $(UNIT_BENCH_CFLAGS) $(WARN) -I$(TOP)/src \
	    -DNGX_AI_RELAY_ROOT='"$(TOP)"' -o $@ $(UNIT_BENCH_SRCS)

$(UNIT_BUILD)/asan/diff_usage: $(UNIT_DIFF_SRCS) $(UNIT_HDRS) \
        $(TOP)/t/unit/usage_diff.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(SAN_CFLAGS) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_DIFF_SRCS) -ljansson


# the Prometheus text format (src/ngx_ai_relay_prom.c)

UNIT_PROM_SRCS  = $(TOP)/t/unit/test_prom.c \
                  $(TOP)/src/ngx_ai_relay_prom.c

.PHONY: unit-prom unit-prom-asan unit-prom-clean

unit: unit-prom

unit-asan: unit-prom-asan

unit-clean: unit-prom-clean

unit-prom: $(UNIT_BUILD)/test_prom
	$(UNIT_BUILD)/test_prom

unit-prom-asan: $(UNIT_BUILD)/asan/test_prom
	$(SAN_ENV) $(UNIT_BUILD)/asan/test_prom

unit-prom-clean:
	rm -f $(UNIT_BUILD)/test_prom $(UNIT_BUILD)/asan/test_prom

$(UNIT_BUILD)/test_prom: $(UNIT_PROM_SRCS) \
        $(TOP)/src/ngx_ai_relay_prom.h
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_PROM_SRCS) -lcmocka

$(UNIT_BUILD)/asan/test_prom: $(UNIT_PROM_SRCS) \
        $(TOP)/src/ngx_ai_relay_prom.h
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) $(SAN_CFLAGS) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_PROM_SRCS) -lcmocka


# format translation (src/ngx_ai_relay_xlate.c, _xlate_sse.c): requests,
# whole answers and streams against t/unit/fixtures and their expected
# translations in t/unit/fixtures/xlate/

UNIT_XLATE_SRCS = $(TOP)/t/unit/test_xlate.c \
                  $(TOP)/src/ngx_ai_relay_xlate.c \
                  $(TOP)/src/ngx_ai_relay_xlate_sse.c \
                  $(TOP)/src/ngx_ai_relay_sse.c \
                  $(TOP)/src/ngx_ai_relay_json_scan.c
UNIT_XLATE_HDRS = $(TOP)/src/ngx_ai_relay_xlate.h \
                  $(TOP)/src/ngx_ai_relay_sse.h \
                  $(TOP)/src/ngx_ai_relay_json_scan.h

.PHONY: unit-xlate unit-xlate-asan unit-xlate-clean

unit: unit-xlate

unit-asan: unit-xlate-asan

unit-clean: unit-xlate-clean

unit-xlate: $(UNIT_BUILD)/test_xlate
	cd $(TOP)/t/unit/fixtures && $(UNIT_BUILD)/test_xlate

unit-xlate-asan: $(UNIT_BUILD)/asan/test_xlate
	cd $(TOP)/t/unit/fixtures && $(SAN_ENV) $(UNIT_BUILD)/asan/test_xlate

unit-xlate-clean:
	rm -f $(UNIT_BUILD)/test_xlate $(UNIT_BUILD)/asan/test_xlate

$(UNIT_BUILD)/test_xlate: $(UNIT_XLATE_SRCS) $(UNIT_XLATE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_XLATE_SRCS) -lcmocka

$(UNIT_BUILD)/asan/test_xlate: $(UNIT_XLATE_SRCS) $(UNIT_XLATE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) $(SAN_CFLAGS) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_XLATE_SRCS) -lcmocka


# Redis Cluster's routing (src/ngx_ai_relay_slot.c)

UNIT_SLOT_SRCS  = $(TOP)/t/unit/test_slot.c \
                  $(TOP)/src/ngx_ai_relay_slot.c

.PHONY: unit-slot unit-slot-asan unit-slot-clean

unit: unit-slot

unit-asan: unit-slot-asan

unit-clean: unit-slot-clean

unit-slot: $(UNIT_BUILD)/test_slot
	$(UNIT_BUILD)/test_slot

unit-slot-asan: $(UNIT_BUILD)/asan/test_slot
	$(SAN_ENV) $(UNIT_BUILD)/asan/test_slot

unit-slot-clean:
	rm -f $(UNIT_BUILD)/test_slot $(UNIT_BUILD)/asan/test_slot

$(UNIT_BUILD)/test_slot: $(UNIT_SLOT_SRCS) \
        $(TOP)/src/ngx_ai_relay_slot.h $(TOP)/src/ngx_ai_relay_schema.h
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_SLOT_SRCS) -lcmocka -lhiredis

$(UNIT_BUILD)/asan/test_slot: $(UNIT_SLOT_SRCS) \
        $(TOP)/src/ngx_ai_relay_slot.h $(TOP)/src/ngx_ai_relay_schema.h
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) $(SAN_CFLAGS) $(UNIT_CPPFLAGS) -o $@ \
	    $(UNIT_SLOT_SRCS) -lcmocka -lhiredis
