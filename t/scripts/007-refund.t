# REFUND (src/lua/refund.lua) run on its own: what an upstream said of a
# video task is recorded in the task's status and bounded history; a task
# that ended leaves the index of unfinished ones; one that ended without
# its video (failed, cancelled, expired, deleted unless seen completed)
# gets its charge back once: balance, key quota, used, the day's
# counters, a record.

use strict;
use warnings;

use lib 't/helpers';
use AIRelayTest;
use Test::More;

plan tests => 61;

my $NOW = 1_800_000_000;
my $U = 'ar:{u1}:';
my $KH = key_hash($TEST_KEY);
my $DAY = "${U}stats:20270115";
my $T = "${U}task:video_1";

sub refund {
    my ($status, $time, %o) = @_;
    return run_script('refund', ["${U}user", $o{task} // $T, "${U}log", $DAY,
                                 "${U}tasks:open"],
                      $U, 1000, '{"task":"video_1","task_status":"x","cost":',
                      defined $status ? ($status, $time // $NOW) : ());
}

sub world {
    my (%o) = @_;
    reset_redis();
    seed_user(1, balance => 700);
    redis('HSET', "${U}user", used => 300);
    seed_key(1, $TEST_KEY, id => 1, quota => $o{quota} // 4700);
    redis('HSET', "${U}key:$KH", used => 300);
    redis('HSET', $DAY, cost => 300, 'key:1:cost' => 300,
          'model:sora-2:cost' => 300);
    redis('HSET', $T, channel => 1, model => 'sora-2', key => $KH,
          key_id => 1, cost => 300, charged => $o{charged} // 300,
          created => $NOW - 100, %{ $o{task} || {} });
    redis('ZADD', "${U}tasks:open", $NOW - 100, 'video_1');
    return;
}

sub task { return redis('HGET', $T, $_[0]) }
sub open_tasks { return redis('ZRANGE', "${U}tasks:open", 0, -1) }
sub log_len { return redis('XLEN', "${U}log") }


# unfinished statuses: recorded once each, the task stays unfinished

world();
is_deeply(refund('queued'), [0, 0, 1], 'queued: recorded');
is(task('status'), 'queued', 'the status');
is(task('history'), "$NOW:queued", 'the history, with the time');
is_deeply(refund('queued', $NOW + 5), [0, 0, 0], 'queued again: no change');
is(task('history'), "$NOW:queued", 'the history unchanged');
is_deeply(refund('in_progress', $NOW + 10), [0, 0, 1], 'in_progress: recorded');
is(task('history'), "$NOW:queued " . ($NOW + 10) . ':in_progress', 'appended');
is_deeply(open_tasks(), ['video_1'], 'still unfinished');
is(user_field(1, 'balance'), 700, 'nothing refunded');
is(log_len(), 0, 'nothing recorded');

# failed: refunded once, everywhere

is_deeply(refund('failed', $NOW + 20), [1, 300, 1], 'failed: refunded');
is(user_field(1, 'balance'), 1000, 'the balance back');
is(user_field(1, 'used'), 0, 'used back');
is(key_field(1, $TEST_KEY, 'quota'), 5000, 'the key quota back');
is(key_field(1, $TEST_KEY, 'used'), 0, "the key's used back");
my %st = @{ redis('HGETALL', $DAY) };
is_deeply(\%st, { cost => 0, 'key:1:cost' => 0, 'model:sora-2:cost' => 0 },
          "the day's counters back");
is(task('refunded'), 1, 'marked refunded');
is(task('status'), 'failed', 'status failed');
is_deeply(open_tasks(), [], 'out of the unfinished ones');
my $e = redis('XRANGE', "${U}log", '-', '+');
is(scalar @$e, 1, 'one record');
is($e->[0][1][1], '{"task":"video_1","task_status":"x","cost":-300}',
   'the record: the caller\'s text, the negative cost');
is_deeply(refund('failed', $NOW + 30), [0, 0, 0], 'failed again: nothing');
is_deeply(refund('cancelled', $NOW + 40), [0, 0, 1], 'cancelled after: recorded only');
is(user_field(1, 'balance'), 1000, 'refunded once');
is(log_len(), 1, 'one record');
is_deeply(refund('in_progress', $NOW + 50), [0, 0, 0],
          'an unfinished status after the end: not recorded');
is(task('status'), 'cancelled', 'the status stays');
like(task('history'), qr/:failed \d+:cancelled$/, 'the history');

# completed: never refunded, not even by a later delete or failure

world();
is_deeply(refund('completed'), [0, 0, 1], 'completed: recorded');
is(task('completed'), $NOW, 'when');
is_deeply(open_tasks(), [], 'out of the unfinished ones');
is_deeply(refund('deleted', $NOW + 5), [0, 0, 1], 'deleted after: recorded');
is_deeply(refund('failed', $NOW + 6), [0, 0, 1], 'failed after: recorded');
is(user_field(1, 'balance'), 700, 'nothing refunded');
is(task('refunded'), undef, 'not refunded');
is(log_len(), 0, 'nothing recorded');
is(task('completed'), $NOW, 'the first time it was seen completed stays');

# deleted, expired, cancelled before completion: refunded once

for my $st (qw(deleted expired cancelled)) {
    world();
    refund('in_progress');
    is_deeply(refund($st, $NOW + 1), [1, 300, 1], "$st: refunded");
    is(user_field(1, 'balance'), 1000, "$st: the balance back");
    is_deeply(open_tasks(), [], "$st: out of the unfinished ones");
}

# an unlimited key (nothing charged): the metered cost goes back, no money

world(charged => 0);
is_deeply(refund('failed'), [1, 0, 1], 'unlimited: refunded, 0 charged');
is(user_field(1, 'balance'), 700, 'unlimited: the balance unchanged');
is(user_field(1, 'used'), 0, 'unlimited: used back');
is(key_field(1, $TEST_KEY, 'quota'), 4700, 'unlimited: the quota unchanged');

# a key without a quota keeps none

world(quota => -1);
refund('failed');
is(key_field(1, $TEST_KEY, 'quota'), -1, 'no quota: still none');

# the history keeps the last 16 changes

world();
refund($_ % 2 ? 'in_progress' : 'queued', $NOW + $_) for 1 .. 20;
my @h = split / /, task('history');
is(scalar @h, 16, '16 entries');
is($h[0], ($NOW + 5) . ':in_progress', 'the oldest dropped');
is($h[-1], ($NOW + 20) . ':queued', 'the newest last');

# the older call (no status): failed

world();
is_deeply(refund(undef), [1, 300, 1], 'no status: failed, refunded');
is(task('status'), 'failed', 'recorded failed');

# an unknown task: nothing, and out of the index; a bad status: an error

world();
redis('ZADD', "${U}tasks:open", $NOW, 'video_gone');
is_deeply(refund('failed', $NOW, task => "${U}task:video_gone"), [0, 0, 0],
          'an unknown task: nothing');
is_deeply(open_tasks(), ['video_1'], 'and out of the index');
my $before = redis_snapshot();
ok(!eval { refund('fail ed'); 1 }, 'a status with a space: refused');
ok(!eval { refund('x' x 33); 1 }, 'a status of 33 characters: refused');
is(redis_snapshot(), $before, 'nothing changed');
