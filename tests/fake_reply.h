/* Made-up hiredis replies for the tests and fuzzers that drive the core on
 * replies of their own (test_cmd, test_scim, fuzz_scim). Free them with
 * freeReplyObject. Out of memory aborts: these are tests. */
#ifndef SG_FAKE_REPLY_H
#define SG_FAKE_REPLY_H

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

static inline redisReply *fake_new(int type)
{
    redisReply *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    r->type = type;
    return r;
}

/* a string (type REDIS_REPLY_STRING), or an error with REDIS_REPLY_ERROR */
static inline redisReply *fake_text(int type, const char *s)
{
    redisReply *r = fake_new(type);
    if ((r->str = strdup(s)) == NULL)
        abort();
    r->len = strlen(s);
    return r;
}

static inline redisReply *fake_int(long long v)
{
    redisReply *r = fake_new(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

/* an array of n elements, to be filled */
static inline redisReply *fake_array(size_t n)
{
    redisReply *r = fake_new(REDIS_REPLY_ARRAY);
    r->elements = n;
    if ((r->element = calloc(n ? n : 1, sizeof(redisReply *))) == NULL)
        abort();
    return r;
}

/* a flat name/value array of strings, as the scripts reply */
static inline redisReply *fake_kv(const char *const *kv, size_t n)
{
    redisReply *r = fake_array(n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = fake_text(REDIS_REPLY_STRING, kv[i]);
    return r;
}

/* The value after name in a command's name/value arguments, or NULL (a
 * command the core sent, read back by a fake machine). */
static inline const char *fake_arg(int argc, const char **argv, const size_t *len,
                                   const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strlen(name) == len[i] && memcmp(argv[i], name, len[i]) == 0)
            return argv[i + 1];
    return NULL;
}

#endif
