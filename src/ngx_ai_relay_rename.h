
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_RENAME_H_INCLUDED_
#define _NGX_AI_RELAY_RENAME_H_INCLUDED_


/*
 * The "model" an answer names, for ai_relay_response_model client
 * (nginx-free): found in a JSON text, or in an SSE event that holds one,
 * without parsing it.
 */


#include <stddef.h>


/*
 * The value of the first member named "model" whose value is a string,
 * at any depth (Anthropic's message_start and the Responses API nest
 * it): 1 and [*start, *end) the value, its quotes included; 0 if the text
 * has none, or ends before one is complete.
 */
int ngx_ai_relay_rename_find(const unsigned char *p, size_t len,
    size_t *start, size_t *end);


#endif /* _NGX_AI_RELAY_RENAME_H_INCLUDED_ */
