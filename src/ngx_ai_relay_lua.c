
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * The Redis side of the relay.  Every script touches the keys of one
 * hash tag only ({cfg} for routing, {u<id>} for one user), so they run
 * unchanged on Redis Cluster.  The key layout is documented in README.
 *
 * Money is integer micro-USD and is only ever changed with HINCRBY, so
 * Lua's doubles never round a balance.
 *
 * The scripts are src/lua/<name>.lua, each with its KEYS, ARGV and reply
 * documented at its top.  `config` makes ngx_ai_relay_scripts.h of them
 * in the build tree (src/lua/mkheader.sh): their text, without that
 * documentation, and their SHA1s.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_ai_relay_lua.h"
#include "ngx_ai_relay_scripts.h"


ngx_str_t  ngx_ai_relay_scripts[NGX_AI_RELAY_NSCRIPTS] = {
    ngx_string(NGX_AI_RELAY_SCRIPT_ROUTE_SRC),
    ngx_string(NGX_AI_RELAY_SCRIPT_AUTH_SRC),
    ngx_string(NGX_AI_RELAY_SCRIPT_SETTLE_SRC),
    ngx_string(NGX_AI_RELAY_SCRIPT_MODELS_SRC),
    ngx_string(NGX_AI_RELAY_SCRIPT_LEASE_SRC),
    ngx_string(NGX_AI_RELAY_SCRIPT_RELEASE_SRC),
    ngx_string(NGX_AI_RELAY_SCRIPT_DASHBOARD_SRC),
    ngx_string(NGX_AI_RELAY_SCRIPT_REFUND_SRC)
};
