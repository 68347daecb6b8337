/* The ledger as the core sees it: the store plugin started and reached
 * through its ops, with the pipeline's webhooks synchronised into it (a
 * YAML-declared webhook keeps its UUID by name; a changed callback URI makes
 * it unverified again). Every guarantee of SPEC section 7 rests on the store;
 * this module only adds the core's bookkeeping around it. */
#ifndef MTR_LEDGER_H
#define MTR_LEDGER_H

#include "config.h"
#include "diag.h"
#include "sign.h"

struct ledger {
    struct instance *inst; /* the config's store instance (not owned) */
    const struct mtr_store_ops *ops;
    void *st;
    int last_rc; /* of the last call: MTR_EAGAIN says the store will be back */
    int depth;   /* transactions open (ledger_begin nests) */
    int doomed;  /* an inner one rolled back: the outer one will too */
};

/* A webhook's row, copied out of the store. */
struct webhook_rec {
    char id[UUID_LEN + 1];
    int state; /* enum mtr_webhook_state */
    char reason[32];
    mtr_time state_at;
    mtr_time active_from;
    mtr_time last_tick;
};

/* Starts the store plugin (opening and migrating its database). */
int ledger_open(struct ledger *L, const struct config *c, struct diag *d);
/* Starts another instance of the store (a second connection to the same
 * ledger, for the admin API): inst is not owned. */
int ledger_open_instance(struct ledger *L, struct instance *inst, struct diag *d);
/* Starts it for a command that only reads: nothing is created, upgraded or
 * written, so a read-only ledger file can be read. */
int ledger_open_read_only(struct ledger *L, const struct config *c, struct diag *d);

/* Whether the last call failed for a passing reason (a database server
 * restarting): the caller keeps what it holds and tries again. */
int ledger_transient(const struct ledger *L);

/* The store's last error message. */
const char *ledger_error(const struct ledger *L);

/* Upserts every webhook of the pipeline and reads their rows back into out
 * (c->n_webhooks entries, in pipeline order). */
int ledger_sync_webhooks(struct ledger *L, const struct config *c, mtr_time now,
                         struct webhook_rec *out, struct diag *d);

/* Reads one webhook by name or id; *found = 0 when there is none. */
int ledger_get_webhook(struct ledger *L, const char *name, struct webhook_rec *out, int *found);

/* Every webhook row, in name order. */
int ledger_list_webhooks(struct ledger *L, mtr_webhook_fn fn, void *arg);
void ledger_copy_row(const struct mtr_webhook_row *w, struct webhook_rec *out);

/* Disables a webhook: its pending deliveries become failed and its due jobs
 * missed, and the events about it (n_events rows, may be 0) are written, in
 * one transaction. */
int ledger_disable(struct ledger *L, const char *webhook_id, const char *reason, mtr_time now,
                   const struct mtr_delivery_row *events, size_t n_events);

/* The store's integrity check: fn is called per problem; *problems counts them. */
int ledger_check(struct ledger *L, int (*fn)(void *, const char *), void *arg, uint64_t *problems,
                 struct diag *d);

const char *webhook_state_name(int state);

/* ---- the store's operations (metronome/store.h says what each does): the
 * rest of the core calls these, never the plugin's ops table. Each returns
 * the store's MTR_OK or MTR_ERR; an operation the plugin lacks is MTR_ERR
 * with ledger_error naming it. ---- */
/* An attempt recorded by the node owner (fenced: refused, *fenced = 1, when
 * another node holds the delivery's lease); plain record_attempt on a store
 * without fencing. */
int ledger_record_attempt_fenced(struct ledger *L, const char *owner,
                                 const struct mtr_attempt_row *a, int new_state,
                                 mtr_time next_attempt_at, int *fenced);
/* n outcomes recorded by the node owner, each fenced as above (fenced[i]),
 * in one call when the store batches them. */
int ledger_record_attempts_fenced(struct ledger *L, const char *owner,
                                  const struct mtr_attempt_record *recs, size_t n, int *fenced);
/* Deferrals by the node owner, fenced as above (store.h's defer_deliveries);
 * ledger_has_defer says whether the store keeps them. */
int ledger_has_defer(const struct ledger *L);
int ledger_defer_deliveries(struct ledger *L, const char *owner, const struct mtr_deferral *d,
                            size_t n, int *fenced);
/* Deliveries' subjects, and what supersede and ordered ask of them
 * (store.h); ledger_has_subjects says whether the store keeps them. */
int ledger_has_subjects(const struct ledger *L);
int ledger_set_subjects(struct ledger *L, const char *const *ids, const int64_t *subjects,
                        size_t n);
int ledger_supersede_older(struct ledger *L, const char *delivery_id, mtr_time now,
                           const char *reason, uint64_t *count);
int ledger_older_pending(struct ledger *L, const char *delivery_id, mtr_time now, int *found,
                         mtr_time *due, int *leased);
/* Takes up to want tokens from the ledger's shared bucket key (store.h's
 * quota_take): 0 with *granted set, or -1 on a store error or a store that
 * keeps no shared buckets (ledger_has_quota). */
int ledger_has_quota(const struct ledger *L);
int ledger_quota_take(struct ledger *L, const char *key, int64_t per_minute, int64_t burst,
                      mtr_time now, int64_t want, int64_t *granted);
/* A job's completions by the node owner, fenced the same way. */
int ledger_job_retry_fenced(struct ledger *L, const char *owner, const struct mtr_job_key *key,
                            mtr_time due_at, const char *error, int *fenced);
int ledger_job_set_state_fenced(struct ledger *L, const char *owner, const struct mtr_job_key *key,
                                int new_state, int *fenced);
int ledger_has_prune(const struct ledger *L);
int ledger_has_nodes(const struct ledger *L);
int ledger_node_heartbeat(struct ledger *L, const struct mtr_node_row *node);
int ledger_nodes_list(struct ledger *L, mtr_time seen_since, mtr_time now,
                      int (*fn)(void *, const struct mtr_node_row *), void *arg);
int ledger_has_vehicle_sample(const struct ledger *L);
int ledger_has_delivery_counts(const struct ledger *L);
int ledger_begin(struct ledger *L);
int ledger_commit(struct ledger *L);
int ledger_rollback(struct ledger *L);
int ledger_webhook_upsert(struct ledger *L, const struct mtr_webhook_row *w, mtr_time now);
int ledger_webhook_list(struct ledger *L, const char *name, mtr_webhook_fn fn, void *arg);
int ledger_webhook_set_state(struct ledger *L, const char *id, int new_state, const char *reason,
                             mtr_time now);
int ledger_webhook_set_last_tick(struct ledger *L, const char *id, mtr_time tick);
int ledger_vehicle_upsert(struct ledger *L, const struct mtr_vehicle_row *v);
int ledger_vehicle_get(struct ledger *L, const char *id,
                       int (*fn)(void *, const struct mtr_vehicle_row *), void *arg);
int ledger_subscribe(struct ledger *L, const char *webhook_id, const char *vehicle_id, mtr_time now,
                     uint32_t spread_key, int *created);
int ledger_unsubscribe(struct ledger *L, const char *webhook_id, const char *vehicle_id,
                       mtr_time now, int *removed);
int ledger_materialize_tick(struct ledger *L, const char *webhook_id, mtr_time tick, int job_state,
                            int64_t spread_min, int64_t spread_max, uint64_t *count);
int ledger_claim_jobs(struct ledger *L, const char *owner, mtr_time now, mtr_time lease_until,
                      size_t max, mtr_job_fn fn, void *arg);
/* Whether the store claims jobs under the caller's transaction (store.h:
 * claim_jobs_held); the claim, only between ledger_begin and its commit. */
int ledger_has_held_claims(const struct ledger *L);
int ledger_claim_jobs_held(struct ledger *L, mtr_time now, size_t max, mtr_job_fn fn, void *arg);
int ledger_job_retry(struct ledger *L, const struct mtr_job_key *key, mtr_time due_at,
                     const char *error);
int ledger_job_set_state(struct ledger *L, const struct mtr_job_key *key, int new_state);
int ledger_jobs_miss_pending(struct ledger *L, const char *webhook_id, uint64_t *count);
int ledger_deliveries_insert(struct ledger *L, const struct mtr_delivery_row *rows, size_t n,
                             const struct mtr_job_key *jobs, size_t n_jobs, int *inserted);
int ledger_claim_deliveries(struct ledger *L, const char *owner, mtr_time now, mtr_time lease_until,
                            size_t max, mtr_delivery_fn fn, void *arg);
int ledger_record_attempt(struct ledger *L, const struct mtr_attempt_row *a, int new_state,
                          mtr_time next_attempt_at);
int ledger_fail_pending(struct ledger *L, const char *webhook_id, const char *reason, mtr_time now,
                        uint64_t *count);
int ledger_replay(struct ledger *L, const char *delivery_id, const char *webhook_id, int from_state,
                  mtr_time now, uint64_t *count);
int ledger_next_due(struct ledger *L, mtr_time *at, int *found);
int ledger_list_deliveries(struct ledger *L, const char *webhook_id, int delivery_state,
                           size_t limit, mtr_delivery_fn fn, void *arg);
int ledger_list_attempts(struct ledger *L, const char *delivery_id, mtr_attempt_fn fn, void *arg);
int ledger_delivery_get(struct ledger *L, const char *delivery_id, mtr_delivery_fn fn, void *arg);
int ledger_prune(struct ledger *L, mtr_time delivered_before, mtr_time failed_before,
                 mtr_time history_before, size_t max, uint64_t *pruned);
int ledger_stats(struct ledger *L, const char *webhook_id, struct mtr_store_stats *out);
int ledger_vehicle_sample(struct ledger *L, int (*fn)(void *, const struct mtr_vehicle_row *),
                          void *arg);
int ledger_subscriptions_list(struct ledger *L, const char *webhook_id, const char *vehicle_id,
                              const char *after, size_t limit, mtr_subscription_fn fn, void *arg);
int ledger_vehicles_list(struct ledger *L, int needs_reauth_only, const char *after, size_t limit,
                         mtr_vehicle_fn fn, void *arg);
int ledger_deliveries_query(struct ledger *L, const struct mtr_delivery_query *q,
                            mtr_delivery_fn fn, void *arg);
int ledger_webhook_delete(struct ledger *L, const char *id, mtr_time now);
int ledger_delivery_counts(struct ledger *L, const char *webhook_id, mtr_time since,
                           struct mtr_delivery_counts *out);

#endif
