# Evidence for support: every answer of a relay location carries the
# record's id in x-request-id (errors included); the record names the
# path, host, client, channel and tries; the access log's $ai_relay_error
# and $ai_relay_status agree with the record, for upstream errors passed
# through and for clients that left.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(2);
plan tests => repeat_each() * 40;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config(extra => <<'_EOC_');
    log_format evidence escape=json '$request_id|$sent_http_x_request_id|'
                        '$ai_relay_status|$ai_relay_tries|'
                        '$ai_relay_channel|$ai_relay_channel_name|'
                        '$ai_relay_error';
_EOC_

sub config {
    my ($log, $relay) = @_;
    return relay_config(relay => $relay // '', extra => <<"_EOC_");
    access_log logs/$log evidence;

    # an upstream error, with the provider's own request id
    location /mock/bad/ {
        default_type application/json;
        add_header x-request-id req_upstream_1 always;
        return 400 '{"error":{"message":"Invalid value for max_tokens","type":"invalid_request_error","param":"max_tokens","code":null}}';
    }

    # answers after a second
    location /mock/late/ {
        echo_read_request_body;
        echo_sleep 1;
        default_type application/json;
        echo '{"id":"c","object":"chat.completion","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}';
    }
_EOC_
}

our $Key = "Authorization: Bearer $AIRelayTest::TEST_KEY";

# the last line of logs/NAME once it has $n lines: its fields
sub log_fields {
    my ($name, $n) = @_;
    my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
    my @lines;
    wait_for(sub {
        open my $fh, '<', "$root/logs/$name" or return 0;
        @lines = <$fh>;
        return @lines >= $n;
    });
    return () unless @lines;
    chomp(my $last = $lines[-1]);
    return split /\|/, $last, -1;
}

run_tests();

__DATA__

=== TEST 1: an answer: x-request-id is the record's id; the record names path, host, client, channel and tries
--- init
AIRelayTest::seed_world(channel => { name => 'Main OpenAI' });
--- http_config eval: $::HttpConfig
--- config eval: main::config('ok.log')
--- request
POST /v1/chat/completions?trace=1
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::Key
--- response_headers_like
x-request-id: [0-9a-f]{32}
--- response_body_like: "Hi there"
--- redis_check
our $n1 = ($main::n1 // 0) + 1; $main::n1 = $n1;
ok(wait_for(sub { records(1) == $n1 }), 'settled');
my $r = last_record(1);
my @log = main::log_fields('ok.log', $n1);
is($log[1], $r->{request_id}, 'x-request-id sent is the record id');
is($log[0], $r->{request_id}, '$request_id is the record id');
is($r->{path}, '/v1/chat/completions', 'path, without the query');
is($r->{host}, 'localhost', 'host the client used');
is($r->{client}, '127.0.0.1', 'client address');
is($r->{channel_name}, 'Main OpenAI', 'channel name');
is($r->{tries}, 1, 'one try');
is($r->{images}, 0, 'no images');
is("$log[2]|$log[3]|$log[4]|$log[5]", "200|1|1|Main OpenAI", 'status, tries, channel in the log');



=== TEST 2: the upstream's error passed through: the record's error is $ai_relay_error; the upstream's id is kept aside
--- init
AIRelayTest::seed_world(mock => '/mock/bad');
--- http_config eval: $::HttpConfig
--- config eval: main::config('bad.log')
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::Key
--- error_code: 400
--- response_headers_like
x-request-id: [0-9a-f]{32}
x-upstream-request-id: req_upstream_1
--- response_body_like: Invalid value for max_tokens
--- redis_check
our $n2 = ($main::n2 // 0) + 1; $main::n2 = $n2;
ok(wait_for(sub { records(1) == $n2 }), 'settled');
my $r = last_record(1);
my @log = main::log_fields('bad.log', $n2);
is($r->{status}, 400, 'record status');
like($r->{error}, qr/Invalid value for max_tokens/, 'record error is the upstream\'s');
is($log[6], $r->{error}, '$ai_relay_error is the record\'s error');
is($log[2], 400, '$ai_relay_status');
is($log[1], $r->{request_id}, 'x-request-id is the record id');



=== TEST 3: an error of the relay's own (unknown key): x-request-id too, no record
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: main::config('own.log')
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[]}
--- more_headers
Authorization: Bearer sk-wrong-key-0123456789abcdefghij
--- error_code: 401
--- response_headers_like
x-request-id: [0-9a-f]{32}
--- response_body_like: "invalid_api_key"|Incorrect API key
--- redis_check
our $n3 = ($main::n3 // 0) + 1; $main::n3 = $n3;
my @log = main::log_fields('own.log', $n3);
is($log[1], $log[0], 'x-request-id is $request_id');
is(scalar(records(1)), 0, 'no record');



=== TEST 4: nginx's own error (body too large), said in JSON: x-request-id too
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: main::config('big.log', 'client_max_body_size 64;')
--- request eval
"POST /v1/chat/completions\n" . '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"' . ('x' x 200) . '"}]}'
--- more_headers eval: $::Key
--- error_code: 413
--- response_headers_like
x-request-id: [0-9a-f]{32}
--- response_body_like: request_too_large
--- redis_check
our $n4 = ($main::n4 // 0) + 1; $main::n4 = $n4;
my @log = main::log_fields('big.log', $n4);
is($log[1], $log[0], 'x-request-id is $request_id');
is(scalar(records(1)), 0, 'nothing billed');



=== TEST 5: the client leaves before the answer: 499 in the record, in $ai_relay_status and $ai_relay_error
--- init
AIRelayTest::seed_world(mock => '/mock/late');
--- http_config eval: $::HttpConfig
--- config eval: main::config('gone.log')
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::Key
--- timeout: 0.3
--- abort
--- ignore_response
--- redis_check
our $n5 = ($main::n5 // 0) + 1; $main::n5 = $n5;
ok(wait_for(sub { records(1) == $n5 }, 5), 'settled');
my $r = last_record(1);
my @log = main::log_fields('gone.log', $n5);
is($r->{status}, 499, 'record: 499');
is($r->{error}, 'the client closed the connection before the answer', 'record: why');
is($log[2], 499, '$ai_relay_status 499');
is($log[6], $r->{error}, '$ai_relay_error agrees');
is($r->{cost}, 0, 'nothing answered, nothing billed');
is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');
