#!/usr/bin/env perl
# `make soak`: a bounded load and fault run against a real Redis (AOF on)
# and nginx with the module, then a reconciliation of money, records and
# reservations (tools/soak/reconcile.pl).  See tools/soak/README.md.
#
# Environment (the Makefile sets TOP, BUILD, SOAK_NGINX, MODULE):
#   SOAK_SECONDS=300    length of the load (30..360)
#   SOAK_CLIENTS=48     concurrent client connections
#   SOAK_SEED=1         seeds the clients' choices, the keys and the mock's
#                       resets
#   SOAK_PORT=27100     nginx on +1, Redis on +2, the mock upstream on +3
#   SOAK_FSYNC=always   Redis appendfsync (always or everysec)
#   SOAK_TTL=5          ai_relay_reservation_ttl, seconds
#   SOAK_DELAY_MS=20    the mock's delay before the first byte
#   SOAK_EVENT_MS=15    between stream events
#   SOAK_RESET_PCT=1    answers the mock cuts with a TCP reset
#   SOAK_STREAM_PCT=45  requests that stream
#   SOAK_ABORT_PCT=15   streams the client abandons after the first event
#   SOAK_RACE_N=20      the race user can pay for N race requests...
#   SOAK_RACE_K=10      ...and N+K of them are sent at once
#   SOAK_KEEP=2         finished run folders kept under build/soak
#
# Everything lives in build/soak/<time>/ (build/soak/latest points at
# it).  Only what this script started is ever stopped; a busy port is
# named and the run exits non-zero before starting anything.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use Soak qw(client_key upstream_key key_masked users user expected_cost
            http_call log_line);
use Cwd qw(abs_path);
use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG strftime);
use Time::HiRes qw(time sleep);
use Digest::SHA qw(sha256_hex);

my $MAIN = $$;
my $T_START = time;

my $TOP = $ENV{TOP} // abs_path("$FindBin::Bin/../..");
my $BUILD = $ENV{BUILD} // "$TOP/build";
my $NGINX = $ENV{SOAK_NGINX} // '/usr/sbin/nginx';
my $MODULE = $ENV{MODULE} // "$BUILD/nginx/objs/ngx_ai_relay_module.so";
# nginx reads $NGINX as sockets inherited from an old binary (upgrade)
delete $ENV{NGINX};

sub setting {
    my ($name, $default, $min, $max) = @_;
    my $v = $ENV{$name} // $default;
    die "$name=$v: a whole number from $min to $max\n"
        unless $v =~ /^\d+$/ && $v >= $min && $v <= $max;
    return $v + 0;
}

my $SECONDS   = setting('SOAK_SECONDS', 300, 30, 360);
my $CLIENTS   = setting('SOAK_CLIENTS', 48, 1, 256);
my $SEED      = setting('SOAK_SEED', 1, 0, 2**31);
my $BASE      = setting('SOAK_PORT', 27100, 1024, 65000);
my $TTL       = setting('SOAK_TTL', 5, 2, 60);
my $DELAY_MS  = setting('SOAK_DELAY_MS', 20, 0, 2000);
my $EVENT_MS  = setting('SOAK_EVENT_MS', 15, 0, 2000);
my $RESET_PCT = setting('SOAK_RESET_PCT', 1, 0, 50);
my $STREAM_PCT = setting('SOAK_STREAM_PCT', 45, 0, 100);
my $ABORT_PCT = setting('SOAK_ABORT_PCT', 15, 0, 100);
my $RACE_N    = setting('SOAK_RACE_N', 20, 1, 1000);
my $RACE_K    = setting('SOAK_RACE_K', 10, 1, 1000);
my $KEEP      = setting('SOAK_KEEP', 2, 1, 100);
my $FSYNC     = $ENV{SOAK_FSYNC} // 'always';
die "SOAK_FSYNC=$FSYNC: always or everysec\n"
    unless $FSYNC =~ /^(always|everysec)$/;

my $NGX_PORT = $BASE + 1;
my $REDIS_PORT = $BASE + 2;
my $MOCK_PORT = $BASE + 3;

# the drain user can pay for about half of what its share of the
# traffic costs on a 2-core machine (~600 requests/s): it runs dry mid-run
my $DRAIN_BALANCE = 1000 * $SECONDS;
my @USERS = users(race_n => $RACE_N, drain_balance => $DRAIN_BALANCE);

# the whole run is bounded: load, then at most this much for the rest
my $HARD_END = $T_START + $SECONDS + 200;

my $STAMP = strftime('%Y%m%dT%H%M%S', localtime $T_START);
my $SOAK = "$BUILD/soak";
my $RUN = "$SOAK/$STAMP";
my $NGX = "$RUN/nginx";

my (%CHILD, $REDIS_PID, $MOCK_PID, $MONITOR_PID, @FAULTS, %STATE);
my $LOGFH;

# ------------------------------------------------------------ utilities

sub logmsg {
    my $line = sprintf "[soak %s +%5.1fs] %s\n", strftime('%H:%M:%S', localtime),
                       time - $T_START, join '', @_;
    print STDERR $line;
    print $LOGFH $line if $LOGFH;
}

sub fail_setup {
    logmsg('ERROR: ', @_);
    cleanup();
    print "not ok - the soak could not run: @_\n";
    exit 2;
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return undef;
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($f, $data) = @_;
    open my $fh, '>', $f or die "$f: $!\n";
    print $fh $data;
    close $fh or die "$f: $!\n";
}

sub alive {
    my ($pid) = @_;
    return 0 unless $pid && -e "/proc/$pid";
    my $st = slurp("/proc/$pid/stat") // return 0;
    return $st =~ /^\d+ \(.*\) Z/s ? 0 : 1;
}

sub cmdline {
    my $c = slurp("/proc/$_[0]/cmdline") // '';
    $c =~ tr/\0/ /;
    return $c;
}

# the children of a process, from /proc
sub children_of {
    my ($ppid) = @_;
    my @kids;
    opendir my $d, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $d) {
        my $st = slurp("/proc/$p/stat") or next;
        push @kids, $p + 0 if $st =~ /^\d+ \(.*\) \S+ (\d+)/s && $1 == $ppid;
    }
    return sort { $a <=> $b } @kids;
}

sub rss_kb {
    my $s = slurp("/proc/$_[0]/status") // return 0;
    return $s =~ /^VmRSS:\s*(\d+)/m ? $1 : 0;
}

sub redis { return Soak::Redis->new(port => $REDIS_PORT, timeout => $_[0] // 10) }

sub wait_until {
    my ($secs, $cond, $step) = @_;
    my $end = time + $secs;
    $end = $HARD_END if $end > $HARD_END;
    while (time < $end) {
        return 1 if $cond->();
        sleep($step // 0.1);
    }
    return $cond->() ? 1 : 0;
}

sub fault {
    my ($name, $t0, $detail) = @_;
    my $f = { name => $name, t0 => $t0, t1 => time, detail => $detail };
    push @FAULTS, $f;
    logmsg(sprintf "fault %-13s %s (%.1fs)", $name, $detail, $f->{t1} - $t0);
    open my $fh, '>>', "$RUN/faults.tsv" or die "$RUN/faults.tsv: $!\n";
    printf $fh "%.3f\t%.3f\t%s\t%s\n", $t0, $f->{t1}, $name, $detail;
    close $fh;
}

# ------------------------------------------------------------ processes

sub ports_free {
    my @busy;
    for my $p ($NGX_PORT, $REDIS_PORT, $MOCK_PORT) {
        my $ss = `ss -Hltnp 'sport = :$p' 2>/dev/null`;
        next unless $ss =~ /\S/;
        my ($who) = $ss =~ /users:\(\("([^"]+)"/;
        push @busy, "port $p is already in use" . ($who ? " by \"$who\"" : '');
    }
    return @busy;
}

sub redis_start {
    my @args = ('redis-server', '--port', $REDIS_PORT, '--bind', '127.0.0.1',
                '--dir', "$RUN/redis", '--daemonize', 'yes',
                '--pidfile', "$RUN/redis/redis.pid",
                '--logfile', "$RUN/redis/redis.log",
                '--appendonly', 'yes', '--appendfsync', $FSYNC,
                '--save', '', '--enable-debug-command', 'local',
                '--maxmemory', '0', '--maxmemory-policy', 'noeviction');
    unlink "$RUN/redis/redis.pid";
    system(@args) == 0 or die "redis-server did not start\n";
    my $r = redis(2);
    my $up = wait_until(60, sub {
        my $pong = eval { $r->cmd('PING') };
        return defined $pong && $pong eq 'PONG';
    }, 0.05);
    die "redis on $REDIS_PORT did not answer PING\n" unless $up;
    my $pid = slurp("$RUN/redis/redis.pid") // '';
    chomp $pid;
    die "redis pid file\n"
        unless $pid && cmdline($pid) =~ /redis-server.*:$REDIS_PORT/;
    $REDIS_PID = $pid;
    return $pid;
}

sub redis_stop {
    return unless $REDIS_PID && alive($REDIS_PID)
                  && cmdline($REDIS_PID) =~ /redis-server.*:$REDIS_PORT/;
    kill 'TERM', $REDIS_PID;
    wait_until(20, sub { !alive($REDIS_PID) });
    kill 'KILL', $REDIS_PID if alive($REDIS_PID);
}

sub nginx_cmd { return ($NGINX, '-p', "$NGX/", '-c', 'conf/nginx.conf',
                        '-e', "$NGX/logs/error.log", @_) }

sub nginx_master {
    my $pid = slurp("$NGX/logs/nginx.pid") // return undef;
    chomp $pid;
    return undef unless $pid && alive($pid)
                        && cmdline($pid) =~ /nginx: master.*\Q$NGX\E/;
    return $pid;
}

sub nginx_workers {
    my $m = nginx_master() or return ();
    return grep { cmdline($_) =~ /nginx: worker/ } children_of($m);
}

sub nginx_start {
    system(nginx_cmd()) == 0 or die "nginx did not start: "
        . (`tail -3 $NGX/logs/error.log` // '') . "\n";
    wait_until(10, sub { nginx_workers() == 2 })
        or die "nginx has no 2 workers\n";
    $STATE{nginx_master} = nginx_master();
}

# QUIT, bounded; the master and its workers are killed if they linger
sub nginx_stop {
    my $m = nginx_master() or return 1;
    my @w = children_of($m);
    kill 'QUIT', $m;
    my $ok = wait_until(30, sub { !alive($m) && !grep { alive($_) } @w });
    if (!$ok) {
        logmsg("nginx did not stop within 30 s of QUIT: killed");
        kill 'KILL', $m, grep { alive($_) } @w;
        wait_until(5, sub { !alive($m) });
    }
    return $ok;
}

sub spawn {
    my ($name, $code) = @_;
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        $SIG{$_} = 'DEFAULT' for qw(TERM INT HUP ALRM);
        undef $LOGFH;
        my $rc = eval { $code->(); 0 } // do { print STDERR "$name: $@"; 1 };
        POSIX::_exit($rc);
    }
    $CHILD{$pid} = $name;
    return $pid;
}

sub reap {
    while ((my $pid = waitpid(-1, WNOHANG)) > 0) {
        delete $CHILD{$pid};
    }
}

# stop our children of a kind: TERM, then KILL after $grace seconds
sub stop_children {
    my ($re, $grace) = @_;
    my @p = grep { $CHILD{$_} =~ $re } keys %CHILD;
    return 0 unless @p;
    kill 'TERM', @p;
    my $end = time + ($grace // 5);
    while (time < $end) {
        reap();
        last unless grep { $CHILD{$_} } @p;
        sleep 0.1;
    }
    my @left = grep { $CHILD{$_} } @p;
    kill 'KILL', @left if @left;
    reap();
    return scalar @left;
}

my $CLEANED = 0;
sub cleanup {
    return if $$ != $MAIN || $CLEANED++;
    stop_children(qr/./, 3);
    nginx_stop() if -d $NGX;
    redis_stop();
}

END { cleanup() }
$SIG{TERM} = $SIG{INT} = $SIG{HUP} = sub { die "interrupted by a signal\n" };
$SIG{PIPE} = 'IGNORE';

# ------------------------------------------------------------ the world

sub seed_world {
    local $ENV{TEST_NGINX_REDIS_PORT} = $REDIS_PORT;
    local $ENV{TEST_NGINX_SERVER_PORT} = $NGX_PORT;
    require "$TOP/t/helpers/AIRelayTest.pm";
    AIRelayTest::reset_redis();
    my $mock = "http://127.0.0.1:$MOCK_PORT";
    AIRelayTest::seed_channel(1, name => 'soak-openai', provider => 'openai',
                              base_url => $mock,
                              keys => [ upstream_key($SEED, 1) ]);
    AIRelayTest::seed_channel(2, name => 'soak-anthropic',
                              provider => 'anthropic', base_url => $mock,
                              keys => [ upstream_key($SEED, 2) ]);
    for my $m (sort keys %Soak::MODELS) {
        my $p = $Soak::MODELS{$m};
        AIRelayTest::seed_model($m, channels => $p->{channel});
        AIRelayTest::seed_price($m, input => $p->{input},
                                output => $p->{output});
    }
    for my $u (@USERS) {
        AIRelayTest::seed_user($u->{uid}, name => "soak-$u->{kind}-$u->{uid}",
                               balance => $u->{balance});
        for my $k (@{ $u->{keys} }) {
            AIRelayTest::seed_key($u->{uid},
                                  client_key($SEED, $u->{uid}, $k->{k}),
                                  id => $k->{id}, name => "k$k->{k}",
                                  rpm => $k->{rpm} // 0,
                                  quota => $k->{quota} // -1);
        }
    }
}

# ------------------------------------------------------------ requests

# one request as a client sends it, and its log line
sub one_request {
    my (%o) = @_;
    my $u = user($o{uid}, @USERS);
    my $key = client_key($SEED, $o{uid}, $o{k});
    my $soak = "$o{phase}-c$o{cid}-$o{seq}";
    my $anth = $o{api} eq 'anthropic';
    my $model = $o{model} // ($anth ? 'soak-claude' : 'soak-mini');
    my $max = $model eq 'soak-race' ? $Soak::RACE_MAX_TOKENS
                                    : $Soak::MAX_TOKENS;
    my $body = '{"model":"' . $model . '","max_tokens":' . $max
               . ',"messages":[{"role":"user","content":"soak ' . $soak
               . ': say something short"}]'
               . ($o{stream} ? ',"stream":true' : '')
               . ($o{usage} ? ',"stream_options":{"include_usage":true}' : '')
               . '}';
    my @h = ($anth ? ("x-api-key: $key", 'anthropic-version: 2023-06-01')
                   : ("Authorization: Bearer $key"),
             'Content-Type: application/json', "X-Soak-Id: $soak");
    my $r = http_call(port => $NGX_PORT,
                      path => $anth ? '/v1/messages' : '/v1/chat/completions',
                      headers => \@h, body => $body, timeout => 30,
                      abort => $o{abort}, sock => $o{sock});
    if ($r->{outcome} eq 'ok' && $r->{status} =~ /^2/) {
        my $b = $r->{body};
        my $bad = !$o{stream} ? ($b !~ /"usage":\{/)
                : $anth ? ($b !~ /"type":"message_stop"/)
                : ($b !~ /^data: \[DONE\]$/m
                   || ($o{usage} xor $b =~ /"usage":\{/));
        if ($bad) {
            $r->{outcome} = 'bad';
            $r->{note} = 'answer not whole: ' . substr($b, -120);
        }
    }
    return { %o, soak => $soak, outcome => $r->{outcome},
             status => $r->{status}, rid => $r->{rid},
             worker => $r->{worker}, bytes => $r->{bytes},
             note => $r->{note}, t0 => sprintf('%.4f', $r->{t0}),
             t1 => sprintf('%.4f', $r->{t1}) };
}

sub append_line {
    my ($file, $line) = @_;
    open my $fh, '>>', $file or die "$file: $!\n";
    syswrite $fh, $line;
    close $fh;
}

# a load client: requests one after the other until $t_end
sub client_main {
    my ($cid, $t_end) = @_;
    srand($SEED * 100_003 + $cid);
    my @pick;
    for my $u (@USERS) { push @pick, ($u->{uid}) x $u->{weight} }
    open my $fh, '>>', "$RUN/clients/c$cid.tsv" or die "$!\n";
    my $seq = 0;
    while (time < $t_end && $seq < 1_000_000) {
        $seq++;
        my $uid = $pick[int rand @pick];
        my $u = user($uid, @USERS);
        my $k = $u->{keys}[int rand @{ $u->{keys} }]{k};
        my $api = rand() < 0.2 ? 'anthropic' : 'openai';
        my $stream = rand() * 100 < $STREAM_PCT ? 1 : 0;
        my $usage = ($stream && $api eq 'openai' && rand() < 0.5) ? 1 : 0;
        my $abort = ($stream && rand() * 100 < $ABORT_PCT) ? 1 : 0;
        my $r = one_request(phase => 'load', cid => $cid, seq => $seq,
                            uid => $uid, k => $k, api => $api,
                            stream => $stream, usage => $usage,
                            abort => $abort);
        syswrite $fh, log_line($r);
    }
    close $fh;
}

# N+K requests against the race user, sent at the same moment
sub race {
    my $n = $RACE_N + $RACE_K;
    pipe(my $rd, my $wr) or die "pipe: $!\n";
    my @p;
    for my $i (1 .. $n) {
        push @p, spawn("race$i", sub {
            close $wr;
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                          PeerPort => $NGX_PORT,
                                          Proto => 'tcp', Timeout => 5);
            my $go;
            sysread($rd, $go, 1);           # EOF: the parent said go
            my $r = one_request(phase => 'race', cid => $i, seq => 1,
                                uid => 10, k => 1, api => 'openai',
                                model => 'soak-race', stream => 0,
                                usage => 0, abort => 0, sock => $s);
            append_line("$RUN/clients/race.tsv", log_line($r));
        });
    }
    close $rd;
    sleep 0.5;                              # all connected
    my $t0 = time;
    close $wr;
    wait_until(40, sub { reap(); !grep { $CHILD{$_} } @p });
    stop_children(qr/^race/, 1);
    return $t0;
}

# the harness's own check before the load: four answers, four records,
# exactly priced
sub probe {
    my @r;
    my $seq = 0;
    for my $c (['openai', 0, 0], ['openai', 1, 1], ['anthropic', 0, 0],
               ['anthropic', 1, 0]) {
        my $r = one_request(phase => 'probe', cid => 0, seq => ++$seq,
                            uid => 11, k => 1, api => $c->[0],
                            stream => $c->[1], usage => $c->[2], abort => 0);
        append_line("$RUN/clients/probe.tsv", log_line($r));
        push @r, $r;
    }
    my @bad = grep { $_->{outcome} ne 'ok' || $_->{status} ne '200'
                     || $_->{rid} !~ /^[0-9a-f]{32}$/ } @r;
    return 'probe requests: ' . join(', ', map {
        "$_->{soak} $_->{status} $_->{outcome} $_->{note}" } @bad) if @bad;
    my $want = 0;
    $want += expected_cost($_->{api} eq 'anthropic' ? 'soak-claude'
                           : 'soak-mini', $_->{api}) for @r;
    my $r = redis();
    my $bal0 = user(11, @USERS)->{balance};
    my $ok = wait_until(5, sub {
        my $b = eval { $r->cmd('HGET', 'ar:{u11}:user', 'balance') } // 0;
        return $bal0 - $b == $want;
    });
    return "probe: the balance did not fall by $want" unless $ok;
    return '';
}

# ------------------------------------------------------------ monitor

# balances every 0.25 s, open reservations every second, worker RSS
# every 2 s, until TERM
sub monitor_main {
    my $r = redis(2);
    my $stop = 0;
    $SIG{TERM} = sub { $stop = 1 };
    open my $bf, '>>', "$RUN/balances.tsv" or die "$!\n";
    open my $rf, '>>', "$RUN/rss.tsv" or die "$!\n";
    open my $sf, '>>', "$RUN/reservations.tsv" or die "$!\n";
    my ($next_rss, $next_res) = (0, 0);
    my $end = $HARD_END;
    while (!$stop && time < $end) {
        my @uids = map { $_->{uid} } @USERS;
        my @b = eval {
            $r->pipeline(map { ['HGET', "ar:{u$_}:user", 'balance'] } @uids)
        };
        if (@b == @uids) {
            syswrite $bf, sprintf("%.3f\t%s\n", time, join "\t", map {
                my $v = $b[$_];
                "$uids[$_]:" . (ref $v || !defined $v ? '' : $v)
            } 0 .. $#uids);
        }
        if (time >= $next_res) {
            $next_res = time + 1;
            my $t = time;
            my @res = eval {
                $r->pipeline(map { ['HKEYS', "ar:{u$_}:res"] } @uids)
            };
            if (@res == @uids) {
                for my $i (0 .. $#uids) {
                    next unless ref $res[$i] eq 'ARRAY' && @{ $res[$i] };
                    syswrite $sf, sprintf("%.3f\t%d\t%s\n", $t, $uids[$i],
                                          join ',', @{ $res[$i] });
                }
            }
        }
        if (time >= $next_rss) {
            $next_rss = time + 2;
            my @w = nginx_workers();
            syswrite $rf, sprintf("%.3f\t%s\n", time,
                                  join "\t", map { "$_:" . rss_kb($_) } @w)
                if @w;
        }
        sleep 0.25;
    }
}

# ------------------------------------------------------------ faults

sub f_redis_sleep {
    my ($secs) = @_;
    my $t0 = time;
    my $r = redis($secs + 10);
    my $res = eval { $r->cmd('DEBUG', 'SLEEP', $secs) } // "error: $@";
    fault('redis-sleep', $t0, "DEBUG SLEEP $secs (timeout 300ms): $res");
}

sub f_oom {
    my ($secs) = @_;
    my $t0 = time;
    my $r = redis(5);
    $r->cmd('CONFIG', 'SET', 'maxmemory', '1');
    my $probe = eval { $r->cmd('SET', 'soak:oom-probe', '1'); 'accepted' }
                // $@;
    $probe =~ s/\s+$//;
    sleep $secs;
    my $back = wait_until(10, sub {
        eval { $r->cmd('CONFIG', 'SET', 'maxmemory', '0'); 1 };
    }, 0.1);
    fault('redis-oom', $t0, "maxmemory 1 byte for ${secs}s, a write got: "
          . "$probe; restored: " . ($back ? 'yes' : 'NO'));
}

sub f_script_flush {
    my $t0 = time;
    my $res = eval { redis(5)->cmd('SCRIPT', 'FLUSH') } // "error: $@";
    fault('script-flush', $t0, "SCRIPT FLUSH: $res");
}

sub f_redis_kill {
    my $t0 = time;
    my $old = $REDIS_PID;
    kill 'KILL', $old;
    wait_until(10, sub { !alive($old) }, 0.01);
    my $down = time;
    sleep 0.5;
    redis_start();
    fault('redis-kill', $t0, sprintf("kill -9 %d, restarted from the AOF "
          . "as %d: down %.2fs", $old, $REDIS_PID, time - $down));
}

sub f_reload {
    my ($n) = @_;
    my $t0 = time;
    my @before = nginx_workers();
    my $rc = system(nginx_cmd('-s', 'reload'));
    my %old = map { ($_ => 1) } @before;
    wait_until(10, sub { (grep { !$old{$_} } nginx_workers()) == 2 });
    my @after = nginx_workers();
    fault('nginx-reload', $t0, "reload $n (rc $rc): workers @before -> "
          . join(' ', grep { !$old{$_} } @after));
}

sub f_worker_kill {
    my $t0 = time;
    my @w = nginx_workers();
    my $victim = $w[0];
    kill 'KILL', $victim;
    $STATE{killed_worker} = $victim;
    $STATE{killed_at} = $t0;
    wait_until(10, sub { my @n = nginx_workers();
                         @n == 2 && !grep { $_ == $victim } @n });
    fault('worker-kill', $t0, "kill -9 worker $victim; workers now "
          . join(' ', nginx_workers()));
}

sub f_race {
    my $t0 = race();
    my @r = map { Soak::parse_log_line($_) }
            split /^/, slurp("$RUN/clients/race.tsv") // '';
    my %st;
    $st{$_->{status} || $_->{outcome}}++ for @r;
    $STATE{race_at} = $t0;
    fault('race', $t0, sprintf("%d requests at once against a balance for "
          . "%d: %s", $RACE_N + $RACE_K, $RACE_N,
          join(', ', map { "$st{$_} x $_" } sort keys %st)));
}

# ------------------------------------------------------------ draining

sub settled_total {
    my $r = redis();
    my @v = eval { $r->pipeline(map { ['HGET', "ar:{u$_->{uid}}:user",
                                       'requests'] } @USERS) };
    return undef unless @v == @USERS;
    my $n = 0;
    $n += (ref $_ ? 0 : $_ // 0) for @v;
    return $n;
}

# until the settled count holds still for $quiet seconds (bounded)
sub drain {
    my ($what, $max, $quiet) = @_;
    $quiet //= 3;
    my ($last, $since) = (-1, time);
    my $t0 = time;
    my $ok = wait_until($max, sub {
        my $n = settled_total() // return 0;
        if ($n != $last) { ($last, $since) = ($n, time); return 0 }
        return time - $since >= $quiet;
    }, 0.5);
    logmsg(sprintf "%s: %d requests settled, %s after %.1fs", $what, $last,
           $ok ? 'steady' : 'STILL MOVING', time - $t0);
    return $ok;
}

sub journal_files {
    opendir my $d, "$RUN/journal" or return ();
    return grep { !/^\./ } readdir $d;
}

# ------------------------------------------------------------ the run

sub nginx_conf {
    my $log_format = q{'$remote_addr [$time_local] $request_id $pid '
                          '"$request_method $uri" $status '
                          'key=$ai_relay_key key_id=$ai_relay_key_id '
                          'user=$ai_relay_user model=$ai_relay_model '
                          'stream=$ai_relay_stream '
                          'prompt=$ai_relay_prompt_tokens '
                          'completion=$ai_relay_completion_tokens '
                          'cost=$ai_relay_cost usage=$ai_relay_usage_source '
                          'time=$request_time error="$ai_relay_error"'};
    my $loc = <<"EOL";
            proxy_pass              \$ai_relay_upstream_url;
            proxy_http_version      1.1;
            proxy_set_header        Connection "";
            proxy_set_header        X-Request-Id \$request_id;
            proxy_buffering         off;
            proxy_connect_timeout   5s;
            proxy_send_timeout      10s;
            proxy_read_timeout      20s;
            add_header              X-Request-Id \$request_id always;
            add_header              X-Soak-Worker \$pid always;
EOL
    # started by root, the workers would be "nobody", who may not reach
    # a checkout under /root or a private temporary folder
    my $user = $> == 0 ? 'user  root;' : '';
    return <<"EOC";
# make soak: written by tools/soak/soak.pl, like conf.example
load_module  $MODULE;

worker_processes  2;
$user
worker_rlimit_nofile  16384;
error_log  $NGX/logs/error.log notice;
pid        $NGX/logs/nginx.pid;

events {
    worker_connections  4096;
}

http {
    client_body_temp_path  $NGX/tmp/body;
    proxy_temp_path        $NGX/tmp/proxy;
    fastcgi_temp_path      $NGX/tmp/fastcgi;
    uwsgi_temp_path        $NGX/tmp/uwsgi;
    scgi_temp_path         $NGX/tmp/scgi;

    log_format  ai_relay  escape=json $log_format;
    access_log  $NGX/logs/access.log ai_relay;

    ai_relay_redis                  127.0.0.1:$REDIS_PORT;
    ai_relay_redis_connect_timeout  300ms;
    ai_relay_redis_timeout          300ms;
    ai_relay_reservation_ttl        ${TTL}s;
    ai_relay_records_max            100000000;
    ai_relay_journal                $RUN/journal/ai_relay;

    client_max_body_size     1m;
    client_body_buffer_size  64k;

    server {
        listen  127.0.0.1:$NGX_PORT;

        location /v1/ {
            ai_relay                     openai;
            ai_relay_default_max_tokens  4096;
$loc        }

        location /v1/messages {
            ai_relay                anthropic;
$loc        }
    }
}
EOC
}

# the last SOAK_KEEP - 1 finished runs stay (with this one, SOAK_KEEP);
# interrupted ones (no summary.txt) go
sub prune_old_runs {
    opendir my $d, $SOAK or return;
    my @runs = sort grep { /^\d{8}T\d{6}$/ && -d "$SOAK/$_" } readdir $d;
    my @done = grep { -f "$SOAK/$_/summary.txt" } @runs;
    shift @done while @done > $KEEP - 1;
    my %keep = map { ($_ => 1) } @done;
    remove_tree("$SOAK/$_") for grep { !$keep{$_} } @runs;
}

sub main {
    -f $MODULE or fail_setup("no module at $MODULE (make build)");
    -x $NGINX or fail_setup("no nginx at $NGINX");
    my @busy = ports_free();
    if (@busy) {
        print STDERR "soak: $_: stop that program or set SOAK_PORT\n"
            for @busy;
        print "not ok - the soak could not run: @busy\n";
        exit 2;
    }

    make_path($SOAK);
    prune_old_runs();
    make_path("$RUN/redis", "$RUN/clients", "$RUN/journal",
              "$NGX/conf", "$NGX/logs", "$NGX/tmp");
    chmod 01777, "$RUN/journal", "$NGX/logs", "$NGX/tmp";
    unlink "$SOAK/latest";
    symlink $STAMP, "$SOAK/latest";
    open $LOGFH, '>>', "$RUN/soak.log" or die "$RUN/soak.log: $!\n";
    $LOGFH->autoflush(1);
    logmsg("run folder $RUN; nginx :$NGX_PORT, redis :$REDIS_PORT "
           . "(appendfsync $FSYNC), mock :$MOCK_PORT; load ${SECONDS}s, "
           . "$CLIENTS clients, seed $SEED");

    eval { redis_start(); 1 } or fail_setup("redis: $@");
    seed_world();
    $STATE{users} = [ map { { uid => $_->{uid}, kind => $_->{kind},
                              balance => $_->{balance},
                              keys => $_->{keys} } } @USERS ];
    # key budgets as seeded, for the reconciliation
    $STATE{quota0} = { map { my $u = $_;
        map { ($_->{id} => $_->{quota} // -1) } @{ $u->{keys} } } @USERS };

    $MOCK_PID = spawn('mock', sub {
        exec($^X, "$FindBin::Bin/mock-upstream.pl", '--port', $MOCK_PORT,
             '--delay_ms', $DELAY_MS, '--event_ms', $EVENT_MS,
             '--reset_pct', $RESET_PCT, '--seed', $SEED,
             '--log', "$RUN/mock.tsv", '--ready', "$RUN/mock.ready",
             '--max_seconds', int($HARD_END - time) + 30) or die "exec: $!";
    });
    wait_until(10, sub { -s "$RUN/mock.ready" })
        or fail_setup('the mock upstream did not start');

    spew("$NGX/conf/nginx.conf", nginx_conf());
    eval { nginx_start(); 1 } or fail_setup("nginx: $@");

    my $err = probe();
    fail_setup("the harness's sanity check failed: $err") if $err;
    logmsg('probe: 4 requests answered and billed exactly');

    $MONITOR_PID = spawn('monitor', \&monitor_main);

    # ---- load and faults
    my $t_load = time;
    my $t_end = $t_load + $SECONDS;
    $STATE{load_start} = $t_load;
    $STATE{load_end} = $t_end;
    for my $cid (1 .. $CLIENTS) {
        spawn("client$cid", sub { client_main($cid, $t_end) });
    }
    logmsg("load: $CLIENTS clients until +${SECONDS}s");

    # the worker kill comes after the Redis faults and before the next
    # reload: whatever a worker still holds in memory then is lost
    my @plan = ([0.08, \&f_redis_sleep, 0.6],
                [0.14, \&f_reload, 1],
                [0.20, \&f_oom, 2],
                [0.28, \&f_race],
                [0.36, \&f_redis_kill],
                [0.44, \&f_script_flush],
                [0.50, \&f_worker_kill],
                [0.58, \&f_reload, 2],
                [0.70, \&f_redis_sleep, 1.5],
                [0.78, \&f_reload, 3]);
    for my $p (@plan) {
        my ($frac, $fn, @args) = @$p;
        my $at = $t_load + $frac * $SECONDS;
        while (time < $at) { reap(); sleep 0.05 }
        $fn->(@args);
    }

    # ---- the clients stop by themselves at $t_end; a request lasts 30 s
    # at most
    wait_until($t_end - time + 35, sub {
        reap(); !grep { /^client/ } values %CHILD });
    my $stuck = stop_children(qr/^client/, 2);
    logmsg("load over" . ($stuck ? ": $stuck clients killed" : ''));
    $STATE{clients_killed} = $stuck;

    drain('after the load', 30);

    # ---- a restart: worker exits write journals, new workers replay them
    my $t_restart = time;
    $STATE{quit_ok_restart} = nginx_stop() ? 1 : 0;
    my @jf = journal_files();
    $STATE{journal_files_at_restart} = scalar @jf;
    logmsg("nginx stopped; journal files: " . (@jf ? "@jf" : 'none'));
    eval { nginx_start(); 1 } or fail_setup("nginx restart: $@");
    $STATE{restart_at} = $t_restart;
    wait_until(20, sub { !grep { /^ai_relay\.\d+(\.\d+\.\d+\.claimed)?$/ }
                         journal_files() });
    drain('after the restart', 20);

    # ---- past the TTL of everything reserved or leased before, one
    # request per user: AUTH refunds what is past its deadline
    my $sweep_at = $t_restart + $TTL + 1.5;
    sleep($sweep_at - time) if $sweep_at > time;
    my $seq = 0;
    for my $u (@USERS) {
        my $r = one_request(phase => 'sweep', cid => 0, seq => ++$seq,
                            uid => $u->{uid}, k => 1, api => 'openai',
                            stream => 0, usage => 0, abort => 0);
        append_line("$RUN/clients/sweep.tsv", log_line($r));
    }
    $STATE{sweep_at} = $sweep_at;
    logmsg('sweep: one request per user past the TTL');
    drain('after the sweep', 15, 2);

    # ---- stop nginx (leases go back at worker exit) and read Redis
    $STATE{quit_ok_end} = nginx_stop() ? 1 : 0;
    $STATE{journal_files_at_end} = [ journal_files() ];
    stop_children(qr/^monitor$/, 3);
    dump_redis();
    stop_children(qr/^mock$/, 5);
    redis_stop();
    $STATE{faults} = \@FAULTS;
    $STATE{settings} = { seconds => $SECONDS, clients => $CLIENTS,
                         seed => $SEED, ttl => $TTL, fsync => $FSYNC,
                         race_n => $RACE_N, race_k => $RACE_K,
                         reset_pct => $RESET_PCT, abort_pct => $ABORT_PCT,
                         stream_pct => $STREAM_PCT, ports => [$NGX_PORT,
                         $REDIS_PORT, $MOCK_PORT] };
    $STATE{ended} = time;
    spew("$RUN/state.json", Soak::json_coder()->pretty->encode(\%STATE));
    close $LOGFH;
    undef $LOGFH;

    # ---- the verdict
    my @secrets = map { client_key($SEED, $_->{uid}, $_->{k}) }
                  map { my $u = $_; map { { uid => $u->{uid}, k => $_->{k} } }
                        @{ $u->{keys} } } @USERS;
    my $rc = system($^X, "$FindBin::Bin/reconcile.pl", $RUN,
                    '--seed', $SEED);
    printf STDERR "[soak] %.0fs in all; run folder %s\n", time - $T_START,
        $RUN;
    exit($rc == 0 ? 0 : 1);
}

# the state reconcile.pl needs, read once nginx has stopped
sub dump_redis {
    my $r = redis(30);
    my $j = Soak::json_coder();
    open my $rf, '>', "$RUN/records.tsv" or die "$!\n";
    my %out;
    for my $u (@USERS) {
        my $uid = $u->{uid};
        my $p = "ar:{u$uid}:";
        my $from = '-';
        while (1) {
            my $e = $r->cmd('XRANGE', "${p}log", $from, '+', 'COUNT', 1000);
            last unless @$e;
            for my $entry (@$e) {
                my ($id, $f) = @$entry;
                for (my $i = 0; $i < @$f; $i += 2) {
                    next unless $f->[$i] eq 'r';
                    print $rf "$uid\t$id\t$f->[$i + 1]\n";
                }
            }
            $from = '(' . $e->[-1][0];
        }
        my %user = @{ $r->cmd('HGETALL', "${p}user") };
        my %res = @{ $r->cmd('HGETALL', "${p}res") };
        my %keys;
        for my $k (@{ $u->{keys} }) {
            my $h = sha256_hex(client_key($SEED, $uid, $k->{k}));
            $keys{$k->{id}} = { @{ $r->cmd('HGETALL', "${p}key:$h") } };
        }
        $out{$uid} = { user => \%user, res => \%res, keys => \%keys,
                       log_len => $r->cmd('XLEN', "${p}log") };
    }
    close $rf;
    $out{info} = { map { /^(\w+):(.*)$/ ? ($1 => $2) : () }
                   split /\r\n/, $r->cmd('INFO', 'persistence') };
    spew("$RUN/redis-final.json", $j->pretty->encode(\%out));
}

my $ok = eval { main(); 1 };
if (!$ok) {
    my $e = $@;
    logmsg("ERROR: $e");
    cleanup();
    print "not ok - the soak did not finish: $e";
    exit 2;
}
