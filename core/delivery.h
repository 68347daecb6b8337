/* Stage three of the engine: handing payloads to the courier. Deliveries
 * stored by the job stage (e->ready) are sent once their transaction has
 * committed; due deliveries (retries, replays, a dead node's leases) are
 * claimed from the ledger and sent; and one-shot sends - a verify challenge,
 * a test payload - become flights on the same courier. Nothing here waits for
 * an outcome: outcomes come back to the loop through the courier. */
#ifndef MTR_DELIVERY_H
#define MTR_DELIVERY_H

#include "engine_state.h"

/* Sends what the job stage stored (or drops it when its transaction failed). */
void delivery_launch_ready(struct engine *e);

/* Claims due deliveries and sends them. Returns how many were claimed, or -1
 * (store failed). Deliveries whose webhook or sink is gone are put on
 * e->settled with a failed outcome, for the outcome stage. */
int delivery_dispatch(struct engine *e, mtr_time now);

/* Starts a verify or a test: r's flights go to the courier, or r is
 * completed at once when there is nothing to send. */
void delivery_start_send(struct engine *e, struct send_request *r, mtr_time now);

#endif
