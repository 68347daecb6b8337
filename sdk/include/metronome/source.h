/* Data sources: fetch a webhook's endpoints for vehicles. A source answers,
 * per vehicle, the JSON array of Smartcar batch elements {path, code, body,
 * headers} - one per endpoint, failed endpoints carrying their error body -
 * which becomes the payload's data element. submit() may complete at once
 * (poll == NULL) or later, from poll(). metronome/util.h has the helpers
 * (JSON escaping, sc-data-age instants, error elements).
 *
 * Threads and lifetimes: every call is made on the engine thread. A result's
 * data_json, error and token strings need to live only until done() returns:
 * the core copies them. The core checks what it is handed: data_json must be
 * a JSON array of elements (anything else is delivered as an INVALID_DATA
 * error element and logged), and a result whose cookie is not one of the
 * requests' is dropped and logged. mode() must return "simulated", "live" or
 * "test"; anything else refuses the source at start.
 *
 * `subscribe --all` and `connect` need list_vehicles() and exchange_code();
 * a source without them answers that it cannot list a token's vehicles. */
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

/* A vehicle as the store knows it; tokens are decrypted by the core and live
 * for the duration of the call. */
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
    mtr_time now;  /* the daemon's clock */
    void *cookie;  /* the core's; handed back with the result */
};

struct mtr_fetch_result {
    /* MTR_OK: data_json is final (it may hold error elements that will not
     * improve). MTR_EAGAIN: transient (asleep, rate limited, upstream); try
     * again in a later slot; data_json, if set, is what to deliver if no later
     * slot succeeds. MTR_ERR: no data; error says why. */
    int status;
    const char *data_json;
    size_t data_len;
    const char *error;
    void *cookie;
    /* a source that refreshed the vehicle's tokens reports them here, with
     * refreshed = 1 and no data: the core stores both tokens, then fetches
     * again with them, so a token is never used before it is stored */
    const char *new_access_token;
    const char *new_refresh_token;
    mtr_time new_access_expires;
    int refreshed;
    int needs_reauth;      /* the vehicle's credentials are no longer accepted */
    int64_t retry_after_s; /* with MTR_EAGAIN: seconds to wait (0 or less: the next slot) */
};

typedef void (*mtr_fetch_done_fn)(void *core, const struct mtr_fetch_result *result);

/* Called once per vehicle id; a non-zero return stops the listing. */
typedef int (*mtr_vehicle_id_fn)(void *arg, const char *vehicle_id);
/* Receives tokens from an authorization-code exchange. */
typedef int (*mtr_tokens_fn)(void *arg, const char *access_token, const char *refresh_token,
                             mtr_time access_expires);

struct mtr_source_ops {
    uint32_t struct_size;
    uint32_t reserved;
    const char *(*mode)(void *state); /* payload mode: "simulated", "live" or "test" */
    /* Starts fetches; done is called once per request (maybe before submit
     * returns). Returns MTR_OK, or MTR_EAGAIN when it cannot take more now. */
    int (*submit)(void *state, const struct mtr_fetch_request *reqs, size_t n,
                  mtr_fetch_done_fn done, void *core);
    /* Drives in-flight fetches for up to timeout_ms; returns how many remain.
     * NULL for sources that complete in submit(). */
    int (*poll)(void *state, int timeout_ms);
    /* Optional (NULL: not supported); synchronous, for the command line. */
    int (*list_vehicles)(void *state, const char *access_token, mtr_vehicle_id_fn fn, void *arg);
    int (*exchange_code)(void *state, const char *code, const char *redirect_uri, mtr_tokens_fn fn,
                         void *arg);
};

/* The frozen layout of ABI 1.0 (LP64): these only grow at the end. A core reading a
 * field added later checks the table's struct_size first. */
#if defined(__LP64__) && !defined(__cplusplus)
_Static_assert(offsetof(struct mtr_source_ops, submit) == 16, "ABI: source submit");
_Static_assert(offsetof(struct mtr_source_ops, poll) == 24, "ABI: source poll");
_Static_assert(offsetof(struct mtr_source_ops, exchange_code) == 40, "ABI: source exchange_code");
_Static_assert(sizeof(struct mtr_source_ops) == 48, "ABI 1.0 source ops size");
_Static_assert(sizeof(struct mtr_vehicle) == 32, "ABI 1.0 vehicle size");
_Static_assert(sizeof(struct mtr_fetch_request) == 56, "ABI 1.0 fetch request size");
_Static_assert(offsetof(struct mtr_fetch_result, retry_after_s) == 72,
               "ABI: fetch result retry_after_s");
_Static_assert(sizeof(struct mtr_fetch_result) == 80, "ABI 1.0 fetch result size");
#endif

#ifdef __cplusplus
}
#endif

#endif
