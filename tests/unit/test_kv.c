/*
 * test_kv.c - the B-link tree and the key-value store against an in-memory model
 *
 * Random operations (puts of small, large and overflow values, deletes, read-modify-writes, batches)
 * are applied both to the store and to a sorted array; after each round every key is read back, a
 * full scan must return exactly the model's keys in order, and the tree is verified level by level.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kv/db.h"
#include "common/util.h"
#include "kv/tree.h"
#include "respool/error.h"
#include "respool/instance.h"
#include "respool/log.h"
#include "respool/space.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct entry {
    char *key;
    size_t klen;
    char *val;
    size_t vlen;
} entry_t;

typedef struct model {
    entry_t *e;
    size_t n, cap;
} model_t;

static size_t model_find(model_t *md, const char *k, size_t kl, bool *found)
{
    size_t lo = 0, hi = md->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = kv_key_cmp(md->e[mid].key, md->e[mid].klen, k, kl);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < md->n && kv_key_cmp(md->e[lo].key, md->e[lo].klen, k, kl) == 0;
    return lo;
}

static void model_put(model_t *md, const char *k, size_t kl, const char *v, size_t vl)
{
    bool found;
    size_t i = model_find(md, k, kl, &found);
    if (found) {
        free(md->e[i].val);
    } else {
        if (md->n == md->cap) {
            md->cap = md->cap ? md->cap * 2 : 256;
            md->e = realloc(md->e, md->cap * sizeof(entry_t));
        }
        memmove(&md->e[i + 1], &md->e[i], (md->n - i) * sizeof(entry_t));
        md->n++;
        md->e[i].key = malloc(kl ? kl : 1);
        memcpy(md->e[i].key, k, kl);
        md->e[i].klen = kl;
    }
    md->e[i].val = malloc(vl ? vl : 1);
    memcpy(md->e[i].val, v, vl);
    md->e[i].vlen = vl;
}

static bool model_del(model_t *md, const char *k, size_t kl)
{
    bool found;
    size_t i = model_find(md, k, kl, &found);
    if (!found)
        return false;
    free(md->e[i].key);
    free(md->e[i].val);
    memmove(&md->e[i], &md->e[i + 1], (md->n - i - 1) * sizeof(entry_t));
    md->n--;
    return true;
}

static void model_free(model_t *md)
{
    for (size_t i = 0; i < md->n; i++) {
        free(md->e[i].key);
        free(md->e[i].val);
    }
    free(md->e);
    memset(md, 0, sizeof(*md));
}

/* Keys: a shared prefix sometimes (long common prefixes stress separators), length 1..1024. */
static size_t make_key(uint64_t *rs, char *buf)
{
    uint64_t r = rp_test_rand(rs);
    size_t len;
    switch (r % 10) {
    case 0:
        len = 1 + rp_test_rand(rs) % KV_KEY_MAX;
        break;
    case 1:
        len = 200 + rp_test_rand(rs) % 200;
        break;
    default:
        len = 4 + rp_test_rand(rs) % 24;
    }
    uint64_t id = rp_test_rand(rs) % 5000;
    int n = snprintf(buf, len + 1, "key:%06llu:", (unsigned long long)id);
    for (size_t i = (size_t)n; i < len; i++)
        buf[i] = (char)('a' + (id * 7 + i) % 26);
    return len < (size_t)n ? len : len;
}

static size_t make_value(uint64_t *rs, char *buf)
{
    uint64_t r = rp_test_rand(rs) % 100;
    size_t len = r < 60 ? rp_test_rand(rs) % 100 : r < 90 ? rp_test_rand(rs) % 5000
                                                           : rp_test_rand(rs) % (KV_VALUE_MAX + 1);
    uint64_t seed = rp_test_rand(rs);
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)(seed + i * 31);
    return len;
}

typedef struct fixture {
    rp_test_env_t env;
    rp_instance_t *inst;
    kv_db_t *db;
} fixture_t;

static void open_db(fixture_t *fx)
{
    int rc = rp_instance_open(&fx->env.cfg, &fx->inst);
    if (rc)
        rp_log_report(RP_LOG_ERROR, "test");
    assert_int_equal(rc, 0);
    assert_int_equal(kv_db_open(fx->inst, &fx->db), 0);
}

static void close_db(fixture_t *fx)
{
    kv_db_close(fx->db);
    rp_instance_close(fx->inst);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    rp_test_env_create(&fx->env, 512ULL << 20, 64ULL << 20, 2);
    fx->env.cfg.buffer_pool_size = 8 << 20; /* smaller than the data: eviction happens */
    fx->env.cfg.wal_buffers = 8 << 20;
    kv_db_register_rmgr();
    open_db(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    close_db(fx);
    rp_test_env_destroy(&fx->env);
    free(fx);
    return 0;
}

typedef struct scan_ctx {
    model_t *md;
    size_t next;
    bool ok;
} scan_ctx_t;

static void scan_cb(const char *key, size_t klen, void *arg)
{
    scan_ctx_t *sc = arg;
    if (sc->next >= sc->md->n || kv_key_cmp(key, klen, sc->md->e[sc->next].key, sc->md->e[sc->next].klen) != 0)
        sc->ok = false;
    sc->next++;
}

static void verify_against_model(fixture_t *fx, model_t *md)
{
    kv_buf_t v = {0};
    uint64_t gate;
    for (size_t i = 0; i < md->n; i++) {
        int rc = kv_db_get(fx->db, md->e[i].key, md->e[i].klen, &v, NULL, &gate);
        if (rc) {
            rp_log_report(RP_LOG_ERROR, "test");
            fail_msg("key %zu of %zu (length %zu) missing: %d", i, md->n, md->e[i].klen, rc);
        }
        assert_int_equal(v.len, md->e[i].vlen);
        assert_memory_equal(v.data, md->e[i].val, v.len);
    }
    kv_buf_free(&v);
    scan_ctx_t sc = {md, 0, true};
    uint64_t cursor = 0;
    do {
        assert_int_equal(kv_db_scan(fx->db, cursor, 37, scan_cb, &sc, &cursor, &gate), 0);
    } while (cursor != 0);
    assert_true(sc.ok);
    assert_int_equal(sc.next, md->n);
    uint64_t count;
    assert_int_equal(kv_db_count(fx->db, &count, &gate), 0);
    assert_int_equal(count, md->n);
    char why[256];
    uint64_t keys;
    int rc = kv_tree_verify(fx->db, &keys, why, sizeof(why));
    if (rc)
        fail_msg("tree check: %s", why);
    assert_int_equal(keys, md->n);
}

struct put_arg {
    const char *v;
    size_t vl;
};

static int put_fn(kv_update_t *u, void *arg)
{
    struct put_arg *a = arg;
    u->decision = KV_PUT;
    u->new_value = a->v;
    u->new_len = a->vl;
    return 0;
}

struct append_arg {
    const char *suffix;
    size_t slen;
    kv_buf_t buf;
};

static int append_fn(kv_update_t *u, void *arg)
{
    struct append_arg *a = arg;
    size_t old = u->exists ? u->old_len : 0;
    kv_buf_reserve(&a->buf, old + a->slen + 1);
    if (old)
        memcpy(a->buf.data, u->old, old);
    memcpy(a->buf.data + old, a->suffix, a->slen);
    a->buf.len = old + a->slen;
    if (a->buf.len > KV_VALUE_MAX) {
        u->decision = KV_KEEP;
        return 0;
    }
    u->decision = KV_PUT;
    u->new_value = a->buf.data;
    u->new_len = a->buf.len;
    return 0;
}

static int del_fn(kv_update_t *u, void *arg)
{
    (void)arg;
    u->decision = KV_DELETE;
    return 0;
}

static void test_random_operations_match_the_model(void **state)
{
    fixture_t *fx = *state;
    model_t md = {0};
    uint64_t rs = 12345;
    char *key = malloc(KV_KEY_MAX + 1), *val = malloc(KV_VALUE_MAX + 1);
    uint64_t gate;
    for (int round = 0; round < 6; round++) {
        for (int op = 0; op < 1500; op++) {
            size_t kl = make_key(&rs, key);
            uint64_t r = rp_test_rand(&rs) % 100;
            if (r < 60) {
                size_t vl = make_value(&rs, val);
                struct put_arg a = {val, vl};
                int rc = kv_db_update(fx->db, key, kl, 0, put_fn, &a, &gate);
                if (rc) {
                    rp_log_report(RP_LOG_ERROR, "test");
                    fail_msg("put failed: %d", rc);
                }
                model_put(&md, key, kl, val, vl);
            } else if (r < 75) {
                assert_int_equal(kv_db_update(fx->db, key, kl, 0, del_fn, NULL, &gate), 0);
                model_del(&md, key, kl);
            } else if (r < 85) {
                char suffix[64];
                size_t sl = 1 + rp_test_rand(&rs) % 60;
                memset(suffix, 'A' + (int)(rp_test_rand(&rs) % 26), sl);
                struct append_arg a = {suffix, sl, {0}};
                assert_int_equal(kv_db_update(fx->db, key, kl, KV_UPDATE_NEED_OLD, append_fn, &a, &gate), 0);
                if (a.buf.len <= KV_VALUE_MAX)
                    model_put(&md, key, kl, a.buf.data, a.buf.len);
                kv_buf_free(&a.buf);
            } else {
                /* a batch: several puts and deletes, some keys twice (the last one wins) */
                kv_write_t w[8];
                char *keys[8], *vals[8];
                size_t nw = 1 + rp_test_rand(&rs) % 8;
                for (size_t i = 0; i < nw; i++) {
                    keys[i] = malloc(KV_KEY_MAX + 1);
                    vals[i] = malloc(20000);
                    w[i] = (kv_write_t){0};
                    if (i > 0 && rp_test_rand(&rs) % 5 == 0) {
                        memcpy(keys[i], w[i - 1].key, w[i - 1].klen);
                        w[i].klen = w[i - 1].klen;
                    } else {
                        w[i].klen = make_key(&rs, keys[i]);
                    }
                    w[i].key = keys[i];
                    w[i].del = rp_test_rand(&rs) % 4 == 0;
                    w[i].vlen = rp_test_rand(&rs) % 20000;
                    memset(vals[i], 'a' + (int)i, w[i].vlen);
                    w[i].value = vals[i];
                }
                int rc = kv_db_write_batch(fx->db, w, nw, &gate);
                if (rc) {
                    rp_log_report(RP_LOG_ERROR, "test");
                    fail_msg("batch failed: %d", rc);
                }
                for (size_t i = 0; i < nw; i++) {
                    if (w[i].del)
                        model_del(&md, w[i].key, w[i].klen);
                    else
                        model_put(&md, w[i].key, w[i].klen, w[i].value, w[i].vlen);
                }
                for (size_t i = 0; i < nw; i++) {
                    free(keys[i]);
                    free(vals[i]);
                }
            }
        }
        verify_against_model(fx, &md);
        kv_db_stats_t st;
        kv_db_get_stats(fx->db, &st);
        print_message("round %d: %zu keys, height %llu, %llu leaf and %llu internal splits, %llu overflow pages\n",
                      round, md.n, (unsigned long long)st.tree_height, (unsigned long long)st.leaf_splits,
                      (unsigned long long)st.internal_splits, (unsigned long long)st.overflow_pages_written);
    }
    /* everything survives a clean restart */
    close_db(fx);
    open_db(fx);
    verify_against_model(fx, &md);
    /* and deleting everything gives every overflow page back */
    uint64_t free_before = rp_space_free_pages(fx->inst);
    for (size_t i = md.n; i-- > 0;)
        assert_int_equal(kv_db_update(fx->db, md.e[i].key, md.e[i].klen, 0, del_fn, NULL, &gate), 0);
    assert_true(rp_space_free_pages(fx->inst) > free_before);
    model_free(&md);
    verify_against_model(fx, &md);
    free(key);
    free(val);
}

static void test_batch_is_all_or_nothing(void **state)
{
    fixture_t *fx = *state;
    uint64_t gate;
    char big[100];
    memset(big, 'x', sizeof(big));
    kv_write_t w[3] = {
        {.key = "batch-a", .klen = 7, .value = "1", .vlen = 1},
        {.key = "batch-b", .klen = 7, .value = big, .vlen = KV_VALUE_MAX + 1}, /* refused */
        {.key = "batch-c", .klen = 7, .value = "3", .vlen = 1},
    };
    assert_int_equal(kv_db_write_batch(fx->db, w, 3, &gate), RP_ETOOBIG);
    kv_buf_t v = {0};
    assert_int_equal(kv_db_get(fx->db, "batch-a", 7, &v, NULL, &gate), RP_ENOENT);
    assert_int_equal(kv_db_get(fx->db, "batch-c", 7, &v, NULL, &gate), RP_ENOENT);
    /* DEL k k counts k once */
    w[0] = (kv_write_t){.key = "batch-a", .klen = 7, .value = "1", .vlen = 1};
    assert_int_equal(kv_db_write_batch(fx->db, w, 1, &gate), 0);
    kv_write_t d[2] = {{.key = "batch-a", .klen = 7, .del = true}, {.key = "batch-a", .klen = 7, .del = true}};
    assert_int_equal(kv_db_write_batch(fx->db, d, 2, &gate), 0);
    assert_true(d[0].existed);
    assert_false(d[1].existed);
    /* a read batch sees duplicates and missing keys */
    w[0] = (kv_write_t){.key = "r1", .klen = 2, .value = "one", .vlen = 3};
    assert_int_equal(kv_db_write_batch(fx->db, w, 1, &gate), 0);
    kv_read_t r[3] = {{.key = "r1", .klen = 2}, {.key = "nope", .klen = 4}, {.key = "r1", .klen = 2}};
    kv_buf_t vals[3] = {{0}};
    assert_int_equal(kv_db_read_batch(fx->db, r, 3, vals, &gate), 0);
    assert_true(r[0].found && !r[1].found && r[2].found);
    assert_memory_equal(vals[2].data, "one", 3);
    for (int i = 0; i < 3; i++)
        kv_buf_free(&vals[i]);
    kv_buf_free(&v);
}

static void test_expired_keys_vanish(void **state)
{
    fixture_t *fx = *state;
    uint64_t gate;
    kv_write_t w[2] = {
        {.key = "ttl-past", .klen = 8, .value = "v", .vlen = 1, .expire_ms = (int64_t)rp_wall_ms() - 1000},
        {.key = "ttl-future", .klen = 10, .value = "v", .vlen = 1, .expire_ms = (int64_t)rp_wall_ms() + 60000},
    };
    assert_int_equal(kv_db_write_batch(fx->db, w, 2, &gate), 0);
    kv_buf_t v = {0};
    int64_t exp;
    assert_int_equal(kv_db_get(fx->db, "ttl-past", 8, &v, &exp, &gate), RP_ENOENT);
    assert_int_equal(kv_db_get(fx->db, "ttl-future", 10, &v, &exp, &gate), 0);
    assert_true(exp > (int64_t)rp_wall_ms());
    /* the sweeper removes the expired cell itself within a few rounds */
    kv_db_stats_t st;
    for (int i = 0; i < 100; i++) {
        kv_db_get_stats(fx->db, &st);
        if (st.expired_keys > 0)
            break;
        usleep(50000);
    }
    assert_true(st.expired_keys > 0);
    kv_buf_free(&v);
}

struct writer {
    kv_db_t *db;
    int id;
    int n;
};

static void *writer_main(void *arg)
{
    struct writer *wr = arg;
    for (int i = 0; i < wr->n; i++) {
        char key[64], val[300];
        int kl = snprintf(key, sizeof(key), "t%d:%08d", wr->id, i * 7919 % wr->n);
        memset(val, 'a' + wr->id, sizeof(val));
        struct put_arg a = {val, sizeof(val)};
        uint64_t gate;
        if (kv_db_update(wr->db, key, (size_t)kl, 0, put_fn, &a, &gate) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_inserts_split_correctly(void **state)
{
    fixture_t *fx = *state;
    enum { THREADS = 4, PER = 4000 };
    pthread_t t[THREADS];
    struct writer w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct writer){fx->db, i, PER};
        pthread_create(&t[i], NULL, writer_main, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    kv_buf_t v = {0};
    uint64_t gate;
    for (int id = 0; id < THREADS; id++)
        for (int i = 0; i < PER; i++) {
            char key[64];
            int kl = snprintf(key, sizeof(key), "t%d:%08d", id, i);
            assert_int_equal(kv_db_get(fx->db, key, (size_t)kl, &v, NULL, &gate), 0);
            assert_int_equal(v.len, 300);
            assert_int_equal(v.data[0], 'a' + id);
        }
    kv_buf_free(&v);
    char why[256];
    uint64_t keys;
    if (kv_tree_verify(fx->db, &keys, why, sizeof(why)) != 0)
        fail_msg("tree check: %s", why);
    assert_true(keys >= THREADS * PER);
}

static void test_key_limits(void **state)
{
    fixture_t *fx = *state;
    char key[KV_KEY_MAX + 2];
    memset(key, 'k', sizeof(key));
    uint64_t gate;
    struct put_arg a = {"v", 1};
    assert_int_equal(kv_db_update(fx->db, key, KV_KEY_MAX, 0, put_fn, &a, &gate), 0);
    assert_int_equal(kv_db_update(fx->db, key, KV_KEY_MAX + 1, 0, put_fn, &a, &gate), RP_ETOOBIG);
    /* the empty key is a key like any other */
    assert_int_equal(kv_db_update(fx->db, "", 0, 0, put_fn, &a, &gate), 0);
    kv_buf_t v = {0};
    assert_int_equal(kv_db_get(fx->db, "", 0, &v, NULL, &gate), 0);
    kv_buf_free(&v);
    /* a cursor that is not a leaf is refused, not followed */
    uint64_t next;
    assert_int_equal(kv_db_scan(fx->db, 1, 10, scan_cb, NULL, &next, &gate), RP_EINVAL);
}

int main(void)
{
    rp_log_set_level(getenv("RP_TEST_VERBOSE") ? RP_LOG_DEBUG : RP_LOG_WARNING);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_operations_match_the_model),
        cmocka_unit_test(test_batch_is_all_or_nothing),
        cmocka_unit_test(test_expired_keys_vanish),
        cmocka_unit_test(test_concurrent_inserts_split_correctly),
        cmocka_unit_test(test_key_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
