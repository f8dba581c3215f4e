#!/usr/bin/env bash
# A Redis Cluster for the test suite: 3 masters and 3 replicas on ports
# BASE..BASE+5 (their cluster bus on +10000), each in build/cluster-BASE/.
#
#   t/cluster.sh start [BASE]      start, create the cluster, wait for it
#                                  (BASE: 7301 if not given)
#   t/cluster.sh stop [BASE]       stop the nodes this script started
#   t/cluster.sh kill PORT [BASE]  SIGKILL one of them (a failover test)
#   t/cluster.sh master SLOT [BASE]  the port of the master of SLOT
#   t/cluster.sh wait-master SLOT PORT [BASE]
#                                  wait until SLOT's master is not PORT
#
# Only nodes whose pid files this script wrote are ever stopped; a port
# some other program holds is an error.  Every wait is bounded.
set -eu
cmd=${1:?start|stop|kill|master|wait-master}
shift
top=$(cd "$(dirname "$0")/.." && pwd)

case $cmd in
    kill)        kport=${1:?port}; shift ;;
    master)      slot=${1:?slot}; shift ;;
    wait-master) slot=${1:?slot}; oldport=${2:?port}; shift 2 ;;
esac

base=${1:-7301}
dir=$top/build/cluster-$base
ports=$(seq "$base" $((base + 5)))

. "$top/t/redis-nodes.sh"

stop() {
    for p in $ports; do
        stop_one "$p"
    done
}

start() {
    local p busy=""
    for p in $ports; do
        busy="$busy $p $((p + 10000))"
    done
    # shellcheck disable=SC2086
    "$top/tools/ports-free.sh" $busy || exit 1

    for p in $ports; do
        rm -rf "$dir/$p"
        mkdir -p "$dir/$p"
        redis-server --port "$p" --bind 127.0.0.1 --save '' \
            --appendonly no --dir "$dir/$p" --daemonize yes \
            --cluster-enabled yes --cluster-config-file nodes.conf \
            --cluster-node-timeout 1000 \
            --cluster-require-full-coverage no \
            --cluster-replica-validity-factor 0 \
            --repl-diskless-sync-delay 0 \
            --pidfile "$dir/$p/redis.pid" \
            --logfile "$dir/$p/redis.log" >/dev/null
    done

    for p in $ports; do
        for _ in $(seq 1 50); do
            redis-cli -p "$p" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
    done

    # shellcheck disable=SC2046
    redis-cli --cluster create $(for p in $ports; do echo "127.0.0.1:$p"; done) \
        --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 || {
        echo "redis cluster create failed:" >&2
        tail -5 "$dir/create.log" >&2
        stop
        exit 1
    }

    # every node sees the cluster ok and 3 masters with 1 replica each
    for _ in $(seq 1 100); do
        local ok=1
        for p in $ports; do
            redis-cli -p "$p" cluster info 2>/dev/null \
                | grep -q 'cluster_state:ok' || ok=0
            [ "$(redis-cli -p "$p" cluster nodes 2>/dev/null \
                 | grep -c 'slave')" = 3 ] || ok=0
            # a replica has its master's data before a failover test
            if redis-cli -p "$p" info replication 2>/dev/null \
                | grep -q '^role:slave'; then
                redis-cli -p "$p" info replication \
                    | grep -q '^master_link_status:up' || ok=0
            fi
        done
        [ $ok = 1 ] && return 0
        sleep 0.1
    done

    echo "redis cluster on $base did not settle" >&2
    stop
    exit 1
}

# the port of the node serving SLOT as a master, asked of any live node
master() {
    local p out
    for p in $ports; do
        out=$(redis-cli -p "$p" cluster slots 2>/dev/null) || continue
        [ -n "$out" ] || continue
        echo "$out" | awk -v s="$1" '
            NR % 1 == 0 { line[NR] = $0 }
            END {
                # ranges: start, end, ip, port, id, [ip, port, id]...
                for (i = 1; i <= NR; i++) {
                    if (line[i] ~ /^[0-9]+$/ && line[i + 1] ~ /^[0-9]+$/ \
                        && line[i + 2] ~ /\./ && line[i] + 0 <= s \
                        && line[i + 1] + 0 >= s) {
                        print line[i + 3]; exit
                    }
                }
            }'
        return 0
    done
    return 1
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
        master "$slot"
        ;;
    wait-master)
        for _ in $(seq 1 150); do
            m=$(master "$slot" || true)
            if [ -n "$m" ] && [ "$m" != "$oldport" ]; then
                echo "$m"
                exit 0
            fi
            sleep 0.1
        done
        echo "slot $slot still on $oldport" >&2
        exit 1
        ;;
esac
