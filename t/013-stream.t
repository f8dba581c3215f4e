# Streams stay streams: every event reaches the client when the upstream
# sends it, whether the relay observes or leaves out its usage chunk.
# And the access log carries what a support desk needs.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config(extra => <<'_EOC_');
    log_format relay escape=json '$request_id $status key=$ai_relay_key key_id=$ai_relay_key_id '
                     'user=$ai_relay_user model=$ai_relay_model '
                     'upstream_model=$ai_relay_upstream_model '
                     'channel=$ai_relay_channel stream=$ai_relay_stream '
                     'prompt=$ai_relay_prompt_tokens '
                     'completion=$ai_relay_completion_tokens '
                     'cached=$ai_relay_cached_tokens '
                     'reasoning=$ai_relay_reasoning_tokens '
                     'cost=$ai_relay_cost usage=$ai_relay_usage_source '
                     'ttft=$ai_relay_ttft error="$ai_relay_error"';
_EOC_
our $Config = relay_config(extra => <<'_EOC_');
    access_log logs/relay.log relay;

    location /mock/slow/ {
        echo_read_request_body;
        default_type text/event-stream;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"now"}}],"usage":null}';
        echo;
        echo_flush;
        echo_sleep 1;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" later"}}],"usage":null}';
        echo;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}';
        echo;
        echo 'data: [DONE]';
        echo;
    }
_EOC_
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";

# send a streamed request, return the seconds at which each event arrived
sub event_times {
    my ($body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $AIRelayTest::SERVER_PORT)
        or die $!;
    my $t0 = Time::HiRes::time();
    print $s "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
             . "Connection: close\r\n$::Key\r\nContent-Length: "
             . length($body) . "\r\n\r\n$body";
    my ($buf, @at) = ('');
    my $seen = 0;
    while (sysread($s, $buf, 4096, length $buf)) {
        my $n = () = $buf =~ /data: /g;
        push @at, Time::HiRes::time() - $t0 while @at < $n;
    }
    return @at;
}

run_tests();

__DATA__

=== TEST 1: observed stream: the first event is not held back until the second
--- init
AIRelayTest::seed_world(mock => '/mock/slow');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- redis_check
my @at = main::event_times('{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}');
is(scalar @at, 4, 'four events');
ok($at[0] < 0.5, sprintf('first event after %.3f s', $at[0]));
ok($at[1] > 0.9, sprintf('second after %.3f s, when the upstream sent it', $at[1]));



=== TEST 2: the relay's own usage chunk left out: still event by event
--- init
AIRelayTest::seed_world(mock => '/mock/slow');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- redis_check
my @at = main::event_times('{"model":"gpt-4o-mini","stream":true}');
is(scalar @at, 3, 'three events: the usage chunk is not for this client');
ok($at[0] < 0.5, sprintf('first event after %.3f s', $at[0]));
ok($at[1] > 0.9, sprintf('second after %.3f s', $at[1]));



=== TEST 3: even with proxy_buffering on, a stream is not held back
--- init
AIRelayTest::seed_world(mock => '/mock/slow');
--- http_config eval: $::HttpConfig
--- config eval
my $c = $::Config;
$c =~ s/proxy_buffering off;/proxy_buffering on;/g;
$c
--- request
GET /v1/models
--- more_headers eval: $::Key
--- redis_check
my @at = main::event_times('{"model":"gpt-4o-mini","stream":true}');
is(scalar @at, 3, 'three events');
ok($at[0] < 0.5, sprintf('first event after %.3f s', $at[0]));
ok($at[1] > 0.9, sprintf('second after %.3f s', $at[1]));



=== TEST 4: the access log line of a relayed stream
--- init
AIRelayTest::seed_world(mock => '/mock/sse');
AIRelayTest::seed_alias('fast', 'gpt-4o-mini');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"fast","stream":true}
--- more_headers eval: $::Key
--- response_body_like: \[DONE\]
--- redis_check
my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
my $line;
ok(wait_for(sub {
    open my $fh, '<', "$root/logs/relay.log" or return 0;
    ($line) = grep { /model=fast/ } <$fh>;
    defined $line;
}), 'logged');
like($line, qr/^[0-9a-f]{32} 200 key=sk-te\xe2\x80\xa60001 key_id=1 user=1 model=fast upstream_model=gpt-4o-mini channel=1 stream=1 prompt=12 completion=2 cached=0 reasoning=0 cost=3 usage=upstream ttft=\d+ error=""$/, "every field");
unlike($line, qr/sk-test0000/, 'no plaintext key');
my ($id) = $line =~ /^([0-9a-f]{32}) /;
ok(wait_for(sub { records(1) == 1 }), 'settled');
is(last_record(1)->{request_id}, $id, 'the record has the request id of the log line');
