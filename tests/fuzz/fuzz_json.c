/* libFuzzer target: arbitrary bytes as a source's data, through the canonical
 * writer and the vehicle entry builder. Whatever is accepted must canonicalise
 * to itself (the writer is idempotent). jansson is no referee here: it refuses
 * lone surrogates and integers beyond 2^63 that JSON.stringify writes. */
#include "jsonw.h"
#include "payload.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jsonw w;
    char err[256];
    jsonw_init(&w);
    if (jsonw_canonical(&w, (const char *)data, size, err, sizeof err) == 0) {
        size_t len;
        char *once = jsonw_take(&w, &len);
        if (once) {
            struct jsonw again;
            jsonw_init(&again);
            if (jsonw_canonical(&again, once, len, err, sizeof err) != 0 || again.len != len ||
                memcmp(again.buf, once, len) != 0)
                abort(); /* not idempotent */
            jsonw_free(&again);
            free(once);
        }
    } else {
        jsonw_free(&w);
    }
    size_t elen;
    char *entry = payload_vehicle("v", "r", (const char *)data, size, &elen, err, sizeof err);
    free(entry);
    return 0;
}
