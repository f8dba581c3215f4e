#!/usr/bin/env bash
# make test-deb: the Debian package, installed for real.
#
#   t/deb/test-deb.sh [build/libnginx-mod-http-ai-relay_<version>_<arch>.deb]
#
# As root: installs the package with apt-get, checks its files, its
# modules-enabled symlink and dh_nginx's remove / reinstall / admin-disable
# behaviour, checks that the system's `nginx -t` passes with a relay
# location in /etc/nginx/conf.d, sends one chat completion through the
# packaged module, then purges the package and checks nothing is left and
# `nginx -t` still passes.
#
# The system nginx and Redis are never started, stopped, reloaded or
# reconfigured: the request goes through a private nginx master (the system
# binary, its own prefix, pid, logs and temp folders in a temporary folder)
# that loads the module the way the system one would, through
# /etc/nginx/modules-enabled, and a private Redis (t/redis.sh). Because the
# package's nginx-reload trigger (like every Debian nginx module's) reloads
# a running system nginx whenever the package is installed or removed, the
# test refuses to run when one runs (AI_RELAY_TEST_DEB_RELOAD_OK=1 accepts
# those reloads; the test's relay location is never in one).
#
# Ports (a busy one is an error, nothing is stopped): relay 19841, mock
# upstream 19842, Redis 16399; TEST_DEB_RELAY_PORT, TEST_DEB_MOCK_PORT and
# TEST_DEB_REDIS_PORT change them.
#
# Output: "ok N - ..." / "not ok N - ..." lines, then a summary; the exit
# status is non-zero if anything failed or the test refused to run.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
PKG=libnginx-mod-http-ai-relay
NGINX=/usr/sbin/nginx
SO=/usr/lib/nginx/modules/ngx_ai_relay_module.so
CLI=/usr/bin/ai-relay
AVAIL=/usr/share/nginx/modules-available/mod-http-ai-relay.conf
ENABLED=/etc/nginx/modules-enabled/50-mod-http-ai-relay.conf
DOC=/usr/share/doc/$PKG
MAN=/usr/share/man/man1/ai-relay.1.gz
CONFD=/etc/nginx/conf.d/zz-ai-relay-test.conf
MARK="# written by ngx_ai_relay's t/deb/test-deb.sh; removed when it ends"
RELAY_PORT=${TEST_DEB_RELAY_PORT:-19841}
MOCK_PORT=${TEST_DEB_MOCK_PORT:-19842}
REDIS_PORT=${TEST_DEB_REDIS_PORT:-16399}

export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -y -q -o DPkg::Lock::Timeout=120)

refuse() {
    echo "test-deb: REFUSED: $*" >&2
    echo "test-deb: nothing was changed" >&2
    exit 2
}

# ------------------------------------------------- before changing anything

[ "$(id -u)" = 0 ] || refuse "run as root (it installs and purges $PKG)"

# the test's own relay location, left by a run that was killed (it would
# break the system's nginx -t once the module is gone): removed first
if [ -e "$CONFD" ]; then
    grep -qxF "$MARK" "$CONFD" \
        || refuse "$CONFD exists and is not the test's own"
    rm -f "$CONFD"
    echo "test-deb: removed $CONFD, left by a test run that was killed" >&2
fi

if [ $# -ge 1 ]; then
    DEB=$1
else
    shopt -s nullglob
    debs=("$TOP"/build/"$PKG"_*.deb)
    shopt -u nullglob
    [ ${#debs[@]} = 1 ] \
        || refuse "want exactly one $TOP/build/${PKG}_*.deb (make deb)," \
                  "found ${#debs[@]}; or name it: $0 FILE.deb"
    DEB=${debs[0]}
fi
[ -f "$DEB" ] || refuse "$DEB does not exist (make deb)"
DEB=$(cd "$(dirname "$DEB")" && pwd)/$(basename "$DEB")
[ "$(dpkg-deb -f "$DEB" Package 2>/dev/null)" = "$PKG" ] \
    || refuse "$DEB is not a $PKG package"
VERSION=$(dpkg-deb -f "$DEB" Version)

# never touch a user's install: the package in any state, or files a
# `make install` (or anything else) put where the package would go
status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null || true)
case $status in
    ""|un*) ;;
    *) refuse "$PKG is already on this system (dpkg status '${status% }');" \
              "this test installs and purges it: test on another machine," \
              "or remove it yourself first (apt-get purge $PKG)" ;;
esac
for f in "$SO" "$CLI" "$AVAIL" "$ENABLED" "$ENABLED.removed"; do
    if [ -e "$f" ] || [ -L "$f" ]; then
        refuse "$f exists, not from $PKG (make install?): the" \
               "test's purge would delete it; move it away first"
    fi
done

# the package's nginx-reload trigger reloads a running system nginx (it
# asks invoke-rc.d, as nginx's postinst does)
if [ "${AI_RELAY_TEST_DEB_RELOAD_OK:-}" != 1 ] \
    && command -v invoke-rc.d >/dev/null \
    && invoke-rc.d --quiet nginx status >/dev/null 2>&1
then
    refuse "the system nginx is running, and installing or purging the" \
           "package fires Debian's nginx-reload trigger, which reloads it." \
           "Run the test where the system nginx is stopped, or set" \
           "AI_RELAY_TEST_DEB_RELOAD_OK=1 to accept a reload at each of" \
           "its five apt-get/dpkg steps (the test's relay location is" \
           "never in one)"
fi

for tool in "$NGINX" curl redis-server redis-cli perl ss; do
    command -v "$tool" >/dev/null || refuse "$tool is missing"
done
[ -f /usr/lib/nginx/modules/ngx_http_echo_module.so ] \
    || refuse "Debian's echo module (the mock upstream) is missing:" \
              "apt-get install libnginx-mod-http-echo"

busy=""
for p in "$RELAY_PORT" "$MOCK_PORT" "$REDIS_PORT"; do
    if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
        who=$(ss -Hltnp "sport = :$p" 2>/dev/null \
              | sed -n 's/.*users:((\("[^"]*"\).*/\1/p' | head -1)
        busy="$busy port $p${who:+ (held by $who)};"
    fi
done
[ -z "$busy" ] || refuse "in use:$busy the test needs relay $RELAY_PORT," \
    "mock $MOCK_PORT and Redis $REDIS_PORT (TEST_DEB_*_PORT change them)"

if ! out=$("$NGINX" -t 2>&1); then
    echo "$out" >&2
    refuse "the system's nginx -t fails before the test: fix that first"
fi

# the journal's default folder, which the test must not create (its nginx
# configurations name a journal of their own)
JOURNAL_DEFAULT=/var/lib/nginx/ai_relay
journal_default_was_there=0
[ -e "$JOURNAL_DEFAULT" ] && journal_default_was_there=1

# ------------------------------------------------------------- reporting

n=0
failed=0
ok()     { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check()  { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
diag()   { sed 's/^/# /'; }

not()        { ! "$@"; }
is_link_to() { [ -L "$1" ] && [ "$(readlink "$1")" = "$2" ]; }
absent()     { [ ! -e "$1" ] && [ ! -L "$1" ]; }
pkg_status() { dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null \
                   | tr -d ' '; }
pkg_field()  { dpkg-query -W -f="\${$1}" "$PKG" 2>/dev/null; }
listening()  { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
nginx_t()    {          # the system's nginx -t, its output shown if it fails
    local out
    out=$("$NGINX" -t 2>&1) && return 0
    echo "$out" | diag
    return 1
}

TMP=$(mktemp -d /tmp/ai-relay-test-deb.XXXXXX)
chmod 755 "$TMP"
LOG=$TMP/apt.log

apt_do() {      # apt_do DESCRIPTION apt-args...: output to $LOG
    local d=$1; shift
    echo "### ${APT[*]} $*" >> "$LOG"
    if "${APT[@]}" "$@" >> "$LOG" 2>&1; then
        ok "$d"
    else
        not_ok "$d"
        tail -20 "$LOG" | diag
        return 1
    fi
}

# ------------------------------------------------------------- cleanup

installed=0
redis_started=0
nginx_started=0
completed=0
finished=0

# the private master, ours only: its pid file, and a command line that
# names our folder
private_nginx_pid() {
    local pid
    pid=$(cat "$TMP/nginx.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        && grep -qF "$TMP" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

stop_private_nginx() {
    local pid
    pid=$(private_nginx_pid) || return 0
    kill -QUIT "$pid" 2>/dev/null
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -TERM "$pid" 2>/dev/null
    sleep 1
    kill -KILL "$pid" 2>/dev/null
    return 0
}

finish() {
    [ "$finished" = 1 ] && return
    finished=1
    trap '' INT TERM HUP    # the cleanup itself is not interrupted
    [ "$completed" = 1 ] || not_ok "the test ran to its end"
    echo "# cleanup"

    if [ "$nginx_started" = 1 ]; then
        stop_private_nginx
        check "the private nginx is stopped" not private_nginx_pid
    fi
    if [ "$redis_started" = 1 ]; then
        "$TOP/t/redis.sh" stop "$REDIS_PORT"
        check "the private Redis is stopped" not listening "$REDIS_PORT"
    fi
    if [ -e "$CONFD" ] && grep -qxF "$MARK" "$CONFD"; then
        rm -f "$CONFD"
    fi
    check "$CONFD is removed" absent "$CONFD"

    if [ "$installed" = 1 ]; then
        apt_do "apt-get purge $PKG" purge "$PKG"
        check "purged: dpkg no longer knows $PKG" \
            [ "$(pkg_status)" = "" -o "$(pkg_status)" = un ]
        for f in "$SO" "$CLI" "$AVAIL" "$ENABLED" "$ENABLED.removed" \
                 "$DOC" "$MAN"; do
            check "purged: $f is gone" absent "$f"
        done
        check "the system's nginx -t passes after the purge" nginx_t
    fi
    if [ "$journal_default_was_there" = 0 ]; then
        check "nothing was written to $JOURNAL_DEFAULT" \
            absent "$JOURNAL_DEFAULT"
    fi

    echo "1..$n"
    if [ "$failed" = 0 ]; then
        rm -rf "$TMP"
        echo "# test-deb: $PKG $VERSION"
        echo "test-deb: $n passed, 0 failed"
        exit 0
    fi
    echo "# test-deb: $PKG $VERSION; logs kept in $TMP"
    echo "test-deb: $((n - failed)) passed, $failed failed"
    exit 1
}
trap finish EXIT
trap 'echo "# interrupted"; exit 1' INT TERM HUP

# -------------------------------------------------------------- install

echo "# $DEB"
installed=1
apt_do "apt-get install ./$(basename "$DEB")" install "$DEB" || exit 1

check "dpkg: $PKG $VERSION is installed" \
    [ "$(pkg_status) $(pkg_field Version)" = "ii $VERSION" ]

check "$SO is there (0644)" \
    [ -f "$SO" -a "$(stat -c %a "$SO" 2>/dev/null)" = 644 ]
check "$SO belongs to $PKG" \
    [ "$(dpkg -S "$SO" 2>/dev/null)" = "$PKG: $SO" ]
check "$AVAIL loads it like Debian's other modules" \
    [ "$(cat "$AVAIL" 2>/dev/null)" = "load_module modules/ngx_ai_relay_module.so;" ]
check "$ENABLED -> $AVAIL" is_link_to "$ENABLED" "$AVAIL"
check "the system's nginx -t passes with the module loaded, no relay yet" \
    nginx_t
check "nginx's prefix reaches it as modules/ngx_ai_relay_module.so" \
    test -f /usr/share/nginx/modules/ngx_ai_relay_module.so
check "$CLI is there and runs" \
    [ -x "$CLI" -a "$("$CLI" --help 2>&1 | head -c 9)" = "ai-relay " ]
for f in README.md.gz cli.md.gz copyright changelog.gz examples/conf.example; do
    check "$DOC/$f is there" test -s "$DOC/$f"
done
check "$MAN is there" test -s "$MAN"
check "the changelog's version is the package's" \
    [ "$(zcat "$DOC/changelog.gz" 2>/dev/null | head -1)" \
      = "$PKG ($VERSION) unstable; urgency=medium" ]
check "every library of the module and the CLI resolves" \
    not grep -q 'not found' <(ldd "$SO" "$CLI" 2>&1)

abi=$(dpkg-query -W -f='${Provides}' nginx 2>/dev/null | tr ',' '\n' \
      | sed -n 's/^ *\(nginx-abi-[^ ]*\).*/\1/p' | head -1)
depends=", $(pkg_field Depends),"
check "Depends on the installed nginx's ABI (${abi:-none})" \
    [ -n "$abi" -a "${depends/, $abi,/}" != "$depends" ]
for lib in libc6 libhiredis0.14 libjansson4 libssl3; do
    check "Depends on $lib" [ "${depends/, $lib (/}" != "$depends" ]
done

# the maintainer scripts are dh_nginx's, filled in as dh_nginx does
names="mod-http-ai-relay.conf:50-mod-http-ai-relay.conf "
for s in postinst prerm postrm; do
    tpl=/usr/share/debhelper/autoscripts/$s-nginx
    if [ -f "$tpl" ]; then
        expected=$(sed "s/#NAMES#/$names/" "$tpl")
        actual=$(sed -n '/^# Automatically added by dh_nginx/,/^# End automatically added section/{//!p}' \
                 "/var/lib/dpkg/info/$PKG.$s" 2>/dev/null)
        check "$s is dh_nginx's ($tpl)" [ "$expected" = "$actual" ]
    else
        ok "# SKIP $s vs dh_nginx: $tpl not here (nginx-dev)"
    fi
done

# ------------------------------------------ dh_nginx's symlink life cycle

apt_do "apt-get remove $PKG" remove "$PKG"
check "removed: the module is gone" absent "$SO"
check "removed: the symlink is parked as .removed" \
    is_link_to "$ENABLED.removed" "$AVAIL"
check "removed: no $ENABLED" absent "$ENABLED"
check "removed: dpkg keeps its config-files state" [ "$(pkg_status)" = rc ]
check "removed: the system's nginx -t passes" nginx_t

apt_do "apt-get install after a remove" install "$DEB"
check "reinstalled: the symlink is back" is_link_to "$ENABLED" "$AVAIL"
check "reinstalled: no .removed left" absent "$ENABLED.removed"

# an admin who disabled the module keeps it disabled across a reinstall
rm -f "$ENABLED"
echo "### dpkg -i (reinstall)" >> "$LOG"
if dpkg -i "$DEB" >> "$LOG" 2>&1; then
    ok "dpkg -i over itself (an upgrade's path)"
else
    not_ok "dpkg -i over itself (an upgrade's path)"
    tail -20 "$LOG" | diag
fi
check "reinstalled: an admin's disabling is kept" absent "$ENABLED"
ln -s "$AVAIL" "$ENABLED"

# ------------------------------------------------- the system's nginx -t

# the journal's folder: the module checks at nginx -t that the worker user
# (www-data for the system's, nobody for the private nginx) can write there
mkdir -p "$TMP/journal" "$TMP/tmp"
chmod 1777 "$TMP/journal" "$TMP/tmp"

{
    echo "$MARK"
    cat <<EOF
# a relay as an operator writes it (the private nginx of the test includes
# this file too; the system nginx checks it with nginx -t and is never
# reloaded while it is here)

ai_relay_redis           127.0.0.1:$REDIS_PORT;
ai_relay_redis_timeout   1s;
ai_relay_journal         $TMP/journal/journal;

server {
    listen 127.0.0.1:$RELAY_PORT;

    location /v1/ {
        ai_relay             openai;
        proxy_pass           \$ai_relay_upstream_url;
        proxy_http_version   1.1;
        proxy_set_header     Connection "";
        proxy_buffering      off;
        proxy_read_timeout   10s;
    }
}
EOF
} > "$CONFD"

check "the system's nginx -t passes with the module and $CONFD" nginx_t

# ------------------------------------------ one request, privately served

# load_module's "modules/..." is relative to the prefix; Debian's prefix
# /usr/share/nginx has the same link
ln -s /usr/lib/nginx/modules "$TMP/modules"

# the mock needs Debian's echo module: from modules-enabled if it is
# enabled there, else loaded here
echo_load="load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;"
if grep -qs ngx_http_echo_module /etc/nginx/modules-enabled/*.conf; then
    echo_load="# echo module: from /etc/nginx/modules-enabled"
fi

cat > "$TMP/nginx.conf" <<EOF
# the private nginx of t/deb/test-deb.sh
worker_processes  1;
pid               $TMP/nginx.pid;
lock_file         $TMP/nginx.lock;
error_log         $TMP/error.log info;

# what the system nginx.conf loads: the packaged module comes in here
include /etc/nginx/modules-enabled/*.conf;
$echo_load

events {
    worker_connections  64;
}

http {
    access_log              $TMP/access.log;
    client_body_temp_path   $TMP/tmp/body;
    proxy_temp_path         $TMP/tmp/proxy;
    fastcgi_temp_path       $TMP/tmp/fastcgi;
    uwsgi_temp_path         $TMP/tmp/uwsgi;
    scgi_temp_path          $TMP/tmp/scgi;

    include $CONFD;

    # the mock provider: an OpenAI chat completion with usage
    server {
        listen 127.0.0.1:$MOCK_PORT;

        location /mock/v1/chat/completions {
            echo_read_request_body;
            default_type application/json;
            echo '{"id":"chatcmpl-deb","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the package test"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}';
        }
    }
}
EOF

if "$TOP/t/redis.sh" start "$REDIS_PORT" >> "$LOG" 2>&1; then
    redis_started=1
    ok "a private Redis on port $REDIS_PORT"
else
    not_ok "a private Redis on port $REDIS_PORT"
    tail -5 "$LOG" | diag
    exit 1
fi
redis-cli -p "$REDIS_PORT" flushall >/dev/null

export AI_RELAY_REDIS=127.0.0.1:$REDIS_PORT
seed() { echo "### ai-relay $*" >> "$LOG"; "$CLI" "$@" >> "$LOG" 2>&1; }
if seed users create debtest --balance 5 \
    && seed channels create --id 1 --name mock --provider openai \
        --base-url "http://127.0.0.1:$MOCK_PORT/mock" --key mock-upstream-key \
    && seed models set gpt-4o-mini --channels 1 \
    && seed prices set gpt-4o-mini --input 0.15 --output 0.60 \
    && KEY=$("$CLI" keys create --user debtest --name test-deb 2>>"$LOG") \
    && [ -n "$KEY" ]
then
    ok "seeded a user, key, channel, model and price with $CLI"
else
    not_ok "seeded a user, key, channel, model and price with $CLI"
    tail -10 "$LOG" | diag
    exit 1
fi

nginx_started=1
if "$NGINX" -p "$TMP/" -c "$TMP/nginx.conf" -e "$TMP/error.log" \
    > "$TMP/start.log" 2>&1
then
    ok "a private nginx (prefix $TMP) loads the module from modules-enabled"
else
    not_ok "a private nginx (prefix $TMP) loads the module from modules-enabled"
    diag < "$TMP/start.log"
    tail -5 "$TMP/error.log" 2>/dev/null | diag
    exit 1
fi
for _ in $(seq 1 50); do
    listening "$RELAY_PORT" && break
    sleep 0.1
done

URL=http://127.0.0.1:$RELAY_PORT/v1/chat/completions
BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'

code=$(curl -sS -o "$TMP/bad.json" -w '%{http_code}' --max-time 10 "$URL" \
       -H 'Authorization: Bearer sk-not-a-key' \
       -H 'Content-Type: application/json' -d "$BODY" 2>&1)
check "an unknown key gets 401 from the relay (got $code)" [ "$code" = 401 ]

code=$(curl -sS -o "$TMP/ok.json" -w '%{http_code}' --max-time 10 "$URL" \
       -H "Authorization: Bearer $KEY" \
       -H 'Content-Type: application/json' -d "$BODY" 2>&1)
check "a chat completion with the key gets 200 (got $code)" [ "$code" = 200 ]
check "the answer is the mock upstream's" \
    grep -q 'Hello from the package test' "$TMP/ok.json"

# settlement follows the response: wait for the bill
balance() {
    "$CLI" --json users show debtest 2>/dev/null \
        | perl -MJSON::PP -0 -ne 'print decode_json($_)->{balance}'
}
records() {
    "$CLI" --json records --user debtest 2>/dev/null \
        | perl -MJSON::PP -0 -ne 'print scalar @{decode_json($_)}'
}
b=""
for _ in $(seq 1 50); do
    b=$(balance)
    [ -n "$b" ] && [ "$b" -lt 5000000 ] && break
    sleep 0.1
done
check "the user's balance fell from 5000000 uUSD (now ${b:-?})" \
    [ "${b:-5000000}" -lt 5000000 ]
r=$(records)
check "ai-relay records shows the request (${r:-0} record)" \
    [ "${r:-0}" -ge 1 ]
check "the private nginx logged no [alert] or [emerg]" \
    not grep -qE '\[(alert|emerg)\]' "$TMP/error.log"

if [ "$failed" != 0 ]; then
    echo "# private nginx error.log (tail):"
    tail -20 "$TMP/error.log" | diag
fi

completed=1
exit 0      # the EXIT trap cleans up, purges and reports
