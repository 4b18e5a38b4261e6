/* Private helpers of libseatgate, shared by its own .c files only. */
#ifndef SEATGATE_INTERNAL_H
#define SEATGATE_INTERNAL_H

#include <stddef.h>

/* Format a one-line error into err (if given) and return rc. */
int sg_err_rc(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A growable byte buffer (always NUL-terminated when non-empty). */
typedef struct {
    char *p;
    size_t len, cap;
} sg_buf;
int sg_buf_add(sg_buf *b, const char *s, size_t n); /* 0 ok, -1 out of memory */
int sg_buf_str(sg_buf *b, const char *s);
int sg_buf_fmt(sg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sg_buf_free(sg_buf *b);

/* Run a command; an error reply becomes NULL with err set. */
struct redisReply *sg_cmdv(sg_conn *c, char *err, size_t errlen, int argc, const char **argv);
/* The pool P of a key "sg:{P}:name" (name given); 0, or -1 for another key. */
int sg_key_pool_of(const char *key, const char *name, char *pool, size_t len);
/* Every key matching a SCAN pattern (malloc'd, free with sg_strv_free). */
int sg_scan_keys(sg_conn *c, const char *pattern, char ***out, size_t *n, char *err,
                 size_t errlen);
/* Run a script with nkeys keys and nkv strings of name/value pairs. */
struct redisReply *sg_script_kv(sg_conn *c, sg_script s, const char **keys, int nkeys,
                                const char **kv, int nkv, char *err, size_t errlen);

/* sg_decide and sg_release, with one more command sent in the same write
 * (its reply is dropped): a PAM session's host index entry beside its
 * decision or release. */
int sg_decide_and(sg_conn *c, const sg_request *rq, int xargc, const char **xargv,
                  sg_decision *d);
long sg_release_and(sg_conn *c, const char *pool, const char *user, const char *session,
                    const char *via, const char *host, int xargc, const char **xargv, char *err,
                    size_t errlen);

/* The registry records of users[] (recs[i] malloc'd, NULL when none): byte 1
 * '1' disabled, byte 2 '1' service account, the version, then ",g1,g2,". */
int sg_registry_records(sg_conn *c, char *const *users, size_t n, char **recs, char *err,
                        size_t errlen);

/* A Sentinel connection asks the sentinels again and connects to the master
 * they name, within what is left of its budget (after READONLY or a lost
 * link: a failover). 0, or -1 (err set; also for other connections). */
int sg_conn_reconnect(sg_conn *c, char *err, size_t errlen);
/* opened with one budget for all its commands (sg_conn_open_bounded) */
int sg_conn_has_budget(const sg_conn *c);

/* Redis Cluster: the slot of a key (CRC16 of the hash tag or the key,
 * mod 16384); the masters of a cluster connection (node indexes, malloc'd;
 * 0 and NULL for one server, -1 on error); a command on one of them. */
int sg_key_slot(const char *key, size_t len);
int sg_conn_masters(sg_conn *c, int **out, char *err, size_t errlen);
/* A script reply's field as a string, "" when absent. */
const char *sg_reply_str0(const struct redisReply *r, const char *name);
/* "\n"-separated text into a malloc'd vector (free with sg_strv_free;
 * NULL/"" -> none, empty lines skipped); -1 out of memory, nothing kept. */
int sg_split_lines(const char *s, char ***out, size_t *n);
/* HMGET key fields[0..n) in pipelined batches; values[i] is a malloc'd
 * copy or NULL. lens may be NULL (C strings). */
int sg_hmget_all(sg_conn *c, const char *key, char *const *fields, const size_t *lens, size_t n,
                 char **values, char *err, size_t errlen);
struct redisReply *sg_conn_cmd_node(sg_conn *c, int node, int argc, const char **argv,
                                    char *err, size_t errlen);
/* The same on node, or routed as usual when node is -1 (one server). */
struct redisReply *sg_conn_cmd_at(sg_conn *c, int node, int argc, const char **argv, char *err,
                                  size_t errlen);
/* fn on the connection's own node (node -1) or on every master of a
 * Cluster, while it returns ok; its last answer, or -1 (err set) when the
 * masters cannot be listed. ud is passed through. */
int sg_each_master(sg_conn *c, int (*fn)(sg_conn *c, int node, void *ud, char *err, size_t errlen),
                   int ok, void *ud, char *err, size_t errlen);

/* Does a user record matter to a pool that watches the groups ",a,b,"
 * (disabled, a service account, or in a watched group)? */
int sg_rec_matters(const char *rec, const char *watch);
/* A record change in words, for the pools' audit entries. */
void sg_rec_desc(const char *old, const char *rec, char *buf, size_t len);
/* The keys the user_apply and assign scripts declare, in order. */
#define SG_USER_APPLY_NKEYS 7
#define SG_ASSIGN_NKEYS 6
extern const sg_key sg_user_apply_keys[SG_USER_APPLY_NKEYS];
extern const sg_key sg_assign_keys[SG_ASSIGN_NKEYS];
/* One SCIM 2.0 User resource (a json-c object) into p; no: its number, for
 * errors ("resource N, field F: reason"). */
struct json_object;
int sg_sync_scim_person(const sg_sync_map *m, struct json_object *res, long no,
                        sg_sync_person *p, char *err, size_t errlen);
/* ASCII lower case, in place. */
void sg_lower(char *s);

/* A set of strings with a value each (the strings are borrowed: they must
 * outlive the set). get: the value, or -1 when absent. */
typedef struct {
    struct {
        const char *key;
        long value;
    } *slot;
    size_t cap, n;
} sg_strset;
int sg_strset_init(sg_strset *set, size_t expect);
void sg_strset_free(sg_strset *set);
long sg_strset_get(const sg_strset *set, const char *s);
int sg_strset_put(sg_strset *set, const char *s, long value);

#endif
