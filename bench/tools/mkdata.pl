#!/usr/bin/perl
# mkdata.pl MOCKDIR OUTDIR: the request bodies and the mock's echo
# directives for `make bench`.
#
#   OUTDIR/chat.json     the non-stream chat completion request
#   OUTDIR/stream.json   the same with "stream":true (no stream_options:
#                        the common case, the relay injects include_usage)
#   OUTDIR/xstream.json  the stream of a model whose channel speaks
#                        Anthropic's API (bench-claude): translated
#   OUTDIR/asse_all.conf the same stream as Anthropic's events
#   OUTDIR/large.json    ~1 MB: a base64 "image" in the user message
#   OUTDIR/sse_all.conf, sse_first.conf, sse_rest.conf, completion.txt
#                        the mock's answers as nginx config text
use strict;
use warnings;
use MIME::Base64 qw(encode_base64);
use JSON::PP;

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
put('xstream.json',
    qq({"model":"bench-claude",$msg,"max_tokens":50,"stream":true}));

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

# the same answer as Anthropic streams it: message_start, one text block
# with a delta per chunk of text, message_delta with the usage, message_stop
my $j = JSON::PP->new->canonical;
my @text = map { /^data: (\{.*\})$/ ? ($j->decode($1)->{choices}[0]{delta}{content} // ()) : () }
           split /\n\n/, $sse;
my $ae = sub { "event: $_[0]\ndata: " . $j->encode($_[1]) . "\n\n" };
my @aev = (
    $ae->('message_start', { type => 'message_start', message => {
        id => 'msg-b1', type => 'message', role => 'assistant',
        model => 'claude-bench', content => [], stop_reason => undef,
        stop_sequence => undef,
        usage => { input_tokens => 9, output_tokens => 1 } } }),
    $ae->('content_block_start', { type => 'content_block_start',
        index => 0, content_block => { type => 'text', text => '' } }),
    (map { $ae->('content_block_delta', { type => 'content_block_delta',
               index => 0, delta => { type => 'text_delta', text => $_ } }) }
         grep { length } @text),
    $ae->('content_block_stop', { type => 'content_block_stop', index => 0 }),
    $ae->('message_delta', { type => 'message_delta',
        delta => { stop_reason => 'end_turn', stop_sequence => undef },
        usage => { output_tokens => 48 } }),
    $ae->('message_stop', { type => 'message_stop' }));
die "asse: unexpected characters\n" if grep { /['\\\$]/ } @aev;
put('asse_all.conf', $echo->(@aev));
