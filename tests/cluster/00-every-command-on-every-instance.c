/*
 * 00-every-command-on-every-instance - every command of respoold works on every member, and what one
 * member writes, the next one reads
 *
 * For each member i, with keys under its own prefix "m<i>:", every command of docs/resp.md is sent to
 * member i and its effect is read back through member i+1 (the next one, cyclically): SET with NX,
 * XX, EX, PX and GET; GET, DEL, EXISTS, INCR/DECR/INCRBY/DECRBY, APPEND, STRLEN, MSET/MGET, SCAN with
 * MATCH and COUNT. At the end every member sees every member's keys (DBSIZE, and a SCAN of each
 * prefix on each member), and the connection commands work everywhere (PING, ECHO, INFO, CLIENT,
 * COMMAND, HELLO, SELECT 0, QUIT).
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS_PER_MEMBER 8 /* keys each member's part leaves: k nx ex px n a x1 x2 */

/* All keys under prefix, from a full SCAN through r; returns how many, fails on a repeated key. */
static int scan_prefix(cl_cluster_t *c, redisContext *r, const char *prefix)
{
    char cursor[32] = "0";
    int seen = 0;
    char names[64][64];
    do {
        redisReply *rep = cl_cmd(c, r, "SCAN %s MATCH %s* COUNT 3", cursor, prefix);
        CL_CHECK(c, rep->type == REDIS_REPLY_ARRAY && rep->elements == 2, "SCAN reply is not a pair");
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        for (size_t k = 0; k < keys->elements; k++) {
            CL_CHECK(c, strncmp(keys->element[k]->str, prefix, strlen(prefix)) == 0, "SCAN MATCH %s* returned %s",
                     prefix, keys->element[k]->str);
            for (int s = 0; s < seen && s < 64; s++)
                CL_CHECK(c, strcmp(names[s], keys->element[k]->str) != 0, "SCAN returned %s twice",
                         keys->element[k]->str);
            if (seen < 64)
                snprintf(names[seen], sizeof(names[0]), "%s", keys->element[k]->str);
            seen++;
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return seen;
}

static void member_part(cl_cluster_t *c, int i)
{
    int j = (i + 1) % c->n;
    redisContext *w = cl_connect(c, i), *r = cl_connect(c, j);
    char p[16];
    snprintf(p, sizeof(p), "m%d:", i);

    cl_expect(c, w, "+PONG", "PING");
    cl_expect(c, w, "$hello", "ECHO hello");

    /* SET and its options */
    cl_expect(c, w, "+OK", "SET %sk v1", p);
    cl_expect(c, r, "$v1", "GET %sk", p);
    cl_expect(c, w, "(nil)", "SET %sk v2 NX", p);
    cl_expect(c, r, "$v1", "GET %sk", p);
    cl_expect(c, w, "+OK", "SET %snx v NX", p);
    cl_expect(c, r, "$v", "GET %snx", p);
    cl_expect(c, w, "(nil)", "SET %sxx v XX", p);
    cl_expect(c, r, "(nil)", "GET %sxx", p);
    cl_expect(c, w, "+OK", "SET %sk v3 XX", p);
    cl_expect(c, r, "$v3", "GET %sk", p);
    cl_expect(c, w, "$v3", "SET %sk v4 GET", p);
    cl_expect(c, r, "$v4", "GET %sk", p);
    cl_expect(c, w, "+OK", "SET %sex v EX 1000", p);
    cl_expect(c, w, "+OK", "SET %spx v PX 1000000", p);
    cl_expect(c, r, "$v", "GET %sex", p);
    cl_expect(c, r, "$v", "GET %spx", p);

    /* DEL and EXISTS */
    cl_expect(c, w, "+OK", "SET %sdel v", p);
    cl_expect(c, r, ":1", "EXISTS %sdel", p);
    cl_expect(c, w, ":1", "DEL %sdel", p);
    cl_expect(c, r, ":0", "EXISTS %sdel", p);
    cl_expect(c, r, "(nil)", "GET %sdel", p);
    cl_expect(c, r, ":2", "EXISTS %sk %snx", p, p);
    cl_expect(c, r, ":0", "DEL %sdel", p);

    /* counters */
    cl_expect(c, w, ":1", "INCR %sn", p);
    cl_expect(c, r, ":11", "INCRBY %sn 10", p);
    cl_expect(c, w, ":10", "DECR %sn", p);
    cl_expect(c, r, ":5", "DECRBY %sn 5", p);
    cl_expect(c, r, "$5", "GET %sn", p);
    cl_expect(c, w, "-ERR value is not an integer or out of range", "INCR %sk", p);

    /* APPEND and STRLEN */
    cl_expect(c, w, ":2", "APPEND %sa ab", p);
    cl_expect(c, r, ":4", "APPEND %sa cd", p);
    cl_expect(c, w, ":4", "STRLEN %sa", p);
    cl_expect(c, w, "$abcd", "GET %sa", p);

    /* MSET and MGET */
    cl_expect(c, w, "+OK", "MSET %sx1 1 %sx2 2", p, p);
    cl_expect(c, r, "*[$1,$2,(nil)]", "MGET %sx1 %sx2 %snone", p, p, p);

    /* SCAN from the other member sees exactly this member's keys */
    int n = scan_prefix(c, r, p);
    CL_CHECK(c, n == KEYS_PER_MEMBER, "member %d sees %d keys under %s, expected %d", j, n, p, KEYS_PER_MEMBER);

    /* connection commands */
    cl_expect(c, w, "+OK", "SELECT 0");
    cl_expect(c, w, "+OK", "CLIENT SETNAME scenario00-%d", i);
    char name[32];
    snprintf(name, sizeof(name), "$scenario00-%d", i);
    cl_expect(c, w, name, "CLIENT GETNAME");
    redisReply *rep = cl_cmd(c, w, "INFO");
    CL_CHECK(c, rep->type == REDIS_REPLY_STRING && strstr(rep->str, "# Server"), "INFO has no Server section");
    freeReplyObject(rep);
    rep = cl_cmd(c, w, "COMMAND COUNT");
    CL_CHECK(c, rep->type == REDIS_REPLY_INTEGER && rep->integer > 20, "COMMAND COUNT is not a count");
    freeReplyObject(rep);
    rep = cl_cmd(c, w, "HELLO 2");
    CL_CHECK(c, rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2, "HELLO 2 is not a map");
    freeReplyObject(rep);
    cl_expect(c, w, "+OK", "QUIT");
    redisFree(w);
    redisFree(r);
}

int main(void)
{
    cl_cluster_t c;
    cl_start(&c, 3, NULL);
    for (int i = 0; i < c.n; i++)
        member_part(&c, i);
    /* every member sees every member's keys */
    for (int j = 0; j < c.n; j++) {
        redisContext *r = cl_connect(&c, j);
        char want[32];
        snprintf(want, sizeof(want), ":%d", KEYS_PER_MEMBER * c.n);
        cl_expect(&c, r, want, "DBSIZE");
        for (int i = 0; i < c.n; i++) {
            char p[16];
            snprintf(p, sizeof(p), "m%d:", i);
            int n = scan_prefix(&c, r, p);
            CL_CHECK(&c, n == KEYS_PER_MEMBER, "member %d sees %d keys of member %d", j, n, i);
            cl_expect(&c, r, "$abcd", "GET %sa", p);
        }
        redisFree(r);
    }
    cl_stop(&c);
    printf("ok: every command on %d member%s\n", c.n, c.n == 1 ? "" : "s");
    return 0;
}
