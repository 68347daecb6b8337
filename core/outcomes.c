/* Outcomes: attempts -> the ledger, retries, disable. Also where a callback
 * starting to fail, and recovering, is logged - once each, not once an
 * attempt - and where the metrics of attempts are counted. */
#include "outcomes.h"
#include "events.h"
#include "log.h"
#include "scalar.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- retry schedule ----------------------------------------------------------------- */

/* The shape of the default schedule (30s, 1m30s, 3m30s, 6m30s, 10m of 10m),
 * as a curve from the share of retries made to the share of the window. */
static double retry_curve(double x)
{
    static const double xs[] = {0, 0.2, 0.4, 0.6, 0.8, 1.0};
    static const double ys[] = {0, 0.05, 0.15, 0.35, 0.65, 1.0};
    for (int i = 1; i < 6; i++)
        if (x <= xs[i])
            return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - xs[i - 1]) / (xs[i] - xs[i - 1]);
    return 1.0;
}

mtr_time retry_offset(int k, int n, int64_t window_s, const char *id)
{
    double at = retry_curve((double)k / n) * (double)window_s;
    if (k >= n)
        return window_s; /* the last retry closes the window */
    double gap = at - retry_curve((double)(k - 1) / n) * (double)window_s;
    char salt[16];
    snprintf(salt, sizeof salt, "%d", k);
    double u = (double)(stable_hash32(id, salt) % 2001) / 1000.0 - 1.0; /* -1 .. 1 */
    mtr_time off = (mtr_time)llround(at + u * 0.1 * gap);
    return off < 1 ? 1 : off > window_s ? window_s : off;
}

void outcomes_disable(struct engine *e, size_t wh, const char *reason, mtr_time now)
{
    struct webhook *w = &e->ws.v[wh];
    if (w->rec.state == MTR_WEBHOOK_DISABLED)
        return;
    struct events ev;
    if (events_make(e->c, "webhook.disabled", w->rec.id, now,
                    json_pack("{s:s,s:s,s:s}", "webhookId", w->rec.id, "webhookName", w->name,
                              "reason", reason),
                    &ev) != 0) {
        store_failed(e, "disable webhook (out of memory)");
        return;
    }
    int rc = ledger_disable(&e->L, w->rec.id, reason, now, ev.rows, ev.n);
    events_free(&ev);
    if (rc != 0) {
        if (ledger_transient(&e->L)) /* done when the store is back */
            snprintf(w->pending_disable, sizeof w->pending_disable, "%s", reason);
        store_failed(e, "disable webhook");
        return;
    }
    w->pending_disable[0] = '\0';
    w->rec.state = MTR_WEBHOOK_DISABLED;
    w->rec.state_at = now;
    snprintf(w->rec.reason, sizeof w->rec.reason, "%s", reason);
    e->stats.disabled++;
    log_msg(MTR_LOG_WARN, w->name,
            "webhook disabled (%s); `metronome webhook enable %s` and "
            "`metronome replay --webhook %s` bring it back",
            reason, w->name, w->name);
    engine_note_error(e, w->name, "webhook disabled (%s)", reason);
}

/* What follows an attempt: the new state and the next attempt's time. */
static int next_step(struct engine *e, struct flight *f, const struct mtr_sink_outcome *o,
                     mtr_time now, mtr_time *next_at, const char **disable_reason)
{
    *disable_reason = NULL;
    *next_at = 0;
    if (o->status == MTR_OK)
        return MTR_DELIVERY_DELIVERED;
    int event = f->kind == MTR_DELIVERY_EVENT; /* retried, but it disables nothing */
    if (!event && (f->kind != MTR_DELIVERY_SCHEDULED || f->wh == SIZE_MAX ||
                   e->ws.v[f->wh].rec.state != MTR_WEBHOOK_ACTIVE))
        return MTR_DELIVERY_FAILED;
    if (!event && o->http_status == 410) {
        *disable_reason = "gone";
        return MTR_DELIVERY_FAILED;
    }
    const struct webhook *w = event ? NULL : &e->ws.v[f->wh];
    if (w && strcmp(w->rec.reason, "recovered") == 0 && !w->probation_over) {
        *disable_reason = "probation"; /* recovered without an operator: no second chance */
        return MTR_DELIVERY_FAILED;
    }
    const struct retry_policy *rp = w ? &w->cfg->retry : &e->c->delivery.retry;
    int failures = f->attempts + 1 - f->round_start; /* in this round, this one included */
    if (failures > rp->retries) {
        *disable_reason = event ? NULL : "retries-exhausted";
        return MTR_DELIVERY_FAILED;
    }
    int64_t window = rp->window_ms / 1000;
    mtr_time first = f->first_attempt_at ? f->first_attempt_at : now, end = first + window;
    *next_at = first + (rp->n_schedule ? rp->schedule_ms[failures - 1] / 1000
                                       : retry_offset(failures, rp->retries, window, f->id));
    if (*next_at <= now) { /* behind the schedule (a Retry-After, a restart) */
        if (now >= end) {  /* the window is over: no burst of late retries */
            *disable_reason = event ? NULL : "retries-exhausted";
            return MTR_DELIVERY_FAILED;
        }
        /* the retries left, spread evenly over what is left of the window */
        *next_at = now + (end - now) / (rp->retries - failures + 1);
    }
    /* Retry-After (a sink's word, so bounded here too), within the window */
    int64_t ra = o->retry_after_s;
    if ((o->http_status == 429 || o->http_status == 503) && ra > 0) {
        ra = ra > window ? window : ra;
        if (now + ra > *next_at)
            *next_at = now + ra < end ? now + ra : end;
    }
    if (*next_at <= now)
        *next_at = now + 1;
    return MTR_DELIVERY_PENDING;
}

static double elapsed_s(const struct timespec *from, const struct timespec *to)
{
    return (double)(to->tv_sec - from->tv_sec) + (double)(to->tv_nsec - from->tv_nsec) / 1e9;
}

/* Counts a written batch in the metrics, under one lock. */
static void count_batch(struct engine *e, double write_s)
{
    metrics_lock(&e->metrics);
    histogram_observe(&e->metrics.ledger_write, write_s);
    for (size_t i = 0; i < e->n_outcomes; i++) {
        const struct outcome *x = &e->outcomes[i];
        struct webhook_metrics *m =
            x->wh == SIZE_MAX ? NULL : metrics_webhook(&e->metrics, x->wh, wh_name(e, x->wh));
        if (!m || x->fenced || x->deferred)
            continue; /* no label to count under, not this node's to count, or no attempt */
        m->attempts[x->error && !x->http_status ? CLASS_ERROR : attempt_class(x->http_status)]++;
        histogram_observe(&m->latency, (double)x->latency_us / 1e6);
        m->delivered += x->state == MTR_DELIVERY_DELIVERED;
        m->failed += x->state == MTR_DELIVERY_FAILED;
    }
    metrics_unlock(&e->metrics);
}

/* A scheduled delivery that failed for good is an event (delivery.failed),
 * written with its outcome. */
static int failed_event(struct engine *e, const struct outcome *x)
{
    if (x->state != MTR_DELIVERY_FAILED || x->kind != MTR_DELIVERY_SCHEDULED || x->fenced ||
        x->wh == SIZE_MAX || e->c->n_events_sinks == 0)
        return MTR_OK;
    char subject[UUID_LEN + 16];
    snprintf(subject, sizeof subject, "%s/%d", x->id, x->n);
    struct events ev;
    if (events_make(e->c, "delivery.failed", subject, x->at,
                    json_pack("{s:s,s:s,s:s,s:i,s:i,s:s?}", "deliveryId", x->id, "webhookId",
                              e->ws.v[x->wh].rec.id, "webhookName", wh_name(e, x->wh), "attempts",
                              x->n, "httpStatus", x->http_status, "error", x->error),
                    &ev) != 0)
        return MTR_ERR;
    int rc = ledger_deliveries_insert(&e->L, ev.rows, ev.n, NULL, 0, NULL);
    events_free(&ev);
    return rc;
}

/* A delivered payload of a webhook with supersede: the older ticks' pending
 * deliveries of the same vehicles are recorded failed (superseded), in the
 * transaction that records it. */
static int supersede(struct engine *e, const struct outcome *x)
{
    if (x->state != MTR_DELIVERY_DELIVERED || x->kind != MTR_DELIVERY_SCHEDULED || x->fenced ||
        x->deferred || x->wh == SIZE_MAX || !e->ws.v[x->wh].cfg || !e->ws.v[x->wh].cfg->supersede)
        return MTR_OK;
    char reason[UUID_LEN + 64];
    uint64_t n;
    snprintf(reason, sizeof reason, "superseded: delivery %s of a newer tick was delivered", x->id);
    int rc = ledger_supersede_older(&e->L, x->id, x->at, reason, &n);
    if (rc == MTR_OK && n) {
        e->stats.superseded += n;
        log_msg(MTR_LOG_INFO, wh_name(e, x->wh),
                "%llu older pending delivery(ies) superseded by delivery %s", (unsigned long long)n,
                x->id);
    }
    return rc;
}

void outcomes_flush(struct engine *e)
{
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    e->last_flush = start;
    if (e->n_outcomes == 0)
        return;
    size_t n = e->n_outcomes, n_recs = 0, n_defs = 0;
    struct mtr_attempt_record *recs = calloc(n, sizeof *recs);
    struct mtr_deferral *defs = calloc(n, sizeof *defs);
    int *fenced = calloc(n, sizeof *fenced), *fenced_defs = calloc(n, sizeof *fenced_defs);
    if (!recs || !defs || !fenced || !fenced_defs) { /* out of memory: kept for the next flush */
        free(recs);
        free(defs);
        free(fenced);
        free(fenced_defs);
        return;
    }
    int rc = ledger_begin(&e->L);
    for (size_t i = 0; i < n; i++) {
        struct outcome *x = &e->outcomes[i];
        if (x->deferred)
            defs[n_defs++] = (struct mtr_deferral){.delivery_id = x->id,
                                                   .at = x->at,
                                                   .next_attempt_at = x->next_at,
                                                   .last_status = x->http_status,
                                                   .last_error = x->error};
        else
            recs[n_recs++] = (struct mtr_attempt_record){.attempt = {.delivery_id = x->id,
                                                                     .n = x->n,
                                                                     .at = x->at,
                                                                     .http_status = x->http_status,
                                                                     .error = x->error,
                                                                     .latency_us = x->latency_us},
                                                         .new_state = x->state,
                                                         .next_attempt_at = x->next_at};
    }
    if (rc == MTR_OK && n_recs)
        rc = ledger_record_attempts_fenced(&e->L, e->owner, recs, n_recs, fenced);
    if (rc == MTR_OK && n_defs)
        rc = ledger_defer_deliveries(&e->L, e->owner, defs, n_defs, fenced_defs);
    for (size_t i = 0, r = 0, d = 0; i < n && rc == MTR_OK; i++) {
        struct outcome *x = &e->outcomes[i];
        if (x->deferred ? fenced_defs[d++] : fenced[r++]) {
            x->fenced = 1;
            log_msg(MTR_LOG_WARN, wh_name(e, x->wh),
                    "delivery %s: another node holds its lease now (this node's ran out); its "
                    "outcome here is not recorded, and the receiver saw a same-id redelivery",
                    x->id);
        }
    }
    free(recs);
    free(defs);
    free(fenced);
    free(fenced_defs);
    for (size_t i = 0; i < e->n_outcomes && rc == MTR_OK; i++)
        rc = failed_event(e, &e->outcomes[i]);
    for (size_t i = 0; i < e->n_outcomes && rc == MTR_OK; i++)
        rc = supersede(e, &e->outcomes[i]);
    if (rc == MTR_OK)
        rc = ledger_commit(&e->L);
    else
        ledger_rollback(&e->L);
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (rc != MTR_OK && ledger_transient(&e->L)) {
        store_failed(e, "record attempts"); /* kept in memory until they are written */
        for (size_t i = 0; i < e->n_outcomes; i++)
            e->outcomes[i].fenced = 0;
        return;
    }
    if (rc != MTR_OK)
        store_failed(e, "record attempts");
    else if (e->first_tick.tv_sec || e->first_tick.tv_nsec)
        e->stats.tick_to_last_record_s = elapsed_s(&e->first_tick, &end);
    if (rc == MTR_OK)
        count_batch(e, elapsed_s(&start, &end));
    for (size_t i = 0; i < e->n_outcomes; i++)
        free(e->outcomes[i].error);
    e->n_outcomes = 0;
}

/* Queues an outcome for the next flush; returns it, or NULL (out of memory). */
static struct outcome *queue_outcome(struct engine *e, const struct mtr_attempt_row *a, int state,
                                     mtr_time next_at, size_t wh, int kind)
{
    if (e->n_outcomes == e->cap_outcomes) {
        size_t cap = e->cap_outcomes ? e->cap_outcomes * 2 : 1024;
        struct outcome *p = realloc(e->outcomes, cap * sizeof *p);
        if (!p) {
            outcomes_flush(e);
            if (e->n_outcomes == e->cap_outcomes) {
                store_failed(e, "out of memory");
                return NULL;
            }
        } else {
            e->outcomes = p;
            e->cap_outcomes = cap;
        }
    }
    struct outcome *x = &e->outcomes[e->n_outcomes++];
    snprintf(x->id, sizeof x->id, "%s", a->delivery_id);
    x->n = a->n;
    x->at = a->at;
    x->http_status = a->http_status;
    x->error = a->error ? strdup(a->error) : NULL;
    x->latency_us = a->latency_us;
    x->state = state;
    x->next_at = next_at;
    x->wh = wh;
    x->kind = kind;
    x->fenced = 0;
    x->deferred = 0;
    return x;
}

void outcomes_maybe_flush(struct engine *e)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - e->last_flush.tv_sec) * 1000 +
              (now.tv_nsec - e->last_flush.tv_nsec) / 1000000;
    if (e->n_outcomes >= 8192 || ms >= 250 || e->in_flight == 0)
        outcomes_flush(e);
}

/* Logs a webhook's callback starting to fail, and recovering: once each. */
static void note_health(struct engine *e, size_t wh, const struct mtr_sink_outcome *o,
                        const char *error)
{
    if (wh == SIZE_MAX)
        return;
    if (wh >= e->n_failing) {
        size_t n = e->ws.n + 16;
        int *p = realloc(e->failing, n * sizeof *p);
        if (!p)
            return;
        memset(p + e->n_failing, 0, (n - e->n_failing) * sizeof *p);
        e->failing = p;
        e->n_failing = n;
    }
    const char *name = wh_name(e, wh);
    if (o->status != MTR_OK) {
        if (e->failing[wh]++ == 0) {
            log_msg(MTR_LOG_WARN, name, "deliveries are failing: %s (retrying; logged once)",
                    error);
            engine_note_error(e, name, "deliveries failing: %s", error);
        }
    } else if (e->failing[wh]) {
        log_msg(MTR_LOG_INFO, name, "deliveries recovered after %d failed attempt(s)",
                e->failing[wh]);
        e->failing[wh] = 0;
    }
}

/* A verify's or test's flight: its result, and the request done when it was
 * the last. A verified webhook becomes active. */
static void answer_request(struct engine *e, struct flight *f, const struct mtr_sink_outcome *o,
                           const char *error)
{
    struct send_request *r = f->req;
    struct send_sink_result *res = &r->results[f->slot];
    res->http_status = o->http_status;
    res->latency_us = o->latency_us;
    res->ok = o->status == MTR_OK;
    if (!res->ok)
        snprintf(res->error, sizeof res->error, "%s", error);
    else if (f->kind == FLIGHT_VERIFY &&
             payload_check_challenge(f->ci.response, f->ci.response_len, r->expected, res->error,
                                     sizeof res->error) != 0)
        res->ok = 0;
    if (--r->pending)
        return;
    r->status = 0;
    for (size_t i = 0; i < r->n_results; i++)
        if (!r->results[i].ok)
            r->status = -1;
    if (r->kind == SEND_VERIFY && r->status == 0 && f->wh != SIZE_MAX && !r->probe) {
        struct webhook *w = &e->ws.v[f->wh];
        if (ledger_webhook_set_state(&e->L, w->rec.id, MTR_WEBHOOK_ACTIVE, NULL,
                                     clock_now(e->clk)) != MTR_OK)
            store_failed(e, "verify webhook");
        else if (engine_reread(e, f->wh) == 0)
            log_msg(MTR_LOG_INFO, w->name, "webhook verified: it is active");
    }
    engine_complete(e, r);
}

/* The receiver's origin a flight was for: its callback's, or for an event
 * (which goes where its sink sends everything) the sink's name. */
static void flight_origin(const struct engine *e, const struct flight *f, char *out, size_t len)
{
    origin_of(f->ci.d.target, out, len);
    if (!out[0])
        snprintf(out, len, "sink:%s", f->sink == SIZE_MAX ? "?" : sink_name(e, f->sink));
}

/* A sink's deferral (sink.h: MTR_EAGAIN) of a scheduled delivery or an
 * event: due again after the wait, with no attempt counted, while the
 * delivery is under DEFER_LIMIT_S old and its webhook active. Returns 1 when
 * it was taken as one; 0 leaves it an ordinary failure. */
static int defer(struct engine *e, struct flight *f, const struct mtr_sink_outcome *o,
                 const char *error, mtr_time now)
{
    if (o->status != MTR_EAGAIN || !ledger_has_defer(&e->L) ||
        (f->kind != MTR_DELIVERY_SCHEDULED && f->kind != MTR_DELIVERY_EVENT))
        return 0;
    if (f->kind == MTR_DELIVERY_SCHEDULED &&
        (f->wh == SIZE_MAX || e->ws.v[f->wh].rec.state != MTR_WEBHOOK_ACTIVE))
        return 0;
    int64_t wait = o->retry_after_s < 1 ? 1 : o->retry_after_s;
    mtr_time created = f->created_at ? f->created_at : now;
    if (now + wait > created + DEFER_LIMIT_S)
        return 0; /* a day of waiting is enough: the retries count again */
    char text[700], origin[ORIGIN_LEN];
    snprintf(text, sizeof text, "%s %llds: %s", f->behind_older ? "waiting" : "deferred",
             (long long)wait, error);
    struct mtr_attempt_row a = {
        .delivery_id = f->id, .at = now, .http_status = o->http_status, .error = text};
    struct outcome *x = queue_outcome(e, &a, MTR_DELIVERY_PENDING, now + wait, f->wh, f->kind);
    if (x)
        x->deferred = 1;
    if (f->behind_older) /* ordered: no receiver's doing */
        return 1;
    flight_origin(e, f, origin, sizeof origin);
    origins_note(&e->origins, origin, now + wait, o->http_status);
    e->stats.deferred++;
    return 1;
}

/* What an attempt's outcome means: the attempt recorded, the next one
 * scheduled, or the webhook disabled. */
static void handle_outcome(struct engine *e, struct flight *f, const struct mtr_sink_outcome *o)
{
    mtr_time now = clock_now(e->clk), next_at;
    char error[600];
    if (o->status != MTR_OK && !o->error)
        snprintf(error, sizeof error, "HTTP %d", o->http_status);
    else
        snprintf(error, sizeof error, "%s", o->error ? o->error : "");
    e->in_flight--;
    if (f->kind == FLIGHT_VERIFY) { /* a challenge: nothing to record */
        answer_request(e, f, o, error);
        flight_free(f);
        return;
    }
    if (defer(e, f, o, error, now)) {
        flight_free(f);
        return;
    }
    const char *disable_reason;
    int state = next_step(e, f, o, now, &next_at, &disable_reason);
    struct mtr_attempt_row a = {
        .delivery_id = f->id,
        .n = f->attempts + 1,
        .at = now,
        .http_status = o->http_status,
        .error = o->status == MTR_OK ? NULL : error,
        .latency_us = o->latency_us,
    };
    queue_outcome(e, &a, state, next_at, f->wh, f->kind);
    e->stats.attempts++;
    if (a.n - f->round_start > 1)
        e->stats.retries++;
    if (state == MTR_DELIVERY_DELIVERED)
        e->stats.delivered++;
    if (state == MTR_DELIVERY_DELIVERED && f->kind == MTR_DELIVERY_SCHEDULED && f->wh != SIZE_MAX)
        e->ws.v[f->wh].probation_over = 1; /* a recovered webhook is trusted again */
    if (state != MTR_DELIVERY_PENDING && f->earlier)
        e->stats.earlier_settled++;
    if (f->kind == MTR_DELIVERY_SCHEDULED)
        note_health(e, f->wh, o, error);
    if (state == MTR_DELIVERY_FAILED) {
        e->stats.failed++;
        log_msg(MTR_LOG_WARN, wh_name(e, f->wh),
                "delivery %s to sink '%s' failed after %d attempt(s): %s", f->id,
                f->sink == SIZE_MAX ? "?" : sink_name(e, f->sink), a.n, error);
    }
    if (disable_reason) {
        outcomes_flush(e); /* this attempt first, then the webhook */
        outcomes_disable(e, f->wh, disable_reason, now);
    }
    if (f->req) {
        outcomes_flush(e); /* a test's attempt is in the ledger before it is answered */
        answer_request(e, f, o, error);
    }
    flight_free(f);
}

void outcomes_collect(struct engine *e, int wait_ms)
{
    while (e->settled) {
        struct flight *f = e->settled;
        e->settled = f->next;
        handle_outcome(e, f, &f->ci.o);
    }
    if (e->in_flight == 0)
        return;
    struct courier_item *list = courier_collect(&e->courier, wait_ms);
    while (list) {
        struct flight *f = (struct flight *)list; /* ci is the first member */
        list = list->next;
        handle_outcome(e, f, &f->ci.o);
    }
}
