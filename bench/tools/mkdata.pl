#!/usr/bin/perl
# mkdata.pl MOCKDIR OUTDIR: the request bodies and the mock's echo
# directives for `make bench`.
#
#   OUTDIR/chat.json     the non-stream chat completion request
#   OUTDIR/stream.json   the same with "stream":true (no stream_options:
#                        the common case, the relay injects include_usage)
#   OUTDIR/large.json    ~1 MB: a base64 "image" in the user message
#   OUTDIR/sse_all.conf, sse_first.conf, sse_rest.conf, completion.txt
#                        the mock's answers as nginx config text
use strict;
use warnings;
use MIME::Base64 qw(encode_base64);

my ($mock, $out) = @ARGV;
die "usage: mkdata.pl MOCKDIR OUTDIR\n" unless $out;

sub put {
    my ($name, $text) = @_;
    open my $f, '>', "$out/$name" or die "$out/$name: $!\n";
    print $f $text;
    close $f or die "$out/$name: $!\n";
}

sub slurp {
    open my $f, '<', $_[0] or die "$_[0]: $!\n";
    local $/;
    return scalar <$f>;
}

my $msg = '"messages":[{"role":"user","content":"Hello"}]';
put('chat.json', qq({"model":"bench-alias",$msg,"max_tokens":50}));
put('stream.json',
    qq({"model":"bench-alias",$msg,"max_tokens":50,"stream":true}));

# a deterministic 1 MB body: ~780 KB of pseudo-random bytes as base64
my $seed = 12345;
my $raw = '';
while (length($raw) < 786_000) {
    $seed = ($seed * 1103515245 + 12345) & 0x7fffffff;
    $raw .= pack('N', $seed);
}
my $b64 = encode_base64($raw, '');
put('large.json', '{"model":"bench-alias","messages":[{"role":"user",'
    . '"content":[{"type":"text","text":"What is in this image?"},'
    . '{"type":"image_url","image_url":{"url":"data:image/png;base64,'
    . $b64 . '"}}]}],"max_tokens":50}');

# the mock's answers: nginx config strings (no ' or \ or $ in them)
my $json = slurp("$mock/completion.json");
$json =~ s/\n\z//;
die "completion.json: unexpected characters\n" if $json =~ /['\\\$]/;
put('completion.txt', $json);

my $sse = slurp("$mock/stream.sse");
die "stream.sse: unexpected characters\n" if $sse =~ /['\\\$]/;
my @ev = map { "$_\n\n" } grep { length } split /\n\n/, $sse;
my $echo = sub {
    join '', map { (my $e = $_) =~ s/\n/\\n/g;
                   "            echo -n '$e';\n" } @_;
};
put('sse_all.conf', $echo->(@ev));
put('sse_first.conf', $echo->($ev[0]));
put('sse_rest.conf', $echo->(@ev[1 .. $#ev]));
