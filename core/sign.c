/* Signing and identifiers, on libsodium. */
#include "sign.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int sign_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

static void to_hex(const unsigned char *bin, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bin[i] >> 4];
        out[2 * i + 1] = hex[bin[i] & 15];
    }
    out[2 * n] = '\0';
}

void hmac_sha256_hex(const char *key, size_t key_len, const char *msg, size_t msg_len,
                     char out[HEX_SHA256_LEN + 1])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, key_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, msg_len);
    crypto_auth_hmacsha256_final(&st, mac);
    to_hex(mac, sizeof mac, out);
    sodium_memzero(&st, sizeof st);
}

_Static_assert(sizeof(crypto_auth_hmacsha256_state) <= sizeof(((struct signer *)0)->state),
               "signer state too small");

void signer_init(struct signer *s, const char *key, size_t key_len)
{
    crypto_auth_hmacsha256_init((crypto_auth_hmacsha256_state *)(void *)s->state,
                                (const unsigned char *)key, key_len);
}

void signer_hex(const struct signer *s, const char *msg, size_t len, char out[HEX_SHA256_LEN + 1])
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    memcpy(&st, s->state, sizeof st);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    to_hex(mac, sizeof mac, out);
    sodium_memzero(&st, sizeof st);
}

static void format_uuid(const unsigned char b[16], char out[UUID_LEN + 1])
{
    char hex[33];
    to_hex(b, 16, hex);
    snprintf(out, UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
             hex + 20);
}

void uuid_random(char out[UUID_LEN + 1])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    format_uuid(b, out);
}

void uuid_derive(char out[UUID_LEN + 1], const char *const *parts, size_t n)
{
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < n; i++)
        crypto_hash_sha256_update(&st, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    crypto_hash_sha256_final(&st, h);
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x80);
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
    format_uuid(h, out);
}

uint32_t stable_hash32(const char *a, const char *b)
{
    /* FNV-1a: stable across builds and machines */
    uint32_t h = 2166136261u;
    for (const char *p = a; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u;
    for (const char *p = b; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}
