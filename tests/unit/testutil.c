/*
 * testutil.c - see testutil.h
 */
#include "testutil.h"

#include "respool/error.h"
#include "respool/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void rp_test_env_create(rp_test_env_t *env, uint64_t size, uint64_t wal_size, uint32_t slots)
{
    memset(env, 0, sizeof(*env));
    snprintf(env->dir, sizeof(env->dir), "/tmp/rp-unit-XXXXXX");
    if (!mkdtemp(env->dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(env->volume, sizeof(env->volume), "%s/volume", env->dir);
    snprintf(env->data_dir, sizeof(env->data_dir), "%s/data", env->dir);
    rp_volume_init_opts_t o = {.size = size, .wal_size = wal_size, .max_instances = slots, .quiet = true};
    if (rp_volume_init(env->volume, &o) != 0) {
        fprintf(stderr, "volume init failed: %s\n", rp_last_error()->message);
        abort();
    }
    rp_conf_table_t t = {rp_instance_conf_defs, &env->cfg};
    rp_conf_defaults(&t, 1);
    rp_conf_free(&t, 1);
    env->cfg.data_dir = env->data_dir;
    env->cfg.volume = env->volume;
    env->cfg.buffer_pool_size = 2 << 20;
    env->cfg.wal_buffers = 1 << 20;
    env->cfg.huge_pages = RP_HUGE_PAGES_OFF;
}

void rp_test_env_destroy(rp_test_env_t *env)
{
    if (getenv("RP_TEST_KEEP")) {
        fprintf(stderr, "keeping %s (RP_TEST_KEEP)\n", env->dir);
        return;
    }
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", env->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", env->dir);
}

void rp_test_damage(const char *path, uint64_t offset, size_t len, unsigned char pattern)
{
    int fd = open(path, O_WRONLY);
    unsigned char *buf = malloc(len);
    memset(buf, pattern, len);
    if (fd < 0 || pwrite(fd, buf, len, (off_t)offset) != (ssize_t)len) {
        perror("damage");
        abort();
    }
    fsync(fd);
    close(fd);
    free(buf);
}

void rp_test_read(const char *path, uint64_t offset, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0 || pread(fd, buf, len, (off_t)offset) != (ssize_t)len) {
        perror("read");
        abort();
    }
    close(fd);
}

uint64_t rp_test_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dULL;
}
