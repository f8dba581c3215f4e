# The header the module is built with (src/lua/mkheader.sh, run by
# `config`) holds each src/lua/<name>.lua as the tests send it (lua_script:
# the file without its leading documentation) and the SHA1 Redis gives
# it; ngx_ai_relay_lua.c lists them in the order ngx_ai_relay_lua.h
# numbers them.

use strict;
use warnings;

use lib 't/helpers';
use AIRelayTest;
use Digest::SHA qw(sha1_hex);
use File::Temp qw(tempdir);
use Test::More;

my @names = qw(route auth settle models lease release dashboard refund);

plan tests => 4 * @names + 4;

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "$path: $!\n";
    local $/;
    return scalar <$fh>;
}

my @files = sort glob "$TOP/src/lua/*.lua";
is_deeply([ map { m{([^/]+)\.lua$} } @files ], [ sort @names ],
          'src/lua holds the eight scripts');

my $dir = tempdir(CLEANUP => 1);
is(system('sh', "$TOP/src/lua/mkheader.sh", "$dir/h.h", @files), 0,
   'mkheader.sh made the header');
my $h = slurp("$dir/h.h");

# the macros back to text: string literals joined, C escapes undone
my (%src, %sha);
while ($h =~ /^#define NGX_AI_RELAY_SCRIPT_(\w+)_SHA1  "([0-9a-f]{40})"$/mg) {
    $sha{lc $1} = $2;
}
while ($h =~ /^\#define [ ] NGX_AI_RELAY_SCRIPT_(\w+)_SRC [ ]+ \\\n
              ((?: .*\\\n )* .*\n)/mgx)
{
    my ($name, $body) = (lc $1, $2);
    my $s = '';
    $s .= $1 while $body =~ /"((?:[^"\\]|\\.)*)"/g;
    my %esc = (n => "\n", t => "\t", r => "\r");
    $s =~ s{\\(.)}{$esc{$1} // $1}ge;
    $src{$name} = $s;
}

for my $name (@names) {
    my $text = lua_script($name);
    is($src{$name}, $text, "$name: the header's text is the file's script");
    unlike($text, qr/\A--/, "$name: without its documentation");
    is($sha{$name}, sha1_hex($text), "$name: the header's SHA1");
    is(redis('SCRIPT', 'LOAD', $text), $sha{$name},
       "$name: what Redis answers to SCRIPT LOAD");
}

my %index = slurp("$TOP/src/ngx_ai_relay_lua.h")
            =~ /^#define NGX_AI_RELAY_SCRIPT_(\w+) +(\d+)$/mg;
my @table = slurp("$TOP/src/ngx_ai_relay_lua.c")
            =~ /ngx_string\(NGX_AI_RELAY_SCRIPT_(\w+)_SRC\)/g;
is_deeply(\@table, [ sort { $index{$a} <=> $index{$b} } keys %index ],
          'ngx_ai_relay_scripts[] follows the indices of ngx_ai_relay_lua.h');

# a file whose last line has no newline gets one, in text and SHA1 alike;
# quotes, backslashes and "??" survive the C string
open my $fh, '>:raw', "$dir/odd.lua" or die $!;
print $fh "-- doc\n\nreturn \"a\\\\b\" .. '??=' .. \"\t\"";
close $fh;
system('sh', "$TOP/src/lua/mkheader.sh", "$dir/odd.h", "$dir/odd.lua") == 0
    or die "mkheader.sh failed\n";
open $fh, '>', "$dir/odd.c" or die $!;
print $fh "#include <stdio.h>\n#include \"odd.h\"\n",
          "int main(void) { fputs(NGX_AI_RELAY_SCRIPT_ODD_SRC, stdout); ",
          "return 0; }\n";
close $fh;
my $cc = system("cd $dir && cc -W -Wall -Werror -o odd odd.c"
                . " && ./odd > odd.out");
my $want = "return \"a\\\\b\" .. '??=' .. \"\t\"\n";
ok($cc == 0 && slurp("$dir/odd.out") eq $want
   && slurp("$dir/odd.h") =~ /_ODD_SHA1  "\Q${\ sha1_hex($want)}\E"/,
   'mkheader.sh: a C string with the exact bytes and their SHA1');
