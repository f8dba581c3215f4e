
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_LEASE_H_INCLUDED_
#define _NGX_AI_RELAY_LEASE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


/* how a key's requests may be admitted, as the last AUTH said */
typedef struct {
    time_t                        expires;     /* 0: never */
    unsigned                      fast:1;      /* no limits of its own */
    unsigned                      unlimited:1;
    size_t                        kid_len;
    size_t                        models_len;
    u_char                        data[1];     /* key id, allowed models */
} ngx_ai_relay_keyconf_t;


ngx_int_t ngx_ai_relay_lease_init(ngx_ai_relay_main_conf_t *armcf);
ngx_int_t ngx_ai_relay_lease_admit(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
void ngx_ai_relay_lease_remember(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx, time_t expires, ngx_uint_t fast);
void ngx_ai_relay_lease_forget(ngx_http_request_t *r,
    ngx_ai_relay_ctx_t *ctx);
void ngx_ai_relay_lease_done(ngx_ai_relay_main_conf_t *armcf,
    ngx_ai_relay_ctx_t *ctx);
void ngx_ai_relay_lease_version(ngx_ai_relay_main_conf_t *armcf,
    u_char *version, size_t len);
void ngx_ai_relay_lease_exit(ngx_ai_relay_main_conf_t *armcf);
ngx_int_t ngx_ai_relay_lease_give_back(ngx_ai_relay_main_conf_t *armcf,
    ngx_str_t *user);


#endif /* _NGX_AI_RELAY_LEASE_H_INCLUDED_ */
