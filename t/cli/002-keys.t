#!/usr/bin/perl
# ai-relay keys: create (shown once, stored as SHA-256), add, list, show,
# disable / enable, expire, models, limits, quota, rotate, delete.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use AiRelayCli;

my ($rc, $out, $err, $j);

cli_ok('users', 'create', 'alice', '--balance', '5');
cli_ok('users', 'create', 'bob');

# create: the key on stdout once, only its hash stored

($rc, $out, $err) = cli('keys', 'create', '--user', 'alice', '--name',
                        'laptop', '--models', 'gpt-4o, gpt-4o-mini,gpt-4o',
                        '--rpm', '60', '--tpm', '100000', '--expires',
                        '+30d', '--quota', '2.5');
is($rc, 0, 'keys create');
like($out, qr/^sk-[A-Za-z0-9]{48}\n\z/, 'stdout is the new key alone');
like($err, qr/created key 1 for user 1 \(alice\); the key above is shown only/,
     'stderr says it is shown once');
chomp(my $key1 = $out);
my $h1 = sha256_hex($key1);

my $mask1 = substr($key1, 0, 5) . "\xe2\x80\xa6" . substr($key1, -4);
is_deeply(hgetall("ar:{u1}:key:$h1"),
          { id => '1', name => 'laptop', masked => $mask1,
            status => 'active', expires => $NOW + 30 * 86400,
            models => 'gpt-4o,gpt-4o-mini', rpm => '60', tpm => '100000',
            quota => '2500000', unlimited => '0', used => '0',
            requests => '0', created => $NOW },
          'the key hash: masked, models cleaned, quota in micro-USD');
is(redis_cmd('GET', "ar:keyidx:$h1"), '1', 'ar:keyidx -> user');
is(redis_cmd('GET', 'ar:keyid:1'), "1:$h1", 'ar:keyid -> user:sha');
is_deeply(smembers('ar:{u1}:keys'), [$h1], 'the user key set');

$j = cli_json('keys', 'create', '--user', '2', '--expires', '2030-01-02');
like($j->{key}, qr/^sk-[A-Za-z0-9]{48}$/, '--json has the key');
is($j->{id}, 2, '... and its id');
is($j->{expires}, 1893542400, '--expires as a date (UTC)');
is($j->{quota}, -1, 'no quota by default');
my $key2 = $j->{key};

# add: an existing plaintext key

$out = cli_ok('keys', 'add', '--user', 'bob', '--key', 'sk-demo-0123456789',
              '--unlimited', '--id', '7');
like($out, qr/registered key 7 \(sk-de\xe2\x80\xa66789\) for user 2 \(bob\)/,
     'keys add');
my $h7 = sha256_hex('sk-demo-0123456789');
is(hgetall("ar:{u2}:key:$h7")->{unlimited}, '1', '--unlimited');
is(hgetall('ar:seq')->{key}, '7', 'ar:seq key follows --id');

# bad input: nothing changes

rejected(['keys', 'add', '--user', 'alice', '--key', 'sk-demo-0123456789'],
         1, qr/already registered/);
rejected(['keys', 'add', '--user', 'alice', '--key', 'short'], 1,
         qr/invalid --key/);
rejected(['keys', 'add', '--user', 'alice', '--key', 'sk-has space-xx'], 1,
         qr/invalid --key/);
rejected(['keys', 'add', '--user', 'alice'], 2, qr/--key is required/);
rejected(['keys', 'create', '--user', 'alice', '--key', 'sk-x-123456789'], 2,
         qr/use "keys add --key"/);
rejected(['keys', 'create'], 2, qr/--user is required/);
rejected(['keys', 'create', '--user', 'nobody'], 1, qr/no user "nobody"/);
rejected(['keys', 'create', '--user', 'alice', '--expires', '2001-01-01'], 1,
         qr/in the past/);
rejected(['keys', 'create', '--user', 'alice', '--expires', '2030-02-30'], 1,
         qr/invalid --expires/);
rejected(['keys', 'create', '--user', 'alice', '--expires', 'soon'], 1,
         qr/invalid --expires/);
rejected(['keys', 'create', '--user', 'alice', '--rpm', '-1'], 1,
         qr/invalid --rpm/);
rejected(['keys', 'create', '--user', 'alice', '--tpm', 'x'], 1,
         qr/invalid --tpm/);
rejected(['keys', 'create', '--user', 'alice', '--quota', '0.0000001'], 1,
         qr/invalid --quota/);
rejected(['keys', 'create', '--user', 'alice', '--models', 'a b'], 1,
         qr/invalid --models/);
rejected(['keys', 'add', '--user', 'alice', '--key', 'sk-other-123456',
          '--id', '7'], 1, qr/key id 7 is taken/);

# list and show: never the plaintext

$out = cli_ok('keys', 'list');
unlike($out, qr/\Q$key1\E|\Q$key2\E|sk-demo-0123456789/,
       'list never shows a plaintext key');
like($out, qr/^1\s+1\s+\Q$mask1\E\s+active/m, 'list shows the masked key');
$j = cli_json('keys', 'list', '--user', 'alice');
is(scalar @$j, 1, 'list --user');

for my $ref ('1', $key1, $h1) {
    $j = cli_json('keys', 'show', $ref);
    is($j->{id}, 1, "show by " . (length $ref > 40 ? 'key or hash' : 'id'));
}
is($j->{sha256}, $h1, 'show has the hash');
is($j->{user_name}, 'alice', 'show has the owner');
rejected(['keys', 'show', '99'], 1, qr/no key with id 99/);
rejected(['keys', 'show', 'sk-unknown-1234567'], 1, qr/no such key/);

# state changes

cli_ok('keys', 'disable', '1');
is(hgetall("ar:{u1}:key:$h1")->{status}, 'disabled', 'disable');
cli_ok('keys', 'enable', $key1);
is(hgetall("ar:{u1}:key:$h1")->{status}, 'active', 'enable by plaintext');

cli_ok('keys', 'expire', '1');
is_deeply([ @{ hgetall("ar:{u1}:key:$h1") }{qw(status expires)} ],
          ['expired', $NOW], 'expire now');
cli_ok('keys', 'expire', '1', '2031-05-06T07:08:09Z');
is_deeply([ @{ hgetall("ar:{u1}:key:$h1") }{qw(status expires)} ],
          ['active', 1935817689], 'expire later re-activates');
cli_ok('keys', 'expire', '1', 'never');
is(hgetall("ar:{u1}:key:$h1")->{expires}, '0', 'expire never');
rejected(['keys', 'expire', '1', 'tomorrow'], 1, qr/invalid time/);

cli_ok('keys', 'models', '1', 'a,b,a');
is(hgetall("ar:{u1}:key:$h1")->{models}, 'a,b', 'models');
cli_ok('keys', 'models', '1', '--all');
is(hgetall("ar:{u1}:key:$h1")->{models}, '', 'models --all');
rejected(['keys', 'models', '1'], 2, qr/either a model list or --all/);
rejected(['keys', 'models', '1', 'a', '--all'], 2, qr/either/);
rejected(['keys', 'models', '1', ','], 1, qr/invalid model list/);

cli_ok('keys', 'limits', '1', '--rpm', '5');
is_deeply([ @{ hgetall("ar:{u1}:key:$h1") }{qw(rpm tpm)} ], ['5', '100000'],
          'limits --rpm only');
cli_ok('keys', 'limits', '1', '--rpm', '0', '--tpm', '0');
is_deeply([ @{ hgetall("ar:{u1}:key:$h1") }{qw(rpm tpm)} ], ['0', '0'],
          'limits off');
rejected(['keys', 'limits', '1'], 2, qr/give --rpm and\/or --tpm/);

cli_ok('keys', 'quota', '1', '0.75');
is(hgetall("ar:{u1}:key:$h1")->{quota}, '750000', 'quota');
cli_ok('keys', 'quota', '1', 'none');
is(hgetall("ar:{u1}:key:$h1")->{quota}, '-1', 'quota none');
rejected(['keys', 'quota', '1', 'lots'], 1, qr/invalid quota/);
rejected(['keys', 'disable', '99'], 1, qr/no key with id 99/);

# rotate: new key, same id and counters; the old one gone at once

redis_cmd('HSET', "ar:{u1}:key:$h1", 'used', '1234', 'requests', '3');
redis_cmd('HSET', 'ar:{u1}:res', 'req-1', "9999|500|0|$h1", 'req-2', "9999|7|0|$h7");
redis_cmd('HSET', "ar:{u1}:rl:$h1", 'm', '1', 'r', '1', 't', '1');

($rc, $out, $err) = cli('keys', 'rotate', '1');
is($rc, 0, 'rotate');
like($out, qr/^sk-[A-Za-z0-9]{48}\n\z/, 'the new key on stdout');
like($err, qr/rotated key 1 of user 1; the old key no longer works/,
     'stderr says what happened');
chomp(my $new1 = $out);
my $n1 = sha256_hex($new1);
isnt($new1, $key1, 'a different key');

is(redis_cmd('EXISTS', "ar:{u1}:key:$h1"), 0, 'old record gone');
is(redis_cmd('EXISTS', "ar:keyidx:$h1"), 0, 'old index gone');
is(redis_cmd('EXISTS', "ar:{u1}:rl:$h1"), 0, 'old rate counter gone');
is(redis_cmd('GET', "ar:keyidx:$n1"), '1', 'new index');
is(redis_cmd('GET', 'ar:keyid:1'), "1:$n1", 'ar:keyid points to it');
is_deeply(smembers('ar:{u1}:keys'), [$n1], 'key set swapped');
my $r = hgetall("ar:{u1}:key:$n1");
is_deeply([ @$r{qw(id name used requests)} ], ['1', 'laptop', '1234', '3'],
          'id, settings and counters kept');
is($r->{masked}, substr($new1, 0, 5) . "\xe2\x80\xa6" . substr($new1, -4),
   'masked form of the new key');
is_deeply(hgetall('ar:{u1}:res'), { 'req-1' => "9999|500|0|$n1",
                                    'req-2' => "9999|7|0|$h7" },
          'open reservations follow the key');
rejected(['keys', 'rotate', $key1], 1, qr/no such key/);

# delete

cli_ok('keys', 'delete', $new1);
is(redis_cmd('EXISTS', "ar:{u1}:key:$n1"), 0, 'delete: record');
is(redis_cmd('EXISTS', "ar:keyidx:$n1"), 0, 'delete: index');
is(redis_cmd('EXISTS', 'ar:keyid:1'), 0, 'delete: id');
is_deeply(smembers('ar:{u1}:keys'), [], 'delete: key set');
rejected(['keys', 'delete', '1'], 1, qr/no key with id 1/);

# a plaintext key is never stored

my $all = JSON::PP->new->canonical->encode(state());
unlike($all, qr/\Q$key2\E|sk-demo-0123456789|\Q$new1\E/,
       'no plaintext key anywhere in Redis');

done_testing();
