/* libFuzzer target: the SCIM 2.0 endpoint's request handling (common/scim.c,
 * json-c): bodies of POST, PUT and PATCH (resources, PatchOp messages, their
 * paths and filters), query strings (filters, paging), and a stored resource
 * as Redis would return it. The state machine runs to its answer on made-up
 * replies. Input: a selector byte, then "query %% body %% stored resource".
 * Every answer must be a known status with a JSON body (or none for 204),
 * and every resource it would store must be JSON with a valid userName. */
#include "seatgate.h"
#include "../fake_reply.h"

#include <hiredis/hiredis.h>
#include <json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_scim: check failed: %s (line %d)\n", #c, __LINE__);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char map_text[] = "[source]\nuser = login\nattr job = job\nscim job = title\n"
                               "attr dept = dept\nscim dept = department\nattr groups = groups\n"
                               "[rule a]\nif job = x, y\ngroups = g1\nnamed = p1\n"
                               "[rule b]\nif dept = svc\nservice_account = yes\n";
static sg_sync_map map;

static void check_json(const char *s)
{
    json_object *o = json_tokener_parse(s);
    CHECK(o != NULL);
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (map.nattrs == 0) {
        char err[SG_ERR_MAX];
        CHECK(sg_sync_map_parse(map_text, sizeof(map_text) - 1, &map, err, sizeof(err)) == 0);
    }
    if (size < 1)
        return 0;
    char *buf = malloc(size);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    char *parts[3] = {buf, (char *)"", (char *)"{}"};
    for (int i = 1; i < 3; i++) {
        char *sep = strstr(parts[i - 1], "%%");
        if (sep == NULL)
            break;
        *sep = '\0';
        parts[i] = sep + 2;
    }
    static const char *const methods[] = {"POST", "PUT", "PATCH", "GET", "DELETE", "GET"};
    static const char *const paths[] = {"/Users", "/Users/abc", "/Users/abc", "/Users",
                                        "/Users/abc", "/Users/abc"};
    int sel = data[0] % 6;
    sg_scim_request rq = {.method = methods[sel], .path = paths[sel], .query = parts[0],
                          .body = parts[1], .body_len = strlen(parts[1]),
                          .base = "https://h/scim/v2", .by = "fuzz", .host = "h",
                          .now_ms = 1795946448964LL};
    sg_scim *s = sg_scim_new(&map, &rq);
    CHECK(s != NULL);
    int steps = 0;
    for (int n = sg_scim_pending(s); n > 0; n = sg_scim_step(s)) {
        CHECK(++steps < 20);
        for (int i = 0; i < n; i++) {
            int argc;
            const char **argv;
            const size_t *len;
            sg_scim_command(s, i, &argc, &argv, &len);
            CHECK(argc >= 2);
            const char *op = fake_arg(argc, argv, len, "op");
            const char *mode = fake_arg(argc, argv, len, "mode");
            redisReply *r;
            if (op && strcmp(op, "get") == 0) {
                const char *kv[] = {"status", "ok", "resource", parts[2], "user", "u1",
                                    "owner", ""};
                r = fake_kv(kv, 8);
            } else if (op && (strcmp(op, "put") == 0 || strcmp(op, "delete") == 0)) {
                const char *res = fake_arg(argc, argv, len, "resource");
                if (strcmp(op, "put") == 0) {
                    json_object *o = json_tokener_parse(res);
                    CHECK(o != NULL);
                    json_object *u = NULL;
                    CHECK(json_object_object_get_ex(o, "userName", &u));
                    CHECK(sg_valid_ident(json_object_get_string(u), NULL, 0) == 0);
                    CHECK(json_object_object_get_ex(o, "id", &u));
                    json_object_put(o);
                }
                const char *kv[] = {"status", "ok", "changed", "u1\t0010,\t0011,g1,",
                                    "pools", "p1\np2"};
                r = fake_kv(kv, 6);
            } else if (op) { /* find, list */
                const char *kv[] = {"status", "ok", "resource", parts[2], "total", "1",
                                    "resources", parts[2]};
                r = fake_kv(kv, 8);
            } else if (mode) { /* assign, unassign */
                const char *kv[] = {"status", data[0] & 0x40 ? "refused" : "ok", "changed", "1",
                                    "message", "full"};
                r = fake_kv(kv, 6);
            } else if (strcmp(argv[0], "HMGET") == 0) {
                const char *kv[] = {",g1,", ","};
                r = fake_kv(kv, 2);
            } else { /* user_apply */
                const char *kv[] = {"applied", "1", "revoked", "0"};
                r = fake_kv(kv, 4);
            }
            sg_scim_reply(s, i, (data[0] & 0x80) && i == 0 ? NULL : r);
            freeReplyObject(r);
        }
    }
    int st = sg_scim_status(s);
    CHECK(st == 200 || st == 201 || st == 204 || st == 400 || st == 404 || st == 405 ||
          st == 409 || st == 500 || st == 503);
    size_t blen;
    const char *body = sg_scim_body(s, &blen);
    if (st == 204)
        CHECK(body == NULL);
    else {
        CHECK(body != NULL && strlen(body) == blen);
        check_json(body);
    }
    sg_scim_free(s);
    free(buf);
    return 0;
}
