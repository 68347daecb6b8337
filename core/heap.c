/* Timer heap: array-backed binary heap with sift-up/sift-down. */
#include "heap.h"

#include <stdlib.h>

void heap_init(struct heap *h)
{
    h->v = NULL;
    h->n = h->cap = 0;
    h->next_seq = 0;
}

void heap_free(struct heap *h)
{
    free(h->v);
    heap_init(h);
}

static int before(const struct heap_item *a, const struct heap_item *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

int heap_push(struct heap *h, mtr_time at, uint64_t id)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct heap_item *v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    struct heap_item item = {.at = at, .seq = h->next_seq++, .id = id};
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&item, &h->v[parent]))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = item;
    return 0;
}

int heap_pop(struct heap *h, struct heap_item *out)
{
    if (h->n == 0)
        return -1;
    *out = h->v[0];
    struct heap_item last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && before(&h->v[child + 1], &h->v[child]))
            child++;
        if (!before(&h->v[child], &last))
            break;
        h->v[i] = h->v[child];
        i = child;
    }
    if (h->n > 0)
        h->v[i] = last;
    return 0;
}

const struct heap_item *heap_peek(const struct heap *h)
{
    return h->n ? &h->v[0] : NULL;
}
