/*
 * 04-splits-then-scan - the tree splits under concurrent inserts from every member, and then a full
 * SCAN on each member sees every key exactly once
 *
 * CLIENTS_PER_MEMBER clients on each member insert distinct keys (interleaved in key order across
 * clients and members, so that every member splits leaves that others are filling) with values of a
 * few hundred bytes, pipelined. When all are acknowledged, every member runs a full SCAN (COUNT 97, so
 * that cursors stop inside leaves) and must return each inserted key exactly once and nothing else;
 * DBSIZE must agree; and the members together must have split leaves (INFO leaf_splits), or the
 * scenario did not test what it claims.
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENTS_PER_MEMBER 3
#define KEYS_PER_CLIENT 3000
#define PIPELINE 100

typedef struct client {
    cl_cluster_t *c;
    int id, member, nclients;
} client_t;

static void key_name(char *buf, size_t size, int i, int client)
{
    /* clients' keys interleave in key order: "s:000123:07" sorts by i first */
    snprintf(buf, size, "s:%06d:%02d", i, client);
}

static void *run(void *arg)
{
    client_t *cl = arg;
    redisContext *r = cl_connect(cl->c, cl->member);
    char value[400];
    for (int i = 0; i < KEYS_PER_CLIENT; i += PIPELINE) {
        int n = i + PIPELINE <= KEYS_PER_CLIENT ? PIPELINE : KEYS_PER_CLIENT - i;
        for (int j = 0; j < n; j++) {
            char key[32];
            key_name(key, sizeof(key), i + j, cl->id);
            int len = 100 + (i + j) % 250;
            memset(value, 'a' + cl->id % 26, (size_t)len);
            redisAppendCommand(r, "SET %s %b", key, value, (size_t)len);
        }
        for (int j = 0; j < n; j++) {
            redisReply *rep;
            if (redisGetReply(r, (void **)&rep) != REDIS_OK)
                cl_fail(cl->c, "client %d lost its connection to member %d: %s", cl->id, cl->member, r->errstr);
            CL_CHECK(cl->c, rep->type == REDIS_REPLY_STATUS, "client %d: SET #%d answered %s", cl->id, i + j,
                     rep->type == REDIS_REPLY_ERROR ? rep->str : "not OK");
            freeReplyObject(rep);
        }
    }
    redisFree(r);
    return NULL;
}

int main(void)
{
    cl_cluster_t c;
    cl_start(&c, 3, NULL);
    int nclients = c.n * CLIENTS_PER_MEMBER, total = nclients * KEYS_PER_CLIENT;
    client_t *clients = calloc((size_t)nclients, sizeof(client_t));
    pthread_t *threads = calloc((size_t)nclients, sizeof(pthread_t));
    for (int i = 0; i < nclients; i++) {
        clients[i] = (client_t){.c = &c, .id = i, .member = i % c.n, .nclients = nclients};
        pthread_create(&threads[i], NULL, run, &clients[i]);
    }
    for (int i = 0; i < nclients; i++)
        pthread_join(threads[i], NULL);

    /* seen[i * nclients + client]: how often a SCAN returned that key */
    unsigned char *seen = malloc((size_t)total);
    long long splits = 0;
    for (int m = 0; m < c.n; m++) {
        memset(seen, 0, (size_t)total);
        redisContext *r = cl_connect(&c, m);
        char cursor[32] = "0";
        int returned = 0;
        do {
            redisReply *rep = cl_cmd(&c, r, "SCAN %s COUNT 97", cursor);
            CL_CHECK(&c, rep->type == REDIS_REPLY_ARRAY && rep->elements == 2, "SCAN on member %d is not a pair", m);
            snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
            for (size_t k = 0; k < rep->element[1]->elements; k++) {
                const char *key = rep->element[1]->element[k]->str;
                int i, client;
                CL_CHECK(&c, sscanf(key, "s:%d:%d", &i, &client) == 2 && i >= 0 && i < KEYS_PER_CLIENT && client >= 0 &&
                                 client < nclients,
                         "member %d's SCAN returned a key nobody wrote: \"%s\"", m, key);
                CL_CHECK(&c, seen[i * nclients + client] == 0, "member %d's SCAN returned \"%s\" twice", m, key);
                seen[i * nclients + client] = 1;
                returned++;
            }
            freeReplyObject(rep);
        } while (strcmp(cursor, "0") != 0);
        for (int x = 0; x < total; x++)
            if (!seen[x]) {
                char key[32];
                key_name(key, sizeof(key), x / nclients, x % nclients);
                cl_fail(&c, "member %d's SCAN missed \"%s\" (%d of %d keys returned)", m, key, returned, total);
            }
        char want[32];
        snprintf(want, sizeof(want), ":%d", total);
        cl_expect(&c, r, want, "DBSIZE");
        redisReply *info = cl_cmd(&c, r, "INFO storage");
        const char *ls = info->type == REDIS_REPLY_STRING ? strstr(info->str, "leaf_splits:") : NULL;
        if (ls)
            splits += atoll(ls + strlen("leaf_splits:"));
        freeReplyObject(info);
        redisFree(r);
    }
    CL_CHECK(&c, splits > 0, "no member split a leaf: %d keys did not exercise splits", total);
    free(seen);
    free(clients);
    free(threads);
    cl_stop(&c);
    printf("ok: %d keys inserted by %d clients on %d member%s (%lld leaf splits); every member's SCAN returned each "
           "exactly once\n",
           total, nclients, c.n, c.n == 1 ? "" : "s", splits);
    return 0;
}
