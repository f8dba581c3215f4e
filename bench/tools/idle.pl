#!/usr/bin/perl
# idle.pl: hold many streams open.
#
#   idle.pl --n 2000 --port 18082 --body stream.json --key sk-... [--max 120]
#
# Opens N connections, sends a streamed request with X-Bench-Mode: idle on
# each (the mock sends one event and then keeps the stream open), waits
# until every stream has delivered its first event, prints
#   READY ok=<streams open> failed=<n> open_ms=<time taken>
# and keeps them all open until SIGTERM (or --max seconds), then closes
# them and exits.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Handle;
use Time::HiRes qw(time sleep);
use Getopt::Long;

my %o = (n => 2000, host => '127.0.0.1', path => '/v1/chat/completions',
         max => 120, timeout => 30);
GetOptions(\%o, 'headers=s', 'n=i', 'port=i', 'host=s', 'path=s', 'body=s', 'key=s',
           'max=i', 'timeout=i') or die "bad options\n";

open my $bf, '<', $o{body} or die "$o{body}: $!\n";
my $body = do { local $/; <$bf> };
close $bf;

my $req = "POST $o{path} HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Bearer $o{key}\r\nContent-Type: application/json\r\n"
        . join('', map { "$_\r\n" } grep { /\S/ } split /\|/, $o{headers} // '')
        . "X-Bench-Mode: idle\r\nContent-Length: " . length($body)
        . "\r\n\r\n$body";

my $stop = 0;
$SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
STDOUT->autoflush(1);

my $t0 = time;
my (@s, $failed);
$failed = 0;
for (1 .. $o{n}) {
    my $s = IO::Socket::INET->new(PeerAddr => $o{host}, PeerPort => $o{port},
                                  Proto => 'tcp', Timeout => 10);
    if (!$s) { $failed++; next; }
    binmode $s;
    if (!defined syswrite($s, $req)) { $failed++; next; }
    push @s, $s;
}

# every stream's first event
my @ok;
my $deadline = time + $o{timeout};
for my $s (@s) {
    my $buf = '';
    my $good = 0;
    while (time < $deadline) {
        my $rin = '';
        vec($rin, fileno($s), 1) = 1;
        my $n = select(my $rout = $rin, undef, undef, $deadline - time);
        last unless $n && $n > 0;
        my $r = sysread($s, $buf, 65536, length $buf);
        last unless $r;
        if ($buf =~ m{^HTTP/1\.\d (\d+)} && $1 != 200) { last; }
        if (index($buf, 'data:') >= 0) { $good = 1; last; }
    }
    if ($good) { push @ok, $s } else { $failed++; close $s; }
}

printf "READY ok=%d failed=%d open_ms=%.0f\n", scalar @ok, $failed,
       (time - $t0) * 1000;

my $end = time + $o{max};
sleep 0.05 while !$stop && time < $end;
close $_ for @ok;
exit 0;
