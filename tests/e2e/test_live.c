/* Live mode end to end: the smartcar source against a fake Smartcar API on
 * loopback, on the virtual clock - data delivered unchanged, token refresh
 * before expiry and after a 401 (stored before use), a rejected refresh, 429
 * with retry-after, an asleep vehicle, malformed answers, the app-wide rate
 * limit, and the Connect flow (subscribe --all, connect --code). */
#include "daemon.h"
#include "fake_smartcar.h"
#include "scenario.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

struct live {
    struct scenario s;
    struct fake_smartcar f;
    char events[512]; /* the events file (events: {sinks: [events]}) */
};

static void live_start_cadence(struct live *l, const char *extra, const char *delivery,
                               const char *cadence)
{
    char source[1024];
    cr_assert_eq(fake_start(&l->f), 0);
    snprintf(source, sizeof source,
             "{name: live, plugin: smartcar, api_url: \"http://127.0.0.1:%u/v2.0\", "
             "auth_url: \"http://127.0.0.1:%u/oauth/token\", client_id: %s, client_secret: %s, "
             "allow_private_networks: true%s}",
             l->f.port, l->f.port, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, extra ? extra : "");
    char sink[700], *dir = make_tmpdir(), *path = path_join(dir, "events.jsonl");
    snprintf(l->events, sizeof l->events, "%s", path);
    snprintf(sink, sizeof sink, "}\n  - {name: events, plugin: file, path: \"%s\"", path);
    free(path);
    free(dir);
    struct scenario_opts o = {.source = source,
                              .delivery = delivery,
                              .cadence = cadence,
                              .sink_extra = sink,
                              .extra = "events: {sinks: [events]}\n"};
    setenv("METRONOME_SECRET_KEY", KEY, 1);
    scenario_start(&l->s, &o);
}

static void live_start(struct live *l, const char *extra, const char *delivery)
{
    live_start_cadence(l, extra, delivery, NULL);
}

static void live_stop(struct live *l)
{
    scenario_stop(&l->s);
    fake_stop(&l->f);
}

/* Adds a fake vehicle and subscribes it with its tokens at `now`. */
static void live_vehicle(struct live *l, const char *id, const char *now)
{
    fake_add(&l->f, id);
    char at[80], rt[80];
    snprintf(at, sizeof at, "at-%s", id);
    snprintf(rt, sizeof rt, "rt-%s", id);
    sc_ok(&l->s, "subscribe", "fleet", id, "--access-token", at, "--refresh-token", rt, "--now",
          now, NULL);
}

/* A verified webhook with one subscribed vehicle, car-1, both at 15:45. */
static void live_one_vehicle(struct live *l, const char *extra)
{
    live_start(l, extra, NULL);
    sc_ok(&l->s, "webhook", "verify", "fleet", "--now", "2030-03-01T15:45:00Z", NULL);
    live_vehicle(l, "car-1", "2030-03-01T15:45:00Z");
}

/* When the i-th delivery (in ledger order) was first attempted. */
static mtr_time first_sent(struct live *l, size_t i)
{
    json_t *d = sc_deliveries(&l->s);
    json_t *a = json_object_get(json_array_get(d, i), "attempts");
    cr_assert_gt(json_array_size(a), 0, "delivery %zu was attempted", i);
    mtr_time t = iso(json_string_value(json_object_get(json_array_get(a, 0), "at")));
    json_decref(d);
    return t;
}

static char *payload(struct live *l, size_t i)
{
    struct received r;
    cr_assert_eq(receiver_get_payload(&l->s.r, i, &r), 0, "payload %zu", i);
    char *body = r.body;
    r.body = NULL;
    received_free(&r);
    return body;
}

Test(live, payloads_carry_the_api_data_unchanged, .timeout = 60)
{
    struct live l;
    live_one_vehicle(&l, NULL);
    sc_virtual(&l.s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    cr_assert_eq(sc_payloads(&l.s), 1);
    char *b = payload(&l, 0);
    cr_expect(strstr(b, "\"eventName\":\"scheduled\",\"mode\":\"live\"") != NULL, "%s", b);
    cr_expect(strstr(b, "{\"path\":\"/odometer\",\"code\":200,\"body\":{\"distance\":37830.1},"
                        "\"headers\":{\"sc-data-age\":\"2030-03-01T15:59:00.000Z\","
                        "\"sc-unit-system\":\"metric\"}}") != NULL,
              "the sub-response is the data element, unchanged: %s", b);
    cr_expect(strstr(b, "{\"path\":\"/location\",\"code\":200,\"body\":{\"latitude\":37.4292,"
                        "\"longitude\":-122.1381}") != NULL,
              "%s", b);
    free(b);
    struct fake_smartcar snap;
    fake_snapshot(&l.f, &snap);
    cr_expect_str_eq(snap.v[0].last_units, "metric", "SC-Unit-System sent");
    cr_expect_eq(snap.refreshes, 0, "a fresh token is not refreshed");
    live_stop(&l);
}

Test(live, test_mode_vehicles_have_mode_test, .timeout = 60)
{
    struct live l;
    live_one_vehicle(&l, ", mode: test");
    sc_virtual(&l.s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    char *b = payload(&l, 0);
    cr_expect(strstr(b, "\"mode\":\"test\"") != NULL, "%s", b);
    free(b);
    live_stop(&l);
}

Test(live, tokens_are_refreshed_before_they_expire, .timeout = 60)
{
    struct live l;
    live_start(&l, NULL, NULL);
    sc_ok(&l.s, "webhook", "verify", "fleet", "--now", "2030-03-01T15:45:00Z", NULL);
    live_vehicle(&l, "car-1", "2030-03-01T15:45:00Z"); /* access token good until 17:45 */
    sc_virtual(&l.s, "2030-03-01T15:45:00Z", "2030-03-01T19:30:00Z");
    struct fake_smartcar snap;
    fake_snapshot(&l.f, &snap);
    cr_expect_eq(snap.refreshes, 1, "one refresh, before the 18:00 fetch");
    cr_expect_eq(snap.refresh_basic_ok, 1, "with Basic client credentials");
    cr_expect_eq(snap.v[0].batches, 4, "16:00, 17:00, 18:00, 19:00 all fetched with a valid token");
    cr_expect_eq(sc_payloads(&l.s), 4);
    for (size_t i = 0; i < 4; i++) {
        char *b = payload(&l, i);
        cr_expect(strstr(b, "\"code\":401") == NULL, "payload %zu: %s", i, b);
        free(b);
    }
    /* the new tokens are stored sealed, never in clear */
    const char *files[] = {"ledger.db", "ledger.db-wal"};
    for (int i = 0; i < 2; i++) {
        char *path = path_join(l.s.dir, files[i]);
        char *text = read_file(path);
        if (text)
            cr_expect(strstr(text, "at-car-1-1") == NULL, "%s", files[i]);
        free(text);
        free(path);
    }
    live_stop(&l);
}

Test(live, a_refused_token_is_refreshed_then_used, .timeout = 60)
{
    struct live l;
    live_one_vehicle(&l, NULL);
    pthread_mutex_lock(&l.f.mu);
    snprintf(l.f.v[0].access, sizeof l.f.v[0].access, "revoked"); /* the API refuses it */
    pthread_mutex_unlock(&l.f.mu);
    sc_virtual(&l.s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    struct fake_smartcar snap;
    fake_snapshot(&l.f, &snap);
    cr_expect_eq(snap.refreshes, 1);
    cr_expect_eq(snap.v[0].batches, 1, "fetched once more, with the refreshed token");
    char *b = payload(&l, 0);
    cr_expect(strstr(b, "\"distance\":37830.1") != NULL, "%s", b);
    free(b);
    live_stop(&l);
}

Test(live, a_rejected_refresh_marks_the_vehicle_for_reauthentication, .timeout = 60)
{
    struct live l;
    live_one_vehicle(&l, NULL);
    pthread_mutex_lock(&l.f.mu);
    snprintf(l.f.v[0].access, sizeof l.f.v[0].access, "revoked");
    l.f.reject_refresh = 1;
    pthread_mutex_unlock(&l.f.mu);
    sc_virtual(&l.s, "2030-03-01T15:45:00Z", "2030-03-01T17:30:00Z");
    cr_assert_eq(sc_payloads(&l.s), 2, "both ticks delivered, with the error");
    for (size_t i = 0; i < 2; i++) {
        char *b = payload(&l, i);
        cr_expect(strstr(b, "\"code\":401") && strstr(b, "REAUTHENTICATE"), "payload %zu: %s", i,
                  b);
        free(b);
    }
    struct fake_smartcar snap;
    fake_snapshot(&l.f, &snap);
    cr_expect_eq(snap.refreshes, 1, "no further refresh once marked");
    cr_expect_eq(snap.batch_requests, 1, "no API call for the 17:00 tick");
    char *events = read_file(l.events);
    cr_assert_not_null(events, "the events file");
    const char *hit = strstr(events, "\"type\":\"vehicle.reauthentication_required\"");
    cr_expect(hit != NULL, "the owner must connect it again: said as an event: %s", events);
    cr_expect(!hit || !strstr(hit + 10, "vehicle.reauthentication_required"), "once: %s", events);
    cr_expect(strstr(events, "\"vehicleId\":\"car-1\"") != NULL, "naming it: %s", events);
    free(events);
    live_stop(&l);
}

Test(live, rate_limited_requests_wait_for_retry_after, .timeout = 60)
{
    struct live l;
    live_one_vehicle(&l, NULL);
    pthread_mutex_lock(&l.f.mu);
    l.f.rate_limited = 1;
    l.f.retry_after = 120;
    pthread_mutex_unlock(&l.f.mu);
    sc_virtual(&l.s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    json_t *d = sc_deliveries(&l.s);
    cr_assert_eq(json_array_size(d), 1);
    json_decref(d);
    mtr_time sent = first_sent(&l, 0);
    mtr_time tick = iso("2030-03-01T16:00:00Z");
    cr_expect(sent >= tick + 60 + 120 && sent <= tick + 300 + 121,
              "retried after retry-after (120 s), not in the next slot: +%lld s",
              (long long)(sent - tick));
    char *b = payload(&l, 0);
    cr_expect(strstr(b, "\"code\":200") != NULL, "%s", b);
    free(b);
    live_stop(&l);
}

Test(live, an_asleep_vehicle_wakes_in_a_later_slot, .timeout = 60)
{
    struct live l;
    live_one_vehicle(&l, NULL);
    pthread_mutex_lock(&l.f.mu);
    l.f.v[0].asleep = 1;
    pthread_mutex_unlock(&l.f.mu);
    sc_virtual(&l.s, "2030-03-01T15:45:00Z", "2030-03-01T16:59:00Z");
    cr_assert_eq(sc_payloads(&l.s), 1);
    cr_expect(first_sent(&l, 0) >= iso("2030-03-01T16:15:00Z"), "delivered in the second slot");
    char *b = payload(&l, 0);
    cr_expect(strstr(b, "ASLEEP") == NULL && strstr(b, "\"distance\":37830.1"), "%s", b);
    free(b);
    live_stop(&l);
}

Test(live, malformed_answers_become_an_error_element, .timeout = 60)
{
    struct live l;
    live_one_vehicle(&l, NULL);
    pthread_mutex_lock(&l.f.mu);
    l.f.v[0].malformed = 1;
    pthread_mutex_unlock(&l.f.mu);
    sc_virtual(&l.s, "2030-03-01T15:45:00Z", "2030-03-01T16:59:00Z");
    cr_assert_eq(sc_payloads(&l.s), 1);
    char *b = payload(&l, 0);
    cr_expect(strstr(b, "\"type\":\"UPSTREAM\",\"code\":\"INVALID_DATA\"") != NULL, "%s", b);
    free(b);
    live_stop(&l);
}

Test(live, the_application_rate_limit_spreads_requests, .timeout = 60)
{
    struct live l;
    live_start(&l, ", requests_per_minute: 1, burst: 1", "{spread: [0s, 0s]}");
    sc_ok(&l.s, "webhook", "verify", "fleet", "--now", "2030-03-01T15:45:00Z", NULL);
    live_vehicle(&l, "car-1", "2030-03-01T15:45:00Z");
    live_vehicle(&l, "car-2", "2030-03-01T15:45:00Z");
    live_vehicle(&l, "car-3", "2030-03-01T15:45:00Z");
    sc_virtual(&l.s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    json_t *d = sc_deliveries(&l.s);
    cr_assert_eq(json_array_size(d), 3, "all three delivered");
    mtr_time at[3];
    for (size_t i = 0; i < 3; i++)
        at[i] = first_sent(&l, i);
    mtr_time lo = at[0], hi = at[0];
    for (size_t i = 1; i < 3; i++) {
        lo = at[i] < lo ? at[i] : lo;
        hi = at[i] > hi ? at[i] : hi;
    }
    cr_expect_geq(hi - lo, 120, "one request a minute: the third waits two minutes (%lld s)",
                  (long long)(hi - lo));
    json_decref(d);
    live_stop(&l);
}

/* Two nodes one after the other on one ledger: the budget the first spent is
 * spent for the second too (a node keeping its own bucket would start the
 * second full and send the 16:00:30 tick at once). */
Test(live, the_application_rate_limit_is_one_budget_for_every_node, .timeout = 60)
{
    struct live l;
    live_start_cadence(&l, ", requests_per_minute: 1, burst: 3", "{spread: [0s, 0s]}",
                       "{policy: interval, every: 30s}");
    sc_ok(&l.s, "webhook", "verify", "fleet", "--now", "2030-03-01T15:59:50Z", NULL);
    live_vehicle(&l, "car-1", "2030-03-01T15:59:50Z");
    live_vehicle(&l, "car-2", "2030-03-01T15:59:50Z");
    live_vehicle(&l, "car-3", "2030-03-01T15:59:50Z");
    sc_virtual(&l.s, "2030-03-01T15:59:55Z", "2030-03-01T16:00:10Z"); /* node A: the burst */
    struct fake_smartcar f;
    fake_snapshot(&l.f, &f);
    cr_assert_eq(f.batch_requests, 3, "node A spent the burst on the 16:00 tick");
    sc_virtual(&l.s, "2030-03-01T16:00:10Z", "2030-03-01T16:05:00Z"); /* node B */
    int spent_by_a = f.batch_requests;
    fake_snapshot(&l.f, &f);
    int by_b = f.batch_requests - spent_by_a;
    /* from 16:00:00 the budget refills one a minute: five by 16:05:00 */
    cr_expect(by_b >= 4 && by_b <= 5,
              "node B sent what the shared budget refilled and no more: %d requests (its own "
              "bucket would have allowed 7)",
              by_b);
    live_stop(&l);
}

Test(live, subscribe_all_lists_the_tokens_vehicles, .timeout = 60)
{
    struct live l;
    live_start(&l, NULL, NULL);
    fake_add(&l.f, "car-1");
    fake_add(&l.f, "car-2");
    fake_add(&l.f, "car-3");
    struct run_result r = sc_run(&l.s, "subscribe", "fleet", "--all", "--source", "live",
                                 "--access-token", "at-car-1", "--refresh-token", "rt-car-1", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "3 vehicle(s) subscribed") != NULL, "%s", r.out);
    run_result_free(&r);
    struct fake_smartcar snap;
    fake_snapshot(&l.f, &snap);
    cr_expect_eq(snap.list_requests, 2, "two pages of two");
    live_stop(&l);
}

Test(live, connect_exchanges_a_code_and_subscribes, .timeout = 60)
{
    struct live l;
    live_start(&l, NULL, NULL);
    fake_add(&l.f, "car-1");
    fake_add(&l.f, "car-2");
    sc_ok(&l.s, "webhook", "verify", "fleet", "--now", "2030-03-01T15:45:00Z", NULL);
    struct run_result r = sc_run(&l.s, "connect", "fleet", "--code", "wrong", "--redirect-uri",
                                 "https://app.example/cb", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "not accepted") != NULL, "%s", r.err);
    run_result_free(&r);
    sc_ok(&l.s, "connect", "fleet", "--code", FAKE_CODE, "--redirect-uri", "https://app.example/cb",
          "--now", "2030-03-01T15:45:00Z", NULL);
    sc_virtual(&l.s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    cr_expect_eq(sc_payloads(&l.s), 2, "both vehicles delivered with the user's token");
    for (size_t i = 0; i < 2; i++) {
        char *b = payload(&l, i);
        cr_expect(strstr(b, "\"distance\":37830.1") != NULL, "%s", b);
        free(b);
    }
    live_stop(&l);
}

Test(live, the_demo_pipeline_with_its_source_switched, .timeout = 60)
{
    /* configs/live.yaml is configs/demo.yaml with only the source changed */
    struct fake_smartcar f;
    struct receiver r;
    cr_assert_eq(fake_start(&f), 0);
    cr_assert_eq(receiver_start(&r, 0, "live-demo-token"), 0);
    fake_add(&f, "car-1");
    char *dir = make_tmpdir();
    cr_assert_eq(chdir(dir), 0); /* the pipeline's var/live/ goes here */
    char api[128], auth[128], cb[128], build[1024];
    snprintf(api, sizeof api, "SMARTCAR_API_URL=http://127.0.0.1:%u/v2.0", f.port);
    snprintf(auth, sizeof auth, "SMARTCAR_AUTH_URL=http://127.0.0.1:%u/oauth/token", f.port);
    snprintf(cb, sizeof cb, "DEMO_CALLBACK_URI=http://127.0.0.1:%u/hooks/smartcar", r.port);
    snprintf(build, sizeof build, "METRONOME_BUILD_DIR=%s", MTR_PLUGIN_DIR);
    *strrchr(build, '/') = '\0';
    const char *env[] = {api,
                         auth,
                         cb,
                         build,
                         "SMARTCAR_CLIENT_ID=" FAKE_CLIENT_ID,
                         "SMARTCAR_CLIENT_SECRET=" FAKE_CLIENT_SECRET,
                         "SMARTCAR_ALLOW_PRIVATE=true",
                         "METRONOME_SECRET_KEY=" KEY,
                         "METRONOME_MANAGEMENT_TOKEN=live-demo-token",
                         "METRONOME_PLUGIN_PATH=",
                         NULL};
    const char *cfg = MTR_SOURCE_DIR "/configs/live.yaml";
    const char *steps[][16] = {
        {"validate", "--config", cfg, NULL},
        {"webhook", "verify", "fleet-hourly", "--config", cfg, "--now", "2030-03-01T15:45:00Z",
         NULL},
        {"subscribe", "fleet-hourly", "car-1", "--access-token", "at-car-1", "--refresh-token",
         "rt-car-1", "--config", cfg, "--now", "2030-03-01T15:45:00Z", NULL},
        {"run", "--clock", "virtual", "--start", "2030-03-01T15:45:00Z", "--until",
         "2030-03-01T16:30:00Z", "--config", cfg, NULL},
    };
    for (size_t i = 0; i < 4; i++) {
        struct run_result rr;
        run_metronome(steps[i], env, &rr);
        cr_assert_eq(rr.status, 0, "%s: %s", steps[i][0], rr.err);
        run_result_free(&rr);
    }
    cr_assert_eq(receiver_count_event(&r, "scheduled"), 1);
    struct received x;
    receiver_get_payload(&r, 0, &x);
    cr_expect(strstr(x.body, "\"mode\":\"live\"") != NULL, "%s", x.body);
    cr_expect(strstr(x.body, "{\"path\":\"/odometer\",\"code\":200,\"body\":{\"distance\":37830.1},"
                             "\"headers\":{\"sc-data-age\":\"2030-03-01T15:59:00.000Z\","
                             "\"sc-unit-system\":\"metric\"}}") != NULL,
              "%s", x.body);
    cr_expect(x.signature_ok);
    received_free(&x);
    receiver_stop(&r);
    fake_stop(&f);
    free(dir);
}

static int file_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "rb");
    char buf[65536];
    size_t n, len = strlen(text);
    int found = 0;
    while (f && !found && (n = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i + len <= n && !found; i++)
            found = memcmp(buf + i, text, len) == 0;
    if (f)
        fclose(f);
    return found;
}

Test(live, smartcar_subscribe_checks_the_token_through_the_source, .timeout = 60)
{
    /* POST /v2.0/vehicles/{id}/webhooks/{id} for a live source: the access
     * token must grant the vehicle (asked of Smartcar's vehicle list), and it
     * is stored sealed */
    struct live l;
    struct daemon d;
    char source[1024];
    cr_assert_eq(fake_start(&l.f), 0);
    fake_add(&l.f, "car-1");
    fake_add(&l.f, "car-2");
    snprintf(source, sizeof source,
             "{name: live, plugin: smartcar, api_url: \"http://127.0.0.1:%u/v2.0\", "
             "auth_url: \"http://127.0.0.1:%u/oauth/token\", client_id: %s, client_secret: %s, "
             "allow_private_networks: true}",
             l.f.port, l.f.port, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET);
    setenv("METRONOME_SECRET_KEY", KEY, 1);
    scenario_start(&l.s, &(struct scenario_opts){
                             .source = source,
                             .extra = "admin: {listen: \"127.0.0.1:0\", token: admin-token}\n"});
    daemon_start(&d, l.s.config, "admin-token", NULL);
    struct http_reply r =
        http_call(&d, "POST", "/v2.0/vehicles/car-1/webhooks/fleet", "at-car-1", NULL, 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    http_reply_free(&r);
    r = http_call(&d, "POST", "/v2.0/vehicles/car-2/webhooks/fleet", "not-a-token", NULL, 0);
    cr_expect_eq(r.status, 401, "a token Smartcar refuses: %s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "type")), "AUTHENTICATION");
    http_reply_free(&r);
    r = http_call(&d, "POST", "/v2.0/vehicles/car-9/webhooks/fleet", "at-car-1", NULL, 0);
    cr_expect_eq(r.status, 404, "a vehicle the token does not grant: %s", r.body);
    http_reply_free(&r);
    r = http_call(&d, "GET", "/api/v1/vehicles", "admin-token", NULL, 0);
    json_t *v = json_array_get(json_object_get(r.json, "data"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(v, "vehicleId")), "car-1", "%s", r.body);
    cr_expect(json_is_true(json_object_get(v, "live")), "stored with its token: %s", r.body);
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 1, "%s", r.body);
    http_reply_free(&r);
    cr_expect_eq(daemon_stop(&d), 0);
    char *db = path_join(l.s.dir, "ledger.db"), *wal = path_join(l.s.dir, "ledger.db-wal");
    cr_expect(!file_has(db, "at-car-1") && !file_has(wal, "at-car-1"), "the token is sealed");
    free(db);
    free(wal);
    unsetenv("METRONOME_SECRET_KEY");
    live_stop(&l);
}
