/* The delivery engine: `metronome run`. Reads top-down as the life of a tick:
 * the scheduler fires a webhook's tick, the tick's jobs (one per subscribed
 * vehicle) are written to the ledger, due jobs are claimed under a lease and
 * fetched through the vehicle's source, fetched data becomes signed payloads
 * stored with their deliveries, and due deliveries are claimed and handed to
 * the webhook's sinks, whose outcomes are recorded as attempts - with retries,
 * Retry-After, 410 Gone and auto-disable. The same code serves one node on
 * SQLite and many nodes on a shared database. */
#ifndef MTR_ENGINE_H
#define MTR_ENGINE_H

#include <signal.h>
#include "clock.h"
#include "config.h"
#include "diag.h"
#include "ledger.h"

struct engine_options {
    mtr_time until; /* stop once the clock reaches it; 0: run until stopped */
    volatile sig_atomic_t *stop;
};

struct engine_stats {
    uint64_t ticks;
    uint64_t jobs;
    uint64_t jobs_missed;
    uint64_t fetch_retries;
    uint64_t fetch_errors_delivered;
    uint64_t deliveries; /* made in this run */
    uint64_t delivered;  /* outcomes in this run, of deliveries made now or before */
    uint64_t failed;
    uint64_t earlier_settled; /* deliveries made before this run that it settled */
    uint64_t attempts;
    uint64_t retries;
    uint64_t disabled;
    /* wall seconds from the first tick this run fired to the last attempt it
     * recorded (0 when none): a tick's fulfilment time, without start-up and
     * shutdown */
    double tick_to_last_record_s;
};

/* Runs the daemon on c with clock clk (wall or virtual). Returns 0, or -1 with
 * d set on a runtime failure (the store refusing writes). */
int engine_run(struct config *c, struct clock *clk, const struct engine_options *o,
               struct engine_stats *stats, struct diag *d);

/* Sends the verify challenge of SPEC section 5 to the webhook's callback
 * sinks and, when every one answers the right HMAC within its timeout, makes
 * the webhook active. Returns 0 (verified), or -1 with the reason in d. */
int engine_verify(struct config *c, struct clock *clk, const struct webhook_cfg *w, struct diag *d);

/* Sends one test payload (mode "test") to each of the webhook's sinks now,
 * once, recorded in the ledger. Returns 0 when every sink took it. */
int engine_test(struct config *c, struct clock *clk, const struct webhook_cfg *w, char *report,
                size_t report_len, struct diag *d);

/* The offset of the k-th retry (1-based, of n) after a round's first
 * attempt, for a window of window_s seconds: 30s, 1m30s, 3m30s, 6m30s, 10m for
 * the defaults, each but the last with up to +-10% jitter derived from id. */
mtr_time retry_offset(int k, int n, int64_t window_s, const char *id);

#endif
