# pam_seatgate.so: the PAM wrapper around libseatgate. The core is linked in
# statically with its symbols hidden, so the module exports only pam_sm_*.
all: $(B)/pam_seatgate.so

$(B)/pam_seatgate.so: $(B)/obj/pam_module/pam_seatgate.o $(B)/libseatgate.a
	$(CC) $(ALLCFLAGS) -shared -Wl,--exclude-libs,ALL -Wl,-z,defs -o $@ $^ $(LDLIBS_CORE) -lpam

# cmocka + libpamtest tests of the PAM module (real libpam through pam_wrapper)
PAM_TESTS := $(patsubst tests/pam/%.c,$(B)/tests/%,$(wildcard tests/pam/test_*.c))
$(B)/tests/test_pam%: tests/pam/test_pam%.c $(B)/libseatgate.a $(B)/pam_seatgate.so
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Wno-missing-prototypes -o $@ $< $(B)/libseatgate.a $(LDLIBS_CORE) \
	    $(shell pkg-config --cflags --libs libpamtest) -lcmocka
