/* Vault: key loading and secretbox sealing. The key never reaches a log. */
#include "vault.h"
#include "log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_key(struct vault *v, const char *hex, size_t len)
{
    size_t bin_len;
    while (len && (hex[len - 1] == '\n' || hex[len - 1] == '\r' || hex[len - 1] == ' '))
        len--;
    if (len != 2 * VAULT_KEY_BYTES ||
        sodium_hex2bin(v->key, sizeof v->key, hex, len, NULL, &bin_len, NULL) != 0 ||
        bin_len != VAULT_KEY_BYTES)
        return -1;
    v->has_key = 1;
    return 0;
}

int vault_load(struct vault *v, const struct config *c, struct diag *d)
{
    memset(v, 0, sizeof *v);
    if (sodium_init() < 0)
        return diag_set(d, "libsodium failed to initialise");
    const char *env = getenv("METRONOME_SECRET_KEY");
    if (env && *env) {
        if (parse_key(v, env, strlen(env)) != 0)
            return diag_set(d, "$METRONOME_SECRET_KEY must be 64 hexadecimal characters");
        return 0;
    }
    if (!c->key_file)
        return 0;
    int fd = open(c->key_file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return diag_set(d, "%s: cannot read the secret key file: %s", c->key_file, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return diag_set(d, "%s: the secret key file is not a regular file", c->key_file);
    }
    if (sb.st_uid != geteuid() && sb.st_uid != 0) {
        close(fd);
        return diag_set(d,
                        "%s: the secret key file belongs to another user (uid %u); it must be "
                        "owned by the user metronome runs as, or by root",
                        c->key_file, (unsigned)sb.st_uid);
    }
    if (sb.st_mode & 077)
        log_msg(MTR_LOG_WARN, "secrets",
                "%s: the secret key file can be read by others (mode %03o); chmod 600 it",
                c->key_file, (unsigned)(sb.st_mode & 0777));
    char buf[160];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    int rc = n > 0 ? parse_key(v, buf, (size_t)n) : -1;
    sodium_memzero(buf, sizeof buf);
    if (rc != 0)
        return diag_set(d, "%s: the secret key must be 64 hexadecimal characters", c->key_file);
    return 0;
}

/* A source whose payloads are not simulated handles live credentials. */
int vault_check_sources(const struct vault *v, const struct config *c, struct diag *d)
{
    if (v->has_key)
        return 0;
    for (size_t i = 0; i < c->n_sources; i++) {
        const struct mtr_source_ops *ops = c->sources[i].inst->ctx.pf->desc.source;
        const char *mode = ops->mode(c->sources[i].inst->state);
        if (mode && strcmp(mode, "simulated") != 0)
            return diag_set(d,
                            "source '%s' handles live credentials, which are encrypted at rest: "
                            "set $METRONOME_SECRET_KEY (64 hex characters) or secrets.key_file",
                            c->sources[i].name);
    }
    return 0;
}

void vault_wipe(struct vault *v)
{
    sodium_memzero(v, sizeof *v);
}

unsigned char *vault_seal(const struct vault *v, const char *text, size_t *len)
{
    size_t n = strlen(text);
    *len = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + n;
    unsigned char *blob = malloc(*len);
    if (!blob)
        return NULL;
    randombytes_buf(blob, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(blob + crypto_secretbox_NONCEBYTES, (const unsigned char *)text, n, blob,
                          v->key);
    return blob;
}

char *vault_open(const struct vault *v, const unsigned char *blob, size_t len)
{
    if (len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
        return NULL;
    size_t n = len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    char *text = malloc(n + 1);
    if (!text)
        return NULL;
    if (crypto_secretbox_open_easy((unsigned char *)text, blob + crypto_secretbox_NONCEBYTES,
                                   len - crypto_secretbox_NONCEBYTES, blob, v->key) != 0) {
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}
