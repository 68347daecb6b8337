/* Payload compression micro-benchmark: the SQLite ledger's codec
 * (plugins/store_sqlite/codec.c) on payloads shaped like the simulated
 * source's (one vehicle, /odometer, /battery, /location; ids and readings
 * vary). Prints, for zstd alone and with the dictionary the codec trains from
 * its first CODEC_SAMPLES payloads: bytes stored per payload, the ratio, and
 * CPU microseconds to encode and to decode one; plus the training's time.
 * Every payload is decoded and compared, so a lossy codec cannot look good. */
#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static size_t payload(char *buf, size_t len, unsigned i, unsigned *s)
{
    return (size_t)snprintf(
        buf, len,
        "{\"version\":\"2.0\",\"webhookId\":\"9ed9f697-4114-4319-89db-df96c133c9e3\","
        "\"eventName\":\"scheduled\",\"mode\":\"simulated\",\"payload\":{\"vehicles\":[{"
        "\"vehicleId\":\"veh-%07u\",\"requestId\":\"%08x-%04x-%04x-%04x-%08x%04x\",\"data\":[{"
        "\"path\":\"/odometer\",\"code\":200,\"body\":{\"distance\":%u.%u},\"headers\":{"
        "\"sc-data-age\":\"2030-03-01T15:59:%02u.000Z\",\"sc-unit-system\":\"metric\"}},{\"path\":"
        "\"/battery\",\"code\":200,\"body\":{\"range\":%u.%02u,\"percentRemaining\":0.%02u},"
        "\"headers\":{\"sc-data-age\":\"2030-03-01T15:59:%02u.000Z\",\"sc-unit-system\":"
        "\"metric\"}},{\"path\":\"/location\",\"code\":200,\"body\":{\"latitude\":%u.%06u,"
        "\"longitude\":%u.%06u},\"headers\":{\"sc-data-age\":\"2030-03-01T15:59:%02u.000Z\","
        "\"sc-unit-system\":\"metric\"}}]}]}}",
        i, rnd(s), rnd(s) & 0xffff, rnd(s) & 0xffff, rnd(s) & 0xffff, rnd(s), rnd(s) & 0xffff,
        rnd(s) % 200000, rnd(s) % 10, rnd(s) % 60, rnd(s) % 500, rnd(s) % 100, rnd(s) % 100,
        rnd(s) % 60, rnd(s) % 90, rnd(s) % 1000000, rnd(s) % 180, rnd(s) % 1000000, rnd(s) % 60);
}

static int no_dict(void *arg, int64_t id, void **dict, size_t *len)
{
    (void)arg, (void)id, (void)dict, (void)len;
    return -1;
}

struct trained {
    void *dict;
    size_t len;
};

static int the_dict(void *arg, int64_t id, void **dict, size_t *len)
{
    struct trained *t = arg;
    (void)id;
    if (!(*dict = malloc(t->len)))
        return -1;
    memcpy(*dict, t->dict, t->len);
    *len = t->len;
    return 0;
}

/* Encodes and decodes n payloads; prints one line. Returns -1 on a mismatch. */
static int measure(const char *label, struct codec *c, codec_load_fn load, void *arg, unsigned n)
{
    char buf[2048];
    unsigned seed = 7;
    double enc = 0, dec = 0;
    size_t raw = 0, stored = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t len = payload(buf, sizeof buf, i, &seed), out_len, back_len;
        const void *out;
        const char *back, *why;
        double t0 = cpu_seconds();
        if (codec_encode(c, buf, len, &out, &out_len) != 0)
            return -1;
        double t1 = cpu_seconds();
        void *copy = malloc(out_len);
        memcpy(copy, out, out_len);
        if (codec_decode(c, copy, out_len, load, arg, &back, &back_len, &why) != 0 ||
            back_len != len || memcmp(back, buf, len) != 0) {
            fprintf(stderr, "bench_codec: payload %u did not come back: %s\n", i, why ? why : "");
            free(copy);
            return -1;
        }
        dec += cpu_seconds() - t1;
        enc += t1 - t0;
        raw += len;
        stored += out_len;
        free(copy);
    }
    printf("%s: %.0f bytes -> %.0f stored (ratio %.2f); encode %.2f us, decode %.2f us per "
           "payload\n",
           label, (double)raw / n, (double)stored / n, (double)raw / (double)stored, enc / n * 1e6,
           dec / n * 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 20000;
    struct codec c;
    char buf[2048];
    unsigned seed = 99;
    if (codec_init(&c) != 0 || measure("zstd alone", &c, no_dict, NULL, n) != 0)
        return 1;
    for (unsigned i = 0; i < CODEC_SAMPLES; i++) {
        size_t len = payload(buf, sizeof buf, 1000000 + i, &seed);
        codec_sample(&c, buf, len);
    }
    struct trained t;
    double t0 = cpu_seconds();
    if (codec_train(&c, &t.dict, &t.len) != 0 || codec_use(&c, 1, t.dict, t.len, 0) != 0) {
        fprintf(stderr, "bench_codec: no dictionary\n");
        return 1;
    }
    printf("dictionary: %zu bytes trained from %d payloads in %.3f s of CPU\n", t.len,
           CODEC_SAMPLES, cpu_seconds() - t0);
    int rc = measure("zstd with the dictionary", &c, the_dict, &t, n);
    free(t.dict);
    codec_free(&c);
    return rc == 0 ? 0 : 1;
}
