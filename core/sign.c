/* Signing and identifiers. SHA-256 and HMAC-SHA256 come from OpenSSL's
 * libcrypto, whose SHA-256 uses the CPU's SHA extensions: about four times
 * libsodium's portable code on a 705-byte payload (bench/README.md); random
 * bytes come from libsodium. */
#include "sign.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static EVP_MD *sha256; /* fetched once: an implicit fetch per call costs more than the hash */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *md(void)
{
    pthread_once(&sha256_once, fetch_sha256);
    return sha256;
}

int sign_init(void)
{
    return sodium_init() < 0 || !md() ? -1 : 0;
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

/* The key's inner and outer pads, each absorbed into a SHA-256 state (RFC 2104). */
static int keyed_states(EVP_MD_CTX *inner, EVP_MD_CTX *outer, const char *key, size_t key_len)
{
    unsigned char k[64] = {0}, ipad[64], opad[64];
    unsigned int n;
    if (key_len > sizeof k) {
        if (EVP_Digest(key, key_len, k, &n, md(), NULL) != 1)
            return -1;
    } else {
        memcpy(k, key, key_len);
    }
    for (size_t i = 0; i < sizeof k; i++) {
        ipad[i] = (unsigned char)(k[i] ^ 0x36);
        opad[i] = (unsigned char)(k[i] ^ 0x5c);
    }
    int ok = EVP_DigestInit_ex(inner, md(), NULL) == 1 &&
             EVP_DigestUpdate(inner, ipad, sizeof ipad) == 1 &&
             EVP_DigestInit_ex(outer, md(), NULL) == 1 &&
             EVP_DigestUpdate(outer, opad, sizeof opad) == 1;
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    return ok ? 0 : -1;
}

int signer_init(struct signer *s, const char *key, size_t key_len)
{
    s->inner = EVP_MD_CTX_new();
    s->outer = EVP_MD_CTX_new();
    s->work = EVP_MD_CTX_new();
    if (!md() || !s->inner || !s->outer || !s->work ||
        keyed_states(s->inner, s->outer, key, key_len) != 0) {
        signer_free(s);
        return -1;
    }
    return 0;
}

void signer_free(struct signer *s)
{
    EVP_MD_CTX_free(s->inner);
    EVP_MD_CTX_free(s->outer);
    EVP_MD_CTX_free(s->work);
    s->inner = s->outer = s->work = NULL;
}

void signer_hex(struct signer *s, const char *msg, size_t len, char out[HEX_SHA256_LEN + 1])
{
    unsigned char inner[32], mac[32];
    unsigned int n;
    if (!s->work || EVP_MD_CTX_copy_ex(s->work, s->inner) != 1 ||
        EVP_DigestUpdate(s->work, msg, len) != 1 || EVP_DigestFinal_ex(s->work, inner, &n) != 1 ||
        EVP_MD_CTX_copy_ex(s->work, s->outer) != 1 ||
        EVP_DigestUpdate(s->work, inner, sizeof inner) != 1 ||
        EVP_DigestFinal_ex(s->work, mac, &n) != 1) {
        out[0] = '\0'; /* no signature rather than a wrong one; only without memory */
        return;
    }
    to_hex(mac, sizeof mac, out);
}

void hmac_sha256_hex(const char *key, size_t key_len, const char *msg, size_t msg_len,
                     char out[HEX_SHA256_LEN + 1])
{
    struct signer s;
    if (signer_init(&s, key, key_len) != 0) {
        out[0] = '\0';
        return;
    }
    signer_hex(&s, msg, msg_len, out);
    signer_free(&s);
}

static void format_uuid(const unsigned char b[16], char out[UUID_LEN + 1])
{
    /* 8-4-4-4-12 hex digits */
    to_hex(b, 4, out);
    out[8] = '-';
    to_hex(b + 4, 2, out + 9);
    out[13] = '-';
    to_hex(b + 6, 2, out + 14);
    out[18] = '-';
    to_hex(b + 8, 2, out + 19);
    out[23] = '-';
    to_hex(b + 10, 6, out + 24);
}

void uuid_random(char out[UUID_LEN + 1])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    format_uuid(b, out);
}

/* SHA-256 of the parts, each followed by a NUL byte. */
static void hash_parts(unsigned char h[32], const char *const *parts, size_t n)
{
    static _Thread_local EVP_MD_CTX *ctx; /* reused: one per thread, for the process's life */
    unsigned int len;
    if (!ctx)
        ctx = EVP_MD_CTX_new();
    int ok = ctx && md() && EVP_DigestInit_ex(ctx, md(), NULL) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1) == 1;
    if (ok && EVP_DigestFinal_ex(ctx, h, &len) == 1)
        return;
    crypto_hash_sha256_state st; /* no memory for OpenSSL: the same hash from libsodium */
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < n; i++)
        crypto_hash_sha256_update(&st, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    crypto_hash_sha256_final(&st, h);
}

static void set_version_8(unsigned char b[16])
{
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x80);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
}

void uuid_derive(char out[UUID_LEN + 1], const char *const *parts, size_t n)
{
    unsigned char h[32];
    hash_parts(h, parts, n);
    set_version_8(h);
    format_uuid(h, out);
}

/* Writes the low `bits` bits of v, most significant first, into the UUID's
 * free bits from *pos on, stepping over the version (48-51) and variant
 * (64-65) bits. */
static void put_bits(unsigned char b[16], unsigned *pos, uint64_t v, unsigned bits)
{
    while (bits--) {
        while ((*pos >= 48 && *pos < 52) || (*pos >= 64 && *pos < 66))
            (*pos)++;
        if ((v >> bits) & 1)
            b[*pos / 8] |= (unsigned char)(0x80 >> (*pos % 8));
        (*pos)++;
    }
}

void uuid_derive_ordered(char out[UUID_LEN + 1], int64_t tick, uint32_t key,
                         const char *const *parts, size_t n)
{
    unsigned char h[32], b[16] = {0};
    unsigned pos = 0;
    hash_parts(h, parts, n);
    put_bits(b, &pos, (uint64_t)tick, 40);
    put_bits(b, &pos, key, 32);
    for (unsigned i = 0; pos < 128; i++) /* the rest: the hash's bits */
        put_bits(b, &pos, (uint64_t)(h[i / 8] >> (7 - i % 8)), 1);
    set_version_8(b);
    format_uuid(b, out);
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
