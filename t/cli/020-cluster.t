#!/usr/bin/perl
# ai-relay on a Redis Cluster ("--redis cluster:IP:PORT,..."): commands
# whose keys share one hash slot (reads, top-ups, prices), and those that
# write keys of several slots (users, keys, channels, models, rotate,
# delete, import) as single-slot steps; a CLI stopped between two steps
# leaves no half-visible object.
# The cluster (t/cluster.sh, 3 masters and 3 replicas on ports
# AI_RELAY_TEST_CLUSTER_PORT, default TEST_NGINX_SERVER_PORT+5023, to +5) is
# the test's own.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use AiRelayCli;
use AiRelayFixtures;

my $base = $ENV{AI_RELAY_TEST_CLUSTER_PORT}
    || ($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 5023;
my $top = "$FindBin::Bin/../..";

system("$top/t/cluster.sh start $base") == 0
    or BAIL_OUT("t/cluster.sh start $base failed");
END { system("$top/t/cluster.sh stop $base") if $base }

my $addr = "cluster:127.0.0.1:$base,127.0.0.1:" . ($base + 1);

sub rc { my @a = @_; return `redis-cli -c -p $base @a 2>&1` }

sub c { return cli('--redis', $addr, @_) }

# a user and a model, seeded straight into the cluster
rc(qw(HSET ar:{u1}:user name alice status active balance 1000000 unlimited 0
      group default created 1700000000));
rc(qw(SADD ar:users 1));
rc(qw(SADD ar:{cfg}:models gpt-4o));
rc(qw(HSET ar:{cfg}:model:gpt-4o channels 1));

my ($rc, $out, $err) = c('users', 'list');
is($rc, 0, 'users list') or diag($err);
like($out, qr/^1\s+alice\s+active\s+\$1\.00/m, 'lists the user');

($rc, $out, $err) = c('users', 'topup', '1', '2.5', '--note', 'cluster');
is($rc, 0, 'users topup') or diag($err);
like($out, qr/balance \$3\.50/, 'topped up');
chomp(my $bal = rc(qw(HGET ar:{u1}:user balance)));
is($bal, '3500000', 'the balance, exact');
like(rc(qw(XRANGE ar:{u1}:ledger - +)), qr/topup.*cluster/s,
     'the ledger entry, in the same transaction');

($rc, $out, $err) = c('users', 'deduct', '1', '0.5');
is($rc, 0, 'users deduct') or diag($err);
chomp($bal = rc(qw(HGET ar:{u1}:user balance)));
is($bal, '3000000', 'deducted, exact');

($rc, $out, $err) = c('users', 'show', '1');
is($rc, 0, 'users show') or diag($err);
like($out, qr/balance:\s+\$3\.00/, 'shows the balance');

chomp(my $v0 = rc(qw(GET ar:{cfg}:version)));
($rc, $out, $err) = c('prices', 'set', 'gpt-4o', '--input', '2.50',
                      '--output', '10');
is($rc, 0, 'prices set') or diag($err);
chomp(my $in = rc(qw(HGET ar:{cfg}:price:gpt-4o input)));
is($in, '2500000', 'the price, in micro-USD');
chomp(my $v1 = rc(qw(GET ar:{cfg}:version)));
is($v1, ($v0 || 0) + 1, 'the configuration version moved with it');

($rc, $out, $err) = c('prices', 'list');
is($rc, 0, 'prices list (SCAN on the node of {cfg})') or diag($err);
like($out, qr/^gpt-4o\s+\$2\.50/m, 'lists the price');

# writes over several slots run as single-slot steps: objects first, the
# indexes that reach them after, the configuration version last

sub get { chomp(my $v = rc(@_)); return $v }
sub version { return get(qw(GET ar:{cfg}:version)) || 0 }
sub cl_json {
    my ($rc, $out, $err) = c(@_, '--json');
    is($rc, 0, "ai-relay @_ on the cluster") or diag($err);
    return eval { JSON::PP->new->decode($out) } || {};
}

my $v = version();
($rc, $out, $err) = c('users', 'create', 'bob', '--balance', '5');
is($rc, 0, 'users create') or diag($err);
my ($bob) = $out =~ /created user (\d+) \(bob\)/;
ok($bob && $bob != 1, 'a new id') or diag($out);
is(get("HGET ar:{u$bob}:user name"), 'bob', 'the user hash');
is(get("HGET ar:{u$bob}:user balance"), '5000000', 'its balance');
is(get("SISMEMBER ar:users $bob"), '1', 'in ar:users');
is(get('HGET ar:seq user'), $bob, 'ar:seq');
like(rc("XRANGE ar:{u$bob}:ledger - +"), qr/create/, 'the ledger entry');
is(version(), $v + 1, 'the configuration version moved once');
($rc, $out, $err) = c('users', 'list');
like($out, qr/^$bob\s+bob\s+active\s+\$5\.00/m, 'users list reads it back');
($rc, $out, $err) = c('users', 'create', 'bob');
is($rc, 1, 'a second bob: refused');

# keys create and add
$v = version();
($rc, $out, $err) = c('keys', 'create', '--user', 'bob', '--name', 'k1');
is($rc, 0, 'keys create') or diag($err);
chomp(my $k1 = $out);
like($k1, qr/^sk-\w{40,}$/, 'the plaintext key, once');
my $h1 = sha256_hex($k1);
is(get("GET ar:keyidx:$h1"), $bob, 'ar:keyidx resolves the key to bob');
my $kid1 = get("HGET ar:{u$bob}:key:$h1 id");
ok($kid1, 'the key hash in the user slot');
is(get("GET ar:keyid:$kid1"), "$bob:$h1", 'ar:keyid');
is(get("SISMEMBER ar:{u$bob}:keys $h1"), '1', "in the user's set of keys");
is(version(), $v + 1, 'the configuration version moved once');

my $k2 = 'sk-cluster-added-key-0123456789abcdef';
($rc, $out, $err) = c('keys', 'add', '--user', 'bob', '--key', $k2,
                      '--name', 'k2', '--models', 'gpt-4o');
is($rc, 0, 'keys add') or diag($err);
my $h2 = sha256_hex($k2);
is(get("GET ar:keyidx:$h2"), $bob, 'keys add: indexed');
my $kid2 = get("HGET ar:{u$bob}:key:$h2 id");

my $j = cl_json('keys', 'show', $k1);
is($j->{id}, $kid1, 'keys show by plaintext: its id');
is($j->{user}, $bob, 'and its user');
$j = cl_json('keys', 'list', '--user', 'bob');
is_deeply([ map { $_->{id} } @$j ], [ sort { $a <=> $b } $kid1, $kid2 ],
          'keys list: both');
($rc, $out, $err) = c('users', 'show', 'bob');
like($out, qr/keys:\s+2/, 'users show counts them');

# the same key for user 1: its index is taken; nothing is written
my %before = map { $_ => rc("SMEMBERS ar:{u1}:keys") } 1;
$v = version();
my $seqk = get('HGET ar:seq key');
($rc, $out, $err) = c('keys', 'add', '--user', '1', '--key', $k2);
is($rc, 1, 'a key of another user: refused');
like($err, qr/already registered/, 'says why');
is(rc('SMEMBERS ar:{u1}:keys'), $before{1}, 'user 1 has no new key');
is(get("EXISTS ar:{u1}:key:$h2"), '0', 'no key hash written');
is(get("GET ar:keyidx:$h2"), $bob, 'the index still names bob');
is(get('HGET ar:seq key'), $seqk, 'no key id handed out');
is(version(), $v, 'the version did not move');

# state changes of hashes (the hash, then the version)
$v = version();
($rc, $out, $err) = c('keys', 'disable', $kid1);
is($rc, 0, 'keys disable') or diag($err);
is(get("HGET ar:{u$bob}:key:$h1 status"), 'disabled', 'disabled');
($rc, $out, $err) = c('keys', 'enable', $kid1);
is(get("HGET ar:{u$bob}:key:$h1 status"), 'active', 'enabled again');
($rc, $out, $err) = c('users', 'group', 'bob', 'vip');
is($rc, 0, 'users group') or diag($err);
is(get("HGET ar:{u$bob}:user group"), 'vip', 'the group');
is(version(), $v + 3, 'each moved the version');

# channels and models
$v = version();
($rc, $out, $err) = c('channels', 'create', '--provider', 'openai',
                      '--name', 'up', '--key', 'sk-upstream-0123456789',
                      '--models', 'gpt-4o-mini');
is($rc, 0, 'channels create') or diag($err);
my ($ch) = $out =~ /created channel (\d+)/;
ok($ch, 'a channel id');
is(get("HGET ar:{cfg}:channel:$ch name"), 'up', 'the channel hash');
is(get("SISMEMBER ar:{cfg}:channels $ch"), '1', 'in the channel set');
is(get('HGET ar:seq channel'), $ch, 'ar:seq');
is(get('HGET ar:{cfg}:model:gpt-4o-mini channels'), $ch,
   'the model it serves');
($rc, $out, $err) = c('models', 'set', 'gpt-4o', '--channels', $ch);
is($rc, 0, 'models set') or diag($err);
is(get('HGET ar:{cfg}:model:gpt-4o channels'), $ch, 'the model hash');
cmp_ok(version(), '>', $v, 'the version moved');

# keys rotate: the new key works, the old one does not, same id
$v = version();
($rc, $out, $err) = c('keys', 'rotate', $kid1);
is($rc, 0, 'keys rotate') or diag($err);
chomp(my $k3 = $out);
my $h3 = sha256_hex($k3);
isnt($h3, $h1, 'a new key');
is(get("GET ar:keyidx:$h3"), $bob, 'the new key is indexed');
is(get("EXISTS ar:keyidx:$h1"), '0', 'the old one is not');
is(get("GET ar:keyid:$kid1"), "$bob:$h3", 'the id names the new key');
is(get("HGET ar:{u$bob}:key:$h3 id"), $kid1, 'the new hash keeps the id');
is(get("HGET ar:{u$bob}:key:$h3 name"), 'k1', 'and the settings');
is(get("EXISTS ar:{u$bob}:key:$h1"), '0', 'the old hash is gone');
is(get("SISMEMBER ar:{u$bob}:keys $h1") . get("SISMEMBER ar:{u$bob}:keys $h3"),
   '01', "the user's set of keys");
is(version(), $v + 1, 'the version moved once');
$j = cl_json('keys', 'show', $k3);
is($j->{id}, $kid1, 'keys show finds the new key');
($rc, $out, $err) = c('keys', 'show', $k1);
is($rc, 1, 'and not the old one');

# keys delete: unreachable first, then gone
$v = version();
($rc, $out, $err) = c('keys', 'delete', $kid2);
is($rc, 0, 'keys delete') or diag($err);
is(get("EXISTS ar:keyidx:$h2") . get("EXISTS ar:keyid:$kid2")
   . get("EXISTS ar:{u$bob}:key:$h2") . get("SISMEMBER ar:{u$bob}:keys $h2"),
   '0000', 'index, id, hash and set member gone');
is(version(), $v + 1, 'the version moved once');

# a CLI stopped between two steps (AI_RELAY_TEST_CLUSTER_STEPS=N ends it
# after the Nth, as if killed): at most an object nobody reaches

sub stopped {
    my ($n, @args) = @_;
    local $ENV{AI_RELAY_TEST_CLUSTER_STEPS} = $n;
    my ($rc, $out, $err) = c(@args);
    is($rc, 3, "@args stopped after step $n");
    like($err, qr/stopped after step $n/, 'says so');
}

my $users = rc('SMEMBERS ar:users');
for my $n (1, 2) {
    stopped($n, 'users', 'create', 'carol');
    is(rc('SMEMBERS ar:users'), $users, "step $n: ar:users unchanged");
    ($rc, $out, $err) = c('users', 'list');
    unlike($out, qr/carol/, "step $n: users list does not show carol");
    ($rc, $out, $err) = c('users', 'show', 'carol');
    is($rc, 1, "step $n: users show carol: no such user");
}
my $orphan = get('HGET ar:seq user');
is(get("HGET ar:{u$orphan}:user name"), 'carol',
   'the stopped create left its user hash');
($rc, $out, $err) = c('users', 'show', $orphan);
is($rc, 1, 'users show by its id: no such user');
($rc, $out, $err) = c('users', 'create', 'carol');
is($rc, 0, 'users create carol, once more') or diag($err);
my ($carol) = $out =~ /created user (\d+)/;
cmp_ok($carol, '>', $orphan, 'a fresh id; the orphan is wasted');

my $list = c('keys', 'list');
($rc, $list) = c('keys', 'list');
my $bobkeys = get("SCARD ar:{u$bob}:keys");
for my $n (1 .. 3) {
    stopped($n, 'keys', 'create', '--user', 'bob', '--name', "half$n");
    ($rc, $out, $err) = c('keys', 'list');
    is($out, $list, "step $n: keys list unchanged");
    ($rc, $out, $err) = c('users', 'show', 'bob');
    like($out, qr/keys:\s+1\n/, "step $n: users show lists one key");
}
cmp_ok(get("SCARD ar:{u$bob}:keys"), '>', $bobkeys,
       "an orphan is in bob's set of keys, not listed");
($rc, $out, $err) = c('users', 'list');
like($out, qr/^$bob\s+bob\s.*\s1\n/m, 'users list counts one key of bob');
my $half = get('HGET ar:seq key');
is(get("EXISTS ar:keyid:$half"), '1', 'step 3 wrote the id index');
($rc, $out, $err) = c('keys', 'show', $half);
is($rc, 1, 'keys show by that id: not found (no ar:keyidx names bob)');

# the orphan of a stopped "keys add" for user 1, then the same key given
# to bob: bob owns it; the orphan stays unreachable, and deleting it by
# its id leaves bob's index alone
my $k4 = 'sk-cluster-contested-key-0123456789ab';
my $h4 = sha256_hex($k4);
stopped(3, 'keys', 'add', '--user', '1', '--key', $k4);
my $okid = get('HGET ar:seq key');
is(get("GET ar:keyid:$okid"), "1:$h4", "the orphan's id names user 1");
is(get("EXISTS ar:keyidx:$h4"), '0', 'but no index names anybody');
($rc, $out, $err) = c('keys', 'add', '--user', 'bob', '--key', $k4);
is($rc, 0, 'the same key for bob') or diag($err);
is(get("GET ar:keyidx:$h4"), $bob, 'the index names bob');
$j = cl_json('keys', 'show', $k4);
is($j->{user}, $bob, 'keys show: bob\'s');
($rc, $out, $err) = c('keys', 'show', $okid);
is($rc, 1, "the orphan's id: not found");
($rc, $out, $err) = c('keys', 'list', '--user', '1');
unlike($out, qr/^$okid\s/m, 'not listed for user 1');
($rc, $out, $err) = c('keys', 'delete', $okid);
is($rc, 0, 'keys delete removes the orphan by its id') or diag($err);
is(get("EXISTS ar:keyid:$okid") . get("EXISTS ar:{u1}:key:$h4"), '00',
   'its id and hash');
is(get("GET ar:keyidx:$h4"), $bob, "bob's index stays");

# a delete stopped after its first step: the key no longer works; a
# second delete finishes it
($rc, $out, $err) = c('keys', 'add', '--user', 'bob', '--key', $k2);
is($rc, 0, 'keys add') or diag($err);
$kid2 = get("HGET ar:{u$bob}:key:$h2 id");
stopped(1, 'keys', 'delete', $kid2);
is(get("EXISTS ar:keyidx:$h2"), '0', 'its index went first');
($rc, $out, $err) = c('keys', 'show', $k2);
is($rc, 1, 'the key is not found');
($rc, $out, $err) = c('keys', 'list');
unlike($out, qr/^$kid2\s/m, 'nor listed');
($rc, $out, $err) = c('keys', 'delete', $kid2);
is($rc, 0, 'keys delete again finishes it') or diag($err);
is(get("EXISTS ar:keyid:$kid2") . get("EXISTS ar:{u$bob}:key:$h2"), '00',
   'id and hash gone');

# a rotate stopped after each step: at most one of the two keys works, and
# "keys rotate ID" again finishes it
($rc, $out, $err) = c('keys', 'create', '--user', 'bob', '--name', 'rot');
chomp(my $kr = $out);
my $hr = sha256_hex($kr);
my $kidr = get("HGET ar:{u$bob}:key:$hr id");
for my $n (1 .. 4) {
    stopped($n, 'keys', 'rotate', $kidr);
    is(get("GET ar:keyidx:$hr"), $n == 1 ? $bob : '',
       $n == 1 ? 'step 1: the old key still works'
               : "step $n: the old key works no more");
    $j = cl_json('keys', 'list', '--user', 'bob');
    cmp_ok(scalar(grep { $_->{id} == $kidr } @$j), '<=', 1,
           "step $n: its id listed at most once");
    ($rc, $out, $err) = c('keys', 'rotate', $kidr);
    is($rc, 0, "step $n: keys rotate again") or diag($err);
    chomp($kr = $out);
    $hr = sha256_hex($kr);
    is(get("GET ar:keyidx:$hr"), $bob, "step $n: the new key works");
    is(get("GET ar:keyid:$kidr"), "$bob:$hr", "step $n: its id names it");
    $j = cl_json('keys', 'list', '--user', 'bob');
    is(scalar(grep { $_->{id} == $kidr } @$j), 1, "step $n: listed once");
    is(get("HGET ar:{u$bob}:key:$hr name"), 'rot', "step $n: same settings");
}

# import (One API): in steps, a second run changes nothing
my $db = sqlite_db('one-api.db', one_api_schema('sqlite'), one_api_rows());
my @import = ('import', '--from', 'one-api', '--sqlite', $db);

stopped(3, @import, '--id-offset', '1000');
($rc, $out, $err) = c('users', 'list');
unlike($out, qr/^1002\s/m, 'a stopped import: no user listed yet');
($rc, $out, $err) = c(@import, '--id-offset', '1000');
is($rc, 0, 'import, run again, completes') or diag($err);
like($out, qr/written: \d+ change\(s\) in single-slot steps/, 'in steps');
($rc, $out, $err) = c(@import, '--id-offset', '1000');
is($rc, 0, 'a third run') or diag($err);
like($out, qr/nothing to change/, 'changes nothing');
($rc, $out, $err) = c('users', 'list');
like($out, qr/^1002\s+alice\s+active\s+\$10\.00/m, 'alice, imported');
my $ik = one_api_key(1);
is(get('GET ar:keyidx:' . sha256_hex($ik)), '1002',
   'her key resolves to her');
$j = cl_json('keys', 'show', $ik);
is($j->{id}, 1001, 'keys show finds it by plaintext');
is(get('HGET ar:{cfg}:model:deepseek-chat channels'), '1004',
   'the imported model routes to the imported channel');

($rc, $out, $err) = cli('--redis', "cluster:127.0.0.1:$base", '--redis-db',
                        '2', 'users', 'list');
is($rc, 2, 'a Redis Cluster has only database 0');

done_testing();
