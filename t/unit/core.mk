# ngx_ai_relay: unit tests of the nginx-free core (json_scan, price, key,
# breaker).
#
# Included by the top-level Makefile; paths are relative to the repository
# root.  Targets:
#
#   core-unit        build the tests and the benchmark into build/unit/
#   core-unit-test   build and run the tests
#   core-unit-san    build and run the tests with ASan and UBSan
#   core-bench       run the json_scan benchmark (1 MB bodies)
#   core-fuzz        build the libFuzzer target (clang) and run it for
#                    CORE_FUZZ_TIME seconds
#   core-unit-clean  remove what these rules built
#
# Needs libcmocka-dev, libjansson-dev, libssl-dev; core-fuzz needs clang
# and libclang-rt-14-dev.

CORE_UNIT_CC ?= cc
CORE_FUZZ_CC ?= clang
CORE_FUZZ_TIME ?= 300

CORE_UNIT_DIR = build/unit

CORE_UNIT_WARN = -W -Wall -Wpointer-arith -Wno-unused-parameter -Werror
CORE_UNIT_CFLAGS = -std=gnu99 -O2 -g $(CORE_UNIT_WARN) -Isrc -It/unit
CORE_UNIT_SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer

CORE_UNIT_TESTS = \
    $(CORE_UNIT_DIR)/test_json_scan \
    $(CORE_UNIT_DIR)/test_price \
    $(CORE_UNIT_DIR)/test_key \
    $(CORE_UNIT_DIR)/test_breaker

CORE_UNIT_SAN_TESTS = $(CORE_UNIT_TESTS:%=%_san)

CORE_UNIT_BENCH = $(CORE_UNIT_DIR)/bench_json_scan
CORE_UNIT_FUZZ = $(CORE_UNIT_DIR)/fuzz_json_scan

CORE_JSON_SCAN_SRCS = src/ngx_ai_relay_json_scan.c
CORE_JSON_SCAN_DEPS = src/ngx_ai_relay_json_scan.h t/unit/json_scan_diff.h
CORE_PRICE_SRCS = src/ngx_ai_relay_price.c
CORE_PRICE_DEPS = src/ngx_ai_relay_price.h
CORE_KEY_SRCS = src/ngx_ai_relay_key.c
CORE_KEY_DEPS = src/ngx_ai_relay_key.h
CORE_BREAKER_SRCS = src/ngx_ai_relay_breaker.c
CORE_BREAKER_DEPS = src/ngx_ai_relay_breaker.h


.PHONY: core-unit core-unit-test core-unit-san core-bench core-fuzz \
        core-unit-clean

core-unit: $(CORE_UNIT_TESTS) $(CORE_UNIT_BENCH)

core-unit-test: $(CORE_UNIT_TESTS)
	@set -e; for t in $(CORE_UNIT_TESTS); do echo "== $$t"; ./$$t; done

core-unit-san: $(CORE_UNIT_SAN_TESTS)
	@set -e; for t in $(CORE_UNIT_SAN_TESTS); do echo "== $$t"; ./$$t; done

core-bench: $(CORE_UNIT_BENCH)
	./$(CORE_UNIT_BENCH)

core-fuzz: $(CORE_UNIT_FUZZ)
	@mkdir -p $(CORE_UNIT_DIR)/fuzz_corpus
	./$(CORE_UNIT_FUZZ) -max_total_time=$(CORE_FUZZ_TIME) \
	    -dict=fuzz/json_scan.dict -max_len=4096 \
	    $(CORE_UNIT_DIR)/fuzz_corpus fuzz/corpus_json_scan

core-unit-clean:
	rm -rf $(CORE_UNIT_TESTS) $(CORE_UNIT_SAN_TESTS) $(CORE_UNIT_BENCH) \
	    $(CORE_UNIT_FUZZ) $(CORE_UNIT_DIR)/fuzz_corpus


$(CORE_UNIT_DIR)/test_json_scan: t/unit/test_json_scan.c \
        $(CORE_JSON_SCAN_SRCS) $(CORE_JSON_SCAN_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ t/unit/test_json_scan.c \
	    $(CORE_JSON_SCAN_SRCS) -lcmocka -ljansson

$(CORE_UNIT_DIR)/test_price: t/unit/test_price.c \
        $(CORE_PRICE_SRCS) $(CORE_PRICE_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ t/unit/test_price.c \
	    $(CORE_PRICE_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_key: t/unit/test_key.c \
        $(CORE_KEY_SRCS) $(CORE_KEY_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ t/unit/test_key.c \
	    $(CORE_KEY_SRCS) -lcmocka -lcrypto

$(CORE_UNIT_DIR)/test_json_scan_san: t/unit/test_json_scan.c \
        $(CORE_JSON_SCAN_SRCS) $(CORE_JSON_SCAN_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    t/unit/test_json_scan.c $(CORE_JSON_SCAN_SRCS) -lcmocka -ljansson

$(CORE_UNIT_DIR)/test_price_san: t/unit/test_price.c \
        $(CORE_PRICE_SRCS) $(CORE_PRICE_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    t/unit/test_price.c $(CORE_PRICE_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_key_san: t/unit/test_key.c \
        $(CORE_KEY_SRCS) $(CORE_KEY_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    t/unit/test_key.c $(CORE_KEY_SRCS) -lcmocka -lcrypto

$(CORE_UNIT_DIR)/test_breaker: t/unit/test_breaker.c \
        $(CORE_BREAKER_SRCS) $(CORE_BREAKER_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ t/unit/test_breaker.c \
	    $(CORE_BREAKER_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_breaker_san: t/unit/test_breaker.c \
        $(CORE_BREAKER_SRCS) $(CORE_BREAKER_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    t/unit/test_breaker.c $(CORE_BREAKER_SRCS) -lcmocka

$(CORE_UNIT_BENCH): t/unit/bench_json_scan.c \
        $(CORE_JSON_SCAN_SRCS) src/ngx_ai_relay_json_scan.h
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ t/unit/bench_json_scan.c \
	    $(CORE_JSON_SCAN_SRCS)

$(CORE_UNIT_FUZZ): fuzz/fuzz_json_scan.c \
        $(CORE_JSON_SCAN_SRCS) $(CORE_JSON_SCAN_DEPS)
	@mkdir -p $(@D)
	$(CORE_FUZZ_CC) -std=gnu99 -g -O1 $(CORE_UNIT_WARN) -Isrc -It/unit \
	    -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -o $@ fuzz/fuzz_json_scan.c \
	    $(CORE_JSON_SCAN_SRCS) -ljansson
