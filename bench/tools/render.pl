#!/usr/bin/perl
# render.pl TEMPLATE OUT NAME=value ... NAME=@file ...
# Replaces @NAME@ in TEMPLATE; "@file" values are read from that file.
# Fails on a placeholder left unreplaced.
use strict;
use warnings;

my ($tpl, $out, @vars) = @ARGV;
die "usage: render.pl TEMPLATE OUT NAME=value ...\n" unless $out;

open my $in, '<', $tpl or die "$tpl: $!\n";
my $text = do { local $/; <$in> };
close $in;

for (@vars) {
    my ($k, $v) = /^([A-Z0-9_]+)=(.*)\z/s or die "bad variable '$_'\n";
    if ($v =~ s/^@//) {
        open my $f, '<', $v or die "$v: $!\n";
        $v = do { local $/; <$f> };
        close $f;
    }
    $text =~ s/\@\Q$k\E\@/$v/g;
}

die "$tpl: unreplaced $1\n" if $text =~ /(\@[A-Z][A-Z0-9_]*\@)/;

open my $o, '>', $out or die "$out: $!\n";
print $o $text;
close $o or die "$out: $!\n";
