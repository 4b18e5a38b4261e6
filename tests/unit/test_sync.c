/* Unit tests: the sync map parser and the people of a CSV or SCIM export
 * (common/sync_parse.c), without Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seatgate.h"

static const char good_map[] = "# a map\n[source]\nuser = login\nactive = status\n"
                               "active_values = Active, on_leave\nattr job = job_code\n"
                               "attr groups = groups\nscim job = title\n\n[rule agents]\n"
                               "if job = ITSM-L1, itsm-l2\ngroups = technicians\n"
                               "named = technicians\n[rule admins]\nif groups = Admins\n"
                               "service_account = yes\n";

static void map_ok(const char *text, sg_sync_map *m)
{
    char err[SG_ERR_MAX];
    if (sg_sync_map_parse(text, strlen(text), m, err, sizeof(err)) != 0)
        fail_msg("map refused: %s", err);
}

static void map_bad(const char *text, const char *want)
{
    sg_sync_map m;
    char err[SG_ERR_MAX] = "";
    if (sg_sync_map_parse(text, strlen(text), &m, err, sizeof(err)) == 0) {
        sg_sync_map_free(&m);
        fail_msg("map accepted: %s", text);
    }
    if (strstr(err, want) == NULL)
        fail_msg("error '%s' does not say '%s'", err, want);
    assert_int_equal(m.nrules, 0);
    assert_null(m.rules);
}

static void test_map(void **state)
{
    (void)state;
    sg_sync_map m;
    map_ok(good_map, &m);
    assert_string_equal(m.user_col, "login");
    assert_string_equal(m.active_values, ",active,on_leave,");
    assert_int_equal(m.nattrs, 2);
    assert_string_equal(m.attrs[0].csv, "job_code");
    assert_string_equal(m.attrs[0].scim, "title");
    assert_int_equal(m.nrules, 2);
    assert_string_equal(m.rules[0].conds[0].values, ",itsm-l1,itsm-l2,");
    assert_string_equal(m.rules[0].groups, ",technicians,");
    assert_string_equal(m.rules[0].named, ",technicians,");
    assert_int_equal(m.rules[1].service, 1);
    sg_sync_map_free(&m);

    map_bad("user = x\n", "before any [source]");
    map_bad("[source]\n", "must say user = COLUMN");
    map_bad("[source]\nuser = x\n[rules a]\n", "unknown section");
    map_bad("[source]\nuser = x\n[rule a b]\n", "unknown section");
    map_bad("[source]\nuser = x\n[rule a]\n[rule a]\n", "defined twice");
    map_bad("[source]\nuser = x\nfoo = y\n", "map line 3: unknown setting 'foo'");
    map_bad("[source]\nuser = x\n[rule a]\nif job = x\n", "tests 'job'");
    map_bad("[source]\nuser = x\nattr job = j\n[rule a]\nif job = ,\n", "no value");
    map_bad("[source]\nuser = x\n[rule a]\ngroups = a,b=c\n", "map line 4: groups:");
    map_bad("[source]\nuser = x\n[rule a]\nnamed = a{b}\n", "map line 4: named:");
    map_bad("[source]\nuser = x\n[rule a]\nservice_account = maybe\n", "yes or no");
    map_bad("[source]\nuser = x\n[rule a]\nthis is not a setting\n", "expected key = value");
    map_bad("[source]\nuser = x\nattr a b = c\n", "unknown setting");
}

typedef int (*people_fn)(const sg_sync_map *, const char *, size_t, sg_sync_person **, size_t *,
                         char *, size_t);

/* input refused: the error says want, and nothing is handed out */
static void people_bad(people_fn fn, const sg_sync_map *m, const char *text, const char *want)
{
    sg_sync_person *p = (sg_sync_person *)&p;
    size_t n = 9;
    char err[SG_ERR_MAX] = "";
    assert_int_equal(fn(m, text, strlen(text), &p, &n, err, sizeof(err)), -1);
    if (strstr(err, want) == NULL)
        fail_msg("'%s' does not say '%s' (input: %s)", err, want, text);
    assert_null(p);
    assert_int_equal(n, 0);
}

static void test_people_csv(void **state)
{
    (void)state;
    sg_sync_map m;
    map_ok(good_map, &m);
    const char *csv = "login,status,job_code,groups\nana,ACTIVE,ITSM-L1,Admins;Staff\n"
                      "bo,gone,itsm-l2,\ncy,On_Leave,HR,\n";
    sg_sync_person *p;
    size_t n;
    char err[SG_ERR_MAX];
    assert_int_equal(sg_sync_people_csv(&m, csv, strlen(csv), &p, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    assert_string_equal(p[0].user, "ana");
    assert_int_equal(p[0].active, 1);
    assert_int_equal(p[1].active, 0);
    assert_int_equal(p[2].active, 1);
    assert_true(sg_sync_rule_matches(&m, &m.rules[0], &p[0]));
    assert_true(sg_sync_rule_matches(&m, &m.rules[0], &p[1]));
    assert_false(sg_sync_rule_matches(&m, &m.rules[0], &p[2]));
    assert_true(sg_sync_rule_matches(&m, &m.rules[1], &p[0])); /* a list value */
    assert_false(sg_sync_rule_matches(&m, &m.rules[1], &p[1]));
    sg_sync_people_free(p, n);

    static const struct {
        const char *csv, *want;
    } bad[] = {
        {"name,status,job_code,groups\n", "user column 'login' is not in the header"},
        {"login,job_code,groups\n", "active column 'status'"},
        {"login,status,job_code\n", "attr groups column 'groups'"},
        {"login,status,job_code,groups\n,active,x,\n", "line 2, field login"},
        {"login,status,job_code,groups\na,active,x,\na,active,y,\n",
         "line 3, field login: 'a' is already on line 2"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        people_bad(sg_sync_people_csv, &m, bad[i].csv, bad[i].want);
    sg_sync_map_free(&m);
}

static void test_people_scim(void **state)
{
    (void)state;
    sg_sync_map m;
    map_ok(good_map, &m);
    const char *doc =
        "{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"],\"Resources\":["
        "{\"userName\":\"ana\",\"title\":\"ITSM-L1\",\"groups\":[{\"value\":\"1\",\"display\":"
        "\"Admins\"}]},{\"userName\":\"bo\",\"active\":false,\"title\":\"itsm-l2\"}]}\n";
    sg_sync_person *p;
    size_t n;
    char err[SG_ERR_MAX];
    assert_int_equal(sg_sync_people_scim(&m, doc, strlen(doc), &p, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_int_equal(p[0].active, 1);
    assert_int_equal(p[1].active, 0);
    assert_string_equal(p[0].vals[0], "itsm-l1");
    assert_string_equal(p[0].vals[1], "admins");
    assert_true(sg_sync_rule_matches(&m, &m.rules[1], &p[0]));
    sg_sync_people_free(p, n);
    /* one resource a line */
    const char *nd = "{\"userName\":\"a\"}\n\n{\"userName\":\"b\",\"active\":true}\n";
    assert_int_equal(sg_sync_people_scim(&m, nd, strlen(nd), &p, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    sg_sync_people_free(p, n);
    static const struct {
        const char *doc, *want;
    } bad[] = {
        {"{\"Resources\":[{}]}", "resource 1, field userName"},
        {"{\"Resources\":[{\"userName\":\"a\",\"active\":1}]}", "resource 1, field active"},
        {"{\"Resources\":[{\"userName\":\"a\"},{\"userName\":\"a\"}]}", "already resource 1"},
        {"{\"Resources\":[{\"userName\":\"a\",\"groups\":\"x\"}]}", "field groups"},
        {"{\"userName\":\"a\"}\nnot json\n", "line 2: not one JSON resource"},
        {"{\"Resources\":[{\"userName\":\"a\",\"title\":[1]}]}", "resource 1, field title"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        people_bad(sg_sync_people_scim, &m, bad[i].doc, bad[i].want);
    sg_sync_map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_people_csv),
        cmocka_unit_test(test_people_scim),
    };
    return cmocka_run_group_tests_name("sync", tests, NULL, NULL);
}
