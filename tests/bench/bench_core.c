/* Decisions per second through libseatgate against a local Redis:
 * one connection, one decision at a time (the PAM / seatctl path), and
 * pipelined (DEPTH decisions in flight on one connection, as nginx does).
 * usage: bench_core URL POOL USERS SECONDS DEPTH */
#include "seatgate.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: bench_core URL POOL USERS SECONDS DEPTH\n");
        return 2;
    }
    const char *pool = argv[2];
    int users = atoi(argv[3]);
    double secs = atof(argv[4]);
    int depth = atoi(argv[5]);
    char err[SG_ERR_MAX];
    sg_redis_url u;
    if (sg_url_parse(argv[1], &u, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    sg_conn *c = sg_conn_open(&u, 2000, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "%s\n", err);
        return 3;
    }
    char names[64][32];
    int nusers = users > 64 ? 64 : users;
    for (int i = 0; i < nusers; i++)
        snprintf(names[i], sizeof(names[i]), "bench%d", i);

    /* sequential: sg_decide (EVALSHA, one round trip each) */
    long n = 0, bad = 0;
    double t0 = now_s(), t1;
    do {
        for (int k = 0; k < 200; k++, n++) {
            sg_request rq = {.op = SG_OP_ACQUIRE, .pool = pool, .user = names[n % nusers],
                             .via = "bench", .host = "bench"};
            sg_decision d;
            if (sg_decide(c, &rq, &d) != 0)
                bad++;
        }
        t1 = now_s();
    } while (t1 - t0 < secs);
    double seq = (double)n / (t1 - t0);

    /* pipelined: DEPTH commands in flight */
    redisContext *ctx = sg_conn_ctx(c);
    static sg_cmd cmd;
    long m = 0;
    t0 = now_s();
    do {
        for (int k = 0; k < depth; k++) {
            sg_request rq = {.op = SG_OP_ACQUIRE, .pool = pool,
                             .user = names[(m + k) % nusers], .via = "bench", .host = "bench"};
            sg_decide_cmd(&rq, 0, &cmd);
            redisAppendCommandArgv(ctx, cmd.argc, cmd.argv, cmd.argvlen);
        }
        for (int k = 0; k < depth; k++, m++) {
            void *r = NULL;
            if (redisGetReply(ctx, &r) != REDIS_OK) {
                fprintf(stderr, "pipeline: %s\n", ctx->errstr);
                return 3;
            }
            sg_decision d;
            if (sg_decision_parse(r, &d) != 0)
                bad++;
            freeReplyObject(r);
        }
        t1 = now_s();
    } while (t1 - t0 < secs);
    double pip = (double)m / (t1 - t0);
    printf("%.0f %.0f %ld\n", seq, pip, bad);
    sg_conn_close(c);
    return bad ? 1 : 0;
}
