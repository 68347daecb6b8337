/* Recovery without an operator (a webhook's `delivery.auto_recover`): a
 * webhook disabled because its retries ran out, or because it failed on
 * probation, is probed with a signed verify challenge 1 min, 5 min and 30 min
 * after it was disabled, then every hour, for up to RECOVERY_DAYS days. When a
 * probe is answered right the webhook is enabled again on probation (its
 * next failed attempt disables it at once, and then it is probed only hourly;
 * its first delivered one ends the probation), and the payloads it missed are replayed as
 * `catch_up` says: all of its failed ones, those of its newest failed tick (latest), or none
 * (skip). A webhook disabled by an operator or by 410 Gone is left alone. */
#ifndef MTR_RECOVERY_H
#define MTR_RECOVERY_H

#include "engine_state.h"

#define RECOVERY_DAYS 7

/* When the next probe is due (0: none is). */
mtr_time recovery_next(struct engine *e);

/* Settles the probes that were answered, and returns those now due, linked
 * by next, for the loop to send (the webhooks keep them: do not free). */
struct send_request *recovery_run(struct engine *e, mtr_time now);

/* Ends the engine's probes (at shutdown, after the courier has stopped). */
void recovery_free(struct engine *e);

#endif
