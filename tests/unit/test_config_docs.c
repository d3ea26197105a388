/*
 * test_config_docs.c - docs/configuration.md documents every key of respoold, and only those
 *
 * respoold's keys are the library's (rp_instance_conf_defs) and the server's (kv_server_conf_defs).
 * The documentation has one table row per key:
 *   | `key` (`-X`) | type | default | range | meaning |
 * This test fails when a key has no row, when a row describes a key that no longer exists, and when a
 * row's type, default, short option or choices disagree with the table the program actually uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kv/server.h"
#include "respool/config.h"
#include "respool/instance.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 256

typedef struct row {
    char key[64];
    char cells[5][1024]; /* key, type, default, range, meaning */
} row_t;

static row_t rows[MAX_ROWS];
static int nrows;

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n'))
        s[--n] = '\0';
    size_t i = 0;
    while (s[i] == ' ')
        i++;
    memmove(s, s + i, n - i + 1);
}

static int load_rows(void **state)
{
    (void)state;
    const char *path = RP_SOURCE_DIR "/docs/configuration.md";
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char line[8192];
    nrows = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "| `", 3) != 0)
            continue;
        assert_true(nrows < MAX_ROWS);
        row_t *r = &rows[nrows++];
        memset(r, 0, sizeof(*r));
        char *p = line + 1;
        for (int c = 0; c < 5; c++) {
            char *bar = strchr(p, '|');
            if (!bar)
                fail_msg("row with fewer than 5 cells: %s", line);
            *bar = '\0';
            snprintf(r->cells[c], sizeof(r->cells[c]), "%s", p);
            trim(r->cells[c]);
            p = bar + 1;
        }
        const char *k = r->cells[0] + 1;
        size_t klen = strcspn(k, "`");
        if (klen >= sizeof(r->key))
            fail_msg("key too long in row: %s", r->cells[0]);
        memcpy(r->key, k, klen);
        r->key[klen] = '\0';
    }
    fclose(f);
    return 0;
}

static const row_t *find_row(const char *key)
{
    for (int i = 0; i < nrows; i++)
        if (strcmp(rows[i].key, key) == 0)
            return &rows[i];
    return NULL;
}

static const char *type_text(rp_conf_type_t t)
{
    switch (t) {
    case RP_CONF_INT:
        return "integer";
    case RP_CONF_SIZE:
        return "size";
    case RP_CONF_DURATION:
        return "duration";
    case RP_CONF_BOOL:
        return "yes/no";
    case RP_CONF_STRING:
        return "string";
    case RP_CONF_ENUM:
        return "choice";
    }
    return "?";
}

static void check_table(const rp_conf_def_t *defs)
{
    for (const rp_conf_def_t *d = defs; d->name; d++) {
        const row_t *r = find_row(d->name);
        if (!r)
            fail_msg("key \"%s\" is not documented in docs/configuration.md", d->name);
        if (strcmp(r->cells[1], type_text(d->type)) != 0)
            fail_msg("\"%s\": documented type \"%s\", the program uses %s", d->name, r->cells[1], type_text(d->type));
        const char *def = d->default_value ? d->default_value : "";
        if (def[0] == '\0') {
            if (strncmp(r->cells[2], "(empty", 6) != 0)
                fail_msg("\"%s\": the default is empty but the documentation says \"%s\"", d->name, r->cells[2]);
        } else {
            char want[128];
            snprintf(want, sizeof(want), "`%s`", def);
            if (strcmp(r->cells[2], want) != 0)
                fail_msg("\"%s\": documented default \"%s\", the program's is %s", d->name, r->cells[2], want);
        }
        char opt[16];
        snprintf(opt, sizeof(opt), "(`-%c`)", d->short_opt);
        if (d->short_opt && !strstr(r->cells[0], opt))
            fail_msg("\"%s\": the short option -%c is not documented", d->name, d->short_opt);
        if (!d->short_opt && strstr(r->cells[0], "(`-"))
            fail_msg("\"%s\": a short option is documented but does not exist", d->name);
        if (d->type == RP_CONF_ENUM)
            for (int i = 0; d->choices[i]; i++) {
                char c[64];
                snprintf(c, sizeof(c), "`%s`", d->choices[i]);
                if (!strstr(r->cells[3], c))
                    fail_msg("\"%s\": the choice %s is not documented", d->name, c);
            }
        if (d->type == RP_CONF_INT && (d->min || d->max)) {
            char range[96];
            snprintf(range, sizeof(range), "%" PRId64 " – %" PRId64, d->min, d->max);
            if (strcmp(r->cells[3], range) != 0)
                fail_msg("\"%s\": documented range \"%s\", the program's is \"%s\"", d->name, r->cells[3], range);
        }
        if (strlen(r->cells[4]) < 20)
            fail_msg("\"%s\": the meaning is missing", d->name);
    }
}

static void test_every_instance_key_is_documented(void **state)
{
    (void)state;
    check_table(rp_instance_conf_defs);
}

static void test_every_server_key_is_documented(void **state)
{
    (void)state;
    check_table(kv_server_conf_defs);
}

static bool in_table(const rp_conf_def_t *defs, const char *key)
{
    for (const rp_conf_def_t *d = defs; d->name; d++)
        if (strcmp(d->name, key) == 0)
            return true;
    return false;
}

static void test_no_stale_keys_documented(void **state)
{
    (void)state;
    assert_true(nrows > 0);
    for (int i = 0; i < nrows; i++)
        if (!in_table(rp_instance_conf_defs, rows[i].key) && !in_table(kv_server_conf_defs, rows[i].key))
            fail_msg("docs/configuration.md documents \"%s\", which is not a key of respoold", rows[i].key);
    /* and no key is documented twice */
    for (int i = 0; i < nrows; i++)
        for (int j = i + 1; j < nrows; j++)
            if (strcmp(rows[i].key, rows[j].key) == 0)
                fail_msg("\"%s\" is documented twice", rows[i].key);
}

static void test_keys_are_unique_across_tables(void **state)
{
    (void)state;
    /* respoold passes both tables to one parser: a key in both would silently go to the first */
    for (const rp_conf_def_t *d = kv_server_conf_defs; d->name; d++)
        if (in_table(rp_instance_conf_defs, d->name))
            fail_msg("\"%s\" is a key of both the instance and the server", d->name);
    for (const rp_conf_def_t *d = kv_server_conf_defs; d->name; d++)
        for (const rp_conf_def_t *e = rp_instance_conf_defs; e->name; e++)
            if (d->short_opt && d->short_opt == e->short_opt)
                fail_msg("-%c is the short option of both \"%s\" and \"%s\"", d->short_opt, d->name, e->name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_instance_key_is_documented),
        cmocka_unit_test(test_every_server_key_is_documented),
        cmocka_unit_test(test_no_stale_keys_documented),
        cmocka_unit_test(test_keys_are_unique_across_tables),
    };
    return cmocka_run_group_tests(tests, load_rows, NULL);
}
