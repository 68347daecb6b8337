/* Quotas: the application-wide rate limits a source asks for through the
 * host's rate_take, kept in the ledger so that every node on it draws on one
 * budget. A node takes about a second's worth of tokens at a time and keeps
 * what it did not use for at most a second, so the ledger is asked about
 * once a second per budget, and the sum of what nodes send never exceeds
 * what the budget granted. */
#ifndef MTR_QUOTA_H
#define MTR_QUOTA_H

#include "clock.h"
#include "ledger.h"

#define QUOTA_KEYS 8
#define QUOTA_KEY_MAX 128

struct quota_slot {
    char key[QUOTA_KEY_MAX];
    int64_t tokens; /* granted by the ledger, not yet used */
    mtr_time at;    /* when they were granted */
};

struct quota {
    struct ledger *L; /* the engine's: used on its thread only */
    const struct clock *clk;
    struct quota_slot slots[QUOTA_KEYS];
    size_t n;
    int failing; /* the ledger refused the last ask (logged once) */
};

void quota_init(struct quota *q, struct ledger *L, const struct clock *clk);

/* The host's rate_take: 1 granted; 0 not now, *wait_s the seconds to wait;
 * -1 when the ledger keeps no shared budgets (or more than QUOTA_KEYS are
 * asked for), and the caller keeps its own. */
int quota_take(struct quota *q, const char *key, int64_t per_minute, int64_t burst,
               int64_t *wait_s);

#endif
