/* Ledger: the one module that calls the store plugin. Start-up (and the
 * read-only open of commands that only read), webhook synchronisation, the
 * disable transaction, and a typed wrapper per store operation: the rest of
 * the core asks these, never the ops table, and a store that lacks an
 * optional operation is named in the error instead of crashing the daemon. */
#include "ledger.h"

#include <stdio.h>
#include <string.h>

const char *webhook_state_name(int state)
{
    switch (state) {
    case MTR_WEBHOOK_UNVERIFIED:
        return "unverified";
    case MTR_WEBHOOK_ACTIVE:
        return "active";
    case MTR_WEBHOOK_DISABLED:
        return "disabled";
    }
    return "?";
}

const char *ledger_error(const struct ledger *L)
{
    return L->inst->ctx.error[0] ? L->inst->ctx.error : "store error";
}

static int open_store(struct ledger *L, const struct config *c, int read_only, struct diag *d)
{
    L->inst = c->store;
    L->ops = c->store->ctx.pf->desc.store;
    L->st = c->store->state;
    if (read_only && !c->store->started && L->ops->read_only && L->ops->read_only(L->st) != MTR_OK)
        return diag_set(d, "store: %s", ledger_error(L));
    if (c->store->ctx.pf->desc.start && !c->store->started) {
        if (c->store->ctx.pf->desc.start(L->st) != MTR_OK)
            return diag_set(d, "store: %s", ledger_error(L));
        c->store->started = 1;
    }
    return 0;
}

int ledger_open(struct ledger *L, const struct config *c, struct diag *d)
{
    return open_store(L, c, 0, d);
}

int ledger_open_instance(struct ledger *L, struct instance *inst, struct diag *d)
{
    L->inst = inst;
    L->ops = inst->ctx.pf->desc.store;
    L->st = inst->state;
    return instance_start(inst, d);
}

int ledger_open_read_only(struct ledger *L, const struct config *c, struct diag *d)
{
    return open_store(L, c, 1, d);
}

void ledger_copy_row(const struct mtr_webhook_row *w, struct webhook_rec *out)
{
    snprintf(out->id, sizeof out->id, "%s", w->id);
    out->state = w->state;
    snprintf(out->reason, sizeof out->reason, "%s", w->reason ? w->reason : "");
    out->state_at = w->state_at;
    out->active_from = w->active_from;
    out->last_tick = w->last_tick;
}

int ledger_transient(const struct ledger *L)
{
    return L->last_rc == MTR_EAGAIN;
}

static int copy_row(void *arg, const struct mtr_webhook_row *w)
{
    ledger_copy_row(w, arg);
    return 1;
}

int ledger_list_webhooks(struct ledger *L, mtr_webhook_fn fn, void *arg)
{
    return (L->last_rc = L->ops->webhook_list(L->st, NULL, fn, arg)) == MTR_OK ? 0 : -1;
}

int ledger_get_webhook(struct ledger *L, const char *name, struct webhook_rec *out, int *found)
{
    out->id[0] = '\0';
    if ((L->last_rc = L->ops->webhook_list(L->st, name, copy_row, out)) != MTR_OK)
        return -1;
    *found = out->id[0] != '\0';
    return 0;
}

static void definition(const struct webhook_cfg *w, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "%s|%s|", w->cadence_policy,
                                   w->units == MTR_UNITS_IMPERIAL ? "imperial" : "metric");
    for (size_t i = 0; i < w->n_endpoints && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "", w->endpoints[i]);
}

int ledger_sync_webhooks(struct ledger *L, const struct config *c, mtr_time now,
                         struct webhook_rec *out, struct diag *d)
{
    if (L->ops->begin(L->st) != MTR_OK)
        return diag_set(d, "store: %s", ledger_error(L));
    for (size_t i = 0; i < c->n_webhooks; i++) {
        const struct webhook_cfg *w = &c->webhooks[i];
        char id[UUID_LEN + 1], def[1024];
        int found;
        uuid_random(id); /* used only when the name is new */
        definition(w, def, sizeof def);
        struct mtr_webhook_row row = {
            .id = id, .name = w->name, .callback_uri = w->callback_uri, .definition = def};
        if (L->ops->webhook_upsert(L->st, &row, now) != MTR_OK ||
            ledger_get_webhook(L, w->name, &out[i], &found) != 0 || !found) {
            L->ops->rollback(L->st);
            return diag_set(d, "store: %s", ledger_error(L));
        }
    }
    if (L->ops->commit(L->st) != MTR_OK)
        return diag_set(d, "store: %s", ledger_error(L));
    return 0;
}

int ledger_disable(struct ledger *L, const char *webhook_id, const char *reason, mtr_time now,
                   const struct mtr_delivery_row *events, size_t n_events)
{
    uint64_t failed, missed;
    int rc = L->last_rc = L->ops->begin(L->st);
    if (rc == MTR_OK &&
        ((rc = L->ops->webhook_set_state(L->st, webhook_id, MTR_WEBHOOK_DISABLED, reason, now)) !=
             MTR_OK ||
         (rc = L->ops->fail_pending(L->st, webhook_id, reason, now, &failed)) != MTR_OK ||
         (rc = L->ops->jobs_miss_pending(L->st, webhook_id, &missed)) != MTR_OK ||
         (n_events &&
          (rc = L->ops->deliveries_insert(L->st, events, n_events, NULL, 0, NULL)) != MTR_OK))) {
        L->last_rc = rc;
        L->ops->rollback(L->st);
        return -1;
    }
    if (rc == MTR_OK)
        rc = L->ops->commit(L->st);
    L->last_rc = rc;
    return rc == MTR_OK ? 0 : -1;
}

int ledger_check(struct ledger *L, int (*fn)(void *, const char *), void *arg, uint64_t *problems,
                 struct diag *d)
{
    if (!L->ops->check)
        return diag_set(d, "store plugin '%s' has no integrity check", L->inst->ctx.pf->desc.name);
    if (L->ops->check(L->st, fn, arg, problems) != MTR_OK)
        return diag_set(d, "store: %s", ledger_error(L));
    return 0;
}

/* ---- the store's operations ------------------------------------------------------------- */

/* The answer to a call of an operation the store plugin does not have. */
static int missing(struct ledger *L, const char *op)
{
    snprintf(L->inst->ctx.error, sizeof L->inst->ctx.error,
             "the store plugin '%s' has no operation '%s'", L->inst->ctx.pf->desc.name, op);
    return MTR_ERR;
}

int ledger_has_prune(const struct ledger *L)
{
    return L->ops->prune != NULL;
}

int ledger_has_vehicle_sample(const struct ledger *L)
{
    return L->ops->vehicle_sample != NULL;
}

int ledger_has_delivery_counts(const struct ledger *L)
{
    return L->ops->delivery_counts != NULL;
}

/* Transactions nest: inside one, begin and commit only count, a rollback
 * dooms the outer one (its commit then rolls back and fails), and only the
 * outermost reaches the store. */
int ledger_begin(struct ledger *L)
{
    if (L->depth > 0) {
        L->depth++;
        return L->last_rc = MTR_OK;
    }
    L->last_rc = L->ops->begin ? L->ops->begin(L->st) : missing(L, "begin");
    if (L->last_rc == MTR_OK) {
        L->depth = 1;
        L->doomed = 0;
    }
    return L->last_rc;
}

int ledger_commit(struct ledger *L)
{
    if (L->depth > 1) {
        L->depth--;
        return L->last_rc = MTR_OK;
    }
    L->depth = 0;
    if (L->doomed) {
        if (L->ops->rollback)
            L->ops->rollback(L->st);
        return L->last_rc = MTR_ERR;
    }
    return L->last_rc = (L->ops->commit ? L->ops->commit(L->st) : missing(L, "commit"));
}

int ledger_rollback(struct ledger *L)
{
    if (L->depth > 1) {
        L->depth--;
        L->doomed = 1;
        return L->last_rc = MTR_OK;
    }
    L->depth = 0;
    return L->last_rc = (L->ops->rollback ? L->ops->rollback(L->st) : missing(L, "rollback"));
}

int ledger_webhook_upsert(struct ledger *L, const struct mtr_webhook_row *w, mtr_time now)
{
    return L->last_rc = (L->ops->webhook_upsert ? L->ops->webhook_upsert(L->st, w, now)
                                                : missing(L, "webhook_upsert"));
}

int ledger_webhook_list(struct ledger *L, const char *name, mtr_webhook_fn fn, void *arg)
{
    return L->last_rc = (L->ops->webhook_list ? L->ops->webhook_list(L->st, name, fn, arg)
                                              : missing(L, "webhook_list"));
}

int ledger_webhook_set_state(struct ledger *L, const char *id, int new_state, const char *reason,
                             mtr_time now)
{
    return L->last_rc = (L->ops->webhook_set_state
                             ? L->ops->webhook_set_state(L->st, id, new_state, reason, now)
                             : missing(L, "webhook_set_state"));
}

int ledger_webhook_set_last_tick(struct ledger *L, const char *id, mtr_time tick)
{
    return L->last_rc =
               (L->ops->webhook_set_last_tick ? L->ops->webhook_set_last_tick(L->st, id, tick)
                                              : missing(L, "webhook_set_last_tick"));
}

int ledger_vehicle_upsert(struct ledger *L, const struct mtr_vehicle_row *v)
{
    return L->last_rc = (L->ops->vehicle_upsert ? L->ops->vehicle_upsert(L->st, v)
                                                : missing(L, "vehicle_upsert"));
}

int ledger_vehicle_get(struct ledger *L, const char *id,
                       int (*fn)(void *, const struct mtr_vehicle_row *), void *arg)
{
    return L->last_rc = (L->ops->vehicle_get ? L->ops->vehicle_get(L->st, id, fn, arg)
                                             : missing(L, "vehicle_get"));
}

int ledger_subscribe(struct ledger *L, const char *webhook_id, const char *vehicle_id, mtr_time now,
                     uint32_t spread_key, int *created)
{
    return L->last_rc = (L->ops->subscribe ? L->ops->subscribe(L->st, webhook_id, vehicle_id, now,
                                                               spread_key, created)
                                           : missing(L, "subscribe"));
}

int ledger_unsubscribe(struct ledger *L, const char *webhook_id, const char *vehicle_id,
                       mtr_time now, int *removed)
{
    return L->last_rc = (L->ops->unsubscribe
                             ? L->ops->unsubscribe(L->st, webhook_id, vehicle_id, now, removed)
                             : missing(L, "unsubscribe"));
}

int ledger_materialize_tick(struct ledger *L, const char *webhook_id, mtr_time tick, int job_state,
                            int64_t spread_min, int64_t spread_max, uint64_t *count)
{
    return L->last_rc = (L->ops->materialize_tick
                             ? L->ops->materialize_tick(L->st, webhook_id, tick, job_state,
                                                        spread_min, spread_max, count)
                             : missing(L, "materialize_tick"));
}

int ledger_claim_jobs(struct ledger *L, const char *owner, mtr_time now, mtr_time lease_until,
                      size_t max, mtr_job_fn fn, void *arg)
{
    return L->last_rc = (L->ops->claim_jobs
                             ? L->ops->claim_jobs(L->st, owner, now, lease_until, max, fn, arg)
                             : missing(L, "claim_jobs"));
}

int ledger_has_held_claims(const struct ledger *L)
{
    return L->ops->claim_jobs_held != NULL;
}

int ledger_claim_jobs_held(struct ledger *L, mtr_time now, size_t max, mtr_job_fn fn, void *arg)
{
    return L->last_rc = (L->ops->claim_jobs_held ? L->ops->claim_jobs_held(L->st, now, max, fn, arg)
                                                 : missing(L, "claim_jobs_held"));
}

int ledger_job_retry(struct ledger *L, const struct mtr_job_key *key, mtr_time due_at,
                     const char *error)
{
    return L->last_rc = (L->ops->job_retry ? L->ops->job_retry(L->st, key, due_at, error)
                                           : missing(L, "job_retry"));
}

int ledger_job_set_state(struct ledger *L, const struct mtr_job_key *key, int new_state)
{
    return L->last_rc = (L->ops->job_set_state ? L->ops->job_set_state(L->st, key, new_state)
                                               : missing(L, "job_set_state"));
}

int ledger_jobs_miss_pending(struct ledger *L, const char *webhook_id, uint64_t *count)
{
    return L->last_rc =
               (L->ops->jobs_miss_pending ? L->ops->jobs_miss_pending(L->st, webhook_id, count)
                                          : missing(L, "jobs_miss_pending"));
}

int ledger_deliveries_insert(struct ledger *L, const struct mtr_delivery_row *rows, size_t n,
                             const struct mtr_job_key *jobs, size_t n_jobs, int *inserted)
{
    return L->last_rc = (L->ops->deliveries_insert
                             ? L->ops->deliveries_insert(L->st, rows, n, jobs, n_jobs, inserted)
                             : missing(L, "deliveries_insert"));
}

int ledger_claim_deliveries(struct ledger *L, const char *owner, mtr_time now, mtr_time lease_until,
                            size_t max, mtr_delivery_fn fn, void *arg)
{
    return L->last_rc =
               (L->ops->claim_deliveries
                    ? L->ops->claim_deliveries(L->st, owner, now, lease_until, max, fn, arg)
                    : missing(L, "claim_deliveries"));
}

int ledger_record_attempt(struct ledger *L, const struct mtr_attempt_row *a, int new_state,
                          mtr_time next_attempt_at)
{
    return L->last_rc = (L->ops->record_attempt
                             ? L->ops->record_attempt(L->st, a, new_state, next_attempt_at)
                             : missing(L, "record_attempt"));
}

int ledger_fail_pending(struct ledger *L, const char *webhook_id, const char *reason, mtr_time now,
                        uint64_t *count)
{
    return L->last_rc =
               (L->ops->fail_pending ? L->ops->fail_pending(L->st, webhook_id, reason, now, count)
                                     : missing(L, "fail_pending"));
}

int ledger_replay(struct ledger *L, const char *delivery_id, const char *webhook_id, int from_state,
                  mtr_time now, uint64_t *count)
{
    return L->last_rc = (L->ops->replay ? L->ops->replay(L->st, delivery_id, webhook_id, from_state,
                                                         now, count)
                                        : missing(L, "replay"));
}

int ledger_next_due(struct ledger *L, mtr_time *at, int *found)
{
    return L->last_rc =
               (L->ops->next_due ? L->ops->next_due(L->st, at, found) : missing(L, "next_due"));
}

int ledger_list_deliveries(struct ledger *L, const char *webhook_id, int delivery_state,
                           size_t limit, mtr_delivery_fn fn, void *arg)
{
    return L->last_rc =
               (L->ops->list_deliveries
                    ? L->ops->list_deliveries(L->st, webhook_id, delivery_state, limit, fn, arg)
                    : missing(L, "list_deliveries"));
}

int ledger_list_attempts(struct ledger *L, const char *delivery_id, mtr_attempt_fn fn, void *arg)
{
    return L->last_rc = (L->ops->list_attempts ? L->ops->list_attempts(L->st, delivery_id, fn, arg)
                                               : missing(L, "list_attempts"));
}

int ledger_delivery_get(struct ledger *L, const char *delivery_id, mtr_delivery_fn fn, void *arg)
{
    return L->last_rc = (L->ops->delivery_get ? L->ops->delivery_get(L->st, delivery_id, fn, arg)
                                              : missing(L, "delivery_get"));
}

int ledger_prune(struct ledger *L, mtr_time delivered_before, mtr_time failed_before,
                 mtr_time history_before, size_t max, uint64_t *pruned)
{
    return L->last_rc = (L->ops->prune ? L->ops->prune(L->st, delivered_before, failed_before,
                                                       history_before, max, pruned)
                                       : missing(L, "prune"));
}

int ledger_stats(struct ledger *L, const char *webhook_id, struct mtr_store_stats *out)
{
    return L->last_rc =
               (L->ops->stats ? L->ops->stats(L->st, webhook_id, out) : missing(L, "stats"));
}

int ledger_vehicle_sample(struct ledger *L, int (*fn)(void *, const struct mtr_vehicle_row *),
                          void *arg)
{
    return L->last_rc = (L->ops->vehicle_sample ? L->ops->vehicle_sample(L->st, fn, arg)
                                                : missing(L, "vehicle_sample"));
}

int ledger_subscriptions_list(struct ledger *L, const char *webhook_id, const char *vehicle_id,
                              const char *after, size_t limit, mtr_subscription_fn fn, void *arg)
{
    return L->last_rc = (L->ops->subscriptions_list
                             ? L->ops->subscriptions_list(L->st, webhook_id, vehicle_id, after,
                                                          limit, fn, arg)
                             : missing(L, "subscriptions_list"));
}

int ledger_vehicles_list(struct ledger *L, int needs_reauth_only, const char *after, size_t limit,
                         mtr_vehicle_fn fn, void *arg)
{
    return L->last_rc = (L->ops->vehicles_list ? L->ops->vehicles_list(L->st, needs_reauth_only,
                                                                       after, limit, fn, arg)
                                               : missing(L, "vehicles_list"));
}

int ledger_deliveries_query(struct ledger *L, const struct mtr_delivery_query *q,
                            mtr_delivery_fn fn, void *arg)
{
    return L->last_rc = (L->ops->deliveries_query ? L->ops->deliveries_query(L->st, q, fn, arg)
                                                  : missing(L, "deliveries_query"));
}

int ledger_webhook_delete(struct ledger *L, const char *id, mtr_time now)
{
    return L->last_rc = (L->ops->webhook_delete ? L->ops->webhook_delete(L->st, id, now)
                                                : missing(L, "webhook_delete"));
}

int ledger_delivery_counts(struct ledger *L, const char *webhook_id, mtr_time since,
                           struct mtr_delivery_counts *out)
{
    return L->last_rc =
               (L->ops->delivery_counts ? L->ops->delivery_counts(L->st, webhook_id, since, out)
                                        : missing(L, "delivery_counts"));
}

int ledger_record_attempt_fenced(struct ledger *L, const char *owner,
                                 const struct mtr_attempt_row *a, int new_state,
                                 mtr_time next_attempt_at, int *fenced)
{
    *fenced = 0;
    if (!L->ops->record_attempt_as) /* an older store: no fencing */
        return L->last_rc = L->ops->record_attempt(L->st, a, new_state, next_attempt_at);
    return L->last_rc =
               L->ops->record_attempt_as(L->st, owner, a, new_state, next_attempt_at, fenced);
}

int ledger_record_attempts_fenced(struct ledger *L, const char *owner,
                                  const struct mtr_attempt_record *recs, size_t n, int *fenced)
{
    if (L->ops->record_attempts_as) {
        memset(fenced, 0, n * sizeof *fenced);
        return L->last_rc = L->ops->record_attempts_as(L->st, owner, recs, n, fenced);
    }
    int rc = MTR_OK;
    for (size_t i = 0; i < n && rc == MTR_OK; i++)
        rc = ledger_record_attempt_fenced(L, owner, &recs[i].attempt, recs[i].new_state,
                                          recs[i].next_attempt_at, &fenced[i]);
    return rc;
}

int ledger_has_defer(const struct ledger *L)
{
    return L->ops->defer_deliveries != NULL;
}

int ledger_defer_deliveries(struct ledger *L, const char *owner, const struct mtr_deferral *d,
                            size_t n, int *fenced)
{
    memset(fenced, 0, n * sizeof *fenced);
    return L->last_rc = L->ops->defer_deliveries
                            ? L->ops->defer_deliveries(L->st, owner, d, n, fenced)
                            : missing(L, "defer_deliveries");
}

int ledger_has_subjects(const struct ledger *L)
{
    return L->ops->set_subjects && L->ops->supersede_older && L->ops->older_pending;
}

int ledger_set_subjects(struct ledger *L, const char *const *ids, const int64_t *subjects, size_t n)
{
    return L->last_rc = L->ops->set_subjects ? L->ops->set_subjects(L->st, ids, subjects, n)
                                             : missing(L, "set_subjects");
}

int ledger_supersede_older(struct ledger *L, const char *delivery_id, mtr_time now,
                           const char *reason, uint64_t *count)
{
    *count = 0;
    return L->last_rc = L->ops->supersede_older
                            ? L->ops->supersede_older(L->st, delivery_id, now, reason, count)
                            : missing(L, "supersede_older");
}

int ledger_older_pending(struct ledger *L, const char *delivery_id, mtr_time now, int *found,
                         mtr_time *due, int *leased)
{
    *found = *leased = 0;
    *due = 0;
    return L->last_rc = L->ops->older_pending
                            ? L->ops->older_pending(L->st, delivery_id, now, found, due, leased)
                            : missing(L, "older_pending");
}

int ledger_has_quota(const struct ledger *L)
{
    return L->ops->quota_take != NULL;
}

int ledger_quota_take(struct ledger *L, const char *key, int64_t per_minute, int64_t burst,
                      mtr_time now, int64_t want, int64_t *granted)
{
    *granted = 0;
    if (!L->ops->quota_take)
        return missing(L, "quota_take"), -1;
    L->last_rc = L->ops->quota_take(L->st, key, per_minute, burst, now, want, granted);
    if (L->last_rc != MTR_OK || *granted < 0 || *granted > want) {
        *granted = 0; /* never trust more than was asked for */
        return -1;
    }
    return 0;
}

int ledger_has_nodes(const struct ledger *L)
{
    return L->ops->node_heartbeat && L->ops->nodes_list;
}

int ledger_node_heartbeat(struct ledger *L, const struct mtr_node_row *node)
{
    return L->last_rc = L->ops->node_heartbeat ? L->ops->node_heartbeat(L->st, node)
                                               : missing(L, "node_heartbeat");
}

int ledger_nodes_list(struct ledger *L, mtr_time seen_since, mtr_time now,
                      int (*fn)(void *, const struct mtr_node_row *), void *arg)
{
    return L->last_rc = L->ops->nodes_list ? L->ops->nodes_list(L->st, seen_since, now, fn, arg)
                                           : missing(L, "nodes_list");
}

int ledger_job_retry_fenced(struct ledger *L, const char *owner, const struct mtr_job_key *key,
                            mtr_time due_at, const char *error, int *fenced)
{
    *fenced = 0;
    if (!L->ops->job_retry_as) /* an older store: no fencing */
        return L->last_rc = L->ops->job_retry(L->st, key, due_at, error);
    return L->last_rc = L->ops->job_retry_as(L->st, owner, key, due_at, error, fenced);
}

int ledger_job_set_state_fenced(struct ledger *L, const char *owner, const struct mtr_job_key *key,
                                int new_state, int *fenced)
{
    *fenced = 0;
    if (!L->ops->job_set_state_as)
        return L->last_rc = L->ops->job_set_state(L->st, key, new_state);
    return L->last_rc = L->ops->job_set_state_as(L->st, owner, key, new_state, fenced);
}
