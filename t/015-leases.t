# Leases never overdraw and never hold a user back: a lease used for longer
# than ai_relay_reservation_ttl keeps moving its deadline (AUTH would
# otherwise refund it while the worker spends it); a user whose balance
# went into this worker's lease is not refused while that lease would
# cover the request; RELEASE keeps what the worker spent but Redis has not
# settled yet, and no more (a settlement on its way ahead of the RELEASE is
# not kept twice); a RELEASE of a lease Redis refuses is sent again.
#
# repeat_each(1): the blocks drive a lease through its life once.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
plan tests => repeat_each() * 43;

master_on();
workers(1);
no_shuffle();
no_long_string();
install_redis_check();

our $Config = relay_config();
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";
our $Small = '{"model":"gpt-4o-mini","max_tokens":10}';
our %Price = (input => 1_000_000, output => 4_000_000);

run_tests();

__DATA__

=== TEST 1: a lease used for three times the reservation TTL is never reclaimed under the worker: the balance falls by exactly the recorded costs
--- init
AIRelayTest::seed_world(price => \%::Price);
# a second key of the same user with a rate limit: its requests always go
# through AUTH, which refunds reservations past their deadline
AIRelayTest::seed_key(1, $AIRelayTest::TEST_KEY2, id => 2, rpm => 100000);
--- http_config eval: AIRelayTest::http_config(extra => "    ai_relay_reservation_ttl 2s;\n")
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n$::Small"
--- more_headers eval: $::Key
--- response_body_like: Hi there
--- timeout: 30
--- redis_check
my ($n, $bad, $seen, $gone, $stale) = (1, 0, 0, 0, 0);
my $big = '{"model":"gpt-4o-mini","max_tokens":1000}';
# about 6 s of a busy user on one lease: each request reserves far more
# than it costs, so the lease is never topped up (a top-up would move its
# deadline too); every 20th request uses the other key (AUTH, which
# refunds reservations past their deadline)
for my $i (1 .. 300) {
    my ($status) = relay_post('/v1/chat/completions', $big,
                              $i % 20 ? undef : $AIRelayTest::TEST_KEY2);
    $status == 200 ? $n++ : $bad++;
    my $res = redis('HGETALL', 'ar:{u1}:res');
    my %res = @$res;
    my ($lease) = grep { /^l/ } keys %res;
    if ($lease) {
        $seen++;
        my ($deadline) = $res{$lease} =~ /^(\d+)\|/;
        $stale++ if $deadline <= redis('TIME')->[0];
    } elsif ($seen) {
        $gone++;
    }
    sleep 0.02;
}
is($bad, 0, 'every request served');
ok($seen > 0, "the busy key was served on a lease ($seen samples)");
is($stale, 0, 'the lease never sat past its deadline while in use');
is($gone, 0, 'nor was it refunded under the worker');
unlike(error_log_text(), qr/was reclaimed by redis/, 'the worker never saw it reclaimed');
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 10), 'idle: the lease went back');
ok(wait_for(sub { records(1) == $n }, 5), "every request has its record ($n)");
my $sum = 0;
$sum += $_->{cost} for records(1);
is(user_field(1, 'balance'), 10_000_000 - $sum,
   'the balance went down by exactly the recorded costs');



=== TEST 2: a user whose balance sits in this worker's lease is not refused: the lease goes back and AUTH asks again
--- init
AIRelayTest::seed_world(balance => 1_000_000, price => \%::Price);
--- http_config eval: AIRelayTest::http_config()
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n$::Small"
--- more_headers eval: $::Key
--- response_body_like: Hi there
--- timeout: 10
--- redis_check
for (1 .. 30) {
    my ($status) = relay_post('/v1/chat/completions', $main::Small);
    die "warm-up answered $status\n" unless $status == 200;
}
my $res = redis('HGETALL', 'ar:{u1}:res');
is(scalar(@$res), 2, 'the worker holds a lease');
my ($rem) = $res->[1] =~ /^\d+\|(\d+)\|/;
ok(wait_for(sub { records(1) == 31 }), 'warm-up settled');
my $bal = user_field(1, 'balance');
# a request that reserves more than the balance left, less than balance
# and lease together: max_tokens at $4 per 1M output tokens
my $max = int(($bal + $rem / 2) / 4);
ok($max * 4 > $bal, 'the balance alone would not cover it');
my ($status, $head, $body) = relay_post('/v1/chat/completions',
    qq({"model":"gpt-4o-mini","max_tokens":$max}));
is($status, 200, 'served: the lease was given back first') or diag($body);
ok(wait_for(sub { records(1) == 32 }), 'recorded');
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 5), 'nothing held afterwards');
my $sum = 0;
$sum += $_->{cost} for records(1);
is(user_field(1, 'balance'), 1_000_000 - $sum, 'exactly the recorded costs');



=== TEST 3: RELEASE of a lease keeps what its worker still owes, refunds the rest; of a request that gave up, leaves a tombstone AUTH respects
--- init
AIRelayTest::seed_world(balance => 0);
--- http_config eval: AIRelayTest::http_config()
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- redis_check
my $release = lua_script('release');
redis('HSET', 'ar:{u1}:res', 'l1.2.3', '2000000000|5000|0|');
is(redis('EVAL', $release, 2, 'ar:{u1}:user', 'ar:{u1}:res', 'l1.2.3', 1200), 1, 'released');
is(user_field(1, 'balance'), 3800, 'the unspent part went back');
is(redis('HGET', 'ar:{u1}:res', 'l1.2.3'), '2000000000|1200|0|', 'what is owed stays, deadline kept');
is(redis('EVAL', $release, 2, 'ar:{u1}:user', 'ar:{u1}:res', 'r42', 'ar:{u1}:', 60), 0,
   'a request with no reservation yet');
is(redis('EXISTS', 'ar:{u1}:gone:r42'), 1, 'its tombstone is there');
ok(redis('TTL', 'ar:{u1}:gone:r42') > 0, 'for a while');



=== TEST 4: a lease's RELEASE that Redis refuses (OOM here; TRYAGAIN or READONLY on a cluster or a demoted master) is sent again: the lease does not sit in Redis until its TTL
--- init
AIRelayTest::seed_world(balance => 1_000_000, price => \%::Price);
--- http_config eval: AIRelayTest::http_config(extra => "    ai_relay_reservation_ttl 300s;\n")
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n$::Small"
--- more_headers eval: $::Key
--- response_body_like: Hi there
--- timeout: 30
--- redis_check
sub oom_refused {
    my ($n) = redis('INFO', 'errorstats') =~ /^errorstat_OOM:count=(\d+)/m;
    return $n // 0;
}
for (1 .. 30) {
    my ($status) = relay_post('/v1/chat/completions', $main::Small);
    die "warm-up answered $status\n" unless $status == 200;
}
ok(wait_for(sub { records(1) == 31 }), 'warm-up settled');
my $oom = oom_refused();
my $max = redis('CONFIG', 'GET', 'maxmemory')->[1];
# every write refused from now on: the idle lease's RELEASE among them
redis('CONFIG', 'SET', 'maxmemory', 1);
my $held = grep { /^l/ } @{ redis('HKEYS', 'ar:{u1}:res') };
my $refused = wait_for(sub { oom_refused() > $oom }, 10);
redis('CONFIG', 'SET', 'maxmemory', $max);
is($held, 1, 'the worker held a lease when Redis began refusing');
ok($refused, 'Redis refused the lease\'s RELEASE');
like(error_log_text(), qr/releasing lease \S+ failed \(OOM/, 'the worker saw it');
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 5),
   'sent again once Redis takes writes: nothing held, long before the TTL');
my $sum = 0;
$sum += $_->{cost} for records(1);
is(user_field(1, 'balance'), 1_000_000 - $sum, 'exactly the recorded costs');




=== TEST 5: a lease goes back while its last settlement is still on its way (Redis holds writes): the settlement is charged to the lease, not kept a second time, and nothing is held afterwards
--- init
AIRelayTest::seed_world(balance => 1_000_000, price => \%::Price);
--- http_config eval: AIRelayTest::http_config(timeout => "30s")
--- config eval: $::Config
--- request eval
"POST /v1/chat/completions\n$::Small"
--- more_headers eval: $::Key
--- response_body_like: Hi there
--- timeout: 30
--- redis_check
for (1 .. 30) {
    my ($status) = relay_post('/v1/chat/completions', $main::Small);
    die "warm-up answered $status\n" unless $status == 200;
}
ok(wait_for(sub { records(1) == 31 }), 'warm-up settled');
ok((grep { /^l/ } @{ redis('HKEYS', 'ar:{u1}:res') }), 'the worker holds a lease');
# writes wait (reads do not) for longer than the worker waits before it
# gives an idle lease back: the next request's SETTLE, then the lease's
# RELEASE, queue up behind the pause, in that order
redis('CLIENT', 'PAUSE', 6000, 'WRITE');
my ($status) = relay_post('/v1/chat/completions', $main::Small);
is($status, 200, 'served on the lease while Redis holds writes');
is(scalar records(1), 31, 'its settlement is not applied yet');
ok(wait_for(sub { records(1) == 32 }, 15), 'applied once writes go on');
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 5),
   'the lease went back whole: nothing held until its TTL');
my $sum = 0;
$sum += $_->{cost} for records(1);
is(user_field(1, 'balance'), 1_000_000 - $sum, 'exactly the recorded costs');
