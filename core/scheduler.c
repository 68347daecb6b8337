/* Scheduler: one heap entry per webhook holding its next tick; pop the
 * earliest, report it, push that webhook's following tick. */
#include "scheduler.h"
#include "heap.h"
#include "scalar.h"

#include <string.h>

int webhook_next_tick(const struct webhook_cfg *w, mtr_time after, mtr_time *next, struct diag *d)
{
    const struct mtr_cadence_ops *ops = w->cadence->ctx.pf->desc.cadence;
    /* a policy's answer is checked: strictly later, and within the instants
     * metronome can write (up to 9999-12-31T23:59:59Z) */
    if (after >= MTR_TIME_MAX || ops->next_fire(w->cadence->state, after, next) != MTR_OK ||
        *next <= after || *next > MTR_TIME_MAX) {
        char when[32];
        format_iso8601(after, when, sizeof when);
        return diag_set(d, "webhook '%s': cadence '%s' has no tick after %s", w->name,
                        w->cadence_policy, when);
    }
    return 0;
}

int schedule_plan(const struct config *c, const char *only, mtr_time from, size_t count, tick_fn fn,
                  void *arg, struct diag *d)
{
    struct heap h;
    mtr_time next;
    int rc = 0;
    heap_init(&h);
    for (size_t i = 0; i < c->n_webhooks; i++) {
        const struct webhook_cfg *w = &c->webhooks[i];
        if (only && strcmp(only, w->name) != 0)
            continue;
        if (webhook_next_tick(w, from, &next, d) != 0 || heap_push(&h, next, i) != 0) {
            rc = -1;
            goto out;
        }
    }
    for (size_t printed = 0; printed < count; printed++) {
        struct heap_item it;
        if (heap_pop(&h, &it) != 0)
            break;
        const struct webhook_cfg *w = &c->webhooks[it.id];
        if (fn(arg, w, it.at) != 0)
            break;
        /* a policy without a further tick simply drops out of the plan */
        struct diag ignored;
        if (webhook_next_tick(w, it.at, &next, &ignored) == 0 && heap_push(&h, next, it.id) != 0) {
            rc = diag_set(d, "out of memory");
            goto out;
        }
    }
out:
    heap_free(&h);
    return rc;
}
