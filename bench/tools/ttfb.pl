#!/usr/bin/perl
# ttfb.pl: time to first byte of a stream, front ends interleaved.
#
#   ttfb.pl --n 300 --body stream.json --key sk-... --mode ttfb \
#           proxy=18081 relay=18082
#
# One keep-alive connection per front end. Every round sends one streamed
# request to each front end (the order alternates between rounds) and
# measures, with CLOCK_MONOTONIC, from just before the request is written
# to the arrival of the first byte of the first SSE event ("data:"); the
# rest of the stream is read and dropped. The mock's "ttfb" answer pauses
# 1 ms after its first event, so the first event arrives alone, as from a
# real model. Prints per front end:
#   TTFB <label> n=... p50_us=... p90_us=... p99_us=... mean_us=... errors=...
use strict;
use warnings;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);
use Getopt::Long;

my %o = (n => 300, warm => 20, mode => 'ttfb', path => '/v1/chat/completions',
         host => '127.0.0.1', timeout => 10);
GetOptions(\%o, 'headers=s', 'n=i', 'warm=i', 'body=s', 'key=s', 'mode=s', 'path=s',
           'host=s', 'timeout=i') or die "bad options\n";
my @targets = map { /^(\w+)=(\d+)$/ or die "bad target $_\n"; [$1, $2] } @ARGV;
die "no targets\n" unless @targets;

open my $bf, '<', $o{body} or die "$o{body}: $!\n";
my $body = do { local $/; <$bf> };
close $bf;

my $req = "POST $o{path} HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Bearer $o{key}\r\nContent-Type: application/json\r\n"
        . join('', map { "$_\r\n" } grep { /\S/ } split /\|/, $o{headers} // '')
        . "X-Bench-Mode: $o{mode}\r\nContent-Length: " . length($body)
        . "\r\n\r\n$body";

my (%sock, %lat, %err);

sub conn {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $o{host}, PeerPort => $port,
                                  Proto => 'tcp', Timeout => $o{timeout})
        or die "connect $port: $!\n";
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    binmode $s;
    return $s;
}

# one request: returns the TTFB in microseconds or dies
sub one {
    my ($label, $port) = @_;
    my $s = $sock{$label} //= conn($port);
    my $t0 = clock_gettime(CLOCK_MONOTONIC);
    my $w = syswrite($s, $req);
    die "write: $!\n" unless defined $w && $w == length $req;

    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm $o{timeout};

    my $buf = '';
    my ($t1, $hlen);
    while (1) {
        my $n = sysread($s, $buf, 65536, length $buf);
        die "closed\n" unless $n;
        if (!defined $hlen) {
            my $i = index($buf, "\r\n\r\n");
            next if $i < 0;
            $hlen = $i + 4;
            my ($st) = $buf =~ m{^HTTP/1\.\d (\d+)};
            die "status " . ($st // '?') . "\n" unless ($st // 0) == 200;
            die "not chunked\n"
                unless substr($buf, 0, $hlen) =~ /^transfer-encoding:\s*chunked/mi;
        }
        if (!defined $t1 && index($buf, 'data:', $hlen) >= 0) {
            $t1 = clock_gettime(CLOCK_MONOTONIC);
        }
        last if defined $t1 && substr($buf, -5) eq "0\r\n\r\n"
                && $buf =~ /\r\n0\r\n\r\n\z/;
    }
    alarm 0;
    return ($t1 - $t0) * 1e6;
}

my @order = @targets;
for my $i (1 .. $o{warm} + $o{n}) {
    @order = reverse @order;
    for my $t (@order) {
        my ($label, $port) = @$t;
        my $us = eval { one($label, $port) };
        if (!defined $us) {
            $err{$label}++;
            warn "ttfb $label: $@" if ($err{$label} // 0) <= 3;
            close $sock{$label} if $sock{$label};
            delete $sock{$label};
            next;
        }
        push @{ $lat{$label} }, $us if $i > $o{warm};
    }
}

sub pct {
    my ($v, $p) = @_;
    return 0 unless @$v;
    my $i = int($p / 100 * @$v + 0.5) - 1;
    $i = 0 if $i < 0;
    $i = $#$v if $i > $#$v;
    return $v->[$i];
}

for my $t (@targets) {
    my $label = $t->[0];
    my @v = sort { $a <=> $b } @{ $lat{$label} || [] };
    my $mean = 0;
    $mean += $_ for @v;
    $mean /= @v if @v;
    printf "TTFB %s n=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f mean_us=%.1f "
         . "errors=%d\n", $label, scalar @v, pct(\@v, 50), pct(\@v, 90),
           pct(\@v, 99), $mean, $err{$label} // 0;
}
