/* Delivery: payloads -> the courier. Every flight is signed here (SC-Signature
 * over the exact stored bytes) just before it is handed over. */
#include "delivery.h"
#include "events.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes a flight ready to hand to the courier, and counts it in flight. */
static void prepare_launch(struct engine *e, struct flight *f)
{
    /* the set may grow (and move) while the courier holds the flight; the
     * definition it points into stays (webhooks.h: retired) */
    /* an event belongs to no webhook, and goes where its sink sends everything */
    const struct webhook_cfg *w = f->wh == SIZE_MAX ? NULL : e->ws.v[f->wh].cfg;
    memcpy(f->webhook_id, w ? e->ws.v[f->wh].rec.id : EVENTS_STREAM_ID, sizeof f->webhook_id);
    payload_headers(&f->ph, &e->signer, f->body, f->body_len, f->id);
    f->ci.sink = f->sink;
    f->ci.keep_response = f->kind == FLIGHT_VERIFY;
    f->ci.d = (struct mtr_delivery){
        .delivery_id = f->id,
        .webhook_id = f->webhook_id,
        .target = w ? w->callback_uri : NULL,
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

/* Prepares f and puts it in front of the list handed to the courier. */
static void push_launch(struct engine *e, struct flight *f, struct courier_item **list)
{
    prepare_launch(e, f);
    f->ci.next = *list;
    *list = &f->ci;
}

/* A flight that cannot be sent: its outcome is set, for the outcome stage. */
static void settle_unsendable(struct engine *e, struct flight *f, const char *why)
{
    f->ci.o = (struct mtr_sink_outcome){.status = MTR_ERR, .retry_after_s = -1, .cookie = &f->ci};
    snprintf(f->ci.error, sizeof f->ci.error, "%s", why);
    f->ci.o.error = f->ci.error;
    e->in_flight++;
    f->next = e->settled;
    e->settled = f;
}

/* A flight that must wait (ordered): settled as a deferral for the outcome stage. */
static void settle_deferred(struct engine *e, struct flight *f, int64_t wait, const char *why)
{
    settle_unsendable(e, f, why);
    f->ci.o.status = MTR_EAGAIN;
    f->ci.o.retry_after_s = wait;
    f->behind_older = 1;
}

/* Ordered: whether f waits for an older tick's pending delivery of the same
 * vehicles (settled as a deferral until that one is due or settled). */
static int behind_older(struct engine *e, struct flight *f, mtr_time now)
{
    if (f->kind != MTR_DELIVERY_SCHEDULED || f->wh == SIZE_MAX || !e->ws.v[f->wh].cfg ||
        !e->ws.v[f->wh].cfg->ordered)
        return 0;
    int found, leased;
    mtr_time due;
    if (ledger_older_pending(&e->L, f->id, now, &found, &due, &leased) != MTR_OK) {
        store_failed(e, "look for older pending deliveries");
        return 0;
    }
    if (!found)
        return 0;
    /* one in flight answers soon; one waiting for its retry is due then */
    int64_t wait = leased ? ORDER_RECHECK_S : due > now ? due - now : 1;
    settle_deferred(e, f, wait, "an older tick's payload for the same vehicles is pending");
    return 1;
}

void delivery_launch_ready(struct engine *e)
{
    struct courier_item *list = NULL;
    while (e->ready) { /* ready is newest first: pushing each in front restores the order */
        struct flight *f = e->ready;
        e->ready = f->next;
        f->next = NULL;
        if (e->failed || f->sink == SIZE_MAX)
            flight_free(f);
        else if (!behind_older(e, f, clock_now(e->clk)))
            push_launch(e, f, &list);
    }
    courier_send_list(&e->courier, list);
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
    snprintf(f->id, sizeof f->id, "%s", row->id);
    memcpy(f->body, row->body, row->body_len);
    f->body_len = row->body_len;
    f->wh = row->kind == MTR_DELIVERY_EVENT ? SIZE_MAX : webhooks_by_id(&e->ws, row->webhook_id);
    if (f->wh != SIZE_MAX && !e->ws.v[f->wh].cfg)
        f->wh = SIZE_MAX;
    f->sink = find_sink(e, row->sink);
    f->kind = row->kind;
    f->attempts = row->attempts;
    f->round_start = row->round_start;
    f->first_attempt_at = row->first_attempt_at;
    f->earlier = row->created_at < e->started_at;
    f->created_at = row->created_at;
    f->next = ds->list;
    ds->list = f;
    return 0;
}

int delivery_dispatch(struct engine *e, mtr_time now)
{
    if (e->in_flight >= MAX_IN_FLIGHT)
        return 0;
    size_t room = MAX_IN_FLIGHT - e->in_flight;
    struct dispatch ds = {.e = e};
    e->gen++;
    if (ledger_claim_deliveries(&e->L, e->owner, now, now + LEASE_SECONDS,
                                room < DELIVERY_BATCH ? room : DELIVERY_BATCH, on_delivery,
                                &ds) != MTR_OK)
        return store_failed(e, "claim deliveries");
    int n = 0;
    struct courier_item *list = NULL;

    while (ds.list) {
        struct flight *f = ds.list;
        ds.list = f->next;
        f->next = NULL;
        n++;
        if ((f->wh == SIZE_MAX && f->kind != MTR_DELIVERY_EVENT) || f->sink == SIZE_MAX) {
            settle_unsendable(e, f, "its webhook or sink is no longer in the pipeline");
            continue;
        }
        if (f->kind == MTR_DELIVERY_SCHEDULED && !engine_active_now(e, f->wh)) {
            /* never send for a disabled webhook: what it has pending fails */
            uint64_t failed;
            if (!e->failed && ledger_fail_pending(&e->L, e->ws.v[f->wh].rec.id, "webhook disabled",
                                                  now, &failed) != MTR_OK)
                store_failed(e, "fail pending");
            flight_free(f);
            continue;
        }
        if (!behind_older(e, f, now))
            push_launch(e, f, &list);
    }
    courier_send_list(&e->courier, list);
    return e->failed ? -1 : n;
}

/* ---- one-shot sends ---------------------------------------------------------------------- */

struct test_fetch {
    int done;
    char *data;
    size_t len;
};

static void on_test_fetch(void *core, const struct mtr_fetch_result *r)
{
    struct test_fetch *t = core;
    if (!r || r->cookie != t || t->done)
        return; /* not the one request given */
    t->done = 1;
    if (r->data_json && r->data_len <= MAX_DATA_BYTES &&
        (t->data = malloc(r->data_len + 1)) != NULL) {
        memcpy(t->data, r->data_json, r->data_len);
        t->data[r->data_len] = '\0';
        t->len = r->data_len;
    }
}

/* The test payload: one vehicle with data from the webhook's source. */
static char *test_body(struct engine *e, const struct webhook_cfg *w, const char *webhook_id,
                       mtr_time now, size_t *len)
{
    static const char vehicle[] = "00000000-0000-4000-a000-000000000000";
    const struct mtr_source_ops *ops = source_ops(e, w->source);
    void *st = e->c->sources[w->source].inst->state;
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
    if (ops->submit(st, &req, 1, on_test_fetch, &t) == MTR_OK)
        while (!t.done && ops->poll && ops->poll(st, 100) > 0)
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

static void refuse_send(struct engine *e, struct send_request *r, const char *why)
{
    r->status = -1;
    snprintf(r->message, sizeof r->message, "%s", why);
    engine_complete(e, r);
}

/* A flight of r to sink, carrying a copy of body. */
static struct flight *send_flight(struct send_request *r, size_t wh, size_t sink, int kind,
                                  const char *body, size_t len)
{
    struct flight *f = calloc(1, sizeof *f);
    if (!f || !(f->body = malloc(len ? len : 1))) {
        free(f);
        return NULL;
    }
    memcpy(f->body, body, len);
    f->body_len = len;
    f->wh = wh;
    f->sink = sink;
    f->kind = kind;
    f->req = r;
    f->slot = r->n_results++;
    uuid_random(f->id); /* random: two tests in one second are two deliveries */
    return f;
}

/* The test's delivery row: recorded before it is sent, like any delivery,
 * and never claimed by a daemon (it is sent here, once). */
static int record_test(struct engine *e, const struct flight *f, mtr_time now)
{
    struct mtr_delivery_row row = {.id = f->id,
                                   .webhook_id = e->ws.v[f->wh].rec.id,
                                   .sink = sink_name(e, f->sink),
                                   .tick = now,
                                   .kind = MTR_DELIVERY_TEST,
                                   .state = MTR_DELIVERY_PENDING,
                                   .created_at = now,
                                   .next_attempt_at = now + 10 * 366 * 86400LL,
                                   .body = f->body,
                                   .body_len = f->body_len,
                                   .vehicles = 1,
                                   .updated_at = now};
    if (ledger_deliveries_insert(&e->L, &row, 1, NULL, 0, NULL) != MTR_OK)
        return store_failed(e, "store test delivery");
    return 0;
}

void delivery_start_send(struct engine *e, struct send_request *r, mtr_time now)
{
    size_t wh = webhooks_by_id(&e->ws, r->webhook_id);
    if (wh == SIZE_MAX || !e->ws.v[wh].cfg)
        return refuse_send(e, r, "no such webhook");
    const struct webhook *w = &e->ws.v[wh];
    char challenge[UUID_LEN + 1];
    size_t len;
    char *body;
    if (r->kind == SEND_VERIFY) {
        uuid_random(challenge);
        hmac_sha256_hex(e->c->management_token, strlen(e->c->management_token), challenge,
                        strlen(challenge), r->expected);
        body = payload_verify(w->rec.id, challenge, &len);
    } else {
        body = test_body(e, w->cfg, w->rec.id, now, &len);
    }
    if (!body)
        return refuse_send(e, r, "out of memory");
    struct courier_item *list = NULL;
    for (size_t i = 0; i < w->cfg->n_sinks && r->n_results < SEND_MAX_SINKS; i++) {
        size_t sink = w->cfg->sinks[i];
        if (r->kind == SEND_VERIFY && !(sink_ops(e, sink)->flags & MTR_SINK_CALLBACK))
            continue; /* only a callback answers a challenge */
        struct flight *f = send_flight(
            r, wh, sink, r->kind == SEND_VERIFY ? FLIGHT_VERIFY : MTR_DELIVERY_TEST, body, len);
        if (!f || (r->kind == SEND_TEST && record_test(e, f, now) != 0)) {
            if (f)
                flight_free(f);
            r->n_results = r->n_results ? r->n_results - 1 : 0;
            break;
        }
        struct send_sink_result *res = &r->results[f->slot];
        snprintf(res->sink, sizeof res->sink, "%s", sink_name(e, sink));
        if (r->kind == SEND_TEST)
            snprintf(res->delivery_id, sizeof res->delivery_id, "%s", f->id);
        r->pending++;
        push_launch(e, f, &list);
    }
    free(body);
    if (!r->pending) /* nothing was handed over: the list is empty */
        return refuse_send(e, r,
                           e->failed ? "the ledger refused the test delivery"
                           : r->kind == SEND_VERIFY
                               ? "the webhook has no sink that posts to its callback URI"
                               : "the webhook has no sink");
    courier_send_list(&e->courier, list);
}
