# `make soak`: a bounded load and fault run against real Redis (AOF on)
# and nginx with the module, then a reconciliation of money, records and
# reservations: one "ok - ..." / "not ok - ..." line per invariant, and a
# non-zero exit on any "not ok" (tools/soak/README.md).
#
#   make soak                    5 minutes of load, 5.5 in all
#   make soak SOAK_SECONDS=60    a short run, about 80 s
#   make soak-deps               install $(SOAK_PKGS) if missing
#
# Loopback only, ports 27101-27103 (SOAK_PORT=27100 moves them), run
# folder build/soak/<time>/ (build/soak/latest).  See tools/soak/soak.pl
# for every SOAK_* setting.

SOAK_SECONDS ?= 300
SOAK_PKGS    := redis-server redis-tools perl procps iproute2

.PHONY: soak soak-deps

soak-deps: $(BUILD)/.deps
	@$(call apt_install,$(SOAK_PKGS))

# the driver bounds every phase itself; the timeout is a last resort
# (under 10 minutes: the load is at most 360 s)
soak: build soak-deps
	@TOP=$(TOP) BUILD=$(BUILD) SOAK_NGINX=$(NGINX) MODULE=$(MODULE) \
	    SOAK_SECONDS=$(SOAK_SECONDS) \
	    timeout -k 10 $$(( $(SOAK_SECONDS) + 230 )) \
	    perl $(TOP)/tools/soak/soak.pl
