# Streams stay streams: every event reaches the client when the upstream
# sends it, whether the relay observes or leaves out its usage chunk.
# And the access log carries what a support desk needs.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;
use Time::HiRes ();
use POSIX ();

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 16;
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

# An upstream that sends the first event, then holds the rest until the
# client has that first event (the client creates $gate when it has it),
# and writes to $result whether that happened before it gave up (10 s).
# Order, not timing: a relay that held the first event back would leave
# the client without it while the upstream waits.
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
        Time::HiRes::sleep(0.01);
    }
    open my $fh, '>', $result or POSIX::_exit(1);
    print $fh $seen;
    close $fh;
    syswrite($c, $rest);
    close $c;
    POSIX::_exit(0);
}

# stream a request; create $gate once the first event arrived; the
# number of events the client got in the end
sub stream_through {
    my ($body, $gate) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $AIRelayTest::SERVER_PORT)
        or die $!;
    print $s "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
             . "Connection: close\r\n$::Key\r\nContent-Length: "
             . length($body) . "\r\n\r\n$body";
    my $buf = '';
    while (sysread($s, $buf, 4096, length $buf)) {
        if ($buf =~ /data: / && !-e $gate) {
            open my $fh, '>', $gate or die "$gate: $!";
            close $fh;
        }
    }
    return scalar(() = $buf =~ /data: /g);
}

# one block's run: the gated upstream as channel 1, a stream through it
sub gated_stream {
    my ($name, $body) = @_;
    my $port = AIRelayTest::free_port();
    my ($gate, $result) = ("/tmp/ai-relay-t013-$name.gate",
                           "/tmp/ai-relay-t013-$name.result");
    AIRelayTest::seed_world(channel => { base_url => "http://127.0.0.1:$port" });
    my $pid = gated_upstream($port, $gate, $result,
        qq{data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"now"}}],"usage":null}\n\n},
        qq{data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" later"}}],"usage":null}\n\n}
        . qq{data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}\n\n}
        . qq{data: [DONE]\n\n});
    my $events = stream_through($body, $gate);
    waitpid $pid, 0;
    open my $fh, '<', $result or die "no result from the upstream: $!";
    my $seen = <$fh>;
    unlink $gate, $result;
    return ($events, $seen);
}

run_tests();

__DATA__

=== TEST 1: observed stream: the first event is not held back until the second
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- redis_check
my ($events, $seen) = main::gated_stream('observed', '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}');
is($events, 4, 'four events');
is($seen, 'delivered', 'the first event reached the client while the upstream held the second');



=== TEST 2: the relay's own usage chunk left out: still event by event
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- redis_check
my ($events, $seen) = main::gated_stream('hidden-usage', '{"model":"gpt-4o-mini","stream":true}');
is($events, 3, 'three events: the usage chunk is not for this client');
is($seen, 'delivered', 'the first event reached the client while the upstream held the second');



=== TEST 3: even with proxy_buffering on, a stream is not held back
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval
my $c = $::Config;
$c =~ s/proxy_buffering off;/proxy_buffering on;/g;
$c
--- request
GET /v1/models
--- more_headers eval: $::Key
--- redis_check
my ($events, $seen) = main::gated_stream('buffering-on', '{"model":"gpt-4o-mini","stream":true}');
is($events, 3, 'three events');
is($seen, 'delivered', 'the first event reached the client while the upstream held the second');



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
