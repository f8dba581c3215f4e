# Keys out of every log nginx writes for a relay server: the channel's key
# reaches the proxied request only (not $http_authorization, not a mirror),
# and a client key in ?key= is masked in the request line, also when nginx
# rejects the request before the relay runs (413, 400).  error.log at
# "notice", as in conf.example (at info and debug, nginx's own lines of
# requests it rejects while reading them carry the raw request).

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(2);
plan tests => repeat_each() * 18;

log_level('notice');
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config(extra => <<'_EOC_');
    log_format keys '$request|$http_authorization|$http_x_api_key|$http_x_goog_api_key';
_EOC_
our $Config = relay_config(extra => <<'_EOC_');
    access_log logs/keys.log keys;

    location /mirrored/v1/ {
        ai_relay openai;
        mirror /mirror;
        proxy_pass $ai_relay_upstream_url;
    }

    location = /mirror {
        internal;
        proxy_pass http://127.0.0.1:$server_port/mock/sink;
    }

    location /mock/sink {
        access_log logs/sink.log keys;
        return 204;
    }

    location /small/v1beta/ {
        ai_relay gemini;
        client_max_body_size 1k;
        proxy_pass $ai_relay_upstream_url;
    }
_EOC_

# every line nginx wrote in its logs folder, as one string, but for the
# mock provider's own access log lines (it is the upstream: it gets the
# channel's key)
sub all_logs {
    my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
    my $all = '';
    for my $f (glob("$root/logs/*")) {
        open my $fh, '<', $f or next;
        $all .= join '', grep { !m{^POST /mock/echo/} } <$fh>;
    }
    return $all;
}

run_tests();

__DATA__

=== TEST 1: the channel's key goes to the upstream, and nowhere else: not $http_authorization, not a mirror
--- init
AIRelayTest::seed_world(mock => '/mock/echo', upstream_keys => ['sk-upstream-SECRET-0000000000001']);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /mirrored/v1/chat/completions
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: "Authorization: Bearer $AIRelayTest::TEST_KEY"
--- response_body_like: Authorization: Bearer sk-upstream-SECRET-0000000000001
--- redis_check
my $root = $ENV{TEST_NGINX_SERVROOT} || "$AIRelayTest::TOP/t/servroot";
ok(wait_for(sub { -s "$root/logs/sink.log" }), 'the mirror was served');
my $logs = main::all_logs();
unlike($logs, qr/sk-upstream-SECRET/, 'the upstream key is in no log, mirror included');
unlike($logs, qr/\Q$AIRelayTest::TEST_KEY\E/, 'nor the client key');



=== TEST 2: ?key= of a body nginx refuses by its Content-Length (413): masked in every log
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request eval
"POST /small/v1beta/models/gemini-pro:generateContent?alt=sse&key=AIzaSECRET0000000000000000000000002\n" . ('x' x 4096)
--- error_code: 413
--- response_body_like: "code":413
--- redis_check
my $logs = main::all_logs();
unlike($logs, qr/AIzaSECRET0000000000000000000000002/, 'the key is in no log');
like($logs, qr/key=AIzaS\*+0002/, 'its masked form is');
like($logs, qr/client intended to send too large body/, 'nginx logged the refusal');
ok(scalar(() = $logs =~ /key=AIzaS\*+0002/g) >= 2, 'in the error log and the access logs');



=== TEST 3: ?key= of a request nginx refuses while reading it (a path above the root): masked in the access logs
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- raw_request eval
"GET /../v1beta/models?key=AIzaSECRET0000000000000000000000003 HTTP/1.0\r\n\r\n"
--- error_code: 400
--- ignore_response_body
--- redis_check
my $logs = main::all_logs();
unlike($logs, qr/AIzaSECRET0000000000000000000000003/, 'the key is in no log');
like($logs, qr/key=AIzaS\*+0003/, 'its masked form is');



=== TEST 4: ?key= of a relayed Gemini request: masked in the request line and in $request
--- init
AIRelayTest::seed_world();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /v1beta/models?key=sk-test0000000000000000000000000000000000000000001
--- response_body_like: gpt-4o-mini
--- redis_check
my $logs = main::all_logs();
unlike($logs, qr/\Q$AIRelayTest::TEST_KEY\E/, 'the client key is in no log');
like($logs, qr/key=sk-te\*+0001/, 'its masked form is');
