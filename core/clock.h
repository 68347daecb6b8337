/* The daemon's notion of now: the wall clock, a fixed instant (--now) for
 * commands, or the virtual clock of `run --clock virtual`, which the engine
 * moves forward to its next timer whenever nothing is in flight. */
#ifndef MTR_CLOCK_H
#define MTR_CLOCK_H

#include <metronome/plugin.h>

enum clock_mode {
    CLOCK_WALL = 0,
    CLOCK_FIXED = 1,
    CLOCK_VIRTUAL = 2,
};

struct clock {
    int mode; /* enum clock_mode */
    mtr_time now;
};

void clock_init_wall(struct clock *c);
void clock_init_fixed(struct clock *c, mtr_time t);
void clock_init_virtual(struct clock *c, mtr_time start);
mtr_time clock_now(const struct clock *c);
/* Moves a virtual clock forward to t (never back). */
void clock_advance(struct clock *c, mtr_time t);

#endif
