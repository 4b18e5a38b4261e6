/* Unit tests: key schema, decision/release commands, reply parsing (common/core.c)
 * and the embedded scripts (build/gen/scripts.c). No Redis server is needed:
 * replies are built by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seatgate.h"

static const char *const key_suffix[SG_K_COUNT] = {
    "conf", "named", "leases", "sess", "sessidx", "sessinfo", "users", "audit", "lastused", "stats",
};

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

/* The reply decide.lua gives: {result, reason, seat, in_use, floating, capacity,
 * named, expires_ms, ttl_ms, epoch, overdraft, effective_user} */
static redisReply *decision_reply(const char *result, const char *reason, const char *seat,
                                  long long in_use, long long floating, long long capacity,
                                  long long named, long long expires, long long ttl,
                                  long long epoch, long long od, const char *user)
{
    redisReply *r = r_arr(12);
    r->element[0] = r_str(result);
    r->element[1] = r_str(reason);
    r->element[2] = r_str(seat);
    r->element[3] = r_int(in_use);
    r->element[4] = r_int(floating);
    r->element[5] = r_int(capacity);
    r->element[6] = r_int(named);
    r->element[7] = r_int(expires);
    r->element[8] = r_int(ttl);
    r->element[9] = r_int(epoch);
    r->element[10] = r_int(od);
    r->element[11] = r_str(user);
    return r;
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
    char buf[SG_KEY_MAX];
    assert_int_equal(sg_keyname(SG_K_CONF, "p", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "sg:{p}:conf");
    assert_int_equal(sg_keyname(SG_K_STATS, "change-advanced", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "sg:{change-advanced}:stats");
    /* keys are distinct */
    for (int a = 0; a < SG_K_COUNT; a++)
        for (int b = a + 1; b < SG_K_COUNT; b++)
            assert_string_not_equal(key_suffix[a], key_suffix[b]);
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
    char small[20];
    assert_int_equal(sg_key_mux("technicians", "svc", small, sizeof(small)), -1);
}

static void test_keys_share_one_slot(void **state)
{
    (void)state;
    static const char *const pools[] = {"technicians", "p", "change-advanced", "A.b_c-9"};
    /* user names may hold braces; they come after the tag and cannot move the slot */
    static const char *const users[] = {"svc", "a}b:c", "{x}", "}{", "{}"};
    for (size_t p = 0; p < sizeof(pools) / sizeof(pools[0]); p++) {
        unsigned slot = keyslot(pools[p]);
        char buf[SG_KEY_MAX];
        for (int k = 0; k < SG_K_COUNT; k++) {
            assert_int_equal(sg_keyname((sg_key)k, pools[p], buf, sizeof(buf)), 0);
            assert_int_equal(keyslot(buf), slot);
        }
        for (size_t u = 0; u < sizeof(users) / sizeof(users[0]); u++) {
            assert_int_equal(sg_key_mux(pools[p], users[u], buf, sizeof(buf)), 0);
            assert_int_equal(keyslot(buf), slot);
        }
    }
    /* sanity of the slot function against the Redis documentation */
    assert_int_equal(crc16("123456789", 9), 0x31C3);
    assert_int_equal(keyslot("{user1000}.following"), keyslot("{user1000}.followers"));
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
    }
    assert_string_equal(sg_script_body(SG_SCRIPT_COUNT), "");
    assert_string_equal(sg_script_sha(SG_SCRIPT_COUNT), "");
    char h[41];
    sha1_hex("abc", 3, h);
    assert_string_equal(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

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
    return buf;
}

static void test_script_bodies_match_sources(void **state)
{
    (void)state;
    /* the embedding is exact (run from the top directory; skipped elsewhere) */
    static const char *const files[SG_SCRIPT_COUNT] = {
        "common/lua/decide.lua",      "common/lua/release.lua", "common/lua/pool_set.lua",
        "common/lua/pool_delete.lua", "common/lua/assign.lua",  "common/lua/user_set.lua",
    };
    int seen = 0;
    for (int s = 0; s < SG_SCRIPT_COUNT; s++) {
        char *src = slurp(files[s]);
        if (src == NULL)
            continue;
        seen++;
        if (strcmp(src, sg_script_body((sg_script)s)) != 0)
            fail_msg("%s differs from the embedded body", files[s]);
        free(src);
    }
    if (seen == 0)
        skip();
}

static void test_decide_script_shape(void **state)
{
    (void)state;
    /* the command builder sends 11 keys and 11 args: the script uses exactly those */
    const char *body = sg_script_body(SG_SCRIPT_DECIDE);
    assert_non_null(strstr(body, "KEYS[11]"));
    assert_null(strstr(body, "KEYS[12]"));
    assert_non_null(strstr(body, "ARGV[11]"));
    assert_null(strstr(body, "ARGV[12]"));
    body = sg_script_body(SG_SCRIPT_RELEASE);
    assert_non_null(strstr(body, "ARGV[5]"));
    assert_null(strstr(body, "ARGV[6]"));
    assert_null(strstr(body, "KEYS[12]"));
}

/* ---- sg_decide_cmd --------------------------------------------------------------- */

static void check_argv_lengths(const sg_cmd *cmd)
{
    for (int i = 0; i < cmd->argc; i++) {
        assert_non_null(cmd->argv[i]);
        assert_int_equal(cmd->argvlen[i], strlen(cmd->argv[i]));
    }
}

static void check_pool_keys(const sg_cmd *cmd, int first, const char *pool, const char *sa)
{
    char prefix[SG_KEY_MAX], want[2 * SG_KEY_MAX];
    snprintf(prefix, sizeof(prefix), "sg:{%s}:", pool);
    for (int k = 0; k < SG_K_COUNT; k++) {
        snprintf(want, sizeof(want), "%s%s", prefix, key_suffix[k]);
        assert_string_equal(cmd->argv[first + k], want);
    }
    snprintf(want, sizeof(want), "%smux:%s", prefix, sa);
    assert_string_equal(cmd->argv[first + SG_K_COUNT], want);
    for (int k = 0; k <= SG_K_COUNT; k++)
        assert_int_equal(strncmp(cmd->argv[first + k], prefix, strlen(prefix)), 0);
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
        .ttl_s = 600,
    };
    return rq;
}

static void test_decide_cmd_evalsha(void **state)
{
    (void)state;
    sg_request rq = full_request();
    char err[SG_ERR_MAX];
    assert_int_equal(sg_request_validate(&rq, err, sizeof(err)), 0);
    sg_cmd cmd;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    assert_int_equal(cmd.argc, 3 + 11 + 11);
    check_argv_lengths(&cmd);
    assert_string_equal(cmd.argv[0], "EVALSHA");
    assert_string_equal(cmd.argv[1], sg_script_sha(SG_SCRIPT_DECIDE));
    assert_string_equal(cmd.argv[2], "11");
    check_pool_keys(&cmd, 3, "technicians", "");
    /* ARGV: op user obo feature session via host pid client ttl pool */
    static const char *const want[] = {
        "acquire",           "alice", "",         "cmdb", "tty1-4242",  "pam",
        "jump1.example.com", "4242",  "10.0.0.9", "600",  "technicians"};
    for (int i = 0; i < 11; i++)
        assert_string_equal(cmd.argv[14 + i], want[i]);
}

static void test_decide_cmd_check_and_defaults(void **state)
{
    (void)state;
    sg_request rq = {.op = SG_OP_CHECK, .pool = "p", .user = "bob"};
    sg_cmd cmd;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    assert_int_equal(cmd.argc, 25);
    check_argv_lengths(&cmd);
    check_pool_keys(&cmd, 3, "p", "");
    static const char *const want[] = {"check", "bob", "", "", "", "cli", "", "0", "", "0", "p"};
    for (int i = 0; i < 11; i++)
        assert_string_equal(cmd.argv[14 + i], want[i]);
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
    check_pool_keys(&cmd, 3, "technicians", "svc-teams");
    assert_string_equal(cmd.argv[14 + 1], "svc-teams");
    assert_string_equal(cmd.argv[14 + 2], "carol");
    assert_string_equal(cmd.argv[14 + 5], "nginx");
    /* an empty on-behalf-of is no on-behalf-of */
    rq.on_behalf_of = "";
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_pool_keys(&cmd, 3, "technicians", "");
}

static void test_decide_cmd_eval_fallback(void **state)
{
    (void)state;
    sg_request rq = full_request();
    sg_cmd sha, ev;
    assert_int_equal(sg_decide_cmd(&rq, 0, &sha), 0);
    assert_int_equal(sg_decide_cmd(&rq, 1, &ev), 0);
    check_argv_lengths(&ev);
    assert_string_equal(ev.argv[0], "EVAL");
    assert_string_equal(ev.argv[1], sg_script_body(SG_SCRIPT_DECIDE));
    assert_int_equal(ev.argvlen[1], strlen(sg_script_body(SG_SCRIPT_DECIDE)));
    assert_non_null(strstr(ev.argv[1], "redis.call"));
    assert_int_equal(ev.argc, sha.argc);
    for (int i = 2; i < ev.argc; i++) {
        assert_int_equal(ev.argvlen[i], sha.argvlen[i]);
        assert_memory_equal(ev.argv[i], sha.argv[i], sha.argvlen[i]);
    }
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
        .ttl_s = 365L * 86400,
    };
    char err[SG_ERR_MAX];
    assert_int_equal(sg_request_validate(&rq, err, sizeof(err)), 0);
    sg_cmd cmd;
    assert_int_equal(sg_decide_cmd(&rq, 0, &cmd), 0);
    check_argv_lengths(&cmd);
    check_pool_keys(&cmd, 3, pool, user);
    assert_string_equal(cmd.argv[14 + 3], feat);
    assert_string_equal(cmd.argv[14 + 4], sess);
    assert_true(cmd.used <= sizeof(cmd.buf));
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
    rq.client = "";
    rq.host = big;
    assert_int_equal(sg_release_cmd("p", "u", "", "cli", big, 0, cmd), -1);
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
    assert_int_equal(cmd.argc, 3 + 11 + 5);
    assert_string_equal(cmd.argv[0], "EVALSHA");
    assert_string_equal(cmd.argv[1], sg_script_sha(SG_SCRIPT_RELEASE));
    assert_string_equal(cmd.argv[2], "11");
    check_pool_keys(&cmd, 3, "technicians", "");
    /* ARGV: user session via host pool */
    static const char *const want[] = {"alice", "tty1", "pam", "jump1", "technicians"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(cmd.argv[14 + i], want[i]);

    assert_int_equal(sg_release_cmd("p", "bob", NULL, NULL, NULL, 1, &cmd), 0);
    check_argv_lengths(&cmd);
    assert_string_equal(cmd.argv[0], "EVAL");
    assert_string_equal(cmd.argv[1], sg_script_body(SG_SCRIPT_RELEASE));
    static const char *const want2[] = {"bob", "", "cli", "", "p"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(cmd.argv[14 + i], want2[i]);
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

    rq = ok;
    rq.pool = "a}b:c";
    validate_bad(rq, "pool");
    rq.pool = NULL;
    validate_bad(rq, "pool");
    rq = ok;
    rq.user = "";
    validate_bad(rq, "user");
    rq.user = NULL;
    validate_bad(rq, "user");
    rq.user = "al\nice";
    validate_bad(rq, "user");
    rq = ok;
    rq.on_behalf_of = " carol";
    validate_bad(rq, "on-behalf-of");
    rq = ok;
    rq.feature = "cm db";
    validate_bad(rq, "feature");
    rq = ok;
    rq.session = "\xc0\xaf";
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
    redisReply *r = decision_reply("granted_floating", "floating_seat", "floating", 3, 10, 12, 5,
                                   1700000000123LL, 900000, 7, 1, "alice");
    sg_decision d;
    memset(&d, 0x5a, sizeof(d));
    assert_int_equal(sg_decision_parse(r, &d), 0);
    assert_int_equal(d.result, SG_GRANTED_FLOATING);
    assert_string_equal(d.reason, "floating_seat");
    assert_int_equal(d.seat, SG_SEAT_FLOATING);
    assert_int_equal(d.in_use, 3);
    assert_int_equal(d.floating, 10);
    assert_int_equal(d.capacity, 12);
    assert_int_equal(d.named, 5);
    assert_int_equal(d.expires_ms, 1700000000123LL);
    assert_int_equal(d.ttl_ms, 900000);
    assert_int_equal(d.epoch, 7);
    assert_int_equal(d.overdraft, 1);
    assert_string_equal(d.user, "alice");
    assert_string_equal(d.err, "");
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
        {"granted_floating", "overdraft", "floating", SG_GRANTED_FLOATING, SG_SEAT_FLOATING},
        {"granted_free", "free_tier", "free", SG_GRANTED_FREE, SG_SEAT_FREE},
        {"denied_unassigned", "no_named_seat", "none", SG_DENIED_UNASSIGNED, SG_SEAT_NONE},
        {"denied_unassigned", "unknown_pool", "none", SG_DENIED_UNASSIGNED, SG_SEAT_NONE},
        {"denied_exhausted", "all_floating_in_use", "none", SG_DENIED_EXHAUSTED, SG_SEAT_NONE},
        {"denied_exhausted", "reserved_for_group", "none", SG_DENIED_EXHAUSTED, SG_SEAT_NONE},
        {"denied_exhausted", "group_cap_reached", "none", SG_DENIED_EXHAUSTED, SG_SEAT_NONE},
        {"denied_excluded", "excluded_group", "none", SG_DENIED_EXCLUDED, SG_SEAT_NONE},
        {"denied_feature", "feature_not_licensed", "none", SG_DENIED_FEATURE, SG_SEAT_NONE},
        {"denied_multiplexing", "multiplexing_limit", "none", SG_DENIED_MULTIPLEXING, SG_SEAT_NONE},
        {"denied_disabled", "user_disabled", "none", SG_DENIED_DISABLED, SG_SEAT_NONE},
        {"error_backend", "backend_unavailable", "none", SG_ERROR_BACKEND, SG_SEAT_NONE},
        /* an unknown seat kind reads as none */
        {"denied_exhausted", "x", "sofa", SG_DENIED_EXHAUSTED, SG_SEAT_NONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redisReply *r = decision_reply(cases[i].result, cases[i].reason, cases[i].seat, 0, 0, 0, 0,
                                       0, 0, 0, 0, "u");
        sg_decision d;
        assert_int_equal(sg_decision_parse(r, &d), 0);
        assert_int_equal(d.result, cases[i].want);
        assert_string_equal(d.reason, cases[i].reason);
        assert_int_equal(d.seat, cases[i].want_seat);
        r_free(r);
    }
}

static void test_parse_numbers_as_strings(void **state)
{
    (void)state;
    /* Lua may hand numbers back as bulk strings */
    redisReply *r =
        decision_reply("granted_named", "named_seat", "named", 0, 0, 0, 0, 0, 0, 0, 0, "bob");
    r_free(r->element[4]);
    r->element[4] = r_str("25");
    r_free(r->element[9]);
    r->element[9] = r_str("123456789012");
    r_free(r->element[3]);
    r->element[3] = r_new(REDIS_REPLY_NIL);
    sg_decision d;
    assert_int_equal(sg_decision_parse(r, &d), 0);
    assert_int_equal(d.floating, 25);
    assert_int_equal(d.epoch, 123456789012LL);
    assert_int_equal(d.in_use, 0);
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
    expect_backend_error(NULL, NULL);
}

static void test_parse_wrong_shape(void **state)
{
    (void)state;
    /* wrong element counts */
    static const size_t counts[] = {0, 1, 11, 13, 24};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        redisReply *r = r_arr(counts[i]);
        for (size_t k = 0; k < counts[i]; k++)
            r->element[k] = r_str("granted_named");
        expect_backend_error(r, "unexpected");
        r_free(r);
    }
    /* not an array */
    redisReply *r = r_int(1);
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
}

static void test_parse_malformed_elements(void **state)
{
    (void)state;
    /* unknown result names */
    static const char *const bad[] = {"granted",
                                      "GRANTED_NAMED",
                                      "granted_named ",
                                      "ok",
                                      "",
                                      "granted_named_but_longer_than_the_buffer_is_wide_xxxxx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redisReply *r = decision_reply(bad[i], "x", "named", 0, 0, 0, 0, 0, 0, 0, 0, "u");
        expect_backend_error(r, "malformed");
        r_free(r);
    }
    /* the result, reason, seat and user must be strings */
    static const int str_pos[] = {0, 1, 2, 11};
    for (size_t i = 0; i < sizeof(str_pos) / sizeof(str_pos[0]); i++) {
        redisReply *r =
            decision_reply("granted_named", "named_seat", "named", 0, 0, 0, 0, 0, 0, 0, 0, "u");
        r_free(r->element[str_pos[i]]);
        r->element[str_pos[i]] = r_int(1);
        expect_backend_error(r, "malformed");
        r_free(r);
        r = decision_reply("granted_named", "named_seat", "named", 0, 0, 0, 0, 0, 0, 0, 0, "u");
        r_free(r->element[str_pos[i]]);
        r->element[str_pos[i]] = r_new(REDIS_REPLY_NIL);
        expect_backend_error(r, "malformed");
        r_free(r);
        r = decision_reply("granted_named", "named_seat", "named", 0, 0, 0, 0, 0, 0, 0, 0, "u");
        r_free(r->element[str_pos[i]]);
        r->element[str_pos[i]] = r_arr(0);
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
    redisReply *r =
        decision_reply("denied_exhausted", reason, "none", 0, 0, 0, 0, 0, 0, 0, 0, user);
    sg_decision d;
    assert_int_equal(sg_decision_parse(r, &d), 0);
    assert_int_equal(strlen(d.reason), sizeof(d.reason) - 1);
    assert_int_equal(strlen(d.user), sizeof(d.user) - 1);
    r_free(r);
    /* a long error reply is cut, not overrun */
    char msg[2000];
    memset(msg, 'e', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    r = r_str_t(REDIS_REPLY_ERROR, msg);
    expect_backend_error(r, NULL);
    r_free(r);
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
    assert_int_equal(d.expires_ms, 0);
    sg_decision_error(&d, NULL);
    assert_true(d.err[0] != '\0');
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
    char buf[256];
    sg_decision_message(&d, "technicians", NULL, buf, sizeof(buf));
    assert_non_null(strstr(buf, "all 10 floating seats of pool technicians are in use"));
    d.result = SG_DENIED_FEATURE;
    sg_decision_message(&d, "technicians", "cmdb", buf, sizeof(buf));
    assert_non_null(strstr(buf, "cmdb"));
    /* a small buffer is cut, not overrun */
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
        cmocka_unit_test(test_keys_share_one_slot),
        cmocka_unit_test(test_script_hashes),
        cmocka_unit_test(test_script_bodies_match_sources),
        cmocka_unit_test(test_decide_script_shape),
        cmocka_unit_test(test_decide_cmd_evalsha),
        cmocka_unit_test(test_decide_cmd_check_and_defaults),
        cmocka_unit_test(test_decide_cmd_on_behalf_of),
        cmocka_unit_test(test_decide_cmd_eval_fallback),
        cmocka_unit_test(test_decide_cmd_longest_inputs),
        cmocka_unit_test(test_decide_cmd_too_large),
        cmocka_unit_test(test_release_cmd),
        cmocka_unit_test(test_request_validate),
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_every_result_and_seat),
        cmocka_unit_test(test_parse_numbers_as_strings),
        cmocka_unit_test(test_parse_error_reply),
        cmocka_unit_test(test_parse_wrong_shape),
        cmocka_unit_test(test_parse_malformed_elements),
        cmocka_unit_test(test_parse_long_strings_truncated),
        cmocka_unit_test(test_noscript),
        cmocka_unit_test(test_decision_error),
        cmocka_unit_test(test_decision_message),
    };
    return cmocka_run_group_tests_name("cmd", tests, NULL, NULL);
}
