/* seatctl audit: export the audit log as JSON lines or CSV (presentation only). */
#include "seatctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the columns of the CSV export, in order; JSON lines carry the same names.
 * New columns go at the end, so that readers of older exports keep working. */
static const char *const columns[] = {"time",   "at",     "pool",    "ev",    "user",
                                      "obo",    "via",    "host",    "pid",   "client",
                                      "result", "reason", "seat",    "session", "count",
                                      "since",  "id",     "by",      "before",  "after"};
#define NCOLUMNS (sizeof(columns) / sizeof(columns[0]))

struct audit_out {
    int csv;
    long n;
};

static int audit_entry(void *ud, const sg_audit_entry *e)
{
    struct audit_out *ao = ud;
    char tw[40], ta[40], ts[40] = "";
    sg_fmt_rfc3339(strtoll(e->id, NULL, 10), tw, sizeof(tw));
    sg_fmt_rfc3339(e->at_ms, ta, sizeof(ta));
    const char *since = sg_audit_field(e, "since");
    if (*since)
        sg_fmt_rfc3339(strtoll(since, NULL, 10), ts, sizeof(ts));
    const char *vals[NCOLUMNS];
    for (size_t i = 0; i < NCOLUMNS; i++)
        vals[i] = sg_audit_field(e, columns[i]);
    vals[0] = tw;
    vals[1] = ta;
    vals[2] = e->pool;
    vals[15] = ts;
    vals[16] = e->id; /* the columns after it (by, before, after) came later */
    if (ao->csv) {
        for (size_t i = 0; i < NCOLUMNS; i++) {
            if (i)
                fputc(',', stdout);
            sg_csv_field(stdout, vals[i]);
        }
        fputs("\r\n", stdout);
    } else {
        json_object *j = json_object_new_object();
        for (size_t i = 0; i < NCOLUMNS; i++) {
            if (strcmp(columns[i], "count") == 0 || strcmp(columns[i], "pid") == 0) {
                if (*vals[i])
                    json_object_object_add(j, columns[i],
                                           json_object_new_int64(strtoll(vals[i], NULL, 10)));
            } else if (*vals[i] || strcmp(columns[i], "user") == 0) {
                json_object_object_add(j, columns[i], json_object_new_string(vals[i]));
            }
        }
        puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
    }
    ao->n++;
    fflush(stdout);
    return 0;
}

int cmd_audit(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    struct audit_out ao = {0, 0};
    if (o->format) {
        if (strcmp(o->format, "csv") == 0)
            ao.csv = 1;
        else if (strcmp(o->format, "jsonl") != 0)
            die_usage("--format takes jsonl or csv, not '%s'", o->format);
    }
    if (json_out && ao.csv)
        die_usage("--json and --format csv do not go together");
    sg_audit_query q = {.pool = o->pool_filter, .user = o->user_filter, .follow = o->follow};
    if (q.user && sg_valid_ident(q.user, err, sizeof(err)) != 0)
        die_usage("--user: %s", err);
    long long now = sg_server_time_ms(c);
    if (now < 0)
        return report_err(SG_EBACKEND, "redis: TIME failed");
    if (o->since && sg_parse_time(o->since, now, &q.since_ms) != 0)
        die_usage("--since takes an RFC 3339 time (2026-11-29T10:00:00Z), a date or a "
                  "duration ago (2h), not '%s'",
                  o->since);
    if (o->until && sg_parse_time(o->until, now, &q.until_ms) != 0)
        die_usage("--until takes an RFC 3339 time (2026-11-29T10:00:00Z), a date or a "
                  "duration ago (2h), not '%s'",
                  o->until);
    if (q.since_ms && q.until_ms && q.until_ms < q.since_ms)
        die_usage("--until is before --since");
    if (ao.csv) {
        for (size_t i = 0; i < NCOLUMNS; i++)
            printf("%s%s", i ? "," : "", columns[i]);
        fputs("\r\n", stdout);
    }
    int rc = sg_audit_read(c, &q, audit_entry, &ao, err, sizeof(err));
    if (rc != SG_OK)
        return report_err(rc, err);
    return EX_OK;
}
