/*
 * resp.c - RESP2 request parser and reply writer (see resp.h)
 *
 * The parser is a small state machine over offsets into the caller's buffer, so that a request
 * arriving in pieces is resumed where it stopped and the caller may move (realloc, compact) the buffer
 * between calls. Offsets, not pointers, are stored until the request is complete; only then are the
 * argv pointers derived from the buffer the caller passed last.
 *
 *   ST_START --'*'--> ST_COUNT --n>0--> ST_ARGS --all read--> COMMAND
 *       |                 |                \--bulk > arg_max--> ST_SKIP --all read--> TOO_BIG
 *       |                 \--n<=0--> COMMAND (argc 0)
 *       \--other--> ST_INLINE --'\n'--> COMMAND
 *
 * Error texts follow Redis' networking.c so that clients and people see what they know.
 */
#include "kv/resp.h"

#include "common/util.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_START = 0, ST_INLINE, ST_COUNT, ST_ARGS, ST_SKIP };

#define ARGV_INITIAL 16
/* An argv array bigger than this is given back after the request that needed it, so that one huge
 * request does not pin memory on an idle connection. */
#define ARGV_KEEP_MAX 1024

void kv_resp_parser_init(kv_resp_parser_t *p, const kv_resp_limits_t *lim)
{
    memset(p, 0, sizeof(*p));
    p->lim = *lim;
    p->bulk_len = -1;
}

void kv_resp_parser_destroy(kv_resp_parser_t *p)
{
    free(p->argv);
    p->argv = NULL;
    p->argv_cap = 0;
}

void kv_resp_parser_reset(kv_resp_parser_t *p)
{
    p->state = ST_START;
    p->pos = 0;
    p->scan = 0;
    p->remaining = 0;
    p->bulk_len = -1;
    p->skip = 0;
    p->trailer = false;
    p->need = 0;
    if (p->argv_cap > ARGV_KEEP_MAX) {
        free(p->argv);
        p->argv = NULL;
        p->argv_cap = 0;
    }
}

void kv_resp_parser_set_limits(kv_resp_parser_t *p, const kv_resp_limits_t *lim)
{
    p->lim = *lim;
}

static void push_arg(kv_resp_parser_t *p, size_t off, size_t len)
{
    if ((size_t)p->argc == p->argv_cap) {
        size_t cap = p->argv_cap ? p->argv_cap * 2 : ARGV_INITIAL;
        p->argv = rp_xrealloc(p->argv, cap * sizeof(*p->argv));
        p->argv_cap = cap;
    }
    p->argv[p->argc].ptr = NULL;
    p->argv[p->argc].off = off;
    p->argv[p->argc].len = len;
    p->argc++;
}

static kv_resp_status_t fail(kv_resp_parser_t *p, kv_resp_error_t e)
{
    p->error = e;
    return KV_RESP_PROTO_ERROR;
}

/* Finishes a complete request: derive the pointers, report its length, get ready for the next one. */
static kv_resp_status_t complete(kv_resp_parser_t *p, char *buf, size_t *consumed, kv_resp_status_t st)
{
    for (int i = 0; i < p->argc; i++)
        p->argv[i].ptr = buf + p->argv[i].off;
    *consumed = p->pos;
    p->state = ST_START;
    p->pos = 0;
    p->scan = 0;
    p->remaining = 0;
    p->bulk_len = -1;
    p->need = 0;
    return st;
}

/*
 * Finds the "\r\n" that ends the header line starting at p->pos ("*<n>" or "$<n>"). Returns 1 and the
 * offset of '\r' in *cr, 0 when more bytes are needed, or -1 when the line cannot be a valid header
 * (too long, or a '\r' not followed by '\n'). The search resumes at p->scan.
 */
static int find_header_end(kv_resp_parser_t *p, const char *buf, size_t len, size_t *cr)
{
    size_t limit = RP_MIN(len, p->pos + KV_RESP_INLINE_MAX);
    size_t from = RP_MAX(p->scan, p->pos);
    const char *r = from < limit ? memchr(buf + from, '\r', limit - from) : NULL;
    if (!r) {
        if (len - p->pos > KV_RESP_INLINE_MAX)
            return -1;
        p->scan = len;
        return 0;
    }
    size_t at = (size_t)(r - buf);
    if (at + 1 >= len) {
        p->scan = at; /* found again at once next time */
        return 0;
    }
    if (buf[at + 1] != '\n')
        return -2;
    *cr = at;
    return 1;
}

/* Parses "$<n>\r\n" at p->pos. Returns 1 with *n set and p->pos past the line, 0 for need-more, or a
 * protocol error status. */
static int parse_bulk_header(kv_resp_parser_t *p, const char *buf, size_t len, int64_t *n)
{
    if (p->pos >= len)
        return 0;
    if (buf[p->pos] != '$') {
        p->error_byte = buf[p->pos];
        return fail(p, KV_RESP_EEXPECTED_DOLLAR);
    }
    size_t cr;
    int rc = find_header_end(p, buf, len, &cr);
    if (rc == 0)
        return 0;
    if (rc == -1)
        return fail(p, KV_RESP_EBULK_LINE);
    int64_t v;
    if (rc == -2 || !rp_parse_i64(buf + p->pos + 1, cr - p->pos - 1, &v) || v < 0 ||
        (uint64_t)v > p->lim.bulk_max)
        return fail(p, KV_RESP_EBULK_LEN);
    if (p->lim.unauthenticated && v > KV_RESP_UNAUTH_BULK_MAX)
        return fail(p, KV_RESP_EBULK_UNAUTH);
    p->pos = cr + 2;
    p->scan = p->pos;
    *n = v;
    return 1;
}

static kv_resp_status_t parse_count(kv_resp_parser_t *p, char *buf, size_t len, size_t *consumed)
{
    size_t cr;
    int rc = find_header_end(p, buf, len, &cr);
    if (rc == 0)
        return KV_RESP_NEED_MORE;
    if (rc == -1)
        return fail(p, KV_RESP_EMBULK_LINE);
    int64_t n;
    if (rc == -2 || !rp_parse_i64(buf + 1, cr - 1, &n) || n > KV_RESP_COUNT_MAX)
        return fail(p, KV_RESP_EMBULK_LEN);
    if (p->lim.unauthenticated && n > KV_RESP_UNAUTH_COUNT_MAX)
        return fail(p, KV_RESP_EMBULK_UNAUTH);
    p->pos = cr + 2;
    p->scan = p->pos;
    p->argc = 0;
    if (n <= 0) /* "*0" and "*-1" are empty requests, ignored like Redis does */
        return complete(p, buf, consumed, KV_RESP_COMMAND);
    p->remaining = n;
    p->bulk_len = -1;
    p->state = ST_ARGS;
    return KV_RESP_NEED_MORE; /* not final: the caller loop continues */
}

/* Drops the rest of a request that has an oversized argument. Everything before p->pos can go. */
static kv_resp_status_t skip_rest(kv_resp_parser_t *p, char *buf, size_t len, size_t *consumed)
{
    for (;;) {
        if (p->skip > 0) {
            size_t take = (size_t)RP_MIN((uint64_t)(len - p->pos), p->skip);
            p->pos += take;
            p->skip -= take;
            if (p->skip > 0)
                break;
        }
        if (p->trailer) {
            if (len - p->pos < 2)
                break;
            if (buf[p->pos] != '\r' || buf[p->pos + 1] != '\n')
                return fail(p, KV_RESP_EBULK_TRAILER);
            p->pos += 2;
            p->trailer = false;
        }
        if (p->remaining == 0) {
            p->argc = 0;
            return complete(p, buf, consumed, KV_RESP_TOO_BIG);
        }
        int64_t n;
        int rc = parse_bulk_header(p, buf, len, &n);
        if (rc < 0)
            return KV_RESP_PROTO_ERROR;
        if (rc == 0)
            break;
        p->remaining--;
        p->skip = (uint64_t)n;
        p->trailer = true;
    }
    /* Hand back everything up to the element in progress; offsets restart from there. */
    *consumed = p->pos;
    p->scan = p->scan > p->pos ? p->scan - p->pos : 0;
    p->pos = 0;
    p->need = 0;
    return KV_RESP_NEED_MORE;
}

static kv_resp_status_t parse_args(kv_resp_parser_t *p, char *buf, size_t len, size_t *consumed)
{
    while (p->remaining > 0) {
        if (p->bulk_len < 0) {
            int64_t n;
            int rc = parse_bulk_header(p, buf, len, &n);
            if (rc < 0)
                return KV_RESP_PROTO_ERROR;
            if (rc == 0)
                return KV_RESP_NEED_MORE;
            if ((uint64_t)n > p->lim.arg_max) {
                /* Within the protocol limit but more than any command can take: drop it as it
                 * arrives instead of buffering it, and answer with an error at the end. */
                p->too_big_index = p->argc;
                p->too_big_len = (uint64_t)n;
                p->remaining--;
                p->skip = (uint64_t)n;
                p->trailer = true;
                p->state = ST_SKIP;
                return skip_rest(p, buf, len, consumed);
            }
            p->bulk_len = n;
        }
        size_t end = p->pos + (size_t)p->bulk_len;
        if (len < end + 2) {
            p->need = end + 2;
            return KV_RESP_NEED_MORE;
        }
        if (buf[end] != '\r' || buf[end + 1] != '\n')
            return fail(p, KV_RESP_EBULK_TRAILER);
        push_arg(p, p->pos, (size_t)p->bulk_len);
        p->pos = end + 2;
        p->scan = p->pos;
        p->bulk_len = -1;
        p->remaining--;
    }
    return complete(p, buf, consumed, KV_RESP_COMMAND);
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

/* isspace() of the C locale, without the locale lookup */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/*
 * Splits an inline line [start, end) into words in place, with redis-cli's quoting rules: outside
 * quotes a word ends at space, tab, CR or LF; "..." knows the escapes \n \r \t \b \a \xHH and \<any>;
 * '...' knows only \'; a closing quote must be followed by a space or the end of the line. Unescaped
 * words never grow, so writing behind the reading position is safe.
 */
static bool split_inline(kv_resp_parser_t *p, char *buf, size_t start, size_t end)
{
    size_t r = start, w = start;
    for (;;) {
        while (r < end && is_space(buf[r]))
            r++;
        if (r >= end)
            return true;
        size_t word = w;
        bool dq = false, sq = false, done = false;
        while (!done) {
            if (dq) {
                if (r >= end)
                    return false; /* unterminated quotes */
                if (buf[r] == '\\' && r + 3 < end && buf[r + 1] == 'x' && is_hex(buf[r + 2]) &&
                    is_hex(buf[r + 3])) {
                    buf[w++] = (char)(hex_val(buf[r + 2]) * 16 + hex_val(buf[r + 3]));
                    r += 4;
                } else if (buf[r] == '\\' && r + 1 < end) {
                    char c = buf[r + 1];
                    switch (c) {
                    case 'n':
                        c = '\n';
                        break;
                    case 'r':
                        c = '\r';
                        break;
                    case 't':
                        c = '\t';
                        break;
                    case 'b':
                        c = '\b';
                        break;
                    case 'a':
                        c = '\a';
                        break;
                    default:
                        break;
                    }
                    buf[w++] = c;
                    r += 2;
                } else if (buf[r] == '"') {
                    if (r + 1 < end && !is_space(buf[r + 1]))
                        return false;
                    r++;
                    done = true;
                } else {
                    buf[w++] = buf[r++];
                }
            } else if (sq) {
                if (r >= end)
                    return false;
                if (buf[r] == '\\' && r + 1 < end && buf[r + 1] == '\'') {
                    buf[w++] = '\'';
                    r += 2;
                } else if (buf[r] == '\'') {
                    if (r + 1 < end && !is_space(buf[r + 1]))
                        return false;
                    r++;
                    done = true;
                } else {
                    buf[w++] = buf[r++];
                }
            } else {
                if (r >= end) {
                    done = true;
                    break;
                }
                switch (buf[r]) {
                case ' ':
                case '\n':
                case '\r':
                case '\t':
                    done = true;
                    break;
                case '"':
                    dq = true;
                    r++;
                    break;
                case '\'':
                    sq = true;
                    r++;
                    break;
                default:
                    buf[w++] = buf[r++];
                    break;
                }
            }
        }
        push_arg(p, word, w - word);
    }
}

static kv_resp_status_t parse_inline(kv_resp_parser_t *p, char *buf, size_t len, size_t *consumed)
{
    size_t limit = RP_MIN(len, (size_t)KV_RESP_INLINE_MAX);
    const char *nl = p->scan < limit ? memchr(buf + p->scan, '\n', limit - p->scan) : NULL;
    if (!nl) {
        if (len > KV_RESP_INLINE_MAX)
            return fail(p, KV_RESP_EINLINE_TOO_BIG);
        p->scan = len;
        return KV_RESP_NEED_MORE;
    }
    size_t at = (size_t)(nl - buf);
    size_t end = at;
    if (end > 0 && buf[end - 1] == '\r')
        end--;
    p->argc = 0;
    if (!split_inline(p, buf, 0, end))
        return fail(p, KV_RESP_EQUOTES);
    p->pos = at + 1;
    return complete(p, buf, consumed, KV_RESP_COMMAND);
}

kv_resp_status_t kv_resp_parse(kv_resp_parser_t *p, char *buf, size_t len, size_t *consumed)
{
    *consumed = 0;
    switch (p->state) {
    case ST_START:
        if (len == 0)
            return KV_RESP_NEED_MORE;
        p->argc = 0;
        p->pos = 0;
        p->scan = 0;
        p->error = KV_RESP_OK;
        if (buf[0] != '*') {
            p->state = ST_INLINE;
            return parse_inline(p, buf, len, consumed);
        }
        p->state = ST_COUNT;
        /* fall through */
    case ST_COUNT: {
        kv_resp_status_t st = parse_count(p, buf, len, consumed);
        if (p->state != ST_ARGS)
            return st;
        return parse_args(p, buf, len, consumed);
    }
    case ST_INLINE:
        return parse_inline(p, buf, len, consumed);
    case ST_ARGS:
        return parse_args(p, buf, len, consumed);
    case ST_SKIP:
        return skip_rest(p, buf, len, consumed);
    }
    assert(!"bad parser state");
    return fail(p, KV_RESP_EMBULK_LEN);
}

const char *kv_resp_error_text(const kv_resp_parser_t *p, char *out, size_t size)
{
    const char *what = "unknown error";
    switch (p->error) {
    case KV_RESP_OK:
        what = "no error";
        break;
    case KV_RESP_EMBULK_LEN:
        what = "invalid multibulk length";
        break;
    case KV_RESP_EMBULK_UNAUTH:
        what = "unauthenticated multibulk length";
        break;
    case KV_RESP_EMBULK_LINE:
        what = "too big mbulk count string";
        break;
    case KV_RESP_EBULK_LEN:
        what = "invalid bulk length";
        break;
    case KV_RESP_EBULK_UNAUTH:
        what = "unauthenticated bulk length";
        break;
    case KV_RESP_EBULK_LINE:
        what = "too big bulk count string";
        break;
    case KV_RESP_EBULK_TRAILER:
        what = "expected CRLF after bulk data";
        break;
    case KV_RESP_EINLINE_TOO_BIG:
        what = "too big inline request";
        break;
    case KV_RESP_EQUOTES:
        what = "unbalanced quotes in request";
        break;
    case KV_RESP_EEXPECTED_DOLLAR:
        snprintf(out, size, "Protocol error: expected '$', got '%c'", p->error_byte);
        return out;
    }
    snprintf(out, size, "Protocol error: %s", what);
    return out;
}

/* ---- replies ------------------------------------------------------------------------------------ */

#define OUT_INITIAL 4096

char *kv_resp_out_reserve(kv_resp_out_t *o, size_t more)
{
    if (o->cap - o->len < more) {
        size_t cap = o->cap ? o->cap : OUT_INITIAL;
        while (cap - o->len < more)
            cap *= 2;
        o->data = rp_xrealloc(o->data, cap);
        o->cap = cap;
    }
    return o->data + o->len;
}

void kv_resp_out_free(kv_resp_out_t *o)
{
    free(o->data);
    o->data = NULL;
    o->len = o->cap = 0;
}

void kv_resp_out_printf(kv_resp_out_t *o, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    char *d = kv_resp_out_reserve(o, 256);
    int n = vsnprintf(d, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= o->cap - o->len) {
        d = kv_resp_out_reserve(o, (size_t)n + 1);
        n = vsnprintf(d, o->cap - o->len, fmt, again);
    }
    va_end(again);
    if (n > 0)
        o->len += (size_t)n;
}

size_t kv_ull2str(char *buf, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

size_t kv_ll2str(char *buf, int64_t v)
{
    if (v < 0) {
        buf[0] = '-';
        /* negate in unsigned arithmetic so that INT64_MIN works */
        return 1 + kv_ull2str(buf + 1, (uint64_t)0 - (uint64_t)v);
    }
    return kv_ull2str(buf, (uint64_t)v);
}

void kv_reply_raw(kv_resp_out_t *o, const void *data, size_t len)
{
    memcpy(kv_resp_out_reserve(o, len), data, len);
    o->len += len;
}

/* "<prefix><v>\r\n" */
static void prefixed_int(kv_resp_out_t *o, char prefix, int64_t v)
{
    char *d = kv_resp_out_reserve(o, 24);
    d[0] = prefix;
    size_t n = kv_ll2str(d + 1, v);
    d[n + 1] = '\r';
    d[n + 2] = '\n';
    o->len += n + 3;
}

void kv_reply_status(kv_resp_out_t *o, const char *s)
{
    size_t n = strlen(s);
    char *d = kv_resp_out_reserve(o, n + 3);
    d[0] = '+';
    memcpy(d + 1, s, n);
    d[n + 1] = '\r';
    d[n + 2] = '\n';
    o->len += n + 3;
}

void kv_reply_ok(kv_resp_out_t *o)
{
    kv_reply_raw(o, "+OK\r\n", 5);
}

static bool has_error_code(const char *msg, size_t len)
{
    /* An error code is an upper-case word at the start: "ERR", "NOAUTH", "WRONGPASS", ... */
    size_t i = 0;
    while (i < len && msg[i] >= 'A' && msg[i] <= 'Z')
        i++;
    return i > 0 && (i == len || msg[i] == ' ');
}

void kv_reply_error_len(kv_resp_out_t *o, const char *msg, size_t len)
{
    if (len > 0 && msg[0] == '-') {
        msg++;
        len--;
    }
    bool code = has_error_code(msg, len);
    char *d = kv_resp_out_reserve(o, len + 7);
    size_t n = 0;
    d[n++] = '-';
    if (!code) {
        memcpy(d + n, "ERR ", 4);
        n += 4;
    }
    for (size_t i = 0; i < len; i++)
        d[n++] = (msg[i] == '\r' || msg[i] == '\n') ? ' ' : msg[i];
    d[n++] = '\r';
    d[n++] = '\n';
    o->len += n;
}

void kv_reply_error(kv_resp_out_t *o, const char *msg)
{
    kv_reply_error_len(o, msg, strlen(msg));
}

void kv_reply_errorf(kv_resp_out_t *o, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(buf))
        n = sizeof(buf) - 1;
    kv_reply_error_len(o, buf, (size_t)n);
}

void kv_reply_int(kv_resp_out_t *o, int64_t v)
{
    if (v == 0 || v == 1) {
        kv_reply_raw(o, v ? ":1\r\n" : ":0\r\n", 4);
        return;
    }
    prefixed_int(o, ':', v);
}

void kv_reply_bulk_begin(kv_resp_out_t *o, size_t len)
{
    prefixed_int(o, '$', (int64_t)len);
}

void kv_reply_bulk_end(kv_resp_out_t *o)
{
    kv_reply_raw(o, "\r\n", 2);
}

void kv_reply_bulk(kv_resp_out_t *o, const void *data, size_t len)
{
    /* One reservation for header, payload and trailer: this is GET's path. */
    char *d = kv_resp_out_reserve(o, len + 26);
    d[0] = '$';
    size_t n = 1 + kv_ull2str(d + 1, len);
    d[n++] = '\r';
    d[n++] = '\n';
    if (len)
        memcpy(d + n, data, len);
    n += len;
    d[n++] = '\r';
    d[n++] = '\n';
    o->len += n;
}

void kv_reply_bulk_cstr(kv_resp_out_t *o, const char *s)
{
    kv_reply_bulk(o, s, strlen(s));
}

void kv_reply_bulk_int(kv_resp_out_t *o, int64_t v)
{
    char buf[24];
    size_t n = kv_ll2str(buf, v);
    kv_reply_bulk(o, buf, n);
}

void kv_reply_null(kv_resp_out_t *o)
{
    kv_reply_raw(o, "$-1\r\n", 5);
}

void kv_reply_null_array(kv_resp_out_t *o)
{
    kv_reply_raw(o, "*-1\r\n", 5);
}

void kv_reply_array(kv_resp_out_t *o, size_t n)
{
    prefixed_int(o, '*', (int64_t)n);
}
