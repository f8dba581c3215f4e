#!/bin/sh
# ngx_ai_relay: the module's files form layers, with no cycles.
#
#   sh tools/layers.sh [-v]
#
# A file depends on another when it calls a function (or uses a global)
# the other defines.  The graph must be acyclic; tsort(1) orders it and
# names the files of a loop.  With -v, prints the files by layer: a
# file sits one above the highest file it calls into.  README's
# "Architecture" section draws the same layers.

set -e

cd "$(dirname "$0")/.."

files="ngx_ai_relay_module.c $(ls src/ngx_ai_relay_*.c)"
tmp=${TMPDIR:-/tmp}/ai-relay-layers.$$
trap 'rm -rf "$tmp"' 0
mkdir -p "$tmp"

name() {
    basename "$1" .c | sed 's/^ngx_ai_relay_//'
}

# what each file defines: functions at the start of a line, not static,
# and globals (file scope, not static, not extern); the module object,
# ngx_ai_relay_module, which every file names for its ctx and confs, is
# nginx's and counts as no call
for f in $files; do
    awk -v n="$(name "$f")" '
        /^static/ { skip = 1; next }
        /^ngx_ai_relay_[a-z0-9_]+\(/ && !skip {
            sub(/\(.*/, ""); print $0, n
        }
        /^[a-z_]+[ *]+ngx_ai_relay_[a-z0-9_]+(\[.*\])? *(=|;)/ {
            match($0, /ngx_ai_relay_[a-z0-9_]+/)
            s = substr($0, RSTART, RLENGTH)
            if (s != "ngx_ai_relay_module") print s, n
        }
        { skip = 0 }
    ' "$f"
done > "$tmp/defs"

# what each file uses: identifiers outside comments and #include lines
for f in $files; do
    n=$(name "$f")
    gcc -fpreprocessed -dD -E -P "$f" 2>/dev/null | grep -v '^#' \
        | grep -oE 'ngx_ai_relay_[a-z0-9_]+' | sort -u \
        | sed "s/\$/ $n/"
done > "$tmp/uses"

# edges "user provider", one per pair
awk 'NR == FNR { def[$1] = $2; next }
     ($1 in def) && def[$1] != $2 { print $2, def[$1] }' \
    "$tmp/defs" "$tmp/uses" | sort -u > "$tmp/edges"

if ! tsort "$tmp/edges" > "$tmp/order" 2> "$tmp/loops"; then
    echo "layers: the module's files call each other in a loop:" >&2
    sed -n 's/^tsort: //p' "$tmp/loops" >&2
    exit 1
fi

if [ "$1" = "-v" ]; then
    # a file's layer: one above the highest of the files it calls into;
    # providers come after their users in tsort's order, so reversed,
    # each file's layer is known before any user's
    tac "$tmp/order" | awk '
        NR == FNR { n[$1]++; to[$1, n[$1]] = $2; next }
        {
            l = 0
            for (i = 1; i <= n[$1]; i++) {
                if (layer[to[$1, i]] + 1 > l) l = layer[to[$1, i]] + 1
            }
            layer[$1] = l
            line[l] = line[l] " " $1
            if (l > top) top = l
        }
        END { for (l = top; l >= 0; l--) printf "%d:%s\n", l, line[l] }
    ' "$tmp/edges" -
fi

echo "layers: $(wc -l < "$tmp/order") files, $(wc -l < "$tmp/edges") calls across files, no cycle"
