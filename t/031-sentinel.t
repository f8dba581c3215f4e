# Redis Sentinel: the relay finds its master through three sentinels the
# test starts itself (t/sentinel.sh: master on TEST_NGINX_SENTINEL_REDIS_PORT,
# replica on +1, sentinels on TEST_NGINX_SENTINEL_PORT..+2), billed exactly;
# the master killed mid-run: a window of 503s, then the promoted replica
# serves, no settlement lost or doubled.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
# once: the second block kills the master
plan tests => repeat_each() * 19;
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
