#!/usr/bin/perl
# ai-relay channels and models: both sides of the model -> channels link,
# aliases (no cycles), resolution as the relay does it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use AiRelayCli;

my ($rc, $out, $err, $j);

# channels create

$out = cli_ok('channels', 'create', '--provider', 'openai', '--name', 'oai',
              '--key', 'sk-up-aaaaaaaaaaaa', '--key', 'sk-up-bbbbbbbbbbbb',
              '--models', 'gpt-4o,gpt-4o-mini', '--map',
              'gpt-4o=gpt-4o-2024-08-06', '--priority', '5');
like($out, qr/created channel 1 \(oai\): openai https:\/\/api\.openai\.com,/,
     'create with the default base URL');

is_deeply(hgetall('ar:{cfg}:channel:1'),
          { name => 'oai', provider => 'openai',
            base_url => 'https://api.openai.com',
            keys => "sk-up-aaaaaaaaaaaa\nsk-up-bbbbbbbbbbbb",
            priority => '5', weight => '1', status => 'enabled',
            models => 'gpt-4o,gpt-4o-mini',
            'map:gpt-4o' => 'gpt-4o-2024-08-06' },
          'the channel hash');
is_deeply(smembers('ar:{cfg}:channels'), ['1'], 'ar:{cfg}:channels');
is_deeply(hgetall('ar:{cfg}:model:gpt-4o'), { channels => '1' },
          'the models got the channel');
is_deeply(smembers('ar:{cfg}:models'), ['gpt-4o', 'gpt-4o-mini'],
          'ar:{cfg}:models');

cli_ok('channels', 'create', '--provider', 'openai-compatible',
       '--base-url', 'http://127.0.0.1:8080/v1/', '--models', 'gpt-4o,llama',
       '--weight', '3', '--disabled', '--id', '9');
my $c9 = hgetall('ar:{cfg}:channel:9');
is($c9->{base_url}, 'http://127.0.0.1:8080/v1', 'trailing slash dropped');
is_deeply([ @$c9{qw(name keys weight status)} ],
          ['channel-9', '', '3', 'disabled'], 'defaults, --disabled');
is(hgetall('ar:{cfg}:model:gpt-4o')->{channels}, '1,9', 'appended');
is(hgetall('ar:seq')->{channel}, '9', 'ar:seq channel');

cli_ok('channels', 'create', '--provider', 'anthropic', '--key', 'k-ant-x1');
is(hgetall('ar:{cfg}:channel:10')->{base_url}, 'https://api.anthropic.com',
   'anthropic default, next id');
cli_ok('channels', 'create', '--provider', 'gemini', '--key', 'AIza-x1');
is(hgetall('ar:{cfg}:channel:11')->{base_url},
   'https://generativelanguage.googleapis.com', 'gemini default');

rejected(['channels', 'create', '--provider', 'openai-compatible'], 1,
         qr/--base-url is required for provider openai-compatible/);
rejected(['channels', 'create', '--provider', 'azure'], 1,
         qr/invalid --provider "azure"/);
rejected(['channels', 'create'], 2, qr/--provider is required/);
rejected(['channels', 'create', '--provider', 'openai', '--base-url',
          'ftp://x'], 1, qr/invalid --base-url/);
rejected(['channels', 'create', '--provider', 'openai', '--base-url',
          'http:// x'], 1, qr/invalid --base-url/);
rejected(['channels', 'create', '--provider', 'openai', '--weight', '-1'], 1,
         qr/invalid --weight/);
rejected(['channels', 'create', '--provider', 'openai', '--priority', 'hi'],
         1, qr/invalid --priority/);
rejected(['channels', 'create', '--provider', 'openai', '--map', 'a'], 1,
         qr/invalid --map "a"/);
rejected(['channels', 'create', '--provider', 'openai', '--key', 'a b'], 1,
         qr/invalid --key number 1/);
rejected(['channels', 'create', '--provider', 'openai', '--id', '1'], 1,
         qr/channel id 1 is taken/);
rejected(['channels', 'create', '--provider', 'openai', '--unmap', 'x'], 2,
         qr/--unmap is for update/);

# channels update

cli_ok('channels', 'update', '1', '--key', 'sk-new-cccccccccc', '--map',
       'gpt-4o-mini=mini', '--unmap', 'gpt-4o', '--models', 'gpt-4o-mini');
my $c1 = hgetall('ar:{cfg}:channel:1');
is($c1->{keys}, 'sk-new-cccccccccc', 'update replaces the keys');
is($c1->{'map:gpt-4o-mini'}, 'mini', 'update adds a mapping');
ok(!exists $c1->{'map:gpt-4o'}, 'update --unmap removes one');
is($c1->{models}, 'gpt-4o-mini', 'update --models');
is(hgetall('ar:{cfg}:model:gpt-4o')->{channels}, '9',
   'the channel left the models it no longer serves');
is($c1->{name}, 'oai', 'other fields stay');
rejected(['channels', 'update', '77', '--weight', '2'], 1, qr/no channel 77/);
rejected(['channels', 'update', '1', '--id', '3'], 2, qr/--id and --disabled/);

cli_ok('channels', 'disable', '1');
is(hgetall('ar:{cfg}:channel:1')->{status}, 'disabled', 'disable');
cli_ok('channels', 'enable', '1');
is(hgetall('ar:{cfg}:channel:1')->{status}, 'enabled', 'enable');
rejected(['channels', 'enable', '77'], 1, qr/no channel 77/);
rejected(['channels', 'enable', 'x'], 1, qr/invalid channel id/);

# list and show mask the upstream keys

$out = cli_ok('channels', 'list');
unlike($out, qr/sk-new-cccccccccc|sk-up-bbbbbbbbbbbb/, 'list masks keys');
like($out, qr/^1\s+oai\s+openai\s+enabled\s+5\s+1\s+1\s+https/m,
     'list as a table');
$j = cli_json('channels', 'show', '1');
is_deeply($j->{keys}, ["sk-ne\x{2026}cccc"], 'show masks keys');
is_deeply($j->{map}, { 'gpt-4o-mini' => 'mini' }, 'show has the map');

# models: set, alias, cycles

rejected(['models', 'set', 'm1'], 2, qr/--channels is required/);
rejected(['models', 'set', 'm1', '--channels', '1,42'], 1, qr/no channel 42/);
rejected(['models', 'set', 'm1', '--channels', 'x'], 1,
         qr/invalid channel id "x"/);
rejected(['models', 'set', 'a b', '--channels', '1'], 1,
         qr/invalid model name/);

cli_ok('models', 'set', 'm1', '--channels', '9,1', '--owned-by', 'acme',
       '--created', '2025-01-01');
is_deeply(hgetall('ar:{cfg}:model:m1'),
          { channels => '9,1', owned_by => 'acme', created => '1735689600' },
          'models set');
like(hgetall('ar:{cfg}:channel:1')->{models}, qr/(^|,)m1(,|$)/,
     "the channel's model list follows");
cli_ok('models', 'set', 'm1', '--channels', '9', '--hidden');
is(hgetall('ar:{cfg}:model:m1')->{channels}, '9', 'models set replaces');
is(hgetall('ar:{cfg}:model:m1')->{hidden}, '1', '--hidden');
unlike(hgetall('ar:{cfg}:channel:1')->{models}, qr/m1/,
       'dropped channel no longer lists it');
cli_ok('models', 'set', 'm1', '--visible');
ok(!exists hgetall('ar:{cfg}:model:m1')->{hidden}, '--visible');

cli_ok('models', 'alias', 'fast', 'm1');
cli_ok('models', 'alias', 'faster', 'fast');
is_deeply(hgetall('ar:{cfg}:model:faster'), { alias => 'fast' }, 'alias');

rejected(['models', 'alias', 'm1', 'faster'], 1,
         qr/refusing a cycle: m1 -> faster -> fast -> m1/);
rejected(['models', 'alias', 'fast', 'fast'], 1, qr/cannot point to itself/);
rejected(['models', 'alias', 'x', 'nowhere'], 1, qr/no model "nowhere"/);
rejected(['models', 'alias', 'x', 'm1', '--channels', '1'], 2,
         qr/an alias has no channels/);
rejected(['channels', 'update', '9', '--models', 'fast'], 1,
         qr/"fast" is an alias/);

# show resolves like the relay

redis_cmd('HSET', 'ar:{cfg}:price:fast', 'input', '1000000');
$j = cli_json('models', 'show', 'faster');
is($j->{chain}, 'faster -> fast -> m1', 'show: the chain');
is($j->{resolved}, 'm1', 'show: resolved');
is($j->{priced_as}, 'fast', 'show: first priced name of the chain');
is_deeply($j->{price}, { input => 1000000 }, 'show: the price');
is($j->{channels}[0]{id}, 9, 'show: the channels');
is($j->{channels}[0]{upstream_model}, 'm1', 'show: upstream name');

$j = cli_json('models', 'show', 'gpt-4o-mini');
is($j->{channels}[0]{upstream_model}, 'mini', 'show: mapped upstream name');

redis_cmd('HSET', 'ar:{cfg}:model:loop1', 'alias', 'loop2');
redis_cmd('HSET', 'ar:{cfg}:model:loop2', 'alias', 'loop1');
$j = cli_json('models', 'show', 'loop1');
is($j->{problem}, 'cycle', 'show reports a cycle made behind its back');

$j = cli_json('models', 'list');
my %types = map { $_->{name} => $_->{type} } @$j;
is($types{fast}, 'alias', 'list: alias');
is($types{m1}, 'model', 'list: model');

# an alias replaces a real model

cli_ok('models', 'alias', 'llama', 'm1');
is_deeply(hgetall('ar:{cfg}:model:llama'), { alias => 'm1' },
          'a real model became an alias');
unlike(hgetall('ar:{cfg}:channel:9')->{models}, qr/llama/,
       'its channel no longer lists it');
cli_ok('models', 'set', 'llama', '--channels', '9');
is_deeply(hgetall('ar:{cfg}:model:llama'), { channels => '9' },
          'and back to a real model');

# remove

rejected(['models', 'remove', 'fast'], 1,
         qr/aliases point to "fast": faster/);
rejected(['models', 'remove', 'nosuch'], 1, qr/no model "nosuch"/);
cli_ok('models', 'remove', 'faster');
ok(!redis_cmd('EXISTS', 'ar:{cfg}:model:faster'), 'alias removed');
ok(!grep({ $_ eq 'faster' } @{ smembers('ar:{cfg}:models') }),
   'and out of the set');
cli_ok('models', 'remove', 'llama');
unlike(hgetall('ar:{cfg}:channel:9')->{models}, qr/llama/,
       'removed model leaves its channels');

cli_ok('channels', 'remove', '9');
ok(!redis_cmd('EXISTS', 'ar:{cfg}:channel:9'), 'channel removed');
is(hgetall('ar:{cfg}:model:m1')->{channels}, '', 'and out of every model');
is_deeply(smembers('ar:{cfg}:channels'), ['1', '10', '11'], 'and the set');
rejected(['channels', 'remove', '9'], 1, qr/no channel 9/);

done_testing();
