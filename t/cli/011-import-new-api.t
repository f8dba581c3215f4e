#!/usr/bin/perl
# ai-relay import --from new-api --sqlite: soft deletes, model limits,
# multi-key channels, mapping chains and cycles, ModelPrice, CacheRatio,
# CreateCacheRatio, weights, inexact ratios.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use AiRelayCli;
use AiRelayFixtures;

my ($rc, $out, $err, $j);

my $db = sqlite_db('new-api.db', new_api_schema('sqlite'), new_api_rows());
my @import = ('import', '--from', 'new-api', '--sqlite', $db);

sub sha { sha256_hex(new_api_key($_[0])) }

$j = cli_json(@import, '--dry-run');
is_deeply(snapshot(), {}, '--dry-run writes nothing');
my $planned = scalar @{ $j->{changes} };

$j = cli_json(@import);
ok($j->{written}, 'written');
is(scalar @{ $j->{changes} }, $planned, 'as planned by --dry-run');

is_deeply({ map { ("$_->{kind} $_->{id}" => $_->{reason}) }
            @{ $j->{skipped} } },
          { 'user 3' => 'deleted in new-api',
            'key 13' => 'its user 3 is not imported',
            'key 14' => 'deleted in new-api',
            'channel 4' => 'type 36 has no ai-relay provider',
            'channel 5' => 'model_mapping is not a JSON object of strings',
            'model g1' => 'no channel can serve it' },
          'left out, with reasons');
is_deeply([ map { "$_->{model} $_->{field} $_->{stored}" }
            @{ $j->{inexact} } ],
          [ 'gemini-2.0-flash input 666667',
            'gemini-2.0-flash output 2666667' ],
          'a ratio that is no whole micro-USD is reported, rounded up');
my $notes = join "\n", @{ $j->{notes} };
like($notes, qr/key 12: model limits are on with an empty list .* imported disabled/,
     'note: empty model limits');
like($notes, qr/channel 1: upstream key 2 is disabled in new-api/,
     'note: a disabled key of a multi-key channel');
like($notes, qr/channel 6: model_mapping of g1 is a cycle/, 'note: cycle');
like($notes, qr/group "svip" was billed at GroupRatio 1\.5/, 'note: group');
like($notes, qr/channel 3: its param_override is not supported/,
     'note: ignored channel setting');
like($notes, qr/key 15: its IP restriction "1\.2\.3\.4"/, 'note: allow_ips');

my $state = state();

is_deeply($state->{'ar:{u2}:user'},
          { name => 'dave', status => 'active', group => 'default',
            source => 'new-api:2', balance => '20000000', unlimited => '0',
            used => '400', requests => '7', created => '1700000100' },
          'user 2, created_at kept');
is_deeply($state->{'ar:{u4}:user'},
          { name => 'frank', status => 'disabled', group => 'svip',
            source => 'new-api:4', balance => '0', unlimited => '0',
            used => '0', requests => '0', created => '1700000300' },
          'user 4');
ok(!exists $state->{'ar:{u3}:user'}, 'the deleted user is not imported');
ok(!exists $state->{'ar:{u4}:ledger'}, 'no ledger entry for 0');

my %key = (rpm => '0', tpm => '0', unlimited => '0', requests => '0',
           used => '0', expires => '0', status => 'active', models => '');
is_deeply($state->{'ar:{u2}:key:' . sha(1)},
          { %key, id => '10', name => 'limited',
            masked => "sk-BB\xe2\x80\xa6BBB1",
            models => 'claude-3-5-sonnet,gpt-4o', quota => '4000000',
            created => '1700001000', source => 'new-api:10' },
          'key 10: model limits');
is_deeply($state->{'ar:{u2}:key:' . sha(2)},
          { %key, id => '11', name => 'unlimited',
            masked => "sk-BB\xe2\x80\xa6BBB2", quota => '-1',
            created => '1700001001', source => 'new-api:11' },
          'key 11: limits off means all models; unlimited quota');
is($state->{'ar:{u2}:key:' . sha(3)}{status}, 'disabled',
   'key 12: limits on, nothing allowed -> disabled');
is_deeply([ @{ $state->{'ar:{u4}:key:' . sha(6)} }{qw(status expires)} ],
          ['expired', '1700000000'], 'key 15: expired');
ok(!exists $state->{'ar:keyidx:' . sha(5)}, 'the deleted token is not there');

is_deeply($state->{'ar:{cfg}:channel:1'},
          { name => 'openai', provider => 'openai',
            base_url => 'https://api.openai.com',
            keys => "sk-a111111111\nsk-c333333333", priority => '3',
            weight => '15', status => 'enabled',
            models => 'gpt-4o,gpt-4o-mini,chat,dall-e-3',
            'map:chat' => 'gpt-4o-mini-2024-07-18',
            'map:gpt-4o-mini' => 'gpt-4o-mini-2024-07-18',
            source => 'new-api:1' },
          'channel 1: enabled keys only, weight + 10, mapping chain '
          . 'followed to its end');
is_deeply($state->{'ar:{cfg}:channel:2'},
          { name => 'deepseek', provider => 'openai-compatible',
            base_url => 'https://api.deepseek.com',
            keys => 'sk-deepseek-222222', priority => '0', weight => '10',
            status => 'disabled', models => 'deepseek-chat',
            source => 'new-api:2' },
          'channel 2: DeepSeek is type 43 in New API; auto-disabled');
is($state->{'ar:{cfg}:channel:3'}{'map:claude-sonnet'}, 'claude-3-5-sonnet',
   'channel 3 mapping');
ok(!exists $state->{'ar:{cfg}:channel:6'}{'map:g1'},
   'no mapping for a cycle');
is_deeply($state->{'ar:{cfg}:channels'}, [1, 2, 3, 6], 'channels');

is_deeply($state->{'ar:{cfg}:model:chat'},
          { channels => '1', source => 'new-api' },
          'chat: mapped, not an alias (its target is no model)');
is_deeply($state->{'ar:{cfg}:model:claude-sonnet'},
          { alias => 'claude-3-5-sonnet', source => 'new-api' },
          'claude-sonnet: an alias');
is_deeply($state->{'ar:{cfg}:model:gpt-4o'},
          { channels => '1', source => 'new-api' },
          'gpt-4o: the broken channel is not in the list');
ok(!exists $state->{'ar:{cfg}:model:g1'}, 'g1 is not served');
ok(!exists $state->{'ar:{cfg}:model:suno_music'}, 'nor suno');

# New API bills the client's name

is_deeply($state->{'ar:{cfg}:price:gpt-4o'},
          { input => '2500000', output => '10000000',
            cached_input => '1250000' }, 'gpt-4o with CacheRatio');
is_deeply($state->{'ar:{cfg}:price:chat'},
          { input => '150000', output => '150000' },
          'chat: its own ratio, not its upstream\'s');
is_deeply($state->{'ar:{cfg}:price:claude-3-5-sonnet'},
          { input => '3000000', output => '15000000',
            cached_input => '300000', cache_write => '3750000' },
          'CacheRatio and CreateCacheRatio');
is_deeply($state->{'ar:{cfg}:price:dall-e-3'}, { request => '40000' },
          'ModelPrice: per request');
is_deeply($state->{'ar:{cfg}:price:gemini-2.0-flash'},
          { input => '666667', output => '2666667' }, 'rounded up');
ok(!exists $state->{'ar:{cfg}:price:claude-sonnet'},
   'an alias without a ratio is priced by its target');
is_deeply($state->{'ar:seq'}, { user => '4', key => '15', channel => '6' },
          'sequences');

# second run: nothing

my $before = snapshot();
$j = cli_json(@import);
is($j->{result}, 'nothing to change', 'second run');
is_deeply(snapshot(), $before, '... Redis identical');

# a cycle-free change of the mapping moves the alias

system('sqlite3', $db, qq{UPDATE channels SET model_mapping = '' WHERE id = 3;});
$j = cli_json(@import);
is_deeply([ sort map { "$_->{kind} $_->{id}" } @{ $j->{changes} } ],
          ['channel 3', 'model claude-sonnet'],
          'mapping removed: the channel and the model change');
is_deeply(hgetall('ar:{cfg}:model:claude-sonnet'),
          { channels => '3', source => 'new-api' },
          'the imported alias became a real model');
ok(!exists hgetall('ar:{cfg}:channel:3')->{'map:claude-sonnet'},
   'the stale map: field is gone');

# --strict writes nothing when something is inexact

flush();
rejected([@import, '--strict'], 1, qr/--strict: \d+ item\(s\) cannot/);

done_testing();
