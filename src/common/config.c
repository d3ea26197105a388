/*
 * config.c - table-driven configuration: defaults, INI files, command line (see respool/config.h)
 */
#include "respool/config.h"

#include "common/util.h"
#include "respool/error.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FIELD(def, base, type) ((type *)((char *)(base) + (def)->offset))

static const rp_conf_def_t *lookup(const rp_conf_table_t *tables, int ntables, const char *key, void **base)
{
    for (int t = 0; t < ntables; t++)
        for (const rp_conf_def_t *d = tables[t].defs; d->name; d++)
            if (strcmp(d->name, key) == 0) {
                *base = tables[t].base;
                return d;
            }
    return NULL;
}

static const rp_conf_def_t *lookup_short(const rp_conf_table_t *tables, int ntables, char c, void **base)
{
    for (int t = 0; t < ntables; t++)
        for (const rp_conf_def_t *d = tables[t].defs; d->name; d++)
            if (d->short_opt == c) {
                *base = tables[t].base;
                return d;
            }
    return NULL;
}

/* The closest key by edit distance, to make "unknown key" errors helpful. */
static const char *closest_key(const rp_conf_table_t *tables, int ntables, const char *key)
{
    const char *best = NULL;
    size_t best_d = 4;
    for (int t = 0; t < ntables; t++)
        for (const rp_conf_def_t *d = tables[t].defs; d->name; d++) {
            size_t dist = rp_edit_distance(key, d->name);
            if (dist < best_d) {
                best_d = dist;
                best = d->name;
            }
        }
    return best;
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"yes", "on", "true", "1"};
    static const char *const no[] = {"no", "off", "false", "0"};
    for (size_t i = 0; i < RP_ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static int bad_value(const rp_conf_def_t *d, const char *value, const char *origin, const char *expect)
{
    rp_error(RP_EINVAL, "invalid value for \"%s\": \"%s\"", d->name, value);
    rp_error_detail("Set in %s; expected %s.", origin, expect);
    rp_error_hint("%s", d->help);
    return RP_EINVAL;
}

static int out_of_range(const rp_conf_def_t *d, const char *value, const char *origin)
{
    char lo[32], hi[32];
    if (d->type == RP_CONF_SIZE) {
        rp_format_size((uint64_t)d->min, lo, sizeof(lo));
        rp_format_size((uint64_t)d->max, hi, sizeof(hi));
    } else {
        snprintf(lo, sizeof(lo), "%" PRId64 "%s", d->min, d->type == RP_CONF_DURATION ? "ms" : "");
        snprintf(hi, sizeof(hi), "%" PRId64 "%s", d->max, d->type == RP_CONF_DURATION ? "ms" : "");
    }
    rp_error(RP_ERANGE, "value for \"%s\" is out of range: \"%s\"", d->name, value);
    rp_error_detail("Set in %s; allowed range is %s to %s.", origin, lo, hi);
    rp_error_hint("%s", d->help);
    return RP_ERANGE;
}

static bool has_bounds(const rp_conf_def_t *d)
{
    return d->min != 0 || d->max != 0;
}

static int set_value(const rp_conf_def_t *d, void *base, const char *value, const char *origin)
{
    switch (d->type) {
    case RP_CONF_INT: {
        int64_t v;
        if (!rp_parse_i64(value, strlen(value), &v))
            return bad_value(d, value, origin, "an integer");
        if (has_bounds(d) && (v < d->min || v > d->max))
            return out_of_range(d, value, origin);
        *FIELD(d, base, int64_t) = v;
        return 0;
    }
    case RP_CONF_SIZE: {
        uint64_t v;
        if (rp_parse_size(value, &v) != 0)
            return bad_value(d, value, origin, "a size such as 4096, 8k, 256M or 1G");
        if (has_bounds(d) && (v < (uint64_t)d->min || v > (uint64_t)d->max))
            return out_of_range(d, value, origin);
        *FIELD(d, base, uint64_t) = v;
        return 0;
    }
    case RP_CONF_DURATION: {
        uint64_t v;
        if (rp_parse_duration(value, &v) != 0)
            return bad_value(d, value, origin, "a duration such as 250ms, 5s, 2min or 1h");
        if (has_bounds(d) && (v < (uint64_t)d->min || v > (uint64_t)d->max))
            return out_of_range(d, value, origin);
        *FIELD(d, base, uint64_t) = v;
        return 0;
    }
    case RP_CONF_BOOL: {
        bool v;
        if (!parse_bool(value, &v))
            return bad_value(d, value, origin, "yes or no");
        *FIELD(d, base, bool) = v;
        return 0;
    }
    case RP_CONF_STRING: {
        char **slot = FIELD(d, base, char *);
        free(*slot);
        *slot = rp_xstrdup(value);
        return 0;
    }
    case RP_CONF_ENUM: {
        for (int i = 0; d->choices[i]; i++)
            if (strcasecmp(value, d->choices[i]) == 0) {
                *FIELD(d, base, int) = i;
                return 0;
            }
        char expect[256] = "one of";
        for (int i = 0; d->choices[i]; i++) {
            size_t n = strlen(expect);
            snprintf(expect + n, sizeof(expect) - n, "%s %s", i ? "," : "", d->choices[i]);
        }
        return bad_value(d, value, origin, expect);
    }
    }
    return RP_EINVAL;
}

int rp_conf_defaults(const rp_conf_table_t *tables, int ntables)
{
    for (int t = 0; t < ntables; t++)
        for (const rp_conf_def_t *d = tables[t].defs; d->name; d++) {
            const char *v = d->default_value;
            if (!v)
                v = (d->type == RP_CONF_STRING) ? "" : (d->type == RP_CONF_ENUM ? d->choices[0] : "0");
            int rc = set_value(d, tables[t].base, v, "the built-in default");
            if (rc)
                return rc;
        }
    return 0;
}

int rp_conf_set(const rp_conf_table_t *tables, int ntables, const char *key, const char *value,
                const char *origin)
{
    void *base;
    const rp_conf_def_t *d = lookup(tables, ntables, key, &base);
    if (!d) {
        rp_error(RP_ENOENT, "unknown configuration key \"%s\"", key);
        rp_error_detail("Set in %s.", origin);
        const char *near = closest_key(tables, ntables, key);
        if (near)
            rp_error_hint("Did you mean \"%s\"? Every key is listed by --help and in docs/configuration.md.",
                          near);
        else
            rp_error_hint("Every key is listed by --help and in docs/configuration.md.");
        return RP_ENOENT;
    }
    return set_value(d, base, value, origin);
}

struct load_ctx {
    const rp_conf_table_t *tables;
    int ntables;
    const char *path;
    FILE *file;
    int lineno; /* lines read so far: Debian's libinih does not pass line numbers to the handler */
    int rc;
};

static char *read_line(char *str, int num, void *stream)
{
    struct load_ctx *ctx = stream;
    char *line = fgets(str, num, ctx->file);
    if (line)
        ctx->lineno++;
    return line;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *ctx = user;
    char origin[512];
    if (ctx->rc)
        return 0;
    snprintf(origin, sizeof(origin), "\"%s\" line %d%s%s%s", ctx->path, ctx->lineno,
             section[0] ? " (section [" : "", section, section[0] ? "])" : "");
    ctx->rc = rp_conf_set(ctx->tables, ctx->ntables, name, value, origin);
    return ctx->rc == 0;
}

int rp_conf_load_file(const rp_conf_table_t *tables, int ntables, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        rp_error(rp_error_errno(e), "could not open configuration file \"%s\": %s", path, strerror(e));
        rp_error_hint("Check the path given with -c/--config.");
        return rp_error_errno(e);
    }
    struct load_ctx ctx = {tables, ntables, path, f, 0, 0};
    int line = ini_parse_stream(read_line, &ctx, on_key, &ctx);
    fclose(f);
    if (ctx.rc)
        return ctx.rc;
    if (line != 0) {
        rp_error(RP_EINVAL, "syntax error in configuration file \"%s\" at line %d", path, line);
        rp_error_detail("Lines must be \"key = value\", \"[section]\" or comments starting with ';' or '#'.");
        return RP_EINVAL;
    }
    return 0;
}

static bool in_list(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

int rp_conf_parse_args(const rp_conf_table_t *tables, int ntables, int argc, char **argv,
                       const char *const *extra_flags, const char *const *extra_with_value,
                       rp_conf_extra_fn extra, void *arg)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char name[128];
        const char *value = NULL;
        void *base = NULL;
        const rp_conf_def_t *d = NULL;

        if (a[0] == '-' && a[1] != '-' && a[1] && !a[2]) {
            d = lookup_short(tables, ntables, a[1], &base);
            if (!d) {
                /* short flags of the program itself: -h, -c */
                char s[2] = {a[1], 0};
                if (in_list(extra_flags, s)) {
                    int rc = extra(s, NULL, arg);
                    if (rc)
                        return rc;
                    continue;
                }
                if (in_list(extra_with_value, s)) {
                    if (i + 1 >= argc)
                        return rp_error(RP_EINVAL, "option -%c needs a value", a[1]);
                    int rc = extra(s, argv[++i], arg);
                    if (rc)
                        return rc;
                    continue;
                }
                rp_error(RP_EINVAL, "unknown option \"%s\"", a);
                rp_error_hint("Run with --help to list the options.");
                return RP_EINVAL;
            }
            snprintf(name, sizeof(name), "%s", d->name);
        } else if (a[0] == '-' && a[1] == '-' && a[2]) {
            const char *eq = strchr(a + 2, '=');
            size_t n = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
            if (n >= sizeof(name))
                return rp_error(RP_EINVAL, "option \"%s\" is too long", a);
            memcpy(name, a + 2, n);
            name[n] = '\0';
            if (eq)
                value = eq + 1;
            if (in_list(extra_flags, name)) {
                int rc = extra(name, NULL, arg);
                if (rc)
                    return rc;
                continue;
            }
            if (in_list(extra_with_value, name)) {
                if (!value) {
                    if (i + 1 >= argc)
                        return rp_error(RP_EINVAL, "option --%s needs a value", name);
                    value = argv[++i];
                }
                int rc = extra(name, value, arg);
                if (rc)
                    return rc;
                continue;
            }
        } else {
            rp_error(RP_EINVAL, "unexpected argument \"%s\"", a);
            rp_error_hint("Options are written --key value or --key=value; run with --help to list them.");
            return RP_EINVAL;
        }
        if (!value) {
            if (!d)
                d = lookup(tables, ntables, name, &base);
            /* A boolean given alone means yes: --daemonize */
            if (d && d->type == RP_CONF_BOOL && (i + 1 >= argc || argv[i + 1][0] == '-'))
                value = "yes";
            else if (i + 1 >= argc)
                return rp_error(RP_EINVAL, "option --%s needs a value", name);
            else
                value = argv[++i];
        }
        int rc = rp_conf_set(tables, ntables, name, value, "the command line");
        if (rc)
            return rc;
    }
    return 0;
}

static const char *type_name(const rp_conf_def_t *d)
{
    switch (d->type) {
    case RP_CONF_INT:
        return "integer";
    case RP_CONF_SIZE:
        return "size";
    case RP_CONF_DURATION:
        return "duration";
    case RP_CONF_BOOL:
        return "yes|no";
    case RP_CONF_STRING:
        return "string";
    case RP_CONF_ENUM:
        return "choice";
    }
    return "?";
}

void rp_conf_usage(const rp_conf_table_t *tables, int ntables, FILE *out)
{
    for (int t = 0; t < ntables; t++)
        for (const rp_conf_def_t *d = tables[t].defs; d->name; d++) {
            char opt[64];
            if (d->short_opt)
                snprintf(opt, sizeof(opt), "-%c, --%s", d->short_opt, d->name);
            else
                snprintf(opt, sizeof(opt), "    --%s", d->name);
            fprintf(out, "  %-30s %s", opt, type_name(d));
            if (d->type == RP_CONF_ENUM) {
                fputs(" (", out);
                for (int i = 0; d->choices[i]; i++)
                    fprintf(out, "%s%s", i ? "|" : "", d->choices[i]);
                fputs(")", out);
            }
            if (d->default_value && d->default_value[0])
                fprintf(out, ", default %s", d->default_value);
            fprintf(out, "\n  %-30s %s\n", "", d->help);
        }
}

int rp_conf_get_text(const rp_conf_table_t *tables, int ntables, const char *key, char *buf, size_t size)
{
    void *base;
    const rp_conf_def_t *d = lookup(tables, ntables, key, &base);
    if (!d)
        return RP_ENOENT;
    switch (d->type) {
    case RP_CONF_INT:
        snprintf(buf, size, "%" PRId64, *FIELD(d, base, int64_t));
        break;
    case RP_CONF_SIZE:
    case RP_CONF_DURATION:
        snprintf(buf, size, "%" PRIu64, *FIELD(d, base, uint64_t));
        break;
    case RP_CONF_BOOL:
        snprintf(buf, size, "%s", *FIELD(d, base, bool) ? "yes" : "no");
        break;
    case RP_CONF_STRING: {
        const char *s = *FIELD(d, base, char *);
        snprintf(buf, size, "%s", s ? s : "");
        break;
    }
    case RP_CONF_ENUM:
        snprintf(buf, size, "%s", d->choices[*FIELD(d, base, int)]);
        break;
    }
    return 0;
}

void rp_conf_free(const rp_conf_table_t *tables, int ntables)
{
    for (int t = 0; t < ntables; t++)
        for (const rp_conf_def_t *d = tables[t].defs; d->name; d++)
            if (d->type == RP_CONF_STRING) {
                char **slot = FIELD(d, tables[t].base, char *);
                free(*slot);
                *slot = NULL;
            }
}
