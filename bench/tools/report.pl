#!/usr/bin/perl
# report.pl RAWFILE: the figures of `make bench` from its raw run lines.
#
# Prints one line per figure, "BENCH <scenario>[.<front>] <metric>=<value>",
# medians over the repetitions; comparisons (relay_vs_proxy_*, added_*) are
# paired per repetition (the front ends ran back to back) and then the
# median is taken. Then a summary table with the targets, PASS/FAIL.
#
# Exit status 1 when a front end answered anything but 200 (or wrk saw
# errors), or the relay did not write a record for (nearly) every request,
# or did not bill; with BENCH_STRICT=1 also when a target fails.
use strict;
use warnings;

my $raw = shift or die "usage: report.pl RAWFILE\n";
open my $fh, '<', $raw or die "$raw: $!\n";

sub kv {
    my ($s) = @_;    # a copy: the caller passes $1
    my %h;
    while ($s =~ /(\w+)=("([^"]*)"|\S+)/g) {
        $h{$1} = defined $3 ? $3 : $2;
    }
    return \%h;
}

my (%info, @runs);
while (<$fh>) {
    chomp;
    if (/^(MACHINE|VERSIONS|SETTINGS|BILLING) (.*)/) {
        $info{$1} = kv($2);
    } elsif (/^RUN (.*)/) {
        push @runs, kv($1);
    }
}
close $fh;

my @fronts = split ' ', ($info{SETTINGS}{fronts} // 'proxy relay');
my %has = map { $_ => 1 } @fronts;

sub median {
    my @v = sort { $a <=> $b } grep { defined } @_;
    return undef unless @v;
    return $v[$#v / 2] if @v % 2;
    return ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

# ----------------------------------------------------- per-run figures

my %m;        # {scenario}{front}{rep}{metric}
my %errors;   # {front} => count
my %requests; # {front} => count (wrk-driven runs)
my (%records, $relay_requests);

for my $r (@runs) {
    my ($sc, $f, $rep) = @$r{qw(scenario front rep)};
    my $x = $m{$sc}{$f}{$rep} //= {};

    if ($sc eq 'ttfb') {
        $x->{ttfb_p50_us} = $r->{p50_us};
        $x->{ttfb_p90_us} = $r->{p90_us};
        $x->{ttfb_p99_us} = $r->{p99_us};
        $errors{$f} += $r->{errors};
        next;
    }

    if ($sc eq 'idle_streams') {
        my $ok = $r->{ok} || 1;
        $x->{streams_open} = $r->{ok};
        $x->{kb_per_stream} = ($r->{rss_after_kb} - $r->{rss_before_kb}) / $ok;
        $x->{rss_before_kb} = $r->{rss_before_kb};
        $x->{rss_after_kb} = $r->{rss_after_kb};
        $x->{redis_kb_per_stream} = $r->{redis_mem_delta} / 1024 / $ok
            if $f eq 'relay';
        $errors{$f} += $r->{failed};
        $errors{$f} += $r->{streams} - $r->{ok} - $r->{failed};
        next;
    }

    my $n = $r->{requests} || 1;
    my $secs = $r->{duration_us} / 1e6;
    my $tick_us = 1e6 / $r->{clk_tck};
    my $err = 0;
    $err += $r->{$_} for qw(err_connect err_read err_write err_status
                            err_timeout);
    $errors{$f} += $err;
    $requests{$f} += $r->{requests};

    $x->{requests} = $r->{requests};
    $x->{errors} = $err;
    $x->{rps} = $r->{requests} / $secs;
    $x->{front_cpu_us_per_req} = $r->{ticks_front} * $tick_us / $n;
    $x->{cpu_us_per_req} = $x->{front_cpu_us_per_req};
    if ($f eq 'relay') {
        $x->{redis_cpu_us_per_req} = $r->{ticks_redis} * $tick_us / $n;
        $x->{cpu_us_per_req} += $x->{redis_cpu_us_per_req};
        $x->{redis_cmds_per_req} = $r->{redis_cmds} / $n;
        $x->{redis_reads_per_req} = $r->{redis_reads} / $n;
        # one request at a time: every round trip is one read() in Redis
        $x->{redis_roundtrips_per_req} = $x->{redis_reads_per_req}
            if $sc eq 'redis_probe';
        $x->{redis_scripts_per_req} = ($r->{redis_scripts} // 0) / $n;
        $x->{records_per_req} = $r->{records} / $n;
        $records{relay} += $r->{records};
        $relay_requests += $r->{requests};
    }
    $x->{mock_cpu_us_per_req} = $r->{ticks_mock} * $tick_us / $n;
    $x->{front_core_busy_pct} = $r->{core_front_total}
        ? 100 * $r->{core_front_busy} / $r->{core_front_total} : 0;
    $x->{load_core_busy_pct} = $r->{core_load_total}
        ? 100 * $r->{core_load_busy} / $r->{core_load_total} : 0;
    $x->{p50_us} = $r->{lat_p50_us};
    $x->{p99_us} = $r->{lat_p99_us};
    $x->{mean_us} = $r->{lat_mean_us};
    if ($sc eq 'stream' || $sc eq 'xstream' || $sc eq 'large_body') {
        $x->{bytes_per_s} = $r->{bytes} / $secs;
        $x->{resp_bytes} = $r->{bytes} / $n;
    }
}

sub med {   # median over the repetitions of one metric
    my ($sc, $f, $k) = @_;
    my $reps = $m{$sc}{$f} or return undef;
    return median(map { $reps->{$_}{$k} } grep { $_ ne '0' } keys %$reps);
}

sub paired {   # median over repetitions of $code->(a, b)
    my ($sc, $fa, $fb, $k, $code) = @_;
    my ($ra, $rb) = ($m{$sc}{$fa}, $m{$sc}{$fb});
    return undef unless $ra && $rb;
    my @v;
    for my $rep (keys %$ra) {
        my ($a, $b) = ($ra->{$rep}{$k}, $rb->{$rep} && $rb->{$rep}{$k});
        next unless defined $a && defined $b;
        my $v = $code->($a, $b);
        push @v, $v if defined $v;
    }
    return median(@v);
}
my $ratio = sub { $_[1] ? $_[0] / $_[1] : undef };
my $minus = sub { $_[0] - $_[1] };

# ----------------------------------------------------------- BENCH lines

my @order = qw(redis_probe nonstream stream xstream fixed_rate ttfb
               large_body idle_streams);
my @present = grep { $m{$_} } @order;

my %show = (
    redis_probe => [qw(rps p50_us redis_roundtrips_per_req redis_scripts_per_req
                       redis_cmds_per_req redis_cpu_us_per_req
                       front_cpu_us_per_req records_per_req errors)],
    nonstream  => [qw(rps cpu_us_per_req front_cpu_us_per_req
                      redis_cpu_us_per_req mock_cpu_us_per_req p50_us p99_us
                      front_core_busy_pct load_core_busy_pct
                      redis_cmds_per_req redis_scripts_per_req
                      records_per_req errors)],
    stream     => [qw(rps bytes_per_s resp_bytes cpu_us_per_req
                      front_cpu_us_per_req redis_cpu_us_per_req
                      mock_cpu_us_per_req p50_us p99_us front_core_busy_pct
                      load_core_busy_pct redis_cmds_per_req
                      redis_scripts_per_req records_per_req errors)],
    xstream    => [qw(rps bytes_per_s resp_bytes cpu_us_per_req
                      front_cpu_us_per_req redis_cpu_us_per_req
                      mock_cpu_us_per_req p50_us p99_us front_core_busy_pct
                      load_core_busy_pct records_per_req errors)],
    fixed_rate => [qw(rps p50_us p99_us mean_us cpu_us_per_req
                      front_cpu_us_per_req redis_cpu_us_per_req
                      front_core_busy_pct errors)],
    ttfb       => [qw(ttfb_p50_us ttfb_p90_us ttfb_p99_us)],
    large_body => [qw(rps bytes_per_s cpu_us_per_req front_cpu_us_per_req
                      redis_cpu_us_per_req mock_cpu_us_per_req p50_us p99_us
                      front_core_busy_pct load_core_busy_pct
                      records_per_req errors)],
    idle_streams => [qw(streams_open rss_before_kb rss_after_kb kb_per_stream
                        redis_kb_per_stream)],
);

sub fmt {
    my ($v) = @_;
    return 'n/a' unless defined $v;
    return sprintf('%d', $v) if $v == int($v) && (abs($v) >= 1000 || $v == 0);
    return sprintf('%.0f', $v) if abs($v) >= 10000;
    return sprintf('%.1f', $v) if abs($v) >= 100;
    return sprintf('%.2f', $v) if abs($v) >= 1;
    return sprintf('%.3f', $v);
}

my @bench;
sub bench { push @bench, "BENCH $_[0] $_[1]=" . fmt($_[2]) if defined $_[2] }

my %cmp;   # {scenario}{metric} => value
for my $sc (@present) {
    for my $f (@fronts) {
        next unless $m{$sc}{$f};
        for my $k (@{ $show{$sc} }) {
            bench("$sc.$f", $k, med($sc, $f, $k));
        }
    }
    for my $peer (grep { $_ ne 'proxy' } @fronts) {
        my $p = $peer eq 'relay' ? 'relay' : $peer;
        my %c;
        if ($sc =~ /^(nonstream|stream|xstream|large_body|fixed_rate)$/) {
            $c{"${p}_vs_proxy_cpu"} = paired($sc, $peer, 'proxy',
                                             'cpu_us_per_req', $ratio);
            $c{"${p}_vs_proxy_rps"} = paired($sc, $peer, 'proxy', 'rps',
                                             $ratio)
                unless $sc eq 'fixed_rate';
            $c{"${p}_added_cpu_us_per_req"} = paired($sc, $peer, 'proxy',
                                             'cpu_us_per_req', $minus);
        }
        if ($sc =~ /^(nonstream|stream|xstream|fixed_rate|large_body)$/) {
            $c{"${p}_added_p50_us"} = paired($sc, $peer, 'proxy', 'p50_us',
                                             $minus);
            $c{"${p}_added_p99_us"} = paired($sc, $peer, 'proxy', 'p99_us',
                                             $minus);
        }
        if ($sc eq 'ttfb') {
            $c{"${p}_added_ttfb_p50_us"} = paired($sc, $peer, 'proxy',
                                              'ttfb_p50_us', $minus);
            $c{"${p}_added_ttfb_p99_us"} = paired($sc, $peer, 'proxy',
                                              'ttfb_p99_us', $minus);
        }
        if ($sc eq 'idle_streams') {
            $c{"${p}_added_kb_per_stream"} = paired($sc, $peer, 'proxy',
                                              'kb_per_stream', $minus);
        }
        for my $k (sort keys %c) {
            next unless defined $c{$k};
            (my $name = $k) =~ s/^relay_(added_)/$1/;
            $cmp{$sc}{$name} = $c{$k};
            bench($sc, $name, $c{$k});
        }
    }
}

# ---------------------------------------------------------- sanity

my @fail;
for my $f (@fronts) {
    bench('sanity', "${f}_errors", $errors{$f} // 0);
    push @fail, "$f: $errors{$f} errors (non-200 answers, wrk errors or "
              . "streams that did not open)" if $errors{$f};
}
if ($relay_requests) {
    my $rr = $records{relay} / $relay_requests;
    bench('sanity', 'relay_records_per_request', $rr);
    push @fail, sprintf('relay wrote %d records for %d requests',
                        $records{relay}, $relay_requests)
        if $rr < 0.99;
}
if (my $b = $info{BILLING}) {
    my $spent = $b->{balance_before} - $b->{balance_after};
    bench('sanity', 'relay_billed_usd', $spent / 1e6);
    bench('sanity', 'relay_records_total', $b->{records_total});
    push @fail, 'the relay billed nothing (balance unchanged)'
        if $relay_requests && $spent <= 0;
}

print "$_\n" for @bench;

# ---------------------------------------------------------- summary

my @targets = (
    # scenario, metric, op, limit, label
    [qw(nonstream relay_vs_proxy_cpu <= 2.0), 'CPU/request relay (nginx+Redis) vs proxy, non-stream'],
    [qw(stream relay_vs_proxy_cpu <= 1.5), 'CPU/request relay (nginx+Redis) vs proxy, stream'],
    [qw(xstream relay_vs_proxy_cpu <= 2.0), 'CPU/request relay translating an Anthropic stream vs proxy passing the OpenAI one'],
    [qw(nonstream relay_vs_proxy_rps >= 0.85), 'RPS relay vs proxy, non-stream, same concurrency'],
    [qw(stream relay_vs_proxy_rps >= 0.85), 'RPS relay vs proxy, stream, same concurrency'],
    [qw(fixed_rate added_p50_us <= 100), 'added latency p50 at fixed rate (us)'],
    [qw(fixed_rate added_p99_us <= 500), 'added latency p99 at fixed rate (us)'],
    [qw(ttfb added_ttfb_p50_us <= 50), 'added time to first byte of a stream, p50 (us)'],
    [qw(idle_streams added_kb_per_stream <= 8), 'memory per idle stream added by the relay (KB)'],
);

my $s = $info{SETTINGS} || {};
my $mach = $info{MACHINE} || {};
print "\n";
print "ngx_ai_relay bench: $mach->{cpu}, nproc=$mach->{nproc}; "
    . "front ends on core $s->{front_cpu}, load generator, mock and Redis "
    . "on core $s->{load_cpu}\n";
print "$s->{reps} repetitions, medians; $s->{seconds} s runs "
    . "($s->{rate_seconds} s at fixed rate); cpu = user+sys per request "
    . "(relay: nginx worker + Redis; proxy: nginx worker)\n\n";

my @cols = ('scenario', 'figure', @fronts);
my @rows;
my %label = (
    nonstream    => "non-stream, $s->{conns} conns",
    stream       => "stream (SSE), $s->{conns} conns",
    xstream      => "translated stream, $s->{conns} conns",
    fixed_rate   => "fixed rate $s->{rate}/s",
    ttfb         => 'stream TTFB',
    large_body   => "1 MB body, $s->{large_conns} conns",
    idle_streams => "$s->{idle} idle streams",
);
my %table = (
    nonstream    => [qw(rps cpu_us_per_req p50_us p99_us)],
    stream       => [qw(rps bytes_per_s cpu_us_per_req p50_us p99_us)],
    xstream      => [qw(rps cpu_us_per_req p50_us p99_us)],
    fixed_rate   => [qw(rps p50_us p99_us cpu_us_per_req)],
    ttfb         => [qw(ttfb_p50_us ttfb_p99_us)],
    large_body   => [qw(rps cpu_us_per_req p50_us)],
    idle_streams => [qw(kb_per_stream)],
);
for my $sc (@present) {
    for my $k (@{ $table{$sc} }) {
        push @rows, [$label{$sc}, $k, map { fmt(med($sc, $_, $k)) } @fronts];
    }
}
my @w = map { length } @cols;
for my $r (@rows) {
    for my $i (0 .. $#$r) {
        $w[$i] = length $r->[$i] if length $r->[$i] > $w[$i];
    }
}
my $line = sub {
    my @c = @_;
    return join('  ', map { sprintf($_ < 2 ? "%-$w[$_]s" : "%$w[$_]s", $c[$_]) }
                      0 .. $#c) . "\n";
};
print $line->(@cols);
print $line->(map { '-' x $_ } @w);
print $line->(@$_) for @rows;

print "\ntargets\n";
my $tfail = 0;
my $tw = 0;
for my $t (@targets) { $tw = length $t->[4] if length $t->[4] > $tw }
for my $t (@targets) {
    my ($sc, $k, $op, $lim, $label) = @$t;
    my $v = $cmp{$sc}{$k};
    my $res;
    if (!defined $v) {
        $res = 'n/a';
    } elsif ($op eq '<=') {
        $res = $v <= $lim ? 'PASS' : 'FAIL';
    } else {
        $res = $v >= $lim ? 'PASS' : 'FAIL';
    }
    $tfail++ if $res eq 'FAIL';
    printf "  %-${tw}s  %10s  %s %-5s  %s\n", $label, fmt($v), $op, $lim, $res;
}

if (my $rt = med('redis_probe', 'relay', 'redis_roundtrips_per_req')) {
    printf "\nrelay and Redis per non-stream request: %s round trips "
         . "(read() calls of the Redis server, one request at a time), %s "
         . "scripts (EVALSHA), %s commands counting those the scripts run; "
         . "Redis CPU %s us\n",
           fmt($rt), fmt(med('redis_probe', 'relay', 'redis_scripts_per_req')),
           fmt(med('redis_probe', 'relay', 'redis_cmds_per_req')),
           fmt(med('nonstream', 'relay', 'redis_cpu_us_per_req'));
}
if (my $b = $info{BILLING}) {
    printf "relay billed \$%.6f for %d records (%s records per relay "
         . "request in the measured runs)\n",
           ($b->{balance_before} - $b->{balance_after}) / 1e6,
           $b->{records_total},
           $relay_requests ? fmt($records{relay} / $relay_requests) : 'n/a';
}

if (@fail) {
    print "\nBENCH FAILED:\n";
    print "  $_\n" for @fail;
    exit 1;
}
exit 1 if $tfail && ($ENV{BENCH_STRICT} // '') eq '1';
exit 0;
