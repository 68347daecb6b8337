/* Store backend `sqlite`: the embedded default ledger in one SQLite file, in
 * WAL mode, with versioned schema migrations (PRAGMA user_version) and cached
 * prepared statements. Claims take a lease (owner, expiry) inside an IMMEDIATE
 * transaction, so the code path is the one a shared-database backend needs; a
 * tick's jobs are written once, all together, and deterministic delivery ids
 * make every delivery insert idempotent. Rows are kept in the order they are
 * claimed and sent - jobs by spread key, deliveries by their ids, which grow
 * in that order - so every index grows at its end (bench/README.md);
 * checkpoints run on a thread of their own (checkpointer.h). */
#include "checkpointer.h"
#include "codec.h"
#include "claims.h"

#include <metronome/metronome.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_WEBHOOK_UPSERT,
    S_WEBHOOK_LIST,
    S_WEBHOOK_GET,
    S_WEBHOOK_STATE,
    S_WEBHOOK_LAST_TICK,
    S_VEHICLE_UPSERT,
    S_VEHICLE_GET,
    S_SUB_GET,
    S_SUB_PUT,
    S_UNSUB,
    S_TICK_EXISTS,
    S_MATERIALIZE,
    S_CLAIM_JOBS,
    S_LEASE_JOBS,
    S_JOB_RETRY,
    S_JOB_RETRY_ROWID,
    S_JOB_STATE,
    S_JOB_STATE_ROWID,
    S_JOBS_MISS,
    S_DELIVERY_INSERT,
    S_JOB_SENT,
    S_JOB_SENT_ROWID,
    S_CLAIM_DELIVERIES,
    S_LEASE_DELIVERY,
    S_ATTEMPT_INSERT,
    S_DELIVERY_UPDATE,
    S_DELIVERY_UPDATE_FENCED,
    S_DELIVERY_DEFER,
    S_DELIVERY_UNREADABLE,
    S_DICT_INSERT,
    S_DICT_GET,
    S_DICT_LATEST,
    S_SET_SUBJECT,
    S_SUPERSEDE,
    S_OLDER_PENDING,
    S_FAIL_PENDING,
    S_REPLAY_ONE,
    S_REPLAY_WEBHOOK,
    S_NEXT_JOB,
    S_NEXT_DELIVERY,
    S_LIST_DELIVERIES,
    S_LIST_ATTEMPTS,
    S_DELIVERY_GET,
    S_STATS_JOBS,
    S_STATS_DELIVERIES,
    S_STATS_SUBS,
    S_PAYLOAD_INSERT,
    S_PRUNE_BODIES,
    S_PRUNE_ATTEMPTS,
    S_PRUNE_PAYLOADS,
    S_PRUNE_DELIVERIES,
    S_PRUNE_JOBS,
    S_QUOTA_TAKE,
    S_COUNT
};

#define WEBHOOK_COLS                                                                               \
    "ut(id), name, callback_uri, definition, state, reason, state_at, active_from, last_tick"
/* a delivery's bytes are in payloads, keyed by its rowid, so recording an attempt rewrites
 * a short row instead of one carrying the payload */
#define DELIVERY_COLS                                                                              \
    "ut(d.id), ut(d.webhook_id), d.sink, d.tick, d.kind, d.state, d.attempts, d.round_start, "     \
    "d.created_at, d.first_attempt_at, d.next_attempt_at, p.body, d.vehicles, d.last_status, "     \
    "d.last_error, d.updated_at FROM deliveries d LEFT JOIN payloads p ON p.delivery = d.rowid"
#define HAS_PAYLOAD "EXISTS (SELECT 1 FROM payloads WHERE delivery = deliveries.rowid)"

/* ?1, ?2 ... are bound by position in each function below. */
#define REFILLED "min(?3, tokens + max(?4 - at, 0) * ?2 / 60.0)"

static const char *const sql_text[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_WEBHOOK_UPSERT] =
        "INSERT INTO webhooks(id, name, callback_uri, definition, state, state_at, active_from, "
        "last_tick, created_at) VALUES(ub(?1), ?2, ?3, ?4, 0, ?5, 0, 0, ?5) "
        "ON CONFLICT(name) DO UPDATE SET definition = excluded.definition, "
        "state = CASE WHEN callback_uri <> excluded.callback_uri THEN 0 ELSE state END, "
        "reason = CASE WHEN callback_uri <> excluded.callback_uri THEN NULL ELSE reason END, "
        "state_at = CASE WHEN callback_uri <> excluded.callback_uri THEN ?5 ELSE state_at END, "
        "callback_uri = excluded.callback_uri",
    [S_WEBHOOK_LIST] = "SELECT " WEBHOOK_COLS " FROM webhooks ORDER BY name",
    [S_WEBHOOK_GET] = "SELECT " WEBHOOK_COLS " FROM webhooks WHERE name = ?1 OR id = ub(?1)",
    [S_WEBHOOK_STATE] =
        "UPDATE webhooks SET state = ?2, reason = ?3, state_at = ?4, "
        "active_from = CASE WHEN ?2 = 1 THEN ?4 ELSE active_from END WHERE id = ub(?1)",
    [S_WEBHOOK_LAST_TICK] = "UPDATE webhooks SET last_tick = max(last_tick, ?2) WHERE id = ub(?1)",
    [S_VEHICLE_UPSERT] =
        "INSERT INTO vehicles(id, source, access_token, refresh_token, access_expires, "
        "needs_reauth) VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE SET "
        "source = excluded.source, access_token = coalesce(excluded.access_token, access_token), "
        "refresh_token = coalesce(excluded.refresh_token, refresh_token), "
        "access_expires = CASE WHEN excluded.access_token IS NULL THEN access_expires "
        "ELSE excluded.access_expires END, needs_reauth = excluded.needs_reauth",
    [S_VEHICLE_GET] = "SELECT id, source, access_token, refresh_token, access_expires, "
                      "needs_reauth FROM vehicles WHERE id = ?1",
    [S_SUB_GET] =
        "SELECT removed_at FROM subscriptions WHERE webhook_id = ub(?1) AND vehicle_id = ?2",
    [S_SUB_PUT] = "INSERT OR REPLACE INTO subscriptions(webhook_id, vehicle_id, made_at, "
                  "removed_at, spread_key) VALUES(ub(?1), ?2, ?3, NULL, ?4)",
    [S_UNSUB] =
        "UPDATE subscriptions SET removed_at = ?3 WHERE webhook_id = ub(?1) AND vehicle_id = "
        "?2 AND removed_at IS NULL",
    /* a tick's jobs are inserted by one statement, so one of them stands for all */
    [S_TICK_EXISTS] = "SELECT 1 FROM jobs WHERE webhook_id = ub(?1) AND tick = ?2 LIMIT 1",
    /* in spread_key order, which is due order (store.h): rowids, the (webhook, tick)
     * index and the due index all grow at their ends */
    [S_MATERIALIZE] =
        "INSERT INTO jobs(webhook_id, vehicle_id, tick, state, due_at, spread_key) "
        "SELECT webhook_id, vehicle_id, ?2, ?3, ?2 + ?4 + ((spread_key * ?5) >> 32), spread_key "
        "FROM subscriptions WHERE webhook_id = ub(?1) AND made_at < ?2 AND (removed_at IS NULL OR "
        "removed_at > ?2) ORDER BY spread_key",
    [S_CLAIM_JOBS] =
        "SELECT j.rowid, ut(j.webhook_id), j.vehicle_id, j.tick, j.state, j.due_at, "
        "j.fetch_attempts, v.id, v.source, v.access_token, v.refresh_token, v.access_expires, "
        "v.needs_reauth FROM jobs j LEFT JOIN vehicles v ON v.id = j.vehicle_id "
        "WHERE j.state = 0 AND j.due_at <= ?1 ORDER BY j.due_at, j.spread_key LIMIT ?2",
    /* the same rows as the claim (one transaction); a lease also makes the row due
     * again only when it ends: due alone decides */
    [S_LEASE_JOBS] = "UPDATE jobs SET lease_owner = ?2, lease_until = ?3, due_at = ?3 WHERE "
                     "rowid IN (SELECT rowid FROM jobs WHERE state = 0 AND due_at <= ?1 "
                     "ORDER BY due_at, spread_key LIMIT ?4)",
    /* by key: the jobs of one (webhook, tick) are scanned; by rowid when claimed here */
    [S_JOB_RETRY] =
        "UPDATE jobs SET due_at = ?4, fetch_attempts = fetch_attempts + 1, "
        "last_error = ?5, lease_owner = NULL, lease_until = NULL "
        "WHERE webhook_id = ub(?1) AND tick = ?3 AND vehicle_id = ?2 AND (?6 IS NULL OR "
        "lease_owner IS NULL OR lease_owner = ?6)",
    [S_JOB_RETRY_ROWID] =
        "UPDATE jobs SET due_at = ?4, fetch_attempts = fetch_attempts + 1, "
        "last_error = ?5, lease_owner = NULL, lease_until = NULL "
        "WHERE rowid = ?1 AND (?6 IS NULL OR lease_owner IS NULL OR lease_owner = ?6)",
    [S_JOB_STATE] =
        "UPDATE jobs SET state = ?4, lease_owner = NULL, lease_until = NULL "
        "WHERE webhook_id = ub(?1) AND tick = ?3 AND vehicle_id = ?2 AND (?6 IS NULL OR "
        "lease_owner IS NULL OR lease_owner = ?6)",
    [S_JOB_STATE_ROWID] =
        "UPDATE jobs SET state = ?4, lease_owner = NULL, lease_until = NULL "
        "WHERE rowid = ?1 AND (?6 IS NULL OR lease_owner IS NULL OR lease_owner = ?6)",
    [S_JOBS_MISS] = "UPDATE jobs INDEXED BY jobs_due SET state = 3, lease_owner = NULL, "
                    "lease_until = NULL "
                    "WHERE webhook_id = ub(?1) AND state = 0",
    [S_DELIVERY_INSERT] =
        "INSERT OR IGNORE INTO deliveries(id, webhook_id, sink, tick, kind, state, attempts, "
        "round_start, created_at, first_attempt_at, next_attempt_at, vehicles, last_status, "
        "last_error, updated_at, lease_owner, lease_until) VALUES(ub(?1), ub(?2), ?3, ?4, ?5, ?6, "
        "?7, "
        "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    [S_PAYLOAD_INSERT] = "INSERT INTO payloads(delivery, body) VALUES(?1, ?2)",
    [S_JOB_SENT] = "UPDATE jobs SET state = 2, lease_owner = NULL, "
                   "lease_until = NULL WHERE webhook_id = ub(?1) AND tick = ?3 AND vehicle_id = ?2",
    [S_JOB_SENT_ROWID] = "UPDATE jobs SET state = 2, lease_owner = NULL, "
                         "lease_until = NULL WHERE rowid = ?1",
    [S_CLAIM_DELIVERIES] = "SELECT d.rowid, " DELIVERY_COLS " WHERE d.state = 0 AND "
                           "d.next_attempt_at <= ?1 ORDER BY d.next_attempt_at LIMIT ?2",
    [S_LEASE_DELIVERY] = "UPDATE deliveries SET lease_owner = ?2, lease_until = ?3, "
                         "next_attempt_at = ?3 WHERE rowid = ?1",
    [S_ATTEMPT_INSERT] =
        "INSERT OR REPLACE INTO attempts(delivery, n, at, http_status, error, "
        "latency_us) SELECT rowid, ?2, ?3, ?4, ?5, ?6 FROM deliveries WHERE id = ub(?1)",
    [S_DELIVERY_UPDATE] =
        "UPDATE deliveries SET attempts = ?2, state = ?3, next_attempt_at = ?4, last_status = ?5, "
        "last_error = ?6, first_attempt_at = CASE WHEN first_attempt_at = 0 THEN ?7 ELSE "
        "first_attempt_at END, updated_at = ?7, lease_owner = NULL, lease_until = NULL "
        "WHERE id = ub(?1)",
    /* the same, only by the node that holds the lease (or when nobody does) */
    [S_DELIVERY_UPDATE_FENCED] =
        "UPDATE deliveries SET attempts = ?2, state = ?3, next_attempt_at = ?4, last_status = ?5, "
        "last_error = ?6, first_attempt_at = CASE WHEN first_attempt_at = 0 THEN ?7 ELSE "
        "first_attempt_at END, updated_at = ?7, lease_owner = NULL, lease_until = NULL "
        "WHERE id = ub(?1) AND (lease_owner IS NULL OR lease_owner = ?8)",
    /* a deferral: due again later, no attempt counted; fenced like the update */
    [S_DELIVERY_DEFER] =
        "UPDATE deliveries SET next_attempt_at = ?2, last_status = ?3, last_error = ?4, "
        "updated_at = ?5, lease_owner = NULL, lease_until = NULL "
        "WHERE id = ub(?1) AND state = 0 AND (lease_owner IS NULL OR lease_owner = ?6)",
    [S_DELIVERY_UNREADABLE] = "UPDATE deliveries SET state = 2, last_error = ?2, lease_owner = "
                              "NULL, lease_until = NULL WHERE rowid = ?1",
    [S_DICT_INSERT] = "INSERT INTO dictionaries(dict) VALUES(?1)",
    [S_DICT_GET] = "SELECT dict FROM dictionaries WHERE id = ?1",
    [S_DICT_LATEST] = "SELECT id, dict FROM dictionaries ORDER BY id DESC LIMIT 1",
    [S_SET_SUBJECT] = "UPDATE deliveries SET subject = ?2 WHERE id = ub(?1)",
    /* the older pending deliveries of the same vehicles, webhook and sink */
    [S_SUPERSEDE] =
        "UPDATE deliveries SET state = 2, last_error = ?3, updated_at = ?2, lease_owner = NULL, "
        "lease_until = NULL WHERE rowid IN (SELECT o.rowid FROM deliveries d JOIN deliveries o ON "
        "o.webhook_id = d.webhook_id AND o.sink = d.sink AND o.subject = d.subject AND o.tick < "
        "d.tick AND o.state = 0 AND o.subject IS NOT NULL WHERE d.id = ub(?1) AND (o.lease_owner "
        "IS "
        "NULL OR o.lease_until <= ?2))",
    [S_OLDER_PENDING] =
        "SELECT count(*), min(o.next_attempt_at), max(o.lease_owner IS NOT NULL AND o.lease_until "
        "> ?2) FROM deliveries d JOIN deliveries o ON o.webhook_id = d.webhook_id AND o.sink = "
        "d.sink AND o.subject = d.subject AND o.tick < d.tick AND o.state = 0 AND o.subject IS "
        "NOT NULL WHERE d.id = ub(?1)",
    [S_FAIL_PENDING] =
        "UPDATE deliveries SET state = 2, last_error = ?2, updated_at = ?3, "
        "lease_owner = NULL, lease_until = NULL WHERE webhook_id = ub(?1) AND state = 0",
    [S_REPLAY_ONE] = "UPDATE deliveries SET state = 0, round_start = attempts, "
                     "first_attempt_at = 0, next_attempt_at = ?2, updated_at = ?2, "
                     "lease_owner = NULL, lease_until = NULL WHERE id = ub(?1) AND " HAS_PAYLOAD,
    [S_REPLAY_WEBHOOK] = "UPDATE deliveries SET state = 0, round_start = attempts, "
                         "first_attempt_at = 0, next_attempt_at = ?2, updated_at = ?2, "
                         "lease_owner = NULL, lease_until = NULL WHERE webhook_id = ub(?1) AND "
                         "state = ?3 AND kind = 0 AND " HAS_PAYLOAD,
    [S_NEXT_JOB] = "SELECT min(due_at) FROM jobs WHERE state = 0",
    [S_NEXT_DELIVERY] = "SELECT min(next_attempt_at) FROM deliveries WHERE state = 0",
    [S_LIST_DELIVERIES] =
        "SELECT " DELIVERY_COLS " WHERE (?1 IS NULL OR d.webhook_id = ub(?1)) AND "
        "(?2 < 0 OR d.state = ?2) ORDER BY d.tick, d.created_at, d.id LIMIT ?3",
    [S_LIST_ATTEMPTS] = "SELECT ut(d.id), a.n, a.at, a.http_status, a.error, a.latency_us FROM "
                        "attempts a JOIN deliveries d ON d.rowid = a.delivery WHERE d.id = ub(?1) "
                        "ORDER BY a.n",
    [S_DELIVERY_GET] = "SELECT " DELIVERY_COLS " WHERE d.id = ub(?1)",
    [S_STATS_JOBS] = "SELECT state, count(*) FROM jobs WHERE (?1 IS NULL OR webhook_id = ub(?1)) "
                     "GROUP BY state",
    [S_STATS_DELIVERIES] =
        "SELECT state, count(*), sum(attempts), sum(max(attempts - 1, 0)) "
        "FROM deliveries WHERE (?1 IS NULL OR webhook_id = ub(?1)) GROUP BY state",
    /* retention walks forward from a rowid cursor: rows are inserted in time order, so
     * nothing needs an index on their age and pruning costs the hot path nothing */
    [S_PRUNE_BODIES] =
        "DELETE FROM payloads WHERE delivery IN (SELECT d.rowid FROM deliveries d JOIN payloads p "
        "ON p.delivery = d.rowid WHERE d.rowid > ?1 AND ((d.state = 1 AND d.updated_at < ?2) OR "
        "(d.state = 2 AND d.updated_at < ?3)) ORDER BY d.rowid LIMIT ?4) RETURNING delivery",
    [S_PRUNE_ATTEMPTS] = "DELETE FROM attempts WHERE delivery IN (SELECT rowid FROM deliveries "
                         "WHERE state <> 0 AND updated_at < ?1 ORDER BY rowid LIMIT ?2)",
    [S_PRUNE_PAYLOADS] = "DELETE FROM payloads WHERE delivery IN (SELECT rowid FROM deliveries "
                         "WHERE state <> 0 AND updated_at < ?1 ORDER BY rowid LIMIT ?2)",
    [S_PRUNE_DELIVERIES] = "DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries "
                           "WHERE state <> 0 AND updated_at < ?1 ORDER BY rowid LIMIT ?2)",
    [S_PRUNE_JOBS] =
        "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs WHERE state IN (2, 3) "
        "AND tick < ?1 ORDER BY rowid LIMIT ?2)",
    [S_STATS_SUBS] = "SELECT count(*) FROM subscriptions WHERE (?1 IS NULL OR webhook_id = ub(?1)) "
                     "AND removed_at IS NULL",
    /* the bucket refilled at ?2 a minute since it was last touched (none for a
     * clock behind it), at most ?3; up to ?5 whole tokens taken */
    [S_QUOTA_TAKE] =
        "INSERT INTO quotas(key, tokens, at, granted) VALUES(?1, ?3 - min(?5, ?3), ?4, min(?5, "
        "?3)) ON CONFLICT(key) DO UPDATE SET tokens = " REFILLED " - min(?5, CAST(" REFILLED
        " AS INTEGER)), granted = min(?5, CAST(" REFILLED " AS INTEGER)), at = max(at, ?4) "
        "RETURNING granted",
};

/* Each entry migrates from version i to i + 1. */
static const char *const migrations[] = {
    "CREATE TABLE webhooks(id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, callback_uri TEXT "
    "NOT NULL, definition TEXT NOT NULL, state INTEGER NOT NULL, reason TEXT, state_at INTEGER "
    "NOT NULL, active_from INTEGER NOT NULL, last_tick INTEGER NOT NULL, created_at INTEGER NOT "
    "NULL);"
    "CREATE TABLE vehicles(id TEXT PRIMARY KEY, source TEXT NOT NULL, access_token BLOB, "
    "refresh_token BLOB, access_expires INTEGER NOT NULL DEFAULT 0, needs_reauth INTEGER NOT "
    "NULL DEFAULT 0);"
    "CREATE TABLE subscriptions(webhook_id TEXT NOT NULL, vehicle_id TEXT NOT NULL, made_at "
    "INTEGER NOT NULL, removed_at INTEGER, spread_key INTEGER NOT NULL, PRIMARY KEY(webhook_id, "
    "vehicle_id));"
    "CREATE TABLE jobs(webhook_id TEXT NOT NULL, vehicle_id TEXT NOT NULL, tick INTEGER NOT "
    "NULL, state INTEGER NOT NULL, due_at INTEGER NOT NULL, fetch_attempts INTEGER NOT NULL "
    "DEFAULT 0, last_error TEXT, lease_owner TEXT, lease_until INTEGER, delivery_id TEXT, "
    "UNIQUE(webhook_id, vehicle_id, tick));"
    "CREATE INDEX jobs_due ON jobs(state, due_at);"
    "CREATE TABLE deliveries(id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL, sink TEXT NOT NULL, "
    "tick INTEGER NOT NULL, kind INTEGER NOT NULL, state INTEGER NOT NULL, attempts INTEGER NOT "
    "NULL, round_start INTEGER NOT NULL, created_at INTEGER NOT NULL, first_attempt_at INTEGER "
    "NOT NULL, next_attempt_at INTEGER NOT NULL, body BLOB, vehicles INTEGER NOT NULL, "
    "last_status INTEGER NOT NULL, last_error TEXT, updated_at INTEGER NOT NULL, lease_owner "
    "TEXT, lease_until INTEGER);"
    "CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at);"
    "CREATE TABLE attempts(delivery_id TEXT NOT NULL, n INTEGER NOT NULL, at INTEGER NOT NULL, "
    "http_status INTEGER NOT NULL, error TEXT, latency_us INTEGER NOT NULL, PRIMARY "
    "KEY(delivery_id, n)) WITHOUT ROWID;",
    /* 2: jobs carry their subscription's spread_key and are kept in its order; no
     * index on (webhook, vehicle, tick), whose inserts were random (see claims.h) */
    "CREATE TABLE jobs_v2(webhook_id TEXT NOT NULL, vehicle_id TEXT NOT NULL, tick INTEGER NOT "
    "NULL, state INTEGER NOT NULL, due_at INTEGER NOT NULL, spread_key INTEGER NOT NULL, "
    "fetch_attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, lease_owner TEXT, lease_until "
    "INTEGER, delivery_id TEXT);"
    "INSERT INTO jobs_v2(rowid, webhook_id, vehicle_id, tick, state, due_at, spread_key, "
    "fetch_attempts, last_error, lease_owner, lease_until, delivery_id) SELECT j.rowid, "
    "j.webhook_id, j.vehicle_id, j.tick, j.state, j.due_at, coalesce((SELECT s.spread_key FROM "
    "subscriptions s WHERE s.webhook_id = j.webhook_id AND s.vehicle_id = j.vehicle_id), 0), "
    "j.fetch_attempts, j.last_error, j.lease_owner, j.lease_until, j.delivery_id FROM jobs j;"
    "DROP TABLE jobs;"
    "ALTER TABLE jobs_v2 RENAME TO jobs;"
    "CREATE INDEX jobs_due ON jobs(state, due_at, spread_key);"
    "CREATE INDEX jobs_tick ON jobs(webhook_id, tick);"
    /* covering: a tick's materialization reads no table rows, which lie in vehicle order */
    "CREATE INDEX subscriptions_spread ON subscriptions(webhook_id, spread_key, made_at, "
    "removed_at, vehicle_id);",
    /* 3: the due indexes hold only what is pending, so a job sent or a delivery
     * delivered leaves its index instead of moving within it; a vehicle is one
     * B-tree lookup (WITHOUT ROWID), not an index lookup and then a row lookup */
    "DROP INDEX jobs_due;"
    "CREATE INDEX jobs_due ON jobs(due_at, spread_key) WHERE state = 0;"
    "DROP INDEX deliveries_due;"
    "CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state = 0;"
    "CREATE TABLE vehicles_v3(id TEXT PRIMARY KEY, source TEXT NOT NULL, access_token BLOB, "
    "refresh_token BLOB, access_expires INTEGER NOT NULL DEFAULT 0, needs_reauth INTEGER NOT "
    "NULL DEFAULT 0) WITHOUT ROWID;"
    "INSERT INTO vehicles_v3 SELECT id, source, access_token, refresh_token, access_expires, "
    "needs_reauth FROM vehicles;"
    "DROP TABLE vehicles;"
    "ALTER TABLE vehicles_v3 RENAME TO vehicles;",
    /* 4: payload bytes in a table of their own (see DELIVERY_COLS) */
    "CREATE TABLE payloads(delivery INTEGER PRIMARY KEY, body BLOB NOT NULL);"
    "INSERT INTO payloads SELECT rowid, body FROM deliveries WHERE body IS NOT NULL;"
    "ALTER TABLE deliveries DROP COLUMN body;",
    /* 5: the nodes that share the ledger (one, on a file; the table keeps the
     * contract the same as a server store's) */
    "CREATE TABLE IF NOT EXISTS nodes(id TEXT PRIMARY KEY, host TEXT NOT NULL, started_at "
    "INTEGER NOT NULL, "
    "last_seen INTEGER NOT NULL);",
    /* 6: shared rate limits (quota_take): every process on this file draws on one budget */
    ("CREATE TABLE quotas(key TEXT PRIMARY KEY, tokens REAL NOT NULL, at INTEGER NOT NULL, "
     "granted INTEGER NOT NULL) WITHOUT ROWID;"),
    /* 7: a delivery's subject (the vehicles it carries, as a key) for supersede and
     * ordered; the index holds only pending deliveries that have one */
    ("ALTER TABLE deliveries ADD COLUMN subject INTEGER;"
     "CREATE INDEX deliveries_subject ON deliveries(webhook_id, sink, subject, tick) WHERE state "
     "= 0 AND subject IS NOT NULL;"),
    /* 8: payloads are compressed with dictionaries trained on the ledger's own (codec.h);
     * the payloads stored before stay as they are, and read as they were */
    "CREATE TABLE dictionaries(id INTEGER PRIMARY KEY, dict BLOB NOT NULL);",
    /* 9: attempts keyed by their delivery's rowid (an integer of a few bytes), not its
     * 36-character id; jobs no longer name a delivery (nothing read it) */
    "CREATE TABLE attempts_v9(delivery INTEGER NOT NULL, n INTEGER NOT NULL, at INTEGER NOT NULL, "
    "http_status INTEGER NOT NULL, error TEXT, latency_us INTEGER NOT NULL, PRIMARY KEY(delivery, "
    "n)) WITHOUT ROWID;"
    "INSERT INTO attempts_v9 SELECT d.rowid, a.n, a.at, a.http_status, a.error, a.latency_us FROM "
    "attempts a JOIN deliveries d ON d.id = a.delivery_id;"
    "DROP TABLE attempts;"
    "ALTER TABLE attempts_v9 RENAME TO attempts;",
    /* 10: webhook and delivery ids as their 16 bytes, not 36 characters, in every row and
     * index (ub and ut convert at the SQL boundary: see uuid_functions) */
    ("UPDATE webhooks SET id = ub(id);"
     "UPDATE subscriptions SET webhook_id = ub(webhook_id);"
     "UPDATE jobs SET webhook_id = ub(webhook_id);"
     "UPDATE deliveries SET id = ub(id), webhook_id = ub(webhook_id);"),
};

static const char *const sync_modes[] = {"normal", "full", "off", NULL};

struct sqlite_store {
    const struct mtr_host_api *host;
    mtr_ctx *ctx;
    char *path;
    int64_t busy_timeout_ms;
    int synchronous;
    sqlite3 *db;
    sqlite3_stmt *stmts[S_COUNT];
    int in_tx;
    sqlite3_int64 prune_cursor; /* payloads are pruned from here on */
    struct claims claims;       /* the latest claim's jobs, by key */
    struct checkpointer ckpt;
    int read_only;      /* opened by a command that only reads */
    struct codec codec; /* payload bytes, compressed */
};

/* ---- plumbing ---------------------------------------------------------------------- */

static int fail(struct sqlite_store *s, const char *what)
{
    if (s->db && sqlite3_errcode(s->db) == SQLITE_NOTADB) {
        s->host->set_error(s->ctx, "%s: not a metronome ledger (not an SQLite database)", s->path);
        return MTR_ERR;
    }
    s->host->set_error(s->ctx, "%s: %s: %s", s->path, what, s->db ? sqlite3_errmsg(s->db) : "");
    return MTR_ERR;
}

/* The cached statement, reset and with bindings cleared. */
static sqlite3_stmt *stmt(struct sqlite_store *s, enum stmt_id id)
{
    if (!s->stmts[id] && sqlite3_prepare_v3(s->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT,
                                            &s->stmts[id], NULL) != SQLITE_OK) {
        fail(s, "prepare");
        return NULL;
    }
    sqlite3_reset(s->stmts[id]);
    sqlite3_clear_bindings(s->stmts[id]);
    return s->stmts[id];
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_blob(sqlite3_stmt *st, int i, const void *v, size_t n)
{
    if (v)
        sqlite3_bind_blob64(st, i, v, n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Steps a statement that returns no rows. */
static int run(struct sqlite_store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? MTR_OK : fail(s, what);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static int exec(struct sqlite_store *s, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        s->host->set_error(s->ctx, "%s: %s", s->path, err ? err : "error");
        sqlite3_free(err);
        return MTR_ERR;
    }
    return MTR_OK;
}

/* Runs fn inside a transaction unless the caller already holds one. */
static int sqlite_begin(void *state);
static int sqlite_commit(void *state);
static int sqlite_rollback(void *state);

static int tx_enter(struct sqlite_store *s, int *own)
{
    *own = !s->in_tx;
    return *own ? sqlite_begin(s) : MTR_OK;
}

static int tx_leave(struct sqlite_store *s, int own, int rc)
{
    if (!own)
        return rc;
    if (rc == MTR_OK)
        return sqlite_commit(s);
    sqlite_rollback(s);
    return rc;
}

/* ---- life cycle ---------------------------------------------------------------------- */

static int make_parent_dirs(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0750) != 0 && errno != EEXIST) {
            free(copy);
            return -1;
        }
        *p = '/';
    }
    free(copy);
    return 0;
}

static int migrate(struct sqlite_store *s)
{
    sqlite3_stmt *st;
    int version = 0, latest = (int)(sizeof migrations / sizeof *migrations);
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return fail(s, "read schema version");
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > latest) {
        s->host->set_error(s->ctx,
                           "%s: schema version %d is newer than this metronome knows (%d); "
                           "upgrade metronome",
                           s->path, version, latest);
        return MTR_ERR;
    }
    for (; version < latest; version++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version + 1);
        if (exec(s, "BEGIN IMMEDIATE") != MTR_OK)
            return MTR_ERR;
        if (exec(s, migrations[version]) != MTR_OK || exec(s, pragma) != MTR_OK) {
            exec(s, "ROLLBACK");
            return MTR_ERR;
        }
        if (exec(s, "COMMIT") != MTR_OK)
            return MTR_ERR;
    }
    return MTR_OK;
}

/* What is at path before it is opened: nothing (a new ledger is created,
 * private to its owner), or a regular file of this user's (or root's) that
 * starts like an SQLite database. An empty file is refused: a truncated
 * ledger must not silently become a fresh one with new webhook ids. */
static int check_file(struct sqlite_store *s, int *exists)
{
    struct stat sb;
    *exists = 0;
    if (stat(s->path, &sb) != 0) {
        if (errno != ENOENT)
            return s->host->set_error(s->ctx, "%s: %s", s->path, strerror(errno)), MTR_ERR;
        if (s->read_only) {
            s->host->set_error(s->ctx, "%s: no ledger here yet (run a command that writes first)",
                               s->path);
            return MTR_ERR;
        }
        return MTR_OK;
    }
    *exists = 1;
    if (!S_ISREG(sb.st_mode))
        return s->host->set_error(s->ctx, "%s: not a regular file", s->path), MTR_ERR;
    if (sb.st_uid != geteuid() && sb.st_uid != 0) {
        s->host->set_error(s->ctx,
                           "%s: the ledger belongs to another user (uid %u); run metronome as "
                           "that user",
                           s->path, (unsigned)sb.st_uid);
        return MTR_ERR;
    }
    /* the file is not opened here: closing a descriptor of it would drop the
     * POSIX locks every other connection of this process holds on it (a daemon
     * has several), and SQLite would then take this process's WAL for
     * abandoned. A file that is not SQLite's is found when SQLite first reads
     * it (fail(): SQLITE_NOTADB). */
    if (sb.st_size == 0) {
        s->host->set_error(s->ctx,
                           "%s: the file is empty, not a metronome ledger (truncated?); restore "
                           "it from a backup, or move it away to start a new ledger",
                           s->path);
        return MTR_ERR;
    }
    return MTR_OK;
}

/* A new ledger file, created 0600 before SQLite opens it: its -wal and -shm
 * files take the same permissions. */
static int create_private(struct sqlite_store *s)
{
    int fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
        return s->host->set_error(s->ctx, "%s: cannot create: %s", s->path, strerror(errno)),
               MTR_ERR;
    if (fd >= 0)
        close(fd);
    return MTR_OK;
}

/* An existing file with tables but without metronome's schema is someone
 * else's database. */
static int check_schema(struct sqlite_store *s, int existed)
{
    static const char *const tables[] = {"webhooks", "vehicles",   "subscriptions",
                                         "jobs",     "deliveries", "attempts"};
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return fail(s, "cannot read it");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return fail(s, "cannot read it");
    if (existed && version == 0) {
        s->host->set_error(s->ctx,
                           "%s: not a metronome ledger (an SQLite database without metronome's "
                           "schema)",
                           s->path);
        return MTR_ERR;
    }
    if (version == 0)
        return MTR_OK;
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        if (sqlite3_prepare_v2(s->db,
                               "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", -1,
                               &st, NULL) != SQLITE_OK)
            return fail(s, "read schema");
        sqlite3_bind_text(st, 1, tables[i], -1, SQLITE_STATIC);
        int found = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (!found) {
            s->host->set_error(s->ctx,
                               "%s: the ledger's schema is damaged: table '%s' is missing "
                               "(schema version %d); restore it from a backup",
                               s->path, tables[i], version);
            return MTR_ERR;
        }
    }
    return MTR_OK;
}

/* Whether the open connection can read: a WAL ledger opened read-only needs
 * its -shm file, which a reader without write access to the directory cannot
 * create. */
static int readable(struct sqlite_store *s)
{
    return sqlite3_exec(s->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) == SQLITE_OK;
}

/* Reads a ledger this user may not write to: with no -wal file (or an empty
 * one), no page lives outside the main file, so it is read as immutable (no
 * -shm needed). With pages in a -wal file there is nothing safe to do but say
 * so. */
static int reopen_immutable(struct sqlite_store *s)
{
    char wal[4096], uri[3 * 4096 + 32];
    struct stat sb;
    snprintf(wal, sizeof wal, "%s-wal", s->path);
    if (stat(wal, &sb) == 0 && sb.st_size > 0) /* an empty one holds no page */
        return fail(s, "cannot read it (a writer is at work and this user cannot share its "
                       "-shm file)");
    size_t n = (size_t)snprintf(uri, sizeof uri, "file:");
    for (const char *p = s->path; *p && n + 4 < sizeof uri; p++)
        n += (size_t)(*p == '%' || *p == '?' || *p == '#'
                          ? snprintf(uri + n, sizeof uri - n, "%%%02X", (unsigned char)*p)
                          : snprintf(uri + n, sizeof uri - n, "%c", *p));
    snprintf(uri + n, sizeof uri - n, "?immutable=1");
    sqlite3_close(s->db);
    s->db = NULL;
    if (sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK)
        return fail(s, "cannot open");
    return MTR_OK;
}

/* ---- ids as 16 bytes ----------------------------------------------------------------------
 * Webhook and delivery ids are UUIDs: the ledger keeps their 16 bytes, and the
 * statements convert at the boundary - ub(text) gives the bytes of a canonical
 * UUID (anything else unchanged, so a text id still finds itself), ut(bytes)
 * the lowercase text back. Byte order is the text's order, so cursors and
 * ORDER BY id are unchanged. */

static int hex_value(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static void fn_ub(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    /* the type first: reading a blob as text would turn the value itself into text */
    int ok = sqlite3_value_type(argv[0]) == SQLITE_TEXT && sqlite3_value_bytes(argv[0]) == 36;
    const unsigned char *t = ok ? sqlite3_value_text(argv[0]) : NULL;
    unsigned char b[16];
    for (int i = 0, k = 0; ok && i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            ok = t[i] == '-';
            continue;
        }
        int hi = hex_value(t[i]), lo = hex_value(t[++i]);
        ok = hi >= 0 && lo >= 0;
        if (ok)
            b[k++] = (unsigned char)(hi << 4 | lo);
    }
    if (ok)
        sqlite3_result_blob(cx, b, 16, SQLITE_TRANSIENT);
    else
        sqlite3_result_value(cx, argv[0]);
}

static void fn_ut(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) != SQLITE_BLOB || sqlite3_value_bytes(argv[0]) != 16) {
        sqlite3_result_value(cx, argv[0]);
        return;
    }
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = sqlite3_value_blob(argv[0]);
    char t[36];
    for (int i = 0, k = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            t[k++] = '-';
        t[k++] = digits[b[i] >> 4];
        t[k++] = digits[b[i] & 15];
    }
    sqlite3_result_text(cx, t, 36, SQLITE_TRANSIENT);
}

static int uuid_functions(struct sqlite_store *s)
{
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    if (sqlite3_create_function_v2(s->db, "ub", 1, flags, NULL, fn_ub, NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_create_function_v2(s->db, "ut", 1, flags, NULL, fn_ut, NULL, NULL, NULL) !=
            SQLITE_OK)
        return fail(s, "register functions");
    return MTR_OK;
}

/* Payloads are compressed with the ledger's newest dictionary, if it has one. */
static int latest_dictionary(struct sqlite_store *s)
{
    sqlite3_stmt *st = stmt(s, S_DICT_LATEST);
    if (!st)
        return MTR_ERR;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW &&
        codec_use(&s->codec, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                  (size_t)sqlite3_column_bytes(st, 1), 0) != 0)
        s->host->log(s->ctx, MTR_LOG_WARN,
                     "%s: its compression dictionary %lld is unusable; "
                     "payloads are compressed without one",
                     s->path, (long long)sqlite3_column_int64(st, 0));
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "read the dictionary");
}

static int sqlite_start(void *state)
{
    struct sqlite_store *s = state;
    static const char *const sync_pragma[] = {
        "PRAGMA synchronous = NORMAL", "PRAGMA synchronous = FULL", "PRAGMA synchronous = OFF"};
    int existed;
    if (check_file(s, &existed) != MTR_OK)
        return MTR_ERR;
    if (!existed && make_parent_dirs(s->path) != 0) {
        s->host->set_error(s->ctx, "%s: cannot create its directory: %s", s->path, strerror(errno));
        return MTR_ERR;
    }
    if (!existed && create_private(s) != MTR_OK)
        return MTR_ERR;
    int flags = s->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if (sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK)
        return fail(s, "cannot open");
    sqlite3_busy_timeout(s->db, (int)s->busy_timeout_ms);
    if (s->read_only && !readable(s) && reopen_immutable(s) != MTR_OK)
        return MTR_ERR;
    if (uuid_functions(s) != MTR_OK)
        return MTR_ERR;
    if (check_schema(s, existed) != MTR_OK)
        return MTR_ERR;
    if (s->read_only) /* no pragma that writes, no migration, no checkpoints */
        return exec(s, "PRAGMA query_only = 1");
    if (exec(s, "PRAGMA journal_mode = WAL") != MTR_OK ||
        exec(s, sync_pragma[s->synchronous]) != MTR_OK || exec(s, "PRAGMA foreign_keys = OFF") ||
        exec(s, "PRAGMA cache_size = -32768") != MTR_OK ||
        exec(s, "PRAGMA wal_autocheckpoint = 16384") != MTR_OK || migrate(s) != MTR_OK ||
        latest_dictionary(s) != MTR_OK)
        return MTR_ERR;
    /* if the thread cannot start, SQLite's automatic checkpoint stays */
    checkpointer_start(&s->ckpt, s->db, s->path, 16384, sync_pragma[s->synchronous]);
    return MTR_OK;
}

static int sqlite_read_only(void *state)
{
    ((struct sqlite_store *)state)->read_only = 1;
    return MTR_OK;
}

static int sqlite_check(void *state, int (*fn)(void *arg, const char *problem), void *arg,
                        uint64_t *problems)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st;
    *problems = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
        return fail(s, "integrity check");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        if (line && strcmp(line, "ok") != 0) {
            (*problems)++;
            fn(arg, line);
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) { /* corruption SQLite cannot even walk */
        (*problems)++;
        fn(arg, sqlite3_errmsg(s->db));
    }
    return MTR_OK;
}

static void sqlite_stop(void *state)
{
    struct sqlite_store *s = state;
    if (!s->db)
        return;
    checkpointer_stop(&s->ckpt);
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(s->stmts[i]);
        s->stmts[i] = NULL;
    }
    sqlite3_close(s->db);
    s->db = NULL;
}

static int sqlite_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(host->get_string(ctx, "path")))) {
        free(s);
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    s->host = host;
    s->ctx = ctx;
    s->busy_timeout_ms = host->get_duration_ms(ctx, "busy_timeout");
    s->synchronous = host->get_enum(ctx, "synchronous");
    *state = s;
    if (codec_init(&s->codec) != 0) {
        host->set_error(ctx, "zstd failed to initialise");
        return MTR_ERR;
    }
    return MTR_OK;
}

static void sqlite_destroy(void *state)
{
    struct sqlite_store *s = state;
    if (!s)
        return;
    sqlite_stop(s);
    claims_free(&s->claims);
    codec_free(&s->codec);
    free(s->path);
    free(s);
}

/* ---- transactions -------------------------------------------------------------------- */

static int sqlite_begin(void *state)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_BEGIN);
    if (!st || run(s, st, "begin") != MTR_OK)
        return MTR_ERR;
    s->in_tx = 1;
    return MTR_OK;
}

static int sqlite_commit(void *state)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_COMMIT);
    s->in_tx = 0;
    int rc = st ? run(s, st, "commit") : MTR_ERR;
    if (rc == MTR_OK)
        codec_committed(&s->codec);
    return rc;
}

static int sqlite_rollback(void *state)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_ROLLBACK);
    s->in_tx = 0;
    codec_rolled_back(&s->codec); /* a dictionary stored in it is gone */
    return st ? run(s, st, "rollback") : MTR_ERR;
}

/* ---- webhooks ---------------------------------------------------------------------- */

static int sqlite_webhook_upsert(void *state, const struct mtr_webhook_row *w, mtr_time now)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_WEBHOOK_UPSERT);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, w->id);
    bind_text(st, 2, w->name);
    bind_text(st, 3, w->callback_uri);
    bind_text(st, 4, w->definition);
    sqlite3_bind_int64(st, 5, now);
    return run(s, st, "save webhook");
}

static int sqlite_webhook_list(void *state, const char *name, mtr_webhook_fn fn, void *arg)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, name ? S_WEBHOOK_GET : S_WEBHOOK_LIST);
    int rc;
    if (!st)
        return MTR_ERR;
    if (name)
        bind_text(st, 1, name);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct mtr_webhook_row w = {
            .id = col_text(st, 0),
            .name = col_text(st, 1),
            .callback_uri = col_text(st, 2),
            .definition = col_text(st, 3),
            .state = sqlite3_column_int(st, 4),
            .reason = col_text(st, 5),
            .state_at = sqlite3_column_int64(st, 6),
            .active_from = sqlite3_column_int64(st, 7),
            .last_tick = sqlite3_column_int64(st, 8),
        };
        if (fn(arg, &w) != 0)
            break;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "list webhooks");
}

static int sqlite_webhook_set_state(void *state, const char *id, int new_state, const char *reason,
                                    mtr_time now)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_WEBHOOK_STATE);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, id);
    sqlite3_bind_int(st, 2, new_state);
    bind_text(st, 3, reason);
    sqlite3_bind_int64(st, 4, now);
    return run(s, st, "set webhook state");
}

static int sqlite_webhook_set_last_tick(void *state, const char *id, mtr_time tick)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_WEBHOOK_LAST_TICK);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, tick);
    return run(s, st, "set last tick");
}

/* ---- vehicles and subscriptions ---------------------------------------------------- */

static int sqlite_vehicle_upsert(void *state, const struct mtr_vehicle_row *v)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_VEHICLE_UPSERT);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, v->id);
    bind_text(st, 2, v->source);
    bind_blob(st, 3, v->access_token, v->access_len);
    bind_blob(st, 4, v->refresh_token, v->refresh_len);
    sqlite3_bind_int64(st, 5, v->access_expires);
    sqlite3_bind_int(st, 6, v->needs_reauth);
    return run(s, st, "save vehicle");
}

static void read_vehicle(sqlite3_stmt *st, int c, struct mtr_vehicle_row *v)
{
    v->id = col_text(st, c);
    v->source = col_text(st, c + 1);
    v->access_token = sqlite3_column_blob(st, c + 2);
    v->access_len = (size_t)sqlite3_column_bytes(st, c + 2);
    v->refresh_token = sqlite3_column_blob(st, c + 3);
    v->refresh_len = (size_t)sqlite3_column_bytes(st, c + 3);
    v->access_expires = sqlite3_column_int64(st, c + 4);
    v->needs_reauth = sqlite3_column_int(st, c + 5);
}

static int sqlite_vehicle_get(void *state, const char *id,
                              int (*fn)(void *, const struct mtr_vehicle_row *), void *arg)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_VEHICLE_GET);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        struct mtr_vehicle_row v;
        read_vehicle(st, 0, &v);
        fn(arg, &v);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "read vehicle");
}

static int sqlite_vehicle_sample(void *state, int (*fn)(void *, const struct mtr_vehicle_row *),
                                 void *arg)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, source, access_token, refresh_token, access_expires, "
                           "needs_reauth FROM vehicles WHERE access_token IS NOT NULL OR "
                           "refresh_token IS NOT NULL LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "read vehicles");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        struct mtr_vehicle_row v;
        read_vehicle(st, 0, &v);
        fn(arg, &v);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "read vehicles");
}

static int sqlite_subscribe(void *state, const char *webhook_id, const char *vehicle_id,
                            mtr_time now, uint32_t spread_key, int *created)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_SUB_GET);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, webhook_id);
    bind_text(st, 2, vehicle_id);
    int rc = sqlite3_step(st);
    int active = rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_NULL;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(s, "read subscription");
    *created = 0;
    if (active)
        return MTR_OK;
    if (!(st = stmt(s, S_SUB_PUT)))
        return MTR_ERR;
    bind_text(st, 1, webhook_id);
    bind_text(st, 2, vehicle_id);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, spread_key);
    if (run(s, st, "save subscription") != MTR_OK)
        return MTR_ERR;
    *created = 1;
    return MTR_OK;
}

static int sqlite_unsubscribe(void *state, const char *webhook_id, const char *vehicle_id,
                              mtr_time now, int *removed)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_UNSUB);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, webhook_id);
    bind_text(st, 2, vehicle_id);
    sqlite3_bind_int64(st, 3, now);
    if (run(s, st, "remove subscription") != MTR_OK)
        return MTR_ERR;
    *removed = sqlite3_changes(s->db) > 0;
    return MTR_OK;
}

/* ---- jobs ------------------------------------------------------------------------------ */

static int sqlite_materialize_tick(void *state, const char *webhook_id, mtr_time tick,
                                   int job_state, int64_t spread_min, int64_t spread_max,
                                   uint64_t *count)
{
    struct sqlite_store *s = state;
    int own, rc;
    *count = 0;
    if (tx_enter(s, &own) != MTR_OK)
        return MTR_ERR;
    sqlite3_stmt *st = stmt(s, S_TICK_EXISTS);
    if (!st)
        return tx_leave(s, own, MTR_ERR);
    bind_text(st, 1, webhook_id);
    sqlite3_bind_int64(st, 2, tick);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) /* materialized before: left alone */
        return tx_leave(s, own, MTR_OK);
    if (rc != SQLITE_DONE || !(st = stmt(s, S_MATERIALIZE)))
        return tx_leave(s, own, fail(s, "insert jobs"));
    bind_text(st, 1, webhook_id);
    sqlite3_bind_int64(st, 2, tick);
    sqlite3_bind_int(st, 3, job_state);
    sqlite3_bind_int64(st, 4, spread_min);
    sqlite3_bind_int64(st, 5, spread_max - spread_min + 1);
    rc = run(s, st, "insert jobs");
    if (rc == MTR_OK)
        *count = (uint64_t)sqlite3_changes(s->db);
    return tx_leave(s, own, rc);
}

static int lease_row(struct sqlite_store *s, enum stmt_id id, sqlite3_int64 rowid,
                     const char *owner, mtr_time lease_until)
{
    sqlite3_stmt *st = stmt(s, id);
    if (!st)
        return MTR_ERR;
    sqlite3_bind_int64(st, 1, rowid);
    bind_text(st, 2, owner);
    sqlite3_bind_int64(st, 3, lease_until);
    return run(s, st, "lease");
}

static int lease_jobs(struct sqlite_store *s, const char *owner, mtr_time now, mtr_time lease_until,
                      size_t max)
{
    sqlite3_stmt *st = stmt(s, S_LEASE_JOBS);
    if (!st)
        return MTR_ERR;
    sqlite3_bind_int64(st, 1, now);
    bind_text(st, 2, owner);
    sqlite3_bind_int64(st, 3, lease_until);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)max);
    return run(s, st, "lease jobs");
}

/* The due jobs, handed to fn in claim order and remembered by rowid (claims.h). */
static int scan_due_jobs(struct sqlite_store *s, mtr_time now, size_t max, mtr_job_fn fn, void *arg)
{
    int rc = MTR_OK, step;
    sqlite3_stmt *st = stmt(s, S_CLAIM_JOBS);
    if (!st)
        return MTR_ERR;
    claims_reset(&s->claims, max); /* without memory, jobs are found by key instead */
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct mtr_job j = {
            .key = {col_text(st, 1), col_text(st, 2), sqlite3_column_int64(st, 3)},
            .state = sqlite3_column_int(st, 4),
            .due_at = sqlite3_column_int64(st, 5),
            .fetch_attempts = sqlite3_column_int(st, 6),
        };
        read_vehicle(st, 7, &j.vehicle);
        claims_put(&s->claims, j.key.webhook_id, j.key.vehicle_id, j.key.tick,
                   sqlite3_column_int64(st, 0));
        fn(arg, &j);
    }
    if (step != SQLITE_DONE)
        rc = fail(s, "claim jobs");
    sqlite3_reset(st);
    return rc;
}

static int sqlite_claim_jobs(void *state, const char *owner, mtr_time now, mtr_time lease_until,
                             size_t max, mtr_job_fn fn, void *arg)
{
    struct sqlite_store *s = state;
    int own;
    if (tx_enter(s, &own) != MTR_OK)
        return MTR_ERR;
    int rc = scan_due_jobs(s, now, max, fn, arg);
    /* leased in one statement once the scan is done: the same rows, in this transaction */
    if (rc == MTR_OK)
        rc = lease_jobs(s, owner, now, lease_until, max);
    return tx_leave(s, own, rc);
}

/* store.h: held by the caller's transaction (BEGIN IMMEDIATE: no other
 * connection writes until it ends), so no lease is written. */
static int sqlite_claim_jobs_held(void *state, mtr_time now, size_t max, mtr_job_fn fn, void *arg)
{
    struct sqlite_store *s = state;
    if (!s->in_tx) {
        s->host->set_error(s->ctx, "claim_jobs_held outside a transaction");
        return MTR_ERR;
    }
    return scan_due_jobs(s, now, max, fn, arg);
}

/* The statement that updates one job: by rowid when this store claimed it
 * (claims.h), else by key; ?1 .. ?3 are bound, the caller binds the rest. */
static sqlite3_stmt *job_stmt(struct sqlite_store *s, const struct mtr_job_key *k,
                              enum stmt_id by_key, enum stmt_id by_rowid)
{
    int64_t rowid = claims_take(&s->claims, k->webhook_id, k->vehicle_id, k->tick);
    sqlite3_stmt *st = stmt(s, rowid ? by_rowid : by_key);
    if (!st)
        return NULL;
    if (rowid) {
        sqlite3_bind_int64(st, 1, rowid);
        return st;
    }
    bind_text(st, 1, k->webhook_id);
    bind_text(st, 2, k->vehicle_id);
    sqlite3_bind_int64(st, 3, k->tick);
    return st;
}

/* A job's completion; with an owner, only while no other node holds the
 * job's lease (*fenced = 1 and nothing written otherwise). */
static int job_retry(struct sqlite_store *s, const char *owner, const struct mtr_job_key *key,
                     mtr_time due_at, const char *error, int *fenced)
{
    sqlite3_stmt *st = job_stmt(s, key, S_JOB_RETRY, S_JOB_RETRY_ROWID);
    if (!st)
        return MTR_ERR;
    sqlite3_bind_int64(st, 4, due_at);
    bind_text(st, 5, error);
    bind_text(st, 6, owner);
    if (run(s, st, "reschedule job") != MTR_OK)
        return MTR_ERR;
    *fenced = owner && sqlite3_changes(s->db) == 0;
    return MTR_OK;
}

static int job_state(struct sqlite_store *s, const char *owner, const struct mtr_job_key *key,
                     int new_state, int *fenced)
{
    sqlite3_stmt *st = job_stmt(s, key, S_JOB_STATE, S_JOB_STATE_ROWID);
    if (!st)
        return MTR_ERR;
    sqlite3_bind_int(st, 4, new_state);
    bind_text(st, 6, owner);
    if (run(s, st, "set job state") != MTR_OK)
        return MTR_ERR;
    *fenced = owner && sqlite3_changes(s->db) == 0;
    return MTR_OK;
}

static int sqlite_job_retry(void *state, const struct mtr_job_key *key, mtr_time due_at,
                            const char *error)
{
    int fenced;
    return job_retry(state, NULL, key, due_at, error, &fenced);
}

static int sqlite_job_set_state(void *state, const struct mtr_job_key *key, int new_state)
{
    int fenced;
    return job_state(state, NULL, key, new_state, &fenced);
}

static int sqlite_job_retry_as(void *state, const char *owner, const struct mtr_job_key *key,
                               mtr_time due_at, const char *error, int *fenced)
{
    return job_retry(state, owner, key, due_at, error, fenced);
}

static int sqlite_job_set_state_as(void *state, const char *owner, const struct mtr_job_key *key,
                                   int new_state, int *fenced)
{
    return job_state(state, owner, key, new_state, fenced);
}

static int sqlite_jobs_miss_pending(void *state, const char *webhook_id, uint64_t *count)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_JOBS_MISS);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, webhook_id);
    if (run(s, st, "mark jobs missed") != MTR_OK)
        return MTR_ERR;
    *count = (uint64_t)sqlite3_changes(s->db);
    return MTR_OK;
}

/* ---- deliveries ------------------------------------------------------------------------ */

/* Inserts d and its bytes unless its id is there already; *inserted tells. */
/* The samples are complete: a dictionary is trained from them and stored in
 * the current transaction; payloads are compressed with it from now on. A
 * dictionary zstd cannot train is no error: payloads go on without one. */
static int new_dictionary(struct sqlite_store *s)
{
    void *dict;
    size_t len;
    if (codec_train(&s->codec, &dict, &len) != 0)
        return MTR_OK;
    sqlite3_stmt *st = stmt(s, S_DICT_INSERT);
    int rc = st ? MTR_OK : MTR_ERR;
    if (st) {
        bind_blob(st, 1, dict, len);
        rc = run(s, st, "store a compression dictionary");
    }
    if (rc == MTR_OK &&
        codec_use(&s->codec, sqlite3_last_insert_rowid(s->db), dict, len, s->in_tx) != 0)
        s->host->log(s->ctx, MTR_LOG_WARN, "%s: the trained dictionary is unusable", s->path);
    free(dict);
    return rc;
}

static int insert_delivery(struct sqlite_store *s, const struct mtr_delivery_row *d, int *inserted)
{
    sqlite3_stmt *st = stmt(s, S_DELIVERY_INSERT);
    *inserted = 0;
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, d->id);
    bind_text(st, 2, d->webhook_id);
    bind_text(st, 3, d->sink);
    sqlite3_bind_int64(st, 4, d->tick);
    sqlite3_bind_int(st, 5, d->kind);
    sqlite3_bind_int(st, 6, d->state);
    sqlite3_bind_int(st, 7, d->attempts);
    sqlite3_bind_int(st, 8, d->round_start);
    sqlite3_bind_int64(st, 9, d->created_at);
    sqlite3_bind_int64(st, 10, d->first_attempt_at);
    sqlite3_bind_int64(st, 11, d->next_attempt_at);
    sqlite3_bind_int(st, 12, d->vehicles);
    sqlite3_bind_int(st, 13, d->last_status);
    bind_text(st, 14, d->last_error);
    sqlite3_bind_int64(st, 15, d->updated_at);
    bind_text(st, 16, d->lease_owner);
    if (d->lease_owner)
        sqlite3_bind_int64(st, 17, d->lease_until);
    if (run(s, st, "insert delivery") != MTR_OK)
        return MTR_ERR;
    if (sqlite3_changes(s->db) == 0)
        return MTR_OK; /* an existing id is left alone */
    *inserted = 1;
    if (!d->body)
        return MTR_OK;
    sqlite3_int64 rowid = sqlite3_last_insert_rowid(s->db);
    const void *blob;
    size_t blob_len;
    if (codec_sample(&s->codec, d->body, d->body_len) && new_dictionary(s) != MTR_OK)
        return MTR_ERR;
    if (codec_encode(&s->codec, d->body, d->body_len, &blob, &blob_len) != 0) {
        s->host->set_error(s->ctx, "%s: cannot compress a payload (out of memory?)", s->path);
        return MTR_ERR;
    }
    if (!(st = stmt(s, S_PAYLOAD_INSERT)))
        return MTR_ERR;
    sqlite3_bind_int64(st, 1, rowid);
    bind_blob(st, 2, blob, blob_len);
    return run(s, st, "insert payload");
}

static int sqlite_deliveries_insert(void *state, const struct mtr_delivery_row *rows, size_t n,
                                    const struct mtr_job_key *jobs, size_t n_jobs, int *inserted)
{
    struct sqlite_store *s = state;
    int own, rc = MTR_OK;
    if (tx_enter(s, &own) != MTR_OK)
        return MTR_ERR;
    for (size_t i = 0; i < n && rc == MTR_OK; i++) {
        int was_inserted;
        rc = insert_delivery(s, &rows[i], &was_inserted);
        if (inserted)
            inserted[i] = rc == MTR_OK && was_inserted;
    }
    for (size_t i = 0; i < n_jobs && rc == MTR_OK; i++) {
        sqlite3_stmt *st = job_stmt(s, &jobs[i], S_JOB_SENT, S_JOB_SENT_ROWID);
        if (!st) {
            rc = MTR_ERR;
            break;
        }
        rc = run(s, st, "mark job sent");
    }
    return tx_leave(s, own, rc);
}

/* A dictionary's bytes by id (codec_load_fn). */
static int load_dict(void *arg, int64_t id, void **dict, size_t *len)
{
    struct sqlite_store *s = arg;
    sqlite3_stmt *st;
    int rc = -1;
    /* prepared apart: the statement reading the payload is still stepping */
    if (sqlite3_prepare_v2(s->db, sql_text[S_DICT_GET], -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) > 0) {
        *len = (size_t)sqlite3_column_bytes(st, 0);
        if ((*dict = malloc(*len)) != NULL) {
            memcpy(*dict, sqlite3_column_blob(st, 0), *len);
            rc = 0;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* A row of DELIVERY_COLS from column c; its body decoded (valid until the
 * next row). Returns 0, or -1 with why when the stored payload cannot be
 * read back (the row's body is then NULL). */
static int read_delivery(struct sqlite_store *s, sqlite3_stmt *st, int c,
                         struct mtr_delivery_row *d, const char **why)
{
    d->id = col_text(st, c);
    d->webhook_id = col_text(st, c + 1);
    d->sink = col_text(st, c + 2);
    d->tick = sqlite3_column_int64(st, c + 3);
    d->kind = sqlite3_column_int(st, c + 4);
    d->state = sqlite3_column_int(st, c + 5);
    d->attempts = sqlite3_column_int(st, c + 6);
    d->round_start = sqlite3_column_int(st, c + 7);
    d->created_at = sqlite3_column_int64(st, c + 8);
    d->first_attempt_at = sqlite3_column_int64(st, c + 9);
    d->next_attempt_at = sqlite3_column_int64(st, c + 10);
    const void *blob = sqlite3_column_blob(st, c + 11);
    size_t blob_len = (size_t)sqlite3_column_bytes(st, c + 11);
    d->body = NULL;
    d->body_len = 0;
    *why = NULL;
    if (blob &&
        codec_decode(&s->codec, blob, blob_len, load_dict, s, &d->body, &d->body_len, why) != 0) {
        d->body = NULL;
        d->body_len = 0;
    }
    d->vehicles = sqlite3_column_int(st, c + 12);
    d->last_status = sqlite3_column_int(st, c + 13);
    d->last_error = col_text(st, c + 14);
    d->updated_at = sqlite3_column_int64(st, c + 15);
    return *why ? -1 : 0;
}

/* A delivery whose stored payload cannot be read back is failed, saying why:
 * it is never sent with other bytes than its own. */
static int unreadable(struct sqlite_store *s, sqlite3_int64 rowid, const char *id, const char *why)
{
    char text[300];
    snprintf(text, sizeof text, "its stored payload cannot be read: %s", why);
    s->host->log(s->ctx, MTR_LOG_ERROR, "delivery %s: %s; it is recorded failed", id ? id : "?",
                 text);
    sqlite3_stmt *st = stmt(s, S_DELIVERY_UNREADABLE);
    if (!st)
        return MTR_ERR;
    sqlite3_bind_int64(st, 1, rowid);
    bind_text(st, 2, text);
    return run(s, st, "fail an unreadable delivery");
}

static int sqlite_claim_deliveries(void *state, const char *owner, mtr_time now,
                                   mtr_time lease_until, size_t max, mtr_delivery_fn fn, void *arg)
{
    struct sqlite_store *s = state;
    int own, rc = MTR_OK, step;
    if (tx_enter(s, &own) != MTR_OK)
        return MTR_ERR;
    sqlite3_stmt *st = stmt(s, S_CLAIM_DELIVERIES);
    if (!st)
        return tx_leave(s, own, MTR_ERR);
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct mtr_delivery_row d;
        const char *why;
        if (read_delivery(s, st, 1, &d, &why) != 0) {
            if ((rc = unreadable(s, sqlite3_column_int64(st, 0), d.id, why)) != MTR_OK)
                break;
            continue; /* failed, not handed out */
        }
        if (lease_row(s, S_LEASE_DELIVERY, sqlite3_column_int64(st, 0), owner, lease_until) !=
            MTR_OK) {
            rc = MTR_ERR;
            break;
        }
        fn(arg, &d);
    }
    if (rc == MTR_OK && step != SQLITE_DONE)
        rc = fail(s, "claim deliveries");
    sqlite3_reset(st);
    return tx_leave(s, own, rc);
}

static int insert_attempt(struct sqlite_store *s, const struct mtr_attempt_row *a)
{
    sqlite3_stmt *st = stmt(s, S_ATTEMPT_INSERT);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, a->delivery_id);
    sqlite3_bind_int(st, 2, a->n);
    sqlite3_bind_int64(st, 3, a->at);
    sqlite3_bind_int(st, 4, a->http_status);
    bind_text(st, 5, a->error);
    sqlite3_bind_int64(st, 6, a->latency_us);
    return run(s, st, "insert attempt");
}

/* The delivery's new state; with an owner, only while no other node holds
 * its lease (*fenced = 1 and nothing written otherwise). */
static int update_delivery(struct sqlite_store *s, const char *owner,
                           const struct mtr_attempt_row *a, int new_state, mtr_time next_attempt_at,
                           int *fenced)
{
    sqlite3_stmt *st = stmt(s, owner ? S_DELIVERY_UPDATE_FENCED : S_DELIVERY_UPDATE);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, a->delivery_id);
    sqlite3_bind_int(st, 2, a->n);
    sqlite3_bind_int(st, 3, new_state);
    sqlite3_bind_int64(st, 4, next_attempt_at);
    sqlite3_bind_int(st, 5, a->http_status);
    bind_text(st, 6, a->error);
    sqlite3_bind_int64(st, 7, a->at);
    if (owner)
        bind_text(st, 8, owner);
    if (run(s, st, "update delivery") != MTR_OK)
        return MTR_ERR;
    *fenced = owner && sqlite3_changes(s->db) == 0;
    return MTR_OK;
}

static int record(struct sqlite_store *s, const char *owner, const struct mtr_attempt_row *a,
                  int new_state, mtr_time next_attempt_at, int *fenced)
{
    int own, rc;
    *fenced = 0;
    if (tx_enter(s, &own) != MTR_OK)
        return MTR_ERR;
    rc = update_delivery(s, owner, a, new_state, next_attempt_at, fenced);
    if (rc == MTR_OK && !*fenced)
        rc = insert_attempt(s, a);
    return tx_leave(s, own, rc);
}

static int sqlite_record_attempt(void *state, const struct mtr_attempt_row *a, int new_state,
                                 mtr_time next_attempt_at)
{
    int fenced;
    return record(state, NULL, a, new_state, next_attempt_at, &fenced);
}

static int sqlite_record_attempt_as(void *state, const char *owner, const struct mtr_attempt_row *a,
                                    int new_state, mtr_time next_attempt_at, int *fenced)
{
    return record(state, owner, a, new_state, next_attempt_at, fenced);
}

static int sqlite_quota_take(void *state, const char *key, int64_t per_minute, int64_t burst,
                             mtr_time now, int64_t want, int64_t *granted)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_QUOTA_TAKE);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, key);
    sqlite3_bind_int64(st, 2, per_minute);
    sqlite3_bind_int64(st, 3, burst);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, want);
    int rc = sqlite3_step(st);
    *granted = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? MTR_OK : fail(s, "take from a rate limit");
}

/* A batch is its outcomes in order: SQLite has no round trips to save. */
static int sqlite_record_attempts_as(void *state, const char *owner,
                                     const struct mtr_attempt_record *recs, size_t n, int *fenced)
{
    int rc = MTR_OK;
    for (size_t i = 0; i < n && rc == MTR_OK; i++)
        rc = record(state, owner, &recs[i].attempt, recs[i].new_state, recs[i].next_attempt_at,
                    &fenced[i]);
    return rc;
}

static int sqlite_defer_deliveries(void *state, const char *owner, const struct mtr_deferral *d,
                                   size_t n, int *fenced)
{
    struct sqlite_store *s = state;
    int own, rc;
    if (tx_enter(s, &own) != MTR_OK)
        return MTR_ERR;
    rc = MTR_OK;
    for (size_t i = 0; i < n && rc == MTR_OK; i++) {
        sqlite3_stmt *st = stmt(s, S_DELIVERY_DEFER);
        if (!st) {
            rc = MTR_ERR;
            break;
        }
        bind_text(st, 1, d[i].delivery_id);
        sqlite3_bind_int64(st, 2, d[i].next_attempt_at);
        sqlite3_bind_int(st, 3, d[i].last_status);
        bind_text(st, 4, d[i].last_error);
        sqlite3_bind_int64(st, 5, d[i].at);
        bind_text(st, 6, owner);
        rc = run(s, st, "defer delivery");
        fenced[i] = rc == MTR_OK && sqlite3_changes(s->db) == 0;
    }
    return tx_leave(s, own, rc);
}

static int sqlite_set_subjects(void *state, const char *const *ids, const int64_t *subjects,
                               size_t n)
{
    struct sqlite_store *s = state;
    int own, rc = tx_enter(s, &own);
    for (size_t i = 0; i < n && rc == MTR_OK; i++) {
        sqlite3_stmt *st = stmt(s, S_SET_SUBJECT);
        if (!st)
            return tx_leave(s, own, MTR_ERR);
        bind_text(st, 1, ids[i]);
        sqlite3_bind_int64(st, 2, subjects[i]);
        rc = run(s, st, "set a delivery's subject");
    }
    return tx_leave(s, own, rc);
}

static int sqlite_supersede_older(void *state, const char *delivery_id, mtr_time now,
                                  const char *reason, uint64_t *count)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_SUPERSEDE);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, delivery_id);
    sqlite3_bind_int64(st, 2, now);
    bind_text(st, 3, reason);
    if (run(s, st, "supersede older deliveries") != MTR_OK)
        return MTR_ERR;
    *count = (uint64_t)sqlite3_changes(s->db);
    return MTR_OK;
}

static int sqlite_older_pending(void *state, const char *delivery_id, mtr_time now, int *found,
                                mtr_time *due, int *leased)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_OLDER_PENDING);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, delivery_id);
    sqlite3_bind_int64(st, 2, now);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0;
    *due = *found ? sqlite3_column_int64(st, 1) : 0;
    *leased = *found && sqlite3_column_int64(st, 2) > 0;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? MTR_OK : fail(s, "look for older pending deliveries");
}

static int sqlite_fail_pending(void *state, const char *webhook_id, const char *reason,
                               mtr_time now, uint64_t *count)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_FAIL_PENDING);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, webhook_id);
    bind_text(st, 2, reason);
    sqlite3_bind_int64(st, 3, now);
    if (run(s, st, "fail pending deliveries") != MTR_OK)
        return MTR_ERR;
    *count = (uint64_t)sqlite3_changes(s->db);
    return MTR_OK;
}

static int sqlite_replay(void *state, const char *delivery_id, const char *webhook_id,
                         int from_state, mtr_time now, uint64_t *count)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, delivery_id ? S_REPLAY_ONE : S_REPLAY_WEBHOOK);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, delivery_id ? delivery_id : webhook_id);
    sqlite3_bind_int64(st, 2, now);
    if (!delivery_id)
        sqlite3_bind_int(st, 3, from_state);
    if (run(s, st, "replay") != MTR_OK)
        return MTR_ERR;
    *count = (uint64_t)sqlite3_changes(s->db);
    return MTR_OK;
}

/* The minimum of a one-column query into *at; *found when there is one. */
static int min_of(struct sqlite_store *s, enum stmt_id id, mtr_time *at, int *found)
{
    sqlite3_stmt *st = stmt(s, id);
    if (!st)
        return MTR_ERR;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        mtr_time t = sqlite3_column_int64(st, 0);
        if (!*found || t < *at)
            *at = t;
        *found = 1;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "next due");
}

static int sqlite_next_due(void *state, mtr_time *at, int *found)
{
    struct sqlite_store *s = state;
    *found = 0;
    *at = 0;
    if (min_of(s, S_NEXT_JOB, at, found) != MTR_OK ||
        min_of(s, S_NEXT_DELIVERY, at, found) != MTR_OK)
        return MTR_ERR;
    return MTR_OK;
}

/* ---- reading the ledger ---------------------------------------------------------------- */

static int sqlite_list_deliveries(void *state, const char *webhook_id, int delivery_state,
                                  size_t limit, mtr_delivery_fn fn, void *arg)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_LIST_DELIVERIES);
    int rc;
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, webhook_id);
    sqlite3_bind_int(st, 2, delivery_state);
    sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct mtr_delivery_row d;
        const char *why;
        read_delivery(s, st, 0, &d, &why); /* an unreadable body reads as none */
        if (fn(arg, &d) != 0)
            break;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "list deliveries");
}

static int sqlite_list_attempts(void *state, const char *delivery_id, mtr_attempt_fn fn, void *arg)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_LIST_ATTEMPTS);
    int rc;
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, delivery_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct mtr_attempt_row a = {
            .delivery_id = col_text(st, 0),
            .n = sqlite3_column_int(st, 1),
            .at = sqlite3_column_int64(st, 2),
            .http_status = sqlite3_column_int(st, 3),
            .error = col_text(st, 4),
            .latency_us = sqlite3_column_int64(st, 5),
        };
        if (fn(arg, &a) != 0)
            break;
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "list attempts");
}

static int sqlite_delivery_get(void *state, const char *delivery_id, mtr_delivery_fn fn, void *arg)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st = stmt(s, S_DELIVERY_GET);
    if (!st)
        return MTR_ERR;
    bind_text(st, 1, delivery_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        struct mtr_delivery_row d;
        const char *why;
        read_delivery(s, st, 0, &d, &why); /* an unreadable body reads as none */
        fn(arg, &d);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "read delivery");
}

static int sqlite_prune(void *state, mtr_time delivered_before, mtr_time failed_before,
                        mtr_time history_before, size_t max, uint64_t *pruned)
{
    struct sqlite_store *s = state;
    int own, rc = MTR_OK;
    *pruned = 0;
    if (tx_enter(s, &own) != MTR_OK)
        return MTR_ERR;
    /* payloads and deliveries select the same rows: nothing changes in between */
    enum stmt_id order[] = {S_PRUNE_ATTEMPTS, S_PRUNE_PAYLOADS, S_PRUNE_DELIVERIES, S_PRUNE_JOBS};
    for (int i = 0; i < 4 && rc == MTR_OK; i++) {
        sqlite3_stmt *st = stmt(s, order[i]);
        if (!st) {
            rc = MTR_ERR;
            break;
        }
        sqlite3_bind_int64(st, 1, history_before);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
        rc = run(s, st, "prune history");
        *pruned += (uint64_t)sqlite3_changes(s->db);
    }
    sqlite3_stmt *st = rc == MTR_OK ? stmt(s, S_PRUNE_BODIES) : NULL;
    if (st) {
        int step;
        sqlite3_bind_int64(st, 1, s->prune_cursor);
        sqlite3_bind_int64(st, 2, delivered_before);
        sqlite3_bind_int64(st, 3, failed_before);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)max);
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            sqlite3_int64 rowid = sqlite3_column_int64(st, 0);
            s->prune_cursor = rowid > s->prune_cursor ? rowid : s->prune_cursor;
            (*pruned)++;
        }
        sqlite3_reset(st);
        if (step != SQLITE_DONE)
            rc = fail(s, "prune payloads");
    } else if (rc == MTR_OK) {
        rc = MTR_ERR;
    }
    return tx_leave(s, own, rc);
}

static int sqlite_stats(void *state, const char *webhook_id, struct mtr_store_stats *out)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st;
    memset(out, 0, sizeof *out);
    if (!(st = stmt(s, S_STATS_JOBS)))
        return MTR_ERR;
    bind_text(st, 1, webhook_id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int k = sqlite3_column_int(st, 0);
        if (k >= 0 && k < 4)
            out->jobs[k] = (uint64_t)sqlite3_column_int64(st, 1);
    }
    if (!(st = stmt(s, S_STATS_DELIVERIES)))
        return MTR_ERR;
    bind_text(st, 1, webhook_id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int k = sqlite3_column_int(st, 0);
        if (k >= 0 && k < 3)
            out->deliveries[k] = (uint64_t)sqlite3_column_int64(st, 1);
        out->attempts += (uint64_t)sqlite3_column_int64(st, 2);
        out->retries += (uint64_t)sqlite3_column_int64(st, 3);
    }
    if (!(st = stmt(s, S_STATS_SUBS)))
        return MTR_ERR;
    bind_text(st, 1, webhook_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        out->subscriptions = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return MTR_OK;
}

/* ---- the admin API's listings (ABI 1.2); not on the delivery path, so their
 * statements are prepared when used ------------------------------------------------ */

static int prepare(struct sqlite_store *s, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(s->db, sql, -1, st, NULL) == SQLITE_OK ? MTR_OK : fail(s, "prepare");
}

static int sqlite_subscriptions_list(void *state, const char *webhook_id, const char *vehicle_id,
                                     const char *after, size_t limit, mtr_subscription_fn fn,
                                     void *arg)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st;
    int rc;
    if (prepare(s,
                "SELECT ut(s.webhook_id), s.vehicle_id, coalesce(v.source, ''), s.made_at, "
                "v.access_token IS NOT NULL OR v.refresh_token IS NOT NULL, "
                "coalesce(v.needs_reauth, 0), coalesce(v.access_expires, 0) FROM subscriptions s "
                "LEFT JOIN vehicles v ON v.id = s.vehicle_id WHERE s.webhook_id = ub(?1) AND "
                "s.removed_at IS NULL AND (?2 IS NULL OR s.vehicle_id = ?2) AND (?3 IS NULL OR "
                "s.vehicle_id > ?3) ORDER BY s.vehicle_id LIMIT ?4",
                &st) != MTR_OK)
        return MTR_ERR;
    bind_text(st, 1, webhook_id);
    bind_text(st, 2, vehicle_id);
    bind_text(st, 3, after);
    sqlite3_bind_int64(st, 4, limit ? (sqlite3_int64)limit : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct mtr_subscription_row r = {
            .webhook_id = col_text(st, 0),
            .vehicle_id = col_text(st, 1),
            .source = col_text(st, 2),
            .made_at = sqlite3_column_int64(st, 3),
            .live = sqlite3_column_int(st, 4),
            .needs_reauth = sqlite3_column_int(st, 5),
            .access_expires = sqlite3_column_int64(st, 6),
        };
        if (fn(arg, &r) != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "list subscriptions");
}

static int sqlite_vehicles_list(void *state, int needs_reauth_only, const char *after, size_t limit,
                                mtr_vehicle_fn fn, void *arg)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st;
    int rc;
    if (prepare(s,
                "SELECT id, source, access_token, refresh_token, access_expires, needs_reauth "
                "FROM vehicles WHERE (?1 = 0 OR needs_reauth <> 0) AND (?2 IS NULL OR id > ?2) "
                "ORDER BY id LIMIT ?3",
                &st) != MTR_OK)
        return MTR_ERR;
    sqlite3_bind_int(st, 1, needs_reauth_only);
    bind_text(st, 2, after);
    sqlite3_bind_int64(st, 3, limit ? (sqlite3_int64)limit : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct mtr_vehicle_row v;
        read_vehicle(st, 0, &v);
        if (fn(arg, &v) != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "list vehicles");
}

static int sqlite_deliveries_query(void *state, const struct mtr_delivery_query *q,
                                   mtr_delivery_fn fn, void *arg)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st;
    int rc;
    if (prepare(s,
                "SELECT " DELIVERY_COLS
                " WHERE (?1 IS NULL OR d.webhook_id = ub(?1)) AND (?2 < 0 OR "
                "d.state = ?2) AND (?3 = 0 OR d.tick >= ?3) AND (?4 = 0 OR d.tick < ?4) AND (?6 IS "
                "NULL OR d.tick > ?5 OR (d.tick = ?5 AND d.id > ub(?6))) ORDER BY d.tick, d.id "
                "LIMIT ?7",
                &st) != MTR_OK)
        return MTR_ERR;
    bind_text(st, 1, q->webhook_id);
    sqlite3_bind_int(st, 2, q->state);
    sqlite3_bind_int64(st, 3, q->tick_from);
    sqlite3_bind_int64(st, 4, q->tick_to);
    sqlite3_bind_int64(st, 5, q->after_tick);
    bind_text(st, 6, q->after_id);
    sqlite3_bind_int64(st, 7, q->limit ? (sqlite3_int64)q->limit : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct mtr_delivery_row d;
        const char *why;
        read_delivery(s, st, 0, &d, &why); /* an unreadable body reads as none */
        if (fn(arg, &d) != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "list deliveries");
}

static int sqlite_webhook_delete(void *state, const char *id, mtr_time now)
{
    static const char *const steps[] = {
        "UPDATE subscriptions SET removed_at = ?2 WHERE webhook_id = ub(?1) AND removed_at IS NULL",
        ("UPDATE jobs SET state = 3, lease_owner = NULL, lease_until = NULL WHERE webhook_id = "
         "ub(?1) AND state IN (0, 1)"),
        ("UPDATE deliveries SET state = 2, last_error = 'webhook deleted', updated_at = ?2, "
         "lease_owner = NULL, lease_until = NULL WHERE webhook_id = ub(?1) AND state = 0"),
        "DELETE FROM webhooks WHERE id = ub(?1)",
    };
    struct sqlite_store *s = state;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        sqlite3_stmt *st;
        if (prepare(s, steps[i], &st) != MTR_OK)
            return MTR_ERR;
        bind_text(st, 1, id);
        if (sqlite3_bind_parameter_count(st) >= 2)
            sqlite3_bind_int64(st, 2, now);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return fail(s, "delete webhook");
    }
    return MTR_OK;
}

static int sqlite_delivery_counts(void *state, const char *webhook_id, mtr_time since,
                                  struct mtr_delivery_counts *out)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st;
    int rc;
    memset(out, 0, sizeof *out);
    if (prepare(s,
                "SELECT state, count(*) FROM deliveries WHERE webhook_id = ub(?1) AND tick >= ?2 "
                "AND kind = 0 GROUP BY state",
                &st) != MTR_OK)
        return MTR_ERR;
    bind_text(st, 1, webhook_id);
    sqlite3_bind_int64(st, 2, since);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int k = sqlite3_column_int(st, 0);
        if (k >= 0 && k < 3)
            out->by_state[k] = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fail(s, "count deliveries");
    /* the newest: rows are inserted in time order, so the scan from the end is short */
    if (prepare(
            s,
            "SELECT state, last_status, updated_at FROM deliveries WHERE webhook_id = ub(?1) AND "
            "kind = 0 ORDER BY rowid DESC LIMIT 1",
            &st) != MTR_OK)
        return MTR_ERR;
    bind_text(st, 1, webhook_id);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->has_last = 1;
        out->last_state = sqlite3_column_int(st, 0);
        out->last_status = sqlite3_column_int(st, 1);
        out->last_at = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "read deliveries");
}

static int sqlite_node_heartbeat(void *state, const struct mtr_node_row *n)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st;
    if (prepare(s,
                "INSERT INTO nodes(id, host, started_at, last_seen) VALUES(?1, ?2, ?3, ?4) ON "
                "CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen",
                &st) != MTR_OK)
        return MTR_ERR;
    bind_text(st, 1, n->id);
    bind_text(st, 2, n->host);
    sqlite3_bind_int64(st, 3, n->started_at);
    sqlite3_bind_int64(st, 4, n->last_seen);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? MTR_OK : fail(s, "heartbeat");
}

static int sqlite_nodes_list(void *state, mtr_time seen_since, mtr_time now,
                             int (*fn)(void *, const struct mtr_node_row *), void *arg)
{
    struct sqlite_store *s = state;
    sqlite3_stmt *st;
    int rc;
    if (prepare(s,
                "SELECT id, host, started_at, last_seen, (SELECT count(*) FROM jobs WHERE "
                "lease_owner = nodes.id AND state = 0 AND lease_until > ?2) + (SELECT count(*) "
                "FROM deliveries WHERE lease_owner = nodes.id AND state = 0 AND lease_until > "
                "?2) FROM nodes WHERE last_seen >= ?1 ORDER BY id",
                &st) != MTR_OK)
        return MTR_ERR;
    sqlite3_bind_int64(st, 1, seen_since);
    sqlite3_bind_int64(st, 2, now);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct mtr_node_row n = {.id = col_text(st, 0),
                                 .host = col_text(st, 1),
                                 .started_at = sqlite3_column_int64(st, 2),
                                 .last_seen = sqlite3_column_int64(st, 3),
                                 .leases = (uint64_t)sqlite3_column_int64(st, 4)};
        if (fn(arg, &n) != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? MTR_OK : fail(s, "list nodes");
}

static const struct mtr_store_ops sqlite_ops = {
    .struct_size = sizeof(struct mtr_store_ops),
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .webhook_upsert = sqlite_webhook_upsert,
    .webhook_list = sqlite_webhook_list,
    .webhook_set_state = sqlite_webhook_set_state,
    .webhook_set_last_tick = sqlite_webhook_set_last_tick,
    .vehicle_upsert = sqlite_vehicle_upsert,
    .vehicle_get = sqlite_vehicle_get,
    .subscribe = sqlite_subscribe,
    .unsubscribe = sqlite_unsubscribe,
    .materialize_tick = sqlite_materialize_tick,
    .claim_jobs = sqlite_claim_jobs,
    .claim_jobs_held = sqlite_claim_jobs_held,
    .job_retry = sqlite_job_retry,
    .job_set_state = sqlite_job_set_state,
    .jobs_miss_pending = sqlite_jobs_miss_pending,
    .deliveries_insert = sqlite_deliveries_insert,
    .claim_deliveries = sqlite_claim_deliveries,
    .record_attempt = sqlite_record_attempt,
    .fail_pending = sqlite_fail_pending,
    .replay = sqlite_replay,
    .next_due = sqlite_next_due,
    .list_deliveries = sqlite_list_deliveries,
    .list_attempts = sqlite_list_attempts,
    .delivery_get = sqlite_delivery_get,
    .prune = sqlite_prune,
    .stats = sqlite_stats,
    .read_only = sqlite_read_only,
    .check = sqlite_check,
    .vehicle_sample = sqlite_vehicle_sample,
    .subscriptions_list = sqlite_subscriptions_list,
    .vehicles_list = sqlite_vehicles_list,
    .deliveries_query = sqlite_deliveries_query,
    .webhook_delete = sqlite_webhook_delete,
    .delivery_counts = sqlite_delivery_counts,
    .record_attempt_as = sqlite_record_attempt_as,
    .record_attempts_as = sqlite_record_attempts_as,
    .defer_deliveries = sqlite_defer_deliveries,
    .set_subjects = sqlite_set_subjects,
    .supersede_older = sqlite_supersede_older,
    .older_pending = sqlite_older_pending,
    .quota_take = sqlite_quota_take,
    .node_heartbeat = sqlite_node_heartbeat,
    .nodes_list = sqlite_nodes_list,
    .job_retry_as = sqlite_job_retry_as,
    .job_set_state_as = sqlite_job_set_state_as,
};

static const struct mtr_option sqlite_options[] = {
    {.name = "path",
     .type = MTR_OPT_STRING,
     .default_value = "var/metronome.db",
     .help = "database file (created with its directory if missing)"},
    {.name = "busy_timeout",
     .type = MTR_OPT_DURATION,
     .default_value = "5s",
     .min = 0,
     .max = 600000,
     .help = "how long a writer waits for a lock"},
    {.name = "synchronous",
     .type = MTR_OPT_ENUM,
     .default_value = "normal",
     .choices = sync_modes,
     .help = "SQLite synchronous pragma: normal survives a crash of metronome, full also a "
             "power loss"},
    {0},
};

static const struct mtr_plugin sqlite_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_STORE),
    .name = "sqlite",
    .version = "1.0.0",
    .description = "embedded ledger in one SQLite file (the default)",
    .options = sqlite_options,
    .create = sqlite_create,
    .start = sqlite_start,
    .stop = sqlite_stop,
    .destroy = sqlite_destroy,
    .store = &sqlite_ops,
};

MTR_PLUGIN_DEFINE(sqlite_plugin)
