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
    free(pl->changes);
    sg_strv_free(pl->disable, pl->ndisable);
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

int sg_sync_plan_make(sg_conn *c, const sg_sync_map *m, const sg_sync_person *people, size_t n,
                      int full, sg_sync_plan *pl, char *err, size_t errlen)
{
    memset(pl, 0, sizeof(*pl));
    int rc = SG_OK;
    pl->rows = calloc(n + 1, sizeof(*pl->rows));
    pl->changes = calloc(n + 1, sizeof(*pl->changes));
    char **names = calloc(n + 1, sizeof(char *)), **recs = calloc(n + 1, sizeof(char *));
    if (pl->rows == NULL || pl->changes == NULL || names == NULL || recs == NULL)
        rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    for (size_t i = 0; i < n; i++)
        names[i] = (char *)people[i].user;
    if (rc == SG_OK && n)
        rc = sg_registry_records(c, names, n, recs, err, errlen);
    /* every person's record from the rules */
    for (size_t i = 0; rc == SG_OK && i < n; i++) {
        const sg_sync_person *p = &people[i];
        sg_user_row *row = &pl->rows[i];
        sg_sync_change *ch = &pl->changes[i];
        char groups[2048] = ",";
        int service = p->service;
        snprintf(ch->user, sizeof(ch->user), "%s", p->user);
        for (size_t r = 0; r < m->nrules; r++) {
            const sg_sync_rule *ru = &m->rules[r];
            if (!sg_sync_rule_matches(m, ru, p))
                continue;
            size_t k = strlen(ch->rules);
            snprintf(ch->rules + k, sizeof(ch->rules) - k, "%s%s", k ? "," : "", ru->name);
            for (char *g = strchr(ru->groups, ','); g && g[1]; g = strchr(g + 1, ',')) {
                char one[SG_IDENT_MAX + 3];
                size_t gl = strcspn(g + 1, ",");
                snprintf(one, sizeof(one), "%.*s", (int)gl, g + 1);
                if (!in_list(groups, one) && strlen(groups) + gl + 2 < sizeof(groups))
                    snprintf(groups + strlen(groups), sizeof(groups) - strlen(groups), "%s,", one);
            }
            if (ru->service)
                service = 1;
        }
        snprintf(row->user, sizeof(row->user), "%s", p->user);
        canon_groups(groups, row->groups, sizeof(row->groups));
        row->disabled = !p->active;
        row->service = service;
        row->line = p->line;
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
        snprintf(ch->old_groups, sizeof(ch->old_groups), "%s", now_groups);
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
    for (size_t j = 0; rc == SG_OK && j < managed->elements; j++)
        for (size_t i = 0; i < n; i++)
            if (strcmp(managed->element[j]->str, people[i].user) == 0)
                pl->changes[i].managed = 1;
    for (char *q = strchr(pools, ','); rc == SG_OK && q && q[1]; q = strchr(q + 1, ',')) {
        char pool[SG_POOL_MAX + 1];
        size_t ql = strcspn(q + 1, ",");
        snprintf(pool, sizeof(pool), "%.*s", (int)ql, q + 1);
        sg_pool_info pi;
        rc = sg_pool_get(c, pool, &pi, err, errlen);
        if (rc != SG_OK) {
            rc = seterr(err, errlen, SG_EINPUT, "the map names pool %s, which does not exist",
                        pool);
            break;
        }
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
        /* wanted: active people whose rules name the pool */
        for (size_t i = 0; rc == SG_OK && i < n; i++) {
            int want = 0;
            char rl[sizeof(pl->changes[i].rules) + 2];
            snprintf(rl, sizeof(rl), ",%s,", pl->changes[i].rules);
            for (size_t r = 0; !want && r < m->nrules; r++)
                want = in_list(m->rules[r].named, pool) && in_list(rl, m->rules[r].name);
            want = want && people[i].active;
            int has = 0;
            for (size_t k = 0; k < now->elements; k++)
                if (strcmp(now->element[k]->str, people[i].user) == 0)
                    has = 1;
            if (want && !has && push(&sp->assign, &sp->nassign, people[i].user) != 0)
                rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
            if (!want && has && push(&sp->unassign, &sp->nunassign, people[i].user) != 0)
                rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        }
        /* managed before, absent now: with --full their seats go too */
        for (size_t k = 0; rc == SG_OK && full && k < now->elements; k++) {
            const char *u = now->element[k]->str;
            int managed_u = 0, present = 0;
            for (size_t j = 0; j < managed->elements; j++)
                if (strcmp(managed->element[j]->str, u) == 0)
                    managed_u = 1;
            for (size_t i = 0; i < n; i++)
                if (strcmp(people[i].user, u) == 0)
                    present = 1;
            if (managed_u && !present && push(&sp->unassign, &sp->nunassign, u) != 0)
                rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
        }
        freeReplyObject(now);
        sp->after = sp->before - (long)sp->nunassign + (long)sp->nassign;
        if (rc == SG_OK && sp->after > sp->bought)
            rc = seterr(err, errlen, SG_EDENIED,
                        "pool %s: the plan assigns %ld named seats, the pool has bought %ld "
                        "(%ld assigned now, %zu to assign, %zu to take back); nothing applied",
                        pool, sp->after, sp->bought, sp->before, sp->nassign, sp->nunassign);
    }
    /* --full: people the sync managed who are absent now are disabled */
    for (size_t j = 0; rc == SG_OK && full && managed && j < managed->elements; j++) {
        const char *u = managed->element[j]->str;
        int present = 0;
        for (size_t i = 0; i < n && !present; i++)
            present = strcmp(people[i].user, u) == 0;
        if (!present && push(&pl->disable, &pl->ndisable, u) != 0)
            rc = seterr(err, errlen, SG_EBACKEND, "out of memory");
    }
    if (managed)
        freeReplyObject(managed);
    if (rc != SG_OK)
        sg_sync_plan_free(pl);
    return rc;
}

int sg_sync_apply(sg_conn *c, const sg_sync_plan *pl, const char *via, char *err, size_t errlen)
{
    long changed = 0, same = 0;
    int rc = SG_OK;
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
    for (size_t i = 0; rc == SG_OK && i < pl->npools; i++)
        if (pl->pools[i].nunassign)
            rc = sg_assign(c, pl->pools[i].pool, 0, (const char **)pl->pools[i].unassign,
                           pl->pools[i].nunassign, via, NULL, err, errlen);
    for (size_t i = 0; rc == SG_OK && i < pl->npools; i++)
        if (pl->pools[i].nassign)
            rc = sg_assign(c, pl->pools[i].pool, 1, (const char **)pl->pools[i].assign,
                           pl->pools[i].nassign, via, NULL, err, errlen);
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

static void rec_text(int disabled, int service, const char *groups, char *buf, size_t len)
{
    snprintf(buf, len, "disabled=%d service_account=%d groups=%s", disabled, service,
             groups[0] ? groups : "-");
}

int sg_sync_log(sg_conn *c, const sg_sync_plan *pl, int applied, const char *by, char *err,
                size_t errlen)
{
    /* one entry per change in the registry's audit stream (pool "_"): what
     * the plan did or would do, the rules behind it, before and after */
    char host[256], at[32], minid[32];
    sg_hostname(host, sizeof(host));
    long long now = sg_server_time_ms(c);
    if (now < 0)
        return seterr(err, errlen, SG_EBACKEND, "redis: TIME failed");
    snprintf(at, sizeof(at), "%lld", now);
    snprintf(minid, sizeof(minid), "%lld", now - 400LL * 86400000);
    const char *ev = applied ? "sync" : "sync_plan";
    int rc = SG_OK;
    for (size_t i = 0; rc == SG_OK && i < pl->nrows; i++) {
        const sg_sync_change *ch = &pl->changes[i];
        const sg_user_row *row = &pl->rows[i];
        if (!ch->record)
            continue;
        char before[1300] = "-", after[1300];
        if (ch->existed)
            rec_text(ch->was_disabled, ch->was_service, ch->old_groups, before, sizeof(before));
        rec_text(row->disabled, row->service, row->groups, after, sizeof(after));
        const char *av[] = {"XADD", SG_KEY_REGISTRY_AUDIT, "MINID", "~", minid, "*", "ev", ev,
                            "at", at, "pool", "_", "user", row->user, "via", "sync", "host",
                            host, "by", by ? by : "", "result", "ok", "reason",
                            ch->rules[0] ? ch->rules : "no_rule", "seat", "none", "before",
                            before, "after", after};
        redisReply *r = sg_cmdv(c, err, errlen, (int)(sizeof(av) / sizeof(av[0])), av);
        if (r == NULL)
            rc = SG_EBACKEND;
        else
            freeReplyObject(r);
    }
    for (size_t i = 0; rc == SG_OK && i < pl->npools; i++) {
        const sg_sync_pool *sp = &pl->pools[i];
        for (size_t k = 0; rc == SG_OK && k < sp->nassign + sp->nunassign; k++) {
            int give = k < sp->nassign;
            const char *u = give ? sp->assign[k] : sp->unassign[k - sp->nassign];
            const char *rules = "";
            for (size_t j = 0; j < pl->nrows; j++)
                if (strcmp(pl->rows[j].user, u) == 0)
                    rules = pl->changes[j].rules;
            char what[SG_POOL_MAX + 32];
            snprintf(what, sizeof(what), "named seat of %s", sp->pool);
            const char *av[] = {"XADD", SG_KEY_REGISTRY_AUDIT, "MINID", "~", minid, "*", "ev", ev,
                                "at", at, "pool", "_", "user", u, "via", "sync", "host", host,
                                "by", by ? by : "", "result", "ok", "reason",
                                give ? (rules[0] ? rules : "no_rule")
                                     : (rules[0] ? "no_rule_names_the_pool" : "left_or_inactive"),
                                "seat", "named", "before", give ? "-" : what, "after",
                                give ? what : "-"};
            redisReply *r = sg_cmdv(c, err, errlen, (int)(sizeof(av) / sizeof(av[0])), av);
            if (r == NULL)
                rc = SG_EBACKEND;
            else
                freeReplyObject(r);
        }
    }
    return rc;
}
