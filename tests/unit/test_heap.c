/* The timer heap: order by (instant, push order) under random load. */
#include "heap.h"

#include <criterion/criterion.h>

Test(heap, pops_in_time_then_push_order)
{
    struct heap h;
    heap_init(&h);
    unsigned s = 12345;
    for (uint64_t i = 0; i < 100000; i++) {
        s = s * 1103515245u + 12345u;
        cr_assert_eq(heap_push(&h, (mtr_time)((s >> 8) % 5000), i), 0);
    }
    struct heap_item prev = {0}, it;
    size_t n = 0;
    while (heap_pop(&h, &it) == 0) {
        if (n++ > 0)
            cr_assert(prev.at < it.at || (prev.at == it.at && prev.seq < it.seq),
                      "out of order at %zu", n);
        prev = it;
    }
    cr_expect_eq(n, 100000);
    cr_expect_null(heap_peek(&h));
    heap_free(&h);
}
