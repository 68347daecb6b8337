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

/* Writes the queued outcomes now, in one transaction. While the store is
 * away (ledger_transient) they stay queued, to be written when it is back. */
void outcomes_flush(struct engine *e);

/* Disables webhook wh (retries exhausted, 410); while the store is away the
 * webhook keeps it as pending_disable, done again when the store is back. */
void outcomes_disable(struct engine *e, size_t wh, const char *reason, mtr_time now);

#endif
