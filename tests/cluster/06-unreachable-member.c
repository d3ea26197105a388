/*
 * 06-unreachable-member - a frozen member makes the requests that need it fail with -TRYAGAIN within
 * the request deadline, a refused write changes nothing, and once the member is back every key holds
 * exactly its last acknowledged value on every member
 *
 * The cluster runs with a short request-timeout (REQUEST_TIMEOUT). Every value is an integer of seven
 * digits (INCR works on every key, and no write ever changes a value's size: no split, no page
 * allocation, so a write needs only the key's leaf). The scenario keeps an exact account: for each key,
 * the last value a member acknowledged.
 *
 *   1. NKEYS keys (long, so that they spread over several leaves) are written through all members and
 *      read back from every member.
 *   2. Member FROZEN is stopped with SIGSTOP: alive to TCP, silent to everything else.
 *      a. At once (its links still look up: requests to it wait for their deadline), members 0 and 1
 *         each run SET, GET and INCR on their keys (k % 2 == member) of the first half.
 *      b. Once members 0 and 1 report it disconnected (the transport's idle timeout: INFO cluster,
 *         cluster_members_connected), the same on the second half: requests that need it now meet an
 *         unreachable member.
 *      Every reply must be a success or an error starting with "TRYAGAIN " (docs/resp.md: "the
 *      command changed nothing, retry it") — no other error, no client timeout (CLIENT_TIMEOUT_S) —
 *      and come within LATENCY_BOUND_MS. A GET must return the key's last acknowledged value and an
 *      INCR that value plus one, which is how a refused SET or INCR is seen to have changed nothing.
 *      Each half must see at least one TRYAGAIN, and the freeze at least one success. Member FROZEN
 *      read every key in step 1 (and every member's expiry sweeper reads every leaf), so a write must
 *      invalidate its copy and is refused; the successes are reads of copies members 0 and 1 hold.
 *   3. Member FROZEN is continued with SIGCONT. Within RECOVERY_S every member reads every key, equal
 *      to exactly its last acknowledged value (TRYAGAIN is retried meanwhile; any other value fails at
 *      once); then every member INCRs every key (each reply exactly one more) and every member reads
 *      the final values.
 *   4. The cluster stops cleanly (cl_stop: no sanitizer report, no panic in any log).
 *
 * Why few keys and a short request-timeout: a request that needs the frozen member costs its whole
 * deadline, also once the member is known to be disconnected, and a command can first wait behind
 * another local acquisition of the same page (the expiry sweeper's: a member asks for a page once at a
 * time), so the freeze costs up to five deadlines per key on a member. More clients would not shorten
 * it: a command runs on one of respoold's I/O threads and blocks it while it waits. NKEYS and
 * REQUEST_TIMEOUT keep the freeze within seconds; a request that hangs still shows (LATENCY_BOUND_MS,
 * CLIENT_TIMEOUT_S).
 *
 * A failure names the phase, the member, the key (its number; the name is "unreach:<number>:" and
 * padding) and the reply. RP_CLUSTER_KEEP=1 RP_CLUSTER_LOG_LEVEL=debug keep each member's log with
 * every cache-fusion message (README.md).
 */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MEMBERS 3
#define FROZEN 2                 /* the member that is stopped; 0 and 1 serve the clients meanwhile */
#define NKEYS 48                 /* a multiple of 4: two halves, each split between members 0 and 1 */
#define KEY_PAD 900              /* bytes of padding per key name: a few keys per leaf */
#define REQUEST_TIMEOUT "100ms"  /* respoolctl cluster init --request-timeout */
#define REQUEST_TIMEOUT_MS 100
/* one deadline of the command's own, one it may wait behind (another local acquisition of the same
 * page), and a second for scheduling (sanitizers, a loaded machine) */
#define LATENCY_BOUND_MS (2 * REQUEST_TIMEOUT_MS + 1000)
#define CLIENT_TIMEOUT_S 10      /* hiredis command timeout: no reply by then is a hang */
#define DISCONNECT_S 20          /* the transport's idle timeout is 5 s */
#define RECOVERY_S 30
#define HEALTHY_S 30             /* retries of TRYAGAIN while every member runs */
#define BASE_VALUE 1000000LL     /* values stay at seven digits: BASE + 1000 * key + small changes */

static cl_cluster_t cluster;
static char padding[KEY_PAD + 1];

typedef struct key_state {
    long long acked;             /* the last acknowledged value */
    char how[48];                /* who acknowledged it, for messages: "SET on member 1 (freeze a)" */
    int refused;                 /* writes answered TRYAGAIN during the freeze */
} key_state_t;

static key_state_t keys[NKEYS];

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Member FROZEN's process, stopped or not: the harness' teardown continues it too, this is for clarity
 * in the order of events. */
static void thaw(void)
{
    if (cluster.n > FROZEN && cluster.pid[FROZEN] > 0)
        kill(cluster.pid[FROZEN], SIGCONT);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    thaw();
    cl_fail(&cluster, "%s", msg);
}

static bool is_tryagain(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && r->len >= 9 && strncmp(r->str, "TRYAGAIN ", 9) == 0;
}

/* ---- one command, timed and classified ------------------------------------------------------------ */

enum { OP_SET, OP_GET, OP_INCR, NOPS };
static const char *const op_name[NOPS] = {"SET", "GET", "INCR"};

typedef struct outcome {
    bool ok;                     /* success (checked against the account); false: TRYAGAIN */
    uint64_t ms;
    char reply[160];             /* the reply, formatted, for messages */
} outcome_t;

/* Runs op on key k through r. Returns false with `error` set when the reply is neither a success of the
 * expected type nor a TRYAGAIN, or did not come at all; the caller decides what a success means. */
static bool run_op(redisContext *r, int op, int k, long long set_value, redisReply **out, outcome_t *o, char *error,
                   size_t size)
{
    uint64_t t0 = now_ms();
    redisReply *rep;
    if (op == OP_SET)
        rep = redisCommand(r, "SET unreach:%03d:%s %lld", k, padding, set_value);
    else if (op == OP_GET)
        rep = redisCommand(r, "GET unreach:%03d:%s", k, padding);
    else
        rep = redisCommand(r, "INCR unreach:%03d:%s", k, padding);
    o->ms = now_ms() - t0;
    *out = rep;
    if (!rep) {
        snprintf(error, size, "%s of key %d got no reply after %llu ms (%s%s)", op_name[op], k,
                 (unsigned long long)o->ms, r->errstr,
                 r->err == REDIS_ERR_IO && (errno == EAGAIN || errno == ETIMEDOUT) ? ": the request hangs" : "");
        return false;
    }
    cl_reply_format(rep, o->reply, sizeof(o->reply));
    if (is_tryagain(rep)) {
        o->ok = false;
        return true;
    }
    int want = op == OP_SET ? REDIS_REPLY_STATUS : op == OP_GET ? REDIS_REPLY_STRING : REDIS_REPLY_INTEGER;
    if (rep->type != want) {
        snprintf(error, size, "%s of key %d answered %s after %llu ms: neither a success nor -TRYAGAIN", op_name[op],
                 k, o->reply, (unsigned long long)o->ms);
        return false;
    }
    o->ok = true;
    return true;
}

/* Checks a successful op against the account and records what it acknowledged; false with `error` set
 * when the reply contradicts the account. */
static bool account(int op, int k, long long set_value, const redisReply *rep, const char *who, char *error,
                    size_t size)
{
    key_state_t *ks = &keys[k];
    if (op == OP_SET) {
        if (strcmp(rep->str, "OK") != 0) {
            snprintf(error, size, "SET of key %d answered +%s", k, rep->str);
            return false;
        }
        ks->acked = set_value;
        snprintf(ks->how, sizeof(ks->how), "SET %s", who);
    } else if (op == OP_GET) {
        char want[32];
        snprintf(want, sizeof(want), "%lld", ks->acked);
        if (strcmp(rep->str, want) != 0) {
            snprintf(error, size,
                     "GET of key %d returned %.40s, but its last acknowledged value is %lld (%s)%s", k, rep->str,
                     ks->acked, ks->how,
                     ks->refused ? ": a write answered TRYAGAIN changed the value, or an acknowledged one was lost"
                                 : ": an acknowledged write was lost");
            return false;
        }
    } else {
        if (rep->integer != ks->acked + 1) {
            snprintf(error, size, "INCR of key %d answered %lld, but its last acknowledged value is %lld (%s)", k,
                     rep->integer, ks->acked, ks->how);
            return false;
        }
        ks->acked = rep->integer;
        snprintf(ks->how, sizeof(ks->how), "INCR %s", who);
    }
    return true;
}

/* While every member runs: the op until it succeeds (TRYAGAIN changed nothing: retrying is exact). */
static void healthy_op(redisContext *r, int member, int op, int k, long long set_value, const char *phase,
                       uint64_t deadline, int *retries)
{
    char error[512], who[48];
    snprintf(who, sizeof(who), "on member %d (%s)", member, phase);
    for (;;) {
        redisReply *rep;
        outcome_t o;
        if (!run_op(r, op, k, set_value, &rep, &o, error, sizeof(error)))
            fail("%s, member %d: %s", phase, member, error);
        if (o.ok) {
            bool good = account(op, k, set_value, rep, who, error, sizeof(error));
            freeReplyObject(rep);
            if (!good)
                fail("%s, member %d: %s", phase, member, error);
            return;
        }
        freeReplyObject(rep);
        if (now_ms() > deadline)
            fail("%s, member %d: %s of key %d still answers %s (retried %d times)", phase, member, op_name[op], k,
                 o.reply, *retries);
        (*retries)++;
        usleep(20000);
    }
}

/* ---- the freeze ---------------------------------------------------------------------------------------- */

typedef struct client {
    int member;
    redisContext *r;
    const char *phase;
    int first, last;             /* keys first..last-1 with k % 2 == member */
    int ok[NOPS], tryagain[NOPS];
    uint64_t max_ms;
    int max_k, max_op;
    char error[1024];            /* the first violation; the thread stops there */
} client_t;

static void *frozen_client(void *arg)
{
    client_t *cl = arg;
    char who[48];
    snprintf(who, sizeof(who), "on member %d (%s)", cl->member, cl->phase);
    for (int k = cl->first; k < cl->last; k++) {
        if (k % 2 != cl->member)
            continue;
        for (int op = 0; op < NOPS; op++) {
            long long set_value = keys[k].acked + 100;
            redisReply *rep;
            outcome_t o;
            char error[512];
            if (!run_op(cl->r, op, k, set_value, &rep, &o, error, sizeof(error))) {
                snprintf(cl->error, sizeof(cl->error), "%s", error);
                freeReplyObject(rep);
                return NULL;
            }
            if (o.ms > cl->max_ms) {
                cl->max_ms = o.ms;
                cl->max_k = k;
                cl->max_op = op;
            }
            if (o.ms > LATENCY_BOUND_MS) {
                snprintf(cl->error, sizeof(cl->error),
                         "%s of key %d answered %s after %llu ms; the bound is %d ms (request-timeout %s)", op_name[op],
                         k, o.reply, (unsigned long long)o.ms, LATENCY_BOUND_MS, REQUEST_TIMEOUT);
                freeReplyObject(rep);
                return NULL;
            }
            if (o.ok) {
                cl->ok[op]++;
                if (!account(op, k, set_value, rep, who, error, sizeof(error))) {
                    snprintf(cl->error, sizeof(cl->error), "%s", error);
                    freeReplyObject(rep);
                    return NULL;
                }
            } else {
                cl->tryagain[op]++;
                if (op != OP_GET)
                    keys[k].refused++;
            }
            freeReplyObject(rep);
        }
    }
    return NULL;
}

/* Members 0 and 1 each run SET, GET, INCR on their half of keys first..last-1, at the same time.
 * Returns the TRYAGAIN replies and adds the successes to *ok. */
static int freeze_round(redisContext *const *conn, const char *phase, int first, int last, int *ok)
{
    client_t cl[2];
    pthread_t t[2];
    uint64_t t0 = now_ms();
    for (int m = 0; m < 2; m++) {
        cl[m] = (client_t){.member = m, .r = conn[m], .phase = phase, .first = first, .last = last};
        if (pthread_create(&t[m], NULL, frozen_client, &cl[m]) != 0)
            fail("%s: cannot start a client thread", phase);
    }
    for (int m = 0; m < 2; m++)
        pthread_join(t[m], NULL);
    int tryagain = 0;
    for (int m = 0; m < 2; m++) {
        if (cl[m].error[0])
            fail("%s (member %d frozen), client of member %d: %s", phase, FROZEN, m, cl[m].error);
        printf("%s, member %d, keys %d..%d: SET %d ok %d TRYAGAIN, GET %d/%d, INCR %d/%d; slowest %s of key %d, "
               "%llu ms\n",
               phase, m, first, last - 1, cl[m].ok[OP_SET], cl[m].tryagain[OP_SET], cl[m].ok[OP_GET],
               cl[m].tryagain[OP_GET], cl[m].ok[OP_INCR], cl[m].tryagain[OP_INCR], op_name[cl[m].max_op], cl[m].max_k,
               (unsigned long long)cl[m].max_ms);
        for (int op = 0; op < NOPS; op++) {
            *ok += cl[m].ok[op];
            tryagain += cl[m].tryagain[op];
        }
    }
    printf("%s took %llu ms\n", phase, (unsigned long long)(now_ms() - t0));
    return tryagain;
}

/* cluster_members_connected of member m's INFO cluster; -1 if it is not there. */
static int members_connected(redisContext *r, int m)
{
    redisReply *rep = redisCommand(r, "INFO cluster");
    if (!rep)
        fail("INFO cluster on member %d: no reply (%s)", m, r->errstr);
    int n = -1;
    const char *p = rep->type == REDIS_REPLY_STRING ? strstr(rep->str, "cluster_members_connected:") : NULL;
    if (p)
        n = atoi(p + strlen("cluster_members_connected:"));
    freeReplyObject(rep);
    return n;
}

/* ---- after the freeze ---------------------------------------------------------------------------------- */

/* Every member reads every key, TRYAGAIN retried until the deadline; any other answer than the last
 * acknowledged value fails at once. */
static void read_all(redisContext *const *conn, const char *phase, uint64_t deadline, int *retries)
{
    for (int m = 0; m < cluster.n; m++)
        for (int k = 0; k < NKEYS; k++)
            healthy_op(conn[m], m, OP_GET, k, 0, phase, deadline, retries);
}

/* After the freeze: rounds of reads of every (member, key) not yet read, until all are or the deadline
 * passes; then the failure lists every pair still refused, with the first refusal (it names the page). */
static void recover_all(redisContext *const *conn, uint64_t t_cont, int *retries)
{
    static bool done[CL_MAX_INSTANCES][NKEYS];
    static char last[CL_MAX_INSTANCES][NKEYS][160];
    uint64_t deadline = t_cont + RECOVERY_S * 1000;
    for (int round = 0;; round++) {
        int pending = 0;
        for (int m = 0; m < cluster.n; m++)
            for (int k = 0; k < NKEYS; k++) {
                if (done[m][k])
                    continue;
                redisReply *rep;
                outcome_t o;
                char error[512], who[48];
                snprintf(who, sizeof(who), "on member %d (after SIGCONT)", m);
                if (!run_op(conn[m], OP_GET, k, 0, &rep, &o, error, sizeof(error)))
                    fail("after SIGCONT, member %d: %s", m, error);
                if (o.ok) {
                    bool good = account(OP_GET, k, 0, rep, who, error, sizeof(error));
                    freeReplyObject(rep);
                    if (!good)
                        fail("after SIGCONT, member %d: %s", m, error);
                    done[m][k] = true;
                    continue;
                }
                freeReplyObject(rep);
                snprintf(last[m][k], sizeof(last[m][k]), "%s", o.reply);
                pending++;
                (*retries)++;
            }
        if (!pending)
            return;
        if (now_ms() > deadline) {
            /* grouped by reply (it names the page): "<reply>: member 0 keys 0 1 2, member 1 keys 0 1" */
            static bool listed[CL_MAX_INSTANCES][NKEYS];
            char list[3000] = "";
            size_t used = 0;
            for (int m = 0; m < cluster.n; m++)
                for (int k = 0; k < NKEYS; k++) {
                    if (done[m][k] || listed[m][k] || used > sizeof(list) - 400)
                        continue;
                    used += (size_t)snprintf(list + used, sizeof(list) - used, "\n  %s:", last[m][k]);
                    for (int m2 = 0; m2 < cluster.n; m2++) {
                        bool named = false;
                        for (int k2 = 0; k2 < NKEYS; k2++)
                            if (!done[m2][k2] && !listed[m2][k2] && strcmp(last[m2][k2], last[m][k]) == 0 &&
                                used < sizeof(list) - 24) {
                                if (!named)
                                    used += (size_t)snprintf(list + used, sizeof(list) - used, " member %d keys", m2);
                                used += (size_t)snprintf(list + used, sizeof(list) - used, " %d", k2);
                                listed[m2][k2] = named = true;
                            }
                    }
                }
            fail("%d of %d reads (member, key) still answer TRYAGAIN %d s after member %d was continued (%d rounds of "
                 "reads); those pages stay unavailable:%s",
                 pending, cluster.n * NKEYS, RECOVERY_S, FROZEN, round + 1, list);
        }
        usleep(50000);
    }
}

static void stop_member(pid_t pid)
{
    if (kill(pid, SIGSTOP) != 0)
        fail("cannot stop member %d (pid %d): %s", FROZEN, (int)pid, strerror(errno));
    /* stopped once /proc says so (state T) */
    uint64_t deadline = now_ms() + 5000;
    for (;;) {
        char path[64], text[512] = "";
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(text, sizeof(text), f))
                text[0] = '\0';
            fclose(f);
        }
        const char *paren = strrchr(text, ')');
        if (paren && paren[1] == ' ' && (paren[2] == 'T' || paren[2] == 't'))
            return;
        if (now_ms() > deadline)
            fail("member %d (pid %d) is not stopped 5 s after SIGSTOP (/proc says \"%.60s\")", FROZEN, (int)pid,
                 paren ? paren + 2 : text);
        usleep(10000);
    }
}

int main(void)
{
    memset(padding, 'p', KEY_PAD);
    padding[KEY_PAD] = '\0';
    cl_options_t opts = {.instances = MEMBERS, .request_timeout = REQUEST_TIMEOUT};
    cl_start_opts(&cluster, &opts);
    if (cluster.n <= FROZEN) {
        fprintf(stderr, "06 needs %d members (one is frozen while two serve); RP_CLUSTER_INSTANCES=%d\n", FROZEN + 1,
                cluster.n);
        cl_stop(&cluster);
        return 1;
    }
    redisContext *conn[CL_MAX_INSTANCES];
    for (int m = 0; m < cluster.n; m++) {
        conn[m] = cl_connect(&cluster, m);
        redisSetTimeout(conn[m], (struct timeval){CLIENT_TIMEOUT_S, 0});
    }
    int retries = 0;

    /* 1: every key written through all members, read back everywhere */
    uint64_t deadline = now_ms() + HEALTHY_S * 1000;
    for (int k = 0; k < NKEYS; k++)
        healthy_op(conn[k % cluster.n], k % cluster.n, OP_SET, k, BASE_VALUE + 1000LL * k, "writing", deadline,
                   &retries);
    read_all(conn, "reading back", deadline, &retries);
    printf("%d keys written through %d members and read back from each (%d TRYAGAIN retried)\n", NKEYS, cluster.n,
           retries);

    /* 2: member FROZEN stopped */
    uint64_t t_stop = now_ms();
    stop_member(cluster.pid[FROZEN]);
    int ok = 0;
    int tryagain_a = freeze_round(conn, "freeze a (links up)", 0, NKEYS / 2, &ok);
    uint64_t until = now_ms() + DISCONNECT_S * 1000;
    for (int m = 0; m < 2; m++) {
        int n;
        while ((n = members_connected(conn[m], m)) != cluster.n - 1) {
            if (now_ms() > until)
                fail("member %d reports %d members connected %llu ms after member %d was stopped; expected %d (the "
                     "transport's idle timeout is 5 s)",
                     m, n, (unsigned long long)(now_ms() - t_stop), FROZEN, cluster.n - 1);
            usleep(50000);
        }
    }
    printf("members 0 and 1 see member %d disconnected %llu ms after it was stopped\n", FROZEN,
           (unsigned long long)(now_ms() - t_stop));
    int tryagain_b = freeze_round(conn, "freeze b (unreachable)", NKEYS / 2, NKEYS, &ok);
    if (tryagain_a == 0 || tryagain_b == 0)
        fail("no request answered TRYAGAIN in freeze %s, though member %d was frozen and had read every key: a "
             "write must invalidate its copy of the key's leaf",
             tryagain_a == 0 ? "a (links up)" : "b (unreachable)", FROZEN);
    if (ok == 0)
        fail("every request failed while member %d was frozen: not one key could be read or written through members "
             "0 and 1",
             FROZEN);
    int refused = 0;
    for (int k = 0; k < NKEYS; k++)
        refused += keys[k].refused;
    printf("while member %d was frozen: %d successes, %d TRYAGAIN (%d refused writes), %llu ms\n", FROZEN, ok,
           tryagain_a + tryagain_b, refused, (unsigned long long)(now_ms() - t_stop));

    /* 3: member FROZEN continued: everything readable everywhere, exactly as acknowledged */
    thaw();
    uint64_t t_cont = now_ms();
    retries = 0;
    recover_all(conn, t_cont, &retries);
    printf("every key read from every member %llu ms after SIGCONT (%d TRYAGAIN retried)\n",
           (unsigned long long)(now_ms() - t_cont), retries);
    retries = 0;
    deadline = now_ms() + RECOVERY_S * 1000;
    for (int m = 0; m < cluster.n; m++)
        for (int k = 0; k < NKEYS; k++)
            healthy_op(conn[m], m, OP_INCR, k, 0, "INCR after SIGCONT", deadline, &retries);
    read_all(conn, "final read", deadline, &retries);
    printf("every member incremented every key, final values read everywhere (%d TRYAGAIN retried)\n", retries);

    for (int m = 0; m < cluster.n; m++)
        redisFree(conn[m]);
    cl_stop(&cluster);
    printf("ok: %d keys, %d refused writes changed nothing, nothing acknowledged was lost\n", NKEYS, refused);
    return 0;
}
