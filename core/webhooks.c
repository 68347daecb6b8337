/* The webhook set: the ledger's webhook rows joined with their definitions
 * (the pipeline's, or an API webhook's JSON definition stored with its row). */
#include "webhooks.h"
#include "log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct row_copy {
    struct webhook_rec rec;
    char *name;
    char *definition;
};

struct rows {
    struct row_copy *v;
    size_t n, cap;
    int oom;
};

static int collect(void *arg, const struct mtr_webhook_row *w)
{
    struct rows *r = arg;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        struct row_copy *p = realloc(r->v, cap * sizeof *p);
        if (!p)
            return r->oom = 1;
        r->v = p;
        r->cap = cap;
    }
    struct row_copy *c = &r->v[r->n];
    memset(c, 0, sizeof *c);
    ledger_copy_row(w, &c->rec);
    c->name = strdup(w->name ? w->name : "");
    c->definition = strdup(w->definition ? w->definition : "");
    if (!c->name || !c->definition) {
        free(c->name);
        free(c->definition);
        return r->oom = 1;
    }
    r->n++;
    return 0;
}

static void rows_free(struct rows *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].name);
        free(r->v[i].definition);
    }
    free(r->v);
}

static int is_api_definition(const char *def)
{
    return def[0] == '{';
}

/* Builds an API webhook's definition; NULL (logged) when it no longer loads,
 * say because a sink it names left the pipeline. */
static struct webhook_cfg *build_api(struct config *c, const struct clock *clk, const char *name,
                                     const char *def)
{
    json_error_t je;
    json_t *j = json_loads(def, 0, &je);
    struct webhook_cfg *w = calloc(1, sizeof *w);
    struct diag d;
    char what[160];
    snprintf(what, sizeof what, "webhook '%.64s' (created through the API)", name);
    if (!j || !w || config_webhook_from_json(c, j, what, clk, w, &d) != 0) {
        log_msg(MTR_LOG_ERROR, name, "%s", j && w ? d.text : "its stored definition is not JSON");
        free(w);
        w = NULL;
    }
    json_decref(j);
    return w;
}

static void free_cfg(struct webhook_cfg *c)
{
    if (c) {
        webhook_cfg_free(c);
        free(c);
    }
}

/* Puts an API webhook's definition aside (or frees it when out of memory:
 * nothing better can be done). */
static void retire(struct webhook_set *s, struct webhook_cfg *c)
{
    struct webhook_cfg **p = c ? realloc(s->retired, (s->n_retired + 1) * sizeof *p) : NULL;
    if (!p) {
        free_cfg(c);
        return;
    }
    s->retired = p;
    s->retired[s->n_retired++] = c;
}

static void drop_definition(struct webhook_set *s, struct webhook *w)
{
    if (s)
        retire(s, w->own);
    else
        free_cfg(w->own);
    w->own = NULL;
    free(w->definition);
    w->definition = NULL;
    w->cfg = NULL;
}

/* Points entry w at its definition: the pipeline's by name, or its own. */
static void attach(struct webhook_set *s, struct webhook *w, struct config *c,
                   const struct clock *clk, const struct row_copy *row)
{
    if (!is_api_definition(row->definition)) {
        w->origin = ORIGIN_PIPELINE;
        w->cfg = config_webhook(c, w->name); /* NULL: no longer in the file */
        return;
    }
    w->origin = ORIGIN_API;
    if (w->definition && strcmp(w->definition, row->definition) == 0)
        return; /* unchanged */
    drop_definition(s, w);
    w->definition = strdup(row->definition);
    w->own = build_api(c, clk, w->name, row->definition);
    w->cfg = w->own;
    w->changed = 1;
}

static int append(struct webhook_set *s)
{
    if (s->n < s->cap)
        return 0;
    size_t cap = s->cap ? 2 * s->cap : 16;
    struct webhook *p = realloc(s->v, cap * sizeof *p);
    if (!p)
        return -1;
    s->v = p;
    s->cap = cap;
    return 0;
}

int webhooks_refresh(struct webhook_set *s, struct config *c, struct ledger *L,
                     const struct clock *clk, size_t *added, struct diag *d)
{
    struct rows r = {0};
    if (added)
        *added = 0;
    if (ledger_list_webhooks(L, collect, &r) != 0 || r.oom) {
        rows_free(&r);
        return diag_set(d, "store: %s", r.oom ? "out of memory" : ledger_error(L));
    }
    for (size_t i = 0; i < s->n; i++)
        s->v[i].gone = 1; /* until its row is seen */
    int rc = 0;
    for (size_t k = 0; k < r.n && rc == 0; k++) {
        size_t i = webhooks_by_id(s, r.v[k].rec.id);
        if (i == SIZE_MAX) {
            if (append(s) != 0) {
                rc = diag_set(d, "out of memory");
                break;
            }
            i = s->n++;
            memset(&s->v[i], 0, sizeof s->v[i]);
            s->v[i].name = r.v[k].name;
            r.v[k].name = NULL;
            if (added)
                (*added)++;
        }
        struct webhook *w = &s->v[i];
        w->rec = r.v[k].rec;
        attach(s, w, c, clk, &r.v[k]);
        w->gone = w->cfg == NULL;
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].gone && s->v[i].origin == ORIGIN_API && s->v[i].own)
            drop_definition(s, &s->v[i]);
    rows_free(&r);
    return rc;
}

int webhooks_reread(struct webhook_set *s, size_t i, struct ledger *L, struct diag *d)
{
    struct webhook_rec rec;
    int found;
    if (ledger_get_webhook(L, s->v[i].rec.id, &rec, &found) != 0)
        return diag_set(d, "store: %s", ledger_error(L));
    if (found)
        s->v[i].rec = rec;
    else
        s->v[i].gone = 1;
    return 0;
}

size_t webhooks_find(const struct webhook_set *s, const char *ref)
{
    for (size_t i = 0; ref && i < s->n; i++)
        if (!s->v[i].gone && (strcmp(s->v[i].rec.id, ref) == 0 || strcmp(s->v[i].name, ref) == 0))
            return i;
    return SIZE_MAX;
}

size_t webhooks_by_id(const struct webhook_set *s, const char *id)
{
    for (size_t i = 0; id && i < s->n; i++)
        if (strcmp(s->v[i].rec.id, id) == 0)
            return i;
    return SIZE_MAX;
}

char *webhook_definition_json(const struct json_t *body)
{
    return json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
}

void webhooks_free(struct webhook_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        drop_definition(NULL, &s->v[i]);
        free(s->v[i].name);
    }
    for (size_t i = 0; i < s->n_retired; i++)
        free_cfg(s->retired[i]);
    free(s->retired);
    free(s->v);
    memset(s, 0, sizeof *s);
}
