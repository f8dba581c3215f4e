# Sourced by t/cluster.sh and t/sentinel.sh: the Redis processes they
# started, one folder per port under $dir ($dir/<port>/redis.pid), found
# again and stopped.  Only a redis-server on exactly that port is ever
# signalled.

# the pid of the node we started on this port, if it still runs
ours() {
    local pid
    pid=$(cat "$dir/$1/redis.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # a redis-server on exactly this port ("redis-server 127.0.0.1:PORT"):
    # a pid file left behind may name a pid now some other program's
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null \
        | grep -Eq "^redis-server [^ ]*:$1( |\$)" || return 1
    echo "$pid"
}

stop_one() {
    local pid
    pid=$(ours "$1") || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/$1/redis.pid"
}

