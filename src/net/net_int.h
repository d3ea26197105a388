/*
 * net_int.h - the transport's internals shared by its files (see README.md for the design)
 *
 *   frame.c      the wire format: frame header encode/decode, the incremental receive parser, messages
 *   handshake.c  HELLO / AUTH / AUTH_OK / REFUSE, the HMAC proofs, and the handshake's state machine
 *   conn.c       one connection: dial, accept, read, write and the send queue, close and re-dial
 *   wait.c       request ids and the waiters that replies complete
 *   net.c        lifecycle, the network thread, dispatch to handlers, the worker pool, the public sends
 */
#ifndef RP_NET_INT_H
#define RP_NET_INT_H

#include "net/net.h"
#include "respool/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define NET_SUB "net"

/* ---- wire format (frame.c) ------------------------------------------------------------------------ */

#define RP_NET_HEADER_SIZE 40
#define RP_NET_VERSION 1                  /* frame format and protocol version, in every frame and HELLO */
#define RP_NET_MAGIC 0x464d5052u          /* "RPMF" as little-endian bytes */
#define RP_NET_PREAUTH_MAX_PAYLOAD 256    /* what an unauthenticated peer may make us allocate */

/* The transport's own types (below RP_NET_TYPE_USER). */
enum {
    RP_NET_T_HELLO = 1,
    RP_NET_T_AUTH = 2,
    RP_NET_T_AUTH_OK = 3,
    RP_NET_T_REFUSE = 4,
    RP_NET_T_PING = 5,
    RP_NET_T_PONG = 6,
};

typedef struct rp_net_frame {
    uint16_t version;
    uint16_t type;
    uint16_t src;
    uint16_t dst;
    uint32_t len;            /* payload bytes */
    uint64_t epoch;
    uint64_t req_id;
    uint32_t payload_crc;    /* CRC-32C of the payload (of nothing: 0) */
} rp_net_frame_t;

/* Writes the 40-byte header of f (version taken from f) with its header checksum. */
void rp_net_frame_encode(const rp_net_frame_t *f, unsigned char hdr[RP_NET_HEADER_SIZE]);
/* Checks, in this order, magic, header checksum, version, type range and payload length (<= max_payload)
 * and fills *f. Returns 0, or RP_EPROTO (magic, type), RP_ECORRUPT (checksum), RP_EVERSION (f->version
 * holds the peer's), RP_ETOOBIG (length) with a report. Nothing is read beyond the 40 bytes. */
int rp_net_frame_decode(const unsigned char hdr[RP_NET_HEADER_SIZE], uint32_t max_payload, rp_net_frame_t *f);
/* Whether a type is one the wire may carry: a transport type, or a caller type with or without the reply
 * bit. */
bool rp_net_type_valid(uint16_t type);

rp_net_msg_t *rp_net_msg_alloc(uint32_t len);

/* The incremental receive parser: bytes in, whole verified messages out. A header is collected in hdr
 * (so a read buffer never has to hold a partial frame), then the payload goes straight into the
 * message's own buffer. */
typedef struct rp_net_rx {
    unsigned char hdr[RP_NET_HEADER_SIZE];
    uint32_t hdr_have;
    uint32_t max_payload;
    rp_net_frame_t frame;     /* the decoded header of the frame being received, when msg != NULL */
    rp_net_msg_t *msg;        /* the frame being received; NULL while collecting a header */
    uint32_t have;            /* payload bytes received */
} rp_net_rx_t;

void rp_net_rx_init(rp_net_rx_t *rx, uint32_t max_payload);
void rp_net_rx_reset(rp_net_rx_t *rx);   /* frees a partial message */
/* Consumes up to len bytes: stops after the first complete frame (*out, owned by the caller) so that its
 * effect (a handshake step, a close) applies before the next frame is parsed. *consumed is set in every
 * case. Returns 0 (with *out = NULL when more bytes are needed), or a negative code with a report: the
 * stream cannot be trusted after that. */
int rp_net_rx_feed(rp_net_rx_t *rx, const unsigned char *data, size_t len, size_t *consumed,
                   rp_net_msg_t **out);
/* When the rest of the current payload is large, it is read straight into the message: returns how many
 * bytes may be written at *dst (0 = use rp_net_rx_feed), then rp_net_rx_commit(n) accounts for them. */
size_t rp_net_rx_direct(rp_net_rx_t *rx, unsigned char **dst);
int rp_net_rx_commit(rp_net_rx_t *rx, size_t n, rp_net_msg_t **out);

/* ---- handshake (handshake.c) ---------------------------------------------------------------------- */

#define RP_NET_NONCE_LEN 32
#define RP_NET_MAC_LEN 32
#define RP_NET_HELLO_LEN 64                        /* initiator's HELLO */
#define RP_NET_HELLO_MAC_LEN (64 + RP_NET_MAC_LEN)   /* acceptor's HELLO carries its proof */

typedef struct rp_net_hello {
    uint16_t version;
    uint16_t id;
    uint32_t flags;                 /* 0; reserved */
    uint8_t uuid[16];
    uint64_t epoch;
    uint8_t nonce[RP_NET_NONCE_LEN];
    bool has_mac;
    uint8_t mac[RP_NET_MAC_LEN];
} rp_net_hello_t;

/* Why a handshake was refused: the REFUSE payload (u16) and the log line. */
typedef enum rp_net_refusal {
    RP_NET_REFUSE_PROTOCOL = 1,     /* not a handshake frame, bad frame */
    RP_NET_REFUSE_VERSION = 2,
    RP_NET_REFUSE_UUID = 3,
    RP_NET_REFUSE_UNKNOWN_ID = 4,
    RP_NET_REFUSE_DUPLICATE = 5,
    RP_NET_REFUSE_SECRET = 6,
    RP_NET_REFUSE_SHUTDOWN = 7,
    RP_NET_REFUSE_BUSY = 8,         /* too many unauthenticated connections */
} rp_net_refusal_t;

const char *rp_net_refusal_text(int reason);
size_t rp_net_hello_encode(const rp_net_hello_t *h, unsigned char *buf);
int rp_net_hello_decode(const unsigned char *buf, size_t len, rp_net_hello_t *h);
/* HMAC-SHA256(secret, role | initiator id | acceptor id | uuid | first | second). role 'A' is the
 * initiator's proof (first = the acceptor's nonce), 'B' the acceptor's (first = the initiator's). */
int rp_net_auth_mac(const unsigned char secret[RP_CLUSTER_SECRET_LEN], char role, uint16_t initiator,
                    uint16_t acceptor, const uint8_t uuid[16], const uint8_t first[RP_NET_NONCE_LEN],
                    const uint8_t second[RP_NET_NONCE_LEN], uint8_t mac[RP_NET_MAC_LEN]);
/* Constant-time comparison of a received proof with the expected one. */
bool rp_net_auth_verify(const unsigned char secret[RP_CLUSTER_SECRET_LEN], char role, uint16_t initiator,
                        uint16_t acceptor, const uint8_t uuid[16], const uint8_t first[RP_NET_NONCE_LEN],
                        const uint8_t second[RP_NET_NONCE_LEN], const uint8_t mac[RP_NET_MAC_LEN]);

/* ---- connections (conn.c) ------------------------------------------------------------------------- */

typedef enum rp_net_conn_state {
    CONN_CONNECTING = 1,   /* initiator: non-blocking connect under way */
    CONN_HELLO_SENT,       /* initiator: waits for the acceptor's HELLO and proof */
    CONN_AUTH_SENT,        /* initiator: sent its proof, waits for AUTH_OK */
    CONN_WAIT_HELLO,       /* acceptor: waits for the initiator's HELLO */
    CONN_WAIT_AUTH,        /* acceptor: sent HELLO and proof, waits for the initiator's proof */
    CONN_ESTABLISHED,      /* authenticated both ways: caller frames flow */
    CONN_CLOSED,           /* on the graveyard list, freed after this round of events */
} rp_net_conn_state_t;

typedef struct rp_net_chunk {
    struct rp_net_chunk *next;
    size_t len, off;
    unsigned char data[];
} rp_net_chunk_t;

typedef struct rp_net_conn rp_net_conn_t;
struct rp_net_conn {
    int epoll_kind;            /* first: tells connections from the listener and the eventfd */
    rp_net_t *net;
    int fd;
    rp_net_conn_state_t state;
    bool initiator;
    bool attached;             /* peers[peer].conn == this (set and cleared under the peer lock) */
    int peer;                  /* -1 until the acceptor has read a HELLO naming a member */
    char addr[80];             /* remote address, for every log line */
    uint64_t deadline_ns;      /* connect + handshake must finish by then */
    uint64_t last_rx_ns;       /* any frame received (idle timeout) */
    uint64_t next_ping_ns;
    uint8_t my_nonce[RP_NET_NONCE_LEN];
    uint8_t peer_nonce[RP_NET_NONCE_LEN];
    rp_net_rx_t rx;            /* network thread only */
    /* Send side: under the peer's lock once attached, network thread only before. */
    rp_net_chunk_t *txq_head, *txq_tail;
    size_t txq_bytes;
    bool out_armed;            /* EPOLLOUT requested */
    bool broken;               /* a write failed: nothing more is written; the network thread closes */
    rp_net_conn_t *next;       /* net->conns (network thread only) */
};

/* ---- the transport (net.c) ------------------------------------------------------------------------ */

typedef struct rp_net_peer {
    int id;
    bool member;
    char host[RP_CLUSTER_HOST_MAX];
    int port;
    struct sockaddr_storage sa;
    socklen_t salen;
    char addr[80];             /* "host:port" */

    pthread_mutex_t lock;      /* conn, the attached connection's send side, since_ms, last_error */
    rp_net_conn_t *conn;       /* the established connection, or NULL */
    uint64_t since_ms;
    char last_error[256];
    atomic_bool connected;     /* conn != NULL, readable without the lock */

    /* network thread only */
    rp_net_conn_t *pending;    /* a handshake in progress with this member */
    uint64_t next_dial_ns;
    uint64_t backoff_ms;
    bool failure_logged;       /* a failed dial was logged since the last success: repeat at DEBUG */

    atomic_uint_fast64_t rtt_ns, rtt_last_ns;
    atomic_uint_fast64_t frames_in, frames_out, bytes_in, bytes_out;
    atomic_uint_fast64_t connects, handshake_failures, dropped_epoch, send_eagain;
    atomic_uint_fast64_t txq_bytes;
} rp_net_peer_t;

typedef struct rp_net_handler {
    rp_net_handler_fn fn;
    void *arg;
    unsigned flags;
} rp_net_handler_t;

typedef struct rp_net_waiter rp_net_waiter_t;
#define NET_WAIT_STRIPES 64
typedef struct rp_net_wait_stripe {
    pthread_mutex_t lock;
    rp_net_waiter_t *head;
} rp_net_wait_stripe_t;

enum { NET_EPOLL_CONN = 1, NET_EPOLL_LISTENER, NET_EPOLL_WAKE };

struct rp_net {
    int self;
    int nmembers;
    uint8_t uuid[16];
    unsigned char secret[RP_CLUSTER_SECRET_LEN];
    _Atomic uint64_t *epoch;
    _Atomic uint64_t fixed_epoch;  /* what epoch points at when the config gave none */
    size_t send_queue_limit;
    uint64_t heartbeat_ns, idle_timeout_ns, handshake_timeout_ns;
    rp_net_peer_t peers[RP_VOLUME_MAX_INSTANCES];
    rp_net_handler_t handlers[2 * RP_NET_TYPE_MAX];  /* [type] requests, [TYPE_MAX + type] late replies */

    atomic_bool started, stopping, stopped;
    int epfd;
    int listen_fd;
    int wake_fd;
    int listener_kind, wake_kind;  /* epoll tags */
    pthread_t thread;

    /* network thread only */
    rp_net_conn_t *conns;          /* every open connection */
    rp_net_conn_t *graveyard;      /* closed during this round of events, freed after it */
    int npending_accepted;         /* accepted connections still in their handshake */
    unsigned char *rxbuf;          /* one read buffer for all connections */
    uint64_t listen_rearm_ns;      /* listener paused (EMFILE) until then, 0 = armed */
    uint64_t next_timer_ns;        /* run rp_net_conn_timers then; 0 = at once (something changed) */

    /* local deliveries for the network thread (self-sends to non-blocking handlers) */
    pthread_mutex_t inbox_lock;
    rp_net_msg_t *inbox_head, *inbox_tail;

    /* the worker pool */
    pthread_mutex_t work_lock;
    pthread_cond_t work_cond;
    rp_net_msg_t *work_head, *work_tail;
    atomic_uint_fast64_t work_depth;
    bool work_stop;
    int nworkers;
    pthread_t *workers;

    /* waiters (wait.c) */
    atomic_uint_fast64_t next_req_id;
    rp_net_wait_stripe_t stripes[NET_WAIT_STRIPES];
    atomic_uint_fast64_t nwaiters;
    uint64_t spin_ns;              /* rp_net_wait's busy-wait budget, 0 = never spin */
    atomic_uint_fast64_t reply_ns; /* smoothed expect-to-reply time */

    atomic_uint_fast64_t late_replies, dropped_replies, dropped_epoch, handshake_failures, protocol_errors;
};

static inline uint64_t rp_net_cur_epoch(const rp_net_t *net)
{
    return atomic_load_explicit(net->epoch, memory_order_acquire);
}

/* net.c */
/* Hands a complete, authenticated message to its waiter or handler (which then owns it). Called on the
 * network thread for received frames (from_wire) and on any thread for self-deliveries, whose non-blocking
 * handlers run on the network thread too (via the inbox). Returns 0, or RP_EPROTO with a report when the
 * message's type has no handler: msg is still the caller's (it closes the connection or fails the send). */
int rp_net_dispatch(rp_net_t *net, rp_net_msg_t *msg, bool from_wire);
void rp_net_wake(rp_net_t *net);

/* conn.c */
int rp_net_conn_dial(rp_net_t *net, rp_net_peer_t *p);
void rp_net_conn_accept(rp_net_t *net);
void rp_net_conn_event(rp_net_conn_t *c, uint32_t events);
/* Closes c (network thread): detaches it from its peer, fails the waiters watching the peer, schedules a
 * re-dial when this side dials, logs `why` at `level`. */
void rp_net_conn_close(rp_net_conn_t *c, int level, const char *fmt, ...) RP_PRINTF(3, 4);
/* Sends one frame: header built here from the arguments, payload from iov. The caller holds the peer's
 * lock when c is attached. Writes directly when nothing is queued, queues what the socket does not take.
 * Returns 0, RP_EAGAIN (queue full; nothing sent) or RP_ECLOSED, with a report. */
int rp_net_conn_send(rp_net_conn_t *c, uint16_t type, uint64_t req_id, const struct iovec *iov, int iovcnt,
                     size_t len);
/* Runs timers of every connection and dial: handshake deadlines, PINGs, idle links, re-dials. Returns
 * the time of the next timer. */
uint64_t rp_net_conn_timers(rp_net_t *net, uint64_t now);
void rp_net_conn_free(rp_net_conn_t *c);
/* Attaches an authenticated connection to its peer (under the peer lock, with the AUTH_OK for the
 * acceptor sent in the same critical section, so it precedes every caller frame). */
void rp_net_conn_establish(rp_net_conn_t *c);

/* handshake.c */
void rp_net_hs_start(rp_net_conn_t *c);    /* initiator, connected: send HELLO */
/* A frame on a connection that is not established (takes msg). Afterwards the connection may be
 * established or closed: the caller checks c->state. */
void rp_net_hs_frame(rp_net_conn_t *c, rp_net_msg_t *msg);
/* Sends REFUSE(reason) best effort and closes c with a WARNING that names the check. */
void rp_net_hs_refuse(rp_net_conn_t *c, rp_net_refusal_t reason, const char *fmt, ...) RP_PRINTF(3, 4);

/* wait.c */
void rp_net_waiters_init(rp_net_t *net);
void rp_net_waiters_destroy(rp_net_t *net);
/* Gives a reply to its waiter; false when there is none (the caller routes it as a late reply). */
bool rp_net_waiter_complete(rp_net_t *net, rp_net_msg_t *msg);
/* Fails every waiter watching peer (peer = RP_NET_ANY: every waiter) with err. */
void rp_net_waiters_fail(rp_net_t *net, int peer, int err);
/* A reply without a waiter: the reply type's handler, or dropped. */
void rp_net_late_reply(rp_net_t *net, rp_net_msg_t *msg);

#endif
