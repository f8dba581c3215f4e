# ngx_ai_relay: unit tests of the nginx-free core (json_scan, price, key,
# breaker, endpoint, multipart, rename, audio, vtask), included by the top
# Makefile.  Targets:
#
#   make core-unit        build the tests and the benchmark into build/unit/
#   make core-unit-test   build and run the tests
#   make core-unit-san    build and run the tests with $(SAN_CFLAGS)
#                         (ASan and UBSan)
#   make core-bench       run the json_scan benchmark (1 MB bodies)
#   make core-unit-clean  remove what these rules built
#
# Needs libcmocka-dev, libjansson-dev, libssl-dev (make test-deps).  The
# JSON scanner's fuzzer is in fuzz/fuzz.mk (make fuzz-json-scan).

CORE_UNIT_CC      = $(CC)

CORE_UNIT_DIR     = $(BUILD)/unit

CORE_UNIT_CFLAGS  = $(CFLAGS) $(WARN) -I$(TOP)/src -I$(TOP)/t/unit
CORE_UNIT_SAN     = $(SAN_CFLAGS)

CORE_UNIT_TESTS = \
    $(CORE_UNIT_DIR)/test_json_scan \
    $(CORE_UNIT_DIR)/test_price \
    $(CORE_UNIT_DIR)/test_key \
    $(CORE_UNIT_DIR)/test_breaker \
    $(CORE_UNIT_DIR)/test_endpoint \
    $(CORE_UNIT_DIR)/test_multipart \
    $(CORE_UNIT_DIR)/test_rename \
    $(CORE_UNIT_DIR)/test_audio \
    $(CORE_UNIT_DIR)/test_vtask

CORE_UNIT_SAN_TESTS = $(CORE_UNIT_TESTS:%=%_san)

CORE_UNIT_BENCH = $(CORE_UNIT_DIR)/bench_json_scan

CORE_JSON_SCAN_SRCS = $(TOP)/src/ngx_ai_relay_json_scan.c
CORE_JSON_SCAN_DEPS = $(TOP)/src/ngx_ai_relay_json_scan.h \
                      $(TOP)/t/unit/json_scan_diff.h
CORE_PRICE_SRCS = $(TOP)/src/ngx_ai_relay_price.c
CORE_PRICE_DEPS = $(TOP)/src/ngx_ai_relay_price.h
CORE_KEY_SRCS = $(TOP)/src/ngx_ai_relay_key.c
CORE_KEY_DEPS = $(TOP)/src/ngx_ai_relay_key.h
CORE_BREAKER_SRCS = $(TOP)/src/ngx_ai_relay_breaker.c
CORE_BREAKER_DEPS = $(TOP)/src/ngx_ai_relay_breaker.h
CORE_ENDPOINT_SRCS = $(TOP)/src/ngx_ai_relay_endpoint.c
CORE_ENDPOINT_DEPS = $(TOP)/src/ngx_ai_relay_endpoint.h \
                     $(TOP)/src/ngx_ai_relay_usage.h
CORE_MULTIPART_SRCS = $(TOP)/src/ngx_ai_relay_multipart.c
CORE_MULTIPART_DEPS = $(TOP)/src/ngx_ai_relay_multipart.h
CORE_RENAME_SRCS = $(TOP)/src/ngx_ai_relay_rename.c
CORE_RENAME_DEPS = $(TOP)/src/ngx_ai_relay_rename.h
CORE_AUDIO_SRCS = $(TOP)/src/ngx_ai_relay_audio.c
CORE_AUDIO_DEPS = $(TOP)/src/ngx_ai_relay_audio.h
CORE_VTASK_SRCS = $(TOP)/src/ngx_ai_relay_vtask.c
CORE_VTASK_DEPS = $(TOP)/src/ngx_ai_relay_vtask.h


.PHONY: core-unit core-unit-test core-unit-san core-bench core-unit-clean

core-unit: $(CORE_UNIT_TESTS) $(CORE_UNIT_BENCH)

core-unit-test: $(CORE_UNIT_TESTS)
	@set -e; for t in $(CORE_UNIT_TESTS); do echo "== $${t#$(TOP)/}"; $$t; done

core-unit-san: $(CORE_UNIT_SAN_TESTS)
	@set -e; for t in $(CORE_UNIT_SAN_TESTS); do echo "== $${t#$(TOP)/}"; \
	    $(SAN_ENV) $$t; done

core-bench: $(CORE_UNIT_BENCH)
	$(CORE_UNIT_BENCH)

core-unit-clean:
	rm -rf $(CORE_UNIT_TESTS) $(CORE_UNIT_SAN_TESTS) $(CORE_UNIT_BENCH)


$(CORE_UNIT_DIR)/test_json_scan: $(TOP)/t/unit/test_json_scan.c \
        $(CORE_JSON_SCAN_SRCS) $(CORE_JSON_SCAN_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ $(TOP)/t/unit/test_json_scan.c \
	    $(CORE_JSON_SCAN_SRCS) -lcmocka -ljansson

$(CORE_UNIT_DIR)/test_price: $(TOP)/t/unit/test_price.c \
        $(CORE_PRICE_SRCS) $(CORE_PRICE_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ $(TOP)/t/unit/test_price.c \
	    $(CORE_PRICE_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_key: $(TOP)/t/unit/test_key.c \
        $(CORE_KEY_SRCS) $(CORE_KEY_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ $(TOP)/t/unit/test_key.c \
	    $(CORE_KEY_SRCS) -lcmocka -lcrypto

$(CORE_UNIT_DIR)/test_json_scan_san: $(TOP)/t/unit/test_json_scan.c \
        $(CORE_JSON_SCAN_SRCS) $(CORE_JSON_SCAN_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    $(TOP)/t/unit/test_json_scan.c $(CORE_JSON_SCAN_SRCS) \
	    -lcmocka -ljansson

$(CORE_UNIT_DIR)/test_price_san: $(TOP)/t/unit/test_price.c \
        $(CORE_PRICE_SRCS) $(CORE_PRICE_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    $(TOP)/t/unit/test_price.c $(CORE_PRICE_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_key_san: $(TOP)/t/unit/test_key.c \
        $(CORE_KEY_SRCS) $(CORE_KEY_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    $(TOP)/t/unit/test_key.c $(CORE_KEY_SRCS) -lcmocka -lcrypto

$(CORE_UNIT_DIR)/test_breaker: $(TOP)/t/unit/test_breaker.c \
        $(CORE_BREAKER_SRCS) $(CORE_BREAKER_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ $(TOP)/t/unit/test_breaker.c \
	    $(CORE_BREAKER_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_breaker_san: $(TOP)/t/unit/test_breaker.c \
        $(CORE_BREAKER_SRCS) $(CORE_BREAKER_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    $(TOP)/t/unit/test_breaker.c $(CORE_BREAKER_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_endpoint: $(TOP)/t/unit/test_endpoint.c \
        $(CORE_ENDPOINT_SRCS) $(CORE_ENDPOINT_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ $(TOP)/t/unit/test_endpoint.c \
	    $(CORE_ENDPOINT_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_endpoint_san: $(TOP)/t/unit/test_endpoint.c \
        $(CORE_ENDPOINT_SRCS) $(CORE_ENDPOINT_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    $(TOP)/t/unit/test_endpoint.c $(CORE_ENDPOINT_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_multipart: $(TOP)/t/unit/test_multipart.c \
        $(CORE_MULTIPART_SRCS) $(CORE_MULTIPART_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ $(TOP)/t/unit/test_multipart.c \
	    $(CORE_MULTIPART_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_multipart_san: $(TOP)/t/unit/test_multipart.c \
        $(CORE_MULTIPART_SRCS) $(CORE_MULTIPART_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    $(TOP)/t/unit/test_multipart.c $(CORE_MULTIPART_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_rename: $(TOP)/t/unit/test_rename.c \
        $(CORE_RENAME_SRCS) $(CORE_RENAME_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ $(TOP)/t/unit/test_rename.c \
	    $(CORE_RENAME_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_rename_san: $(TOP)/t/unit/test_rename.c \
        $(CORE_RENAME_SRCS) $(CORE_RENAME_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    $(TOP)/t/unit/test_rename.c $(CORE_RENAME_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_audio: $(TOP)/t/unit/test_audio.c \
        $(CORE_AUDIO_SRCS) $(CORE_AUDIO_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ $(TOP)/t/unit/test_audio.c \
	    $(CORE_AUDIO_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_audio_san: $(TOP)/t/unit/test_audio.c \
        $(CORE_AUDIO_SRCS) $(CORE_AUDIO_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    $(TOP)/t/unit/test_audio.c $(CORE_AUDIO_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_vtask: $(TOP)/t/unit/test_vtask.c \
        $(CORE_VTASK_SRCS) $(CORE_VTASK_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ $(TOP)/t/unit/test_vtask.c \
	    $(CORE_VTASK_SRCS) -lcmocka

$(CORE_UNIT_DIR)/test_vtask_san: $(TOP)/t/unit/test_vtask.c \
        $(CORE_VTASK_SRCS) $(CORE_VTASK_DEPS)
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) $(CORE_UNIT_SAN) -o $@ \
	    $(TOP)/t/unit/test_vtask.c $(CORE_VTASK_SRCS) -lcmocka

$(CORE_UNIT_BENCH): $(TOP)/t/unit/bench_json_scan.c \
        $(CORE_JSON_SCAN_SRCS) $(TOP)/src/ngx_ai_relay_json_scan.h
	@mkdir -p $(@D)
	$(CORE_UNIT_CC) $(CORE_UNIT_CFLAGS) -o $@ \
	    $(TOP)/t/unit/bench_json_scan.c $(CORE_JSON_SCAN_SRCS)
