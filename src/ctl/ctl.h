/*
 * ctl.h - respoolctl: shared pieces of the operator CLI
 *
 * Each subcommand lives in its own file (volume.c, check.c, ipc.c, ...) and exposes one entry point
 * `int ctl_<command>(int argc, char **argv)` that returns the process exit status. argv[0] is the
 * subcommand's own name ("init" for `respoolctl volume init`), so getopt_long works unchanged.
 *
 * Exit status, shared by every subcommand so scripts can rely on it:
 *   0  CTL_EXIT_OK        done; nothing wrong found
 *   1  CTL_EXIT_WARNING   done; found problems of warning severity
 *   2  CTL_EXIT_CRITICAL  done; found problems of error/critical severity (corruption, a host setting
 *                         that will make a database fail)
 *   3  CTL_EXIT_FAILED    could not do the work (I/O error, permission, volume in use, ...)
 *  64  CTL_EXIT_USAGE     bad command line
 */
#ifndef RP_CTL_H
#define RP_CTL_H

#include <stdbool.h>

#define CTL_EXIT_OK 0
#define CTL_EXIT_WARNING 1
#define CTL_EXIT_CRITICAL 2
#define CTL_EXIT_FAILED 3
#define CTL_EXIT_USAGE 64

/* Prints the calling thread's error report to stderr as
 *   respoolctl: error: <message>
 *   detail: <detail>
 *   hint: <hint>                                                                                    */
void ctl_print_report(void);
/* Prints "respoolctl: error: <fmt>" and a hint line (if hint != NULL) to stderr; returns CTL_EXIT_USAGE. */
int ctl_usage_error(const char *hint, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int ctl_volume_init(int argc, char **argv);
int ctl_volume_check(int argc, char **argv);
int ctl_check(int argc, char **argv);
int ctl_ipc(int argc, char **argv);
int ctl_cluster_init(int argc, char **argv);
int ctl_cluster_start(int argc, char **argv);
int ctl_cluster_stop(int argc, char **argv);
int ctl_cluster_status(int argc, char **argv);
int ctl_stats(int argc, char **argv);

#endif
