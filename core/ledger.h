/* The ledger as the core sees it: the store plugin started and reached
 * through its ops, with the pipeline's webhooks synchronised into it (a
 * YAML-declared webhook keeps its UUID by name; a changed callback URI makes
 * it unverified again). Every guarantee of SPEC section 7 rests on the store;
 * this module only adds the core's bookkeeping around it. */
#ifndef MTR_LEDGER_H
#define MTR_LEDGER_H

#include "config.h"
#include "diag.h"
#include "sign.h"

struct ledger {
    struct instance *inst; /* the config's store instance (not owned) */
    const struct mtr_store_ops *ops;
    void *st;
};

/* A webhook's row, copied out of the store. */
struct webhook_rec {
    char id[UUID_LEN + 1];
    int state; /* enum mtr_webhook_state */
    char reason[32];
    mtr_time state_at;
    mtr_time active_from;
    mtr_time last_tick;
};

/* Starts the store plugin (opening and migrating its database). */
int ledger_open(struct ledger *L, const struct config *c, struct diag *d);
/* Starts it for a command that only reads: nothing is created, upgraded or
 * written, so a read-only ledger file can be read. */
int ledger_open_read_only(struct ledger *L, const struct config *c, struct diag *d);

/* The store's last error message. */
const char *ledger_error(const struct ledger *L);

/* Upserts every webhook of the pipeline and reads their rows back into out
 * (c->n_webhooks entries, in pipeline order). */
int ledger_sync_webhooks(struct ledger *L, const struct config *c, mtr_time now,
                         struct webhook_rec *out, struct diag *d);

/* Reads one webhook by name or id; *found = 0 when there is none. */
int ledger_get_webhook(struct ledger *L, const char *name, struct webhook_rec *out, int *found);

/* Every webhook row, in name order. */
int ledger_list_webhooks(struct ledger *L, mtr_webhook_fn fn, void *arg);
void ledger_copy_row(const struct mtr_webhook_row *w, struct webhook_rec *out);

/* Disables a webhook: its pending deliveries become failed and its due jobs
 * missed, in one transaction. */
int ledger_disable(struct ledger *L, const char *webhook_id, const char *reason, mtr_time now);

/* The store's integrity check: fn is called per problem; *problems counts them. */
int ledger_check(struct ledger *L, int (*fn)(void *, const char *), void *arg, uint64_t *problems,
                 struct diag *d);

const char *webhook_state_name(int state);

#endif
