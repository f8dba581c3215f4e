# Models and channels: alias chains, cycles, tiers, weights, key rotation
# and the provider's key header.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 88;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();
our $Config = relay_config(extra => <<'_EOC_');
    location /mock/one/ { echo_read_request_body; echo "channel one"; }
    location /mock/two/ { echo_read_request_body; echo "channel two"; }
    location /mock/three/ { echo_read_request_body; echo "channel three"; }
    location /mock/key/ { echo_read_request_body; echo "$http_authorization"; }
_EOC_

our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";
our $Req = "POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\"}";

run_tests();

__DATA__

=== TEST 1: an alias of an alias of a real model
--- init
AIRelayTest::seed_world(mock => '/mock/echo');
AIRelayTest::seed_alias('smart', 'fast');
AIRelayTest::seed_alias('fast', 'gpt-4o-mini');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"smart"}
--- more_headers eval: $::Key
--- response_body_like eval
qr/\r\n\r\n\{"model":"gpt-4o-mini"\}$/
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{model}, 'smart', 'record keeps the name the client sent');
is($r->{upstream_model}, 'gpt-4o-mini', 'and the model served');
--- no_error_log
[error]



=== TEST 2: an alias cycle is reported, not followed
--- init
AIRelayTest::seed_world();
AIRelayTest::seed_alias('a', 'b');
AIRelayTest::seed_alias('b', 'c');
AIRelayTest::seed_alias('c', 'a');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"a"}
--- more_headers eval: $::Key
--- error_code: 500
--- response_body
{"error":{"message":"The model alias chain a -> b -> c -> a is a cycle; the relay's operator must fix it.","type":"server_error","param":null,"code":"model_alias_cycle"}}
--- error_log
ai relay: model alias cycle: a -> b -> c -> a
--- redis_check
is(user_field(1, 'balance'), 10000000, 'nothing reserved');



=== TEST 3: an alias pointing at nothing
--- init
AIRelayTest::seed_world();
AIRelayTest::seed_alias('old', 'gone');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"old"}
--- more_headers eval: $::Key
--- error_code: 500
--- response_body
{"error":{"message":"The model alias chain old -> gone ends at a model that does not exist; the relay's operator must fix it.","type":"server_error","param":null,"code":"model_alias_broken"}}



=== TEST 4: an unknown model
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-9"}
--- more_headers eval: $::Key
--- error_code: 404
--- response_body
{"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}
--- no_error_log
[error]



=== TEST 5: an unknown model asked with a disabled key: the key error wins
--- init
AIRelayTest::seed_world(key => { status => 'disabled' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-9"}
--- more_headers eval: $::Key
--- error_code: 401



=== TEST 6: no enabled channel: 503
--- init
AIRelayTest::seed_world(channel => { status => 'disabled' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- error_code: 503
--- response_body
{"error":{"message":"No available channel for model `gpt-4o-mini`, please retry later.","type":"server_error","param":null,"code":"service_unavailable"}}
--- redis_check
is(user_field(1, 'balance'), 10000000, 'nothing reserved');



=== TEST 7: a model without a price is refused (ai_relay_allow_unpriced off)
--- init
AIRelayTest::seed_world();
AIRelayTest::redis('DEL', 'ar:{cfg}:price:gpt-4o-mini');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- error_code: 503
--- response_body
{"error":{"message":"The model `gpt-4o-mini` is not available: it has no price configured.","type":"server_error","param":null,"code":"model_not_priced"}}



=== TEST 8: the highest priority tier with an enabled channel wins; disabled ones are skipped
--- init
AIRelayTest::seed_world();
AIRelayTest::seed_channel(1, base_url => AIRelayTest::mock_url('/mock/one'), priority => 10, status => 'disabled');
AIRelayTest::seed_channel(2, base_url => AIRelayTest::mock_url('/mock/two'), priority => 10);
AIRelayTest::seed_channel(3, base_url => AIRelayTest::mock_url('/mock/three'), priority => 0);
AIRelayTest::seed_model('gpt-4o-mini', channels => '1,2,3');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
[ ($::Req) x 10 ]
--- more_headers eval: $::Key
--- error_code eval
[ (200) x 10 ]
--- response_body eval
[ ("channel two\n") x 10 ]
--- no_error_log
[error]



=== TEST 9: weighted choice inside a tier (3:1 over 400 requests)
--- init
AIRelayTest::seed_world();
AIRelayTest::seed_channel(1, base_url => AIRelayTest::mock_url('/mock/one'), weight => 3);
AIRelayTest::seed_channel(2, base_url => AIRelayTest::mock_url('/mock/two'), weight => 1);
AIRelayTest::seed_channel(3, base_url => AIRelayTest::mock_url('/mock/three'), weight => 0);
AIRelayTest::seed_model('gpt-4o-mini', channels => '1,2,3');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval: $::Req
--- more_headers eval: $::Key
--- response_body_like: ^channel (one|two)$
--- redis_check
my $bad = 0;
for (2 .. 400) {
    my ($status, $head, $body) = relay_post('/v1/chat/completions',
                                            '{"model":"gpt-4o-mini"}');
    $bad++ unless $status == 200 && $body =~ /^channel (one|two)$/;
}
is($bad, 0, 'every answer from channel one or two');
ok(wait_for(sub { records(1) == 400 }), '400 records');
my %n;
$n{ $_->{channel} }++ for records(1);
# 300 expected for channel 1; 4.6 standard deviations either way
ok($n{1} >= 260 && $n{1} <= 340, "channel 1 got $n{1} of 400 (weight 3)");
ok($n{2} >= 60 && $n{2} <= 140, "channel 2 got $n{2} of 400 (weight 1)");
ok(!$n{3}, 'weight 0 never chosen when others have weight');



=== TEST 10: upstream keys are used in rotation
--- init
AIRelayTest::seed_world(mock => '/mock/key', upstream_keys => ['key-a', 'key-b', 'key-c']);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
[ ($::Req) x 6 ]
--- more_headers eval: $::Key
--- error_code eval
[ (200) x 6 ]
--- response_body eval
[ "Bearer key-a\n", "Bearer key-b\n", "Bearer key-c\n", "Bearer key-a\n", "Bearer key-b\n", "Bearer key-c\n" ]



=== TEST 11: an Anthropic channel gets its key in x-api-key
--- init
AIRelayTest::seed_world(mock => '/mock/echo', channel => { provider => 'anthropic' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"gpt-4o-mini","max_tokens":5}
--- more_headers
x-api-key: sk-test0000000000000000000000000000000000000000001
anthropic-version: 2023-06-01
--- response_body_like eval
qr/\r\nanthropic-version: 2023-06-01\r\nx-api-key: upstream-key-1\r\n\r\n\{"model":"gpt-4o-mini","max_tokens":5\}$/
--- no_error_log
[error]



=== TEST 12: a Gemini channel: x-goog-api-key, and the model in the path is rewritten
--- init
AIRelayTest::seed_world(mock => '/mock/echo', channel => { provider => 'gemini',
    map => { 'gpt-4o-mini' => 'gemini-2.5-flash' } });
AIRelayTest::seed_alias('gem', 'gpt-4o-mini');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/gem:streamGenerateContent?alt=sse&key=sk-test0000000000000000000000000000000000000000001
{"contents":[{"parts":[{"text":"hi"}]}]}
--- response_body_like eval
qr{^POST /mock/echo/v1beta/models/gemini-2\.5-flash:streamGenerateContent\?alt=sse HTTP/1\.0\r\n.*\r\nx-goog-api-key: upstream-key-1\r\n\r\n\{"contents":\[\{"parts":\[\{"text":"hi"\}\]\}\]\}$}s
--- no_error_log
[error]



=== TEST 13: routes are cached per worker, yet an operator's change is seen by the very next request
--- init
AIRelayTest::seed_world();
AIRelayTest::seed_channel(1, base_url => AIRelayTest::mock_url('/mock/one'));
AIRelayTest::seed_channel(2, base_url => AIRelayTest::mock_url('/mock/two'));
AIRelayTest::seed_model('gpt-4o-mini', channels => '1');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval: $::Req
--- more_headers eval: $::Key
--- response_body
channel one
--- redis_check
my (undef, undef, $b) = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini"}');
is($b, "channel one\n", 'served from the cached route');
seed_model('gpt-4o-mini', channels => '2');     # bumps ar:{cfg}:version
(undef, undef, $b) = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini"}');
is($b, "channel two\n", 'the change is seen at once');
redis('DEL', 'ar:{cfg}:model:gpt-4o-mini');
redis('INCR', 'ar:{cfg}:version');
my ($status) = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini"}');
is($status, 404, 'a removed model is gone at once');
ok(wait_for(sub { records(1) == 4 }), 'every request settled');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');
is(user_field(1, 'balance') + eval { my $s = 0; $s += $_->{cost} for records(1); $s }, 10_000_000, 'costs add up');



=== TEST 14: a deleted key stops working at once, despite the key cache
--- init
AIRelayTest::seed_world(mock => '/mock/one');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval: $::Req
--- more_headers eval: $::Key
--- response_body
channel one
--- redis_check
my $h = key_hash($AIRelayTest::TEST_KEY);
redis('DEL', "ar:{u1}:key:$h");
my ($status, $head, $body) = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini"}');
is($status, 401, 'refused');
like($body, qr/Incorrect API key provided/, 'as unknown');
