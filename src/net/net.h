/*
 * net.h - the transport between instances (library-internal; see src/net/README.md)
 *
 * One TCP connection per pair of members, dialed by the lower id, authenticated both ways with the
 * cluster secret before a single caller frame is read, and carrying framed messages in both directions.
 * The cache fusion layer (src/dcs) and the directory (src/drc) talk to other instances through this file
 * only: they register handlers for their message types, send asynchronously, and wait for replies by
 * request id, whichever member the reply comes from.
 *
 * Message types: 0..RP_NET_TYPE_USER-1 belong to the transport (handshake, PING/PONG); callers use
 * RP_NET_TYPE_USER..RP_NET_TYPE_MAX-1. A type with RP_NET_REPLY set is a reply: it completes the waiter
 * registered (rp_net_expect) for its request id; a reply that finds no waiter (the caller timed out or
 * cancelled) goes to the handler registered for the reply type, or is dropped with a debug line.
 *
 * Threads: one network thread reads every connection, completes waiters and runs the non-blocking
 * handlers; a small pool runs the handlers registered RP_NET_BLOCKING. Any thread may send, call, expect
 * and wait. Handlers run with no lock of this layer held, so they may send.
 *
 * Interface:
 *   rp_net_create(), rp_net_destroy()       an instance's transport (resolves every member's address)
 *   rp_net_register()                       a handler for a message type (before rp_net_start)
 *   rp_net_start(), rp_net_stop()           listen, dial, run the threads; close everything
 *   rp_net_send(), rp_net_sendv()           send a message (asynchronous, never blocks for long)
 *   rp_net_request_id()                     a fresh request id
 *   rp_net_expect(), rp_net_expect_from()   register a waiter for a reply
 *   rp_net_wait(), rp_net_cancel()          wait for it until a deadline; give up on it
 *   rp_net_call(), rp_net_callv()           expect + send + wait
 *   rp_net_msg_free()                       free a received message
 *   rp_net_connected()                      whether a member is reachable now
 *   rp_net_peer_stats(), rp_net_stats()     counters for INFO and `respoolctl stats`
 *   rp_net_self(), rp_net_epoch()           who this is, the epoch frames are stamped with
 */
#ifndef RP_NET_H
#define RP_NET_H

#include "respool/cluster.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define RP_NET_REPLY 0x8000u          /* type bit: this message answers a request id */
#define RP_NET_TYPE_USER 16           /* first caller type; below are the transport's own */
#define RP_NET_TYPE_MAX 1024          /* caller types are < this (the reply bit aside) */
#define RP_NET_MAX_PAYLOAD (1024u * 1024u + 64u * 1024u) /* 1 MiB and a page, at most */
#define RP_NET_MAX_IOV 64             /* iovec entries of one rp_net_sendv() */
#define RP_NET_ANY (-1)               /* rp_net_expect_from(): any member may answer */

/* rp_net_register() flags */
#define RP_NET_BLOCKING 0x1u          /* may wait (for a page latch, the WAL): runs on the worker pool */

typedef struct rp_net rp_net_t;

/* A received message. The payload (len bytes, 64-byte aligned, never NULL) lives in the same allocation
 * and is owned by whoever owns the message: a handler or a waiter's caller frees it with
 * rp_net_msg_free(), when it no longer needs the payload. */
typedef struct rp_net_msg {
    uint16_t type;                    /* with RP_NET_REPLY for replies */
    uint16_t src;                     /* sender's instance id (authenticated: the connection's peer) */
    uint16_t dst;                     /* this instance */
    uint32_t len;                     /* payload bytes */
    uint64_t epoch;                   /* the sender's epoch when it sent the message */
    uint64_t req_id;                  /* request id (0 = none) */
    unsigned char *payload;
    struct rp_net_msg *next;          /* internal: queue link */
} rp_net_msg_t;

/* A handler owns msg and must free it (rp_net_msg_free) or keep it. Non-blocking handlers run on the
 * network thread: they must not wait for anything (no latch, no I/O, no rp_net_wait), or every
 * connection of this instance stalls. */
typedef void (*rp_net_handler_fn)(rp_net_t *net, rp_net_msg_t *msg, void *arg);

typedef struct rp_net_config {
    int self;                          /* this instance's id: a member of cluster */
    const rp_cluster_config_t *cluster; /* members, their hosts and cluster ports, the secret; read by
                                          rp_net_create only (what is needed is copied) */
    uint8_t uuid[16];                  /* the cluster UUID (the volume's superblock) */
    _Atomic uint64_t *epoch;           /* the cluster epoch, read for every frame; NULL: fixed at 0.
                                          Must outlive the rp_net_t. */
    int workers;                       /* threads for blocking handlers; 0 = 2 */
    size_t send_queue_limit;           /* bytes queued per connection before sends fail with RP_EAGAIN;
                                          0 = 8 MiB (at least one maximal frame is always accepted) */
    /* Timings; 0 = the default. Tests shorten them. */
    unsigned heartbeat_ms;             /* a PING per link this often (1000) */
    unsigned idle_timeout_ms;          /* a link silent this long is closed (5000) */
    unsigned handshake_timeout_ms;     /* connect + handshake must finish within this (2000) */
    int spin_us;                       /* rp_net_wait polls this long before it sleeps, when it is the only
                                          waiter and replies have been coming back faster (100); < 0: never */
} rp_net_config_t;

/* Per peer, for INFO and `respoolctl stats`. A snapshot: counters are read without stopping traffic. */
typedef struct rp_net_peer_stats {
    int id;
    bool self;                         /* this instance (always "connected") */
    bool connected;
    bool initiator;                    /* this side dialed (lower id) */
    char addr[80];                     /* "host:cluster-port" as configured */
    uint64_t since_ms;                 /* wall clock of the last connect or disconnect, 0 = never */
    char last_error[256];              /* why the last connection attempt or connection ended, or "" */
    uint64_t rtt_us;                   /* smoothed PING/PONG round trip (0 = not measured yet) */
    uint64_t rtt_last_us;              /* the latest sample */
    uint64_t frames_in, frames_out, bytes_in, bytes_out;   /* bytes include frame headers */
    uint64_t connects;                 /* handshakes completed */
    uint64_t handshake_failures;       /* refusals and failed handshakes with this member */
    uint64_t dropped_epoch;            /* frames of another epoch, dropped */
    uint64_t send_queue_bytes;         /* bytes waiting for the socket now */
    uint64_t send_eagain;              /* sends refused because the queue was full */
} rp_net_peer_stats_t;

typedef struct rp_net_stats {
    uint64_t late_replies;             /* replies without a waiter, given to the reply type's handler */
    uint64_t dropped_replies;          /* replies without waiter or handler */
    uint64_t dropped_epoch;            /* frames of another epoch (all peers) */
    uint64_t handshake_failures;       /* all refusals, including connections that never named a member */
    uint64_t protocol_errors;          /* connections closed for a bad frame after authentication */
    uint64_t worker_queue;             /* messages waiting for a blocking-handler thread now */
    uint64_t waiters;                  /* registered waiters now */
} rp_net_stats_t;

/* Resolves every member's host and checks the configuration (self is a member, ports set, at most
 * RP_VOLUME_MAX_INSTANCES members). Nothing is bound or started yet.
 * Returns 0 and *out, or RP_EINVAL / RP_ECONFIG / RP_ENOMEM with a report. */
int rp_net_create(const rp_net_config_t *cfg, rp_net_t **out);

/* Registers fn for type. type is a caller type (RP_NET_TYPE_USER <= type & ~RP_NET_REPLY <
 * RP_NET_TYPE_MAX); registering type | RP_NET_REPLY receives replies that found no waiter. Only before
 * rp_net_start (the table is read without locks afterwards). A request type without a handler is a
 * protocol error when it arrives (the connection is closed): every instance runs the same handlers.
 * Returns 0, RP_EINVAL (bad type or flags), RP_EEXIST (already registered) or RP_EBUSY (started). */
int rp_net_register(rp_net_t *net, uint16_t type, unsigned flags, rp_net_handler_fn fn, void *arg);

/* Binds the listener on this member's host and cluster-port, starts the network thread (which dials the
 * members with higher ids) and the workers. Returns 0, or RP_EBUSY (port in use) / RP_ESYS with a report
 * naming the address. Once only: after rp_net_stop, destroy and create a new one. */
int rp_net_start(rp_net_t *net);

/* Closes the listener and every connection (peers see the link drop at once), stops the threads, fails
 * every waiter with RP_ESHUTDOWN and frees queued messages. Later sends return RP_ESHUTDOWN. Must not be
 * called from a handler. Idempotent. */
void rp_net_stop(rp_net_t *net);

/* Stops if needed and frees everything. No other call may run concurrently or follow. */
void rp_net_destroy(rp_net_t *net);

/* Sends a message of a caller type to member dst, stamped with the current epoch. Asynchronous: returns
 * once the frame is written to the socket or queued for the network thread; the payload may be reused at
 * once. rp_net_sendv gathers the payload from iov (at most RP_NET_MAX_IOV entries) without copying it when
 * the socket accepts the bytes (pages go from the buffer pool to the kernel directly). dst == self
 * delivers locally (a copy) through the same dispatch as a received frame.
 * Returns 0, or (with a report):
 *   RP_ECONNREFUSED  dst is not connected now (names it and why the last connection ended)
 *   RP_EAGAIN        the connection's send queue is full (the peer does not read)
 *   RP_ECLOSED       the connection broke while writing
 *   RP_ETOOBIG       payload larger than RP_NET_MAX_PAYLOAD
 *   RP_EINVAL        bad dst or type, or (self-delivery) no handler for type
 *   RP_ESHUTDOWN     rp_net_stop was called
 * Thread-safe; callable from handlers. Holds the connection's mutex only for a non-blocking write. */
int rp_net_send(rp_net_t *net, int dst, uint16_t type, uint64_t req_id, const void *payload, size_t len);
int rp_net_sendv(rp_net_t *net, int dst, uint16_t type, uint64_t req_id, const struct iovec *iov, int iovcnt);

/* A request id no other call of this instance has used (never 0). The sequence starts at a random point,
 * so replies meant for an earlier incarnation of this instance do not match. */
uint64_t rp_net_request_id(rp_net_t *net);

/* Registers a waiter for the reply to req_id, before the request is sent (a fast reply must find it).
 * rp_net_expect_from(peer) also fails the wait with RP_ECLOSED as soon as the connection to peer drops;
 * rp_net_expect is rp_net_expect_from(RP_NET_ANY): for replies that may come from a third member, it
 * ends only with the reply or the deadline. Returns 0, RP_EEXIST (already expected), RP_ESHUTDOWN. */
int rp_net_expect(rp_net_t *net, uint64_t req_id);
int rp_net_expect_from(rp_net_t *net, uint64_t req_id, int peer);

/* Waits for the reply to an expected request id until deadline_ns (rp_now_ns() clock). Always consumes
 * the waiter. Returns 0 and *reply (the caller frees it), or with a report: RP_ETIMEDOUT (a reply that
 * arrives later goes to the reply type's handler), RP_ECLOSED (the watched peer disconnected),
 * RP_ESHUTDOWN, RP_ENOENT (req_id was not expected). */
int rp_net_wait(rp_net_t *net, uint64_t req_id, uint64_t deadline_ns, rp_net_msg_t **reply);

/* Gives up on an expected request id. A reply that already arrived goes to the reply type's handler as
 * a late reply (a page the directory granted must still be installed); returns 0 or RP_ENOENT. Must not
 * run concurrently with rp_net_wait on the same id (the waiter belongs to one thread). */
int rp_net_cancel(rp_net_t *net, uint64_t req_id);

/* expect_from(dst) + send(type, fresh request id) + wait: returns what they return (a failed send cancels
 * the waiter and keeps the send's report). The reply's type is type | RP_NET_REPLY by convention, not
 * checked. rp_net_callv's *req_id_out (may be NULL) receives the request id. A call must not be made from
 * a non-blocking handler: its reply would need the network thread it occupies. */
int rp_net_call(rp_net_t *net, int dst, uint16_t type, const void *payload, size_t len, uint64_t deadline_ns,
                rp_net_msg_t **reply);
int rp_net_callv(rp_net_t *net, int dst, uint16_t type, const struct iovec *iov, int iovcnt,
                 uint64_t deadline_ns, uint64_t *req_id_out, rp_net_msg_t **reply);

void rp_net_msg_free(rp_net_msg_t *msg);

int rp_net_self(const rp_net_t *net);
uint64_t rp_net_epoch(const rp_net_t *net);
/* Whether a message to id would be sent now (self: always). */
bool rp_net_connected(rp_net_t *net, int id);
/* Returns 0, or RP_EINVAL when id is not a member. */
int rp_net_peer_stats(rp_net_t *net, int id, rp_net_peer_stats_t *out);
void rp_net_stats(rp_net_t *net, rp_net_stats_t *out);

#endif
