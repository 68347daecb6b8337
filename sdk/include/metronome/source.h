/* Data sources: fetch a webhook's endpoints for a batch of vehicles.
 * DRAFT in ABI 1.0: the layout below may still change until the delivery
 * engine lands (it is not covered by the frozen-layout assertions yet). */
#ifndef METRONOME_SOURCE_H
#define METRONOME_SOURCE_H

#include <metronome/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mtr_units {
    MTR_UNITS_METRIC = 0,
    MTR_UNITS_IMPERIAL = 1,
};

/* A vehicle as the store knows it; tokens are decrypted by the core. */
struct mtr_vehicle {
    const char *id;
    const char *access_token;  /* NULL for simulated vehicles */
    const char *refresh_token; /* NULL for simulated vehicles */
    mtr_time access_expires;
};

struct mtr_fetch_request {
    const struct mtr_vehicle *vehicle;
    const char *const *endpoints;
    size_t n_endpoints;
    int units;     /* enum mtr_units */
    mtr_time tick; /* the tick being fulfilled */
    void *cookie;  /* the core's; handed back with the result */
};

/* data_json is the JSON array of {path, code, body, headers} elements, one per
 * endpoint (failed endpoints carry their error body); valid during the callback. */
struct mtr_fetch_result {
    int status; /* MTR_OK, MTR_EAGAIN (retry in a later slot), MTR_ERR */
    const char *data_json;
    size_t data_len;
    const char *error;
    void *cookie;
};

typedef void (*mtr_fetch_done_fn)(void *core, const struct mtr_fetch_result *result);

struct mtr_source_ops {
    uint32_t struct_size;
    uint32_t reserved;
    const char *(*mode)(void *state); /* "simulated", "live" or "test" */
    int (*submit)(void *state, const struct mtr_fetch_request *reqs, size_t n,
                  mtr_fetch_done_fn done, void *core);
    int (*poll)(void *state, int timeout_ms); /* NULL: submit completes synchronously */
};

#ifdef __cplusplus
}
#endif

#endif
