/*
 * linearizability.h - a per-key linearizability checker for histories of SET, GET, DEL and INCR
 *
 * A history is what clients saw: for every operation its client, key, what it wrote or read, when it
 * was invoked and when its reply arrived (or that no reply arrived: "unknown", it may or may not have
 * taken effect). The history is linearizable if each key's operations can be put in one order that
 * (1) respects real time — an operation that completed before another was invoked comes first — and
 * (2) is a legal sequential run of one register: a GET returns the last SET (nil after DEL or
 * before any SET), DEL returns 1 when the key held a value, INCR returns the previous integer + 1.
 * Keys are independent (linearizability is compositional, Herlihy and Wing 1990), so each key is
 * decided alone.
 *
 * The search is Wing and Gong's, with Lowe's memoization (the set of linearized operations plus the
 * register's value, seen before, is not explored again) — the algorithm of Knossos and Porcupine. Its
 * worst case is exponential in the number of operations that overlap in time, so it is bounded: when
 * a key needs more than `max_steps` search steps or more than `max_memory` bytes of memo, the verdict
 * is LIN_UNDECIDED and the report says which key and how large it was. A caller must treat
 * undecided as a failure of the test (the history is too concurrent to check), never as a pass.
 *
 * Unknown operations: a read with no reply tells nothing and is dropped; a write with no reply (SET,
 * DEL, INCR) is kept with its completion at infinity, so it may take effect at any time after its
 * invocation, or never (being placed after everything else is the same as never). An INCR with no
 * reply on a non-integer value fails without effect, as Redis' does.
 *
 * Values: binary strings, or nil. A value that is the canonical decimal form of a 64-bit integer
 * ("0", "-12", not "012" or "+1") is the same register value as that integer, so SET k 5 then INCR
 * returns 6, and a GET of an INCR'ed key reads "6".
 *
 * The history file (lin_history_write/read) is text, one operation per line, so that a failing run can
 * be kept, read by a person and checked again with `lincheck FILE`:
 *
 *   # respool linearizability history v1
 *   # client type key value result call_ns return_ns
 *   3 set k7 v3.12 ok 1042000 1380500
 *   1 get k7 - v3.12 1100000 1400000
 *   2 del k7 - 1 1500000 1600000
 *   0 incr n1 - 17 1500000 1650000
 *   4 set k7 v4.1 ? 1700000 ?
 *
 * `value` is the SET's argument (`-` for the others); `result` is `ok` for SET, the value read for GET
 * (`-` = nil), the integer reply for DEL and INCR, and `?` when no reply came (then return_ns is `?`).
 * Values and keys are percent-encoded: bytes other than [A-Za-z0-9_.:/+=] are written %XX, so a lone
 * `-` (nil) and `?` are unambiguous; `''` is the empty string. Times are nanoseconds of one monotonic
 * clock (all clients in one process). Lines starting with '#' and empty lines are ignored.
 *
 * Interface:
 *   lin_history_create/destroy()   an empty history; thread-safe recording with lin_record()
 *   lin_record()                   add one completed (or unknown) operation; copies the bytes
 *   lin_history_write/read()       the text format above
 *   lin_check()                    the verdict, and a report explaining a violation
 *   lin_now_ns()                   the clock the scenarios record with (CLOCK_MONOTONIC)
 */
#ifndef RP_TESTS_LINEARIZABILITY_H
#define RP_TESTS_LINEARIZABILITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum lin_type { LIN_SET, LIN_GET, LIN_DEL, LIN_INCR } lin_type_t;

typedef struct lin_bytes {
    const char *ptr;
    size_t len;
    bool nil; /* GET: the key did not exist */
} lin_bytes_t;

typedef struct lin_op {
    int client;
    lin_type_t type;
    lin_bytes_t key;
    lin_bytes_t value;   /* SET: the value written; GET: the value read */
    int64_t integer;     /* DEL: keys removed (0 or 1); INCR: the new value */
    bool unknown;        /* no reply: it may or may not have taken effect */
    uint64_t call_ns;    /* just before the request was sent */
    uint64_t return_ns;  /* just after the reply arrived; ignored when unknown */
} lin_op_t;

typedef struct lin_history lin_history_t;

lin_history_t *lin_history_create(void);
void lin_history_destroy(lin_history_t *h);
/* Thread-safe. The bytes are copied. */
void lin_record(lin_history_t *h, const lin_op_t *op);
size_t lin_history_size(const lin_history_t *h);

/* 0, or -1 with a message in err (the file cannot be written). */
int lin_history_write(const lin_history_t *h, const char *path, char *err, size_t errsize);
/* 0 and a new history, or -1 with "FILE line N: what is wrong" in err. */
int lin_history_read(const char *path, lin_history_t **out, char *err, size_t errsize);

typedef enum lin_verdict { LIN_OK = 0, LIN_VIOLATION = 1, LIN_UNDECIDED = 2 } lin_verdict_t;

typedef struct lin_limits {
    uint64_t max_steps;   /* search steps per key; 0 = 50 million */
    size_t max_memory;    /* bytes of memo per key; 0 = 512 MiB */
} lin_limits_t;

typedef struct lin_report {
    lin_verdict_t verdict;
    size_t keys;          /* keys checked */
    size_t ops;           /* operations checked (unknown reads dropped) */
    uint64_t steps;       /* search steps over all keys */
    uint64_t max_key_steps; /* of the hardest key */
    char key[128];        /* the first key that failed or could not be decided (printable) */
} lin_report_t;

/* Checks every key; stops at the first key that is not linearizable or cannot be decided. When
 * `explain` is not NULL, a violation is explained there: the key's operations, the longest legal
 * order found, and the operation that could not be placed, with the register's value at that point. */
lin_verdict_t lin_check(const lin_history_t *h, const lin_limits_t *limits, lin_report_t *report, FILE *explain);

uint64_t lin_now_ns(void);

#endif
