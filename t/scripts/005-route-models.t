# ROUTE and MODELS (src/lua/route.lua, src/lua/models.lua) run on their
# own: a model's channels and price, alias chains and how they break, and
# the list GET /v1/models shows.

use strict;
use warnings;

use lib 't/helpers';
use AIRelayTest;
use Test::More;

plan tests => 24;

# route('name', depth) -> the reply
sub route {
    my ($name, $depth) = @_;
    return run_script('route', ['ar:{cfg}:version'], $name, $depth // 3);
}

sub models { return run_script('models', ['ar:{cfg}:models']) }

sub version { return redis('GET', 'ar:{cfg}:version') }


reset_redis();
is_deeply(route('gpt-4o-mini'), ['unknown', 'gpt-4o-mini', '0'],
          'nothing configured: unknown, version 0');

seed_channel(1, base_url => 'http://a', keys => ['k1', 'k2'], priority => 5,
             weight => 3, map => { 'gpt-4o-mini' => 'real-mini' });
seed_channel(2, base_url => 'http://b', status => 'disabled',
             provider => 'anthropic');
redis('HSET', 'ar:{cfg}:channel:3', base_url => 'http://c');   # no provider
seed_model('gpt-4o-mini', channels => '1, 3,2 ,9');
seed_price('gpt-4o-mini', input => 150000, output => 600000);
is_deeply(route('nope'), ['unknown', 'nope', version()],
          'an unknown model, with the config version');

my $r = route('gpt-4o-mini');
is_deeply([ @$r[0 .. 3] ], ['ok', 'gpt-4o-mini', version(), 'gpt-4o-mini'],
          'a model: ok, its name, the version, priced as itself');
is_deeply({ @{ $r->[4] } }, { input => 150000, output => 600000 },
          'its price');
is_deeply([ @$r[5 .. $#$r] ],
          [['1', 'openai', 'http://a', "k1\nk2", '5', '3', 'enabled',
            'real-mini', 'channel1'],
           ['2', 'anthropic', 'http://b', 'upstream-key-2', '0', '1',
            'disabled', 'gpt-4o-mini', 'channel2']],
          'its channels in list order, the upstream\'s name for the model'
          . ' and the channel\'s name;'
          . ' commas and blanks between ids; none without a provider');

redis('HSET', 'ar:{cfg}:channel:4', provider => 'openai');
seed_model('bare', channels => '4');
is_deeply(route('bare'),
          ['ok', 'bare', version(), '', [],
           ['4', 'openai', '', '', '0', '1', 'enabled', 'bare', '']],
          'unpriced; a channel\'s unset fields get their defaults');

seed_model('empty', channels => '');
is_deeply(route('empty'), ['ok', 'empty', version(), '', []],
          'a model without channels');


# aliases

seed_alias('fast', 'gpt-4o-mini');
$r = route('fast');
is_deeply([ @$r[0 .. 3] ], ['ok', 'gpt-4o-mini', version(), 'gpt-4o-mini'],
          'an alias resolves to its target, priced as the target');
is($r->[5][7], 'real-mini', 'the upstream name is the target\'s');

seed_price('fast', input => 1, output => 2);
$r = route('fast');
is($r->[3], 'fast', 'an alias with a price of its own is priced as itself');
is_deeply({ @{ $r->[4] } }, { input => 1, output => 2 }, 'that price');

seed_alias('faster', 'fast');
is(route('faster')->[1], 'gpt-4o-mini', 'an alias of an alias');
is(route('faster')->[3], 'fast', 'priced by the nearest name with a price');

seed_alias('lost', 'missing');
is_deeply(route('lost'), ['broken', 'lost -> missing', version()],
          'an alias to nothing: broken');

seed_alias('a', 'b');
seed_alias('b', 'a');
is_deeply(route('a'), ['cycle', 'a -> b -> a', version()], 'a cycle');
seed_alias('self', 'self');
is_deeply(route('self'), ['cycle', 'self -> self', version()],
          'an alias to itself');

is_deeply(route('faster', 1),
          ['deep', 'faster -> fast -> gpt-4o-mini', version()],
          'two hops where one is allowed: deep');
is(route('faster', 2)->[0], 'ok', 'two allowed: ok');
is(route('fast', 0)->[0], 'deep', 'depth 0: no alias at all');
is(route('gpt-4o-mini', 0)->[0], 'ok', 'depth 0: a model itself is fine');

redis('HSET', 'ar:{cfg}:model:odd', alias => '', channels => '1');
is(route('odd')->[1], 'odd', 'an empty alias is no alias');


# MODELS

reset_redis();
is_deeply(models(), [], 'no models: an empty list');

seed_model('b', owned_by => 'openai', created => 1700000000);
seed_model('a');
seed_model('secret', hidden => 1);
seed_alias('c', 'a');
is_deeply(models(),
          [['a', 'ai-relay', '0'], ['b', 'openai', '1700000000'],
           ['c', 'ai-relay', '0']],
          'sorted by name, hidden ones left out, aliases with defaults');
redis('HSET', 'ar:{cfg}:model:secret', hidden => 0);
is(scalar @{ models() }, 4, 'hidden 0 is listed');
