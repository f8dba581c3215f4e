# Metrics: "ai_relay_metrics" answers Prometheus' text format from the
# shared zone.  A known workload (answers, streams, the relay's own
# refusals, an upstream error) moves each counter by an exact amount;
# every line of the answer is well formed, each family is announced once;
# label values are escaped; promtool agrees where it is installed.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(2);
plan tests => repeat_each() * 103;
master_on();
workers(1);
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();

our $Config = relay_config(extra => <<'_EOC_');
    location = /metrics {
        ai_relay_metrics;
    }

    # a stream that stays open after its first event
    location /mock/hold/ {
        echo_read_request_body;
        default_type text/event-stream;
        echo 'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}],"usage":null}';
        echo;
        echo_flush;
        echo_sleep 10;
        echo 'data: [DONE]';
        echo;
    }

    # an upstream failing with its own error
    location /mock/fail/ {
        echo_read_request_body;
        default_type application/json;
        return 500 '{"error":{"message":"The server had an error","type":"server_error"}}';
    }
_EOC_

# the world of these tests: gpt-4o-mini answers (channel 1), gpt-stream
# streams (channel 2), gpt-bad fails (channel 3)
sub seed {
    seed_world();
    seed_channel(2, base_url => mock_url('/mock/sse'));
    seed_channel(3, base_url => mock_url('/mock/fail'));
    seed_model('gpt-stream', channels => '2');
    seed_model('gpt-bad', channels => '3');
    seed_channel(4, base_url => mock_url('/mock/hold'));
    seed_model('gpt-hold', channels => '4');
    seed_price('gpt-hold', input => 150000, output => 600000);
    seed_price('gpt-stream', input => 150000, output => 600000);
    seed_price('gpt-bad', input => 150000, output => 600000);
}

# gpt-fo: channel 5 fails first (the higher tier), channel 6 answers
sub seed_failover {
    seed_channel(5, base_url => mock_url('/mock/fail'), priority => 10);
    seed_channel(6, base_url => mock_url('/mock/chat'), priority => 0);
    seed_model('gpt-fo', channels => '5,6');
    seed_price('gpt-fo', input => 150000, output => 600000);
}

# GET /metrics: (status, head, body)
sub scrape_raw { return http_request('GET', '/metrics') }

# The exposition checked line by line; returns { 'name{labels}' => value }
# and the list of problems found.
sub parse {
    my ($text) = @_;
    my (%v, %help, %type, @bad);
    my $label = qr/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"/;
    my $value = qr/[-+]?(?:[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|Inf|NaN)/;
    push @bad, 'no final line feed' unless $text =~ /\n\z/;
    for my $line (split /\n/, $text) {
        if ($line =~ /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S/) {
            push @bad, "HELP $1 twice" if $help{$1}++;
        } elsif ($line =~ /^\#\ TYPE\ ([a-zA-Z_:][a-zA-Z0-9_:]*)
                           \ (counter|gauge|histogram)$/x) {
            push @bad, "TYPE $1 twice" if $type{$1};
            $type{$1} = $2;
        } elsif ($line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)
                           (\{(?:$label(?:,$label)*)?\})?\ ($value)$/x) {
            my ($name, $labels, $val) = ($1, $2 // '', $3);
            my $family = $name;
            $family =~ s/_(?:bucket|sum|count)$// unless $type{$name};
            push @bad, "sample of an undeclared family: $line"
                unless $type{$family};
            push @bad, "sample twice: $line"
                if exists $v{"$name$labels"};
            $v{"$name$labels"} = $val;
        } else {
            push @bad, "malformed: $line";
        }
    }
    return (\%v, \@bad);
}

sub scrape {
    my ($s, $h, $b) = scrape_raw();
    my ($v, $bad) = parse($b);
    return $v;
}

# what moved between two scrapes
sub delta {
    my ($a, $b, $k) = @_;
    return ($b->{$k} // 0) - ($a->{$k} // 0);
}

our $Chat = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}';
our $Stream = '{"model":"gpt-stream","stream":true,"messages":[{"role":"user","content":"hi"}]}';
our $Bad = '{"model":"gpt-bad","messages":[{"role":"user","content":"hi"}]}';

run_tests();

__DATA__

=== TEST 1: a known workload moves every counter by an exact amount; the answer is well formed
--- init
main::seed();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /metrics
--- response_headers
Content-Type: text/plain; version=0.0.4
--- response_body_like: ^# HELP ai_relay_requests_total
--- redis_check
my ($s, $h, $body) = main::scrape_raw();
my ($a, $bad) = main::parse($body);
is("@$bad", '', 'the exposition is well formed');
is($s, 200, 'scraped');

# the workload: 3 answers, 2 streams, a 500 of the upstream, a refused
# key (openai style), a missing key (anthropic style)
for (1 .. 3) {
    my ($st) = relay_post('/v1/chat/completions', $main::Chat);
    is($st, 200, 'an answer');
}
my $during;
for (1 .. 2) {
    my ($st) = stream_with($main::Stream, sub {
        $during //= main::scrape()->{'ai_relay_active_streams'};
    });
    is($st, 200, 'a stream');
}
is($during, 1, 'a stream is active while it runs');
my ($st) = relay_post('/v1/chat/completions', $main::Bad);
is($st, 500, 'an upstream error');
($st) = relay_post('/v1/chat/completions', $main::Chat, 'sk-wrong');
is($st, 401, 'a refused key');
($st) = http_request('POST', '/v1/messages', ['Content-Type: application/json'],
                     '{"model":"gpt-4o-mini","max_tokens":5,"messages":[]}');
is($st, 401, 'no key');

# counted at the end of each request, settled a little later
my $b;
my $done = wait_for(sub {
    $b = main::scrape();
    return main::delta($a, $b, 'ai_relay_requests_total{model="",channel="",style="anthropic",status="401"}') == 1
        && ($b->{'ai_relay_settlements_pending'} // 1) == 0;
});
ok($done, 'the workload is counted and settled');

($s, $h, $body) = main::scrape_raw();
($b, $bad) = main::parse($body);
is("@$bad", '', 'the exposition is still well formed');

my %want = (
  'ai_relay_requests_total{model="gpt-4o-mini",channel="1",style="openai",status="200"}' => 3,
  'ai_relay_requests_total{model="gpt-stream",channel="2",style="openai",status="200"}' => 2,
  'ai_relay_requests_total{model="gpt-bad",channel="3",style="openai",status="500"}' => 1,
  'ai_relay_requests_total{model="",channel="",style="openai",status="401"}' => 1,
  'ai_relay_requests_total{model="",channel="",style="anthropic",status="401"}' => 1,
  'ai_relay_prompt_tokens_total{model="gpt-4o-mini",channel="1"}' => 36,
  'ai_relay_completion_tokens_total{model="gpt-4o-mini",channel="1"}' => 9,
  'ai_relay_prompt_tokens_total{model="gpt-stream",channel="2"}' => 24,
  'ai_relay_completion_tokens_total{model="gpt-stream",channel="2"}' => 4,
  'ai_relay_prompt_tokens_total{model="gpt-bad",channel="3"}' => 0,
  'ai_relay_cached_tokens_total{model="gpt-4o-mini",channel="1"}' => 0,
  'ai_relay_reasoning_tokens_total{model="gpt-4o-mini",channel="1"}' => 0,
  'ai_relay_failovers_total{model="gpt-4o-mini",channel="1"}' => 0,
  'ai_relay_upstream_latency_seconds_count{model="gpt-4o-mini",channel="1"}' => 3,
  'ai_relay_upstream_latency_seconds_bucket{model="gpt-4o-mini",channel="1",le="+Inf"}' => 3,
  'ai_relay_upstream_latency_seconds_count{model="gpt-stream",channel="2"}' => 2,
  'ai_relay_upstream_latency_seconds_count{model="gpt-bad",channel="3"}' => 1,
  'ai_relay_time_to_first_token_seconds_count{model="gpt-stream",channel="2"}' => 2,
  'ai_relay_time_to_first_token_seconds_count{model="gpt-4o-mini",channel="1"}' => 0,
  'ai_relay_redis_errors_total' => 0,
  'ai_relay_redis_reconnects_total' => 0,
  'ai_relay_metrics_overflow_total' => 0,
);
for my $k (sort keys %want) {
    is(main::delta($a, $b, $k), $want{$k}, $k);
}

# cost: 12 prompt + 3 completion tokens at $0.15 / $0.60 per 1M is 3.6,
# so 4 micro-USD an answer; a stream 12 + 2: 3 micro-USD
is(sprintf('%.6f', main::delta($a, $b, 'ai_relay_cost_usd_total{model="gpt-4o-mini",channel="1"}')),
   '0.000012', 'cost of the answers, in USD');
is(sprintf('%.6f', main::delta($a, $b, 'ai_relay_cost_usd_total{model="gpt-stream",channel="2"}')),
   '0.000006', 'cost of the streams, in USD');
is(main::delta($a, $b, 'ai_relay_cost_usd_total{model="gpt-bad",channel="3"}'),
   0, 'an upstream error costs nothing');

is($b->{'ai_relay_active_streams'}, 0, 'no stream left active');

# the failing channel's key: a failure more, its breaker still closed
is(main::delta($a, $b, 'ai_relay_key_failures_total{channel="3",key="0"}'), 1,
   'the failing key counted its failure');
is($b->{'ai_relay_breaker_state{channel="3",key="0"}'}, 0,
   'its breaker is closed (one failure, three open it)');
ok(!exists $b->{'ai_relay_breaker_state{channel="1",key="0"}'},
   'a key that never failed is not listed');
ok(main::delta($a, $b, 'ai_relay_redis_command_duration_seconds_count') > 0,
   'Redis commands are timed');

# buckets are cumulative and end with the count
my $prev = 0;
my $mono = 1;
for my $le (qw(0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 120 300 +Inf)) {
    my $n = $b->{qq{ai_relay_upstream_latency_seconds_bucket{model="gpt-stream",channel="2",le="$le"}}};
    $mono = 0 unless defined $n && $n >= $prev;
    $prev = $n // 0;
}
ok($mono, 'latency buckets grow up to +Inf');
is($prev, $b->{'ai_relay_upstream_latency_seconds_count{model="gpt-stream",channel="2"}'},
   '+Inf is the count');

# one family, one HELP and one TYPE, the names Prometheus expects
my %types = $body =~ /^# TYPE (\S+) (\S+)$/mg;
is($types{ai_relay_requests_total}, 'counter', 'requests: a counter');
is($types{ai_relay_upstream_latency_seconds}, 'histogram', 'latency: a histogram');
is($types{ai_relay_active_streams}, 'gauge', 'streams: a gauge');
is($types{ai_relay_breaker_state}, 'gauge', 'breakers: a gauge');
is(scalar(grep { /_total$/ && $types{$_} ne 'counter' } keys %types), 0,
   'every _total is a counter');
--- no_error_log
[error]



=== TEST 2: label values are escaped: quote, backslash, line feed
--- init
main::seed();
AIRelayTest::seed_model(qq{we"ird\\mo\ndel}, channels => '1');
AIRelayTest::seed_price(qq{we"ird\\mo\ndel}, input => 150000,
                        output => 600000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /metrics
--- response_body_like: ai_relay_metrics_overflow_total 0
--- redis_check
my ($st) = relay_post('/v1/chat/completions',
                      '{"model":"we\"ird\\\\mo\\ndel","messages":[{"role":"user","content":"hi"}]}');
is($st, 200, 'the odd model answers');
my $body;
wait_for(sub {
    (undef, undef, $body) = main::scrape_raw();
    return index($body, 'ai_relay_prompt_tokens_total{model="we') >= 0;
});
my ($v, $bad) = main::parse($body);
is("@$bad", '', 'well formed');
ok(index($body, q{ai_relay_requests_total{model="we\"ird\\\\mo\ndel",channel="1",style="openai",status="200"} }) >= 0,
   'escaped in the request counter');
ok(index($body, q{ai_relay_upstream_latency_seconds_bucket{model="we\"ird\\\\mo\ndel",channel="1",le="+Inf"} }) >= 0,
   'escaped in a histogram');
--- no_error_log
[error]



=== TEST 3: promtool check metrics, where Prometheus' promtool is installed
--- init
main::seed();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /metrics
--- redis_check
relay_post('/v1/chat/completions', $main::Chat);
stream_with($main::Stream, sub {});
my ($s, $h, $body) = main::scrape_raw();
my $promtool = $ENV{PROMTOOL} || `command -v promtool 2>/dev/null`;
chomp $promtool;
SKIP: {
    skip 'promtool is not installed (Debian: prometheus)', 2
        unless $promtool && -x $promtool;
    my $file = "/tmp/ai-relay-metrics.$$";
    open my $fh, '>', $file or die "$file: $!";
    print $fh $body;
    close $fh;
    my $out = `'$promtool' check metrics < '$file' 2>&1`;
    my $rc = $?;
    unlink $file;
    is($rc, 0, 'promtool check metrics passes');
    # lint advice (HELP, units, _total) is printed even with exit 0
    is($out, '', 'promtool has no advice') or diag($out);
}
--- no_error_log
[error]



=== TEST 4: GET or HEAD only; not counted as a relay request
--- init
main::seed();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /metrics
x=1
--- error_code: 405
--- redis_check
my $v = main::scrape();
is(scalar(grep { /^ai_relay_requests_total\{/ && $v->{$_} } keys %$v), 0,
   'scrapes and refused scrapes are no relay requests');
--- no_error_log
[error]



=== TEST 5: a worker killed mid-stream (SIGKILL): its stream stops counting, the counters of the zone go on
--- init
main::seed();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /metrics
--- timeout: 20
--- redis_check
my ($st) = relay_post('/v1/chat/completions', $main::Chat);
is($st, 200, 'an answer');
my $k = 'ai_relay_requests_total{model="gpt-4o-mini",channel="1",style="openai",status="200"}';
my $a;
ok(wait_for(sub { $a = main::scrape(); ($a->{$k} // 0) > 0 }), 'counted');
my ($master, $worker) = nginx_pids();
my $during;
stream_with('{"model":"gpt-hold","stream":true,"messages":[]}', sub {
    $during = main::scrape()->{'ai_relay_active_streams'};
    kill_worker($worker);
});
is($during, 1, 'the stream was active');
ok(wait_for(sub { my (undef, @w) = nginx_pids(); @w == 1 && $w[0] != $worker }, 30),
   'the master started another worker');
my $b = main::scrape();
is($b->{'ai_relay_active_streams'}, 0, 'the killed stream no longer counts');
is($b->{$k}, $a->{$k}, 'the requests counted before are kept');
ok($b->{'ai_relay_redis_command_duration_seconds_count'}
   >= $a->{'ai_relay_redis_command_duration_seconds_count'},
   'the killed worker\'s Redis counters are kept');
ok($b->{'ai_relay_redis_reconnects_total'} >= $a->{'ai_relay_redis_reconnects_total'},
   'nor do reconnects go back');
like(error_log_text(), qr/exited on signal 9/, 'the worker was killed');



=== TEST 6: a failover: counted under the channel that answered; the failed key counts its failure
--- init
main::seed();
main::seed_failover();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /metrics
--- redis_check
my $a = main::scrape();
my ($st) = relay_post('/v1/chat/completions',
                      '{"model":"gpt-fo","messages":[{"role":"user","content":"hi"}]}');
is($st, 200, 'the second channel answered');
my $b;
ok(wait_for(sub {
    $b = main::scrape();
    main::delta($a, $b, 'ai_relay_requests_total{model="gpt-fo",channel="6",style="openai",status="200"}') == 1;
}), 'counted once, under the channel that answered');
is(main::delta($a, $b, 'ai_relay_failovers_total{model="gpt-fo",channel="6"}'), 1,
   'one failover');
is(main::delta($a, $b, 'ai_relay_prompt_tokens_total{model="gpt-fo",channel="6"}'), 12,
   'the answer\'s tokens');
is(main::delta($a, $b, 'ai_relay_key_failures_total{channel="5",key="0"}'), 1,
   'the failed key counted its failure');
is(scalar(grep { /^ai_relay_requests_total\{model="gpt-fo",channel="5"/ } keys %$b), 0,
   'no request counted under the failed channel');
--- no_error_log
[error]



=== TEST 7: a full zone: new label sets are counted in __other__ and ai_relay_metrics_overflow_total, no request is lost
--- init
main::seed();
for my $i (1 .. 120) {
    AIRelayTest::seed_model("m$i", channels => '1');
    AIRelayTest::seed_price("m$i", input => 150000, output => 600000);
}
--- http_config eval: AIRelayTest::http_config(extra => "    ai_relay_metrics_zone 90k;\n")
--- config eval: $::Config
--- request
GET /metrics
--- redis_check
my $a = main::scrape();
my $failed = 0;
for my $i (1 .. 120) {
    my ($st) = relay_post('/v1/chat/completions',
                          qq{{"model":"m$i","messages":[{"role":"user","content":"hi"}]}});
    $failed++ if $st != 200;
}
is($failed, 0, 'all 120 answered');
my $b;
my $sum = sub {
    my ($v) = @_;
    my $n = 0;
    $n += $v->{$_} for grep { /^ai_relay_requests_total\{/ } keys %$v;
    return $n;
};
ok(wait_for(sub { $b = main::scrape(); $sum->($b) - $sum->($a) == 120 }),
   'every request is counted');
my $other = 'ai_relay_requests_total{model="__other__",channel="__other__",style="other",status="other"}';
ok(main::delta($a, $b, 'ai_relay_metrics_overflow_total') > 0, 'the zone overflowed');
is(main::delta($a, $b, $other), main::delta($a, $b, 'ai_relay_metrics_overflow_total'),
   'the overflow counts the requests of __other__');
ok(exists $b->{'ai_relay_requests_total{model="m1",channel="1",style="openai",status="200"}'},
   'the first label sets have their own counters');
is(main::delta($a, $b, 'ai_relay_prompt_tokens_total{model="__other__",channel="__other__"}')
   + main::delta($a, $b, 'ai_relay_prompt_tokens_total{model="m1",channel="1"}')
   + eval { my $n = 0; $n += main::delta($a, $b, "ai_relay_prompt_tokens_total{model=\"m$_\",channel=\"1\"}") for 2 .. 120; $n },
   120 * 12, 'no token is lost either');
my ($s, $h, $body) = main::scrape_raw();
my ($v, $bad) = main::parse($body);
is("@$bad", '', 'well formed');
--- no_error_log
[error]
[crit]



=== TEST 8: a reload (HUP): the zone and its counters are kept, the old worker's slot folded in
--- init
main::seed();
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
GET /metrics
--- timeout: 20
--- redis_check
my ($st) = relay_post('/v1/chat/completions', $main::Chat);
is($st, 200, 'an answer');
my $k = 'ai_relay_requests_total{model="gpt-4o-mini",channel="1",style="openai",status="200"}';
my $a;
ok(wait_for(sub { $a = main::scrape(); ($a->{$k} // 0) > 0 }), 'counted');
my ($master, $worker) = nginx_pids();
kill 'HUP', $master;
ok(wait_for(sub { my (undef, @w) = nginx_pids(); @w == 1 && $w[0] != $worker }, 30),
   'a new worker replaced the old one');
my $b = main::scrape();
is($b->{$k}, $a->{$k}, 'the requests counted before the reload are kept');
ok($b->{'ai_relay_redis_command_duration_seconds_count'}
   >= $a->{'ai_relay_redis_command_duration_seconds_count'},
   'the old worker\'s Redis counters are kept');
--- no_error_log
[error]
