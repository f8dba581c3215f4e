# What clients of each API read besides completions: the model list in
# their own API's shape (OpenAI's, Anthropic's, Gemini's), and the
# balance endpoints chat clients read (ChatGPT-Next-Web, LobeChat), in the
# shape New API and One API serve them, for the key that asks only.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;
use POSIX ();

repeat_each(2);
plan tests => repeat_each() * 59;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();
our $Config = relay_config(extra => <<'_EOC_');
    location /dashboard/ {
        ai_relay openai;
        proxy_pass $ai_relay_upstream_url;
    }
_EOC_
our $Mocks = <<'_EOC_';
    # a stream naming its model in every chunk
    location /mock/ssem/ {
        echo_read_request_body;
        default_type text/event-stream;
        echo 'data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hel"}}]}';
        echo;
        echo_flush;
        echo 'data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"lo \\"model\\":\\"x\\""}}]}';
        echo;
        echo 'data: {"id":"c1","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}';
        echo;
        echo 'data: [DONE]';
        echo;
    }

    # one 32 kB event, then 2000 small ones, each naming its model
    location /mock/ssebig/ {
        echo_read_request_body;
        default_type text/event-stream;
        echo -n 'data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"';
        echo_duplicate 32768 'a';
        echo '"}}]}';
        echo;
        echo_duplicate 2000 'data: {"id":"c1","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"x"}}]}\n\n';
        echo 'data: {"id":"c1","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2001,"total_tokens":2013}}';
        echo;
        echo 'data: [DONE]';
        echo;
    }

    location /mock/bad/ {
        default_type application/json;
        return 400 '{"error":{"message":"bad","model":"gpt-4o-mini","type":"invalid_request_error"}}';
    }
_EOC_
our $Renamed = relay_config(relay => 'ai_relay_response_model client;',
                            extra => $Mocks);
$Config .= $Mocks;
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";

# a user's counters of a day, as SETTLE writes them
sub stats {
    my ($uid, $day, %f) = @_;
    AIRelayTest::redis('HSET', "ar:{u$uid}:stats:$day", %f);
}

sub today { POSIX::strftime('%Y%m%d', gmtime) }

run_tests();

__DATA__

=== TEST 1: Anthropic's SDK (anthropic-version) gets Anthropic's model list
--- init
AIRelayTest::seed_world();
AIRelayTest::seed_model('claude-sonnet-4', channels => '1', created => 1740000000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: "x-api-key: $AIRelayTest::TEST_KEY\nanthropic-version: 2023-06-01"
--- response_body
{"data":[{"type":"model","id":"claude-sonnet-4","display_name":"claude-sonnet-4","created_at":"2025-02-19T21:20:00Z"},{"type":"model","id":"gpt-4o-mini","display_name":"gpt-4o-mini","created_at":"1970-01-01T00:00:00Z"}],"has_more":false,"first_id":"claude-sonnet-4","last_id":"gpt-4o-mini"}



=== TEST 2: on an anthropic location, one model in Anthropic's shape
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: "location /anthropic/v1/ { ai_relay anthropic; proxy_pass \$ai_relay_upstream_url; }"
--- request
GET /anthropic/v1/models/gpt-4o-mini
--- more_headers eval: "x-api-key: $AIRelayTest::TEST_KEY"
--- response_body
{"type":"model","id":"gpt-4o-mini","display_name":"gpt-4o-mini","created_at":"1970-01-01T00:00:00Z"}



=== TEST 3: an empty Anthropic list has null ids
--- init
AIRelayTest::seed_world(key => { models => 'nothing-listed' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: "x-api-key: $AIRelayTest::TEST_KEY\nanthropic-version: 2023-06-01"
--- response_body
{"data":[],"has_more":false,"first_id":null,"last_id":null}



=== TEST 4: Gemini's SDK gets Gemini's models.list
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1beta/models
--- more_headers eval: "x-goog-api-key: $AIRelayTest::TEST_KEY"
--- response_body
{"models":[{"name":"models/gpt-4o-mini","displayName":"gpt-4o-mini","supportedGenerationMethods":["generateContent","streamGenerateContent","countTokens"]}]}



=== TEST 5: and one Gemini model
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1beta/models/gpt-4o-mini
--- more_headers eval: "x-goog-api-key: $AIRelayTest::TEST_KEY"
--- response_body
{"name":"models/gpt-4o-mini","displayName":"gpt-4o-mini","supportedGenerationMethods":["generateContent","streamGenerateContent","countTokens"]}



=== TEST 6: subscription: the balance is the hard limit
--- init
AIRelayTest::seed_world(balance => 12_500_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/dashboard/billing/subscription
--- more_headers eval: $::Key
--- response_headers
Content-Type: application/json
--- response_body
{"object":"billing_subscription","has_payment_method":true,"soft_limit_usd":12.50,"hard_limit_usd":12.50,"system_hard_limit_usd":12.50,"access_until":0}
--- redis_check
is(scalar(records(1)), 0, 'no record');
is(user_field(1, 'balance'), 12_500_000, 'balance unchanged');
is(key_field(1, $AIRelayTest::TEST_KEY, 'rl_r'), undef, 'not counted as a request');



=== TEST 7: subscription: a key with its own smaller quota and an expiry shows those
--- init
AIRelayTest::seed_world(key => { quota => 2_000_001, expires => 1900000000 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /dashboard/billing/subscription
--- more_headers eval: $::Key
--- response_body
{"object":"billing_subscription","has_payment_method":true,"soft_limit_usd":2.000001,"hard_limit_usd":2.000001,"system_hard_limit_usd":2.000001,"access_until":1900000000}



=== TEST 8: subscription: an unlimited key
--- init
AIRelayTest::seed_world(key => { unlimited => 1 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/dashboard/billing/subscription
--- more_headers eval: $::Key
--- response_body
{"object":"billing_subscription","has_payment_method":true,"soft_limit_usd":100000000.00,"hard_limit_usd":100000000.00,"system_hard_limit_usd":100000000.00,"access_until":0}



=== TEST 9: subscription needs a valid key
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/dashboard/billing/subscription
--- more_headers
Authorization: Bearer sk-not-a-key-of-ours
--- error_code: 401
--- response_body_like: invalid_api_key



=== TEST 10: usage: this key's cost over the range, in cents, end date excluded; other keys and days left out
--- init
AIRelayTest::seed_world();
AIRelayTest::seed_key(1, $AIRelayTest::TEST_KEY2, id => 2);
main::stats(1, '20261129', 'key:1:cost' => 7_000_000, cost => 7_000_000);
main::stats(1, '20261130', 'key:1:cost' => 12_345, 'key:2:cost' => 5_000_000, cost => 5_012_345);
main::stats(1, '20261201', 'key:1:cost' => 1_000_000, cost => 1_000_000);
main::stats(1, '20261202', 'key:1:cost' => 3_000_000, cost => 3_000_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/dashboard/billing/usage?start_date=2026-11-30&end_date=2026-12-02
--- more_headers eval: $::Key
--- response_body
{"object":"list","total_usage":101.2345}



=== TEST 11: usage: another key of the same user sees its own only
--- init
AIRelayTest::seed_world();
AIRelayTest::seed_key(1, $AIRelayTest::TEST_KEY2, id => 2);
main::stats(1, '20261130', 'key:1:cost' => 12_345, 'key:2:cost' => 5_000_000, cost => 5_012_345);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/dashboard/billing/usage?start_date=2026-11-30&end_date=2026-12-01
--- more_headers eval: "Authorization: Bearer $AIRelayTest::TEST_KEY2"
--- response_body
{"object":"list","total_usage":500.0000}



=== TEST 12: usage without dates: this month to today
--- init
AIRelayTest::seed_world();
main::stats(1, main::today(), 'key:1:cost' => 250_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/dashboard/billing/usage
--- more_headers eval: $::Key
--- response_body
{"object":"list","total_usage":25.0000}



=== TEST 13: usage: bad ranges are refused
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
["GET /v1/dashboard/billing/usage?start_date=2026-02-30&end_date=2026-03-02",
 "GET /v1/dashboard/billing/usage?start_date=2026-03-02&end_date=2026-03-02",
 "GET /v1/dashboard/billing/usage?start_date=2026-01-01&end_date=2026-04-12"]
--- more_headers eval: $::Key
--- error_code eval
[400, 400, 400]
--- response_body eval
["{\"error\":{\"message\":\"start_date and end_date must be dates, YYYY-MM-DD.\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"invalid_request\"}}\n",
 "{\"error\":{\"message\":\"end_date must be after start_date.\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"invalid_request\"}}\n",
 "{\"error\":{\"message\":\"The range may span at most 100 days.\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"invalid_request\"}}\n"]



=== TEST 14: usage over exactly 100 days is served
--- init
AIRelayTest::seed_world();
main::stats(1, '20260101', 'key:1:cost' => 10_000);
main::stats(1, '20260410', 'key:1:cost' => 20_000);
main::stats(1, '20260411', 'key:1:cost' => 40_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/dashboard/billing/usage?start_date=2026-01-01&end_date=2026-04-11
--- more_headers eval: $::Key
--- response_body
{"object":"list","total_usage":3.0000}



=== TEST 15: by default the answer's model is what the upstream said
--- init
AIRelayTest::seed_world();
AIRelayTest::seed_alias('fast', 'gpt-4o-mini');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"fast","messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::Key
--- response_body
{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}



=== TEST 16: ai_relay_response_model client: the name the client asked for, every other byte as sent
--- init
AIRelayTest::seed_world();
AIRelayTest::seed_alias('fast', 'gpt-4o-mini');
--- http_config eval: $::HttpConfig
--- config eval: $::Renamed
--- request
POST /v1/chat/completions
{"model":"fast","messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::Key
--- response_headers
Content-Length:
--- response_body
{"id":"chatcmpl-1","object":"chat.completion","model":"fast","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}
--- redis_check
ok(wait_for(sub { records(1) >= 1 }), 'recorded');
my $r = last_record(1);
is($r->{prompt_tokens}, 12, 'usage still read');
is($r->{completion_tokens}, 3, 'usage still read');



=== TEST 17: a stream: each event renamed as it goes, the injected usage chunk still left out
--- init
AIRelayTest::seed_world(mock => '/mock/ssem');
AIRelayTest::seed_alias('fast', 'gpt-4o-mini');
--- http_config eval: $::HttpConfig
--- config eval: $::Renamed
--- request
POST /v1/chat/completions
{"model":"fast","stream":true,"messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::Key
--- response_body eval
"data: {\"id\":\"c1\",\"model\":\"fast\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
. "data: {\"id\":\"c1\",\"model\":\"fast\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\\"model\\\":\\\"x\\\"\"}}]}\n\n"
. "data: [DONE]\n\n"



=== TEST 18: a stream that asked for usage keeps its usage chunk, renamed too
--- init
AIRelayTest::seed_world(mock => '/mock/ssem');
AIRelayTest::seed_alias('fast', 'gpt-4o-mini');
--- http_config eval: $::HttpConfig
--- config eval: $::Renamed
--- request
POST /v1/chat/completions
{"model":"fast","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::Key
--- response_body eval
"data: {\"id\":\"c1\",\"model\":\"fast\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
. "data: {\"id\":\"c1\",\"model\":\"fast\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\\"model\\\":\\\"x\\\"\"}}]}\n\n"
. "data: {\"id\":\"c1\",\"model\":\"fast\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,\"total_tokens\":14}}\n\n"
. "data: [DONE]\n\n"



=== TEST 19: an upstream error passes unchanged
--- init
AIRelayTest::seed_world(mock => '/mock/bad');
AIRelayTest::seed_alias('fast', 'gpt-4o-mini');
--- http_config eval: $::HttpConfig
--- config eval: $::Renamed
--- request
POST /v1/chat/completions
{"model":"fast","messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::Key
--- error_code: 400
--- response_body chomp
{"error":{"message":"bad","model":"gpt-4o-mini","type":"invalid_request_error"}}



=== TEST 20: a stream renamed event by event allocates nothing per event: after a 32 kB event, 2000 small ones take no large allocation each
--- init
AIRelayTest::seed_world(mock => '/mock/ssebig');
AIRelayTest::seed_alias('fast', 'gpt-4o-mini');
--- http_config eval: $::HttpConfig
--- config eval: $::Renamed
--- request
POST /v1/chat/completions
{"model":"fast","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::Key
--- response_body_like eval
qr/^data: \{"id":"c1","model":"fast","choices":\[\{"index":0,"delta":\{"content":"a{32768}"\}\}\]\}\n\n(?:data: \{"id":"c1","model":"fast","choices":\[\{"index":0,"delta":\{"content":"x"\}\}\]\}\n\n){2000}data: \{"id":"c1","model":"fast","choices":\[\],"usage":.*\n\ndata: \[DONE\]\n\n$/s
--- redis_check
# nginx's debug log names every allocation its pools take from malloc
my @large = grep { $_ >= 16384 } (error_log_text() =~ /malloc: \S+:(\d+)/g);
ok(@large < 100, scalar(@large) . ' allocations of 16 kB or more, not one per event');



=== TEST 21: subscription and usage of a user whose id is long (3000 bytes): served, the Redis keys whole
--- init
my $uid = '7' x 3000;
AIRelayTest::seed_user($uid, balance => 2_000_000);
AIRelayTest::seed_key($uid, $AIRelayTest::TEST_KEY2, id => 77);
AIRelayTest::redis('HSET', "ar:{u$uid}:stats:20250102", "key:77:cost", 1_230_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
["GET /v1/dashboard/billing/subscription",
 "GET /v1/dashboard/billing/usage?start_date=2025-01-01&end_date=2025-01-05"]
--- more_headers eval: "Authorization: Bearer $AIRelayTest::TEST_KEY2"
--- response_body_like eval
['"hard_limit_usd":2\.00', '"total_usage":123\.0000\}']
--- no_error_log
[alert]
