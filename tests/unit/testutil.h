/*
 * testutil.h - helpers shared by the unit tests: temporary directories and volumes, instance configs
 */
#ifndef RP_TESTUTIL_H
#define RP_TESTUTIL_H

#include "respool/instance.h"
#include "respool/volume.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct rp_test_env {
    char dir[PATH_MAX];        /* temporary directory, removed by rp_test_env_destroy */
    char volume[PATH_MAX];     /* dir/volume */
    char data_dir[PATH_MAX];   /* dir/data */
    rp_instance_config_t cfg;  /* ready to open; strings point into this struct */
} rp_test_env_t;

/* Creates a directory and a volume in it (size, wal size, slots), and a config for slot 0. */
void rp_test_env_create(rp_test_env_t *env, uint64_t size, uint64_t wal_size, uint32_t slots);
void rp_test_env_destroy(rp_test_env_t *env);
/* Overwrites len bytes of a file at offset with pattern bytes (simulated damage). */
void rp_test_damage(const char *path, uint64_t offset, size_t len, unsigned char pattern);
/* Reads len bytes of a file at offset. */
void rp_test_read(const char *path, uint64_t offset, void *buf, size_t len);
/* A deterministic pseudo-random generator (xorshift64*). */
uint64_t rp_test_rand(uint64_t *state);

#endif
