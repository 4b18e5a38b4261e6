/* The SCIM endpoint's state machine (common/scim.c) on made-up Redis
 * replies: a change refused by the put after it gave or took named seats
 * puts them back before it answers, so a refused request changes nothing. */
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
#include "../fake_reply.h"

static const char map_text[] = "[source]\nuser = login\nattr job = job\nscim job = title\n"
                               "[rule a]\nif job = lead\ngroups = g1\nnamed = p1\n";

/* what the machine sent, one line a command: "put", "assign p1 u", ... */
typedef struct {
    char sent[4096];
    const char *put_status; /* the put's answer */
    const char *took;       /* "changed" of an unassign ("0": the user held no seat) */
    const char *owner_later; /* who has the userName when read again after a put */
    int puts;
} script_t;

/* what the machine sent ends with tail */
static void assert_sent_ends_with(const script_t *t, const char *tail)
{
    size_t n = strlen(t->sent);
    assert_true(n > strlen(tail));
    assert_string_equal(t->sent + n - strlen(tail), tail);
}

static sg_scim *run(script_t *t, const char *method, const char *path, const char *body)
{
    static sg_sync_map map;
    if (map.nrules == 0) {
        char err[SG_ERR_MAX];
        assert_int_equal(sg_sync_map_parse(map_text, sizeof(map_text) - 1, &map, err,
                                           sizeof(err)),
                         0);
    }
    sg_scim_request rq = {.method = method, .path = path, .query = "", .body = body,
                          .body_len = strlen(body), .base = "https://h/scim/v2", .by = "t",
                          .host = "h", .now_ms = 1795946448964LL};
    sg_scim *s = sg_scim_new(&map, &rq);
    assert_non_null(s);
    int steps = 0;
    for (int n = sg_scim_pending(s); n > 0; n = sg_scim_step(s)) {
        assert_true(++steps < 40);
        for (int i = 0; i < n; i++) {
            int argc;
            const char **argv;
            const size_t *len;
            sg_scim_command(s, i, &argc, &argv, &len);
            const char *op = fake_arg(argc, argv, len, "op");
            const char *mode = fake_arg(argc, argv, len, "mode");
            redisReply *r;
            size_t k = strlen(t->sent);
            if (op && strcmp(op, "put") == 0) {
                t->puts++;
                snprintf(t->sent + k, sizeof(t->sent) - k, "put\n");
                const char *kv[] = {"status", t->put_status, "changed", "", "pools", ""};
                r = fake_kv(kv, 6);
            } else if (op) { /* get: no such resource, no owner of the name */
                snprintf(t->sent + k, sizeof(t->sent) - k, "%s\n", op);
                const char *owner = t->puts && t->owner_later ? t->owner_later : "";
                const char *kv[] = {"status", "ok", "resource", "", "owner", owner};
                r = fake_kv(kv, 6);
            } else if (mode) {
                snprintf(t->sent + k, sizeof(t->sent) - k, "%s %s %s\n", mode,
                         fake_arg(argc, argv, len, "pool"), fake_arg(argc, argv, len, "users"));
                int un = strcmp(mode, "unassign") == 0;
                const char *kv[] = {"status", "ok", "changed", un && t->took ? t->took : "1"};
                r = fake_kv(kv, 4);
            } else {
                snprintf(t->sent + k, sizeof(t->sent) - k, "%s\n", argv[0]);
                const char *kv[] = {"applied", "1", "revoked", "0"};
                r = fake_kv(kv, 4);
            }
            sg_scim_reply(s, i, r);
            freeReplyObject(r);
        }
    }
    return s;
}

static const char *body_of(sg_scim *s)
{
    size_t n;
    const char *b = sg_scim_body(s, &n);
    return b ? b : "";
}

static const char lead[] = "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
                           "\"userName\":\"jdoe\",\"title\":\"lead\"}";
static const char agent[] = "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],"
                            "\"userName\":\"jdoe\",\"title\":\"agent\"}";

/* the userName was taken between the check and the put: the seat given
 * goes back, then 409 */
static void test_refused_put_gives_the_seat_back(void **state)
{
    (void)state;
    script_t t = {.put_status = "conflict"};
    sg_scim *s = run(&t, "POST", "/Users", lead);
    assert_int_equal(sg_scim_status(s), 409);
    assert_non_null(strstr(body_of(s), "userName jdoe is taken"));
    assert_non_null(strstr(body_of(s), "uniqueness"));
    const char *give =
        strncmp(t.sent, "assign", 6) == 0 ? t.sent : strstr(t.sent, "\nassign p1 jdoe\n");
    const char *put = strstr(t.sent, "put\n");
    const char *back = strstr(t.sent, "unassign p1 jdoe\n");
    assert_non_null(give);
    assert_non_null(put);
    assert_non_null(back);
    assert_true(give < put && put < back);
    sg_scim_free(s);
}

/* a User deleted meanwhile: 404, after the seat went back */
static void test_missing_user_gives_the_seat_back(void **state)
{
    (void)state;
    script_t t = {.put_status = "missing"};
    sg_scim *s = run(&t, "POST", "/Users", lead);
    assert_int_equal(sg_scim_status(s), 404);
    assert_non_null(strstr(t.sent, "put\nunassign p1 jdoe\n"));
    sg_scim_free(s);
}

/* other requests keep changing the User: after the retries, 409, and the
 * seat given goes back */
static void test_retries_used_up_give_the_seat_back(void **state)
{
    (void)state;
    script_t t = {.put_status = "retry"};
    sg_scim *s = run(&t, "POST", "/Users", lead);
    assert_int_equal(sg_scim_status(s), 409);
    assert_non_null(strstr(body_of(s), "changed by other requests"));
    assert_int_equal(t.puts, 4);
    assert_sent_ends_with(&t, "put\nunassign p1 jdoe\n");
    sg_scim_free(s);
}

/* the put asks for a retry, and the fresh read finds the userName taken
 * meanwhile: the seat the first try gave goes back before the 409 */
static void test_refusal_after_a_retry_gives_the_seat_back(void **state)
{
    (void)state;
    script_t t = {.put_status = "retry", .owner_later = "other-id"};
    sg_scim *s = run(&t, "POST", "/Users", lead);
    assert_int_equal(sg_scim_status(s), 409);
    assert_non_null(strstr(body_of(s), "uniqueness"));
    assert_int_equal(t.puts, 1);
    assert_sent_ends_with(&t, "\nunassign p1 jdoe\n");
    sg_scim_free(s);
}

/* nothing was given or taken: the refusal is answered at once */
static void test_refusal_without_seats_sends_nothing_more(void **state)
{
    (void)state;
    script_t t = {.put_status = "conflict", .took = "0"};
    sg_scim *s = run(&t, "POST", "/Users", agent);
    assert_int_equal(sg_scim_status(s), 409);
    assert_sent_ends_with(&t, "unassign p1 jdoe\nput\n");
    sg_scim_free(s);
}

/* the change took the user's named seat (no longer a lead), then was
 * refused: the seat is given back */
static void test_refused_put_gives_a_taken_seat_again(void **state)
{
    (void)state;
    script_t t = {.put_status = "conflict", .took = "1"};
    sg_scim *s = run(&t, "POST", "/Users", agent);
    assert_int_equal(sg_scim_status(s), 409);
    assert_non_null(strstr(t.sent, "unassign p1 jdoe\nput\nassign p1 jdoe\n"));
    sg_scim_free(s);
}

/* the put goes through: the seat stays */
static void test_accepted_put_keeps_the_seat(void **state)
{
    (void)state;
    script_t t = {.put_status = "ok"};
    sg_scim *s = run(&t, "POST", "/Users", lead);
    assert_int_equal(sg_scim_status(s), 201);
    assert_non_null(strstr(t.sent, "assign p1 jdoe\n"));
    assert_null(strstr(t.sent, "unassign"));
    sg_scim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_put_gives_the_seat_back),
        cmocka_unit_test(test_missing_user_gives_the_seat_back),
        cmocka_unit_test(test_retries_used_up_give_the_seat_back),
        cmocka_unit_test(test_refusal_without_seats_sends_nothing_more),
        cmocka_unit_test(test_refused_put_gives_a_taken_seat_again),
        cmocka_unit_test(test_refusal_after_a_retry_gives_the_seat_back),
        cmocka_unit_test(test_accepted_put_keeps_the_seat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
