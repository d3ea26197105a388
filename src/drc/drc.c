/*
 * drc.c - the master's side of the directory: partition maps, entries, FIFO service (see drc.h)
 *
 * Entry state machine (one request served at a time per entry; the rest wait in arrival order):
 *
 *   IDLE --request S, nobody newer-------------------------> grant(disk)                       IDLE
 *   IDLE --request S, an owner holds the newest copy-------> forward(owner, S)      -> WAIT_DONE
 *   IDLE --request X, other copies exist-------------------> invalidate(each)       -> WAIT_ACKS
 *   IDLE --request X, no other copies, owner elsewhere----> forward(owner, X)       -> WAIT_DONE
 *   IDLE --request X, no other copies, no other owner-----> grant(have|disk)                   IDLE
 *   WAIT_ACKS --last ack (drc_ack / drc_release)-----------> forward or grant as above
 *   WAIT_DONE --done from the requester (drc_done)----------> IDLE, serve the queue
 *
 * An X grant waits for every invalidation to be acknowledged before the requester gets the page:
 * otherwise a reader on another member could still see the old value after the writer's change was
 * acknowledged (linearizability). An S grant from the owner leaves the owner holding S (its copy may
 * be dirty: the volume is current only while nobody is `owner`).
 */
#include "drc/drc.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { ST_IDLE = 0, ST_WAIT_ACKS = 1, ST_WAIT_DONE = 2 };

typedef struct waiter {
    uint64_t req_id;
    uint8_t requester, mode;
    struct waiter *next;
} waiter_t;

/* 64 bytes: the directory's cost per cached page (the design budget). */
typedef struct entry {
    drc_res_t res;
    uint64_t copies;        /* members holding a copy (any mode) */
    uint64_t seq;           /* grant sequence */
    uint64_t awaiting;      /* members whose invalidation ack is outstanding */
    uint64_t cur_req_id;    /* the request being served */
    struct entry *next;     /* hash chain */
    waiter_t *queue;        /* FIFO of requests behind the current one */
    uint8_t owner;          /* member with the newest copy, DRC_NONE if the volume is current */
    uint8_t mode;           /* N, S, X: the strongest mode granted */
    uint8_t state;
    uint8_t cur_requester, cur_mode;
    bool owner_gone;        /* the owner dropped its copy during the transfer (it stays its target) */
} entry_t;

_Static_assert(sizeof(entry_t) <= 64, "a directory entry fits the 64-byte budget");

typedef struct partition {
    pthread_mutex_t lock;
    entry_t **buckets;
    uint32_t nbuckets, nentries;
} partition_t;

/*
 * Entries come from blocks of ENTRIES_PER_BLOCK, not one malloc each: malloc would add 16 bytes of
 * chunk header to every 64-byte entry (25% over the budget). Freed entries go back to a free list and
 * are reused; the blocks stay until the directory is destroyed (the high-water mark of cached pages).
 * One mutex for the whole directory: taken only when an entry is created or dropped, briefly.
 */
#define ENTRIES_PER_BLOCK 127 /* 127 * 64 + the link = 8136 bytes: one 8 KiB allocation */
typedef struct entry_block {
    struct entry_block *next;
    entry_t entries[ENTRIES_PER_BLOCK];
} entry_block_t;

struct drc {
    int self;
    uint32_t partitions;
    partition_t *parts;
    pthread_mutex_t slab_lock;
    entry_t *free_entries;    /* linked through `next` */
    entry_block_t *blocks;
    uint64_t nblocks;
    _Atomic uint64_t entries, waiters;
    _Atomic uint64_t st_requests, st_disk, st_have, st_forwards, st_invalidations, st_queued;
};

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

drc_res_t drc_res_lock(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a: stable across members and releases */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return DRC_RES_LOCK_BIT | (h >> 1);
}

uint32_t drc_partition(const drc_map_t *map, drc_res_t res)
{
    return (uint32_t)(mix64(res) & (map->partitions - 1));
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int drc_map_init(drc_map_t *map, uint32_t partitions, const int *members, int n)
{
    if (n < 1 || n > DRC_MAX_MEMBERS || partitions == 0 || (partitions & (partitions - 1)))
        return rp_error(RP_EINVAL, "invalid partition map: %u partitions over %d members", partitions, n);
    int sorted[DRC_MAX_MEMBERS];
    memcpy(sorted, members, sizeof(int) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(int), cmp_int);
    map->partitions = partitions;
    map->version = 1;
    map->owner = rp_xmalloc(partitions);
    for (uint32_t p = 0; p < partitions; p++)
        map->owner[p] = (uint8_t)sorted[p % (uint32_t)n];
    return 0;
}

void drc_map_free(drc_map_t *map)
{
    free(map->owner);
    map->owner = NULL;
}

int drc_map_plan(const drc_map_t *old, const int *members, int n, drc_map_t *out, uint32_t *moved)
{
    if (n < 1 || n > DRC_MAX_MEMBERS)
        return rp_error(RP_EINVAL, "invalid member count %d", n);
    uint32_t P = old->partitions;
    bool member[256] = {false};
    uint32_t count[256] = {0};
    for (int i = 0; i < n; i++)
        member[members[i] & 0xff] = true;
    out->partitions = P;
    out->version = old->version + 1;
    out->owner = rp_xmalloc(P);
    memcpy(out->owner, old->owner, P);
    uint32_t *pool = rp_xmalloc(sizeof(uint32_t) * P);
    uint32_t npool = 0;
    for (uint32_t p = 0; p < P; p++) {
        if (member[out->owner[p]])
            count[out->owner[p]]++;
        else
            pool[npool++] = p; /* its master left */
    }
    /* targets: P/n each; the P%n extra ones go to the members that already have the most */
    int order[DRC_MAX_MEMBERS];
    memcpy(order, members, sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (count[order[j]] > count[order[i]] || (count[order[j]] == count[order[i]] && order[j] < order[i])) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    uint32_t target[256] = {0};
    for (int i = 0; i < n; i++)
        target[order[i]] = P / (uint32_t)n + ((uint32_t)i < P % (uint32_t)n ? 1 : 0);
    /* members above target give up their excess (from the top partitions down) */
    for (uint32_t p = P; p-- > 0;) {
        uint8_t o = out->owner[p];
        if (member[o] && count[o] > target[o]) {
            count[o]--;
            pool[npool++] = p;
        }
    }
    *moved = npool;
    /* members below target take from the pool */
    uint32_t next = 0;
    for (int i = 0; i < n; i++)
        while (count[members[i]] < target[members[i]] && next < npool) {
            out->owner[pool[next++]] = (uint8_t)members[i];
            count[members[i]]++;
        }
    free(pool);
    return 0;
}

int drc_create(int self, uint32_t partitions, drc_t **out)
{
    drc_t *d = calloc(1, sizeof(*d));
    if (!d)
        return rp_error(RP_ENOMEM, "out of memory");
    d->self = self;
    d->partitions = partitions;
    d->parts = calloc(partitions, sizeof(partition_t));
    if (!d->parts) {
        free(d);
        return rp_error(RP_ENOMEM, "out of memory");
    }
    for (uint32_t p = 0; p < partitions; p++)
        pthread_mutex_init(&d->parts[p].lock, NULL);
    pthread_mutex_init(&d->slab_lock, NULL);
    *out = d;
    return 0;
}

void drc_destroy(drc_t *d)
{
    if (!d)
        return;
    for (uint32_t p = 0; p < d->partitions; p++) {
        partition_t *pt = &d->parts[p];
        for (uint32_t b = 0; b < pt->nbuckets; b++)
            for (entry_t *e = pt->buckets[b], *nx; e; e = nx) {
                nx = e->next;
                for (waiter_t *w = e->queue, *wn; w; w = wn) {
                    wn = w->next;
                    free(w);
                }
            }
        free(pt->buckets);
        pthread_mutex_destroy(&pt->lock);
    }
    for (entry_block_t *b = d->blocks, *nb; b; b = nb) {
        nb = b->next;
        free(b);
    }
    pthread_mutex_destroy(&d->slab_lock);
    free(d->parts);
    free(d);
}

static entry_t *entry_alloc(drc_t *d)
{
    pthread_mutex_lock(&d->slab_lock);
    if (!d->free_entries) {
        entry_block_t *b = rp_xmalloc(sizeof(*b));
        b->next = d->blocks;
        d->blocks = b;
        d->nblocks++;
        for (int i = ENTRIES_PER_BLOCK; i-- > 0;) {
            b->entries[i].next = d->free_entries;
            d->free_entries = &b->entries[i];
        }
    }
    entry_t *e = d->free_entries;
    d->free_entries = e->next;
    pthread_mutex_unlock(&d->slab_lock);
    memset(e, 0, sizeof(*e));
    return e;
}

static void entry_free(drc_t *d, entry_t *e)
{
    pthread_mutex_lock(&d->slab_lock);
    e->next = d->free_entries;
    d->free_entries = e;
    pthread_mutex_unlock(&d->slab_lock);
}

static partition_t *part_of(drc_t *d, drc_res_t res)
{
    return &d->parts[mix64(res) & (d->partitions - 1)];
}

static uint32_t bucket_of(const partition_t *pt, drc_res_t res)
{
    return (uint32_t)((mix64(res) >> 32) & (pt->nbuckets - 1));
}

static entry_t *find(partition_t *pt, drc_res_t res)
{
    if (!pt->nbuckets)
        return NULL;
    for (entry_t *e = pt->buckets[bucket_of(pt, res)]; e; e = e->next)
        if (e->res == res)
            return e;
    return NULL;
}

static void grow(partition_t *pt)
{
    uint32_t nb = pt->nbuckets ? pt->nbuckets * 2 : 8;
    entry_t **b = rp_xcalloc(nb, sizeof(entry_t *));
    for (uint32_t i = 0; i < pt->nbuckets; i++)
        for (entry_t *e = pt->buckets[i], *nx; e; e = nx) {
            nx = e->next;
            uint32_t k = (uint32_t)((mix64(e->res) >> 32) & (nb - 1));
            e->next = b[k];
            b[k] = e;
        }
    free(pt->buckets);
    pt->buckets = b;
    pt->nbuckets = nb;
}

static entry_t *find_or_add(drc_t *d, partition_t *pt, drc_res_t res)
{
    entry_t *e = find(pt, res);
    if (e)
        return e;
    if (pt->nentries >= pt->nbuckets)
        grow(pt);
    e = entry_alloc(d);
    e->res = res;
    e->owner = DRC_NONE;
    uint32_t k = bucket_of(pt, res);
    e->next = pt->buckets[k];
    pt->buckets[k] = e;
    pt->nentries++;
    atomic_fetch_add_explicit(&d->entries, 1, memory_order_relaxed);
    return e;
}

/* Drops an entry that holds nothing and waits for nothing: the directory stays as small as the caches. */
static void maybe_free(drc_t *d, partition_t *pt, entry_t *e)
{
    if (e->copies || e->owner != DRC_NONE || e->state != ST_IDLE || e->queue)
        return;
    entry_t **link = &pt->buckets[bucket_of(pt, e->res)];
    while (*link != e)
        link = &(*link)->next;
    *link = e->next;
    pt->nentries--;
    atomic_fetch_sub_explicit(&d->entries, 1, memory_order_relaxed);
    entry_free(d, e);
}

/* The entry's invariants; asserted after every change. */
__attribute__((unused)) static bool entry_check(const entry_t *e)
{
    if (e->mode > DRC_X || e->state > ST_WAIT_DONE)
        return false;
    if (e->mode == DRC_N && e->copies)
        return false;
    if (e->mode == DRC_X && __builtin_popcountll(e->copies) > 1)
        return false; /* X is exclusive */
    if (e->owner != DRC_NONE && e->owner >= DRC_MAX_MEMBERS)
        return false;
    if (e->state == ST_WAIT_ACKS && !e->awaiting)
        return false;
    if (e->state == ST_IDLE && e->awaiting)
        return false;
    return true;
}

static void emit(drc_actions_t *out, uint8_t kind, uint8_t to, const entry_t *e, uint8_t mode, uint8_t source,
                 uint8_t requester, uint64_t req_id)
{
    if (out->n >= DRC_MAX_ACTIONS)
        rp_panic("drc", "too many actions for resource %" PRIx64, e->res);
    drc_action_t *a = &out->a[out->n++];
    a->kind = kind;
    a->to = to;
    a->mode = mode;
    a->source = source;
    a->requester = requester;
    a->res = e->res;
    a->req_id = req_id;
    a->seq = e->seq;
}

static uint64_t bit(int m)
{
    return 1ULL << (m & 63);
}

/* X for cur_requester once no other copy is left: forward from the owner, or grant. */
static void proceed_x(drc_t *d, entry_t *e, drc_actions_t *out)
{
    uint8_t r = e->cur_requester;
    e->seq++;
    if (e->owner != DRC_NONE && e->owner != r) {
        emit(out, DRC_ACT_FORWARD, e->owner, e, DRC_X, DRC_FROM_OWNER, r, e->cur_req_id);
        e->state = ST_WAIT_DONE;
        atomic_fetch_add_explicit(&d->st_forwards, 1, memory_order_relaxed);
        return;
    }
    bool have = e->owner == r || (e->copies & bit(r));
    emit(out, DRC_ACT_GRANT, r, e, DRC_X, have ? DRC_FROM_HAVE : DRC_FROM_DISK, r, e->cur_req_id);
    atomic_fetch_add_explicit(have ? &d->st_have : &d->st_disk, 1, memory_order_relaxed);
    e->copies = bit(r);
    e->owner = r;
    e->mode = DRC_X;
    e->state = ST_IDLE;
}

/* Starts serving a request; returns true if it completed at once (the entry is idle again). */
static bool serve(drc_t *d, entry_t *e, uint8_t r, uint8_t mode, uint64_t req_id, drc_actions_t *out)
{
    e->cur_requester = r;
    e->cur_mode = mode;
    e->cur_req_id = req_id;
    if (mode == DRC_S) {
        if ((e->copies & bit(r)) || e->owner == r) {
            /* it has a copy already (a repeat after a timeout): that copy is current */
            e->seq++;
            emit(out, DRC_ACT_GRANT, r, e, e->mode == DRC_X ? DRC_X : DRC_S, DRC_FROM_HAVE, r, req_id);
            atomic_fetch_add_explicit(&d->st_have, 1, memory_order_relaxed);
            return true;
        }
        e->seq++;
        if (e->owner != DRC_NONE) {
            emit(out, DRC_ACT_FORWARD, e->owner, e, DRC_S, DRC_FROM_OWNER, r, req_id);
            e->state = ST_WAIT_DONE;
            atomic_fetch_add_explicit(&d->st_forwards, 1, memory_order_relaxed);
            return false;
        }
        emit(out, DRC_ACT_GRANT, r, e, DRC_S, DRC_FROM_DISK, r, req_id);
        atomic_fetch_add_explicit(&d->st_disk, 1, memory_order_relaxed);
        e->copies |= bit(r);
        e->mode = DRC_S;
        return true;
    }
    /* X: every other copy goes first (the owner's is handled by the forward itself) */
    uint64_t others = e->copies & ~bit(r);
    if (e->owner != DRC_NONE && e->owner != r)
        others &= ~bit(e->owner);
    if (others) {
        e->seq++;
        e->awaiting = others;
        e->state = ST_WAIT_ACKS;
        for (int m = 0; m < DRC_MAX_MEMBERS; m++)
            if (others & bit(m)) {
                emit(out, DRC_ACT_INVALIDATE, (uint8_t)m, e, DRC_N, 0, r, req_id);
                atomic_fetch_add_explicit(&d->st_invalidations, 1, memory_order_relaxed);
            }
        return false;
    }
    proceed_x(d, e, out);
    return e->state == ST_IDLE;
}

/* Serves queued requests until one has to wait. */
static void serve_queue(drc_t *d, entry_t *e, drc_actions_t *out)
{
    while (e->state == ST_IDLE && e->queue) {
        waiter_t *w = e->queue;
        e->queue = w->next;
        atomic_fetch_sub_explicit(&d->waiters, 1, memory_order_relaxed);
        serve(d, e, w->requester, w->mode, w->req_id, out);
        free(w);
    }
}

void drc_request(drc_t *d, drc_res_t res, int requester, uint8_t mode, uint64_t req_id, bool has_copy,
                 drc_actions_t *out)
{
    out->n = 0;
    partition_t *pt = part_of(d, res);
    pthread_mutex_lock(&pt->lock);
    atomic_fetch_add_explicit(&d->st_requests, 1, memory_order_relaxed);
    entry_t *e = find_or_add(d, pt, res);
    if (!has_copy && e->state == ST_IDLE && !e->queue) {
        e->copies &= ~bit(requester);
        if (e->owner == requester)
            e->owner = DRC_NONE;
        if (!e->copies && e->owner == DRC_NONE)
            e->mode = DRC_N;
    }
    if (e->state != ST_IDLE || e->queue) {
        /* strictly in arrival order: nobody overtakes a queued request */
        waiter_t *w = rp_xmalloc(sizeof(*w));
        *w = (waiter_t){req_id, (uint8_t)requester, mode, NULL};
        waiter_t **tail = &e->queue;
        while (*tail)
            tail = &(*tail)->next;
        *tail = w;
        atomic_fetch_add_explicit(&d->waiters, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&d->st_queued, 1, memory_order_relaxed);
    } else {
        serve(d, e, (uint8_t)requester, mode, req_id, out);
        serve_queue(d, e, out);
    }
    assert(entry_check(e));
    pthread_mutex_unlock(&pt->lock);
}

void drc_done(drc_t *d, drc_res_t res, int requester, uint64_t seq, drc_actions_t *out)
{
    out->n = 0;
    partition_t *pt = part_of(d, res);
    pthread_mutex_lock(&pt->lock);
    entry_t *e = find(pt, res);
    if (e && e->state == ST_WAIT_DONE && e->cur_requester == requester && e->seq == seq) {
        uint8_t r = (uint8_t)requester;
        if (e->cur_mode == DRC_X) {
            e->copies = bit(r);
            e->owner = r;
            e->mode = DRC_X;
        } else {
            /* the owner kept its copy, now in S (unless it dropped it meanwhile) */
            e->copies |= bit(r);
            if (e->owner_gone)
                e->owner = DRC_NONE;
            if (e->owner != DRC_NONE)
                e->copies |= bit(e->owner);
            e->mode = DRC_S;
        }
        e->owner_gone = false;
        e->state = ST_IDLE;
        serve_queue(d, e, out);
        assert(entry_check(e));
        maybe_free(d, pt, e);
    }
    pthread_mutex_unlock(&pt->lock);
}

static void acked(drc_t *d, entry_t *e, int holder, drc_actions_t *out)
{
    e->copies &= ~bit(holder);
    /* During a transfer the owner stays the forward's target even once it dropped its copy: it answers
     * the forward with "read the volume", and a forward that was lost is sent to it again
     * (drc_foreach_busy). DONE then settles the owner. */
    if (e->owner == holder) {
        if (e->state == ST_WAIT_DONE)
            e->owner_gone = true;
        else
            e->owner = DRC_NONE;
    }
    if (e->state == ST_WAIT_ACKS && (e->awaiting & bit(holder))) {
        e->awaiting &= ~bit(holder);
        if (!e->awaiting) {
            proceed_x(d, e, out);
            serve_queue(d, e, out);
        }
    }
    if (!e->copies && e->owner == DRC_NONE && e->state == ST_IDLE)
        e->mode = DRC_N;
}

void drc_ack(drc_t *d, drc_res_t res, int holder, uint64_t seq, drc_actions_t *out)
{
    (void)seq; /* acks are matched by member: an ack for an earlier invalidation also means "no copy" */
    out->n = 0;
    partition_t *pt = part_of(d, res);
    pthread_mutex_lock(&pt->lock);
    entry_t *e = find(pt, res);
    if (e) {
        acked(d, e, holder, out);
        assert(entry_check(e));
        maybe_free(d, pt, e);
    }
    pthread_mutex_unlock(&pt->lock);
}

void drc_release(drc_t *d, drc_res_t res, int holder, drc_actions_t *out)
{
    out->n = 0;
    partition_t *pt = part_of(d, res);
    pthread_mutex_lock(&pt->lock);
    entry_t *e = find(pt, res);
    if (e) {
        /* A forward already on its way to this holder is answered by it with "read the volume": it
         * wrote the page before releasing. */
        acked(d, e, holder, out);
        assert(entry_check(e));
        maybe_free(d, pt, e);
    }
    pthread_mutex_unlock(&pt->lock);
}

void drc_stats(drc_t *d, drc_stats_t *st)
{
    st->entries = atomic_load(&d->entries);
    st->waiters = atomic_load(&d->waiters);
    pthread_mutex_lock(&d->slab_lock);
    st->bytes = d->nblocks * sizeof(entry_block_t) + st->waiters * sizeof(waiter_t);
    pthread_mutex_unlock(&d->slab_lock);
    for (uint32_t p = 0; p < d->partitions; p++)
        st->bytes += d->parts[p].nbuckets * sizeof(entry_t *);
    st->requests = atomic_load(&d->st_requests);
    st->grants_disk = atomic_load(&d->st_disk);
    st->grants_have = atomic_load(&d->st_have);
    st->forwards = atomic_load(&d->st_forwards);
    st->invalidations = atomic_load(&d->st_invalidations);
    st->queued = atomic_load(&d->st_queued);
}

bool drc_entry_view(drc_t *d, drc_res_t res, drc_entry_view_t *v)
{
    partition_t *pt = part_of(d, res);
    pthread_mutex_lock(&pt->lock);
    entry_t *e = find(pt, res);
    if (e) {
        v->copies = e->copies;
        v->owner = e->owner;
        v->mode = e->mode;
        v->busy = e->state != ST_IDLE;
        v->seq = e->seq;
        v->waiters = 0;
        for (waiter_t *w = e->queue; w; w = w->next)
            v->waiters++;
    }
    pthread_mutex_unlock(&pt->lock);
    return e != NULL;
}

void drc_foreach_busy(drc_t *d, void (*fn)(void *arg, const drc_action_t *a), void *arg)
{
    for (uint32_t p = 0; p < d->partitions; p++) {
        partition_t *pt = &d->parts[p];
        pthread_mutex_lock(&pt->lock);
        for (uint32_t b = 0; b < pt->nbuckets; b++)
            for (entry_t *e = pt->buckets[b]; e; e = e->next) {
                if (e->state == ST_IDLE)
                    continue;
                drc_actions_t one = {0};
                if (e->state == ST_WAIT_DONE) {
                    emit(&one, DRC_ACT_FORWARD, e->owner, e, e->cur_mode, DRC_FROM_OWNER, e->cur_requester,
                         e->cur_req_id);
                    fn(arg, &one.a[0]);
                    continue;
                }
                for (int m = 0; m < DRC_MAX_MEMBERS; m++)
                    if (e->awaiting & bit(m)) {
                        one.n = 0;
                        emit(&one, DRC_ACT_INVALIDATE, (uint8_t)m, e, DRC_N, 0, e->cur_requester, e->cur_req_id);
                        fn(arg, &one.a[0]);
                    }
            }
        pthread_mutex_unlock(&pt->lock);
    }
}
