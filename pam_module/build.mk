# pam_seatgate.so: the PAM wrapper around libseatgate. The core is linked in
# statically with its symbols hidden, so the module exports only pam_sm_*.
# -z nodelete: libpam dlopen()s the module at every pam_start and dlclose()s it
# at pam_end; a process that runs many PAM transactions (a daemon, the bench)
# would otherwise map and unmap the module and libhiredis each time, which
# costs more than the decision itself. The module keeps no global state.
all: $(B)/pam_seatgate.so

$(B)/pam_seatgate.so: $(B)/obj/pam_module/pam_seatgate.o $(B)/libseatgate.a
	$(CC) $(ALLCFLAGS) -shared -Wl,--exclude-libs,ALL -Wl,-z,defs -Wl,-z,nodelete -o $@ $^ \
	    $(LDLIBS_CORE) -lpam

# cmocka + libpamtest tests of the PAM module (real libpam through pam_wrapper)
PAM_TESTS := $(patsubst tests/pam/%.c,$(B)/tests/%,$(wildcard tests/pam/test_*.c))
$(B)/tests/test_pam%: tests/pam/test_pam%.c $(B)/libseatgate.a $(B)/pam_seatgate.so
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Wno-missing-prototypes -o $@ $< $(B)/libseatgate.a $(LDLIBS_CORE) \
	    $(shell pkg-config --cflags --libs libpamtest) -lcmocka

# the PAM tests are run by tests/integration/test_pam.py
integration: $(PAM_TESTS)

# make bench: logins per second through libpam (pam_wrapper) and the module
$(B)/bench_pam: tests/bench/bench_pam.c $(B)/pam_seatgate.so
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Wno-missing-prototypes -o $@ $< -lpam
# the least a Redis-backed module can do for the same login (run-pam.sh)
$(B)/pam_floor.so: tests/bench/pam_floor.c
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Wno-missing-prototypes -shared -Wl,-z,defs -Wl,-z,nodelete -o $@ $< \
	    -lhiredis -lpam
bench: $(B)/bench_pam $(B)/pam_floor.so
