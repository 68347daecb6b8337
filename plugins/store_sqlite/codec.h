/* Payload bytes as the SQLite ledger keeps them: compressed with zstd and a
 * dictionary trained on the ledger's own first payloads. Payloads of one
 * webhook differ in a few numbers and ids, so a dictionary of their common
 * text takes an 800-byte payload to about 100 bytes, where zstd alone (which
 * needs a few hundred bytes of context before it finds anything) gets about
 * 450. The first CODEC_SAMPLES payloads are stored with zstd alone and kept
 * as samples; then a dictionary is trained, stored in the ledger (table
 * dictionaries) in the transaction of the payload that completed the
 * samples, and used from then on, by every process that opens the ledger.
 *
 * A stored blob is one of: 0x01, the dictionary id as a varint (0: none),
 * then a zstd frame; 0x00 then the bytes as they are; or the bytes as they
 * are when the first one is neither (every ledger before schema 8: a JSON
 * payload starts with '{'). Decoding always gives back the exact bytes. */
#ifndef MTR_SQLITE_CODEC_H
#define MTR_SQLITE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define CODEC_SAMPLES 1000
#define CODEC_SAMPLE_BYTES 4096 /* of each sample: 4 MiB of samples at most */
#define CODEC_DICT_BYTES 16384
#ifndef CODEC_LEVEL
#define CODEC_LEVEL 3
#endif
#define CODEC_DDICTS 8

struct codec {
    void *cctx, *dctx;
    void *cdict;     /* the dictionary payloads are compressed with, or NULL */
    int64_t dict_id; /* its id in the ledger (0: none) */
    int provisional; /* its row is in a transaction not committed yet */
    int trained;     /* a dictionary was trained or found: no more samples */
    struct {
        int64_t id;
        void *ddict;
    } ddicts[CODEC_DDICTS]; /* the dictionaries read lately, by id */
    size_t n_ddicts, next_ddict;
    unsigned char *samples; /* the first payloads, back to back */
    size_t *sample_sizes, n_samples, samples_len, samples_cap;
    unsigned char *out; /* what encode gives back */
    size_t out_cap;
    char *plain; /* what decode gives back */
    size_t plain_cap;
};

int codec_init(struct codec *c);
void codec_free(struct codec *c);

/* The stored form of body, valid until the next encode; 0 or -1 (no memory,
 * zstd failed). */
int codec_encode(struct codec *c, const void *body, size_t len, const void **out, size_t *out_len);

/* Reads a dictionary's bytes by id into *dict (owned by the caller); 0, or
 * -1 when there is none. */
typedef int (*codec_load_fn)(void *arg, int64_t id, void **dict, size_t *len);

/* The bytes of a stored blob, valid until the next decode; 0 or -1 (damaged,
 * or its dictionary is missing), with why. */
int codec_decode(struct codec *c, const void *blob, size_t len, codec_load_fn load, void *arg,
                 const char **out, size_t *out_len, const char **why);

/* Keeps body as a sample while no dictionary is in use; returns 1 when the
 * samples are complete and codec_train should run. */
int codec_sample(struct codec *c, const void *body, size_t len);

/* Trains a dictionary from the samples (and drops them): its bytes in
 * *dict (owned by the caller). -1 when zstd could not train one; the
 * codec then goes on without. */
int codec_train(struct codec *c, void **dict, size_t *len);

/* Compresses with the dictionary id from now on; provisional while the row
 * holding it is not committed. */
int codec_use(struct codec *c, int64_t id, const void *dict, size_t len, int provisional);
/* The transaction that holds a provisional dictionary ended. */
void codec_committed(struct codec *c);
void codec_rolled_back(struct codec *c);

#endif
