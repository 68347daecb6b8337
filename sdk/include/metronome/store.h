/* Store backends: the ledger of SPEC section 7 - webhooks, vehicles,
 * subscriptions, jobs (webhook, vehicle, tick), deliveries and attempts.
 * Shaped so several metronome nodes can share one database: due work is
 * claimed under a lease (owner, expiry), each tick's jobs are written once and
 * delivery ids are deterministic, so scheduling is idempotent: a restarted or
 * racing node re-claims what a dead one held and never schedules anything
 * twice. A lease also moves the row's due time
 * (due_at, next_attempt_at) to the lease's end, so "due" alone decides what
 * can be claimed: a dead node's work becomes due when its lease expires. Rows handed to callbacks
 * are valid during the callback only. Every call returns MTR_OK or MTR_ERR (with host->set_error).
 */
#ifndef METRONOME_STORE_H
#define METRONOME_STORE_H

#include <metronome/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mtr_webhook_state {
    MTR_WEBHOOK_UNVERIFIED = 0,
    MTR_WEBHOOK_ACTIVE = 1,
    MTR_WEBHOOK_DISABLED = 2,
};

enum mtr_job_state {
    MTR_JOB_DUE = 0,
    MTR_JOB_FETCHED = 1,
    MTR_JOB_SENT = 2,
    MTR_JOB_MISSED = 3,
};

enum mtr_delivery_state {
    MTR_DELIVERY_PENDING = 0,
    MTR_DELIVERY_DELIVERED = 1,
    MTR_DELIVERY_FAILED = 2,
};

enum mtr_delivery_kind {
    MTR_DELIVERY_SCHEDULED = 0,
    MTR_DELIVERY_TEST = 1,
    MTR_DELIVERY_EVENT = 2, /* ABI 1.3: metronome's own event stream (webhook_id is all zeros) */
};

struct mtr_webhook_row {
    const char *id; /* UUID */
    const char *name;
    const char *callback_uri;
    const char *definition; /* the core's description of cadence, endpoints, units */
    int state;              /* enum mtr_webhook_state */
    const char *reason;     /* why disabled: retries-exhausted, gone, operator */
    mtr_time state_at;
    mtr_time active_from; /* ticks after this are scheduled */
    mtr_time last_tick;   /* newest tick materialized, 0 if none */
};

struct mtr_vehicle_row {
    const char *id;
    const char *source;
    const void *access_token; /* encrypted by the core; NULL for simulated */
    size_t access_len;
    const void *refresh_token;
    size_t refresh_len;
    mtr_time access_expires;
    int needs_reauth;
};

struct mtr_job_key {
    const char *webhook_id;
    const char *vehicle_id;
    mtr_time tick;
};

/* A claimed job, with its vehicle. */
struct mtr_job {
    struct mtr_job_key key;
    int state;
    mtr_time due_at; /* when it was due: before the lease this claim took */
    int fetch_attempts;
    struct mtr_vehicle_row vehicle;
};

struct mtr_delivery_row {
    const char *id; /* deterministic from (webhook, tick, vehicles, sink) */
    const char *webhook_id;
    const char *sink;
    mtr_time tick;
    int kind;        /* enum mtr_delivery_kind */
    int state;       /* enum mtr_delivery_state */
    int attempts;    /* made so far, over all rounds */
    int round_start; /* attempts made before this round (a replay starts a round) */
    mtr_time created_at;
    mtr_time first_attempt_at; /* of this round; 0 before it */
    mtr_time next_attempt_at;
    const char *body;
    size_t body_len;
    int vehicles;
    int last_status;
    const char *last_error;
    mtr_time updated_at;
    /* on insert: a lease taken at once by the inserting node (NULL: none);
     * next_attempt_at is then lease_until */
    const char *lease_owner;
    mtr_time lease_until;
};

struct mtr_attempt_row {
    const char *delivery_id;
    int n; /* 1 for the first attempt */
    mtr_time at;
    int http_status;
    const char *error;
    int64_t latency_us;
};

/* One outcome of a batch (ABI 1.3): the attempt, and the delivery's state and
 * next due time after it, as record_attempt takes them. */
struct mtr_attempt_record {
    struct mtr_attempt_row attempt;
    int new_state;
    mtr_time next_attempt_at;
};

/* A delivery sent later without an attempt counted (ABI 1.4): its next due
 * time, and what the delivery shows meanwhile as its last status and error. */
struct mtr_deferral {
    const char *delivery_id;
    mtr_time at; /* when it was deferred */
    mtr_time next_attempt_at;
    int last_status; /* the receiver's answer (429, 503), or 0 when nothing was sent */
    const char *last_error;
};

/* A subscription with its vehicle's credential state (ABI 1.2). */
struct mtr_subscription_row {
    const char *webhook_id;
    const char *vehicle_id;
    const char *source; /* the vehicle's source */
    mtr_time made_at;
    int live; /* the vehicle holds tokens */
    int needs_reauth;
    mtr_time access_expires;
};

/* What deliveries_query selects (ABI 1.2): rows in (tick, id) order after the
 * cursor (after_tick, after_id) when after_id is set. */
struct mtr_delivery_query {
    const char *webhook_id; /* NULL: every webhook */
    int state;              /* enum mtr_delivery_state, or -1 for any */
    mtr_time tick_from;     /* ticks >= this (0: no bound) */
    mtr_time tick_to;       /* ticks < this (0: no bound) */
    mtr_time after_tick;
    const char *after_id;
    size_t limit;
};

/* A webhook's recent deliveries (ABI 1.2): counts by state of those whose
 * tick is at or after `since`, and its newest delivery's state. */
struct mtr_delivery_counts {
    uint64_t by_state[3]; /* enum mtr_delivery_state */
    int has_last;
    int last_state;
    int last_status;
    mtr_time last_at; /* its last update */
};

/* A node of the cluster (ABI 1.2): one running metronome, by its lease owner
 * id; leases counts the jobs and deliveries it holds (nodes_list fills it). */
struct mtr_node_row {
    const char *id;
    const char *host;
    mtr_time started_at;
    mtr_time last_seen;
    uint64_t leases;
};

struct mtr_store_stats {
    uint64_t jobs[4];       /* by enum mtr_job_state */
    uint64_t deliveries[3]; /* by enum mtr_delivery_state */
    uint64_t attempts;
    uint64_t retries; /* attempts after the first */
    uint64_t subscriptions;
};

/* Called once per row; a non-zero return stops the iteration. */
typedef int (*mtr_webhook_fn)(void *arg, const struct mtr_webhook_row *row);
typedef int (*mtr_job_fn)(void *arg, const struct mtr_job *job);
typedef int (*mtr_delivery_fn)(void *arg, const struct mtr_delivery_row *row);
typedef int (*mtr_attempt_fn)(void *arg, const struct mtr_attempt_row *row);
typedef int (*mtr_subscription_fn)(void *arg, const struct mtr_subscription_row *row);
typedef int (*mtr_vehicle_fn)(void *arg, const struct mtr_vehicle_row *row);

struct mtr_store_ops {
    uint32_t struct_size;
    uint32_t reserved;

    /* transactions group the calls between them; nesting is not supported */
    int (*begin)(void *state);
    int (*commit)(void *state);
    int (*rollback)(void *state);

    /* webhooks: upsert by name keeps the id; a changed callback_uri makes the
     * webhook unverified again */
    int (*webhook_upsert)(void *state, const struct mtr_webhook_row *w, mtr_time now);
    int (*webhook_list)(void *state, const char *name, mtr_webhook_fn fn, void *arg);
    int (*webhook_set_state)(void *state, const char *id, int new_state, const char *reason,
                             mtr_time now);
    int (*webhook_set_last_tick)(void *state, const char *id, mtr_time tick);

    /* vehicles and subscriptions */
    int (*vehicle_upsert)(void *state, const struct mtr_vehicle_row *v);
    int (*vehicle_get)(void *state, const char *id,
                       int (*fn)(void *, const struct mtr_vehicle_row *), void *arg);
    int (*subscribe)(void *state, const char *webhook_id, const char *vehicle_id, mtr_time now,
                     uint32_t spread_key, int *created);
    int (*unsubscribe)(void *state, const char *webhook_id, const char *vehicle_id, mtr_time now,
                       int *removed);

    /* jobs: one per (webhook, vehicle, tick) for every subscription made
     * before the tick and not removed by it; a tick materialized before is
     * left alone. due_at = tick + spread_min + ((spread_key * (spread_max -
     * spread_min + 1)) >> 32), which grows with spread_key, and claim_jobs
     * hands due jobs out in (due_at, spread_key) order: the core's delivery ids
     * grow in that order, so a backend that stores jobs and deliveries in it
     * appends to its indexes instead of writing at random places. */
    int (*materialize_tick)(void *state, const char *webhook_id, mtr_time tick, int job_state,
                            int64_t spread_min, int64_t spread_max, uint64_t *count);
    int (*claim_jobs)(void *state, const char *owner, mtr_time now, mtr_time lease_until,
                      size_t max, mtr_job_fn fn, void *arg);
    int (*job_retry)(void *state, const struct mtr_job_key *key, mtr_time due_at,
                     const char *error);
    int (*job_set_state)(void *state, const struct mtr_job_key *key, int new_state);
    int (*jobs_miss_pending)(void *state, const char *webhook_id, uint64_t *count);

    /* deliveries: inserted with their bytes before the first attempt, and the
     * jobs they carry marked sent, in one call; an existing id is left alone
     * (inserted[i], if not NULL, tells which rows were new) */
    int (*deliveries_insert)(void *state, const struct mtr_delivery_row *rows, size_t n,
                             const struct mtr_job_key *jobs, size_t n_jobs, int *inserted);
    int (*claim_deliveries)(void *state, const char *owner, mtr_time now, mtr_time lease_until,
                            size_t max, mtr_delivery_fn fn, void *arg);
    int (*record_attempt)(void *state, const struct mtr_attempt_row *a, int new_state,
                          mtr_time next_attempt_at);
    int (*fail_pending)(void *state, const char *webhook_id, const char *reason, mtr_time now,
                        uint64_t *count);
    /* one delivery by id, or every scheduled (never test) delivery of a webhook
     * in from_state, back to pending with the same id and bytes */
    int (*replay)(void *state, const char *delivery_id, const char *webhook_id, int from_state,
                  mtr_time now, uint64_t *count);

    /* the earliest instant at which a job or delivery becomes claimable;
     * *found = 0 when there is none */
    int (*next_due)(void *state, mtr_time *at, int *found);

    /* reading the ledger */
    int (*list_deliveries)(void *state, const char *webhook_id, int delivery_state, size_t limit,
                           mtr_delivery_fn fn, void *arg);
    int (*list_attempts)(void *state, const char *delivery_id, mtr_attempt_fn fn, void *arg);
    int (*delivery_get)(void *state, const char *delivery_id, mtr_delivery_fn fn, void *arg);

    /* retention, in small batches (at most max rows each call): payload bytes
     * of deliveries delivered before delivered_before or failed before
     * failed_before are dropped; deliveries, their attempts and jobs last
     * touched before history_before are deleted. *pruned counts what changed;
     * 0 means nothing is left to prune now. */
    int (*prune)(void *state, mtr_time delivered_before, mtr_time failed_before,
                 mtr_time history_before, size_t max, uint64_t *pruned);
    int (*stats)(void *state, const char *webhook_id, struct mtr_store_stats *out);

    /* ---- ABI 1.1 (NULL in older stores) ---- */
    /* Called before start() by commands that only read: open the existing
     * ledger without writing to it (no schema upgrade, no file created); a
     * store that cannot answers MTR_ERR saying why. */
    int (*read_only)(void *state);
    /* The backend's integrity check (SQLite's PRAGMA integrity_check): fn is
     * called once per problem found, with a description; *problems counts them. */
    int (*check)(void *state, int (*fn)(void *arg, const char *problem), void *arg,
                 uint64_t *problems);
    /* One vehicle that holds credentials, if any (fn is not called when none
     * does): the core opens its tokens at start, so a wrong key stops the
     * daemon before anything is fetched or sent. */
    int (*vehicle_sample)(void *state, int (*fn)(void *, const struct mtr_vehicle_row *),
                          void *arg);

    /* ---- ABI 1.2 (NULL in older stores): the admin API's listings ---- */
    /* Current subscriptions of a webhook in vehicle id order, those after the
     * vehicle id `after` (NULL: from the start), at most limit; vehicle_id, if
     * set, selects that one vehicle. */
    int (*subscriptions_list)(void *state, const char *webhook_id, const char *vehicle_id,
                              const char *after, size_t limit, mtr_subscription_fn fn, void *arg);
    /* Vehicles in id order after `after`, at most limit; only those needing
     * re-authentication when needs_reauth_only. */
    int (*vehicles_list)(void *state, int needs_reauth_only, const char *after, size_t limit,
                         mtr_vehicle_fn fn, void *arg);
    int (*deliveries_query)(void *state, const struct mtr_delivery_query *q, mtr_delivery_fn fn,
                            void *arg);
    /* Removes a webhook: its row goes, its subscriptions are ended at now,
     * its due jobs become missed and its pending deliveries failed; deliveries
     * and attempts stay as history. */
    int (*webhook_delete)(void *state, const char *id, mtr_time now);
    int (*delivery_counts)(void *state, const char *webhook_id, mtr_time since,
                           struct mtr_delivery_counts *out);
    /* Fencing: record_attempt by the node `owner`, which took the delivery
     * under its lease. When another node holds the delivery's lease now (the
     * lease ran out and was taken over), nothing is written and *fenced = 1:
     * the new owner's work stands, and this node's outcome was a same-id
     * redelivery. A delivery no node holds (a test's) takes anyone's. */
    int (*record_attempt_as)(void *state, const char *owner, const struct mtr_attempt_row *a,
                             int new_state, mtr_time next_attempt_at, int *fenced);
    /* The cluster's nodes: a running node says it is alive (id, host,
     * started_at, last_seen) every few seconds; nodes_list gives those seen
     * at or after seen_since, with the leases each holds that end after now. */
    int (*node_heartbeat)(void *state, const struct mtr_node_row *node);
    int (*nodes_list)(void *state, mtr_time seen_since, mtr_time now,
                      int (*fn)(void *arg, const struct mtr_node_row *node), void *arg);
    /* Fencing of jobs' completions, as record_attempt_as: by the node
     * `owner`, refused (*fenced = 1, nothing written) while another node
     * holds the job's lease. */
    int (*job_retry_as)(void *state, const char *owner, const struct mtr_job_key *key,
                        mtr_time due_at, const char *error, int *fenced);
    int (*job_set_state_as)(void *state, const char *owner, const struct mtr_job_key *key,
                            int new_state, int *fenced);
    /* ABI 1.3, optional. record_attempt_as for n outcomes at once, inside the
     * core's transaction; fenced[i] as record_attempt_as's *fenced for recs[i].
     * Without it the core calls record_attempt_as once per outcome; a store
     * whose every statement is a round trip to a server sends them together. */
    int (*record_attempts_as)(void *state, const char *owner, const struct mtr_attempt_record *recs,
                              size_t n, int *fenced);
    /* ABI 1.3, optional. A rate limit shared by every node on this ledger: the
     * token bucket `key` holds at most burst tokens and gains per_minute tokens
     * a minute of `now` (a node whose clock is behind the bucket's adds none).
     * Takes up to want tokens, atomically, and says how many in *granted (0
     * when it is empty). Without it each node keeps its own bucket. */
    int (*quota_take)(void *state, const char *key, int64_t per_minute, int64_t burst, mtr_time now,
                      int64_t want, int64_t *granted);
    /* ABI 1.4, optional. Pending deliveries due again at next_attempt_at with
     * no attempt recorded (their attempts, round and first attempt stay), the
     * lease released; by the node `owner`, fenced as record_attempts_as. Without
     * it the core records a deferral as a failed attempt. */
    int (*defer_deliveries)(void *state, const char *owner, const struct mtr_deferral *d, size_t n,
                            int *fenced);
    /* ABI 1.4, optional (a webhook's supersede and ordered need them). A
     * delivery's subject is a key of the vehicles it carries: two deliveries
     * of one webhook and sink with the same subject carry the same vehicles.
     * set_subjects gives n deliveries theirs, after they are inserted. */
    int (*set_subjects)(void *state, const char *const *ids, const int64_t *subjects, size_t n);
    /* The pending deliveries with delivery_id's webhook, sink and subject and
     * an older tick, not held under a lease at now, become failed with
     * last_error reason; *count says how many. */
    int (*supersede_older)(void *state, const char *delivery_id, mtr_time now, const char *reason,
                           uint64_t *count);
    /* Whether a delivery with delivery_id's webhook, sink and subject and an
     * older tick is pending (*found): *due is the soonest next_attempt_at
     * among them, *leased whether one is held under a lease at now. */
    int (*older_pending)(void *state, const char *delivery_id, mtr_time now, int *found,
                         mtr_time *due, int *leased);
    /* ABI 1.5, optional. claim_jobs without writing a lease: called only
     * inside the core's transaction (begin), which settles every job it
     * hands out - sent, retried or missed - before it commits, so a crash or
     * a rollback leaves them due as they were. The transaction must keep any
     * other process from claiming the same jobs until it ends (SQLite's
     * write lock does); a store that cannot promise that leaves it NULL. The
     * core uses it when every source answers within submit(): a job row is
     * then written twice (made, sent) instead of three times. */
    int (*claim_jobs_held)(void *state, mtr_time now, size_t max, mtr_job_fn fn, void *arg);
};

/* The frozen layout of ABI 1.0 to 1.5 (LP64): these only grow at the end. A core reading a
 * field added later checks the table's struct_size first. */
#if defined(__LP64__) && !defined(__cplusplus)
_Static_assert(offsetof(struct mtr_store_ops, begin) == 8, "ABI: store begin");
_Static_assert(offsetof(struct mtr_store_ops, claim_jobs) == 104, "ABI: store claim_jobs");
_Static_assert(offsetof(struct mtr_store_ops, prune) == 208, "ABI: store prune");
_Static_assert(offsetof(struct mtr_store_ops, read_only) == 224, "ABI 1.1: store read_only");
_Static_assert(offsetof(struct mtr_store_ops, subscriptions_list) == 248,
               "ABI 1.2: store subscriptions_list");
_Static_assert(offsetof(struct mtr_store_ops, record_attempts_as) == 328,
               "ABI 1.3: store record_attempts_as");
_Static_assert(offsetof(struct mtr_store_ops, defer_deliveries) == 344,
               "ABI 1.4: store defer_deliveries");
_Static_assert(offsetof(struct mtr_store_ops, claim_jobs_held) == 376,
               "ABI 1.5: store claim_jobs_held");
_Static_assert(sizeof(struct mtr_store_ops) == 384, "ABI 1.5 store ops size");
_Static_assert(sizeof(struct mtr_webhook_row) == 72, "ABI 1.0 webhook row size");
_Static_assert(sizeof(struct mtr_vehicle_row) == 64, "ABI 1.0 vehicle row size");
_Static_assert(sizeof(struct mtr_job) == 112, "ABI 1.0 job size");
_Static_assert(sizeof(struct mtr_delivery_row) == 128, "ABI 1.0 delivery row size");
#endif

#ifdef __cplusplus
}
#endif

#endif
