/* Store backend `postgres`: the ledger of SPEC section 7 in PostgreSQL, for
 * several metronome nodes sharing one database. The same guarantees as the
 * SQLite store, kept by the database instead of by one writer: a tick is
 * materialized once because a (webhook, tick) row is inserted first under a
 * unique key (the node that loses the race inserts nothing); jobs and
 * deliveries are claimed with one UPDATE over a SELECT ... FOR UPDATE SKIP
 * LOCKED, so two nodes never claim the same row; a completion names the
 * lease it was claimed under (record_attempt_as) and is refused once another
 * node holds it. The schema is versioned and migrated under an advisory lock,
 * so nodes starting together migrate once.
 *
 * The instances of a process (the engine's, the admin API's) share a pool
 * of at most max_connections connections. Statements are sent with
 * PQexecParams, batches as binary arrays; payloads are text (the core's JSON
 * is UTF-8 without NUL), sealed tokens bytea. */
#include <metronome/metronome.h>

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations)) /* one per migration */
#define MIGRATION_LOCK 7212350101 /* pg_advisory_lock key: "metronome" migrations */

#define POOL_WAIT_S 30 /* for a connection when all are busy, then a transient failure */

/* The connections of every instance in this process with the same dsn and
 * schema (the engine's, the admin API's): at most max open at once. */
struct pool {
    struct pool *next;
    char *key; /* dsn NUL schema */
    size_t key_len;
    int max, open, refs;
    PGconn **idle;
    int n_idle;
    pthread_mutex_t mu;
    pthread_cond_t freed;
};

struct pg_store {
    const struct mtr_host_api *host;
    mtr_ctx *ctx;
    const char *dsn;
    const char *schema;
    int64_t max_connections;
    struct pool *pool;
    PGconn *db; /* held for one statement, or from BEGIN to its end */
    int in_tx;
    int pinned;      /* keep db between statements (a session-level lock is held) */
    int transient;   /* the last failure was the connection's: MTR_EAGAIN */
    int lost;        /* the database was unreachable: say so when it is back */
    double retry_at; /* monotonic seconds: when to try to reconnect */
    double backoff;  /* seconds before the next try, doubling to 5 */
};

static const char *const migrations[] = {
    "CREATE TABLE IF NOT EXISTS webhooks(id text PRIMARY KEY, name text NOT NULL UNIQUE, "
    "callback_uri text NOT NULL, definition text NOT NULL, state int NOT NULL, reason text, "
    "state_at bigint NOT NULL, active_from bigint NOT NULL, last_tick bigint NOT NULL, "
    "created_at bigint NOT NULL);"
    "CREATE TABLE IF NOT EXISTS vehicles(id text PRIMARY KEY, source text NOT NULL, access_token "
    "bytea, refresh_token bytea, access_expires bigint NOT NULL DEFAULT 0, needs_reauth int NOT "
    "NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS subscriptions(webhook_id text NOT NULL, vehicle_id text NOT NULL, "
    "made_at bigint NOT NULL, removed_at bigint, spread_key bigint NOT NULL, PRIMARY "
    "KEY(webhook_id, vehicle_id));"
    "CREATE TABLE IF NOT EXISTS ticks(webhook_id text NOT NULL, tick bigint NOT NULL, PRIMARY "
    "KEY(webhook_id, tick));"
    "CREATE TABLE IF NOT EXISTS jobs(webhook_id text NOT NULL, vehicle_id text NOT NULL, tick "
    "bigint NOT NULL, state int NOT NULL, due_at bigint NOT NULL, spread_key bigint NOT NULL, "
    "fetch_attempts int NOT NULL DEFAULT 0, last_error text, lease_owner text, lease_until bigint, "
    "PRIMARY KEY(webhook_id, vehicle_id, tick));"
    "CREATE INDEX IF NOT EXISTS jobs_due ON jobs(due_at, spread_key) WHERE state = 0;"
    "CREATE TABLE IF NOT EXISTS deliveries(seq bigserial UNIQUE, id text PRIMARY KEY, webhook_id "
    "text NOT NULL, sink text NOT NULL, tick bigint NOT NULL, kind int NOT NULL, state int NOT "
    "NULL, attempts int NOT NULL, round_start int NOT NULL, created_at bigint NOT NULL, "
    "first_attempt_at bigint NOT NULL, next_attempt_at bigint NOT NULL, body text, vehicles int "
    "NOT NULL, last_status int NOT NULL, last_error text, updated_at bigint NOT NULL, lease_owner "
    "text, lease_until bigint);"
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(next_attempt_at) WHERE state = 0;"
    "CREATE INDEX IF NOT EXISTS deliveries_webhook ON deliveries(webhook_id, tick);"
    "CREATE TABLE IF NOT EXISTS attempts(delivery_id text NOT NULL, n int NOT NULL, at bigint NOT "
    "NULL, http_status int NOT NULL, error text, latency_us bigint NOT NULL, PRIMARY "
    "KEY(delivery_id, n));"
    "CREATE TABLE IF NOT EXISTS nodes(id text PRIMARY KEY, host text NOT NULL, started_at bigint "
    "NOT NULL, last_seen bigint NOT NULL);",
    /* 2: shared rate limits (quota_take) */
    ("CREATE TABLE IF NOT EXISTS quotas(key text PRIMARY KEY, tokens double precision NOT NULL, "
     "at bigint NOT NULL, granted bigint NOT NULL);"),
    /* 3: a delivery's subject, for supersede and ordered */
    ("ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS subject bigint;"
     "CREATE INDEX IF NOT EXISTS deliveries_subject ON deliveries(webhook_id, sink, subject, tick) "
     "WHERE state = 0 AND subject IS NOT NULL;"),
};

/* ---- plumbing ---------------------------------------------------------------------------- */

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The status a failed call answers: MTR_EAGAIN when the connection is gone
 * (the core keeps what it holds and calls again; the next call reconnects). */
static int status_of(void *state)
{
    return ((struct pg_store *)state)->transient ? MTR_EAGAIN : MTR_ERR;
}

static int fail_db(struct pg_store *s, const char *what, PGresult *r)
{
    const char *msg = r ? PQresultErrorMessage(r) : "";
    if (!msg || !*msg)
        msg = s->db ? PQerrorMessage(s->db) : "no connection";
    s->transient = !s->db || PQstatus(s->db) != CONNECTION_OK;
    if (s->transient)
        s->in_tx = 0; /* the server ended it with the connection */
    s->host->set_error(s->ctx, "postgres: %s: %.600s", what, msg);
    if (r)
        PQclear(r);
    return status_of(s);
}

static int session_setup(struct pg_store *s, PGconn *db);

/* ---- the connection pool ---------------------------------------------------------------------
 * Instances draw connections from their process's pool for their dsn and
 * schema: a connection is held for one statement, or for a transaction from
 * BEGIN to its end, then goes back, so the engine and the admin API's
 * threads together never open more than max_connections. One that finds
 * them all busy waits for one (POOL_WAIT_S at most). */

static pthread_mutex_t pools_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pool *pools;

static struct pool *pool_get(const char *dsn, const char *schema, int max)
{
    size_t a = strlen(dsn), b = strlen(schema), len = a + 1 + b;
    pthread_mutex_lock(&pools_mu);
    struct pool *p = pools;
    while (p && !(p->key_len == len && memcmp(p->key, dsn, a) == 0 &&
                  strcmp(p->key + a + 1, schema) == 0))
        p = p->next;
    if (!p && (p = calloc(1, sizeof *p)) != NULL) {
        p->key = malloc(len + 1);
        p->idle = calloc((size_t)max, sizeof *p->idle);
        if (!p->key || !p->idle || pthread_mutex_init(&p->mu, NULL) != 0) {
            free(p->key);
            free(p->idle);
            free(p);
            p = NULL;
        } else {
            memcpy(p->key, dsn, a + 1);
            memcpy(p->key + a + 1, schema, b + 1);
            p->key_len = len;
            p->max = max;
            pthread_cond_init(&p->freed, NULL);
            p->next = pools;
            pools = p;
        }
    }
    if (p)
        p->refs++;
    pthread_mutex_unlock(&pools_mu);
    return p;
}

static void pool_put(struct pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&pools_mu);
    if (--p->refs == 0) {
        struct pool **at = &pools;
        while (*at != p)
            at = &(*at)->next;
        *at = p->next;
        for (int i = 0; i < p->n_idle; i++)
            PQfinish(p->idle[i]);
        pthread_cond_destroy(&p->freed);
        pthread_mutex_destroy(&p->mu);
        free(p->idle);
        free(p->key);
        free(p);
    }
    pthread_mutex_unlock(&pools_mu);
}

/* A connection for s: an idle one, or a new one while fewer than max are
 * open, or the next one given back. NULL with the error set. */
static PGconn *pool_take(struct pg_store *s)
{
    struct pool *p = s->pool;
    PGconn *db = NULL;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += POOL_WAIT_S;
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    while (p->n_idle == 0 && p->open >= p->max && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&p->freed, &p->mu, &until);
    if (p->n_idle > 0)
        db = p->idle[--p->n_idle];
    else if (p->open < p->max)
        p->open++; /* ours to open, outside the lock */
    else {
        pthread_mutex_unlock(&p->mu);
        s->host->set_error(s->ctx, "postgres: all %d connections stayed busy for %d s", p->max,
                           POOL_WAIT_S);
        return NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (db)
        return db;
    /* the dsn's own application_name wins over this one, which names us in pg_stat_activity */
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const vals[] = {s->dsn ? s->dsn : "", "metronome", NULL};
    db = PQconnectdbParams(keys, vals, 1);
    if (db && PQstatus(db) == CONNECTION_OK && session_setup(s, db) == MTR_OK)
        return db;
    s->host->set_error(s->ctx, "postgres: the database is unreachable: %.400s",
                       db ? PQerrorMessage(db) : "out of memory");
    if (db)
        PQfinish(db);
    pthread_mutex_lock(&p->mu);
    p->open--;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Gives s's connection back: kept when it is sound and idle, closed
 * otherwise - and then the idle ones too, which a server that went away has
 * most likely dropped as well. */
static void pool_give(struct pg_store *s)
{
    struct pool *p = s->pool;
    PGconn *db = s->db;
    s->db = NULL;
    if (!db)
        return;
    int sound = PQstatus(db) == CONNECTION_OK && PQtransactionStatus(db) == PQTRANS_IDLE;
    PGconn *drop[64];
    int n_drop = 0;
    pthread_mutex_lock(&p->mu);
    if (sound) {
        p->idle[p->n_idle++] = db;
    } else {
        drop[n_drop++] = db;
        p->open--;
        while (p->n_idle > 0 && n_drop < 64) {
            drop[n_drop++] = p->idle[--p->n_idle];
            p->open--;
        }
    }
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < n_drop; i++)
        PQfinish(drop[i]);
}

/* After a statement: the connection goes back unless a transaction (or a
 * session-level lock) holds it. */
static void done_with(struct pg_store *s)
{
    if (!s->in_tx && !s->pinned)
        pool_give(s);
}

/* Whether s holds a sound connection, taking one from the pool when it
 * holds none (after a failure, not before its backoff - 0.25 s doubling to
 * 5 s - has passed). */
static int connected(struct pg_store *s)
{
    if (s->db && PQstatus(s->db) == CONNECTION_OK)
        return 1;
    if (s->db) { /* broken between statements */
        int in_tx = s->in_tx;
        s->in_tx = 0;
        pool_give(s);
        if (in_tx) { /* the server ended the transaction: never go on with its rest alone */
            s->transient = 1;
            s->host->set_error(s->ctx, "postgres: the connection was lost in a transaction");
            return 0;
        }
    }
    double now = mono();
    if (s->lost && now < s->retry_at) {
        s->transient = 1;
        s->host->set_error(s->ctx, "postgres: the database is unreachable; trying again");
        return 0;
    }
    if (!(s->db = pool_take(s))) {
        s->transient = 1;
        s->lost = 1;
        s->backoff = s->backoff ? (s->backoff * 2 > 5 ? 5 : s->backoff * 2) : 0.25;
        s->retry_at = now + s->backoff;
        return 0;
    }
    if (s->lost)
        s->host->log(s->ctx, MTR_LOG_WARN, "connected to the database again");
    s->lost = 0;
    s->backoff = 0;
    s->transient = 0;
    return 1;
}

/* Runs sql with text parameters (NULL for SQL NULL); binary marks bytea
 * parameters (lens). Returns the result (the caller clears it) or NULL with
 * the error set. */
static PGresult *q(struct pg_store *s, const char *what, const char *sql, int n,
                   const char *const *vals, const int *lens, const int *binary)
{
    if (!connected(s))
        return NULL;
    s->transient = 0;
    PGresult *r = PQexecParams(s->db, sql, n, NULL, vals, lens, binary, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fail_db(s, what, r);
        r = NULL;
    }
    done_with(s);
    return r;
}

/* Runs sql for its effect; *changed (may be NULL) gets the rows touched. */
static int run(struct pg_store *s, const char *what, const char *sql, int n,
               const char *const *vals, uint64_t *changed)
{
    PGresult *r = q(s, what, sql, n, vals, NULL, NULL);
    if (!r)
        return status_of(s);
    if (changed)
        *changed = strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return MTR_OK;
}

/* Numbers as parameters: each call formats into its own slot. */
struct nums {
    char v[12][24];
    int k;
};

static const char *num(struct nums *n, long long v)
{
    char *slot = n->v[n->k++ % 12];
    snprintf(slot, 24, "%lld", v);
    return slot;
}

static const char *txt(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static long long i64(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Statements without parameters, several at once (PQexec allows that). */
static int exec(struct pg_store *s, const char *what, const char *sql)
{
    if (!connected(s))
        return status_of(s);
    s->transient = 0;
    PGresult *r = PQexec(s->db, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? MTR_OK : fail_db(s, what, r);
    if (rc == MTR_OK)
        PQclear(r);
    done_with(s);
    return rc;
}

/* ---- arrays: one statement for a whole batch ---------------------------------------------
 * A batch of rows goes to the server as one array per column in PostgreSQL's
 * binary array format (no quoting of the JSON inside), and one statement
 * unnests them: the server parses, plans and starts the statement once per
 * batch instead of once per row. */

#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25

struct arr {
    unsigned char *p;
    size_t len, cap;
    uint32_t n;
    int nulls, oom;
};

static void arr_put(struct arr *a, const void *bytes, size_t len)
{
    if (a->oom)
        return;
    if (a->len + len > a->cap) {
        size_t cap = a->cap ? a->cap : 256;
        while (cap < a->len + len)
            cap *= 2;
        unsigned char *p = realloc(a->p, cap);
        if (!p) {
            a->oom = 1;
            return;
        }
        a->p = p;
        a->cap = cap;
    }
    memcpy(a->p + a->len, bytes, len);
    a->len += len;
}

static void arr_u32(struct arr *a, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    arr_put(a, b, 4);
}

static void arr_begin(struct arr *a, uint32_t oid)
{
    *a = (struct arr){0};
    arr_u32(a, 1);
    arr_u32(a, 0);
    arr_u32(a, oid);
    arr_u32(a, 0); /* the length, set by arr_end */
    arr_u32(a, 1);
}

static void arr_text(struct arr *a, const char *s, size_t len)
{
    a->n++;
    if (!s) {
        a->nulls = 1;
        arr_u32(a, UINT32_MAX); /* -1: NULL */
        return;
    }
    arr_u32(a, (uint32_t)len);
    arr_put(a, s, len);
}

static void arr_str(struct arr *a, const char *s)
{
    arr_text(a, s, s ? strlen(s) : 0);
}

static void arr_i64(struct arr *a, int64_t v)
{
    a->n++;
    arr_u32(a, 8);
    arr_u32(a, (uint32_t)((uint64_t)v >> 32));
    arr_u32(a, (uint32_t)v);
}

static void arr_i32(struct arr *a, int32_t v)
{
    a->n++;
    arr_u32(a, 4);
    arr_u32(a, (uint32_t)v);
}

static void arr_end(struct arr *a)
{
    if (a->oom)
        return;
    unsigned char *p = a->p;
    p[7] = (unsigned char)a->nulls;
    p[12] = (unsigned char)(a->n >> 24);
    p[13] = (unsigned char)(a->n >> 16);
    p[14] = (unsigned char)(a->n >> 8);
    p[15] = (unsigned char)a->n;
}

/* Runs sql with the k arrays as its parameters $1..$k and then the extra
 * text parameters (NULL for none). */
static PGresult *q_arrays(struct pg_store *s, const char *what, const char *sql, struct arr *arrs,
                          int k, const char *const *extra, int n_extra)
{
    const char *vals[16];
    int lens[16], bin[16];
    for (int i = 0; i < k; i++) {
        arr_end(&arrs[i]);
        if (arrs[i].oom || arrs[i].len > INT32_MAX) {
            s->host->set_error(s->ctx, "postgres: %s: out of memory", what);
            s->transient = 0;
            return NULL;
        }
        vals[i] = (const char *)arrs[i].p;
        lens[i] = (int)arrs[i].len;
        bin[i] = 1;
    }
    for (int i = 0; i < n_extra; i++) {
        vals[k + i] = extra[i];
        lens[k + i] = 0;
        bin[k + i] = 0;
    }
    return q(s, what, sql, k + n_extra, vals, lens, bin);
}

static void arrs_free(struct arr *arrs, int k)
{
    for (int i = 0; i < k; i++)
        free(arrs[i].p);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The ids of column 0 of r, sorted, for found_in (NULL on no memory). */
static const char **sorted_ids(PGresult *r)
{
    int n = PQntuples(r);
    const char **ids = malloc(((size_t)n + 1) * sizeof *ids);
    for (int i = 0; ids && i < n; i++)
        ids[i] = PQgetvalue(r, i, 0);
    if (ids)
        qsort(ids, (size_t)n, sizeof *ids, cmp_str);
    return ids;
}

static int found_in(const char **ids, int n, const char *id)
{
    return bsearch(&id, ids, (size_t)n, sizeof *ids, cmp_str) != NULL;
}

static int pg_begin(void *state)
{
    struct pg_store *s = state;
    s->in_tx = 1; /* the connection stays with s until the transaction ends */
    int rc = exec(s, "begin", "BEGIN");
    if (rc != MTR_OK) {
        s->in_tx = 0;
        done_with(s);
    }
    return rc;
}

static int pg_commit(void *state)
{
    struct pg_store *s = state;
    s->in_tx = 0;
    return exec(s, "commit", "COMMIT");
}

static int pg_rollback(void *state)
{
    struct pg_store *s = state;
    s->in_tx = 0;
    return exec(s, "rollback", "ROLLBACK");
}

/* A transaction of the call's own unless the core holds one. */
static int tx_enter(struct pg_store *s, int *own)
{
    *own = !s->in_tx;
    return *own ? pg_begin(s) : MTR_OK;
}

static int tx_leave(struct pg_store *s, int own, int rc)
{
    if (!own)
        return rc;
    if (rc == MTR_OK)
        return pg_commit(s);
    pg_rollback(s);
    return rc;
}

/* ---- life cycle -------------------------------------------------------------------------- */

static int pg_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **out)
{
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    s->host = host;
    s->ctx = ctx;
    s->dsn = host->get_string(ctx, "dsn");
    s->schema = host->get_string(ctx, "schema");
    s->max_connections = host->get_int(ctx, "max_connections");
    *out = s;
    size_t n = s->schema ? strlen(s->schema) : 0;
    int ok = n > 0 && n < 64 && s->schema[0] >= 'a' && s->schema[0] <= 'z';
    for (size_t i = 0; ok && i < n; i++)
        ok = (s->schema[i] >= 'a' && s->schema[i] <= 'z') ||
             (s->schema[i] >= '0' && s->schema[i] <= '9') || s->schema[i] == '_';
    if (!ok) {
        host->set_error(ctx, "schema '%.64s': want 1-63 of a-z 0-9 _, starting with a letter",
                        s->schema ? s->schema : "");
        return MTR_ERR;
    }
    return MTR_OK;
}

static int migrate(struct pg_store *s)
{
    struct nums n = {0};
    const char *key[] = {num(&n, MIGRATION_LOCK)};
    if (run(s, "lock for migrations", "SELECT pg_advisory_lock($1)", 1, key, NULL) != MTR_OK)
        return MTR_ERR;
    int rc = exec(s, "create schema table",
                  "CREATE TABLE IF NOT EXISTS metronome_schema(version int NOT NULL)");
    PGresult *r = rc == MTR_OK ? q(s, "read schema version",
                                   "SELECT coalesce(max(version), 0) FROM metronome_schema", 0,
                                   NULL, NULL, NULL)
                               : NULL;
    int version = r ? (int)i64(r, 0, 0) : -1;
    if (r)
        PQclear(r);
    if (version < 0)
        rc = MTR_ERR;
    if (rc == MTR_OK && version > SCHEMA_VERSION) {
        s->host->set_error(s->ctx,
                           "postgres: the ledger's schema is version %d, newer than this "
                           "metronome's %d: upgrade metronome",
                           version, SCHEMA_VERSION);
        rc = MTR_ERR;
    }
    for (int v = version; rc == MTR_OK && v < SCHEMA_VERSION; v++) {
        char sql[64];
        rc = exec(s, "migrate", "BEGIN");
        if (rc == MTR_OK)
            rc = exec(s, "migrate", migrations[v]);
        snprintf(sql, sizeof sql, "INSERT INTO metronome_schema VALUES (%d)", v + 1);
        if (rc == MTR_OK)
            rc = exec(s, "migrate", sql);
        rc = rc == MTR_OK ? exec(s, "migrate", "COMMIT") : (exec(s, "migrate", "ROLLBACK"), rc);
    }
    run(s, "unlock", "SELECT pg_advisory_unlock($1)", 1, key, NULL);
    return rc;
}

/* What every connection is set up with: quiet notices, the schema. */
static int session_setup(struct pg_store *s, PGconn *db)
{
    char sql[256]; /* the schema name was checked: a-z 0-9 _ only */
    snprintf(sql, sizeof sql,
             "SET client_min_messages = warning; CREATE SCHEMA IF NOT EXISTS %s; SET search_path "
             "TO %s",
             s->schema, s->schema);
    PGresult *r = PQexec(db, sql);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (r)
        PQclear(r);
    return ok ? MTR_OK : MTR_ERR;
}

static int pg_start(void *state)
{
    struct pg_store *s = state;
    s->pool = pool_get(s->dsn ? s->dsn : "", s->schema, (int)s->max_connections);
    if (!s->pool) {
        s->host->set_error(s->ctx, "postgres: out of memory");
        return MTR_ERR;
    }
    if (!(s->db = pool_take(s)))
        return MTR_ERR; /* at start, a database that is not there is an error, not a wait */
    s->pinned = 1;      /* the migrations' advisory lock is the session's */
    int rc = migrate(s);
    s->pinned = 0;
    done_with(s);
    return rc;
}

static void pg_stop(void *state)
{
    struct pg_store *s = state;
    if (s->pool) {
        s->in_tx = s->pinned = 0;
        pool_give(s);
        pool_put(s->pool);
    }
    s->pool = NULL;
}

static void pg_destroy(void *state)
{
    pg_stop(state);
    free(state);
}

/* ---- webhooks -------------------------------------------------------------------------- */

static int pg_webhook_upsert(void *state, const struct mtr_webhook_row *w, mtr_time now)
{
    struct pg_store *s = state;
    struct nums n = {0};
    const char *v[] = {w->id, w->name, w->callback_uri, w->definition, num(&n, now)};
    return run(s, "save webhook",
               "INSERT INTO webhooks(id, name, callback_uri, definition, state, state_at, "
               "active_from, last_tick, created_at) VALUES($1, $2, $3, $4, 0, $5, 0, 0, $5) "
               "ON CONFLICT(name) DO UPDATE SET definition = excluded.definition, "
               "state = CASE WHEN webhooks.callback_uri <> excluded.callback_uri THEN 0 ELSE "
               "webhooks.state END, reason = CASE WHEN webhooks.callback_uri <> "
               "excluded.callback_uri THEN NULL ELSE webhooks.reason END, state_at = CASE WHEN "
               "webhooks.callback_uri <> excluded.callback_uri THEN $5 ELSE webhooks.state_at END, "
               "callback_uri = excluded.callback_uri",
               5, v, NULL);
}

static int pg_webhook_list(void *state, const char *name, mtr_webhook_fn fn, void *arg)
{
    struct pg_store *s = state;
    const char *v[] = {name};
    PGresult *r = q(s, "list webhooks",
                    name ? "SELECT id, name, callback_uri, definition, state, reason, state_at, "
                           "active_from, last_tick FROM webhooks WHERE name = $1 OR id = $1"
                         : "SELECT id, name, callback_uri, definition, state, reason, state_at, "
                           "active_from, last_tick FROM webhooks ORDER BY name",
                    name ? 1 : 0, name ? v : NULL, NULL, NULL);
    if (!r)
        return status_of(state);
    for (int i = 0; i < PQntuples(r); i++) {
        struct mtr_webhook_row w = {.id = txt(r, i, 0),
                                    .name = txt(r, i, 1),
                                    .callback_uri = txt(r, i, 2),
                                    .definition = txt(r, i, 3),
                                    .state = (int)i64(r, i, 4),
                                    .reason = txt(r, i, 5),
                                    .state_at = i64(r, i, 6),
                                    .active_from = i64(r, i, 7),
                                    .last_tick = i64(r, i, 8)};
        if (fn(arg, &w) != 0)
            break;
    }
    PQclear(r);
    return MTR_OK;
}

static int pg_webhook_set_state(void *state, const char *id, int new_state, const char *reason,
                                mtr_time now)
{
    struct nums n = {0};
    const char *v[] = {id, num(&n, new_state), reason, num(&n, now)};
    return run(
        state, "set webhook state",
        "UPDATE webhooks SET state = $2::int, reason = $3, state_at = $4, active_from = CASE "
        "WHEN $2::int = 1 THEN $4 ELSE active_from END WHERE id = $1",
        4, v, NULL);
}

static int pg_webhook_set_last_tick(void *state, const char *id, mtr_time tick)
{
    struct nums n = {0};
    const char *v[] = {id, num(&n, tick)};
    return run(state, "set last tick",
               "UPDATE webhooks SET last_tick = greatest(last_tick, $2) WHERE id = $1", 2, v, NULL);
}

static int pg_webhook_delete(void *state, const char *id, mtr_time now)
{
    struct pg_store *s = state;
    struct nums n = {0};
    const char *v[] = {id, num(&n, now)};
    int own, rc = tx_enter(s, &own);
    if (rc == MTR_OK)
        rc = run(s, "delete webhook",
                 "UPDATE subscriptions SET removed_at = $2 WHERE webhook_id = $1 AND removed_at "
                 "IS NULL",
                 2, v, NULL);
    if (rc == MTR_OK)
        rc = run(s, "delete webhook",
                 "UPDATE jobs SET state = 3, lease_owner = NULL, lease_until = NULL WHERE "
                 "webhook_id = $1 AND state IN (0, 1) AND $2::bigint IS NOT NULL",
                 2, v, NULL);
    if (rc == MTR_OK)
        rc = run(s, "delete webhook",
                 "UPDATE deliveries SET state = 2, last_error = 'webhook deleted', updated_at = "
                 "$2, lease_owner = NULL, lease_until = NULL WHERE webhook_id = $1 AND state = 0",
                 2, v, NULL);
    if (rc == MTR_OK)
        rc = run(s, "delete webhook", "DELETE FROM webhooks WHERE id = $1", 1, v, NULL);
    return tx_leave(s, own, rc);
}

/* ---- vehicles and subscriptions ------------------------------------------------------ */

static int pg_vehicle_upsert(void *state, const struct mtr_vehicle_row *v)
{
    struct nums n = {0};
    const char *vals[] = {v->id,
                          v->source,
                          v->access_token,
                          v->refresh_token,
                          num(&n, v->access_expires),
                          num(&n, v->needs_reauth)};
    const int lens[] = {0, 0, (int)v->access_len, (int)v->refresh_len, 0, 0};
    const int bin[] = {0, 0, 1, 1, 0, 0};
    PGresult *r = q(state, "save vehicle",
                    "INSERT INTO vehicles(id, source, access_token, refresh_token, "
                    "access_expires, needs_reauth) VALUES($1, $2, $3, $4, $5, $6) ON "
                    "CONFLICT(id) DO UPDATE SET source = excluded.source, access_token = "
                    "coalesce(excluded.access_token, vehicles.access_token), refresh_token = "
                    "coalesce(excluded.refresh_token, vehicles.refresh_token), access_expires = "
                    "CASE WHEN excluded.access_token IS NULL THEN vehicles.access_expires ELSE "
                    "excluded.access_expires END, needs_reauth = excluded.needs_reauth",
                    6, vals, lens, bin);
    if (!r)
        return status_of(state);
    PQclear(r);
    return MTR_OK;
}

/* The vehicle columns at c.. of row i, tokens unescaped into *a and *b
 * (freed by the caller with PQfreemem). */
static void read_vehicle(PGresult *r, int i, int c, struct mtr_vehicle_row *v, unsigned char **a,
                         unsigned char **b)
{
    size_t alen = 0, blen = 0;
    *a = txt(r, i, c + 2) ? PQunescapeBytea((const unsigned char *)txt(r, i, c + 2), &alen) : NULL;
    *b = txt(r, i, c + 3) ? PQunescapeBytea((const unsigned char *)txt(r, i, c + 3), &blen) : NULL;
    *v = (struct mtr_vehicle_row){.id = txt(r, i, c),
                                  .source = txt(r, i, c + 1),
                                  .access_token = *a,
                                  .access_len = alen,
                                  .refresh_token = *b,
                                  .refresh_len = blen,
                                  .access_expires = i64(r, i, c + 4),
                                  .needs_reauth = (int)i64(r, i, c + 5)};
}

#define VEHICLE_COLS "id, source, access_token, refresh_token, access_expires, needs_reauth"

static int each_vehicle(PGresult *r, int (*fn)(void *, const struct mtr_vehicle_row *), void *arg)
{
    for (int i = 0; i < PQntuples(r); i++) {
        struct mtr_vehicle_row v;
        unsigned char *a, *b;
        read_vehicle(r, i, 0, &v, &a, &b);
        int stop = fn(arg, &v);
        PQfreemem(a);
        PQfreemem(b);
        if (stop)
            break;
    }
    PQclear(r);
    return MTR_OK;
}

static int pg_vehicle_get(void *state, const char *id,
                          int (*fn)(void *, const struct mtr_vehicle_row *), void *arg)
{
    const char *v[] = {id};
    PGresult *r = q(state, "read vehicle", "SELECT " VEHICLE_COLS " FROM vehicles WHERE id = $1", 1,
                    v, NULL, NULL);
    return r ? each_vehicle(r, fn, arg) : status_of(state);
}

static int pg_vehicle_sample(void *state, int (*fn)(void *, const struct mtr_vehicle_row *),
                             void *arg)
{
    PGresult *r = q(state, "read vehicles",
                    "SELECT " VEHICLE_COLS " FROM vehicles WHERE access_token IS NOT NULL OR "
                    "refresh_token IS NOT NULL LIMIT 1",
                    0, NULL, NULL, NULL);
    return r ? each_vehicle(r, fn, arg) : status_of(state);
}

static int pg_vehicles_list(void *state, int needs_reauth_only, const char *after, size_t limit,
                            mtr_vehicle_fn fn, void *arg)
{
    struct nums n = {0};
    const char *v[] = {num(&n, needs_reauth_only), after, num(&n, limit ? (long long)limit : -1)};
    PGresult *r =
        q(state, "list vehicles",
          "SELECT " VEHICLE_COLS " FROM vehicles WHERE ($1::int = 0 OR needs_reauth "
          "<> 0) AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT CASE WHEN $3::bigint "
          "< 0 THEN NULL ELSE $3::bigint END",
          3, v, NULL, NULL);
    return r ? each_vehicle(r, fn, arg) : status_of(state);
}

static int pg_subscribe(void *state, const char *webhook_id, const char *vehicle_id, mtr_time now,
                        uint32_t spread_key, int *created)
{
    struct nums n = {0};
    const char *v[] = {webhook_id, vehicle_id, num(&n, now), num(&n, spread_key)};
    uint64_t changed = 0;
    int rc = run(state, "subscribe",
                 "INSERT INTO subscriptions(webhook_id, vehicle_id, made_at, removed_at, "
                 "spread_key) VALUES($1, $2, $3, NULL, $4) ON CONFLICT(webhook_id, vehicle_id) "
                 "DO UPDATE SET made_at = $3, removed_at = NULL, spread_key = $4 WHERE "
                 "subscriptions.removed_at IS NOT NULL",
                 4, v, &changed);
    *created = changed > 0;
    return rc;
}

static int pg_unsubscribe(void *state, const char *webhook_id, const char *vehicle_id, mtr_time now,
                          int *removed)
{
    struct nums n = {0};
    const char *v[] = {webhook_id, vehicle_id, num(&n, now)};
    uint64_t changed = 0;
    int rc = run(state, "unsubscribe",
                 "UPDATE subscriptions SET removed_at = $3 WHERE webhook_id = $1 AND vehicle_id = "
                 "$2 AND removed_at IS NULL",
                 3, v, &changed);
    *removed = changed > 0;
    return rc;
}

static int pg_subscriptions_list(void *state, const char *webhook_id, const char *vehicle_id,
                                 const char *after, size_t limit, mtr_subscription_fn fn, void *arg)
{
    struct nums n = {0};
    const char *v[] = {webhook_id, vehicle_id, after, num(&n, limit ? (long long)limit : -1)};
    PGresult *r =
        q(state, "list subscriptions",
          "SELECT s.webhook_id, s.vehicle_id, coalesce(v.source, ''), s.made_at, "
          "(v.access_token IS NOT NULL OR v.refresh_token IS NOT NULL)::int, "
          "coalesce(v.needs_reauth, 0), coalesce(v.access_expires, 0) FROM subscriptions s LEFT "
          "JOIN vehicles v ON v.id = s.vehicle_id WHERE s.webhook_id = $1 AND s.removed_at IS "
          "NULL AND ($2::text IS NULL OR s.vehicle_id = $2) AND ($3::text IS NULL OR s.vehicle_id "
          "> $3) ORDER BY s.vehicle_id LIMIT CASE WHEN $4::bigint < 0 THEN NULL ELSE $4::bigint "
          "END",
          4, v, NULL, NULL);
    if (!r)
        return status_of(state);
    for (int i = 0; i < PQntuples(r); i++) {
        struct mtr_subscription_row row = {.webhook_id = txt(r, i, 0),
                                           .vehicle_id = txt(r, i, 1),
                                           .source = txt(r, i, 2),
                                           .made_at = i64(r, i, 3),
                                           .live = (int)i64(r, i, 4),
                                           .needs_reauth = (int)i64(r, i, 5),
                                           .access_expires = i64(r, i, 6)};
        if (fn(arg, &row) != 0)
            break;
    }
    PQclear(r);
    return MTR_OK;
}

/* ---- jobs ------------------------------------------------------------------------------------ */

/* The tick's row is inserted first, under its primary key: of two nodes
 * materializing the same tick, one inserts it (and the jobs) and the other
 * nothing, waiting on the first's row lock until it commits. */
static int pg_materialize_tick(void *state, const char *webhook_id, mtr_time tick, int job_state,
                               int64_t spread_min, int64_t spread_max, uint64_t *count)
{
    struct pg_store *s = state;
    struct nums n = {0};
    const char *v[] = {webhook_id, num(&n, tick), num(&n, job_state), num(&n, spread_min),
                       num(&n, spread_max - spread_min + 1)};
    uint64_t first = 0;
    int own, rc = tx_enter(s, &own);
    *count = 0;
    if (rc == MTR_OK)
        rc = run(s, "claim tick",
                 "INSERT INTO ticks(webhook_id, tick) VALUES($1, $2) ON CONFLICT DO NOTHING", 2, v,
                 &first);
    if (rc == MTR_OK && first)
        rc = run(s, "insert jobs",
                 "INSERT INTO jobs(webhook_id, vehicle_id, tick, state, due_at, spread_key) "
                 "SELECT webhook_id, vehicle_id, $2::bigint, $3::int, $2::bigint + $4::bigint + "
                 "((spread_key * $5::bigint) >> 32), spread_key FROM subscriptions WHERE "
                 "webhook_id = $1 AND made_at < $2::bigint AND (removed_at IS NULL OR removed_at > "
                 "$2::bigint) ORDER BY spread_key ON CONFLICT DO NOTHING",
                 5, v, count);
    return tx_leave(s, own, rc);
}

static int pg_claim_jobs(void *state, const char *owner, mtr_time now, mtr_time lease_until,
                         size_t max, mtr_job_fn fn, void *arg)
{
    struct nums n = {0};
    const char *v[] = {owner, num(&n, now), num(&n, lease_until), num(&n, (long long)max)};
    PGresult *r =
        q(state, "claim jobs",
          "WITH c AS (SELECT webhook_id, vehicle_id, tick, due_at FROM jobs WHERE state = 0 AND "
          "due_at <= $2 ORDER BY due_at, spread_key LIMIT $4 FOR UPDATE SKIP LOCKED) "
          "UPDATE jobs j SET lease_owner = $1, lease_until = $3, due_at = $3 FROM c "
          "LEFT JOIN vehicles v ON v.id = c.vehicle_id WHERE j.webhook_id = c.webhook_id "
          "AND j.vehicle_id = c.vehicle_id AND j.tick = c.tick RETURNING j.webhook_id, "
          "j.vehicle_id, j.tick, j.state, c.due_at, j.fetch_attempts, v.id, v.source, "
          "v.access_token, v.refresh_token, v.access_expires, v.needs_reauth",
          4, v, NULL, NULL);
    if (!r)
        return status_of(state);
    for (int i = 0; i < PQntuples(r); i++) {
        struct mtr_job j = {.key = {txt(r, i, 0), txt(r, i, 1), i64(r, i, 2)},
                            .state = (int)i64(r, i, 3),
                            .due_at = i64(r, i, 4),
                            .fetch_attempts = (int)i64(r, i, 5)};
        unsigned char *a, *b;
        read_vehicle(r, i, 6, &j.vehicle, &a, &b);
        if (!j.vehicle.id)
            j.vehicle.id = j.key.vehicle_id;
        fn(arg, &j);
        PQfreemem(a);
        PQfreemem(b);
    }
    PQclear(r);
    return MTR_OK;
}

static int job_retry(void *state, const char *owner, const struct mtr_job_key *key, mtr_time due_at,
                     const char *error, int *fenced)
{
    struct nums n = {0};
    const char *v[] = {key->webhook_id, key->vehicle_id, num(&n, key->tick),
                       num(&n, due_at), error,           owner};
    uint64_t changed = 0;
    int rc = run(state, "reschedule job",
                 "UPDATE jobs SET due_at = $4, fetch_attempts = fetch_attempts + 1, last_error = "
                 "coalesce($5, last_error), lease_owner = NULL, lease_until = NULL WHERE "
                 "webhook_id = $1 AND vehicle_id = $2 AND tick = $3 AND ($6::text IS NULL OR "
                 "lease_owner IS NULL OR lease_owner = $6)",
                 6, v, &changed);
    *fenced = rc == MTR_OK && owner && changed == 0;
    return rc;
}

static int job_state(void *state, const char *owner, const struct mtr_job_key *key, int new_state,
                     int *fenced)
{
    struct nums n = {0};
    const char *v[] = {key->webhook_id, key->vehicle_id, num(&n, key->tick), num(&n, new_state),
                       owner};
    uint64_t changed = 0;
    int rc = run(state, "set job state",
                 "UPDATE jobs SET state = $4, lease_owner = NULL, lease_until = NULL WHERE "
                 "webhook_id = $1 AND vehicle_id = $2 AND tick = $3 AND ($5::text IS NULL OR "
                 "lease_owner IS NULL OR lease_owner = $5)",
                 5, v, &changed);
    *fenced = rc == MTR_OK && owner && changed == 0;
    return rc;
}

static int pg_job_retry(void *state, const struct mtr_job_key *key, mtr_time due_at,
                        const char *error)
{
    int fenced;
    return job_retry(state, NULL, key, due_at, error, &fenced);
}

static int pg_job_set_state(void *state, const struct mtr_job_key *key, int new_state)
{
    int fenced;
    return job_state(state, NULL, key, new_state, &fenced);
}

static int pg_job_retry_as(void *state, const char *owner, const struct mtr_job_key *key,
                           mtr_time due_at, const char *error, int *fenced)
{
    return job_retry(state, owner, key, due_at, error, fenced);
}

static int pg_job_set_state_as(void *state, const char *owner, const struct mtr_job_key *key,
                               int new_state, int *fenced)
{
    return job_state(state, owner, key, new_state, fenced);
}

static int pg_jobs_miss_pending(void *state, const char *webhook_id, uint64_t *count)
{
    const char *v[] = {webhook_id};
    return run(state, "miss jobs",
               "UPDATE jobs SET state = 3, lease_owner = NULL, lease_until = NULL WHERE "
               "webhook_id = $1 AND state IN (0, 1)",
               1, v, count);
}

/* ---- deliveries -------------------------------------------------------------------------------
 */

#define DELIVERY_COLS                                                                              \
    "id, webhook_id, sink, tick, kind, state, attempts, round_start, created_at, "                 \
    "first_attempt_at, next_attempt_at, body, vehicles, last_status, last_error, updated_at"

static void read_delivery(PGresult *r, int i, struct mtr_delivery_row *d)
{
    *d = (struct mtr_delivery_row){.id = txt(r, i, 0),
                                   .webhook_id = txt(r, i, 1),
                                   .sink = txt(r, i, 2),
                                   .tick = i64(r, i, 3),
                                   .kind = (int)i64(r, i, 4),
                                   .state = (int)i64(r, i, 5),
                                   .attempts = (int)i64(r, i, 6),
                                   .round_start = (int)i64(r, i, 7),
                                   .created_at = i64(r, i, 8),
                                   .first_attempt_at = i64(r, i, 9),
                                   .next_attempt_at = i64(r, i, 10),
                                   .body = txt(r, i, 11),
                                   .body_len = txt(r, i, 11) ? (size_t)PQgetlength(r, i, 11) : 0,
                                   .vehicles = (int)i64(r, i, 12),
                                   .last_status = (int)i64(r, i, 13),
                                   .last_error = txt(r, i, 14),
                                   .updated_at = i64(r, i, 15)};
}

static int each_delivery(void *state, PGresult *r, mtr_delivery_fn fn, void *arg)
{
    if (!r)
        return status_of(state);
    for (int i = 0; i < PQntuples(r); i++) {
        struct mtr_delivery_row d;
        read_delivery(r, i, &d);
        if (fn(arg, &d) != 0)
            break;
    }
    PQclear(r);
    return MTR_OK;
}

#define INSERT_DELIVERIES_SQL                                                                      \
    "INSERT INTO deliveries(id, webhook_id, sink, tick, kind, state, attempts, round_start, "      \
    "created_at, first_attempt_at, next_attempt_at, body, vehicles, last_status, last_error, "     \
    "updated_at, lease_owner, lease_until) SELECT id, webhook_id, sink, tick, kind, state, 0, 0, " \
    "created_at, 0, next_at, body, vehicles, 0, error, updated_at, owner, until FROM "             \
    "unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int4[], $6::int4[], $7::int8[], "  \
    "$8::int8[], $9::text[], $10::int4[], $11::text[], $12::int8[], $13::text[], $14::int8[]) AS " \
    "u(id, webhook_id, sink, tick, kind, state, created_at, next_at, body, vehicles, error, "      \
    "updated_at, owner, until) ON CONFLICT(id) DO NOTHING RETURNING id"

#define JOBS_SENT_SQL                                                                              \
    "UPDATE jobs j SET state = 2, lease_owner = NULL, lease_until = NULL FROM "                    \
    "unnest($1::text[], $2::text[], $3::int8[]) AS u(webhook_id, vehicle_id, tick) WHERE "         \
    "j.webhook_id = u.webhook_id AND j.vehicle_id = u.vehicle_id AND j.tick = u.tick"

static PGresult *insert_deliveries(struct pg_store *s, const struct mtr_delivery_row *rows,
                                   size_t n)
{
    struct arr c[14];
    uint32_t oids[14] = {OID_TEXT, OID_TEXT, OID_TEXT, OID_INT8, OID_INT4, OID_INT4, OID_INT8,
                         OID_INT8, OID_TEXT, OID_INT4, OID_TEXT, OID_INT8, OID_TEXT, OID_INT8};
    for (int k = 0; k < 14; k++)
        arr_begin(&c[k], oids[k]);
    for (size_t i = 0; i < n; i++) {
        const struct mtr_delivery_row *d = &rows[i];
        arr_str(&c[0], d->id);
        arr_str(&c[1], d->webhook_id);
        arr_str(&c[2], d->sink);
        arr_i64(&c[3], d->tick);
        arr_i32(&c[4], d->kind);
        arr_i32(&c[5], d->state);
        arr_i64(&c[6], d->created_at);
        arr_i64(&c[7], d->next_attempt_at);
        arr_text(&c[8], d->body, d->body_len);
        arr_i32(&c[9], d->vehicles);
        arr_str(&c[10], d->last_error);
        arr_i64(&c[11], d->updated_at);
        arr_str(&c[12], d->lease_owner);
        if (d->lease_owner)
            arr_i64(&c[13], d->lease_until);
        else
            arr_text(&c[13], NULL, 0);
    }
    PGresult *r = q_arrays(s, "insert deliveries", INSERT_DELIVERIES_SQL, c, 14, NULL, 0);
    arrs_free(c, 14);
    return r;
}

static int jobs_sent(struct pg_store *s, const struct mtr_job_key *jobs, size_t n)
{
    struct arr c[3];
    arr_begin(&c[0], OID_TEXT);
    arr_begin(&c[1], OID_TEXT);
    arr_begin(&c[2], OID_INT8);
    for (size_t i = 0; i < n; i++) {
        arr_str(&c[0], jobs[i].webhook_id);
        arr_str(&c[1], jobs[i].vehicle_id);
        arr_i64(&c[2], jobs[i].tick);
    }
    PGresult *r = q_arrays(s, "mark jobs sent", JOBS_SENT_SQL, c, 3, NULL, 0);
    arrs_free(c, 3);
    if (!r)
        return status_of(s);
    PQclear(r);
    return MTR_OK;
}

/* The batch's deliveries in one statement, then its jobs marked sent in
 * another; inserted[i] says whether rows[i] was new. */
static int pg_deliveries_insert(void *state, const struct mtr_delivery_row *rows, size_t n,
                                const struct mtr_job_key *jobs, size_t n_jobs, int *inserted)
{
    struct pg_store *s = state;
    int own, rc = tx_enter(s, &own);
    if (rc == MTR_OK && n) {
        PGresult *r = insert_deliveries(s, rows, n);
        const char **ids = r ? sorted_ids(r) : NULL;
        rc = !r ? status_of(s) : ids ? MTR_OK : MTR_ERR;
        for (size_t i = 0; ids && inserted && i < n; i++)
            inserted[i] = found_in(ids, PQntuples(r), rows[i].id);
        free(ids);
        if (r)
            PQclear(r);
    }
    if (rc == MTR_OK && n_jobs)
        rc = jobs_sent(s, jobs, n_jobs);
    return tx_leave(s, own, rc);
}

static int pg_claim_deliveries(void *state, const char *owner, mtr_time now, mtr_time lease_until,
                               size_t max, mtr_delivery_fn fn, void *arg)
{
    struct nums n = {0};
    const char *v[] = {owner, num(&n, now), num(&n, lease_until), num(&n, (long long)max)};
    PGresult *r = q(state, "claim deliveries",
                    "WITH c AS (SELECT id FROM deliveries WHERE state = 0 AND next_attempt_at <= "
                    "$2 ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) UPDATE "
                    "deliveries d SET lease_owner = $1, lease_until = $3, next_attempt_at = $3 "
                    "FROM c WHERE d.id = c.id RETURNING d.id, d.webhook_id, d.sink, d.tick, "
                    "d.kind, d.state, d.attempts, d.round_start, d.created_at, "
                    "d.first_attempt_at, d.next_attempt_at, d.body, d.vehicles, d.last_status, "
                    "d.last_error, d.updated_at",
                    4, v, NULL, NULL);
    return each_delivery(state, r, fn, arg);
}

/* An attempt as one statement: the delivery's row is updated unless another
 * node holds its lease (fencing), and the attempt is inserted only when it
 * was: one row inserted says recorded, none says fenced. */
#define RECORD_SQL                                                                                 \
    "WITH d AS (UPDATE deliveries SET attempts = $2, state = $3, next_attempt_at = $4, "           \
    "last_status = $5, last_error = $6, first_attempt_at = CASE WHEN first_attempt_at = 0 THEN "   \
    "$7 ELSE first_attempt_at END, updated_at = $7, lease_owner = NULL, lease_until = NULL WHERE " \
    "id = $1 AND ($8::text IS NULL OR lease_owner IS NULL OR lease_owner = $8) RETURNING id) "     \
    "INSERT INTO attempts(delivery_id, n, at, http_status, error, latency_us) SELECT id, $2, $7, " \
    "$5, $6, $9::bigint FROM d ON CONFLICT(delivery_id, n) DO UPDATE SET at = excluded.at, "       \
    "http_status = "                                                                               \
    "excluded.http_status, error = excluded.error, latency_us = excluded.latency_us"

static int record(struct pg_store *s, const char *owner, const struct mtr_attempt_row *a,
                  int new_state, mtr_time next_attempt_at, int *fenced)
{
    struct nums n = {0};
    const char *v[] = {
        a->delivery_id,          num(&n, a->n), num(&n, new_state), num(&n, next_attempt_at),
        num(&n, a->http_status), a->error,      num(&n, a->at),     owner,
        num(&n, a->latency_us)};
    uint64_t changed = 0;
    int rc = run(s, "record attempt", RECORD_SQL, 9, v, &changed);
    *fenced = rc == MTR_OK && owner && changed == 0;
    return rc;
}

/* The batch as one statement: the deliveries' rows are updated unless
 * another node holds their leases, and attempts are inserted for those that
 * were; the ids returned are the recorded ones, the rest were fenced. */
#define RECORD_BATCH_SQL                                                                           \
    "WITH u AS (SELECT * FROM unnest($1::text[], $2::int4[], $3::int4[], $4::int8[], "             \
    "$5::int4[], $6::text[], $7::int8[], $8::int8[]) AS u(id, n, state, next_at, status, error, "  \
    "at, latency)), d AS (UPDATE deliveries SET attempts = u.n, state = u.state, next_attempt_at " \
    "= u.next_at, last_status = u.status, last_error = u.error, first_attempt_at = CASE WHEN "     \
    "first_attempt_at = 0 THEN u.at ELSE first_attempt_at END, updated_at = u.at, lease_owner = "  \
    "NULL, lease_until = NULL FROM u WHERE deliveries.id = u.id AND ($9::text IS NULL OR "         \
    "lease_owner IS NULL OR lease_owner = $9) RETURNING deliveries.id) INSERT INTO "               \
    "attempts(delivery_id, n, at, http_status, error, latency_us) SELECT u.id, u.n, u.at, "        \
    "u.status, u.error, u.latency FROM u JOIN d ON d.id = u.id ON CONFLICT(delivery_id, n) DO "    \
    "UPDATE SET at = excluded.at, http_status = excluded.http_status, error = excluded.error, "    \
    "latency_us = excluded.latency_us RETURNING delivery_id"

/* Whether a delivery appears twice in the batch (two attempts of one
 * delivery: one statement could not order them). */
static int has_repeats(const struct mtr_attempt_record *recs, size_t n)
{
    const char **ids = malloc((n + 1) * sizeof *ids);
    int repeats = !ids;
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = recs[i].attempt.delivery_id;
    if (ids)
        qsort(ids, n, sizeof *ids, cmp_str);
    for (size_t i = 1; ids && i < n && !repeats; i++)
        repeats = strcmp(ids[i - 1], ids[i]) == 0;
    free(ids);
    return repeats;
}

static int pg_record_attempts_as(void *state, const char *owner,
                                 const struct mtr_attempt_record *recs, size_t n, int *fenced)
{
    struct pg_store *s = state;
    if (n == 0)
        return MTR_OK;
    if (has_repeats(recs, n)) { /* one at a time, in order */
        int own, rc = tx_enter(s, &own);
        for (size_t i = 0; i < n && rc == MTR_OK; i++)
            rc = record(s, owner, &recs[i].attempt, recs[i].new_state, recs[i].next_attempt_at,
                        &fenced[i]);
        return tx_leave(s, own, rc);
    }
    struct arr c[8];
    uint32_t oids[8] = {OID_TEXT, OID_INT4, OID_INT4, OID_INT8,
                        OID_INT4, OID_TEXT, OID_INT8, OID_INT8};
    for (int k = 0; k < 8; k++)
        arr_begin(&c[k], oids[k]);
    for (size_t i = 0; i < n; i++) {
        const struct mtr_attempt_row *a = &recs[i].attempt;
        arr_str(&c[0], a->delivery_id);
        arr_i32(&c[1], a->n);
        arr_i32(&c[2], recs[i].new_state);
        arr_i64(&c[3], recs[i].next_attempt_at);
        arr_i32(&c[4], a->http_status);
        arr_str(&c[5], a->error);
        arr_i64(&c[6], a->at);
        arr_i64(&c[7], a->latency_us);
    }
    const char *extra[] = {owner};
    PGresult *r = q_arrays(s, "record attempts", RECORD_BATCH_SQL, c, 8, extra, 1);
    arrs_free(c, 8);
    if (!r)
        return status_of(s);
    const char **ids = sorted_ids(r);
    int rc = ids ? MTR_OK : MTR_ERR;
    for (size_t i = 0; ids && i < n; i++)
        fenced[i] = owner && !found_in(ids, PQntuples(r), recs[i].attempt.delivery_id);
    free(ids);
    PQclear(r);
    return rc;
}

#define DEFER_SQL                                                                                  \
    "UPDATE deliveries SET next_attempt_at = $2, last_status = $3, last_error = $4, updated_at = " \
    "$5, lease_owner = NULL, lease_until = NULL WHERE id = $1 AND state = 0 AND (lease_owner IS "  \
    "NULL OR lease_owner = $6)"

static int pg_defer_deliveries(void *state, const char *owner, const struct mtr_deferral *d,
                               size_t n, int *fenced)
{
    struct pg_store *s = state;
    int own, rc = tx_enter(s, &own);
    for (size_t i = 0; i < n && rc == MTR_OK; i++) {
        struct nums k = {0};
        const char *v[] = {d[i].delivery_id,          num(&k, d[i].next_attempt_at),
                           num(&k, d[i].last_status), d[i].last_error,
                           num(&k, d[i].at),          owner};
        uint64_t changed = 0;
        rc = run(s, "defer delivery", DEFER_SQL, 6, v, &changed);
        fenced[i] = rc == MTR_OK && changed == 0;
    }
    return tx_leave(s, own, rc);
}

static int pg_set_subjects(void *state, const char *const *ids, const int64_t *subjects, size_t n)
{
    struct pg_store *s = state;
    if (n == 0)
        return MTR_OK;
    struct arr c[2];
    arr_begin(&c[0], OID_TEXT);
    arr_begin(&c[1], OID_INT8);
    for (size_t i = 0; i < n; i++) {
        arr_str(&c[0], ids[i]);
        arr_i64(&c[1], subjects[i]);
    }
    PGresult *r = q_arrays(s, "set deliveries' subjects",
                           "UPDATE deliveries SET subject = u.subject FROM unnest($1::text[], "
                           "$2::int8[]) AS u(id, subject) WHERE deliveries.id = u.id",
                           c, 2, NULL, 0);
    arrs_free(c, 2);
    if (!r)
        return status_of(s);
    PQclear(r);
    return MTR_OK;
}

#define OLDER_OF                                                                                   \
    "FROM deliveries d JOIN deliveries o ON o.webhook_id = d.webhook_id AND o.sink = d.sink AND "  \
    "o.subject = d.subject AND o.tick < d.tick AND o.state = 0 AND o.subject IS NOT NULL WHERE "   \
    "d.id = $1"

static int pg_supersede_older(void *state, const char *delivery_id, mtr_time now,
                              const char *reason, uint64_t *count)
{
    struct nums k = {0};
    const char *v[] = {delivery_id, num(&k, now), reason};
    *count = 0;
    return run(state, "supersede older deliveries",
               "UPDATE deliveries SET state = 2, last_error = $3, updated_at = $2, lease_owner = "
               "NULL, lease_until = NULL WHERE id IN (SELECT o.id " OLDER_OF
               " AND (o.lease_owner IS NULL OR o.lease_until <= $2))",
               3, v, count);
}

static int pg_older_pending(void *state, const char *delivery_id, mtr_time now, int *found,
                            mtr_time *due, int *leased)
{
    struct pg_store *s = state;
    struct nums k = {0};
    const char *v[] = {delivery_id, num(&k, now)};
    PGresult *r =
        q(s, "look for older pending deliveries",
          "SELECT count(*), min(o.next_attempt_at), coalesce(bool_or(o.lease_owner IS NOT "
          "NULL AND o.lease_until > $2), false) " OLDER_OF,
          2, v, NULL, NULL);
    if (!r)
        return status_of(s);
    *found = PQntuples(r) == 1 && i64(r, 0, 0) > 0;
    *due = *found ? i64(r, 0, 1) : 0;
    *leased = *found && strcmp(PQgetvalue(r, 0, 2), "t") == 0;
    PQclear(r);
    return MTR_OK;
}

static int pg_record_attempt(void *state, const struct mtr_attempt_row *a, int new_state,
                             mtr_time next_attempt_at)
{
    int fenced;
    return record(state, NULL, a, new_state, next_attempt_at, &fenced);
}

static int pg_record_attempt_as(void *state, const char *owner, const struct mtr_attempt_row *a,
                                int new_state, mtr_time next_attempt_at, int *fenced)
{
    return record(state, owner, a, new_state, next_attempt_at, fenced);
}

static int pg_fail_pending(void *state, const char *webhook_id, const char *reason, mtr_time now,
                           uint64_t *count)
{
    struct nums n = {0};
    const char *v[] = {webhook_id, reason, num(&n, now)};
    return run(state, "fail pending deliveries",
               "UPDATE deliveries SET state = 2, last_error = $2, updated_at = $3, lease_owner = "
               "NULL, lease_until = NULL WHERE webhook_id = $1 AND state = 0",
               3, v, count);
}

static int pg_replay(void *state, const char *delivery_id, const char *webhook_id, int from_state,
                     mtr_time now, uint64_t *count)
{
    struct nums n = {0};
    const char *v[] = {delivery_id ? delivery_id : webhook_id, num(&n, now), num(&n, from_state)};
    if (delivery_id)
        return run(state, "replay",
                   "UPDATE deliveries SET state = 0, round_start = attempts, first_attempt_at = "
                   "0, next_attempt_at = $2, updated_at = $2, lease_owner = NULL, lease_until = "
                   "NULL WHERE id = $1 AND body IS NOT NULL",
                   2, v, count);
    return run(state, "replay",
               "UPDATE deliveries SET state = 0, round_start = attempts, first_attempt_at = 0, "
               "next_attempt_at = $2, updated_at = $2, lease_owner = NULL, lease_until = NULL "
               "WHERE webhook_id = $1 AND state = $3 AND kind = 0 AND body IS NOT NULL",
               3, v, count);
}

static int pg_next_due(void *state, mtr_time *at, int *found)
{
    PGresult *r = q(state, "next due",
                    "SELECT least((SELECT min(due_at) FROM jobs WHERE state = 0), (SELECT "
                    "min(next_attempt_at) FROM deliveries WHERE state = 0))",
                    0, NULL, NULL, NULL);
    if (!r)
        return status_of(state);
    *found = !PQgetisnull(r, 0, 0);
    *at = i64(r, 0, 0);
    PQclear(r);
    return MTR_OK;
}

/* ---- reading the ledger ------------------------------------------------------------------------
 */

static int pg_list_deliveries(void *state, const char *webhook_id, int delivery_state, size_t limit,
                              mtr_delivery_fn fn, void *arg)
{
    struct nums n = {0};
    const char *v[] = {webhook_id, num(&n, delivery_state), num(&n, limit ? (long long)limit : -1)};
    return each_delivery(state,
                         q(state, "list deliveries",
                           "SELECT " DELIVERY_COLS " FROM deliveries WHERE ($1::text IS NULL OR "
                           "webhook_id = $1) AND ($2::int < 0 OR state = $2::int) ORDER BY tick, "
                           "created_at, id LIMIT CASE WHEN $3::bigint < 0 THEN NULL ELSE "
                           "$3::bigint END",
                           3, v, NULL, NULL),
                         fn, arg);
}

static int pg_deliveries_query(void *state, const struct mtr_delivery_query *qy, mtr_delivery_fn fn,
                               void *arg)
{
    struct nums n = {0};
    const char *v[] = {qy->webhook_id,
                       num(&n, qy->state),
                       num(&n, qy->tick_from),
                       num(&n, qy->tick_to),
                       num(&n, qy->after_tick),
                       qy->after_id,
                       num(&n, qy->limit ? (long long)qy->limit : -1)};
    return each_delivery(
        state,
        q(state, "list deliveries",
          "SELECT " DELIVERY_COLS " FROM deliveries WHERE ($1::text IS NULL OR webhook_id = $1) "
          "AND ($2::int < 0 OR state = $2::int) AND ($3::bigint = 0 OR tick >= $3::bigint) AND "
          "($4::bigint = 0 OR tick < $4::bigint) AND ($6::text IS NULL OR tick > $5::bigint OR "
          "(tick = $5::bigint AND id > $6)) ORDER BY tick, id LIMIT CASE WHEN $7::bigint < 0 "
          "THEN NULL ELSE $7::bigint END",
          7, v, NULL, NULL),
        fn, arg);
}

static int pg_list_attempts(void *state, const char *delivery_id, mtr_attempt_fn fn, void *arg)
{
    const char *v[] = {delivery_id};
    PGresult *r = q(state, "list attempts",
                    "SELECT delivery_id, n, at, http_status, error, latency_us FROM attempts "
                    "WHERE delivery_id = $1 ORDER BY n",
                    1, v, NULL, NULL);
    if (!r)
        return status_of(state);
    for (int i = 0; i < PQntuples(r); i++) {
        struct mtr_attempt_row a = {.delivery_id = txt(r, i, 0),
                                    .n = (int)i64(r, i, 1),
                                    .at = i64(r, i, 2),
                                    .http_status = (int)i64(r, i, 3),
                                    .error = txt(r, i, 4),
                                    .latency_us = i64(r, i, 5)};
        if (fn(arg, &a) != 0)
            break;
    }
    PQclear(r);
    return MTR_OK;
}

static int pg_delivery_get(void *state, const char *delivery_id, mtr_delivery_fn fn, void *arg)
{
    const char *v[] = {delivery_id};
    return each_delivery(state,
                         q(state, "read delivery",
                           "SELECT " DELIVERY_COLS " FROM deliveries WHERE id = $1", 1, v, NULL,
                           NULL),
                         fn, arg);
}

/* Retention in batches of at most max: payloads of settled deliveries, then
 * the rows (with their attempts and old jobs and ticks). */
static int pg_prune(void *state, mtr_time delivered_before, mtr_time failed_before,
                    mtr_time history_before, size_t max, uint64_t *pruned)
{
    struct pg_store *s = state;
    struct nums n = {0};
    const char *v[] = {num(&n, delivered_before), num(&n, failed_before), num(&n, history_before),
                       num(&n, (long long)max)};
    uint64_t a = 0, b = 0, c = 0, d = 0;
    int own, rc = tx_enter(s, &own);
    *pruned = 0;
    /* one node prunes at a time: the others find the lock taken and skip */
    PGresult *lock = rc == MTR_OK
                         ? q(s, "retention lock", "SELECT pg_try_advisory_xact_lock(7212350102)", 0,
                             NULL, NULL, NULL)
                         : NULL;
    if (rc == MTR_OK && !lock)
        rc = status_of(s);
    if (lock) {
        int mine = strcmp(PQgetvalue(lock, 0, 0), "t") == 0;
        PQclear(lock);
        if (!mine)
            return tx_leave(s, own, MTR_OK);
    }
    if (rc == MTR_OK)
        rc = run(s, "prune payloads",
                 "UPDATE deliveries SET body = NULL WHERE id IN (SELECT id FROM deliveries WHERE "
                 "body IS NOT NULL AND ((state = 1 AND updated_at < $1) OR (state = 2 AND "
                 "updated_at < $2)) AND $3::bigint IS NOT NULL ORDER BY seq LIMIT $4)",
                 4, v, &a);
    if (rc == MTR_OK)
        rc = run(s, "prune attempts",
                 "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE "
                 "state <> 0 AND updated_at < $3 AND $1::bigint IS NOT NULL AND $2::bigint IS NOT "
                 "NULL ORDER BY seq LIMIT $4)",
                 4, v, &b);
    if (rc == MTR_OK)
        rc = run(s, "prune deliveries",
                 "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE state <> 0 "
                 "AND updated_at < $3 AND $1::bigint IS NOT NULL AND $2::bigint IS NOT NULL ORDER "
                 "BY seq LIMIT $4)",
                 4, v, &c);
    if (rc == MTR_OK)
        rc = run(s, "prune jobs",
                 "DELETE FROM jobs WHERE ctid IN (SELECT ctid FROM jobs WHERE state IN (2, 3) AND "
                 "tick < $3 AND $1::bigint IS NOT NULL AND $2::bigint IS NOT NULL LIMIT $4)",
                 4, v, &d);
    *pruned = a + b + c + d;
    return tx_leave(s, own, rc);
}

static int pg_stats(void *state, const char *webhook_id, struct mtr_store_stats *out)
{
    const char *v[] = {webhook_id};
    memset(out, 0, sizeof *out);
    PGresult *r = q(state, "stats",
                    "SELECT 0, state, count(*), 0, 0 FROM jobs WHERE ($1::text IS NULL OR "
                    "webhook_id = $1) GROUP BY state UNION ALL SELECT 1, state, count(*), "
                    "coalesce(sum(attempts), 0), coalesce(sum(greatest(attempts - 1, 0)), 0) FROM "
                    "deliveries WHERE ($1::text IS NULL OR webhook_id = $1) GROUP BY state UNION "
                    "ALL SELECT 2, 0, count(*), 0, 0 FROM subscriptions WHERE ($1::text IS NULL "
                    "OR webhook_id = $1) AND removed_at IS NULL",
                    1, v, NULL, NULL);
    if (!r)
        return status_of(state);
    for (int i = 0; i < PQntuples(r); i++) {
        long long table = i64(r, i, 0), st = i64(r, i, 1), count = i64(r, i, 2);
        if (table == 0 && st >= 0 && st < 4)
            out->jobs[st] = (uint64_t)count;
        else if (table == 1 && st >= 0 && st < 3) {
            out->deliveries[st] = (uint64_t)count;
            out->attempts += (uint64_t)i64(r, i, 3);
            out->retries += (uint64_t)i64(r, i, 4);
        } else if (table == 2)
            out->subscriptions = (uint64_t)count;
    }
    PQclear(r);
    return MTR_OK;
}

static int pg_delivery_counts(void *state, const char *webhook_id, mtr_time since,
                              struct mtr_delivery_counts *out)
{
    struct nums n = {0};
    const char *v[] = {webhook_id, num(&n, since)};
    memset(out, 0, sizeof *out);
    PGresult *r = q(state, "count deliveries",
                    "SELECT state, count(*) FROM deliveries WHERE webhook_id = $1 AND tick >= $2 "
                    "AND kind = 0 GROUP BY state",
                    2, v, NULL, NULL);
    if (!r)
        return status_of(state);
    for (int i = 0; i < PQntuples(r); i++) {
        long long st = i64(r, i, 0);
        if (st >= 0 && st < 3)
            out->by_state[st] = (uint64_t)i64(r, i, 1);
    }
    PQclear(r);
    r = q(state, "read deliveries",
          "SELECT state, last_status, updated_at FROM deliveries WHERE webhook_id = $1 AND kind = "
          "0 ORDER BY seq DESC LIMIT 1",
          1, v, NULL, NULL);
    if (!r)
        return status_of(state);
    if (PQntuples(r) == 1) {
        out->has_last = 1;
        out->last_state = (int)i64(r, 0, 0);
        out->last_status = (int)i64(r, 0, 1);
        out->last_at = i64(r, 0, 2);
    }
    PQclear(r);
    return MTR_OK;
}

static int pg_node_heartbeat(void *state, const struct mtr_node_row *node)
{
    struct nums n = {0};
    const char *v[] = {node->id, node->host, num(&n, node->started_at), num(&n, node->last_seen)};
    return run(state, "heartbeat",
               "INSERT INTO nodes(id, host, started_at, last_seen) VALUES($1, $2, $3, $4) ON "
               "CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen",
               4, v, NULL);
}

static int pg_nodes_list(void *state, mtr_time seen_since, mtr_time now,
                         int (*fn)(void *, const struct mtr_node_row *), void *arg)
{
    struct nums n = {0};
    const char *v[] = {num(&n, seen_since), num(&n, now)};
    PGresult *r =
        q(state, "list nodes",
          "SELECT id, host, started_at, last_seen, (SELECT count(*) FROM jobs WHERE "
          "lease_owner = nodes.id AND state = 0 AND lease_until > $2::bigint) + (SELECT "
          "count(*) FROM deliveries WHERE lease_owner = nodes.id AND state = 0 AND "
          "lease_until > $2::bigint) FROM nodes WHERE last_seen >= $1::bigint ORDER BY id",
          2, v, NULL, NULL);
    if (!r)
        return status_of(state);
    for (int i = 0; i < PQntuples(r); i++) {
        struct mtr_node_row row = {.id = txt(r, i, 0),
                                   .host = txt(r, i, 1),
                                   .started_at = i64(r, i, 2),
                                   .last_seen = i64(r, i, 3),
                                   .leases = (uint64_t)i64(r, i, 4)};
        if (fn(arg, &row) != 0)
            break;
    }
    PQclear(r);
    return MTR_OK;
}

/* The bucket's tokens at $4: refilled at $2 a minute since it was last
 * touched (none for a clock behind it), at most $3. */
#define REFILLED "least($3::float8, q.tokens + greatest($4::bigint - q.at, 0) * $2::float8 / 60)"

/* One statement, under the row's lock: two nodes taking at once are
 * serialized by the database, and each sees what the other took. */
static int pg_quota_take(void *state, const char *key, int64_t per_minute, int64_t burst,
                         mtr_time now, int64_t want, int64_t *granted)
{
    struct nums n = {0};
    const char *v[] = {key, num(&n, per_minute), num(&n, burst), num(&n, now), num(&n, want)};
    PGresult *r = q(state, "take from a rate limit",
                    "INSERT INTO quotas AS q(key, tokens, at, granted) VALUES($1, $3::float8 - "
                    "least($5::bigint, $3::bigint), $4::bigint, least($5::bigint, $3::bigint)) "
                    "ON CONFLICT(key) DO UPDATE SET tokens = " REFILLED " - least($5::bigint, "
                    "floor(" REFILLED ")), granted = least($5::bigint, floor(" REFILLED
                    ")::bigint), at = greatest(q.at, $4::bigint) RETURNING granted",
                    5, v, NULL, NULL);
    if (!r)
        return status_of(state);
    *granted = PQntuples(r) == 1 ? i64(r, 0, 0) : 0;
    PQclear(r);
    return MTR_OK;
}

static int pg_read_only(void *state)
{
    (void)state; /* reading needs nothing else of a database server */
    return MTR_OK;
}

static const struct mtr_store_ops pg_ops = {
    MTR_OPS_HEADER(mtr_store_ops),
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .webhook_upsert = pg_webhook_upsert,
    .webhook_list = pg_webhook_list,
    .webhook_set_state = pg_webhook_set_state,
    .webhook_set_last_tick = pg_webhook_set_last_tick,
    .vehicle_upsert = pg_vehicle_upsert,
    .vehicle_get = pg_vehicle_get,
    .subscribe = pg_subscribe,
    .unsubscribe = pg_unsubscribe,
    .materialize_tick = pg_materialize_tick,
    .claim_jobs = pg_claim_jobs,
    .job_retry = pg_job_retry,
    .job_set_state = pg_job_set_state,
    .jobs_miss_pending = pg_jobs_miss_pending,
    .deliveries_insert = pg_deliveries_insert,
    .claim_deliveries = pg_claim_deliveries,
    .record_attempt = pg_record_attempt,
    .fail_pending = pg_fail_pending,
    .replay = pg_replay,
    .next_due = pg_next_due,
    .list_deliveries = pg_list_deliveries,
    .list_attempts = pg_list_attempts,
    .delivery_get = pg_delivery_get,
    .prune = pg_prune,
    .stats = pg_stats,
    .read_only = pg_read_only,
    .vehicle_sample = pg_vehicle_sample,
    .subscriptions_list = pg_subscriptions_list,
    .vehicles_list = pg_vehicles_list,
    .deliveries_query = pg_deliveries_query,
    .webhook_delete = pg_webhook_delete,
    .delivery_counts = pg_delivery_counts,
    .record_attempt_as = pg_record_attempt_as,
    .node_heartbeat = pg_node_heartbeat,
    .nodes_list = pg_nodes_list,
    .job_retry_as = pg_job_retry_as,
    .job_set_state_as = pg_job_set_state_as,
    .record_attempts_as = pg_record_attempts_as,
    .defer_deliveries = pg_defer_deliveries,
    .set_subjects = pg_set_subjects,
    .supersede_older = pg_supersede_older,
    .older_pending = pg_older_pending,
    .quota_take = pg_quota_take,
};

static const struct mtr_option pg_options[] = {
    {.name = "dsn",
     .type = MTR_OPT_SECRET,
     .flags = MTR_OPT_REQUIRED,
     .help = "libpq connection string (host=... dbname=... user=...); may carry a password, so "
             "it is a secret: write ${VAR}"},
    {.name = "schema",
     .type = MTR_OPT_STRING,
     .default_value = "metronome",
     .help = "the schema the ledger's tables live in (created if missing)"},
    {.name = "max_connections",
     .type = MTR_OPT_INT,
     .default_value = "4",
     .min = 1,
     .max = 64,
     .help = "connections this node opens to the database at most: the engine and the admin "
             "API's requests share them, each holding one for a statement or a transaction"},
    {0},
};

static const struct mtr_plugin pg_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_STORE),
    .name = "postgres",
    .version = "0.1.0",
    .description = "the ledger in PostgreSQL, shared by several metronome nodes",
    .options = pg_options,
    .create = pg_create,
    .start = pg_start,
    .stop = pg_stop,
    .destroy = pg_destroy,
    .store = &pg_ops,
};

MTR_PLUGIN_DEFINE(pg_plugin)
