/* Identity sync (seatctl sync): a map file turns HR or IdP records into user
 * records (groups, disabled, service account) and named seats; the plan is
 * computed against Redis first and applied only when it is whole and
 * allowed. See docs/sync.md for the map's format and the rules. */
#include "seatgate.h"
#include "internal.h"

#include <ctype.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define seterr sg_err_rc

/* ---- small helpers ---------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* ",a,b," membership, without case when the list was lowered */
static int in_list(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; p && (p = strstr(p, item)) != NULL; p++)
        if (p > list && p[-1] == ',' && p[n] == ',')
            return 1;
    return 0;
}

/* "a, b ,c" -> ",a,b,c," (lowered when low); each item checked by valid.
 * -1 with why set on a bad item or overflow. */
static int list_of(const char *v, int low, int (*valid)(const char *, char *, size_t), char *out,
                   size_t len, char *why, size_t whylen)
{
    char tmp[2048];
    if (strlen(v) >= sizeof(tmp))
        return seterr(why, whylen, -1, "list too long");
    snprintf(tmp, sizeof(tmp), "%s", v);
    snprintf(out, len, ",");
    for (char *save = NULL, *it = strtok_r(tmp, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        it = trim(it);
        if (*it == '\0')
            continue;
        if (low)
            lower(it);
        char e[SG_ERR_MAX];
        if (valid && valid(it, e, sizeof(e)) != 0)
            return seterr(why, whylen, -1, "'%s': %s", it, e);
        if (in_list(out, it))
            continue;
        size_t k = strlen(out);
        if (k + strlen(it) + 2 > len)
            return seterr(why, whylen, -1, "list too long");
        snprintf(out + k, len - k, "%s,", it);
    }
    return 0;
}

/* ---- the map ------------------------------------------------------------------ */

void sg_sync_map_free(sg_sync_map *m)
{
    for (size_t i = 0; i < m->nrules; i++)
        free(m->rules[i].conds);
    free(m->rules);
    free(m->attrs);
    memset(m, 0, sizeof(*m));
}

static long attr_index(const sg_sync_map *m, const char *name)
{
    for (size_t i = 0; i < m->nattrs; i++)
        if (strcmp(m->attrs[i].name, name) == 0)
            return (long)i;
    return -1;
}

static sg_sync_attr *attr_add(sg_sync_map *m, const char *name)
{
    long i = attr_index(m, name);
    if (i >= 0)
        return &m->attrs[i];
    sg_sync_attr *a = realloc(m->attrs, (m->nattrs + 1) * sizeof(*a));
    if (a == NULL)
        return NULL;
    m->attrs = a;
    memset(&a[m->nattrs], 0, sizeof(*a));
    snprintf(a[m->nattrs].name, sizeof(a[m->nattrs].name), "%s", name);
    return &a[m->nattrs++];
}

static int name_ok(const char *s)
{
    if (*s == '\0' || strlen(s) >= 64)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return 0;
    return 1;
}

#define MAPERR(...) (seterr(err, errlen, -1, "map line %ld: ", line), \
                     snprintf(err + strlen(err), errlen - strlen(err), __VA_ARGS__), -1)

int sg_sync_map_parse(const char *buf, size_t len, sg_sync_map *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->active_values, sizeof(m->active_values), ",active,true,1,yes,");
    snprintf(m->service_values, sizeof(m->service_values), ",service,true,1,yes,");
    long line = 0;
    int section = 0; /* 0 none, 1 source, 2 rule */
    sg_sync_rule *rule = NULL;
    const char *p = buf, *end = buf + len;
    int rc = 0;
    while (p < end && rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        char raw[2048];
        if (n >= sizeof(raw)) {
            rc = MAPERR("line too long");
            break;
        }
        memcpy(raw, p, n);
        raw[n] = '\0';
        p = nl ? nl + 1 : end;
        if (memchr(raw, '\0', n)) {
            rc = MAPERR("holds a NUL byte");
            break;
        }
        char *hash = strchr(raw, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(raw);
        if (*s == '\0')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (close == NULL || close[1] != '\0') {
                rc = MAPERR("a section is [source] or [rule NAME]");
                break;
            }
            *close = '\0';
            char *what = trim(s + 1);
            if (strcmp(what, "source") == 0) {
                section = 1;
            } else if (strncmp(what, "rule ", 5) == 0 && name_ok(trim(what + 5))) {
                sg_sync_rule *r = realloc(m->rules, (m->nrules + 1) * sizeof(*r));
                if (r == NULL) {
                    rc = MAPERR("out of memory");
                    break;
                }
                m->rules = r;
                rule = &r[m->nrules++];
                memset(rule, 0, sizeof(*rule));
                snprintf(rule->name, sizeof(rule->name), "%s", trim(what + 5));
                snprintf(rule->groups, sizeof(rule->groups), ",");
                snprintf(rule->named, sizeof(rule->named), ",");
                rule->line = line;
                for (size_t k = 0; k + 1 < m->nrules; k++)
                    if (strcmp(m->rules[k].name, rule->name) == 0) {
                        rc = MAPERR("rule %s is defined twice", rule->name);
                        break;
                    }
                section = 2;
            } else {
                rc = MAPERR("unknown section [%s]: use [source] or [rule NAME] (NAME: letters, "
                            "digits, - _ .)", what);
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            rc = MAPERR("expected key = value");
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1), why[SG_ERR_MAX];
        if (section == 0) {
            rc = MAPERR("'%s' before any [source] or [rule NAME]", key);
        } else if (section == 1) {
            char *sp = strchr(key, ' ');
            if (sp) { /* attr NAME / scim NAME */
                *sp = '\0';
                char *aname = trim(sp + 1);
                if ((strcmp(key, "attr") != 0 && strcmp(key, "scim") != 0) || !name_ok(aname)) {
                    rc = MAPERR("unknown setting '%s %s': use attr NAME = COLUMN or scim NAME = "
                                "ATTRIBUTE", key, aname);
                    continue;
                }
                if (*val == '\0' || strlen(val) >= 128) {
                    rc = MAPERR("%s %s needs a column or attribute name", key, aname);
                    continue;
                }
                sg_sync_attr *a = attr_add(m, aname);
                if (a == NULL) {
                    rc = MAPERR("out of memory");
                    continue;
                }
                snprintf(key[0] == 'a' ? a->csv : a->scim, sizeof(a->csv), "%s", val);
            } else if (strcmp(key, "user") == 0 || strcmp(key, "active") == 0 ||
                       strcmp(key, "service_account") == 0) {
                if (*val == '\0' || strlen(val) >= 128) {
                    rc = MAPERR("%s needs a column name", key);
                    continue;
                }
                snprintf(key[0] == 'u' ? m->user_col : key[0] == 'a' ? m->active_col
                                                                      : m->service_col,
                         sizeof(m->user_col), "%s", val);
            } else if (strcmp(key, "active_values") == 0 || strcmp(key, "service_values") == 0) {
                if (list_of(val, 1, NULL, key[0] == 'a' ? m->active_values : m->service_values,
                            sizeof(m->active_values), why, sizeof(why)) != 0)
                    rc = MAPERR("%s: %s", key, why);
            } else {
                rc = MAPERR("unknown setting '%s' in [source]", key);
            }
        } else {
            if (strncmp(key, "if ", 3) == 0) {
                char *aname = trim(key + 3);
                sg_sync_cond *c = realloc(rule->conds, (rule->nconds + 1) * sizeof(*c));
                if (c == NULL) {
                    rc = MAPERR("out of memory");
                    continue;
                }
                rule->conds = c;
                c = &c[rule->nconds++];
                memset(c, 0, sizeof(*c));
                snprintf(c->attr, sizeof(c->attr), "%s", aname);
                if (!name_ok(aname))
                    rc = MAPERR("if: '%s' is not an attribute name", aname);
                else if (list_of(val, 1, NULL, c->values, sizeof(c->values), why,
                                 sizeof(why)) != 0 || strcmp(c->values, ",") == 0)
                    rc = MAPERR("if %s: %s", aname, strcmp(c->values, ",") == 0 ? "no value"
                                                                                  : why);
            } else if (strcmp(key, "groups") == 0) {
                if (list_of(val, 0, sg_valid_group, rule->groups, sizeof(rule->groups), why,
                            sizeof(why)) != 0)
                    rc = MAPERR("groups: %s", why);
            } else if (strcmp(key, "named") == 0) {
                if (list_of(val, 0, sg_valid_name, rule->named, sizeof(rule->named), why,
                            sizeof(why)) != 0)
                    rc = MAPERR("named: %s", why);
            } else if (strcmp(key, "service_account") == 0) {
                if (strcmp(val, "yes") != 0 && strcmp(val, "no") != 0)
                    rc = MAPERR("service_account is yes or no, not '%s'", val);
                rule->service = strcmp(val, "yes") == 0;
            } else {
                rc = MAPERR("unknown setting '%s' in [rule %s]: use if ATTR = V1, V2, groups = "
                            "G1, G2, named = POOL, service_account = yes", key, rule->name);
            }
        }
    }
    if (rc == 0 && m->user_col[0] == '\0') {
        line = 0;
        rc = seterr(err, errlen, -1, "map: [source] must say user = COLUMN");
    }
    for (size_t i = 0; rc == 0 && i < m->nrules; i++)
        for (size_t k = 0; rc == 0 && k < m->rules[i].nconds; k++)
            if (attr_index(m, m->rules[i].conds[k].attr) < 0) {
                line = m->rules[i].line;
                rc = MAPERR("rule %s tests '%s', which no attr or scim line defines",
                            m->rules[i].name, m->rules[i].conds[k].attr);
            }
    if (rc != 0)
        sg_sync_map_free(m);
    return rc;
}

/* ---- people ---------------------------------------------------------------------- */

void sg_sync_people_free(sg_sync_person *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) {
        for (size_t k = 0; p[i].vals && k < p[i].nvals; k++)
            free(p[i].vals[k]);
        free(p[i].vals);
    }
    free(p);
}

static int col_of(const sg_csv_table *t, const char *name, const char *what, long *out, char *err,
                  size_t errlen)
{
    *out = -1;
    if (name[0] == '\0')
        return 0;
    *out = sg_csv_table_col(t, name);
    if (*out < 0)
        return seterr(err, errlen, -1, "line 1: the map's %s column '%s' is not in the header",
                      what, name);
    return 0;
}

int sg_sync_people_csv(const sg_sync_map *m, const char *buf, size_t len, sg_sync_person **out,
                       size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    sg_csv_table t;
    if (sg_csv_table_parse(buf, len, &t, err, errlen) != 0)
        return -1;
    long cu = -1, ca = -1, cs = -1;
    int rc = col_of(&t, m->user_col, "user", &cu, err, errlen);
    if (rc == 0)
        rc = col_of(&t, m->active_col, "active", &ca, err, errlen);
    if (rc == 0)
        rc = col_of(&t, m->service_col, "service_account", &cs, err, errlen);
    long *ci = calloc(m->nattrs + 1, sizeof(long));
    if (ci == NULL)
        rc = seterr(err, errlen, -1, "out of memory");
    for (size_t a = 0; rc == 0 && a < m->nattrs; a++) {
        char what[80];
        snprintf(what, sizeof(what), "attr %s", m->attrs[a].name);
        if (m->attrs[a].csv[0] == '\0')
            rc = seterr(err, errlen, -1, "map: attr %s has no CSV column (attr %s = COLUMN)",
                        m->attrs[a].name, m->attrs[a].name);
        else
            rc = col_of(&t, m->attrs[a].csv, what, &ci[a], err, errlen);
    }
    sg_sync_person *p = rc == 0 ? calloc(t.nrows + 1, sizeof(*p)) : NULL;
    if (rc == 0 && p == NULL)
        rc = seterr(err, errlen, -1, "out of memory");
    for (size_t i = 0; rc == 0 && i < t.nrows; i++) {
        char **row = t.rows[i], e[SG_ERR_MAX], v[256];
        if (sg_valid_ident(row[cu], e, sizeof(e)) != 0) {
            rc = seterr(err, errlen, -1, "line %ld, field %s: %s", t.lines[i], t.cols[cu], e);
            break;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(p[k].user, row[cu]) == 0) {
                rc = seterr(err, errlen, -1, "line %ld, field %s: '%s' is already on line %ld",
                            t.lines[i], t.cols[cu], row[cu], p[k].line);
                break;
            }
        if (rc)
            break;
        snprintf(p[i].user, sizeof(p[i].user), "%s", row[cu]);
        p[i].line = t.lines[i];
        snprintf(v, sizeof(v), "%s", ca >= 0 ? row[ca] : "active");
        lower(v);
        p[i].active = ca < 0 || in_list(m->active_values, trim(v));
        snprintf(v, sizeof(v), "%s", cs >= 0 ? row[cs] : "");
        lower(v);
        p[i].service = cs >= 0 && in_list(m->service_values, trim(v));
        p[i].vals = calloc(m->nattrs + 1, sizeof(char *));
        p[i].nvals = m->nattrs;
        for (size_t a = 0; p[i].vals && a < m->nattrs; a++) {
            p[i].vals[a] = strdup(row[ci[a]]);
            if (p[i].vals[a] == NULL) {
                p[i].nvals = a;
                break;
            }
            lower(p[i].vals[a]);
        }
        if (p[i].vals == NULL || p[i].nvals != m->nattrs)
            rc = seterr(err, errlen, -1, "out of memory");
    }
    free(ci);
    if (rc == 0) {
        *out = p;
        *n = t.nrows;
    } else {
        sg_sync_people_free(p, t.nrows);
    }
    sg_csv_table_free(&t);
    return rc;
}

/* Does person p's value of attribute a match one of cond's values? A value
 * may be a list separated by ';' (groups): any item matches. */
static int cond_holds(const sg_sync_cond *c, const char *val)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", val ? val : "");
    for (char *save = NULL, *it = strtok_r(tmp, ";", &save); it; it = strtok_r(NULL, ";", &save))
        if (in_list(c->values, trim(it)))
            return 1;
    return 0;
}

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
            int ok = 1;
            for (size_t k = 0; ok && k < ru->nconds; k++)
                ok = cond_holds(&ru->conds[k], p->vals[attr_index(m, ru->conds[k].attr)]);
            if (!ok)
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
    /* the people it manages from now on */
    for (size_t i = 0; rc == SG_OK && i < pl->nrows; i += 1000) {
        size_t m = pl->nrows - i < 1000 ? pl->nrows - i : 1000;
        const char **av = malloc((m + 2) * sizeof(char *));
        if (av == NULL)
            return seterr(err, errlen, SG_EBACKEND, "out of memory");
        av[0] = "SADD";
        av[1] = SG_KEY_SYNCED;
        for (size_t j = 0; j < m; j++)
            av[2 + j] = pl->rows[i + j].user;
        redisReply *r = sg_cmdv(c, err, errlen, (int)m + 2, av);
        free(av);
        if (r == NULL)
            return SG_EBACKEND;
        freeReplyObject(r);
    }
    return rc;
}
