/*
 * cluster_host.c - whether a member runs on this host, and the addresses it listens on
 *
 * `respoolctl cluster start|stop` act on the local members only, respoold refuses to start as a member
 * of another host, and the configuration check treats two members as "on one host" (ports must
 * differ) when both are local. "Local" means, in this order:
 *   1. a loopback name (localhost, localhost.localdomain, localhost6, ip6-localhost, ip6-loopback,
 *      anything under .localhost, RFC 6761) or a loopback address (127.0.0.0/8, ::1);
 *   2. an address of one of this host's interfaces (getifaddrs);
 *   3. this host's name (gethostname, case-insensitive, a final dot ignored);
 *   4. a name that resolves (getaddrinfo: /etc/hosts, then DNS) to an address of 1 or 2.
 * Step 4 is the only one that may wait for the network; it runs only for names that 1-3 did not settle.
 *
 * Interface:
 *   rp_cluster_member_is_local()   see above
 *   rp_cluster_member_bind()       the member's host as respoold's `bind` value
 */
#include "cm/cm_int.h"

#include "respool/error.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static bool loopback_name(const char *h)
{
    static const char *const names[] = {"localhost", "localhost.localdomain", "localhost6",
                                        "localhost6.localdomain6", "ip6-localhost", "ip6-loopback"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(h, names[i]) == 0)
            return true;
    size_t n = strlen(h);
    return n > 10 && strcasecmp(h + n - 10, ".localhost") == 0;
}

static bool sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return false;
}

/* Loopback, or the address of an interface of this host. */
static bool sockaddr_is_local(const struct sockaddr *sa)
{
    if (sockaddr_is_loopback(sa))
        return true;
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0)
        return false;
    bool found = false;
    for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next)
        if (i->ifa_addr && same_addr(i->ifa_addr, sa))
            found = true;
    freeifaddrs(ifs);
    return found;
}

/* Parses a literal IPv4/IPv6 address into *ss; false if h is not one. */
static bool literal(const char *h, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

static bool is_own_hostname(const char *h)
{
    char me[256] = {0};
    if (gethostname(me, sizeof(me) - 1) != 0 || !me[0])
        return false;
    size_t n = strlen(h);
    if (n && h[n - 1] == '.')
        n--;
    return strlen(me) == n && strncasecmp(me, h, n) == 0;
}

bool rp_cluster_member_is_local(const rp_cluster_member_t *m)
{
    const char *h = m->host;
    if (!h[0])
        return false;
    if (loopback_name(h))
        return true;
    struct sockaddr_storage ss;
    if (literal(h, &ss))
        return sockaddr_is_local((struct sockaddr *)&ss);
    if (is_own_hostname(h))
        return true;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(h, NULL, &hints, &res) != 0)
        return false;
    bool local = false;
    for (struct addrinfo *a = res; a && !local; a = a->ai_next)
        local = sockaddr_is_local(a->ai_addr);
    freeaddrinfo(res);
    return local;
}

static void append_addr(const struct sockaddr *sa, char *buf, size_t size)
{
    char text[INET6_ADDRSTRLEN];
    const void *src = sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                                               : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (!inet_ntop(sa->sa_family, src, text, sizeof(text)))
        return;
    /* once each: /etc/hosts often lists a name twice */
    size_t tl = strlen(text);
    for (const char *p = buf; (p = strstr(p, text)) != NULL; p += tl)
        if ((p == buf || p[-1] == ' ') && (p[tl] == ' ' || p[tl] == '\0'))
            return;
    size_t n = strlen(buf);
    snprintf(buf + n, size - n, "%s%s", n ? " " : "", text);
}

int rp_cluster_member_bind(const rp_cluster_member_t *m, char *buf, size_t size)
{
    buf[0] = '\0';
    struct sockaddr_storage ss;
    if (loopback_name(m->host)) {
        snprintf(buf, size, "127.0.0.1");
        return 0;
    }
    if (literal(m->host, &ss)) {
        if (sockaddr_is_local((struct sockaddr *)&ss)) {
            snprintf(buf, size, "%s", m->host);
            return 0;
        }
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
        if (getaddrinfo(m->host, NULL, &hints, &res) == 0) {
            for (struct addrinfo *a = res; a; a = a->ai_next) {
                if (a->ai_family == AF_INET6 &&
                    IN6_IS_ADDR_LINKLOCAL(&((const struct sockaddr_in6 *)a->ai_addr)->sin6_addr))
                    continue; /* not bindable without a scope */
                if (sockaddr_is_local(a->ai_addr))
                    append_addr(a->ai_addr, buf, size);
            }
            freeaddrinfo(res);
        }
        if (buf[0])
            return 0;
    }
    rp_error(RP_ECONFIG, "host \"%s\" of [instance.%d] is not this host", m->host, m->id);
    rp_error_detail("It is neither a loopback name or address, nor an address of this host's interfaces, nor a name "
                    "that resolves to one.");
    rp_error_hint("Start each member on the host its section names (`respoolctl cluster start` on that host), or "
                  "correct \"host\" in the cluster configuration.");
    return RP_ECONFIG;
}
