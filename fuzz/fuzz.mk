# libFuzzer target for the SSE parser and usage extractor.
#
# Include it from the top Makefile:   include fuzz/fuzz.mk
# or run it alone:                    make -f fuzz/fuzz.mk fuzz
#
#   fuzz        build build/fuzz/fuzz_sse and fuzz for $(FUZZ_SECONDS) s,
#               seeded with t/unit/fixtures; crashes land in build/fuzz/
#   fuzz-smoke  run the seeds and the saved corpus once (no fuzzing)
#   fuzz-usage-diff  fuzz the usage extractor against its frozen oracle
#               (t/unit/usage_oracle.c) for $(FUZZ_SECONDS) s
#   fuzz-deps   apt-get install $(FUZZ_PKGS) if missing
#   fuzz-clean  remove build/fuzz/

FUZZ_PKGS     = clang libclang-rt-14-dev libjansson-dev

FUZZ_ROOT    := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
FUZZ_BUILD   ?= $(FUZZ_ROOT)/build/fuzz

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 16384
FUZZ_FLAGS   ?= -std=gnu99 -g -O1 -W -Wall -Wpointer-arith \
                -Wno-unused-parameter -Werror \
                -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -fno-omit-frame-pointer

FUZZ_SRCS     = $(FUZZ_ROOT)/fuzz/fuzz_sse.c \
                $(FUZZ_ROOT)/src/ngx_ai_relay_sse.c \
                $(FUZZ_ROOT)/src/ngx_ai_relay_usage.c \
                $(FUZZ_ROOT)/src/ngx_ai_relay_json_scan.c
FUZZ_HDRS     = $(FUZZ_ROOT)/src/ngx_ai_relay_sse.h \
                $(FUZZ_ROOT)/src/ngx_ai_relay_usage.h \
                $(FUZZ_ROOT)/src/ngx_ai_relay_json_scan.h
FUZZ_DIFF_SRCS = $(FUZZ_ROOT)/fuzz/fuzz_usage_diff.c \
                $(FUZZ_ROOT)/t/unit/usage_oracle.c \
                $(FUZZ_ROOT)/src/ngx_ai_relay_usage.c \
                $(FUZZ_ROOT)/src/ngx_ai_relay_json_scan.c
FUZZ_DICT     = $(FUZZ_ROOT)/fuzz/sse.dict
FUZZ_SEEDS    = $(wildcard $(FUZZ_ROOT)/t/unit/fixtures/*.sse \
                           $(FUZZ_ROOT)/t/unit/fixtures/*.json)


.PHONY: fuzz fuzz-smoke fuzz-deps fuzz-clean fuzz-usage-diff

fuzz: $(FUZZ_BUILD)/fuzz_sse $(FUZZ_BUILD)/seed.stamp
	@mkdir -p $(FUZZ_BUILD)/corpus
	$(FUZZ_BUILD)/fuzz_sse -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=$(FUZZ_MAX_LEN) -dict=$(FUZZ_DICT) \
	    -artifact_prefix=$(FUZZ_BUILD)/ -print_final_stats=1 \
	    $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/seed

fuzz-smoke: $(FUZZ_BUILD)/fuzz_sse $(FUZZ_BUILD)/seed.stamp
	@mkdir -p $(FUZZ_BUILD)/corpus
	$(FUZZ_BUILD)/fuzz_sse -runs=0 -artifact_prefix=$(FUZZ_BUILD)/ \
	    $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/seed

fuzz-usage-diff: $(FUZZ_BUILD)/fuzz_usage_diff $(FUZZ_BUILD)/seed.stamp
	@mkdir -p $(FUZZ_BUILD)/corpus_diff
	$(FUZZ_BUILD)/fuzz_usage_diff -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=$(FUZZ_MAX_LEN) -dict=$(FUZZ_DICT) \
	    -artifact_prefix=$(FUZZ_BUILD)/diff- -print_final_stats=1 \
	    $(FUZZ_BUILD)/corpus_diff $(FUZZ_BUILD)/seed

fuzz-deps:
	dpkg -s $(FUZZ_PKGS) >/dev/null 2>&1 \
	|| (apt-get update && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y $(FUZZ_PKGS))

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

$(FUZZ_BUILD)/fuzz_sse: $(FUZZ_SRCS) $(FUZZ_HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -I$(FUZZ_ROOT)/src -o $@ $(FUZZ_SRCS) \
	    -ljansson

$(FUZZ_BUILD)/fuzz_usage_diff: $(FUZZ_DIFF_SRCS) $(FUZZ_HDRS) \
        $(FUZZ_ROOT)/t/unit/usage_diff.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -I$(FUZZ_ROOT)/src -I$(FUZZ_ROOT)/t/unit \
	    -o $@ $(FUZZ_DIFF_SRCS) -ljansson

$(FUZZ_BUILD)/seed.stamp: $(FUZZ_SEEDS)
	@mkdir -p $(FUZZ_BUILD)/seed
	cp $(FUZZ_SEEDS) $(FUZZ_BUILD)/seed/
	@touch $@
