/* seatctl: user import, user show and doctor (presentation only). */
#include "seatctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads and validates the whole file before seatctl connects. */
void prepare_user_import(opts_t *o)
{
    char err[SG_ERR_MAX];
    const char *path = o->npos ? o->pos[0] : "-";
    size_t len;
    char *buf = read_all(path, &len, err, sizeof(err));
    if (buf == NULL)
        die_usage("%s", err);
    if (sg_user_csv_parse(buf, len, &o->rows, &o->nrows, err, sizeof(err)) != 0) {
        free(buf);
        fprintf(stderr, "seatctl: %s: %s; nothing was imported\n", path, err);
        exit(EX_USAGE);
    }
    free(buf);
}

int cmd_user_import(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    sg_user_row *rows = o->rows;
    size_t n = o->nrows;
    o->rows = NULL;
    long changed = 0, unchanged = 0;
    int rc = sg_user_import(c, rows, n, "cli", &changed, &unchanged, err, sizeof(err));
    free(rows);
    if (rc != SG_OK)
        return report_err(rc, err);
    if (json_out) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "users", json_object_new_int64((int64_t)n));
        json_object_object_add(j, "changed", json_object_new_int64(changed));
        json_object_object_add(j, "unchanged", json_object_new_int64(unchanged));
        print_json(j);
    } else {
        printf("imported %zu users: %ld changed, %ld unchanged\n", n, changed, unchanged);
    }
    return EX_OK;
}

/* what a user holds in one pool, as JSON: the fields user show and explain
 * share */
static json_object *pool_seat_json(const sg_user_pool *p)
{
    json_object *x = json_object_new_object();
    json_object_object_add(x, "pool", json_object_new_string(p->pool));
    json_object_object_add(x, "seat", json_object_new_string(p->named      ? "named"
                                                             : p->lease_ms ? "floating"
                                                                           : "none"));
    json_object_object_add(x, "sessions", json_object_new_int64(p->sessions));
    return x;
}

/* a user's record as JSON: the fields user show and explain share */
static json_object *user_json(const sg_user_info *u)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "user", json_object_new_string(u->user));
    json_object_object_add(j, "registered", json_object_new_boolean(u->registered));
    json_object_object_add(j, "disabled", json_object_new_boolean(u->disabled));
    json_object_object_add(j, "service_account", json_object_new_boolean(u->service));
    return j;
}

int cmd_user_show(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    sg_user_info u;
    int rc = sg_user_get(c, o->pos[0], &u, err, sizeof(err));
    if (rc != SG_OK)
        return report_err(rc, err);
    if (json_out) {
        json_object *j = user_json(&u);
        json_object *g = json_object_new_array();
        for (char *p = u.groups; *p;) {
            char *e = strchr(p, ',');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            json_object_array_add(g, json_object_new_string_len(p, (int)l));
            p = e ? e + 1 : p + l;
        }
        json_object_object_add(j, "groups", g);
        json_object_object_add(j, "version", json_object_new_int64(u.version));
        json_object *pools = json_object_new_array();
        for (size_t i = 0; i < u.npools; i++) {
            const sg_user_pool *p = &u.pools[i];
            json_object *x = pool_seat_json(p);
            json_object_object_add(x, "lease_expires_ms", json_object_new_int64(p->lease_ms));
            json_object_object_add(x, "last_used_ms", json_object_new_int64(p->last_used_ms));
            json_object_object_add(x, "pool_record", json_object_new_string(p->projected));
            json_object_array_add(pools, x);
        }
        json_object_object_add(j, "pools", pools);
        print_json(j);
    } else {
        printf("user:            %s%s\n", u.user, u.registered ? "" : " (not registered)");
        printf("disabled:        %s\n", u.disabled ? "yes" : "no");
        printf("service account: %s\n", u.service ? "yes" : "no");
        printf("groups:          %s\n", u.groups[0] ? u.groups : "-");
        printf("%-20s %-9s %-21s %8s %-21s %s\n", "POOL", "SEAT", "LEASE EXPIRES", "SESSIONS",
               "LAST USED", "POOL RECORD");
        for (size_t i = 0; i < u.npools; i++) {
            const sg_user_pool *p = &u.pools[i];
            char le[40], lu[40];
            fmt_time(p->lease_ms, le, sizeof(le));
            fmt_time(p->last_used_ms, lu, sizeof(lu));
            printf("%-20s %-9s %-21s %8ld %-21s %s\n", p->pool,
                   p->named ? "named" : p->lease_ms ? "floating" : "-", le, p->sessions, lu,
                   p->projected[0] ? p->projected : "-");
        }
    }
    sg_user_info_free(&u);
    return EX_OK;
}

struct doctor_out {
    json_object *arr;
    int fix;
};

static void doctor_event(void *ud, const char *pool, const char *what, const char *detail,
                         long count)
{
    struct doctor_out *d = ud;
    if (d->arr) {
        json_object *x = json_object_new_object();
        json_object_object_add(x, "pool", json_object_new_string(pool));
        json_object_object_add(x, "finding", json_object_new_string(what));
        json_object_object_add(x, "detail", json_object_new_string(detail));
        json_object_object_add(x, "count", json_object_new_int64(count));
        json_object_array_add(d->arr, x);
    } else {
        printf("%-20s %-18s %6ld  %s%s\n", pool[0] ? pool : "-", what, count, detail,
               d->fix ? " (fixed)" : "");
    }
}

int cmd_doctor(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    struct doctor_out d = {json_out ? json_object_new_array() : NULL, o->fix};
    long findings = 0;
    int rc = sg_doctor(c, o->fix, doctor_event, &d, &findings, err, sizeof(err));
    if (rc != SG_OK) {
        if (d.arr)
            json_object_put(d.arr);
        return report_err(rc, err);
    }
    if (d.arr) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "findings", d.arr);
        json_object_object_add(j, "count", json_object_new_int64(findings));
        json_object_object_add(j, "fixed", json_object_new_boolean(o->fix));
        print_json(j);
    } else if (findings == 0) {
        printf("doctor: no drift found\n");
    } else {
        printf("doctor: %ld finding%s%s\n", findings, findings == 1 ? "" : "s",
               o->fix ? ", repaired (run doctor again to confirm)" : "; seatctl doctor --fix repairs");
    }
    return findings && !o->fix ? EX_DENIED : EX_OK;
}

/* ---- explain: why this person has what they have ------------------------------ */

static json_object *event_json(const sg_explain_event *ev)
{
    char t[40];
    json_object *o = json_object_new_object();
    sg_fmt_rfc3339(ev->at_ms, t, sizeof(t));
    json_object_object_add(o, "at", json_object_new_string(t));
    for (int i = 0; i < SG_EXPLAIN_KEEP; i++)
        if (ev->field[i] && ev->field[i][0])
            json_object_object_add(o, sg_explain_fields[i], json_object_new_string(ev->field[i]));
    return o;
}

static void print_change(const char *what, const sg_explain_event *ev)
{
    char t[40];
    sg_fmt_rfc3339(ev->at_ms, t, sizeof(t));
    const char *by = sg_explain_field(ev, "by"), *rules = sg_explain_field(ev, "reason");
    printf("%s %s at %s by %s, rules %s", what, sg_explain_field(ev, "ev"), t, by[0] ? by : "?",
           rules[0] ? rules : "?");
}

int cmd_explain(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    const char *user = o->pos[0];
    if (sg_valid_ident(user, err, sizeof(err)) != 0)
        die_usage("user: %s", err);
    sg_explain x;
    int rc = sg_explain_get(c, user, &x, err, sizeof(err));
    if (rc != SG_OK)
        return report_err(rc, err);
    const sg_user_info *u = &x.user;
    if (json_out) {
        json_object *j = user_json(u);
        json_object_object_add(j, "groups", json_object_new_string(u->groups));
        json_object_object_add(j, "record_from_sync",
                               x.record.at_ms ? event_json(&x.record) : NULL);
        json_object *pools = json_object_new_array();
        for (size_t i = 0; i < u->npools; i++) {
            const sg_user_pool *p = &u->pools[i];
            if (!p->named && !p->lease_ms && !p->sessions)
                continue;
            json_object *po = pool_seat_json(p);
            if (p->named && x.named[i].at_ms)
                json_object_object_add(po, "given_by_sync", event_json(&x.named[i]));
            json_object_array_add(pools, po);
        }
        json_object_object_add(j, "holds", pools);
        json_object *last = json_object_new_array();
        for (size_t i = 0; i < x.nlast; i++)
            json_object_array_add(last, event_json(&x.last[i]));
        json_object_object_add(j, "last", last);
        print_json(j);
    } else {
        printf("%s: %s%s, groups %s\n", u->user, u->disabled ? "disabled" : "enabled",
               u->service ? ", service account" : "", u->groups[0] ? u->groups : "-");
        if (x.record.at_ms) {
            print_change("  record from", &x.record);
            putchar('\n');
        } else {
            printf("  record set by hand (no sync changed it)\n");
        }
        size_t np = 0;
        for (size_t i = 0; i < u->npools; i++)
            np += u->pools[i].named || u->pools[i].lease_ms || u->pools[i].sessions;
        printf("holds: %s\n", np ? "" : "nothing");
        for (size_t i = 0; i < u->npools; i++) {
            const sg_user_pool *p = &u->pools[i];
            if (!p->named && !p->lease_ms && !p->sessions)
                continue;
            printf("  %-20s %-9s", p->pool, p->named ? "named" : p->lease_ms ? "floating" : "none");
            if (p->named && x.named[i].at_ms)
                print_change(" given by", &x.named[i]);
            putchar('\n');
        }
        printf("last events (%zu):\n", x.nlast);
        for (size_t i = 0; i < x.nlast; i++) {
            char t[40];
            sg_fmt_rfc3339(x.last[i].at_ms, t, sizeof(t));
            printf("  %s", t);
            static const char *const show[] = {"pool", "ev", "result", "reason", "via"};
            for (size_t k = 0; k < sizeof(show) / sizeof(show[0]); k++) {
                const char *v = sg_explain_field(&x.last[i], show[k]);
                if (v[0])
                    printf(" %s", v);
            }
            putchar('\n');
        }
    }
    sg_explain_free(&x);
    return EX_OK;
}
