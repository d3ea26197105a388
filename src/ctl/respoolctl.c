/*
 * respoolctl.c - the operator CLI: command dispatch and shared output helpers
 *
 *   respoolctl volume init|check ...   create or verify a shared volume (volume.c)
 *   respoolctl cluster init|start|stop|status ...   create a cluster, run its local members (cluster.c)
 *   respoolctl stats ...               per member counters and pages (stats.c)
 *   respoolctl check ...               host preflight (check.c)
 *   respoolctl ipc ...                 the IPC doctor for PostgreSQL/openGauss hosts (ipc*.c)
 *
 * Every subcommand prints its own usage with --help.
 */
#include "ctl/ctl.h"

#include "respool/error.h"
#include "respool/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct ctl_command {
    const char *group;   /* "volume", or NULL for a top-level command */
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} ctl_command_t;

static const ctl_command_t commands[] = {
    {"volume", "init", ctl_volume_init, "create the layout of a shared volume on a file or block device"},
    {"volume", "check", ctl_volume_check, "verify superblocks, WAL region headers and every page checksum"},
    {"cluster", "init", ctl_cluster_init, "create a cluster: configuration, secret, volume, data directories"},
    {"cluster", "start", ctl_cluster_start, "start the members on this host (--foreground: attached, Ctrl-C stops)"},
    {"cluster", "stop", ctl_cluster_stop, "stop the members on this host cleanly"},
    {"cluster", "status", ctl_cluster_status, "per member: process, PING, INFO cluster (--json)"},
    {NULL, "stats", ctl_stats, "per member: cache fusion counters, or its pages with --pages (shadow information)"},
    {NULL, "check", ctl_check, "host preflight: RemoveIPC, overcommit, huge pages, SysV limits, containers"},
    {NULL, "ipc", ctl_ipc, "IPC doctor: list, attribute, explain and safely repair SysV/POSIX shared memory"},
};

void ctl_print_report(void)
{
    const rp_report_t *r = rp_last_error();
    fprintf(stderr, "respoolctl: error: %s\n", r->message[0] ? r->message : rp_strerror(r->code));
    if (r->detail[0])
        fprintf(stderr, "detail: %s\n", r->detail);
    if (r->hint[0])
        fprintf(stderr, "hint: %s\n", r->hint);
}

int ctl_usage_error(const char *hint, const char *fmt, ...)
{
    va_list ap;
    fputs("respoolctl: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (hint)
        fprintf(stderr, "hint: %s\n", hint);
    return CTL_EXIT_USAGE;
}

static void usage(FILE *out)
{
    fputs("usage: respoolctl COMMAND [ARGS]\n\ncommands:\n", out);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s%s%s", commands[i].group ? commands[i].group : "",
                 commands[i].group ? " " : "", commands[i].name);
        fprintf(out, "  %-18s %s\n", name, commands[i].summary);
    }
    fputs("\nRun `respoolctl COMMAND --help` for the options of a command.\n"
          "Exit status: 0 ok, 1 warnings found, 2 errors found, 3 could not do the work, 64 usage.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("respoolctl %s\n", RP_VERSION);
        return CTL_EXIT_OK;
    }
    /* Logs from the library go to stderr; warnings and up unless asked otherwise. */
    rp_log_set_level(RP_LOG_WARNING);
    bool group_known = false;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        const ctl_command_t *c = &commands[i];
        if (c->group) {
            if (strcmp(argv[1], c->group) != 0)
                continue;
            group_known = true;
            if (argc >= 3 && strcmp(argv[2], c->name) == 0)
                return c->run(argc - 2, argv + 2);
        } else if (strcmp(argv[1], c->name) == 0) {
            return c->run(argc - 1, argv + 1);
        }
    }
    if (group_known) {
        fprintf(stderr, "respoolctl: error: unknown %s command \"%s\"\n", argv[1], argc >= 3 ? argv[2] : "");
        fputs("hint: one of:", stderr);
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
            if (commands[i].group && strcmp(commands[i].group, argv[1]) == 0)
                fprintf(stderr, " %s", commands[i].name);
        fputc('\n', stderr);
        return CTL_EXIT_USAGE;
    }
    fprintf(stderr, "respoolctl: error: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return CTL_EXIT_USAGE;
}
