/* Receiver protection for the http sink: per receiver origin (scheme, host
 * and port of the URL it posts to), a cap on requests in flight
 * (max_in_flight) and on requests started per second of the daemon's clock
 * (max_rate), shared by every webhook that posts there, and a pause when the
 * receiver answers 429 or 503 with Retry-After. This file decides; http.c
 * acts: a delivery may go now, be held in the origin's queue until one of its
 * requests ends, or be deferred - handed back to the core to be sent again
 * after a wait, through the ledger, so a slow origin never holds the
 * engine's slots and other origins keep going. */
#ifndef MTR_HTTP_LIMITS_H
#define MTR_HTTP_LIMITS_H

#include <metronome/metronome.h>
#include <stddef.h>
#include <stdint.h>

/* A delivery waiting in its origin's queue for a request of its own. */
struct held {
    struct mtr_delivery d; /* its strings are the core's until the outcome */
    mtr_sink_done_fn done;
    void *core;
    struct held *next;
};

struct origin {
    char *key;
    int64_t in_flight;
    mtr_time second; /* the clock second started and deferred count in */
    int64_t started, deferred;
    mtr_time paused_until;    /* from a Retry-After (0: not paused) */
    int paused_status;        /* the answer that paused it */
    int probing;              /* after a pause: one request at a time until one is not refused */
    struct held *head, *tail; /* oldest first */
    size_t n_held;
};

struct limits {
    int64_t max_in_flight; /* 0: no cap */
    int64_t max_rate;      /* requests a second; 0: no cap */
    int pause_on_retry_after;
    struct origin **slots; /* open addressing by key, a power of two */
    size_t cap, n;
};

enum verdict {
    GO,    /* send now (limits_start counts it) */
    HOLD,  /* queue it: a request of the origin will end soon */
    DEFER, /* hand it back: *wait seconds, *why says why */
};

/* Whether any limit is set: without one the sink never looks up an origin. */
int limits_on(const struct limits *L);

/* The origin of url (created on first use); NULL without memory or when url
 * is not a URL libcurl reads. */
struct origin *limits_origin(struct limits *L, const char *url);

/* What to do with one more delivery to o at now; queued: it is o's oldest
 * held one (it stays held while o is at max_in_flight). */
enum verdict limits_check(struct limits *L, struct origin *o, mtr_time now, int queued,
                          int64_t *wait, char *why, size_t len);
void limits_start(struct origin *o, mtr_time now);
/* A request counted by limits_start that did not start after all. */
void limits_unstart(struct origin *o);
void limits_end(struct origin *o);

/* The receiver answered 429 or 503 with Retry-After: seconds: o waits that
 * long (the later of two pauses wins), and then sends one request at a time
 * until one is answered otherwise. Returns 1 when the pause is honoured
 * (pause_on_retry_after), 0 when the answer is an ordinary failure. */
int limits_pause(struct limits *L, struct origin *o, mtr_time now, int64_t seconds, int status);
/* A request of o was answered without asking to wait: o is itself again. */
void limits_answered(struct origin *o);

/* Calls fn for each origin holding deliveries. */
void limits_each_holding(struct limits *L, void (*fn)(void *arg, struct origin *o), void *arg);

void limits_free(struct limits *L);

#endif
