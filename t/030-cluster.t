# Redis Cluster: the relay on a 3-master cluster (3 replicas) the test
# starts itself (t/cluster.sh, ports TEST_NGINX_CLUSTER_PORT..+5): users on
# different masters billed exactly; a master killed mid-run, its replica
# promoted: a bounded window of 503s, no settlement lost, none twice; a
# user and key the operator CLI wrote on the cluster (in single-slot
# steps) served, billed, and rotated.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
# once: the blocks seed the cluster in --- init, the second kills a master
plan tests => repeat_each() * 50;
no_shuffle();
no_long_string();
install_redis_check();

our $Base = $ENV{TEST_NGINX_CLUSTER_PORT} || $SERVER_PORT + 5017;

system("t/cluster.sh start $Base") == 0
    or die "t/cluster.sh start $Base failed\n";

END { system("t/cluster.sh stop $Base") if $Base }

# the helpers' redis() asks the first node and follows MOVED
$AIRelayTest::REDIS_PORT = $Base;

our $HttpConfig = http_config(
    redis => "127.0.0.1:$Base 127.0.0.1:" . ($Base + 1) . " cluster",
    timeout => '300ms');
our $Config = relay_config();

our @Keys = ($AIRelayTest::TEST_KEY, $AIRelayTest::TEST_KEY2,
             'sk-test0000000000000000000000000000000000000000003');

# every node emptied, then user 1..3 with $10 and a key each
sub seed_cluster {
    for my $p ($Base .. $Base + 5) {
        system("redis-cli -p $p flushall >/dev/null 2>&1");
    }
    AIRelayTest::seed_world(price => { input => 1_000_000, output => 4_000_000 });
    for my $u (2, 3) {
        AIRelayTest::seed_user($u, balance => 10_000_000);
        AIRelayTest::seed_key($u, $Keys[$u - 1], id => $u);
    }
}

sub master_of_user {
    my ($u) = @_;
    my $slot = redis('CLUSTER', 'KEYSLOT', "ar:{u$u}:user");
    chomp(my $port = `t/cluster.sh master $slot $Base`);
    return ($slot, $port);
}

# A second relay, another nginx on TEST_NGINX_SECOND_PORT with the same
# configuration (its own prefix, journal and shared zones): two nodes
# billing the same users at once
our $Port2 = $ENV{TEST_NGINX_SECOND_PORT} || $SERVER_PORT + 8;

sub start_second {
    my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
    my $root2 = "$root-2";
    stop_second();
    system("rm -rf '$root2'");
    mkdir $root2;
    mkdir "$root2/$_" for qw(conf logs html);
    open my $in, '<', "$root/conf/nginx.conf" or die "$root/conf/nginx.conf: $!";
    my $conf = do { local $/; <$in> };
    close $in;
    $conf =~ s{\Q$root/}{$root2/}g;
    my $port = $AIRelayTest::SERVER_PORT;
    $conf =~ s{listen(\s+)$port;}{listen$1$Port2;}g or die "no listen $port";
    open my $out, '>', "$root2/conf/nginx.conf" or die;
    print $out $conf;
    close $out;
    my $bin = $ENV{TEST_NGINX_BINARY} || 'nginx';
    system("$bin -e $root2/logs/error.log -p $root2/ -c $root2/conf/nginx.conf") == 0
        or die "the second nginx did not start\n";
    for (1 .. 50) {
        local $AIRelayTest::SERVER_PORT = $Port2;
        return $root2 if eval { http_request('GET', '/none', [], ''); 1 };
        sleep 0.1;
    }
    die "the second nginx does not answer on $Port2\n";
}

# only the nginx whose pid file start_second() made
sub stop_second {
    my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
    my $pidf = "$root-2/logs/nginx.pid";
    open my $fh, '<', $pidf or return;
    chomp(my $pid = <$fh> // '');
    close $fh;
    return unless $pid && kill(0, $pid);
    kill 'QUIT', $pid;
    for (1 .. 100) {
        return unless kill(0, $pid);
        sleep 0.05;
    }
    kill 'KILL', $pid;
}

END { stop_second() }

# a POST from a forked client: its status, "none" when nginx did not
# answer (a worker crashed, the connection refused); never dies
sub client_post {
    my ($key) = @_;
    my ($s) = eval {
        relay_post('/v1/chat/completions',
                   '{"model":"gpt-4o-mini","max_tokens":10}', $key);
    };
    return $s // 'none';
}

# ASK and MOVED answered by $src, ASKING taken by $dst, so far
sub redirect_stats {
    my ($src, $dst) = @_;
    my $err = `redis-cli -p $src info errorstats`;
    my $cmd = `redis-cli -p $dst info commandstats`;
    my %n;
    ($n{ask}) = $err =~ /^errorstat_ASK:count=(\d+)/m;
    ($n{moved}) = $err =~ /^errorstat_MOVED:count=(\d+)/m;
    ($n{asking}) = $cmd =~ /^cmdstat_asking:calls=(\d+)/m;
    $_ //= 0 for values %n;
    return %n;
}

# the operator CLI on this cluster (its multi-slot writes run in steps)
our $CliKey = 'sk-testcli00000000000000000000000000000000000000004';

sub cluster_cli {
    my $bin = $ENV{TEST_NGINX_CLI} || "$AIRelayTest::TOP/build/ai-relay";
    # every node a seed: TEST 2 killed one of them
    my $seeds = join ',', map { "127.0.0.1:$_" } $Base .. $Base + 5;
    my $out = `$bin --redis cluster:$seeds @_ 2>/dev/null`;
    die "ai-relay @_ failed ($?)\n" if $?;
    return $out;
}

sub today {
    my @t = gmtime;
    return sprintf('%04d%02d%02d', $t[5] + 1900, $t[4] + 1, $t[3]);
}

run_tests();

__DATA__

=== TEST 1: three users on different masters, two relays: balances, records and daily counters exact
--- init
main::seed_cluster();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":10}
--- more_headers eval: "Authorization: Bearer $AIRelayTest::TEST_KEY"
--- response_body_like: Hi there
--- redis_check
my %masters = map { (main::master_of_user($_))[1] => 1 } 1 .. 3;
ok(keys(%masters) >= 2, 'the users live on ' . keys(%masters) . ' masters');
main::start_second();
my $n = 20;
my %status;
for my $i (1 .. $n) {
    for my $u (1 .. 3) {
        # nodes taking turns
        local $AIRelayTest::SERVER_PORT = $main::Port2 if ($i + $u) % 2;
        my ($s) = relay_post('/v1/chat/completions',
            '{"model":"gpt-4o-mini","max_tokens":10}', $main::Keys[$u - 1]);
        $status{$s}++;
    }
}
is($status{200}, 3 * $n, 'every request served') or diag(join ' ', %status);
ok(wait_for(sub { records(1) == $n + 1 && records(2) == $n && records(3) == $n }, 5),
   'one record per request');
ok(wait_for(sub { !grep { redis('HLEN', "ar:{u$_}:res") } 1 .. 3 }, 8),
   'leases and reservations released');
my $day = main::today();
for my $u (1 .. 3) {
    my $sum = 0;
    $sum += $_->{cost} for records($u);
    my %st = @{ redis('HGETALL', "ar:{u$u}:stats:$day") };
    ok($sum > 0 && user_field($u, 'balance') == 10_000_000 - $sum,
       "user $u: the balance went down by exactly the recorded costs ($sum)");
    is($st{requests}, $u == 1 ? $n + 1 : $n, "user $u: daily requests");
    is($st{cost}, $sum, "user $u: daily cost");
}
--- no_error_log
[alert]
--- timeout: 20



=== TEST 2: a master killed mid-run, two relays: its replica takes over, 503s for a while, no settlement lost or doubled
--- init
main::seed_cluster();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":10}
--- more_headers eval: "Authorization: Bearer $AIRelayTest::TEST_KEY"
--- response_body_like: Hi there
--- redis_check
main::start_second();
my ($slot, $old) = main::master_of_user(1);
ok($old, "user 1 is on the master at $old (slot $slot)");
my $stop = $ENV{TEST_NGINX_SERVROOT} ? "$ENV{TEST_NGINX_SERVROOT}/stop-clients"
                                      : "/tmp/ai-relay-cluster-stop.$$";
unlink $stop;
# the helpers ask a node that stays up
$AIRelayTest::REDIS_PORT = (grep { $_ != $old } $main::Base .. $main::Base + 5)[0];
redis('PING');
pipe(my $rd, my $wr) or die;
my @kids;
for my $k (1 .. 3) {
    my $pid = fork;
    die "fork" unless defined $pid;
    if (!$pid) {
        # whatever happens, the child never runs the END blocks (which
        # stop the cluster and the second relay)
        local $SIG{__DIE__} = sub { POSIX::_exit(1) unless $^S };
        close $rd;
        my $until = time + 20;
        # children 2 and 3 on the second relay
        $AIRelayTest::SERVER_PORT = $main::Port2 if $k > 1;
        while (!-e $stop && time < $until) {
            my $u = 1 + int(rand(3));
            syswrite($wr, "$u " . main::client_post($main::Keys[$u - 1]) . "\n");
            sleep 0.01;
        }
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
close $wr;
sleep 0.5;
system("t/cluster.sh kill $old $main::Base") == 0 or die "kill failed";
chomp(my $new = `t/cluster.sh wait-master $slot $old $main::Base`);
ok($new && $new != $old, "the replica at $new took slot $slot over");
# the relay's map follows within its refresh; then serve a while
my $ok_after = 0;
my %status;
my %served = (1 => 1, 2 => 0, 3 => 0);   # the --- request's
my $t0 = time;
my $last503 = 0;
my $rin = '';
vec($rin, fileno($rd), 1) = 1;
my $open = 1;
while ($open) {
    if (time - $t0 > 1.5 && !-e $stop) {
        open(my $f, '>', $stop) or die; close $f;
    }
    next unless select(my $rout = $rin, undef, undef, 0.05);
    my $line = <$rd>;
    if (!defined $line) { $open = 0; last }
    my ($u, $s) = split ' ', $line;
    $status{$s}++;
    $served{$u}++ if $s eq '200';
}
for (@kids) { waitpid($_, 0); $status{'client died'}++ if $? }
unlink $stop;
is(join(',', grep { $_ ne '200' && $_ ne '503' } keys %status), '',
   'only 200s and 503s') or diag(join ' ', %status);
ok($status{200} > 20, "requests served ($status{200}, "
                      . ($status{503} // 0) . ' refused)');
# served after the failover: the relay found the new master
my ($s) = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini","max_tokens":10}');
is($s, 200, 'user 1 served by the new master');
$served{1}++ if $s == 200;
ok(wait_for(sub { records(1) == $served{1} && records(2) == $served{2}
                  && records(3) == $served{3} }, 10),
   'one record per request served, none lost in the failover')
    or diag(join ' ', map { "u$_: " . records($_) . " of $served{$_}" } 1 .. 3);
ok(wait_for(sub { !grep { redis('HLEN', "ar:{u$_}:res") } 1 .. 3 }, 8),
   'leases and reservations released (a lease granted unanswered too)')
    or diag(join ' ', map { "u$_: @{ redis('HGETALL', \"ar:{u$_}:res\") }" } 1 .. 3);
my $day = main::today();
my $bad = '';
for my $u (1 .. 3) {
    my $sum = 0;
    $sum += $_->{cost} for records($u);
    my %st = @{ redis('HGETALL', "ar:{u$u}:stats:$day") };
    my $bal = user_field($u, 'balance');
    $bad .= " u$u: balance $bal cost $sum"
        unless $bal + $sum == 10_000_000;
    $bad .= " u$u: daily requests " . ($st{requests} // 0) . " of $served{$u}"
        unless ($st{requests} // 0) == $served{$u};
}
is($bad, '', 'balances and daily counters exact');
my $root2 = ($ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot") . '-2';
is(scalar(grep { /\[(alert|crit|emerg)\]/ } do { open my $l, '<', "$root2/logs/error.log"; <$l> }),
   0, 'the second relay logged no alert');
unlike(error_log_text(), qr/\[(alert|crit|emerg)\]/,
       'the relay logged no alert (a worker that crashed mid-run would)');
main::stop_second();
--- timeout: 40



=== TEST 3: a user's slot moved to another master while relaying: ASK, then MOVED, followed; billing exact
--- init
main::seed_cluster();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":10}
--- more_headers eval: "Authorization: Bearer $AIRelayTest::TEST_KEY"
--- response_body_like: Hi there
--- redis_check
my ($slot, $src) = main::master_of_user(1);
my @masters = map { /127\.0\.0\.1:(\d+)@/ ? $1 : () }
              grep { /master/ && !/fail/ } `redis-cli -p $src cluster nodes`;
my ($dst) = grep { $_ != $src } @masters;
ok($dst, "slot $slot moves from $src to $dst");
chomp(my $src_id = `redis-cli -p $src cluster myid`);
chomp(my $dst_id = `redis-cli -p $dst cluster myid`);
$AIRelayTest::REDIS_PORT = $dst;
redis('PING');
my $stop = "/tmp/ai-relay-cluster-move.$$";
unlink $stop;
pipe(my $rd, my $wr) or die;
my @kids;
for my $k (1 .. 2) {
    my $pid = fork;
    die "fork" unless defined $pid;
    if (!$pid) {
        # whatever happens, the child never runs the END blocks (which
        # stop the cluster and the second relay)
        local $SIG{__DIE__} = sub { POSIX::_exit(1) unless $^S };
        close $rd;
        my $until = time + 20;
        while (!-e $stop && time < $until) {
            my $u = 1 + int(rand(2));
            syswrite($wr, "$u " . main::client_post($main::Keys[$u - 1]) . "\n");
            sleep 0.005;
        }
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
close $wr;
sleep 0.3;
my %before = main::redirect_stats($src, $dst);
system('redis-cli', '-p', $dst, 'cluster', 'setslot', $slot, 'importing', $src_id) == 0 or die;
system('redis-cli', '-p', $src, 'cluster', 'setslot', $slot, 'migrating', $dst_id) == 0 or die;
sleep 0.3;
my $moved = 0;
for (1 .. 50) {
    my @keys = split /\n/, `redis-cli -p $src cluster getkeysinslot $slot 1000`;
    last unless @keys;
    system('redis-cli', '-p', $src, 'migrate', '127.0.0.1', $dst, '', '0', '5000',
           'keys', @keys) == 0 or die;
    $moved += @keys;
}
ok($moved > 0, "$moved keys migrated");
sleep 0.5;   # served through ASK
for my $m (@masters) {
    system('redis-cli', '-p', $m, 'cluster', 'setslot', $slot, 'node', $dst_id) == 0 or die;
}
sleep 0.5;   # served through MOVED, then the new map
open(my $f, '>', $stop) or die; close $f;
my %status;
my %served = (1 => 1, 2 => 0);
while (my $line = <$rd>) {
    my ($u, $s) = split ' ', $line;
    $status{$s}++;
    $served{$u}++ if $s eq '200';
}
for (@kids) { waitpid($_, 0); $status{'client died'}++ if $? }
unlink $stop;
my %after = main::redirect_stats($src, $dst);
is((main::master_of_user(1))[1], $dst, "user 1 is on $dst now");
ok($status{200} > 20, "requests served ($status{200})");
is(join(',', grep { $_ ne '200' && $_ ne '503' } keys %status), '',
   'only 200s and 503s (' . ($status{503} // 0) . ' refused)') or diag(join ' ', %status);
ok(wait_for(sub { records(1) == $served{1} && records(2) == $served{2} }, 10),
   'one record per request served')
    or diag(join ' ', map { "u$_: " . records($_) . " of $served{$_}" } 1 .. 2);
ok(wait_for(sub { !grep { redis('HLEN', "ar:{u$_}:res") } 1 .. 2 }, 8),
   'leases and reservations released');
my $bad = '';
for my $u (1 .. 2) {
    my $sum = 0;
    $sum += $_->{cost} for records($u);
    $bad .= " u$u: balance " . user_field($u, 'balance') . " cost $sum"
        unless user_field($u, 'balance') + $sum == 10_000_000;
}
is($bad, '', 'balances exact');
# counted by Redis, not by the relay's debug log (an nginx built without
# --with-debug has none): the source answered ASK, then MOVED; the
# destination took the relay's ASKING (nothing else here sends one)
my $log = error_log_text();
ok($after{ask} > $before{ask} && $after{moved} > $before{moved}
   && $after{asking} > $before{asking},
   'the relay followed ASK and MOVED')
    or diag(join ' ', map { "$_: $before{$_} -> $after{$_}" } sort keys %after);
unlike($log, qr/\[(alert|crit|emerg)\]/,
       'the relay logged no alert (a worker that crashed mid-run would)');
--- timeout: 40



=== TEST 4: a user and a key the CLI wrote on the cluster in steps: served and billed; after keys rotate the old key is refused, the new one served
--- init
main::seed_cluster();
main::cluster_cli('users', 'create', 'dora', '--balance', '2', '--id', '7');
main::cluster_cli('keys', 'add', '--user', 'dora', '--key', $main::CliKey);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":10}
--- more_headers eval: "Authorization: Bearer $main::CliKey"
--- response_body_like: Hi there
--- redis_check
is(redis('GET', 'ar:keyidx:' . key_hash($main::CliKey)), '7',
   'the key index the CLI wrote names dora');
ok(wait_for(sub { records(7) == 1 }, 5), 'one record for dora');
my ($rec) = records(7);
ok($rec->{cost} > 0 && user_field(7, 'balance') == 2_000_000 - $rec->{cost},
   'billed to the user the CLI created');
chomp(my $new = main::cluster_cli('keys', 'rotate', $main::CliKey));
like($new, qr/^sk-\w{40,}$/, 'keys rotate on the cluster');
my ($s) = relay_post('/v1/chat/completions',
                     '{"model":"gpt-4o-mini","max_tokens":10}', $main::CliKey);
is($s, 401, 'the old key is refused');
($s) = relay_post('/v1/chat/completions',
                  '{"model":"gpt-4o-mini","max_tokens":10}', $new);
is($s, 200, 'the new key is served');
ok(wait_for(sub { records(7) == 2 }, 5), 'and billed to dora');
--- no_error_log
[alert]
--- timeout: 20
