/*
 * dcs.c - cache fusion (see dcs.h, src/dcs/README.md, docs/cluster.md)
 *
 * Requester:  pending(id) -> LOCK to the master (or drc_request directly when the master is here)
 *             <- GRANT (from the master) or PAGE (from the owner), recorded in the pending table by the
 *                network thread -> install under the frame's X latch (or while loading) -> gmode;
 *                the latch goes to the caller, so the page is used before anyone takes it back
 *             -> DONE to the master after a PAGE
 * Owner:      FORWARD (worker thread): latch, WAL durable up to the page's last change, a dirty page
 *             moving in X written to the volume, PAGE to the requester; X: drop to N, S: keep S
 * Holder:     INVALIDATE (worker thread): X latch, drop to N, ACK to the master
 * Eviction:   RELEASE to the master once the frame is gone (a dirty page was written first)
 * Named locks: the same messages without content; a forward or invalidation waits for local users
 * Resender:   (master) the FORWARD or INVALIDATE of a transfer still busy a round later is sent again
 *
 * Why grants are messages with handlers and not rp_net_wait replies: a FORWARD or INVALIDATE for a page
 * can follow the grant of that page so closely that the worker thread handling it runs before the
 * requesting thread has installed what it was granted. The network thread records a grant in the
 * pending table before it dispatches anything that came after it on the same connection, and a forward or
 * invalidation that finds a granted, not yet installed acquisition waits for it.
 */
#include "dcs/dcs.h"

#include "dcs/dcs_msg.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"
#include "respool/volume.h"
#include "wal/wal_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NPENDING 64

/* An acquisition in progress: at most one per page per member (rp_buf_dcs_begin). */
typedef struct pending {
    rp_page_id_t id;
    uint64_t req_id;
    bool granted;             /* a GRANT or PAGE for req_id arrived */
    bool installed;           /* ... and the requester has installed it (or gave up) */
    uint8_t mode, source;
    uint64_t seq;
    int from;                 /* who sent the PAGE (3-way) or the GRANT */
    rp_net_msg_t *page;       /* a PAGE with content, until installed */
    struct pending *next;
} pending_t;

/*
 * A named lock as this member sees it. The global mode (granted by the directory) is kept after the
 * last local user lets go, so taking it again costs no message until another member wants it; local
 * users share it under the usual S/X rules. A forward or invalidation from the master drains the local
 * users first (new ones wait behind it, so a busy member cannot starve the others).
 */
typedef struct named_lock {
    drc_res_t res;
    char name[RP_DCS_LOCK_NAME_MAX + 1];
    uint8_t gmode;            /* what the directory granted us */
    bool acquiring;           /* a thread of ours is asking the directory */
    int readers;              /* local users in S */
    bool writer;              /* a local user in X */
    int draining;             /* forwards or invalidations waiting for the local users to leave */
} named_lock_t;

#define NLOCKS 64

typedef struct stripe {
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* granted or installed */
    pending_t *list;
} stripe_t;

struct rp_dcs {
    rp_dcs_config_t cfg;
    uint32_t ps;
    dcs_limits_t limits;
    stripe_t stripes[NPENDING];
    pthread_mutex_t locks_mutex;
    pthread_cond_t locks_cond;
    named_lock_t locks[NLOCKS];
    int nlocks;
    /* the resender: transfers stuck across two of its rounds get their messages sent again */
    pthread_t resender;
    bool resender_started, stop;
    pthread_mutex_t resend_mutex;
    pthread_cond_t resend_cond;
    _Atomic uint64_t st_local, st_2way, st_3way, st_x, st_dirty, st_inv_sent, st_inv_recv, st_fwd, st_out,
        st_in, st_waits, st_timeouts, st_releases, st_lock_local, st_lock_remote, st_resent;
    _Atomic uint64_t lat[RP_CLUSTER_LAT_BUCKETS];   /* acquisitions with messages (latency_bucket) */
};

/* ---- messages --------------------------------------------------------------------------------------- */

/* Checks a received message; false (logged, message freed) if it is malformed. */
static bool decode(rp_dcs_t *d, rp_net_msg_t *m, dcs_msg_t *out)
{
    if (dcs_msg_decode(m->type, m->payload, m->len, &d->limits, out) == 0)
        return true;
    rp_error_context("from instance %u (dropped)", m->src);
    rp_log_report(RP_LOG_WARNING, "dcs");
    rp_net_msg_free(m);
    return false;
}

/* ---- small helpers ------------------------------------------------------------------------------------ */

static stripe_t *stripe_of(rp_dcs_t *d, rp_page_id_t id)
{
    return &d->stripes[(id * 0x9e3779b97f4a7c15ULL) >> 58];
}

static pending_t *find_pending(stripe_t *s, rp_page_id_t id)
{
    for (pending_t *p = s->list; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

static void unlink_pending(stripe_t *s, pending_t *p)
{
    pending_t **l = &s->list;
    while (*l != p)
        l = &(*l)->next;
    *l = p->next;
}

static int master_of(rp_dcs_t *d, rp_page_id_t id)
{
    return drc_map_master(d->cfg.map, drc_res_page(id));
}

/* Bucket of a latency: 4 sub-buckets per power of two of microseconds. */
static int latency_bucket(uint64_t us)
{
    if (us < 4)
        return (int)us;
    int log = 63 - __builtin_clzll(us);                 /* >= 2 */
    int sub = (int)((us >> (log - 2)) & 3);             /* the two bits below the top one */
    int b = 4 * (log - 1) + sub;
    return b < RP_CLUSTER_LAT_BUCKETS ? b : RP_CLUSTER_LAT_BUCKETS - 1;
}

/* The largest latency (us) that falls in bucket b. */
static uint64_t latency_bound(int b)
{
    if (b < 4)
        return (uint64_t)b;
    int log = b / 4 + 1, sub = b % 4;
    return ((4ULL + (uint64_t)sub + 1) << (log - 2)) - 1;
}

static void record_latency(rp_dcs_t *d, uint64_t ns)
{
    atomic_fetch_add_explicit(&d->lat[latency_bucket(ns / 1000)], 1, memory_order_relaxed);
}

static void send_to(rp_dcs_t *d, int to, uint16_t type, uint64_t req_id, const void *p, size_t len)
{
    if (rp_net_send(d->cfg.net, to, type, req_id, p, len) != 0)
        rp_log_report(RP_LOG_WARNING, "dcs"); /* the waiting requester times out and retries */
    else
        atomic_fetch_add_explicit(&d->st_out, len, memory_order_relaxed);
}

static void on_granted(rp_dcs_t *d, rp_page_id_t id, uint64_t req_id, uint8_t mode, uint8_t source, uint64_t seq,
                       int from, rp_net_msg_t *page);

/* Carries out what the directory decided. A grant to this member is recorded directly (no message). */
static void dispatch(rp_dcs_t *d, const drc_actions_t *acts)
{
    for (int i = 0; i < acts->n; i++) {
        const drc_action_t *a = &acts->a[i];
        unsigned char b[DCS_MSG_MAX_HDR];
        dcs_msg_t msg = {.res = a->res, .seq = a->seq, .req_id = a->req_id, .mode = a->mode, .source = a->source,
                         .requester = a->requester};
        rp_debug("dcs", "master: %s page %" PRIu64 " to %u mode %u source %u requester %u req %" PRIu64 " seq %" PRIu64,
                 a->kind == DRC_ACT_GRANT ? "grant" : a->kind == DRC_ACT_FORWARD ? "forward" : "invalidate", a->res,
                 a->to, a->mode, a->source, a->requester, a->req_id, a->seq);
        switch (a->kind) {
        case DRC_ACT_GRANT:
            if (a->to == d->cfg.self) {
                on_granted(d, a->res, a->req_id, a->mode, a->source, a->seq, d->cfg.self, NULL);
            } else {
                send_to(d, a->to, DCS_GRANT, a->req_id, b, dcs_msg_encode(DCS_GRANT, &msg, b));
            }
            break;
        case DRC_ACT_FORWARD:
            /* to ourselves too: a worker thread runs it */
            send_to(d, a->to, DCS_FORWARD, 0, b, dcs_msg_encode(DCS_FORWARD, &msg, b));
            break;
        case DRC_ACT_INVALIDATE:
            atomic_fetch_add_explicit(&d->st_inv_sent, 1, memory_order_relaxed);
            send_to(d, a->to, DCS_INVALIDATE, 0, b, dcs_msg_encode(DCS_INVALIDATE, &msg, b));
            break;
        }
    }
}

/* DONE, ACK, RELEASE: to the master's directory, directly when the master is here. */
/* A DONE, ACK or RELEASE from member `from` reaches this master's directory; its decisions are carried
 * out. */
static void master_input(rp_dcs_t *d, uint16_t type, drc_res_t res, int from, uint64_t seq)
{
    drc_actions_t acts;
    if (type == DCS_DONE)
        drc_done(d->cfg.drc, res, from, seq, &acts);
    else if (type == DCS_ACK)
        drc_ack(d->cfg.drc, res, from, seq, &acts);
    else
        drc_release(d->cfg.drc, res, from, &acts);
    dispatch(d, &acts);
}

/* DONE, ACK, RELEASE: to a master's directory (`master`), directly when the master is here. */
static void tell(rp_dcs_t *d, int master, uint16_t type, rp_page_id_t id, uint64_t seq)
{
    if (master == d->cfg.self) {
        master_input(d, type, id, d->cfg.self, seq);
        return;
    }
    unsigned char b[DCS_MSG_MAX_HDR];
    dcs_msg_t msg = {.res = id, .seq = seq};
    send_to(d, master, type, 0, b, dcs_msg_encode(type, &msg, b));
}

static void tell_master(rp_dcs_t *d, uint16_t type, rp_page_id_t id, uint64_t seq)
{
    tell(d, master_of(d, id), type, id, seq);
}

/* ---- requester --------------------------------------------------------------------------------------- */

static void on_granted(rp_dcs_t *d, rp_page_id_t id, uint64_t req_id, uint8_t mode, uint8_t source, uint64_t seq,
                       int from, rp_net_msg_t *page)
{
    stripe_t *s = stripe_of(d, id);
    pthread_mutex_lock(&s->lock);
    pending_t *p = find_pending(s, id);
    if (p && p->req_id == req_id && !p->granted) {
        p->granted = true;
        p->mode = mode;
        p->source = source;
        p->seq = seq;
        p->from = from;
        p->page = page;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        return;
    }
    pthread_mutex_unlock(&s->lock);
    rp_debug("dcs", "late %s for page %" PRIu64 " req %" PRIu64 " from %d", page ? "page" : "grant", id, req_id, from);
    /* Nobody waits for it any more (the requester gave up, or it is a copy sent again). A forwarded page
     * still completes the master's transfer (a DONE for a transfer that is over is ignored); the
     * directory's view that we hold the page is corrected by our next request. */
    if (page) {
        tell_master(d, DCS_DONE, id, seq);
        rp_net_msg_free(page);
    }
}

static void on_grant_msg(rp_net_t *net, rp_net_msg_t *m, void *arg)
{
    (void)net;
    rp_dcs_t *d = arg;
    dcs_msg_t g;
    if (!decode(d, m, &g))
        return;
    on_granted(d, g.res, m->req_id, g.mode, g.source, g.seq, m->src, NULL);
    rp_net_msg_free(m);
}

static void on_page_msg(rp_net_t *net, rp_net_msg_t *m, void *arg)
{
    (void)net;
    rp_dcs_t *d = arg;
    dcs_msg_t pg;
    if (!decode(d, m, &pg))
        return;
    atomic_fetch_add_explicit(&d->st_in, m->len, memory_order_relaxed);
    on_granted(d, pg.res, m->req_id, pg.mode, pg.content ? DRC_FROM_OWNER : DRC_FROM_DISK, pg.seq, m->src, m);
}

/*
 * Asks for page id in mode and waits until it is granted or the deadline passes. On success *p is the
 * granted pending record (still linked: the caller installs, then calls finish()).
 */
static int ask(rp_dcs_t *d, rp_page_id_t id, uint8_t mode, bool has_copy, pending_t **out)
{
    stripe_t *s = stripe_of(d, id);
    pending_t *p = rp_xcalloc(1, sizeof(*p));
    p->id = id;
    p->req_id = rp_net_request_id(d->cfg.net);
    pthread_mutex_lock(&s->lock);
    p->next = s->list;
    s->list = p;
    pthread_mutex_unlock(&s->lock);

    uint64_t t0 = rp_now_ns();
    int master = master_of(d, id);
    bool local = master == d->cfg.self;
    rp_debug("dcs", "ask page %" PRIu64 " mode %u has_copy %d of %d req %" PRIu64, id, mode, has_copy, master, p->req_id);
    if (local) {
        drc_actions_t acts;
        drc_request(d->cfg.drc, drc_res_page(id), d->cfg.self, mode, p->req_id, has_copy, &acts);
        dispatch(d, &acts);
    } else {
        unsigned char b[DCS_MSG_MAX_HDR];
        dcs_msg_t msg = {.res = id, .mode = mode, .has_copy = has_copy};
        if (rp_net_send(d->cfg.net, master, DCS_LOCK, p->req_id, b, dcs_msg_encode(DCS_LOCK, &msg, b)) != 0) {
            int rc = rp_last_error()->code;
            rp_error_context("could not ask instance %d (master of page %" PRIu64 ")", master, id);
            pthread_mutex_lock(&s->lock);
            unlink_pending(s, p);
            pthread_mutex_unlock(&s->lock);
            free(p);
            return rc ? rc : RP_ECONNREFUSED;
        }
    }
    pthread_mutex_lock(&s->lock);
    if (!p->granted && !local)
        atomic_fetch_add_explicit(&d->st_waits, 1, memory_order_relaxed);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t deadline = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec + d->cfg.timeout_ms * 1000000ULL;
    ts.tv_sec = (time_t)(deadline / 1000000000ULL);
    ts.tv_nsec = (long)(deadline % 1000000000ULL);
    while (!p->granted) {
        if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT && !p->granted) {
            unlink_pending(s, p);
            pthread_mutex_unlock(&s->lock);
            free(p);
            atomic_fetch_add_explicit(&d->st_timeouts, 1, memory_order_relaxed);
            rp_error(RP_ETIMEDOUT, "page %" PRIu64 " was not granted within %" PRIu64 " ms", id, d->cfg.timeout_ms);
            rp_error_detail("Its master is instance %d; another instance may hold it and be slow or stopped.",
                            master);
            rp_error_hint("Retry the operation; if it keeps failing, check the cluster with `respoolctl cluster "
                          "status`.");
            return RP_ETIMEDOUT;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (drc_res_is_lock(id))
        ; /* counted by rp_dcs_lock */
    else if (local && p->source != DRC_FROM_OWNER && p->from == d->cfg.self)
        atomic_fetch_add_explicit(&d->st_local, 1, memory_order_relaxed);
    else {
        record_latency(d, rp_now_ns() - t0);
        atomic_fetch_add_explicit(p->source == DRC_FROM_OWNER ? &d->st_3way : &d->st_2way, 1, memory_order_relaxed);
    }
    *out = p;
    return 0;
}

/* Ends an acquisition: forwarded pages are acknowledged, forwards and invalidations waiting for the
 * install may go on. */
static void finish(rp_dcs_t *d, pending_t *p)
{
    rp_debug("dcs", "installed page %" PRIu64 " mode %u source %u req %" PRIu64, p->id, p->mode, p->source, p->req_id);
    stripe_t *s = stripe_of(d, p->id);
    pthread_mutex_lock(&s->lock);
    p->installed = true;
    unlink_pending(s, p);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (p->page) {
        tell_master(d, DCS_DONE, p->id, p->seq);
        rp_net_msg_free(p->page);
    }
    free(p);
}

/* Puts granted content into `page`: from the volume, from the shipped message, or keeps ours. */
static int install(rp_dcs_t *d, const pending_t *p, rp_page_id_t id, unsigned char *page, bool have_valid, bool fresh)
{
    if (fresh)
        return 0;
    bool from_volume = p->source == DRC_FROM_DISK || (p->source == DRC_FROM_HAVE && !have_valid) ||
                       (p->source == DRC_FROM_OWNER && !p->page);
    if (p->source == DRC_FROM_OWNER && p->page && !(p->page->payload[17] & DCS_PAGE_NO_CONTENT)) {
        const unsigned char *src = p->page->payload + DCS_PAGE_HDR;
        rp_page_verdict_t v = rp_page_verify(src, d->ps, id);
        if (v != RP_PAGE_OK && v != RP_PAGE_OK_NEW) {
            rp_error(RP_ECORRUPT, "page %" PRIu64 " shipped by instance %d failed verification", id, p->from);
            if (v == RP_PAGE_BAD_CHECKSUM)
                rp_error_detail("Checksum stored 0x%08x, computed 0x%08x: damaged in transit or in the sender's "
                                "memory.", rp_page_stored_checksum(src), rp_page_compute_checksum(src, d->ps));
            else if (v == RP_PAGE_BAD_ID)
                rp_error_detail("The content says it is page %" PRIu64 ".", rp_page_id(src));
            else
                rp_error_detail("Its free-space bounds are out of order.");
            return RP_ECORRUPT;
        }
        memcpy(page, src, d->ps);
        return 0;
    }
    if (from_volume)
        return rp_volume_read_page(d->cfg.volume, id, page);
    return 0;
}

static void advance_clock(rp_dcs_t *d, rp_lsn_t lsn)
{
    uint64_t cur = atomic_load(d->cfg.clock);
    while (cur < lsn && !atomic_compare_exchange_weak(d->cfg.clock, &cur, lsn))
        ;
}

int rp_dcs_load(void *arg, rp_frame_t *f, rp_page_id_t id, unsigned char *page, bool want_x, bool fresh)
{
    rp_dcs_t *d = arg;
    pending_t *p;
    /* the frame is being read in (IO set, not valid): nobody else can look at it */
    int rc = ask(d, id, want_x ? DRC_X : DRC_S, false, &p);
    if (rc)
        return rc;
    rc = install(d, p, id, page, false, fresh);
    if (rc == 0) {
        atomic_store(&f->gmode, p->mode);
        f->needs_image = true; /* content from elsewhere: a torn write here must be repairable from our WAL */
        if (p->mode == DRC_X && p->source == DRC_FROM_OWNER && p->from != d->cfg.self)
            atomic_fetch_add_explicit(&d->st_x, 1, memory_order_relaxed); /* received from another member */
    }
    finish(d, p);
    return rc;
}

int rp_dcs_acquire(rp_dcs_t *d, rp_frame_t *f, rp_page_id_t id, uint8_t mode, bool fresh, bool *latched)
{
    *latched = false;
    if (!rp_buf_dcs_begin(d->cfg.pool, f))
        return 0; /* another thread acquired it meanwhile: the caller checks the mode again */
    uint8_t have = atomic_load(&f->gmode);
    pending_t *p;
    int rc = ask(d, id, mode, have >= DRC_S, &p);
    if (rc) {
        rp_buf_dcs_end(d->cfg.pool, f);
        return rc;
    }
    /* install under the X latch: readers of the old content finish first */
    rp_buf_latch(f, true);
    unsigned char *page = rp_buf_page(d->cfg.pool, f);
    rc = install(d, p, id, page, atomic_load(&f->gmode) >= DRC_S, fresh);
    if (rc == 0) {
        if (p->source != DRC_FROM_HAVE || atomic_load(&f->gmode) == DRC_N) {
            f->needs_image = true;
            advance_clock(d, rp_page_lsn(page));
            if (p->mode == DRC_X && p->source == DRC_FROM_OWNER && p->from != d->cfg.self)
                atomic_fetch_add_explicit(&d->st_x, 1, memory_order_relaxed);
        }
        atomic_store(&f->gmode, p->mode);
    }
    /* The grant is reported installed with the latch still held and handed to the caller: a forward or
     * invalidation queued behind our request at the master (another member wants the page next) then
     * waits until the caller has used the page. Releasing first would let it take the page back before
     * the caller gets to latch it, and under contention the caller could lose that race every time. */
    if (rc == 0)
        *latched = true;
    else
        rp_buf_unlatch(f);
    finish(d, p);
    rp_buf_dcs_end(d->cfg.pool, f);
    return rc;
}

/* ---- named locks ------------------------------------------------------------------------------------ */

/* The lock's object, created on first use (locks_mutex held). */
static named_lock_t *lock_of(rp_dcs_t *d, const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > RP_DCS_LOCK_NAME_MAX) {
        rp_error(RP_EINVAL, "lock name \"%.*s\" has %zu bytes; a name has 1 to %d", RP_DCS_LOCK_NAME_MAX, name, len,
                 RP_DCS_LOCK_NAME_MAX);
        return NULL;
    }
    drc_res_t res = drc_res_lock(name);
    for (int i = 0; i < d->nlocks; i++) {
        if (d->locks[i].res != res)
            continue;
        if (strcmp(d->locks[i].name, name) == 0)
            return &d->locks[i];
        rp_error(RP_EINVAL, "lock names \"%s\" and \"%s\" hash to the same resource", name, d->locks[i].name);
        rp_error_hint("Rename one of them.");
        return NULL;
    }
    if (d->nlocks == NLOCKS) {
        rp_error(RP_ENOSPC, "no room for named lock \"%s\": %d are in use", name, NLOCKS);
        return NULL;
    }
    named_lock_t *l = &d->locks[d->nlocks++];
    memset(l, 0, sizeof(*l));
    l->res = res;
    memcpy(l->name, name, len + 1);
    return l;
}

static named_lock_t *find_lock(rp_dcs_t *d, drc_res_t res)
{
    for (int i = 0; i < d->nlocks; i++)
        if (d->locks[i].res == res)
            return &d->locks[i];
    return NULL;
}

static bool local_compatible(const named_lock_t *l, uint8_t mode)
{
    return mode == DRC_X ? !l->writer && l->readers == 0 : !l->writer;
}

static void take_local(named_lock_t *l, uint8_t mode)
{
    if (mode == DRC_X)
        l->writer = true;
    else
        l->readers++;
}

int rp_dcs_lock(rp_dcs_t *d, const char *name, uint8_t mode)
{
    if (mode != DRC_S && mode != DRC_X)
        return rp_error(RP_EINVAL, "lock mode %u; a named lock is taken in S (%d) or X (%d)", mode, DRC_S, DRC_X);
    pthread_mutex_lock(&d->locks_mutex);
    named_lock_t *l = lock_of(d, name);
    if (!l) {
        pthread_mutex_unlock(&d->locks_mutex);
        return rp_last_error()->code;
    }
    for (;;) {
        if (!l->draining && !l->acquiring) {
            if (l->gmode >= mode && local_compatible(l, mode)) {
                take_local(l, mode);
                pthread_mutex_unlock(&d->locks_mutex);
                atomic_fetch_add_explicit(&d->st_lock_local, 1, memory_order_relaxed);
                return 0;
            }
            if (l->gmode < mode) {
                l->acquiring = true;
                uint8_t have = l->gmode;
                pthread_mutex_unlock(&d->locks_mutex);
                pending_t *p;
                int rc = ask(d, l->res, mode, have >= DRC_S, &p);
                pthread_mutex_lock(&d->locks_mutex);
                l->acquiring = false;
                if (rc) {
                    pthread_cond_broadcast(&d->locks_cond);
                    pthread_mutex_unlock(&d->locks_mutex);
                    rp_error_context("could not take lock \"%s\"", name);
                    return rc;
                }
                l->gmode = p->mode;
                /* taken before the grant counts as installed: a forward that follows it waits for us */
                bool took = local_compatible(l, mode);
                if (took)
                    take_local(l, mode);
                pthread_cond_broadcast(&d->locks_cond);
                pthread_mutex_unlock(&d->locks_mutex);
                finish(d, p);
                atomic_fetch_add_explicit(&d->st_lock_remote, 1, memory_order_relaxed);
                if (took)
                    return 0;
                pthread_mutex_lock(&d->locks_mutex);
                continue;
            }
        }
        pthread_cond_wait(&d->locks_cond, &d->locks_mutex);
    }
}

void rp_dcs_unlock(rp_dcs_t *d, const char *name, uint8_t mode)
{
    pthread_mutex_lock(&d->locks_mutex);
    named_lock_t *l = find_lock(d, drc_res_lock(name));
    if (!l || (mode == DRC_X ? !l->writer : l->readers == 0))
        rp_panic("dcs", "lock \"%s\" released in mode %u without being held so", name, mode);
    if (mode == DRC_X)
        l->writer = false;
    else
        l->readers--;
    pthread_cond_broadcast(&d->locks_cond);
    pthread_mutex_unlock(&d->locks_mutex);
}

/* The master asks us to give up a lock (to `keep`: S when another member only wants to share it). Local
 * users finish first; new ones wait behind this. */
static void give_up_lock(rp_dcs_t *d, drc_res_t res, uint8_t keep)
{
    pthread_mutex_lock(&d->locks_mutex);
    named_lock_t *l = find_lock(d, res);
    if (l) {
        l->draining++;
        while (keep == DRC_S ? l->writer : (l->writer || l->readers))
            pthread_cond_wait(&d->locks_cond, &d->locks_mutex);
        if (l->gmode > keep)
            l->gmode = keep;
        l->draining--;
        pthread_cond_broadcast(&d->locks_cond);
    }
    pthread_mutex_unlock(&d->locks_mutex);
}

/* ---- master ------------------------------------------------------------------------------------------ */

static void on_lock_msg(rp_net_t *net, rp_net_msg_t *m, void *arg)
{
    (void)net;
    rp_dcs_t *d = arg;
    dcs_msg_t lk;
    if (!decode(d, m, &lk))
        return;
    drc_actions_t acts;
    drc_request(d->cfg.drc, lk.res, m->src, lk.mode, m->req_id, lk.has_copy, &acts);
    rp_net_msg_free(m);
    dispatch(d, &acts);
}

static void on_done_ack_release(rp_net_t *net, rp_net_msg_t *m, void *arg)
{
    (void)net;
    rp_dcs_t *d = arg;
    dcs_msg_t msg;
    if (!decode(d, m, &msg))
        return;
    uint16_t type = m->type;
    int from = m->src;
    rp_net_msg_free(m);
    master_input(d, type, msg.res, from, msg.seq);
}

/* ---- owner and holder -------------------------------------------------------------------------------- */

/* A forward or invalidation for a page this member was just granted waits until the grant is installed
 * (it was sent after the grant, so it refers to what the grant gave). */
static void wait_installed(rp_dcs_t *d, rp_page_id_t id)
{
    stripe_t *s = stripe_of(d, id);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        pending_t *p = find_pending(s, id);
        if (!p || !p->granted || p->installed)
            break;
        pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
}

/* Sends a PAGE: with the page's content, or (content NULL, DCS_PAGE_NO_CONTENT) "read the volume". */
static void ship(rp_dcs_t *d, int requester, uint64_t req_id, const dcs_msg_t *pg, const unsigned char *content)
{
    unsigned char hdr[DCS_PAGE_HDR];
    dcs_msg_encode(DCS_PAGE, pg, hdr);
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)content, d->ps}};
    int n = content ? 2 : 1;
    size_t len = sizeof(hdr) + (content ? d->ps : 0);
    if (rp_net_sendv(d->cfg.net, requester, DCS_PAGE, req_id, iov, n) != 0)
        rp_log_report(RP_LOG_WARNING, "dcs"); /* the requester times out; the master sends the forward again */
    else
        atomic_fetch_add_explicit(&d->st_out, len, memory_order_relaxed);
}

static void on_forward_msg(rp_net_t *net, rp_net_msg_t *m, void *arg)
{
    (void)net;
    rp_dcs_t *d = arg;
    dcs_msg_t fw;
    if (!decode(d, m, &fw))
        return;
    rp_page_id_t id = fw.res;
    uint64_t seq = fw.seq, req_id = fw.req_id;
    uint8_t mode = fw.mode;
    int requester = fw.requester;
    rp_debug("dcs", "forward page %" PRIu64 " mode %u to %d req %" PRIu64 " seq %" PRIu64, id, mode, requester, req_id,
             seq);
    rp_net_msg_free(m);
    atomic_fetch_add_explicit(&d->st_fwd, 1, memory_order_relaxed);
    wait_installed(d, id);

    /* "read the volume" (no content) unless the frame below says otherwise */
    dcs_msg_t pg = {.res = id, .seq = seq, .mode = mode, .flags = DCS_PAGE_NO_CONTENT};
    if (drc_res_is_lock(id)) {
        /* a lock moves without content: the PAGE message is the grant */
        give_up_lock(d, id, mode == DRC_X ? DRC_N : DRC_S);
        ship(d, requester, req_id, &pg, NULL);
        return;
    }
    rp_frame_t *f;
    if (rp_buf_lookup(d->cfg.pool, id, &f) != 0) {
        /* evicted (written first) since the master recorded us: the volume is current */
        ship(d, requester, req_id, &pg, NULL);
        return;
    }
    rp_buf_latch(f, mode == DRC_X);
    if (atomic_load(&f->gmode) == DRC_N) {
        rp_buf_unlatch(f);
        rp_buf_unpin(d->cfg.pool, f);
        ship(d, requester, req_id, &pg, NULL);
        return;
    }
    if (mode == DRC_X && (atomic_load(&f->state) & RP_FRAME_DIRTY)) {
        /* first version: a dirty page moving in X is written to the volume before it moves, so that
         * recovery of this member needs only this member's WAL */
        if (rp_buf_write_latched(d->cfg.pool, f) != 0) {
            rp_log_report(RP_LOG_ERROR, "dcs");
            rp_buf_unlatch(f);
            rp_buf_unpin(d->cfg.pool, f);
            return; /* the requester times out and asks again; the master sends the forward again */
        }
        atomic_fetch_add_explicit(&d->st_dirty, 1, memory_order_relaxed);
    }
    /* A page leaves only once the log is durable up to its last change (read after the write above,
     * which may have let go of the latch for a moment). */
    uint64_t need = rp_buf_last_mod_pos(f);
    if (need)
        rp_wal_flush_to(d->cfg.wal, need);
    /* A copy, which carries its checksum (checked by the receiver) and goes out after the latch is
     * released: local readers do not wait for the send. */
    unsigned char *copy = rp_xmalloc(d->ps);
    memcpy(copy, rp_buf_page(d->cfg.pool, f), d->ps);
    atomic_store(&f->gmode, mode == DRC_X ? DRC_N : DRC_S);
    rp_buf_unlatch(f);
    rp_buf_unpin(d->cfg.pool, f);
    if (!rp_page_is_new(copy, d->ps)) /* a never-written page travels as zeros, as it reads */
        rp_page_set_checksum(copy, d->ps);
    pg.flags = 0;
    ship(d, requester, req_id, &pg, copy);
    free(copy);
}

static void on_invalidate_msg(rp_net_t *net, rp_net_msg_t *m, void *arg)
{
    (void)net;
    rp_dcs_t *d = arg;
    dcs_msg_t inv;
    if (!decode(d, m, &inv))
        return;
    rp_page_id_t id = inv.res;
    uint64_t seq = inv.seq;
    int master = m->src;
    rp_net_msg_free(m);
    rp_debug("dcs", "invalidate page %" PRIu64 " seq %" PRIu64, id, seq);
    atomic_fetch_add_explicit(&d->st_inv_recv, 1, memory_order_relaxed);
    wait_installed(d, id);
    rp_frame_t *f;
    if (drc_res_is_lock(id)) {
        give_up_lock(d, id, DRC_N);
    } else if (rp_buf_lookup(d->cfg.pool, id, &f) == 0) {
        rp_buf_latch(f, true); /* readers of our copy finish first */
        /* A holder is invalidated only for S copies, which the volume or the owner also has; but an
         * invalidation sent again (the resender) may reach us after we became the owner. A dirty page
         * is never dropped unwritten: write it, or keep it and do not acknowledge (sent again later). */
        if ((atomic_load(&f->state) & RP_FRAME_DIRTY) && rp_buf_write_latched(d->cfg.pool, f) != 0) {
            rp_log_report(RP_LOG_ERROR, "dcs");
            rp_buf_unlatch(f);
            rp_buf_unpin(d->cfg.pool, f);
            return;
        }
        atomic_store(&f->gmode, DRC_N);
        rp_buf_unlatch(f);
        rp_buf_unpin(d->cfg.pool, f);
    }
    tell(d, master, DCS_ACK, id, seq); /* to the master that asked */
}

void rp_dcs_evicted(void *arg, rp_page_id_t id, uint8_t gmode)
{
    rp_dcs_t *d = arg;
    rp_debug("dcs", "evicted page %" PRIu64 " gmode %u", id, gmode);
    atomic_fetch_add_explicit(&d->st_releases, 1, memory_order_relaxed);
    tell_master(d, DCS_RELEASE, id, 0);
}

/* ---- the resender ------------------------------------------------------------------------------------ */

/*
 * A message of a transfer can be lost: sent to a member whose link was down (the send fails), or unread
 * in a socket the receiver closed. The directory would then wait for its DONE or ACK for ever, and every
 * later request for the page would queue behind it. So the master's side looks at its busy entries
 * every round and sends again what started the ones that were already busy, with the same sequence,
 * the round before: FORWARD and INVALIDATE are safe to receive twice (an owner that no longer has the
 * page answers "read the volume"; a page that arrives for nobody is acknowledged; an ACK or DONE for a
 * transfer that is over is ignored).
 */
typedef struct busy_key {
    uint64_t res, seq;
    uint8_t kind, to;
} busy_key_t;

typedef struct busy_list {
    drc_action_t *a;
    size_t n, cap;
} busy_list_t;

static void collect_busy(void *arg, const drc_action_t *a)
{
    busy_list_t *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        drc_action_t *n = realloc(l->a, cap * sizeof(*n));
        if (!n)
            return; /* this round sees fewer; the next one tries again */
        l->a = n;
        l->cap = cap;
    }
    l->a[l->n++] = *a;
}

static int cmp_busy(const void *x, const void *y)
{
    const busy_key_t *a = x, *b = y;
    if (a->res != b->res)
        return a->res < b->res ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    return (a->to > b->to) - (a->to < b->to);
}

static void *resender_main(void *arg)
{
    rp_dcs_t *d = arg;
    /* a round every half deadline (at least 50 ms): a message lost is sent again within about one
     * deadline, while a transfer that is just slow is rarely sent twice */
    uint64_t round_ms = RP_MAX(d->cfg.timeout_ms / 2, 50);
    busy_key_t *prev = NULL;
    size_t nprev = 0;
    busy_list_t now = {0};
    pthread_mutex_lock(&d->resend_mutex);
    while (!d->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t at = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec + round_ms * 1000000ULL;
        ts.tv_sec = (time_t)(at / 1000000000ULL);
        ts.tv_nsec = (long)(at % 1000000000ULL);
        while (!d->stop && pthread_cond_timedwait(&d->resend_cond, &d->resend_mutex, &ts) != ETIMEDOUT)
            ;
        if (d->stop)
            break;
        pthread_mutex_unlock(&d->resend_mutex);

        now.n = 0;
        drc_foreach_busy(d->cfg.drc, collect_busy, &now);
        busy_key_t *keys = rp_xmalloc((now.n ? now.n : 1) * sizeof(*keys));
        for (size_t i = 0; i < now.n; i++)
            keys[i] = (busy_key_t){now.a[i].res, now.a[i].seq, now.a[i].kind, now.a[i].to};
        drc_actions_t again = {0};
        for (size_t i = 0; i < now.n; i++) {
            if (!nprev || !bsearch(&keys[i], prev, nprev, sizeof(*prev), cmp_busy))
                continue;
            /* to a member that is away: once its link is back (the entry is still busy then) */
            if (now.a[i].to != d->cfg.self && !rp_net_connected(d->cfg.net, now.a[i].to))
                continue;
            rp_debug("dcs", "resend %s of page %" PRIu64 " to %u seq %" PRIu64,
                     now.a[i].kind == DRC_ACT_FORWARD ? "forward" : "invalidate", now.a[i].res, now.a[i].to,
                     now.a[i].seq);
            atomic_fetch_add_explicit(&d->st_resent, 1, memory_order_relaxed);
            again.a[again.n++] = now.a[i];
            if (again.n == DRC_MAX_ACTIONS) {
                dispatch(d, &again);
                again.n = 0;
            }
        }
        if (again.n)
            dispatch(d, &again);
        qsort(keys, now.n, sizeof(*keys), cmp_busy);
        free(prev);
        prev = keys;
        nprev = now.n;
        pthread_mutex_lock(&d->resend_mutex);
    }
    pthread_mutex_unlock(&d->resend_mutex);
    free(prev);
    free(now.a);
    return NULL;
}

int rp_dcs_start(rp_dcs_t *d)
{
    int rc = rp_thread_start(&d->resender, "rp-dcs-resend", resender_main, d);
    if (rc == 0)
        d->resender_started = true;
    return rc;
}

void rp_dcs_stop(rp_dcs_t *d)
{
    if (!d || !d->resender_started)
        return;
    pthread_mutex_lock(&d->resend_mutex);
    d->stop = true;
    pthread_cond_signal(&d->resend_cond);
    pthread_mutex_unlock(&d->resend_mutex);
    pthread_join(d->resender, NULL);
    d->resender_started = false;
}

/* ---- lifecycle --------------------------------------------------------------------------------------- */

int rp_dcs_create(const rp_dcs_config_t *cfg, rp_dcs_t **out)
{
    rp_dcs_t *d = calloc(1, sizeof(*d));
    if (!d)
        return rp_error(RP_ENOMEM, "out of memory");
    d->cfg = *cfg;
    d->ps = rp_volume_page_size(cfg->volume);
    d->limits = (dcs_limits_t){.data_pages = rp_volume_sb(cfg->volume)->data_pages, .page_size = d->ps,
                               .members = cfg->members};
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (int i = 0; i < NPENDING; i++) {
        pthread_mutex_init(&d->stripes[i].lock, NULL);
        pthread_cond_init(&d->stripes[i].cond, &ca);
    }
    pthread_mutex_init(&d->locks_mutex, NULL);
    pthread_cond_init(&d->locks_cond, NULL);
    pthread_mutex_init(&d->resend_mutex, NULL);
    pthread_cond_init(&d->resend_cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = d;
    return 0;
}

void rp_dcs_destroy(rp_dcs_t *d)
{
    if (!d)
        return;
    for (int i = 0; i < NPENDING; i++) {
        for (pending_t *p = d->stripes[i].list, *n; p; p = n) {
            n = p->next;
            if (p->page)
                rp_net_msg_free(p->page);
            free(p);
        }
        pthread_mutex_destroy(&d->stripes[i].lock);
        pthread_cond_destroy(&d->stripes[i].cond);
    }
    rp_dcs_stop(d);
    pthread_mutex_destroy(&d->locks_mutex);
    pthread_cond_destroy(&d->locks_cond);
    pthread_mutex_destroy(&d->resend_mutex);
    pthread_cond_destroy(&d->resend_cond);
    free(d);
}

int rp_dcs_register(rp_dcs_t *d)
{
    rp_net_t *n = d->cfg.net;
    int rc;
    if ((rc = rp_net_register(n, DCS_LOCK, 0, on_lock_msg, d)) != 0 ||
        (rc = rp_net_register(n, DCS_GRANT, 0, on_grant_msg, d)) != 0 ||
        (rc = rp_net_register(n, DCS_PAGE, 0, on_page_msg, d)) != 0 ||
        (rc = rp_net_register(n, DCS_DONE, 0, on_done_ack_release, d)) != 0 ||
        (rc = rp_net_register(n, DCS_ACK, 0, on_done_ack_release, d)) != 0 ||
        (rc = rp_net_register(n, DCS_RELEASE, 0, on_done_ack_release, d)) != 0 ||
        (rc = rp_net_register(n, DCS_FORWARD, RP_NET_BLOCKING, on_forward_msg, d)) != 0 ||
        (rc = rp_net_register(n, DCS_INVALIDATE, RP_NET_BLOCKING, on_invalidate_msg, d)) != 0)
        return rc;
    return 0;
}

void rp_dcs_get_stats(rp_dcs_t *d, rp_cluster_stats_t *st)
{
    st->local_hits = atomic_load(&d->st_local);
    st->remote_2way = atomic_load(&d->st_2way);
    st->remote_3way = atomic_load(&d->st_3way);
    st->x_transfers = atomic_load(&d->st_x);
    st->dirty_writes = atomic_load(&d->st_dirty);
    st->invalidations_sent = atomic_load(&d->st_inv_sent);
    st->invalidations_received = atomic_load(&d->st_inv_recv);
    st->forwards_served = atomic_load(&d->st_fwd);
    st->bytes_out = atomic_load(&d->st_out);
    st->bytes_in = atomic_load(&d->st_in);
    st->waits = atomic_load(&d->st_waits);
    st->timeouts = atomic_load(&d->st_timeouts);
    st->releases = atomic_load(&d->st_releases);
    st->locks_local = atomic_load(&d->st_lock_local);
    st->locks_remote = atomic_load(&d->st_lock_remote);
    st->resent = atomic_load(&d->st_resent);
    uint64_t total = 0;
    for (int b = 0; b < RP_CLUSTER_LAT_BUCKETS; b++) {
        total += st->lat_count[b] = atomic_load(&d->lat[b]);
        st->lat_bound_us[b] = latency_bound(b);
    }
    uint64_t acc = 0;
    bool have50 = false, have99 = false;
    st->lat_p50_us = st->lat_p99_us = 0;
    for (int b = 0; b < RP_CLUSTER_LAT_BUCKETS && total; b++) {
        acc += st->lat_count[b];
        if (!have50 && acc * 2 >= total) {
            st->lat_p50_us = st->lat_bound_us[b];
            have50 = true;
        }
        if (!have99 && acc * 100 >= total * 99) {
            st->lat_p99_us = st->lat_bound_us[b];
            have99 = true;
        }
    }
}
