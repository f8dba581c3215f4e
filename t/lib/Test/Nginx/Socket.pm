package Test::Nginx::Socket;

# A clean-room, Test::Nginx::Socket-compatible test runner for ngx_ai_relay.
#
# It implements the subset of openresty/test-nginx that our t/*.t files use
# (see NGINX-NOTES.md section 6), on top of Debian's Test::Base, so that the
# very same .t files run unchanged under this runner and under the real
# Test::Nginx.  No code was copied from test-nginx; behaviour was matched
# against its documentation and observed semantics.
#
# Run with this runner:
#
#     prove -I t/lib -r t
#
# Run with the real Test::Nginx instead (openresty/test-nginx checkout):
#
#     prove -I /path/to/test-nginx/lib -r t
#
# Needs only Perl core modules plus Test::Base (libtest-base-perl, which pulls
# in Spiffy and Text::Diff).
#
# ---------------------------------------------------------------------------
# Prologue functions (exported):
#   repeat_each(N)  plan(...)  blocks()  no_shuffle()  no_long_string()
#   no_diff()  log_level(L)  workers(N)  master_on()  master_off()
#   master_process_enabled(B)  worker_connections(N)  no_root_location()
#   timeout(T)  env_to_nginx(NAME, ...)  run_tests()  add_block_preprocessor
#   add_cleanup_handler  add_test_cleanup_handler  add_response_body_check
#   check_accum_error_log()  config_preamble(S)  server_port()
#   server_port_for_client()  server_root()  html_dir()  server_addr()
#   server_name()  bail_out(MSG)  is_str(GOT, EXPECTED, NAME)
#   `plan tests => N` is checked by Test::Builder against the real count.
#
# Sections:
#   config http_config main_config post_main_config user_files init
#   post_setup_server_root request (string, or eval arrayref of strings)
#   raw_request (string, or eval arrayref of packets) raw_request_middle_delay
#   more_headers (string, or arrayref per request) error_code error_code_like
#   response_body (string / eval string / eval qr) response_body_like
#   response_body_unlike response_body_filters response_headers (incl. !Name)
#   response_headers_like raw_response_headers_like
#   raw_response_headers_unlike error_log no_error_log grep_error_log
#   grep_error_log_out wait timeout abort shutdown ignore_response must_die
#   log_level skip_eval suppress_stderr ONLY SKIP LAST
#   With several requests (request eval giving an arrayref) every indexed
#   expectation (error_code, response_body, response_headers, ...) must be an
#   arrayref too, exactly as the real Test::Nginx demands (it bails out
#   otherwise); error_log/no_error_log are checked after every request.
#
# Sections the real Test::Nginx has but this runner lacks make it bail out
# with a clear message (pipelined_requests, http2, curl, stap, tcp_*, udp_*,
# access_log, skip_nginx, todo, ...).  Unknown section names only warn.
#
# `eval` sections are evaluated by Test::Base in package Test::Base::Filter
# under `use strict` (same as real Test::Nginx), so refer to script variables
# as `$::HttpConfig` (declared with `our $HttpConfig` in the script).  An eval
# that fails makes this runner bail out (real Test::Nginx would silently use
# the error text as the section value).
# `--- init` runs once per block, after nginx started and before the repeated
# requests, in package Test::Nginx::Socket (real: Test::Nginx::Util), and a
# failure bails out.
#
# Environment: TEST_NGINX_BINARY (nginx), TEST_NGINX_SERVER_PORT or
# TEST_NGINX_PORT (1984), TEST_NGINX_CLIENT_PORT, TEST_NGINX_SERVROOT
# (t/servroot), TEST_NGINX_LOG_LEVEL (debug), TEST_NGINX_TIMEOUT (3),
# TEST_NGINX_SLEEP (0.015), TEST_NGINX_NO_SHUFFLE, TEST_NGINX_LOAD_MODULES,
# TEST_NGINX_MASTER_PROCESS, TEST_NGINX_NO_CLEAN, TEST_NGINX_RANDOMIZE,
# TEST_NGINX_VERBOSE, TEST_NGINX_FORCE_RESTART_ON_TEST (1),
# TEST_NGINX_CHECK_ACCUM_ERR_LOG, TEST_NGINX_EVENT_TYPE,
# TEST_NGINX_WORKER_USER, TEST_NGINX_USE_VALGRIND, and
# $TEST_NGINX_RAND_PORT_<n>.
# The runner exports TEST_NGINX_SERVER_PORT and TEST_NGINX_SERVER_ROOT.
# As in the real Test::Nginx, these are read when the module is loaded, so
# set them in the environment, not in the .t prologue; only variables used
# as $TEST_NGINX_* inside sections may be defaulted in the prologue
# ($ENV{TEST_NGINX_REDIS_PORT} ||= 6399).
#
# Self-tests of this runner: prove -I t/lib -r t/runner
#
# Valgrind (TEST_NGINX_USE_VALGRIND):
#   =1 (any number) runs nginx as
#     valgrind -q --tool=memcheck --leak-check=full --show-possibly-lost=no
#              --errors-for-leak-kinds=definite --num-callers=50
#              [--suppressions=./valgrind.suppress]
#              --suppressions=<servroot>/conf/valgrind-nginx-core.supp
#              --error-exitcode=97
#              --log-file=<servroot>/logs/valgrind.%p.log  nginx ...
#   (valgrind-nginx-core.supp is generated: it suppresses only the exact
#   stacks of memory stock nginx never frees at exit, namely the arrays of
#   ngx_event_process_init and the environment of ngx_set_environment)
#   any other value is used as the valgrind option string instead (the core
#   suppressions are still added, and --log-file and --error-exitcode unless
#   given).
#   nginx then runs with "daemon off" as a child of the runner (master_process
#   stays as configured, default off) and is stopped (SIGQUIT) at the end of
#   every block, so leak reports belong to that block.  Non-empty valgrind
#   logs are printed to stderr and produce an extra failing assertion
#   "<block> - valgrind reported errors", which also breaks the plan count:
#   the file fails.  must_die blocks never run under valgrind.  Startup under
#   valgrind is slow: raise TEST_NGINX_TIMEOUT (e.g. 10) if requests time out.
#   If ./valgrind.suppress exists it is used.
#
# Failure diagnostics: readable diffs for response_body and
# grep_error_log_out, and for every failing block the last 30 lines of
# error.log.  [alert], [crit], [emerg] lines are printed as warnings; lines
# matching /\bAssertion .*?failed\b/, /ERROR: AddressSanitizer|LeakSanitizer/,
# /: runtime error: / (UBSan) or
# /worker process \d+ exited on signal \d+/ are failing assertions, including
# lines logged while nginx shuts down; an nginx that disappeared during a block
# is a failing assertion too ("nginx is not running any more (crashed?)").
#
# Differences from the real Test::Nginx worth knowing:
#   * nginx's stderr goes to <servroot>/logs/stderr.log (printed on failures).
#   * A failing start is retried only while the port is busy ("Address
#     already in use", up to 30 s); any other start failure bails out at once
#     with the tail of error.log.
#   * A no_error_log pattern that matches several lines fails once (real:
#     once per matching line).
#   * Packet arrays inside `--- request eval` are not supported (use
#     raw_request eval).
# ---------------------------------------------------------------------------

use Test::Base -base;

use strict;
use warnings;

our $VERSION = '0.01';

use Errno ();
use File::Path ();
use File::Spec ();
use IO::Select ();
use IO::Socket::INET ();
use List::Util ();
use POSIX ();
use Scalar::Util ();
use Time::HiRes qw(sleep time);

our @EXPORT = qw(
    run_tests repeat_each no_shuffle no_long_string workers master_on
    master_off master_process_enabled worker_connections log_level
    no_root_location timeout env_to_nginx server_port server_port_for_client
    server_root html_dir server_addr server_name config_preamble
    check_accum_error_log add_block_preprocessor add_cleanup_handler
    add_test_cleanup_handler add_response_body_check bail_out is_str
    use_hup no_nginx_manager
);

# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------

our $RepeatEach          = 1;
our $NoShuffle           = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoLongString;
our $Workers             = 1;
our $WorkerConnections   = 64;
our $LogLevel            = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $Timeout             = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $TestNginxSleep      = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $NginxBinary         = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $ServerAddr          = '127.0.0.1';
our $ServerName          = 'localhost';
our $ServerPort          = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
                           || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $NoRootLocation      = 0;
our $ConfigPreamble      = '';
our $LoadModules         = $ENV{TEST_NGINX_LOAD_MODULES};
our $UseValgrind         = $ENV{TEST_NGINX_USE_VALGRIND};
our $Verbose             = $ENV{TEST_NGINX_VERBOSE};
our $Randomize           = $ENV{TEST_NGINX_RANDOMIZE};
our $CheckAccumErrLog    = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $EventType           = $ENV{TEST_NGINX_EVENT_TYPE};
our $WorkerUser          = $ENV{TEST_NGINX_WORKER_USER};
our $ForceRestartOnTest  = defined $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST}
                           ? $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST} : 1;

our $ValgrindErrorExitCode = 97;

our (@EnvToNginx, @BlockPreprocessors, @CleanupHandlers,
     @TestCleanupHandlers, @ResponseBodyChecks);

# run-time state
our $RandPorts = {};
our $PrevConfig;
our $PrevBlock;
our $ErrLogFilePos  = 0;   # where the next error-log read starts
our $ErrLogScanned  = 0;   # furthest point of the log already checked
our $SignalExitExpected = 0;

# set by a test that kills a worker itself (after the block's own error
# log checks, from --- redis_check): the worker's "exited on signal" line
# is expected up to and including the block's shutdown scan
our $SignalsExpected = 0;
our $ChildPid;             # nginx under valgrind is our child
our $RunningBlock;         # name of the block whose nginx is running
our $Started;              # run_tests() was called in this process
our $TotalConnectFailures = 0;
our $NginxV = '';
our $NginxPath;
our $MainPid = $$;

my %Unsupported = map { $_ => 1 } qw(
    pipelined_requests http2 http3 curl curl_protocol curl_options curl_error
    stap stap_out stap_out_like stap_out_unlike tcp_listen tcp_reply
    tcp_reply_delay tcp_query tcp_query_len tcp_query_auto_timeout
    tcp_shutdown tcp_shutdown_delay tcp_no_close udp_listen udp_reply
    udp_reply_delay udp_query access_log no_access_log shutdown_error_log
    no_shutdown_error_log skip_nginx skip_nginx2 skip_openssl skip_slave
    todo todo_nginx response_body_json_sort charset error_log_file
    reload_fails http09 request_eval response_body_eval server_addr_for_client
    write_resp_body_file quic_max_idle_timeout server_name
);

our %Known = map { $_ => 1 } qw(
    config http_config main_config post_main_config user_files init
    post_setup_server_root request raw_request raw_request_middle_delay
    more_headers error_code error_code_like response_body response_body_like
    response_body_unlike response_body_filters response_headers
    response_headers_like raw_response_headers_like
    raw_response_headers_unlike error_log no_error_log grep_error_log
    grep_error_log_out wait timeout abort shutdown ignore_response must_die
    log_level skip_eval suppress_stderr no_check_leak ONLY SKIP LAST
);

our ($ServRoot, $LogDir, $ErrLogFile, $AccLogFile, $HtmlDir, $ConfDir,
     $ConfFile, $PidFile, $CacheDir, $StderrFile);

if ($Randomize) {
    $ServerPort = _gen_rand_port({}) or do {
        print STDOUT "Bail out!  cannot find a free port for"
                     . " TEST_NGINX_RANDOMIZE\n";
        exit 255;
    };
    $ServerPortForClient = $ServerPort;
    $ServRoot = File::Spec->rel2abs("t/servroot_$ServerPort");

} else {
    $ServRoot = File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} || 't/servroot');
}

$ServRoot   =~ s{/+$}{};
$LogDir     = "$ServRoot/logs";
$ErrLogFile = "$LogDir/error.log";
$AccLogFile = "$LogDir/access.log";
$StderrFile = "$LogDir/stderr.log";
$HtmlDir    = "$ServRoot/html";
$ConfDir    = "$ServRoot/conf";
$ConfFile   = "$ConfDir/nginx.conf";
$PidFile    = "$LogDir/nginx.pid";
$CacheDir   = "$ServRoot/cache";

$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

# ---------------------------------------------------------------------------
# Exported prologue functions
# ---------------------------------------------------------------------------

sub repeat_each (@) {
    $RepeatEach = shift if @_;
    return $RepeatEach;
}

sub no_shuffle () { $NoShuffle = 1 }

sub no_long_string () { $NoLongString = 1 }

sub workers (@) {
    return $Workers unless @_;
    $Workers = shift;
}

sub worker_connections (@) {
    return $WorkerConnections unless @_;
    $WorkerConnections = shift;
}

sub log_level (@) {
    return $LogLevel unless @_;
    $LogLevel = shift;
}

sub master_on ()  { $MasterProcessEnabled = 'on' }
sub master_off () { $MasterProcessEnabled = 'off' }

sub master_process_enabled (@) {
    return $MasterProcessEnabled unless @_;
    $MasterProcessEnabled = shift() ? 'on' : 'off';
}

sub no_root_location () { $NoRootLocation = 1 }

sub timeout (@) {
    return $Timeout unless @_;
    $Timeout = shift;
}

sub env_to_nginx (@) {
    Carp::croak("env_to_nginx: no arguments specified") unless @_;
    for my $v (@_) {
        Carp::croak("env_to_nginx: bad argument value: $v")
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub server_port (@) {
    return $ServerPort unless @_;
    $ServerPort = shift;
}

sub server_port_for_client (@) {
    return $ServerPortForClient unless @_;
    $ServerPortForClient = shift;
}

sub server_addr (@) {
    return $ServerAddr unless @_;
    $ServerAddr = shift;
}

sub server_name (@) {
    return $ServerName unless @_;
    $ServerName = shift;
}

sub server_root () { $ServRoot }
sub html_dir ()    { $HtmlDir }

sub config_preamble ($) { $ConfigPreamble = shift }

sub check_accum_error_log () { $CheckAccumErrLog = 1 }

sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }

sub add_cleanup_handler ($) { unshift @CleanupHandlers, shift }

sub add_test_cleanup_handler ($) { unshift @TestCleanupHandlers, shift }

sub add_response_body_check ($) { push @ResponseBodyChecks, shift }

sub use_hup () {
    Carp::croak("use_hup() is not supported by t/lib/Test/Nginx/Socket.pm;"
                . " run under the real Test::Nginx");
}

sub no_nginx_manager () {
    Carp::croak("no_nginx_manager() is not supported by"
                . " t/lib/Test/Nginx/Socket.pm; run under the real"
                . " Test::Nginx");
}

sub bail_out (@) {
    my $msg = join '', @_;
    $msg =~ s/\s+\z//;
    my @lines = split /\n/, $msg;
    my $first = shift(@lines) // 'bail out';
    Test::More::diag(join "\n", @lines) if @lines;
    _run_cleanup_handlers();
    Test::More::BAIL_OUT($first);
}

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    return _is_str($got, $expected, $desc);
}

# ---------------------------------------------------------------------------
# The main loop
# ---------------------------------------------------------------------------

sub run_tests () {
    srand($$ ^ int(time() * 1000));

    _check_binary();

    if (!defined $ENV{TEST_NGINX_SERVER_PORT} || $Randomize) {
        $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;
    }

    $Started = 1;

    my @blocks = Test::Base::blocks();
    @blocks = List::Util::shuffle(@blocks) unless $NoShuffle;

    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value(name => "$0 " . $block->name);
        _check_sections($block);
        _run_block($block);
        $_->($block) for @TestCleanupHandlers;
        $PrevBlock = $block;
    }

    _run_cleanup_handlers();
}

sub _check_sections {
    my ($block) = @_;
    my $name = $block->name;

    for my $sec (sort keys %$block) {
        next if $sec =~ /^_/ || $sec eq 'name' || $sec eq 'description'
                || $sec eq 'seq_num' || $sec eq 'is_filtered'
                || $sec eq 'blocks_object' || $sec eq 'original_values';
        next if $Known{$sec};
        if ($Unsupported{$sec}) {
            bail_out("$name - section '--- $sec' is not supported by"
                     . " t/lib/Test/Nginx/Socket.pm; run this file under the"
                     . " real Test::Nginx");
        }
        warn "WARNING: $name - unknown section '--- $sec' ignored\n";
        $Known{$sec} = 1;   # warn once
    }
}

sub _run_block {
    my ($block) = @_;
    my $name = $block->name;

    $RandPorts = {};

    my $config = _expand(scalar $block->config, $name);

    local $LogLevel = $block->log_level ? $block->log_level : $LogLevel;

    my $must_die = $block->must_die;

    my $skip_count;
    if (defined(my $skip = $block->skip_eval)) {
        $skip =~ /^\s*(\d+)\s*:\s*(.*)/s
            or bail_out("$name - invalid --- skip_eval spec: $skip");
        my ($n, $code) = ($1, $2);
        my $res = eval $code;
        bail_out("$name - skip_eval - failed to eval the Perl code"
                 . " \"$code\": $@") if $@;
        $skip_count = $n if $res;
    }

    if (defined $skip_count) {
        for my $rep (1 .. $RepeatEach) {
            SKIP: { Test::More::skip("$name - skip_eval", $skip_count) }
        }
        return;
    }

    my $fails_before = _failed_count();
    my $restart = 1;

    if (!defined $config) {
        bail_out("$name - No '--- config' section specified and could not"
                 . " get previous one") unless defined $PrevConfig;
        if (_nginx_pid()) {
            $restart = 0;
        } else {
            # e.g. under valgrind nginx is stopped after every block
            $config = $PrevConfig;
        }

    } elsif (!$ForceRestartOnTest && !defined $must_die
             && defined $PrevConfig && $config eq $PrevConfig
             && _nginx_pid())
    {
        $restart = 0;
    }

    if ($restart) {
        $PrevConfig = $config;

        _stop_nginx($RunningBlock);
        _setup_server_root();

        if (defined(my $code = $block->post_setup_server_root)) {
            eval $code;
            bail_out("$name - post_setup_server_root failed: $@") if $@;
        }

        _write_user_files($block);
        _write_config_file($block, $config, defined $must_die);

        if (defined $must_die) {
            _run_must_die($block, $must_die);
            _report_block_failure($block, $fails_before);
            return;
        }

        _start_nginx($block);
    }

    if (defined(my $code = $block->init)) {
        eval "#line 1 \"$name --- init\"\n$code\n;1"
            or bail_out("$name - init failed: $@");
    }

    $ErrLogFilePos = 0;

    for my $rep (0 .. $RepeatEach - 1) {
        _write_user_files($block) if $rep > 0;
        _run_requests($block, $rep);
    }

    if ($RunningBlock && !_nginx_pid()) {
        Test::More::fail("$name - nginx is not running any more (crashed?)");
        _stop_nginx($RunningBlock);   # reap, scan the log
    }

    if ($UseValgrind) {
        # leak reports are only complete once nginx has exited
        _stop_nginx($name);
    }

    _report_block_failure($block, $fails_before);
}

sub _run_cleanup_handlers {
    return unless $$ == $MainPid;
    while (my $hdl = shift @CleanupHandlers) {
        $hdl->();
    }
}

sub _failed_count {
    return scalar grep { !$_ } Test::More->builder->summary;
}

sub _report_block_failure {
    my ($block, $fails_before) = @_;

    return if _failed_count() <= $fails_before;

    my $tail = _tail_file($ErrLogFile, 30);
    Test::More::diag("---- last lines of $ErrLogFile ("
                     . $block->name . ") ----\n"
                     . ($tail eq '' ? "(empty)\n" : $tail)
                     . "---- end of error.log ----");

    my $stderr = _tail_file($StderrFile, 30);
    if ($stderr ne '') {
        Test::More::diag("---- nginx stderr ($StderrFile) ----\n$stderr");
    }
}

# ---------------------------------------------------------------------------
# Server root, config file, nginx process
# ---------------------------------------------------------------------------

sub _check_binary {
    my $bin = $NginxBinary;
    my $found;

    if ($bin =~ m{/}) {
        $found = -x $bin ? $bin : undef;

    } else {
        for my $dir (split /:/, $ENV{PATH} // '') {
            next unless length $dir;
            if (-x "$dir/$bin" && !-d _) {
                $found = "$dir/$bin";
                last;
            }
        }
    }

    bail_out("Cannot find the nginx executable \"$bin\" (set"
             . " TEST_NGINX_BINARY)") unless $found;

    require Cwd;
    $NginxPath = Cwd::abs_path($found) // $found;

    $NginxV = `$bin -V 2>&1`;
    bail_out("\"$bin -V\" failed: $NginxV") if $? != 0;
}

sub _setup_server_root {
    if (-d $ServRoot) {
        opendir my $dh, $ServRoot
            or bail_out("Can't read directory $ServRoot: $!");
        my @odd = grep {
            $_ ne '.' && $_ ne '..' && $_ !~ /^(?:conf|logs|html|cache)$/
            && $_ !~ /_(?:temp|cache)$/
        } readdir $dh;
        closedir $dh;

        if (@odd && !-f $ConfFile) {
            bail_out("Refusing to wipe $ServRoot: it does not look like a"
                     . " test server root (found: @odd)");
        }

        File::Path::remove_tree($ServRoot, { error => \my $err });
        if (-d $ServRoot) {
            bail_out("Can't remove $ServRoot");
        }
    }

    for my $dir ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        File::Path::make_path($dir, { error => \my $err });
        bail_out("Failed to create $dir") unless -d $dir;
    }

    _write_file("$HtmlDir/index.html",
                '<html><head><title>It works!</title></head>'
                . '<body>It works!</body></html>');

    $ErrLogFilePos = 0;
    $ErrLogScanned = 0;
}

sub _write_file {
    my ($path, $data) = @_;
    open my $out, '>', $path or bail_out("Can't open $path for writing: $!");
    binmode $out;
    print $out $data;
    close $out or bail_out("Can't write $path: $!");
}

sub _write_user_files {
    my ($block) = @_;
    my $name = $block->name;
    my $files = $block->user_files;

    return unless $files;

    if (!ref $files) {
        my @list;
        for my $line (split /^/m, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, undef, $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;

    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - --- user_files: only a string or an ARRAY is"
                 . " accepted, got " . ref $files);
    }

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        $body = '' unless defined $body;

        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{(.*)/}) {
            File::Path::make_path($1) unless -d $1;
        }

        _write_file($path, _expand($body, $name));

        if ($date) {
            my $cmd = "TZ=GMT touch -t " . _shq($date) . " " . _shq($path);
            system($cmd) == 0 or bail_out("$name - failed to run $cmd");
        }
    }
}

sub _write_config_file {
    my ($block, $config, $must_die) = @_;
    my $name = $block->name;

    my $http_config = _expand(scalar $block->http_config, $name) // '';
    my $main_config = $block->main_config // '';
    my $post_main_config = _expand(scalar $block->post_main_config, $name)
                           // '';

    $config = '' unless defined $config;

    if ($LoadModules) {
        my @mods = map { "load_module $_;" } grep { length } split /\s+/,
                   $LoadModules;
        $main_config = join ' ', @mods, $main_config if @mods;
    }

    $main_config = _expand($main_config, $name);

    my $daemon = ($UseValgrind && !$must_die) ? 'off' : 'on';

    my @env = qw(LD_PRELOAD LD_LIBRARY_PATH ASAN_OPTIONS LSAN_OPTIONS
                 UBSAN_OPTIONS);
    for my $v (@EnvToNginx) {
        push @env, $v =~ /\s/ ? "'$v'" : $v;
    }
    my $env = join '', map { "env $_;\n" } @env;

    my @temp;
    for my $t (qw(client_body proxy fastcgi uwsgi scgi)) {
        next if $t =~ /^(?:fastcgi|uwsgi|scgi)$/
                && $NginxV =~ /--without-http_${t}_module/;
        next if $http_config =~ /\b${t}_temp_path\b/;
        push @temp, "${t}_temp_path $ServRoot/${t}_temp;";
    }
    my $temp = join ' ', @temp;

    my $root_location = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $events = "    accept_mutex off;\n"
                 . "    worker_connections  $WorkerConnections;\n";
    $events .= "    use $EventType;\n" if $EventType;

    my $user = '';
    if (defined $WorkerUser) {
        $user = "user $WorkerUser;\n";
    } elsif ($> == 0) {
        $user = "user root;\n";
    }

    my $conf = <<"_EOC_";
worker_processes  $Workers;
daemon $daemon;
master_process $MasterProcessEnabled;
error_log $ErrLogFile $LogLevel;
pid       $PidFile;
$env
$main_config

http {
    access_log $AccLogFile;
    $temp

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config

    server {
        listen          $ServerPort;
        server_name     '$ServerName';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

events {
$events}

$user
_EOC_

    _write_file($ConfFile, $conf);
    warn "$name - wrote $ConfFile\n" if $Verbose;
}

sub _nginx_cmd {
    return join ' ', map { _shq($_) } $NginxBinary, '-e', $ErrLogFile,
                     '-p', "$ServRoot/", '-c', $ConfFile;
}

sub _start_nginx {
    my ($block) = @_;
    my $name = $block->name;
    my $cmd = _nginx_cmd();

    if ($UseValgrind) {
        _start_nginx_valgrind($block, $cmd);
        return;
    }

    my ($waited, $i) = (0, 0);
    my $full = "$cmd >/dev/null 2>>" . _shq($StderrFile);

    while (1) {
        warn "$name - starting nginx: $cmd\n" if $Verbose;
        system($full);
        my $status = $?;

        last if $status == 0;

        bail_out("$name - failed to execute \"$cmd\": $!") if $status == -1;

        if ($waited < 30 && _slurp($ErrLogFile) =~ /Address already in use/) {
            my $delay = List::Util::min(1, 0.1 * ++$i);
            warn "WARNING: $name - port $ServerPort is busy, retrying to"
                 . " start nginx in $delay s\n" if $i == 1 || $Verbose;
            sleep $delay;
            $waited += $delay;
            next;
        }

        _diag_start_failure();
        bail_out("$name - Cannot start nginx using command \"$cmd\""
                 . " (status code $status).");
    }

    my $err = _wait_ready(10);
    if ($err) {
        _diag_start_failure();
        bail_out("$name - $err");
    }

    $RunningBlock = $name;
    sleep $TestNginxSleep;
}

# nginx itself does not free some memory at exit (the connection and event
# arrays of ngx_event_process_init, also in a worker started again after
# one was killed, the environment of ngx_set_environment);
# these exact stacks are suppressed, for stripped and symbolized binaries.
sub _write_core_suppressions {
    my $file = "$ConfDir/valgrind-nginx-core.supp";
    my $bin = "obj:$NginxPath";
    my @stacks = (
        [qw(ngx_set_environment ngx_single_process_cycle)],
        ['ngx_set_environment', $bin, $bin, 'ngx_spawn_process', $bin,
         'ngx_master_process_cycle'],
        ['ngx_set_environment', 'ngx_worker_process_init',
         'ngx_worker_process_cycle', 'ngx_spawn_process',
         'ngx_start_worker_processes', 'ngx_master_process_cycle'],
        [$bin, 'ngx_single_process_cycle'],
        [qw(ngx_event_process_init ngx_single_process_cycle)],
        [$bin, $bin, $bin, 'ngx_spawn_process', $bin,
         'ngx_master_process_cycle'],
        [qw(ngx_event_process_init ngx_worker_process_init
            ngx_worker_process_cycle ngx_spawn_process
            ngx_start_worker_processes ngx_master_process_cycle)],
        # a worker the master starts again after one was killed
        [$bin, $bin, $bin, 'ngx_spawn_process', 'ngx_master_process_cycle'],
        [qw(ngx_event_process_init ngx_worker_process_init
            ngx_worker_process_cycle ngx_spawn_process ngx_reap_children
            ngx_master_process_cycle)],
    );

    my $text = '';
    my $n = 0;
    for my $stack (@stacks) {
        $n++;
        $text .= "{\n   nginx-core-exit-$n\n   Memcheck:Leak\n"
                 . "   match-leak-kinds: definite\n   fun:malloc\n"
                 . "   fun:ngx_alloc\n";
        for my $frame (@$stack, 'main') {
            $text .= $frame =~ /^obj:/ ? "   $frame\n" : "   fun:$frame\n";
        }
        $text .= "}\n";
    }

    _write_file($file, $text);
    return $file;
}

sub _valgrind_opts {
    my $opts;

    if ($UseValgrind =~ /^\d+$/) {
        $opts = "-q --tool=memcheck --leak-check=full --show-possibly-lost=no"
                . " --errors-for-leak-kinds=definite --num-callers=50";
        $opts .= " --suppressions=valgrind.suppress" if -f 'valgrind.suppress';

    } else {
        $opts = $UseValgrind;
    }

    $opts .= " --suppressions=" . _shq(_write_core_suppressions());
    $opts .= " --error-exitcode=$ValgrindErrorExitCode"
        unless $opts =~ /--error-exitcode/;
    $opts .= " --log-file=" . _shq("$LogDir/valgrind.%p.log")
        unless $opts =~ /--log-file/;

    return $opts;
}

sub _start_nginx_valgrind {
    my ($block, $cmd) = @_;
    my $name = $block->name;
    my $full = "exec valgrind " . _valgrind_opts() . " $cmd";

    warn "$name - starting nginx under valgrind: $full\n" if $Verbose;

    my $pid = fork();
    bail_out("$name - fork() failed: $!") unless defined $pid;

    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>>', $StderrFile;
        { exec '/bin/sh', '-c', $full }
        POSIX::_exit(127);
    }

    $ChildPid = $pid;

    my $err = _wait_ready(120);
    if ($err) {
        _diag_start_failure();
        _diag_valgrind_logs();
        bail_out("$name - $err");
    }

    $RunningBlock = $name;
}

# Wait until nginx wrote its pid file and listens on the server port.
sub _wait_ready {
    my ($max) = @_;
    my $t0 = time;

    while (1) {
        if ($ChildPid) {
            my $r = waitpid($ChildPid, POSIX::WNOHANG());
            if ($r == $ChildPid) {
                my $st = $?;
                undef $ChildPid;
                return "nginx exited right after start (wait status $st)";
            }
        }

        return undef if -s $PidFile && _port_listening($ServerPort);

        if (time - $t0 > $max) {
            return "nginx did not listen on port $ServerPort within $max s";
        }

        sleep 0.005;
    }
}

# Linux: look for a LISTEN socket on the port; elsewhere assume yes.
sub _port_listening {
    my ($port) = @_;
    my $seen_proc;

    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $in, '<', $f or next;
        $seen_proc = 1;
        while (my $line = <$in>) {
            if ($line =~ /^\s*\d+:\s+[0-9A-Fa-f]+:([0-9A-Fa-f]+)\s+\S+\s+0A\b/
                && hex($1) == $port)
            {
                return 1;
            }
        }
    }

    return $seen_proc ? 0 : 1;
}

sub _diag_start_failure {
    my $log = _tail_file($ErrLogFile, 30);
    my $stderr = _tail_file($StderrFile, 30);
    my $msg = "---- nginx failed to start; last lines of $ErrLogFile ----\n"
              . ($log eq '' ? "(empty)\n" : $log);
    $msg .= "---- nginx stderr ----\n$stderr" if $stderr ne '';
    $msg .= "---- config: $ConfFile ----";
    Test::More::diag($msg);
}

sub _run_must_die {
    my ($block, $must_die) = @_;
    my $name = $block->name;
    my $cmd = _nginx_cmd();

    $ErrLogFilePos = 0;

    for my $rep (0 .. $RepeatEach - 1) {
        warn "$name - starting nginx (must die): $cmd\n" if $Verbose;
        system("$cmd >/dev/null 2>>" . _shq($StderrFile));
        my $status = $?;

        # the shell reports a signal as exit code 128 + N
        my $signal = ($status & 127)
                     || (($status >> 8) > 128 ? ($status >> 8) - 128 : 0);

        if ($status == -1) {
            Test::More::fail("$name - failed to execute the nginx command"
                             . " line");

        } elsif ($signal) {
            Test::More::fail("$name - nginx killed by signal $signal");

        } elsif (Scalar::Util::looks_like_number($must_die)) {
            Test::More::is($status >> 8, $must_die,
                           "$name - die with the expected exit code");

        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }

        _check_error_log($block, $rep, 0, 1);

        if ($status == 0) {
            warn "WARNING: $name - nginx must die but it does not; killing it"
                 . " (req $rep)\n";
            _wait_ready(5);
            $RunningBlock = $name;
            _stop_nginx($name);
        }
    }
}

sub _read_pid_file {
    open my $in, '<', $PidFile or return undef;
    my $pid = <$in>;
    close $in;
    return undef unless defined $pid && $pid =~ /^\s*(\d+)\s*$/;
    return $1;
}

sub _alive {
    my ($pid) = @_;
    return 0 unless $pid && kill(0, $pid);
    if (open my $in, '<', "/proc/$pid/stat") {
        my $stat = <$in> // '';
        return 0 if $stat =~ /^\d+ \(.*\) Z/s;   # zombie
    }
    return 1;
}

sub _looks_like_nginx {
    my ($pid) = @_;
    open my $in, '<', "/proc/$pid/cmdline" or return 1;
    local $/;
    my $cmdline = <$in> // '';
    my $base = (split m{/}, $NginxBinary)[-1];
    return $cmdline =~ /nginx|valgrind|memcheck|\Q$base\E/;
}

sub _nginx_pid {
    my $pid = _read_pid_file() || $ChildPid;
    return ($pid && _alive($pid) && _looks_like_nginx($pid)) ? $pid : undef;
}

# Stop the running nginx (if any); $label is the name of the block that
# started it (undef for a stale nginx left by another run).
sub _stop_nginx {
    my ($label) = @_;
    my $pid = _nginx_pid();
    my $child = $ChildPid;
    my $child_status;

    if ($pid) {
        warn "stopping nginx $pid\n" if $Verbose;
        kill 'QUIT', $pid;

        my $limit = $UseValgrind ? 60 : List::Util::max($Timeout, 5);
        my $t0 = time;

        while (time - $t0 < $limit) {
            if ($child) {
                if (waitpid($child, POSIX::WNOHANG()) == $child) {
                    $child_status = $?;
                    undef $child;
                    last;
                }
            } elsif (!_alive($pid)) {
                last;
            }
            sleep 0.005;
        }

        if ($child || _alive($pid)) {
            warn "WARNING: " . ($label // 'cleanup') . " - nginx $pid did not"
                 . " exit ${limit}s after SIGQUIT; sending SIGKILL\n";
            if ($child) {
                kill 'KILL', -$child;
                kill 'KILL', $child;
                waitpid($child, 0);
                $child_status = $?;
                undef $child;
            } else {
                kill 'KILL', $pid;
                my $t1 = time;
                sleep 0.01 while _alive($pid) && time - $t1 < 5;
            }
        }

    } elsif ($child) {
        waitpid($child, 0);
        $child_status = $?;
    }

    undef $ChildPid;
    unlink $PidFile if -e $PidFile;

    if (defined $label) {
        _scan_shutdown_log($label);
        _check_valgrind($label, $child_status) if $UseValgrind;
    }

    undef $RunningBlock;
}

# Fatal lines (assertions, sanitizers) logged after the last check.
sub _scan_shutdown_log {
    my ($label) = @_;

    open my $in, '<', $ErrLogFile or return;
    seek $in, $ErrLogScanned, 0 if $ErrLogScanned > 0;
    my @lines = <$in>;
    $ErrLogScanned = tell $in;
    close $in;

    local $SignalExitExpected = $SignalExitExpected || $SignalsExpected;
    $SignalsExpected = 0;

    my @bad = grep { _is_fatal_line($_) } @lines;
    return unless @bad;

    my $ctx = join '', @lines[0 .. List::Util::min($#lines, 60)];
    Test::More::diag("---- $ErrLogFile after nginx shut down ($label) ----\n"
                     . $ctx);
    chomp(my $first = $bad[0]);
    Test::More::fail("$label - $first (logged at shutdown)");
}

sub _valgrind_logs {
    my @out;
    for my $f (sort glob("$LogDir/valgrind.*.log")) {
        my $text = _slurp($f);
        push @out, [$f, $text] if $text =~ /\S/;
    }
    return @out;
}

sub _diag_valgrind_logs {
    for my $log (_valgrind_logs()) {
        Test::More::diag("---- $log->[0] ----\n$log->[1]");
    }
}

sub _check_valgrind {
    my ($label, $status) = @_;
    my @logs = _valgrind_logs();

    for my $log (@logs) {
        print STDERR "==== valgrind report for $label ($log->[0]) ====\n",
                     $log->[1], "==== end of valgrind report ====\n";
        unlink $log->[0];
    }

    my $exit = defined $status && !($status & 127) ? $status >> 8 : undef;

    if (@logs || (defined $exit && $exit == $ValgrindErrorExitCode)) {
        Test::More::fail("$label - valgrind reported errors (see the"
                         . " valgrind report above)");
    }
}

# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

sub _run_requests {
    my ($block, $rep) = @_;
    my $name = $block->name;

    my $reqs = _requests_for_block($block);
    my $timeout = _parse_time(scalar $block->timeout);
    $timeout = $Timeout unless defined $timeout;

    my $need_array = @$reqs > 1;

    for my $i (0 .. $#$reqs) {
        my $packets = $reqs->[$i];
        my $whole = join '', map { $_->{value} } @$packets;
        my $is_head = $whole =~ /^\s*HEAD\s+/;

        warn "$name - request $i:\n$whole\n" if $Verbose;

        my $raw = _send_request($block, $packets, $timeout);
        $raw = '' unless defined $raw;

        warn "$name - raw response $i:\n$raw\n" if $Verbose;

        if (!defined $block->ignore_response) {
            my $res = _parse_response($name, $raw, $is_head);

            if (defined $res->{left} && length $res->{left}) {
                (my $left = $res->{left})
                    =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                warn "WARNING: $name - unexpected extra bytes after the"
                     . " response: \"$left\"\n";
            }

            _check_error_code($block, $res, $i, $need_array);
            _check_raw_headers($block, $res, $i, $need_array);
            _check_headers($block, $res, $i, $need_array);
            _filter_body($block, $res, $i);
            _check_body($block, $res, $rep, $i, $need_array);
        }

        if ($i < $#$reqs) {
            sleep $block->wait if $block->wait;
            _check_error_log($block, $rep, $need_array);
        }
    }

    sleep $block->wait if $block->wait;
    _check_error_log($block, $rep, $need_array);
}

sub _requests_for_block {
    my ($block) = @_;
    my $name = $block->name;
    my @reqs;

    if (defined(my $raw = $block->raw_request)) {
        if (ref $raw eq 'ARRAY') {
            push @reqs, [ map { ref $_ eq 'HASH' ? {%$_} : { value => $_ } }
                          @$raw ];
        } elsif (!ref $raw) {
            push @reqs, [ { value => $raw } ];
        } else {
            bail_out("$name - invalid --- raw_request: must be a string or"
                     . " an array of packets");
        }
        return \@reqs;
    }

    my $request = $block->request;
    bail_out("$name - no '--- request' or '--- raw_request' section")
        unless defined $request;

    my $more = $block->more_headers;
    $more = '' unless defined $more;

    my $headers_for = sub {
        my ($i) = @_;
        my $h = $more;
        if (ref $h eq 'ARRAY') {
            $h = $h->[$i];
            bail_out("$name - --- more_headers lacks data for request $i")
                unless defined $h;
        }
        return _parse_more_headers($h);
    };

    if (!ref $request) {
        1 while $request =~ s/\A(?:\s*#[^\n]+\s+|\s+)//;
        push @reqs, [ { value => _build_request($name, $request,
                                                $headers_for->(0)) } ];

    } elsif (ref $request eq 'ARRAY') {
        my $i = 0;
        for my $one (@$request) {
            if (ref $one) {
                bail_out("$name - packet arrays inside --- request are not"
                         . " supported by t/lib/Test/Nginx/Socket.pm; use"
                         . " --- raw_request eval");
            }
            push @reqs, [ { value => _build_request($name, $one,
                                                    $headers_for->($i)) } ];
            $i++;
        }
        bail_out("$name - --- request eval gave an empty array") unless @reqs;

    } else {
        bail_out("$name - invalid --- request: must be a string or an array"
                 . " of requests");
    }

    return \@reqs;
}

sub _parse_more_headers {
    my ($text) = @_;
    my ($out, $chunked) = ('', 0);

    for my $line (split /\n+/, $text) {
        next if $line =~ /^\s*#/ || $line !~ /\S/;
        my ($key, $val) = split /:\s*/, $line, 2;
        $val = '' unless defined $val;
        $chunked = 1 if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }

    return ($out, $chunked);
}

sub _build_request {
    my ($name, $req, $headers, $chunked) = @_;

    my ($first, $body) = $req =~ /\A([^\n]*\n?)(.*)\z/s;

    bail_out("$name - Request line should be non-empty")
        unless defined $first && length $first;

    $first =~ /^\s*(\S+) *(?:(\S+) *)?(?:(\S+) *)?\s*$/
        or bail_out("$name - Request line is not valid. Should be"
                    . " 'meth [url [version]]' but got \"$first\".");

    my ($meth, $url, $ver) = ($1, $2 // '/', $3 // 'HTTP/1.1');

    my $len = '';
    if (!$chunked && length $body && $headers !~ /(?:^|\n)Content-Length:/) {
        $body =~ s/^\s+|\s+$//gs;
        $len = "Content-Length: " . length($body) . "\r\n";
    }

    my $std = '';
    $std .= "Host: $ServerName\r\n" if $headers !~ /(?:^|\n)Host:/i;
    $std .= "Connection: close\r\n" if $headers !~ /(?:^|\n)Connection/i;

    return "$meth $url $ver\r\n$std$headers$len\r\n$body";
}

sub _connect {
    my ($block, $timeout) = @_;
    my $name = $block->name;

    for (my $try = 1; ; $try++) {
        my $sock = IO::Socket::INET->new(
            PeerAddr => $ServerAddr,
            PeerPort => $ServerPortForClient,
            Proto    => 'tcp',
            Timeout  => $timeout,
        );
        return $sock if $sock;

        my $err = "$!";
        my $gone = !_nginx_pid();

        if ($gone || $try >= 50) {
            my $msg = "$name - Can't connect to $ServerAddr:"
                      . "$ServerPortForClient: $err"
                      . ($gone ? " (nginx is not running)" : " (aborted)");
            bail_out($msg) if ++$TotalConnectFailures >= 3;
            Test::More::fail($msg);
            return undef;
        }

        my $wait = ($TestNginxSleep + $TestNginxSleep * $try) * $try / 2;
        $wait = 1 if $wait > 1;
        warn "$name - Can't connect to $ServerAddr:$ServerPortForClient: $err;"
             . " retrying in $wait s\n" if $wait >= 0.6;
        sleep $wait;
    }
}

# Send the packets and read until the server closes the connection.  The
# timeout applies between two I/O events.
sub _send_request {
    my ($block, $packets, $timeout) = @_;
    my $name = $block->name;

    local $SIG{PIPE} = 'IGNORE';

    my $sock = _connect($block, $timeout) or return undef;
    $sock->blocking(0);

    my @queue = @$packets;
    my $buf = (shift @queue)->{value};
    my $off = 0;
    my $writing = 1;
    my $resp = '';
    my $middle_delay = $block->raw_request_middle_delay;
    my $sel = IO::Select->new($sock);

    IO: while (1) {
        $! = 0;
        my ($r, $w) = IO::Select->select($sel, $writing ? $sel : undef,
                                         undef, $timeout);

        if (!$r && !$w) {
            next IO if $!{EINTR};

            close $sock;
            if (defined $block->abort) {
                sleep 0.005;
            } else {
                Test::More::fail("ERROR: client socket timed out - $name");
            }
            return $resp;
        }

        if ($w && @$w) {
            WRITE: while ($writing) {
                if ($off < length $buf) {
                    my $n = syswrite($sock, $buf, length($buf) - $off, $off);
                    if (!defined $n) {
                        last WRITE if $!{EAGAIN} || $!{EWOULDBLOCK}
                                      || $!{EINTR};
                        warn "WARNING: $name - write failed: $!\n";
                        $writing = 0;
                        last WRITE;
                    }
                    $off += $n;
                    next WRITE;
                }

                my $next = shift @queue;
                if (!$next) {
                    $writing = 0;
                    if (defined(my $how = $block->shutdown)) {
                        $how = 1 if $how !~ /\S/;
                        shutdown($sock, $how);
                    }
                    last WRITE;
                }

                my $delay = defined $next->{delay_before}
                            ? $next->{delay_before} : $middle_delay;
                sleep $delay if $delay;
                $buf = $next->{value};
                $off = 0;
            }
        }

        if ($r && @$r) {
            while (1) {
                my $n = sysread($sock, my $chunk, 16384);
                if (!defined $n) {
                    next IO if $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
                    warn "WARNING: $name - HTTP response read failure: $!\n";
                    last IO;
                }
                last IO if $n == 0;
                $resp .= $chunk;
            }
        }
    }

    close $sock;
    return $resp;
}

# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------

sub _parse_response {
    my ($name, $raw, $is_head) = @_;

    my %res = (code => undef, headers => [], raw_headers => '', body => '',
               left => undef);

    $res{raw_headers} = $1 if $raw =~ /(.*?\r\n)\r\n/s;

    my ($status_line, $rest) = $raw =~ /\A([^\n]*)\n?(.*)\z/s;
    return \%res unless defined $status_line && length $status_line;
    $status_line =~ s/\r\z//;

    my $code;
    if ($status_line =~ /^\d{3} /) {
        ($code) = split ' ', $status_line, 2;
    } else {
        (undef, $code) = split ' ', $status_line, 3;
    }
    $res{code} = $code if defined $code && $code =~ /^\d+$/;

    # headers
    while (length $rest) {
        if ($rest =~ s/\A\r?\n//) {
            last;
        } elsif ($rest =~ s/\A([^\s:]+)[ \t]*: ?([^\n]*)\n?//) {
            my ($k, $v) = ($1, $2);
            $v =~ s/\r\z//;
            push @{ $res{headers} }, [$k, $v];
        } elsif (@{ $res{headers} } && $rest =~ s/\A([ \t][^\n]*)\n?//) {
            (my $cont = $1) =~ s/\r\z//;
            $res{headers}[-1][1] .= "\n$cont";
        } else {
            last;
        }
    }

    my $body = $rest;
    $res{body} = $body;

    my $c = $res{code};
    return \%res if defined $c && ($c == 304 || $c == 101);

    my $te = _header(\%res, 'Transfer-Encoding');
    my $len = _header(\%res, 'Content-Length');

    if (defined $te && $te eq 'chunked') {
        my $decoded = '';
        my $ok = 0;
        pos($body) = 0;

        while (1) {
            if ($body =~ /\G0[ \t]*(?:;[^\r\n]*)?\r\n/gc) {
                # optional trailers, then the final CRLF
                1 while $body =~ /\G[^\r\n]+\r\n/gc;
                if ($body !~ /\G\r\n/gc) {
                    Test::More::fail("$name - invalid chunked data received"
                                     . " (expected CRLF after the last chunk)");
                    last;
                }
                $res{left} = substr($body, pos($body))
                    if pos($body) < length $body;
                $ok = 1;
                last;
            }

            if ($body =~ /\G[ \t]*([0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?\r\n/gc) {
                my $size = hex $1;
                my $at = pos($body);
                if (length($body) - $at < $size) {
                    Test::More::fail("$name - invalid chunked data received"
                                     . " (not enough octets for the data"
                                     . " section)");
                    $decoded .= substr($body, $at);
                    last;
                }
                $decoded .= substr($body, $at, $size);
                pos($body) = $at + $size;
                if ($body !~ /\G\r\n/gc) {
                    Test::More::fail("$name - invalid chunked data received"
                                     . " (expected CRLF).");
                    last;
                }
                next;
            }

            if ($body =~ /\G(.+)/gcs) {
                (my $bad = $1) =~ s/\r/\\r/g;
                $bad =~ s/\n/\\n/g;
                $bad = substr($bad, 0, 80) . '...' if length $bad > 80;
                Test::More::fail("$name - invalid chunked body received:"
                                 . " \"$bad\"");
            } else {
                Test::More::fail("$name - no last chunk found in the chunked"
                                 . " response");
            }
            last;
        }

        $res{body} = $decoded;

    } elsif (defined $len && $len =~ /^\s*(\d+)\s*$/) {
        my $n = $1;
        if (length $body < $n) {
            warn "WARNING: $name - response body truncated: $n expected, but"
                 . " got " . length($body) . "\n" unless $is_head;
        } elsif (length $body > $n) {
            $res{left} = substr($body, $n);
            $res{body} = substr($body, 0, $n);
        }
    }

    return \%res;
}

# Header lookup with HTTP::Headers semantics: case-insensitive, '_' is '-',
# repeated headers joined with ", ", undef when absent.
sub _header {
    my ($res, $key) = @_;
    my $norm = sub {
        my $k = lc shift;
        $k =~ tr/_/-/ unless $k =~ /^:/;
        return $k;
    };
    my $want = $norm->($key);
    my @vals = map { $_->[1] } grep { $norm->($_->[0]) eq $want }
               @{ $res->{headers} };
    return @vals ? join(', ', @vals) : undef;
}

sub _indexed {
    my ($name, $value, $i, $need_array) = @_;

    if (ref $value eq 'ARRAY') {
        bail_out("$name - SHOULD NOT HAPPEN: idx != 0 and don't need array.")
            if !$need_array && $i != 0;
        return $value->[$i];
    }

    if ($need_array) {
        bail_out("$name - You asked for many requests, the expected results"
                 . " should be arrays as well.");
    }

    return $value;
}

sub _check_error_code {
    my ($block, $res, $i, $need_array) = @_;
    my $name = $block->name;
    my $code = defined $res->{code} ? $res->{code} : '';

    if (defined $block->error_code_like) {
        my $v = _indexed($name, $block->error_code_like, $i, $need_array);
        Test::More::like($code, qr/$v/sm, "$name - status code ok");

    } elsif (defined $block->error_code) {
        my $v = _indexed($name, $block->error_code, $i, $need_array);
        Test::More::is($code, $v, "$name - status code ok");

    } else {
        Test::More::is($code, 200, "$name - status code ok");
    }
}

sub _check_raw_headers {
    my ($block, $res, $i, $need_array) = @_;
    my $name = $block->name;

    if (defined $block->raw_response_headers_like) {
        my $v = _indexed($name, $block->raw_response_headers_like, $i,
                         $need_array);
        Test::More::like($res->{raw_headers}, qr/$v/s,
                         "$name - raw resp headers like");
    }

    if (defined $block->raw_response_headers_unlike) {
        my $v = _indexed($name, $block->raw_response_headers_unlike, $i,
                         $need_array);
        Test::More::unlike($res->{raw_headers}, qr/$v/s,
                           "$name - raw resp headers unlike");
    }
}

# "Name: value" lines; "!Name" (or a line without a colon) means absent.
sub _parse_header_spec {
    my ($spec) = @_;
    my (@order, %val);

    for my $line (split /\n/, $spec // '') {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        my ($key, $v);
        if ($line =~ s/^!\s*//) {
            $key = $line;
        } else {
            ($key, $v) = split /\s*:\s*/, $line, 2;
        }
        push @order, $key unless exists $val{$key};
        $val{$key} = $v;
    }

    return map { [$_, $val{$_}] } @order;
}

sub _check_headers {
    my ($block, $res, $i, $need_array) = @_;
    my $name = $block->name;

    if (defined $block->response_headers) {
        my $spec = _indexed($name, $block->response_headers, $i, $need_array);
        for my $h (_parse_header_spec($spec)) {
            my ($key, $val) = @$h;
            if (!defined $val) {
                Test::More::unlike($res->{raw_headers}, qr/^\s*\Q$key\E\s*:/ms,
                    "$name - header $key not present in the raw headers");
                next;
            }
            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            my $got = _header($res, $key);
            Test::More::is(defined $got ? $got : '', $val,
                           "$name - header $key ok");
        }

    } elsif (defined $block->response_headers_like) {
        my $spec = _indexed($name, $block->response_headers_like, $i,
                            $need_array);
        for my $h (_parse_header_spec($spec)) {
            my ($key, $val) = @$h;
            $val = '' unless defined $val;
            my $got = _header($res, $key);
            Test::More::like(defined $got ? $got : '', qr/^$val$/,
                             "$name - header $key like ok");
        }
    }
}

sub _filter_body {
    my ($block, $res, $i) = @_;
    my $name = $block->name;
    my $filters = $block->response_body_filters;

    return unless defined $filters;

    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//gs;
        $filters = [ split /\s+/, $filters ];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [ $filters ];
    }

    if (ref $filters->[0] eq 'ARRAY') {
        $filters = $filters->[$i];
        bail_out("$name - --- response_body_filters has no entry for"
                 . " request $i") unless defined $filters;
        $filters = [ $filters ] unless ref $filters eq 'ARRAY';
    }

    my $body = $res->{body};
    for my $f (@$filters) {
        if (ref $f eq 'CODE') {
            $body = $f->($body);
        } elsif ($f eq 'uc') {
            $body = uc $body;
        } elsif ($f eq 'lc') {
            $body = lc $body;
        } elsif ($f eq 'ucfirst') {
            $body = ucfirst $body;
        } elsif ($f eq 'lcfirst') {
            $body = lcfirst $body;
        } elsif ($f eq 'length') {
            $body = length $body;
        } elsif ($f eq 'md5_hex') {
            require Digest::MD5;
            $body = Digest::MD5::md5_hex($body);
        } elsif ($f eq 'sha1_hex') {
            require Digest::SHA;
            $body = Digest::SHA::sha1_hex($body);
        } else {
            bail_out("$name - unknown filter \"$f\" in"
                     . " --- response_body_filters");
        }
    }

    $res->{body} = $body;
}

sub _check_body {
    my ($block, $res, $rep, $i, $need_array) = @_;
    my $name = $block->name;

    my $content = $res->{body};
    $content =~ s/^TE: deflate,gzip;q=0\.3\r\n//gm;
    $content =~ s/^Connection: TE, close\r\n//gm;

    if (defined $block->response_body) {
        my $expected = _indexed($name, $block->response_body, $i, $need_array);

        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            $expected = _expand($expected, $name);
        }

        if (ref $expected) {
            Test::More::like($content, $expected, "$name - response_body -"
                             . " like (repeated req $rep, req $i)");
        } else {
            _is_str($content, $expected, "$name - response_body - response is"
                    . " expected (repeated req $rep, req $i)");
        }

    } elsif (defined $block->response_body_like
             || defined $block->response_body_unlike)
    {
        my $like = defined $block->response_body_like;
        my $type = $like ? 'like' : 'unlike';
        my $pat = _indexed($name, $like ? $block->response_body_like
                                        : $block->response_body_unlike,
                           $i, $need_array);

        if (!ref $pat) {
            $pat =~ s/\$ServerPort\b/$ServerPort/g;
            $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        }

        (my $summary = $content) =~ s/^\s+|\s+$//g;
        $summary =~ s/\s+/ /g;
        $summary = substr($summary, 0, 100) . '...' if length $summary > 100;

        my $desc = "$name - response_body_$type - response is expected"
                   . " ($summary)";
        if ($like) {
            Test::More::like($content, qr/$pat/s, $desc);
        } else {
            Test::More::unlike($content, qr/$pat/s, $desc);
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $content, $i, $rep, 0);
    }
}

# ---------------------------------------------------------------------------
# The error log
# ---------------------------------------------------------------------------

sub _error_log_lines {
    # log-phase lines are written after the connection is closed
    sleep $TestNginxSleep * 3;

    open my $in, '<', $ErrLogFile or return [];
    seek $in, $ErrLogFilePos, 0 if !$CheckAccumErrLog && $ErrLogFilePos > 0;
    my @lines = <$in>;
    my $end = tell $in;
    close $in;

    $ErrLogFilePos = $end unless $CheckAccumErrLog;
    $ErrLogScanned = $end if $end > $ErrLogScanned;

    return \@lines;
}

# a block whose --- error_log expects "exited on signal" kills a worker
# on purpose: then that line is not fatal

sub _is_fatal_line {
    my ($line) = @_;
    return $line =~ /\bAssertion .*?failed\b/
           || $line =~ /ERROR: AddressSanitizer|LeakSanitizer/
           || $line =~ /: runtime error: /
           || (!$SignalExitExpected
               && $line =~ /\bworker process \d+ exited on signal \d+/);
}

sub _value_contains {
    my ($val, $str) = @_;
    return 0 unless defined $val;
    if (ref $val eq 'ARRAY') {
        for my $v (@$val) {
            return 1 if _value_contains($v, $str);
        }
        return 0;
    }
    return index("$val", $str) >= 0;
}

sub _patterns {
    my ($pats) = @_;
    if (!ref $pats) {
        chomp $pats;
        return [ split /\n+/, $pats ];
    }
    return [ $pats ] if ref $pats eq 'Regexp';
    return [ @$pats ] if ref $pats eq 'ARRAY';
    return [ $pats ];
}

sub _line_matches {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ $pat : index($line, $pat) >= 0;
}

sub _fmt {
    my ($s) = @_;
    $s = "$s";
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

sub _check_error_log {
    my ($block, $rep, $need_array, $must_die) = @_;
    my $name = $block->name;
    my $lines = _error_log_lines();

    my %warn_level = (alert => 1, crit => 1, emerg => !$must_die);

    # grep_error_log + grep_error_log_out
    my $grep = $block->grep_error_log;
    if (defined $grep) {
        $grep = $grep->[$rep] if ref $grep eq 'ARRAY';
    } elsif (defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but"
                 . " --- grep_error_log_out is defined");
    }

    if (defined $grep) {
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but"
                 . " --- grep_error_log is defined") unless defined $expected;

        $expected = _expand($expected, $name);
        $expected = $expected->[$rep] if ref $expected eq 'ARRAY';

        my $out = '';
        for my $line (@$lines) {
            my $m;
            if (ref $grep) {
                $m = $& if $line =~ $grep;
            } elsif (index($line, $grep) >= 0) {
                $m = $grep;
            }
            $out .= "$m\n" if defined $m && $m !~ /\n/;
        }

        my $desc = "$name - grep_error_log_out (req $rep)";
        if (ref $expected eq 'Regexp') {
            Test::More::like($out, $expected, $desc);
        } else {
            _is_str($out, $expected, $desc);
        }
    }

    for my $sec (qw(error_log no_error_log)) {
        my $v = $block->$sec;
        next unless defined $v;
        for my $lvl (keys %warn_level) {
            $warn_level{$lvl} = 0 if _value_contains($v, "[$lvl");
        }
    }

    if (defined $block->error_log) {
        for my $pat (@{ _patterns($block->error_log) }) {
            next unless defined $pat;
            my $p = _fmt($pat);
            if (grep { _line_matches($_, $pat) } @$lines) {
                Test::More::pass("$name - pattern \"$p\" matches a line in"
                                 . " error.log (req $rep)");
            } else {
                Test::More::fail("$name - pattern \"$p\" should match a line"
                                 . " in error.log (req $rep)");
            }
        }
    }

    if (defined $block->no_error_log) {
        for my $pat (@{ _patterns($block->no_error_log) }) {
            next unless defined $pat;
            my $p = _fmt($pat);
            my @hits = grep { _line_matches($lines->[$_], $pat) }
                       0 .. $#$lines;
            if (!@hits) {
                Test::More::pass("$name - pattern \"$p\" does not match a"
                                 . " line in error.log (req $rep)");
                next;
            }
            my $ln = _fmt($lines->[$hits[0]]);
            my $more = join '', @{$lines}[ $hits[0] + 1
                              .. List::Util::min($hits[0] + 9, $#$lines) ];
            Test::More::fail("$name - pattern \"$p\" should not match any line"
                             . " in error.log but matches line \"$ln\""
                             . " (req $rep)");
            Test::More::diag(scalar(@hits) . " matching line(s); the first is"
                             . " followed by:\n$more") if length $more;
        }
    }

    for my $line (@$lines) {
        for my $lvl (grep { $warn_level{$_} } keys %warn_level) {
            warn "WARNING: $name - " . _fmt($line) . "\n"
                if $line =~ /\[$lvl\]/;
        }
    }

    local $SignalExitExpected = $SignalsExpected || (defined $block->error_log
        && _value_contains($block->error_log, 'exited on signal'));
    my @fatal = grep { _is_fatal_line($_) } @$lines;
    if (@fatal) {
        chomp(my $l = $fatal[0]);
        Test::More::fail("$name - $l");
        Test::More::diag(scalar(@fatal) . " fatal line(s) in error.log:\n"
                         . join '', @fatal[0 .. List::Util::min($#fatal, 9)]);
    }
}

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

sub _expand {
    my ($text, $name) = @_;

    return $text if !defined $text || ref $text;

    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{_env_value($1, $name)}ge;
    return $text;
}

sub _env_value {
    my ($var, $name) = @_;

    if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
        if (!defined $RandPorts->{$var}) {
            my %used = ($ServerPort => 1, map { $_ => 1 } values %$RandPorts);
            my $port = _gen_rand_port(\%used);
            bail_out("$name - Cannot find an available listening port number"
                     . " for $var") unless defined $port;
            $RandPorts->{$var} = $port;
        }
        return $RandPorts->{$var};
    }

    bail_out("$name - No environment $var defined.") unless defined $ENV{$var};
    return $ENV{$var};
}

# A currently free TCP port outside the usual ephemeral range.
sub _gen_rand_port {
    my ($used) = @_;

    for (1 .. 1000) {
        my $port = 10000 + int rand 22000;
        next if $used->{$port};
        my $sock = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1',
            LocalPort => $port,
            Proto     => 'tcp',
            Listen    => 1,
            ReuseAddr => 1,
        );
        next unless $sock;
        close $sock;
        return $port;
    }

    return undef;
}

sub _parse_time {
    my ($t) = @_;
    return undef unless defined $t;
    $t =~ s/^\s+|\s+$//g;
    return $1 / 1000 if $t =~ /^([\d.]+)ms$/;
    return $1 if $t =~ /^([\d.]+)s?$/;
    return $t;
}

sub _shq {
    my ($s) = @_;
    return $s if $s =~ m{^[-\w./=:@%+,]+$};
    $s =~ s/'/'\\''/g;
    return "'$s'";
}

sub _slurp {
    my ($file) = @_;
    open my $in, '<', $file or return '';
    local $/;
    my $data = <$in>;
    close $in;
    return defined $data ? $data : '';
}

sub _tail_file {
    my ($file, $n) = @_;
    open my $in, '<', $file or return '';
    my $size = -s $in || 0;
    seek $in, $size - 65536, 0 if $size > 65536;
    my @lines = <$in>;
    close $in;
    shift @lines if $size > 65536 && @lines;   # partial first line
    @lines = @lines[-$n .. -1] if @lines > $n;
    my $text = join '', @lines;
    $text .= "\n" if length $text && $text !~ /\n\z/;
    return $text;
}

sub _esc {
    my ($s) = @_;
    $s =~ s/\\/\\\\/g;
    $s =~ s/"/\\"/g;
    $s =~ s/\n/\\n/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\t/\\t/g;
    $s =~ s/([\x00-\x1f\x7f])/sprintf('\\x%02x', ord $1)/ge;
    $s =~ s/([^\x00-\xff])/sprintf('\\x{%x}', ord $1)/ge;
    return $s;
}

# String equality with a readable explanation on failure.
sub _is_str {
    my ($got, $expected, $desc) = @_;

    if (ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }

    my $ok = (defined $got && defined $expected) ? $got eq $expected
                                                  : !defined $got
                                                    && !defined $expected;
    Test::More::ok($ok, $desc);
    Test::More::diag(_explain_diff($got, $expected)) unless $ok;
    return $ok;
}

sub _explain_diff {
    my ($got, $exp) = @_;

    return "     got: " . (defined $got ? '"' . _esc($got) . '"' : 'undef')
           . "\nexpected: " . (defined $exp ? '"' . _esc($exp) . '"' : 'undef')
        if !defined $got || !defined $exp;

    my $min = List::Util::min(length $got, length $exp);
    my $pos = 0;
    if ("$got$exp" =~ /[^\x00-\xff]/) {
        $pos++ while $pos < $min
                     && substr($got, $pos, 1) eq substr($exp, $pos, 1);
    } elsif (($got ^ $exp) =~ /^(\0*)/) {
        $pos = length $1;
    }
    $pos = $min if $pos > $min;

    my $before = substr($got, 0, $pos);
    my $line = 1 + ($before =~ tr/\n//);
    my $col = $pos - rindex($before, "\n");

    my $msg = sprintf("strings differ at offset %d (line %d, column %d);"
                      . " got %d bytes, expected %d bytes\n",
                      $pos, $line, $col, length $got, length $exp);

    if ($NoLongString && length($got) + length($exp) < 8000) {
        $msg .= "     got: \"" . _esc($got) . "\"\n"
              . "expected: \"" . _esc($exp) . "\"\n";

    } else {
        my $from = $pos > 30 ? $pos - 30 : 0;
        my $cut = sub {
            my ($s) = @_;
            my $part = substr($s, $from, 70);
            return ($from ? '...' : '') . '"' . _esc($part) . '"'
                   . ($from + 70 < length $s ? '...' : '');
        };
        $msg .= "     got: " . $cut->($got) . "\n"
              . "expected: " . $cut->($exp) . "\n";
    }

    if (!$ENV{TEST_SHOW_NO_DIFFS} && ($got =~ /\n./s || $exp =~ /\n./s)
        && eval { require Text::Diff; 1 })
    {
        my $diff = Text::Diff::diff(\$exp, \$got,
                                    { STYLE => 'Unified', CONTEXT => 2 });
        $diff =~ s/\r/\\r/g;
        $msg .= "--- expected\n+++ got\n$diff" if length $diff;
    }

    $msg =~ s/\n\z//;
    return $msg;
}

END {
    if ($Started && $$ == $MainPid) {
        local $?;
        _run_cleanup_handlers();

        if (!$ENV{TEST_NGINX_NO_CLEAN} || $UseValgrind) {
            _stop_nginx($RunningBlock);
        }

        if ($Randomize && !$ENV{TEST_NGINX_NO_CLEAN} && defined $ServRoot
            && $ServRoot =~ m{/t/servroot_\d+$} && -d $ServRoot)
        {
            File::Path::remove_tree($ServRoot);
        }
    }
}

# ---------------------------------------------------------------------------
# eval filter that refuses to hide Perl errors
# ---------------------------------------------------------------------------

package Test::Nginx::Socket::Filter;

our @ISA = ('Test::Base::Filter');

sub eval {
    my $self = shift;
    my @ret = $self->SUPER::eval(@_);
    if ($@) {
        my $err = $@;
        my $block = $self->current_block;
        my $bname = $block ? $block->name : 'unknown block';
        Test::Nginx::Socket::bail_out("$bname - an eval section failed:"
            . " $err(eval sections run in package Test::Base::Filter under"
            . " 'use strict'; refer to script variables as \$::Name)");
    }
    return @ret;
}

1;
