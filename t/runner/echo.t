# Self-tests for t/lib/Test/Nginx/Socket.pm that need the echo module
# (Debian: libnginx-mod-http-echo).  Must also pass under the real Test::Nginx.

use Test::Nginx::Socket;

our $EchoModule = '/usr/lib/nginx/modules/ngx_http_echo_module.so';
our $InitRuns = 0;

plan skip_all => "no $EchoModule" unless -f $EchoModule;

repeat_each(2);

plan tests => repeat_each() * 19;

# load the echo module unless TEST_NGINX_LOAD_MODULES already does
if (($ENV{TEST_NGINX_LOAD_MODULES} // '') !~ /ngx_http_echo_module/) {
    add_block_preprocessor(sub {
        my $block = shift;
        my $main = $block->main_config // '';
        $block->set_value('main_config', "load_module $EchoModule;\n$main");
    });
}

no_shuffle();
no_long_string();
run_tests();

__DATA__

=== TEST 1: chunked response is decoded
--- config
    location = /t {
        echo hello;
        echo_flush;
        echo world;
    }
--- request
GET /t
--- raw_response_headers_like: Transfer-Encoding: chunked\r\n
--- response_body
hello
world
--- no_error_log
[error]



=== TEST 2: a big chunked body, response_body eval
--- config
    location = /t {
        echo_duplicate 30000 'abc';
    }
--- request
GET /t
--- response_body eval
"abc" x 30000



=== TEST 3: the request body is trimmed and gets a Content-Length
--- config
    location = /t {
        echo_read_request_body;
        echo "[$request_body] $http_content_length";
    }
--- request
POST /t

  hello, body


--- response_body
[hello, body] 11



=== TEST 4: chunked request body via more_headers
--- config
    location = /t {
        echo_read_request_body;
        echo "[$request_body] [$http_content_length]";
    }
--- more_headers
Transfer-Encoding: chunked
--- request eval
"POST /t\r\n5\r\nhello\r\n0\r\n\r\n"
--- response_body
[hello] []



=== TEST 5: chunks with pauses stay within the timeout
--- config
    location = /t {
        echo a;
        echo_flush;
        echo_sleep 0.1;
        echo b;
    }
--- request
GET /t
--- timeout: 1
--- response_body
a
b



=== TEST 6: client timeout with abort is not a failure
--- config
    location = /t {
        echo_sleep 2;
        echo done;
    }
--- request
GET /t
--- timeout: 200ms
--- abort
--- ignore_response
--- no_error_log
[alert]



=== TEST 7: init runs once per block, before the requests
--- config
    location = /t {
        alias $TEST_NGINX_SERVER_ROOT/html/init.txt;
    }
--- init
$::InitRuns++;
open my $out, '>', "$ENV{TEST_NGINX_SERVER_ROOT}/html/init.txt" or die $!;
print $out "init ran $::InitRuns time(s)\n";
close $out;
--- request
GET /t
--- response_body
init ran 1 time(s)



=== TEST 8: echo_status and response_headers
--- config
    location = /t {
        echo_status 201;
        add_header X-Runner yes;
        echo created;
    }
--- request
GET /t
--- error_code: 201
--- response_headers
X-Runner: yes
Content-Length:
--- response_body
created
