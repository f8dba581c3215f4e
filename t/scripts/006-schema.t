# The key schema and the reservation format, src/ngx_ai_relay_schema.h,
# as the scripts get them: src/lua/mkheader.sh evaluates the header's
# macros as the C preprocessor does, a script gets the names it uses and
# no others, a reservation written with RES_FORMAT reads back with
# RES_PATTERN, and neither the scripts nor the CLI spell a key out.

use strict;
use warnings;

use lib 't/helpers';
use AIRelayTest;
use File::Temp qw(tempdir);
use Test::More;

my @scripts = map { m{([^/]+)\.lua$} } sort glob "$TOP/src/lua/*.lua";
my @cli = sort glob "$TOP/src/cli/*.c";
# the module's files too: the CLI and the module share one schema
push @cli, "$TOP/ngx_ai_relay_module.c", sort glob "$TOP/src/ngx_ai_relay_*.c";

plan tests => 5 + @scripts + @cli;

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "$path: $!\n";
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($path, $text) = @_;
    open my $fh, '>:raw', $path or die "$path: $!\n";
    print $fh $text;
    close $fh or die "$path: $!\n";
    return;
}

# the text sent for FILE.lua, mkheader.sh at $mk
sub sent {
    my ($mk, $file) = @_;
    my $out = qx{sh '$mk' -l '$file' 2>&1};
    return ($? == 0, $out);
}

my $dir = tempdir(CLEANUP => 1);
my $mk = "$TOP/src/lua/mkheader.sh";


# every macro, as cc sees it and as mkheader.sh evaluates it

my @macros;
my $h = slurp("$TOP/src/ngx_ai_relay_schema.h");
while ($h =~ /^#define (NGX_AI_RELAY_\w+)(?:\(([^)]*)\))?/mg) {
    my ($name, $params) = ($1, $2);
    my $call = defined $params
               ? "$name(" . join(', ', map { '""' } split /,/, $params) . ')'
               : $name;
    (my $lua = $name) =~ s/^NGX_AI_RELAY_//;
    push @macros, [$lua, $call];
}

my $c = "#include <stdio.h>\n#include \"ngx_ai_relay_schema.h\"\n"
        . "int main(void)\n{\n"
        . join('', map { "    puts(\"local $_->[0] = '\" $_->[1] \"'\");\n" }
                   @macros)
        . "    return 0;\n}\n";
spew("$dir/schema.c", $c);
my $cc = system("cc -W -Wall -Werror -I'$TOP/src' -o '$dir/schema'"
                . " '$dir/schema.c'");
my $want = $cc == 0 ? qx{'$dir/schema'} : 'cc failed';

spew("$dir/all.lua", "-- every name\n\nreturn {"
                     . join(', ', map { $_->[0] } @macros) . "}\n");
my ($ok, $text) = sent($mk, "$dir/all.lua");
ok($ok && @macros > 30
   && $text eq $want . "return {" . join(', ', map { $_->[0] } @macros)
                . "}\n",
   scalar(@macros) . ' macros: mkheader.sh reads them as cc does')
    or diag("cc:\n$want\nmkheader.sh:\n$text");


# the names a script uses, and no key name of its own

for my $name (@scripts) {
    my $sent = lua_script($name);
    my ($prelude, $body) = $sent =~ /\A((?:local \w+ = '[^']*'\n)*)(.*)\z/s;
    my %used = map { $_ => 1 } $body =~ /\b([A-Z][A-Z0-9_]*)\b/g;
    my @want = grep { $used{$_} } map { $_->[0] } @macros;
    my @got = $prelude =~ /^local (\w+) = /mg;
    # DASHBOARD only reads keys it is given: it may name none
    ok((@got || $name eq 'dashboard') && "@got" eq "@want"
       && $body !~ /ar:|%d\+\||'\|/,
       "$name.lua: the schema names it uses (@got), no key name or"
       . ' reservation format of its own');
}

is(lua_script('models'), "local RKEY_MODEL = 'ar:{cfg}:model:'\n"
   . (slurp("$TOP/src/lua/models.lua") =~ s/\A(?:--[^\n]*\n|\n)*//r),
   'models.lua as sent: the schema name, then the file without its doc');


# a reservation written with RES_FORMAT reads back with RES_PATTERN

spew("$dir/res.lua", <<'LUA');
local out = {}
for _, v in ipairs({{'1800000300', '1000', '250', string.rep('ab', 32)},
                    {'1800000300', '-200', '0', ''}}) do
  local s = string.format(RES_FORMAT, v[1], v[2], v[3], v[4])
  local d, amt, kamt, h = string.match(s, RES_PATTERN)
  out[#out + 1] = s
  out[#out + 1] = table.concat({d, amt, kamt, h}, ' ')
end
out[#out + 1] = tostring(string.match('1|2|3', RES_PATTERN))
out[#out + 1] = tostring(string.match('1|x|0|', RES_PATTERN))
return out
LUA
($ok, $text) = sent($mk, "$dir/res.lua");
my $hash = 'ab' x 32;
is_deeply($ok ? redis('EVAL', $text, 0) : $text,
          ["1800000300|1000|250|$hash", "1800000300 1000 250 $hash",
           '1800000300|-200|0|', '1800000300 -200 0 ', 'nil', 'nil'],
          'a reservation and a lease: written, then read back;'
          . ' malformed ones do not match');


# mkheader.sh refuses a header it cannot evaluate

mkdir "$dir/src";
mkdir "$dir/src/lua";
spew("$dir/src/lua/mkheader.sh", slurp($mk));
spew("$dir/src/lua/x.lua", "return NGX\n");

spew("$dir/src/ngx_ai_relay_schema.h",
     "#define NGX_AI_RELAY_A(x)  \"a:\" x\n"
     . "#define NGX_AI_RELAY_B  NGX_AI_RELAY_A(\"b\") NGX_AI_RELAY_C\n");
($ok, $text) = sent("$dir/src/lua/mkheader.sh", "$dir/src/lua/x.lua");
ok(!$ok && $text =~ /NGX_AI_RELAY_B: NGX_AI_RELAY_C is not defined above/,
   'a macro that uses one not defined above it: refused') or diag($text);

spew("$dir/src/ngx_ai_relay_schema.h",
     "#define NGX_AI_RELAY_A  \"it's\"\n");
($ok, $text) = sent("$dir/src/lua/mkheader.sh", "$dir/src/lua/x.lua");
ok(!$ok && $text =~ /not plain/, 'a quote in a literal: refused')
    or diag($text);


# the CLI and the module: every key name comes from the schema

for my $file (@cli) {
    my $src = slurp($file);
    $src =~ s{/\*.*?\*/}{}gs;
    my @lit = $src =~ /("ar:[^"]*")/g;
    ok(!@lit, ($file =~ m{([^/]+)$})[0] . ': no key name of its own')
        or diag("@lit");
}
