/* A fake Smartcar API for the tests, on libmicrohttpd, faithful to the
 * reference: POST /v2.0/vehicles/{id}/batch with per-vehicle bearer tokens and
 * SC-Unit-System, error bodies as application/json, POST /oauth/token with
 * Basic client credentials (refresh_token rotates both tokens;
 * authorization_code issues a user's tokens), and GET /v2.0/vehicles, paged. */
#ifndef MTR_FAKE_SMARTCAR_H
#define MTR_FAKE_SMARTCAR_H

#include <pthread.h>
#include <stddef.h>

#define FAKE_CLIENT_ID "client-id"
#define FAKE_CLIENT_SECRET "client-secret-value"
#define FAKE_CODE "connect-code-123"

struct fake_vehicle {
    char id[64];
    char access[64];
    char refresh[64];
    int asleep;    /* answer 409 ASLEEP to this many more batch requests */
    int malformed; /* answer a truncated body */
    int batches;   /* batch requests that reached the vehicle with a valid token */
    char last_units[16];
};

struct fake_smartcar {
    void *mhd;
    unsigned short port;
    pthread_mutex_t mu;
    struct fake_vehicle v[16];
    size_t n;
    int rate_limited; /* answer 429 to this many more batch requests */
    int retry_after;  /* seconds, with those 429s */
    int reject_refresh;
    int refreshes, refresh_basic_ok, list_requests, exchanges, batch_requests;
    int seq;
};

int fake_start(struct fake_smartcar *f);
void fake_stop(struct fake_smartcar *f);
/* Adds a vehicle with tokens "at-<id>" and "rt-<id>"; returns it. */
struct fake_vehicle *fake_add(struct fake_smartcar *f, const char *id);
/* Takes a consistent copy of the fake's state. */
void fake_snapshot(struct fake_smartcar *f, struct fake_smartcar *copy);

#endif
