#!/usr/bin/perl
# seed.pl REDIS_PORT KEY: the bench world in the bench's own Redis, with
# the test suite's helpers (t/helpers/AIRelayTest.pm): user 1 with a huge
# balance (not unlimited: every request reserves and settles), KEY, model
# gpt-4o-mini and alias bench-alias on channel 1 -> the front end's
# `upstream mock` block, priced $0.15 / $0.60 per 1M tokens.
use strict;
use warnings;
use FindBin;

BEGIN { $ENV{TEST_NGINX_REDIS_PORT} = $ARGV[0] or die "usage: seed.pl PORT KEY\n" }
use lib "$FindBin::Bin/../../t/helpers";
use AIRelayTest;

my $key = $ARGV[1] or die "usage: seed.pl PORT KEY\n";

reset_redis();
seed_user(1, balance => 1_000_000_000_000_000, unlimited => 0);
seed_key(1, $key, id => 1, name => 'bench');
seed_channel(1, name => 'mock', base_url => 'http://mock',
             keys => ['sk-upstream-bench']);
seed_model('gpt-4o-mini', channels => '1');
seed_alias('bench-alias', 'gpt-4o-mini');
seed_price('gpt-4o-mini', input => 150000, output => 600000);

# a model on an Anthropic channel: its streams are translated (xstream)
seed_channel(2, name => 'mock-anthropic', provider => 'anthropic',
             base_url => 'http://mock/asse', keys => ['sk-upstream-bench'],
             map => { 'bench-claude' => 'claude-bench' });
seed_model('bench-claude', channels => '2');
seed_price('bench-claude', input => 3000000, output => 15000000);
print "seeded: user 1, key id 1, bench-alias -> gpt-4o-mini -> channel 1\n";
