/* Events about delivery: metronome's own happenings (webhook.disabled,
 * webhook.recovered, webhook.enabled, delivery.failed,
 * vehicle.reauthentication_required) as deliveries of kind event to the
 * pipeline's `events.sinks`. Each is written to the ledger in the transaction
 * of the change it reports, under an id derived from what happened, so it is
 * emitted once and then sent like any delivery (retried, never disabling
 * anything). The body is Standard Webhooks' shape:
 *   {"type":"webhook.disabled","timestamp":"2030-03-01T16:10:00Z","data":{...}} */
#ifndef MTR_EVENTS_H
#define MTR_EVENTS_H

#include <jansson.h>
#include "config.h"
#include "sign.h"

/* The webhook id the event stream's deliveries carry: they belong to no
 * webhook, so a webhook's listings, replays and failures never touch them. */
#define EVENTS_STREAM_ID "00000000-0000-0000-0000-000000000000"

struct events {
    struct mtr_delivery_row *rows; /* one per events sink */
    char (*ids)[UUID_LEN + 1];
    char *body;
    size_t n;
};

/* The rows of one event: `type` about `subject` (what makes it this event and
 * no other, with `at`), data taken (decref'd here). No rows when the pipeline
 * has no events sinks; -1 only when out of memory. */
int events_make(const struct config *c, const char *type, const char *subject, mtr_time at,
                json_t *data, struct events *out);
void events_free(struct events *ev);

#endif
