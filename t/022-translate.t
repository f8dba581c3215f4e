# Format translation: an OpenAI client on an Anthropic channel, an
# Anthropic client on an OpenAI-compatible channel, stream and not, tools
# included; the upstream gets its own API's request (checked byte for
# byte from its access log), the client its own API's answer, and the
# bill comes from the upstream's usage.  And a base URL with a path
# (Gemini's OpenAI endpoint) is joined as the API root.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;
use POSIX ();

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 391;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config(extra => <<'_EOC_');
    log_format upstream escape=none '$request_method $request_uri|$http_authorization|$http_x_api_key|$http_anthropic_version|$http_x_goog_api_key|$request_body';
_EOC_

our $Config = relay_config(extra => <<'_EOC_');
    # Gemini's OpenAI-compatible endpoint, its base URL .../v1beta/openai
    location /gem/v1beta/openai/chat/completions {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type application/json;
        echo '{"id":"g1","object":"chat.completion","created":1,"model":"gemini-2.5-flash","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}';
    }

    location /mock/anth/ {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type application/json;
        echo '{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":5}}';
    }

    location /mock/anth-bad/ {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type application/json;
        echo_status 400;
        echo '{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}}';
    }

    location /mock/anth-sse/ {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type text/event-stream;
        echo 'event: message_start';
        echo 'data: {"type":"message_start","message":{"id":"msg_2","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":1}}}';
        echo;
        echo_flush;
        echo 'event: content_block_start';
        echo 'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}';
        echo;
        echo 'event: ping';
        echo 'data: {"type":"ping"}';
        echo;
        echo 'event: content_block_delta';
        echo 'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me see."}}';
        echo;
        echo_flush;
        echo 'event: content_block_stop';
        echo 'data: {"type":"content_block_stop","index":0}';
        echo;
        echo 'event: content_block_start';
        echo 'data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}';
        echo;
        echo 'event: content_block_delta';
        echo 'data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\\"city\\\":"}}';
        echo;
        echo_flush;
        echo 'event: content_block_delta';
        echo 'data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\\\"Paris\\\"}"}}';
        echo;
        echo 'event: content_block_stop';
        echo 'data: {"type":"content_block_stop","index":1}';
        echo;
        echo 'event: message_delta';
        echo 'data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":7}}';
        echo;
        echo 'event: message_stop';
        echo 'data: {"type":"message_stop"}';
        echo;
    }

    location /mock/anth-gz/ {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type application/json;
        add_header Content-Encoding gzip;
        echo 'not really gzip';
    }

    location /mock/gem/ {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type application/json;
        echo '{"candidates":[{"content":{"parts":[{"text":"Bonjour"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":3,"totalTokenCount":31,"cachedContentTokenCount":8,"thoughtsTokenCount":8},"modelVersion":"gemini-2.5-flash","responseId":"rsp-1"}';
    }

    location /mock/gem-sig/ {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type application/json;
        echo '{"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"Cg4+Ab/z/Q=="}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":30,"candidatesTokenCount":5,"totalTokenCount":35},"modelVersion":"gemini-3-pro-preview","responseId":"rsp-5"}';
    }

    location /mock/gem-bad/ {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type application/json;
        echo_status 400;
        echo '{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}';
    }

    location /mock/gem-sse/ {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type text/event-stream;
        echo 'data: {"candidates":[{"content":{"parts":[{"text":"Checking."}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":40,"totalTokenCount":40},"modelVersion":"gemini-2.5-flash","responseId":"rsp-2"}';
        echo;
        echo_flush;
        echo 'data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":40,"candidatesTokenCount":9,"totalTokenCount":49},"modelVersion":"gemini-2.5-flash","responseId":"rsp-2"}';
        echo;
    }

    location /mock/down/ {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type application/json;
        echo_status 503;
        echo '{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}';
    }

    location /mock/oai/ {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type application/json;
        echo '{"id":"chatcmpl-7","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"length"}],"usage":{"prompt_tokens":50,"completion_tokens":8,"total_tokens":58,"prompt_tokens_details":{"cached_tokens":40}}}';
    }

    location /mock/oai-bad/ {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type application/json;
        echo_status 400;
        echo '{"error":{"message":"Invalid schema for function get_weather.","type":"invalid_request_error","param":"tools[0]","code":null}}';
    }

    location /mock/oai-sse/ {
        access_log logs/upstream.log upstream;
        echo_read_request_body;
        default_type text/event-stream;
        echo 'data: {"id":"c9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Let me see."},"finish_reason":null}],"usage":null}';
        echo;
        echo_flush;
        echo 'data: {"id":"c9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}],"usage":null}';
        echo;
        echo 'data: {"id":"c9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\\"city\\\":\\\"Paris\\\"}"}}]},"finish_reason":null}],"usage":null}';
        echo;
        echo_flush;
        echo 'data: {"id":"c9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":null}';
        echo;
        echo 'data: {"id":"c9","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42}}';
        echo;
        echo 'data: [DONE]';
        echo;
    }
_EOC_

our $OpenAIKey = "Authorization: Bearer $AIRelayTest::TEST_KEY";
our $GeminiKey = "x-goog-api-key: $AIRelayTest::TEST_KEY";
our $AnthropicKey = "x-api-key: $AIRelayTest::TEST_KEY\nanthropic-version: 2023-06-01";

# user 1 with $10, the test key, model $model on channel 1 of $provider at
# $path, served as $upstream, priced as the usage tests price
sub world {
    my ($model, $provider, $path, $upstream) = @_;
    AIRelayTest::reset_redis();
    AIRelayTest::seed_user(1, balance => 10_000_000);
    AIRelayTest::seed_key(1, $AIRelayTest::TEST_KEY, id => 1);
    AIRelayTest::seed_channel(1, provider => $provider,
        base_url => AIRelayTest::mock_url($path),
        map => { $model => $upstream });
    AIRelayTest::seed_model($model, channels => '1');
    AIRelayTest::seed_price($model, @AIRelayTest::PRICES);
}

# the last request the mock upstream got: method, URI, Authorization,
# x-api-key, anthropic-version, x-goog-api-key, body
sub upstream_got {
    my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
    AIRelayTest::wait_for(sub { -s "$root/logs/upstream.log" });
    open my $fh, '<', "$root/logs/upstream.log" or return '';
    my @lines = <$fh>;
    chomp(my $last = $lines[-1] // '');
    return $last;
}

# an OpenAI answer with its "created" stamps (the relay's clock) as \d+
sub with_created {
    my ($s) = @_;
    my $re = join '\d+', map { quotemeta } split /CREATED/, $s, -1;
    return qr/^$re\z/;
}

sub nothing_changed {
    Test::More::is(AIRelayTest::records(1), 0, 'no record');
    Test::More::is(AIRelayTest::user_field(1, 'balance'), 10_000_000,
                   'balance untouched');
    Test::More::is(AIRelayTest::redis('HLEN', 'ar:{u1}:res'), 0,
                   'no reservation');
}

# An upstream on $port that sends $first, then holds $rest until the
# client created $gate (it has the translation of $first), and writes to
# $result whether that happened before it gave up (10 s).  Order, not
# timing: a relay that held translated events back would leave the client
# without them while the upstream waits.
sub gated_upstream {
    my ($port, $gate, $result, $first, $rest) = @_;
    unlink $gate, $result;
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $port, Listen => 5,
                                    ReuseAddr => 1)
        or die "gated upstream on $port: $!\n";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid) {
        close $srv;
        return $pid;
    }
    local $SIG{ALRM} = sub { POSIX::_exit(0) };
    alarm 20;
    my $c = $srv->accept or POSIX::_exit(0);
    my $req = '';
    sysread($c, $req, 65536, length $req) while $req !~ /\r\n\r\n/;
    syswrite($c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 . "Connection: close\r\n\r\n$first");
    my $seen = 'held back';
    for (1 .. 1000) {
        if (-e $gate) { $seen = 'delivered'; last }
        select(undef, undef, undef, 0.01);
    }
    open my $fh, '>', $result or POSIX::_exit(1);
    print $fh $seen;
    close $fh;
    syswrite($c, $rest);
    close $c;
    POSIX::_exit(0);
}

# an OpenAI client's stream through an Anthropic channel that holds its
# second half until the client has the first text: (client's body, seen)
sub gated_translated_stream {
    my $port = AIRelayTest::free_port();
    my ($gate, $result) = ("/tmp/ai-relay-t022-$port.gate",
                           "/tmp/ai-relay-t022-$port.result");
    AIRelayTest::seed_channel(1, provider => 'anthropic',
        base_url => "http://127.0.0.1:$port",
        map => { 'claude-x' => 'claude-sonnet-4-5' });
    my $ev = sub { "event: $_[0]\ndata: $_[1]\n\n" };
    my $pid = gated_upstream($port, $gate, $result,
        $ev->('message_start', '{"type":"message_start","message":{"id":"msg_g","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":9,"output_tokens":1}}}')
        . $ev->('content_block_start', '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}')
        . $ev->('content_block_delta', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"now"}}'),
        $ev->('content_block_delta', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" later"}}')
        . $ev->('content_block_stop', '{"type":"content_block_stop","index":0}')
        . $ev->('message_delta', '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}')
        . $ev->('message_stop', '{"type":"message_stop"}'));
    my $body = '{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"hi"}]}';
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $AIRelayTest::SERVER_PORT)
        or die $!;
    print $s "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
             . "Connection: close\r\n$::OpenAIKey\r\nContent-Length: "
             . length($body) . "\r\n\r\n$body";
    my $buf = '';
    while (sysread($s, $buf, 4096, length $buf)) {
        if ($buf =~ /"content":"now"/ && !-e $gate) {
            open my $fh, '>', $gate or die "$gate: $!";
            close $fh;
        }
    }
    waitpid $pid, 0;
    open my $fh, '<', $result or die "no result from the upstream: $!";
    my $seen = <$fh>;
    unlink $gate, $result;
    return ($buf, $seen);
}

run_tests();

__DATA__

=== TEST 1: a base URL with a version in its path is the API root: Gemini's OpenAI endpoint
--- init
main::world('gem', 'openai', '/gem/v1beta/openai', 'gemini-2.5-flash');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gem","messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::OpenAIKey
--- response_body
{"id":"g1","object":"chat.completion","created":1,"model":"gemini-2.5-flash","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}
--- redis_check
is(main::upstream_got(), 'POST /gem/v1beta/openai/chat/completions|Bearer upstream-key-1||||{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}',
   'POST .../v1beta/openai/chat/completions, the body as sent (but the model)');
expect_bill(prompt => 4, completion => 1);
--- no_error_log
[error]



=== TEST 2: OpenAI client, Anthropic channel: the request becomes a message request, the answer a chat completion
--- init
main::world('claude-x', 'anthropic', '/mock/anth', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"claude-x","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"max_tokens":100,"temperature":0.2}
--- more_headers eval: $::OpenAIKey
--- response_body_like eval
main::with_created('{"id":"msg_1","object":"chat.completion","created":CREATED,"model":"claude-sonnet-4-5","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":60,"completion_tokens":5,"total_tokens":65,"prompt_tokens_details":{"cached_tokens":30}}}')
--- response_headers
Content-Type: application/json
Content-Length: 301
--- redis_check
is(main::upstream_got(), 'POST /mock/anth/v1/messages||upstream-key-1|2023-06-01||{"model":"claude-sonnet-4-5","system":[{"type":"text","text":"Be brief."}],"messages":[{"role":"user","content":"Hi"}],"max_tokens":100,"temperature":0.2}',
   'the upstream got a messages request with its key and version');
expect_bill(prompt => 60, cached => 30, cw5m => 20, completion => 5);
--- no_error_log
[error]



=== TEST 3: OpenAI client, Anthropic channel, a stream with a tool call and the usage chunk it asked for
--- init
main::world('claude-x', 'anthropic', '/mock/anth-sse', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"claude-x","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}
--- more_headers eval: $::OpenAIKey
--- response_body_like eval
main::with_created(CORE::join '', map { "data: $_\n\n" }
'{"id":"msg_2","object":"chat.completion.chunk","created":CREATED,"model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
'{"id":"msg_2","object":"chat.completion.chunk","created":CREATED,"model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{"content":"Let me see."},"finish_reason":null}]}',
'{"id":"msg_2","object":"chat.completion.chunk","created":CREATED,"model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}',
'{"id":"msg_2","object":"chat.completion.chunk","created":CREATED,"model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}',
'{"id":"msg_2","object":"chat.completion.chunk","created":CREATED,"model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}',
'{"id":"msg_2","object":"chat.completion.chunk","created":CREATED,"model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}',
'{"id":"msg_2","object":"chat.completion.chunk","created":CREATED,"model":"claude-sonnet-4-5","choices":[],"usage":{"prompt_tokens":60,"completion_tokens":7,"total_tokens":67,"prompt_tokens_details":{"cached_tokens":30}}}',
'[DONE]')
--- response_headers
Content-Type: text/event-stream
--- redis_check
is(main::upstream_got(), 'POST /mock/anth-sse/v1/messages||upstream-key-1|2023-06-01||{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Weather?"}],"max_tokens":4096,"stream":true,"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]}',
   'max_tokens from ai_relay_default_max_tokens, tools as Anthropic has them');
expect_bill(prompt => 60, cached => 30, cw5m => 20, completion => 7);
--- no_error_log
[error]



=== TEST 4: the same stream for a client that did not ask for usage: no usage chunk, billed from the upstream's usage all the same
--- init
main::world('claude-x', 'anthropic', '/mock/anth-sse', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"Weather?"}],"max_tokens":50}
--- more_headers eval: $::OpenAIKey
--- response_body_like eval
qr/"finish_reason":"tool_calls"\}\]\}\n\ndata: \[DONE\]\n\n\z/
--- response_body_unlike: usage
--- redis_check
expect_bill(prompt => 60, cached => 30, cw5m => 20, completion => 7);
--- no_error_log
[error]



=== TEST 5: what Anthropic cannot do is refused in OpenAI's shape, before any money is held
--- init
main::world('claude-x', 'anthropic', '/mock/anth', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"claude-x","messages":[{"role":"user","content":"Hi"}],"n":3}
--- more_headers eval: $::OpenAIKey
--- error_code: 400
--- response_body_like: ^\{"error":\{"message":"n other than 1 cannot be sent to this model's channel \(Anthropic\)","type":"invalid_request_error","param":null,"code":"unsupported_parameter"\}\}$
--- redis_check
main::nothing_changed();
--- no_error_log
[error]



=== TEST 6: an upstream error reaches the client in its own API's shape, with its status
--- init
main::world('claude-x', 'anthropic', '/mock/anth-bad', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"claude-x","messages":[{"role":"user","content":"Hi"}]}
--- more_headers eval: $::OpenAIKey
--- error_code: 400
--- response_body chomp
{"error":{"type":"invalid_request_error","param":null,"code":null,"message":"messages: roles must alternate"}}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
is(last_record(1)->{cost}, 0, 'an error costs nothing');
is(user_field(1, 'balance'), 10_000_000, 'balance untouched');
--- no_error_log
[error]



=== TEST 7: Anthropic client (Claude Code), OpenAI-compatible channel: a chat completion request, a message answer
--- init
main::world('gpt-x', 'openai', '/mock/oai', 'gpt-4o');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages?beta=true
{"model":"gpt-x","max_tokens":256,"system":"Be brief.","messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],"stop_sequences":["##"]}
--- more_headers eval: $::AnthropicKey
--- response_body chomp
{"id":"chatcmpl-7","type":"message","role":"assistant","model":"gpt-4o","content":[{"type":"text","text":"Hello"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":40,"output_tokens":8}}
--- redis_check
is(main::upstream_got(), 'POST /mock/oai/v1/chat/completions|Bearer upstream-key-1||2023-06-01||{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_tokens":256,"stop":["##"]}',
   'the upstream got a chat completion request with its key, no query string');
expect_bill(prompt => 50, cached => 40, completion => 8);
--- no_error_log
[error]



=== TEST 8: Anthropic client, OpenAI-compatible channel, a stream with a tool call: Anthropic's events, usage included
--- init
main::world('gpt-x', 'openai', '/mock/oai-sse', 'gpt-4o');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"gpt-x","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object"}}]}
--- more_headers eval: $::AnthropicKey
--- response_body eval
CORE::join '', map { "event: $_->[0]\ndata: $_->[1]\n\n" }
['message_start', '{"type":"message_start","message":{"id":"c9","type":"message","role":"assistant","model":"gpt-4o","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}'],
['content_block_start', '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'],
['content_block_delta', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me see."}}'],
['content_block_stop', '{"type":"content_block_stop","index":0}'],
['content_block_start', '{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"call_1","name":"get_weather","input":{}}}'],
['content_block_delta', '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":\"Paris\"}"}}'],
['content_block_stop', '{"type":"content_block_stop","index":1}'],
['message_delta', '{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":30,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":12}}'],
['message_stop', '{"type":"message_stop"}']
--- redis_check
is(main::upstream_got(), 'POST /mock/oai-sse/v1/chat/completions|Bearer upstream-key-1||2023-06-01||{"model":"gpt-4o","messages":[{"role":"user","content":"Weather in Paris?"}],"max_tokens":256,"stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object"}}}]}',
   'the upstream was asked for its usage');
expect_bill(prompt => 30, completion => 12);
--- no_error_log
[error]



=== TEST 9: an OpenAI upstream's error, in Anthropic's shape for an Anthropic client
--- init
main::world('gpt-x', 'openai', '/mock/oai-bad', 'gpt-4o');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"gpt-x","max_tokens":256,"messages":[{"role":"user","content":"Hi"}]}
--- more_headers eval: $::AnthropicKey
--- error_code: 400
--- response_body chomp
{"type":"error","error":{"type":"invalid_request_error","message":"Invalid schema for function get_weather."}}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
is(last_record(1)->{cost}, 0, 'an error costs nothing');
is(user_field(1, 'balance'), 10_000_000, 'balance untouched');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'reservation released');
--- no_error_log
[error]



=== TEST 10: what an OpenAI-compatible channel cannot do is refused in Anthropic's shape, nothing changed
--- init
main::world('gpt-x', 'openai', '/mock/oai', 'gpt-4o');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"gpt-x","max_tokens":256,"top_k":5,"messages":[{"role":"user","content":"Hi"}]}
--- more_headers eval: $::AnthropicKey
--- error_code: 400
--- response_body_like: ^\{"type":"error","error":\{"type":"invalid_request_error","message":"top_k cannot be sent to this model's channel \(OpenAI\)"\}\}$
--- redis_check
main::nothing_changed();
--- no_error_log
[error]



=== TEST 11: OpenAI client, Gemini channel: generateContent with the model in the path, a chat completion back
--- init
main::world('gem', 'gemini', '/mock/gem', 'gemini-2.5-flash');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gem","messages":[{"role":"system","content":"Answer in French."},{"role":"user","content":"Hello"}],"max_completion_tokens":64}
--- more_headers eval: $::OpenAIKey
--- response_body_like eval
main::with_created('{"id":"rsp-1","object":"chat.completion","created":CREATED,"model":"gemini-2.5-flash","choices":[{"index":0,"message":{"role":"assistant","content":"Bonjour"},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":11,"total_tokens":31,"prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":8}}}')
--- redis_check
is(main::upstream_got(), 'POST /mock/gem/v1beta/models/gemini-2.5-flash:generateContent||||upstream-key-1|{"systemInstruction":{"parts":[{"text":"Answer in French."}]},"contents":[{"role":"user","parts":[{"text":"Hello"}]}],"generationConfig":{"maxOutputTokens":64}}',
   'the upstream got a generateContent request');
expect_bill(prompt => 20, cached => 8, completion => 11, reasoning => 8);
--- no_error_log
[error]



=== TEST 12: OpenAI client, Gemini channel, a stream with a function call and the usage chunk asked for
--- init
main::world('gem', 'gemini', '/mock/gem-sse', 'gemini-2.5-flash');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gem","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"tool_choice":"auto"}
--- more_headers eval: $::OpenAIKey
--- response_body_like eval
main::with_created(CORE::join '', map { "data: $_\n\n" }
'{"id":"rsp-2","object":"chat.completion.chunk","created":CREATED,"model":"gemini-2.5-flash","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
'{"id":"rsp-2","object":"chat.completion.chunk","created":CREATED,"model":"gemini-2.5-flash","choices":[{"index":0,"delta":{"content":"Checking."},"finish_reason":null}]}',
'{"id":"rsp-2","object":"chat.completion.chunk","created":CREATED,"model":"gemini-2.5-flash","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_0_get_weather","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":null}]}',
'{"id":"rsp-2","object":"chat.completion.chunk","created":CREATED,"model":"gemini-2.5-flash","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}',
'{"id":"rsp-2","object":"chat.completion.chunk","created":CREATED,"model":"gemini-2.5-flash","choices":[],"usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}',
'[DONE]')
--- redis_check
is(main::upstream_got(), 'POST /mock/gem-sse/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse||||upstream-key-1|{"contents":[{"role":"user","parts":[{"text":"Weather?"}]}],"generationConfig":{"maxOutputTokens":4096},"tools":[{"functionDeclarations":[{"name":"get_weather","parametersJsonSchema":{"type":"object"}}]}],"toolConfig":{"functionCallingConfig":{"mode":"AUTO"}}}',
   'the upstream got a streamGenerateContent?alt=sse request');
expect_bill(prompt => 40, completion => 9);
--- no_error_log
[error]



=== TEST 13: a Gemini error, in OpenAI's shape with its status
--- init
main::world('gem', 'gemini', '/mock/gem-bad', 'gemini-2.5-flash');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gem","messages":[{"role":"user","content":"Hello"}]}
--- more_headers eval: $::OpenAIKey
--- error_code: 400
--- response_body chomp
{"error":{"type":"INVALID_ARGUMENT","param":null,"code":null,"message":"Invalid JSON payload received."}}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
is(last_record(1)->{cost}, 0, 'an error costs nothing');
is(user_field(1, 'balance'), 10_000_000, 'balance untouched');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'reservation released');
--- no_error_log
[error]



=== TEST 14: Gemini client, OpenAI-compatible channel: generateContent becomes a chat completion and back
--- init
main::world('gpt-x', 'openai', '/mock/oai', 'gpt-4o');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/gpt-x:generateContent
{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],"systemInstruction":{"parts":[{"text":"Be brief."}]},"generationConfig":{"maxOutputTokens":256}}
--- more_headers eval: $::GeminiKey
--- response_body chomp
{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello"}]},"finishReason":"MAX_TOKENS","index":0}],"usageMetadata":{"promptTokenCount":50,"candidatesTokenCount":8,"totalTokenCount":58,"cachedContentTokenCount":40,"thoughtsTokenCount":0},"modelVersion":"gpt-4o","responseId":"chatcmpl-7"}
--- redis_check
is(main::upstream_got(), 'POST /mock/oai/v1/chat/completions|Bearer upstream-key-1||||{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_tokens":256}',
   'the upstream got a chat completion request, the client key not');
expect_bill(prompt => 50, cached => 40, completion => 8);
--- no_error_log
[error]



=== TEST 15: Gemini client, OpenAI-compatible channel, streamGenerateContent with a function call
--- init
main::world('gpt-x', 'openai', '/mock/oai-sse', 'gpt-4o');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/gpt-x:streamGenerateContent?alt=sse
{"contents":[{"role":"user","parts":[{"text":"Weather in Paris?"}]}],"tools":[{"functionDeclarations":[{"name":"get_weather","parameters":{"type":"object"}}]}]}
--- more_headers eval: $::GeminiKey
--- response_body eval
'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Let me see."}]},"index":0}],"modelVersion":"gpt-4o","responseId":"c9"}' . "\n\n"
. 'data: {"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"id":"call_1","name":"get_weather","args":{"city":"Paris"}}}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":30,"candidatesTokenCount":12,"totalTokenCount":42,"cachedContentTokenCount":0,"thoughtsTokenCount":0},"modelVersion":"gpt-4o","responseId":"c9"}' . "\n\n"
--- redis_check
is(main::upstream_got(), 'POST /mock/oai-sse/v1/chat/completions|Bearer upstream-key-1||||{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"Weather in Paris?"}]}],"stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}',
   'a stream with its usage, asked for in the path');
expect_bill(prompt => 30, completion => 12);
--- no_error_log
[error]



=== TEST 16: an OpenAI upstream's error, in Gemini's shape for a Gemini client
--- init
main::world('gpt-x', 'openai', '/mock/oai-bad', 'gpt-4o');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/gpt-x:generateContent
{"contents":[{"parts":[{"text":"Hi"}]}]}
--- more_headers eval: $::GeminiKey
--- error_code: 400
--- response_body chomp
{"error":{"code":400,"message":"Invalid schema for function get_weather.","status":"INVALID_ARGUMENT"}}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
is(last_record(1)->{cost}, 0, 'an error costs nothing');
is(user_field(1, 'balance'), 10_000_000, 'balance untouched');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'reservation released');
--- no_error_log
[error]



=== TEST 17: a translated stream leaves event by event: the first text is not held back until the upstream's next event
--- init
main::world('claude-x', 'anthropic', '/mock/anth-sse', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::OpenAIKey
--- redis_check
my ($buf, $seen) = main::gated_translated_stream();
is($seen, 'delivered', 'the client had "now" while the upstream held " later"');
like($buf, qr/"content":" later".*"finish_reason":"stop".*data: \[DONE\]\n\n/s, 'and the rest followed');
expect_bill(prompt => 9, completion => 2);



=== TEST 18: failover from an OpenAI channel that fails to an Anthropic one: the second attempt is translated, its answer too
--- init
main::world('claude-x', 'openai', '/mock/down', 'gpt-4o');
AIRelayTest::seed_channel(1, provider => 'openai', priority => 10,
    base_url => AIRelayTest::mock_url('/mock/down'));
AIRelayTest::seed_channel(2, provider => 'anthropic', priority => 0,
    base_url => AIRelayTest::mock_url('/mock/anth'),
    map => { 'claude-x' => 'claude-sonnet-4-5' });
AIRelayTest::seed_model('claude-x', channels => '1,2');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"claude-x","messages":[{"role":"user","content":"Hi"}],"max_tokens":20}
--- more_headers eval: $::OpenAIKey
--- response_body_like eval
main::with_created('{"id":"msg_1","object":"chat.completion","created":CREATED,"model":"claude-sonnet-4-5","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":60,"completion_tokens":5,"total_tokens":65,"prompt_tokens_details":{"cached_tokens":30}}}')
--- redis_check
my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
wait_for(sub { my @l = do { open my $f, '<', "$root/logs/upstream.log"; <$f> }; @l >= 2 });
open my $fh, '<', "$root/logs/upstream.log";
my @lines = <$fh>;
chomp @lines;
is($lines[0], 'POST /mock/down/v1/chat/completions|Bearer upstream-key-1||||{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"max_tokens":20}',
   'the first attempt as the client sent it, but the model');
is($lines[1], 'POST /mock/anth/v1/messages||upstream-key-2|2023-06-01||{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}],"max_tokens":20}',
   'the second translated, with its own key and version');
my $r = expect_bill(prompt => 60, cached => 30, cw5m => 20, completion => 5);
is($r->{tries}, 2, 'two attempts');



=== TEST 19: a whole answer larger than ai_relay_response_max cannot be translated: a 502 in the client's shape, not billed
--- init
main::world('claude-x', 'anthropic', '/mock/anth', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval
my $c = $::Config;
$c =~ s/ai_relay openai;/ai_relay openai;\n        ai_relay_response_max 100;/;
$c
--- request
POST /v1/chat/completions
{"model":"claude-x","messages":[{"role":"user","content":"Hi"}],"max_tokens":20}
--- more_headers eval: $::OpenAIKey
--- error_code: 502
--- response_body
{"error":{"message":"The upstream's answer could not be translated to this API's format.","type":"server_error","param":null,"code":"bad_gateway"}}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{usage_source}, 'none', 'no usage billed: the client got no answer');
is($r->{cost}, 0, 'costs nothing');
is(user_field(1, 'balance'), 10_000_000, 'balance untouched');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'reservation released');
is($r->{status}, '502', 'recorded as the client saw it');
--- error_log
could not be translated (larger than ai_relay_response_max)



=== TEST 20: Anthropic client, Gemini channel (by way of OpenAI's format): generateContent, and a message back
--- init
main::world('gem', 'gemini', '/mock/gem', 'gemini-2.5-flash');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"gem","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}
--- more_headers eval: $::AnthropicKey
--- response_body chomp
{"id":"rsp-1","type":"message","role":"assistant","model":"gemini-2.5-flash","content":[{"type":"text","text":"Bonjour"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":8,"output_tokens":11}}
--- redis_check
is(main::upstream_got(), 'POST /mock/gem/v1beta/models/gemini-2.5-flash:generateContent|||2023-06-01|upstream-key-1|{"contents":[{"role":"user","parts":[{"text":"Hello"}]}],"generationConfig":{"maxOutputTokens":64}}',
   'the upstream got a generateContent request');
expect_bill(prompt => 20, cached => 8, completion => 11, reasoning => 8);
--- no_error_log
[error]



=== TEST 21: Gemini client, Anthropic channel (by way of OpenAI's format), a stream with a function call
--- init
main::world('claude-x', 'anthropic', '/mock/anth-sse', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/claude-x:streamGenerateContent?alt=sse
{"contents":[{"role":"user","parts":[{"text":"Weather?"}]}],"tools":[{"functionDeclarations":[{"name":"get_weather","parameters":{"type":"object"}}]}]}
--- more_headers eval: $::GeminiKey
--- response_body eval
'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Let me see."}]},"index":0}],"modelVersion":"claude-sonnet-4-5","responseId":"msg_2"}' . "\n\n"
. 'data: {"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"id":"toolu_1","name":"get_weather","args":{"city":"Paris"}}}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":60,"candidatesTokenCount":7,"totalTokenCount":67,"cachedContentTokenCount":30,"thoughtsTokenCount":0},"modelVersion":"claude-sonnet-4-5","responseId":"msg_2"}' . "\n\n"
--- redis_check
is(main::upstream_got(), 'POST /mock/anth-sse/v1/messages||upstream-key-1|2023-06-01||{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[{"type":"text","text":"Weather?"}]}],"max_tokens":4096,"stream":true,"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}',
   'the upstream got a messages stream request');
expect_bill(prompt => 60, cached => 30, cw5m => 20, completion => 7);
--- no_error_log
[error]



=== TEST 22: the reservation covers the max_tokens sent upstream: max_completion_tokens, not the smaller max_tokens beside it
--- init
main::world('claude-x', 'anthropic', '/mock/anth', 'claude-sonnet-4-5');
AIRelayTest::seed_user(1, balance => 50_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"claude-x","messages":[{"role":"user","content":"Hi"}],"max_tokens":16,"max_completion_tokens":32000}
--- more_headers eval: $::OpenAIKey
--- error_code: 402
--- response_body_like: it reserves up to 128\d\d\d micro-USD
--- redis_check
is(AIRelayTest::user_field(1, 'balance'), 50_000, 'balance untouched');
is(AIRelayTest::redis('HLEN', 'ar:{u1}:res'), 0, 'nothing reserved');
is(AIRelayTest::records(1), 0, 'no record');
--- no_error_log
[error]



=== TEST 23: the reservation covers Anthropic's thinking budget added to the default max_tokens
--- init
main::world('claude-x', 'anthropic', '/mock/anth', 'claude-sonnet-4-5');
AIRelayTest::seed_user(1, balance => 50_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"claude-x","messages":[{"role":"user","content":"Hi"}],"reasoning_effort":"high"}
--- more_headers eval: $::OpenAIKey
--- error_code: 402
--- response_body_like: it reserves up to 819\d\d micro-USD
--- redis_check
is(AIRelayTest::user_field(1, 'balance'), 50_000, 'balance untouched');
is(AIRelayTest::redis('HLEN', 'ar:{u1}:res'), 0, 'nothing reserved');
is(AIRelayTest::records(1), 0, 'no record');
--- no_error_log
[error]



=== TEST 24: Gemini gets maxOutputTokens equal to what is reserved: the default plus the thinking budget
--- init
main::world('gem', 'gemini', '/mock/gem', 'gemini-2.5-flash');
AIRelayTest::seed_user(1, balance => 50_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gem","messages":[{"role":"user","content":"Hi"}],"reasoning_effort":"high"}
--- more_headers eval: $::OpenAIKey
--- error_code: 402
--- response_body_like: it reserves up to 819\d\d micro-USD
--- redis_check
is(AIRelayTest::user_field(1, 'balance'), 50_000, 'balance untouched');
is(AIRelayTest::redis('HLEN', 'ar:{u1}:res'), 0, 'nothing reserved');
is(AIRelayTest::records(1), 0, 'no record');
--- no_error_log
[error]



=== TEST 25: ...and with the money for it, Gemini is asked for at most that many tokens
--- init
main::world('gem', 'gemini', '/mock/gem', 'gemini-2.5-flash');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gem","messages":[{"role":"user","content":"Hi"}],"reasoning_effort":"high"}
--- more_headers eval: $::OpenAIKey
--- error_code: 200
--- redis_check
is(main::upstream_got(), 'POST /mock/gem/v1beta/models/gemini-2.5-flash:generateContent||||upstream-key-1|{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],"generationConfig":{"maxOutputTokens":20480,"thinkingConfig":{"thinkingBudget":16384,"includeThoughts":true}}}',
   'maxOutputTokens: 4096 + 16384');
expect_bill(prompt => 20, cached => 8, completion => 11, reasoning => 8);
--- no_error_log
[error]



=== TEST 26: a model with an Anthropic and an OpenAI channel: what Anthropic cannot express (n:2) goes to the OpenAI channel, untranslated
--- init
main::world('mix', 'anthropic', '/mock/anth', 'claude-sonnet-4-5');
AIRelayTest::seed_channel(1, provider => 'anthropic', priority => 10,
    base_url => AIRelayTest::mock_url('/mock/anth'),
    map => { mix => 'claude-sonnet-4-5' });
AIRelayTest::seed_channel(2, provider => 'openai',
    base_url => AIRelayTest::mock_url('/mock/oai'),
    map => { mix => 'gpt-4o' });
AIRelayTest::seed_model('mix', channels => '1,2');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"mix","messages":[{"role":"user","content":"Hi"}],"n":2}
--- more_headers eval: $::OpenAIKey
--- error_code: 200
--- response_body_like: "model":"gpt-4o"
--- redis_check
is(main::upstream_got(), 'POST /mock/oai/v1/chat/completions|Bearer upstream-key-2||||{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"n":2}',
   'the OpenAI channel got the body as it is');
expect_bill(prompt => 50, cached => 40, completion => 8);
--- error_log
cannot be translated for channel 1, left out
--- no_error_log
[error]



=== TEST 27: ai_relay_response_model client on translated answers: the client's model name, whole and streamed
--- init
main::world('claude-x', 'anthropic', '/mock/anth', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval
my $c = $::Config;
$c =~ s/ai_relay openai;/ai_relay openai;\n        ai_relay_response_model client;/;
$c
--- request
POST /v1/chat/completions
{"model":"claude-x","messages":[{"role":"user","content":"Hi"}],"max_tokens":20}
--- more_headers eval: $::OpenAIKey
--- response_body_like: ^\{"id":"msg_1","object":"chat.completion","created":\d+,"model":"claude-x","choices"
--- redis_check
expect_bill(prompt => 60, cached => 30, cw5m => 20, completion => 5);
--- no_error_log
[error]



=== TEST 28: ai_relay_response_model client on a translated stream: every chunk names the client's model
--- init
main::world('claude-x', 'anthropic', '/mock/anth-sse', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval
my $c = $::Config;
$c =~ s/ai_relay openai;/ai_relay openai;\n        ai_relay_response_model client;/;
$c
--- request
POST /v1/chat/completions
{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"Hi"}],"max_tokens":20}
--- more_headers eval: $::OpenAIKey
--- response_body_like: \A(?:data: \{[^\n]*"model":"claude-x"[^\n]*\}\n\n)+data: \[DONE\]\n\n\z
--- redis_check
expect_bill(prompt => 60, cached => 30, cw5m => 20, completion => 7);
--- no_error_log
[error]



=== TEST 29: an openai-compatible channel takes an Anthropic client's request as it is (a relay of relays): no translation
--- init
main::world('compat', 'openai-compatible', '/mock/anth', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"compat","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}
--- more_headers eval: $::AnthropicKey
--- response_body
{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":5}}
--- redis_check
like(main::upstream_got(), qr{^POST /mock/anth/v1/messages\|.*\|\{"model":"claude-sonnet-4-5","max_tokens":64,"messages":\[\{"role":"user","content":"Hello"\}\]\}$},
   'the channel got the Anthropic request, only its model renamed');
expect_bill(prompt => 60, cached => 30, cw5m => 20, completion => 5);
--- no_error_log
[error]



=== TEST 30: a compressed answer cannot be translated: a 502 in the client's shape, not billed
--- init
main::world('claude-x', 'anthropic', '/mock/anth-gz', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"claude-x","messages":[{"role":"user","content":"Hi"}],"max_tokens":20}
--- more_headers eval: $::OpenAIKey
--- error_code: 502
--- response_headers
Content-Encoding:
--- response_body
{"error":{"message":"The upstream's answer could not be translated to this API's format.","type":"server_error","param":null,"code":"bad_gateway"}}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{cost}, 0, 'costs nothing');
is($r->{status}, '502', 'recorded as the client saw it');
is(user_field(1, 'balance'), 10_000_000, 'balance untouched');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'reservation released');
--- error_log
is compressed ("gzip") and cannot be translated



=== TEST 31: Gemini's streamGenerateContent without alt=sse (a JSON array) is not translated: a 400 in Gemini's shape, nothing changed
--- init
main::world('gpt-x', 'openai', '/mock/oai-sse', 'gpt-4o');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1beta/models/gpt-x:streamGenerateContent
{"contents":[{"parts":[{"text":"Hi"}]}]}
--- more_headers eval: $::GeminiKey
--- error_code: 400
--- response_body_like: ^\{"error":\{"code":400,"message":"streamGenerateContent without alt=sse \(a JSON array\) cannot be sent to this model's channel; ask for alt=sse","status":"INVALID_ARGUMENT"\}\}$
--- redis_check
main::nothing_changed();
--- no_error_log
[error]



=== TEST 32: a translated stream whose event is larger than ai_relay_sse_max_event ends with an error event in the client's shape, and is still billed from what the upstream said
--- init
main::world('claude-x', 'anthropic', '/mock/anth-sse', 'claude-sonnet-4-5');
--- http_config eval: $::HttpConfig
--- config eval
my $c = $::Config;
$c =~ s/ai_relay openai;/ai_relay openai;\n        ai_relay_sse_max_event 200;/;
$c
--- request
POST /v1/chat/completions
{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"Hi"}],"max_tokens":20}
--- more_headers eval: $::OpenAIKey
--- response_body eval
'data: {"error":{"message":"The upstream\'s stream could not be translated to this API\'s format.","type":"server_error","param":null,"code":"bad_gateway"}}' . "\n\n"
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'reservation settled');
--- error_log
larger than ai_relay_sse_max_event cannot be translated



=== TEST 33: Anthropic client with extended thinking, OpenAI channel: a reasoning model's request, max_completion_tokens rather than max_tokens
--- init
main::world('gpt-x', 'openai', '/mock/oai', 'o3');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/messages
{"model":"gpt-x","max_tokens":2048,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"Hi"}]}
--- more_headers eval: $::AnthropicKey
--- error_code: 200
--- redis_check
is(main::upstream_got(), 'POST /mock/oai/v1/chat/completions|Bearer upstream-key-1||2023-06-01||{"model":"o3","messages":[{"role":"user","content":"Hi"}],"max_completion_tokens":2048,"reasoning_effort":"low"}',
   'the upstream got max_completion_tokens and reasoning_effort');
expect_bill(prompt => 50, cached => 40, completion => 8);
--- no_error_log
[error]



=== TEST 34: OpenAI client, Gemini channel: a function call's thoughtSignature rides in the tool call id
--- init
main::world('gem', 'gemini', '/mock/gem-sig', 'gemini-3-pro-preview');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gem","messages":[{"role":"user","content":"Weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"max_completion_tokens":64}
--- more_headers eval: $::OpenAIKey
--- response_body_like eval
main::with_created('{"id":"rsp-5","object":"chat.completion","created":CREATED,"model":"gemini-3-pro-preview","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_0_get_weather__tsig_Cg4-Ab_z_Q","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":30,"completion_tokens":5,"total_tokens":35,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}')
--- redis_check
expect_bill(prompt => 30, completion => 5);
--- no_error_log
[error]



=== TEST 35: ...and the call sent back with that id reaches Gemini with its thoughtSignature on the part, its response named
--- init
main::world('gem', 'gemini', '/mock/gem', 'gemini-3-pro-preview');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gem","messages":[{"role":"user","content":"Weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_0_get_weather__tsig_Cg4-Ab_z_Q","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_0_get_weather__tsig_Cg4-Ab_z_Q","content":"sunny"}],"max_completion_tokens":64}
--- more_headers eval: $::OpenAIKey
--- error_code: 200
--- redis_check
is(main::upstream_got(), 'POST /mock/gem/v1beta/models/gemini-3-pro-preview:generateContent||||upstream-key-1|{"contents":[{"role":"user","parts":[{"text":"Weather?"}]},{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"Cg4+Ab/z/Q=="}]},{"role":"user","parts":[{"functionResponse":{"name":"get_weather","response":{"content":"sunny"}}}]}],"generationConfig":{"maxOutputTokens":64}}',
   'the upstream got the signature back on the call\'s part');
expect_bill(prompt => 20, cached => 8, completion => 11, reasoning => 8);
--- no_error_log
[error]
