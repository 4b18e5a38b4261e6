/* Identity sync (seatctl sync): the plan, computed against Redis first and
 * applied only when it is whole and allowed. The input side (map, export)
 * is common/sync_parse.c. See docs/sync.md. */
#include "seatgate.h"
#include "internal.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define seterr sg_err_rc
#define in_list sg_sync_in_list

/* ---- the plan --------------------------------------------------------------------- */

void sg_sync_plan_free(sg_sync_plan *pl)
{
    free(pl->rows);
    for (size_t i = 0; i < pl->npools; i++) {
        sg_strv_free(pl->pools[i].assign, pl->pools[i].nassign);
        sg_strv_free(pl->pools[i].unassign, pl->pools[i].nunassign);
    }
    free(pl->pools);
    for (size_t i = 0; pl->changes && i < pl->nrows; i++) {
        free(pl->changes[i].old_groups);
        free(pl->changes[i].named);
    }
    free(pl->changes);
    sg_strv_free(pl->disable, pl->ndisable);
    sg_strv_free(pl->disable_was, pl->ndisable);
    memset(pl, 0, sizeof(*pl));
}

static int push(char ***v, size_t *n, const char *s)
{
    char **t = realloc(*v, (*n + 1) * sizeof(char *));
    if (t == NULL)
        return -1;
    *v = t;
    if ((t[*n] = strdup(s)) == NULL)
        return -1;
    (*n)++;
    return 0;
}

/* the groups of a record ",g1,g2," -> "g1,g2" sorted, for comparing */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void canon_groups(const char *list, char *out, size_t len)
{
    char tmp[2048], *items[SG_CSV_GROUPS_MAX + 8];
    size_t n = 0;
    snprintf(tmp, sizeof(tmp), "%s", list ? list : "");
    for (char *save = NULL, *it = strtok_r(tmp, ",", &save); it && n < SG_CSV_GROUPS_MAX + 8;
         it = strtok_r(NULL, ",", &save))
        items[n++] = it;
    qsort(items, n, sizeof(char *), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(out);
        snprintf(out + k, len - k, "%s%s", i ? "," : "", items[i]);
    }
}

int sg_sync_person_row(const sg_sync_map *m, const sg_sync_person *p, sg_user_row *row,
                       char *rules, size_t rlen, char *named, size_t nlen, char *err,
                       size_t errlen)
{
    /* the union of the matching rules' groups: at most what a user record
     * holds (SG_CSV_GROUPS_MAX groups, SG_CSV_GROUPS_LEN bytes), as user
     * import; more is refused, never cut */
    char groups[SG_CSV_GROUPS_LEN + 2] = ",";
    int ngroups = 0, service = p->service;
    memset(row, 0, sizeof(*row));
    rules[0] = '\0';
    if (named && nlen)
        snprintf(named, nlen, ",");
    for (size_t r = 0; r < m->nrules; r++) {
        const sg_sync_rule *ru = &m->rules[r];
        if (!sg_sync_rule_matches(m, ru, p))
            continue;
        size_t k = strlen(rules);
        if (k + strlen(ru->name) + 5 < rlen)
            snprintf(rules + k, rlen - k, "%s%s", k ? "," : "", ru->name);
        else if (k >= 3 && k + 4 < rlen && strcmp(rules + k - 3, "...") != 0)
            snprintf(rules + k, rlen - k, ",...");
        for (char *g = strchr(ru->groups, ','); g && g[1]; g = strchr(g + 1, ',')) {
            char one[SG_IDENT_MAX + 3];
            size_t gl = strcspn(g + 1, ",");
            snprintf(one, sizeof(one), "%.*s", (int)gl, g + 1);
            if (in_list(groups, one))
                continue;
            if (ngroups == SG_CSV_GROUPS_MAX || strlen(groups) + gl + 2 > sizeof(groups) - 1) {
                snprintf(err, errlen,
                         "the map's rules give %s more groups than a user record holds (%d "
                         "groups, %d bytes); rule %s adds %s",
                         p->user, SG_CSV_GROUPS_MAX, SG_CSV_GROUPS_LEN - 1, ru->name, one);
                return -1;
            }
            snprintf(groups + strlen(groups), sizeof(groups) - strlen(groups), "%s,", one);
            ngroups++;
        }
        for (char *q = strchr(ru->named, ','); named && p->active && q && q[1];
             q = strchr(q + 1, ',')) {
            char one[SG_POOL_MAX + 3];
            size_t ql = strcspn(q + 1, ",");
            snprintf(one, sizeof(one), "%.*s", (int)ql, q + 1);
            if (in_list(named, one))
                continue;
            if (strlen(named) + ql + 2 > nlen - 1) {
                snprintf(err, errlen,
                         "the map's rules give %s named seats in more pools than fit (%zu "
                         "bytes); rule %s adds %s",
                         p->user, nlen - 1, ru->name, one);
                return -1;
            }
            snprintf(named + strlen(named), nlen - strlen(named), "%s,", one);
        }
        if (ru->service)
            service = 1;
    }
    snprintf(row->user, sizeof(row->user), "%s", p->user);
    canon_groups(groups, row->groups, sizeof(row->groups));
    row->disabled = !p->active;
    row->service = service;
    row->line = p->line;
    return 0;
}

/* a user record as the change log writes it */
static void rec_text(int disabled, int service, const char *groups, char *buf, size_t len)
{
    snprintf(buf, len, "disabled=%d service_account=%d groups=%s", disabled, service,
             groups[0] ? groups : "-");
}

int sg_sync_plan_make(sg_conn *c, const sg_sync_map *m, const sg_sync_person *people, size_t n,
                      int full, sg_sync_plan *pl, char *err, size_t errlen)
{
    memset(pl, 0, sizeof(*pl));
    int rc = SG_OK;
    sg_strset who = {0}; /* user -> index in people */
    if (sg_strset_init(&who, n) != 0)
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (sg_strset_put(&who, people[i].user, (long)i) != 0)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    pl->rows = calloc(n + 1, sizeof(*pl->rows));
    pl->changes = calloc(n + 1, sizeof(*pl->changes));
    char **names = calloc(n + 1, sizeof(char *)), **recs = calloc(n + 1, sizeof(char *));
    if (pl->rows == NULL || pl->changes == NULL || names == NULL || recs == NULL)
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (size_t i = 0; rc == SG_OK && i < n; i++)
        names[i] = (char *)people[i].user;
    if (rc == SG_OK && n)
        rc = sg_registry_records(c, names, n, recs, err, errlen);
    /* every person's record from the rules */
    for (size_t i = 0; rc == SG_OK && i < n; i++) {
        const sg_sync_person *p = &people[i];
        sg_user_row *row = &pl->rows[i];
        sg_sync_change *ch = &pl->changes[i];
        char named[1024], e[SG_ERR_MAX];
        if (sg_sync_person_row(m, p, row, ch->rules, sizeof(ch->rules), named, sizeof(named), e,
                               sizeof(e)) != 0) {
            rc = seterr(err, errlen, SG_EINPUT, "%s", e);
            break;
        }
        if (strcmp(named, ",") != 0 && (ch->named = strdup(named)) == NULL)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        snprintf(ch->user, sizeof(ch->user), "%s", p->user);
        /* the record now */
        const char *rec = recs[i];
        char now_groups[2048] = "";
        if (rec && strlen(rec) >= 2) {
            const char *comma = strchr(rec + 2, ',');
            canon_groups(comma ? comma : "", now_groups, sizeof(now_groups));
        }
        ch->existed = rec != NULL;
        ch->was_disabled = rec && rec[0] == '1';
        ch->was_service = rec && rec[1] == '1';
        ch->old_groups = strdup(now_groups);
        if (ch->old_groups == NULL)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        ch->record = !rec || ch->was_disabled != row->disabled || ch->was_service != row->service ||
                     strcmp(now_groups, row->groups) != 0;
        if (ch->record)
            pl->nrecords++;
    }
    pl->nrows = n;
    sg_strv_free(recs, n);
    free(names);
    /* named seats of every pool a rule names */
    char pools[4096] = ",";
    for (size_t r = 0; r < m->nrules; r++)
        for (char *q = strchr(m->rules[r].named, ','); q && q[1]; q = strchr(q + 1, ',')) {
            char one[SG_POOL_MAX + 3];
            size_t ql = strcspn(q + 1, ",");
            snprintf(one, sizeof(one), "%.*s", (int)ql, q + 1);
            if (!in_list(pools, one) && strlen(pools) + ql + 2 < sizeof(pools))
                snprintf(pools + strlen(pools), sizeof(pools) - strlen(pools), "%s,", one);
        }
    /* who the sync manages: these people, and those it managed before */
    const char *mv[] = {"SMEMBERS", SG_KEY_SYNCED};
    redisReply *managed = rc == SG_OK ? sg_cmdv(c, err, errlen, 2, mv) : NULL;
    if (rc == SG_OK && managed == NULL)
        rc = SG_EBACKEND;
    sg_strset mset = {0}; /* the people managed before */
    if (rc == SG_OK && sg_strset_init(&mset, managed->elements) != 0)
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (size_t j = 0; rc == SG_OK && j < managed->elements; j++) {
        long i = sg_strset_get(&who, managed->element[j]->str);
        if (i >= 0)
            pl->changes[i].managed = 1;
        if (sg_strset_put(&mset, managed->element[j]->str, 1) != 0)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    for (char *q = strchr(pools, ','); rc == SG_OK && q && q[1]; q = strchr(q + 1, ',')) {
        char pool[SG_POOL_MAX + 1];
        size_t ql = strcspn(q + 1, ",");
        snprintf(pool, sizeof(pool), "%.*s", (int)ql, q + 1);
        sg_pool_info pi;
        rc = sg_pool_get(c, pool, &pi, err, errlen);
        if (rc == SG_EINPUT)
            rc = seterr(err, errlen, SG_EINPUT, "the map names pool %s, which does not exist",
                        pool);
        if (rc != SG_OK)
            break; /* a Redis failure keeps its own message and code */
        sg_sync_pool *sp = realloc(pl->pools, (pl->npools + 1) * sizeof(*sp));
        if (sp == NULL) {
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
            break;
        }
        pl->pools = sp;
        sp = &sp[pl->npools++];
        memset(sp, 0, sizeof(*sp));
        snprintf(sp->pool, sizeof(sp->pool), "%s", pool);
        sp->bought = pi.named;
        sp->before = pi.assigned;
        char kn[SG_KEY_MAX];
        sg_keyname(SG_K_NAMED, pool, kn, sizeof(kn));
        const char *nv[] = {"SMEMBERS", kn};
        redisReply *now = sg_cmdv(c, err, errlen, 2, nv);
        if (now == NULL) {
            rc = SG_EBACKEND;
            break;
        }
        sg_strset has_now = {0}; /* assigned in the pool now */
        if (sg_strset_init(&has_now, now->elements) != 0)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        for (size_t k = 0; rc == SG_OK && k < now->elements; k++)
            if (sg_strset_put(&has_now, now->element[k]->str, 1) != 0)
                rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        /* wanted: active people whose rules name the pool */
        for (size_t i = 0; rc == SG_OK && i < n; i++) {
            /* the pools the person's rules give (none when not active), as
             * sg_sync_person_row says for SCIM too */
            int want = pl->changes[i].named && in_list(pl->changes[i].named, pool);
            int has = sg_strset_get(&has_now, people[i].user) >= 0;
            if (want && !has && push(&sp->assign, &sp->nassign, people[i].user) != 0)
                rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
            if (!want && has && push(&sp->unassign, &sp->nunassign, people[i].user) != 0)
                rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        }
        /* managed before, absent now: with --full their seats go too */
        for (size_t k = 0; rc == SG_OK && full && k < now->elements; k++) {
            const char *u = now->element[k]->str;
            int managed_u = sg_strset_get(&mset, u) >= 0;
            int present = sg_strset_get(&who, u) >= 0;
            if (managed_u && !present && push(&sp->unassign, &sp->nunassign, u) != 0)
                rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        }
        sg_strset_free(&has_now);
        freeReplyObject(now);
        sp->after = sp->before - (long)sp->nunassign + (long)sp->nassign;
        if (rc == SG_OK && sp->after > sp->bought)
            rc = seterr(err, errlen, SG_EDENIED,
                        "pool %s: the plan assigns %ld named seats, the pool has bought %ld "
                        "(%ld assigned now, %zu to assign, %zu to take back); nothing applied",
                        pool, sp->after, sp->bought, sp->before, sp->nassign, sp->nunassign);
    }
    /* --full: people the sync managed who are absent now are disabled (those
     * disabled already are not listed again, run after run) */
    char **gone = NULL;
    size_t ngone = 0;
    for (size_t j = 0; rc == SG_OK && full && managed && j < managed->elements; j++) {
        const char *u = managed->element[j]->str;
        if (sg_strset_get(&who, u) < 0 && push(&gone, &ngone, u) != 0)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    char **was = ngone ? calloc(ngone, sizeof(char *)) : NULL;
    if (rc == SG_OK && ngone && was == NULL)
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    if (rc == SG_OK && ngone)
        rc = sg_registry_records(c, gone, ngone, was, err, errlen);
    for (size_t j = 0; rc == SG_OK && j < ngone; j++) {
        if (was[j] && was[j][0] == '1')
            continue; /* disabled already */
        char text[1300] = "-";
        if (was[j]) {
            char groups[SG_CSV_GROUPS_LEN + 8];
            const char *comma = strlen(was[j]) >= 2 ? strchr(was[j] + 2, ',') : NULL;
            canon_groups(comma ? comma : "", groups, sizeof(groups));
            rec_text(0, was[j][1] == '1', groups, text, sizeof(text));
        }
        size_t k = pl->ndisable;
        if (push(&pl->disable, &pl->ndisable, gone[j]) != 0)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        else {
            size_t kk = k;
            if (push(&pl->disable_was, &kk, text) != 0) {
                free(pl->disable[k]);
                pl->ndisable = k;
                rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
            }
        }
    }
    sg_strv_free(was, ngone);
    sg_strv_free(gone, ngone);
    sg_strset_free(&mset);
    if (managed)
        freeReplyObject(managed);
    sg_strset_free(&who);
    if (rc != SG_OK)
        sg_sync_plan_free(pl);
    return rc;
}

int sg_sync_apply(sg_conn *c, sg_sync_plan *pl, const char *via, int *done, char *err,
                  size_t errlen)
{
    long changed = 0, same = 0;
    int rc = SG_OK;
    *done = 0;
    /* the records that change, then seats taken back, then seats given */
    sg_user_row *rows = calloc(pl->nrows + pl->ndisable + 1, sizeof(*rows));
    size_t k = 0;
    if (rows == NULL)
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (size_t i = 0; i < pl->nrows; i++)
        if (pl->changes[i].record)
            rows[k++] = pl->rows[i];
    for (size_t i = 0; i < pl->ndisable; i++) {
        memset(&rows[k], 0, sizeof(rows[k]));
        snprintf(rows[k].user, sizeof(rows[k].user), "%s", pl->disable[i]);
        rows[k++].disabled = 1;
    }
    if (k)
        rc = sg_user_import(c, rows, k, via, &changed, &same, err, errlen);
    free(rows);
    if (rc == SG_OK)
        *done |= SG_SYNC_RECORDS;
    for (size_t i = 0; rc == SG_OK && i < pl->npools; i++) {
        sg_sync_pool *sp = &pl->pools[i];
        if (sp->nunassign)
            rc = sg_assign(c, sp->pool, 0, (const char **)sp->unassign, sp->nunassign, via, NULL,
                           err, errlen);
        sp->took_back = rc == SG_OK;
    }
    if (rc == SG_OK)
        *done |= SG_SYNC_UNASSIGN;
    for (size_t i = 0; rc == SG_OK && i < pl->npools; i++) {
        sg_sync_pool *sp = &pl->pools[i];
        if (sp->nassign)
            rc = sg_assign(c, sp->pool, 1, (const char **)sp->assign, sp->nassign, via, NULL,
                           err, errlen);
        sp->gave = rc == SG_OK;
    }
    if (rc == SG_OK)
        *done |= SG_SYNC_ASSIGN;
    /* the people it manages from now on (only the new ones: a run that
     * changes nothing writes nothing) */
    const char **av = rc == SG_OK ? malloc((pl->nrows + 2) * sizeof(char *)) : NULL;
    size_t m = 2;
    if (rc == SG_OK && av == NULL)
        return seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (size_t i = 0; av && i < pl->nrows; i++)
        if (!pl->changes[i].managed)
            av[m++] = pl->rows[i].user;
    if (av && m > 2) {
        av[0] = "SADD";
        av[1] = SG_KEY_SYNCED;
        redisReply *r = sg_cmdv(c, err, errlen, (int)m, av);
        if (r == NULL)
            rc = SG_EBACKEND;
        else
            freeReplyObject(r);
    }
    free(av);
    return rc;
}

/* ---- the change log --------------------------------------------------------------- */


/* the log's XADDs go out pipelined, their replies read every 1000 */
static int log_drain(sg_conn *c, size_t *queued, char *err, size_t errlen)
{
    int rc = SG_OK;
    for (; *queued > 0; (*queued)--) {
        redisReply *r = sg_conn_reply(c, err, errlen);
        if (r == NULL)
            return SG_EBACKEND; /* the link is gone: nothing more to read */
        if (r->type == REDIS_REPLY_ERROR && rc == SG_OK)
            rc = seterr(err, errlen, SG_EBACKEND, "redis: %s", r->str);
        freeReplyObject(r);
    }
    return rc;
}

static int log_append(sg_conn *c, int argc, const char **argv, size_t *queued, char *err,
                      size_t errlen)
{
    if (sg_conn_append(c, argc, argv, NULL) != 0)
        return seterr(err, errlen, SG_EBACKEND, "redis: cannot queue a command");
    if (++*queued >= 1000)
        return log_drain(c, queued, err, errlen);
    return SG_OK;
}

int sg_sync_log(sg_conn *c, const sg_sync_plan *pl, int done, int attempted, const char *by,
                char *err, size_t errlen)
{
    size_t queued = 0;
    /* one entry per change in the registry's audit stream (pool "_"): what
     * the plan did or would do, the rules behind it, before and after */
    char host[256], at[32], minid[32];
    sg_hostname(host, sizeof(host));
    long long now = sg_server_time_ms(c);
    if (now < 0)
        return seterr(err, errlen, SG_EBACKEND, "redis: TIME failed");
    snprintf(at, sizeof(at), "%lld", now);
    snprintf(minid, sizeof(minid), "%lld", now - 400LL * 86400000);
    /* the records: applied, not applied, or (the stage that stopped) in part */
    int recs_done = (done & SG_SYNC_RECORDS) != 0;
    const char *recs_result = recs_done || !attempted ? "ok" : "unknown";
#define EV(applied) ((applied) ? "sync" : "sync_plan")
#define RESULT(applied) ((applied) || !attempted ? "ok" : "not_applied")
    int rc = SG_OK;
    for (size_t i = 0; rc == SG_OK && i < pl->nrows; i++) {
        const sg_sync_change *ch = &pl->changes[i];
        const sg_user_row *row = &pl->rows[i];
        if (!ch->record)
            continue;
        char before[1300] = "-", after[1300];
        if (ch->existed)
            rec_text(ch->was_disabled, ch->was_service, ch->old_groups ? ch->old_groups : "", before, sizeof(before));
        rec_text(row->disabled, row->service, row->groups, after, sizeof(after));
        const char *av[] = {"XADD", SG_KEY_REGISTRY_AUDIT, "MINID", "~", minid, "*", "ev",
                            EV(recs_done), "at", at, "pool", "_", "user", row->user,
                            "via", "sync", "host", host, "by", by ? by : "", "result",
                            recs_result, "reason",
                            ch->rules[0] ? ch->rules : "no_rule", "seat", "none", "before",
                            before, "after", after};
        rc = log_append(c, (int)(sizeof(av) / sizeof(av[0])), av, &queued, err, errlen);
    }
    /* --full: absent from the export, so disabled */
    for (size_t i = 0; rc == SG_OK && i < pl->ndisable; i++) {
        const char *was = pl->disable_was ? pl->disable_was[i] : "-";
        char after[1300] = "disabled=1";
        const char *g = was ? strstr(was, " service_account=") : NULL;
        if (g)
            snprintf(after, sizeof(after), "disabled=1%s", g);
        const char *av[] = {"XADD", SG_KEY_REGISTRY_AUDIT, "MINID", "~", minid, "*", "ev",
                            EV(recs_done), "at", at, "pool", "_", "user", pl->disable[i],
                            "via", "sync", "host", host, "by", by ? by : "", "result",
                            recs_result, "reason", "absent_from_export", "seat",
                            "none", "before", was ? was : "-", "after", after};
        rc = log_append(c, (int)(sizeof(av) / sizeof(av[0])), av, &queued, err, errlen);
    }
    sg_strset who = {0};
    if (rc == SG_OK && sg_strset_init(&who, pl->nrows) != 0)
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (size_t j = 0; rc == SG_OK && j < pl->nrows; j++)
        if (sg_strset_put(&who, pl->rows[j].user, (long)j) != 0)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (size_t i = 0; rc == SG_OK && i < pl->npools; i++) {
        const sg_sync_pool *sp = &pl->pools[i];
        for (size_t k = 0; rc == SG_OK && k < sp->nassign + sp->nunassign; k++) {
            int give = k < sp->nassign;
            const char *u = give ? sp->assign[k] : sp->unassign[k - sp->nassign];
            long j = sg_strset_get(&who, u);
            const char *rules = j >= 0 ? pl->changes[j].rules : "";
            char what[SG_POOL_MAX + 32];
            snprintf(what, sizeof(what), "named seat of %s", sp->pool);
            int applied = give ? sp->gave : sp->took_back;
            const char *av[] = {"XADD", SG_KEY_REGISTRY_AUDIT, "MINID", "~", minid, "*", "ev",
                                EV(applied), "at", at, "pool", "_", "user", u, "via", "sync",
                                "host", host, "by", by ? by : "", "result", RESULT(applied),
                                "reason",
                                give ? (rules[0] ? rules : "no_rule")
                                     : (rules[0] ? "no_rule_names_the_pool" : "left_or_inactive"),
                                "seat", "named", "before", give ? "-" : what, "after",
                                give ? what : "-"};
            rc = log_append(c, (int)(sizeof(av) / sizeof(av[0])), av, &queued, err, errlen);
        }
    }
    sg_strset_free(&who);
    if (log_drain(c, &queued, err, errlen) != SG_OK && rc == SG_OK)
        rc = SG_EBACKEND;
    return rc;
#undef EV
#undef RESULT
}
