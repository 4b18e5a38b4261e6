/* libFuzzer target: the config parser (common/config.c). The input is applied
 * line by line as PAM-style key=value arguments, then read back as a config
 * file. Checks: a rejected setting changes nothing, and whatever is accepted
 * is valid. The log callback is a no-op. */
#include "seatgate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_config: check failed: %s (line %d)\n", #c, __LINE__);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void noop(void *ud, sg_log_level lvl, const char *fmt, ...)
{
    (void)ud;
    (void)lvl;
    (void)fmt;
}

static char path[64];
static int fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* tmpfs when there is one: a file is written for every input. It is
     * unlinked at once and read back through /proc, so nothing is left over
     * whichever way the run ends. */
    char tmpl[64];
    snprintf(tmpl, sizeof(tmpl), "%s/fuzz_config.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    fd = mkstemp(tmpl);
    if (fd < 0) {
        perror("fuzz_config: mkstemp");
        abort();
    }
    unlink(tmpl);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    return 0;
}

#define TERMINATED(a) CHECK(memchr((a), '\0', sizeof(a)) != NULL)

static void check_valid(const sg_config *cfg)
{
    TERMINATED(cfg->redis);
    TERMINATED(cfg->pool);
    TERMINATED(cfg->feature);
    TERMINATED(cfg->exempt_group);
    sg_redis_url u;
    CHECK(sg_url_parse(cfg->redis, &u, NULL, 0) == 0);
    CHECK(cfg->pool[0] == '\0' || sg_valid_name(cfg->pool, NULL, 0) == 0);
    CHECK(cfg->feature[0] == '\0' || sg_valid_name(cfg->feature, NULL, 0) == 0);
    CHECK(cfg->exempt_group[0] == '\0' || sg_valid_group(cfg->exempt_group, NULL, 0) == 0);
    CHECK(cfg->fail_open == 0 || cfg->fail_open == 1);
    CHECK(cfg->debug == 0 || cfg->debug == 1);
    CHECK(cfg->timeout_ms >= 1 && cfg->timeout_ms <= 60000);
    CHECK(cfg->lease_s >= 0 && cfg->lease_s <= 365L * 86400);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;

    /* 1. line by line through sg_config_apply */
    sg_config cfg;
    sg_config_init(&cfg);
    size_t start = 0;
    while (start <= size) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - data) : size;
        size_t n = end - start;
        char *line = malloc(n + 1);
        if (line == NULL)
            return 0;
        memcpy(line, data + start, n);
        line[n] = '\0';
        sg_config before = cfg;
        int rc = sg_config_apply(&cfg, line, noop, NULL);
        CHECK(rc == 0 || rc == -1);
        if (rc != 0)
            CHECK(memcmp(&before, &cfg, sizeof(cfg)) == 0); /* bad input changes nothing */
        check_valid(&cfg);
        free(line);
        start = end + 1;
    }

    /* 2. the whole input as a config file */
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);
    sg_config_init(&cfg);
    int rc = sg_config_read(&cfg, path, 0, noop, NULL);
    CHECK(rc == 0 || rc == -1);
    check_valid(&cfg);
    return 0;
}
