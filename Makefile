# seatgate — top-level build. Every output goes under build/.
#   make deps        install the Debian packages (as root; else prints the apt-get line)
#   make             build/libseatgate.a, build/seatctl (+ modules, see below)
#   make test        unit + integration tests (SANITIZE=1 for ASan+UBSan)
#   make demo        a walk-through on loopback ports
#   make bench       benchmarks
#   make install     seatctl, pam_seatgate.so, the nginx module, man pages and
#                    /etc/security/seatgate.conf (0600, kept if present);
#                    DESTDIR= and PREFIX= (default /usr/local) as usual

B        := build
ifeq ($(SANITIZE),1)
B        := build/sanitize
endif
CC       ?= cc
PYTHON   ?= /usr/bin/python3
SANITIZE ?=
DEB_PKGS := build-essential pkg-config libhiredis-dev libjson-c-dev libpam0g-dev nginx nginx-dev \
            redis-server redis-tools libcmocka-dev libpam-wrapper libpamtest0-dev libnss-wrapper \
            pamtester python3-pytest python3-redis python3-requests wrk curl valgrind \
            libnginx-mod-http-lua lua-nginx-redis chromium-headless-shell \
            debhelper dpkg-dev fakeroot lintian systemd man-db

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-format-nonliteral
CFLAGS   ?= -O2 -g
BASEFLAGS := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -fPIC $(WARN) -Icommon -I$(B)/gen \
             $(shell pkg-config --cflags hiredis json-c 2>/dev/null)
ifeq ($(SANITIZE),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
ALLCFLAGS := $(BASEFLAGS) $(CFLAGS) $(SANFLAGS)
LDLIBS_CORE := -lhiredis

LUA      := decide release pool_commit pool_delete assign user_put user_apply fsck usage scim
LUA_SRC  := $(patsubst %,common/lua/%.lua,$(LUA))
CORE_SRC := common/util.c common/url.c common/conn.c common/core.c common/admin.c common/config.c \
            common/csv.c common/host.c common/audit.c common/report.c common/sync_parse.c \
            common/sync.c common/scim.c
CORE_OBJ := $(patsubst common/%.c,$(B)/obj/common/%.o,$(CORE_SRC)) $(B)/obj/common/scripts.o

.PHONY: all deps test unit integration demo bench clean check-deps format install
all: $(B)/libseatgate.a $(B)/seatctl

deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing $$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "deps: run as root:"; echo "  apt-get install -y $$missing"; exit 1; fi

$(B)/gen/scripts.c: common/embed.sh common/lua/lib.lua $(LUA_SRC)
	@mkdir -p $(@D)
	sh common/embed.sh $@ common/lua/lib.lua $(LUA_SRC)

$(B)/obj/common/scripts.o: $(B)/gen/scripts.c common/seatgate.h common/sg_csv.h common/sg_host.h
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -c -o $@ $<

$(B)/obj/%.o: %.c common/seatgate.h common/internal.h common/sg_csv.h common/sg_host.h cli/seatctl.h
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -c -o $@ $<

$(B)/libseatgate.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

SEATCTL_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(wildcard cli/*.c))
$(B)/seatctl: $(SEATCTL_OBJ) $(B)/libseatgate.a
	$(CC) $(ALLCFLAGS) -o $@ $^ $(LDLIBS_CORE) $(shell pkg-config --libs json-c) -lm

# ---- tests -------------------------------------------------------------------
UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c))

$(B)/tests/%: tests/unit/%.c $(B)/libseatgate.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Wno-missing-prototypes -o $@ $< $(B)/libseatgate.a $(LDLIBS_CORE) -lcmocka \
	    $(shell pkg-config --libs json-c) -lm

unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

integration: all
	SEATGATE_BUILD=$(abspath $(B)) SEATGATE_SANITIZE=$(SANITIZE) $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

test: unit integration

demo:
	@$(MAKE) -s deps
	@$(MAKE) -s all
	sh tests/demo.sh

bench: all $(B)/bench_core
	sh tests/bench/run.sh

$(B)/bench_core: tests/bench/bench_core.c $(B)/libseatgate.a
	$(CC) $(ALLCFLAGS) -Wno-missing-prototypes -o $@ $< $(B)/libseatgate.a $(LDLIBS_CORE)

# ---- install -----------------------------------------------------------------
PREFIX     ?= /usr/local
MULTIARCH  := $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || $(CC) -print-multiarch)
SECUREDIR  ?= /lib/$(MULTIARCH)/security
NGXMODDIR  ?= /usr/lib/nginx/modules
SYSCONFDIR ?= /etc
# root's files when installing as root; a packager without root (DESTDIR,
# fakeroot) gets the modes and sets the owner in the package
OWNER      := $(if $(filter 0,$(shell id -u)),-o root -g root,)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SECUREDIR) \
	    $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8 \
	    $(DESTDIR)$(PREFIX)/share/doc/seatgate/examples/pam.d
	install -m 0755 $(B)/seatctl $(DESTDIR)$(PREFIX)/bin/seatctl
	install -m 0644 $(B)/pam_seatgate.so $(DESTDIR)$(SECUREDIR)/pam_seatgate.so
	if [ -f $(B)/ngx_http_seatgate_module.so ]; then \
	    install -d $(DESTDIR)$(NGXMODDIR) && \
	    install -m 0644 $(B)/ngx_http_seatgate_module.so $(DESTDIR)$(NGXMODDIR)/; fi
	install -m 0644 docs/seatctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/seatctl.1
	install -m 0644 docs/pam_seatgate.8 $(DESTDIR)$(PREFIX)/share/man/man8/pam_seatgate.8
	install -m 0644 conf/pam.d/sshd conf/pam.d/login $(DESTDIR)$(PREFIX)/share/doc/seatgate/examples/pam.d/
	install -m 0644 conf/nginx-seatgate.conf conf/redis-acl.conf conf/redis-seatgate.conf conf/seatgate.conf \
	    $(DESTDIR)$(PREFIX)/share/doc/seatgate/examples/
	# the config may hold a Redis password: root's, 0600, and never overwritten
	install -d -m 0755 $(OWNER) $(DESTDIR)$(SYSCONFDIR)/security
	if [ -e $(DESTDIR)$(SYSCONFDIR)/security/seatgate.conf ]; then \
	    echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/security/seatgate.conf"; \
	    chmod go-rwx $(DESTDIR)$(SYSCONFDIR)/security/seatgate.conf; \
	else install -m 0600 $(OWNER) conf/seatgate.conf $(DESTDIR)$(SYSCONFDIR)/security/seatgate.conf; fi

format:
	clang-format -i common/*.c common/*.h cli/*.c tests/unit/*.c

clean:
	rm -rf $(B)

-include ngx_module/build.mk
-include pam_module/build.mk
-include tests/fuzz/build.mk

# ---- Debian packages -----------------------------------------------------------
# make deb: libnginx-mod-http-seatgate, libpam-seatgate and seatgate-tools in
# build/deb/, built by dpkg-buildpackage from a copy of the tracked sources
# (debian/), then checked by lintian.
DEB_VERSION := $(shell dpkg-parsechangelog -l debian/changelog -SVersion 2>/dev/null)
DEB_DIR     := $(B)/deb
.PHONY: deb
deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/seatgate-$(DEB_VERSION)
	git ls-files -z | xargs -0 cp --parents -t $(DEB_DIR)/seatgate-$(DEB_VERSION)
	cd $(DEB_DIR)/seatgate-$(DEB_VERSION) && dpkg-buildpackage -b -us -uc
	lintian --fail-on error,warning $(DEB_DIR)/*.changes
	@ls -1 $(DEB_DIR)/*.deb

# make deb-check (root): install the packages into this machine, check them
# (nginx -t, pamtester, systemd-analyze, the demo), purge them
.PHONY: deb-check
deb-check:
	sh tests/deb/check.sh $(abspath $(DEB_DIR))
