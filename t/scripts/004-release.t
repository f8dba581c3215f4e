# RELEASE (src/lua/release.lua) run on its own: a lease keeps what its
# worker still owes and gives back the rest; a request's reservation goes
# back to the balance and the key quota; a request with no reservation yet
# leaves the tombstone that makes its AUTH reserve nothing.

use strict;
use warnings;

use lib 't/helpers';
use AIRelayTest;
use Test::More;

plan tests => 44;

my $NOW = 1_800_000_030;
my $LATER = $NOW + 300;
my $U = 'ar:{u1}:';
my $KH = key_hash($TEST_KEY);

# a lease: release_lease('l1', owed)
sub release_lease {
    my ($id, $owed) = @_;
    return run_script('release', ["${U}user", "${U}res"], $id, $owed);
}

# a request: release_request('r1', tombstone TTL)
sub release_request {
    my ($id, $ttl) = @_;
    return run_script('release', ["${U}user", "${U}res"], $id, $U,
                      $ttl // 60);
}

sub world {
    my (%o) = @_;
    reset_redis();
    seed_user(1, balance => $o{balance} // 1000);
    seed_key(1, $TEST_KEY, id => 1, %{ $o{key} || {} });
    redis('HSET', "${U}res", %{ $o{res} }) if $o{res};
    return;
}

sub res { return redis('HGET', "${U}res", $_[0]) }


# leases

world(res => { l1 => "$LATER|5000|0|" });
is(release_lease('l1', 0), 1, 'a lease nothing is owed on');
is(user_field(1, 'balance'), 6000, 'all of it back');
ok(!defined res('l1'), 'the lease is gone');

world(res => { l1 => "$LATER|5000|0|" });
is(release_lease('l1', 1200), 1, 'a lease with 1200 owed');
is(user_field(1, 'balance'), 4800, 'the rest back');
is(res('l1'), "$LATER|1200|0|", 'what is owed stays, deadline kept');

world(res => { l1 => "$LATER|500|0|" });
is(release_lease('l1', 1200), 1, 'owed more than the lease holds');
is(user_field(1, 'balance'), 1000, 'nothing back');
is(res('l1'), "$LATER|500|0|", 'the lease stays as it is');

world(res => { l1 => "$LATER|5000|0|" });
is(release_lease('l1', -7), 1, 'owed below zero counts as zero');
is(user_field(1, 'balance'), 6000, 'all of it back');
ok(!defined res('l1'), 'the lease is gone');

# what the worker took out in all, less what settlements charged: a
# settlement applied just before the RELEASE (sent ahead of it on the
# same link, acknowledged after) is not kept a second time
world(res => { l1 => "$LATER|3800|1200|" });
is(release_lease('l1', 1200), 1, 'a lease whose one settlement was applied');
is(user_field(1, 'balance'), 4800, 'all that is left back');
ok(!defined res('l1'), 'nothing kept: the lease is gone');

world(res => { l1 => "$LATER|3800|1200|" });
is(release_lease('l1', 2000), 1, 'a lease with 800 not settled yet');
is(user_field(1, 'balance'), 4000, 'the rest back');
is(res('l1'), "$LATER|800|1200|", 'the 800 stay, the charged count too');
is(run_script('settle', ["${U}user", "${U}res", "${U}done:b9", "${U}log",
                         "${U}stats:20270115", "${U}key:$KH"],
              'b9', $NOW, 1000, 0, 1, 0, 800, 1, 10, 'l1', 1, 800,
              '{"n":1}'), 1, 'the late settlement');
is(res('l1'), "$LATER|0|2000|", 'takes what was kept for it');
is(user_field(1, 'balance'), 4000, 'and nothing from the balance');

world(res => { l1 => "$LATER|-300|0|" });
is(release_lease('l1', 0), 1, 'an overspent lease');
is(user_field(1, 'balance'), 1000, 'is not charged here');
is(res('l1'), "$LATER|-300|0|",
   'it stays with its debt (AUTH at the deadline)');

world();
is(release_lease('l1', 0), 0, 'no such lease: 0');
is(redis('KEYS', "${U}gone:*")->[0], undef, 'and no tombstone');


# requests

world(key => { quota => 600 }, res => { r1 => "$LATER|1000|400|$KH" });
is(release_request('r1'), 1, 'a request\'s reservation');
is(user_field(1, 'balance'), 2000, 'back to the balance');
is(key_field(1, $TEST_KEY, 'quota'), 1000, 'its part of the key quota back');
ok(!defined res('r1'), 'the reservation is gone');
ok(!redis('EXISTS', "${U}gone:r1"), 'AUTH has answered: no tombstone');

world(res => { r1 => "$LATER|1000|0|$KH" });
release_request('r1');
is(key_field(1, $TEST_KEY, 'quota'), -1, 'a key without a budget keeps none');

my $gone = 'ab' x 32;
world(res => { r1 => "$LATER|1000|400|$gone" });
is(release_request('r1'), 1, 'a reservation of a key deleted since');
is(user_field(1, 'balance'), 2000, 'back to the balance');
ok(!redis('EXISTS', "${U}key:$gone"), 'the key is not made again');

world();
is(release_request('r1', 60), 0, 'a request with no reservation yet: 0');
is(redis('GET', "${U}gone:r1"), '1', 'leaves its tombstone');
my $ttl = redis('TTL', "${U}gone:r1");
ok($ttl > 0 && $ttl <= 60, "for the TTL given ($ttl s)");
is(user_field(1, 'balance'), 1000, 'balance untouched');
my $auth = run_script('auth', ["${U}user", "${U}key:$KH", "${U}res"],
                      'reserve', 'r1', $NOW, 'gpt-4o-mini', 500, 300, $KH,
                      $U);
is_deeply($auth, ['gone', ''], 'the AUTH on its way then reserves nothing');
is(redis('HLEN', "${U}res"), 0, 'no reservation');

world(res => { r1 => 'not a reservation' });
my $before = redis_snapshot();
is(release_request('r1'), 0, 'an entry that is no reservation: 0');
is(redis_snapshot(), $before, 'nothing changed');
is(release_lease('r1', 0), 0, 'as a lease: 0 too');
