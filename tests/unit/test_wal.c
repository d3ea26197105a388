/*
 * test_wal.c - WAL, mini-transactions, checkpoints and crash recovery, through a tiny test engine
 *
 * The engine keeps counters in pages (type 16, rmgr 16): an operation adds a delta to one counter on
 * each of 1 to 3 pages in ONE mini-transaction. A forked child runs operations and reports each one
 * through a pipe once it is durable; the parent SIGKILLs it at a random moment, recovers, and checks the
 * volume against a model: the state must equal the model after exactly k operations, where k is at
 * least the number reported durable (nothing acknowledged is lost) and at most one more (the operation
 * in flight, all or nothing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "instance/instance_int.h"
#include "respool/error.h"
#include "respool/instance.h"
#include "respool/log.h"
#include "respool/mtr.h"
#include "respool/space.h"
#include "respool/wal.h"
#include "testutil.h"
#include "wal/wal_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CNT_RMGR 16
#define CNT_TYPE 16
#define NPAGES 600
#define OP_SIZE 12

static uint32_t counters_per_page(uint32_t page_size)
{
    return (page_size - RP_PAGE_HEADER_SIZE) / 8;
}

static int64_t *counters(unsigned char *page)
{
    return (int64_t *)(page + RP_PAGE_HEADER_SIZE);
}

static int cnt_redo(const rp_wal_record_t *rec, int block, void *pagev, size_t page_size)
{
    unsigned char *page = pagev;
    const rp_wal_block_t *b = &rec->blocks[block];
    if (rp_page_is_new(page, page_size))
        rp_page_init(page, page_size, b->page_id, CNT_TYPE);
    for (uint32_t at = 0; at + OP_SIZE <= b->data_len; at += OP_SIZE) {
        uint32_t idx;
        int64_t delta;
        memcpy(&idx, b->data + at, 4);
        memcpy(&delta, b->data + at + 4, 8);
        if (idx >= counters_per_page((uint32_t)page_size))
            return rp_error(RP_ECORRUPT, "counter index %u out of range", idx);
        counters(page)[idx] += delta;
    }
    return 0;
}

static const rp_rmgr_t cnt_rmgr = {"counter", cnt_redo, NULL};

typedef struct op {
    int npages;
    uint32_t page[3];   /* index into the test's page list */
    uint32_t idx[3];
    int64_t delta;
} op_t;

static op_t make_op(uint64_t seed, uint64_t i, uint32_t page_size)
{
    uint64_t s = seed ^ (i * 0x9e3779b97f4a7c15ULL) ^ 0x1234567;
    for (int k = 0; k < 3; k++)
        rp_test_rand(&s);
    op_t op;
    op.npages = 1 + (int)(rp_test_rand(&s) % 3);
    for (int k = 0; k < op.npages; k++) {
        bool dup;
        do {
            op.page[k] = (uint32_t)(rp_test_rand(&s) % NPAGES);
            dup = false;
            for (int j = 0; j < k; j++)
                dup |= op.page[j] == op.page[k];
        } while (dup);
        op.idx[k] = (uint32_t)(rp_test_rand(&s) % counters_per_page(page_size));
    }
    op.delta = (int64_t)(i + 1);
    return op;
}

/* The page ids of the test's pages, allocated once at setup. */
static rp_page_id_t pages[NPAGES];

static void setup_pages(rp_test_env_t *env)
{
    rp_instance_t *inst;
    assert_int_equal(rp_instance_open(&env->cfg, &inst), 0);
    uint32_t ps = rp_volume_page_size(rp_instance_volume(inst));
    for (int done = 0; done < NPAGES;) {
        rp_mtr_t m;
        int batch = NPAGES - done < 20 ? NPAGES - done : 20;
        assert_int_equal(rp_mtr_begin(&m, inst, 0, (uint32_t)batch + 1), 0);
        for (int k = 0; k < batch; k++) {
            unsigned char *page;
            assert_int_equal(rp_space_alloc(&m, &pages[done + k]), 0);
            assert_int_equal(rp_mtr_get_new(&m, pages[done + k], &page), 0);
            rp_page_init(page, ps, pages[done + k], CNT_TYPE);
        }
        rp_mtr_commit(&m);
        done += batch;
    }
    rp_instance_close(inst);
}

static void apply_op(rp_instance_t *inst, const op_t *op, uint64_t *end)
{
    rp_mtr_t m;
    assert_int_equal(rp_mtr_begin(&m, inst, 3 * OP_SIZE, 3), 0);
    rp_mtr_set_record(&m, CNT_RMGR, 1, NULL, 0);
    /* latch in page-id order: the engine's latch order */
    int order[3] = {0, 1, 2};
    for (int a = 0; a < op->npages; a++)
        for (int b = a + 1; b < op->npages; b++)
            if (pages[op->page[order[b]]] < pages[op->page[order[a]]]) {
                int t = order[a];
                order[a] = order[b];
                order[b] = t;
            }
    for (int j = 0; j < op->npages; j++) {
        int k = order[j];
        unsigned char *page;
        assert_int_equal(rp_mtr_get(&m, pages[op->page[k]], RP_LATCH_X, &page), 0);
        counters(page)[op->idx[k]] += op->delta;
        unsigned char rec[OP_SIZE];
        memcpy(rec, &op->idx[k], 4);
        memcpy(rec + 4, &op->delta, 8);
        rp_mtr_log(&m, page, rec, sizeof(rec));
    }
    rp_mtr_commit(&m);
    *end = m.end;
}

/* Child: run operations from `first`, report each durable one (its number + 1) to fd. Never returns. */
static _Noreturn void child_run(rp_test_env_t *env, uint64_t seed, uint64_t first, int fd)
{
    rp_instance_t *inst;
    if (rp_instance_open(&env->cfg, &inst) != 0) {
        rp_log_report(RP_LOG_ERROR, "test");
        _exit(3);
    }
    uint32_t ps = rp_volume_page_size(rp_instance_volume(inst));
    for (uint64_t i = first;; i++) {
        op_t op = make_op(seed, i, ps);
        uint64_t end;
        apply_op(inst, &op, &end);
        rp_instance_wait_durable(inst, end);
        uint64_t done = i + 1;
        if (write(fd, &done, sizeof(done)) != sizeof(done))
            _exit(4);
    }
}

/* Runs a child, kills it after delay_ms, returns the number of operations reported durable. */
static uint64_t crash_round(rp_test_env_t *env, uint64_t seed, uint64_t first, unsigned delay_ms)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child_run(env, seed, first, p[1]);
    }
    close(p[1]);
    struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    uint64_t acked = first, v;
    while (read(p[0], &v, sizeof(v)) == sizeof(v))
        acked = v;
    close(p[0]);
    return acked;
}

/* The model after n operations. */
static int64_t *model_after(uint64_t seed, uint64_t n, uint32_t ps)
{
    uint32_t per = counters_per_page(ps);
    int64_t *model = calloc((size_t)NPAGES * per, sizeof(int64_t));
    for (uint64_t i = 0; i < n; i++) {
        op_t op = make_op(seed, i, ps);
        for (int k = 0; k < op.npages; k++)
            model[(size_t)op.page[k] * per + op.idx[k]] += op.delta;
    }
    return model;
}

/* Every test page's counters, read through the buffer pool. */
static int64_t *read_state(rp_instance_t *inst)
{
    uint32_t ps = rp_volume_page_size(rp_instance_volume(inst));
    uint32_t per = counters_per_page(ps);
    int64_t *state = calloc((size_t)NPAGES * per, sizeof(int64_t));
    for (int p = 0; p < NPAGES; p++) {
        rp_mtr_t m;
        assert_int_equal(rp_mtr_begin(&m, inst, 0, 0), 0);
        unsigned char *page;
        int rc = rp_mtr_get(&m, pages[p], RP_LATCH_S, &page);
        if (rc) {
            rp_log_report(RP_LOG_ERROR, "test");
            fail_msg("page %d could not be read", p);
        }
        assert_int_equal(rp_page_type(page), CNT_TYPE);
        memcpy(state + (size_t)p * per, counters(page), per * sizeof(int64_t));
        rp_mtr_abort(&m);
    }
    return state;
}

static int64_t *read_state_of(rp_test_env_t *env)
{
    rp_instance_t *inst;
    assert_int_equal(rp_instance_open(&env->cfg, &inst), 0);
    int64_t *st = read_state(inst);
    rp_instance_close(inst);
    return st;
}

/* Which of base + first k operations (k in lo..hi) the state equals, or -1. */
static int64_t matching_prefix(const int64_t *state, const int64_t *base, uint64_t seed, uint64_t lo, uint64_t hi,
                               uint32_t ps)
{
    size_t n = (size_t)NPAGES * counters_per_page(ps);
    for (uint64_t k = lo; k <= hi; k++) {
        int64_t *model = model_after(seed, k, ps);
        for (size_t j = 0; j < n; j++)
            model[j] += base[j];
        bool same = memcmp(model, state, n * sizeof(int64_t)) == 0;
        free(model);
        if (same)
            return (int64_t)k;
    }
    return -1;
}

static int setup(void **state)
{
    rp_test_env_t *env = calloc(1, sizeof(*env));
    rp_test_env_create(env, 96 << 20, 8 << 20, 2);
    setup_pages(env);
    *state = env;
    return 0;
}

static int teardown(void **state)
{
    rp_test_env_destroy(*state);
    free(*state);
    return 0;
}

static void test_clean_shutdown_replays_nothing(void **state)
{
    rp_test_env_t *env = *state;
    int64_t *base = read_state_of(env);
    rp_instance_t *inst;
    assert_int_equal(rp_instance_open(&env->cfg, &inst), 0);
    uint32_t ps = rp_volume_page_size(rp_instance_volume(inst));
    uint64_t end = 0;
    for (uint64_t i = 0; i < 200; i++) {
        op_t op = make_op(42, i, ps);
        apply_op(inst, &op, &end);
    }
    rp_instance_close(inst);
    assert_int_equal(rp_instance_open(&env->cfg, &inst), 0);
    rp_instance_stats_t st;
    rp_instance_get_stats(inst, &st);
    assert_int_equal(st.recovery_records, 0);
    int64_t *now = read_state(inst);
    assert_int_equal(matching_prefix(now, base, 42, 200, 200, ps), 200);
    rp_instance_close(inst);
    free(now);
    free(base);
}

static void test_many_operations_with_eviction_and_checkpoints(void **state)
{
    rp_test_env_t *env = *state;
    env->cfg.checkpoint_wal_percent = 30;
    int64_t *base = read_state_of(env);
    rp_instance_t *inst;
    assert_int_equal(rp_instance_open(&env->cfg, &inst), 0);
    uint32_t ps = rp_volume_page_size(rp_instance_volume(inst));
    uint64_t end = 0;
    const uint64_t n = 4000;
    for (uint64_t i = 0; i < n; i++) {
        op_t op = make_op(4242, i, ps);
        apply_op(inst, &op, &end);
    }
    int64_t *live = read_state(inst);
    int64_t k = matching_prefix(live, base, 4242, n, n, ps);
    free(live);
    rp_instance_stats_t st;
    rp_instance_get_stats(inst, &st);
    print_message("live: %lld; %llu evictions, %llu checkpoints\n", (long long)k, (unsigned long long)st.pool_evictions,
                  (unsigned long long)st.checkpoints);
    rp_instance_close(inst);
    int64_t *now = read_state_of(env);
    int64_t k2 = matching_prefix(now, base, 4242, n, n, ps);
    free(now);
    free(base);
    env->cfg.checkpoint_wal_percent = 50;
    assert_int_equal(k, (int64_t)n);
    assert_int_equal(k2, (int64_t)n);
}

static void test_crash_recovery_keeps_every_acknowledged_change(void **state)
{
    rp_test_env_t *env = *state;
    /* small WAL (8 MiB), small pool (2 MiB for 600 pages): checkpoints, ring wrap-around and eviction
     * all happen while the child is killed at random moments */
    env->cfg.checkpoint_wal_percent = 30;
    uint64_t seed = (uint64_t)time(NULL) * 2654435761u;
    uint64_t rs = seed;
    uint64_t done = 0;
    int64_t *base = read_state_of(env);
    print_message("seed %llu\n", (unsigned long long)seed);
    for (int round = 0; round < 12; round++) {
        unsigned delay = 30 + (unsigned)(rp_test_rand(&rs) % 400);
        uint64_t acked = crash_round(env, seed, done, delay);
        if (getenv("RP_TEST_SCAN")) {
            char cmd[512];
            snprintf(cmd, sizeof(cmd), "%s %s x", getenv("RP_TEST_SCAN"), env->volume);
            if (system(cmd)) {}
        }
        rp_instance_t *inst;
        int rc = rp_instance_open(&env->cfg, &inst);
        if (rc) {
            rp_log_report(RP_LOG_ERROR, "test");
            fail_msg("recovery failed in round %d", round);
        }
        uint32_t ps = rp_volume_page_size(rp_instance_volume(inst));
        int64_t *now = read_state(inst);
        int64_t k = matching_prefix(now, base, seed, acked, acked + 1, ps);
        free(now);
        if (k < 0) {
            int64_t *st2 = read_state(inst);
            size_t ncell = (size_t)NPAGES * counters_per_page(ps);
            for (uint64_t kk = acked > 20 ? acked - 20 : 0; kk <= acked + 20; kk++) {
                int64_t *model = model_after(seed, kk, ps);
                size_t diff = 0, first = 0;
                for (size_t j = 0; j < ncell; j++)
                    if (model[j] + base[j] != st2[j]) {
                        if (!diff)
                            first = j;
                        diff++;
                    }
                print_message("k=%llu: %zu cells differ (first: page %zu idx %zu model %lld state %lld)\n",
                              (unsigned long long)kk, diff, first / counters_per_page(ps), first % counters_per_page(ps),
                              (long long)(model[first] + base[first]), (long long)st2[first]);
                free(model);
            }
            fail_msg("round %d: state matches neither %llu nor %llu operations", round, (unsigned long long)acked,
                     (unsigned long long)acked + 1);
        }
        rp_instance_stats_t st;
        rp_instance_get_stats(inst, &st);
        print_message("round %2d: killed after %3u ms, %5llu ops acknowledged, %5lld recovered, %llu records "
                      "replayed, %llu checkpoints so far\n",
                      round, delay, (unsigned long long)acked, (long long)k,
                      (unsigned long long)st.recovery_records, (unsigned long long)st.checkpoints);
        rp_instance_close(inst);
        done = (uint64_t)k;
    }
    assert_true(done > 0);
    free(base);
    env->cfg.checkpoint_wal_percent = 50;
}

static void test_torn_page_is_repaired_from_its_image(void **state)
{
    rp_test_env_t *env = *state;
    /* no checkpoint in the child: every page it changes has an image in the log */
    env->cfg.checkpoint_timeout = 3600 * 1000;
    env->cfg.checkpoint_wal_percent = 90;
    env->cfg.buffer_pool_size = 16 << 20;
    uint64_t seed = 777;
    int64_t *base = read_state_of(env);
    uint32_t ps = 8192, per = counters_per_page(ps);
    /* short enough that the log cannot reach the checkpoint trigger: at most one image per page */
    uint64_t acked = crash_round(env, seed, 0, 200);
    assert_true(acked > 10);
    /* tear the pages of the first operations: overwrite their second half with garbage, as a write cut
     * short by a power failure would */
    const rp_superblock_t *sb;
    rp_volume_t *v;
    assert_int_equal(rp_volume_open(env->volume, RP_VOLUME_RDONLY, &v), 0);
    sb = rp_volume_sb(v);
    int torn = 0;
    for (uint64_t i = 0; i < 5; i++) {
        op_t op = make_op(seed, i, ps);
        rp_test_damage(env->volume, rp_volume_page_offset(sb, pages[op.page[0]]) + ps / 2, ps / 2, 0xee);
        torn++;
    }
    rp_volume_close(v);
    (void)per;
    int64_t *state_now = read_state_of(env);
    assert_true(matching_prefix(state_now, base, seed, acked, acked + 1, ps) >= 0);
    free(base);
    free(state_now);
    env->cfg.checkpoint_timeout = 300000;
    env->cfg.checkpoint_wal_percent = 50;
    env->cfg.buffer_pool_size = 2 << 20;
}

static void test_torn_wal_tail_ends_replay_cleanly(void **state)
{
    rp_test_env_t *env = *state;
    env->cfg.checkpoint_timeout = 3600 * 1000;
    env->cfg.checkpoint_wal_percent = 90;
    rp_instance_t *inst;
    assert_int_equal(rp_instance_open(&env->cfg, &inst), 0);
    rp_instance_close(inst);
    /* Write a few operations in a child and kill it; then damage the last record. */
    uint64_t seed = 99;
    rp_volume_t *v;
    assert_int_equal(rp_volume_open(env->volume, RP_VOLUME_RDONLY, &v), 0);
    rp_wal_header_t h;
    int bad;
    assert_int_equal(rp_wal_read_header(v, 0, &h, &bad), 0);
    rp_volume_close(v);

    int64_t *base = read_state_of(env);
    uint32_t ps = 8192;
    uint64_t acked = crash_round(env, seed, 0, 150);
    assert_true(acked > 2);

    /* find the last record of the log and flip a byte in its middle */
    assert_int_equal(rp_volume_open(env->volume, RP_VOLUME_RDONLY, &v), 0);
    assert_int_equal(rp_wal_read_header(v, 0, &h, &bad), 0);
    rp_wal_reader_t *r;
    assert_int_equal(rp_wal_reader_open(v, 0, h.redo_pos, h.incarnation, &r), 0);
    const rp_wal_record_t *rec;
    uint64_t last_pos = 0, last_end = 0, nrec = 0;
    while (rp_wal_reader_next(r, &rec) == 0) {
        last_pos = rec->pos;
        last_end = rec->end;
        nrec++;
    }
    rp_wal_reader_close(r);
    const rp_superblock_t *sb = rp_volume_sb(v);
    uint64_t ring = sb->wal_size - RP_WAL_RING_OFFSET;
    uint64_t mid = last_pos + (last_end - last_pos) / 2;
    uint64_t off = rp_volume_wal_offset(sb, 0) + RP_WAL_RING_OFFSET + mid % ring;
    rp_volume_close(v);
    assert_true(nrec >= acked);
    rp_test_damage(env->volume, off, 1, 0x5c);

    assert_int_equal(rp_instance_open(&env->cfg, &inst), 0);
    rp_instance_stats_t st;
    rp_instance_get_stats(inst, &st);
    assert_true(st.recovery_torn_tail);
    assert_int_equal(st.recovery_records, nrec - 1);
    int64_t *now = read_state(inst);
    rp_instance_close(inst);
    /* every record before the torn one is applied, the torn one is not */
    assert_int_equal(matching_prefix(now, base, seed, nrec - 1, nrec - 1, ps), (int64_t)nrec - 1);
    free(now);
    free(base);
    env->cfg.checkpoint_timeout = 300000;
    env->cfg.checkpoint_wal_percent = 50;
}

static void test_damaged_page_outside_the_log_is_reported(void **state)
{
    rp_test_env_t *env = *state;
    rp_instance_t *inst;
    assert_int_equal(rp_instance_open(&env->cfg, &inst), 0);
    rp_instance_close(inst); /* clean: nothing to replay, nothing to repair with */
    rp_volume_t *v;
    assert_int_equal(rp_volume_open(env->volume, RP_VOLUME_RDONLY, &v), 0);
    uint64_t off = rp_volume_page_offset(rp_volume_sb(v), pages[7]) + 1000;
    rp_volume_close(v);
    unsigned char saved[8];
    rp_test_read(env->volume, off, saved, sizeof(saved));
    rp_test_damage(env->volume, off, 8, 0x77);
    assert_int_equal(rp_instance_open(&env->cfg, &inst), 0);
    rp_mtr_t m;
    unsigned char *page;
    assert_int_equal(rp_mtr_begin(&m, inst, 0, 0), 0);
    assert_int_equal(rp_mtr_get(&m, pages[7], RP_LATCH_S, &page), RP_ECORRUPT);
    char expect[64];
    snprintf(expect, sizeof(expect), "page %llu", (unsigned long long)pages[7]);
    assert_non_null(strstr(rp_last_error()->message, expect));
    rp_mtr_abort(&m);
    rp_instance_close(inst);
    /* restore the bytes so later tests see a sound volume */
    int fd = open(env->volume, O_WRONLY);
    assert_int_equal(pwrite(fd, saved, sizeof(saved), (off_t)off), (ssize_t)sizeof(saved));
    close(fd);
}

static void test_space_alloc_until_full_then_free(void **state)
{
    (void)state;
    rp_test_env_t env;
    rp_test_env_create(&env, 24 << 20, 8 << 20, 1); /* about 1900 data pages */
    rp_instance_t *inst;
    assert_int_equal(rp_instance_open(&env.cfg, &inst), 0);
    uint64_t free0 = rp_space_free_pages(inst);
    assert_true(free0 > 1000);
    rp_page_id_t *got = calloc(free0 + 1, sizeof(*got));
    uint64_t n = 0;
    int rc = 0;
    while (rc == 0) {
        rp_mtr_t m;
        assert_int_equal(rp_mtr_begin(&m, inst, 0, 17), 0);
        for (int k = 0; k < 16; k++) {
            rp_page_id_t id;
            rc = rp_space_alloc(&m, &id);
            if (rc)
                break;
            unsigned char *page;
            assert_int_equal(rp_mtr_get_new(&m, id, &page), 0);
            rp_page_init(page, 8192, id, CNT_TYPE);
            got[n++] = id;
        }
        rp_mtr_commit(&m);
    }
    assert_int_equal(rc, RP_ENOSPC);
    assert_non_null(strstr(rp_last_error()->message, "volume is full"));
    assert_int_equal(n, free0);
    for (uint64_t i = 0; i < n; i++)
        for (uint64_t j = i + 1; j < n && j < i + 50; j++)
            assert_true(got[i] != got[j]);
    /* a change touching more pages than one record can hold is refused up front */
    rp_mtr_t big;
    assert_int_equal(rp_mtr_begin(&big, inst, 0, 1000), RP_ETOOBIG);
    assert_non_null(strstr(rp_last_error()->message, "too large for the WAL"));
    /* free half, in one mtr per 32 pages; then they are allocatable again, after a restart too */
    for (uint64_t i = 0; i < n / 2; i += 32) {
        rp_mtr_t m;
        assert_int_equal(rp_mtr_begin(&m, inst, 0, 33), 0);
        for (uint64_t k = i; k < i + 32 && k < n / 2; k++)
            assert_int_equal(rp_space_free(&m, got[k]), 0);
        rp_mtr_commit(&m);
    }
    assert_int_equal(rp_space_free_pages(inst), n / 2);
    rp_mtr_t m;
    assert_int_equal(rp_mtr_begin(&m, inst, 0, 2), 0);
    assert_int_equal(rp_space_free(&m, 0), RP_EINVAL); /* a bitmap page is never freed */
    rp_mtr_abort(&m);
    rp_instance_close(inst);
    assert_int_equal(rp_instance_open(&env.cfg, &inst), 0);
    assert_int_equal(rp_space_free_pages(inst), n / 2);
    rp_instance_close(inst);
    free(got);
    rp_test_env_destroy(&env);
}

static void test_second_open_on_same_data_dir_names_the_holder(void **state)
{
    rp_test_env_t *env = *state;
    rp_instance_t *a, *b;
    assert_int_equal(rp_instance_open(&env->cfg, &a), 0);
    assert_int_equal(rp_instance_open(&env->cfg, &b), RP_EBUSY);
    const rp_report_t *r = rp_last_error();
    assert_non_null(strstr(r->message, "could not lock data directory"));
    char pid[32];
    snprintf(pid, sizeof(pid), "process %d", (int)getpid());
    assert_non_null(strstr(r->detail, pid));
    assert_non_null(strstr(r->hint, "Stop that instance first"));
    /* another data directory, same slot: the volume's slot lock refuses */
    rp_instance_config_t other = env->cfg;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/data2", env->dir);
    other.data_dir = dir;
    assert_int_equal(rp_instance_open(&other, &b), RP_EBUSY);
    assert_non_null(strstr(rp_last_error()->message, "slot 0"));
    rp_instance_close(a);
}

int main(void)
{
    rp_log_set_level(getenv("RP_TEST_VERBOSE") ? RP_LOG_DEBUG : RP_LOG_WARNING);
    assert_int_equal(rp_rmgr_register(CNT_RMGR, &cnt_rmgr), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_shutdown_replays_nothing),
        cmocka_unit_test(test_many_operations_with_eviction_and_checkpoints),
        cmocka_unit_test(test_crash_recovery_keeps_every_acknowledged_change),
        cmocka_unit_test(test_torn_page_is_repaired_from_its_image),
        cmocka_unit_test(test_torn_wal_tail_ends_replay_cleanly),
        cmocka_unit_test(test_damaged_page_outside_the_log_is_reported),
        cmocka_unit_test(test_second_open_on_same_data_dir_names_the_holder),
        cmocka_unit_test(test_space_alloc_until_full_then_free),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
