# Redis trouble: down, slow, restarted under a running nginx, and a client
# that leaves while its Redis reply is on the way.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 19;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();
our $Config = relay_config();
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";

run_tests();

__DATA__

=== TEST 1: Redis unreachable: 503 in JSON, quickly
--- init
AIRelayTest::seed_world();
--- http_config eval: AIRelayTest::http_config(redis => '127.0.0.1:9')
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- error_code: 503
--- response_body
{"error":{"message":"The relay's state store is unavailable, please retry shortly.","type":"server_error","param":null,"code":"service_unavailable"}}
--- error_log
ai relay: redis connect to 127.0.0.1:9 failed
--- timeout: 2



=== TEST 2: Redis too slow: 503 after ai_relay_redis_timeout, then it recovers by itself
--- init
AIRelayTest::seed_world();
AIRelayTest::redis_sleep_in_background(1.5);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- error_code: 503
--- response_body
{"error":{"message":"The relay's state store did not answer in time, please retry shortly.","type":"server_error","param":null,"code":"service_unavailable"}}
--- redis_check
sleep 2;
my ($status, $head, $body) = relay_post('/v1/chat/completions',
                                        '{"model":"gpt-4o-mini"}');
is($status, 200, 'served again once Redis answers');
like($body, qr/Hi there/, 'relayed');
--- error_log
ai relay: redis did not answer within 500 ms
--- timeout: 5



=== TEST 3: Redis stopped and started again while nginx runs
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- response_body_like: Hi there
--- redis_check
my @during;
redis_restart(sub {
    @during = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini"}');
});
is($during[0], 503, 'Redis down: 503');
like($during[2], qr/"code":"service_unavailable"/, 'in JSON');
seed_world();
my $ok = wait_for(sub {
    (relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini"}'))[0] == 200
}, 5);
ok($ok, 'Redis back: served again without restarting nginx');
--- timeout: 10



=== TEST 4: a client that leaves while its Redis reply is pending is forgotten, not touched
--- init
AIRelayTest::seed_world();
AIRelayTest::redis_sleep_in_background(1);
--- http_config eval: AIRelayTest::http_config(timeout => '3s')
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- timeout: 0.3
--- abort
--- ignore_response
--- wait: 1.5
--- redis_check
my ($status, $head, $body) = relay_post('/v1/chat/completions',
                                        '{"model":"gpt-4o-mini"}');
is($status, 200, 'the worker is fine and serves the next request');
is(user_field(1, 'balance') <= 10000000, 1, 'balance sane');
--- error_log
client prematurely closed connection
ai relay: redis reply no longer awaited
--- no_error_log
[alert]
[crit]
