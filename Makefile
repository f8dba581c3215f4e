# ngx_ai_relay
#
#   make run     build, start Redis + nginx with conf.example and a demo
#                upstream, seed a demo account, print how to call it
#   make stop    stop what `make run` started
#   make test    build, C unit tests, Redis script tests, Test::Nginx
#                suite (own Redis)
#   make help    every target, from the headers of this file and of the
#                sub-makefiles
#   make build          the module, build/nginx/objs/ngx_ai_relay_module.so
#   make install        the module and the CLI into $(DESTDIR)/usr
#   make deps           install the Debian packages of the build and run
#   make test-deps      and those of the tests
#   make test-nginx     the Test::Nginx suite alone (T=t/003-route.t)
#   make test-scripts   the Redis scripts on their own (t/scripts)
#   make lua-check      luac 5.1 over the Redis scripts
#   make layers         the module's files call each other without a loop
#   make test-runner    the tests of the Test::Nginx runner (t/runner)
#   make test-sdk       the OpenAI SDK against `make run` (SDK_PORT,
#                       SDK_REDIS_PORT, SDK_DEMO_PORT: 18080, 16380, 18081)
#   make test-asan      the suite with the module built with ASan + UBSan
#   make test-valgrind  the suite under valgrind memcheck (slow)
#   make test-unit-asan the C unit tests with $(SAN_CFLAGS)
#   make clean          remove build/, run/ and t/servroot*
#
# Test ports: TEST_PORT (nginx, 1984), TEST_REDIS_PORT (6399).
#
# Everything the build and the tests need comes from Debian's packages;
# `make deps` (run by the targets above) installs what is missing.
#
# Convention for this file and the sub-makefiles it includes (src/cli/cli.mk,
# t/unit/unit.mk, t/unit/core.mk, fuzz/fuzz.mk, bench/bench.mk, pkg/deb.mk,
# tools/soak/soak.mk); they are only ever included from here:
#
#   paths     a file make names (target, prerequisite, variable) is
#             $(TOP)/... or, when built, $(BUILD)/... (each sub-makefile
#             under $(BUILD)/<name>/ or a file named after it); nothing
#             works out its own root or build folder.  Recipes run in
#             $(TOP), so names meant for people (prove's t/..., T=...)
#             stay relative.
#   names     a sub-makefile's variables carry one prefix (CLI_, UNIT_,
#             CORE_, FUZZ_, BENCH_, DEB_, SOAK_); a knob the user may set
#             is `?=` and documented in the file's header (or README).
#   C flags   $(CC) $(CFLAGS) $(WARN) for every C build; a sanitizer build
#             adds $(SAN_CFLAGS) (ASan + UBSan, defined here only) and runs
#             its programs with $(SAN_ENV); fuzzers are $(FUZZ_CC) with
#             -fsanitize=fuzzer and the same $(SAN_CFLAGS); test-asan's
#             module, NGX_SAN_CFLAGS, is SAN_CFLAGS.
#   packages  each file lists its Debian packages in <PREFIX>_PKGS and
#             installs them with $(call apt_install,...) from a *-deps
#             target or stamp that what needs them depends on.
#   parsing   no $(shell ...) runs when make reads the files: a fresh
#             machine has none of the packages yet (`make deps` installs
#             them), so pkg-config and the like run in recipes, $$(...).
#   phony     every target that is not a file is in .PHONY.
#   help      a file's header lists its targets as "#   make TARGET  what";
#             `make help` prints those lines.

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
# The suite's other servers follow TEST_PORT, so runs whose TEST_PORTs are
# 50 to 5000 apart never share a port (each may still be set on its own):
# TEST_PORT+6..+10, +5017..+5028 (and +10000: the cluster bus), +5037..+5043
# (+9, +10 and +5040..+5043: t/cli/021-sentinel.t, see src/cli/cli.mk).
# t/030-cluster.t's Redis Cluster: 6 nodes from this port (+10000: bus)
TEST_CLUSTER_PORT ?= $(shell expr $(TEST_PORT) + 5017)
# t/030-cluster.t's second relay (nginx)
TEST_SECOND_PORT ?= $(shell expr $(TEST_PORT) + 8)
# t/031-sentinel.t: master and replica from this port, 3 sentinels from
# TEST_SENTINEL_PORT
TEST_SENTINEL_REDIS_PORT ?= $(shell expr $(TEST_PORT) + 6)
TEST_SENTINEL_PORT ?= $(shell expr $(TEST_PORT) + 5037)
# the SDK test's `make run` (nginx, Redis, demo upstream)
SDK_PORT        ?= 18080
SDK_REDIS_PORT  ?= 16380
SDK_DEMO_PORT   ?= 18081

CC           ?= cc
CFLAGS       ?= -O2 -g
WARN         := -std=gnu99 -W -Wall -Wpointer-arith -Wno-unused-parameter \
                -Werror

# every sanitizer build: the C unit tests (unit-asan, core-unit-san), the
# fuzzers and the module of test-asan; programs run with $(SAN_ENV)
SAN_CFLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer
SAN_ENV      := ASAN_OPTIONS=detect_leaks=1
# the module of test-asan: every check (an empty string's NULL data is
# never handed to memcpy(), which UBSan's nonnull check would stop on)
NGX_SAN_CFLAGS := $(SAN_CFLAGS)

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

.PHONY: all help build deps test-deps test layers test-nginx test-runner \
        test-sdk test-asan test-unit-asan test-valgrind lua-check \
        test-scripts run stop clean install

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

include $(TOP)/t/unit/unit.mk
include $(TOP)/t/unit/core.mk
include $(TOP)/src/cli/cli.mk
include $(TOP)/fuzz/fuzz.mk
include $(TOP)/bench/bench.mk
include $(TOP)/pkg/deb.mk
include $(TOP)/tools/soak/soak.mk

# the "#   make TARGET  what" lines of every file's header
help:
	@awk '/^#   make /  { p = 1; sub(/^#   /, ""); print; next } \
	      p && /^#      / { sub(/^#   /, ""); print; next } \
	      { p = 0 }' $(MAKEFILE_LIST)

# ---------------------------------------------------------------- deps

deps: $(BUILD)/.deps

# installs only: services Debian may start with its packages are left as
# they are (the project runs its own Redis and nginx on its own ports)
$(BUILD)/.deps: $(TOP)/Makefile $(TOP)/src/cli/cli.mk
	@mkdir -p $(BUILD)
	@$(call apt_install,$(BUILD_PKGS) $(CLI_BUILD_PKGS) $(RUN_PKGS))
	@touch $@

test-deps: $(BUILD)/.test-deps

$(BUILD)/.test-deps: $(TOP)/Makefile | $(BUILD)/.deps
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

# configured again when this file (NGX_SAN_CFLAGS) changes
$(BUILD)/nginx-asan/.configured: $(TOP)/config $(LUA_SRCS) $(TOP)/Makefile \
        | $(BUILD)/.deps
	rm -rf $(BUILD)/nginx-asan
	cp -r $(NGX_SRC) $(BUILD)/nginx-asan
	cd $(BUILD)/nginx-asan && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="$(NGX_SAN_CFLAGS) -g" \
	        --with-ld-opt="$(NGX_SAN_CFLAGS)" \
	        --add-dynamic-module=$(TOP) > configure.log
	touch $@

$(ASAN_MODULE): $(BUILD)/nginx-asan/.configured $(MODULE_SRCS)
	$(MAKE) -C $(BUILD)/nginx-asan -f objs/Makefile modules

# ---------------------------------------------------------------- test

TEST_ENV = TEST_NGINX_BINARY=$(NGINX) \
           TEST_NGINX_LOAD_MODULES="$(ECHO_MODULE) $(1)" \
           TEST_NGINX_REDIS_PORT=$(TEST_REDIS_PORT) \
           TEST_NGINX_CLUSTER_PORT=$(TEST_CLUSTER_PORT) \
           TEST_NGINX_SECOND_PORT=$(TEST_SECOND_PORT) \
           TEST_NGINX_SENTINEL_REDIS_PORT=$(TEST_SENTINEL_REDIS_PORT) \
           TEST_NGINX_SENTINEL_PORT=$(TEST_SENTINEL_PORT) \
           TEST_NGINX_SERVER_PORT=$(TEST_PORT) \
           TEST_NGINX_CLI=$(CLI_BIN) \
           PATH=$(BUILD):$$PATH

test: test-deps layers lua-check build unit core-unit-test cli test-runner \
      test-scripts test-nginx cli-test test-sdk
	@echo "make test: all passed"

# C unit tests of the nginx-free core under AddressSanitizer and UBSan
test-unit-asan: test-deps unit-asan core-unit-san

test-runner: test-deps
	prove -I t/lib -r t/runner

# the module's files call each other in layers, never in a loop
layers:
	sh $(TOP)/tools/layers.sh

# luac 5.1 (Redis runs Lua 5.1): syntax, and no global a script would set
# or read by mistake (Redis refuses the first, the second is a typo)
lua-check: test-deps
	$(TOP)/tools/lua-check.sh $(LUA_SCRIPTS:$(TOP)/%=%)

# each script run on its own (EVALSHA) against the suite's Redis:
# t/scripts/, plain Test::More
test-scripts: lua-check
	@$(TOP)/t/redis.sh start $(TEST_REDIS_PORT)
	@rc=0; TEST_NGINX_REDIS_PORT=$(TEST_REDIS_PORT) prove $(PROVE_FLAGS) \
	    $(or $(T),t/scripts) || rc=$$?; \
	$(TOP)/t/redis.sh stop $(TEST_REDIS_PORT); exit $$rc

test-nginx: build test-deps
	@$(TOP)/tools/ports-free.sh $(TEST_PORT)
	@$(TOP)/t/redis.sh start $(TEST_REDIS_PORT)
	@rc=0; $(call TEST_ENV,$(MODULE)) prove -I t/lib $(PROVE_FLAGS) \
	    $(or $(T),t/*.t) || rc=$$?; \
	$(TOP)/t/redis.sh stop $(TEST_REDIS_PORT); exit $$rc

# the official OpenAI SDK (npm "openai") against `make run`, on ports of
# its own so a running demo is left alone
SDK_RUN := $(BUILD)/sdk-run
SDK_ENV  = RUN=$(SDK_RUN) NGINX_BIN=$(NGINX) MODULE=$(MODULE) \
           CLI=$(CLI_BIN) TOP=$(TOP) AI_RELAY_PORT=$(SDK_PORT) \
           AI_RELAY_REDIS_PORT=$(SDK_REDIS_PORT) \
           AI_RELAY_DEMO_PORT=$(SDK_DEMO_PORT)

test-sdk: build cli
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	    $(call apt_install,nodejs npm); }
	@if ! (cd $(TOP)/t/sdk && npm install --no-audit --no-fund --silent); then \
	    if npm ping --fetch-timeout=10000 --fetch-retries=1 \
	        >/dev/null 2>&1; then exit 1; fi; \
	    echo "test-sdk: SKIPPED: npm cannot reach its registry to install" \
	         "the openai SDK (the one part of make test that needs it)"; \
	    exit 0; \
	fi; \
	rc=0; $(SDK_ENV) $(TOP)/tools/run.sh start > $(BUILD)/sdk-run.out \
	    && set -a && . <(grep '^AI_RELAY_' $(BUILD)/sdk-run.out) && set +a \
	    && node t/sdk/sdk.test.mjs && node t/sdk/xlate.test.mjs || rc=$$?; \
	$(SDK_ENV) $(TOP)/tools/run.sh stop; exit $$rc

# the same suite with the module built with $(NGX_SAN_CFLAGS)
test-asan: $(ASAN_MODULE) cli
	@$(TOP)/t/redis.sh start $(TEST_REDIS_PORT)
	@rc=0; $(call TEST_ENV,$(ASAN_MODULE)) \
	    TEST_NGINX_BINARY=$(TOP)/t/asan-nginx.sh \
	    prove -I t/lib $(PROVE_FLAGS) $(or $(T),t/*.t) || rc=$$?; \
	$(TOP)/t/redis.sh stop $(TEST_REDIS_PORT); exit $$rc

# the same suite under valgrind memcheck (slow)
test-valgrind: build cli
	@$(call apt_install,valgrind)
	@$(TOP)/t/redis.sh start $(TEST_REDIS_PORT)
	@rc=0; $(call TEST_ENV,$(MODULE)) TEST_NGINX_USE_VALGRIND=1 \
	    TEST_NGINX_TIMEOUT=20 \
	    prove -I t/lib $(PROVE_FLAGS) $(or $(T),t/*.t) || rc=$$?; \
	$(TOP)/t/redis.sh stop $(TEST_REDIS_PORT); exit $$rc

# ----------------------------------------------------------------- run

run: build cli
	@RUN=$(RUN) NGINX_BIN=$(NGINX) MODULE=$(MODULE) CLI=$(CLI_BIN) \
	    TOP=$(TOP) $(TOP)/tools/run.sh start

stop:
	@RUN=$(RUN) NGINX_BIN=$(NGINX) TOP=$(TOP) $(TOP)/tools/run.sh stop

install: build cli
	install -d $(DESTDIR)/usr/lib/nginx/modules $(DESTDIR)/usr/bin
	install -m 644 $(MODULE) $(DESTDIR)/usr/lib/nginx/modules/
	install -m 755 $(CLI_BIN) $(DESTDIR)/usr/bin/

clean:
	rm -rf $(BUILD) $(TOP)/t/servroot* $(RUN)
