/* The delivery engine's loop. One thread; each turn:
 *
 *   take_requests     verify and test requests from the admin API -> flights
 *   recovery          probes of webhooks disabled with auto_recover -> flights
 *   refresh           the webhook set, when a second has passed (changes made
 *                     by the API or another process's CLI count within it)
 *   ticks_fire        due ticks -> jobs in the ledger (before any fetch)
 *   fetch_jobs        claim due jobs -> fetch -> payloads + deliveries
 *   delivery_*        stored and due deliveries -> the courier's thread
 *   outcomes_*        the courier's outcomes -> attempts, retries, disable
 *   wait              sleep (wall clock) or jump (virtual clock) to the next timer
 *
 * Everything that must survive a crash is in the ledger before the step that
 * depends on it, so a restarted node (or a second one) resumes from there. */
#include "engine.h"
#include "delivery.h"
#include "engine_state.h"
#include "fetch.h"
#include "log.h"
#include "outcomes.h"
#include "recovery.h"
#include "ticks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- start and stop ------------------------------------------------------------------- */

static void make_owner(char *buf, size_t len)
{
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    char rnd[UUID_LEN + 1];
    uuid_random(rnd);
    snprintf(buf, len, "%s:%ld:%.8s", host, (long)getpid(), rnd);
}

static int engine_init(struct engine *e, struct config *c, struct clock *clk)
{
    e->c = c;
    e->clk = clk;
    e->d = &e->diag;
    heap_init(&e->ticks);
    make_owner(e->owner, sizeof e->owner);
    e->started_at = clock_now(clk);
    e->started_wall = time(NULL);
    if (ledger_open(&e->L, c, e->d) != 0)
        return -1;
    quota_init(&e->quota, &e->L, clk); /* the sources draw on budgets every node shares */
    for (size_t i = 0; i < c->n_sources; i++)
        c->sources[i].inst->ctx.quota = &e->quota;
    if (start_plugins(c, e->d) != 0 || vault_load(&e->vault, c, e->d) != 0 ||
        fetch_check_key(e) != 0)
        return -1;
    if (signer_init(&e->signer, c->management_token, strlen(c->management_token)) != 0)
        return diag_set(e->d, "cannot set up signing (out of memory)");
    struct webhook_rec *recs = calloc(c->n_webhooks ? c->n_webhooks : 1, sizeof *recs);
    int rc = recs ? ledger_sync_webhooks(&e->L, c, clock_now(clk), recs, e->d)
                  : diag_set(e->d, "out of memory");
    free(recs);
    if (rc != 0 || webhooks_refresh(&e->ws, c, &e->L, clk, NULL, e->d) != 0)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &e->last_refresh);
    if (courier_start(&e->courier, c) != 0)
        return diag_set(e->d, "cannot start the delivery thread");
    return 0;
}

struct engine *engine_create(struct config *c, struct clock *clk, struct diag *d)
{
    struct engine *e = calloc(1, sizeof *e);
    if (!e) {
        diag_set(d, "out of memory");
        return NULL;
    }
    int locks = pthread_mutex_init(&e->inbox.mu, NULL) == 0 &&
                pthread_cond_init(&e->inbox.done, NULL) == 0 &&
                pthread_mutex_init(&e->status_mu, NULL) == 0 && metrics_init(&e->metrics) == 0;
    if (!locks) {
        free(e);
        diag_set(d, "cannot set up the engine's locks");
        return NULL;
    }
    snprintf(e->status.owner, sizeof e->status.owner, "%s", "");
    if (engine_init(e, c, clk) != 0) {
        *d = e->diag;
        engine_destroy(e);
        return NULL;
    }
    snprintf(e->status.owner, sizeof e->status.owner, "%s", e->owner);
    return e;
}

/* Answers every request still waiting: the engine is going. */
static void close_inbox(struct engine *e)
{
    pthread_mutex_lock(&e->inbox.mu);
    e->inbox.closed = 1;
    struct send_request *r = e->inbox.head;
    e->inbox.head = NULL;
    pthread_mutex_unlock(&e->inbox.mu);
    for (; r; r = r->next) {
        r->status = -1;
        snprintf(r->message, sizeof r->message, "metronome is stopping");
        engine_complete(e, r);
    }
}

void engine_destroy(struct engine *e)
{
    if (!e)
        return;
    close_inbox(e);
    vault_wipe(&e->vault);
    outcomes_flush(e);
    free(e->outcomes);
    while (e->ready) { /* stored, never launched: sent again when their lease ends */
        struct flight *f = e->ready;
        e->ready = f->next;
        flight_free(f);
    }
    outcomes_collect(e, 0); /* what could not be sent is recorded */
    outcomes_flush(e);
    /* waits for what is in the sinks; outcomes nobody recorded are sent again
     * when their lease ends */
    for (struct courier_item *it = courier_stop(&e->courier); it;) {
        struct flight *f = (struct flight *)it;
        it = it->next;
        if (f->req && !f->req->done && --f->req->pending == 0) {
            f->req->status = -1;
            snprintf(f->req->message, sizeof f->req->message, "metronome is stopping");
            engine_complete(e, f->req);
        }
        flight_free(f);
    }
    for (size_t i = 0; e->c && i < e->c->n_sources; i++)
        if (e->c->sources[i].inst->ctx.quota == &e->quota)
            e->c->sources[i].inst->ctx.quota = NULL; /* the config may outlive the engine */
    heap_free(&e->ticks);
    webhooks_free(&e->ws);
    free(e->failing);
    signer_free(&e->signer);
    metrics_free(&e->metrics);
    pthread_mutex_destroy(&e->status_mu);
    pthread_cond_destroy(&e->inbox.done);
    pthread_mutex_destroy(&e->inbox.mu);
    free(e);
}

/* ---- requests from other threads -------------------------------------------------------- */

int engine_request(struct engine *e, struct send_request *r)
{
    pthread_mutex_lock(&e->inbox.mu);
    if (e->inbox.closed) {
        pthread_mutex_unlock(&e->inbox.mu);
        r->status = -1;
        snprintf(r->message, sizeof r->message, "metronome is stopping");
        return -1;
    }
    r->next = e->inbox.head;
    e->inbox.head = r;
    while (!r->done)
        pthread_cond_wait(&e->inbox.done, &e->inbox.mu);
    pthread_mutex_unlock(&e->inbox.mu);
    return 0;
}

static int refresh_webhooks(struct engine *e);

static void take_requests(struct engine *e, mtr_time now)
{
    pthread_mutex_lock(&e->inbox.mu);
    struct send_request *list = e->inbox.head;
    e->inbox.head = NULL;
    pthread_mutex_unlock(&e->inbox.mu);
    int known = !list || refresh_webhooks(e) == 0; /* a webhook created a moment ago */
    while (list) {
        struct send_request *r = list;
        list = r->next;
        if (known) {
            delivery_start_send(e, r, now);
        } else {
            r->status = -1;
            snprintf(r->message, sizeof r->message, "the ledger cannot be read now: %s",
                     ledger_error(&e->L));
            engine_complete(e, r);
        }
    }
}

/* While the store is away each turn asks it again; when it answers, the
 * disables it missed are done. Returns 1 while it is still away. */
static int store_still_away(struct engine *e)
{
    mtr_time at;
    int found;
    if (!e->store_away)
        return 0;
    if (ledger_next_due(&e->L, &at, &found) != MTR_OK)
        return 1;
    e->store_away = 0;
    log_msg(MTR_LOG_WARN, "store", "reachable again");
    for (size_t i = 0; i < e->ws.n; i++)
        if (e->ws.v[i].pending_disable[0]) {
            char reason[32];
            snprintf(reason, sizeof reason, "%s", e->ws.v[i].pending_disable);
            e->ws.v[i].rec.state = MTR_WEBHOOK_ACTIVE; /* so the disable is not skipped */
            outcomes_disable(e, i, reason, clock_now(e->clk));
        }
    return e->store_away;
}

/* A turn that found the store away: what is in flight still comes back, its
 * outcomes wait in memory, and the store is asked again in a moment. */
static void ride_out(struct engine *e)
{
    outcomes_collect(e, 200);
    outcomes_maybe_flush(e);
    if (e->in_flight == 0 && e->clk->mode != CLOCK_VIRTUAL) {
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int engine_send(struct engine *e, struct send_request *r, struct diag *d)
{
    if (refresh_webhooks(e) != 0) {
        *d = e->diag;
        return -1;
    }
    delivery_start_send(e, r, clock_now(e->clk));
    while (!r->done && !e->failed) {
        outcomes_collect(e, 100);
        outcomes_maybe_flush(e);
    }
    outcomes_flush(e);
    if (e->failed) {
        *d = e->diag;
        return -1;
    }
    return 0;
}

/* ---- status ------------------------------------------------------------------------------- */

static void publish_status(struct engine *e)
{
    pthread_mutex_lock(&e->status_mu);
    e->status.started_wall = e->started_wall;
    e->status.now = clock_now(e->clk);
    e->status.virtual_clock = e->clk->mode == CLOCK_VIRTUAL;
    e->status.ready = !e->failed && !e->stopping;
    e->status.stopping = e->stopping;
    e->status.in_flight = e->in_flight;
    e->status.queued = e->n_outcomes;
    e->status.stats = e->stats;
    e->status.origins.n = e->origins.n;
    memcpy(e->status.origins.v, e->origins.v, e->origins.n * sizeof e->origins.v[0]);
    pthread_mutex_unlock(&e->status_mu);
}

void engine_get_status(struct engine *e, struct engine_status *out)
{
    pthread_mutex_lock(&e->status_mu);
    *out = e->status;
    pthread_mutex_unlock(&e->status_mu);
}

struct metrics *engine_metrics(struct engine *e)
{
    return &e->metrics;
}

/* ---- the loop ------------------------------------------------------------------------------ */

/* Reads the webhook set again: new webhooks get their ticks planned, changed
 * ones have them planned again. */
static int refresh_webhooks(struct engine *e)
{
    struct diag d;
    size_t before = e->ws.n;
    clock_gettime(CLOCK_MONOTONIC, &e->last_refresh);
    if (webhooks_refresh(&e->ws, e->c, &e->L, e->clk, NULL, &d) != 0)
        return store_failed(e, "read webhooks");
    mtr_time now = clock_now(e->clk);
    for (size_t i = 0; i < e->ws.n; i++) {
        struct webhook *w = &e->ws.v[i];
        if (i >= before || w->changed) {
            w->changed = 0;
            if (i >= before)
                log_msg(MTR_LOG_INFO, w->name, "webhook %s",
                        w->gone ? "seen (not loadable)" : "added");
            if (ticks_plan(e, i, now) != 0) {
                e->failed = 1;
                return diag_set(e->d, "out of memory");
            }
        }
    }
    return 0;
}

static int second_passed(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000 >= 1000;
}

/* Every HEARTBEAT_SECONDS of wall time the node says in the ledger that it
 * is alive, for `status` and the API's list of nodes. (A lease is 600 s: a
 * node is shown as gone long before the work it held can be taken over.) */
#define HEARTBEAT_SECONDS 10

/* Says in the ledger that this node is alive (last_seen: wall time, or 0 when
 * it leaves). A virtual clock's run is a simulation, not a node. */
static void say_alive(struct engine *e, int leaving)
{
    if (!ledger_has_nodes(&e->L) || e->clk->mode == CLOCK_VIRTUAL)
        return;
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    struct mtr_node_row n = {.id = e->owner,
                             .host = host,
                             .started_at = (mtr_time)e->started_wall,
                             .last_seen = leaving ? 0 : (mtr_time)time(NULL)};
    if (ledger_node_heartbeat(&e->L, &n) != MTR_OK && !leaving)
        store_failed(e, "heartbeat");
}

static void heartbeat(struct engine *e)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (e->last_heartbeat.tv_sec && now.tv_sec - e->last_heartbeat.tv_sec < HEARTBEAT_SECONDS)
        return;
    e->last_heartbeat = now;
    say_alive(e, 0);
}

/* Retention (SPEC 7): at most once a minute of the clock, in batches small
 * enough never to hold up delivery for long. */
static void prune(struct engine *e, mtr_time now)
{
    const struct retention_cfg *r = &e->c->retention;
    if (!ledger_has_prune(&e->L) || now - e->last_prune < 60)
        return;
    e->last_prune = now;
    uint64_t total = 0, n;
    for (int round = 0; round < 10; round++) {
        if (ledger_prune(&e->L, now - r->delivered_ms / 1000, now - r->failed_ms / 1000,
                         now - r->history_ms / 1000, 1000, &n) != MTR_OK) {
            log_msg(MTR_LOG_WARN, "retention", "%s", ledger_error(&e->L));
            return;
        }
        total += n;
        if (n < 1000)
            break;
    }
    if (total)
        log_msg(MTR_LOG_DEBUG, "retention", "pruned %llu ledger rows or payloads",
                (unsigned long long)total);
}

/* The next instant anything becomes due; 0 when nothing ever will. */
static mtr_time next_wakeup(struct engine *e)
{
    mtr_time at = ticks_next(e), due, probe = recovery_next(e);
    int found;
    if (probe && (at == 0 || probe < at))
        at = probe;
    if (ledger_next_due(&e->L, &due, &found) != MTR_OK) {
        store_failed(e, "next due");
        return 0;
    }
    if (found && (at == 0 || due < at))
        at = due;
    return at;
}

static void sleep_until(struct engine *e, mtr_time at, volatile sig_atomic_t *stop)
{
    /* wake at least every 200 ms to notice a stop request or an API request */
    mtr_time now = clock_now(e->clk);
    int ms = at > now ? (int)((at - now) * 1000 > 200 ? 200 : (at - now) * 1000) : 0;
    if (ms > 0 && !(stop && *stop)) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int inbox_waiting(struct engine *e)
{
    pthread_mutex_lock(&e->inbox.mu);
    int any = e->inbox.head != NULL;
    pthread_mutex_unlock(&e->inbox.mu);
    return any;
}

/* Nothing is due now: sleep, or move a virtual clock, to the next timer.
 * Returns 1 when the run is over (a virtual clock reached --until). */
static int wait_for_work(struct engine *e, const struct engine_options *o, mtr_time now)
{
    prune(e, now);
    mtr_time next = next_wakeup(e);
    if (e->failed)
        return 1;
    if (next && next <= now)
        next = now + 1; /* due but held by another node's lease: look again later */
    if (e->clk->mode == CLOCK_VIRTUAL) {
        if (next == 0 || next > o->until) {
            clock_advance(e->clk, o->until);
            return 1;
        }
        clock_advance(e->clk, next);
        return 0;
    }
    if (!inbox_waiting(e))
        sleep_until(e, next ? next : now + 1, o->stop);
    return 0;
}

/* Finishes what is in flight before stopping; sinks time out. Returns 1 when
 * nothing is left. */
static int drain(struct engine *e)
{
    if (!e->stopping)
        log_msg(MTR_LOG_INFO, NULL, "stopping: finishing %zu delivery(ies) in flight",
                e->in_flight);
    e->stopping = 1;
    close_inbox(e);
    if (e->in_flight == 0)
        return 1;
    outcomes_collect(e, 100);
    outcomes_maybe_flush(e);
    return 0;
}

int engine_run(struct engine *e, const struct engine_options *o, struct diag *d)
{
    int rc = ticks_start(e);
    int is_virtual = e->clk->mode == CLOCK_VIRTUAL;
    while (rc == 0 && !e->failed) {
        mtr_time now = clock_now(e->clk);
        publish_status(e);
        if ((o->stop && *o->stop) || (o->until && now >= o->until && !is_virtual)) {
            if (drain(e))
                break;
            continue;
        }
        take_requests(e, now);
        for (struct send_request *r = recovery_run(e, now), *next; r; r = next) {
            next = r->next;
            delivery_start_send(e, r, now);
        }
        heartbeat(e);
        if (store_still_away(e) || (second_passed(&e->last_refresh) && refresh_webhooks(e) != 0)) {
            if (e->failed)
                break;
            ride_out(e);
            continue;
        }
        int work = 0, sent = 0;
        if (ticks_fire(e, now) < 0 || (work = fetch_jobs(e, now)) < 0) {
            if (e->failed)
                break;
            ride_out(e);
            continue;
        }
        delivery_launch_ready(e);
        if ((sent = delivery_dispatch(e, now)) < 0) {
            if (e->failed)
                break;
            ride_out(e);
            continue;
        }
        outcomes_collect(e, work || sent ? 0 : 20);
        outcomes_maybe_flush(e);
        if (work || sent || e->in_flight)
            continue; /* more may be due right now */
        if (wait_for_work(e, o, now))
            break;
    }
    e->stopping = 1;
    publish_status(e);
    if (!e->failed)
        say_alive(e, 1); /* gone from the list of nodes */
    if (e->failed || rc != 0) {
        *d = e->diag;
        return -1;
    }
    return 0;
}

const struct engine_stats *engine_stats(const struct engine *e)
{
    return &e->stats;
}
