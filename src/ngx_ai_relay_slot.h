
/*
 * Copyright (C) ngx_ai_relay authors
 */


#ifndef _NGX_AI_RELAY_SLOT_H_INCLUDED_
#define _NGX_AI_RELAY_SLOT_H_INCLUDED_


/*
 * Redis Cluster's routing, nginx-free: a key's hash slot (CRC16 of the
 * key, or of its {hash tag}), the slot map read from a CLUSTER SLOTS
 * reply, MOVED and ASK redirections, and which argument of a command is
 * its key.  Used by the module (src/ngx_ai_relay_redis.c) and the CLI.
 */


#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>


#define NGX_AI_RELAY_SLOTS           16384

/* masters and replicas a worker may know of */
#define NGX_AI_RELAY_SLOT_MAX_NODES  32

/* an IPv6 address in text, and a NUL */
#define NGX_AI_RELAY_SLOT_HOST_LEN   46


typedef struct {
    char                         host[NGX_AI_RELAY_SLOT_HOST_LEN];
    int                          port;
} ngx_ai_relay_slot_node_t;


/*
 * Nodes are only ever added, so a node's index stays what it was: the
 * module keeps its connection to nodes[i] at the same index.
 */

typedef struct {
    uint8_t                      owner[NGX_AI_RELAY_SLOTS]; /* index + 1,
                                                               0: none */
    ngx_ai_relay_slot_node_t     nodes[NGX_AI_RELAY_SLOT_MAX_NODES];
    unsigned                     nnodes;
} ngx_ai_relay_slot_map_t;


/* a redirection: "MOVED <slot> <ip>:<port>" or "ASK <slot> <ip>:<port>" */

typedef struct {
    unsigned                     ask:1;
    unsigned                     slot;
    char                         host[NGX_AI_RELAY_SLOT_HOST_LEN];
    int                          port;
} ngx_ai_relay_slot_redirect_t;


unsigned ngx_ai_relay_slot_crc16(const unsigned char *p, size_t len);
unsigned ngx_ai_relay_slot_of(const unsigned char *key, size_t len);

/*
 * The key a command is routed by: EVAL and EVALSHA's first key (-1 when
 * it has none), the first argument of other commands (-1 when there is
 * none).  Returns the argument's index.
 */
int ngx_ai_relay_slot_key_arg(int argc, const char **argv,
    const size_t *argvlen);

/* 1 when every key of an EVAL/EVALSHA is in the same slot (or it has none) */
int ngx_ai_relay_slot_same(int argc, const char **argv,
    const size_t *argvlen);

/* "<ip>:<port>" or "[<ip6>]:<port>" into host and port; -1: malformed */
int ngx_ai_relay_slot_parse_addr(const char *p, size_t len, char *host,
    int *port);

/* -1: not found and no room; else the node's index */
int ngx_ai_relay_slot_node(ngx_ai_relay_slot_map_t *map, const char *host,
    int port);

/*
 * A CLUSTER SLOTS reply into the map: every slot's owner is set again
 * (0 where the reply names none); the nodes stay, the masters and
 * replicas named are added.  Returns the number of slots covered, or -1
 * for a malformed reply (the map is then unchanged).
 */
int ngx_ai_relay_slot_map_parse(ngx_ai_relay_slot_map_t *map,
    const redisReply *reply);

/* an error reply's text: 1 a redirection, 0 none, -1 malformed */
int ngx_ai_relay_slot_redirect(const char *err, size_t len,
    ngx_ai_relay_slot_redirect_t *rd);


#endif /* _NGX_AI_RELAY_SLOT_H_INCLUDED_ */
