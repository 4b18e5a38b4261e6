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

int cmd_user_show(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    sg_user_info u;
    int rc = sg_user_get(c, o->pos[0], &u, err, sizeof(err));
    if (rc != SG_OK)
        return report_err(rc, err);
    if (json_out) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "user", json_object_new_string(u.user));
        json_object_object_add(j, "registered", json_object_new_boolean(u.registered));
        json_object_object_add(j, "disabled", json_object_new_boolean(u.disabled));
        json_object_object_add(j, "service_account", json_object_new_boolean(u.service));
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
            json_object *x = json_object_new_object();
            json_object_object_add(x, "pool", json_object_new_string(p->pool));
            json_object_object_add(x, "seat",
                                   json_object_new_string(p->named      ? "named"
                                                          : p->lease_ms ? "floating"
                                                                        : "none"));
            json_object_object_add(x, "lease_expires_ms", json_object_new_int64(p->lease_ms));
            json_object_object_add(x, "sessions", json_object_new_int64(p->sessions));
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
        printf("%-20s %-18s %6ld  %s%s\n", pool, what, count, detail, d->fix ? " (fixed)" : "");
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
