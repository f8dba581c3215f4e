# Directives: what nginx refuses at startup, and what it accepts.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 40;
no_shuffle();

run_tests();

__DATA__

=== TEST 1: an unknown API style
--- config
    location /v1/ { ai_relay openapi; }
--- must_die
--- error_log
invalid value "openapi", it must be "openai", "anthropic", "gemini" or "off"



=== TEST 2: ai_relay twice in one location
--- config
    location /v1/ { ai_relay openai; ai_relay anthropic; }
--- must_die
--- error_log
"ai_relay" directive is duplicate



=== TEST 3: a Redis host name would need a blocking DNS lookup
--- http_config
    ai_relay_redis localhost:6379;
--- config
    location /v1/ { ai_relay openai; }
--- must_die
--- error_log
redis address "localhost:6379" must be a numeric IP address or a "unix:" path



=== TEST 4: a bad Redis port
--- http_config
    ai_relay_redis 127.0.0.1:99999;
--- config
    location /v1/ { ai_relay openai; }
--- must_die
--- error_log
invalid redis port in "127.0.0.1:99999"



=== TEST 5: a Redis database out of range
--- http_config
    ai_relay_redis_db 70000;
--- config
    location /v1/ { ai_relay openai; }
--- must_die
--- error_log
value must be between 0 and 65535



=== TEST 6: Redis directives belong to the http level
--- config
    location /v1/ { ai_relay openai; ai_relay_redis 127.0.0.1:6379; }
--- must_die
--- error_log
"ai_relay_redis" directive is not allowed here



=== TEST 7: every directive, valid values: nginx starts
--- http_config eval
"    ai_relay_redis 127.0.0.1:$AIRelayTest::REDIS_PORT;
    ai_relay_redis_password '';
    ai_relay_redis_db 0;
    ai_relay_redis_connect_timeout 2s;
    ai_relay_redis_timeout 300ms;
    ai_relay_reservation_ttl 30m;
    ai_relay_records_max 5000;
    ai_relay_journal logs/relay.journal;
    ai_relay_journal_max 1000;
    ai_relay_default_max_tokens 2048;
"
--- config
    ai_relay_max_alias_depth 4;
    location /v1/ {
        ai_relay openai;
        ai_relay_stream_usage off;
        ai_relay_allow_unpriced on;
        ai_relay_sse_max_event 256k;
        ai_relay_response_max 2m;
        ai_relay_json_max_depth 64;
        proxy_pass $ai_relay_upstream_url;
    }
    location /off/ { ai_relay off; return 200 "plain\n"; }
--- request
GET /off/
--- response_body
plain
--- no_error_log
[error]
[emerg]



=== TEST 8: a unix socket address for Redis
--- http_config
    ai_relay_redis unix:/tmp/no-such-redis.sock;
    ai_relay_journal logs/ai_relay.journal;
--- config
    location /v1/ { ai_relay openai; proxy_pass $ai_relay_upstream_url; }
--- request
POST /v1/chat/completions
{"model":"x"}
--- more_headers
Authorization: Bearer sk-some-key-1234567890
--- error_code: 503
--- error_log
redis connect to /tmp/no-such-redis.sock:0 failed



=== TEST 9: a metrics zone too small for its counters
--- http_config
    ai_relay_metrics_zone 16k;
--- config
    location = /metrics { ai_relay_metrics; }
--- must_die
--- error_log
"ai_relay_metrics_zone" is too small, it must be at least



=== TEST 10: ai_relay_passthrough without a path prefix
--- config
    location /v1/ { ai_relay openai; ai_relay_passthrough files-model; }
--- must_die
--- error_log
"ai_relay_passthrough" needs a model and at least one path prefix



=== TEST 11: ai_relay_passthrough of a whole API version
--- config
    location /v1/ { ai_relay openai; ai_relay_passthrough files-model /v1/files /v1/; }
--- must_die
--- error_log
"ai_relay_passthrough" path "/v1/" must start with / and name an API that is no endpoint of the relay



=== TEST 12: ai_relay_passthrough with an unknown method
--- config
    location /v1/ { ai_relay openai; ai_relay_passthrough files-model /v1/files methods=GET,TRACE; }
--- must_die
--- error_log
invalid method in "methods=GET,TRACE"



=== TEST 13: ai_relay_passthrough naming an endpoint
--- config
    location /v1/ { ai_relay openai; ai_relay_passthrough files-model /v1/chat/completions; }
--- must_die
--- error_log
"ai_relay_passthrough" path "/v1/chat/completions" must start with / and name



=== TEST 14: ai_relay_passthrough naming an endpoint in other letter case, with a trailing slash
--- config
    location /v1/ { ai_relay openai; ai_relay_passthrough files-model /V1/Chat/Completions/; }
--- must_die
--- error_log
"ai_relay_passthrough" path "/V1/Chat/Completions/" must start with / and name



=== TEST 15: several Redis addresses without "cluster"
--- http_config
    ai_relay_redis 127.0.0.1:7301 127.0.0.1:7302;
--- config
    location /v1/ { ai_relay openai; }
--- must_die
--- error_log
several redis addresses need "cluster"



=== TEST 16: a Redis Cluster seed is no unix socket
--- http_config
    ai_relay_redis 127.0.0.1:7301 unix:/tmp/redis.sock cluster;
--- config
    location /v1/ { ai_relay openai; }
--- must_die
--- error_log
a Redis Cluster's nodes have IP addresses, not "unix:/tmp/redis.sock"



=== TEST 17: Redis Cluster has only database 0
--- http_config
    ai_relay_redis 127.0.0.1:7301 cluster;
    ai_relay_redis_db 2;
--- config
    location /v1/ { ai_relay openai; }
--- must_die
--- error_log
Redis Cluster has no "ai_relay_redis_db" but 0



=== TEST 18: Sentinel and Cluster exclude each other
--- http_config
    ai_relay_redis 127.0.0.1:7301 cluster;
    ai_relay_redis_sentinel relay 127.0.0.1:7321;
--- config
    location /v1/ { ai_relay openai; }
--- must_die
--- error_log
"ai_relay_redis_sentinel" and a "cluster" in "ai_relay_redis" exclude each other



=== TEST 19: a sentinel's address is numeric
--- http_config
    ai_relay_redis_sentinel relay sentinel.example:26379;
--- config
    location /v1/ { ai_relay openai; }
--- must_die
--- error_log
redis address "sentinel.example:26379" must be a numeric IP address
