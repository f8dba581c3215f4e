#!/usr/bin/env bash
# Start or stop the Redis server the test suite uses (own port and folder).
#   t/redis.sh start|stop|restart [port]
#
# Only a Redis this script started (its pid file in build/redis-<port>)
# is ever stopped; a port some other program holds is an error.
set -eu
cmd=${1:?start|stop|restart}
port=${2:-6399}
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$top/build/redis-$port
mkdir -p "$dir"

# the pid of the Redis we started on this port, if it still runs
ours() {
    local pid
    pid=$(cat "$dir/redis.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        && grep -q redis "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

# the pid file goes only while it still names the Redis we stopped: a
# Redis started meanwhile (a test's background stop racing the next
# block's start) keeps its own
forget() {
    [ "$(cat "$dir/redis.pid" 2>/dev/null)" = "$1" ] && rm -f "$dir/redis.pid"
    return 0
}

stop() {
    local pid
    pid=$(ours) || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { forget "$pid"; return 0; }
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    forget "$pid"
}

start() {
    "$top/tools/ports-free.sh" "$port" || exit 1
    redis-server --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$dir" --daemonize yes \
        --enable-debug-command local \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
    for _ in $(seq 1 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "redis on port $port did not start:" >&2
    tail -5 "$dir/redis.log" >&2
    exit 1
}

case $cmd in
    start)   stop; start ;;
    stop)    stop ;;
    restart) stop; start ;;
esac
