# AUTH (src/lua/auth.lua) run on its own: every refusal, the reservation
# and its deadline, the rate counters, the "gone:" tombstone, and the
# refund of reservations and leases past their deadline.

use strict;
use warnings;

use lib 't/helpers';
use AIRelayTest;
use Test::More;

plan tests => 70;

my $NOW = 1_800_000_030;            # 30 s into a minute
my $U = 'ar:{u1}:';
my $KH = key_hash($TEST_KEY);

# auth(mode => 'reserve', id => 'r1', now => ..., model => ..., reserve =>
# uUSD, ttl => s) -> the reply, an array ref
sub auth {
    my (%o) = @_;
    return run_script('auth', ["${U}user", "${U}key:$KH", "${U}res"],
                      $o{mode} // 'reserve', $o{id} // 'r1', $o{now} // $NOW,
                      $o{model} // 'gpt-4o-mini', $o{reserve} // 1000,
                      $o{ttl} // 300, $KH, $U);
}

# user 1 (10000 uUSD unless told) with $TEST_KEY (key id 1)
sub world {
    my (%o) = @_;
    reset_redis();
    seed_user(1, balance => $o{balance} // 10_000,
              unlimited => $o{unlimited} // 0, status => $o{user} // 'active');
    seed_key(1, $TEST_KEY, id => 1, %{ $o{key} || {} });
    return;
}

sub res { return redis('HGET', "${U}res", $_[0]) }


# unknown key and user

reset_redis();
is_deeply(auth(), ['unknown_key', ''], 'no such key');

seed_key(1, $TEST_KEY, id => 1);
is_deeply(auth(), ['unknown_key', ''], 'a key without its user');
ok(!redis('EXISTS', "${U}user"), 'makes no user hash');


# the key's and the user's state

world(key => { status => 'disabled' });
is_deeply(auth(), ['key_disabled', '', '1'], 'disabled key');

world(key => { status => 'expired' });
is_deeply(auth(), ['key_expired', '', '1'], 'key marked expired');

world(key => { expires => $NOW });
is_deeply(auth(), ['key_expired', '', '1'], 'key expiring now');

world(key => { expires => $NOW + 1 });
is(auth()->[0], 'ok', 'key expiring in a second');

world(user => 'disabled');
is_deeply(auth(), ['user_disabled', '', '1'], 'disabled user');

world(key => { status => 'exhausted' });
is_deeply(auth(), ['key_quota', '0', '1'], 'exhausted key: refused');
is(auth(mode => 'check')->[0], 'ok', 'but checked (GET /v1/models) fine');

world(key => { models => 'gpt-4o,o3' });
is_deeply(auth(), ['model_not_allowed', '', '1'],
          'a model not in the key\'s list (a prefix of one is not it)');
is(auth(model => 'o3')->[0], 'ok', 'one in the list');
is(user_field(1, 'balance'), 9000, 'only the request served reserved');


# a reservation

world();
redis('HSET', "${U}user", reclaim_at => $NOW + 60);   # no refunds due
my $before = redis_snapshot();
is_deeply(auth(mode => 'check'), ['ok', '', '1', '', '0', '0', '1'],
          'check: key id, models, unlimited, expires, fast');
is(redis_snapshot(), $before, 'check changes nothing');

is_deeply(auth(), ['ok', '', '1', '', '0', '0', '1'], 'reserve: ok');
is(user_field(1, 'balance'), 9000, 'the reservation left the balance');
is(res('r1'), ($NOW + 300) . "|1000|0|$KH",
   'reservation: deadline now + TTL, amount, no key quota, key hash');
is(key_field(1, $TEST_KEY, 'rl_m'), int($NOW / 60), 'minute counted');
is(key_field(1, $TEST_KEY, 'rl_r'), 1, 'one request');
is(key_field(1, $TEST_KEY, 'rl_t'), 0, 'no tokens yet');

world(key => { quota => 5000, expires => $NOW + 99 });
is_deeply(auth(), ['ok', '', '1', '', '0', $NOW + 99, '0'],
          'a key with a budget is not fast; expires is told');
is(res('r1'), ($NOW + 300) . "|1000|1000|$KH", 'its part of the key quota');
is(key_field(1, $TEST_KEY, 'quota'), 4000, 'taken from the key quota');

world(key => { rpm => 5 });
is(auth()->[6], '0', 'a key with a rate limit is not fast');

world(unlimited => 1, balance => 0);
is_deeply(auth(), ['ok', '', '1', '', '1', '0', '1'], 'unlimited user');
is(redis('HLEN', "${U}res"), 0, 'nothing reserved');
is(user_field(1, 'balance'), 0, 'nor charged');
is(key_field(1, $TEST_KEY, 'rl_r'), 1, 'but counted');

world(balance => 0, key => { unlimited => 1 });
is(auth()->[4], '1', 'unlimited key of a user with no money');
is(redis('HLEN', "${U}res"), 0, 'nothing reserved');

world();
is(auth(reserve => 0)->[0], 'ok', 'a reservation of 0');
is(redis('HLEN', "${U}res"), 0, 'writes none');


# money short

world(balance => 0);
is_deeply(auth(), ['quota', '0', '1'], 'balance zero');
world(balance => -5);
is_deeply(auth(), ['quota', '-5', '1'], 'balance below zero');
world(balance => 999);
is_deeply(auth(), ['quota_short', '999', '1'], 'balance short');
is(user_field(1, 'balance'), 999, 'balance untouched');
is(redis('HLEN', "${U}res"), 0, 'nothing reserved');
ok(!defined key_field(1, $TEST_KEY, 'rl_r'), 'not counted');
world(balance => 1000);
is(auth()->[0], 'ok', 'balance exactly the reservation');
is(user_field(1, 'balance'), 0, 'all of it reserved');

world(key => { quota => 0 });
is_deeply(auth(), ['key_quota', '0', '1'], 'key quota used up');
world(key => { quota => 999 });
is_deeply(auth(), ['key_quota_short', '999', '1'], 'key quota short');
is(user_field(1, 'balance'), 10_000, 'balance untouched');


# rate limits: this minute's counters

world(key => { rpm => 2 });
is(auth(id => 'a')->[0], 'ok', 'rpm 2: first');
is(auth(id => 'b')->[0], 'ok', 'second');
is_deeply(auth(id => 'c'), ['rpm', '30', '1'],
          'third: refused, retry when the minute ends');
is(redis('HLEN', "${U}res"), 2, 'the refused one reserved nothing');
is(auth(id => 'd', now => $NOW + 30)->[0], 'ok', 'next minute: served');
is(key_field(1, $TEST_KEY, 'rl_r'), 1, 'the counter started again');

world(key => { tpm => 100 });
redis('HSET', "${U}key:$KH", rl_m => int($NOW / 60), rl_r => 1, rl_t => 100);
is_deeply(auth(), ['tpm', '30', '1'], 'tpm reached this minute');
is(auth(now => $NOW + 60)->[0], 'ok', 'an old minute\'s tokens do not count');


# the tombstone RELEASE leaves for a request that gave up

world();
redis('SET', "${U}gone:r1", 1);
is_deeply(auth(), ['gone', ''], 'a request released before its AUTH');
is(user_field(1, 'balance'), 10_000, 'reserves nothing');
is(redis('HLEN', "${U}res"), 0, 'writes no reservation');
is(auth(mode => 'check')->[0], 'ok', 'check ignores the tombstone');
is(auth(id => 'r2')->[0], 'ok', 'another request is not concerned');


# reservations and leases past their deadline are refunded

world(balance => 5000, key => { quota => 100 });
redis('HSET', "${U}res",
      old => "$NOW|700|300|$KH",                      # deadline now: past
      new => ($NOW + 1) . "|800|0|$KH",               # still running
      lease => ($NOW - 5) . '|-200|0|',               # overspent lease
      other => ($NOW - 5) . '|50|40|' . ('ab' x 32),  # key deleted since
      junk => 'not a reservation');
is(auth(mode => 'check')->[0], 'ok', 'any AUTH looks for them');
is(user_field(1, 'balance'), 5000 + 700 - 200 + 50,
   'refunded to the balance (an overspent lease costs its debt)');
is(key_field(1, $TEST_KEY, 'quota'), 400, 'and to the key quota');
ok(!redis('EXISTS', "${U}key:" . ('ab' x 32)), 'a deleted key stays deleted');
is_deeply([ sort @{ redis('HKEYS', "${U}res") } ], [qw(junk new)],
          'those past their deadline are gone');
is(user_field(1, 'reclaim_at'), $NOW + 60, 'next look in min(TTL, 60 s)');

redis('HSET', "${U}res", new => ($NOW + 1) . "|800|0|$KH");
is(auth(now => $NOW + 59, mode => 'check')->[0], 'ok', 'before reclaim_at');
ok(defined res('new'), 'nothing looked at');
auth(now => $NOW + 60, mode => 'check');
ok(!defined res('new'), 'at reclaim_at: refunded');
is(user_field(1, 'balance'), 5000 + 700 - 200 + 50 + 800, 'the balance');

world(balance => 0);
redis('HSET', "${U}res", old => ($NOW - 1) . "|1000|0|$KH");
is(auth(ttl => 10)->[0], 'ok', 'refunded before the balance is checked');
is(res('r1'), ($NOW + 10) . "|1000|0|$KH", 'so the money serves this one');
is(user_field(1, 'reclaim_at'), $NOW + 10, 'next look in a TTL under 60 s');
