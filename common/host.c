/* Host id, process start times and the boot id: see sg_host.h. */
#include "seatgate.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define fail(err, errlen, ...) sg_err_rc(err, errlen, -1, __VA_ARGS__)

#define MACHINE_ID "/etc/machine-id"
#define DBUS_MACHINE_ID "/var/lib/dbus/machine-id"
#define BOOT_ID "/proc/sys/kernel/random/boot_id"

/* Reads at most cap - 1 bytes of path into buf and NUL terminates it.
 * The number of bytes read, or -1 with errno set. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t k = read(fd, buf + got, cap - 1 - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

static int is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* The first line of a machine-id file into id[33]. 0 ok, 1 the file does
 * not exist, 2 it is unreadable or not a machine id (why says which). */
static int read_machine_id(const char *path, char id[33], char *why, size_t whylen)
{
    char buf[128];
    ssize_t n = read_small(path, buf, sizeof(buf));
    if (n < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 1;
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        return 2;
    }
    size_t len = strcspn(buf, "\n");
    int ok = len == 32;
    for (size_t i = 0; ok && i < len; i++)
        ok = is_lower_hex(buf[i]);
    if (!ok) {
        snprintf(why, whylen, "%s does not start with a machine id (32 lowercase hex digits)",
                 path);
        return 2;
    }
    memcpy(id, buf, 32);
    id[32] = '\0';
    return 0;
}

int sg_host_id(const char *configured, char *buf, size_t len, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (buf == NULL || len == 0)
        return fail(err, errlen, "no buffer for the host id");
    buf[0] = '\0';
    if (configured && *configured) {
        size_t n = strlen(configured);
        if (n > SG_HOST_ID_MAX)
            return fail(err, errlen, "host_id is longer than %d bytes", SG_HOST_ID_MAX);
        for (size_t i = 0; i < n; i++) {
            char c = configured[i];
            int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '_' || c == '-';
            if (!ok)
                return fail(err, errlen,
                            "host_id has a byte that is not allowed at byte %zu: use 1 to %d "
                            "letters, digits, '.', '_' or '-'",
                            i, SG_HOST_ID_MAX);
        }
        if (n >= len)
            return fail(err, errlen, "host id buffer too small");
        memcpy(buf, configured, n + 1);
        return 0;
    }

    const char *env = secure_getenv("SEATGATE_MACHINE_ID_FILE");
    const char *paths[2] = {(env && *env) ? env : MACHINE_ID, DBUS_MACHINE_ID};
    char why[SG_ERR_MAX] = "", w[SG_ERR_MAX];
    for (int i = 0; i < 2; i++) {
        char id[33];
        int rc = read_machine_id(paths[i], id, w, sizeof(w));
        if (rc == 0) {
            if (len < sizeof(id))
                return fail(err, errlen, "host id buffer too small");
            memcpy(buf, id, sizeof(id));
            return 0;
        }
        if (rc == 2 && why[0] == '\0')
            memcpy(why, w, sizeof(why));
    }
    if (why[0])
        return fail(err, errlen, "no host id: %s; set host_id in the config or fix the file", why);
    return fail(err, errlen, "no host id: set host_id in the config or create /etc/machine-id");
}

/* Start time (field 22) and state (field 3) of /proc/PID/stat. 0 ok, -1 with
 * errno: ENOENT or ESRCH no such process, EINVAL bad pid or unparsable. */
static int proc_stat(long pid, unsigned long long *start, char *state)
{
    if (pid <= 0 || pid > INT_MAX) {
        errno = EINVAL;
        return -1;
    }
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    ssize_t n = read_small(path, buf, sizeof(buf));
    if (n < 0)
        return -1;
    /* "pid (comm) state ppid ...": comm may hold spaces and ')', nothing after it can */
    const char *p = memrchr(buf, ')', (size_t)n);
    if (p == NULL || p[1] != ' ' || p[2] == '\0') {
        errno = EINVAL;
        return -1;
    }
    p += 2;
    *state = *p;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (p == NULL) {
            errno = EINVAL;
            return -1;
        }
        p++;
    }
    unsigned long long v = 0;
    const char *q = p;
    for (; *q >= '0' && *q <= '9'; q++) {
        unsigned d = (unsigned)(*q - '0');
        if (v > (ULLONG_MAX - d) / 10) {
            errno = EINVAL;
            return -1;
        }
        v = v * 10 + d;
    }
    if (q == p || (*q != ' ' && *q != '\n' && *q != '\0')) {
        errno = EINVAL;
        return -1;
    }
    *start = v;
    return 0;
}

int sg_proc_start(long pid, unsigned long long *start_ticks)
{
    unsigned long long v;
    char state;
    if (start_ticks == NULL || proc_stat(pid, &v, &state) != 0)
        return -1;
    *start_ticks = v;
    return 0;
}

int sg_boot_id(char *buf, size_t len)
{
    char tmp[64];
    if (buf == NULL || len < SG_BOOT_ID_LEN + 1)
        return -1;
    buf[0] = '\0';
    if (read_small(BOOT_ID, tmp, sizeof(tmp)) < 0)
        return -1;
    if (strcspn(tmp, "\n") != SG_BOOT_ID_LEN)
        return -1;
    for (int i = 0; i < SG_BOOT_ID_LEN; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? tmp[i] != '-' : !is_lower_hex(tmp[i]))
            return -1;
    }
    memcpy(buf, tmp, SG_BOOT_ID_LEN);
    buf[SG_BOOT_ID_LEN] = '\0';
    return 0;
}

/* For a zombie: 1 when the whole process has exited (Threads: 1), 0 when
 * other threads live on or we can't tell. (A thread group leader that calls
 * pthread_exit shows as a zombie while the process runs on.) */
static int zombie_exited(long pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT || errno == ESRCH;
    char *line = NULL;
    size_t cap = 0;
    int exited = 0;
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, "Threads:", 8) == 0) {
            long t;
            char *end;
            t = strtol(line + 8, &end, 10);
            exited = end != line + 8 && t <= 1;
            break;
        }
    }
    free(line);
    fclose(f);
    return exited;
}

int sg_proc_same(long pid, unsigned long long start_ticks, const char *boot_id)
{
    if (pid <= 0 || pid > INT_MAX)
        return -1;
    if (boot_id && *boot_id) {
        char cur[SG_BOOT_ID_LEN + 1];
        if (sg_boot_id(cur, sizeof(cur)) != 0)
            return -1;
        if (strcmp(cur, boot_id) != 0)
            return 0; /* rebooted since: every process of that boot is gone */
    }
    unsigned long long start;
    char state;
    if (proc_stat(pid, &start, &state) != 0) {
        if (errno != ENOENT && errno != ESRCH)
            return -1;
        /* No /proc/PID: gone, unless /proc hides it (hidepid) or is not
         * mounted; kill(pid, 0) knows (EPERM: another user's process). */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            return -1;
        return 0;
    }
    if (start != start_ticks)
        return 0; /* the pid was reused */
    if (state == 'X' || (state == 'Z' && zombie_exited(pid)))
        return 0;
    return 1;
}


int sg_host_id_or_name(const char *configured, char *buf, size_t len, char *err,
                       size_t errlen)
{
    if (sg_host_id(configured, buf, len, err, errlen) == 0)
        return 0;
    char host[256];
    sg_hostname(host, sizeof(host));
    size_t k = 0;
    for (const char *p = host; *p && k + 1 < len; p++)
        buf[k++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                                  (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'
                              ? *p
                              : '_');
    if (len)
        buf[k] = '\0';
    if (k == 0)
        snprintf(buf, len, "localhost");
    return 1;
}

void sg_pam_session_id(const char *host_id, long pid, unsigned long long pstart, char *buf,
                       size_t len)
{
    snprintf(buf, len, "pam-%s-%ld-%llu", host_id, pid, pstart);
}
