/* Unit tests: key schema, decision/release commands, reply parsing (common/core.c)
 * and the embedded scripts (build/gen/scripts.c). No Redis server is needed:
 * replies are built by hand.
 *
 * The script boundary is named: a decision or release declares 10 keys
 * (sg_decide_keys, then the mux key) and passes name/value pairs in ARGV;
 * the scripts answer with flat name/value arrays read by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seatgate.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* enum sg_key order */
static const char *const key_suffix[SG_K_COUNT] = {
    "conf", "named",   "users", "leases", "sess",     "sessidx", "sessinfo",
    "gcount", "hg", "fold",  "audit",  "lastused", "stats",
};

/* what a decision and a release declare, in order, before the mux key */
static const char *const decide_key_suffix[SG_DECIDE_NKEYS - 1] = {
    "leases", "sess", "sessidx", "sessinfo", "gcount", "hg", "fold", "lastused", "stats",
};

/* the named arguments, in the order the builders send them */
static const char *const decide_arg_names[] = {
    "op", "pool", "user", "obo", "feature", "session", "lease",
    "via", "host", "pid", "pstart", "client",
};
static const char *const release_arg_names[] = {"pool", "user", "session", "via", "host"};

/* the names sg_decision_parse reads */
static const char *const decision_str_names[] = {"result", "reason", "seat", "user"};
static const char *const decision_num_names[] = {
    "in_use", "floating", "capacity", "named", "expires_ms", "ttl_ms", "epoch", "overdraft",
};

/* Makefile LUA order = enum sg_script order */
static const char *const script_files[SG_SCRIPT_COUNT] = {
    "common/lua/decide.lua",   "common/lua/release.lua",  "common/lua/pool_commit.lua",
    "common/lua/pool_delete.lua", "common/lua/assign.lua", "common/lua/user_put.lua",
    "common/lua/user_apply.lua",  "common/lua/fsck.lua",
};
#define LIB_LUA "common/lua/lib.lua"

/* ---- hand-built hiredis replies -------------------------------------------------- */

static redisReply *r_new(int type)
{
    redisReply *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->type = type;
    return r;
}

static redisReply *r_str_t(int type, const char *s)
{
    redisReply *r = r_new(type);
    r->len = strlen(s);
    r->str = malloc(r->len + 1);
    assert_non_null(r->str);
    memcpy(r->str, s, r->len + 1);
    return r;
}

static redisReply *r_str(const char *s)
{
    return r_str_t(REDIS_REPLY_STRING, s);
}

static redisReply *r_int(long long v)
{
    redisReply *r = r_new(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *r_arr(size_t n)
{
    redisReply *r = r_new(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(*r->element));
    assert_non_null(r->element);
    return r;
}

static void r_free(redisReply *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->elements; i++)
        r_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

static void r_append(redisReply *r, redisReply *e)
{
    r->element = realloc(r->element, (r->elements + 1) * sizeof(*r->element));
    assert_non_null(r->element);
    r->element[r->elements++] = e;
}

/* A flat name/value reply: r_flat(npairs, "name", value, "name", value, ...);
 * the values are replies (r_str, r_int, ...) and become owned by the array. */
static redisReply *r_flat(size_t npairs, ...)
{
    redisReply *r = r_arr(2 * npairs);
    va_list ap;
    va_start(ap, npairs);
    for (size_t i = 0; i < npairs; i++) {
        const char *name = va_arg(ap, const char *);
        r->element[2 * i] = r_str(name);
        r->element[2 * i + 1] = va_arg(ap, redisReply *);
    }
    va_end(ap);
    return r;
}

/* index of the first value named name in a flat reply, or -1 */
static long r_index(const redisReply *r, const char *name)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->str && strcmp(r->element[i]->str, name) == 0)
            return (long)(i + 1);
    return -1;
}

/* replace the value named name (which must be present) */
static void r_set(redisReply *r, const char *name, redisReply *v)
{
    long i = r_index(r, name);
    if (i < 0)
        fail_msg("fake reply has no field %s", name);
    r_free(r->element[i]);
    r->element[i] = v;
}

/* remove the pair named name (which must be present) */
static void r_drop(redisReply *r, const char *name)
{
    long i = r_index(r, name);
    if (i < 0)
        fail_msg("fake reply has no field %s", name);
    r_free(r->element[i - 1]);
    r_free(r->element[i]);
    memmove(&r->element[i - 1], &r->element[i + 1],
            (r->elements - (size_t)i - 1) * sizeof(*r->element));
    r->elements -= 2;
}

/* reorder the pairs: pair k of the result is pair perm[k] of r */
static void r_permute_pairs(redisReply *r, const size_t *perm)
{
    size_t np = r->elements / 2;
    redisReply **old = malloc(r->elements * sizeof(*old));
    assert_non_null(old);
    memcpy(old, r->element, r->elements * sizeof(*old));
    for (size_t k = 0; k < np; k++) {
        r->element[2 * k] = old[2 * perm[k]];
        r->element[2 * k + 1] = old[2 * perm[k] + 1];
    }
    free(old);
}

/* What decide.lua answers (its answer(): result reason seat user in_use
 * floating capacity named expires_ms ttl_ms epoch overdraft). */
typedef struct {
    const char *result, *reason, *seat, *user;
    long long in_use, floating, capacity, named, expires_ms, ttl_ms, epoch, overdraft;
} fake_decision;

static redisReply *decision_reply(const fake_decision *f)
{
    return r_flat(12, "result", r_str(f->result), "reason", r_str(f->reason), "seat",
                  r_str(f->seat), "user", r_str(f->user), "in_use", r_int(f->in_use), "floating",
                  r_int(f->floating), "capacity", r_int(f->capacity), "named", r_int(f->named),
                  "expires_ms", r_int(f->expires_ms), "ttl_ms", r_int(f->ttl_ms), "epoch",
                  r_int(f->epoch), "overdraft", r_int(f->overdraft));
}

static redisReply *simple_reply(const char *result, const char *reason, const char *seat,
                                const char *user)
{
    fake_decision f = {.result = result, .reason = reason, .seat = seat, .user = user};
    return decision_reply(&f);
}

static const fake_decision sample = {
    .result = "granted_floating",
    .reason = "floating_seat",
    .seat = "floating",
    .user = "alice",
    .in_use = 3,
    .floating = 10,
    .capacity = 12,
    .named = 5,
    .expires_ms = 1700000000123LL,
    .ttl_ms = 900000,
    .epoch = 7,
    .overdraft = 1,
};

static void check_sample(const sg_decision *d)
{
    assert_int_equal(d->result, SG_GRANTED_FLOATING);
    assert_string_equal(d->reason, "floating_seat");
    assert_int_equal(d->seat, SG_SEAT_FLOATING);
    assert_string_equal(d->user, "alice");
    assert_int_equal(d->in_use, 3);
    assert_int_equal(d->floating, 10);
    assert_int_equal(d->capacity, 12);
    assert_int_equal(d->named, 5);
    assert_int_equal(d->expires_ms, 1700000000123LL);
    assert_int_equal(d->ttl_ms, 900000);
    assert_int_equal(d->epoch, 7);
    assert_int_equal(d->overdraft, 1);
    assert_string_equal(d->err, "");
}

/* ---- SHA-1 (FIPS 180-1), to check the embedded script hashes ---------------------- */

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_hex(const char *msg, size_t len, char out[41])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = ((len + 8) / 64 + 1) * 64;
    unsigned char *m = calloc(total, 1);
    assert_non_null(m);
    memcpy(m, msg, len);
    m[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        m[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 |
                   (uint32_t)m[off + 4 * i + 2] << 8 | (uint32_t)m[off + 4 * i + 3];
        for (int i = 16; i < 80; i++)
            w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) {
                f = (b & c) | (~b & d);
                k = 0x5A827999;
            } else if (i < 40) {
                f = b ^ c ^ d;
                k = 0x6ED9EBA1;
            } else if (i < 60) {
                f = (b & c) | (b & d) | (c & d);
                k = 0x8F1BBCDC;
            } else {
                f = b ^ c ^ d;
                k = 0xCA62C1D6;
            }
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d;
            d = c;
            c = rol(b, 30);
            b = a;
            a = t;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
    }
    free(m);
    for (int i = 0; i < 5; i++)
        snprintf(out + 8 * i, 9, "%08x", h[i]);
}

/* ---- Redis Cluster key slot (CRC16/XMODEM of the hash tag) --------------------------- */

static unsigned crc16(const char *s, size_t n)
{
    unsigned crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (unsigned)(unsigned char)s[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
}

static unsigned keyslot(const char *key)
{
    size_t n = strlen(key);
    const char *l = strchr(key, '{');
    if (l) {
        const char *r = strchr(l + 1, '}');
        if (r && r > l + 1)
            return crc16(l + 1, (size_t)(r - l - 1)) & 16383;
    }
    return crc16(key, n) & 16383;
}

/* ---- files ---------------------------------------------------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (n + 2 > cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        buf[n++] = (char)c;
    }
    fclose(f);
    if (buf == NULL)
        buf = calloc(1, 1);
    else
        buf[n] = '\0';
    assert_non_null(buf);
    return buf;
}

/* lib.lua followed by the script file, as common/embed.sh joins them */
static char *slurp_script(sg_script s)
{
    char *lib = slurp(LIB_LUA), *src = slurp(script_files[s]);
    if (lib == NULL || src == NULL) {
        free(lib);
        free(src);
        return NULL;
    }
    size_t nl = strlen(lib), ns = strlen(src);
    char *all = malloc(nl + ns + 1);
    assert_non_null(all);
    memcpy(all, lib, nl);
    memcpy(all + nl, src, ns + 1);
    free(lib);
    free(src);
    return all;
}

/* ---- keys --------------------------------------------------------------------- */

static void test_keyname_every_key(void **state)
{
    (void)state;
    for (int k = 0; k < SG_K_COUNT; k++) {
        char buf[SG_KEY_MAX], want[SG_KEY_MAX];
        assert_int_equal(sg_keyname((sg_key)k, "technicians", buf, sizeof(buf)), 0);
        snprintf(want, sizeof(want), "sg:{technicians}:%s", key_suffix[k]);
        assert_string_equal(buf, want);
    }
    /* by name, so a reordered enum cannot hide behind the table above */
    static const struct {
        sg_key k;
        const char *want;
    } named[] = {
        {SG_K_CONF, "sg:{p}:conf"},         {SG_K_NAMED, "sg:{p}:named"},
        {SG_K_USERS, "sg:{p}:users"},       {SG_K_LEASES, "sg:{p}:leases"},
        {SG_K_SESS, "sg:{p}:sess"},         {SG_K_SESSIDX, "sg:{p}:sessidx"},
        {SG_K_SESSINFO, "sg:{p}:sessinfo"}, {SG_K_GCOUNT, "sg:{p}:gcount"},
        {SG_K_HG, "sg:{p}:hg"},             {SG_K_FOLD, "sg:{p}:fold"},
        {SG_K_AUDIT, "sg:{p}:audit"},       {SG_K_LASTUSED, "sg:{p}:lastused"},
        {SG_K_STATS, "sg:{p}:stats"},
    };
    assert_int_equal(NELEM(named), SG_K_COUNT);
    for (size_t i = 0; i < NELEM(named); i++) {
        char buf[SG_KEY_MAX];
        assert_int_equal(sg_keyname(named[i].k, "p", buf, sizeof(buf)), 0);
        assert_string_equal(buf, named[i].want);
    }
    char buf[SG_KEY_MAX];
    assert_int_equal(sg_keyname(SG_K_STATS, "change-advanced", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "sg:{change-advanced}:stats");
    /* keys are distinct, and none is a prefix of the mux keys */
    for (int a = 0; a < SG_K_COUNT; a++) {
        assert_string_not_equal(key_suffix[a], "mux");
        for (int b = a + 1; b < SG_K_COUNT; b++)
            assert_string_not_equal(key_suffix[a], key_suffix[b]);
    }
}

static void test_keyname_bounds(void **state)
{
    (void)state;
    char buf[SG_KEY_MAX];
    assert_int_equal(sg_keyname(SG_K_COUNT, "p", buf, sizeof(buf)), -1);
    assert_int_equal(sg_keyname((sg_key)-1, "p", buf, sizeof(buf)), -1);
    assert_int_equal(sg_keyname((sg_key)99, "p", buf, sizeof(buf)), -1);
    /* "sg:{p}:conf" is 11 bytes: 12 fit, 11 do not */
    char small[16];
    memset(small, 'Q', sizeof(small));
    assert_int_equal(sg_keyname(SG_K_CONF, "p", small, 12), 0);
    assert_string_equal(small, "sg:{p}:conf");
    memset(small, 'Q', sizeof(small));
    assert_int_equal(sg_keyname(SG_K_CONF, "p", small, 11), -1);
    assert_int_equal(small[11], 'Q');
    /* "sg:{p}:hg" (the shortest) is 9 bytes */
    memset(small, 'Q', sizeof(small));
    assert_int_equal(sg_keyname(SG_K_HG, "p", small, 10), 0);
    assert_string_equal(small, "sg:{p}:hg");
    assert_int_equal(sg_keyname(SG_K_HG, "p", small, 9), -1);
    /* the longest pool name fits SG_KEY_MAX for every key */
    char pool[SG_POOL_MAX + 1];
    memset(pool, 'p', SG_POOL_MAX);
    pool[SG_POOL_MAX] = '\0';
    for (int k = 0; k < SG_K_COUNT; k++)
        assert_int_equal(sg_keyname((sg_key)k, pool, buf, sizeof(buf)), 0);
}

static void test_key_mux(void **state)
{
    (void)state;
    char buf[SG_KEY_MAX];
    assert_int_equal(sg_key_mux("technicians", "svc-teams", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "sg:{technicians}:mux:svc-teams");
    assert_int_equal(sg_key_mux("technicians", NULL, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "sg:{technicians}:mux:");
    assert_int_equal(sg_key_mux("technicians", "", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "sg:{technicians}:mux:");
    /* the longest pool and identity fit SG_KEY_MAX */
    char pool[SG_POOL_MAX + 1], user[SG_IDENT_MAX + 1];
    memset(pool, 'p', SG_POOL_MAX);
    pool[SG_POOL_MAX] = '\0';
    memset(user, 'u', SG_IDENT_MAX);
    user[SG_IDENT_MAX] = '\0';
    assert_int_equal(sg_key_mux(pool, user, buf, sizeof(buf)), 0);
    assert_int_equal(strlen(buf), strlen("sg:{}:mux:") + SG_POOL_MAX + SG_IDENT_MAX);
    /* "sg:{technicians}:mux:svc" is 24 bytes */
    char small[32];
    assert_int_equal(sg_key_mux("technicians", "svc", small, 20), -1);
    assert_int_equal(sg_key_mux("technicians", "svc", small, 24), -1);
    assert_int_equal(sg_key_mux("technicians", "svc", small, 25), 0);
    assert_string_equal(small, "sg:{technicians}:mux:svc");
}

static void test_decide_keys(void **state)
{
    (void)state;
    /* the keys a decision declares: the ones the decision role may read and
     * write; conf, named, users and audit are addressed by name instead */
    for (int i = 0; i < SG_DECIDE_NKEYS - 1; i++) {
        assert_true((int)sg_decide_keys[i] >= 0 && sg_decide_keys[i] < SG_K_COUNT);
        assert_string_equal(key_suffix[sg_decide_keys[i]], decide_key_suffix[i]);
        assert_int_not_equal(sg_decide_keys[i], SG_K_CONF);
        assert_int_not_equal(sg_decide_keys[i], SG_K_NAMED);
        assert_int_not_equal(sg_decide_keys[i], SG_K_USERS);
        assert_int_not_equal(sg_decide_keys[i], SG_K_AUDIT);
        for (int j = i + 1; j < SG_DECIDE_NKEYS - 1; j++)
            assert_int_not_equal(sg_decide_keys[i], sg_decide_keys[j]);
    }
    assert_int_equal(SG_DECIDE_NKEYS, 10);
}

static void test_keys_share_one_slot(void **state)
{
    (void)state;
    static const char *const pools[] = {"technicians", "p", "change-advanced", "A.b_c-9", "_"};
    /* user names may hold braces; they come after the tag and cannot move the slot */
    static const char *const users[] = {"svc", "a}b:c", "{x}", "}{", "{}", ""};
    for (size_t p = 0; p < NELEM(pools); p++) {
        unsigned slot = keyslot(pools[p]);
        char buf[SG_KEY_MAX];
        for (int k = 0; k < SG_K_COUNT; k++) {
            assert_int_equal(sg_keyname((sg_key)k, pools[p], buf, sizeof(buf)), 0);
            assert_int_equal(keyslot(buf), slot);
        }
        for (size_t u = 0; u < NELEM(users); u++) {
            assert_int_equal(sg_key_mux(pools[p], users[u], buf, sizeof(buf)), 0);
            assert_int_equal(keyslot(buf), slot);
        }
    }
    /* the global keys share the tag {_} */
    static const char *const globals[] = {SG_KEY_POOLS, SG_KEY_USERS, SG_KEY_UVER,
                                          SG_KEY_DISABLED, SG_KEY_SVC, SG_KEY_GROUP_PREFIX "ops"};
    for (size_t g = 0; g < NELEM(globals); g++)
        assert_int_equal(keyslot(globals[g]), keyslot("_"));
    /* sanity of the slot function against the Redis documentation */
    assert_int_equal(crc16("123456789", 9), 0x31C3);
    assert_int_equal(keyslot("{user1000}.following"), keyslot("{user1000}.followers"));
    assert_int_equal(keyslot("foo{}{bar}"), crc16("foo{}{bar}", 10) & 16383);
    assert_int_equal(keyslot("foo{{bar}}zap"), crc16("{bar", 4) & 16383);
}

/* ---- scripts ------------------------------------------------------------------ */

static void test_script_hashes(void **state)
{
    (void)state;
    for (int s = 0; s < SG_SCRIPT_COUNT; s++) {
        const char *body = sg_script_body((sg_script)s);
        const char *sha = sg_script_sha((sg_script)s);
        assert_true(strlen(body) > 0);
        assert_int_equal(strlen(sha), 40);
        assert_int_equal(strspn(sha, "0123456789abcdef"), 40);
        /* EVALSHA only hits when the hash is that of the exact body sent by EVAL */
        char want[41];
        sha1_hex(body, strlen(body), want);
        if (strcmp(want, sha) != 0)
            fail_msg("script %d: embedded sha %s, body hashes to %s", s, sha, want);
        for (int t = s + 1; t < SG_SCRIPT_COUNT; t++)
            assert_string_not_equal(sha, sg_script_sha((sg_script)t));
    }
    assert_string_equal(sg_script_body(SG_SCRIPT_COUNT), "");
    assert_string_equal(sg_script_sha(SG_SCRIPT_COUNT), "");
    assert_string_equal(sg_script_body((sg_script)-1), "");
    assert_string_equal(sg_script_sha((sg_script)-1), "");
    /* the SHA-1 used here, against the FIPS 180 examples */
    char h[41];
    sha1_hex("abc", 3, h);
    assert_string_equal(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
    sha1_hex("", 0, h);
    assert_string_equal(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha1_hex(two, strlen(two), h);
    assert_string_equal(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

static void test_script_bodies_match_sources(void **state)
{
    (void)state;
    /* the embedding is exact: body = lib.lua + the script, and its hash is
     * that of the sources (run from the top directory; skipped elsewhere) */
    int seen = 0;
    for (int s = 0; s < SG_SCRIPT_COUNT; s++) {
        char *src = slurp_script((sg_script)s);
        if (src == NULL)
            continue;
        seen++;
        if (strcmp(src, sg_script_body((sg_script)s)) != 0)
            fail_msg("lib.lua + %s differs from the embedded body", script_files[s]);
        char want[41];
        sha1_hex(src, strlen(src), want);
        if (strcmp(want, sg_script_sha((sg_script)s)) != 0)
            fail_msg("lib.lua + %s hashes to %s, embedded sha is %s", script_files[s], want,
                     sg_script_sha((sg_script)s));
        free(src);
    }
    if (seen == 0)
        skip();
    assert_int_equal(seen, SG_SCRIPT_COUNT);
}

/* The largest n of KEYS[n] in s, -1 if none; fails on an index that is not
 * a decimal literal from 1. */
static long max_keys_index(const char *s, const char *what)
{
    long max = -1;
    for (const char *p = strstr(s, "KEYS["); p; p = strstr(p + 1, "KEYS[")) {
        const char *q = p + 5;
        char *end;
        long n = strtol(q, &end, 10);
        if (end == q || *end != ']' || n < 1)
            fail_msg("%s: KEYS index is not a literal from 1: %.20s", what, p);
        if (n > max)
            max = n;
    }
    return max;
}

static void test_script_bodies_start_with_lib(void **state)
{
    (void)state;
    char *lib = slurp(LIB_LUA);
    if (lib == NULL)
        skip();
    size_t nlib = strlen(lib);
    assert_true(nlib > 0);
    /* the library reads ARGV as name/value pairs, once, for every script */
    assert_non_null(strstr(lib, "A[ARGV[i]] = ARGV[i + 1]"));
    assert_non_null(strstr(lib, "'sg:{' .. POOL .. '}:' .. name"));
    for (int s = 0; s < SG_SCRIPT_COUNT; s++) {
        const char *body = sg_script_body((sg_script)s);
        if (strncmp(body, lib, nlib) != 0)
            fail_msg("%s: the embedded body does not start with lib.lua", script_files[s]);
        assert_true(strlen(body) > nlib);
    }
    /* decide and release declare SG_DECIDE_NKEYS keys: no script reads past
     * them, and decide reads the mux key (the last one) */
    static const sg_script dr[] = {SG_SCRIPT_DECIDE, SG_SCRIPT_RELEASE};
    for (size_t i = 0; i < NELEM(dr); i++) {
        const char *body = sg_script_body(dr[i]);
        long max = max_keys_index(body, script_files[dr[i]]);
        if (max > SG_DECIDE_NKEYS)
            fail_msg("%s reads KEYS[%ld], past the %d keys it is given", script_files[dr[i]],
                     max, SG_DECIDE_NKEYS);
        /* positional arguments are gone: the scripts read A, not ARGV */
        if (strstr(body + nlib, "ARGV[") != NULL)
            fail_msg("%s reads ARGV by position", script_files[dr[i]]);
    }
    assert_int_equal(max_keys_index(sg_script_body(SG_SCRIPT_DECIDE), "decide"),
                     SG_DECIDE_NKEYS);
    assert_non_null(strstr(sg_script_body(SG_SCRIPT_DECIDE), "KEYS[10]"));
    free(lib);
}

static int ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static int in_list(const char *name, size_t n, const char *const *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(list[i]) == n && strncmp(list[i], name, n) == 0)
            return 1;
    return 0;
}

/* "A.<name>" as a Lua expression (not the tail of another identifier) */
static int reads_arg(const char *body, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(body, "A."); p; p = strstr(p + 1, "A.")) {
        if (p > body && ident_char(p[-1]))
            continue;
        if (strncmp(p + 2, name, n) == 0 && !ident_char(p[2 + n]))
            return 1;
    }
    return 0;
}

/* every A.<name> in part is one of names */
static void check_args_known(const char *part, const char *const *names, size_t count,
                             const char *what)
{
    for (const char *p = strstr(part, "A."); p; p = strstr(p + 1, "A.")) {
        if (p > part && ident_char(p[-1]))
            continue;
        size_t n = 0;
        while (ident_char(p[2 + n]))
            n++;
        if (n == 0)
            continue;
        if (!in_list(p + 2, n, names, count))
            fail_msg("%s reads A.%.*s, which the C side never sends", what, (int)n, p + 2);
    }
}

static void test_script_names_agree(void **state)
{
    (void)state;
    /* the names the builders send are the names the scripts read */
    const char *decide = sg_script_body(SG_SCRIPT_DECIDE);
    const char *release = sg_script_body(SG_SCRIPT_RELEASE);
    for (size_t i = 0; i < NELEM(decide_arg_names); i++)
        if (!reads_arg(decide, decide_arg_names[i]))
            fail_msg("decide.lua never reads A.%s", decide_arg_names[i]);
    for (size_t i = 0; i < NELEM(release_arg_names); i++)
        if (!reads_arg(release, release_arg_names[i]))
            fail_msg("release.lua never reads A.%s", release_arg_names[i]);
    assert_false(reads_arg(decide, "ttl"));
    assert_false(reads_arg("DATA.user", "user"));

    char *lib = slurp(LIB_LUA);
    if (lib != NULL) {
        size_t nlib = strlen(lib);
        assert_int_equal(strncmp(decide, lib, nlib), 0);
        assert_int_equal(strncmp(release, lib, nlib), 0);
        check_args_known(decide + nlib, decide_arg_names, NELEM(decide_arg_names), "decide.lua");
        check_args_known(release + nlib, release_arg_names, NELEM(release_arg_names),
                         "release.lua");
        free(lib);
    }

    /* every key a script addresses by name is one of the schema's */
    for (int s = 0; s < SG_SCRIPT_COUNT; s++) {
        const char *body = sg_script_body((sg_script)s);
        for (const char *p = strstr(body, "K('"); p; p = strstr(p + 1, "K('")) {
            if (p > body && ident_char(p[-1]))
                continue;
            const char *q = strchr(p + 3, '\'');
            assert_non_null(q);
            if (!in_list(p + 3, (size_t)(q - p - 3), key_suffix, SG_K_COUNT))
                fail_msg("%s addresses K('%.*s'), not a key of the schema", script_files[s],
                         (int)(q - p - 3), p + 3);
        }
    }

    /* the reply names the parsers read are the names the scripts answer with */
    for (size_t i = 0; i < NELEM(decision_str_names); i++) {
        char pat[64];
        snprintf(pat, sizeof(pat), "%s = ", decision_str_names[i]);
        if (strstr(decide, pat) == NULL)
            fail_msg("decide.lua never answers %s", decision_str_names[i]);
    }
    for (size_t i = 0; i < NELEM(decision_num_names); i++) {
        char pat[64];
        snprintf(pat, sizeof(pat), "%s = ", decision_num_names[i]);
        if (strstr(decide, pat) == NULL)
            fail_msg("decide.lua never answers %s", decision_num_names[i]);
    }
    assert_non_null(strstr(release, "reply({sessions = "));
    assert_non_null(strstr(release, "seat = "));
}
