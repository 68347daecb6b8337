/* The sqlite store through the real loader, call by call: what each state
 * change does to the ledger (from the mutation pass over its SQL: a claim
 * leases, a lease hides a job until it ends, a disabled webhook's due jobs
 * become missed and its pending deliveries failed, a stored delivery marks
 * its jobs sent whether or not this connection claimed them). */
#include "ledger.h"
#include "support.h"

#include <criterion/criterion.h>
#include <metronome/metronome.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store {
    struct test_cadence *tc; /* the generic instance builder: any plugin kind */
    const struct mtr_store_ops *ops;
    void *st;
};

static void store_open(struct store *s)
{
    char opts[512], err[512];
    snprintf(opts, sizeof opts, "{path: \"%s/l.db\"}", make_tmpdir());
    s->tc = test_cadence_try("sqlite", opts, err, sizeof err);
    cr_assert_not_null(s->tc, "%s", err);
    s->ops = s->tc->inst->ctx.pf->desc.store;
    s->st = s->tc->inst->state;
    cr_assert_eq(s->tc->inst->ctx.pf->desc.start(s->st), MTR_OK, "%s", s->tc->inst->ctx.error);
    struct mtr_webhook_row w = {
        .id = "w1", .name = "w", .callback_uri = "https://example.com/h", .definition = "d"};
    cr_assert_eq(s->ops->webhook_upsert(s->st, &w, 0), MTR_OK);
    int created;
    cr_assert_eq(s->ops->subscribe(s->st, "w1", "v1", 100, 1, &created), MTR_OK);
    uint64_t n;
    cr_assert_eq(s->ops->materialize_tick(s->st, "w1", 3600, MTR_JOB_DUE, 0, 0, &n), MTR_OK);
    cr_assert_eq(n, 1);
}

static void store_close(struct store *s)
{
    s->tc->inst->ctx.pf->desc.stop(s->st);
    test_cadence_free(s->tc);
}

static int count_job(void *arg, const struct mtr_job *j)
{
    (void)j;
    ++*(int *)arg;
    return 0;
}

static int claim(struct store *s, const char *owner, mtr_time now)
{
    int n = 0;
    cr_assert_eq(s->ops->claim_jobs(s->st, owner, now, now + 600, 10, count_job, &n), MTR_OK);
    return n;
}

static struct mtr_store_stats stats(struct store *s)
{
    struct mtr_store_stats st;
    cr_assert_eq(s->ops->stats(s->st, NULL, &st), MTR_OK);
    return st;
}

Test(store_sqlite, a_claim_leases_until_the_lease_ends)
{
    struct store s;
    store_open(&s);
    cr_expect_eq(claim(&s, "a", 3600), 1);
    cr_expect_eq(claim(&s, "b", 3600), 0, "a leased job is not claimed again");
    mtr_time at;
    int found;
    cr_assert_eq(s.ops->next_due(s.st, &at, &found), MTR_OK);
    cr_expect(found && at == 4200, "due again when the lease ends: %lld", (long long)at);
    cr_expect_eq(claim(&s, "b", 4200), 1, "after the lease, another node takes it over");
    store_close(&s);
}

Test(store_sqlite, disabling_misses_due_jobs)
{
    struct store s;
    store_open(&s);
    uint64_t n;
    cr_assert_eq(s.ops->jobs_miss_pending(s.st, "w1", &n), MTR_OK);
    struct mtr_store_stats st = stats(&s);
    cr_expect_eq(st.jobs[MTR_JOB_DUE], 0);
    cr_expect_eq(st.jobs[MTR_JOB_MISSED], 1);
    cr_expect_eq(claim(&s, "a", 3600), 0);
    store_close(&s);
}

static struct mtr_delivery_row pending_row(const char *id)
{
    return (struct mtr_delivery_row){.id = id,
                                     .webhook_id = "w1",
                                     .sink = "callback",
                                     .tick = 3600,
                                     .kind = MTR_DELIVERY_SCHEDULED,
                                     .state = MTR_DELIVERY_PENDING,
                                     .created_at = 3600,
                                     .next_attempt_at = 3600,
                                     .body = "{}",
                                     .body_len = 2,
                                     .vehicles = 1,
                                     .updated_at = 3600};
}

Test(store_sqlite, a_stored_delivery_marks_its_jobs_sent_unclaimed_or_not)
{
    struct store s;
    store_open(&s);
    struct mtr_delivery_row row = pending_row("d1");
    struct mtr_job_key key = {"w1", "v1", 3600};
    int inserted;
    /* never claimed by this connection: the store finds the job by its key */
    cr_assert_eq(s.ops->deliveries_insert(s.st, &row, 1, &key, 1, &inserted), MTR_OK);
    cr_expect_eq(inserted, 1);
    struct mtr_store_stats st = stats(&s);
    cr_expect_eq(st.jobs[MTR_JOB_SENT], 1);
    cr_expect_eq(st.jobs[MTR_JOB_DUE], 0);
    store_close(&s);
}

Test(store_sqlite, disabling_fails_pending_deliveries_only)
{
    struct store s;
    store_open(&s);
    struct mtr_delivery_row rows[2] = {pending_row("d1"), pending_row("d2")};
    rows[1].state = MTR_DELIVERY_DELIVERED;
    cr_assert_eq(s.ops->deliveries_insert(s.st, rows, 2, NULL, 0, NULL), MTR_OK);
    uint64_t n;
    cr_assert_eq(s.ops->fail_pending(s.st, "w1", "operator", 4000, &n), MTR_OK);
    struct mtr_store_stats st = stats(&s);
    cr_expect_eq(st.deliveries[MTR_DELIVERY_PENDING], 0);
    cr_expect_eq(st.deliveries[MTR_DELIVERY_FAILED], 1);
    cr_expect_eq(st.deliveries[MTR_DELIVERY_DELIVERED], 1, "a delivered one stays delivered");
    store_close(&s);
}

static int body_of(void *arg, const struct mtr_delivery_row *d)
{
    *(int *)arg = d->body != NULL;
    return 1;
}

Test(store_sqlite, retention_drops_failed_payloads_after_their_time)
{
    struct store s;
    store_open(&s);
    struct mtr_delivery_row rows[2] = {pending_row("d1"), pending_row("d2")};
    rows[0].state = MTR_DELIVERY_FAILED;
    rows[1].state = MTR_DELIVERY_DELIVERED;
    cr_assert_eq(s.ops->deliveries_insert(s.st, rows, 2, NULL, 0, NULL), MTR_OK);
    uint64_t n;
    /* failed bytes go after 4000, delivered ones are kept until 3000 */
    cr_assert_eq(s.ops->prune(s.st, 3000, 4000, 0, 100, &n), MTR_OK);
    int has1 = -1, has2 = -1;
    cr_assert_eq(s.ops->delivery_get(s.st, "d1", body_of, &has1), MTR_OK);
    cr_assert_eq(s.ops->delivery_get(s.st, "d2", body_of, &has2), MTR_OK);
    cr_expect_eq(has1, 0, "the failed delivery's bytes are pruned");
    cr_expect_eq(has2, 1, "the delivered one's are not yet");
    store_close(&s);
}

Test(store_sqlite, ledger_transactions_nest_and_an_inner_rollback_dooms_the_outer)
{
    /* core/ledger.c: only the outermost begin and commit reach the store */
    struct store s;
    store_open(&s);
    struct ledger L = {.ops = s.ops, .st = s.st};
    const struct mtr_job_key k = {"w1", "v1", 3600};
    cr_assert_eq(ledger_begin(&L), MTR_OK);
    cr_assert_eq(ledger_begin(&L), MTR_OK, "a nested begin is counted, not sent to the store");
    cr_assert_eq(ledger_job_set_state(&L, &k, MTR_JOB_SENT), MTR_OK);
    cr_assert_eq(ledger_rollback(&L), MTR_OK);
    cr_expect_eq(ledger_commit(&L), MTR_ERR, "an inner rollback dooms the outer transaction");
    cr_expect_eq(claim(&s, "node-a", 3600), 1, "and nothing of it was kept");
    cr_assert_eq(s.ops->job_set_state(s.st, &k, MTR_JOB_DUE), MTR_OK);
    cr_assert_eq(ledger_begin(&L), MTR_OK, "the next transaction starts afresh");
    cr_assert_eq(ledger_begin(&L), MTR_OK);
    cr_assert_eq(ledger_job_set_state(&L, &k, MTR_JOB_SENT), MTR_OK);
    cr_assert_eq(ledger_commit(&L), MTR_OK);
    cr_assert_eq(ledger_commit(&L), MTR_OK);
    cr_expect_eq(claim(&s, "node-a", 100000), 0, "both levels committed: the job is sent");
    store_close(&s);
}
