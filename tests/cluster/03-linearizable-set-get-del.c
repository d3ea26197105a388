/*
 * 03-linearizable-set-get-del - concurrent SET/GET/DEL (and INCR) from all members, checked for
 * per-key linearizability
 *
 * CLIENTS_PER_MEMBER clients on each member run random operations on a few keys: SET of a value no
 * one else writes, GET and DEL on register keys, INCR, GET and DEL on counter keys. Each client
 * records every operation with the monotonic time before the request and after the reply
 * (linearizability.h). A reply that is an error, or no reply, leaves the operation unknown for a write
 * (it may have happened) and drops it for a read. The whole history is written to
 * 03-history.txt in the working directory (ctest runs in build/tests/cluster), then checked:
 * every read must return the latest acknowledged write or one concurrent with it, on every key.
 * A failure prints the explanation; `lincheck 03-history.txt` checks the file again.
 */
#include "harness.h"
#include "linearizability.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENTS_PER_MEMBER 3
#define OPS_PER_CLIENT 400
#define REG_KEYS 6
#define COUNTER_KEYS 2
#define HISTORY_FILE "03-history.txt"

typedef struct client {
    cl_cluster_t *c;
    lin_history_t *h;
    int id, member;
    int unknown;
} client_t;

static void *run(void *arg)
{
    client_t *cl = arg;
    unsigned seed = (unsigned)cl->id * 104729u + 17;
    redisContext *r = cl_connect(cl->c, cl->member);
    for (int i = 0; i < OPS_PER_CLIENT; i++) {
        bool counter = rand_r(&seed) % 4 == 0;
        char key[32], value[32];
        snprintf(key, sizeof(key), counter ? "lin:n%u" : "lin:k%u",
                 rand_r(&seed) % (counter ? COUNTER_KEYS : REG_KEYS));
        unsigned pick = rand_r(&seed) % 100;
        lin_op_t op = {.client = cl->id, .key = {key, strlen(key), false}};
        redisReply *rep;
        op.call_ns = lin_now_ns();
        if (pick < 45) {
            op.type = counter ? LIN_INCR : LIN_SET;
            if (counter) {
                rep = redisCommand(r, "INCR %s", key);
            } else {
                snprintf(value, sizeof(value), "c%d.%d", cl->id, i);
                op.value = (lin_bytes_t){value, strlen(value), false};
                rep = redisCommand(r, "SET %s %s", key, value);
            }
        } else if (pick < 90) {
            op.type = LIN_GET;
            rep = redisCommand(r, "GET %s", key);
        } else {
            op.type = LIN_DEL;
            rep = redisCommand(r, "DEL %s", key);
        }
        op.return_ns = lin_now_ns();
        bool ok = rep && rep->type != REDIS_REPLY_ERROR;
        if (ok && op.type == LIN_GET) {
            if (rep->type == REDIS_REPLY_NIL)
                op.value = (lin_bytes_t){NULL, 0, true};
            else
                op.value = (lin_bytes_t){rep->str, rep->len, false};
        } else if (ok && (op.type == LIN_DEL || op.type == LIN_INCR)) {
            op.integer = rep->integer;
        }
        if (!ok) {
            op.unknown = true;
            cl->unknown++;
        }
        lin_record(cl->h, &op); /* an unknown GET is dropped by the checker */
        freeReplyObject(rep);
        if (!rep) {
            redisFree(r);
            r = cl_connect(cl->c, cl->member);
        }
    }
    redisFree(r);
    return NULL;
}

int main(void)
{
    cl_cluster_t c;
    cl_start(&c, 3, NULL);
    lin_history_t *h = lin_history_create();
    int nclients = c.n * CLIENTS_PER_MEMBER;
    client_t *clients = calloc((size_t)nclients, sizeof(client_t));
    pthread_t *threads = calloc((size_t)nclients, sizeof(pthread_t));
    for (int i = 0; i < nclients; i++) {
        clients[i] = (client_t){.c = &c, .h = h, .id = i, .member = i % c.n};
        pthread_create(&threads[i], NULL, run, &clients[i]);
    }
    int unknown = 0;
    for (int i = 0; i < nclients; i++) {
        pthread_join(threads[i], NULL);
        unknown += clients[i].unknown;
    }
    char err[512];
    if (lin_history_write(h, HISTORY_FILE, err, sizeof(err)) != 0)
        cl_fail(&c, "could not write the history: %s", err);
    lin_report_t rep;
    lin_verdict_t v = lin_check(h, NULL, &rep, stderr);
    if (v == LIN_VIOLATION)
        cl_fail(&c, "the history is NOT linearizable on key \"%s\" (explained above); it is in %s: check it again "
                    "with `lincheck %s`", rep.key, HISTORY_FILE, HISTORY_FILE);
    if (v == LIN_UNDECIDED)
        cl_fail(&c, "the history of key \"%s\" is too concurrent to decide within the checker's limits; lower "
                    "the concurrency of this scenario (history in %s)", rep.key, HISTORY_FILE);
    cl_stop(&c);
    printf("ok: %zu operations (%d without a reply) on %zu keys from %d clients on %d member%s are linearizable "
           "(%llu search steps; history in %s)\n",
           rep.ops, unknown, rep.keys, nclients, c.n, c.n == 1 ? "" : "s", (unsigned long long)rep.steps,
           HISTORY_FILE);
    lin_history_destroy(h);
    free(clients);
    free(threads);
    return 0;
}
