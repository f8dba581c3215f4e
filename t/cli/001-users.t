#!/usr/bin/perl
# ai-relay users: create, show, list, topup / deduct (exact money and the
# ledger), disable / enable, unlimited, group.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use AiRelayCli;

my ($rc, $out, $err, $j);

sub version { redis_cmd('GET', 'ar:{cfg}:version') // 0 }

# create

$out = cli_ok('users', 'create', 'alice', '--balance', '10.50');
like($out, qr/created user 1 \(alice\): status active, balance \$10\.50/,
     'create prints the user');

is_deeply(hgetall('ar:{u1}:user'),
          { name => 'alice', status => 'active', balance => '10500000',
            unlimited => '0', used => '0', requests => '0',
            created => $NOW, group => 'default' },
          'the user hash, balance in micro-USD');
is_deeply(smembers('ar:users'), ['1'], 'ar:users');
is(hgetall('ar:seq')->{user}, '1', 'ar:seq user');
is(version(), 1, 'create bumps ar:{cfg}:version');

my $ledger = redis_cmd('XRANGE', 'ar:{u1}:ledger', '-', '+');
is_deeply({ @{ $ledger->[0][1] } },
          { time => $NOW, op => 'create', amount => '10500000',
            balance => '10500000', note => 'initial balance' },
          'the initial balance is in the ledger');

$j = cli_json('users', 'create', 'bob', '--unlimited', '--group', 'vip',
              '--note', 'x');
is_deeply($j, { id => 2, name => 'bob', status => 'active', balance => 0,
                balance_usd => '$0.00', unlimited => JSON::PP::true,
                used => 0, used_usd => '$0.00', requests => 0,
                group => 'vip', created => $NOW },
          'create --json');
is(redis_cmd('EXISTS', 'ar:{u2}:ledger'), 0, 'no ledger entry for 0');

cli_ok('users', 'create', 'carol', '--id', '10', '--balance', '0.000001');
is(hgetall('ar:{u10}:user')->{balance}, '1', '--id, one micro-USD');
is(hgetall('ar:seq')->{user}, '10', 'ar:seq follows --id');
cli_ok('users', 'create', 'dan');
ok(hgetall('ar:{u11}:user')->{name} eq 'dan', 'next id after --id');
cli_ok('users', 'create', 'erin', '--id', '5');
is(hgetall('ar:seq')->{user}, '11', 'a lower --id keeps ar:seq');

# bad input: nothing changes

rejected(['users', 'create', 'alice'], 1, qr/a user named "alice" exists/);
rejected(['users', 'create', '123'], 1, qr/invalid user name "123"/);
rejected(['users', 'create', 'a b'], 1, qr/invalid user name/);
rejected(['users', 'create', 'a,b'], 1, qr/invalid user name/);
rejected(['users', 'create', 'x', '--balance', '1.0000001'], 1,
         qr/invalid --balance "1\.0000001"/);
rejected(['users', 'create', 'x', '--balance', '-1'], 1, qr/invalid --balance/);
rejected(['users', 'create', 'x', '--balance', 'ten'], 1, qr/invalid --balance/);
rejected(['users', 'create', 'x', '--balance', '1e3'], 1, qr/invalid --balance/);
rejected(['users', 'create', 'x', '--group', 'a b'], 1, qr/invalid --group/);
rejected(['users', 'create', 'x', '--id', '0'], 1, qr/invalid --id/);
rejected(['users', 'create', 'x', '--id', '1'], 1, qr/user id 1 is taken/);

# show and list

$out = cli_ok('users', 'show', 'alice');
like($out, qr/^balance:\s+\$10\.50 \(10500000 uUSD\)$/m, 'show by name');
$out = cli_ok('users', 'show', '1');
like($out, qr/^name:\s+alice$/m, 'show by id');
rejected(['users', 'show', 'nobody'], 1, qr/no user "nobody"/);
rejected(['users', 'show', '99'], 1, qr/no user with id 99/);

$j = cli_json('users', 'list');
is_deeply([ map { $_->{id} } @$j ], [1, 2, 5, 10, 11], 'list in id order');
is($j->[0]{keys}, 0, 'list counts keys');
$out = cli_ok('users', 'list');
like($out, qr/^1\s+alice\s+active\s+\$10\.50\s+no\s+default\s+0$/m,
     'list as a table');

# topup / deduct: exact, with the ledger

my $v = version();
cli_ok('users', 'topup', 'alice', '0.25', '--note', 'ticket 7');
is(hgetall('ar:{u1}:user')->{balance}, '10750000', 'topup 0.25');
cli_ok('users', 'deduct', '1', '0.000001');
is(hgetall('ar:{u1}:user')->{balance}, '10749999', 'deduct 0.000001');
is(version(), $v, 'money moves do not bump the config version');

$ledger = redis_cmd('XRANGE', 'ar:{u1}:ledger', '-', '+');
is(scalar @$ledger, 3, 'three ledger entries');
is_deeply({ @{ $ledger->[1][1] } },
          { time => $NOW, op => 'topup', amount => '250000',
            balance => '10750000', note => 'ticket 7' }, 'topup entry');
is_deeply({ @{ $ledger->[2][1] } },
          { time => $NOW, op => 'deduct', amount => '-1',
            balance => '10749999', note => '' }, 'deduct entry');

$j = cli_json('users', 'ledger', 'alice', '--limit', '2');
is(scalar @$j, 2, 'ledger --limit');
is($j->[0]{op}, 'deduct', 'newest first');
is($j->[0]{amount}, -1, 'amounts as integers');
$out = cli_ok('users', 'ledger', 'alice');
like($out, qr/topup\s+\$0\.25\s+\$10\.75\s+ticket 7/, 'ledger as a table');

rejected(['users', 'deduct', 'bob', '1'], 1,
         qr/the balance of user 2 is \$0\.00, less than \$1\.00/);
rejected(['users', 'topup', 'alice', '0'], 1, qr/invalid amount "0"/);
rejected(['users', 'topup', 'alice', '-5'], 1, qr/invalid amount/);
rejected(['users', 'topup', 'alice', '0.1234567'], 1, qr/invalid amount/);
rejected(['users', 'topup', 'alice', '1', '--allow-negative'], 2,
         qr/--allow-negative is for deduct/);
rejected(['users', 'topup', 'nobody', '1'], 1, qr/no user "nobody"/);
rejected(['users', 'ledger', 'alice', '--limit', '0'], 1, qr/invalid --limit/);

cli_ok('users', 'deduct', 'bob', '1.5', '--allow-negative');
is(hgetall('ar:{u2}:user')->{balance}, '-1500000', '--allow-negative');
$out = cli_ok('users', 'show', 'bob');
like($out, qr/^balance:\s+-\$1\.50/m, 'negative balance shown');

# status, unlimited, group

$v = version();
cli_ok('users', 'disable', 'alice');
is(hgetall('ar:{u1}:user')->{status}, 'disabled', 'disable');
cli_ok('users', 'enable', 'alice');
is(hgetall('ar:{u1}:user')->{status}, 'active', 'enable');
cli_ok('users', 'unlimited', 'alice', 'on');
is(hgetall('ar:{u1}:user')->{unlimited}, '1', 'unlimited on');
cli_ok('users', 'unlimited', 'alice', 'off');
is(hgetall('ar:{u1}:user')->{unlimited}, '0', 'unlimited off');
cli_ok('users', 'group', 'alice', 'gold');
is(hgetall('ar:{u1}:user')->{group}, 'gold', 'group');
is(version(), $v + 5, 'each change bumps the config version');
ok(!exists hgetall('ar:{u1}:user')->{edited},
   'no "edited" mark on users that were not imported');

rejected(['users', 'unlimited', 'alice', 'yes'], 1,
         qr/expected "on" or "off"/);
rejected(['users', 'disable', 'nobody'], 1, qr/no user "nobody"/);
rejected(['users', 'group', 'alice', 'a,b'], 1, qr/invalid group/);

done_testing();
