/* The daemon's counters for `GET /metrics`, in Prometheus text format. The
 * engine's thread updates them in batches (once per written transaction of
 * outcomes, not per delivery), the admin API's thread renders them; both under
 * one lock. Labels are bounded: webhook names and status classes, never
 * vehicle ids or delivery ids. Gauges that the ledger knows better (jobs and
 * deliveries by state, webhooks by state) are read at scrape time and handed
 * to the renderer. */
#ifndef MTR_METRICS_H
#define MTR_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "origins.h"

#define LATENCY_BUCKETS 14

enum attempt_class { CLASS_2XX, CLASS_3XX, CLASS_4XX, CLASS_5XX, CLASS_ERROR, N_CLASSES };

enum fetch_error_code {
    FETCH_TRANSIENT, /* retried in the next slot */
    FETCH_FAILED,    /* delivered with an error element */
    FETCH_MALFORMED, /* the source's answer was not valid data */
    FETCH_REAUTH,    /* the vehicle needs re-authentication */
    N_FETCH_CODES
};

struct histogram {
    uint64_t bucket[LATENCY_BUCKETS]; /* not cumulative; rendered cumulative */
    uint64_t count;
    double sum;
};

struct webhook_metrics {
    char name[72];
    uint64_t delivered, failed;
    uint64_t attempts[N_CLASSES];
    struct histogram latency;
};

struct metrics {
    pthread_mutex_t mu;
    struct webhook_metrics *wh; /* by the engine's webhook index */
    size_t n_wh;
    uint64_t ticks;
    uint64_t jobs;
    uint64_t jobs_missed;
    uint64_t fetch_errors[N_FETCH_CODES];
    struct histogram ledger_write;
};

/* What the ledger and the webhook set say at scrape time. */
struct metrics_gauges {
    uint64_t jobs[4];       /* by enum mtr_job_state */
    uint64_t deliveries[3]; /* by enum mtr_delivery_state */
    uint64_t webhooks[3];   /* by enum mtr_webhook_state */
    uint64_t subscriptions;
    size_t in_flight;
    size_t queued;
    double uptime_s;
    const struct origins *origins; /* receivers deliveries were deferred for (NULL: none) */
    mtr_time now;                  /* the engine's clock, for the origins' waits */
};

int metrics_init(struct metrics *m);
void metrics_free(struct metrics *m);

/* Under the lock (metrics_lock): webhook i's counters, created with its name
 * on first use; NULL when out of memory. */
void metrics_lock(struct metrics *m);
void metrics_unlock(struct metrics *m);
struct webhook_metrics *metrics_webhook(struct metrics *m, size_t i, const char *name);
void histogram_observe(struct histogram *h, double seconds);
enum attempt_class attempt_class(int http_status);

/* The exposition text (owned by the caller), or NULL when out of memory. */
char *metrics_render(struct metrics *m, const struct metrics_gauges *g, const char *version);

#endif
