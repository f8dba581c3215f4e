#!/usr/bin/env bash
# `make run` / `make stop`: Redis, a demo upstream and nginx with
# conf.example, all under the checkout's run/ folder.
#
#   tools/run.sh start|stop
#
# Environment (set by the Makefile): RUN, NGINX_BIN, MODULE, CLI, TOP.
# Ports: AI_RELAY_PORT (8080), AI_RELAY_REDIS_PORT (6380),
#        AI_RELAY_DEMO_PORT (8081).
set -euo pipefail

RUN=${RUN:?} NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx} TOP=${TOP:?}
PORT=${AI_RELAY_PORT:-8080}
REDIS_PORT=${AI_RELAY_REDIS_PORT:-6380}
DEMO_PORT=${AI_RELAY_DEMO_PORT:-8081}

stop() {
    if [ -f "$RUN/nginx/logs/nginx.pid" ]; then
        "$NGINX_BIN" -p "$RUN/nginx/" -c conf/nginx.conf -e logs/error.log \
            -s quit 2>/dev/null || true
        for _ in $(seq 1 50); do
            [ -f "$RUN/nginx/logs/nginx.pid" ] || break
            sleep 0.1
        done
    fi
    if [ -f "$RUN/demo.pid" ]; then
        kill "$(cat "$RUN/demo.pid")" 2>/dev/null || true
        rm -f "$RUN/demo.pid"
    fi
    # our Redis only (its pid file), saved on the way out (AOF)
    local pid
    pid=$(cat "$RUN/redis/redis.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        && grep -q redis "/proc/$pid/cmdline" 2>/dev/null
    then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$RUN/redis/redis.pid"
}

start() {
    stop
    # what we did not start is never stopped: a busy port is an error
    "$TOP/tools/ports-free.sh" "$PORT" "$REDIS_PORT" "$DEMO_PORT" || exit 1
    mkdir -p "$RUN/redis" "$RUN/nginx/conf" "$RUN/nginx/logs" \
             "$RUN/nginx/modules" "$RUN/nginx/tmp"
    chmod 1777 "$RUN/nginx/logs" "$RUN/nginx/tmp"

    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN/redis" \
        --appendonly yes --daemonize yes --pidfile "$RUN/redis/redis.pid" \
        --logfile "$RUN/redis/redis.log" >/dev/null
    for _ in $(seq 1 50); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
    done

    nohup perl "$TOP/tools/demo-upstream.pl" "$DEMO_PORT" "$RUN/demo.pid" \
        >"$RUN/demo.log" 2>&1 &
    for _ in $(seq 1 50); do
        [ -s "$RUN/demo.pid" ] && break
        sleep 0.1
    done

    ln -sf "$MODULE" "$RUN/nginx/modules/ngx_ai_relay_module.so"

    # conf.example as is, but for its ports, temp folders and journal:
    # everything under run/, nothing in the system nginx's folders
    sed -e "s/127\.0\.0\.1:6379/127.0.0.1:$REDIS_PORT/" \
        -e "s/listen  8080;/listen  $PORT;/" \
        -e "s|^http {|http {\n    client_body_temp_path $RUN/nginx/tmp/body;\n    proxy_temp_path $RUN/nginx/tmp/proxy;\n    fastcgi_temp_path $RUN/nginx/tmp/fastcgi;\n    uwsgi_temp_path $RUN/nginx/tmp/uwsgi;\n    scgi_temp_path $RUN/nginx/tmp/scgi;|" \
        -e "s|^ *# ai_relay_journal .*|    ai_relay_journal                $RUN/nginx/logs/ai_relay.journal;|" \
        "$TOP/conf.example" > "$RUN/nginx/conf/nginx.conf"

    # started by root, nginx would run its workers as "nobody", who may not
    # reach a checkout under /root or a private temporary folder (the
    # journal and temp folders are in run/): the demo's workers run as the
    # user who started it, as Test::Nginx does
    if [ "$(id -u)" = 0 ]; then
        echo "user root;" >> "$RUN/nginx/conf/nginx.conf"
    fi

    "$NGINX_BIN" -p "$RUN/nginx/" -c conf/nginx.conf -e logs/error.log

    export AI_RELAY_REDIS="127.0.0.1:$REDIS_PORT"

    # the demo account: $10, one key, gpt-4o-mini on the demo upstream
    if ! "$CLI" users show 1 >/dev/null 2>&1; then
        "$CLI" users create demo --balance 10 >/dev/null
    fi
    "$CLI" channels create --id 1 --name demo --provider openai \
        --base-url "http://127.0.0.1:$DEMO_PORT" --key demo-upstream-key \
        >/dev/null 2>&1 \
        || "$CLI" channels update 1 --base-url "http://127.0.0.1:$DEMO_PORT" \
            >/dev/null
    "$CLI" models set gpt-4o-mini --channels 1 >/dev/null
    "$CLI" prices set gpt-4o-mini --input 0.15 --output 0.60 >/dev/null

    # the same demo upstream as an Anthropic and a Gemini channel: clients
    # of any API reach models of the others, translated
    "$CLI" channels create --id 2 --name demo-anthropic --provider anthropic \
        --base-url "http://127.0.0.1:$DEMO_PORT" --key demo-upstream-key \
        >/dev/null 2>&1 \
        || "$CLI" channels update 2 --base-url "http://127.0.0.1:$DEMO_PORT" \
            >/dev/null
    "$CLI" channels create --id 3 --name demo-gemini --provider gemini \
        --base-url "http://127.0.0.1:$DEMO_PORT/v1beta" \
        --key demo-upstream-key >/dev/null 2>&1 \
        || "$CLI" channels update 3 \
            --base-url "http://127.0.0.1:$DEMO_PORT/v1beta" >/dev/null
    "$CLI" models set claude-demo --channels 2 >/dev/null
    "$CLI" prices set claude-demo --input 3 --output 15 >/dev/null
    "$CLI" models set gemini-demo --channels 3 >/dev/null
    "$CLI" prices set gemini-demo --input 0.30 --output 2.50 >/dev/null

    KEY=$(cat "$RUN/demo.key" 2>/dev/null || true)
    if [ -z "$KEY" ] || ! "$CLI" keys show "$KEY" >/dev/null 2>&1; then
        KEY=$("$CLI" keys create --user 1 --name demo 2>/dev/null)
        echo "$KEY" > "$RUN/demo.key"
        chmod 600 "$RUN/demo.key"
    fi

    echo "AI_RELAY_BASE_URL=http://127.0.0.1:$PORT/v1"
    echo "AI_RELAY_DEMO_KEY=$KEY"
    echo "AI_RELAY_DEMO_MODEL=gpt-4o-mini"
    echo "curl http://127.0.0.1:$PORT/v1/chat/completions" \
         "-H 'Authorization: Bearer $KEY'" \
         "-H 'Content-Type: application/json'" \
         "-d '{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'"
}

case "${1:-}" in
    start) start ;;
    stop)  stop ;;
    *)     echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
