/*
 * server.h - the network layer of respoold: connections, request batching, durable replies
 *
 * The server owns sockets and connections and knows nothing about commands: each complete request is
 * handed to a dispatch function (commands.c in respoold, a test table in the unit tests) together with
 * the connection's reply buffer. See src/kv/README.md, section "Server", for the design essay.
 *
 * Threads. `io-threads` workers, each with its own epoll instance, its own SO_REUSEPORT listener per
 * bind address, its own eventfd and its own connections (a connection never changes thread). Requests
 * run on the worker that read them: the store is fully concurrent, so there is no hand-off and no
 * global lock on the request path.
 *
 * Durable replies. A command reports in kv_call_t.gate the WAL position that must be durable before
 * its reply may be seen. The server tags the reply's bytes with that gate ("bytes from stream offset X
 * on wait until durable >= G"), sends everything before the first unsatisfied tag at once, and sends
 * the rest when kv_server_durable() (called by the WAL writer after each flush) moves the durable
 * position past it. Replies keep their order; one flush releases the replies of every connection
 * (group commit). With gating off (async commit mode) gates are ignored.
 *
 * Interface:
 *   kv_server_create()      check the configuration and build the server (no sockets yet)
 *   kv_server_start()       bind the listeners and start the workers
 *   kv_server_port()        the TCP port actually bound (useful when the configuration said 0)
 *   kv_server_durable()     the WAL is durable up to pos (WAL writer thread; never blocks)
 *   kv_server_stop()        stop accepting, send the replies that become durable, close, join
 *   kv_server_destroy()     free the server
 *   kv_server_get_stats()   counters for INFO
 *   kv_server_client_list() CLIENT LIST text; kv_server_kill_clients() CLIENT KILL
 *   kv_client_*()           what a command may know or change about its own connection
 */
#ifndef RP_KV_SERVER_H
#define RP_KV_SERVER_H

#include "kv/resp.h"
#include "respool/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kv_server kv_server_t;
typedef struct kv_client kv_client_t;

/* The server's settings; kv_server_conf_defs (server_config.c) describes every key. */
typedef struct kv_server_config {
    char *bind;                         /* bind: space-separated addresses */
    int64_t port;                       /* port (-p) */
    int64_t io_threads;                 /* io-threads: 0 = one per CPU, at most KV_SERVER_MAX_THREADS */
    int64_t maxclients;                 /* maxclients */
    char *requirepass;                  /* requirepass: empty = no password */
    int64_t timeout;                    /* timeout: idle seconds before a client is closed; 0 = never */
    int64_t tcp_backlog;                /* tcp-backlog */
    int64_t tcp_keepalive;              /* tcp-keepalive: seconds; 0 = off */
    uint64_t proto_max_bulk_len;        /* proto-max-bulk-len */
    uint64_t client_query_buffer_limit; /* client-query-buffer-limit */
    uint64_t client_output_pause_limit; /* client-output-pause-limit: back-pressure threshold */
    uint64_t shutdown_timeout;          /* shutdown-timeout (ms): how long a stop waits for replies */
    int log_level;                      /* log-level: index into debug|info|warning|error */
    char *log_file;                     /* log-file: empty = stderr */
    char *cluster_config;               /* cluster-config: empty = a single instance (main.c reads it) */
} kv_server_config_t;

extern const rp_conf_def_t kv_server_conf_defs[];

#define KV_SERVER_MAX_THREADS 16

/* One request handed to the dispatch function. */
typedef struct kv_call {
    kv_server_t *server;
    kv_client_t *client;
    int argc;
    const kv_resp_arg_t *argv; /* slices of the connection's input; valid during the call only */
    kv_resp_out_t *out;        /* append exactly one reply */
    uint64_t gate;             /* out: WAL position that must be durable before the reply is sent */
    const char *name;          /* the dispatcher's name for the command (for error texts) */
} kv_call_t;

typedef struct kv_server_hooks {
    void *ctx;
    /* Runs on each worker thread before it serves; returns that thread's context (may be NULL). */
    void *(*thread_start)(void *ctx, int worker);
    void (*thread_stop)(void *ctx, void *thread_ctx);
    /* Executes one request (argc >= 1) on a worker thread; must append exactly one reply. */
    void (*dispatch)(void *thread_ctx, kv_call_t *call);
} kv_server_hooks_t;

typedef struct kv_server_setup {
    kv_server_hooks_t hooks;
    bool gate_replies; /* hold replies until durable (sync commit); false = ignore gates */
    uint64_t arg_max;  /* the largest argument a command can use (KV_VALUE_MAX) */
} kv_server_setup_t;

/* Validates the configuration (returns RP_ECONFIG with a report on nonsense) and builds the server.
 * The configuration is copied. */
int kv_server_create(const kv_server_config_t *cfg, const kv_server_setup_t *setup, kv_server_t **out);
/* Binds every listener and starts the workers. On failure (address in use, ...) nothing is left open
 * and the report says which address and what to do. */
int kv_server_start(kv_server_t *srv);
int kv_server_port(const kv_server_t *srv);
int kv_server_threads(const kv_server_t *srv);
/* The WAL is durable up to pos. Called on the WAL writer thread; lock-free, at most one eventfd write
 * per worker that has replies waiting for a position <= pos. */
void kv_server_durable(kv_server_t *srv, uint64_t pos);
/* Stops: listeners close, no further request is read, replies already produced are sent once durable
 * (for at most shutdown-timeout), then every connection closes and the workers are joined. */
void kv_server_stop(kv_server_t *srv);
/* Frees the server. Call after the WAL writer can no longer call kv_server_durable(). */
void kv_server_destroy(kv_server_t *srv);

typedef struct kv_server_stats {
    uint64_t uptime_ms;
    int threads;
    int port;
    uint64_t connected_clients;
    uint64_t maxclients;
    uint64_t total_connections_received;
    uint64_t rejected_connections;
    uint64_t total_commands_processed;
    uint64_t total_error_replies;
    uint64_t total_net_input_bytes;
    uint64_t total_net_output_bytes;
    uint64_t instantaneous_ops_per_sec;
    uint64_t replies_gated;       /* replies that had to wait for the WAL */
    uint64_t clients_waiting_wal; /* connections with replies waiting for the WAL right now */
    uint64_t durable_pos;         /* last position reported by kv_server_durable() */
    uint64_t paused_reads;        /* times a client's reading was paused by back-pressure */
} kv_server_stats_t;

void kv_server_get_stats(kv_server_t *srv, kv_server_stats_t *st);
const kv_server_config_t *kv_server_config(const kv_server_t *srv);

/* CLIENT LIST: one line per connection ("id=... addr=... \n"), appended to buf. */
void kv_server_client_list(kv_server_t *srv, kv_resp_out_t *buf);

/* CLIENT KILL filters; unset fields match everything. */
typedef struct kv_kill_filter {
    bool has_id;
    uint64_t id;
    const char *addr;  /* "ip:port" of the peer */
    const char *laddr; /* "ip:port" of the local end */
    bool has_maxage;
    uint64_t maxage_s; /* only clients older than this */
    bool skipme;       /* never the calling client */
} kv_kill_filter_t;

/* Closes the matching connections (the caller's own after its reply); returns how many matched. */
int kv_server_kill_clients(kv_server_t *srv, kv_client_t *self, const kv_kill_filter_t *f);

/* ---- the calling connection (only from the dispatch function, on its own worker) ---------------- */

uint64_t kv_client_id(const kv_client_t *c);
bool kv_client_authenticated(const kv_client_t *c);
/* Changing it also changes the request limits (unauthenticated clients get Redis' small ones). */
void kv_client_set_authenticated(kv_client_t *c, bool yes);
/* The name set with CLIENT SETNAME, "" if none. */
const char *kv_client_name(const kv_client_t *c);
/* which: 0 = name, 1 = lib-name, 2 = lib-ver; len 0 clears. The caller validates the text. */
void kv_client_set_label(kv_client_t *c, int which, const char *s, size_t len);
/* Records the command being run, for CLIENT LIST's cmd= field (name must have static storage). */
void kv_client_set_command(kv_client_t *c, const char *name);
/* Send what has been produced (once durable) and then close: QUIT, CLIENT KILL of oneself. */
void kv_client_close_after_reply(kv_client_t *c);
/* CLIENT INFO: this connection's line (with the trailing "\n") appended to buf. */
void kv_client_info(kv_client_t *c, kv_resp_out_t *buf);

#endif
