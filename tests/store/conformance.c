/* The store conformance suite: the contract of metronome/store.h written as
 * tests, run through a store plugin's ops table with two instances on one
 * database acting as two nodes. Any store plugin can be run through it:
 *
 *   METRONOME_STORE_PLUGIN=name          the plugin (default: sqlite)
 *   METRONOME_STORE_PLUGIN_DIR=dir       where its .so is (default: the build's plugins)
 *   METRONOME_STORE_OPTIONS='{...}'      its options as a YAML flow mapping; %DIR% becomes a
 *                                        fresh directory for each test and %ID% a fresh
 *                                        name of a-z 0-9 _ (default for sqlite:
 *                                        {path: "%DIR%/ledger.db"})
 *
 * Each test starts on an empty database: a fresh %DIR% for a file store, a
 * fresh database or schema named from %ID% for a server's. */
#include "host.h"
#include "loader.h"
#include "options.h"
#include "support.h"
#include "yamltree.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct registry reg;
    struct instance *inst;
    const struct mtr_store_ops *ops;
    void *st;
    struct clock clk;
};

static char *options_for(const char *dir)
{
    const char *tmpl = getenv("METRONOME_STORE_OPTIONS");
    if (!tmpl || !*tmpl)
        tmpl = "{path: \"%DIR%/ledger.db\"}";
    char id[64];
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    size_t k = (size_t)snprintf(id, sizeof id, "t_");
    for (; *base && k + 1 < sizeof id; base++) /* a name of a-z 0-9 _ from the directory's */
        id[k++] = (*base >= 'A' && *base <= 'Z') ? (char)(*base - 'A' + 'a')
                  : ((*base >= 'a' && *base <= 'z') || (*base >= '0' && *base <= '9')) ? *base
                                                                                       : '_';
    id[k] = '\0';
    char *out = malloc(strlen(tmpl) + 16 * (strlen(dir) + sizeof id) + 1), *o = out;
    cr_assert_not_null(out);
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "%DIR%", 5) == 0) {
            o += sprintf(o, "%s", dir);
            p += 5;
        } else if (strncmp(p, "%ID%", 4) == 0) {
            o += sprintf(o, "%s", id);
            p += 4;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

static void node_open(struct node *n, const char *dir, const char *name)
{
    const char *plugin = getenv("METRONOME_STORE_PLUGIN");
    const char *pdir = getenv("METRONOME_STORE_PLUGIN_DIR");
    const char *dirs[] = {pdir && *pdir ? pdir : MTR_PLUGIN_DIR};
    struct diag d;
    char err[1024];
    memset(n, 0, sizeof *n);
    clock_init_fixed(&n->clk, 1000);
    cr_assert_eq(registry_scan(&n->reg, dirs, 1, &d), 0, "%s", d.text);
    const struct plugin_file *pf = registry_find(&n->reg, plugin && *plugin ? plugin : "sqlite");
    cr_assert(pf && pf->desc.kind == MTR_KIND_STORE, "no store plugin %s in %s",
              plugin ? plugin : "sqlite", dirs[0]);
    char *text = options_for(dir);
    struct ynode *root = NULL;
    struct optset opts;
    cr_assert_eq(yaml_load_buffer("options", text, strlen(text), &root, &d), 0, "%s", d.text);
    cr_assert_eq(options_parse(pf->desc.options, root, NULL, "options", "store", &opts, &d), 0,
                 "%s", d.text);
    ynode_free(root);
    free(text);
    cr_assert_eq(instance_create(pf, name, &opts, &n->clk, &n->inst, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(instance_start(n->inst, &d), 0, "%s", d.text);
    n->ops = pf->desc.store;
    n->st = n->inst->state;
}

static void node_close(struct node *n)
{
    instance_destroy(n->inst);
    registry_free(&n->reg);
}

/* Two nodes on one fresh database. */
static void two_nodes(struct node *a, struct node *b)
{
    char *dir = make_tmpdir();
    node_open(a, dir, "node a");
    node_open(b, dir, "node b");
    free(dir);
}

#define OK(n, call) cr_assert_eq((n)->ops->call, MTR_OK, "%s: %s", #call, (n)->inst->ctx.error)

static const char *const WEBHOOK = "0a0a0a0a-0000-4000-8000-000000000001";

/* A webhook with vehicles v0000 .. v(n-1) subscribed at t = 100. */
static void fleet(struct node *n, int vehicles)
{
    struct mtr_webhook_row w = {
        .id = WEBHOOK, .name = "fleet", .callback_uri = "http://x/", .definition = "hourly"};
    OK(n, webhook_upsert(n->st, &w, 50));
    OK(n, begin(n->st));
    for (int i = 0; i < vehicles; i++) {
        char id[16];
        int created;
        snprintf(id, sizeof id, "v%04d", i);
        struct mtr_vehicle_row v = {.id = id, .source = "sim"};
        OK(n, vehicle_upsert(n->st, &v));
        OK(n, subscribe(n->st, WEBHOOK, id, 100, (uint32_t)i * 7919u, &created));
    }
    OK(n, commit(n->st));
}

static uint64_t jobs_in(struct node *n, int state)
{
    struct mtr_store_stats st;
    OK(n, stats(n->st, WEBHOOK, &st));
    return st.jobs[state];
}

struct race {
    struct node *n;
    uint64_t count;
    int rc;
};

static void *materialize(void *arg)
{
    struct race *r = arg;
    r->rc = r->n->ops->materialize_tick(r->n->st, WEBHOOK, 3600, MTR_JOB_DUE, 0, 0, &r->count);
    return NULL;
}

Test(store, a_tick_is_materialized_once_when_two_nodes_race)
{
    struct node a, b;
    two_nodes(&a, &b);
    fleet(&a, 300);
    struct race ra = {.n = &a}, rb = {.n = &b};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, materialize, &ra);
    pthread_create(&tb, NULL, materialize, &rb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_expect(ra.rc == MTR_OK && rb.rc == MTR_OK, "both calls succeed: %d %d", ra.rc, rb.rc);
    cr_expect_eq(ra.count + rb.count, 300, "one of them wrote the tick: %llu + %llu",
                 (unsigned long long)ra.count, (unsigned long long)rb.count);
    cr_expect_eq(jobs_in(&a, MTR_JOB_DUE), 300, "300 jobs, not 600");
    uint64_t again = 99;
    OK(&b, materialize_tick(b.st, WEBHOOK, 3600, MTR_JOB_DUE, 0, 0, &again));
    cr_expect_eq(again, 0, "materializing a tick again is a no-op");
    node_close(&b);
    node_close(&a);
}

struct claimed {
    size_t n;
    char first[32];
    mtr_time due_at;
};

static int on_job(void *arg, const struct mtr_job *j)
{
    struct claimed *c = arg;
    if (c->n++ == 0) {
        snprintf(c->first, sizeof c->first, "%s", j->key.vehicle_id);
        c->due_at = j->due_at;
    }
    return 0;
}

static size_t claim(struct node *n, const char *owner, mtr_time now)
{
    struct claimed c = {0};
    OK(n, claim_jobs(n->st, owner, now, now + 600, 10000, on_job, &c));
    return c.n;
}

Test(store, claims_are_exclusive_under_a_lease_and_an_expired_lease_is_taken_over)
{
    struct node a, b;
    two_nodes(&a, &b);
    fleet(&a, 50);
    uint64_t n;
    OK(&a, materialize_tick(a.st, WEBHOOK, 3600, MTR_JOB_DUE, 0, 0, &n));
    struct claimed c = {0};
    OK(&a, claim_jobs(a.st, "node-a", 3600, 4200, 1, on_job, &c));
    cr_expect_eq(c.n, 1, "at most max jobs");
    cr_expect_eq(c.due_at, 3600, "a claimed job says when it was due, not when its lease ends");
    cr_expect_eq(claim(&a, "node-a", 3600), 49, "node a claims every due job");
    cr_expect_eq(claim(&b, "node-b", 3600), 0, "node b gets none of a's leased jobs");
    cr_expect_eq(claim(&b, "node-b", 3600 + 599), 0, "nor before the lease ends");
    cr_expect_eq(claim(&b, "node-b", 3600 + 601), 50, "the expired lease is taken over");
    cr_expect_eq(claim(&a, "node-a", 3600 + 601), 0, "and is node b's now");
    node_close(&b);
    node_close(&a);
}

static struct mtr_delivery_row delivery(const char *id, mtr_time tick, const char *owner)
{
    return (struct mtr_delivery_row){.id = id,
                                     .webhook_id = WEBHOOK,
                                     .sink = "callback",
                                     .tick = tick,
                                     .kind = MTR_DELIVERY_SCHEDULED,
                                     .state = MTR_DELIVERY_PENDING,
                                     .created_at = tick,
                                     .next_attempt_at = tick + 600,
                                     .body = "{\"payload\":1}",
                                     .body_len = 13,
                                     .vehicles = 1,
                                     .updated_at = tick,
                                     .lease_owner = owner,
                                     .lease_until = tick + 600};
}

Test(store, inserts_are_idempotent_across_nodes)
{
    struct node a, b;
    two_nodes(&a, &b);
    fleet(&a, 1);
    struct mtr_delivery_row row = delivery("11111111-0000-4000-8000-000000000001", 3600, "node-a");
    int inserted = -1;
    OK(&a, deliveries_insert(a.st, &row, 1, NULL, 0, &inserted));
    cr_expect_eq(inserted, 1);
    OK(&b, deliveries_insert(b.st, &row, 1, NULL, 0, &inserted));
    cr_expect_eq(inserted, 0, "the same delivery id from another node is left alone");
    struct mtr_store_stats st;
    OK(&b, stats(b.st, WEBHOOK, &st));
    cr_expect_eq(st.deliveries[MTR_DELIVERY_PENDING], 1);
    node_close(&b);
    node_close(&a);
}

struct page {
    char ids[64][40];
    size_t n;
    mtr_time last_tick;
};

static int on_row(void *arg, const struct mtr_delivery_row *d)
{
    struct page *p = arg;
    if (p->n < 64)
        snprintf(p->ids[p->n], sizeof p->ids[0], "%s", d->id);
    p->n++;
    p->last_tick = d->tick;
    return 0;
}

Test(store, a_cursor_pages_through_every_delivery_once_in_order)
{
    struct node a, b;
    two_nodes(&a, &b);
    fleet(&a, 1);
    OK(&a, begin(a.st));
    for (int i = 0; i < 25; i++) {
        char id[40];
        snprintf(id, sizeof id, "22222222-0000-4000-8000-%012d", 24 - i); /* ids against ticks */
        struct mtr_delivery_row row = delivery(id, 3600 * (1 + i % 5), NULL);
        int ins;
        OK(&a, deliveries_insert(a.st, &row, 1, NULL, 0, &ins));
    }
    OK(&a, commit(a.st));
    char seen[25][40], after[40] = "";
    size_t total = 0;
    mtr_time after_tick = 0, prev_tick = 0;
    for (int round = 0; round < 10; round++) {
        struct page p = {0};
        struct mtr_delivery_query q = {
            .state = -1, .after_tick = after_tick, .after_id = after[0] ? after : NULL, .limit = 7};
        OK(&b, deliveries_query(b.st, &q, on_row, &p));
        for (size_t i = 0; i < p.n && total < 25; i++)
            snprintf(seen[total++], sizeof seen[0], "%s", p.ids[i]);
        if (p.n < 7)
            break;
        snprintf(after, sizeof after, "%s", p.ids[p.n - 1]);
        after_tick = p.last_tick;
        cr_assert(after_tick >= prev_tick, "pages come in tick order");
        prev_tick = after_tick;
    }
    cr_expect_eq(total, 25, "every row once: %zu", total);
    for (size_t i = 0; i < total; i++)
        for (size_t j = 0; j < i; j++)
            cr_expect(strcmp(seen[i], seen[j]) != 0, "%s twice", seen[i]);
    node_close(&b);
    node_close(&a);
}

static int find_body(void *arg, const struct mtr_delivery_row *d)
{
    *(int *)arg = d->body ? 2 : 1;
    return 1;
}

Test(store, retention_prunes_payloads_then_rows_in_small_batches)
{
    struct node a, b;
    two_nodes(&a, &b);
    fleet(&a, 1);
    char id[40];
    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "33333333-0000-4000-8000-%012d", i);
        struct mtr_delivery_row row = delivery(id, 3600, NULL);
        int ins;
        OK(&a, deliveries_insert(a.st, &row, 1, NULL, 0, &ins));
        struct mtr_attempt_row at = {.delivery_id = id, .n = 1, .at = 3700, .http_status = 200};
        OK(&a, record_attempt(a.st, &at, MTR_DELIVERY_DELIVERED, 0));
    }
    uint64_t pruned, rounds = 0, total = 0;
    do { /* payloads of deliveries delivered before 5000, ten at a time */
        OK(&b, prune(b.st, 5000, 0, 0, 10, &pruned));
        total += pruned;
    } while (pruned && ++rounds < 100);
    cr_expect_eq(total, 30, "every payload once: %llu", (unsigned long long)total);
    cr_expect(rounds >= 3, "in batches of at most ten: %llu rounds", (unsigned long long)rounds);
    int found = 0;
    OK(&a, delivery_get(a.st, id, find_body, &found));
    cr_expect_eq(found, 1, "the row stays, its payload is gone");
    do { /* then the rows themselves */
        OK(&b, prune(b.st, 5000, 5000, 5000, 10, &pruned));
    } while (pruned && ++rounds < 200);
    found = 0;
    OK(&a, delivery_get(a.st, id, find_body, &found));
    cr_expect_eq(found, 0, "the row is gone after its history");
    node_close(&b);
    node_close(&a);
}

static int on_delivery(void *arg, const struct mtr_delivery_row *d)
{
    snprintf(arg, 40, "%s", d->id);
    return 0;
}

static int state_of(void *arg, const struct mtr_delivery_row *d)
{
    *(int *)arg = d->state;
    return 1;
}

Test(store, a_node_that_lost_its_lease_cannot_overwrite_the_new_owners_work)
{
    struct node a, b;
    two_nodes(&a, &b);
    fleet(&a, 1);
    cr_assert_not_null(a.ops->record_attempt_as,
                       "the store fences completions (record_attempt_as)");
    const char *id = "44444444-0000-4000-8000-000000000001";
    struct mtr_delivery_row row = delivery(id, 3600, "node-a"); /* leased to a until 4200 */
    int ins, fenced = -1, state = -1;
    char claimed[40] = "";
    OK(&a, deliveries_insert(a.st, &row, 1, NULL, 0, &ins));
    /* a stalls past its lease; b takes the delivery over and is sending it */
    OK(&b, claim_deliveries(b.st, "node-b", 4201, 4801, 10, on_delivery, claimed));
    cr_expect_str_eq(claimed, id, "the expired lease is b's now");
    struct mtr_attempt_row late = {
        .delivery_id = id, .n = 1, .at = 4300, .http_status = 500, .error = "HTTP 500"};
    OK(&a, record_attempt_as(a.st, "node-a", &late, MTR_DELIVERY_FAILED, 0, &fenced));
    cr_expect_eq(fenced, 1, "a's completion is refused");
    OK(&b, delivery_get(b.st, id, state_of, &state));
    cr_expect_eq(state, MTR_DELIVERY_PENDING, "and wrote nothing: still b's, pending");
    struct mtr_attempt_row ok = {.delivery_id = id, .n = 1, .at = 4300, .http_status = 200};
    OK(&b, record_attempt_as(b.st, "node-b", &ok, MTR_DELIVERY_DELIVERED, 0, &fenced));
    cr_expect_eq(fenced, 0, "the owner's completion is written");
    OK(&a, delivery_get(a.st, id, state_of, &state));
    cr_expect_eq(state, MTR_DELIVERY_DELIVERED);
    node_close(&b);
    node_close(&a);
}

static int count_attempts(void *arg, const struct mtr_attempt_row *a)
{
    (void)a;
    (*(int *)arg)++;
    return 0;
}

static int attempts_of(struct node *n, const char *id)
{
    int count = 0;
    OK(n, list_attempts(n->st, id, count_attempts, &count));
    return count;
}

Test(store, a_batch_of_outcomes_is_fenced_outcome_by_outcome)
{
    struct node a, b;
    two_nodes(&a, &b);
    fleet(&a, 1);
    cr_assert_not_null(a.ops->record_attempts_as, "the store records outcomes in batches");
    const char *ids[] = {"55555555-0000-4000-8000-000000000001",
                         "55555555-0000-4000-8000-000000000002",
                         "55555555-0000-4000-8000-000000000003"};
    struct mtr_delivery_row rows[] = {delivery(ids[0], 3600, "node-a"),
                                      delivery(ids[1], 3600, "node-a"),
                                      delivery(ids[2], 3600, "node-a")};
    rows[1].next_attempt_at = rows[1].lease_until = 3000; /* its lease ends first */
    int ins[3], fenced[3] = {-1, -1, -1}, state = -1;
    char claimed[40] = "";
    OK(&a, deliveries_insert(a.st, rows, 3, NULL, 0, ins));
    OK(&b, claim_deliveries(b.st, "node-b", 3001, 3601, 10, on_delivery, claimed));
    cr_assert_str_eq(claimed, ids[1], "b took over the one whose lease ran out");
    struct mtr_attempt_record recs[3];
    for (int i = 0; i < 3; i++)
        recs[i] = (struct mtr_attempt_record){
            .attempt = {.delivery_id = ids[i], .n = 1, .at = 3100, .http_status = 200 + i},
            .new_state = i == 2 ? MTR_DELIVERY_FAILED : MTR_DELIVERY_DELIVERED};
    OK(&a, begin(a.st));
    OK(&a, record_attempts_as(a.st, "node-a", recs, 3, fenced));
    OK(&a, commit(a.st));
    cr_expect(fenced[0] == 0 && fenced[1] == 1 && fenced[2] == 0,
              "only b's delivery is fenced: %d %d %d", fenced[0], fenced[1], fenced[2]);
    OK(&b, delivery_get(b.st, ids[0], state_of, &state));
    cr_expect_eq(state, MTR_DELIVERY_DELIVERED);
    OK(&b, delivery_get(b.st, ids[1], state_of, &state));
    cr_expect_eq(state, MTR_DELIVERY_PENDING, "b's delivery untouched");
    OK(&b, delivery_get(b.st, ids[2], state_of, &state));
    cr_expect_eq(state, MTR_DELIVERY_FAILED);
    cr_expect_eq(attempts_of(&b, ids[0]), 1);
    cr_expect_eq(attempts_of(&b, ids[1]), 0, "no attempt recorded for the fenced outcome");
    cr_expect_eq(attempts_of(&b, ids[2]), 1);
    node_close(&b);
    node_close(&a);
}

Test(store, a_batch_holding_two_attempts_of_one_delivery_keeps_their_order)
{
    struct node a;
    char *dir = make_tmpdir();
    node_open(&a, dir, "node a");
    free(dir);
    fleet(&a, 1);
    const char *id = "66666666-0000-4000-8000-000000000001";
    struct mtr_delivery_row row = delivery(id, 3600, "node-a");
    int ins, fenced[2], state = -1;
    OK(&a, deliveries_insert(a.st, &row, 1, NULL, 0, &ins));
    struct mtr_attempt_record recs[] = {
        {.attempt = {.delivery_id = id, .n = 1, .at = 3700, .http_status = 500},
         .new_state = MTR_DELIVERY_PENDING,
         .next_attempt_at = 3730},
        {.attempt = {.delivery_id = id, .n = 2, .at = 3730, .http_status = 200},
         .new_state = MTR_DELIVERY_DELIVERED}};
    OK(&a, begin(a.st));
    OK(&a, record_attempts_as(a.st, "node-a", recs, 2, fenced));
    OK(&a, commit(a.st));
    OK(&a, delivery_get(a.st, id, state_of, &state));
    cr_expect_eq(state, MTR_DELIVERY_DELIVERED, "the later attempt decides");
    cr_expect_eq(attempts_of(&a, id), 2);
    node_close(&a);
}

struct seen_row {
    int attempts, state, last_status;
    mtr_time next_attempt_at, first_attempt_at;
    char last_error[128];
};

static int copy_row(void *arg, const struct mtr_delivery_row *row)
{
    struct seen_row *s = arg;
    s->attempts = row->attempts;
    s->state = row->state;
    s->last_status = row->last_status;
    s->next_attempt_at = row->next_attempt_at;
    s->first_attempt_at = row->first_attempt_at;
    snprintf(s->last_error, sizeof s->last_error, "%s", row->last_error ? row->last_error : "");
    return 0;
}

Test(store, a_deferral_moves_the_due_time_without_an_attempt_and_is_fenced)
{
    struct node a, b;
    two_nodes(&a, &b);
    fleet(&a, 1);
    cr_assert_not_null(a.ops->defer_deliveries, "the store keeps deferrals (ABI 1.4)");
    const char *ids[] = {"77777777-0000-4000-8000-000000000001",
                         "77777777-0000-4000-8000-000000000002"};
    struct mtr_delivery_row rows[] = {delivery(ids[0], 3600, "node-a"),
                                      delivery(ids[1], 3600, "node-a")};
    rows[1].next_attempt_at = rows[1].lease_until = 3000; /* its lease ends first */
    int ins[2], fenced[2] = {-1, -1};
    char claimed[40] = "";
    OK(&a, deliveries_insert(a.st, rows, 2, NULL, 0, ins));
    struct mtr_attempt_record first = {
        .attempt = {.delivery_id = ids[0], .n = 1, .at = 2900, .http_status = 500},
        .new_state = MTR_DELIVERY_PENDING,
        .next_attempt_at = 2930};
    OK(&a, record_attempts_as(a.st, "node-a", &first, 1, fenced));
    OK(&a, claim_deliveries(a.st, "node-a", 2930, 3530, 1, on_delivery, claimed));
    cr_assert_str_eq(claimed, ids[0], "a holds the retry");
    OK(&b, claim_deliveries(b.st, "node-b", 3001, 3800, 10, on_delivery, claimed));
    cr_assert_str_eq(claimed, ids[1], "b took over the one whose lease ran out");
    struct mtr_deferral d[] = {
        {.delivery_id = ids[0],
         .at = 3100,
         .next_attempt_at = 3700,
         .last_status = 503,
         .last_error = "deferred 600s"},
        {.delivery_id = ids[1], .at = 3100, .next_attempt_at = 3700, .last_error = "deferred"}};
    OK(&a, begin(a.st));
    OK(&a, defer_deliveries(a.st, "node-a", d, 2, fenced));
    OK(&a, commit(a.st));
    cr_expect(fenced[0] == 0 && fenced[1] == 1, "b's is fenced: %d %d", fenced[0], fenced[1]);
    struct seen_row r = {0};
    OK(&a, delivery_get(a.st, ids[0], copy_row, &r));
    cr_expect_eq(r.state, MTR_DELIVERY_PENDING);
    cr_expect_eq(r.attempts, 1, "no attempt counted");
    cr_expect_eq(attempts_of(&a, ids[0]), 1, "and none recorded");
    cr_expect_eq(r.first_attempt_at, 2900, "the round is the same round");
    cr_expect_eq(r.next_attempt_at, 3700);
    cr_expect_eq(r.last_status, 503);
    cr_expect_str_eq(r.last_error, "deferred 600s");
    claimed[0] = '\0';
    OK(&b, claim_deliveries(b.st, "node-b", 3699, 4299, 10, on_delivery, claimed));
    cr_expect_str_eq(claimed, "", "not due before 3700 (b's own is still leased to b)");
    OK(&b, claim_deliveries(b.st, "node-b", 3700, 4300, 10, on_delivery, claimed));
    cr_expect_str_eq(claimed, ids[0], "due at 3700, its lease released");
    OK(&b, delivery_get(b.st, ids[1], copy_row, &r));
    cr_expect_eq(r.next_attempt_at, 3800, "b's delivery untouched (its lease)");
    node_close(&b);
    node_close(&a);
}

Test(store, subjects_find_and_supersede_older_pending_deliveries_of_the_same_vehicles)
{
    struct node a;
    char *dir = make_tmpdir();
    node_open(&a, dir, "node a");
    free(dir);
    fleet(&a, 1);
    cr_assert(a.ops->set_subjects && a.ops->supersede_older && a.ops->older_pending,
              "the store keeps subjects (ABI 1.4)");
    const char *ids[] = {"88888888-0000-4000-8000-000000000001",  /* tick 3600, subject 7 */
                         "88888888-0000-4000-8000-000000000002",  /* tick 3600, subject 9 */
                         "88888888-0000-4000-8000-000000000003",  /* tick 7200, subject 7 */
                         "88888888-0000-4000-8000-000000000004"}; /* tick 7200, subject 7, held */
    struct mtr_delivery_row rows[] = {delivery(ids[0], 3600, NULL), delivery(ids[1], 3600, NULL),
                                      delivery(ids[2], 7200, NULL), delivery(ids[3], 3600, NULL)};
    rows[0].next_attempt_at = 5000;
    rows[3].lease_owner = "node-a"; /* in flight until 9000 */
    rows[3].lease_until = rows[3].next_attempt_at = 9000;
    int ins[4], found = -1, leased = -1;
    int64_t subjects[] = {7, 9, 7, 7};
    mtr_time due = -1;
    uint64_t n = 99;
    OK(&a, deliveries_insert(a.st, rows, 4, NULL, 0, ins));
    OK(&a, set_subjects(a.st, ids, subjects, 4));
    OK(&a, older_pending(a.st, ids[2], 7300, &found, &due, &leased));
    cr_expect(found == 1 && due == 5000 && leased == 1,
              "tick 3600 of subject 7 is pending (one in flight): %d %lld %d", found,
              (long long)due, leased);
    OK(&a, older_pending(a.st, ids[1], 7300, &found, &due, &leased));
    cr_expect_eq(found, 0, "nothing older of subject 9");
    OK(&a, supersede_older(a.st, ids[2], 7300, "superseded", &n));
    cr_expect_eq(n, 1, "the waiting one, not the one held under a lease, nor subject 9's");
    struct seen_row r = {0};
    OK(&a, delivery_get(a.st, ids[0], copy_row, &r));
    cr_expect_eq(r.state, MTR_DELIVERY_FAILED);
    cr_expect_str_eq(r.last_error, "superseded");
    OK(&a, delivery_get(a.st, ids[1], copy_row, &r));
    cr_expect_eq(r.state, MTR_DELIVERY_PENDING);
    OK(&a, delivery_get(a.st, ids[3], copy_row, &r));
    cr_expect_eq(r.state, MTR_DELIVERY_PENDING);
    node_close(&a);
}

static int64_t take(struct node *n, const char *key, mtr_time now, int64_t want)
{
    int64_t granted = -1;
    OK(n, quota_take(n->st, key, 60, 5, now, want, &granted)); /* 1 a second, 5 at most */
    return granted;
}

Test(store, a_rate_limit_is_one_budget_for_every_node)
{
    struct node a, b;
    two_nodes(&a, &b);
    cr_assert_not_null(a.ops->quota_take, "the store keeps shared rate limits (quota_take)");
    cr_expect_eq(take(&a, "app", 1000, 3), 3, "a new bucket starts full");
    cr_expect_eq(take(&b, "app", 1000, 5), 2, "what a took is gone for b");
    cr_expect_eq(take(&a, "app", 1000, 1), 0, "empty");
    cr_expect_eq(take(&b, "app", 1002, 5), 2, "two seconds refill two tokens");
    cr_expect_eq(take(&a, "app", 1001, 5), 0, "a clock behind the bucket's refills nothing");
    cr_expect_eq(take(&a, "app", 1100, 9), 5, "never more than the burst");
    cr_expect_eq(take(&b, "other", 1100, 1), 1, "budgets are by key");
    node_close(&b);
    node_close(&a);
}

struct taker {
    struct node *n;
    int64_t got;
    int rc;
};

static void *take_many(void *arg)
{
    struct taker *t = arg;
    for (int i = 0; i < 40 && t->rc == MTR_OK; i++) {
        int64_t g = 0;
        t->rc = t->n->ops->quota_take(t->n->st, "race", 60, 50, 2000, 1, &g);
        t->got += g;
    }
    return NULL;
}

Test(store, two_nodes_taking_at_once_never_get_more_than_the_budget)
{
    struct node a, b;
    two_nodes(&a, &b);
    struct taker ta = {.n = &a}, tb = {.n = &b};
    pthread_t x, y;
    pthread_create(&x, NULL, take_many, &ta);
    pthread_create(&y, NULL, take_many, &tb);
    pthread_join(x, NULL);
    pthread_join(y, NULL);
    cr_assert(ta.rc == MTR_OK && tb.rc == MTR_OK, "%s / %s", a.inst->ctx.error, b.inst->ctx.error);
    cr_expect_eq(ta.got + tb.got, 50, "80 asks at one instant share a burst of 50: got %lld + %lld",
                 (long long)ta.got, (long long)tb.got);
    node_close(&b);
    node_close(&a);
}

struct nodes_seen {
    char ids[4][32];
    uint64_t leases[4];
    size_t n;
};

static int on_node(void *arg, const struct mtr_node_row *n)
{
    struct nodes_seen *s = arg;
    if (s->n < 4) {
        snprintf(s->ids[s->n], sizeof s->ids[0], "%s", n->id);
        s->leases[s->n] = n->leases;
    }
    s->n++;
    return 0;
}

Test(store, nodes_say_they_are_alive_and_are_listed_with_their_leases)
{
    struct node a, b;
    two_nodes(&a, &b);
    cr_assert(a.ops->node_heartbeat && a.ops->nodes_list, "the store lists the cluster's nodes");
    fleet(&a, 20);
    uint64_t n;
    OK(&a, materialize_tick(a.st, WEBHOOK, 3600, MTR_JOB_DUE, 0, 0, &n));
    struct mtr_node_row na = {.id = "node-a", .host = "h1", .started_at = 3000, .last_seen = 3600};
    struct mtr_node_row nb = {.id = "node-b", .host = "h2", .started_at = 3000, .last_seen = 3500};
    OK(&a, node_heartbeat(a.st, &na));
    OK(&b, node_heartbeat(b.st, &nb));
    cr_expect_eq(claim(&a, "node-a", 3600), 20);
    struct nodes_seen s = {0};
    OK(&b, nodes_list(b.st, 3400, 3600, on_node, &s));
    cr_expect_eq(s.n, 2, "both nodes");
    cr_expect_str_eq(s.ids[0], "node-a");
    cr_expect_eq(s.leases[0], 20, "a holds the jobs it claimed");
    cr_expect_eq(s.leases[1], 0);
    memset(&s, 0, sizeof s);
    OK(&b, nodes_list(b.st, 3550, 3600, on_node, &s));
    cr_expect_eq(s.n, 1, "a node not seen lately is not listed");
    node_close(&b);
    node_close(&a);
}

Test(store, a_node_that_lost_a_jobs_lease_cannot_reschedule_or_settle_it)
{
    struct node a, b;
    two_nodes(&a, &b);
    cr_assert(a.ops->job_retry_as && a.ops->job_set_state_as, "the store fences jobs' completions");
    fleet(&a, 1);
    uint64_t n;
    int fenced = -1;
    OK(&a, materialize_tick(a.st, WEBHOOK, 3600, MTR_JOB_DUE, 0, 0, &n));
    cr_assert_eq(claim(&a, "node-a", 3600), 1);
    cr_assert_eq(claim(&b, "node-b", 3600 + 601), 1, "b takes the job over");
    struct mtr_job_key key = {WEBHOOK, "v0000", 3600};
    OK(&a, job_retry_as(a.st, "node-a", &key, 3700, "asleep", &fenced));
    cr_expect_eq(fenced, 1, "a cannot reschedule it");
    OK(&a, job_set_state_as(a.st, "node-a", &key, MTR_JOB_MISSED, &fenced));
    cr_expect_eq(fenced, 1, "nor settle it");
    cr_expect_eq(jobs_in(&a, MTR_JOB_DUE), 1, "it is still due, and b's");
    cr_expect_eq(claim(&a, "node-a", 3600 + 700), 0, "b's lease holds");
    OK(&b, job_set_state_as(b.st, "node-b", &key, MTR_JOB_SENT, &fenced));
    cr_expect_eq(fenced, 0, "the owner settles it");
    cr_expect_eq(jobs_in(&a, MTR_JOB_SENT), 1);
    node_close(&b);
    node_close(&a);
}

/* The keys of claimed jobs, copied out. */
struct keys {
    struct mtr_job_key k[16];
    char vehicle[16][16];
    size_t n;
};

static int keep_key(void *arg, const struct mtr_job *j)
{
    struct keys *ks = arg;
    if (ks->n < 16) {
        snprintf(ks->vehicle[ks->n], sizeof ks->vehicle[ks->n], "%s", j->key.vehicle_id);
        ks->k[ks->n] = (struct mtr_job_key){WEBHOOK, ks->vehicle[ks->n], j->key.tick};
    }
    ks->n++;
    return 0;
}

Test(store, a_held_claim_writes_no_lease_and_ends_with_its_transaction)
{
    /* ABI 1.5, optional: a store that cannot hold claims in a transaction leaves it NULL */
    struct node a, b;
    two_nodes(&a, &b);
    if (!a.ops->claim_jobs_held) {
        node_close(&b);
        node_close(&a);
        cr_skip_test("this store leases every claim (claim_jobs_held is optional)");
    }
    fleet(&a, 5);
    uint64_t n;
    OK(&a, materialize_tick(a.st, WEBHOOK, 3600, MTR_JOB_DUE, 0, 0, &n));
    struct keys ks = {0};
    cr_expect_neq(a.ops->claim_jobs_held(a.st, 3600, 100, keep_key, &ks), MTR_OK,
                  "a held claim needs the caller's transaction");
    cr_expect_eq(ks.n, 0);
    /* claimed, then rolled back (a crash does the same): every job is due as it was */
    OK(&a, begin(a.st));
    OK(&a, claim_jobs_held(a.st, 3600, 100, keep_key, &ks));
    cr_expect_eq(ks.n, 5);
    OK(&a, rollback(a.st));
    struct claimed c = {0};
    OK(&b, claim_jobs(b.st, "node-b", 3600, 100000, 10000, on_job, &c));
    cr_expect_eq(c.n, 5, "no lease was written: another node claims them all");
    cr_expect_eq(c.due_at, 3600, "still due when they were");
    /* claimed and settled in one transaction: nothing is left to claim */
    OK(&a, materialize_tick(a.st, WEBHOOK, 7200, MTR_JOB_DUE, 0, 0, &n));
    memset(&ks, 0, sizeof ks);
    OK(&a, begin(a.st));
    OK(&a, claim_jobs_held(a.st, 7200, 100, keep_key, &ks));
    cr_assert_eq(ks.n, 5);
    struct mtr_delivery_row row = delivery("22222222-0000-4000-8000-000000000001", 7200, NULL);
    OK(&a, deliveries_insert(a.st, &row, 1, ks.k, ks.n, NULL));
    OK(&a, commit(a.st));
    cr_expect_eq(claim(&b, "node-b", 7200 + 10000), 0, "the held jobs were sent");
    /* committed unsettled (the core never does): no lease holds them, they are due now */
    OK(&a, materialize_tick(a.st, WEBHOOK, 10800, MTR_JOB_DUE, 0, 0, &n));
    memset(&ks, 0, sizeof ks);
    OK(&a, begin(a.st));
    OK(&a, claim_jobs_held(a.st, 10800, 100, keep_key, &ks));
    OK(&a, commit(a.st));
    cr_expect_eq(ks.n, 5);
    cr_expect_eq(claim(&b, "node-b", 10800), 5, "no lease was written");
    node_close(&b);
    node_close(&a);
}
