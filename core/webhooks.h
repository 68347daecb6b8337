/* The webhooks a process knows: those of the pipeline file and those created
 * through the API, each with its row from the ledger. The ledger is the truth
 * and this set a copy of it, refreshed by whoever holds it (the engine about
 * every second and before it decides; the API and the CLI before each
 * operation), so a change made by any process is seen by all of them. Entries
 * keep their index for the life of the set: the engine's timers and flights
 * refer to a webhook by index, and a webhook deleted or dropped from the
 * pipeline stays as a `gone` entry. */
#ifndef MTR_WEBHOOKS_H
#define MTR_WEBHOOKS_H

#include "config.h"
#include "ledger.h"

enum webhook_origin {
    ORIGIN_PIPELINE = 0,
    ORIGIN_API = 1,
};

struct send_request;

struct webhook {
    const struct webhook_cfg *cfg; /* NULL when gone or its definition no longer loads */
    struct webhook_cfg *own;       /* an API webhook's definition, owned */
    char *definition;              /* an API webhook's JSON definition as stored */
    char *name;
    int origin; /* enum webhook_origin */
    int gone;   /* deleted, or no longer in the pipeline file */
    struct webhook_rec rec;
    mtr_time planned; /* the engine's next tick for it (0: none) */
    int changed;      /* its definition was rebuilt: the engine plans its ticks again */
    int noted_unverified;
    unsigned checked;         /* the engine's batch that last read its state again */
    char pending_disable[32]; /* a disable the store was away for (its reason), or "" */
    /* the engine's recovery without an operator (recovery.c) */
    struct send_request *probe; /* the verify challenge in flight, or NULL */
    mtr_time last_probe;        /* when the last one was sent (0: none since start) */
    int probation_over;         /* delivered since it was recovered */
};

struct webhook_set {
    struct webhook *v; /* grows: hold indices, not pointers into it */
    size_t n, cap;
    /* definitions of API webhooks that changed or went: kept until the set is
     * freed, so a delivery in flight can still read its callback URI */
    struct webhook_cfg **retired;
    size_t n_retired;
};

/* Reads every webhook row and brings the set up to date: rows updated, new
 * webhooks appended (an API webhook's definition built as a pipeline one
 * would be), missing ones marked gone. *added counts the new entries (may be
 * NULL). Returns 0, or -1 with d set (the store failed). */
int webhooks_refresh(struct webhook_set *s, struct config *c, struct ledger *L,
                     const struct clock *clk, size_t *added, struct diag *d);

/* Re-reads one entry's row (before a decision that depends on its state). */
int webhooks_reread(struct webhook_set *s, size_t i, struct ledger *L, struct diag *d);

/* The index of the live webhook whose id or name is ref, or SIZE_MAX. */
size_t webhooks_find(const struct webhook_set *s, const char *ref);
/* By id only (gone entries included), or SIZE_MAX. */
size_t webhooks_by_id(const struct webhook_set *s, const char *id);

/* The JSON definition an API webhook is stored with: the body's fields in
 * the API's names. Returns a string owned by the caller, or NULL. */
char *webhook_definition_json(const struct json_t *body);

void webhooks_free(struct webhook_set *s);

#endif
