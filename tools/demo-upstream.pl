#!/usr/bin/env perl
# A local stand-in for an OpenAI-compatible provider, for `make run` and
# the SDK tests: POST /v1/chat/completions answers with a completion or an
# SSE stream (usage included when stream_options.include_usage is true),
# GET /v1/models lists one model, POST /v1/audio/transcriptions and
# /v1/images/edits (multipart/form-data) answer with what their model
# field and file sizes were, POST /v1/videos queues a video that GET
# /v1/videos/{id} says is completed (a remix of one, likewise). It also stands in for Anthropic (POST
# /v1/messages) and Gemini (POST /v1beta/models/M:generateContent and
# :streamGenerateContent?alt=sse), the channels the relay translates for:
# their bodies are checked strictly against the providers' documented
# fields (anything else is the provider's own 400), and a request with
# tools whose last turn is the user's text gets a call of the first tool.
# Perl core modules only.
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
        } elsif ($method eq 'POST' && $path =~ m{/v1/messages(?:\?|$)}) {
            my $req = eval { $json->decode($body) };
            my $err = $req ? anthropic_invalid($req, $hdr) : 'invalid JSON';
            if ($err) {
                reply($c, 400, $json->encode({ type => 'error', error => {
                      type => 'invalid_request_error', message => $err } }),
                      $close);
            } else {
                anthropic($c, $req, $close);
            }
        } elsif ($method eq 'POST'
                 && $path =~ m{/models/([^/:]+):(generateContent|streamGenerateContent)(\?alt=sse)?$})
        {
            my ($model, $stream, $sse) = ($1, $2 eq 'streamGenerateContent', $3);
            my $req = eval { $json->decode($body) };
            my $err = $req ? gemini_invalid($req) : 'invalid JSON';
            $err //= 'streams need ?alt=sse' if $stream && !$sse;
            if ($err) {
                reply($c, 400, $json->encode({ error => { code => 400,
                      message => $err, status => 'INVALID_ARGUMENT' } }),
                      $close);
            } else {
                gemini($c, $req, $model, $stream, $close);
            }
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
        } elsif ($method eq 'POST' && $path =~ m{/videos/([\w-]+)/remix$}) {
            # a remix names no model: OpenAI's API takes only a prompt
            my ($from, $req) = ($1, eval { $json->decode($body) });
            if (!$req || ref $req ne 'HASH' || !defined $req->{prompt}
                || grep { $_ ne 'prompt' } keys %$req) {
                reply($c, 400, '{"error":{"message":"a remix takes a prompt '
                      . 'only","type":"invalid_request_error","param":null,'
                      . '"code":null}}', $close);
            } else {
                reply($c, 200, $json->encode({
                      id => 'video_demo' . int(time * 1000) . 'r',
                      object => 'video', status => 'queued', progress => 0,
                      remixed_from_video_id => $from,
                      created_at => int(time) }), $close);
            }
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
        next unless ($m->{role} // '') eq 'user';
        $last = !ref $m->{content} ? ($m->{content} // '')
              : join ' ', map { $_->{type} eq 'text' ? $_->{text} : () }
                              @{ $m->{content} };
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

    # tools and the user's turn: a call of the first tool
    my $lastm = ($req->{messages} || [])->[-1] || {};
    if (ref $req->{tools} eq 'ARRAY' && @{ $req->{tools} }
        && ($lastm->{role} // '') eq 'user')
    {
        my $call = { id => 'call_demo1', type => 'function', function => {
                     name => $req->{tools}[0]{function}{name},
                     arguments => '{"city":"Paris"}' } };
        if (!$req->{stream}) {
            reply($c, 200, $json->encode({ id => $id,
                object => 'chat.completion', created => int(time),
                model => $model, choices => [ { index => 0,
                finish_reason => 'tool_calls', message => {
                    role => 'assistant', content => undef,
                    tool_calls => [ $call ] } } ], usage => $usage }),
                $close);
            return;
        }
        print $c "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            . "Transfer-Encoding: chunked\r\n"
            . ($close ? "Connection: close\r\n" : '') . "\r\n";
        my $base = { id => $id, object => 'chat.completion.chunk',
                     created => int(time), model => $model };
        my @deltas = (
            { role => 'assistant', tool_calls => [ { index => 0,
              id => 'call_demo1', type => 'function', function => {
              name => $call->{function}{name}, arguments => '' } } ] },
            { tool_calls => [ { index => 0,
              function => { arguments => '{"city":' } } ] },
            { tool_calls => [ { index => 0,
              function => { arguments => '"Paris"}' } } ] });
        for my $d (@deltas) {
            my $ev = 'data: ' . $json->encode({ %$base, choices => [
                { index => 0, delta => $d, finish_reason => undef } ] })
                . "\n\n";
            printf $c "%x\r\n%s\r\n", length $ev, $ev;
        }
        for my $data ($json->encode({ %$base, choices => [ { index => 0,
                          delta => {}, finish_reason => 'tool_calls' } ] }),
                      ($req->{stream_options}{include_usage}
                       ? $json->encode({ %$base, choices => [],
                                         usage => $usage }) : ()),
                      '[DONE]')
        {
            my $ev = "data: $data\n\n";
            printf $c "%x\r\n%s\r\n", length $ev, $ev;
        }
        print $c "0\r\n\r\n";
        return;
    }

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


# ------------------------------------------------------------ Anthropic

sub only_keys {
    my ($h, $what, @allowed) = @_;
    return "$what must be an object" unless ref $h eq 'HASH';
    my %ok = map { $_ => 1 } @allowed;
    for (sort keys %$h) {
        return "$what.$_: Extra inputs are not permitted" unless $ok{$_};
    }
    return undef;
}

sub anthropic_invalid {
    my ($r, $hdr) = @_;
    my $e;
    return 'anthropic-version header is required'
        unless $hdr =~ /^anthropic-version:\s*2023-06-01/mi;
    $e = only_keys($r, 'body', qw(model messages max_tokens system stream
        temperature top_p top_k stop_sequences tools tool_choice metadata
        thinking)) and return $e;
    return 'model: Field required' unless defined $r->{model} && !ref $r->{model};
    return 'max_tokens: Field required'
        unless defined $r->{max_tokens} && $r->{max_tokens} =~ /^\d+$/;
    return 'messages: Input should be a valid list'
        unless ref $r->{messages} eq 'ARRAY' && @{ $r->{messages} };
    if (defined $r->{system}) {
        if (ref $r->{system} eq 'ARRAY') {
            for (@{ $r->{system} }) {
                $e = only_keys($_, 'system[]', qw(type text cache_control))
                    and return $e;
                return 'system[].type must be text' unless $_->{type} eq 'text';
            }
        } elsif (ref $r->{system}) {
            return 'system must be a string or a list';
        }
    }
    for my $m (@{ $r->{messages} }) {
        $e = only_keys($m, 'messages[]', qw(role content)) and return $e;
        return 'messages[].role must be user or assistant'
            unless ($m->{role} // '') =~ /^(user|assistant)$/;
        next unless ref $m->{content};
        return 'messages[].content must be a string or a list'
            unless ref $m->{content} eq 'ARRAY';
        for my $b (@{ $m->{content} }) {
            my $t = $b->{type} // '';
            if ($t eq 'text') {
                $e = only_keys($b, 'text block', qw(type text cache_control));
            } elsif ($t eq 'image') {
                $e = only_keys($b, 'image block', qw(type source));
            } elsif ($t eq 'tool_use') {
                $e = only_keys($b, 'tool_use block', qw(type id name input));
                $e //= 'tool_use.input must be an object'
                    unless ref $b->{input} eq 'HASH';
            } elsif ($t eq 'tool_result') {
                $e = only_keys($b, 'tool_result block',
                               qw(type tool_use_id content is_error));
            } else {
                $e = "unknown content block type '$t'";
            }
            return $e if $e;
        }
    }
    for my $t (@{ $r->{tools} || [] }) {
        $e = only_keys($t, 'tools[]', qw(name description input_schema))
            and return $e;
        return 'tools[].input_schema: Field required'
            unless ref $t->{input_schema} eq 'HASH';
    }
    if (defined $r->{tool_choice}) {
        $e = only_keys($r->{tool_choice}, 'tool_choice',
                       qw(type name disable_parallel_tool_use)) and return $e;
    }
    return undef;
}

# the reply of the demo: a tool call, or what the user said
sub demo_turn {
    my ($last_is_user_text, $tools, $text) = @_;
    return (@$tools && $last_is_user_text) ? 'tool' : 'text';
}

sub anthropic {
    my ($c, $req, $close) = @_;
    my $last = $req->{messages}[-1];
    my $said = !ref $last->{content} ? $last->{content}
             : join ' ', map { $_->{text} // () } @{ $last->{content} };
    my $user_text = $last->{role} eq 'user'
                    && !grep { ($_->{type} // '') eq 'tool_result' }
                            @{ ref $last->{content} ? $last->{content} : [] };
    my @tools = @{ $req->{tools} || [] };
    my $kind = demo_turn($user_text, \@tools);
    my $text = "You said: $said";
    my $usage = { input_tokens => 20, cache_read_input_tokens => 5,
                  cache_creation_input_tokens => 0, output_tokens => 7 };
    my $id = 'msg_demo' . int(time * 1000);
    my @content = $kind eq 'tool'
        ? ({ type => 'tool_use', id => 'toolu_demo1', name => $tools[0]{name},
             input => { city => 'Paris' } })
        : ({ type => 'text', text => $text });
    my $stop = $kind eq 'tool' ? 'tool_use' : 'end_turn';

    if (!$req->{stream}) {
        reply($c, 200, $json->encode({ id => $id, type => 'message',
            role => 'assistant', model => $req->{model}, content => \@content,
            stop_reason => $stop, stop_sequence => undef, usage => $usage }),
            $close);
        return;
    }

    print $c "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        . "Transfer-Encoding: chunked\r\n"
        . ($close ? "Connection: close\r\n" : '') . "\r\n";
    my $ev = sub {
        my ($name, $data) = @_;
        my $e = "event: $name\ndata: " . $json->encode($data) . "\n\n";
        printf $c "%x\r\n%s\r\n", length $e, $e;
    };
    $ev->('message_start', { type => 'message_start', message => {
        id => $id, type => 'message', role => 'assistant',
        model => $req->{model}, content => [], stop_reason => undef,
        stop_sequence => undef, usage => { %$usage, output_tokens => 1 } } });
    if ($kind eq 'tool') {
        $ev->('content_block_start', { type => 'content_block_start',
            index => 0, content_block => { %{ $content[0] }, input => {} } });
        for my $piece ('{"city":', ' "Paris"}') {
            $ev->('content_block_delta', { type => 'content_block_delta',
                index => 0, delta => { type => 'input_json_delta',
                                       partial_json => $piece } });
        }
    } else {
        $ev->('content_block_start', { type => 'content_block_start',
            index => 0, content_block => { type => 'text', text => '' } });
        for my $w (split /(?<= )/, $text) {
            $ev->('content_block_delta', { type => 'content_block_delta',
                index => 0, delta => { type => 'text_delta', text => $w } });
            sleep 0.01;
        }
    }
    $ev->('content_block_stop', { type => 'content_block_stop', index => 0 });
    $ev->('message_delta', { type => 'message_delta', delta => {
        stop_reason => $stop, stop_sequence => undef },
        usage => { output_tokens => 7 } });
    $ev->('message_stop', { type => 'message_stop' });
    print $c "0\r\n\r\n";
}

# --------------------------------------------------------------- Gemini

sub gemini_invalid {
    my ($r) = @_;
    my $e;
    $e = only_keys($r, 'body', qw(contents systemInstruction
        generationConfig tools toolConfig safetySettings)) and return $e;
    return 'contents is required'
        unless ref $r->{contents} eq 'ARRAY' && @{ $r->{contents} };
    for my $m (@{ $r->{contents} }) {
        $e = only_keys($m, 'contents[]', qw(role parts)) and return $e;
        return 'contents[].role must be user or model'
            if defined $m->{role} && $m->{role} !~ /^(user|model)$/;
        return 'contents[].parts is required'
            unless ref $m->{parts} eq 'ARRAY' && @{ $m->{parts} };
        for my $p (@{ $m->{parts} }) {
            $e = only_keys($p, 'parts[]', qw(text thought inlineData
                functionCall functionResponse)) and return $e;
        }
    }
    if (defined $r->{systemInstruction}) {
        $e = only_keys($r->{systemInstruction}, 'systemInstruction',
                       qw(role parts)) and return $e;
    }
    if (defined $r->{generationConfig}) {
        $e = only_keys($r->{generationConfig}, 'generationConfig',
            qw(maxOutputTokens temperature topP topK stopSequences seed
               presencePenalty frequencyPenalty responseMimeType
               candidateCount thinkingConfig)) and return $e;
    }
    for my $t (@{ $r->{tools} || [] }) {
        $e = only_keys($t, 'tools[]', qw(functionDeclarations)) and return $e;
        for my $f (@{ $t->{functionDeclarations} || [] }) {
            $e = only_keys($f, 'functionDeclarations[]', qw(name description
                parameters parametersJsonSchema)) and return $e;
        }
    }
    return undef;
}

sub gemini {
    my ($c, $req, $model, $stream, $close) = @_;
    my $last = $req->{contents}[-1];
    my $said = join ' ', map { $_->{text} // () } @{ $last->{parts} };
    my $user_text = ($last->{role} // 'user') eq 'user'
                    && !grep { $_->{functionResponse} } @{ $last->{parts} };
    my @decl = map { @{ $_->{functionDeclarations} || [] } }
               @{ $req->{tools} || [] };
    my $kind = demo_turn($user_text, \@decl);
    my $usage = { promptTokenCount => 20, candidatesTokenCount => 7,
                  totalTokenCount => 27 };
    my @parts = $kind eq 'tool'
        ? ({ functionCall => { name => $decl[0]{name},
                               args => { city => 'Paris' } } })
        : ({ text => "You said: $said" });
    my $answer = { candidates => [ { content => { role => 'model',
                   parts => \@parts }, finishReason => 'STOP', index => 0 } ],
                   usageMetadata => $usage, modelVersion => $model,
                   responseId => 'rsp-demo' . int(time * 1000) };

    if (!$stream) {
        reply($c, 200, $json->encode($answer), $close);
        return;
    }

    print $c "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        . "Transfer-Encoding: chunked\r\n"
        . ($close ? "Connection: close\r\n" : '') . "\r\n";
    my $send = sub {
        my $e = 'data: ' . $json->encode($_[0]) . "\r\n\r\n";
        printf $c "%x\r\n%s\r\n", length $e, $e;
    };
    if ($kind eq 'text') {
        my @words = split /(?<= )/, $parts[0]{text};
        my $w0 = shift @words;
        $send->({ %$answer, candidates => [ { content => { role => 'model',
                  parts => [ { text => $w0 } ] }, index => 0 } ],
                  usageMetadata => { promptTokenCount => 20,
                                     totalTokenCount => 20 } });
        $parts[0]{text} = join '', @words;
    }
    $send->($answer);
    print $c "0\r\n\r\n";
}
