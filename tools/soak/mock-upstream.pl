#!/usr/bin/env perl
# The soak's upstream provider: one process, non-blocking sockets, timers.
#
#   POST .../chat/completions  OpenAI chat completion, or an SSE stream
#                              (usage chunk when stream_options asks)
#   POST .../messages          Anthropic message, or its event stream
#
# Usage is fixed (Soak.pm %USAGE) so every answer's cost is known.  The
# first byte leaves after --delay-ms, stream events --event-ms apart.
# --reset-pct of the answers are cut mid-answer with a TCP reset: which
# ones is decided by a hash of the client's X-Soak-Id and the seed, so a
# run with the same seed resets the same requests.  Race requests (model
# soak-race) are never reset.
#
# One line per request in --log: time, request id (X-Request-Id, set by
# the relay's proxy_set_header), X-Soak-Id, path, model, stream, reset,
# whether the channel's key arrived (and no client key did).  Keys are
# derived from the seed here too; none is ever written.
#
# Stops by itself after --max-seconds, when its parent goes, or on TERM.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use Soak qw(upstream_key);
use IO::Socket::INET;
use IO::Select;
use Socket qw(SOL_SOCKET SO_LINGER);
use Digest::MD5 qw(md5);
use Getopt::Long;
use Time::HiRes qw(time);
use POSIX qw(:errno_h);

my %o = (delay_ms => 20, event_ms => 15, reset_pct => 1, seed => 1,
         max_seconds => 900);
GetOptions(\%o, 'port=i', 'delay_ms=i', 'event_ms=i', 'reset_pct=f',
           'seed=i', 'log=s', 'ready=s', 'max_seconds=i')
    or die "usage: $0 --port P --log FILE [--ready FILE] ...\n";

my $json = Soak::json_coder();
my $parent = getppid();
my $started = time;
my %ukey = (map { ($_ => upstream_key($o{seed}, $_)) } 1, 2);

my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                   LocalPort => $o{port}, Listen => 1024,
                                   ReuseAddr => 1, Blocking => 0)
    or die "mock upstream: cannot listen on $o{port}: $!\n";

open my $log, '>>', $o{log} or die "$o{log}: $!\n";
my $stop = 0;
$SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
$SIG{PIPE} = 'IGNORE';

my @WORDS = ('Soak', ' answer', ' one', ' two', ' three');
my %stat = (requests => 0, resets => 0, bad_auth => 0, client_key => 0);

if ($o{ready}) {
    open my $fh, '>', $o{ready} or die "$o{ready}: $!\n";
    print $fh "$$\n";
    close $fh;
}

my %conn;          # fileno => { s, in, out, q => [[t, data|undef, what]] }
my $rsel = IO::Select->new($listen);
my $n = 0;

while (!$stop) {
    last if time - $started > $o{max_seconds};
    last if getppid() != $parent;

    my $now = time;
    my $next = $now + 0.05;
    for my $c (values %conn) {
        $next = $c->{q}[0][0] if @{ $c->{q} } && $c->{q}[0][0] < $next;
    }
    my $wsel = IO::Select->new(map { $_->{s} } grep { length $_->{out} }
                               values %conn);
    my $wait = $next - $now;
    $wait = 0 if $wait < 0;
    my ($r, $w) = IO::Select->select($rsel, $wsel, undef, $wait);

    for my $s (@{ $r || [] }) {
        if ($s == $listen) {
            while (my $c = $listen->accept) {
                $c->blocking(0);
                binmode $c;
                $conn{fileno $c} = { s => $c, fd => fileno $c, in => '',
                                     out => '', q => [] };
                $rsel->add($c);
            }
            next;
        }
        my $fd = fileno $s;
        my $c = defined $fd && $conn{$fd} or next;
        my $got = sysread($s, $c->{in}, 65536, length $c->{in});
        if (!$got) {
            next if !defined $got && $! == EAGAIN;
            drop($c);
            next;
        }
        request($c);
    }

    for my $s (@{ $w || [] }) {
        my $fd = fileno $s;
        my $c = defined $fd && $conn{$fd} or next;
        flush($c);
    }

    $now = time;
    for my $c (values %conn) {
        while (@{ $c->{q} } && $c->{q}[0][0] <= $now) {
            my $item = shift @{ $c->{q} };
            if ($item->[2] eq 'reset') {
                flush($c);
                last if $c->{dead};
                setsockopt($c->{s}, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
                drop($c);
                last;
            }
            if ($item->[2] eq 'close') {
                $c->{closing} = 1;
                flush($c);
                last;
            }
            $c->{out} .= $item->[1];
            flush($c);
            last if $c->{dead};
        }
    }
}

printf $log "# mock exit requests=%d resets=%d bad_auth=%d client_key=%d\n",
    @stat{qw(requests resets bad_auth client_key)};
close $log;
exit 0;

sub drop {
    my ($c) = @_;
    return if $c->{dead};
    $c->{dead} = 1;
    $rsel->remove($c->{s});
    delete $conn{$c->{fd}};
    close $c->{s};
}

sub flush {
    my ($c) = @_;
    return if $c->{dead};
    while (length $c->{out}) {
        my $n = syswrite($c->{s}, $c->{out});
        if (!defined $n) {
            return if $! == EAGAIN;
            drop($c);
            return;
        }
        substr($c->{out}, 0, $n, '');
    }
    drop($c) if $c->{closing};
}

# a whole request in the buffer: plan its answer
sub request {
    my ($c) = @_;
    return if @{ $c->{q} };                 # one at a time per connection
    my $i = index($c->{in}, "\r\n\r\n");
    return if $i < 0;
    my $head = substr($c->{in}, 0, $i);
    my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
    $len //= 0;
    return if length($c->{in}) < $i + 4 + $len;
    my $body = substr($c->{in}, $i + 4, $len);
    substr($c->{in}, 0, $i + 4 + $len, '');

    my %h;
    for my $l (split /\r\n/, $head) {
        $h{lc $1} = $2 if $l =~ /^([^:]+):\s*(.*)$/;
    }
    my ($path) = $head =~ m{^\S+ (\S+)};
    my $req = eval { $json->decode($body) } || {};
    my $anthropic = $path =~ m{/messages};
    my $model = $req->{model} // '';
    my $stream = $req->{stream} ? 1 : 0;
    my $soak = $h{'x-soak-id'} // '';
    my $rid = $h{'x-request-id'} // '';

    # the channel's key, never a client's
    my $auth = $anthropic ? ($h{'x-api-key'} // '')
                          : (($h{authorization} // '') =~ /^Bearer (.*)$/)[0]
                            // '';
    my $auth_ok = $auth eq $ukey{$anthropic ? 2 : 1} ? 1 : 0;
    my $client_key = grep { /sk-soak/ } values %h;
    $stat{bad_auth}++ unless $auth_ok;
    $stat{client_key}++ if $client_key;

    my $reset = 0;
    if ($model ne 'soak-race' && $o{reset_pct} > 0) {
        my $v = unpack('N', md5("$o{seed} $soak"));
        $reset = ($v % 10000) < $o{reset_pct} * 100 ? 1 : 0;
    }
    $stat{requests}++;
    $stat{resets} += $reset;
    $n++;
    printf $log "%.3f\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", time, $rid, $soak,
        $path, $model, $stream, $reset, $auth_ok, $client_key ? 1 : 0;

    my $keep = ($head !~ /^connection:\s*close/mi);
    my @parts = $anthropic ? anthropic($req, $model, $stream)
                           : openai($req, $model, $stream);
    my $t = time + $o{delay_ms} / 1000;
    my $k = 0;
    for my $p (@parts) {
        if ($reset && $k == (@parts > 2 ? 2 : 1)) {
            # cut mid-answer: half of this piece, then a reset
            push @{ $c->{q} }, [$t, substr($p, 0, int(length($p) / 2)), 'data'];
            push @{ $c->{q} }, [$t, undef, 'reset'];
            last;
        }
        push @{ $c->{q} }, [$t, $p, 'data'];
        $t += $o{event_ms} / 1000 if $stream;
        $k++;
    }
    push @{ $c->{q} }, [$t, undef, 'close'] if !$reset && !$keep;
}

sub chunk { my ($d) = @_; return sprintf("%x\r\n%s\r\n", length $d, $d) }

sub sse_head {
    return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
           . "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
}

sub json_head {
    my ($body) = @_;
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
           . 'Content-Length: ' . length($body) . "\r\n\r\n";
}

sub openai {
    my ($req, $model, $stream) = @_;
    my ($pt, $ct) = @{ $Soak::USAGE{openai} };
    $ct = $Soak::RACE_MAX_TOKENS if $model eq 'soak-race';
    my $usage = { prompt_tokens => $pt, completion_tokens => $ct,
                  total_tokens => $pt + $ct };
    my $id = "chatcmpl-soak$n";
    if (!$stream) {
        my $body = $json->encode({
            id => $id, object => 'chat.completion', created => 1700000000,
            model => $model,
            choices => [ { index => 0, finish_reason => 'stop',
                           message => { role => 'assistant',
                                        content => join('', @WORDS) } } ],
            usage => $usage });
        # two pieces so that a reset can fall between them
        my $all = json_head($body) . $body;
        my $half = length(json_head($body)) + int(length($body) / 2);
        return (substr($all, 0, $half), substr($all, $half));
    }
    my $with = ref $req->{stream_options} eq 'HASH'
               && $req->{stream_options}{include_usage};
    my @p = (sse_head());
    my $base = { id => $id, object => 'chat.completion.chunk',
                 created => 1700000000, model => $model };
    my $i = 0;
    for my $w (@WORDS) {
        my $delta = $i++ ? { content => $w }
                         : { role => 'assistant', content => $w };
        push @p, chunk('data: ' . $json->encode({ %$base,
            choices => [ { index => 0, delta => $delta,
                           finish_reason => undef } ],
            ($with ? (usage => undef) : ()) }) . "\n\n");
    }
    push @p, chunk('data: ' . $json->encode({ %$base,
        choices => [ { index => 0, delta => {}, finish_reason => 'stop' } ],
        ($with ? (usage => undef) : ()) }) . "\n\n");
    push @p, chunk('data: ' . $json->encode({ %$base, choices => [],
                                               usage => $usage }) . "\n\n")
        if $with;
    $p[-1] .= chunk("data: [DONE]\n\n") . "0\r\n\r\n";
    return @p;
}

sub anthropic {
    my ($req, $model, $stream) = @_;
    my ($pt, $ct) = @{ $Soak::USAGE{anthropic} };
    my $id = "msg_soak$n";
    if (!$stream) {
        my $body = $json->encode({
            id => $id, type => 'message', role => 'assistant', model => $model,
            content => [ { type => 'text', text => join('', @WORDS) } ],
            stop_reason => 'end_turn', stop_sequence => undef,
            usage => { input_tokens => $pt, output_tokens => $ct } });
        my $all = json_head($body) . $body;
        my $half = length(json_head($body)) + int(length($body) / 2);
        return (substr($all, 0, $half), substr($all, $half));
    }
    my $ev = sub {
        my ($type, $data) = @_;
        return chunk("event: $type\ndata: " . $json->encode($data) . "\n\n");
    };
    my @p = (sse_head() . $ev->('message_start', { type => 'message_start',
        message => { id => $id, type => 'message', role => 'assistant',
                     content => [], model => $model, stop_reason => undef,
                     stop_sequence => undef,
                     usage => { input_tokens => $pt, output_tokens => 1 } } })
        . $ev->('content_block_start', { type => 'content_block_start',
                index => 0, content_block => { type => 'text', text => '' } }));
    for my $w (@WORDS) {
        push @p, $ev->('content_block_delta', { type => 'content_block_delta',
            index => 0, delta => { type => 'text_delta', text => $w } });
    }
    push @p, $ev->('content_block_stop', { type => 'content_block_stop',
                                           index => 0 })
        . $ev->('message_delta', { type => 'message_delta',
                delta => { stop_reason => 'end_turn', stop_sequence => undef },
                usage => { output_tokens => $ct } })
        . $ev->('message_stop', { type => 'message_stop' }) . "0\r\n\r\n";
    return @p;
}
