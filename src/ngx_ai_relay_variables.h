
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_VARIABLES_H_INCLUDED_
#define _NGX_AI_RELAY_VARIABLES_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


extern ngx_str_t  ngx_ai_relay_request_id_name;


ngx_int_t ngx_ai_relay_add_variables(ngx_conf_t *cf);


#endif /* _NGX_AI_RELAY_VARIABLES_H_INCLUDED_ */
