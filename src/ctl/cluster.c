/*
 * cluster.c - `respoolctl cluster init|start|stop|status`: create a cluster, run its local members
 *
 *   init    writes DIR/cluster.conf and DIR/cluster.key, initializes DIR/volume, makes DIR/dataN
 *   start   starts every local member's respoold (detached, or attached with --foreground), waits
 *           until each answers PING, prints a table
 *   stop    SIGTERM to every local member that runs, waits, reports each
 *   status  per member: process, PING, and the INFO "cluster" section
 *
 * "Local" is rp_cluster_member_is_local(); a member of another host is listed, never started or
 * stopped from here. Whether a member runs is decided by cluster_proc.c (lock file verified against
 * /proc). See src/ctl/README.md, "Cluster commands", for the state of each member through these
 * commands and the reasons behind them.
 */
#include "ctl/ctl.h"

#include "cm/cm_int.h"
#include "common/util.h"
#include "ctl/cluster_int.h"
#include "respool/cluster.h"
#include "respool/error.h"
#include "respool/log.h"
#include "respool/volume.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- shared ------------------------------------------------------------------------------------- */

rp_cluster_config_t *ctl_load_cluster_config(const char *path)
{
    rp_cluster_config_t *cfg = rp_xmalloc(sizeof(*cfg));
    if (rp_cluster_config_load(path, cfg) != 0) {
        ctl_print_report();
        free(cfg);
        return NULL;
    }
    return cfg;
}

static bool parse_int_opt(const char *text, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v;
    if (!rp_parse_i64(text, strlen(text), &v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, mode) != 0 && errno != EEXIST ? -1 : 0;
}

static const char *state_text(const ctl_member_state_t *st, char *buf, size_t size)
{
    if (st->pid)
        snprintf(buf, size, "running%s", st->unverified ? " (unverified)" : "");
    else if (st->stale_pid)
        snprintf(buf, size, "not running (pid %d of its last run is gone: it did not stop cleanly)",
                 (int)st->stale_pid);
    else
        snprintf(buf, size, "not running");
    return buf;
}

/* --instance N, repeatable: a set of ids (bit N), 0 meaning every member. */
bool ctl_add_instance(const char *text, uint64_t *only)
{
    int64_t id;
    if (!parse_int_opt(text, 0, RP_VOLUME_MAX_INSTANCES - 1, &id))
        return false;
    *only |= 1ULL << id;
    return true;
}

bool ctl_selected(const rp_cluster_member_t *m, uint64_t only)
{
    return only == 0 || (only >> m->id) & 1;
}

/* Every id of the selection is a member; prints the error and returns false otherwise. */
static bool selection_valid(const rp_cluster_config_t *cfg, uint64_t only)
{
    for (int id = 0; id < RP_VOLUME_MAX_INSTANCES; id++)
        if ((only >> id) & 1 && !rp_cluster_member(cfg, id)) {
            fprintf(stderr, "respoolctl: error: instance %d is not a member of \"%s\"\n", id, cfg->path);
            return false;
        }
    return true;
}

rp_cluster_config_t *ctl_load_selection(const char *config, uint64_t only, int *status)
{
    if (!config) {
        *status = ctl_usage_error("Pass --config FILE (written by `respoolctl cluster init`).", "no --config given");
        return NULL;
    }
    rp_cluster_config_t *cfg = ctl_load_cluster_config(config);
    if (!cfg) {
        *status = CTL_EXIT_FAILED;
        return NULL;
    }
    if (!selection_valid(cfg, only)) {
        free(cfg);
        *status = CTL_EXIT_USAGE;
        return NULL;
    }
    return cfg;
}

/* ---- init --------------------------------------------------------------------------------------- */

static void init_usage(FILE *out)
{
    fputs("usage: respoolctl cluster init --instances N --dir DIR [options]\n"
          "\n"
          "Creates a cluster in DIR: the configuration DIR/cluster.conf, the secret DIR/cluster.key (0600, 32\n"
          "random bytes), the shared volume DIR/volume and one data directory DIR/data0 .. DIR/dataN-1 per\n"
          "instance. Instance i gets port BASE+i and cluster port CLUSTER_BASE+i on HOST.\n"
          "\n"
          "  --instances N            members, 1 to 64\n"
          "  --dir DIR                where everything goes (created if missing)\n"
          "  --base-port P            RESP port of instance 0 (default 6380)\n"
          "  --cluster-base-port P    cluster port of instance 0 (default 16380)\n"
          "  --host HOST              host of every member (default 127.0.0.1)\n"
          "  --size SIZE              volume size (default 2G)\n"
          "  --wal-size SIZE          WAL region per instance slot (default 64M)\n"
          "  --page-size SIZE         4k, 8k (default) or 16k\n"
          "  --max-instances M        volume slots, N to 64 (default the larger of N and 16: room to grow)\n"
          "  --partitions P           directory partitions, a power of two (default 1024)\n"
          "  --request-timeout T      deadline of a request between instances (default 5s)\n"
          "  --join-timeout T         how long a starting member waits for the others (default 60s)\n"
          "  --name NAME              cluster name (default respool)\n"
          "  --force                  replace an existing configuration, secret and volume (never a volume\n"
          "                           in use)\n"
          "  --quiet                  no progress and no summary\n",
          out);
}

int ctl_cluster_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"instances", required_argument, NULL, 'n'}, {"dir", required_argument, NULL, 'd'},
        {"base-port", required_argument, NULL, 'p'}, {"cluster-base-port", required_argument, NULL, 'c'},
        {"host", required_argument, NULL, 'H'}, {"size", required_argument, NULL, 's'},
        {"wal-size", required_argument, NULL, 'w'}, {"page-size", required_argument, NULL, 'P'},
        {"max-instances", required_argument, NULL, 'm'}, {"partitions", required_argument, NULL, 'x'},
        {"request-timeout", required_argument, NULL, 't'}, {"join-timeout", required_argument, NULL, 'J'},
        {"name", required_argument, NULL, 'N'},
        {"force", no_argument, NULL, 'f'}, {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'},
        {0},
    };
    int64_t n = 0, base = 6380, cbase = 16380, max_inst = 0, parts = RP_CLUSTER_PARTITIONS_DEFAULT;
    uint64_t size = 2 * RP_GiB, wal = 64 * RP_MiB, page = 0, timeout = 5000, join_timeout = 60000;
    const char *dir = NULL, *host = "127.0.0.1", *name = "respool";
    bool force = false, quiet = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!parse_int_opt(optarg, 1, RP_VOLUME_MAX_INSTANCES, &n))
                return ctl_usage_error("Give a number from 1 to 64.", "invalid --instances \"%s\"", optarg);
            break;
        case 'd':
            dir = optarg;
            break;
        case 'p':
        case 'c':
            if (!parse_int_opt(optarg, 1, 65535, c == 'p' ? &base : &cbase))
                return ctl_usage_error("Give a port from 1 to 65535.", "invalid --%s \"%s\"",
                                       c == 'p' ? "base-port" : "cluster-base-port", optarg);
            break;
        case 'H':
            host = optarg;
            break;
        case 's':
        case 'w':
        case 'P': {
            uint64_t *dst = c == 's' ? &size : c == 'w' ? &wal : &page;
            if (rp_parse_size(optarg, dst) != 0)
                return ctl_usage_error("Sizes look like 16k, 64M or 2G.", "invalid --%s \"%s\"",
                                       c == 's' ? "size" : c == 'w' ? "wal-size" : "page-size", optarg);
            break;
        }
        case 'm':
            if (!parse_int_opt(optarg, 1, RP_VOLUME_MAX_INSTANCES, &max_inst))
                return ctl_usage_error("Give a number from 1 to 64.", "invalid --max-instances \"%s\"", optarg);
            break;
        case 'x':
            if (!parse_int_opt(optarg, 1, 65536, &parts))
                return ctl_usage_error("Give a power of two such as 1024.", "invalid --partitions \"%s\"", optarg);
            break;
        case 't':
            if (rp_parse_duration(optarg, &timeout) != 0)
                return ctl_usage_error("Durations look like 500ms or 5s.", "invalid --request-timeout \"%s\"",
                                       optarg);
            break;
        case 'J':
            if (rp_parse_duration(optarg, &join_timeout) != 0)
                return ctl_usage_error("Durations look like 0s, 10s or 2min.", "invalid --join-timeout \"%s\"",
                                       optarg);
            break;
        case 'N':
            name = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            init_usage(stdout);
            return CTL_EXIT_OK;
        default:
            init_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return ctl_usage_error("Run `respoolctl cluster init --help`.", "unexpected argument \"%s\"", argv[optind]);
    if (n == 0)
        return ctl_usage_error("Pass --instances N, e.g. --instances 3.", "no --instances given");
    if (!dir)
        return ctl_usage_error("Pass --dir DIR: the configuration, secret, volume and data directories go there.",
                               "no --dir given");
    if (max_inst == 0)
        max_inst = RP_MAX(n, 16);
    if (max_inst < n)
        return ctl_usage_error("Every instance needs its own volume slot; raise --max-instances or lower --instances.",
                               "--max-instances %" PRId64 " is less than --instances %" PRId64, max_inst, n);
    if (base + n - 1 > 65535 || cbase + n - 1 > 65535)
        return ctl_usage_error("Choose lower base ports.", "the ports of %" PRId64 " instances from %" PRId64
                               " would go past 65535", n, base + n - 1 > 65535 ? base : cbase);

    if (mkdir_p(dir, 0755) != 0) {
        int e = errno;
        fprintf(stderr, "respoolctl: error: could not create directory \"%s\": %s\n", dir, strerror(e));
        return CTL_EXIT_FAILED;
    }
    char absdir[PATH_MAX];
    if (!realpath(dir, absdir)) {
        fprintf(stderr, "respoolctl: error: could not resolve \"%s\": %s\n", dir, strerror(errno));
        return CTL_EXIT_FAILED;
    }

    rp_cluster_config_t *cfg = rp_xcalloc(1, sizeof(*cfg));
    char conf[PATH_MAX];
    int status = CTL_EXIT_FAILED;
    snprintf(conf, sizeof(conf), "%s/cluster.conf", absdir);
    snprintf(cfg->path, sizeof(cfg->path), "%s", conf);
    snprintf(cfg->name, sizeof(cfg->name), "%s", name);
    snprintf(cfg->volume, sizeof(cfg->volume), "%s/volume", absdir);
    snprintf(cfg->secret_file, sizeof(cfg->secret_file), "%s/cluster.key", absdir);
    cfg->partitions = (uint32_t)parts;
    cfg->request_timeout_ms = timeout;
    cfg->join_timeout_ms = join_timeout;
    cfg->nmembers = (int)n;
    for (int i = 0; i < n; i++) {
        rp_cluster_member_t *m = &cfg->members[i];
        m->id = i;
        snprintf(m->host, sizeof(m->host), "%s", host);
        m->port = (int)base + i;
        m->cluster_port = (int)cbase + i;
        snprintf(m->data_dir, sizeof(m->data_dir), "%s/data%d", absdir, i);
    }
    /* Everything that can be wrong with the options is found before anything is written. */
    if (rp_cm_config_check(cfg, NULL) != 0) {
        ctl_print_report();
        status = CTL_EXIT_USAGE;
        goto out;
    }
    struct stat st;
    const char *existing = stat(conf, &st) == 0 ? conf : stat(cfg->secret_file, &st) == 0 ? cfg->secret_file : NULL;
    if (existing && !force) {
        fprintf(stderr, "respoolctl: error: \"%s\" already exists\n", existing);
        fprintf(stderr, "detail: %s holds a cluster already; initializing it again replaces its secret and destroys "
                        "its volume.\n", absdir);
        fprintf(stderr, "hint: Pass --force to replace the cluster, or choose another --dir.\n");
        goto out;
    }
    if (getrandom(cfg->secret, sizeof(cfg->secret), 0) != (ssize_t)sizeof(cfg->secret)) {
        fprintf(stderr, "respoolctl: error: could not get random bytes for the secret: %s\n", strerror(errno));
        goto out;
    }

    rp_log_set_level(RP_LOG_INFO);
    rp_volume_init_opts_t vo = {
        .size = size, .page_size = (uint32_t)page, .max_instances = (uint32_t)max_inst, .wal_size = wal,
        .label = cfg->name, .force = force, .quiet = quiet,
    };
    int rc = rp_volume_init(cfg->volume, &vo);
    if (rc) {
        ctl_print_report();
        status = rc == RP_EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_FAILED;
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (mkdir(cfg->members[i].data_dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "respoolctl: error: could not create data directory \"%s\": %s\n",
                    cfg->members[i].data_dir, strerror(errno));
            goto out;
        }
    if (rp_cluster_config_write(conf, cfg) != 0) {
        ctl_print_report();
        goto out;
    }
    /* Read back what was written, with the reader every member uses. */
    rp_cluster_config_t *check = ctl_load_cluster_config(conf);
    if (!check)
        goto out;
    free(check);

    if (!quiet) {
        rp_volume_t *vol;
        char uuid[40] = "?", a[32], b[32];
        if (rp_volume_open(cfg->volume, RP_VOLUME_RDONLY, &vol) == 0) {
            rp_uuid_format(rp_volume_sb(vol)->cluster_uuid, uuid);
            rp_volume_close(vol);
        }
        printf("initialized cluster \"%s\" in %s\n", cfg->name, absdir);
        printf("  configuration  %s\n", conf);
        printf("  secret         %s (mode 0600)\n", cfg->secret_file);
        printf("  volume         %s: cluster %s, %s, %" PRId64 " instance slots, %s of WAL each\n", cfg->volume, uuid,
               rp_format_size(size, a, sizeof(a)), max_inst, rp_format_size(wal, b, sizeof(b)));
        printf("\n  %-3s %-16s %-6s %-13s %s\n", "id", "host", "port", "cluster-port", "data-dir");
        for (int i = 0; i < n; i++) {
            const rp_cluster_member_t *m = &cfg->members[i];
            printf("  %-3d %-16s %-6d %-13d %s\n", m->id, m->host, m->port, m->cluster_port, m->data_dir);
        }
        printf("\nstart it with: respoolctl cluster start --config %s\n", conf);
    }
    status = CTL_EXIT_OK;
out:
    explicit_bzero(cfg->secret, sizeof(cfg->secret));
    free(cfg);
    return status;
}

/* ---- start -------------------------------------------------------------------------------------- */

enum run_state { R_SKIP, R_REMOTE, R_ALREADY, R_PENDING, R_UP, R_FAILED, R_TIMEOUT, R_EXITED };

typedef struct run {
    const rp_cluster_member_t *m;
    enum run_state state;
    pid_t pid;
    bool ours;              /* started by this respoolctl (our child) */
    int wstatus;            /* when it exited */
    off_t start_off;        /* the log's size before the start */
    off_t tail_off;         /* --foreground: printed up to here */
    uint64_t stop_ns;       /* when SIGTERM was sent */
    char log[PATH_MAX + 32];
    char note[160];
} run_t;

static void start_usage(FILE *out)
{
    fputs("usage: respoolctl cluster start --config FILE [--foreground] [--respoold PATH] [--timeout SECONDS]\n"
          "                                [--instance N]... [-- RESPOOLD-ARGS...]\n"
          "\n"
          "Starts respoold for every member of FILE on this host (`respoold --cluster-config FILE --instance N`,\n"
          "log in DATADIR/respoold.log, in a session of its own so it outlives respoolctl), waits until each\n"
          "answers PING and prints a table. A member that already runs is reported, not started again.\n"
          "\n"
          "  --config FILE       the cluster configuration (`respoolctl cluster init` writes one)\n"
          "  --foreground        stay attached: print the members' log lines prefixed with their id, and on\n"
          "                      Ctrl-C or SIGTERM stop them all cleanly (a second Ctrl-C kills them)\n"
          "  --respoold PATH     the program (default: respoold beside respoolctl)\n"
          "  --timeout SECONDS   how long to wait for each member to answer PING (default 60)\n"
          "  --stop-timeout SECONDS  --foreground: how long a stop waits before SIGKILL (default 30)\n"
          "  --instance N        only this member (repeat for several)\n"
          "  -- ARGS             further arguments for every respoold (e.g. -- --buffer-pool-size 256M)\n"
          "\n"
          "Exit status: 0 every selected local member answers; 3 one failed to start (its log is shown).\n",
          out);
}

static void print_table(run_t *runs, int n)
{
    printf("%-3s %-16s %-6s %-13s %-8s %s\n", "id", "host", "port", "cluster-port", "pid", "state");
    for (int i = 0; i < n; i++) {
        const run_t *r = &runs[i];
        if (r->state == R_SKIP)
            continue;
        char pid[16] = "-";
        if (r->pid)
            snprintf(pid, sizeof(pid), "%d", (int)r->pid);
        printf("%-3d %-16s %-6d %-13d %-8s %s\n", r->m->id, r->m->host, r->m->port, r->m->cluster_port, pid,
               r->note);
    }
    fflush(stdout);
}

static void describe_exit(int wstatus, char *buf, size_t size)
{
    if (WIFEXITED(wstatus))
        snprintf(buf, size, "exit status %d", WEXITSTATUS(wstatus));
    else if (WIFSIGNALED(wstatus))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
    else
        snprintf(buf, size, "wait status %d", wstatus);
}

/* --foreground: prints the complete new lines of each member's log, prefixed "[id] ". */
static void tail_logs(run_t *runs, int n)
{
    for (int i = 0; i < n; i++) {
        run_t *r = &runs[i];
        if (!r->ours)
            continue;
        FILE *f = fopen(r->log, "r");
        if (!f)
            continue;
        if (fseeko(f, r->tail_off, SEEK_SET) == 0) {
            char line[8192];
            while (fgets(line, sizeof(line), f)) {
                size_t len = strlen(line);
                if (line[len - 1] != '\n' && len < sizeof(line) - 1)
                    break; /* a partial line: print it when it is complete */
                printf("[%d] %s%s", r->m->id, line, line[len - 1] == '\n' ? "" : "\n");
                r->tail_off += (off_t)len;
            }
        }
        fclose(f);
    }
    fflush(stdout);
}

/* Reaps our children that exited; true if one did. */
static bool reap(run_t *runs, int n)
{
    bool any = false;
    for (int i = 0; i < n; i++) {
        run_t *r = &runs[i];
        if (!r->ours || r->state == R_EXITED || r->state == R_FAILED)
            continue;
        int ws;
        if (waitpid(r->pid, &ws, WNOHANG) == r->pid) {
            r->wstatus = ws;
            r->state = r->state == R_PENDING ? R_FAILED : R_EXITED;
            any = true;
        }
    }
    return any;
}

/* Reads pending signals; returns the last SIGINT/SIGTERM seen (0 if none) and counts them. */
static int read_signals(int sfd, int *interrupts)
{
    int got = 0;
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
            got = (int)si.ssi_signo;
            (*interrupts)++;
        }
    return got;
}

/* Waits for every pending member to answer PING, to exit, or for the deadline. */
static void wait_started(run_t *runs, int n, int timeout_s, bool foreground, int sfd, int *interrupts)
{
    uint64_t deadline = rp_now_ns() + (uint64_t)timeout_s * 1000000000ULL;
    for (;;) {
        reap(runs, n);
        bool pending = false;
        for (int i = 0; i < n; i++) {
            run_t *r = &runs[i];
            if (r->state != R_PENDING)
                continue;
            double ms;
            char answer[256];
            if (ctl_member_ping(r->m, 500, &ms, answer, sizeof(answer)) == 0) {
                r->state = R_UP;
                continue;
            }
            rp_error_clear();
            if (rp_now_ns() > deadline)
                r->state = R_TIMEOUT;
            else
                pending = true;
        }
        if (foreground)
            tail_logs(runs, n);
        if (!pending)
            return;
        if (sfd >= 0) {
            struct pollfd p = {.fd = sfd, .events = POLLIN};
            if (poll(&p, 1, 100) > 0 && read_signals(sfd, interrupts))
                return; /* the caller stops what was started */
        } else {
            usleep(100000);
        }
    }
}

/* --foreground: SIGTERM to every member we started that still runs; wait, SIGKILL after the timeout or a
 * second interrupt; report each. Returns true if every one exited with status 0. */
static bool stop_ours(run_t *runs, int n, int sfd, int stop_timeout_s, int *interrupts)
{
    int live = 0;
    uint64_t t0 = rp_now_ns();
    for (int i = 0; i < n; i++) {
        run_t *r = &runs[i];
        if (r->ours && (r->state == R_UP || r->state == R_PENDING || r->state == R_TIMEOUT)) {
            kill(r->pid, SIGTERM);
            r->stop_ns = t0;
            live++;
        }
    }
    if (live)
        printf("respoolctl: stopping %d member%s (SIGTERM; Ctrl-C again kills them)\n", live, live == 1 ? "" : "s");
    fflush(stdout);
    int first_interrupts = *interrupts;
    bool killed = false;
    uint64_t deadline = t0 + (uint64_t)stop_timeout_s * 1000000000ULL;
    while (live > 0) {
        struct pollfd p = {.fd = sfd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0)
            read_signals(sfd, interrupts);
        reap(runs, n);
        tail_logs(runs, n);
        live = 0;
        for (int i = 0; i < n; i++)
            live += runs[i].ours && runs[i].stop_ns && runs[i].state != R_EXITED && runs[i].state != R_FAILED;
        if (live && !killed && (*interrupts > first_interrupts || rp_now_ns() > deadline)) {
            printf("respoolctl: %s: killing %d member%s (SIGKILL; the next start recovers from the WAL)\n",
                   *interrupts > first_interrupts ? "interrupted again" : "stop timeout", live, live == 1 ? "" : "s");
            for (int i = 0; i < n; i++)
                if (runs[i].ours && runs[i].stop_ns && runs[i].state != R_EXITED && runs[i].state != R_FAILED)
                    kill(runs[i].pid, SIGKILL);
            killed = true;
        }
    }
    tail_logs(runs, n);
    bool clean = true;
    for (int i = 0; i < n; i++) {
        run_t *r = &runs[i];
        if (!r->ours || !r->stop_ns)
            continue;
        char how[96];
        describe_exit(r->wstatus, how, sizeof(how));
        bool ok = WIFEXITED(r->wstatus) && WEXITSTATUS(r->wstatus) == 0;
        clean &= ok;
        printf("respoolctl: instance %d (pid %d) %s (%s)\n", r->m->id, (int)r->pid, ok ? "stopped" : "ended badly",
               how);
    }
    fflush(stdout);
    return clean;
}

int ctl_cluster_start(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},   {"foreground", no_argument, NULL, 'f'},
        {"respoold", required_argument, NULL, 'r'}, {"timeout", required_argument, NULL, 't'},
        {"stop-timeout", required_argument, NULL, 's'}, {"instance", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},           {0},
    };
    const char *config = NULL, *respoold_opt = NULL;
    bool foreground = false;
    int64_t timeout = 60, stop_timeout = 30;
    uint64_t only = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'f':
            foreground = true;
            break;
        case 'r':
            respoold_opt = optarg;
            break;
        case 't':
        case 's':
            if (!parse_int_opt(optarg, 1, 86400, c == 't' ? &timeout : &stop_timeout))
                return ctl_usage_error("Give a number of seconds.", "invalid --%s \"%s\"",
                                       c == 't' ? "timeout" : "stop-timeout", optarg);
            break;
        case 'i':
            if (!ctl_add_instance(optarg, &only))
                return ctl_usage_error("Give an instance id from 0 to 63.", "invalid --instance \"%s\"", optarg);
            break;
        case 'h':
            start_usage(stdout);
            return CTL_EXIT_OK;
        default:
            start_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    /* after "--": arguments for respoold (getopt_long stops there) */
    if (optind < argc && strcmp(argv[optind - 1], "--") != 0)
        return ctl_usage_error("Arguments for respoold go after \"--\".", "unexpected argument \"%s\"", argv[optind]);
    char *const *extra = optind < argc ? argv + optind : NULL;
    int status;
    rp_cluster_config_t *cfg = ctl_load_selection(config, only, &status);
    if (!cfg)
        return status;
    char respoold[PATH_MAX];
    if (ctl_find_respoold(respoold_opt, respoold, sizeof(respoold)) != 0) {
        ctl_print_report();
        free(cfg);
        return CTL_EXIT_FAILED;
    }

    /* Signals are blocked before the first child exists, so none is lost and a Ctrl-C while waiting
     * reaches the code that stops the members; children unblock them before exec. */
    int sfd = -1;
    sigset_t set, old;
    sigemptyset(&set);
    if (foreground) {
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGCHLD);
        sigprocmask(SIG_BLOCK, &set, &old);
        sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0) {
            fprintf(stderr, "respoolctl: error: could not create a signal descriptor: %s\n", strerror(errno));
            free(cfg);
            return CTL_EXIT_FAILED;
        }
    }

    run_t *runs = rp_xcalloc((size_t)cfg->nmembers, sizeof(run_t));
    int n = cfg->nmembers, nlocal = 0, interrupts = 0;
    status = CTL_EXIT_OK;
    ctl_launch_t launch = {.respoold = respoold, .config = cfg->path, .extra = extra, .die_with_parent = foreground};
    for (int i = 0; i < n; i++) {
        run_t *r = &runs[i];
        r->m = &cfg->members[i];
        ctl_log_path(r->m, r->log, sizeof(r->log));
        if (!ctl_selected(r->m, only)) {
            r->state = R_SKIP;
            continue;
        }
        if (!rp_cluster_member_is_local(r->m)) {
            r->state = R_REMOTE;
            snprintf(r->note, sizeof(r->note), "on another host: not started here");
            continue;
        }
        nlocal++;
        ctl_member_state_t st;
        ctl_member_running(r->m, &st);
        if (st.pid) {
            r->state = R_ALREADY;
            r->pid = st.pid;
            snprintf(r->note, sizeof(r->note), "already running");
            continue;
        }
        if (ctl_member_launch(&launch, r->m, &r->pid, &r->start_off) != 0) {
            ctl_print_report();
            r->state = R_FAILED;
            snprintf(r->note, sizeof(r->note), "could not be started");
            continue;
        }
        r->ours = true;
        r->state = R_PENDING;
        r->tail_off = r->start_off;
    }
    if (nlocal == 0) {
        print_table(runs, n);
        fprintf(stderr, "respoolctl: error: no %s of \"%s\" is on this host\n", only ? "selected member" : "member",
                cfg->path);
        fprintf(stderr, "hint: Run `respoolctl cluster start` on the hosts the configuration names, or correct their "
                        "\"host\".\n");
        status = CTL_EXIT_FAILED;
        goto out;
    }
    wait_started(runs, n, (int)timeout, foreground, sfd, &interrupts);

    bool failed = false;
    for (int i = 0; i < n; i++) {
        run_t *r = &runs[i];
        char how[96];
        switch (r->state) {
        case R_UP:
            snprintf(r->note, sizeof(r->note), "started");
            break;
        case R_FAILED:
            if (r->ours) {
                describe_exit(r->wstatus, how, sizeof(how));
                snprintf(r->note, sizeof(r->note), "failed: %s during start", how);
                r->pid = 0;
            }
            failed = true;
            break;
        case R_TIMEOUT:
            snprintf(r->note, sizeof(r->note), "failed: no answer to PING within %" PRId64 " s (still running)", timeout);
            failed = true;
            break;
        case R_PENDING:
            snprintf(r->note, sizeof(r->note), "interrupted during start");
            failed = true;
            break;
        default:
            break;
        }
    }
    print_table(runs, n);
    for (int i = 0; i < n; i++) {
        run_t *r = &runs[i];
        if (r->ours && (r->state == R_FAILED || r->state == R_TIMEOUT)) {
            fprintf(stderr, "\nrespoolctl: error: instance %d %s\n", r->m->id,
                    r->state == R_FAILED ? "did not start" : "did not answer PING in time");
            fprintf(stderr, "detail: last lines of %s:\n", r->log);
            ctl_log_tail(r->log, r->start_off, 15, "  | ", stderr);
            if (r->state == R_TIMEOUT)
                fprintf(stderr, "hint: It may still be recovering its WAL; watch `respoolctl cluster status --config %s`, "
                                "or stop it with `respoolctl cluster stop`.\n", cfg->path);
            else
                fprintf(stderr, "hint: Correct what the log says, then run `respoolctl cluster start` again: members that "
                                "run are left alone.\n");
        }
    }
    if (failed)
        status = CTL_EXIT_FAILED;
    if (!foreground)
        goto out;

    /* --foreground: stay attached until interrupted or until every member we started has ended. */
    if (failed || interrupts) {
        stop_ours(runs, n, sfd, (int)stop_timeout, &interrupts);
        status = CTL_EXIT_FAILED;
        goto out;
    }
    int ours = 0;
    for (int i = 0; i < n; i++)
        ours += runs[i].ours;
    printf("respoolctl: %d member%s running; Ctrl-C stops %s\n", ours, ours == 1 ? "" : "s",
           ours == 1 ? "it" : "them all");
    fflush(stdout);
    for (;;) {
        struct pollfd p = {.fd = sfd, .events = POLLIN};
        int got = 0;
        if (poll(&p, 1, 200) > 0)
            got = read_signals(sfd, &interrupts);
        reap(runs, n);
        tail_logs(runs, n);
        int live = 0;
        for (int i = 0; i < n; i++) {
            run_t *r = &runs[i];
            if (!r->ours)
                continue;
            if (r->state == R_EXITED && !r->stop_ns) {
                char how[96];
                describe_exit(r->wstatus, how, sizeof(how));
                printf("respoolctl: instance %d (pid %d) ended by itself (%s); last lines of its log are above\n",
                       r->m->id, (int)r->pid, how);
                r->stop_ns = rp_now_ns(); /* reported */
                if (!WIFEXITED(r->wstatus) || WEXITSTATUS(r->wstatus) != 0)
                    status = CTL_EXIT_FAILED;
            }
            live += r->state != R_EXITED;
        }
        fflush(stdout);
        if (got) {
            printf("respoolctl: received %s\n", got == SIGINT ? "SIGINT" : "SIGTERM");
            if (!stop_ours(runs, n, sfd, (int)stop_timeout, &interrupts))
                status = CTL_EXIT_FAILED;
            break;
        }
        if (live == 0) {
            printf("respoolctl: every member has ended\n");
            break;
        }
    }
out:
    if (sfd >= 0) {
        close(sfd);
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    free(runs);
    free(cfg);
    return status;
}

/* ---- stop --------------------------------------------------------------------------------------- */

static void stop_usage(FILE *out)
{
    fputs("usage: respoolctl cluster stop --config FILE [--timeout SECONDS] [--instance N]\n"
          "\n"
          "Sends SIGTERM to every member of FILE that runs on this host (the PID in DATADIR/respool.lock,\n"
          "checked against /proc: a respoold that holds that lock file), waits for each to finish its clean\n"
          "shutdown (final checkpoint) and reports it.\n"
          "\n"
          "  --timeout SECONDS   how long to wait (default 30)\n"
          "  --instance N        only this member (repeat for several)\n"
          "\n"
          "Exit status: 0 every selected local member is stopped; 3 one is still running.\n",
          out);
}

int ctl_cluster_stop(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"timeout", required_argument, NULL, 't'},
        {"instance", required_argument, NULL, 'i'}, {"help", no_argument, NULL, 'h'}, {0},
    };
    const char *config = NULL;
    int64_t timeout = 30;
    uint64_t only = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 't':
            if (!parse_int_opt(optarg, 1, 86400, &timeout))
                return ctl_usage_error("Give a number of seconds.", "invalid --timeout \"%s\"", optarg);
            break;
        case 'i':
            if (!ctl_add_instance(optarg, &only))
                return ctl_usage_error("Give an instance id from 0 to 63.", "invalid --instance \"%s\"", optarg);
            break;
        case 'h':
            stop_usage(stdout);
            return CTL_EXIT_OK;
        default:
            stop_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return ctl_usage_error("Run `respoolctl cluster stop --help`.", "unexpected argument \"%s\"", argv[optind]);
    int status;
    rp_cluster_config_t *cfg = ctl_load_selection(config, only, &status);
    if (!cfg)
        return status;
    int n = cfg->nmembers, nlocal = 0;
    status = CTL_EXIT_OK;
    run_t *runs = rp_xcalloc((size_t)n, sizeof(run_t));
    uint64_t t0 = rp_now_ns();
    for (int i = 0; i < n; i++) {
        run_t *r = &runs[i];
        r->m = &cfg->members[i];
        if (!ctl_selected(r->m, only)) {
            r->state = R_SKIP;
            continue;
        }
        if (!rp_cluster_member_is_local(r->m)) {
            r->state = R_REMOTE;
            snprintf(r->note, sizeof(r->note), "on another host: not stopped here");
            continue;
        }
        nlocal++;
        ctl_member_state_t st;
        ctl_member_running(r->m, &st);
        if (!st.pid) {
            r->state = R_EXITED;
            state_text(&st, r->note, sizeof(r->note));
            continue;
        }
        r->pid = st.pid;
        if (kill(st.pid, SIGTERM) != 0) {
            r->state = R_FAILED;
            snprintf(r->note, sizeof(r->note), "could not signal it: %s", strerror(errno));
            status = CTL_EXIT_FAILED;
            continue;
        }
        r->state = R_PENDING;
        r->stop_ns = t0;
    }
    uint64_t deadline = t0 + (uint64_t)timeout * 1000000000ULL;
    for (;;) {
        bool pending = false;
        for (int i = 0; i < n; i++) {
            run_t *r = &runs[i];
            if (r->state != R_PENDING)
                continue;
            if (!ctl_pid_alive(r->pid)) {
                r->state = R_EXITED;
                snprintf(r->note, sizeof(r->note), "stopped in %.1f s", (double)(rp_now_ns() - r->stop_ns) / 1e9);
            } else if (rp_now_ns() > deadline) {
                r->state = R_TIMEOUT;
                snprintf(r->note, sizeof(r->note), "still running after %" PRId64 " s", timeout);
                status = CTL_EXIT_FAILED;
            } else {
                pending = true;
            }
        }
        if (!pending)
            break;
        usleep(50000);
    }
    print_table(runs, n);
    for (int i = 0; i < n; i++)
        if (runs[i].state == R_TIMEOUT) {
            char log[PATH_MAX + 32];
            ctl_log_path(runs[i].m, log, sizeof(log));
            fprintf(stderr, "\nrespoolctl: error: instance %d (pid %d) did not stop within %" PRId64 " s\n",
                    runs[i].m->id, (int)runs[i].pid, timeout);
            fprintf(stderr, "detail: last lines of %s:\n", log);
            ctl_log_tail(log, 0, 10, "  | ", stderr);
            fprintf(stderr, "hint: Wait longer (--timeout), or end it with `kill -9 %d`: the next start replays its "
                            "WAL, and nothing acknowledged is lost.\n", (int)runs[i].pid);
        }
    if (nlocal == 0) {
        fprintf(stderr, "respoolctl: error: no %s of \"%s\" is on this host\n", only ? "selected member" : "member",
                cfg->path);
        status = CTL_EXIT_FAILED;
    }
    free(runs);
    free(cfg);
    return status;
}

/* ---- status ------------------------------------------------------------------------------------- */

static void status_usage(FILE *out)
{
    fputs("usage: respoolctl cluster status --config FILE [--json] [--timeout-ms MS] [--instance N]\n"
          "\n"
          "For every member: whether its respoold runs (members of this host: the PID in its lock file,\n"
          "checked against /proc), whether it answers PING on its port, and the fields of its INFO\n"
          "\"cluster\" section when it has one.\n"
          "\n"
          "  --json            one JSON object for machines\n"
          "  --timeout-ms MS   deadline of each connection and command (default 1000)\n"
          "  --instance N      only this member (repeat for several)\n"
          "\n"
          "Exit status: 0 every member answers; 1 some do not; 2 none does.\n",
          out);
}

int ctl_cluster_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
        {"timeout-ms", required_argument, NULL, 't'}, {"instance", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'}, {0},
    };
    const char *config = NULL;
    bool json = false;
    int64_t timeout = 1000;
    uint64_t only = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 't':
            if (!parse_int_opt(optarg, 1, 600000, &timeout))
                return ctl_usage_error("Give milliseconds, e.g. 1000.", "invalid --timeout-ms \"%s\"", optarg);
            break;
        case 'i':
            if (!ctl_add_instance(optarg, &only))
                return ctl_usage_error("Give an instance id from 0 to 63.", "invalid --instance \"%s\"", optarg);
            break;
        case 'h':
            status_usage(stdout);
            return CTL_EXIT_OK;
        default:
            status_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return ctl_usage_error("Run `respoolctl cluster status --help`.", "unexpected argument \"%s\"", argv[optind]);
    int status;
    rp_cluster_config_t *cfg = ctl_load_selection(config, only, &status);
    if (!cfg)
        return status;
    cJSON *root = cJSON_CreateObject(), *members = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "config", cfg->path);
    cJSON_AddStringToObject(root, "name", cfg->name);
    cJSON_AddStringToObject(root, "volume", cfg->volume);
    int nselected = 0, answering = 0;
    if (!json)
        printf("cluster \"%s\" (%s), volume %s\n\n%-3s %-16s %-6s %-13s %-8s %-30s %s\n", cfg->name, cfg->path,
               cfg->volume, "id", "host", "port", "cluster-port", "pid", "process", "PING");
    char *infos[RP_VOLUME_MAX_INSTANCES] = {0};
    for (int i = 0; i < cfg->nmembers; i++) {
        const rp_cluster_member_t *m = &cfg->members[i];
        if (!ctl_selected(m, only))
            continue;
        nselected++;
        bool local = rp_cluster_member_is_local(m);
        ctl_member_state_t st = {0};
        char proc[192] = "on another host";
        if (local) {
            ctl_member_running(m, &st);
            state_text(&st, proc, sizeof(proc));
        }
        double ms = 0;
        char answer[256] = "", ping[300];
        int prc = ctl_member_ping(m, (int)timeout, &ms, answer, sizeof(answer));
        if (prc == 0) {
            answering++;
            snprintf(ping, sizeof(ping), "%s (%.2f ms)", answer, ms);
            if (strcmp(answer, "PONG") == 0)
                infos[i] = ctl_member_info(m, "cluster", (int)timeout);
        } else {
            snprintf(ping, sizeof(ping), "no answer: %s", rp_last_error()->message);
        }
        rp_error_clear();
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "id", m->id);
        cJSON_AddStringToObject(j, "host", m->host);
        cJSON_AddNumberToObject(j, "port", m->port);
        cJSON_AddNumberToObject(j, "cluster_port", m->cluster_port);
        cJSON_AddStringToObject(j, "data_dir", m->data_dir);
        cJSON_AddBoolToObject(j, "local", local);
        if (local) {
            cJSON_AddBoolToObject(j, "running", st.pid != 0);
            if (st.pid)
                cJSON_AddNumberToObject(j, "pid", st.pid);
            else
                cJSON_AddNullToObject(j, "pid");
            if (st.stale_pid)
                cJSON_AddNumberToObject(j, "stale_pid", st.stale_pid);
        } else {
            cJSON_AddNullToObject(j, "running");
            cJSON_AddNullToObject(j, "pid");
        }
        cJSON_AddBoolToObject(j, "answering", prc == 0);
        if (prc == 0) {
            cJSON_AddStringToObject(j, "ping", answer);
            cJSON_AddNumberToObject(j, "ping_ms", ms);
        } else {
            cJSON_AddNullToObject(j, "ping");
        }
        cJSON *cl = NULL;
        if (infos[i]) {
            for (char *save = NULL, *line = strtok_r(infos[i], "\r\n", &save); line;
                 line = strtok_r(NULL, "\r\n", &save)) {
                char *colon = strchr(line, ':');
                if (line[0] == '#' || !colon)
                    continue;
                *colon = '\0';
                if (!cl)
                    cl = cJSON_CreateObject();
                cJSON_AddStringToObject(cl, line, colon + 1);
                *colon = ':';
            }
        }
        if (cl)
            cJSON_AddItemToObject(j, "cluster", cl);
        else
            cJSON_AddNullToObject(j, "cluster");
        cJSON_AddItemToArray(members, j);
        if (!json) {
            char pid[16] = "-";
            if (st.pid)
                snprintf(pid, sizeof(pid), "%d", (int)st.pid);
            printf("%-3d %-16s %-6d %-13d %-8s %-30s %s\n", m->id, m->host, m->port, m->cluster_port, pid, proc, ping);
        }
    }
    cJSON_AddItemToObject(root, "members", members);
    cJSON_AddNumberToObject(root, "answering", answering);
    cJSON_AddNumberToObject(root, "selected", nselected);
    if (json) {
        char *text = cJSON_Print(root);
        puts(text);
        free(text);
    } else {
        cJSON *j;
        bool any = false;
        cJSON_ArrayForEach(j, members)
        {
            cJSON *cl = cJSON_GetObjectItem(j, "cluster");
            if (!cJSON_IsObject(cl))
                continue;
            any = true;
            printf("\ninstance %d, INFO cluster:\n", cJSON_GetObjectItem(j, "id")->valueint);
            cJSON *f;
            cJSON_ArrayForEach(f, cl) printf("  %s: %s\n", f->string, f->valuestring);
        }
        if (!any && answering)
            printf("\n(no member reports an INFO \"cluster\" section: cache fusion is not enabled in this build)\n");
        printf("\n%d of %d member%s answering\n", answering, nselected, nselected == 1 ? "" : "s");
    }
    for (int i = 0; i < RP_VOLUME_MAX_INSTANCES; i++)
        free(infos[i]);
    cJSON_Delete(root);
    free(cfg);
    return answering == nselected ? CTL_EXIT_OK : answering > 0 ? CTL_EXIT_WARNING : CTL_EXIT_CRITICAL;
}
