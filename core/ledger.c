/* Ledger: store start-up, webhook synchronisation, disable. */
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

static int copy_row(void *arg, const struct mtr_webhook_row *w)
{
    ledger_copy_row(w, arg);
    return 1;
}

int ledger_list_webhooks(struct ledger *L, mtr_webhook_fn fn, void *arg)
{
    return L->ops->webhook_list(L->st, NULL, fn, arg) == MTR_OK ? 0 : -1;
}

int ledger_get_webhook(struct ledger *L, const char *name, struct webhook_rec *out, int *found)
{
    out->id[0] = '\0';
    if (L->ops->webhook_list(L->st, name, copy_row, out) != MTR_OK)
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

int ledger_disable(struct ledger *L, const char *webhook_id, const char *reason, mtr_time now)
{
    uint64_t failed, missed;
    if (L->ops->begin(L->st) != MTR_OK)
        return -1;
    if (L->ops->webhook_set_state(L->st, webhook_id, MTR_WEBHOOK_DISABLED, reason, now) != MTR_OK ||
        L->ops->fail_pending(L->st, webhook_id, reason, now, &failed) != MTR_OK ||
        L->ops->jobs_miss_pending(L->st, webhook_id, &missed) != MTR_OK) {
        L->ops->rollback(L->st);
        return -1;
    }
    return L->ops->commit(L->st) == MTR_OK ? 0 : -1;
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
