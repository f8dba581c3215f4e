# The journal's folder: nginx refuses to start when its workers could not
# write there (settlements Redis never acknowledged would be lost), and a
# reload onto such a folder is an alert the workers' state variable shows.
# Workers run as "nobody" here, as a packaged nginx's run as www-data.

BEGIN { $ENV{TEST_NGINX_WORKER_USER} = 'nobody nogroup' }

use lib 't/helpers';
use AIRelayTest;
use Test::Nginx::Socket;

repeat_each(2);

if ($> != 0) {
    plan skip_all => 'needs root: the workers must run as another user';
} else {
    plan tests => repeat_each() * 14;
}

master_on();
workers(1);
no_shuffle();
install_redis_check();

our $Config = relay_config(extra => <<'_EOC_');
    location = /journal-state {
        return 200 "$ai_relay_journal_state\n";
    }
_EOC_

# a fresh folder for one block: root's, with the given mode
sub folder {
    my ($name, $mode) = @_;
    my $dir = "/tmp/ai-relay-t007-$name";
    system("rm -rf $dir") == 0 or die "rm $dir\n";
    mkdir $dir or die "mkdir $dir: $!\n";
    chmod $mode, $dir or die "chmod $dir: $!\n";
    return $dir;
}


# made before nginx starts (--- init runs after)
folder('unwritable', 0755);
folder('writable', 01777);
folder('reload', 01777);

run_tests();

__DATA__

=== TEST 1: a folder the workers cannot write: nginx refuses to start
--- http_config eval: AIRelayTest::http_config(journal => '/tmp/ai-relay-t007-unwritable/journal')
--- config eval: $::Config
--- must_die
--- error_log
the journal folder "/tmp/ai-relay-t007-unwritable" is not writable for the worker user "nobody"



=== TEST 2: a folder the workers can write: nginx starts, the workers say so
--- http_config eval: AIRelayTest::http_config(journal => '/tmp/ai-relay-t007-writable/journal')
--- config eval: $::Config
--- request
GET /journal-state
--- response_body
ok
--- redis_check
my @left = glob('/tmp/ai-relay-t007-writable/*');
is(scalar(@left), 0, 'the start-up probe left no file behind');
--- no_error_log
[alert]
[emerg]



=== TEST 3: a reload onto a folder that became unwritable: an alert, not a dead master
--- http_config eval: AIRelayTest::http_config(journal => '/tmp/ai-relay-t007-reload/journal')
--- config eval: $::Config
--- request
GET /journal-state
--- response_body
ok
--- redis_check
# a reload is done when the one worker left is a new one (an old worker
# may answer for a while after the HUP)
sub reloaded_to {
    my ($want) = @_;
    my ($master, @old) = nginx_pids();
    kill 'HUP', $master;
    my %old = map { $_ => 1 } @old;
    my $state = '';
    return wait_for(sub {
        my (undef, @w) = nginx_pids();
        return 0 unless @w == 1 && !$old{$w[0]};
        (undef, undef, $state) = http_request('GET', '/journal-state');
        $state eq "$want\n";
    }, 10);
}
my ($master) = nginx_pids();
chmod 0755, '/tmp/ai-relay-t007-reload' or die "chmod: $!";
ok(reloaded_to('unwritable'), 'the new worker says its journal is unwritable');
ok(kill(0, $master), 'the master still runs');
like(error_log_text(),
     qr/\[alert\].*the journal folder "\/tmp\/ai-relay-t007-reload" is not writable/,
     'the reload logged the folder at alert level');
like(error_log_text(),
     qr/\[alert\].*this worker cannot create its journal file/,
     'the new worker logged it too');
# as it was, for the next repetition
chmod 01777, '/tmp/ai-relay-t007-reload' or die "chmod: $!";
ok(reloaded_to('ok'), 'writable again after the next reload');
