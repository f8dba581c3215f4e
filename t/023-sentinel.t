# Redis Sentinel: the relay finds its master through three sentinels the
# test starts itself (t/sentinel.sh: master on TEST_NGINX_SENTINEL_REDIS_PORT,
# replica on +1, sentinels on TEST_NGINX_SENTINEL_PORT..+2), billed exactly;
# the master killed mid-run: a window of 503s, then the promoted replica
# serves, no settlement lost or doubled.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);
use IO::Select;
use IO::Socket::INET;
use POSIX ();

repeat_each(1);
# once: the second block kills the master
plan tests => repeat_each() * 22;
no_shuffle();
no_long_string();
install_redis_check();

our $Port = $ENV{TEST_NGINX_SENTINEL_REDIS_PORT} || $SERVER_PORT + 6;
our $SPort = $ENV{TEST_NGINX_SENTINEL_PORT} || $SERVER_PORT + 5037;

system("t/sentinel.sh start $Port $SPort") == 0
    or die "t/sentinel.sh start failed\n";

END { system("t/sentinel.sh stop $Port $SPort") if $Port }

$AIRelayTest::REDIS_PORT = $Port;

our $HttpConfig = http_config(timeout => '300ms')
    . "    ai_relay_redis_sentinel relay 127.0.0.1:$SPort 127.0.0.1:"
    . ($SPort + 1) . " 127.0.0.1:" . ($SPort + 2) . ";\n";
our $Config = relay_config();

# TEST 3: a sentinel of our own that names a replica as the master
our $FakeSentinel = AIRelayTest::free_port();
our $Replica = AIRelayTest::free_port();
our $ReplicaDir = ($ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot")
                  . "-replica";
our $FakeConfig = http_config(timeout => '300ms', redis => "127.0.0.1:$Replica")
    . "    ai_relay_redis_sentinel relay 127.0.0.1:$FakeSentinel;\n";

# a replica of the suite's Redis on $Replica, its world seeded
sub start_replica {
    system("rm -rf '$ReplicaDir'; mkdir -p '$ReplicaDir'");
    system("redis-server --port $Replica --bind 127.0.0.1 --save '' "
           . "--appendonly no --dir '$ReplicaDir' --daemonize yes "
           . "--pidfile '$ReplicaDir/redis.pid' --logfile '$ReplicaDir/redis.log' "
           . "--replicaof 127.0.0.1 $AIRelayTest::REDIS_PORT") == 0
        or die "replica did not start\n";
    for (1 .. 100) {
        return if `redis-cli -p $Replica info replication 2>/dev/null`
                  =~ /master_link_status:up/;
        sleep 0.1;
    }
    die "replica not in sync\n";
}

sub stop_replica {
    open my $fh, '<', "$ReplicaDir/redis.pid" or return;
    chomp(my $pid = <$fh> // '');
    return unless $pid && kill(0, $pid)
        && `tr '\\0' ' ' < /proc/$pid/cmdline` =~ /^redis-server \S*:$Replica\b/;
    kill 'TERM', $pid;
    for (1 .. 50) { last unless kill(0, $pid); sleep 0.1 }
}

END { stop_replica() }

# answers every SENTINEL get-master-addr-by-name with the replica
sub fake_sentinel {
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $FakeSentinel, Listen => 16,
                                    ReuseAddr => 1) or die "fake sentinel: $!\n";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid) { close $srv; return $pid }
    local $SIG{__DIE__} = sub { POSIX::_exit(1) unless $^S };
    local $SIG{ALRM} = sub { POSIX::_exit(0) };
    alarm(30);
    my $sel = IO::Select->new($srv);
    for (;;) {
        for my $h ($sel->can_read) {
            if ($h == $srv) { my $c = $srv->accept; $sel->add($c) if $c; next }
            my $buf;
            if (!sysread($h, $buf, 65536)) { $sel->remove($h); close $h; next }
            if ($buf =~ /get-master-addr-by-name/i) {
                syswrite($h, "*2\r\n\$9\r\n127.0.0.1\r\n\$" . length($Replica)
                             . "\r\n$Replica\r\n");
            } elsif ($buf =~ /SUBSCRIBE/i) {
                syswrite($h, "*3\r\n\$9\r\nsubscribe\r\n\$14\r\n+switch-master\r\n:1\r\n");
            } else {
                syswrite($h, "+OK\r\n");
            }
        }
    }
}

sub today {
    my @t = gmtime;
    return sprintf('%04d%02d%02d', $t[5] + 1900, $t[4] + 1, $t[3]);
}

run_tests();

__DATA__

=== TEST 1: the master found through the sentinels: balance, records and daily counters exact
--- init
AIRelayTest::seed_world(price => { input => 1_000_000, output => 4_000_000 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":10}
--- more_headers eval: "Authorization: Bearer $AIRelayTest::TEST_KEY"
--- response_body_like: Hi there
--- redis_check
my $n = 20;
my %status;
for (1 .. $n) {
    my ($s) = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini","max_tokens":10}');
    $status{$s}++;
}
is($status{200}, $n, 'every request served') or diag(join ' ', %status);
ok(wait_for(sub { records(1) == $n + 1 }, 5), 'one record per request');
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 8), 'leases released');
my $sum = 0;
$sum += $_->{cost} for records(1);
is(user_field(1, 'balance'), 10_000_000 - $sum, 'the balance went down by exactly the recorded costs');
my %st = @{ redis('HGETALL', 'ar:{u1}:stats:' . main::today()) };
is($st{requests}, $n + 1, 'daily requests');
--- error_log
redis sentinel: master "relay" is at 127.0.0.1:
--- no_error_log
[alert]
--- timeout: 20



=== TEST 2: the master killed mid-run: the sentinels promote the replica, the relay follows; no settlement lost
--- init
AIRelayTest::seed_world(price => { input => 1_000_000, output => 4_000_000 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":10}
--- more_headers eval: "Authorization: Bearer $AIRelayTest::TEST_KEY"
--- response_body_like: Hi there
--- redis_check
chomp(my $old = `t/sentinel.sh master $main::Port $main::SPort`);
ok($old, "the master is at $old");
my $stop = "/tmp/ai-relay-sentinel-stop.$$";
unlink $stop;
pipe(my $rd, my $wr) or die;
my @kids;
for my $k (1 .. 2) {
    my $pid = fork;
    die "fork" unless defined $pid;
    if (!$pid) {
        # whatever happens, the child never runs the END blocks (which
        # stop the sentinels and their Redis)
        local $SIG{__DIE__} = sub { POSIX::_exit(1) unless $^S };
        close $rd;
        my $until = time + 20;
        while (!-e $stop && time < $until) {
            # "none": nginx did not answer (a worker crashed, refused)
            my ($s) = eval {
                relay_post('/v1/chat/completions',
                           '{"model":"gpt-4o-mini","max_tokens":10}');
            };
            syswrite($wr, ($s // 'none') . "\n");
            sleep 0.01;
        }
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
close $wr;
sleep 0.5;
system("t/sentinel.sh kill $old $main::Port $main::SPort") == 0 or die "kill failed";
chomp(my $new = `t/sentinel.sh wait-master $old $main::Port $main::SPort`);
ok($new && $new != $old, "the replica at $new is the master");
$AIRelayTest::REDIS_PORT = $new;
redis('PING');
my %status;
my $served = 1;   # the --- request's
my $t0 = time;
my $rin = '';
vec($rin, fileno($rd), 1) = 1;
while (1) {
    if (time - $t0 > 1.5 && !-e $stop) {
        open(my $f, '>', $stop) or die; close $f;
    }
    next unless select(my $rout = $rin, undef, undef, 0.05);
    my $line = <$rd>;
    last unless defined $line;
    chomp $line;
    $status{$line}++;
    $served++ if $line eq '200';
}
for (@kids) { waitpid($_, 0); $status{'client died'}++ if $? }
unlink $stop;
is(join(',', grep { $_ ne '200' && $_ ne '503' } keys %status), '',
   'only 200s and 503s') or diag(join ' ', %status);
my ($s) = relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini","max_tokens":10}');
is($s, 200, 'served by the new master (' . ($status{200} // 0) . ' served, '
            . ($status{503} // 0) . ' refused during the run)');
$served++ if $s == 200;
ok(wait_for(sub { records(1) == $served }, 10), 'one record per request served')
    or diag('records ' . records(1) . " of $served");
ok(wait_for(sub { redis('HLEN', 'ar:{u1}:res') == 0 }, 8),
   'leases and reservations released (a lease granted unanswered too)')
    or diag("@{ redis('HGETALL', 'ar:{u1}:res') }");
my $sum = 0;
$sum += $_->{cost} for records(1);
is(user_field(1, 'balance'), 10_000_000 - $sum,
   "the balance went down by exactly the recorded costs ($sum)");
unlike(error_log_text(), qr/\[(alert|crit|emerg)\]/,
       'the relay logged no alert (a worker that crashed mid-run would)');
--- timeout: 40



=== TEST 3: the sentinels still name a node that refuses writes (READONLY: a replica): the relay does not reconnect to it for every request
--- init
# the replica follows the master the helpers write to
AIRelayTest::seed_world(price => { input => 1_000_000, output => 4_000_000 });
main::start_replica();
$main::FakePid = main::fake_sentinel();
--- http_config eval: $::FakeConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: "Authorization: Bearer $AIRelayTest::TEST_KEY"
--- ignore_response
--- redis_check
my $conns = sub {
    my ($n) = `redis-cli -p $main::Replica info stats` =~ /total_connections_received:(\d+)/;
    return $n // 0;
};
my $before = $conns->();
my $n = 40;
my %status;
for (1 .. $n) {
    my ($s) = eval {
        relay_post('/v1/chat/completions', '{"model":"gpt-4o-mini","max_tokens":10}');
    };
    $status{$s // 'none'}++;
}
my $made = $conns->() - $before;
kill 'TERM', $main::FakePid;
waitpid($main::FakePid, 0);
main::stop_replica();
is(join(',', grep { $_ ne '503' } keys %status), '', 'refused: 503s only')
    or diag(join ' ', %status);
ok($made < $n / 2, "$made connections to the refusing node for $n requests");
like(error_log_text(), qr/still names 127\.0\.0\.1:$main::Replica, which refused a write/,
     'the pause is logged');
--- timeout: 30

