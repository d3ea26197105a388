/*
 * lincheck.c - check recorded histories for per-key linearizability (see linearizability.h)
 *
 *   lincheck [--max-steps N] [--max-memory MIB] [--quiet] FILE...
 *
 * Exit status: 0 every history is linearizable; 1 one is not (explained on stderr); 2 one could not be
 * decided within the limits (a failure too: the history is too concurrent to check); 64 bad usage or
 * an unreadable file.
 */
#include "linearizability.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: lincheck [--max-steps N] [--max-memory MIB] [--quiet] FILE...\n");
    return 64;
}

int main(int argc, char **argv)
{
    lin_limits_t lim = {0, 0};
    bool quiet = false;
    int i = 1, worst = 0;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--quiet") == 0)
            quiet = true;
        else if (strcmp(argv[i], "--max-steps") == 0 && i + 1 < argc)
            lim.max_steps = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--max-memory") == 0 && i + 1 < argc)
            lim.max_memory = (size_t)strtoull(argv[++i], NULL, 10) << 20;
        else
            return usage();
    }
    if (i == argc)
        return usage();
    for (; i < argc; i++) {
        lin_history_t *h;
        char err[512];
        if (lin_history_read(argv[i], &h, err, sizeof(err)) != 0) {
            fprintf(stderr, "lincheck: %s\n", err);
            return 64;
        }
        lin_report_t rep;
        lin_verdict_t v = lin_check(h, &lim, &rep, quiet ? NULL : stderr);
        printf("%s: %s (%zu operations on %zu keys, %" PRIu64 " search steps, at most %" PRIu64 " for one key)%s%s%s\n",
               argv[i], v == LIN_OK ? "linearizable" : v == LIN_VIOLATION ? "NOT linearizable" : "UNDECIDED",
               rep.ops, rep.keys, rep.steps, rep.max_key_steps, v == LIN_OK ? "" : ": key \"", v == LIN_OK ? "" : rep.key,
               v == LIN_OK ? "" : "\"");
        if ((int)v > worst)
            worst = (int)v;
        lin_history_destroy(h);
    }
    return worst;
}
