package AiRelayMockHttp;

# A tiny HTTP/1.1 server for the CLI tests that talk to an upstream
# (ai-relay channels test): a child process on a free 127.0.0.1 port, one
# connection at a time, "Connection: close".  Every request it receives is
# appended to a log as one JSON line: method, path, headers (names in
# lower case) and body; the test reads them back with mock_requests().
#
#   my $mock = mock_http(sub {
#       my ($req) = @_;                      # {method, path, headers, body}
#       return (200, { 'Content-Type' => 'application/json' }, '{...}');
#   });
#   $mock->{port};  mock_requests($mock);  mock_clear($mock);
#
# The child is stopped when the test file ends.

use strict;
use warnings;

use Exporter 'import';
use IO::Socket::INET;
use JSON::PP;
use POSIX ();

our @EXPORT = qw(mock_http mock_requests mock_clear free_port);

my @children;
my $n = 0;

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

sub mock_http {
    my ($handler) = @_;
    my $dir = $AiRelayCli::TMP // '/tmp';
    my $log = "$dir/mock-http-" . $$ . '-' . $n++ . '.log';
    my $srv;
    for (1 .. 100) {
        $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                     LocalPort => 20000 + int(rand(20000)),
                                     Listen => 16, ReuseAddr => 1);
        last if $srv;
    }
    die "mock http: cannot listen: $!\n" unless $srv;
    open my $f, '>', $log or die "$log: $!\n";
    close $f;

    my $pid = fork();
    die "fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        # _exit: the parent's END blocks (its Redis) are not the child's
        $SIG{TERM} = sub { POSIX::_exit(0) };
        while (my $c = $srv->accept) {
            eval { serve($c, $handler, $log) };
            close $c;
        }
        POSIX::_exit(0);
    }
    my $port = $srv->sockport;
    close $srv;
    push @children, $pid;
    return { port => $port, log => $log, pid => $pid };
}

sub serve {
    my ($c, $handler, $log) = @_;
    local $/ = "\r\n";
    my $line = <$c>;
    return unless defined $line;
    $line =~ s/\r\n\z//;
    my ($method, $path) = split / /, $line;
    my %h;
    while (defined(my $l = <$c>)) {
        $l =~ s/\r\n\z//;
        last if $l eq '';
        my ($k, $v) = split /:\s*/, $l, 2;
        $h{lc $k} = $v;
    }
    my $body = '';
    if (my $len = $h{'content-length'}) {
        read($c, $body, $len);
    }
    my $req = { method => $method, path => $path, headers => \%h,
                body => $body };
    open my $f, '>>', $log or die;
    print $f JSON::PP->new->canonical->encode($req), "\n";
    close $f;

    my ($status, $hdrs, $out) = $handler->($req);
    $hdrs ||= {};
    $out //= '';
    my $resp = "HTTP/1.1 $status X\r\nConnection: close\r\n"
             . 'Content-Length: ' . length($out) . "\r\n";
    $resp .= "$_: $hdrs->{$_}\r\n" for sort keys %$hdrs;
    print $c "$resp\r\n$out";
}

# the requests received so far, oldest first
sub mock_requests {
    my ($mock) = @_;
    open my $f, '<', $mock->{log} or die;
    my @r = map { JSON::PP->new->decode($_) } <$f>;
    close $f;
    return \@r;
}

sub mock_clear {
    my ($mock) = @_;
    open my $f, '>', $mock->{log} or die;
    close $f;
}

END {
    for my $pid (@children) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }
}

1;
