#!/usr/bin/perl
# ai-relay behind Redis Sentinel ("--redis sentinel:MASTER@IP:PORT,..."):
# the first sentinel that knows the master names it, and the CLI works on
# it as on a single Redis; after a failover, on the new master.  The
# master, its replica and three sentinels (t/sentinel.sh; ports
# AI_RELAY_TEST_SENTINEL_REDIS_PORT and +1, default
# TEST_NGINX_SERVER_PORT+9, and AI_RELAY_TEST_SENTINEL_PORT to +2, default
# TEST_NGINX_SERVER_PORT+5040; +3 stays closed: a sentinel that is down)
# are the test's own.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use AiRelayCli;

my $server = $ENV{TEST_NGINX_SERVER_PORT} || 1984;
my $port = $ENV{AI_RELAY_TEST_SENTINEL_REDIS_PORT} || $server + 9;
my $sport = $ENV{AI_RELAY_TEST_SENTINEL_PORT} || $server + 5040;
my $top = "$FindBin::Bin/../..";
my $started;

system("$top/t/sentinel.sh start $port $sport") == 0
    or BAIL_OUT("t/sentinel.sh start $port $sport failed");
$started = 1;
END { system("$top/t/sentinel.sh stop $port $sport") if $started }

my $down = $sport + 3;
my $addr = "sentinel:relay\@127.0.0.1:$down,127.0.0.1:$sport,"
           . "127.0.0.1:" . ($sport + 1);

sub on { my ($p, @a) = @_; chomp(my $v = `redis-cli -p $p @a 2>&1`); $v }

sub c { return cli('--redis', $addr, @_) }

my ($rc, $out, $err) = c('users', 'create', 'alice', '--balance', '2');
is($rc, 0, 'users create through the sentinels (the first one down)')
    or diag($err);
my ($uid) = $out =~ /created user (\d+)/;
is(on($port, "HGET ar:{u$uid}:user name"), 'alice', 'written on the master');
is(on($port, "SISMEMBER ar:users $uid"), '1', 'in ar:users');

($rc, $out, $err) = c('keys', 'create', '--user', 'alice');
is($rc, 0, 'keys create') or diag($err);
chomp(my $key = $out);
is(on($port, 'GET ar:keyidx:' . sha256_hex($key)), $uid,
   'the key index names alice');

{
    local $ENV{AI_RELAY_REDIS} = $addr;
    ($rc, $out, $err) = cli('users', 'list');
    is($rc, 0, 'AI_RELAY_REDIS=sentinel:... works too') or diag($err);
    like($out, qr/^$uid\s+alice\s+active\s+\$2\.00/m, 'lists alice');
}

($rc, $out, $err) = cli('--redis', "sentinel:nosuch\@127.0.0.1:$sport",
                        'users', 'list');
is($rc, 3, 'a master no sentinel knows: exit 3');
like($err, qr/master "nosuch"/, 'says which');

($rc, $out, $err) = cli('--redis', "sentinel:127.0.0.1:$sport",
                        'users', 'list');
is($rc, 2, 'no master name: a usage error');
like($err, qr/sentinel:MASTER\@IP:PORT/, 'shows the syntax');

($rc, $out, $err) = cli('--redis', "sentinel:relay\@127.0.0.1:$down",
                        'users', 'list');
is($rc, 3, 'no sentinel answers: exit 3');

# a failover: the sentinels promote the replica, the CLI follows
is(on($port + 1, 'INFO replication') =~ /master_link_status:up/ ? 1 : 0, 1,
   'the replica is in sync before the failover');
system("$top/t/sentinel.sh kill $port $port $sport") == 0
    or BAIL_OUT('cannot stop the master');
chomp(my $new = `$top/t/sentinel.sh wait-master $port $port $sport`);
is($new, $port + 1, 'the replica is the master now');

($rc, $out, $err) = c('users', 'topup', 'alice', '1.5');
is($rc, 0, 'users topup after the failover') or diag($err);
is(on($new, "HGET ar:{u$uid}:user balance"), '3500000',
   'written on the new master');
($rc, $out, $err) = c('users', 'create', 'bob');
is($rc, 0, 'users create after the failover') or diag($err);
like(on($new, 'SMEMBERS ar:users'), qr/^2$/m, 'on the new master');

done_testing();
