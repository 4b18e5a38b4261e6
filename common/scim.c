/* The SCIM 2.0 endpoint (RFC 7643, RFC 7644) as nginx's seatgate_scim serves
 * it: one request is a small state machine that says which Redis commands to
 * send, reads their replies and ends with the HTTP answer. nginx drives it on
 * its non-blocking link (tests/fuzz/fuzz_scim.c on made-up replies). The
 * map file (common/sync_parse.c) turns a User resource into the user record
 * and named seats, as seatctl sync does for a file. See docs/provisioning.md. */
#include "seatgate.h"
#include "internal.h"
#include "sg_csv.h"

#include <ctype.h>
#include <stdarg.h>
#include <hiredis/hiredis.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SCIM_USER "urn:ietf:params:scim:schemas:core:2.0:User"
#define SCIM_ENT "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#define SCIM_LIST "urn:ietf:params:scim:api:messages:2.0:ListResponse"
#define SCIM_ERROR "urn:ietf:params:scim:api:messages:2.0:Error"
#define SCIM_PATCHOP "urn:ietf:params:scim:api:messages:2.0:PatchOp"
#define SCIM_ID_MAX 64
#define SCIM_EXT_MAX 255

enum { OP_NONE, OP_GET, OP_LIST, OP_CREATE, OP_REPLACE, OP_PATCH, OP_DELETE };
enum {
    ST_NEW,
    ST_GET,      /* the resource (and who has the userName) */
    ST_NAME,     /* who has the userName a PATCH gives */
    ST_FIND,     /* a filter */
    ST_LIST,     /* a page */
    ST_ASSIGN,   /* named seats the map gives */
    ST_UNDO,     /* ... taken back after a refusal */
    ST_UNASSIGN, /* named seats the map no longer gives */
    ST_PUT,      /* resource, record and change log, atomically */
    ST_WATCH,    /* the groups each pool watches */
    ST_APPLY,    /* the record into the pools it matters to */
    ST_ROLLBACK, /* the seats given or taken go back: the change was refused */
    ST_DONE
};

typedef struct {
    int script; /* sg_script, or -1: a plain command */
    int how, again, tag; /* how: SG_CALL_*; again: the way to send it again, +1 */
    int argc;
    char **argv; /* a script's argv[0] and argv[1] are static */
    size_t *argvlen;
} scim_cmd;

typedef struct {
    char *user, *old, *rec;
} scim_change;

struct sg_scim {
    const sg_sync_map *map;
    int op, stage;
    long long now_ms;
    char *base, *by, *host;
    char id[SCIM_ID_MAX + 1];
    json_object *body; /* the request's */
    json_object *res;  /* the resource as it becomes */
    char *old_json;    /* as it was */
    char old_user[SG_IDENT_MAX + 1];
    char old_ver[64]; /* the version read: the write is made from it */
    int retry, retries;
    char owner[SCIM_ID_MAX + 1];
    char user[SG_IDENT_MAX + 1], name[SG_IDENT_MAX + 1], ext[SCIM_EXT_MAX + 1];
    sg_user_row row;
    char rules[256];
    char named[1024]; /* ",p1,p2,": the named seats the map gives */
    char **mpools;    /* every pool the map's rules name */
    size_t nmpools;
    int *gave, *took, *took_old; /* per map pool: this request changed it */
    char refused[SG_ERR_MAX];
    /* a refusal (4xx) after this request gave or took named seats: the
     * seats go back first (ST_ROLLBACK), then the kept answer is given;
     * rollback_bad: some could not be put back. took_old_user: whose seat
     * took_old[] took (a retry reads old_user again). */
    int rolled, rollback_bad, kept_status;
    sg_buf kept;
    char took_old_user[SG_IDENT_MAX + 1];
    /* the records the put changed, the pools, what each watches */
    scim_change *changes;
    size_t nchanges;
    char **pools, **watch;
    size_t npools;
    /* a filter or a page */
    int fattr; /* 0 userName, 1 externalId, 2 id */
    char *fvalue;
    long start, count;
    /* the batch on its way */
    scim_cmd *cmds;
    size_t ncmds;
    int failed; /* no reply: the link failed */
    char redis_err[SG_ERR_MAX];
    /* the answer */
    int status;
    sg_buf out;
    char location[1200], etag[64];
    char log[SG_ERR_MAX];
};

/* ---- small helpers ------------------------------------------------------------- */

static const char *jstr(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
}

static json_object *jget(json_object *o, const char *k)
{
    json_object *v = NULL;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v))
        return v;
    return NULL;
}

/* a member of o whose name equals k without case (attribute names are
 * case-insensitive, RFC 7643 2.1); its exact name into *key */
static json_object *jget_ci(json_object *o, const char *k, const char **key)
{
    if (o == NULL || !json_object_is_type(o, json_type_object))
        return NULL;
    json_object_object_foreach(o, name, val)
    {
        if (strcasecmp(name, k) == 0) {
            if (key)
                *key = name;
            return val;
        }
    }
    return NULL;
}

static void jdel_ci(json_object *o, const char *k)
{
    const char *key = NULL;
    if (jget_ci(o, k, &key) && key) {
        char *copy = strdup(key); /* the key dies with its member */
        if (copy)
            json_object_object_del(o, copy);
        free(copy);
    }
}

/* set o.k, replacing a member of the same name in another case */
static void jset_ci(json_object *o, const char *k, json_object *v)
{
    jdel_ci(o, k);
    json_object_object_add(o, k, v);
}

static json_object *jcopy(json_object *v)
{
    json_object *c = NULL;
    if (v == NULL)
        return NULL;
    if (json_object_deep_copy(v, &c, NULL) != 0)
        return NULL;
    return c;
}

static int has_schema(json_object *o, const char *urn)
{
    json_object *s = jget(o, "schemas");
    if (s == NULL || !json_object_is_type(s, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(s); i++) {
        json_object *e = json_object_array_get_idx(s, i);
        if (json_object_is_type(e, json_type_string) &&
            strcasecmp(json_object_get_string(e), urn) == 0)
            return 1;
    }
    return 0;
}

static void free_cmds(sg_scim *s)
{
    for (size_t i = 0; i < s->ncmds; i++) {
        scim_cmd *c = &s->cmds[i];
        for (int a = c->script >= 0 ? 2 : 0; a < c->argc; a++)
            free(c->argv[a]);
        free(c->argv);
        free(c->argvlen);
    }
    free(s->cmds);
    s->cmds = NULL;
    s->ncmds = 0;
}

/* a new command of the batch: a script (FCALL, EVALSHA, EVAL: see
 * sg_script_call_next) or plain */
static scim_cmd *cmd_new(sg_scim *s, int script, int tag)
{
    scim_cmd *t = realloc(s->cmds, (s->ncmds + 1) * sizeof(*t));
    if (t == NULL)
        return NULL;
    s->cmds = t;
    scim_cmd *c = &t[s->ncmds++];
    memset(c, 0, sizeof(*c));
    c->script = script;
    c->tag = tag;
    c->how = sg_script_call_first();
    if (script >= 0)
        c->argc = 2; /* FCALL name, filled in when sent */
    c->argv = calloc(1, sizeof(char *) * 2);
    c->argvlen = calloc(1, sizeof(size_t) * 2);
    if (c->argv == NULL || c->argvlen == NULL) {
        s->ncmds--;
        free(c->argv);
        free(c->argvlen);
        return NULL;
    }
    return c;
}

static int cmd_arg(scim_cmd *c, const char *v)
{
    char **a = realloc(c->argv, sizeof(char *) * (size_t)(c->argc + 1));
    if (a == NULL)
        return -1;
    c->argv = a;
    size_t *l = realloc(c->argvlen, sizeof(size_t) * (size_t)(c->argc + 1));
    if (l == NULL)
        return -1;
    c->argvlen = l;
    if ((a[c->argc] = strdup(v ? v : "")) == NULL)
        return -1;
    l[c->argc] = strlen(a[c->argc]);
    c->argc++;
    return 0;
}

static int cmd_args(scim_cmd *c, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cmd_arg(c, v[i]) != 0)
            return -1;
    return 0;
}

/* a script of the registry's slot: the scim keys, then name/value pairs */
static int scim_script(sg_scim *s, const char *const *kv, size_t nkv)
{
    scim_cmd *c = cmd_new(s, SG_SCRIPT_SCIM, 0);
    const char *head[] = {"5", "sg:{_}:scim", "sg:{_}:scim:name", "sg:{_}:scim:ext",
                          "sg:{_}:scim:ids", "sg:{_}:scim:key", "via", "scim", "host",
                          s->host, "by", s->by};
    if (c == NULL || cmd_args(c, head, 12) != 0 || cmd_args(c, kv, nkv) != 0)
        return -1;
    return 0;
}

/* a script of pool P with its declared keys */
static int pool_script(sg_scim *s, sg_script script, const char *pool, const sg_key *keys,
                       int nkeys, const char *const *kv, size_t nkv, int tag)
{
    scim_cmd *c = cmd_new(s, (int)script, tag);
    char nk[16], k[SG_KEY_MAX];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    if (c == NULL || cmd_arg(c, nk) != 0)
        return -1;
    for (int i = 0; i < nkeys; i++)
        if (sg_keyname(keys[i], pool, k, sizeof(k)) != 0 || cmd_arg(c, k) != 0)
            return -1;
    return cmd_args(c, kv, nkv);
}

/* ---- answers ---------------------------------------------------------------------- */

static void answer_json(sg_scim *s, int status, json_object *o)
{
    s->status = status;
    sg_buf_free(&s->out);
    if (o) {
        const char *t = jstr(o);
        if (sg_buf_str(&s->out, t) != 0)
            s->status = 500;
    }
    s->stage = ST_DONE;
}

/* an Error response (RFC 7644 3.12); scim_type may be NULL */
static void answer_error(sg_scim *s, int status, const char *scim_type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void answer_error(sg_scim *s, int status, const char *scim_type, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    json_object *o = json_object_new_object(), *sch = json_object_new_array();
    char st[8];
    snprintf(st, sizeof(st), "%d", status);
    json_object_array_add(sch, json_object_new_string(SCIM_ERROR));
    json_object_object_add(o, "schemas", sch);
    json_object_object_add(o, "status", json_object_new_string(st));
    if (scim_type)
        json_object_object_add(o, "scimType", json_object_new_string(scim_type));
    json_object_object_add(o, "detail", json_object_new_string(detail));
    s->location[0] = s->etag[0] = '\0';
    answer_json(s, status, o);
    json_object_put(o);
    if (status >= 500 && s->log[0] == '\0')
        snprintf(s->log, sizeof(s->log), "%.200s", detail);
}

static void answer_backend(sg_scim *s)
{
    if (s->failed)
        answer_error(s, 503, NULL, "the seat store (Redis) did not answer; try again");
    else
        answer_error(s, 500, NULL, "the seat store (Redis) refused the request: %s",
                     s->redis_err);
}

/* meta.version of a stored resource as the ETag */
static void take_etag(sg_scim *s, json_object *res)
{
    json_object *v = jget(jget(res, "meta"), "version");
    s->etag[0] = '\0';
    if (v && json_object_is_type(v, json_type_string))
        snprintf(s->etag, sizeof(s->etag), "%s", json_object_get_string(v));
}

static json_object *list_response(long total, long start)
{
    json_object *o = json_object_new_object(), *sch = json_object_new_array();
    json_object_array_add(sch, json_object_new_string(SCIM_LIST));
    json_object_object_add(o, "schemas", sch);
    json_object_object_add(o, "totalResults", json_object_new_int64(total));
    json_object_object_add(o, "startIndex", json_object_new_int64(start));
    json_object_object_add(o, "itemsPerPage", json_object_new_int64(0));
    json_object_object_add(o, "Resources", json_object_new_array());
    return o;
}

static void list_add(json_object *o, json_object *res)
{
    json_object *r = jget(o, "Resources");
    json_object_array_add(r, res);
    json_object_object_add(o, "itemsPerPage",
                           json_object_new_int64((int64_t)json_object_array_length(r)));
}

/* ---- the discovery documents (RFC 7644 4) --------------------------------------- */

static json_object *meta_of(const sg_scim *s, const char *type, const char *path)
{
    json_object *m = json_object_new_object();
    char loc[1200];
    snprintf(loc, sizeof(loc), "%s%s", s->base, path);
    json_object_object_add(m, "resourceType", json_object_new_string(type));
    json_object_object_add(m, "location", json_object_new_string(loc));
    return m;
}

static const char *const service_provider_config =
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig\"],"
    "\"documentationUri\":\"https://github.com/seatgate/seatgate/blob/main/docs/provisioning.md\","
    "\"patch\":{\"supported\":true},"
    "\"bulk\":{\"supported\":false,\"maxOperations\":0,\"maxPayloadSize\":0},"
    "\"filter\":{\"supported\":true,\"maxResults\":200},"
    "\"changePassword\":{\"supported\":false},"
    "\"sort\":{\"supported\":false},"
    "\"etag\":{\"supported\":false},"
    "\"authenticationSchemes\":[{\"type\":\"oauthbearertoken\",\"name\":\"OAuth Bearer Token\","
    "\"description\":\"Authentication with a bearer token (RFC 6750) set in the nginx "
    "configuration\",\"specUri\":\"https://www.rfc-editor.org/info/rfc6750\",\"primary\":true}]}";

static const char *const resource_type_user =
    "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:ResourceType\"],"
    "\"id\":\"User\",\"name\":\"User\",\"endpoint\":\"/Users\","
    "\"description\":\"A person or service account whose record and named seats the map file "
    "derives\",\"schema\":\"" SCIM_USER "\","
    "\"schemaExtensions\":[{\"schema\":\"" SCIM_ENT "\",\"required\":false}]}";

/* one attribute definition (RFC 7643 7) */
static json_object *attr_def(const char *name, const char *type, int multi, int required,
                             const char *mutability, const char *uniqueness, const char *desc)
{
    json_object *a = json_object_new_object();
    json_object_object_add(a, "name", json_object_new_string(name));
    json_object_object_add(a, "type", json_object_new_string(type));
    json_object_object_add(a, "multiValued", json_object_new_boolean(multi));
    json_object_object_add(a, "description", json_object_new_string(desc));
    json_object_object_add(a, "required", json_object_new_boolean(required));
    json_object_object_add(a, "caseExact", json_object_new_boolean(0));
    json_object_object_add(a, "mutability", json_object_new_string(mutability));
    json_object_object_add(a, "returned", json_object_new_string("default"));
    json_object_object_add(a, "uniqueness", json_object_new_string(uniqueness));
    return a;
}

static json_object *sub_attrs(json_object *a, const char *const *names, size_t n)
{
    json_object *subs = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(subs, attr_def(names[i], strcmp(names[i], "primary") == 0
                                                           ? "boolean" : "string",
                                             0, 0, "readWrite", "none", names[i]));
    json_object_object_add(a, "subAttributes", subs);
    return a;
}

static json_object *schema_doc(const sg_scim *s, int enterprise)
{
    json_object *o = json_object_new_object(), *sch = json_object_new_array();
    json_object *attrs = json_object_new_array();
    json_object_array_add(sch, json_object_new_string("urn:ietf:params:scim:schemas:core:2.0:Schema"));
    json_object_object_add(o, "schemas", sch);
    json_object_object_add(o, "id", json_object_new_string(enterprise ? SCIM_ENT : SCIM_USER));
    json_object_object_add(o, "name", json_object_new_string(enterprise ? "EnterpriseUser" : "User"));
    json_object_object_add(o, "description",
                           json_object_new_string(enterprise ? "Enterprise User" : "User Account"));
    if (enterprise) {
        static const char *const e[] = {"employeeNumber", "costCenter", "organization",
                                        "division", "department"};
        for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++)
            json_object_array_add(attrs, attr_def(e[i], "string", 0, 0, "readWrite", "none", e[i]));
        static const char *const mgr[] = {"value", "displayName"};
        json_object_array_add(attrs, sub_attrs(attr_def("manager", "complex", 0, 0, "readWrite",
                                                        "none", "The user's manager"),
                                               mgr, 2));
    } else {
        json_object_array_add(attrs, attr_def("userName", "string", 0, 1, "readWrite", "server",
                                              "The login nginx and PAM see: the user of the "
                                              "seats"));
        static const char *const nm[] = {"formatted", "familyName", "givenName", "middleName",
                                         "honorificPrefix", "honorificSuffix"};
        json_object_array_add(attrs, sub_attrs(attr_def("name", "complex", 0, 0, "readWrite",
                                                        "none", "The user's name"),
                                               nm, 6));
        static const char *const plain[] = {"displayName", "nickName", "title", "userType",
                                            "preferredLanguage", "locale", "timezone"};
        for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
            json_object_array_add(attrs, attr_def(plain[i], "string", 0, 0, "readWrite", "none",
                                                  plain[i]));
        json_object *act = attr_def("active", "boolean", 0, 0, "readWrite", "none",
                                    "false: the user is disabled and loses every seat");
        json_object_object_del(act, "caseExact");
        json_object_array_add(attrs, act);
        static const char *const mv[] = {"value", "display", "type", "primary"};
        json_object_array_add(attrs, sub_attrs(attr_def("emails", "complex", 1, 0, "readWrite",
                                                        "none", "Email addresses"),
                                               mv, 4));
        json_object_array_add(attrs, sub_attrs(attr_def("phoneNumbers", "complex", 1, 0,
                                                        "readWrite", "none", "Phone numbers"),
                                               mv, 4));
        json_object_array_add(attrs, sub_attrs(attr_def("groups", "complex", 1, 0, "readOnly",
                                                        "none", "Groups the map's rules may test"),
                                               mv, 3));
    }
    json_object_object_add(o, "attributes", attrs);
    char path[200];
    snprintf(path, sizeof(path), "/Schemas/%s", enterprise ? SCIM_ENT : SCIM_USER);
    json_object_object_add(o, "meta", meta_of(s, "Schema", path));
    return o;
}

static void answer_discovery(sg_scim *s, const char *path)
{
    if (strcmp(path, "/ServiceProviderConfig") == 0) {
        json_object *o = json_tokener_parse(service_provider_config);
        json_object_object_add(o, "meta", meta_of(s, "ServiceProviderConfig", path));
        answer_json(s, 200, o);
        json_object_put(o);
    } else if (strcmp(path, "/ResourceTypes") == 0 || strcmp(path, "/ResourceTypes/User") == 0) {
        json_object *rt = json_tokener_parse(resource_type_user);
        json_object_object_add(rt, "meta", meta_of(s, "ResourceType", "/ResourceTypes/User"));
        if (path[14] == '/') {
            answer_json(s, 200, rt);
            json_object_put(rt);
        } else {
            json_object *l = list_response(1, 1);
            list_add(l, rt);
            answer_json(s, 200, l);
            json_object_put(l);
        }
    } else if (strcmp(path, "/Schemas") == 0) {
        json_object *l = list_response(2, 1);
        list_add(l, schema_doc(s, 0));
        list_add(l, schema_doc(s, 1));
        answer_json(s, 200, l);
        json_object_put(l);
    } else if (strncmp(path, "/Schemas/", 9) == 0 &&
               (strcasecmp(path + 9, SCIM_USER) == 0 || strcasecmp(path + 9, SCIM_ENT) == 0)) {
        json_object *o = schema_doc(s, strcasecmp(path + 9, SCIM_ENT) == 0);
        answer_json(s, 200, o);
        json_object_put(o);
    } else {
        answer_error(s, 404, NULL, "no such resource: %s", path);
    }
}

/* ---- the query string ------------------------------------------------------------- */

static int unhex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* the value of query parameter name (percent-decoded, '+' a space), or NULL */
static char *query_param(const char *q, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > nl && p[nl] == '=' && strncasecmp(p, name, nl) == 0) {
            char *v = malloc((size_t)(end - p) + 1), *o = v;
            if (v == NULL)
                return NULL;
            for (const char *c = p + nl + 1; c < end; c++) {
                if (*c == '+')
                    *o++ = ' ';
                else if (*c == '%' && end - c >= 3 &&
                         unhex((unsigned char)c[1]) >= 0 && unhex((unsigned char)c[2]) >= 0) {
                    *o++ = (char)(unhex((unsigned char)c[1]) * 16 + unhex((unsigned char)c[2]));
                    c += 2;
                } else
                    *o++ = *c;
            }
            *o = '\0';
            return v;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* "eq VALUE" after an attribute name (spaces around each), VALUE one JSON
 * scalar and nothing after it, as filters and PATCH value filters write
 * it: 0 with *out (the caller puts it), -1 when the operator is not eq, -2
 * when the value is not one scalar. */
static int eq_value(const char *q, json_object **out)
{
    *out = NULL;
    while (*q == ' ')
        q++;
    if (strncasecmp(q, "eq ", 3) != 0)
        return -1;
    q += 3;
    while (*q == ' ')
        q++;
    size_t len = strlen(q);
    while (len && q[len - 1] == ' ')
        len--;
    json_tokener *tok = json_tokener_new();
    json_object *v = tok ? json_tokener_parse_ex(tok, q, (int)len) : NULL;
    int ok = v && json_tokener_get_error(tok) == json_tokener_success &&
             (size_t)json_tokener_get_parse_end(tok) == len &&
             !json_object_is_type(v, json_type_object) &&
             !json_object_is_type(v, json_type_array);
    if (tok)
        json_tokener_free(tok);
    if (!ok) {
        if (v)
            json_object_put(v);
        return -2;
    }
    *out = v;
    return 0;
}

/* `userName eq "value"` (also externalId, id): the only filters the
 * provisioning clients send. 0, or -1 with the detail in err. */
static int parse_filter(sg_scim *s, const char *f, char *err, size_t errlen)
{
    while (*f == ' ')
        f++;
    size_t al = strcspn(f, " ");
    static const char *const attrs[] = {"userName", "externalId", "id"};
    s->fattr = -1;
    for (int i = 0; i < 3; i++)
        if (strlen(attrs[i]) == al && strncasecmp(f, attrs[i], al) == 0)
            s->fattr = i;
    if (s->fattr < 0) {
        snprintf(err, errlen, "filtering on '%.*s' is not supported: use userName, externalId "
                 "or id with eq", (int)(al > 64 ? 64 : al), f);
        return -1;
    }
    json_object *v;
    int rc = eq_value(f + al, &v);
    if (rc == -1) {
        snprintf(err, errlen, "only the eq operator is supported");
        return -1;
    }
    int ok = rc == 0 && json_object_is_type(v, json_type_string);
    if (ok)
        s->fvalue = strdup(json_object_get_string(v));
    if (v)
        json_object_put(v);
    if (!ok || s->fvalue == NULL) {
        snprintf(err, errlen, "the filter's value must be one quoted string (and nothing after "
                 "it: 'and', 'or' are not supported)");
        return -1;
    }
    if (s->fattr == 0)
        sg_lower(s->fvalue);
    return 0;
}

static long param_long(const char *q, const char *name, long dflt)
{
    char *v = query_param(q, name);
    long out = dflt;
    if (v && sg_parse_long(v, -1000000000L, 1000000000L, &out) != 0)
        out = dflt;
    free(v);
    return out;
}

/* ---- resources -------------------------------------------------------------------- */

static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > SCIM_ID_MAX)
        return 0;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return 0;
    return 1;
}

static int new_id(char *out, size_t len)
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b))
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* a version 4 UUID */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, len,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

/* active as sent: true/false, or (Entra ID) the strings "True"/"False" */
static int normalize_active(json_object *res)
{
    const char *key = NULL;
    json_object *a = jget_ci(res, "active", &key);
    if (a == NULL)
        return 0;
    if (json_object_is_type(a, json_type_boolean)) {
        /* "Active": the map reads "active" */
        if (strcmp(key, "active") != 0)
            jset_ci(res, "active", json_object_get(a));
        return 0;
    }
    if (json_object_is_type(a, json_type_string)) {
        const char *v = json_object_get_string(a);
        if (strcasecmp(v, "true") == 0 || strcasecmp(v, "false") == 0) {
            jset_ci(res, "active", json_object_new_boolean(strcasecmp(v, "true") == 0));
            return 0;
        }
    }
    return -1;
}

/* The attributes of RFC 7643 (User, and the enterprise extension) under
 * their own spelling: names are case-insensitive (2.1), so "Title" or a
 * PATCH's "TITLE" is stored as "title", where the map and clients look. */
static void canon_names(json_object *o)
{
    static const char *const names[] = {
        "schemas", "id", "externalId", "meta", "userName", "name", "displayName", "nickName",
        "profileUrl", "title", "userType", "preferredLanguage", "locale", "timezone", "active",
        "password", "emails", "phoneNumbers", "ims", "photos", "addresses", "groups",
        "entitlements", "roles", "x509Certificates", "employeeNumber", "costCenter",
        "organization", "division", "department", "manager", SCIM_ENT};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *key = NULL;
        json_object *v = jget_ci(o, names[i], &key);
        if (v && key && strcmp(key, names[i]) != 0)
            jset_ci(o, names[i], json_object_get(v));
    }
}

/* A resource the client sent or patched, made whole: it is checked (400
 * answered on error), its userName, externalId and active read, meta set.
 * created: the first creation time (ms), 0 for now. */
static int finish_resource(sg_scim *s, long long created_ms, const char *created_text)
{
    json_object *res = s->res;
    char e[SG_ERR_MAX];
    if (!json_object_is_type(res, json_type_object)) {
        answer_error(s, 400, "invalidSyntax", "a User resource must be a JSON object");
        return -1;
    }
    if (!has_schema(res, SCIM_USER)) {
        answer_error(s, 400, "invalidSyntax", "schemas must list %s", SCIM_USER);
        return -1;
    }
    canon_names(res);
    json_object *ent0 = jget(res, SCIM_ENT);
    if (ent0 && json_object_is_type(ent0, json_type_object))
        canon_names(ent0);
    const char *key = NULL;
    json_object *un = jget_ci(res, "userName", &key);
    if (un == NULL || !json_object_is_type(un, json_type_string)) {
        answer_error(s, 400, "invalidValue", "userName is required and must be a string");
        return -1;
    }
    if (sg_valid_ident(json_object_get_string(un), e, sizeof(e)) != 0) {
        answer_error(s, 400, "invalidValue", "userName: %s", e);
        return -1;
    }
    if (strcmp(key, "userName") != 0) {
        json_object *copy = json_object_get(un);
        jset_ci(res, "userName", copy);
    }
    snprintf(s->user, sizeof(s->user), "%s", json_object_get_string(jget(res, "userName")));
    snprintf(s->name, sizeof(s->name), "%s", s->user);
    sg_lower(s->name);
    if (normalize_active(res) != 0) {
        answer_error(s, 400, "invalidValue", "active must be true or false");
        return -1;
    }
    json_object *ent = jget_ci(res, SCIM_ENT, NULL);
    if (ent && !json_object_is_type(ent, json_type_object)) {
        answer_error(s, 400, "invalidValue", "%s must be an object", SCIM_ENT);
        return -1;
    }
    json_object *ext = jget_ci(res, "externalId", NULL);
    s->ext[0] = '\0';
    if (ext && !json_object_is_type(ext, json_type_null)) {
        const char *v = json_object_is_type(ext, json_type_string) ? json_object_get_string(ext)
                                                                    : NULL;
        char clean[SCIM_EXT_MAX + 1];
        if (v == NULL || strlen(v) > SCIM_EXT_MAX || v[0] == '\0' ||
            sg_clean_text(v, clean, sizeof(clean)) != 0 || strchr(v, '\t') || strchr(v, '\n')) {
            answer_error(s, 400, "invalidValue",
                         "externalId must be a string of 1 to %d printable characters",
                         SCIM_EXT_MAX);
            return -1;
        }
        snprintf(s->ext, sizeof(s->ext), "%s", v);
    }
    /* never kept: a password (changePassword is not supported), and what the
     * server owns */
    jdel_ci(res, "password");
    jdel_ci(res, "id");
    jdel_ci(res, "meta");
    json_object_object_add(res, "id", json_object_new_string(s->id));
    /* the map reads it as seatctl sync reads a file */
    sg_sync_person *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        answer_error(s, 500, NULL, "out of memory");
        return -1;
    }
    if (sg_sync_scim_person(s->map, res, 1, p, e, sizeof(e)) != 0) {
        sg_sync_people_free(p, 1);
        const char *d = strncmp(e, "resource 1, ", 12) == 0 ? e + 12 : e;
        answer_error(s, 400, "invalidValue", "%s", d);
        return -1;
    }
    int fits = sg_sync_person_row(s->map, p, &s->row, s->rules, sizeof(s->rules), s->named,
                                  sizeof(s->named), e, sizeof(e));
    sg_sync_people_free(p, 1);
    if (fits != 0) {
        answer_error(s, 400, "invalidValue", "%s", e);
        return -1;
    }
    /* meta */
    char now[SG_RFC3339_LEN + 1], ver[48], loc[1200];
    sg_fmt_rfc3339(s->now_ms, now, sizeof(now));
    unsigned int salt = 0; /* two writes in one millisecond differ */
    if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) != (ssize_t)sizeof(salt))
        salt = (unsigned int)s->retries;
    snprintf(ver, sizeof(ver), "W/\"%lld-%08x\"", s->now_ms, salt);
    snprintf(loc, sizeof(loc), "%s/Users/%s", s->base, s->id);
    json_object *meta = json_object_new_object();
    char created[SG_RFC3339_LEN + 1];
    if (created_text && created_text[0])
        snprintf(created, sizeof(created), "%s", created_text);
    else
        sg_fmt_rfc3339(created_ms ? created_ms : s->now_ms, created, sizeof(created));
    json_object_object_add(meta, "resourceType", json_object_new_string("User"));
    json_object_object_add(meta, "created", json_object_new_string(created));
    json_object_object_add(meta, "lastModified", json_object_new_string(now));
    json_object_object_add(meta, "location", json_object_new_string(loc));
    json_object_object_add(meta, "version", json_object_new_string(ver));
    json_object_object_add(res, "meta", meta);
    snprintf(s->location, sizeof(s->location), "%s", loc);
    snprintf(s->etag, sizeof(s->etag), "%s", ver);
    if (strlen(jstr(res)) > 65536) {
        answer_error(s, 400, "invalidValue", "the resource is larger than 64 KB");
        return -1;
    }
    return 0;
}

/* ---- PATCH (RFC 7644 3.5.2) ------------------------------------------------------- */

typedef struct {
    char attr[128], sub[128];
    char fattr[128];      /* a value filter: attr[fattr eq fvalue] */
    json_object *fvalue;
    int ent;              /* an attribute of the enterprise extension */
    int whole_ent;        /* the path is the extension itself */
} scim_path;

static int name_char(int c)
{
    return isalnum(c) || c == '_' || c == '-' || c == '$';
}

/* path := [URN:]attr[ "[" subattr eq value "]" ][.sub] */
static int parse_path(const char *path, scim_path *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    const char *a = path;
    size_t ul = strlen(SCIM_ENT), cl = strlen(SCIM_USER);
    if (strncasecmp(a, SCIM_ENT, ul) == 0 && (a[ul] == ':' || a[ul] == '\0')) {
        p->ent = 1;
        if (a[ul] == '\0') {
            p->whole_ent = 1;
            return 0;
        }
        a += ul + 1;
    } else if (strncasecmp(a, SCIM_USER, cl) == 0 && a[cl] == ':') {
        a += cl + 1;
    }
    size_t n = 0;
    while (name_char((unsigned char)a[n]))
        n++;
    if (n == 0 || n >= sizeof(p->attr))
        goto bad;
    snprintf(p->attr, sizeof(p->attr), "%.*s", (int)n, a);
    a += n;
    if (*a == '[') {
        const char *close = strchr(a, ']');
        if (close == NULL)
            goto bad;
        char f[512];
        size_t fl = (size_t)(close - a - 1);
        if (fl >= sizeof(f))
            goto bad;
        snprintf(f, sizeof(f), "%.*s", (int)fl, a + 1);
        char *q = f;
        while (*q == ' ')
            q++;
        size_t k = 0;
        while (name_char((unsigned char)q[k]))
            k++;
        if (k == 0 || k >= sizeof(p->fattr))
            goto bad;
        snprintf(p->fattr, sizeof(p->fattr), "%.*s", (int)k, q);
        if (eq_value(q + k, &p->fvalue) != 0)
            goto bad;
        a = close + 1;
    }
    if (*a == '.') {
        a++;
        n = 0;
        while (name_char((unsigned char)a[n]))
            n++;
        if (n == 0 || n >= sizeof(p->sub))
            goto bad;
        snprintf(p->sub, sizeof(p->sub), "%.*s", (int)n, a);
        a += n;
    }
    if (*a != '\0')
        goto bad;
    return 0;
bad:
    if (p->fvalue)
        json_object_put(p->fvalue);
    p->fvalue = NULL;
    snprintf(err, errlen, "the path '%.80s' is not one this endpoint understands "
             "(attr, attr.sub, attr[sub eq \"v\"].sub, with or without the schema URN)", path);
    return -1;
}

static int filter_match(json_object *elem, const scim_path *p)
{
    json_object *v = jget_ci(elem, p->fattr, NULL);
    if (v == NULL)
        return 0;
    if (json_object_is_type(p->fvalue, json_type_string))
        return json_object_is_type(v, json_type_string) &&
               strcasecmp(json_object_get_string(v), json_object_get_string(p->fvalue)) == 0;
    return json_object_equal(v, p->fvalue);
}

/* copy every member of src into dst */
static void merge_into(json_object *dst, json_object *src)
{
    json_object_object_foreach(src, k, v)
    {
        jset_ci(dst, k, jcopy(v));
    }
}

/* set (replace) or add to attr of container o */
static void put_attr(json_object *o, const char *attr, json_object *value, int add)
{
    json_object *cur = jget_ci(o, attr, NULL);
    if (add && cur && json_object_is_type(cur, json_type_array) &&
        json_object_is_type(value, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(value); i++) {
            json_object *e = json_object_array_get_idx(value, i);
            int dup = 0;
            for (size_t j = 0; !dup && j < json_object_array_length(cur); j++)
                dup = json_object_equal(json_object_array_get_idx(cur, j), e);
            if (!dup)
                json_object_array_add(cur, jcopy(e));
        }
        json_object_put(value);
        return;
    }
    if (add && cur && json_object_is_type(cur, json_type_object) &&
        json_object_is_type(value, json_type_object)) {
        merge_into(cur, value);
        json_object_put(value);
        return;
    }
    jset_ci(o, attr, value);
}

static int readonly_attr(const char *attr)
{
    return strcasecmp(attr, "id") == 0 || strcasecmp(attr, "meta") == 0 ||
           strcasecmp(attr, "schemas") == 0;
}

/* one operation; 0 or -1 (answered) */
static int patch_one(sg_scim *s, json_object *res, const char *op, const char *path,
                     json_object *value)
{
    char e[SG_ERR_MAX];
    int add = strcasecmp(op, "add") == 0, rem = strcasecmp(op, "remove") == 0;
    if (!add && !rem && strcasecmp(op, "replace") != 0) {
        answer_error(s, 400, "invalidSyntax", "op must be add, replace or remove, not '%.64s'",
                     op);
        return -1;
    }
    if (path == NULL || path[0] == '\0') {
        if (rem) {
            answer_error(s, 400, "noTarget", "a remove operation needs a path");
            return -1;
        }
        if (value == NULL || !json_object_is_type(value, json_type_object)) {
            answer_error(s, 400, "invalidValue",
                         "an operation without a path takes an object of attributes");
            return -1;
        }
        json_object_object_foreach(value, k, v)
        {
            /* a member may itself be a path (Entra ID sends "name.givenName") */
            if (strchr(k, '.') || strchr(k, ':') || strchr(k, '[')) {
                if (patch_one(s, res, op, k, v) != 0)
                    return -1;
                continue;
            }
            if (readonly_attr(k)) {
                if (strcasecmp(k, "schemas") == 0)
                    continue;
                answer_error(s, 400, "mutability", "%s is read-only", k);
                return -1;
            }
            put_attr(res, k, jcopy(v), add);
        }
        return 0;
    }
    scim_path p;
    if (parse_path(path, &p, e, sizeof(e)) != 0) {
        answer_error(s, 400, "invalidPath", "%s", e);
        return -1;
    }
    int rc = 0;
    json_object *o = res;
    if (p.ent) {
        o = jget(res, SCIM_ENT);
        if (o && !json_object_is_type(o, json_type_object)) {
            answer_error(s, 400, "invalidValue", "%s must be an object", SCIM_ENT);
            rc = -1;
            goto done;
        }
        if (o == NULL && !rem) {
            o = json_object_new_object();
            json_object_object_add(res, SCIM_ENT, o);
            json_object *sch = jget(res, "schemas");
            if (sch && json_object_is_type(sch, json_type_array) && !has_schema(res, SCIM_ENT))
                json_object_array_add(sch, json_object_new_string(SCIM_ENT));
        }
    }
    if (p.whole_ent) {
        if (rem)
            json_object_object_del(res, SCIM_ENT);
        else if (value && json_object_is_type(value, json_type_object))
            put_attr(res, SCIM_ENT, jcopy(value), 1);
        else {
            answer_error(s, 400, "invalidValue", "the extension takes an object");
            rc = -1;
        }
        goto done;
    }
    if (o == NULL) /* removing from an absent extension: nothing to do */
        goto done;
    if (!p.ent && readonly_attr(p.attr)) {
        answer_error(s, 400, "mutability", "%s is read-only", p.attr);
        rc = -1;
        goto done;
    }
    if (!rem && value == NULL) {
        answer_error(s, 400, "invalidValue", "operation %s on %s has no value", op, path);
        rc = -1;
        goto done;
    }
    if (p.fvalue) { /* emails[type eq "work"].value */
        json_object *arr = jget_ci(o, p.attr, NULL);
        if (arr == NULL && !rem) {
            arr = json_object_new_array();
            jset_ci(o, p.attr, arr);
        }
        if (arr == NULL)
            goto done;
        if (!json_object_is_type(arr, json_type_array)) {
            answer_error(s, 400, "invalidPath", "%s is not multi-valued", p.attr);
            rc = -1;
            goto done;
        }
        size_t hits = 0;
        for (size_t i = json_object_array_length(arr); i-- > 0;) {
            json_object *el = json_object_array_get_idx(arr, i);
            if (!filter_match(el, &p))
                continue;
            hits++;
            if (rem && p.sub[0])
                jdel_ci(el, p.sub);
            else if (rem)
                json_object_array_del_idx(arr, i, 1);
            else if (p.sub[0])
                jset_ci(el, p.sub, jcopy(value));
            else if (json_object_is_type(value, json_type_object))
                merge_into(el, value);
        }
        if (hits == 0 && !rem) { /* Entra ID: a new element of that type */
            json_object *el = json_object_new_object();
            json_object_object_add(el, p.fattr, jcopy(p.fvalue));
            if (p.sub[0])
                json_object_object_add(el, p.sub, jcopy(value));
            else if (json_object_is_type(value, json_type_object))
                merge_into(el, value);
            json_object_array_add(arr, el);
        }
        goto done;
    }
    if (p.sub[0]) { /* name.givenName */
        json_object *c = jget_ci(o, p.attr, NULL);
        if (c == NULL && !rem) {
            c = json_object_new_object();
            jset_ci(o, p.attr, c);
        }
        if (c && !json_object_is_type(c, json_type_object)) {
            answer_error(s, 400, "invalidPath", "%s has no sub-attributes", p.attr);
            rc = -1;
            goto done;
        }
        if (c && rem)
            jdel_ci(c, p.sub);
        else if (c)
            put_attr(c, p.sub, jcopy(value), add);
        goto done;
    }
    if (rem)
        jdel_ci(o, p.attr);
    else
        put_attr(o, p.attr, jcopy(value), add);
done:
    if (p.fvalue)
        json_object_put(p.fvalue);
    return rc;
}

static int patch_check(sg_scim *s)
{
    json_object *b = s->body;
    if (!json_object_is_type(b, json_type_object) || !has_schema(b, SCIM_PATCHOP)) {
        answer_error(s, 400, "invalidSyntax", "a PATCH body is a PatchOp message (schemas: %s)",
                     SCIM_PATCHOP);
        return -1;
    }
    json_object *ops = jget_ci(b, "Operations", NULL);
    if (ops == NULL || !json_object_is_type(ops, json_type_array) ||
        json_object_array_length(ops) == 0) {
        answer_error(s, 400, "invalidSyntax", "Operations must be a non-empty array");
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(ops); i++) {
        json_object *o = json_object_array_get_idx(ops, i);
        json_object *op = jget_ci(o, "op", NULL), *path = jget_ci(o, "path", NULL);
        if (!json_object_is_type(o, json_type_object) || op == NULL ||
            !json_object_is_type(op, json_type_string) ||
            (path && !json_object_is_type(path, json_type_string))) {
            answer_error(s, 400, "invalidSyntax",
                         "operation %zu: an object with a string op (and a string path)", i + 1);
            return -1;
        }
    }
    return 0;
}

static int patch_apply(sg_scim *s)
{
    json_object *ops = jget_ci(s->body, "Operations", NULL);
    for (size_t i = 0; i < json_object_array_length(ops); i++) {
        json_object *o = json_object_array_get_idx(ops, i);
        json_object *path = jget_ci(o, "path", NULL);
        if (patch_one(s, s->res, json_object_get_string(jget_ci(o, "op", NULL)),
                      path ? json_object_get_string(path) : NULL, jget_ci(o, "value", NULL)) != 0)
            return -1;
    }
    return 0;
}

/* ---- the steps -------------------------------------------------------------------- */

static int map_pools(sg_scim *s)
{
    char seen[4096] = ",";
    for (size_t r = 0; r < s->map->nrules; r++)
        for (char *q = strchr(s->map->rules[r].named, ','); q && q[1]; q = strchr(q + 1, ',')) {
            char one[SG_POOL_MAX + 3];
            size_t ql = strcspn(q + 1, ",");
            snprintf(one, sizeof(one), "%.*s", (int)ql, q + 1);
            if (sg_sync_in_list(seen, one) || strlen(seen) + ql + 2 >= sizeof(seen))
                continue;
            snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s,", one);
            char **t = realloc(s->mpools, (s->nmpools + 1) * sizeof(char *));
            if (t == NULL)
                return -1;
            s->mpools = t;
            if ((t[s->nmpools] = strdup(one)) == NULL)
                return -1;
            s->nmpools++;
        }
    s->gave = calloc(s->nmpools + 1, sizeof(int));
    s->took = calloc(s->nmpools + 1, sizeof(int));
    s->took_old = calloc(s->nmpools + 1, sizeof(int));
    return s->gave && s->took && s->took_old ? 0 : -1;
}

static int renamed(const sg_scim *s)
{
    return s->old_user[0] && strcmp(s->old_user, s->user) != 0;
}

static void step_put(sg_scim *s);

/* assign or unassign user in map pool i; -1 (answered) when out of memory */
static int seat_cmd(sg_scim *s, size_t i, const char *mode, const char *user, int tag)
{
    const char *kv[] = {"pool", s->mpools[i], "via", "scim", "host", s->host,
                        "mode", mode, "users", user};
    if (pool_script(s, SG_SCRIPT_ASSIGN, s->mpools[i], sg_assign_keys, SG_ASSIGN_NKEYS, kv, 10,
                    tag) != 0) {
        answer_error(s, 500, NULL, "out of memory");
        return -1;
    }
    return 0;
}

static void step_unassign(sg_scim *s)
{
    s->stage = ST_UNASSIGN;
    for (size_t i = 0; i < s->nmpools; i++) {
        int keep = s->op != OP_DELETE && sg_sync_in_list(s->named, s->mpools[i]);
        for (int old = 0; old < 2; old++) {
            const char *u = old ? s->old_user : s->user;
            if (old ? !(renamed(s) || s->op == OP_DELETE) : (keep || s->op == OP_DELETE))
                continue;
            if (seat_cmd(s, i, "unassign", u, (int)i * 2 + old) != 0)
                return;
        }
    }
    if (s->ncmds == 0)
        step_put(s);
}

static void step_assign(sg_scim *s)
{
    s->stage = ST_ASSIGN;
    for (size_t i = 0; i < s->nmpools; i++) {
        if (sg_sync_in_list(s->named, s->mpools[i]) &&
            seat_cmd(s, i, "assign", s->user, (int)i) != 0)
            return;
    }
    if (s->ncmds == 0)
        step_unassign(s);
}

/* what the map made of the resource: seats first, then the record */
static void step_plan(sg_scim *s)
{
    if (s->mpools == NULL && map_pools(s) != 0) {
        answer_error(s, 500, NULL, "out of memory");
        return;
    }
    if (s->op == OP_DELETE)
        step_unassign(s);
    else
        step_assign(s);
}

static void step_put(sg_scim *s)
{
    s->stage = ST_PUT;
    sg_buf ch = {0}, seats = {0};
    int bad = 0;
    if (s->op == OP_DELETE) {
        bad |= sg_buf_fmt(&ch, "%s\t1\t-\t-\t\n", s->old_user);
    } else {
        bad |= sg_buf_fmt(&ch, "%s\t%c\t%c\t=\t%s\n", s->user, s->row.disabled ? '1' : '0',
                          s->row.service ? '1' : '0', s->row.groups);
        if (renamed(s))
            bad |= sg_buf_fmt(&ch, "%s\t1\t-\t-\t\n", s->old_user);
    }
    for (size_t i = 0; i < s->nmpools; i++) {
        if (s->gave[i])
            bad |= sg_buf_fmt(&seats, "give\t%s\t%s\n", s->mpools[i], s->user);
        if (s->took[i])
            bad |= sg_buf_fmt(&seats, "take\t%s\t%s\n", s->mpools[i], s->user);
        if (s->took_old[i])
            bad |= sg_buf_fmt(&seats, "take\t%s\t%s\n", s->mpools[i], s->old_user);
    }
    const char *res = s->res ? jstr(s->res) : "";
    const char *kv[] = {"op", s->op == OP_DELETE ? "delete" : "put", "id", s->id,
                        "resource", res, "name", s->name, "ext", s->ext,
                        "user", s->op == OP_DELETE ? s->old_user : s->user,
                        "create", s->op == OP_CREATE ? "1" : "0", "changes", ch.p ? ch.p : "",
                        "rules", s->rules, "seats", seats.p ? seats.p : "",
                        "ver", s->etag, "expect", s->op == OP_CREATE ? "" : s->old_ver};
    if (bad || scim_script(s, kv, 24) != 0)
        answer_error(s, 500, NULL, "out of memory");
    sg_buf_free(&ch);
    sg_buf_free(&seats);
}

static void finish(sg_scim *s)
{
    if (s->op == OP_DELETE) {
        s->location[0] = s->etag[0] = '\0';
        answer_json(s, 204, NULL);
        return;
    }
    answer_json(s, s->op == OP_CREATE ? 201 : 200, s->res);
    if (s->op != OP_CREATE)
        s->location[0] = '\0'; /* Location goes with a 201 only */
}

static void step_apply(sg_scim *s)
{
    s->stage = ST_APPLY;
    for (size_t p = 0; p < s->npools; p++) {
        sg_buf recs = {0};
        size_t k = 0;
        char desc[SG_ERR_MAX] = "";
        for (size_t i = 0; i < s->nchanges; i++) {
            scim_change *c = &s->changes[i];
            if (!sg_rec_matters(c->old, s->watch[p]) && !sg_rec_matters(c->rec, s->watch[p]))
                continue;
            if (sg_buf_fmt(&recs, "%s\t%s\n", c->user, c->rec) != 0) {
                sg_buf_free(&recs);
                answer_error(s, 500, NULL, "out of memory");
                return;
            }
            if (k++ == 0)
                sg_rec_desc(c->old, c->rec, desc, sizeof(desc));
        }
        if (k > 1)
            snprintf(desc, sizeof(desc), "user records changed (%zu users)", k);
        if (k) {
            const char *kv[] = {"pool", s->pools[p], "via", "scim", "host", s->host,
                                "desc", desc, "records", recs.p, "quiet", "0"};
            if (pool_script(s, SG_SCRIPT_USER_APPLY, s->pools[p], sg_user_apply_keys,
                            SG_USER_APPLY_NKEYS, kv, 12, (int)p) != 0) {
                sg_buf_free(&recs);
                answer_error(s, 500, NULL, "out of memory");
                return;
            }
        }
        sg_buf_free(&recs);
    }
    if (s->ncmds == 0)
        finish(s);
}

static void step_watch(sg_scim *s)
{
    s->stage = ST_WATCH;
    s->watch = calloc(s->npools + 1, sizeof(char *));
    if (s->watch == NULL) {
        answer_error(s, 500, NULL, "out of memory");
        return;
    }
    for (size_t p = 0; p < s->npools; p++) {
        char k[SG_KEY_MAX];
        scim_cmd *c = cmd_new(s, -1, (int)p);
        const char *av[] = {"HMGET", k, "tracked", "pending"};
        if (c == NULL || sg_keyname(SG_K_CONF, s->pools[p], k, sizeof(k)) != 0 ||
            cmd_args(c, av, 4) != 0) {
            answer_error(s, 500, NULL, "out of memory");
            return;
        }
    }
    if (s->ncmds == 0)
        finish(s);
}

/* ---- replies ---------------------------------------------------------------------- */

static void on_get(sg_scim *s, const redisReply *r)
{
    const char *st = sg_reply_str0(r, "status");
    snprintf(s->owner, sizeof(s->owner), "%s", sg_reply_str0(r, "owner"));
    if (strcmp(st, "ok") == 0) {
        free(s->old_json);
        s->old_json = strdup(sg_reply_str0(r, "resource"));
        snprintf(s->old_user, sizeof(s->old_user), "%s", sg_reply_str0(r, "user"));
        snprintf(s->old_ver, sizeof(s->old_ver), "%s", sg_reply_str0(r, "ver"));
    }
}

static void after_get(sg_scim *s)
{
    if (s->op != OP_CREATE && s->old_json == NULL) {
        answer_error(s, 404, NULL, "no User %s", s->id);
        return;
    }
    json_object *old = s->old_json ? json_tokener_parse(s->old_json) : NULL;
    if (s->op != OP_CREATE && old == NULL) {
        answer_error(s, 500, NULL, "the stored resource %s is not JSON", s->id);
        return;
    }
    if (s->op == OP_GET) {
        take_etag(s, old);
        answer_json(s, 200, old);
        json_object_put(old);
        return;
    }
    json_object *meta = jget(old, "meta"), *created = jget(meta, "created");
    const char *ct = created && json_object_is_type(created, json_type_string)
                         ? json_object_get_string(created) : NULL;
    char ctext[SG_RFC3339_LEN + 8] = "";
    if (ct)
        snprintf(ctext, sizeof(ctext), "%s", ct);
    if (s->op == OP_PATCH) {
        s->res = old;
        old = NULL;
        if (patch_apply(s) != 0)
            return;
    } else if (s->op == OP_REPLACE || s->op == OP_CREATE) {
        s->res = jcopy(s->body);
    } else { /* DELETE */
        json_object_put(old);
        step_plan(s);
        return;
    }
    if (old)
        json_object_put(old);
    if (finish_resource(s, 0, ctext) != 0)
        return;
    if (s->owner[0] && strcmp(s->owner, s->id) != 0) {
        answer_error(s, 409, "uniqueness", "userName %s is taken by User %s", s->user,
                     s->owner);
        return;
    }
    /* a PATCH may give a userName the get did not ask about */
    if (s->op == OP_PATCH && !s->owner[0] && strcasecmp(s->old_user, s->user) != 0) {
        s->stage = ST_NAME;
        const char *kv[] = {"op", "get", "id", "", "name", s->name};
        if (scim_script(s, kv, 6) != 0)
            answer_error(s, 500, NULL, "out of memory");
        return;
    }
    step_plan(s);
}

static void on_pool_seat(sg_scim *s, const scim_cmd *c, const redisReply *r)
{
    const char *st = sg_reply_str0(r, "status");
    long long changed = sg_reply_ll(r, "changed");
    size_t i = (size_t)(s->stage == ST_ASSIGN || s->stage == ST_UNDO ? c->tag : c->tag / 2);
    if (i >= s->nmpools)
        return;
    if (strcmp(st, "ok") != 0 && s->stage == ST_ASSIGN) {
        snprintf(s->refused, sizeof(s->refused), "%s", sg_reply_str0(r, "message"));
        if (s->refused[0] == '\0')
            snprintf(s->refused, sizeof(s->refused), "pool %s refused the named seat",
                     s->mpools[i]);
        return;
    }
    if (changed <= 0)
        return;
    if (s->stage == ST_ASSIGN)
        s->gave[i] = 1;
    else if (s->stage == ST_UNDO)
        s->gave[i] = 0;
    else if (c->tag % 2) {
        s->took_old[i] = 1;
        if (!s->took_old_user[0])
            snprintf(s->took_old_user, sizeof(s->took_old_user), "%s", s->old_user);
    }
    else if (s->gave[i])
        s->gave[i] = 0; /* a retry took back what the first try gave */
    else
        s->took[i] = 1;
}

static void after_assign(sg_scim *s)
{
    if (!s->refused[0]) {
        step_unassign(s);
        return;
    }
    /* all or nothing: the seats this request gave go back */
    s->stage = ST_UNDO;
    for (size_t i = 0; i < s->nmpools; i++) {
        if (s->gave[i] && seat_cmd(s, i, "unassign", s->user, (int)i) != 0)
            return;
    }
    if (s->ncmds == 0)
        answer_error(s, 409, NULL, "%s; nothing was changed", s->refused);
}

/* Any refusal (4xx) of a change after this request gave or took named
 * seats: the put found the User gone or its userName taken, other requests
 * kept changing it past the retries, or a retry's fresh read was refused
 * (gone, name taken, no longer valid). The seats go back first, then the
 * refusal is answered, so a refused request changes nothing. sg_scim_step
 * starts it once the refusal is answered. */
static int seats_changed(const sg_scim *s)
{
    for (size_t i = 0; s->gave && i < s->nmpools; i++)
        if (s->gave[i] || s->took[i] || s->took_old[i])
            return 1;
    return 0;
}

static void finish_rollback(sg_scim *s)
{
    sg_buf kept = s->kept;
    memset(&s->kept, 0, sizeof(s->kept));
    json_object *o = kept.p ? json_tokener_parse(kept.p) : NULL;
    sg_buf_free(&kept);
    if (s->rollback_bad) {
        snprintf(s->log, sizeof(s->log), "putting back the named seats of a refused change "
                 "failed; the next change of the User or seatctl sync mends them");
        json_object *d = o ? jget(o, "detail") : NULL;
        char detail[1200];
        snprintf(detail, sizeof(detail), "%s; the named seats it had changed could not all be "
                 "put back (the next change mends them)", d ? json_object_get_string(d) : "");
        if (o)
            json_object_object_add(o, "detail", json_object_new_string(detail));
    }
    answer_json(s, s->kept_status, o);
    if (o)
        json_object_put(o);
}

static void start_rollback(sg_scim *s)
{
    s->rolled = 1;
    s->kept_status = s->status;
    s->kept = s->out;
    memset(&s->out, 0, sizeof(s->out));
    s->stage = ST_ROLLBACK;
    for (size_t i = 0; i < s->nmpools; i++) {
        /* tag: pool * 4 + what (0 give back, 1 take again, 2 the old name's) */
        if ((s->gave[i] && seat_cmd(s, i, "unassign", s->user, (int)i * 4) != 0) ||
            (s->took[i] && seat_cmd(s, i, "assign", s->user, (int)i * 4 + 1) != 0) ||
            (s->took_old[i] &&
             seat_cmd(s, i, "assign", s->took_old_user, (int)i * 4 + 2) != 0)) {
            s->rollback_bad = 1; /* out of memory: what was queued still goes */
            break;
        }
    }
    if (s->ncmds == 0)
        finish_rollback(s);
}

static void on_rollback(sg_scim *s, const scim_cmd *c, const redisReply *r)
{
    size_t i = (size_t)c->tag / 4;
    if (i >= s->nmpools || strcmp(sg_reply_str0(r, "status"), "ok") != 0) {
        s->rollback_bad = 1;
        return;
    }
    if (sg_reply_ll(r, "changed") > 0) {
        if (c->tag % 4 == 0)
            s->gave[i] = 0;
        else if (c->tag % 4 == 1)
            s->took[i] = 0;
        else
            s->took_old[i] = 0;
    }
}

static void on_put(sg_scim *s, const redisReply *r)
{
    const char *st = sg_reply_str0(r, "status");
    if (strcmp(st, "missing") == 0) {
        answer_error(s, 404, NULL, "no User %s", s->id);
        return;
    }
    if (strcmp(st, "retry") == 0) {
        s->retry = 1;
        return;
    }
    if (strcmp(st, "conflict") == 0) {
        answer_error(s, 409, "uniqueness", "userName %s is taken", s->user);
        return;
    }
    if (strcmp(st, "ok") != 0) {
        snprintf(s->redis_err, sizeof(s->redis_err), "unexpected reply to scim put");
        answer_backend(s);
        return;
    }
    char **ls = NULL, **pools = NULL;
    size_t nl = 0, np = 0;
    if (sg_split_lines(sg_reply_str0(r, "changed"), &ls, &nl) != 0 ||
        sg_split_lines(sg_reply_str0(r, "pools"), &pools, &np) != 0) {
        sg_strv_free(ls, nl);
        sg_strv_free(pools, np);
        answer_error(s, 500, NULL, "out of memory");
        return;
    }
    s->pools = pools;
    s->npools = np;
    s->changes = calloc(nl + 1, sizeof(*s->changes));
    for (size_t i = 0; s->changes && i < nl; i++) {
        char *t1 = strchr(ls[i], '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (t2 == NULL)
            continue;
        *t1 = *t2 = '\0';
        scim_change *c = &s->changes[s->nchanges++];
        c->user = strdup(ls[i]);
        c->old = strdup(t1 + 1);
        c->rec = strdup(t2 + 1);
        if (c->user == NULL || c->old == NULL || c->rec == NULL) {
            sg_strv_free(ls, nl);
            answer_error(s, 500, NULL, "out of memory");
            return;
        }
    }
    sg_strv_free(ls, nl);
    if (s->changes == NULL)
        answer_error(s, 500, NULL, "out of memory");
}

static void on_watch(sg_scim *s, const scim_cmd *c, const redisReply *r)
{
    sg_buf b = {0};
    sg_buf_str(&b, ",");
    for (size_t j = 0; r->type == REDIS_REPLY_ARRAY && j < r->elements; j++)
        if (r->element[j]->type == REDIS_REPLY_STRING && r->element[j]->len > 1)
            sg_buf_str(&b, r->element[j]->str + 1);
    free(s->watch[c->tag]);
    s->watch[c->tag] = b.p ? b.p : strdup(",");
}

static void on_find(sg_scim *s, const redisReply *r)
{
    json_object *l = NULL;
    if (s->stage == ST_FIND) {
        const char *st = sg_reply_str0(r, "status");
        int hit = strcmp(st, "ok") == 0;
        l = list_response(hit, s->start);
        if (hit && s->start <= 1 && s->count > 0) {
            json_object *res = json_tokener_parse(sg_reply_str0(r, "resource"));
            if (res)
                list_add(l, res);
        }
    } else {
        char **ls = NULL;
        size_t nl = 0;
        l = list_response(sg_reply_ll(r, "total"), s->start);
        if (sg_split_lines(sg_reply_str0(r, "resources"), &ls, &nl) == 0)
            for (size_t i = 0; i < nl; i++) {
                json_object *res = json_tokener_parse(ls[i]);
                if (res)
                    list_add(l, res);
            }
        sg_strv_free(ls, nl);
    }
    answer_json(s, 200, l);
    json_object_put(l);
}

static void queue_get(sg_scim *s)
{
    s->stage = ST_GET;
    const char *kv[] = {"op", "get", "id", s->op == OP_CREATE ? "" : s->id, "name", s->name};
    if (scim_script(s, kv, 6) != 0)
        answer_error(s, 500, NULL, "out of memory");
}

/* Another request changed the resource between our read and our write (the
 * write names the version it was made from): read it again and redo the
 * change on what is there now, a few times. The named seats the first try
 * gave or took are given or taken again as the map says now. */
static void restart(sg_scim *s)
{
    if (++s->retries > 3) {
        answer_error(s, 409, NULL, "User %s was changed by other requests meanwhile; "
                     "try again", s->id);
        return;
    }
    if (s->res)
        json_object_put(s->res);
    s->res = NULL;
    free(s->old_json);
    s->old_json = NULL;
    /* the map's pools and the seats the first try gave or took stay known:
     * the retry's assign and unassign see no change for them, and the
     * change log and an undo still need them */
    s->retry = 0;
    s->old_user[0] = s->old_ver[0] = s->owner[0] = s->refused[0] = '\0';
    queue_get(s);
}

/* ---- the interface ---------------------------------------------------------------- */

sg_scim *sg_scim_new(const sg_sync_map *m, const sg_scim_request *rq)
{
    sg_scim *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->map = m;
    s->now_ms = rq->now_ms;
    s->base = strdup(rq->base ? rq->base : "");
    s->by = strdup(rq->by ? rq->by : "scim");
    s->host = strdup(rq->host ? rq->host : "");
    s->start = 1;
    s->count = 100;
    if (s->base == NULL || s->by == NULL || s->host == NULL) {
        sg_scim_free(s);
        return NULL;
    }
    const char *method = rq->method ? rq->method : "", *path = rq->path ? rq->path : "";
    int get = strcmp(method, "GET") == 0;
    /* the path: /Users, /Users/ID, or a discovery document */
    if (strncmp(path, "/Users", 6) != 0 || (path[6] != '\0' && path[6] != '/')) {
        if (!get && (strcmp(path, "/ServiceProviderConfig") == 0 ||
                     strncmp(path, "/ResourceTypes", 14) == 0 ||
                     strncmp(path, "/Schemas", 8) == 0))
            answer_error(s, 405, NULL, "%s is read-only: GET it", path);
        else if (get)
            answer_discovery(s, path);
        else
            answer_error(s, 404, NULL, "no such resource: %.200s (this endpoint serves /Users)",
                         path);
        return s;
    }
    const char *id = path[6] == '/' ? path + 7 : NULL;
    if (id && (id[0] == '\0' || !valid_id(id))) {
        answer_error(s, 404, NULL, "no User %.80s", id);
        return s;
    }
    if (id)
        snprintf(s->id, sizeof(s->id), "%s", id);
    if (strcmp(method, "POST") == 0 && !id)
        s->op = OP_CREATE;
    else if (get)
        s->op = id ? OP_GET : OP_LIST;
    else if (id && strcmp(method, "PUT") == 0)
        s->op = OP_REPLACE;
    else if (id && strcmp(method, "PATCH") == 0)
        s->op = OP_PATCH;
    else if (id && strcmp(method, "DELETE") == 0)
        s->op = OP_DELETE;
    else {
        answer_error(s, 405, NULL, "%s is not allowed on %s", method, id ? "/Users/{id}" : "/Users");
        return s;
    }
    /* a body */
    if (s->op == OP_CREATE || s->op == OP_REPLACE || s->op == OP_PATCH) {
        json_tokener *tok = json_tokener_new();
        if (tok == NULL) {
            answer_error(s, 500, NULL, "out of memory");
            return s;
        }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        if (rq->body && rq->body_len && memchr(rq->body, '\0', rq->body_len) == NULL)
            s->body = json_tokener_parse_ex(tok, rq->body, (int)rq->body_len);
        int ok = s->body && json_tokener_get_error(tok) == json_tokener_success;
        const char *end = ok ? rq->body + json_tokener_get_parse_end(tok) : NULL;
        while (ok && end < rq->body + rq->body_len && isspace((unsigned char)*end))
            end++;
        if (ok && end != rq->body + rq->body_len)
            ok = 0;
        if (!ok)
            answer_error(s, 400, "invalidSyntax", "the body is not one JSON object (%s)",
                         rq->body_len ? json_tokener_error_desc(json_tokener_get_error(tok))
                                      : "empty");
        json_tokener_free(tok);
        if (!ok)
            return s;
        if (!json_object_is_type(s->body, json_type_object)) {
            answer_error(s, 400, "invalidSyntax", "the body must be a JSON object");
            return s;
        }
    }
    switch (s->op) {
    case OP_LIST: {
        char *f = query_param(rq->query, "filter");
        s->start = param_long(rq->query, "startIndex", 1);
        s->count = param_long(rq->query, "count", 100);
        if (s->start < 1)
            s->start = 1;
        if (s->count < 0)
            s->count = 0;
        if (s->count > 200)
            s->count = 200;
        char e[SG_ERR_MAX];
        if (f && parse_filter(s, f, e, sizeof(e)) != 0) {
            free(f);
            answer_error(s, 400, "invalidFilter", "%s", e);
            return s;
        }
        if (f) {
            free(f);
            s->stage = ST_FIND;
            const char *attr = s->fattr == 0 ? "name" : s->fattr == 1 ? "ext" : "id";
            const char *kv[] = {"op", "find", "attr", attr, "value", s->fvalue};
            if (scim_script(s, kv, 6) != 0)
                answer_error(s, 500, NULL, "out of memory");
        } else {
            char st[24], ct[24];
            snprintf(st, sizeof(st), "%ld", s->start - 1);
            snprintf(ct, sizeof(ct), "%ld", s->count);
            s->stage = ST_LIST;
            const char *kv[] = {"op", "list", "start", st, "count", ct};
            if (scim_script(s, kv, 6) != 0)
                answer_error(s, 500, NULL, "out of memory");
        }
        return s;
    }
    case OP_CREATE:
        if (new_id(s->id, sizeof(s->id)) != 0) {
            answer_error(s, 500, NULL, "no random bytes for an id");
            return s;
        }
        /* fall through */
    case OP_REPLACE:
        /* checked before anything is read, so a bad body costs no round trip */
        s->res = jcopy(s->body);
        if (finish_resource(s, 0, NULL) != 0)
            return s;
        json_object_put(s->res);
        s->res = NULL;
        break;
    case OP_PATCH:
        if (patch_check(s) != 0)
            return s;
        break;
    default:
        break;
    }
    queue_get(s);
    return s;
}

void sg_scim_command(const sg_scim *s, int i, int *argc, const char ***argv,
                     const size_t **argvlen)
{
    scim_cmd *c = &s->cmds[i];
    if (c->script >= 0) {
        c->argv[0] = (char *)sg_script_verb(c->how);
        c->argv[1] = (char *)sg_script_ref((sg_script)c->script, c->how);
        c->argvlen[0] = strlen(c->argv[0]);
        c->argvlen[1] = strlen(c->argv[1]);
    }
    *argc = c->argc;
    *argv = (const char **)c->argv;
    *argvlen = c->argvlen;
}

void sg_scim_reply(sg_scim *s, int i, const struct redisReply *r)
{
    if (i < 0 || (size_t)i >= s->ncmds || s->stage == ST_DONE)
        return;
    scim_cmd *c = &s->cmds[i];
    if (r == NULL) {
        s->failed = 1;
        return;
    }
    int next = c->script >= 0 ? sg_script_call_next(r, c->how) : -1;
    if (next >= 0) {
        c->again = next + 1;
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (!s->redis_err[0])
            snprintf(s->redis_err, sizeof(s->redis_err), "%s", r->str);
        return;
    }
    switch (s->stage) {
    case ST_GET:
    case ST_NAME:
        if (s->stage == ST_NAME)
            snprintf(s->owner, sizeof(s->owner), "%s", sg_reply_str0(r, "owner"));
        else
            on_get(s, r);
        break;
    case ST_FIND:
    case ST_LIST:
        on_find(s, r);
        break;
    case ST_ASSIGN:
    case ST_UNDO:
    case ST_UNASSIGN:
        on_pool_seat(s, c, r);
        break;
    case ST_PUT:
        on_put(s, r);
        break;
    case ST_WATCH:
        on_watch(s, c, r);
        break;
    case ST_ROLLBACK:
        on_rollback(s, c, r);
        break;
    default:
        break;
    }
}

static int step_once(sg_scim *s)
{
    if (s->stage == ST_DONE) {
        free_cmds(s);
        return 0;
    }
    if (s->stage == ST_NEW) /* answered in sg_scim_new */
        return 0;
    if (s->ncmds == 0) { /* cannot be: every stage but DONE has a batch */
        answer_error(s, 500, NULL, "internal error: nothing to send");
        return 0;
    }
    /* commands the server did not know the script of go again, the next
     * way (FCALL -> EVALSHA -> EVAL) */
    size_t again = 0;
    for (size_t i = 0; i < s->ncmds; i++)
        again += s->cmds[i].again != 0;
    if (again && !s->failed && !s->redis_err[0]) {
        size_t k = 0;
        for (size_t i = 0; i < s->ncmds; i++) {
            scim_cmd c = s->cmds[i];
            if (c.again) {
                c.how = c.again - 1;
                c.again = 0;
                s->cmds[k++] = c;
            } else {
                for (int a = c.script >= 0 ? 2 : 0; a < c.argc; a++)
                    free(c.argv[a]);
                free(c.argv);
                free(c.argvlen);
            }
        }
        s->ncmds = k;
        return (int)k;
    }
    int stage = s->stage;
    free_cmds(s);
    if (stage == ST_ROLLBACK) { /* the refusal, whatever the rollback met */
        s->rollback_bad |= s->failed || s->redis_err[0];
        finish_rollback(s);
        return 0;
    }
    if (s->failed || s->redis_err[0]) {
        if (stage == ST_WATCH || stage == ST_APPLY) {
            /* the resource, record and seats are in place; a pool that did
             * not get the record is mended by the next change or seatctl
             * doctor --fix: the answer is the change's */
            snprintf(s->log, sizeof(s->log), "applying the record to the pools failed: %.200s",
                     s->failed ? "no reply" : s->redis_err);
            finish(s);
        } else {
            answer_backend(s);
        }
        return 0;
    }
    switch (stage) {
    case ST_GET:
    case ST_NAME:
        if (stage == ST_NAME) {
            if (s->owner[0] && strcmp(s->owner, s->id) != 0)
                answer_error(s, 409, "uniqueness", "userName %s is taken by User %s", s->user,
                             s->owner);
            else
                step_plan(s);
        } else {
            after_get(s);
        }
        break;
    case ST_ASSIGN:
        after_assign(s);
        break;
    case ST_UNDO:
        answer_error(s, 409, NULL, "%s; nothing was changed", s->refused);
        break;
    case ST_UNASSIGN:
        step_put(s);
        break;
    case ST_PUT:
        if (s->stage == ST_PUT && s->retry) {
            restart(s);
        } else if (s->stage == ST_PUT) { /* not answered by on_put */
            if (s->nchanges && s->npools)
                step_watch(s);
            else
                finish(s);
        }
        break;
    case ST_WATCH:
        step_apply(s);
        break;
    case ST_APPLY:
        finish(s);
        break;
    default: /* FIND, LIST: answered by the reply */
        if (s->stage != ST_DONE)
            answer_backend(s);
        break;
    }
    return s->stage == ST_DONE ? 0 : (int)s->ncmds;
}

int sg_scim_step(sg_scim *s)
{
    int n = step_once(s);
    /* refused (4xx) after seats changed: they go back before the answer */
    if (n == 0 && s->stage == ST_DONE && !s->rolled && s->status >= 400 && s->status < 500 &&
        seats_changed(s)) {
        free_cmds(s);
        start_rollback(s);
        n = s->stage == ST_DONE ? 0 : (int)s->ncmds;
    }
    return n;
}

int sg_scim_pending(const sg_scim *s)
{
    return s->stage == ST_DONE || s->stage == ST_NEW ? 0 : (int)s->ncmds;
}

int sg_scim_status(const sg_scim *s)
{
    return s->status ? s->status : 500;
}

const char *sg_scim_body(const sg_scim *s, size_t *len)
{
    if (len)
        *len = s->out.len;
    return s->out.len ? s->out.p : NULL;
}

const char *sg_scim_location(const sg_scim *s)
{
    return s->location[0] ? s->location : NULL;
}

const char *sg_scim_etag(const sg_scim *s)
{
    return s->etag[0] ? s->etag : NULL;
}

const char *sg_scim_log(const sg_scim *s)
{
    return s->log[0] ? s->log : NULL;
}

void sg_scim_free(sg_scim *s)
{
    if (s == NULL)
        return;
    free_cmds(s);
    free(s->base);
    free(s->by);
    free(s->host);
    if (s->body)
        json_object_put(s->body);
    if (s->res)
        json_object_put(s->res);
    free(s->old_json);
    sg_strv_free(s->mpools, s->nmpools);
    free(s->gave);
    free(s->took);
    free(s->took_old);
    for (size_t i = 0; i < s->nchanges; i++) {
        free(s->changes[i].user);
        free(s->changes[i].old);
        free(s->changes[i].rec);
    }
    free(s->changes);
    sg_strv_free(s->watch, s->npools);
    sg_strv_free(s->pools, s->npools);
    free(s->fvalue);
    sg_buf_free(&s->out);
    sg_buf_free(&s->kept);
    free(s);
}
