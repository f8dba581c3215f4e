#!/usr/bin/perl
# ai-relay usage (daily counters) and records (request records), on data
# written the way the relay's SETTLE script writes it.

use strict;
use JSON::PP;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use AiRelayCli;

my ($rc, $out, $err, $j);

cli_ok('users', 'create', 'alice');
cli_ok('users', 'create', 'bob');
cli_ok('keys', 'add', '--user', 'alice', '--key', 'sk-alice-one-111111');
cli_ok('keys', 'add', '--user', 'alice', '--key', 'sk-alice-two-222222');
cli_ok('keys', 'add', '--user', 'bob', '--key', 'sk-bob-three-333333');

# what SETTLE does per request: totals, per key and per model
sub settle {
    my ($uid, $day, $kid, $model, $status, $pt, $ct, $cost) = @_;
    for my $f ('', "key:$kid:", "model:$model:") {
        redis_cmd('HINCRBY', "ar:{u$uid}:stats:$day", "${f}requests", 1);
        redis_cmd('HINCRBY', "ar:{u$uid}:stats:$day", "${f}errors",
                  $status >= 400 ? 1 : 0);
        redis_cmd('HINCRBY', "ar:{u$uid}:stats:$day", "${f}prompt_tokens",
                  $pt);
        redis_cmd('HINCRBY', "ar:{u$uid}:stats:$day",
                  "${f}completion_tokens", $ct);
        redis_cmd('HINCRBY', "ar:{u$uid}:stats:$day", "${f}cost", $cost);
    }
}

settle(1, '20251231', 1, 'gpt-4o', 200, 100, 50, 1500);
settle(1, '20260101', 1, 'gpt-4o', 200, 200, 100, 3000);
settle(1, '20260101', 2, 'claude:sonnet', 429, 10, 0, 0);
settle(2, '20260101', 3, 'gpt-4o', 200, 1000, 10, 2600);
settle(2, '20251101', 3, 'gpt-4o', 200, 1, 1, 1);    # out of range

# usage

$j = cli_json('usage');
is($j->{by}, 'day', 'by day by default');
is($j->{since}, '20251203', 'the last 30 days');
is($j->{until}, '20260101', '... until today');
is_deeply([ map { [ $_->{day}, $_->{requests}, $_->{cost} ] }
            @{ $j->{rows} } ],
          [ ['20251231', 1, 1500], ['20260101', 3, 5600] ],
          'rows per day, summed over users');
is_deeply({ %{ $j->{total} }, cost_usd => undef },
          { requests => 4, errors => 1, prompt_tokens => 1310,
            completion_tokens => 160, cost => 7100, cost_usd => undef },
          'total');
is($j->{total}{cost_usd}, '$0.0071', 'total in USD');

$j = cli_json('usage', '--by', 'user');
is_deeply([ map { [ $_->{user}, $_->{requests}, $_->{cost} ] }
            @{ $j->{rows} } ],
          [ [1, 3, 4500], [2, 1, 2600] ], 'by user');

$j = cli_json('usage', '--by', 'key', '--since', '2026-01-01');
is_deeply([ map { [ $_->{key}, $_->{requests}, $_->{errors} ] }
            @{ $j->{rows} } ],
          [ [1, 1, 0], [2, 1, 1], [3, 1, 0] ], 'by key, --since');

$j = cli_json('usage', '--by', 'model');
is_deeply([ map { [ $_->{model}, $_->{requests}, $_->{prompt_tokens} ] }
            @{ $j->{rows} } ],
          [ ['claude:sonnet', 1, 10], ['gpt-4o', 3, 1300] ],
          'by model (a model name with ":" too)');

$j = cli_json('usage', '--user', 'alice', '--by', 'model');
is(scalar @{ $j->{rows} }, 2, '--user');
is($j->{total}{requests}, 3, '--user total');

$j = cli_json('usage', '--key', 'sk-alice-one-111111');
is($j->{total}{requests}, 2, '--key (by plaintext)');
is($j->{total}{cost}, 4500, '--key cost');

$j = cli_json('usage', '--model', 'gpt-4o', '--by', 'user');
is_deeply([ map { [ $_->{user}, $_->{requests} ] } @{ $j->{rows} } ],
          [ [1, 2], [2, 1] ], '--model by user');

$j = cli_json('usage', '--since', '2025-11-01', '--until', '2025-11-01');
is($j->{total}{requests}, 1, '--since/--until');

$out = cli_ok('usage', '--by', 'user');
like($out, qr/^TOTAL\s+4\s+1\s+1310\s+160\s+\$0\.0071$/m, 'text total');

rejected(['usage', '--by', 'week'], 1, qr/invalid --by "week"/);
rejected(['usage', '--key', '1', '--model', 'gpt-4o'], 1,
         qr/cannot be combined/);
rejected(['usage', '--by', 'key', '--model', 'gpt-4o'], 1,
         qr/--by key cannot be filtered by model/);
rejected(['usage', '--since', '2026-01-02', '--until', '2026-01-01'], 1,
         qr/--until is before --since/);
rejected(['usage', '--since', '2020-01-01'], 1, qr/at most 400 days/);
rejected(['usage', '--since', 'yesterday'], 1, qr/invalid --since/);
rejected(['usage', '--user', 'nobody'], 1, qr/no user "nobody"/);

# records

sub record {
    my ($uid, $ms, %f) = @_;
    my %r = (time => $ms, request_id => "req-$ms", key_id => 1,
             key => "sk-al\xe2\x80\xa61111", user => $uid, model => 'gpt-4o',
             upstream_model => 'gpt-4o-2024-08-06', channel => 2,
             stream => 1, status => 200, error => '', latency_ms => 812,
             ttft_ms => 301, prompt_tokens => 1200, cached_tokens => 1000,
             cache_write_tokens => 0, completion_tokens => 300,
             reasoning_tokens => 0, cost => 4500,
             usage_source => 'upstream', %f);
    # as the module writes it: one JSON object in the field "r" (the
    # first record keeps the older one-field-per-value form, still read)
    if ($ms % 2) {
        redis_cmd('XADD', "ar:{u$uid}:log", "$ms-0", %r);
    } else {
        my $json = JSON::PP->new->canonical->encode(
            { map { $_ => ($r{$_} =~ /^\d+$/ ? $r{$_} + 0 : $r{$_}) } keys %r });
        redis_cmd('XADD', "ar:{u$uid}:log", "$ms-0", r => $json);
    }
}

my $t = $NOW * 1000;
record(1, $t - 7200_000);
record(1, $t - 3600_000, status => 429, error => 'rpm limit', cost => 0,
       model => 'claude', upstream_model => 'claude');
record(1, $t - 60_000, key_id => 2, key => "sk-al\xe2\x80\xa62222");
record(2, $t - 1800_000, key_id => 3, status => 502,
       error => 'upstream error');

$j = cli_json('records');
is_deeply([ map { $_->{request_id} } @$j ],
          [ map { 'req-' . ($t - $_) } 60_000, 1800_000, 3600_000, 7200_000 ],
          'all users, newest first');
is($j->[0]{user_name}, 'alice', 'the account');
is($j->[0]{cost}, 4500, 'numbers are numbers');
is($j->[0]{key}, "sk-al\x{2026}2222", 'the masked key');

$j = cli_json('records', '--key', '2');
is(scalar @$j, 1, '--key');
$j = cli_json('records', '--user', 'alice', '--status', 'error');
is_deeply([ map { $_->{status} } @$j ], [429], '--user --status error');
$j = cli_json('records', '--status', '5xx');
is_deeply([ map { $_->{user} } @$j ], [2], '--status 5xx');
$j = cli_json('records', '--status', '200', '--limit', '1');
is(scalar @$j, 1, '--limit');
$j = cli_json('records', '--model', 'gpt-4o-2024-08-06');
is(scalar @$j, 3, '--model matches the upstream name too');
$j = cli_json('records', '--since', '2025-12-31T23:00:00Z');
is(scalar @$j, 3, '--since (inclusive)');
$j = cli_json('records', '--until', '2025-12-31T22:00:00');
is(scalar @$j, 1, '--until');
$j = cli_json('records', '--request-id', 'req-' . ($t - 1800_000));
is_deeply([ map { $_->{user} } @$j ], [2], '--request-id finds any user');

$out = cli_ok('records', '--request-id', 'req-' . ($t - 3600_000));
like($out, qr/^2025-12-31T23:00:00\.000Z  request req-\d+$/m,
     'text: time and request id');
like($out, qr/account  user 1 \(alice\), key 1 sk-al\xe2\x80\xa61111/,
     'text: account and masked key');
like($out, qr/model    claude, channel 2, stream/, 'text: model');
like($out, qr/status   429, error: rpm limit/, 'text: status and error');
like($out, qr/tokens   prompt 1200 \(cached 1000, cache write 0\), completion 300/,
     'text: tokens');
like($out, qr/cost     \$0\.00, latency 812 ms/, 'text: cost');

# one settlement of several requests is one entry, an "r" field each
{
    my @f;
    for my $n (1 .. 3) {
        push @f, r => JSON::PP->new->canonical->encode(
            { time => $t - 30_000 + $n, request_id => "batch-$n",
              key_id => 1, user => 1, model => 'gpt-4o', status => 200,
              cost => 10 * $n });
    }
    redis_cmd('XADD', 'ar:{u1}:log', ($t - 30_000) . '-0', @f);
}
$j = cli_json('records', '--user', 'alice', '--limit', '4');
is_deeply([ map { $_->{request_id} } @$j ],
          [ 'batch-3', 'batch-2', 'batch-1', 'req-' . ($t - 60_000) ],
          'an entry of three records: three records, newest first');
$j = cli_json('records', '--user', 'alice', '--limit', '2');
is_deeply([ map { $_->{request_id} } @$j ], [ 'batch-3', 'batch-2' ],
          '--limit within an entry');
$j = cli_json('records', '--request-id', 'batch-2');
is_deeply([ map { $_->{cost} } @$j ], [20], '--request-id inside an entry');

rejected(['records', '--request-id', 'nope'], 1, qr/no record of request nope/);
rejected(['records', '--status', '2xxx'], 1, qr/invalid --status/);
rejected(['records', '--limit', '0'], 1, qr/invalid --limit/);
rejected(['records', '--key', '99'], 1, qr/no key with id 99/);

done_testing();
