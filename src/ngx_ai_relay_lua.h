
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_LUA_H_INCLUDED_
#define _NGX_AI_RELAY_LUA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Redis scripts, loaded on every connection and run with EVALSHA: the
 * files src/lua/<name>.lua, in ngx_ai_relay_scripts[] in this order
 */

#define NGX_AI_RELAY_SCRIPT_ROUTE    0
#define NGX_AI_RELAY_SCRIPT_AUTH     1
#define NGX_AI_RELAY_SCRIPT_SETTLE   2
#define NGX_AI_RELAY_SCRIPT_MODELS   3
#define NGX_AI_RELAY_SCRIPT_LEASE    4
#define NGX_AI_RELAY_SCRIPT_RELEASE  5
#define NGX_AI_RELAY_SCRIPT_DASHBOARD 6
#define NGX_AI_RELAY_SCRIPT_REFUND   7
#define NGX_AI_RELAY_NSCRIPTS        8


extern ngx_str_t  ngx_ai_relay_scripts[NGX_AI_RELAY_NSCRIPTS];


#endif /* _NGX_AI_RELAY_LUA_H_INCLUDED_ */
