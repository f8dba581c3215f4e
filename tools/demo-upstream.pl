#!/usr/bin/env perl
# A local stand-in for an OpenAI-compatible provider, for `make run` and
# the SDK tests: POST /v1/chat/completions answers with a completion or an
# SSE stream (usage included when stream_options.include_usage is true),
# GET /v1/models lists one model, POST /v1/audio/transcriptions and
# /v1/images/edits (multipart/form-data) answer with what their model
# field and file sizes were, POST /v1/videos queues a video that GET
# /v1/videos/{id} says is completed. Perl core modules only.
#
#   tools/demo-upstream.pl PORT [PIDFILE]

use strict;
use warnings;

use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);

my $port = shift or die "usage: $0 PORT [PIDFILE]\n";
my $pidfile = shift;

my $server = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                   LocalPort => $port, Listen => 128,
                                   ReuseAddr => 1)
    or die "demo upstream: cannot listen on $port: $!\n";

$SIG{CHLD} = 'IGNORE';

if ($pidfile) {
    open my $fh, '>', $pidfile or die "$pidfile: $!\n";
    print $fh "$$\n";
    close $fh;
}

my $json = JSON::PP->new->canonical;

while (1) {
    my $c = $server->accept or next;
    my $pid = fork;
    if (!defined $pid) { close $c; next }
    if ($pid) { close $c; next }
    close $server;
    serve($c);
    POSIX::_exit(0);
}

sub serve {
    my ($c) = @_;
    $c->autoflush(1);

    # HTTP/1.1 keep-alive: nginx may reuse the connection
    while (1) {
        my $head = '';
        local $SIG{ALRM} = sub { die "idle\n" };
        alarm 60;
        my $ok = eval {
            while ($head !~ /\r\n\r\n/) {
                my $n = sysread($c, $head, 4096, length $head);
                return 0 unless $n;
            }
            1;
        };
        alarm 0;
        return unless $ok;

        my ($hdr, $rest) = split /\r\n\r\n/, $head, 2;
        my ($method, $path) = $hdr =~ m{^(\S+) (\S+)};
        my ($len) = $hdr =~ /^content-length:\s*(\d+)/mi;
        my $body = $rest // '';
        while (defined $len && length($body) < $len) {
            my $n = sysread($c, $body, $len - length $body, length $body);
            return unless $n;
        }

        my $close = $hdr =~ /^connection:\s*close/mi
                    || $hdr =~ m{^\S+ \S+ HTTP/1\.0};

        if ($method eq 'GET' && $path =~ m{/models$}) {
            reply($c, 200, $json->encode({ object => 'list', data => [
                { id => 'demo-model', object => 'model', created => 0,
                  owned_by => 'demo' } ] }), $close);
        } elsif ($method eq 'POST' && $path =~ m{/chat/completions}) {
            my $req = eval { $json->decode($body) };
            if (!$req) {
                reply($c, 400, '{"error":{"message":"bad json","type":'
                      . '"invalid_request_error","param":null,"code":null}}',
                      $close);
            } else {
                complete($c, $req, $close);
            }
        } elsif ($method eq 'POST'
                 && $path =~ m{/(audio/transcriptions|images/edits|videos)$}) {
            form($c, $1, $hdr, $body, $close);
        } elsif ($method eq 'GET' && $path =~ m{/videos/([\w-]+)/content$}) {
            print $c "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\n"
                . "Content-Length: 8\r\n"
                . ($close ? "Connection: close\r\n" : '') . "\r\nDEMO-MP4";
        } elsif ($method eq 'GET' && $path =~ m{/videos/([\w-]+)$}) {
            reply($c, 200, $json->encode({ id => $1, object => 'video',
                  status => 'completed', progress => 100 }), $close);
        } else {
            reply($c, 404, '{"error":{"message":"not found","type":'
                  . '"invalid_request_error","param":null,"code":null}}',
                  $close);
        }

        return if $close;
    }
}

sub reply {
    my ($c, $status, $body, $close) = @_;
    print $c "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
        . "Content-Length: " . length($body) . "\r\n"
        . ($close ? "Connection: close\r\n" : '') . "\r\n" . $body;
}

# a multipart/form-data request: what its fields and files were
sub form {
    my ($c, $what, $hdr, $body, $close) = @_;
    my ($b) = $hdr =~ /^content-type:\s*multipart\/form-data;.*boundary="?([^";\r\n]+)/mi;
    my (%field, %file);
    for my $part (split /\r\n--\Q$b\E/, "\r\n$body") {
        my ($h, $v) = split /\r\n\r\n/, $part, 2;
        next unless defined $v && $h =~ /name="([^"]*)"/;
        my $name = $1;
        if ($h =~ /filename="([^"]*)"/) {
            $file{$name} = length $v;
        } else {
            $field{$name} = $v;
        }
    }
    my $model = $field{model} // '';
    if ($what eq 'videos') {
        reply($c, 200, $json->encode({ id => 'video_demo' . int(time * 1000),
              object => 'video', model => $model, status => 'queued',
              progress => 0, seconds => $field{seconds} // '4',
              created_at => int(time) }), $close);
        return;
    }
    if ($what eq 'images/edits') {
        reply($c, 200, $json->encode({ created => int(time), data => [
            { b64_json => 'aW1hZ2U=',
              revised_prompt => "model=$model image=" . ($file{image} // 0) }
        ] }), $close);
        return;
    }
    my $text = "model=$model file=" . ($file{file} // 0) . ' bytes';
    reply($c, 200, $json->encode({ text => $text, usage => {
        type => 'tokens', input_tokens => 10, output_tokens => 5,
        total_tokens => 15 } }), $close);
}

sub complete {
    my ($c, $req, $close) = @_;

    my $last = '';
    for my $m (@{ $req->{messages} || [] }) {
        $last = ref $m->{content} ? '' : ($m->{content} // '')
            if ($m->{role} // '') eq 'user';
    }

    my @words = ('Hello!', 'This', 'is', 'the', 'ngx_ai_relay', 'demo',
                 'upstream.', 'You', 'said:', split(/\s+/, $last));
    my $text = join ' ', @words;
    my $prompt = 0;
    $prompt += int(length($_->{content} // '') / 4) + 4
        for grep { !ref $_->{content} } @{ $req->{messages} || [] };
    my $completion = scalar @words;
    my $usage = { prompt_tokens => $prompt, completion_tokens => $completion,
                  total_tokens => $prompt + $completion };
    my $id = 'chatcmpl-demo' . int(time * 1000);
    my $model = $req->{model} // 'demo-model';

    if (!$req->{stream}) {
        reply($c, 200, $json->encode({
            id => $id, object => 'chat.completion', created => int(time),
            model => $model,
            choices => [ { index => 0, finish_reason => 'stop',
                           message => { role => 'assistant',
                                        content => $text } } ],
            usage => $usage }), $close);
        return;
    }

    print $c "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        . "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
        . ($close ? "Connection: close\r\n" : '') . "\r\n";

    my $with_usage = ref $req->{stream_options} eq 'HASH'
                     && $req->{stream_options}{include_usage};
    my $chunk = sub {
        my ($data) = @_;
        my $ev = "data: $data\n\n";
        printf $c "%x\r\n%s\r\n", length $ev, $ev;
    };
    my $base = { id => $id, object => 'chat.completion.chunk',
                 created => int(time), model => $model };

    my $i = 0;
    for my $w (@words) {
        my $delta = $i ? { content => " $w" }
                       : { role => 'assistant', content => $w };
        $chunk->($json->encode({ %$base, choices => [ { index => 0,
                 delta => $delta, finish_reason => undef } ],
                 ($with_usage ? (usage => undef) : ()) }));
        $i++;
        sleep 0.02;
    }
    $chunk->($json->encode({ %$base, choices => [ { index => 0, delta => {},
             finish_reason => 'stop' } ],
             ($with_usage ? (usage => undef) : ()) }));
    $chunk->($json->encode({ %$base, choices => [], usage => $usage }))
        if $with_usage;
    $chunk->('[DONE]');
    print $c "0\r\n\r\n";
}
