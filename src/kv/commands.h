/*
 * commands.h - respoold's command table: every Redis command it understands, over the store (db.h)
 *
 * The commands are the server's dispatch function (server.h): each request is looked up by name
 * (case-insensitively), its arity checked, authentication enforced, and its handler run on the worker
 * thread that read it. A handler appends exactly one reply and reports in kv_call_t.gate the WAL
 * position its reply depends on (the store's *gate), so that the server can hold the reply until that
 * position is durable.
 *
 * Replies and error texts follow Redis 7 (see docs/resp.md for the list, and for what respool adds:
 * store errors such as a full volume or a corrupt page).
 *
 * Interface:
 *   kv_commands_create()   build the table for a store (and the instance, for INFO)
 *   kv_commands_destroy()  free it (after the server has stopped)
 *   kv_commands_hooks()    the server hooks (thread contexts and dispatch)
 *   kv_commands_names()    every command name (for tests and documentation checks)
 */
#ifndef RP_KV_COMMANDS_H
#define RP_KV_COMMANDS_H

#include "kv/db.h"
#include "kv/server.h"
#include "respool/config.h"
#include "respool/instance.h"

typedef struct kv_commands kv_commands_t;

typedef struct kv_commands_setup {
    kv_db_t *db;
    rp_instance_t *inst;                /* for INFO; may share the store's instance */
    const rp_conf_table_t *conf_tables; /* for CONFIG GET: every table respoold was configured with */
    int nconf;
    const char *config_file; /* for INFO ("" if none) */
} kv_commands_setup_t;

int kv_commands_create(const kv_commands_setup_t *setup, kv_commands_t **out);
void kv_commands_destroy(kv_commands_t *cmds);
kv_server_hooks_t kv_commands_hooks(kv_commands_t *cmds);
/* NULL-terminated list of the top-level command names, lowercase. */
const char *const *kv_commands_names(void);

#endif
