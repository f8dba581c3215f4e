# Usage of every provider format, stream and not, from recorded-style
# fixtures: the exact bytes the client gets, the record, the balance.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 242;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();
our $Config = relay_config(extra => AIRelayTest::fixture_config());
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";
our $XKey = "x-api-key: $AIRelayTest::TEST_KEY";

run_tests();

__DATA__

=== TEST 1: OpenAI chat stream, client asked for usage: every byte passes through
--- init
AIRelayTest::seed_fixture('openai_chat_stream_usage.sse');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"max_tokens":100}
--- more_headers eval: $::Key
--- response_headers
Content-Type: text/event-stream
--- response_body eval: AIRelayTest::fixture('openai_chat_stream_usage.sse')
--- redis_check
my $r = expect_bill(prompt => 1200, cached => 1024, completion => 42,
                    reasoning => 10);
is($r->{stream}, 1, 'stream recorded');
--- no_error_log
[error]



=== TEST 2: OpenAI chat stream, client did not ask: the relay's usage chunk is left out, the bill is the same
--- init
AIRelayTest::seed_fixture('openai_chat_stream_usage.sse');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","stream":true,"max_tokens":100}
--- more_headers eval: $::Key
--- response_body eval
AIRelayTest::without_usage_chunk(AIRelayTest::fixture('openai_chat_stream_usage.sse'))
--- redis_check
isnt(without_usage_chunk(fixture('openai_chat_stream_usage.sse')),
     fixture('openai_chat_stream_usage.sse'), 'the fixture has a usage chunk');
expect_bill(prompt => 1200, cached => 1024, completion => 42, reasoning => 10);
--- no_error_log
[error]



=== TEST 3: OpenAI chat, not streamed
--- init
AIRelayTest::seed_fixture('openai_chat.json');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":1000}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('openai_chat.json')
--- redis_check
my $r = expect_bill(prompt => 2006, cached => 1920, completion => 300,
                    reasoning => 256);
is($r->{stream}, 0, 'not a stream');



=== TEST 4: DeepSeek stream: prompt_cache_hit_tokens count as cached
--- init
AIRelayTest::seed_fixture('deepseek_chat_stream.sse');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"max_tokens":500}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('deepseek_chat_stream.sse')
--- redis_check
expect_bill(prompt => 30, cached => 20, completion => 120, reasoning => 100);



=== TEST 5: a server that repeats cumulative usage on every chunk: the last one counts, never the sum
--- init
AIRelayTest::seed_fixture('openai_chat_stream_cumulative.sse');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"max_tokens":500}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('openai_chat_stream_cumulative.sse')
--- redis_check
# the last chunk says 50 prompt and 7 completion tokens (a text delta
# that merely contains "usage" must not count)
expect_bill(prompt => 50, completion => 7);



=== TEST 6: OpenAI completions, streamed
--- init
AIRelayTest::seed_fixture('openai_completions_stream.sse');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/completions
{"model":"gpt-4o-mini","prompt":"Say this","stream":true,"stream_options":{"include_usage":true},"max_tokens":16}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('openai_completions_stream.sse')
--- redis_check
expect_bill(prompt => 5, completion => 4);



=== TEST 7: OpenAI completions
--- init
AIRelayTest::seed_fixture('openai_completions.json');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/completions
{"model":"gpt-4o-mini","prompt":"Say this","max_tokens":16}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('openai_completions.json')
--- redis_check
expect_bill(prompt => 5, completion => 7);



=== TEST 8: embeddings
--- init
AIRelayTest::seed_fixture('openai_embeddings.json');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/embeddings
{"model":"gpt-4o-mini","input":"The food was delicious"}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('openai_embeddings.json')
--- redis_check
expect_bill(prompt => 8);



=== TEST 9: Responses API stream ending in response.completed
--- init
AIRelayTest::seed_fixture('openai_responses_stream_completed.sse');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/responses
{"model":"gpt-4o-mini","input":"hi","stream":true,"max_output_tokens":200}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('openai_responses_stream_completed.sse')
--- redis_check
expect_bill(prompt => 328, cached => 128, completion => 52, reasoning => 20);



=== TEST 10: Responses API stream ending in response.incomplete
--- init
AIRelayTest::seed_fixture('openai_responses_stream_incomplete.sse');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/responses
{"model":"gpt-4o-mini","input":"hi","stream":true,"max_output_tokens":16}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('openai_responses_stream_incomplete.sse')
--- redis_check
expect_bill(prompt => 40, completion => 16);



=== TEST 11: Responses API stream ending in response.failed
--- init
AIRelayTest::seed_fixture('openai_responses_stream_failed.sse');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/responses
{"model":"gpt-4o-mini","input":"hi","stream":true,"max_output_tokens":200}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('openai_responses_stream_failed.sse')
--- redis_check
expect_bill(prompt => 61, completion => 3);



=== TEST 12: Responses API, not streamed
--- init
AIRelayTest::seed_fixture('openai_responses.json');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/responses
{"model":"gpt-4o-mini","input":"hi","max_output_tokens":200}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('openai_responses.json')
--- redis_check
expect_bill(prompt => 36, completion => 87, reasoning => 64);



=== TEST 13: Anthropic stream: cache reads and 5m/1h writes billed as such, output cumulative
--- init
AIRelayTest::seed_fixture('anthropic_stream.sse', channel => { provider => 'anthropic' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"gpt-4o-mini","max_tokens":1024,"stream":true,"messages":[]}
--- more_headers eval: $::XKey
--- response_body eval: AIRelayTest::fixture('anthropic_stream.sse')
--- redis_check
expect_bill(prompt => 25 + 1500 + 3000, cached => 1500, cw5m => 1000,
            cw1h => 2000, completion => 87);



=== TEST 14: Anthropic stream whose message_delta repeats input and cache counts
--- init
AIRelayTest::seed_fixture('anthropic_stream_delta_full.sse', channel => { provider => 'anthropic' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"gpt-4o-mini","max_tokens":1024,"stream":true,"messages":[]}
--- more_headers eval: $::XKey
--- response_body eval: AIRelayTest::fixture('anthropic_stream_delta_full.sse')
--- redis_check
expect_bill(prompt => 12 + 300 + 200, cached => 300, cw5m => 200,
            completion => 55);



=== TEST 15: Anthropic, not streamed
--- init
AIRelayTest::seed_fixture('anthropic.json', channel => { provider => 'anthropic' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"gpt-4o-mini","max_tokens":1024,"messages":[]}
--- more_headers eval: $::XKey
--- response_body eval: AIRelayTest::fixture('anthropic.json')
--- redis_check
expect_bill(prompt => 2095 + 4102 + 2051, cached => 4102, cw5m => 51,
            cw1h => 2000, completion => 503);



=== TEST 16: Gemini stream (SSE): the last usageMetadata, thoughts billed as output
--- init
AIRelayTest::seed_fixture('gemini_stream.sse', channel => { provider => 'gemini' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse
{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":500}}
--- more_headers eval: "x-goog-api-key: $AIRelayTest::TEST_KEY"
--- response_body eval: AIRelayTest::fixture('gemini_stream.sse')
--- redis_check
expect_bill(prompt => 2100, cached => 2048, completion => 40 + 100,
            reasoning => 100);



=== TEST 17: Gemini, not streamed
--- init
AIRelayTest::seed_fixture('gemini.json', channel => { provider => 'gemini' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/gpt-4o-mini:generateContent
{"contents":[{"parts":[{"text":"hi"}]}]}
--- more_headers eval: "x-goog-api-key: $AIRelayTest::TEST_KEY"
--- response_body eval: AIRelayTest::fixture('gemini.json')
--- redis_check
expect_bill(prompt => 7 + 2, completion => 9 + 20, reasoning => 20);



=== TEST 18: images priced per image by size and quality
--- init
AIRelayTest::seed_fixture('openai_images.json',
    price => { image => 40_000, 'image:1024x1024:hd' => 80_000 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/images/generations
{"model":"gpt-4o-mini","prompt":"a cat","n":2,"size":"1024x1024","quality":"hd"}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('openai_images.json')
--- redis_check
expect_bill(extra => 2 * 80_000);



=== TEST 19: gpt-image: per image plus its token usage
--- init
AIRelayTest::seed_fixture('openai_images_usage.json', price => { image => 40_000 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/images/generations
{"model":"gpt-4o-mini","prompt":"a cat"}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('openai_images_usage.json')
--- redis_check
expect_bill(prompt => 50, completion => 4160, extra => 40_000);



=== TEST 20: a stream that never reports usage is estimated, and flagged
--- init
AIRelayTest::seed_fixture('openai_chat_stream_no_usage.sse', channel => {});
--- http_config eval: AIRelayTest::http_config()
--- config eval: AIRelayTest::relay_config(relay => 'ai_relay_stream_usage off;', extra => AIRelayTest::fixture_config())
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"Say hello to the tea house"}]}
--- more_headers eval: $::Key
--- response_body eval: AIRelayTest::fixture('openai_chat_stream_no_usage.sse')
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'a record');
my $r = last_record(1);
is($r->{usage_source}, 'estimated', 'flagged as estimated');
ok($r->{prompt_tokens} > 0, "prompt estimated ($r->{prompt_tokens})");
ok($r->{completion_tokens} > 0, "completion estimated ($r->{completion_tokens})");
ok($r->{cost} > 0, "never billed as zero ($r->{cost})");
is(user_field(1, 'balance'), 10_000_000 - $r->{cost}, 'balance matches the record');
