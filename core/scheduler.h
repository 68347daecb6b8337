/* The scheduler: turns webhooks' cadence policies into a time-ordered stream
 * of ticks. `plan` prints that stream; the delivery engine consumes it. */
#ifndef MTR_SCHEDULER_H
#define MTR_SCHEDULER_H

#include "config.h"
#include "diag.h"

/* The next tick of a webhook strictly after `after`. Returns 0, or -1 with a
 * message in d when the policy has no further tick. */
int webhook_next_tick(const struct webhook_cfg *w, mtr_time after, mtr_time *next, struct diag *d);

typedef int (*tick_fn)(void *arg, const struct webhook_cfg *w, mtr_time tick);

/* Calls fn for the next `count` ticks strictly after `from` across the given
 * webhooks (all when only is NULL), in time order; ties in declaration order.
 * Stops early if fn returns non-zero. Returns 0 or -1 (d). */
int schedule_plan(const struct config *c, const char *only, mtr_time from, size_t count, tick_fn fn,
                  void *arg, struct diag *d);

#endif
