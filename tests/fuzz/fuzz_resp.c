/*
 * fuzz_resp.c - fuzz target for the RESP2 request parser (and the glob matcher)
 *
 * The input's first byte chooses what is exercised:
 *   bit 7 clear: the parser. The rest of the input is a byte stream from a client. It is parsed twice
 *     the way a connection does (append bytes, parse, drop what was consumed): once as one piece, once
 *     in pieces of 1..16 bytes (bits 0-3). Both runs must produce the same sequence of outcomes
 *     (commands with identical arguments, oversized-argument errors, the same protocol error), every
 *     argument must lie inside the bytes of its request, and nothing may crash or leak. Bits 4-6 pick
 *     the limits (a small arg_max, a small bulk limit, unauthenticated).
 *   bit 7 set: the glob matcher. The rest splits at the first NUL into pattern and string (both short);
 *     kv_glob_match() must agree with a naive recursive matcher of the same language.
 *
 * Built with libFuzzer when RP_FUZZ=ON (clang); replay.c runs the corpus under the normal build.
 */
#include "kv/glob.h"
#include "kv/resp.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct trace {
    unsigned char *b;
    size_t len, cap;
} trace_t;

static void put(trace_t *t, const void *p, size_t n)
{
    if (t->len + n > t->cap) {
        t->cap = (t->len + n) * 2 + 64;
        t->b = realloc(t->b, t->cap);
        if (!t->b)
            abort();
    }
    memcpy(t->b + t->len, p, n);
    t->len += n;
}

static void put_u64(trace_t *t, uint64_t v)
{
    put(t, &v, sizeof(v));
}

/* Feeds `in` to a parser in pieces of `step` bytes (0 = all at once) and records the outcomes. */
static void run(const uint8_t *in, size_t n, size_t step, const kv_resp_limits_t *lim, trace_t *t)
{
    kv_resp_parser_t p;
    kv_resp_parser_init(&p, lim);
    char *buf = malloc(n + 1);
    size_t len = 0, off = 0;
    bool closed = false;
    while (off < n && !closed) {
        size_t piece = step ? step : n;
        if (piece > n - off)
            piece = n - off;
        memcpy(buf + len, in + off, piece);
        len += piece;
        off += piece;
        for (;;) {
            size_t consumed = 0;
            kv_resp_status_t st = kv_resp_parse(&p, buf, len, &consumed);
            if (consumed > len)
                abort();
            if (st == KV_RESP_PROTO_ERROR) {
                put_u64(t, 'E');
                put_u64(t, (uint64_t)p.error);
                if (p.error == KV_RESP_EEXPECTED_DOLLAR)
                    put_u64(t, (unsigned char)p.error_byte);
                char text[128];
                kv_resp_error_text(&p, text, sizeof(text));
                if (strncmp(text, "Protocol error: ", 16) != 0)
                    abort();
                closed = true;
                break;
            }
            if (st == KV_RESP_COMMAND) {
                put_u64(t, 'C');
                put_u64(t, (uint64_t)p.argc);
                for (int i = 0; i < p.argc; i++) {
                    const char *a = p.argv[i].ptr;
                    if (a < buf || a + p.argv[i].len > buf + consumed)
                        abort(); /* an argument outside its request */
                    put_u64(t, p.argv[i].len);
                    put(t, a, p.argv[i].len);
                }
            } else if (st == KV_RESP_TOO_BIG) {
                put_u64(t, 'T');
                put_u64(t, (uint64_t)p.too_big_index);
                put_u64(t, p.too_big_len);
                if (p.too_big_len <= lim->arg_max)
                    abort();
            }
            memmove(buf, buf + consumed, len - consumed);
            len -= consumed;
            if (st == KV_RESP_NEED_MORE)
                break;
        }
    }
    kv_resp_parser_destroy(&p);
    free(buf);
}

/* The reference: a direct recursive reading of the pattern language in glob.h (exponential in the
 * worst case, hence only for short inputs). */
static bool naive_match(const char *p, size_t pl, const char *s, size_t sl, bool nocase);

static unsigned char fold(unsigned char c, bool nocase)
{
    return (nocase && c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static bool naive_match(const char *p, size_t pl, const char *s, size_t sl, bool nocase)
{
    if (pl == 0)
        return sl == 0;
    if (p[0] == '*') {
        for (size_t k = 0; k <= sl; k++)
            if (naive_match(p + 1, pl - 1, s + k, sl - k, nocase))
                return true;
        return false;
    }
    if (sl == 0)
        return false;
    unsigned char c = (unsigned char)s[0];
    if (p[0] == '?')
        return naive_match(p + 1, pl - 1, s + 1, sl - 1, nocase);
    if (p[0] == '[') {
        size_t i = 1;
        bool neg = false, hit = false;
        if (i < pl && p[i] == '^') {
            neg = true;
            i++;
        }
        while (i < pl) {
            if (p[i] == '\\' && i + 1 < pl) {
                hit |= (unsigned char)p[i + 1] == c;
                i += 2;
            } else if (p[i] == ']') {
                i++;
                break;
            } else if (i + 2 < pl && p[i + 1] == '-') {
                unsigned char lo = fold((unsigned char)p[i], nocase), hi = fold((unsigned char)p[i + 2], nocase);
                if (lo > hi) {
                    unsigned char x = lo;
                    lo = hi;
                    hi = x;
                }
                hit |= fold(c, nocase) >= lo && fold(c, nocase) <= hi;
                i += 3;
            } else {
                hit |= fold((unsigned char)p[i], nocase) == fold(c, nocase);
                i++;
            }
        }
        if (neg)
            hit = !hit;
        return hit && naive_match(p + i, pl - i, s + 1, sl - 1, nocase);
    }
    if (p[0] == '\\' && pl >= 2)
        return fold((unsigned char)p[1], nocase) == fold(c, nocase) && naive_match(p + 2, pl - 2, s + 1, sl - 1, nocase);
    return fold((unsigned char)p[0], nocase) == fold(c, nocase) && naive_match(p + 1, pl - 1, s + 1, sl - 1, nocase);
}

static void fuzz_glob(const uint8_t *data, size_t size, bool nocase)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t pl = nul ? (size_t)(nul - data) : size;
    size_t sl = nul ? size - pl - 1 : 0;
    if (pl > 12 || sl > 24) /* keep the reference fast */
        return;
    const char *p = (const char *)data, *s = nul ? (const char *)nul + 1 : "";
    if (kv_glob_match(p, pl, s, sl, nocase) != naive_match(p, pl, s, sl, nocase))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (mode & 0x80) {
        fuzz_glob(data, size, mode & 1);
        return 0;
    }
    kv_resp_limits_t lim = {
        .bulk_max = (mode & 0x20) ? 4096 : 512u * 1024 * 1024,
        .arg_max = (mode & 0x10) ? 8 : 512 * 1024,
        .unauthenticated = (mode & 0x40) != 0,
    };
    trace_t whole = {0}, pieces = {0};
    run(data, size, 0, &lim, &whole);
    run(data, size, (size_t)(mode & 0x0f) + 1, &lim, &pieces);
    if (whole.len != pieces.len || (whole.len && memcmp(whole.b, pieces.b, whole.len) != 0))
        abort(); /* the outcome depended on how the bytes were split */
    free(whole.b);
    free(pieces.b);
    return 0;
}
