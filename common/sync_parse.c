/* Identity sync, the input side: the map file and the people of an export
 * (no Redis here, so the fuzzer can drive it). common/sync.c makes and
 * applies the plan. See docs/sync.md for the map's format. */
#include "seatgate.h"
#include "internal.h"

#include <ctype.h>
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

void sg_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}
#define lower sg_lower

/* ",a,b," membership of an item given as n bytes at item (not
 * NUL-terminated), without case when the list was lowered */
static int in_list_n(const char *list, const char *item, size_t n)
{
    for (const char *p = list; p && (p = strchr(p, ',')) != NULL && p[1]; p++)
        if (strncmp(p + 1, item, n) == 0 && p[1 + n] == ',')
            return 1;
    return 0;
}

/* the same for a string (lists never hold an empty item) */
static int in_list(const char *list, const char *item)
{
    size_t n = strlen(item);
    return n > 0 && in_list_n(list, item, n);
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
    sg_strset seen = {0};
    if (rc == 0 && (p == NULL || sg_strset_init(&seen, t.nrows) != 0))
        rc = seterr(err, errlen, -1, "out of memory");
    for (size_t i = 0; rc == 0 && i < t.nrows; i++) {
        char **row = t.rows[i], e[SG_ERR_MAX], v[256];
        if (sg_valid_ident(row[cu], e, sizeof(e)) != 0) {
            rc = seterr(err, errlen, -1, "line %ld, field %s: %s", t.lines[i], t.cols[cu], e);
            break;
        }
        long k = sg_strset_get(&seen, row[cu]);
        if (k >= 0) {
            rc = seterr(err, errlen, -1, "line %ld, field %s: '%s' is already on line %ld",
                        t.lines[i], t.cols[cu], row[cu], p[k].line);
            break;
        }
        snprintf(p[i].user, sizeof(p[i].user), "%s", row[cu]);
        if (sg_strset_put(&seen, p[i].user, (long)i) != 0) {
            rc = seterr(err, errlen, -1, "out of memory");
            break;
        }
        p[i].line = t.lines[i];
        int vbad = ca >= 0 && strlen(row[ca]) >= sizeof(v) ? ca
                   : cs >= 0 && strlen(row[cs]) >= sizeof(v) ? cs
                                                            : -1;
        if (vbad >= 0) {
            rc = seterr(err, errlen, -1, "line %ld, field %s: longer than %zu bytes", t.lines[i],
                        t.cols[vbad], sizeof(v) - 1);
            break;
        }
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
    sg_strset_free(&seen);
    if (rc == 0) {
        *out = p;
        *n = t.nrows;
    } else {
        sg_sync_people_free(p, t.nrows);
    }
    sg_csv_table_free(&t);
    return rc;
}

/* Does a value match one of cond's values? A value may be a list separated
 * by ';' (groups): any item matches. */
static int cond_holds(const sg_sync_cond *c, const char *val)
{
    /* items are compared where they are: a value of any length is read
     * whole (a copy cut at a buffer's size would lose the last items) */
    const char *it = val ? val : "";
    for (;;) {
        size_t n = strcspn(it, ";");
        const char *a = it, *b = it + n;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
            b--;
        if (b > a && in_list_n(c->values, a, (size_t)(b - a)))
            return 1;
        if (it[n] == '\0')
            return 0;
        it += n + 1;
    }
}

int sg_sync_rule_matches(const sg_sync_map *m, const sg_sync_rule *r, const sg_sync_person *p)
{
    for (size_t k = 0; k < r->nconds; k++)
        if (!cond_holds(&r->conds[k], p->vals[attr_index(m, r->conds[k].attr)]))
            return 0;
    return 1;
}

int sg_sync_in_list(const char *list, const char *item)
{
    return in_list(list, item);
}

/* ---- SCIM 2.0 User resources ---------------------------------------------------- */

#include <json.h>

#define SCIM_ENTERPRISE "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

/* member k of object o, its name compared without case (RFC 7643 2.1:
 * attribute names are case-insensitive) */
static int get_ci(json_object *o, const char *k, json_object **v)
{
    *v = NULL;
    if (o == NULL || !json_object_is_type(o, json_type_object))
        return 0;
    if (json_object_object_get_ex(o, k, v))
        return 1;
    json_object_object_foreach(o, name, val)
    {
        if (strcasecmp(name, k) == 0) {
            *v = val;
            return 1;
        }
    }
    return 0;
}

/* The string of attribute `name` of a User resource: a core attribute
 * (userName, displayName, title, userType, externalId, ...), an attribute of
 * the enterprise extension (employeeNumber, department, costCenter,
 * organization, division), or "groups" (the display names, else the
 * values, joined with ';'). "" when absent; -1 when present but not a
 * string (or groups not an array of objects). */
static int scim_attr(json_object *res, const char *name, char *out, size_t len)
{
    json_object *v = NULL, *ext = NULL;
    out[0] = '\0';
    if (strcasecmp(name, "groups") == 0) {
        if (!get_ci(res, "groups", &v) || v == NULL)
            return 0;
        if (!json_object_is_type(v, json_type_array))
            return -1;
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *g = json_object_array_get_idx(v, i), *d = NULL;
            if (!json_object_is_type(g, json_type_object))
                return -1;
            if (!get_ci(g, "display", &d) || !json_object_is_type(d, json_type_string))
                get_ci(g, "value", &d);
            if (d == NULL || !json_object_is_type(d, json_type_string))
                return -1;
            size_t k = strlen(out);
            const char *gs = json_object_get_string(d);
            if (k + strlen(gs) + 2 > len)
                return -2;
            snprintf(out + k, len - k, "%s%s", k ? ";" : "", gs);
        }
        return 0;
    }
    if (!get_ci(res, name, &v) && get_ci(res, SCIM_ENTERPRISE, &ext))
        get_ci(ext, name, &v);
    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    if ((size_t)json_object_get_string_len(v) >= len)
        return -2;
    snprintf(out, len, "%s", json_object_get_string(v));
    return 0;
}

/* one User resource into p (number no, for errors) */
int sg_sync_scim_person(const sg_sync_map *m, json_object *res, long no, sg_sync_person *p,
                        char *err, size_t errlen)
{
    char e[SG_ERR_MAX], v[4096];
    json_object *x = NULL;
    if (!json_object_is_type(res, json_type_object))
        return seterr(err, errlen, -1, "resource %ld: not a JSON object", no);
    if (!get_ci(res, "userName", &x) || !json_object_is_type(x, json_type_string))
        return seterr(err, errlen, -1, "resource %ld, field userName: missing or not a string",
                      no);
    if (sg_valid_ident(json_object_get_string(x), e, sizeof(e)) != 0)
        return seterr(err, errlen, -1, "resource %ld, field userName: %s", no, e);
    snprintf(p->user, sizeof(p->user), "%s", json_object_get_string(x));
    p->line = no;
    p->active = 1;
    if (get_ci(res, "active", &x) && x != NULL) {
        if (!json_object_is_type(x, json_type_boolean))
            return seterr(err, errlen, -1, "resource %ld, field active: not true or false", no);
        p->active = json_object_get_boolean(x);
    }
    p->vals = calloc(m->nattrs + 1, sizeof(char *));
    if (p->vals == NULL)
        return seterr(err, errlen, -1, "out of memory");
    for (size_t a = 0; a < m->nattrs; a++) {
        const char *name = m->attrs[a].scim[0] ? m->attrs[a].scim : m->attrs[a].name;
        int got = scim_attr(res, name, v, sizeof(v));
        if (got == -2)
            return seterr(err, errlen, -1, "resource %ld, field %s: longer than %zu bytes", no,
                          name, sizeof(v) - 1);
        if (got != 0)
            return seterr(err, errlen, -1, "resource %ld, field %s: not a string%s", no, name,
                          strcmp(name, "groups") == 0 ? " list of groups" : "");
        if ((p->vals[a] = strdup(v)) == NULL)
            return seterr(err, errlen, -1, "out of memory");
        lower(p->vals[a]);
        p->nvals = a + 1;
    }
    p->nvals = m->nattrs;
    return 0;
}

static int only_space(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            return 0;
    return 1;
}

int sg_sync_people_scim(const sg_sync_map *m, const char *buf, size_t len, sg_sync_person **out,
                        size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (memchr(buf, '\0', len))
        return seterr(err, errlen, -1, "the file holds a NUL byte");
    json_object **res = NULL, *whole = NULL;
    size_t nres = 0, cap = 0;
    int rc = 0;
    struct json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return seterr(err, errlen, -1, "out of memory");
    /* a ListResponse (or one resource) as the whole document ... */
    whole = json_tokener_parse_ex(tok, buf, (int)len);
    if (whole && json_tokener_get_error(tok) == json_tokener_success &&
        only_space(buf + json_tokener_get_parse_end(tok), buf + len)) {
        json_object *r = NULL;
        if (json_object_is_type(whole, json_type_object) &&
            json_object_object_get_ex(whole, "Resources", &r)) {
            if (!json_object_is_type(r, json_type_array)) {
                rc = seterr(err, errlen, -1, "Resources: not an array");
            } else {
                nres = json_object_array_length(r);
                res = calloc(nres + 1, sizeof(*res));
                for (size_t i = 0; res && i < nres; i++)
                    res[i] = json_object_array_get_idx(r, i);
            }
        } else {
            nres = 1;
            res = calloc(2, sizeof(*res));
            if (res)
                res[0] = whole;
        }
        if (rc == 0 && res == NULL)
            rc = seterr(err, errlen, -1, "out of memory");
    } else {
        /* ... or one resource a line */
        if (whole)
            json_object_put(whole);
        whole = NULL;
        const char *p = buf, *end = buf + len;
        for (long line = 1; p < end && rc == 0; line++) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *q = p, *e = nl ? nl : end;
            p = nl ? nl + 1 : end;
            if (only_space(q, e))
                continue;
            json_tokener_reset(tok);
            json_object *o = json_tokener_parse_ex(tok, q, (int)(e - q));
            if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
                !only_space(q + json_tokener_get_parse_end(tok), e)) {
                if (o)
                    json_object_put(o);
                rc = seterr(err, errlen, -1, "line %ld: not one JSON resource (%s)", line,
                            json_tokener_error_desc(json_tokener_get_error(tok)));
                break;
            }
            if (nres == cap) {
                size_t c2 = cap ? cap * 2 : 64;
                json_object **t = realloc(res, c2 * sizeof(*t));
                if (t == NULL) {
                    json_object_put(o);
                    rc = seterr(err, errlen, -1, "out of memory");
                    break;
                }
                res = t;
                cap = c2;
            }
            res[nres++] = o;
        }
    }
    json_tokener_free(tok);
    sg_sync_person *ps = rc == 0 ? calloc(nres + 1, sizeof(*ps)) : NULL;
    if (rc == 0 && ps == NULL)
        rc = seterr(err, errlen, -1, "out of memory");
    sg_strset seen = {0};
    if (rc == 0 && sg_strset_init(&seen, nres) != 0)
        rc = seterr(err, errlen, -1, "out of memory");
    for (size_t i = 0; rc == 0 && i < nres; i++) {
        rc = sg_sync_scim_person(m, res[i], (long)i + 1, &ps[i], err, errlen);
        long k = rc == 0 ? sg_strset_get(&seen, ps[i].user) : -1;
        if (k >= 0)
            rc = seterr(err, errlen, -1, "resource %zu, field userName: '%s' is already "
                        "resource %ld", i + 1, ps[i].user, k + 1);
        else if (rc == 0 && sg_strset_put(&seen, ps[i].user, (long)i) != 0)
            rc = seterr(err, errlen, -1, "out of memory");
    }
    sg_strset_free(&seen);
    if (whole)
        json_object_put(whole);
    else
        for (size_t i = 0; res && i < nres; i++)
            json_object_put(res[i]);
    free(res);
    if (rc == 0) {
        *out = ps;
        *n = nres;
    } else {
        sg_sync_people_free(ps, nres);
    }
    return rc;
}
