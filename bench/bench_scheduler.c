/* Scheduler micro-benchmark: a million subscriptions' next ticks planned (the
 * cadence's next fire plus the subscription's stable spread offset) and pushed
 * onto the timer heap, then popped in order. Prints the time taken; the order
 * is checked, so a wrong heap cannot look fast. */
#include "heap.h"
#include "sign.h"

#include <metronome/civil.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    char id[32];
    struct heap h;
    heap_init(&h);
    mtr_time now = 1898610300; /* 2030-03-01T15:45:00Z */
    double t0 = seconds();
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "veh-%07zu", i);
        mtr_time tick = (mtr_floor_div(now, 3600) + 1) * 3600; /* hourly */
        mtr_time due = tick + 60 + stable_hash32("webhook", id) % 241;
        if (heap_push(&h, due, i) != 0)
            return 1;
    }
    double t1 = seconds();
    struct heap_item it, prev = {0};
    size_t popped = 0;
    while (heap_pop(&h, &it) == 0) {
        if (popped++ && it.at < prev.at) {
            fprintf(stderr, "out of order\n");
            return 1;
        }
        prev = it;
    }
    double t2 = seconds();
    heap_free(&h);
    printf("scheduler: %zu subscriptions planned and pushed in %.3f s, popped in %.3f s: "
           "%.3f s in all\n",
           popped, t1 - t0, t2 - t1, t2 - t0);
    return popped == n ? 0 : 1;
}
