/*
 * stats.c - respoolctl stats: what each member of a cluster is doing with its pages
 *
 *   respoolctl stats --config FILE [--instance N]... [--pages] [--timeout-ms MS]
 *
 * Without --pages: per member, the counters of INFO cluster (cache fusion, directory, extents) and the
 * buffer pool lines of INFO storage. With --pages: the member's shadow information (RESPOOL PAGES):
 * every page in its buffer pool with the global mode it holds (N: a stale copy, S, X), whether it is
 * dirty and its LSN, then a summary line per member. That is what the reform after a member's death
 * rebuilds the directory from; here it is for inspection.
 */
#include "ctl/cluster_int.h"
#include "ctl/ctl.h"

#include "common/util.h"
#include "respool/error.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void stats_usage(FILE *out)
{
    fputs("usage: respoolctl stats --config FILE [--instance N]... [--pages] [--timeout-ms MS]\n"
          "\n"
          "Counters of each member of the cluster (INFO cluster and the buffer pool of INFO storage), or with\n"
          "--pages every page each member holds in its buffer pool: page, global mode (N = a stale copy,\n"
          "S = shared, X = exclusive), dirty (not yet on the volume) and page LSN, then a summary per member.\n"
          "\n"
          "  --config FILE        the cluster configuration (respoolctl cluster init wrote it)\n"
          "  --instance N         only this member (repeatable; default: every member)\n"
          "  --pages              the shadow information instead of the counters\n"
          "  --timeout-ms MS      per member (default 5000)\n"
          "\n"
          "Exit status: 0 every selected member answered, 1 some did not, 3 none did, 64 usage.\n",
          out);
}

typedef struct page_summary {
    uint64_t pages, n, s, x, dirty, max_lsn;
} page_summary_t;

/* Prints RESPOOL PAGES' lines as a table and sums them up; false if a line is not understood. */
static bool print_pages(int id, char *text, page_summary_t *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        uint64_t page, lsn;
        char mode;
        int dirty;
        if (sscanf(line, "page=%" SCNu64 " mode=%c dirty=%d lsn=%" SCNu64, &page, &mode, &dirty, &lsn) != 4) {
            fprintf(stderr, "respoolctl: error: instance %d sent a line respoolctl does not understand: \"%.200s\"\n",
                    id, line);
            fputs("hint: respoolctl and respoold should come from the same build.\n", stderr);
            return false;
        }
        printf("%-8d %-12" PRIu64 " %-4c %-5s %" PRIu64 "\n", id, page, mode, dirty ? "yes" : "no", lsn);
        sum->pages++;
        sum->n += mode == 'N';
        sum->s += mode == 'S';
        sum->x += mode == 'X';
        sum->dirty += dirty != 0;
        if (lsn > sum->max_lsn)
            sum->max_lsn = lsn;
    }
    return true;
}

int ctl_stats(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},     {"instance", required_argument, NULL, 'i'},
        {"pages", no_argument, NULL, 'p'},            {"timeout-ms", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},             {0},
    };
    const char *config = NULL;
    bool pages = false;
    long timeout = 5000;
    uint64_t only = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'p':
            pages = true;
            break;
        case 't': {
            char *end;
            timeout = strtol(optarg, &end, 10);
            if (*end || timeout < 1 || timeout > 600000)
                return ctl_usage_error("Give milliseconds, 1 to 600000.", "invalid --timeout-ms \"%s\"", optarg);
            break;
        }
        case 'i':
            if (!ctl_add_instance(optarg, &only))
                return ctl_usage_error("Give an instance id from 0 to 63.", "invalid --instance \"%s\"", optarg);
            break;
        case 'h':
            stats_usage(stdout);
            return CTL_EXIT_OK;
        default:
            stats_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return ctl_usage_error("Run `respoolctl stats --help`.", "unexpected argument \"%s\"", argv[optind]);
    int status;
    rp_cluster_config_t *cfg = ctl_load_selection(config, only, &status);
    if (!cfg)
        return status;

    int selected = 0, answered = 0;
    page_summary_t sums[RP_VOLUME_MAX_INSTANCES];
    bool have_sum[RP_VOLUME_MAX_INSTANCES] = {false};
    if (pages)
        printf("%-8s %-12s %-4s %-5s %s\n", "instance", "page", "mode", "dirty", "lsn");
    for (int i = 0; i < cfg->nmembers; i++) {
        const rp_cluster_member_t *m = &cfg->members[i];
        if (!ctl_selected(m, only))
            continue;
        selected++;
        char *text;
        if (pages) {
            const char *const cmd[] = {"RESPOOL", "PAGES"};
            text = ctl_member_text(m, 2, cmd, (int)timeout);
        } else {
            const char *const cmd[] = {"INFO", "cluster", "storage"};
            text = ctl_member_text(m, 3, cmd, (int)timeout);
        }
        if (!text) {
            fprintf(stderr, "respoolctl: instance %d (%s:%d) did not answer: %s\n", m->id, m->host, m->port,
                    rp_last_error()->message);
            continue;
        }
        if (pages) {
            if (print_pages(m->id, text, &sums[m->id])) {
                have_sum[m->id] = true;
                answered++;
            }
        } else {
            printf("%sinstance %d (%s:%d)\n", answered ? "\n" : "", m->id, m->host, m->port);
            for (char *save = NULL, *line = strtok_r(text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save))
                if (line[0] != '#' && (strncmp(line, "pool_", 5) == 0 || strstr(line, "fusion_") == line ||
                                       strstr(line, "cluster_") == line || strstr(line, "directory_") == line ||
                                       strstr(line, "named_locks_") == line || strstr(line, "extent") == line ||
                                       strncmp(line, "lsn:", 4) == 0))
                    printf("  %s\n", line);
            answered++;
        }
        free(text);
    }
    if (pages) {
        printf("\n%-8s %8s %8s %8s %8s %8s %s\n", "instance", "pages", "X", "S", "N", "dirty", "max lsn");
        for (int id = 0; id < RP_VOLUME_MAX_INSTANCES; id++)
            if (have_sum[id])
                printf("%-8d %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %" PRIu64 "\n", id,
                       sums[id].pages, sums[id].x, sums[id].s, sums[id].n, sums[id].dirty, sums[id].max_lsn);
    }
    free(cfg);
    if (answered == selected)
        return CTL_EXIT_OK;
    return answered ? CTL_EXIT_WARNING : CTL_EXIT_FAILED;
}
