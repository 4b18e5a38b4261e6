/* libFuzzer target: the sync map parser and the people of an export, CSV
 * and SCIM 2.0 JSON (common/sync_parse.c, common/csv.c, json-c). The input is a map, or a map and an
 * export separated by a line "%%"; each half is also tried against a fixed
 * other half. Accepted input must hold what the plan relies on. */
#include "seatgate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_sync: check failed: %s (line %d)\n", #c, __LINE__);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char fixed_map[] = "[source]\nuser = login\nactive = status\nattr job = job\n"
                                "attr groups = groups\n[rule a]\nif job = x, y\ngroups = g1\n"
                                "named = p1\n[rule b]\nif groups = admins\nservice_account = yes\n";
static const char fixed_export[] = "login,status,job,groups\nana,active,x,admins;staff\n"
                                   "bo,gone,y,\n";
static const char fixed_scim[] = "{\"Resources\":[{\"userName\":\"ana\",\"active\":true,"
                                 "\"job\":\"x\",\"groups\":[{\"display\":\"admins\"}]}]}";

static void people(const sg_sync_map *m, const char *buf, size_t len, int scim)
{
    sg_sync_person *p = (sg_sync_person *)&p;
    size_t n = 7;
    char err[SG_ERR_MAX];
    int rc = scim ? sg_sync_people_scim(m, buf, len, &p, &n, err, sizeof(err))
                  : sg_sync_people_csv(m, buf, len, &p, &n, err, sizeof(err));
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            CHECK(sg_valid_ident(p[i].user, NULL, 0) == 0);
            CHECK(p[i].nvals == m->nattrs);
            for (size_t k = 0; k < i; k++)
                CHECK(strcmp(p[k].user, p[i].user) != 0);
            for (size_t r = 0; r < m->nrules; r++)
                (void)sg_sync_rule_matches(m, &m->rules[r], &p[i]);
        }
        sg_sync_people_free(p, n);
    } else {
        CHECK(p == NULL && n == 0 && err[0] != '\0');
    }
}

static void map_then(const char *mbuf, size_t mlen, const char *ebuf, size_t elen)
{
    sg_sync_map m;
    char err[SG_ERR_MAX];
    if (sg_sync_map_parse(mbuf, mlen, &m, err, sizeof(err)) != 0) {
        CHECK(err[0] != '\0' && m.nrules == 0 && m.rules == NULL);
        return;
    }
    CHECK(m.user_col[0] != '\0');
    for (size_t r = 0; r < m.nrules; r++) {
        CHECK(m.rules[r].groups[0] == ',' && m.rules[r].named[0] == ',');
        for (size_t k = 0; k < m.rules[r].nconds; k++)
            CHECK(m.rules[r].conds[k].values[0] == ',' && m.rules[r].conds[k].values[1]);
    }
    people(&m, ebuf, elen, 0);
    people(&m, ebuf, elen, 1);
    sg_sync_map_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const char *s = (const char *)data;
    const char *sep = NULL;
    for (size_t i = 0; i + 4 <= size; i++)
        if (memcmp(s + i, "\n%%\n", 4) == 0) {
            sep = s + i;
            break;
        }
    if (sep) {
        size_t ml = (size_t)(sep - s) + 1;
        map_then(s, ml, sep + 4, size - ml - 3);
    }
    map_then(s, size, fixed_export, sizeof(fixed_export) - 1);
    map_then(s, size, fixed_scim, sizeof(fixed_scim) - 1);
    map_then(fixed_map, sizeof(fixed_map) - 1, s, size);
    return 0;
}
