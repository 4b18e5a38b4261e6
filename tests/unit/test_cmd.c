/* Unit tests: key schema, decision/release commands, reply parsing (common/core.c)
 * and the embedded scripts (build/gen/scripts.c). No Redis server is needed:
 * replies are built by hand.
 *
 * The script boundary is named: a decision or release declares 10 keys
 * (sg_decide_keys, then the mux key) and passes name/value pairs in ARGV,
 * leaving out the optional ones that are empty or 0;
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
#include "../fake_reply.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* enum sg_key order */
static const char *const key_suffix[SG_K_COUNT] = {
    "conf",   "named", "users", "leases", "sess",     "sessidx", "sessinfo",
    "gcount", "hg",    "fold",  "audit",  "lastused", "stats", "epoch",
};

/* what a decision and a release declare, in order, before the mux key */
static const char *const decide_key_suffix[SG_DECIDE_NKEYS - 1] = {
    "leases", "sess", "sessidx", "sessinfo", "gcount", "hg", "fold", "lastused", "stats",
};

/* the named arguments, in the order the builders send them (the optional
 * ones only when set) */
static const char *const decide_arg_names[] = {
    "op",      "pool",  "user", "via", "obo",    "feature",
    "session", "lease", "host", "pid", "pstart", "client",
};
static const char *const release_arg_names[] = {"pool", "user", "via", "session", "host"};

/* the names sg_decision_parse reads */
static const char *const decision_str_names[] = {"result", "reason", "seat", "user"};
static const char *const decision_num_names[] = {
    "in_use", "floating", "capacity", "named", "expires_ms", "ttl_ms", "overdraft",
};

/* Makefile LUA order = enum sg_script order */
static const char *const script_files[SG_SCRIPT_COUNT] = {
    "common/lua/decide.lua",      "common/lua/release.lua", "common/lua/pool_commit.lua",
    "common/lua/pool_delete.lua", "common/lua/assign.lua",  "common/lua/user_put.lua",
    "common/lua/user_apply.lua",  "common/lua/fsck.lua",    "common/lua/usage.lua",
    "common/lua/scim.lua",
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
 * floating capacity named expires_ms ttl_ms overdraft). */
typedef struct {
    const char *result, *reason, *seat, *user;
    long long in_use, floating, capacity, named, expires_ms, ttl_ms, overdraft;
} fake_decision;

static redisReply *decision_reply(const fake_decision *f)
{
    return r_flat(11, "result", r_str(f->result), "reason", r_str(f->reason), "seat",
                  r_str(f->seat), "user", r_str(f->user), "in_use", r_int(f->in_use), "floating",
                  r_int(f->floating), "capacity", r_int(f->capacity), "named", r_int(f->named),
                  "expires_ms", r_int(f->expires_ms), "ttl_ms", r_int(f->ttl_ms),
                  "overdraft", r_int(f->overdraft));
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
        {SG_K_CONF, "sg:{p}:conf"},
        {SG_K_NAMED, "sg:{p}:named"},
        {SG_K_USERS, "sg:{p}:users"},
        {SG_K_LEASES, "sg:{p}:leases"},
        {SG_K_SESS, "sg:{p}:sess"},
        {SG_K_SESSIDX, "sg:{p}:sessidx"},
        {SG_K_SESSINFO, "sg:{p}:sessinfo"},
        {SG_K_GCOUNT, "sg:{p}:gcount"},
        {SG_K_HG, "sg:{p}:hg"},
        {SG_K_FOLD, "sg:{p}:fold"},
        {SG_K_AUDIT, "sg:{p}:audit"},
        {SG_K_LASTUSED, "sg:{p}:lastused"},
        {SG_K_STATS, "sg:{p}:stats"},
        {SG_K_EPOCH, "sg:{p}:epoch"},
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
    static const char *const globals[] = {SG_KEY_POOLS,    SG_KEY_USERS, SG_KEY_UVER,
                                          SG_KEY_DISABLED, SG_KEY_SVC,   SG_KEY_GROUP_PREFIX "ops"};
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
    assert_non_null(strstr(lib, "A[argv[i]] = argv[i + 1]"));
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
            fail_msg("%s reads KEYS[%ld], past the %d keys it is given", script_files[dr[i]], max,
                     SG_DECIDE_NKEYS);
        /* positional arguments are gone: the scripts read A, not ARGV */
        if (strstr(body + nlib, "ARGV[") != NULL)
            fail_msg("%s reads ARGV by position", script_files[dr[i]]);
    }
    assert_int_equal(max_keys_index(sg_script_body(SG_SCRIPT_DECIDE), "decide"), SG_DECIDE_NKEYS);
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
            /* the usage records: one key per day, "ua:" .. day and the like */
            static const char *const per_day[] = {"ua:", "uc:", "um:"};
            if (!in_list(p + 3, (size_t)(q - p - 3), key_suffix, SG_K_COUNT) &&
                !in_list(p + 3, (size_t)(q - p - 3), per_day, NELEM(per_day)))
                fail_msg("%s addresses K('%.*s'), not a key of the schema", script_files[s],
                         (int)(q - p - 3), p + 3);
        }
    }

    /* the reply names the parsers read are the names the scripts answer with */
    for (size_t i = 0; i < NELEM(decision_str_names); i++) {
        char pat[64], pat2[64];
        snprintf(pat, sizeof(pat), "%s = ", decision_str_names[i]);
        snprintf(pat2, sizeof(pat2), "'%s', ", decision_str_names[i]);
        if (strstr(decide, pat) == NULL && strstr(decide, pat2) == NULL)
            fail_msg("decide.lua never answers %s", decision_str_names[i]);
    }
    for (size_t i = 0; i < NELEM(decision_num_names); i++) {
        char pat[64], pat2[64];
        snprintf(pat, sizeof(pat), "%s = ", decision_num_names[i]);
        snprintf(pat2, sizeof(pat2), "'%s', ", decision_num_names[i]);
        if (strstr(decide, pat) == NULL && strstr(decide, pat2) == NULL)
            fail_msg("decide.lua never answers %s", decision_num_names[i]);
    }
    assert_non_null(strstr(release, "reply({sessions = "));
    assert_non_null(strstr(release, "seat = "));
}

/* ---- sg_decide_cmd --------------------------------------------------------------- */

/* the first named argument after the keys */
#define ARGS_AT (3 + SG_DECIDE_NKEYS)

/* The value that follows name in the arguments after the keys, or NULL. */
static const char *arg_value(const sg_cmd *cmd, const char *name)
{
    for (int i = ARGS_AT; i + 1 < cmd->argc; i += 2)
        if (strcmp(cmd->argv[i], name) == 0)
            return cmd->argv[i + 1];
    return NULL;
}

static void check_arg(const sg_cmd *cmd, const char *name, const char *want)
{
    const char *got = arg_value(cmd, name);
    if (got == NULL)
        fail_msg("no argument named %s", name);
    if (strcmp(got, want) != 0)
        fail_msg("argument %s is '%s', want '%s'", name, got, want);
}

static void check_argv_lengths(const sg_cmd *cmd)
{
    assert_true(cmd->argc >= 3 && cmd->argc <= SG_CMD_ARGS);
    for (int i = 0; i < cmd->argc; i++) {
        assert_non_null(cmd->argv[i]);
        assert_int_equal(cmd->argvlen[i], strlen(cmd->argv[i]));
    }
    /* everything after the script is copied into the command's own buffer */
    for (int i = 2; i < cmd->argc; i++) {
        assert_true(cmd->argv[i] >= cmd->buf);
        assert_true(cmd->argv[i] + cmd->argvlen[i] < cmd->buf + cmd->used);
    }
    assert_true(cmd->used <= sizeof(cmd->buf));
}

/* The script part: EVALSHA <sha> or EVAL <body>, then the key count. */
static void check_script(const sg_cmd *cmd, sg_script s, int use_eval)
{
    if (use_eval) {
        assert_string_equal(cmd->argv[0], "EVAL");
        assert_ptr_equal(cmd->argv[1], sg_script_body(s));
        assert_int_equal(cmd->argvlen[1], strlen(sg_script_body(s)));
    } else {
        assert_string_equal(cmd->argv[0], "EVALSHA");
        assert_string_equal(cmd->argv[1], sg_script_sha(s));
        assert_int_equal(cmd->argvlen[1], 40);
    }
    assert_string_equal(cmd->argv[2], "10");
}

/* The 10 keys: the pool's sg_decide_keys, then the mux key of sa. */
static void check_keys(const sg_cmd *cmd, const char *pool, const char *sa)
{
    char prefix[SG_KEY_MAX], want[2 * SG_KEY_MAX];
    snprintf(prefix, sizeof(prefix), "sg:{%s}:", pool);
    assert_true(cmd->argc >= ARGS_AT);
    for (int k = 0; k < SG_DECIDE_NKEYS - 1; k++) {
        snprintf(want, sizeof(want), "%s%s", prefix, decide_key_suffix[k]);
        assert_string_equal(cmd->argv[3 + k], want);
        char kn[SG_KEY_MAX];
        assert_int_equal(sg_keyname(sg_decide_keys[k], pool, kn, sizeof(kn)), 0);
        assert_string_equal(cmd->argv[3 + k], kn);
    }
    snprintf(want, sizeof(want), "%smux:%s", prefix, sa);
    assert_string_equal(cmd->argv[3 + SG_DECIDE_NKEYS - 1], want);
    unsigned slot = keyslot(pool);
    for (int k = 0; k < SG_DECIDE_NKEYS; k++) {
        assert_int_equal(strncmp(cmd->argv[3 + k], prefix, strlen(prefix)), 0);
        assert_int_equal(keyslot(cmd->argv[3 + k]), slot);
    }
}

/* The named arguments, exactly: names in order, each once, with these values. */
static void check_args(const sg_cmd *cmd, const char *const *names, const char *const *values,
                       size_t n)
{
    assert_int_equal(cmd->argc, ARGS_AT + 2 * (int)n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(cmd->argv[ARGS_AT + 2 * i], names[i]);
        if (strcmp(cmd->argv[ARGS_AT + 2 * i + 1], values[i]) != 0)
            fail_msg("argument %s is '%s', want '%s'", names[i], cmd->argv[ARGS_AT + 2 * i + 1],
                     values[i]);
        check_arg(cmd, names[i], values[i]);
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(cmd->argv[ARGS_AT + 2 * i], cmd->argv[ARGS_AT + 2 * j]);
    }
}

/* A decision's named arguments as alternating name, value (n pairs): these
 * exactly, in the builder's order. */
static void check_pairs(const sg_cmd *cmd, const char *const *nv, size_t n)
{
    const char *names[16], *values[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        names[i] = nv[2 * i];
        values[i] = nv[2 * i + 1];
    }
    check_args(cmd, names, values, n);
    size_t at = 0;
    for (size_t i = 0; i < n; i++, at++) {
        while (at < NELEM(decide_arg_names) && strcmp(decide_arg_names[at], names[i]) != 0)
            at++;
        if (at == NELEM(decide_arg_names))
            fail_msg("argument %s unknown or out of order", names[i]);
    }
}

static sg_request full_request(void)
{
    sg_request rq = {
        .op = SG_OP_ACQUIRE,
        .pool = "technicians",
        .user = "alice",
        .on_behalf_of = NULL,
        .feature = "cmdb",
        .session = "tty1-4242",
        .via = "pam",
        .host = "jump1.example.com",
        .client = "10.0.0.9",
        .pid = 4242,
        .pstart = 987654321ULL,
        .ttl_s = 600,
    };
    return rq;
}

static void test_arg_value_helper(void **state)
{
    (void)state;
    /* the helper reads names only at name positions, after the keys */
    sg_request rq = full_request();
    rq.user = "pool"; /* a value equal to a name is not a name */
    rq.feature = "user";
    sg_cmd cmd;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_arg(&cmd, "pool", "technicians");
    check_arg(&cmd, "user", "pool");
    check_arg(&cmd, "feature", "user");
    assert_null(arg_value(&cmd, "technicians"));
    assert_null(arg_value(&cmd, "sg:{technicians}:leases"));
    assert_null(arg_value(&cmd, "10"));
    assert_null(arg_value(&cmd, "ttl"));
}

static void test_decide_cmd_evalsha(void **state)
{
    (void)state;
    sg_request rq = full_request();
    char err[SG_ERR_MAX];
    assert_int_equal(sg_request_validate(&rq, err, sizeof(err)), 0);
    sg_cmd cmd;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    assert_int_equal(cmd.argc, 3 + 10 + 2 * 11);
    check_argv_lengths(&cmd);
    check_script(&cmd, SG_SCRIPT_DECIDE, 0);
    check_keys(&cmd, "technicians", "");
    static const char *const want[] = {
        "op",      "acquire",   "pool",   "technicians",       "user", "alice",
        "via",     "pam",       "feature", "cmdb",             "session", "tty1-4242",
        "lease",   "600",       "host",   "jump1.example.com", "pid",  "4242",
        "pstart",  "987654321", "client", "10.0.0.9",
    };
    check_pairs(&cmd, want, NELEM(want) / 2);
    assert_null(arg_value(&cmd, "obo")); /* none: left out */
}

static void test_decide_cmd_check_and_defaults(void **state)
{
    (void)state;
    /* absent strings and zero numbers are left out; via defaults to cli */
    sg_request rq = {.op = SG_OP_CHECK, .pool = "p", .user = "bob"};
    sg_cmd cmd;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    assert_int_equal(cmd.argc, 3 + 10 + 2 * 4);
    check_argv_lengths(&cmd);
    check_script(&cmd, SG_SCRIPT_DECIDE, 0);
    check_keys(&cmd, "p", "");
    static const char *const want[] = {"op", "check", "pool", "p", "user", "bob", "via", "cli"};
    check_pairs(&cmd, want, NELEM(want) / 2);
    /* "" strings are left out like NULL ones */
    rq.on_behalf_of = "";
    rq.feature = "";
    rq.session = "";
    rq.host = "";
    rq.client = "";
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_keys(&cmd, "p", "");
    check_pairs(&cmd, want, NELEM(want) / 2);
    /* any op but acquire is a check */
    rq.op = SG_OP_ACQUIRE;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_arg(&cmd, "op", "acquire");
    rq.op = SG_OP_CHECK;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_arg(&cmd, "op", "check");
}

static void test_decide_cmd_numbers(void **state)
{
    (void)state;
    sg_request rq = full_request();
    sg_cmd cmd;
    rq.ttl_s = 365L * 86400;
    rq.pid = 2147483647L;
    rq.pstart = 9223372036854775807ULL;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_arg(&cmd, "lease", "31536000");
    check_arg(&cmd, "pid", "2147483647");
    check_arg(&cmd, "pstart", "9223372036854775807");
    rq.ttl_s = 1;
    rq.pid = 1;
    rq.pstart = 1;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_arg(&cmd, "lease", "1");
    check_arg(&cmd, "pid", "1");
    check_arg(&cmd, "pstart", "1");
    rq.ttl_s = 0;
    rq.pid = 0;
    rq.pstart = 0;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    assert_null(arg_value(&cmd, "lease")); /* absent: the pool's idle timeout */
    assert_null(arg_value(&cmd, "pid"));
    assert_null(arg_value(&cmd, "pstart"));
    rq.pid = -5; /* no process: never sent */
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    assert_null(arg_value(&cmd, "pid"));
    check_argv_lengths(&cmd);
}

static void test_decide_cmd_on_behalf_of(void **state)
{
    (void)state;
    /* the multiplexing key is the service account's */
    sg_request rq = {
        .op = SG_OP_ACQUIRE,
        .pool = "technicians",
        .user = "svc-teams",
        .on_behalf_of = "carol",
        .via = "nginx",
        .host = "web1",
        .client = "192.0.2.1",
    };
    sg_cmd cmd;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_argv_lengths(&cmd);
    check_keys(&cmd, "technicians", "svc-teams");
    static const char *const want[] = {"op",   "acquire",   "pool", "technicians",
                                       "user", "svc-teams", "via",  "nginx",
                                       "obo",  "carol",     "host", "web1",
                                       "client", "192.0.2.1"};
    check_pairs(&cmd, want, NELEM(want) / 2);
    /* an empty on-behalf-of is no on-behalf-of: the mux key of nobody */
    rq.on_behalf_of = "";
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_keys(&cmd, "technicians", "");
    assert_null(arg_value(&cmd, "obo"));
    rq.on_behalf_of = NULL;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_keys(&cmd, "technicians", "");
    assert_null(arg_value(&cmd, "obo"));
    /* a service account whose name holds braces keeps the pool's slot */
    rq.user = "{svc}";
    rq.on_behalf_of = "carol";
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_keys(&cmd, "technicians", "{svc}");
    check_arg(&cmd, "user", "{svc}");
}

static void test_decide_cmd_eval_fallback(void **state)
{
    (void)state;
    sg_request rq = full_request();
    sg_cmd sha, ev;
    assert_int_equal(sg_decide_cmd(&rq, 0, &sha), 0);
    assert_int_equal(sg_decide_cmd(&rq, 1, &ev), 0);
    check_argv_lengths(&ev);
    check_script(&ev, SG_SCRIPT_DECIDE, 1);
    assert_non_null(strstr(ev.argv[1], "redis.call"));
    /* the whole body: the library, then decide */
    assert_non_null(strstr(ev.argv[1], "A[argv[i]] = argv[i + 1]"));
    assert_non_null(strstr(ev.argv[1], "-- decide:"));
    assert_int_equal(ev.argc, sha.argc);
    for (int i = 2; i < ev.argc; i++) {
        assert_int_equal(ev.argvlen[i], sha.argvlen[i]);
        assert_memory_equal(ev.argv[i], sha.argv[i], sha.argvlen[i]);
    }
    /* the body is not copied: the buffer holds the same as for EVALSHA */
    assert_int_equal(ev.used, sha.used);
}

/* MOVED/ASK as both Redis clients read them */
static void test_cluster_redirect(void **state)
{
    (void)state;
    int ask = -1, slot = -1, port = -1;
    char host[64];
    assert_int_equal(sg_cluster_redirect("MOVED 3999 127.0.0.1:6381", &ask, &slot, host,
                                         sizeof(host), &port), 0);
    assert_int_equal(ask, 0);
    assert_int_equal(slot, 3999);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6381);
    assert_int_equal(sg_cluster_redirect("ASK 16383 ::1:7000", &ask, &slot, host, sizeof(host),
                                         &port), 0);
    assert_int_equal(ask, 1);
    assert_int_equal(slot, 16383);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 7000);
    static const char *const bad[] = {
        "MOVED", "MOVED 1", "MOVED x 1.2.3.4:5", "MOVED 16384 1.2.3.4:5", "MOVED -1 1.2.3.4:5",
        "MOVED 1 :6379", "MOVED 1 1.2.3.4", "MOVED 1 1.2.3.4:0", "MOVED 1 1.2.3.4:65536",
        "MOVED 1 1.2.3.4:6379x", "MOVEDX 1 1.2.3.4:5", "TRYAGAIN later", "ERR x", ""};
    for (size_t i = 0; i < NELEM(bad); i++)
        if (sg_cluster_redirect(bad[i], &ask, &slot, host, sizeof(host), &port) == 0)
            fail_msg("'%s' read as a redirect", bad[i]);
    char tiny[4];
    assert_int_equal(sg_cluster_redirect("MOVED 1 10.0.0.1:5", &ask, &slot, tiny, sizeof(tiny),
                                         &port), -1);
    assert_int_equal(sg_cluster_redirect(NULL, &ask, &slot, host, sizeof(host), &port), -1);
}

/* the slot a command goes to: its first key (a script's first KEYS, a
 * stream read's first stream), none for commands without keys */
static void test_cmd_slot(void **state)
{
    (void)state;
    int pool = sg_pool_slot("tech");
    const char *get[] = {"HGET", "sg:{tech}:conf", "hot"};
    assert_int_equal(sg_cmd_slot(3, get, NULL), pool);
    const char *fc[] = {"FCALL", "sg_x_decide", "1", "sg:{tech}:leases", "op"};
    assert_int_equal(sg_cmd_slot(5, fc, NULL), pool);
    const char *fc0[] = {"FCALL", "sg_x_decide", "0", "op"};
    assert_int_equal(sg_cmd_slot(4, fc0, NULL), -1);
    const char *xr[] = {"XREAD", "BLOCK", "1000", "COUNT", "10", "STREAMS", "sg:{tech}:audit",
                        "$"};
    assert_int_equal(sg_cmd_slot(8, xr, NULL), pool);
    const char *xr_bad[] = {"XREAD", "BLOCK", "1000"};
    assert_int_equal(sg_cmd_slot(3, xr_bad, NULL), -1);
    const char *ping[] = {"PING"};
    assert_int_equal(sg_cmd_slot(1, ping, NULL), -1);
}

static redisReply *range(long long lo, long long hi, const char *host, long long port)
{
    redisReply *e = fake_array(3), *m = fake_array(2);
    e->element[0] = fake_int(lo);
    e->element[1] = fake_int(hi);
    m->element[0] = fake_text(REDIS_REPLY_STRING, host);
    m->element[1] = fake_int(port);
    e->element[2] = m;
    return e;
}

struct ranges {
    char seen[512];
};

static void note_range(void *ud, int lo, int hi, const char *host, size_t hostlen, int port)
{
    struct ranges *x = ud;
    size_t k = strlen(x->seen);
    snprintf(x->seen + k, sizeof(x->seen) - k, "%d-%d %.*s:%d;", lo, hi, (int)hostlen, host,
             port);
}

static void test_cluster_slots_each(void **state)
{
    (void)state;
    redisReply *r = fake_array(5);
    r->element[0] = range(0, 5460, "10.0.0.1", 7000);
    r->element[1] = range(5461, 10922, "", 7001);      /* the node that answered */
    r->element[2] = range(10923, 20000, "10.0.0.3", 7002); /* clipped to the slots */
    r->element[3] = range(1, 2, "10.0.0.4", 0);         /* no port: skipped */
    r->element[4] = fake_text(REDIS_REPLY_STRING, "junk");                       /* not a range: skipped */
    struct ranges x = {""};
    assert_int_equal(sg_cluster_slots_each(r, note_range, &x), 0);
    assert_string_equal(x.seen, "0-5460 10.0.0.1:7000;5461-10922 :7001;10923-16383 10.0.0.3:7002;");
    freeReplyObject(r);
    redisReply *e = fake_text(REDIS_REPLY_ERROR, "ERR no cluster");
    assert_int_equal(sg_cluster_slots_each(e, note_range, &x), -1);
    freeReplyObject(e);
    assert_int_equal(sg_cluster_slots_each(NULL, note_range, &x), -1);
}

/* FCALL: the same keys and arguments, the function named after the sources */
static void test_decide_cmd_fcall(void **state)
{
    (void)state;
    sg_request rq = full_request();
    sg_cmd sha, fc;
    assert_int_equal(sg_decide_cmd(&rq, SG_CALL_EVALSHA, &sha), 0);
    assert_int_equal(sg_decide_cmd(&rq, SG_CALL_FCALL, &fc), 0);
    check_argv_lengths(&fc);
    assert_string_equal(fc.argv[0], "FCALL");
    assert_string_equal(fc.argv[1], sg_script_fname(SG_SCRIPT_DECIDE));
    assert_int_equal(fc.argc, sha.argc);
    for (int i = 2; i < fc.argc; i++) {
        assert_int_equal(fc.argvlen[i], sha.argvlen[i]);
        assert_memory_equal(fc.argv[i], sha.argv[i], sha.argvlen[i]);
    }
    /* the library: named after the same hash as its functions, one
     * function per script, each beginning its call with begin() */
    const char *lib = sg_library_body(), *name = sg_library_name();
    assert_true(strncmp(name, "seatgate_", 9) == 0 && strlen(name) == 21);
    char head[64];
    snprintf(head, sizeof(head), "#!lua name=%s\n", name);
    assert_true(strncmp(lib, head, strlen(head)) == 0);
    for (int s = 0; s < SG_SCRIPT_COUNT; s++) {
        const char *f = sg_script_fname((sg_script)s);
        assert_true(strncmp(f, "sg_", 3) == 0 && strncmp(f + 3, name + 9, 12) == 0);
        char reg[128];
        snprintf(reg, sizeof(reg), "redis.register_function('%s', function(KEYS, ARGV)\nbegin(ARGV)\n",
                 f);
        if (strstr(lib, reg) == NULL)
            fail_msg("the library does not register %s", f);
        for (int t = 0; t < s; t++)
            assert_string_not_equal(f, sg_script_fname((sg_script)t));
    }
    assert_string_equal(sg_script_fname(SG_SCRIPT_COUNT), "");
}

/* FCALL -> EVALSHA when the library is missing (not loaded, Redis 6, an
 * ACL without +fcall), EVALSHA -> EVAL on NOSCRIPT; anything else stops */
static void test_script_call_ladder(void **state)
{
    (void)state;
    assert_int_equal(sg_script_call_first(), SG_CALL_FCALL);
    static const char *const missing[] = {
        "ERR Function not found",
        "ERR unknown command 'FCALL', with args beginning with: 'sg_x_decide' ",
        "NOPERM User seatgate-decide has no permissions to run the 'fcall' command"};
    for (size_t i = 0; i < NELEM(missing); i++) {
        redisReply *r = fake_text(REDIS_REPLY_ERROR, missing[i]);
        assert_int_equal(sg_script_call_next(r, SG_CALL_FCALL), SG_CALL_EVALSHA);
        assert_int_equal(sg_script_call_next(r, SG_CALL_EVALSHA), -1);
        freeReplyObject(r);
    }
    redisReply *ns = fake_text(REDIS_REPLY_ERROR, "NOSCRIPT No matching script. Please use EVAL.");
    assert_int_equal(sg_script_call_next(ns, SG_CALL_EVALSHA), SG_CALL_EVAL);
    assert_int_equal(sg_script_call_next(ns, SG_CALL_EVAL), -1);
    assert_int_equal(sg_script_call_next(ns, SG_CALL_FCALL), -1);
    freeReplyObject(ns);
    static const char *const other[] = {
        "ERR user_function:12: Script attempted to access nonexistent global variable 'x'",
        "NOPERM No permissions to access a key", "READONLY You can't write against a replica."};
    for (size_t i = 0; i < NELEM(other); i++) {
        redisReply *r = fake_text(REDIS_REPLY_ERROR, other[i]);
        assert_int_equal(sg_script_call_next(r, SG_CALL_FCALL), -1);
        assert_int_equal(sg_script_call_next(r, SG_CALL_EVALSHA), -1);
        freeReplyObject(r);
    }
    assert_int_equal(sg_script_call_next(NULL, SG_CALL_FCALL), -1);
    /* after a miss, calls start at EVALSHA (for a while) */
    assert_int_equal(sg_script_call_first(), SG_CALL_EVALSHA);
}

static void test_decide_cmd_copies_inputs(void **state)
{
    (void)state;
    /* the command owns its strings: the request may go once it is built */
    char *user = strdup("alice"), *sess = strdup("tty9"), *host = strdup("jump2");
    assert_non_null(user);
    assert_non_null(sess);
    assert_non_null(host);
    sg_request rq = full_request();
    rq.user = user;
    rq.session = sess;
    rq.host = host;
    sg_cmd cmd;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    memset(user, 'X', strlen(user));
    memset(sess, 'X', strlen(sess));
    memset(host, 'X', strlen(host));
    free(user);
    free(sess);
    free(host);
    check_arg(&cmd, "user", "alice");
    check_arg(&cmd, "session", "tty9");
    check_arg(&cmd, "host", "jump2");
    check_argv_lengths(&cmd);
}

static void test_decide_cmd_reuse(void **state)
{
    (void)state;
    /* building into a used command starts over */
    sg_request rq = full_request();
    rq.on_behalf_of = "carol";
    sg_cmd cmd;
    assert_int_equal(sg_decide_cmd(&rq, 1, &cmd), 0);
    size_t used = cmd.used;
    assert_int_equal(sg_release_cmd("p", "bob", NULL, NULL, NULL, 0, &cmd), 0);
    assert_int_equal(cmd.argc, ARGS_AT + 2 * 3);
    assert_true(cmd.used < used);
    check_script(&cmd, SG_SCRIPT_RELEASE, 0);
    check_keys(&cmd, "p", "");
    rq = (sg_request){.op = SG_OP_CHECK, .pool = "q", .user = "dan"};
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    assert_int_equal(cmd.argc, ARGS_AT + 2 * 4);
    check_script(&cmd, SG_SCRIPT_DECIDE, 0);
    check_keys(&cmd, "q", "");
    check_arg(&cmd, "user", "dan");
    assert_null(arg_value(&cmd, "feature"));
    check_argv_lengths(&cmd);
}

static void test_decide_cmd_longest_inputs(void **state)
{
    (void)state;
    /* every field at its limit still fits the command buffer */
    char pool[SG_POOL_MAX + 1], feat[SG_POOL_MAX + 1], user[SG_IDENT_MAX + 1],
        obo[SG_IDENT_MAX + 1], sess[SG_IDENT_MAX + 1], host[256];
    memset(pool, 'p', SG_POOL_MAX);
    pool[SG_POOL_MAX] = '\0';
    memset(feat, 'f', SG_POOL_MAX);
    feat[SG_POOL_MAX] = '\0';
    memset(user, 'u', SG_IDENT_MAX);
    user[SG_IDENT_MAX] = '\0';
    memset(obo, 'o', SG_IDENT_MAX);
    obo[SG_IDENT_MAX] = '\0';
    memset(sess, 's', SG_IDENT_MAX);
    sess[SG_IDENT_MAX] = '\0';
    memset(host, 'h', 255);
    host[255] = '\0';
    sg_request rq = {
        .op = SG_OP_ACQUIRE,
        .pool = pool,
        .user = user,
        .on_behalf_of = obo,
        .feature = feat,
        .session = sess,
        .via = "nginx",
        .host = host,
        .client = "2001:db8::1234:5678:9abc:def0",
        .pid = 2147483647L,
        .pstart = 18446744073709551ULL,
        .ttl_s = 365L * 86400,
    };
    char err[SG_ERR_MAX];
    assert_int_equal(sg_request_validate(&rq, err, sizeof(err)), 0);
    static sg_cmd cmd;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_argv_lengths(&cmd);
    check_keys(&cmd, pool, user);
    const char *want[] = {"op",      "acquire", "pool",    pool,
                          "user",    user,      "via",     "nginx",
                          "obo",     obo,       "feature", feat,
                          "session", sess,      "lease",   "31536000",
                          "host",    host,      "pid",     "2147483647",
                          "pstart",  "18446744073709551",
                          "client",  "2001:db8::1234:5678:9abc:def0"};
    check_pairs(&cmd, want, NELEM(want) / 2);
    /* the same with EVAL */
    assert_int_equal(sg_decide_cmd(&rq, 1, &cmd), 0);
    check_argv_lengths(&cmd);
    check_script(&cmd, SG_SCRIPT_DECIDE, 1);
    check_keys(&cmd, pool, user);
    check_pairs(&cmd, want, NELEM(want) / 2);
    /* and the longest release */
    assert_int_equal(sg_release_cmd(pool, user, sess, "nginx", host, 0, &cmd), 0);
    check_argv_lengths(&cmd);
    check_keys(&cmd, pool, "");
    const char *rwant[] = {pool, user, "nginx", sess, host};
    check_args(&cmd, release_arg_names, rwant, NELEM(release_arg_names));
}

static void test_decide_cmd_too_large(void **state)
{
    (void)state;
    /* unvalidated fields (host, client) cannot overrun the buffer */
    size_t n = 8000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'c', n);
    big[n] = '\0';
    sg_request rq = full_request();
    rq.client = big;
    sg_cmd *cmd = malloc(sizeof(*cmd));
    assert_non_null(cmd);
    assert_int_equal(sg_decide_cmd(&rq, 0, cmd), -1);
    assert_true(cmd->used <= sizeof(cmd->buf));
    assert_int_equal(sg_decide_cmd(&rq, 1, cmd), -1);
    rq.client = "";
    rq.host = big;
    assert_int_equal(sg_decide_cmd(&rq, 0, cmd), -1);
    assert_int_equal(sg_release_cmd("p", "u", "", "cli", big, 0, cmd), -1);
    assert_int_equal(sg_release_cmd("p", "u", "", big, "h", 1, cmd), -1);
    assert_true(cmd->used <= sizeof(cmd->buf));

    /* the boundary, exactly: the client is the last argument, so with no
     * client the buffer has room for its name and value: sizeof(buf) - used
     * bytes, less "client" and the two NULs */
    rq = full_request();
    rq.client = "";
    assert_int_equal(sg_decide_cmd(&rq, 0, cmd), 0);
    size_t room = sizeof(cmd->buf) - cmd->used - strlen("client") - 2;
    assert_true(room < n);
    big[room] = '\0';
    rq.client = big;
    assert_int_equal(sg_decide_cmd(&rq, 0, cmd), 0);
    assert_int_equal(cmd->used, sizeof(cmd->buf));
    check_argv_lengths(cmd);
    check_arg(cmd, "client", big);
    big[room] = 'c';
    big[room + 1] = '\0';
    assert_int_equal(sg_decide_cmd(&rq, 0, cmd), -1);
    assert_true(cmd->used <= sizeof(cmd->buf));
    free(cmd);
    free(big);
}

/* ---- sg_release_cmd -------------------------------------------------------------- */

static void test_release_cmd(void **state)
{
    (void)state;
    sg_cmd cmd;
    assert_int_equal(sg_release_cmd("technicians", "alice", "tty1", "pam", "jump1", 0, &cmd), 0);
    check_argv_lengths(&cmd);
    assert_int_equal(cmd.argc, 3 + 10 + 2 * 5);
    check_script(&cmd, SG_SCRIPT_RELEASE, 0);
    check_keys(&cmd, "technicians", "");
    static const char *const want[] = {"technicians", "alice", "pam", "tty1", "jump1"};
    check_args(&cmd, release_arg_names, want, NELEM(release_arg_names));
    assert_null(arg_value(&cmd, "op"));
    assert_null(arg_value(&cmd, "obo"));

    /* defaults: session NULL or "" = every session (left out), via cli,
     * no host (left out) */
    sg_cmd ev;
    assert_int_equal(sg_release_cmd("p", "bob", NULL, NULL, NULL, 1, &ev), 0);
    check_argv_lengths(&ev);
    check_script(&ev, SG_SCRIPT_RELEASE, 1);
    assert_non_null(strstr(ev.argv[1], "-- release:"));
    check_keys(&ev, "p", "");
    static const char *const want2[] = {"p", "bob", "cli"};
    check_args(&ev, release_arg_names, want2, NELEM(want2));
    assert_int_equal(sg_release_cmd("p", "bob", "", "cli", "", 0, &cmd), 0);
    check_args(&cmd, release_arg_names, want2, NELEM(want2));
    /* EVAL and EVALSHA send the same keys and arguments */
    assert_int_equal(ev.argc, cmd.argc);
    for (int i = 2; i < ev.argc; i++)
        assert_string_equal(ev.argv[i], cmd.argv[i]);
}

/* ---- sg_request_validate ------------------------------------------------------------ */

static void validate_bad(sg_request rq, const char *want)
{
    char err[SG_ERR_MAX] = "";
    assert_int_equal(sg_request_validate(&rq, err, sizeof(err)), -1);
    if (strstr(err, want) == NULL)
        fail_msg("validation error '%s' does not mention '%s'", err, want);
}

static void test_request_validate(void **state)
{
    (void)state;
    char err[SG_ERR_MAX];
    sg_request ok = full_request();
    assert_int_equal(sg_request_validate(&ok, err, sizeof(err)), 0);
    sg_request rq = ok;
    rq.feature = "";
    rq.session = "";
    rq.on_behalf_of = "";
    assert_int_equal(sg_request_validate(&rq, err, sizeof(err)), 0);
    rq.feature = NULL;
    rq.session = NULL;
    rq.on_behalf_of = NULL;
    rq.ttl_s = 0;
    assert_int_equal(sg_request_validate(&rq, err, sizeof(err)), 0);
    rq.ttl_s = 365L * 86400;
    assert_int_equal(sg_request_validate(&rq, err, sizeof(err)), 0);
    rq = ok;
    rq.on_behalf_of = "carol";
    rq.user = "{svc}"; /* identities may hold braces */
    assert_int_equal(sg_request_validate(&rq, err, sizeof(err)), 0);

    char longname[SG_POOL_MAX + 2], longid[SG_IDENT_MAX + 2];
    memset(longname, 'n', SG_POOL_MAX + 1);
    longname[SG_POOL_MAX + 1] = '\0';
    memset(longid, 'i', SG_IDENT_MAX + 1);
    longid[SG_IDENT_MAX + 1] = '\0';

    rq = ok;
    rq.pool = "a}b:c";
    validate_bad(rq, "pool");
    rq.pool = NULL;
    validate_bad(rq, "pool");
    rq.pool = "";
    validate_bad(rq, "pool");
    rq.pool = "_"; /* the global keys' tag */
    validate_bad(rq, "pool");
    rq.pool = "{p}";
    validate_bad(rq, "pool");
    rq.pool = longname;
    validate_bad(rq, "pool");
    rq = ok;
    rq.user = "";
    validate_bad(rq, "user");
    rq.user = NULL;
    validate_bad(rq, "user");
    rq.user = "al\nice";
    validate_bad(rq, "user");
    rq.user = longid;
    validate_bad(rq, "user");
    rq = ok;
    rq.on_behalf_of = " carol";
    validate_bad(rq, "on-behalf-of");
    rq.on_behalf_of = longid;
    validate_bad(rq, "on-behalf-of");
    rq = ok;
    rq.feature = "cm db";
    validate_bad(rq, "feature");
    rq.feature = longname;
    validate_bad(rq, "feature");
    rq = ok;
    rq.session = "\xc0\xaf";
    validate_bad(rq, "session");
    rq.session = "tab\there";
    validate_bad(rq, "session");
    rq.session = longid;
    validate_bad(rq, "session");
    rq = ok;
    rq.ttl_s = -1;
    validate_bad(rq, "lease");
    rq.ttl_s = 365L * 86400 + 1;
    validate_bad(rq, "lease");
}

/* ---- sg_decision_parse ------------------------------------------------------------- */

static void test_parse_good(void **state)
{
    (void)state;
    redisReply *r = decision_reply(&sample);
    sg_decision d;
    memset(&d, 0x5a, sizeof(d));
    assert_int_equal(sg_decision_parse(r, &d), 0);
    check_sample(&d);
    r_free(r);
}

static void test_parse_any_order(void **state)
{
    (void)state;
    /* Lua builds the reply from a table: the pairs come in any order */
    static const size_t perms[][11] = {
        {10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
        {4, 5, 6, 7, 8, 9, 10, 0, 1, 2, 3},
        {1, 3, 5, 7, 9, 0, 2, 4, 6, 8, 10},
        {7, 0, 10, 3, 5, 1, 8, 2, 6, 4, 9},
    };
    for (size_t p = 0; p < NELEM(perms); p++) {
        redisReply *r = decision_reply(&sample);
        r_permute_pairs(r, perms[p]);
        assert_int_equal(r->elements, 22);
        sg_decision d;
        memset(&d, 0x5a, sizeof(d));
        assert_int_equal(sg_decision_parse(r, &d), 0);
        check_sample(&d);
        r_free(r);
    }
    /* every rotation too */
    for (size_t k = 0; k < 11; k++) {
        size_t perm[11];
        for (size_t i = 0; i < 11; i++)
            perm[i] = (i + k) % 11;
        redisReply *r = decision_reply(&sample);
        r_permute_pairs(r, perm);
        sg_decision d;
        assert_int_equal(sg_decision_parse(r, &d), 0);
        check_sample(&d);
        r_free(r);
    }
}

static void test_parse_minimal_and_absent(void **state)
{
    (void)state;
    /* the four strings alone (8 elements) are a decision; absent numbers are 0
     * (decide.lua answers unknown_pool this way) */
    redisReply *r = r_flat(4, "result", r_str("denied_unassigned"), "reason", r_str("unknown_pool"),
                           "seat", r_str("none"), "user", r_str("dave"));
    sg_decision d;
    memset(&d, 0x5a, sizeof(d));
    assert_int_equal(sg_decision_parse(r, &d), 0);
    assert_int_equal(d.result, SG_DENIED_UNASSIGNED);
    assert_string_equal(d.reason, "unknown_pool");
    assert_int_equal(d.seat, SG_SEAT_NONE);
    assert_string_equal(d.user, "dave");
    assert_int_equal(d.in_use, 0);
    assert_int_equal(d.floating, 0);
    assert_int_equal(d.capacity, 0);
    assert_int_equal(d.named, 0);
    assert_int_equal(d.expires_ms, 0);
    assert_int_equal(d.ttl_ms, 0);
    assert_int_equal(d.overdraft, 0);
    assert_string_equal(d.err, "");
    r_free(r);
    /* each number may be missing on its own; the others still read */
    for (size_t i = 0; i < NELEM(decision_num_names); i++) {
        r = decision_reply(&sample);
        r_drop(r, decision_num_names[i]);
        assert_int_equal(r->elements, 20);
        memset(&d, 0x5a, sizeof(d));
        assert_int_equal(sg_decision_parse(r, &d), 0);
        long long got[] = {d.in_use,     d.floating, d.capacity, d.named,
                           d.expires_ms, d.ttl_ms,   d.overdraft};
        long long want[] = {3, 10, 12, 5, 1700000000123LL, 900000, 1};
        want[i] = 0;
        for (size_t k = 0; k < NELEM(got); k++)
            if (got[k] != want[k])
                fail_msg("without %s, %s = %lld, want %lld", decision_num_names[i],
                         decision_num_names[k], got[k], want[k]);
        assert_string_equal(d.user, "alice");
        r_free(r);
    }
    /* unknown names are ignored */
    r = decision_reply(&sample);
    r_append(r, r_str("something_new"));
    r_append(r, r_str("whatever"));
    r_append(r, r_str("nested"));
    r_append(r, r_arr(0));
    assert_int_equal(sg_decision_parse(r, &d), 0);
    check_sample(&d);
    r_free(r);
}

static void test_parse_duplicate_takes_first(void **state)
{
    (void)state;
    redisReply *r = decision_reply(&sample);
    r_append(r, r_str("result"));
    r_append(r, r_str("denied_exhausted"));
    r_append(r, r_str("in_use"));
    r_append(r, r_int(99));
    r_append(r, r_str("user"));
    r_append(r, r_str("mallory"));
    r_append(r, r_str("reason"));
    r_append(r, r_int(5)); /* a malformed duplicate is never looked at */
    sg_decision d;
    assert_int_equal(sg_decision_parse(r, &d), 0);
    check_sample(&d);
    r_free(r);
    /* and the other way round */
    r = r_flat(6, "result", r_str("denied_exhausted"), "in_use", r_int(99), "reason",
               r_str("all_floating_in_use"), "seat", r_str("none"), "user", r_str("bob"), "result",
               r_str("granted_named"));
    assert_int_equal(sg_decision_parse(r, &d), 0);
    assert_int_equal(d.result, SG_DENIED_EXHAUSTED);
    assert_int_equal(d.in_use, 99);
    r_free(r);
}

static void test_parse_every_result_and_seat(void **state)
{
    (void)state;
    static const struct {
        const char *result, *reason, *seat;
        sg_result want;
        sg_seat want_seat;
    } cases[] = {
        {"granted_named", "named_seat", "named", SG_GRANTED_NAMED, SG_SEAT_NAMED},
        {"granted_floating", "holds_seat", "floating", SG_GRANTED_FLOATING, SG_SEAT_FLOATING},
        {"granted_floating", "floating_seat", "floating", SG_GRANTED_FLOATING, SG_SEAT_FLOATING},
        {"granted_floating", "overdraft", "floating", SG_GRANTED_FLOATING, SG_SEAT_FLOATING},
        {"granted_free", "free_tier", "free", SG_GRANTED_FREE, SG_SEAT_FREE},
        {"denied_unassigned", "no_named_seat", "none", SG_DENIED_UNASSIGNED, SG_SEAT_NONE},
        {"denied_unassigned", "unknown_pool", "none", SG_DENIED_UNASSIGNED, SG_SEAT_NONE},
        {"denied_unassigned", "service_account_needs_on_behalf_of", "none", SG_DENIED_UNASSIGNED,
         SG_SEAT_NONE},
        {"denied_exhausted", "all_floating_in_use", "none", SG_DENIED_EXHAUSTED, SG_SEAT_NONE},
        {"denied_exhausted", "reserved_for_group", "none", SG_DENIED_EXHAUSTED, SG_SEAT_NONE},
        {"denied_exhausted", "group_cap_reached", "none", SG_DENIED_EXHAUSTED, SG_SEAT_NONE},
        {"denied_excluded", "excluded_group", "none", SG_DENIED_EXCLUDED, SG_SEAT_NONE},
        {"denied_excluded", "not_in_included_group", "none", SG_DENIED_EXCLUDED, SG_SEAT_NONE},
        {"denied_feature", "feature_not_licensed", "none", SG_DENIED_FEATURE, SG_SEAT_NONE},
        {"denied_multiplexing", "multiplexing_limit", "none", SG_DENIED_MULTIPLEXING, SG_SEAT_NONE},
        {"denied_disabled", "user_disabled", "none", SG_DENIED_DISABLED, SG_SEAT_NONE},
        {"denied_disabled", "service_account_disabled", "none", SG_DENIED_DISABLED, SG_SEAT_NONE},
        {"error_backend", "backend_unavailable", "none", SG_ERROR_BACKEND, SG_SEAT_NONE},
        /* an unknown seat kind reads as none */
        {"denied_exhausted", "x", "sofa", SG_DENIED_EXHAUSTED, SG_SEAT_NONE},
        {"granted_named", "x", "Named", SG_GRANTED_NAMED, SG_SEAT_NONE},
        {"granted_named", "x", "", SG_GRANTED_NAMED, SG_SEAT_NONE},
        {"granted_named", "x", "named_but_much_longer_than_sixteen", SG_GRANTED_NAMED,
         SG_SEAT_NONE},
    };
    /* every result name is covered */
    for (int res = 0; res < SG_RESULT_COUNT; res++) {
        int found = 0;
        for (size_t i = 0; i < NELEM(cases); i++)
            found |= cases[i].want == (sg_result)res &&
                     strcmp(cases[i].result, sg_result_name((sg_result)res)) == 0;
        if (!found)
            fail_msg("no case for %s", sg_result_name((sg_result)res));
    }
    for (size_t i = 0; i < NELEM(cases); i++) {
        redisReply *r = simple_reply(cases[i].result, cases[i].reason, cases[i].seat, "u");
        sg_decision d;
        memset(&d, 0x5a, sizeof(d));
        assert_int_equal(sg_decision_parse(r, &d), 0);
        assert_int_equal(d.result, cases[i].want);
        assert_string_equal(d.reason, cases[i].reason);
        assert_int_equal(d.seat, cases[i].want_seat);
        assert_string_equal(d.user, "u");
        r_free(r);
    }
}

static void test_parse_numbers_as_strings(void **state)
{
    (void)state;
    /* numbers may come back as bulk strings, and a nil reads as 0 */
    redisReply *r = decision_reply(&sample);
    r_set(r, "floating", r_str("25"));
    r_set(r, "ttl_ms", r_str("123456789012"));
    r_set(r, "expires_ms", r_str("9223372036854775807"));
    r_set(r, "capacity", r_str("-3"));
    r_set(r, "overdraft", r_str("1"));
    r_set(r, "in_use", r_new(REDIS_REPLY_NIL));
    r_set(r, "named", r_str(""));
    sg_decision d;
    assert_int_equal(sg_decision_parse(r, &d), 0);
    assert_int_equal(d.floating, 25);
    assert_int_equal(d.ttl_ms, 123456789012LL);
    assert_int_equal(d.expires_ms, 9223372036854775807LL);
    assert_int_equal(d.capacity, -3);
    assert_int_equal(d.overdraft, 1);
    assert_int_equal(d.in_use, 0);
    assert_int_equal(d.named, 0);
    r_free(r);
    /* names may be status replies */
    r = decision_reply(&sample);
    for (size_t i = 0; i < r->elements; i += 2)
        r->element[i]->type = REDIS_REPLY_STATUS;
    assert_int_equal(sg_decision_parse(r, &d), 0);
    check_sample(&d);
    r_free(r);
}

static void expect_backend_error(redisReply *r, const char *want)
{
    sg_decision d;
    memset(&d, 0x5a, sizeof(d));
    assert_int_equal(sg_decision_parse(r, &d), -1);
    assert_int_equal(d.result, SG_ERROR_BACKEND);
    assert_int_equal(d.seat, SG_SEAT_NONE);
    assert_string_equal(d.reason, "backend_unavailable");
    assert_true(d.err[0] != '\0');
    assert_non_null(memchr(d.err, '\0', sizeof(d.err)));
    assert_non_null(memchr(d.user, '\0', sizeof(d.user)));
    assert_int_equal(d.in_use, 0);
    assert_int_equal(d.expires_ms, 0);
    assert_int_equal(d.overdraft, 0);
    if (want && strstr(d.err, want) == NULL)
        fail_msg("error '%s' does not mention '%s'", d.err, want);
    assert_int_equal(sg_result_granted(d.result), 0);
}

static void test_parse_error_reply(void **state)
{
    (void)state;
    redisReply *r = r_str_t(REDIS_REPLY_ERROR, "ERR Error running script: boom");
    expect_backend_error(r, "ERR Error running script: boom");
    r_free(r);
    r = r_str_t(REDIS_REPLY_ERROR, "NOSCRIPT No matching script. Please use EVAL.");
    expect_backend_error(r, "NOSCRIPT");
    r_free(r);
    r = r_str_t(REDIS_REPLY_ERROR,
                "NOPERM this user has no permissions to access the 'sg:{p}:conf' key");
    expect_backend_error(r, "NOPERM");
    r_free(r);
    expect_backend_error(NULL, NULL);
}

static void test_parse_wrong_shape(void **state)
{
    (void)state;
    /* fewer than 8 elements, or an odd number of them */
    static const size_t counts[] = {0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 23, 25};
    for (size_t i = 0; i < NELEM(counts); i++) {
        redisReply *r = r_arr(counts[i]);
        for (size_t k = 0; k < counts[i]; k++)
            r->element[k] = r_str("granted_named");
        expect_backend_error(r, "unexpected");
        r_free(r);
    }
    /* a good decision with a name more or less */
    redisReply *r = decision_reply(&sample);
    r_append(r, r_str("extra"));
    expect_backend_error(r, "unexpected");
    r_free(r);
    r = r_flat(3, "result", r_str("granted_named"), "reason", r_str("named_seat"), "seat",
               r_str("named"));
    expect_backend_error(r, "unexpected");
    r_free(r);
    /* not an array */
    r = r_int(1);
    expect_backend_error(r, "unexpected");
    r_free(r);
    r = r_new(REDIS_REPLY_NIL);
    expect_backend_error(r, "unexpected");
    r_free(r);
    r = r_str("granted_named");
    expect_backend_error(r, "unexpected");
    r_free(r);
    r = r_str_t(REDIS_REPLY_STATUS, "OK");
    expect_backend_error(r, "unexpected");
    r_free(r);
    /* the old positional reply (12 values, no names) is refused */
    r = r_arr(12);
    static const char *const old[] = {"granted_named", "named_seat", "named"};
    for (size_t k = 0; k < 12; k++)
        r->element[k] = k < 3 ? r_str(old[k]) : (k == 11 ? r_str("alice") : r_int(0));
    expect_backend_error(r, "malformed");
    r_free(r);
}

static void test_parse_malformed_elements(void **state)
{
    (void)state;
    /* unknown result names */
    static const char *const bad[] = {"granted",
                                      "GRANTED_NAMED",
                                      "granted_named ",
                                      " granted_named",
                                      "ok",
                                      "",
                                      "granted_named_but_longer_than_the_buffer_is_wide_xxxxx"};
    for (size_t i = 0; i < NELEM(bad); i++) {
        redisReply *r = simple_reply(bad[i], "x", "named", "u");
        expect_backend_error(r, "malformed");
        r_free(r);
    }
    /* the result, reason, seat and user must be present, and strings */
    for (size_t i = 0; i < NELEM(decision_str_names); i++) {
        const char *name = decision_str_names[i];
        redisReply *r = decision_reply(&sample);
        r_drop(r, name);
        expect_backend_error(r, "malformed");
        r_free(r);
        r = decision_reply(&sample);
        r_set(r, name, r_int(1));
        expect_backend_error(r, "malformed");
        r_free(r);
        r = decision_reply(&sample);
        r_set(r, name, r_new(REDIS_REPLY_NIL));
        expect_backend_error(r, "malformed");
        r_free(r);
        r = decision_reply(&sample);
        r_set(r, name, r_arr(0));
        expect_backend_error(r, "malformed");
        r_free(r);
        r = decision_reply(&sample);
        r_set(r, name, r_str_t(REDIS_REPLY_ERROR, "ERR nested"));
        expect_backend_error(r, "malformed");
        r_free(r);
        /* a name that is not a string is no name */
        r = decision_reply(&sample);
        long at = r_index(r, name);
        r_free(r->element[at - 1]);
        r->element[at - 1] = r_int(0);
        expect_backend_error(r, "malformed");
        r_free(r);
        /* a name in a value position is no name */
        r = decision_reply(&sample);
        r_drop(r, name);
        r_append(r, r_str("padding"));
        r_append(r, r_str(name));
        r_append(r, r_str("granted_named"));
        r_append(r, r_str("padding2"));
        expect_backend_error(r, "malformed");
        r_free(r);
        /* the names are case-sensitive */
        r = decision_reply(&sample);
        at = r_index(r, name);
        r->element[at - 1]->str[0] = (char)toupper((unsigned char)name[0]);
        expect_backend_error(r, "malformed");
        r_free(r);
    }
}

static void test_parse_long_strings_truncated(void **state)
{
    (void)state;
    char reason[500], user[1000];
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    memset(user, 'u', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    redisReply *r = simple_reply("denied_exhausted", reason, "none", user);
    sg_decision d;
    assert_int_equal(sg_decision_parse(r, &d), 0);
    assert_int_equal(strlen(d.reason), sizeof(d.reason) - 1);
    assert_int_equal(strlen(d.user), sizeof(d.user) - 1);
    assert_int_equal(strncmp(d.reason, reason, sizeof(d.reason) - 1), 0);
    assert_int_equal(strncmp(d.user, user, sizeof(d.user) - 1), 0);
    r_free(r);
    /* a user of exactly SG_IDENT_MAX bytes is whole */
    user[SG_IDENT_MAX] = '\0';
    r = simple_reply("granted_named", "named_seat", "named", user);
    assert_int_equal(sg_decision_parse(r, &d), 0);
    assert_string_equal(d.user, user);
    r_free(r);
    /* a long error reply is cut, not overrun */
    char msg[2000];
    memset(msg, 'e', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    r = r_str_t(REDIS_REPLY_ERROR, msg);
    expect_backend_error(r, NULL);
    assert_int_equal(sg_decision_parse(r, &d), -1);
    assert_int_equal(strlen(d.err), sizeof(d.err) - 1);
    r_free(r);
}

/* ---- sg_reply_field / sg_reply_ll / sg_reply_str ------------------------------------- */

static void test_reply_field(void **state)
{
    (void)state;
    redisReply *r = r_flat(5, "sessions", r_int(2), "seat", r_str("1"), "name", r_str("alice"),
                           "nil", r_new(REDIS_REPLY_NIL), "list", r_arr(0));
    assert_ptr_equal(sg_reply_field(r, "sessions"), r->element[1]);
    assert_ptr_equal(sg_reply_field(r, "seat"), r->element[3]);
    assert_ptr_equal(sg_reply_field(r, "list"), r->element[9]);
    assert_null(sg_reply_field(r, "absent"));
    assert_null(sg_reply_field(r, ""));
    assert_null(sg_reply_field(r, "alice")); /* a value is no name */
    assert_null(sg_reply_field(r, "session"));
    assert_null(sg_reply_field(r, "sessions "));

    assert_int_equal(sg_reply_ll(r, "sessions"), 2);
    assert_int_equal(sg_reply_ll(r, "seat"), 1);
    assert_int_equal(sg_reply_ll(r, "absent"), 0);
    assert_int_equal(sg_reply_ll(r, "nil"), 0);
    assert_int_equal(sg_reply_ll(r, "list"), 0);
    assert_int_equal(sg_reply_ll(r, "name"), 0);

    assert_string_equal(sg_reply_str(r, "name"), "alice");
    assert_string_equal(sg_reply_str(r, "seat"), "1");
    assert_null(sg_reply_str(r, "absent"));
    assert_null(sg_reply_str(r, "sessions")); /* an integer is not a string */
    assert_null(sg_reply_str(r, "nil"));
    assert_null(sg_reply_str(r, "list"));
    r_free(r);

    /* a trailing name without a value is absent */
    r = r_arr(3);
    r->element[0] = r_str("a");
    r->element[1] = r_int(7);
    r->element[2] = r_str("b");
    assert_int_equal(sg_reply_ll(r, "a"), 7);
    assert_null(sg_reply_field(r, "b"));
    assert_int_equal(sg_reply_ll(r, "b"), 0);
    assert_null(sg_reply_str(r, "b"));
    r_free(r);

    /* duplicates: the first wins */
    r = r_flat(3, "a", r_int(1), "a", r_int(2), "s", r_str("x"));
    r_append(r, r_str("s"));
    r_append(r, r_str("y"));
    assert_int_equal(sg_reply_ll(r, "a"), 1);
    assert_string_equal(sg_reply_str(r, "s"), "x");
    r_free(r);

    /* status values read as strings */
    r = r_flat(1, "state", r_str_t(REDIS_REPLY_STATUS, "ready"));
    assert_string_equal(sg_reply_str(r, "state"), "ready");
    r_free(r);

    /* not arrays, or nothing at all */
    static const int types[] = {REDIS_REPLY_STRING, REDIS_REPLY_STATUS, REDIS_REPLY_ERROR};
    for (size_t i = 0; i < NELEM(types); i++) {
        r = r_str_t(types[i], "sessions");
        assert_null(sg_reply_field(r, "sessions"));
        assert_int_equal(sg_reply_ll(r, "sessions"), 0);
        assert_null(sg_reply_str(r, "sessions"));
        r_free(r);
    }
    r = r_int(5);
    assert_null(sg_reply_field(r, "x"));
    assert_int_equal(sg_reply_ll(r, "x"), 0);
    r_free(r);
    r = r_arr(0);
    assert_null(sg_reply_field(r, "x"));
    assert_int_equal(sg_reply_ll(r, "x"), 0);
    assert_null(sg_reply_str(r, "x"));
    r_free(r);
    assert_null(sg_reply_field(NULL, "x"));
    assert_int_equal(sg_reply_ll(NULL, "x"), 0);
    assert_null(sg_reply_str(NULL, "x"));
}

/* ---- sg_release_parse ---------------------------------------------------------------- */

static void release_ok(redisReply *r, long want_sessions, long want_seat)
{
    long sessions = -7, seat = -7;
    assert_int_equal(sg_release_parse(r, &sessions, &seat), 0);
    assert_int_equal(sessions, want_sessions);
    assert_int_equal(seat, want_seat);
    r_free(r);
}

static void release_bad(redisReply *r)
{
    long sessions = -7, seat = -7;
    assert_int_equal(sg_release_parse(r, &sessions, &seat), -1);
    r_free(r);
}

static void test_release_parse(void **state)
{
    (void)state;
    release_ok(r_flat(2, "sessions", r_int(2), "seat", r_int(1)), 2, 1);
    release_ok(r_flat(2, "seat", r_int(0), "sessions", r_int(1)), 1, 0);
    release_ok(r_flat(2, "sessions", r_int(0), "seat", r_int(0)), 0, 0);
    /* numbers as strings */
    release_ok(r_flat(2, "sessions", r_str("3"), "seat", r_str("1")), 3, 1);
    /* other names are ignored; the first of a duplicate wins */
    release_ok(r_flat(4, "x", r_str("y"), "sessions", r_int(5), "seat", r_int(1), "seat", r_int(0)),
               5, 1);
    /* a nil value is present and reads as 0 */
    release_ok(r_flat(2, "sessions", r_new(REDIS_REPLY_NIL), "seat", r_int(1)), 0, 1);

    /* missing names */
    release_bad(r_flat(1, "sessions", r_int(1)));
    release_bad(r_flat(1, "seat", r_int(1)));
    release_bad(r_flat(2, "session", r_int(1), "seats", r_int(1)));
    release_bad(r_arr(0));
    /* the old positional reply {sessions, seat} */
    redisReply *r = r_arr(2);
    r->element[0] = r_int(1);
    r->element[1] = r_int(1);
    release_bad(r);
    /* a name without a value */
    r = r_flat(1, "sessions", r_int(1));
    r_append(r, r_str("seat"));
    release_bad(r);
    /* not arrays */
    release_bad(r_str_t(REDIS_REPLY_ERROR, "ERR Error running script"));
    release_bad(r_str_t(REDIS_REPLY_ERROR, "NOSCRIPT No matching script"));
    release_bad(r_int(2));
    release_bad(r_new(REDIS_REPLY_NIL));
    release_bad(r_str("sessions"));
    release_bad(NULL);
}

/* ---- sg_reply_is_noscript ------------------------------------------------------------ */

static void test_noscript(void **state)
{
    (void)state;
    redisReply *r = r_str_t(REDIS_REPLY_ERROR, "NOSCRIPT No matching script. Please use EVAL.");
    assert_true(sg_reply_is_noscript(r));
    r_free(r);
    r = r_str_t(REDIS_REPLY_ERROR, "NOSCRIPT");
    assert_true(sg_reply_is_noscript(r));
    r_free(r);
    r = r_str_t(REDIS_REPLY_ERROR, "ERR unknown command");
    assert_false(sg_reply_is_noscript(r));
    r_free(r);
    r = r_str_t(REDIS_REPLY_ERROR, "NOSCRIP");
    assert_false(sg_reply_is_noscript(r));
    r_free(r);
    r = r_str_t(REDIS_REPLY_ERROR, "noscript No matching script");
    assert_false(sg_reply_is_noscript(r));
    r_free(r);
    r = r_str_t(REDIS_REPLY_ERROR, "ERR NOSCRIPT");
    assert_false(sg_reply_is_noscript(r));
    r_free(r);
    r = r_str_t(REDIS_REPLY_ERROR, "");
    assert_false(sg_reply_is_noscript(r));
    r_free(r);
    r = r_str_t(REDIS_REPLY_STATUS, "NOSCRIPT");
    assert_false(sg_reply_is_noscript(r));
    r_free(r);
    r = r_str("NOSCRIPT No matching script");
    assert_false(sg_reply_is_noscript(r));
    r_free(r);
    r = r_arr(0);
    assert_false(sg_reply_is_noscript(r));
    r_free(r);
    r = r_flat(1, "NOSCRIPT", r_str("NOSCRIPT"));
    assert_false(sg_reply_is_noscript(r));
    r_free(r);
    assert_false(sg_reply_is_noscript(NULL));
}

/* ---- sg_decision_error and sg_decision_message ----------------------------------------- */

static void test_decision_error(void **state)
{
    (void)state;
    sg_decision d;
    memset(&d, 0x5a, sizeof(d));
    sg_decision_error(&d, "redis 127.0.0.1:6379: Connection refused");
    assert_int_equal(d.result, SG_ERROR_BACKEND);
    assert_int_equal(d.seat, SG_SEAT_NONE);
    assert_string_equal(d.reason, "backend_unavailable");
    assert_string_equal(d.err, "redis 127.0.0.1:6379: Connection refused");
    assert_string_equal(d.user, "");
    assert_int_equal(d.in_use, 0);
    assert_int_equal(d.floating, 0);
    assert_int_equal(d.capacity, 0);
    assert_int_equal(d.named, 0);
    assert_int_equal(d.expires_ms, 0);
    assert_int_equal(d.ttl_ms, 0);
    assert_int_equal(d.overdraft, 0);
    sg_decision_error(&d, NULL);
    assert_true(d.err[0] != '\0');
    assert_int_equal(d.result, SG_ERROR_BACKEND);
    /* a long message is cut */
    char msg[1000];
    memset(msg, 'm', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    sg_decision_error(&d, msg);
    assert_int_equal(strlen(d.err), sizeof(d.err) - 1);
}

static void message_has(const sg_decision *d, const char *feature, const char *want)
{
    char buf[256];
    sg_decision_message(d, "technicians", feature, buf, sizeof(buf));
    if (strstr(buf, want) == NULL)
        fail_msg("message '%s' does not say '%s'", buf, want);
}

static void test_decision_message(void **state)
{
    (void)state;
    for (int i = 0; i < SG_RESULT_COUNT; i++) {
        sg_decision d;
        memset(&d, 0, sizeof(d));
        d.result = (sg_result)i;
        d.floating = d.capacity = 10;
        char buf[256];
        sg_decision_message(&d, "technicians", "cmdb", buf, sizeof(buf));
        assert_true(strlen(buf) > 0);
        if (i != SG_GRANTED_FREE && i != SG_ERROR_BACKEND)
            assert_non_null(strstr(buf, "technicians"));
    }
    sg_decision d;
    memset(&d, 0, sizeof(d));
    d.result = SG_DENIED_EXHAUSTED;
    snprintf(d.reason, sizeof(d.reason), "all_floating_in_use");
    d.floating = d.capacity = d.in_use = 10;
    message_has(&d, NULL, "all 10 floating seats of pool technicians are in use");
    d.capacity = 12; /* with overdraft: the seats that may be held */
    message_has(&d, NULL, "all 12 floating seats");
    d.capacity = 1;
    message_has(&d, NULL, "the only floating seat of pool technicians is in use");
    snprintf(d.reason, sizeof(d.reason), "reserved_for_group");
    message_has(&d, NULL, "reserved for another group");
    snprintf(d.reason, sizeof(d.reason), "group_cap_reached");
    message_has(&d, NULL, "your group holds all the floating seats");

    memset(&d, 0, sizeof(d));
    d.result = SG_GRANTED_FLOATING;
    d.in_use = 3;
    d.floating = 10;
    message_has(&d, NULL, "(3 of 10 in use)");
    char buf[256];
    sg_decision_message(&d, "technicians", NULL, buf, sizeof(buf));
    assert_null(strstr(buf, "overdraft"));
    d.overdraft = 1;
    d.in_use = 11;
    message_has(&d, NULL, "(11 of 10 in use), in overdraft");

    memset(&d, 0, sizeof(d));
    d.result = SG_DENIED_UNASSIGNED;
    message_has(&d, NULL, "you have no seat in pool technicians");
    static const struct {
        const char *reason, *want;
    } unassigned[] = {
        {"no_identity", "no valid identity"},
        {"invalid_identity", "no valid identity"},
        {"invalid_on_behalf_of", "no valid identity"},
        {"invalid_input", "no valid identity"},
        {"unknown_pool", "pool technicians does not exist"},
        {"service_account_needs_on_behalf_of", "must say on whose behalf"},
        {"on_behalf_of_requires_service_account", "only a service account"},
        {"on_behalf_of_is_service_account", "cannot act on behalf of another"},
        {"no_named_seat", "you have no seat in pool technicians"},
    };
    for (size_t i = 0; i < NELEM(unassigned); i++) {
        snprintf(d.reason, sizeof(d.reason), "%s", unassigned[i].reason);
        message_has(&d, NULL, unassigned[i].want);
    }

    memset(&d, 0, sizeof(d));
    d.result = SG_DENIED_FEATURE;
    message_has(&d, "cmdb", "does not include the module cmdb");
    message_has(&d, NULL, "required here");
    message_has(&d, "", "required here");
    d.result = SG_DENIED_DISABLED;
    message_has(&d, NULL, "disabled");
    d.result = SG_DENIED_MULTIPLEXING;
    message_has(&d, NULL, "too many people");
    d.result = SG_ERROR_BACKEND;
    message_has(&d, NULL, "unavailable");
    d.result = SG_RESULT_COUNT; /* out of range reads as unavailable */
    message_has(&d, NULL, "unavailable");

    /* a small buffer is cut, not overrun */
    d.result = SG_DENIED_FEATURE;
    char small[12];
    memset(small, 'Q', sizeof(small));
    sg_decision_message(&d, "technicians", "cmdb", small, 8);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(small[8], 'Q');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyname_every_key),
        cmocka_unit_test(test_keyname_bounds),
        cmocka_unit_test(test_key_mux),
        cmocka_unit_test(test_decide_keys),
        cmocka_unit_test(test_keys_share_one_slot),
        cmocka_unit_test(test_script_hashes),
        cmocka_unit_test(test_script_bodies_match_sources),
        cmocka_unit_test(test_script_bodies_start_with_lib),
        cmocka_unit_test(test_script_names_agree),
        cmocka_unit_test(test_arg_value_helper),
        cmocka_unit_test(test_decide_cmd_evalsha),
        cmocka_unit_test(test_decide_cmd_check_and_defaults),
        cmocka_unit_test(test_decide_cmd_numbers),
        cmocka_unit_test(test_decide_cmd_on_behalf_of),
        cmocka_unit_test(test_decide_cmd_eval_fallback),
        cmocka_unit_test(test_decide_cmd_fcall),
        cmocka_unit_test(test_cluster_redirect),
        cmocka_unit_test(test_cluster_slots_each),
        cmocka_unit_test(test_cmd_slot),
        cmocka_unit_test(test_script_call_ladder),
        cmocka_unit_test(test_decide_cmd_copies_inputs),
        cmocka_unit_test(test_decide_cmd_reuse),
        cmocka_unit_test(test_decide_cmd_longest_inputs),
        cmocka_unit_test(test_decide_cmd_too_large),
        cmocka_unit_test(test_release_cmd),
        cmocka_unit_test(test_request_validate),
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_any_order),
        cmocka_unit_test(test_parse_minimal_and_absent),
        cmocka_unit_test(test_parse_duplicate_takes_first),
        cmocka_unit_test(test_parse_every_result_and_seat),
        cmocka_unit_test(test_parse_numbers_as_strings),
        cmocka_unit_test(test_parse_error_reply),
        cmocka_unit_test(test_parse_wrong_shape),
        cmocka_unit_test(test_parse_malformed_elements),
        cmocka_unit_test(test_parse_long_strings_truncated),
        cmocka_unit_test(test_reply_field),
        cmocka_unit_test(test_release_parse),
        cmocka_unit_test(test_noscript),
        cmocka_unit_test(test_decision_error),
        cmocka_unit_test(test_decision_message),
    };
    return cmocka_run_group_tests_name("cmd", tests, NULL, NULL);
}
