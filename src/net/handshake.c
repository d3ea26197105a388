/*
 * handshake.c - authentication of a new connection: HELLO both ways, HMAC-SHA256 proofs, AUTH_OK
 *
 *   A: rp_net_hs_start()  HELLO(version, uuid, id A, epoch, nonce_a)              -> B: acceptor_hello()
 *   B: acceptor_hello()   HELLO(version, uuid, id B, epoch, nonce_b, mac_b)       -> A: initiator_hello()
 *   A: initiator_hello()  AUTH(mac_a)                                             -> B: acceptor_auth()
 *   B: acceptor_auth()    AUTH_OK, via rp_net_conn_establish()                    -> A: initiator_auth_ok()
 *
 *   mac_b = HMAC-SHA256(secret, 'B' | id A | id B | uuid | nonce_a | nonce_b)
 *   mac_a = HMAC-SHA256(secret, 'A' | id A | id B | uuid | nonce_b | nonce_a)
 *
 * Each side proves it knows the secret over the other side's fresh nonce, so a recorded handshake is
 * useless later; the role byte keeps B's proof from being reflected back as A's. A (the initiator) checks
 * B before it sends its own proof, so a stranger posing as B learns no MAC over a nonce of its choice.
 *
 * Every check that fails sends REFUSE(reason) (so the other side's log says why too) and closes with a
 * WARNING naming the peer's address and the check: wrong protocol version, wrong cluster UUID, unknown
 * instance id, instance id already connected, wrong secret. No caller frame is parsed before
 * rp_net_conn_establish(): the receive parser's length bound stays at RP_NET_PREAUTH_MAX_PAYLOAD and any
 * type other than the handshake's is a refusal.
 *
 * Interface:
 *   rp_net_hello_encode(), rp_net_hello_decode()   the HELLO payload
 *   rp_net_auth_mac(), rp_net_auth_verify()        the proofs (OpenSSL HMAC, CRYPTO_memcmp)
 *   rp_net_refusal_text()                          reason codes
 *   rp_net_hs_start(), rp_net_hs_frame()           the state machine, driven by conn.c
 *   rp_net_hs_refuse()                             refuse and close
 */
#include "net/net_int.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

const char *rp_net_refusal_text(int reason)
{
    switch (reason) {
    case RP_NET_REFUSE_PROTOCOL:
        return "protocol error";
    case RP_NET_REFUSE_VERSION:
        return "wrong protocol version";
    case RP_NET_REFUSE_UUID:
        return "wrong cluster UUID";
    case RP_NET_REFUSE_UNKNOWN_ID:
        return "unknown instance id";
    case RP_NET_REFUSE_DUPLICATE:
        return "instance id already connected";
    case RP_NET_REFUSE_SECRET:
        return "wrong secret";
    case RP_NET_REFUSE_SHUTDOWN:
        return "shutting down";
    case RP_NET_REFUSE_BUSY:
        return "too many connections in their handshake";
    }
    return "unknown reason";
}

static const char *refusal_hint(rp_net_refusal_t reason)
{
    switch (reason) {
    case RP_NET_REFUSE_VERSION:
        return "Run the same respool release on every instance of a cluster.";
    case RP_NET_REFUSE_UUID:
        return "The peer uses another volume than this instance: check `volume` in both cluster.conf files "
               "(`respoolctl volume check` prints a volume's UUID).";
    case RP_NET_REFUSE_UNKNOWN_ID:
        return "Every instance must use the same cluster.conf; an id must be listed as [instance.N].";
    case RP_NET_REFUSE_DUPLICATE:
        return "Two processes may run as the same instance id; check `respoolctl query` and the hosts' "
               "process lists.";
    case RP_NET_REFUSE_SECRET:
        return "The instances read different secret files: copy the same cluster.key (mode 0600) to every "
               "host.";
    case RP_NET_REFUSE_PROTOCOL:
        return "Something that is not a respool instance of this release talks to the cluster port.";
    default:
        return "";
    }
}

static void format_uuid(const uint8_t u[16], char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
             u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

size_t rp_net_hello_encode(const rp_net_hello_t *h, unsigned char *buf)
{
    rp_put_le16(buf + 0, h->version);
    rp_put_le16(buf + 2, h->id);
    rp_put_le32(buf + 4, h->flags);
    memcpy(buf + 8, h->uuid, 16);
    rp_put_le64(buf + 24, h->epoch);
    memcpy(buf + 32, h->nonce, RP_NET_NONCE_LEN);
    if (!h->has_mac)
        return RP_NET_HELLO_LEN;
    memcpy(buf + 64, h->mac, RP_NET_MAC_LEN);
    return RP_NET_HELLO_MAC_LEN;
}

int rp_net_hello_decode(const unsigned char *buf, size_t len, rp_net_hello_t *h)
{
    memset(h, 0, sizeof(*h));
    if (len != RP_NET_HELLO_LEN && len != RP_NET_HELLO_MAC_LEN)
        return rp_error(RP_EPROTO, "HELLO of %zu bytes; it has %d or %d", len, RP_NET_HELLO_LEN,
                        RP_NET_HELLO_MAC_LEN);
    h->version = rp_get_le16(buf + 0);
    h->id = rp_get_le16(buf + 2);
    h->flags = rp_get_le32(buf + 4);
    memcpy(h->uuid, buf + 8, 16);
    h->epoch = rp_get_le64(buf + 24);
    memcpy(h->nonce, buf + 32, RP_NET_NONCE_LEN);
    h->has_mac = len == RP_NET_HELLO_MAC_LEN;
    if (h->has_mac)
        memcpy(h->mac, buf + 64, RP_NET_MAC_LEN);
    return 0;
}

int rp_net_auth_mac(const unsigned char secret[RP_CLUSTER_SECRET_LEN], char role, uint16_t initiator,
                    uint16_t acceptor, const uint8_t uuid[16], const uint8_t first[RP_NET_NONCE_LEN],
                    const uint8_t second[RP_NET_NONCE_LEN], uint8_t mac[RP_NET_MAC_LEN])
{
    unsigned char in[1 + 2 + 2 + 16 + 2 * RP_NET_NONCE_LEN];
    in[0] = (unsigned char)role;
    rp_put_le16(in + 1, initiator);
    rp_put_le16(in + 3, acceptor);
    memcpy(in + 5, uuid, 16);
    memcpy(in + 21, first, RP_NET_NONCE_LEN);
    memcpy(in + 21 + RP_NET_NONCE_LEN, second, RP_NET_NONCE_LEN);
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), secret, RP_CLUSTER_SECRET_LEN, in, sizeof(in), mac, &maclen) ||
        maclen != RP_NET_MAC_LEN) {
        memset(mac, 0, RP_NET_MAC_LEN);
        return rp_error(RP_ESYS, "HMAC-SHA256 failed in OpenSSL");
    }
    return 0;
}

bool rp_net_auth_verify(const unsigned char secret[RP_CLUSTER_SECRET_LEN], char role, uint16_t initiator,
                        uint16_t acceptor, const uint8_t uuid[16], const uint8_t first[RP_NET_NONCE_LEN],
                        const uint8_t second[RP_NET_NONCE_LEN], const uint8_t mac[RP_NET_MAC_LEN])
{
    uint8_t want[RP_NET_MAC_LEN];
    if (rp_net_auth_mac(secret, role, initiator, acceptor, uuid, first, second, want) != 0)
        return false;
    return CRYPTO_memcmp(want, mac, RP_NET_MAC_LEN) == 0;
}

static void make_nonce(uint8_t nonce[RP_NET_NONCE_LEN])
{
    size_t have = 0;
    while (have < RP_NET_NONCE_LEN) {
        ssize_t n = getrandom(nonce + have, RP_NET_NONCE_LEN - have, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rp_panic(NET_SUB, "getrandom failed: %s", strerror(errno)); /* no safe nonce, no handshake */
        }
        have += (size_t)n;
    }
}

static int send_control(rp_net_conn_t *c, uint16_t type, const void *payload, size_t len)
{
    struct iovec iov = {.iov_base = (void *)payload, .iov_len = len};
    return rp_net_conn_send(c, type, 0, &iov, len ? 1 : 0, len);
}

void rp_net_hs_refuse(rp_net_conn_t *c, rp_net_refusal_t reason, const char *fmt, ...)
{
    rp_net_t *net = c->net;
    char detail[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);

    if (c->initiator)
        rp_error(RP_EAUTH, "refused connection to instance %d at %s: %s", c->peer, c->addr,
                 rp_net_refusal_text(reason));
    else if (c->peer >= 0)
        rp_error(RP_EAUTH, "refused connection from instance %d at %s: %s", c->peer, c->addr,
                 rp_net_refusal_text(reason));
    else
        rp_error(RP_EAUTH, "refused connection from %s: %s", c->addr, rp_net_refusal_text(reason));
    rp_error_detail("%s", detail);
    rp_error_hint("%s", refusal_hint(reason));
    rp_log_report(RP_LOG_WARNING, NET_SUB);

    unsigned char payload[2];
    rp_put_le16(payload, (uint16_t)reason);
    send_control(c, RP_NET_T_REFUSE, payload, sizeof(payload));
    atomic_fetch_add(&net->handshake_failures, 1);
    if (c->peer >= 0)
        atomic_fetch_add(&net->peers[c->peer].handshake_failures, 1);
    rp_net_conn_close(c, RP_LOG_DEBUG, "%s: %s", rp_net_refusal_text(reason), detail);
}

static void fill_hello(rp_net_conn_t *c, rp_net_hello_t *h)
{
    memset(h, 0, sizeof(*h));
    h->version = RP_NET_VERSION;
    h->id = (uint16_t)c->net->self;
    memcpy(h->uuid, c->net->uuid, 16);
    h->epoch = rp_net_cur_epoch(c->net);
    memcpy(h->nonce, c->my_nonce, RP_NET_NONCE_LEN);
}

void rp_net_hs_start(rp_net_conn_t *c)
{
    rp_net_hello_t h;
    unsigned char buf[RP_NET_HELLO_MAC_LEN];
    make_nonce(c->my_nonce);
    fill_hello(c, &h);
    size_t n = rp_net_hello_encode(&h, buf);
    c->state = CONN_HELLO_SENT;
    if (send_control(c, RP_NET_T_HELLO, buf, n) != 0)
        rp_net_conn_close(c, RP_LOG_WARNING, "could not send HELLO: %s", rp_last_error()->message);
}

/* Checks shared by both sides' HELLO: version, cluster, addressing. Refuses and returns false on a
 * mismatch. */
static bool check_hello(rp_net_conn_t *c, const rp_net_msg_t *msg, const rp_net_hello_t *h)
{
    rp_net_t *net = c->net;
    if (h->version != RP_NET_VERSION) {
        rp_net_hs_refuse(c, RP_NET_REFUSE_VERSION, "The peer speaks protocol version %u, this instance speaks %u.",
                         h->version, RP_NET_VERSION);
        return false;
    }
    if (memcmp(h->uuid, net->uuid, 16) != 0) {
        char theirs[37], ours[37];
        format_uuid(h->uuid, theirs);
        format_uuid(net->uuid, ours);
        rp_net_hs_refuse(c, RP_NET_REFUSE_UUID, "The peer belongs to cluster %s, this instance to cluster %s.",
                         theirs, ours);
        return false;
    }
    if (msg->src != h->id || msg->dst != net->self) {
        rp_net_hs_refuse(c, RP_NET_REFUSE_PROTOCOL,
                         "HELLO of instance %u travels in a frame from %u to %u; this is instance %d.", h->id,
                         msg->src, msg->dst, net->self);
        return false;
    }
    return true;
}

/* Whether the established connection to a peer is still alive. A restarted peer re-dials before this
 * side has read the old connection's end-of-file; peeking tells a dead connection from a live one. */
static bool established_alive(rp_net_conn_t *old)
{
    unsigned char b;
    ssize_t n = recv(old->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
        return true;
    rp_net_conn_close(old, RP_LOG_WARNING, "the connection ended (%s), and the peer connected again",
                      n == 0 ? "end of file" : strerror(errno));
    return false;
}

/* True when peer id already has an established connection that is alive: refuses c. */
static bool refuse_duplicate(rp_net_conn_t *c, int id)
{
    rp_net_peer_t *p = &c->net->peers[id];
    rp_net_conn_t *old = NULL;
    pthread_mutex_lock(&p->lock);
    old = p->conn;
    pthread_mutex_unlock(&p->lock);
    /* p->conn changes only on this (the network) thread, so old stays valid after the unlock */
    if (old && old != c && established_alive(old)) {
        rp_net_hs_refuse(c, RP_NET_REFUSE_DUPLICATE, "Instance %d is connected already, from %s.", id,
                         old->addr);
        return true;
    }
    return false;
}

static void acceptor_hello(rp_net_conn_t *c, const rp_net_msg_t *msg)
{
    rp_net_t *net = c->net;
    rp_net_hello_t h;
    if (rp_net_hello_decode(msg->payload, msg->len, &h) != 0 || h.has_mac) {
        rp_net_hs_refuse(c, RP_NET_REFUSE_PROTOCOL, "A HELLO of %u bytes; an initiator's has %d.", msg->len,
                         RP_NET_HELLO_LEN);
        return;
    }
    if (!check_hello(c, msg, &h))
        return;
    if (h.id >= RP_VOLUME_MAX_INSTANCES || !net->peers[h.id].member || h.id == net->self) {
        rp_net_hs_refuse(c, RP_NET_REFUSE_UNKNOWN_ID,
                         "The peer says it is instance %u, which is %s in the cluster configuration.", h.id,
                         h.id == net->self ? "this instance's own id" : "not a member");
        return;
    }
    if (h.id > net->self) {
        rp_net_hs_refuse(c, RP_NET_REFUSE_PROTOCOL,
                         "Instance %u dialed instance %d; the member with the lower id dials.", h.id, net->self);
        return;
    }
    if (refuse_duplicate(c, h.id))
        return;
    rp_net_peer_t *p = &net->peers[h.id];
    if (p->pending && p->pending != c) /* the initiator gave up on that one: it dials one at a time */
        rp_net_conn_close(p->pending, RP_LOG_INFO, "replaced by a newer connection from instance %u", h.id);
    c->peer = h.id;
    p->pending = c;
    memcpy(c->peer_nonce, h.nonce, RP_NET_NONCE_LEN);

    rp_net_hello_t mine;
    unsigned char buf[RP_NET_HELLO_MAC_LEN];
    make_nonce(c->my_nonce);
    fill_hello(c, &mine);
    mine.has_mac = true;
    if (rp_net_auth_mac(net->secret, 'B', h.id, (uint16_t)net->self, net->uuid, c->peer_nonce, c->my_nonce,
                        mine.mac) != 0) {
        rp_net_conn_close(c, RP_LOG_WARNING, "%s", rp_last_error()->message);
        return;
    }
    size_t n = rp_net_hello_encode(&mine, buf);
    c->state = CONN_WAIT_AUTH;
    if (send_control(c, RP_NET_T_HELLO, buf, n) != 0)
        rp_net_conn_close(c, RP_LOG_WARNING, "could not send HELLO: %s", rp_last_error()->message);
}

static void acceptor_auth(rp_net_conn_t *c, const rp_net_msg_t *msg)
{
    rp_net_t *net = c->net;
    if (msg->len != RP_NET_MAC_LEN) {
        rp_net_hs_refuse(c, RP_NET_REFUSE_PROTOCOL, "An AUTH of %u bytes; it has %d.", msg->len, RP_NET_MAC_LEN);
        return;
    }
    if (!rp_net_auth_verify(net->secret, 'A', (uint16_t)c->peer, (uint16_t)net->self, net->uuid, c->my_nonce,
                            c->peer_nonce, msg->payload)) {
        rp_net_hs_refuse(c, RP_NET_REFUSE_SECRET,
                         "Instance %d's proof does not match this instance's cluster secret.", c->peer);
        return;
    }
    if (refuse_duplicate(c, c->peer))
        return;
    rp_net_conn_establish(c);
}

static void initiator_hello(rp_net_conn_t *c, const rp_net_msg_t *msg)
{
    rp_net_t *net = c->net;
    rp_net_hello_t h;
    if (rp_net_hello_decode(msg->payload, msg->len, &h) != 0 || !h.has_mac) {
        rp_net_hs_refuse(c, RP_NET_REFUSE_PROTOCOL, "A HELLO of %u bytes; an acceptor's has %d.", msg->len,
                         RP_NET_HELLO_MAC_LEN);
        return;
    }
    if (!check_hello(c, msg, &h))
        return;
    if (h.id != c->peer) {
        rp_net_hs_refuse(c, RP_NET_REFUSE_UNKNOWN_ID,
                         "This instance dialed instance %d at %s, and the peer says it is instance %u.", c->peer,
                         c->addr, h.id);
        return;
    }
    memcpy(c->peer_nonce, h.nonce, RP_NET_NONCE_LEN);
    if (!rp_net_auth_verify(net->secret, 'B', (uint16_t)net->self, h.id, net->uuid, c->my_nonce, c->peer_nonce,
                            h.mac)) {
        rp_net_hs_refuse(c, RP_NET_REFUSE_SECRET,
                         "Instance %d's proof does not match this instance's cluster secret.", c->peer);
        return;
    }
    uint8_t mac[RP_NET_MAC_LEN];
    if (rp_net_auth_mac(net->secret, 'A', (uint16_t)net->self, h.id, net->uuid, c->peer_nonce, c->my_nonce,
                        mac) != 0) {
        rp_net_conn_close(c, RP_LOG_WARNING, "%s", rp_last_error()->message);
        return;
    }
    c->state = CONN_AUTH_SENT;
    if (send_control(c, RP_NET_T_AUTH, mac, sizeof(mac)) != 0)
        rp_net_conn_close(c, RP_LOG_WARNING, "could not send AUTH: %s", rp_last_error()->message);
}

static void refused_by_peer(rp_net_conn_t *c, const rp_net_msg_t *msg)
{
    int reason = msg->len == 2 ? rp_get_le16(msg->payload) : 0;
    atomic_fetch_add(&c->net->handshake_failures, 1);
    if (c->peer >= 0)
        atomic_fetch_add(&c->net->peers[c->peer].handshake_failures, 1);
    if (c->peer >= 0)
        rp_error(RP_EAUTH, "instance %d at %s refused the handshake: %s", c->peer, c->addr,
                 rp_net_refusal_text(reason));
    else
        rp_error(RP_EAUTH, "the peer at %s refused the handshake: %s", c->addr, rp_net_refusal_text(reason));
    rp_error_hint("The peer's log names the check that failed and what it found.");
    rp_log_report(RP_LOG_WARNING, NET_SUB);
    rp_net_conn_close(c, RP_LOG_DEBUG, "refused by the peer: %s", rp_net_refusal_text(reason));
}

void rp_net_hs_frame(rp_net_conn_t *c, rp_net_msg_t *msg)
{
    if (msg->type == RP_NET_T_REFUSE) {
        refused_by_peer(c, msg);
    } else if (c->state == CONN_WAIT_HELLO && msg->type == RP_NET_T_HELLO) {
        acceptor_hello(c, msg);
    } else if (c->state == CONN_WAIT_AUTH && msg->type == RP_NET_T_AUTH) {
        acceptor_auth(c, msg);
    } else if (c->state == CONN_HELLO_SENT && msg->type == RP_NET_T_HELLO) {
        initiator_hello(c, msg);
    } else if (c->state == CONN_AUTH_SENT && msg->type == RP_NET_T_AUTH_OK && msg->len == 0) {
        rp_net_conn_establish(c);
    } else {
        rp_net_hs_refuse(c, RP_NET_REFUSE_PROTOCOL,
                         "A frame of type 0x%04x (%u bytes) arrived before the handshake completed.", msg->type,
                         msg->len);
    }
    rp_net_msg_free(msg);
}
