# The Debian package (included by the top Makefile).
#
#   make deb        build/libnginx-mod-http-ai-relay_<version>_<arch>.deb,
#                   laid out and enabled the way Debian ships nginx modules
#   make test-deb   installs that package, checks it, sends one request
#                   through it with a private nginx and Redis, purges it
#                   (root; t/deb/test-deb.sh; the system nginx is left alone)
#
# Plain dpkg-deb, no debhelper: pkg/deb/mkdeb.sh lays out the tree, the
# maintainer scripts in pkg/deb/ are dh_nginx's, Depends comes from the
# nginx ABI the module was compiled against and from dpkg-shlibdeps.
#
#   make deb AI_RELAY_VERSION=0.2.0     another upstream version
#   DEBFULLNAME=... DEBEMAIL=...        the Maintainer field (default: the
#                                       author of the last commit)

DEB_PACKAGE  := libnginx-mod-http-ai-relay

# the CLI's version is the project's; "+git<commits>.<sha>" from a checkout
# so that every commit gets a version of its own, in order.  All are `=`
# or `?=`: the $(shell ...)s run when a recipe needs them, not whenever
# make reads this file
AI_RELAY_VERSION ?= $(or $(shell sed -n \
    's/.*define NGX_AI_RELAY_CLI_VERSION *"\([^"]*\)".*/\1/p' \
    $(TOP)/src/cli/ngx_ai_relay_cli.h 2>/dev/null),0.1.0)
DEB_GIT_SHA   = $(shell git -C $(TOP) rev-parse --short=7 HEAD 2>/dev/null)
DEB_GIT_N     = $(shell git -C $(TOP) rev-list --count HEAD 2>/dev/null)
DEB_VERSION  ?= $(AI_RELAY_VERSION)$(if $(DEB_GIT_SHA),+git$(DEB_GIT_N).$(DEB_GIT_SHA))
DEB_ARCH      = $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_FILE      = $(BUILD)/$(DEB_PACKAGE)_$(DEB_VERSION)_$(DEB_ARCH).deb

# what the package test needs besides the package: a Redis of its own,
# curl, and Debian's echo module for its mock upstream
DEB_TEST_PKGS := redis-server redis-tools curl perl libnginx-mod-http-echo

.PHONY: deb test-deb deb-test-deps

# always rebuilt (a second or two): the tree may have changed in ways no
# file date shows, e.g. another commit
deb: build cli
	@rm -f $(BUILD)/$(DEB_PACKAGE)_*.deb
	@TOP=$(TOP) BUILD=$(BUILD) MODULE=$(MODULE) CLI=$(CLI_BIN) \
	    NGX_BUILD=$(BUILD)/nginx PACKAGE=$(DEB_PACKAGE) \
	    VERSION=$(DEB_VERSION) ARCH=$(DEB_ARCH) OUT=$(DEB_FILE) \
	    $(SHELL) $(TOP)/pkg/deb/mkdeb.sh

deb-test-deps:
	@$(call apt_install,$(DEB_TEST_PKGS))

test-deb: deb deb-test-deps
	@$(SHELL) $(TOP)/t/deb/test-deb.sh $(DEB_FILE)
