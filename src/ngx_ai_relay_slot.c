
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Redis Cluster's routing, nginx-free (see ngx_ai_relay_slot.h).
 */


#include <string.h>
#include <stdlib.h>
#include <arpa/inet.h>

#include "ngx_ai_relay_slot.h"


/* CRC-16/XMODEM (polynomial 0x1021, initial 0), as Redis Cluster uses */

unsigned
ngx_ai_relay_slot_crc16(const unsigned char *p, size_t len)
{
    int       i;
    unsigned  crc;

    crc = 0;

    while (len--) {
        crc ^= (unsigned) *p++ << 8;

        for (i = 0; i < 8; i++) {
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) : (crc << 1);
        }

        crc &= 0xffff;
    }

    return crc;
}


/* the part between the first '{' and the '}' after it, when not empty */

unsigned
ngx_ai_relay_slot_of(const unsigned char *key, size_t len)
{
    const unsigned char  *open, *close;

    open = memchr(key, '{', len);

    if (open) {
        close = memchr(open + 1, '}', len - (open + 1 - key));

        if (close && close > open + 1) {
            key = open + 1;
            len = close - key;
        }
    }

    return ngx_ai_relay_slot_crc16(key, len) & (NGX_AI_RELAY_SLOTS - 1);
}


static int
ngx_ai_relay_slot_is(const char *arg, size_t len, const char *name)
{
    size_t  i;

    if (len != strlen(name)) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((arg[i] | 0x20) != (name[i] | 0x20)) {
            return 0;
        }
    }

    return 1;
}


static long
ngx_ai_relay_slot_numkeys(const char *p, size_t len)
{
    long  n;

    if (len == 0 || len > 9) {
        return -1;
    }

    n = 0;

    while (len--) {
        if (*p < '0' || *p > '9') {
            return -1;
        }

        n = n * 10 + (*p++ - '0');
    }

    return n;
}


int
ngx_ai_relay_slot_key_arg(int argc, const char **argv, const size_t *argvlen)
{
    long  n;

    if (argc < 2) {
        return -1;
    }

    if (ngx_ai_relay_slot_is(argv[0], argvlen[0], "EVALSHA")
        || ngx_ai_relay_slot_is(argv[0], argvlen[0], "EVAL"))
    {
        if (argc < 4) {
            return -1;
        }

        n = ngx_ai_relay_slot_numkeys(argv[2], argvlen[2]);

        return (n > 0 && n <= argc - 3) ? 3 : -1;
    }

    return 1;
}


int
ngx_ai_relay_slot_same(int argc, const char **argv, const size_t *argvlen)
{
    int       i;
    long      n;
    unsigned  slot;

    if (ngx_ai_relay_slot_key_arg(argc, argv, argvlen) != 3) {
        return 1;
    }

    n = ngx_ai_relay_slot_numkeys(argv[2], argvlen[2]);
    slot = ngx_ai_relay_slot_of((const unsigned char *) argv[3], argvlen[3]);

    for (i = 4; i < 3 + n; i++) {
        if (ngx_ai_relay_slot_of((const unsigned char *) argv[i], argvlen[i])
            != slot)
        {
            return 0;
        }
    }

    return 1;
}


int
ngx_ai_relay_slot_parse_addr(const char *p, size_t len, char *host,
    int *port)
{
    size_t          hlen;
    long            n;
    const char     *colon, *h;
    unsigned char   buf[sizeof(struct in6_addr)];

    colon = NULL;

    for (hlen = len; hlen > 0; hlen--) {
        if (p[hlen - 1] == ':') {
            colon = p + hlen - 1;
            break;
        }
    }

    if (colon == NULL) {
        return -1;
    }

    n = ngx_ai_relay_slot_numkeys(colon + 1, p + len - colon - 1);
    if (n < 1 || n > 65535) {
        return -1;
    }

    h = p;
    hlen = colon - p;

    if (hlen > 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }

    if (hlen == 0 || hlen >= NGX_AI_RELAY_SLOT_HOST_LEN) {
        return -1;
    }

    memcpy(host, h, hlen);
    host[hlen] = '\0';

    /* numeric only: hiredis would resolve a name with a blocking call */

    if (inet_pton(AF_INET, host, buf) != 1
        && inet_pton(AF_INET6, host, buf) != 1)
    {
        return -1;
    }

    *port = (int) n;

    return 0;
}


int
ngx_ai_relay_slot_node(ngx_ai_relay_slot_map_t *map, const char *host,
    int port)
{
    unsigned  i;

    for (i = 0; i < map->nnodes; i++) {
        if (map->nodes[i].port == port
            && strcmp(map->nodes[i].host, host) == 0)
        {
            return (int) i;
        }
    }

    if (map->nnodes == NGX_AI_RELAY_SLOT_MAX_NODES
        || strlen(host) >= NGX_AI_RELAY_SLOT_HOST_LEN)
    {
        return -1;
    }

    strcpy(map->nodes[i].host, host);
    map->nodes[i].port = port;
    map->nnodes++;

    return (int) i;
}


/* [ip, port, id, ...] of a CLUSTER SLOTS range: host and port, or -1 */

static int
ngx_ai_relay_slot_reply_node(const redisReply *r, char *host, int *port)
{
    unsigned char  buf[sizeof(struct in6_addr)];

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_INTEGER
        || r->element[0]->len == 0
        || r->element[0]->len >= NGX_AI_RELAY_SLOT_HOST_LEN
        || r->element[1]->integer < 1 || r->element[1]->integer > 65535)
    {
        return -1;
    }

    memcpy(host, r->element[0]->str, r->element[0]->len);
    host[r->element[0]->len] = '\0';

    if (inet_pton(AF_INET, host, buf) != 1
        && inet_pton(AF_INET6, host, buf) != 1)
    {
        return -1;
    }

    *port = (int) r->element[1]->integer;

    return 0;
}


int
ngx_ai_relay_slot_map_parse(ngx_ai_relay_slot_map_t *map,
    const redisReply *reply)
{
    int                       idx, port, covered;
    size_t                    i, j;
    long long                 start, end, s;
    const redisReply         *range;
    ngx_ai_relay_slot_map_t  *tmp;
    char                      host[NGX_AI_RELAY_SLOT_HOST_LEN];

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return -1;
    }

    /* on a copy: a malformed reply leaves the map as it was */

    tmp = malloc(sizeof(ngx_ai_relay_slot_map_t));
    if (tmp == NULL) {
        return -1;
    }

    memcpy(tmp, map, sizeof(ngx_ai_relay_slot_map_t));
    memset(tmp->owner, 0, sizeof(tmp->owner));

    covered = 0;

    for (i = 0; i < reply->elements; i++) {
        range = reply->element[i];

        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3
            || range->element[0]->type != REDIS_REPLY_INTEGER
            || range->element[1]->type != REDIS_REPLY_INTEGER)
        {
            goto malformed;
        }

        start = range->element[0]->integer;
        end = range->element[1]->integer;

        if (start < 0 || end < start || end >= NGX_AI_RELAY_SLOTS) {
            goto malformed;
        }

        if (ngx_ai_relay_slot_reply_node(range->element[2], host, &port)
            != 0)
        {
            goto malformed;
        }

        idx = ngx_ai_relay_slot_node(tmp, host, port);
        if (idx < 0) {
            goto malformed;
        }

        for (s = start; s <= end; s++) {
            if (tmp->owner[s] == 0) {
                covered++;
            }

            tmp->owner[s] = (uint8_t) (idx + 1);
        }

        /* replicas: known ahead of a failover, which promotes one */

        for (j = 3; j < range->elements; j++) {
            if (ngx_ai_relay_slot_reply_node(range->element[j], host, &port)
                == 0)
            {
                (void) ngx_ai_relay_slot_node(tmp, host, port);
            }
        }
    }

    memcpy(map, tmp, sizeof(ngx_ai_relay_slot_map_t));
    free(tmp);

    return covered;

malformed:

    free(tmp);

    return -1;
}


int
ngx_ai_relay_slot_redirect(const char *err, size_t len,
    ngx_ai_relay_slot_redirect_t *rd)
{
    long         slot;
    const char  *p, *end, *sp;

    end = err + len;

    if (len > 6 && memcmp(err, "MOVED ", 6) == 0) {
        rd->ask = 0;
        p = err + 6;

    } else if (len > 4 && memcmp(err, "ASK ", 4) == 0) {
        rd->ask = 1;
        p = err + 4;

    } else {
        return 0;
    }

    sp = memchr(p, ' ', end - p);
    if (sp == NULL) {
        return -1;
    }

    slot = ngx_ai_relay_slot_numkeys(p, sp - p);
    if (slot < 0 || slot >= NGX_AI_RELAY_SLOTS) {
        return -1;
    }

    rd->slot = (unsigned) slot;

    sp++;

    if (ngx_ai_relay_slot_parse_addr(sp, end - sp, rd->host, &rd->port) != 0)
    {
        return -1;
    }

    return 1;
}
