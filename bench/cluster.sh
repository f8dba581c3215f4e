#!/usr/bin/env bash
# `make bench-cluster` (and the last part of `make bench`): the relay's CPU
# per request on one Redis against a 3-master Redis Cluster (3 replicas),
# in the same run, and two relays (two nginx) on that cluster at once, each
# also as a ratio to plain nginx proxy_pass measured in the same run.
# Non-stream requests through wrk; CPU = the fronts' workers + every Redis
# process, user + system, from /proc.  Results:
# build/bench/cluster-latest.txt.
#
#   BENCH_SECONDS=10        wrk seconds per figure
#   BENCH_REPS=3            repetitions, interleaved; medians reported
#   BENCH_CONNS=32          connections per relay
#   BENCH_CLUSTER_BASE=2293 ports: +0 Redis, +1 mock, +2 relay on Redis,
#                           +3 relay on the cluster, +4 the second relay,
#                           +5 plain proxy_pass
#   BENCH_CLUSTER_PORT=7307 the cluster's nodes (6, and +10000: bus)
#
# Everything it starts it stops (the cluster with t/cluster.sh, which stops
# only its own nodes); a port in use is an error.
set -eu

TOP=${TOP:?} BUILD=${BUILD:?} NGINX_BIN=${NGINX:-/usr/sbin/nginx}
MODULE=${MODULE:?}
# nginx reads NGINX as inherited sockets
unset NGINX
SECS=${BENCH_SECONDS:-10}
REPS=${BENCH_REPS:-3}
CONNS=${BENCH_CONNS:-32}
BASE=${BENCH_CLUSTER_BASE:-2293}
CPORT=${BENCH_CLUSTER_PORT:-7307}
ECHO_MODULE=${ECHO_MODULE:-/usr/lib/nginx/modules/ngx_http_echo_module.so}

REDIS_PORT=$BASE
MOCK_PORT=$((BASE + 1))
R1_PORT=$((BASE + 2))
C1_PORT=$((BASE + 3))
C2_PORT=$((BASE + 4))
P1_PORT=$((BASE + 5))

KEY=sk-bench0000000000000000000000000000000000000000001
B=$BUILD/bench
RUN=$B/cluster-run
DATA=$B/data
TOOLS=$TOP/bench/tools
WRK_LUA=$TOP/bench/wrk/post.lua
CLK_TCK=$(getconf CLK_TCK)
OUT=$B/cluster-$(date -u +%Y%m%dT%H%M%SZ).txt
REDIS_PID=

log() { echo "[bench-cluster $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ticks() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    s=${s##*) }
    set -- $s
    echo $(( ${12} + ${13} ))
}

worker() { pgrep -P "$(cat "$RUN/$1/logs/nginx.pid")" | head -1; }

start_nginx() {
    timeout 20 "$NGINX_BIN" -p "$RUN/$1/" -c conf/nginx.conf -e logs/error.log \
        || die "$1 did not start: $(tail -3 "$RUN/$1/logs/error.log")"
    for _ in $(seq 1 50); do
        [ -n "$(worker "$1" || true)" ] && return 0
        sleep 0.1
    done
    die "$1 has no worker"
}

stop_nginx() {
    local m
    m=$(cat "$RUN/$1/logs/nginx.pid" 2>/dev/null) || return 0
    kill -QUIT "$m" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$m" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$m" 2>/dev/null || true
    rm -f "$RUN/$1/logs/nginx.pid"
}

cleanup() {
    for n in p1 r1 c1 c2 mock; do stop_nginx "$n"; done
    "$TOP/t/cluster.sh" stop "$CPORT" || true
    if [ -n "$REDIS_PID" ]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

redis_pids() {   # the single Redis, or the cluster's six, or none
    if [ "$1" = none ]; then
        return 0
    elif [ "$1" = single ]; then
        echo "$REDIS_PID"
    else
        cat "$BUILD/cluster-$CPORT"/*/redis.pid
    fi
}

sum_ticks() {
    local t=0 p
    for p in "$@"; do t=$((t + $(ticks "$p"))); done
    echo "$t"
}

# figure name redis fronts...: wrk on each front at once; prints
# "requests cpu_us_per_request front_us redis_us errors"
figure() {
    local name=$1 redis=$2
    shift 2
    local f pids=() rpids wpids=() t0 r0 t1 r1 out req=0 err=0 i=0
    for f in "$@"; do pids+=("$(worker "$f")"); done
    read -r -a rpids <<< "$(redis_pids "$redis" | tr '\n' ' ')"
    t0=$(sum_ticks "${pids[@]}"); r0=$(sum_ticks "${rpids[@]}")
    for f in "$@"; do
        BENCH_BODY=$DATA/chat.json BENCH_KEY=$KEY BENCH_MODE=- \
            BENCH_DELAY_MS=0 BENCH_HEADERS= \
            timeout $((SECS + 60)) wrk -t1 -c"$CONNS" -d"${SECS}s" \
            --timeout 10s -s "$WRK_LUA" "http://127.0.0.1:$(port "$f")/v1/chat/completions" \
            > "$RUN/wrk-$f.out" 2>&1 &
        wpids+=($!)
    done
    for p in "${wpids[@]}"; do wait "$p" || die "wrk failed"; done
    sleep 0.3
    t1=$(sum_ticks "${pids[@]}"); r1=$(sum_ticks "${rpids[@]}")
    for f in "$@"; do
        out=$(grep '^WRK ' "$RUN/wrk-$f.out") || die "no WRK line: $(cat "$RUN/wrk-$f.out")"
        req=$((req + $(sed 's/.* requests=\([0-9]*\).*/\1/' <<< "$out")))
        for e in $(grep -o 'err_[a-z]*=[0-9]*' <<< "$out" | cut -d= -f2); do
            err=$((err + e))
        done
    done
    [ "$req" -gt 0 ] || die "$name: no request served"
    awk -v n="$name" -v q="$req" -v f=$((t1 - t0)) -v r=$((r1 - r0)) \
        -v hz="$CLK_TCK" -v e="$err" 'BEGIN {
            fu = f * 1e6 / hz / q; ru = r * 1e6 / hz / q
            printf "%s requests=%d cpu_us=%.1f front_us=%.1f redis_us=%.1f errors=%d\n",
                   n, q, fu + ru, fu, ru, e }'
}

port() {
    case $1 in
        p1) echo "$P1_PORT" ;; r1) echo "$R1_PORT" ;;
        c1) echo "$C1_PORT" ;; c2) echo "$C2_PORT" ;;
    esac
}

render_front() {   # name port redis-line
    mkdir -p "$RUN/$1/conf" "$RUN/$1/logs" "$RUN/$1/tmp" "$RUN/$1/journal"
    chmod 1777 "$RUN/$1/journal"
    perl "$TOOLS/render.pl" "$TOP/bench/conf/front.conf.in" \
        "$RUN/$1/conf/nginx.conf" \
        FRONT_MASK="$(printf '%*s' "$(nproc)" '' | tr ' ' 1)" \
        NOFILE="$NOFILE" WCONNS=$((NOFILE - 64)) MOCK_PORT="$MOCK_PORT" \
        PORT="$2" RELAY_LOAD="load_module  $MODULE;" \
        RELAY_HTTP="    ai_relay_redis                  $3;
    ai_relay_redis_timeout          2s;
    ai_relay_records_max            100000000;
    ai_relay_journal                $RUN/$1/journal/ai_relay.journal;" \
        RELAY_LOCATION="            ai_relay               openai;
            proxy_pass             \$ai_relay_upstream_url;"
    [ "$(id -u)" = 0 ] && echo "user root;" >> "$RUN/$1/conf/nginx.conf"
    return 0
}

render_proxy() {   # name port: the same front, plain proxy_pass
    mkdir -p "$RUN/$1/conf" "$RUN/$1/logs" "$RUN/$1/tmp"
    perl "$TOOLS/render.pl" "$TOP/bench/conf/front.conf.in" \
        "$RUN/$1/conf/nginx.conf" \
        FRONT_MASK="$(printf '%*s' "$(nproc)" '' | tr ' ' 1)" \
        NOFILE="$NOFILE" WCONNS=$((NOFILE - 64)) MOCK_PORT="$MOCK_PORT" \
        PORT="$2" RELAY_LOAD= RELAY_HTTP= \
        RELAY_LOCATION="            proxy_pass             http://mock;"
    [ "$(id -u)" = 0 ] && echo "user root;" >> "$RUN/$1/conf/nginx.conf"
    return 0
}

main() {
    command -v wrk >/dev/null || die "wrk is missing (make bench-deps)"
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    NOFILE=$(ulimit -n)
    "$TOP/tools/ports-free.sh" "$REDIS_PORT" "$MOCK_PORT" "$R1_PORT" \
        "$C1_PORT" "$C2_PORT" "$P1_PORT" || exit 1
    rm -rf "$RUN"
    mkdir -p "$RUN/redis" "$RUN/mock/conf" "$RUN/mock/logs" "$RUN/mock/tmp" "$DATA"
    perl "$TOOLS/mkdata.pl" "$TOP/bench/mock" "$DATA"

    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$RUN/redis" --logfile "$RUN/redis/redis.log" \
        --daemonize no &
    REDIS_PID=$!
    "$TOP/t/cluster.sh" start "$CPORT" || die "the cluster did not start"
    for _ in $(seq 1 50); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    perl "$TOOLS/seed.pl" "$REDIS_PORT" "$KEY" >/dev/null
    perl "$TOOLS/seed.pl" "$CPORT" "$KEY" >/dev/null

    perl "$TOOLS/render.pl" "$TOP/bench/conf/mock.conf.in" \
        "$RUN/mock/conf/nginx.conf" \
        LOAD_MASK="$(printf '%*s' "$(nproc)" '' | tr ' ' 1)" NOFILE="$NOFILE" \
        WCONNS=$((NOFILE - 64)) MOCK_PORT="$MOCK_PORT" ECHO_MODULE="$ECHO_MODULE" \
        IDLE_HOLD=30 COMPLETION="@$DATA/completion.txt" \
        SSE_ALL="@$DATA/sse_all.conf" SSE_FIRST="@$DATA/sse_first.conf" \
        SSE_REST="@$DATA/sse_rest.conf" ASSE_ALL="@$DATA/asse_all.conf"
    [ "$(id -u)" = 0 ] && echo "user root;" >> "$RUN/mock/conf/nginx.conf"

    local seeds="127.0.0.1:$CPORT 127.0.0.1:$((CPORT + 1)) cluster"
    render_front r1 "$R1_PORT" "127.0.0.1:$REDIS_PORT"
    render_front c1 "$C1_PORT" "$seeds"
    render_front c2 "$C2_PORT" "$seeds"
    render_proxy p1 "$P1_PORT"
    for n in mock p1 r1 c1 c2; do start_nginx "$n"; done

    # warm: connections, slot maps, scripts, leases
    local f r
    for f in p1 r1 c1 c2; do
        case $f in p1) r=none ;; r1) r=single ;; *) r=cluster ;; esac
        SECS=1 figure warm-$f "$r" "$f" >/dev/null
    done

    : > "$RUN/raw"
    for rep in $(seq 1 "$REPS"); do
        figure proxy none p1 | tee -a "$RUN/raw" >&2
        figure single single r1 | tee -a "$RUN/raw" >&2
        figure cluster cluster c1 | tee -a "$RUN/raw" >&2
        figure two_nodes cluster c1 c2 | tee -a "$RUN/raw" >&2
    done

    {
        echo "# make bench-cluster $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores," \
             "$SECS s x $REPS, $CONNS connections per relay, non-stream"
        echo "# CPU per request = front workers + all Redis processes (medians);"
        echo "# x_proxy: cpu_us / plain proxy_pass's; x_single: / one Redis's"
        awk '{ n = $1; for (i = 2; i <= NF; i++) { split($i, kv, "=");
                   v[n, kv[1], ++c[n, kv[1]]] = kv[2] } names[n] = 1 }
             function med(n, k,   m, i, j, t, a) {
                 m = c[n, k]; for (i = 1; i <= m; i++) a[i] = v[n, k, i]
                 for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
                     if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                 return a[int((m + 1) / 2)] }
             END {
                 px = med("proxy", "cpu_us"); sg = med("single", "cpu_us")
                 printf "%-10s %10s %10s %10s %10s %8s %8s %8s\n", "figure",
                        "req/s", "cpu_us", "front_us", "redis_us", "x_proxy",
                        "x_single", "errors"
                 split("proxy single cluster two_nodes", order, " ")
                 for (o = 1; o <= 4; o++) { n = order[o]; cu = med(n, "cpu_us")
                     printf "%-10s %10.0f %10.1f %10.1f %10.1f %8.2f %8s %8d\n",
                            n, med(n, "requests") / secs, cu,
                            med(n, "front_us"), med(n, "redis_us"),
                            (px > 0 ? cu / px : 0),
                            (n == "proxy" ? "-" : sprintf("%.2f", cu / sg)),
                            med(n, "errors") }
             }' secs="$SECS" "$RUN/raw"
        echo
        echo "# raw"
        cat "$RUN/raw"
    } > "$OUT"
    cp "$OUT" "$B/cluster-latest.txt"
    sed -n '/^# raw$/q;p' "$OUT"
}

main
