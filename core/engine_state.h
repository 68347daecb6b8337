/* The engine's shared state, below its stages: what the loop (engine.c) and
 * each stage (ticks.c, fetch.c, delivery.c, outcomes.c) read and write, and
 * the small lookups they share. Only the engine's thread touches any of it,
 * except the inbox (requests from the admin API's thread) and the published
 * status, each behind its own lock. Stages form a line, not a circle: the loop
 * calls each stage; no stage calls a sibling. */
#ifndef MTR_ENGINE_STATE_H
#define MTR_ENGINE_STATE_H

#include <pthread.h>
#include <time.h>
#include "courier.h"
#include "engine.h"
#include "heap.h"
#include "metrics.h"
#include "payload.h"
#include "quota.h"
#include "vault.h"
#include "webhooks.h"

#define JOB_BATCH 2048
#define DELIVERY_BATCH 256
#define MAX_IN_FLIGHT 8192
#define LEASE_SECONDS 600 /* > any sink timeout (300 s at most), so leases need no renewal */
#define MISSED_TICKS_RECORDED 1000
#define MAX_DATA_BYTES (16u << 20) /* one vehicle's data from a source */
#define RESPONSE_KEPT 65536        /* of a verify answer; a receiver's word is bounded */
#define DEFER_LIMIT_S 86400        /* a delivery is deferred for at most a day after it is made */
#define ORDER_RECHECK_S 2          /* ordered: a payload behind one in flight looks again then */

/* A delivery handed to a sink, until its outcome is handled. A scheduled or
 * replayed delivery, a test payload, or a verify challenge (req set: the
 * request it answers, in slot). */
struct flight {
    struct courier_item ci; /* first: the courier hands it back */
    char id[UUID_LEN + 1];
    char webhook_id[UUID_LEN + 1]; /* the sink reads it on the courier's thread: a copy */
    size_t wh;                     /* index into e->ws, or SIZE_MAX for an unknown webhook */
    size_t sink;                   /* index into config sinks */
    int kind;                      /* enum mtr_delivery_kind, or FLIGHT_VERIFY */
    int attempts;                  /* made before this one */
    int earlier;                   /* made before this run (resumed from the ledger) */
    mtr_time created_at;           /* deferrals stop counting a day after it */
    int behind_older;              /* ordered: held back for an older tick's delivery */
    int round_start;               /* attempts before this round */
    mtr_time first_attempt_at;
    char *body;
    size_t body_len;
    struct payload_headers ph;
    struct send_request *req;
    size_t slot;
    struct flight *next; /* in a list of the engine's */
};

#define FLIGHT_VERIFY 100 /* a challenge: not a delivery, nothing recorded */

/* An attempt's outcome, waiting to be written with others in one transaction. */
struct outcome {
    char id[UUID_LEN + 1];
    int n;
    mtr_time at;
    int http_status;
    char *error;
    int64_t latency_us;
    int state;
    mtr_time next_at;
    size_t wh;    /* for the metrics */
    int kind;     /* enum mtr_delivery_kind: a scheduled one that fails is an event */
    int fenced;   /* the store refused it: another node holds the lease */
    int deferred; /* not an attempt: due again at next_at (store.h: mtr_deferral) */
};

/* Requests from other threads (the admin API): one-shot sends. */
struct inbox {
    pthread_mutex_t mu;
    pthread_cond_t done;
    struct send_request *head;
    int closed; /* the engine is gone: requests are refused */
};

struct engine {
    struct config *c;
    struct clock *clk;
    struct ledger L;
    struct quota quota; /* the sources' shared rate limits, in L */
    char owner[128];
    struct webhook_set ws;
    struct timespec last_refresh;   /* of ws (monotonic) */
    struct timespec last_heartbeat; /* said in the ledger (monotonic; 0: not yet) */
    struct heap ticks;              /* id = webhook index */
    struct courier courier;         /* the sinks' thread */
    struct flight *ready;           /* inserted, waiting for their transaction to commit */
    size_t in_flight;
    struct outcome *outcomes; /* recorded in batches */
    size_t n_outcomes, cap_outcomes;
    struct timespec last_flush;
    struct vault vault;
    mtr_time last_prune;
    struct signer signer; /* SC-Signature, keyed with the management token */
    struct engine_stats stats;
    struct origins origins;     /* deferrals by receiver origin */
    struct timespec first_tick; /* wall, monotonic: the first tick fired (0: none yet) */
    struct diag *d;
    int failed;          /* the store refused a write: the run ends */
    int store_away;      /* the store is unreachable for now: each turn tries again */
    mtr_time started_at; /* deliveries made before this are "earlier" */
    time_t started_wall;
    int *failing; /* per webhook index: attempts failed in a row (logged once) */
    size_t n_failing;
    struct inbox inbox;
    struct send_request *sending; /* taken from the inbox, outcomes awaited */
    struct metrics metrics;
    pthread_mutex_t status_mu;
    struct engine_status status; /* published each turn of the loop */
    int stopping;
    unsigned gen; /* batches of claims, so a webhook's state is read again once a batch */
    struct diag diag;
    struct flight *settled; /* claimed but not sendable: their outcome is set already */
};

const char *sink_name(const struct engine *e, size_t i);
const struct mtr_sink_ops *sink_ops(const struct engine *e, size_t i);
void *sink_state(const struct engine *e, size_t i);
const struct mtr_source_ops *source_ops(const struct engine *e, size_t i);
size_t find_source(const struct engine *e, const char *name, size_t fallback);
size_t find_sink(const struct engine *e, const char *name);
/* The name of webhook i, for messages ("?" when unknown). */
const char *wh_name(const struct engine *e, size_t i);

/* Records that the store refused a call: the loop stops, unless the failure
 * is a passing one (ledger_transient), when the loop pauses and tries again.
 * Returns -1. */
int store_failed(struct engine *e, const char *what);

/* Re-reads webhook i's row before a decision; 0 or -1 (store failed). */
int engine_reread(struct engine *e, size_t i);

/* Whether webhook i is active now: a cached "not active" is read again from
 * the ledger first (once per batch), so an operator's enable counts at once,
 * whoever made it. */
int engine_active_now(struct engine *e, size_t i);

/* Marks a send request done and wakes whoever waits for it. */
void engine_complete(struct engine *e, struct send_request *r);

void flight_free(struct flight *f);

/* Starts sources (checking their mode) and sinks. */
int start_plugins(struct config *c, struct diag *d);

/* Remembers an error for `status` (last errors) and logs it. */
void engine_note_error(struct engine *e, const char *origin, const char *fmt, ...) MTR_PRINTF(3, 4);

#endif
