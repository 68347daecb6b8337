/* Clock: wall, fixed or virtual time in whole UTC seconds. The engine's thread
 * moves a virtual clock; any thread may read it. */
#include "clock.h"

#include <time.h>

void clock_init_wall(struct clock *c)
{
    c->mode = CLOCK_WALL;
    c->now = 0;
}

void clock_init_fixed(struct clock *c, mtr_time t)
{
    c->mode = CLOCK_FIXED;
    c->now = t;
}

void clock_init_virtual(struct clock *c, mtr_time start)
{
    c->mode = CLOCK_VIRTUAL;
    c->now = start;
}

mtr_time clock_now(const struct clock *c)
{
    if (c->mode != CLOCK_WALL) /* the admin API's thread reads the engine's clock */
        return __atomic_load_n(&c->now, __ATOMIC_RELAXED);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (mtr_time)ts.tv_sec;
}

void clock_advance(struct clock *c, mtr_time t)
{
    if (c->mode == CLOCK_VIRTUAL && t > c->now)
        __atomic_store_n(&c->now, t, __ATOMIC_RELAXED);
}
