# The endpoint table: a relay location serves the endpoints it knows and
# nothing else.  Other paths get 404 in the client's format, reach no
# upstream and change nothing, unless the location passes them through
# (ai_relay_passthrough), priced per request.  count_tokens is free:
# no reservation, no charge, still rate-limited and recorded.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 180;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();

# every request an upstream got goes to logs/spy.log
our $Spy = <<'_EOC_';
    location /mock/spy/ {
        access_log logs/spy.log;
        echo_read_request_body;
        default_type text/plain;
        echo -n "$request_method $uri|$http_authorization|";
        echo_request_body;
    }

    location /mock/audio/ {
        access_log logs/spy.log;
        echo_read_request_body;
        default_type audio/mpeg;
        echo -n 'ID3-not-really-audio';
    }

    location /mock/fail/ {
        access_log logs/spy.log;
        default_type application/json;
        return 400 '{"error":{"message":"bad voice","type":"invalid_request_error","param":"voice","code":null}}';
    }

    location /mock/fail500/ {
        access_log logs/spy.log;
        default_type application/json;
        return 500 '{"error":{"message":"The server had an error","type":"server_error"}}';
    }

    location /mock/raw/ {
        access_log logs/spy.log;
        echo_read_request_body;
        default_type application/json;
        echo -n '{"input_tokens":12,"got":"$request_method $request_uri"}';
    }

    location /mock/audiolen/ {
        access_log logs/spy.log;
        default_type audio/mpeg;
        return 200 'ID3-not-really-audio';
    }

    location /mock/jsonmodel/ {
        access_log logs/spy.log;
        default_type application/json;
        return 200 '{"object":"file","model":"gpt-4o-mini"}';
    }

    location /mock/count/ {
        access_log logs/spy.log;
        echo_read_request_body;
        default_type application/json;
        echo '{"input_tokens":12}';
    }
_EOC_

our $Config = relay_config(extra => $Spy);
our $Pass = relay_config(relay => 'ai_relay_passthrough passthru /v1/files '
                                   . '/v1/fine_tuning /v1/assistants '
                                   . '/v1/batches /v1/images;',
                         extra => $Spy);
our $PassDelete = relay_config(relay => 'ai_relay_passthrough passthru '
                                         . '/v1/files methods=GET,DELETE;',
                               extra => $Spy);
our $Renamed = relay_config(relay => 'ai_relay_response_model client; '
                                      . 'ai_relay_passthrough passthru /v1/files;',
                            extra => $Spy);
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";

# lines of logs/spy.log: the requests upstreams received
sub spy_lines {
    my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
    open my $fh, '<', "$root/logs/spy.log" or return 0;
    my @l = <$fh>;
    return scalar @l;
}

# nothing changed: no record, no reservation, the balance as seeded
sub untouched {
    Test::More::is(scalar(records(1)), 0, 'no record');
    Test::More::is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation');
    Test::More::is(user_field(1, 'balance'), 10_000_000, 'balance unchanged');
    Test::More::is(spy_lines(), 0, 'no upstream received anything');
}

run_tests();

__DATA__

=== TEST 1: fine_tuning/jobs is no endpoint: 404 in OpenAI's format, not forwarded
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/fine_tuning/jobs
{"model":"gpt-4o-mini","training_file":"file-abc"}
--- more_headers eval: $::Key
--- error_code: 404
--- response_body
{"error":{"message":"Invalid URL (POST /v1/fine_tuning/jobs)","type":"invalid_request_error","param":null,"code":"unknown_url"}}
--- redis_check
main::untouched();



=== TEST 2: assistants: 404, not forwarded
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/assistants
{"model":"gpt-4o-mini","instructions":"be nice"}
--- more_headers eval: $::Key
--- error_code: 404
--- response_body
{"error":{"message":"Invalid URL (POST /v1/assistants)","type":"invalid_request_error","param":null,"code":"unknown_url"}}
--- redis_check
main::untouched();



=== TEST 3: realtime/sessions: 404, not forwarded
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/realtime/sessions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- error_code: 404
--- response_body
{"error":{"message":"Invalid URL (POST /v1/realtime/sessions)","type":"invalid_request_error","param":null,"code":"unknown_url"}}
--- redis_check
main::untouched();



=== TEST 4: a GET of an unknown path: 404 too (not 405), even without a key
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/files
--- error_code: 404
--- response_body
{"error":{"message":"Invalid URL (GET /v1/files)","type":"invalid_request_error","param":null,"code":"unknown_url"}}
--- redis_check
main::untouched();



=== TEST 5: Anthropic's location answers an unknown path in Anthropic's format
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages/batches
{"requests":[]}
--- more_headers eval: "x-api-key: $AIRelayTest::TEST_KEY"
--- error_code: 404
--- response_body
{"type":"error","error":{"type":"not_found_error","message":"Invalid URL (POST /v1/messages/batches)"}}
--- redis_check
main::untouched();



=== TEST 6: Gemini's location answers an unknown method in Gemini's format
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/gpt-4o-mini:predict
{"instances":[]}
--- more_headers eval: "x-goog-api-key: $AIRelayTest::TEST_KEY"
--- error_code: 404
--- response_body
{"error":{"code":404,"message":"Invalid URL (POST /v1beta/models/gpt-4o-mini:predict)","status":"NOT_FOUND"}}
--- redis_check
main::untouched();



=== TEST 7: a known endpoint with a method it does not take: 405
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
DELETE /v1/models
--- more_headers eval: $::Key
--- error_code: 405
--- response_body
{"error":{"message":"DELETE is not supported on this endpoint, use GET","type":"invalid_request_error","param":null,"code":"method_not_allowed"}}
--- redis_check
main::untouched();



=== TEST 8: the same path on a location that opts in: passed through, body untouched, per request price
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
AIRelayTest::seed_model('passthru', channels => '1');
AIRelayTest::seed_price('passthru', request => 2500);
--- http_config eval: $::HttpConfig
--- config eval: $::Pass
--- request
POST /v1/fine_tuning/jobs
{"model":"gpt-4o-mini","training_file":"file-abc"}
--- more_headers eval: $::Key
--- response_body chomp
POST /mock/spy/v1/fine_tuning/jobs|Bearer upstream-key-1|{"model":"gpt-4o-mini","training_file":"file-abc"}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{model}, 'passthru', 'recorded as the pass-through model');
is($r->{path}, '/v1/fine_tuning/jobs', 'its path');
is($r->{cost}, 2500, 'the per-request price');
is($r->{usage_source}, 'request', 'usage: the request');
is($r->{prompt_tokens}, 0, 'no tokens');
is(user_field(1, 'balance'), 10_000_000 - 2500, 'charged once');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');
is(main::spy_lines(), 1, 'the upstream got it');



=== TEST 9: a pass-through GET without a body
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
AIRelayTest::seed_model('passthru', channels => '1');
AIRelayTest::seed_price('passthru', request => 1000);
--- http_config eval: $::HttpConfig
--- config eval: $::Pass
--- request
GET /v1/files
--- more_headers eval: $::Key
--- response_body chomp
GET /mock/spy/v1/files|Bearer upstream-key-1|
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
is(last_record(1)->{cost}, 1000, 'the per-request price');
is(user_field(1, 'balance'), 10_000_000 - 1000, 'charged once');



=== TEST 10: pass-through still checks the key may use the pass-through model
--- init
AIRelayTest::seed_world(mock => '/mock/spy', key => { models => 'gpt-4o-mini' });
AIRelayTest::seed_model('passthru', channels => '1');
AIRelayTest::seed_price('passthru', request => 1000);
--- http_config eval: $::HttpConfig
--- config eval: $::Pass
--- request
POST /v1/assistants
{}
--- more_headers eval: $::Key
--- error_code: 404
--- response_body_like: model_not_found
--- redis_check
main::untouched();



=== TEST 11: known endpoints are not passed through: chat is still billed by tokens
--- init
AIRelayTest::seed_world(mock => '/mock/chat');
AIRelayTest::seed_model('passthru', channels => '1');
AIRelayTest::seed_price('passthru', request => 1000);
--- http_config eval: $::HttpConfig
--- config eval: $::Pass
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::Key
--- response_body_like: Hi there
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{model}, 'gpt-4o-mini', 'its own model');
is($r->{prompt_tokens}, 12, 'tokens');
is($r->{cost}, int((12 * 150000 + 3 * 600000 + 999_999) / 1_000_000), 'token price');



=== TEST 12: Anthropic count_tokens is free: no reservation, no charge, one record
--- init
AIRelayTest::seed_world(mock => '/mock/count', balance => 5);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages/count_tokens
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a long prompt that would cost more than five micro-dollars to reserve at any price"}]}
--- more_headers eval: "x-api-key: $AIRelayTest::TEST_KEY"
--- response_body
{"input_tokens":12}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'recorded');
my $r = last_record(1);
is($r->{status}, 200, 'status');
is($r->{cost}, 0, 'no cost');
is($r->{path}, '/v1/messages/count_tokens', 'path');
is($r->{prompt_tokens}, 0, 'no tokens counted');
is(user_field(1, 'balance'), 5, 'balance unchanged');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation');
is(key_field(1, $AIRelayTest::TEST_KEY, 'rl_r'), 1, 'counted for the rate limit');



=== TEST 13: Gemini countTokens is free too
--- init
AIRelayTest::seed_world(mock => '/mock/count');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/gpt-4o-mini:countTokens
{"contents":[{"parts":[{"text":"hello"}]}]}
--- more_headers eval: "x-goog-api-key: $AIRelayTest::TEST_KEY"
--- response_body
{"input_tokens":12}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'recorded');
is(last_record(1)->{cost}, 0, 'no cost');
is(user_field(1, 'balance'), 10_000_000, 'balance unchanged');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation');



=== TEST 14: count_tokens is still rate-limited
--- init
AIRelayTest::seed_world(mock => '/mock/count', key => { rpm => 1 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
["POST /v1/messages/count_tokens\n{\"model\":\"gpt-4o-mini\",\"messages\":[]}",
 "POST /v1/messages/count_tokens\n{\"model\":\"gpt-4o-mini\",\"messages\":[]}"]
--- more_headers eval: "x-api-key: $AIRelayTest::TEST_KEY"
--- error_code eval
[200, 429]
--- response_body_like eval
['^\{"input_tokens":12\}$', '^\{"type":"error","error":\{"type":"rate_limit_error","message":"Rate limit reached for requests per minute']
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'the served one recorded');
is(user_field(1, 'balance'), 10_000_000, 'balance unchanged');
is(main::spy_lines(), 1, 'the refused one did not reach the upstream');



=== TEST 15: audio/speech is priced per 1M input characters, exactly
--- init
AIRelayTest::seed_world(mock => '/mock/audio');
AIRelayTest::seed_model('tts-1', channels => '1');
AIRelayTest::seed_price('tts-1', character => 15_000_000, request => 3);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"h\u00e9llo 世界"}
--- more_headers eval: $::Key
--- response_headers
Content-Type: audio/mpeg
--- response_body chomp
ID3-not-really-audio
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{characters}, 8, '8 characters (not 13 bytes)');
is($r->{cost}, 8 * 15 + 3, 'characters at $15 per 1M, plus the request');
is($r->{usage_source}, 'request', 'counted in the request');
is(user_field(1, 'balance'), 10_000_000 - 123, 'charged once');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');



=== TEST 16: speech: the reservation is the exact price, refused when the balance is short
--- init
AIRelayTest::seed_world(mock => '/mock/audio', balance => 100);
AIRelayTest::seed_model('tts-1', channels => '1');
AIRelayTest::seed_price('tts-1', character => 15_000_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"eight ch"}
--- more_headers eval: $::Key
--- error_code: 402
--- response_body_like: insufficient_quota
--- redis_check
is(scalar(records(1)), 0, 'no record');
is(user_field(1, 'balance'), 100, 'balance unchanged');
is(main::spy_lines(), 0, 'not forwarded');



=== TEST 17: speech the upstream failed costs nothing
--- init
AIRelayTest::seed_world(mock => '/mock/fail');
AIRelayTest::seed_model('tts-1', channels => '1');
AIRelayTest::seed_price('tts-1', character => 15_000_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"hello"}
--- more_headers eval: $::Key
--- error_code: 400
--- response_body_like: bad voice
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{cost}, 0, 'no cost');
is($r->{usage_source}, 'none', 'no usage');
is(user_field(1, 'balance'), 10_000_000, 'balance unchanged');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');



=== TEST 18: speech without a string input: 400, nothing changed
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
AIRelayTest::seed_model('tts-1', channels => '1');
AIRelayTest::seed_price('tts-1', character => 15_000_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":42}
--- more_headers eval: $::Key
--- error_code: 400
--- response_body
{"error":{"message":"You must provide the text to speak as a string \"input\".","type":"invalid_request_error","param":null,"code":"invalid_request"}}
--- redis_check
main::untouched();



=== TEST 19: a pass-through that fails over sends the same raw body to the next channel
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
AIRelayTest::seed_channel("ptf$$", base_url => AIRelayTest::mock_url('/mock/fail500'), priority => 10);
AIRelayTest::seed_channel("pto$$", base_url => AIRelayTest::mock_url('/mock/spy'), priority => 0);
AIRelayTest::seed_model('passthru', channels => "ptf$$,pto$$");
AIRelayTest::seed_price('passthru', request => 2500);
--- http_config eval: $::HttpConfig
--- config eval: $::Pass
--- request
POST /v1/batches
{"input_file_id":"file-abc","endpoint":"/v1/chat/completions"}
--- more_headers eval: $::Key
--- response_body_like eval
qr{^POST /mock/spy/v1/batches\|Bearer upstream-key-pto\d+\|\{"input_file_id":"file-abc","endpoint":"/v1/chat/completions"\}$}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{tries}, 2, 'two tries');
is($r->{cost}, 2500, 'billed once, per request');



=== TEST 20: pass-through only under the prefixes the operator named: other paths 404, not forwarded
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
AIRelayTest::seed_model('passthru', channels => '1');
AIRelayTest::seed_price('passthru', request => 1000);
--- http_config eval: $::HttpConfig
--- config eval: $::Pass
--- request eval
["POST /v1/realtime/sessions\n{}", "GET /v1/filesystem", "GET /v1/vector_stores"]
--- more_headers eval: $::Key
--- error_code eval
[404, 404, 404]
--- response_body_like eval
["unknown_url", "unknown_url", "unknown_url"]
--- redis_check
main::untouched();



=== TEST 21: an endpoint in other letter case or with a trailing slash, under a pass-through prefix: 404, never passed through raw
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
AIRelayTest::seed_model('passthru', channels => '1');
AIRelayTest::seed_price('passthru', request => 1000);
--- http_config eval: $::HttpConfig
--- config eval: $::Pass
--- request eval
["POST /v1/images/generations/\n{\"model\":\"gpt-4o-mini\",\"prompt\":\"a cat\"}",
 "POST /v1/images/Generations\n{\"model\":\"gpt-4o-mini\",\"prompt\":\"a cat\"}",
 "POST /v1/images/edits//\n{}"]
--- more_headers eval: $::Key
--- error_code eval
[404, 404, 404]
--- response_body_like eval
["unknown_url", "unknown_url", "unknown_url"]
--- redis_check
main::untouched();



=== TEST 22: pass-through takes GET and POST unless the operator names other methods: DELETE 405
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
AIRelayTest::seed_model('passthru', channels => '1');
AIRelayTest::seed_price('passthru', request => 1000);
--- http_config eval: $::HttpConfig
--- config eval: $::Pass
--- request
DELETE /v1/files/file-abc
--- more_headers eval: $::Key
--- error_code: 405
--- response_body_like: method_not_allowed
--- redis_check
main::untouched();



=== TEST 23: methods= opens DELETE too, on the named prefixes only
--- init
AIRelayTest::seed_world(mock => '/mock/spy');
AIRelayTest::seed_model('passthru', channels => '1');
AIRelayTest::seed_price('passthru', request => 1000);
--- http_config eval: $::HttpConfig
--- config eval: $::PassDelete
--- request eval
["DELETE /v1/files/file-abc", "POST /v1/files\n{}"]
--- more_headers eval: $::Key
--- error_code eval
[200, 405]
--- response_body_like eval
["^DELETE /mock/spy/v1/files/file-abc\\|Bearer upstream-key-1\\|\$", "method_not_allowed"]
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
is(last_record(1)->{cost}, 1000, 'the per-request price');
is(user_field(1, 'balance'), 10_000_000 - 1000, 'charged once');
is(main::spy_lines(), 1, 'the upstream got the DELETE only');



=== TEST 24: path tricks: the upstream gets the path the endpoint was found in (free count_tokens stays count_tokens), not the client's raw bytes
--- init
AIRelayTest::seed_world(mock => '/mock/raw');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
["POST /v1/messages%2Fcount_tokens\n{\"model\":\"gpt-4o-mini\",\"messages\":[]}",
 "POST /v1/messages/count_tokens#/../../messages\n{\"model\":\"gpt-4o-mini\",\"messages\":[]}",
 "POST /v1/./messages//count_tokens\n{\"model\":\"gpt-4o-mini\",\"messages\":[]}"]
--- more_headers eval: "x-api-key: $AIRelayTest::TEST_KEY"
--- response_body eval
['{"input_tokens":12,"got":"POST /mock/raw/v1/messages/count_tokens"}',
 '{"input_tokens":12,"got":"POST /mock/raw/v1/messages/count_tokens"}',
 '{"input_tokens":12,"got":"POST /mock/raw/v1/messages/count_tokens"}']
--- redis_check
ok(wait_for(sub { records(1) == 3 }), 'three records');
is(user_field(1, 'balance'), 10_000_000, 'free, and free upstream too');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation');
is(main::spy_lines(), 3, 'each reached the upstream once');



=== TEST 25: ai_relay_response_model client leaves audio alone: speech keeps its bytes and its Content-Length
--- init
AIRelayTest::seed_world(mock => '/mock/audiolen');
AIRelayTest::seed_model('tts-1', channels => '1');
AIRelayTest::seed_price('tts-1', character => 15_000_000, request => 3);
--- http_config eval: $::HttpConfig
--- config eval: $::Renamed
--- request
POST /v1/audio/speech
{"model":"tts-1","voice":"alloy","input":"hello"}
--- more_headers eval: $::Key
--- response_headers
Content-Type: audio/mpeg
Content-Length: 20
--- response_body chomp
ID3-not-really-audio
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
is(user_field(1, 'balance'), 10_000_000 - (5 * 15 + 3), 'charged once');



=== TEST 26: ai_relay_response_model client leaves a pass-through answer alone
--- init
AIRelayTest::seed_world(mock => '/mock/jsonmodel');
AIRelayTest::seed_model('passthru', channels => '1');
AIRelayTest::seed_price('passthru', request => 1000);
--- http_config eval: $::HttpConfig
--- config eval: $::Renamed
--- request
GET /v1/files/file-1
--- more_headers eval: $::Key
--- response_headers
Content-Length: 39
--- response_body chomp
{"object":"file","model":"gpt-4o-mini"}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
is(user_field(1, 'balance'), 10_000_000 - 1000, 'charged once');
