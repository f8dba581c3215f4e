# libFuzzer targets (included by the top Makefile): the JSON scanner
# (fuzz_json_scan.c) and the SSE parser with the usage extractor
# (fuzz_sse.c), built with $(FUZZ_CC) into build/fuzz/.
#
#   make fuzz                 both, FUZZ_SECONDS (default 60) each: the
#                             JSON scanner, then the SSE parser; crashes
#                             land in build/fuzz/ (json-scan-crash-...,
#                             crash-...)
#   make fuzz-json-scan       the JSON scanner alone (also: make core-fuzz)
#   make fuzz-sse             the SSE parser and usage extractor alone,
#                             seeded with t/unit/fixtures
#   make fuzz-smoke           run the seeds and the saved corpora once
#                             (no fuzzing)
#   make fuzz-usage-diff      fuzz the usage extractor against its frozen
#                             oracle (t/unit/usage_oracle.c), FUZZ_SECONDS;
#                             crashes: build/fuzz/diff-...
#   make fuzz-multipart       the multipart parser and the answer's model
#                             finder, FUZZ_SECONDS; crashes:
#                             build/fuzz/multipart-...
#   make fuzz-slot            Redis Cluster's routing (slot map, MOVED and
#                             ASK, key slots), FUZZ_SECONDS; crashes:
#                             build/fuzz/slot-...
#   make fuzz-deps            install $(FUZZ_PKGS) if missing
#   make fuzz-clean           remove build/fuzz/

$(if $(TOP),,$(error fuzz/fuzz.mk is included by the top Makefile: make fuzz))

FUZZ_PKGS     := clang libclang-rt-14-dev libjansson-dev

FUZZ_BUILD   := $(BUILD)/fuzz

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS   = $(WARN) -g -O1 -fsanitize=fuzzer $(SAN_CFLAGS) \
                -I$(TOP)/src -I$(TOP)/t/unit
FUZZ_RUN      = -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1

# the JSON scanner: its corpus is kept in the tree
FUZZ_JSON_SCAN_SRCS = $(TOP)/fuzz/fuzz_json_scan.c \
                      $(TOP)/src/ngx_ai_relay_json_scan.c
FUZZ_JSON_SCAN_HDRS = $(TOP)/src/ngx_ai_relay_json_scan.h \
                      $(TOP)/t/unit/json_scan_diff.h
FUZZ_JSON_SCAN_LEN  ?= 4096

# the SSE parser and usage extractor: seeded from the unit fixtures
FUZZ_SSE_SRCS  = $(TOP)/fuzz/fuzz_sse.c \
                 $(TOP)/src/ngx_ai_relay_sse.c \
                 $(TOP)/src/ngx_ai_relay_usage.c \
                 $(TOP)/src/ngx_ai_relay_json_scan.c
FUZZ_SSE_HDRS  = $(TOP)/src/ngx_ai_relay_sse.h \
                 $(TOP)/src/ngx_ai_relay_usage.h \
                 $(TOP)/src/ngx_ai_relay_json_scan.h
FUZZ_SSE_SEEDS = $(wildcard $(TOP)/t/unit/fixtures/*.sse \
                            $(TOP)/t/unit/fixtures/*.json)
FUZZ_MAX_LEN  ?= 16384

# the usage extractor against its frozen oracle, on the SSE seeds
FUZZ_DIFF_SRCS = $(TOP)/fuzz/fuzz_usage_diff.c \
                 $(TOP)/t/unit/usage_oracle.c \
                 $(TOP)/src/ngx_ai_relay_usage.c \
                 $(TOP)/src/ngx_ai_relay_json_scan.c

.PHONY: fuzz fuzz-json-scan core-fuzz fuzz-sse fuzz-smoke fuzz-deps \
        fuzz-clean fuzz-usage-diff fuzz-multipart \
        fuzz-slot

# the multipart parser and the model finder
FUZZ_MP_SRCS = $(TOP)/fuzz/fuzz_multipart.c \
               $(TOP)/src/ngx_ai_relay_multipart.c \
               $(TOP)/src/ngx_ai_relay_rename.c \
               $(TOP)/src/ngx_ai_relay_audio.c
FUZZ_MP_HDRS = $(TOP)/src/ngx_ai_relay_multipart.h \
               $(TOP)/src/ngx_ai_relay_rename.h \
               $(TOP)/src/ngx_ai_relay_audio.h

fuzz: fuzz-json-scan fuzz-sse fuzz-slot fuzz-multipart

core-fuzz: fuzz-json-scan

fuzz-json-scan: $(FUZZ_BUILD)/fuzz_json_scan
	@mkdir -p $(FUZZ_BUILD)/corpus_json_scan
	$(FUZZ_BUILD)/fuzz_json_scan $(FUZZ_RUN) \
	    -artifact_prefix=$(FUZZ_BUILD)/json-scan- \
	    -max_len=$(FUZZ_JSON_SCAN_LEN) -dict=$(TOP)/fuzz/json_scan.dict \
	    $(FUZZ_BUILD)/corpus_json_scan $(TOP)/fuzz/corpus_json_scan

fuzz-sse: $(FUZZ_BUILD)/fuzz_sse $(FUZZ_BUILD)/seed.stamp
	@mkdir -p $(FUZZ_BUILD)/corpus
	$(FUZZ_BUILD)/fuzz_sse $(FUZZ_RUN) -artifact_prefix=$(FUZZ_BUILD)/ \
	    -max_len=$(FUZZ_MAX_LEN) -dict=$(TOP)/fuzz/sse.dict \
	    $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/seed

fuzz-smoke: $(FUZZ_BUILD)/fuzz_json_scan $(FUZZ_BUILD)/fuzz_sse \
            $(FUZZ_BUILD)/seed.stamp
	@mkdir -p $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/corpus_json_scan
	$(FUZZ_BUILD)/fuzz_json_scan -runs=0 \
	    -artifact_prefix=$(FUZZ_BUILD)/json-scan- \
	    $(FUZZ_BUILD)/corpus_json_scan $(TOP)/fuzz/corpus_json_scan
	$(FUZZ_BUILD)/fuzz_sse -runs=0 -artifact_prefix=$(FUZZ_BUILD)/ \
	    $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/seed

fuzz-usage-diff: $(FUZZ_BUILD)/fuzz_usage_diff $(FUZZ_BUILD)/seed.stamp
	@mkdir -p $(FUZZ_BUILD)/corpus_diff
	$(FUZZ_BUILD)/fuzz_usage_diff $(FUZZ_RUN) \
	    -artifact_prefix=$(FUZZ_BUILD)/diff- \
	    -max_len=$(FUZZ_MAX_LEN) -dict=$(TOP)/fuzz/sse.dict \
	    $(FUZZ_BUILD)/corpus_diff $(FUZZ_BUILD)/seed

fuzz-multipart: $(FUZZ_BUILD)/fuzz_multipart
	@mkdir -p $(FUZZ_BUILD)/corpus_multipart
	$(FUZZ_BUILD)/fuzz_multipart $(FUZZ_RUN) \
	    -artifact_prefix=$(FUZZ_BUILD)/multipart- -max_len=4096 \
	    $(FUZZ_BUILD)/corpus_multipart $(TOP)/fuzz/corpus_multipart

fuzz-slot: $(FUZZ_BUILD)/fuzz_slot
	@mkdir -p $(FUZZ_BUILD)/corpus_slot
	$(FUZZ_BUILD)/fuzz_slot $(FUZZ_RUN) -artifact_prefix=$(FUZZ_BUILD)/slot- \
	    -max_len=4096 -dict=$(TOP)/fuzz/slot.dict $(FUZZ_BUILD)/corpus_slot

fuzz-deps:
	@$(call apt_install,$(FUZZ_PKGS))

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

# fuzz-deps first (order only: checked on each build, never a rebuild)
$(FUZZ_BUILD)/fuzz_json_scan: $(FUZZ_JSON_SCAN_SRCS) $(FUZZ_JSON_SCAN_HDRS) \
        | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_JSON_SCAN_SRCS) -ljansson

$(FUZZ_BUILD)/fuzz_sse: $(FUZZ_SSE_SRCS) $(FUZZ_SSE_HDRS) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SSE_SRCS) -ljansson

$(FUZZ_BUILD)/fuzz_usage_diff: $(FUZZ_DIFF_SRCS) $(FUZZ_SSE_HDRS) \
        $(TOP)/t/unit/usage_diff.h | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_DIFF_SRCS) -ljansson

$(FUZZ_BUILD)/fuzz_multipart: $(FUZZ_MP_SRCS) $(FUZZ_MP_HDRS) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_MP_SRCS)

$(FUZZ_BUILD)/seed.stamp: $(FUZZ_SSE_SEEDS)
	@mkdir -p $(FUZZ_BUILD)/seed
	cp $(FUZZ_SSE_SEEDS) $(FUZZ_BUILD)/seed/
	@touch $@


# format translation: requests, answers, errors and streams of every pair
# the relay translates, seeded with the unit fixtures and the JSON corpus;
# every translation that succeeds must be valid JSON (make fuzz-xlate)

FUZZ_XLATE_SRCS = $(TOP)/fuzz/fuzz_xlate.c \
                  $(TOP)/src/ngx_ai_relay_xlate.c \
                  $(TOP)/src/ngx_ai_relay_xlate_sse.c \
                  $(TOP)/src/ngx_ai_relay_sse.c \
                  $(TOP)/src/ngx_ai_relay_json_scan.c
FUZZ_XLATE_HDRS = $(TOP)/src/ngx_ai_relay_xlate.h $(FUZZ_SSE_HDRS)

.PHONY: fuzz-xlate fuzz-xlate-smoke

fuzz: fuzz-xlate

fuzz-smoke: fuzz-xlate-smoke

fuzz-xlate: $(FUZZ_BUILD)/fuzz_xlate $(FUZZ_BUILD)/seed.stamp
	@mkdir -p $(FUZZ_BUILD)/corpus_xlate
	$(FUZZ_BUILD)/fuzz_xlate $(FUZZ_RUN) -artifact_prefix=$(FUZZ_BUILD)/xlate- \
	    -max_len=$(FUZZ_MAX_LEN) -dict=$(TOP)/fuzz/xlate.dict \
	    $(FUZZ_BUILD)/corpus_xlate $(FUZZ_BUILD)/seed \
	    $(TOP)/fuzz/corpus_json_scan

fuzz-xlate-smoke: $(FUZZ_BUILD)/fuzz_xlate $(FUZZ_BUILD)/seed.stamp
	@mkdir -p $(FUZZ_BUILD)/corpus_xlate
	$(FUZZ_BUILD)/fuzz_xlate -runs=0 -artifact_prefix=$(FUZZ_BUILD)/xlate- \
	    $(FUZZ_BUILD)/corpus_xlate $(FUZZ_BUILD)/seed

$(FUZZ_BUILD)/fuzz_xlate: $(FUZZ_XLATE_SRCS) $(FUZZ_XLATE_HDRS) | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_XLATE_SRCS)

$(FUZZ_BUILD)/fuzz_slot: $(TOP)/fuzz/fuzz_slot.c $(TOP)/src/ngx_ai_relay_slot.c \
        $(TOP)/src/ngx_ai_relay_slot.h | fuzz-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(TOP)/fuzz/fuzz_slot.c \
	    $(TOP)/src/ngx_ai_relay_slot.c -lhiredis
