#!/usr/bin/perl
# ai-relay usage --by channel (summed from the request records: the daily
# counters have no channel) and records --channel; the record fields the
# module adds for support (channel_name, path, host, client, tries,
# images) shown when present, records without them still read.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use AiRelayCli;

my ($rc, $out, $err, $j);

cli_ok('users', 'create', 'alice');
cli_ok('users', 'create', 'bob');
cli_ok('keys', 'add', '--user', 'alice', '--key', 'sk-alice-one-111111');
cli_ok('keys', 'add', '--user', 'alice', '--key', 'sk-alice-two-222222');
cli_ok('keys', 'add', '--user', 'bob', '--key', 'sk-bob-three-333333');
cli_ok('channels', 'create', '--provider', 'openai', '--name', 'oai');
cli_ok('channels', 'create', '--provider', 'anthropic', '--name', 'ant');
cli_ok('channels', 'create', '--provider', 'gemini', '--name', 'gem',
       '--id', '4');

my $t = $NOW * 1000;
my $js = JSON::PP->new->canonical;

# one stream entry per settlement, an "r" field (a JSON object) per
# record; added in time order by add_entries() (stream ids only grow)
my @entries;

sub entry {
    my ($uid, $ms, @recs) = @_;
    push @entries, [ $uid, $ms,
        map { (r => $js->encode({ time => $ms, request_id => "req-$ms",
                                  user => $uid, stream => 0, error => '',
                                  usage_source => 'upstream', %$_ })) }
        @recs ];
}

sub add_entries {
    for my $e (sort { $a->[1] <=> $b->[1] } @entries) {
        my ($uid, $ms, @f) = @$e;
        my $r = redis_cmd('XADD', "ar:{u$uid}:log", "$ms-0", @f);
        die "XADD: $r->{error}\n" if ref $r;
    }
}

# alice
entry(1, $t - 3600_000, { key_id => 1, model => 'gpt-4o', channel => 1,
      status => 200, prompt_tokens => 100, completion_tokens => 10,
      cost => 1000, channel_name => 'oai', path => '/v1/chat/completions',
      host => 'relay.example.com', client => '10.0.0.7', tries => 2,
      images => 0 });
entry(1, $t - 7200_000, { key_id => 2, model => 'claude', channel => 2,
      status => 502, prompt_tokens => 0, completion_tokens => 0, cost => 0,
      error => 'upstream error', channel_name => 'ant', path => '/v1/messages',
      host => 'relay.example.com', client => '10.0.0.7', tries => 3,
      images => 0 });
# written before the module recorded names, paths and tries
entry(1, $t - 172800_000, { key_id => 1, model => 'gpt-4o', channel => 1,
      status => 200, prompt_tokens => 50, completion_tokens => 5,
      cost => 500 });
# failed before a channel was chosen (none enabled)
entry(1, $t - 60_000, { key_id => 1, model => 'gpt-4o', channel => '',
      status => 503, prompt_tokens => 0, completion_tokens => 0, cost => 0,
      error => 'no channel available', channel_name => '', path => '/v1/chat/completions',
      host => 'relay.example.com', client => '10.0.0.8', tries => 0,
      images => 0 });
# a channel whose records carry no name: the channel's hash has it
entry(1, $t - 100_000, { key_id => 2, model => 'gemini', channel => 4,
      status => 200, prompt_tokens => 7, completion_tokens => 3, cost => 5 });

# bob
entry(2, $t - 1800_000, { key_id => 3, model => 'gpt-4o', channel => 1,
      status => 200, prompt_tokens => 1000, completion_tokens => 100,
      cost => 7000, channel_name => 'oai', tries => 1, images => 0 });
# a channel removed since: its name only in the record
entry(2, $t - 5000_000, { key_id => 3, model => 'dall-e-3', channel => 3,
      status => 200, prompt_tokens => 0, completion_tokens => 0,
      cost => 80000, channel_name => 'old-3', path => '/v1/images/generations',
      host => 'relay.example.com', client => '10.0.0.9', tries => 1,
      images => 2 });
# a settlement of two requests: one entry
entry(2, $t - 900_000,
      { key_id => 3, model => 'claude', channel => 2, status => 200,
        prompt_tokens => 10, completion_tokens => 1, cost => 30,
        channel_name => 'ant', request_id => 'batch-1', time => $t - 899_999 },
      { key_id => 3, model => 'claude', channel => 2, status => 200,
        prompt_tokens => 20, completion_tokens => 2, cost => 60,
        channel_name => 'ant', request_id => 'batch-2', time => $t - 899_998 });
# out of the default 30 days
entry(2, ($NOW - 61 * 86400) * 1000, { key_id => 3, model => 'gpt-4o',
      channel => 1, status => 200, prompt_tokens => 1, completion_tokens => 1,
      cost => 1 });

add_entries();

# usage --by channel

sub rows {
    my ($j) = @_;
    return [ map { [ $_->{channel}, $_->{name}, $_->{requests}, $_->{errors},
                     $_->{prompt_tokens}, $_->{completion_tokens},
                     $_->{cost} ] } @{ $j->{rows} } ];
}

$j = cli_json('usage', '--by', 'channel');
is($j->{by}, 'channel', 'by channel');
is_deeply(rows($j),
          [ [1, 'oai', 3, 0, 1150, 115, 8500],
            [2, 'ant', 3, 1, 30, 3, 90],
            [3, 'old-3', 1, 0, 0, 0, 80000],
            [4, 'gem', 1, 0, 7, 3, 5],
            [undef, undef, 1, 1, 0, 0, 0] ],
          'rows per channel in id order, names from the records or the '
          . 'channel, no channel last');
is_deeply({ %{ $j->{total} }, cost_usd => undef },
          { requests => 9, errors => 2, prompt_tokens => 1187,
            completion_tokens => 121, cost => 88595, cost_usd => undef },
          'total');
is($j->{total}{cost_usd}, '$0.088595', 'total in USD');

$j = cli_json('usage', '--by', 'channel', '--user', 'alice');
is_deeply(rows($j),
          [ [1, 'oai', 2, 0, 150, 15, 1500], [2, 'ant', 1, 1, 0, 0, 0],
            [4, 'gem', 1, 0, 7, 3, 5], [undef, undef, 1, 1, 0, 0, 0] ],
          '--user');

$j = cli_json('usage', '--by', 'channel', '--key', 'sk-bob-three-333333');
is_deeply([ map { [ $_->[0], $_->[2], $_->[6] ] } @{ rows($j) } ],
          [ [1, 1, 7000], [2, 2, 90], [3, 1, 80000] ], '--key');

$j = cli_json('usage', '--by', 'channel', '--key', '1', '--model', 'gpt-4o');
is_deeply([ map { [ $_->[0], $_->[2] ] } @{ rows($j) } ],
          [ [1, 2], [undef, 1] ],
          '--key and --model together (records have both)');

$j = cli_json('usage', '--by', 'channel', '--since', '2025-12-31');
is_deeply([ map { [ $_->[0], $_->[2] ] } @{ rows($j) } ],
          [ [1, 2], [2, 3], [3, 1], [4, 1], [undef, 1] ], '--since');

$j = cli_json('usage', '--by', 'channel', '--since', '2025-11-01',
              '--until', '2025-12-30');
is_deeply([ map { [ $_->[0], $_->[2] ] } @{ rows($j) } ],
          [ [1, 2] ], '--since/--until: whole UTC days');

$j = cli_json('usage', '--by', 'channel', '--since', '2025-12-01',
              '--until', '2025-12-01');
is_deeply($j->{rows}, [], 'no records: no rows');
is($j->{total}{requests}, 0, '... a zero total');

$out = cli_ok('usage', '--by', 'channel');
like($out, qr/^CHANNEL\s+REQUESTS\s+ERRORS\s+PROMPT\s+COMPLETION\s+COST$/m,
     'text: header');
like($out, qr/^1 \(oai\)\s+3\s+0\s+1150\s+115\s+\$0\.0085$/m,
     'text: a channel and its name');
like($out, qr/^-\s+1\s+1\s+0\s+0\s+\$0\.00$/m, 'text: no channel');
like($out, qr/^TOTAL\s+9\s+2\s+1187\s+121\s+\$0\.088595$/m, 'text: total');

rejected(['usage', '--by', 'channels'], 1,
         qr/invalid --by "channels" \(day, user, key, model or channel\)/);

# records --channel

$j = cli_json('records', '--channel', '1');
is_deeply([ map { $_->{request_id} } @$j ],
          [ map { 'req-' . ($t - $_) } 1800_000, 3600_000, 172800_000,
                                       61 * 86400_000 ],
          '--channel 1: its records, newest first, every user');
$j = cli_json('records', '--channel', '2');
is_deeply([ map { $_->{request_id} } @$j ],
          [ 'batch-2', 'batch-1', 'req-' . ($t - 7200_000) ],
          '--channel 2: records inside one entry too');
$j = cli_json('records', '--channel', '2', '--user', 'alice');
is(scalar @$j, 1, '--channel with --user');
$j = cli_json('records', '--channel', '9');
is_deeply($j, [], 'a channel without records: none');
rejected(['records', '--channel', 'x'], 1, qr/invalid --channel "x"/);

# the support fields: JSON passes them on, text shows those present

$j = cli_json('records', '--request-id', 'req-' . ($t - 3600_000));
is_deeply([ @{ $j->[0] }{qw(channel channel_name path host client tries
                            images)} ],
          [1, 'oai', '/v1/chat/completions', 'relay.example.com',
           '10.0.0.7', 2, 0], 'JSON: the new fields');

$out = cli_ok('records', '--request-id', 'req-' . ($t - 3600_000));
like($out, qr{^  request  /v1/chat/completions on relay\.example\.com from 10\.0\.0\.7$}m,
     'text: path, host and client');
like($out, qr/^  model    gpt-4o, channel 1 \(oai\)$/m,
     'text: the channel\'s name');
like($out, qr/^  status   200, tries 2$/m, 'text: tries');
unlike($out, qr/images/, 'text: no images when none');

$out = cli_ok('records', '--request-id', 'req-' . ($t - 5000_000));
like($out, qr/usage upstream, images 2$/m, 'text: images');
like($out, qr{^  request  /v1/images/generations on relay\.example\.com from 10\.0\.0\.9$}m,
     'text: the images path');

$out = cli_ok('records', '--request-id', 'req-' . ($t - 172800_000));
unlike($out, qr/^  request /m, 'text, an older record: no request line');
like($out, qr/^  model    gpt-4o, channel 1$/m, '... the channel id alone');
like($out, qr/^  status   200$/m, '... no tries');

$out = cli_ok('records', '--request-id', 'req-' . ($t - 60_000));
like($out, qr/^  model    gpt-4o, channel -$/m, 'text: no channel');
like($out, qr/^  status   503, error: no channel available, tries 0$/m,
     'text: no channel, tries 0');

done_testing();
