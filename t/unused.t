# Loaded but not configured, the module costs nothing and changes nothing.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(2);
plan tests => repeat_each() * 7;
no_shuffle();

run_tests();

__DATA__

=== TEST 1: no ai_relay anywhere: requests pass untouched, no Redis link
--- config
    location /plain {
        echo_read_request_body;
        echo "auth=$http_authorization";
        echo_request_body;
    }
--- request
POST /plain
{"model":"gpt-4o-mini"}
--- more_headers
Authorization: Bearer sk-test-untouched
--- response_body chomp
auth=Bearer sk-test-untouched
{"model":"gpt-4o-mini"}
--- no_error_log
ai relay
[error]



=== TEST 2: ai_relay off in one location leaves that location alone
--- http_config eval: AIRelayTest::http_config()
--- config
    location /v1/ { ai_relay openai; proxy_pass $ai_relay_upstream_url; }
    location /other/ {
        ai_relay off;
        return 404;
    }
--- request
GET /other/x
--- error_code: 404
--- response_body_like: <html>
--- no_error_log
[error]
