#!/usr/bin/perl
# ai-relay prices: exact USD in, integer micro-USD stored.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use AiRelayCli;

my ($rc, $out, $err, $j);

cli_ok('channels', 'create', '--provider', 'openai', '--key', 'sk-up-1111',
       '--models', 'gpt-4o,dall-e-3');

$out = cli_ok('prices', 'set', 'gpt-4o', '--input', '2.50', '--output',
              '10', '--cached-input', '1.25', '--cache-write', '3.125',
              '--cache-write-1h', '5', '--request', '0.000001');
like($out, qr/price of gpt-4o: input=\$2\.50 cached_input=\$1\.25 .* output=\$10\.00 request=\$0\.000001$/m,
     'set prints the price');
is_deeply(hgetall('ar:{cfg}:price:gpt-4o'),
          { input => '2500000', output => '10000000',
            cached_input => '1250000', cache_write => '3125000',
            cache_write_1h => '5000000', request => '1' },
          'micro-USD per 1M tokens, per request');

cli_ok('prices', 'set', 'dall-e-3', '--image', '0.04',
       '--image-size-quality', '1024x1024:hd=0.08',
       '--image-size-quality', '1792x1024:*=0.12');
is_deeply(hgetall('ar:{cfg}:price:dall-e-3'),
          { image => '40000', 'image:1024x1024:hd' => '80000',
            'image:1792x1024:*' => '120000' }, 'image prices');

# audio/speech: per 1M input characters
$out = cli_ok('prices', 'set', 'gpt-4o', '--character', '15', '--force');
like($out, qr/character=\$15\.00/, 'set prints the character price');
is(hgetall('ar:{cfg}:price:gpt-4o')->{character}, '15000000',
   'micro-USD per 1M characters');
like(cli_ok('prices', 'list'), qr/^\s+character \$15\.00$/m,
     'list shows it');
$out = cli_ok('prices', 'set', 'gpt-4o', '--second', '0.0001', '--force');
is(hgetall('ar:{cfg}:price:gpt-4o')->{second}, '100',
   'micro-USD per second of transcribed audio');
cli_ok('prices', 'set', 'gpt-4o', '--unset', 'second');

# video tasks: per second, by size
cli_ok('prices', 'set', 'dall-e-3', '--second', '0.10',
       '--second-size', '1792x1024=0.50', '--second-size', '1024x1792=0.5');
is_deeply([ @{ hgetall('ar:{cfg}:price:dall-e-3') }{qw(second second:1792x1024 second:1024x1792)} ],
          ['100000', '500000', '500000'], 'per second by video size');
like(cli_ok('prices', 'list'), qr/^\s+second:1792x1024 \$0\.50$/m,
     'list shows it');
cli_ok('prices', 'set', 'dall-e-3', '--unset', 'second:1024x1792',
       '--unset', 'second');
is_deeply([ sort grep { /^second/ } keys %{ hgetall('ar:{cfg}:price:dall-e-3') } ],
          ['second:1792x1024'], '--unset second:SIZE');
rejected(['prices', 'set', 'dall-e-3', '--second-size', '1792x1024'], 1,
         qr/invalid --second-size/);
rejected(['prices', 'set', 'dall-e-3', '--second-size', '17:92=1'], 1,
         qr/invalid --second-size/);
rejected(['prices', 'set', 'dall-e-3', '--unset', 'second:'], 1,
         qr/invalid --unset/);
rejected(['prices', 'set', 'dall-e-3', map { ('--second-size', "${_}x$_=1") } 1 .. 16],
         1, qr/at most 16 video size\/quality prices/);

# video tasks: per second, by size and quality
$out = cli_ok('prices', 'set', 'dall-e-3',
              '--second-size-quality', '1792x1024:high=0.70',
              '--second-size-quality', '1280x720:*=0.2',
              '--second-size-quality', '*:high=0.30');
like($out, qr/ second:1792x1024:high=\$0\.70/, 'set prints it');
is_deeply({ map { $_->[0] => $_->[1] } grep { $_->[0] =~ /^second/ }
            map { [ $_, hgetall('ar:{cfg}:price:dall-e-3')->{$_} ] }
            keys %{ hgetall('ar:{cfg}:price:dall-e-3') } },
          { 'second:1792x1024' => '500000', 'second:1792x1024:high' => '700000',
            'second:1280x720:*' => '200000', 'second:*:high' => '300000' },
          'per second by video size and quality, beside by size');
$out = cli_ok('prices', 'list');
like($out, qr/^\s+second:1792x1024:high \$0\.70$/m, 'list shows it');
like($out, qr/^\s+second:\*:high \$0\.30$/m, 'list shows a quality of any size');
like(cli_ok('prices', 'list', '--micro'), qr/^\s+second:1280x720:\* 200000$/m,
     'list --micro shows a size of any quality');
like(cli_ok('prices', 'show', 'dall-e-3'),
     qr/^\s+second:1792x1024:high\s+\$0\.70 \(700000 uUSD\)$/m, 'show shows it');
$j = cli_json('prices', 'show', 'dall-e-3');
is($j->{'second:*:high'}, 300000, 'show --json: micro-USD');
is($j->{usd}{'second:*:high'}, '$0.30', 'show --json: USD');
rejected(['prices', 'set', 'dall-e-3', '--second-size-quality', '1792x1024=1'],
         1, qr/invalid --second-size-quality/);
rejected(['prices', 'set', 'dall-e-3', '--second-size-quality', '*:*=1'], 1,
         qr/invalid --second-size-quality/);
rejected(['prices', 'set', 'dall-e-3', '--second-size-quality', '1792x1024:=1'],
         1, qr/invalid --second-size-quality/);
rejected(['prices', 'set', 'dall-e-3', '--second-size-quality', 'a b:high=1'],
         1, qr/invalid --second-size-quality/);
rejected(['prices', 'set', 'dall-e-3', '--unset', 'second:*:*'], 1,
         qr/invalid --unset/);
# four set: 12 more make 16, 13 more too many
rejected(['prices', 'set', 'dall-e-3', map { ('--second-size-quality', "${_}x$_:hd=1") } 1 .. 13],
         1, qr/at most 16 video size\/quality prices/);
cli_ok('prices', 'set', 'dall-e-3', map { ('--second-size-quality', "${_}x$_:hd=1") } 1 .. 12);
is(scalar(grep { /^second:/ } keys %{ hgetall('ar:{cfg}:price:dall-e-3') }), 16,
   'sixteen second overrides');
cli_ok('prices', 'set', 'dall-e-3', '--unset', 'second:1792x1024:high',
       '--unset', 'second:1280x720:*', '--unset', 'second:*:high',
       map { ('--unset', "second:${_}x$_:hd") } 1 .. 12);
is_deeply([ sort grep { /^second/ } keys %{ hgetall('ar:{cfg}:price:dall-e-3') } ],
          ['second:1792x1024'], '--unset second:SIZE:QUALITY');
cli_ok('prices', 'set', 'dall-e-3', '--unset', 'second:1792x1024');
cli_ok('prices', 'set', 'gpt-4o', '--unset', 'character');
ok(!exists hgetall('ar:{cfg}:price:gpt-4o')->{character}, 'and unsets it');

cli_ok('prices', 'set', 'gpt-4o', '--unset', 'cache_write_1h',
       '--output', '8');
my $p = hgetall('ar:{cfg}:price:gpt-4o');
ok(!exists $p->{cache_write_1h}, '--unset');
is($p->{output}, '8000000', 'other fields change, the rest stays');
is($p->{input}, '2500000', '... stays');

# bad input: nothing changes

rejected(['prices', 'set', 'gpt-4o', '--input', '0.0000001'], 1,
         qr/invalid --input "0\.0000001"/);
rejected(['prices', 'set', 'gpt-4o', '--output', '-1'], 1,
         qr/invalid --output/);
rejected(['prices', 'set', 'gpt-4o', '--input', '1', '--output', 'x'], 1,
         qr/invalid --output/);
rejected(['prices', 'set', 'gpt-4o'], 2, qr/nothing to set/);
rejected(['prices', 'set', 'nosuch', '--input', '1'], 1,
         qr/no model "nosuch" \(add it first, or use --force\)/);
rejected(['prices', 'set', 'gpt-4o', '--unset', 'colour'], 1,
         qr/invalid --unset "colour"/);
rejected(['prices', 'set', 'gpt-4o', '--image-size-quality', '1024x1024=1'],
         1, qr/invalid --image-size-quality/);
rejected(['prices', 'set', 'gpt-4o', '--image-size-quality', '*:*=1'], 1,
         qr/invalid --image-size-quality/);
rejected(['prices', 'set', 'gpt-4o', map { ('--image-size-quality',
                                            "${_}x$_:hd=1") } 1 .. 9],
         1, qr/at most 8 image size\/quality prices/);

cli_ok('prices', 'set', 'future-model', '--input', '1', '--force');
is(hgetall('ar:{cfg}:price:future-model')->{input}, '1000000', '--force');

# list, show, remove

$j = cli_json('prices', 'list');
is_deeply([ sort keys %$j ], ['dall-e-3', 'future-model', 'gpt-4o'],
          'list: every priced name');
is($j->{'gpt-4o'}{input}, 2500000, 'list: micro-USD');
is($j->{'gpt-4o'}{usd}{input}, '$2.50', 'list: USD');
$out = cli_ok('prices', 'list');
like($out, qr/^gpt-4o\s+\$2\.50\s+\$1\.25\s+\$3\.125\s+-\s+\$8\.00\s+\$0\.000001\s+-$/m,
     'list as a table');
like($out, qr/image:1024x1024:hd \$0\.08/, 'list: image overrides');
$out = cli_ok('prices', 'list', '--micro');
like($out, qr/^gpt-4o\s+2500000\s+1250000\s+3125000\s+-\s+8000000\s+1\s+-$/m,
     'list --micro');
like($out, qr/image:1024x1024:hd 80000/, 'list --micro: image overrides');

$out = cli_ok('prices', 'show', 'gpt-4o');
like($out, qr/cached_input\s+\$1\.25 \(1250000 uUSD\)/, 'show');
rejected(['prices', 'show', 'nosuch'], 1, qr/no price for "nosuch"/);

cli_ok('prices', 'remove', 'future-model');
is(redis_cmd('EXISTS', 'ar:{cfg}:price:future-model'), 0, 'remove');
rejected(['prices', 'remove', 'future-model'], 1, qr/no price/);

done_testing();
