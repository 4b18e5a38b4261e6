/* PAM logins per second through libpam and pam_seatgate.so against a local
 * Redis: each login is pam_start, pam_acct_mgmt, pam_open_session,
 * pam_close_session, pam_end (a check, a seat taken, the seat released).
 * Run under pam_wrapper (tests/bench/run-pam.sh sets it up):
 *
 *   LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=DIR \
 *       bench_pam SERVICE USERS SECONDS
 *
 * Prints one line:
 *   logins/s login_p50_ms login_p99_ms acct_p50_ms acct_p99_ms
 * where login is the whole transaction and acct the pam_acct_mgmt call alone
 * (one decision, with the module already loaded by pam_start).
 */
#include <security/pam_appl.h>
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

/* Answers every message with nothing (a denial shows as the return code). */
static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *ud)
{
    (void)msg;
    (void)ud;
    struct pam_response *r = calloc((size_t)n, sizeof(*r));
    if (r == NULL)
        return PAM_BUF_ERR;
    *resp = r;
    return PAM_SUCCESS;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_pam SERVICE USERS SECONDS (under pam_wrapper)\n");
        return 2;
    }
    const char *service = argv[1];
    int users = atoi(argv[2]);
    double secs = atof(argv[3]);
    if (users < 1 || secs <= 0) {
        fprintf(stderr, "bench_pam: USERS >= 1, SECONDS > 0\n");
        return 2;
    }
    struct pam_conv pc = {conv, NULL};
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof(double));
    double *acct = malloc(cap * sizeof(double));
    if (lat == NULL || acct == NULL)
        return 1;
    char user[32];
    double t0 = now_s(), t1 = t0;
    while (t1 - t0 < secs) {
        snprintf(user, sizeof(user), "bench%zu", n % (size_t)users);
        double a = now_s();
        pam_handle_t *ph = NULL;
        int rc = pam_start(service, user, &pc, &ph);
        if (rc != PAM_SUCCESS) {
            fprintf(stderr, "bench_pam: pam_start(%s): %s\n", service, pam_strerror(ph, rc));
            return 1;
        }
        double b = now_s();
        rc = pam_acct_mgmt(ph, 0);
        double c = now_s();
        if (rc == PAM_SUCCESS)
            rc = pam_open_session(ph, 0);
        if (rc == PAM_SUCCESS)
            rc = pam_close_session(ph, 0);
        if (rc != PAM_SUCCESS) { /* a login that fails measures nothing */
            fprintf(stderr, "bench_pam: %s: %s\n", user, pam_strerror(ph, rc));
            pam_end(ph, rc);
            return 1;
        }
        pam_end(ph, rc);
        t1 = now_s();
        if (n == cap) {
            double *m = realloc(lat, 2 * cap * sizeof(double));
            if (m == NULL)
                break;
            lat = m;
            m = realloc(acct, 2 * cap * sizeof(double));
            if (m == NULL)
                break;
            acct = m;
            cap *= 2;
        }
        acct[n] = (c - b) * 1e3;
        lat[n++] = (t1 - a) * 1e3;
    }
    qsort(lat, n, sizeof(double), cmp_double);
    qsort(acct, n, sizeof(double), cmp_double);
    size_t i50 = n / 2, i99 = (size_t)((double)(n - 1) * 0.99);
    printf("%.0f %.3f %.3f %.3f %.3f\n", (double)n / (t1 - t0), lat[i50], lat[i99], acct[i50],
           acct[i99]);
    free(lat);
    free(acct);
    return 0;
}
