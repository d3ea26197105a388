/*
 * main.c - respoold, the reference database: a Redis-protocol key-value server on a respool instance
 *
 *   respoold -D DATADIR --volume PATH [--port 6380] [--instance N] [-c respool.conf] [--key value ...]
 *   respoold --cluster-config FILE --instance N [--key value ...]      (a member of a cluster)
 *
 * Every key of the library's table (rp_instance_conf_defs) and of the server's (kv_server_conf_defs)
 * can be set in the INI file and overridden on the command line; --help lists them all.
 *
 * With cluster-config, the member's section of the cluster file (docs/cluster.md) supplies port, bind
 * (its host), data-dir and volume; they rank between the defaults and what -c and the command line
 * say, so an explicit setting still wins (load_cluster()). The loaded configuration reaches the
 * instance as rp_instance_config_t.cluster.
 *
 * Start: configuration -> log -> signals blocked in every thread (they are taken from a signalfd by
 * the main thread) -> the store's WAL resource manager -> rp_instance_open (data directory lock, volume
 * slot, recovery, WAL writer) ->
 * kv_db_open -> the server, whose replies the WAL writer releases through rp_instance_on_durable ->
 * one log line saying where it listens. A failure at any step prints the report (message, DETAIL,
 * HINT) and exits with status 1, after undoing the steps already taken.
 *
 * Stop (SIGTERM or SIGINT): the server stops accepting and reading, sends the replies that become
 * durable, closes its clients and joins its threads; then the store closes and the instance takes its
 * shutdown checkpoint. The server object is freed last, because the WAL writer may call it until the
 * instance is closed.
 */
#include "common/util.h"
#include "kv/commands.h"
#include "kv/db.h"
#include "kv/server.h"
#include "respool/cluster.h"
#include "respool/config.h"
#include "respool/error.h"
#include "respool/instance.h"
#include "respool/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define SUB "kv"

struct cli {
    char *config_file;
    bool help;
    bool version;
};

static int on_option(const char *name, const char *value, void *arg)
{
    struct cli *cli = arg;
    if (strcmp(name, "c") == 0 || strcmp(name, "config") == 0) {
        free(cli->config_file);
        cli->config_file = rp_xstrdup(value);
    } else if (strcmp(name, "h") == 0 || strcmp(name, "help") == 0) {
        cli->help = true;
    } else if (strcmp(name, "version") == 0) {
        cli->version = true;
    }
    return 0;
}

static void usage(const rp_conf_table_t *tables, int n)
{
    printf("respoold - the respool reference database (a Redis-protocol key-value store)\n\n"
           "Usage: respoold -D DATADIR --volume PATH [--port 6380] [--instance N] [-c FILE] [--key value ...]\n"
           "       respoold --cluster-config FILE --instance N [-c FILE] [--key value ...]\n\n"
           "  -c, --config FILE              INI file with any of the keys below; the command line wins\n"
           "  -h, --help                     this text\n"
           "      --version                  print the version\n\n"
           "Keys (also valid in the configuration file; docs/configuration.md explains each):\n");
    rp_conf_usage(tables, n, stdout);
}

/* Prints the failure's report where an operator starting the program sees it: the log, and standard
 * error as well when the log goes to a file. */
static void report_failure(bool log_to_file)
{
    rp_log_report(RP_LOG_FATAL, SUB);
    if (log_to_file) {
        rp_log_close();
        rp_log_report(RP_LOG_FATAL, SUB);
    }
}

/* The instance id given explicitly (file or command line), found by reading them over a sentinel. */
#define INSTANCE_UNSET (-1)

/*
 * --cluster-config: loads the cluster file and ranks the member's settings between the defaults and
 * the explicit ones: defaults, then the member's port, bind, data-dir and volume, then the -c file and
 * the command line again. --instance must be explicit: guessing member 0 would start the wrong member.
 */
static int load_cluster(const rp_conf_table_t *tables, int argc, char **argv, const char *const *flags,
                        const char *const *with_value, struct cli *cli, rp_cluster_config_t **out)
{
    rp_instance_config_t *icfg = tables[0].base;
    kv_server_config_t *scfg = tables[1].base;
    rp_cluster_config_t *cl = rp_xmalloc(sizeof(*cl));
    char *path = rp_xstrdup(scfg->cluster_config), bind[1024], origin[PATH_MAX + 64];
    const rp_cluster_member_t *m = NULL;
    int rc = rp_cluster_config_load(path, cl);
    for (int pass = 0; rc == 0 && pass < 2; pass++) {
        /* pass 0 finds the member, pass 1 puts its settings under the explicit ones */
        rc = rp_conf_defaults(tables, 2);
        icfg->instance = INSTANCE_UNSET;
        for (int k = 0; pass == 1 && rc == 0 && k < 4; k++) {
            static const char *const keys[] = {"port", "bind", "data-dir", "volume"};
            char port[16];
            snprintf(port, sizeof(port), "%d", m->port);
            const char *values[] = {port, bind, m->data_dir, cl->volume};
            rc = rp_conf_set(tables, 2, keys[k], values[k], origin);
        }
        if (rc == 0 && cli->config_file)
            rc = rp_conf_load_file(tables, 2, cli->config_file);
        if (rc == 0)
            rc = rp_conf_parse_args(tables, 2, argc, argv, flags, with_value, on_option, cli);
        if (rc || pass == 1)
            break;
        char ids[256] = "";
        for (int i = 0; i < cl->nmembers; i++)
            snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%d", i ? ", " : "", cl->members[i].id);
        if (icfg->instance == INSTANCE_UNSET) {
            rc = rp_error(RP_ECONFIG, "no instance id given with cluster-config \"%s\"", path);
            rp_error_hint("Say which member this is with --instance N (the members of that file are %s).", ids);
        } else if (!(m = rp_cluster_member(cl, (int)icfg->instance))) {
            rc = rp_error(RP_ECONFIG, "instance %d is not a member of cluster \"%s\"", (int)icfg->instance, path);
            rp_error_detail("Its members are %s.", ids);
            rp_error_hint("Start a member of the file, or add a section [instance.%d] to it.", (int)icfg->instance);
        } else {
            rc = rp_cluster_member_bind(m, bind, sizeof(bind));
            snprintf(origin, sizeof(origin), "the cluster configuration \"%s\" [instance.%d]", cl->path, m->id);
        }
    }
    if (rc == 0 && strcmp(icfg->volume, cl->volume) != 0)
        rp_warn(SUB, "volume \"%s\" was given explicitly, but cluster \"%s\" uses \"%s\": a member on another "
                "volume cannot join it", icfg->volume, cl->name, cl->volume);
    free(path);
    if (rc) {
        free(cl);
        return rc;
    }
    *out = cl;
    return 0;
}

static void on_durable(void *arg, uint64_t pos)
{
    kv_server_durable(arg, pos);
}

/* rp_instance_open's long waits give up on SIGTERM or SIGINT: they are blocked, so they wait as pending. */
static bool stop_pending(void *arg)
{
    (void)arg;
    sigset_t pending;
    return sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

static int wait_for_stop(int sfd)
{
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(sfd, &si, sizeof(si));
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(si)) {
            rp_err(SUB, "could not read the signal descriptor: %s; shutting down", strerror(errno));
            return SIGTERM;
        }
        if (si.ssi_signo == SIGHUP) {
            rp_info(SUB, "SIGHUP ignored: respoold reads its configuration only at start");
            continue;
        }
        return (int)si.ssi_signo;
    }
}

int main(int argc, char **argv)
{
    rp_instance_config_t icfg;
    kv_server_config_t scfg;
    memset(&icfg, 0, sizeof(icfg));
    memset(&scfg, 0, sizeof(scfg));
    rp_conf_table_t tables[2] = {{rp_instance_conf_defs, &icfg}, {kv_server_conf_defs, &scfg}};
    static const char *const flags[] = {"h", "help", "version", NULL};
    static const char *const with_value[] = {"c", "config", NULL};
    struct cli cli = {0};
    rp_cluster_config_t *cluster = NULL; /* --cluster-config; the instance points at it until it closes */
    int status = 1;

    /* Defaults, then the file, then the command line. The command line is read twice: first to find
     * the file (and --help), then again over what the file set. */
    if (rp_conf_defaults(tables, 2) != 0 ||
        rp_conf_parse_args(tables, 2, argc, argv, flags, with_value, on_option, &cli) != 0) {
        report_failure(false);
        goto out_conf;
    }
    if (cli.help) {
        usage(tables, 2);
        status = 0;
        goto out_conf;
    }
    if (cli.version) {
        printf("respoold %s\n", RP_VERSION);
        status = 0;
        goto out_conf;
    }
    if (cli.config_file && (rp_conf_load_file(tables, 2, cli.config_file) != 0 ||
                            rp_conf_parse_args(tables, 2, argc, argv, flags, with_value, on_option, &cli) != 0)) {
        report_failure(false);
        goto out_conf;
    }

    if (scfg.cluster_config[0] &&
        load_cluster(tables, argc, argv, flags, with_value, &cli, &cluster) != 0) {
        report_failure(false);
        goto out_conf;
    }
    icfg.cluster = cluster;

    rp_log_set_level((rp_log_level_t)scfg.log_level);
    bool log_to_file = scfg.log_file[0] != '\0';
    if (log_to_file && rp_log_open(scfg.log_file) != 0) {
        report_failure(false);
        goto out_conf;
    }
    if (icfg.data_dir[0] == '\0' || icfg.volume[0] == '\0') {
        rp_error(RP_ECONFIG, "%s", icfg.data_dir[0] == '\0' ? "no data directory given" : "no volume given");
        rp_error_hint("Start respoold with -D DATADIR --volume PATH (or set data-dir and volume in the "
                      "configuration file); create a volume with `respoolctl volume init`.");
        report_failure(log_to_file);
        goto out_conf;
    }

    /* Signals: blocked before any thread exists, so that every thread inherits the mask and only the
     * signalfd sees them. A write to a closed connection must be an error, never a signal. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        rp_error(RP_ESYS, "could not create a signal descriptor: %s", strerror(errno));
        report_failure(log_to_file);
        goto out_conf;
    }

    rp_instance_t *inst = NULL;
    kv_db_t *db = NULL;
    kv_commands_t *cmds = NULL;
    kv_server_t *srv = NULL;
    kv_db_register_rmgr(); /* recovery, inside rp_instance_open(), replays the store's records */
    icfg.interrupted = stop_pending;
    if (rp_instance_open(&icfg, &inst) != 0) {
        report_failure(log_to_file);
        goto out_signals;
    }
    if (kv_db_open(inst, &db) != 0) {
        report_failure(log_to_file);
        goto out_instance;
    }
    kv_commands_setup_t cs = {
        .db = db,
        .inst = inst,
        .conf_tables = tables,
        .nconf = 2,
        .config_file = cli.config_file ? cli.config_file : "",
    };
    if (kv_commands_create(&cs, &cmds) != 0) {
        report_failure(log_to_file);
        goto out_db;
    }
    bool sync = rp_instance_sync_commit(inst);
    kv_server_setup_t ss = {
        .hooks = kv_commands_hooks(cmds),
        .gate_replies = sync,
        .arg_max = KV_VALUE_MAX,
    };
    if (kv_server_create(&scfg, &ss, &srv) != 0) {
        report_failure(log_to_file);
        goto out_cmds;
    }
    /* From here on the WAL writer may call the server; it is freed only after the instance closed. */
    rp_instance_on_durable(inst, on_durable, srv);
    kv_server_durable(srv, rp_instance_durable_pos(inst));
    if (kv_server_start(srv) != 0) {
        report_failure(log_to_file);
        goto out_db_close;
    }
    rp_info(SUB,
            "respoold %s ready: listening on %s port %d; instance %d (slot %d) of volume \"%s\"; data directory "
            "\"%s\"; %d I/O threads; %s commit",
            RP_VERSION, scfg.bind, kv_server_port(srv), (int)icfg.instance, rp_instance_slot(inst), icfg.volume,
            icfg.data_dir, kv_server_threads(srv), sync ? "sync" : "async");
    int sig = wait_for_stop(sfd);
    rp_info(SUB, "received %s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    kv_server_stop(srv);
    status = 0;

out_db_close:
    kv_db_close(db);
    db = NULL;
    rp_instance_close(inst); /* shutdown checkpoint; the WAL writer is gone afterwards */
    inst = NULL;
    kv_server_destroy(srv);
    if (status == 0)
        rp_info(SUB, "respoold stopped");
out_cmds:
    kv_commands_destroy(cmds);
out_db:
    if (db)
        kv_db_close(db);
out_instance:
    if (inst)
        rp_instance_close(inst);
out_signals:
    close(sfd);
out_conf:
    if (cluster)
        explicit_bzero(cluster->secret, sizeof(cluster->secret));
    free(cluster);
    free(cli.config_file);
    rp_conf_free(tables, 2);
    return status;
}
