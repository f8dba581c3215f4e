#!/usr/bin/perl
# ai-relay import --from one-api --sqlite: the exact keys written, a
# second run that changes nothing, --dry-run, conflicts, --id-offset,
# --sync-balances, --strict, and what an operator changed being kept.

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

my $db = sqlite_db('one-api.db', one_api_schema('sqlite'), one_api_rows());
my @import = ('import', '--from', 'one-api', '--sqlite', $db);

sub sha { sha256_hex(one_api_key($_[0])) }
sub masked { 'sk-AA' . "\xe2\x80\xa6" . 'AAA' . $_[0] }

# --dry-run: a plan, nothing written

$j = cli_json(@import, '--dry-run');
ok($j->{dry_run}, 'dry run');
ok(!$j->{written}, 'nothing written');
is(scalar @{ $j->{changes} }, 24, 'the changes it would make');
is_deeply(snapshot(), {}, 'Redis still empty');

# the import

$j = cli_json(@import);
ok($j->{written}, 'written');
is($j->{result}, 'written: 24 change(s) in one transaction', 'result');
is_deeply({ map { ("$_->{kind} $_->{id}" => $_->{reason}) }
            @{ $j->{skipped} } },
          { 'key 5' => 'its user 99 is not imported',
            'channel 3' => 'type 3 (Azure OpenAI) needs deployment URLs '
                           . 'and the api-key header; no ai-relay provider '
                           . 'does that' },
          'what could not be imported, and why');
is_deeply($j->{inexact}, [], 'every price exact');
my $notes = join "\n", @{ $j->{notes} };
like($notes, qr/key 4: its IP restriction "10\.0\.0\.0\/8" is not supported/,
     'note: subnet dropped');
like($notes, qr/group "vip" was billed at GroupRatio 0\.8/,
     'note: group ratio');
like($notes, qr/gpt-3\.5-turbo is billed as different upstream models/,
     'note: one client name, several upstream prices');
like($notes, qr/ModelRatio "gpt-4\(3\)" is per channel type/,
     'note: channel-type ratio');
like($notes, qr/channel 5: its system_prompt is not supported/,
     'note: ignored channel setting');
like($notes, qr/channels of group "vip" now serve every user/,
     'note: groups');

my $state = state();

# users: quota units -> micro-USD exactly (1 quota = 2 uUSD)

my %user = (unlimited => '0', created => $NOW, requests => '0',
            used => '0', group => 'default', status => 'active');
is_deeply($state->{'ar:{u1}:user'},
          { %user, name => 'root', balance => '1000000000',
            source => 'one-api:1' }, 'user 1');
is_deeply($state->{'ar:{u2}:user'},
          { %user, name => 'alice', balance => '10000000', used => '2000000',
            requests => '42', source => 'one-api:2' }, 'user 2');
is_deeply($state->{'ar:{u3}:user'},
          { %user, name => 'bob', balance => '500002', status => 'disabled',
            group => 'vip', source => 'one-api:3' },
          'user 3: disabled, odd quota exact');
is_deeply($state->{'ar:{u4}:user'},
          { %user, name => 'carol', balance => '-200',
            source => 'one-api:4' }, 'user 4: overdrawn');
is_deeply($state->{'ar:users'}, [1, 2, 3, 4], 'ar:users');
is_deeply($state->{'ar:{u2}:ledger'},
          [ [ time => $NOW, op => 'import', amount => '10000000',
              balance => '10000000', note => 'import from one-api user 2' ] ],
          'the balance is in the ledger');

# keys: SHA-256 of "sk-" + their key

my %key = (rpm => '0', tpm => '0', unlimited => '0', requests => '0',
           models => '', expires => '0', status => 'active', used => '0');
is_deeply($state->{'ar:{u2}:key:' . sha(1)},
          { %key, id => '1', name => 'plain', masked => masked(1),
            quota => '2000000', used => '1000', created => '1700000000',
            source => 'one-api:1' }, 'key 1');
is_deeply($state->{'ar:{u2}:key:' . sha(2)},
          { %key, id => '2', name => 'unlimited', masked => masked(2),
            models => 'gpt-4,gpt-3.5-turbo', quota => '-1',
            created => '1700000001', source => 'one-api:2' },
          'key 2: unlimited quota is no key quota; allowed models');
is_deeply($state->{'ar:{u3}:key:' . sha(3)},
          { %key, id => '3', name => 'expired', masked => masked(3),
            status => 'expired', expires => '1600000000', quota => '200',
            created => '1700000002', source => 'one-api:3' },
          'key 3: expired');
is_deeply($state->{'ar:{u2}:key:' . sha(4)},
          { %key, id => '4', name => 'disabled', masked => masked(4),
            status => 'disabled', quota => '200', created => '1700000003',
            source => 'one-api:4' }, 'key 4: disabled');
is_deeply($state->{'ar:{u4}:key:' . sha(6)},
          { %key, id => '6', name => 'exhausted', masked => masked(6),
            status => 'exhausted', quota => '0', created => '1700000005',
            source => 'one-api:6' }, 'key 6: exhausted');
is_deeply($state->{'ar:{u2}:keys'}, [ sort map { sha($_) } 1, 2, 4 ],
          'the key set of user 2');
is($state->{'ar:keyidx:' . sha(1)}, '2', 'ar:keyidx');
is($state->{'ar:keyid:1'}, '2:' . sha(1), 'ar:keyid');
ok(!exists $state->{'ar:keyid:5'}, 'the orphan token is not there');

# channels

my %ch = (weight => '1', status => 'enabled', priority => '0');
is_deeply($state->{'ar:{cfg}:channel:1'},
          { %ch, name => 'openai', provider => 'openai',
            base_url => 'https://api.openai.com',
            keys => 'sk-up-openai-111111', priority => '10',
            models => 'gpt-4,gpt-4-0613,gpt-3.5-turbo',
            'map:gpt-4' => 'gpt-4-0613', source => 'one-api:1' },
          'channel 1: default base URL, mapping');
is_deeply($state->{'ar:{cfg}:channel:2'},
          { %ch, name => 'claude', provider => 'anthropic',
            base_url => 'https://proxy.example.com',
            keys => 'sk-ant-222222222222', priority => '5',
            status => 'disabled', models => 'claude-3-5-sonnet',
            source => 'one-api:2' }, 'channel 2: disabled');
is_deeply($state->{'ar:{cfg}:channel:4'},
          { %ch, name => 'deepseek', provider => 'openai-compatible',
            base_url => 'https://api.deepseek.com',
            keys => 'sk-deepseek-444444',
            models => 'deepseek-chat,gpt-3.5-turbo',
            'map:gpt-3.5-turbo' => 'deepseek-chat',
            'map:deepseek-chat' => 'deepseek-v3', source => 'one-api:4' },
          'channel 4: DeepSeek (36), One API maps once, not a chain');
is_deeply($state->{'ar:{cfg}:channel:5'},
          { %ch, name => 'gemini', provider => 'gemini',
            base_url => 'https://generativelanguage.googleapis.com',
            keys => 'AIzaGemini55555555', models => 'gemini-1.5-pro',
            source => 'one-api:5' }, 'channel 5: Gemini');
is_deeply($state->{'ar:{cfg}:channels'}, [1, 2, 4, 5], 'no Azure channel');

# models: a mapping every channel shares is an alias

is_deeply($state->{'ar:{cfg}:model:gpt-4'},
          { alias => 'gpt-4-0613', source => 'one-api' },
          'gpt-4 -> gpt-4-0613 is an alias');
is_deeply($state->{'ar:{cfg}:model:gpt-4-0613'},
          { channels => '1', source => 'one-api' }, 'gpt-4-0613');
is_deeply($state->{'ar:{cfg}:model:gpt-3.5-turbo'},
          { channels => '1,4', source => 'one-api' },
          'gpt-3.5-turbo: two channels, mapped on one');
is_deeply($state->{'ar:{cfg}:model:claude-3-5-sonnet'},
          { channels => '2', source => 'one-api' }, 'claude');
is_deeply($state->{'ar:{cfg}:models'},
          [ sort qw(gpt-4 gpt-4-0613 gpt-3.5-turbo claude-3-5-sonnet
                    deepseek-chat gemini-1.5-pro) ], 'ar:{cfg}:models');

# prices: One API bills the mapped (upstream) name; ratio 1 = $2 / 1M

is_deeply($state->{'ar:{cfg}:price:gpt-4-0613'},
          { input => '30000000', output => '60000000' }, 'gpt-4-0613');
ok(!exists $state->{'ar:{cfg}:price:gpt-4'},
   'the alias is priced by its target');
is_deeply($state->{'ar:{cfg}:price:gpt-3.5-turbo'},
          { input => '500000', output => '1500000' },
          'gpt-3.5-turbo: the higher of its upstream prices');
is_deeply($state->{'ar:{cfg}:price:deepseek-chat'},
          { input => '270000', output => '270000' },
          'deepseek-chat is billed as deepseek-v3');
is_deeply($state->{'ar:{cfg}:price:claude-3-5-sonnet'},
          { input => '3000000', output => '15000000' }, 'claude');
is_deeply($state->{'ar:{cfg}:price:gemini-1.5-pro'},
          { input => '3500000', output => '10500000' }, 'gemini');
is_deeply($state->{'ar:{cfg}:imported'},
          { map { ("price:$_" => 'one-api') }
            qw(gpt-4-0613 gpt-3.5-turbo deepseek-chat claude-3-5-sonnet
               gemini-1.5-pro) }, 'which prices were imported');
is_deeply($state->{'ar:seq'}, { user => '4', key => '6', channel => '5' },
          'sequences past the imported ids');
is($state->{'ar:{cfg}:version'}, '1', 'one version bump');

# the relay sees what the CLI shows

$j = cli_json('models', 'show', 'gpt-4');
is($j->{resolved}, 'gpt-4-0613', 'models show gpt-4');
is($j->{priced_as}, 'gpt-4-0613', '... priced as its target');

# a second run changes nothing

my $before = snapshot();
$j = cli_json(@import);
is($j->{result}, 'nothing to change', 'second run: nothing to change');
is_deeply($j->{changes}, [], '... no changes');
is_deeply(snapshot(), $before, '... Redis identical');
($rc, $out) = cli(@import, '--dry-run');
like($out, qr/^dry run: 0 change\(s\), nothing written$/m, 'dry run too');
is_deeply(snapshot(), $before, '... Redis identical');

# the relay spends money: the import leaves balances alone...

redis_cmd('HINCRBY', 'ar:{u2}:user', 'balance', -5000);
redis_cmd('HINCRBY', 'ar:{u2}:key:' . sha(1), 'quota', -5000);
$before = snapshot();
$j = cli_json(@import);
is($j->{result}, 'nothing to change', 'balances are the relay\'s');
is_deeply(snapshot(), $before, '... untouched');

# ...unless asked to

$j = cli_json(@import, '--sync-balances');
is_deeply([ sort map { "$_->{kind} $_->{id}" } @{ $j->{changes} } ],
          ['key 1', 'user 2'], '--sync-balances: the two that differ');
is(hgetall('ar:{u2}:user')->{balance}, '10000000', 'balance restored');
is(hgetall('ar:{u2}:key:' . sha(1))->{quota}, '2000000', 'quota restored');
my $ledger = redis_cmd('XRANGE', 'ar:{u2}:ledger', '-', '+');
is_deeply({ @{ $ledger->[-1][1] } },
          { time => $NOW, op => 'import', amount => '5000',
            balance => '10000000', note => 'import from one-api user 2' },
          'the correction is in the ledger');

# the source changes: only that is written

system('sqlite3', $db, "UPDATE channels SET priority = 20 WHERE id = 1; "
                       . "UPDATE tokens SET name = 'renamed' WHERE id = 2;");
$j = cli_json(@import);
is_deeply([ map { [ $_->{kind}, $_->{id}, $_->{fields} ] }
            @{ $j->{changes} } ],
          [ [ 'key', '2', { name => 'renamed', user => '2' } ],
            [ 'channel', '1', { priority => '20' } ] ],
          'only the changed fields');

# what an operator changed in ai-relay stays

cli_ok('keys', 'disable', '1');
cli_ok('channels', 'update', '4', '--weight', '7');
cli_ok('prices', 'set', 'gpt-4-0613', '--input', '29');
cli_ok('keys', 'rotate', '2');
$before = snapshot();
$j = cli_json(@import);
is($j->{result}, 'nothing to change', 'operator changes are kept');
my %skip = map { ("$_->{kind} $_->{id}" => $_->{reason}) } @{ $j->{skipped} };
like($skip{'key 1'}, qr/changed with ai-relay since it was imported; kept/,
     'a disabled key stays disabled');
like($skip{'channel 4'}, qr/changed with ai-relay/, 'an edited channel');
like($skip{'price gpt-4-0613'}, qr/set in Redis by other means; kept/,
     'an edited price');
like($skip{'key 2'}, qr/rotated or replaced in ai-relay/, 'a rotated key');
is_deeply(snapshot(), $before, '... Redis identical');

# bad input: exit codes, and nothing changes

rejected(['import', '--from', 'two-api', '--sqlite', $db], 1,
         qr/invalid --from "two-api"/);
rejected(['import', '--sqlite', $db], 2, qr/--from one-api\|new-api/);
rejected(['import', '--from', 'one-api'], 2, qr/give one of --sqlite/);
rejected([@import, '--mysql', 'db=x'], 2, qr/give one of --sqlite/);
rejected(['import', '--from', 'one-api', '--sqlite', "$TMP/missing.db"], 3,
         qr/cannot open SQLite database/);
my $empty = sqlite_db('empty.db', 'CREATE TABLE x (y);');
rejected(['import', '--from', 'one-api', '--sqlite', $empty], 1,
         qr/has no table "users"; is it a one-api database/);
rejected([@import, '--source', 'a:b'], 1, qr/invalid --source/);
rejected([@import, '--id-offset', '-1'], 1, qr/invalid --id-offset/);

# conflicts: ids taken by things not imported from this source

flush();
cli_ok('users', 'create', 'zed');
cli_ok('channels', 'create', '--provider', 'openai', '--id', '4');
($out, $err) = rejected([@import], 1,
                        qr/import refused: 2 conflict\(s\) with existing data/);
like($out, qr/! user 1 exists in Redis and was not imported from this source/,
     'the conflicting user');
like($out, qr/! channel 4 exists in Redis/, 'the conflicting channel');

$j = cli_json(@import, '--id-offset', '100');
ok($j->{written}, '--id-offset keeps them apart');
is(hgetall('ar:{u102}:user')->{name}, 'alice', 'user 2 is 102');
is(hgetall('ar:{u102}:user')->{source}, 'one-api:2', 'source keeps their id');
is(redis_cmd('GET', 'ar:keyid:101'), '102:' . sha(1), 'token 1 is key 101');
is(hgetall('ar:{cfg}:model:gpt-3.5-turbo')->{channels}, '101,104',
   'channels 101 and 104');
is(hgetall('ar:{u1}:user')->{name}, 'zed', 'the existing user untouched');
is_deeply(hgetall('ar:seq'), { user => '104', key => '106',
                               channel => '105' }, 'sequences');

# a model that exists already: channels are added to it

flush();
cli_ok('channels', 'create', '--provider', 'openai', '--id', '50',
       '--models', 'gemini-1.5-pro');
cli_ok('models', 'alias', 'claude-3-5-sonnet', 'gemini-1.5-pro');
$j = cli_json(@import);
is(hgetall('ar:{cfg}:model:gemini-1.5-pro')->{channels}, '50,5',
   'an existing model gets the imported channel');
is_deeply(hgetall('ar:{cfg}:model:claude-3-5-sonnet'),
          { alias => 'gemini-1.5-pro' }, 'an existing alias is kept');
%skip = map { ("$_->{kind} $_->{id}" => $_->{reason}) } @{ $j->{skipped} };
like($skip{'model claude-3-5-sonnet'}, qr/an alias of gemini-1\.5-pro in Redis/,
     '... and reported');

# --strict: anything inexact or left out, and nothing is written

flush();
($out, $err) = rejected([@import, '--strict'], 1,
                        qr/--strict: 2 item\(s\) cannot be imported exactly/);
like($out, qr/^dry run: 24 change\(s\), nothing written$/m,
     '--strict shows what would have been written');

done_testing();
