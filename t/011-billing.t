# Reserve, then settle, exactly once, whatever the ending: concurrency,
# client abort, upstream reset and timeout mid-stream, Redis away during
# settlement, worker killed, limits.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 103;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();
our $Config = relay_config(extra => <<'_EOC_');
    # a slow stream: one event, a pause, the rest
    location /mock/slow/ {
        echo_read_request_body;
        default_type text/event-stream;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"The first words of a long answer"}}],"usage":null}';
        echo;
        echo_flush;
        echo_sleep 1;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" and the rest"}}],"usage":null}';
        echo;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}';
        echo;
        echo 'data: [DONE]';
        echo;
    }

    # stalls after the first event, longer than proxy_read_timeout
    location /mock/stall/ {
        echo_read_request_body;
        default_type text/event-stream;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Half an answer"}}],"usage":null}';
        echo;
        echo_flush;
        echo_sleep 4;
        echo 'data: [DONE]';
        echo;
    }
_EOC_
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";
our $Stream = '{"model":"gpt-4o-mini","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"hello"}]}';

run_tests();

__DATA__

=== TEST 1: many parallel streams against a balance that covers only some: never below zero, costs add up
--- init
AIRelayTest::seed_world(mock => '/mock/sse', balance => 1000,
                        price => { input => 1_000_000, output => 4_000_000 });
--- http_config eval: $::HttpConfig
--- config eval: "client_body_buffer_size 1k;\n" . $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","stream":true,"max_tokens":10}
--- more_headers eval: $::Key
--- response_body_like: data: \[DONE\]
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'first request settled');
my $start = user_field(1, 'balance');
my $n = 60;
my @kids;
pipe(my $rd, my $wr) or die;
for my $i (1 .. $n) {
    my $pid = fork;
    die "fork" unless defined $pid;
    if (!$pid) {
        close $rd;
        my ($status) = relay_post('/v1/chat/completions',
            '{"model":"gpt-4o-mini","stream":true,"max_tokens":10}');
        syswrite($wr, "$status\n");
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
close $wr;
my $lowest = $start;
my %status;
my $done = 0;
my $rin = '';
vec($rin, fileno($rd), 1) = 1;
while ($done < $n) {
    my $b = user_field(1, 'balance');
    $lowest = $b if $b < $lowest;
    if (select(my $rout = $rin, undef, undef, 0.002)) {
        my $line = <$rd>;
        last unless defined $line;
        chomp $line;
        $status{$line}++;
        $done++;
    }
}
waitpid($_, 0) for @kids;
ok($status{200} > 0, "some served ($status{200})");
ok(($status{402} // 0) > 0, 'some refused with 402 (' . ($status{402} // 0) . ')');
is(($status{200} // 0) + ($status{402} // 0), $n, 'nothing else')
    or diag(join ' ', map { "$_: $status{$_}" } sort keys %status);
ok($lowest >= 0, "the balance never went below zero (lowest $lowest)");
ok(wait_for(sub { records(1) == 1 + $status{200} }), 'one record per served request');
# a busy user's worker may hold a lease: it goes back once traffic stops
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 5), 'leases and reservations released');
my $sum = 0;
$sum += $_->{cost} for records(1);
is(user_field(1, 'balance'), 1000 - $sum, 'balance change equals the sum of recorded costs');
ok(user_field(1, 'balance') >= 0, 'balance not negative');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');
--- timeout: 10



=== TEST 2: the client leaves mid-stream: what was streamed is estimated and billed once
--- init
AIRelayTest::seed_world(mock => '/mock/slow', price => { input => 1_000_000, output => 4_000_000 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n$::Stream"
--- more_headers eval: $::Key
--- timeout: 0.5
--- abort
--- ignore_response
--- wait: 1.5
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{status}, 499, 'client closed');
is($r->{usage_source}, 'estimated', 'estimated');
is($r->{error}, 'the client closed the connection mid-response', 'why');
ok($r->{completion_tokens} > 0 && $r->{completion_tokens} < 20, "what was streamed ($r->{completion_tokens} tokens)");
ok($r->{cost} > 0, "billed ($r->{cost})");
is(user_field(1, 'balance'), 10_000_000 - $r->{cost}, 'exactly once');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');



=== TEST 3: the upstream resets the connection mid-stream
--- init
our $RawPort = AIRelayTest::free_port();
AIRelayTest::seed_world(channel => { base_url => "http://127.0.0.1:$RawPort" });
AIRelayTest::raw_upstream($RawPort, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
    . qq{data: {"choices":[{"index":0,"delta":{"content":"Once upon a time"}}]}\n\n}
    . qq{data: {"choices":[{"index":0,"delta":{"content":" there was"}}]}\n\n},
    reset => 1);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n$::Stream"
--- more_headers eval: $::Key
--- ignore_response
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{usage_source}, 'estimated', 'estimated');
is($r->{error}, 'the upstream response was cut short', 'why');
ok($r->{completion_tokens} > 0, "streamed text counted ($r->{completion_tokens})");
is(user_field(1, 'balance'), 10_000_000 - $r->{cost}, 'billed once');



=== TEST 4: the upstream stalls mid-stream past proxy_read_timeout
--- init
AIRelayTest::seed_world(mock => '/mock/stall');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n$::Stream"
--- more_headers eval: $::Key
--- ignore_response
--- timeout: 5
--- redis_check
ok(wait_for(sub { records(1) == 1 }, 5), 'one record');
my $r = last_record(1);
is($r->{usage_source}, 'estimated', 'estimated');
is($r->{error}, 'the upstream response was cut short', 'why');
is(user_field(1, 'balance'), 10_000_000 - $r->{cost}, 'billed once');
--- error_log
upstream timed out



=== TEST 5: Redis stops answering during the settlement: journaled, replayed, applied once
--- init
AIRelayTest::seed_world(mock => '/mock/slow');
AIRelayTest::later(0.4, sub { AIRelayTest::redis('CLIENT', 'PAUSE', 2500, 'ALL') });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n$::Stream"
--- more_headers eval: $::Key
--- response_body_like: data: \[DONE\]
--- timeout: 5
--- wait: 4
--- redis_check
ok(wait_for(sub { records(1) == 1 }, 5), 'settled');
sleep 0.5;
is(scalar(records(1)), 1, 'exactly one record');
my $r = last_record(1);
# 12 prompt and 9 completion tokens at $0.15 / $0.60 per 1M: 7.2 -> 8
is($r->{cost}, 8, 'cost of the reported usage');
is(user_field(1, 'balance'), 10_000_000 - $r->{cost}, 'charged once');
is(user_field(1, 'requests'), 1, 'counted once');
--- error_log
kept in the journal until redis answers
replaying 1 journaled settlements



=== TEST 6: settlements still journaled when nginx stops go to a file; the next nginx settles them once Redis is back
--- init
AIRelayTest::seed_world(mock => '/mock/slow');
AIRelayTest::later(0.4, sub {
    AIRelayTest::redis('SAVE');
    system("t/redis.sh stop $AIRelayTest::REDIS_PORT");
});
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n$::Stream"
--- more_headers eval: $::Key
--- response_body_like: data: \[DONE\]
--- timeout: 5
--- redis_check
my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
ok(wait_for(sub { error_log_text() =~ /kept in the journal until redis answers/ }, 5),
   'kept while Redis is away');
my ($master) = nginx_pids();
kill 'QUIT', $master;
# its pid file goes when it is done (a zombie still answers kill 0)
ok(wait_for(sub { !-e "$root/logs/nginx.pid" }, 30), 'nginx stopped');
my @files = glob("$root/logs/ai_relay.journal.*");
is(scalar(@files), 1, 'the exiting worker wrote its journal file');
system("t/redis.sh start $AIRelayTest::REDIS_PORT") == 0 or die "redis start\n";
unlink "$AIRelayTest::TOP/build/redis-$AIRelayTest::REDIS_PORT/dump.rdb";
my $bin = $ENV{TEST_NGINX_BINARY} || 'nginx';
# in the background: under valgrind the configuration says "daemon off"
is(system("$bin -e $root/logs/error.log -p $root/ -c $root/conf/nginx.conf"
          . " >/dev/null 2>&1 &"), 0, 'the next nginx started');
ok(wait_for(sub { records(1) == 1 }, 30), 'the journaled settlement arrived');
my $r = last_record(1);
# 12 prompt and 9 completion tokens at $0.15 / $0.60 per 1M: 7.2 -> 8
is($r->{cost}, 8, 'its cost');
is(user_field(1, 'balance'), 10_000_000 - 8, 'charged once');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'reservation settled');
ok(wait_for(sub { !glob("$root/logs/ai_relay.journal.*") }, 30),
   'journal file consumed once Redis acknowledged it');
like(error_log_text(), qr/journaled settlements to replay/, 'the next nginx said so');



=== TEST 7: unlimited users are metered, not charged
--- init
AIRelayTest::seed_world(balance => 0, unlimited => 1);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- response_body_like: Hi there
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'a record');
my $r = last_record(1);
ok($r->{cost} > 0, "cost recorded ($r->{cost})");
is(user_field(1, 'balance'), 0, 'balance untouched');
is(user_field(1, 'used'), $r->{cost}, 'but metered');



=== TEST 8: a reservation larger than the balance is refused, nothing changes
--- init
AIRelayTest::seed_world(balance => 100);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":100000}
--- more_headers eval: $::Key
--- error_code: 402
--- response_body_like: ^\{"error":\{"message":"Insufficient quota for this request: it reserves up to \d+ micro-USD \(prompt estimate and max_tokens\) and the account has 100 left\. Lower max_tokens or top up\.","type":"insufficient_quota","param":null,"code":"insufficient_quota"\}\}$
--- redis_check
is(user_field(1, 'balance'), 100, 'balance untouched');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'nothing reserved');



=== TEST 9: a key's own budget (quota) is spent and enforced
--- init
AIRelayTest::seed_world(key => { quota => 5000 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
[ "POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\",\"max_tokens\":10}",
  "POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\",\"max_tokens\":100000}" ]
--- more_headers eval: $::Key
--- error_code eval
[200, 402]
--- response_body_like eval
['Hi there', 'the key has \d+ left']
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $cost = last_record(1)->{cost};
is(key_field(1, $AIRelayTest::TEST_KEY, 'quota'), 5000 - $cost, 'key budget spent');
is(user_field(1, 'balance'), 10_000_000 - $cost, 'and the balance');



=== TEST 10: tokens per minute: once spent, 429 with Retry-After
--- init
AIRelayTest::seed_world(key => { tpm => 10 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
[ "POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\"}",
  "POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\"}" ]
--- more_headers eval: $::Key
--- error_code eval
[200, 429]
--- response_headers_like eval
["", "Retry-After: \\d+"]
--- response_body_like eval
['Hi there', '"type":"tokens","param":null,"code":"rate_limit_exceeded"']



=== TEST 11: a busy user is served against a lease, without an AUTH round trip each time, and billed exactly
--- init
AIRelayTest::seed_world(price => { input => 1_000_000, output => 4_000_000 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":10}
--- more_headers eval: $::Key
--- response_body_like: Hi there
--- redis_check
redis('CONFIG', 'RESETSTAT');
my $n = 60;
for (1 .. $n) {
    my ($status) = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini","max_tokens":10}');
    die "status $status" unless $status == 200;
}
my ($calls) = redis('INFO', 'commandstats') =~ /cmdstat_evalsha:calls=(\d+)/;
ok($calls < $n * 0.9, "fewer scripts than requests ($calls for $n)");
ok(wait_for(sub { records(1) == $n + 1 }), 'every request has its record');
my $held = 10_000_000 - user_field(1, 'balance');
ok(redis('HLEN', 'ar:{u1}:res') == 1, 'while busy, the worker holds a lease');
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 5), 'idle: the lease goes back');
my $sum = 0;
$sum += $_->{cost} for records(1);
is(user_field(1, 'balance'), 10_000_000 - $sum, 'the balance went down by exactly the recorded costs');
my @t = gmtime;
my $day = sprintf('%04d%02d%02d', $t[5] + 1900, $t[4] + 1, $t[3]);
my %st = @{ redis('HGETALL', "ar:{u1}:stats:$day") };
is($st{requests}, $n + 1, 'daily counter: requests');
is($st{'key:1:requests'}, $n + 1, 'per key');
is($st{'model:gpt-4o-mini:cost'}, $sum, 'per model: cost');
is($st{cost}, $sum, 'total cost');
is($st{prompt_tokens}, 12 * ($n + 1), 'prompt tokens');
like(error_log_text(), qr/admitted on lease/, 'requests were admitted on the lease');
--- timeout: 10



=== TEST 12: a key with a rate limit is always checked by AUTH (no lease)
--- init
AIRelayTest::seed_world(key => { rpm => 1000 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":10}
--- more_headers eval: $::Key
--- response_body_like: Hi there
--- redis_check
for (1 .. 20) {
    relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini","max_tokens":10}');
}
is(key_field(1, $AIRelayTest::TEST_KEY, 'rl_r'), 21, 'every request counted against the RPM limit');
--- no_error_log
admitted on lease



=== TEST 13: a key disabled while its user is leased stops working within a tick
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":10}
--- more_headers eval: $::Key
--- response_body_like: Hi there
--- redis_check
for (1 .. 20) {
    relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini","max_tokens":10}');
}
is(redis('HLEN', 'ar:{u1}:res'), 1, 'leased');
redis('HSET', 'ar:{u1}:key:' . key_hash($AIRelayTest::TEST_KEY), 'status', 'disabled');
redis('INCR', 'ar:{cfg}:version');      # what ai-relay keys disable does
sleep 0.4;
my ($status) = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini","max_tokens":10}');
is($status, 401, 'refused');
like(error_log_text(), qr/admitted on lease/, 'requests were admitted on the lease');



=== TEST 14: a lease never takes more than half the balance: a small balance is served by AUTH alone, to the last cent
--- init
AIRelayTest::seed_world(balance => 800, price => { input => 1_000_000, output => 4_000_000 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":10}
--- more_headers eval: $::Key
--- response_body_like: Hi there
--- redis_check
my @status;
for (1 .. 40) {
    my ($status) = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini","max_tokens":10}');
    push @status, $status;
}
my $ok = grep { $_ == 200 } @status;
ok($ok >= 5, "served while the balance lasted ($ok)");
is(scalar(grep { $_ != 200 && $_ != 402 } @status), 0, 'the others refused for the balance');
ok(wait_for(sub { records(1) == $ok + 1 }), 'every served request has its record');
my $sum = 0;
$sum += $_->{cost} for records(1);
is(user_field(1, 'balance'), 800 - $sum, 'the balance went down by exactly the recorded costs');
ok(user_field(1, 'balance') >= 0, 'never below zero');
--- no_error_log
admitted on lease
--- timeout: 10
