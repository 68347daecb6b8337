/* Recovery without an operator: probes of disabled webhooks that asked for
 * it (delivery.auto_recover), their outcome, and the catch-up of what the
 * webhook missed. See recovery.h for the rules. */
#include "recovery.h"
#include "events.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

#define REPLAY_PAGE 1000

/* Whether webhook i is disabled in a way a probe may undo. */
static int probed(const struct engine *e, size_t i)
{
    const struct webhook *w = &e->ws.v[i];
    return w->cfg && !w->gone && w->cfg->auto_recover && w->rec.state == MTR_WEBHOOK_DISABLED &&
           (strcmp(w->rec.reason, "retries-exhausted") == 0 ||
            strcmp(w->rec.reason, "probation") == 0);
}

/* The first probe time after the last one: 1, 5 and 30 minutes after the
 * webhook was disabled, then every hour (only hourly after a failed
 * probation: a receiver that answers challenges but fails payloads is not
 * tried more than once an hour); 0 past RECOVERY_DAYS. */
static mtr_time probe_due(const struct webhook *w)
{
    static const mtr_time first[] = {60, 300, 1800};
    int hourly = strcmp(w->rec.reason, "probation") == 0;
    mtr_time from = w->rec.state_at, end = from + RECOVERY_DAYS * 86400LL, at = 0;
    mtr_time base = hourly ? from : from + 1800; /* where the hourly probes count from */
    for (size_t k = 0; !hourly && k < sizeof first / sizeof *first && !at; k++)
        if (from + first[k] > w->last_probe)
            at = from + first[k];
    if (!at)
        at = w->last_probe < base + 3600 ? base + 3600
                                         : base + ((w->last_probe - base) / 3600 + 1) * 3600;
    return at <= end ? at : 0;
}

static int answered(struct engine *e, const struct send_request *r)
{
    pthread_mutex_lock(&e->inbox.mu); /* done is set under it */
    int done = r->done;
    pthread_mutex_unlock(&e->inbox.mu);
    return done;
}

mtr_time recovery_next(struct engine *e)
{
    mtr_time next = 0;
    for (size_t i = 0; i < e->ws.n; i++) {
        const struct send_request *r = e->ws.v[i].probe;
        if (r && answered(e, r))
            return clock_now(e->clk); /* to be settled now */
        if (!probed(e, i) || r)
            continue;
        mtr_time at = probe_due(&e->ws.v[i]);
        if (at && (!next || at < next))
            next = at;
    }
    return next;
}

struct newest {
    mtr_time tick;
    char after_id[UUID_LEN + 1];
    mtr_time after_tick;
    size_t seen;
};

static int newest_tick(void *arg, const struct mtr_delivery_row *d)
{
    struct newest *n = arg;
    if (d->kind == MTR_DELIVERY_SCHEDULED && d->tick > n->tick)
        n->tick = d->tick;
    n->after_tick = d->tick;
    snprintf(n->after_id, sizeof n->after_id, "%s", d->id);
    n->seen++;
    return 0;
}

/* The newest tick among the webhook's failed scheduled deliveries (0: none). */
static int newest_failed_tick(struct engine *e, const char *webhook_id, mtr_time *tick)
{
    struct newest n = {0};
    struct mtr_delivery_query q = {
        .webhook_id = webhook_id, .state = MTR_DELIVERY_FAILED, .limit = REPLAY_PAGE};
    do {
        n.seen = 0;
        q.after_tick = n.after_tick;
        q.after_id = n.after_id[0] ? n.after_id : NULL;
        if (ledger_deliveries_query(&e->L, &q, newest_tick, &n) != MTR_OK)
            return -1;
    } while (n.seen == REPLAY_PAGE);
    *tick = n.tick;
    return 0;
}

struct replay_one {
    struct engine *e;
    mtr_time now;
    uint64_t count;
    int rc;
};

static int replay_row(void *arg, const struct mtr_delivery_row *d)
{
    struct replay_one *r = arg;
    uint64_t n = 0;
    if (d->kind != MTR_DELIVERY_SCHEDULED)
        return 0;
    if (ledger_replay(&r->e->L, d->id, NULL, MTR_DELIVERY_FAILED, r->now, &n) != MTR_OK) {
        r->rc = -1;
        return 1;
    }
    r->count += n;
    return 0;
}

/* What the webhook missed while disabled, as catch_up says; the count
 * replayed in *count. */
static int catch_up(struct engine *e, size_t i, mtr_time now, uint64_t *count)
{
    const char *id = e->ws.v[i].rec.id;
    *count = 0;
    switch (e->c->delivery.catch_up) {
    case CATCH_UP_SKIP:
        return 0;
    case CATCH_UP_ALL:
        return ledger_replay(&e->L, NULL, id, MTR_DELIVERY_FAILED, now, count) == MTR_OK ? 0 : -1;
    }
    mtr_time tick;
    if (newest_failed_tick(e, id, &tick) != 0)
        return -1;
    if (!tick)
        return 0;
    struct replay_one r = {.e = e, .now = now};
    struct mtr_delivery_query q = {
        .webhook_id = id, .state = MTR_DELIVERY_FAILED, .tick_from = tick, .tick_to = tick + 1};
    if (ledger_deliveries_query(&e->L, &q, replay_row, &r) != MTR_OK || r.rc != 0)
        return -1;
    *count = r.count;
    return 0;
}

/* A probe was answered right: the webhook is enabled on probation and
 * catches up. */
static void recovered(struct engine *e, size_t i, mtr_time now)
{
    struct webhook *w = &e->ws.v[i];
    uint64_t replayed = 0;
    int rc = ledger_begin(&e->L);
    if (rc == MTR_OK)
        rc = ledger_webhook_set_state(&e->L, w->rec.id, MTR_WEBHOOK_ACTIVE, "recovered", now);
    if (rc == MTR_OK && catch_up(e, i, now, &replayed) != 0)
        rc = MTR_ERR;
    struct events ev = {0};
    if (rc == MTR_OK &&
        events_make(e->c, "webhook.recovered", w->rec.id, now,
                    json_pack("{s:s,s:s,s:I}", "webhookId", w->rec.id, "webhookName", w->name,
                              "replayed", (json_int_t)replayed),
                    &ev) != 0)
        rc = MTR_ERR;
    if (rc == MTR_OK && ev.n)
        rc = ledger_deliveries_insert(&e->L, ev.rows, ev.n, NULL, 0, NULL);
    events_free(&ev);
    if (rc == MTR_OK)
        rc = ledger_commit(&e->L);
    else
        ledger_rollback(&e->L);
    if (rc != MTR_OK) {
        store_failed(e, "re-enable a recovered webhook"); /* probed again later */
        return;
    }
    w->probation_over = 0;
    engine_reread(e, i);
    log_msg(MTR_LOG_INFO, w->name,
            "webhook recovered: its callback answered a verify challenge; enabled on probation "
            "(one failure disables it again), %llu missed payload(s) replayed (catch_up)",
            (unsigned long long)replayed);
}

/* A probe's answer. */
static void settle(struct engine *e, size_t i, mtr_time now)
{
    struct webhook *w = &e->ws.v[i];
    struct send_request *r = w->probe;
    w->probe = NULL;
    int ok = r->status == 0;
    free(r);
    if (!probed(e, i))
        return; /* enabled (or deleted) meanwhile */
    if (ok) {
        recovered(e, i, now);
        return;
    }
    mtr_time next = probe_due(w);
    if (next)
        log_msg(MTR_LOG_INFO, w->name, "recovery probe failed; the next one in %lld s",
                (long long)(next - now));
    else
        log_msg(MTR_LOG_WARN, w->name,
                "recovery probe failed; no more probes after %d days: an operator enables it",
                RECOVERY_DAYS);
}

struct send_request *recovery_run(struct engine *e, mtr_time now)
{
    struct send_request *start = NULL;
    for (size_t i = 0; i < e->ws.n && !e->failed && !e->store_away; i++) {
        struct webhook *w = &e->ws.v[i];
        if (w->probe) {
            if (answered(e, w->probe))
                settle(e, i, now);
            continue;
        }
        mtr_time at;
        if (!probed(e, i) || !(at = probe_due(w)) || at > now)
            continue;
        struct send_request *r = calloc(1, sizeof *r);
        if (!r)
            break;
        r->kind = SEND_VERIFY;
        r->probe = 1;
        snprintf(r->webhook_id, sizeof r->webhook_id, "%s", w->rec.id);
        w->probe = r;
        w->last_probe = now;
        r->next = start;
        start = r;
    }
    return start;
}

void recovery_free(struct engine *e)
{
    for (size_t i = 0; i < e->ws.n; i++) {
        free(e->ws.v[i].probe);
        e->ws.v[i].probe = NULL;
    }
}
