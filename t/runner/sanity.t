# Self-tests for t/lib/Test/Nginx/Socket.pm using only stock nginx features.
# Must also pass under the real Test::Nginx.

use Test::Nginx::Socket;

repeat_each(2);

plan tests => repeat_each() * 71;

$ENV{TEST_NGINX_RUNNER_GREETING} ||= 'hello';

our $HttpConfig = <<'_EOC_';
    map $uri $runner_mapped {
        default  "mapped";
    }
_EOC_

no_shuffle();
no_long_string();
run_tests();

__DATA__

=== TEST 1: return with a plain response_body
--- config
    location = /t {
        return 200 "ok\n";
    }
--- request
GET /t
--- response_body
ok
--- no_error_log
[error]



=== TEST 2: inline sections, error_code, response_headers
--- config
    location = /t {
        add_header X-Foo bar always;
        return 404 "missing\n";
    }
--- request
    GET /t
--- error_code: 404
--- response_headers
X-Foo: bar
Content-Type: text/plain
!X-Bar
--- response_body_like: ^missing$



=== TEST 3: error_code_like, response_headers_like, raw headers
--- config
    location = /t {
        add_header X-Num 12345;
        return 302 /elsewhere;
    }
--- request
GET /t
--- error_code_like: ^30[12]$
--- response_headers_like
X-Num: \d+
Location: http://localhost:\d+/elsewhere
--- raw_response_headers_like: ^HTTP/1\.1 302 Moved Temporarily\r\n
--- raw_response_headers_unlike: X-Missing



=== TEST 4: more_headers reach nginx, Host default
--- config
    location = /t {
        return 200 "foo=$http_x_foo host=$host conn=$http_connection\n";
    }
--- request
GET /t
--- more_headers
X-Foo: some value
# a comment line
--- response_body
foo=some value host=localhost conn=close



=== TEST 5: more_headers can override Host and Connection
--- config
    location = /t {
        return 200 "host=$host conn=$http_connection\n";
    }
--- request
GET /t
--- more_headers
Host: example.com
Connection: close
--- response_body
host=example.com conn=close



=== TEST 6: POST body gets a Content-Length (trimmed) and reaches upstream
--- config
    location = /t {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/back;
    }
    location = /back {
        return 200 "len=$http_content_length method=$request_method\n";
    }
--- request
POST /t
hello world
--- response_body
len=11 method=POST



=== TEST 7: response_body eval string, $TEST_NGINX_ variables in config and body
--- config
    location = /t {
        return 200 "$TEST_NGINX_RUNNER_GREETING\r\n\tport=$server_port";
    }
--- request
GET /t
--- response_body eval
"$ENV{TEST_NGINX_RUNNER_GREETING}\r\n\tport=$ENV{TEST_NGINX_SERVER_PORT}"



=== TEST 8: response_body eval qr, chomp filter
--- config
    location = /t {
        return 200 "abc 123\n";
    }
--- request
GET /t
--- response_body eval
qr/^abc \d+$/m



=== TEST 9: response_body_unlike, $TEST_NGINX_SERVER_PORT in the expected body
--- config
    location = /t {
        return 200 "port $server_port\n";
    }
--- request
GET /t
--- response_body_unlike: error
--- response_headers
Content-Length: 10



=== TEST 10: http_config with a Perl variable from the prologue
--- http_config eval: $::HttpConfig
--- config
    location = /t {
        return 200 "$runner_mapped\n";
    }
--- request
GET /t
--- response_body
mapped



=== TEST 11: several requests in one block (arrays everywhere)
--- config
    location = /a {
        return 200 "A\n";
    }
    location = /b {
        return 403;
    }
--- request eval
["GET /a", "GET /b"]
--- error_code eval
[200, 403]
--- response_body_like eval
["^A\n\\z", "403 Forbidden"]
--- no_error_log
[error]



=== TEST 12: raw_request, string and packets
--- config
    location = /t {
        return 200 "raw $request_method\n";
    }
--- raw_request eval
["GET /t HTTP/1.0\r\n", "Host: localhost\r\n\r\n"]
--- response_body
raw GET



=== TEST 13: HEAD has no body
--- config
    location = /t {
        return 200 "some body\n";
    }
--- request
HEAD /t
--- response_body
--- response_headers
Content-Length: 10



=== TEST 14: 304 has no body
--- config
    location = /t {
        return 304;
    }
--- request
GET /t
--- error_code: 304
--- response_body



=== TEST 15: error_log and no_error_log, literal lines
--- config
    location = /t {
        return 404;
    }
--- request
GET /t/nothing-here
--- error_code: 404
--- error_log
open() "
No such file or directory
--- no_error_log
[alert]
[crit]



=== TEST 16: error_log eval with qr and arrays
--- config
    location = /t {
        return 404;
    }
--- request
GET /no/such/file.txt
--- error_code: 404
--- error_log eval
[qr/open\(\) ".*?file\.txt" failed/, "(2: No such file"]
--- no_error_log eval
qr/\[(?:alert|emerg)\]/



=== TEST 17: grep_error_log
--- config
    location = /t {
        return 404;
    }
--- request
GET /a-b-c.txt
--- error_code: 404
--- grep_error_log eval: qr/a-b-c\.txt" failed/
--- grep_error_log_out
a-b-c.txt" failed



=== TEST 18: log_level section, wait
--- log_level: warn
--- config
    location = /t {
        return 200 "ok\n";
    }
--- request
GET /t
--- wait: 0.05
--- response_body
ok
--- no_error_log
[debug]
[info]



=== TEST 19: TEST_NGINX_RAND_PORT_N is a free port, the same within a block
--- config
    location = /t {
        add_header X-Port $TEST_NGINX_RAND_PORT_1 always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
    }
--- request
GET /t
--- error_code: 502
--- response_headers_like
X-Port: \d+
--- error_log eval
qr/connect\(\) failed \(111: Connection refused\) while connecting to upstream, .*?upstream: "http:\/\/127\.0\.0\.1:\d+\/"/



=== TEST 20: user_files, main_config, post_main_config
--- main_config
    worker_rlimit_nofile 1024;
--- post_main_config
    pcre_jit off;
--- user_files
>>> sub/hello.txt
Hello, file!
--- config
    location /sub/ {
        root html;
    }
--- request
GET /sub/hello.txt
--- response_body
Hello, file!



=== TEST 21: the root location serves index.html
--- config
--- request
GET /
--- response_body chomp
<html><head><title>It works!</title></head><body>It works!</body></html>



=== TEST 22: a block without config reuses the previous nginx
--- request
GET /index.html
--- response_body_like: It works!



=== TEST 23: a skipped block is not run (it would fail)
--- SKIP
--- config
    location = /t {
        return 500;
    }
--- request
GET /t
--- response_body
never



=== TEST 24: must_die with an invalid directive
--- config
    location = /t {
        return a b c;
    }
--- must_die
--- error_log
invalid number of arguments in "return" directive



=== TEST 25: must_die with the exit code
--- config
    location = /t {
        runner_no_such_directive on;
    }
--- must_die: 1
--- error_log eval
qr/\[emerg\] .*unknown directive "runner_no_such_directive"/



=== TEST 26: nginx runs again after must_die blocks
--- config
    location = /t {
        return 200 "back\n";
    }
--- request
GET /t
--- response_body
back
