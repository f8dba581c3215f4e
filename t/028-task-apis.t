# Tasks beyond OpenAI's video submit: the remix of a video (POST
# /v1/videos/{id}/remix: the key's own video, its model, seconds and size,
# on its channel), the generic video shape (POST /v1/video/generations,
# GET /v1/video/generations/{task_id}) and DashScope's async image and
# video tasks (POST /api/v1/services/aigc/..., GET /api/v1/tasks/{id}).
# Each is charged when the upstream accepts it, kept for its user only,
# polled on its channel, and refunded once when a poll finds it failed.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 84;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();
our $Config = relay_config(extra => <<'_EOC_');
    # DashScope's clients: base URL .../api/v1
    location /api/v1/ {
        ai_relay openai;
        proxy_pass $ai_relay_upstream_url;
    }

    location = /mock/ch1/v1/videos {
        access_log logs/ch1.log;
        echo_read_request_body;
        default_type application/json;
        echo '{"id":"video_src1","object":"video","model":"sora-2","status":"queued","seconds":"8","size":"1792x1024"}';
    }

    location = /mock/ch1/v1/videos/video_src1/remix {
        access_log logs/ch1.log;
        echo_read_request_body;
        default_type application/json;
        echo '{"id":"video_rmx1","object":"video","model":"sora-2","status":"queued","remixed_from_video_id":"video_src1","body":$request_body}';
    }

    location = /mock/ch1/v1/videos/video_rmx1 {
        access_log logs/ch1.log;
        default_type application/json;
        echo '{"id":"video_rmx1","object":"video","status":"failed"}';
    }

    location /mock/ch2/ {
        access_log logs/ch2.log;
        echo_read_request_body;
        default_type application/json;
        echo '{"id":"video_wrong","object":"video","status":"queued"}';
    }

    location = /mock/gen/v1/video/generations {
        access_log logs/gen.log;
        echo_read_request_body;
        default_type application/json;
        echo '{"task_id":"gen_task_1","status":"queued"}';
    }

    location = /mock/gen/v1/video/generations/gen_task_1 {
        access_log logs/gen.log;
        default_type application/json;
        echo '{"task_id":"gen_task_1","status":"failed","error":{"code":1,"message":"no"}}';
    }

    location = /mock/ds/api/v1/services/aigc/text2image/image-synthesis {
        access_log logs/ds.log;
        echo_read_request_body;
        default_type application/json;
        echo '{"output":{"task_status":"PENDING","task_id":"0385dc79-5ff8-4d82-bcb6-caf3c5432a1e"},"request_id":"4909100c-7b5a-9f92-bfe5-cb1e4d4e5e2f"}';
    }

    location = /mock/ds/api/v1/services/aigc/video-generation/video-synthesis {
        access_log logs/ds.log;
        echo_read_request_body;
        default_type application/json;
        echo '{"output":{"task_status":"PENDING","task_id":"ds-video-1"},"request_id":"r2"}';
    }

    location = /mock/ds/api/v1/tasks/0385dc79-5ff8-4d82-bcb6-caf3c5432a1e {
        access_log logs/ds.log;
        default_type application/json;
        echo '{"request_id":"r3","output":{"task_id":"0385dc79-5ff8-4d82-bcb6-caf3c5432a1e","task_status":"FAILED","code":"DataInspectionFailed","message":"no"}}';
    }

    location = /mock/ds/api/v1/tasks/ds-video-1 {
        access_log logs/ds.log;
        default_type application/json;
        echo '{"request_id":"r4","output":{"task_id":"ds-video-1","task_status":"SUCCEEDED","video_url":"https://x/y.mp4"},"usage":{"video_count":1}}';
    }
_EOC_
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";

# sora-2 on channel 1 ($0.10 a task, $0.05 a second, $0.20 a second at
# 1792x1024); channel 2 serves it too, at a higher priority
sub world {
    my (%o) = @_;
    AIRelayTest::seed_world(mock => $o{mock} // '/mock/ch1');
    AIRelayTest::seed_model('sora-2', channels => '1');
    AIRelayTest::seed_price('sora-2', request => 100_000, second => 50_000,
                            'second:1792x1024' => 200_000);
}

sub lines {
    my ($log) = @_;
    my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
    open my $fh, '<', "$root/logs/$log" or return 0;
    my @l = <$fh>;
    return scalar @l;
}

sub call {
    my ($method, $path, $body, $key) = @_;
    return http_request($method, $path,
                        ['Authorization: Bearer ' . ($key // $AIRelayTest::TEST_KEY),
                         'Content-Type: application/json'], $body);
}

run_tests();

__DATA__

=== TEST 1: a remix is a new task of the video's model, seconds and size, on the video's channel only
--- init
main::world();
AIRelayTest::seed_channel(2, base_url => AIRelayTest::mock_url('/mock/ch2'), priority => 10);
AIRelayTest::seed_model('sora-2', channels => '1,2');
AIRelayTest::redis('HSET', 'ar:{u1}:task:video_src1', channel => 1, model => 'sora-2',
                   cost => 2_500_000, charged => 2_500_000, seconds => 8, size => '1792x1024',
                   quality => 'high', api => 'video');
AIRelayTest::seed_price('sora-2', 'second:1792x1024:high' => 300_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/videos/video_src1/remix
{"prompt":"make it snow"}
--- more_headers eval: $::Key
--- response_body_like: "id":"video_rmx1".*"body":\{"prompt":"make it snow"\}
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{cost}, 100_000 + 8 * 300_000, 'a task and 8 seconds at 1792x1024 high, as the video');
is($r->{model}, 'sora-2', 'the video model');
is($r->{task}, 'video_rmx1', 'the new task');
is($r->{remix_of}, 'video_src1', 'remixed from the video');
is(user_field(1, 'balance'), 10_000_000 - 2_500_000, 'charged once');
ok(wait_for(sub { redis('HGET', 'ar:{u1}:task:video_rmx1', 'channel') }), 'the new task is kept');
is(redis('HGET', 'ar:{u1}:task:video_rmx1', 'channel'), 1, 'on the video channel');
is(redis('HGET', 'ar:{u1}:task:video_rmx1', 'remix_of'), 'video_src1', 'with its source');
is(redis('HGET', 'ar:{u1}:task:video_rmx1', 'seconds'), 8, 'and its seconds');
is(redis('HGET', 'ar:{u1}:task:video_rmx1', 'quality'), 'high', 'and its quality');
is(main::lines('ch2.log'), 0, 'the higher-priority channel got nothing');
is(main::lines('ch1.log'), 1, 'the video channel got the remix');
# the remix fails: refunded once, and the video stays paid for
my ($s, $h, $b) = main::call('GET', '/v1/videos/video_rmx1');
is($s, 200, 'poll of the remix served');
ok(wait_for(sub { user_field(1, 'balance') == 10_000_000 }), 'the failed remix refunded');
is(redis('HGET', 'ar:{u1}:task:video_src1', 'refunded'), undef, 'the video is not');



=== TEST 2: a remix of another user's video, of an unknown one, or naming a model: refused, nothing held or forwarded
--- init
main::world();
AIRelayTest::seed_user(2, balance => 1_000_000);
AIRelayTest::seed_key(2, $AIRelayTest::TEST_KEY2, id => 2);
AIRelayTest::redis('HSET', 'ar:{u1}:task:video_src1', channel => 1, model => 'sora-2', cost => 1, charged => 1, seconds => 8);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/videos/video_src1/remix
{"prompt":"mine now"}
--- more_headers eval: "Authorization: Bearer $AIRelayTest::TEST_KEY2"
--- error_code: 404
--- response_body
{"error":{"message":"Video with id 'video_src1' not found.","type":"invalid_request_error","param":null,"code":"not_found"}}
--- redis_check
my ($s, $h, $b) = main::call('POST', '/v1/videos/video_none/remix', '{"prompt":"x"}');
is($s, 404, 'an unknown video: 404');
($s, $h, $b) = main::call('POST', '/v1/videos/video_src1/remix', '{"prompt":"x","model":"sora-2"}');
is($s, 400, 'a model in the body: 400');
like($b, qr/"code":"unsupported_parameter"/, 'said why');
($s, $h, $b) = main::call('POST', '/v1/videos/video_src1/remix', '{"prompt":"x"}', 'sk-not-a-key-at-all-0000000000');
is($s, 401, 'an unknown key: 401, before the video is looked at');
is(main::lines('ch1.log'), 0, 'nothing reached the upstream');
is(user_field(2, 'balance'), 1_000_000, "the other user's balance unchanged");
is(user_field(1, 'balance'), 10_000_000, 'the owner unchanged');
is(redis('HLEN', 'ar:{u2}:res') // 0, 0, 'nothing held');



=== TEST 3: a remix whose channel no longer serves the model: 503, refunded at once
--- init
main::world();
AIRelayTest::redis('HSET', 'ar:{u1}:task:video_src1', channel => 7, model => 'sora-2', cost => 1, charged => 1, seconds => 4);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/videos/video_src1/remix
{"prompt":"x"}
--- more_headers eval: $::Key
--- error_code: 503
--- response_body_like: The channel of video 'video_src1' is not available
--- redis_check
ok(wait_for(sub { (redis('HLEN', 'ar:{u1}:res') // 0) == 0 }), 'nothing held');
ok(wait_for(sub { user_field(1, 'balance') == 10_000_000 }), 'balance whole');
is(main::lines('ch1.log'), 0, 'nothing forwarded');



=== TEST 4: the generic shape: duration and width x height priced, task_id kept, a failed poll refunded once
--- init
main::world(mock => '/mock/gen');
AIRelayTest::seed_model('kling-v2', channels => '1');
AIRelayTest::seed_price('kling-v2', request => 10_000, second => 30_000, 'second:1280x720' => 40_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/video/generations
{"model":"kling-v2","prompt":"a fox","duration":6,"width":1280,"height":720}
--- more_headers eval: $::Key
--- response_body_like: "task_id":"gen_task_1"
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{cost}, 10_000 + 6 * 40_000, 'a task and 6 seconds at 1280x720');
is($r->{task}, 'gen_task_1', 'the task id from task_id');
is($r->{task_api}, 'generation', 'of the generic API');
ok(wait_for(sub { redis('HGET', 'ar:{u1}:task:gen_task_1', 'api') }), 'kept');
is(redis('HGET', 'ar:{u1}:task:gen_task_1', 'api'), 'generation', 'with its API');
is(redis('HGET', 'ar:{u1}:task:gen_task_1', 'size'), '1280x720', 'and its size');
my ($s) = main::call('GET', '/v1/video/generations/gen_task_1', undef, $AIRelayTest::TEST_KEY2);
is($s, 401, 'an unknown key: 401');
($s) = main::call('GET', '/v1/video/generations/gen_task_2');
is($s, 404, 'an unknown task: 404');
my $b;
($s, undef, $b) = main::call('GET', '/v1/video/generations/gen_task_1');
is($s, 200, 'poll served');
ok(wait_for(sub { user_field(1, 'balance') == 10_000_000 }), 'refunded');
main::call('GET', '/v1/video/generations/gen_task_1');
sleep 0.3;
is(user_field(1, 'balance'), 10_000_000, 'once');
is(redis('HGET', 'ar:{u1}:task:gen_task_1', 'status'), 'failed', 'the status kept');
is(main::lines('gen.log'), 3, 'the submit and two polls reached the upstream');



=== TEST 5: the generic shape: n other than 1 refused, no duration priced as 5 seconds
--- init
main::world(mock => '/mock/gen');
AIRelayTest::seed_model('kling-v2', channels => '1');
AIRelayTest::seed_price('kling-v2', request => 10_000, second => 30_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/video/generations
{"model":"kling-v2","prompt":"a fox","n":2}
--- more_headers eval: $::Key
--- error_code: 400
--- response_body_like: "n\\" must be 1
--- redis_check
is(main::lines('gen.log'), 0, 'nothing forwarded');
is(user_field(1, 'balance'), 10_000_000, 'nothing charged');
my ($s) = main::call('POST', '/v1/video/generations', '{"model":"kling-v2","prompt":"a fox","duration":"7.5"}');
is($s, 200, 'a duration in a string, with a fraction');
ok(wait_for(sub { records(1) == 1 }), 'recorded');
is(last_record(1)->{cost}, 10_000 + 8 * 30_000, 'rounded up to 8 seconds');
($s) = main::call('POST', '/v1/video/generations', '{"model":"kling-v2","prompt":"a fox"}');
is($s, 200, 'no duration');
ok(wait_for(sub { records(1) == 2 }), 'recorded');
is(last_record(1)->{cost}, 10_000 + 5 * 30_000, 'priced as 5 seconds');
($s) = main::call('POST', '/v1/video/generations', '{"model":"kling-v2","prompt":"a fox","duration":99999999999}');
is($s, 400, 'a duration past 3600 seconds: 400, not a default');



=== TEST 6: DashScope async images: per image of parameters.n at its size, the task kept, a FAILED poll refunded once
--- init
main::world(mock => '/mock/ds');
AIRelayTest::seed_model('wanx2.1-t2i-turbo', channels => '1');
AIRelayTest::seed_price('wanx2.1-t2i-turbo', request => 1_000, image => 20_000, 'image:1024x1024:*' => 30_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /api/v1/services/aigc/text2image/image-synthesis
{"model":"wanx2.1-t2i-turbo","input":{"prompt":"a cat"},"parameters":{"size":"1024*1024","n":2}}
--- more_headers eval: $::Key . "\nX-DashScope-Async: enable"
--- response_body_like: "task_status":"PENDING"
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
my $r = last_record(1);
is($r->{cost}, 1_000 + 2 * 30_000, 'a task and 2 images at 1024x1024');
is($r->{task}, '0385dc79-5ff8-4d82-bcb6-caf3c5432a1e', 'the task id from output.task_id');
is($r->{task_api}, 'dashscope', 'of DashScope');
ok(wait_for(sub { redis('HGET', 'ar:{u1}:task:0385dc79-5ff8-4d82-bcb6-caf3c5432a1e', 'channel') }), 'kept');
my ($s) = main::call('GET', '/api/v1/tasks/0385dc79-5ff8-4d82-bcb6-caf3c5432a1e');
is($s, 200, 'poll served');
ok(wait_for(sub { user_field(1, 'balance') == 10_000_000 }), 'FAILED refunded');
is(redis('HGET', 'ar:{u1}:task:0385dc79-5ff8-4d82-bcb6-caf3c5432a1e', 'status'), 'failed', 'in our words');
main::call('GET', '/api/v1/tasks/0385dc79-5ff8-4d82-bcb6-caf3c5432a1e');
sleep 0.3;
is(user_field(1, 'balance'), 10_000_000, 'once');
($s) = main::call('POST', '/api/v1/services/aigc/text2image/image-synthesis', '{"model":"wanx2.1-t2i-turbo","input":{"prompt":"a cat"}}');
is($s, 200, 'no n');
ok(wait_for(sub { records(1) == 3 }), 'recorded');
is(last_record(1)->{cost}, 1_000 + 4 * 20_000, "DashScope's default of 4 images at the plain price");



=== TEST 7: DashScope video: parameters.duration priced, SUCCEEDED is completed and refunds nothing
--- init
main::world(mock => '/mock/ds');
AIRelayTest::seed_model('wan2.2-t2v-plus', channels => '1');
AIRelayTest::seed_price('wan2.2-t2v-plus', request => 0, second => 100_000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /api/v1/services/aigc/video-generation/video-synthesis
{"model":"wan2.2-t2v-plus","input":{"prompt":"a cat"},"parameters":{"size":"1920*1080"}}
--- more_headers eval: $::Key . "\nX-DashScope-Async: enable"
--- response_body_like: "task_id":"ds-video-1"
--- redis_check
ok(wait_for(sub { records(1) == 1 }), 'one record');
is(last_record(1)->{cost}, 5 * 100_000, "DashScope's default 5 seconds");
ok(wait_for(sub { redis('HGET', 'ar:{u1}:task:ds-video-1', 'channel') }), 'kept');
is(redis('HGET', 'ar:{u1}:task:ds-video-1', 'size'), '1920x1080', 'its size as priced');
my ($s) = main::call('GET', '/api/v1/tasks/ds-video-1');
is($s, 200, 'poll served');
ok(wait_for(sub { (redis('HGET', 'ar:{u1}:task:ds-video-1', 'status') // '') eq 'completed' }), 'completed');
is(user_field(1, 'balance'), 10_000_000 - 500_000, 'still paid for');
is(redis('ZSCORE', 'ar:{u1}:tasks:open', 'ds-video-1'), undef, 'no longer unfinished');
