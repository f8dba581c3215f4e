# multipart/form-data bodies (audio transcriptions and translations,
# image edits): the model field is read and rewritten for the channel,
# every other byte reaches the upstream as sent, file parts are never
# copied (a 20 MB file part leaves nginx's memory as it was), and the
# request is billed from the upstream's usage or per image.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;
use Digest::SHA qw(sha256_hex);

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 99;
no_shuffle();
no_long_string();
install_redis_check();

our $UpPort = free_port();
our $HttpConfig = http_config();
our $Config = relay_config(relay => 'client_max_body_size 30m;',
                           extra => <<'_EOC_');
    location /mock/stt/ {
        echo_read_request_body;
        default_type application/json;
        echo '{"text":"Hello world","usage":{"type":"tokens","input_tokens":100,"output_tokens":5,"total_tokens":105,"input_token_details":{"text_tokens":0,"audio_tokens":100}}}';
    }

    location /mock/sec/ {
        echo_read_request_body;
        default_type application/json;
        echo '{"text":"Hello world","usage":{"type":"duration","seconds":9.2}}';
    }

    location /mock/fail/ {
        default_type application/json;
        return 500 '{"error":{"message":"The server had an error","type":"server_error"}}';
    }

    location /mock/img/ {
        echo_read_request_body;
        default_type application/json;
        echo '{"created":1,"data":[{"b64_json":"AAAA"},{"b64_json":"BBBB"}]}';
    }
_EOC_
# nginx's own retry (proxy_next_upstream ... non_idempotent) on an
# upstream{} whose first server answers 502, the spooled form's model in the
# middle of the temporary file
our $BadPort = 2190;
our $RetryHttp = http_config(extra => <<"_EOC_");
    upstream form_retry {
        server 127.0.0.1:$BadPort;
        server 127.0.0.1:\$TEST_NGINX_SERVER_PORT backup;
    }

    server {
        listen 127.0.0.1:$BadPort;
        location / { return 502; }
    }
_EOC_
our $RetryConfig = relay_config(relay => 'client_body_buffer_size 1k; '
                                   . 'proxy_next_upstream error http_502 non_idempotent;');
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";
our $B = 'XyZzY0123';

# a form: [name, value, filename] each
sub form {
    my @parts = @_;
    my $body = '';
    for my $p (@parts) {
        my ($name, $value, $file) = @$p;
        $body .= "--$B\r\nContent-Disposition: form-data; name=\"$name\""
                 . (defined $file ? "; filename=\"$file\"\r\n"
                                    . "Content-Type: application/octet-stream"
                                  : '')
                 . "\r\n\r\n$value\r\n";
    }
    return $body . "--$B--";   # no epilogue: the runner would chomp it
}

# a boundary's beginning inside the file: not one
our $Audio = "ID3\x00\x01\r\n--" . substr($B, 0, 8) . "\r\n\xff\xfe"
             . ('a' x 100);
our $Form = form(['file', $Audio, 'speech.mp3'], ['model', 'stt'],
                 ['response_format', 'json']);
our $CT = "Content-Type: multipart/form-data; boundary=$B";

# a WAV file of mono 16 kHz 16-bit PCM (32000 bytes a second) playing
# $secs seconds, its 44-byte header included in the size
sub wav {
    my ($secs) = @_;
    my $data = 32000 * $secs;
    return 'RIFF' . pack('V', 36 + $data) . 'WAVE' . 'fmt ' . pack('V', 16)
           . pack('vvVVvv', 1, 1, 16000, 32000, 2, 16) . 'data'
           . pack('V', $data) . ("\0" x $data);
}

# a world with model "stt" on channel 1, the upstream's name "stt-real"
sub world {
    my (%o) = @_;
    AIRelayTest::seed_world(mock => $o{mock},
        channel => { map => { stt => 'stt-real' }, %{ $o{channel} || {} } });
    AIRelayTest::seed_model('stt', channels => '1');
    AIRelayTest::seed_price('stt', input => 6_000_000, output => 10_000_000,
                            image => 40_000, %{ $o{price} || {} });
}

# peak resident memory of a process, kB
sub hwm {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) { return $1 if /^VmHWM:\s+(\d+)/ }
    return undef;
}

# a one-shot upstream: answers a transcription whose text is the
# SHA-256 and length of the body it got
sub sha_upstream {
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $UpPort, Listen => 5,
                                    ReuseAddr => 1) or die "upstream: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid) { close $srv; return $pid }
    local $SIG{ALRM} = sub { POSIX::_exit(0) };
    alarm 30;
    my $c = $srv->accept or POSIX::_exit(0);
    binmode $c;
    my $req = '';
    sysread($c, $req, 65536, length $req) until $req =~ /\r\n\r\n/;
    my ($head, $body) = split /\r\n\r\n/, $req, 2;
    my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
    sysread($c, $body, 1 << 20, length $body) while length($body) < $len;
    my $json = '{"text":"' . sha256_hex($body) . ':' . length($body)
               . '","usage":{"type":"tokens","input_tokens":1000,'
               . '"output_tokens":10,"total_tokens":1010}}';
    print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
             . "Content-Length: " . length($json) . "\r\nConnection: close"
             . "\r\n\r\n$json";
    close $c;
    POSIX::_exit(0);
}

run_tests();

__DATA__

=== TEST 1: a transcription: the model value is rewritten, every other byte reaches the upstream as sent
--- init
main::world(mock => '/mock/echo');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/audio/transcriptions\n$::Form"
--- more_headers eval: "$::Key\n$::CT"
--- response_body_like eval
my $want = main::form(['file', $::Audio, 'speech.mp3'], ['model', 'stt-real'], ['response_format', 'json']);
qr/\r\n\r\n\Q$want\E$/s
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{model}, 'stt', 'the client model');
is($r->{upstream_model}, 'stt-real', 'the upstream model');
is($r->{status}, 200, 'status');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');



=== TEST 2: billed from the upstream's usage (input_tokens, output_tokens)
--- init
main::world(mock => '/mock/stt');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/audio/transcriptions\n$::Form"
--- more_headers eval: "$::Key\n$::CT"
--- response_body_like: Hello world
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{prompt_tokens}, 100, 'input tokens');
is($r->{completion_tokens}, 5, 'output tokens');
is($r->{usage_source}, 'upstream', 'from the upstream');
is($r->{cost}, (100 * 6 + 5 * 10), '100 at $6 + 5 at $10 per 1M');
is(user_field(1, 'balance'), 10_000_000 - 650, 'charged once');



=== TEST 3: translations too
--- init
main::world(mock => '/mock/stt');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/audio/translations\n$::Form"
--- more_headers eval: "$::Key\n$::CT"
--- response_body_like: Hello world
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
is(last_record(1)->{cost}, 650, 'from its usage');



=== TEST 4: an image edit: priced per image, n from the form
--- init
main::world(mock => '/mock/img');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/images/edits\n" . main::form(['image', "\x89PNG\r\n\x1a\n" . ('p' x 50), 'a.png'], ['prompt', 'a red hat'], ['model', 'stt'], ['n', '2'])
--- more_headers eval: "$::Key\n$::CT"
--- response_body_like: BBBB
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{images}, 2, 'two images');
is($r->{cost}, 80_000, 'at $0.04 each');



=== TEST 5: a broken form: 400 in OpenAI's format, nothing changed
--- init
main::world(mock => '/mock/echo');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/audio/transcriptions\n--$::B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nstt\r\n"
--- more_headers eval: "$::Key\n$::CT"
--- error_code: 400
--- response_body
{"error":{"message":"We could not parse the multipart body of your request: the closing boundary is missing.","type":"invalid_request_error","param":null,"code":"invalid_multipart"}}
--- redis_check
is(scalar(records(1)), 0, 'no record');
is(user_field(1, 'balance'), 10_000_000, 'balance unchanged');



=== TEST 6: a form without a model: 400 missing_model
--- init
main::world(mock => '/mock/echo');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/audio/transcriptions\n" . main::form(['file', 'abc', 'a.mp3'])
--- more_headers eval: "$::Key\n$::CT"
--- error_code: 400
--- response_body
{"error":{"message":"You must provide a model parameter.","type":"invalid_request_error","param":null,"code":"missing_model"}}



=== TEST 7: a multipart type without a boundary: 400
--- init
main::world(mock => '/mock/echo');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/audio/transcriptions\n$::Form"
--- more_headers eval: "$::Key\nContent-Type: multipart/form-data"
--- error_code: 400
--- response_body_like: invalid_multipart



=== TEST 8: a 20 MB file part, spooled by nginx: the upstream gets identical bytes, nginx's memory does not grow by it
--- init
main::world(channel => { base_url => "http://127.0.0.1:$main::UpPort" });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- response_body_like: stt
--- redis_check
# the process serving requests: the worker, or nginx itself without a master
my ($master, @workers) = nginx_pids();
my $pid = @workers ? $workers[0] : $master;
my $before = main::hwm($pid);
ok(defined $before && $before > 0, "peak memory of $pid: $before kB");
# 20 MB that looks like a boundary now and then
my $chunk = join '', map { chr(($_ * 7 + 3) % 256) } 0 .. 1023;
my $file = ($chunk x 1024 . "\r\n--" . substr($main::B, 0, 8) . "\r\n") x 20;
my $body = main::form(['model', 'stt'], ['file', $file, 'long.wav'],
                      ['language', 'en']);
my $want = main::form(['model', 'stt-real'], ['file', $file, 'long.wav'],
                      ['language', 'en']);
my $up = main::sha_upstream();
my ($status, $head, $res) = http_request('POST', '/v1/audio/transcriptions',
    ["Authorization: Bearer $AIRelayTest::TEST_KEY",
     "Content-Type: multipart/form-data; boundary=$main::B"], $body);
waitpid($up, 0);
is($status, 200, 'served');
like($res, qr/"text":"\Q${\ sha256_hex($want)}\E:${\ length $want}"/,
     'the upstream got every byte, the model rewritten');
my $after = main::hwm($pid);
# nginx's debug log names every allocation its pools take from malloc:
# none is of the file's size (peak memory only informs, it depends on the
# machine's allocator)
my @all = error_log_text() =~ /malloc: \S+:(\d+)/g;
ok(scalar(@all) > 0, 'the debug log shows allocations');
my @big = grep { $_ >= 1 << 20 } @all;
is(scalar(@big), 0, 'no allocation of 1 MB or more (the worker\'s peak memory grew by '
   . ($after - $before) . ' kB)');
like(error_log_text(), qr/a client request body is buffered to a temporary file/,
     'nginx spooled the body');
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{prompt_tokens}, 1000, 'billed from the usage');
is($r->{cost}, 1000 * 6 + 10 * 10, 'its price');
--- timeout: 30



=== TEST 9: a failover rewrites the form again for the next channel's name, from the bytes the client sent
--- init
main::world(mock => '/mock/echo');
AIRelayTest::seed_channel("mpf$$", base_url => AIRelayTest::mock_url('/mock/fail'), priority => 10,
                          map => { stt => 'stt-one-longer-name' });
AIRelayTest::seed_channel("mpo$$", base_url => AIRelayTest::mock_url('/mock/echo'), priority => 0,
                          map => { stt => 'stt-two' });
AIRelayTest::seed_model('stt', channels => "mpf$$,mpo$$");
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/audio/transcriptions\n$::Form"
--- more_headers eval: "$::Key\n$::CT"
--- response_body_like eval
my $want = main::form(['file', $::Audio, 'speech.mp3'], ['model', 'stt-two'], ['response_format', 'json']);
qr/\r\n\r\n\Q$want\E$/s
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{tries}, 2, 'two tries');
is($r->{upstream_model}, 'stt-two', "the second channel's name");



=== TEST 10: a transcription the upstream reports in seconds is priced by the second (rounded up)
--- init
main::world(mock => '/mock/sec', price => { second => 100, request => 7 });
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/audio/transcriptions\n$::Form"
--- more_headers eval: "$::Key\n$::CT"
--- response_body_like: Hello
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{seconds}, 10, '9.2 seconds billed as 10');
is($r->{prompt_tokens}, 0, 'no tokens');
is($r->{usage_source}, 'upstream', 'from the upstream');
is($r->{cost}, 10 * 100 + 7, 'per second, plus the request');
is(user_field(1, 'balance'), 10_000_000 - 1007, 'charged once');



=== TEST 11: a priced field twice (model, n): 400, nothing forwarded or changed
--- init
main::world(mock => '/mock/echo');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
["POST /v1/audio/transcriptions\n" . main::form(['file', 'abc', 'a.mp3'], ['model', 'stt'], ['model', 'whisper-expensive']),
 "POST /v1/images/edits\n" . main::form(['image', 'abc', 'a.png'], ['model', 'stt'], ['n', '1'], ['prompt', 'x'], ['n', '10'])]
--- more_headers eval: "$::Key\n$::CT"
--- error_code eval
[400, 400]
--- response_body eval
['{"error":{"message":"We could not parse the multipart body of your request: the field \'model\' is given more than once.","type":"invalid_request_error","param":null,"code":"invalid_multipart"}}' . "\n",
 '{"error":{"message":"We could not parse the multipart body of your request: the field \'n\' is given more than once.","type":"invalid_request_error","param":null,"code":"invalid_multipart"}}' . "\n"]
--- redis_check
is(scalar(records(1)), 0, 'no record');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation');
is(user_field(1, 'balance'), 10_000_000, 'balance unchanged');



=== TEST 12: two boundary parameters: 400
--- init
main::world(mock => '/mock/echo');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/audio/transcriptions\n$::Form"
--- more_headers eval: "$::Key\nContent-Type: multipart/form-data; boundary=$::B; boundary=other"
--- error_code: 400
--- response_body_like: invalid_multipart
--- redis_check
is(scalar(records(1)), 0, 'no record');
is(user_field(1, 'balance'), 10_000_000, 'balance unchanged');



=== TEST 13: a part with two name parameters, a part with two Content-Disposition headers: 400
--- init
main::world(mock => '/mock/echo');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
["POST /v1/audio/transcriptions\n--$::B\r\nContent-Disposition: form-data; name=\"model\"; name=\"prompt\"\r\n\r\nstt\r\n--$::B--",
 "POST /v1/audio/transcriptions\n--$::B\r\nContent-Disposition: form-data; name=\"prompt\"\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nstt\r\n--$::B--"]
--- more_headers eval: "$::Key\n$::CT"
--- error_code eval
[400, 400]
--- response_body eval
['{"error":{"message":"We could not parse the multipart body of your request: a part with two name parameters.","type":"invalid_request_error","param":null,"code":"invalid_multipart"}}' . "\n",
 '{"error":{"message":"We could not parse the multipart body of your request: a part with two Content-Disposition headers.","type":"invalid_request_error","param":null,"code":"invalid_multipart"}}' . "\n"]
--- redis_check
is(scalar(records(1)), 0, 'no record');
is(user_field(1, 'balance'), 10_000_000, 'balance unchanged');



=== TEST 14: nginx does not resend a spooled form whose file ranges have a gap (it would restart the second range where the first ended): the relay's failover rebuilds it
--- init
main::world(mock => '/mock/echo');
AIRelayTest::seed_channel("nra$$", base_url => 'http://form_retry/mock/echo', priority => 10,
                          map => { stt => 'stt-a' });
AIRelayTest::seed_channel("nrb$$", base_url => AIRelayTest::mock_url('/mock/echo'), priority => 0,
                          map => { stt => 'stt-b' });
AIRelayTest::seed_model('stt', channels => "nra$$,nrb$$");
--- http_config eval: $::RetryHttp
--- config eval: $::RetryConfig
--- request eval
"POST /v1/audio/transcriptions\n" . main::form(['file', 'A' x 3000, 'a.mp3'], ['model', 'stt'], ['prompt', 'B' x 3000])
--- more_headers eval: "$::Key\n$::CT"
--- response_body_like eval
my $want = main::form(['file', 'A' x 3000, 'a.mp3'], ['model', 'stt-b'], ['prompt', 'B' x 3000]);
qr/\r\n\r\n\Q$want\E$/s
--- redis_check
like(error_log_text(), qr/a client request body is buffered to a temporary file/,
     'nginx spooled the body');
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{tries}, 2, "two tries: the relay's, not nginx's");
is($r->{upstream_model}, 'stt-b', "the second channel's name");



=== TEST 15: a transcription asking for text, srt or vtt (answers with no usage to bill from): 400 before anything is reserved or forwarded
--- init
main::world(mock => '/mock/echo');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
["POST /v1/audio/transcriptions\n" . main::form(['file', 'abc', 'a.mp3'], ['model', 'stt'], ['response_format', 'text']),
 "POST /v1/audio/translations\n" . main::form(['file', 'abc', 'a.mp3'], ['model', 'stt'], ['response_format', 'srt']),
 "POST /v1/audio/transcriptions\n" . main::form(['file', 'abc', 'a.mp3'], ['model', 'stt'], ['response_format', 'verbose_json'])]
--- more_headers eval: "$::Key\n$::CT"
--- error_code eval
[400, 400, 200]
--- response_body_like eval
["unsupported_response_format", "unsupported_response_format", "stt-real"]
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record: the verbose_json one');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');



=== TEST 16: a transcription priced by the second reserves as long as its file plays (a WAV's header says: 10 s and 44 bytes, so 11 s): a balance short of that is refused before anything goes
--- init
main::world(mock => '/mock/sec', price => { second => 100_000, request => 0 });
AIRelayTest::redis('HSET', 'ar:{u1}:user', 'balance', 1_000_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/audio/transcriptions\n" . main::form(['file', main::wav(10), 'talk.wav'], ['model', 'stt'])
--- more_headers eval: "$::Key\n$::CT"
--- error_code: 402
--- response_body_like: insufficient
--- redis_check
is(user_field(1, 'balance'), 1_000_000, 'balance untouched');
is(scalar records(1), 0, 'no record');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation');



=== TEST 17: the same file with a balance that covers 11 s: served, and charged the seconds the upstream reports (9.2, so 10)
--- init
main::world(mock => '/mock/sec', price => { second => 100_000, request => 0 });
AIRelayTest::redis('HSET', 'ar:{u1}:user', 'balance', 1_200_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/audio/transcriptions\n" . main::form(['file', main::wav(10), 'talk.wav'], ['model', 'stt'])
--- more_headers eval: "$::Key\n$::CT"
--- response_body_like: Hello
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{seconds}, 10, '9.2 seconds billed as 10');
is($r->{cost}, 1_000_000, 'per second');
is(user_field(1, 'balance'), 200_000, 'charged once');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');
