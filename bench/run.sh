#!/usr/bin/env bash
# `make bench` / `make bench-peers`: plain nginx proxy_pass against the
# relay on loopback, see bench/README.md for the method.
#
#   bench/run.sh          proxy and relay
#   bench/run.sh peers    proxy, relay and the Portkey AI gateway (optional)
#   bench/run.sh callgrind  instructions per request under callgrind:
#                         proxy and relay workers and Redis, with the top
#                         functions (build/bench/callgrind-<time>.txt)
#   bench/run.sh up       start and seed everything, print the ports, keep
#                         it running (BENCH_UP_SECONDS, 3600) for profiling
#                         by hand; Ctrl-C (or SIGTERM) stops it all
#
# Environment (the Makefile sets TOP, BUILD, NGINX, MODULE):
#   BENCH_SECONDS=5        length of one measured run
#   BENCH_REPS=3           repetitions (front ends interleaved, medians)
#   BENCH_CONNS=64         connections, throughput scenarios
#   BENCH_LARGE_CONNS=8    connections, 1 MB body scenario
#   BENCH_RATE=1000        offered rate of the fixed-rate scenario (req/s)
#   BENCH_RATE_CONNS=20    connections carrying it
#   BENCH_RATE_SECONDS=10  length of a fixed-rate run
#   BENCH_TTFB_N=300       streams per front end and repetition (TTFB)
#   BENCH_IDLE=2000        idle streams held open
#   BENCH_WARM_SECONDS=1   warm-up per front end and scenario
#   BENCH_SCENARIOS="nonstream stream xstream fixed_rate ttfb large_body idle_streams"
#   BENCH_PORT=18080       ports BENCH_PORT+1.. (proxy, relay, mock, redis,
#                          portkey)
#   BENCH_FRONT_CPU=1      core of the front ends (nginx workers, node)
#   BENCH_LOAD_CPU=0       core of wrk, the mock, Redis and the clients
#   BENCH_PORTKEY_VERSION=1.15.2  bench-peers: the Portkey gateway version
#   BENCH_PROFILE=1        also `perf record` the relay worker during a
#                          relay non-stream and stream run (top symbols)
set -euo pipefail

TOP=${TOP:?} BUILD=${BUILD:?} NGINX_BIN=${NGINX:-/usr/sbin/nginx}
MODULE=${MODULE:?}
# nginx reads $NGINX as the list of sockets inherited from an old binary
# (on-the-fly upgrade) and then neither daemonizes nor listens right
unset NGINX
MODE=${1:-bench}

SECS=${BENCH_SECONDS:-5}
REPS=${BENCH_REPS:-3}
CONNS=${BENCH_CONNS:-64}
LARGE_CONNS=${BENCH_LARGE_CONNS:-8}
RATE=${BENCH_RATE:-1000}
RATE_CONNS=${BENCH_RATE_CONNS:-20}
RATE_SECS=${BENCH_RATE_SECONDS:-10}
TTFB_N=${BENCH_TTFB_N:-300}
IDLE_N=${BENCH_IDLE:-2000}
WARM=${BENCH_WARM_SECONDS:-1}
SCENARIOS=${BENCH_SCENARIOS:-nonstream stream xstream fixed_rate ttfb large_body idle_streams}
BASE=${BENCH_PORT:-18080}
PORTKEY_VERSION=${BENCH_PORTKEY_VERSION:-1.15.2}
PROFILE=${BENCH_PROFILE:-0}
ECHO_MODULE=${ECHO_MODULE:-/usr/lib/nginx/modules/ngx_http_echo_module.so}

NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then
    FRONT_CPU=${BENCH_FRONT_CPU:-1}
    LOAD_CPU=${BENCH_LOAD_CPU:-0}
else
    FRONT_CPU=${BENCH_FRONT_CPU:-0}
    LOAD_CPU=${BENCH_LOAD_CPU:-0}
fi

PROXY_PORT=$((BASE + 1))
RELAY_PORT=$((BASE + 2))
MOCK_PORT=$((BASE + 3))
REDIS_PORT=$((BASE + 4))
PORTKEY_PORT=$((BASE + 5))

KEY=sk-bench0000000000000000000000000000000000000000001
B=$BUILD/bench
RUN=$B/run
DATA=$B/data
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW=$B/raw-$STAMP.txt
RESULTS=$B/results-$STAMP.txt
WRK_LUA=$TOP/bench/wrk/post.lua
TOOLS=$TOP/bench/tools
CLK_TCK=$(getconf CLK_TCK)
BENCH_START=$(date +%s)

FRONTS="proxy relay"
if [ "$MODE" = peers ]; then
    FRONTS="proxy relay portkey"
fi

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------ processes

REDIS_PID=
PORTKEY_PID=
CHILD_PIDS=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # an interrupted run keeps its raw counters only if it measured anything
    if [ -f "$RAW" ] && ! grep -q '^RUN ' "$RAW"; then rm -f "$RAW"; fi
    for p in $CHILD_PIDS; do
        kill "$p" 2>/dev/null || true
    done
    for n in proxy relay mock; do
        stop_nginx "$n"
    done
    if [ -n "$PORTKEY_PID" ]; then
        kill "$PORTKEY_PID" 2>/dev/null || true
        wait "$PORTKEY_PID" 2>/dev/null || true
    fi
    if [ -n "$REDIS_PID" ]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mask() { printf '1%*s' "$1" '' | tr ' ' 0; }

alive() {   # a process that exists and is not a zombie
    [ -n "$1" ] && [ -e "/proc/$1" ] \
        && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

nginx_master() { cat "$RUN/$1/logs/nginx.pid" 2>/dev/null || true; }

nginx_worker() {
    local m
    m=$(nginx_master "$1")
    [ -n "$m" ] && pgrep -P "$m" | head -1
}

start_nginx() {   # name cpu
    local name=$1 cpu=$2
    timeout 20 taskset -c "$cpu" "$NGINX_BIN" -p "$RUN/$name/" -c conf/nginx.conf \
        -e logs/error.log \
        || die "$name nginx did not start: $(tail -3 "$RUN/$name/logs/error.log")"
    for _ in $(seq 1 50); do
        [ -n "$(nginx_worker "$name")" ] && return 0
        sleep 0.1
    done
    die "$name nginx has no worker"
}

stop_nginx() {
    local name=$1 m w
    m=$(nginx_master "$name")
    [ -n "$m" ] || return 0
    w=$(pgrep -P "$m" || true)
    kill -QUIT "$m" 2>/dev/null || true
    for _ in $(seq 1 50); do
        alive "$m" || break
        sleep 0.1
    done
    if alive "$m"; then kill -KILL "$m" 2>/dev/null || true; fi
    for p in $w; do
        if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
    done
    rm -f "$RUN/$name/logs/nginx.pid"
}

# ------------------------------------------------------------- counters

ticks() {   # user+sys clock ticks of a process (all its threads)
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    s=${s##*) }
    set -- $s
    echo $(( ${12} + ${13} ))
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
syscr() { awk '/^syscr:/ { print $2 }' "/proc/$1/io"; }
core_busy() {   # busy and total jiffies of one core
    awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8;
                               print b, b + $5 + $6 }' /proc/stat
}
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
redis_stat() {
    rcli INFO "$1" | tr -d '\r' | awk -F: -v k="$2" '$1 == k { print $2 }'
}
# records, not stream entries: a settlement adds its requests' records as
# one entry with an "r" field each
last_log_id() {
    local id
    id=$(rcli EVAL "local r = redis.call('XREVRANGE', KEYS[1], '+', '-',
                                         'COUNT', 1)
                    return r[1] and r[1][1] or '0-0'" 1 'ar:{u1}:log' \
         | tr -d '\r')
    case $id in
        [0-9]*-[0-9]*) echo "$id" ;;
        *) log "the last record id: '$id'"; echo 0-0 ;;
    esac
}
records_since() {   # stream id: records in entries after it
    local n
    n=$(rcli EVAL "local n, id = 0, ARGV[1]
        while true do
          local r = redis.call('XRANGE', KEYS[1], '(' .. id, '+', 'COUNT', 50)
          if #r == 0 then return n end
          for _, e in ipairs(r) do n = n + #e[2] / 2 end
          id = r[#r][1]
        end" 1 'ar:{u1}:log' "$1" | tr -d '\r')
    case $n in
        ''|*[!0-9]*) log "counting records after $1: '$n'"; echo 0 ;;
        *) echo "$n" ;;
    esac
}
evalsha_calls() {
    rcli INFO commandstats | tr -d '\r' \
        | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' | grep . || echo 0
}

front_port() {
    case $1 in
        proxy) echo "$PROXY_PORT" ;;
        relay) echo "$RELAY_PORT" ;;
        portkey) echo "$PORTKEY_PORT" ;;
    esac
}

front_pid() {   # the process doing the front end's work
    case $1 in
        portkey) echo "$PORTKEY_PID" ;;
        *) nginx_worker "$1" ;;
    esac
}

# the request path and extra headers of a front end and mock answer
front_path() {   # front mode
    echo /v1/chat/completions
}
front_headers() {   # front mode -> BENCH_HEADERS for wrk, --header for perl
    if [ "$1" = portkey ]; then
        local host="http://127.0.0.1:$MOCK_PORT"
        [ -n "$2" ] && host="$host/$2"
        echo "x-portkey-provider: openai|x-portkey-custom-host: $host/v1"
    fi
}

# ---------------------------------------------------------------- setup

setup() {
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    NOFILE=$(ulimit -n)
    WCONNS=$((NOFILE - 64))
    [ "$NOFILE" -ge $((2 * IDLE_N + 1000)) ] \
        || die "open files limit $NOFILE too low for $IDLE_N idle streams"
    [ -f "$MODULE" ] || die "no module at $MODULE (make build)"
    for p in $PROXY_PORT $RELAY_PORT $MOCK_PORT $REDIS_PORT; do
        if ss -ltnH "sport = :$p" 2>/dev/null | grep -q .; then
            die "port $p is in use (set BENCH_PORT)"
        fi
    done

    rm -rf "$RUN" "$DATA"
    mkdir -p "$RUN/redis" "$DATA"
    for n in proxy relay mock; do
        mkdir -p "$RUN/$n/conf" "$RUN/$n/logs" "$RUN/$n/tmp"
        # the workers (nobody) write the journal: a folder of their own
        mkdir -p "$RUN/$n/journal" && chmod 1777 "$RUN/$n/journal"
    done

    perl "$TOOLS/mkdata.pl" "$TOP/bench/mock" "$DATA"

    perl "$TOOLS/render.pl" "$TOP/bench/conf/mock.conf.in" \
        "$RUN/mock/conf/nginx.conf" \
        LOAD_MASK="$(mask "$LOAD_CPU")" NOFILE="$NOFILE" WCONNS="$WCONNS" MOCK_PORT="$MOCK_PORT" \
        ECHO_MODULE="$ECHO_MODULE" IDLE_HOLD=30 \
        COMPLETION="@$DATA/completion.txt" SSE_ALL="@$DATA/sse_all.conf" \
        SSE_FIRST="@$DATA/sse_first.conf" SSE_REST="@$DATA/sse_rest.conf" \
        ASSE_ALL="@$DATA/asse_all.conf"

    perl "$TOOLS/render.pl" "$TOP/bench/conf/front.conf.in" \
        "$RUN/proxy/conf/nginx.conf" \
        FRONT_MASK="$(mask "$FRONT_CPU")" NOFILE="$NOFILE" WCONNS="$WCONNS" MOCK_PORT="$MOCK_PORT" \
        PORT="$PROXY_PORT" RELAY_LOAD= RELAY_HTTP= \
        RELAY_LOCATION="            proxy_pass             http://mock;"

    perl "$TOOLS/render.pl" "$TOP/bench/conf/front.conf.in" \
        "$RUN/relay/conf/nginx.conf" \
        FRONT_MASK="$(mask "$FRONT_CPU")" NOFILE="$NOFILE" WCONNS="$WCONNS" MOCK_PORT="$MOCK_PORT" \
        PORT="$RELAY_PORT" RELAY_LOAD="load_module  $MODULE;" \
        RELAY_HTTP="    ai_relay_redis                  127.0.0.1:$REDIS_PORT;
    ai_relay_redis_connect_timeout  1s;
    ai_relay_redis_timeout          2s;
    ai_relay_records_max            100000000;
    ai_relay_journal                $RUN/relay/journal/ai_relay.journal;" \
        RELAY_LOCATION="            ai_relay               openai;
            proxy_pass             \$ai_relay_upstream_url;"

    # started by root, nginx would run its workers as "nobody", who may not
    # reach a checkout under /root: the same workers' user for all of them
    if [ "$(id -u)" = 0 ]; then
        for f in "$RUN"/*/conf/nginx.conf; do echo "user root;" >> "$f"; done
    fi

    log "redis on core $LOAD_CPU, port $REDIS_PORT"
    taskset -c "$LOAD_CPU" redis-server --port "$REDIS_PORT" \
        --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN/redis" \
        --logfile "$RUN/redis/redis.log" --daemonize no &
    REDIS_PID=$!
    for _ in $(seq 1 50); do
        rcli ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    rcli ping >/dev/null || die "redis did not start"
    perl "$TOOLS/seed.pl" "$REDIS_PORT" "$KEY" >/dev/null

    log "mock on core $LOAD_CPU, proxy and relay on core $FRONT_CPU"
    start_nginx mock "$LOAD_CPU"
    start_nginx proxy "$FRONT_CPU"
    start_nginx relay "$FRONT_CPU"

    if [ "$MODE" = peers ]; then
        start_portkey || FRONTS="proxy relay"
    fi

    # every front end answers both kinds of request correctly
    local f out
    for f in $FRONTS; do
        out=$(check_front "$f") || die "$f: $out"
        log "$f ok: $out"
    done

    BALANCE0=$(rcli HGET 'ar:{u1}:user' balance)
}

# one request of each kind through a front end; prints what it saw
check_front() {
    local f=$1 port hdr h args=() code body
    port=$(front_port "$f")
    hdr=$(front_headers "$f" "")
    IFS='|' read -r -a h <<< "$hdr"
    for x in "${h[@]}"; do [ -n "$x" ] && args+=(-H "$x"); done
    body=$(curl -sS -m 10 -w '\n%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" \
        -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        "${args[@]}" --data-binary "@$DATA/chat.json") || { echo "curl failed"; return 1; }
    code=${body##*$'\n'}
    [ "$code" = 200 ] || { echo "non-stream: HTTP $code: ${body:0:300}"; return 1; }
    grep -q '"usage"' <<< "$body" || { echo "non-stream: no usage"; return 1; }

    args=()
    hdr=$(front_headers "$f" sse)
    IFS='|' read -r -a h <<< "$hdr"
    for x in "${h[@]}"; do [ -n "$x" ] && args+=(-H "$x"); done
    body=$(curl -sS -m 10 -w '\n%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" \
        -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        -H 'X-Bench-Mode: sse' "${args[@]}" \
        --data-binary "@$DATA/stream.json") || { echo "curl failed"; return 1; }
    code=${body##*$'\n'}
    [ "$code" = 200 ] || { echo "stream: HTTP $code: ${body:0:300}"; return 1; }
    local n
    n=$(grep -c '^data:' <<< "$body" || true)
    grep -q 'data: \[DONE\]' <<< "$body" || { echo "stream: no [DONE]"; return 1; }
    echo "non-stream 200 with usage, stream 200 with $n events"
}

# ------------------------------------------------------------ portkey

start_portkey() {
    local dir=$B/peers js
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        log "bench-peers: node/npm not installed, Portkey skipped"
        return 1
    fi
    js=$dir/node_modules/@portkey-ai/gateway/build/start-server.js
    # @hono/node-server newer than 1.14.2 makes Portkey's streamed answers
    # fail ("TypeError: immutable", Portkey-AI/gateway#1389): pinned
    local want="\"@portkey-ai/gateway\": \"$PORTKEY_VERSION\""
    if [ ! -f "$js" ] || ! grep -qF "$want" "$dir/package.json" 2>/dev/null; then
        log "bench-peers: npm install @portkey-ai/gateway@$PORTKEY_VERSION (optional)"
        rm -rf "$dir"
        mkdir -p "$dir"
        cat > "$dir/package.json" <<EOT
{
  "name": "ai-relay-bench-peers",
  "private": true,
  "dependencies": { $want },
  "overrides": { "@hono/node-server": "1.14.2" }
}
EOT
        if ! (cd "$dir" && timeout 300 npm install --no-audit --no-fund \
                  --ignore-scripts --loglevel=error >"$dir/npm.log" 2>&1); then
            log "bench-peers: npm install failed (offline?), Portkey skipped"
            return 1
        fi
    fi
    log "portkey gateway on core $FRONT_CPU, port $PORTKEY_PORT"
    (cd "$dir" && NODE_ENV=production exec taskset -c "$FRONT_CPU" node \
        --require "$TOOLS/portkey-preload.cjs" "$js" \
        --port="$PORTKEY_PORT" --headless >"$dir/portkey.log" 2>&1) &
    PORTKEY_PID=$!
    for _ in $(seq 1 100); do
        curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORTKEY_PORT/" && return 0
        sleep 0.1
    done
    log "bench-peers: Portkey did not start (see $dir/portkey.log), skipped"
    kill "$PORTKEY_PID" 2>/dev/null || true
    PORTKEY_PID=
    return 1
}

# ------------------------------------------------------------ wrk runs

# run_wrk scenario front rep conns seconds body mode delay_ms [warm]
run_wrk() {
    local sc=$1 f=$2 rep=$3 conns=$4 secs=$5 body=$6 mode=$7 delay=$8
    local warm=${9:-}
    local port pid mpid out hdr url
    port=$(front_port "$f")
    pid=$(front_pid "$f")
    mpid=$(nginx_worker mock)
    hdr=$(front_headers "$f" "$mode")
    url="http://127.0.0.1:$port$(front_path "$f" "$mode")"

    local t0 r0 m0 c0 x0 s0 fb0 lb0 e0
    t0=$(ticks "$pid"); r0=$(ticks "$REDIS_PID"); m0=$(ticks "$mpid")
    c0=$(redis_stat stats total_commands_processed); s0=$(syscr "$REDIS_PID")
    e0=$(evalsha_calls)
    x0=$(last_log_id)
    fb0=$(core_busy "$FRONT_CPU"); lb0=$(core_busy "$LOAD_CPU")

    out=$(BENCH_BODY=$DATA/$body BENCH_KEY=$KEY BENCH_MODE=$mode \
          BENCH_DELAY_MS=$delay BENCH_HEADERS=$hdr \
          timeout $((secs + 60)) taskset -c "$LOAD_CPU" \
          wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s -s "$WRK_LUA" "$url" \
          2>&1) || { log "wrk failed: $out"; return 1; }
    sleep 0.3   # settlements of the last responses

    [ -n "$warm" ] && return 0

    local t1 r1 m1 c1 x1 s1 fb1 lb1 w e1
    t1=$(ticks "$pid"); r1=$(ticks "$REDIS_PID"); m1=$(ticks "$mpid")
    c1=$(redis_stat stats total_commands_processed); s1=$(syscr "$REDIS_PID")
    e1=$(evalsha_calls)
    x1=$(records_since "$x0")
    fb1=$(core_busy "$FRONT_CPU"); lb1=$(core_busy "$LOAD_CPU")
    w=$(grep '^WRK ' <<< "$out") || { log "no WRK line: $out"; return 1; }
    set -- $fb0 $fb1 $lb0 $lb1
    echo "RUN scenario=$sc front=$f rep=$rep conns=$conns secs=$secs" \
         "delay_ms=$delay clk_tck=$CLK_TCK" \
         "ticks_front=$((t1 - t0)) ticks_redis=$((r1 - r0))" \
         "ticks_mock=$((m1 - m0)) redis_cmds=$((c1 - c0))" \
         "redis_reads=$((s1 - s0)) redis_scripts=$((e1 - e0))" \
         "records=$x1" \
         "core_front_busy=$(($3 - $1)) core_front_total=$(($4 - $2))" \
         "core_load_busy=$(($7 - $5)) core_load_total=$(($8 - $6))" \
         "${w#WRK }" >> "$RAW"
    log "$sc $f rep $rep: $(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(requests|err_status|lat_p50_us|lat_p99_us)=/) printf "%s ", $i }' <<< "$w")"
}

# the wrk-driven scenarios: name conns seconds body mode delay
scenario_args() {
    case $1 in
        nonstream)  echo "$CONNS $SECS chat.json - 0" ;;
        stream)     echo "$CONNS $SECS stream.json sse 0" ;;
        # the relay translates an Anthropic stream of the same text; plain
        # proxy_pass passes the OpenAI one through (X-Bench-Mode: sse)
        xstream)    echo "$CONNS $SECS xstream.json sse 0" ;;
        fixed_rate) echo "$RATE_CONNS $RATE_SECS chat.json - $(( (RATE_CONNS * 1000 + RATE / 2) / RATE ))" ;;
        large_body) echo "$LARGE_CONNS $SECS large.json - 0" ;;
        # one connection, one request at a time: every Redis round trip
        # is one read() of the Redis server (none are batched together)
        redis_probe) echo "1 2 chat.json - 0" ;;
    esac
}

run_scenario() {   # scenario rep fronts...
    local sc=$1 rep=$2 conns secs body mode delay f
    shift 2
    read -r conns secs body mode delay <<< "$(scenario_args "$sc")"
    [ "$mode" = - ] && mode=
    for f in "$@"; do
        run_wrk "$sc" "$f" "$rep" "$conns" "$secs" "$body" "$mode" "$delay" \
            || die "$sc $f rep $rep failed"
    done
}

warm_scenario() {
    local sc=$1 conns secs body mode delay f
    read -r conns secs body mode delay <<< "$(scenario_args "$sc")"
    [ "$mode" = - ] && mode=
    for f in $FRONTS; do
        run_wrk "$sc" "$f" 0 "$conns" "$WARM" "$body" "$mode" "$delay" warm \
            || die "$sc $f warm-up failed"
    done
}

# ---------------------------------------------------------------- ttfb

run_ttfb() {   # rep fronts...
    local rep=$1 f args=() out
    shift
    for f in "$@"; do args+=("$f=$(front_port "$f")"); done
    local hdr=""
    for f in "$@"; do
        [ "$f" = portkey ] && hdr=$(front_headers portkey ttfb)
    done
    out=$(timeout 300 taskset -c "$LOAD_CPU" perl "$TOOLS/ttfb.pl" \
          --n "$TTFB_N" --body "$DATA/stream.json" --key "$KEY" --mode ttfb \
          --headers "$hdr" "${args[@]}") || die "ttfb rep $rep failed: $out"
    while read -r tag f rest; do
        [ "$tag" = TTFB ] || continue
        echo "RUN scenario=ttfb front=$f rep=$rep $rest" >> "$RAW"
        log "ttfb $f rep $rep: $rest"
    done <<< "$out"
}

# ---------------------------------------------------------- idle streams

run_idle() {   # front rep
    local f=$1 rep=$2 port pid rss0 rss1 mem0 mem1 out ipid ready=
    port=$(front_port "$f")
    pid=$(front_pid "$f")
    rss0=$(rss_kb "$pid")
    mem0=$(redis_stat memory used_memory)
    taskset -c "$LOAD_CPU" perl "$TOOLS/idle.pl" --n "$IDLE_N" --port "$port" \
        --body "$DATA/stream.json" --key "$KEY" --max 120 \
        --headers "$(front_headers "$f" idle)" > "$RUN/idle.out" 2>&1 &
    ipid=$!
    CHILD_PIDS="$CHILD_PIDS $ipid"
    for _ in $(seq 1 900); do
        ready=$(grep '^READY' "$RUN/idle.out" || true)
        [ -n "$ready" ] && break
        kill -0 "$ipid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$ready" ] || die "idle streams on $f: $(cat "$RUN/idle.out")"
    sleep 0.5
    rss1=$(rss_kb "$pid")
    mem1=$(redis_stat memory used_memory)
    kill -TERM "$ipid" 2>/dev/null || true
    wait "$ipid" 2>/dev/null || true
    echo "RUN scenario=idle_streams front=$f rep=$rep streams=$IDLE_N" \
         "rss_before_kb=$rss0 rss_after_kb=$rss1" \
         "redis_mem_delta=$((mem1 - mem0)) ${ready#READY }" >> "$RAW"
    log "idle_streams $f rep $rep: rss $rss0 -> $rss1 kB, ${ready#READY }"
    sleep 1   # the front end closes its side of them
}

restart_fronts() {
    local f
    for f in $FRONTS; do
        case $f in
            proxy|relay) stop_nginx "$f"; start_nginx "$f" "$FRONT_CPU" ;;
        esac
    done
    # warm: a handful of requests of each kind (caches, Redis link)
    for f in $FRONTS; do
        check_front "$f" >/dev/null || die "$f after restart"
    done
    local args=()
    for f in $FRONTS; do args+=("$f=$(front_port "$f")"); done
    local hdr=""
    [[ " $FRONTS " == *" portkey "* ]] && hdr=$(front_headers portkey sse)
    taskset -c "$LOAD_CPU" perl "$TOOLS/ttfb.pl" --n 20 --warm 0 \
        --body "$DATA/stream.json" --key "$KEY" --mode sse \
        --headers "$hdr" "${args[@]}" >/dev/null || die "warm after restart"
}

# ------------------------------------------------------------- profile

profile() {
    command -v perf >/dev/null || { log "no perf: apt-get install linux-perf"; return 0; }
    local pid sc conns secs body mode delay out=$B/profile-$STAMP.txt
    pid=$(front_pid relay)
    : > "$out"
    for sc in nonstream stream large_body; do
        read -r conns secs body mode delay <<< "$(scenario_args "$sc")"
        [ "$mode" = - ] && mode=
        perf record -F 999 --call-graph dwarf,16384 -p "$pid" -o "$B/perf-relay-$sc.data" \
            -- sleep "$SECS" >/dev/null 2>&1 &
        local p1=$!
        perf record -F 1999 -g -p "$REDIS_PID" -o "$B/perf-redis-$sc.data" \
            -- sleep "$SECS" >/dev/null 2>&1 &
        local p2=$!
        CHILD_PIDS="$CHILD_PIDS $p1 $p2"
        sleep 0.2
        run_wrk "$sc" relay 0 "$conns" "$(( SECS > 2 ? SECS - 1 : 1 ))" "$body" "$mode" 0 \
            warm || true
        wait "$p1" "$p2" 2>/dev/null || true
        local w
        for w in relay redis; do
            (
                set +e +o pipefail
                echo "== perf: $w ($([ $w = relay ] && echo "nginx worker" || echo "redis-server")), $sc: by shared object"
                perf report -i "$B/perf-$w-$sc.data" --no-children --sort dso \
                    --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -10
                echo "== perf: $w, $sc: self time by symbol (top 40)"
                perf report -i "$B/perf-$w-$sc.data" --no-children \
                    --sort dso,symbol --stdio -g none 2>/dev/null \
                    | grep -E '^ +[0-9]' | head -40
                if [ $w = relay ]; then
                    echo "== perf: relay, $sc: module functions with callees (children, top 25)"
                    perf report -i "$B/perf-$w-$sc.data" --children \
                        --sort symbol --stdio -g none \
                        --dsos ngx_ai_relay_module.so 2>/dev/null \
                        | grep -E '^ +[0-9]' | head -25
                fi
                echo
            ) >> "$out"
        done
    done
    [ "${BENCH_KEEP_PERF:-0}" = 1 ] || rm -f "$B"/perf-*.data "$B"/perf-*.data.old
    log "profile: $out"
}

# ---------------------------------------------------------------- main

# ----------------------------------------------------------- callgrind

# Deterministic figures, immune to the noise of a shared VM: user-space
# instructions per request of the proxy worker, the relay worker and the
# Redis server (each under valgrind --tool=callgrind, counters zeroed
# after a warm-up), and where they go.
callgrind() {
    command -v valgrind >/dev/null || die "valgrind is not installed"
    mkdir -p "$B"
    RAW=/dev/null
    setup
    local cg=$B/cg-$STAMP out=$B/callgrind-$STAMP.txt
    local CG_REDIS_PORT=$((BASE + 6)) CG_RELAY_PORT=$((BASE + 7))
    local CG_PROXY_PORT=$((BASE + 8)) secs=${BENCH_CG_SECONDS:-5}
    mkdir -p "$cg"

    taskset -c "$LOAD_CPU" valgrind --tool=callgrind \
        --callgrind-out-file="$cg/redis.out" redis-server \
        --port "$CG_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$cg" > "$cg/redis.log" 2>&1 &
    local rpid=$!
    CHILD_PIDS="$CHILD_PIDS $rpid"
    for _ in $(seq 1 100); do
        redis-cli -p "$CG_REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.2
    done
    perl "$TOOLS/seed.pl" "$CG_REDIS_PORT" "$KEY" >/dev/null

    local n port pids=()
    for n in proxy relay; do
        port=$([ $n = relay ] && echo "$CG_RELAY_PORT" || echo "$CG_PROXY_PORT")
        rm -rf "$RUN/cg-$n"
        mkdir -p "$RUN/cg-$n/conf" "$RUN/cg-$n/logs" "$RUN/cg-$n/tmp"
        sed -e "s/listen  127.0.0.1:[0-9]*/listen  127.0.0.1:$port/" \
            -e "s/127.0.0.1:$REDIS_PORT;/127.0.0.1:$CG_REDIS_PORT;/" \
            "$RUN/$n/conf/nginx.conf" > "$RUN/cg-$n/conf/nginx.conf"
        taskset -c "$FRONT_CPU" valgrind --tool=callgrind \
            --callgrind-out-file="$cg/$n.out" "$NGINX_BIN" -p "$RUN/cg-$n/" \
            -c conf/nginx.conf -e logs/error.log \
            -g 'daemon off; master_process off;' > "$cg/$n.log" 2>&1 &
        pids+=($!)
        CHILD_PIDS="$CHILD_PIDS $!"
    done
    sleep 3
    for n in proxy relay; do
        port=$([ $n = relay ] && echo "$CG_RELAY_PORT" || echo "$CG_PROXY_PORT")
        for _ in $(seq 1 100); do
            curl -s -o /dev/null -m 2 "http://127.0.0.1:$port/" && break
            sleep 0.2
        done
    done

    : > "$out"
    local i sc body mode w req dumps="" j=0 rj=0
    for i in 0 1; do
        n=$([ $i = 1 ] && echo relay || echo proxy)
        port=$([ $n = relay ] && echo "$CG_RELAY_PORT" || echo "$CG_PROXY_PORT")
        for sc in nonstream stream; do
            body=chat.json; mode=
            [ $sc = stream ] && { body=stream.json; mode=sse; }
            BENCH_BODY=$DATA/$body BENCH_KEY=$KEY BENCH_MODE=$mode \
                taskset -c "$LOAD_CPU" wrk -t1 -c8 -d2s -s "$WRK_LUA" \
                "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
            sleep 0.5
            callgrind_control -z "${pids[$i]}" >/dev/null 2>&1
            [ $n = relay ] && callgrind_control -z "$rpid" >/dev/null 2>&1
            w=$(BENCH_BODY=$DATA/$body BENCH_KEY=$KEY BENCH_MODE=$mode \
                taskset -c "$LOAD_CPU" wrk -t1 -c8 -d"${secs}s" \
                -s "$WRK_LUA" "http://127.0.0.1:$port/v1/chat/completions" \
                | grep '^WRK ')
            req=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<< "$w")
            sleep 1
            callgrind_control -d "$sc" "${pids[$i]}" >/dev/null 2>&1
            j=$(ls "$cg/$n.out."* 2>/dev/null | wc -l)
            dumps="$dumps $n:$sc:$cg/$n.out.$j:$req"
            if [ $n = relay ]; then
                callgrind_control -d "$sc" "$rpid" >/dev/null 2>&1
                rj=$((rj + 1))
                dumps="$dumps redis:$sc:$cg/redis.out.$rj:$req"
            fi
            log "callgrind $n $sc: $req requests"
        done
    done

    local d who f tot
    for d in $dumps; do
        IFS=: read -r who sc f req <<< "$d"
        for _ in $(seq 1 50); do [ -s "$f" ] && break; sleep 0.2; done
        tot=$(sed -n 's/^summary: *//p' "$f")
        (
            set +e +o pipefail
            echo "== $who, $sc: $req requests, $tot instructions," \
                 "$(( tot / (req > 0 ? req : 1) )) per request"
            echo "BENCH callgrind.$who ${sc}_instr_per_req=$(( tot / (req > 0 ? req : 1) ))"
            echo "-- self (top 30)"
            callgrind_annotate --threshold=100 --auto=no "$f" 2>/dev/null \
                | grep -E '^ *[0-9,]+ \(' | grep -v '(100.0%)' | sed -n '1,30p'
            echo "-- inclusive (top 40)"
            callgrind_annotate --threshold=100 --auto=no --inclusive=yes "$f" \
                2>/dev/null | grep -E '^ *[0-9,]+ \(' \
                | grep -vE 'libc_start|below main|ld-linux|:main |aeMain|0x0000' \
                | sed -n '1,40p'
            echo
        ) >> "$out"
    done
    grep '^BENCH' "$out"
    log "callgrind: $out (raw: $cg)"
}

up() {
    mkdir -p "$B"
    RAW=/dev/null
    setup
    cat <<EOT
proxy  http://127.0.0.1:$PROXY_PORT/v1/chat/completions  worker pid $(front_pid proxy)
relay  http://127.0.0.1:$RELAY_PORT/v1/chat/completions  worker pid $(front_pid relay)
mock   127.0.0.1:$MOCK_PORT (X-Bench-Mode: sse|ttfb|idle)  redis 127.0.0.1:$REDIS_PORT pid $REDIS_PID
key    $KEY
bodies $DATA/{chat,stream,large}.json
wrk:   BENCH_BODY=$DATA/chat.json BENCH_KEY=$KEY taskset -c $LOAD_CPU wrk -t1 -c64 -d5s -s $WRK_LUA http://127.0.0.1:$RELAY_PORT/v1/chat/completions
EOT
    sleep "${BENCH_UP_SECONDS:-3600}" &
    CHILD_PIDS="$CHILD_PIDS $!"
    wait $! || true
}

main() {
    mkdir -p "$B"
    setup
    {
        echo "# ngx_ai_relay bench $STAMP (mode $MODE)"
        echo "MACHINE nproc=$NCPU cpu=\"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)\" kernel=$(uname -r) mem_mb=$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)"
        echo "VERSIONS nginx=\"$("$NGINX_BIN" -v 2>&1 | sed 's/.*: //')\" redis=$(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/') wrk=\"$(wrk -v 2>&1 | head -1 | awk '{ print $2 }')\" git=$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo none)"
        echo "SETTINGS seconds=$SECS reps=$REPS conns=$CONNS large_conns=$LARGE_CONNS rate=$RATE rate_conns=$RATE_CONNS rate_seconds=$RATE_SECS ttfb_n=$TTFB_N idle=$IDLE_N front_cpu=$FRONT_CPU load_cpu=$LOAD_CPU fronts=\"$FRONTS\""
    } > "$RAW"

    local sc rep order
    log "redis probe: sequential requests to the relay"
    run_scenario redis_probe 1 relay

    for sc in $SCENARIOS; do
        case $sc in
            nonstream|stream|xstream|fixed_rate|large_body)
                log "warm-up: $sc"
                warm_scenario "$sc" ;;
        esac
    done

    for rep in $(seq 1 "$REPS"); do
        # interleaved: the order of the front ends alternates
        if [ $((rep % 2)) = 1 ]; then order=$FRONTS
        else order=$(tr ' ' '\n' <<< "$FRONTS" | tac | tr '\n' ' '); fi
        for sc in $SCENARIOS; do
            case $sc in
                nonstream|stream|xstream|fixed_rate|large_body)
                    run_scenario "$sc" "$rep" $order ;;
                ttfb)
                    run_ttfb "$rep" $order ;;
            esac
        done
    done

    if [[ " $SCENARIOS " == *" idle_streams "* ]]; then
        for rep in $(seq 1 "$REPS"); do
            if [ $((rep % 2)) = 1 ]; then order=$FRONTS
            else order=$(tr ' ' '\n' <<< "$FRONTS" | tac | tr '\n' ' '); fi
            restart_fronts
            for f in $order; do
                run_idle "$f" "$rep"
            done
        done
    fi

    [ "$PROFILE" = 1 ] && profile

    sleep 1
    local bal1 spent
    bal1=$(rcli HGET 'ar:{u1}:user' balance)
    echo "BILLING balance_before=$BALANCE0 balance_after=$bal1" \
         "records_total=$(records_since 0-0) user_requests=$(rcli HGET 'ar:{u1}:user' requests)" \
         "elapsed_s=$(( $(date +%s) - BENCH_START ))" >> "$RAW"

    local rc=0
    perl "$TOOLS/report.pl" "$RAW" > "$RESULTS.tmp" || rc=$?
    { cat "$RESULTS.tmp"; echo; echo "# raw"; cat "$RAW"; } > "$RESULTS"
    rm -f "$RESULTS.tmp" "$RAW"
    cp "$RESULTS" "$B/latest.txt"
    sed -n '/^# raw$/q;p' "$RESULTS"
    log "results: $RESULTS (and $B/latest.txt)"
    return "$rc"
}

case $MODE in
    up) up ;;
    callgrind) callgrind ;;
    *) main ;;
esac
