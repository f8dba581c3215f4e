# SETTLE (src/lua/settle.lua) run on its own: charges against
# reservations and leases, refunds, key quotas, counters and records,
# the replay of a batch, metering without charging, and malformed batches.

use strict;
use warnings;

use lib 't/helpers';
use AIRelayTest;
use List::Util qw(sum0);
use Test::More;

plan tests => 83;

my $NOW = 1_800_000_030;
my $MINUTE = int($NOW / 60);
my $U = 'ar:{u1}:';
my $KH = key_hash($TEST_KEY);
my $KH2 = key_hash($TEST_KEY2);
my $STATS = "${U}stats:20270115";
my $LATER = $NOW + 300;             # a deadline not yet reached

# settle(batch => id, keys => [[sha256, cost, requests, tokens], ...],
#        res => [[request id, key index, cost], ...], leases => [...],
#        groups => [[key id, model, requests, errors, prompt, completion,
#        cost], ...], records => [...]) -> the reply; argv => [...]
#        replaces the arguments (a malformed batch)
sub settle {
    my (%b) = @_;
    my $batch = $b{batch} // 'b1';
    my $k = $b{keys} // [[$KH, 300, 1, 15]];
    my ($res, $leases, $groups) = map { $b{$_} // [] } qw(res leases groups);
    my $records = $b{records}
                  // [ map { qq({"n":$_}) } 1 .. sum0(map { $_->[2] } @$k) ];
    my @keys = ("${U}user", "${U}res", "${U}done:$batch", "${U}log", $STATS,
                map { "${U}key:$_->[0]" } @$k);
    my @argv = ($batch, $b{now} // $NOW, $b{keep} // 1000,
                scalar @$res, scalar @$leases, scalar @$groups,
                (map { @$_[1 .. 3] } @$k),
                (map { @$_ } @$res, @$leases, @$groups), @$records);
    return run_script('settle', \@keys, @{ $b{argv} // \@argv });
}

# user 1 with $TEST_KEY (key id 1), counted this minute
sub world {
    my (%o) = @_;
    reset_redis();
    seed_user(1, balance => $o{balance} // 9000,
              unlimited => $o{unlimited} // 0);
    seed_key(1, $TEST_KEY, id => 1, %{ $o{key} || {} });
    redis('HSET', "${U}key:$KH", rl_m => $MINUTE, rl_r => 1, rl_t => 0);
    redis('HSET', "${U}res", %{ $o{res} || {} }) if $o{res};
    return;
}

sub res { return redis('HGET', "${U}res", $_[0]) }
sub stat_field { return redis('HGET', $STATS, $_[0]) }


# a request charged against its reservation

world(res => { r1 => "$LATER|1000|0|$KH", r9 => "$LATER|500|0|$KH" });
is(settle(res => [['r1', 1, 300]],
          groups => [['1', 'gpt-4o-mini', 1, 0, 12, 3, 300]],
          records => ['{"id":"r1","cost":300}']),
   1, 'one request settled');
is(user_field(1, 'balance'), 9700, 'reservation refunded, cost charged');
ok(!defined res('r1'), 'its reservation is gone');
ok(defined res('r9'), 'another one stays');
is(user_field(1, 'used'), 300, 'user: used');
is(user_field(1, 'requests'), 1, 'user: requests');
is(key_field(1, $TEST_KEY, 'used'), 300, 'key: used');
is(key_field(1, $TEST_KEY, 'requests'), 1, 'key: requests');
is(key_field(1, $TEST_KEY, 'rl_t'), 15, 'key: this minute\'s tokens');
is(key_field(1, $TEST_KEY, 'rl_r'), 1, 'key: this minute\'s requests kept');
is_deeply({ @{ redis('HGETALL', $STATS) } },
          { map { my ($f, $v) = @$_;
                  ($f => $v, "key:1:$f" => $v, "model:gpt-4o-mini:$f" => $v) }
            [requests => 1], [prompt_tokens => 12],
            [completion_tokens => 3], [cost => 300] },
          'daily counters: totals, per key, per model (no zeros)');
ok(redis('TTL', $STATS) > 34_000_000, 'kept 400 days');
my $log = redis('XRANGE', "${U}log", '-', '+');
is(scalar @$log, 1, 'one stream entry');
is_deeply($log->[0][1], ['r', '{"id":"r1","cost":300}'], 'holding the record');
is(redis('GET', "${U}done:b1"), '1', 'the batch is marked done');
ok(redis('TTL', "${U}done:b1") > 604_000, 'for 7 days');

my $before = redis_snapshot();
is(settle(res => [['r1', 1, 300]],
          groups => [['1', 'gpt-4o-mini', 1, 0, 12, 3, 300]],
          records => ['{"id":"r1","cost":300}']),
   0, 'the same batch again (a journal replay): 0');
is(redis_snapshot(), $before, 'and nothing changed');

is(settle(batch => 'b2', res => [['r9', 1, 800]]), 1, 'another batch');
is(user_field(1, 'balance'), 9700 + 500 - 800,
   'cost above the reservation: the rest from the balance');


# key quota

world(key => { quota => 4000 }, res => { r1 => "$LATER|1000|1000|$KH" });
settle(res => [['r1', 1, 300]]);
is(user_field(1, 'balance'), 9700, 'balance: refund less cost');
is(key_field(1, $TEST_KEY, 'quota'), 4700, 'key quota: refund less cost');

world(balance => 10_000, key => { quota => 5000 });
settle(res => [['r1', 1, 300]]);
is(user_field(1, 'balance'), 9700,
   'a reservation refunded already (AUTH reclaimed it): cost charged');
is(key_field(1, $TEST_KEY, 'quota'), 4700, 'to the key quota too');


# leases

world(balance => 5000, res => { l1 => "$LATER|5000|0|" });
is(settle(keys => [[$KH, 1200, 1, 15]], leases => [['l1', 1, 1200]]), 1,
   'a request on a lease');
is(res('l1'), "$LATER|3800|1200|",
   'its cost comes out of the lease and is counted as charged to it');
is(user_field(1, 'balance'), 5000, 'not out of the balance');
is(key_field(1, $TEST_KEY, 'used'), 1200, 'key: used');
is(settle(batch => 'b2', keys => [[$KH, 300, 1, 15]],
          leases => [['l1', 1, 300]]), 1, 'a second request on the lease');
is(res('l1'), "$LATER|3500|1500|", 'what is charged to the lease adds up');

world(balance => 5000, res => { l1 => "$LATER|500|0|" });
settle(leases => [['l1', 1, 1200]]);
is(res('l1'), "$LATER|-700|1200|",
   'a lease spent beyond what it held owes it');
is(user_field(1, 'balance'), 5000, 'until its deadline (AUTH)');

world(balance => 5000);
settle(leases => [['l1', 1, 1200]]);
is(user_field(1, 'balance'), 3800, 'a lease gone: charged to the balance');
ok(!defined res('l1'), 'the lease is not made again');

world(balance => 5000, res => { l1 => "$LATER|5000|0|",
                                r1 => "$LATER|1000|0|$KH" });
is(settle(keys => [[$KH, 1500, 3, 30]],
          res => [['r1', 1, 300]], leases => [['l1', 1, 1200]]),
   3, 'a batch of reservations and leases');
is(user_field(1, 'balance'), 5700, 'balance: the reservation\'s part');
is(res('l1'), "$LATER|3800|1200|", 'lease: its part');
is(user_field(1, 'used'), 1500, 'used: all of it');
is(user_field(1, 'requests'), 3, 'requests: all of them');
is(scalar @{ redis('XRANGE', "${U}log", '-', '+')->[0][1] }, 6,
   'one stream entry, a record each');


# several keys, a deleted key, a new minute

world();
seed_key(1, $TEST_KEY2, id => 2);
redis('HSET', "${U}key:$KH2", rl_m => $MINUTE - 1, rl_r => 7, rl_t => 99);
settle(keys => [[$KH, 100, 1, 10], [$KH2, 200, 2, 20]],
       res => [['r1', 1, 100], ['r2', 2, 150], ['r3', 2, 50]]);
is(user_field(1, 'balance'), 8700, 'both keys charged to the user');
is(key_field(1, $TEST_KEY2, 'used'), 200, 'second key: used');
is(key_field(1, $TEST_KEY2, 'requests'), 2, 'second key: requests');
is(key_field(1, $TEST_KEY2, 'rl_m'), $MINUTE, 'an old minute: counters reset');
is(key_field(1, $TEST_KEY2, 'rl_r'), 0, 'requests (AUTH counts them)');
is(key_field(1, $TEST_KEY2, 'rl_t'), 20, 'tokens: this batch\'s');
is(key_field(1, $TEST_KEY, 'rl_t'), 10, 'same minute: tokens added');

world();
my $gone = 'ab' x 32;
settle(keys => [[$gone, 300, 1, 10]], res => [['r1', 1, 300]]);
is(user_field(1, 'balance'), 8700, 'a key deleted since: still charged');
ok(!redis('EXISTS', "${U}key:$gone"), 'its hash is not made again');


# unlimited: metered, not charged

world(balance => 0, unlimited => 1, res => { l1 => "$LATER|0|0|" });
settle(keys => [[$KH, 500, 2, 10]], res => [['r1', 1, 300]],
       leases => [['l1', 1, 200]],
       groups => [['1', 'm', 2, 0, 5, 5, 500]]);
is(user_field(1, 'balance'), 0, 'unlimited user: balance untouched');
is(res('l1'), "$LATER|0|200|",
   'lease: nothing taken, the cost its worker counted is counted charged');
is(user_field(1, 'used'), 500, 'but used counted');
is(key_field(1, $TEST_KEY, 'used'), 500, 'on the key too');
is(stat_field('cost'), 500, 'and in the daily counters');

world(balance => 1000, key => { unlimited => 1, quota => 100 });
settle(keys => [[$KH, 300, 1, 10]], res => [['r1', 1, 300]]);
is(user_field(1, 'balance'), 1000, 'unlimited key: balance untouched');
is(key_field(1, $TEST_KEY, 'quota'), 100, 'its quota too');
is(key_field(1, $TEST_KEY, 'used'), 300, 'used counted');


# a malformed batch is refused whole

world(res => { r1 => "$LATER|1000|0|$KH", l1 => "$LATER|5000|0|" });
$before = redis_snapshot();
my $ok = [$KH, 300, 1, 15];

sub malformed {
    my ($name, $at, %b) = @_;
    my $r = eval { settle(batch => 'bad', %b) };
    my $err = $@;
    like($err, $at ? qr/malformed settlement at argument $at\b/
                   : qr/^redis error/, "$name: refused");
    is(redis_snapshot(), $before, "$name: nothing changed");
    return $err;
}

my $err = malformed('time not a number', undef,
                    argv => ['bad', 'soon', 1000, 1, 0, 0, 300, 1, 15, 'r1',
                             1, 300, '{}']);
like($err, qr/malformed settlement at argument 2\b/,
     'time not a number: said so');
malformed('a count not a number', 2,
          argv => ['bad', $NOW, 1000, 'one', 0, 0, 300, 1, 15, 'r1', 1, 300,
                   '{}']);
malformed('a key\'s cost not a number', 7, keys => [[$KH, 'x', 1, 15]],
          res => [['r1', 1, 300]]);
malformed('fewer records than requests', 12, res => [['r1', 1, 300]],
          records => []);
malformed('more records than requests', 7, res => [['r1', 1, 300]],
          records => ['{}', '{}']);
malformed('a request of a key not in the batch', 10,
          res => [['r1', 2, 300]]);
malformed('a lease\'s cost not a number', 10, leases => [['l1', 1, 'x']]);
malformed('a counter not a number', 17, res => [['r1', 1, 300]],
          groups => [['1', 'm', 1, 0, 'x', 3, 300]]);
malformed('a negative count', 7,
          argv => ['bad', $NOW, 1000, -1, 1, 0, 300, 1, 15, 'l1', 1, 300,
                   '{}']);

eval { settle(batch => 'bad', res => [['r1', 1, 'inf']]) };
is(redis_snapshot(), $before, 'a cost of "inf" changes nothing');


# a video task the upstream accepted: kept, and listed as unfinished
# unless REFUND has recorded its end already

world(res => { r1 => "$LATER|1000|0|$KH" });
settle(res => [['r1', 1, 300]],
       records => ['{"request_id":"r1","task":"video_s1","channel":"3",'
                   . '"model":"sora-2","key_id":"1","cost":300}']);
is(redis('HGET', "${U}task:video_s1", 'cost'), 300, 'task: kept with its cost');
is(redis('HGET', "${U}task:video_s1", 'key'), $KH, "task: the key's hash");
is_deeply(redis('ZRANGE', "${U}tasks:open", 0, -1, 'WITHSCORES'),
          ['video_s1', $NOW], 'task: unfinished, scored by now');

world(res => { r1 => "$LATER|1000|0|$KH", r2 => "$LATER|1000|0|$KH" });
redis('HSET', "${U}task:video_s2", status => 'failed', refunded => 1);
redis('HSET', "${U}task:video_s3", status => 'completed', completed => $NOW);
settle(keys => [[$KH, 600, 2, 30]], res => [['r1', 1, 300], ['r2', 1, 300]],
       records => ['{"request_id":"r1","task":"video_s2","cost":300}',
                   '{"request_id":"r2","task":"video_s3","cost":300}']);
is(redis('HGET', "${U}task:video_s2", 'cost'), 300, 'an ended task: kept');
is(redis('HGET', "${U}task:video_s2", 'refunded'), 1, '... still refunded');
is_deeply(redis('ZRANGE', "${U}tasks:open", 0, -1), [],
          '... and not unfinished again');
