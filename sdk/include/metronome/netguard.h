/* SSRF guard for plugins that connect to addresses from configuration or
 * data: classifies a resolved address as one a public service must not reach
 * unless explicitly allowed. It follows IANA's IPv4 and IPv6 Special-Purpose
 * Address Registries: whatever is not globally reachable unicast is refused -
 * loopback, private, link-local (cloud metadata included), CGNAT, shared,
 * documentation, benchmarking, multicast and reserved ranges. IPv6 forms that
 * carry an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96,
 * 6to4 2002::/16) are judged by that IPv4 address; IPv6 outside global
 * unicast 2000::/3 is refused (IPv4-compatible ::a.b.c.d, site-local
 * fec0::/10, unique-local, discard-only, ...). Header-only; libc only. */
#ifndef METRONOME_NETGUARD_H
#define METRONOME_NETGUARD_H

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* Returns a description of why addr is not public ("a loopback address"),
 * or NULL when it is a public address. */
static inline const char *mtr_ipv4_private(uint32_t a /* host order */)
{
    static const struct {
        uint32_t net, mask;
        const char *what; /* NULL: globally reachable, an exception inside a range below */
    } ranges[] = {
        {0xc0000009u, 0xffffffffu, NULL}, /* 192.0.0.9: PCP anycast */
        {0xc000000au, 0xffffffffu, NULL}, /* 192.0.0.10: TURN anycast */
        {0x00000000u, 0xff000000u, "a 'this network' address"},
        {0x0a000000u, 0xff000000u, "a private address"},
        {0x64400000u, 0xffc00000u, "a carrier-grade NAT address"},
        {0x7f000000u, 0xff000000u, "a loopback address"},
        {0xa9fe0000u, 0xffff0000u, "a link-local or cloud metadata address"},
        {0xac100000u, 0xfff00000u, "a private address"},
        {0xc0000000u, 0xffffff00u, "an IETF protocol address"},
        {0xc0000200u, 0xffffff00u, "a documentation address"},
        {0xc0586300u, 0xffffff00u, "a deprecated 6to4 relay address"},
        {0xc0a80000u, 0xffff0000u, "a private address"},
        {0xc6120000u, 0xfffe0000u, "a benchmarking address"},
        {0xc6336400u, 0xffffff00u, "a documentation address"},
        {0xcb007100u, 0xffffff00u, "a documentation address"},
        {0xe0000000u, 0xf0000000u, "a multicast address"},
        {0xf0000000u, 0xf0000000u, "a reserved or broadcast address"},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++)
        if ((a & ranges[i].mask) == ranges[i].net)
            return ranges[i].what;
    return NULL;
}

/* The IPv4 address in bytes b[at..at+3], host order. */
static inline uint32_t mtr_netguard_v4(const unsigned char *b, int at)
{
    return (uint32_t)b[at] << 24 | (uint32_t)b[at + 1] << 16 | (uint32_t)b[at + 2] << 8 | b[at + 3];
}

/* Whether the first bits of b match prefix. */
static inline int mtr_netguard_in(const unsigned char b[16], const unsigned char prefix[16],
                                  int bits)
{
    for (int i = 0; i < bits / 8; i++)
        if (b[i] != prefix[i])
            return 0;
    unsigned char mask = (unsigned char)(0xff00u >> (bits % 8));
    return bits % 8 == 0 || (b[bits / 8] & mask) == (prefix[bits / 8] & mask);
}

static inline const char *mtr_ipv6_private(const unsigned char b[16])
{
    static const struct {
        unsigned char prefix[16];
        int bits;
        int v4_at;        /* >= 0: judged by the IPv4 address at this byte */
        const char *what; /* NULL (and v4_at < 0): globally reachable */
    } ranges[] = {
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, 12, NULL}, /* IPv4-mapped */
        {{0, 0x64, 0xff, 0x9b}, 96, 12, NULL},                      /* NAT64 well-known */
        {{0x20, 0x02}, 16, 2, NULL},                                /* 6to4 */
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, -1, "a loopback address"},
        {{0}, 128, -1, "the unspecified address"},
        {{0}, 96, -1, "an IPv4-compatible address (deprecated)"},
        {{0, 0x64, 0xff, 0x9b, 0, 1}, 48, -1, "a local-use NAT64 address"},
        {{0x20, 0x01, 0, 0x03}, 32, -1, NULL},             /* AMT */
        {{0x20, 0x01, 0, 0x04, 0x01, 0x12}, 48, -1, NULL}, /* AS112-v6 */
        {{0x20, 0x01, 0, 0x20}, 28, -1, NULL},             /* ORCHIDv2 */
        {{0x20, 0x01}, 23, -1, "an IETF protocol address (Teredo, benchmarking, ...)"},
        {{0x20, 0x01, 0x0d, 0xb8}, 32, -1, "a documentation address"},
        {{0x3f, 0xff}, 20, -1, "a documentation address"},
        {{0x20}, 3, -1, NULL}, /* the rest of global unicast */
        {{0x01}, 64, -1, "a discard-only address"},
        {{0xfc}, 7, -1, "a unique-local address (including cloud metadata)"},
        {{0xfe, 0x80}, 10, -1, "a link-local address"},
        {{0xfe, 0xc0}, 10, -1, "a site-local address (deprecated)"},
        {{0xff}, 8, -1, "a multicast address"},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
        if (!mtr_netguard_in(b, ranges[i].prefix, ranges[i].bits))
            continue;
        if (ranges[i].v4_at >= 0)
            return mtr_ipv4_private(mtr_netguard_v4(b, ranges[i].v4_at));
        return ranges[i].what;
    }
    return "a reserved address (not global unicast)";
}

static inline const char *mtr_address_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return mtr_ipv4_private(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return mtr_ipv6_private(in6->sin6_addr.s6_addr);
    }
    return "not an internet address";
}

/* Resolves host (a name or a literal address) and judges every address it
 * has, for a connection the guard cannot see: one made through a proxy, where
 * the socket goes to the proxy and only the proxy resolves the target.
 * Returns NULL when every address is public; otherwise writes why into buf
 * ("127.0.0.1 is a loopback address", "cannot resolve ...") and returns buf.
 * Blocks for the DNS answer. */
static inline const char *mtr_host_private(const char *host, char *buf, size_t len)
{
    struct addrinfo hints, *res = NULL;
    char name[256];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof name) {
        memcpy(name, host + 1, n - 2); /* a bracketed IPv6 literal */
        name[n - 2] = '\0';
        host = name;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(buf, len, "cannot resolve %s: %s", host, gai_strerror(rc));
        return buf;
    }
    const char *why = NULL;
    for (struct addrinfo *a = res; a && !why; a = a->ai_next) {
        why = mtr_address_private(a->ai_addr);
        if (why) {
            char ip[INET6_ADDRSTRLEN] = "?";
            const void *at =
                a->ai_family == AF_INET
                    ? (const void *)&((struct sockaddr_in *)(void *)a->ai_addr)->sin_addr
                    : (const void *)&((struct sockaddr_in6 *)(void *)a->ai_addr)->sin6_addr;
            inet_ntop(a->ai_family, at, ip, sizeof ip);
            snprintf(buf, len, "%s (%s) is %s", host, ip, why);
        }
    }
    freeaddrinfo(res);
    return why ? buf : NULL;
}

#endif
