/* The delivery engine. One loop, one thread:
 *
 *   fire_ticks        the scheduler's heap -> jobs in the ledger (before any fetch)
 *   process_jobs      claim due jobs -> fetch -> payloads + deliveries in the ledger
 *   dispatch          claim due deliveries -> sinks
 *   drive             poll sinks; outcomes -> attempts, retries, disable
 *   wait              sleep (wall clock) or jump (virtual clock) to the next timer
 *
 * Everything that must survive a crash is in the ledger before the step that
 * depends on it, so a restarted node (or a second one) resumes from there. */
#include "engine.h"
#include "courier.h"
#include "heap.h"
#include <jansson.h>
#include "jsonw.h"
#include "log.h"
#include "payload.h"
#include "scalar.h"
#include "scheduler.h"
#include "vault.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define JOB_BATCH 2048
#define DELIVERY_BATCH 256
#define MAX_IN_FLIGHT 8192
#define LEASE_SECONDS 600 /* > any sink timeout (300 s at most), so leases need no renewal */
#define MISSED_TICKS_RECORDED 1000
#define MAX_DATA_BYTES (16u << 20) /* one vehicle's data from a source */

struct wh_run {
    const struct webhook_cfg *cfg;
    struct webhook_rec rec;
};

/* A delivery handed to a sink, until its outcome is recorded. */
struct flight {
    struct courier_item ci; /* first: the courier hands it back */
    struct engine *e;
    char id[UUID_LEN + 1];
    size_t wh;   /* index into e->wh, or SIZE_MAX for an unknown webhook */
    size_t sink; /* index into config sinks */
    int kind;
    int attempts;    /* made before this one */
    int earlier;     /* made before this run (resumed from the ledger) */
    int round_start; /* attempts before this round */
    mtr_time first_attempt_at;
    char *body;
    size_t body_len;
    struct payload_headers ph;
    struct flight *next; /* in a list of the engine's */
};

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
};

/* A claimed job on its way to a payload. */
struct fetch_item {
    struct mtr_job_key key;
    char *webhook_id, *vehicle_id;
    mtr_time due_at;
    int fetch_attempts;
    size_t wh, source;
    int done, status;
    int malformed;          /* the source's data was not a valid data array */
    char *access, *refresh; /* decrypted tokens of a live vehicle, or NULL */
    mtr_time access_expires;
    int needs_reauth;
    int key_refused; /* its tokens do not open with the vault's key */
    int refreshed;   /* the source refreshed the tokens: store them, fetch again */
    char *new_access, *new_refresh;
    mtr_time new_expires;
    int64_t retry_after_s;
    char *data; /* as the source answered */
    size_t data_len;
    char *error;
};

struct engine {
    struct config *c;
    struct clock *clk;
    struct ledger L;
    char owner[128];
    struct wh_run *wh;
    size_t n_wh;
    struct heap ticks;      /* id = webhook index */
    struct courier courier; /* the sinks' thread */
    struct flight *ready;   /* inserted, waiting for their transaction to commit */
    size_t in_flight;
    struct outcome *outcomes; /* recorded in batches */
    size_t n_outcomes, cap_outcomes;
    struct timespec last_flush;
    struct vault vault;
    mtr_time last_prune;
    struct signer signer; /* SC-Signature, keyed with the management token */
    struct engine_stats *stats;
    struct timespec first_tick; /* wall, monotonic: the first tick fired (0: none yet) */
    struct diag *d;
    int failed; /* the store refused a write */
    /* the requests a source is answering now: a result's cookie must be one */
    struct fetch_item *fetching;
    size_t n_fetching;
    const char *fetch_source;
    mtr_time started_at; /* deliveries made before this are "earlier" */
};

/* ---- small helpers ------------------------------------------------------------------ */

static const char *sink_name(const struct engine *e, size_t i)
{
    return e->c->sinks[i].name;
}

static const struct mtr_sink_ops *sink_ops(const struct engine *e, size_t i)
{
    return e->c->sinks[i].inst->ctx.pf->desc.sink;
}

static void *sink_state(const struct engine *e, size_t i)
{
    return e->c->sinks[i].inst->state;
}

static const struct mtr_source_ops *source_ops(const struct engine *e, size_t i)
{
    return e->c->sources[i].inst->ctx.pf->desc.source;
}

static size_t find_webhook(const struct engine *e, const char *id)
{
    for (size_t i = 0; i < e->n_wh; i++)
        if (strcmp(e->wh[i].rec.id, id) == 0)
            return i;
    return SIZE_MAX;
}

static size_t find_source(const struct engine *e, const char *name, size_t fallback)
{
    for (size_t i = 0; name && i < e->c->n_sources; i++)
        if (strcmp(e->c->sources[i].name, name) == 0)
            return i;
    return fallback;
}

static size_t find_sink(const struct engine *e, const char *name)
{
    for (size_t i = 0; i < e->c->n_sinks; i++)
        if (strcmp(e->c->sinks[i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

static int store_failed(struct engine *e, const char *what)
{
    if (!e->failed)
        diag_set(e->d, "store: %s: %s", what, ledger_error(&e->L));
    e->failed = 1;
    return -1;
}

static int start_plugins(struct config *c, struct diag *d)
{
    for (size_t i = 0; i < c->n_sources; i++) {
        if (instance_start(c->sources[i].inst, d) != 0)
            return -1;
        const struct instance *in = c->sources[i].inst;
        const char *mode = in->ctx.pf->desc.source->mode(in->state);
        if (!mode || (strcmp(mode, "simulated") != 0 && strcmp(mode, "live") != 0 &&
                      strcmp(mode, "test") != 0))
            return diag_set(d,
                            "source '%s' (plugin %s, %s): mode() must answer \"simulated\", "
                            "\"live\" or \"test\"",
                            c->sources[i].name, in->ctx.pf->desc.name, in->ctx.pf->path);
    }
    for (size_t i = 0; i < c->n_sinks; i++)
        if (instance_start(c->sinks[i].inst, d) != 0)
            return -1;
    return 0;
}

static void make_owner(char *buf, size_t len)
{
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    char rnd[UUID_LEN + 1];
    uuid_random(rnd);
    snprintf(buf, len, "%s:%ld:%.8s", host, (long)getpid(), rnd);
}

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

/* ---- ticks ---------------------------------------------------------------------------- */

static int refresh_webhook(struct engine *e, size_t i)
{
    int found;
    struct webhook_rec rec;
    if (ledger_get_webhook(&e->L, e->wh[i].rec.id, &rec, &found) != 0)
        return store_failed(e, "read webhook");
    if (found)
        e->wh[i].rec = rec;
    return 0;
}

static int record_tick(struct engine *e, size_t i, mtr_time tick, int job_state)
{
    const struct delivery_cfg *dc = &e->c->delivery;
    uint64_t n = 0;
    struct wh_run *w = &e->wh[i];
    if (job_state == MTR_JOB_DUE && !e->first_tick.tv_sec && !e->first_tick.tv_nsec)
        clock_gettime(CLOCK_MONOTONIC, &e->first_tick); /* before its jobs are written */
    if (e->L.ops->materialize_tick(e->L.st, w->rec.id, tick, job_state, dc->spread_min_ms / 1000,
                                   dc->spread_max_ms / 1000, &n) != MTR_OK ||
        e->L.ops->webhook_set_last_tick(e->L.st, w->rec.id, tick) != MTR_OK)
        return store_failed(e, "record tick");
    w->rec.last_tick = tick;
    if (job_state == MTR_JOB_DUE) {
        e->stats->ticks++;
        e->stats->jobs += n;
    } else {
        e->stats->jobs_missed += n;
    }
    char when[32];
    format_iso8601(tick, when, sizeof when);
    log_msg(MTR_LOG_DEBUG, w->cfg->name, "tick %s: %llu jobs %s", when, (unsigned long long)n,
            job_state == MTR_JOB_DUE ? "due" : "missed");
    return 0;
}

/* Ticks missed while the daemon was down, per catch_up: skip records them all
 * as missed, latest delivers the newest, all delivers every one. A tick
 * younger than fulfil_within is not late and is delivered normally. */
static int catch_up(struct engine *e, size_t i, mtr_time now)
{
    struct wh_run *w = &e->wh[i];
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
        if (t <= late_before)
            total++;
        if (t > late_before) {
            if ((rc = record_tick(e, i, t, MTR_JOB_DUE)) != 0)
                break;
            continue;
        }
        if (n_late == cap) { /* keep the newest MISSED_TICKS_RECORDED */
            if (cap == MISSED_TICKS_RECORDED) {
                memmove(late, late + 1, (cap - 1) * sizeof *late);
                n_late--;
            } else {
                cap = cap ? cap * 2 : 16;
                cap = cap > MISSED_TICKS_RECORDED ? MISSED_TICKS_RECORDED : cap;
                mtr_time *p = realloc(late, cap * sizeof *p);
                if (!p) {
                    rc = -1;
                    break;
                }
                late = p;
            }
        }
        late[n_late++] = t;
    }
    for (size_t k = 0; rc == 0 && k < n_late; k++) {
        int policy = e->c->delivery.catch_up;
        int deliver = policy == CATCH_UP_ALL || (policy == CATCH_UP_LATEST && k == n_late - 1);
        rc = record_tick(e, i, late[k], deliver ? MTR_JOB_DUE : MTR_JOB_MISSED);
    }
    if (n_late)
        log_msg(MTR_LOG_INFO, w->cfg->name, "%zu tick(s) passed while stopped%s; catch_up %s",
                total, total > n_late ? " (the newest 1000 recorded)" : "",
                e->c->delivery.catch_up == CATCH_UP_SKIP     ? "skip: recorded as missed"
                : e->c->delivery.catch_up == CATCH_UP_LATEST ? "latest: delivering the newest"
                                                             : "all: delivering them all");
    free(late);
    return rc;
}

static int schedule_next(struct engine *e, size_t i, mtr_time after)
{
    mtr_time next;
    struct diag ignored;
    if (webhook_next_tick(e->wh[i].cfg, after, &next, &ignored) != 0)
        return 0; /* no further tick: the webhook drops out */
    return heap_push(&e->ticks, next, i);
}

static int fire_ticks(struct engine *e, mtr_time now)
{
    const struct heap_item *top;
    int fired = 0;
    while ((top = heap_peek(&e->ticks)) != NULL && top->at <= now) {
        struct heap_item it;
        heap_pop(&e->ticks, &it);
        size_t i = (size_t)it.id;
        if (refresh_webhook(e, i) != 0)
            return -1;
        const struct webhook_rec *r = &e->wh[i].rec;
        if (it.at > r->last_tick && it.at > r->active_from) {
            if (r->state == MTR_WEBHOOK_ACTIVE && record_tick(e, i, it.at, MTR_JOB_DUE) != 0)
                return -1;
            if (r->state == MTR_WEBHOOK_DISABLED && record_tick(e, i, it.at, MTR_JOB_MISSED) != 0)
                return -1;
        }
        schedule_next(e, i, it.at);
        fired++;
    }
    return fired;
}

/* ---- jobs: claim, fetch, build payloads ------------------------------------------------- */

/* Decrypts a live vehicle's tokens for the fetch; a vehicle whose tokens
 * cannot be opened is not fetched (its data says why). */
static void open_tokens(struct engine *e, struct fetch_item *it, const struct mtr_vehicle_row *v)
{
    if (!v->access_token && !v->refresh_token)
        return;
    if (e->vault.has_key) {
        if (v->access_token)
            it->access = vault_open(&e->vault, v->access_token, v->access_len);
        if (v->refresh_token)
            it->refresh = vault_open(&e->vault, v->refresh_token, v->refresh_len);
    }
    if ((v->access_token && !it->access) || (v->refresh_token && !it->refresh)) {
        /* the operator's mistake, not the vehicle's: see refuse_claim */
        it->done = 1;
        it->key_refused = 1;
    }
}

static void fetch_item_free(struct fetch_item *it)
{
    free(it->webhook_id);
    free(it->vehicle_id);
    free(it->data);
    free(it->error);
    free(it->access);
    free(it->refresh);
    free(it->new_access);
    free(it->new_refresh);
}

/* When a claimed vehicle's credentials do not open with the key, nothing is
 * fetched or sent: every claimed job goes back to due and the daemon stops
 * with an error naming the vehicle (a wrong key is the operator's to fix,
 * never an error for the customer's receiver). Returns 1 when so. */
static int refuse_claim(struct engine *e, struct fetch_item *items, size_t n, mtr_time now)
{
    size_t bad = 0;
    while (bad < n && !items[bad].key_refused)
        bad++;
    if (bad == n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (e->L.ops->job_retry(e->L.st, &items[i].key, now, NULL) != MTR_OK)
            return store_failed(e, "release jobs"), 1;
    diag_set(e->d,
             "vehicle %s: its stored credentials do not open with %s; start metronome with the "
             "key they were sealed with ($METRONOME_SECRET_KEY or secrets.key_file)",
             items[bad].vehicle_id, e->vault.has_key ? "this secret key" : "no secret key");
    e->failed = 1;
    return 1;
}

struct claim {
    struct engine *e;
    struct fetch_item *items;
    size_t n;
};

static int on_job(void *arg, const struct mtr_job *j)
{
    struct claim *cl = arg;
    struct fetch_item *it = &cl->items[cl->n];
    memset(it, 0, sizeof *it);
    it->webhook_id = strdup(j->key.webhook_id);
    it->vehicle_id = strdup(j->key.vehicle_id);
    if (!it->webhook_id || !it->vehicle_id) {
        free(it->webhook_id);
        free(it->vehicle_id);
        return 1;
    }
    it->key = (struct mtr_job_key){it->webhook_id, it->vehicle_id, j->key.tick};
    it->due_at = j->due_at;
    it->fetch_attempts = j->fetch_attempts;
    it->wh = find_webhook(cl->e, j->key.webhook_id);
    size_t fallback = it->wh == SIZE_MAX ? 0 : cl->e->wh[it->wh].cfg->source;
    it->source = find_source(cl->e, j->vehicle.source, fallback);
    it->access_expires = j->vehicle.access_expires;
    it->needs_reauth = j->vehicle.needs_reauth;
    it->retry_after_s = -1;
    open_tokens(cl->e, it, &j->vehicle);
    cl->n++;
    return 0;
}

/* The item a source's result is for, or NULL when its cookie is not one of
 * the requests in flight (a source bug: logged, the result dropped). */
static struct fetch_item *fetched_item(struct engine *e, const struct mtr_fetch_result *r)
{
    const struct fetch_item *lo = e->fetching, *hi = e->fetching + e->n_fetching;
    const char *p = r ? (const char *)r->cookie : NULL;
    if (p && e->fetching && p >= (const char *)lo && p < (const char *)hi &&
        (size_t)(p - (const char *)lo) % sizeof *lo == 0) {
        struct fetch_item *it = (struct fetch_item *)(uintptr_t)p;
        if (!it->done)
            return it;
    }
    log_msg(MTR_LOG_ERROR, e->fetch_source ? e->fetch_source : "source",
            "the source handed back a result for a request it was not given (cookie %p), or "
            "one twice: ignored",
            p);
    return NULL;
}

static void on_fetched(void *core, const struct mtr_fetch_result *r)
{
    struct fetch_item *it = fetched_item(core, r);
    if (!it)
        return;
    it->done = 1;
    it->status = r->status;
    if (r->status != MTR_OK && r->status != MTR_EAGAIN && r->status != MTR_ERR)
        it->status = MTR_ERR; /* not a status a source may answer */
    if (r->data_json && r->data_len > MAX_DATA_BYTES) {
        it->status = MTR_ERR;
        it->malformed = 1;
        it->error = strdup("the source answered more than 16 MiB of data for one vehicle");
    } else if (r->data_json && r->data_len) {
        it->data = malloc(r->data_len + 1);
        if (it->data) {
            memcpy(it->data, r->data_json, r->data_len);
            it->data[r->data_len] = '\0';
            it->data_len = r->data_len;
        }
    }
    if (r->error && !it->error)
        it->error = strndup(r->error, 1024);
    it->needs_reauth = r->needs_reauth;
    /* a source's word on time is bounded before the engine adds it to anything */
    it->retry_after_s = r->retry_after_s < 0                     ? -1
                        : r->retry_after_s > MTR_RETRY_AFTER_MAX ? MTR_RETRY_AFTER_MAX
                                                                 : r->retry_after_s;
    if (r->refreshed && r->new_access_token && r->new_refresh_token) {
        it->refreshed = 1;
        it->new_access = strdup(r->new_access_token);
        it->new_refresh = strdup(r->new_refresh_token);
        it->new_expires = r->new_access_expires < MTR_TIME_MIN   ? MTR_TIME_MIN
                          : r->new_access_expires > MTR_TIME_MAX ? MTR_TIME_MAX
                                                                 : r->new_access_expires;
    }
}

static void collect_outcomes(struct engine *e, int wait_ms);

/* Stores refreshed tokens - both, sealed, in one write - before anything uses
 * them, then readies the item to be fetched again with them. Returns how many
 * were refreshed. */
static size_t store_refreshed(struct engine *e, struct fetch_item *items, size_t n)
{
    size_t again = 0;
    for (size_t i = 0; i < n; i++) {
        struct fetch_item *it = &items[i];
        if (!it->refreshed)
            continue;
        size_t alen = 0, rlen = 0;
        unsigned char *a = e->vault.has_key ? vault_seal(&e->vault, it->new_access, &alen) : NULL;
        unsigned char *r = e->vault.has_key ? vault_seal(&e->vault, it->new_refresh, &rlen) : NULL;
        struct mtr_vehicle_row v = {.id = it->vehicle_id,
                                    .source = e->c->sources[it->source].name,
                                    .access_token = a,
                                    .access_len = alen,
                                    .refresh_token = r,
                                    .refresh_len = rlen,
                                    .access_expires = it->new_expires};
        int ok = a && r && e->L.ops->vehicle_upsert(e->L.st, &v) == MTR_OK;
        free(a);
        free(r);
        it->refreshed = 0;
        if (!ok) { /* not stored: not used */
            it->status = MTR_EAGAIN;
            log_msg(MTR_LOG_ERROR, e->wh[it->wh].cfg->name,
                    "vehicle %s: refreshed tokens could not be stored: %s", it->vehicle_id,
                    ledger_error(&e->L));
            continue;
        }
        free(it->access);
        free(it->refresh);
        it->access = it->new_access;
        it->refresh = it->new_refresh;
        it->new_access = it->new_refresh = NULL;
        it->access_expires = it->new_expires;
        it->done = 0;
        free(it->error);
        it->error = NULL;
        free(it->data);
        it->data = NULL;
        again++;
    }
    return again;
}

static void fetch_round(struct engine *e, struct fetch_item *items, size_t n);

/* Fetches every item through its source (again, with new tokens, when a
 * source refreshed them); sinks keep running meanwhile. */
static void fetch_all(struct engine *e, struct fetch_item *items, size_t n)
{
    for (int round = 0; round < 3; round++) {
        fetch_round(e, items, n);
        if (round < 2 && store_refreshed(e, items, n) == 0)
            break;
    }
    for (size_t i = 0; i < n; i++)
        if (items[i].needs_reauth && items[i].wh != SIZE_MAX) {
            struct mtr_vehicle_row v = {.id = items[i].vehicle_id,
                                        .source = e->c->sources[items[i].source].name,
                                        .needs_reauth = 1};
            if (e->L.ops->vehicle_upsert(e->L.st, &v) != MTR_OK)
                store_failed(e, "mark vehicle");
        }
}

static void fetch_round(struct engine *e, struct fetch_item *items, size_t n)
{
    e->fetching = items;
    e->n_fetching = n;
    for (size_t s = 0; s < e->c->n_sources; s++) {
        e->fetch_source = e->c->sources[s].name;
        const struct mtr_source_ops *ops = source_ops(e, s);
        struct mtr_fetch_request *reqs = calloc(n ? n : 1, sizeof *reqs);
        struct mtr_vehicle *veh = calloc(n ? n : 1, sizeof *veh);
        size_t k = 0;
        if (!reqs || !veh) {
            free(reqs);
            free(veh);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            struct fetch_item *it = &items[i];
            if (it->done || it->source != s)
                continue;
            const struct webhook_cfg *w = e->wh[it->wh].cfg;
            veh[k] = (struct mtr_vehicle){.id = it->vehicle_id,
                                          .access_token = it->access,
                                          .refresh_token = it->refresh,
                                          .access_expires = it->access_expires};
            reqs[k] = (struct mtr_fetch_request){
                .vehicle = &veh[k],
                .endpoints = (const char *const *)w->endpoints,
                .n_endpoints = w->n_endpoints,
                .units = w->units,
                .tick = it->key.tick,
                .now = clock_now(e->clk),
                .cookie = it,
            };
            k++;
        }
        if (k && ops->submit(e->c->sources[s].inst->state, reqs, k, on_fetched, e) != MTR_OK)
            for (size_t i = 0; i < k; i++) /* refused: treat as a transient failure */
                on_fetched(e, &(struct mtr_fetch_result){.status = MTR_EAGAIN,
                                                         .error = "the source refused the fetch",
                                                         .cookie = reqs[i].cookie});
        while (k && ops->poll && ops->poll(e->c->sources[s].inst->state, 50) > 0)
            collect_outcomes(e, 0);
        for (size_t i = 0; i < n; i++) /* a request the source never answered */
            if (!items[i].done && items[i].source == s && items[i].wh != SIZE_MAX)
                on_fetched(e, &(struct mtr_fetch_result){
                                  .status = MTR_EAGAIN,
                                  .error = "the source finished without answering this vehicle",
                                  .retry_after_s = -1,
                                  .cookie = &items[i]});
        free(reqs);
        free(veh);
    }
    e->fetching = NULL;
    e->n_fetching = 0;
    e->fetch_source = NULL;
}

/* A payload group: the final entries of one (webhook, tick, source). */
struct entry {
    struct fetch_item *item;
    char *text;
    size_t len;
};

static char *error_entry(struct engine *e, struct fetch_item *it, const char *request_id,
                         size_t *len)
{
    const struct webhook_cfg *w = e->wh[it->wh].cfg;
    char err[512];
    size_t data_len;
    char *data = payload_error_data(
        (const char *const *)w->endpoints, w->n_endpoints, 502, "UPSTREAM",
        it->malformed ? "INVALID_DATA" : "UNKNOWN_ISSUE",
        it->error ? it->error : "the vehicle's data could not be fetched", request_id, &data_len);
    if (!data)
        return NULL;
    char *entry = payload_vehicle(it->vehicle_id, request_id, data, data_len, len, err, sizeof err);
    free(data);
    return entry;
}

/* Turns a fetch result into a final vehicle entry, or reschedules the job
 * into its next 15-minute slot. Returns the entry, or NULL (rescheduled or
 * dropped to missed). */
static char *settle(struct engine *e, struct fetch_item *it, size_t *len)
{
    char request_id[UUID_LEN + 1], tick_s[24], err[512];
    snprintf(tick_s, sizeof tick_s, "%lld", (long long)it->key.tick);
    const char *parts[] = {"request", it->webhook_id, it->vehicle_id, tick_s};
    uuid_derive(request_id, parts, 4);
    char *entry = NULL;
    if (it->status == MTR_OK && it->data) {
        entry = payload_vehicle(it->vehicle_id, request_id, it->data, it->data_len, len, err,
                                sizeof err);
        if (entry)
            return entry;
        log_msg(MTR_LOG_WARN, e->wh[it->wh].cfg->name, "vehicle %s: source '%s' answered %s",
                it->vehicle_id, e->c->sources[it->source].name, err);
        free(it->error);
        it->error = strdup(err);
        it->malformed = 1;
    }
    /* transient, or malformed: the next slot, unless the next tick comes first */
    mtr_time slot = it->due_at + e->c->delivery.fulfil_within_ms / 1000, next_tick;
    if (it->status == MTR_EAGAIN && it->retry_after_s > 0) /* the source said when */
        slot = clock_now(e->clk) + it->retry_after_s;
    struct diag ignored;
    int has_next = webhook_next_tick(e->wh[it->wh].cfg, it->key.tick, &next_tick, &ignored) == 0;
    if (has_next && slot < next_tick) {
        if (e->L.ops->job_retry(e->L.st, &it->key, slot, it->error) != MTR_OK)
            store_failed(e, "reschedule job");
        e->stats->fetch_retries++;
        return NULL;
    }
    e->stats->fetch_errors_delivered++;
    if (it->data && it->status != MTR_ERR && !it->malformed) /* the source's error elements */
        entry = payload_vehicle(it->vehicle_id, request_id, it->data, it->data_len, len, err,
                                sizeof err);
    return entry ? entry : error_entry(e, it, request_id, len);
}

/* Builds and stores the deliveries of n entries (one webhook, tick, source)
 * for one sink, halving the group until each payload fits the sink. */
static int store_payloads(struct engine *e, struct entry *ent, size_t n, size_t sink,
                          struct mtr_delivery_row *rows, size_t *n_rows, char **bodies)
{
    const struct fetch_item *first = ent[0].item;
    const struct webhook_cfg *w = e->wh[first->wh].cfg;
    const char *mode = source_ops(e, first->source)->mode(e->c->sources[first->source].inst->state);
    char **texts = malloc(n * sizeof *texts);
    size_t *lens = malloc(n * sizeof *lens), len;
    if (!texts || !lens) {
        free(texts);
        free(lens);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        texts[i] = ent[i].text;
        lens[i] = ent[i].len;
    }
    char *body = payload_scheduled(e->wh[first->wh].rec.id, mode, texts, lens, n, &len);
    free(texts);
    free(lens);
    if (!body)
        return -1;
    uint64_t max = sink_ops(e, sink)->max_body_bytes
                       ? sink_ops(e, sink)->max_body_bytes(sink_state(e, sink))
                       : 0;
    if (max && len > max && n > 1) { /* split by vehicles, never truncate */
        free(body);
        return store_payloads(e, ent, n / 2, sink, rows, n_rows, bodies) ||
               store_payloads(e, ent + n / 2, n - n / 2, sink, rows, n_rows, bodies);
    }
    char tick_s[24];
    snprintf(tick_s, sizeof tick_s, "%lld", (long long)first->key.tick);
    const char **parts = malloc((n + 3) * sizeof *parts);
    if (!parts) {
        free(body);
        return -1;
    }
    parts[0] = e->wh[first->wh].rec.id;
    parts[1] = tick_s;
    parts[2] = sink_name(e, sink);
    for (size_t i = 0; i < n; i++)
        parts[3 + i] = ent[i].item->vehicle_id;
    char *id = malloc(UUID_LEN + 1);
    if (!id) {
        free(parts);
        free(body);
        return -1;
    }
    /* led by (tick, spread key of the first vehicle): the order jobs are claimed in */
    uuid_derive_ordered(id, first->key.tick, stable_hash32(parts[0], first->vehicle_id), parts,
                        n + 3);
    free(parts);
    mtr_time now = clock_now(e->clk);
    int oversize = max && len > max;
    if (oversize)
        log_msg(MTR_LOG_WARN, w->name,
                "payload of vehicle %s is %zu bytes, over sink '%s' max_body_bytes (%llu): "
                "recorded as failed, not sent; raise the limit and replay it",
                first->vehicle_id, len, sink_name(e, sink), (unsigned long long)max);
    rows[*n_rows] = (struct mtr_delivery_row){
        .id = id,
        .webhook_id = e->wh[first->wh].rec.id,
        .sink = sink_name(e, sink),
        .tick = first->key.tick,
        .kind = MTR_DELIVERY_SCHEDULED,
        .state = oversize ? MTR_DELIVERY_FAILED : MTR_DELIVERY_PENDING,
        .created_at = now,
        .next_attempt_at = oversize ? now : now + LEASE_SECONDS, /* the lease's end */
        .body = body,
        .body_len = len,
        .vehicles = (int)n,
        .last_error = oversize ? "payload over max_body_bytes" : NULL,
        .updated_at = now,
        /* leased to this node at once: it sends the delivery from memory */
        .lease_owner = oversize ? NULL : e->owner,
        .lease_until = now + LEASE_SECONDS,
    };
    bodies[2 * *n_rows] = body;
    bodies[2 * *n_rows + 1] = id;
    (*n_rows)++;
    e->stats->deliveries++;
    return 0;
}

static void flight_free(struct flight *f);

/* A delivery just inserted under this node's lease becomes a flight that is
 * launched once the transaction holding it commits. Takes the row's body. */
static int make_ready(struct engine *e, const struct mtr_delivery_row *row, size_t wh)
{
    struct flight *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->e = e;
    snprintf(f->id, sizeof f->id, "%s", row->id);
    f->body = (char *)row->body;
    f->body_len = row->body_len;
    f->wh = wh;
    f->sink = find_sink(e, row->sink);
    f->kind = row->kind;
    f->next = e->ready;
    e->ready = f;
    return 0;
}

/* Stores one group's deliveries (for every sink of the webhook) and marks its
 * jobs sent, in one call. */
static int store_group(struct engine *e, struct entry *ent, size_t n)
{
    const struct webhook_cfg *w = e->wh[ent[0].item->wh].cfg;
    size_t cap = 2 * n * w->n_sinks + 2; /* halving never makes more than 2n parts */
    struct mtr_delivery_row *rows = calloc(cap, sizeof *rows);
    char **bodies = calloc(2 * cap, sizeof *bodies);
    struct mtr_job_key *keys = calloc(n, sizeof *keys);
    size_t n_rows = 0;
    int rc = rows && bodies && keys ? 0 : -1;
    for (size_t s = 0; rc == 0 && s < w->n_sinks; s++)
        rc = store_payloads(e, ent, n, w->sinks[s], rows, &n_rows, bodies);
    for (size_t i = 0; rc == 0 && i < n; i++)
        keys[i] = ent[i].item->key;
    int *inserted = rc == 0 ? calloc(n_rows ? n_rows : 1, sizeof *inserted) : NULL;
    if (rc == 0 && (!inserted || e->L.ops->deliveries_insert(e->L.st, rows, n_rows, keys, n,
                                                             inserted) != MTR_OK))
        rc = store_failed(e, "store deliveries");
    for (size_t i = 0; rc == 0 && i < n_rows; i++)
        if (inserted[i] && rows[i].state == MTR_DELIVERY_PENDING &&
            make_ready(e, &rows[i], ent[0].item->wh) == 0)
            bodies[2 * i] = NULL; /* the flight owns the body now */
    free(inserted);
    for (size_t i = 0; bodies && i < 2 * n_rows; i++)
        free(bodies[i]);
    free(rows);
    free(bodies);
    free(keys);
    return rc;
}

static int same_group(const struct fetch_item *a, const struct fetch_item *b)
{
    return a->wh == b->wh && a->key.tick == b->key.tick && a->source == b->source;
}

/* Groups final entries by (webhook, tick, source) and stores them in chunks
 * of the webhook's vehicles_per_payload. */
static int store_entries(struct engine *e, struct entry *ent, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!ent[i].text)
            continue;
        struct entry *group = malloc((n - i) * sizeof *group);
        size_t g = 0;
        if (!group)
            return -1;
        for (size_t j = i; j < n; j++)
            if (ent[j].text && same_group(ent[i].item, ent[j].item)) {
                group[g++] = ent[j];
                if (j != i)
                    ent[j].text = NULL; /* taken; freed through group */
            }
        size_t per = (size_t)e->wh[ent[i].item->wh].cfg->vehicles_per_payload;
        for (size_t k = 0; k < g && rc == 0; k += per)
            rc = store_group(e, group + k, g - k < per ? g - k : per);
        for (size_t k = 1; k < g; k++)
            free(group[k].text);
        free(group);
    }
    return rc;
}

/* The data of a vehicle whose owner must connect it again. */
static void reauth_data(struct engine *e, struct fetch_item *it)
{
    char request_id[UUID_LEN + 1];
    uuid_random(request_id);
    const struct webhook_cfg *w = e->wh[it->wh].cfg;
    it->data = payload_error_data((const char *const *)w->endpoints, w->n_endpoints, 401,
                                  "AUTHENTICATION", "REAUTHENTICATE",
                                  "The vehicle needs re-authentication: its owner must connect it "
                                  "again through Smartcar Connect.",
                                  request_id, &it->data_len);
    it->done = 1;
    it->status = MTR_OK;
}

static void prepare_launch(struct engine *e, struct flight *f);

/* Sends what was stored in the transaction that just ended (or drops it, when
 * the transaction failed: the ledger does not hold it), in the order it was
 * stored and in one hand-over. */
static void launch_ready(struct engine *e)
{
    struct courier_item *list = NULL;
    while (e->ready) { /* ready is newest first: pushing each in front restores the order */
        struct flight *f = e->ready;
        e->ready = f->next;
        f->next = NULL;
        if (e->failed || f->sink == SIZE_MAX) {
            flight_free(f);
            continue;
        }
        payload_headers(&f->ph, &e->signer, f->body, f->body_len, f->id);
        prepare_launch(e, f);
        f->ci.next = list;
        list = &f->ci;
    }
    courier_send_list(&e->courier, list);
}

static int process_jobs(struct engine *e, mtr_time now)
{
    if (e->in_flight + JOB_BATCH > MAX_IN_FLIGHT)
        return 0; /* backpressure: let the sinks catch up first */
    struct claim cl = {.e = e, .items = calloc(JOB_BATCH, sizeof(struct fetch_item))};
    if (!cl.items)
        return -1;
    if (e->L.ops->claim_jobs(e->L.st, e->owner, now, now + LEASE_SECONDS, JOB_BATCH, on_job, &cl) !=
        MTR_OK) {
        for (size_t i = 0; i < cl.n; i++) /* what was claimed before the store failed */
            fetch_item_free(&cl.items[i]);
        free(cl.items);
        return store_failed(e, "claim jobs");
    }
    size_t n = cl.n;
    if (refuse_claim(e, cl.items, n, now)) {
        for (size_t i = 0; i < n; i++)
            fetch_item_free(&cl.items[i]);
        free(cl.items);
        return -1;
    }
    for (size_t i = 0; i < n; i++) { /* a webhook gone from the pipeline, or not active */
        struct fetch_item *it = &cl.items[i];
        if (it->wh == SIZE_MAX || e->wh[it->wh].rec.state != MTR_WEBHOOK_ACTIVE) {
            it->done = 1;
            it->wh = SIZE_MAX;
            if (e->L.ops->job_set_state(e->L.st, &it->key, MTR_JOB_MISSED) != MTR_OK)
                store_failed(e, "mark job missed");
            e->stats->jobs_missed++;
        }
    }
    for (size_t i = 0; i < n; i++) /* needing re-authentication: not fetched */
        if (cl.items[i].needs_reauth && !cl.items[i].done && cl.items[i].wh != SIZE_MAX)
            reauth_data(e, &cl.items[i]);
    fetch_all(e, cl.items, n);
    struct entry *ent = calloc(n ? n : 1, sizeof *ent);
    int rc = ent ? 0 : -1;
    if (rc == 0 && e->L.ops->begin(e->L.st) != MTR_OK)
        rc = store_failed(e, "begin");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        ent[i].item = &cl.items[i];
        if (cl.items[i].wh != SIZE_MAX)
            ent[i].text = settle(e, &cl.items[i], &ent[i].len);
    }
    if (rc == 0 && store_entries(e, ent, n) == 0 && !e->failed &&
        e->L.ops->commit(e->L.st) != MTR_OK)
        rc = store_failed(e, "commit");
    else if (rc == 0 && e->failed)
        e->L.ops->rollback(e->L.st);
    launch_ready(e);
    for (size_t i = 0; i < n; i++) {
        if (ent)
            free(ent[i].text);
        fetch_item_free(&cl.items[i]);
    }
    free(ent);
    free(cl.items);
    return e->failed ? -1 : (int)n;
}

/* ---- deliveries: dispatch and outcomes ---------------------------------------------------- */

static void flight_free(struct flight *f)
{
    free(f->body);
    free(f);
}

static void disable_webhook(struct engine *e, size_t wh, const char *reason, mtr_time now)
{
    struct wh_run *w = &e->wh[wh];
    if (w->rec.state == MTR_WEBHOOK_DISABLED)
        return;
    if (ledger_disable(&e->L, w->rec.id, reason, now) != 0) {
        store_failed(e, "disable webhook");
        return;
    }
    w->rec.state = MTR_WEBHOOK_DISABLED;
    snprintf(w->rec.reason, sizeof w->rec.reason, "%s", reason);
    e->stats->disabled++;
    log_msg(MTR_LOG_WARN, w->cfg->name,
            "webhook disabled (%s); `metronome webhook enable %s` and "
            "`metronome replay --webhook %s` bring it back",
            reason, w->cfg->name, w->cfg->name);
}

/* What follows an attempt: the new state and the next attempt's time. */
static int next_step(struct engine *e, struct flight *f, const struct mtr_sink_outcome *o,
                     mtr_time now, mtr_time *next_at, const char **disable_reason)
{
    const struct delivery_cfg *dc = &e->c->delivery;
    *disable_reason = NULL;
    *next_at = 0;
    if (o->status == MTR_OK)
        return MTR_DELIVERY_DELIVERED;
    if (f->kind == MTR_DELIVERY_TEST || f->wh == SIZE_MAX ||
        e->wh[f->wh].rec.state != MTR_WEBHOOK_ACTIVE)
        return MTR_DELIVERY_FAILED;
    if (o->http_status == 410) {
        *disable_reason = "gone";
        return MTR_DELIVERY_FAILED;
    }
    int failures = f->attempts + 1 - f->round_start; /* in this round, this one included */
    if (failures > dc->retries) {
        *disable_reason = "retries-exhausted";
        return MTR_DELIVERY_FAILED;
    }
    int64_t window = dc->retry_window_ms / 1000;
    mtr_time first = f->first_attempt_at ? f->first_attempt_at : now, end = first + window;
    *next_at = first + retry_offset(failures, dc->retries, window, f->id);
    if (*next_at <= now) { /* behind the schedule (a Retry-After, a restart) */
        if (now >= end) {  /* the window is over: no burst of late retries */
            *disable_reason = "retries-exhausted";
            return MTR_DELIVERY_FAILED;
        }
        /* the retries left, spread evenly over what is left of the window */
        *next_at = now + (end - now) / (dc->retries - failures + 1);
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

/* Writes the queued outcomes in one transaction. */
static void flush_outcomes(struct engine *e)
{
    clock_gettime(CLOCK_MONOTONIC, &e->last_flush);
    if (e->n_outcomes == 0)
        return;
    int rc = e->L.ops->begin(e->L.st);
    for (size_t i = 0; i < e->n_outcomes && rc == MTR_OK; i++) {
        struct outcome *x = &e->outcomes[i];
        struct mtr_attempt_row a = {.delivery_id = x->id,
                                    .n = x->n,
                                    .at = x->at,
                                    .http_status = x->http_status,
                                    .error = x->error,
                                    .latency_us = x->latency_us};
        rc = e->L.ops->record_attempt(e->L.st, &a, x->state, x->next_at);
    }
    if (rc == MTR_OK)
        rc = e->L.ops->commit(e->L.st);
    else
        e->L.ops->rollback(e->L.st);
    if (rc != MTR_OK)
        store_failed(e, "record attempts");
    else if (e->first_tick.tv_sec || e->first_tick.tv_nsec) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        e->stats->tick_to_last_record_s = (double)(now.tv_sec - e->first_tick.tv_sec) +
                                          (double)(now.tv_nsec - e->first_tick.tv_nsec) / 1e9;
    }
    for (size_t i = 0; i < e->n_outcomes; i++)
        free(e->outcomes[i].error);
    e->n_outcomes = 0;
}

static void queue_outcome(struct engine *e, const struct mtr_attempt_row *a, int state,
                          mtr_time next_at)
{
    if (e->n_outcomes == e->cap_outcomes) {
        size_t cap = e->cap_outcomes ? e->cap_outcomes * 2 : 1024;
        struct outcome *p = realloc(e->outcomes, cap * sizeof *p);
        if (!p) {
            flush_outcomes(e);
            if (e->n_outcomes == e->cap_outcomes) {
                store_failed(e, "out of memory");
                return;
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
}

/* Flushes when enough has queued, when 100 ms passed, or when nothing is in
 * flight any more (before the loop looks for its next timer). */
static void maybe_flush(struct engine *e)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - e->last_flush.tv_sec) * 1000 +
              (now.tv_nsec - e->last_flush.tv_nsec) / 1000000;
    if (e->n_outcomes >= 8192 || ms >= 250 || e->in_flight == 0)
        flush_outcomes(e);
}

/* What an attempt's outcome means: the attempt recorded, the next one
 * scheduled, or the webhook disabled. Engine thread. */
static void handle_outcome(struct engine *e, struct flight *f, const struct mtr_sink_outcome *o)
{
    mtr_time now = clock_now(e->clk), next_at;
    const char *disable_reason;
    int state = next_step(e, f, o, now, &next_at, &disable_reason);
    char error[600];
    if (o->status != MTR_OK && !o->error)
        snprintf(error, sizeof error, "HTTP %d", o->http_status);
    else
        snprintf(error, sizeof error, "%s", o->error ? o->error : "");
    struct mtr_attempt_row a = {
        .delivery_id = f->id,
        .n = f->attempts + 1,
        .at = now,
        .http_status = o->http_status,
        .error = o->status == MTR_OK ? NULL : error,
        .latency_us = o->latency_us,
    };
    queue_outcome(e, &a, state, next_at);
    e->stats->attempts++;
    if (a.n - f->round_start > 1)
        e->stats->retries++;
    if (state == MTR_DELIVERY_DELIVERED)
        e->stats->delivered++;
    if (state != MTR_DELIVERY_PENDING && f->earlier)
        e->stats->earlier_settled++;
    if (state == MTR_DELIVERY_FAILED) {
        e->stats->failed++;
        log_msg(MTR_LOG_WARN, f->wh == SIZE_MAX ? "?" : e->wh[f->wh].cfg->name,
                "delivery %s to sink '%s' failed after %d attempt(s): %s", f->id,
                sink_name(e, f->sink), a.n, error);
    }
    if (disable_reason) {
        flush_outcomes(e); /* this attempt first, then the webhook */
        disable_webhook(e, f->wh, disable_reason, now);
    }
    e->in_flight--;
    flight_free(f);
}

/* Makes a flight ready to hand to the courier, and counts it in flight. */
static void prepare_launch(struct engine *e, struct flight *f)
{
    const struct webhook_cfg *w = e->wh[f->wh].cfg;
    f->ci.sink = f->sink;
    f->ci.d = (struct mtr_delivery){
        .delivery_id = f->id,
        .webhook_id = e->wh[f->wh].rec.id,
        .target = w->callback_uri,
        .body = f->body,
        .body_len = f->body_len,
        .headers = f->ph.h,
        .n_headers = 4,
        .attempt = f->attempts + 1,
        .now = clock_now(e->clk),
        .cookie = &f->ci,
    };
    e->in_flight++;
}

/* Hands a flight to the courier. */
static void launch(struct engine *e, struct flight *f)
{
    prepare_launch(e, f);
    courier_send(&e->courier, &f->ci);
}

/* Handles every outcome the courier has, waiting up to wait_ms for one. */
static void collect_outcomes(struct engine *e, int wait_ms)
{
    if (e->in_flight == 0)
        return;
    struct courier_item *list = courier_collect(&e->courier, wait_ms);
    while (list) {
        struct flight *f = (struct flight *)list; /* ci is the first member */
        list = list->next;
        handle_outcome(e, f, &f->ci.o);
    }
}

struct dispatch {
    struct engine *e;
    struct flight *list;
};

static int on_delivery(void *arg, const struct mtr_delivery_row *row)
{
    struct dispatch *ds = arg;
    struct engine *e = ds->e;
    struct flight *f = calloc(1, sizeof *f);
    if (!f || !(f->body = malloc(row->body_len ? row->body_len : 1))) {
        free(f);
        return 1;
    }
    f->e = e;
    snprintf(f->id, sizeof f->id, "%s", row->id);
    memcpy(f->body, row->body, row->body_len);
    f->body_len = row->body_len;
    f->wh = find_webhook(e, row->webhook_id);
    f->sink = find_sink(e, row->sink);
    f->kind = row->kind;
    f->attempts = row->attempts;
    f->round_start = row->round_start;
    f->first_attempt_at = row->first_attempt_at;
    f->earlier = row->created_at < e->started_at;
    f->next = ds->list;
    ds->list = f;
    return 0;
}

static int dispatch(struct engine *e, mtr_time now)
{
    if (e->in_flight >= MAX_IN_FLIGHT)
        return 0;
    size_t room = MAX_IN_FLIGHT - e->in_flight;
    struct dispatch ds = {.e = e};
    if (e->L.ops->claim_deliveries(e->L.st, e->owner, now, now + LEASE_SECONDS,
                                   room < DELIVERY_BATCH ? room : DELIVERY_BATCH, on_delivery,
                                   &ds) != MTR_OK)
        return store_failed(e, "claim deliveries");
    int n = 0;
    while (ds.list) {
        struct flight *f = ds.list;
        ds.list = f->next;
        f->next = NULL;
        n++;
        if (f->wh != SIZE_MAX && e->wh[f->wh].rec.state != MTR_WEBHOOK_ACTIVE &&
            f->kind == MTR_DELIVERY_SCHEDULED) { /* never send for a disabled webhook */
            uint64_t failed;
            if (e->L.ops->fail_pending(e->L.st, e->wh[f->wh].rec.id, "webhook disabled", now,
                                       &failed) != MTR_OK)
                store_failed(e, "fail pending");
            flight_free(f);
            continue;
        }
        if (f->wh == SIZE_MAX || f->sink == SIZE_MAX) {
            e->in_flight++;
            struct mtr_sink_outcome o = {.status = MTR_ERR,
                                         .retry_after_s = -1,
                                         .error =
                                             "its webhook or sink is no longer in the pipeline",
                                         .cookie = f};
            handle_outcome(e, f, &o);
            continue;
        }
        payload_headers(&f->ph, &e->signer, f->body, f->body_len, f->id);
        launch(e, f);
    }
    return n;
}

/* ---- the loop ---------------------------------------------------------------------------- */

struct key_probe {
    struct engine *e;
    int refused;
    char vehicle[129];
};

static int probe_vehicle(void *arg, const struct mtr_vehicle_row *v)
{
    struct key_probe *p = arg;
    struct fetch_item it;
    memset(&it, 0, sizeof it);
    open_tokens(p->e, &it, v);
    p->refused = it.key_refused;
    snprintf(p->vehicle, sizeof p->vehicle, "%s", v->id);
    free(it.access);
    free(it.refresh);
    return 1;
}

/* A key that does not open the stored credentials stops the daemon at start,
 * before anything is fetched or sent (a store without vehicle_sample finds
 * out at the first such vehicle's job instead: refuse_claim). */
static int check_key(struct engine *e)
{
    struct key_probe p = {.e = e};
    if (!e->L.ops->vehicle_sample)
        return 0;
    if (e->L.ops->vehicle_sample(e->L.st, probe_vehicle, &p) != MTR_OK)
        return diag_set(e->d, "store: %s", ledger_error(&e->L));
    if (p.refused)
        return diag_set(e->d,
                        "vehicle %s: its stored credentials do not open with %s; start metronome "
                        "with the key they were sealed with ($METRONOME_SECRET_KEY or "
                        "secrets.key_file)",
                        p.vehicle, e->vault.has_key ? "this secret key" : "no secret key");
    return 0;
}

static int engine_init(struct engine *e, struct config *c, struct clock *clk,
                       struct engine_stats *stats, struct diag *d)
{
    memset(e, 0, sizeof *e);
    e->c = c;
    e->clk = clk;
    e->stats = stats;
    e->d = d;
    heap_init(&e->ticks);
    make_owner(e->owner, sizeof e->owner);
    e->started_at = clock_now(clk);
    if (ledger_open(&e->L, c, d) != 0 || start_plugins(c, d) != 0 || vault_load(&e->vault, c, d))
        return -1;
    if (check_key(e) != 0)
        return -1;
    if (signer_init(&e->signer, c->management_token, strlen(c->management_token)) != 0)
        return diag_set(d, "cannot set up signing (out of memory)");
    if (courier_start(&e->courier, c) != 0)
        return diag_set(d, "cannot start the delivery thread");
    e->n_wh = c->n_webhooks;
    e->wh = calloc(e->n_wh ? e->n_wh : 1, sizeof *e->wh);
    struct webhook_rec *recs = calloc(e->n_wh ? e->n_wh : 1, sizeof *recs);
    if (!e->wh || !recs) {
        free(recs);
        return diag_set(d, "out of memory");
    }
    if (ledger_sync_webhooks(&e->L, c, clock_now(clk), recs, d) != 0) {
        free(recs);
        return -1;
    }
    for (size_t i = 0; i < e->n_wh; i++) {
        e->wh[i].cfg = &c->webhooks[i];
        e->wh[i].rec = recs[i];
    }
    free(recs);
    return 0;
}

static int engine_schedule(struct engine *e)
{
    mtr_time now = clock_now(e->clk);
    for (size_t i = 0; i < e->n_wh; i++) {
        if (e->wh[i].rec.state == MTR_WEBHOOK_ACTIVE && catch_up(e, i, now) != 0)
            return -1;
        if (schedule_next(e, i, now) != 0)
            return diag_set(e->d, "out of memory");
    }
    return 0;
}

static void engine_free(struct engine *e)
{
    vault_wipe(&e->vault);
    flush_outcomes(e);
    free(e->outcomes);
    e->ready = NULL; /* launched or freed by launch_ready */
    /* waits for what is in the sinks; outcomes nobody recorded are sent again
     * when their lease ends */
    for (struct courier_item *it = courier_stop(&e->courier); it;) {
        struct flight *f = (struct flight *)it;
        it = it->next;
        flight_free(f);
    }
    heap_free(&e->ticks);
    free(e->wh);
    signer_free(&e->signer);
}

/* Retention (SPEC 7): at most once a minute of the clock, in batches small
 * enough never to hold up delivery for long. */
static void prune(struct engine *e, mtr_time now)
{
    const struct retention_cfg *r = &e->c->retention;
    if (!e->L.ops->prune || now - e->last_prune < 60)
        return;
    e->last_prune = now;
    uint64_t total = 0, n;
    for (int round = 0; round < 10; round++) {
        if (e->L.ops->prune(e->L.st, now - r->delivered_ms / 1000, now - r->failed_ms / 1000,
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
    mtr_time at = 0, due;
    int found;
    const struct heap_item *top = heap_peek(&e->ticks);
    if (top)
        at = top->at;
    if (e->L.ops->next_due(e->L.st, &due, &found) != MTR_OK) {
        store_failed(e, "next due");
        return 0;
    }
    if (found && (at == 0 || due < at))
        at = due;
    return at;
}

static void sleep_until(struct engine *e, mtr_time at, volatile sig_atomic_t *stop)
{
    /* wake at least every second to notice a stop request */
    mtr_time now = clock_now(e->clk);
    int ms = at > now ? (int)((at - now) * 1000 > 1000 ? 1000 : (at - now) * 1000) : 0;
    if (ms > 0 && !(stop && *stop)) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int engine_run(struct config *c, struct clock *clk, const struct engine_options *o,
               struct engine_stats *stats, struct diag *d)
{
    struct engine e;
    memset(stats, 0, sizeof *stats);
    int rc = engine_init(&e, c, clk, stats, d) == 0 ? engine_schedule(&e) : -1;
    int is_virtual = clk->mode == CLOCK_VIRTUAL;
    while (rc == 0 && !e.failed) {
        int stopping = o->stop && *o->stop;
        mtr_time now = clock_now(clk);
        if (stopping || (o->until && now >= o->until && !is_virtual)) {
            if (e.in_flight == 0)
                break;
            collect_outcomes(&e, 100); /* finish what is in flight; sinks time out */
            maybe_flush(&e);
            continue;
        }
        int work = 0;
        if (fire_ticks(&e, now) < 0 || (work = process_jobs(&e, now)) < 0)
            break;
        int sent = dispatch(&e, now);
        if (sent < 0)
            break;
        collect_outcomes(&e, work || sent ? 0 : 20);
        maybe_flush(&e);
        if (work || sent || e.in_flight)
            continue; /* more may be due right now */
        prune(&e, now);
        mtr_time next = next_wakeup(&e);
        if (e.failed)
            break;
        if (next && next <= now)
            next = now + 1; /* due but held by another node's lease: look again later */
        if (is_virtual) {
            if (next == 0 || next > o->until) {
                clock_advance(clk, o->until);
                break;
            }
            clock_advance(clk, next);
        } else {
            sleep_until(&e, next ? next : now + 1, o->stop);
        }
    }
    engine_free(&e);
    return e.failed || rc != 0 ? -1 : 0;
}

/* ---- one-shot sends: verify and test ------------------------------------------------------ */

struct oneshot {
    int done;
    struct mtr_sink_outcome o;
    char *response;
    size_t response_len;
    char error[512];
};

/* core is the one send in flight (send_once hands it to submit): an outcome
 * whose cookie is anything else is the sink's mistake. */
static void on_oneshot(void *core, const struct mtr_sink_outcome *o)
{
    struct oneshot *s = core;
    if (!o || o->cookie != s || s->done) {
        log_msg(MTR_LOG_ERROR, "sink",
                "the sink handed back an outcome for a delivery it was not given (cookie %p): "
                "ignored",
                o ? o->cookie : NULL);
        return;
    }
    s->done = 1;
    s->o = *o;
    s->o.response = NULL;
    snprintf(s->error, sizeof s->error, "%s", o->error ? o->error : "");
    size_t len = o->response_len < 65536 ? o->response_len : 65536; /* a sink's word: bounded */
    if (o->response && (s->response = malloc(len + 1)) != NULL) {
        memcpy(s->response, o->response, len);
        s->response[len] = '\0';
        s->response_len = len;
    }
}

/* Sends body to one sink and waits for the outcome. */
static int send_once(struct config *c, size_t sink, const char *webhook_id, const char *target,
                     const char *id, const char *body, size_t len, mtr_time now, struct oneshot *s)
{
    struct payload_headers ph;
    struct signer signer;
    const struct mtr_sink_ops *ops = c->sinks[sink].inst->ctx.pf->desc.sink;
    void *st = c->sinks[sink].inst->state;
    memset(s, 0, sizeof *s);
    if (signer_init(&signer, c->management_token, strlen(c->management_token)) != 0) {
        snprintf(s->error, sizeof s->error, "cannot set up signing (out of memory)");
        return -1;
    }
    payload_headers(&ph, &signer, body, len, id);
    signer_free(&signer);
    struct mtr_delivery d = {.delivery_id = id,
                             .webhook_id = webhook_id,
                             .target = target,
                             .body = body,
                             .body_len = len,
                             .headers = ph.h,
                             .n_headers = 4,
                             .attempt = 1,
                             .now = now,
                             .cookie = s};
    s->o.status = MTR_ERR; /* until an outcome says otherwise */
    s->o.retry_after_s = -1;
    if (ops->submit(st, &d, on_oneshot, s) != MTR_OK) {
        snprintf(s->error, sizeof s->error, "the sink refused it: %.480s",
                 c->sinks[sink].inst->ctx.error[0] ? c->sinks[sink].inst->ctx.error : "no reason");
        return -1;
    }
    while (!s->done && ops->poll && ops->poll(st, 100) > 0)
        ;
    if (!s->done) {
        snprintf(s->error, sizeof s->error, "the sink finished without reporting an outcome");
        return -1;
    }
    return 0;
}

static int verify_response(const struct oneshot *s, const char *expected, char *why, size_t n)
{
    if (s->o.status != MTR_OK) {
        if (s->error[0])
            snprintf(why, n, "%s", s->error);
        else
            snprintf(why, n, "answered HTTP %d, not 2xx", s->o.http_status);
        return -1;
    }
    return payload_check_challenge(s->response, s->response_len, expected, why, n);
}

int engine_verify(struct config *c, struct clock *clk, const struct webhook_cfg *w, struct diag *d)
{
    struct ledger L;
    struct webhook_rec rec;
    int found, verified = 0;
    if (ledger_open(&L, c, d) != 0 || start_plugins(c, d) != 0)
        return -1;
    if (ledger_get_webhook(&L, w->name, &rec, &found) != 0 || !found)
        return diag_set(d, "store: %s", ledger_error(&L));
    char challenge[UUID_LEN + 1], expected[HEX_SHA256_LEN + 1], id[UUID_LEN + 1];
    uuid_random(challenge);
    uuid_random(id);
    hmac_sha256_hex(c->management_token, strlen(c->management_token), challenge, strlen(challenge),
                    expected);
    size_t len;
    char *body = payload_verify(rec.id, challenge, &len);
    if (!body)
        return diag_set(d, "out of memory");
    for (size_t i = 0; i < w->n_sinks; i++) {
        size_t sink = w->sinks[i];
        if (!(c->sinks[sink].inst->ctx.pf->desc.sink->flags & MTR_SINK_CALLBACK))
            continue;
        struct oneshot s;
        char why[600];
        send_once(c, sink, rec.id, w->callback_uri, id, body, len, clock_now(clk), &s);
        int rc = verify_response(&s, expected, why, sizeof why);
        free(s.response);
        if (rc != 0) {
            free(body);
            return diag_set(d, "webhook '%s' not verified: %s (sink '%s', %s)", w->name, why,
                            c->sinks[sink].name, w->callback_uri);
        }
        verified++;
    }
    free(body);
    if (!verified)
        return diag_set(d, "webhook '%s' has no sink that posts to its callback URI", w->name);
    if (L.ops->webhook_set_state(L.st, rec.id, MTR_WEBHOOK_ACTIVE, NULL, clock_now(clk)) != MTR_OK)
        return diag_set(d, "store: %s", ledger_error(&L));
    return 0;
}

struct test_fetch {
    int done;
    char *data;
    size_t len;
};

static void on_test_fetch(void *core, const struct mtr_fetch_result *r)
{
    struct test_fetch *t = r->cookie;
    (void)core;
    t->done = 1;
    if (r->data_json && (t->data = malloc(r->data_len + 1)) != NULL) {
        memcpy(t->data, r->data_json, r->data_len);
        t->data[r->data_len] = '\0';
        t->len = r->data_len;
    }
}

/* The test payload: one vehicle with data from the webhook's source. */
static char *test_body(struct config *c, const struct webhook_cfg *w, const char *webhook_id,
                       mtr_time now, size_t *len)
{
    static const char vehicle[] = "00000000-0000-4000-a000-000000000000";
    const struct mtr_source_ops *ops = c->sources[w->source].inst->ctx.pf->desc.source;
    void *st = c->sources[w->source].inst->state;
    struct mtr_vehicle v = {.id = vehicle};
    struct test_fetch t = {0};
    struct mtr_fetch_request req = {.vehicle = &v,
                                    .endpoints = (const char *const *)w->endpoints,
                                    .n_endpoints = w->n_endpoints,
                                    .units = w->units,
                                    .tick = now,
                                    .now = now,
                                    .cookie = &t};
    char request_id[UUID_LEN + 1], err[256];
    uuid_random(request_id);
    if (ops->submit(st, &req, 1, on_test_fetch, NULL) == MTR_OK)
        while (!t.done && ops->poll && ops->poll(st, 100) >= 0)
            ;
    size_t elen;
    char *entry =
        t.data ? payload_vehicle(vehicle, request_id, t.data, t.len, &elen, err, sizeof err) : NULL;
    free(t.data);
    if (!entry) {
        size_t dlen;
        char *data =
            payload_error_data((const char *const *)w->endpoints, w->n_endpoints, 502, "UPSTREAM",
                               "UNKNOWN_ISSUE", "no test data from the source", request_id, &dlen);
        entry =
            data ? payload_vehicle(vehicle, request_id, data, dlen, &elen, err, sizeof err) : NULL;
        free(data);
        if (!entry)
            return NULL;
    }
    char *body = payload_scheduled(webhook_id, "test", &entry, &elen, 1, len);
    free(entry);
    return body;
}

int engine_test(struct config *c, struct clock *clk, const struct webhook_cfg *w, char *report,
                size_t report_len, struct diag *d)
{
    struct ledger L;
    struct webhook_rec rec;
    int found, failures = 0;
    mtr_time now = clock_now(clk);
    if (ledger_open(&L, c, d) != 0 || start_plugins(c, d) != 0)
        return -1;
    if (ledger_get_webhook(&L, w->name, &rec, &found) != 0 || !found)
        return diag_set(d, "store: %s", ledger_error(&L));
    size_t len, used = 0;
    char *body = test_body(c, w, rec.id, now, &len);
    if (!body)
        return diag_set(d, "out of memory");
    report[0] = '\0';
    for (size_t i = 0; i < w->n_sinks; i++) {
        size_t sink = w->sinks[i];
        char id[UUID_LEN + 1]; /* random: two tests in one second are two deliveries */
        uuid_random(id);
        struct mtr_delivery_row row = {.id = id,
                                       .webhook_id = rec.id,
                                       .sink = c->sinks[sink].name,
                                       .tick = now,
                                       .kind = MTR_DELIVERY_TEST,
                                       .state = MTR_DELIVERY_PENDING,
                                       .created_at = now,
                                       /* sent here, never claimed by a running daemon */
                                       .next_attempt_at = now + 10 * 366 * 86400LL,
                                       .body = body,
                                       .body_len = len,
                                       .vehicles = 1,
                                       .updated_at = now};
        struct oneshot s;
        if (L.ops->deliveries_insert(L.st, &row, 1, NULL, 0, NULL) != MTR_OK) {
            free(body);
            return diag_set(d, "store: %s", ledger_error(&L));
        }
        int ok = send_once(c, sink, rec.id, w->callback_uri, id, body, len, now, &s) == 0 &&
                 s.o.status == MTR_OK;
        struct mtr_attempt_row a = {.delivery_id = id,
                                    .n = 1,
                                    .at = now,
                                    .http_status = s.o.http_status,
                                    .error = ok ? NULL : (s.error[0] ? s.error : "not 2xx"),
                                    .latency_us = s.o.latency_us};
        L.ops->record_attempt(L.st, &a, ok ? MTR_DELIVERY_DELIVERED : MTR_DELIVERY_FAILED, 0);
        free(s.response);
        failures += !ok;
        if (used < report_len)
            used += (size_t)snprintf(report + used, report_len - used, "%s: %s (delivery %s%s%s)\n",
                                     c->sinks[sink].name, ok ? "delivered" : "failed", id,
                                     ok ? "" : ": ", ok ? "" : (s.error[0] ? s.error : "not 2xx"));
    }
    free(body);
    return failures ? diag_set(d, "the test payload was not delivered to every sink") : 0;
}
