/* Origins: the receivers (scheme://host:port of callback URIs) whose
 * deliveries a sink deferred - held back by the sink's limits for that origin
 * (max_in_flight, max_rate) or because the receiver asked to wait (429 or 503
 * with Retry-After). The engine notes each deferral here; `status` and
 * /metrics show, per origin, how many were deferred and until when it waits.
 * Bounded: the first ORIGINS_MAX origins keep their own entry, the rest share
 * one named "other". */
#ifndef MTR_ORIGINS_H
#define MTR_ORIGINS_H

#include <stddef.h>
#include <stdint.h>
#include <metronome/plugin.h>

#define ORIGINS_MAX 32
#define ORIGIN_LEN 128

struct origin_wait {
    char origin[ORIGIN_LEN];
    mtr_time until;    /* the newest deferral's due time */
    uint64_t deferred; /* deferrals in this run */
    int last_status;   /* the receiver's last answer that asked to wait (0: none did) */
};

struct origins {
    struct origin_wait v[ORIGINS_MAX];
    size_t n;
};

/* The origin of an http(s) URI: its scheme and authority, lowercased and
 * without user information ("https://api.example.com:8443"); out is "" when
 * uri has none. */
void origin_of(const char *uri, char *out, size_t len);

/* Notes one deferral of a delivery to origin, due again at until. */
void origins_note(struct origins *o, const char *origin, mtr_time until, int last_status);

#endif
