# The request body: validation, rewriting, and what exactly reaches the
# upstream (the mock echoes the request it received).

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 46;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();
our $Config = relay_config(extra => <<'_EOC_');
    location /mock/len/ {
        client_max_body_size 30m;
        echo_read_request_body;
        echo "upstream got $http_content_length bytes";
    }
_EOC_

our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";
our $P = $AIRelayTest::SERVER_PORT;

run_tests();

__DATA__

=== TEST 1: the upstream gets the body unchanged but for the model, and the channel's key
--- init
AIRelayTest::seed_world(mock => '/mock/echo',
    channel => { map => { 'gpt-4o-mini' => 'gpt-4o-mini-2024-07-18' } });
AIRelayTest::seed_alias('fast', 'gpt-4o-mini');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n" . '{"model" : "fast", "temperature":0.1000000000000000055511151231257827,"x_unknown":{"a":[1,2e10,-0.0,1E400]},"messages":[{"role":"user","content":"h\u00e9llo \ud83d\ude00 caf' . "\xc3\xa9" . '"}]}'
--- more_headers eval: $::Key
--- response_body eval
my $b = '{"model" : "gpt-4o-mini-2024-07-18", "temperature":0.1000000000000000055511151231257827,"x_unknown":{"a":[1,2e10,-0.0,1E400]},"messages":[{"role":"user","content":"h\u00e9llo \ud83d\ude00 caf' . "\xc3\xa9" . '"}]}';
"POST /mock/echo/v1/chat/completions HTTP/1.0\r
Host: 127.0.0.1:$::P\r
Connection: close\r
Content-Length: " . length($b) . "\r
Authorization: Bearer upstream-key-1\r
\r
" . '{"model" : "gpt-4o-mini-2024-07-18", "temperature":0.1000000000000000055511151231257827,"x_unknown":{"a":[1,2e10,-0.0,1E400]},"messages":[{"role":"user","content":"h\u00e9llo \ud83d\ude00 caf' . "\xc3\xa9" . '"}]}'
--- no_error_log
[error]



=== TEST 2: a stream without include_usage gets it added upstream
--- init
AIRelayTest::seed_world(mock => '/mock/echo');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","stream":true,"messages":[]}
--- more_headers eval: $::Key
--- response_body_like eval
qr/\r\n\r\n\{"model":"gpt-4o-mini","stream":true,"messages":\[\],"stream_options":\{"include_usage":true\}\}$/
--- no_error_log
[error]



=== TEST 3: client key headers and ?key= never reach the upstream, other headers do
--- init
AIRelayTest::seed_world(mock => '/mock/echo');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions?key=sk-test0000000000000000000000000000000000000000001&trace=1
{"model":"gpt-4o-mini"}
--- more_headers
x-api-key: sk-test0000000000000000000000000000000000000000001
x-goog-api-key: sk-test0000000000000000000000000000000000000000001
OpenAI-Organization: org-1
Accept-Encoding: gzip
--- response_body eval
"POST /mock/echo/v1/chat/completions?trace=1 HTTP/1.0\r
Host: 127.0.0.1:$::P\r
Connection: close\r
Content-Length: 23\r
OpenAI-Organization: org-1\r
Authorization: Bearer upstream-key-1\r
\r
{\"model\":\"gpt-4o-mini\"}"
--- no_error_log
[error]



=== TEST 4: not JSON: 400 and nothing changes in Redis
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini",
--- more_headers eval: $::Key
--- error_code: 400
--- response_body
{"error":{"message":"We could not parse the JSON body of your request: unexpected end of input at offset 23.","type":"invalid_request_error","param":null,"code":"invalid_json"}}
--- redis_check
is(user_field(1, 'balance'), 10000000, 'balance unchanged');
is(redis('EXISTS', 'ar:{u1}:res'), 0, 'nothing reserved');
is(redis('EXISTS', 'ar:{u1}:log'), 0, 'no record');
--- no_error_log
[error]



=== TEST 5: a JSON array is not a request
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
[{"model":"gpt-4o-mini"}]
--- more_headers eval: $::Key
--- error_code: 400
--- response_body
{"error":{"message":"The request body must be a JSON object.","type":"invalid_request_error","param":null,"code":"invalid_json"}}



=== TEST 6: no model
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"messages":[]}
--- more_headers eval: $::Key
--- error_code: 400
--- response_body
{"error":{"message":"You must provide a model parameter.","type":"invalid_request_error","param":null,"code":"missing_model"}}



=== TEST 7: a model that is not a string
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":42}
--- more_headers eval: $::Key
--- error_code: 400
--- response_body
{"error":{"message":"The model parameter must be a non-empty string of at most 256 bytes.","type":"invalid_request_error","param":null,"code":"invalid_model"}}



=== TEST 8: bytes that are not UTF-8
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n" . qq{{"model":"gpt-4o-mini","messages":[{"role":"user","content":"caf\xe9"}]}}
--- more_headers eval: $::Key
--- error_code: 400
--- response_body
{"error":{"message":"We could not parse the JSON body of your request: invalid UTF-8 at offset 64.","type":"invalid_request_error","param":null,"code":"invalid_json"}}



=== TEST 9: JSON nested deeper than ai_relay_json_max_depth
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n" . '{"model":"gpt-4o-mini","x":' . ('[' x 100000) . (']' x 100000) . '}'
--- more_headers eval: $::Key
--- error_code: 400
--- response_body
{"error":{"message":"We could not parse the JSON body of your request: nesting too deep at offset 154.","type":"invalid_request_error","param":null,"code":"invalid_json"}}



=== TEST 10: nesting within the limit is fine
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n" . '{"model":"gpt-4o-mini","x":' . ('[' x 100) . (']' x 100) . '}'
--- more_headers eval: $::Key
--- response_body_like: "Hi there"



=== TEST 11: an empty body
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- raw_request eval
"POST /v1/chat/completions HTTP/1.1\r
Host: localhost\r
Connection: close\r
$::Key\r
Content-Length: 0\r
\r
"
--- error_code: 400
--- response_body
{"error":{"message":"We could not parse the JSON body of your request: the body is empty.","type":"invalid_request_error","param":null,"code":"invalid_json"}}



=== TEST 12: a body nginx spooled to a temporary file is read back and relayed exactly
--- init
AIRelayTest::seed_world(mock => '/mock/echo',
    channel => { map => { 'gpt-4o-mini' => 'gpt-4o-mini-x' } });
--- http_config eval: $::HttpConfig
--- config eval: "client_body_buffer_size 1k;\n" . $::Config
--- request eval
"POST /v1/chat/completions\n" . '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"' . ('abcdefghij' x 6000) . '"}]}'
--- more_headers eval: $::Key
--- response_body_like eval
qr/\r\n\r\n\{"model":"gpt-4o-mini-x","messages":\[\{"role":"user","content":"(?:abcdefghij){6000}"\}\]\}$/
--- error_log
a client request body is buffered to a temporary file
--- no_error_log
[error]



=== TEST 13: a 10 MB body
--- init
AIRelayTest::seed_world(mock => '/mock/len',
    channel => { map => { 'gpt-4o-mini' => 'gpt-4o-mini-2024-07-18' } });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n" . '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"' . ('x' x (10 * 1024 * 1024)) . '"}]}'
--- more_headers eval: $::Key
--- response_body eval
"upstream got " . (10 * 1024 * 1024 + length('{"model":"gpt-4o-mini-2024-07-18","messages":[{"role":"user","content":""}]}')) . " bytes\n"
--- timeout: 10
--- no_error_log
[error]



=== TEST 14: a chunked request body is relayed with a Content-Length
--- init
AIRelayTest::seed_world(mock => '/mock/echo');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- raw_request eval
"POST /v1/chat/completions HTTP/1.1\r
Host: localhost\r
Connection: close\r
$::Key\r
Transfer-Encoding: chunked\r
\r
b\r
{\"model\":\"g\r
c\r
pt-4o-mini\"}\r
0\r
\r
"
--- response_body eval
"POST /mock/echo/v1/chat/completions HTTP/1.0\r
Host: 127.0.0.1:$::P\r
Connection: close\r
Content-Length: 23\r
Authorization: Bearer upstream-key-1\r
\r
{\"model\":\"gpt-4o-mini\"}"
--- no_error_log
[error]



=== TEST 15: many top-level members (more than the first guess) are fine
--- init
AIRelayTest::seed_world(mock => '/mock/echo');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n{" . join(',', map { "\"x$_\":$_" } 1 .. 200) . ',"model":"gpt-4o-mini"}'
--- more_headers eval: $::Key
--- response_body_like: "x200":200,"model":"gpt-4o-mini"\}$
--- no_error_log
[error]



=== TEST 16: a body read partly with the headers and partly after them is joined in place and relayed exactly
--- init
AIRelayTest::seed_world(mock => '/mock/echo',
    channel => { map => { 'gpt-4o-mini' => 'gpt-4o-mini-x' } });
--- http_config eval: $::HttpConfig
--- config eval: "client_body_buffer_size 1m;\n" . $::Config
--- request eval
"POST /v1/chat/completions\n" . '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"' . join('', map { sprintf('%06d', $_) } 1 .. 40000) . '"}]}'
--- more_headers eval: $::Key
--- response_body_like eval
my $c = join('', map { sprintf('%06d', $_) } 1 .. 40000);
qr/\r\n\r\n\{"model":"gpt-4o-mini-x","messages":\[\{"role":"user","content":"\Q$c\E"\}\]\}$/
--- no_error_log
a client request body is buffered to a temporary file
[error]
