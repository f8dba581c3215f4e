package AiRelayCli;

# Helpers for the ai-relay CLI tests (prove -I t/cli/lib t/cli).
#
# Each test file gets its own redis-server on a free port in a temporary
# folder; it is stopped and removed when the file ends.  MariaDB, when a
# test asks for it, likewise.  A tiny RESP client reads Redis directly,
# so the tests check the exact keys the CLI wrote.

use strict;
use warnings;

use Exporter 'import';
use File::Temp qw(tempdir);
use File::Spec;
use Cwd qw(abs_path);
use IO::Socket::INET;
use IPC::Open3;
use Symbol qw(gensym);
use Time::HiRes qw(sleep);
use JSON::PP;
use Test::More;

our @EXPORT = qw(
    cli cli_json cli_ok rejected redis_cmd hgetall smembers state
    snapshot flush sqlite_db start_mariadb mariadb_exec $NOW $TMP
);

my $top = abs_path(File::Spec->catdir((File::Spec->splitpath(
              abs_path(__FILE__)))[1], '..', '..', '..'));

our $CLI = $ENV{AI_RELAY_CLI} || "$top/build/ai-relay";
our $NOW = 1767225600;    # 2026-01-01T00:00:00Z, pinned via AI_RELAY_NOW
our $TMP = tempdir('ai-relay-cli-XXXXXX', TMPDIR => 1, CLEANUP => 1);

my ($redis_port, $redis_sock, $redis_pid, $mariadb_pid, $mariadb_dir);

die "no CLI binary at $CLI (make cli)\n" unless -x $CLI;

sub free_port {
    for (1 .. 100) {
        my $p = 20000 + int(rand(20000));
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $p, Listen => 1,
                                      ReuseAddr => 0);
        if ($s) { close $s; return $p; }
    }
    die "no free port\n";
}

sub start_redis {
    $redis_port = free_port();
    my $dir = "$TMP/redis";
    mkdir $dir;
    system('redis-server', '--port', $redis_port, '--bind', '127.0.0.1',
           '--unixsocket', "$dir/redis.sock", '--save', '', '--appendonly',
           'no', '--daemonize', 'yes', '--dir', $dir, '--pidfile',
           "$dir/redis.pid", '--logfile', "$dir/redis.log",
           '--databases', '4') == 0
        or die "cannot start redis-server\n";
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$redis_port");
        if ($s && -s "$dir/redis.pid" && -S "$dir/redis.sock") {
            close $s;
            open my $f, '<', "$dir/redis.pid" or die;
            $redis_pid = <$f> // '';
            chomp $redis_pid;
            if ($redis_pid =~ /^\d+$/) {
                $redis_sock = "$dir/redis.sock";
                $ENV{AI_RELAY_REDIS} = "127.0.0.1:$redis_port";
                return;
            }
            $redis_pid = undef;
        }
        sleep 0.05;
    }
    die "redis-server did not start\n";
}

sub redis_port { $redis_port }
sub redis_sock { $redis_sock }

END {
    kill 'TERM', $redis_pid if $redis_pid;
    if ($mariadb_pid) {
        kill 'TERM', $mariadb_pid;
        waitpid $mariadb_pid, 0;
    }
    # give redis a moment so the temporary folder can go
    sleep 0.1 if $redis_pid;
}

start_redis();

delete $ENV{AI_RELAY_REDIS_PASSWORD};
delete $ENV{AI_RELAY_REDIS_DB};
$ENV{AI_RELAY_NOW} = $NOW;

# ------------------------------------------------------------- RESP

my $conn;

sub redis_conn {
    $conn ||= IO::Socket::INET->new(PeerAddr => "127.0.0.1:$redis_port")
        or die "cannot connect to test redis: $!\n";
    return $conn;
}

sub read_reply {
    my ($s) = @_;
    my $line = <$s>;
    die "redis closed the connection\n" unless defined $line;
    $line =~ s/\r\n\z//;
    my ($t, $v) = (substr($line, 0, 1), substr($line, 1));
    return $v if $t eq '+';
    return { error => $v } if $t eq '-';
    return $v + 0 if $t eq ':';
    if ($t eq '$') {
        return undef if $v < 0;
        my $buf = '';
        while (length($buf) < $v + 2) {
            read($s, $buf, $v + 2 - length($buf), length($buf)) or die;
        }
        return substr($buf, 0, $v);
    }
    if ($t eq '*') {
        return undef if $v < 0;
        return [ map { read_reply($s) } 1 .. $v ];
    }
    die "bad reply line $line\n";
}

# redis_cmd('HGETALL', 'key') -> the reply (arrays as array refs)
sub redis_cmd {
    my @args = @_;
    my $s = redis_conn();
    my $req = '*' . scalar(@args) . "\r\n";
    for my $a (@args) {
        $req .= '$' . length($a) . "\r\n$a\r\n";
    }
    print $s $req;
    return read_reply($s);
}

sub hgetall {
    my $r = redis_cmd('HGETALL', $_[0]);
    return { @$r };
}

sub smembers {
    my $r = redis_cmd('SMEMBERS', $_[0]);
    return [ sort @$r ];
}

sub flush {
    redis_cmd('FLUSHALL');
}

sub all_keys {
    my @keys;
    my $cursor = 0;
    do {
        my $r = redis_cmd('SCAN', $cursor, 'COUNT', 1000);
        $cursor = $r->[0];
        push @keys, @{ $r->[1] };
    } while ($cursor ne '0');
    return sort @keys;
}

# every key's DUMP: compared before and after a command that must not
# change anything
sub snapshot {
    my %s;
    for my $k (all_keys()) {
        $s{$k} = redis_cmd('DUMP', $k);
    }
    return \%s;
}

# every key's content, comparable across runs (stream ids left out)
sub state {
    my %s;
    for my $k (all_keys()) {
        my $t = redis_cmd('TYPE', $k);
        if ($t eq 'hash') {
            $s{$k} = hgetall($k);
        } elsif ($t eq 'set') {
            $s{$k} = smembers($k);
        } elsif ($t eq 'string') {
            $s{$k} = redis_cmd('GET', $k);
        } elsif ($t eq 'stream') {
            $s{$k} = [ map { $_->[1] } @{ redis_cmd('XRANGE', $k, '-', '+') } ];
        } else {
            $s{$k} = "($t)";
        }
    }
    return \%s;
}

# ------------------------------------------------------------- the CLI

# cli(@args) -> ($exit, $stdout, $stderr)
sub cli {
    my @args = @_;
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, $CLI, @args);
    close $in;
    local $/;
    my $o = <$out> // '';
    my $e = <$err> // '';
    waitpid $pid, 0;
    return ($? >> 8, $o, $e);
}

# cli_json(@args) -> the decoded stdout of a successful --json command
sub cli_json {
    my ($rc, $out, $err) = cli(@_, '--json');
    is($rc, 0, "ai-relay @_ --json exits 0") or diag($err);
    my $j = eval { JSON::PP->new->decode($out) };
    ok($j, "ai-relay @_ prints JSON") or diag($out);
    return $j;
}

# cli_ok(@args) -> stdout, checking the exit code
sub cli_ok {
    my ($rc, $out, $err) = cli(@_);
    is($rc, 0, "ai-relay @_") or diag($err);
    return wantarray ? ($out, $err) : $out;
}

# rejected([args], exit, qr/message/): fails as told, changes nothing
sub rejected {
    my ($args, $code, $re) = @_;
    my $before = snapshot();
    my ($rc, $out, $err) = cli(@$args);
    is($rc, $code, "ai-relay @$args exits $code");
    like($err, $re, "ai-relay @$args says why");
    is_deeply(snapshot(), $before, "ai-relay @$args changes nothing");
    return ($out, $err);
}

# ------------------------------------------------------------ databases

sub sqlite_db {
    my ($name, @sql) = @_;
    my $file = "$TMP/$name";
    unlink $file;
    open my $p, '|-', 'sqlite3', $file or die "sqlite3: $!\n";
    print $p "$_\n" for @sql;
    close $p or die "sqlite3 failed\n";
    return $file;
}

# a private mariadbd on a unix socket; the socket path, or undef with
# the reason why it cannot run
sub start_mariadb {
    my $install = (grep { -x } map { "$_/mariadb-install-db" }
                   split /:/, "/usr/bin:/usr/sbin:$ENV{PATH}")[0]
               || (grep { -x } map { "$_/mysql_install_db" }
                   split /:/, "/usr/bin:/usr/sbin:$ENV{PATH}")[0];
    my $server = (grep { -x } ('/usr/sbin/mariadbd', '/usr/sbin/mysqld',
                               map { "$_/mariadbd" } split /:/, $ENV{PATH}))[0];
    return (undef, 'mariadb-server is not installed')
        unless $install && $server;
    return (undef, 'the mariadb client is not installed')
        unless grep { -x "$_/mariadb" } split /:/, "/usr/bin:$ENV{PATH}";

    $mariadb_dir = "$TMP/mariadb";
    mkdir $mariadb_dir;
    my @user = $> == 0 ? ('--user=root') : ();
    system("$install --no-defaults --datadir=$mariadb_dir/data @user "
           . "--auth-root-authentication-method=normal --skip-test-db "
           . "--skip-name-resolve > $mariadb_dir/install.log 2>&1") == 0
        or return (undef, "mariadb-install-db failed: "
                          . `tail -3 $mariadb_dir/install.log`);

    my $sock = "$mariadb_dir/sock";
    $mariadb_pid = fork();
    if ($mariadb_pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        exec $server, '--no-defaults', "--datadir=$mariadb_dir/data",
             "--socket=$sock", '--skip-networking', @user,
             "--pid-file=$mariadb_dir/pid",
             "--log-error=$mariadb_dir/error.log",
             '--innodb-buffer-pool-size=16M';
        exit 127;
    }

    for (1 .. 200) {
        if (-S $sock && system("mariadb --no-defaults -S $sock -uroot "
                               . "-e 'SELECT 1' >/dev/null 2>&1") == 0)
        {
            return ($sock);
        }
        if (waitpid($mariadb_pid, 1) == $mariadb_pid) {
            $mariadb_pid = undef;
            return (undef, 'mariadbd exited: '
                           . `tail -3 $mariadb_dir/error.log 2>/dev/null`);
        }
        sleep 0.05;
    }
    return (undef, 'mariadbd did not start in 10 s');
}

sub mariadb_exec {
    my ($sock, $db, @sql) = @_;
    open my $p, '|-', 'mariadb', '--no-defaults', '-S', $sock, '-uroot',
         ($db ? ($db) : ()) or die "mariadb: $!\n";
    print $p "$_\n" for @sql;
    close $p or die "mariadb failed\n";
}

1;
