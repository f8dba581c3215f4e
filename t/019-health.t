# Channels that heal: a breaker per channel key, shared by the workers.
# A run of failures opens it and traffic goes to the other channels; a
# 429 benches the key for its Retry-After; a refused key is benched at
# once; after the cool-down one request probes it and a success closes
# it; with every channel benched the client gets a 503 in JSON and no
# money is held.  Each repetition seeds channels of its own (new ids, so
# new breakers: the zone outlives a reload).

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(2);
workers(2);
plan tests => repeat_each() * 33;
no_shuffle();
no_long_string();
install_redis_check();

sub hc {
    my ($cooldown) = @_;
    return http_config(extra => "    ai_relay_health_failures 2;\n"
                                . "    ai_relay_health_cooldown $cooldown;\n");
}

our $HttpConfig = hc('60s');

# failover off: each failure reaches the client, so the counts show
# exactly when a breaker opens (t/020-failover.t has failover on)
our $Config = relay_config(relay => 'ai_relay_next_upstream off;',
                           extra => <<'_EOC_');
    location /mock/ping {
        return 200 "pong\n";
    }

    location /mock/fail/ {
        default_type application/json;
        return 500 '{"error":{"message":"The server had an error","type":"server_error"}}';
    }

    location /mock/busy/ {
        default_type application/json;
        add_header Retry-After 60 always;
        return 429 '{"error":{"message":"Rate limit reached","type":"requests"}}';
    }

    # refuses one of the channel's keys
    location /mock/keys/ {
        default_type application/json;
        if ($http_authorization = "Bearer bad-key") {
            return 401 '{"error":{"message":"Incorrect API key provided: bad-key","type":"invalid_request_error"}}';
        }
        return 200 '{"id":"c","object":"chat.completion","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}';
    }
_EOC_

our $Chat = '{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}';

# a fresh world for one repetition: channel ids never seen by the zone
our $Rep = 0;

sub world {
    my (%o) = @_;
    $Rep++;
    my $good = "ok$Rep$$";
    my $bad = "bad$Rep$$";
    AIRelayTest::seed_world();
    redis('DEL', 'ar:{cfg}:channel:1');
    AIRelayTest::seed_channel($good, base_url => mock_url('/mock/chat'),
                              priority => 0) unless $o{only_bad};
    AIRelayTest::seed_channel($bad, base_url => mock_url($o{bad}),
                              priority => 10, keys => $o{keys});
    AIRelayTest::seed_model('gpt-4o-mini',
                            channels => $o{only_bad} ? $bad : "$bad,$good");
    # a version no earlier world had: the workers' cached routes are stale
    redis('SET', 'ar:{cfg}:version', time() * 1000 + $Rep * 100 + $$ % 100);
    return ($good, $bad);
}

# n requests one after the other: their statuses, in order
sub statuses {
    my ($n) = @_;
    return join ' ', map { (relay_post('/v1/chat/completions', $Chat))[0] }
                     1 .. $n;
}

run_tests();

__DATA__

=== TEST 1: a run of failures opens the breaker (across the workers): the next tier takes the traffic
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /mock/ping
--- response_body
pong
--- redis_check
my ($good, $bad) = main::world(bad => '/mock/fail');
is(main::statuses(8), '500 500 200 200 200 200 200 200',
   'two failures, then the healthy channel');
my @r = records(1);
ok(wait_for(sub { @r = records(1); @r == 8 }), 'all settled');
is(join(' ', map { $_->{channel} eq $good ? 'ok' : 'bad' } @r),
   'bad bad ok ok ok ok ok ok', 'channels in the records');
like(error_log_text(), qr/channel \Q$bad\E key #0 benched for \d+ ms: failed \(status 500\)/,
     'the operator is told why');
# a busy user's worker may hold a lease: it goes back once traffic stops
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 5), 'no reservation left');



=== TEST 2: an upstream 429 benches the key for its Retry-After at once
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /mock/ping
--- response_body
pong
--- redis_check
my ($good, $bad) = main::world(bad => '/mock/busy');
is(main::statuses(5), '429 200 200 200 200', 'one 429, then elsewhere');
like(error_log_text(), qr/channel \Q$bad\E key #0 benched for 60000 ms: rate_limited \(status 429\)/,
     'benched for the Retry-After (60 s)');



=== TEST 3: a refused key is benched at once; the channel's other key serves
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /mock/ping
--- response_body
pong
--- redis_check
my ($good, $bad) = main::world(bad => '/mock/keys', keys => ['bad-key', 'good-key']);
my @s = split ' ', main::statuses(6);
is(scalar(grep { $_ == 502 } @s), 1, 'the refused key failed one request')
    or diag("@s");
is(scalar(grep { $_ == 200 } @s), 5, 'its other key served the rest');
my @r;
ok(wait_for(sub { @r = records(1); @r == 6 }), 'all settled');
is(scalar(grep { $_->{channel} eq $bad } @r), 6, 'all on that channel');
like(error_log_text(), qr/channel \Q$bad\E key #0 benched for \d+ ms: key_refused \(status 401\)/,
     'why');



=== TEST 4: every channel benched: 503 in JSON with Retry-After; the reservation is refunded
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /mock/ping
--- response_body
pong
--- redis_check
my ($good, $bad) = main::world(bad => '/mock/fail', only_bad => 1);
my $before = user_field(1, 'balance');
is(main::statuses(2), '500 500', 'the only channel fails twice');
my ($status, $head, $body) = relay_post('/v1/chat/completions', $::Chat);
is($status, 503, 'then 503');
like($head, qr/^Retry-After: \d+/mi, 'with Retry-After');
like($body, qr/available now.*"code":"service_unavailable"/s, 'in OpenAI\'s error format');
ok(wait_for(sub { records(1) == 3 }), 'all settled');
is(user_field(1, 'balance'), $before, 'nothing billed (the upstream\'s 500s cost nothing)');
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 5), 'no money held');



=== TEST 5: recovery: after the cool-down one probe goes; its success closes the breaker
--- http_config eval: main::hc('1s')
--- config eval: $::Config
--- request
GET /mock/ping
--- response_body
pong
--- redis_check
my ($good, $bad) = main::world(bad => '/mock/fail');
is(main::statuses(3), '500 500 200', 'opened');
# the channel is repaired; its breaker knows once a probe went through
redis('HSET', "ar:{cfg}:channel:$bad", base_url => mock_url('/mock/chat'));
redis('INCR', 'ar:{cfg}:version');
select(undef, undef, undef, 1.5);    # the cool-down (1 s) is over
is(main::statuses(3), '200 200 200', 'served');
my @r;
ok(wait_for(sub { @r = records(1); @r == 6 }), 'settled');
is(join(' ', map { $_->{channel} eq $bad ? 'repaired' : 'other' } @r[3 .. 5]),
   'repaired repaired repaired', 'the probe closed the breaker: the repaired channel serves again');
