# Moving from One API / New API: a client keeps its old key and gets a
# completion through nginx, billed at the imported price.

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(1);
# once: each block seeds Redis in --- init (run once per block) and
# asserts the state its requests leave
plan tests => repeat_each() * 21;
no_shuffle();
no_long_string();
install_redis_check();

our $HttpConfig = http_config();
our $Config = relay_config();

run_tests();

__DATA__

=== TEST 1: One API: old key, model mapping, One API's ratios
--- init
AIRelayTest::import_fixture('one-api', [1]);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4","messages":[{"role":"user","content":"hi"}],"max_tokens":100}
--- more_headers eval
"Authorization: Bearer sk-" . ('A' x 47) . "1"
--- response_body_like: "content":"Hi there"
--- redis_check
ok(wait_for(sub { records(2) == 1 }), 'alice (user 2) has a record');
my $r = last_record(2);
is($r->{model}, 'gpt-4', 'the client name');
is($r->{upstream_model}, 'gpt-4-0613', "the channel's model mapping");
# ModelRatio 15 = $30 / 1M input, CompletionRatio 2: $60 / 1M output;
# 12 prompt + 3 completion tokens: 360 + 180 micro-USD
is($r->{cost}, 540, 'billed at the imported price');
# 5,000,000 quota = $10 = 10,000,000 micro-USD
is(user_field(2, 'balance'), 10_000_000 - 540, 'from the imported balance');
is(key_field(2, 'sk-' . ('A' x 47) . '1', 'quota'), 2_000_000 - 540,
   "and the token's remaining quota (1,000,000 quota)");
--- no_error_log
[error]



=== TEST 2: One API: an expired token stays expired
--- init
AIRelayTest::import_fixture('one-api', [1]);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4"}
--- more_headers eval
"Authorization: Bearer sk-" . ('A' x 47) . "3"
--- error_code: 401
--- response_body_like: has expired



=== TEST 3: New API: old key limited to some models, multi-key channel, New API's ratios by the client's name
--- init
AIRelayTest::import_fixture('new-api', [1, 5]);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":100}
--- more_headers eval
"Authorization: Bearer sk-" . ('B' x 47) . "1"
--- response_body_like: "content":"Hi there"
--- redis_check
ok(wait_for(sub { records(2) == 1 }), 'dave (user 2) has a record');
my $r = last_record(2);
is($r->{channel}, 1, 'the higher priority channel');
# ModelRatio 1.25 = $2.50 / 1M input, CompletionRatio 4 = $10 / 1M output:
# 12 * 2.5 + 3 * 10 = 60 micro-USD
is($r->{cost}, 60, 'billed at the imported price');
is(user_field(2, 'balance'), 20_000_000 - 60, 'from the imported balance');



=== TEST 4: New API: the same key may not use a model outside its limits
--- init
AIRelayTest::import_fixture('new-api', [1, 5]);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini"}
--- more_headers eval
"Authorization: Bearer sk-" . ('B' x 47) . "1"
--- error_code: 404
--- response_body_like: "code":"model_not_found"



=== TEST 5: One API: an exhausted token is refused with 402
--- init
AIRelayTest::import_fixture('one-api', [1]);
AIRelayTest::redis('HSET', 'ar:{u4}:user', 'balance', 1000000);
--- http_config eval: $::HttpConfig
--- config eval: $::Config
--- request
POST /v1/chat/completions
{"model":"gpt-4"}
--- more_headers eval
"Authorization: Bearer sk-" . ('A' x 47) . "6"
--- error_code: 402
--- response_body_like: "code":"insufficient_quota"
