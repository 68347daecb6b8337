/* Stage four of the engine: outcomes. What the courier hands back (and what
 * the delivery stage could not send) becomes attempts in the ledger, written
 * in batches: delivered, a retry scheduled on the retry curve (Retry-After
 * honoured within the window), or failed - disabling the webhook when its
 * retries are exhausted or its receiver answered 410. A verify or test
 * completes its request here. */
#ifndef MTR_OUTCOMES_H
#define MTR_OUTCOMES_H

#include "engine_state.h"

/* Handles every outcome the courier has (waiting up to wait_ms for one when
 * something is in flight) and every flight on e->settled. */
void outcomes_collect(struct engine *e, int wait_ms);

/* Writes the queued outcomes when enough have queued, 250 ms passed, or
 * nothing is in flight any more. */
void outcomes_maybe_flush(struct engine *e);

/* Writes the queued outcomes now, in one transaction. */
void outcomes_flush(struct engine *e);

#endif
