# Every error a client sees from a relay location is JSON in its API's
# shape: upstream failures, timeouts, limits, refused channel keys.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 35;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();
our $Config = relay_config(extra => <<'_EOC_');
    location /mock/slow/ { echo_read_request_body; echo_sleep 3; echo "late"; }
    location /mock/401/ {
        return 401 '{"error":{"message":"Incorrect API key provided: upstream-key-1","type":"invalid_request_error","code":"invalid_api_key"}}';
    }
    location /mock/500/ {
        default_type application/json;
        return 500 '{"error":{"message":"The server had an error","type":"server_error"}}';
    }
    location /mock/429/ {
        default_type application/json;
        add_header Retry-After 7 always;
        return 429 '{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}';
    }
_EOC_
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";

run_tests();

__DATA__

=== TEST 1: upstream refuses the connection: 502 in JSON, nothing charged
--- init
AIRelayTest::seed_world(channel => { base_url => 'http://127.0.0.1:1' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- error_code: 502
--- response_headers
Content-Type: application/json
--- response_body
{"error":{"message":"The upstream server could not be reached or sent an invalid answer.","type":"server_error","param":null,"code":"bad_gateway"}}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'a record');
my $r = last_record(1);
is($r->{status}, 502, 'record status');
is($r->{cost}, 0, 'nothing charged');
is($r->{usage_source}, 'none', 'no usage');
is(user_field(1, 'balance'), 10000000, 'balance back where it was');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'reservation released');
--- error_log
connect() failed (111: Connection refused)



=== TEST 2: the same on /v1/messages, in Anthropic's shape
--- init
AIRelayTest::seed_world(channel => { base_url => 'http://127.0.0.1:1',
                                     provider => 'anthropic' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"gpt-4o-mini","max_tokens":10}
--- more_headers
x-api-key: sk-test0000000000000000000000000000000000000000001
--- error_code: 502
--- response_body
{"type":"error","error":{"type":"api_error","message":"The upstream server could not be reached or sent an invalid answer."}}
--- error_log
connect() failed (111: Connection refused)



=== TEST 3: upstream timeout: 504 in JSON
--- init
AIRelayTest::seed_world(mock => '/mock/slow');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- error_code: 504
--- response_body
{"error":{"message":"The upstream server timed out.","type":"server_error","param":null,"code":"upstream_timeout"}}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'a record');
is(last_record(1)->{status}, 504, 'record status');
is(user_field(1, 'balance'), 10000000, 'nothing charged');
--- error_log
upstream timed out
--- timeout: 6



=== TEST 4: a body over client_max_body_size: 413 in JSON
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: AIRelayTest::relay_config(relay => 'client_max_body_size 100;')
--- request eval
"POST /v1/chat/completions\n" . '{"model":"gpt-4o-mini","x":"' . ('y' x 200) . '"}'
--- more_headers eval: $::Key
--- error_code: 413
--- response_body
{"error":{"message":"The request body is too large.","type":"invalid_request_error","param":null,"code":"request_too_large"}}



=== TEST 5: the upstream refuses the channel's key: 502, its body (quoting the key) never reaches the client
--- init
AIRelayTest::seed_world(mock => '/mock/401');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- error_code: 502
--- response_body
{"error":{"message":"The upstream refused the relay's credentials for this model; the relay's operator has been told.","type":"server_error","param":null,"code":"upstream_auth_failed"}}
--- error_log
ai relay: channel 1 refused its key #0 with status 401
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'a record');
is(last_record(1)->{cost}, 0, 'nothing charged');



=== TEST 6: an upstream's own JSON error passes through unchanged
--- init
AIRelayTest::seed_world(mock => '/mock/500');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- error_code: 500
--- response_body chomp
{"error":{"message":"The server had an error","type":"server_error"}}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'a record');
my $r = last_record(1);
is($r->{status}, 500, 'record status');
is($r->{cost}, 0, 'nothing charged');
like($r->{error}, qr/The server had an error/, 'upstream error message recorded');



=== TEST 7: an upstream 429 passes through with its Retry-After
--- init
AIRelayTest::seed_world(mock => '/mock/429');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- error_code: 429
--- response_headers
Retry-After: 7
--- response_body chomp
{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}
