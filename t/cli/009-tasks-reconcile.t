#!/usr/bin/perl
# ai-relay tasks reconcile: the unfinished video tasks nobody polls,
# polled on their channel (a mock upstream) and settled with the module's
# REFUND script: a failed task refunded once however often the pass runs
# or a client's poll races it, an expired one refunded once, a completed
# one left as charged, --dry-run changing nothing, the channel's key
# never shown.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use AiRelayCli;
use AiRelayMockHttp;

# straight to 127.0.0.1, whatever proxy the environment names
delete @ENV{qw(http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy
               ALL_PROXY)};

$ENV{AI_RELAY_NOW} = $NOW;

my ($rc, $out, $err, $j, $reqs);
my $json = JSON::PP->new->canonical;
my $day = '20260101';          # $NOW's
my $chan_key = 'sk-chan-secret-key-9999';

# the upstream: each task's id says what it is
my %upstream = (
    video_failed   => [200, { status => 'failed',
                              error => { code => 'internal_error',
                                         message => 'x' } }],
    video_race     => [200, { status => 'failed' }],
    video_done     => [200, { status => 'completed', progress => 100,
                              expires_at => $NOW + 3600 }],
    video_slow     => [200, { status => 'in_progress', progress => 10 }],
    video_young    => [200, { status => 'in_progress', progress => 10 }],
    video_dropped  => [200, { status => 'queued', expires_at => $NOW - 60 }],
    video_cancel   => [200, { status => 'cancelled' }],
    video_unknown  => [404, { error => { message => 'Video not found',
                                         type => 'invalid_request_error' } }],
    video_broken   => [500, { error => { message => 'oops' } }],
);

# tasks of the other APIs, on their own poll paths and in their own words
my %other = (
    '/v1/video/generations/gen_failed' =>
        [200, { task_id => 'gen_failed', status => 'failed' }],
    '/api/v1/tasks/ds-ok' =>
        [200, { request_id => 'r1', output => { task_id => 'ds-ok',
                                                task_status => 'SUCCEEDED' } }],
    '/api/v1/tasks/ds-cancel' =>
        [200, { request_id => 'r2', output => { task_id => 'ds-cancel',
                                                task_status => 'CANCELED' } }],
);

my $mock = mock_http(sub {
    my ($req) = @_;
    if (my $o = $other{$req->{path}}) {
        return ($o->[0], { 'Content-Type' => 'application/json' },
                $json->encode($o->[1]));
    }
    my ($id) = $req->{path} =~ m{^/v1/videos/([\w-]+)$};
    my $a = $upstream{$id // ''} // [404, { error => { message => 'no' } }];
    my %body = (%{ $a->[1] }, $a->[0] == 200 ? (id => $id,
                object => 'video') : ());
    return ($a->[0], { 'Content-Type' => 'application/json' },
            $json->encode(\%body));
});

my $base = "http://127.0.0.1:$mock->{port}";
my $refused = AiRelayMockHttp::free_port();

cli_ok('users', 'create', 'alice');
cli_ok('users', 'create', 'bob');
cli_ok('channels', 'create', '--provider', 'openai-compatible', '--name',
       'vid', '--base-url', $base, '--key', $chan_key, '--models', 'sora-2');
cli_ok('channels', 'create', '--provider', 'openai-compatible', '--name',
       'down', '--base-url', "http://127.0.0.1:$refused", '--key',
       'sk-down-key-0000', '--models', 'sora-2');

my $key = 'sk-alice-test-key-0001';
my $kh = sha256_hex($key);

# what the relay leaves when the upstream accepted a task: the charge
# (balance, key quota, used, today's counters, a record) and the task
sub submitted {
    my ($uid, $id, %o) = @_;
    my $cost = $o{cost} // 300_000;
    my $created = $o{created} // $NOW - 600;
    redis_cmd('HINCRBY', "ar:{u$uid}:user", 'balance', -$cost);
    redis_cmd('HINCRBY', "ar:{u$uid}:user", 'used', $cost);
    redis_cmd('HINCRBY', "ar:{u$uid}:key:$kh", 'quota', -$cost);
    redis_cmd('HINCRBY', "ar:{u$uid}:key:$kh", 'used', $cost);
    redis_cmd('HINCRBY', "ar:{u$uid}:stats:$day", 'cost', $cost);
    redis_cmd('HINCRBY', "ar:{u$uid}:stats:$day", 'key:1:cost', $cost);
    redis_cmd('HINCRBY', "ar:{u$uid}:stats:$day", 'model:sora-2:cost', $cost);
    redis_cmd('XADD', "ar:{u$uid}:log", '*', 'r', $json->encode({
                  request_id => "sub-$id", task => $id, model => 'sora-2',
                  cost => $cost }));
    redis_cmd('HSET', "ar:{u$uid}:task:$id", channel => $o{channel} // 1,
              model => 'sora-2', key => $kh, key_id => 1, cost => $cost,
              charged => $cost, request => "sub-$id", created => $created,
              $o{api} ? (api => $o{api}) : ());
    redis_cmd('ZADD', "ar:{u$uid}:tasks:open", $created, $id);
}

sub fresh {
    redis_cmd('DEL', map {; ("ar:{u$_}:user", "ar:{u$_}:log",
                             "ar:{u$_}:stats:$day", "ar:{u$_}:tasks:open") }
                     1, 2);
    my $tasks = redis_cmd('KEYS', 'ar:{u*}:task:*');
    redis_cmd('DEL', @$tasks) if @$tasks;
    redis_cmd('HSET', 'ar:{u1}:user', name => 'alice', status => 'active',
              balance => 10_000_000, used => 0);
    redis_cmd('HSET', 'ar:{u2}:user', name => 'bob', status => 'active',
              balance => 10_000_000, used => 0);
    redis_cmd('HSET', "ar:{u1}:key:$kh", id => 1, quota => 5_000_000,
              used => 0, status => 'active');
}

sub records {
    my ($uid) = @_;
    return map { $json->decode($_->[1][1]) }
           @{ redis_cmd('XRANGE', "ar:{u$uid}:log", '-', '+') };
}

sub money {
    my ($uid) = @_;
    my $st = hgetall("ar:{u$uid}:stats:$day");
    return { balance => redis_cmd('HGET', "ar:{u$uid}:user", 'balance'),
             used => redis_cmd('HGET', "ar:{u$uid}:user", 'used'),
             quota => redis_cmd('HGET', "ar:{u$uid}:key:$kh", 'quota'),
             key_used => redis_cmd('HGET', "ar:{u$uid}:key:$kh", 'used'),
             cost => $st->{cost} // 0, key_cost => $st->{'key:1:cost'} // 0,
             model_cost => $st->{'model:sora-2:cost'} // 0 };
}

my $untouched = { balance => 10_000_000, used => 0, quota => 5_000_000,
                  key_used => 0, cost => 0, key_cost => 0, model_cost => 0 };
my $charged = { balance => 9_700_000, used => 300_000, quota => 4_700_000,
                key_used => 300_000, cost => 300_000, key_cost => 300_000,
                model_cost => 300_000 };

sub open_tasks { return redis_cmd('ZRANGE', "ar:{u$_[0]}:tasks:open", 0, -1) }

sub task { return redis_cmd('HGET', "ar:{u$_[0]}:task:$_[1]", $_[2]) }

# ---- a failed task nobody polled: refunded once, however often the pass
# runs

fresh();
submitted(1, 'video_failed');
is_deeply(money(1), $charged, 'failed: charged at first');
mock_clear($mock);

($rc, $out, $err) = cli('tasks', 'reconcile');
is($rc, 0, 'reconcile exits 0') or diag($err);
like($out, qr/^USER\s+ID\s+CHANNEL\s+HTTP\s+UPSTREAM\s+ACTION$/m, 'a header');
like($out, qr/^1\s+video_failed\s+1\s+200\s+failed\s+refunded \$0\.30 \(failed\)$/m,
     'failed: refunded');
like($out, qr/^1 tasks polled, 1 refunded \(\$0\.30\), 0 left/m, 'a summary');
unlike($out . $err, qr/\Q$chan_key\E/, "the channel's key is never shown");
is_deeply(money(1), $untouched,
          'balance, key quota, used and the day\'s counters back');
my @recs = records(1);
is(scalar @recs, 2, 'the submit and the refund recorded');
is($recs[-1]{cost}, -300_000, 'the refund record: negative cost');
is($recs[-1]{task}, 'video_failed', '... the task');
is($recs[-1]{task_status}, 'failed', '... why');
is($recs[-1]{usage_source}, 'refund', '... a refund');
is($recs[-1]{request_id}, "reconcile-$NOW", '... by reconcile');
is(task(1, 'video_failed', 'status'), 'failed', 'the task says failed');
is(task(1, 'video_failed', 'refunded'), 1, 'and refunded');
is(task(1, 'video_failed', 'history'), "$NOW:failed", 'its history');
is_deeply(open_tasks(1), [], 'out of the index of unfinished tasks');

$reqs = mock_requests($mock);
is(scalar @$reqs, 1, 'one poll');
is("$reqs->[0]{method} $reqs->[0]{path}", 'GET /v1/videos/video_failed',
   'GET /v1/videos/{id} on the channel');
is($reqs->[0]{headers}{authorization}, "Bearer $chan_key",
   "with the channel's key");

($rc, $out) = cli('tasks', 'reconcile');
is($rc, 0, 'a second pass');
like($out, qr/^0 tasks polled, 0 refunded/m, 'finds nothing unfinished');
is_deeply(money(1), $untouched, 'refunded once');
is(scalar(records(1)), 2, 'one refund record');

# ---- a client's poll and the pass both see it failed: once

fresh();
submitted(1, 'video_race');
# the pass read the index; the client's poll refunds (the module's REFUND,
# run here as the module runs it) ...
cli_ok('tasks', 'reconcile', '--user', 'alice');
is_deeply(money(1), $untouched, 'race: refunded by the first');
# ... and the other one, having read the index before, polls it too
redis_cmd('ZADD', 'ar:{u1}:tasks:open', $NOW - 600, 'video_race');
($rc, $out) = cli('tasks', 'reconcile', '--user', 'alice');
like($out, qr/^1\s+video_race\s+1\s+200\s+failed\s+unchanged \(failed\)$/m,
     'race: the second finds it refunded');
is_deeply(money(1), $untouched, 'race: refunded once');
is(scalar(records(1)), 2, 'race: one refund record');
is_deeply(open_tasks(1), [], 'race: out of the index');

# ---- expired: unfinished past --expire-after, or past the upstream's
# expires_at, or unknown upstream past the deadline

fresh();
submitted(1, 'video_slow', created => $NOW - 25 * 3600);
submitted(1, 'video_young', created => $NOW - 3600);
submitted(1, 'video_dropped', created => $NOW - 3600);
submitted(1, 'video_unknown', created => $NOW - 90_000);
($rc, $out, $err) = cli('tasks', 'reconcile');
is($rc, 0, 'expire: exits 0') or diag($err);
like($out, qr/^1\s+video_slow\s+1\s+200\s+in_progress\s+refunded \$0\.30 \(expired\)$/m,
     'in progress after 25 h: expired, refunded');
like($out, qr/^1\s+video_young\s+1\s+200\s+in_progress\s+recorded in_progress$/m,
     'in progress after 1 h: recorded');
like($out, qr/^1\s+video_dropped\s+1\s+200\s+queued\s+refunded \$0\.30 \(expired\)$/m,
     "queued past the upstream's expires_at: expired");
like($out, qr/^1\s+video_unknown\s+1\s+404\s+-\s+refunded \$0\.30 \(expired\)$/m,
     'unknown upstream after 25 h: expired');
is(money(1)->{balance}, 10_000_000 - 300_000, 'three refunded, one still charged');
is(money(1)->{quota}, 5_000_000 - 300_000, 'key quota likewise');
is(money(1)->{cost}, 300_000, "the day's cost likewise");
is(task(1, 'video_slow', 'status'), 'expired', 'the task says expired');
is(task(1, 'video_young', 'status'), 'in_progress', 'the young one in_progress');
is_deeply(open_tasks(1), ['video_young'], 'only the young one stays unfinished');
is(scalar(records(1)), 4 + 3, 'three refund records');

($rc, $out) = cli('tasks', 'reconcile', '--expire-after', '30m');
like($out, qr/^1\s+video_young\s+1\s+200\s+in_progress\s+refunded \$0\.30 \(expired\)$/m,
     '--expire-after 30m: the young one expires too');
like($out, qr/^1 tasks polled, 1 refunded/m, 'the others are not polled again');
is_deeply(money(1), $untouched, 'every expired task refunded once');
is(scalar(records(1)), 4 + 4, 'one refund record each');
($rc, $out) = cli('tasks', 'reconcile', '--expire-after', '1s');
like($out, qr/^0 tasks polled/m, 'nothing left');

# ---- completed: untouched (recorded, out of the index)

fresh();
submitted(1, 'video_done');
my $before = money(1);
($rc, $out) = cli('tasks', 'reconcile', '--expire-after', '1s');
like($out, qr/^1\s+video_done\s+1\s+200\s+completed\s+recorded completed$/m,
     'completed: recorded, even past the deadline');
is_deeply(money(1), $before, 'completed: nothing refunded');
is(scalar(records(1)), 1, 'completed: no record');
is(task(1, 'video_done', 'status'), 'completed', 'completed: its status');
is(task(1, 'video_done', 'refunded'), undef, 'completed: not refunded');
is_deeply(open_tasks(1), [], 'completed: out of the index');

# ---- cancelled; another user; --older-than; --json

fresh();
submitted(1, 'video_cancel', created => $NOW - 100);
submitted(2, 'video_failed', created => $NOW - 7200);
($rc, $out) = cli('tasks', 'reconcile', '--older-than', '1h');
like($out, qr/^2\s+video_failed\s+1\s+200\s+failed\s+refunded/m,
     "--older-than 1h: bob's two-hour-old task");
unlike($out, qr/video_cancel/, '... not the new one');
$j = cli_json('tasks', 'reconcile', '--user', 'alice');
is(scalar @$j, 1, 'json: one task');
is_deeply($j->[0], { user => '1', id => 'video_cancel', channel => '1',
                     http => 200, upstream_status => 'cancelled',
                     status => 'cancelled', action => 'refunded $0.30 (cancelled)',
                     refunded => 300_000, error => undef },
          'json: cancelled, refunded');
is(money(1)->{balance}, 10_000_000, 'cancelled: refunded');
is(money(2)->{balance}, 10_000_000, "bob's: refunded");

# ---- an upstream that does not answer, or errs: the task is left as it
# is, exit 1

fresh();
submitted(1, 'video_down', channel => 2, created => $NOW - 90_000);
submitted(1, 'video_broken', created => $NOW - 90_000);
$before = state();
($rc, $out, $err) = cli('tasks', 'reconcile');
is($rc, 1, 'no answer: exits 1');
like($out, qr/^1\s+video_down\s+2\s+-\s+-\s+left: no answer: /m,
     'a refused connection: left');
like($out, qr/^1\s+video_broken\s+1\s+500\s+-\s+left: upstream error: the upstream answered 500$/m,
     'a 500: left');
like($err, qr/2 of 2 tasks could not be polled/, 'says so');
is_deeply(state(), $before, 'nothing changed');

# ---- --dry-run: polls and tells, changes nothing

fresh();
submitted(1, 'video_failed');
submitted(1, 'video_slow', created => $NOW - 25 * 3600);
submitted(1, 'video_young', created => $NOW - 3600);
$before = snapshot();
($rc, $out) = cli('tasks', 'reconcile', '--dry-run');
is($rc, 0, 'dry run exits 0');
like($out, qr/^1\s+video_failed\s+.*would refund \$0\.30 \(failed\)$/m,
     'dry run: would refund the failed one');
like($out, qr/^1\s+video_slow\s+.*would refund \$0\.30 \(expired\)$/m,
     'dry run: would expire the old one');
like($out, qr/^1\s+video_young\s+.*would record in_progress$/m,
     'dry run: would record the young one');
like($out, qr/dry run: nothing changed/, 'dry run: says so');
is_deeply(snapshot(), $before, 'dry run: nothing changed');

# ---- tasks show prints the history

$out = cli_ok('tasks', 'reconcile', '--user', '1');
$out = cli_ok('tasks', 'show', '--user', 'alice', 'video_failed');
like($out, qr/^state:\s+failed, refunded$/m, 'show: the state');
like($out, qr/^history:\n\s+2026-01-01.*\s+failed$/m, 'show: the history');

# ---- the generic video API and DashScope's tasks: their poll paths,
# their status words; a task of an API this version does not know is left

fresh();
submitted(1, 'gen_failed', api => 'generation');
submitted(1, 'ds-ok', api => 'dashscope');
submitted(1, 'ds-cancel', api => 'dashscope');
submitted(1, 'odd_task', api => 'suno');
mock_clear($mock);
($rc, $out, $err) = cli('tasks', 'reconcile');
is($rc, 1, 'other APIs: exits 1 for the one it cannot poll');
like($out, qr/^1\s+gen_failed\s+1\s+200\s+failed\s+refunded \$0\.30 \(failed\)$/m,
     'generic: failed, refunded');
like($out, qr/^1\s+ds-ok\s+1\s+200\s+completed\s+recorded completed$/m,
     'DashScope: SUCCEEDED is completed');
like($out, qr/^1\s+ds-cancel\s+1\s+200\s+cancelled\s+refunded \$0\.30 \(cancelled\)$/m,
     'DashScope: CANCELED is cancelled, refunded');
like($out, qr/^1\s+odd_task\s+1\s+-\s+-\s+left: .*API "suno"/m,
     'an unknown API: left');
$reqs = mock_requests($mock);
is_deeply([sort map { "$_->{method} $_->{path}" } @$reqs],
          ['GET /api/v1/tasks/ds-cancel', 'GET /api/v1/tasks/ds-ok',
           'GET /v1/video/generations/gen_failed'],
          'each polled on its own path');
is(money(1)->{balance}, 10_000_000 - 2 * 300_000, 'two refunded, two still charged');
is_deeply(open_tasks(1), ['odd_task'], 'the unknown one stays unfinished');

# ---- usage

rejected(['tasks', 'reconcile', '--older-than', 'soon'], 2,
         qr/invalid --older-than "soon"/);
rejected(['tasks', 'reconcile', '--expire-after', '0'], 2,
         qr/invalid --expire-after "0"/);
rejected(['tasks', 'reconcile', '--user', 'carol'], 1, qr/no user "carol"/);

done_testing();
