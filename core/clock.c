/* Clock: wall or fixed time in whole UTC seconds. */
#include "clock.h"

#include <time.h>

void clock_init_wall(struct clock *c)
{
    c->fixed = 0;
    c->now = 0;
}

void clock_init_fixed(struct clock *c, mtr_time t)
{
    c->fixed = 1;
    c->now = t;
}

mtr_time clock_now(const struct clock *c)
{
    if (c->fixed)
        return c->now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (mtr_time)ts.tv_sec;
}
