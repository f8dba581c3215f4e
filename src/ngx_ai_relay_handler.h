
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_HANDLER_H_INCLUDED_
#define _NGX_AI_RELAY_HANDLER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_ai_relay_module.h"


ngx_int_t ngx_ai_relay_handler(ngx_http_request_t *r);



#endif /* _NGX_AI_RELAY_HANDLER_H_INCLUDED_ */
