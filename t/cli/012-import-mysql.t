#!/usr/bin/perl
# ai-relay import --mysql: the same One API and New API rows in MariaDB
# (their MySQL schema) give exactly the Redis content the SQLite import
# gives.  A private mariadbd on a unix socket; skipped only if the
# server cannot run here.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use AiRelayCli;
use AiRelayFixtures;

my ($sock, $why) = start_mariadb();

plan skip_all => "MariaDB unavailable: $why" unless $sock;

my ($rc, $out, $err, $j);

mariadb_exec($sock, '', 'CREATE DATABASE oneapi;', 'CREATE DATABASE newapi;',
             "CREATE USER 'relay'\@'localhost' IDENTIFIED BY 's3cret';",
             "GRANT SELECT ON oneapi.* TO 'relay'\@'localhost';");
mariadb_exec($sock, 'oneapi', one_api_schema('mysql'), one_api_rows());
mariadb_exec($sock, 'newapi', new_api_schema('mysql'), new_api_rows());

for my $from ('one-api', 'new-api') {
    my $name = $from eq 'one-api' ? 'oneapi' : 'newapi';
    my @schema = $from eq 'one-api' ? (one_api_schema('sqlite'), one_api_rows())
                                    : (new_api_schema('sqlite'), new_api_rows());

    flush();
    my $file = sqlite_db("$name.db", @schema);
    $j = cli_json('import', '--from', $from, '--sqlite', $file);
    ok($j->{written}, "$from from SQLite");
    my $sqlite = state();
    my $report = $j;

    flush();
    $j = cli_json('import', '--from', $from, '--mysql',
                  "socket=$sock;user=root;db=$name");
    ok($j->{written}, "$from from MariaDB");
    is($j->{database}, "mysql $name", 'the database in the report');
    is_deeply(state(), $sqlite, "$from: the same Redis content as SQLite");
    for my $part (qw(changes skipped inexact notes)) {
        is_deeply($j->{$part}, $report->{$part}, "$from: the same $part");
    }

    my $before = snapshot();
    $j = cli_json('import', '--from', $from, '--mysql',
                  "socket=$sock;user=root;db=$name");
    is($j->{result}, 'nothing to change', "$from: second run");
    is_deeply(snapshot(), $before, "$from: Redis identical");
}

# a user with only SELECT, by password

flush();
$j = cli_json('import', '--from', 'one-api', '--mysql',
              "socket=$sock;user=relay;password=s3cret;database=oneapi");
ok($j->{written}, 'a read-only user is enough');

# bad connection strings: nothing changes

rejected(['import', '--from', 'one-api', '--mysql',
          "socket=$sock;user=relay;password=wrong;db=oneapi"], 3,
         qr/cannot connect to MySQL: Access denied/);
rejected(['import', '--from', 'one-api', '--mysql',
          "socket=$sock;user=root;db=nosuchdb"], 3,
         qr/cannot connect to MySQL: Unknown database/);
rejected(['import', '--from', 'one-api', '--mysql', "socket=$sock;user=root"],
         2, qr/--mysql needs db=NAME/);
rejected(['import', '--from', 'one-api', '--mysql', 'db=x;colour=red'], 2,
         qr/unknown --mysql part "colour"/);
rejected(['import', '--from', 'one-api', '--mysql', 'db=x;port=0'], 2,
         qr/invalid --mysql port/);
rejected(['import', '--from', 'one-api', '--mysql', 'db x'], 2,
         qr/invalid --mysql part "db x"/);
rejected(['import', '--from', 'one-api', '--mysql',
          "socket=$sock;user=root;db=mysql"], 1,
         qr/has no table "users"; is it a one-api database/);

done_testing();
