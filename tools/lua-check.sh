#!/usr/bin/env bash
# Check the Redis scripts with luac 5.1, the Lua Redis runs (Debian's
# lua5.1 package):
#   - the syntax (luac -p);
#   - no global variable set: Redis refuses it at run time ("Script
#     attempted to create global variable");
#   - no global read but those Redis scripts have (KEYS, ARGV, redis and
#     Lua's own libraries): any other is a misspelt local, nil at run
#     time.
# Each is checked as sent to Redis: the file without its documentation,
# after the names of src/ngx_ai_relay_schema.h it uses (src/lua/mkheader.sh
# -l); lines are the file's.
#
#   tools/lua-check.sh FILE.lua...
set -u

mkheader=$(dirname "$0")/../src/lua/mkheader.sh
sent=$(mktemp) || exit 1
trap 'rm -f "$sent"' EXIT

luac=${LUAC:-luac5.1}
command -v "$luac" >/dev/null || {
    echo "lua-check: $luac not found (Debian: apt-get install lua5.1)" >&2
    exit 1
}

allowed=(KEYS ARGV redis assert error ipairs next pairs pcall rawequal
         rawget rawset select getmetatable setmetatable tonumber tostring
         type unpack xpcall string table math bit cjson cmsgpack struct)

known() {
    local a
    for a in "${allowed[@]}"; do
        [ "$a" = "$1" ] && return 0
    done
    return 1
}

rc=0
for f in "$@"; do
    if ! sh "$mkheader" -l "$f" > "$sent"; then
        rc=1
        continue
    fi
    # a line as sent plus off is the file's
    off=$(( $(awk 'END { print NR }' "$f") - $(awk 'END { print NR }' "$sent") ))
    if ! "$luac" -p "$sent" 2>&1 \
         | awk -v f="$f" -v off="$off" -v t="$sent" '
               { i = index($0, t ":")
                 if (i) { s = substr($0, i + length(t) + 1)
                          n = s + 0; sub(/^[0-9]+/, "", s)
                          $0 = substr($0, 1, i - 1) f ":" n + off s }
                 print; bad = 1 }
               END { exit bad }' >&2
    then
        rc=1
        continue
    fi
    # "<n> [<line>] GETGLOBAL <a> <k> ; <name>"
    while read -r line op name; do
        line=$((line + off))
        if [ "$op" = SETGLOBAL ]; then
            echo "$f:$line: sets the global '$name' (use local)" >&2
            rc=1
        elif ! known "$name"; then
            echo "$f:$line: reads the global '$name', which Redis" \
                 "scripts do not have" >&2
            rc=1
        fi
    done < <("$luac" -p -l "$sent" \
             | awk '$3 ~ /^[GS]ETGLOBAL$/ { gsub(/[][]/, "", $2);
                                            print $2, $3, $NF }')
done

[ $rc = 0 ] && echo "lua-check: $# scripts OK"
exit $rc
