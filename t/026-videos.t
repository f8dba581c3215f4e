# Async video tasks (OpenAI's video API): POST /v1/videos is billed per
# task and per second when the upstream accepts it, and the task is kept
# for its user; GET /v1/videos/{id} and /content go to the channel that
# has it, for that user's keys only (others: 404); a poll that finds the
# task failed refunds its charge, once.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 100;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();
our $Config = relay_config(extra => <<'_EOC_');
    location = /mock/vid/v1/videos {
        access_log logs/spy.log;
        echo_read_request_body;
        default_type application/json;
        echo '{"id":"video_abc123","object":"video","model":"sora-2","status":"queued","progress":0,"seconds":"8"}';
    }

    location = /mock/vid/v1/videos/video_abc123 {
        access_log logs/spy.log;
        default_type application/json;
        echo '{"id":"video_abc123","object":"video","status":"completed","progress":100}';
    }

    location = /mock/vid/v1/videos/video_abc123/content {
        access_log logs/spy.log;
        default_type video/mp4;
        echo -n 'MP4-BYTES';
    }

    location = /mock/vid/v1/videos/video_bad1 {
        access_log logs/spy.log;
        default_type application/json;
        echo '{"id":"video_bad1","object":"video","status":"failed","error":{"code":"moderation_blocked","message":"blocked"}}';
    }

    location = /mock/bad/v1/videos {
        access_log logs/spy.log;
        echo_read_request_body;
        default_type application/json;
        echo '{"id":"video_bad1","object":"video","status":"queued","seconds":"4"}';
    }

    # the answer's first bytes, a second, then the rest
    location = /mock/vidslow/v1/videos {
        echo_read_request_body;
        default_type application/json;
        echo -n '{"id":"video_slow1",';
        echo_flush;
        echo_sleep 1;
        echo '"object":"video","model":"sora-2","status":"queued","seconds":"8"}';
    }

    location = /mock/refuse/v1/videos {
        default_type application/json;
        return 400 '{"error":{"message":"bad size","type":"invalid_request_error","param":"size","code":null}}';
    }
_EOC_
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";

# model sora-2 on channel 1: $0.10 a task and $0.05 a second
sub world {
    my (%o) = @_;
    AIRelayTest::seed_world(mock => $o{mock});
    AIRelayTest::seed_model('sora-2', channels => '1');
    AIRelayTest::seed_price('sora-2', request => 100_000, second => 50_000);
}

sub spy_lines {
    my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
    open my $fh, '<', "$root/logs/spy.log" or return 0;
    my @l = <$fh>;
    return scalar @l;
}

# a multipart/form-data body of [name, value] parts
our $B = 'videoFormBoundary7MA4YWxk';
our $CT = "Content-Type: multipart/form-data; boundary=$B";

sub form {
    my $body = '';
    for my $p (@_) {
        $body .= "--$B\r\nContent-Disposition: form-data; name=\"$p->[0]\""
                 . "\r\n\r\n$p->[1]\r\n";
    }
    return $body . "--$B--";   # no epilogue: the runner would chomp it
}

sub get {
    my ($path, $key) = @_;
    return http_request('GET', $path,
                        ['Authorization: Bearer ' . ($key // $AIRelayTest::TEST_KEY)]);
}

run_tests();

__DATA__

=== TEST 1: submit: billed per task and per second, the task kept for its user; poll and content on its channel
--- init
main::world(mock => '/mock/vid');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/videos
{"model":"sora-2","prompt":"a cat on a skateboard","seconds":"8","size":"1280x720"}
--- more_headers eval: $::Key
--- response_body_like: "id":"video_abc123"
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{cost}, 100_000 + 8 * 50_000, 'a task and 8 seconds');
is($r->{seconds}, 8, 'its seconds');
is($r->{usage_source}, 'request', 'priced from the request');
is(user_field(1, 'balance'), 10_000_000 - 500_000, 'charged once');
ok(wait_for(sub { redis('HGET', 'ar:{u1}:task:video_abc123', 'channel') }), 'the task is kept');
is(redis('HGET', 'ar:{u1}:task:video_abc123', 'model'), 'sora-2', 'with its model');
is(redis('HGET', 'ar:{u1}:task:video_abc123', 'cost'), 500_000, 'and its cost');
ok(redis('TTL', 'ar:{u1}:task:video_abc123') > 29 * 86400, 'for 30 days');
my ($s, $h, $b) = main::get('/v1/videos/video_abc123');
is($s, 200, 'poll served');
like($b, qr/"status":"completed"/, 'the upstream task');
($s, $h, $b) = main::get('/v1/videos/video_abc123/content');
is($s, 200, 'content served');
is($b, 'MP4-BYTES', 'the video bytes');
is(scalar(records(1)), 1, 'polls are not billed');
is(user_field(1, 'balance'), 10_000_000 - 500_000, 'balance as after the submit');
is(main::spy_lines(), 3, 'the upstream got the submit, the poll and the download');



=== TEST 2: another user's key gets 404 for the task, and nothing is forwarded
--- init
main::world(mock => '/mock/vid');
AIRelayTest::seed_user(2, balance => 1_000_000);
AIRelayTest::seed_key(2, $AIRelayTest::TEST_KEY2, id => 2);
AIRelayTest::redis('HSET', 'ar:{u1}:task:video_abc123', channel => 1, model => 'sora-2', cost => 1, charged => 1);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/videos/video_abc123
--- more_headers eval: "Authorization: Bearer $AIRelayTest::TEST_KEY2"
--- error_code: 404
--- response_body
{"error":{"message":"Video with id 'video_abc123' not found.","type":"invalid_request_error","param":null,"code":"not_found"}}
--- redis_check
my ($s) = main::get('/v1/videos/video_abc123/content', $AIRelayTest::TEST_KEY2);
is($s, 404, 'nor its content');
is(main::spy_lines(), 0, 'nothing reached the upstream');
is(user_field(2, 'balance'), 1_000_000, 'nothing changed');



=== TEST 3: a task the upstream refused is not kept and costs nothing
--- init
main::world(mock => '/mock/refuse');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/videos
{"model":"sora-2","prompt":"x","seconds":"4"}
--- more_headers eval: $::Key
--- error_code: 400
--- response_body_like: bad size
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'recorded');
is(last_record(1)->{cost}, 0, 'no cost');
is(user_field(1, 'balance'), 10_000_000, 'balance unchanged');
is(scalar(@{ redis('KEYS', 'ar:{u1}:task:*') }), 0, 'no task kept');



=== TEST 4: a poll that finds the task failed refunds it, once
--- init
main::world(mock => '/mock/bad');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/videos
{"model":"sora-2","prompt":"x","seconds":"4"}
--- more_headers eval: $::Key
--- response_body_like: video_bad1
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'submit recorded');
is(user_field(1, 'balance'), 10_000_000 - 300_000, 'charged a task and 4 seconds');
ok(wait_for(sub { redis('HGET', 'ar:{u1}:task:video_bad1', 'channel') }), 'kept');
# its polls go to the channel that has it: /mock/vid
redis('HSET', 'ar:{cfg}:channel:1', base_url => AIRelayTest::mock_url('/mock/vid'));
redis('INCR', 'ar:{cfg}:version');
my ($s, $h, $b) = main::get('/v1/videos/video_bad1');
is($s, 200, 'poll served');
like($b, qr/"status":"failed"/, 'failed upstream');
ok(wait_for(sub { user_field(1, 'balance') == 10_000_000 }), 'refunded');
($s) = main::get('/v1/videos/video_bad1');
is($s, 200, 'polled again');
sleep 0.3;
is(user_field(1, 'balance'), 10_000_000, 'refunded once, not twice');
is(redis('HGET', 'ar:{u1}:task:video_bad1', 'refunded'), 1, 'the task says so');
my @recs = records(1);
is(scalar(@recs), 2, 'the submit and the refund recorded');
is($recs[-1]{cost}, -300_000, 'the refund record');
is($recs[-1]{task}, 'video_bad1', 'names the task');
is(user_field(1, 'used'), 0, 'used back to zero');
like(cli('tasks', 'list', '--user', '1'),
     qr/^video_bad1\s+sora-2\s+1\s+\$0\.30\s+failed, refunded\s/m,
     'ai-relay tasks shows it');



=== TEST 5: the task is kept with its charge, by SETTLE: Redis refusing writes when the answer ends delays both, loses neither
--- init
main::world(mock => '/mock/vidslow');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1/models
--- more_headers eval: $::Key
--- response_body_like: sora-2
--- timeout: 30
--- redis_check
my $json = '{"model":"sora-2","prompt":"a cat","seconds":"8"}';
my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $AIRelayTest::SERVER_PORT,
                              Proto => 'tcp', Timeout => 30) or die "connect: $!";
binmode $c;
print $c "POST /v1/videos HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
         . "Content-Type: application/json\r\nAuthorization: Bearer $AIRelayTest::TEST_KEY\r\n"
         . 'Content-Length: ' . length($json) . "\r\n\r\n$json";
my ($res, $done) = ('', 0);
while (sysread($c, $res, 65536, length $res)) {
    if (!$done && $res =~ /"id":"video_slow1"/) {
        $done = 1;
        redis('CONFIG', 'SET', 'min-replicas-to-write', 1);
    }
}
close $c;
like($res, qr{^HTTP/1\.1 200}, 'the task was accepted');
ok(wait_for(sub { error_log_text() =~ /settlement \S+ failed: NOREPLICAS/ }, 20),
   'the settlement was refused');
is(redis('EXISTS', 'ar:{u1}:task:video_slow1'), 0, 'no task kept while Redis refuses');
redis('CONFIG', 'SET', 'min-replicas-to-write', 0);
ok(wait_for(sub { records(1) == 1 }, 20), 'settled once Redis took writes again');
my %t = @{ redis('HGETALL', 'ar:{u1}:task:video_slow1') };
is($t{cost}, 500_000, 'the task kept with its cost');
is($t{charged}, 500_000, 'and what was charged');
is($t{key}, key_hash($AIRelayTest::TEST_KEY), "the key's hash");
is($t{model}, 'sora-2', 'its model');
is($t{channel}, '1', 'its channel');
is($t{request}, last_record(1)->{request_id}, 'the request that created it');
is(user_field(1, 'balance'), 10_000_000 - 500_000, 'charged once');
ok(redis('TTL', 'ar:{u1}:task:video_slow1') > 29 * 86400, 'for 30 days');



=== TEST 6: a price per second by video size: a task of that size pays it, another size the model's per-second price
--- init
main::world(mock => '/mock/vid');
AIRelayTest::seed_price('sora-2', 'second:1792x1024' => 250_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
["POST /v1/videos\n{\"model\":\"sora-2\",\"prompt\":\"a wide shot\",\"seconds\":\"4\",\"size\":\"1792x1024\"}",
 "POST /v1/videos\n{\"model\":\"sora-2\",\"prompt\":\"a small shot\",\"seconds\":4,\"size\":\"1280x720\"}"]
--- more_headers eval: $::Key
--- response_body_like eval
["video_abc123", "video_abc123"]
--- redis_check
ok(wait_for(sub { records(1) == 2 }), 'two records');
my @c = sort { $a <=> $b } map { $_->{cost} } records(1);
is_deeply(\@c, [100_000 + 4 * 50_000, 100_000 + 4 * 250_000],
          'per second of its size, or the per-second price');
is(user_field(1, 'balance'), 10_000_000 - 1_400_000, 'charged once each');



=== TEST 7: the price of the video's size is what the submit reserves: a balance short of it is refused before anything goes
--- init
main::world(mock => '/mock/vid');
AIRelayTest::seed_price('sora-2', 'second:1792x1024' => 250_000);
AIRelayTest::redis('HSET', 'ar:{u1}:user', 'balance', 1_000_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/videos
{"model":"sora-2","prompt":"a wide shot","seconds":"4","size":"1792x1024"}
--- more_headers eval: $::Key
--- error_code: 402
--- response_body_like: insufficient
--- redis_check
is(user_field(1, 'balance'), 1_000_000, 'balance untouched');
is(main::spy_lines(), 0, 'nothing forwarded');



=== TEST 8: a price per second by video size and quality: second:<size>:<quality>, then the size's own, then second:*:<quality>, then second
--- init
main::world(mock => '/mock/vid');
AIRelayTest::seed_price('sora-2', 'second:1792x1024' => 250_000,
                        'second:1792x1024:high' => 400_000,
                        'second:*:high' => 300_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
["POST /v1/videos\n{\"model\":\"sora-2\",\"prompt\":\"a wide shot\",\"seconds\":\"4\",\"size\":\"1792x1024\",\"quality\":\"high\"}",
 "POST /v1/videos\n{\"model\":\"sora-2\",\"prompt\":\"a wide shot\",\"seconds\":\"4\",\"size\":\"1792x1024\",\"quality\":\"standard\"}",
 "POST /v1/videos\n{\"model\":\"sora-2\",\"prompt\":\"a small shot\",\"seconds\":\"4\",\"size\":\"1280x720\",\"quality\":\"high\"}",
 "POST /v1/videos\n{\"model\":\"sora-2\",\"prompt\":\"a small shot\",\"seconds\":\"4\",\"size\":\"1280x720\"}"]
--- more_headers eval: $::Key
--- response_body_like eval
["video_abc123", "video_abc123", "video_abc123", "video_abc123"]
--- redis_check
ok(wait_for(sub { records(1) == 4 }), 'four records');
my @c = sort { $a <=> $b } map { $_->{cost} } records(1);
is_deeply(\@c, [100_000 + 4 * 50_000, 100_000 + 4 * 250_000,
                100_000 + 4 * 300_000, 100_000 + 4 * 400_000],
          'its size and quality, its size, its quality, the per-second price');
is(user_field(1, 'balance'), 10_000_000 - 4_400_000, 'charged once each');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');



=== TEST 9: what a submit reserves is the price of its size and quality (the 402 says how much), or of its fallback; a balance short of it is refused before anything goes
--- init
main::world(mock => '/mock/vid');
AIRelayTest::seed_price('sora-2', 'second:1792x1024' => 250_000,
                        'second:1792x1024:high' => 400_000,
                        'second:*:high' => 300_000);
AIRelayTest::redis('HSET', 'ar:{u1}:user', 'balance', 1_000_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
["POST /v1/videos\n{\"model\":\"sora-2\",\"prompt\":\"a wide shot\",\"seconds\":\"4\",\"size\":\"1792x1024\",\"quality\":\"high\"}",
 "POST /v1/videos\n{\"model\":\"sora-2\",\"prompt\":\"a wide shot\",\"seconds\":\"4\",\"size\":\"1792x1024\",\"quality\":\"standard\"}",
 "POST /v1/videos\n{\"model\":\"sora-2\",\"prompt\":\"a small shot\",\"seconds\":\"4\",\"size\":\"1280x720\",\"quality\":\"high\"}"]
--- more_headers eval: $::Key
--- error_code eval
[402, 402, 402]
--- response_body_like eval
["reserves up to 1700000 micro-USD", "reserves up to 1100000 micro-USD",
 "reserves up to 1300000 micro-USD"]
--- redis_check
is(user_field(1, 'balance'), 1_000_000, 'balance untouched');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation');
is(scalar records(1), 0, 'no record');
is(main::spy_lines(), 0, 'nothing forwarded');



=== TEST 10: a multipart submit's quality part is priced too: reserved (a balance short of it refused), then charged
--- init
main::world(mock => '/mock/vid');
AIRelayTest::seed_price('sora-2', 'second:1792x1024' => 250_000,
                        'second:1792x1024:high' => 400_000);
AIRelayTest::redis('HSET', 'ar:{u1}:user', 'balance', 1_699_999);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /v1/videos\n" . main::form(['model', 'sora-2'], ['prompt', 'a wide shot'], ['seconds', '4'],
                                 ['size', '1792x1024'], ['quality', 'high'])
--- more_headers eval: "$::Key\n$::CT"
--- error_code: 402
--- response_body_like: reserves up to 1700000 micro-USD
--- redis_check
is(main::spy_lines(), 0, 'nothing forwarded');
redis('HSET', 'ar:{u1}:user', 'balance', 1_700_000);
my ($s, $h, $b) = http_request('POST', '/v1/videos',
                               [$::Key, $::CT],
                               main::form(['model', 'sora-2'], ['prompt', 'a wide shot'],
                                          ['seconds', '4'], ['size', '1792x1024'],
                                          ['quality', 'high']));
is($s, 200, 'served with a balance that covers it');
like($b, qr/video_abc123/, 'the task');
ok(wait_for(sub { records(1) == 1 }), 'one record');
is(last_record(1)->{cost}, 100_000 + 4 * 400_000, 'charged its size and quality');
is(user_field(1, 'balance'), 0, 'charged once');
