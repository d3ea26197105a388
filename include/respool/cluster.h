/*
 * respool/cluster.h - the cluster configuration: who the members are and how to reach them
 *
 * One INI file per cluster (written by `respoolctl cluster init`, read by respoold and respoolctl), see
 * docs/cluster.md for the format:
 *
 *   [cluster]       name, volume, secret-file, partitions, request-timeout
 *   [instance.N]    host, port (RESP), cluster-port, data-dir       (N = instance id = volume slot)
 *
 * Loading validates everything a person can get wrong, each with an error naming the file, the section and
 * the key: unknown keys, missing keys, duplicate ports on one host, ids beyond the volume's slots (checked
 * later against the superblock by the instance), partitions not a power of two, and a secret file that is
 * missing, not 32 bytes of hex, or readable by group or others.
 *
 * Interface:
 *   rp_cluster_config_load()    read and validate a file, load the secret
 *   rp_cluster_config_write()   write a file (0644) and its secret (0600) for `cluster init`
 *   rp_cluster_member()         the member with an id, or NULL
 *   rp_cluster_member_is_local() whether a member's host is this host (loopback or one of its addresses)
 *   rp_cluster_member_bind()    the member's host as addresses to listen on (respoold's `bind`)
 *
 * Relative paths in the file (volume, secret-file, data-dir) are relative to the file's directory; the
 * loaded configuration holds them absolute. Indentation is allowed and means nothing; a line may have
 * at most 198 characters (a limit of libinih). Memory: rp_cluster_config_t is a plain value (about
 * 290 KB: allocate it on the heap); nothing in it needs freeing. All functions are thread-safe.
 */
#ifndef RESPOOL_CLUSTER_H
#define RESPOOL_CLUSTER_H

#include "respool/volume.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RP_CLUSTER_SECRET_LEN 32
#define RP_CLUSTER_PARTITIONS_DEFAULT 1024
#define RP_CLUSTER_HOST_MAX 256

typedef struct rp_cluster_member {
    int id;                             /* instance id = volume slot */
    char host[RP_CLUSTER_HOST_MAX];     /* where the member runs: name or address */
    int port;                           /* RESP clients */
    int cluster_port;                   /* other instances */
    char data_dir[PATH_MAX];
} rp_cluster_member_t;

typedef struct rp_cluster_config {
    char path[PATH_MAX];                /* the file it was loaded from */
    char name[64];
    char volume[PATH_MAX];
    char secret_file[PATH_MAX];
    unsigned char secret[RP_CLUSTER_SECRET_LEN];
    uint32_t partitions;                /* directory partitions, a power of two */
    uint64_t request_timeout_ms;        /* deadline of one page or lock request */
    uint64_t join_timeout_ms;           /* how long a starting member waits for the others */
    int nmembers;
    rp_cluster_member_t members[RP_VOLUME_MAX_INSTANCES]; /* in id order */
} rp_cluster_config_t;

/* 0, or RP_ECONFIG / RP_ENOENT / RP_EPERM with a report naming file, section and key. RP_ENOENT: the file
 * or the secret file does not exist; RP_EPERM: either cannot be read, or the secret file is accessible by
 * group or others (the hint gives the chmod command). *cfg is filled only on success (zeroed otherwise). */
int rp_cluster_config_load(const char *path, rp_cluster_config_t *cfg);
/* Validates cfg as load would (except the secret file, which this creates), then writes the secret to
 * cfg->secret_file (0600) and the configuration to path (0644), each through a temporary file and a
 * rename, so that either file is the old one or the complete new one. Replaces existing files: a caller
 * that must not (`cluster init` without --force) checks first. Returns 0, RP_ECONFIG (invalid, or a
 * value the format cannot hold) or an I/O error, with a report. */
int rp_cluster_config_write(const char *path, const rp_cluster_config_t *cfg);
/* The member with that instance id, or NULL. The pointer is into cfg. */
const rp_cluster_member_t *rp_cluster_member(const rp_cluster_config_t *cfg, int id);
/* See cluster_host.c for the rules; a host name that is not obviously local is resolved (may use DNS). */
bool rp_cluster_member_is_local(const rp_cluster_member_t *m);
/* Writes into buf the space-separated addresses of this host that m->host stands for ("127.0.0.1" for a
 * loopback name, the address itself for a literal one, the local addresses a name resolves to). Returns
 * 0, or RP_ECONFIG with a report when m->host is not this host. */
int rp_cluster_member_bind(const rp_cluster_member_t *m, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
