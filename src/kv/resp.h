/*
 * resp.h - RESP2: the incremental request parser and the reply writer of respoold
 *
 * Requests. kv_resp_parse() is an incremental, zero-copy parser in the style of picohttpparser: the
 * caller hands it the bytes of the connection received so far (starting at the first byte of the
 * request being parsed) and it answers "need more", "here is a complete command" (argc and argv
 * slices pointing into the caller's buffer) or "protocol error". It never allocates per byte; the only
 * allocation is the argv array, which grows with the argument count and is reused between commands.
 * It is resumable: when it answers "need more" it remembers how far it got, so a request that arrives
 * in many pieces is scanned once, not once per piece. The caller must therefore present, on the next
 * call, the same unconsumed bytes at the start of the buffer (it may move the buffer, never edit it).
 *
 * Both request forms of Redis are accepted:
 *   multibulk  *<argc>\r\n then argc times $<len>\r\n<len bytes>\r\n
 *   inline     a line of space-separated words ending in \n (an optional \r before it is dropped);
 *              words may be quoted as in redis-cli: "double quotes with \n \r \t \b \a \\ \" \xHH"
 *              or 'single quotes with \''. Quoted words are unescaped in place, which is why the
 *              buffer is not const.
 *
 * Every length is bounded before it is used: the multibulk count (KV_RESP_COUNT_MAX), each bulk length
 * (bulk_max: proto-max-bulk-len), the inline line and the length lines (KV_RESP_INLINE_MAX). A bulk
 * whose announced length is within bulk_max but above arg_max (the largest argument any command can
 * use) is not buffered: the parser reads past the rest of that request, hands the bytes back to the
 * caller to drop as they arrive, and reports KV_RESP_TOO_BIG once the request is over. The connection
 * stays usable and memory stays bounded.
 *
 * Replies. The kv_reply_*() functions append RESP2 replies to a growable output buffer
 * (kv_resp_out_t). Error texts have any CR or LF replaced by a space, as Redis does, so an error can
 * never break the framing.
 *
 * Interface:
 *   kv_resp_parser_init()     set up a parser with its limits
 *   kv_resp_parser_destroy()  free its argv array
 *   kv_resp_parser_reset()    forget a partial request (after an error, or when the buffer is dropped)
 *   kv_resp_parse()           parse the next request (see the return values below)
 *   kv_resp_error_text()      the Redis-compatible text of the last protocol error
 *   kv_reply_*()              append a reply
 *   kv_resp_out_reserve()     make room in an output buffer
 *   kv_resp_out_free()        free an output buffer
 *   kv_ll2str()               integer to decimal, quickly
 */
#ifndef RP_KV_RESP_H
#define RP_KV_RESP_H

#include "respool/error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest inline request line and the longest "*<n>" / "$<n>" line (Redis: PROTO_INLINE_MAX_SIZE). */
#define KV_RESP_INLINE_MAX (64 * 1024)
/* The largest multibulk count accepted from an authenticated client. */
#define KV_RESP_COUNT_MAX (1024 * 1024)
/* Limits before authentication (when a password is required), as Redis: a handful of short arguments
 * is all AUTH and HELLO need, and nothing bigger may be buffered for a stranger. */
#define KV_RESP_UNAUTH_COUNT_MAX 10
#define KV_RESP_UNAUTH_BULK_MAX 16384

/* One argument: a slice of the caller's buffer (not NUL-terminated). */
typedef struct kv_resp_arg {
    const char *ptr;
    size_t len;
    size_t off; /* offset from the start of the request (internal; ptr is derived from it) */
} kv_resp_arg_t;

typedef struct kv_resp_limits {
    uint64_t bulk_max;    /* longest bulk accepted at all (proto-max-bulk-len); longer is a protocol error */
    uint64_t arg_max;     /* longest argument kept; longer (but <= bulk_max) is KV_RESP_TOO_BIG */
    bool unauthenticated; /* the client still has to AUTH: KV_RESP_UNAUTH_* limits apply */
} kv_resp_limits_t;

/* Results of kv_resp_parse(). */
typedef enum kv_resp_status {
    KV_RESP_NEED_MORE = 0,    /* incomplete; call again with more bytes (see *consumed) */
    KV_RESP_COMMAND = 1,      /* complete: argc/argv are valid until the buffer changes */
    KV_RESP_TOO_BIG = 2,      /* complete but an argument exceeded arg_max; nothing of it was kept */
    KV_RESP_PROTO_ERROR = -1, /* the stream is broken; reply kv_resp_error_text() and close */
} kv_resp_status_t;

/* Protocol errors; the texts are Redis' (see kv_resp_error_text). */
typedef enum kv_resp_error {
    KV_RESP_OK = 0,
    KV_RESP_EMBULK_LEN,       /* invalid multibulk length */
    KV_RESP_EMBULK_UNAUTH,    /* unauthenticated multibulk length */
    KV_RESP_EMBULK_LINE,      /* too big mbulk count string */
    KV_RESP_EBULK_LEN,        /* invalid bulk length */
    KV_RESP_EBULK_UNAUTH,     /* unauthenticated bulk length */
    KV_RESP_EBULK_LINE,       /* too big bulk count string */
    KV_RESP_EBULK_TRAILER,    /* the two bytes after a bulk are not \r\n */
    KV_RESP_EEXPECTED_DOLLAR, /* expected '$', got 'x' */
    KV_RESP_EINLINE_TOO_BIG,  /* too big inline request */
    KV_RESP_EQUOTES,          /* unbalanced quotes in request */
} kv_resp_error_t;

typedef struct kv_resp_parser {
    kv_resp_limits_t lim;
    /* the result: valid after KV_RESP_COMMAND */
    int argc;
    kv_resp_arg_t *argv;
    size_t argv_cap;
    /* KV_RESP_TOO_BIG: which argument and how long it was */
    int too_big_index;
    uint64_t too_big_len;
    /* KV_RESP_PROTO_ERROR */
    kv_resp_error_t error;
    char error_byte; /* the offending byte of KV_RESP_EEXPECTED_DOLLAR */
    /* how many bytes of the request must be present before parsing can progress (a hint for the
     * caller's buffer sizing; 0 = unknown) */
    size_t need;
    /* resumption state (internal) */
    int state;
    size_t pos;        /* start of the element being parsed, relative to the request start */
    size_t scan;       /* how far a line (header or inline request) was searched for its end */
    bool trailer;      /* skipping: the \r\n after a dropped bulk is still to check */
    int64_t remaining; /* arguments still to read of the multibulk request */
    int64_t bulk_len;  /* length of the bulk whose header has been read, or -1 */
    uint64_t skip;     /* bytes of an oversized bulk (and its \r\n) still to drop */
} kv_resp_parser_t;

void kv_resp_parser_init(kv_resp_parser_t *p, const kv_resp_limits_t *lim);
void kv_resp_parser_destroy(kv_resp_parser_t *p);
/* Forgets any partial request; limits stay. */
void kv_resp_parser_reset(kv_resp_parser_t *p);
/* Changes the limits (e.g. after AUTH); only between requests. */
void kv_resp_parser_set_limits(kv_resp_parser_t *p, const kv_resp_limits_t *lim);

/*
 * Parses the request that starts at buf[0]; len bytes are available.
 *
 * Returns a kv_resp_status_t and sets *consumed:
 *   KV_RESP_COMMAND     the request is buf[0 .. *consumed); p->argc and p->argv describe it. argc may be
 *                       0 (an empty line, "*0"): Redis ignores those and so should the caller.
 *   KV_RESP_TOO_BIG     the request is over and *consumed bytes of it remain to be dropped; reply an
 *                       error (p->too_big_index, p->too_big_len say which argument and how long).
 *   KV_RESP_NEED_MORE   usually *consumed == 0: keep the bytes and call again when more arrive. While
 *                       skipping an oversized argument *consumed may be > 0: drop those bytes first.
 *   KV_RESP_PROTO_ERROR p->error says what; reply kv_resp_error_text() and close the connection.
 * Inline requests with quotes are unescaped in place inside buf.
 */
kv_resp_status_t kv_resp_parse(kv_resp_parser_t *p, char *buf, size_t len, size_t *consumed);

/* Writes "Protocol error: ..." (without the "ERR " code) into out; returns out. */
const char *kv_resp_error_text(const kv_resp_parser_t *p, char *out, size_t size);

/*
 * The output buffer. data[0 .. len) is what has been written; the owner decides what has been sent.
 */
typedef struct kv_resp_out {
    char *data;
    size_t len;
    size_t cap;
} kv_resp_out_t;

/* Makes room for at least `more` bytes after len; returns a pointer to data + len. */
char *kv_resp_out_reserve(kv_resp_out_t *o, size_t more);
void kv_resp_out_free(kv_resp_out_t *o);
/* Appends formatted text (not a reply by itself: for building bulk payloads such as INFO). */
void kv_resp_out_printf(kv_resp_out_t *o, const char *fmt, ...) RP_PRINTF(2, 3);

/* "+<s>\r\n"; s must not contain CR or LF. */
void kv_reply_status(kv_resp_out_t *o, const char *s);
void kv_reply_ok(kv_resp_out_t *o);
/* "-<msg>\r\n"; msg starts with the error code ("ERR ...", "NOAUTH ..."); a missing code becomes
 * "ERR". CR and LF inside msg become spaces. */
void kv_reply_error(kv_resp_out_t *o, const char *msg);
void kv_reply_error_len(kv_resp_out_t *o, const char *msg, size_t len);
void kv_reply_errorf(kv_resp_out_t *o, const char *fmt, ...) RP_PRINTF(2, 3);
void kv_reply_int(kv_resp_out_t *o, int64_t v);
void kv_reply_bulk(kv_resp_out_t *o, const void *data, size_t len);
void kv_reply_bulk_cstr(kv_resp_out_t *o, const char *s);
void kv_reply_bulk_int(kv_resp_out_t *o, int64_t v);
/* "$-1\r\n": the RESP2 null bulk (GET of a missing key). */
void kv_reply_null(kv_resp_out_t *o);
/* "*-1\r\n": the RESP2 null array. */
void kv_reply_null_array(kv_resp_out_t *o);
/* "*<n>\r\n": the elements follow as further replies. */
void kv_reply_array(kv_resp_out_t *o, size_t n);
/* "$<len>\r\n" only: the caller appends len bytes and then kv_reply_bulk_end(). Lets a producer write
 * a large value straight into the buffer. */
void kv_reply_bulk_begin(kv_resp_out_t *o, size_t len);
void kv_reply_bulk_end(kv_resp_out_t *o);
/* Appends raw bytes (already in RESP). */
void kv_reply_raw(kv_resp_out_t *o, const void *data, size_t len);

/* Writes v in decimal into buf (at least 21 bytes); returns the length. */
size_t kv_ll2str(char *buf, int64_t v);
size_t kv_ull2str(char *buf, uint64_t v);

#endif
