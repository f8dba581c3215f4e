package Soak;

# Shared pieces of `make soak` (tools/soak/soak.pl): the seeded world
# (users, keys, models, prices), a Redis client with timeouts, the HTTP
# client every load client uses, and the request log format.
#
# No plaintext key is ever written to a file: client and upstream keys
# are derived from the run's seed (SOAK_SEED) in memory, by the driver,
# the clients and the mock upstream alike.

use strict;
use warnings;

use IO::Socket::INET;
use IO::Select;
use Socket qw(SOL_SOCKET SO_LINGER IPPROTO_TCP TCP_NODELAY);
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(time);
use Exporter 'import';

our @EXPORT_OK = qw(client_key upstream_key key_masked users user
                    price_of expected_cost json_coder http_call
                    log_fields log_line parse_log_line);

# ------------------------------------------------------------------ world

# Model names and their prices, micro-USD per 1M tokens.  The mock
# reports prompt 12 and completion 7 (OpenAI) or 9 (Anthropic) tokens,
# so an answer with upstream usage costs exactly 40 or 48 micro-USD; the
# race model reports max_tokens (1000) completion tokens at 1 uUSD each
# and no input price, so its cost equals its reservation: 1000.
our %MODELS = (
    'soak-mini'   => { channel => 1, input => 1_000_000, output => 4_000_000 },
    'soak-claude' => { channel => 2, input => 1_000_000, output => 4_000_000 },
    'soak-race'   => { channel => 1, input => 0,         output => 1_000_000 },
);
our %USAGE = (openai => [12, 7], anthropic => [12, 9]);
our $RACE_MAX_TOKENS = 1000;
our $MAX_TOKENS = 64;

sub price_of { return $MODELS{$_[0]} }

# the cost of an answer with the mock's usage, as README's formula says
sub expected_cost {
    my ($model, $api) = @_;
    my $p = $MODELS{$model} or return undef;
    my ($in, $out) = @{ $USAGE{$api} };
    $out = $RACE_MAX_TOKENS if $model eq 'soak-race';
    my $sum = $in * $p->{input} + $out * $p->{output};
    return int(($sum + 999_999) / 1_000_000);
}

# Users: kind, balance (micro-USD), keys (each with its limits).  "leased"
# users' keys have no limits (a busy worker serves them from a lease);
# "auth" users' keys have an RPM limit or a budget, so every request goes
# through AUTH; "drain" runs out of money during the run (leased while it
# can be); "race" can pay for exactly $RACE_N race requests; "probe" is the
# harness's own sanity check and the final sweep.
sub users {
    my (%o) = @_;
    my $race_n = $o{race_n} // 20;
    my $drain = $o{drain_balance} // 200_000;
    my @u;
    for my $uid (1 .. 4) {
        push @u, { uid => $uid, kind => 'leased', balance => 1_000_000_000,
                   weight => 10,
                   keys => [ { k => 1 }, { k => 2 } ] };
    }
    for my $uid (5 .. 8) {
        push @u, { uid => $uid, kind => 'auth', balance => 200_000_000,
                   weight => 8,
                   keys => [ { k => 1, rpm => 1_000_000 },
                             { k => 2, quota => 100_000_000 } ] };
    }
    push @u, { uid => 9, kind => 'drain', balance => $drain, weight => 6,
               keys => [ { k => 1 }, { k => 2 } ] };
    push @u, { uid => 10, kind => 'race',
               balance => $race_n * expected_cost('soak-race', 'openai'),
               weight => 0, keys => [ { k => 1 } ] };
    push @u, { uid => 11, kind => 'probe', balance => 10_000_000,
               weight => 0, keys => [ { k => 1 } ] };
    for my $u (@u) {
        $_->{id} = $u->{uid} * 10 + $_->{k} for @{ $u->{keys} };
    }
    return @u;
}

sub user {
    my ($uid, @u) = @_;
    my ($x) = grep { $_->{uid} == $uid } @u;
    return $x;
}

sub client_key {
    my ($seed, $uid, $k) = @_;
    return 'sk-soak' . substr(sha256_hex("soak client key $seed $uid $k"),
                              0, 41);
}

sub upstream_key {
    my ($seed, $channel) = @_;
    return 'sk-upstream-soak-'
           . substr(sha256_hex("soak upstream key $seed $channel"), 0, 32);
}

sub key_masked {
    my ($key) = @_;
    return substr($key, 0, 5) . "\xe2\x80\xa6" . substr($key, -4);
}

sub json_coder {
    my $j = eval { require Cpanel::JSON::XS; Cpanel::JSON::XS->new }
            || do { require JSON::PP; JSON::PP->new };
    return $j->canonical;
}

# ------------------------------------------------------------ request log

# one line per request a client sent, tab separated
our @LOG_FIELDS = qw(phase cid seq t0 t1 uid k api stream usage abort
                     outcome status rid worker soak bytes note);

sub log_fields { return @LOG_FIELDS }

sub log_line {
    my ($r) = @_;
    return join("\t", map {
        my $v = $r->{$_} // '';
        $v =~ s/[\t\r\n]+/ /g;
        $v;
    } @LOG_FIELDS) . "\n";
}

sub parse_log_line {
    my ($line) = @_;
    chomp $line;
    my @v = split /\t/, $line, -1;
    my %r;
    @r{@LOG_FIELDS} = @v;
    return \%r;
}

# ------------------------------------------------------------ HTTP client

# http_call(port => , path => , headers => [...], body => , timeout => ,
#           abort => 1 (close after the first event of a stream),
#           sock => a connected socket to use)
# -> { outcome, status, rid, worker, bytes, note, body, t0, t1 }
#   outcome: ok (whole answer), aborted (we closed it mid-stream), cut
#   (answer started, connection ended early), timeout (answer started,
#   not finished in time), connerr (no answer head at all)
sub http_call {
    my (%o) = @_;
    my %res = (t0 => time, outcome => 'connerr', status => '', rid => '',
               worker => '', bytes => 0, note => '', body => '');
    my $deadline = $res{t0} + ($o{timeout} // 30);
    my $s = $o{sock} || IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                             PeerPort => $o{port},
                                             Proto => 'tcp', Timeout => 5);
    if (!$s) {
        $res{note} = "connect: $!";
        $res{t1} = time;
        return \%res;
    }
    binmode $s;
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    my $req = "POST $o{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              . "Connection: close\r\n";
    $req .= "$_\r\n" for @{ $o{headers} || [] };
    $req .= 'Content-Length: ' . length($o{body}) . "\r\n\r\n" . $o{body};
    if (!defined syswrite($s, $req)) {
        $res{note} = "write: $!";
        close $s;
        $res{t1} = time;
        return \%res;
    }

    my $sel = IO::Select->new($s);
    my ($buf, $head, %h, $body) = ('');
    my $framing;             # 'len', 'chunked', 'eof'
    my $complete = 0;
    while (1) {
        my $left = $deadline - time;
        if ($left <= 0) {
            $res{outcome} = defined $head ? 'timeout' : 'connerr';
            $res{note} = 'timeout';
            last;
        }
        if (!$sel->can_read($left)) {
            next;
        }
        my $n = sysread($s, $buf, 65536, length $buf);
        if (!defined $n || $n == 0) {
            my $why = defined $n ? 'eof' : "read: $!";
            if (!defined $head) {
                $res{note} = $why;
                $res{outcome} = 'connerr';
            } elsif ($framing eq 'eof') {
                $complete = 1;
            } else {
                $res{note} = $why;
                $res{outcome} = 'cut';
            }
            last;
        }
        if (!defined $head) {
            my $i = index($buf, "\r\n\r\n");
            next if $i < 0;
            $head = substr($buf, 0, $i);
            $buf = substr($buf, $i + 4);
            ($res{status}) = $head =~ m{^HTTP/1\.\d (\d{3})};
            $res{status} //= '';
            for my $l (split /\r\n/, $head) {
                $h{lc $1} = $2 if $l =~ /^([^:]+):\s*(.*)$/;
            }
            $res{rid} = $h{'x-request-id'} // '';
            $res{worker} = $h{'x-soak-worker'} // '';
            $framing = ($h{'transfer-encoding'} // '') =~ /chunked/i
                       ? 'chunked'
                       : defined $h{'content-length'} ? 'len' : 'eof';
        }
        ($complete, $body) = _body_done($framing, $buf, $h{'content-length'});
        last if $complete;
        if ($o{abort} && $body =~ /\n\n/) {
            # a client going away mid-stream: close with unread data
            # (the kernel answers the next event with a reset)
            setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
            $res{outcome} = 'aborted';
            last;
        }
    }
    close $s;
    $res{t1} = time;
    (undef, $body) = _body_done($framing, $buf, $h{'content-length'})
        if defined $head && !defined $body;
    $res{body} = $body // '';
    $res{bytes} = length($res{body});
    $res{outcome} = 'ok' if $complete;
    return \%res;
}

# is the body whole? and the body so far (chunked decoded)
sub _body_done {
    my ($framing, $buf, $len) = @_;
    return (0, $buf) if !defined $framing || $framing eq 'eof';
    return (length($buf) >= $len ? 1 : 0, $buf) if $framing eq 'len';
    my ($out, $pos) = ('', 0);
    while (1) {
        my $e = index($buf, "\r\n", $pos);
        return (0, $out) if $e < 0;
        my $size = hex substr($buf, $pos, $e - $pos);
        if ($size == 0) {
            return (index($buf, "\r\n", $e + 2) >= 0 ? 1 : 0, $out);
        }
        return (0, $out . substr($buf, $e + 2))
            if length($buf) < $e + 2 + $size + 2;
        $out .= substr($buf, $e + 2, $size);
        $pos = $e + 2 + $size + 2;
    }
}

# ------------------------------------------------------------ Redis client

package Soak::Redis;

# A small RESP client with a timeout on every call: Redis under DEBUG
# SLEEP, killed or refusing writes must not hang the driver.  Error
# replies come back as Soak::Redis::Error objects (pipelines keep going).

use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);

sub new {
    my ($class, %o) = @_;
    return bless { port => $o{port}, timeout => $o{timeout} // 10,
                   buf => '' }, $class;
}

sub close {
    my ($self) = @_;
    close $self->{s} if $self->{s};
    delete $self->{s};
    $self->{buf} = '';
}

sub _sock {
    my ($self) = @_;
    return $self->{s} if $self->{s};
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $self->{port}, Proto => 'tcp',
                                  Timeout => 2)
        or die "redis connect to $self->{port}: $!\n";
    binmode $s;
    $self->{buf} = '';
    return $self->{s} = $s;
}

sub _enc {
    my @a = map { defined $_ ? "$_" : '' } @_;
    my $c = '*' . scalar(@a) . "\r\n";
    $c .= '$' . length($_) . "\r\n$_\r\n" for @a;
    return $c;
}

# cmd('HGET', 'k', 'f'): the reply; dies on I/O trouble and on an error
# reply
sub cmd {
    my ($self, @args) = @_;
    my ($r) = $self->pipeline([@args]);
    die 'redis error: ' . $$r . "\n" if ref $r eq 'Soak::Redis::Error';
    return $r;
}

# pipeline([cmd...], [cmd...]): the replies (error replies as objects)
sub pipeline {
    my ($self, @cmds) = @_;
    my $out = join '', map { _enc(@$_) } @cmds;
    my @r;
    my $ok = eval {
        my $s = $self->_sock;
        $self->{deadline} = time + $self->{timeout};
        while (length $out) {
            my $n = syswrite($s, $out);
            die "redis write: $!\n" unless defined $n;
            substr($out, 0, $n, '');
        }
        $self->{pos} = 0;
        push @r, $self->_reply for @cmds;
        substr($self->{buf}, 0, $self->{pos}, '');
        1;
    };
    if (!$ok) {
        my $e = $@;
        $self->close;
        die $e;
    }
    return @r;
}

sub _fill {
    my ($self) = @_;
    my $left = $self->{deadline} - time;
    die "redis timeout\n" if $left <= 0;
    die "redis timeout\n"
        unless IO::Select->new($self->{s})->can_read($left);
    my $n = sysread($self->{s}, $self->{buf}, 1 << 20, length $self->{buf});
    die "redis closed the connection\n" unless $n;
}

sub _line {
    my ($self) = @_;
    while (1) {
        my $i = index($self->{buf}, "\r\n", $self->{pos});
        if ($i >= 0) {
            my $l = substr($self->{buf}, $self->{pos}, $i - $self->{pos});
            $self->{pos} = $i + 2;
            return $l;
        }
        $self->_fill;
    }
}

sub _reply {
    my ($self) = @_;
    my $line = $self->_line;
    my $t = substr($line, 0, 1, '');
    return $line if $t eq '+';
    return bless(\$line, 'Soak::Redis::Error') if $t eq '-';
    return $line + 0 if $t eq ':';
    if ($t eq '$') {
        return undef if $line < 0;
        $self->_fill while length($self->{buf}) < $self->{pos} + $line + 2;
        my $v = substr($self->{buf}, $self->{pos}, $line);
        $self->{pos} += $line + 2;
        return $v;
    }
    if ($t eq '*') {
        return undef if $line < 0;
        return [ map { $self->_reply } 1 .. $line ];
    }
    die "bad redis reply type '$t'\n";
}

1;
