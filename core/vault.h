/* Credentials at rest: live vehicles' tokens are sealed with libsodium's
 * secretbox (XSalsa20-Poly1305) under the key of SPEC section 2 - 64 hex
 * characters from $METRONOME_SECRET_KEY, or from the file named by
 * secrets.key_file. Without a key, live credentials are refused. A key file
 * must be a regular file owned by the user metronome runs as (or root); one
 * that others can read is used with a warning. */
#ifndef MTR_VAULT_H
#define MTR_VAULT_H

#include <stddef.h>
#include "config.h"
#include "diag.h"

#define VAULT_KEY_BYTES 32

struct vault {
    int has_key;
    unsigned char key[VAULT_KEY_BYTES];
};

/* Loads the key if one is configured; a malformed key is an error. */
int vault_load(struct vault *v, const struct config *c, struct diag *d);
void vault_wipe(struct vault *v);
/* Refuses a pipeline with a live source (mode not "simulated") and no key. */
int vault_check_sources(const struct vault *v, const struct config *c, struct diag *d);

/* Seals text; returns a malloc'd blob (nonce + ciphertext) of *len bytes. */
unsigned char *vault_seal(const struct vault *v, const char *text, size_t *len);
/* Opens a blob; returns a malloc'd NUL-terminated string, or NULL. */
char *vault_open(const struct vault *v, const unsigned char *blob, size_t len);

#endif
