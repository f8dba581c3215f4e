#!/usr/bin/env bash
# Redis Sentinel for the test suite: a master on PORT, its replica on
# PORT+1, three sentinels on SPORT..SPORT+2 watching it as "relay", each in
# build/sentinel-PORT/ (sentinels run as `redis-server --sentinel`: Debian's
# redis-sentinel is the same program).
#
#   t/sentinel.sh start [PORT] [SPORT]      start all, wait until settled
#   t/sentinel.sh stop [PORT] [SPORT]       stop what this script started
#   t/sentinel.sh kill NODEPORT [PORT] [SPORT]   SIGKILL the master or replica
#   t/sentinel.sh master [PORT] [SPORT]     the master's port, by the sentinels
#   t/sentinel.sh wait-master OLD [PORT] [SPORT]  until the master is not OLD
#
# Only processes whose pid files this script wrote are ever stopped; a
# port some other program holds is an error.  Every wait is bounded.
set -eu
cmd=${1:?start|stop|kill|master|wait-master}
shift
top=$(cd "$(dirname "$0")/.." && pwd)

case $cmd in
    kill)        kport=${1:?port}; shift ;;
    wait-master) oldport=${1:?port}; shift ;;
esac

port=${1:-2290}
sport=${2:-7321}
dir=$top/build/sentinel-$port
nodes="$port $((port + 1))"
sentinels="$sport $((sport + 1)) $((sport + 2))"
. "$top/t/redis-nodes.sh"

stop() {
    for p in $sentinels $nodes; do
        stop_one "$p"
    done
}

# the master's port, as the first sentinel that answers says
master() {
    local p out
    for p in $sentinels; do
        out=$(redis-cli -p "$p" sentinel get-master-addr-by-name relay \
              2>/dev/null | sed -n 2p) || continue
        [ -n "$out" ] && { echo "$out"; return 0; }
    done
    return 1
}

start() {
    # shellcheck disable=SC2086
    "$top/tools/ports-free.sh" $nodes $sentinels || exit 1

    for p in $nodes; do
        rm -rf "${dir:?}/$p"
        mkdir -p "$dir/$p"
        # shellcheck disable=SC2046
        redis-server --port "$p" --bind 127.0.0.1 --save '' \
            --appendonly no --dir "$dir/$p" --daemonize yes \
            --repl-diskless-sync-delay 0 \
            $( [ "$p" = "$port" ] || echo --replicaof 127.0.0.1 "$port" ) \
            --pidfile "$dir/$p/redis.pid" \
            --logfile "$dir/$p/redis.log" >/dev/null
    done

    for _ in $(seq 1 100); do
        redis-cli -p $((port + 1)) info replication 2>/dev/null \
            | grep -q '^master_link_status:up' && break
        sleep 0.1
    done

    for p in $sentinels; do
        rm -rf "${dir:?}/$p"
        mkdir -p "$dir/$p"
        cat > "$dir/$p/sentinel.conf" <<EOF
port $p
bind 127.0.0.1
daemonize yes
dir $dir/$p
pidfile $dir/$p/redis.pid
logfile $dir/$p/redis.log
sentinel monitor relay 127.0.0.1 $port 2
sentinel down-after-milliseconds relay 1000
sentinel failover-timeout relay 3000
sentinel parallel-syncs relay 1
EOF
        redis-server "$dir/$p/sentinel.conf" --sentinel >/dev/null
    done

    # every sentinel knows the master, the replica and the other two
    for _ in $(seq 1 150); do
        local ok=1
        for p in $sentinels; do
            out=$(redis-cli -p "$p" sentinel master relay 2>/dev/null) || ok=0
            echo "$out" | grep -A1 -x 'num-slaves' | grep -qx 1 || ok=0
            echo "$out" | grep -A1 -x 'num-other-sentinels' | grep -qx 2 \
                || ok=0
        done
        [ $ok = 1 ] && return 0
        sleep 0.1
    done

    echo "redis sentinel on $sport did not settle" >&2
    stop
    exit 1
}

case $cmd in
    start)
        stop
        start
        ;;
    stop)
        stop
        ;;
    kill)
        pid=$(ours "$kport") || { echo "no node of ours on $kport" >&2; exit 1; }
        kill -9 "$pid"
        rm -f "$dir/$kport/redis.pid"
        ;;
    master)
        master
        ;;
    wait-master)
        for _ in $(seq 1 150); do
            m=$(master || true)
            if [ -n "$m" ] && [ "$m" != "$oldport" ]; then
                echo "$m"
                exit 0
            fi
            sleep 0.1
        done
        echo "the master is still $oldport" >&2
        exit 1
        ;;
esac
