
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * libFuzzer target for Redis Cluster's routing (src/ngx_ai_relay_slot.c):
 * the input as an error reply (MOVED/ASK), as RESP bytes read by hiredis
 * and given to the slot map as a CLUSTER SLOTS reply, as a key and as a
 * command's arguments.  Beyond crashes and UB, it aborts when the map's
 * owners name no known node, a parsed redirection is out of range, or a
 * malformed reply changed the map.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "ngx_ai_relay_slot.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                            rc, argc;
    void                          *reply;
    size_t                         i, lens[8], start;
    unsigned                       s;
    const char                    *argv[8];
    redisReader                   *reader;
    ngx_ai_relay_slot_map_t       *map, *before;
    ngx_ai_relay_slot_redirect_t   rd;

    rc = ngx_ai_relay_slot_redirect((const char *) data, size, &rd);

    if (rc == 1 && (rd.slot >= NGX_AI_RELAY_SLOTS || rd.port < 1
                    || rd.port > 65535 || strlen(rd.host) == 0))
    {
        abort();
    }

    if (ngx_ai_relay_slot_of(data, size) >= NGX_AI_RELAY_SLOTS) {
        abort();
    }

    /* the input cut at NULs into up to 8 arguments */

    argc = 0;
    start = 0;

    for (i = 0; i <= size && argc < 8; i++) {
        if (i == size || data[i] == '\0') {
            argv[argc] = (const char *) data + start;
            lens[argc] = i - start;
            argc++;
            start = i + 1;
        }
    }

    rc = ngx_ai_relay_slot_key_arg(argc, argv, lens);
    if (rc >= argc) {
        abort();
    }

    (void) ngx_ai_relay_slot_same(argc, argv, lens);

    map = calloc(1, sizeof(ngx_ai_relay_slot_map_t));
    before = malloc(sizeof(ngx_ai_relay_slot_map_t));
    if (map == NULL || before == NULL) {
        abort();
    }

    (void) ngx_ai_relay_slot_node(map, "127.0.0.1", 7000);

    reader = redisReaderCreate();

    if (reader && redisReaderFeed(reader, (const char *) data, size)
                  == REDIS_OK)
    {
        while (redisReaderGetReply(reader, &reply) == REDIS_OK && reply) {
            memcpy(before, map, sizeof(ngx_ai_relay_slot_map_t));

            rc = ngx_ai_relay_slot_map_parse(map, reply);

            if (rc < 0 && memcmp(before, map, sizeof(*map)) != 0) {
                abort();
            }

            if (rc > NGX_AI_RELAY_SLOTS
                || map->nnodes > NGX_AI_RELAY_SLOT_MAX_NODES
                || map->nnodes == 0)
            {
                abort();
            }

            for (s = 0; s < NGX_AI_RELAY_SLOTS; s++) {
                if (map->owner[s] > map->nnodes) {
                    abort();
                }
            }

            freeReplyObject(reply);
        }
    }

    if (reader) {
        redisReaderFree(reader);
    }

    free(before);
    free(map);

    return 0;
}
