/* Signing and identifiers: HMAC-SHA256 in lowercase hex (SC-Signature and the
 * verify challenge), random UUIDs for webhooks and challenges, and
 * deterministic UUID-shaped ids derived from the fields that define a thing,
 * so retries, replays and racing nodes agree on them. */
#ifndef MTR_SIGN_H
#define MTR_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define HEX_SHA256_LEN 64
#define UUID_LEN 36

/* Must be called once before the functions below (idempotent). */
int sign_init(void);

/* out receives 64 lowercase hex characters and a NUL. */
void hmac_sha256_hex(const char *key, size_t key_len, const char *msg, size_t msg_len,
                     char out[HEX_SHA256_LEN + 1]);

/* HMAC-SHA256 with the key already absorbed: each message copies the keyed
 * inner and outer states instead of hashing the key's pads again. One thread
 * at a time (it has a working state). */
struct signer {
    void *inner, *outer, *work; /* EVP_MD_CTX */
};
int signer_init(struct signer *s, const char *key, size_t key_len);
void signer_hex(struct signer *s, const char *msg, size_t len, char out[HEX_SHA256_LEN + 1]);
void signer_free(struct signer *s);

/* A random version-4 UUID. */
void uuid_random(char out[UUID_LEN + 1]);

/* A UUID-shaped id (version 8, RFC 9562) from SHA-256 of the parts, which are
 * separated by NUL bytes before hashing. */
void uuid_derive(char out[UUID_LEN + 1], const char *const *parts, size_t n);

/* A version-8 id like uuid_derive's whose leading bits are the tick (40 bits)
 * and then key (32 bits), followed by 50 bits of the parts' hash: ids made in
 * (tick, key) order sort in that order, as text too, so a ledger's B-tree
 * index of them grows at its end instead of at random pages (bench/README.md).
 * Still deterministic from the parts, tick and key. */
void uuid_derive_ordered(char out[UUID_LEN + 1], int64_t tick, uint32_t key,
                         const char *const *parts, size_t n);

/* A stable 32-bit hash of two strings (per-subscription spread). */
uint32_t stable_hash32(const char *a, const char *b);

#endif
