/*
 * test_drc.c - the directory: partition maps and plans, every transition of an entry, what is sent again
 * after a loss, FIFO fairness, memory per cached page
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "drc/drc.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static void test_map_is_balanced_and_deterministic(void **state)
{
    (void)state;
    int members[] = {2, 0, 1};
    drc_map_t m;
    assert_int_equal(drc_map_init(&m, 1024, members, 3), 0);
    int count[3] = {0};
    for (uint32_t p = 0; p < 1024; p++)
        count[m.owner[p]]++;
    assert_true(count[0] >= 341 && count[0] <= 342);
    assert_true(count[1] >= 341 && count[1] <= 342);
    assert_true(count[2] >= 341 && count[2] <= 342);
    /* every member computes the same master for a resource */
    drc_map_t m2;
    int other_order[] = {1, 2, 0};
    assert_int_equal(drc_map_init(&m2, 1024, other_order, 3), 0);
    for (uint64_t r = 0; r < 10000; r++)
        assert_int_equal(drc_map_master(&m, drc_res_page(r)), drc_map_master(&m2, drc_res_page(r)));
    /* resources spread over all partitions */
    int hits[1024] = {0};
    for (uint64_t r = 0; r < 100000; r++)
        hits[drc_partition(&m, drc_res_page(r))]++;
    for (int p = 0; p < 1024; p++)
        assert_true(hits[p] > 40 && hits[p] < 180);
    assert_int_not_equal(drc_res_lock("space"), drc_res_lock("spade"));
    assert_true(drc_res_is_lock(drc_res_lock("space")) && !drc_res_is_lock(drc_res_page(7)));
    int bad[] = {0};
    assert_int_not_equal(drc_map_init(&m2, 1000, bad, 1), 0); /* not a power of two */
    drc_map_free(&m);
    drc_map_free(&m2);
}

static void check_balanced(const drc_map_t *m, const int *members, int n)
{
    int count[64] = {0};
    for (uint32_t p = 0; p < m->partitions; p++)
        count[m->owner[p]]++;
    int lo = 1 << 30, hi = 0, total = 0;
    for (int i = 0; i < n; i++) {
        lo = count[members[i]] < lo ? count[members[i]] : lo;
        hi = count[members[i]] > hi ? count[members[i]] : hi;
        total += count[members[i]];
    }
    assert_int_equal(total, (int)m->partitions); /* every partition has a live master */
    assert_true(hi - lo <= 1);
}

static void test_plans_move_as_few_partitions_as_possible(void **state)
{
    (void)state;
    int three[] = {0, 1, 2};
    drc_map_t m3, m2, m4, back;
    uint32_t moved;
    assert_int_equal(drc_map_init(&m3, 1024, three, 3), 0);
    /* member 1 leaves: exactly its partitions move */
    int two[] = {0, 2};
    assert_int_equal(drc_map_plan(&m3, two, 2, &m2, &moved), 0);
    uint32_t had1 = 0;
    for (uint32_t p = 0; p < 1024; p++)
        had1 += m3.owner[p] == 1;
    assert_int_equal(moved, had1);
    check_balanced(&m2, two, 2);
    for (uint32_t p = 0; p < 1024; p++)
        if (m3.owner[p] != 1)
            assert_int_equal(m2.owner[p], m3.owner[p]); /* nobody else's partition moved */
    assert_true(m2.version > m3.version);
    /* member 3 joins: it takes about a quarter, only from the others */
    int four[] = {0, 1, 2, 3};
    assert_int_equal(drc_map_plan(&m3, four, 4, &m4, &moved), 0);
    check_balanced(&m4, four, 4);
    assert_int_equal(moved, 256);
    /* 1 comes back to the two-member map */
    assert_int_equal(drc_map_plan(&m2, three, 3, &back, &moved), 0);
    check_balanced(&back, three, 3);
    assert_true(moved <= 342);
    drc_map_free(&m3);
    drc_map_free(&m2);
    drc_map_free(&m4);
    drc_map_free(&back);
}

static const drc_action_t *find_action(const drc_actions_t *a, int kind, int to)
{
    for (int i = 0; i < a->n; i++)
        if (a->a[i].kind == kind && a->a[i].to == to)
            return &a->a[i];
    return NULL;
}

static void test_entry_transitions(void **state)
{
    (void)state;
    drc_t *d;
    assert_int_equal(drc_create(0, 64, &d), 0);
    drc_actions_t a;
    drc_entry_view_t v;
    drc_res_t P = drc_res_page(100);

    /* S, nobody holds it: granted from the volume at once */
    drc_request(d, P, 1, DRC_S, 11, true, &a);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.a[0].kind, DRC_ACT_GRANT);
    assert_int_equal(a.a[0].source, DRC_FROM_DISK);
    assert_int_equal(a.a[0].req_id, 11);
    /* a second S from another member: also from the volume (no owner has anything newer) */
    drc_request(d, P, 2, DRC_S, 12, true, &a);
    assert_int_equal(a.a[0].source, DRC_FROM_DISK);
    assert_true(drc_entry_view(d, P, &v));
    assert_int_equal(v.copies, (1 << 1) | (1 << 2));
    assert_int_equal(v.mode, DRC_S);

    /* X by 1 while 2 has a copy: invalidate 2 first, no grant yet */
    drc_request(d, P, 1, DRC_X, 13, true, &a);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.a[0].kind, DRC_ACT_INVALIDATE);
    assert_int_equal(a.a[0].to, 2);
    assert_true(drc_entry_view(d, P, &v) && v.busy);
    /* a request arriving now waits its turn */
    drc_request(d, P, 3, DRC_S, 14, true, &a);
    assert_int_equal(a.n, 0);
    /* 2 acks: 1 gets X from its own copy, then 3's S is forwarded to the new owner 1 */
    drc_ack(d, P, 2, 0, &a);
    assert_int_equal(a.n, 2);
    const drc_action_t *g = find_action(&a, DRC_ACT_GRANT, 1);
    assert_non_null(g);
    assert_int_equal(g->mode, DRC_X);
    assert_int_equal(g->source, DRC_FROM_HAVE);
    const drc_action_t *f = find_action(&a, DRC_ACT_FORWARD, 1);
    assert_non_null(f);
    assert_int_equal(f->requester, 3);
    assert_int_equal(f->mode, DRC_S);
    assert_int_equal(f->req_id, 14);
    /* 3 installs the forwarded page: 1 keeps S (possibly dirty: it stays owner), 3 has S */
    drc_done(d, P, 3, f->seq, &a);
    assert_true(drc_entry_view(d, P, &v));
    assert_false(v.busy);
    assert_int_equal(v.mode, DRC_S);
    assert_int_equal(v.owner, 1);
    assert_int_equal(v.copies, (1 << 1) | (1 << 3));
    /* a stale done (wrong seq) changes nothing */
    drc_done(d, P, 3, f->seq + 7, &a);
    assert_int_equal(a.n, 0);

    /* X by 2 (no copy): invalidate 3, then forward from the owner 1 (which drops its copy) */
    drc_request(d, P, 2, DRC_X, 15, true, &a);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.a[0].kind, DRC_ACT_INVALIDATE);
    assert_int_equal(a.a[0].to, 3);
    drc_ack(d, P, 3, 0, &a);
    f = find_action(&a, DRC_ACT_FORWARD, 1);
    assert_non_null(f);
    assert_int_equal(f->mode, DRC_X);
    assert_int_equal(f->requester, 2);
    drc_done(d, P, 2, f->seq, &a);
    assert_true(drc_entry_view(d, P, &v));
    assert_int_equal(v.mode, DRC_X);
    assert_int_equal(v.owner, 2);
    assert_int_equal(v.copies, 1 << 2);

    /* 2 evicts it (writing it first): the volume is current, the entry disappears */
    drc_release(d, P, 2, &a);
    assert_false(drc_entry_view(d, P, &v));
    drc_request(d, P, 0, DRC_X, 16, true, &a);
    assert_int_equal(a.a[0].source, DRC_FROM_DISK);

    /* a release crossing a forward: the owner answers the requester with "read the volume"; the
     * requester's done completes the transfer normally */
    drc_request(d, P, 1, DRC_S, 17, true, &a);
    f = find_action(&a, DRC_ACT_FORWARD, 0);
    assert_non_null(f);
    drc_release(d, P, 0, &a);
    drc_done(d, P, 1, f->seq, &a);
    assert_true(drc_entry_view(d, P, &v));
    assert_int_equal(v.owner, DRC_NONE);
    assert_int_equal(v.copies, 1 << 1);

    /* a repeated request (after a timeout) by a member that has the copy is granted from that copy */
    drc_request(d, P, 1, DRC_S, 18, true, &a);
    assert_int_equal(a.a[0].source, DRC_FROM_HAVE);
    drc_stats_t st;
    drc_stats(d, &st);
    assert_int_equal(st.requests, 8);
    assert_int_equal(st.forwards, 3);
    assert_int_equal(st.invalidations, 2);
    drc_destroy(d);
}

static void collect(void *arg, const drc_action_t *a)
{
    drc_actions_t *all = arg;
    assert_true(all->n < DRC_MAX_ACTIONS);
    all->a[all->n++] = *a;
}

/* What drc_foreach_busy lists is exactly what started each transfer still in progress, so that a
 * resender can send it again; a transfer that completed is not listed. */
static void test_busy_entries_list_their_messages(void **state)
{
    (void)state;
    drc_t *d;
    assert_int_equal(drc_create(0, 64, &d), 0);
    drc_actions_t a, busy = {0};
    drc_res_t P = drc_res_page(7), Q = drc_res_page(8);
    drc_request(d, P, 1, DRC_S, 1, true, &a);
    drc_request(d, P, 2, DRC_S, 2, true, &a);
    drc_request(d, P, 0, DRC_X, 3, true, &a);          /* invalidates 1 and 2 */
    assert_int_equal(a.n, 2);
    drc_request(d, Q, 1, DRC_X, 4, true, &a);          /* granted: 1 owns Q */
    drc_request(d, Q, 2, DRC_S, 5, true, &a);          /* forward from 1 */
    const drc_action_t *fw = find_action(&a, DRC_ACT_FORWARD, 1);
    assert_non_null(fw);
    drc_action_t forward = *fw;
    drc_foreach_busy(d, collect, &busy);
    assert_int_equal(busy.n, 3);
    const drc_action_t *again = find_action(&busy, DRC_ACT_FORWARD, 1);
    assert_non_null(again);
    assert_true(again->res == Q && again->seq == forward.seq && again->req_id == 5 && again->requester == 2 &&
                again->mode == DRC_S);
    assert_non_null(find_action(&busy, DRC_ACT_INVALIDATE, 1));
    assert_non_null(find_action(&busy, DRC_ACT_INVALIDATE, 2));
    /* 1 acknowledges: only 2's invalidation is left; the owner of Q evicts it during the transfer: the
     * forward stays listed (to the owner, which answers "read the volume") until the DONE */
    drc_ack(d, P, 1, find_action(&busy, DRC_ACT_INVALIDATE, 1)->seq, &a);
    drc_release(d, Q, 1, &a);
    busy.n = 0;
    drc_foreach_busy(d, collect, &busy);
    assert_int_equal(busy.n, 2);
    assert_non_null(find_action(&busy, DRC_ACT_INVALIDATE, 2));
    assert_non_null(find_action(&busy, DRC_ACT_FORWARD, 1));
    drc_ack(d, P, 2, 0, &a);
    drc_done(d, Q, 2, forward.seq, &a);
    busy.n = 0;
    drc_foreach_busy(d, collect, &busy);
    assert_int_equal(busy.n, 0);
    /* the owner that left during the transfer holds nothing afterwards */
    drc_entry_view_t v;
    assert_true(drc_entry_view(d, Q, &v));
    assert_int_equal(v.owner, DRC_NONE);
    assert_int_equal(v.copies, 1 << 2);
    drc_destroy(d);
}

static void test_fifo_is_fair(void **state)
{
    (void)state;
    drc_t *d;
    assert_int_equal(drc_create(0, 16, &d), 0);
    drc_actions_t a;
    drc_res_t L = drc_res_lock("space");
    drc_request(d, L, 1, DRC_X, 1, true, &a);
    assert_int_equal(a.a[0].kind, DRC_ACT_GRANT);
    /* 2 asks: the holder 1 is told to hand over; 3, 2 (again, another request) and 4 queue behind */
    int order[] = {2, 3, 2, 4};
    drc_request(d, L, order[0], DRC_X, 100, true, &a);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.a[0].kind, DRC_ACT_FORWARD);
    assert_int_equal(a.a[0].to, 1);
    drc_action_t next = a.a[0];
    for (int i = 1; i < 4; i++) {
        drc_request(d, L, order[i], DRC_X, (uint64_t)(100 + i), true, &a);
        assert_int_equal(a.n, 0);
    }
    drc_entry_view_t v;
    assert_true(drc_entry_view(d, L, &v));
    assert_int_equal(v.waiters, 3);
    /* each handover completes with the new holder's done, which starts the next in arrival order */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(next.requester, order[i]);
        assert_int_equal(next.req_id, (uint64_t)(100 + i));
        drc_done(d, L, order[i], next.seq, &a);
        if (i < 3) {
            assert_int_equal(a.n, 1);
            assert_int_equal(a.a[0].kind, DRC_ACT_FORWARD);
            assert_int_equal(a.a[0].to, order[i]); /* the current holder hands over */
            next = a.a[0];
        } else {
            assert_int_equal(a.n, 0);
        }
    }
    assert_true(drc_entry_view(d, L, &v));
    assert_int_equal(v.owner, 4);
    assert_int_equal(v.waiters, 0);
    drc_destroy(d);
}

static void test_many_resources_and_memory(void **state)
{
    (void)state;
    drc_t *d;
    assert_int_equal(drc_create(0, 1024, &d), 0);
    drc_actions_t a;
    size_t heap0 = mallinfo2().uordblks;
    for (uint64_t p = 0; p < 100000; p++)
        drc_request(d, drc_res_page(p), (int)(p % 3), DRC_S, p, true, &a);
    size_t heap1 = mallinfo2().uordblks;
    drc_stats_t st;
    drc_stats(d, &st);
    assert_int_equal(st.entries, 100000);
    /* what the heap really gave (glibc's count; a sanitizer's allocator does not keep it): the reported
     * bytes must not hide allocator overhead */
    if (heap1 > heap0) {
        double heap_per_entry = (double)(heap1 - heap0) / (double)st.entries;
        print_message("heap growth: %.1f bytes per cached page\n", heap_per_entry);
        assert_true(heap_per_entry <= (double)st.bytes / (double)st.entries + 1.0);
    }
    /* the design budget: at most 64 bytes per cached page plus the hash table */
    double per_entry = (double)st.bytes / (double)st.entries;
    print_message("directory memory: %.1f bytes per cached page (a 64-byte entry and its hash buckets)\n",
                  per_entry);
    assert_true(per_entry <= 64 + 16); /* the budget: 64 bytes per entry plus the hash table */
    for (uint64_t p = 0; p < 100000; p++)
        drc_release(d, drc_res_page(p), (int)(p % 3), &a);
    drc_stats(d, &st);
    assert_int_equal(st.entries, 0);
    drc_destroy(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_is_balanced_and_deterministic),
        cmocka_unit_test(test_plans_move_as_few_partitions_as_possible),
        cmocka_unit_test(test_entry_transitions),
        cmocka_unit_test(test_busy_entries_list_their_messages),
        cmocka_unit_test(test_fifo_is_fair),
        cmocka_unit_test(test_many_resources_and_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
