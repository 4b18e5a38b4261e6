/*
 * seatctl: the seatgate admin CLI. Argument parsing and presentation only;
 * every rule lives in libseatgate (common/).
 *
 * Exit codes: 0 ok / granted, 1 denied, 2 usage or input error (nothing
 * changed), 3 Redis unreachable or failed.
 */
#include "seatctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    O_REDIS = 1000,
    O_TIMEOUT,
    O_CONFIG,
    O_JSON,
    O_HELP,
    O_VERSION,
    O_NAMED,
    O_FLOATING,
    O_IDLE,
    O_FEATURES,
    O_RESERVE,
    O_CAP,
    O_INCLUDE,
    O_EXCLUDE,
    O_OVERDRAFT,
    O_MUX_LIMIT,
    O_MUX_WINDOW,
    O_GROUPS,
    O_SERVICE,
    O_NOT_SERVICE,
    O_DISABLED,
    O_ENABLED,
    O_FEATURE,
    O_OBO,
    O_SESSION,
    O_TTL,
    O_MAX_LEASE,
    O_AUDIT_RETENTION,
    O_DENY_FOLD,
    O_USAGE_BUCKET,
    O_USAGE_RETENTION,
    O_TEST_CLOCK,
    O_NO_RESERVE,
    O_NO_CAP,
    O_NO_INCLUDE,
    O_NO_EXCLUDE,
    O_NO_FEATURE,
    O_FROM,
    O_POOL,
    O_USER,
    O_SINCE,
    O_UNTIL,
    O_FORMAT,
    O_FOLLOW,
    O_OUT,
    O_PRICE_NAMED,
    O_PRICE_FLOATING,
    O_DENIAL_BUDGET,
    O_FIX,
    O_MAP,
    O_DRY_RUN,
    O_FULL,
    O_MAX
};

static const struct option long_opts[] = {
    {"redis", required_argument, 0, O_REDIS},
    {"timeout", required_argument, 0, O_TIMEOUT},
    {"config", required_argument, 0, O_CONFIG},
    {"json", no_argument, 0, O_JSON},
    {"help", no_argument, 0, O_HELP},
    {"version", no_argument, 0, O_VERSION},
    {"named", required_argument, 0, O_NAMED},
    {"floating", required_argument, 0, O_FLOATING},
    {"idle-timeout", required_argument, 0, O_IDLE},
    {"features", required_argument, 0, O_FEATURES},
    {"reserve", required_argument, 0, O_RESERVE},
    {"cap", required_argument, 0, O_CAP},
    {"include", required_argument, 0, O_INCLUDE},
    {"exclude", required_argument, 0, O_EXCLUDE},
    {"overdraft", required_argument, 0, O_OVERDRAFT},
    {"mux-limit", required_argument, 0, O_MUX_LIMIT},
    {"mux-window", required_argument, 0, O_MUX_WINDOW},
    {"groups", required_argument, 0, O_GROUPS},
    {"service-account", no_argument, 0, O_SERVICE},
    {"no-service-account", no_argument, 0, O_NOT_SERVICE},
    {"disabled", no_argument, 0, O_DISABLED},
    {"enabled", no_argument, 0, O_ENABLED},
    {"feature", required_argument, 0, O_FEATURE},
    {"on-behalf-of", required_argument, 0, O_OBO},
    {"session", required_argument, 0, O_SESSION},
    {"lease", required_argument, 0, O_TTL},
    {"max-lease", required_argument, 0, O_MAX_LEASE},
    {"audit-retention", required_argument, 0, O_AUDIT_RETENTION},
    {"deny-fold", required_argument, 0, O_DENY_FOLD},
    {"usage-bucket", required_argument, 0, O_USAGE_BUCKET},
    {"usage-retention", required_argument, 0, O_USAGE_RETENTION},
    {"test-clock", required_argument, 0, O_TEST_CLOCK},
    {"no-reserve", required_argument, 0, O_NO_RESERVE},
    {"no-cap", required_argument, 0, O_NO_CAP},
    {"no-include", required_argument, 0, O_NO_INCLUDE},
    {"no-exclude", required_argument, 0, O_NO_EXCLUDE},
    {"no-feature", required_argument, 0, O_NO_FEATURE},
    {"from", required_argument, 0, O_FROM},
    {"pool", required_argument, 0, O_POOL},
    {"user", required_argument, 0, O_USER},
    {"since", required_argument, 0, O_SINCE},
    {"until", required_argument, 0, O_UNTIL},
    {"format", required_argument, 0, O_FORMAT},
    {"out", required_argument, 0, O_OUT},
    {"price-named", required_argument, 0, O_PRICE_NAMED},
    {"price-floating", required_argument, 0, O_PRICE_FLOATING},
    {"denial-budget", required_argument, 0, O_DENIAL_BUDGET},
    {"follow", no_argument, 0, O_FOLLOW},
    {"fix", no_argument, 0, O_FIX},
    {"map", required_argument, 0, O_MAP},
    {"dry-run", no_argument, 0, O_DRY_RUN},
    {"full", no_argument, 0, O_FULL},
    {0, 0, 0, 0},
};

struct cmd {
    const char *name;
    const char *sub; /* second word, or NULL */
    int min_pos, max_pos; /* positional args after the command words */
    const int *allowed;   /* 0-terminated list of command options */
    int (*run)(opts_t *o, sg_conn *c);
    const char *usage;
    const char *help;
};

int json_out;

void die_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("seatctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see seatctl --help)\n", stderr);
    exit(EX_USAGE);
}

int report_err(int rc, const char *err)
{
    fprintf(stderr, "seatctl: %s\n", err);
    return rc == SG_EBACKEND ? EX_BACKEND : rc == SG_EDENIED ? EX_DENIED : EX_USAGE;
}

void print_json(json_object *j)
{
    puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(j);
}

void fmt_time(long long ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *read_all(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (buf == NULL || bad) {
        snprintf(err, errlen, "%s: %s", path, buf ? "read error" : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- decisions ---------------------------------------------------------- */

static int decision_exit(const sg_decision *d)
{
    if (d->result == SG_ERROR_BACKEND)
        return strcmp(d->reason, "invalid_input") == 0 ? EX_USAGE : EX_BACKEND;
    return sg_result_granted(d->result) ? EX_OK : EX_DENIED;
}

static void print_decision(const sg_request *rq, const sg_decision *d)
{
    if (json_out) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "result", json_object_new_string(sg_result_name(d->result)));
        json_object_object_add(j, "reason", json_object_new_string(d->reason));
        json_object_object_add(j, "pool", json_object_new_string(rq->pool));
        json_object_object_add(j, "user", json_object_new_string(rq->user));
        json_object_object_add(j, "effective_user",
                               json_object_new_string(d->user[0] ? d->user : rq->user));
        json_object_object_add(j, "on_behalf_of",
                               rq->on_behalf_of ? json_object_new_string(rq->on_behalf_of) : NULL);
        json_object_object_add(j, "seat", json_object_new_string(sg_seat_name(d->seat)));
        if (d->result == SG_ERROR_BACKEND) {
            json_object_object_add(j, "error", json_object_new_string(d->err));
        } else {
            json_object_object_add(j, "in_use", json_object_new_int64(d->in_use));
            json_object_object_add(j, "floating", json_object_new_int64(d->floating));
            json_object_object_add(j, "capacity", json_object_new_int64(d->capacity));
            json_object_object_add(j, "named", json_object_new_int64(d->named));
            json_object_object_add(j, "expires_ms", json_object_new_int64(d->expires_ms));
            json_object_object_add(j, "overdraft", json_object_new_boolean(d->overdraft));
        }
        print_json(j);
        return;
    }
    if (d->result == SG_ERROR_BACKEND) {
        fprintf(stderr, "seatctl: %s\n", d->err);
        return;
    }
    const char *who = d->user[0] ? d->user : rq->user;
    printf("%-20s %s\n", sg_result_name(d->result), d->reason);
    printf("  pool %s, user %s", rq->pool, rq->user);
    if (rq->on_behalf_of && *rq->on_behalf_of)
        printf(" on behalf of %s", who);
    printf(", seat %s\n", sg_seat_name(d->seat));
    printf("  floating seats in use: %lld of %lld", d->in_use, d->floating);
    if (d->capacity > d->floating)
        printf(" (+%lld overdraft)", d->capacity - d->floating);
    printf("\n");
    if (d->expires_ms > 0) {
        char t[40];
        fmt_time(d->expires_ms, t, sizeof(t));
        printf("  lease expires %s\n", t);
    }
    if (d->overdraft)
        printf("  note: granted in overdraft (recorded in the audit log)\n");
}

static int do_decide(opts_t *o, sg_conn *c, sg_op op)
{
    char host[256];
    sg_hostname(host, sizeof(host));
    sg_request rq = {
        .op = op,
        .pool = o->pos[0],
        .user = o->pos[1],
        .on_behalf_of = o->obo,
        .feature = o->feature,
        .session = o->session,
        .via = "cli",
        .host = host,
        .client = "",
        .pid = 0,
        .ttl_s = o->ttl_s,
    };
    char err[SG_ERR_MAX];
    if (sg_request_validate(&rq, err, sizeof(err)) != 0)
        die_usage("%s", err);
    sg_decision d;
    sg_decide(c, &rq, &d);
    print_decision(&rq, &d);
    return decision_exit(&d);
}

static int cmd_check(opts_t *o, sg_conn *c)
{
    return do_decide(o, c, SG_OP_CHECK);
}

static int cmd_acquire(opts_t *o, sg_conn *c)
{
    return do_decide(o, c, SG_OP_ACQUIRE);
}

static int cmd_release(opts_t *o, sg_conn *c)
{
    char host[256], err[SG_ERR_MAX];
    sg_hostname(host, sizeof(host));
    long n = sg_release(c, o->pos[0], o->pos[1], o->session, "cli", host, err, sizeof(err));
    if (n == -2)
        die_usage("%s", err);
    if (n < 0)
        return report_err(SG_EBACKEND, err);
    if (json_out) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "pool", json_object_new_string(o->pos[0]));
        json_object_object_add(j, "user", json_object_new_string(o->pos[1]));
        json_object_object_add(j, "released", json_object_new_boolean(n > 0));
        json_object_object_add(j, "seat_released", json_object_new_boolean(n == 2));
        print_json(j);
    } else if (n == 2) {
        printf("released the floating seat of %s in pool %s\n", o->pos[1], o->pos[0]);
    } else if (n == 1) {
        printf("closed session of %s in pool %s; the seat stays with the user's other sessions\n",
               o->pos[1], o->pos[0]);
    } else {
        printf("%s held nothing in pool %s\n", o->pos[1], o->pos[0]);
    }
    return EX_OK;
}

/* ---- pools -------------------------------------------------------------- */

static void parse_gk(const char *opt, const char *arg, sg_group_k *v, int *n)
{
    const char *eq = strrchr(arg, '=');
    if (eq == NULL || eq == arg)
        die_usage("%s takes GROUP=K, not '%s'", opt, arg);
    if (*n >= SG_LIST_MAX)
        die_usage("too many %s options (at most %d)", opt, SG_LIST_MAX);
    size_t gl = (size_t)(eq - arg);
    if (gl > SG_IDENT_MAX)
        die_usage("%s: group name too long", opt);
    memcpy(v[*n].group, arg, gl);
    v[*n].group[gl] = '\0';
    char e[SG_ERR_MAX];
    if (sg_valid_group(v[*n].group, e, sizeof(e)) != 0)
        die_usage("%s: %s", opt, e);
    if (sg_parse_long(eq + 1, 0, 1000000, &v[*n].k) != 0)
        die_usage("%s: '%s' is not a count", opt, eq + 1);
    (*n)++;
}

static int cmd_pool_set(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    snprintf(o->pool.name, sizeof(o->pool.name), "%s", o->pos[0]);
    if (strlen(o->pos[0]) > SG_POOL_MAX || sg_valid_name(o->pos[0], err, sizeof(err)) != 0)
        die_usage("pool: %s", err);
    sg_pool_outcome out;
    int rc = sg_pool_set(c, &o->pool, "cli", &out, err, sizeof(err));
    if (rc != SG_OK)
        return report_err(rc, err);
    sg_pool_info pi;
    rc = sg_pool_get(c, o->pos[0], &pi, err, sizeof(err));
    if (rc != SG_OK) {
        sg_pool_outcome_free(&out);
        return report_err(rc, err);
    }
    if (json_out) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "pool", json_object_new_string(pi.name));
        json_object_object_add(j, "named", json_object_new_int64(pi.named));
        json_object_object_add(j, "floating", json_object_new_int64(pi.floating));
        json_object_object_add(j, "epoch", json_object_new_int64(pi.epoch));
        json_object_object_add(j, "created", json_object_new_boolean(out.created));
        json_object *rv = json_object_new_array(), *ua = json_object_new_array();
        for (size_t i = 0; i < out.nrevoked; i++)
            json_object_array_add(rv, json_object_new_string(out.revoked[i]));
        for (size_t i = 0; i < out.nunassigned; i++)
            json_object_array_add(ua, json_object_new_string(out.unassigned[i]));
        json_object_object_add(j, "revoked", rv);
        json_object_object_add(j, "unassigned", ua);
        print_json(j);
    } else {
        printf("pool %s: %ld named, %ld floating seats, idle timeout %lds, longest lease %lds\n",
               pi.name, pi.named, pi.floating, pi.idle_s, pi.max_lease_s);
        for (size_t i = 0; i < out.nrevoked; i++)
            printf("  floating seat of %s taken back (pool_shrunk)\n", out.revoked[i]);
        for (size_t i = 0; i < out.nunassigned; i++)
            printf("  named seat of %s taken back (pool_shrunk, least recently used)\n",
                   out.unassigned[i]);
    }
    sg_pool_outcome_free(&out);
    return EX_OK;
}

static json_object *pool_json(const sg_pool_info *p)
{
    json_object *j = json_object_new_object();
    json_object_object_add(j, "pool", json_object_new_string(p->name));
    json_object_object_add(j, "named", json_object_new_int64(p->named));
    json_object_object_add(j, "assigned", json_object_new_int64(p->assigned));
    json_object_object_add(j, "floating", json_object_new_int64(p->floating));
    json_object_object_add(j, "capacity", json_object_new_int64(p->capacity));
    json_object_object_add(j, "in_use", json_object_new_int64(p->in_use));
    json_object_object_add(j, "sessions", json_object_new_int64(p->sessions));
    json_object_object_add(j, "idle_timeout", json_object_new_int64(p->idle_s));
    json_object_object_add(j, "max_lease", json_object_new_int64(p->max_lease_s));
    json_object_object_add(j, "audit_retention", json_object_new_int64(p->audit_retention_s));
    json_object_object_add(j, "deny_fold", json_object_new_int64(p->deny_fold_s));
    json_object_object_add(j, "usage_bucket", json_object_new_int64(p->usage_bucket_s));
    json_object_object_add(j, "usage_retention", json_object_new_int64(p->usage_retention_s));
    if (p->test_clock_ms)
        json_object_object_add(j, "test_clock", json_object_new_int64(p->test_clock_ms));
    json_object_object_add(j, "overdraft_pct", json_object_new_int64(p->overdraft_pct));
    json_object_object_add(j, "mux_limit", json_object_new_int64(p->mux_limit));
    json_object_object_add(j, "mux_window", json_object_new_int64(p->mux_window_s));
    json_object_object_add(j, "features", json_object_new_string(p->features));
    json_object_object_add(j, "reserve", json_object_new_string(p->reserve));
    json_object_object_add(j, "cap", json_object_new_string(p->cap));
    json_object_object_add(j, "include", json_object_new_string(p->include));
    json_object_object_add(j, "exclude", json_object_new_string(p->exclude));
    json_object_object_add(j, "epoch", json_object_new_int64(p->epoch));
    return j;
}

static void pool_table_header(void)
{
    printf("%-20s %9s %13s %6s %9s  %s\n", "POOL", "NAMED", "FLOATING", "IDLE", "OVERDRAFT",
           "FEATURES");
}

static void pool_table_row(const sg_pool_info *p)
{
    char named[32], fl[32], od[16];
    snprintf(named, sizeof(named), "%ld/%ld", p->assigned, p->named);
    snprintf(fl, sizeof(fl), "%ld/%ld", p->in_use, p->floating);
    snprintf(od, sizeof(od), "%ld%%", p->overdraft_pct);
    printf("%-20s %9s %13s %5lds %9s  %s\n", p->name, named, fl, p->idle_s, od,
           p->features[0] ? p->features : "-");
}

static int cmd_pool_show(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    sg_pool_info pi;
    if (o->npos == 1) {
        int rc = sg_pool_get(c, o->pos[0], &pi, err, sizeof(err));
        if (rc != SG_OK)
            return report_err(rc, err);
        if (json_out) {
            print_json(pool_json(&pi));
            return EX_OK;
        }
        printf("pool:           %s\n", pi.name);
        printf("named seats:    %ld bought, %ld assigned\n", pi.named, pi.assigned);
        printf("floating seats: %ld bought, %ld in use", pi.floating, pi.in_use);
        if (pi.overdraft_pct)
            printf(", overdraft %ld%% (capacity %ld)", pi.overdraft_pct, pi.capacity);
        printf("\nidle timeout:   %lds\n", pi.idle_s);
        printf("longest lease:  %lds\n", pi.max_lease_s);
        printf("audit:          kept %lds, repeated denials folded per %lds\n",
               pi.audit_retention_s, pi.deny_fold_s);
        if (pi.usage_bucket_s)
            printf("usage records:  per %lds, kept %lds\n", pi.usage_bucket_s,
                   pi.usage_retention_s);
        else
            printf("usage records:  off\n");
        if (pi.test_clock_ms) {
            char tc[40];
            sg_fmt_rfc3339(pi.test_clock_ms, tc, sizeof(tc));
            printf("TEST CLOCK:     %s (the pool's time is frozen: tests only)\n", tc);
        }
        printf("features:       %s\n", pi.features[0] ? pi.features : "-");
        printf("include:        %s\n", pi.include[0] ? pi.include : "-");
        printf("exclude:        %s\n", pi.exclude[0] ? pi.exclude : "-");
        printf("reserve:        %s\n", pi.reserve[0] ? pi.reserve : "-");
        printf("cap:            %s\n", pi.cap[0] ? pi.cap : "-");
        if (pi.mux_limit)
            printf("multiplexing:   at most %ld distinct users per service account per %lds\n",
                   pi.mux_limit, pi.mux_window_s);
        else
            printf("multiplexing:   measured over %lds, not limited\n", pi.mux_window_s);
        printf("sessions:       %ld live\n", pi.sessions);
        return EX_OK;
    }
    char **names;
    size_t n;
    int rc = sg_pool_list(c, &names, &n, err, sizeof(err));
    if (rc != SG_OK)
        return report_err(rc, err);
    json_object *arr = json_out ? json_object_new_array() : NULL;
    if (!json_out)
        pool_table_header();
    for (size_t i = 0; i < n; i++) {
        rc = sg_pool_get(c, names[i], &pi, err, sizeof(err));
        if (rc == SG_EINPUT)
            continue; /* deleted meanwhile */
        if (rc != SG_OK) {
            sg_strv_free(names, n);
            if (arr)
                json_object_put(arr);
            return report_err(rc, err);
        }
        if (arr)
            json_object_array_add(arr, pool_json(&pi));
        else
            pool_table_row(&pi);
    }
    sg_strv_free(names, n);
    if (arr) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "pools", arr);
        print_json(j);
    }
    return EX_OK;
}

static int cmd_pool_delete(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    int rc = sg_pool_delete(c, o->pos[0], "cli", err, sizeof(err));
    if (rc != SG_OK)
        return report_err(rc, err);
    if (json_out) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "pool", json_object_new_string(o->pos[0]));
        json_object_object_add(j, "deleted", json_object_new_boolean(1));
        print_json(j);
    } else {
        printf("deleted pool %s\n", o->pos[0]);
    }
    return EX_OK;
}

/* Users from --from FILE|- (sg_user_list_parse: one a line), or exit 2. */
static char **users_from(const char *path, size_t *n)
{
    char err[SG_ERR_MAX];
    size_t len;
    char *buf = read_all(path, &len, err, sizeof(err));
    if (buf == NULL)
        die_usage("--from %s", err);
    char **v;
    int rc = sg_user_list_parse(buf, len, &v, n, err, sizeof(err));
    free(buf);
    if (rc != 0)
        die_usage("--from %s%s%s", path, strncmp(err, "line ", 5) == 0 ? ", " : ": ", err);
    return v; /* freed at exit */
}

static int do_assign(opts_t *o, sg_conn *c, int assign)
{
    char err[SG_ERR_MAX];
    const char **users = (const char **)o->pos + 1;
    size_t n = (size_t)o->npos - 1;
    if (o->from) {
        if (n)
            die_usage("give users as arguments or with --from, not both");
        users = (const char **)o->users;
        n = o->nusers;
    } else if (n == 0) {
        die_usage("usage: seatctl %s POOL USER... | --from FILE", assign ? "assign" : "unassign");
    }
    long converted = 0;
    int rc = sg_assign(c, o->pos[0], assign, users, n, "cli", &converted, err, sizeof(err));
    if (rc != SG_OK)
        return report_err(rc, err);
    if (json_out) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "pool", json_object_new_string(o->pos[0]));
        json_object *u = json_object_new_array();
        for (size_t i = 0; i < n; i++)
            json_object_array_add(u, json_object_new_string(users[i]));
        json_object_object_add(j, assign ? "assigned" : "unassigned", u);
        json_object_object_add(j, "floating_returned", json_object_new_int64(converted));
        print_json(j);
    } else {
        printf("%s %zu user%s %s pool %s\n", assign ? "assigned" : "unassigned", n,
               n == 1 ? "" : "s", assign ? "to" : "from", o->pos[0]);
        if (converted)
            printf("  %ld floating seat%s went back to the pool (now named)\n", converted,
                   converted == 1 ? "" : "s");
    }
    return EX_OK;
}

static int cmd_assign(opts_t *o, sg_conn *c)
{
    return do_assign(o, c, 1);
}

static int cmd_unassign(opts_t *o, sg_conn *c)
{
    return do_assign(o, c, 0);
}

static int cmd_user_set(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    sg_user_change ch = {o->groups, o->service, o->disabled};
    int rc = sg_user_set(c, o->pos[0], &ch, "cli", err, sizeof(err));
    if (rc != SG_OK)
        return report_err(rc, err);
    if (json_out) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "user", json_object_new_string(o->pos[0]));
        json_object_object_add(j, "updated", json_object_new_boolean(1));
        print_json(j);
    } else {
        printf("updated user %s\n", o->pos[0]);
    }
    return EX_OK;
}

/* ---- status and sessions --------------------------------------------------- */

static int status_pool(sg_conn *c, const char *pool, json_object *arr)
{
    char err[SG_ERR_MAX];
    sg_pool_info pi;
    int rc = sg_pool_get(c, pool, &pi, err, sizeof(err));
    if (rc != SG_OK)
        return report_err(rc, err);
    sg_holder *h;
    size_t n;
    rc = sg_holders(c, pool, &h, &n, err, sizeof(err));
    if (rc != SG_OK)
        return report_err(rc, err);
    if (arr) {
        json_object *j = pool_json(&pi);
        json_object *hs = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
            json_object *x = json_object_new_object();
            json_object_object_add(x, "user", json_object_new_string(h[i].user));
            json_object_object_add(x, "seat", json_object_new_string(h[i].kind));
            json_object_object_add(x, "expires_ms", json_object_new_int64(h[i].expires_ms));
            json_object_object_add(x, "last_used_ms", json_object_new_int64(h[i].last_used_ms));
            json_object_array_add(hs, x);
        }
        json_object_object_add(j, "holders", hs);
        json_object_array_add(arr, j);
    } else {
        printf("pool %s: named %ld/%ld assigned, floating %ld/%ld in use", pi.name, pi.assigned,
               pi.named, pi.in_use, pi.floating);
        if (pi.capacity > pi.floating)
            printf(" (capacity %ld with overdraft)", pi.capacity);
        printf("\n");
        if (n) {
            printf("  %-32s %-9s %-21s %s\n", "USER", "SEAT", "LEASE EXPIRES", "LAST USED");
            for (size_t i = 0; i < n; i++) {
                char e[40], l[40];
                fmt_time(h[i].expires_ms, e, sizeof(e));
                fmt_time(h[i].last_used_ms, l, sizeof(l));
                printf("  %-32s %-9s %-21s %s\n", h[i].user, h[i].kind, e, l);
            }
        }
    }
    free(h);
    return EX_OK;
}

static int cmd_status(opts_t *o, sg_conn *c)
{
    json_object *arr = json_out ? json_object_new_array() : NULL;
    int rc = EX_OK;
    if (o->npos == 1) {
        rc = status_pool(c, o->pos[0], arr);
    } else {
        char **names, err[SG_ERR_MAX];
        size_t n;
        int r = sg_pool_list(c, &names, &n, err, sizeof(err));
        if (r != SG_OK) {
            if (arr)
                json_object_put(arr);
            return report_err(r, err);
        }
        for (size_t i = 0; i < n && rc == EX_OK; i++)
            rc = status_pool(c, names[i], arr);
        sg_strv_free(names, n);
    }
    if (arr) {
        if (rc == EX_OK) {
            json_object *j = json_object_new_object();
            json_object_object_add(j, "pools", arr);
            print_json(j);
        } else {
            json_object_put(arr);
        }
    }
    return rc;
}

static int cmd_sessions(opts_t *o, sg_conn *c)
{
    char err[SG_ERR_MAX];
    sg_session_info *s;
    size_t n;
    int rc = sg_sessions(c, o->pos[0], &s, &n, err, sizeof(err));
    if (rc != SG_OK)
        return report_err(rc, err);
    if (json_out) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
            json_object *x = json_object_new_object();
            json_object_object_add(x, "user", json_object_new_string(s[i].account));
            json_object_object_add(x, "holder", json_object_new_string(s[i].user));
            json_object_object_add(x, "session", json_object_new_string(s[i].session));
            json_object_object_add(x, "via", json_object_new_string(s[i].via));
            json_object_object_add(x, "host", json_object_new_string(s[i].host));
            json_object_object_add(x, "pid", json_object_new_int64(s[i].pid));
            json_object_object_add(x, "on_behalf_of", json_object_new_string(s[i].obo));
            json_object_object_add(x, "client", json_object_new_string(s[i].client));
            json_object_object_add(x, "started_ms", json_object_new_int64(s[i].started_ms));
            json_object_object_add(x, "expires_ms", json_object_new_int64(s[i].expires_ms));
            json_object_object_add(x, "lease", json_object_new_int64(s[i].ttl_s));
            json_object_array_add(arr, x);
        }
        json_object *j = json_object_new_object();
        json_object_object_add(j, "pool", json_object_new_string(o->pos[0]));
        json_object_object_add(j, "sessions", arr);
        print_json(j);
    } else {
        printf("%-24s %-20s %-20s %-6s %-20s %8s %-21s %s\n", "USER", "ON BEHALF OF",
               "SESSION", "VIA", "HOST", "PID", "STARTED", "EXPIRES");
        for (size_t i = 0; i < n; i++) {
            char st[40], ex[40];
            fmt_time(s[i].started_ms, st, sizeof(st));
            fmt_time(s[i].expires_ms, ex, sizeof(ex));
            printf("%-24s %-20s %-20s %-6s %-20s %8ld %-21s %s\n", s[i].account,
                   s[i].obo[0] ? s[i].obo : "-", s[i].session, s[i].via, s[i].host, s[i].pid, st,
                   ex);
        }
    }
    free(s);
    return EX_OK;
}

struct reap_out {
    json_object *reaped, *renewed;
};

static void reap_event(void *ud, const sg_host_session *s, int renewed)
{
    struct reap_out *ro = ud;
    if (ro->reaped) {
        json_object *x = json_object_new_object();
        json_object_object_add(x, "pool", json_object_new_string(s->pool));
        json_object_object_add(x, "user", json_object_new_string(s->user));
        json_object_object_add(x, "session", json_object_new_string(s->session));
        json_object_object_add(x, "pid", json_object_new_int64(s->pid));
        json_object_array_add(renewed ? ro->renewed : ro->reaped, x);
    } else if (renewed) {
        printf("renewed %s session %s (pid %ld alive) in pool %s\n", s->user, s->session, s->pid,
               s->pool);
    } else {
        printf("reaped %s session %s (pid %ld gone or reused) in pool %s\n", s->user, s->session,
               s->pid, s->pool);
    }
}

static int cmd_reap(opts_t *o, sg_conn *c)
{
    char host[256], hid[80], err[SG_ERR_MAX];
    sg_hostname(host, sizeof(host));
    if (sg_host_id(o->cfg.host_id, hid, sizeof(hid), err, sizeof(err)) != 0)
        die_usage("%s", err);
    struct reap_out ro = {NULL, NULL};
    if (json_out) {
        ro.reaped = json_object_new_array();
        ro.renewed = json_object_new_array();
    }
    long reaped, renewed;
    int rc = sg_reap(c, hid, host, reap_event, &ro, &reaped, &renewed, err, sizeof(err));
    if (rc != SG_OK) {
        if (ro.reaped) {
            json_object_put(ro.reaped);
            json_object_put(ro.renewed);
        }
        return report_err(rc, err);
    }
    if (ro.reaped) {
        json_object *j = json_object_new_object();
        json_object_object_add(j, "host", json_object_new_string(host));
        json_object_object_add(j, "host_id", json_object_new_string(hid));
        json_object_object_add(j, "reaped", ro.reaped);
        json_object_object_add(j, "renewed", ro.renewed);
        print_json(j);
    } else {
        printf("reaped %ld session%s, renewed %ld on %s (%s)\n", reaped, reaped == 1 ? "" : "s",
               renewed, host, hid);
    }
    return EX_OK;
}

/* ---- command table ------------------------------------------------------- */

static const int a_none[] = {0};
static const int a_pool_set[] = {O_NAMED,      O_FLOATING,   O_IDLE,        O_FEATURES,
                                 O_RESERVE,    O_CAP,        O_INCLUDE,     O_EXCLUDE,
                                 O_OVERDRAFT,  O_MUX_LIMIT,  O_MUX_WINDOW,  O_MAX_LEASE,
                                 O_AUDIT_RETENTION, O_DENY_FOLD, O_USAGE_BUCKET,
                                 O_USAGE_RETENTION, O_TEST_CLOCK, O_NO_RESERVE, O_NO_CAP,
                                 O_NO_INCLUDE, O_NO_EXCLUDE, O_NO_FEATURE,  0};
static const int a_user_set[] = {O_GROUPS, O_SERVICE, O_NOT_SERVICE, O_DISABLED, O_ENABLED, 0};
static const int a_check[] = {O_FEATURE, O_OBO, O_SESSION, 0};
static const int a_acquire[] = {O_FEATURE, O_OBO, O_SESSION, O_TTL, 0};
static const int a_release[] = {O_SESSION, 0};
static const int a_assign[] = {O_FROM, 0};
static const int a_audit[] = {O_POOL, O_USER, O_SINCE, O_UNTIL, O_FORMAT, O_FOLLOW, 0};
static const int a_doctor[] = {O_FIX, 0};
static const int a_sync[] = {O_FROM, O_MAP, O_FORMAT, O_DRY_RUN, O_FULL, 0};
static const int a_report[] = {O_POOL,  O_SINCE,        O_UNTIL,          O_FORMAT,
                               O_OUT,   O_PRICE_NAMED,  O_PRICE_FLOATING, O_DENIAL_BUDGET, 0};

static const struct cmd cmds[] = {
    {"pool", "set", 1, 1, a_pool_set, cmd_pool_set,
     "pool set POOL [--named N] [--floating M] [--idle-timeout DURATION] [--max-lease DURATION]\n"
     "                [--features F1,F2] [--no-feature F]... [--reserve GROUP=K]...\n"
     "                [--no-reserve GROUP]... [--cap GROUP=K]... [--no-cap GROUP]...\n"
     "                [--include GROUP]... [--no-include GROUP]... [--exclude GROUP]...\n"
     "                [--no-exclude GROUP]... [--overdraft PCT] [--mux-limit N]\n"
     "                [--mux-window DURATION] [--audit-retention DURATION] [--deny-fold DURATION]\n"
     "                [--usage-bucket DURATION] [--usage-retention DURATION]\n"
     "                [--test-clock TIME|off]",
     "Create a pool or change the settings given; the others keep their values.\n"
     "--reserve and --cap set one group's rule (GROUP= or --no-reserve/--no-cap GROUP\n"
     "removes it; a reservation of 0 is removed too, a cap of 0 is a cap). --features,\n"
     "--include and --exclude replace their list (an empty value clears it); --no-feature,\n"
     "--no-include and --no-exclude remove one item. --max-lease caps every lease a client\n"
     "asks for (default 12h). A shrink is enforced at once: lowering --floating below the\n"
     "seats held takes back the floating seats whose leases end soonest (audit revoke),\n"
     "lowering --named below the users assigned takes back the named seats least recently\n"
     "used (audit unassign); both with reason pool_shrunk, and listed in the output.\n"
     "--audit-retention (default 400d) keeps audit entries by time; --deny-fold\n"
     "(default 60s, 0 = off) folds repeated denials of one user for one reason.\n"
     "--usage-bucket (default 5m, must divide a day; off records nothing) and\n"
     "--usage-retention (default 400d) shape the usage records seatctl report reads.\n"
     "--test-clock, for tests only, freezes the pool's time at TIME (RFC 3339 or @ms);\n"
     "off restores it."},
    {"pool", "show", 0, 1, a_none, cmd_pool_show, "pool show [POOL] [--json]",
     "Show one pool's settings, or a table of every pool."},
    {"pool", "delete", 1, 1, a_none, cmd_pool_delete, "pool delete POOL",
     "Delete a pool, its assignments and every seat in it. Its audit stream stays."},
    {"assign", NULL, 1, 100000000, a_assign, cmd_assign, "assign POOL USER... | --from FILE|-",
     "Give named seats to users (any number; --from reads one user a line): all of them,\n"
     "or none if the named seats bought would be exceeded (exit 1). A user who held a\n"
     "floating seat gives it back to the pool (audited as convert)."},
    {"unassign", NULL, 1, 100000000, a_assign, cmd_unassign,
     "unassign POOL USER... | --from FILE|-",
     "Take named seats back. Takes effect on every host within the revocation bound."},
    {"user", "set", 1, 1, a_user_set, cmd_user_set,
     "user set USER [--groups G1,G2] [--service-account|--no-service-account] "
     "[--disabled|--enabled]",
     "Set a user's groups, service-account flag or disabled flag. Every pool whose rules\n"
     "need it sees the change at once; a user disabled or newly excluded loses a floating\n"
     "seat at once."},
    {"user", "import", 0, 1, a_none, cmd_user_import, "user import [FILE|-]",
     "Load user records from CSV with the header user,groups,disabled,service_account\n"
     "(groups separated by ';', flags 0 or 1). Each row replaces the user's record. A\n"
     "malformed file changes nothing; the error names the line and the field."},
    {"user", "show", 1, 1, a_none, cmd_user_show, "user show USER [--json]",
     "A user's record and, for every pool, the seat held, sessions and last use."},
    {"check", NULL, 2, 2, a_check, cmd_check,
     "check POOL USER [--feature F] [--on-behalf-of U] [--session ID] [--json]",
     "Explain the decision for USER without taking or renewing anything.\n"
     "Exit 0 if it would be granted, 1 if denied."},
    {"acquire", NULL, 2, 2, a_acquire, cmd_acquire,
     "acquire POOL USER [--session ID] [--feature F] [--on-behalf-of U] [--lease DURATION] "
     "[--json]",
     "Take (or renew) USER's seat, as nginx or PAM would. Exit 0 granted, 1 denied.\n"
     "--lease asks for a lease length; the pool's --max-lease caps it."},
    {"release", NULL, 2, 2, a_release, cmd_release, "release POOL USER [--session ID]",
     "Force-release USER's seat (every session), or one session: the seat stays while\n"
     "the user has other live sessions, and lasts as long as the longest of them."},
    {"status", NULL, 0, 1, a_none, cmd_status, "status [POOL] [--json]",
     "Live seats: who holds named and floating seats, lease expiry and last use."},
    {"sessions", NULL, 1, 1, a_none, cmd_sessions, "sessions POOL [--json]",
     "Live sessions of a pool: user, on whose behalf, via, host and process id."},
    {"reap", NULL, 0, 0, a_none, cmd_reap, "reap [--json]",
     "Release the PAM sessions of this host (host_id, else /etc/machine-id) whose process\n"
     "is gone or is now another process, and renew those whose process lives and whose\n"
     "lease is past half its length. Reads only this host's session index. Run it from\n"
     "cron or a timer every minute on every PAM host."},
    {"doctor", NULL, 0, 0, a_doctor, cmd_doctor, "doctor [--fix] [--json]",
     "Find drift between the user registry and the pools' copies, the pools index, the\n"
     "seat bookkeeping and the host session indexes; --fix repairs it (safe to re-run).\n"
     "Exit 0 when nothing was found (or all was fixed), 1 when drift remains."},
    {"audit", NULL, 0, 0, a_audit, cmd_audit,
     "audit [--pool P] [--user U] [--since T] [--until T] [--format jsonl|csv] [--follow]",
     "Export the audit log in time order: JSON lines (default) or CSV with a header.\n"
     "T is RFC 3339 (2026-11-29T10:00:00Z), a date, or a duration ago (2h, 7d).\n"
     "--follow prints new entries as they come (for a SIEM); stop it with a signal."},
    {"sync", NULL, 0, 0, a_sync, cmd_sync,
     "sync --from FILE --map FILE [--format csv|scim] [--dry-run] [--full] [--json]",
     "Apply an HR export (CSV, columns named in the map) or SCIM 2.0 User resources\n"
     "(a ListResponse, or one resource a line) through a map file\n"
     "(docs/sync.md): each person's user record (groups, disabled, service account)\n"
     "and named seats, as the map's rules say. The plan is printed first; a malformed\n"
     "file or map, an unknown column, or a plan that would assign more named seats than\n"
     "a pool has bought applies nothing (exit 2, or 1 for the seats). --dry-run stops\n"
     "after the plan. --full also disables the people the sync managed before who are\n"
     "absent from the export. A second run of the same export changes nothing."},
    {"explain", NULL, 1, 1, a_none, cmd_explain, "explain USER [--json]",
     "Why this person has what they have: the user record and which sync (when, by\n"
     "whom, which rules of the map) set it, the seats held and which rules gave the\n"
     "named ones, and the last events of the audit log about the person."},
    {"report", NULL, 0, 0, a_report, cmd_report,
     "report [--pool P] [--since T] [--until T] [--format text|json|html] [--out FILE]\n"
     "                [--price-named X] [--price-floating Y] [--denial-budget PCT]",
     "Usage of every pool (or P) over [T, T) (default: the last 30 days): floating seats\n"
     "in use by day (peak, p95, mean), named seats unused for 30 days, denials by reason\n"
     "and hour, overdraft days, the free tier, service accounts acting for more people\n"
     "than --mux-limit or without an on-behalf-of id; and the cheapest mix of named and\n"
     "floating seats that would have served it with at most PCT (default 1) percent of\n"
     "the time denied, at the prices given (default 1 and 2: relative units). --format\n"
     "html writes one self-contained page (charts inline) for people without a terminal."},
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage_all(FILE *f)
{
    fprintf(f, "usage: seatctl [--redis URL] [--timeout MS] [--config PATH] [--json] COMMAND ...\n\n"
               "commands:\n");
    for (size_t i = 0; i < NCMDS; i++)
        fprintf(f, "  seatctl %s\n", cmds[i].usage);
    fprintf(f, "\nRedis: --redis URL, else $SEATGATE_REDIS, else redis= in the config file\n"
               "(default %s), else %s.\n"
               "Exit codes: 0 ok/granted, 1 denied, 2 usage or input error (nothing changed),\n"
               "3 Redis unreachable or failed.\n"
               "seatctl COMMAND --help explains one command; man seatctl has the rest.\n",
               SG_DEFAULT_CONF, SG_DEFAULT_REDIS);
}

static void cfg_log(void *ud, sg_log_level lvl, const char *fmt, ...)
{
    (void)ud;
    (void)lvl;
    va_list ap;
    va_start(ap, fmt);
    fputs("seatctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int allowed(const struct cmd *c, int opt)
{
    for (const int *a = c->allowed; *a; a++)
        if (*a == opt)
            return 1;
    return 0;
}

static void append_list(char *dst, size_t len, const char *v)
{
    size_t n = strlen(dst);
    if (n + strlen(v) + 2 > len)
        die_usage("list too long");
    snprintf(dst + n, len - n, "%s%s", n ? "," : "", v);
}

int main(int argc, char **argv)
{
    static opts_t o;
    o.pos = calloc((size_t)argc + 1, sizeof(*o.pos));
    if (o.pos == NULL)
        die_usage("out of memory");
    o.timeout_ms = -1;
    o.service = -1;
    o.disabled = -1;
    o.pool.idle_s = SG_DEFAULT_IDLE_S;
    o.price_named = o.price_floating = o.budget_pct = -1;
    opterr = 0;
    int ch, longidx;
    while ((ch = getopt_long(argc, argv, "-h", long_opts, &longidx)) != -1) {
        if (ch == 1) {
            o.pos[o.npos++] = optarg;
            continue;
        }
        if (ch == 'h') {
            o.help = 1;
            continue;
        }
        if (ch == '?' || ch == ':') {
            if (optopt)
                die_usage("unknown option or missing value: -%c", optopt);
            die_usage("unknown option or missing value: %s", argv[optind - 1]);
        }
        o.seen[ch - 1000]++;
        long v;
        switch (ch) {
        case O_REDIS:
            o.redis = optarg;
            break;
        case O_TIMEOUT:
            if (sg_parse_long(optarg, 1, 60000, &v) != 0)
                die_usage("--timeout takes milliseconds 1..60000, not '%s'", optarg);
            o.timeout_ms = (int)v;
            break;
        case O_CONFIG:
            o.config = optarg;
            break;
        case O_JSON:
            o.json = 1;
            break;
        case O_HELP:
            o.help = 1;
            break;
        case O_VERSION:
            printf("seatctl %s\n", SG_VERSION);
            return EX_OK;
        case O_NAMED:
        case O_FLOATING:
        case O_OVERDRAFT:
        case O_MUX_LIMIT:
            if (sg_parse_long(optarg, 0, ch == O_OVERDRAFT ? 1000 : 10000000, &v) != 0)
                die_usage("--%s takes a non-negative number, not '%s'", long_opts[longidx].name,
                          optarg);
            if (ch == O_NAMED) {
                o.pool.named = v;
                o.pool.set_mask |= SG_PSET_NAMED;
            } else if (ch == O_FLOATING) {
                o.pool.floating = v;
                o.pool.set_mask |= SG_PSET_FLOATING;
            } else if (ch == O_OVERDRAFT) {
                o.pool.overdraft_pct = v;
                o.pool.set_mask |= SG_PSET_OVERDRAFT;
            } else {
                o.pool.mux_limit = v;
                o.pool.set_mask |= SG_PSET_MUX_LIMIT;
            }
            break;
        case O_AUDIT_RETENTION:
        case O_DENY_FOLD:
        case O_USAGE_BUCKET:
        case O_USAGE_RETENTION: {
            /* durations of a pool: where each goes, and whether 0 is allowed */
            static const struct {
                int opt;
                size_t off;
                unsigned mask;
                int zero_ok;
            } durs[] = {
                {O_AUDIT_RETENTION, offsetof(sg_pool, audit_retention_s),
                 SG_PSET_AUDIT_RETENTION, 0},
                {O_DENY_FOLD, offsetof(sg_pool, deny_fold_s), SG_PSET_DENY_FOLD, 1},
                {O_USAGE_BUCKET, offsetof(sg_pool, usage_bucket_s), SG_PSET_USAGE_BUCKET, 1},
                {O_USAGE_RETENTION, offsetof(sg_pool, usage_retention_s),
                 SG_PSET_USAGE_RETENTION, 0},
            };
            size_t k = 0;
            while (durs[k].opt != ch)
                k++;
            v = ch == O_USAGE_BUCKET && strcmp(optarg, "off") == 0
                    ? 0
                    : sg_parse_duration_upto(optarg, 3650L * 86400);
            if (v < 0 || (v == 0 && !durs[k].zero_ok))
                die_usage("--%s takes a duration like 90s, 15m, 2h or 400d, not '%s'",
                          long_opts[longidx].name, optarg);
            *(long *)((char *)&o.pool + durs[k].off) = v;
            o.pool.set_mask |= durs[k].mask;
            break;
        }
        case O_TEST_CLOCK: {
            long long t = 0;
            if (strcmp(optarg, "off") != 0 && (sg_parse_time(optarg, 0, &t) != 0 || t <= 0))
                die_usage("--test-clock takes an RFC 3339 time, epoch ms or off, not '%s'", optarg);
            o.pool.test_clock_ms = t;
            o.pool.set_mask |= SG_PSET_TEST_CLOCK;
            break;
        }
        case O_NO_RESERVE:
        case O_NO_CAP:
        case O_NO_INCLUDE:
        case O_NO_EXCLUDE:
        case O_NO_FEATURE: {
            char e[SG_ERR_MAX];
            if ((ch == O_NO_FEATURE ? sg_valid_name(optarg, e, sizeof(e))
                                    : sg_valid_group(optarg, e, sizeof(e))) != 0)
                die_usage("--%s: %s", long_opts[longidx].name, e);
            char *dst = ch == O_NO_RESERVE   ? o.pool.reserve_del
                        : ch == O_NO_CAP     ? o.pool.cap_del
                        : ch == O_NO_INCLUDE ? o.pool.include_del
                        : ch == O_NO_EXCLUDE ? o.pool.exclude_del
                                             : o.pool.features_del;
            append_list(dst, sizeof(o.pool.reserve_del), optarg);
            o.pool.set_mask |= ch == O_NO_RESERVE   ? SG_PSET_RESERVE
                               : ch == O_NO_CAP     ? SG_PSET_CAP
                               : ch == O_NO_INCLUDE ? SG_PSET_INCLUDE_DEL
                               : ch == O_NO_EXCLUDE ? SG_PSET_EXCLUDE_DEL
                                                    : SG_PSET_FEATURES_DEL;
            break;
        }
        case O_FROM:
            o.from = optarg;
            break;
        case O_POOL:
            o.pool_filter = optarg;
            break;
        case O_USER:
            o.user_filter = optarg;
            break;
        case O_SINCE:
            o.since = optarg;
            break;
        case O_UNTIL:
            o.until = optarg;
            break;
        case O_FORMAT:
            o.format = optarg;
            break;
        case O_OUT:
            o.out = optarg;
            break;
        case O_PRICE_NAMED:
        case O_PRICE_FLOATING:
        case O_DENIAL_BUDGET: {
            char *end;
            double d = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !(d >= 0) || d > 1e9 ||
                (ch == O_DENIAL_BUDGET && d >= 100))
                die_usage("--%s takes a number%s, not '%s'", long_opts[longidx].name,
                          ch == O_DENIAL_BUDGET ? " of percent (0 to under 100)" : " >= 0",
                          optarg);
            if (ch == O_PRICE_NAMED)
                o.price_named = d;
            else if (ch == O_PRICE_FLOATING)
                o.price_floating = d;
            else
                o.budget_pct = d;
            break;
        }
        case O_FOLLOW:
            o.follow = 1;
            break;
        case O_MAP:
            o.map = optarg;
            break;
        case O_DRY_RUN:
            o.dry_run = 1;
            break;
        case O_FULL:
            o.full = 1;
            break;
        case O_FIX:
            o.fix = 1;
            break;
        case O_IDLE:
        case O_MUX_WINDOW:
        case O_TTL:
        case O_MAX_LEASE:
            v = sg_parse_duration(optarg);
            if (v <= 0)
                die_usage("--%s takes a duration like 900, 90s, 15m or 2h, not '%s'",
                          long_opts[longidx].name, optarg);
            if (ch == O_IDLE) {
                o.pool.idle_s = v;
                o.pool.set_mask |= SG_PSET_IDLE;
            } else if (ch == O_MUX_WINDOW) {
                o.pool.mux_window_s = v;
                o.pool.set_mask |= SG_PSET_MUX_WINDOW;
            } else if (ch == O_MAX_LEASE) {
                o.pool.max_lease_s = v;
                o.pool.set_mask |= SG_PSET_MAX_LEASE;
            } else {
                o.ttl_s = v;
            }
            break;
        case O_FEATURES:
            snprintf(o.pool.features, sizeof(o.pool.features), "%s", optarg);
            o.pool.set_mask |= SG_PSET_FEATURES;
            break;
        case O_RESERVE:
        case O_CAP: {
            /* GROUP= removes the group's rule */
            size_t l = strlen(optarg);
            if (l > 1 && optarg[l - 1] == '=' && strchr(optarg, '=') == optarg + l - 1) {
                char g[SG_IDENT_MAX + 2], e[SG_ERR_MAX];
                snprintf(g, sizeof(g), "%.*s", (int)(l - 1), optarg);
                if (sg_valid_group(g, e, sizeof(e)) != 0)
                    die_usage("--%s: %s", long_opts[longidx].name, e);
                append_list(ch == O_RESERVE ? o.pool.reserve_del : o.pool.cap_del,
                            sizeof(o.pool.reserve_del), g);
            } else if (ch == O_RESERVE) {
                parse_gk("--reserve", optarg, o.pool.reserve, &o.pool.nreserve);
            } else {
                parse_gk("--cap", optarg, o.pool.cap, &o.pool.ncap);
            }
            o.pool.set_mask |= ch == O_RESERVE ? SG_PSET_RESERVE : SG_PSET_CAP;
            break;
        }
        case O_INCLUDE:
            append_list(o.pool.include, sizeof(o.pool.include), optarg);
            o.pool.set_mask |= SG_PSET_INCLUDE;
            break;
        case O_EXCLUDE:
            append_list(o.pool.exclude, sizeof(o.pool.exclude), optarg);
            o.pool.set_mask |= SG_PSET_EXCLUDE;
            break;
        case O_GROUPS:
            o.groups = optarg;
            break;
        case O_SERVICE:
        case O_NOT_SERVICE:
            if (o.service >= 0)
                die_usage("give --service-account or --no-service-account once");
            o.service = ch == O_SERVICE;
            break;
        case O_DISABLED:
        case O_ENABLED:
            if (o.disabled >= 0)
                die_usage("give --disabled or --enabled once");
            o.disabled = ch == O_DISABLED;
            break;
        case O_FEATURE:
            o.feature = optarg;
            break;
        case O_OBO:
            o.obo = optarg;
            break;
        case O_SESSION:
            o.session = optarg;
            break;
        default:
            die_usage("unknown option");
        }
    }
    /* after "--" every word is an argument, even one that starts with '-' */
    while (optind < argc)
        o.pos[o.npos++] = argv[optind++];
    json_out = o.json;
    if (o.npos == 0) {
        if (o.help) {
            usage_all(stdout);
            return EX_OK;
        }
        usage_all(stderr);
        return EX_USAGE;
    }
    /* find the command */
    const struct cmd *cmd = NULL;
    int words = 0;
    for (size_t i = 0; i < NCMDS; i++) {
        if (strcmp(cmds[i].name, o.pos[0]) != 0)
            continue;
        if (cmds[i].sub == NULL) {
            cmd = &cmds[i];
            words = 1;
            break;
        }
        if (o.npos >= 2 && strcmp(cmds[i].sub, o.pos[1]) == 0) {
            cmd = &cmds[i];
            words = 2;
            break;
        }
    }
    if (cmd == NULL) {
        int known = 0;
        for (size_t i = 0; i < NCMDS; i++)
            known |= strcmp(cmds[i].name, o.pos[0]) == 0;
        if (known && o.help) {
            for (size_t i = 0; i < NCMDS; i++)
                if (strcmp(cmds[i].name, o.pos[0]) == 0)
                    printf("usage: seatctl %s\n", cmds[i].usage);
            return EX_OK;
        }
        if (known)
            die_usage("'%s' needs a subcommand%s%s", o.pos[0], o.npos > 1 ? ", not " : "",
                      o.npos > 1 ? o.pos[1] : "");
        die_usage("unknown command '%s'", o.pos[0]);
    }
    if (o.help) {
        printf("usage: seatctl %s\n\n%s\n", cmd->usage, cmd->help);
        return EX_OK;
    }
    for (int i = 0; i < O_MAX - 1000; i++) {
        int opt = 1000 + i;
        if (!o.seen[i] || opt <= O_VERSION)
            continue;
        if (!allowed(cmd, opt)) {
            const char *name = "?";
            for (const struct option *lo = long_opts; lo->name; lo++)
                if (lo->val == opt)
                    name = lo->name;
            die_usage("option --%s does not apply to '%s%s%s'", name, cmd->name,
                      cmd->sub ? " " : "", cmd->sub ? cmd->sub : "");
        }
        if (o.seen[i] > 1 && opt != O_RESERVE && opt != O_CAP && opt != O_INCLUDE &&
            opt != O_EXCLUDE && opt != O_NO_RESERVE && opt != O_NO_CAP && opt != O_NO_INCLUDE &&
            opt != O_NO_EXCLUDE && opt != O_NO_FEATURE)
            die_usage("option given twice");
    }
    int npos = o.npos - words;
    if (npos < cmd->min_pos || npos > cmd->max_pos)
        die_usage("usage: seatctl %s", cmd->usage);
    memmove(o.pos, o.pos + words, sizeof(o.pos[0]) * (size_t)npos);
    o.npos = npos;
    if (cmd->run == cmd_user_set && o.groups == NULL && o.service < 0 && o.disabled < 0)
        die_usage("user set: nothing to change");
    if (cmd->run == cmd_pool_set && o.pool.set_mask == 0) {
        /* creating with defaults is fine; updating nothing is fine too */
    }

    /* Redis address: --redis, $SEATGATE_REDIS, config file, default */
    sg_config_init(&o.cfg);
    sg_config *cfgp = &o.cfg;
#define cfg (*cfgp)
    const char *cfgpath = o.config ? o.config : getenv("SEATGATE_CONF");
    if (sg_config_read(&cfg, cfgpath ? cfgpath : SG_DEFAULT_CONF, cfgpath == NULL, cfg_log,
                       NULL) != 0)
        return EX_USAGE;
    const char *url = o.redis ? o.redis : getenv("SEATGATE_REDIS");
    if (url == NULL || *url == '\0')
        url = cfg.redis;
    int timeout = o.timeout_ms > 0 ? o.timeout_ms : cfg.timeout_ms;
    sg_redis_url u;
    char err[SG_ERR_MAX];
    if (sg_url_parse(url, &u, err, sizeof(err)) != 0)
        die_usage("%s", err);
    /* files are read and validated before connecting */
    if (cmd->run == cmd_user_import)
        prepare_user_import(&o);
    if ((cmd->run == cmd_assign || cmd->run == cmd_unassign) && o.from)
        o.users = users_from(o.from, &o.nusers);
    sg_conn *c = sg_conn_open(&u, timeout, err, sizeof(err));
    if (c == NULL) {
        if (json_out) {
            json_object *j = json_object_new_object();
            json_object_object_add(j, "result", json_object_new_string("error_backend"));
            json_object_object_add(j, "error", json_object_new_string(err));
            print_json(j);
        }
        fprintf(stderr, "seatctl: %s\n", err);
        return EX_BACKEND;
    }
#undef cfg
    int rc = cmd->run(&o, c);
    sg_conn_close(c);
    free(o.pos);
    return rc;
}
