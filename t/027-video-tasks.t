# Video tasks end: every poll that sees a new status records it in the
# task's history (REFUND); a task that ends leaves the index of unfinished
# ones; a client's DELETE /v1/videos/{id} goes to the task's channel for
# the task's own user only, and refunds a task the relay never saw
# completed (a poll said so, or a download was served), once;
# `ai-relay tasks reconcile` and a client's poll both seeing a failure
# refund once.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 82;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();
our $Config = relay_config(extra => <<'_EOC_');
    # submit: accepted, queued
    location ~ ^/mock/[a-z]+/v1/videos$ {
        access_log logs/spy.log;
        echo_read_request_body;
        default_type application/json;
        echo '{"id":"video_t1","object":"video","model":"sora-2","status":"queued","progress":0,"seconds":"4"}';
    }

    location ~ ^/mock/queued/v1/videos/(video_\w+)$ {
        access_log logs/spy.log;
        default_type application/json;
        return 200 '{"id":"$1","object":"video","status":"queued","progress":0,"expires_at":null}';
    }

    location ~ ^/mock/running/v1/videos/(video_\w+)$ {
        access_log logs/spy.log;
        default_type application/json;
        return 200 '{"id":"$1","object":"video","status":"in_progress","progress":40}';
    }

    location ~ ^/mock/done/v1/videos/(video_\w+)/content$ {
        access_log logs/spy.log;
        default_type video/mp4;
        return 200 'MP4-BYTES';
    }

    # GET: the task completed; DELETE: deleted, as OpenAI answers it
    location ~ ^/mock/done/v1/videos/(video_\w+)$ {
        access_log logs/spy.log;
        default_type application/json;
        if ($request_method = DELETE) {
            return 200 '{"id":"$1","object":"video.deleted","deleted":true}';
        }
        return 200 '{"id":"$1","object":"video","status":"completed","progress":100}';
    }

    location ~ ^/mock/failed/v1/videos/(video_\w+)$ {
        access_log logs/spy.log;
        default_type application/json;
        return 200 '{"id":"$1","object":"video","status":"failed","error":{"code":"internal_error","message":"x"}}';
    }

    location ~ ^/mock/cancelled/v1/videos/(video_\w+)$ {
        access_log logs/spy.log;
        default_type application/json;
        return 200 '{"id":"$1","object":"video","status":"cancelled"}';
    }

    # an upstream that cancels an unfinished task on DELETE
    location ~ ^/mock/cancel/v1/videos/(video_\w+)$ {
        access_log logs/spy.log;
        default_type application/json;
        if ($request_method = DELETE) {
            return 200 '{"id":"$1","object":"video.deleted","deleted":true}';
        }
        return 200 '{"id":"$1","object":"video","status":"in_progress"}';
    }

    # a DELETE the upstream refuses (OpenAI: not for unfinished videos)
    location ~ ^/mock/refuse/v1/videos/(video_\w+)$ {
        access_log logs/spy.log;
        default_type application/json;
        return 400 '{"error":{"message":"Video is not finished","type":"invalid_request_error","param":null,"code":null}}';
    }
_EOC_
our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";

# model sora-2 on channel 1: $0.10 a task and $0.05 a second; the key has
# a quota of $5
sub world {
    my (%o) = @_;
    AIRelayTest::seed_world(mock => $o{mock}, key => { quota => 5_000_000 });
    AIRelayTest::seed_model('sora-2', channels => '1');
    AIRelayTest::seed_price('sora-2', request => 100_000, second => 50_000);
}

# the channel's upstream from now on
sub upstream {
    my ($mock) = @_;
    AIRelayTest::redis('HSET', 'ar:{cfg}:channel:1',
                       base_url => AIRelayTest::mock_url($mock));
    AIRelayTest::redis('INCR', 'ar:{cfg}:version');
}

sub spy {
    my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
    open my $fh, '<', "$root/logs/spy.log" or return ();
    return map { m{"(\w+ \S+)} ? $1 : () } <$fh>;
}

sub req {
    my ($method, $path, $key) = @_;
    return http_request($method, $path,
                        ['Authorization: Bearer ' . ($key // $AIRelayTest::TEST_KEY)]);
}

sub task { return AIRelayTest::redis('HGET', 'ar:{u1}:task:video_t1', $_[0]) }

sub open_tasks { return AIRelayTest::redis('ZRANGE', 'ar:{u1}:tasks:open', 0, -1) }

sub day {
    my @t = gmtime;
    return sprintf('%04d%02d%02d', $t[5] + 1900, $t[4] + 1, $t[3]);
}

# the submit of video_t1 (4 seconds: $0.30), charged and kept
sub submitted {
    ok(wait_for(sub { records(1) == 1 && main::task('channel') }), 'submit charged, task kept');
    is(user_field(1, 'balance'), 10_000_000 - 300_000, 'balance charged');
}

run_tests();

__DATA__

=== TEST 1: each new status a poll sees is recorded once, with its time; completed ends the task, refunds nothing
--- init
main::world(mock => '/mock/queued');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/videos
{"model":"sora-2","prompt":"a cat","seconds":"4"}
--- more_headers eval: $::Key
--- response_body_like: "id":"video_t1"
--- redis_check
main::submitted();
is_deeply(main::open_tasks(), ['video_t1'], 'unfinished: in the index');
my ($s) = main::req('GET', '/v1/videos/video_t1');
is($s, 200, 'queued');
ok(wait_for(sub { (main::task('status') // '') eq 'queued' }), 'status recorded');
like(main::task('history'), qr/^\d{10}:queued$/, 'history: one entry, with its time');
main::req('GET', '/v1/videos/video_t1');
main::upstream('/mock/running');
main::req('GET', '/v1/videos/video_t1');
main::req('GET', '/v1/videos/video_t1');
ok(wait_for(sub { (main::task('status') // '') eq 'in_progress' }), 'in_progress recorded');
main::upstream('/mock/done');
main::req('GET', '/v1/videos/video_t1');
ok(wait_for(sub { (main::task('status') // '') eq 'completed' }), 'completed recorded');
like(main::task('history'), qr/^\d+:queued \d+:in_progress \d+:completed$/,
     'history: each change once, in order');
ok(main::task('completed') > 0, 'when it was seen completed');
is_deeply(main::open_tasks(), [], 'ended: out of the index');
is(user_field(1, 'balance'), 10_000_000 - 300_000, 'nothing refunded');
is(scalar(records(1)), 1, 'no refund record');
my $show = cli('tasks', 'show', '--user', '1', 'video_t1');
like($show, qr/^state:\s+completed$/m, 'ai-relay tasks show: the state');
like($show, qr/^history:\n\s+\S.*\s+queued\n\s+\S.*\s+in_progress\n\s+\S.*\s+completed\n/m,
     'and the history');



=== TEST 2: DELETE of a task not seen completed: forwarded to its channel, refunded once
--- init
main::world(mock => '/mock/cancel');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/videos
{"model":"sora-2","prompt":"a cat","seconds":"4"}
--- more_headers eval: $::Key
--- response_body_like: "id":"video_t1"
--- redis_check
main::submitted();
my ($s, $h, $b) = main::req('GET', '/v1/videos/video_t1');
ok(wait_for(sub { (main::task('status') // '') eq 'in_progress' }), 'in progress');
($s, $h, $b) = main::req('DELETE', '/v1/videos/video_t1');
is($s, 200, 'delete served');
like($b, qr/"deleted":true/, "the upstream's answer");
ok(wait_for(sub { user_field(1, 'balance') == 10_000_000 }), 'refunded');
is(key_field(1, $AIRelayTest::TEST_KEY, 'quota'), 5_000_000, "the key's quota back");
is(user_field(1, 'used'), 0, 'used back to zero');
my %st = @{ redis('HGETALL', 'ar:{u1}:stats:' . main::day()) };
is($st{cost}, 0, 'the day counts no cost');
is($st{'model:sora-2:cost'}, 0, 'nor the model');
is($st{'key:1:cost'}, 0, 'nor the key');
($s) = main::req('DELETE', '/v1/videos/video_t1');
is($s, 200, 'deleted again');
sleep 0.3;
is(user_field(1, 'balance'), 10_000_000, 'refunded once, not twice');
my @recs = records(1);
is(scalar(@recs), 2, 'the submit and one refund recorded');
is($recs[-1]{cost}, -300_000, 'the refund record');
is($recs[-1]{task_status}, 'deleted', 'says why');
is(main::task('status'), 'deleted', 'the task says deleted');
is(main::task('refunded'), 1, 'and refunded');
is_deeply(main::open_tasks(), [], 'out of the index');
is_deeply([ grep { /DELETE/ } main::spy() ],
          [ 'DELETE /mock/cancel/v1/videos/video_t1', 'DELETE /mock/cancel/v1/videos/video_t1' ],
          "the deletes went to the task's channel");



=== TEST 3: a video that was downloaded and then deleted is not refunded
--- init
main::world(mock => '/mock/done');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/videos
{"model":"sora-2","prompt":"a cat","seconds":"4"}
--- more_headers eval: $::Key
--- response_body_like: "id":"video_t1"
--- redis_check
main::submitted();
my ($s, $h, $b) = main::req('GET', '/v1/videos/video_t1/content');
is($b, 'MP4-BYTES', 'downloaded, without a poll');
ok(wait_for(sub { (main::task('status') // '') eq 'completed' }), 'the download says completed');
($s) = main::req('DELETE', '/v1/videos/video_t1');
is($s, 200, 'delete served');
ok(wait_for(sub { (main::task('status') // '') eq 'deleted' }), 'deleted recorded');
is(user_field(1, 'balance'), 10_000_000 - 300_000, 'nothing refunded');
is(key_field(1, $AIRelayTest::TEST_KEY, 'quota'), 5_000_000 - 300_000, 'quota as charged');
is(scalar(records(1)), 1, 'no refund record');
is(main::task('refunded'), undef, 'not refunded');



=== TEST 4: another user's key cannot delete the task: 404, nothing forwarded; a refused delete changes nothing
--- init
main::world(mock => '/mock/refuse');
AIRelayTest::seed_user(2, balance => 1_000_000);
AIRelayTest::seed_key(2, $AIRelayTest::TEST_KEY2, id => 2);
AIRelayTest::redis('HSET', 'ar:{u1}:task:video_t1', channel => 1, model => 'sora-2',
                   key => AIRelayTest::key_hash($AIRelayTest::TEST_KEY), key_id => 1,
                   cost => 300_000, charged => 300_000, created => 1764900000);
AIRelayTest::redis('ZADD', 'ar:{u1}:tasks:open', 1764900000, 'video_t1');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
DELETE /v1/videos/video_t1
--- more_headers eval: "Authorization: Bearer $AIRelayTest::TEST_KEY2"
--- error_code: 404
--- response_body
{"error":{"message":"Video with id 'video_t1' not found.","type":"invalid_request_error","param":null,"code":"not_found"}}
--- redis_check
is(scalar(main::spy()), 0, 'nothing reached the upstream');
my ($s, $h, $b) = main::req('DELETE', '/v1/videos/video_t1');
is($s, 400, "the owner's delete, refused upstream");
like($b, qr/Video is not finished/, "the upstream's error");
sleep 0.3;
is(user_field(1, 'balance'), 10_000_000, 'nothing refunded');
is(scalar(records(1)), 0, 'nothing recorded');
is(main::task('status'), undef, 'no status');
is_deeply(main::open_tasks(), ['video_t1'], 'still unfinished');
($s) = main::req('DELETE', '/v1/videos/video_t1/content');
is($s, 405, 'no DELETE of the content');



=== TEST 5: reconcile refunds a failed task first; the client's poll that sees it failed after refunds nothing
--- init
main::world(mock => '/mock/failed');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/videos
{"model":"sora-2","prompt":"a cat","seconds":"4"}
--- more_headers eval: $::Key
--- response_body_like: "id":"video_t1"
--- redis_check
main::submitted();
my $out = cli('tasks', 'reconcile');
like($out, qr/^1\s+video_t1\s+1\s+200\s+failed\s+refunded \$0\.30 \(failed\)$/m, 'reconcile refunded it');
is(user_field(1, 'balance'), 10_000_000, 'refunded');
my ($s, $h, $b) = main::req('GET', '/v1/videos/video_t1');
like($b, qr/"status":"failed"/, 'the client sees it failed');
sleep 0.3;
is(user_field(1, 'balance'), 10_000_000, 'refunded once');
my @recs = records(1);
is(scalar(@recs), 2, 'one refund record');
is($recs[-1]{request_id}, 'reconcile-' . int($recs[-1]{time} / 1000), 'by reconcile');
is_deeply(main::open_tasks(), [], 'out of the index');



=== TEST 6: a poll that finds the task cancelled upstream refunds it once
--- init
main::world(mock => '/mock/cancelled');
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/videos
{"model":"sora-2","prompt":"a cat","seconds":"4"}
--- more_headers eval: $::Key
--- response_body_like: "id":"video_t1"
--- redis_check
main::submitted();
main::req('GET', '/v1/videos/video_t1');
ok(wait_for(sub { user_field(1, 'balance') == 10_000_000 }), 'refunded');
main::req('GET', '/v1/videos/video_t1');
sleep 0.3;
is(user_field(1, 'balance'), 10_000_000, 'once');
is(main::task('status'), 'cancelled', 'the task says cancelled');
is(last_record(1)->{task_status}, 'cancelled', 'the refund record says why');
is(scalar(records(1)), 2, 'one refund record');
is_deeply(main::open_tasks(), [], 'out of the index');
