# Meta-tests for t/lib/Test/Nginx/Socket.pm: run small inner .t files in
# subprocesses and check that wrong expectations FAIL, bad input BAILS OUT,
# and good files pass, so the runner cannot silently pass everything.
#
# Plain Test::More (it does not load Test::Nginx::Socket itself).  The inner
# files use whichever Test/Nginx/Socket.pm comes first in @INC; checks of
# messages specific to our clean-room runner are skipped under the real one.

use strict;
use warnings;

use Test::More;
use File::Spec;
use File::Temp qw(tempdir);
use IO::Socket::INET;

my $lib;
for my $dir (@INC) {
    next if ref $dir;
    if (-f "$dir/Test/Nginx/Socket.pm") {
        $lib = File::Spec->rel2abs($dir);
        last;
    }
}

plan skip_all => 'Test::Nginx::Socket not found in @INC' unless $lib;

my $ours = do {
    open my $in, '<', "$lib/Test/Nginx/Socket.pm" or die $!;
    local $/;
    <$in> =~ /clean-room, Test::Nginx::Socket-compatible/;
};

my $tmp = tempdir('runner-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub free_port {
    for (1 .. 100) {
        my $port = 20000 + int rand 10000;
        my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                         LocalPort => $port, Listen => 1,
                                         ReuseAddr => 1, Proto => 'tcp');
        if ($sock) {
            close $sock;
            return $port;
        }
    }
    die "no free port";
}

# Run an inner test file; returns (exit status, combined output).
sub run_inner {
    my ($file, $text) = @_;
    my $path = "$tmp/$file";

    open my $out, '>', $path or die "$path: $!";
    print $out $text;
    close $out;

    local %ENV = %ENV;
    delete @ENV{qw(TEST_NGINX_PORT TEST_NGINX_CLIENT_PORT TEST_NGINX_RANDOMIZE
                   TEST_NGINX_NO_CLEAN TEST_NGINX_USE_VALGRIND
                   TEST_NGINX_VERBOSE TEST_NGINX_SERVER_ROOT
                   TEST_NGINX_LOAD_MODULES TEST_NGINX_CHECK_ACCUM_ERR_LOG
                   HARNESS_ACTIVE HARNESS_VERSION)};
    $ENV{TEST_NGINX_SERVER_PORT} = free_port();
    $ENV{TEST_NGINX_SERVROOT} = "$tmp/servroot";

    my $output = `$^X -I$lib $path 2>&1`;
    return ($?, $output);
}

sub has_line {
    my ($output, $re, $desc) = @_;
    ok($output =~ $re, $desc) or diag("no match for $re in:\n$output");
}

# ---------------------------------------------------------------------------
# 1. wrong expectations fail, right ones pass

my ($status, $out) = run_inner('wrong.t', <<'_EOT_');
use Test::Nginx::Socket;
repeat_each(1);
plan tests => 17;
no_shuffle();
run_tests();

__DATA__

=== TEST 1: good block
--- config
    location = /t { return 200 "good\n"; }
--- request
GET /t
--- response_body
good
--- no_error_log
[error]

=== TEST 2: wrong body
--- config
    location = /t { return 200 "line one\nline two\nline three\n"; }
--- request
GET /t
--- response_body
line one
line 2
line three

=== TEST 3: wrong status
--- config
    location = /t { return 404; }
--- request
GET /t
--- error_code: 200

=== TEST 4: missing error_log pattern
--- config
    location = /t { return 200 "x\n"; }
--- request
GET /t
--- error_log
this text is never logged

=== TEST 5: no_error_log pattern present
--- config
    location = /t { return 404; }
--- request
GET /no-such-file
--- error_code: 404
--- no_error_log
[error]

=== TEST 6: client timeout without abort
--- config
    location = /t { return 200 "x\n"; }
--- raw_request eval
"GET /t HTTP/1.1\r\nHost: localhost\r\n"
--- timeout: 0.2
--- ignore_response

=== TEST 7: wrong header
--- config
    location = /t { add_header X-A yes; return 200 "x\n"; }
--- request
GET /t
--- response_headers
X-A: no

=== TEST 8: must_die but nginx starts
--- config
    location = /t { return 200; }
--- must_die

=== TEST 9: response_body_like mismatch
--- config
    location = /t { return 200 "abc\n"; }
--- request
GET /t
--- response_body_like: ^xyz

=== TEST 10: sanitizer report in error.log
--- config
    location = /t { return 200; }
--- request
GET /ERROR:%20AddressSanitizer:%20heap-use-after-free
--- error_code: 404

=== TEST 11: assertion failure in error.log
--- config
    location = /t { return 200; }
--- request
GET /Assertion%20x%20failed
--- error_code: 404
_EOT_

SKIP: {
    # the real Test::Nginx sets no_ending(1) on a client timeout, so its
    # exit status stays 0 (prove still counts the "not ok" lines)
    skip 'exit status of t/lib/Test/Nginx/Socket.pm', 1 unless $ours;
    isnt($status, 0, 'wrong.t exits non-zero');
}
has_line($out, qr/^not ok /m, 'wrong.t reports failures');
has_line($out, qr/^ok \d+ - \S+ TEST 1: good block - response_body/m,
         'good block passes');
has_line($out, qr/^ok \d+ - \S+ TEST 1: good block - pattern "\[error\]" does not match/m,
         'good block no_error_log passes');
has_line($out, qr/^not ok \d+ - \S+ TEST 2: wrong body - response_body - response is expected/m,
         'wrong body fails');
has_line($out, qr/^not ok \d+ - \S+ TEST 3: wrong status - status code ok/m,
         'wrong status fails');
has_line($out, qr/^not ok \d+ - \S+ TEST 4: missing error_log pattern - pattern "this text is never logged" should match a line/m,
         'missing error_log pattern fails');
has_line($out, qr/^not ok \d+ - \S+ TEST 5: no_error_log pattern present - pattern "\[error\]" should not match any line/m,
         'present no_error_log pattern fails');
has_line($out, qr/^not ok \d+ - ERROR: client socket timed out - \S+ TEST 6/m,
         'client timeout fails');
has_line($out, qr/^not ok \d+ - \S+ TEST 7: wrong header - header X-A ok/m,
         'wrong header fails');
has_line($out, qr/^not ok \d+ - \S+ TEST 8: must_die but nginx starts - die as expected/m,
         'must_die fails when nginx starts');
has_line($out, qr/^not ok \d+ - \S+ TEST 9: response_body_like mismatch - response_body_like/m,
         'response_body_like mismatch fails');

SKIP: {
    skip 'messages specific to t/lib/Test/Nginx/Socket.pm', 5 unless $ours;

    has_line($out, qr/^#\s+-line 2\n#\s+\+line two/m,
             'a line diff is printed for the wrong body');
    has_line($out, qr/^# ---- last lines of \S+error\.log \(\S+ TEST 3: wrong status\) ----/m,
             'the error.log tail is printed for a failing block');
    has_line($out, qr/^not ok \d+ - \S+ TEST 10: sanitizer report in error\.log - .*ERROR: AddressSanitizer/m,
             'a sanitizer line in error.log fails');
    has_line($out, qr/^not ok \d+ - \S+ TEST 11: assertion failure in error\.log - .*Assertion x failed/m,
             'an assertion line in error.log fails');
    has_line($out, qr/planned 17 tests but ran 20/,
             'the extra failures are visible in the count');
}

# ---------------------------------------------------------------------------
# 1b. a crashing nginx fails the block

SKIP: {
    skip 'crash detection is specific to t/lib/Test/Nginx/Socket.pm', 4
        unless $ours;

    ($status, $out) = run_inner('crash.t', <<'_EOT_');
use Test::Nginx::Socket;
plan tests => 2;
run_tests();

__DATA__

=== TEST 1: nginx gets SIGSEGV before the request
--- config
    location = /t { return 200 "x\n"; }
--- init
open my $in, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/logs/nginx.pid" or die $!;
chomp(my $pid = <$in>);
kill 'SEGV', $pid;
select undef, undef, undef, 0.1;
--- request
GET /t
--- response_body
x
_EOT_

    isnt($status, 0, 'crash.t exits non-zero');
    has_line($out, qr/^not ok \d+ - \S+ TEST 1: nginx gets SIGSEGV before the request - nginx is not running any more \(crashed\?\)/m,
             'a dead nginx fails the block');

    ($status, $out) = run_inner('crash-worker.t', <<'_EOT_');
use Test::Nginx::Socket;
master_on();
plan tests => 2;
run_tests();

__DATA__

=== TEST 1: a worker gets SIGSEGV
--- config
    location = /t { return 200 "x\n"; }
--- init
my $master = `cat $ENV{TEST_NGINX_SERVER_ROOT}/logs/nginx.pid`;
chomp $master;
for my $pid (split ' ', `pgrep -P $master`) {
    kill 'SEGV', $pid;
}
select undef, undef, undef, 0.2;
--- request
GET /t
--- response_body
x
_EOT_

    isnt($status, 0, 'crash-worker.t exits non-zero');
    has_line($out, qr/^not ok \d+ - \S+ TEST 1: a worker gets SIGSEGV - .*worker process \d+ exited on signal 11/m,
             'a crashed worker fails the block');
}

# ---------------------------------------------------------------------------
# 2. the plan is checked

($status, $out) = run_inner('plan.t', <<'_EOT_');
use Test::Nginx::Socket;
plan tests => 5;
run_tests();

__DATA__

=== TEST 1: two assertions only
--- config
    location = /t { return 200 "x\n"; }
--- request
GET /t
--- response_body
x
_EOT_

isnt($status, 0, 'plan.t exits non-zero');
has_line($out, qr/planned 5 tests but ran 2/, 'plan mismatch reported');

# ---------------------------------------------------------------------------
# 3. bail outs

($status, $out) = run_inner('badconf.t', <<'_EOT_');
use Test::Nginx::Socket;
plan tests => 2;
run_tests();

__DATA__

=== TEST 1: invalid config without must_die
--- config
    location = /t { runner_bogus_directive; }
--- request
GET /t
--- response_body
x
_EOT_

isnt($status, 0, 'badconf.t exits non-zero');
has_line($out, qr/^Bail out!.*Cannot start nginx/m, 'bad config bails out');
SKIP: {
    skip 'messages specific to t/lib/Test/Nginx/Socket.pm', 1 unless $ours;
    has_line($out, qr/^#.*unknown directive "runner_bogus_directive"/m,
             'the error.log tail is printed when nginx cannot start');
}

($status, $out) = run_inner('noenv.t', <<'_EOT_');
use Test::Nginx::Socket;
plan tests => 2;
run_tests();

__DATA__

=== TEST 1: undefined variable
--- config
    location = /t { return 200 "$TEST_NGINX_RUNNER_UNDEFINED_XYZ"; }
--- request
GET /t
--- response_body
x
_EOT_

isnt($status, 0, 'noenv.t exits non-zero');
has_line($out, qr/^Bail out!.*No environment TEST_NGINX_RUNNER_UNDEFINED_XYZ defined/m,
         'undefined $TEST_NGINX_ variable bails out');

($status, $out) = run_inner('scalar.t', <<'_EOT_');
use Test::Nginx::Socket;
plan tests => 4;
run_tests();

__DATA__

=== TEST 1: two requests but a scalar expectation
--- config
    location = /t { return 200 "x\n"; }
--- request eval
["GET /t", "GET /t"]
--- response_body
x
_EOT_

isnt($status, 0, 'scalar.t exits non-zero');
has_line($out, qr/^Bail out!.*should be arrays as well/m,
         'scalar expectation with several requests bails out');

SKIP: {
    skip 'messages specific to t/lib/Test/Nginx/Socket.pm', 2 unless $ours;

    ($status, $out) = run_inner('evalerr.t', <<'_EOT_');
use Test::Nginx::Socket;
plan tests => 2;
run_tests();

__DATA__

=== TEST 1: broken eval
--- config
    location = /t { return 200 "x\n"; }
--- request
GET /t
--- response_body eval
"unterminated
_EOT_

    isnt($status, 0, 'evalerr.t exits non-zero');
    has_line($out, qr/^Bail out!.*an eval section failed/m,
             'an eval error bails out');
}

# ---------------------------------------------------------------------------
# 4. ONLY and LAST, and a clean pass

($status, $out) = run_inner('only.t', <<'_EOT_');
use Test::Nginx::Socket;
repeat_each(2);
plan tests => repeat_each() * blocks() * 2;
no_shuffle();
run_tests();

__DATA__

=== TEST 1: would fail
--- config
    location = /t { return 500; }
--- request
GET /t

=== TEST 2: the only one
--- ONLY
--- config
    location = /t { return 200 "only\n"; }
--- request
GET /t
--- response_body
only

=== TEST 3: would fail too
--- config
    location = /t { return 500; }
--- request
GET /t
_EOT_

is($status, 0, 'only.t passes') or diag($out);
has_line($out, qr/^1\.\.4$/m, 'only the ONLY block is planned and run');

($status, $out) = run_inner('last.t', <<'_EOT_');
use Test::Nginx::Socket;
plan tests => blocks() * 2;
no_shuffle();
run_tests();

__DATA__

=== TEST 1: first
--- config
    location = /t { return 200 "1\n"; }
--- request
GET /t
--- response_body
1

=== TEST 2: last one run
--- LAST
--- request
GET /t
--- response_body
1

=== TEST 3: would fail
--- config
    location = /t { return 500; }
--- request
GET /t
_EOT_

is($status, 0, 'last.t passes') or diag($out);
has_line($out, qr/^1\.\.4$/m, 'blocks after LAST are dropped');

done_testing();
