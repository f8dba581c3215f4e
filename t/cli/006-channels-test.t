#!/usr/bin/perl
# ai-relay channels test: one minimal real request per upstream key, sent
# to mock upstreams of each provider shape (OpenAI-compatible, Anthropic,
# Gemini), a refused port and a slow server; status, latency, the
# upstream's error message, masked keys, --json, exit codes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);
use AiRelayCli;
use AiRelayMockHttp;
use IO::Socket::INET;
use POSIX ();

my ($rc, $out, $err, $j, $reqs);

# straight to 127.0.0.1, whatever proxy the environment names
delete @ENV{qw(http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy
               ALL_PROXY)};

my $json = JSON::PP->new->canonical;

# the upstream: the key decides the answer; the path, the provider shape
my $mock = mock_http(sub {
    my ($req) = @_;
    my $h = $req->{headers};
    my $key = $h->{'x-api-key'} // $h->{'x-goog-api-key'}
              // (($h->{authorization} // '') =~ /^Bearer (.*)$/)[0] // '';
    my $ct = { 'Content-Type' => 'application/json' };

    if ($key =~ /slow/) {
        sleep 3;
        return (200, $ct, '{}');
    }

    if ($key =~ /bad/) {
        if ($req->{path} =~ m{/v1/messages$}) {
            return (401, $ct, $json->encode({ type => 'error',
                       error => { type => 'authentication_error',
                                  message => 'invalid x-api-key' } }));
        }
        if ($req->{path} =~ m{^/v1beta/}) {
            return (403, $ct, $json->encode({ error => { code => 403,
                       message => 'API key not valid. Please pass a valid '
                                  . 'API key.',
                       status => 'PERMISSION_DENIED' } }));
        }
        # some upstreams echo the key they refused
        return (401, $ct, $json->encode({ error => {
                   message => "Incorrect API key provided: $key.",
                   type => 'invalid_request_error', param => undef,
                   code => 'invalid_api_key' } }));
    }

    if ($key =~ /limit/) {
        return (429, { %$ct, 'Retry-After' => 20 }, $json->encode({
                   error => { message => 'Rate limit reached for requests',
                              type => 'requests',
                              code => 'rate_limit_exceeded' } }));
    }

    if ($key =~ /html/) {
        return (502, { 'Content-Type' => 'text/html' },
                "<html>\r\n<h1>502 Bad Gateway</h1>\r\n</html>\r\n");
    }

    if ($req->{path} =~ m{/v1/messages$}) {
        return (200, $ct, $json->encode({ id => 'msg_1', type => 'message',
                   role => 'assistant', model => 'claude-x',
                   content => [ { type => 'text', text => 'Hi' } ],
                   usage => { input_tokens => 8, output_tokens => 1 } }));
    }
    if ($req->{path} =~ m{^/v1beta/}) {
        return (200, $ct, $json->encode({ candidates => [ { content => {
                   parts => [ { text => 'Hi' } ], role => 'model' } } ],
                   usageMetadata => { promptTokenCount => 1,
                                      candidatesTokenCount => 1,
                                      totalTokenCount => 2 } }));
    }
    return (200, $ct, $json->encode({ id => 'chatcmpl-1',
               object => 'chat.completion', model => 'gpt-4o',
               choices => [ { index => 0, finish_reason => 'length',
                              message => { role => 'assistant',
                                           content => 'Hi' } } ],
               usage => { prompt_tokens => 8, completion_tokens => 1,
                          total_tokens => 9 } }));
});

my $base = "http://127.0.0.1:$mock->{port}";
my $refused = free_port();

my @keys = ('sk-good-aaaa-1111', 'sk-bad-bbbbb-2222', 'sk-limit-ccc-3333');

cli_ok('channels', 'create', '--provider', 'openai-compatible', '--name',
       'compat', '--base-url', $base, (map { ('--key', $_) } @keys),
       '--models', 'gpt-4o,gpt-4o-mini', '--map', 'gpt-4o=gpt-4o-2024-08-06');
cli_ok('channels', 'create', '--provider', 'anthropic', '--name', 'ant',
       '--base-url', $base, '--key', 'ant-good-key-4444', '--key',
       'ant-bad-key-5555', '--models', 'claude-x');
cli_ok('channels', 'create', '--provider', 'gemini', '--name', 'gem',
       '--base-url', "$base/", '--key', 'AIza-good-key-6666', '--key',
       'AIza-bad-key-7777', '--models', 'gemini-2.0-flash');
cli_ok('channels', 'create', '--provider', 'openai-compatible', '--name',
       'gone', '--base-url', "http://127.0.0.1:$refused", '--key',
       'sk-good-gone-8888', '--models', 'llama');
cli_ok('channels', 'create', '--provider', 'openai-compatible', '--name',
       'local', '--base-url', $base, '--disabled');

my $before = state();

# OpenAI-compatible: a good key, a refused one, a rate-limited one

mock_clear($mock);
($rc, $out, $err) = cli('channels', 'test', '1');
note($out);
is($rc, 1, 'a failed test exits 1');
like($err, qr/2 of 3 channel tests failed/, '... and says how many');
like($out, qr/^CHANNEL\s+NAME\s+PROVIDER\s+KEY\s+MODEL\s+STATUS\s+LATENCY\s+RESULT$/m,
     'a header');
like($out, qr/^1\s+compat\s+openai-compatible\s+sk-go\x{e2}\x{80}\x{a6}1111\s+gpt-4o-2024-08-06\s+200\s+\d+ ms\s+ok$/m,
     'the good key: 200, latency, ok');
like($out, qr/^1\s+compat\s+.*sk-ba\x{e2}\x{80}\x{a6}2222\s+\S+\s+401\s+\d+ ms\s+invalid_api_key: Incorrect API key provided: sk-ba\x{e2}\x{80}\x{a6}2222\.$/m,
     'the refused key: 401 and the upstream\'s message, the key masked in it');
like($out, qr/sk-li\x{e2}\x{80}\x{a6}3333\s+\S+\s+429\s+\d+ ms\s+rate_limit_exceeded: Rate limit reached for requests$/m,
     '429 and its message');
like($out, qr/^3 tests, 2 failed$/m, 'a summary');
for my $k (@keys) {
    unlike($out . $err, qr/\Q$k\E/, "$k never in full");
}

$reqs = mock_requests($mock);
is(scalar @$reqs, 3, 'one request per key');
is_deeply([ sort map { $_->{headers}{authorization} } @$reqs ],
          [ map { "Bearer $_" } sort @keys ], 'Authorization: Bearer KEY');
is_deeply([ map { "$_->{method} $_->{path}" } @$reqs ],
          [ ('POST /v1/chat/completions') x 3 ], 'POST /v1/chat/completions');
is($reqs->[0]{headers}{'content-type'}, 'application/json', 'JSON body');
is_deeply(decode_json($reqs->[0]{body}),
          { model => 'gpt-4o-2024-08-06', max_tokens => 1,
            messages => [ { role => 'user', content => 'hi' } ] },
          'the minimal body, the first model under its mapped name');
ok(!exists $reqs->[0]{headers}{'x-api-key'}, 'no other key header');

# --json

mock_clear($mock);
($rc, $out, $err) = cli('channels', 'test', '1', '--json');
is($rc, 1, '--json: exit 1 too');
$j = eval { decode_json($out) };
is(ref $j, 'ARRAY', '--json prints one JSON array') or diag($out);
is_deeply([ map { [ $_->{channel}, $_->{key}, $_->{ok} ? 1 : 0,
                    $_->{status}, $_->{error_code} ] } @$j ],
          [ [1, "sk-go\x{2026}1111", 1, 200, undef],
            [1, "sk-ba\x{2026}2222", 0, 401, 'invalid_api_key'],
            [1, "sk-li\x{2026}3333", 0, 429, 'rate_limit_exceeded'] ],
          'per key: channel, masked key, ok, status, error code');
is($j->[1]{error}, "Incorrect API key provided: sk-ba\x{2026}2222.",
   'the error message');
is($j->[0]{error}, undef, 'no error when ok');
like($j->[0]{latency_ms}, qr/^\d+$/, 'latency in ms');
is_deeply([ @{ $j->[0] }{qw(name provider channel_status model url)} ],
          ['compat', 'openai-compatible', 'enabled', 'gpt-4o-2024-08-06',
           "$base/v1/chat/completions"], 'the channel and the request');
unlike($out, qr/aaaa-1111|bbbbb-2222|ccc-3333/, 'no full key in JSON');

# --model: mapped like the relay maps it, or sent as given

mock_clear($mock);
cli('channels', 'test', '1', '--model', 'gpt-4o-mini');
is(decode_json(mock_requests($mock)->[0]{body})->{model}, 'gpt-4o-mini',
   '--model without a mapping: as given');
mock_clear($mock);
cli('channels', 'test', '1', '--model', 'gpt-4o');
is(decode_json(mock_requests($mock)->[0]{body})->{model},
   'gpt-4o-2024-08-06', '--model with a mapping: the upstream name');

# Anthropic

mock_clear($mock);
$j = cli_json_rc(1, 'channels', 'test', '2');
is_deeply([ map { [ $_->{status}, $_->{error}, $_->{error_code} ] } @$j ],
          [ [200, undef, undef],
            [401, 'invalid x-api-key', 'authentication_error'] ],
          'anthropic: 200, and the error shape of Anthropic');
$reqs = mock_requests($mock);
is_deeply([ map { "$_->{method} $_->{path}" } @$reqs ],
          [ ('POST /v1/messages') x 2 ], 'POST /v1/messages');
is_deeply([ map { $_->{headers}{'x-api-key'} } @$reqs ],
          ['ant-good-key-4444', 'ant-bad-key-5555'], 'x-api-key');
is($reqs->[0]{headers}{'anthropic-version'}, '2023-06-01',
   'anthropic-version');
ok(!exists $reqs->[0]{headers}{authorization}, 'no Authorization');
is_deeply(decode_json($reqs->[0]{body}),
          { model => 'claude-x', max_tokens => 1,
            messages => [ { role => 'user', content => 'hi' } ] },
          'anthropic body');

# Gemini

mock_clear($mock);
$j = cli_json_rc(1, 'channels', 'test', '3');
is_deeply([ map { [ $_->{status}, $_->{error_code} ] } @$j ],
          [ [200, undef], [403, 'PERMISSION_DENIED'] ],
          'gemini: 200, and the error shape of Gemini');
is($j->[1]{error}, 'API key not valid. Please pass a valid API key.',
   'gemini error message');
$reqs = mock_requests($mock);
is_deeply([ map { "$_->{method} $_->{path}" } @$reqs ],
          [ ('POST /v1beta/models/gemini-2.0-flash:generateContent') x 2 ],
          'POST /v1beta/models/M:generateContent (base URL\'s "/" dropped)');
is_deeply([ map { $_->{headers}{'x-goog-api-key'} } @$reqs ],
          ['AIza-good-key-6666', 'AIza-bad-key-7777'], 'x-goog-api-key');
ok(!exists $reqs->[0]{headers}{authorization}, 'no Authorization');
is_deeply(decode_json($reqs->[0]{body}),
          { contents => [ { role => 'user', parts => [ { text => 'hi' } ] } ],
            generationConfig => { maxOutputTokens => 1 } }, 'gemini body');

# a refused connection

($rc, $out, $err) = cli('channels', 'test', '4');
is($rc, 1, 'refused: exit 1');
like($out, qr/^4\s+gone\s+.*sk-go\x{e2}\x{80}\x{a6}8888\s+llama\s+-\s+\d+ ms\s+.*(refused|connect)/mi,
     'refused: no status, the connection error');
$j = cli_json_rc(1, 'channels', 'test', '4');
is($j->[0]{status}, undef, 'refused: status null');
like($j->[0]{error}, qr/refused|connect/i, 'refused: the error');

# a channel without keys or models, disabled: still tested

($rc, $out, $err) = cli('channels', 'test', '5');
is($rc, 1, 'no model: exit 1');
like($out, qr/^5\s+local \(disabled\)\s+openai-compatible\s+-\s+-\s+-\s+-\s+no model routes to this channel; give --model$/m,
     'no model: says to give --model');
mock_clear($mock);
$j = cli_json_rc(0, 'channels', 'test', '5', '--model', 'qwen');
is_deeply([ @{ $j->[0] }{qw(key status channel_status)} ],
          [undef, 200, 'disabled'], 'keyless, disabled: tested, 200');
$reqs = mock_requests($mock);
ok(!exists $reqs->[0]{headers}{authorization}, 'keyless: no Authorization');

# a model that routes to the channel without being in its list

redis_cmd('HSET', 'ar:{cfg}:model:phi', 'channels', '5');
redis_cmd('SADD', 'ar:{cfg}:models', 'phi');
mock_clear($mock);
$j = cli_json_rc(0, 'channels', 'test', '5');
is($j->[0]{model}, 'phi', 'the first model whose channels list it');
redis_cmd('DEL', 'ar:{cfg}:model:phi');
redis_cmd('SREM', 'ar:{cfg}:models', 'phi');

# --all: every channel in id order, every key

$j = cli_json_rc(1, 'channels', 'test', '--all');
is_deeply([ map { $_->{channel} } @$j ], [1, 1, 1, 2, 2, 3, 3, 4, 5],
          '--all: every key of every channel');
is_deeply([ map { $_->{ok} ? 1 : 0 } @$j ], [1, 0, 0, 1, 0, 1, 0, 0, 0],
          '--all: the results');

is_deeply(state(), $before, 'channels test changes nothing in Redis');

# https: TLS is spoken and the certificate checked (a self-signed one
# here, from openssl s_server; real providers have real ones)

SKIP: {
    skip 'no openssl command', 5
        unless grep { -x "$_/openssl" } split /:/, $ENV{PATH};
    my $tls = "$TMP/tls";
    mkdir $tls;
    system("openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
           . "-subj /CN=127.0.0.1 -keyout $tls/key.pem -out $tls/cert.pem "
           . ">/dev/null 2>&1") == 0 or skip 'openssl req failed', 5;
    my $port = free_port();
    my $pid = fork();
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        {
            exec 'openssl', 's_server', '-accept', "127.0.0.1:$port",
                 '-cert', "$tls/cert.pem", '-key', "$tls/key.pem", '-www',
                 '-quiet';
        }
        POSIX::_exit(127);
    }
    for (1 .. 100) {
        last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        select(undef, undef, undef, 0.05);
    }
    cli_ok('channels', 'create', '--provider', 'openai', '--name', 'tls',
           '--base-url', "https://127.0.0.1:$port", '--key',
           'sk-good-tls-key-1234', '--models', 'gpt-4o', '--id', '8');
    $j = cli_json_rc(1, 'channels', 'test', '8');
    like($j->[0]{error}, qr/certificate/i,
         'https: the certificate is checked') or diag($j->[0]{error});
    note($j->[0]{error});
    kill 'TERM', $pid;
    waitpid $pid, 0;
    cli_ok('channels', 'remove', '8');
}

# all good: exit 0

cli_ok('channels', 'update', '2', '--key', 'ant-good-key-4444');
($out) = cli_ok('channels', 'test', '2');
like($out, qr/^1 test, 0 failed$/m, 'all good: exit 0');

# an error body that is no JSON; a slow upstream and --timeout

cli_ok('channels', 'create', '--provider', 'openai', '--name', 'html',
       '--base-url', $base, '--key', 'sk-html-key-9999', '--models',
       'gpt-4o', '--id', '6');
$j = cli_json_rc(1, 'channels', 'test', '6');
is_deeply([ @{ $j->[0] }{qw(status error)} ],
          [502, '<html> <h1>502 Bad Gateway</h1> </html>'],
          'not JSON: the body, on one line');

cli_ok('channels', 'create', '--provider', 'openai', '--name', 'slow',
       '--base-url', $base, '--key', 'sk-slow-key-0000', '--models',
       'gpt-4o', '--id', '7');
my $t0 = time;
$j = cli_json_rc(1, 'channels', 'test', '7', '--timeout', '1');
ok(time - $t0 < 2.5, '--timeout 1: gave up after about 1 s');
like($j->[0]{error}, qr/timed out/i, 'timeout: the error');
is($j->[0]{status}, undef, 'timeout: no status');
cli_ok('channels', 'remove', '6');
cli_ok('channels', 'remove', '7');
cli_ok('channels', 'update', '2', '--key', 'ant-good-key-4444', '--key',
       'ant-bad-key-5555');

# usage errors

rejected(['channels', 'test'], 2, qr/give a channel ID or --all/);
# a base URL with a version in its path is the API root, as for the relay

cli_ok('channels', 'update', '3', '--base-url', "$base/v1beta");
mock_clear($mock);
cli_json_rc(1, 'channels', 'test', '3');
is_deeply([ map { "$_->{method} $_->{path}" } @{ mock_requests($mock) } ],
          [ ('POST /v1beta/models/gemini-2.0-flash:generateContent') x 2 ],
          'a base URL ending in /v1beta: its /v1beta, not a second one');
cli_ok('channels', 'update', '1', '--base-url', "$base/v1");
mock_clear($mock);
cli('channels', 'test', '1');
is_deeply([ map { "$_->{method} $_->{path}" } @{ mock_requests($mock) } ],
          [ ('POST /v1/chat/completions') x 3 ],
          'a base URL ending in /v1: POST /v1/chat/completions');
cli_ok('channels', 'update', '1', '--base-url', $base);
cli_ok('channels', 'update', '3', '--base-url', $base);

rejected(['channels', 'test', '1', '--all'], 2, qr/give a channel ID or --all/);
rejected(['channels', 'test', '99'], 1, qr/no channel 99/);
rejected(['channels', 'test', 'x'], 1, qr/invalid channel id "x"/);
rejected(['channels', 'test', '1', '--timeout', '0'], 1,
         qr/invalid --timeout "0"/);
rejected(['channels', 'test', '1', '--model', 'a b'], 1,
         qr/invalid --model "a b"/);

done_testing();

# --json output of a command expected to exit $code
sub cli_json_rc {
    my ($code, @args) = @_;
    my ($rc, $out, $err) = cli(@args, '--json');
    is($rc, $code, "ai-relay @args --json exits $code") or diag($err);
    my $j = eval { decode_json($out) };
    is(ref $j, 'ARRAY', "ai-relay @args --json prints an array")
        or diag($out);
    return $j || [];
}
