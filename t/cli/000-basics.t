#!/usr/bin/perl
# ai-relay: help, usage errors, exit codes, Redis address / password / db.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use AiRelayCli;

my ($rc, $out, $err);

# help

($rc, $out) = cli('--help');
is($rc, 0, '--help exits 0');
like($out, qr/ai-relay users create NAME/, '--help lists the commands');
like($out, qr/ai-relay import --from one-api\|new-api/, '... import too');

($rc, $out) = cli('--version');
like($out, qr/^ai-relay \d+\.\d+\.\d+$/m, '--version');

for my $cmd (['users', 'create'], ['users', 'show'], ['users', 'list'],
             ['users', 'topup'], ['users', 'deduct'], ['users', 'disable'],
             ['users', 'enable'], ['users', 'unlimited'], ['users', 'group'],
             ['users', 'ledger'], ['keys', 'create'], ['keys', 'add'],
             ['keys', 'list'], ['keys', 'show'], ['keys', 'disable'],
             ['keys', 'enable'], ['keys', 'expire'], ['keys', 'models'],
             ['keys', 'limits'], ['keys', 'quota'], ['keys', 'rotate'],
             ['keys', 'delete'], ['models', 'set'], ['models', 'alias'],
             ['models', 'list'], ['models', 'show'], ['models', 'remove'],
             ['channels', 'create'], ['channels', 'update'],
             ['channels', 'list'], ['channels', 'show'],
             ['channels', 'enable'], ['channels', 'disable'],
             ['channels', 'remove'], ['prices', 'set'], ['prices', 'list'],
             ['prices', 'show'], ['prices', 'remove'], ['usage'],
             ['records'], ['import'])
{
    ($rc, $out) = cli(@$cmd, '--help');
    is($rc, 0, "@$cmd --help exits 0");
    like($out, qr/^Usage: ai-relay \Q@$cmd\E/, "@$cmd --help shows usage");
}

($rc, $out) = cli('help', 'keys', 'rotate');
like($out, qr/Usage: ai-relay keys rotate KEY/, 'help keys rotate');

($rc, $out) = cli('users', '--help');
is($rc, 0, 'users --help');
like($out, qr/users topup USER USD/, 'users --help lists users commands');

# usage errors: exit 2, nothing touched

rejected([], 2, qr/Usage/);
rejected(['frob'], 2, qr/unknown command "frob"/);
rejected(['users'], 2, qr/users create/);
rejected(['users', 'frob'], 2, qr/unknown command "users frob"/);
rejected(['users', 'create', 'x', '--frob'], 2,
         qr/unknown option "--frob"/);
rejected(['users', 'create', 'x', '--balance'], 2,
         qr/option "--balance" needs a value/);
rejected(['users', 'create', 'x', '--unlimited=1'], 2,
         qr/takes no value/);
rejected(['users', 'create', 'x', '--balance', '1', '--balance', '2'], 2,
         qr/given twice/);
rejected(['users', 'create'], 2, qr/missing arguments/);
rejected(['users', 'create', 'a', 'b'], 2, qr/too many arguments/);
rejected(['--frob', 'users', 'list'], 2, qr/unknown option "--frob"/);

# Redis address

rejected(['users', 'list', '--redis', '127.0.0.1:99999'], 2,
         qr/invalid Redis address/);
($rc, $out, $err) = cli('users', 'list', '--redis', '127.0.0.1:1');
is($rc, 3, 'unreachable Redis exits 3');
like($err, qr/cannot connect to Redis at 127\.0\.0\.1:1/, '... and says so');

{
    local $ENV{AI_RELAY_REDIS} = '127.0.0.1:1';
    ($rc, $out, $err) = cli('users', 'list');
    is($rc, 3, 'AI_RELAY_REDIS is used');
    ($rc) = cli('users', 'list', '--redis',
                '127.0.0.1:' . AiRelayCli::redis_port());
    is($rc, 0, '--redis wins over AI_RELAY_REDIS');
}

{
    local $ENV{AI_RELAY_REDIS} = '127.0.0.1:1';
    ($rc, $out, $err) = cli('--json', '--redis',
                            '127.0.0.1:' . AiRelayCli::redis_port(),
                            'users', 'list');
    is($rc, 0, 'global options before the command') or diag($err);
    is($out, "[]\n", '... --json too');
    ($rc) = cli('--redis=127.0.0.1:1', 'users', 'list');
    is($rc, 3, '--redis=ADDR before the command');
}

{
    local $ENV{AI_RELAY_REDIS} = 'unix:' . AiRelayCli::redis_sock();
    ($rc, $out, $err) = cli('users', 'create', 'viaunix');
    is($rc, 0, 'unix:/path works') or diag($err);
}

is(hgetall('ar:{u1}:user')->{name}, 'viaunix', 'user written via unix');

# database selection

($rc, $out, $err) = cli('users', 'create', 'indb2', '--redis-db', '2');
is($rc, 0, '--redis-db 2') or diag($err);
{
    local $ENV{AI_RELAY_REDIS_DB} = '2';
    ($rc, $out) = cli('users', 'show', 'indb2');
    is($rc, 0, 'AI_RELAY_REDIS_DB=2 sees it');
    ($rc, $out) = cli('users', 'show', 'indb2', '--redis-db', '0');
    is($rc, 1, '--redis-db 0 wins and does not');
}
redis_cmd('SELECT', 2);
is(hgetall('ar:{u1}:user')->{name}, 'indb2', 'written to db 2');
redis_cmd('FLUSHDB');
redis_cmd('SELECT', 0);

{
    local $ENV{AI_RELAY_REDIS_DB} = 'x';
    rejected(['users', 'list'], 2, qr/invalid AI_RELAY_REDIS_DB/);
}
rejected(['users', 'list', '--redis-db', '-1'], 2, qr/invalid --redis-db/);

# password: a Redis that wants one

redis_cmd('CONFIG', 'SET', 'requirepass', 'sesame');
redis_cmd('AUTH', 'sesame');
($rc, $out, $err) = cli('users', 'list');
is($rc, 3, 'no password: exit 3');
like($err, qr/NOAUTH|Authentication required/i, '... Redis says why');
($rc, $out, $err) = cli('users', 'list', '--redis-password', 'wrong');
is($rc, 3, 'wrong password: exit 3');
like($err, qr/AUTH failed/, '... AUTH failed');
{
    local $ENV{AI_RELAY_REDIS_PASSWORD} = 'sesame';
    ($rc, $out, $err) = cli('users', 'list');
    is($rc, 0, 'AI_RELAY_REDIS_PASSWORD') or diag($err);
}
($rc) = cli('users', 'list', '--redis-password', 'sesame');
is($rc, 0, '--redis-password');
redis_cmd('CONFIG', 'SET', 'requirepass', '');

# --json errors

($rc, $out, $err) = cli('users', 'show', 'nobody', '--json');
is($rc, 1, 'not found: exit 1');
is_deeply(decode_json($out), { error => { message => 'no user "nobody"',
                                          exit => 1 } },
          '--json error object on stdout');
like($err, qr/^ai-relay: no user "nobody"$/m, '... and the message on stderr');

done_testing();
