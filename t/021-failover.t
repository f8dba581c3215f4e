# Failover before the first byte: a channel key that fails before the
# client got anything (an upstream 5xx, 429 or 401, no connection, a
# timeout) hands the request to the next key of its channel, then to the
# next channel; never after a byte went out; at most
# ai_relay_next_upstream_tries attempts.  The bill is one: only the
# answered try costs, and the record lists every try.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(2);
plan tests => repeat_each() * 52;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();

our $Config = relay_config(extra => <<'_EOC_');
    location /mock/fail/ {
        default_type application/json;
        return 500 '{"error":{"message":"The server had an error","type":"server_error"}}';
    }

    # refuses one of the channel's keys
    location /mock/keys/ {
        default_type application/json;
        if ($http_authorization = "Bearer bad-key") {
            return 401 '{"error":{"message":"Incorrect API key provided: bad-key","type":"invalid_request_error"}}';
        }
        return 200 '{"id":"c","object":"chat.completion","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}';
    }

    # silent for longer than proxy_read_timeout (2 s)
    location /mock/silent/ {
        echo_read_request_body;
        echo_sleep 3;
        echo '{}';
    }

    # the first event, then silence past the timeout
    location /mock/half/ {
        echo_read_request_body;
        default_type text/event-stream;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Half"}}]}';
        echo;
        echo_flush;
        echo_sleep 3;
        echo 'data: [DONE]';
        echo;
    }
_EOC_

our $Chat = '{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}';
our $Stream = '{"model":"gpt-4o-mini","stream":true,"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}';

our $Rep = 0;

# channels never seen before (new breakers): [id, base path, priority, keys]
sub world {
    my (@ch) = @_;
    $Rep++;
    AIRelayTest::seed_world();
    redis('DEL', 'ar:{cfg}:channel:1');
    my @ids;
    for my $c (@ch) {
        my ($name, $path, $prio, $keys) = @$c;
        my $id = "$name$Rep$$";
        AIRelayTest::seed_channel($id,
            base_url => $path =~ /^http/ ? $path : mock_url($path),
            priority => $prio, $keys ? (keys => $keys) : ());
        push @ids, $id;
    }
    AIRelayTest::seed_model('gpt-4o-mini', channels => join(',', @ids));
    redis('SET', 'ar:{cfg}:version', time() * 1000 + $Rep * 100 + $$ % 100);
    return @ids;
}

run_tests();

__DATA__

=== TEST 1: an upstream 500: the next tier answers; one bill, both tries in the record
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /mock/chat/x
--- response_body_like: chat.completion
--- redis_check
my ($bad, $ok) = main::world([bad => '/mock/fail', 10], [ok => '/mock/chat', 0]);
my ($status, $head, $body) = relay_post('/v1/chat/completions', $::Chat);
is($status, 200, 'the client got an answer');
like($body, qr/"Hi there"/, 'from the healthy channel');
like($head, qr/^x-request-id: [0-9a-f]{32}/mi, 'with its request id');
my @r;
ok(wait_for(sub { @r = records(1); @r == 1 }), 'one record');
is($r[0]{tries}, 2, 'two tries');
is($r[0]{attempts}, "$bad#0:500,$ok#0:200", 'both in the record');
is($r[0]{channel}, $ok, 'billed to the channel that answered');
is($r[0]{prompt_tokens}, 12, 'the answer\'s usage');
is(user_field(1, 'balance'), 10_000_000 - $r[0]{cost}, 'billed once');
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 5), 'no reservation left');



=== TEST 2: a stream after a failed try: the events of the answering channel, its usage billed
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /mock/chat/x
--- response_body_like: chat.completion
--- redis_check
my ($bad, $ok) = main::world([bad => '/mock/fail', 10], [ok => '/mock/sse', 0]);
my ($status, $head, $body) = relay_post('/v1/chat/completions', $::Stream);
is($status, 200, 'a stream');
like($head, qr{^content-type: text/event-stream}mi, 'of events');
like($body, qr/"Hel".*"lo".*data: \[DONE\]/s, 'all of them, in order');
unlike($body, qr/server_error/, 'nothing of the failed try');
my @r;
ok(wait_for(sub { @r = records(1); @r == 1 }), 'one record');
is("$r[0]{tries} $r[0]{completion_tokens} $r[0]{usage_source}", '2 2 upstream',
   'two tries, the stream\'s own usage');



=== TEST 3: no connection to the first channel: the next one answers
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /mock/chat/x
--- response_body_like: chat.completion
--- redis_check
my $port = AIRelayTest::free_port();
my ($bad, $ok) = main::world([down => "http://127.0.0.1:$port", 10], [ok => '/mock/chat', 0]);
my ($status) = relay_post('/v1/chat/completions', $::Chat);
is($status, 200, 'answered');
my @r;
ok(wait_for(sub { @r = records(1); @r == 1 }), 'one record');
is($r[0]{attempts}, "$bad#0:502,$ok#0:200", 'the refused connection is a try');



=== TEST 4: a key refused: the same channel's next key first
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /mock/chat/x
--- response_body_like: chat.completion
--- redis_check
my ($ch, $other) = main::world([keys => '/mock/keys', 10, ['bad-key', 'good-key']],
                               [other => '/mock/chat', 0]);
my @s = map { (relay_post('/v1/chat/completions', $::Chat))[0] } 1 .. 3;
is("@s", '200 200 200', 'every request answered');
my @r;
ok(wait_for(sub { @r = records(1); @r == 3 }), 'three records');
is(scalar(grep { $_->{channel} eq $ch } @r), 3, 'all by the refusing key\'s channel');
my @retried = grep { $_->{tries} == 2 } @r;
is(scalar(@retried), 1, 'the refused key cost one retry, then it was benched');
is($retried[0]{attempts}, "$ch#0:401,$ch#1:200", 'its other key');



=== TEST 5: silent past proxy_read_timeout before the answer: a timeout, the next channel answers
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /mock/chat/x
--- response_body_like: chat.completion
--- redis_check
my ($bad, $ok) = main::world([silent => '/mock/silent', 10], [ok => '/mock/chat', 0]);
my ($status) = relay_post('/v1/chat/completions', $::Chat);
is($status, 200, 'answered');
my @r;
ok(wait_for(sub { @r = records(1); @r == 1 }), 'one record');
is($r[0]{attempts}, "$bad#0:504,$ok#0:200", 'the timeout is a try');
--- timeout: 10



=== TEST 6: never after the first byte: a stream cut after its first event is not sent again
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /mock/chat/x
--- response_body_like: chat.completion
--- redis_check
my ($half, $ok) = main::world([half => '/mock/half', 10], [ok => '/mock/chat', 0]);
my ($status, $head, $body) = relay_post('/v1/chat/completions', $::Stream);
is($status, 200, 'the stream had begun');
like($body, qr/"Half"/, 'its first event arrived');
unlike($body, qr/chat\.completion"/, 'no other channel\'s answer after it');
my @r;
ok(wait_for(sub { @r = records(1); @r == 1 }), 'one record');
is("$r[0]{tries} $r[0]{channel}", "1 $half", 'one try');
--- timeout: 10



=== TEST 7: every try fails: at most ai_relay_next_upstream_tries (3), the last answer stands, nothing billed
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /mock/chat/x
--- response_body_like: chat.completion
--- redis_check
my @ids = main::world([a => '/mock/fail', 30], [b => '/mock/fail', 20],
                      [c => '/mock/fail', 10], [d => '/mock/fail', 0]);
my $before = user_field(1, 'balance');
my ($status, $head, $body) = relay_post('/v1/chat/completions', $::Chat);
is($status, 500, 'the last try\'s status');
like($body, qr/The server had an error/, 'and its error');
my @r;
ok(wait_for(sub { @r = records(1); @r == 1 }), 'one record');
is($r[0]{attempts}, "$ids[0]#0:500,$ids[1]#0:500,$ids[2]#0:500", 'three tries, the fourth channel untouched');
is(user_field(1, 'balance'), $before, 'nothing billed');
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 5), 'no reservation left');
