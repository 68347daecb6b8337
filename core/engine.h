/* The delivery engine: `metronome run`. Reads top-down as the life of a tick:
 * the scheduler fires a webhook's tick, the tick's jobs (one per subscribed
 * vehicle) are written to the ledger, due jobs are claimed under a lease and
 * fetched through the vehicle's source, fetched data becomes signed payloads
 * stored with their deliveries, and due deliveries are claimed and handed to
 * the webhook's sinks, whose outcomes are recorded as attempts - with retries,
 * Retry-After, 410 Gone and auto-disable. The same code serves one node on
 * SQLite and many nodes on a shared database.
 *
 * Other threads reach a running engine only through engine_request (a verify
 * or a test payload, sent through the same courier and outcome path as
 * scheduled deliveries), engine_get_status and engine_metrics. */
#ifndef MTR_ENGINE_H
#define MTR_ENGINE_H

#include <signal.h>
#include <time.h>
#include "clock.h"
#include "config.h"
#include "diag.h"
#include "ledger.h"
#include "origins.h"

struct engine;
struct metrics;

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
    uint64_t deferred;   /* deliveries a sink deferred (receiver protection), not attempts */
    uint64_t superseded; /* older ticks' pending deliveries a delivered newer one replaced */
    /* wall seconds from the first tick this run fired to the last attempt it
     * recorded (0 when none): a tick's fulfilment time, without start-up and
     * shutdown */
    double tick_to_last_record_s;
};

#define STATUS_ERRORS 10

/* What a running engine is doing, as published at the end of each turn of
 * its loop. */
struct engine_status {
    char owner[128]; /* this node's lease owner id: host:pid:random */
    time_t started_wall;
    mtr_time now; /* the engine's clock */
    int virtual_clock;
    int ready; /* plugins started, the store answered its last call */
    int stopping;
    size_t in_flight; /* handed to sinks, no outcome yet */
    size_t queued;    /* outcomes waiting to be written */
    struct engine_stats stats;
    struct origins origins; /* receivers that deliveries wait for */
    struct {
        mtr_time at;
        char origin[80];
        char text[256];
    } errors[STATUS_ERRORS]; /* the newest last */
    size_t n_errors;
};

/* ---- one-shot sends (verify, test) ---- */

enum send_kind {
    SEND_VERIFY = 1,
    SEND_TEST = 2,
};

#define SEND_MAX_SINKS 16

struct send_sink_result {
    char sink[64];
    char delivery_id[UUID_LEN + 1]; /* a test's delivery in the ledger; "" for verify */
    int ok;
    int http_status;
    int64_t latency_us;
    char error[512];
};

/* One verify or test, asked of the engine. The caller fills kind and
 * webhook_id and zeroes the rest; the engine fills the results. */
struct send_request {
    int kind; /* enum send_kind */
    char webhook_id[UUID_LEN + 1];
    /* results */
    int done;
    int status;        /* 0: every sink took it (verify: and answered right); -1 not */
    char message[512]; /* why not, when nothing could be sent at all */
    size_t n_results;
    struct send_sink_result results[SEND_MAX_SINKS];
    /* the engine's */
    int probe; /* the engine's own auto-recovery probe: nobody waits for it */
    size_t pending;
    char expected[65];
    struct send_request *next;
};

/* Opens the ledger, starts the plugins, checks the secret key against stored
 * credentials, starts the courier and reads the webhooks. Returns the engine
 * (owned by the caller: engine_destroy), or NULL with d set. */
struct engine *engine_create(struct config *c, struct clock *clk, struct diag *d);

/* Runs the daemon's loop until o->stop, o->until, or a runtime failure (the
 * store refusing writes: -1 with d set). */
int engine_run(struct engine *e, const struct engine_options *o, struct diag *d);

/* Runs one send on the caller's thread (the engine's loop is not running):
 * the CLI's `webhook verify` and `webhook test`. Returns 0 when it completed
 * (r->status tells how), -1 with d set when the engine failed. */
int engine_send(struct engine *e, struct send_request *r, struct diag *d);

/* Hands r to a running engine's loop and waits for it (any thread). Returns 0
 * when done, -1 when the engine is stopping (r->message says so). */
int engine_request(struct engine *e, struct send_request *r);

/* The counters of this run (the engine's thread, or after engine_run). */
const struct engine_stats *engine_stats(const struct engine *e);

/* A copy of the status published last (any thread). */
void engine_get_status(struct engine *e, struct engine_status *out);

/* The engine's metrics (thread-safe: see metrics.h). */
struct metrics *engine_metrics(struct engine *e);

/* Finishes what is in flight, stops the courier, and frees the engine.
 * Requests still waiting are answered "stopping". Accepts NULL. */
void engine_destroy(struct engine *e);

/* The offset of the k-th retry (1-based, of n) after a round's first
 * attempt, for a window of window_s seconds: 30s, 1m30s, 3m30s, 6m30s, 10m for
 * the defaults, each but the last with up to +-10% jitter derived from id. */
mtr_time retry_offset(int k, int n, int64_t window_s, const char *id);

#endif
