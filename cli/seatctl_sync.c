/* seatctl sync: an HR export through a map file into user records and named
 * seats (libseatgate's sg_sync_*); this file reads the files and prints the
 * plan (presentation only). */
#include "seatctl.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_object *strv_json(char **v, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_string(v[i]));
    return a;
}

static json_object *plan_json(const sg_sync_plan *pl, int applied)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "people", json_object_new_int64((long long)pl->nrows));
    json_object *recs = json_object_new_array();
    for (size_t i = 0; i < pl->nrows; i++) {
        const sg_sync_change *ch = &pl->changes[i];
        const sg_user_row *row = &pl->rows[i];
        if (!ch->record)
            continue;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "user", json_object_new_string(row->user));
        json_object_object_add(o, "rules", json_object_new_string(ch->rules));
        json_object_object_add(o, "groups", json_object_new_string(row->groups));
        json_object_object_add(o, "disabled", json_object_new_boolean(row->disabled));
        json_object_object_add(o, "service_account", json_object_new_boolean(row->service));
        json_object *was = NULL;
        if (ch->existed) {
            was = json_object_new_object();
            json_object_object_add(was, "groups",
                                   json_object_new_string(ch->old_groups ? ch->old_groups : ""));
            json_object_object_add(was, "disabled", json_object_new_boolean(ch->was_disabled));
            json_object_object_add(was, "service_account",
                                   json_object_new_boolean(ch->was_service));
        }
        json_object_object_add(o, "was", was);
        json_object_array_add(recs, o);
    }
    json_object_object_add(j, "records", recs);
    json_object *pools = json_object_new_array();
    for (size_t i = 0; i < pl->npools; i++) {
        const sg_sync_pool *sp = &pl->pools[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "pool", json_object_new_string(sp->pool));
        json_object_object_add(o, "bought", json_object_new_int64(sp->bought));
        json_object_object_add(o, "assigned_before", json_object_new_int64(sp->before));
        json_object_object_add(o, "assigned_after", json_object_new_int64(sp->after));
        json_object_object_add(o, "assign", strv_json(sp->assign, sp->nassign));
        json_object_object_add(o, "unassign", strv_json(sp->unassign, sp->nunassign));
        json_object_array_add(pools, o);
    }
    json_object_object_add(j, "named", pools);
    json_object_object_add(j, "disable", strv_json(pl->disable, pl->ndisable));
    json_object_object_add(j, "applied", json_object_new_boolean(applied));
    return j;
}

/* a list of names, the first SHOW of them */
#define SHOW 20
static void names(const char *lead, char **v, size_t n)
{
    for (size_t k = 0; k < n && k < SHOW; k++)
        printf("%s%s", k ? ", " : lead, v[k]);
    if (n > SHOW)
        printf(" and %zu more (--json lists them all)", n - SHOW);
}

static void plan_text(const sg_sync_plan *pl, const char *from)
{
    size_t shown = 0;
    size_t na = 0, nu = 0;
    for (size_t i = 0; i < pl->npools; i++) {
        na += pl->pools[i].nassign;
        nu += pl->pools[i].nunassign;
    }
    printf("sync of %s: %zu people; %zu records change, %zu disabled as absent, %zu named "
           "seats to give, %zu to take back\n",
           from, pl->nrows, pl->nrecords, pl->ndisable, na, nu);
    for (size_t i = 0; i < pl->nrows; i++) {
        const sg_sync_change *ch = &pl->changes[i];
        const sg_user_row *row = &pl->rows[i];
        if (!ch->record)
            continue;
        if (shown++ == SHOW) {
            printf("  ... and %zu more records (--json lists them all)\n", pl->nrecords - SHOW);
            break;
        }
        printf("  %-20s groups %s%s%s", row->user, row->groups[0] ? row->groups : "-",
               row->disabled ? ", disabled" : "", row->service ? ", service account" : "");
        if (ch->existed)
            printf(" (was %s%s%s)", ch->old_groups && ch->old_groups[0] ? ch->old_groups : "-",
                   ch->was_disabled ? ", disabled" : "",
                   ch->was_service ? ", service account" : "");
        else
            printf(" (new)");
        printf("  rules: %s\n", ch->rules[0] ? ch->rules : "none");
    }
    if (pl->ndisable) {
        names("  disabled as absent from the export (--full): ", pl->disable, pl->ndisable);
        putchar('\n');
    }
    for (size_t i = 0; i < pl->npools; i++) {
        const sg_sync_pool *sp = &pl->pools[i];
        printf("  pool %s: named seats %ld -> %ld of %ld bought", sp->pool, sp->before, sp->after,
               sp->bought);
        names("; give ", sp->assign, sp->nassign);
        names("; take back ", sp->unassign, sp->nunassign);
        putchar('\n');
    }
}

/* an input error: said, nothing changed, the caller cleans up */
static int bad_input(const char *what, const char *err)
{
    fprintf(stderr, "seatctl: %s: %s\n", what, err);
    return EX_USAGE;
}

int cmd_sync(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    if (o->from == NULL || o->map == NULL)
        die_usage("sync needs --from FILE and --map FILE");
    int scim = o->format && strcmp(o->format, "scim") == 0;
    if (o->format && !scim && strcmp(o->format, "csv") != 0)
        die_usage("--format takes csv or scim, not '%s'", o->format);
    size_t mlen, flen;
    char *mbuf = read_all(o->map, &mlen, err, sizeof(err));
    if (mbuf == NULL)
        return bad_input("--map", err);
    sg_sync_map m;
    int rc = sg_sync_map_parse(mbuf, mlen, &m, err, sizeof(err));
    free(mbuf);
    if (rc != 0)
        return bad_input(o->map, err);
    char *fbuf = read_all(o->from, &flen, err, sizeof(err));
    if (fbuf == NULL) {
        sg_sync_map_free(&m);
        return bad_input("--from", err);
    }
    sg_sync_person *people = NULL;
    size_t n = 0;
    rc = scim ? sg_sync_people_scim(&m, fbuf, flen, &people, &n, err, sizeof(err))
              : sg_sync_people_csv(&m, fbuf, flen, &people, &n, err, sizeof(err));
    free(fbuf);
    if (rc != 0) {
        sg_sync_map_free(&m);
        return bad_input(o->from, err);
    }
    sg_sync_plan pl;
    rc = sg_sync_plan_make(c, &m, people, n, o->full, &pl, err, sizeof(err));
    sg_sync_people_free(people, n);
    sg_sync_map_free(&m);
    if (rc != SG_OK)
        return report_err(rc, err);
    /* who asked: the login behind seatctl, for the change log */
    char by[64];
    struct passwd *pw = getpwuid(getuid());
    snprintf(by, sizeof(by), "%s", pw ? pw->pw_name : "?");
    int applied = 0, done = 0;
    if (!o->dry_run) {
        rc = sg_sync_apply(c, &pl, "sync", &done, err, sizeof(err));
        applied = rc == SG_OK;
    }
    /* the change log, also of a sync that stopped part way: what was
     * applied, what was not ("not_applied"), what may be in part ("unknown") */
    char lerr[SG_ERR_MAX];
    int lrc = sg_sync_log(c, &pl, done, !o->dry_run, by, lerr, sizeof(lerr));
    if (rc != SG_OK && done)
        fprintf(stderr, "seatctl: sync stopped part way: %s%s%s were applied; "
                        "run it again to finish\n",
                done & SG_SYNC_RECORDS ? "user records" : "",
                done & SG_SYNC_UNASSIGN ? ", seats taken back" : "",
                done & SG_SYNC_ASSIGN ? ", seats given" : "");
    if (lrc != SG_OK) {
        if (rc == SG_OK) {
            rc = lrc;
            snprintf(err, sizeof(err), "%s", lerr);
        } else {
            fprintf(stderr, "seatctl: the change log could not be written: %s\n", lerr);
        }
    }
    if (json_out)
        print_json(plan_json(&pl, applied));
    else {
        plan_text(&pl, o->from);
        printf("%s\n", o->dry_run ? "dry run: nothing changed" : applied ? "applied" : "");
    }
    sg_sync_plan_free(&pl);
    return rc == SG_OK ? EX_OK : report_err(rc, err);
}
