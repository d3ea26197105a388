/*
 * test_linearizability.c - the checker on histories made to be right and made to be wrong
 *
 * Every wrong history must be rejected (LIN_VIOLATION) and every right one accepted (LIN_OK); a search
 * past its bounds must say LIN_UNDECIDED, never OK. Random histories generated from a real register
 * with known linearization points must be accepted, and each turns into a violation when one of its
 * reads is changed to a value nobody wrote. The text format must round-trip exactly.
 *
 * Times below are in arbitrary units; an operation is [call, return].
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "linearizability.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UNKNOWN UINT64_MAX

static lin_history_t *H;

static int setup(void **state)
{
    (void)state;
    H = lin_history_create();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lin_history_destroy(H);
    H = NULL;
    return 0;
}

static void add(int client, lin_type_t type, const char *key, const char *value, bool nil, int64_t integer,
                uint64_t call, uint64_t ret)
{
    lin_op_t op = {
        .client = client,
        .type = type,
        .key = {key, strlen(key), false},
        .value = {value, value ? strlen(value) : 0, nil},
        .integer = integer,
        .unknown = ret == UNKNOWN,
        .call_ns = call,
        .return_ns = ret == UNKNOWN ? 0 : ret,
    };
    lin_record(H, &op);
}

static void set(int c, const char *k, const char *v, uint64_t call, uint64_t ret)
{
    add(c, LIN_SET, k, v, false, 0, call, ret);
}
/* v == NULL: the GET returned nil */
static void get(int c, const char *k, const char *v, uint64_t call, uint64_t ret)
{
    add(c, LIN_GET, k, v, v == NULL, 0, call, ret);
}
static void del(int c, const char *k, int64_t n, uint64_t call, uint64_t ret)
{
    add(c, LIN_DEL, k, NULL, true, n, call, ret);
}
static void incr(int c, const char *k, int64_t n, uint64_t call, uint64_t ret)
{
    add(c, LIN_INCR, k, NULL, true, n, call, ret);
}

static lin_verdict_t verdict_with(const lin_limits_t *lim)
{
    lin_report_t rep;
    lin_verdict_t v = lin_check(H, lim, &rep, getenv("LIN_VERBOSE") ? stderr : NULL);
    assert_int_equal(v, rep.verdict);
    return v;
}

static lin_verdict_t verdict(void)
{
    return verdict_with(NULL);
}

/* ---- right ------------------------------------------------------------------------------------- */

static void test_empty_history_is_linearizable(void **state)
{
    (void)state;
    assert_int_equal(verdict(), LIN_OK);
}

static void test_sequential_set_get_del(void **state)
{
    (void)state;
    get(0, "a", NULL, 0, 5);
    set(0, "a", "1", 10, 20);
    get(1, "a", "1", 30, 40);
    del(0, "a", 1, 50, 60);
    get(1, "a", NULL, 70, 80);
    del(1, "a", 0, 90, 95);
    assert_int_equal(verdict(), LIN_OK);
}

static void test_concurrent_read_may_see_the_old_value(void **state)
{
    (void)state;
    set(0, "k", "v1", 0, 10);
    set(0, "k", "v2", 20, 40);
    get(1, "k", "v1", 25, 35);
    assert_int_equal(verdict(), LIN_OK);
}

static void test_concurrent_read_may_see_the_new_value(void **state)
{
    (void)state;
    set(0, "k", "v1", 0, 10);
    set(0, "k", "v2", 20, 40);
    get(1, "k", "v2", 25, 35);
    get(2, "k", "v2", 26, 30); /* and another read inside it too */
    assert_int_equal(verdict(), LIN_OK);
}

static void test_unknown_write_may_have_happened(void **state)
{
    (void)state;
    set(0, "k", "v1", 0, 10);
    set(1, "k", "v2", 20, UNKNOWN);
    get(2, "k", "v2", 30, 40);
    get(2, "k", "v2", 50, 60);
    assert_int_equal(verdict(), LIN_OK);
}

static void test_unknown_write_may_not_have_happened(void **state)
{
    (void)state;
    set(0, "k", "v1", 0, 10);
    set(1, "k", "v2", 20, UNKNOWN);
    get(2, "k", "v1", 30, 40);
    get(2, "k", "v1", 1000, 1010);
    assert_int_equal(verdict(), LIN_OK);
}

static void test_touching_intervals_are_concurrent(void **state)
{
    (void)state;
    set(0, "k", "v1", 0, 10);
    get(1, "k", NULL, 10, 20); /* invoked at the instant the SET returned: either order */
    assert_int_equal(verdict(), LIN_OK);
}

static void test_concurrent_increments_in_either_order(void **state)
{
    (void)state;
    incr(0, "n", 2, 0, 10); /* linearized second, though it returned first */
    incr(1, "n", 1, 5, 20);
    incr(2, "n", 3, 30, 40);
    get(0, "n", "3", 50, 60);
    assert_int_equal(verdict(), LIN_OK);
}

static void test_set_then_incr_and_read_back(void **state)
{
    (void)state;
    set(0, "n", "41", 0, 10);
    incr(1, "n", 42, 20, 30);
    get(2, "n", "42", 40, 50);
    del(0, "n", 1, 60, 70);
    incr(1, "n", 1, 80, 90);
    assert_int_equal(verdict(), LIN_OK);
}

static void test_unknown_incr_on_a_string_changes_nothing(void **state)
{
    (void)state;
    set(0, "k", "abc", 0, 10);
    incr(1, "k", 0, 20, UNKNOWN);
    get(2, "k", "abc", 30, 40);
    assert_int_equal(verdict(), LIN_OK);
}

static void test_keys_are_independent(void **state)
{
    (void)state;
    set(0, "a", "1", 0, 100);
    set(1, "b", "1", 0, 100);
    get(2, "a", "1", 10, 20);
    get(2, "b", NULL, 30, 40);
    get(3, "b", "1", 50, 60);
    get(3, "a", "1", 70, 80);
    assert_int_equal(verdict(), LIN_OK);
}

/* ---- wrong ------------------------------------------------------------------------------------- */

static void test_stale_read_after_a_completed_write(void **state)
{
    (void)state;
    set(0, "k", "v1", 0, 10);
    set(0, "k", "v2", 20, 30);
    get(1, "k", "v1", 40, 50);
    assert_int_equal(verdict(), LIN_VIOLATION);
}

static void test_read_of_a_value_never_written(void **state)
{
    (void)state;
    set(0, "k", "v1", 0, 10);
    get(1, "k", "v9", 5, 15);
    assert_int_equal(verdict(), LIN_VIOLATION);
}

static void test_read_before_the_write_was_invoked(void **state)
{
    (void)state;
    get(1, "k", "v1", 0, 10);
    set(0, "k", "v1", 20, 30);
    assert_int_equal(verdict(), LIN_VIOLATION);
}

static void test_two_readers_see_writes_in_opposite_orders(void **state)
{
    (void)state;
    set(0, "k", "v1", 0, 100);
    set(1, "k", "v2", 0, 100);
    get(2, "k", "v1", 10, 20);
    get(2, "k", "v2", 30, 40);
    get(3, "k", "v2", 10, 20);
    get(3, "k", "v1", 30, 40);
    assert_int_equal(verdict(), LIN_VIOLATION);
}

static void test_lost_write(void **state)
{
    (void)state;
    set(0, "k", "v1", 0, 10);
    get(1, "k", NULL, 20, 30);
    assert_int_equal(verdict(), LIN_VIOLATION);
}

static void test_lost_increment(void **state)
{
    (void)state;
    incr(0, "n", 1, 0, 10);
    incr(1, "n", 1, 5, 15); /* concurrent, but both cannot have seen 0 */
    assert_int_equal(verdict(), LIN_VIOLATION);
}

static void test_final_value_below_acknowledged_increments(void **state)
{
    (void)state;
    incr(0, "n", 1, 0, 10);
    incr(1, "n", 2, 20, 30);
    get(2, "n", "1", 40, 50);
    assert_int_equal(verdict(), LIN_VIOLATION);
}

static void test_del_counts_a_key_that_was_not_there(void **state)
{
    (void)state;
    del(0, "k", 1, 0, 10);
    assert_int_equal(verdict(), LIN_VIOLATION);
}

static void test_unknown_write_seen_then_unseen(void **state)
{
    (void)state;
    set(0, "k", "v1", 0, 10);
    set(1, "k", "v2", 20, UNKNOWN);
    get(2, "k", "v2", 30, 40);
    get(2, "k", "v1", 50, 60); /* nothing wrote v1 again */
    assert_int_equal(verdict(), LIN_VIOLATION);
}

static void test_violation_on_one_key_among_good_ones(void **state)
{
    (void)state;
    for (int i = 0; i < 50; i++) {
        char k[16], v[16];
        snprintf(k, sizeof(k), "k%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        set(i, k, v, (uint64_t)i * 10, (uint64_t)i * 10 + 5);
        get(i, k, i == 37 ? "stale" : v, (uint64_t)i * 10 + 6, (uint64_t)i * 10 + 8);
    }
    lin_report_t rep;
    assert_int_equal(lin_check(H, NULL, &rep, NULL), LIN_VIOLATION);
    assert_string_equal(rep.key, "k37");
}

static void test_violation_is_explained(void **state)
{
    (void)state;
    set(0, "k", "v1", 0, 10);
    set(3, "k", "v2", 20, 30);
    get(7, "k", "v1", 40, 50);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    lin_report_t rep;
    assert_int_equal(lin_check(H, NULL, &rep, f), LIN_VIOLATION);
    fclose(f);
    assert_non_null(strstr(text, "key \"k\": not linearizable (3 operations"));
    assert_non_null(strstr(text, "client 7   get  -> \"v1\""));
    assert_non_null(strstr(text, "with the register at \"v2\""));
    free(text);
}

/* ---- bounds ------------------------------------------------------------------------------------ */

/* Many overlapping writes and a read of a value nobody wrote: the search must try every order before
 * it can say no, which a small step budget cannot afford. */
static void wide_history(void)
{
    for (int i = 0; i < 24; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        set(i, "k", v, 0, 1000);
        get(100 + i, "k", v, 0, 1000);
    }
    get(200, "k", "nobody-wrote-this", 0, 1000);
}

static void test_search_beyond_its_steps_is_undecided(void **state)
{
    (void)state;
    wide_history();
    lin_limits_t lim = {.max_steps = 10000};
    assert_int_equal(verdict_with(&lim), LIN_UNDECIDED);
}

static void test_search_beyond_its_memory_is_undecided(void **state)
{
    (void)state;
    wide_history();
    lin_limits_t lim = {.max_steps = 1ULL << 40, .max_memory = 64 * 1024};
    assert_int_equal(verdict_with(&lim), LIN_UNDECIDED);
}

/* ---- random histories from a real register ----------------------------------------------------- */

typedef struct gen_op {
    int client;
    lin_type_t type;
    const char *key;
    char value[24];
    bool nil;
    int64_t integer;
    bool unknown, happened;
    uint64_t call, lp, ret;
} gen_op_t;

static int by_lp(const void *a, const void *b)
{
    const gen_op_t *x = a, *y = b;
    return x->lp < y->lp ? -1 : x->lp > y->lp;
}

/* A history whose operations really took effect, one at a time, at points inside their intervals. */
static int generate(unsigned *seed, gen_op_t *ops, int max)
{
    int clients = 1 + (int)(rand_r(seed) % 5), n = 0;
    uint64_t next_call[8] = {0};
    for (int i = 0; i < max; i++) {
        gen_op_t *o = &ops[n++];
        memset(o, 0, sizeof(*o));
        o->client = (int)(rand_r(seed) % (unsigned)clients);
        bool counter = rand_r(seed) % 3 == 0;
        o->key = counter ? "n" : "k";
        unsigned r = rand_r(seed) % 10;
        o->type = r < 4 ? (counter ? LIN_INCR : LIN_SET) : r < 8 ? LIN_GET : LIN_DEL;
        if (o->type == LIN_SET)
            snprintf(o->value, sizeof(o->value), "v%d", i);
        o->call = next_call[o->client] + rand_r(seed) % 5;
        o->lp = o->call + rand_r(seed) % 20;
        o->ret = o->lp + rand_r(seed) % 20;
        next_call[o->client] = o->ret + 1;
        o->unknown = o->type != LIN_GET && rand_r(seed) % 10 == 0;
        o->happened = !o->unknown || rand_r(seed) % 2;
    }
    qsort(ops, (size_t)n, sizeof(*ops), by_lp);
    /* apply in linearization order to the model */
    char k[24] = "";
    bool k_nil = true;
    int64_t counter = 0;
    bool n_nil = true;
    for (int i = 0; i < n; i++) {
        gen_op_t *o = &ops[i];
        bool is_n = o->key[0] == 'n';
        if (!o->happened)
            continue;
        switch (o->type) {
        case LIN_SET:
            snprintf(k, sizeof(k), "%s", o->value);
            k_nil = false;
            break;
        case LIN_GET:
            if (is_n) {
                o->nil = n_nil;
                snprintf(o->value, sizeof(o->value), "%" PRId64, counter);
            } else {
                o->nil = k_nil;
                snprintf(o->value, sizeof(o->value), "%s", k);
            }
            break;
        case LIN_DEL:
            o->integer = is_n ? !n_nil : !k_nil;
            if (is_n) {
                n_nil = true;
                counter = 0;
            } else {
                k_nil = true;
            }
            break;
        case LIN_INCR:
            counter = (n_nil ? 0 : counter) + 1;
            n_nil = false;
            o->integer = counter;
            break;
        }
    }
    return n;
}

static void record_generated(const gen_op_t *ops, int n, int mutate)
{
    for (int i = 0; i < n; i++) {
        const gen_op_t *o = &ops[i];
        uint64_t ret = o->unknown ? UNKNOWN : o->ret;
        if (o->type == LIN_GET)
            add(o->client, o->type, o->key, i == mutate ? "never-written" : o->value, i == mutate ? false : o->nil,
                0, o->call, ret);
        else
            add(o->client, o->type, o->key, o->type == LIN_SET ? o->value : NULL, o->type != LIN_SET, o->integer,
                o->call, ret);
    }
}

static void test_random_histories_from_a_register(void **state)
{
    (void)state;
    unsigned seed = 20261121;
    gen_op_t ops[60];
    int mutated = 0;
    for (int trial = 0; trial < 300; trial++) {
        int n = generate(&seed, ops, 10 + (int)(rand_r(&seed) % 50));
        lin_history_destroy(H);
        H = lin_history_create();
        record_generated(ops, n, -1);
        if (verdict() != LIN_OK)
            fail_msg("trial %d: a history generated from a register was rejected", trial);
        int target = -1;
        for (int i = 0; i < n && target < 0; i++)
            if (ops[i].type == LIN_GET && ops[i].happened)
                target = i;
        if (target < 0)
            continue;
        lin_history_destroy(H);
        H = lin_history_create();
        record_generated(ops, n, target);
        if (verdict() != LIN_VIOLATION)
            fail_msg("trial %d: a read of a value nobody wrote was accepted", trial);
        mutated++;
    }
    assert_true(mutated > 200);
}

/* ---- the file format --------------------------------------------------------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_history_file_round_trip(void **state)
{
    (void)state;
    static const char odd[] = "a b-%?'\xff";
    lin_op_t binary = {.client = 4, .type = LIN_SET, .key = {"k\0z", 3, false}, .value = {"\0\x01", 2, false},
                       .call_ns = 100, .return_ns = 200};
    lin_record(H, &binary);
    set(0, odd, "", 0, 10);
    get(1, odd, "", 20, 30);
    get(1, odd, NULL, 5, 8);
    set(2, odd, "-", 40, UNKNOWN);
    del(3, "d", 0, 50, 60);
    incr(3, "n", 7, 70, UNKNOWN);
    lin_verdict_t before = verdict();
    char path[] = "/tmp/lin-history-XXXXXX", path2[] = "/tmp/lin-history2-XXXXXX";
    int fd = mkstemp(path), fd2 = mkstemp(path2);
    assert_true(fd >= 0 && fd2 >= 0);
    close(fd);
    close(fd2);
    char err[256];
    assert_int_equal(lin_history_write(H, path, err, sizeof(err)), 0);
    lin_history_t *back;
    if (lin_history_read(path, &back, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(lin_history_size(back), lin_history_size(H));
    lin_report_t rep;
    assert_int_equal(lin_check(back, NULL, &rep, NULL), before);
    assert_int_equal(lin_history_write(back, path2, err, sizeof(err)), 0);
    char *a = slurp(path), *b = slurp(path2);
    assert_string_equal(a, b);
    assert_non_null(strstr(a, "0 set a%20b%2D%25%3F%27%FF '' ok 0 10\n"));
    assert_non_null(strstr(a, "1 get a%20b%2D%25%3F%27%FF - - 5 8\n"));
    assert_non_null(strstr(a, "2 set a%20b%2D%25%3F%27%FF %2D ? 40 ?\n"));
    assert_non_null(strstr(a, "4 set k%00z %00%01 ok 100 200\n"));
    free(a);
    free(b);
    lin_history_destroy(back);
    unlink(path);
    unlink(path2);
}

static void expect_read_error(const char *text, const char *why)
{
    char path[] = "/tmp/lin-bad-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    lin_history_t *h = NULL;
    char err[512];
    assert_int_equal(lin_history_read(path, &h, err, sizeof(err)), -1);
    assert_null(h);
    if (!strstr(err, why))
        fail_msg("reading \"%s\": error \"%s\" does not say \"%s\"", text, err, why);
    unlink(path);
}

static void test_history_file_errors_name_the_line(void **state)
{
    (void)state;
    expect_read_error("# c\n0 set k v ok 1 2\n0 get k\n", "line 3: expected 7 fields");
    expect_read_error("0 put k v ok 1 2\n", "line 1: the type");
    expect_read_error("0 set k v ok 5 2\n", "line 1: the return time is before");
    expect_read_error("0 set k v ? 1 2\n", "line 1: the result and the return time");
    expect_read_error("0 get k - x%zz 1 2\n", "line 1: the GET result");
    expect_read_error("0 incr k - many 1 2\n", "line 1: a DEL's or INCR's result");
    expect_read_error("0 set k a-b ok 1 2\n", "line 1: the SET value");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_history_is_linearizable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_set_get_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_read_may_see_the_old_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_read_may_see_the_new_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_write_may_have_happened, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_write_may_not_have_happened, setup, teardown),
        cmocka_unit_test_setup_teardown(test_touching_intervals_are_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_increments_in_either_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_then_incr_and_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_incr_on_a_string_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_are_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_read_after_a_completed_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_of_a_value_never_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_before_the_write_was_invoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_readers_see_writes_in_opposite_orders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_increment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_final_value_below_acknowledged_increments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_del_counts_a_key_that_was_not_there, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_write_seen_then_unseen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_violation_on_one_key_among_good_ones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_violation_is_explained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_beyond_its_steps_is_undecided, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_beyond_its_memory_is_undecided, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_histories_from_a_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_file_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_file_errors_name_the_line, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
