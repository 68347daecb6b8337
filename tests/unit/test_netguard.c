/* The SSRF guard against IANA's special-purpose registries: a table of
 * addresses, each public or refused, in IPv4 and in the IPv6 forms that
 * embed or map to IPv4 (mapped, IPv4-compatible, NAT64, 6to4). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <metronome/netguard.h>
#include <string.h>

struct row {
    const char *addr;
    int is_public;
};

static const struct row rows[] = {
    /* IPv4: public */
    {"8.8.8.8", 1},
    {"1.1.1.1", 1},
    {"93.184.216.34", 1},
    {"9.255.255.255", 1},
    {"11.0.0.0", 1},
    {"100.63.255.255", 1},
    {"100.128.0.0", 1},
    {"126.255.255.255", 1},
    {"128.0.0.0", 1},
    {"169.253.255.255", 1},
    {"172.15.255.255", 1},
    {"172.32.0.0", 1},
    {"192.0.0.9", 1},
    {"192.0.0.10", 1},
    {"192.0.1.1", 1},
    {"192.88.98.1", 1},
    {"192.167.255.255", 1},
    {"198.17.255.255", 1},
    {"198.20.0.0", 1},
    {"223.255.255.255", 1},
    /* IPv4: refused */
    {"0.0.0.0", 0},
    {"0.1.2.3", 0},
    {"10.0.0.1", 0},
    {"10.255.255.255", 0},
    {"100.64.0.1", 0},
    {"100.127.255.255", 0},
    {"127.0.0.1", 0},
    {"127.255.255.254", 0},
    {"169.254.169.254", 0},
    {"172.16.0.1", 0},
    {"172.31.255.255", 0},
    {"192.0.0.1", 0},
    {"192.0.0.170", 0},
    {"192.0.2.1", 0},
    {"192.88.99.1", 0},
    {"192.168.1.1", 0},
    {"198.18.0.1", 0},
    {"198.19.255.255", 0},
    {"198.51.100.7", 0},
    {"203.0.113.9", 0},
    {"224.0.0.1", 0},
    {"239.255.255.250", 0},
    {"240.0.0.1", 0},
    {"255.255.255.255", 0},
    /* IPv6: public */
    {"2606:4700:4700::1111", 1},
    {"2001:4860:4860::8888", 1},
    {"2a00:1450:4001:80b::200e", 1},
    {"2001:3::1", 1},
    {"2001:4:112::1", 1},
    {"2001:200::1", 1},
    {"3ffe::1", 1},
    {"::ffff:8.8.8.8", 1},
    {"64:ff9b::808:808", 1},
    {"2002:808:808::1", 1},
    /* IPv6: refused */
    {"::", 0},
    {"::1", 0},
    {"::127.0.0.1", 0},
    {"::8.8.8.8", 0},
    {"::a00:1", 0},
    {"::ffff:127.0.0.1", 0},
    {"::ffff:10.1.2.3", 0},
    {"::ffff:169.254.169.254", 0},
    {"64:ff9b::7f00:1", 0},
    {"64:ff9b::a9fe:a9fe", 0},
    {"64:ff9b::c0a8:101", 0},
    {"64:ff9b:1::808:808", 0},
    {"2002:7f00:1::1", 0},
    {"2002:a00:1::", 0},
    {"2002:c0a8:101::1", 0},
    {"2001::1", 0},
    {"2001:0:4136:e378:8000:63bf:3fff:fdd2", 0},
    {"2001:2::1", 0},
    {"2001:10::1", 0},
    {"2001:db8::1", 0},
    {"3fff::1", 0},
    {"100::1", 0},
    {"fc00::1", 0},
    {"fd00:ec2::254", 0},
    {"fe80::1", 0},
    {"febf::1", 0},
    {"fec0::1", 0},
    {"feff::1", 0},
    {"ff02::1", 0},
    {"4000::1", 0},
    {"1000::1", 0},
    {"5f00::1", 0},
    /* the edges of each prefix and of the embedded IPv4 (from the mutation pass) */
    {"::ffff:200.1.2.3", 1},
    {"::ffff:192.0.2.1", 0},
    {"::ffff:192.0.0.9", 1},
    {"::ffff:192.0.0.8", 0},
    {"64:ff9b::c801:203", 1},
    {"64:ff9b::c000:201", 0},
    {"2002:c000:9::1", 1},
    {"2002:c000:8::1", 0},
    {"4002:808:808::1", 0},
    {"2001:3:8000::1", 1},
    {"2001:4:112:8000::1", 1},
    {"2001:2f::1", 1},
    {"2001:30::1", 0},
    {"2001:1ff::1", 0},
    {"2001:200::1", 1},
};

/* The reason given, for addresses where two rules would both refuse. */
static const struct {
    const char *addr, *why;
} reasons[] = {
    {"::1", "a loopback address"},
    {"::", "the unspecified address"},
    {"::2", "an IPv4-compatible address (deprecated)"},
    {"::8.8.8.8", "an IPv4-compatible address (deprecated)"},
    {"::200.1.2.3", "an IPv4-compatible address (deprecated)"},
    {"0:1::1", "a reserved address (not global unicast)"},
    {"::1:0:0:1", "a reserved address (not global unicast)"},
    {"64:ff9b:1::1", "a local-use NAT64 address"},
    {"64:ff9b:1:ffff::1", "a local-use NAT64 address"},
    {"64:ff9b:2::1", "a reserved address (not global unicast)"},
    {"2001:100::1", "an IETF protocol address (Teredo, benchmarking, ...)"},
    {"2001:db8:8000::1", "a documentation address"},
    {"3fff:800::1", "a documentation address"},
    {"100::8000:0:0:1", "a discard-only address"},
    {"100:0:0:1::1", "a reserved address (not global unicast)"},
    {"fd00::1", "a unique-local address (including cloud metadata)"},
    {"febf::1", "a link-local address"},
    {"feff::1", "a site-local address (deprecated)"},
    {"ff80::1", "a multicast address"},
    {"::ffff:127.0.0.1", "a loopback address"},
    {"64:ff9b::a9fe:a9fe", "a link-local or cloud metadata address"},
    {"2002:c0a8:101::1", "a private address"},
};

Test(netguard, reasons)
{
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++) {
        unsigned char b6[16];
        cr_assert_eq(inet_pton(AF_INET6, reasons[i].addr, b6), 1, "%s", reasons[i].addr);
        const char *why = mtr_ipv6_private(b6);
        cr_expect(why && strcmp(why, reasons[i].why) == 0, "%s: got %s, want %s", reasons[i].addr,
                  why ? why : "public", reasons[i].why);
    }
}

Test(netguard, special_purpose_registries)
{
    size_t n = sizeof rows / sizeof *rows;
    cr_assert_geq(n, 60);
    for (size_t i = 0; i < n; i++) {
        const char *why = NULL;
        unsigned char b6[16];
        struct in_addr b4;
        if (inet_pton(AF_INET, rows[i].addr, &b4) == 1)
            why = mtr_ipv4_private(ntohl(b4.s_addr));
        else if (inet_pton(AF_INET6, rows[i].addr, b6) == 1)
            why = mtr_ipv6_private(b6);
        else
            cr_assert_fail("bad test address %s", rows[i].addr);
        cr_expect_eq(why == NULL, rows[i].is_public, "%s: expected %s, got %s", rows[i].addr,
                     rows[i].is_public ? "public" : "refused", why ? why : "public");
    }
}

Test(netguard, sockaddr_families)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    struct sockaddr un = {.sa_family = AF_UNIX};
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
    cr_expect_str_eq(mtr_address_private((struct sockaddr *)&in), "a loopback address");
    cr_expect_str_eq(mtr_address_private((struct sockaddr *)&in6), "a loopback address");
    cr_expect_str_eq(mtr_address_private(&un), "not an internet address");
}
