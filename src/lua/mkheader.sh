# ngx_ai_relay: the Redis scripts as a C header.
#
#   sh mkheader.sh OUT.h FILE.lua...
#   sh mkheader.sh -l FILE.lua        the script as sent, on stdout
#
# For each FILE.lua, NAME being its base name in capitals, OUT.h defines
#
#   NGX_AI_RELAY_SCRIPT_<NAME>_SRC   the script, a C string literal
#   NGX_AI_RELAY_SCRIPT_<NAME>_SHA1  its SHA1, 40 lowercase hex digits
#                                    (what EVALSHA and SCRIPT LOAD use)
#
# A script file starts with its documentation: its leading lines that are
# comments ("--" at the start) or empty are not sent to Redis.  The rest
# of the file is, byte for byte (a last line without its newline gets
# one), after a line
#
#   local RKEY_MODEL = 'ar:{cfg}:model:'
#
# for each name of src/ngx_ai_relay_schema.h the script uses, in the
# header's order: the key schema and the reservation format are defined
# there only.  A name is a macro's without NGX_AI_RELAY_; a function-like
# macro's text is that with empty arguments.  The header's macros are
# string literals, parameters and macros defined above them: this script
# evaluates them.
#
# Run by nginx's configure (the addon's `config`), so POSIX sh, sed and awk
# plus coreutils' sha1sum only.  OUT.h is replaced only when it changes:
# configuring again does not rebuild what includes it.

set -e

if [ "$1" = -l ] && [ $# -eq 2 ]; then
    out=
    tmp=${TMPDIR:-/tmp}/mkheader.$$

elif [ $# -ge 2 ] && [ "$1" != -l ]; then
    out=$1
    shift
    tmp=$out.tmp.$$

else
    echo "usage: sh mkheader.sh OUT.h FILE.lua..." >&2
    echo "       sh mkheader.sh -l FILE.lua" >&2
    exit 2
fi

if [ -n "$out" ] && ! command -v sha1sum >/dev/null 2>&1; then
    echo "mkheader.sh: sha1sum not found (coreutils)" >&2
    exit 1
fi

schema=`dirname "$0"`/../ngx_ai_relay_schema.h
consts=$tmp.schema
body=$tmp.body
trap 'rm -f "$tmp" "$consts" "$body"' 0
trap 'exit 1' 1 2 15

LC_ALL=C
export LC_ALL


# the schema's macros, evaluated: "NAME<tab>text" lines

awk -v f="$schema" '
    function fail(m) {
        print "mkheader.sh: " f ": " m > "/dev/stderr"
        err = 1
        exit 1
    }

    # env: "param" SUBSEP "text" "\001" ..., the arguments of a call
    function arg(env, id,    a, i, n, kv) {
        n = split(env, a, "\001")

        for (i = 1; i <= n; i++) {
            split(a[i], kv, SUBSEP)

            if (kv[1] == id) {
                found = 1
                return kv[2]
            }
        }

        found = 0
        return ""
    }

    function expand(s, env,    out, c, j, id, v, depth, a, n, argv,
                               pn, plist, k, newenv)
    {
        out = ""

        while (s != "") {
            if (match(s, /^[ \t]+/)) {
                s = substr(s, RLENGTH + 1)
                continue
            }

            if (substr(s, 1, 1) == "\"") {
                j = index(substr(s, 2), "\"")
                v = substr(s, 2, j - 1)

                if (j == 0 || v ~ /[\\\047]/) {
                    fail("a string literal of " name " that is not plain")
                }

                out = out v
                s = substr(s, j + 2)
                continue
            }

            if (!match(s, /^[A-Za-z_][A-Za-z0-9_]*/)) {
                fail("cannot read \"" s "\" in " name)
            }

            id = substr(s, 1, RLENGTH)
            s = substr(s, RLENGTH + 1)

            v = arg(env, id)

            if (found) {
                out = out v
                continue
            }

            if (!(id in body)) {
                fail(name ": " id " is not defined above it")
            }

            if (!fn[id]) {
                out = out expand(body[id], "")
                continue
            }

            sub(/^[ \t]+/, "", s)

            if (substr(s, 1, 1) != "(") {
                fail(name ": " id " without its arguments")
            }

            s = substr(s, 2)
            depth = 0
            a = ""
            n = 0

            while (s != "") {
                c = substr(s, 1, 1)
                s = substr(s, 2)

                if (c == "\"") {
                    j = index(s, "\"")
                    a = a c substr(s, 1, j)
                    s = substr(s, j + 1)
                    continue
                }

                if (c == ")" && depth == 0) {
                    break
                }

                if (c == "," && depth == 0) {
                    argv[++n] = a
                    a = ""
                    continue
                }

                depth += (c == "(") - (c == ")")
                a = a c
            }

            if (n > 0 || a !~ /^[ \t]*$/) {
                argv[++n] = a
            }

            pn = split(params[id], plist, ",")

            if (pn != n) {
                fail(name ": " id " takes " pn " arguments, not " n)
            }

            newenv = ""

            for (k = 1; k <= n; k++) {
                newenv = newenv plist[k] SUBSEP expand(argv[k], env) "\001"
            }

            out = out expand(body[id], newenv)
        }

        return out
    }

    {
        line = $0

        while (line ~ /\\$/ && (getline more) > 0) {
            sub(/\\$/, "", line)
            line = line " " more
        }

        if (line !~ /^#define[ \t]+NGX_AI_RELAY_/) {
            next
        }

        sub(/^#define[ \t]+/, "", line)
        match(line, /^[A-Za-z0-9_]+/)
        name = substr(line, 1, RLENGTH)
        line = substr(line, RLENGTH + 1)

        if (substr(line, 1, 1) == "(") {
            j = index(line, ")")
            params[name] = substr(line, 2, j - 2)
            gsub(/[ \t]/, "", params[name])
            line = substr(line, j + 1)
            fn[name] = 1
        }

        body[name] = line
        order[++n] = name
    }

    END {
        if (err) {
            exit 1
        }

        if (n == 0) {
            fail("no NGX_AI_RELAY_ macros")
        }

        for (i = 1; i <= n; i++) {
            name = order[i]
            env = ""

            if (fn[name]) {
                pn = split(params[name], plist, ",")

                for (k = 1; k <= pn; k++) {
                    env = env plist[k] SUBSEP "" "\001"
                }
            }

            v = expand(body[name], env)
            sub(/^NGX_AI_RELAY_/, "", name)
            print name "\t" v
        }
    }' "$schema" > "$consts"


# script FILE.lua: writes $body, the text sent to Redis

script() {
    if [ ! -r "$1" ]; then
        echo "mkheader.sh: cannot read $1" >&2
        exit 1
    fi

    # the script without its documentation, after the schema names it uses
    awk -v consts="$consts" '
        BEGIN {
            while ((getline l < consts) > 0) {
                i = index(l, "\t")
                names[++n] = substr(l, 1, i - 1)
                text[names[n]] = substr(l, i + 1)
            }
        }

        doc && (/^--/ || /^$/) { next }

        {
            doc = 0
            lines[++nl] = $0
            s = $0

            while (match(s, /[A-Za-z_][A-Za-z0-9_]*/)) {
                used[substr(s, RSTART, RLENGTH)] = 1
                s = substr(s, RSTART + RLENGTH)
            }
        }

        END {
            if (nl == 0) {
                exit 3
            }

            for (i = 1; i <= n; i++) {
                if (names[i] in used) {
                    printf "local %s = \047%s\047\n", names[i], text[names[i]]
                }
            }

            for (i = 1; i <= nl; i++) {
                print lines[i]
            }
        }' doc=1 "$1" > "$body" || {
        echo "mkheader.sh: $1 holds no script" >&2
        exit 1
    }
}


if [ -z "$out" ]; then
    script "$2"
    cat "$body"
    exit 0
fi

{
    printf '\n/*\n'
    printf ' * Generated by src/lua/mkheader.sh: do not edit.  The Redis\n'
    printf ' * scripts in src/lua/, as sent to Redis, and their SHA1s.\n'
    printf ' */\n\n\n'
    printf '#ifndef _NGX_AI_RELAY_SCRIPTS_H_INCLUDED_\n'
    printf '#define _NGX_AI_RELAY_SCRIPTS_H_INCLUDED_\n'

    for f in "$@"; do
        name=`basename "$f" .lua`

        case $name in
        *[!a-z0-9_]* | "")
            echo "mkheader.sh: $f: a script's name is [a-z0-9_]+" >&2
            exit 1
            ;;
        esac

        NAME=`echo "$name" | awk '{ print toupper($0) }'`

        script "$f"

        sha=`sha1sum < "$body" | sed 's/ .*//'`

        printf '\n\n/* src/lua/%s.lua */\n\n' "$name"
        printf '#define NGX_AI_RELAY_SCRIPT_%s_SHA1  "%s"\n\n' "$NAME" "$sha"
        awk -v f="$f" -v name="$NAME" '
            function line(s) {
                if (length(prev) < 77) {
                    printf "%-77s \\\n", prev

                } else {
                    printf "%s \\\n", prev
                }

                prev = s
            }

            # a C string literal: no trigraph ("??" becomes "?\?")
            function esc(s,    c, i, o) {
                o = ""

                for (i = 1; i <= length(s); i++) {
                    c = substr(s, i, 1)

                    if (c == "\\" || c == "\"") {
                        o = o "\\" c

                    } else if (c == "\t") {
                        o = o "\\t"

                    } else if (c == "\r") {
                        o = o "\\r"

                    } else if (c ~ /[[:cntrl:]]/) {
                        print "mkheader.sh: " f ": a control character" \
                              " in line " NR > "/dev/stderr"
                        exit 1

                    } else if (c == "?" && substr(o, length(o)) == "?") {
                        o = o "\\?"

                    } else {
                        o = o c
                    }
                }

                return o
            }

            BEGIN { prev = "#define NGX_AI_RELAY_SCRIPT_" name "_SRC" }

            { line("    \"" esc($0) "\\n\"") }

            END { print prev }' "$body"
    done

    printf '\n\n#endif /* _NGX_AI_RELAY_SCRIPTS_H_INCLUDED_ */\n'

} > "$tmp"

if cmp -s "$tmp" "$out"; then
    rm -f "$tmp"

else
    mv "$tmp" "$out"
fi
