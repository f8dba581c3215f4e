# Money under faults: Redis answering errors on a live link (NOSCRIPT
# after SCRIPT FLUSH, OOM), settlements parked across a reload, an AUTH
# reply that comes after its request gave up, a request leaving the
# relay location by error_page, an AUTH answer lost with the link.  Every
# block checks Redis afterwards, whatever the response was.
#
# repeat_each(1): each block's fault is set up once, by --- init.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
plan tests => repeat_each() * 84;

master_on();
workers(1);
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();
our $Config = relay_config(extra => <<'_EOC_');
    # a stream that takes a second: the fault lands before it settles
    location /mock/slow/ {
        echo_read_request_body;
        default_type text/event-stream;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"The first words"}}],"usage":null}';
        echo;
        echo_flush;
        echo_sleep 1;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}';
        echo;
        echo 'data: [DONE]';
        echo;
    }

    location /fallback/v1/ {
        ai_relay openai;
        proxy_pass $ai_relay_upstream_url;
        error_page 502 = @busy;
    }

    location @busy {
        default_type application/json;
        return 503 '{"error":{"message":"busy","type":"server_error","code":"busy"}}';
    }
_EOC_
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";
# a relay in front of Redis that loses one answer (TEST 9)
our $LossyPort = AIRelayTest::free_port();
our $Stream = '{"model":"gpt-4o-mini","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"hello"}]}';

# 12 prompt and 9 completion tokens at $0.15 / $0.60 per 1M: 7.2 -> 8
our $Cost = 8;

sub servroot { $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot" }


sub journal_files { return glob(servroot() . '/logs/ai_relay.journal.*') }

run_tests();

__DATA__

=== TEST 1: SCRIPT FLUSH before the settlement: NOSCRIPT, scripts loaded again, settled once on the same link
--- init
AIRelayTest::seed_world(mock => '/mock/slow');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- response_body_like: gpt-4o-mini
--- timeout: 20
--- redis_check
my ($status, $body) = stream_with($main::Stream, sub { redis('SCRIPT', 'FLUSH') });
is($status, 200, 'the stream was served');
like($body, qr/\[DONE\]/, 'to its end');
ok(wait_for(sub { records(1) == 1 }, 5), 'settled without a reconnect');
sleep 0.3;
is(scalar(records(1)), 1, 'exactly one record');
is(user_field(1, 'balance'), 10_000_000 - $main::Cost, 'charged once');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');
my $log = error_log_text();
like($log, qr/settlement \S+ failed: NOSCRIPT/, 'the refusal was logged');
is(scalar(() = $log =~ /ai relay: redis connected/g), 1, 'the link stayed up');



=== TEST 2: Redis refusing writes for a while (NOREPLICAS): refused settlements are retried until it accepts them
--- init
AIRelayTest::seed_world(mock => '/mock/slow');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- response_body_like: gpt-4o-mini
--- timeout: 20
--- redis_check
my ($status, $body) = stream_with($main::Stream,
    sub { redis('CONFIG', 'SET', 'min-replicas-to-write', 1) });
is($status, 200, 'the stream was served');
ok(wait_for(sub { error_log_text() =~ /settlement \S+ failed: NOREPLICAS/ }, 20),
   'the settlement was refused');
is(scalar(records(1)), 0, 'nothing settled while Redis refuses');
redis('CONFIG', 'SET', 'min-replicas-to-write', 0);
ok(wait_for(sub { records(1) == 1 }, 20), 'settled once Redis took writes again');
sleep 0.3;
is(scalar(records(1)), 1, 'exactly one record');
is(user_field(1, 'balance'), 10_000_000 - $main::Cost, 'charged once');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');
like(error_log_text(), qr/settlement \S+ failed: NOREPLICAS/, 'the refusal was logged');



=== TEST 3: settlements parked on error replies survive a reload: the new worker claims the old one's journal at once
--- init
AIRelayTest::seed_world(mock => '/mock/slow');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- response_body_like: gpt-4o-mini
--- timeout: 20
--- redis_check
my ($status) = stream_with($main::Stream,
    sub { redis('CONFIG', 'SET', 'min-replicas-to-write', 1) });
is($status, 200, 'the stream was served');
ok(wait_for(sub { error_log_text() =~ /settlement \S+ failed: NOREPLICAS/ }, 20),
   'the settlement was refused');
my ($master, @old) = nginx_pids();
kill 'HUP', $master;
my %old = map { $_ => 1 } @old;
ok(wait_for(sub { my (undef, @w) = nginx_pids(); @w == 1 && !$old{$w[0]} }, 30),
   'the old worker exited');
# at start if the old worker was gone by then, else within a second
ok(wait_for(sub { error_log_text() =~ /journaled settlements (of an exited worker )?to replay/ }, 20),
   'the new worker claimed its journal without another reload');
is(scalar(records(1)), 0, 'nothing settled while Redis refuses');
redis('CONFIG', 'SET', 'min-replicas-to-write', 0);
ok(wait_for(sub { records(1) == 1 }, 30), 'settled once Redis accepts');
sleep 0.3;
is(scalar(records(1)), 1, 'exactly one record');
is(user_field(1, 'balance'), 10_000_000 - $main::Cost, 'charged once');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');
ok(wait_for(sub { !main::journal_files() }, 3),
   'the claimed journal is deleted once Redis acknowledged it');
like(error_log_text(), qr/1 settlements saved to the journal/,
     'the old worker saved it at exit');



=== TEST 4: AUTH answered after the request gave up (Redis timeout, 503): its reservation is released at once
--- init
AIRelayTest::seed_world(mock => '/mock/chat', key => { rpm => 1000 });
# the same key and route once, so the next request's first command is AUTH
my ($status) = AIRelayTest::relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini"}');
die "warm-up request answered $status\n" unless $status == 200;
AIRelayTest::wait_for(sub { AIRelayTest::records(1) == 1 }, 3) or die "warm-up not settled\n";
AIRelayTest::redis_sleep_in_background(1.5);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- error_code: 503
--- timeout: 5
--- redis_check
my $first = last_record(1);
ok(wait_for(sub { error_log_text() =~ /released: the request gave up before AUTH answered/ }, 8),
   'the late reply released the reservation');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation held');
is(user_field(1, 'balance'), 10_000_000 - $first->{cost}, 'only the warm-up request was charged');
is(scalar(records(1)), 1, 'the refused request is not billed');
--- error_log
ai relay: redis did not answer within 500 ms



=== TEST 5: a request that leaves the relay location by error_page is settled exactly once
--- init
AIRelayTest::seed_world(channel => { base_url => 'http://127.0.0.1:1/v1' });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /fallback/v1/chat/completions
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::Key
--- error_code: 503
--- response_body_like: "busy"
--- redis_check
ok(wait_for(sub { records(1) == 1 }, 3), 'one record');
sleep 0.3;
is(scalar(records(1)), 1, 'exactly one record');
my $r = last_record(1);
is(redis('HLEN', 'ar:{u1}:res'), 0, 'the reservation was settled');
is(user_field(1, 'balance'), 10_000_000 - $r->{cost}, 'balance = start - recorded cost');
is(user_field(1, 'requests'), 1, 'counted once');
--- error_log
connect() failed



=== TEST 6: a worker killed outright (SIGKILL) while Redis refuses its settlement: the next worker settles it from the shared zone
--- init
AIRelayTest::seed_world(mock => '/mock/slow');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- response_body_like: gpt-4o-mini
--- timeout: 20
--- redis_check
my ($status) = stream_with($main::Stream,
    sub { redis('CONFIG', 'SET', 'min-replicas-to-write', 1) });
is($status, 200, 'the stream was served');
ok(wait_for(sub { error_log_text() =~ /settlement \S+ failed: NOREPLICAS/ }, 20),
   'the settlement was refused');
my ($master, $worker) = nginx_pids();
kill_worker($worker);
ok(wait_for(sub { my (undef, @w) = nginx_pids(); @w == 1 && $w[0] != $worker }, 30),
   'the master started another worker');
ok(wait_for(sub { error_log_text() =~ /journaled settlements to replay/ }, 5),
   'it took over the killed worker\'s settlement');
is(scalar(records(1)), 0, 'nothing settled while Redis refuses');
redis('CONFIG', 'SET', 'min-replicas-to-write', 0);
ok(wait_for(sub { records(1) == 1 }, 30), 'settled once Redis accepts');
sleep 0.3;
is(scalar(records(1)), 1, 'exactly one record');
is(user_field(1, 'balance'), 10_000_000 - $main::Cost, 'charged once');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');
like(error_log_text(), qr/exited on signal 9/, 'the worker was killed');



=== TEST 7: a worker killed while finished requests wait to be batched (ai_relay_settle_delay): the next worker settles them from the shared zone
--- init
AIRelayTest::seed_world(mock => '/mock/chat', key => { rpm => 1000 });
--- http_config eval: AIRelayTest::http_config(extra => "    ai_relay_settle_delay 20s;\n")
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::Key
--- response_body_like: Hi there
--- redis_check
for (1 .. 4) {
    my ($status) = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini"}');
    is($status, 200, "request $_ served");
}
sleep 0.2;
is(scalar(records(1)), 0, 'nothing settled yet: the batch waits for its delay');
my ($master, $worker) = nginx_pids();
kill_worker($worker);
ok(wait_for(sub { records(1) == 5 }, 30), 'the next worker settled all five');
sleep 0.3;
is(scalar(records(1)), 5, 'exactly five records');
my $sum = 0;
$sum += $_->{cost} for records(1);
is(user_field(1, 'balance'), 10_000_000 - $sum, 'charged once each');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');



=== TEST 8: a journaled settlement Redis refuses as malformed is set aside for the operator, not retried forever, not dropped
--- init
AIRelayTest::seed_world();
my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
my @args = ('5', 'ar:{u1}:user', 'ar:{u1}:res', 'ar:{u1}:done:t8',
            'ar:{u1}:log', 'ar:{u1}:stats:20260101', 't8', 'soon', '1000',
            '0', '0', '0');
open my $fh, '>', "$root/logs/ai_relay.journal.999999.0.tmp" or die $!;
print $fh "ngx_ai_relay journal 3\n", scalar(@args), "\n",
          map { length($_) . "\n$_\n" } @args;
close $fh;
rename "$root/logs/ai_relay.journal.999999.0.tmp",
       "$root/logs/ai_relay.journal.999999.0" or die $!;
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- response_body_like: gpt-4o-mini
--- redis_check
my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
ok(wait_for(sub { error_log_text() =~ /settlement t8 refused by redis \(malformed settlement at argument 2\)/ }, 20),
   'the refusal was logged at alert level');
my @rejected = glob("$root/logs/ai_relay.journal.*.rejected");
is(scalar(@rejected), 1, 'the batch is kept in a .rejected file');
sleep 1.5;
is(scalar(() = error_log_text() =~ /settlement t8 refused/g), 1, 'and not tried again');
is(scalar(glob("$root/logs/ai_relay.journal.*.claimed")), undef, 'no claimed file left');
is(scalar(records(1)), 0, 'nothing written');
is(user_field(1, 'balance'), 10_000_000, 'the balance untouched');



=== TEST 9: the link drops after Redis ran AUTH, before its answer came back (503): the reservation it made is released once the link is back
--- init
AIRelayTest::seed_world(mock => '/mock/chat', key => { rpm => 1000 });
# skip the warm-up's AUTH, lose the answer of the next one
AIRelayTest::redis_losing_relay($::LossyPort, "\$7\r\nreserve\r\n", skip => 1);
my ($status) = AIRelayTest::relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini"}');
die "warm-up request answered $status\n" unless $status == 200;
AIRelayTest::wait_for(sub { AIRelayTest::records(1) == 1 }, 3) or die "warm-up not settled\n";
--- http_config eval: AIRelayTest::http_config(redis => "127.0.0.1:$::LossyPort")
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval: $::Key
--- error_code: 503
--- timeout: 5
--- redis_check
my $first = last_record(1);
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 8),
   'the reservation AUTH made is released');
like(error_log_text(), qr/the reservation of request \S+ is released when redis takes it/,
     'the release waited for the link');
is(user_field(1, 'balance'), 10_000_000 - $first->{cost}, 'only the warm-up request was charged');
is(scalar(records(1)), 1, 'the refused request is not billed');
--- error_log
ai relay: redis connection failed while waiting
