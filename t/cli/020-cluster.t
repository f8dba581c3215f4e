#!/usr/bin/perl
# ai-relay on a Redis Cluster ("--redis cluster:IP:PORT,..."): commands
# whose keys share one hash slot work (reads, top-ups, prices); one that
# would change keys of several slots at once is refused before it writes.
# The cluster (t/cluster.sh, 3 masters and 3 replicas on ports
# AI_RELAY_TEST_CLUSTER_PORT, default 7307, to +5) is the test's own.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use AiRelayCli;

my $base = $ENV{AI_RELAY_TEST_CLUSTER_PORT} || 7307;
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

# several slots at once: refused, nothing written
my $seq = rc(qw(HGETALL ar:seq));
my $users = rc(qw(SMEMBERS ar:users));
($rc, $out, $err) = c('users', 'create', 'bob', '--balance', '5');
is($rc, 3, 'users create: refused');
like($err, qr/several hash slots/, 'says why');
is(rc(qw(HGETALL ar:seq)), $seq, 'no id handed out');
is(rc(qw(SMEMBERS ar:users)), $users, 'no user added');

($rc, $out, $err) = cli('--redis', "cluster:127.0.0.1:$base", '--redis-db',
                        '2', 'users', 'list');
is($rc, 2, 'a Redis Cluster has only database 0');

done_testing();
