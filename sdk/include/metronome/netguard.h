/* SSRF guard for plugins that connect to addresses from configuration or
 * data: classifies a resolved address as one a public service must not reach
 * unless explicitly allowed - loopback, private, link-local (cloud metadata
 * included), CGNAT, multicast and reserved ranges, in IPv4 and IPv6 (mapped
 * addresses included). Header-only; libc only. */
#ifndef METRONOME_NETGUARD_H
#define METRONOME_NETGUARD_H

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* Returns a description of why addr is not public ("a loopback address"),
 * or NULL when it is a public address. */
static inline const char *mtr_ipv4_private(uint32_t a /* host order */)
{
    static const struct {
        uint32_t net, mask;
        const char *what;
    } ranges[] = {
        {0x00000000u, 0xff000000u, "a 'this network' address"},
        {0x0a000000u, 0xff000000u, "a private address"},
        {0x64400000u, 0xffc00000u, "a carrier-grade NAT address"},
        {0x7f000000u, 0xff000000u, "a loopback address"},
        {0xa9fe0000u, 0xffff0000u, "a link-local or cloud metadata address"},
        {0xac100000u, 0xfff00000u, "a private address"},
        {0xc0000000u, 0xffffff00u, "an IETF protocol address"},
        {0xc0a80000u, 0xffff0000u, "a private address"},
        {0xc6120000u, 0xfffe0000u, "a benchmarking address"},
        {0xe0000000u, 0xe0000000u, "a multicast or reserved address"},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++)
        if ((a & ranges[i].mask) == ranges[i].net)
            return ranges[i].what;
    return NULL;
}

static inline const char *mtr_ipv6_private(const unsigned char b[16])
{
    static const unsigned char zero[16];
    if (memcmp(b, zero, 15) == 0 && (b[15] == 1 || b[15] == 0))
        return "a loopback or unspecified address";
    if (memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff)
        return mtr_ipv4_private((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
                                (uint32_t)b[14] << 8 | b[15]);
    if ((b[0] & 0xfe) == 0xfc)
        return "a unique-local address (including cloud metadata)";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return "a link-local address";
    if (b[0] == 0xff)
        return "a multicast address";
    return NULL;
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

#endif
