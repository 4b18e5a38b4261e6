# ngx_module/build.mk: builds the dynamic nginx module, included by the top
# Makefile.
#
#   make ngx-module                 build/ngx_http_seatgate_module.so against
#                                   Debian's nginx-dev tree (/usr/share/nginx/src)
#   make ngx-module NGINX_SRC=DIR   against an upstream nginx source tree instead
#                                   (configured with --with-compat; the module
#                                   loads into an nginx built from that tree)
#   make ngx-module SANITIZE=1      build/sanitize/ngx_http_seatgate_module.so
#                                   with ASan+UBSan (nginx runs it with
#                                   LD_PRELOAD of libasan, see the tests)
#
# The nginx tree is copied under build/ once and configured with the flags its
# binary was built with (conf_flags) plus --add-dynamic-module, then only
# `make modules` runs; nothing outside build/ is written.

NGX_DEB_SRC    := /usr/share/nginx/src
NGINX_SRC      ?=
NGX_MOD_DIR    := $(abspath ngx_module)
NGX_MOD_SRCS   := $(wildcard ngx_module/*.c ngx_module/*.h) ngx_module/config
NGX_CC_OPT     := -g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC \
                  -Wdate-time -Werror -I$(abspath common)
NGX_LD_OPT     := -Wl,-z,relro -Wl,-z,now -fPIC

# $(B) is build/ or, with SANITIZE=1, build/sanitize/
NGX_MODULE_SO  := $(B)/ngx_http_seatgate_module.so

ifeq ($(SANITIZE),1)
NGX_CC_OPT     += -fsanitize=address,undefined -fno-omit-frame-pointer \
                  -fno-sanitize-recover=undefined
NGX_LD_OPT     += -fsanitize=address,undefined
else
NGX_CC_OPT     += -D_FORTIFY_SOURCE=2
endif

ifeq ($(NGINX_SRC),)
NGX_TREE_SRC   := $(NGX_DEB_SRC)
NGX_TREE       := $(B)/nginx-src
else
NGX_TREE_SRC   := $(abspath $(NGINX_SRC))
NGX_TREE       := $(B)/nginx-upstream
endif

.PHONY: ngx-module ngx-configure
all: ngx-module
ngx-configure: $(NGX_TREE)/objs/Makefile

# configure once per tree; conf_flags (Debian) holds the flags of the binary
$(NGX_TREE)/objs/Makefile: ngx_module/config ngx_module/build.mk
	@test -f $(NGX_TREE_SRC)/configure -o -f $(NGX_TREE_SRC)/auto/configure || { echo "ngx-module: no nginx source tree at $(NGX_TREE_SRC) (install nginx-dev or pass NGINX_SRC=DIR)"; exit 1; }
	rm -rf $(NGX_TREE)
	@mkdir -p $(B)
	cp -a $(NGX_TREE_SRC) $(NGX_TREE)
	cd $(NGX_TREE) && SEATGATE_LIB=$(abspath $(B))/libseatgate.a SEATGATE_INC=$(abspath common) \
	  bash -c 'flags=(--with-compat); if [ -f conf_flags ]; then . ./conf_flags; flags=("$${NGX_CONF_FLAGS[@]}"); fi; \
	    cfg=./configure; [ -f $$cfg ] || cfg=auto/configure; \
	    sh $$cfg "$${flags[@]}" --with-cc-opt="$(NGX_CC_OPT)" --with-ld-opt="$(NGX_LD_OPT)" \
	      --add-dynamic-module=$(NGX_MOD_DIR)' > configure.log 2>&1 \
	  || { tail -30 configure.log; exit 1; }

NGX_TREE_SO    := $(NGX_TREE)/objs/ngx_http_seatgate_module.so

# nginx's own makefile tracks the sources; a new libseatgate.a relinks
$(NGX_TREE_SO): $(NGX_TREE)/objs/Makefile $(NGX_MOD_SRCS) $(B)/libseatgate.a common/seatgate.h
	rm -f $@
	$(MAKE) -C $(NGX_TREE) -f objs/Makefile modules

# the module of the tree built last (Debian's, or NGINX_SRC's) is the one
# installed; a new inode, so that a running nginx keeps the module it mapped
ngx-module: $(NGX_TREE_SO)
	@cmp -s $(NGX_TREE_SO) $(NGX_MODULE_SO) || { \
	  cp $(NGX_TREE_SO) $(NGX_MODULE_SO).tmp && mv -f $(NGX_MODULE_SO).tmp $(NGX_MODULE_SO) && \
	  echo "ngx-module: $(NGX_MODULE_SO) from $(NGX_TREE)"; }

# the integration tests load the module built by this make run
integration: export SEATGATE_NGX_MODULE = $(abspath $(NGX_MODULE_SO))
