/*
 * wait.c - request ids and waiters: how a reply finds the thread that waits for it
 *
 * A waiter is registered under its request id before the request is sent (rp_net_expect), so a reply
 * that comes back faster than the sender returns from send still finds it. Replies are matched by request
 * id alone, whichever member sends them: in a 3-hop transfer the requester R asks the master M and the
 * owner O answers R directly. Request ids are unique per sender (a 64-bit sequence from a random start),
 * and the table is per instance, so ids of different instances never meet.
 *
 * The table: NET_WAIT_STRIPES lists hashed by request id, each under its own mutex; a waiter has its own
 * condition variable (CLOCK_MONOTONIC, the clock of rp_now_ns deadlines), so completing one wakes exactly
 * the thread that waits for it. The network thread completes (rp_net_waiter_complete): one mutex, one
 * store, one signal. The stripe lock is never held while another lock of this layer is taken.
 *
 * Waking up costs a sleeping thread tens of microseconds on a virtual machine (25 us here: as much as a
 * third of a loopback round trip). A waiter that is the only one of its instance, and whose recent
 * replies came back within the spin budget, therefore polls its flag for up to that budget before it
 * sleeps: an idle link answers a page request in about one round trip, while a busy instance (several
 * waiters) and a slow network (replies slower than the budget) never burn a CPU waiting (README.md,
 * "Waking the waiter").
 *
 * Outcomes, each consuming the waiter exactly once:
 *   reply before or during rp_net_wait        the caller gets it (even when the deadline passed meanwhile)
 *   deadline, then the reply                  RP_ETIMEDOUT; the reply goes to the reply type's handler
 *   rp_net_cancel, reply already there        the reply goes to the reply type's handler
 *   the watched peer disconnects              RP_ECLOSED (rp_net_expect_from only)
 *   rp_net_stop                               RP_ESHUTDOWN
 *
 * Interface:
 *   rp_net_request_id(), rp_net_expect(), rp_net_expect_from(), rp_net_wait(), rp_net_cancel()
 *   rp_net_call(), rp_net_callv()
 *   rp_net_waiters_init/destroy(), rp_net_waiter_complete(), rp_net_waiters_fail()   for net.c, conn.c
 */
#include "net/net_int.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

struct rp_net_waiter {
    rp_net_waiter_t *next;
    uint64_t req_id;
    int peer;                 /* RP_NET_ANY, or the member whose disconnect fails the wait */
    uint16_t type;            /* the request's type when known (rp_net_call), for reports */
    atomic_bool done;         /* set under the stripe lock; read without it while spinning */
    int err;                  /* when done without a reply */
    rp_net_msg_t *msg;        /* the reply */
    uint64_t since_ns;
    pthread_cond_t cond;
};

static rp_net_wait_stripe_t *stripe_of(rp_net_t *net, uint64_t req_id)
{
    return &net->stripes[(req_id * 0x9e3779b97f4a7c15ULL) >> 58]; /* 64 stripes: the top 6 bits */
}

_Static_assert(NET_WAIT_STRIPES == 64, "stripe_of takes 6 bits");

static rp_net_waiter_t **find(rp_net_wait_stripe_t *s, uint64_t req_id)
{
    rp_net_waiter_t **pp = &s->head;
    while (*pp && (*pp)->req_id != req_id)
        pp = &(*pp)->next;
    return pp;
}

void rp_net_waiters_init(rp_net_t *net)
{
    for (int i = 0; i < NET_WAIT_STRIPES; i++) {
        pthread_mutex_init(&net->stripes[i].lock, NULL);
        net->stripes[i].head = NULL;
    }
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
        seed = rp_now_ns() ^ ((uint64_t)rp_wall_ms() << 20);
    atomic_store(&net->next_req_id, seed);
}

static void waiter_free(rp_net_waiter_t *w)
{
    rp_net_msg_free(w->msg);
    pthread_cond_destroy(&w->cond);
    free(w);
}

void rp_net_waiters_destroy(rp_net_t *net)
{
    for (int i = 0; i < NET_WAIT_STRIPES; i++) {
        rp_net_waiter_t *w = net->stripes[i].head;
        while (w) {
            rp_net_waiter_t *next = w->next;
            waiter_free(w);
            w = next;
        }
        net->stripes[i].head = NULL;
        pthread_mutex_destroy(&net->stripes[i].lock);
    }
}

uint64_t rp_net_request_id(rp_net_t *net)
{
    uint64_t id;
    do
        id = atomic_fetch_add_explicit(&net->next_req_id, 1, memory_order_relaxed);
    while (id == 0);
    return id;
}

static int expect(rp_net_t *net, uint64_t req_id, int peer, uint16_t type)
{
    if (peer != RP_NET_ANY && (peer < 0 || peer >= RP_VOLUME_MAX_INSTANCES || !net->peers[peer].member))
        return rp_error(RP_EINVAL, "instance %d is not a member of the cluster", peer);
    rp_net_waiter_t *w = rp_xcalloc(1, sizeof(*w));
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    w->req_id = req_id;
    w->peer = peer;
    w->type = type;
    w->since_ns = rp_now_ns();

    rp_net_wait_stripe_t *s = stripe_of(net, req_id);
    pthread_mutex_lock(&s->lock);
    /* checked under the stripe lock: rp_net_stop sets stopping before it fails every waiter under it */
    int rc = 0;
    if (atomic_load(&net->stopping))
        rc = rp_error(RP_ESHUTDOWN, "the cluster transport is shutting down");
    else if (*find(s, req_id))
        rc = rp_error(RP_EEXIST, "request 0x%016llx is expected already", (unsigned long long)req_id);
    if (rc == 0) {
        w->next = s->head;
        s->head = w;
        atomic_fetch_add(&net->nwaiters, 1);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc != 0)
        waiter_free(w);
    return rc;
}

int rp_net_expect(rp_net_t *net, uint64_t req_id)
{
    return expect(net, req_id, RP_NET_ANY, 0);
}

int rp_net_expect_from(rp_net_t *net, uint64_t req_id, int peer)
{
    return expect(net, req_id, peer, 0);
}

static rp_net_waiter_t *unlink_waiter(rp_net_t *net, rp_net_wait_stripe_t *s, uint64_t req_id)
{
    rp_net_waiter_t **pp = find(s, req_id);
    rp_net_waiter_t *w = *pp;
    if (w) {
        *pp = w->next;
        atomic_fetch_sub(&net->nwaiters, 1);
    }
    return w;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Polls w->done without the lock until the spin budget or the deadline, when spinning is likely to pay. */
static void spin(rp_net_t *net, rp_net_waiter_t *w, uint64_t deadline_ns)
{
    if (!net->spin_ns || atomic_load_explicit(&net->nwaiters, memory_order_relaxed) != 1 ||
        atomic_load_explicit(&net->reply_ns, memory_order_relaxed) > net->spin_ns)
        return;
    uint64_t until = RP_MIN(rp_now_ns() + net->spin_ns, deadline_ns);
    while (!atomic_load_explicit(&w->done, memory_order_acquire)) {
        for (int i = 0; i < 32; i++)
            cpu_relax();
        if (rp_now_ns() >= until)
            break;
    }
}

/* The smoothed time from expect to reply: spinning pays only when replies come back within the budget. */
static void note_reply_time(rp_net_t *net, uint64_t ns)
{
    uint64_t avg = atomic_load_explicit(&net->reply_ns, memory_order_relaxed);
    avg = avg ? (avg * 7 + ns) / 8 : ns;
    atomic_store_explicit(&net->reply_ns, avg, memory_order_relaxed);
}

static int timeout_report(rp_net_t *net, const rp_net_waiter_t *w)
{
    unsigned long long ms = (unsigned long long)((rp_now_ns() - w->since_ns) / 1000000);
    if (w->peer != RP_NET_ANY)
        rp_error(RP_ETIMEDOUT, "instance %d did not answer request 0x%016llx within %llu ms", w->peer,
                 (unsigned long long)w->req_id, ms);
    else
        rp_error(RP_ETIMEDOUT, "no reply to request 0x%016llx within %llu ms", (unsigned long long)w->req_id, ms);
    if (w->type)
        rp_error_detail("The request had type 0x%04x.", w->type);
    rp_error_hint("The member that should answer may be overloaded, stopped or cut off; a reply that arrives "
                  "later is handled as a late reply.");
    return RP_ETIMEDOUT;
}

int rp_net_wait(rp_net_t *net, uint64_t req_id, uint64_t deadline_ns, rp_net_msg_t **reply)
{
    *reply = NULL;
    rp_net_wait_stripe_t *s = stripe_of(net, req_id);
    pthread_mutex_lock(&s->lock);
    rp_net_waiter_t *w = *find(s, req_id);
    if (!w) {
        pthread_mutex_unlock(&s->lock);
        return rp_error(RP_ENOENT, "request 0x%016llx is not expected", (unsigned long long)req_id);
    }
    if (!w->done) { /* the waiter stays in the table: only this thread may unlink it */
        pthread_mutex_unlock(&s->lock);
        spin(net, w, deadline_ns);
        pthread_mutex_lock(&s->lock);
    }
    while (!w->done) {
        if (rp_now_ns() >= deadline_ns)
            break;
        struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000ULL),
                              .tv_nsec = (long)(deadline_ns % 1000000000ULL)};
        pthread_cond_timedwait(&w->cond, &s->lock, &ts);
    }
    unlink_waiter(net, s, req_id);
    pthread_mutex_unlock(&s->lock);

    int rc = 0;
    if (w->msg) {
        note_reply_time(net, rp_now_ns() - w->since_ns);
        *reply = w->msg;
        w->msg = NULL;
    } else if (!w->done) {
        rc = timeout_report(net, w);
    } else if (w->err == RP_ECLOSED) {
        rc = rp_error(RP_ECLOSED, "instance %d disconnected before it answered request 0x%016llx", w->peer,
                      (unsigned long long)req_id);
        rp_error_hint("The transport re-dials on its own; retry the request once the member is back.");
    } else {
        rc = rp_error(w->err, "the cluster transport is shutting down");
    }
    waiter_free(w);
    return rc;
}

int rp_net_cancel(rp_net_t *net, uint64_t req_id)
{
    rp_net_wait_stripe_t *s = stripe_of(net, req_id);
    pthread_mutex_lock(&s->lock);
    rp_net_waiter_t *w = unlink_waiter(net, s, req_id);
    pthread_mutex_unlock(&s->lock);
    if (!w)
        return rp_error(RP_ENOENT, "request 0x%016llx is not expected", (unsigned long long)req_id);
    rp_net_msg_t *late = w->msg;
    w->msg = NULL;
    waiter_free(w);
    if (late)
        rp_net_late_reply(net, late);
    return 0;
}

bool rp_net_waiter_complete(rp_net_t *net, rp_net_msg_t *msg)
{
    rp_net_wait_stripe_t *s = stripe_of(net, msg->req_id);
    pthread_mutex_lock(&s->lock);
    rp_net_waiter_t *w = *find(s, msg->req_id);
    bool taken = w && !w->done;
    if (taken) {
        w->msg = msg;
        w->done = true;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return taken;
}

void rp_net_waiters_fail(rp_net_t *net, int peer, int err)
{
    for (int i = 0; i < NET_WAIT_STRIPES; i++) {
        rp_net_wait_stripe_t *s = &net->stripes[i];
        pthread_mutex_lock(&s->lock);
        for (rp_net_waiter_t *w = s->head; w; w = w->next) {
            if (!w->done && (peer == RP_NET_ANY || w->peer == peer)) {
                w->done = true;
                w->err = err;
                pthread_cond_signal(&w->cond);
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
}

int rp_net_callv(rp_net_t *net, int dst, uint16_t type, const struct iovec *iov, int iovcnt,
                 uint64_t deadline_ns, uint64_t *req_id_out, rp_net_msg_t **reply)
{
    *reply = NULL;
    uint64_t id = rp_net_request_id(net);
    if (req_id_out)
        *req_id_out = id;
    /* a call to self has no connection that could drop */
    int rc = expect(net, id, dst == net->self ? RP_NET_ANY : dst, type);
    if (rc != 0)
        return rc;
    rc = rp_net_sendv(net, dst, type, id, iov, iovcnt);
    if (rc != 0) {
        rp_report_t saved = *rp_last_error();
        rp_net_cancel(net, id);
        rp_error(saved.code, "%s", saved.message);
        rp_error_detail("%s", saved.detail);
        rp_error_hint("%s", saved.hint);
        return rc;
    }
    return rp_net_wait(net, id, deadline_ns, reply);
}

int rp_net_call(rp_net_t *net, int dst, uint16_t type, const void *payload, size_t len, uint64_t deadline_ns,
                rp_net_msg_t **reply)
{
    struct iovec iov = {.iov_base = (void *)payload, .iov_len = len};
    return rp_net_callv(net, dst, type, &iov, len ? 1 : 0, deadline_ns, NULL, reply);
}
