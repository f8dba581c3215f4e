
/*
 * Copyright (C) ngx_ai_relay authors
 *
 * Redis Cluster's routing: key slots and hash tags, the keys each script
 * touches in one slot, CLUSTER SLOTS replies, MOVED and ASK.
 */


#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <hiredis/hiredis.h>

#include "ngx_ai_relay_schema.h"
#include "ngx_ai_relay_slot.h"


#define SLOT(s)  ngx_ai_relay_slot_of((const unsigned char *) (s), strlen(s))


static void
test_crc16(void **state)
{
    /* the check value of CRC-16/XMODEM, given by Redis' cluster spec */
    assert_int_equal(ngx_ai_relay_slot_crc16((const unsigned char *)
                                             "123456789", 9), 0x31c3);
    assert_int_equal(ngx_ai_relay_slot_crc16((const unsigned char *) "", 0),
                     0);
}


static void
test_key_slot(void **state)
{
    /* CLUSTER KEYSLOT of a Redis 7 server */
    assert_int_equal(SLOT("foo"), 12182);
    assert_int_equal(SLOT("bar"), 5061);
    assert_int_equal(SLOT("hello"), 866);

    /* the tag alone is hashed */
    assert_int_equal(SLOT("{user1000}.following"), SLOT("user1000"));
    assert_int_equal(SLOT("{user1000}.followers"), SLOT("user1000"));
    assert_int_equal(SLOT("foo{bar}{zap}"), SLOT("bar"));
    assert_int_equal(SLOT("foo{{bar}}zap"), SLOT("{bar"));

    /* an empty tag, or none closed: the whole key */
    assert_int_equal(SLOT("foo{}{bar}"),
                     ngx_ai_relay_slot_crc16((const unsigned char *)
                                             "foo{}{bar}", 10) & 16383);
    assert_int_equal(SLOT("foo{bar"),
                     ngx_ai_relay_slot_crc16((const unsigned char *)
                                             "foo{bar", 7) & 16383);
}


/* the keys of each script, as the module builds them, share one slot */

static void
test_schema_tags(void **state)
{
    unsigned  u;

    u = SLOT(NGX_AI_RELAY_RKEY_USER("42"));

    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_KEYS("42")), u);
    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_KEY("42", "ab12")), u);
    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_RES("42")), u);
    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_DONE("42", "b-1")), u);
    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_GONE("42", "r-1")), u);
    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_LOG("42")), u);
    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_LEDGER("42")), u);
    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_STATS("42", "20261205")), u);
    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_RL("42", "ab12")), u);

    /* another user, most likely another slot: the tag is the user's */
    assert_int_not_equal(SLOT(NGX_AI_RELAY_RKEY_USER("43")), u);

    u = SLOT(NGX_AI_RELAY_RKEY_VERSION);

    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_MODELS), u);
    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_MODEL("gpt-4o")), u);
    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_CHANNELS), u);
    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_CHANNEL("7")), u);
    assert_int_equal(SLOT(NGX_AI_RELAY_RKEY_PRICE("gpt-4o")), u);
}


static void
test_key_arg(void **state)
{
    const char  *settle[] = { "EVALSHA", "0123", "6",
                              NGX_AI_RELAY_RKEY_USER("7"),
                              NGX_AI_RELAY_RKEY_RES("7"),
                              NGX_AI_RELAY_RKEY_DONE("7", "w1-3"),
                              NGX_AI_RELAY_RKEY_LOG("7"),
                              NGX_AI_RELAY_RKEY_STATS("7", "20261205"),
                              NGX_AI_RELAY_RKEY_KEY("7", "ffee"),
                              "argv1" };
    const char  *cross[] = { "EVAL", "x", "2",
                             NGX_AI_RELAY_RKEY_USER("7"),
                             NGX_AI_RELAY_RKEY_USER("8") };
    const char  *nokeys[] = { "EVALSHA", "0123", "0", "a" };
    const char  *get[] = { "GET", NGX_AI_RELAY_RKEY_VERSION };
    const char  *ping[] = { "PING" };
    const char  *bad[] = { "EVALSHA", "0123", "9", "a" };
    size_t       lens[10];
    int          i;

    for (i = 0; i < 10; i++) {
        lens[i] = strlen(settle[i]);
    }

    assert_int_equal(ngx_ai_relay_slot_key_arg(10, settle, lens), 3);
    assert_int_equal(ngx_ai_relay_slot_same(10, settle, lens), 1);

    for (i = 0; i < 5; i++) {
        lens[i] = strlen(cross[i]);
    }

    assert_int_equal(ngx_ai_relay_slot_key_arg(5, cross, lens), 3);
    assert_int_equal(ngx_ai_relay_slot_same(5, cross, lens), 0);

    for (i = 0; i < 4; i++) {
        lens[i] = strlen(nokeys[i]);
    }

    assert_int_equal(ngx_ai_relay_slot_key_arg(4, nokeys, lens), -1);

    for (i = 0; i < 4; i++) {
        lens[i] = strlen(bad[i]);
    }

    assert_int_equal(ngx_ai_relay_slot_key_arg(4, bad, lens), -1);

    lens[0] = 3;
    lens[1] = strlen(get[1]);
    assert_int_equal(ngx_ai_relay_slot_key_arg(2, get, lens), 1);

    lens[0] = 4;
    assert_int_equal(ngx_ai_relay_slot_key_arg(1, ping, lens), -1);
}


static redisReply *
parse_resp(const char *text)
{
    void          *reply;
    redisReader   *reader;

    reader = redisReaderCreate();
    assert_non_null(reader);

    assert_int_equal(redisReaderFeed(reader, text, strlen(text)), REDIS_OK);
    assert_int_equal(redisReaderGetReply(reader, &reply), REDIS_OK);
    assert_non_null(reply);

    redisReaderFree(reader);

    return reply;
}


/* three masters, one replica each, as redis-cli --cluster create makes */

static const char  slots_reply[] =
    "*3\r\n"
    "*4\r\n:0\r\n:5460\r\n"
    "*3\r\n$9\r\n127.0.0.1\r\n:7301\r\n$2\r\nm1\r\n"
    "*3\r\n$9\r\n127.0.0.1\r\n:7305\r\n$2\r\nr1\r\n"
    "*4\r\n:5461\r\n:10922\r\n"
    "*3\r\n$9\r\n127.0.0.1\r\n:7302\r\n$2\r\nm2\r\n"
    "*3\r\n$9\r\n127.0.0.1\r\n:7306\r\n$2\r\nr2\r\n"
    "*4\r\n:10923\r\n:16383\r\n"
    "*3\r\n$9\r\n127.0.0.1\r\n:7303\r\n$2\r\nm3\r\n"
    "*3\r\n$9\r\n127.0.0.1\r\n:7304\r\n$2\r\nr3\r\n";


static void
test_map_parse(void **state)
{
    redisReply               *reply;
    ngx_ai_relay_slot_map_t   map;
    int                       seed;

    memset(&map, 0, sizeof(map));

    /* a seed known first keeps its index */
    seed = ngx_ai_relay_slot_node(&map, "127.0.0.1", 7302);
    assert_int_equal(seed, 0);

    reply = parse_resp(slots_reply);

    assert_int_equal(ngx_ai_relay_slot_map_parse(&map, reply), 16384);

    assert_int_equal(map.nnodes, 6);
    assert_int_equal(map.owner[0] - 1, ngx_ai_relay_slot_node(&map,
                                                     "127.0.0.1", 7301));
    assert_int_equal(map.owner[5461] - 1, seed);
    assert_int_equal(map.owner[10922] - 1, seed);
    assert_string_equal(map.nodes[map.owner[16383] - 1].host, "127.0.0.1");
    assert_int_equal(map.nodes[map.owner[16383] - 1].port, 7303);

    /* the replicas are known, and own nothing */
    assert_int_equal(ngx_ai_relay_slot_node(&map, "127.0.0.1", 7304), 5);
    assert_int_equal(map.nnodes, 6);

    freeReplyObject(reply);

    /* a failover: 7305 owns the first range; indexes stay */

    reply = parse_resp(
        "*2\r\n"
        "*3\r\n:0\r\n:5460\r\n"
        "*3\r\n$9\r\n127.0.0.1\r\n:7305\r\n$2\r\nr1\r\n"
        "*3\r\n:5461\r\n:10922\r\n"
        "*3\r\n$9\r\n127.0.0.1\r\n:7302\r\n$2\r\nm2\r\n");

    assert_int_equal(ngx_ai_relay_slot_map_parse(&map, reply), 10923);
    assert_int_equal(map.nodes[map.owner[100] - 1].port, 7305);
    assert_int_equal(map.owner[5461] - 1, seed);
    assert_int_equal(map.owner[10923], 0);
    assert_int_equal(map.nnodes, 6);

    freeReplyObject(reply);
}


static void
test_map_malformed(void **state)
{
    redisReply               *reply;
    ngx_ai_relay_slot_map_t   map;

    memset(&map, 0, sizeof(map));

    reply = parse_resp(slots_reply);
    assert_int_equal(ngx_ai_relay_slot_map_parse(&map, reply), 16384);
    freeReplyObject(reply);

    /* each leaves the map as it was */

    reply = parse_resp("-ERR This instance has cluster support disabled\r\n");
    assert_int_equal(ngx_ai_relay_slot_map_parse(&map, reply), -1);
    freeReplyObject(reply);

    reply = parse_resp("*1\r\n*3\r\n:10\r\n:5\r\n"
                       "*2\r\n$9\r\n127.0.0.1\r\n:7301\r\n");
    assert_int_equal(ngx_ai_relay_slot_map_parse(&map, reply), -1);
    freeReplyObject(reply);

    reply = parse_resp("*1\r\n*3\r\n:0\r\n:16384\r\n"
                       "*2\r\n$9\r\n127.0.0.1\r\n:7301\r\n");
    assert_int_equal(ngx_ai_relay_slot_map_parse(&map, reply), -1);
    freeReplyObject(reply);

    /* a name, which would need a blocking lookup */
    reply = parse_resp("*1\r\n*3\r\n:0\r\n:1\r\n"
                       "*2\r\n$9\r\nlocalhost\r\n:7301\r\n");
    assert_int_equal(ngx_ai_relay_slot_map_parse(&map, reply), -1);
    freeReplyObject(reply);

    reply = parse_resp("*1\r\n*3\r\n:0\r\n:1\r\n"
                       "*2\r\n$9\r\n127.0.0.1\r\n:0\r\n");
    assert_int_equal(ngx_ai_relay_slot_map_parse(&map, reply), -1);
    freeReplyObject(reply);

    assert_int_equal(map.nodes[map.owner[16383] - 1].port, 7303);
    assert_int_equal(map.nnodes, 6);
}


static void
test_redirect(void **state)
{
    ngx_ai_relay_slot_redirect_t  rd;

#define RD(s)  ngx_ai_relay_slot_redirect(s, sizeof(s) - 1, &rd)

    assert_int_equal(RD("MOVED 3999 127.0.0.1:6381"), 1);
    assert_int_equal(rd.ask, 0);
    assert_int_equal(rd.slot, 3999);
    assert_string_equal(rd.host, "127.0.0.1");
    assert_int_equal(rd.port, 6381);

    assert_int_equal(RD("ASK 16383 [::1]:7302"), 1);
    assert_int_equal(rd.ask, 1);
    assert_int_equal(rd.slot, 16383);
    assert_string_equal(rd.host, "::1");
    assert_int_equal(rd.port, 7302);

    assert_int_equal(RD("ERR unknown command"), 0);
    assert_int_equal(RD("NOSCRIPT No matching script"), 0);
    assert_int_equal(RD("MOVED 16384 127.0.0.1:6381"), -1);
    assert_int_equal(RD("MOVED 12 127.0.0.1"), -1);
    assert_int_equal(RD("MOVED 12 127.0.0.1:"), -1);
    assert_int_equal(RD("MOVED 12 127.0.0.1:70000"), -1);
    assert_int_equal(RD("MOVED 12"), -1);
    assert_int_equal(RD("MOVED x 127.0.0.1:1"), -1);
    assert_int_equal(RD("ASK 1 redis.example:6379"), -1);

#undef RD
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_crc16),
        cmocka_unit_test(test_key_slot),
        cmocka_unit_test(test_schema_tags),
        cmocka_unit_test(test_key_arg),
        cmocka_unit_test(test_map_parse),
        cmocka_unit_test(test_map_malformed),
        cmocka_unit_test(test_redirect),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
