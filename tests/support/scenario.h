/* End-to-end scenarios: a pipeline in a fresh directory whose http sink posts
 * to an in-process receiver on 127.0.0.1, plus helpers to run metronome
 * commands against it (on the virtual clock) and to read its ledger back as
 * JSON. */
#ifndef MTR_TEST_SCENARIO_H
#define MTR_TEST_SCENARIO_H

#include <jansson.h>
#include "receiver.h"
#include "support.h"

#define SCENARIO_TOKEN "e2e-management-token"

struct scenario {
    char *dir;
    char *config;
    struct receiver r;
    pid_t last_pid;
};

/* Options: source_extra and sink_extra are added inside the source/sink flow
 * mappings (", asleep_vehicles: [v1]"); webhook_extra adds lines to the
 * webhook; delivery is the delivery block's flow mapping or NULL. */
struct scenario_opts {
    const char *source_extra;
    const char *sink_extra;
    const char *webhook_extra;
    const char *delivery;
    const char *callback; /* override the callback URI */
    int deny_private;     /* leave allow_private_networks at its default (false) */
    const char *source;   /* replaces the simulated source's flow mapping */
    const char *cadence;  /* replaces {policy: hourly} */
    const char *extra;    /* top-level sections appended (admin: ...) */
    int tls;              /* 1: the receiver speaks https with a certificate the sink trusts
                           * (ca_file); 2: one it does not */
};

void scenario_start(struct scenario *s, const struct scenario_opts *o);
void scenario_stop(struct scenario *s);

/* Runs metronome with --config; args end with NULL. Returns the result (free it). */
struct run_result sc_run(struct scenario *s, const char *first, ...);
/* Like sc_run, expecting exit status 0. */
void sc_ok(struct scenario *s, const char *first, ...);

/* verify + subscribe vehicles ("v1", "v2" ... NULL) at instant now. */
void sc_setup(struct scenario *s, const char *now, const char *const *vehicles);
/* run --clock virtual --start from --until until; expects exit 0. */
void sc_virtual(struct scenario *s, const char *from, const char *until);

/* `deliveries --json` parsed (decref it). */
json_t *sc_deliveries(struct scenario *s);
/* Only the scheduled payloads the receiver got. */
size_t sc_payloads(struct scenario *s);

#endif
