/*
 * 02-concurrent-incr - INCR from many clients on every member at once never loses an increment
 *
 * CLIENTS_PER_MEMBER clients on each member increment a few hot keys, chosen at random, as fast as
 * they can. Every reply is recorded: an integer is an acknowledged increment; an error or a broken
 * connection is an unknown one (it may or may not have happened: the client reconnects and goes on).
 * Then, for each key, on every member:
 *   - the replies are all different (two clients told the same value means one increment was lost
 *     and counted twice),
 *   - the final value is at least the number of acknowledged increments and at most that plus the
 *     unknown ones; with no unknown ones, the replies are exactly 1..final.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENTS_PER_MEMBER 4
#define INCRS_PER_CLIENT 600
#define HOT_KEYS 4
#define MAX_CLIENTS (CL_MAX_INSTANCES * CLIENTS_PER_MEMBER)

typedef struct client {
    cl_cluster_t *c;
    int id, member;
    long long *acked[HOT_KEYS]; /* the values the replies told, per key */
    int nacked[HOT_KEYS];
    int unknown[HOT_KEYS];
    char error[256];            /* the last error reply, for the report */
} client_t;

static void *run(void *arg)
{
    client_t *cl = arg;
    unsigned seed = (unsigned)cl->id * 7919u + 1;
    redisContext *r = cl_connect(cl->c, cl->member);
    for (int k = 0; k < HOT_KEYS; k++)
        cl->acked[k] = calloc(INCRS_PER_CLIENT, sizeof(long long));
    for (int i = 0; i < INCRS_PER_CLIENT; i++) {
        int k = (int)(rand_r(&seed) % HOT_KEYS);
        redisReply *rep = redisCommand(r, "INCR hot:%d", k);
        if (rep && rep->type == REDIS_REPLY_INTEGER) {
            cl->acked[k][cl->nacked[k]++] = rep->integer;
        } else {
            cl->unknown[k]++;
            if (rep && rep->type == REDIS_REPLY_ERROR)
                snprintf(cl->error, sizeof(cl->error), "%s", rep->str);
            if (!rep) {
                snprintf(cl->error, sizeof(cl->error), "connection: %s", r->errstr);
                redisFree(r);
                r = cl_connect(cl->c, cl->member);
            }
        }
        freeReplyObject(rep);
    }
    redisFree(r);
    return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    cl_cluster_t c;
    cl_start(&c, 3, NULL);
    int nclients = c.n * CLIENTS_PER_MEMBER;
    static client_t clients[MAX_CLIENTS];
    pthread_t threads[MAX_CLIENTS];
    for (int i = 0; i < nclients; i++) {
        clients[i] = (client_t){.c = &c, .id = i, .member = i % c.n};
        pthread_create(&threads[i], NULL, run, &clients[i]);
    }
    for (int i = 0; i < nclients; i++)
        pthread_join(threads[i], NULL);

    long long total_acked = 0, total_unknown = 0;
    for (int k = 0; k < HOT_KEYS; k++) {
        long long acked = 0, unknown = 0;
        for (int i = 0; i < nclients; i++) {
            acked += clients[i].nacked[k];
            unknown += clients[i].unknown[k];
        }
        long long *all = calloc((size_t)acked + 1, sizeof(long long));
        long long n = 0;
        for (int i = 0; i < nclients; i++)
            for (int a = 0; a < clients[i].nacked[k]; a++)
                all[n++] = clients[i].acked[k][a];
        qsort(all, (size_t)n, sizeof(long long), cmp_ll);
        for (long long a = 1; a < n; a++)
            CL_CHECK(&c, all[a] != all[a - 1], "key hot:%d: two increments were both acknowledged with %lld", k,
                     all[a]);
        for (int m = 0; m < c.n; m++) {
            redisContext *r = cl_connect(&c, m);
            redisReply *rep = cl_cmd(&c, r, "GET hot:%d", k);
            CL_CHECK(&c, rep->type == REDIS_REPLY_STRING, "GET hot:%d on member %d is not a value", k, m);
            long long final = atoll(rep->str);
            freeReplyObject(rep);
            redisFree(r);
            CL_CHECK(&c, final >= acked && final <= acked + unknown,
                     "key hot:%d on member %d is %lld after %lld acknowledged and %lld unknown increments", k, m,
                     final, acked, unknown);
            if (unknown == 0)
                CL_CHECK(&c, n == 0 || (all[0] == 1 && all[n - 1] == final),
                         "key hot:%d: replies run from %lld to %lld, the final value is %lld", k, all[0],
                         all[n - 1], final);
        }
        free(all);
        total_acked += acked;
        total_unknown += unknown;
    }
    for (int i = 0; i < nclients; i++) {
        if (clients[i].error[0])
            fprintf(stderr, "client %d (member %d): last error: %s\n", i, clients[i].member, clients[i].error);
        for (int k = 0; k < HOT_KEYS; k++)
            free(clients[i].acked[k]);
    }
    cl_stop(&c);
    printf("ok: %lld acknowledged and %lld unknown increments from %d clients on %d member%s, none lost\n",
           total_acked, total_unknown, nclients, c.n, c.n == 1 ? "" : "s");
    return 0;
}
