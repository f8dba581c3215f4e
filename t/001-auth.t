# Client keys: where they come from, and every way a key is refused.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 57;
install_redis_check();
no_shuffle();
no_long_string();

our $HttpConfig = http_config();
our $Config = relay_config();

run_tests();

__DATA__

=== TEST 1: Bearer key: the request is relayed
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}
--- more_headers
Authorization: Bearer sk-test0000000000000000000000000000000000000000001
--- response_body_like: "content":"Hi there"
--- no_error_log
[error]



=== TEST 2: no key at all
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[]}
--- error_code: 401
--- response_headers
Content-Type: application/json
--- response_body
{"error":{"message":"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}
--- no_error_log
[error]



=== TEST 3: unknown key: 401, the key is never logged in plaintext
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[]}
--- more_headers
Authorization: Bearer sk-unknown00000000000000000000000000000000000wxyz
--- error_code: 401
--- response_body
{"error":{"message":"Incorrect API key provided: sk-un…wxyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}
--- error_log
unknown API key sk-un…wxyz
--- no_error_log eval
[qr/\[(?:info|notice|warn|error)\].*sk-unknown0000000000/, "[error]"]



=== TEST 4: Anthropic style: x-api-key, Anthropic error shape
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"gpt-4o-mini","max_tokens":10,"messages":[]}
--- more_headers
x-api-key: sk-nope
anthropic-version: 2023-06-01
--- error_code: 401
--- response_body
{"type":"error","error":{"type":"authentication_error","message":"Incorrect API key provided: sk…."}}
--- no_error_log
[error]



=== TEST 5: x-api-key carries a valid key
--- init
AIRelayTest::seed_world(channel => { provider => 'anthropic' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"gpt-4o-mini","max_tokens":10,"messages":[]}
--- more_headers
x-api-key: sk-test0000000000000000000000000000000000000000001
--- response_body_like: "content":"Hi there"
--- no_error_log
[error]



=== TEST 6: x-goog-api-key carries a valid key (Gemini style)
--- init
AIRelayTest::seed_world(channel => { provider => 'gemini' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/gpt-4o-mini:generateContent
{"contents":[{"parts":[{"text":"hi"}]}]}
--- more_headers
x-goog-api-key: sk-test0000000000000000000000000000000000000000001
--- response_body_like: "content":"Hi there"
--- no_error_log
[error]



=== TEST 7: ?key= carries a valid key (Gemini style)
--- init
AIRelayTest::seed_world(channel => { provider => 'gemini' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/gpt-4o-mini:generateContent?key=sk-test0000000000000000000000000000000000000000001
{"contents":[{"parts":[{"text":"hi"}]}]}
--- response_body_like: "content":"Hi there"
--- no_error_log
[error]



=== TEST 8: Gemini style error shape
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/gpt-4o-mini:generateContent?key=sk-wrong-but-long-enough
{"contents":[]}
--- error_code: 401
--- response_body
{"error":{"code":401,"message":"Incorrect API key provided: sk-wr…ough.","status":"UNAUTHENTICATED"}}



=== TEST 9: disabled key
--- init
AIRelayTest::seed_world(key => { status => 'disabled' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[]}
--- more_headers
Authorization: Bearer sk-test0000000000000000000000000000000000000000001
--- error_code: 401
--- response_body
{"error":{"message":"The API key sk-te…0001 has been disabled.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}
--- no_error_log
[error]



=== TEST 10: expired key (expiry time in the past)
--- init
AIRelayTest::seed_world(key => { expires => 1000 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[]}
--- more_headers
Authorization: Bearer sk-test0000000000000000000000000000000000000000001
--- error_code: 401
--- response_body
{"error":{"message":"The API key sk-te…0001 has expired.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}



=== TEST 11: a key's owner disabled
--- init
AIRelayTest::seed_world();
AIRelayTest::redis('HSET', 'ar:{u1}:user', 'status', 'disabled');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[]}
--- more_headers
Authorization: Bearer sk-test0000000000000000000000000000000000000000001
--- error_code: 401
--- response_body
{"error":{"message":"The account that owns the API key sk-te…0001 is disabled.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}



=== TEST 12: a key limited to other models gets the unknown-model answer
--- init
AIRelayTest::seed_world(key => { models => 'other-model' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[]}
--- more_headers
Authorization: Bearer sk-test0000000000000000000000000000000000000000001
--- error_code: 404
--- response_body
{"error":{"message":"The model `gpt-4o-mini` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}



=== TEST 13: a key limited to this model passes
--- init
AIRelayTest::seed_world(key => { models => 'other-model,gpt-4o-mini' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[]}
--- more_headers
Authorization: Bearer sk-test0000000000000000000000000000000000000000001
--- response_body_like: "content":"Hi there"



=== TEST 14: balance exhausted: 402 insufficient_quota, nothing reserved
--- init
AIRelayTest::seed_world(balance => 0);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[]}
--- more_headers
Authorization: Bearer sk-test0000000000000000000000000000000000000000001
--- error_code: 402
--- response_body
{"error":{"message":"You exceeded your current quota: the account has no balance left. Please top up.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}
--- no_error_log
[error]



=== TEST 15: requests per minute: the third request in a minute is refused
--- init
# the three requests in one minute window
AIRelayTest::away_from_period_end(60);
AIRelayTest::seed_world(key => { rpm => 2 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
[ "POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\",\"messages\":[]}",
  "POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\",\"messages\":[]}",
  "POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\",\"messages\":[]}" ]
--- more_headers
Authorization: Bearer sk-test0000000000000000000000000000000000000000001
--- error_code eval
[200, 200, 429]
--- response_headers_like eval
["", "", "Retry-After: [1-6]?[0-9]"]
--- response_body_like eval
['"Hi there"', '"Hi there"', '^\{"error":\{"message":"Rate limit reached for requests per minute on the API key sk-te…0001\. Please try again in \d+s\.","type":"requests","param":null,"code":"rate_limit_exceeded"\}\}']



=== TEST 16: a key in the query string never shows in the access log
--- init
AIRelayTest::seed_world(channel => { provider => 'gemini' });
--- http_config eval: $::HttpConfig . "log_format full '\$request|\$request_uri|\$args|\$arg_key';\n"
--- config eval: "access_log logs/full.log full;\n" . $::Config
--- request
POST /v1beta/models/gpt-4o-mini:generateContent?alt=json&key=sk-test0000000000000000000000000000000000000000001
{"contents":[]}
--- response_body_like: "content":"Hi there"
--- redis_check
my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
my $line;
ok(wait_for(sub {
    open my $fh, '<', "$root/logs/full.log" or return 0;
    ($line) = grep { m{^POST /v1beta} } <$fh>;
    defined $line;
}), 'logged');
unlike($line, qr/sk-test0000000000000/, 'no plaintext key');
like($line, qr/key=sk-te\*+0001/, 'a masked one');



=== TEST 17: a key in the query string of a path no endpoint serves (404) or of a method it does not take (405): in no access log
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig . "log_format full '\$request|\$request_uri|\$args|\$arg_key';\n"
--- config eval: "access_log logs/full.log full;\n" . $::Config
--- request eval
["POST /v1beta/models/x:predict?key=sk-test0000000000000000000000000000000000000000001\n{}",
 "DELETE /v1/chat/completions?alt=json&key=sk-test0000000000000000000000000000000000000000001"]
--- error_code eval
[404, 405]
--- redis_check
my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
my @lines;
ok(wait_for(sub {
    open my $fh, '<', "$root/logs/full.log" or return 0;
    @lines = grep { m{^(POST /v1beta/models/x|DELETE /v1/chat)} } <$fh>;
    @lines == 2;
}), 'both logged');
unlike(join('', @lines), qr/sk-test0000000000000/, 'no plaintext key');
is(scalar(grep { /key=sk-te\*+0001.*key=sk-te\*+0001.*key=sk-te\*+0001/ } @lines), 2,
   'a masked one in $request, $request_uri and $args of each');
