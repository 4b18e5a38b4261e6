/* Unit tests: host id, process start time, boot id (common/host.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "seatgate.h"

#define ID1 "0123456789abcdef0123456789abcdef"
#define DBUS_ID_FILE "/var/lib/dbus/machine-id"

static char tmpfile_path[64];

/* Writes content to a fresh temp file and points SEATGATE_MACHINE_ID_FILE at it. */
static void machine_id_file(const char *content, size_t len)
{
    if (tmpfile_path[0])
        unlink(tmpfile_path);
    snprintf(tmpfile_path, sizeof(tmpfile_path), "/tmp/sg-test-machine-id.XXXXXX");
    int fd = mkstemp(tmpfile_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    assert_int_equal(setenv("SEATGATE_MACHINE_ID_FILE", tmpfile_path, 1), 0);
}

static int teardown_env(void **state)
{
    (void)state;
    if (tmpfile_path[0])
        unlink(tmpfile_path);
    tmpfile_path[0] = '\0';
    unsetenv("SEATGATE_MACHINE_ID_FILE");
    return 0;
}

/* Reference: a valid id in the first line of path, else "". */
static void ref_machine_id(const char *path, char out[33])
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[128];
    if (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strlen(line) == 32 && strspn(line, "0123456789abcdef") == 32)
            strcpy(out, line);
    }
    fclose(f);
}

static void host_id_is(const char *configured, const char *want)
{
    char buf[SG_HOST_ID_MAX + 1], err[SG_ERR_MAX] = "";
    if (sg_host_id(configured, buf, sizeof(buf), err, sizeof(err)) != 0)
        fail_msg("sg_host_id('%s') failed: %s", configured ? configured : "(null)", err);
    assert_string_equal(buf, want);
}

static void host_id_fails(const char *configured, const char *want1, const char *want2)
{
    char buf[SG_HOST_ID_MAX + 1] = "junk", err[SG_ERR_MAX] = "";
    if (sg_host_id(configured, buf, sizeof(buf), err, sizeof(err)) != -1)
        fail_msg("sg_host_id('%s') gave '%s'", configured ? configured : "(null)", buf);
    assert_string_equal(buf, "");
    assert_null(strchr(err, '\n'));
    if (want1 && strstr(err, want1) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, want1);
    if (want2 && strstr(err, want2) == NULL)
        fail_msg("error '%s' does not mention '%s'", err, want2);
}

/* ---- sg_host_id -------------------------------------------------------------- */

static void test_host_id_configured(void **state)
{
    (void)state;
    machine_id_file(ID1 "\n", 33);
    host_id_is("web-01.example_com", "web-01.example_com");
    host_id_is("A", "A");
    char id[SG_HOST_ID_MAX + 2];
    memset(id, 'h', SG_HOST_ID_MAX);
    id[SG_HOST_ID_MAX] = '\0';
    host_id_is(id, id);
    strcat(id, "h");
    host_id_fails(id, "host_id", "longer than 64");
    host_id_fails("web 01", "host_id", "not allowed at byte 3");
    host_id_fails("web/01", "not allowed", NULL);
    host_id_fails("web:01", "not allowed", NULL);
    host_id_fails("h\n", "not allowed", NULL);
    host_id_fails("caf\xc3\xa9", "not allowed", NULL);
    /* empty or NULL: the machine id */
    host_id_is("", ID1);
    host_id_is(NULL, ID1);
    /* buffer sizes */
    char small[5], err[SG_ERR_MAX];
    assert_int_equal(sg_host_id("hosta", small, sizeof(small), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too small"));
    assert_int_equal(sg_host_id("host", small, sizeof(small), err, sizeof(err)), 0);
    assert_string_equal(small, "host");
    char b32[32];
    assert_int_equal(sg_host_id(NULL, b32, sizeof(b32), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too small"));
    char b33[33];
    assert_int_equal(sg_host_id(NULL, b33, sizeof(b33), NULL, 0), 0);
    assert_string_equal(b33, ID1);
}

static void test_host_id_file(void **state)
{
    (void)state;
    machine_id_file(ID1, 32); /* no line end */
    host_id_is(NULL, ID1);
    machine_id_file(ID1 "\nsecond line\n", 45);
    host_id_is(NULL, ID1);
    machine_id_file("fedcba9876543210fedcba9876543210\n", 33);
    host_id_is("", "fedcba9876543210fedcba9876543210");
}

/* What sg_host_id should give when the first file is unusable. */
static void expect_fallback(const char *want1, const char *want2)
{
    char dbus[33];
    ref_machine_id(DBUS_ID_FILE, dbus);
    if (dbus[0])
        host_id_is(NULL, dbus);
    else
        host_id_fails(NULL, want1, want2);
}

static void test_host_id_file_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "0123456789ABCDEF0123456789ABCDEF\n",  /* upper case */
        "0123456789abcdef0123456789abcde\n",   /* 31 */
        "0123456789abcdef0123456789abcdef0\n", /* 33 */
        "0123456789abcdef0123456789abcdef \n", /* trailing space */
        " 0123456789abcdef0123456789abcdef\n",
        "0123456789abcdef0123456789abcdeg\n",
        "0123456789abcdef-0123456789abcde\n",
        "0123456789abcdef0123456789abcdef\r\n",
        "uninitialized\n",
        "\n" ID1 "\n",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        machine_id_file(bad[i], strlen(bad[i]));
        expect_fallback(tmpfile_path, "32 lowercase hex");
    }
    static const char nul[] = "0123456789abcdef\0"
                              "123456789abcdef\n";
    machine_id_file(nul, sizeof(nul) - 1);
    expect_fallback(tmpfile_path, "32 lowercase hex");
    /* a directory */
    setenv("SEATGATE_MACHINE_ID_FILE", "/tmp", 1);
    expect_fallback("/tmp", NULL);
}

static void test_host_id_missing(void **state)
{
    (void)state;
    setenv("SEATGATE_MACHINE_ID_FILE", "/nonexistent/sg-test/machine-id", 1);
    expect_fallback("no host id: set host_id in the config or create /etc/machine-id", NULL);
    /* unset or empty: /etc/machine-id */
    char etc[33], dbus[33];
    ref_machine_id("/etc/machine-id", etc);
    ref_machine_id(DBUS_ID_FILE, dbus);
    unsetenv("SEATGATE_MACHINE_ID_FILE");
    if (etc[0] || dbus[0])
        host_id_is(NULL, etc[0] ? etc : dbus);
    setenv("SEATGATE_MACHINE_ID_FILE", "", 1);
    if (etc[0] || dbus[0])
        host_id_is(NULL, etc[0] ? etc : dbus);
}

/* In a private mount namespace with an empty /var/lib/dbus (needs root): the
 * error messages when no machine id can be found. Skipped when that can't be
 * set up. */
static void test_host_id_no_fallback(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
            _exit(77);
        if (access("/var/lib/dbus", F_OK) == 0 &&
            mount("tmpfs", "/var/lib/dbus", "tmpfs", 0, NULL) != 0)
            _exit(77);
        char buf[SG_HOST_ID_MAX + 1], err[SG_ERR_MAX];
        setenv("SEATGATE_MACHINE_ID_FILE", "/nonexistent/sg-test/machine-id", 1);
        if (sg_host_id(NULL, buf, sizeof(buf), err, sizeof(err)) != -1 ||
            strcmp(err, "no host id: set host_id in the config or create /etc/machine-id") != 0)
            _exit(1);
        if (sg_host_id("", buf, sizeof(buf), err, sizeof(err)) != -1 || buf[0] != '\0')
            _exit(2);
        setenv("SEATGATE_MACHINE_ID_FILE", "/proc/self/status", 1); /* exists, not an id */
        if (sg_host_id(NULL, buf, sizeof(buf), err, sizeof(err)) != -1 ||
            strstr(err, "no host id: /proc/self/status does not start with a machine id") == NULL ||
            strstr(err, "set host_id in the config") == NULL)
            _exit(3);
        if (sg_host_id("myhost", buf, sizeof(buf), err, sizeof(err)) != 0 ||
            strcmp(buf, "myhost") != 0)
            _exit(4);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77) {
        print_message("no private mount namespace here: fallback errors not checked\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- processes --------------------------------------------------------------- */

/* Reference: starttime of /proc/PID/stat by sscanf after the last ')'. */
static unsigned long long ref_start(long pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    assert_non_null(p);
    unsigned long long v = 0;
    int got = sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                     "%*d %*d %llu",
                     &v);
    assert_int_equal(got, 1);
    return v;
}

static char proc_state(long pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return '?';
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p ? p[2] : '?';
}

static void wait_state(long pid, char want)
{
    for (int i = 0; i < 5000 && proc_state(pid) != want; i++)
        usleep(1000);
    assert_int_equal(proc_state(pid), want);
}

static void test_proc_start_self(void **state)
{
    (void)state;
    unsigned long long a = 0, b = 0;
    assert_int_equal(sg_proc_start(getpid(), &a), 0);
    assert_int_equal(sg_proc_start(getpid(), &b), 0);
    assert_true(a == b);
    assert_true(a == ref_start(getpid()));
    unsigned long long one;
    if (access("/proc/1/stat", R_OK) == 0) {
        assert_int_equal(sg_proc_start(1, &one), 0);
        assert_true(one == ref_start(1));
        assert_true(one <= a);
    }
    /* bad pids */
    unsigned long long x = 42;
    assert_int_equal(sg_proc_start(0, &x), -1);
    assert_int_equal(sg_proc_start(-1, &x), -1);
    assert_int_equal(sg_proc_start((long)INT_MAX + 1, &x), -1);
    assert_int_equal(sg_proc_start(LONG_MAX, &x), -1);
    assert_int_equal(sg_proc_start(getpid(), NULL), -1);
    assert_true(x == 42);
}

/* A child whose comm holds spaces and ')' still parses. */
static void test_proc_start_odd_comm(void **state)
{
    (void)state;
    static const char *const names[] = {"a) b (c) 1 2",    ") )", "x y z )))", "(",
                                        ") ) ) ) ) ) ) )", "a) "};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int up[2], down[2];
        assert_int_equal(pipe(up), 0);
        assert_int_equal(pipe(down), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(up[0]);
            close(down[1]);
            prctl(PR_SET_NAME, names[i], 0, 0, 0);
            char c = 'r';
            if (write(up[1], &c, 1) != 1)
                _exit(1);
            while (read(down[0], &c, 1) > 0) /* until the parent closes it */
                ;
            _exit(0);
        }
        close(up[1]);
        close(down[0]);
        char c;
        assert_int_equal(read(up[0], &c, 1), 1);
        char path[64], comm[64] = "";
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        assert_non_null(fgets(comm, sizeof(comm), f));
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        assert_string_equal(comm, names[i]);

        unsigned long long st = 0;
        assert_int_equal(sg_proc_start(pid, &st), 0);
        assert_true(st == ref_start(pid));
        assert_int_equal(sg_proc_same(pid, st, NULL), 1);
        close(down[1]);
        close(up[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
    }
}

/* A child that exited and was reaped is gone. */
static void test_proc_gone(void **state)
{
    (void)state;
    char boot[SG_BOOT_ID_LEN + 1];
    assert_int_equal(sg_boot_id(boot, sizeof(boot)), 0);
    int down[2];
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(down[1]);
        char c;
        while (read(down[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(down[0]);
    unsigned long long st = 0;
    assert_int_equal(sg_proc_start(pid, &st), 0);
    assert_int_equal(sg_proc_same(pid, st, boot), 1);
    assert_int_equal(sg_proc_same(pid, st, NULL), 1);
    close(down[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    unsigned long long x = 7;
    assert_int_equal(sg_proc_start(pid, &x), -1);
    assert_true(x == 7);
    assert_int_equal(sg_proc_same(pid, st, boot), 0);
    assert_int_equal(sg_proc_same(pid, st, NULL), 0);
}

/* A child that exited but is not reaped yet (a zombie) is gone too; its
 * start time can still be read. */
static void test_proc_zombie(void **state)
{
    (void)state;
    int down[2];
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(down[1]);
        char c;
        while (read(down[0], &c, 1) > 0)
            ;
        _exit(0);
    }
    close(down[0]);
    unsigned long long st = 0;
    assert_int_equal(sg_proc_start(pid, &st), 0);
    close(down[1]);
    wait_state(pid, 'Z');
    unsigned long long z = 0;
    assert_int_equal(sg_proc_start(pid, &z), 0);
    assert_true(z == st);
    assert_int_equal(sg_proc_same(pid, st, NULL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
}

static int leader_pipe[2];

static void *thread_main(void *arg)
{
    (void)arg;
    char c;
    while (read(leader_pipe[0], &c, 1) > 0)
        ;
    _exit(0);
}

/* A process whose main thread called pthread_exit shows as a zombie while
 * its other threads run: it is alive. */
static void test_proc_leader_exited(void **state)
{
    (void)state;
    assert_int_equal(pipe(leader_pipe), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(leader_pipe[1]);
        pthread_t t;
        if (pthread_create(&t, NULL, thread_main, NULL) != 0)
            _exit(1);
        pthread_exit(NULL);
    }
    close(leader_pipe[0]);
    wait_state(pid, 'Z');
    unsigned long long st = 0;
    assert_int_equal(sg_proc_start(pid, &st), 0);
    assert_int_equal(sg_proc_same(pid, st, NULL), 1);
    close(leader_pipe[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(sg_proc_same(pid, st, NULL), 0);
}

static void test_proc_same(void **state)
{
    (void)state;
    char boot[SG_BOOT_ID_LEN + 1];
    assert_int_equal(sg_boot_id(boot, sizeof(boot)), 0);
    unsigned long long st = 0;
    assert_int_equal(sg_proc_start(getpid(), &st), 0);
    assert_int_equal(sg_proc_same(getpid(), st, boot), 1);
    assert_int_equal(sg_proc_same(getpid(), st, NULL), 1);
    assert_int_equal(sg_proc_same(getpid(), st, ""), 1);
    /* the pid was reused by another process: different start time */
    assert_int_equal(sg_proc_same(getpid(), st + 1, boot), 0);
    assert_int_equal(sg_proc_same(getpid(), st - 1, NULL), 0);
    assert_int_equal(sg_proc_same(getpid(), 0, NULL), 0);
    /* another boot */
    assert_int_equal(sg_proc_same(getpid(), st, "00000000-0000-0000-0000-000000000000"), 0);
    assert_int_equal(sg_proc_same(getpid(), st, "garbage"), 0);
    /* can't tell */
    assert_int_equal(sg_proc_same(0, st, NULL), -1);
    assert_int_equal(sg_proc_same(-5, st, NULL), -1);
    assert_int_equal(sg_proc_same((long)INT_MAX + 1, st, NULL), -1);
    /* pid 1 */
    unsigned long long one;
    if (sg_proc_start(1, &one) == 0)
        assert_int_equal(sg_proc_same(1, one, boot), 1);
}

/* Another user's process counts as existing. As root, a child that became
 * nobody checks its root parent; otherwise we check pid 1. */
static void test_proc_same_other_user(void **state)
{
    (void)state;
    char boot[SG_BOOT_ID_LEN + 1];
    assert_int_equal(sg_boot_id(boot, sizeof(boot)), 0);
    if (geteuid() != 0) {
        unsigned long long one;
        if (sg_proc_start(1, &one) != 0 || kill(1, 0) == 0) {
            print_message("pid 1 not usable as another user's process\n");
            skip();
        }
        assert_int_equal(errno, EPERM);
        assert_int_equal(sg_proc_same(1, one, boot), 1);
        return;
    }
    unsigned long long st;
    assert_int_equal(sg_proc_start(getpid(), &st), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(77);
        if (kill(parent, 0) == 0 || errno != EPERM)
            _exit(1);
        if (sg_proc_same(parent, st, boot) != 1)
            _exit(2);
        if (sg_proc_same(parent, st + 1, boot) != 0)
            _exit(3);
        unsigned long long x;
        if (sg_proc_start(parent, &x) != 0 || x != st)
            _exit(4);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip();
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_boot_id(void **state)
{
    (void)state;
    char a[SG_BOOT_ID_LEN + 1], b[64];
    assert_int_equal(sg_boot_id(a, sizeof(a)), 0);
    assert_int_equal(strlen(a), SG_BOOT_ID_LEN);
    assert_int_equal(a[8], '-');
    assert_int_equal(a[13], '-');
    assert_int_equal(a[18], '-');
    assert_int_equal(a[23], '-');
    assert_int_equal(sg_boot_id(b, sizeof(b)), 0);
    assert_string_equal(a, b);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    assert_non_null(f);
    char ref[64] = "";
    assert_non_null(fgets(ref, sizeof(ref), f));
    fclose(f);
    ref[strcspn(ref, "\n")] = '\0';
    assert_string_equal(a, ref);
    char small[SG_BOOT_ID_LEN];
    assert_int_equal(sg_boot_id(small, sizeof(small)), -1);
    assert_int_equal(sg_boot_id(NULL, 64), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_host_id_configured, teardown_env),
        cmocka_unit_test_teardown(test_host_id_file, teardown_env),
        cmocka_unit_test_teardown(test_host_id_file_invalid, teardown_env),
        cmocka_unit_test_teardown(test_host_id_missing, teardown_env),
        cmocka_unit_test_teardown(test_host_id_no_fallback, teardown_env),
        cmocka_unit_test(test_proc_start_self),
        cmocka_unit_test(test_proc_start_odd_comm),
        cmocka_unit_test(test_proc_gone),
        cmocka_unit_test(test_proc_zombie),
        cmocka_unit_test(test_proc_leader_exited),
        cmocka_unit_test(test_proc_same),
        cmocka_unit_test(test_proc_same_other_user),
        cmocka_unit_test(test_boot_id),
    };
    return cmocka_run_group_tests_name("host", tests, NULL, NULL);
}
