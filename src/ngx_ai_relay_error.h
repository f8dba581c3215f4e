
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_ERROR_H_INCLUDED_
#define _NGX_AI_RELAY_ERROR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * Error bodies in the client's own API style: OpenAI's
 * {"error":{"message","type","param","code"}}, Anthropic's
 * {"type":"error","error":{"type","message"}} or Gemini's
 * {"error":{"code","message","status"}}.  code may be empty: a default
 * for the status is used.
 */

ngx_int_t ngx_ai_relay_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, ngx_str_t *message);
ngx_buf_t *ngx_ai_relay_error_body(ngx_http_request_t *r, ngx_uint_t style,
    ngx_uint_t status, const char *code, ngx_str_t *message);
ngx_int_t ngx_ai_relay_send_json(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b);
size_t ngx_ai_relay_json_escape_len(u_char *src, size_t len);
u_char *ngx_ai_relay_json_escape(u_char *dst, u_char *src, size_t len);
void ngx_ai_relay_set_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, ...);


#endif /* _NGX_AI_RELAY_ERROR_H_INCLUDED_ */
