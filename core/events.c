/* Events about delivery: one event's ledger rows, one per events sink. */
#include "events.h"
#include "scalar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int events_make(const struct config *c, const char *type, const char *subject, mtr_time at,
                json_t *data, struct events *out)
{
    memset(out, 0, sizeof *out);
    if (!data)
        return -1;
    if (c->n_events_sinks == 0) {
        json_decref(data);
        return 0;
    }
    char when[40], at_s[24];
    format_iso8601(at, when, sizeof when);
    snprintf(at_s, sizeof at_s, "%lld", (long long)at);
    json_t *event = json_pack("{s:s,s:s,s:o}", "type", type, "timestamp", when, "data", data);
    out->body = event ? json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(event);
    out->rows = calloc(c->n_events_sinks, sizeof *out->rows);
    out->ids = calloc(c->n_events_sinks, sizeof *out->ids);
    if (!out->body || !out->rows || !out->ids) {
        events_free(out);
        return -1;
    }
    for (size_t i = 0; i < c->n_events_sinks; i++) {
        const char *sink = c->sinks[c->events_sinks[i]].name;
        const char *parts[] = {"event", type, subject ? subject : "", at_s, sink};
        uuid_derive(out->ids[i], parts, 5);
        out->rows[i] = (struct mtr_delivery_row){.id = out->ids[i],
                                                 .webhook_id = EVENTS_STREAM_ID,
                                                 .sink = sink,
                                                 .tick = at,
                                                 .kind = MTR_DELIVERY_EVENT,
                                                 .state = MTR_DELIVERY_PENDING,
                                                 .created_at = at,
                                                 .next_attempt_at = at,
                                                 .body = out->body,
                                                 .body_len = strlen(out->body),
                                                 .updated_at = at};
    }
    out->n = c->n_events_sinks;
    return 0;
}

void events_free(struct events *ev)
{
    free(ev->rows);
    free(ev->ids);
    free(ev->body);
    memset(ev, 0, sizeof *ev);
}
