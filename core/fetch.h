/* Stage two of the engine: jobs. Due jobs are claimed under a lease, each
 * vehicle's data is fetched through its source (tokens decrypted for the
 * call, refreshed ones stored before use), and fetched data becomes signed
 * payloads stored with their deliveries - which are leased to this node at
 * once and left on e->ready for the delivery stage to send once their
 * transaction has committed. */
#ifndef MTR_FETCH_H
#define MTR_FETCH_H

#include "engine_state.h"

/* Claims and processes one batch of due jobs. Returns how many were claimed,
 * or -1 (the store failed, or stored credentials do not open: e->d says). */
int fetch_jobs(struct engine *e, mtr_time now);

/* Checks the vault's key against one stored vehicle's credentials (a wrong
 * key stops the daemon before anything is fetched or sent). 0 or -1 (e->d). */
int fetch_check_key(struct engine *e);

#endif
