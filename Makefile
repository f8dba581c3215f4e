# ngx_ai_relay
#
#   make run     build, start Redis + nginx with conf.example and a demo
#                upstream, seed a demo account, print how to call it
#   make stop    stop what `make run` started
#   make test    build, C unit tests, Redis script tests, Test::Nginx
#                suite (own Redis)
#
# Everything the build and the tests need comes from Debian's packages;
# `make deps` (run by the targets above) installs what is missing.

SHELL        := /bin/bash
TOP          := $(CURDIR)
BUILD        := $(TOP)/build
NGX_SRC      := /usr/share/nginx/src
NGINX        ?= /usr/sbin/nginx
ECHO_MODULE  := /usr/lib/nginx/modules/ngx_http_echo_module.so
MODULE       := $(BUILD)/nginx/objs/ngx_ai_relay_module.so
ASAN_MODULE  := $(BUILD)/nginx-asan/objs/ngx_ai_relay_module.so
RUN          := $(TOP)/run

TEST_REDIS_PORT ?= 6399
TEST_PORT       ?= 1984

CC           ?= cc
CFLAGS       ?= -O2 -g
WARN         := -std=gnu99 -W -Wall -Wpointer-arith -Wno-unused-parameter \
                -Werror

# Debian packages by need: the module's build, what `make run` starts,
# and what the test suite uses.  No database server: the CLI's MySQL
# import tests install MariaDB's server binary alone (no service) and run
# it on a private socket (src/cli/cli.mk).
BUILD_PKGS := nginx nginx-dev libjansson-dev libhiredis-dev libssl-dev \
              pkgconf make gcc
RUN_PKGS   := redis-server redis-tools curl perl
TEST_PKGS  := libnginx-mod-http-echo libtest-base-perl libcmocka-dev \
              redis-server redis-tools curl perl lua5.1

MODULE_SRCS := $(TOP)/config $(TOP)/ngx_ai_relay_module.c \
               $(wildcard $(TOP)/src/*.c $(TOP)/src/*.h)

# the Redis scripts: `config` makes a C header of them and of the key
# schema they use, so changing one configures again
LUA_SCRIPTS := $(wildcard $(TOP)/src/lua/*.lua)
LUA_SRCS    := $(LUA_SCRIPTS) $(TOP)/src/lua/mkheader.sh \
               $(TOP)/src/ngx_ai_relay_schema.h

.PHONY: all build deps test-deps test layers test-nginx test-runner test-sdk test-asan \
        test-unit-asan test-valgrind lua-check test-scripts run stop clean \
        install

FUZZ_SECONDS    ?= 60
CORE_FUZZ_TIME  ?= $(FUZZ_SECONDS)

# $(call apt_install,packages): install from Debian those not installed
# (one `apt-get update` first, no prompts: CI has no terminal)
define apt_install
missing=""; \
for p in $(1); do \
    dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
        | grep -q "install ok installed" || missing="$$missing $$p"; \
done; \
if [ -n "$$missing" ]; then \
    echo "installing:$$missing"; \
    if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
    $$SUDO apt-get update -q && \
    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q \
        --no-install-recommends $$missing; \
fi
endef

all: build

-include t/unit/unit.mk
-include t/unit/core.mk
-include src/cli/cli.mk
-include fuzz/fuzz.mk
-include bench/bench.mk
-include pkg/deb.mk
-include tools/soak/soak.mk

# ---------------------------------------------------------------- deps

deps: $(BUILD)/.deps

# installs only: services Debian may start with its packages are left as
# they are (the project runs its own Redis and nginx on its own ports)
$(BUILD)/.deps: Makefile src/cli/cli.mk
	@mkdir -p $(BUILD)
	@$(call apt_install,$(BUILD_PKGS) $(CLI_BUILD_PKGS) $(RUN_PKGS))
	@touch $@

test-deps: $(BUILD)/.test-deps

$(BUILD)/.test-deps: Makefile | $(BUILD)/.deps
	@$(call apt_install,$(TEST_PKGS))
	@touch $@

# --------------------------------------------------------------- build

build: $(MODULE)

$(BUILD)/nginx/.configured: $(TOP)/config $(LUA_SRCS) | $(BUILD)/.deps
	rm -rf $(BUILD)/nginx
	cp -r $(NGX_SRC) $(BUILD)/nginx
	cd $(BUILD)/nginx && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --add-dynamic-module=$(TOP) > configure.log
	touch $@

$(MODULE): $(BUILD)/nginx/.configured $(MODULE_SRCS)
	$(MAKE) -C $(BUILD)/nginx -f objs/Makefile modules

$(BUILD)/nginx-asan/.configured: $(TOP)/config $(LUA_SRCS) | $(BUILD)/.deps
	rm -rf $(BUILD)/nginx-asan
	cp -r $(NGX_SRC) $(BUILD)/nginx-asan
	cd $(BUILD)/nginx-asan && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="-fsanitize=address -fno-omit-frame-pointer -g" \
	        --with-ld-opt="-fsanitize=address" \
	        --add-dynamic-module=$(TOP) > configure.log
	touch $@

$(ASAN_MODULE): $(BUILD)/nginx-asan/.configured $(MODULE_SRCS)
	$(MAKE) -C $(BUILD)/nginx-asan -f objs/Makefile modules

# ---------------------------------------------------------------- test

TEST_ENV = TEST_NGINX_BINARY=$(NGINX) \
           TEST_NGINX_LOAD_MODULES="$(ECHO_MODULE) $(1)" \
           TEST_NGINX_REDIS_PORT=$(TEST_REDIS_PORT) \
           TEST_NGINX_SERVER_PORT=$(TEST_PORT) \
           TEST_NGINX_CLI=$(BUILD)/ai-relay \
           PATH=$(BUILD):$$PATH

test: test-deps layers lua-check build unit core-unit-test cli test-runner \
      test-scripts test-nginx cli-test test-sdk
	@echo "make test: all passed"

# C unit tests of the nginx-free core under AddressSanitizer and UBSan
test-unit-asan: deps unit-asan core-unit-san

# libFuzzer, FUZZ_SECONDS each: the JSON scanner, then (fuzz/fuzz.mk's
# own recipe) the SSE parser and usage extractor
fuzz: fuzz-deps core-fuzz

test-runner: test-deps
	prove -I t/lib -r t/runner

# luac 5.1 (Redis runs Lua 5.1): syntax, and no global a script would set
# or read by mistake (Redis refuses the first, the second is a typo)
# the module's files call each other in layers, never in a loop
layers:
	sh tools/layers.sh

lua-check: test-deps
	tools/lua-check.sh $(LUA_SCRIPTS:$(TOP)/%=%)

# each script run on its own (EVALSHA) against the suite's Redis:
# t/scripts/, plain Test::More
test-scripts: lua-check
	@t/redis.sh start $(TEST_REDIS_PORT)
	@rc=0; TEST_NGINX_REDIS_PORT=$(TEST_REDIS_PORT) prove $(PROVE_FLAGS) \
	    $(or $(T),t/scripts) || rc=$$?; \
	t/redis.sh stop $(TEST_REDIS_PORT); exit $$rc

test-nginx: build test-deps
	@tools/ports-free.sh $(TEST_PORT)
	@t/redis.sh start $(TEST_REDIS_PORT)
	@rc=0; $(call TEST_ENV,$(MODULE)) prove -I t/lib $(PROVE_FLAGS) \
	    $(or $(T),t/*.t) || rc=$$?; \
	t/redis.sh stop $(TEST_REDIS_PORT); exit $$rc

# the official OpenAI SDK (npm "openai") against `make run`, on ports of
# its own so a running demo is left alone
SDK_RUN := $(BUILD)/sdk-run
SDK_ENV  = RUN=$(SDK_RUN) NGINX_BIN=$(NGINX) MODULE=$(MODULE) \
           CLI=$(BUILD)/ai-relay TOP=$(TOP) AI_RELAY_PORT=18080 \
           AI_RELAY_REDIS_PORT=16380 AI_RELAY_DEMO_PORT=18081

test-sdk: build cli
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	    if [ "$$(id -u)" != 0 ]; then SUDO=sudo; fi; \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q \
	        nodejs npm; }
	@if ! (cd t/sdk && npm install --no-audit --no-fund --silent); then \
	    if npm ping --fetch-timeout=10000 --fetch-retries=1 \
	        >/dev/null 2>&1; then exit 1; fi; \
	    echo "test-sdk: SKIPPED: npm cannot reach its registry to install" \
	         "the openai SDK (the one part of make test that needs it)"; \
	    exit 0; \
	fi; \
	rc=0; $(SDK_ENV) tools/run.sh start > $(BUILD)/sdk-run.out \
	    && set -a && . <(grep '^AI_RELAY_' $(BUILD)/sdk-run.out) && set +a \
	    && node t/sdk/sdk.test.mjs || rc=$$?; \
	$(SDK_ENV) tools/run.sh stop; exit $$rc

# the same suite with the module built with AddressSanitizer
test-asan: $(ASAN_MODULE) cli
	@t/redis.sh start $(TEST_REDIS_PORT)
	@rc=0; $(call TEST_ENV,$(ASAN_MODULE)) \
	    TEST_NGINX_BINARY=$(TOP)/t/asan-nginx.sh \
	    prove -I t/lib $(PROVE_FLAGS) $(or $(T),t/*.t) || rc=$$?; \
	t/redis.sh stop $(TEST_REDIS_PORT); exit $$rc

# the same suite under valgrind memcheck (slow)
test-valgrind: build cli
	@t/redis.sh start $(TEST_REDIS_PORT)
	@rc=0; $(call TEST_ENV,$(MODULE)) TEST_NGINX_USE_VALGRIND=1 \
	    TEST_NGINX_TIMEOUT=20 \
	    prove -I t/lib $(PROVE_FLAGS) $(or $(T),t/*.t) || rc=$$?; \
	t/redis.sh stop $(TEST_REDIS_PORT); exit $$rc

# ----------------------------------------------------------------- run

run: build cli
	@RUN=$(RUN) NGINX_BIN=$(NGINX) MODULE=$(MODULE) CLI=$(BUILD)/ai-relay \
	    TOP=$(TOP) tools/run.sh start

stop:
	@RUN=$(RUN) NGINX_BIN=$(NGINX) TOP=$(TOP) tools/run.sh stop

install: build cli
	install -d $(DESTDIR)/usr/lib/nginx/modules $(DESTDIR)/usr/bin
	install -m 644 $(MODULE) $(DESTDIR)/usr/lib/nginx/modules/
	install -m 755 $(BUILD)/ai-relay $(DESTDIR)/usr/bin/

clean:
	rm -rf $(BUILD) t/servroot* $(RUN)
