/*
 * 01-read-your-writes - a write acknowledged by one member is seen at once by every other member
 *
 * For every ordered pair of members (i, j), many rounds of: SET on i, then GET on j right after the
 * acknowledgement must return exactly that value; DEL on j, then EXISTS and GET on i must see it gone;
 * INCR on i, then GET on j must read the new count; a value several pages long (an overflow value)
 * written on i reads back whole on j. The keys rotate over a small set so that the same pages move
 * back and forth between members' buffer pools (the 2-way and 3-way transfers of cache fusion).
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 150
#define KEYS 7

int main(void)
{
    cl_cluster_t c;
    cl_start(&c, 3, NULL);
    redisContext *conn[CL_MAX_INSTANCES];
    for (int i = 0; i < c.n; i++)
        conn[i] = cl_connect(&c, i);
    static char big[40000];
    int checks = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < c.n; i++)
            for (int j = 0; j < c.n; j++) {
                if (i == j && c.n > 1)
                    continue;
                int k = (round * 7 + i * 3 + j) % KEYS;
                char want[64];
                snprintf(want, sizeof(want), "$r%d.%d.%d", round, i, j);
                cl_expect(&c, conn[i], "+OK", "SET ryw:%d %s", k, want + 1);
                cl_expect(&c, conn[j], want, "GET ryw:%d", k);
                cl_expect(&c, conn[j], ":1", "DEL ryw:%d", k);
                cl_expect(&c, conn[i], ":0", "EXISTS ryw:%d", k);
                cl_expect(&c, conn[i], "(nil)", "GET ryw:%d", k);
                redisReply *rep = cl_cmd(&c, conn[i], "INCR ryw:n%d", k);
                CL_CHECK(&c, rep->type == REDIS_REPLY_INTEGER, "INCR did not answer an integer");
                snprintf(want, sizeof(want), "$%lld", rep->integer);
                freeReplyObject(rep);
                cl_expect(&c, conn[j], want, "GET ryw:n%d", k);
                checks += 4;
            }
        if (round % 25 == 0) {
            /* a value spread over several pages */
            int i = round % c.n, j = (i + 1) % c.n;
            for (size_t b = 0; b < sizeof(big) - 1; b++)
                big[b] = (char)('a' + (b * 7 + (size_t)round) % 26);
            big[sizeof(big) - 1] = '\0';
            redisReply *rep = redisCommand(conn[i], "SET ryw:big %b", big, sizeof(big) - 1);
            CL_CHECK(&c, rep && rep->type == REDIS_REPLY_STATUS, "SET of a %zu-byte value failed", sizeof(big) - 1);
            freeReplyObject(rep);
            rep = cl_cmd(&c, conn[j], "GET ryw:big");
            CL_CHECK(&c, rep->type == REDIS_REPLY_STRING && rep->len == sizeof(big) - 1 && memcmp(rep->str, big, rep->len) == 0,
                     "member %d read back %zu bytes of the %zu-byte value member %d wrote", j, rep->len,
                     sizeof(big) - 1, i);
            freeReplyObject(rep);
            checks++;
        }
    }
    for (int i = 0; i < c.n; i++)
        redisFree(conn[i]);
    cl_stop(&c);
    printf("ok: %d reads after acknowledged writes, across %d member%s\n", checks, c.n, c.n == 1 ? "" : "s");
    return 0;
}
