/*
 * ipc_json.h - JSON number helpers shared by `respoolctl check` and `respoolctl ipc` (internal)
 *
 * Host limits such as kernel.shmmax are 64-bit values near 2^64; cJSON's numbers are doubles and would
 * print them rounded. These write the exact decimal text instead.
 *
 * Interface:
 *   ctl_json_u64()   add an unsigned 64-bit member, exactly
 *   ctl_json_i64()   add a signed 64-bit member, exactly
 */
#ifndef RP_CTL_IPC_JSON_H
#define RP_CTL_IPC_JSON_H

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

static inline void ctl_json_u64(cJSON *o, const char *name, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    cJSON_AddRawToObject(o, name, buf);
}

static inline void ctl_json_i64(cJSON *o, const char *name, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    cJSON_AddRawToObject(o, name, buf);
}

#endif
