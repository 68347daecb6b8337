/* The payload codec (codec.h): zstd with a trained dictionary. */
#include "codec.h"

#include <stdlib.h>
#include <string.h>
#include <zdict.h>
#include <zstd.h>

#define MARK_RAW 0x00
#define MARK_ZSTD 0x01

int codec_init(struct codec *c)
{
    memset(c, 0, sizeof *c);
    c->cctx = ZSTD_createCCtx();
    c->dctx = ZSTD_createDCtx();
    if (!c->cctx || !c->dctx)
        return -1;
    /* the dictionary's id is ours, in the blob: the frame does not repeat it */
    ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, CODEC_LEVEL);
    ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_dictIDFlag, 0);
    return 0;
}

static void drop_samples(struct codec *c)
{
    free(c->samples);
    free(c->sample_sizes);
    c->samples = NULL;
    c->sample_sizes = NULL;
    c->n_samples = c->samples_len = c->samples_cap = 0;
}

void codec_free(struct codec *c)
{
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    ZSTD_freeCDict(c->cdict);
    for (size_t i = 0; i < c->n_ddicts; i++)
        ZSTD_freeDDict(c->ddicts[i].ddict);
    drop_samples(c);
    free(c->out);
    free(c->plain);
    memset(c, 0, sizeof *c);
}

static int reserve(void **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    void *p = realloc(*buf, n);
    if (!p)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

static size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

static size_t get_varint(const unsigned char *p, size_t len, uint64_t *v)
{
    *v = 0;
    for (size_t n = 0; n < len && n < 10; n++) {
        *v |= (uint64_t)(p[n] & 0x7f) << (7 * n);
        if (!(p[n] & 0x80))
            return n + 1;
    }
    return 0;
}

int codec_encode(struct codec *c, const void *body, size_t len, const void **out, size_t *out_len)
{
    size_t bound = ZSTD_compressBound(len) + 12;
    if (reserve((void **)&c->out, &c->out_cap, bound > len + 1 ? bound : len + 1) != 0)
        return -1;
    size_t head = 1 + put_varint(c->out + 1, (uint64_t)c->dict_id);
    c->out[0] = MARK_ZSTD;
    ZSTD_CCtx_reset(c->cctx, ZSTD_reset_session_only);
    ZSTD_CCtx_refCDict(c->cctx, c->cdict); /* NULL: none */
    size_t z = ZSTD_compress2(c->cctx, c->out + head, c->out_cap - head, body, len);
    if (ZSTD_isError(z))
        return -1;
    if (head + z >= len + 1) { /* no smaller: kept as it is */
        c->out[0] = MARK_RAW;
        memcpy(c->out + 1, body, len);
        *out = c->out;
        *out_len = len + 1;
        return 0;
    }
    *out = c->out;
    *out_len = head + z;
    return 0;
}

/* The decoding dictionary id, read (and kept) through load. */
static void *ddict_of(struct codec *c, int64_t id, codec_load_fn load, void *arg)
{
    for (size_t i = 0; i < c->n_ddicts; i++)
        if (c->ddicts[i].id == id)
            return c->ddicts[i].ddict;
    void *bytes;
    size_t len;
    if (load(arg, id, &bytes, &len) != 0)
        return NULL;
    ZSTD_DDict *dd = ZSTD_createDDict(bytes, len);
    free(bytes);
    if (!dd)
        return NULL;
    size_t slot = c->n_ddicts < CODEC_DDICTS ? c->n_ddicts++ : c->next_ddict++ % CODEC_DDICTS;
    if (c->ddicts[slot].ddict && c->ddicts[slot].ddict != dd)
        ZSTD_freeDDict(c->ddicts[slot].ddict);
    c->ddicts[slot].id = id;
    c->ddicts[slot].ddict = dd;
    return dd;
}

int codec_decode(struct codec *c, const void *blob, size_t len, codec_load_fn load, void *arg,
                 const char **out, size_t *out_len, const char **why)
{
    const unsigned char *b = blob;
    *why = NULL;
    if (len == 0 || (b[0] != MARK_RAW && b[0] != MARK_ZSTD)) { /* stored as it is */
        *out = blob;
        *out_len = len;
        return 0;
    }
    if (b[0] == MARK_RAW) {
        *out = (const char *)b + 1;
        *out_len = len - 1;
        return 0;
    }
    uint64_t id;
    size_t head = get_varint(b + 1, len - 1, &id);
    if (!head) {
        *why = "a damaged payload header";
        return -1;
    }
    head += 1;
    unsigned long long size = ZSTD_getFrameContentSize(b + head, len - head);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (1u << 30)) {
        *why = "a damaged compressed payload";
        return -1;
    }
    void *dd = NULL;
    if (id && !(dd = ddict_of(c, (int64_t)id, load, arg))) {
        *why = "the payload's compression dictionary is missing from the ledger";
        return -1;
    }
    if (reserve((void **)&c->plain, &c->plain_cap, (size_t)size + 1) != 0) {
        *why = "out of memory";
        return -1;
    }
    size_t n =
        dd ? ZSTD_decompress_usingDDict(c->dctx, c->plain, c->plain_cap, b + head, len - head, dd)
           : ZSTD_decompressDCtx(c->dctx, c->plain, c->plain_cap, b + head, len - head);
    if (ZSTD_isError(n) || n != size) {
        *why = "a damaged compressed payload";
        return -1;
    }
    c->plain[n] = '\0';
    *out = c->plain;
    *out_len = n;
    return 0;
}

int codec_sample(struct codec *c, const void *body, size_t len)
{
    if (c->trained || c->cdict || len == 0)
        return 0;
    if (len > CODEC_SAMPLE_BYTES)
        len = CODEC_SAMPLE_BYTES; /* a big payload repeats its first vehicles' shape */
    if (!c->sample_sizes && !(c->sample_sizes = calloc(CODEC_SAMPLES, sizeof *c->sample_sizes)))
        return 0;
    if (reserve((void **)&c->samples, &c->samples_cap, c->samples_len + len) != 0)
        return 0;
    memcpy(c->samples + c->samples_len, body, len);
    c->samples_len += len;
    c->sample_sizes[c->n_samples++] = len;
    return c->n_samples == CODEC_SAMPLES;
}

int codec_train(struct codec *c, void **dict, size_t *len)
{
    void *buf = malloc(CODEC_DICT_BYTES);
    size_t n = buf ? ZDICT_trainFromBuffer(buf, CODEC_DICT_BYTES, c->samples, c->sample_sizes,
                                           (unsigned)c->n_samples)
                   : 0;
    drop_samples(c);
    c->trained = 1;
    if (!buf || ZDICT_isError(n)) {
        free(buf);
        return -1;
    }
    *dict = buf;
    *len = n;
    return 0;
}

int codec_use(struct codec *c, int64_t id, const void *dict, size_t len, int provisional)
{
    ZSTD_CDict *cd = ZSTD_createCDict(dict, len, CODEC_LEVEL);
    if (!cd)
        return -1;
    ZSTD_freeCDict(c->cdict);
    c->cdict = cd;
    c->dict_id = id;
    c->provisional = provisional;
    c->trained = 1;
    drop_samples(c);
    return 0;
}

void codec_committed(struct codec *c)
{
    c->provisional = 0;
}

void codec_rolled_back(struct codec *c)
{
    if (!c->provisional)
        return;
    /* its row is gone, and so is every payload compressed with it: train again later */
    ZSTD_freeCDict(c->cdict);
    c->cdict = NULL;
    c->dict_id = 0;
    c->provisional = 0;
    c->trained = 0;
}
