/* The store's map of claimed jobs: open addressing with linear probing over
 * FNV-1a hashes of the key. Taking an entry leaves a tombstone, and the map
 * is cleared by the next claim, so it never holds more than one claim's jobs. */
#include "claims.h"

#include <stdlib.h>
#include <string.h>

struct claim_slot {
    uint64_t hash;
    char *key; /* webhook_id NUL vehicle_id NUL; NULL: empty */
    int64_t tick;
    int64_t rowid; /* 0: taken (a tombstone) */
};

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

static uint64_t key_hash(const char *w, size_t wn, const char *v, size_t vn, int64_t tick)
{
    uint64_t h = fnv1a(14695981039346656037u, w, wn + 1);
    h = fnv1a(h, v, vn + 1);
    return fnv1a(h, (const char *)&tick, sizeof tick);
}

static void clear(struct claims *c)
{
    for (size_t i = 0; i < c->cap; i++)
        free(c->slots[i].key);
    if (c->slots)
        memset(c->slots, 0, c->cap * sizeof *c->slots);
    c->used = 0;
}

int claims_reset(struct claims *c, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    clear(c);
    if (cap <= c->cap)
        return 0;
    struct claim_slot *s = calloc(cap, sizeof *s);
    if (!s)
        return -1;
    free(c->slots);
    c->slots = s;
    c->cap = cap;
    return 0;
}

int claims_put(struct claims *c, const char *webhook_id, const char *vehicle_id, int64_t tick,
               int64_t rowid)
{
    size_t wn = strlen(webhook_id), vn = strlen(vehicle_id);
    if (!c->cap || 2 * (c->used + 1) > c->cap)
        return -1;
    uint64_t h = key_hash(webhook_id, wn, vehicle_id, vn, tick);
    size_t i = (size_t)h & (c->cap - 1);
    while (c->slots[i].key)
        i = (i + 1) & (c->cap - 1);
    char *key = malloc(wn + vn + 2);
    if (!key)
        return -1;
    memcpy(key, webhook_id, wn + 1);
    memcpy(key + wn + 1, vehicle_id, vn + 1);
    c->slots[i] = (struct claim_slot){h, key, tick, rowid};
    c->used++;
    return 0;
}

int64_t claims_take(struct claims *c, const char *webhook_id, const char *vehicle_id, int64_t tick)
{
    if (!c->cap)
        return 0;
    size_t wn = strlen(webhook_id), vn = strlen(vehicle_id);
    uint64_t h = key_hash(webhook_id, wn, vehicle_id, vn, tick);
    for (size_t i = (size_t)h & (c->cap - 1); c->slots[i].key; i = (i + 1) & (c->cap - 1)) {
        struct claim_slot *s = &c->slots[i];
        if (s->hash == h && s->tick == tick && s->rowid && strcmp(s->key, webhook_id) == 0 &&
            strcmp(s->key + strlen(s->key) + 1, vehicle_id) == 0) {
            int64_t rowid = s->rowid;
            s->rowid = 0;
            return rowid;
        }
    }
    return 0;
}

void claims_free(struct claims *c)
{
    clear(c);
    free(c->slots);
    c->slots = NULL;
    c->cap = 0;
}
