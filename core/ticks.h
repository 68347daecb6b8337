/* Stage one of the engine: ticks. The heap of next ticks, one per webhook;
 * a due tick becomes its jobs in the ledger (one per subscribed vehicle,
 * before anything is fetched), or missed jobs while the webhook is disabled;
 * ticks that passed while the daemon was down follow catch_up. */
#ifndef MTR_TICKS_H
#define MTR_TICKS_H

#include "engine_state.h"

/* At start: catches up every active webhook and plans every next tick.
 * Returns 0, or -1 with e->d set. */
int ticks_start(struct engine *e);

/* Plans webhook i's next tick after now: a webhook new to the set, or one
 * whose definition changed (an earlier plan is dropped). 0 or -1 (memory). */
int ticks_plan(struct engine *e, size_t i, mtr_time now);

/* Fires every tick due at now. Returns how many, or -1 (store failed). */
int ticks_fire(struct engine *e, mtr_time now);

/* The earliest planned tick, or 0 when none. */
mtr_time ticks_next(const struct engine *e);

#endif
