# `make bench`: plain nginx proxy_pass vs the relay on loopback, CPU per
# request, throughput, added latency, TTFB, memory per idle stream
# (bench/README.md). Results: build/bench/latest.txt.
#
#   make bench                       everything, ~8 minutes on 2 cores:
#                                    bench/run.sh, then bench/cluster.sh
#                                    (BENCH_CLUSTER=0: without it)
#   make bench BENCH_SECONDS=2 BENCH_REPS=1     a quick look
#   make bench BENCH_SCENARIOS="nonstream stream" BENCH_PROFILE=1
#   make bench-callgrind             instructions per request under
#                                    valgrind, top functions
#   make bench-peers                 optional: also the Portkey AI gateway
#                                    (npm @portkey-ai/gateway), skipped
#                                    when npm cannot fetch it
#   make bench-deps                  install $(BENCH_PKGS) if missing
#   make bench-cluster               only the cluster figures: CPU per
#                                    request on one Redis against a
#                                    3-master Redis Cluster, and two
#                                    relays on it, each also against
#                                    plain proxy_pass (bench/cluster.sh)
#
# Timing is never asserted by `make test`; see bench/run.sh for all the
# BENCH_* settings.

BENCH_PKGS := wrk redis-server redis-tools libnginx-mod-http-echo curl \
              procps util-linux iproute2 perl

.PHONY: bench bench-peers bench-deps bench-callgrind bench-cluster

bench-deps: $(BUILD)/.deps
	@$(call apt_install,$(BENCH_PKGS) $(if $(filter 1,$(BENCH_PROFILE)),linux-perf))

# the cluster figures last (BENCH_CLUSTER=0 leaves them out)
bench: build bench-deps
	@TOP=$(TOP) BUILD=$(BUILD) NGINX=$(NGINX) MODULE=$(MODULE) \
	    timeout $${BENCH_TIMEOUT:-1800} $(TOP)/bench/run.sh bench
	@if [ "$${BENCH_CLUSTER:-1}" != 0 ]; then \
	    TOP=$(TOP) BUILD=$(BUILD) NGINX=$(NGINX) MODULE=$(MODULE) \
	    ECHO_MODULE=$(ECHO_MODULE) \
	    timeout $${BENCH_TIMEOUT:-900} $(TOP)/bench/cluster.sh; fi

bench-peers: build bench-deps
	@TOP=$(TOP) BUILD=$(BUILD) NGINX=$(NGINX) MODULE=$(MODULE) \
	    timeout $${BENCH_TIMEOUT:-2700} $(TOP)/bench/run.sh peers

# instructions per request (proxy, relay, Redis) and where they go,
# under valgrind's callgrind: build/bench/callgrind-<time>.txt
bench-callgrind: build bench-deps
	@$(call apt_install,valgrind)
	@TOP=$(TOP) BUILD=$(BUILD) NGINX=$(NGINX) MODULE=$(MODULE) \
	    timeout $${BENCH_TIMEOUT:-1200} $(TOP)/bench/run.sh callgrind

bench-cluster: build bench-deps
	@TOP=$(TOP) BUILD=$(BUILD) NGINX=$(NGINX) MODULE=$(MODULE) \
	    ECHO_MODULE=$(ECHO_MODULE) \
	    timeout $${BENCH_TIMEOUT:-900} $(TOP)/bench/cluster.sh
