# libFuzzer targets for the parsers of untrusted input (PRODUCT.md section 4).
#   make fuzz                  build and run each target for FUZZ_TIME seconds
#   make fuzz FUZZ_TIME=300    longer runs
#   make fuzz-build            build only: $(B)/fuzz/fuzz_url etc.
# Built with clang straight from the common/*.c sources each target needs, with
# ASan and UBSan. Seeds are in tests/fuzz/corpus/<target>/ (read-only); what the
# fuzzer finds goes to $(B)/fuzz/corpus/<target>/, crashes to $(B)/fuzz/artifacts/.
# Not part of `make test`.

FUZZ_CC      ?= clang
FUZZ_TIME    ?= 20
FUZZ_TARGETS := fuzz_url fuzz_ident fuzz_config fuzz_csv fuzz_sync fuzz_scim
FUZZ_BINS    := $(patsubst %,$(B)/fuzz/%,$(FUZZ_TARGETS))
FUZZ_CFLAGS  := $(BASEFLAGS) -O1 -g -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_OPTS    ?= -timeout=10 -print_final_stats=1
FUZZ_MAXLEN_fuzz_url    := 1200
FUZZ_MAXLEN_fuzz_ident  := 600
FUZZ_MAXLEN_fuzz_config := 8192
FUZZ_MAXLEN_fuzz_csv    := 8192
FUZZ_MAXLEN_fuzz_sync   := 8192
FUZZ_MAXLEN_fuzz_scim   := 8192

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

$(B)/fuzz/fuzz_url: tests/fuzz/fuzz_url.c common/url.c common/util.c common/seatgate.h
$(B)/fuzz/fuzz_ident: tests/fuzz/fuzz_ident.c common/util.c common/seatgate.h
$(B)/fuzz/fuzz_config: tests/fuzz/fuzz_config.c common/config.c common/url.c common/util.c \
                       common/host.c common/seatgate.h
$(B)/fuzz/fuzz_csv: tests/fuzz/fuzz_csv.c common/csv.c common/util.c common/seatgate.h common/sg_csv.h
$(B)/fuzz/fuzz_sync: tests/fuzz/fuzz_sync.c common/sync_parse.c common/csv.c common/util.c \
                     common/seatgate.h common/sg_csv.h

# the SCIM state machine needs most of the core (key names, replies, the map,
# the record helpers) and the embedded scripts
$(B)/fuzz/fuzz_scim: tests/fuzz/fuzz_scim.c $(CORE_SRC) $(B)/gen/scripts.c common/seatgate.h \
                     common/internal.h common/sg_csv.h

$(FUZZ_BINS): tests/fuzz/build.mk
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) \
	    $(if $(filter %fuzz_sync %fuzz_scim,$@),-ljson-c) $(if $(filter %fuzz_scim,$@),-lhiredis -lm)

fuzz: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(B)/fuzz/corpus/$$t $(B)/fuzz/artifacts; \
	  dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	  case $$t in \
	    fuzz_url) maxlen=$(FUZZ_MAXLEN_fuzz_url);; \
	    fuzz_ident) maxlen=$(FUZZ_MAXLEN_fuzz_ident);; \
	    *) maxlen=$(FUZZ_MAXLEN_fuzz_config);; \
	  esac; \
	  echo "== $$t: $(FUZZ_TIME)s"; \
	  $(B)/fuzz/$$t -max_total_time=$(FUZZ_TIME) -max_len=$$maxlen $(FUZZ_OPTS) $$dict \
	    -artifact_prefix=$(B)/fuzz/artifacts/$$t- \
	    $(B)/fuzz/corpus/$$t tests/fuzz/corpus/$$t 2>$(B)/fuzz/$$t.log \
	    || { tail -n 60 $(B)/fuzz/$$t.log; echo "$$t FAILED: see $(B)/fuzz/$$t.log"; exit 1; }; \
	  grep -E '^(stat::|#[0-9]+ +DONE)' $(B)/fuzz/$$t.log || true; \
	done; echo "fuzz: no crash in $(FUZZ_TARGETS)"
