/* A binary min-heap of timers keyed by (instant, sequence): ties pop in the
 * order they were pushed. Holds a million timers in 16 MB. */
#ifndef MTR_HEAP_H
#define MTR_HEAP_H

#include <stddef.h>
#include <stdint.h>
#include <metronome/plugin.h>

struct heap_item {
    mtr_time at;
    uint64_t seq;
    uint64_t id; /* the caller's */
};

struct heap {
    struct heap_item *v;
    size_t n, cap;
    uint64_t next_seq;
};

void heap_init(struct heap *h);
void heap_free(struct heap *h);
/* Returns 0, or -1 when out of memory. */
int heap_push(struct heap *h, mtr_time at, uint64_t id);
/* Returns 0 and the earliest item, or -1 when empty. */
int heap_pop(struct heap *h, struct heap_item *out);
const struct heap_item *heap_peek(const struct heap *h);

#endif
