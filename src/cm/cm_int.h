/*
 * cm_int.h - internals of the cluster manager shared between its files and its tests
 *
 * The keys of the cluster file are described once, here, so that the parser, the writer and the
 * documentation test (tests/unit/test_cluster_config.c checks that docs/cluster.md has a row for every
 * key) agree.
 *
 * Interface:
 *   rp_cm_cluster_keys, rp_cm_instance_keys   the keys of [cluster] and of [instance.N]
 *   rp_cm_config_check()                      the checks that span members (ports, data directories,
 *                                             partitions), shared by load and write
 */
#ifndef RP_CM_INT_H
#define RP_CM_INT_H

#include "respool/cluster.h"

#include <stdint.h>

typedef enum rp_cm_key_type {
    RP_CM_NAME,     /* [A-Za-z0-9._-], 1..63 characters */
    RP_CM_PATH,     /* a path; a relative one is taken relative to the file's directory */
    RP_CM_HOST,     /* a host name or an IPv4/IPv6 address others can reach */
    RP_CM_INT,      /* decimal integer in [min, max] */
    RP_CM_DURATION, /* "250ms", "5s", ...: milliseconds in [min, max] */
} rp_cm_key_type_t;

typedef struct rp_cm_key {
    const char *name;
    rp_cm_key_type_t type;
    const char *default_value; /* NULL = the key is required */
    int64_t min, max;          /* RP_CM_INT and RP_CM_DURATION (milliseconds) */
    const char *help;          /* one sentence, used as the hint of an error about this key */
} rp_cm_key_t;

/* Terminated by an entry with name == NULL. */
extern const rp_cm_key_t rp_cm_cluster_keys[];
extern const rp_cm_key_t rp_cm_instance_keys[];

/* Checks what no single key can: at least one member, members in strictly increasing id order, no
 * port used twice on one host, no data directory shared by two members of one host, partitions a
 * power of two and at least the number of members. `lines` (may be NULL) gives, per member index, the
 * line of its [instance.N] header for the messages. Returns 0 or RP_ECONFIG with a report. */
int rp_cm_config_check(const rp_cluster_config_t *cfg, const int *lines);

#endif
