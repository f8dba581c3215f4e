#!/usr/bin/perl
# ai-relay tasks: the video tasks the relay keeps for a user, as it
# writes them when an upstream accepts one and when a poll refunds one.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use AiRelayCli;

my ($out, $j);

cli_ok('users', 'create', 'alice');
cli_ok('users', 'create', 'bob');

# what the relay writes (src/ngx_ai_relay_billing.c)
redis_cmd('HSET', 'ar:{u1}:task:video_b', channel => 3, model => 'sora-2',
          key => 'ab' x 32, key_id => 1, cost => 500000, charged => 500000,
          request => 'r1', created => 1764900000);
redis_cmd('HSET', 'ar:{u1}:task:video_a', channel => 3, model => 'sora-2',
          key => 'ab' x 32, key_id => 1, cost => 300000, charged => 300000,
          request => 'r2', created => 1764900100, refunded => 1,
          status => 'failed');
redis_cmd('HSET', 'ar:{u2}:task:video_c', channel => 4, model => 'sora-2',
          cost => 1, charged => 1, created => 1764900200);

$out = cli_ok('tasks', 'list', '--user', 'alice');
like($out, qr/^video_a\s+sora-2\s+3\s+\$0\.30\s+failed, refunded\s/m,
     'a refunded task');
like($out, qr/^video_b\s+sora-2\s+3\s+\$0\.50\s+charged\s/m,
     'a charged task');
unlike($out, qr/video_c/, "another user's task is not listed");
ok(index($out, 'video_a') < index($out, 'video_b'), 'sorted by id');

$j = decode_json(cli_ok('--json', 'tasks', 'list', '--user', '1'));
is(scalar @$j, 2, 'json: two tasks');
is($j->[0]{id}, 'video_a', 'json: id');
is($j->[0]{refunded}, JSON::PP::true, 'json: refunded');
is($j->[0]{status}, 'failed', 'json: the last status seen');
is($j->[1]{status}, '', 'json: none seen yet');
is($j->[1]{cost}, 500000, 'json: cost in micro-USD');

$out = cli_ok('tasks', 'show', '--user', 'alice', 'video_a');
like($out, qr/^state:\s+failed, refunded$/m, 'show: state');
like($out, qr/^cost:\s+\$0\.30$/m, 'show: cost');
like($out, qr/^\s+request\s+r2$/m, 'show: the submit request');

rejected(['tasks', 'show', '--user', 'bob', 'video_a'], 1,
         qr/no task "video_a" of user 2/);
rejected(['tasks', 'list'], 2, qr/--user is required/);
rejected(['tasks', 'list', '--user', 'carol'], 1, qr/no user "carol"/);

done_testing();
