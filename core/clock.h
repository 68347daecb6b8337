/* The daemon's notion of now: the wall clock, or a fixed instant (--now) for
 * tests and demos. The virtual clock of `run` builds on this. */
#ifndef MTR_CLOCK_H
#define MTR_CLOCK_H

#include <metronome/plugin.h>

struct clock {
    int fixed; /* 1: always returns `now` */
    mtr_time now;
};

void clock_init_wall(struct clock *c);
void clock_init_fixed(struct clock *c, mtr_time t);
mtr_time clock_now(const struct clock *c);

#endif
