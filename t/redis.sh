#!/usr/bin/env bash
# Start or stop the Redis server the test suite uses (own port and folder).
#   t/redis.sh start|stop|restart [port]
set -eu
cmd=${1:?start|stop|restart}
port=${2:-6399}
dir=$(cd "$(dirname "$0")/.." && pwd)/build/redis-$port
mkdir -p "$dir"

stop() {
    if redis-cli -p "$port" ping >/dev/null 2>&1; then
        redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    fi
    for _ in $(seq 1 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 || return 0
        sleep 0.1
    done
}

start() {
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
