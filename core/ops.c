/* The operations behind the command line and the admin API (ops.h). Every
 * function refreshes the webhook set first, so it acts on the ledger as it is
 * now, whichever process changed it last. */
#include "ops.h"
#include "log.h"
#include "metrics.h"
#include "payload.h"
#include "scalar.h"
#include "events.h"
#include "scheduler.h"
#include "sign.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

static int fail(struct op_error *err, int kind, const char *field, const char *fmt, ...)
    MTR_PRINTF(4, 5);

static int fail(struct op_error *err, int kind, const char *field, const char *fmt, ...)
{
    va_list ap;
    err->kind = kind;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int store_fail(struct ops *o, struct op_error *err)
{
    return fail(err, OP_RUNTIME, NULL, "store: %s", ledger_error(&o->L));
}

static int oom(struct op_error *err)
{
    return fail(err, OP_RUNTIME, NULL, "out of memory");
}

static json_t *iso_json(mtr_time t)
{
    char buf[32];
    if (t <= 0)
        return json_null();
    format_iso8601(t, buf, sizeof buf);
    return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

const char *delivery_state_name(int state)
{
    static const char *const names[] = {"pending", "delivered", "failed"};
    return state >= 0 && state < 3 ? names[state] : "?";
}

int delivery_state_parse(const char *name)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, delivery_state_name(i)) == 0)
            return i;
    return -1;
}

/* ---- opening -------------------------------------------------------------------------------- */

/* The admin API's own connection to the store, and its own sources (a source
 * instance is not shared between threads). */
static int open_daemon_instances(struct ops *o, struct op_error *err)
{
    char e[1024];
    struct diag d;
    if (instance_clone(o->c->store, "store (admin API)", &o->own_store, e, sizeof e) != 0)
        return fail(err, OP_RUNTIME, NULL, "store: %s", e);
    if (ledger_open_instance(&o->L, o->own_store, &d) != 0)
        return fail(err, OP_RUNTIME, NULL, "%s", d.text);
    o->owned = calloc(o->c->n_sources ? o->c->n_sources : 1, sizeof *o->owned);
    if (!o->owned)
        return oom(err);
    for (size_t i = 0; i < o->c->n_sources; i++) {
        char name[160];
        snprintf(name, sizeof name, "source '%s' (admin API)", o->c->sources[i].name);
        o->owned[i].name = o->c->sources[i].name;
        if (instance_clone(o->c->sources[i].inst, name, &o->owned[i].inst, e, sizeof e) != 0)
            return fail(err, OP_RUNTIME, NULL, "%s: %s", name, e);
    }
    return 0;
}

int ops_open(struct ops *o, struct config *c, struct clock *clk, int mode, struct engine *engine,
             struct op_error *err)
{
    struct diag d;
    memset(o, 0, sizeof *o);
    o->c = c;
    o->clk = clk;
    o->mode = mode;
    o->engine = engine;
    if (vault_load(&o->vault, c, &d) != 0)
        return fail(err, OP_BAD_INPUT, NULL, "%s", d.text);
    if (mode == OPS_DAEMON) {
        if (open_daemon_instances(o, err) != 0)
            return -1;
    } else if ((mode == OPS_READ ? ledger_open_read_only(&o->L, c, &d)
                                 : ledger_open(&o->L, c, &d)) != 0) {
        return fail(err, OP_RUNTIME, NULL, "%s", d.text);
    }
    if (mode == OPS_WRITE) {
        struct webhook_rec *recs = calloc(c->n_webhooks ? c->n_webhooks : 1, sizeof *recs);
        int rc = recs ? ledger_sync_webhooks(&o->L, c, clock_now(clk), recs, &d) : -1;
        free(recs);
        if (rc != 0)
            return fail(err, OP_RUNTIME, NULL, "%s", recs ? d.text : "out of memory");
    }
    if (webhooks_refresh(&o->ws, c, &o->L, clk, NULL, &d) != 0)
        return fail(err, OP_RUNTIME, NULL, "%s", d.text);
    return 0;
}

void ops_close(struct ops *o)
{
    webhooks_free(&o->ws);
    vault_wipe(&o->vault);
    for (size_t i = 0; o->owned && i < o->c->n_sources; i++)
        instance_destroy(o->owned[i].inst);
    free(o->owned);
    instance_destroy(o->own_store);
    memset(o, 0, sizeof *o);
}

/* The sources this context may call: its own (admin API) or the config's. */
static struct named_instance *sources(struct ops *o)
{
    return o->owned ? o->owned : o->c->sources;
}

static int refresh(struct ops *o, struct op_error *err)
{
    struct diag d;
    if (webhooks_refresh(&o->ws, o->c, &o->L, o->clk, NULL, &d) != 0)
        return fail(err, OP_RUNTIME, NULL, "%s", d.text);
    return 0;
}

/* The webhook named or identified by ref, as the ledger has it now. */
static int find(struct ops *o, const char *ref, const char *field, size_t *i, struct op_error *err)
{
    if (refresh(o, err) != 0)
        return -1;
    *i = webhooks_find(&o->ws, ref);
    if (*i != SIZE_MAX)
        return 0;
    if (ref && config_webhook(o->c, ref) && o->mode == OPS_READ)
        return fail(err, OP_NOT_FOUND, field,
                    "webhook '%s' has no record in the ledger yet (metronome run creates it)", ref);
    return fail(err, OP_NOT_FOUND, field,
                "unknown webhook '%.128s' (no webhook has that name or id, in %s or created "
                "through the API)",
                ref ? ref : "", o->c->path);
}

/* ---- cursors: opaque to clients, base64url of the last key ----------------------------------- */

static char *cursor_make(const char *key)
{
    size_t n = strlen(key),
           len = sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(len);
    if (out)
        sodium_bin2base64(out, len, (const unsigned char *)key, n,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* Decodes a cursor into buf (NUL-terminated); -1 when it is not one. */
static int cursor_read(const char *cursor, char *buf, size_t len, struct op_error *err)
{
    size_t n = 0;
    if (strlen(cursor) > 2 * len ||
        sodium_base642bin((unsigned char *)buf, len - 1, cursor, strlen(cursor), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        memchr(buf, '\0', n))
        return fail(err, OP_BAD_INPUT, "cursor", "not a cursor this API handed out");
    buf[n] = '\0';
    return 0;
}

static size_t page_limit(const struct page *p)
{
    size_t n = p && p->limit ? p->limit : PAGE_DEFAULT;
    return n > PAGE_MAX ? PAGE_MAX : n;
}

/* {"data": items, "nextCursor": cursor of last key or null}; takes items. */
static json_t *paged(json_t *items, const char *last_key, int more)
{
    char *c = more && last_key ? cursor_make(last_key) : NULL;
    json_t *out =
        json_pack("{s:o,s:o}", "data", items, "nextCursor", c ? json_string(c) : json_null());
    free(c);
    return out;
}

/* A page read with limit + 1 items: the extra one only says that another
 * page follows, and the cursor is the key_field of the last item kept. */
static json_t *page_of(json_t *items, size_t limit, const char *key_field)
{
    int more = json_array_size(items) > limit;
    if (more)
        json_array_remove(items, limit);
    size_t n = json_array_size(items);
    const char *last =
        n ? json_string_value(json_object_get(json_array_get(items, n - 1), key_field)) : NULL;
    char *copy = last ? strdup(last) : NULL; /* paged() takes items, and last is inside it */
    json_t *out = paged(items, copy, more);
    free(copy);
    return out;
}

/* ---- webhooks ------------------------------------------------------------------------------ */

static json_t *option_json(const struct optval *v)
{
    char buf[64];
    switch (v->decl->type) {
    case MTR_OPT_INT:
        return json_integer(v->num);
    case MTR_OPT_BOOL:
        return json_boolean(v->num);
    case MTR_OPT_DURATION:
        if (v->num % 3600000 == 0)
            snprintf(buf, sizeof buf, "%lldh", (long long)(v->num / 3600000));
        else if (v->num % 60000 == 0)
            snprintf(buf, sizeof buf, "%lldm", (long long)(v->num / 60000));
        else if (v->num % 1000 == 0)
            snprintf(buf, sizeof buf, "%llds", (long long)(v->num / 1000));
        else
            snprintf(buf, sizeof buf, "%lldms", (long long)v->num);
        return json_string(buf);
    case MTR_OPT_SIZE:
        return json_integer((json_int_t)v->size);
    case MTR_OPT_LIST: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->list_len; i++)
            json_array_append_new(a, json_string(v->list[i]));
        return a;
    }
    case MTR_OPT_SECRET:
        return json_string("(secret)");
    default:
        return json_string(v->str ? v->str : "");
    }
}

static json_t *cadence_json(const struct webhook_cfg *w)
{
    json_t *c = json_pack("{s:s}", "policy", w->cadence_policy);
    const struct optset *s = &w->cadence->ctx.opts;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].set)
            json_object_set_new(c, s->v[i].decl->name, option_json(&s->v[i]));
    return c;
}

void cadence_words(const struct webhook_cfg *w, char *buf, size_t len)
{
    const struct optset *s = &w->cadence->ctx.opts;
    size_t used = (size_t)snprintf(buf, len, "%s", w->cadence_policy);
    for (size_t i = 0; i < s->n && used < len; i++) {
        if (!s->v[i].set)
            continue;
        json_t *v = option_json(&s->v[i]);
        char *text = json_is_string(v) ? strdup(json_string_value(v))
                                       : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        used += (size_t)snprintf(buf + used, len - used, " %s %s", s->v[i].decl->name,
                                 text ? text : "?");
        free(text);
        json_decref(v);
    }
}

/* The webhook's delivery policy, as its delivery block would write it. */
static json_t *policy_json(const struct webhook_cfg *cfg)
{
    const struct retry_policy *rp = &cfg->retry;
    char buf[32];
    json_t *schedule = rp->n_schedule ? json_array() : json_null();
    for (size_t k = 0; k < rp->n_schedule; k++) {
        format_duration(rp->schedule_ms[k], buf, sizeof buf);
        json_array_append_new(schedule, json_string(buf));
    }
    format_duration(rp->window_ms, buf, sizeof buf);
    return json_pack("{s:i,s:s,s:o,s:b,s:b,s:b}", "retries", rp->retries, "retryWindow", buf,
                     "retrySchedule", schedule, "autoRecover", cfg->auto_recover, "supersede",
                     cfg->supersede, "ordered", cfg->ordered);
}

static json_t *webhook_json(struct ops *o, size_t i)
{
    const struct webhook *w = &o->ws.v[i];
    const struct webhook_cfg *cfg = w->cfg;
    struct mtr_store_stats st;
    if (ledger_stats(&o->L, w->rec.id, &st) != MTR_OK)
        memset(&st, 0, sizeof st);
    json_t *endpoints = json_array(), *sinks = json_array();
    for (size_t k = 0; k < cfg->n_endpoints; k++)
        json_array_append_new(endpoints, json_string(cfg->endpoints[k]));
    for (size_t k = 0; k < cfg->n_sinks; k++)
        json_array_append_new(sinks, json_string(o->c->sinks[cfg->sinks[k]].name));
    mtr_time next = 0;
    struct diag ignored;
    if (webhook_next_tick(cfg, clock_now(o->clk), &next, &ignored) != 0)
        next = 0;
    char where[600] = "";
    if (w->origin == ORIGIN_PIPELINE)
        snprintf(where, sizeof where, "%s:%d", o->c->path, cfg->line);
    return json_pack(
        "{s:s,s:s,s:s,s:o,s:o,s:s,s:o,s:s,s:i,s:s,s:o,s:o,s:s,s:o,s:I,s:o,s:o,s:o}", "id",
        w->rec.id, "name", w->name, "callbackUri", cfg->callback_uri, "cadence", cadence_json(cfg),
        "endpoints", endpoints, "units", cfg->units == MTR_UNITS_IMPERIAL ? "imperial" : "metric",
        "sinks", sinks, "source", o->c->sources[cfg->source].name, "vehiclesPerPayload",
        cfg->vehicles_per_payload, "state", webhook_state_name(w->rec.state), "disabledReason",
        str_or_null(w->rec.state == MTR_WEBHOOK_DISABLED ? w->rec.reason : NULL), "stateSince",
        iso_json(w->rec.state_at), "origin", w->origin == ORIGIN_API ? "api" : "pipeline",
        "definedAt", str_or_null(where), "vehicles", (json_int_t)st.subscriptions, "nextTick",
        iso_json(next), "lastTick", iso_json(w->rec.last_tick), "delivery", policy_json(cfg));
}

/* The webhook's last 24 hours of scheduled deliveries and its newest one's
 * outcome, for the page (null where the store cannot say). */
static void add_recent(struct ops *o, size_t i, json_t *j)
{
    struct mtr_delivery_counts dc;
    if (!ledger_has_delivery_counts(&o->L) ||
        ledger_delivery_counts(&o->L, o->ws.v[i].rec.id, clock_now(o->clk) - 86400, &dc) !=
            MTR_OK) {
        json_object_set_new(j, "last24h", json_null());
        json_object_set_new(j, "lastOutcome", json_null());
        return;
    }
    uint64_t settled = dc.by_state[MTR_DELIVERY_DELIVERED] + dc.by_state[MTR_DELIVERY_FAILED];
    json_object_set_new(
        j, "last24h",
        json_pack("{s:I,s:I,s:I,s:o}", "delivered", (json_int_t)dc.by_state[MTR_DELIVERY_DELIVERED],
                  "failed", (json_int_t)dc.by_state[MTR_DELIVERY_FAILED], "pending",
                  (json_int_t)dc.by_state[MTR_DELIVERY_PENDING], "successRate",
                  settled ? json_real((double)dc.by_state[MTR_DELIVERY_DELIVERED] / (double)settled)
                          : json_null()));
    json_object_set_new(
        j, "lastOutcome",
        dc.has_last ? json_pack("{s:s,s:o,s:o}", "state", delivery_state_name(dc.last_state), "at",
                                iso_json(dc.last_at), "httpStatus",
                                dc.last_status ? json_integer(dc.last_status) : json_null())
                    : json_null());
}

/* Sorts indices of s by name (insertion sort: a few hundred webhooks at
 * most, and qsort has no argument for the set). */
static void sort_by_name(const struct webhook_set *s, size_t *order, size_t m)
{
    for (size_t i = 1; i < m; i++) {
        size_t x = order[i], j = i;
        while (j > 0 && strcmp(s->v[order[j - 1]].name, s->v[x].name) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
}

int ops_webhook_list(struct ops *o, const struct page *p, json_t **out, struct op_error *err)
{
    char after[256] = "";
    if (p && p->cursor && cursor_read(p->cursor, after, sizeof after, err) != 0)
        return -1;
    if (refresh(o, err) != 0)
        return -1;
    size_t *order = malloc((o->ws.n ? o->ws.n : 1) * sizeof *order), m = 0;
    if (!order)
        return oom(err);
    for (size_t i = 0; i < o->ws.n; i++)
        if (!o->ws.v[i].gone && strcmp(o->ws.v[i].name, after) > 0)
            order[m++] = i;
    sort_by_name(&o->ws, order, m);
    size_t limit = page_limit(p), n = m < limit ? m : limit;
    json_t *items = json_array();
    for (size_t k = 0; k < n; k++) {
        json_t *w = webhook_json(o, order[k]);
        add_recent(o, order[k], w);
        json_array_append_new(items, w);
    }
    *out = paged(items, n ? o->ws.v[order[n - 1]].name : NULL, m > n);
    free(order);
    return *out ? 0 : oom(err);
}

int ops_webhook_get(struct ops *o, const char *ref, json_t **out, struct op_error *err)
{
    size_t i;
    if (find(o, ref, "id", &i, err) != 0)
        return -1;
    *out = webhook_json(o, i);
    if (*out)
        add_recent(o, i, *out);
    return *out ? 0 : oom(err);
}

/* A pipeline webhook cannot be changed through the API: its file says what it is. */
static int read_only_webhook(struct ops *o, size_t i, struct op_error *err)
{
    const struct webhook *w = &o->ws.v[i];
    if (w->origin != ORIGIN_PIPELINE)
        return 0;
    return fail(err, OP_CONFLICT, NULL,
                "webhook '%s' is defined in %s:%d; change it there (webhooks of the pipeline file "
                "are read-only through the API)",
                w->name, o->c->path, w->cfg ? w->cfg->line : 0);
}

/* Validates a definition as the pipeline's webhooks are, and stores it. */
static int save_definition(struct ops *o, const json_t *def, const char *id, struct op_error *err)
{
    struct webhook_cfg cfg;
    struct diag d;
    if (!json_is_object(def))
        return fail(err, OP_BAD_INPUT, "", "the body must be a JSON object");
    if (config_webhook_from_json(o->c, def, "request body", o->clk, &cfg, &d) != 0)
        return fail(err, OP_BAD_INPUT, d.field, "%s", d.text);
    char *text = webhook_definition_json(def);
    if (!text) {
        webhook_cfg_free(&cfg);
        return oom(err);
    }
    struct mtr_webhook_row row = {
        .id = id, .name = cfg.name, .callback_uri = cfg.callback_uri, .definition = text};
    int rc =
        ledger_webhook_upsert(&o->L, &row, clock_now(o->clk)) == MTR_OK ? 0 : store_fail(o, err);
    free(text);
    webhook_cfg_free(&cfg);
    return rc;
}

int ops_webhook_create(struct ops *o, const json_t *body, json_t **out, struct op_error *err)
{
    const char *name = json_string_value(json_object_get(body, "name"));
    if (refresh(o, err) != 0)
        return -1;
    if (name && (config_webhook(o->c, name) || webhooks_find(&o->ws, name) != SIZE_MAX))
        return fail(err, OP_CONFLICT, "name", "a webhook named '%s' exists already", name);
    char id[UUID_LEN + 1];
    uuid_random(id);
    if (save_definition(o, body, id, err) != 0)
        return -1;
    size_t i;
    if (find(o, id, NULL, &i, err) != 0)
        return -1;
    log_msg(MTR_LOG_INFO, o->ws.v[i].name, "webhook created through the API (unverified)");
    *out = webhook_json(o, i);
    return *out ? 0 : oom(err);
}

int ops_webhook_update(struct ops *o, const char *ref, const json_t *patch, json_t **out,
                       struct op_error *err)
{
    size_t i;
    if (find(o, ref, "id", &i, err) != 0 || read_only_webhook(o, i, err) != 0)
        return -1;
    if (!json_is_object(patch))
        return fail(err, OP_BAD_INPUT, "", "the body must be a JSON object");
    json_error_t je;
    json_t *def = json_loads(o->ws.v[i].definition, 0, &je);
    if (!def)
        return fail(err, OP_RUNTIME, NULL, "the stored definition of '%s' is not JSON",
                    o->ws.v[i].name);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)patch, key, v)
    {
        if (strcmp(key, "name") == 0 &&
            (!json_is_string(v) || strcmp(json_string_value(v), o->ws.v[i].name) != 0)) {
            json_decref(def);
            return fail(err, OP_BAD_INPUT, "name",
                        "a webhook's name cannot change; create a new webhook instead");
        }
        if (json_is_null(v))
            json_object_del(def, key); /* top-level fields replace; null removes */
        else
            json_object_set(def, key, v);
    }
    char id[UUID_LEN + 1];
    snprintf(id, sizeof id, "%s", o->ws.v[i].rec.id);
    int rc = save_definition(o, def, id, err);
    json_decref(def);
    if (rc != 0 || find(o, id, NULL, &i, err) != 0)
        return -1;
    *out = webhook_json(o, i);
    return *out ? 0 : oom(err);
}

int ops_webhook_delete(struct ops *o, const char *ref, json_t **out, struct op_error *err)
{
    size_t i;
    if (find(o, ref, "id", &i, err) != 0 || read_only_webhook(o, i, err) != 0)
        return -1;
    const struct webhook *w = &o->ws.v[i];
    int rc = ledger_begin(&o->L);
    if (rc == MTR_OK)
        rc = ledger_webhook_delete(&o->L, w->rec.id, clock_now(o->clk));
    if (rc == MTR_OK)
        rc = ledger_commit(&o->L);
    else
        ledger_rollback(&o->L);
    if (rc != MTR_OK)
        return store_fail(o, err);
    log_msg(MTR_LOG_INFO, w->name, "webhook deleted through the API");
    *out = json_pack("{s:s,s:s,s:b}", "id", w->rec.id, "name", w->name, "deleted", 1);
    return refresh(o, err);
}

/* ---- verify and test: through the engine's courier ------------------------------------------ */

static json_t *send_json(const struct send_request *r)
{
    json_t *sinks = json_array();
    for (size_t i = 0; i < r->n_results; i++) {
        const struct send_sink_result *x = &r->results[i];
        json_t *one = json_pack("{s:s,s:b,s:o,s:f,s:o}", "sink", x->sink, "ok", x->ok, "httpStatus",
                                x->http_status ? json_integer(x->http_status) : json_null(),
                                "latencyMs", (double)x->latency_us / 1000.0, "error",
                                str_or_null(x->ok ? NULL : x->error));
        if (x->delivery_id[0])
            json_object_set_new(one, "deliveryId", json_string(x->delivery_id));
        json_array_append_new(sinks, one);
    }
    return sinks;
}

/* Runs a send on the running engine, or on one made for this command. */
static int run_send(struct ops *o, struct send_request *r, struct op_error *err)
{
    struct diag d;
    if (o->engine) {
        if (engine_request(o->engine, r) != 0)
            return fail(err, OP_UNAVAILABLE, NULL, "%s", r->message);
        return 0;
    }
    if (o->mode == OPS_DAEMON)
        return fail(err, OP_UNAVAILABLE, NULL, "metronome is not running");
    struct engine *e = engine_create(o->c, o->clk, &d);
    if (!e)
        return fail(err, OP_RUNTIME, NULL, "%s", d.text);
    int rc = engine_send(e, r, &d);
    engine_destroy(e);
    return rc == 0 ? 0 : fail(err, OP_RUNTIME, NULL, "%s", d.text);
}

static int send_op(struct ops *o, const char *ref, int kind, json_t **out, struct op_error *err)
{
    size_t i;
    if (find(o, ref, "id", &i, err) != 0)
        return -1;
    struct send_request *r = calloc(1, sizeof *r);
    if (!r)
        return oom(err);
    r->kind = kind;
    snprintf(r->webhook_id, sizeof r->webhook_id, "%s", o->ws.v[i].rec.id);
    char name[80], uri[1024];
    snprintf(name, sizeof name, "%s", o->ws.v[i].name);
    snprintf(uri, sizeof uri, "%s", o->ws.v[i].cfg->callback_uri);
    int rc = run_send(o, r, err);
    if (rc == 0 && r->n_results == 0 && r->status != 0)
        rc = fail(err, OP_BAD_INPUT, NULL, "webhook '%s': %s", name, r->message);
    if (rc == 0 && refresh(o, err) == 0) {
        size_t k = webhooks_find(&o->ws, r->webhook_id);
        const char *verb = kind == SEND_VERIFY ? "verified" : "delivered";
        *out = json_pack("{s:s,s:s,s:b,s:o,s:s}", "webhookId", r->webhook_id, "name", name, verb,
                         r->status == 0, "sinks", send_json(r), "state",
                         k == SIZE_MAX ? "?" : webhook_state_name(o->ws.v[k].rec.state));
        if (r->status != 0) {
            const struct send_sink_result *bad = &r->results[0];
            for (size_t j = 0; j < r->n_results; j++)
                if (!r->results[j].ok) {
                    bad = &r->results[j];
                    break;
                }
            rc = fail(err, OP_UPSTREAM, NULL, "webhook '%s' not %s: %s (sink '%s', %s)", name, verb,
                      bad->error, bad->sink, uri);
        }
    }
    free(r);
    return rc;
}

int ops_webhook_verify(struct ops *o, const char *ref, json_t **out, struct op_error *err)
{
    return send_op(o, ref, SEND_VERIFY, out, err);
}

int ops_webhook_test(struct ops *o, const char *ref, json_t **out, struct op_error *err)
{
    return send_op(o, ref, SEND_TEST, out, err);
}

int ops_webhook_enable(struct ops *o, const char *ref, int enable, json_t **out,
                       struct op_error *err)
{
    size_t i;
    if (find(o, ref, "id", &i, err) != 0)
        return -1;
    const struct webhook *w = &o->ws.v[i];
    mtr_time now = clock_now(o->clk);
    if (enable && w->rec.state == MTR_WEBHOOK_UNVERIFIED)
        return fail(err, OP_CONFLICT, NULL,
                    "'%s' is not verified yet; verify it first (metronome webhook verify %s)",
                    w->name, w->name);
    int changes =
        enable ? w->rec.state != MTR_WEBHOOK_ACTIVE : w->rec.state != MTR_WEBHOOK_DISABLED;
    struct events ev = {0};
    if (changes &&
        events_make(o->c, enable ? "webhook.enabled" : "webhook.disabled", w->rec.id, now,
                    json_pack("{s:s,s:s,s:s}", "webhookId", w->rec.id, "webhookName", w->name,
                              "reason", "operator"),
                    &ev) != 0)
        return oom(err);
    int rc = 0;
    if (enable && changes) { /* the state and its event, together */
        rc = ledger_begin(&o->L) == MTR_OK &&
                     ledger_webhook_set_state(&o->L, w->rec.id, MTR_WEBHOOK_ACTIVE, NULL, now) ==
                         MTR_OK &&
                     (ev.n == 0 ||
                      ledger_deliveries_insert(&o->L, ev.rows, ev.n, NULL, 0, NULL) == MTR_OK) &&
                     ledger_commit(&o->L) == MTR_OK
                 ? 0
                 : (ledger_rollback(&o->L), -1);
    } else if (!enable) {
        rc = ledger_disable(&o->L, w->rec.id, "operator", now, ev.rows, ev.n);
    }
    events_free(&ev);
    if (rc != 0)
        return store_fail(o, err);
    log_msg(MTR_LOG_INFO, w->name, "webhook %s by an operator", enable ? "enabled" : "disabled");
    if (refresh(o, err) != 0)
        return -1;
    *out = webhook_json(o, i);
    return *out ? 0 : oom(err);
}

int ops_webhook_plan(struct ops *o, const char *ref, mtr_time from, size_t count, json_t **out,
                     struct op_error *err)
{
    size_t i;
    struct diag d;
    if (find(o, ref, "id", &i, err) != 0)
        return -1;
    if (count < 1 || count > 1000)
        return fail(err, OP_BAD_INPUT, "count", "count must be 1 to 1000");
    json_t *ticks = json_array();
    mtr_time t = from ? from : clock_now(o->clk);
    for (size_t k = 0; k < count && webhook_next_tick(o->ws.v[i].cfg, t, &t, &d) == 0; k++)
        json_array_append_new(ticks, iso_json(t));
    *out = json_pack("{s:s,s:o}", "webhook", o->ws.v[i].name, "ticks", ticks);
    return *out ? 0 : oom(err);
}

int ops_catalog(struct ops *o, json_t **out, struct op_error *err)
{
    json_t *endpoints = json_array(), *sinks = json_array(), *srcs = json_array();
    json_t *policies = json_array();
    for (size_t i = 0; smartcar_endpoints[i]; i++)
        json_array_append_new(endpoints, json_string(smartcar_endpoints[i]));
    for (size_t i = 0; i < o->c->n_sinks; i++)
        json_array_append_new(sinks, json_pack("{s:s,s:s}", "name", o->c->sinks[i].name, "plugin",
                                               o->c->sinks[i].inst->ctx.pf->desc.name));
    for (size_t i = 0; i < o->c->n_sources; i++) {
        const struct instance *in = sources(o)[i].inst;
        json_array_append_new(srcs, json_pack("{s:s,s:s}", "name", o->c->sources[i].name, "mode",
                                              in->ctx.pf->desc.source->mode(in->state)));
    }
    for (size_t i = 0; i < o->c->registry.n; i++) {
        const struct plugin_file *pf = &o->c->registry.files[i];
        if (pf->desc.kind == MTR_KIND_CADENCE && !pf->shadowed)
            json_array_append_new(policies, json_string(pf->desc.name));
    }
    *out = json_pack("{s:o,s:o,s:o,s:o}", "endpoints", endpoints, "sinks", sinks, "sources", srcs,
                     "cadencePolicies", policies);
    return *out ? 0 : oom(err);
}

int ops_cadence_preview(struct ops *o, const json_t *cadence, mtr_time from, size_t count,
                        json_t **out, struct op_error *err)
{
    struct webhook_cfg cfg;
    struct diag d;
    if (count < 1 || count > 100)
        return fail(err, OP_BAD_INPUT, "count", "count must be 1 to 100");
    if (!o->c->n_sinks)
        return fail(err, OP_RUNTIME, NULL, "the pipeline declares no sinks");
    /* a webhook that only carries the cadence, checked as any webhook's is */
    json_t *def = json_pack("{s:s,s:s,s:O,s:[s],s:[s]}", "name", "preview", "callbackUri",
                            "https://preview.invalid/", "cadence", cadence, "endpoints",
                            "/odometer", "sinks", o->c->sinks[0].name);
    if (!def)
        return fail(err, OP_BAD_INPUT, "cadence",
                    "cadence must be an object like {\"policy\": \"hourly\"}");
    int rc = config_webhook_from_json(o->c, def, "request body", o->clk, &cfg, &d);
    json_decref(def);
    if (rc != 0)
        return fail(err, OP_BAD_INPUT, d.field[0] ? d.field : "cadence", "%s", d.text);
    json_t *ticks = json_array();
    mtr_time t = from ? from : clock_now(o->clk);
    for (size_t k = 0; k < count && webhook_next_tick(&cfg, t, &t, &d) == 0; k++)
        json_array_append_new(ticks, iso_json(t));
    char words[256];
    cadence_words(&cfg, words, sizeof words);
    webhook_cfg_free(&cfg);
    *out = json_pack("{s:o,s:s}", "ticks", ticks, "words", words);
    return *out ? 0 : oom(err);
}

/* ---- subscriptions --------------------------------------------------------------------------- */

static int valid_vehicle_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 128)
        return 0;
    for (; *id; id++)
        if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z') ||
              (*id >= '0' && *id <= '9') || *id == '-' || *id == '_' || *id == '.' || *id == ':'))
            return 0;
    return 1;
}

static size_t source_index(struct ops *o, const char *name)
{
    for (size_t k = 0; name && k < o->c->n_sources; k++)
        if (strcmp(o->c->sources[k].name, name) == 0)
            return k;
    return SIZE_MAX;
}

static int is_simulated(struct ops *o, size_t src)
{
    const struct instance *in = sources(o)[src].inst;
    const char *mode = in->ctx.pf->desc.source->mode(in->state);
    return mode && strcmp(mode, "simulated") == 0;
}

/* Subscribes one vehicle: 1 created, 0 already subscribed, -1 refused (why
 * in msg), -2 the store failed. */
static int subscribe_one(struct ops *o, size_t wh, const struct sub_request *r, mtr_time now,
                         char *msg, size_t len)
{
    const char *source = r->source ? r->source : o->c->sources[o->ws.v[wh].cfg->source].name;
    if (!valid_vehicle_id(r->vehicle_id)) {
        snprintf(msg, len, "bad vehicle id '%.64s' (1-128 of A-Z a-z 0-9 . _ : -)",
                 r->vehicle_id ? r->vehicle_id : "");
        return -1;
    }
    if (source_index(o, source) == SIZE_MAX) {
        snprintf(msg, len, "unknown source '%.64s' (not in %s)", source, o->c->path);
        return -1;
    }
    if (!r->keep_refresh && (r->access_token != NULL) != (r->refresh_token != NULL)) {
        snprintf(msg, len,
                 "vehicle %s: an access token needs its refresh token, and the reverse (a live "
                 "vehicle without both cannot be kept connected)",
                 r->vehicle_id);
        return -1;
    }
    if ((r->access_token || r->refresh_token) && !o->vault.has_key) {
        snprintf(msg, len,
                 "live credentials need a key: set $METRONOME_SECRET_KEY (64 hex "
                 "characters) or secrets.key_file");
        return -1;
    }
    size_t alen = 0, rlen = 0;
    unsigned char *a = r->access_token ? vault_seal(&o->vault, r->access_token, &alen) : NULL;
    unsigned char *rt = r->refresh_token ? vault_seal(&o->vault, r->refresh_token, &rlen) : NULL;
    struct mtr_vehicle_row v = {.id = r->vehicle_id,
                                .source = source,
                                .access_token = a,
                                .access_len = alen,
                                .refresh_token = rt,
                                .refresh_len = rlen,
                                .access_expires = !r->access_token    ? 0
                                                  : r->access_expires ? r->access_expires
                                                                      : now + 7200};
    int created = 0;
    const char *wid = o->ws.v[wh].rec.id;
    int ok = ledger_vehicle_upsert(&o->L, &v) == MTR_OK &&
             ledger_subscribe(&o->L, wid, r->vehicle_id, now, stable_hash32(wid, r->vehicle_id),
                              &created) == MTR_OK;
    free(a);
    free(rt);
    if (!ok) {
        snprintf(msg, len, "store: %s", ledger_error(&o->L));
        return -2;
    }
    return created;
}

int ops_subscribe(struct ops *o, const char *ref, const struct sub_request *items, size_t n,
                  json_t **out, struct op_error *err)
{
    size_t wh;
    if (find(o, ref, "webhookId", &wh, err) != 0)
        return -1;
    mtr_time now = clock_now(o->clk);
    json_t *results = json_array();
    size_t created = 0, existing = 0, failed = 0;
    int rc = ledger_begin(&o->L) == MTR_OK ? 0 : store_fail(o, err);
    for (size_t k = 0; rc == 0 && k < n; k++) {
        char msg[512];
        int r = subscribe_one(o, wh, &items[k], now, msg, sizeof msg);
        if (r == -2) {
            rc = fail(err, OP_RUNTIME, NULL, "%s", msg);
            break;
        }
        created += r == 1;
        existing += r == 0;
        failed += r < 0;
        json_array_append_new(results, json_pack("{s:s?,s:s,s:o}", "vehicleId", items[k].vehicle_id,
                                                 "result",
                                                 r == 1   ? "subscribed"
                                                 : r == 0 ? "existing"
                                                          : "error",
                                                 "error", str_or_null(r < 0 ? msg : NULL)));
    }
    if (rc == 0 && ledger_commit(&o->L) != MTR_OK)
        rc = store_fail(o, err);
    else if (rc != 0)
        ledger_rollback(&o->L);
    mtr_time first = 0;
    struct diag ignored;
    if (webhook_next_tick(o->ws.v[wh].cfg, now, &first, &ignored) != 0)
        first = 0;
    if (rc == 0)
        *out = json_pack("{s:s,s:s,s:o,s:o,s:I,s:I,s:I,s:o}", "webhookId", o->ws.v[wh].rec.id,
                         "webhook", o->ws.v[wh].name, "subscribedAt", iso_json(now), "firstTick",
                         iso_json(first), "subscribed", (json_int_t)created, "existing",
                         (json_int_t)existing, "failed", (json_int_t)failed, "results", results);
    else
        json_decref(results);
    return rc;
}

int ops_subscribe_one(struct ops *o, const char *ref, const struct sub_request *req, json_t **out,
                      struct op_error *err)
{
    json_t *all = NULL;
    if (ops_subscribe(o, ref, req, 1, &all, err) != 0)
        return -1;
    json_t *r = json_array_get(json_object_get(all, "results"), 0);
    const char *result = json_string_value(json_object_get(r, "result"));
    int rc = 0;
    if (result && strcmp(result, "error") == 0)
        rc = fail(err, OP_BAD_INPUT, "vehicleId", "%s",
                  json_string_value(json_object_get(r, "error")));
    else if (result && strcmp(result, "existing") == 0)
        rc = fail(err, OP_CONFLICT, "vehicleId", "vehicle %s is already subscribed to %s",
                  req->vehicle_id, json_string_value(json_object_get(all, "webhook")));
    if (rc == 0) {
        json_object_del(all, "results");
        json_object_set_new(all, "vehicleId", json_string(req->vehicle_id));
        *out = all;
    } else {
        json_decref(all);
    }
    return rc;
}

int ops_subscribe_check(struct ops *o, const char *ref, const char *source, struct op_error *err)
{
    size_t wh;
    if (find(o, ref, "webhookId", &wh, err) != 0)
        return -1;
    if (source && source_index(o, source) == SIZE_MAX)
        return fail(err, OP_BAD_INPUT, "source", "unknown source '%.64s' (not in %s)", source,
                    o->c->path);
    return 0;
}

int ops_unsubscribe(struct ops *o, const char *ref, const char *vehicle_id, json_t **out,
                    struct op_error *err)
{
    size_t wh;
    int removed = 0;
    if (find(o, ref, "webhookId", &wh, err) != 0)
        return -1;
    if (ledger_unsubscribe(&o->L, o->ws.v[wh].rec.id, vehicle_id, clock_now(o->clk), &removed) !=
        MTR_OK)
        return store_fail(o, err);
    if (!removed)
        return fail(err, OP_NOT_FOUND, "vehicleId", "vehicle %.128s is not subscribed to %s",
                    vehicle_id, o->ws.v[wh].name);
    *out = json_pack("{s:s,s:s,s:s}", "webhookId", o->ws.v[wh].rec.id, "webhook", o->ws.v[wh].name,
                     "vehicleId", vehicle_id);
    return *out ? 0 : oom(err);
}

static int sub_row(void *arg, const struct mtr_subscription_row *r)
{
    json_array_append_new(
        arg, json_pack("{s:s,s:s,s:o,s:b,s:b,s:o}", "vehicleId", r->vehicle_id, "source",
                       r->source ? r->source : "", "subscribedAt", iso_json(r->made_at), "live",
                       r->live, "needsReauthentication", r->needs_reauth, "accessExpiresAt",
                       iso_json(r->live ? r->access_expires : 0)));
    return 0;
}

int ops_subscriptions_list(struct ops *o, const char *ref, const char *vehicle_id,
                           const struct page *p, json_t **out, struct op_error *err)
{
    size_t wh, limit = page_limit(p);
    char after[160] = "";
    if (find(o, ref, "webhookId", &wh, err) != 0)
        return -1;
    if (p && p->cursor && cursor_read(p->cursor, after, sizeof after, err) != 0)
        return -1;
    json_t *items = json_array();
    if (ledger_subscriptions_list(&o->L, o->ws.v[wh].rec.id, vehicle_id, after[0] ? after : NULL,
                                  limit + 1, sub_row, items) != MTR_OK) {
        json_decref(items);
        return store_fail(o, err);
    }
    *out = page_of(items, limit, "vehicleId");
    return *out ? 0 : oom(err);
}

/* ---- Connect: vehicles behind a token ---------------------------------------------------------
 */

/* The named source, started, with the Connect operations. */
static int live_source(struct ops *o, const char *name, const struct mtr_source_ops **sops,
                       struct instance **inst, struct op_error *err)
{
    size_t k = source_index(o, name);
    struct diag d;
    if (k == SIZE_MAX)
        return fail(err, OP_BAD_INPUT, "source", "unknown source '%.64s' (not in %s)", name,
                    o->c->path);
    *inst = sources(o)[k].inst;
    *sops = (*inst)->ctx.pf->desc.source;
    if (!(*sops)->list_vehicles || !(*sops)->exchange_code)
        return fail(err, OP_BAD_INPUT, "source",
                    "source '%s' cannot list a token's vehicles (it is not a live source)", name);
    if (instance_start(*inst, &d) != 0)
        return fail(err, OP_RUNTIME, NULL, "%s", d.text);
    return 0;
}

struct token_vehicles {
    struct ops *o;
    size_t wh; /* SIZE_MAX: store the vehicles only */
    const char *source, *access, *refresh;
    mtr_time expires, now;
    json_t *results;
    size_t created, existing, failed;
    const char *want; /* stop once this vehicle is seen (Smartcar subscribe) */
    int seen;
};

static int on_listed_vehicle(void *arg, const char *vehicle_id)
{
    struct token_vehicles *tv = arg;
    char msg[512] = "";
    int r;
    if (tv->want) {
        tv->seen |= strcmp(tv->want, vehicle_id) == 0;
        return tv->seen;
    }
    struct sub_request req = {.vehicle_id = vehicle_id,
                              .source = tv->source,
                              .access_token = tv->access,
                              .refresh_token = tv->refresh,
                              .access_expires = tv->expires};
    if (tv->wh != SIZE_MAX) {
        r = subscribe_one(tv->o, tv->wh, &req, tv->now, msg, sizeof msg);
    } else {
        size_t alen, rlen;
        unsigned char *a = vault_seal(&tv->o->vault, tv->access, &alen);
        unsigned char *rt = vault_seal(&tv->o->vault, tv->refresh, &rlen);
        struct mtr_vehicle_row v = {.id = vehicle_id,
                                    .source = tv->source,
                                    .access_token = a,
                                    .access_len = alen,
                                    .refresh_token = rt,
                                    .refresh_len = rlen,
                                    .access_expires = tv->expires};
        r = valid_vehicle_id(vehicle_id) && a && rt &&
                    ledger_vehicle_upsert(&tv->o->L, &v) == MTR_OK
                ? 1
                : -1;
        if (r < 0)
            snprintf(msg, sizeof msg, "%s",
                     valid_vehicle_id(vehicle_id) ? ledger_error(&tv->o->L) : "bad vehicle id");
        free(a);
        free(rt);
    }
    tv->created += r == 1;
    tv->existing += r == 0;
    tv->failed += r < 0;
    json_array_append_new(tv->results,
                          json_pack("{s:s,s:s,s:o}", "vehicleId", vehicle_id, "result",
                                    r == 1   ? (tv->wh != SIZE_MAX ? "subscribed" : "connected")
                                    : r == 0 ? "existing"
                                             : "error",
                                    "error", str_or_null(r < 0 ? msg : NULL)));
    return 0;
}

static int connect_vehicles(struct ops *o, struct token_vehicles *tv, json_t **out,
                            struct op_error *err)
{
    const struct mtr_source_ops *sops;
    struct instance *inst;
    if (live_source(o, tv->source, &sops, &inst, err) != 0)
        return -1;
    if (!o->vault.has_key)
        return fail(err, OP_BAD_INPUT, NULL,
                    "live credentials need a key: set $METRONOME_SECRET_KEY (64 hex characters) "
                    "or secrets.key_file");
    tv->results = json_array();
    if (sops->list_vehicles(inst->state, tv->access, on_listed_vehicle, tv) != MTR_OK) {
        json_decref(tv->results);
        return fail(err, OP_UPSTREAM, NULL, "%s", inst->ctx.error);
    }
    *out = json_pack("{s:I,s:I,s:I,s:o}", tv->wh != SIZE_MAX ? "subscribed" : "connected",
                     (json_int_t)tv->created, "existing", (json_int_t)tv->existing, "failed",
                     (json_int_t)tv->failed, "vehicles", tv->results);
    if (tv->failed)
        return fail(err, OP_RUNTIME, NULL, "%zu vehicle(s) could not be stored", tv->failed);
    return 0;
}

static int connect_setup(struct ops *o, const char *ref, const char *source,
                         struct token_vehicles *tv, struct op_error *err)
{
    memset(tv, 0, sizeof *tv);
    tv->o = o;
    tv->wh = SIZE_MAX;
    tv->now = clock_now(o->clk);
    if (ref && find(o, ref, "webhookId", &tv->wh, err) != 0)
        return -1;
    tv->source = source               ? source
                 : tv->wh != SIZE_MAX ? o->c->sources[o->ws.v[tv->wh].cfg->source].name
                                      : o->c->sources[0].name;
    return 0;
}

int ops_connect_token(struct ops *o, const char *ref, const char *source, const char *access,
                      const char *refresh, mtr_time expires, json_t **out, struct op_error *err)
{
    struct token_vehicles tv;
    if (connect_setup(o, ref, source, &tv, err) != 0)
        return -1;
    tv.access = access;
    tv.refresh = refresh;
    tv.expires = expires ? expires : tv.now + 7200;
    return connect_vehicles(o, &tv, out, err);
}

struct tokens {
    char *access, *refresh;
    mtr_time expires;
};

static int on_tokens(void *arg, const char *access, const char *refresh, mtr_time expires)
{
    struct tokens *t = arg;
    free(t->access);
    free(t->refresh);
    t->access = strdup(access);
    t->refresh = strdup(refresh);
    t->expires = expires;
    return 0;
}

int ops_connect_code(struct ops *o, const char *ref, const char *source, const char *code,
                     const char *redirect_uri, json_t **out, struct op_error *err)
{
    struct token_vehicles tv;
    struct tokens t = {0};
    const struct mtr_source_ops *sops;
    struct instance *inst;
    if (connect_setup(o, ref, source, &tv, err) != 0 ||
        live_source(o, tv.source, &sops, &inst, err) != 0)
        return -1;
    int rc = 0;
    if (sops->exchange_code(inst->state, code, redirect_uri, on_tokens, &t) != MTR_OK)
        rc = fail(err, OP_UPSTREAM, NULL, "%s", inst->ctx.error);
    else if (!t.access || !t.refresh)
        rc = fail(err, OP_UPSTREAM, NULL, "the source handed back no tokens");
    if (rc == 0) {
        tv.access = t.access;
        tv.refresh = t.refresh;
        tv.expires = t.expires;
        rc = connect_vehicles(o, &tv, out, err);
    }
    if (t.access)
        sodium_memzero(t.access, strlen(t.access));
    if (t.refresh)
        sodium_memzero(t.refresh, strlen(t.refresh));
    free(t.access);
    free(t.refresh);
    return rc;
}

/* ---- Smartcar-compatible subscriptions --------------------------------------------------------
 */

int ops_sc_subscribe(struct ops *o, const char *webhook_ref, const char *vehicle_id,
                     const char *access_token, const char *refresh_token, json_t **out,
                     struct op_error *err)
{
    size_t wh;
    if (!access_token || !*access_token)
        return fail(err, OP_UNAUTHORIZED, NULL, "a vehicle access token is required");
    if (find(o, webhook_ref, "webhookId", &wh, err) != 0)
        return -1;
    if (!valid_vehicle_id(vehicle_id))
        return fail(err, OP_NOT_FOUND, "vehicleId", "no vehicle '%.64s'", vehicle_id);
    size_t src = o->ws.v[wh].cfg->source;
    const char *source = o->c->sources[src].name;
    struct sub_request req = {.vehicle_id = vehicle_id, .source = source};
    if (!is_simulated(o, src)) { /* the token must grant this vehicle */
        struct token_vehicles tv = {.o = o, .wh = wh, .want = vehicle_id, .access = access_token};
        const struct mtr_source_ops *sops;
        struct instance *inst;
        if (live_source(o, source, &sops, &inst, err) != 0)
            return -1;
        if (sops->list_vehicles(inst->state, access_token, on_listed_vehicle, &tv) != MTR_OK)
            return fail(err, OP_UNAUTHORIZED, NULL, "the access token was refused: %s",
                        inst->ctx.error);
        if (!tv.seen)
            return fail(err, OP_NOT_FOUND, "vehicleId",
                        "the access token does not grant vehicle %.64s", vehicle_id);
        req.access_token = access_token;
        req.refresh_token = refresh_token;
        req.keep_refresh = 1;
    }
    char msg[512];
    mtr_time now = clock_now(o->clk);
    int r = ledger_begin(&o->L) == MTR_OK ? subscribe_one(o, wh, &req, now, msg, sizeof msg) : -2;
    if (r >= 0 && ledger_commit(&o->L) != MTR_OK)
        r = -2;
    else if (r < 0)
        ledger_rollback(&o->L);
    if (r == -2)
        return store_fail(o, err);
    if (r < 0)
        return fail(err, OP_BAD_INPUT, NULL, "%s", msg);
    if (r == 1)
        log_msg(MTR_LOG_INFO, o->ws.v[wh].name, "vehicle %s subscribed (Smartcar API)", vehicle_id);
    *out = json_pack("{s:s,s:s}", "webhookId", o->ws.v[wh].rec.id, "vehicleId", vehicle_id);
    return *out ? 0 : oom(err);
}

/* Compares a presented secret with the expected one in time that does not
 * depend on where they differ. */
int ops_secret_equal(const char *given, const char *expected)
{
    unsigned char a[crypto_generichash_BYTES], b[crypto_generichash_BYTES];
    if (!given || !expected)
        return 0;
    crypto_generichash(a, sizeof a, (const unsigned char *)given, strlen(given), NULL, 0);
    crypto_generichash(b, sizeof b, (const unsigned char *)expected, strlen(expected), NULL, 0);
    return sodium_memcmp(a, b, sizeof a) == 0;
}

int ops_sc_unsubscribe(struct ops *o, const char *webhook_ref, const char *vehicle_id,
                       const char *management_token, json_t **out, struct op_error *err)
{
    size_t wh;
    int removed = 0;
    if (!ops_secret_equal(management_token, o->c->management_token))
        return fail(err, OP_UNAUTHORIZED, NULL,
                    "unsubscribing takes the application management token as the bearer");
    if (find(o, webhook_ref, "webhookId", &wh, err) != 0)
        return -1;
    if (ledger_unsubscribe(&o->L, o->ws.v[wh].rec.id, vehicle_id, clock_now(o->clk), &removed) !=
        MTR_OK)
        return store_fail(o, err);
    if (removed)
        log_msg(MTR_LOG_INFO, o->ws.v[wh].name, "vehicle %.128s unsubscribed (Smartcar API)",
                vehicle_id);
    *out = json_pack("{s:s}", "status", "success");
    return *out ? 0 : oom(err);
}

/* ---- deliveries --------------------------------------------------------------------------------
 */

struct delivery_list {
    struct ops *o;
    json_t *items;
    int with_attempts, with_payload;
    size_t n, limit;
    mtr_time last_tick;
    char last_id[UUID_LEN + 1];
    int more, failed;
};

static int attempt_row(void *arg, const struct mtr_attempt_row *a)
{
    json_t *list = arg;
    json_array_append_new(
        list, json_pack("{s:i,s:o,s:o,s:o,s:I}", "n", a->n, "at", iso_json(a->at), "httpStatus",
                        a->http_status ? json_integer(a->http_status) : json_null(), "error",
                        str_or_null(a->error), "latencyUs", (json_int_t)a->latency_us));
    return 0;
}

static const char *webhook_name_of(struct ops *o, const char *id)
{
    size_t i = webhooks_by_id(&o->ws, id);
    return i == SIZE_MAX ? id : o->ws.v[i].name;
}

static json_t *delivery_json(struct delivery_list *l, const struct mtr_delivery_row *d)
{
    json_t *j = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:i,s:I,s:i,s:o,s:o,s:o,s:o}", "id", d->id, "webhook",
        webhook_name_of(l->o, d->webhook_id), "webhookId", d->webhook_id, "sink", d->sink, "kind",
        d->kind == MTR_DELIVERY_TEST    ? "test"
        : d->kind == MTR_DELIVERY_EVENT ? "event"
                                        : "scheduled",
        "tick", iso_json(d->tick), "state", delivery_state_name(d->state), "vehicles", d->vehicles,
        "bytes", (json_int_t)d->body_len, "attemptCount", d->attempts, "lastStatus",
        d->last_status ? json_integer(d->last_status) : json_null(), "lastError",
        str_or_null(d->last_error), "createdAt", iso_json(d->created_at), "nextAttemptAt",
        iso_json(d->state == MTR_DELIVERY_PENDING ? d->next_attempt_at : 0));
    json_object_set_new(j, "payloadPruned", json_boolean(d->body == NULL));
    return j;
}

static int delivery_row(void *arg, const struct mtr_delivery_row *d)
{
    struct delivery_list *l = arg;
    if (l->limit && l->n == l->limit) {
        l->more = 1;
        return 1;
    }
    json_t *j = delivery_json(l, d);
    if (l->with_attempts) {
        json_t *attempts = json_array();
        if (ledger_list_attempts(&l->o->L, d->id, attempt_row, attempts) != MTR_OK)
            l->failed = 1;
        json_object_set_new(j, "attempts", attempts);
    }
    if (l->with_payload && d->body) {
        struct signer sg;
        struct payload_headers ph;
        json_object_set_new(j, "payload", json_stringn(d->body, d->body_len));
        if (signer_init(&sg, l->o->c->management_token, strlen(l->o->c->management_token)) == 0) {
            payload_headers(&ph, &sg, d->body, d->body_len, d->id);
            json_object_set_new(j, "signature", json_string(ph.signature));
            signer_free(&sg);
        }
    }
    json_array_append_new(l->items, j);
    l->n++;
    l->last_tick = d->tick;
    snprintf(l->last_id, sizeof l->last_id, "%s", d->id);
    return 0;
}

int ops_deliveries_list(struct ops *o, const struct delivery_filter *f, const struct page *p,
                        json_t **out, struct op_error *err)
{
    struct mtr_delivery_query q = {.state = f->state, .tick_from = f->from, .tick_to = f->to};
    char after[128] = "", key[160];
    size_t wh;
    if (f->webhook && find(o, f->webhook, "webhook", &wh, err) != 0)
        return -1;
    if (!f->webhook && refresh(o, err) != 0)
        return -1;
    if (f->webhook)
        q.webhook_id = o->ws.v[wh].rec.id;
    if (p && p->cursor) {
        char *dot;
        long long t;
        if (cursor_read(p->cursor, after, sizeof after, err) != 0)
            return -1;
        if (!(dot = strchr(after, '.')) || sscanf(after, "%lld", &t) != 1 ||
            strlen(dot + 1) != UUID_LEN)
            return fail(err, OP_BAD_INPUT, "cursor", "not a cursor this API handed out");
        q.after_tick = t;
        q.after_id = dot + 1;
    }
    struct delivery_list l = {.o = o,
                              .items = json_array(),
                              .with_attempts = f->with_attempts,
                              .limit = p && p->limit > PAGE_MAX * 1000 ? PAGE_MAX * 1000
                                                                       : page_limit(p)};
    if (p && p->limit > PAGE_MAX) /* the command line reads more than a page at once */
        l.limit = p->limit;
    q.limit = l.limit + 1;
    if (ledger_deliveries_query(&o->L, &q, delivery_row, &l) != MTR_OK || l.failed) {
        json_decref(l.items);
        return store_fail(o, err);
    }
    snprintf(key, sizeof key, "%lld.%s", (long long)l.last_tick, l.last_id);
    *out = paged(l.items, key, l.more);
    return *out ? 0 : oom(err);
}

int ops_delivery_get(struct ops *o, const char *id, json_t **out, struct op_error *err)
{
    struct delivery_list l = {.o = o, .items = json_array(), .with_attempts = 1, .with_payload = 1};
    if (refresh(o, err) != 0 || ledger_delivery_get(&o->L, id, delivery_row, &l) != MTR_OK) {
        json_decref(l.items);
        return err->kind ? -1 : store_fail(o, err);
    }
    if (json_array_size(l.items) == 0) {
        json_decref(l.items);
        return fail(err, OP_NOT_FOUND, "id", "no delivery %.64s", id);
    }
    *out = json_incref(json_array_get(l.items, 0));
    json_decref(l.items);
    return 0;
}

struct found_delivery {
    char webhook_id[UUID_LEN + 1];
    int found, pruned;
};

static int find_delivery(void *arg, const struct mtr_delivery_row *d)
{
    struct found_delivery *f = arg;
    snprintf(f->webhook_id, sizeof f->webhook_id, "%s", d->webhook_id);
    f->found = 1;
    f->pruned = d->body == NULL;
    return 1;
}

int ops_replay(struct ops *o, const char *delivery_id, const char *ref, int from_state,
               json_t **out, struct op_error *err)
{
    size_t wh = SIZE_MAX;
    struct found_delivery fd = {0};
    if (from_state != MTR_DELIVERY_FAILED && from_state != MTR_DELIVERY_DELIVERED)
        return fail(err, OP_BAD_INPUT, "state", "replay takes failed or delivered deliveries");
    if (ref && find(o, ref, "webhook", &wh, err) != 0)
        return -1;
    if (delivery_id) {
        if (refresh(o, err) != 0)
            return -1;
        if (ledger_delivery_get(&o->L, delivery_id, find_delivery, &fd) != MTR_OK)
            return store_fail(o, err);
        if (!fd.found)
            return fail(err, OP_NOT_FOUND, "id", "no delivery %.64s", delivery_id);
        if (fd.pruned)
            return fail(err, OP_CONFLICT, "id",
                        "delivery %s can no longer be sent: its payload was pruned (retention)",
                        delivery_id);
        wh = webhooks_by_id(&o->ws, fd.webhook_id);
    }
    if (wh != SIZE_MAX && !o->ws.v[wh].gone && o->ws.v[wh].rec.state != MTR_WEBHOOK_ACTIVE) {
        const struct webhook *w = &o->ws.v[wh];
        int disabled = w->rec.state == MTR_WEBHOOK_DISABLED;
        return fail(err, OP_CONFLICT, NULL,
                    "webhook %s is %s; %s it first (metronome webhook %s %s)", w->name,
                    webhook_state_name(w->rec.state), disabled ? "enable" : "verify",
                    disabled ? "enable" : "verify", w->name);
    }
    uint64_t n = 0;
    const char *webhook_id = delivery_id ? NULL : o->ws.v[wh].rec.id;
    if (ledger_replay(&o->L, delivery_id, webhook_id, from_state, clock_now(o->clk), &n) != MTR_OK)
        return store_fail(o, err);
    if (n)
        log_msg(MTR_LOG_INFO, wh == SIZE_MAX ? NULL : o->ws.v[wh].name,
                "%llu delivery(ies) queued again by an operator", (unsigned long long)n);
    *out = json_pack("{s:I}", "replayed", (json_int_t)n);
    return *out ? 0 : oom(err);
}

int ops_ledger_totals(struct ops *o, const char *ref, json_t **out, struct op_error *err)
{
    size_t wh;
    struct mtr_store_stats st;
    if (ref && find(o, ref, "webhook", &wh, err) != 0)
        return -1;
    if (ledger_stats(&o->L, ref ? o->ws.v[wh].rec.id : NULL, &st) != MTR_OK)
        return store_fail(o, err);
    *out = json_pack(
        "{s:{s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I},s:I,s:I,s:I}", "jobs", "due",
        (json_int_t)st.jobs[MTR_JOB_DUE], "fetched", (json_int_t)st.jobs[MTR_JOB_FETCHED], "sent",
        (json_int_t)st.jobs[MTR_JOB_SENT], "missed", (json_int_t)st.jobs[MTR_JOB_MISSED],
        "deliveries", "pending", (json_int_t)st.deliveries[MTR_DELIVERY_PENDING], "delivered",
        (json_int_t)st.deliveries[MTR_DELIVERY_DELIVERED], "failed",
        (json_int_t)st.deliveries[MTR_DELIVERY_FAILED], "attempts", (json_int_t)st.attempts,
        "retries", (json_int_t)st.retries, "subscriptions", (json_int_t)st.subscriptions);
    return *out ? 0 : oom(err);
}

/* ---- vehicles, status, metrics ------------------------------------------------------------------
 */

static int vehicle_row(void *arg, const struct mtr_vehicle_row *v)
{
    int live = v->access_token || v->refresh_token;
    json_array_append_new(
        arg, json_pack("{s:s,s:s,s:b,s:b,s:o}", "vehicleId", v->id, "source",
                       v->source ? v->source : "", "live", live, "needsReauthentication",
                       v->needs_reauth, "accessExpiresAt", iso_json(live ? v->access_expires : 0)));
    return 0;
}

int ops_vehicles_list(struct ops *o, int needs_reauth_only, const struct page *p, json_t **out,
                      struct op_error *err)
{
    char after[160] = "";
    size_t limit = page_limit(p);
    if (p && p->cursor && cursor_read(p->cursor, after, sizeof after, err) != 0)
        return -1;
    json_t *items = json_array();
    if (ledger_vehicles_list(&o->L, needs_reauth_only, after[0] ? after : NULL, limit + 1,
                             vehicle_row, items) != MTR_OK) {
        json_decref(items);
        return store_fail(o, err);
    }
    *out = page_of(items, limit, "vehicleId");
    return *out ? 0 : oom(err);
}

static json_t *counters_json(const struct engine_stats *s)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "ticks",
                     (json_int_t)s->ticks, "jobs", (json_int_t)s->jobs, "jobsMissed",
                     (json_int_t)s->jobs_missed, "fetchRetries", (json_int_t)s->fetch_retries,
                     "deliveries", (json_int_t)s->deliveries, "delivered", (json_int_t)s->delivered,
                     "failed", (json_int_t)s->failed, "attempts", (json_int_t)s->attempts,
                     "retries", (json_int_t)s->retries, "webhooksDisabled", (json_int_t)s->disabled,
                     "deferred", (json_int_t)s->deferred, "superseded", (json_int_t)s->superseded);
}

/* The receivers deliveries were deferred for: how many, and how long the
 * origin still waits (0: not now). */
static json_t *waits_json(const struct engine_status *st)
{
    json_t *list = json_array();
    for (size_t i = 0; i < st->origins.n; i++) {
        const struct origin_wait *w = &st->origins.v[i];
        mtr_time left = w->until > st->now ? w->until - st->now : 0;
        json_array_append_new(list, json_pack("{s:s,s:I,s:o,s:I,s:i}", "origin", w->origin,
                                              "deferred", (json_int_t)w->deferred, "until",
                                              iso_json(w->until), "waitSeconds", (json_int_t)left,
                                              "lastStatus", w->last_status));
    }
    return list;
}

/* The next tick of each webhook, soonest first. */
static json_t *next_ticks_json(struct ops *o, mtr_time now)
{
    json_t *list = json_array();
    struct diag d;
    for (size_t i = 0; i < o->ws.n; i++) {
        mtr_time next;
        const struct webhook *w = &o->ws.v[i];
        if (w->gone || webhook_next_tick(w->cfg, now, &next, &d) != 0)
            continue;
        size_t k = 0;
        while (k < json_array_size(list) &&
               strcmp(json_string_value(json_object_get(json_array_get(list, k), "tick")),
                      json_string_value(iso_json(next))) <= 0)
            k++;
        json_array_insert_new(list, k,
                              json_pack("{s:s,s:o,s:s}", "webhook", w->name, "tick", iso_json(next),
                                        "state", webhook_state_name(w->rec.state)));
    }
    return list;
}

static int node_row(void *arg, const struct mtr_node_row *n)
{
    json_array_append_new(
        arg, json_pack("{s:s,s:s,s:o,s:o,s:I}", "id", n->id, "host", n->host ? n->host : "",
                       "startedAt", iso_json(n->started_at), "lastHeartbeat",
                       iso_json(n->last_seen), "leasesHeld", (json_int_t)n->leases));
    return 0;
}

/* The nodes that said they were alive in the last minute of wall time (this
 * one, where the store keeps no list, or in a virtual run). */
static json_t *nodes_json(struct ops *o, const struct engine_status *st, const char *host)
{
    json_t *list = json_array();
    if (ledger_has_nodes(&o->L) &&
        ledger_nodes_list(&o->L, (mtr_time)time(NULL) - 60, st->now, node_row, list) == MTR_OK &&
        json_array_size(list))
        return list;
    json_array_clear(list);
    json_array_append_new(list, json_pack("{s:s,s:s,s:o,s:o,s:I}", "id", st->owner, "host", host,
                                          "startedAt", iso_json((mtr_time)st->started_wall),
                                          "lastHeartbeat", iso_json(st->now), "leasesHeld",
                                          (json_int_t)st->in_flight));
    return list;
}

int ops_status(struct ops *o, json_t **out, struct op_error *err)
{
    struct engine_status st;
    char host[64] = "";
    if (!o->engine)
        return fail(err, OP_UNAVAILABLE, NULL, "metronome is not running");
    if (refresh(o, err) != 0)
        return -1;
    engine_get_status(o->engine, &st);
    gethostname(host, sizeof host - 1);
    json_t *errors = json_array();
    for (size_t i = 0; i < st.n_errors; i++)
        json_array_append_new(errors,
                              json_pack("{s:o,s:s,s:s}", "at", iso_json(st.errors[i].at), "origin",
                                        st.errors[i].origin, "message", st.errors[i].text));
    json_t *totals = NULL;
    struct op_error ignored;
    ops_ledger_totals(o, NULL, &totals, &ignored);
    time_t now_wall = time(NULL);
    json_t *nodes = nodes_json(o, &st, host);
    *out = json_pack("{s:s,s:o,s:I,s:{s:o,s:b},s:b,s:b,s:o,s:I,s:I,s:o,s:o,s:o,s:o,s:o}", "version",
                     METRONOME_VERSION, "startedAt", iso_json((mtr_time)st.started_wall),
                     "uptimeSeconds", (json_int_t)(now_wall - st.started_wall), "clock", "now",
                     iso_json(st.now), "virtual", st.virtual_clock, "ready", st.ready, "stopping",
                     st.stopping, "nodes", nodes, "inFlight", (json_int_t)st.in_flight,
                     "queuedOutcomes", (json_int_t)st.queued, "counters", counters_json(&st.stats),
                     "nextTicks", next_ticks_json(o, st.now), "lastErrors", errors, "ledger",
                     totals ? totals : json_null(), "waits", waits_json(&st));
    return *out ? 0 : oom(err);
}

int ops_metrics(struct ops *o, char **text, struct op_error *err)
{
    struct metrics_gauges g = {0};
    struct mtr_store_stats st;
    struct engine_status es;
    if (!o->engine)
        return fail(err, OP_UNAVAILABLE, NULL, "metronome is not running");
    if (refresh(o, err) != 0)
        return -1;
    if (ledger_stats(&o->L, NULL, &st) != MTR_OK)
        return store_fail(o, err);
    memcpy(g.jobs, st.jobs, sizeof g.jobs);
    memcpy(g.deliveries, st.deliveries, sizeof g.deliveries);
    g.subscriptions = st.subscriptions;
    for (size_t i = 0; i < o->ws.n; i++)
        if (!o->ws.v[i].gone && o->ws.v[i].rec.state >= 0 && o->ws.v[i].rec.state < 3)
            g.webhooks[o->ws.v[i].rec.state]++;
    engine_get_status(o->engine, &es);
    g.in_flight = es.in_flight;
    g.queued = es.queued;
    g.uptime_s = difftime(time(NULL), es.started_wall);
    g.origins = &es.origins;
    g.now = es.now;
    *text = metrics_render(engine_metrics(o->engine), &g, METRONOME_VERSION);
    return *text ? 0 : oom(err);
}

int ops_ready(struct ops *o, struct op_error *err)
{
    struct engine_status es;
    mtr_time at;
    int found;
    if (!o->engine)
        return fail(err, OP_UNAVAILABLE, NULL, "metronome is not running");
    engine_get_status(o->engine, &es);
    if (es.stopping)
        return fail(err, OP_UNAVAILABLE, NULL, "stopping");
    if (!es.ready)
        return fail(err, OP_UNAVAILABLE, NULL, "not ready: %s",
                    es.n_errors ? es.errors[es.n_errors - 1].text : "starting");
    if (ledger_next_due(&o->L, &at, &found) != MTR_OK)
        return fail(err, OP_UNAVAILABLE, NULL, "the store does not answer: %s",
                    ledger_error(&o->L));
    return 0;
}
