/* Jobs: claim due jobs -> fetch -> payloads + deliveries in the ledger, in
 * one transaction per batch. A fetch that fails for a passing reason is
 * retried in the next 15-minute slot (or when the source said); what still
 * fails when the next tick comes is delivered with the error in its data
 * element. Sources are called on this thread; the sinks keep sending on the
 * courier's meanwhile. */
#include "fetch.h"
#include "events.h"
#include "log.h"
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void count_fetch_error(struct engine *e, enum fetch_error_code code)
{
    metrics_lock(&e->metrics);
    e->metrics.fetch_errors[code]++;
    metrics_unlock(&e->metrics);
}

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
    int marked;      /* the ledger already says it needs re-authentication */
    int key_refused; /* its tokens do not open with the vault's key */
    int refreshed;   /* the source refreshed the tokens: store them, fetch again */
    char *new_access, *new_refresh;
    mtr_time new_expires;
    int64_t retry_after_s;
    char *data; /* as the source answered */
    size_t data_len;
    char *error;
};

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
    int fenced;
    while (bad < n && !items[bad].key_refused)
        bad++;
    if (bad == n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ledger_job_retry_fenced(&e->L, e->owner, &items[i].key, now, NULL, &fenced) != MTR_OK)
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
    it->wh = webhooks_by_id(&cl->e->ws, j->key.webhook_id);
    if (it->wh != SIZE_MAX && !cl->e->ws.v[it->wh].cfg)
        it->wh = SIZE_MAX; /* gone: its jobs are recorded missed */
    size_t fallback = it->wh == SIZE_MAX ? 0 : cl->e->ws.v[it->wh].cfg->source;
    it->source = find_source(cl->e, j->vehicle.source, fallback);
    it->access_expires = j->vehicle.access_expires;
    it->needs_reauth = it->marked = j->vehicle.needs_reauth;
    it->retry_after_s = -1;
    open_tokens(cl->e, it, &j->vehicle);
    cl->n++;
    return 0;
}

/* The requests a source is answering now: a result's cookie must be one. */
struct fetching {
    struct fetch_item *items;
    size_t n;
    const char *source;
};

/* The item a source's result is for, or NULL when its cookie is not one of
 * the requests in flight (a source bug: logged, the result dropped). */
static struct fetch_item *fetched_item(struct fetching *fg, const struct mtr_fetch_result *r)
{
    const struct fetch_item *lo = fg->items, *hi = fg->items + fg->n;
    const char *p = r ? (const char *)r->cookie : NULL;
    if (p && fg->items && p >= (const char *)lo && p < (const char *)hi &&
        (size_t)(p - (const char *)lo) % sizeof *lo == 0) {
        struct fetch_item *it = (struct fetch_item *)(uintptr_t)p;
        if (!it->done)
            return it;
    }
    log_msg(MTR_LOG_ERROR, fg->source ? fg->source : "source",
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
        int ok = a && r && ledger_vehicle_upsert(&e->L, &v) == MTR_OK;
        free(a);
        free(r);
        it->refreshed = 0;
        if (!ok) { /* not stored: not used */
            it->status = MTR_EAGAIN;
            log_msg(MTR_LOG_ERROR, e->ws.v[it->wh].name,
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

/* A vehicle whose owner must connect it again: marked so, with the event
 * that says it (vehicle.reauthentication_required), in one transaction. */
static int mark_reauth(struct engine *e, const struct fetch_item *it)
{
    mtr_time now = clock_now(e->clk);
    struct mtr_vehicle_row v = {
        .id = it->vehicle_id, .source = e->c->sources[it->source].name, .needs_reauth = 1};
    struct events ev;
    if (events_make(e->c, "vehicle.reauthentication_required", it->vehicle_id, now,
                    json_pack("{s:s,s:s,s:s}", "vehicleId", it->vehicle_id, "webhookId",
                              e->ws.v[it->wh].rec.id, "webhookName", e->ws.v[it->wh].name),
                    &ev) != 0)
        return -1;
    int rc = ledger_begin(&e->L);
    if (rc == MTR_OK)
        rc = ledger_vehicle_upsert(&e->L, &v);
    if (rc == MTR_OK && ev.n)
        rc = ledger_deliveries_insert(&e->L, ev.rows, ev.n, NULL, 0, NULL);
    if (rc == MTR_OK)
        rc = ledger_commit(&e->L);
    else
        ledger_rollback(&e->L);
    events_free(&ev);
    return rc == MTR_OK ? 0 : -1;
}

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
        if (items[i].needs_reauth && !items[i].marked && items[i].wh != SIZE_MAX &&
            mark_reauth(e, &items[i]) != 0)
            store_failed(e, "mark vehicle");
}

static void fetch_round(struct engine *e, struct fetch_item *items, size_t n)
{
    struct fetching fg = {.items = items, .n = n};
    for (size_t s = 0; s < e->c->n_sources; s++) {
        fg.source = e->c->sources[s].name;
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
            const struct webhook_cfg *w = e->ws.v[it->wh].cfg;
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
        if (k && ops->submit(e->c->sources[s].inst->state, reqs, k, on_fetched, &fg) != MTR_OK)
            for (size_t i = 0; i < k; i++) /* refused: treat as a transient failure */
                on_fetched(&fg, &(struct mtr_fetch_result){.status = MTR_EAGAIN,
                                                           .error = "the source refused the fetch",
                                                           .cookie = reqs[i].cookie});
        while (k && ops->poll && ops->poll(e->c->sources[s].inst->state, 50) > 0)
            ; /* the courier keeps sending meanwhile; outcomes wait in its outbox */
        for (size_t i = 0; i < n; i++) /* a request the source never answered */
            if (!items[i].done && items[i].source == s && items[i].wh != SIZE_MAX)
                on_fetched(&fg, &(struct mtr_fetch_result){
                                    .status = MTR_EAGAIN,
                                    .error = "the source finished without answering this vehicle",
                                    .retry_after_s = -1,
                                    .cookie = &items[i]});
        free(reqs);
        free(veh);
    }
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
    const struct webhook_cfg *w = e->ws.v[it->wh].cfg;
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
        log_msg(MTR_LOG_WARN, e->ws.v[it->wh].name, "vehicle %s: source '%s' answered %s",
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
    int has_next = webhook_next_tick(e->ws.v[it->wh].cfg, it->key.tick, &next_tick, &ignored) == 0;
    if (has_next && slot < next_tick) {
        int fenced; /* another node holds the job now: its retry is that node's */
        if (ledger_job_retry_fenced(&e->L, e->owner, &it->key, slot, it->error, &fenced) != MTR_OK)
            store_failed(e, "reschedule job");
        e->stats.fetch_retries++;
        count_fetch_error(e, it->malformed ? FETCH_MALFORMED : FETCH_TRANSIENT);
        return NULL;
    }
    e->stats.fetch_errors_delivered++;
    count_fetch_error(e, it->malformed ? FETCH_MALFORMED : FETCH_FAILED);
    if (it->data && it->status != MTR_ERR && !it->malformed) /* the source's error elements */
        entry = payload_vehicle(it->vehicle_id, request_id, it->data, it->data_len, len, err,
                                sizeof err);
    return entry ? entry : error_entry(e, it, request_id, len);
}

/* Whether w's deliveries carry a subject (its supersede or ordered need one). */
static int wants_subject(const struct webhook_cfg *w)
{
    return w->supersede || w->ordered;
}

/* The subject of a payload (store.h): the same for the same vehicles, in any
 * order - a sum of each vehicle's 64-bit hash. */
static int64_t subject_of(const struct entry *ent, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        const char *v = ent[i].item->vehicle_id;
        sum += (uint64_t)stable_hash32(v, "subject") << 32 | stable_hash32(v, "subject-low");
    }
    return (int64_t)sum;
}

/* Builds and stores the deliveries of n entries (one webhook, tick, source)
 * for one sink, halving the group until each payload fits the sink. */
static int store_payloads(struct engine *e, struct entry *ent, size_t n, size_t sink,
                          struct mtr_delivery_row *rows, size_t *n_rows, char **bodies,
                          int64_t *subjects)
{
    const struct fetch_item *first = ent[0].item;
    const struct webhook_cfg *w = e->ws.v[first->wh].cfg;
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
    char *body = payload_scheduled(e->ws.v[first->wh].rec.id, mode, texts, lens, n, &len);
    free(texts);
    free(lens);
    if (!body)
        return -1;
    uint64_t max = sink_ops(e, sink)->max_body_bytes
                       ? sink_ops(e, sink)->max_body_bytes(sink_state(e, sink))
                       : 0;
    if (max && len > max && n > 1) { /* split by vehicles, never truncate */
        free(body);
        return store_payloads(e, ent, n / 2, sink, rows, n_rows, bodies, subjects) ||
               store_payloads(e, ent + n / 2, n - n / 2, sink, rows, n_rows, bodies, subjects);
    }
    char tick_s[24];
    snprintf(tick_s, sizeof tick_s, "%lld", (long long)first->key.tick);
    const char **parts = malloc((n + 3) * sizeof *parts);
    if (!parts) {
        free(body);
        return -1;
    }
    parts[0] = e->ws.v[first->wh].rec.id;
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
        .webhook_id = e->ws.v[first->wh].rec.id,
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
    subjects[*n_rows] = wants_subject(w) ? subject_of(ent, n) : 0; /* else never stored */
    (*n_rows)++;
    e->stats.deliveries++;
    return 0;
}

/* A delivery just inserted under this node's lease becomes a flight that is
 * launched once the transaction holding it commits. Takes the row's body. */
static int make_ready(struct engine *e, const struct mtr_delivery_row *row, size_t wh)
{
    struct flight *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->id, sizeof f->id, "%s", row->id);
    f->body = (char *)row->body;
    f->body_len = row->body_len;
    f->wh = wh;
    f->sink = find_sink(e, row->sink);
    f->kind = row->kind;
    f->created_at = row->created_at;
    f->next = e->ready;
    e->ready = f;
    return 0;
}

/* A claim's deliveries and the jobs they settle, gathered so that they are
 * stored in one call (a store with a server behind it writes them in one
 * round trip). */
struct gathered {
    struct mtr_delivery_row *rows;
    char **bodies;     /* two per row, owned: its body and its id */
    size_t *row_wh;    /* the webhook of each row */
    int64_t *subjects; /* of each row (store.h) */
    size_t n_rows, cap_rows;
    struct mtr_job_key *keys;
    size_t n_keys, cap_keys;
};

static size_t doubled_to(size_t cap, size_t need)
{
    cap = cap ? cap : 64;
    while (cap < need)
        cap *= 2;
    return cap;
}

/* Makes room for `rows` more rows and `keys` more job keys. */
static int gathered_reserve(struct gathered *g, size_t rows, size_t keys)
{
    if (g->n_rows + rows > g->cap_rows) {
        size_t cap = doubled_to(g->cap_rows, g->n_rows + rows);
        void *r = realloc(g->rows, cap * sizeof *g->rows);
        if (r)
            g->rows = r;
        void *b = r ? realloc(g->bodies, 2 * cap * sizeof *g->bodies) : NULL;
        if (b)
            g->bodies = b;
        void *w = b ? realloc(g->row_wh, cap * sizeof *g->row_wh) : NULL;
        if (w)
            g->row_wh = w;
        void *sj = w ? realloc(g->subjects, cap * sizeof *g->subjects) : NULL;
        if (!sj)
            return -1;
        g->subjects = sj;
        g->cap_rows = cap;
    }
    if (g->n_keys + keys > g->cap_keys) {
        size_t cap = doubled_to(g->cap_keys, g->n_keys + keys);
        void *k = realloc(g->keys, cap * sizeof *g->keys);
        if (!k)
            return -1;
        g->keys = k;
        g->cap_keys = cap;
    }
    return 0;
}

static void gathered_free(struct gathered *g)
{
    for (size_t i = 0; i < 2 * g->n_rows; i++)
        free(g->bodies[i]);
    free(g->rows);
    free(g->bodies);
    free(g->row_wh);
    free(g->subjects);
    free(g->keys);
}

/* Adds one group's deliveries (for every sink of the webhook) and its jobs. */
static int gather_group(struct engine *e, struct entry *ent, size_t n, struct gathered *g)
{
    size_t wh = ent[0].item->wh;
    const struct webhook_cfg *w = e->ws.v[wh].cfg;
    /* halving never makes more than 2n parts per sink */
    if (gathered_reserve(g, 2 * n * w->n_sinks + 2, n) != 0)
        return -1;
    size_t first = g->n_rows;
    for (size_t s = 0; s < w->n_sinks; s++)
        if (store_payloads(e, ent, n, w->sinks[s], g->rows, &g->n_rows, g->bodies, g->subjects) !=
            0)
            return -1;
    for (size_t i = first; i < g->n_rows; i++)
        g->row_wh[i] = wh;
    for (size_t i = 0; i < n; i++)
        g->keys[g->n_keys++] = ent[i].item->key;
    return 0;
}

/* The subjects of the rows whose webhook supersedes or keeps order, in the
 * transaction that inserted them. */
static int set_subjects(struct engine *e, struct gathered *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_rows; i++)
        n += wants_subject(e->ws.v[g->row_wh[i]].cfg);
    if (n == 0)
        return 0; /* the common case: nothing to allocate or write */
    const char **ids = malloc(n * sizeof *ids);
    int64_t *subjects = malloc(n * sizeof *subjects);
    for (size_t i = 0, k = 0; ids && subjects && i < g->n_rows; i++)
        if (wants_subject(e->ws.v[g->row_wh[i]].cfg)) {
            ids[k] = g->rows[i].id;
            subjects[k++] = g->subjects[i];
        }
    int rc = !ids || !subjects ? store_failed(e, "out of memory")
             : ledger_set_subjects(&e->L, ids, subjects, n) != MTR_OK
                 ? store_failed(e, "set deliveries' subjects")
                 : 0;
    free(ids);
    free(subjects);
    return rc;
}

/* Stores what was gathered and marks its jobs sent, in one call; the new
 * pending deliveries become flights. */
static int store_gathered(struct engine *e, struct gathered *g)
{
    if (g->n_rows == 0 && g->n_keys == 0)
        return 0;
    int *inserted = calloc(g->n_rows ? g->n_rows : 1, sizeof *inserted);
    if (!inserted || ledger_deliveries_insert(&e->L, g->rows, g->n_rows, g->keys, g->n_keys,
                                              inserted) != MTR_OK) {
        free(inserted);
        return store_failed(e, "store deliveries");
    }
    if (set_subjects(e, g) != 0) {
        free(inserted);
        return -1;
    }
    for (size_t i = 0; i < g->n_rows; i++)
        if (inserted[i] && g->rows[i].state == MTR_DELIVERY_PENDING &&
            make_ready(e, &g->rows[i], g->row_wh[i]) == 0)
            g->bodies[2 * i] = NULL; /* the flight owns the body now */
    free(inserted);
    return 0;
}

static int same_group(const struct fetch_item *a, const struct fetch_item *b)
{
    return a->wh == b->wh && a->key.tick == b->key.tick && a->source == b->source;
}

/* Groups final entries by (webhook, tick, source) and stores them in chunks
 * of the webhook's vehicles_per_payload. */
static int store_entries(struct engine *e, struct entry *ent, size_t n)
{
    struct gathered g = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!ent[i].text)
            continue;
        struct entry *group = malloc((n - i) * sizeof *group);
        size_t m = 0;
        if (!group) {
            rc = -1;
            break;
        }
        for (size_t j = i; j < n; j++)
            if (ent[j].text && same_group(ent[i].item, ent[j].item)) {
                group[m++] = ent[j];
                if (j != i)
                    ent[j].text = NULL; /* taken; freed through group */
            }
        size_t per = (size_t)e->ws.v[ent[i].item->wh].cfg->vehicles_per_payload;
        for (size_t k = 0; k < m && rc == 0; k += per)
            rc = gather_group(e, group + k, m - k < per ? m - k : per, &g);
        for (size_t k = 1; k < m; k++)
            free(group[k].text);
        free(group);
    }
    if (rc == 0)
        rc = store_gathered(e, &g);
    gathered_free(&g);
    return rc;
}

/* The data of a vehicle whose owner must connect it again. */
static void reauth_data(struct engine *e, struct fetch_item *it)
{
    char request_id[UUID_LEN + 1];
    uuid_random(request_id);
    const struct webhook_cfg *w = e->ws.v[it->wh].cfg;
    it->data = payload_error_data((const char *const *)w->endpoints, w->n_endpoints, 401,
                                  "AUTHENTICATION", "REAUTHENTICATE",
                                  "The vehicle needs re-authentication: its owner must connect it "
                                  "again through Smartcar Connect.",
                                  request_id, &it->data_len);
    it->done = 1;
    it->status = MTR_OK;
    count_fetch_error(e, FETCH_REAUTH);
}

static void drop_ready(struct engine *e)
{
    while (e->ready) {
        struct flight *f = e->ready;
        e->ready = f->next;
        flight_free(f);
    }
}

/* Whether every source answers within submit() (no poll): then a batch's
 * claim, fetches and stored payloads can be one transaction. */
static int sources_answer_at_once(const struct engine *e)
{
    for (size_t s = 0; s < e->c->n_sources; s++)
        if (source_ops(e, s)->poll)
            return 0;
    return 1;
}

/* Claims up to JOB_BATCH due jobs into cl: held by the transaction the
 * caller opened (store.h: claim_jobs_held), else under a lease. */
static int claim_batch(struct engine *e, mtr_time now, int held, struct claim *cl)
{
    if (held)
        return ledger_claim_jobs_held(&e->L, now, JOB_BATCH, on_job, cl);
    return ledger_claim_jobs(&e->L, e->owner, now, now + LEASE_SECONDS, JOB_BATCH, on_job, cl);
}

static void claim_free(struct claim *cl)
{
    for (size_t i = 0; i < cl->n; i++)
        fetch_item_free(&cl->items[i]);
    free(cl->items);
}

/* Jobs of a webhook gone from the pipeline, or not active, are missed. */
static void miss_inactive(struct engine *e, struct claim *cl)
{
    for (size_t i = 0; i < cl->n; i++) {
        struct fetch_item *it = &cl->items[i];
        if (engine_active_now(e, it->wh))
            continue;
        it->done = 1;
        it->wh = SIZE_MAX;
        int fenced;
        if (ledger_job_set_state_fenced(&e->L, e->owner, &it->key, MTR_JOB_MISSED, &fenced) !=
            MTR_OK)
            store_failed(e, "mark job missed");
        e->stats.jobs_missed++;
        metrics_lock(&e->metrics);
        e->metrics.jobs_missed++;
        metrics_unlock(&e->metrics);
    }
}

/* A batch of due jobs, claimed, fetched and stored as payloads. When every
 * source answers at once and the store can, the whole batch is one
 * transaction and no lease is written (a crash leaves the jobs due);
 * otherwise the jobs are leased first and the payloads stored after the
 * fetches. Returns the jobs handled, or -1. */
int fetch_jobs(struct engine *e, mtr_time now)
{
    e->gen++;
    if (e->in_flight + JOB_BATCH > MAX_IN_FLIGHT)
        return 0; /* backpressure: let the sinks catch up first */
    int held = ledger_has_held_claims(&e->L) && sources_answer_at_once(e);
    struct claim cl = {.e = e, .items = calloc(JOB_BATCH, sizeof(struct fetch_item))};
    if (!cl.items)
        return -1;
    if (held && ledger_begin(&e->L) != MTR_OK) {
        free(cl.items);
        return store_failed(e, "begin");
    }
    if (claim_batch(e, now, held, &cl) != MTR_OK) {
        if (held)
            ledger_rollback(&e->L);
        claim_free(&cl); /* what was claimed before the store failed */
        return store_failed(e, "claim jobs");
    }
    size_t n = cl.n;
    if (refuse_claim(e, cl.items, n, now)) {
        if (held)
            ledger_rollback(&e->L);
        claim_free(&cl);
        return -1;
    }
    miss_inactive(e, &cl);
    for (size_t i = 0; i < n; i++) /* needing re-authentication: not fetched */
        if (cl.items[i].needs_reauth && !cl.items[i].done && cl.items[i].wh != SIZE_MAX)
            reauth_data(e, &cl.items[i]);
    fetch_all(e, cl.items, n);
    struct entry *ent = calloc(n ? n : 1, sizeof *ent);
    int rc = ent ? 0 : -1;
    if (rc == 0 && !held && ledger_begin(&e->L) != MTR_OK)
        rc = store_failed(e, "begin");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        ent[i].item = &cl.items[i];
        if (cl.items[i].wh != SIZE_MAX)
            ent[i].text = settle(e, &cl.items[i], &ent[i].len);
    }
    int stored = rc == 0 && store_entries(e, ent, n) == 0 && !e->failed && !e->store_away;
    if (stored && ledger_commit(&e->L) != MTR_OK) {
        stored = 0;
        rc = store_failed(e, "commit");
    } else if (!stored && (rc == 0 || held)) {
        ledger_rollback(&e->L);
        rc = -1;
    }
    /* what was stored waits on e->ready for the delivery stage; what the
     * ledger does not hold is never sent (its jobs stay leased, or due when
     * the claim was held, and are claimed again) */
    if (!stored)
        drop_ready(e);
    for (size_t i = 0; ent && i < n; i++)
        free(ent[i].text);
    free(ent);
    claim_free(&cl);
    return rc != 0 || e->failed ? -1 : (int)n;
}

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
int fetch_check_key(struct engine *e)
{
    struct key_probe p = {.e = e};
    if (!ledger_has_vehicle_sample(&e->L))
        return 0;
    if (ledger_vehicle_sample(&e->L, probe_vehicle, &p) != MTR_OK)
        return diag_set(e->d, "store: %s", ledger_error(&e->L));
    if (p.refused)
        return diag_set(e->d,
                        "vehicle %s: its stored credentials do not open with %s; start metronome "
                        "with the key they were sealed with ($METRONOME_SECRET_KEY or "
                        "secrets.key_file)",
                        p.vehicle, e->vault.has_key ? "this secret key" : "no secret key");
    return 0;
}
