/* seatctl internals shared by its source files: options, output helpers and
 * the commands each file implements. Presentation only; the rules live in
 * libseatgate. */
#ifndef SEATCTL_H
#define SEATCTL_H

#include "seatgate.h"

#include <json.h>

#define EX_OK 0
#define EX_DENIED 1
#define EX_USAGE 2
#define EX_BACKEND 3

typedef struct {
    const char *redis, *config, *feature, *obo, *session, *groups, *features, *from;
    const char *pool_filter, *user_filter, *since, *until, *format, *out;
    double price_named, price_floating, budget_pct; /* report; < 0: not given */
    const char *map;                                /* sync */
    int dry_run, full;
    int timeout_ms, json, help, service, disabled, follow, fix;
    long ttl_s;
    sg_pool pool;
    sg_config cfg;
    char include[1024], exclude[1024];
    int seen[64];
    char **pos;
    int npos;
    /* input read and validated before connecting (a bad file is exit 2 even
     * with Redis down): user import rows, assign --from users */
    sg_user_row *rows;
    size_t nrows;
    char **users;
    size_t nusers;
} opts_t;

extern int json_out;

void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int report_err(int rc, const char *err);
void print_json(json_object *j);
void fmt_time(long long ms, char *buf, size_t len);
/* Reads a whole file ("-" = stdin) into a malloc'd NUL-terminated buffer. */
char *read_all(const char *path, size_t *len, char *err, size_t errlen);

/* cli/seatctl_users.c */
void prepare_user_import(opts_t *o);
int cmd_user_import(opts_t *o, sg_conn *c);
int cmd_user_show(opts_t *o, sg_conn *c);
int cmd_doctor(opts_t *o, sg_conn *c);
int cmd_explain(opts_t *o, sg_conn *c);
/* cli/seatctl_audit.c */
int cmd_audit(opts_t *o, sg_conn *c);
/* cli/seatctl_report.c */
int cmd_report(opts_t *o, sg_conn *c);
/* cli/seatctl_sync.c */
int cmd_sync(opts_t *o, sg_conn *c);

#endif
