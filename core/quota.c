/* Quotas: a source's application-wide rate limit drawn from the ledger's
 * shared token buckets (store.h's quota_take), a second's worth at a time. */
#include "quota.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

void quota_init(struct quota *q, struct ledger *L, const struct clock *clk)
{
    memset(q, 0, sizeof *q);
    q->L = L;
    q->clk = clk;
}

static struct quota_slot *slot_for(struct quota *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->slots[i].key, key) == 0)
            return &q->slots[i];
    if (q->n == QUOTA_KEYS || strlen(key) >= QUOTA_KEY_MAX)
        return NULL;
    struct quota_slot *s = &q->slots[q->n++];
    snprintf(s->key, sizeof s->key, "%s", key);
    return s;
}

/* The seconds until the bucket holds one token again. */
static int64_t refill_wait(int64_t per_minute)
{
    int64_t wait = (60 + per_minute - 1) / per_minute;
    return wait < 1 ? 1 : wait;
}

int quota_take(struct quota *q, const char *key, int64_t per_minute, int64_t burst, int64_t *wait_s)
{
    *wait_s = 0;
    if (!q || !q->L || !ledger_has_quota(q->L) || !key || per_minute < 1 || burst < 1)
        return -1;
    struct quota_slot *s = slot_for(q, key);
    if (!s)
        return -1;
    mtr_time now = clock_now(q->clk);
    if (s->tokens > 0 && now - s->at <= 1) {
        s->tokens--;
        return 1;
    }
    s->tokens = 0; /* what was left is older than a second: not this node's to keep */
    int64_t want = per_minute / 60; /* a second's worth, at least one, at most the burst */
    want = want < 1 ? 1 : want > burst ? burst : want;
    int64_t granted = 0;
    if (ledger_quota_take(q->L, key, per_minute, burst, now, want, &granted) != 0) {
        if (!q->failing)
            log_msg(MTR_LOG_WARN, "quota", "rate limit '%s': %s; requests wait until it answers",
                    key, ledger_error(q->L));
        q->failing = 1;
        *wait_s = 1;
        return 0;
    }
    q->failing = 0;
    if (granted < 1) {
        *wait_s = refill_wait(per_minute);
        return 0;
    }
    s->tokens = granted - 1;
    s->at = now;
    return 1;
}
