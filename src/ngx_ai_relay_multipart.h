
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_MULTIPART_H_INCLUDED_
#define _NGX_AI_RELAY_MULTIPART_H_INCLUDED_


/*
 * multipart/form-data (RFC 7578), read incrementally and never copied
 * (nginx-free): fed the body in pieces as it arrives, it notes where each
 * part's value starts and ends (offsets in the body) and keeps the values
 * of small fields (model, n, size, ...), not of files.
 */


#include <stddef.h>
#include <stdint.h>


#define NGX_AI_RELAY_MP_MAX_PARTS     32
#define NGX_AI_RELAY_MP_NAME_LEN      64
#define NGX_AI_RELAY_MP_VALUE_LEN     256
#define NGX_AI_RELAY_MP_HEADERS_LEN   1024
#define NGX_AI_RELAY_MP_BOUNDARY_LEN  70     /* RFC 2046 */

#define NGX_AI_RELAY_MP_OK            0
#define NGX_AI_RELAY_MP_ERROR         -1     /* malformed: see error */


typedef struct {
    char                  name[NGX_AI_RELAY_MP_NAME_LEN];
    size_t                name_len;
    uint64_t              start;          /* the value: body offsets */
    uint64_t              end;
    unsigned char         value[NGX_AI_RELAY_MP_VALUE_LEN];
    unsigned              file:1;         /* has a filename */
    unsigned              kept:1;         /* value[] holds it whole */
} ngx_ai_relay_mp_part_t;


typedef struct {
    /* "\r\n--" and the boundary */
    unsigned char         delim[NGX_AI_RELAY_MP_BOUNDARY_LEN + 4];
    size_t                delim_len;

    ngx_ai_relay_mp_part_t parts[NGX_AI_RELAY_MP_MAX_PARTS];
    unsigned              nparts;

    uint64_t              offset;         /* bytes fed so far */
    uint64_t              text_bytes;     /* of the fields, not files */
    const char           *error;

    /* private */
    unsigned              state;
    size_t                matched;        /* of delim */
    unsigned char         headers[NGX_AI_RELAY_MP_HEADERS_LEN];
    size_t                headers_len;
    size_t                captured;       /* of the current value */
} ngx_ai_relay_mp_t;


/* 0, or -1 if the Content-Type has no usable boundary */
int ngx_ai_relay_mp_init(ngx_ai_relay_mp_t *mp,
    const unsigned char *content_type, size_t len);

/* the next bytes of the body: OK, or ERROR (mp->error says why) */
int ngx_ai_relay_mp_feed(ngx_ai_relay_mp_t *mp, const unsigned char *p,
    size_t len);

/* the body ended: OK if the closing boundary was seen */
int ngx_ai_relay_mp_finish(ngx_ai_relay_mp_t *mp);

/* how many fields are named name */
unsigned ngx_ai_relay_mp_count(ngx_ai_relay_mp_t *mp, const char *name);

/* the first field named name, or NULL */
ngx_ai_relay_mp_part_t *ngx_ai_relay_mp_find(ngx_ai_relay_mp_t *mp,
    const char *name);


#endif /* _NGX_AI_RELAY_MULTIPART_H_INCLUDED_ */
