/* Cadence policies: pure functions from an instant to the next fire time.
 * A cadence plugin does no I/O and never reads the clock, so every policy can be
 * table-tested. Final in ABI 1.0. */
#ifndef METRONOME_CADENCE_H
#define METRONOME_CADENCE_H

#include <metronome/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mtr_cadence_ops {
    uint32_t struct_size; /* sizeof(struct mtr_cadence_ops) as built */
    uint32_t reserved;
    /* Writes the first fire time strictly after `after` to *next. Returns
     * MTR_OK, or MTR_ERR (with set_error unavailable: pure) when the policy
     * has no further tick. */
    int (*next_fire)(void *state, mtr_time after, mtr_time *next);
};

#if defined(__LP64__) && !defined(__cplusplus)
_Static_assert(offsetof(struct mtr_cadence_ops, next_fire) == 8, "ABI: next_fire");
_Static_assert(sizeof(struct mtr_cadence_ops) == 16, "ABI 1.0 cadence ops size");
#endif

#ifdef __cplusplus
}
#endif

#endif
