#!/usr/bin/env bash
# Exit non-zero, naming the port and who holds it, when one of the given
# TCP ports on this machine already has a listener: the project never
# stops or reuses a service it did not start.
#
#   tools/ports-free.sh PORT...
busy=0
for port in "$@"; do
    if command -v ss >/dev/null; then
        ss -Hltn "sport = :$port" 2>/dev/null | grep -q .
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
    if [ $? = 0 ]; then
        who=$(ss -Hltnp "sport = :$port" 2>/dev/null \
              | sed -n 's/.*users:((\("[^"]*"\).*/\1/p' | head -1)
        echo "port $port is already in use${who:+ by $who}:" \
             "stop that program or choose other ports (see README)" >&2
        busy=1
    fi
done
exit $busy
