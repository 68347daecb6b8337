/* The engine's shared lookups: plugins by index, webhook names, the store's
 * refusal, and the error ring that `status` shows. */
#include "engine_state.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sink_name(const struct engine *e, size_t i)
{
    return e->c->sinks[i].name;
}

const struct mtr_sink_ops *sink_ops(const struct engine *e, size_t i)
{
    return e->c->sinks[i].inst->ctx.pf->desc.sink;
}

void *sink_state(const struct engine *e, size_t i)
{
    return e->c->sinks[i].inst->state;
}

const struct mtr_source_ops *source_ops(const struct engine *e, size_t i)
{
    return e->c->sources[i].inst->ctx.pf->desc.source;
}

size_t find_source(const struct engine *e, const char *name, size_t fallback)
{
    for (size_t i = 0; name && i < e->c->n_sources; i++)
        if (strcmp(e->c->sources[i].name, name) == 0)
            return i;
    return fallback;
}

size_t find_sink(const struct engine *e, const char *name)
{
    for (size_t i = 0; i < e->c->n_sinks; i++)
        if (strcmp(e->c->sinks[i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

const char *wh_name(const struct engine *e, size_t i)
{
    return i < e->ws.n ? e->ws.v[i].name : "?";
}

int store_failed(struct engine *e, const char *what)
{
    if (ledger_transient(&e->L)) { /* the store will be back: hold on to everything */
        if (!e->store_away)
            engine_note_error(e, "store", "%s: %s; trying again, nothing is lost", what,
                              ledger_error(&e->L));
        if (!e->store_away)
            log_msg(MTR_LOG_WARN, "store", "%s: %s; trying again, nothing is lost", what,
                    ledger_error(&e->L));
        e->store_away = 1;
        return -1;
    }
    if (!e->failed) {
        diag_set(e->d, "store: %s: %s", what, ledger_error(&e->L));
        engine_note_error(e, "store", "%s: %s", what, ledger_error(&e->L));
    }
    e->failed = 1;
    return -1;
}

int engine_reread(struct engine *e, size_t i)
{
    struct diag d;
    if (webhooks_reread(&e->ws, i, &e->L, &d) != 0)
        return store_failed(e, "read webhook");
    return 0;
}

/* Whether webhook i is active now: a cached "not active" is read again from
 * the ledger first, so an operator's enable counts at once. */
int engine_active_now(struct engine *e, size_t i)
{
    if (i == SIZE_MAX)
        return 0;
    struct webhook *w = &e->ws.v[i];
    if (w->rec.state != MTR_WEBHOOK_ACTIVE && w->checked != e->gen) {
        w->checked = e->gen; /* once a batch */
        if (engine_reread(e, i) != 0)
            return 0;
    }
    return !e->ws.v[i].gone && e->ws.v[i].rec.state == MTR_WEBHOOK_ACTIVE;
}

void flight_free(struct flight *f)
{
    free(f->body);
    free(f->ci.response);
    free(f);
}

int start_plugins(struct config *c, struct diag *d)
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

void engine_complete(struct engine *e, struct send_request *r)
{
    pthread_mutex_lock(&e->inbox.mu);
    r->done = 1;
    pthread_cond_broadcast(&e->inbox.done);
    pthread_mutex_unlock(&e->inbox.mu);
}

void engine_note_error(struct engine *e, const char *origin, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&e->status_mu);
    struct engine_status *s = &e->status;
    if (s->n_errors == STATUS_ERRORS) {
        memmove(&s->errors[0], &s->errors[1], (STATUS_ERRORS - 1) * sizeof s->errors[0]);
        s->n_errors--;
    }
    s->errors[s->n_errors].at = clock_now(e->clk);
    snprintf(s->errors[s->n_errors].origin, sizeof s->errors[0].origin, "%s", origin ? origin : "");
    snprintf(s->errors[s->n_errors].text, sizeof s->errors[0].text, "%s", text);
    s->n_errors++;
    pthread_mutex_unlock(&e->status_mu);
}
