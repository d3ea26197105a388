/*
 * server_config.c - the configuration keys of respoold's server (the library's own keys are in
 * rp_instance_conf_defs)
 *
 * Defaults follow Redis where Redis has the same key, so that an operator's habits carry over; the
 * exceptions are the port (6380, so that respoold and a redis-server can run side by side) and
 * client-output-pause-limit, which Redis does not have (see docs/configuration.md).
 *
 * Every key here must be documented in docs/configuration.md; tests/unit/test_config_docs.c fails
 * otherwise.
 *
 * Interface:
 *   kv_server_conf_defs   the table (see respool/config.h)
 */
#include "kv/server.h"

#include <stddef.h>

static const char *const log_levels[] = {"debug", "info", "warning", "error", NULL};

#define OFF(field) offsetof(kv_server_config_t, field)

const rp_conf_def_t kv_server_conf_defs[] = {
    {"bind", 0, RP_CONF_STRING, "127.0.0.1", 0, 0, NULL, OFF(bind),
     "Addresses to listen on, separated by spaces (IPv4 or IPv6; 0.0.0.0 for every interface)."},
    {"port", 'p', RP_CONF_INT, "6380", 1, 65535, NULL, OFF(port), "TCP port for Redis clients."},
    {"io-threads", 0, RP_CONF_INT, "0", 0, 16, NULL, OFF(io_threads),
     "Worker threads serving connections; 0 means one per CPU (at most 16)."},
    {"maxclients", 0, RP_CONF_INT, "10000", 1, 1000000, NULL, OFF(maxclients),
     "Most connections served at once; more are refused with an error."},
    {"requirepass", 0, RP_CONF_STRING, "", 0, 0, NULL, OFF(requirepass),
     "Password clients must give with AUTH or HELLO; empty means none."},
    {"timeout", 0, RP_CONF_INT, "0", 0, 31536000, NULL, OFF(timeout),
     "Close a client idle for this many seconds; 0 never closes idle clients."},
    {"tcp-backlog", 0, RP_CONF_INT, "511", 1, 65535, NULL, OFF(tcp_backlog),
     "Length of each listener's queue of connections not yet accepted."},
    {"tcp-keepalive", 0, RP_CONF_INT, "300", 0, 86400, NULL, OFF(tcp_keepalive),
     "Seconds of silence before TCP keepalive probes a client; 0 turns keepalive off."},
    {"proto-max-bulk-len", 0, RP_CONF_SIZE, "512M", 1024 * 1024, 1LL << 40, NULL, OFF(proto_max_bulk_len),
     "Longest bulk string a request may announce; longer is a protocol error that closes the connection."},
    {"client-query-buffer-limit", 0, RP_CONF_SIZE, "1G", 1024 * 1024, 1LL << 40, NULL,
     OFF(client_query_buffer_limit),
     "Most bytes buffered for one client's unfinished request; beyond it "
     "the client is disconnected."},
    {"client-output-pause-limit", 0, RP_CONF_SIZE, "1M", 16 * 1024, 1LL << 34, NULL,
     OFF(client_output_pause_limit),
     "Unsent reply bytes above which a client's requests are not read "
     "until it has received half of them."},
    {"shutdown-timeout", 0, RP_CONF_DURATION, "10s", 0, 3600 * 1000, NULL, OFF(shutdown_timeout),
     "How long a clean shutdown waits for replies to become durable and reach their clients."},
    {"log-level", 0, RP_CONF_ENUM, "info", 0, 0, log_levels, OFF(log_level),
     "Least important log messages written: debug, info, warning or error."},
    {"log-file", 0, RP_CONF_STRING, "", 0, 0, NULL, OFF(log_file),
     "File the log is appended to; empty means standard error."},
    {"cluster-config", 0, RP_CONF_STRING, "", 0, 0, NULL, OFF(cluster_config),
     "Cluster configuration file: run as member --instance of that cluster; empty means a single instance."},
    {0},
};
