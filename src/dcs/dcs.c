/*
 * dcs.c - cache fusion (see dcs.h, src/dcs/README.md, docs/cluster.md)
 *
 * Requester:  pending(id) -> LOCK to the master (or drc_request directly when the master is here)
 *             <- GRANT (from the master) or PAGE (from the owner), recorded in the pending table by the
 *                network thread -> install under the frame's X latch (or while loading) -> gmode
 *             -> DONE to the master after a PAGE
 * Owner:      FORWARD (worker thread): latch, WAL durable up to the page's last change, a dirty page
 *             moving in X written to the volume, PAGE to the requester; X: drop to N, S: keep S
 * Holder:     INVALIDATE (worker thread): X latch, drop to N, ACK to the master
 * Eviction:   RELEASE to the master once the frame is gone (a dirty page was written first)
 *
 * Why grants are messages with handlers and not rp_net_wait replies: a FORWARD or INVALIDATE for a page
 * can follow the grant of that page so closely that the worker thread handling it runs before the
 * requesting thread has installed what it was granted. The network thread records a grant in the
 * pending table before it dispatches anything that came after it on the same connection, and a forward or
 * invalidation that finds a granted, not yet installed acquisition waits for it.
 */
#include "dcs/dcs.h"

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

enum dcs_type {
    DCS_LOCK = RP_NET_TYPE_USER + 16, /* requester -> master */
    DCS_GRANT,                        /* master -> requester */
    DCS_FORWARD,                      /* master -> owner */
    DCS_PAGE,                         /* owner -> requester */
    DCS_DONE,                         /* requester -> master, after a PAGE */
    DCS_INVALIDATE,                   /* master -> holder */
    DCS_ACK,                          /* holder -> master */
    DCS_RELEASE,                      /* holder -> master, after an eviction */
};

#define PAGE_FROM_VOLUME 0x1 /* PAGE flag: the owner no longer has it; the volume is current */
#define NPENDING 64
#define LAT_BUCKETS 32

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

typedef struct stripe {
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* granted or installed */
    pending_t *list;
} stripe_t;

struct rp_dcs {
    rp_dcs_config_t cfg;
    uint32_t ps;
    stripe_t stripes[NPENDING];
    _Atomic uint64_t st_local, st_2way, st_3way, st_x, st_dirty, st_inv_sent, st_inv_recv, st_fwd, st_out,
        st_in, st_waits, st_timeouts, st_releases;
    _Atomic uint64_t lat[LAT_BUCKETS];   /* acquisitions with messages, by log2(us) */
};

/* ---- wire formats (little-endian) -------------------------------------------------------------------- */

static void put_lock(unsigned char *b, rp_page_id_t id, uint8_t mode, bool has_copy)
{
    rp_put_le64(b, id);
    b[8] = mode;
    b[9] = has_copy;
    memset(b + 10, 0, 6);
}

static void put_grant(unsigned char *b, const drc_action_t *a)
{
    rp_put_le64(b, a->res);
    rp_put_le64(b + 8, a->seq);
    b[16] = a->mode;
    b[17] = a->source;
    memset(b + 18, 0, 6);
}

static void put_forward(unsigned char *b, const drc_action_t *a)
{
    rp_put_le64(b, a->res);
    rp_put_le64(b + 8, a->seq);
    rp_put_le64(b + 16, a->req_id);
    b[24] = a->mode;
    b[25] = a->requester;
    memset(b + 26, 0, 6);
}

static void put_res_seq(unsigned char *b, rp_page_id_t id, uint64_t seq)
{
    rp_put_le64(b, id);
    rp_put_le64(b + 8, seq);
}

static bool short_msg(rp_net_msg_t *m, uint32_t want)
{
    if (m->len >= want)
        return false;
    rp_warn("dcs", "message type %u from instance %u is %u bytes, expected %u: dropped", m->type, m->src, m->len,
            want);
    return true;
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

static void record_latency(rp_dcs_t *d, uint64_t ns)
{
    uint64_t us = ns / 1000;
    int b = 0;
    while (us > 1 && b < LAT_BUCKETS - 1) {
        us >>= 1;
        b++;
    }
    atomic_fetch_add_explicit(&d->lat[b], 1, memory_order_relaxed);
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
        unsigned char b[32];
        rp_debug("dcs", "master: %s page %" PRIu64 " to %u mode %u source %u requester %u req %" PRIu64 " seq %" PRIu64,
                 a->kind == DRC_ACT_GRANT ? "grant" : a->kind == DRC_ACT_FORWARD ? "forward" : "invalidate", a->res,
                 a->to, a->mode, a->source, a->requester, a->req_id, a->seq);
        switch (a->kind) {
        case DRC_ACT_GRANT:
            if (a->to == d->cfg.self) {
                on_granted(d, a->res, a->req_id, a->mode, a->source, a->seq, d->cfg.self, NULL);
            } else {
                put_grant(b, a);
                send_to(d, a->to, DCS_GRANT, a->req_id, b, 24);
            }
            break;
        case DRC_ACT_FORWARD:
            put_forward(b, a);
            send_to(d, a->to, DCS_FORWARD, 0, b, 32); /* to ourselves: a worker thread runs it */
            break;
        case DRC_ACT_INVALIDATE:
            put_res_seq(b, a->res, a->seq);
            atomic_fetch_add_explicit(&d->st_inv_sent, 1, memory_order_relaxed);
            send_to(d, a->to, DCS_INVALIDATE, 0, b, 16);
            break;
        }
    }
}

/* DONE, ACK, RELEASE: to the master's directory, directly when the master is here. */
static void tell_master(rp_dcs_t *d, uint16_t type, rp_page_id_t id, uint64_t seq)
{
    int master = master_of(d, id);
    if (master != d->cfg.self) {
        unsigned char b[16];
        put_res_seq(b, id, seq);
        send_to(d, master, type, 0, b, type == DCS_RELEASE ? 8 : 16);
        return;
    }
    drc_actions_t acts;
    if (type == DCS_DONE)
        drc_done(d->cfg.drc, drc_res_page(id), d->cfg.self, seq, &acts);
    else if (type == DCS_ACK)
        drc_ack(d->cfg.drc, drc_res_page(id), d->cfg.self, seq, &acts);
    else
        drc_release(d->cfg.drc, drc_res_page(id), d->cfg.self, &acts);
    dispatch(d, &acts);
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
    /* Nobody waits for it any more (the requester gave up). A forwarded page still completes the
     * master's transfer; the directory's view that we hold the page is corrected by our next request. */
    if (page) {
        tell_master(d, DCS_DONE, id, seq);
        rp_net_msg_free(page);
    }
}

static void on_grant_msg(rp_net_t *net, rp_net_msg_t *m, void *arg)
{
    (void)net;
    rp_dcs_t *d = arg;
    if (short_msg(m, 24)) {
        rp_net_msg_free(m);
        return;
    }
    on_granted(d, rp_get_le64(m->payload), m->req_id, m->payload[16], m->payload[17], rp_get_le64(m->payload + 8),
               m->src, NULL);
    rp_net_msg_free(m);
}

static void on_page_msg(rp_net_t *net, rp_net_msg_t *m, void *arg)
{
    (void)net;
    rp_dcs_t *d = arg;
    if (short_msg(m, 24)) {
        rp_net_msg_free(m);
        return;
    }
    uint8_t flags = m->payload[17];
    if (!(flags & PAGE_FROM_VOLUME) && m->len != 24 + d->ps) {
        rp_warn("dcs", "page message from instance %u has %u bytes, expected %u: dropped", m->src, m->len, 24 + d->ps);
        rp_net_msg_free(m);
        return;
    }
    atomic_fetch_add_explicit(&d->st_in, m->len, memory_order_relaxed);
    on_granted(d, rp_get_le64(m->payload), m->req_id, m->payload[16],
               (flags & PAGE_FROM_VOLUME) ? DRC_FROM_DISK : DRC_FROM_OWNER, rp_get_le64(m->payload + 8), m->src, m);
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
        unsigned char b[16];
        put_lock(b, id, mode, has_copy);
        if (rp_net_send(d->cfg.net, master, DCS_LOCK, p->req_id, b, sizeof(b)) != 0) {
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
    if (local && p->source != DRC_FROM_OWNER && p->from == d->cfg.self)
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
    if (p->source == DRC_FROM_OWNER && p->page && !(p->page->payload[17] & PAGE_FROM_VOLUME)) {
        const unsigned char *src = p->page->payload + 24;
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
        if (p->mode == DRC_X && p->source != DRC_FROM_HAVE)
            atomic_fetch_add_explicit(&d->st_x, 1, memory_order_relaxed);
    }
    finish(d, p);
    return rc;
}

int rp_dcs_acquire(rp_dcs_t *d, rp_frame_t *f, rp_page_id_t id, uint8_t mode, bool fresh)
{
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
            if (p->mode == DRC_X)
                atomic_fetch_add_explicit(&d->st_x, 1, memory_order_relaxed);
        }
        atomic_store(&f->gmode, p->mode);
    }
    rp_buf_unlatch(f);
    finish(d, p);
    rp_buf_dcs_end(d->cfg.pool, f);
    return rc;
}

/* ---- master ------------------------------------------------------------------------------------------ */

static void on_lock_msg(rp_net_t *net, rp_net_msg_t *m, void *arg)
{
    (void)net;
    rp_dcs_t *d = arg;
    if (!short_msg(m, 16)) {
        drc_actions_t acts;
        drc_request(d->cfg.drc, drc_res_page(rp_get_le64(m->payload)), m->src, m->payload[8], m->req_id,
                    m->payload[9] != 0, &acts);
        dispatch(d, &acts);
    }
    rp_net_msg_free(m);
}

static void on_done_ack_release(rp_net_t *net, rp_net_msg_t *m, void *arg)
{
    (void)net;
    rp_dcs_t *d = arg;
    uint16_t type = m->type;
    if (!short_msg(m, type == DCS_RELEASE ? 8 : 16)) {
        drc_res_t res = drc_res_page(rp_get_le64(m->payload));
        drc_actions_t acts;
        if (type == DCS_DONE)
            drc_done(d->cfg.drc, res, m->src, rp_get_le64(m->payload + 8), &acts);
        else if (type == DCS_ACK)
            drc_ack(d->cfg.drc, res, m->src, rp_get_le64(m->payload + 8), &acts);
        else
            drc_release(d->cfg.drc, res, m->src, &acts);
        dispatch(d, &acts);
    }
    rp_net_msg_free(m);
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

static void on_forward_msg(rp_net_t *net, rp_net_msg_t *m, void *arg)
{
    (void)net;
    rp_dcs_t *d = arg;
    if (short_msg(m, 32)) {
        rp_net_msg_free(m);
        return;
    }
    rp_page_id_t id = rp_get_le64(m->payload);
    uint64_t seq = rp_get_le64(m->payload + 8);
    uint64_t req_id = rp_get_le64(m->payload + 16);
    uint8_t mode = m->payload[24];
    int requester = m->payload[25];
    rp_debug("dcs", "forward page %" PRIu64 " mode %u to %d req %" PRIu64 " seq %" PRIu64, id, mode, requester, req_id,
             seq);
    rp_net_msg_free(m);
    atomic_fetch_add_explicit(&d->st_fwd, 1, memory_order_relaxed);
    wait_installed(d, id);

    unsigned char hdr[24] = {0};
    rp_put_le64(hdr, id);
    rp_put_le64(hdr + 8, seq);
    hdr[16] = mode;
    rp_frame_t *f;
    if (rp_buf_lookup(d->cfg.pool, id, &f) != 0) {
        /* evicted (written first) since the master recorded us: the volume is current */
        hdr[17] = PAGE_FROM_VOLUME;
        send_to(d, requester, DCS_PAGE, req_id, hdr, sizeof(hdr));
        return;
    }
    rp_buf_latch(f, mode == DRC_X);
    if (atomic_load(&f->gmode) == DRC_N) {
        hdr[17] = PAGE_FROM_VOLUME;
        rp_buf_unlatch(f);
        rp_buf_unpin(d->cfg.pool, f);
        send_to(d, requester, DCS_PAGE, req_id, hdr, sizeof(hdr));
        return;
    }
    unsigned char *page = rp_buf_page(d->cfg.pool, f);
    if (mode == DRC_X) {
        /* first version: a dirty page moving in X is written to the volume before it moves, so that
         * recovery of this member needs only this member's WAL */
        bool dirty = (atomic_load(&f->state) & RP_FRAME_DIRTY) != 0;
        if (dirty) {
            if (rp_buf_write_latched(d->cfg.pool, f) != 0) {
                rp_log_report(RP_LOG_ERROR, "dcs");
                rp_buf_unlatch(f);
                rp_buf_unpin(d->cfg.pool, f);
                return; /* the requester times out and asks again */
            }
            atomic_fetch_add_explicit(&d->st_dirty, 1, memory_order_relaxed);
        }
    }
    /* A page leaves only once the log is durable up to its last change (read after the write above,
     * which may have let go of the latch for a moment). */
    uint64_t need = rp_buf_last_mod_pos(f);
    if (need)
        rp_wal_flush_to(d->cfg.wal, need);
    /* the shipped copy carries its checksum, checked by the receiver */
    unsigned char *copy = NULL;
    if (posix_memalign((void **)&copy, RP_IO_ALIGN, d->ps) == 0) {
        memcpy(copy, page, d->ps);
        if (!rp_page_is_new(copy, d->ps)) /* a never-written page travels as zeros, as it reads */
            rp_page_set_checksum(copy, d->ps);
        struct iovec iov[2] = {{hdr, sizeof(hdr)}, {copy, d->ps}};
        atomic_store(&f->gmode, mode == DRC_X ? DRC_N : DRC_S);
        if (rp_net_sendv(d->cfg.net, requester, DCS_PAGE, req_id, iov, 2) != 0)
            rp_log_report(RP_LOG_WARNING, "dcs");
        else
            atomic_fetch_add_explicit(&d->st_out, sizeof(hdr) + d->ps, memory_order_relaxed);
        free(copy);
    }
    rp_buf_unlatch(f);
    rp_buf_unpin(d->cfg.pool, f);
}

static void on_invalidate_msg(rp_net_t *net, rp_net_msg_t *m, void *arg)
{
    (void)net;
    rp_dcs_t *d = arg;
    if (short_msg(m, 16)) {
        rp_net_msg_free(m);
        return;
    }
    rp_page_id_t id = rp_get_le64(m->payload);
    uint64_t seq = rp_get_le64(m->payload + 8);
    int master = m->src;
    rp_net_msg_free(m);
    rp_debug("dcs", "invalidate page %" PRIu64 " seq %" PRIu64, id, seq);
    atomic_fetch_add_explicit(&d->st_inv_recv, 1, memory_order_relaxed);
    wait_installed(d, id);
    rp_frame_t *f;
    if (rp_buf_lookup(d->cfg.pool, id, &f) == 0) {
        rp_buf_latch(f, true); /* readers of our copy finish first */
        atomic_store(&f->gmode, DRC_N);
        rp_buf_unlatch(f);
        rp_buf_unpin(d->cfg.pool, f);
    }
    unsigned char b[16];
    put_res_seq(b, id, seq);
    if (master == d->cfg.self) {
        drc_actions_t acts;
        drc_ack(d->cfg.drc, drc_res_page(id), d->cfg.self, seq, &acts);
        dispatch(d, &acts);
    } else {
        send_to(d, master, DCS_ACK, 0, b, sizeof(b));
    }
}

void rp_dcs_evicted(void *arg, rp_page_id_t id, uint8_t gmode)
{
    rp_dcs_t *d = arg;
    rp_debug("dcs", "evicted page %" PRIu64 " gmode %u", id, gmode);
    atomic_fetch_add_explicit(&d->st_releases, 1, memory_order_relaxed);
    tell_master(d, DCS_RELEASE, id, 0);
}

/* ---- lifecycle --------------------------------------------------------------------------------------- */

int rp_dcs_create(const rp_dcs_config_t *cfg, rp_dcs_t **out)
{
    rp_dcs_t *d = calloc(1, sizeof(*d));
    if (!d)
        return rp_error(RP_ENOMEM, "out of memory");
    d->cfg = *cfg;
    d->ps = rp_volume_page_size(cfg->volume);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (int i = 0; i < NPENDING; i++) {
        pthread_mutex_init(&d->stripes[i].lock, NULL);
        pthread_cond_init(&d->stripes[i].cond, &ca);
    }
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

void rp_dcs_get_stats(rp_dcs_t *d, rp_dcs_stats_t *st)
{
    memset(st, 0, sizeof(*st));
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
    uint64_t counts[LAT_BUCKETS], total = 0;
    for (int b = 0; b < LAT_BUCKETS; b++)
        total += counts[b] = atomic_load(&d->lat[b]);
    uint64_t acc = 0;
    for (int b = 0; b < LAT_BUCKETS && total; b++) {
        acc += counts[b];
        if (!st->lat_p50_us && acc * 2 >= total)
            st->lat_p50_us = 1ULL << b;
        if (!st->lat_p99_us && acc * 100 >= total * 99)
            st->lat_p99_us = 1ULL << b;
    }
}
