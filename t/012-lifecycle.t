# nginx's own life cycle under a stream: a reload lets it finish and
# settle; a killed worker's reservation is refunded after its TTL.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

master_on();
workers(1);
repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 14;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config(extra => "    ai_relay_reservation_ttl 1s;\n");
our $Config = relay_config(extra => <<'_EOC_');
    location /mock/slow/ {
        echo_read_request_body;
        default_type text/event-stream;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Before the reload"}}],"usage":null}';
        echo;
        echo_flush;
        echo_sleep 1;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" and after it"}}],"usage":null}';
        echo;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}';
        echo;
        echo 'data: [DONE]';
        echo;
    }
_EOC_
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";
our $Stream = '{"model":"gpt-4o-mini","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"hello"}]}';

run_tests();

__DATA__

=== TEST 1: a reload during a stream: the old worker finishes it and settles it once
--- init
AIRelayTest::seed_world(mock => '/mock/slow');
my ($master) = AIRelayTest::nginx_pids();
AIRelayTest::later(0.4, sub { kill 'HUP', $master });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n$::Stream"
--- more_headers eval: $::Key
--- response_body_like: and after it.*data: \[DONE\]
--- timeout: 5
--- redis_check
ok(wait_for(sub { records(1) == 1 }, 3), 'settled');
sleep 0.3;
is(scalar(records(1)), 1, 'exactly once');
my $r = last_record(1);
is($r->{usage_source}, 'upstream', 'with the usage the upstream reported');
is(user_field(1, 'balance'), 10_000_000 - $r->{cost}, 'charged once');
--- error_log
reconfiguring



=== TEST 2: a worker killed mid-stream: its reservation is refunded once the TTL passes
--- init
AIRelayTest::seed_world(mock => '/mock/slow');
my ($master, $worker) = AIRelayTest::nginx_pids();
AIRelayTest::later(0.4, sub { kill 'KILL', $worker });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n$::Stream"
--- more_headers eval: $::Key
--- ignore_response
--- abort
--- timeout: 3
--- redis_check
is(redis('HLEN', 'ar:{u1}:res'), 1, 'the dead worker left a reservation');
ok(user_field(1, 'balance') < 10_000_000, 'held from the balance');
sleep 1.2;
my ($status) = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini"}');
is($status, 200, 'the new worker serves');
ok(wait_for(sub { records(1) == 1 }), 'that request settled');
my $r = last_record(1);
is(user_field(1, 'balance'), 10_000_000 - $r->{cost}, 'the lost reservation was refunded, only the new request is charged');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');
--- error_log
exited on signal 9
