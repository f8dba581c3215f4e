# Self-tests for the process-related prologue functions of
# t/lib/Test/Nginx/Socket.pm.  Must also pass under the real Test::Nginx.

use Test::Nginx::Socket;

repeat_each(1);

plan tests => repeat_each() * (blocks() * 4);

master_on();
workers(2);
worker_connections(128);
log_level('notice');
env_to_nginx('RUNNER_ENV_TEST=xyz');
no_root_location();
timeout(5);

no_shuffle();
run_tests();

__DATA__

=== TEST 1: master process with two workers, custom root location
--- config
    location / {
        return 200 "mine $TEST_NGINX_SERVER_PORT\n";
    }
--- request
GET /anything
--- response_body eval
"mine " . $ENV{TEST_NGINX_SERVER_PORT} . "\n"
--- error_log
start worker process
--- no_error_log
[debug]



=== TEST 2: log_level from the prologue can be raised per block
--- log_level: debug
--- config
    location / {
        return 200 "ok\n";
    }
--- request
GET /
--- response_body
ok
--- error_log
[debug]
--- no_error_log
[error]
