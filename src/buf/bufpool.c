/*
 * bufpool.c - page frames, the page table, pinning, loading and clock eviction (see buf.h, README.md)
 *
 * Locking, in the order they may be taken:
 *   1. frame content latch (pthread rwlock)       held while reading or changing page bytes
 *   2. page table partition mutex                 held while looking up, inserting or removing a tag
 *   3. frame header lock (bit in the state word)  a spinlock for a few instructions
 * I/O is never done while holding 2 or 3. Waiting for another thread's I/O on a frame uses a small
 * array of condition variables hashed by frame number.
 */
#include "buf/buf.h"

#include "common/host.h"
#include "common/util.h"
#include "respool/error.h"
#include "respool/instance.h"
#include "respool/log.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NPARTITIONS 128
#define NIOWAIT 64
#define NO_FRAME UINT32_MAX

typedef struct partition {
    pthread_mutex_t lock;
} __attribute__((aligned(64))) partition_t;

typedef struct iowait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
} iowait_t;

struct rp_bufpool {
    rp_volume_t *volume;
    uint32_t page_size;
    uint32_t nframes;
    unsigned char *mem;               /* nframes * page_size, one mapping */
    size_t map_size;
    bool huge;
    rp_frame_t *frames;
    _Atomic uint32_t *buckets;        /* page table: head frame per bucket */
    uint64_t bucket_mask;
    partition_t parts[NPARTITIONS];
    iowait_t iowaits[NIOWAIT];
    _Atomic uint64_t clock_hand;
    _Atomic uint64_t bgwriter_hand;
    void (*wal_flush)(void *arg, uint64_t pos);
    void *wal_flush_arg;
    rp_buf_hooks_t hooks;
    _Atomic uint64_t *lamport;
    _Atomic uint64_t hits, misses, evictions, reads, writes;
};

static inline uint32_t refcount(uint32_t s)
{
    return s & RP_FRAME_REFCOUNT_MASK;
}

static inline uint32_t usage(uint32_t s)
{
    return (s & RP_FRAME_USAGE_MASK) >> RP_FRAME_USAGE_SHIFT;
}

static uint32_t lock_header(rp_frame_t *f)
{
    for (int spins = 0;; spins++) {
        uint32_t s = atomic_fetch_or_explicit(&f->state, RP_FRAME_LOCKED, memory_order_acquire);
        if (!(s & RP_FRAME_LOCKED))
            return s | RP_FRAME_LOCKED;
        if (spins > 100)
            sched_yield();
    }
}

static void unlock_header(rp_frame_t *f, uint32_t s)
{
    atomic_store_explicit(&f->state, s & ~RP_FRAME_LOCKED, memory_order_release);
}

/* Adds a pin (and a usage tick). Returns the new state. Waits out the header lock. */
static uint32_t pin_frame(rp_frame_t *f)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    for (;;) {
        if (s & RP_FRAME_LOCKED) {
            sched_yield();
            s = atomic_load_explicit(&f->state, memory_order_relaxed);
            continue;
        }
        uint32_t n = s + 1;
        if (usage(s) < RP_FRAME_USAGE_MAX)
            n += 1u << RP_FRAME_USAGE_SHIFT;
        if (atomic_compare_exchange_weak_explicit(&f->state, &s, n, memory_order_acquire, memory_order_relaxed))
            return n;
    }
}

static void unpin_frame(rp_frame_t *f)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    for (;;) {
        if (s & RP_FRAME_LOCKED) {
            sched_yield();
            s = atomic_load_explicit(&f->state, memory_order_relaxed);
            continue;
        }
        if (refcount(s) == 0)
            rp_panic("buf", "unpin of frame %u (page %" PRIu64 ") that is not pinned", f->index, f->page_id);
        if (atomic_compare_exchange_weak_explicit(&f->state, &s, s - 1, memory_order_release, memory_order_relaxed))
            return;
    }
}

static int flush_frame(rp_bufpool_t *pool, rp_frame_t *f, bool may_block);

static iowait_t *iowait_of(rp_bufpool_t *pool, const rp_frame_t *f)
{
    return &pool->iowaits[f->index % NIOWAIT];
}

static void wake_io(rp_bufpool_t *pool, rp_frame_t *f)
{
    iowait_t *w = iowait_of(pool, f);
    pthread_mutex_lock(&w->lock);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Waits until no I/O is under way on the frame; returns the state then. */
static uint32_t wait_io(rp_bufpool_t *pool, rp_frame_t *f)
{
    iowait_t *w = iowait_of(pool, f);
    uint32_t s = atomic_load(&f->state);
    if (!(s & RP_FRAME_IO))
        return s;
    pthread_mutex_lock(&w->lock);
    while ((s = atomic_load(&f->state)) & RP_FRAME_IO)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
    return s;
}

static inline uint64_t hash_page(rp_page_id_t id)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

static partition_t *partition_of(rp_bufpool_t *pool, uint64_t bucket)
{
    return &pool->parts[bucket & (NPARTITIONS - 1)];
}

/*
 * Lock-free lookup: walk the chain without the partition mutex, pin a frame that seems to hold the page,
 * then check that it still does. Every operation reaches the root through here, so the root's
 * partition mutex was a point every thread crossed. A chain changing under us only costs a miss (the
 * caller falls back to the locked path); the walk is bounded because frames move between chains.
 * Pinned first, checked second: once pinned the frame cannot be evicted, and a tag seen valid after the
 * acquiring CAS was published with the page number it belongs to.
 */
static rp_frame_t *table_find_pinned(rp_bufpool_t *pool, uint64_t bucket, rp_page_id_t id, uint32_t *state)
{
    uint32_t i = atomic_load_explicit(&pool->buckets[bucket], memory_order_acquire);
    for (int steps = 0; i != NO_FRAME && steps < 32; steps++) {
        rp_frame_t *f = &pool->frames[i];
        if (atomic_load_explicit(&f->page_id, memory_order_relaxed) == id) {
            uint32_t s = pin_frame(f);
            if ((s & RP_FRAME_TAG_VALID) && atomic_load_explicit(&f->page_id, memory_order_relaxed) == id) {
                *state = s;
                return f;
            }
            unpin_frame(f);
            return NULL;
        }
        i = atomic_load_explicit(&f->hash_next, memory_order_relaxed);
    }
    return NULL;
}

/* Caller holds the bucket's partition lock. */
static rp_frame_t *table_find(rp_bufpool_t *pool, uint64_t bucket, rp_page_id_t id)
{
    for (uint32_t i = pool->buckets[bucket]; i != NO_FRAME; i = pool->frames[i].hash_next)
        if (pool->frames[i].page_id == id)
            return &pool->frames[i];
    return NULL;
}

static void table_remove(rp_bufpool_t *pool, uint64_t bucket, rp_frame_t *f)
{
    _Atomic uint32_t *link = &pool->buckets[bucket];
    while (*link != NO_FRAME) {
        if (*link == f->index) {
            /* f keeps its own next link: an optimistic reader standing on f can walk on */
            atomic_store_explicit(link, atomic_load(&f->hash_next), memory_order_release);
            return;
        }
        link = &pool->frames[*link].hash_next;
    }
    rp_panic("buf", "frame %u (page %" PRIu64 ") missing from the page table", f->index, f->page_id);
}

static int map_memory(rp_bufpool_t *pool, uint64_t size, int policy)
{
    char sz[32];
    rp_format_size(size, sz, sizeof(sz));
    if (policy != RP_HUGE_PAGES_OFF) {
        uint64_t total = 0, free_pages = 0, rsvd = 0, surp = 0, hsize = 0;
        int hrc = rp_host_hugepages(&total, &free_pages, &rsvd, &surp, &hsize);
        if (hrc == 0 && hsize) {
            uint64_t len = RP_ALIGN_UP(size, hsize);
            void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
            if (p != MAP_FAILED) {
                pool->mem = p;
                pool->map_size = len;
                pool->huge = true;
                char hs[32];
                rp_info("buf", "buffer pool of %s uses huge pages (%" PRIu64 " of %s)", sz, len / hsize,
                        rp_format_size(hsize, hs, sizeof(hs)));
                return 0;
            }
            int e = errno;
            uint64_t avail = free_pages > rsvd ? free_pages - rsvd : 0;
            if (policy == RP_HUGE_PAGES_ON) {
                rp_error(RP_ENOMEM, "could not map the buffer pool of %s in huge pages: %s", sz, strerror(e));
                rp_error_detail("%" PRIu64 " huge pages of %" PRIu64 " KiB are needed; %" PRIu64
                                " are free and not reserved (vm.nr_hugepages = %" PRIu64 ").",
                                len / hsize, hsize / 1024, avail, total);
                rp_error_hint("Raise vm.nr_hugepages to at least %" PRIu64 ", or set huge-pages = try.",
                              total + len / hsize - avail);
                return RP_ENOMEM;
            }
            if (total == 0)
                rp_info("buf", "buffer pool of %s uses normal pages: no huge pages are configured "
                        "(vm.nr_hugepages = 0)", sz);
            else
                rp_info("buf", "buffer pool of %s uses normal pages: %" PRIu64 " huge pages needed, %" PRIu64
                        " available (%s)", sz, len / hsize, avail, strerror(e));
        } else if (policy == RP_HUGE_PAGES_ON) {
            rp_error(RP_ENOTSUP, "huge pages are not available on this host");
            rp_error_hint("Set huge-pages = try or off.");
            return RP_ENOTSUP;
        } else {
            rp_info("buf", "buffer pool of %s uses normal pages: this host has no huge page support", sz);
        }
    } else {
        rp_info("buf", "buffer pool of %s uses normal pages (huge-pages = off)", sz);
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        rp_error(RP_ENOMEM, "could not map the buffer pool of %s: %s", sz, strerror(e));
        rp_error_hint("Lower buffer-pool-size, or check vm.overcommit_memory and the memory limits of this "
                      "process (`respoolctl check`).");
        return RP_ENOMEM;
    }
    pool->mem = p;
    pool->map_size = size;
    pool->huge = false;
    return 0;
}

static uint64_t buckets_for(uint64_t nframes)
{
    uint64_t n = 64;
    while (n < nframes * 2)
        n <<= 1;
    return n;
}

uint64_t rp_bufpool_memory(uint64_t size, uint32_t page_size)
{
    uint64_t nframes = size / page_size;
    return nframes * page_size + nframes * sizeof(rp_frame_t) + buckets_for(nframes) * sizeof(uint32_t);
}

int rp_bufpool_create(rp_volume_t *v, const rp_bufpool_opts_t *opts, rp_bufpool_t **out)
{
    uint32_t page_size = rp_volume_page_size(v);
    uint64_t nframes = opts->size / page_size;
    char sz[32];
    if (nframes < 16 || nframes > RP_FRAME_REFCOUNT_MASK * 16ULL) {
        rp_error(RP_EINVAL, "buffer pool of %s is out of range", rp_format_size(opts->size, sz, sizeof(sz)));
        rp_error_detail("It must hold between 16 and %u pages of %u bytes.", RP_FRAME_REFCOUNT_MASK * 16, page_size);
        rp_error_hint("Change buffer-pool-size.");
        return RP_EINVAL;
    }
    /* the host's commit budget was checked for the whole instance by rp_instance_open() */
    int rc;
    rp_bufpool_t *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return rp_error(RP_ENOMEM, "out of memory allocating the buffer pool");
    pool->volume = v;
    pool->page_size = page_size;
    pool->nframes = (uint32_t)nframes;
    uint64_t nbuckets = buckets_for(nframes);
    pool->bucket_mask = nbuckets - 1;
    pool->frames = calloc(nframes, sizeof(rp_frame_t));
    pool->buckets = malloc(nbuckets * sizeof(uint32_t));
    if (!pool->frames || !pool->buckets) {
        free(pool->frames);
        free(pool->buckets);
        free(pool);
        return rp_error(RP_ENOMEM, "out of memory allocating the buffer pool's frame table");
    }
    if ((rc = map_memory(pool, nframes * page_size, opts->huge_pages)) != 0) {
        free(pool->frames);
        free(pool->buckets);
        free(pool);
        return rc;
    }
    for (uint64_t b = 0; b < nbuckets; b++)
        atomic_init(&pool->buckets[b], NO_FRAME);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Writers must not starve behind a stream of readers of a hot page. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (uint32_t i = 0; i < pool->nframes; i++) {
        rp_frame_t *f = &pool->frames[i];
        atomic_init(&f->state, 0);
        f->index = i;
        atomic_init(&f->hash_next, NO_FRAME);
        atomic_init(&f->page_id, RP_PAGE_INVALID);
        pthread_rwlock_init(&f->latch, &attr);
    }
    pthread_rwlockattr_destroy(&attr);
    for (int i = 0; i < NPARTITIONS; i++)
        pthread_mutex_init(&pool->parts[i].lock, NULL);
    for (int i = 0; i < NIOWAIT; i++) {
        pthread_mutex_init(&pool->iowaits[i].lock, NULL);
        pthread_cond_init(&pool->iowaits[i].cond, NULL);
    }
    *out = pool;
    return 0;
}

void rp_bufpool_destroy(rp_bufpool_t *pool)
{
    if (!pool)
        return;
    for (uint32_t i = 0; i < pool->nframes; i++)
        pthread_rwlock_destroy(&pool->frames[i].latch);
    for (int i = 0; i < NPARTITIONS; i++)
        pthread_mutex_destroy(&pool->parts[i].lock);
    for (int i = 0; i < NIOWAIT; i++) {
        pthread_mutex_destroy(&pool->iowaits[i].lock);
        pthread_cond_destroy(&pool->iowaits[i].cond);
    }
    munmap(pool->mem, pool->map_size);
    free(pool->frames);
    free(pool->buckets);
    free(pool);
}

void rp_bufpool_set_wal_flush(rp_bufpool_t *pool, void (*flush)(void *arg, uint64_t pos), void *arg)
{
    pool->wal_flush = flush;
    pool->wal_flush_arg = arg;
}

void rp_bufpool_set_hooks(rp_bufpool_t *pool, const rp_buf_hooks_t *hooks)
{
    pool->hooks = *hooks;
}

void rp_bufpool_set_clock(rp_bufpool_t *pool, _Atomic uint64_t *clock)
{
    pool->lamport = clock;
}

uint32_t rp_bufpool_page_size(const rp_bufpool_t *pool)
{
    return pool->page_size;
}

rp_volume_t *rp_bufpool_volume(rp_bufpool_t *pool)
{
    return pool->volume;
}

void rp_bufpool_get_stats(rp_bufpool_t *pool, rp_bufpool_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->frames = pool->nframes;
    st->bytes = (uint64_t)pool->nframes * pool->page_size;
    st->hits = atomic_load_explicit(&pool->hits, memory_order_relaxed);
    st->misses = atomic_load_explicit(&pool->misses, memory_order_relaxed);
    st->evictions = atomic_load_explicit(&pool->evictions, memory_order_relaxed);
    st->reads = atomic_load_explicit(&pool->reads, memory_order_relaxed);
    st->writes = atomic_load_explicit(&pool->writes, memory_order_relaxed);
    st->huge_pages = pool->huge;
    for (uint32_t i = 0; i < pool->nframes; i++)
        st->dirty += (atomic_load_explicit(&pool->frames[i].state, memory_order_relaxed) & RP_FRAME_DIRTY) != 0;
}

unsigned char *rp_buf_page(const rp_bufpool_t *pool, const rp_frame_t *f)
{
    return pool->mem + (size_t)f->index * pool->page_size;
}

rp_frame_t *rp_buf_frame_of(const rp_bufpool_t *pool, const unsigned char *page)
{
    size_t off = (size_t)(page - pool->mem);
    return &((rp_bufpool_t *)pool)->frames[off / pool->page_size];
}

/* Advances the instance's Lamport clock past a page's LSN (DESIGN.md section 4). */
static void advance_clock(rp_bufpool_t *pool, rp_lsn_t lsn)
{
    if (!pool->lamport)
        return;
    uint64_t cur = atomic_load_explicit(pool->lamport, memory_order_relaxed);
    while (cur < lsn && !atomic_compare_exchange_weak(pool->lamport, &cur, lsn))
        ;
}

/*
 * Finds a frame to reuse: clock sweep over unpinned frames, writing a dirty victim first. Returns the
 * frame pinned once by us, out of the page table, clean and invalid.
 */
static int get_victim(rp_bufpool_t *pool, rp_frame_t **out)
{
    uint64_t budget = (uint64_t)pool->nframes * (RP_FRAME_USAGE_MAX + 2);
    for (int round = 0;; round++) {
        for (uint64_t n = 0; n < budget; n++) {
            uint64_t hand = atomic_fetch_add_explicit(&pool->clock_hand, 1, memory_order_relaxed);
            rp_frame_t *f = &pool->frames[hand % pool->nframes];
            uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
            if (refcount(s) || (s & RP_FRAME_LOCKED))
                continue;
            if (usage(s)) {
                /* one tick less; losing the race to a pin is fine (the page is in use) */
                atomic_compare_exchange_weak(&f->state, &s, s - (1u << RP_FRAME_USAGE_SHIFT));
                continue;
            }
            s = lock_header(f);
            if (refcount(s) || usage(s)) {
                unlock_header(f, s);
                continue;
            }
            unlock_header(f, s + 1); /* pinned by us: nobody can evict it now */
            if (s & RP_FRAME_DIRTY) {
                int rc = flush_frame(pool, f, false);
                if (rc != 0) {
                    if (rc != RP_EBUSY)
                        rp_log_report(RP_LOG_WARNING, "buf");
                    unpin_frame(f);
                    continue;
                }
            }
            if (s & RP_FRAME_TAG_VALID) {
                uint64_t bucket = hash_page(f->page_id) & pool->bucket_mask;
                partition_t *part = partition_of(pool, bucket);
                pthread_mutex_lock(&part->lock);
                s = lock_header(f);
                if (refcount(s) != 1 || (s & (RP_FRAME_DIRTY | RP_FRAME_IO))) {
                    /* someone found it meanwhile, or changed it: it is in use, keep it */
                    unlock_header(f, s);
                    pthread_mutex_unlock(&part->lock);
                    unpin_frame(f);
                    continue;
                }
                rp_page_id_t old = f->page_id;
                uint8_t gmode = atomic_exchange(&f->gmode, 0);
                table_remove(pool, bucket, f);
                f->page_id = RP_PAGE_INVALID;
                unlock_header(f, s & ~(RP_FRAME_TAG_VALID | RP_FRAME_VALID | RP_FRAME_USAGE_MASK));
                pthread_mutex_unlock(&part->lock);
                atomic_fetch_add_explicit(&pool->evictions, 1, memory_order_relaxed);
                /* written already if it was dirty: the volume is current, the master may forget us */
                if (gmode && pool->hooks.evicted)
                    pool->hooks.evicted(pool->hooks.arg, old, gmode);
            }
            *out = f;
            return 0;
        }
        if (round >= 50) {
            rp_error(RP_EBUSY, "no free frame in the buffer pool: all %u frames are in use", pool->nframes);
            rp_error_hint("Raise buffer-pool-size; the pool must be larger than the pages all concurrent "
                          "operations hold at once.");
            return RP_EBUSY;
        }
        sched_yield(); /* every frame pinned right now: let their holders finish */
    }
}

int rp_buf_pin(rp_bufpool_t *pool, rp_page_id_t id, unsigned flags, rp_frame_t **out)
{
    uint64_t bucket = hash_page(id) & pool->bucket_mask;
    partition_t *part = partition_of(pool, bucket);
    for (;;) {
        uint32_t s;
        rp_frame_t *f = table_find_pinned(pool, bucket, id, &s);
        if (!f) {
            pthread_mutex_lock(&part->lock);
            f = table_find(pool, bucket, id);
            if (f)
                s = pin_frame(f);
            pthread_mutex_unlock(&part->lock);
        }
        if (f) {
            if (!(s & RP_FRAME_VALID))
                s = wait_io(pool, f);
            if (s & RP_FRAME_VALID) {
                atomic_fetch_add_explicit(&pool->hits, 1, memory_order_relaxed);
                *out = f;
                return 0;
            }
            /* the loading thread failed and dropped the tag: try (and fail, reporting) ourselves */
            unpin_frame(f);
            continue;
        }

        rp_frame_t *victim;
        int rc = get_victim(pool, &victim);
        if (rc)
            return rc;
        pthread_mutex_lock(&part->lock);
        if (table_find(pool, bucket, id)) {
            /* loaded by another thread while we looked for a frame: give ours back */
            pthread_mutex_unlock(&part->lock);
            unpin_frame(victim);
            continue;
        }
        s = lock_header(victim);
        atomic_store(&victim->page_id, id);
        atomic_store(&victim->hash_next, atomic_load(&pool->buckets[bucket]));
        atomic_store_explicit(&pool->buckets[bucket], victim->index, memory_order_release);
        victim->first_dirty_pos = 0;
        atomic_store(&victim->last_mod_pos, 0);
        victim->needs_image = false;
        unlock_header(victim, (s & RP_FRAME_REFCOUNT_MASK) | RP_FRAME_TAG_VALID | RP_FRAME_IO |
                                  (1u << RP_FRAME_USAGE_SHIFT));
        pthread_mutex_unlock(&part->lock);

        unsigned char *page = rp_buf_page(pool, victim);
        atomic_fetch_add_explicit(&pool->misses, 1, memory_order_relaxed);
        atomic_store(&victim->gmode, 0);
        victim->dcs_busy = false;
        if (pool->hooks.load && !(flags & RP_BUF_LOCAL)) {
            /* a cluster member asks the directory first: the page may be newer elsewhere */
            if (flags & RP_BUF_NEW)
                memset(page, 0, pool->page_size);
            rc = pool->hooks.load(pool->hooks.arg, victim, id, page, (flags & RP_BUF_WANT_X) != 0,
                                  (flags & RP_BUF_NEW) != 0);
            if (rc == 0 && !(flags & RP_BUF_NEW))
                advance_clock(pool, rp_page_lsn(page));
        } else if (flags & RP_BUF_NEW) {
            memset(page, 0, pool->page_size);
            rc = 0;
        } else {
            atomic_fetch_add_explicit(&pool->reads, 1, memory_order_relaxed);
            rc = (flags & RP_BUF_NO_VERIFY) ? rp_volume_read_page_raw(pool->volume, id, page)
                                            : rp_volume_read_page(pool->volume, id, page);
            /* an unverified page may be torn garbage: its LSN must not move the clock */
            if (rc == 0 && !(flags & RP_BUF_NO_VERIFY))
                advance_clock(pool, rp_page_lsn(page));
        }
        if (rc) {
            pthread_mutex_lock(&part->lock);
            s = lock_header(victim);
            table_remove(pool, bucket, victim);
            victim->page_id = RP_PAGE_INVALID;
            unlock_header(victim, s & ~(RP_FRAME_TAG_VALID | RP_FRAME_IO | RP_FRAME_USAGE_MASK));
            pthread_mutex_unlock(&part->lock);
            wake_io(pool, victim);
            unpin_frame(victim);
            return rc;
        }
        s = lock_header(victim);
        unlock_header(victim, (s | RP_FRAME_VALID) & ~RP_FRAME_IO);
        wake_io(pool, victim);
        *out = victim;
        return 0;
    }
}

void rp_buf_unpin(rp_bufpool_t *pool, rp_frame_t *f)
{
    (void)pool;
    unpin_frame(f);
}

void rp_buf_mark_dirty(rp_frame_t *f, uint64_t start, uint64_t end)
{
    uint32_t s = lock_header(f);
    if (!(s & RP_FRAME_DIRTY))
        f->first_dirty_pos = start;
    atomic_store_explicit(&f->last_mod_pos, end, memory_order_release);
    unlock_header(f, s | RP_FRAME_DIRTY | RP_FRAME_JUST_DIRTIED);
}

uint64_t rp_buf_last_mod_pos(rp_frame_t *f)
{
    return atomic_load_explicit(&f->last_mod_pos, memory_order_acquire);
}

/*
 * Writes the frame if dirty. `may_block` false (eviction): the caller may hold latches of its own
 * mini-transaction, so waiting for this frame's latch could close a cycle with a thread that holds it
 * and waits for one of ours; then a busy latch means "not now" (RP_EBUSY) instead of a wait.
 */
static int flush_frame(rp_bufpool_t *pool, rp_frame_t *f, bool may_block)
{
    /* One writer per frame at a time: two concurrent writes of different versions could land in the
     * wrong order and leave the older version on the volume while the frame is marked clean. */
    uint32_t s;
    for (;;) {
        s = lock_header(f);
        if (!(s & RP_FRAME_DIRTY) || !(s & RP_FRAME_VALID)) {
            unlock_header(f, s);
            return 0;
        }
        if (!(s & RP_FRAME_IO))
            break;
        unlock_header(f, s);
        wait_io(pool, f);
    }
    unlock_header(f, (s | RP_FRAME_IO) & ~RP_FRAME_JUST_DIRTIED);

    unsigned char *copy = NULL;
    int rc = posix_memalign((void **)&copy, RP_IO_ALIGN, pool->page_size) ? RP_ENOMEM : 0;
    uint64_t need_wal = 0;
    rp_page_id_t id = f->page_id;
    if (rc == 0) {
        /* A consistent copy under S, then the I/O without any latch held. */
        if (may_block) {
            rp_buf_latch(f, false);
        } else if (pthread_rwlock_tryrdlock(&f->latch) != 0) {
            free(copy);
            s = lock_header(f);
            unlock_header(f, (s & ~RP_FRAME_IO) | RP_FRAME_JUST_DIRTIED);
            wake_io(pool, f);
            return RP_EBUSY;
        }
        memcpy(copy, rp_buf_page(pool, f), pool->page_size);
        need_wal = atomic_load(&f->last_mod_pos);
        rp_buf_unlatch(f);
        if (pool->wal_flush && need_wal)
            pool->wal_flush(pool->wal_flush_arg, need_wal); /* WAL before data */
        rc = rp_volume_write_page(pool->volume, id, copy);
        free(copy);
    } else {
        rp_error(RP_ENOMEM, "out of memory writing page %" PRIu64, id);
    }
    s = lock_header(f);
    if (rc == 0) {
        atomic_fetch_add_explicit(&pool->writes, 1, memory_order_relaxed);
        if (!(s & RP_FRAME_JUST_DIRTIED)) {
            s &= ~RP_FRAME_DIRTY;
            f->first_dirty_pos = 0;
        }
    }
    unlock_header(f, s & ~RP_FRAME_IO);
    wake_io(pool, f);
    return rc;
}

int rp_buf_flush_frame(rp_bufpool_t *pool, rp_frame_t *f)
{
    return flush_frame(pool, f, true);
}

/* Pins a frame found by scanning (not through the page table), if it still holds a valid page. */
static bool pin_if_valid(rp_frame_t *f)
{
    uint32_t s = lock_header(f);
    if (!(s & RP_FRAME_VALID) || !(s & RP_FRAME_TAG_VALID)) {
        unlock_header(f, s);
        return false;
    }
    unlock_header(f, s + 1);
    return true;
}

/* A frame chosen by a checkpoint, pinned, with the page it held when chosen. */
typedef struct due_frame {
    rp_page_id_t page;
    rp_frame_t *frame;
} due_frame_t;

static int cmp_due(const void *a, const void *b)
{
    const due_frame_t *x = a, *y = b;
    return x->page < y->page ? -1 : x->page > y->page;
}

#define RUN_MAX 64 /* pages per write */

/*
 * Writes a run of frames holding consecutive pages with one write. Each frame is claimed for writing
 * (IO set: one writer per frame) and copied under its S latch, the WAL is made durable up to the newest
 * change of any of them, the copies go out together, and each frame is marked clean unless it was
 * changed again meanwhile. Frames that are no longer dirty or are being written by someone else were
 * left out by the caller's claim.
 */
static int write_run(rp_bufpool_t *pool, rp_frame_t **frames, uint32_t n, unsigned char *buf, uint64_t *written)
{
    uint64_t need_wal = 0;
    for (uint32_t i = 0; i < n; i++) {
        rp_buf_latch(frames[i], false);
        memcpy(buf + (size_t)i * pool->page_size, rp_buf_page(pool, frames[i]), pool->page_size);
        uint64_t last = atomic_load(&frames[i]->last_mod_pos);
        rp_buf_unlatch(frames[i]);
        if (last > need_wal)
            need_wal = last;
    }
    if (pool->wal_flush && need_wal)
        pool->wal_flush(pool->wal_flush_arg, need_wal); /* WAL before data */
    int rc = rp_volume_write_pages(pool->volume, frames[0]->page_id, n, buf);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = lock_header(frames[i]);
        if (rc == 0 && !(s & RP_FRAME_JUST_DIRTIED)) {
            s &= ~RP_FRAME_DIRTY;
            frames[i]->first_dirty_pos = 0;
        }
        unlock_header(frames[i], s & ~RP_FRAME_IO);
        wake_io(pool, frames[i]);
    }
    if (rc == 0) {
        atomic_fetch_add_explicit(&pool->writes, n, memory_order_relaxed);
        *written += n;
    }
    return rc;
}

/* Claims a frame for writing if it still holds `page` and is dirty; false if there is nothing to do
 * (clean now) or another writer has it (the caller writes it alone later, waiting). */
static bool claim_for_write(rp_frame_t *f, rp_page_id_t page, bool *busy)
{
    uint32_t s = lock_header(f);
    *busy = false;
    if (!(s & RP_FRAME_DIRTY) || !(s & RP_FRAME_VALID) || f->page_id != page) {
        unlock_header(f, s);
        return false;
    }
    if (s & RP_FRAME_IO) {
        unlock_header(f, s);
        *busy = true;
        return false;
    }
    unlock_header(f, (s | RP_FRAME_IO) & ~RP_FRAME_JUST_DIRTIED);
    return true;
}

int rp_buf_write_dirty_before(rp_bufpool_t *pool, uint64_t pos, uint64_t *written)
{
    *written = 0;
    due_frame_t *due = malloc(sizeof(*due) * pool->nframes);
    unsigned char *buf = NULL;
    if (!due || posix_memalign((void **)&buf, RP_IO_ALIGN, (size_t)RUN_MAX * pool->page_size) != 0) {
        free(due);
        return rp_error(RP_ENOMEM, "out of memory for a checkpoint's write list");
    }
    /* The list is not pinned: a checkpoint must not take every frame away from the threads that need
     * victims. Each frame is pinned (and its page checked again) only while its run is written. */
    uint32_t n = 0;
    for (uint32_t i = 0; i < pool->nframes; i++) {
        rp_frame_t *f = &pool->frames[i];
        uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
        if (!(s & RP_FRAME_DIRTY))
            continue;
        s = lock_header(f);
        bool is_due = (s & RP_FRAME_DIRTY) && (s & RP_FRAME_VALID) && f->first_dirty_pos < pos;
        rp_page_id_t page = f->page_id;
        unlock_header(f, s);
        if (is_due)
            due[n++] = (due_frame_t){page, f};
    }
    /* in page order: consecutive pages (split halves, a value's overflow pages) go out in one write */
    qsort(due, n, sizeof(*due), cmp_due);
    uint32_t run_max = RP_MIN((uint32_t)RUN_MAX, RP_MAX(1u, pool->nframes / 4));
    int first_error = 0;
    rp_frame_t *run[RUN_MAX];
    uint32_t nrun = 0;
    for (uint32_t i = 0; i <= n; i++) {
        bool busy = false, claimed = false;
        rp_frame_t *f = i < n ? due[i].frame : NULL;
        bool pinned = f && pin_if_valid(f);
        if (pinned && f->page_id != due[i].page) {
            unpin_frame(f); /* evicted and reused since the list was made: not ours to write */
            pinned = false;
        }
        if (pinned)
            claimed = claim_for_write(f, due[i].page, &busy);
        bool extends = claimed && nrun > 0 && nrun < run_max && due[i].page == run[nrun - 1]->page_id + 1;
        if (nrun > 0 && !extends) {
            int rc = write_run(pool, run, nrun, buf, written);
            if (rc && !first_error)
                first_error = rc;
            for (uint32_t k = 0; k < nrun; k++)
                unpin_frame(run[k]);
            nrun = 0;
        }
        if (claimed) {
            run[nrun++] = f;
            continue;
        }
        if (busy) {
            /* someone else is writing it: wait, and write it alone if it is still dirty then */
            uint64_t before = atomic_load_explicit(&pool->writes, memory_order_relaxed);
            int rc = rp_buf_flush_frame(pool, f);
            if (rc && !first_error)
                first_error = rc;
            if (atomic_load_explicit(&pool->writes, memory_order_relaxed) != before)
                (*written)++;
        }
        if (pinned)
            unpin_frame(f);
    }
    free(buf);
    free(due);
    return first_error;
}

uint64_t rp_buf_bgwriter_round(rp_bufpool_t *pool, uint64_t max)
{
    /* Clean the frames the clock hand will reach next, so that eviction finds clean victims and
     * foreground threads rarely wait for a write. */
    uint64_t written = 0;
    uint64_t start = atomic_load_explicit(&pool->clock_hand, memory_order_relaxed);
    uint64_t bg = atomic_load_explicit(&pool->bgwriter_hand, memory_order_relaxed);
    if (bg < start || bg > start + pool->nframes)
        bg = start;
    uint64_t scan = RP_MIN((uint64_t)pool->nframes, max * 8);
    for (uint64_t n = 0; n < scan && written < max; n++, bg++) {
        rp_frame_t *f = &pool->frames[bg % pool->nframes];
        uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
        if (!(s & RP_FRAME_DIRTY) || refcount(s) || usage(s) > 1)
            continue;
        if (!pin_if_valid(f))
            continue;
        if (rp_buf_flush_frame(pool, f) == 0)
            written++;
        else
            rp_log_report(RP_LOG_WARNING, "buf");
        unpin_frame(f);
    }
    atomic_store_explicit(&pool->bgwriter_hand, bg, memory_order_relaxed);
    return written;
}

int rp_buf_lookup(rp_bufpool_t *pool, rp_page_id_t id, rp_frame_t **out)
{
    uint64_t bucket = hash_page(id) & pool->bucket_mask;
    partition_t *part = partition_of(pool, bucket);
    uint32_t s;
    rp_frame_t *f = table_find_pinned(pool, bucket, id, &s);
    if (!f) {
        pthread_mutex_lock(&part->lock);
        f = table_find(pool, bucket, id);
        if (f)
            s = pin_frame(f);
        pthread_mutex_unlock(&part->lock);
    }
    if (!f)
        return RP_ENOENT;
    if (!(s & RP_FRAME_VALID))
        s = wait_io(pool, f);
    if (!(s & RP_FRAME_VALID) || f->page_id != id) {
        unpin_frame(f);
        return RP_ENOENT;
    }
    *out = f;
    return 0;
}

bool rp_buf_dcs_begin(rp_bufpool_t *pool, rp_frame_t *f)
{
    uint32_t s = lock_header(f);
    if (!f->dcs_busy) {
        f->dcs_busy = true;
        unlock_header(f, s);
        return true;
    }
    unlock_header(f, s);
    iowait_t *w = iowait_of(pool, f);
    pthread_mutex_lock(&w->lock);
    for (;;) {
        s = lock_header(f);
        bool busy = f->dcs_busy;
        unlock_header(f, s);
        if (!busy)
            break;
        pthread_cond_wait(&w->cond, &w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return false;
}

void rp_buf_dcs_end(rp_bufpool_t *pool, rp_frame_t *f)
{
    uint32_t s = lock_header(f);
    f->dcs_busy = false;
    unlock_header(f, s);
    wake_io(pool, f);
}

int rp_buf_write_latched(rp_bufpool_t *pool, rp_frame_t *f)
{
    uint32_t s;
    for (;;) {
        s = lock_header(f);
        if (!(s & RP_FRAME_DIRTY)) {
            unlock_header(f, s);
            return 0;
        }
        if (!(s & RP_FRAME_IO))
            break;
        unlock_header(f, s);
        /* Another writer (checkpoint, background writer) has the frame. It may not have taken its copy
         * yet, and it takes it under the S latch: waiting with our X latch held would wait for
         * ourselves. Let go, let its write land, take the latch again and look again. */
        rp_buf_unlatch(f);
        wait_io(pool, f);
        rp_buf_latch(f, true);
    }
    unlock_header(f, (s | RP_FRAME_IO) & ~RP_FRAME_JUST_DIRTIED);
    uint64_t need_wal = atomic_load(&f->last_mod_pos);
    if (pool->wal_flush && need_wal)
        pool->wal_flush(pool->wal_flush_arg, need_wal);
    unsigned char *copy = NULL;
    int rc = posix_memalign((void **)&copy, RP_IO_ALIGN, pool->page_size) ? RP_ENOMEM : 0;
    if (rc == 0) {
        memcpy(copy, rp_buf_page(pool, f), pool->page_size);
        rc = rp_volume_write_page(pool->volume, f->page_id, copy);
        free(copy);
    } else {
        rp_error(RP_ENOMEM, "out of memory writing page %" PRIu64, f->page_id);
    }
    s = lock_header(f);
    if (rc == 0) {
        atomic_fetch_add_explicit(&pool->writes, 1, memory_order_relaxed);
        s &= ~RP_FRAME_DIRTY;
        f->first_dirty_pos = 0;
    }
    unlock_header(f, s & ~RP_FRAME_IO);
    wake_io(pool, f);
    return rc;
}

void rp_buf_forget(rp_bufpool_t *pool, rp_page_id_t id)
{
    uint64_t bucket = hash_page(id) & pool->bucket_mask;
    partition_t *part = partition_of(pool, bucket);
    pthread_mutex_lock(&part->lock);
    rp_frame_t *f = table_find(pool, bucket, id);
    if (f) {
        uint32_t s = lock_header(f);
        if (refcount(s) == 0 && !(s & RP_FRAME_IO)) {
            table_remove(pool, bucket, f);
            f->page_id = RP_PAGE_INVALID;
            f->first_dirty_pos = 0;
            atomic_store(&f->last_mod_pos, 0);
            s &= ~(RP_FRAME_TAG_VALID | RP_FRAME_VALID | RP_FRAME_DIRTY | RP_FRAME_JUST_DIRTIED |
                   RP_FRAME_USAGE_MASK);
        }
        unlock_header(f, s);
    }
    pthread_mutex_unlock(&part->lock);
}

int rp_buf_foreach_shadow(rp_bufpool_t *pool, int (*fn)(void *arg, const rp_buf_shadow_t *sh), void *arg)
{
    for (uint32_t i = 0; i < pool->nframes; i++) {
        rp_frame_t *f = &pool->frames[i];
        if (!(atomic_load_explicit(&f->state, memory_order_acquire) & RP_FRAME_VALID) || !pin_if_valid(f))
            continue;
        uint32_t s = atomic_load(&f->state);
        if (!(s & RP_FRAME_VALID)) { /* being read in: nothing to report yet */
            unpin_frame(f);
            continue;
        }
        rp_buf_latch(f, false);
        rp_buf_shadow_t sh = {.page = f->page_id,
                              .gmode = atomic_load(&f->gmode),
                              .dirty = (atomic_load(&f->state) & RP_FRAME_DIRTY) != 0,
                              .lsn = rp_page_lsn(rp_buf_page(pool, f))};
        rp_buf_unlatch(f);
        unpin_frame(f);
        int rc = fn(arg, &sh);
        if (rc)
            return rc;
    }
    return 0;
}
