/* The rowids of the jobs this store handed out in its latest claim, by key
 * (webhook, vehicle, tick), so marking them sent, missed or rescheduled is an
 * update by rowid: the jobs table needs no index on that key, whose inserts
 * would land at random places in a B-tree of every tick's jobs. A key that is
 * not here (claimed before the latest claim, or by another process) is
 * updated through the slower index on (webhook, tick). */
#ifndef STORE_SQLITE_CLAIMS_H
#define STORE_SQLITE_CLAIMS_H

#include <stddef.h>
#include <stdint.h>

struct claims {
    struct claim_slot *slots;
    size_t cap; /* a power of two, at least twice the entries */
    size_t used;
};

/* Forgets every entry and makes room for n. Returns 0, or -1 without memory
 * (the map is then empty and every lookup misses). */
int claims_reset(struct claims *c, size_t n);
/* Remembers key -> rowid; -1 when full or without memory. */
int claims_put(struct claims *c, const char *webhook_id, const char *vehicle_id, int64_t tick,
               int64_t rowid);
/* The rowid of key, removing it; 0 when it is not here (rowids start at 1). */
int64_t claims_take(struct claims *c, const char *webhook_id, const char *vehicle_id, int64_t tick);
void claims_free(struct claims *c);

#endif
