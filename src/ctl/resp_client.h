/*
 * resp_client.h - the smallest RESP2 client respoolctl needs (PING, INFO, RESPOOL PAGES)
 *
 * respoolctl asks a member only whether it answers and what INFO says; hiredis would be a runtime
 * dependency of the operator tool for two commands. This client sends one command at a time as an
 * array of bulk strings and reads one reply, each step with a deadline, and never blocks past it.
 *
 * The parser is incremental and zero-copy (picohttpparser style): given the bytes received so far it
 * returns how many make up one complete reply, 0 for "need more", or -1 for a protocol error. It never
 * allocates, and every length is bounded before it is used: a line at most CTL_RESP_LINE_MAX bytes,
 * a bulk at most CTL_RESP_BULK_MAX, arrays nested at most CTL_RESP_DEPTH_MAX deep. For an array only
 * the element count is reported (the elements are checked and skipped): PING and INFO never return one.
 *
 * Ownership: a reply's `str` points into the connection's buffer (or the buffer given to the parser)
 * and stays valid until the next command on that connection.
 *
 * Interface:
 *   ctl_resp_parse()     parse one reply from a buffer
 *   ctl_resp_connect()   TCP connection to host:port (names resolved), with a deadline
 *   ctl_resp_adopt()     a connection over a socket the caller connected (tests use a socket pair)
 *   ctl_resp_command()   send a command, read its reply, with a deadline
 *   ctl_resp_close()     close and free
 */
#ifndef RP_CTL_RESP_CLIENT_H
#define RP_CTL_RESP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#define CTL_RESP_LINE_MAX (64 * 1024)
#define CTL_RESP_BULK_MAX (64 * 1024 * 1024)
#define CTL_RESP_DEPTH_MAX 8

typedef enum ctl_resp_type {
    CTL_RESP_STATUS,  /* +OK: str, len */
    CTL_RESP_ERROR,   /* -ERR ...: str, len (without the '-') */
    CTL_RESP_INTEGER, /* :42: integer */
    CTL_RESP_BULK,    /* $3 abc: str, len */
    CTL_RESP_NIL,     /* $-1 or *-1 */
    CTL_RESP_ARRAY,   /* *N: elements */
} ctl_resp_type_t;

typedef struct ctl_resp_reply {
    ctl_resp_type_t type;
    const char *str;
    size_t len;
    long long integer;
    size_t elements;
} ctl_resp_reply_t;

/* Returns the number of bytes of the first complete reply in buf[0..len), 0 if more bytes are needed,
 * -1 on a protocol error (then the connection cannot be resynchronised). */
long ctl_resp_parse(const char *buf, size_t len, ctl_resp_reply_t *reply);

typedef struct ctl_resp_conn ctl_resp_conn_t;

/* Connects within timeout_ms. Returns 0, or RP_ECONNREFUSED / RP_ETIMEDOUT / RP_ENOENT (host unknown)
 * with a report naming host and port. */
int ctl_resp_connect(const char *host, int port, int timeout_ms, ctl_resp_conn_t **out);
/* Takes over fd (made non-blocking; closed by ctl_resp_close). host and port only name it in reports. */
ctl_resp_conn_t *ctl_resp_adopt(int fd, const char *host, int port);
/* Sends argv[0..argc) and reads one reply within timeout_ms. Returns 0 (an error reply is a success
 * here: reply->type says so), or RP_ETIMEDOUT / RP_ECLOSED / RP_EPROTO / RP_ESYS with a report. */
int ctl_resp_command(ctl_resp_conn_t *c, int argc, const char *const *argv, int timeout_ms,
                     ctl_resp_reply_t *reply);
void ctl_resp_close(ctl_resp_conn_t *c);

#endif
