# LEASE (src/lua/lease.lua) run on its own: at most half the balance,
# nothing below the minimum, a refresh of 0 that only moves the deadline,
# -1 for a lease its worker holds but Redis reclaimed, and nothing for a
# lease its worker gave up on (released under a tombstone before LEASE
# ran).

use strict;
use warnings;

use lib 't/helpers';
use AIRelayTest;
use Test::More;

plan tests => 39;

my $NOW = 1_800_000_030;
my $U = 'ar:{u1}:';

# lease(want => uUSD, held => 0|1, ttl => s, min => uUSD, now => s) ->
# the reply
sub lease {
    my (%o) = @_;
    return run_script('lease', ["${U}user", "${U}res"], $o{id} // 'l1',
                      $o{want} // 8000, $o{now} // $NOW, $o{ttl} // 300,
                      $o{min} // 100, $o{held} // 0, $U);
}

sub world {
    my (%o) = @_;
    reset_redis();
    seed_user(1, balance => $o{balance} // 10_000,
              unlimited => $o{unlimited} // 0, status => $o{user} // 'active');
    redis('HSET', "${U}res", l1 => $o{lease}) if defined $o{lease};
    return;
}

sub lease_of { return redis('HGET', "${U}res", $_[0] // 'l1') }


world();
is(lease(), 5000, 'wanting 8000 of 10000: half the balance');
is(user_field(1, 'balance'), 5000, 'taken from the balance');
is(lease_of(), ($NOW + 300) . '|5000|0|', 'the lease: deadline, amount');

world();
is(lease(want => 1000), 1000, 'wanting less than half: all of it');
is(user_field(1, 'balance'), 9000, 'the balance');

world(balance => 10_001);
is(lease(want => 10_000), 5000, 'half, rounded down');

world(balance => 150);
is(lease(), 0, 'half the balance (75) below the minimum (100): none');
is(user_field(1, 'balance'), 150, 'balance untouched');
ok(!defined lease_of(), 'no lease made');

world(balance => 200);
is(lease(), 100, 'half the balance at the minimum: granted');

world(balance => 1000);
is(lease(want => 50), 0, 'wanting less than the minimum: none');

world(balance => 0);
is(lease(), 0, 'no money: none');
world(balance => -500);
is(lease(), 0, 'a debt: none');
is(user_field(1, 'balance'), -500, 'balance untouched');

world(user => 'disabled');
is(lease(), 0, 'disabled user: none');
world(unlimited => 1);
is(lease(), 0, 'unlimited user: none (nothing to take)');
ok(!defined lease_of(), 'no lease made');


# a lease held: top-up and refresh

world(lease => "$NOW|300|0|");
is(lease(want => 2000, held => 1, now => $NOW + 10), 2000, 'top-up');
is(lease_of(), ($NOW + 310) . '|2300|0|',
   'added to what is left; deadline moved');
is(user_field(1, 'balance'), 8000, 'taken from the balance');

world(lease => "$NOW|300|0|");
my $bal = user_field(1, 'balance');
is(lease(want => 0, held => 1, now => $NOW + 20), 0, 'refresh: LEASE of 0');
is(lease_of(), ($NOW + 320) . '|300|0|', 'the deadline moved, nothing else');
is(user_field(1, 'balance'), $bal, 'balance untouched');

world(lease => "$NOW|300|700|");
is(lease(want => 2000, held => 1, now => $NOW + 10), 2000,
   'top-up of a lease settlements charged');
is(lease_of(), ($NOW + 310) . '|2300|700|', 'what was charged to it is kept');

world(lease => "$NOW|-200|0|");
is(lease(want => 0, held => 1), 0, 'refresh of an overspent lease');
is(lease_of(), ($NOW + 300) . '|-200|0|', 'keeps its debt');

world(balance => 150, lease => "$NOW|300|0|");
is(lease(held => 1), 0, 'a top-up below the minimum: none');
is(lease_of(), ($NOW + 300) . '|300|0|', 'but the deadline moved');

world(user => 'disabled', lease => "$NOW|300|0|");
is(lease(held => 1), 0, 'disabled user: no top-up');
is(lease_of(), ($NOW + 300) . '|300|0|', 'the held lease\'s deadline moves');


# reclaimed under its worker

world();
is(lease(want => 0, held => 1), -1, 'held but gone: -1');
ok(!defined lease_of(), 'not made again');
is(lease(want => 2000, held => 1), -1, 'a top-up too');
is(user_field(1, 'balance'), 10_000, 'balance untouched');


# the link dropped while LEASE was on its way: the worker released the id
# (RELEASE left its tombstone) before the old LEASE reached Redis
world();
redis('SET', "${U}gone:l1", '1', 'EX', 60);
is(lease(), 0, 'a lease released under a tombstone: nothing granted');
is(user_field(1, 'balance'), 10_000, 'balance untouched');
ok(!defined lease_of(), 'no lease made');
is(lease(id => 'l2'), 5000, 'another lease id is granted as usual');
