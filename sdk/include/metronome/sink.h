/* Sinks: deliver one signed payload and report the outcome. submit() may
 * complete at once (poll == NULL) or later, from poll(). The core owns the
 * bytes and headers until the outcome is reported.
 *
 * Threads: submit() and poll() are called on the delivery thread, never at
 * once; done() must be called from one of them (never from a thread of the
 * sink's own). The outcome, and what its pointers point at, need to live only
 * until done() returns: the core copies what it keeps.
 *
 * The cookie: every outcome hands back the cookie of the delivery it is for,
 * unchanged, exactly once. The core checks it; an outcome with a cookie it
 * did not hand out (or a second one for the same delivery) is dropped, logged
 * as a fault of the plugin, and the delivery is tried again later.
 *
 * Verification: a sink whose flags include MTR_SINK_CALLBACK receives the
 * verify challenge as an ordinary delivery (`webhook verify`): body
 * {"version":"2.0","webhookId":...,"eventName":"verify","payload":{"challenge":...}}
 * with attempt 1; it POSTs it like any payload and reports the receiver's
 * answer in response/response_len, which the core checks. Sinks without the
 * flag never see challenges.
 *
 * Deferral (ABI 1.4): an outcome whose status is MTR_EAGAIN says "not now":
 * the sink held the delivery back (its receiver's limits, http_status 0) or
 * the receiver asked it to wait (429 or 503 with Retry-After, http_status
 * set). retry_after_s says how many seconds to wait. The core sends it again
 * then without counting it against the delivery's retries, for at most a day
 * from the delivery's creation; after that a deferral is an ordinary failure.
 * A core before 1.4 takes it as a failure. */
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
    const struct mtr_header *headers; /* Content-Type, SC-Signature, User-Agent, id */
    size_t n_headers;
    int attempt;  /* 1 for the first */
    mtr_time now; /* the daemon's clock at submission */
    void *cookie;
};

struct mtr_sink_outcome {
    int status;      /* MTR_OK: delivered (2xx); MTR_ERR: not delivered; MTR_EAGAIN: deferred */
    int http_status; /* 0 when there was no response */
    int64_t retry_after_s; /* from Retry-After, -1 when absent */
    int64_t latency_us;
    const char *error;    /* transport error text, or NULL */
    const char *response; /* response body (up to 64 KiB), may be NULL */
    size_t response_len;
    void *cookie;
};

typedef void (*mtr_sink_done_fn)(void *core, const struct mtr_sink_outcome *outcome);

enum mtr_sink_flags {
    MTR_SINK_CALLBACK = 1u << 0, /* posts to the callback URI: can verify it */
};

struct mtr_sink_ops {
    uint32_t struct_size;
    uint32_t flags; /* enum mtr_sink_flags */
    /* Returns MTR_OK (done will be called), MTR_EAGAIN (at capacity: call again
     * after poll), or MTR_ERR (refused; done is not called). */
    int (*submit)(void *state, const struct mtr_delivery *d, mtr_sink_done_fn done, void *core);
    /* Drives in-flight deliveries for up to timeout_ms; returns how many
     * remain. NULL for sinks that complete in submit(). */
    int (*poll)(void *state, int timeout_ms);
    uint64_t (*max_body_bytes)(void *state); /* 0: unlimited */
};

/* The frozen layout of ABI 1.0 (LP64): these only grow at the end. A core reading a
 * field added later checks the table's struct_size first. */
#if defined(__LP64__) && !defined(__cplusplus)
_Static_assert(offsetof(struct mtr_sink_ops, submit) == 8, "ABI: sink submit");
_Static_assert(offsetof(struct mtr_sink_ops, max_body_bytes) == 24, "ABI: sink max_body_bytes");
_Static_assert(sizeof(struct mtr_sink_ops) == 32, "ABI 1.0 sink ops size");
_Static_assert(sizeof(struct mtr_delivery) == 80, "ABI 1.0 delivery size");
_Static_assert(sizeof(struct mtr_sink_outcome) == 56, "ABI 1.0 sink outcome size");
#endif

#ifdef __cplusplus
}
#endif

#endif
