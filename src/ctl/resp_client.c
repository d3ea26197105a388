/*
 * resp_client.c - a minimal RESP2 client for respoolctl (see resp_client.h)
 */
#include "ctl/resp_client.h"

#include "common/util.h"
#include "respool/error.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ctl_resp_conn {
    int fd;
    char host[256];
    int port;
    char *buf;      /* received bytes; the current reply starts at 0 */
    size_t len, cap;
};

/* ---- parser ------------------------------------------------------------------------------------- */

/* The line starting at buf[off]: sets *end to the offset of its "\r\n". 0 need more, -1 error. */
static int find_line(const char *buf, size_t len, size_t off, size_t *end)
{
    size_t limit = RP_MIN(len, off + CTL_RESP_LINE_MAX);
    for (size_t i = off; i + 1 < limit; i++) {
        if (buf[i] == '\r') {
            if (buf[i + 1] != '\n')
                return -1;
            *end = i;
            return 1;
        }
        if (buf[i] == '\n')
            return -1;
    }
    return len >= off + CTL_RESP_LINE_MAX ? -1 : 0;
}

static bool parse_ll(const char *s, size_t n, long long *out)
{
    if (n == 0 || n > 20)
        return false;
    int64_t v;
    if (!rp_parse_i64(s, n, &v))
        return false;
    *out = v;
    return true;
}

/* Parses one value at buf[*off]; on success advances *off past it. 1 done, 0 need more, -1 error. */
static int parse_value(const char *buf, size_t len, size_t *off, int depth, ctl_resp_reply_t *r)
{
    if (*off >= len)
        return 0;
    size_t end;
    int rc = find_line(buf, len, *off + 1, &end);
    if (rc <= 0)
        return rc;
    const char *s = buf + *off + 1;
    size_t n = end - (*off + 1);
    char type = buf[*off];
    ctl_resp_reply_t tmp;
    if (!r)
        r = &tmp;
    memset(r, 0, sizeof(*r));
    switch (type) {
    case '+':
    case '-':
        r->type = type == '+' ? CTL_RESP_STATUS : CTL_RESP_ERROR;
        r->str = s;
        r->len = n;
        *off = end + 2;
        return 1;
    case ':':
        if (!parse_ll(s, n, &r->integer))
            return -1;
        r->type = CTL_RESP_INTEGER;
        *off = end + 2;
        return 1;
    case '$': {
        long long bl;
        if (!parse_ll(s, n, &bl) || bl < -1 || bl > CTL_RESP_BULK_MAX)
            return -1;
        if (bl == -1) {
            r->type = CTL_RESP_NIL;
            *off = end + 2;
            return 1;
        }
        size_t body = end + 2;
        if (len < body + (size_t)bl + 2)
            return 0;
        if (buf[body + bl] != '\r' || buf[body + bl + 1] != '\n')
            return -1;
        r->type = CTL_RESP_BULK;
        r->str = buf + body;
        r->len = (size_t)bl;
        *off = body + (size_t)bl + 2;
        return 1;
    }
    case '*': {
        long long count;
        if (!parse_ll(s, n, &count) || count < -1 || count > 1024 * 1024)
            return -1;
        if (count == -1) {
            r->type = CTL_RESP_NIL;
            *off = end + 2;
            return 1;
        }
        if (depth >= CTL_RESP_DEPTH_MAX)
            return -1;
        size_t pos = end + 2;
        for (long long i = 0; i < count; i++) {
            rc = parse_value(buf, len, &pos, depth + 1, NULL);
            if (rc <= 0)
                return rc;
        }
        r->type = CTL_RESP_ARRAY;
        r->elements = (size_t)count;
        *off = pos;
        return 1;
    }
    default:
        return -1;
    }
}

long ctl_resp_parse(const char *buf, size_t len, ctl_resp_reply_t *reply)
{
    size_t off = 0;
    int rc = parse_value(buf, len, &off, 0, reply);
    return rc < 0 ? -1 : rc == 0 ? 0 : (long)off;
}

/* ---- connection --------------------------------------------------------------------------------- */

static int remaining_ms(uint64_t deadline_ns)
{
    uint64_t now = rp_now_ns();
    return now >= deadline_ns ? 0 : (int)((deadline_ns - now) / 1000000 + 1);
}

int ctl_resp_connect(const char *host, int port, int timeout_ms, ctl_resp_conn_t **out)
{
    uint64_t deadline = rp_now_ns() + (uint64_t)timeout_ms * 1000000;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        rp_error(RP_ENOENT, "could not resolve host \"%s\": %s", host, gai_strerror(gai));
        return RP_ENOENT;
    }
    int fd = -1, last_errno = ECONNREFUSED;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                last_errno = errno;
                close(fd);
                fd = -1;
                continue;
            }
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int pr;
            do
                pr = poll(&pfd, 1, remaining_ms(deadline));
            while (pr < 0 && errno == EINTR);
            int err = 0;
            socklen_t el = sizeof(err);
            if (pr <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
                last_errno = pr == 0 ? ETIMEDOUT : err ? err : errno;
                close(fd);
                fd = -1;
            }
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        int code = last_errno == ETIMEDOUT ? RP_ETIMEDOUT : RP_ECONNREFUSED;
        rp_error(code, "could not connect to %s port %d: %s", host, port, strerror(last_errno));
        return code;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *out = ctl_resp_adopt(fd, host, port);
    return 0;
}

ctl_resp_conn_t *ctl_resp_adopt(int fd, const char *host, int port)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    ctl_resp_conn_t *c = rp_xcalloc(1, sizeof(*c));
    c->fd = fd;
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->port = port;
    return c;
}

int ctl_resp_command(ctl_resp_conn_t *c, int argc, const char *const *argv, int timeout_ms,
                     ctl_resp_reply_t *reply)
{
    uint64_t deadline = rp_now_ns() + (uint64_t)timeout_ms * 1000000;
    /* encode */
    size_t need = 32;
    for (int i = 0; i < argc; i++)
        need += strlen(argv[i]) + 32;
    char *req = rp_xmalloc(need);
    size_t rl = (size_t)snprintf(req, need, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++)
        rl += (size_t)snprintf(req + rl, need - rl, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
    /* send */
    for (size_t off = 0; off < rl;) {
        ssize_t n = send(c->fd, req + off, rl - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
            if (poll(&pfd, 1, remaining_ms(deadline)) == 0) {
                free(req);
                return rp_error(RP_ETIMEDOUT, "%s port %d did not take the request within %d ms", c->host, c->port,
                                timeout_ms);
            }
            continue;
        }
        int e = errno;
        free(req);
        return rp_error(RP_ECLOSED, "could not send to %s port %d: %s", c->host, c->port, strerror(e));
    }
    free(req);
    /* receive: the previous reply's bytes are gone; a server never sends unasked */
    c->len = 0;
    for (;;) {
        long used = ctl_resp_parse(c->buf, c->len, reply);
        if (used < 0)
            return rp_error(RP_EPROTO, "%s port %d sent a reply that is not RESP", c->host, c->port);
        if (used > 0)
            return 0;
        if (c->cap - c->len < 4096) {
            c->cap = c->cap ? c->cap * 2 : 16384;
            if (c->cap > CTL_RESP_BULK_MAX + CTL_RESP_LINE_MAX)
                return rp_error(RP_EPROTO, "the reply of %s port %d is too large", c->host, c->port);
            c->buf = rp_xrealloc(c->buf, c->cap);
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n == 0)
            return rp_error(RP_ECLOSED, "%s port %d closed the connection", c->host, c->port);
        if (errno == EAGAIN || errno == EINTR) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            int ms = remaining_ms(deadline);
            if (ms == 0 || poll(&pfd, 1, ms) == 0)
                return rp_error(RP_ETIMEDOUT, "%s port %d did not answer within %d ms", c->host, c->port, timeout_ms);
            continue;
        }
        return rp_error(RP_ESYS, "could not read from %s port %d: %s", c->host, c->port, strerror(errno));
    }
}

void ctl_resp_close(ctl_resp_conn_t *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c->buf);
    free(c);
}
