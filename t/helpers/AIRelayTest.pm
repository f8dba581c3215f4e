package AIRelayTest;

# Test helpers for ngx_ai_relay's Test::Nginx suite: a tiny Redis client
# (RESP over a socket, binary safe) and the seeding of users, keys, models,
# channels and prices in the layout README.md describes.
#
# Kept apart from t/lib (our Test::Nginx::Socket runner) so that the .t
# files also run under the real Test::Nginx:
#     use lib 't/helpers'; use AIRelayTest;

use strict;
use warnings;

use IO::Socket::INET;
use IO::Select;
use Digest::SHA qw(sha256_hex);
use JSON::PP ();
use Exporter 'import';
use Time::HiRes qw(sleep);
use POSIX ();

our @EXPORT = qw(redis redis_ok key_hash reset_redis seed_user seed_key
                 seed_model seed_alias seed_channel seed_price seed_world
                 mock_url user_field key_field records last_record
                 wait_for $TEST_KEY $TEST_KEY2 $REDIS_PORT $SERVER_PORT);

our $REDIS_PORT = $ENV{TEST_NGINX_REDIS_PORT} || 6399;
our $SERVER_PORT = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
                   || 1984;

our $TEST_KEY = 'sk-test0000000000000000000000000000000000000000001';
our $TEST_KEY2 = 'sk-test0000000000000000000000000000000000000000002';

my $sock;

sub _connect {
    return $sock if $sock && $sock->connected;
    $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $REDIS_PORT,
                                  Proto => 'tcp', Timeout => 3)
        or die "cannot connect to redis on port $REDIS_PORT: $!\n";
    binmode $sock;
    return $sock;
}

sub _line {
    my ($s) = @_;
    my $line = '';
    while (1) {
        my $c;
        my $n = sysread($s, $c, 1);
        die "redis closed the connection\n" unless $n;
        $line .= $c;
        last if $line =~ /\r\n$/;
    }
    $line =~ s/\r\n$//;
    return $line;
}

sub _read {
    my ($s, $want) = @_;
    my $buf = '';
    while (length($buf) < $want) {
        my $n = sysread($s, $buf, $want - length($buf), length($buf));
        die "redis closed the connection\n" unless $n;
    }
    return $buf;
}

sub _reply {
    my ($s) = @_;
    my $line = _line($s);
    my $t = substr($line, 0, 1, '');
    return $line if $t eq '+';
    die "redis error: $line\n" if $t eq '-';
    return $line + 0 if $t eq ':';
    if ($t eq '$') {
        return undef if $line < 0;
        my $data = _read($s, $line + 2);
        return substr($data, 0, $line);
    }
    if ($t eq '*') {
        return undef if $line < 0;
        return [ map { _reply($s) } 1 .. $line ];
    }
    die "bad redis reply type '$t'\n";
}

# Redis Cluster: the node a MOVED redirection named, by port
my %node_sock;

sub _node {
    my ($port) = @_;
    return $node_sock{$port}
        if $node_sock{$port} && $node_sock{$port}->connected;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 3)
        or die "cannot connect to redis on port $port: $!\n";
    binmode $s;
    return $node_sock{$port} = $s;
}

# redis('HSET', 'key', 'f', 'v') -> the reply (arrays as array refs);
# $REDIS_PORT may be a Redis Cluster node: MOVED is followed
sub redis {
    my @args = @_;
    my $cmd = '*' . scalar(@args) . "\r\n";
    $cmd .= '$' . length($_) . "\r\n$_\r\n" for map { defined $_ ? $_ : '' } @args;
    my $port;
    for my $try (1 .. 4) {
        my $s = defined $port ? _node($port) : _connect();
        my $r = eval { print $s $cmd or die "write failed\n"; [ _reply($s) ] };
        return $r->[0] if $r;
        if ($@ =~ /^redis error: MOVED \d+ [0-9.]+:(\d+)/) {
            $port = $1;
            next;
        }
        if ($@ =~ /^redis error: ASK \d+ [0-9.]+:(\d+)/) {
            # a slot on its way: this once, on the node it goes to
            my $n = _node($1);
            print $n "*1\r\n\$6\r\nASKING\r\n";
            _reply($n);
            $port = $1;
            next;
        }
        die $@ if $@ =~ /^redis error/ || $try >= 2;
        # Redis was restarted: reconnect once
        if (defined $port) { delete $node_sock{$port} } else { undef $sock }
    }
    die "redis: too many redirections\n";
}

sub redis_ok { my $r = eval { redis('PING') }; return defined $r && $r eq 'PONG' }

sub key_hash { return sha256_hex($_[0]) }

sub reset_redis { redis('FLUSHALL'); return }

sub mock_url {
    my ($path) = @_;
    return "http://127.0.0.1:$SERVER_PORT$path";
}

# seed_user(1, balance => 10_000_000, unlimited => 0, status => 'active')
sub seed_user {
    my ($uid, %o) = @_;
    redis('HSET', "ar:{u$uid}:user", name => $o{name} // "user$uid",
          status => $o{status} // 'active', balance => $o{balance} // 0,
          unlimited => $o{unlimited} // 0, group => 'default',
          created => 1700000000);
    redis('SADD', 'ar:users', $uid);
    return;
}

# seed_key(1, $key, id => 7, models => 'a,b', rpm => 0, ...)
sub seed_key {
    my ($uid, $key, %o) = @_;
    my $h = key_hash($key);
    my $masked = substr($key, 0, 5) . "\xe2\x80\xa6" . substr($key, -4);
    my $id = $o{id} // 1;
    redis('HSET', "ar:{u$uid}:key:$h", id => $id, name => $o{name} // "key$id",
          masked => $masked, status => $o{status} // 'active',
          expires => $o{expires} // 0, models => $o{models} // '',
          rpm => $o{rpm} // 0, tpm => $o{tpm} // 0,
          quota => $o{quota} // -1, unlimited => $o{unlimited} // 0,
          created => 1700000000);
    redis('SADD', "ar:{u$uid}:keys", $h);
    redis('SET', "ar:keyidx:$h", $uid);
    redis('SET', "ar:keyid:$id", "$uid:$h");
    return;
}

# seed_model('gpt-4o-mini', channels => '1,2')
sub seed_model {
    my ($name, %o) = @_;
    redis('HSET', "ar:{cfg}:model:$name", channels => $o{channels} // '1',
          owned_by => $o{owned_by} // 'ai-relay', created => $o{created} // 0,
          ($o{hidden} ? (hidden => 1) : ()));
    redis('SADD', 'ar:{cfg}:models', $name);
    redis('INCR', 'ar:{cfg}:version');
    return;
}

sub seed_alias {
    my ($name, $target) = @_;
    redis('HSET', "ar:{cfg}:model:$name", alias => $target);
    redis('SADD', 'ar:{cfg}:models', $name);
    redis('INCR', 'ar:{cfg}:version');
    return;
}

# seed_channel(1, base_url => mock_url('/mock/chat'), keys => ['k1','k2'],
#              provider => 'openai', priority => 0, weight => 1,
#              status => 'enabled', map => { 'gpt-4o-mini' => 'real-name' })
sub seed_channel {
    my ($id, %o) = @_;
    my @map = map { ("map:$_" => $o{map}{$_}) } keys %{ $o{map} || {} };
    redis('HSET', "ar:{cfg}:channel:$id", name => $o{name} // "channel$id",
          provider => $o{provider} // 'openai',
          base_url => $o{base_url} // mock_url('/mock/chat'),
          keys => join("\n", @{ $o{keys} // ["upstream-key-$id"] }),
          priority => $o{priority} // 0, weight => $o{weight} // 1,
          status => $o{status} // 'enabled', @map);
    redis('SADD', 'ar:{cfg}:channels', $id);
    redis('INCR', 'ar:{cfg}:version');
    return;
}

# seed_price('gpt-4o-mini', input => 150000, output => 600000)  (uUSD / 1M)
sub seed_price {
    my ($model, %o) = @_;
    redis('HSET', "ar:{cfg}:price:$model", %o);
    redis('INCR', 'ar:{cfg}:version');
    return;
}

# the usual world: user 1 with $10, $TEST_KEY, model gpt-4o-mini on
# channel 1 pointing at the given mock path, priced $0.15 / $0.60 per 1M
sub seed_world {
    my (%o) = @_;
    reset_redis();
    seed_user(1, balance => $o{balance} // 10_000_000,
              unlimited => $o{unlimited} // 0);
    seed_key(1, $TEST_KEY, id => 1, %{ $o{key} || {} });
    seed_channel(1, base_url => mock_url($o{mock} // '/mock/chat'),
                 keys => $o{upstream_keys} // ['upstream-key-1'],
                 %{ $o{channel} || {} });
    seed_model('gpt-4o-mini', channels => '1');
    seed_price('gpt-4o-mini', input => 150000, output => 600000,
               %{ $o{price} || {} });
    return;
}

sub user_field { return redis('HGET', "ar:{u$_[0]}:user", $_[1]) }

sub key_field {
    my ($uid, $key, $f) = @_;
    return redis('HGET', "ar:{u$uid}:key:" . key_hash($key), $f);
}

# records of a user, oldest first, each a hash ref
sub records {
    my ($uid) = @_;
    my $r = redis('XRANGE', "ar:{u$uid}:log", '-', '+');
    # an entry holds the records of one settlement: an "r" field each
    my @recs;
    for my $e (@$r) {
        my @f = @{ $e->[1] };
        while (my ($name, $value) = splice(@f, 0, 2)) {
            next unless $name eq 'r';
            my $rec = JSON::PP->new->decode($value);
            $_ = defined $_ ? "$_" : undef for values %$rec;   # compare as text
            push @recs, $rec;
        }
    }
    return @recs;
}

sub last_record {
    my @r = records($_[0]);
    return $r[-1];
}

# poll until $cond->() is true (settlement happens after the response)
sub wait_for {
    my ($cond, $secs) = @_;
    $secs //= 3;
    for (1 .. $secs * 50) {
        return 1 if $cond->();
        sleep 0.02;
    }
    return 0;
}

1;

package AIRelayTest;

push @EXPORT, qw(http_config relay_config);

# http{} lines every relay test needs
sub http_config {
    my (%o) = @_;
    my $redis = $o{redis} // "127.0.0.1:$REDIS_PORT";
    my $timeout = $o{timeout} // '500ms';
    # in the block's own server root, never the built-in default (which is
    # the system nginx's folder, /var/lib/nginx/ai_relay)
    my $journal = $o{journal} // 'logs/ai_relay.journal';
    return <<"_EOC_" . ($o{extra} // '');
    ai_relay_redis $redis;
    ai_relay_redis_timeout $timeout;
    ai_relay_redis_connect_timeout $timeout;
    ai_relay_journal $journal;
_EOC_
}

# server{} lines: the three relay locations and the mock upstreams
sub relay_config {
    my (%o) = @_;
    my $relay = $o{relay} // '';
    return <<"_EOC_" . ($o{extra} // '');
    location /v1/ {
        ai_relay openai;
        $relay
        proxy_pass \$ai_relay_upstream_url;
        proxy_buffering off;
        proxy_read_timeout 2s;
    }

    location /v1/messages {
        ai_relay anthropic;
        $relay
        proxy_pass \$ai_relay_upstream_url;
        proxy_buffering off;
    }

    location /v1beta/ {
        ai_relay gemini;
        $relay
        proxy_pass \$ai_relay_upstream_url;
        proxy_buffering off;
    }

    # a provider answering a chat completion with usage
    location /mock/chat/ {
        echo_read_request_body;
        default_type application/json;
        echo '{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}';
    }

    # what the upstream received, headers and body
    location /mock/echo/ {
        echo_read_request_body;
        default_type text/plain;
        echo -n \$echo_client_request_headers;
        echo_request_body;
    }

    # an OpenAI stream, event by event, usage chunk when asked for
    location /mock/sse/ {
        echo_read_request_body;
        default_type text/event-stream;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}],"usage":null}';
        echo;
        echo_flush;
        echo_sleep 0.01;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}],"usage":null}';
        echo;
        echo_flush;
        echo_sleep 0.01;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}';
        echo;
        echo 'data: [DONE]';
        echo;
    }
_EOC_
}

1;

package AIRelayTest;

push @EXPORT, qw(install_redis_check);

# A block's "--- redis_check" section is Perl run after its last request,
# with Test::More and these helpers in scope: it asserts what Redis holds.
sub install_redis_check {
    # our runner warns about sections it does not know; this one is ours
    $Test::Nginx::Socket::Known{redis_check} = 1;

    # Run after every repetition's requests, whatever the response checks
    # do: a response check is skipped with --- ignore_response, which is
    # every block where the client or the upstream goes away.  The real
    # Test::Nginx runs a repetition in run_test_helper, our runner in
    # _run_requests; the one that exists is wrapped.
    no strict 'refs';
    no warnings qw(redefine prototype);
    my ($name) = grep { defined &{"Test::Nginx::Socket::$_"} }
                 qw(run_test_helper _run_requests);
    die "install_redis_check: no per-request runner to wrap\n"
        unless $name;
    my $orig = \&{"Test::Nginx::Socket::$name"};
    *{"Test::Nginx::Socket::$name"} = sub {
        my ($block, $flag) = @_;
        my @r = $orig->(@_);
        # run_test_helper's second argument is "dry run"
        _redis_check($block)
            unless $name eq 'run_test_helper' && $flag;
        return wantarray ? @r : $r[0];
    };
}

sub _redis_check {
    my ($block) = @_;
    return unless $block->can('redis_check');
    my $code = $block->redis_check;
    return unless defined $code && length $code;
    my $name = $block->name;
    eval "package main; use Test::More; use Time::HiRes qw(sleep); "
         . "AIRelayTest->import; "
         . "#line 1 \"$name --- redis_check\"\n$code; 1"
        or Test::More::fail("$name - redis_check died: $@");
}

1;

package AIRelayTest;

push @EXPORT, qw(http_request relay_post stream_with);

# A minimal HTTP/1.1 client for tests that need many requests quickly:
# returns (status, headers, body); Connection: close, chunked decoded.
sub http_request {
    my ($method, $path, $headers, $body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $SERVER_PORT, Proto => 'tcp',
                                  Timeout => 10)
        or die "cannot connect to nginx on $SERVER_PORT: $!\n";
    binmode $s;
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
              . "Connection: close\r\n";
    $req .= "$_\r\n" for @{ $headers || [] };
    $req .= 'Content-Length: ' . length($body) . "\r\n" if defined $body;
    $req .= "\r\n" . ($body // '');
    print $s $req;
    my $res = '';
    while (1) {
        my $n = sysread($s, $res, 65536, length $res);
        last unless $n;
    }
    close $s;
    my ($head, $rest) = split /\r\n\r\n/, $res, 2;
    my ($status) = $head =~ m{^HTTP/1\.\d (\d+)};
    $rest //= '';
    if ($head =~ /^transfer-encoding:\s*chunked/mi) {
        my $out = '';
        while ($rest =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($rest, 0, $len, '');
            $rest =~ s/^\r\n//;
        }
        $rest = $out;
    }
    return ($status, $head, $rest);
}

# stream_with($json, $then): POST a streamed chat completion, run $then
# once its first event arrived (AUTH is done, the upstream is answering),
# read the rest; -> (status, body).  Faults injected this way land after
# the admission and before the settlement, however slow the machine.
sub stream_with {
    my ($json, $then, $key) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $SERVER_PORT, Proto => 'tcp',
                                  Timeout => 30)
        or die "cannot connect to nginx on $SERVER_PORT: $!\n";
    binmode $s;
    print $s "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
             . "Connection: close\r\nContent-Type: application/json\r\n"
             . 'Authorization: Bearer ' . ($key // $TEST_KEY) . "\r\n"
             . 'Content-Length: ' . length($json) . "\r\n\r\n$json";
    my ($res, $done) = ('', 0);
    while (sysread($s, $res, 65536, length $res)) {
        if (!$done && $res =~ /data: /) {
            $done = 1;
            $then->();
        }
    }
    close $s;
    my ($status) = $res =~ m{^HTTP/1\.\d (\d+)};
    return ($status, $res);
}

# relay_post('/v1/chat/completions', $json, $key) -> (status, head, body)
sub relay_post {
    my ($path, $json, $key) = @_;
    return http_request('POST', $path,
                        ['Authorization: Bearer ' . ($key // $TEST_KEY),
                         'Content-Type: application/json'], $json);
}

1;

package AIRelayTest;

push @EXPORT, qw(redis_sleep_in_background redis_restart);

# DEBUG SLEEP in a child process: Redis stops answering for $secs
sub redis_sleep_in_background {
    my ($secs) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        undef $sock;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $REDIS_PORT, Proto => 'tcp');
        print $s "*3\r\n\$5\r\nDEBUG\r\n\$5\r\nSLEEP\r\n\$"
                 . length($secs) . "\r\n$secs\r\n";
        my $buf;
        sysread($s, $buf, 100);
        POSIX::_exit(0);
    }
    sleep 0.05;   # let the DEBUG SLEEP reach Redis first
    return $pid;
}

# A TCP relay on $port in front of the test Redis that loses one reply:
# the (skip + 1)-th chunk from a client that contains $match goes to
# Redis, Redis answers it (so the command ran), and the relay then closes
# the client's connection without passing the answer on.  Other chunks
# and every later connection pass both ways untouched.  Bounded by
# lifetime (seconds); returns the relay's pid.
sub redis_losing_relay {
    my ($port, $match, %o) = @_;
    my $skip = $o{skip} // 0;
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $port, Listen => 16,
                                    ReuseAddr => 1)
        or die "redis relay on $port: $!\n";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid) {
        close $srv;
        return $pid;
    }
    undef $sock;
    local $SIG{ALRM} = sub { POSIX::_exit(0) };
    alarm($o{lifetime} // 20);
    my (%peer, $cut);
    my $sel = IO::Select->new($srv);
    for (;;) {
        for my $h ($sel->can_read) {
            if ($h == $srv) {
                my $c = $srv->accept or next;
                my $r = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                              PeerPort => $REDIS_PORT)
                    or do { close $c; next };
                @peer{$c, $r} = ($r, $c);
                $sel->add($c, $r);
                next;
            }
            my $other = $peer{$h} or next;
            my $buf;
            my $n = sysread($h, $buf, 65536);
            if (!$n) {
                $sel->remove($h, $other);
                delete @peer{$h, $other};
                close $h;
                close $other;
                next;
            }
            my $to_redis = $other->peerport == $REDIS_PORT;
            if ($to_redis && !$cut && index($buf, $match) >= 0
                && $skip-- <= 0)
            {
                # let Redis run it, swallow the answer, drop the client
                $cut = 1;
                syswrite($other, $buf);
                my $reply;
                sysread($other, $reply, 65536);
                $sel->remove($h, $other);
                delete @peer{$h, $other};
                close $other;
                close $h;
                next;
            }
            syswrite($other, $buf);
        }
    }
}

# stop the test Redis, run $during->(), start it again (empty)
sub redis_restart {
    my ($during) = @_;
    undef $sock;
    system("t/redis.sh stop $REDIS_PORT") == 0 or die "redis stop failed\n";
    $during->() if $during;
    system("t/redis.sh start $REDIS_PORT") == 0 or die "redis start failed\n";
    return;
}

1;

package AIRelayTest;

use File::Basename ();
use Cwd ();

push @EXPORT, qw(fixture fixture_config without_usage_chunk seed_fixture
                 expect_bill $TOP @PRICES);

our $TOP = Cwd::abs_path(File::Basename::dirname(__FILE__) . '/../..');

# prices used by the usage tests, micro-USD per 1M tokens: 1 USD input,
# 0.10 cached, 1.25 cache write 5m, 2 cache write 1h, 4 output
our @PRICES = (input => 1_000_000, cached_input => 100_000,
               cache_write => 1_250_000, cache_write_1h => 2_000_000,
               output => 4_000_000);

sub fixture {
    my ($name) = @_;
    open my $fh, '<:raw', "$TOP/t/unit/fixtures/$name"
        or die "fixture $name: $!\n";
    local $/;
    return scalar <$fh>;
}

# mock upstream answering any path under /fx/<fixture file>/ with the file
sub fixture_config {
    return <<"_EOC_";
    location ~ ^/fx/(?<fx>[^/]+)/ {
        proxy_method GET;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_pass http://127.0.0.1:$SERVER_PORT/fixtures/\$fx;
    }

    location /fixtures/ {
        alias $TOP/t/unit/fixtures/;
        types {
            text/event-stream sse;
            application/json json;
        }
    }
_EOC_
}

# the stream as a client that did not ask for usage sees it
sub without_usage_chunk {
    my ($sse) = @_;
    my @events = split /(?<=\n\n)/, $sse;
    return join '', grep { !/"choices":\[\],"usage":\{/ } @events;
}

sub seed_fixture {
    my ($file, %o) = @_;
    my $price = delete $o{price} || {};
    seed_world(mock => "/fx/$file", price => { @PRICES, %$price }, %o);
    return;
}

# the record of the last request, and the balance, match this usage
sub expect_bill {
    my (%u) = @_;
    my $n = $u{records} // 1;
    Test::More::ok(wait_for(sub { records(1) == $n }), "$n record(s)");
    my $r = last_record(1);
    my %p = @PRICES;
    my $prompt = $u{prompt} // 0;
    my $cached = $u{cached} // 0;
    my $cw5 = $u{cw5m} // 0;
    my $cw1 = $u{cw1h} // 0;
    my $uncached = $prompt - $cached - $cw5 - $cw1;
    $uncached = 0 if $uncached < 0;
    my $sum = $uncached * $p{input} + $cached * $p{cached_input}
              + $cw5 * $p{cache_write} + $cw1 * $p{cache_write_1h}
              + ($u{completion} // 0) * $p{output};
    my $cost = int(($sum + 999_999) / 1_000_000) + ($u{extra} // 0);
    $cost = $u{cost} if defined $u{cost};
    Test::More::is($r->{prompt_tokens}, $prompt, 'prompt tokens');
    Test::More::is($r->{cached_tokens}, $cached, 'cached tokens');
    Test::More::is($r->{cache_write_tokens}, $cw5 + $cw1,
                   'cache write tokens');
    Test::More::is($r->{completion_tokens}, $u{completion} // 0,
                   'completion tokens');
    Test::More::is($r->{reasoning_tokens}, $u{reasoning} // 0,
                   'reasoning tokens');
    Test::More::is($r->{cost}, $cost, "cost $cost micro-USD");
    Test::More::is($r->{usage_source}, $u{source} // 'upstream',
                   'usage source');
    Test::More::is(user_field(1, 'balance'),
                   ($u{start} // 10_000_000) - $cost,
                   'balance went down by exactly the cost');
    Test::More::is(redis('HLEN', 'ar:{u1}:res'), 0, 'no reservation left');
    return $r;
}

1;

package AIRelayTest;

use Socket qw(SOL_SOCKET SO_LINGER);

push @EXPORT, qw(free_port raw_upstream later nginx_pids error_log_text
                 kill_worker);

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1, ReuseAddr => 1) or die $!;
    my $port = $s->sockport;
    close $s;
    return $port;
}

# A one-shot upstream on $port: reads the request, writes $bytes (sent in
# pieces split at "\n\n" with a pause), then resets the connection.
sub raw_upstream {
    my ($port, $bytes, %o) = @_;
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $port, Listen => 5,
                                    ReuseAddr => 1)
        or die "raw upstream on $port: $!\n";
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if ($pid) {
        close $srv;
        return $pid;
    }
    undef $sock;
    local $SIG{ALRM} = sub { POSIX::_exit(0) };
    alarm($o{lifetime} // 10);
    my $c = $srv->accept or POSIX::_exit(0);
    my $req = '';
    while ($req !~ /\r\n\r\n/) {
        sysread($c, $req, 4096, length $req) or last;
    }
    for my $piece (split /(?<=\n\n)/, $bytes) {
        syswrite($c, $piece);
        sleep($o{pause} // 0.05);
    }
    if ($o{reset}) {
        setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
    }
    close $c;
    POSIX::_exit(0);
}

# run $code in a child process after $secs
sub later {
    my ($secs, $code) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    return $pid if $pid;
    undef $sock;
    sleep $secs;
    $code->();
    POSIX::_exit(0);
}

# the test nginx's error log so far (for assertions in --- redis_check,
# which runs after the block's own --- error_log checks)
sub error_log_text {
    my $root = $ENV{TEST_NGINX_SERVROOT} || "$TOP/t/servroot";
    open my $fh, '<', "$root/logs/error.log" or return '';
    local $/;
    return <$fh>;
}

# SIGKILL a worker from --- redis_check: our runner then expects its
# "exited on signal 9" line (the real Test::Nginx ignores the variable)
sub kill_worker {
    my ($pid) = @_;
    no warnings 'once';
    $Test::Nginx::Socket::SignalsExpected = 1;
    return kill 'KILL', $pid;
}

# pids of the test nginx: (master, workers...) from the servroot
sub nginx_pids {
    my $root = $ENV{TEST_NGINX_SERVROOT} || "$TOP/t/servroot";
    open my $fh, '<', "$root/logs/nginx.pid" or return ();
    chomp(my $master = <$fh>);
    my @workers = grep { $_ != $master }
                  map { /^\s*(\d+)/ ? $1 : () }
                  `ps -o pid= --ppid $master 2>/dev/null`;
    return ($master, @workers);
}

1;

package AIRelayTest;

push @EXPORT, qw(cli import_fixture);

# run the operator CLI against the test Redis; dies on failure
sub cli {
    my @args = @_;
    my $bin = $ENV{TEST_NGINX_CLI} || "$TOP/build/ai-relay";
    my $out = `$bin --redis 127.0.0.1:$REDIS_PORT @args 2>&1`;
    die "ai-relay @args failed ($?): $out" if $?;
    return $out;
}

# a One API / New API SQLite database from the CLI tests' fixtures, with
# the channels in @$mock_channels pointed at the mock upstream, imported
sub import_fixture {
    my ($from, $mock_channels) = @_;
    unshift @INC, "$TOP/t/cli/lib";
    require AiRelayFixtures;
    my $db = "$TOP/build/import-$from.db";
    unlink $db;
    my @sql = $from eq 'one-api'
              ? (AiRelayFixtures::one_api_schema('sqlite'),
                 AiRelayFixtures::one_api_rows())
              : (AiRelayFixtures::new_api_schema('sqlite'),
                 AiRelayFixtures::new_api_rows());
    for my $id (@$mock_channels) {
        push @sql, "UPDATE `channels` SET `base_url` = '"
                   . mock_url('/mock/chat') . "' WHERE `id` = $id;";
    }
    open my $fh, '|-', 'sqlite3', $db or die "sqlite3: $!";
    print $fh "$_\n" for @sql;
    close $fh or die "sqlite3 failed\n";
    reset_redis();
    return cli('import', '--from', $from, '--sqlite', $db);
}

1;

package AIRelayTest;

push @EXPORT, qw(lua_script run_script redis_snapshot);

# A Redis script as the module sends it: src/lua/<name>.lua without its
# leading documentation (its first lines that are "--" comments or
# empty), after the names of src/ngx_ai_relay_schema.h it uses, made by
# src/lua/mkheader.sh as for the module's header.
sub lua_script {
    my ($name) = @_;
    open my $fh, '-|:raw', 'sh', "$TOP/src/lua/mkheader.sh", '-l',
         "$TOP/src/lua/$name.lua"
        or die "script $name: $!\n";
    local $/;
    my $src = <$fh>;
    close $fh or die "script $name: mkheader.sh failed\n";
    return $src;
}

# run_script('auth', [KEYS], ARGV...): EVALSHA, as the module runs it,
# after a SCRIPT LOAD that must answer the SHA1 of the text
my %script_sha;

sub run_script {
    my ($name, $keys, @argv) = @_;
    for my $try (1, 2) {
        my $sha = $script_sha{$name} //= do {
            my $src = lua_script($name);
            my $sha = redis('SCRIPT', 'LOAD', $src);
            die "SCRIPT LOAD $name answered $sha\n"
                unless $sha eq Digest::SHA::sha1_hex($src);
            $sha;
        };
        my @r = eval { redis('EVALSHA', $sha, scalar(@$keys), @$keys, @argv) };
        return $r[0] unless $@;
        die $@ unless $@ =~ /NOSCRIPT/ && $try == 1;
        delete $script_sha{$name};   # Redis restarted: load it again
    }
}

# everything Redis holds, as one text (TTLs left out): equal snapshots
# before and after a script mean it changed nothing
sub redis_snapshot {
    my @out;
    for my $k (sort @{ redis('KEYS', '*') }) {
        my $t = redis('TYPE', $k);
        my $v = $t eq 'string' ? redis('GET', $k)
              : $t eq 'hash' ? do { my %h = @{ redis('HGETALL', $k) };
                                    join ',', map { "$_=$h{$_}" } sort keys %h }
              : $t eq 'set' ? join ',', sort @{ redis('SMEMBERS', $k) }
              : $t eq 'stream' ? join ',', map { "$_->[0]:@{ $_->[1] }" }
                                 @{ redis('XRANGE', $k, '-', '+') }
              : '?';
        push @out, "$k ($t) $v";
    }
    return join "\n", @out;
}

1;
