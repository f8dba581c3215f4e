# ai-relay, the operator CLI (included by the top Makefile).
#
#   make cli        build/ai-relay
#   make cli-test   prove t/cli (own Redis and MariaDB, see t/cli/lib)
#   make cli-test-deps  install $(CLI_TEST_PKGS) if missing
#
# nginx-free C: hiredis (sync API), jansson, libcrypto, SQLite, the
# MariaDB client library and libcurl (channels test), plus the shared core
# files key.c and price.c.

# building it; its tests also need sqlite3 and, for the MySQL import,
# MariaDB's server binary without its service (mariadb-server-core)
CLI_BUILD_PKGS := libhiredis-dev libjansson-dev libssl-dev libsqlite3-dev \
                  libmariadb-dev libcurl4-openssl-dev pkgconf
CLI_TEST_PKGS  := sqlite3 mariadb-server-core mariadb-client redis-server \
                  redis-tools perl

CLI_BIN      := $(BUILD)/ai-relay
CLI_OBJDIR   := $(BUILD)/cli
CLI_SRCS     := $(wildcard $(TOP)/src/cli/*.c) \
                $(TOP)/src/ngx_ai_relay_key.c \
                $(TOP)/src/ngx_ai_relay_price.c \
                $(TOP)/src/ngx_ai_relay_slot.c \
                $(TOP)/src/ngx_ai_relay_vtask.c
CLI_DEPS     := $(wildcard $(TOP)/src/cli/*.h) \
                $(TOP)/src/ngx_ai_relay_key.h \
                $(TOP)/src/ngx_ai_relay_price.h \
                $(TOP)/src/ngx_ai_relay_slot.h \
                $(TOP)/src/ngx_ai_relay_vtask.h \
                $(TOP)/src/ngx_ai_relay_schema.h
# the Redis scripts the CLI runs itself (REFUND: tasks reconcile), the
# module's own text, as src/lua/mkheader.sh makes it for the module
CLI_SCRIPTS_H := $(CLI_OBJDIR)/ngx_ai_relay_cli_scripts.h
CLI_DEPS     += $(CLI_SCRIPTS_H)
CLI_OBJS     := $(patsubst %.c,$(CLI_OBJDIR)/%.o,$(notdir $(CLI_SRCS)))
# pkg-config runs in the recipes, after `make deps` installed
# libmariadb-dev and libcurl4-openssl-dev, not when make reads this file
CLI_CFLAGS    = $(CFLAGS) $(WARN) -I$(TOP)/src -I$(TOP)/src/cli -I$(CLI_OBJDIR) \
                $$(pkg-config --cflags libmariadb) \
                $$(pkg-config --cflags libcurl)
CLI_LIBS      = -lhiredis -ljansson -lcrypto -lsqlite3 -lm \
                $$(pkg-config --libs libmariadb || echo -lmariadb) \
                $$(pkg-config --libs libcurl || echo -lcurl)

.PHONY: cli cli-test cli-test-deps

cli: $(CLI_BIN)

$(CLI_BIN): $(CLI_OBJS)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(CLI_LIBS)

$(CLI_SCRIPTS_H): $(TOP)/src/lua/refund.lua $(TOP)/src/lua/mkheader.sh \
                 $(TOP)/src/ngx_ai_relay_schema.h
	@mkdir -p $(CLI_OBJDIR)
	sh $(TOP)/src/lua/mkheader.sh $@ $(TOP)/src/lua/refund.lua

$(CLI_OBJDIR)/%.o: $(TOP)/src/cli/%.c $(CLI_DEPS) | $(BUILD)/.deps
	@mkdir -p $(CLI_OBJDIR)
	$(CC) $(CLI_CFLAGS) -c -o $@ $<

$(CLI_OBJDIR)/%.o: $(TOP)/src/%.c $(CLI_DEPS) | $(BUILD)/.deps
	@mkdir -p $(CLI_OBJDIR)
	$(CC) $(CLI_CFLAGS) -c -o $@ $<

cli-test-deps: $(BUILD)/.cli-test-deps

$(BUILD)/.cli-test-deps: $(TOP)/src/cli/cli.mk | $(BUILD)/.deps
	@$(call apt_install,$(CLI_TEST_PKGS))
	@touch $@

# t/cli/020-cluster.t's Redis Cluster: 6 nodes from this port (+10000: bus),
# after t/030-cluster.t's (see TEST_CLUSTER_PORT)
TEST_CLI_CLUSTER_PORT ?= $(shell expr $(TEST_PORT) + 5023)

# t/cli/021-sentinel.t: a master and its replica from this port, three
# sentinels from TEST_CLI_SENTINEL_PORT (+3: a sentinel that is down)
TEST_CLI_SENTINEL_REDIS_PORT ?= $(shell expr $(TEST_PORT) + 9)
TEST_CLI_SENTINEL_PORT ?= $(shell expr $(TEST_PORT) + 5040)

cli-test: $(CLI_BIN) cli-test-deps
	AI_RELAY_CLI=$(CLI_BIN) \
	AI_RELAY_TEST_CLUSTER_PORT=$(TEST_CLI_CLUSTER_PORT) \
	AI_RELAY_TEST_SENTINEL_REDIS_PORT=$(TEST_CLI_SENTINEL_REDIS_PORT) \
	AI_RELAY_TEST_SENTINEL_PORT=$(TEST_CLI_SENTINEL_PORT) \
	    prove -I t/cli/lib $(PROVE_FLAGS) $(or $(T),t/cli)
