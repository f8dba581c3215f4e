# GET /v1/models: the models this key may use, in OpenAI's format.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 14;
no_shuffle();
no_long_string();

our $HttpConfig = http_config();
our $Config = relay_config();
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";

run_tests();

__DATA__

=== TEST 1: every listed model, sorted, hidden ones left out
--- init
AIRelayTest::seed_world();
AIRelayTest::seed_model('claude-sonnet-4', channels => '1', owned_by => 'anthropic', created => 1700000000);
AIRelayTest::seed_alias('fast', 'gpt-4o-mini');
AIRelayTest::seed_model('internal', channels => '1', hidden => 1);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- response_headers
Content-Type: application/json
--- response_body
{"object":"list","data":[{"id":"claude-sonnet-4","object":"model","created":1700000000,"owned_by":"anthropic"},{"id":"fast","object":"model","created":0,"owned_by":"ai-relay"},{"id":"gpt-4o-mini","object":"model","created":0,"owned_by":"ai-relay"}]}
--- no_error_log
[error]



=== TEST 2: a key limited to some models sees only those
--- init
AIRelayTest::seed_world(key => { models => 'fast' });
AIRelayTest::seed_alias('fast', 'gpt-4o-mini');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- response_body
{"object":"list","data":[{"id":"fast","object":"model","created":0,"owned_by":"ai-relay"}]}



=== TEST 3: one model
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models/gpt-4o-mini
--- more_headers eval: $::Key
--- response_body
{"id":"gpt-4o-mini","object":"model","created":0,"owned_by":"ai-relay"}



=== TEST 4: a model the key may not use does not exist for it
--- init
AIRelayTest::seed_world(key => { models => 'other' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models/gpt-4o-mini
--- more_headers eval: $::Key
--- error_code: 404
--- response_body
{"error":{"message":"The model `gpt-4o-mini` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}



=== TEST 5: listing needs a valid key
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers
Authorization: Bearer sk-not-a-key-of-ours
--- error_code: 401
--- response_body
{"error":{"message":"Incorrect API key provided: sk-no…ours.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}



=== TEST 6: other methods than POST on completions are refused in JSON
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/chat/completions
--- more_headers eval: $::Key
--- error_code: 405
--- response_body
{"error":{"message":"GET is not supported on this endpoint, use POST","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}
