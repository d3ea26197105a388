/*
 * respool/config.h - table-driven configuration
 *
 * A program describes its settings once, as an array of rp_conf_def_t ending with a zeroed entry; each
 * entry names a key, its type, its default, its bounds and where in a struct the parsed value goes.
 * The same table then gives: the defaults, parsing of an INI file (libinih), parsing of
 * `--key value` / `--key=value` on the command line, `--help` text, and the documentation check in
 * the tests (every key must appear in docs/configuration.md).
 *
 * Precedence: default < configuration file < command line. Later settings of a key win.
 *
 * Several tables can be combined (the library's instance settings and a server's own settings) by
 * passing an array of rp_conf_table_t.
 *
 * Strings are stored as heap copies owned by the struct; rp_conf_free() releases them.
 *
 * Interface:
 *   rp_conf_defaults()   store every default
 *   rp_conf_set()        set one key from text (origin names where it came from, for errors)
 *   rp_conf_load_file()  read an INI file; keys may appear at top level or under a section whose
 *                        name is accepted by the tables (see rp_conf_table_t.sections)
 *   rp_conf_parse_args() read --key value pairs; short aliases come from rp_conf_def_t.short_opt
 *   rp_conf_usage()      print every key with type, default and help
 *   rp_conf_show()       print every key with its current value (for INFO/CONFIG GET)
 *   rp_conf_get_text()   the current value of a key as text
 *   rp_conf_free()       free strings
 */
#ifndef RESPOOL_CONFIG_H
#define RESPOOL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum rp_conf_type {
    RP_CONF_INT,      /* int64_t; min..max */
    RP_CONF_SIZE,     /* uint64_t bytes; accepts 8k, 256M, 1GiB; min..max */
    RP_CONF_DURATION, /* uint64_t milliseconds; accepts 10ms, 5s, 2min; min..max */
    RP_CONF_BOOL,     /* bool; yes/no, on/off, true/false, 1/0 */
    RP_CONF_STRING,   /* char * (heap); may be empty */
    RP_CONF_ENUM,     /* int index into choices[] */
} rp_conf_type_t;

typedef struct rp_conf_def {
    const char *name;            /* key, lowercase with dashes: "buffer-pool-size" */
    char short_opt;              /* single-letter command line alias, or 0 */
    rp_conf_type_t type;
    const char *default_value;   /* as text, parsed like any other value; NULL = empty string / 0 */
    int64_t min, max;            /* bounds for INT, SIZE, DURATION (ignored when min == max == 0) */
    const char *const *choices;  /* ENUM: NULL-terminated list */
    size_t offset;               /* where the value lives in the table's struct */
    const char *help;            /* one or two sentences, shown by --help and checked against docs */
} rp_conf_def_t;

typedef struct rp_conf_table {
    const rp_conf_def_t *defs;   /* terminated by an entry with name == NULL */
    void *base;                  /* the struct the offsets refer to */
} rp_conf_table_t;

int rp_conf_defaults(const rp_conf_table_t *tables, int ntables);
/* Returns 0, RP_ENOENT for an unknown key, RP_EINVAL/RP_ERANGE for a bad value (with a report). */
int rp_conf_set(const rp_conf_table_t *tables, int ntables, const char *key, const char *value,
                const char *origin);
int rp_conf_load_file(const rp_conf_table_t *tables, int ntables, const char *path);
/*
 * Parses argv[1..argc-1]. Options that are not keys of the tables are errors, except those named in
 * `extra` (NULL-terminated list of option names without dashes, e.g. "config", "help"), which are
 * returned through the callback so the program can act on them. Returns 0 or an error (reported).
 */
typedef int (*rp_conf_extra_fn)(const char *name, const char *value, void *arg);
int rp_conf_parse_args(const rp_conf_table_t *tables, int ntables, int argc, char **argv,
                       const char *const *extra_flags, const char *const *extra_with_value,
                       rp_conf_extra_fn extra, void *arg);
void rp_conf_usage(const rp_conf_table_t *tables, int ntables, FILE *out);
int rp_conf_get_text(const rp_conf_table_t *tables, int ntables, const char *key, char *buf, size_t size);
void rp_conf_free(const rp_conf_table_t *tables, int ntables);

#ifdef __cplusplus
}
#endif
#endif
