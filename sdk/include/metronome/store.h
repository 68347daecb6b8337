/* Store backends: the ledger of SPEC section 7 (webhooks, vehicles,
 * subscriptions, jobs, deliveries, attempts). Shaped for several nodes on one
 * database: due work is claimed under a lease and unique keys make
 * scheduling idempotent.
 * DRAFT in ABI 1.0: the layout below may still change until the delivery
 * engine lands (it is not covered by the frozen-layout assertions yet). */
#ifndef METRONOME_STORE_H
#define METRONOME_STORE_H

#include <metronome/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mtr_job_key {
    const char *webhook_id;
    const char *vehicle_id;
    mtr_time tick;
};

struct mtr_store_ops {
    uint32_t struct_size;
    uint32_t reserved;
    int (*migrate)(void *state);
    int (*begin)(void *state);
    int (*commit)(void *state);
    int (*rollback)(void *state);
    /* inserting an existing key is a no-op; *inserted tells which */
    int (*insert_job)(void *state, const struct mtr_job_key *key, int *inserted);
    /* claims up to max due jobs for owner until lease_until */
    int (*claim_jobs)(void *state, const char *owner, mtr_time now, mtr_time lease_until,
                      struct mtr_job_key *out, size_t max, size_t *n);
};

#ifdef __cplusplus
}
#endif

#endif
