/* Ticks: the scheduler's heap -> jobs in the ledger. A heap entry is stale
 * when its webhook's planned tick moved (a definition changed through the
 * API) or the webhook is gone; stale entries are dropped when they surface. */
#include "ticks.h"
#include "log.h"
#include "scalar.h"
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int record_tick(struct engine *e, size_t i, mtr_time tick, int job_state)
{
    const struct delivery_cfg *dc = &e->c->delivery;
    uint64_t n = 0;
    struct webhook *w = &e->ws.v[i];
    if (job_state == MTR_JOB_DUE && !e->first_tick.tv_sec && !e->first_tick.tv_nsec)
        clock_gettime(CLOCK_MONOTONIC, &e->first_tick); /* before its jobs are written */
    if (ledger_materialize_tick(&e->L, w->rec.id, tick, job_state, dc->spread_min_ms / 1000,
                                dc->spread_max_ms / 1000, &n) != MTR_OK ||
        ledger_webhook_set_last_tick(&e->L, w->rec.id, tick) != MTR_OK)
        return store_failed(e, "record tick");
    w->rec.last_tick = tick;
    metrics_lock(&e->metrics);
    if (job_state == MTR_JOB_DUE) {
        e->stats.ticks++;
        e->stats.jobs += n;
        e->metrics.ticks++;
        e->metrics.jobs += n;
    } else {
        e->stats.jobs_missed += n;
        e->metrics.jobs_missed += n;
    }
    metrics_unlock(&e->metrics);
    char when[32];
    format_iso8601(tick, when, sizeof when);
    if (job_state == MTR_JOB_DUE)
        log_msg(n ? MTR_LOG_INFO : MTR_LOG_DEBUG, w->name, "tick %s fired: %llu job(s)%s", when,
                (unsigned long long)n, n ? "" : " (no vehicle is subscribed)");
    else
        log_msg(MTR_LOG_DEBUG, w->name, "tick %s: %llu job(s) missed (webhook disabled)", when,
                (unsigned long long)n);
    return 0;
}

/* Keeps the newest MISSED_TICKS_RECORDED of the late ticks. */
static int remember_late(mtr_time **late, size_t *n_late, size_t *cap, mtr_time t)
{
    if (*n_late == *cap) {
        if (*cap == MISSED_TICKS_RECORDED) {
            memmove(*late, *late + 1, (*cap - 1) * sizeof **late);
            (*n_late)--;
        } else {
            size_t c = *cap ? *cap * 2 : 16;
            c = c > MISSED_TICKS_RECORDED ? MISSED_TICKS_RECORDED : c;
            mtr_time *p = realloc(*late, c * sizeof *p);
            if (!p)
                return -1;
            *late = p;
            *cap = c;
        }
    }
    (*late)[(*n_late)++] = t;
    return 0;
}

/* Ticks missed while the daemon was down, per catch_up: skip records them all
 * as missed, latest delivers the newest, all delivers every one. A tick
 * younger than fulfil_within is not late and is delivered normally. */
static int catch_up(struct engine *e, size_t i, mtr_time now)
{
    struct webhook *w = &e->ws.v[i];
    mtr_time from = w->rec.last_tick > w->rec.active_from ? w->rec.last_tick : w->rec.active_from;
    mtr_time late_before = now - e->c->delivery.fulfil_within_ms / 1000;
    mtr_time *late = NULL, t = from, next;
    size_t n_late = 0, cap = 0, total = 0;
    struct diag ignored;
    int rc = 0;
    if (from < now - 5 * 366 * 86400LL) /* after years away, the last five are enough */
        t = now - 5 * 366 * 86400LL;
    while (webhook_next_tick(w->cfg, t, &next, &ignored) == 0 && next <= now) {
        t = next;
        if (t > late_before) {
            if ((rc = record_tick(e, i, t, MTR_JOB_DUE)) != 0)
                break;
            continue;
        }
        total++;
        if ((rc = remember_late(&late, &n_late, &cap, t)) != 0)
            break;
    }
    for (size_t k = 0; rc == 0 && k < n_late; k++) {
        int policy = e->c->delivery.catch_up;
        int deliver = policy == CATCH_UP_ALL || (policy == CATCH_UP_LATEST && k == n_late - 1);
        rc = record_tick(e, i, late[k], deliver ? MTR_JOB_DUE : MTR_JOB_MISSED);
    }
    if (n_late)
        log_msg(MTR_LOG_INFO, w->name, "%zu tick(s) passed while stopped%s; catch_up %s", total,
                total > n_late ? " (the newest 1000 recorded)" : "",
                e->c->delivery.catch_up == CATCH_UP_SKIP     ? "skip: recorded as missed"
                : e->c->delivery.catch_up == CATCH_UP_LATEST ? "latest: delivering the newest"
                                                             : "all: delivering them all");
    free(late);
    return rc;
}

int ticks_plan(struct engine *e, size_t i, mtr_time after)
{
    struct webhook *w = &e->ws.v[i];
    mtr_time next;
    struct diag ignored;
    w->planned = 0;
    if (w->gone || !w->cfg || webhook_next_tick(w->cfg, after, &next, &ignored) != 0)
        return 0; /* no further tick: the webhook drops out */
    w->planned = next;
    return heap_push(&e->ticks, next, i);
}

int ticks_start(struct engine *e)
{
    mtr_time now = clock_now(e->clk);
    for (size_t i = 0; i < e->ws.n; i++) {
        const struct webhook *w = &e->ws.v[i];
        if (w->gone)
            continue;
        if (w->rec.state == MTR_WEBHOOK_ACTIVE && catch_up(e, i, now) != 0)
            return -1;
        if (ticks_plan(e, i, now) != 0)
            return diag_set(e->d, "out of memory");
    }
    return 0;
}

int ticks_fire(struct engine *e, mtr_time now)
{
    const struct heap_item *top;
    int fired = 0;
    while ((top = heap_peek(&e->ticks)) != NULL && top->at <= now) {
        struct heap_item it;
        heap_pop(&e->ticks, &it);
        size_t i = (size_t)it.id;
        if (e->ws.v[i].gone || e->ws.v[i].planned != it.at)
            continue; /* stale: the webhook went, or its cadence changed */
        const struct webhook_rec *r = &e->ws.v[i].rec;
        int rc = engine_reread(e, i); /* its state now, whoever changed it */
        if (rc == 0 && !e->ws.v[i].gone && it.at > r->last_tick && it.at > r->active_from) {
            if (r->state == MTR_WEBHOOK_ACTIVE)
                rc = record_tick(e, i, it.at, MTR_JOB_DUE);
            else if (r->state == MTR_WEBHOOK_DISABLED)
                rc = record_tick(e, i, it.at, MTR_JOB_MISSED);
            if (r->state == MTR_WEBHOOK_UNVERIFIED && !e->ws.v[i].noted_unverified++)
                log_msg(MTR_LOG_INFO, e->ws.v[i].name,
                        "ticks are skipped until the webhook is verified (metronome webhook "
                        "verify %s)",
                        e->ws.v[i].name);
        }
        if (rc != 0) { /* the store is away: the tick waits for it, nothing is lost */
            heap_push(&e->ticks, it.at, i);
            return -1;
        }
        if (ticks_plan(e, i, it.at) != 0) {
            e->failed = 1;
            return diag_set(e->d, "out of memory");
        }
        fired++;
    }
    return fired;
}

mtr_time ticks_next(const struct engine *e)
{
    const struct heap_item *top = heap_peek(&e->ticks);
    return top ? top->at : 0;
}
