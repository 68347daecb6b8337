/* The SQLite ledger's layout: a ledger written by an earlier schema upgrades in
 * place and keeps its due work; a tick is materialized once even when a
 * crash lost the record of it; jobs and delivery ids are kept in the order
 * they are claimed, so the ledger's indexes grow at their ends. */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

static sqlite3 *open_ledger(struct scenario *s)
{
    char *path = path_join(s->dir, "ledger.db");
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK, "%s", path);
    free(path);
    return db;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &err), SQLITE_OK, "%s: %s", sql, err ? err : "");
}

static long long query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static const char *const five[] = {"v1", "v2", "v3", "v4", "v5", NULL};

Test(ledger, a_schema_1_ledger_upgrades_in_place_and_keeps_its_work, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:00:00Z", five);
    /* turn the ledger back into schema 1: the 16:00 tick materialized and due, and a
     * failed delivery of 15:00 whose bytes are in the deliveries row */
    sqlite3 *db = open_ledger(&s);
    long long tick = iso("2030-03-01T16:00:00Z");
    char sql[2048];
    exec_ok(db, "BEGIN; DROP INDEX subscriptions_spread; DROP TABLE jobs; DROP TABLE nodes;"
                "DROP TABLE quotas; DROP TABLE dictionaries; DROP TABLE attempts;"
                "CREATE TABLE attempts(delivery_id TEXT NOT NULL, n INTEGER NOT NULL, at INTEGER "
                "NOT NULL, http_status INTEGER NOT NULL, error TEXT, latency_us INTEGER NOT NULL, "
                "PRIMARY KEY(delivery_id, n)) WITHOUT ROWID;"
                "CREATE TABLE jobs(webhook_id TEXT NOT NULL, vehicle_id TEXT NOT NULL, tick "
                "INTEGER NOT NULL, state INTEGER NOT NULL, due_at INTEGER NOT NULL, "
                "fetch_attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, lease_owner TEXT, "
                "lease_until INTEGER, delivery_id TEXT, UNIQUE(webhook_id, vehicle_id, tick));"
                "CREATE INDEX jobs_due ON jobs(state, due_at);"
                "DROP TABLE deliveries; DROP TABLE payloads;"
                "CREATE TABLE deliveries(id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL, sink TEXT "
                "NOT NULL, tick INTEGER NOT NULL, kind INTEGER NOT NULL, state INTEGER NOT NULL, "
                "attempts INTEGER NOT NULL, round_start INTEGER NOT NULL, created_at INTEGER NOT "
                "NULL, first_attempt_at INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL, body "
                "BLOB, vehicles INTEGER NOT NULL, last_status INTEGER NOT NULL, last_error TEXT, "
                "updated_at INTEGER NOT NULL, lease_owner TEXT, lease_until INTEGER);"
                "CREATE INDEX deliveries_due ON deliveries(state, next_attempt_at);"
                "CREATE TABLE vehicles_v1(id TEXT PRIMARY KEY, source TEXT NOT NULL, access_token "
                "BLOB, refresh_token BLOB, access_expires INTEGER NOT NULL DEFAULT 0, needs_reauth "
                "INTEGER NOT NULL DEFAULT 0);"
                "INSERT INTO vehicles_v1 SELECT * FROM vehicles; DROP TABLE vehicles;"
                "ALTER TABLE vehicles_v1 RENAME TO vehicles; PRAGMA user_version = 1; COMMIT");
    snprintf(sql, sizeof sql,
             "INSERT INTO jobs(webhook_id, vehicle_id, tick, state, due_at) SELECT webhook_id, "
             "vehicle_id, %lld, 0, %lld FROM subscriptions; UPDATE webhooks SET last_tick = %lld;"
             "INSERT INTO deliveries VALUES('0000aaaa-0000-8000-8000-000000000001', (SELECT id "
             "FROM webhooks), 'callback', %lld, 0, 2, 6, 0, %lld, %lld, %lld, "
             "CAST('{\"kept\":\"bytes\"}' AS BLOB), 1, 503, 'HTTP 503', %lld, NULL, NULL);"
             "INSERT INTO attempts VALUES('0000aaaa-0000-8000-8000-000000000001', 1, %lld, 503, "
             "'HTTP 503', 1000)",
             tick, tick + 60, tick, tick - 3600, tick - 3600, tick - 3600, tick - 3000, tick - 3000,
             tick - 3600);
    exec_ok(db, sql);
    sqlite3_close(db);

    sc_virtual(&s, "2030-03-01T16:00:30Z", "2030-03-01T16:30:00Z");
    db = open_ledger(&s);
    cr_expect_eq(query_int(db, "PRAGMA user_version"), 10);
    cr_expect_eq(query_int(db, "SELECT count(*) FROM deliveries WHERE typeof(id) <> 'blob' OR "
                               "length(id) <> 16 OR typeof(webhook_id) <> 'blob'"),
                 0, "schema 10 keeps ids as their 16 bytes, those written before too");
    cr_expect_eq(query_int(db, "SELECT count(*) FROM jobs WHERE typeof(webhook_id) <> 'blob'"), 0);
    cr_expect_eq(query_int(db, "SELECT count(*) FROM attempts a JOIN deliveries d ON d.rowid = "
                               "a.delivery WHERE hex(d.id) = '0000AAAA000080008000000000000001' "
                               "AND a.http_status = 503"),
                 1, "schema 9 keys the attempts written before by their delivery's rowid");
    cr_expect_eq(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'quotas'"), 1,
                 "schema 6 keeps the shared rate limits");
    cr_expect_eq(query_int(db, "SELECT count(*) FROM pragma_table_info('deliveries') WHERE name = "
                               "'subject'"),
                 1, "schema 7 keeps deliveries' subjects");
    cr_expect_eq(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'dictionaries'"), 1,
                 "schema 8 keeps compression dictionaries");
    cr_expect_eq(query_int(db, "SELECT count(*) FROM vehicles"), 5, "the vehicles were kept");
    cr_expect_eq(query_int(db, "SELECT count(*) FROM jobs WHERE state = 2"), 5,
                 "the jobs written under schema 1 were delivered");
    cr_expect_eq(query_int(db, "SELECT count(*) FROM jobs j JOIN subscriptions s USING "
                               "(webhook_id, vehicle_id) WHERE j.spread_key = s.spread_key"),
                 5, "the upgrade gave each job its subscription's spread key");
    cr_expect_eq(query_int(db, "SELECT count(*) FROM deliveries WHERE state = 1"), 5);
    sqlite3_close(db);
    cr_expect_eq(sc_payloads(&s), 5);

    /* the old failed delivery still has its bytes: a replay sends them, same id */
    sc_ok(&s, "replay", "--delivery", "0000aaaa-0000-8000-8000-000000000001", "--now",
          "2030-03-01T16:30:00Z", NULL);
    sc_virtual(&s, "2030-03-01T16:30:00Z", "2030-03-01T16:45:00Z");
    struct received r;
    cr_assert_eq(receiver_get(&s.r, s.r.n_log - 1, &r), 0);
    cr_expect_str_eq(r.delivery_id, "0000aaaa-0000-8000-8000-000000000001");
    cr_expect_str_eq(r.body, "{\"kept\":\"bytes\"}");
    received_free(&r);
    scenario_stop(&s);
}

Test(ledger, a_tick_is_materialized_once_even_when_its_record_was_lost, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:00:00Z", five);
    sc_virtual(&s, "2030-03-01T15:59:00Z", "2030-03-01T16:30:00Z");
    /* a crash between inserting the jobs and recording the tick: the tick fires again */
    sqlite3 *db = open_ledger(&s);
    exec_ok(db, "UPDATE webhooks SET last_tick = 0");
    sqlite3_close(db);
    sc_virtual(&s, "2030-03-01T16:30:00Z", "2030-03-01T16:45:00Z");
    db = open_ledger(&s);
    cr_expect_eq(query_int(db, "SELECT count(*) FROM jobs"), 5, "no job twice");
    cr_expect_eq(query_int(db, "SELECT count(*) FROM deliveries"), 5, "no delivery twice");
    sqlite3_close(db);
    cr_expect_eq(sc_payloads(&s), 5);
    scenario_stop(&s);
}

Test(ledger, jobs_and_delivery_ids_are_stored_in_claim_order, .timeout = 60)
{
    struct scenario s;
    static const char *vehicles[41];
    char names[40][8];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "v%02d", i);
        vehicles[i] = names[i];
    }
    scenario_start(&s, NULL); /* the default spread, 1-5 minutes */
    sc_setup(&s, "2030-03-01T15:00:00Z", vehicles);
    struct run_result r = sc_run(&s, "run", "--clock", "virtual", "--start", "2030-03-01T15:59:00Z",
                                 "--until", "2030-03-01T17:30:00Z", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *line = strstr(r.out, "from the first tick to the last attempt recorded: ");
    cr_expect(line && atof(strchr(line, ':') + 1) > 0, "the run reports its fulfilment time: %s",
              r.out);
    run_result_free(&r);
    sqlite3 *db = open_ledger(&s);
    cr_expect_eq(query_int(db, "SELECT count(*) FROM deliveries WHERE state = 1"), 80);
    /* each in rowid order: spread keys, due times and delivery ids only grow */
    cr_expect_eq(query_int(db, "SELECT count(*) FROM (SELECT tick, spread_key, lag(tick) OVER w "
                               "AS pt, lag(spread_key) OVER w AS pk FROM jobs WINDOW w AS (ORDER "
                               "BY rowid)) WHERE pt = tick AND spread_key < pk"),
                 0, "a tick's jobs are stored in spread key order");
    cr_expect_eq(query_int(db, "SELECT count(*) FROM (SELECT tick, due_at, lag(tick) OVER w AS "
                               "pt, lag(due_at) OVER w AS pd FROM jobs WINDOW w AS (ORDER BY "
                               "rowid)) WHERE pt = tick AND due_at < pd"),
                 0, "which is their due order");
    cr_expect_eq(query_int(db, "SELECT count(*) FROM (SELECT id, lag(id) OVER (ORDER BY rowid) "
                               "AS prev FROM deliveries) WHERE id < prev"),
                 0, "delivery ids grow in the order they are inserted");
    cr_expect_gt(query_int(db, "SELECT count(DISTINCT due_at) FROM jobs"), 10,
                 "the spread still spreads");
    sqlite3_close(db);
    scenario_stop(&s);
}

Test(ledger, payloads_are_stored_compressed_and_replayed_byte_for_byte, .timeout = 120)
{
    /* past the codec's first 1000 payloads a dictionary is trained, stored in the ledger and
     * used; a later process reads it back to replay a payload, and sends the same bytes */
    struct scenario s;
    scenario_start(&s, &(struct scenario_opts){.webhook_extra = "    vehicles_per_payload: 1\n",
                                               .delivery = "{spread: [0s, 0s]}"});
    sc_ok(&s, "webhook", "verify", "fleet", "--now", "2030-03-01T15:00:00Z", NULL);
    char *csv = path_join(s.dir, "vehicles.csv");
    FILE *f = fopen(csv, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 1200; i++)
        fprintf(f, "veh-%05d\n", i);
    fclose(f);
    sc_ok(&s, "subscribe", "fleet", "--file", csv, "--now", "2030-03-01T15:00:00Z", NULL);
    free(csv);
    sc_virtual(&s, "2030-03-01T15:59:59Z", "2030-03-01T16:00:30Z");
    cr_assert_eq(sc_payloads(&s), 1200);
    struct received last;
    receiver_get_payload(&s.r, 1199, &last);
    size_t sent = 0;
    for (size_t i = 0; i < 1200; i++) {
        struct received x;
        receiver_get_payload(&s.r, i, &x);
        sent += x.len;
        received_free(&x);
    }
    sqlite3 *db = open_ledger(&s);
    cr_expect_eq(query_int(db, "SELECT count(*) FROM dictionaries"), 1, "one dictionary trained");
    /* the first 1000 are the dictionary's samples, compressed without one */
    long long stored = query_int(db, "SELECT sum(length(body)) FROM payloads WHERE "
                                     "hex(substr(body, 1, 2)) = '0101'");
    long long with_dict = query_int(db, "SELECT count(*) FROM payloads WHERE "
                                        "hex(substr(body, 1, 2)) = '0101'");
    cr_expect_eq(with_dict, 201, "the payload completing the samples and those after use it");
    cr_expect(with_dict && stored / with_dict * 4 < (long long)(sent / 1200),
              "%lld bytes stored a payload, for %zu sent", with_dict ? stored / with_dict : 0,
              sent / 1200);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT hex(substr(p.body, 1, 2)) = '0101' FROM payloads p JOIN deliveries d ON "
             "p.delivery = d.rowid WHERE lower(hex(d.id)) = replace('%s', '-', '')",
             last.delivery_id);
    cr_expect_eq(query_int(db, sql), 1, "the last payload is compressed with dictionary 1");
    sqlite3_close(db);
    sc_ok(&s, "replay", "--delivery", last.delivery_id, "--now", "2030-03-01T16:10:00Z", NULL);
    sc_virtual(&s, "2030-03-01T16:10:00Z", "2030-03-01T16:10:30Z");
    cr_assert_eq(sc_payloads(&s), 1201);
    struct received again;
    receiver_get_payload(&s.r, 1200, &again);
    cr_expect_str_eq(again.delivery_id, last.delivery_id);
    cr_expect_eq(again.len, last.len);
    cr_expect(again.len == last.len && memcmp(again.body, last.body, last.len) == 0,
              "the same bytes");
    cr_expect(again.signature_ok);
    received_free(&last);
    received_free(&again);
    scenario_stop(&s);
}
