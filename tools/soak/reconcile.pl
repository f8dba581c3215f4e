#!/usr/bin/env perl
# The soak's verdict: reads a run folder that tools/soak/soak.pl left
# (nothing needs to run any more) and prints one line per invariant,
# "ok - ..." or "not ok - ...", with the numbers; exits 1 on any "not ok".
#
#   tools/soak/reconcile.pl build/soak/latest [--seed N]
#
# The seed (SOAK_SEED of the run) derives the client and upstream keys
# the files are searched for: no file holds them.

use strict;
use warnings;

use FindBin;
use lib $FindBin::Bin;
use Soak qw(client_key upstream_key expected_cost parse_log_line);
use File::Find;
use Getopt::Long;
use List::Util qw(sum0 min max);
use Cwd qw(abs_path);

my $seed = 1;
GetOptions('seed=i' => \$seed) or die "usage: $0 RUN [--seed N]\n";
my $RUN = shift or die "usage: $0 RUN [--seed N]\n";
$RUN = abs_path($RUN) // die "$RUN: $!\n";

# what is printed also goes to RUN/summary.txt
open my $SUMMARY, '>', "$RUN/summary.txt" or die "$RUN/summary.txt: $!\n";
sub out { print @_; print $SUMMARY @_ }

my $J = Soak::json_coder();
sub slurp {
    open my $fh, '<', $_[0] or return undef;
    local $/;
    return scalar <$fh>;
}
my $STATE = $J->decode(slurp("$RUN/state.json")
                       // die "$RUN/state.json: $!\n");
my $FINAL = $J->decode(slurp("$RUN/redis-final.json")
                       // die "$RUN/redis-final.json: $!\n");

my (@OK, $FAILED);
sub check {
    my ($ok, $text) = @_;
    my $line = ($ok ? 'ok' : 'not ok') . " - $text";
    $FAILED++ unless $ok;
    push @OK, $line;
    out("$line\n");
}
sub info { out("# $_\n") for @_ }
sub n { my $v = shift; 1 while $v =~ s/^(-?\d+)(\d{3})/$1,$2/; $v }

my $killed = $STATE->{killed_worker} // -1;
my $killed_at = $STATE->{killed_at} // 0;
my %kind = map { ($_->{uid} => $_->{kind}) } @{ $STATE->{users} };
my %b0 = map { ($_->{uid} => $_->{balance}) } @{ $STATE->{users} };
my @uids = sort { $a <=> $b } keys %kind;

# ------------------------------------------------------------ the inputs

my @REQ;
opendir my $cd, "$RUN/clients" or die "$RUN/clients: $!\n";
for my $f (sort grep { /\.tsv$/ } readdir $cd) {
    open my $fh, '<', "$RUN/clients/$f" or die "$f: $!\n";
    push @REQ, parse_log_line($_) while <$fh>;
}
my %req_by_rid;
for my $r (@REQ) {
    push @{ $req_by_rid{$r->{rid}} }, $r if $r->{rid} ne '';
}

my (@REC, %rec_by_rid);
open my $rf, '<', "$RUN/records.tsv" or die "$RUN/records.tsv: $!\n";
while (<$rf>) {
    chomp;
    my ($uid, $id, $json) = split /\t/, $_, 3;
    my $rec = $J->decode($json);
    $rec->{_uid} = $uid;
    ($rec->{_ms}) = $id =~ /^(\d+)-/;
    push @REC, $rec;
    push @{ $rec_by_rid{$rec->{request_id}} }, $rec;
}

my (%mock_by_rid, %mock_stat);
if (open my $mf, '<', "$RUN/mock.tsv") {
    while (<$mf>) {
        chomp;
        if (/^# mock exit (.*)/) {
            %mock_stat = map { split /=/ } split ' ', $1;
            next;
        }
        my ($t, $rid, $soak, $path, $model, $stream, $reset, $auth, $ck)
            = split /\t/;
        $mock_by_rid{$rid} = { t => $t, soak => $soak, reset => $reset,
                               auth => $auth, ck => $ck } if $rid;
    }
}

my @FAULTS = @{ $STATE->{faults} || [] };

# ------------------------------------------------------------ summary

{
    my %by;
    $by{"$_->{phase} $_->{outcome} " . ($_->{status} || '-')}++ for @REQ;
    my $load = grep { $_->{phase} eq 'load' } @REQ;
    my $secs = $STATE->{load_end} - $STATE->{load_start};
    info(sprintf 'run %s: %d s of load, %d clients, seed %d, appendfsync %s,'
         . ' reservation TTL %d s', $RUN, $secs, $STATE->{settings}{clients},
         $STATE->{settings}{seed}, $STATE->{settings}{fsync},
         $STATE->{settings}{ttl});
    info(sprintf 'requests: %s sent (%s during the load, %.0f/s), '
         . '%s records in Redis', n(scalar @REQ), n($load), $load / $secs,
         n(scalar @REC));
    info('requests by phase, outcome and status: ' . join ', ',
         map { "$_ $by{$_}" } sort keys %by);
    for my $f (@FAULTS) {
        info(sprintf 'fault at +%.1fs: %s: %s', $f->{t0} - $STATE->{load_start},
             $f->{name}, $f->{detail});
    }
}

# ------------------------------------------------------------ records

my $is2xx = sub { $_[0]{status} =~ /^2\d\d$/ };
# cut mid-answer by the worker kill: the connection went with the worker
my $kill_cut = sub {
    my $r = shift;
    return $r->{worker} eq $killed
           && $r->{outcome} =~ /^(cut|timeout)$/
           && $r->{t0} <= $killed_at + 0.05 && $r->{t1} >= $killed_at - 0.5;
};

{
    my @two = grep { $is2xx->($_) } @REQ;
    my @cut = grep { $kill_cut->($_) } @two;
    my %cut = map { ($_ => 1) } @cut;
    my @need = grep { !$cut{$_} } @two;
    my @none = grep { !$rec_by_rid{$_->{rid}} } @need;
    my @many = grep { @{ $rec_by_rid{$_->{rid}} || [] } > 1 } @need;
    my @lost_kill = grep { $_->{worker} eq $killed } @none;
    my @recent = grep { $_->{t1} >= $killed_at - 2 } @lost_kill;
    my $cut_rec = grep { $rec_by_rid{$_->{rid}} } @cut;
    my $text = sprintf '%s 2xx answers, %s with one record',
        n(scalar @need), n(@need - @none - @many);
    $text .= sprintf ', %d WITHOUT a record (%d served by the killed worker '
        . '%s, %d of them in the 2 s before the kill; %d by other workers)',
        scalar @none, scalar @lost_kill, $killed, scalar @recent,
        @none - @lost_kill if @none;
    $text .= sprintf ', %d with SEVERAL', scalar @many if @many;
    $text .= sprintf '; not counted: %d cut mid-answer by the worker kill '
        . '(%d of them recorded)', scalar @cut, $cut_rec;
    check(!@none && !@many, "every 2xx answer a client saw has exactly one "
          . "record: $text");
    if (@none) {
        my %ph;
        $ph{"$_->{phase}/$_->{outcome}"}++ for @none;
        info('2xx without a record, by phase/outcome: '
             . join ', ', map { "$_ $ph{$_}" } sort keys %ph);
        my %bin;
        $bin{int(($_->{t1} - $STATE->{load_start}) / 10) * 10}++ for @none;
        info('2xx without a record, by when the answer ended (10 s bins): '
             . join ', ', map { "+${_}s $bin{$_}" }
               sort { $a <=> $b } keys %bin);
        my @o = grep { $_->{worker} ne $killed } @none;
        info(sprintf '  e.g. %s worker %s at +%.1fs user %s', $_->{rid},
             $_->{worker}, $_->{t1} - $STATE->{load_start}, $_->{uid})
            for @o[0 .. min(4, $#o)];
    }
}

{
    my @dup = grep { @{ $rec_by_rid{$_} } > 1 } keys %rec_by_rid;
    check(!@dup, sprintf 'no request id has two records: %s records, %d '
          . 'ids twice or more', n(scalar @REC), scalar @dup);
}

{
    my (@bad, $n);
    for my $r (grep { $_->{rid} ne '' } @REQ) {
        my $recs = $rec_by_rid{$r->{rid}} or next;
        for my $rec (@$recs) {
            $n++;
            my $model = $r->{phase} eq 'race' ? 'soak-race'
                      : $r->{api} eq 'anthropic' ? 'soak-claude' : 'soak-mini';
            my @why;
            push @why, "user $rec->{user}" if $rec->{user} != $r->{uid};
            push @why, "key $rec->{key_id}"
                if $rec->{key_id} != $r->{uid} * 10 + $r->{k};
            push @why, "model $rec->{model}" if $rec->{model} ne $model;
            push @why, "stream $rec->{stream}"
                if ($rec->{stream} ? 1 : 0) != ($r->{stream} ? 1 : 0);
            push @why, "status $rec->{status} (client $r->{status})"
                if $r->{outcome} eq 'ok' && $rec->{status} != $r->{status};
            push @bad, "$r->{rid}: @why" if @why;
        }
    }
    check(!@bad, sprintf 'each record names its request (user, key, model, '
          . 'stream, status of whole answers): %s checked, %d differ%s',
          n($n // 0), scalar @bad, @bad ? " (e.g. $bad[0])" : '');
}

{
    my @refused = grep { $_->{status} =~ /^(400|401|402|404|429)$/ } @REQ;
    my @rec = grep { $rec_by_rid{$_->{rid}} } @refused;
    check(!@rec, sprintf 'requests refused before a reservation (400, 401, '
          . '402, 404, 429) left no record: %d refused, %d recorded',
          scalar @refused, scalar @rec);
}

{
    my @orphans = grep { !$req_by_rid{$_->{request_id}} } @REC;
    my @nohead = grep { $_->{rid} eq '' } @REQ;
    my $at_mock = grep { $mock_by_rid{$_->{request_id}} } @orphans;
    check(@orphans <= @nohead, sprintf 'records of requests whose client got '
          . 'no answer head (%d such requests): %d records, %d of them '
          . 'reached the upstream', scalar @nohead, scalar @orphans,
          $at_mock);
}

{
    my (@bad, %src);
    for my $rec (@REC) {
        my $src = $rec->{usage_source};
        $src{$src}++;
        my $api = $rec->{model} eq 'soak-claude' ? 'anthropic' : 'openai';
        my $want = expected_cost($rec->{model}, $api);
        my $cost = $rec->{cost};
        # a whole answer: the mock's usage, exactly; one cut short: what
        # the upstream reported so far or an estimate, never more than the
        # request's reservation (its prompt's text and max_tokens)
        my $most = $rec->{model} eq 'soak-race' ? $want
                   : 100 + $Soak::MAX_TOKENS * 4;
        my $ok = !defined $want ? 0
               : $src eq 'none' ? $cost == 0
               : $rec->{error} eq '' ? $src eq 'upstream' && $cost == $want
               : $cost > 0 && $cost <= $most;
        push @bad, "$rec->{request_id} $src cost $cost" unless $ok;
    }
    check(!@bad, sprintf 'every record is priced as its usage says (whole '
          . 'answers exactly, cut ones within their reservation; %s): '
          . '%d off%s', join(', ', map { "$src{$_} $_" } sort keys %src),
          scalar @bad, @bad ? " (e.g. $bad[0])" : '');
}

# ------------------------------------------------------------ money

my %cost_by_user;
$cost_by_user{$_->{_uid}} += $_->{cost} for @REC;
my %nrec_by_user;
$nrec_by_user{$_->{_uid}}++ for @REC;

for my $uid (@uids) {
    my $u = $FINAL->{$uid}{user};
    my $fall = $b0{$uid} - ($u->{balance} // 0);
    my $cost = $cost_by_user{$uid} // 0;
    my $used = $u->{used} // 0;
    my $open = sum0(map { (split /\|/)[1] } values %{ $FINAL->{$uid}{res} });
    check($fall == $cost && $cost == $used,
          sprintf 'u%d (%s): balance fall %s == record costs %s == used %s'
          . '%s', $uid, $kind{$uid}, n($fall), n($cost), n($used),
          $open ? " (still reserved or leased: " . n($open) . ')' : '');
}

{
    my @bad;
    for my $uid (@uids) {
        my $n = $nrec_by_user{$uid} // 0;
        my $c = $FINAL->{$uid}{user}{requests} // 0;
        push @bad, "u$uid: $n records, requests $c" if $n != $c;
    }
    check(!@bad, 'every user\'s records match its requests counter ('
          . n(scalar @REC) . ' records)' . (@bad ? ': ' . join('; ', @bad)
          : ''));
}

{
    my (@bad, $n);
    my (%kcost, %kn);
    for my $rec (@REC) {
        $kcost{$rec->{key_id}} += $rec->{cost};
        $kn{$rec->{key_id}}++;
    }
    for my $uid (@uids) {
        my $keys = $FINAL->{$uid}{keys};
        for my $kid (sort keys %$keys) {
            $n++;
            my $k = $keys->{$kid};
            my $c = $kcost{$kid} // 0;
            push @bad, "key $kid: used $k->{used} != records $c"
                if ($k->{used} // 0) != $c;
            push @bad, "key $kid: requests $k->{requests} != records "
                . ($kn{$kid} // 0) if ($k->{requests} // 0) != ($kn{$kid} // 0);
            my $q0 = $STATE->{quota0}{$kid} // -1;
            if ($q0 >= 0) {
                my $fall = $q0 - ($k->{quota} // 0);
                push @bad, "key $kid: budget fall $fall != records $c"
                    if $fall != $c;
            }
        }
    }
    check(!@bad, sprintf 'key counters agree with the records (used, '
          . 'requests, and the budget of keys that have one): %d keys%s',
          $n, @bad ? ': ' . join('; ', @bad) : '');
}

{
    my @open;
    for my $uid (@uids) {
        my $res = $FINAL->{$uid}{res};
        next unless %$res;
        my @l = grep { /^l/ } keys %$res;
        my @r = grep { !/^l/ } keys %$res;
        push @open, sprintf 'u%d: %d reservations (%s uUSD), %d leases (%s '
            . 'uUSD)', $uid, scalar @r,
            n(sum0(map { (split /\|/, $res->{$_})[1] } @r)), scalar @l,
            n(sum0(map { (split /\|/, $res->{$_})[1] } @l));
    }
    check(!@open, 'no reservation or lease left open once the TTL ('
          . "$STATE->{settings}{ttl} s) passed and each user sent a request"
          . (@open ? ': ' . join('; ', @open) : ''));
}

# Reservations sampled every second.  One still there 2 s after its
# request ended and Redis had been up and answering for 2 s (after a
# Redis fault: 2 s more for the worker to reconnect) is held for
# nothing, until the TTL refunds it.  Requests of the killed worker are
# left out: their reservations wait for the TTL by design.
{
    # how long after a fault a worker may take to be back: its reconnect
    # backoff (100 ms doubling, at most 3 s) after a kill, the drop of a
    # silent connection after a sleep, a script reload after a flush
    my %grace = ('redis-kill' => 3, 'redis-sleep' => 2, 'redis-oom' => 1,
                 'script-flush' => 1);
    my @win = sort { $a->[0] <=> $b->[0] }
              map { [$_->{t0}, $_->{t1} + $grace{$_->{name}}] }
              grep { $grace{$_->{name}} } @FAULTS;
    my (%held, $samples);
    if (open my $sf, '<', "$RUN/reservations.tsv") {
        while (<$sf>) {
            chomp;
            my ($t, $uid, $ids) = split /\t/;
            $samples++;
            for my $rid (split /,/, $ids) {
                next if $rid =~ /^l/ || $held{$rid};
                my $r = $req_by_rid{$rid} or next;
                $r = $r->[0];
                next if $r->{worker} eq $killed;
                my $up = $r->{t1};
                for my $w (@win) {
                    $up = $w->[1] if $w->[0] <= $t && $w->[1] > $up;
                }
                next if $t - $up < 2;
                $held{$rid} = [$r, $t - $r->{t1}];
            }
        }
    }
    my %by;
    for my $h (values %held) {
        my $r = $h->[0];
        $by{$r->{status} =~ /^2/
            ? 'of requests answered (their settlement late)'
            : "of requests refused with $r->{status} (no settlement to come)"
           }++;
    }
    my $longest = max(0, map { $_->[1] } values %held);
    check(!%held, sprintf 'no reservation held past its request\'s end '
          . 'once Redis was back (2 s after the request, and after a Redis '
          . 'fault 2 s more than the worker needs to reconnect; sampled '
          . 'every second; the killed worker\'s left out): %d held%s',
          scalar keys %held,
          %held ? sprintf(' (%s; the longest still there %.1f s after)',
                          join(', ', map { "$by{$_} $_" } sort keys %by),
                          $longest) : '');
}

# balances sampled every 0.25 s during the run, and at the end
my (%minbal, %mint);
if (open my $bf, '<', "$RUN/balances.tsv") {
    while (<$bf>) {
        chomp;
        my ($t, @kv) = split /\t/;
        for (@kv) {
            my ($uid, $b) = split /:/;
            next unless defined $b && $b ne '';
            if (!defined $minbal{$uid} || $b < $minbal{$uid}) {
                $minbal{$uid} = $b;
                $mint{$uid} = $t - $STATE->{load_start};
            }
        }
    }
}
for my $uid (@uids) {
    my $b = $FINAL->{$uid}{user}{balance} // 0;
    if (!defined $minbal{$uid} || $b < $minbal{$uid}) {
        $minbal{$uid} = $b;
        $mint{$uid} = undef;
    }
}

{
    my @neg = grep { $minbal{$_} < 0 } @uids;
    check(!@neg, 'no balance ever below zero (sampled every 0.25 s, and at '
          . 'the end; no request here can cost more than its reservation): '
          . join(', ', map { "u$_ ($kind{$_}) min " . n($minbal{$_})
                             . ($minbal{$_} >= 0 ? ''
                                : defined $mint{$_}
                                ? sprintf(' at +%.1fs', $mint{$_})
                                : ' at the end') }
                 grep { $kind{$_} =~ /drain|race/ || $minbal{$_} < 0 }
                 @uids));
}

{
    my ($d) = grep { $kind{$_} eq 'drain' } @uids;
    my @r402 = sort { $a->{t1} <=> $b->{t1} }
               grep { $_->{uid} == $d && $_->{status} eq '402'
                      && $_->{phase} eq 'load' } @REQ;
    my $spent = $b0{$d} - ($FINAL->{$d}{user}{balance} // 0);
    info(sprintf 'drain user u%d: balance %s, spent %s, %s', $d, n($b0{$d}),
         n($spent), @r402 ? sprintf('first 402 at +%.1fs, %d 402s',
         $r402[0]{t1} - $STATE->{load_start}, scalar @r402)
         : 'never ran dry');
}

{
    my ($ru) = grep { $kind{$_} eq 'race' } @uids;
    my @race = grep { $_->{phase} eq 'race' } @REQ;
    my %st;
    $st{$_->{status} || $_->{outcome}}++ for @race;
    my $won = grep { $is2xx->($_) } @race;
    my $n = $STATE->{settings}{race_n};
    my $end = $FINAL->{$ru}{user}{balance} // 0;
    check($won <= $n && $minbal{$ru} >= 0 && $end >= 0,
          sprintf 'race: %d requests at once against a balance for %d: %d '
          . 'served (%s); balance after %s, lowest seen %s', scalar @race, $n,
          $won, join(', ', map { "$st{$_} x $_" } sort keys %st), n($end),
          n($minbal{$ru}));
}

# ------------------------------------------------------------ timeliness

{
    my $limit = 10_000;
    my @late = grep { $_->{_ms} - $_->{time} > $limit } @REC;
    my $restart = ($STATE->{restart_at} // 0) * 1000;
    my @replayed = grep { $_->{_ms} >= $restart } @late;
    my $worst = max(0, map { $_->{_ms} - $_->{time} } @REC);
    check(!@late, sprintf 'settlements reach Redis within 10 s of the '
          . 'request\'s end (Redis is away for under 3 s at a time here): '
          . '%d later (%d of them only at the final restart, from the '
          . 'journal); the latest took %.1f s', scalar @late,
          scalar @replayed, $worst / 1000);
    if (@late) {
        my %by;
        for (@late) {
            my $t = ($_->{time} / 1000) - $STATE->{load_start};
            $by{sprintf '+%ds', int($t / 10) * 10}++;
        }
        info('late settlements by when their request ended (10 s bins): '
             . join ', ', map { "$_ $by{$_}" }
               sort { ($a =~ /(\d+)/)[0] <=> ($b =~ /(\d+)/)[0] } keys %by);
    }
}

{
    my @left = @{ $STATE->{journal_files_at_end} || [] };
    check(!@left, sprintf 'no settlement left in a journal file at the end: '
          . '%d files%s (journal files when nginx stopped after the load: %d)',
          scalar @left, @left ? " (@left)" : '',
          $STATE->{journal_files_at_restart} // 0);
}

# ------------------------------------------------------------ processes

{
    my (@alert, @signal, %level);
    if (open my $ef, '<', "$RUN/nginx/logs/error.log") {
        while (<$ef>) {
            $level{$1}++ if /\[(\w+)\]/;
            push @alert, $_ if /\[alert\]/;
            push @signal, $_ if /exited on signal/;
        }
    }
    my @expected = grep { /worker process $killed exited on signal 9/ }
                   @signal;
    my @other_alert = grep { !/worker process $killed exited on signal 9/ }
                      @alert;
    my @other_sig = grep { !/worker process $killed exited on signal 9/ }
                    @signal;
    my $ex = sub { my $l = shift; chomp $l; $l =~ s/^\S+ \S+ //; $l };
    check(@expected == 1 && !@other_alert && !@other_sig,
          sprintf 'error.log: no [alert] and no "exited on signal" but the '
          . 'deliberate kill of worker %s: %d alerts, %d "exited on signal" '
          . '(%d from the kill)%s', $killed, scalar @alert, scalar @signal,
          scalar @expected, @other_alert || @other_sig
          ? ': ' . $ex->((@other_alert, @other_sig)[0]) : '');
    info('error.log lines by level: ' . join ', ',
         map { "$_ $level{$_}" } sort keys %level);
    my %msg;
    if (open my $ef, '<', "$RUN/nginx/logs/error.log") {
        while (<$ef>) {
            next unless /\[(error|crit|alert|emerg|warn)\]/;
            my $m = $ex->($_);
            $m =~ s/, client: .*//;
            $m =~ s/\d+/N/g;
            $msg{$m}++;
        }
    }
    my @top = sort { $msg{$b} <=> $msg{$a} } keys %msg;
    info(sprintf '  %5d x %s', $msg{$_}, substr($_, 0, 200))
        for @top[0 .. min(9, $#top)];
}

{
    my @s;
    if (open my $rf2, '<', "$RUN/rss.tsv") {
        while (<$rf2>) {
            chomp;
            my ($t, @kv) = split /\t/;
            my $m = max(0, map { (split /:/)[1] } @kv);
            push @s, [$t, $m];
        }
    }
    my $from = $STATE->{load_start}
               + 0.1 * ($STATE->{load_end} - $STATE->{load_start});
    my ($first) = grep { $_->[0] >= $from } @s;
    my ($last) = reverse grep { $_->[0] <= $STATE->{load_end} } @s;
    my $peak = max(0, map { $_->[1] } @s);
    if ($first && $last) {
        check($last->[1] <= 2 * $first->[1], sprintf 'worker RSS roughly flat'
              . ' (largest worker, after 10%% of the load vs at its end): '
              . '%s kB -> %s kB (%.2fx; peak %s kB)', n($first->[1]),
              n($last->[1]), $last->[1] / ($first->[1] || 1), n($peak));
    } else {
        check(0, 'worker RSS: no samples');
    }
}

{
    check($STATE->{quit_ok_restart} && $STATE->{quit_ok_end},
          'nginx stopped on QUIT within 30 s, after the load and at the end'
          . ($STATE->{quit_ok_restart} ? '' : ' (NOT after the load)')
          . ($STATE->{quit_ok_end} ? '' : ' (NOT at the end)'));
}

{
    # connections that ended early: each must have a cause we know of
    my (@unexplained, %why);
    for my $r (@REQ) {
        next if $r->{outcome} eq 'ok';
        my $cause;
        if ($r->{outcome} eq 'aborted') {
            $cause = 'client abort';
        } elsif ($r->{outcome} eq 'bad') {
            $cause = undef;
        } elsif ($r->{rid} ne '' && $mock_by_rid{$r->{rid}}
                 && $mock_by_rid{$r->{rid}}{reset}) {
            $cause = 'upstream reset';
        } elsif ($kill_cut->($r)
                 || ($r->{rid} eq '' && $r->{t0} <= $killed_at + 0.05
                     && $r->{t1} >= $killed_at - 0.5)) {
            $cause = 'worker kill';
        }
        if ($cause) { $why{$cause}++ } else { push @unexplained, $r }
    }
    check(!@unexplained, sprintf 'every answer cut short has a known cause '
          . '(%s): %d unexplained%s',
          join(', ', map { "$why{$_} $_" } sort keys %why),
          scalar @unexplained, @unexplained ? sprintf(' (e.g. %s %s %s %s '
          . 'at +%.1fs: %s)', $unexplained[0]{soak}, $unexplained[0]{outcome},
          $unexplained[0]{status}, $unexplained[0]{rid},
          $unexplained[0]{t1} - $STATE->{load_start},
          $unexplained[0]{note}) : '');
}

{
    check(defined $mock_stat{requests} && !$mock_stat{bad_auth}
          && !$mock_stat{client_key},
          sprintf 'the upstream always got the channel\'s key and never a '
          . 'client\'s: %s requests, %s without the channel key, %s with a '
          . 'client key', map { n($_ // '?') }
          @mock_stat{qw(requests bad_auth client_key)});
}

{
    my @keys;
    for my $u (@{ $STATE->{users} }) {
        push @keys, map { client_key($seed, $u->{uid}, $_->{k}) }
                    @{ $u->{keys} };
    }
    my @up = map { upstream_key($seed, $_) } 1, 2;
    my ($files, $bytes, @hits) = (0, 0);
    find({ no_chdir => 1, wanted => sub {
        return unless -f $_ && !-l $_;
        my $f = $_;
        my $in_redis = index($f, "$RUN/redis/") == 0;
        open my $fh, '<:raw', $f or return;
        $files++;
        my ($buf, $tail) = ('', '');
        while (read($fh, $buf, 1 << 22)) {
            $bytes += length $buf;
            my $s = $tail . $buf;
            for my $k (@keys, $in_redis ? () : @up) {
                if (index($s, $k) >= 0) {
                    push @hits, substr($f, length($RUN) + 1) . ': '
                        . substr($k, 0, 9) . '...';
                }
            }
            $tail = substr($s, -80);
        }
    } }, $RUN);
    my %uniq = map { ($_ => 1) } @hits;
    check(!%uniq, sprintf 'no plaintext client key (%d) or upstream key (%d)'
          . ' in any file of the run folder (%d files, %.0f MB; the upstream '
          . 'keys are looked for outside redis/, where the channels keep '
          . 'them): %d found%s', scalar @keys, scalar @up, $files,
          $bytes / 1e6, scalar keys %uniq,
          %uniq ? ': ' . join('; ', sort keys %uniq) : '');
}

{
    my $n = $STATE->{clients_killed} // 0;
    info("clients that had to be killed at the end: $n") if $n;
}

my $nok = grep { /^not ok/ } @OK;
out(sprintf "# %d invariants: %d ok, %d not ok\n", scalar @OK, @OK - $nok,
    $nok);
close $SUMMARY;
exit($FAILED ? 1 : 0);
