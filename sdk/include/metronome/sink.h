/* Sinks: deliver one signed payload and report the outcome.
 * DRAFT in ABI 1.0: the layout below may still change until the delivery
 * engine lands (it is not covered by the frozen-layout assertions yet). */
#ifndef METRONOME_SINK_H
#define METRONOME_SINK_H

#include <metronome/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mtr_header {
    const char *name;
    const char *value;
};

struct mtr_delivery {
    const char *delivery_id;
    const char *webhook_id;
    const char *target; /* the webhook's callback URI */
    const char *body;
    size_t body_len;
    const struct mtr_header *headers; /* signature, content type, delivery id ... */
    size_t n_headers;
    void *cookie;
};

struct mtr_sink_outcome {
    int status;             /* MTR_OK delivered, MTR_ERR failed, MTR_EAGAIN transport error */
    int http_status;        /* 0 when no response */
    int64_t retry_after_ms; /* from Retry-After, -1 when absent */
    int64_t latency_us;
    const char *error;    /* transport error text, or NULL */
    const char *response; /* response body (verify), may be NULL */
    size_t response_len;
    void *cookie;
};

typedef void (*mtr_sink_done_fn)(void *core, const struct mtr_sink_outcome *outcome);

struct mtr_sink_ops {
    uint32_t struct_size;
    uint32_t reserved;
    int (*submit)(void *state, const struct mtr_delivery *d, mtr_sink_done_fn done, void *core);
    int (*poll)(void *state, int timeout_ms); /* NULL: submit completes synchronously */
    uint64_t (*max_body_bytes)(void *state);  /* 0: unlimited */
};

#ifdef __cplusplus
}
#endif

#endif
